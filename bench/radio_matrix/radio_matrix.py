"""radio-matrix: a two-radio car on ONE edge over real emulated links (smig-linkemu), one
cell at a time: cell one-way delay x cell loss (cell at 20 Mbit/s) x dsrc behaviour (dead,
alive, fading, flapping), each cell a fresh smigbed Bed streaming a paced MPEG-TS VOD for
--seconds (default 30) to a real decoder. Per cell: bytes lost, duplicates, frames decoded,
continuity errors, the player's gaps, the vehicle's failovers against the real path
deaths, goodput, bytes on air per radio, and the verdict against the issue's goals
(radio_matrix.goals). See docs/benchmarks.md, "Radio matrix".

    bench/radio-matrix [--cell-delay 10,30,50,75] [--cell-loss 0,0.5,1,2]
                       [--dsrc dead,alive,fading,flapping] [--seconds 30 | --quick]
                       [--sctp-stack userland|kernel] [--seed N] [--redundancy off|auto|always]
                       [--out DIR] [--keep-played]

DIR (default /tmp/smig-radio-matrix-<time>) gets results.json and results.md, rewritten
after every cell (an interrupted run keeps every finished cell), and cells/<id>/ with each
cell's arrivals, link samples and logs. One line is printed as each cell finishes.
Exit status: 0 when every cell ran (whatever its verdict: this is a benchmark), 1 when a
cell could not run, 2 on bad usage, 130 when interrupted. Needs root (network namespaces,
NFQUEUE); run it under `flock /tmp/smig-nettest.lock` where others run testbeds too.
"""
import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import zlib
import random

from smigbed import analysis
from smigbed.testbed import BIN, BUILD, ROOT, Bed, make_media

from . import goals

EDGE = "edge-1"
COMMAND_ENV = "SMIG_RADIO_MATRIX_COMMAND"  # the user's command line, carried into the VM
# A down flip of dsrc is a real path death when dsrc carried the stream just before it:
# at least this many bytes edge->car in the last DEATH_WINDOW_S (the stream is about
# 250 kB/s; heartbeats are a few hundred bytes a second).
DEATH_WINDOW_S = 0.4
DEATH_MIN_BYTES = 20000
SAMPLE_EVERY_S = 0.1


# ------------------------------------------------------------------ the cells
def number_list(text):
    out = []
    for part in text.split(","):
        try:
            v = float(part)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{part}' is not a number")
        if v < 0:
            raise argparse.ArgumentTypeError(f"'{part}' is negative")
        out.append(int(v) if v == int(v) else v)
    return out


def dsrc_list(text):
    out = [m.strip() for m in text.split(",")]
    for m in out:
        if m not in goals.DSRC:
            raise argparse.ArgumentTypeError(
                f"unknown dsrc behaviour '{m}' (known: {', '.join(goals.DSRC_MODES)})")
    return out


def cells(delays, losses, dsrcs):
    return [{"id": goals.cell_id(d, l, m), "cell_delay_ms": d, "cell_loss_pct": l,
             "cell_rate_mbit": goals.CELL_RATE_MBIT, "dsrc": m}
            for d in delays for l in losses for m in dsrcs]


def flap_schedule(seed, until_s):
    """dsrc flapping: [(t_s, up)] after the session opens, dsrc up at 0; each period lasts
    uniformly FLAP_S seconds, from random.Random(seed): the same seed, the same flips."""
    rng = random.Random(seed)
    t, up, out = 0.0, True, []
    while True:
        t += rng.uniform(*goals.FLAP_S)
        if t > until_s:
            return out
        up = not up
        out.append((round(t, 3), up))


def link_seed(seed, cid):
    """smig-linkemu's loss seed for one cell: the run's seed and the cell, never 0."""
    return zlib.crc32(f"{seed}:{cid}".encode()) or 1


# ------------------------------------------------------------------ measuring
def by_link(stats):
    return {s["link"]: s for s in stats}


def air(before, after):
    """Bytes and packets put on air per radio between two linkemu `stats` answers, both
    directions, counting every packet offered to the link (`packets`/`bytes`: dropped
    ones too: lost, down, overflow), and what passed."""
    b, a = by_link(before), by_link(after)
    out = {}
    for link in a:
        per = {}
        for d in ("out", "in"):
            per[d] = {k: a[link][d][k] - b.get(link, {}).get(d, {}).get(k, 0)
                      for k in ("packets", "bytes", "passed", "passed_bytes", "dropped")}
        out[link] = {"packets": per["out"]["packets"] + per["in"]["packets"],
                     "bytes": per["out"]["bytes"] + per["in"]["bytes"],
                     "edge_to_car": per["out"], "car_to_edge": per["in"]}
    return out


def path_counts(metrics):
    """smig_path_failovers_total (all roles) and smig_path_events_total by kind, from a
    /metrics scrape."""
    failovers, events = 0, {}
    for series, v in metrics.items():
        if series.startswith("smig_path_failovers_total"):
            failovers += int(v)
        elif series.startswith("smig_path_events_total") and 'kind="' in series:
            kind = series.split('kind="', 1)[1].split('"', 1)[0]
            events[kind] = events.get(kind, 0) + int(v)
    return {"failovers": failovers, "path_events": events}


def scrape_paths(bed, node):
    """path_counts() of a node; None if its /metrics did not answer (a slow, emulated
    machine gets three 10 s tries)."""
    for _ in range(3):
        m = bed.scrape(node, timeout_s=10)
        if m:
            return path_counts(m)
    return None


def gap_stats(arrivals):
    """The player's gaps (ms) after the stream's first second: p50, p99, p99.9, max."""
    g = analysis.steady_gaps(arrivals, [])
    if not g:
        return {"n": 0, "p50": None, "p99": None, "p99.9": None, "max": None}
    return {"n": len(g), "p50": round(analysis.percentile(g, 50) * 1000, 2),
            "p99": round(analysis.percentile(g, 99) * 1000, 2),
            "p99.9": round(analysis.percentile(g, 99.9) * 1000, 2),
            "max": round(max(g) * 1000, 2)}


class Deaths:
    """Samples what each link carried edge->car (linkemu's passed bytes) and decides, at a
    down flip, whether dsrc carried the stream then (a real path death)."""

    def __init__(self, bed):
        self.bed = bed
        self.samples = []  # (t since session open, {link: passed bytes edge->car})

    def sample(self):
        stats = by_link(self.bed.link_stats(EDGE))
        self.samples.append((round(time.time() - self.bed.t0, 3),
                             {k: v["out"]["passed_bytes"] for k, v in stats.items()}))

    def dsrc_carried(self):
        self.sample()
        t, now = self.samples[-1]
        past = [b for s, b in self.samples if s <= t - DEATH_WINDOW_S]
        before = past[-1] if past else {"dsrc": 0}
        return now["dsrc"] - before.get("dsrc", 0) >= DEATH_MIN_BYTES


def set_links(bed, cell):
    bed.set_link(EDGE, "cell", up=True, delay_ms=cell["cell_delay_ms"],
                 loss_pct=cell["cell_loss_pct"], rate_mbit=goals.CELL_RATE_MBIT)
    d = goals.DSRC[cell["dsrc"]]
    if d is None:
        bed.set_link(EDGE, "dsrc", up=False, delay_ms=2, loss_pct=0, rate_mbit=goals.DSRC_RATE_MBIT)
    else:
        bed.set_link(EDGE, "dsrc", up=True, delay_ms=d["delay_ms"], loss_pct=d["loss_pct"],
                     rate_mbit=goals.DSRC_RATE_MBIT)


def run_cell(args, cell, cell_dir, media, frames_sent):
    """One cell on a fresh bed; the measured numbers (no verdict)."""
    bed = Bed(cell_dir, stack=args.sctp_stack, edges=1, log=lambda *a, **k: None,
              linkemu_seed=link_seed(args.seed, cell["id"]))
    res = {"flips": [], "down_flips": 0, "path_deaths": 0}
    deaths = Deaths(bed)
    try:
        bed.start(media_seconds=args.seconds)
        set_links(bed, cell)
        # Nothing slow between the bed's start and the session: the decoder gives up after
        # smigbed.testbed.DECODER_IDLE_S without input (a /metrics scrape takes seconds in
        # the emulated VM). The
        # failover counters count session associations only, so they start at 0 here.
        air0 = bed.link_stats(EDGE)
        bed.open_session(EDGE, redundancy=args.redundancy)
        want = os.path.getsize(media)
        deadline = bed.t0 + args.seconds + 30
        flips = flap_schedule(args.seed, args.seconds + 30) if cell["dsrc"] == "flapping" else []
        next_sample = 0.0
        while time.time() < deadline and bed.delivered_bytes() < want:
            t = time.time() - bed.t0
            while flips and flips[0][0] <= t:
                at, up = flips.pop(0)
                if not up:
                    res["down_flips"] += 1
                    if deaths.dsrc_carried():
                        res["path_deaths"] += 1
                bed.set_link(EDGE, "dsrc", up=up)
                res["flips"].append({"at_s": at, "applied_s": round(time.time() - bed.t0, 3),
                                     "up": up})
            if t >= next_sample:
                deaths.sample()
                next_sample = t + SAMPLE_EVERY_S
            time.sleep(0.01)
        res["complete"] = bed.delivered_bytes() >= want
        res["streamed_wall_s"] = round(time.time() - bed.t0, 3)
        res["air"] = air(air0, bed.link_stats(EDGE))
        # The vehicle's failovers are judged; its and the edge's path events (since the
        # bed started, probe associations included) are kept for whoever looks into a
        # failed cell.
        paths = {n: scrape_paths(bed, n) for n in ("vehicle", EDGE)}
        res["failovers"] = paths["vehicle"]["failovers"] if paths["vehicle"] else None
        res["path_events"] = {n: p and p["path_events"] for n, p in paths.items()}
        res["edge_failovers"] = paths[EDGE]["failovers"] if paths[EDGE] else None
    finally:
        bed.stop()
        with open(os.path.join(cell_dir, "link_samples.json"), "w") as f:
            json.dump(deaths.samples, f)

    with open(media, "rb") as f:
        sent = f.read()
    played_path = os.path.join(cell_dir, "played.ts")
    with open(played_path, "rb") as f:
        played = f.read()
    arrivals = analysis.read_arrivals(os.path.join(cell_dir, "arrivals.txt"))
    lost, dups = analysis.compare_streams(sent, played)
    frames, cc = analysis.decoder_result(os.path.join(bed.logs, "decoder.err"))
    streaming_s = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else 0.0
    res.update({
        "bytes_sent": len(sent), "bytes_delivered": len(played), "bytes_lost": lost,
        "duplicates_delivered": dups, "frames_sent": frames_sent, "frames_decoded": frames,
        "cc_errors": cc, "gap_ms": gap_stats(arrivals),
        "streaming_s": round(streaming_s, 3),
        "goodput_mbit": round(len(played) * 8 / streaming_s / 1e6, 3) if streaming_s else 0.0,
        "reordered_by_loopback": analysis.recorder_reordered(os.path.join(bed.logs, "recorder.log")),
        "exit_codes": bed.exit_codes(),
    })
    if not args.keep_played:
        os.remove(played_path)
    return res


# ------------------------------------------------------------------ reporting
def write_atomically(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def fmt(v, digits=1):
    return "–" if v is None else f"{v:.{digits}f}"


def verdict_text(c):
    if c.get("error"):
        return f"ERROR: {c['error']}"
    j = c["judged"]
    if j["verdict"] == "PASS":
        return "PASS"
    if j["verdict"] == "FAIL":
        return "FAIL: " + "; ".join(j["failed"] + [f"{x} (emulated, not judged)" for x in j["not_judged"]])
    return "NOT JUDGED (emulated timing): " + "; ".join(j["not_judged"])


def cell_line(n, total, c):
    """The progress line printed as a cell finishes."""
    head = (f"[{n}/{total}] cell {c['cell_delay_ms']:g} ms loss {c['cell_loss_pct']:g} % "
            f"dsrc {c['dsrc']}: ")
    if c.get("error"):
        return head + verdict_text(c)
    g = c["gap_ms"]
    return (head + f"{verdict_text(c)} | lost {c['bytes_lost']} B, dup {c['duplicates_delivered']}, "
            f"frames {c['frames_decoded']}/{c['frames_sent']}, cc {c['cc_errors']}, gap "
            f"p50/p99/p99.9/max {fmt(g['p50'])}/{fmt(g['p99'])}/{fmt(g['p99.9'])}/{fmt(g['max'])} ms, "
            f"failovers {c['failovers']}/{c['path_deaths']} deaths, "
            f"{c['goodput_mbit']:.2f} Mbit/s ({c['wall_s']:.0f} s)")


def markdown(doc):
    """The results as Markdown: what ran, then one row per cell."""
    stack = doc["sctp_stack"] + (" (**emulated**: the project's VM under TCG; timing "
                                 "measures the emulator)" if doc["emulated"] else "")
    lines = [f"Command: `{doc['command']}`  ", f"SCTP stack: {stack}  ",
             f"{doc['seconds']} s of streaming per cell, seed {doc['seed']}, commit "
             f"{doc['commit']}, {doc['started']}, {doc['machine']}  "]
    if doc["not_a_benchmark"]:
        lines.append("**--quick: shorter than 30 s per cell, not a benchmark.**  ")
    lines.append(f"Redundancy policy: {doc.get('redundancy') or 'auto'}  ")
    if not doc["complete"]:
        lines.append(f"**Incomplete: {len(doc['cells'])} of {doc['cells_planned']} cells ran.**  ")
    lines += ["", "| cell delay | cell loss | dsrc | RTT | lost B | dup | frames | CC | "
              "gap p50 / p99 / p99.9 / max (ms) | failovers / deaths | goodput Mbit/s | "
              "air cell / dsrc (MB) | verdict |",
              "|---:|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---|---|"]
    for c in doc["cells"]:
        head = f"| {c['cell_delay_ms']:g} ms | {c['cell_loss_pct']:g} % | {c['dsrc']} | "
        if c.get("error"):
            lines.append(head + "| | | | | | | | | " + verdict_text(c) + " |")
            continue
        g, a = c["gap_ms"], c.get("air", {})
        air_mb = " / ".join(fmt(a.get(r, {}).get("bytes", 0) / 1e6, 2) for r in ("cell", "dsrc"))
        lines.append(
            head + f"{c['judged']['limits']['rtt_ms']:g} ms | {c['bytes_lost']:,}"
            f"{' (unfinished)' if c.get('complete') is False else ''} | "
            f"{c['duplicates_delivered']} | {c['frames_decoded']}/{c['frames_sent']} | {c['cc_errors']} | "
            f"{fmt(g['p50'])} / {fmt(g['p99'])} / {fmt(g['p99.9'])} / {fmt(g['max'])} | "
            f"{c['failovers']} / {c['path_deaths']} | {c['goodput_mbit']:.2f} | {air_mb} | "
            f"{verdict_text(c)} |")
    return "\n".join(lines) + "\n"


def save(out, doc):
    write_atomically(os.path.join(out, "results.json"), json.dumps(doc, indent=1) + "\n")
    write_atomically(os.path.join(out, "results.md"), markdown(doc))


# ------------------------------------------------------------------ main
def parse_args(argv):
    ap = argparse.ArgumentParser(prog="radio-matrix", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cell-delay", type=number_list, default=list(goals.CELL_DELAYS_MS),
                    help="cell one-way delays, ms, comma-separated (default 10,30,50,75)")
    ap.add_argument("--cell-loss", type=number_list, default=list(goals.CELL_LOSSES_PCT),
                    help="cell loss per packet and direction, %%, comma-separated (default 0,0.5,1,2)")
    ap.add_argument("--dsrc", type=dsrc_list, default=list(goals.DSRC_MODES),
                    help="dsrc behaviours, comma-separated (default dead,alive,fading,flapping)")
    ap.add_argument("--seconds", type=int, default=None,
                    help="streaming per cell, s (default 30; under 30 needs --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="allow --seconds under 30 (default 10); results say: not a benchmark")
    ap.add_argument("--sctp-stack", choices=["userland", "kernel"], default="userland",
                    help="kernel: the whole run inside the project's VM (scripts/vm) unless "
                         "this host's kernel has SCTP; timing there is emulated")
    ap.add_argument("--seed", type=int, default=1,
                    help="the flapping schedule's and smig-linkemu's loss seed (default 1)")
    ap.add_argument("--redundancy", choices=goals.REDUNDANCY_POLICIES, default="auto",
                    help="the session's redundancy policy (default auto, the SMM's default); "
                         "under always a cell with dsrc alive, fading or flapping is judged "
                         "by the redundancy goals (radio_matrix.goals)")
    ap.add_argument("--out", default=None, help="output directory (default /tmp/smig-radio-matrix-<time>)")
    ap.add_argument("--keep-played", action="store_true", help="keep each cell's played.ts")
    ap.add_argument("--in-vm", action="store_true", help=argparse.SUPPRESS)  # the kernel run's inner half
    args = ap.parse_args(argv)
    if args.seconds is None:
        args.seconds = 10 if args.quick else 30
    if args.seconds < 30 and not args.quick:
        ap.error(f"--seconds {args.seconds}: a benchmark cell streams at least 30 s "
                 "(--quick allows less and marks the results as not a benchmark)")
    if args.seconds < 5:
        ap.error("--seconds must be at least 5")
    return args


def commit():
    try:
        r = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                           capture_output=True, text=True, timeout=10)
        return r.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def media_path(seconds):
    media_dir = os.environ.get("SMIG_MEDIA_DIR") or os.path.join(BUILD, "media")
    return os.path.join(media_dir, f"testsrc2-{seconds}s.ts")


def run_in_vm(args, argv, out):
    """--sctp-stack kernel: this same command inside the project's VM (as
    tests/system/run_demo_test.sh runs the demo), OUT shared read-write; the media is made
    here first (the VM's / is read-only)."""
    make_media(media_path(args.seconds), args.seconds)
    n = len(cells(args.cell_delay, args.cell_loss, args.dsrc))
    env = dict(os.environ)
    env.update({
        "KVM_SCTP_RW": out,
        "KVM_SCTP_EXTRA_MODULES": "bridge nfnetlink_queue nft_compat xt_NFQUEUE",
        "KVM_SCTP_MEM": os.environ.get("KVM_SCTP_MEM", "2048"),
        # Emulated cells run slower than real time: a generous bound per cell.
        "KVM_SCTP_TIMEOUT": os.environ.get("KVM_SCTP_TIMEOUT", str(600 + n * (args.seconds + 240))),
        COMMAND_ENV: env.get(COMMAND_ENV) or shlex.join(["bench/radio-matrix", *argv]),
    })
    cmd = [os.path.join(ROOT, "scripts", "run-kernel-test"),
           os.path.join(BUILD, "dataplane", "tools", "sctpcat", "smig-sctpcat"),
           "/usr/bin/python3", "-m", "radio_matrix.radio_matrix", *argv, "--out", out, "--in-vm"]
    try:
        return subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        return 130


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("radio-matrix: needs root (network namespaces, iptables NFQUEUE)", file=sys.stderr)
        return 2
    missing = [p for p in BIN.values() if not os.access(p, os.X_OK)]
    if missing:
        print(f"radio-matrix: not built: {', '.join(missing)} (run scripts/build)", file=sys.stderr)
        return 2
    out = os.path.abspath(args.out or f"/tmp/smig-radio-matrix-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(out, exist_ok=True)
    if args.sctp_stack == "kernel" and not args.in_vm:
        return run_in_vm(args, argv, out)

    def on_term(*_):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    plan = cells(args.cell_delay, args.cell_loss, args.dsrc)
    emulated = bool(os.environ.get("SMIG_EMULATED_CPU"))
    doc = {
        "bench": "radio_matrix",
        "command": os.environ.get(COMMAND_ENV) or shlex.join(["bench/radio-matrix", *argv]),
        "sctp_stack": args.sctp_stack, "emulated": emulated, "not_a_benchmark": args.quick,
        "seconds": args.seconds, "seed": args.seed, "redundancy": args.redundancy,
        "cell_rate_mbit": goals.CELL_RATE_MBIT, "dsrc_rate_mbit": goals.DSRC_RATE_MBIT,
        "dsrc_modes": goals.DSRC, "flap_s": goals.FLAP_S,
        "commit": commit(), "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "machine": f"{os.cpu_count()} CPUs, Linux {os.uname().release}"
                   + (" (VM under TCG)" if emulated else ""),
        "cells_planned": len(plan), "complete": False, "interrupted": False, "cells": [],
    }
    print(f"radio-matrix: {len(plan)} cells x {args.seconds} s, {args.sctp_stack} SCTP"
          f"{' (emulated)' if emulated else ''}{', --quick: NOT A BENCHMARK' if args.quick else ''}"
          f", output in {out}", flush=True)
    media = make_media(media_path(args.seconds), args.seconds)
    frames_sent = analysis.count_frames(media)
    save(out, doc)
    errors = 0
    try:
        for n, cell in enumerate(plan, 1):
            cell_dir = os.path.join(out, "cells", cell["id"])
            os.makedirs(cell_dir, exist_ok=True)
            started = time.time()
            result = dict(cell)
            try:
                result.update(run_cell(args, cell, cell_dir, media, frames_sent))
                result["judged"] = goals.judge(cell, result, emulated=emulated,
                                               redundancy=args.redundancy)
                result["verdict"] = result["judged"]["verdict"]
            except (RuntimeError, OSError, ValueError) as e:
                errors += 1
                result.update({"error": str(e).splitlines()[0][:300], "verdict": "ERROR"})
            result["wall_s"] = round(time.time() - started, 1)
            doc["cells"].append(result)
            save(out, doc)
            print(cell_line(n, len(plan), result), flush=True)
    except KeyboardInterrupt:
        doc["interrupted"] = True
        save(out, doc)
        print(f"radio-matrix: interrupted; {len(doc['cells'])} finished cells in {out}/results.json",
              file=sys.stderr)
        return 130
    doc["complete"] = True
    save(out, doc)
    print(f"\nradio-matrix: {out}/results.json, {out}/results.md\n")
    print(markdown(doc))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
