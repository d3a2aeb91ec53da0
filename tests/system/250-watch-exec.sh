#!/bin/bash
# keyturnctl watch and exec against keyturnd and moto: watch prints exactly
# one line per rotation and none for a check that finds nothing new, refuses
# a caller that may not read the secret (a real second uid, when root) and a
# name not configured, and ends when a reload removes the secret; exec puts
# a value (or one JSON member) in the command's environment and never on
# its argv, passes its exit status through (128+N for a signal), restarts
# it exactly once after one rotation with --restart-on-change, and passes
# SIGTERM on. No value reaches the daemon's log or keyturnctl's messages.
. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
trap cleanup_accounts EXIT

CTL="$KT_BUILDDIR/keyturnctl"
need_built "$KEYTURND"
need_built "$CTL"

# --- a second user, when root (as 200-keyturnctl.sh makes one) ---------------
UA=""
if [ "$(id -u)" -eq 0 ]; then
	PATH=$PATH:/usr/sbin:/sbin
	if command -v useradd >/dev/null && command -v setpriv >/dev/null &&
		useradd -r -M -N -s /usr/sbin/nologin "kttest-$$-w"; then
		UA=kttest-$$-w
		made_users+=("$UA")
		# The user runs a copy from $T: the build tree may be out of its reach.
		chmod 755 "$T"
		bins=("$CTL")
		[ -x "$KT_BUILDDIR/.libs/keyturnctl" ] &&
			bins=("$KT_BUILDDIR/.libs/keyturnctl" "$KT_BUILDDIR"/.libs/libkeyturn.so.1*)
		install -d -m 755 "$T/ua-bin" && install -m 755 "${bins[@]}" "$T/ua-bin/" ||
			bail "cannot copy keyturnctl for $UA"
	fi
fi
ME=$(id -un)
[ "$(id -u)" -eq 0 ] || export KEYTURN_SOCKET_OWNER="$ME"

start_moto
P1="watch-pass-$$-0001"
P2="watch-pass-$$-0002"
P3="watch-pass-$$-0003"
P4="watch-pass-$$-0004"
V_GONE="gone-value-$$-0005"
db_json() { printf '{"username":"app","password":"%s"}' "$1"; }
aws_cli secretsmanager create-secret --name app/db --secret-string "$(db_json "$P1")" >/dev/null &&
	aws_cli secretsmanager create-secret --name app/gone --secret-string "$V_GONE" >/dev/null ||
	bail "moto setup"

sections() {
	cat <<EOF2
[secret:app/db]
allow_users = $ME
EOF2
	[ "${1:-}" = with-gone ] && printf '[secret:app/gone]\nallow_users = %s\n' "$ME"
}
# idle_timeout = 1: a watcher waits far longer than that, and must stay.
DAEMON_LINES=$'refresh_min_interval = 1\nidle_timeout = 1'
sections with-gone | write_config "$DAEMON_LINES"
start_daemon || bail "keyturnd did not start"

# refresh NAME: a refresh that went through (one a second is allowed).
refresh() { wait_until 20 "$CTL" --socket "$KT_SOCK" refresh "$1" >/dev/null 2>&1; }
# watching N NAME: the daemon's log holds N allowed watches of NAME.
watching() {
	[ "$(grep -c "op=watch secret=$2 uid=.* result=allowed" "$KT_LOG")" -ge "$1" ]
}
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
has_lines() { [ "$(lines "$2")" -ge "$1" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# expect_rc_msg NAME STATUS REGEX WHAT: ctl NAME ended with STATUS and a
# message on stderr that REGEX matches.
expect_rc_msg() {
	local said
	said=$(grep -qE -- "$3" "$T/$1.err" && echo "a message matching $3" || head -c 300 "$T/$1.err")
	expect_eq "$4 (exit $2)" "$2, a message matching $3" "$RC, $said"
}

# --- watch ---------------------------------------------------------------------
"$CTL" --socket "$KT_SOCK" watch app/db >"$T/watch.out" 2>"$T/watch.err" &
WPID=$!
kt_pids+=("$WPID")
wait_until 20 watching 1 app/db || bail "keyturnctl watch did not start watching"
v2=$(rotate_secret app/db "$(db_json "$P2")") || bail "rotation 1"
refresh app/db
check "watch prints a line after a rotation" wait_until 20 has_lines 1 "$T/watch.out"
v3=$(rotate_secret app/db "$(db_json "$P3")") || bail "rotation 2"
refresh app/db
check "watch prints a line after a second rotation" wait_until 20 has_lines 2 "$T/watch.out"
# A check that finds AWSCURRENT where it was tells nothing: once it has
# been answered, there are still two lines.
refresh app/db
expect_eq "one line per rotation, none for a check without a change" 2 "$(lines "$T/watch.out")"
check "each line is NAME VERSION_ID ISO-TIME, the versions in order" \
	grep -qzE "^app/db $v2 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z
app/db $v3 [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z
\$" "$T/watch.out"
# idle_timeout must not close a watcher: a connection that asks nothing is
# closed as idle meanwhile, the watcher is not; it goes on until SIGTERM.
"$PYTHON3" - "$KT_SOCK" <<'PY' || bail "an idle connection"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(60)
s.connect(sys.argv[1])
while s.recv(4096):
    pass
PY
check "a connection that asks nothing is closed as idle" grep -q "closed: idle timeout" "$KT_LOG"
check "the watcher is still running, and was not closed as idle" kill -0 "$WPID"
kill -TERM "$WPID"
wait "$WPID"
expect_eq "watch ends with status 0 on SIGTERM" 0 "$?"

ctl nf watch not/configured
expect_rc_msg nf 3 '^keyturnctl: watch: no secret named not/configured' \
	"root watching a name not configured: not found"
ctl usage watch
expect_eq "watch without a name is a usage error" 2 "$RC"
if [ -n "$UA" ]; then
	as_ua() {
		local name=$1
		shift
		setpriv --reuid "$UA" --regid "$(id -g "$UA")" --clear-groups \
			env LD_LIBRARY_PATH="$T/ua-bin" "$T/ua-bin/keyturnctl" --socket "$KT_SOCK" "$@" \
			>"$T/$name.out" 2>"$T/$name.err" </dev/null
		RC=$?
	}
	as_ua denied watch app/db
	expect_rc_msg denied 4 "may not read app/db" "another uid watching a secret it may not read: denied"
	as_ua denied-nf watch not/configured
	expect_rc_msg denied-nf 4 "may not read not/configured" \
		"another uid watching a name not configured: denied, as for get"
	check "the refusal is in the audit log" \
		grep -q "op=watch secret=app/db uid=$(id -u "$UA") .*result=denied" "$KT_LOG"
else
	for i in 1 2 3; do skip_test "needs root, useradd and setpriv for a second uid"; done
fi

# A reload that removes the watched secret ends the watch: a last frame
# (not_found for root) and keyturnctl's status 3.
"$CTL" --socket "$KT_SOCK" watch app/gone >"$T/wgone.out" 2>"$T/wgone.err" &
GPID=$!
kt_pids+=("$GPID")
wait_until 20 watching 1 app/gone || bail "keyturnctl watch app/gone did not start watching"
sections | write_config "$DAEMON_LINES"
ctl reload reload
expect_eq "the reload without app/gone is taken" 0 "$RC"
check "a reload that removes the secret ends the watch" wait_until 20 gone "$GPID"
wait "$GPID"
RC=$?
expect_rc_msg wgone 3 "app/gone is no longer configured" "the watch ends as not found"
check "the daemon logs why the watch ended" grep -q "ending the watch of uid" "$KT_LOG"

# --- exec ----------------------------------------------------------------------
ctl exec1 exec --env V=app/db#password -- sh -c 'printf %s "$V" >"$1"' sh "$T/e1"
expect_eq "exec sets VAR to the JSON member SECRET#KEY" "0 $P3" "$RC $(cat "$T/e1" 2>/dev/null)"
ctl exec2 exec --env W=app/db --env X=app/db#username -- sh -c 'printf "%s|%s" "$W" "$X" >"$1"' sh "$T/e2"
expect_eq "exec sets several variables; a whole value without #KEY" \
	"0 $(db_json "$P3")|app" "$RC $(cat "$T/e2" 2>/dev/null)"
ctl exit7 exec --env V=app/db#password -- sh -c 'exit 7'
expect_eq "exec passes the exit status through (exit 7)" 7 "$RC"
ctl sig exec --env V=app/db#password -- sh -c 'kill -USR1 $$'
expect_eq "a command killed by SIGUSR1 gives 128+10" 138 "$RC"
ctl exit7r exec --restart-on-change --env V=app/db#password -- sh -c 'exit 7'
expect_eq "with --restart-on-change too (exit 7)" 7 "$RC"
ctl sigr exec --restart-on-change --env V=app/db#password -- sh -c 'kill -USR1 $$'
expect_eq "with --restart-on-change too (SIGUSR1: 138)" 138 "$RC"
ctl nfe exec --env V=not/configured -- true
expect_rc_msg nfe 3 '^keyturnctl: not/configured: ' "exec of a secret not configured: not found"
ctl noexe exec --env V=app/db#password -- "$T/no-such-program"
expect_rc_msg noexe 127 "cannot run" "a command that does not exist: 127"
for spec in "V" "=app/db" "1V=app/db" "V=" "V=#k" "V=app/db#"; do
	ctl badenv exec --env "$spec" -- true
	[ "$RC" = 2 ] || break
done
expect_eq "malformed --env specs are usage errors (last tried: $spec)" 2 "$RC"
ctl nocmd exec --env V=app/db
expect_eq "exec without a command is a usage error" 2 "$RC"

# The value is in the environment of a long-running child, never on argv.
"$CTL" --socket "$KT_SOCK" exec --env V=app/db#password -- \
	sh -c 'echo $$ >"$1.tmp"; mv "$1.tmp" "$1"; exec sleep 300' sh "$T/pid1" 2>"$T/argv.err" &
APID=$!
kt_pids+=("$APID")
check "a long-running child starts" wait_until 20 test -s "$T/pid1"
cpid=$(cat "$T/pid1" 2>/dev/null)
check "without --restart-on-change the command runs in keyturnctl's place" test "$cpid" = "$APID"
check "the value is not on the child's argv" sh -c "! tr '\\0' ' ' </proc/$cpid/cmdline | grep -qF '$P3'"
check "the value is in the child's environment" grep -qzx "V=$P3" "/proc/$cpid/environ"
kill "$APID" 2>/dev/null
wait "$APID" 2>/dev/null

# --- exec --restart-on-change ----------------------------------------------------
n0=$(grep -c "op=watch secret=app/db uid=.* result=allowed" "$KT_LOG")
"$CTL" --socket "$KT_SOCK" exec --restart-on-change --grace 5 --env V=app/db#password -- \
	sh -c 'printf "%s\n" "$V" >>"$1"; echo $$ >"$2.tmp"; mv "$2.tmp" "$2"; exec sleep 300' \
	sh "$T/starts" "$T/pid2" >"$T/restart.out" 2>"$T/restart.err" &
RPID=$!
kt_pids+=("$RPID")
check "the child starts once" wait_until 20 has_lines 1 "$T/starts"
wait_until 20 watching $((n0 + 1)) app/db || bail "keyturnctl exec did not start watching"
first=$(cat "$T/pid2")
check "keyturnctl's own argv holds no value" sh -c "! tr '\\0' ' ' </proc/$RPID/cmdline | grep -qF '$P3'"
v4=$(rotate_secret app/db "$(db_json "$P4")") || bail "rotation 3"
refresh app/db
check "after a rotation the child is started again" wait_until 30 has_lines 2 "$T/starts"
check "the first child was stopped" wait_until 20 gone "$first"
refresh app/db
expect_eq "exactly one restart for one rotation" 2 "$(lines "$T/starts")"
expect_eq "the new child has the new value" "$P4" "$(tail -n 1 "$T/starts")"
check "keyturnctl says what changed" grep -q "app/db changed to version $v4; restarting sh" "$T/restart.err"
wait_until 20 test "$(cat "$T/pid2")" != "$first"
second=$(cat "$T/pid2")
kill -TERM "$RPID"
wait "$RPID"
RC=$?
expect_eq "SIGTERM to keyturnctl ends the child, and keyturnctl with its status (143)" 143 "$RC"
check "the child is gone" gone "$second"

# --- nothing leaked --------------------------------------------------------------
check "no value in the daemon's log" log_has_no_secrets "$P1" "$P2" "$P3" "$P4" "$V_GONE"
check "no value in keyturnctl's messages" sh -c "! cat '$T'/*.err | grep -qF -e '$P3' -e '$P4'"
check "no sanitizer report from keyturnctl" sh -c "! grep -qE '$KT_SANITIZER_RE' '$T'/*.err"
stop_daemon
expect_eq "keyturnd stops cleanly" 0 "$KT_STATUS"
check "no sanitizer report from keyturnd" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
done_testing
