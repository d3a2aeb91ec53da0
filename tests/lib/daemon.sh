# Helpers for system tests of keyturnd: a configuration in $T, the daemon in
# the foreground against moto, and requests through tests/lib/ktclient.py (an
# independent client of the wire protocol). Source after common.sh.

KEYTURND="$KT_BUILDDIR/keyturnd"
CTL=${CTL:-$KT_BUILDDIR/keyturnctl}
KT_SOCK="$T/run/keyturnd.sock"
KT_CONF="$T/keyturnd.conf"
KT_LOG="$T/keyturnd.log"

# write_config [DAEMON_LINES] < SECTIONS: a [daemon] section pointing at moto
# (extra lines given as one argument), then the sections read from stdin.
write_config() {
	{
		echo "[daemon]"
		echo "region = us-east-1"
		echo "endpoint = $MOTO_URL"
		echo "socket = $KT_SOCK"
		echo "state_dir = $T/state"
		echo "user = $(id -un)"
		echo "log_level = debug"
		[ -n "${1:-}" ] && printf '%s\n' "$1"
		cat
	} >"$KT_CONF"
}

# start_daemon [ENV=VALUE...]: starts keyturnd -f and waits for its socket
# to answer; sets KT_PID.
start_daemon() {
	local i
	env "$@" "$KEYTURND" -f -c "$KT_CONF" >>"$KT_LOG" 2>&1 &
	KT_PID=$!
	kt_pids+=("$KT_PID")
	for ((i = 0; i < 100; i++)); do
		if [ -S "$KT_SOCK" ] && kt_req '{"v":1,"op":"status"}' >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$KT_PID" 2>/dev/null || break
		sleep 0.1
	done
	diag "keyturnd did not start; its log:"
	sed 's/^/#   /' "$KT_LOG" | tail -n 30
	return 1
}

# stop_daemon: SIGTERM, and waits for the exit status (in KT_STATUS).
stop_daemon() {
	kill -TERM "$KT_PID" 2>/dev/null
	wait "$KT_PID" 2>/dev/null
	KT_STATUS=$?
}

# kt_req JSON...: sends requests on one connection, prints one answer a line.
kt_req() {
	"$PYTHON3" "$KT_LIB/ktclient.py" --socket "$KT_SOCK" --timeout 20 "$@"
}

# kt_req_as USER JSON...: the same, as another user (root only).
kt_req_as() {
	local user=$1
	shift
	"$PYTHON3" "$KT_LIB/ktclient.py" --socket "$KT_SOCK" --timeout 20 --as-user "$user" "$@"
}

# kt_get NAME [EXTRA_JSON_MEMBERS]: the answer to a get, as one JSON line.
kt_get() {
	kt_req "{\"v\":1,\"op\":\"get\",\"secret\":\"$1\"${2:+,$2}}"
}

# jfield JSON EXPR: a value from one JSON document given as a string.
jfield() {
	"$PYTHON3" -c 'import json,sys; d=json.loads(sys.argv[1]); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list,bool)) or v is None else json.dumps(v))' "$1" "$2"
}

# log_has_no_secrets VALUE...: none of the values appears in the daemon log.
log_has_no_secrets() {
	local v
	for v in "$@"; do
		if grep -qF -- "$v" "$KT_LOG"; then
			return 1
		fi
	done
	return 0
}

# ctl NAME ARGS...: keyturnctl on the test's socket, stdin from /dev/null;
# stdout in $T/NAME.out, stderr in $T/NAME.err, the exit status in RC.
ctl() {
	local name=$1
	shift
	"$CTL" --socket "$KT_SOCK" "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}

# expect_rc NAME EXPECTED DESCRIPTION: one check of RC (from ctl); shows
# what NAME printed when it fails.
expect_rc() {
	if [ "$RC" = "$2" ]; then
		ok "$3 (exit $2)"
	else
		not_ok "$3 (exit $2)"
		diag "exit status: $RC"
		sed 's/^/#   out: /' "$T/$1.out" 2>/dev/null | head -n 10
		sed 's/^/#   err: /' "$T/$1.err" 2>/dev/null | head -n 10
	fi
}
