#!/usr/bin/env bash
# Runs grpcurl.mjs, installing its npm dependencies (from package-lock.json) on first use.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ ! -d "$here/node_modules/@grpc/grpc-js" || ! -d "$here/node_modules/grpc-reflection-js" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi
exec node "$here/grpcurl.mjs" "$@"
