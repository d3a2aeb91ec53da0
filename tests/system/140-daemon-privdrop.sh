#!/bin/bash
# keyturnd started as root drops to its service user: every uid and gid the
# service user's, only its groups, no capability in any set, no_new_privs,
# not dumpable (so not even the service user can read its memory or
# environment), the socket and state_dir its own; and it still fetches
# secrets and reloads its configuration afterwards.
# Needs root (it creates the service user, removed again on any exit).

# The number of checks below; a run that cannot make users skips each of
# them, saying why (before common.sh, which may need what a user lacks).
PLANNED=34

. "$KT_SRCDIR/tests/lib/accounts.sh"
need_root_accounts "create the service user and to start keyturnd as root"
command -v setpriv >/dev/null || skip_all "needs setpriv (util-linux) to act as the service user"

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
need_built "$KEYTURND"

# --- the service user, removed on any exit ------------------------------------
trap cleanup_accounts EXIT

SVC=kttest-$$-svc
SVC_G=kttest-$$-svcg  # its primary group
SVC_X=kttest-$$-svcx  # a supplementary group of it
groupadd -r "$SVC_G" && made_groups+=("$SVC_G") &&
	groupadd -r "$SVC_X" && made_groups+=("$SVC_X") &&
	useradd -r -M -N -s /usr/sbin/nologin -g "$SVC_G" -G "$SVC_X" "$SVC" && made_users+=("$SVC") ||
	bail "cannot create the service user"
svc_uid=$(id -u "$SVC") svc_gid=$(id -g "$SVC")
svc_groups=$(id -G "$SVC" | tr ' ' '\n' | sort -n | tr '\n' ' ')
diag "service user $SVC: uid $svc_uid gid $svc_gid groups $svc_groups"

# The service user must reach the socket and read the configuration again on
# SIGHUP. The socket's directory does not exist: keyturnd makes it, binds
# the socket in it as root and then gives it to the service user, so that
# it can remove the socket when it stops (under the shipped unit,
# RuntimeDirectory= makes /run/keyturn root's instead, and systemd removes it).
chmod 755 "$T"

start_moto
V1="privdrop-value-$$-3b9e"
V2="after-reload-value-$$-d41f"
aws_cli secretsmanager create-secret --name app/one --secret-string "$V1" >/dev/null ||
	bail "moto setup"
aws_cli secretsmanager create-secret --name app/two --secret-string "$V2" >/dev/null

write_config "user = $SVC" <<EOF2
[secret:app/one]
EOF2
# write_config names root; the last `user =` is the one this test means.
sed -i "/^user = $(id -un)\$/d" "$KT_CONF"
chmod 644 "$KT_CONF"
start_daemon || bail "keyturnd did not start as root"
ok "keyturnd started as root answers status"
check "the log says it dropped privileges to the service user" \
	grep -qF "dropped privileges to $SVC (uid $svc_uid, gid $svc_gid)" "$KT_LOG"
expect_eq "the socket's directory it made is the service user's, mode 0755" \
	"$SVC 755" "$(stat -c '%U %a' "$T/run")"

# --- /proc/PID/status ----------------------------------------------------------
st=$(cat "/proc/$KT_PID/status")
field() { printf '%s\n' "$st" | sed -n "s/^$1:[[:space:]]*//p" | tr -s ' \t' ' ' | sed 's/ $//'; }
expect_eq "Uid: real, effective, saved and fs uid are the service user's" \
	"$svc_uid $svc_uid $svc_uid $svc_uid" "$(field Uid)"
expect_eq "Gid: real, effective, saved and fs gid are the service user's" \
	"$svc_gid $svc_gid $svc_gid $svc_gid" "$(field Gid)"
expect_eq "Groups: exactly the service user's groups" "$svc_groups" \
	"$(field Groups | tr ' ' '\n' | sed '/^$/d' | sort -n | tr '\n' ' ')"
for c in CapInh CapPrm CapEff CapBnd CapAmb; do
	expect_eq "$c is empty" 0000000000000000 "$(field "$c")"
done
expect_eq "NoNewPrivs is set" 1 "$(field NoNewPrivs)"

# Every thread (the AWS workers start after the drop) has the same.
bad_threads=""
for ts in /proc/"$KT_PID"/task/*/status; do
	t=$(cat "$ts" 2>/dev/null) || continue
	u=$(printf '%s\n' "$t" | sed -n 's/^Uid:[[:space:]]*//p' | tr -s ' \t' ' ')
	cp=$(printf '%s\n' "$t" | sed -n 's/^CapPrm:[[:space:]]*//p')
	cb=$(printf '%s\n' "$t" | sed -n 's/^CapBnd:[[:space:]]*//p')
	[ "$u" = "$svc_uid $svc_uid $svc_uid $svc_uid" ] && [ "$cp" = 0000000000000000 ] &&
		[ "$cb" = 0000000000000000 ] || bad_threads+=" $ts"
done
nthreads=$(ls "/proc/$KT_PID/task" | wc -l)
expect_eq "each of its $nthreads threads runs as the service user without capabilities" "" \
	"$bad_threads"

# Not dumpable: the kernel then gives the process's /proc files to root, and
# refuses even the service user its environment and memory.
expect_eq "/proc/PID/environ belongs to root (the process is not dumpable)" 0 \
	"$(stat -c %u "/proc/$KT_PID/environ")"
as_svc() { setpriv --reuid="$svc_uid" --regid="$svc_gid" --init-groups "$@"; }
check "the service user itself cannot read the daemon's environment" \
	sh -c "! setpriv --reuid=$svc_uid --regid=$svc_gid --init-groups cat /proc/$KT_PID/environ"
check "the service user itself cannot open the daemon's memory" \
	sh -c "! setpriv --reuid=$svc_uid --regid=$svc_gid --init-groups dd if=/proc/$KT_PID/mem bs=1 count=1 of=/dev/null"
check "the same command as the service user works on a process of its own (control)" \
	as_svc sh -c 'cat /proc/$$/environ >/dev/null'

# --- files ----------------------------------------------------------------------
expect_eq "the socket belongs to the service user" "$SVC" "$(stat -c %U "$KT_SOCK")"
expect_eq "the socket is a socket anyone may connect to" "socket 666" \
	"$(stat -c '%F %a' "$KT_SOCK")"
expect_eq "state_dir belongs to the service user" "$SVC" "$(stat -c %U "$T/state")"
expect_eq "state_dir is mode 0700" 700 "$(stat -c %a "$T/state")"

# reloaded_since N: the log has more than N "reloaded" lines (a fresh count
# at every call, for wait_until).
reloaded_since() { [ "$(grep -c 'reloaded ' "$KT_LOG")" -gt "$1" ]; }

# --- it still works ---------------------------------------------------------------
a=$(kt_get app/one)
expect_eq "after the drop it fetches a secret from moto" "$V1" \
	"$(jfield "$a" 'd.get("string", d.get("error"))')"
a=$(kt_get app/two)
expect_eq "a section not configured yet is not_found" not_found "$(jfield "$a" 'd.get("error")')"

write_config "user = $SVC" <<EOF2
[secret:app/one]
[secret:app/two]
EOF2
sed -i "/^user = $(id -un)\$/d" "$KT_CONF"
chmod 644 "$KT_CONF"
reloads=$(grep -c 'reloaded ' "$KT_LOG")
kill -HUP "$KT_PID"
if wait_until 20 reloaded_since "$reloads"; then
	ok "SIGHUP reloads the configuration as the service user"
else
	not_ok "SIGHUP reloads the configuration as the service user"
	tail -n 5 "$KT_LOG" | sed 's/^/#   /'
fi
check "the reload did not warn about changed socket/user/state_dir" \
	sh -c "! grep -q 'take effect at the next restart' '$KT_LOG'"
a=$(kt_get app/two)
expect_eq "after the reload it fetches the newly configured secret" "$V2" \
	"$(jfield "$a" 'd.get("string", d.get("error"))')"
a=$(kt_get app/one)
expect_eq "and still serves the old one" "$V1" "$(jfield "$a" 'd.get("string", d.get("error"))')"
expect_eq "after the reload it still runs as the service user" \
	"$svc_uid $svc_uid $svc_uid $svc_uid" \
	"$(sed -n 's/^Uid:[[:space:]]*//p' "/proc/$KT_PID/status" | tr -s ' \t' ' ' | sed 's/ $//')"

# A configuration that the service user cannot read is refused on SIGHUP;
# the daemon keeps serving with what it has.
chmod 600 "$KT_CONF"
kill -HUP "$KT_PID"
if wait_until 20 grep -q 'reload: .*keeping the configuration in use' "$KT_LOG"; then
	ok "a configuration the service user cannot read is refused on SIGHUP"
else
	not_ok "a configuration the service user cannot read is refused on SIGHUP"
	tail -n 5 "$KT_LOG" | sed 's/^/#   /'
fi
a=$(kt_get app/two)
expect_eq "and the daemon keeps serving with the configuration it has" "$V2" \
	"$(jfield "$a" 'd.get("string", d.get("error"))')"
chmod 644 "$KT_CONF"

check "no secret value in the daemon's debug log" log_has_no_secrets "$V1" "$V2"
stop_daemon
expect_eq "SIGTERM stops keyturnd cleanly" 0 "$KT_STATUS"
check "the socket is removed on stop" test ! -e "$KT_SOCK"
check "no sanitizer report from keyturnd" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
[ "$tap_n" -eq "$PLANNED" ] || not_ok "PLANNED ($PLANNED) matches the checks run ($tap_n)"
done_testing
