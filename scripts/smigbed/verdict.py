"""smigbed.verdict: an edge-demo summary (summary.json, smigbed.analysis) judged, PASS or
FAIL, against absolute goals. The one implementation: edge_demo prints it and exits with
it, tests/system/check_demo.py calls it on a summary.json.

What is judged:
  - the session followed the car: each change of nearest edge by the MDM's margin
    (`margin_changes`: a round trip that much better; `nearest_changes` in a summary
    without them), from the events as applied, that lasts at least dwell + FOLLOW_SLACK_S
    is followed by a DONE migration to that edge, finished within dwell + FOLLOW_SLACK_S of
    the change (or the session is already there); a shorter change requires nothing;
  - every migration went to the edge nearest (`nearest_changes`: the smallest round trip,
    no margin) when it started, no sooner than the dwell after that edge became nearest,
    and ended DONE. Between the two, a measured srtt may see the margin a little before or
    after the links' round trips do (a trace's 14 ms against 20 ms is exactly 30 %);
  - each migration's stall <= goals.stall_ms; the drive's p99, p99.9 and largest player gap
    <= goals.p99_gap_ms, p999_gap_ms (when set) and max_gap_ms (summary["goals"], from the
    scenario; scenario.DEFAULT_GOALS for a summary without them);
  - nothing lost or delivered twice, every frame decoded, no continuity error, at least
    goals.min_failovers path failovers, and every process exited cleanly.

Timing checks (stalls, gaps, a migration that followed the car late, or one that never
came while the session followed the car at a later change) that miss under
software CPU emulation (summary["emulated_cpu"]: the project's VM under TCG) are SKIP,
reported with their numbers and never passed; the exit code is then 77 (ctest: skipped)
if nothing else failed.
"""
import math

from .scenario import DEFAULT_GOALS

# How long after dwell the session may take to follow the car: the PMM's srtt has to
# show the change (reports every 500 ms, smoothed), the MDM ticks every 500 ms, and the
# migration itself takes its time. The default drive follows in dwell + about 1 s.
FOLLOW_SLACK_S = 4.0

PASS, FAIL, SKIP, INFO = "PASS", "FAIL", "SKIP", "INFO"


class Verdict:
    """The checks of one summary: [(status, text)] in order, status PASS, FAIL, SKIP (a
    timing goal missed under software CPU emulation) or INFO (nothing judged)."""

    def __init__(self, emulated=False):
        self.emulated = emulated
        self.checks = []

    def expect(self, ok, what):
        self.checks.append((PASS if ok else FAIL, what))

    def expect_timing(self, ok, what):
        if not ok and self.emulated:
            self.checks.append((SKIP, f"{what} (software CPU emulation: timing not judged)"))
        else:
            self.expect(ok, what)

    def info(self, what):
        self.checks.append((INFO, what))

    @property
    def failures(self):
        return [w for st, w in self.checks if st == FAIL]

    @property
    def skipped(self):
        return [w for st, w in self.checks if st == SKIP]

    @property
    def passed(self):
        return not self.failures

    @property
    def exit_code(self):
        """0 passed, 1 failed, 77 passed except timing goals not judged (emulation)."""
        return 1 if self.failures else 77 if self.skipped else 0

    def word(self):
        if self.failures:
            return "FAIL"
        return "PASS (timing not judged: software CPU emulation)" if self.skipped else "PASS"

    def lines(self):
        out = [f"{'--' if st == INFO else st} {w}" for st, w in self.checks]
        judged = sum(1 for st, _ in self.checks if st != INFO)
        out.append(f"verdict: {self.word()}: {judged} checks, {len(self.failures)} failed, "
                   f"{len(self.skipped)} not judged")
        return out


def goals_of(s):
    """The goals a summary is judged against: its own, over the defaults."""
    return {**DEFAULT_GOALS, **(s.get("goals") or {})}


def nearest_at(changes, t):
    """The nearest edge at time t from [(t, edge)] changes."""
    current = None
    for at, edge in changes:
        if at <= t:
            current = edge
    return current


def became_nearest(changes, edge, t):
    """When `edge` last became the nearest at or before t; None if it is not nearest at t."""
    since = None
    for at, e in changes:
        if at > t:
            break
        since = at if e == edge else None
    return since


def finished_at(m):
    return m["started_at_s"] + m["duration_ms"] / 1000


def serving_at(start_edge, migrations, t):
    """The edge serving the session at time t: the start edge, moved by every DONE
    migration finished by then."""
    serving = start_edge
    for m in sorted(migrations, key=lambda m: m["started_at_s"]):
        if m["result"] == "done" and finished_at(m) <= t:
            serving = m["to"]
    return serving


def follow_the_car(s, v):
    """Judges that the session followed each lasting change of nearest edge (see above)."""
    changes = [tuple(c) for c in s.get("margin_changes") or s.get("nearest_changes") or []]
    dwell = float(s["dwell_s"])
    within = dwell + FOLLOW_SLACK_S
    end = float(s.get("duration_s") or math.inf)
    done = sorted((m for m in s["migrations"] if m["result"] == "done"),
                  key=lambda m: m["started_at_s"])
    start_edge = s.get("start_edge") or (s["migrations"][0]["from"] if s["migrations"]
                                         else changes[0][1] if changes else None)
    for k, (t, edge) in enumerate(changes):
        until = changes[k + 1][0] if k + 1 < len(changes) else end
        lasted = until - t
        if lasted < within:
            v.info(f"{edge} nearest at {t:g} s for {lasted:.1f} s only (< dwell {dwell:g} + "
                   f"{FOLLOW_SLACK_S:g} s): no migration required")
            continue
        if serving_at(start_edge, done, t) == edge:
            v.expect(True, f"{edge} nearest at {t:g} s: the session is already there")
            continue
        follow = [m for m in done if m["to"] == edge and t <= m["started_at_s"] < until]
        if not follow:
            what = (f"{edge} nearest at {t:g} s (for {lasted:.1f} s): no DONE migration to it "
                    f"followed; the session stayed on {serving_at(start_edge, done, until)}")
            later = [m for m in done if m["started_at_s"] >= until]
            if v.emulated and later:
                # Under emulation every srtt the PMM measures carries the emulator's own
                # delay (24 ms on a 4 ms dsrc link in the VM), which can hide the MDM's
                # margin for as long as the change lasts: a timing miss, since the session
                # followed the car later. A drive with no migration after it still fails.
                v.expect_timing(False, f"{what}; it followed later ({later[0]['from']} -> "
                                f"{later[0]['to']} at {later[0]['started_at_s']:g} s)")
            else:
                v.expect(False, what)
            continue
        took = finished_at(follow[0]) - t
        v.expect_timing(took <= within, f"{edge} nearest at {t:g} s: followed by a DONE "
                        f"migration {took:.1f} s later (<= dwell {dwell:g} + {FOLLOW_SLACK_S:g} s)")


def judge(s, min_migrations=None):
    """The Verdict on a summary.json dict."""
    v = Verdict(emulated=bool(s.get("emulated_cpu")))
    goals = goals_of(s)
    if min_migrations is not None:
        auto = [m for m in s["migrations"] if m["trigger"] == "auto"]
        v.expect(len(auto) >= min_migrations, f"{len(auto)} automatic migrations (>= {min_migrations})")
    follow_the_car(s, v)
    if s.get("tls"):
        enforced = s.get("tls_enforced") or {}
        v.expect(bool(enforced) and all(enforced.values()),
                 "mutual TLS: every server answers the bed's certificate and refuses plaintext "
                 f"({', '.join(f'{n}: {r}' for n, r in enforced.items()) or 'none tried'})")
    changes = s.get("nearest_changes") or []
    for n, m in enumerate(s["migrations"], 1):
        want = nearest_at(changes, m["started_at_s"])
        v.expect(m["to"] == want, f"migration {n} at {m['started_at_s']} s went to {m['to']}, the "
                 f"nearest then is {want}")
        since = became_nearest(changes, m["to"], m["started_at_s"])
        v.expect(since is not None and m["started_at_s"] >= since + s["dwell_s"],
                 f"migration {n} started {m['started_at_s']} s, {m['to']} nearest since {since} s, "
                 f"dwell {s['dwell_s']} s")
        note = m.get("rollback_reason") or ""
        v.expect(m["result"] == "done",
                 f"migration {n} result {m['result']}" + (f" ({note})" if note else ""))
        v.expect_timing(m["stall_ms"] <= goals["stall_ms"],
                        f"migration {n} stall {m['stall_ms']} ms <= goal {goals['stall_ms']:g} ms")
    for key, label in (("p99_gap_ms", "p99"), ("p999_gap_ms", "p99.9"), ("max_gap_ms", "largest")):
        if goals[key] is None:
            v.info(f"{label} player gap {s.get(key)} ms (no goal)")
        else:
            v.expect_timing(s[key] <= goals[key],
                            f"{label} player gap {s[key]} ms <= goal {goals[key]:g} ms")
    v.expect(s["bytes_lost"] == 0, f"bytes_lost {s['bytes_lost']}")
    v.expect(s["duplicates_delivered"] == 0, f"duplicates_delivered {s['duplicates_delivered']}")
    v.expect(s["bytes_delivered"] == s["bytes_sent"], f"bytes {s['bytes_delivered']} of {s['bytes_sent']}")
    v.expect(s["cc_errors"] == 0, f"cc_errors {s['cc_errors']}")
    v.expect(s["frames_decoded"] == s["frames_sent"], f"frames {s['frames_decoded']} of {s['frames_sent']}")
    if goals["min_failovers"]:
        v.expect(s["failovers"] >= goals["min_failovers"],
                 f"{s['failovers']} path failovers (>= {goals['min_failovers']}: the active path's "
                 "death must move traffic to the other radio)")
    bad = {k: c for k, c in s.get("exit_codes", {}).items() if c not in (0, None)
           and not k.startswith("linkemu") and k != "decoder"}
    v.expect(not bad, f"processes exited cleanly {bad or ''}".rstrip())
    return v
