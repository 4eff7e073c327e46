#!/usr/bin/env python3
"""The edge demo ends cleanly on a stop signal (issue 16, item 6): SIGTERM to its pid in
mid-drive, SIGHUP to its whole process group (a terminal hanging up), and SIGTERM while it
is still starting. Each time it must exit 128 + the signal within the time limit, leave no
process of its own alive and no network namespace behind, and write a summary.json that
says it was interrupted.

    signal_exit_test.py OUT_DIR          (needs root; exits 77 without it)
"""
import json
import os
import signal
import subprocess
import sys
import time

EXIT_LIMIT_S = 120  # the bed's own stop waits up to 15 s per node, the decoder 15 s


def namespaces():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def children_of(root):
    """Every live descendant of `root`: {pid: (start time, command)}."""
    parent, info = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(d)] = int(fields[1])
        info[int(d)] = (fields[19], cmd)
    found, todo = {}, [root]
    while todo:
        p = todo.pop()
        for c, pp in parent.items():
            if pp == p and c not in found:
                found[c] = info[c]
                todo.append(c)
    return found


def alive(pid, start):
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    fields = stat[stat.rindex(")") + 2:].split()
    return fields[19] == start and fields[0] != "Z"


def run_case(out, name, sig, to_group, after):
    """Starts the demo, sends `sig` once `after(log, processes seen)` is true, and checks
    the aftermath."""
    before_ns = namespaces()
    log_path = os.path.join(out, f"{name}.log")
    demo_out = os.path.join(out, name)
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "smigbed.edge_demo", "--out", demo_out],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    seen = {}
    deadline = time.time() + 180
    while time.time() < deadline and proc.poll() is None:
        seen.update(children_of(proc.pid))
        with open(log_path) as f:
            if after(f.read(), len(seen)):
                break
        time.sleep(0.5)
    if proc.poll() is not None:
        return [f"{name}: the demo ended (exit {proc.returncode}) before the signal; see {log_path}"]
    seen.update(children_of(proc.pid))
    sent = time.time()
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        os.kill(proc.pid, sig)
    try:
        rc = proc.wait(timeout=EXIT_LIMIT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return [f"{name}: still running {EXIT_LIMIT_S} s after {sig.name}; see {log_path}"]
    took = time.time() - sent
    failures = []
    if rc != 128 + sig:
        failures.append(f"{name}: exit {rc}, want {128 + sig} (128 + {sig.name})")
    left = [f"{pid} {cmd[:80]}" for pid, (start, cmd) in seen.items() if alive(pid, start)]
    if left:
        failures.append(f"{name}: {len(left)} of its {len(seen)} processes left: " + "; ".join(left))
        for pid, (start, _) in seen.items():
            if alive(pid, start):
                os.kill(pid, signal.SIGKILL)
    extra = namespaces() - before_ns
    if extra:
        failures.append(f"{name}: namespaces left: {sorted(extra)}")
        for ns in extra:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    try:
        with open(os.path.join(demo_out, "summary.json")) as f:
            summary = json.load(f)
        if summary.get("interrupted") != sig.name:
            failures.append(f"{name}: summary.json says interrupted={summary.get('interrupted')!r}")
        if summary.get("verdict", {}).get("result") != "INTERRUPTED":
            failures.append(f"{name}: verdict {summary.get('verdict')}, want INTERRUPTED")
    except (OSError, ValueError) as e:
        failures.append(f"{name}: no summary: {e}")
    print(f"{name}: {sig.name} to the {'process group' if to_group else 'pid'}: exit {rc} "
          f"after {took:.1f} s, {len(seen)} processes seen, {len(left)} left, "
          f"{len(extra)} namespaces left{'' if failures else ': PASS'}", flush=True)
    return failures


def main():
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        return 77
    out = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "/tmp/smig-signal-exit")
    subprocess.run(["rm", "-rf", out])
    os.makedirs(out)
    def mid_drive(log, _):
        if "opened on" not in log:
            return False
        time.sleep(3)  # the stream is flowing and the timeline polling
        return True
    failures = []
    failures += run_case(out, "sigterm-mid-drive", signal.SIGTERM, False, mid_drive)
    failures += run_case(out, "sighup-to-the-group", signal.SIGHUP, True, mid_drive)
    # Namespaces made and several nodes up, the session not open yet.
    failures += run_case(out, "sigterm-while-starting", signal.SIGTERM, False,
                         lambda log, seen: seen >= 6 and "opened on" not in log)
    for f in failures:
        print(f"FAIL {f}")
    print("PASS" if not failures else f"{len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
