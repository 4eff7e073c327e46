#!/usr/bin/env bash
# The system test: the default edge demo, then its summary checked (check_demo.py).
#   run_demo_test.sh OUT_DIR userland|kernel
# kernel: the demo runs inside the project's VM (scripts/vm, via scripts/run-kernel-test) unless this host's
# kernel has SCTP; the media is made on the host first (the VM's / is read-only) and
# OUT_DIR is shared read-write with the VM.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$1 stack=$2
if [ "$(id -u)" -ne 0 ]; then echo "needs root (network namespaces)"; exit 77; fi
rm -rf "$out"
mkdir -p "$out"
# The smigbed package (scripts/smigbed); the VM runner carries the environment over.
export PYTHONPATH="$root/scripts${PYTHONPATH:+:$PYTHONPATH}"
demo=(/usr/bin/python3 -m smigbed.edge_demo --out "$out" --sctp-stack="$stack")
if [ "$stack" = kernel ]; then
  /usr/bin/python3 -c "from smigbed import scenario, testbed; \
s = scenario.load_scenario(scenario.DEFAULT_SCENARIO); \
testbed.make_media('$root/build/media/testsrc2-%ds.ts' % int(s['duration_s']), int(s['duration_s']))"
  export KVM_SCTP_RW=$out
  export KVM_SCTP_EXTRA_MODULES="bridge nfnetlink_queue nft_compat xt_NFQUEUE"
  export KVM_SCTP_MEM=${KVM_SCTP_MEM:-2048}
  "$root/scripts/run-kernel-test" "$root/build/dataplane/tools/sctpcat/smig-sctpcat" "${demo[@]}"
else
  "${demo[@]}"
fi
exec /usr/bin/python3 "$here/check_demo.py" "$out/summary.json"
