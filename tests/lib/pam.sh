# Helpers for system tests of pam_keyturn.so through real libpam: what they
# need from the host (pam_wrapper, its pam_set_items.so, Linux-PAM's own
# modules), the preload a sanitized module needs, service files in $SVC,
# and logins by tests/tools/kt-pamtest (libpamtest) and by pamtester.
# Source after common.sh; set MOD (the module) and SVC (the service
# directory) first. A script whose host lacks a piece is skipped whole.

KT_PAMTEST="$KT_BUILDDIR/tests/tools/kt-pamtest"
need_built "$MOD"
need_built "$KT_PAMTEST"
mkdir -p "$SVC"

# pam_set_items.so copies these from the environment into PAM items; none
# may leak in from the caller's.
unset PAM_USER PAM_SERVICE PAM_TTY PAM_RHOST PAM_RUSER PAM_AUTHTOK PAM_OLDAUTHTOK \
	PAM_USER_PROMPT PAM_XDISPLAY PAM_AUTHTOK_TYPE KEYTURN_SOCKET KEYTURN_SOCKET_OWNER
export LANG=C LC_ALL=C

# Extra environment for the logins (KEYTURN_SOCKET_OWNER=... when not root).
OWNER_ENV=()

# --- what the tests need from the host ---------------------------------------------
# find_file NAME DIR...: the first DIR/NAME that exists.
find_file() {
	local name=$1 d
	shift
	for d in "$@"; do
		[ -e "$d/$name" ] && { echo "$d/$name"; return 0; }
	done
	return 1
}
LIBDIRS=(/usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /lib/x86_64-linux-gnu /lib64 /lib
	/usr/lib/aarch64-linux-gnu /lib/aarch64-linux-gnu)
PWRAP=$(find_file libpam_wrapper.so "${LIBDIRS[@]}") || {
	echo "1..0 # SKIP pam_wrapper (libpam_wrapper.so) is not installed (Debian: libpam-wrapper)"
	exit 0
}
SET_ITEMS=$(find_file pam_set_items.so "$(dirname "$PWRAP")/pam_wrapper") || {
	echo "1..0 # SKIP pam_wrapper's pam_set_items.so is not installed"
	exit 0
}
SECDIRS=()
for d in "${LIBDIRS[@]}"; do SECDIRS+=("$d/security"); done
PAM_DEBUG=$(find_file pam_debug.so "${SECDIRS[@]}") || {
	echo "1..0 # SKIP pam_debug.so (Linux-PAM's own modules) is not installed"
	exit 0
}
PAMDIR=$(dirname "$PAM_DEBUG")

# A sanitized module needs the ASan runtime loaded before anything else in a
# program that is not built with it (pamtester), and before pam_wrapper in
# one that is (kt-pamtest), since LD_PRELOAD comes ahead of the program's own
# libraries. The runtime is the one the module was linked against.
PRELOAD="$PWRAP"
sanitized=no
if readelf -d "$MOD" | grep -q 'NEEDED.*libasan'; then
	sanitized=yes
	ASAN_RT=$(ldd "$MOD" | awk '/libasan/ { print $3 }')
	[ -f "$ASAN_RT" ] || bail "the module needs libasan, which ldd cannot find"
	PRELOAD="$ASAN_RT $PWRAP"
fi
diag "sanitized build: $sanitized; preload: $PRELOAD"

# service NAME ARGS...: a service whose result is exactly pam_keyturn's (see
# the top); ARGS are the module's. NAME.nosock: the same without socket=.
service() {
	local name=$1
	shift
	cat >"$SVC/$name" <<-EOF
	auth [success=done ignore=ignore default=die] $MOD $*
	auth requisite $PAM_DEBUG auth=no_module_data
	account required $PAMDIR/pam_permit.so
	EOF
}
# stack NAME LINE...: a service made of the given auth lines.
stack() {
	local name=$1 l
	shift
	for l in "$@"; do printf 'auth %s\n' "$l"; done >"$SVC/$name"
	printf 'account required %s/pam_permit.so\n' "$PAMDIR" >>"$SVC/$name"
}
# pamtester's own words for a code come from kt-pamtest --strerror.
IGNORED=PAM_NO_MODULE_DATA

# pam_env COMMAND...: COMMAND under pam_wrapper with the service files of $SVC;
# the module's pam_syslog() lines go to stderr (PAM_WRAPPER_DEBUGLEVEL=2 shows
# them all, up to LOG_DEBUG, but none of pam_wrapper's own traces, which
# print items such as PAM_AUTHTOK).
pam_env() {
	env LD_PRELOAD="$PRELOAD" PAM_WRAPPER=1 PAM_WRAPPER_SERVICE_DIR="$SVC" \
		PAM_WRAPPER_DISABLE_DEEPBIND=1 PAM_WRAPPER_DEBUGLEVEL=2 "${OWNER_ENV[@]}" "$@"
}

# login NAME SERVICE USER [PWFILE [kt-pamtest options...]]: one kt-pamtest
# run; stdout in $T/NAME.out, stderr in $T/NAME.err; RES is the first line
# (with PAM_IGNORE for the sentinel), PROMPTS the prompt count.
login() {
	local name=$1 svc=$2 user=$3 pw=${4:-$T/pw.good}
	shift 3
	[ $# -gt 0 ] && shift
	pam_env "$KT_PAMTEST" --prompts "$@" "$svc" "$user" <"$pw" >"$T/$name.out" 2>"$T/$name.err"
	RES=$(head -n 1 "$T/$name.out")
	[ "$RES" = "$IGNORED" ] && RES=PAM_IGNORE
	[ -n "$RES" ] || RES="(nothing; exit $(tail -n 1 "$T/$name.err" | head -c 200))"
	PROMPTS=$(sed -n 's/^prompts=//p' "$T/$name.out")
}

# expect_pam NAME SERVICE USER EXPECTED DESCRIPTION [PWFILE [options...]]
expect_pam() {
	local name=$1 svc=$2 user=$3 want=$4 what=$5
	shift 5
	login "$name" "$svc" "$user" "$@"
	if [ "$RES" = "$want" ]; then
		ok "$what: $want"
	else
		not_ok "$what: $want"
		diag "got: $RES"
		sed 's/^/#   stderr: /' "$T/$name.err" | grep -v 'PWRAP_DEBUG.*pwrap_init\|copy_' | head -n 8
	fi
}

pt() { # pt NAME SERVICE USER PWFILE [pamtester options]
	local name=$1 svc=$2 user=$3 pw=$4
	shift 4
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=0 pam_env pamtester "$@" "$svc" "$user" authenticate \
		<"$pw" >"$T/$name.out" 2>"$T/$name.err"
	PT_RC=$?
}
expect_pt() { # expect_pt NAME SERVICE USER PWFILE EXPECTED_CODE DESCRIPTION [pamtester options]
	local name=$1 svc=$2 user=$3 pw=$4 want=$5 what=$6 code text
	shift 6
	pt "$name" "$svc" "$user" "$pw" "$@"
	code=$want
	[ "$want" = PAM_IGNORE ] && code=$IGNORED
	if [ "$want" = PAM_SUCCESS ]; then
		text="successfully authenticated"
	else
		text=$(pam_env "$KT_PAMTEST" --strerror "$code" 2>/dev/null)
	fi
	# pamtester exits 0 on a success and 1 on anything else.
	local want_rc=1
	[ "$want" = PAM_SUCCESS ] && want_rc=0
	if [ "$PT_RC" = "$want_rc" ] && grep -qF "pamtester: $text" "$T/$name.out" "$T/$name.err"; then
		ok "pamtester: $what: $want"
	else
		not_ok "pamtester: $what: $want"
		diag "exit $PT_RC; expected the words: $text"
		cat "$T/$name.out" "$T/$name.err" | grep -v 'PWRAP_DEBUG.*pwrap_init\|copy_' | sed 's/^/#   /' | head -n 8
	fi
}
