# Helpers for the credential-provider system tests: the fake metadata server
# tests/lib/fakemeta.py (container endpoint, IMDSv2, STS errors) and its
# controls, and runs of tests/tools/kt-creds. Source it after common.sh.

KT_CREDS="$KT_BUILDDIR/tests/tools/kt-creds"

# Options that kc passes ahead of each call's own; a script may set its own.
KC_OPTS=()

# --- the fake metadata server ------------------------------------------------------

# start_fakemeta ARGS...: the fake metadata server; sets META_PORT and META_URL.
start_fakemeta() {
	local pf="$T/meta.port"
	"$PYTHON3" "$KT_LIB/fakemeta.py" --port-file "$pf" "$@" 2>"$T/meta.log" &
	kt_pids+=("$!")
	wait_until 10 test -s "$pf" || bail "fakemeta did not start: $(cat "$T/meta.log")"
	META_PORT=$(cat "$pf")
	META_URL="http://127.0.0.1:$META_PORT"
}

# meta METHOD PATH [JSON]: one call to the fake server's control endpoints.
meta() {
	"$PYTHON3" -c '
import sys, urllib.request
url, method, body = sys.argv[1], sys.argv[2], sys.argv[3].encode() or None
with urllib.request.urlopen(urllib.request.Request(url, data=body, method=method)) as r:
    sys.stdout.write(r.read().decode())
' "$META_URL$2" "$1" "${3:-}"
}

# mode JSON: changes how the fake server behaves from now on.
mode() { meta POST /__ctl/mode "$1" >/dev/null || bail "fakemeta refused mode $1"; }

# reset_stats: sets the fake server's counters back to nothing.
reset_stats() { meta POST /__ctl/reset >/dev/null || bail "fakemeta reset failed"; }

# mstat NAME: a counter of the fake server (0 when it never counted).
mstat() {
	meta GET /__ctl/stats >"$T/stats.json" &&
		json_get "$T/stats.json" "d.get('$1', 0)"
}

# --- kt-creds --------------------------------------------------------------------------

# kc NAME ARGS...: runs kt-creds with KC_OPTS, leaving $T/NAME.out, $T/NAME.err and KC_RC.
kc() {
	local name=$1
	shift
	"$KT_CREDS" "${KC_OPTS[@]}" "$@" >"$T/$name.out" 2>"$T/$name.err"
	KC_RC=$?
}

# field NAME EXPR [LINE]: a value from line LINE (default 1) of NAME's output.
field() {
	sed -n "${3:-1}p" "$T/$1.out" >"$T/$1.line"
	[ -s "$T/$1.line" ] || { echo "(no line ${3:-1})"; return; }
	json_get "$T/$1.line" "$2"
}

# expect_ok NAME: kt-creds succeeded (shows its output when it did not).
expect_ok() {
	if [ "$KC_RC" -eq 0 ]; then
		ok "$1: kt-creds succeeded"
	else
		not_ok "$1: kt-creds succeeded"
		diag "exit $KC_RC" "$(cat "$T/$1.out" "$T/$1.err")"
	fi
}

# expect_fail NAME CODE TEXT: kt-creds failed with error CODE, message containing TEXT.
expect_fail() {
	local msg
	expect_eq "$1: exit status" 1 "$KC_RC"
	expect_eq "$1: error code" "$2" "$(field "$1" 'd.get("error")')"
	msg=$(field "$1" 'd.get("message")')
	if [[ "$msg" == *"$3"* ]]; then
		ok "$1: message names '$3'"
	else
		not_ok "$1: message names '$3'"
		diag "message: $msg"
	fi
}

# no_secret_output DESCRIPTION PATTERN...: one test, that no $T/*.out or
# $T/*.err contains any PATTERN; names the files that do.
no_secret_output() {
	local what=$1 p args=()
	shift
	for p in "$@"; do
		args+=(-e "$p")
	done
	if grep -l "${args[@]}" "$T"/*.out "$T"/*.err >/dev/null 2>&1; then
		not_ok "$what"
		grep -l "${args[@]}" "$T"/*.out "$T"/*.err | sed 's/^/# /'
	else
		ok "$what"
	fi
}
