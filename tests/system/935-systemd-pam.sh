#!/bin/bash
# pam_keyturn in the PAM stack of a real Debian 12 booted with systemd
# (tests/lib/box.sh), as an administrator sets it up: the .debs of this
# build installed with apt, keyturnd under the shipped unit reaching moto on
# this host's loopback through the fault proxy, and the pam-auth-update
# profile.
#  - installing libpam-keyturn changes no PAM stack (the profile says
#    Default: no); pam-auth-update --enable keyturn puts pam_keyturn.so in
#    common-auth, --disable takes it out again;
#  - through the system's own login and su stacks (pamtester): a break-glass
#    account with no Unix password logs in with its secret's password, not
#    with a wrong one; an ordinary account's Unix password still works, and
#    a wrong one still fails;
#  - a rotation in AWS: the new password works at once, the old one no more
#    (previous_grace = 0); no password in the box's journal;
#  - apt-get purge: pam_keyturn out of common-auth, /var/lib/keyturn,
#    /etc/keyturn and the unit gone, the keyturn user left in place
#    (packaging/README.md, "What happens at install").
# Needs root, systemd-nspawn and a Debian mirror (once, for the cached root);
# skips every check, saying why, without them. About a minute.

PLANNED=27

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/proxy.sh"
. "$KT_LIB/box.sh"
trap box_cleanup EXIT
box_need
box_debs || bail "no .debs of this build to install"

# The box's host name (tests/box/mkroot), which %H in the login's secret
# stands for.
BOX_HOST=keyturn-box
SECRET=hosts/$BOX_HOST/breakglass
BG_OLD=Bg-pass-1
BG_NEW=Bg-pass-2
CAROL_PW=Carol-unix-1
printf '%s\n' "$BG_OLD" >"$T/pw.old"
printf '%s\n' "$BG_NEW" >"$T/pw.new"
printf 'wrong-%s\n' "$$" >"$T/pw.bad"
printf '%s\n' "$CAROL_PW" >"$T/pw.carol"

start_moto
start_proxy "$MOTO_URL"
aws_cli secretsmanager create-secret --name "$SECRET" \
	--secret-string "{\"password\":\"$BG_OLD\"}" >"$T/create.out" 2>&1 ||
	bail "moto setup: create-secret $SECRET: $(cat "$T/create.out")"

box_boot
ok "a Debian 12 box booted with $(box systemctl --version | head -n 1)"
host=$(box cat /proc/sys/kernel/hostname)
[ "$host" = "$BOX_HOST" ] ||
	bail "the box's host name is '$host', not '$BOX_HOST' as tests/box/mkroot sets it: %H would not name $SECRET"

common_auth() { box cat /etc/pam.d/common-auth; }
common_auth >"$T/common-auth.before" || bail "no /etc/pam.d/common-auth in the box"
box_install_keyturn keyturn libkeyturn1 libpam-keyturn
has_keyturn() { common_auth | grep -q 'pam_keyturn\.so'; }
no_keyturn() { ! has_keyturn; }
common_auth >"$T/common-auth.installed"
check "installing libpam-keyturn leaves common-auth as it was (Default: no)" \
	cmp "$T/common-auth.before" "$T/common-auth.installed"

# --- the accounts, the secret, the configuration -----------------------------
# breakglass: no Unix password (useradd locks it), so its secret is its
# only way in; carol: an ordinary account with a Unix password.
box useradd -m breakglass && box useradd -m carol || bail "useradd in the box"
printf 'carol:%s\n' "$CAROL_PW" | box chpasswd || bail "chpasswd for carol in the box"
box_put /etc/keyturn/keyturnd.conf 0640 <<EOF
[daemon]
endpoint = $PROXY_URL
log_level = info
refresh_min_interval = 1

[login:breakglass]
secret = hosts/%H/breakglass
key = password
previous_grace = 0
EOF
box systemctl restart keyturnd >"$T/restart.out" 2>&1
restart_rc=$?
state=$(box systemctl is-active keyturnd)
if [ "$restart_rc" -eq 0 ] && [ "$state" = active ]; then
	ok "systemctl restart keyturnd with [login:breakglass]: exit 0, active"
else
	not_ok "systemctl restart keyturnd with [login:breakglass]: exit $restart_rc, $state"
	box journalctl -u keyturnd --no-pager -o cat 2>&1 | tail -n 20 | sed 's/^/#   /'
	bail "keyturnd is not running in the box (/etc/keyturn/keyturnd.conf, the unit)"
fi

# --- logins through the system's stacks ---------------------------------------
# pt NAME SERVICE USER PWFILE [CALLER]: pamtester's authenticate for USER
# through /etc/pam.d/SERVICE in the box, the password on stdin from
# PWFILE (never on a command line). With CALLER, as su is run by CALLER:
# real uid and gid CALLER's, effective uid root (su is set-user-ID root),
# so that pam_rootok does not let it in. Leaves $T/NAME.out and PT_RC.
pt() {
	local as=()
	[ -n "${5:-}" ] && as=(setpriv --ruid "$5" --regid "$5" --init-groups)
	box "${as[@]}" pamtester "$2" "$3" authenticate <"$4" >"$T/$1.out" 2>&1
	PT_RC=$?
}
# audits RE: how many of keyturnd's audit lines in the box's journal match RE.
audits() { box journalctl -u keyturnd --no-pager -o cat | grep -cE "$1"; }
audit_after() { [ "$(audits "$1")" -gt "$2" ]; }
# login_is NAME SERVICE USER PWFILE CALLER WANT AUDIT DESCRIPTION: one
# check that pamtester answers WANT (success or failure) and, unless AUDIT
# is empty, that keyturnd logged one more audit line with that result.
login_is() {
	local re="login: user=$3 service=$2 .*result=$7( |\$)" n0=0 why=""
	[ -n "$7" ] && n0=$(audits "$re")
	pt "$1" "$2" "$3" "$4" "$5"
	case $6 in
	success) [ "$PT_RC" -eq 0 ] && grep -q 'successfully authenticated' "$T/$1.out" ||
		why="pamtester exit $PT_RC" ;;
	failure) [ "$PT_RC" -ne 0 ] && grep -q 'Authentication failure' "$T/$1.out" ||
		why="pamtester exit $PT_RC" ;;
	esac
	if [ -z "$why" ] && [ -n "$7" ] && ! wait_until 10 audit_after "$re" "$n0"; then
		why="no new audit line 'result=$7' from keyturnd"
	fi
	if [ -z "$why" ]; then
		ok "$8"
	else
		not_ok "$8: $why"
		sed 's/^/#   /' "$T/$1.out"
		box journalctl -u keyturnd --no-pager -o cat 2>&1 | grep 'login:' | tail -n 3 | sed 's/^/#   /'
	fi
}

login_is before login breakglass "$T/pw.old" "" failure "" \
	"before the profile is enabled, the secret's password does not open breakglass (login)"

box pam-auth-update --enable keyturn >"$T/enable.out" 2>&1
expect_eq "pam-auth-update --enable keyturn: exit 0" 0 "$?"
check "and common-auth now holds pam_keyturn.so" has_keyturn
common_auth | grep -E '^auth' | sed 's/^/# common-auth: /'

login_is l-right login breakglass "$T/pw.old" "" success match \
	"login: breakglass with its secret's password: success, keyturnd's match"
login_is l-wrong login breakglass "$T/pw.bad" "" failure mismatch \
	"login: breakglass with a wrong password: failure, keyturnd's mismatch"
login_is s-right su breakglass "$T/pw.old" carol success match \
	"su, run by carol: breakglass with its secret's password: success"
login_is s-wrong su breakglass "$T/pw.bad" carol failure mismatch \
	"su, run by carol: breakglass with a wrong password: failure"
login_is c-right login carol "$T/pw.carol" "" success "" \
	"login: carol's Unix password still works through the stack"
login_is c-wrong login carol "$T/pw.bad" "" failure unknown_user \
	"login: a wrong password for carol fails (keyturnd has no login for carol)"
login_is cs-right su carol "$T/pw.carol" breakglass success "" \
	"su, run by breakglass: carol's Unix password still works"

# --- a rotation ----------------------------------------------------------------
# The new password is checked against the value in hand, then, as a failed
# password, makes keyturnd ask AWS whether AWSCURRENT moved. Such re-checks
# share a daemon-wide budget of 3 (docs/SECURITY.md, "Serving secrets"): the
# two wrong passwords for breakglass above spend two, this one the third;
# refresh_min_interval = 1 lets it run at once. A further wrong password for
# breakglass before this point would leave the new one refused until
# check_interval.
rotate_secret "$SECRET" "{\"password\":\"$BG_NEW\"}" >"$T/rotate.out" 2>&1 ||
	bail "rotate_secret $SECRET in moto: $(cat "$T/rotate.out")"
login_is r-new login breakglass "$T/pw.new" "" success match \
	"after a rotation in AWS the new password works at once (login)"
login_is r-old login breakglass "$T/pw.old" "" failure mismatch \
	"and the old one fails (previous_grace = 0)"
login_is r-new-su su breakglass "$T/pw.new" carol success match \
	"the new password through su too"

# --- no secret in the journal ----------------------------------------------------
# found_in FILE LABEL=VALUE...: names, by LABEL only, each VALUE in FILE.
found_in() {
	local f=$1 lv
	shift
	for lv in "$@"; do
		grep -qF -e "${lv#*=}" "$f" && echo "${lv%%=*}"
	done
}
box journalctl --no-pager -o cat >"$T/journal-all.txt"
expect_eq "no password, and no AWS secret key, anywhere in the box's journal" "" \
	"$(found_in "$T/journal-all.txt" "breakglass's first password=$BG_OLD" \
		"breakglass's rotated password=$BG_NEW" "the wrong password=wrong-$$" \
		"carol's password=$CAROL_PW" "the AWS secret key=keyturn-box-secret" | tr '\n' ' ')"

# --- pam-auth-update --disable ---------------------------------------------------
box pam-auth-update --disable keyturn >"$T/disable.out" 2>&1
disable_rc=$?
if [ "$disable_rc" -eq 0 ] && no_keyturn; then
	ok "pam-auth-update --disable keyturn: exit 0, pam_keyturn.so out of common-auth"
else
	not_ok "pam-auth-update --disable keyturn: exit $disable_rc, pam_keyturn.so out of common-auth"
	common_auth | sed 's/^/#   /'
fi
login_is d-old login breakglass "$T/pw.new" "" failure "" \
	"with the profile disabled, the secret's password no longer opens breakglass"

# --- purge -------------------------------------------------------------------------
# The profile on again, so that the purge has to take it out (the prerm).
box pam-auth-update --enable keyturn >"$T/enable2.out" 2>&1
has_keyturn && enabled_before=yes || enabled_before=no
exists() { box test -e "$1" && echo yes || echo no; }
lib_before=$(exists /var/lib/keyturn)
etc_before=$(exists /etc/keyturn)
box systemctl cat keyturnd >/dev/null 2>&1 && unit_before=yes || unit_before=no
diag "before the purge: pam_keyturn in common-auth $enabled_before, /var/lib/keyturn $lib_before," \
	"/etc/keyturn $etc_before, the unit $unit_before"
box env DEBIAN_FRONTEND=noninteractive apt-get purge -y -o Dpkg::Use-Pty=0 \
	keyturn libpam-keyturn libkeyturn1 >"$T/purge.log" 2>&1
purge_rc=$?
if [ "$purge_rc" -eq 0 ]; then
	ok "apt-get purge keyturn libpam-keyturn libkeyturn1: exit 0"
else
	not_ok "apt-get purge keyturn libpam-keyturn libkeyturn1: exit $purge_rc"
	sed 's/^/#   /' "$T/purge.log" | tail -n 20
fi
left=$(box dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' keyturn libpam-keyturn libkeyturn1 2>/dev/null |
	grep -v '^un ' | tr '\n' ' ')
expect_eq "dpkg knows none of them any more" "" "$left"
if [ "$enabled_before" = yes ] && no_keyturn; then
	ok "the purge takes pam_keyturn.so out of common-auth (enabled before it)"
else
	not_ok "the purge takes pam_keyturn.so out of common-auth (enabled before it: $enabled_before)"
	common_auth | sed 's/^/#   /'
fi
expect_eq "/var/lib/keyturn (the offline verifiers) is gone" "yes no" "$lib_before $(exists /var/lib/keyturn)"
expect_eq "/etc/keyturn is gone" "yes no" "$etc_before $(exists /etc/keyturn)"
box systemctl cat keyturnd >"$T/unit-after.out" 2>&1 && unit_after=yes || unit_after=no
expect_eq "the unit is gone (systemctl cat keyturnd fails) and keyturnd not running" \
	"yes no inactive" "$unit_before $unit_after $(box systemctl is-active keyturnd)"
check "the keyturn user and group are left in place, as Debian leaves system users" \
	box sh -c 'getent passwd keyturn && getent group keyturn'
done_testing
