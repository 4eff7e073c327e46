"""edge-demo: a whole edge and a moving car on one machine (see scripts/edge-demo).

    python3 -m smigbed.edge_demo [--sctp-stack ...] [--scenario FILE] [--out DIR] [--keep-running]
    python3 -m smigbed.edge_demo --trace FILE.xml [--edges FILE.yaml] [--vehicle ID] ...

--trace drives one vehicle of a SUMO trace (sumo --fcd-output) past the edges of an edges
file (default: the trace's name with .edges.yaml for .fcd.xml), through the radio model of
smigbed.radio; --vehicle picks it (default: the one whose drive changes nearest edge most).

Ends with a verdict (smigbed.verdict) and exits with it: 0 PASS, 1 FAIL (or the bed
failed), 2 a bad scenario or argument, 77 passed except timing goals that a software-
emulated CPU cannot be judged on. A stop signal (SIGINT, SIGTERM, SIGHUP) ends it early
and cleanly, with a summary marked INTERRUPTED and exit 128 + the signal.
"""
import argparse
import json
import os
import signal
import sys
import threading
import time

import yaml

from .analysis import analyse, migrations_from_smm
from .city_plot import draw_city
from .plotting import draw
from .radio import PlacementError, load_placement
from .scenario import (DEFAULT_SCENARIO, ScenarioError, as_applied, load_scenario, nearest,
                       nearest_changes)
from .testbed import BIN, REPLICAS, SESSION, VEHICLE_ID, Bed
from .trace import TraceError, load_fcd
from .trace_drive import choose_vehicle, drive_for
from .verdict import FOLLOW_SLACK_S, judge


def apply_links(bed, changes):
    for target, link in changes.items():
        edge, _, radio = target.partition("/")
        bed.set_link(edge, radio, up=link.get("up"), delay_ms=link.get("delay_ms"),
                     loss_pct=link.get("loss_pct"), rate_mbit=link.get("rate_mbit"))


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Interrupted(Exception):
    """A stop signal arrived: the demo ends as at its end, and exits 128 + the signal."""

    def __init__(self, signum):
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.name}")


def _raise_interrupted(signum, _frame):
    raise Interrupted(signum)


def _hold_signals():
    """From here on a further stop signal is ignored: the cleanup must finish (an impatient
    second Ctrl-C would otherwise leave processes and namespaces behind)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def drive(bed, timeline, events, applied, duration):
    """Applies the scenario's events on time until the stream has played whole (or its
    tail's allowance has passed)."""
    end = bed.t0 + duration + 15  # the stream's tail, then give up
    while time.time() < end:
        t = time.time() - bed.t0
        while events and events[0]["at_s"] <= t:
            ev = events.pop(0)
            apply_links(bed, ev.get("set") or {})
            applied.append((ev["at_s"], time.time() - bed.t0))
            if ev.get("note") != "":  # a trace's step that only moved delays says nothing
                timeline.say(f"scenario: {ev.get('note') or ev.get('set')}")
        if t > duration and bed.delivered_bytes() >= os.path.getsize(bed.media):
            break
        time.sleep(0.02)


def keep_running(bed, out):
    """--keep-running: says how to reach everything, then waits for a stop signal."""
    print("\nedge-demo: --keep-running: the edge stays up until Ctrl-C (or SIGTERM, SIGHUP)")
    print(f"  smigctl --smm={bed.sock('migrator')} --pmm={bed.sock('proximity')} "
          f"--mdm={bed.sock('decision')} {' '.join(bed.tls_flags())} migrations")
    replicas = [*REPLICAS["migrator"], *REPLICAS["decision"]]
    print(f"  gRPC (reflection, health): {bed.sock('proximity')} "
          + " ".join(bed.sock(n) for n in [*replicas, *bed.edges]))
    nodes = ["proximity", *replicas, "vehicle", *bed.edges]
    print(f"  /metrics (namespace {bed.ns['air']}): " + " ".join(
        f"{n}=http://{bed.metrics_address(n)}/metrics" for n in nodes))
    smm, mdm = bed.leader("migrator", timeout=0), bed.leader("decision", timeout=0)
    print(f"  etcd {bed.etcd_dir} (pid {bed.pid('etcd')}); the SMM leader is {smm}, the "
          f"MDM leader {mdm} (their smig_leader gauge). Replicas and pids: "
          + ", ".join(f"{n} {bed.pid(n)}" for n in replicas))
    print(f"  kill the SMM leader and watch the standby take over (about 1.5 s):\n"
          f"    sudo kill -9 {bed.pid(smm) if smm else '<pid>'}; sleep 2; "
          f"tail -n 3 {bed.logs}/{REPLICAS['migrator'][1 if smm == REPLICAS['migrator'][0] else 0]}.err")
    print(f"    {BIN['smigctl']} --smm={bed.sock('migrator')} {' '.join(bed.tls_flags())} sessions   "
          "# any replica answers; changes go to the leader")
    with open(os.path.join(out, "endpoints.json"), "w") as f:
        json.dump({"netns": bed.ns["air"],
                   "metrics": {n: bed.metrics_address(n) for n in nodes},
                   "grpc": {n: bed.sock(n) for n in ["proximity", *replicas, "vehicle",
                                                     *bed.edges]},
                   "smm": bed.sock("migrator"), "mdm": bed.sock("decision"),
                   "pids": {n: bed.pid(n) for n in ["etcd", *replicas]}}, f, indent=1)
    while True:
        time.sleep(1)


class Timeline:
    """Polls the services while the scenario runs; prints what happens as it happens."""

    def __init__(self, bed, out=print):
        self.bed = bed
        self.out = out
        self.samples = []       # (t, {edge: srtt_ms or None}, serving)
        self.phases_seen = {}   # migration id -> history entries printed
        self.failovers = 0
        self.serving = None
        self.next = {"prox": 0.0, "mig": 0.0, "sess": 0.0, "scrape": 0.0, "leader": 0.0}
        self.smm_leader = None

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
            p = self.bed.smigctl("proximity", VEHICLE_ID, check=False)
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
        if now >= self.next["leader"]:
            self.next["leader"] = now + 2.0
            leader = self.bed.leader("migrator", timeout=0)
            if leader != self.smm_leader:
                self.smm_leader = leader
                self.say(f"SMM leader: {leader or 'none (a takeover is under way)'}")

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


def goal_text(goal, unit="ms"):
    return "no goal" if goal is None else f"goal {goal:g} {unit}"


def print_summary(s):
    print("\nsummary")
    g = s["goals"]
    rows = [("scenario", s["scenario"]), ("sctp stack", s["sctp_stack"]),
            ("bytes sent / delivered / lost",
             f"{s['bytes_sent']} / {s['bytes_delivered']} / {s['bytes_lost']}"),
            ("duplicates delivered", s["duplicates_delivered"]),
            ("frames sent / decoded", f"{s['frames_sent']} / {s['frames_decoded']}"),
            ("continuity errors (decoder)", s["cc_errors"]),
            ("path failovers", f"{s['failovers']}" + (f" (goal >= {g['min_failovers']})"
                                                      if g["min_failovers"] else "")),
            ("reordered by loopback (put back)", s["reordered_by_loopback"]),
            ("player gap p99", f"{s['p99_gap_ms']} ms ({goal_text(g['p99_gap_ms'])})"),
            ("player gap p99.9", f"{s['p999_gap_ms']} ms ({goal_text(g['p999_gap_ms'])})"),
            ("largest player gap", f"{s['max_gap_ms']} ms ({goal_text(g['max_gap_ms'])})"),
            ("steady-state p99 gap (no goal)", f"{s['steady_p99_gap_ms']} ms"),
            ("nearest edge changes (s, edge)",
             ", ".join(f"{t:g} {e}" for t, e in s["nearest_changes"])),
            (f"  by the MDM's margin ({s['margin']:.0%})",
             ", ".join(f"{t:g} {e}" for t, e in s["margin_changes"])),
            ("follow the car within", f"dwell {s['dwell_s']:g} + {FOLLOW_SLACK_S:g} s")]
    for k, v in rows:
        print(f"  {k:36} {v}")
    print(f"\n  {'migration':10} {'trigger':8} {'from':8} {'to':8} {'at s':>7} {'took ms':>8} "
          f"{'stall ms':>9}  result   (stall {goal_text(g['stall_ms'])})")
    for n, m in enumerate(s["migrations"], 1):
        print(f"  {n:<10} {m['trigger']:8} {m['from']:8} {m['to']:8} {m['started_at_s']:7.1f} "
              f"{m['duration_ms']:8.0f} {m['stall_ms']:9.1f}  {m['result']}")
    if not s["migrations"]:
        print("  (none)")


def print_verdict(verdict):
    print("\nverdict")
    for line in verdict.lines():
        print(f"  {line}")


def trace_scenario(args, policy):
    """--trace: the chosen vehicle's drive as a scenario (smigbed.trace_drive)."""
    edges = args.edges or beside(args.trace, ".edges.yaml")
    if not args.edges and not os.path.exists(edges):
        raise PlacementError(f"{edges}: no edges file beside the trace: give --edges FILE.yaml "
                             "(its format: scripts/scenarios/city/city.edges.yaml)")
    trace, placement = load_fcd(args.trace), load_placement(edges)
    vehicle = args.vehicle or choose_vehicle(trace, placement, policy["margin"], dwell_s(policy))
    scenario = drive_for(trace, placement, vehicle, policy["margin"])
    print(f"edge-demo: trace {args.trace}: vehicle {vehicle} of {len(trace.vehicles)}, "
          f"{scenario['duration_s']:g} s past {len(placement.edges)} edges ({edges}), "
          f"{len(scenario['events'])} link changes")
    net = beside(args.trace, ".net.xml")

    def draw_fleet(summary, samples, path):
        draw_city(trace, placement, vehicle, net, summary, samples, path)
    return scenario, draw_fleet


def dwell_s(policy):
    """The policy's dwell ("3s") in seconds."""
    return float(str(policy["dwell"]).rstrip("s"))


def beside(trace_path, suffix):
    """The file beside a trace with `suffix` for its .fcd.xml (or .xml)."""
    for own in (".fcd.xml", ".xml"):
        if trace_path.endswith(own):
            return trace_path[:-len(own)] + suffix
    return trace_path + suffix


def main(argv=None):
    ap = argparse.ArgumentParser(prog="edge-demo", description=__doc__)
    ap.add_argument("--sctp-stack", default="userland", choices=["userland", "kernel", "auto"])
    ap.add_argument("--scenario", default=DEFAULT_SCENARIO)
    ap.add_argument("--out", default=None)
    ap.add_argument("--keep-running", action="store_true")
    ap.add_argument("--tls", action="store_true",
                    help="mutual TLS on every gRPC hop (services, agents, smigctl), with a CA "
                         "made for this run")
    ap.add_argument("--trace", help="a SUMO FCD file (sumo --fcd-output): drive one of its "
                    "vehicles instead of a scenario")
    ap.add_argument("--edges", help="with --trace: where the edges stand (YAML; default: the "
                    "trace's name with .edges.yaml for .fcd.xml or .xml)")
    ap.add_argument("--vehicle", help="with --trace: the vehicle's id (default: the one whose "
                    "drive changes nearest edge most)")
    args = ap.parse_args(argv)
    if (args.edges or args.vehicle) and not args.trace:
        ap.error("--edges and --vehicle go with --trace")
    if args.trace and args.scenario != DEFAULT_SCENARIO:
        ap.error("--trace and --scenario are two kinds of drive: give one")
    policy = {"latency_weight": 1, "bandwidth_weight": 0, "load_weight": 0.1, "margin": 0.3,
              "dwell": "3s", "max_load": 0.9, "mode": "MODE_AUTOMATIC"}
    try:
        scenario, draw_fleet = (trace_scenario(args, policy) if args.trace
                                else (load_scenario(args.scenario), None))
    except (OSError, ScenarioError, yaml.YAMLError, TraceError, PlacementError) as e:
        print(f"edge-demo: {e}", file=sys.stderr)
        return 2
    out = args.out or f"/tmp/smig-demo-{time.strftime('%Y%m%d-%H%M%S')}"
    duration = float(scenario["duration_s"])
    policy.update(scenario.get("policy") or {})
    failover = json.loads(os.environ["SMIG_FAILOVER"]) if os.environ.get("SMIG_FAILOVER") else None
    bed = Bed(out, stack=args.sctp_stack, edges=len(scenario["edge_names"]), failover=failover,
              tls=args.tls)
    print(f"edge-demo: scenario {scenario.get('name', args.scenario)} ({duration:.0f} s, "
          f"{len(bed.edges)} edges, radios cell + dsrc), {args.sctp_stack} SCTP, "
          f"{'mutual TLS on every gRPC hop, ' if args.tls else ''}output in {out}")
    # A stop signal (Ctrl-C, SIGTERM, SIGHUP) ends the drive where it is: everything is
    # stopped and removed as at its end, and the summary says it was interrupted.
    for sig in STOP_SIGNALS:
        signal.signal(sig, _raise_interrupted)
    interrupted = None
    timeline = None
    applied = []  # (scheduled s, applied s) of each event, in order
    start_edge = None
    tls_enforced = None
    try:
        bed.start(media_seconds=int(duration), policy=policy,
                  capacities=scenario.get("capacities"))
        # --tls: every server must answer the bed's certificate and refuse plaintext.
        tls_enforced = bed.tls_enforced() if args.tls else None
        initial = {f"{e}/{r}": link for e in bed.edges for r, link in (scenario.get("links") or {}).items()}
        apply_links(bed, initial)
        events = list(scenario.get("events") or [])
        while events and events[0]["at_s"] <= 0:  # before the session starts: on time
            ev = events.pop(0)
            apply_links(bed, ev.get("set") or {})
            applied.append((ev["at_s"], ev["at_s"]))
        start_edge = scenario.get("start_edge") or nearest(scenario, 0)
        bed.open_session(start_edge, redundancy=scenario.get("redundancy"))
        timeline = Timeline(bed)
        timeline.say(f"session {SESSION} opened on {start_edge} (redundancy "
                     f"{scenario.get('redundancy') or 'auto, the default'}); the car starts moving")
        # The timeline polls on its own thread: on a slow (emulated) machine each smigctl
        # call takes a while, and the scenario's link changes must still happen on time.
        timeline.start()
        drive(bed, timeline, events, applied, duration)
    except Interrupted as e:
        interrupted = e
        if e.name == "SIGHUP":  # the terminal may be gone: what is left to say goes to a file
            sys.stdout = sys.stderr = open(os.path.join(out, "after-sighup.log"), "w", buffering=1)
        print(f"\nedge-demo: {e}: stopping every process and removing the namespaces",
              file=sys.stderr)
    except (RuntimeError, OSError) as e:
        _hold_signals()
        print(f"edge-demo: {e}", file=sys.stderr)
        if timeline is not None:
            timeline.stop()
        bed.stop()
        return 1
    if interrupted is not None and timeline is None:
        _hold_signals()
        bed.stop()  # before the session began: nothing to summarise but the interruption
        with open(os.path.join(out, "summary.json"), "w") as f:
            json.dump({"scenario": scenario.get("name", args.scenario),
                       "interrupted": interrupted.name, "exit_codes": bed.exit_codes(),
                       "verdict": {"result": "INTERRUPTED", "failed": [], "not_judged": []}},
                      f, indent=1)
        print(f"\n  {out}/summary.json: interrupted by {interrupted.name} before the session began")
        return interrupted.exit_code
    if interrupted is not None:
        _hold_signals()
    try:
        timeline.stop()
        timeline.final_failovers()
        migrations = migrations_from_smm(bed)
    except (RuntimeError, OSError) as e:
        _hold_signals()
        print(f"edge-demo: {e}", file=sys.stderr)
        if interrupted is None:
            bed.stop()
            return 1
        # A signal to the whole process group (a terminal's Ctrl-C) has stopped the
        # services too: the summary goes on without the SMM's record of the migrations.
        migrations = []
    if args.keep_running and interrupted is None:
        try:
            keep_running(bed, out)
        except Interrupted:
            pass  # how --keep-running ends: not an interruption of the drive
    _hold_signals()
    bed.stop()
    summary = analyse(bed, migrations, timeline.failovers)
    summary["scenario"] = scenario.get("name", args.scenario)
    # Judged against when the links really changed (a loaded machine applies an event a
    # little after its scheduled time; the lateness is reported).
    summary["nearest_changes"] = nearest_changes(as_applied(scenario, applied))
    summary["margin_changes"] = nearest_changes(as_applied(scenario, applied), policy["margin"])
    summary["margin"] = policy["margin"]
    summary["event_lateness_max_s"] = round(max([a - s for s, a in applied] or [0.0]), 3)
    summary["dwell_s"] = dwell_s(policy)
    summary["duration_s"] = duration
    summary["start_edge"] = start_edge
    summary["redundancy"] = scenario.get("redundancy") or "auto"
    summary["tls"] = args.tls
    if args.tls:
        summary["tls_enforced"] = tls_enforced
    # What the drive is judged against (smigbed.verdict): absolute, from the scenario.
    summary["goals"] = scenario["goals"]
    summary["follow_slack_s"] = FOLLOW_SLACK_S
    summary["exit_codes"] = bed.exit_codes()
    # Set by scripts/run-kernel-test when the project's VM (scripts/vm) runs under TCG: gaps then measure
    # the emulator, and the checks say so instead of judging them.
    summary["emulated_cpu"] = bool(os.environ.get("SMIG_EMULATED_CPU"))
    verdict = judge(summary)
    summary["verdict"] = {"result": "FAIL" if verdict.failures else "PASS",
                          "failed": verdict.failures, "not_judged": verdict.skipped}
    if interrupted is not None:
        # A cut-short drive is judged as far as it went, but never passes.
        summary["interrupted"] = interrupted.name
        summary["verdict"]["result"] = "INTERRUPTED"
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    draw(bed, timeline.samples, summary, os.path.join(out, "timeline.png"))
    if draw_fleet is not None:
        draw_fleet(summary, timeline.samples, os.path.join(out, "fleet.png"))
    print_summary(summary)
    print_verdict(verdict)
    print(f"\n  {out}/summary.json, {out}/timeline.png"
          f"{f', {out}/fleet.png' if draw_fleet else ''}, logs in {out}/logs")
    if interrupted is not None:
        print(f"  interrupted by {interrupted.name}: the drive was cut short")
        return interrupted.exit_code
    return verdict.exit_code


if __name__ == "__main__":
    sys.exit(main())
