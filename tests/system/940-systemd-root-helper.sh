#!/bin/bash
# keyturnd under a real systemd with the root-start drop-in keyturnd(8)
# describes (FILE SINKS): the unit starts it as root, its privileged
# helpers keep root, and keyturnd itself still drops to keyturn before it
# serves. That is what file sinks owned by another user, on_change as
# another user and a rotation's run_as need; the shipped unit (930) cannot
# give them. In the booted Debian 12 box, with this build's .debs:
#   - the main process runs as keyturn with no capability; the helpers as root;
#   - a [file:] sink owned by alice (mode 0400) holds the value, and its
#     on_change ran as alice;
#   - keyturnctl rotate runs set_command as alice (run_as) with the new
#     password on stdin, and keyturnd serves the new value;
#   - no value in the journal.

PLANNED=14

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/box.sh"
trap box_cleanup EXIT
box_need
box_debs || bail "no .debs of this build to install"

start_moto
aws_cli secretsmanager create-secret --name app/db --secret-string 'sink-pass-1' >/dev/null &&
	aws_cli secretsmanager create-secret --name app/rot \
		--secret-string '{"user":"svc","password":"rot-pass-1"}' >/dev/null ||
	bail "moto setup"

box_boot
box_install_keyturn keyturn libkeyturn1
box useradd -m alice || bail "useradd in the box"
box install -d -o alice -g alice -m 0755 /srv/app || bail "mkdir in the box"

# The drop-in, as keyturnd(8) gives it (docs/keyturnd.8, FILE SINKS).
sed -n '/^\.\\" root-helper drop-in begin/,/^\.\\" root-helper drop-in end/p' \
	"$KT_SRCDIR/docs/keyturnd.8" | sed -e '1d' -e '$d' -e '/^\.fi$/d' -e '/^\.nf$/d' \
	-e 's/\\-/-/g' >"$T/root-helper.conf"
check "keyturnd(8) has the root-start drop-in" grep -q '^User=$' "$T/root-helper.conf"
sed 's/^/# drop-in: /' "$T/root-helper.conf"
box mkdir -p /etc/systemd/system/keyturnd.service.d
sed 's#^ReadWritePaths=.*#ReadWritePaths=/srv/app#' "$T/root-helper.conf" |
	box_put /etc/systemd/system/keyturnd.service.d/root-helper.conf 0644
box systemctl daemon-reload
expect_eq "systemd reads it: the unit's User= is now empty (root)" "" \
	"$(box systemctl show -p User --value keyturnd 2>&1)"

box_put /etc/keyturn/keyturnd.conf 0640 <<EOF
[daemon]
endpoint = $MOTO_URL
log_level = info

[secret:app/db]

[file:/srv/app/db.pw]
secret = app/db
owner = alice
mode = 0400
on_change = /bin/sh -c 'id -un > /srv/app/changed-by'
run_as = alice

[secret:app/rot]
key = password

[rotate:app/rot]
length = 24
set_command = /bin/sh -c 'id -un > /srv/app/rot-user; cat > /srv/app/rot-set.out'
run_as = alice
EOF
box systemctl restart keyturnd
expect_eq "with the drop-in, systemctl restart: exit 0" 0 "$?"
box journalctl -u keyturnd --no-pager -n 30 -o cat 2>&1 | sed 's/^/# journal: /'

main=$(box systemctl show -p MainPID --value keyturnd)
status_of() { box cat "/proc/$1/status" 2>/dev/null; }
expect_eq "keyturnd itself runs as keyturn" "$(box id -u keyturn)" \
	"$(status_of "$main" | awk '/^Uid:/ { print $3 }')"
expect_eq "with no capability left (effective and permitted)" "0000000000000000 0000000000000000" \
	"$(status_of "$main" | awk '/^CapEff:/ { e = $2 } /^CapPrm:/ { p = $2 } END { print e, p }')"
helpers=0
for p in $(box pgrep -P "$main" 2>/dev/null || box sh -c "grep -l '^PPid:[[:space:]]*$main\$' /proc/[0-9]*/status | cut -d/ -f3"); do
	[ "$(status_of "$p" | awk '/^Uid:/ { print $3 }')" = 0 ] && helpers=$((helpers + 1))
done
expect_eq "its two privileged helpers (file sinks, rotation) kept root" 2 "$helpers"

file_ready() { box test -e /srv/app/changed-by; }
wait_until 30 file_ready
expect_eq "the sink is alice's, mode 0400" "alice 400" "$(box stat -c '%U %a' /srv/app/db.pw 2>&1)"
expect_eq "and holds the value" "sink-pass-1" "$(box cat /srv/app/db.pw 2>&1)"
expect_eq "on_change ran as alice (run_as)" "alice" "$(box cat /srv/app/changed-by 2>&1)"

box keyturnctl rotate app/rot >"$T/rotate.out" 2>&1
expect_eq "keyturnctl rotate: exit 0" 0 "$?"
sed 's/^/# /' "$T/rotate.out"
rot_ver=$(sed -n 's/^app\/rot: rotated to version //p' "$T/rotate.out")
rot_pw=$("$PYTHON3" -c 'import json,sys; print(json.loads(sys.argv[1])["password"])' \
	"$(aws_cli secretsmanager get-secret-value --secret-id app/rot --version-id "$rot_ver" \
		--query SecretString --output text)")
expect_eq "set_command ran as alice (run_as)" "alice" "$(box cat /srv/app/rot-user 2>&1)"
expect_eq "and read exactly the new password on stdin" "$rot_pw" \
	"$(box cat /srv/app/rot-set.out 2>&1)"

box journalctl --no-pager -o cat >"$T/journal.txt"
no_value() { ! grep -qE 'sink-pass-1|rot-pass-1' "$2" && [ -n "$1" ] && ! grep -qF -- "$1" "$2"; }
check "no value in the journal" no_value "$rot_pw" "$T/journal.txt"

box systemctl stop keyturnd
done_testing
