#!/bin/bash
# The packages, built and installed for real. A plain build of this tree (no
# sanitizers, configured here under $T) runs `make deb` and `make rpm`:
# lintian and rpmlint find no error, the rpms hold what they should. The
# .debs are installed on this machine: files, modes and owners, the keyturn
# user, the conffile, the enabled unit, keyturnd --check-config on the
# shipped configuration, systemd-analyze verify and security on the
# installed unit. The installed keyturnd then starts as the unit starts it
# (the keyturn user, no capability), and under strace, to see that every
# system call and socket family it uses is one the unit allows. At the end
# the packages are purged, unless keyturn packages were installed before the
# test began. The .debs are left in tests/debs of the build tree for
# tests/system/93x-*, which install them in a booted Debian 12.
# Needs root; takes about three and a half minutes on two cores.

# The number of checks below; a run that cannot install packages skips each
# of them, saying why.
PLANNED=70

. "$KT_SRCDIR/tests/lib/accounts.sh"
[ "$(id -u)" -eq 0 ] || skip_all "needs root to install the packages"
PATH=$PATH:/usr/sbin:/sbin
for t in dpkg-buildpackage dpkg-architecture rpmbuild lintian rpmlint apt-get \
	systemd-analyze setpriv; do
	command -v "$t" >/dev/null || skip_all "needs $t (scripts/install-deps installs it)"
done

. "$KT_SRCDIR/tests/lib/common.sh"

DEB_PKGS="keyturn libkeyturn1 libkeyturn-dev libpam-keyturn"
RPM_PKGS="keyturn keyturn-libs keyturn-devel pam_keyturn"
MA=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
B="$T/build"
# A stopwatch for the figures: lap sets LAP to the seconds since the last lap.
lap_at=$SECONDS
LAP=0
lap() {
	LAP=$((SECONDS - lap_at))
	lap_at=$SECONDS
}
# The packages' builds are makes of their own, not part of the make that
# runs this test (its jobserver, its level).
unset MAKEFLAGS MFLAGS MAKELEVEL

# --- what this machine had before ----------------------------------------------
installed() { dpkg-query -W -f='${Status}\n' "$1" 2>/dev/null | grep -q '^install ok installed$'; }
had_pkgs=""
for p in $DEB_PKGS; do
	installed "$p" && had_pkgs="$had_pkgs $p"
done
had_user=no
getent passwd keyturn >/dev/null && had_user=yes
had_group=no
getent group keyturn >/dev/null && had_group=yes
pam_sums() { cat /etc/pam.d/common-* 2>/dev/null | sha256sum; }
pam_before=$(pam_sums)
[ -z "$had_pkgs" ] ||
	diag "keyturn packages were installed before:$had_pkgs; they are replaced and left installed"

# On any exit: stop what the test started, purge the packages it installed,
# remove the user their postinst made, then common.sh's cleanup.
we_installed=no
cleanup_packages() {
	local p
	for p in "${kt_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	if [ "$we_installed" = yes ] && [ -z "$had_pkgs" ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq $DEB_PKGS >/dev/null 2>&1
	fi
	if [ "$had_user" = no ] && getent passwd keyturn >/dev/null; then
		userdel keyturn >/dev/null 2>&1
	fi
	if [ "$had_group" = no ] && getent group keyturn >/dev/null; then
		groupdel keyturn >/dev/null 2>&1
	fi
	kt_cleanup
}
trap cleanup_packages EXIT

# fail_log DESCRIPTION LOG: one failing test and the end of LOG.
fail_log() {
	not_ok "$1"
	tail -n 40 "$2" | sed 's/^/#   /'
}

# no_compiler_warnings LOG: no "file.c:L:C: warning:" line in a build log.
no_compiler_warnings() {
	! grep -E '\.[ch]:[0-9]+:[0-9]+: warning:' "$1"
}

# unit_tests_passed LOG: the unit tests ran in the package build, none failed.
unit_tests_passed() {
	grep -qE '^# PASS: +[1-9]' "$1" && grep -qE '^# FAIL: +0$' "$1" &&
		grep -qE '^# ERROR: +0$' "$1"
}

# --- a plain build tree and make deb ---------------------------------------------
mkdir -p "$B"
if (cd "$B" && "$KT_SRCDIR/configure" --enable-werror >configure.out 2>&1); then
	ok "configure: a plain build tree (no sanitizers) for the packages"
else
	fail_log "configure: a plain build tree (no sanitizers) for the packages" "$B/configure.out"
	bail "no build tree"
fi
VERSION=$(sed -n 's/^PACKAGE_VERSION = //p' "$B/Makefile")
lap
diag "keyturn $VERSION; configure took $LAP s"

if make -C "$B" deb >"$T/deb.log" 2>&1; then
	ok "make deb: built, and lintian found no error"
else
	fail_log "make deb: built, and lintian found no error" "$T/deb.log"
fi
lap
diag "make deb took $LAP s (make dist, configure, build, unit tests, lintian)"
debs=()
for p in $DEB_PKGS; do
	debs+=("$B/packages/deb/${p}_${VERSION}-1_$(dpkg --print-architecture).deb")
done
check "the four binary packages: $DEB_PKGS" ls "${debs[@]}"
# For the systemd tests (tests/lib/box.sh, box_debs): this build's .debs.
rm -rf "$KT_BUILDDIR/tests/debs"
mkdir -p "$KT_BUILDDIR/tests/debs" && cp "${debs[@]}" "$KT_BUILDDIR/tests/debs/" 2>/dev/null
check "the deb build compiles without a warning (Debian's hardening flags)" \
	no_compiler_warnings "$T/deb.log"
check "the deb build ran the unit tests, and they passed" unit_tests_passed "$T/deb.log"
check "lintian: no error (E:) line" sh -c "! grep -E '^E: ' '$T/deb.log'"
grep -E '^[WE]: ' "$T/deb.log" | sed 's/^/lintian /' | while read -r l; do diag "$l"; done

# --- make rpm --------------------------------------------------------------------
if make -C "$B" rpm >"$T/rpm.log" 2>&1; then
	ok "make rpm: built, and rpmlint found no error"
else
	fail_log "make rpm: built, and rpmlint found no error" "$T/rpm.log"
fi
lap
diag "make rpm took $LAP s (rpmbuild: configure, build, %check, rpmlint)"
rpm_of() { echo "$B/packages/rpm/$1-$VERSION-1.$(uname -m).rpm"; }
rpms=()
for p in $RPM_PKGS; do
	rpms+=("$(rpm_of "$p")")
done
check "the four rpms: $RPM_PKGS" ls "${rpms[@]}"
check "the rpm build compiles without a warning" no_compiler_warnings "$T/rpm.log"
check "the rpm %check ran the unit tests, and they passed" unit_tests_passed "$T/rpm.log"
check "rpmlint: 0 errors" grep -qE 'packages and [0-9]+ specfiles checked; 0 errors' "$T/rpm.log"
grep -E '^\S+: [WE]: ' "$T/rpm.log" | sed 's/^/rpmlint /' | while read -r l; do diag "$l"; done

# rpm_has PACKAGE PATH...: the rpm's file list holds every PATH.
rpm_has() {
	local list p
	list=$(rpm -qlp "$(rpm_of "$1")" 2>/dev/null) || return 1
	shift
	for p in "$@"; do
		grep -qxF "$p" <<<"$list" || { echo "missing: $p"; return 1; }
	done
}
check "rpm keyturn: daemon, CLI, unit, sysusers, tmpfiles, configuration, man pages" \
	rpm_has keyturn /usr/sbin/keyturnd /usr/bin/keyturnctl \
	/usr/lib/systemd/system/keyturnd.service /usr/lib/sysusers.d/keyturn.conf \
	/usr/lib/tmpfiles.d/keyturn.conf /etc/keyturn/keyturnd.conf /var/lib/keyturn \
	/usr/share/man/man8/keyturnd.8.gz /usr/share/man/man5/keyturnd.conf.5.gz \
	/usr/share/man/man1/keyturnctl.1.gz /usr/share/bash-completion/completions/keyturnctl
check "rpm keyturn-libs: libkeyturn.so.1" \
	rpm_has keyturn-libs /usr/lib64/libkeyturn.so.1 /usr/lib64/libkeyturn.so.1.0.0
check "rpm keyturn-devel: keyturn.h, libkeyturn.so, keyturn.pc, libkeyturn(3)" \
	rpm_has keyturn-devel /usr/include/keyturn.h /usr/lib64/libkeyturn.so \
	/usr/lib64/pkgconfig/keyturn.pc /usr/share/man/man3/libkeyturn.3.gz
check "rpm pam_keyturn: the module in /usr/lib64/security, pam_keyturn(8)" \
	rpm_has pam_keyturn /usr/lib64/security/pam_keyturn.so /usr/share/man/man8/pam_keyturn.8.gz
check "no rpm holds a libtool .la file" \
	sh -c "! rpm -qlp ${rpms[*]} | grep -E '\\.la\$'"
attrs=$(rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' \
	"$(rpm_of keyturn)" 2>/dev/null)
expect_eq "rpm: keyturnd.conf is 0640 root:keyturn" \
	"-rw-r----- root:keyturn /etc/keyturn/keyturnd.conf" \
	"$(grep ' /etc/keyturn/keyturnd.conf$' <<<"$attrs")"
expect_eq "rpm: /var/lib/keyturn is 0700 keyturn:keyturn" \
	"drwx------ keyturn:keyturn /var/lib/keyturn" "$(grep ' /var/lib/keyturn$' <<<"$attrs")"
check "rpm: keyturnd.conf is %config(noreplace)" \
	sh -c "rpm -qp --configfiles '$(rpm_of keyturn)' | grep -qx /etc/keyturn/keyturnd.conf &&
		rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$(rpm_of keyturn)' |
		grep -qx 'cn /etc/keyturn/keyturnd.conf'"
rpm -qp --scripts "$(rpm_of keyturn)" >"$T/rpm-scripts" 2>&1
# pre_makes_user: %pre feeds the sysusers file's line to systemd-sysusers.
pre_makes_user() {
	grep -q 'systemd-sysusers --replace=/usr/lib/sysusers.d/keyturn.conf' "$T/rpm-scripts" &&
		grep -qxF "$(grep '^u ' "$KT_SRCDIR/packaging/systemd/keyturn.sysusers")" "$T/rpm-scripts"
}
check "rpm %pre: systemd-sysusers makes the user from the sysusers file" pre_makes_user

# --- install the .debs ---------------------------------------------------------------
lap
if DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	-o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
	"${debs[@]}" >"$T/apt.log" 2>&1; then
	ok "apt-get install: the four .debs"
else
	fail_log "apt-get install: the four .debs" "$T/apt.log"
fi
we_installed=yes
lap
diag "apt-get install took $LAP s"
n=0
for p in $DEB_PKGS; do
	[ "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null)" = "$VERSION-1" ] && n=$((n + 1))
done
expect_eq "dpkg: all four at $VERSION-1" 4 "$n"

# mode_owner PATH: "MODE USER:GROUP" of PATH itself (not of a link's target).
mode_owner() { stat -c '%a %U:%G' "$1" 2>&1; }
while read -r path want; do
	expect_eq "$path: $want" "$want" "$(mode_owner "$path")"
done <<EOF
/usr/sbin/keyturnd 755 root:root
/usr/bin/keyturnctl 755 root:root
/usr/lib/$MA/libkeyturn.so.1.0.0 644 root:root
/usr/include/keyturn.h 644 root:root
/usr/lib/$MA/pkgconfig/keyturn.pc 644 root:root
/usr/lib/$MA/security/pam_keyturn.so 644 root:root
/lib/systemd/system/keyturnd.service 644 root:root
/usr/lib/sysusers.d/keyturn.conf 644 root:root
/usr/lib/tmpfiles.d/keyturn.conf 644 root:root
/usr/share/pam-configs/keyturn 644 root:root
/usr/share/bash-completion/completions/keyturnctl 644 root:root
/etc/keyturn 755 root:root
/etc/keyturn/keyturnd.conf 640 root:keyturn
/var/lib/keyturn 700 keyturn:keyturn
EOF
expect_eq "libkeyturn.so.1 (libkeyturn1) and libkeyturn.so (-dev) point at the library" \
	"libkeyturn.so.1.0.0 libkeyturn.so.1.0.0" \
	"$(readlink "/usr/lib/$MA/libkeyturn.so.1") $(readlink "/usr/lib/$MA/libkeyturn.so")"
check "every man page: keyturnd(8), keyturnd.conf(5), keyturnctl(1), libkeyturn(3), pam_keyturn(8)" \
	ls /usr/share/man/man8/keyturnd.8.gz /usr/share/man/man5/keyturnd.conf.5.gz \
	/usr/share/man/man1/keyturnctl.1.gz /usr/share/man/man3/libkeyturn.3.gz \
	/usr/share/man/man8/pam_keyturn.8.gz
check "no package installed a libtool .la file" \
	sh -c "! dpkg -L $DEB_PKGS | grep -E '\\.la\$'"
check "pkg-config finds keyturn $VERSION" test "$(pkg-config --modversion keyturn)" = "$VERSION"
check "/etc/keyturn/keyturnd.conf is a conffile of keyturn" \
	sh -c "dpkg-query -W -f='\${Conffiles}\n' keyturn | grep -q '^ /etc/keyturn/keyturnd.conf '"

# --- the keyturn user and the unit ---------------------------------------------------------
IFS=: read -r _ _ k_uid k_gid _ k_home k_shell < <(getent passwd keyturn)
check "the keyturn user exists" test -n "${k_uid:-}"
sys_max=$(awk '$1 == "SYS_UID_MAX" { print $2 }' /etc/login.defs 2>/dev/null)
check "keyturn is a system user (uid ${k_uid:-?} <= ${sys_max:-999})" \
	test "${k_uid:-99999}" -le "${sys_max:-999}"
check "keyturn has no login shell (${k_shell:-?})" \
	sh -c "case '${k_shell:-}' in */nologin|/bin/false) exit 0;; esac; exit 1"
expect_eq "keyturn's primary group is the group keyturn" "keyturn" \
	"$(getent group "${k_gid:-x}" | cut -d: -f1)"
diag "keyturn: uid ${k_uid:-?} gid ${k_gid:-?} home ${k_home:-?} shell ${k_shell:-?}"
expect_eq "the unit is enabled (deb-systemd-helper, read offline by systemctl)" "enabled" \
	"$(systemctl --root=/ is-enabled keyturnd.service 2>&1)"
check "multi-user.target wants keyturnd.service" \
	test -L /etc/systemd/system/multi-user.target.wants/keyturnd.service
expect_eq "the PAM stacks are untouched (the profile is Default: no)" "$pam_before" "$(pam_sums)"

# --- the installed programs --------------------------------------------------------------
expect_eq "keyturnd --version" "keyturnd $VERSION" "$(/usr/sbin/keyturnd --version 2>&1)"
expect_eq "keyturnd --check-config on the shipped file (the built-in default path)" \
	"/etc/keyturn/keyturnd.conf: OK (0 secrets, 0 logins)" \
	"$(/usr/sbin/keyturnd --check-config 2>&1)"
expect_eq "keyturnd --check-config -c /etc/keyturn/keyturnd.conf" \
	"/etc/keyturn/keyturnd.conf: OK (0 secrets, 0 logins)" \
	"$(/usr/sbin/keyturnd --check-config -c /etc/keyturn/keyturnd.conf 2>&1)"
# Every setting the file shows commented out is valid once uncommented
# (with users and groups that exist here).
sed -E -e 's/^;([a-z_[])/\1/' -e 's/^(allow_users|allow_groups) = .*/\1 = root/' \
	/etc/keyturn/keyturnd.conf >"$T/all.conf"
chmod 600 "$T/all.conf"
expect_eq "every commented-out example in it is a valid setting" \
	"$T/all.conf: OK (1 secrets, 1 logins)" \
	"$(/usr/sbin/keyturnd --check-config -c "$T/all.conf" 2>&1)"
check "the built-in paths are the packages': /run/keyturn/keyturnd.sock, /var/lib/keyturn" \
	sh -c "grep -qa /run/keyturn/keyturnd.sock /usr/lib/$MA/libkeyturn.so.1 &&
		grep -qa /run/keyturn/keyturnd.sock /usr/sbin/keyturnd &&
		grep -qa /var/lib/keyturn /usr/sbin/keyturnd"

# --- the installed unit, as systemd reads it ------------------------------------------------
UNIT=/lib/systemd/system/keyturnd.service
systemd-analyze verify "$UNIT" >"$T/verify.out" 2>&1
verify_rc=$?
if [ "$verify_rc" -eq 0 ] && [ ! -s "$T/verify.out" ]; then
	ok "systemd-analyze verify $UNIT: clean"
else
	not_ok "systemd-analyze verify $UNIT: clean (exit $verify_rc)"
	sed 's/^/#   /' "$T/verify.out"
fi
systemd-analyze security --offline=true "$UNIT" >"$T/security.out" 2>&1
score=$(sed -n 's/.*Overall exposure level for keyturnd.service: \([0-9.]*\).*/\1/p' "$T/security.out")
diag "systemd-analyze security: overall exposure ${score:-?} (docs/SECURITY.md: 1.4)"
grep -E '^✗' "$T/security.out" | sed -E 's/ {2,}/  /g' | while read -r l; do diag "  $l"; done
check "systemd-analyze security: exposure ${score:-?} is at most the documented 1.4" \
	awk -v s="${score:-99}" 'BEGIN { exit !(s + 0 <= 1.4) }'
unit_value() { sed -n "s/^$1=//p" "$UNIT" | tail -n 1; }
expect_eq "the unit runs keyturnd as keyturn:keyturn with no capability (bounding set empty)" \
	"keyturn keyturn []" "$(unit_value User) $(unit_value Group) [$(unit_value CapabilityBoundingSet)]"
expect_eq "the unit: Type, no LimitMEMLOCK (the default fits), RuntimeDirectory(Mode), StateDirectory(Mode), ConfigurationDirectory" \
	"notify  keyturn 0755 keyturn 0700 keyturn" \
	"$(unit_value Type) $(unit_value LimitMEMLOCK) $(unit_value RuntimeDirectory) $(unit_value RuntimeDirectoryMode) $(unit_value StateDirectory) $(unit_value StateDirectoryMode) $(unit_value ConfigurationDirectory)"

# --- the daemon as the unit starts it ------------------------------------------------------------
# setpriv plays the unit's User=, Group= and empty CapabilityBoundingSet=:
# keyturnd starts as keyturn with no capability at all. The socket's and
# the state directory exist and are keyturn's, as RuntimeDirectory= and
# StateDirectory= make them for User=. tests/system/930-systemd-unit.sh runs
# the same unit under a real systemd.
chmod 755 "$T"
# start_capped NAME CONFIG [WRAPPER...]: keyturnd -f in the background;
# waits until it is ready or gone. Sets CAP_PID; logs to $T/NAME.log.
start_capped() {
	local name=$1 conf=$2 i
	shift 2
	rm -rf "$T/cap-run" "$T/cap-state"
	install -d -m 0755 -o keyturn -g keyturn "$T/cap-run"
	install -d -m 0700 -o keyturn -g keyturn "$T/cap-state"
	"$@" setpriv --reuid keyturn --regid keyturn --init-groups --bounding-set=-all \
		--inh-caps=-all /usr/sbin/keyturnd -f -c "$conf" >"$T/$name.log" 2>&1 &
	CAP_PID=$!
	kt_pids+=("$CAP_PID")
	for ((i = 0; i < 100; i++)); do
		grep -q 'ready:' "$T/$name.log" && return 0
		kill -0 "$CAP_PID" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}
# The daemon's own pid: under strace, CAP_PID is strace's.
daemon_pid() { pgrep -f "^/usr/sbin/keyturnd -f -c $1\$" | head -n 1; }
cat >"$T/cap.conf" <<EOF
[daemon]
region = us-east-1
endpoint = http://127.0.0.1:9
socket = $T/cap-run/keyturnd.sock
state_dir = $T/cap-state
EOF
chown root:keyturn "$T/cap.conf"
chmod 640 "$T/cap.conf"
# The unit sets no LimitMEMLOCK=: keyturnd runs under the default 8 MiB,
# which its locked arena (locked_memory, 4M by default) fits.
memlock_wrap=(prlimit --memlock=8388608:8388608)

if start_capped cap-all "$T/cap.conf" "${memlock_wrap[@]}"; then
	pid=$(daemon_pid "$T/cap.conf")
	st=$(grep -E '^(Uid|CapPrm|CapEff|CapBnd):' "/proc/$pid/status" | tr -s '\t ' ' ')
	expect_eq "as the unit starts it, keyturnd runs as keyturn with no capability" \
		"Uid: $k_uid $k_uid $k_uid $k_uid|CapPrm: 0000000000000000|CapEff: 0000000000000000|CapBnd: 0000000000000000" \
		"$(tr '\n' '|' <<<"$st" | sed 's/|$//')"
	expect_eq "its socket: 0666, keyturn's" "666 keyturn:keyturn" \
		"$(stat -c '%a %U:%G' "$T/cap-run/keyturnd.sock" 2>&1)"
	check "under the default RLIMIT_MEMLOCK its 4 MiB arena is locked (VmLck), no warning" \
		sh -c "grep -q '^VmLck:[[:space:]]*4096 kB' /proc/$pid/status &&
			! grep -q 'may be swapped out' '$T/cap-all.log'"
	kill "$CAP_PID"
	wait "$CAP_PID"
	expect_eq "SIGTERM: it stops with status 0" 0 "$?"
else
	fail_log "as the unit starts it, keyturnd runs as keyturn with no capability" "$T/cap-all.log"
	not_ok "its socket: 0666, keyturn's"
	not_ok "under the default RLIMIT_MEMLOCK its 4 MiB arena is locked (VmLck), no warning"
	not_ok "SIGTERM: it stops with status 0"
fi
lap
diag "the unprivileged run took $LAP s"

# --- every system call and socket family it uses, against the unit's filters ------------------
# keyturnd under strace through start-up, a fetch from moto, get, verify
# (with an offline verifier written), reload and stop. systemd applies
# SystemCallFilter= and RestrictAddressFamilies= at exec; this cannot run
# here without systemd as PID 1, so the calls made are compared with the
# sets systemd-analyze expands the unit's filters to.
syscall_set() { # GROUP-OR-CALL...: the system calls, one a line
	local x
	for x in "$@"; do
		case $x in
		@*) systemd-analyze syscall-filter "$x" 2>/dev/null | sed -n '2,$p' |
			sed -e 's/^ *//' -e '/^#/d' -e '/^$/d' | while read -r y; do syscall_set "$y"; done ;;
		*) echo "$x" ;;
		esac
	done
}
if command -v strace >/dev/null; then
	start_moto
	aws_cli secretsmanager create-secret --name app/pkg --secret-string "pkg-value-$$-9c1" >/dev/null ||
		bail "moto setup"
	cat >"$T/trace.conf" <<EOF
[daemon]
region = us-east-1
endpoint = $MOTO_URL
socket = $T/cap-run/keyturnd.sock
state_dir = $T/cap-state

[secret:app/pkg]
allow_users = root

[login:root]
secret = app/pkg
offline = yes
EOF
	chown root:keyturn "$T/trace.conf"
	chmod 640 "$T/trace.conf"
	if start_capped trace "$T/trace.conf" \
		strace -f -qq -o "$T/strace.out" "${memlock_wrap[@]}"; then
		got=$(KEYTURN_SOCKET="$T/cap-run/keyturnd.sock" /usr/bin/keyturnctl get app/pkg 2>&1)
		printf 'pkg-value-%s-9c1' "$$" | KEYTURN_SOCKET="$T/cap-run/keyturnd.sock" \
			/usr/bin/keyturnctl verify root >/dev/null 2>&1
		vrc=$?
		pid=$(daemon_pid "$T/trace.conf")
		kill -HUP "$pid"
		wait_until 10 grep -q 'reloaded' "$T/trace.log"
		kill "$pid"
		wait "$CAP_PID"
		expect_eq "traced: get and verify answered (value, exit status)" \
			"pkg-value-$$-9c1 0" "$got $vrc"
	else
		fail_log "traced: keyturnd started under strace" "$T/trace.log"
	fi
	# Only what keyturnd did: the lines after its execve.
	sed -n '/execve("\/usr\/sbin\/keyturnd"/,$p' "$T/strace.out" |
		sed -E 's/^[0-9]+ +//' | grep -oE '^[a-z_0-9]+\(' | tr -d '(' | sort -u >"$T/used"
	allow=() deny=()
	for f in $(sed -n 's/^SystemCallFilter=//p' "$UNIT"); do
		case $f in
		~*) deny+=("${f#\~}") ;;
		*) allow+=("$f") ;;
		esac
	done
	syscall_set "${allow[@]}" | sort -u >"$T/allow"
	syscall_set "${deny[@]}" | sort -u >"$T/deny"
	comm -23 "$T/allow" "$T/deny" >"$T/allowed"
	bad=$(comm -23 "$T/used" "$T/allowed" | tr '\n' ' ')
	expect_eq "the $(wc -l <"$T/used") system calls keyturnd made are all in the unit's SystemCallFilter" \
		"" "$bad"
	fams=$(sed -n '/execve("\/usr\/sbin\/keyturnd"/,$p' "$T/strace.out" |
		grep -oE 'socket\(AF_[A-Z0-9]+' | sed 's/socket(//' | sort -u | tr '\n' ' ')
	want=" $(unit_value RestrictAddressFamilies) "
	bad=""
	for f in $fams; do
		[[ "$want" == *" $f "* ]] || bad="$bad $f"
	done
	expect_eq "the socket families it used (${fams% }) are all in RestrictAddressFamilies" "" "$bad"
	lap
diag "the traced run took $LAP s"
else
	skip_test "needs strace (scripts/install-deps installs it) to trace keyturnd"
	skip_test "needs strace to trace keyturnd"
	skip_test "needs strace to trace keyturnd"
fi

# --- purge -------------------------------------------------------------------------------------
if [ -n "$had_pkgs" ]; then
	for i in 1 2 3 4 5 6; do
		skip_test "keyturn packages were installed before the test: left installed"
	done
else
	if DEBIAN_FRONTEND=noninteractive apt-get purge -y -q $DEB_PKGS >"$T/purge.log" 2>&1; then
		ok "apt-get purge: the four packages"
	else
		fail_log "apt-get purge: the four packages" "$T/purge.log"
	fi
	we_installed=no
	n=0
	for p in $DEB_PKGS; do
		# Installed (i) or its configuration files left (c).
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -qE '^.[ic]' && n=$((n + 1))
	done
	expect_eq "no keyturn package is left, not even its configuration" 0 "$n"
	check "purge removed /etc/keyturn, /var/lib/keyturn and the unit's enablement" \
		sh -c '! ls -d /etc/keyturn /var/lib/keyturn \
			/etc/systemd/system/multi-user.target.wants/keyturnd.service 2>/dev/null'
	expect_eq "the PAM stacks are as they were" "$pam_before" "$(pam_sums)"
	if [ "$had_user" = no ]; then
		userdel keyturn >/dev/null 2>&1
		getent group keyturn >/dev/null && groupdel keyturn >/dev/null 2>&1
		check "the keyturn user and group (left by the package, as Debian does) removed" \
			sh -c '! getent passwd keyturn && ! getent group keyturn'
	else
		skip_test "the keyturn user existed before the test: left in place"
	fi
	check "nothing of keyturn is left in /usr" \
		sh -c "! ls /usr/sbin/keyturnd /usr/bin/keyturnctl /usr/lib/$MA/libkeyturn.so.1 \
			/usr/lib/$MA/security/pam_keyturn.so 2>/dev/null"
fi
lap
diag "purge took $LAP s; the whole test $SECONDS s"
done_testing
