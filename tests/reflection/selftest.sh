#!/usr/bin/env bash
# Checks tests/reflection/grpcurl.mjs against a real smig-migrator that it starts.
#   tests/reflection/selftest.sh path/to/smig-migrator
# Exits non-zero on any mismatch.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
migrator="${1:?usage: selftest.sh SMIG_MIGRATOR_BINARY}"
[[ -x "$migrator" ]] || { echo "selftest: $migrator is not executable" >&2; exit 2; }

work="$(mktemp -d)"
pid="" tls_pid=""
cleanup() {
  for p in $pid $tls_pid; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Install the client's dependencies before the clock starts (run.sh would do it too).
if [[ ! -d "$here/node_modules/@grpc/grpc-js" || ! -d "$here/node_modules/grpc-reflection-js" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) || exit 1
fi

echo '{"servers":[{"id":"edge-1","agent_address":"127.0.0.1:1"}]}' > "$work/migrator.json"
"$migrator" --config="$work/migrator.json" --grpc-address=127.0.0.1:0 --metrics-address=off \
  > "$work/stdout" 2> "$work/stderr" &
pid=$!
port=""
for _ in $(seq 100); do
  port="$(sed -n 's/.*"grpc_port":\([0-9][0-9]*\).*/\1/p' "$work/stdout" | head -1)"
  [[ -n "$port" ]] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [[ -z "$port" ]]; then
  echo "selftest: smig-migrator did not report a grpc_port" >&2
  cat "$work/stderr" >&2
  exit 1
fi
addr="127.0.0.1:$port"
echo "smig-migrator pid $pid on $addr"

failures=0
# check NAME WANT_RC STDOUT_PATTERN STDERR_PATTERN -- ARGS...   (patterns: grep -E, "" = any)
check() {
  local name="$1" want_rc="$2" out_re="$3" err_re="$4"
  shift 5
  local rc=0
  node "$here/grpcurl.mjs" -max-time 10 "$@" > "$work/out" 2> "$work/err" || rc=$?
  local ok=1
  [[ "$rc" == "$want_rc" ]] || ok=0
  if [[ -n "$out_re" ]] && ! grep -Eq -- "$out_re" "$work/out"; then ok=0; fi
  if [[ -n "$err_re" ]] && ! grep -Eq -- "$err_re" "$work/err"; then ok=0; fi
  if (( ok )); then
    echo "PASS $name"
  else
    failures=$((failures + 1))
    echo "FAIL $name (exit $rc, wanted $want_rc)"
    sed 's/^/  stdout: /' "$work/out"
    sed 's/^/  stderr: /' "$work/err"
  fi
}

check "list has Migrator" 0 '^smig\.migrator\.v1\.Migrator$' '' -- -plaintext "$addr" list
check "list has Health" 0 '^grpc\.health\.v1\.Health$' '' -- -plaintext "$addr" list
check "list has ServerReflection" 0 '^grpc\.reflection\.v1alpha\.ServerReflection$' '' -- -plaintext "$addr" list
check "list is sorted" 0 '' '' -- -plaintext "$addr" list
sort -c "$work/out" 2>/dev/null || { failures=$((failures + 1)); echo "FAIL list output is not sorted"; }
check "list Migrator methods" 0 '^smig\.migrator\.v1\.Migrator\.WatchMigration$' '' -- \
  -plaintext "$addr" list smig.migrator.v1.Migrator
check "describe Migrator" 0 \
  'rpc WatchMigration \( \.smig\.migrator\.v1\.WatchMigrationRequest \) returns \( stream \.smig\.migrator\.v1\.Migration \);' '' -- \
  -plaintext "$addr" describe smig.migrator.v1.Migrator
check "describe MigrateRequest" 0 '^  uint64 session_id = 1;$' '' -- \
  -plaintext "$addr" describe smig.migrator.v1.MigrateRequest
check "Migrate unknown session -> NotFound" 1 '' \
  '^  Code: NotFound$' -- \
  -plaintext -d '{"session_id":"5","target_server_id":"edge-2"}' "$addr" smig.migrator.v1.Migrator/Migrate
grep -q '^  Message: session 5 is unknown$' "$work/err" ||
  { failures=$((failures + 1)); echo "FAIL Migrate message is not \"session 5 is unknown\""; cat "$work/err"; }
check "ListSessions -> empty" 0 '^\{"sessions":\[\],"matched":0\}$' '' -- \
  -plaintext "$addr" smig.migrator.v1.Migrator/ListSessions
check "WatchMigration unknown -> NotFound" 1 '' '^  Code: NotFound$' -- \
  -plaintext -d '{"migration_id":"no-such-migration"}' "$addr" smig.migrator.v1.Migrator/WatchMigration
check "Health Check -> SERVING" 0 '^\{"status":"SERVING"\}$' '' -- \
  -plaintext -d '{}' "$addr" grpc.health.v1.Health/Check
if grep -q 'built-in grpc/health' "$work/err"; then  # every smig server links the descriptor in
  failures=$((failures + 1))
  echo "FAIL the server's reflection has no grpc.health.v1 descriptor (the client fell back to its own)"
fi
check "camelCase key rejected" 1 '' 'unknown field "sessionId"' -- \
  -plaintext -d '{"sessionId":"5","target_server_id":"edge-2"}' "$addr" smig.migrator.v1.Migrator/Migrate
[[ -s "$work/out" ]] && { failures=$((failures + 1)); echo "FAIL camelCase call printed a response"; }

# Over mutual TLS: a second migrator with a certificate from a CA made here, requiring
# client certificates from it. The client lists and calls with -cacert/-cert/-key, and is
# refused without its certificate and in plaintext.
if command -v openssl > /dev/null; then
  (cd "$work" &&
   openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=ca -keyout ca.key -out ca.pem &&
   openssl req -newkey rsa:2048 -nodes -subj /CN=smig -keyout node.key -out node.csr &&
   printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n' > san.ext &&
   openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
     -extfile san.ext -out node.pem) > "$work/openssl.log" 2>&1 ||
    { failures=$((failures + 1)); echo "FAIL openssl could not make the test PKI"; cat "$work/openssl.log"; }
  printf '{"servers":[{"id":"edge-1","agent_address":"127.0.0.1:1"}],"tls":{"cert_file":"%s","key_file":"%s","client_ca_file":"%s"}}\n' \
    "$work/node.pem" "$work/node.key" "$work/ca.pem" > "$work/migrator-tls.json"
  "$migrator" --config="$work/migrator-tls.json" --grpc-address=127.0.0.1:0 --metrics-address=off \
    > "$work/tls.stdout" 2> "$work/tls.stderr" &
  tls_pid=$!
  tls_port=""
  for _ in $(seq 100); do
    tls_port="$(sed -n 's/.*"grpc_port":\([0-9][0-9]*\).*/\1/p' "$work/tls.stdout" | head -1)"
    [[ -n "$tls_port" ]] && break
    sleep 0.1
  done
  tls_addr="127.0.0.1:$tls_port"
  tls=(-cacert "$work/ca.pem" -cert "$work/node.pem" -key "$work/node.key")
  check "TLS: list has Migrator" 0 '^smig\.migrator\.v1\.Migrator$' '' -- "${tls[@]}" "$tls_addr" list
  check "TLS: describe MigrateRequest" 0 '^  uint64 session_id = 1;$' '' -- \
    "${tls[@]}" "$tls_addr" describe smig.migrator.v1.MigrateRequest
  check "TLS: Health Check -> SERVING" 0 '^\{"status":"SERVING"\}$' '' -- \
    "${tls[@]}" -d '{}' "$tls_addr" grpc.health.v1.Health/Check
  check "TLS: no client certificate -> refused" 1 '' '' -- -cacert "$work/ca.pem" "$tls_addr" list
  check "TLS: plaintext -> refused" 1 '' '' -- -plaintext "$tls_addr" list
  kill "$tls_pid" 2>/dev/null; wait "$tls_pid" 2>/dev/null
else
  echo "SKIP TLS checks: no openssl"
fi

if (( failures )); then
  echo "selftest: $failures failure(s)"
  exit 1
fi
echo "selftest: all checks passed"
