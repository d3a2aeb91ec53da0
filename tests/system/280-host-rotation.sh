#!/bin/bash
# Host-driven rotation ([rotate:NAME], keyturnctl rotate, schedules and
# rotate_after_use) against moto, keyturnd started as root:
#   1. keyturnctl rotate: the four steps, printed; the new AWSCURRENT obeys the
#      policy (length, excluded characters, each type) and keeps the other
#      JSON members; AWSPREVIOUS is the old version; set_command and
#      test_command got exactly the new password on stdin, ran as run_as (a
#      user the test makes), with the password on neither argv nor the
#      environment; keyturnd serves the new value at once; status says so;
#   2. test_command failing: exit 1 naming testSecret, AWSCURRENT kept, the
#      AWSPENDING version kept and shown in status and the state file; the
#      command fixed, the next run finishes that same version (no second one);
#   3. another rotator's AWSPENDING: exit 6 (busy), nothing touched;
#   4. keyturnd killed (SIGKILL) while test_command runs: restarted, it
#      finishes the pending version by itself, without a second one;
#   5. rotate_after_use: a PAM login (pam_wrapper) with the break-glass
#      password, and a few seconds later a new password of the default
#      policy; the old one refused at once (previous_grace = 0), the new one
#      accepted;
#   6. a host whose IAM policy (moto checking it) lets it read but not write:
#      exit 7, status and log say it is denied, nothing written;
#   7. schedules, keyturnd under libfaketime: cron(0 4 * * ? *) with the
#      clock started at 03:59:50 rotates once inside 04:00-05:00 and then
#      waits for the next day; rate(4 hours) rotates 4 hours after the
#      version's CreatedDate, once.
# No password reaches keyturnd's log or keyturnctl's output.
# Needs root (it creates the service and run_as users, removed on any exit).

PLANNED=104

. "$KT_SRCDIR/tests/lib/accounts.sh"
need_root_accounts "create the service and run_as users and to start keyturnd as root"

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
CTL="$KT_BUILDDIR/keyturnctl"
need_built "$KEYTURND"
need_built "$CTL"
trap cleanup_accounts EXIT

# Checks in the sections that the host may lack the tools for.
PAM_CHECKS=10
CLOCK_CHECKS=18

# --- accounts, scripts, moto ------------------------------------------------------
DUSER=kttest-$$-svc # keyturnd's service user
DGROUP=kttest-$$-svcg
RA=kttest-$$-ra # run_as of the rotation commands
groupadd -r "$DGROUP" && made_groups+=("$DGROUP") &&
	useradd -r -M -N -s /usr/sbin/nologin -g "$DGROUP" "$DUSER" && made_users+=("$DUSER") &&
	useradd -r -M -N -s /usr/sbin/nologin "$RA" && made_users+=("$RA") ||
	bail "cannot create the test users"
RA_UID=$(id -u "$RA")
# keyturnctl trusts a socket of root or of the user this names.
export KEYTURN_SOCKET_OWNER=$DUSER
chmod 755 "$T"

# The commands' scripts (root's, 0755), what they record (a directory only
# run_as may write) and what they are told to do (root's, readable).
BIN="$T/bin"
OUT="$T/out"
CTLD="$T/ctl"
mkdir -p "$BIN" "$OUT" "$CTLD"
chmod 755 "$BIN" "$CTLD"
chown "$RA" "$OUT" && chmod 700 "$OUT" || bail "cannot prepare $OUT"
cat >"$BIN/kt-record" <<'SH'
#!/bin/sh
# kt-record STEP OUT CTL: a rotation command for 280-host-rotation.sh. It
# keeps what it was given (stdin, its uid, argv, environment) in OUT/STEP.*,
# adds a line to OUT/runs, and answers as CTL/STEP-mode says: ok (or no
# file), fail (exit 1 with a message on stderr), or block (until CTL/release
# exists, with OUT/STEP.started made first).
step=$1
out=$2
ctl=$3
cat >"$out/$step.stdin"
id -u >"$out/$step.uid"
tr '\0' '\n' <"/proc/$$/cmdline" >"$out/$step.argv"
tr '\0' '\n' <"/proc/$$/environ" >"$out/$step.env"
echo "$step ${KEYTURN_SECRET:-} ${KEYTURN_STEP:-}" >>"$out/runs"
mode=ok
[ -f "$ctl/$step-mode" ] && mode=$(cat "$ctl/$step-mode")
case $mode in
fail)
	echo "kt-record: $step: the database refused the new password" >&2
	exit 1
	;;
block)
	: >"$out/$step.started"
	while [ ! -e "$ctl/release" ]; do sleep 0.1; done
	;;
esac
exit 0
SH
chmod 755 "$BIN/kt-record"

# sm.py URL OP ARGS: Secrets Manager through boto3 (a client independent of
# keyturn's own), with the credentials of the environment.
#   stages ID          "CURRENT PREVIOUS PENDING COUNT" (- for a stage no
#                      version has; COUNT: versions, deprecated ones too)
#   value ID VID [KEY] the SecretString of version VID (or its member KEY)
#   created ID         the AWSCURRENT version's CreatedDate (Unix seconds)
#   pending ID VALUE   a new version labelled AWSPENDING only; its VersionId
cat >"$T/sm.py" <<'PY'
import json, sys, boto3
url, op, sid = sys.argv[1:4]
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=url)

def stages():
    vs = sm.list_secret_version_ids(SecretId=sid, IncludeDeprecated=True)["Versions"]
    st = {}
    for v in vs:
        for s in v.get("VersionStages") or []:
            st[s] = v["VersionId"]
    return st, len(vs)

if op == "stages":
    st, n = stages()
    print(st.get("AWSCURRENT", "-"), st.get("AWSPREVIOUS", "-"), st.get("AWSPENDING", "-"), n)
elif op == "value":
    s = sm.get_secret_value(SecretId=sid, VersionId=sys.argv[4])["SecretString"]
    if len(sys.argv) > 5:
        s = json.loads(s)[sys.argv[5]]
    sys.stdout.write(s)
elif op == "created":
    cur = stages()[0]["AWSCURRENT"]
    print(int(sm.get_secret_value(SecretId=sid, VersionId=cur)["CreatedDate"].timestamp()))
elif op == "pending":
    print(sm.put_secret_value(SecretId=sid, SecretString=sys.argv[4],
                              VersionStages=["AWSPENDING"])["VersionId"])
else:
    sys.exit("sm.py: unknown operation " + op)
PY
SM_URL=
sm() { "$PYTHON3" "$T/sm.py" "$SM_URL" "$@"; }
# stage ID N: field N (1 current, 2 previous, 3 pending, 4 count) of stages.
stage() { sm stages "$1" | cut -d' ' -f"$2"; }
current_is() { [ "$(stage "$1" 1)" = "$2" ]; }
current_is_not() { local c; c=$(stage "$1" 1) && [ -n "$c" ] && [ "$c" != "$2" ]; }

# policy OLD_JSON NEW_JSON KEY LENGTH EXCLUDED: what is wrong with the new
# value, one tagged line per finding (never the value itself).
policy() {
	"$PYTHON3" - "$@" <<'PY'
import json, string, sys
old_s, new_s, key, n, excl = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
bad = []
try:
    old, new = json.loads(old_s), json.loads(new_s)
except ValueError:
    old = new = None
if not isinstance(new, dict) or not isinstance(old, dict):
    for tag in ("json", "length", "excluded", "types", "members"):
        print(tag + ": the old or the new value is not a JSON object")
    sys.exit(0)
pw = new.get(key)
if not isinstance(pw, str):
    pw = ""
    print("json: no string member %s" % key)
if len(pw) != n:
    print("length: %d characters, not %d" % (len(pw), n))
k = sum(c in excl for c in pw)
if k:
    print("excluded: %d excluded characters" % k)
for name, cls in (("lowercase", string.ascii_lowercase), ("uppercase", string.ascii_uppercase),
                  ("digit", string.digits), ("punctuation", string.punctuation)):
    if not any(c in cls for c in pw):
        print("types: no %s character" % name)
if any(c not in string.ascii_letters + string.digits + string.punctuation for c in pw):
    print("types: a character that is not a letter, digit or punctuation")
if pw == old.get(key):
    print("json: the password did not change")
rest_old = {m: v for m, v in old.items() if m != key}
rest_new = {m: v for m, v in new.items() if m != key}
differ = sorted(m for m in set(rest_old) | set(rest_new) if rest_old.get(m) != rest_new.get(m))
if differ:
    print("members: other members differ: %s" % ", ".join(differ))
PY
}
# no_finding TAG: the last policy findings ($T/policy.out) have none tagged TAG.
no_finding() {
	! grep -q "^$1:" "$T/policy.out" || {
		grep "^$1:" "$T/policy.out"
		return 1
	}
}

# rot NAME EXPR: EXPR (Python on r, NAME's member of status "rotations").
rot() {
	jfield "$(kt_req '{"v":1,"op":"status"}')" \
		"(lambda r: ($2))(d.get('rotations', {}).get('$1'))" 2>/dev/null
}
rot_is() { [ "$(rot "$1" "$2")" = "$3" ]; }

# same EXPECTED ACTUAL: equal values; says how they differ without either.
same() {
	[ "$1" = "$2" ] && return 0
	echo "the values differ (${#1} and ${#2} characters)"
	return 1
}
# served NAME KEY: what keyturnctl get prints for member KEY of NAME.
served() { "$CTL" --socket "$KT_SOCK" get "$1" --key "$2" </dev/null 2>/dev/null; }

# daemon_conf NAME USER [DAEMON_LINES] < SECTIONS: the configuration, log,
# socket and state_dir of daemon NAME, keyturnd dropping to USER (root: it
# stays root). Each has a socket directory of its own: one made for a
# service user is not root's.
daemon_conf() {
	KT_CONF="$T/keyturnd-$1.conf"
	KT_LOG="$T/keyturnd-$1.log"
	KT_SOCK="$T/run-$1/keyturnd.sock"
	write_config "${3:-}"
	sed -i -e "s|^state_dir = .*|state_dir = $T/state-$1|" \
		-e "s|^user = $(id -un)\$|user = $2|" "$KT_CONF"
	chmod 644 "$KT_CONF"
}
STOPS=()
# stop_named NAME: stop_daemon, and its status kept for a check at the end.
stop_named() {
	stop_daemon
	STOPS+=("$1=$KT_STATUS")
}

start_moto
MAIN_URL=$MOTO_URL
SM_URL=$MAIN_URL
HOST=$(hostname)
BG_ID="hosts/$HOST/breakglass"
P_DB0="Db-initial-$$-pass-A1"
P_BUSY0="Busy-initial-$$-pass-B2"
P_BG0="Bg-initial-$$-pass-C3"
V_CRON0="cron-initial-$$-value"
V_RATE0="rate-initial-$$-value"
DB0_JSON="{\"username\": \"app\", \"host\": \"db.internal\", \"port\": 5432, \"password\": \"$P_DB0\"}"
"$PYTHON3" - "$MAIN_URL" "$DB0_JSON" "$P_BUSY0" "$BG_ID" "$P_BG0" "$V_CRON0" "$V_RATE0" \
	>"$T/setup.out" 2>&1 <<'PY' || bail "moto setup: $(cat "$T/setup.out")"
import json, sys, boto3
url, db, busy, bg_id, bg, cron, rate = sys.argv[1:8]
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=url)
sm.create_secret(Name="app/localdb", SecretString=db)
sm.create_secret(Name="app/busy", SecretString=json.dumps({"password": busy}))
sm.create_secret(Name=bg_id, SecretString=json.dumps({"username": "ktbg", "password": bg}))
sm.create_secret(Name="app/cron", SecretString=cron)
sm.create_secret(Name="app/rate", SecretString=rate)
PY

# Excluded from app/localdb's passwords: enough characters that a password of
# 24 ignoring the list would almost surely hold one (about 99.7%).
EXCL='/@"'"'"'\aeiouAEIOU01234'
SECRETS=("$P_DB0" "$P_BUSY0" "$P_BG0" "$V_CRON0" "$V_RATE0")

# === daemon A: dropping to the service user, the commands as run_as ===============
# (A file, not a pipe: daemon_conf sets the paths in this shell.)
{
	echo "[secret:app/localdb]"
	echo "[rotate:app/localdb]"
	echo "length = 24"
	printf 'exclude_characters = %s\n' "$EXCL"
	echo "require_each_included_type = yes"
	echo "key = password"
	echo "set_command = $BIN/kt-record setSecret $OUT $CTLD"
	echo "test_command = $BIN/kt-record testSecret $OUT $CTLD"
	echo "run_as = $RA"
	echo "command_timeout = 60"
	echo "[secret:app/busy]"
	echo "[rotate:app/busy]"
	echo "key = password"
} >"$T/sections-a"
daemon_conf a "$DUSER" "check_interval = 3600
refresh_min_interval = 1" <"$T/sections-a"
# A state file that is not keyturnd's (a disk error, a hand edit).
mkdir -p "$T/state-a" && echo '{"v":1,"rotations":' >"$T/state-a/rotations.json"
# And the temporary file of a write that died before its rename.
echo '{"v":1,"rotations":{}}' >"$T/state-a/rotations.json.new"
start_daemon || bail "keyturnd did not start as root"
ok "keyturnd started as root with two [rotate:] sections"
check "it dropped privileges to the service user" grep -qF "dropped privileges to $DUSER" "$KT_LOG"
check "a state file it cannot read is named in the log, and keyturnd starts without it" \
	grep -qE "rotation state: .*rotations.json: not keyturnd's rotation state.*starting without it" "$KT_LOG"
check "and moved aside (rotations.json.unreadable), not overwritten" \
	grep -qF '{"v":1,"rotations":' "$T/state-a/rotations.json.unreadable"
check "a temporary file left by a write that died is removed at start" \
	test ! -e "$T/state-a/rotations.json.new"

# --- 1. keyturnctl rotate ------------------------------------------------------------
read -r CUR0 _ _ N0 < <(sm stages app/localdb)
t0=$(date +%s)
ctl rot1 rotate app/localdb
t1=$(date +%s)
expect_rc rot1 0 "keyturnctl rotate app/localdb: rotated"
for s in createSecret setSecret testSecret finishSecret; do
	check "its output lists $s: ok" grep -qE "^$s: ok( |\$)" "$T/rot1.out"
done
read -r CUR1 PREV1 PEND1 N1 < <(sm stages app/localdb)
# PROTOCOL.md's "NAME: rotated to VERSION"; keyturnctl says "to version ID".
names_version() { grep -qxE "app/localdb: rotated to (version )?$1" "$T/rot1.out" || tail -n 1 "$T/rot1.out"; }
check "it names the new version" names_version "$CUR1"
check "AWSCURRENT moved to a new version" test -n "$CUR1" -a "$CUR1" != "$CUR0"
expect_eq "AWSPREVIOUS is the old version" "$CUR0" "$PREV1"
expect_eq "no AWSPENDING is left" "-" "$PEND1"
expect_eq "exactly one new version" "$((N0 + 1))" "$N1"
DB1_JSON=$(sm value app/localdb "$CUR1")
P_DB1=$(jfield "$DB1_JSON" 'd["password"]' 2>/dev/null)
SECRETS+=("$P_DB1")
policy "$DB0_JSON" "$DB1_JSON" password 24 "$EXCL" >"$T/policy.out"
check "the new AWSCURRENT is a JSON object with a new string password" no_finding json
check "the password has length 24" no_finding length
check "it holds none of the excluded characters" no_finding excluded
check "it holds a lowercase and an uppercase letter, a digit and a punctuation mark" no_finding types
check "the other JSON members (username, host, port) are kept" no_finding members
check "set_command got exactly the new password on stdin, no newline" \
	cmp -s "$OUT/setSecret.stdin" <(printf %s "$P_DB1")
check "test_command got exactly the new password on stdin, no newline" \
	cmp -s "$OUT/testSecret.stdin" <(printf %s "$P_DB1")
expect_eq "set_command and test_command ran as run_as ($RA)" "$RA_UID $RA_UID" \
	"$(cat "$OUT/setSecret.uid" "$OUT/testSecret.uid" 2>&1 | tr '\n' ' ' | sed 's/ $//')"
expect_eq "each ran once, with KEYTURN_SECRET and KEYTURN_STEP set" \
	"setSecret app/localdb setSecret|testSecret app/localdb testSecret" \
	"$(tr '\n' '|' <"$OUT/runs" | sed 's/|$//')"
expect_eq "set_command's argv is the words configured" "$BIN/kt-record setSecret $OUT $CTLD" \
	"$(tail -n +2 "$OUT/setSecret.argv" | tr '\n' ' ' | sed 's/ $//')"
# not_in VALUE FILE...: the files exist and none holds VALUE.
not_in() {
	local f
	for f in "${@:2}"; do
		[ -f "$f" ] || { echo "no $f"; return 1; }
	done
	! grep -qF -- "$1" "${@:2}"
}
check "the password is on neither command's argv" \
	not_in "$P_DB1" "$OUT/setSecret.argv" "$OUT/testSecret.argv"
check "the password is in neither command's environment" \
	not_in "$P_DB1" "$OUT/setSecret.env" "$OUT/testSecret.env"
check "keyturnd serves the new password right after rotate returns" same \
	"$P_DB1" "$(served app/localdb password)"
expect_eq "status: idle, last_result rotated, no pending version, 1 rotation" \
	"idle rotated None 1" \
	"$(rot app/localdb '"%s %s %s %s" % (r["state"], r["last_result"], r["pending_version"], r["rotations"])')"
lr=$(rot app/localdb 'r["last_rotated"]')
check "status: last_rotated is the time of the rotation ($lr)" \
	test "${lr:-0}" -ge "$t0" -a "${lr:-0}" -le "$t1"
expect_eq "status: no schedule, no next window" "None 0" \
	"$(rot app/localdb '"%s %s" % (r["schedule"], r["next_window"])')"

# Another uid (the run_as user, a real second account) may do neither. It
# runs a copy from $T: the build tree may be out of its reach.
ra_bins=("$CTL")
[ -x "$KT_BUILDDIR/.libs/keyturnctl" ] &&
	ra_bins=("$KT_BUILDDIR/.libs/keyturnctl" "$KT_BUILDDIR"/.libs/libkeyturn.so.1*)
install -d -m 755 "$T/ra-bin" && install -m 755 "${ra_bins[@]}" "$T/ra-bin/" ||
	bail "cannot copy keyturnctl for $RA"
as_ra() {
	runuser -u "$RA" -- env LD_LIBRARY_PATH="$T/ra-bin" "$T/ra-bin/keyturnctl" \
		--socket "$KT_SOCK" "$@" </dev/null
}
as_ra rotate app/localdb >"$T/rot-ra.out" 2>"$T/rot-ra.err"
RC=$?
expect_rc rot-ra 4 "keyturnctl rotate as uid $(id -u "$RA") (not root): denied"
expect_eq "and status as that uid shows no rotation (root's only)" "{}" \
	"$(as_ra status --json |
		"$PYTHON3" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["rotations"]))')"

# --- 2. test_command fails, then is fixed ------------------------------------------------
echo fail >"$CTLD/testSecret-mode"
ctl rot2 rotate app/localdb
expect_rc rot2 1 "test_command failing: keyturnctl rotate fails"
check "its output names testSecret as the step that failed" \
	grep -qE 'testSecret.*fail|fail.*testSecret' "$T/rot2.out" "$T/rot2.err"
check "... and shows the command's message" \
	grep -qF "the database refused the new password" "$T/rot2.out" "$T/rot2.err"
read -r CUR2 _ PEND2 N2 < <(sm stages app/localdb)
expect_eq "AWSCURRENT is unchanged" "$CUR1" "$CUR2"
check "an AWSPENDING version is kept" test -n "$PEND2" -a "$PEND2" != "-"
expect_eq "... the one new version" "$((N1 + 1))" "$N2"
P_DB2=$(sm value app/localdb "$PEND2" password)
SECRETS+=("$P_DB2")
check "setSecret had been given the pending password" \
	cmp -s "$OUT/setSecret.stdin" <(printf %s "$P_DB2")
st2=$(rot app/localdb '"%s %s %s" % (r["state"], r["step"], r["last_result"])')
expect_eq "status: failed at testSecret (no schedule: tried again on request), last_result failed" \
	"failed testSecret failed" "$st2"
expect_eq "status: pending_version is the AWSPENDING version" "$PEND2" \
	"$(rot app/localdb 'r["pending_version"]')"
check "status: last_error names testSecret" rot_is app/localdb "'testSecret' in (r['last_error'] or '')" true
STATE_A="$T/state-a/rotations.json"
expect_eq "the state file keeps the token of the pending version" "$PEND2" \
	"$(json_get "$STATE_A" 'd["rotations"]["app/localdb"]["token"]' 2>&1)"
expect_eq "the state file is 0600" 600 "$(stat -c %a "$STATE_A" 2>&1)"
echo ok >"$CTLD/testSecret-mode"
ctl rot3 rotate app/localdb --json
expect_rc rot3 0 "the command fixed, keyturnctl rotate again: rotated"
expect_eq "--json: outcome rotated, version the pending one, previous the current one" \
	"rotated $PEND2 $CUR1" \
	"$(jfield "$(cat "$T/rot3.out")" '"%s %s %s" % (d.get("outcome"), d.get("version"), d.get("previous"))' 2>&1)"
read -r CUR3 PREV3 PEND3 N3 < <(sm stages app/localdb)
expect_eq "AWSCURRENT is the earlier AWSPENDING version, AWSPREVIOUS the old one" \
	"$PEND2 $CUR1 -" "$CUR3 $PREV3 $PEND3"
expect_eq "no second new version was made" "$N2" "$N3"
check "keyturnd serves it" same "$P_DB2" "$(served app/localdb password)"
expect_eq "status: idle, rotated, nothing pending" "idle rotated None" \
	"$(rot app/localdb '"%s %s %s" % (r["state"], r["last_result"], r["pending_version"])')"

# --- 3. another rotator's AWSPENDING ---------------------------------------------------
read -r BCUR0 _ _ _ < <(sm stages app/busy)
OTHER_JSON="{\"password\": \"other-rotator-$$-D4\"}"
SECRETS+=("other-rotator-$$-D4")
OTHER=$(sm pending app/busy "$OTHER_JSON")
read -r _ _ _ BN0 < <(sm stages app/busy)
ctl busy rotate app/busy
expect_rc busy 6 "AWSPENDING held by another version: keyturnctl rotate says busy"
read -r BCUR1 _ BPEND1 BN1 < <(sm stages app/busy)
expect_eq "AWSCURRENT is unchanged, the other AWSPENDING untouched, no new version" \
	"$BCUR0 $OTHER $BN0" "$BCUR1 $BPEND1 $BN1"
check "... and its value too" same "$OTHER_JSON" "$(sm value app/busy "$OTHER")"
expect_eq "status: busy" "busy busy" "$(rot app/busy '"%s %s" % (r["state"], r["last_result"])')"

# --- 4. killed between setSecret and finishSecret ------------------------------------------
echo block >"$CTLD/testSecret-mode"
rm -f "$OUT/testSecret.started"
read -r CUR4 _ _ N4 < <(sm stages app/localdb)
runs4=$(wc -l <"$OUT/runs")
"$CTL" --socket "$KT_SOCK" rotate app/localdb </dev/null >"$T/rot4.out" 2>"$T/rot4.err" &
rot4=$!
kt_pids+=("$rot4")
wait_until 30 test -e "$OUT/testSecret.started" || diag "test_command did not start"
read -r _ _ PEND4 _ < <(sm stages app/localdb)
expect_eq "test_command runs: the state file holds the pending version's token" "$PEND4" \
	"$(json_get "$STATE_A" 'd["rotations"]["app/localdb"]["token"]' 2>&1)"
# First a clean stop (SIGTERM) while test_command runs: keyturnd answers
# the waiting request, exits 0, and keeps the step reached.
stop_daemon
expect_eq "SIGTERM while test_command runs: keyturnd exits 0" 0 "$KT_STATUS"
wait "$rot4"
RC=$?
expect_rc rot4 5 "and the waiting keyturnctl rotate says unavailable"
check "naming the stop" grep -q 'stopping' "$T/rot4.err"
expect_eq "the state file keeps the token and the step to resume at" "$PEND4 testSecret" \
	"$(json_get "$STATE_A" '"%s %s" % (d["rotations"]["app/localdb"]["token"], d["rotations"]["app/localdb"]["step"])' 2>&1)"
rm -f "$OUT/testSecret.started"
start_daemon || bail "keyturnd did not start again"
wait_until 30 test -e "$OUT/testSecret.started"
check "restarted, keyturnd resumes the rotation by itself (test_command runs again)" \
	test -e "$OUT/testSecret.started"
# Then killed outright (SIGKILL) while the resumed test_command runs.
# (bash's own "Killed" notice for the job is not wanted in the log)
{
	kill -KILL "$KT_PID"
	wait "$KT_PID"
} 2>/dev/null
echo ok >"$CTLD/testSecret-mode"
: >"$CTLD/release"
start_daemon || bail "keyturnd did not start again"
resumed=$SECONDS
wait_until 60 current_is app/localdb "$PEND4"
diag "AWSCURRENT moved $((SECONDS - resumed)) s after the restart"
read -r CUR5 PREV5 PEND5 N5 < <(sm stages app/localdb)
expect_eq "restarted, keyturnd finishes the pending version by itself" "$PEND4 $CUR4 -" \
	"$CUR5 $PREV5 $PEND5"
expect_eq "exactly one new version for the interrupted rotation" "$((N4 + 1))" "$N5"
check "test_command ran again after the restart" \
	test "$(tail -n +$((runs4 + 1)) "$OUT/runs" | grep -c '^testSecret ')" -ge 2
P_DB4=$(sm value app/localdb "$PEND4" password)
SECRETS+=("$P_DB4")
check "keyturnd serves the finished version's password" same "$P_DB4" "$(served app/localdb password)"
rot_done() { rot_is app/localdb '"%s %s" % (r["last_result"], r["pending_version"])' "rotated None"; }
wait_until 10 rot_done
check "status: rotated, nothing pending" rot_done
stop_named a

# --- 5. rotate_after_use through PAM -------------------------------------------------------
MOD="$KT_BUILDDIR/.libs/pam_keyturn.so"
SVC="$T/services"
# pam.sh skips the whole script where a piece is missing: asked in a
# subshell first, so that only this section is skipped.
pam_out=$( (. "$KT_LIB/pam.sh") 2>&1)
pam_rc=$?
pam_why=$(sed -n -e 's/^1\.\.0 # SKIP //p' -e 's/^Bail out! //p' <<<"$pam_out")
if [ "$pam_rc" -eq 0 ] && [ -z "$pam_why" ]; then
	. "$KT_LIB/pam.sh"
	daemon_conf e root "check_interval = 3600
refresh_min_interval = 1" <<EOF
[login:ktbg]
secret = hosts/%H/breakglass
key = password
previous_grace = 0
rotate_after_use = 6
EOF
	service kt "socket=$KT_SOCK" timeout=20000
	start_daemon || bail "keyturnd did not start for the logins"
	printf '%s\n' "$P_BG0" >"$T/pw.bg0"
	read -r BG0 _ _ BGN0 < <(sm stages "$BG_ID")
	before=$(date +%s)
	expect_pam bg-old kt ktbg PAM_SUCCESS "a login with the break-glass password" "$T/pw.bg0"
	after=$(date +%s)
	due=$(rot "$BG_ID" 'r["after_use_due"]')
	check "status: the secret's rotation is due 6 s after the login ($due)" \
		test "${due:-0}" -ge $((before + 6)) -a "${due:-0}" -le $((after + 6))
	expect_pam bg-again kt ktbg PAM_SUCCESS "a second login before the rotation" "$T/pw.bg0"
	expect_eq "... does not put the rotation off" "$due" "$(rot "$BG_ID" 'r["after_use_due"]')"
	wait_until 30 current_is_not "$BG_ID" "$BG0"
	read -r BG1 BGP1 _ BGN1 < <(sm stages "$BG_ID")
	check "the secret rotated after the delay" test -n "$BG1" -a "$BG1" != "$BG0"
	diag "rotated $(($(date +%s) - after)) s after the login"
	expect_eq "AWSPREVIOUS is the old version; exactly one new version" "$BG0 $((BGN0 + 1))" "$BGP1 $BGN1"
	BG1_JSON=$(sm value "$BG_ID" "$BG1")
	P_BG1=$(jfield "$BG1_JSON" 'd["password"]' 2>/dev/null)
	SECRETS+=("$P_BG1")
	policy "{\"username\": \"ktbg\", \"password\": \"$P_BG0\"}" "$BG1_JSON" password 32 "" >"$T/policy.out"
	check "without a [rotate:] section: 32 characters of every type, username kept" \
		test ! -s "$T/policy.out"
	rot_due_cleared() { rot_is "$BG_ID" '"%s %s" % (r["last_result"], r["after_use_due"])' "rotated 0"; }
	wait_until 10 rot_due_cleared
	check "status: last_result rotated, after_use_due cleared" rot_due_cleared
	printf '%s\n' "$P_BG1" >"$T/pw.bg1"
	expect_pam bg-old-late kt ktbg PAM_AUTH_ERR "the old password is refused after the rotation" "$T/pw.bg0"
	expect_pam bg-new kt ktbg PAM_SUCCESS "the new password is accepted" "$T/pw.bg1"
	stop_named e
else
	for ((i = 0; i < PAM_CHECKS; i++)); do
		skip_test "rotate_after_use through PAM: ${pam_why:-pam_wrapper or a piece of it is missing}"
	done
fi

# --- 6. AccessDenied: a host that may read but not write ------------------------------------
# A moto of its own that checks IAM policies after the four set-up calls.
start_moto INITIAL_NO_AUTH_ACTION_COUNT=4
IAM_URL=$MOTO_URL
MOTO_URL=$MAIN_URL
P_DEN0="Denied-initial-$$-pass-E5"
SECRETS+=("$P_DEN0")
"$PYTHON3" - "$IAM_URL" "$P_DEN0" >"$T/iam.out" 2>"$T/iam.err" <<'PY' || bail "moto IAM setup: $(cat "$T/iam.err")"
import json, sys, boto3, botocore.exceptions
url, pw = sys.argv[1:3]
kw = dict(region_name="us-east-1", endpoint_url=url)
iam = boto3.client("iam", **kw)
iam.create_user(UserName="kt-host")                                      # 1
key = iam.create_access_key(UserName="kt-host")["AccessKey"]             # 2
read_only = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*", "Action": [
    "secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue",
    "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds",
    "secretsmanager:ListSecrets", "secretsmanager:GetRandomPassword"]}]}
iam.put_user_policy(UserName="kt-host", PolicyName="read", PolicyDocument=json.dumps(read_only))  # 3
boto3.client("secretsmanager", **kw).create_secret(Name="app/readonly",
                                                   SecretString=json.dumps({"password": pw}))  # 4
try:  # the free calls are used up: an unknown key is refused from here on
    boto3.client("secretsmanager", **kw).describe_secret(SecretId="app/readonly")
    sys.exit("moto does not check IAM policies (INITIAL_NO_AUTH_ACTION_COUNT miscounted?)")
except botocore.exceptions.ClientError:
    pass
print(key["AccessKeyId"])
print(key["SecretAccessKey"])
PY
{ read -r HOST_KEY && read -r HOST_SECRET; } <"$T/iam.out"
host_sm() { AWS_ACCESS_KEY_ID=$HOST_KEY AWS_SECRET_ACCESS_KEY=$HOST_SECRET SM_URL=$IAM_URL sm "$@"; }
read -r DCUR0 _ _ DN0 < <(host_sm stages app/readonly)
MOTO_URL=$IAM_URL daemon_conf d root "check_interval = 3600" <<EOF
[secret:app/readonly]
[rotate:app/readonly]
key = password
EOF
start_daemon AWS_ACCESS_KEY_ID="$HOST_KEY" AWS_SECRET_ACCESS_KEY="$HOST_SECRET" ||
	bail "keyturnd did not start with the read-only key"
check "the read-only host reads the secret" same "$P_DEN0" "$(served app/readonly password)"
ctl denied rotate app/readonly
expect_rc denied 7 "PutSecretValue refused by IAM: keyturnctl rotate says AWS denied access"
check "... in a message that says the host may not write the secret" \
	grep -qiE 'app/readonly.*(denied|not authorized|may not write)' "$T/denied.err" "$T/denied.out"
expect_eq "status: state denied, last_result denied" "denied denied" \
	"$(rot app/readonly '"%s %s" % (r["state"], r["last_result"])')"
check "status: last_error says what was refused" \
	rot_is app/readonly "'PutSecretValue' in (r['last_error'] or '')" true
check "the log says it" grep -qiE 'app/readonly.*(PutSecretValue|AccessDenied|not authorized|may not write)' "$KT_LOG"
read -r DCUR1 _ DPEND1 DN1 < <(host_sm stages app/readonly)
expect_eq "nothing was written: AWSCURRENT, no AWSPENDING, no new version" \
	"$DCUR0 - $DN0" "$DCUR1 $DPEND1 $DN1"
stop_named d

# --- 7. schedules, under a test clock ---------------------------------------------------------
FT_LIB=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
	[ -f "$f" ] && FT_LIB=$f && break
done
# start_faketime START: keyturnd with its wall clock starting at START
# ("YYYY-MM-DD HH:MM:SS", UTC) and advancing at the real pace; monotonic
# clocks stay real. ASan is told not to insist on being preloaded first.
start_faketime() {
	echo "@$1" >"$T/faketime"
	chmod 644 "$T/faketime"
	start_daemon LD_PRELOAD="$FT_LIB" FAKETIME_TIMESTAMP_FILE="$T/faketime" FAKETIME_NO_CACHE=1 \
		FAKETIME_DONT_FAKE_MONOTONIC=1 TZ=UTC \
		ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
}
# window_known NAME: status shows a next window for NAME.
window_known() {
	local w
	w=$(rot "$1" 'r["next_window"]')
	[ -n "$w" ] && [ "$w" != 0 ]
}
next_is() { rot_is "$1" 'r["next_window"]' "$2"; }
# steady NAME N: the rotation count of NAME stays N over three status
# reads a second apart (the daemon's loop turns in between).
steady() {
	local i
	for ((i = 0; i < 3; i++)); do
		rot_is "$1" 'r["rotations"]' "$2" || return 1
		sleep 1
	done
	rot_is "$1" 'r["rotations"]' "$2"
}
if [ -n "$FT_LIB" ]; then
	# cron(0 4 * * ? *), a 1 h window, the clock 10 s before the window.
	DAY=$(date -u -d '2027-01-04 00:00:00Z' +%s)
	W0=$((DAY + 4 * 3600))
	daemon_conf cron root "check_interval = 3600" <<EOF
[secret:app/cron]
[rotate:app/cron]
schedule = cron(0 4 * * ? *)
window = 1h
EOF
	read -r CC0 _ _ CN0 < <(sm stages app/cron)
	start_faketime "2027-01-04 03:59:50" || bail "keyturnd did not start under libfaketime"
	wait_until 10 window_known app/cron
	expect_eq "cron: status before the window: idle, next_window 04:00, window 1 h" \
		"idle $W0 3600" \
		"$(rot app/cron '"%s %s %s" % (r["state"], r["next_window"], r["window"])')"
	expect_eq "cron: the schedule is shown as written" "cron(0 4 * * ? *)" "$(rot app/cron 'r["schedule"]')"
	expect_eq "cron: nothing rotated before the window" "$CC0" "$(stage app/cron 1)"
	wait_until 40 current_is_not app/cron "$CC0"
	read -r CC1 CP1 _ CN1 < <(sm stages app/cron)
	check "cron: AWSCURRENT moved once the window opened" test -n "$CC1" -a "$CC1" != "$CC0"
	expect_eq "cron: AWSPREVIOUS is the old version; one new version" "$CC0 $((CN0 + 1))" "$CP1 $CN1"
	V_CRON1=$(sm value app/cron "$CC1")
	SECRETS+=("$V_CRON1")
	expect_eq "cron: a plain value is replaced whole, 32 characters by default" 32 "${#V_CRON1}"
	clr=$(rot app/cron 'r["last_rotated"]')
	check "cron: last_rotated inside 04:00-05:00 of the fake day ($clr)" \
		test "${clr:-0}" -ge "$W0" -a "${clr:-0}" -lt $((W0 + 3600))
	wait_until 10 next_is app/cron $((W0 + 86400))
	expect_eq "cron: next_window is the next day's 04:00" "$((W0 + 86400))" "$(rot app/cron 'r["next_window"]')"
	check "cron: once per window (1 rotation over several status reads)" steady app/cron 1
	expect_eq "cron: still exactly one new version" "$((CN0 + 1))" "$(stage app/cron 4)"
	stop_named cron

	# rate(4 hours): the clock 10 s before the version's CreatedDate + 4 h.
	C=$(sm created app/rate)
	RW=$((C + 4 * 3600))
	daemon_conf rate root "check_interval = 3600" <<EOF
[secret:app/rate]
[rotate:app/rate]
schedule = rate(4 hours)
EOF
	read -r RV0 _ _ RN0 < <(sm stages app/rate)
	start_faketime "$(date -u -d "@$((RW - 10))" '+%Y-%m-%d %H:%M:%S')" ||
		bail "keyturnd did not start under libfaketime"
	wait_until 10 window_known app/rate
	expect_eq "rate: status before the window: idle, window 1 h" \
		"idle 3600" "$(rot app/rate '"%s %s" % (r["state"], r["window"])')"
	rnw=$(rot app/rate 'r["next_window"]')
	check "rate: next_window is CreatedDate + 4 h ($((${rnw:-0} - RW)) s off)" \
		test "${rnw:-0}" -ge $((RW - 1)) -a "${rnw:-0}" -le $((RW + 1))
	expect_eq "rate: nothing rotated before the window" "$RV0" "$(stage app/rate 1)"
	wait_until 40 current_is_not app/rate "$RV0"
	read -r RV1 _ _ _ < <(sm stages app/rate)
	check "rate: AWSCURRENT moved once the window opened" test -n "$RV1" -a "$RV1" != "$RV0"
	V_RATE1=$(sm value app/rate "$RV1")
	SECRETS+=("$V_RATE1")
	rlr=$(rot app/rate 'r["last_rotated"]')
	check "rate: last_rotated shortly after the window opened ($((${rlr:-0} - RW)) s)" \
		test "${rlr:-0}" -ge "$RW" -a "${rlr:-0}" -lt $((RW + 60))
	wait_until 10 next_is app/rate $((${rlr:-0} + 4 * 3600))
	expect_eq "rate: next_window is 4 h after this rotation" "$((${rlr:-0} + 4 * 3600))" \
		"$(rot app/rate 'r["next_window"]')"
	check "rate: once (1 rotation over several status reads)" steady app/rate 1
	expect_eq "rate: exactly one new version" "$((RN0 + 1))" "$(stage app/rate 4)"
	stop_named rate
else
	for ((i = 0; i < CLOCK_CHECKS; i++)); do
		skip_test "schedules: needs libfaketime (apt-get install faketime)"
	done
fi

# --- the end ----------------------------------------------------------------------------------
expect_eq "every keyturnd stopped cleanly" "" \
	"$(printf '%s\n' "${STOPS[@]}" | grep -v '=0$' | tr '\n' ' ')"
# The daemons' logs and keyturnctl's output, except get's (it prints values).
logs_clean() {
	local v
	for v in "${SECRETS[@]}"; do
		[ -n "$v" ] || continue
		if cat "$T"/keyturnd-*.log "$T"/rot*.out "$T"/rot*.err "$T"/busy.* "$T"/denied.* \
			2>/dev/null | grep -qF -- "$v"; then
			echo "a value is in the logs or the output"
			return 1
		fi
	done
	return 0
}
check "no password or value in keyturnd's logs or keyturnctl's output (${#SECRETS[@]} values)" logs_clean
sanitizer_clean() { ! cat "$T"/keyturnd-*.log "$T"/*.err 2>/dev/null | grep -E "$KT_SANITIZER_RE"; }
check "no sanitizer report from keyturnd or keyturnctl" sanitizer_clean
[ "$tap_n" -eq "$PLANNED" ] || diag "ran $tap_n checks, planned $PLANNED"
done_testing
