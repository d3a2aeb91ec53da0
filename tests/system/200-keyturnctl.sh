#!/bin/bash
# keyturnctl (and libkeyturn under it) against keyturnd and moto: every
# command and every exit status (0 to 5), values byte for byte, --json as the
# daemon sent it, verify's password kept out of argv and the log, a socket of
# the wrong owner refused, docs/examples/dbclient through a rotation, and
# kt-threads (a forked child on an inherited handle, 16 threads at once).
# The checks that need root (another user, a chowned socket) are skipped
# with their reason when not root.

# The number of checks below (for skip_all; the plan is printed at the end).
PLANNED=90

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
trap cleanup_accounts EXIT

CTL="$KT_BUILDDIR/keyturnctl"
CTL_AS="$T/ua-bin/keyturnctl" # the copy the test user runs (see below)
KT_THREADS="$KT_BUILDDIR/tests/tools/kt-threads"
DBCLIENT="$KT_BUILDDIR/docs/examples/dbclient"
need_built "$KEYTURND"
need_built "$CTL"

# --- a test user, when root ----------------------------------------------------
UA=""
NOROOT="needs root and useradd to run keyturnctl as another user"
if [ "$(id -u)" -eq 0 ]; then
	PATH=$PATH:/usr/sbin:/sbin
	if command -v useradd >/dev/null && command -v setpriv >/dev/null; then
		UA=kttest-$$-x
		if useradd -r -M -N -s /usr/sbin/nologin "$UA"; then
			made_users+=("$UA")
			# The user must reach the socket under $T. The build tree may
			# sit where it cannot go (a clone in a 0700 directory), so it
			# runs a copy of keyturnctl and libkeyturn from $T/ua-bin.
			chmod 755 "$T"
			mkdir -m 755 "$T/ua-bin"
			if [ -x "$KT_BUILDDIR/.libs/keyturnctl" ]; then
				cp "$KT_BUILDDIR/.libs/keyturnctl" "$KT_BUILDDIR"/.libs/libkeyturn.so.1* "$T/ua-bin/"
			else
				cp "$CTL" "$T/ua-bin/"
			fi
			chmod 755 "$T/ua-bin"/*
		else
			UA=""
			NOROOT="useradd failed"
		fi
	else
		NOROOT="needs useradd and setpriv to run keyturnctl as another user"
	fi
fi
ME=$(id -un)
# Not root: the daemon runs as this user, so its socket is this user's, which
# libkeyturn trusts only when told to.
[ "$(id -u)" -eq 0 ] || export KEYTURN_SOCKET_OWNER="$ME"

# --- moto, secrets and the daemon ----------------------------------------------
start_moto
P_DB="db-pass-$$-0001"
V_PLAIN="plain-value-$$-0002"
V_NL=$'two lines\nand a newline at the end\n'
V_USER="user-value-$$-0004"
P_ROT_OLD="rot-old-$$-0005"
P_ROT_NEW="rot-new-$$-0006"
P_PENDING="pending-$$-0007"
PW_VERIFY="verify-pw-$$-0008"
# A binary value with a NUL, a newline and high bytes, ending in a newline.
{ printf '\000\n\377\200'; head -c 60 /dev/urandom; printf '\n'; } >"$T/bin"
printf '%s' "$V_PLAIN" >"$T/plain"
printf '%s' "$V_NL" >"$T/nl"

mk() { aws_cli secretsmanager create-secret --name "$1" "${@:2}" >/dev/null || bail "moto setup of $1"; }
mk app/db --secret-string "{\"username\":\"app\",\"password\":\"$P_DB\"}"
mk app/plain --secret-string "$V_PLAIN"
mk app/nl --secret-string "$V_NL"
mk app/cert --secret-binary "fileb://$T/bin"
mk app/user --secret-string "$V_USER"
mk app/refresh --secret-string "refresh-$$"
mk app/refresh2 --secret-string "refresh2-$$"
mk app/rotate --secret-string "{\"password\":\"$P_ROT_OLD\"}"

# Root reads every secret; app/user is also for the test user.
write_config <<EOF2
[secret:app/db]
allow_users = $ME
[secret:app/plain]
allow_users = $ME
[secret:app/nl]
allow_users = $ME
[secret:app/cert]
allow_users = $ME
[secret:app/user]
allow_users = $ME ${UA}
[secret:app/refresh]
allow_users = $ME
[secret:app/refresh2]
allow_users = $ME
[secret:app/rotate]
allow_users = $ME
[secret:missing/in/aws]
allow_users = $ME
EOF2
start_daemon || bail "keyturnd did not start"
ok "keyturnd starts against moto"

# ctl_as NAME ARGS...: ctl (tests/lib/daemon.sh) as the test user.
ctl_as() {
	local name=$1
	shift
	as_user "$CTL_AS" --socket "$KT_SOCK" "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}

# as_user COMMAND...: runs a command as the test user, with the copied library.
as_user() {
	setpriv --reuid="$UA" --regid="$(id -g "$UA")" --clear-groups -- \
		env LD_LIBRARY_PATH="$T/ua-bin" "$@"
}

# expect_rc_msg NAME EXPECTED ERE DESCRIPTION: RC, and stderr matches ERE.
expect_rc_msg() {
	if [ "$RC" = "$2" ] && grep -qE -- "$3" "$T/$1.err"; then
		ok "$4 (exit $2)"
	else
		not_ok "$4 (exit $2)"
		diag "exit status: $RC; stderr should match: $3"
		sed 's/^/#   stderr: /' "$T/$1.err" | head -n 10
	fi
}

# json_ok FILE: FILE holds exactly one JSON object and nothing after it.
json_ok() { "$PYTHON3" -c 'import json,sys; s=open(sys.argv[1],"rb").read(); assert isinstance(json.loads(s), dict)' "$1"; }

# --- get: values byte for byte -------------------------------------------------
ctl get-plain get app/plain
expect_rc get-plain 0 "get of a string secret"
check "a string value comes out byte for byte, no newline added when piped" cmp "$T/plain" "$T/get-plain.out"
check "nothing on stderr for a good get" test ! -s "$T/get-plain.err"

ctl get-nl get app/nl
check "a value with newlines keeps them all, and gets none added" cmp "$T/nl" "$T/get-nl.out"

ctl get-bin get app/cert
expect_rc get-bin 0 "get of a binary secret"
check "a binary value comes out as raw bytes (NUL, newline, high bytes)" cmp "$T/bin" "$T/get-bin.out"

ctl get-key get app/db --key password
check "--key prints only that member" cmp <(printf '%s' "$P_DB") "$T/get-key.out"
password=$("$CTL" --socket "$KT_SOCK" get app/db --key password 2>"$T/subst.err")
expect_eq 'password=$(keyturnctl get app/db --key password) holds the password' "$P_DB" "$password"
ctl get-whole get app/db
check "a JSON value without --key comes out whole" \
	cmp <(printf '%s' "{\"username\":\"app\",\"password\":\"$P_DB\"}") "$T/get-whole.out"
ctl get-keyfirst --key username get app/db
expect_eq "options may come before the command" "app" "$(cat "$T/get-keyfirst.out")"

if command -v script >/dev/null; then
	out=$(script -qec "'$CTL' --socket '$KT_SOCK' get app/plain" /dev/null </dev/null 2>&1 | od -An -c | tr -s ' \n' ' ')
	want=$(printf '%s\r\n' "$V_PLAIN" | od -An -c | tr -s ' \n' ' ')
	expect_eq "on a terminal a string value is followed by a newline" "$want" "$out"
else
	skip_test "script(1) is not installed: no terminal to test with"
fi

# Stages and versions: a pending version, and the current one by VersionId.
v1=$(jfield "$(kt_get app/db)" 'd["version_id"]')
aws_cli secretsmanager put-secret-value --secret-id app/db \
	--secret-string "{\"password\":\"$P_PENDING\"}" --version-stages AWSPENDING >/dev/null
ctl get-stage get app/db --stage AWSPENDING --key password
expect_eq "--stage AWSPENDING reads the pending version" "$P_PENDING" "$(cat "$T/get-stage.out")"
ctl get-vid get app/db --version-id "$v1" --key password
expect_eq "--version-id reads that version" "$P_DB" "$(cat "$T/get-vid.out")"
ctl get-cur get app/db --key password
expect_eq "without --stage the current value is read, not the pending one" "$P_DB" "$(cat "$T/get-cur.out")"

# --- get --json: the answer as it came ------------------------------------------
ctl get-json get app/db --json
expect_rc get-json 0 "get --json"
check "get --json prints one JSON object, nothing after it" json_ok "$T/get-json.out"
check "get --json adds no newline when piped" test "$(tail -c 1 "$T/get-json.out")" = "}"
ref=$(kt_get app/db)
expect_eq "get --json is the daemon's answer (same members and values as another client gets)" "True" \
	"$("$PYTHON3" -c 'import json,sys; print(json.load(open(sys.argv[1])) == json.loads(sys.argv[2]))' "$T/get-json.out" "$ref")"
# The frame's payload as it came off the socket, read by a raw client.
raw_answer() {
	"$PYTHON3" - "$KT_SOCK" "$1" <<'PY'
import socket, struct, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
req = sys.argv[2].encode()
s.sendall(struct.pack(">I", len(req)) + req)
def take(n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise SystemExit("short answer")
        b += c
    return b
sys.stdout.buffer.write(take(struct.unpack(">I", take(4))[0]))
PY
}
raw_answer '{"v":1,"op":"get","secret":"app/db"}' >"$T/raw-get.json"
ctl get-json2 get app/db --json
check "get --json is byte for byte the frame keyturnd sent" cmp "$T/raw-get.json" "$T/get-json2.out"
ctl get-json-bin get app/cert --json
json_get "$T/get-json-bin.out" 'd["binary"]' | base64 -d >"$T/get-json-bin.dec"
check "get --json of a binary secret carries it as base64" cmp "$T/bin" "$T/get-json-bin.dec"
ctl get-json-err get no/such --json
expect_eq "get --json of a missing secret prints the error answer and exits 3" "3 not_found" \
	"$RC $(json_get "$T/get-json-err.out" 'd["error"]' 2>/dev/null)"

# --- not found: 3 ------------------------------------------------------------------
ctl nf get not/configured
expect_rc_msg nf 3 '^keyturnctl: not/configured: ' "an unconfigured name is not found, named on stderr"
check "nothing on stdout for an error" test ! -s "$T/nf.out"
ctl nf-key get app/db --key nope
expect_rc nf-key 3 "a missing --key member is not found"
ctl nf-aws get missing/in/aws
expect_rc nf-aws 3 "a configured secret that AWS does not have is not found"
ctl nf-vid get app/db --version-id 00000000-0000-0000-0000-000000000000
expect_rc nf-vid 3 "an unknown --version-id is not found"

# --- other errors: 1 ---------------------------------------------------------------
ctl badreq get app/plain --key x
expect_rc_msg badreq 1 '^keyturnctl: app/plain: ' "--key of a value that is not JSON is refused by the daemon"

# --- usage: 2 ------------------------------------------------------------------------
usage_case() {
	local what=$1
	shift
	ctl usage "$@"
	expect_rc_msg usage 2 '^keyturnctl: .*' "usage: $what"
	cat "$T/usage.err" >>"$T/usage-all.err"
}
usage_case "no command" 
usage_case "an unknown command" frobnicate
usage_case "get without NAME" get
usage_case "get with two names" get app/db app/plain
usage_case "an unknown option" --frob status
usage_case "an option the command does not take" list --key x
usage_case "--stage together with --version-id" get app/db --stage AWSCURRENT --version-id "$v1"
usage_case "--timeout that is not a number" --timeout soon status
usage_case "an empty NAME" get ""
usage_case "--key without its value" get app/db --key
check "usage errors point at --help" grep -q "Try 'keyturnctl --help'" "$T/usage-all.err"
ctl help --help
check "--help prints the usage and exits 0" sh -c "[ $RC = 0 ] && grep -q '^Usage: keyturnctl' '$T/help.out'"
ctl version --version
check "--version prints the version and exits 0" sh -c "[ $RC = 0 ] && grep -qE '^keyturnctl [0-9]' '$T/version.out'"

# --- list, status, refresh ------------------------------------------------------------
ctl list list
expect_rc list 0 "list"
check "list shows a table with every readable secret" sh -c \
	"grep -q '^NAME ' '$T/list.out' && grep -q '^app/cert ' '$T/list.out' && grep -q '^missing/in/aws ' '$T/list.out'"
ctl list-json list --json
expect_eq "list --json is the answer, with every name" \
	"app/cert app/db app/nl app/plain app/refresh app/refresh2 app/rotate app/user missing/in/aws" \
	"$(json_get "$T/list-json.out" '" ".join(s["name"] for s in d["secrets"])')"
check "list prints no values" sh -c "! grep -qE '$P_DB|$V_PLAIN|\"string\"' '$T/list.out' '$T/list-json.out'"

ctl status status
check "status prints a summary (exit 0)" sh -c "[ $RC = 0 ] && grep -q '^secrets: .*9 configured' '$T/status.out'"
ctl status-json status --json
expect_eq "status --json is the answer" "$MOTO_URL" "$(json_get "$T/status-json.out" 'd["backend"]["endpoint"]')"
ctl status-t --timeout 2 status
expect_rc status-t 0 "--timeout takes seconds"
KEYTURN_SOCKET="$KT_SOCK" "$CTL" status </dev/null >"$T/env.out" 2>"$T/env.err"
RC=$?
expect_rc env 0 "KEYTURN_SOCKET names the socket when --socket is not given"

ctl refresh refresh app/refresh
check "refresh prints the secret's metadata (exit 0)" sh -c \
	"[ $RC = 0 ] && grep -q '^app/refresh' '$T/refresh.out' && grep -q 'version:' '$T/refresh.out'"
check "refresh prints no value" sh -c "! grep -q 'refresh-$$' '$T/refresh.out'"
ctl refresh-again refresh app/refresh
expect_rc_msg refresh-again 5 '^keyturnctl: app/refresh: ' "a refresh right after another is throttled: unavailable for now"
ctl refresh-json refresh app/refresh2 --json
expect_eq "refresh --json is the answer" "app/refresh2 True" \
	"$(json_get "$T/refresh-json.out" 'd["name"] + " " + str(d["ok"])')"
ctl refresh-nf refresh not/configured
expect_rc refresh-nf 3 "refresh of an unconfigured name is not found"

# --- unavailable: 5 ---------------------------------------------------------------------
"$CTL" --socket "$T/no-such.sock" get app/db </dev/null >"$T/nosock.out" 2>"$T/nosock.err"
RC=$?
expect_rc_msg nosock 5 '^keyturnctl: ' "no daemon on the socket is unavailable"
KEYTURN_SOCKET="$T/no-such.sock" "$CTL" status </dev/null >"$T/nosock-env.out" 2>"$T/nosock-env.err"
RC=$?
expect_rc nosock-env 5 "KEYTURN_SOCKET is honoured (a missing socket there is unavailable)"

# --- verify: password on stdin only ---------------------------------------------------------
mkfifo "$T/pw.fifo"
"$CTL" --socket "$KT_SOCK" verify "$ME" <"$T/pw.fifo" >"$T/verify.out" 2>"$T/verify.err" &
vpid=$!
exec 7>"$T/pw.fifo"
# keyturnctl now waits for the password: look at what the system shows of it.
running_ctl() { tr '\0' '\n' <"/proc/$vpid/cmdline" 2>/dev/null | head -n 1 | grep -q 'keyturnctl$'; }
wait_until 20 running_ctl || diag "keyturnctl verify did not start"
args=$(tr '\0' ' ' <"/proc/$vpid/cmdline" 2>/dev/null; ps -eo args 2>/dev/null)
check "verify's command line shows no password" sh -c "! printf '%s' \"\$1\" | grep -qF -- '$PW_VERIFY'" _ "$args"
check "verify is waiting for the password on stdin" grep -q verify "/proc/$vpid/cmdline"
printf '%s\n' "$PW_VERIFY" >&7
exec 7>&-
wait "$vpid"
RC=$?
expect_rc_msg verify 3 'section maps the account' "verify of the caller's own account, which no [login:] section maps: not found"
check "the password is not in keyturnctl's output" sh -c "! grep -qF -- '$PW_VERIFY' '$T/verify.out' '$T/verify.err'"
ctl verify-empty verify "$ME"
expect_rc_msg verify-empty 1 'no password' "verify with nothing on stdin"
printf '%s' "$PW_VERIFY" | "$CTL" --socket "$KT_SOCK" verify "$ME" >"$T/verify-nonl.out" 2>"$T/verify-nonl.err"
RC=$?
expect_rc verify-nonl 3 "verify takes a last line without a newline"

# --- another user: denied (4), and its own secrets --------------------------------------------
if [ -n "$UA" ]; then
	ctl_as as-get get app/db
	expect_rc_msg as-get 4 '^keyturnctl: app/db: ' "another user is denied a secret it is not allowed"
	check "nothing on stdout when denied" test ! -s "$T/as-get.out"
	ctl_as as-own get app/user
	check "that user reads the secret it is allowed" cmp <(printf '%s' "$V_USER") "$T/as-own.out"
	ctl_as as-list list --json
	expect_eq "its list names only that secret" "app/user" \
		"$(json_get "$T/as-list.out" '" ".join(s["name"] for s in d["secrets"])')"
	printf 'x\n' | as_user "$CTL_AS" --socket "$KT_SOCK" verify root \
		>"$T/as-verify.out" 2>"$T/as-verify.err"
	RC=$?
	expect_rc as-verify 4 "another user may not verify root's password"
	printf 'x\n' | as_user "$CTL_AS" --socket "$KT_SOCK" verify "$UA" \
		>"$T/as-verify-own.out" 2>"$T/as-verify-own.err"
	RC=$?
	expect_rc as-verify-own 3 "a user may ask about its own account (no [login:] section: not found)"
else
	for i in 1 2 3 4 5 6; do skip_test "$NOROOT"; done
fi

# --- the socket's owner -------------------------------------------------------------------------
if [ -n "$UA" ]; then
	chown "$UA" "$KT_SOCK"
	ctl owner get app/plain
	expect_rc_msg owner 1 'belongs to uid|untrust|owner' "a socket owned by another user is not trusted"
	check "nothing on stdout from an untrusted socket" test ! -s "$T/owner.out"
	KEYTURN_SOCKET_OWNER="$UA" "$CTL" --socket "$KT_SOCK" get app/plain </dev/null \
		>"$T/owner-env.out" 2>"$T/owner-env.err"
	RC=$?
	expect_rc owner-env 0 "KEYTURN_SOCKET_OWNER lets the library accept that owner"
	chown root "$KT_SOCK"
	ctl owner-back get app/plain
	expect_rc owner-back 0 "the socket back with root is trusted again"
else
	for i in 1 2 3 4; do skip_test "needs root to chown the socket"; done
fi

# --- libkeyturn: fork and threads ----------------------------------------------------------------
if [ -x "$KT_THREADS" ]; then
	"$KT_THREADS" --fork "$KT_SOCK" app/plain >"$T/fork.out" 2>"$T/fork.err"
	RC=$?
	expect_rc fork 0 "a forked child reads through the handle it inherited, and so does the parent"
	"$KT_THREADS" "$KT_SOCK" app/cert 16 50 >"$T/threads.out" 2>"$T/threads.err"
	RC=$?
	expect_rc threads 0 "16 threads with a handle each read 50 times at once, all equal"
	check "kt-threads counted 800 good reads" grep -q '800 ok, 0 errors, 0 mismatches' "$T/threads.out"
	sed 's/^/# /' "$T/fork.out" "$T/threads.out"
else
	for i in 1 2 3; do skip_test "tests/tools/kt-threads is not built (make check builds it)"; done
fi

# --- docs/examples/dbclient through a rotation ----------------------------------------------------
if [ -x "$DBCLIENT" ]; then
	printf '%s\n' "$P_ROT_OLD" >"$T/db-password"
	KEYTURN_SOCKET="$KT_SOCK" DBCLIENT_DB_PASSWORD_FILE="$T/db-password" "$DBCLIENT" app/rotate \
		>"$T/dbclient1.out" 2>"$T/dbclient1.err"
	RC=$?
	expect_rc dbclient1 0 "dbclient connects with the current password"
	# The secret rotates in AWS and in the database; keyturnd has the old one.
	aws_cli secretsmanager put-secret-value --secret-id app/rotate \
		--secret-string "{\"password\":\"$P_ROT_NEW\"}" >/dev/null
	printf '%s\n' "$P_ROT_NEW" >"$T/db-password"
	KEYTURN_SOCKET="$KT_SOCK" DBCLIENT_DB_PASSWORD_FILE="$T/db-password" "$DBCLIENT" app/rotate \
		>"$T/dbclient2.out" 2>"$T/dbclient2.err"
	RC=$?
	if [ "$RC" = 0 ] && grep -q refreshing "$T/dbclient2.err"; then
		ok "dbclient, refused after a rotation, refreshes and connects with the new password"
	else
		not_ok "dbclient, refused after a rotation, refreshes and connects with the new password"
		diag "exit $RC"
		sed 's/^/#   /' "$T/dbclient2.err"
	fi
	# A password the database never takes: a bounded number of refreshes.
	printf 'never-%s\n' "$$" >"$T/db-password"
	KEYTURN_SOCKET="$KT_SOCK" DBCLIENT_DB_PASSWORD_FILE="$T/db-password" "$DBCLIENT" app/rotate \
		>"$T/dbclient3.out" 2>"$T/dbclient3.err"
	RC=$?
	expect_eq "dbclient gives up after 3 refreshes when the password never works" "1 3" \
		"$RC $(grep -c refreshing "$T/dbclient3.err")"
else
	for i in 1 2 3; do skip_test "docs/examples/dbclient is not built (make check builds it)"; done
fi

# --- keyturnctl schedule: no daemon, the same windows as test_awssched ------------
windows() { # EXPR FROM COUNT: the window starts keyturnctl schedule prints, one line
	"$KT_BUILDDIR/keyturnctl" schedule "$1" --from "$2" --count "$3" |
		sed -n 's/^ *\(Next window\|Iter\. #[0-9]*\): //p' | tr '\n' ' '
}
expect_eq "schedule: the second Sunday of each month at 04:00 (AWS's example)" \
	"2026-12-13T04:00:00Z 2027-01-10T04:00:00Z 2027-02-14T04:00:00Z " \
	"$(windows 'cron(0 4 ? * SUN#2 *)' 2026-12-01T00:00:00Z 3)"
expect_eq "schedule: the last day of the month at 16:00, a leap February first" \
	"2024-02-29T16:00:00Z 2024-03-31T16:00:00Z 2024-04-30T16:00:00Z " \
	"$(windows 'cron(0 16 L * ? *)' 2024-02-01 3)"
expect_eq "schedule: rate(10 days) counts from --from" \
	"2026-12-15T10:00:00Z 2026-12-25T10:00:00Z " \
	"$(windows 'rate(10 days)' '2026-12-05 10:00:00' 2)"
"$KT_BUILDDIR/keyturnctl" schedule 'cron(0 4 * * * *)' >"$T/sched-bad.out" 2>"$T/sched-bad.err"
expect_eq "schedule: an expression AWS refuses (both day fields set): exit 2" 2 "$?"
check "and the message says which rule" grep -q 'Day-of-month.*Day-of-week\|Day-of-week.*Day-of-month' "$T/sched-bad.err"
"$KT_BUILDDIR/keyturnctl" schedule 'rate(2 hours)' >/dev/null 2>"$T/sched-often.err"
expect_eq "schedule: more often than every four hours: exit 2" 2 "$?"

# --- the daemon stopped: 5 ------------------------------------------------------------------------
check "no secret value in the daemon's log" log_has_no_secrets "$P_DB" "$V_PLAIN" "$V_USER" \
	"$P_PENDING" "$P_ROT_OLD" "$P_ROT_NEW" "$(base64 <"$T/bin" | head -c 40)"
check "verify's password is not in the daemon's log" log_has_no_secrets "$PW_VERIFY"
stop_daemon
ctl stopped get app/plain
expect_rc stopped 5 "a get with the daemon stopped is unavailable"
ctl stopped-status status
expect_rc stopped-status 5 "a status with the daemon stopped is unavailable"

no_sanitizer_report "no sanitizer report from keyturnctl, kt-threads or dbclient"
check "no sanitizer report from keyturnd" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
[ "$tap_n" -eq "$PLANNED" ] || diag "PLANNED is $PLANNED but $tap_n checks ran: update PLANNED"
done_testing
