#!/bin/bash
# keyturnd when AWSCURRENT moves to a version it cannot fetch. The fault
# proxy answers every GetSecretValue that names a VersionId with KMS's
# DecryptionFailure, while DescribeSecret keeps working. After new values
# are put in AWS: the old value of a [secret:] is served with stale:true
# from the check that saw the move, and turns unavailable max_stale after
# that check, although every later DescribeSecret succeeds; the old password
# of a [login:] is accepted as AWSPREVIOUS within previous_grace of the move
# and refused after it. Once the new version can be fetched it is served
# fresh, and the old password stays refused (the grace counts from the
# move, not from the late fetch). Delays are printed as diagnostics; only
# generous bounds are asserted.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"

need_built "$KEYTURND"
[ "$(id -u)" -eq 0 ] || { echo "1..0 # SKIP verify for another account needs root"; exit 0; }
MAX_STALE=12
GRACE=5
OLD=Old-pass-192
NEW=New-pass-192

sanitizer_clean() { ! grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; }
verify() { kt_req "{\"v\":1,\"op\":\"verify\",\"user\":\"kt192\",\"password\":\"$1\"}"; }
# verdict ANSWER: "match STAGE SOURCE", "mismatch SOURCE", or the error code.
verdict() {
	jfield "$1" '("match %s %s" % (d["stage"], d["source"]) if d["match"] else "mismatch %s" % d["source"]) if d.get("ok") else d["error"]'
}
# db: "VALUE stale=BOOL", or the error code of a get of app/db.
db() { jfield "$(kt_get app/db)" '("%s stale=%s" % (d["string"], d["stale"])) if d.get("ok") else d["error"]'; }
db_is() { [ "$(db)" = "$1" ]; }
verdict_is() { [ "$(verdict "$(verify "$1")")" = "$2" ]; }
now() { date +%s.%N; }
since() { "$PYTHON3" -c "print(round($(now) - $1, 1))"; }
within() { "$PYTHON3" -c "import sys; sys.exit(0 if $1 <= $2 <= $3 else 1)"; }
moved_logged() { grep -q "$1: AWSCURRENT is now version" "$KT_LOG"; }
checks_at_least() { [ "$(calls DescribeSecret)" -ge "$1" ]; }

start_moto
start_proxy "$MOTO_URL"
MOTO_URL_DIRECT=$MOTO_URL
MOTO_URL=$PROXY_URL
"$PYTHON3" - "$MOTO_URL_DIRECT" "$OLD" <<'PY' || bail "moto setup"
import json, sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.create_secret(Name="app/db", SecretString="db-old-192")
sm.create_secret(Name="login/kt192", SecretString=json.dumps({"password": sys.argv[2]}))
PY

write_config "check_interval = 2
max_stale = $MAX_STALE
refresh_min_interval = 1" <<EOF
[secret:app/db]
allow_users = root

[login:kt192]
secret = login/kt192
key = password
previous_grace = $GRACE
offline = no
EOF
start_daemon || bail "keyturnd did not start"
wait_until 10 db_is "db-old-192 stale=False"
expect_eq "the value is served fresh" "db-old-192 stale=False" "$(db)"
expect_eq "the password matches AWSCURRENT" "match AWSCURRENT cache" "$(verdict "$(verify "$OLD")")"
# Both secrets are checked every ~2 s from here on.
wait_until 70 checks_at_least 2

# --- the new versions cannot be decrypted --------------------------------------------
plan '{"default":"decryption_failure"}'
"$PYTHON3" - "$MOTO_URL_DIRECT" "$NEW" <<'PY' || bail "put-secret-value"
import json, sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.put_secret_value(SecretId="app/db", SecretString="db-new-192")
sm.put_secret_value(SecretId="login/kt192", SecretString=json.dumps({"password": sys.argv[2]}))
PY
wait_until 10 db_is "db-old-192 stale=True"
t_db=$(now)
expect_eq "once a check sees AWSCURRENT move, the old value is served stale" \
	"db-old-192 stale=True" "$(db)"
check "... after DecryptionFailure on GetSecretValue of the new version" \
	grep -q 'DecryptionFailure' "$KT_LOG"
wait_until 10 moved_logged login/kt192
t_login=$(now)
a=$(verify "$OLD")
el=$(since "$t_login")
if within 0 "$el" $((GRACE - 2)); then
	expect_eq "within previous_grace the old password is accepted as AWSPREVIOUS" \
		"match AWSPREVIOUS cache" "$(verdict "$a")"
else
	skip_test "the move was seen too late ($el s) to test inside previous_grace"
fi
wait_until 20 verdict_is "$OLD" "mismatch cache"
el=$(since "$t_login")
diag "the old password was refused ${el} s after the move was logged (previous_grace $GRACE s)"
expect_eq "after previous_grace the old password is refused" "mismatch cache" \
	"$(verdict "$(verify "$OLD")")"
check "... about previous_grace after the move (${el} s)" within $((GRACE - 2)) "$el" $((GRACE + 6))
expect_eq "the new password is not known yet: refused" "mismatch cache" \
	"$(verdict "$(verify "$NEW")")"

# DescribeSecret keeps succeeding meanwhile; each used to restart max_stale.
d0=$(calls DescribeSecret) g0=$(calls GetSecretValue)
wait_until $((MAX_STALE + 20)) db_is unavailable
el=$(since "$t_db")
d1=$(calls DescribeSecret)
diag "app/db turned unavailable ${el} s after it turned stale (max_stale $MAX_STALE s);" \
	"$((d1 - d0)) successful DescribeSecret and $(calls GetSecretValue) failed GetSecretValue meanwhile"
expect_eq "max_stale after the move, the old value is unavailable" unavailable "$(db)"
check "... about max_stale after the move (${el} s)" within $((MAX_STALE - 3)) "$el" $((MAX_STALE + 8))
check "... although checks went on succeeding ($((d1 - d0)) DescribeSecret)" [ $((d1 - d0)) -ge 2 ]
# Each fetch of the new version follows a check that found AWSCURRENT moved
# (scheduled, or after a failed password); a working check does not start
# the back-off over, so no fetch is retried at once. Counted over the same
# stretch (the first fetches at start are no such retries); one fetch may be
# under way at each end of the stretch.
g=$(($(calls GetSecretValue) - g0))
check "failed fetches are not retried outside checks ($g GetSecretValue, $((d1 - d0)) DescribeSecret)" \
	[ "$g" -le $((d1 - d0 + 2)) ]
a=$(kt_req '{"v":1,"op":"list"}')
expect_eq "list says it is stale and not available" "True False" \
	"$(jfield "$a" '"%s %s" % (d["secrets"][0]["stale"], d["secrets"][0]["available"])')"
expect_eq "... while AWS says AWSCURRENT is another version" true \
	"$(jfield "$a" 'd["secrets"][0]["current_version_in_aws"] != d["secrets"][0]["version_id"]')"

# --- KMS works again ------------------------------------------------------------------
plan '{}'
wait_until 40 db_is "db-new-192 stale=False"
expect_eq "once the new version can be fetched it is served fresh" "db-new-192 stale=False" "$(db)"
wait_until 40 verdict_is "$NEW" "match AWSCURRENT cache"
expect_eq "the new password matches AWSCURRENT" "match AWSCURRENT cache" "$(verdict "$(verify "$NEW")")"
expect_eq "the old password stays refused: its grace ran from the move" "mismatch cache" \
	"$(verdict "$(verify "$OLD")")"

stop_daemon
check "keyturnd stops cleanly" [ "$KT_STATUS" -eq 0 ]
check "no sanitizer report in keyturnd's log" sanitizer_clean
check "no password in keyturnd's log" [ "$(grep -c -e "$OLD" -e "$NEW" "$KT_LOG")" -eq 0 ]
done_testing
