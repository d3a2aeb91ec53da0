#!/bin/bash
# keyturnd watches its socket's path while it runs (one stat() every 5 s):
# a socket file removed, its directory removed, or either replaced by
# another file is logged once, shown in status (asked over a connection
# opened before) and in systemd's STATUS=; the daemon binds the path again
# where it can (making the directory again when the parent allows), and a
# file that is not its own is left alone. Open connections keep working.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"

need_built "$KEYTURND"

# holder.py: one connection opened now, kept for the whole test; sends each
# request read from stdin on it and prints each answer as one line.
cat >"$T/holder.py" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
from ktclient import KtClient

c = KtClient(sys.argv[2], 20)
print(json.dumps({"connected": True}), flush=True)
for line in sys.stdin:
    c.send_frame(line.strip())
    print(json.dumps(c.recv_json()), flush=True)
PY

start_moto
aws_cli secretsmanager create-secret --name app/s --secret-string socket-value-0001 >/dev/null ||
	bail "moto setup"
"$PYTHON3" "$KT_LIB/notifysink.py" --socket "$T/notify" --out "$T/notify.log" --seconds 120 &
kt_pids+=("$!")
wait_until 10 test -S "$T/notify" || bail "the notify receiver did not start"
write_config "idle_timeout = 600" <<EOF
[secret:app/s]
allow_users = $(id -un)
EOF
start_daemon NOTIFY_SOCKET="$T/notify" || bail "keyturnd did not start"
wait_until 15 grep -q '^READY=1' "$T/notify.log" || bail "no READY=1"

coproc HOLD { "$PYTHON3" "$T/holder.py" "$KT_LIB" "$KT_SOCK"; }
kt_pids+=("$HOLD_PID")
read -r -t 10 line <&"${HOLD[0]}"
check "a connection is opened before the socket goes" [ "$line" = '{"connected": true}' ]
# held_status EXPR: EXPR (Python on d) of a status asked on the held connection.
held_status() {
	local ans
	echo '{"v":1,"op":"status"}' >&"${HOLD[1]}"
	read -r -t 10 ans <&"${HOLD[0]}" || return 1
	jfield "$ans" "$1"
}
# new_client_works: a new connection gets the secret.
new_client_works() { [ "$(jfield "$(kt_get app/s 2>/dev/null || echo '{}')" 'd.get("string")')" = socket-value-0001 ]; }
# logged N PATTERN: more than N lines of the log match PATTERN (counted at each try).
logged() { [ "$(grep -c -- "$2" "$KT_LOG")" -gt "$1" ]; }
# seconds_until COMMAND...: how long (s, one decimal) until COMMAND succeeds (at most 30 s).
seconds_until() {
	local t0=$EPOCHREALTIME
	wait_until 30 "$@" || { echo fail; return; }
	awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'
}

expect_eq "status shows the socket ok" "ok $KT_SOCK" "$(held_status 'd["socket"]["state"] + " " + d["socket"]["path"]')"

# --- the socket file removed ------------------------------------------------------
n=$(grep -c 'socket .* is gone' "$KT_LOG")
rm -f "$KT_SOCK"
t=$(seconds_until logged "$n" "socket $KT_SOCK is gone")
diag "socket file removed: logged after $t s"
check "a removed socket file is logged as an error within 15 s" [ "$t" != fail ]
check "... and bound again" wait_until 15 grep -q "socket $KT_SOCK bound again" "$KT_LOG"
check "... a new client connects again" wait_until 5 new_client_works
check "... the held connection still works" [ "$(held_status 'd["ok"]')" = true ]
expect_eq "... status says ok again, bound once" "ok 1" "$(held_status '"%s %d" % (d["socket"]["state"], d["socket"]["rebound"])')"

# --- the directory removed ----------------------------------------------------------
n=$(grep -c 'socket .* is gone' "$KT_LOG")
rm -rf "$T/run"
t=$(seconds_until logged "$n" "socket $KT_SOCK is gone")
diag "socket directory removed: logged after $t s"
check "a removed socket directory is logged within 15 s" [ "$t" != fail ]
check "... made again and the socket bound (the parent is writable)" \
	wait_until 15 logged 1 "socket $KT_SOCK bound again"
check "... with mode 0755" [ "$(stat -c %a "$T/run")" = 755 ]
check "... a new client connects again" wait_until 5 new_client_works

# --- the directory replaced by a file: cannot be bound again --------------------------
n=$(grep -c 'socket .* is gone' "$KT_LOG")
rm -rf "$T/run"
echo not-a-directory >"$T/run"
check "the directory replaced by a file: logged" wait_until 15 logged "$n" "socket $KT_SOCK is gone"
check "... that it cannot be bound again, and why" \
	wait_until 10 grep -q "socket $KT_SOCK cannot be bound again: .*Not a directory" "$KT_LOG"
expect_eq "status over the held connection says missing" missing "$(held_status 'd["socket"]["state"]')"
detail=$(held_status 'd["socket"]["detail"]')
check "... with the reason" grep -q 'Not a directory' <<<"$detail"
check "... and since when" [ "$(held_status 'd["socket"]["since"] > 0')" = true ]
check "STATUS= tells systemd" wait_until 5 grep -q "STATUS=.*socket $KT_SOCK missing: new clients cannot connect" "$T/notify.log"
# Tried again every 5 s, but said once.
sleep 11
expect_eq "... the failure is logged once, not at every try" 1 "$(grep -c "socket $KT_SOCK cannot be bound again" "$KT_LOG")"
rm -f "$T/run"
check "once the file is gone the directory and socket are made again" \
	wait_until 15 logged 2 "socket $KT_SOCK bound again"
check "... a new client connects" wait_until 5 new_client_works
check "... STATUS= is cleared" wait_until 5 sh -c "tail -n 1 '$T/notify.log' | grep -qx 'STATUS=serving'"

# --- the socket replaced by another file: left alone --------------------------------
n=$(grep -c 'was replaced by another file' "$KT_LOG")
rm -f "$KT_SOCK"
echo someone-elses >"$KT_SOCK"
t=$(seconds_until logged "$n" "socket $KT_SOCK was replaced by another file")
diag "socket replaced by a regular file: logged after $t s"
check "a socket replaced by another file is logged within 15 s" [ "$t" != fail ]
expect_eq "status says replaced" replaced "$(held_status 'd["socket"]["state"]')"
check "STATUS= says replaced" wait_until 5 grep -q "STATUS=.*socket $KT_SOCK replaced" "$T/notify.log"
sleep 6
check "the other file is left alone" grep -qx someone-elses "$KT_SOCK"
rm -f "$KT_SOCK"
check "once it is removed the socket is bound again" wait_until 15 logged 3 "socket $KT_SOCK bound again"
check "... a new client connects" wait_until 5 new_client_works

# --- a clean stop leaves another file at the path alone --------------------------------
check "the held connection answered throughout" [ "$(held_status 'd["ok"]')" = true ]
exec {HOLD[1]}>&-
mv "$KT_SOCK" "$T/sock.ours"
echo someone-elses >"$KT_SOCK"
stop_daemon
expect_eq "SIGTERM: exit status 0" 0 "$KT_STATUS"
check "a clean stop does not remove a file that is not keyturnd's socket" grep -qx someone-elses "$KT_SOCK"
check "the daemon ran clean" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
done_testing
