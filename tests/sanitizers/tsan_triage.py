#!/usr/bin/python3
"""Sorts ThreadSanitizer reports by whose code made the racing accesses.

  tsan_triage.py LOG...     (the stderr of TSan-built test binaries)

Each racing access belongs to the innermost frame of its stack that is not a header
(/usr/include) or TSan itself: smig's when that frame lies in this repository. A report is
smig's when both accesses are; a handoff through a library when one is (typically gRPC
allocated a call on one thread and handed it to a server thread of smig's handlers); the
libraries' when neither is. Debian's gRPC, protobuf, glog and glibc are not built with
TSan, so their own locks, queues and atomics (gRPC's combiners and closures, glibc's tzset
lock) are invisible and their handoffs look like races. Abseil
must be the instrumented build (scripts/build-tsan-abseil): without it every
absl::Mutex-guarded access of smig's own shows as a race, and this triage says so.

Prints the counts and each smig report in full; exit status 1 if there is any.
"""
import re
import sys

REPO = re.escape(__file__.rsplit("/tests/sanitizers/", 1)[0])
FRAME = re.compile(r"^\s+#\d+ .* (\S+) \((\S+)\+0x[0-9a-f]+\)$", re.M)  # path, module


def accesses(report):
    """The stacks of the racing accesses: the report's first two stacks."""
    stacks = re.split(r"\n(?=  \S)", report)
    return [s for s in stacks if re.match(r"  (Atomic )?(Read|Write|Previous)", s)][:2]


def owner(stack):
    for path, module in FRAME.findall(stack):
        if path.startswith("/usr/include/") or module.startswith("libtsan"):
            continue
        if re.match(REPO + "/(?!build-tsan-deps/)", path):
            return "smig"
        if module.startswith("libabsl") and "/build-tsan-deps/" not in path:
            return "uninstrumented abseil"
        return "libraries"
    return "libraries"


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    counts, smig = {}, []
    for name in sys.argv[1:]:
        text = open(name, errors="replace").read()
        for report in text.split("WARNING: ThreadSanitizer")[1:]:
            report = report.split("SUMMARY: ThreadSanitizer")[0]
            owners = [owner(s) for s in accesses(report)]
            if "uninstrumented abseil" in owners:
                who = "uninstrumented abseil"
            elif owners and all(o == "smig" for o in owners):
                who = "smig"
            elif "smig" in owners:
                who = "handoffs through libraries"
            else:
                who = "libraries"
            counts[who] = counts.get(who, 0) + 1
            if who == "smig":
                smig.append(f"{name}: WARNING: ThreadSanitizer{report}")
    for report in smig:
        print(report)
    print("tsan_triage: " + ", ".join(f"{n} {who}" for who, n in sorted(counts.items()))
          if counts else "tsan_triage: no reports")
    if counts.get("uninstrumented abseil"):
        print("tsan_triage: abseil is not the TSan build: run scripts/build-tsan-abseil and "
              "set LD_LIBRARY_PATH", file=sys.stderr)
    return 1 if smig or counts.get("uninstrumented abseil") else 0


if __name__ == "__main__":
    sys.exit(main())
