#!/bin/bash
# keyturnd through a rotation played by hand with the AWS CLI, as a rotation
# Lambda plays it: PutSecretValue with AWSPENDING, then UpdateSecretVersionStage
# moves AWSCURRENT. A refresh makes the new value served at once; inside a
# rotation window the daemon's own short checks find it; AWSPENDING is never
# served as current; and, counted at the fault proxy in front of moto, quiet
# checks cost one DescribeSecret each and only a moved AWSCURRENT costs a
# GetSecretValue.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"

need_built "$KEYTURND"
me=$(id -un)

# ktrecord.py LIBDIR SOCKET SECONDS STOPFILE REQUEST: asks REQUEST every 0.1 s (a fresh
# connection each time) until STOPFILE exists; one JSON line per answer,
# with the times the request was sent and answered.
cat >"$T/ktrecord.py" <<'PY'
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
from ktclient import KtClient

sock, limit, stop, req = sys.argv[2], float(sys.argv[3]), sys.argv[4], sys.argv[5]
end = time.monotonic() + limit
while time.monotonic() < end and not os.path.exists(stop):
    t0 = time.time()
    try:
        with KtClient(sock, 20) as c:
            d = c.request(req)
    except Exception as e:  # noqa: BLE001 -- recorded as an answer
        d = {"ok": False, "error": "client", "message": str(e)}
    print(json.dumps({"t0": t0, "t1": time.time(), "d": d}), flush=True)
    time.sleep(0.1)
PY
# fields ANSWER EXPR: a tuple of fields of one answer, blank-separated.
fields() { jfield "$1" "$2" | tr -d "(),'"; }
req_get() { printf '{"v":1,"op":"get","secret":"%s"}' "$1"; }
req_refresh() { printf '{"v":1,"op":"refresh","secret":"%s"}' "$1"; }
# listed NAME EXPR: EXPR (Python on s) for NAME's entry in the answer to list.
listed() {
	jfield "$(kt_req '{"v":1,"op":"list"}')" \
		"[($2) for s in d[\"secrets\"] if s[\"name\"] == \"$1\"][0]"
}
# describes_reach N: succeeds once N DescribeSecret calls reached the proxy.
describes_reach() { [ "$(calls DescribeSecret)" -ge "$1" ]; }
# last_recorded VID: succeeds once the recorder's last answer is version VID.
last_recorded() { tail -n 1 "$T/record.jsonl" | grep -qF "\"version_id\": \"$1\""; }
sanitizer_clean() { ! grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; }

start_moto
start_proxy "$MOTO_URL"
secrets=(rot-value-0001 rot-value-0002 quiet-value-0001 quiet-value-0002)

# The set-up, by botocore in one process (an AWS CLI start costs a second
# or more). moto reports RotationEnabled, RotationRules and NextRotationDate
# only for a secret with a rotation Lambda. It stores the schedule before it
# looks the Lambda up, so a RotateSecret naming one that does not exist fails
# but leaves rotation enabled with NextRotationDate one day ahead (and an
# empty AWSPENDING version, as a Lambda's first step would). keyturnd's
# window without a RotationRules Duration opens a day before
# NextRotationDate: now.
"$PYTHON3" - "$MOTO_URL" >"$T/setup.out" <<'PY' || bail "moto setup: $(cat "$T/setup.out")"
import json, sys, boto3, botocore.exceptions
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
v1 = sm.create_secret(Name="app/rot", SecretString="rot-value-0001")["VersionId"]
q1 = sm.create_secret(Name="app/quiet", SecretString="quiet-value-0001")["VersionId"]
try:
    sm.rotate_secret(SecretId="app/rot", RotationRules={"AutomaticallyAfterDays": 1},
                     RotationLambdaARN="arn:aws:lambda:us-east-1:123456789012:function:keyturn-no-such-rotator")
except botocore.exceptions.ClientError as e:
    if e.response["Error"]["Code"] != "ResourceNotFoundException":
        raise
d = sm.describe_secret(SecretId="app/rot")
print(v1)
print(q1)
print(json.dumps({"RotationEnabled": d.get("RotationEnabled"),
                  "NextRotationDate": d["NextRotationDate"].timestamp() if "NextRotationDate" in d else 0}))
PY
{ read -r v1 && read -r q1 && read -r desc; } <"$T/setup.out"
next_rot=$(jfield "$desc" 'int(d.get("NextRotationDate", 0))')
expect_eq "moto: app/rot has rotation enabled, due in a day" "True 1" \
	"$(fields "$desc" "d.get('RotationEnabled'), int(abs(d.get('NextRotationDate', 0) - $(date +%s) - 86400) < 120)")"

# Quiet-time checks once an hour; inside a rotation window every 2 s.
MOTO_URL=$PROXY_URL write_config "check_interval = 3600
window_interval = 2
refresh_min_interval = 1" <<EOF
[secret:app/rot]
allow_users = $me
[secret:app/quiet]
allow_users = $me
EOF
start_daemon || bail "keyturnd did not start"
ok "keyturnd starts with check_interval = 3600, window_interval = 2, behind the fault proxy"
a=$(kt_get app/rot)
expect_eq "app/rot serves its first value" "rot-value-0001 $v1" "$(fields "$a" 'd.get("string"), d.get("version_id")')"
a=$(kt_get app/quiet)
expect_eq "app/quiet serves its first value" "quiet-value-0001 $q1" "$(fields "$a" 'd.get("string"), d.get("version_id")')"

# --- (a) refresh ------------------------------------------------------------------
q2=$(aws_cli secretsmanager put-secret-value --secret-id app/quiet --secret-string 'quiet-value-0002' \
	--version-stages AWSPENDING --query VersionId --output text)
a=$(kt_req "$(req_refresh app/quiet)")
expect_eq "refresh while the new version is only AWSPENDING: AWSCURRENT is still the old one" \
	"True $q1 $q1" "$(fields "$a" 'd.get("ok"), d.get("version_id"), d.get("current_version_in_aws")')"
a=$(kt_get app/quiet)
expect_eq "get still serves the old value" "quiet-value-0001 $q1" "$(fields "$a" 'd.get("string"), d.get("version_id")')"
aws_cli secretsmanager update-secret-version-stage --secret-id app/quiet --version-stage AWSCURRENT \
	--move-to-version-id "$q2" --remove-from-version-id "$q1" >/dev/null
sleep 1 # refresh_min_interval
a=$(kt_req "$(req_refresh app/quiet)")
expect_eq "refresh after AWSCURRENT moved answers the new version" "True $q2 $q2 True" \
	"$(fields "$a" 'd.get("ok"), d.get("version_id"), d.get("current_version_in_aws"), "AWSCURRENT" in d.get("stages", [])')"
a=$(kt_get app/quiet)
expect_eq "the next get serves the new value at once, fresh" "quiet-value-0002 $q2 False" \
	"$(fields "$a" 'd.get("string"), d.get("version_id"), d.get("stale")')"
check "the log says AWSCURRENT moved for app/quiet" grep -q "app/quiet: AWSCURRENT is now version $q2" "$KT_LOG"

# --- (b) inside the rotation window ---------------------------------------------
# Where windows open and close, with or without a Duration, is covered with a
# simulated clock by tests/unit/test_sched.c; here the daemon has to use one.
# The first check of a secret comes 5 to 60 s after its first fetch; a
# refresh makes it now, and with it keyturnd learns the rotation schedule.
a=$(kt_req "$(req_refresh app/rot)")
expect_eq "refresh of app/rot reports rotation enabled and NextRotationDate" "True True $next_rot" \
	"$(fields "$a" 'd.get("ok"), d.get("rotation_enabled"), d.get("next_rotation")')"
now=$(date +%s)
check "inside the window the next check of app/rot is due within window_interval" \
	test "$(listed app/rot "s['next_check'] - $now")" -le 3
check "outside a window app/quiet is next checked in about check_interval" \
	test "$(listed app/quiet "s['next_check'] - $now")" -ge 3000

# --- (d) quiet checks cost DescribeSecret only ------------------------------------
quiet_checked=$(listed app/quiet 's["checked_at"]')
t0=$(date +%s.%N)
plan '{"default":"pass"}'
check "quiet period: app/rot goes on being checked (3 checks)" wait_until 20 describes_reach 3
n_all=$(requests)
t1=$(date +%s.%N)
n_desc=$(calls DescribeSecret)
# Checks of one secret are at least window_interval = 2 s apart.
most=$(awk "BEGIN { print int(($t1 - $t0) / 2) + 1 }")
diag "quiet $(awk "BEGIN { printf \"%.1f\", $t1 - $t0 }") s: $n_desc DescribeSecret, $n_all requests in all"
check "no more often than every window_interval ($n_desc <= $most)" test "$n_desc" -le "$most"
expect_eq "quiet checks make no GetSecretValue (and no other call)" "$n_desc" "$n_all"
expect_eq "app/quiet was not checked meanwhile" "$quiet_checked" "$(listed app/quiet 's["checked_at"]')"

# --- (c) the rotation, recorded from a client's side --------------------------------
"$PYTHON3" "$T/ktrecord.py" "$KT_LIB" "$KT_SOCK" 60 "$T/record.stop" "$(req_get app/rot)" \
	>"$T/record.jsonl" 2>"$T/record.err" &
rec_pid=$!
kt_pids+=("$rec_pid")
v2=$(aws_cli secretsmanager put-secret-value --secret-id app/rot --secret-string 'rot-value-0002' \
	--version-stages AWSPENDING --query VersionId --output text)
t_pend=$(date +%s.%N)
# Two checks that see AWSPENDING on the new version, AWSCURRENT still on the old.
base=$(calls DescribeSecret)
check "the daemon goes on checking while the new version is pending" \
	wait_until 10 describes_reach $((base + 2))
expect_eq "a pending version costs no GetSecretValue" 0 "$(calls GetSecretValue)"
expect_eq "list: AWSCURRENT in AWS is still the old version" "$v1 $v1" \
	"$(listed app/rot 's["version_id"], s["current_version_in_aws"]' | tr -d "(),'")"
t_move=$(date +%s.%N)
aws_cli secretsmanager update-secret-version-stage --secret-id app/rot --version-stage AWSCURRENT \
	--move-to-version-id "$v2" --remove-from-version-id "$v1" >/dev/null
t_moved=$(date +%s.%N)
# Without any refresh: the window's checks every 2 s must find the move.
check "inside the window the new AWSCURRENT is served without a refresh" \
	wait_until 10 last_recorded "$v2"
t_seen=$(date +%s.%N)
diag "new AWSCURRENT served $(awk "BEGIN { printf \"%.1f\", $t_seen - $t_moved }") s after the move"
base=$(calls DescribeSecret)
check "the daemon goes on checking after the move" wait_until 10 describes_reach $((base + 1))
touch "$T/record.stop"
wait "$rec_pid" 2>/dev/null
expect_eq "exactly one GetSecretValue: for the moved AWSCURRENT" 1 "$(calls GetSecretValue)"
expect_eq "the log says so once" 1 "$(grep -c "app/rot: AWSCURRENT is now version $v2; fetching it" "$KT_LOG")"
a=$(kt_get app/rot)
expect_eq "get serves the new value, fresh, as AWSCURRENT" "rot-value-0002 $v2 False True" \
	"$(fields "$a" 'd.get("string"), d.get("version_id"), d.get("stale"), "AWSCURRENT" in d.get("stages", [])')"

# What the recording client saw: answers, all fresh AWSCURRENT values (the
# old one may be marked stale once the move is seen, until the new one is
# fetched); the old version until the move began, never the pending one;
# once the new version came, never the old one again.
verdict=$("$PYTHON3" - "$T/record.jsonl" "$t_pend" "$t_move" "$v1" "$v2" <<'PY'
import json, sys
path, t_pend, t_move, v1, v2 = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
rows = [json.loads(l) for l in open(path)]
bad = []
seen_new = False
for r in rows:
    d = r["d"]
    vid = d.get("version_id")
    # Between the check that saw AWSCURRENT move and the fetch of the new
    # version, the old value is served marked stale (superseded).
    superseded = d.get("stale") is True and vid == v1 and r["t1"] >= t_move
    if not d.get("ok") or (d.get("stale") is not False and not superseded) or \
            "AWSCURRENT" not in d.get("stages", []):
        bad.append("not a fresh AWSCURRENT answer: %s" % {k: d.get(k) for k in ("ok", "error", "stale", "stages")})
    if vid not in (v1, v2):
        bad.append("unknown version %s" % vid)
    if vid == v2 and r["t1"] < t_move:
        bad.append("pending version served as current before the move")
    if d.get("string") == "rot-value-0002" and vid != v2:
        bad.append("the pending value under another version id")
    if vid == v1 and seen_new:
        bad.append("back to the old version after the new one")
    seen_new = seen_new or vid == v2
pending = sum(1 for r in rows if r["t0"] > t_pend and r["t1"] < t_move and r["d"].get("version_id") == v1)
new = sum(1 for r in rows if r["d"].get("version_id") == v2)
print(len(rows), pending, new)
print("; ".join(bad[:5]) or "clean")
PY
)
{ read -r n_rows n_pending n_new; read -r problems; } <<<"$verdict"
diag "recording: $n_rows answers; $n_pending of the old version while the new one was pending, $n_new of the new one"
expect_eq "AWSPENDING was never served as current; AWSCURRENT moved once, for good" clean "$problems"
check "the recording saw the old version while the new one was pending" test "$n_pending" -ge 10
check "and the new one after the move" test "$n_new" -ge 1

check "no secret value in the daemon's debug log" log_has_no_secrets "${secrets[@]}"
stop_daemon
expect_eq "SIGTERM stops keyturnd with status 0" 0 "$KT_STATUS"
check "no sanitizer report from keyturnd" sanitizer_clean
done_testing
