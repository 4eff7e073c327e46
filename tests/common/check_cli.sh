#!/usr/bin/env bash
# check_cli.sh BINARY: the command-line contract every smig binary keeps:
#   --help     exits 0 and lists at least one of the binary's own flags (--something)
#   --version  exits 0 and prints "<name> <version>"
#   an unknown flag exits non-zero and names it
set -u
bin=$1
name=$(basename "$bin")
fail() { echo "check_cli: $name: $*"; exit 1; }

out=$("$bin" --help 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "--help exited $rc: $out"
flags=$(grep -cE '^  --[a-z0-9]' <<<"$out")
[ "$flags" -ge 2 ] || fail "--help lists no flags of its own: $out"
grep -q 'No flags matched' <<<"$out" && fail "--help says 'No flags matched'"

out=$("$bin" --version 2>&1); rc=$?
[ "$rc" -eq 0 ] || fail "--version exited $rc: $out"
grep -qE "^$name [0-9]+\.[0-9]+" <<<"$out" || fail "--version printed: $out"

out=$("$bin" --no-such-flag-xyz 2>&1 </dev/null); rc=$?
[ "$rc" -ne 0 ] || fail "an unknown flag exited 0: $out"
grep -q 'no_such_flag_xyz\|no-such-flag-xyz' <<<"$out" || fail "the unknown flag is not named: $out"
echo "check_cli: $name: --help lists $flags flags, --version and unknown flags behave"
