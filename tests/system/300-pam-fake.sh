#!/bin/bash
# pam_keyturn.so through real libpam, against a fake keyturnd.
#
# Plan. A fake daemon (tests/lib/fakeverify.py) listens on a socket in $T and
# answers "verify" according to the user name asked about: a real check of
# the password, match false, each error code, and every kind of broken answer
# (garbage, cut JSON, wrong types, cut and oversize frames, a close, a stall).
# Service files in $T put pam_keyturn.so first, as
#   auth [success=done ignore=ignore default=die] pam_keyturn.so ...
#   auth requisite pam_debug.so auth=no_module_data
# so that pam_authenticate() returns exactly the module's code, and
# PAM_NO_MODULE_DATA (from pam_debug, shown here as PAM_IGNORE) exactly when
# the module returned PAM_IGNORE. tests/tools/kt-pamtest (libpamtest, under
# pam_wrapper) runs the logins:
#   1. every mapping: match, mismatch, not_found, the unavailable kinds, a
#      stall past timeout=, denied, the daemon's own failures, and each broken
#      answer, which is never PAM_SUCCESS although the password is right;
#   2. ignore_unknown_user and ignore_authinfo_unavail, each alone and both,
#      and that neither turns a broken answer or a bad socket into PAM_IGNORE;
#   3. no daemon (no socket), a socket of the wrong owner, and (as root) a
#      socket file of root's served by a process of another user;
#   4. bad arguments (an unknown option, a bad timeout, a relative socket) are
#      PAM_SERVICE_ERR, logged with the option's name, and ask no daemon;
#   5. where the password comes from: use_first_pass and try_first_pass
#      behind pam_wrapper's pam_set_items.so (which sets PAM_AUTHTOK from the
#      environment, as an earlier module of a real stack would), with the
#      number of prompts counted; an empty, an oversize and a non-UTF-8
#      password; the items (service, rhost, tty) the daemon is told;
#   6. stacks in the shape of real ones (sufficient + pam_deny, and the
#      lines of packaging/pam-config/keyturn with pam_unix after them);
#   7. bursts: many handles one after another, many logins on one handle (one
#      connection, reused), no descriptor left after pam_end; and processes
#      at once (through pam_start_confdir(), see there);
#   8. the core cases again with pamtester as the PAM application;
#   9. nm -D: the module exports pam_sm_authenticate and pam_sm_setcred only;
#      no password in any log; no sanitizer report.
# In a sanitized build the ASan runtime is preloaded ahead of pam_wrapper
# (pamtester is not built with it); see pam_env below. Checks that need root
# are skipped with their reason when not root.

. "$KT_SRCDIR/tests/lib/common.sh"

MOD="$KT_BUILDDIR/.libs/pam_keyturn.so"
SVC="$T/services"
FAKE="$KT_LIB/fakeverify.py"
. "$KT_LIB/pam.sh"

ME=$(id -un)
ROOT=no
[ "$(id -u)" -eq 0 ] && ROOT=yes
# pam_keyturn trusts only sockets of root's or keyturn's: it ignores
# KEYTURN_SOCKET_OWNER (module options only), so a fake daemon of another
# user's cannot stand in for keyturnd.
[ "$ROOT" = yes ] || skip_all "needs root: pam_keyturn trusts only a socket of root's or keyturn's"
OWNER_ENV=()

# The right password: JSON's special characters and non-ASCII UTF-8, so
# that a mangled encoding shows as a mismatch.
PW="Kt-$$-s3cret \"quoted\" back\\slash tab	üñï 🔑"
printf '%s\n' "$PW" >"$T/pw.good"
printf '%s\n' "wrong-$$" >"$T/pw.bad"
printf '\n' >"$T/pw.empty"
{ head -c 5000 /dev/zero | tr '\0' 'x'; echo; } >"$T/pw.huge"
{ head -c 4096 /dev/zero | tr '\0' 'y'; echo; } >"$T/pw.max"
printf 'caf\351\n' >"$T/pw.latin1"

SOCK="$T/fake.sock"
FAKELOG="$T/fake.log"

# --- the fake daemon and the service files -------------------------------------------
start_fake() {
	"$PYTHON3" "$FAKE" --socket "$SOCK" --log "$FAKELOG" --password-file "$T/pw.good" \
		--slow 3 >"$T/fake.out" 2>"$T/fake.err" &
	FAKE_PID=$!
	kt_pids+=("$FAKE_PID")
	wait_until 20 test -S "$SOCK" || bail "the fake daemon did not start: $(head -c 300 "$T/fake.err")"
}
start_fake
ok "the fake daemon listens on $SOCK"

printf 'auth required %s/pam_deny.so\naccount required %s/pam_deny.so\n' "$PAMDIR" "$PAMDIR" >"$SVC/other"

S="socket=$SOCK"
service kt "$S" timeout=2000 debug
service kt-fast "$S" timeout=500 debug
service kt-iu "$S" timeout=2000 ignore_unknown_user
service kt-ia "$S" timeout=500 ignore_authinfo_unavail
service kt-iboth "$S" timeout=500 ignore_unknown_user ignore_authinfo_unavail debug
service kt-down "socket=$T/no-such.sock" timeout=2000
service kt-down-ia "socket=$T/no-such.sock" timeout=2000 ignore_authinfo_unavail
service kt-unknown "$S" debug nullok
service kt-badtimeout "$S" timeout=5s
service kt-relsock socket=fake.sock
service kt-bigtimeout "$S" timeout=60001
stack kt-use "optional $SET_ITEMS" \
	"[success=done ignore=ignore default=die] $MOD $S use_first_pass debug" \
	"requisite $PAM_DEBUG auth=no_module_data"
stack kt-try "optional $SET_ITEMS" \
	"[success=done ignore=ignore default=die] $MOD $S try_first_pass debug" \
	"requisite $PAM_DEBUG auth=no_module_data"
stack kt-dflt "optional $SET_ITEMS" \
	"[success=done ignore=ignore default=die] $MOD $S debug" \
	"requisite $PAM_DEBUG auth=no_module_data"
stack kt-sufficient "sufficient $MOD $S timeout=500" "required $PAMDIR/pam_deny.so"
stack kt-sufficient-bad "sufficient $MOD $S bogus_option" "required $PAMDIR/pam_deny.so"

# --- running logins ---------------------------------------------------------------------
# requests_for USER: how many verify requests the fake saw for USER.
requests_for() {
	"$PYTHON3" - "$FAKELOG" "$1" <<-'EOF'
	import json, sys
	n = 0
	for line in open(sys.argv[1]):
	    r = json.loads(line)
	    n += r.get("event") == "request" and r.get("user") == sys.argv[2]
	print(n)
	EOF
}

# conns_for USER: how many connections carried requests for USER.
conns_for() {
	"$PYTHON3" - "$FAKELOG" "$1" <<-'EOF'
	import json, sys
	c = set()
	for line in open(sys.argv[1]):
	    r = json.loads(line)
	    if r.get("event") == "request" and r.get("user") == sys.argv[2]:
	        c.add(r["conn"])
	print(len(c))
	EOF
}

# last_request USER EXPR: a field of the last request for USER (Python on r).
last_request() {
	"$PYTHON3" - "$FAKELOG" "$1" "$2" <<-'EOF'
	import json, sys
	last = None
	for line in open(sys.argv[1]):
	    r = json.loads(line)
	    if r.get("event") == "request" and r.get("user") == sys.argv[2]:
	        last = r
	print(eval(sys.argv[3], {"r": last}) if last else "(no request)")
	EOF
}

# =====================================================================================
# 1. Every mapping of a daemon's answer.
expect_pam m-match kt alice PAM_SUCCESS "the right password"
expect_eq "one password prompt, answered by the conversation" 1 "$PROMPTS"
expect_eq "the daemon got the password byte for byte (JSON escapes, UTF-8)" True \
	"$(last_request alice 'r["password_ok"]')"
expect_pam m-wrong kt alice PAM_AUTH_ERR "a wrong password" "$T/pw.bad"
expect_pam m-nomatch kt kt-nomatch PAM_AUTH_ERR "match false"
expect_pam m-notfound kt kt-notfound PAM_USER_UNKNOWN "not_found (no [login:] for the account)"
expect_pam m-unavail kt kt-unavailable PAM_AUTHINFO_UNAVAIL "unavailable"
expect_pam m-throttled kt kt-throttled PAM_AUTHINFO_UNAVAIL "throttled"
t0=$(date +%s%N)
expect_pam m-slow kt-fast kt-slow PAM_AUTHINFO_UNAVAIL "no answer within timeout=500"
ms=$((($(date +%s%N) - t0) / 1000000))
check "timeout=500 gives up well before the fake answers (3 s): took ${ms} ms" test "$ms" -lt 2500
expect_pam m-close kt kt-close PAM_AUTHINFO_UNAVAIL "a close without an answer"
expect_pam m-denied kt kt-denied PAM_CRED_INSUFFICIENT "denied (this caller may not verify)"
expect_pam m-internal kt kt-internal PAM_SERVICE_ERR "internal (the daemon failed)"
expect_pam m-badreq kt kt-badrequest PAM_SERVICE_ERR "bad_request"
expect_pam m-unknowncode kt kt-unknowncode PAM_SERVICE_ERR "an error code the protocol does not have"
# Broken answers, all to the right password: each is PAM_SERVICE_ERR.
for u in kt-garbage kt-badjson kt-trailing kt-array kt-okstring kt-matchstring kt-matchint \
	kt-matchnull kt-nomatchmember kt-stageint kt-truncated kt-headercut kt-oversize \
	kt-zerolength; do
	expect_pam "g-$u" kt "$u" PAM_SERVICE_ERR "broken answer ($u), right password"
done
# Answers that lax JSON would read as a match (raw bytes from the fake,
# see fakeverify.py's RAW): never PAM_SUCCESS, and never ignored.
for u in kt-pytrue kt-comment kt-squote kt-dupmatch kt-nulname kt-trailobj kt-overlong \
	kt-surrogate kt-nan; do
	expect_pam "s-$u" kt "$u" PAM_SERVICE_ERR "not strict JSON ($u), right password"
	expect_pam "s-i-$u" kt-iboth "$u" PAM_SERVICE_ERR "not strict JSON ($u), both ignores"
done
check "a lax answer is logged as not JSON" \
	grep -q 'SYSLOG(3): user kt-dupmatch: password not checked: unexpected answer from keyturnd: the answer is not JSON' \
	"$T/s-kt-dupmatch.err"
check "the broken answers are logged as not checked" \
	grep -q 'SYSLOG(3): user kt-matchstring: password not checked: unexpected answer' "$T/g-kt-matchstring.err"

# =====================================================================================
# 2. ignore_unknown_user and ignore_authinfo_unavail.
expect_pam i-u-nf kt-iu kt-notfound PAM_IGNORE "ignore_unknown_user: not_found"
expect_pam i-u-un kt-iu kt-unavailable PAM_AUTHINFO_UNAVAIL "ignore_unknown_user alone: unavailable"
expect_pam i-a-un kt-ia kt-unavailable PAM_IGNORE "ignore_authinfo_unavail: unavailable"
expect_pam i-a-th kt-ia kt-throttled PAM_IGNORE "ignore_authinfo_unavail: throttled"
expect_pam i-a-slow kt-ia kt-slow PAM_IGNORE "ignore_authinfo_unavail: no answer in time"
expect_pam i-a-nf kt-ia kt-notfound PAM_USER_UNKNOWN "ignore_authinfo_unavail alone: not_found"
expect_pam i-b-match kt-iboth alice PAM_SUCCESS "both ignores: the right password still passes"
expect_pam i-b-wrong kt-iboth alice PAM_AUTH_ERR "both ignores: a wrong password still fails" "$T/pw.bad"
expect_pam i-b-denied kt-iboth kt-denied PAM_CRED_INSUFFICIENT "both ignores: denied is not ignored"
for u in kt-garbage kt-matchstring kt-truncated kt-internal kt-unknowncode; do
	expect_pam "i-b-$u" kt-iboth "$u" PAM_SERVICE_ERR "both ignores: $u is not ignored"
done
check "an ignored outage is still logged as a warning" \
	grep -q 'SYSLOG(4): user kt-unavailable: keyturnd cannot check the password (ignored)' "$T/i-a-un.err"

# =====================================================================================
# 3. No daemon, and sockets that must not be trusted.
expect_pam d-down kt-down alice PAM_AUTHINFO_UNAVAIL "no daemon (no socket)"
expect_pam d-down-ia kt-down-ia alice PAM_IGNORE "no daemon, ignore_authinfo_unavail"
n_before=$(requests_for alice)
chown nobody "$SOCK"
expect_pam o-file kt alice PAM_SERVICE_ERR "a socket file of another user (nobody)"
expect_pam o-file-ia kt-iboth alice PAM_SERVICE_ERR "the same with both ignores: never PAM_IGNORE"
check "the bad owner is logged" grep -q 'not trusting the keyturn socket.*belongs to uid' "$T/o-file.err"
# The application's environment does not widen the trust: the module
# ignores KEYTURN_SOCKET_OWNER (libkeyturn would honour it elsewhere).
OWNER_ENV=(KEYTURN_SOCKET_OWNER=nobody)
expect_pam o-env kt alice PAM_SERVICE_ERR "KEYTURN_SOCKET_OWNER=nobody in the environment is ignored"
OWNER_ENV=(KEYTURN_SOCKET_OWNER="$(id -u nobody)")
expect_pam o-env-uid kt-iboth alice PAM_SERVICE_ERR "KEYTURN_SOCKET_OWNER=<nobody's uid> is ignored, with both ignores"
OWNER_ENV=()
check "the ignored variable is not offered as a way out in the log" \
	sh -c "grep -q 'not trusting the keyturn socket' '$T/o-env.err' && ! grep -q KEYTURN_SOCKET_OWNER '$T/o-env.err'"
chown root "$SOCK"
expect_eq "an untrusted socket is never sent the password" "$n_before" "$(requests_for alice)"
# KEYTURN_SOCKET naming the (trusted) fake does not replace socket=.
n_before=$(requests_for alice)
OWNER_ENV=(KEYTURN_SOCKET="$SOCK")
expect_pam o-sockenv kt-down alice PAM_AUTHINFO_UNAVAIL "KEYTURN_SOCKET in the environment is ignored (socket= has no daemon)"
OWNER_ENV=()
expect_eq "KEYTURN_SOCKET: the fake it names was never asked" "$n_before" "$(requests_for alice)"
expect_pam o-back kt alice PAM_SUCCESS "the socket back with its owner is trusted again"

# A socket file of root's, served by a process of nobody: the kernel's record
# of the peer counts, not the file.
if [ "$ROOT" = yes ] && command -v setpriv >/dev/null; then
	NOBODY_DIR="$T/nobody"
	mkdir -m 1777 "$NOBODY_DIR"
	chmod 755 "$T"
	cp "$FAKE" "$T/pw.good" "$NOBODY_DIR/"
	chmod 644 "$NOBODY_DIR"/*
	NPY=""
	for p in "$PYTHON3" /usr/bin/python3 /usr/local/bin/python3; do
		if setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- \
			"$p" -c 'pass' 2>/dev/null; then
			NPY=$p
			break
		fi
	done
	if [ -n "$NPY" ]; then
		setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$NPY" \
			"$NOBODY_DIR/fakeverify.py" --socket "$NOBODY_DIR/n.sock" \
			--log "$NOBODY_DIR/n.log" --password-file "$NOBODY_DIR/pw.good" \
			>"$T/nfake.out" 2>"$T/nfake.err" &
		kt_pids+=("$!")
		wait_until 20 test -S "$NOBODY_DIR/n.sock"
		chown root "$NOBODY_DIR/n.sock"
		service kt-npeer "socket=$NOBODY_DIR/n.sock" timeout=2000 ignore_authinfo_unavail
		expect_pam o-peer kt-npeer alice PAM_SERVICE_ERR "root's socket file served by nobody's process"
		check "the peer's uid is logged" grep -q 'not trusting the keyturn socket.*process serving' "$T/o-peer.err"
		check "nobody's fake was never sent a request" sh -c "! grep -q '\"request\"' '$NOBODY_DIR/n.log' 2>/dev/null"
	else
		for i in 1 2 3; do skip_test "no python3 that the nobody user can run"; done
	fi
else
	for i in 1 2 3; do skip_test "needs root and setpriv to serve a socket from another user's process"; done
fi

# =====================================================================================
# 4. Bad module arguments: PAM_SERVICE_ERR, named in the log, no daemon asked.
expect_pam a-unknown kt-unknown cfg-unknown PAM_SERVICE_ERR "an unknown option (nullok)"
check "the unknown option is logged at LOG_ERR with its name" \
	grep -q 'SYSLOG(3): bad module arguments: unknown option "nullok"' "$T/a-unknown.err"
expect_eq "an unknown option: no prompt" 0 "$PROMPTS"
expect_pam a-timeout kt-badtimeout cfg-timeout PAM_SERVICE_ERR "timeout=5s"
check "the bad timeout is logged with its name" \
	grep -q 'bad module arguments: timeout=5s: not a number of milliseconds' "$T/a-timeout.err"
expect_pam a-bigtimeout kt-bigtimeout cfg-timeout PAM_SERVICE_ERR "timeout=60001 (out of range)"
expect_pam a-relsock kt-relsock cfg-relsock PAM_SERVICE_ERR "a relative socket= path"
expect_eq "bad arguments: the daemon was never asked" 0 \
	"$(($(requests_for cfg-unknown) + $(requests_for cfg-timeout) + $(requests_for cfg-relsock)))"
expect_pam a-suff kt-sufficient-bad alice PAM_AUTH_ERR "sufficient with a bad option, then pam_deny: not a success"

# =====================================================================================
# 5. Where the password comes from. pam_set_items.so, first in the stack, sets
# PAM_AUTHTOK from the environment as pam_unix would from what it prompted.
preset() { # preset NAME SERVICE USER PASSWORD EXPECTED DESCRIPTION [kt-pamtest options]
	local name=$1 svc=$2 user=$3 pw=$4 want=$5 what=$6
	shift 6
	PAM_AUTHTOK=$pw expect_pam "$name" "$svc" "$user" "$want" "$what" "$T/pw.bad" "$@"
}
preset p-use kt-use puser "$PW" PAM_SUCCESS "use_first_pass, an earlier module's right password"
expect_eq "use_first_pass: no prompt" 0 "$PROMPTS"
expect_eq "use_first_pass: the daemon got the earlier module's password" True \
	"$(last_request puser 'r["password_ok"]')"
preset p-use-wrong kt-use puser "wrong-$$" PAM_AUTH_ERR "use_first_pass, an earlier module's wrong password"
expect_eq "use_first_pass, wrong: no prompt (the conversation had the right one)" 0 "$PROMPTS"
n_before=$(requests_for pnone)
expect_pam p-use-none kt-use pnone PAM_AUTH_ERR "use_first_pass with no earlier password" "$T/pw.good"
expect_eq "use_first_pass with none: no prompt although the conversation would answer" 0 "$PROMPTS"
expect_eq "use_first_pass with none: the daemon was not asked" "$n_before" "$(requests_for pnone)"
preset p-try kt-try puser "$PW" PAM_SUCCESS "try_first_pass, an earlier module's right password"
expect_eq "try_first_pass with one: no prompt" 0 "$PROMPTS"
preset p-try-wrong kt-try puser "wrong-$$" PAM_AUTH_ERR "try_first_pass, an earlier module's wrong password"
expect_eq "try_first_pass, wrong: no second prompt" 0 "$PROMPTS"
expect_pam p-try-none kt-try puser PAM_SUCCESS "try_first_pass with none: prompts for it" "$T/pw.good"
expect_eq "try_first_pass with none: one prompt" 1 "$PROMPTS"
preset p-dflt kt-dflt puser "$PW" PAM_SUCCESS "no option: pam_get_authtok takes an earlier password"
expect_eq "no option, an earlier password: no prompt" 0 "$PROMPTS"
expect_pam p-dflt-none kt-dflt puser PAM_SUCCESS "no option, none earlier: prompts" "$T/pw.good"
expect_eq "no option, none earlier: one prompt" 1 "$PROMPTS"
n_before=$(requests_for pconv)
login p-noconv kt pconv "$T/pw.good" --no-password
check "a conversation that gives no password: not a success ($RES)" \
	test "$RES" != PAM_SUCCESS -a "$RES" != PAM_IGNORE -a "${RES#PAM_}" != "$RES"
expect_pam p-empty kt pempty PAM_AUTH_ERR "an empty password" "$T/pw.empty"
expect_pam p-huge kt phuge PAM_AUTH_ERR "a 5000-byte password" "$T/pw.huge"
expect_pam p-latin1 kt platin PAM_AUTH_ERR "a password that is not UTF-8" "$T/pw.latin1"
expect_eq "no password, an empty, an oversize or a non-UTF-8 one: the daemon was not asked" \
	"$n_before 0 0 0" "$(requests_for pconv) $(requests_for pempty) $(requests_for phuge) $(requests_for platin)"
expect_pam p-max kt pmax PAM_AUTH_ERR "a 4096-byte (wrong) password is checked" "$T/pw.max"
expect_eq "the daemon got all 4096 bytes" 4096 "$(last_request pmax 'r["password_len"]')"
expect_pam p-badname kt $'bad\001name' PAM_USER_UNKNOWN "a user name with a control character"
expect_pam p-badname-iu kt-iu $'bad\001name' PAM_IGNORE "the same with ignore_unknown_user"
expect_pam p-items kt itemuser PAM_SUCCESS "with PAM_RHOST and PAM_TTY set" "$T/pw.good" \
	--rhost 192.0.2.7 --tty pts/9
expect_eq "the daemon is told the service, rhost and tty" "kt 192.0.2.7 pts/9 1 verify" \
	"$(last_request itemuser '" ".join(str(r.get(k)) for k in ("service", "rhost", "tty", "v", "op"))')"
# keyturnd refuses a control character in these audit fields; the module
# passes them printable rather than fail the login over them.
expect_pam p-items-odd kt itemodd PAM_SUCCESS "with a control character in PAM_RHOST and PAM_TTY" \
	"$T/pw.good" --rhost $'evil\nhost\x1b' --tty $'pts/\xc3\xa9'
expect_eq "the daemon is told them with '?' for each odd byte" "evil?host? pts/??" \
	"$(last_request itemodd '" ".join(str(r.get(k)) for k in ("rhost", "tty"))')"

# =====================================================================================
# 6. Stacks in the shape of real ones.
expect_pam s-suff kt-sufficient alice PAM_SUCCESS "sufficient, then pam_deny: the right password"
expect_pam s-suff-wrong kt-sufficient alice PAM_AUTH_ERR "sufficient, then pam_deny: a wrong one" "$T/pw.bad"
expect_pam s-suff-garbage kt-sufficient kt-garbage PAM_AUTH_ERR "sufficient, then pam_deny: garbage"
expect_pam s-suff-down kt-sufficient kt-slow PAM_AUTH_ERR "sufficient, then pam_deny: no answer in time"

# The profile's lines as pam-auth-update writes them into common-auth after
# pam_unix's ("end" becomes the jump over what follows), with pam_deny and
# pam_permit closing the stack as Debian's template does.
PROFILE="$KT_SRCDIR/packaging/pam-config/keyturn"
prof_line() { awk -v f="$1:" '$0 == f { getline; sub(/^[ \t]+/, ""); print; exit }' "$PROFILE"; }
AUTH_LINE=$(prof_line Auth)
INIT_LINE=$(prof_line Auth-Initial)
check "the profile has Auth and Auth-Initial lines for pam_keyturn.so" \
	sh -c "echo '$AUTH_LINE' | grep -q 'pam_keyturn.so' && echo '$INIT_LINE' | grep -q 'pam_keyturn.so'"
mk_line() { sed -e "s|success=end|success=$2|" -e "s|pam_keyturn.so|$MOD $S timeout=500|" <<<"$1"; }
stack kt-profile "[success=2 default=ignore] $PAMDIR/pam_unix.so nullok nodelay" \
	"$(mk_line "$AUTH_LINE" 1)" "requisite $PAMDIR/pam_deny.so" "required $PAMDIR/pam_permit.so"
stack kt-profile-init "$(mk_line "$INIT_LINE" 1)" \
	"requisite $PAMDIR/pam_deny.so" "required $PAMDIR/pam_permit.so"
# pam_unix prompts; pam_keyturn takes the same password (try_first_pass).
expect_pam s-prof kt-profile ktlogin-$$ PAM_SUCCESS "profile after pam_unix: the right password"
expect_eq "profile after pam_unix: one prompt in all" 1 "$PROMPTS"
expect_pam s-prof-wrong kt-profile ktlogin-$$ PAM_AUTH_ERR "profile after pam_unix: a wrong password" "$T/pw.bad"
expect_pam s-prof-garbage kt-profile kt-matchint PAM_AUTH_ERR "profile after pam_unix: a broken answer"
expect_pam s-prof-nf kt-profile kt-notfound PAM_AUTH_ERR "profile after pam_unix: no keyturn login"
check "ignore_unknown_user keeps an unmapped user out of the log" \
	sh -c "! grep -q 'no keyturn login' '$T/s-prof-nf.err'"
expect_pam s-init kt-profile-init ktlogin-$$ PAM_SUCCESS "the profile's Auth-Initial line alone"
expect_pam s-init-down kt-profile-init kt-close PAM_AUTH_ERR "Auth-Initial alone: no answer"

# =====================================================================================
# 7. Bursts and the connection's life.
login b-seq kt burst-seq "$T/pw.good" -n 100 --check-fds
expect_eq "100 logins, a new PAM handle each: all PAM_SUCCESS" "PAM_SUCCESS 100" "$(head -n 1 "$T/b-seq.out")"
expect_eq "one connection per PAM handle" 100 "$(conns_for burst-seq)"
expect_eq "pam_end() closed every connection (no descriptor left)" "fds_left=0" \
	"$(grep '^fds_left=' "$T/b-seq.out")"
login b-same kt burst-same "$T/pw.good" -n 50 --same-handle --check-fds
expect_eq "50 logins on one PAM handle: all PAM_SUCCESS" "PAM_SUCCESS 50" "$(head -n 1 "$T/b-same.out")"
expect_eq "one PAM handle keeps one connection (pam_get_data)" 1 "$(conns_for burst-same)"
expect_eq "one PAM handle: its connection closed at pam_end()" "fds_left=0" \
	"$(grep '^fds_left=' "$T/b-same.out")"
login b-mixed kt burst-same "$T/pw.bad" -n 10 --same-handle
expect_eq "mismatches on one handle: all PAM_AUTH_ERR" "PAM_AUTH_ERR 10" "$(head -n 1 "$T/b-mixed.out")"
# Processes at once go through pam_start_confdir(), not pam_wrapper: each
# pam_wrapper process copies the service files to a directory /tmp/pam.C,
# with one character C picked by a check-then-create that races between
# processes started together.
if env "${OWNER_ENV[@]}" "$KT_PAMTEST" --confdir "$SVC" kt burst-probe <"$T/pw.good" \
	>"$T/b-probe.out" 2>"$T/b-probe.err"; then
	par_pids=()
	for i in 1 2 3 4 5 6 7 8; do
		env "${OWNER_ENV[@]}" "$KT_PAMTEST" --confdir "$SVC" -n 25 kt burst-par \
			<"$T/pw.good" >"$T/b-par-$i.out" 2>"$T/b-par-$i.err" &
		par_pids+=("$!")
	done
	par_ok=0
	for p in "${par_pids[@]}"; do wait "$p" && par_ok=$((par_ok + 1)); done
	expect_eq "8 processes x 25 logins at once: every process all PAM_SUCCESS" 8 "$par_ok"
	expect_eq "the fake saw all 200 of them" 200 "$(requests_for burst-par)"
else
	diag "$(head -n 3 "$T/b-probe.out" "$T/b-probe.err")"
	for i in 1 2; do skip_test "kt-pamtest --confdir does not work here (libpam without pam_start_confdir?)"; done
fi

# =====================================================================================
# 8. pamtester as the PAM application (it prompts through misc_conv, on stdin).
# pamtester is not built with ASan: leak checks off for it.
if command -v pamtester >/dev/null; then
	expect_pt t-match kt ptuser "$T/pw.good" PAM_SUCCESS "the right password" -I rhost=198.51.100.4 -I tty=pts/4
	expect_eq "pamtester: the daemon is told its rhost and tty" "198.51.100.4 pts/4 True" \
		"$(last_request ptuser '" ".join(str(r.get(k)) for k in ("rhost", "tty", "password_ok"))')"
	check "pamtester: the module prompted for the password (\"Password:\")" \
		grep -q 'Password:' "$T/t-match.out" "$T/t-match.err"
	expect_pt t-wrong kt ptuser "$T/pw.bad" PAM_AUTH_ERR "a wrong password"
	expect_pt t-nf kt kt-notfound "$T/pw.good" PAM_USER_UNKNOWN "not_found"
	expect_pt t-nf-iu kt-iu kt-notfound "$T/pw.good" PAM_IGNORE "not_found, ignore_unknown_user"
	expect_pt t-un kt kt-unavailable "$T/pw.good" PAM_AUTHINFO_UNAVAIL "unavailable"
	expect_pt t-down kt-down ptuser "$T/pw.good" PAM_AUTHINFO_UNAVAIL "no daemon"
	expect_pt t-down-ia kt-down-ia ptuser "$T/pw.good" PAM_IGNORE "no daemon, ignore_authinfo_unavail"
	expect_pt t-garbage kt kt-garbage "$T/pw.good" PAM_SERVICE_ERR "garbage, right password"
	expect_pt t-matchint kt-iboth kt-matchint "$T/pw.good" PAM_SERVICE_ERR "\"match\":1, both ignores"
	expect_pt t-oversize kt kt-oversize "$T/pw.good" PAM_SERVICE_ERR "an oversize frame"
	expect_pt t-unknown kt-unknown ptuser "$T/pw.good" PAM_SERVICE_ERR "an unknown option"
	PAM_AUTHTOK=$PW expect_pt t-use kt-use ptuser "$T/pw.empty" PAM_SUCCESS "use_first_pass behind pam_set_items"
	check "pamtester, use_first_pass: no password prompt" sh -c "! grep -q 'Password:' '$T/t-use.out' '$T/t-use.err'"
	PAM_AUTHTOK="wrong-$$" expect_pt t-use-wrong kt-use ptuser "$T/pw.good" PAM_AUTH_ERR "use_first_pass, wrong earlier password"
	expect_pt t-suff kt-sufficient kt-truncated "$T/pw.good" PAM_AUTH_ERR "sufficient + pam_deny: a cut answer"
else
	for i in $(seq 1 17); do skip_test "pamtester is not installed"; done
fi

# =====================================================================================
# 9. The module's face, the logs, the sanitizers.
nm -D --defined-only "$MOD" | awk '{ print $3 }' | sed 's/@.*//' | sort -u >"$T/nm.list"
if [ "$sanitized" = yes ]; then
	grep -vE '^(__asan_|__ubsan_|__lsan_|__sanitizer_|__sancov_)' "$T/nm.list" >"$T/nm.ours"
else
	cp "$T/nm.list" "$T/nm.ours"
fi
expect_eq "nm -D: pam_keyturn.so exports pam_sm_authenticate and pam_sm_setcred only" \
	"pam_sm_authenticate pam_sm_setcred" "$(tr '\n' ' ' <"$T/nm.ours" | sed 's/ $//')"
check "pam_keyturn.so needs libkeyturn.so.1 and libpam.so.0" \
	sh -c "readelf -d '$MOD' | grep -q 'NEEDED.*\[libkeyturn.so.1\]' && readelf -d '$MOD' | grep -q 'NEEDED.*\[libpam.so.0\]'"
check "the module logged debug lines (the debug option)" grep -q 'SYSLOG(7): user alice: password accepted' "$T/m-match.err"
# Its first part alone, so that an escaped or cut copy is found too.
leaks=$(grep -lF -e "$PW" -e "Kt-$$-s3cret" "$T"/*.err "$T"/*.out "$FAKELOG" 2>/dev/null)
check "the password is in no log line, stderr or stdout (debug on)" test -z "$leaks"
[ -z "$leaks" ] || diag "found in: $leaks"
no_sanitizer_report "no sanitizer report from kt-pamtest, pamtester or the module"
check "the fake daemon is still running (no run killed it)" kill -0 "$FAKE_PID"

done_testing
