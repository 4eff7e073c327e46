"""Checks an edge-demo summary.json against what the issue asks of the default drive:
automatic migrations to the edge the scenario makes nearest, none before the dwell time,
no loss or duplicates, every frame decoded without continuity errors, each migration's
stall within the data plane's goal, and a clean exit of every process.

    check_demo.py SUMMARY.json [--min-migrations N]
exit 1 with the failures listed; 77 (ctest: skipped) when everything passed except timing
goals that a software-emulated CPU (the project's VM, scripts/vm, under TCG) cannot be judged on.
"""
import argparse
import json
import sys


def nearest_at(changes, t):
    current = None
    for at, edge in changes:
        if at <= t:
            current = edge
    return current


def became_nearest(changes, edge, t):
    """When `edge` last became the nearest at or before t."""
    since = None
    for at, e in changes:
        if at > t:
            break
        since = at if e == edge else None
    return since


def check(s, min_migrations):
    failures, skipped = [], []
    def expect(ok, what):
        print(("PASS " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)
    def expect_timing(ok, what):
        # Under software CPU emulation a missed timing goal is reported, not judged.
        if not ok and s.get("emulated_cpu"):
            print(f"SKIP {what} (software CPU emulation: timing not judged)")
            skipped.append(what)
        else:
            expect(ok, what)
    auto = [m for m in s["migrations"] if m["trigger"] == "auto"]
    expect(len(auto) >= min_migrations, f"{len(auto)} automatic migrations (>= {min_migrations})")
    for n, m in enumerate(s["migrations"], 1):
        want = nearest_at(s["nearest_changes"], m["started_at_s"])
        expect(m["to"] == want, f"migration {n} at {m['started_at_s']} s went to {m['to']}, the "
               f"nearest then is {want}")
        since = became_nearest(s["nearest_changes"], m["to"], m["started_at_s"])
        expect(since is not None and m["started_at_s"] >= since + s["dwell_s"],
               f"migration {n} started {m['started_at_s']} s, {m['to']} nearest since {since} s, "
               f"dwell {s['dwell_s']} s")
        expect(m["result"] == "done", f"migration {n} result {m['result']} {m.get('rollback_reason', '')}")
        expect_timing(m["stall_ms"] <= s["stall_goal_ms"],
               f"migration {n} stall {m['stall_ms']} ms <= goal {s['stall_goal_ms']} ms")
    expect(s["bytes_lost"] == 0, f"bytes_lost {s['bytes_lost']}")
    expect(s["duplicates_delivered"] == 0, f"duplicates_delivered {s['duplicates_delivered']}")
    expect(s["bytes_delivered"] == s["bytes_sent"], f"bytes {s['bytes_delivered']} of {s['bytes_sent']}")
    expect(s["cc_errors"] == 0, f"cc_errors {s['cc_errors']}")
    expect(s["frames_decoded"] == s["frames_sent"], f"frames {s['frames_decoded']} of {s['frames_sent']}")
    expect(s["failovers"] >= 1, f"{s['failovers']} path failovers (the dsrc outage must move "
           "traffic to cell)")
    bad = {k: v for k, v in s.get("exit_codes", {}).items() if v not in (0, None)
           and not k.startswith("linkemu") and k != "decoder"}
    expect(not bad, f"processes exited cleanly {bad or ''}")
    return failures, skipped


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("summary")
    ap.add_argument("--min-migrations", type=int, default=2)
    args = ap.parse_args()
    with open(args.summary) as f:
        s = json.load(f)
    failures, skipped = check(s, args.min_migrations)
    print(f"{len(failures)} failure(s), {len(skipped)} check(s) not judged")
    if failures:
        return 1
    return 77 if skipped else 0  # ctest: skipped, never passed


if __name__ == "__main__":
    sys.exit(main())
