#!/usr/bin/env bash
# The system test: an edge demo drive, then its summary checked (check_demo.py, the demo's
# own verdict: smigbed.verdict).
#   run_demo_test.sh OUT_DIR userland|kernel [SCENARIO.yaml|TRACE.xml [DEMO_FLAG...]]
# SCENARIO defaults to scripts/scenarios/default.yaml; a .xml is a SUMO trace (--trace,
# userland only); DEMO_FLAGs go to the demo (--tls, --vehicle ID).
# kernel: the demo runs inside the project's VM (scripts/vm, via scripts/run-kernel-test) unless this host's
# kernel has SCTP; the media is made on the host first (the VM's / is read-only) and
# OUT_DIR is shared read-write with the VM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$1 stack=$2 scenario=${3:-$root/scripts/scenarios/default.yaml}
shift $(( $# < 3 ? $# : 3 ))
if [ "$(id -u)" -ne 0 ]; then echo "needs root (network namespaces)"; exit 77; fi
rm -rf "$out"
mkdir -p "$out"
# The smigbed package (scripts/smigbed); the VM runner carries the environment over.
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
case $scenario in
  *.xml) drive=(--trace "$scenario") ;;
  *) drive=(--scenario "$scenario") ;;
esac
demo=(/usr/bin/python3 -m smigbed.edge_demo --out "$out" --sctp-stack="$stack" "${drive[@]}" "$@")
rc=0
if [ "$stack" = kernel ]; then
  /usr/bin/python3 -c "import sys; from smigbed import scenario, testbed; \
s = scenario.load_scenario(sys.argv[1]); \
testbed.make_media('$root/build/media/testsrc2-%ds.ts' % int(s['duration_s']), int(s['duration_s']))" "$scenario"
  export KVM_SCTP_RW=$out
  export KVM_SCTP_EXTRA_MODULES="bridge nfnetlink_queue nft_compat xt_NFQUEUE"
  export KVM_SCTP_MEM=${KVM_SCTP_MEM:-2048}
  "$root/scripts/run-kernel-test" "$root/build/dataplane/tools/sctpcat/smig-sctpcat" "${demo[@]}" || rc=$?
else
  "${demo[@]}" || rc=$?
fi
# The demo exits with its verdict (0, 1, 77); the summary is judged again here so that the
# test's log ends with every check. No summary: the demo itself failed.
if [ ! -f "$out/summary.json" ]; then
  echo "no $out/summary.json (the demo exited $rc)"
  exit $(( rc == 0 ? 1 : rc ))
fi
if [[ $scenario == *.xml ]] && [ ! -s "$out/fleet.png" ]; then
  echo "no $out/fleet.png (a --trace run draws the fleet view; the demo exited $rc)"
  exit 1
fi
echo "the demo exited $rc; its summary, checked:"
exec /usr/bin/python3 "$here/check_demo.py" "$out/summary.json"
