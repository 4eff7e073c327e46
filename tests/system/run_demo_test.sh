#!/usr/bin/env bash
# The system test: the default edge demo, then its summary checked (tests/system/check_demo.py).
#   run_demo_test.sh OUT_DIR [edge-demo options]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$1; shift
if [ "$(id -u)" -ne 0 ]; then echo "needs root (network namespaces)"; exit 77; fi
rm -rf "$out"
/usr/bin/python3 "$here/../../scripts/lib/edge_demo.py" --out "$out" "$@"
/usr/bin/python3 "$here/check_demo.py" "$out/summary.json"
