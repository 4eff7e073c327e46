"""Checks an edge-demo summary.json with the demo's own verdict (smigbed.verdict, the one
implementation): the session followed the car (a DONE migration to each lasting nearest
edge within dwell + slack), migrations to the nearest edge no sooner than the dwell, no
loss or duplicates, every frame decoded without continuity errors, each migration's stall
and the drive's p99 / p99.9 / largest player gap within the scenario's absolute goals
(summary["goals"]), the failovers the scenario asks for, and a clean exit of every process.

    check_demo.py SUMMARY.json [--min-migrations N]
exit 1 with the failures listed; 77 (ctest: skipped) when everything passed except timing
goals that a software-emulated CPU (the project's VM, scripts/vm, under TCG) cannot be judged on.
"""
import argparse
import json
import os
import sys

# The smigbed package (scripts/smigbed), also when run without PYTHONPATH.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from smigbed.verdict import judge  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("summary")
    ap.add_argument("--min-migrations", type=int, default=None,
                    help="also demand at least N automatic migrations")
    args = ap.parse_args()
    with open(args.summary) as f:
        s = json.load(f)
    v = judge(s, args.min_migrations)
    for line in v.lines():
        print(line)
    return v.exit_code  # 77: ctest skipped, never passed


if __name__ == "__main__":
    sys.exit(main())
