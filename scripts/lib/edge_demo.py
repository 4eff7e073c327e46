"""edge-demo: a whole edge and a moving car on one machine (see scripts/edge-demo)."""
import argparse
import json
import os
import sys
import threading
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smigbed  # noqa: E402

DEFAULT_SCENARIO = os.path.join(smigbed.ROOT, "scripts", "scenarios", "default.yaml")
LINK_KEYS = {"delay_ms", "loss_pct", "rate_mbit", "up"}
SCENARIO_KEYS = {"name", "description", "duration_s", "edges", "start_edge", "policy", "links",
                 "events"}


class ScenarioError(Exception):
    pass


def load_scenario(path):
    """The scenario YAML, checked: unknown keys and bad values name themselves."""
    with open(path) as f:
        s = yaml.safe_load(f)
    if not isinstance(s, dict):
        raise ScenarioError(f"{path}: not a mapping")
    for k in s:
        if k not in SCENARIO_KEYS:
            raise ScenarioError(f"{path}: unknown key '{k}' (known: {', '.join(sorted(SCENARIO_KEYS))})")
    edges = [f"edge-{i}" for i in range(1, int(s.get("edges", 3)) + 1)]
    s["edge_names"] = edges
    if float(s.get("duration_s", 0)) <= 5:
        raise ScenarioError(f"{path}: duration_s must be more than 5 s")

    def check_link(where, link):
        if not isinstance(link, dict):
            raise ScenarioError(f"{path}: {where}: expected a mapping of {sorted(LINK_KEYS)}")
        for k, v in link.items():
            if k not in LINK_KEYS:
                raise ScenarioError(f"{path}: {where}: unknown key '{k}'")
            if k != "up" and (not isinstance(v, (int, float)) or v < 0):
                raise ScenarioError(f"{path}: {where}.{k}: {v!r} is not a non-negative number")
    for radio, link in (s.get("links") or {}).items():
        if radio not in smigbed.RADIOS:
            raise ScenarioError(f"{path}: links: unknown radio '{radio}'")
        check_link(f"links.{radio}", link)
    last = -1.0
    for n, ev in enumerate(s.get("events") or []):
        at = ev.get("at_s")
        if not isinstance(at, (int, float)) or at < last:
            raise ScenarioError(f"{path}: events[{n}].at_s must be a number, in time order")
        last = at
        for k in ev:
            if k not in ("at_s", "set", "note"):
                raise ScenarioError(f"{path}: events[{n}]: unknown key '{k}'")
        for target, link in (ev.get("set") or {}).items():
            edge, _, radio = target.partition("/")
            if edge not in edges or radio not in smigbed.RADIOS:
                raise ScenarioError(f"{path}: events[{n}]: '{target}' is not EDGE/RADIO "
                                    f"(edges {edges}, radios {list(smigbed.RADIOS)})")
            check_link(f"events[{n}].{target}", link)
    return s


def link_states(scenario, t):
    """Every (edge, radio) link's settings at scenario time t."""
    state = {(e, r): dict(scenario.get("links", {}).get(r, {})) for e in scenario["edge_names"]
             for r in smigbed.RADIOS}
    for ev in scenario.get("events") or []:
        if ev["at_s"] > t:
            break
        for target, link in (ev.get("set") or {}).items():
            edge, _, radio = target.partition("/")
            state[(edge, radio)].update(link)
    return state


def nearest(scenario, t):
    """The edge with the smallest round trip over any up link at time t (ties: first)."""
    best, best_rtt = None, None
    for e in scenario["edge_names"]:
        for r in smigbed.RADIOS:
            link = link_states(scenario, t)[(e, r)]
            if link.get("up", True):
                rtt = 2 * link.get("delay_ms", 0)
                if best_rtt is None or rtt < best_rtt:
                    best, best_rtt = e, rtt
    return best


def nearest_changes(scenario):
    """[(t, edge)] each time the nearest edge changes, sampled every 0.1 s."""
    out, last = [], None
    t = 0.0
    while t <= scenario["duration_s"]:
        n = nearest(scenario, t)
        if n != last:
            out.append((round(t, 1), n))
            last = n
        t += 0.1
    return out


def as_applied(scenario, applied):
    """The scenario with each event at the time it was really applied."""
    out = dict(scenario)
    out["events"] = [dict(ev, at_s=a) for ev, (_, a) in zip(scenario.get("events") or [], applied)]
    return out


def apply_links(bed, changes):
    for target, link in changes.items():
        edge, _, radio = target.partition("/")
        bed.set_link(edge, radio, up=link.get("up"), delay_ms=link.get("delay_ms"),
                     loss_pct=link.get("loss_pct"), rate_mbit=link.get("rate_mbit"))


class Timeline:
    """Polls the services while the scenario runs; prints what happens as it happens."""

    def __init__(self, bed, out=print):
        self.bed = bed
        self.out = out
        self.samples = []       # (t, {edge: srtt_ms or None}, serving)
        self.phases_seen = {}   # migration id -> history entries printed
        self.failovers = 0
        self.serving = None
        self.next = {"prox": 0.0, "mig": 0.0, "sess": 0.0, "scrape": 0.0}

    def start(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            self.poll()
            self._stop.wait(0.05)

    def stop(self):
        self._stop.set()
        self._thread.join()
        self.poll()

    def say(self, text):
        t = time.time() - self.bed.t0
        self.out(f"  {t:6.1f} s  {text}", flush=True)

    def poll(self):
        now = time.time() - self.bed.t0
        if now >= self.next["mig"]:
            self.next["mig"] = now + 0.5
            listed = self.bed.smigctl("migrations", check=False)
            for m in (listed.get("migrations", []) if isinstance(listed, dict) else []):
                hist = m.get("history", [])
                for h in hist[self.phases_seen.get(m["id"], 0):]:
                    phase = h["phase"].replace("PHASE_", "")
                    trig = "auto" if m.get("trigger") == "TRIGGER_AUTO" else "manual"
                    note = f" ({h['note']})" if h.get("note") and phase in ("ROLLED_BACK",) else ""
                    self.say(f"migration {m['id']} [{trig}] {m['from_server_id']} -> "
                             f"{m['to_server_id']}: {phase}{note}")
                self.phases_seen[m["id"]] = len(hist)
        if now >= self.next["prox"]:
            self.next["prox"] = now + 0.5
            p = self.bed.smigctl("proximity", smigbed.VEHICLE_ID, check=False)
            rtts = {}
            for s in (p.get("servers", []) if isinstance(p, dict) else []):
                rtts[s["server_id"]] = s.get("srtt_ms") if s.get("reachable") else None
            self.samples.append((now, rtts, self.serving))
        if now >= self.next["sess"]:
            self.next["sess"] = now + 1.0
            s = self.bed.smigctl("sessions", check=False)
            for sess in (s.get("sessions", []) if isinstance(s, dict) else []):
                if sess.get("server_id") != self.serving:
                    self.serving = sess.get("server_id")
                    self.say(f"serving edge: {self.serving}")
        if now >= self.next["scrape"]:
            self.next["scrape"] = now + 1.0
            self.count_failovers(self.bed.scrape("vehicle"))

    def count_failovers(self, metrics):
        n = int(sum(v for k, v in metrics.items() if k.startswith("smig_path_failovers_total")))
        if n > self.failovers:
            self.say(f"path failover at the vehicle (SCTP moved traffic off a dead path; "
                     f"{n} so far)")
            self.failovers = n

    def final_failovers(self):
        """The vehicle's failover count at the end. The live scrapes give up after 2 s, which
        a slow (emulated) machine can miss every time; this one waits and retries."""
        for _ in range(3):
            m = self.bed.scrape("vehicle", timeout_s=10)
            if m:
                self.count_failovers(m)
                break
        return self.failovers


def draw(bed, timeline, summary, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arrivals = smigbed.read_arrivals(os.path.join(bed.out, "arrivals.txt"))
    t0 = bed.t0
    fig, (ax_rtt, ax_tp, ax_gap) = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    for edge in bed.edges:
        xs = [t for t, r, _ in timeline.samples if r.get(edge) is not None]
        ys = [r[edge] for t, r, _ in timeline.samples if r.get(edge) is not None]
        ax_rtt.plot(xs, ys, label=f"{edge} srtt (PMM, from SCTP)")
    serving = [(t, s) for t, _, s in timeline.samples]
    colors = {e: c for e, c in zip(bed.edges, ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"])}
    for (ta, sa), (tb, _) in zip(serving, serving[1:]):
        if sa in colors:
            ax_rtt.axvspan(ta, tb, color=colors[sa], alpha=0.08, lw=0)
    ax_rtt.set_ylabel("RTT ms (shade: serving)")
    ax_rtt.legend(loc="upper right", fontsize=8)
    bins = {}
    sizes = [int(l.split()[1]) for l in open(os.path.join(bed.out, "arrivals.txt")) if l.strip()]
    for t, n in zip(arrivals, sizes):
        b = int((t - t0) * 2) / 2
        bins[b] = bins.get(b, 0) + n
    xs = sorted(bins)
    ax_tp.plot(xs, [bins[x] * 8 / 0.5 / 1e6 for x in xs], color="black")
    ax_tp.set_ylabel("player Mbit/s")
    gx = [t - t0 for t, _ in smigbed.gaps(arrivals)]
    gy = [g * 1000 for _, g in smigbed.gaps(arrivals)]
    ax_gap.plot(gx, gy, lw=0.6, color="gray", label="arrival gap")
    ax_gap.axhline(summary["stall_goal_ms"], color="red", ls="--", lw=0.8,
                   label=f"goal {summary['stall_goal_ms']} ms (steady p99 + 5)")
    for m in summary["migrations"]:
        for ax in (ax_rtt, ax_tp, ax_gap):
            ax.axvline(m["started_at_s"], color="purple", lw=0.8)
        ax_gap.annotate(f"{m['from']}→{m['to']}\nstall {m['stall_ms']} ms",
                        (m["started_at_s"], max(gy or [1]) * 0.8), fontsize=7, color="purple")
    ax_gap.set_ylabel("gap ms")
    ax_gap.set_xlabel("seconds since the session started")
    ax_gap.legend(loc="upper right", fontsize=8)
    fig.suptitle(f"smig edge demo ({summary['sctp_stack']} SCTP): {len(summary['migrations'])} "
                 f"migrations, {summary['bytes_lost']} bytes lost, {summary['cc_errors']} CC errors")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def print_summary(s):
    print("\nsummary")
    rows = [("sctp stack", s["sctp_stack"]), ("bytes sent / delivered / lost",
            f"{s['bytes_sent']} / {s['bytes_delivered']} / {s['bytes_lost']}"),
            ("duplicates delivered", s["duplicates_delivered"]),
            ("frames sent / decoded", f"{s['frames_sent']} / {s['frames_decoded']}"),
            ("continuity errors (decoder)", s["cc_errors"]), ("path failovers", s["failovers"]),
            ("reordered by loopback (put back)", s["reordered_by_loopback"]),
            ("largest player gap", f"{s['max_stall_ms']} ms"),
            ("steady-state p99 gap / stall goal", f"{s['steady_p99_gap_ms']} / {s['stall_goal_ms']} ms")]
    for k, v in rows:
        print(f"  {k:36} {v}")
    print(f"\n  {'migration':10} {'trigger':8} {'from':8} {'to':8} {'at s':>7} {'took ms':>8} "
          f"{'stall ms':>9}  result")
    for n, m in enumerate(s["migrations"], 1):
        print(f"  {n:<10} {m['trigger']:8} {m['from']:8} {m['to']:8} {m['started_at_s']:7.1f} "
              f"{m['duration_ms']:8.0f} {m['stall_ms']:9.1f}  {m['result']}")


def main(argv=None):
    ap = argparse.ArgumentParser(prog="edge-demo", description=__doc__)
    ap.add_argument("--sctp-stack", default="userland", choices=["userland", "kernel", "auto"])
    ap.add_argument("--scenario", default=DEFAULT_SCENARIO)
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep-running", action="store_true")
    args = ap.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
    except (OSError, ScenarioError, yaml.YAMLError) as e:
        print(f"edge-demo: {e}", file=sys.stderr)
        return 2
    out = args.out or f"/tmp/smig-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    duration = float(scenario["duration_s"])
    policy = {"latency_weight": 1, "bandwidth_weight": 0, "load_weight": 0.1, "margin": 0.3,
              "dwell": "3s", "max_load": 0.9, "mode": "MODE_AUTOMATIC"}
    policy.update(scenario.get("policy") or {})
    failover = json.loads(os.environ["SMIG_FAILOVER"]) if os.environ.get("SMIG_FAILOVER") else None
    bed = smigbed.Bed(out, stack=args.sctp_stack, edges=len(scenario["edge_names"]), failover=failover)
    print(f"edge-demo: scenario {scenario.get('name', args.scenario)} ({duration:.0f} s, "
          f"{len(bed.edges)} edges, radios cell + dsrc), {args.sctp_stack} SCTP, output in {out}")
    summary = None
    try:
        bed.start(media_seconds=int(duration), policy=policy)
        initial = {f"{e}/{r}": link for e in bed.edges for r, link in (scenario.get("links") or {}).items()}
        apply_links(bed, initial)
        events = list(scenario.get("events") or [])
        applied = []  # (scheduled s, applied s) of each event, in order
        while events and events[0]["at_s"] <= 0:  # before the session starts: on time
            ev = events.pop(0)
            apply_links(bed, ev.get("set") or {})
            applied.append((ev["at_s"], ev["at_s"]))
        start_edge = scenario.get("start_edge") or nearest(scenario, 0)
        bed.open_session(start_edge)
        timeline = Timeline(bed)
        timeline.say(f"session {smigbed.SESSION} opened on {start_edge}; the car starts moving")
        # The timeline polls on its own thread: on a slow (emulated) machine each smigctl
        # call takes a while, and the scenario's link changes must still happen on time.
        timeline.start()
        end = bed.t0 + duration + 15  # the stream's tail, then give up
        while time.time() < end:
            t = time.time() - bed.t0
            while events and events[0]["at_s"] <= t:
                ev = events.pop(0)
                apply_links(bed, ev.get("set") or {})
                applied.append((ev["at_s"], time.time() - bed.t0))
                timeline.say(f"scenario: {ev.get('note') or ev.get('set')}")
            if t > duration and bed.delivered_bytes() >= os.path.getsize(bed.media):
                break
            time.sleep(0.02)
        timeline.stop()
        timeline.final_failovers()
        migrations = smigbed.migrations_from_smm(bed)
        if args.keep_running:
            print("\nedge-demo: --keep-running: the edge stays up until Ctrl-C")
            print(f"  smigctl --smm={bed.sock('migrator')} --pmm={bed.sock('proximity')} "
                  f"--mdm={bed.sock('decision')} migrations")
            print(f"  gRPC (reflection, health): {bed.sock('proximity')} {bed.sock('decision')} "
                  f"{bed.sock('migrator')} " + " ".join(bed.sock(e) for e in bed.edges))
            print(f"  /metrics (namespace {bed.ns['air']}): " + " ".join(
                f"{n}=http://{bed.metrics_address(n)}/metrics"
                for n in ["proximity", "decision", "migrator", "vehicle", *bed.edges]))
            with open(os.path.join(out, "endpoints.json"), "w") as f:
                json.dump({"netns": bed.ns["air"], "metrics": {n: bed.metrics_address(n) for n in
                           ["proximity", "decision", "migrator", "vehicle", *bed.edges]},
                           "grpc": {n: bed.sock(n) for n in ["proximity", "decision", "migrator",
                                                             "vehicle", *bed.edges]}}, f, indent=1)
            try:
                while True:
                    time.sleep(1)
            except KeyboardInterrupt:
                pass
    except (RuntimeError, OSError) as e:
        print(f"edge-demo: {e}", file=sys.stderr)
        bed.stop()
        return 1
    bed.stop()
    summary = smigbed.analyse(bed, migrations, timeline.failovers)
    summary["scenario"] = scenario.get("name", args.scenario)
    # Judged against when the links really changed (a loaded machine applies an event a
    # little after its scheduled time; the lateness is reported).
    summary["nearest_changes"] = nearest_changes(as_applied(scenario, applied))
    summary["event_lateness_max_s"] = round(max([a - s for s, a in applied] or [0.0]), 3)
    summary["dwell_s"] = float(str(policy["dwell"]).rstrip("s"))
    summary["exit_codes"] = bed.exit_codes()
    # Set by scripts/run-kernel-test when the kvm-sctp VM runs under TCG: gaps then measure
    # the emulator, and the checks say so instead of judging them.
    summary["emulated_cpu"] = bool(os.environ.get("SMIG_EMULATED_CPU"))
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    draw(bed, timeline, summary, os.path.join(out, "timeline.png"))
    print_summary(summary)
    print(f"\n  {out}/summary.json, {out}/timeline.png, logs in {out}/logs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
