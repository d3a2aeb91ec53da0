#!/bin/bash
# keyturnctl reload: the reload op waits for the outcome, so systemd's
# ExecReload can fail visibly. A good file is applied (a new secret served,
# exit 0); a refused one keeps the configuration in use (the old secrets
# still served, exit 5, the file and line at fault on stderr and in the
# log); a caller other than root is refused (exit 4). SIGHUP stays for hand
# use. The unit's ExecReload is keyturnctl reload.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"

CTL="$KT_BUILDDIR/keyturnctl"
need_built "$KEYTURND"
need_built "$CTL"

start_moto
for s in app/one app/two app/three; do
	aws_cli secretsmanager create-secret --name "$s" --secret-string "value-of-$s" >/dev/null ||
		bail "moto setup"
done
me=$(id -un)
write_config <<EOF
[secret:app/one]
allow_users = $me
EOF
start_daemon || bail "keyturnd did not start"

# ctl ARGS...: keyturnctl on this daemon's socket; sets rc, out and err.
ctl() {
	"$CTL" --socket "$KT_SOCK" "$@" >"$T/ctl.out" 2>"$T/ctl.err"
	rc=$?
	out=$(cat "$T/ctl.out")
	err=$(cat "$T/ctl.err")
}
value() { jfield "$(kt_get "$1")" 'd.get("string", d.get("error"))' 2>/dev/null; }

if [ "$(id -u)" -ne 0 ]; then
	# The op is root's: as anyone else, every call below is refused.
	ctl reload
	expect_eq "as uid $(id -u), keyturnctl reload is refused with exit 4" 4 "$rc"
	diag "the other checks need root (the reload op is root only): skipped"
	skip_test "reload checks: not root"
	done_testing
	exit
fi

# --- a good file ----------------------------------------------------------------------
cat >>"$KT_CONF" <<EOF

[secret:app/two]
allow_users = $me
EOF
ctl reload
expect_eq "a good file: keyturnctl reload exits 0" 0 "$rc"
expect_eq "it says what is in effect" "reloaded: 2 secrets, 0 logins" "$out"
expect_eq "the new secret is served at once" "value-of-app/two" "$(value app/two)"
check "the log has the reload and its cost" grep -q 'reloaded .*: 2 secrets, 0 logins, in [0-9]* ms' "$KT_LOG"

ctl reload --json
expect_eq "--json: exit 0" 0 "$rc"
expect_eq "--json: the answer as keyturnd sent it" '{"ok":true,"secrets":2,"logins":0,"cached_entries":2}' "$out"

# --- a refused file -------------------------------------------------------------------------
cp "$KT_CONF" "$T/good.conf"
cat >>"$KT_CONF" <<EOF

[secret:app/three]
allow_users = $me
check_interval = soon
EOF
bad_line=$(grep -n '^check_interval = soon' "$KT_CONF" | cut -d: -f1)
ctl reload
expect_eq "a refused file: keyturnctl reload exits 5" 5 "$rc"
case $err in
"keyturnctl: reload: reload refused: $KT_CONF:$bad_line:"*check_interval*)
	ok "stderr names the file, the line and the key at fault" ;;
*)
	not_ok "stderr names the file, the line and the key at fault"
	diag "stderr: $err" ;;
esac
check "the log says the configuration in use is kept" \
	grep -q "reload: $KT_CONF:$bad_line:.*keeping the configuration in use" "$KT_LOG"
expect_eq "the secrets of the configuration in use are still served" \
	"value-of-app/one value-of-app/two" "$(value app/one) $(value app/two)"
expect_eq "the refused file's new secret is not" "not_found" "$(value app/three)"

# --- not root ---------------------------------------------------------------------------
chmod 755 "$T"
ans=$(kt_req_as nobody '{"v":1,"op":"reload"}' 2>&1)
expect_eq "another uid gets denied from the op" "denied" \
	"$(jfield "$ans" 'd.get("error")' 2>/dev/null)"
case $(jfield "$ans" 'd.get("message")' 2>/dev/null) in
*"root only"*) ok "the message says the op is root's" ;;
*) not_ok "the message says the op is root's"; diag "answer: $ans" ;;
esac
check "a denied reload is in the access log" grep -q 'op=reload secret=- uid=[0-9]* .*result=denied' "$KT_LOG"

# --- SIGHUP, for hand use --------------------------------------------------------------
cp "$T/good.conf" "$KT_CONF"
sed -i 's|^\[secret:app/two\]|[secret:app/three]|' "$KT_CONF"
kill -HUP "$KT_PID"
three_served() { [ "$(value app/three)" = "value-of-app/three" ]; }
if wait_until 15 three_served; then
	ok "SIGHUP still reloads (app/three served)"
else
	not_ok "SIGHUP still reloads (app/three served)"
fi

# --- the unit ---------------------------------------------------------------------------------
unit="$KT_BUILDDIR/packaging/systemd/keyturnd.service"
if [ -f "$unit" ]; then
	# "+": keyturnctl runs as root (the op is root's), not as User=keyturn.
	check "the unit reloads with keyturnctl reload as root, which waits for the outcome" \
		grep -qx 'ExecReload=+/.*/keyturnctl reload' "$unit"
	check "the unit no longer reloads by signal (/bin/kill may be missing)" \
		sh -c "! grep -q 'ExecReload=.*kill' '$unit'"
else
	skip_test "the built unit is not at $unit"
fi

check "no value reached the log" log_has_no_secrets value-of-app/one value-of-app/two value-of-app/three
done_testing
