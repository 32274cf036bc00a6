# lib.sh - helpers for the CLI tests (sourced).  Each test gets a scratch
# directory that is removed on exit, whatever happens.
set -u
: "${QSTORE:?QSTORE must name the qstore binary}"
: "${GENMODEL:?GENMODEL must name the genmodel binary}"
QSTORE=$(readlink -f "$QSTORE")
GENMODEL=$(readlink -f "$GENMODEL")
T=$(mktemp -d /tmp/qstore-cli.XXXXXX)
trap 'rm -rf "$T"' EXIT
FAILS=0
pass() { printf '  ok    %s\n' "$*"; }
fail() { printf '  FAIL  %s\n' "$*"; FAILS=$((FAILS + 1)); }
check() { local what=$1; shift; if "$@" >"$T/.out" 2>&1; then pass "$what"; else fail "$what"; sed 's/^/        /' "$T/.out" | tail -5; fi; }
# expect_error WHAT PATTERN CMD...: non-zero exit below 128 (no crash) and
# PATTERN (grep -E) in stderr
expect_error() {
	local what=$1 pat=$2; shift 2
	"$@" >"$T/.out" 2>"$T/.err"; local rc=$?
	if [ $rc -eq 0 ]; then fail "$what: exited 0"; return; fi
	if [ $rc -ge 128 ]; then fail "$what: crashed (exit $rc)"; cat "$T/.err"; return; fi
	if ! grep -Eq -- "$pat" "$T/.err"; then fail "$what: message lacks /$pat/"; sed 's/^/        /' "$T/.err"; return; fi
	pass "$what (exit $rc: $(head -c 150 "$T/.err" | tr '\n' ' '))"
}
finish() { [ "$FAILS" -eq 0 ] && exit 0; echo "  $FAILS failure(s)"; exit 1; }
