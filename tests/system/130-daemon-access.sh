#!/bin/bash
# keyturnd's access rules with real local accounts: allow_users, allow_groups
# through the primary and through a supplementary group (SO_PEERGROUPS), root
# reads all, list and status show each caller only its own, verify is for
# root or the caller's own account, a SIGHUP that takes a user away applies at
# once, and every denial leaves an audit line without the value.
# Needs root (it creates users and groups, removed again on any exit).

# The number of checks below; a run that cannot make users skips each of
# them, saying why (before common.sh, which may need what a user lacks).
PLANNED=53

. "$KT_SRCDIR/tests/lib/accounts.sh"
need_root_accounts "create users (useradd/groupadd) and to connect as them"

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
need_built "$KEYTURND"

# --- users and groups, removed on any exit ----------------------------------
trap cleanup_accounts EXIT

GS=kttest-$$-gs   # a supplementary group of UC
GP=kttest-$$-gp   # the primary group of UD
UA=kttest-$$-a    # allowed nothing
UB=kttest-$$-b    # named in allow_users
UC=kttest-$$-c    # in GS as a supplementary group only
UD=kttest-$$-d    # GP as its primary group

mkgroup() { groupadd -r "$1" && made_groups+=("$1"); }
mkuser() { useradd -r -M -N -s /usr/sbin/nologin "$@" && made_users+=("${!#}"); }
mkgroup "$GS" && mkgroup "$GP" &&
	mkuser "$UA" && mkuser "$UB" && mkuser -G "$GS" "$UC" && mkuser -g "$GP" "$UD" ||
	bail "cannot create the test users and groups"
uid_a=$(id -u "$UA") uid_b=$(id -u "$UB") uid_c=$(id -u "$UC") uid_d=$(id -u "$UD")
gid_gs=$(getent group "$GS" | cut -d: -f3) gid_gp=$(getent group "$GP" | cut -d: -f3)
diag "users: $UA=$uid_a $UB=$uid_b $UC=$uid_c (groups $(id -G "$UC")) $UD=$uid_d (gid $gid_gp)"
# Only the primary group, no supplementary one at all: ktclient's UID:GID.
AS_D="$uid_d:$gid_gp"

# The test users must reach the socket: $T is private to root by default.
chmod 755 "$T"

# --- moto and the daemon -----------------------------------------------------
start_moto
V_B="user-b-value-$$-71c2"
V_GS="group-sup-value-$$-a93d"
V_GP="group-pri-value-$$-5e08"
V_ROOT="root-only-value-$$-c4b1"
for s in "s/user-b:$V_B" "s/group-sup:$V_GS" "s/group-pri:$V_GP" "s/root-only:$V_ROOT"; do
	aws_cli secretsmanager create-secret --name "${s%%:*}" --secret-string "${s#*:}" >/dev/null ||
		bail "moto setup"
done

# sections B_USERS: s/user-b is readable by whoever B_USERS names.
sections() {
	cat <<EOF2
[secret:s/user-b]
allow_users = $1
[secret:s/group-sup]
allow_groups = $GS
[secret:s/group-pri]
allow_groups = $GP
[secret:s/root-only]
[secret:s/gone-b]
allow_users = $UB
[secret:s/gone-root]
EOF2
}
sections "$UB" | write_config
start_daemon || bail "keyturnd did not start"
ok "keyturnd starts and answers status"

# req_as USER JSON...: ktclient as USER; the answers in REQ_OUT (one a line)
# and the client's pid, which the daemon sees, in REQ_PID.
req_as() {
	local user=$1
	shift
	"$PYTHON3" "$KT_LIB/ktclient.py" --socket "$KT_SOCK" --timeout 20 --as-user "$user" "$@" \
		>"$T/req.out" 2>"$T/req.err" &
	REQ_PID=$!
	wait "$REQ_PID"
	REQ_OUT=$(cat "$T/req.out")
	[ -s "$T/req.err" ] && sed 's/^/#   client: /' "$T/req.err"
}

# answer_of: "ok:VALUE" for a served value, else the error code.
answer_of() {
	jfield "$REQ_OUT" '("ok:" + d["string"]) if d.get("ok") else d.get("error")' 2>/dev/null ||
		echo "(no answer: $REQ_OUT)"
}

# Every denial we cause, as "op secret uid pid", checked against the log at
# the end.
denials=()

# get_as USER UID SECRET EXPECTED DESCRIPTION
get_as() {
	req_as "$1" "{\"v\":1,\"op\":\"get\",\"secret\":\"$3\"}"
	expect_eq "$5" "$4" "$(answer_of)"
	[ "$4" = denied ] && denials+=("get $3 $2 $REQ_PID")
}

get_as "$UA" "$uid_a" s/user-b denied "a user in no allow list is denied s/user-b"
get_as "$UA" "$uid_a" s/group-sup denied "a user in no allowed group is denied s/group-sup"
get_as "$UA" "$uid_a" s/root-only denied "a non-root user is denied a secret without allow keys"
get_as "$UB" "$uid_b" s/user-b "ok:$V_B" "a user named in allow_users reads the secret"
get_as "$UB" "$uid_b" s/group-sup denied "allow_users of one secret gives nothing of another"
get_as "$UC" "$uid_c" s/group-sup "ok:$V_GS" \
	"a user whose supplementary group is in allow_groups reads (SO_PEERGROUPS)"
get_as "$UC" "$uid_c" s/group-pri denied "a group not listed gives nothing"
get_as "$AS_D" "$uid_d" s/group-pri "ok:$V_GP" \
	"a caller whose primary gid is in allow_groups reads, with no supplementary groups at all"
get_as "$UD" "$uid_d" s/group-pri "ok:$V_GP" "the same user by name (with its groups) reads"
get_as "$AS_D" "$uid_d" s/user-b denied "the primary group gives nothing beyond its secrets"

# No name oracle: a caller other than root gets the same answer for a name
# that is not configured as for one it may not read; root learns which.
req_as "$UA" '{"v":1,"op":"get","secret":"s/no-such-'$$'"}'
expect_eq "a non-root user asking for an unconfigured name is denied, not told not_found" \
	"denied|uid $uid_a may not read s/no-such-$$" \
	"$(jfield "$REQ_OUT" 'd.get("error") + "|" + d.get("message", "")')"
req_as "$UA" '{"v":1,"op":"get","secret":"s/user-b"}'
expect_eq "and the answer for a configured name it may not read reads the same" \
	"denied|uid $uid_a may not read s/user-b" \
	"$(jfield "$REQ_OUT" 'd.get("error") + "|" + d.get("message", "")')"
denials+=("get s/user-b $uid_a $REQ_PID")
check "the log still tells root the name is not configured" \
	grep -qF "access: op=get secret=s/no-such-$$ uid=$uid_a" "$KT_LOG"
a=$(kt_get "s/no-such-$$")
expect_eq "root asking for an unconfigured name gets not_found" not_found "$(jfield "$a" 'd.get("error")')"

out=$(for s in s/user-b s/group-sup s/group-pri s/root-only; do
	a=$(kt_get "$s")
	jfield "$a" 'd.get("string", d.get("error"))'
done | tr '\n' ' ')
expect_eq "root reads every secret, listed or not" "$V_B $V_GS $V_GP $V_ROOT " "$out"

# --- list: each caller sees its own ------------------------------------------
names_of() { jfield "$REQ_OUT" '" ".join(s["name"] for s in d["secrets"])'; }
LIST='{"v":1,"op":"list"}'
req_as "$UA" "$LIST"
expect_eq "list of a user allowed nothing is empty" "" "$(names_of)"
req_as "$UB" "$LIST"
expect_eq "list of the allow_users user names its two secrets" "s/gone-b s/user-b" "$(names_of)"
check "list carries no values" sh -c "! grep -qE '$V_B|\"string\"|\"binary\"' '$T/req.out'"
req_as "$UC" "$LIST"
expect_eq "list of the supplementary-group member names its secret" "s/group-sup" "$(names_of)"
req_as "$AS_D" "$LIST"
expect_eq "list of the primary-group member names its secret" "s/group-pri" "$(names_of)"
REQ_OUT=$(kt_req "$LIST")
expect_eq "list of root names every secret" \
	"s/gone-b s/gone-root s/group-pri s/group-sup s/root-only s/user-b" "$(names_of)"

# --- status: errors of other secrets stay hidden -----------------------------
STATUS='{"v":1,"op":"status"}'
err_secrets() { jfield "$REQ_OUT" '" ".join(sorted(set(e["secret"] for e in d["last_errors"])))'; }
root_sees_both() {
	REQ_OUT=$(kt_req "$STATUS")
	[ "$(err_secrets)" = "s/gone-b s/gone-root" ]
}
if wait_until 30 root_sees_both; then
	ok "status of root shows the errors of both secrets missing in AWS"
else
	not_ok "status of root shows the errors of both secrets missing in AWS"
	diag "status: $REQ_OUT"
fi
req_as "$UB" "$STATUS"
expect_eq "status of a user shows the errors of its own secrets only" "s/gone-b" "$(err_secrets)"
check "status of that user does not even name the other secret" \
	sh -c "! grep -q 's/gone-root' '$T/req.out'"
req_as "$UA" "$STATUS"
expect_eq "status of a user allowed nothing shows no errors" "" "$(err_secrets)"
expect_eq "status still counts every configured secret for that user" 6 \
	"$(jfield "$REQ_OUT" 'd["secrets"]["configured"]')"

# --- verify: root, or the caller's own account --------------------------------
verify_req() { echo "{\"v\":1,\"op\":\"verify\",\"user\":\"$1\",\"password\":\"not-the-password-$$\"}"; }
req_as "$UA" "$(verify_req root)"
expect_eq "verify of root's account by a non-root caller is denied" denied "$(answer_of)"
denials+=("verify - $uid_a $REQ_PID")
req_as "$UA" "$(verify_req "$UB")"
expect_eq "verify of another user's account by a non-root caller is denied" denied "$(answer_of)"
denials+=("verify - $uid_a $REQ_PID")
req_as "$AS_D" "$(verify_req "$UB")"
expect_eq "verify by a caller known only by uid, for another account, is denied" denied \
	"$(answer_of)"
denials+=("verify - $uid_d $REQ_PID")
req_as "$UB" "$(verify_req "$UB")"
v=$(answer_of)
if [ "$v" != denied ] && [ -n "$v" ]; then
	ok "verify of its own account by a non-root caller is not denied (answer: $v)"
else
	not_ok "verify of its own account by a non-root caller is not denied"
	diag "answer: $REQ_OUT"
fi
a=$(kt_req "$(verify_req "$UB")")
REQ_OUT=$a
v=$(answer_of)
if [ "$v" != denied ] && [ -n "$v" ]; then
	ok "verify of any account by root is not denied (answer: $v)"
else
	not_ok "verify of any account by root is not denied"
	diag "answer: $a"
fi

# reloaded_since N: the log has more than N "reloaded" lines (a fresh count
# at every call, for wait_until).
reloaded_since() { [ "$(grep -c 'reloaded ' "$KT_LOG")" -gt "$1" ]; }

# --- a reload that takes a user away applies at once --------------------------
# One connection of UB: a get, then (after the reload) another get.
cat >"$T/same.py" <<'PY'
import json, sys
sys.path.insert(0, sys.argv[1])
import ktclient
ktclient.become_user(sys.argv[3])
req = '{"v":1,"op":"get","secret":"s/user-b"}'
with ktclient.KtClient(sys.argv[2], 20) as c:
    print(json.dumps(c.request(req)), flush=True)
    sys.stdin.readline()
    print(json.dumps(c.request(req)), flush=True)
PY
mkfifo "$T/go"
"$PYTHON3" "$T/same.py" "$KT_LIB" "$KT_SOCK" "$UB" <"$T/go" >"$T/same.out" 2>"$T/same.err" &
same_pid=$!
kt_pids+=("$same_pid")
# Read-write, so that neither this open nor a later write can block or
# raise SIGPIPE when the client has died.
exec 7<>"$T/go"
wait_until 20 test -s "$T/same.out"
first=$(head -n 1 "$T/same.out")
expect_eq "before the reload, UB reads s/user-b on a connection it keeps open" "$V_B" \
	"$(jfield "$first" 'd.get("string", d.get("error"))')"
reloads=$(grep -c 'reloaded ' "$KT_LOG")
sections "$UC" | write_config
kill -HUP "$KT_PID"
if wait_until 20 reloaded_since "$reloads"; then
	ok "SIGHUP reloads the configuration"
else
	not_ok "SIGHUP reloads the configuration"
	tail -n 5 "$KT_LOG" | sed 's/^/#   /'
fi
echo go >&7
exec 7>&-
wait "$same_pid"
second=$(sed -n 2p "$T/same.out")
expect_eq "after the reload the same connection of UB is denied" denied \
	"$(jfield "$second" 'd.get("error", "served")' 2>/dev/null || echo "(no answer: $(cat "$T/same.err"))")"
denials+=("get s/user-b $uid_b $same_pid")
get_as "$UB" "$uid_b" s/user-b denied "after the reload a new connection of UB is denied"
get_as "$UC" "$uid_c" s/user-b "ok:$V_B" "after the reload the newly named user reads s/user-b"

# --- the audit trail -----------------------------------------------------------
for d in "${denials[@]}"; do
	read -r op secret uid pid <<<"$d"
	line="access: op=$op secret=$secret uid=$uid pid=$pid result=denied"
	check "the log has the audit line '$line'" grep -qF -- "$line" "$KT_LOG"
done
REQ_OUT=$(kt_req "$STATUS")
# ... and the unconfigured name asked for by a non-root user.
expect_eq "status counts every denial" "$((${#denials[@]} + 1))" "$(jfield "$REQ_OUT" 'd["denied"]')"
check "no secret value in the daemon's debug log" \
	log_has_no_secrets "$V_B" "$V_GS" "$V_GP" "$V_ROOT" "not-the-password-$$"

stop_daemon
expect_eq "SIGTERM stops keyturnd cleanly" 0 "$KT_STATUS"
check "no sanitizer report from keyturnd" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
[ "$tap_n" -eq "$PLANNED" ] || not_ok "PLANNED ($PLANNED) matches the checks run ($tap_n)"
done_testing
