# The box: a minimal Debian 12 booted with its own systemd in a container
# (systemd-nspawn --boot), sharing this host's network, so that keyturn's
# packages run under a real systemd as they do in production. The root file
# system comes from tests/box/mkroot (made once, cached outside the clone);
# each test boots a copy of it in $T and powers it off on any exit.
#
# Source after common.sh (and accounts.sh, for skip_all). Then:
#   box_need              skip every planned check, saying why, where no box can run
#   box_boot              boot it and wait for systemd; sets BOX_PID (its PID 1)
#   box CMD...            run CMD inside (all its namespaces), env cleared
#   box_put PATH MODE     write stdin to PATH inside
#   box_install_debs      apt-get install keyturn's .debs inside, from KT_DEBS
#   box_install_keyturn   the same with /etc/default/keyturnd, as one check
#   box_cleanup           power it off (systemctl poweroff), kill it if that hangs
# The container's systemd is reached with nsenter into its PID 1, not
# machinectl: the host need not run systemd.

BOX_TIMEOUT=${BOX_TIMEOUT:-120}
BOX_PID=
BOX_NSPAWN=
BOX_ROOT=

# box_need: the tools, root, a kernel that lets nspawn boot, and the root
# file system; every planned check is skipped with the reason otherwise.
box_need() {
	local t
	[ "$(id -u)" -eq 0 ] || skip_all "needs root to boot a container with systemd-nspawn"
	PATH=$PATH:/usr/sbin:/sbin
	for t in systemd-nspawn nsenter debootstrap flock pgrep; do
		command -v "$t" >/dev/null ||
			skip_all "needs $t (scripts/install-deps installs it)"
	done
	# mkroot waits for another run (scripts/test starts one early).
	if ! BOX_IMAGE=$(timeout 900 "$KT_SRCDIR/tests/box/mkroot" 2>"$T/mkroot.err"); then
		skip_all "no Debian 12 root file system to boot: $(tail -n 3 "$T/mkroot.err" | tr '\n' ' ')"
	fi
}

# box_init_pid: the host PID of the container's PID 1, a descendant of
# systemd-nspawn whose PID in its own namespace is 1.
box_init_pid() {
	local p q
	for p in $(pgrep -P "$BOX_NSPAWN") ; do
		for q in "$p" $(pgrep -P "$p"); do
			if grep -qE '^NSpid:[[:space:]]+[0-9]+[[:space:]]+1$' "/proc/$q/status" 2>/dev/null; then
				echo "$q"
				return 0
			fi
		done
	done
	return 1
}

# box CMD...: runs CMD inside the box as root with a clean environment
# (nothing of this host's AWS settings), within BOX_TIMEOUT seconds.
box() {
	timeout -k 5 "$BOX_TIMEOUT" nsenter -t "$BOX_PID" -a -- \
		env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 TERM=dumb HOME=/root "$@"
}

# box_put PATH MODE: writes stdin to PATH inside the box, with MODE.
box_put() {
	box sh -c 'cat >"$1" && chmod "$2" "$1"' box_put "$1" "$2"
}

# box_booted: systemd inside has finished starting up (running, or degraded
# with a unit failed, which box_boot then names).
box_booted() {
	local s
	s=$(box systemctl is-system-running 2>/dev/null)
	[ "$s" = running ] || [ "$s" = degraded ]
}

# box_boot: copies the root, boots it, and waits for its systemd. Call it
# before the first check: where it cannot boot, it skips them all.
box_boot() {
	BOX_ROOT=$T/box
	cp -a --reflink=auto "$BOX_IMAGE" "$BOX_ROOT" || bail "could not copy $BOX_IMAGE"
	rm -f "$BOX_ROOT/.complete"
	chmod 0755 "$BOX_ROOT"
	# CAP_IPC_LOCK: without it nspawn's seccomp filter refuses mlock to the
	# whole container (EPERM), which a host's PID 1 never does.
	systemd-nspawn -q -D "$BOX_ROOT" --boot --register=no --keep-unit --capability=CAP_IPC_LOCK \
		--machine="kt-box-$$" >"$T/nspawn.log" 2>&1 </dev/null &
	BOX_NSPAWN=$!
	# A machine where nspawn cannot boot a system is one the tests cannot
	# run on: every check is skipped, with what nspawn or systemd said.
	if ! wait_until 60 box_init_pid >/dev/null; then
		sed 's/^/# nspawn: /' "$T/nspawn.log" | tail -n 20
		skip_all "systemd-nspawn could not boot the box: $(tail -n 1 "$T/nspawn.log")"
	fi
	BOX_PID=$(box_init_pid)
	if ! wait_until 120 box_booted; then
		box systemctl list-jobs --no-pager 2>&1 | sed 's/^/# jobs: /'
		skip_all "the box's systemd did not finish starting up in 120 s ($(box systemctl is-system-running 2>&1))"
	fi
	box systemctl --failed --no-legend | sed 's/^/# failed in the box: /'
}

# box_install_debs PACKAGE...: copies KT_DEBS' .debs of these packages
# into the box and installs them with apt-get, which needs no network (the
# root holds their dependencies). Output in $T/apt.log.
box_install_debs() {
	local p f args=()
	mkdir -p "$BOX_ROOT/debs"
	for p in "$@"; do
		f=$(ls "$KT_DEBS/${p}_"*.deb 2>/dev/null | head -n 1)
		[ -n "$f" ] || { echo "no $p .deb in $KT_DEBS" >"$T/apt.log"; return 1; }
		cp "$f" "$BOX_ROOT/debs/"
		args+=("/debs/${f##*/}")
	done
	box env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
		-o Dpkg::Use-Pty=0 "${args[@]}" >"$T/apt.log" 2>&1
}

# box_install_keyturn PACKAGE...: keyturn as an operator installs it: the
# region and (test) credentials in /etc/default/keyturnd, then the .debs
# with apt-get. One check; bails out when they are not installed.
box_install_keyturn() {
	local what="apt-get installs $* in the box (no network needed)"
	box_put /etc/default/keyturnd 0600 <<EOF
AWS_REGION=us-east-1
AWS_ACCESS_KEY_ID=AKIDKEYTURNBOX
AWS_SECRET_ACCESS_KEY=keyturn-box-secret
AWS_EC2_METADATA_DISABLED=true
EOF
	if box_install_debs "$@"; then
		ok "$what"
	else
		not_ok "$what"
		sed 's/^/#   /' "$T/apt.log" | tail -n 20
		bail "not installed"
	fi
}

# box_debs: sets KT_DEBS to the .debs of this build: those 900-packages left
# in tests/debs when they are newer than keyturnd, else a `make deb` of a
# plain build tree made here (some minutes). Fails, saying why, without.
box_debs() {
	KT_DEBS=$KT_BUILDDIR/tests/debs
	if [ -n "$(find "$KT_DEBS" -name 'keyturn_*.deb' -newer "$KT_BUILDDIR/keyturnd" 2>/dev/null)" ]; then
		return 0
	fi
	diag "no .debs from 900-packages newer than this build: make deb here"
	mkdir -p "$T/build"
	(unset MAKEFLAGS MFLAGS MAKELEVEL
		cd "$T/build" && "$KT_SRCDIR/configure" >configure.out 2>&1 && make deb) >"$T/deb.log" 2>&1 ||
		{ tail -n 30 "$T/deb.log" | sed 's/^/#   /'; return 1; }
	KT_DEBS=$T/build/packages/deb
}

# box_cleanup: powers the box off and waits for systemd-nspawn to end;
# kills both when that takes over a minute. Then common.sh's cleanup.
box_cleanup() {
	if [ -n "$BOX_NSPAWN" ] && kill -0 "$BOX_NSPAWN" 2>/dev/null; then
		[ -n "$BOX_PID" ] && BOX_TIMEOUT=20 box systemctl poweroff >/dev/null 2>&1
		if ! wait_until 60 eval '! kill -0 "$BOX_NSPAWN" 2>/dev/null'; then
			echo "# the box did not power off in 60 s: killed" >&2
			[ -n "$BOX_PID" ] && kill -KILL "$BOX_PID" 2>/dev/null
			kill -KILL "$BOX_NSPAWN" 2>/dev/null
		fi
		wait "$BOX_NSPAWN" 2>/dev/null
	fi
	kt_cleanup
}
