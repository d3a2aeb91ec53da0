#!/bin/bash
# keyturnd under a real systemd, as an operator runs it: a minimal Debian 12
# booted in a container (tests/lib/box.sh), the .debs of this build installed
# with apt, the shipped unit and configuration. keyturnd inside reaches moto
# on this host's loopback through the fault proxy.
#  - install: the unit enabled and started; start: READY=1 only once the
#    first fetches are done, STATUS= in systemctl status; keyturnctl
#    get/list/status as root, as an allowed user, and refused to another;
#  - systemctl reload: a good file takes effect (exit 0), a broken one fails
#    visibly (non-zero, the reason in the journal) and the old one serves;
#  - the watchdog restarts a keyturnd stopped with SIGSTOP; a crash
#    (SIGSEGV) is restarted; a start that keeps failing stops at the start
#    limit, as the unit's comment says;
#  - the sandbox: no capability, no new privileges, a seccomp filter, no
#    write outside /var/lib/keyturn, locked memory and no swap warning, and
#    systemd-analyze security's figure.
# Needs root, systemd-nspawn and a Debian mirror (once, for the cached root);
# skips every check, saying why, without them. About two minutes.

PLANNED=59

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/proxy.sh"
. "$KT_LIB/box.sh"
trap box_cleanup EXIT
box_need
box_debs || bail "no .debs of this build to install"

start_moto
start_proxy "$MOTO_URL"
aws_cli secretsmanager create-secret --name app/db --secret-string 'db-pass-1' >/dev/null &&
	aws_cli secretsmanager create-secret --name app/api --secret-string 'api-key-1' >/dev/null &&
	aws_cli secretsmanager create-secret --name app/rot \
		--secret-string '{"user":"svc","password":"rot-pass-1"}' >/dev/null ||
	bail "moto setup"

box_boot
ok "a Debian 12 box booted with $(box systemctl --version | head -n 1)"

box_install_keyturn keyturn libkeyturn1
expect_eq "the unit is enabled by the package" enabled "$(box systemctl is-enabled keyturnd)"
check "and started by it, serving the shipped file (no secret)" \
	box systemctl is-active keyturnd

# --- start: READY=1 after the first fetch ----------------------------------
box useradd -m alice && box useradd -m bob || bail "useradd in the box"
conf() {
	cat <<EOF
[daemon]
endpoint = $PROXY_URL
log_level = info

[secret:app/db]
allow_users = alice
EOF
	cat
}
conf </dev/null | box_put /etc/keyturn/keyturnd.conf 0640
# Every AWS answer 2 s late: a READY=1 sent before the first fetch would let
# systemctl start return while app/db is still being fetched.
proxy POST /__proxy/plan '{"default":{"delay":2}}' >/dev/null || bail "proxy plan"
box systemctl restart keyturnd
start_rc=$?
expect_eq "systemctl restart with a secret configured: exit 0" 0 "$start_rc"
box keyturnctl status --json >"$T/status.json" 2>&1
expect_eq "when systemctl returns (READY=1), app/db is already cached" 1 \
	"$(json_get "$T/status.json" 'd["secrets"]["cached"]' 2>&1)"
proxy POST /__proxy/plan '{"default":null}' >/dev/null
status_says() { box systemctl status keyturnd --no-pager | grep -qE "$1"; }
absent() { ! grep -qiE "$1" "$2"; }
check "systemctl status shows keyturnd's STATUS= text" status_says '^ +Status: "serving"'

expect_eq "keyturnctl get as root" "db-pass-1" "$(box keyturnctl get app/db 2>&1)"
expect_eq "keyturnctl get as alice (allow_users)" "db-pass-1" \
	"$(box runuser -u alice -- keyturnctl get app/db 2>&1)"
box runuser -u bob -- keyturnctl get app/db >"$T/bob.out" 2>&1
expect_eq "keyturnctl get as bob (not allowed): exit 4" 4 "$?"
list_has() { box keyturnctl list | grep -q "$1"; }
check "keyturnctl list as root names app/db" list_has app/db
check "keyturnctl status as alice answers" box runuser -u alice -- keyturnctl status

# --- the HTTP door under the unit: AF_NETLINK, the token's group --------------
# The box shares the host's network: a port free here is free there.
HTTP_PORT=$(free_port)
conf <<EOF | box_put /etc/keyturn/keyturnd.conf 0640

[http]
listen = 127.0.0.1:$HTTP_PORT unix:/run/keyturn/http.sock
EOF
box usermod -aG keyturn-http alice || bail "usermod in the box"
box systemctl restart keyturnd
diag "keyturn: $(box id keyturn 2>&1); keyturnd's groups: $(box grep '^Groups' "/proc/$(box systemctl show -p MainPID --value keyturnd)/status" 2>&1)"
box journalctl -u keyturnd --no-pager -n 20 2>&1 | grep -i token | sed 's/^/# /'
expect_eq "with [http], the token file is made: keyturn:keyturn-http 640" \
	"keyturn keyturn-http 640" "$(box stat -c '%U %G %a' /run/keyturn/http-token 2>&1)"
# The box has bash but no curl: a GET written by hand on bash's /dev/tcp.
http_get() { # USER TOKEN PATH
	box runuser -u "$1" -- bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0" || exit 1
		printf "GET %s HTTP/1.1\r\nHost: localhost\r\nX-Aws-Parameters-Secrets-Token: %s\r\nConnection: close\r\n\r\n" "$2" "$1" >&3
		cat <&3' "$HTTP_PORT" "$2" "$3" 2>&1
}
token=$(box cat /run/keyturn/http-token)
http_get alice "$(box runuser -u alice -- cat /run/keyturn/http-token 2>&1)" /v1/app/db >"$T/http-alice.out"
check "alice (keyturn-http, allow_users) reads app/db over loopback TCP: the peer's uid found under the unit's RestrictAddressFamilies" \
	grep -q '"SecretString":"db-pass-1"' "$T/http-alice.out"
check "bob cannot read the token file (0640, group keyturn-http)" \
	sh -c '! "$@"' _ box runuser -u bob -- cat /run/keyturn/http-token
http_get bob "$token" /v1/app/db >"$T/http-bob.out"
check "bob with the token gets 403 AccessDeniedException: the token alone reads nothing" \
	grep -q '^HTTP/1.1 403.*' "$T/http-bob.out"
check "and the answer names the AWS error type" grep -q '"__type":"AccessDeniedException"' "$T/http-bob.out"

# --- systemd credentials: LoadCredential= from keyturnd's socket ---------------
conf <<EOF2 | box_put /etc/keyturn/keyturnd.conf 0640
credential = db-password
allow_units = credtest.service

[credentials]
socket = /run/keyturn/credentials.sock
EOF2
box systemctl restart keyturnd
for u in credtest credother; do
	box_put "/etc/systemd/system/$u.service" 0644 <<EOF2
[Service]
Type=oneshot
LoadCredential=db-password:/run/keyturn/credentials.sock
ExecStart=/bin/sh -c 'cat "\$CREDENTIALS_DIRECTORY/db-password" > /root/$u.out'
EOF2
done
box systemctl daemon-reload
box systemctl start credtest.service
expect_eq "a unit with LoadCredential= from keyturnd's socket gets the value (systemd itself asking)" \
	"db-pass-1" "$(box cat /root/credtest.out 2>&1)"
box systemctl start credother.service >/dev/null 2>&1
diag "credother.service (not allowed) is $(box systemctl is-active credother.service): systemd gives an empty credential for 0 bytes"
no_value() { [ "$(box cat /root/credother.out 2>/dev/null)" != "db-pass-1" ]; }
check "a unit not in allow_units does not get the value (keyturnd wrote 0 bytes)" no_value
journal_has() { box journalctl -u keyturnd --no-pager | grep -q "$1"; }
check "and keyturnd says why in the journal" journal_has credother.service

# --- host rotation under the unit: the helper runs set_command as keyturn ---
# The unit gives keyturnd no capability, so the command runs as keyturn and
# may write only where keyturn may (its StateDirectory).
conf <<EOF2 | box_put /etc/keyturn/keyturnd.conf 0640

[secret:app/rot]
key = password

[rotate:app/rot]
length = 20
set_command = /bin/sh -c 'cat > /var/lib/keyturn/rot-set.out'
test_command = /bin/true
EOF2
box systemctl restart keyturnd
box keyturnctl rotate app/rot >"$T/rotate.out" 2>&1
expect_eq "keyturnctl rotate under the unit: exit 0 (four steps, seccomp and all)" 0 "$?"
sed 's/^/# /' "$T/rotate.out"
# By VersionId: moto may answer a plain GetSecretValue with the old version.
rot_ver=$(sed -n 's/^app\/rot: rotated to version //p' "$T/rotate.out")
rot_pw=$("$PYTHON3" -c 'import json,sys; print(json.loads(sys.argv[1])["password"])' \
	"$(aws_cli secretsmanager get-secret-value --secret-id app/rot --version-id "$rot_ver" \
		--query SecretString --output text)")
check "the new AWSCURRENT holds a 20-character password" test "${#rot_pw}" -eq 20
expect_eq "set_command (run by the helper as keyturn) read exactly that password on stdin" \
	"$rot_pw" "$(box cat /var/lib/keyturn/rot-set.out 2>&1)"
expect_eq "keyturnd serves it as soon as keyturnctl rotate returns" "$rot_pw" \
	"$(box keyturnctl get app/rot 2>&1)"
box runuser -u bob -- keyturnctl rotate app/rot >"$T/rotate-bob.out" 2>&1
expect_eq "keyturnctl rotate as bob: exit 4 (root only)" 4 "$?"

# --- systemctl reload --------------------------------------------------------
conf <<EOF | box_put /etc/keyturn/keyturnd.conf 0640

[secret:app/api]
allow_users = alice
EOF
box systemctl reload keyturnd >"$T/reload.out" 2>&1
expect_eq "systemctl reload with a good file: exit 0" 0 "$?"
expect_eq "the new secret is served at once" "api-key-1" \
	"$(box runuser -u alice -- keyturnctl get app/api 2>&1)"

conf <<EOF | box_put /etc/keyturn/keyturnd.conf 0640

[secret:app/api]
allow_users = alice
check_interval = soon
EOF
box systemctl reload keyturnd >"$T/reload.out" 2>&1
reload_rc=$?
if [ "$reload_rc" -ne 0 ]; then
	ok "systemctl reload with a broken file fails (exit $reload_rc)"
else
	not_ok "systemctl reload with a broken file fails (exit $reload_rc)"
fi
box journalctl -u keyturnd --no-pager -o cat >"$T/journal.txt"
check "the journal says why, naming the file and line" \
	grep -qE 'reload refused: /etc/keyturn/keyturnd.conf:[0-9]+: .*check_interval' "$T/journal.txt"
expect_eq "the old configuration keeps serving app/api" "api-key-1" \
	"$(box runuser -u alice -- keyturnctl get app/api 2>&1)"
expect_eq "and the service stays active" active "$(box systemctl is-active keyturnd)"
check "STATUS= says the reload failed" status_says 'reload failed; old configuration kept'
conf <<EOF | box_put /etc/keyturn/keyturnd.conf 0640

[secret:app/api]
allow_users = alice
EOF
box systemctl reload keyturnd >/dev/null 2>&1
expect_eq "the file mended, systemctl reload: exit 0" 0 "$?"

# --- the sandbox ----------------------------------------------------------
main_pid() { box systemctl show -p MainPID --value keyturnd; }
PID=$(main_pid)
box cat "/proc/$PID/status" >"$T/proc-status" 2>&1
field() { sed -n "s/^$1:[[:space:]]*//p" "$T/proc-status"; }
kt_uid=$(box id -u keyturn)
expect_eq "keyturnd runs as the keyturn user" "$kt_uid $kt_uid $kt_uid $kt_uid" "$(field Uid | tr -s '\t ' ' ')"
expect_eq "with no capability: effective, permitted, bounding, ambient" \
	"0000000000000000 0000000000000000 0000000000000000 0000000000000000" \
	"$(field CapEff) $(field CapPrm) $(field CapBnd) $(field CapAmb)"
expect_eq "no new privileges, and a seccomp filter" "1 2" "$(field NoNewPrivs) $(field Seccomp)"
locked=$(field VmLck | awk '{print $1}')
if [ "${locked:-0}" -ge 4096 ]; then
	ok "secrets are in locked memory: VmLck $locked kB (locked_memory 4M, under the default 8M limit)"
else
	not_ok "secrets are in locked memory: VmLck ${locked:-?} kB"
fi
check "the journal has no swap warning" absent 'swap|cannot set up .* locked memory' "$T/journal.txt"

# What the daemon's own mount namespace lets even root write: nothing but
# its state directory (ProtectSystem=strict, ProtectHome, PrivateTmp).
in_ns() { box nsenter -t "$PID" -m "$@"; }
cannot_write() { ! in_ns sh -c ": >$1" 2>/dev/null; }
for p in /etc/kt-probe /usr/kt-probe /var/lib/kt-probe /root/kt-probe /home/alice/kt-probe; do
	check "in keyturnd's mount namespace, $p cannot be written" cannot_write "$p"
done
check "but /var/lib/keyturn can, by the keyturn user" \
	in_ns setpriv --reuid keyturn --regid keyturn --clear-groups sh -c ': >/var/lib/keyturn/kt-probe && rm /var/lib/keyturn/kt-probe'
in_ns sh -c ': >/tmp/kt-probe' 2>/dev/null
check "its /tmp is its own (PrivateTmp): a file made there is not in the box's /tmp" \
	box sh -c '! [ -e /tmp/kt-probe ]'

box systemd-analyze security keyturnd.service --no-pager >"$T/security.txt" 2>&1
exposure=$(sed -n 's/.*Overall exposure level for keyturnd.service: \([0-9.]*\).*/\1/p' "$T/security.txt")
grep -E '^✗' "$T/security.txt" | sed 's/^/# exposed: /' | tr -s ' '
if [ -n "$exposure" ] && awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'; then
	ok "systemd-analyze security: $exposure (goal: 2.0 or lower)"
else
	not_ok "systemd-analyze security: ${exposure:-no figure} (goal: 2.0 or lower)"
fi

# --- the watchdog, a crash, the start limit ----------------------------------
nrestarts() { box systemctl show -p NRestarts --value keyturnd; }
restarted_from() { # restarted_from PID N: a new main PID, N restarts, active
	local p
	p=$(main_pid)
	[ -n "$p" ] && [ "$p" != 0 ] && [ "$p" != "$1" ] && [ "$(nrestarts)" -ge "$2" ] &&
		[ "$(box systemctl is-active keyturnd)" = active ]
}
# restarts_after SIGNAL SECONDS DESCRIPTION: one check, that the main
# process sent SIGNAL is replaced by a new one within SECONDS.
restarts_after() {
	local pid n0
	pid=$(main_pid)
	n0=$(nrestarts)
	box systemctl kill --kill-who=main --signal="$1" keyturnd
	if wait_until "$2" restarted_from "$pid" $((n0 + 1)); then
		ok "$3"
	else
		not_ok "$3"
		box systemctl status keyturnd --no-pager 2>&1 | sed 's/^/#   /'
	fi
}
restarts_after SIGSTOP 120 "a keyturnd stopped with SIGSTOP is killed by the watchdog and restarted"
box journalctl -u keyturnd --no-pager -o cat >"$T/journal.txt"
check "the journal says it was the watchdog" grep -q 'Watchdog timeout' "$T/journal.txt"
expect_eq "after the restart app/db is served again" "db-pass-1" "$(box keyturnctl get app/db 2>&1)"

restarts_after SIGSEGV 60 "a crash (SIGSEGV) is restarted (Restart=on-failure)"
expect_eq "and serves again" "db-pass-1" "$(box keyturnctl get app/db 2>&1)"

# A start that cannot succeed: five starts in StartLimitIntervalSec, then
# the unit is left failed (start-limit-hit). reset-failed forgets the
# earlier starts of this test.
printf '[daemon]\nendpoint = %s\nno_such_key = 1\n' "$PROXY_URL" |
	box_put /etc/keyturn/keyturnd.conf 0640
box systemctl reset-failed keyturnd
box systemctl restart keyturnd >/dev/null 2>&1
expect_eq "a start with a broken file fails" 1 "$?"
# systemd logs the start limit itself, while each start's complaint comes
# through keyturnd's stderr stream, which journald may store a moment later:
# both are waited for.
hit() {
	box journalctl -u keyturnd --no-pager -o cat >"$T/journal.txt"
	grep -q 'Start request repeated too quickly' "$T/journal.txt" &&
		[ "$(grep -c 'no_such_key' "$T/journal.txt")" -ge 5 ]
}
if wait_until 90 hit; then
	ok "after five failed starts the unit stops retrying: 'Start request repeated too quickly'"
else
	not_ok "after five failed starts the unit stops retrying: 'Start request repeated too quickly'"
	diag "Result=$(box systemctl show -p Result --value keyturnd)"
fi
starts=$(grep -c 'no_such_key' "$T/journal.txt")
expect_eq "keyturnd was started five times, and said why each time" 5 "$starts"
expect_eq "the unit is failed" failed "$(box systemctl is-active keyturnd)"
conf </dev/null | box_put /etc/keyturn/keyturnd.conf 0640
box systemctl reset-failed keyturnd && box systemctl start keyturnd
start_rc=$?
state=$(box systemctl is-active keyturnd)
expect_eq "mended and reset-failed, it starts again" active "$state"
if [ "$state" != active ]; then
	diag "systemctl start: exit $start_rc; the journal:"
	box journalctl -u keyturnd --no-pager -n 25 -o cat 2>&1 | sed 's/^/#   /'
fi

# --- no secret in the journal -------------------------------------------------
box journalctl --no-pager -o cat >"$T/journal-all.txt"
check "no secret value anywhere in the box's journal" \
	absent 'db-pass-1|api-key-1|keyturn-box-secret|rot-pass-1' "$T/journal-all.txt"
no_fixed() { [ -n "$1" ] && ! grep -qF -- "$1" "$2"; }
check "nor the password keyturnd's rotation made" no_fixed "$rot_pw" "$T/journal-all.txt"

box systemctl stop keyturnd
expect_eq "systemctl stop: inactive" inactive "$(box systemctl is-active keyturnd)"
done_testing
