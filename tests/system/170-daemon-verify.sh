#!/bin/bash
# keyturnd's verify op against moto, with the fault proxy counting AWS calls:
# right and wrong passwords, unmapped and made-up accounts, a rotation played
# by hand with the AWS CLI (the new password works at once, AWSPENDING never,
# the old one only within previous_grace), 1,000 wrong passwords costing at
# most a handful of AWS calls, [login:*] serving regular accounts only, a
# non-root caller held to its own account and to a failure limit, and the
# offline verifiers: written 0600 without the password, used after a restart
# with moto gone (checked on the hashing thread while the loop keeps
# answering; more than 64 waiting checks are refused as busy), refused when
# too old, and removed with their mapping.
# Verify for any account is root's, so the whole script needs root. The
# budget of AWS calls that failed passwords may cause (3, and one more per
# 200 wrong passwords) is refilled where a section needs it by earn().

PLANNED=66

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"
trap cleanup_accounts EXIT

need_built "$KEYTURND"
need_root_accounts "verify the passwords of other accounts and make a test user"
command -v setpriv >/dev/null || skip_all "needs setpriv to run a client as another user"

CTL="$KT_BUILDDIR/keyturnctl"
HOST=$(hostname)
OLD=Old-pass-0001
# verify USER PASSWORD: the answer to one verify request, as root.
verify() { kt_req "{\"v\":1,\"op\":\"verify\",\"user\":\"$1\",\"password\":\"$2\",\"service\":\"sshd\",\"rhost\":\"192.0.2.7\"}"; }
verify_as() { kt_req_as "$1" "{\"v\":1,\"op\":\"verify\",\"user\":\"$2\",\"password\":\"$3\"}"; }
# verdict ANSWER: "match STAGE SOURCE", "mismatch SOURCE", or the error code.
verdict() {
	jfield "$1" '("match %s %s" % (d["stage"], d["source"]) if d["match"] else "mismatch %s" % d["source"]) if d.get("ok") else d["error"]'
}
# earn N: N more calls in keyturnd's budget for AWS calls caused by failed
# passwords, from 200 wrong passwords each for ktold, whose secret is gone
# (answered not_found from the cache, without an AWS call).
earn() {
	local i
	for ((i = 0; i < 200 * $1; i++)); do
		echo '{"v":1,"op":"verify","user":"ktold","password":"earn"}'
	done | kt_req - | grep -c '"not_found"'
}
# verifier_of SECRET_ID KEY: the path of its offline verifier file.
verifier_of() { echo "$T/state/verifier-$(printf '%s\n%s' "$1" "$2" | sha256sum | cut -c1-40)"; }

# A regular account (uid from UID_MIN up) for [login:*].
KU=ktv-$$-p
useradd -M -N -s /usr/sbin/nologin "$KU" && made_users+=("$KU") || bail "useradd $KU failed"

start_moto
start_proxy "$MOTO_URL"
"$PYTHON3" - "$MOTO_URL" "$HOST" "$OLD" "$KU" >"$T/setup.out" 2>&1 <<'PY' || bail "moto setup: $(cat "$T/setup.out")"
import json, sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.create_secret(Name="hosts/%s/breakglass" % sys.argv[2],
                 SecretString=json.dumps({"username": "ktbg", "password": sys.argv[3]}))
sm.create_secret(Name="users/" + sys.argv[4], SecretString=json.dumps({"password": "user-pass-p"}))
sm.create_secret(Name="users/daemon", SecretString=json.dumps({"password": "daemon-pass-1"}))
sm.create_secret(Name="app/plain", SecretString="plain-value-1")
sm.create_secret(Name="hosts/%s/retired" % sys.argv[2], SecretString=json.dumps({"password": "retired-pass-1"}))
PY

MOTO_URL_DIRECT=$MOTO_URL
MOTO_URL=$PROXY_URL
base_config() {
	write_config "check_interval = 3600
refresh_min_interval = 2${1:+
$1}"
}
base_config <<EOF
[secret:app/plain]
allow_users = root

[login:ktbg]
secret = hosts/%H/breakglass
key = password
previous_grace = 4
offline = yes
offline_max_age = 3600

[login:ktold]
secret = hosts/%H/retired
key = password
offline = yes

[login:*]
secret = users/%u
key = password
EOF
cp "$KT_CONF" "$T/full.conf"
start_daemon || bail "keyturnd did not start"
wait_until 15 grep -q 'offline verifier for ktbg written' "$KT_LOG"
wait_until 15 grep -q 'offline verifier for ktold written' "$KT_LOG"

# --- basic answers --------------------------------------------------------------
a=$(verify ktbg "$OLD")
expect_eq "the right password matches AWSCURRENT from the cache" "match AWSCURRENT cache" "$(verdict "$a")"
a=$(verify ktbg wrong-password)
expect_eq "a wrong password does not match" "mismatch cache" "$(verdict "$a")"
check "a mismatch says stage null" [ "$(jfield "$a" 'd["stage"]')" = None ]
plan '{}'
a=$(verify daemon daemon-pass-1)
expect_eq "[login:*] does not serve a system account (uid below UID_MIN)" not_found "$(verdict "$a")"
a=$(verify nosuchuser-kt-$$ whatever)
expect_eq "an account that does not exist is not_found" "not_found" "$(verdict "$a")"
expect_eq "... and costs no AWS call" 0 "$(requests)"
a=$(kt_req '{"v":1,"op":"verify","user":"ktbg"}')
expect_eq "a verify without a password is a bad_request" bad_request "$(verdict "$a")"
a=$(kt_req '{"v":1,"op":"verify","user":"ktbg","password":"x","rhost":"a\nb"}')
expect_eq "a control character in rhost is a bad_request" bad_request "$(verdict "$a")"
a=$(kt_get "hosts/$HOST/breakglass")
expect_eq "a secret only a login uses cannot be read with get" not_found "$(jfield "$a" 'd["error"]')"
a=$(kt_req '{"v":1,"op":"list"}')
check "... nor does list show it" [ "$(jfield "$a" '[s["name"] for s in d["secrets"]]')" = '["app/plain"]' ]

printf '%s' "$OLD" | "$CTL" --socket "$KT_SOCK" verify ktbg >/dev/null 2>"$T/ctl.err"
expect_eq "keyturnctl verify: exit 0 on a match" 0 "$?"
printf 'nope' | "$CTL" --socket "$KT_SOCK" verify ktbg >/dev/null 2>>"$T/ctl.err"
expect_eq "keyturnctl verify: exit 1 on no match" 1 "$?"
printf 'nope' | "$CTL" --socket "$KT_SOCK" verify nosuchuser-kt-$$ >/dev/null 2>>"$T/ctl.err"
expect_eq "keyturnctl verify: exit 3 for an unmapped account" 3 "$?"

# --- a secret deleted in AWS ------------------------------------------------------
gone=$(verifier_of "hosts/$HOST/retired" password)
check "a login with offline = yes has its verifier written at start" [ -f "$gone" ]
aws_cli secretsmanager delete-secret --secret-id "hosts/$HOST/retired" --force-delete-without-recovery >/dev/null
sleep 2.1
a=$(verify ktold retired-pass-2)
expect_eq "a failed password's check finds the secret deleted: not_found" not_found "$(verdict "$a")"
check "... and its offline verifier is removed" [ ! -e "$gone" ]
expect_eq "wrong passwords for a secret that is gone are answered at once" 600 "$(earn 3)"
plan '{}'
a=$(verify "$KU" user-pass-p)
expect_eq "[login:*] maps a regular local account through %u" "match AWSCURRENT cache" "$(verdict "$a")"
expect_eq "... after one GetSecretValue" 1 "$(calls GetSecretValue)"

# --- a rotation played by hand --------------------------------------------------
sleep 2.1 # the re-check after a failed password is due again
NEW=$(aws_cli secretsmanager get-random-password --password-length 24 --exclude-punctuation |
	jfield "$(cat)" 'd["RandomPassword"]')
check "createSecret: GetRandomPassword gave a password" [ ${#NEW} -eq 24 ]
a=$(verify ktbg "$OLD") # a match: failed passwords' back-off starts over
PENDING_VID=$(aws_cli secretsmanager put-secret-value --secret-id "hosts/$HOST/breakglass" \
	--secret-string "{\"username\":\"ktbg\",\"password\":\"$NEW\"}" --version-stages AWSPENDING |
	jfield "$(cat)" 'd["VersionId"]')
check "createSecret: PutSecretValue stored it as AWSPENDING" [ -n "$PENDING_VID" ]
a=$(aws_cli secretsmanager get-secret-value --secret-id "hosts/$HOST/breakglass" --version-stage AWSPENDING)
check "testSecret: the AWSPENDING value reads back" [ "$(jfield "$(jfield "$a" 'd["SecretString"]')" 'd["password"]')" = "$NEW" ]
plan '{}'
a=$(verify ktbg "$NEW")
expect_eq "an AWSPENDING password does not log in" "mismatch cache" "$(verdict "$a")"
expect_eq "... its failure made one DescribeSecret" 1 "$(calls DescribeSecret)"
expect_eq "... and no GetSecretValue (AWSCURRENT did not move)" 0 "$(calls GetSecretValue)"
CUR_VID=$(aws_cli secretsmanager describe-secret --secret-id "hosts/$HOST/breakglass" |
	jfield "$(cat)" '[v for v, s in d["VersionIdsToStages"].items() if "AWSCURRENT" in s][0]')
aws_cli secretsmanager update-secret-version-stage --secret-id "hosts/$HOST/breakglass" \
	--version-stage AWSCURRENT --move-to-version-id "$PENDING_VID" --remove-from-version-id "$CUR_VID" >/dev/null
check "finishSecret: AWSCURRENT moved to the new version" [ $? -eq 0 ]
sleep 2.1
plan '{}'
a=$(verify ktbg "$NEW")
expect_eq "the new password works at once (check_interval is an hour)" "match AWSCURRENT cache" "$(verdict "$a")"
expect_eq "... after one DescribeSecret" 1 "$(calls DescribeSecret)"
expect_eq "... and one GetSecretValue" 1 "$(calls GetSecretValue)"
rotated=$(date +%s)
a=$(verify ktbg "$OLD")
expect_eq "the old password works within previous_grace" "match AWSPREVIOUS cache" "$(verdict "$a")"
wait_until 15 grep -q "offline verifier for ktbg written (login:hosts/$HOST/breakglass, version $PENDING_VID)" "$KT_LOG"
check "the offline verifier was written again for the new version" [ $? -eq 0 ]
while [ $(($(date +%s) - rotated)) -lt 5 ]; do sleep 0.5; done
a=$(verify ktbg "$OLD")
expect_eq "the old password fails once previous_grace is over" "mismatch cache" "$(verdict "$a")"

# --- a burst of wrong passwords -----------------------------------------------------
sleep 2.1
plan '{}'
for ((i = 0; i < 1000; i++)); do
	echo "{\"v\":1,\"op\":\"verify\",\"user\":\"ktbg\",\"password\":\"guess-$i\"}"
done >"$T/burst.in"
kt_req - <"$T/burst.in" >"$T/burst.out"
expect_eq "1,000 wrong passwords on one connection get 1,000 answers" 1000 "$(wc -l <"$T/burst.out")"
expect_eq "... all of them no match" 1000 "$(grep -c '"match": *false' "$T/burst.out")"
n=$(requests)
diag "AWS calls for 1,000 wrong passwords: $n"
check "... and at most a handful of AWS calls (at most 3)" [ "$n" -le 3 ]

# --- a non-root caller ------------------------------------------------------------
UA=ktv-$$-u
useradd -M -N -s /usr/sbin/nologin "$UA" && made_users+=("$UA")
chmod 755 "$T" "$T/run"
"$PYTHON3" - "$MOTO_URL_DIRECT" "$UA" >>"$T/setup.out" 2>&1 <<'PY'
import json, sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.create_secret(Name="users/" + sys.argv[2], SecretString=json.dumps({"password": "user-pass-1"}))
PY
a=$(verify_as "$UA" "$UA" user-pass-1)
expect_eq "a non-root caller may verify its own account" "match AWSCURRENT cache" "$(verdict "$a")"
a=$(verify_as "$UA" ktbg "$NEW")
expect_eq "... but not another account, even with the right password" denied "$(verdict "$a")"
for ((i = 0; i < 5; i++)); do
	echo "{\"v\":1,\"op\":\"verify\",\"user\":\"$UA\",\"password\":\"guess-$i\"}"
done >"$T/ua.in"
echo "{\"v\":1,\"op\":\"verify\",\"user\":\"$UA\",\"password\":\"user-pass-1\"}" >>"$T/ua.in"
"$PYTHON3" "$KT_LIB/ktclient.py" --socket "$KT_SOCK" --timeout 20 --as-user "$UA" - <"$T/ua.in" >"$T/ua.out"
expect_eq "... its five wrong passwords do not match" 5 "$(grep -c '"match": *false' "$T/ua.out")"
a=$(tail -n 1 "$T/ua.out")
expect_eq "... after which even the right one is throttled" throttled "$(verdict "$a")"
check "... with how long to wait" grep -q 'try again in' <<<"$a"
a=$(verify "$UA" user-pass-1)
expect_eq "root is not held by a user's failures" "match AWSCURRENT cache" "$(verdict "$a")"

# --- audit and secrecy ----------------------------------------------------------------
check "attempts are audited with user, service, rhost, result and stage" \
	grep -q "login: user=ktbg service=sshd rhost=192.0.2.7 tty=- uid=0 .* result=match stage=AWSPREVIOUS source=cache" "$KT_LOG"
check "failures are audited too" grep -q "login: user=ktbg .* result=mismatch" "$KT_LOG"
check "no password is in the log" log_has_no_secrets "$OLD" "$NEW" user-pass-p user-pass-1 guess-999

# --- offline verifiers ------------------------------------------------------------------
f=$(verifier_of "hosts/$HOST/breakglass" password)
expect_eq "one offline verifier file is kept in state_dir" "$f" "$(ls "$T/state"/verifier-*)"
expect_eq "... mode 0600, owned by the daemon's user" "600 root" "$(stat -c '%a %U' "$f")"
check "... holding a yescrypt hash" grep -q '"\$y\$' "$f"
check "... and neither password" sh -c "! grep -qF -e '$NEW' -e '$OLD' '$f'"
check "no temporary file is left behind" sh -c "! ls -a '$T/state' | grep -q '^\\.verifier-'"

stop_daemon
kill "$MOTO_PID"
wait "$MOTO_PID" 2>/dev/null
start_daemon || bail "keyturnd did not start without AWS"
a=$(verify ktbg "$NEW")
expect_eq "moto gone, daemon restarted: the right password works from the verifier" \
	"match AWSCURRENT offline" "$(verdict "$a")"
a=$(verify ktbg "$OLD")
expect_eq "... the old one (grace over) does not" "mismatch offline" "$(verdict "$a")"
a=$(verify ktbg wrong-password)
expect_eq "... nor a wrong one" "mismatch offline" "$(verdict "$a")"
a=$(verify "$KU" user-pass-p)
expect_eq "... a login without offline = yes is unavailable" unavailable "$(verdict "$a")"
check "... saying why" grep -q 'offline verifiers are off' <<<"$a"

# parallel N: N offline verifies of ktbg, one a connection, then (0.1 s
# later, while yescrypt runs) a status on another connection; one JSON line
# with how long the status took, the answers and how long they all took.
parallel() {
	"$PYTHON3" - "$KT_LIB" "$KT_SOCK" "$NEW" "$1" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ktclient import KtClient
sock, pw, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
conns = [KtClient(sock, timeout=60) for _ in range(n)]
status = KtClient(sock, timeout=60)
t0 = time.monotonic()
for c in conns:
    c.send_frame(json.dumps({"v": 1, "op": "verify", "user": "ktbg", "password": pw}))
time.sleep(0.1)
t1 = time.monotonic()
st = status.request({"v": 1, "op": "status"})
status_ms = (time.monotonic() - t1) * 1000
out = {"status_ok": st.get("ok") is True, "status_ms": round(status_ms, 1),
       "match": 0, "busy": 0, "other": 0}
for c in conns:
    a = c.recv_json()
    if a.get("ok") and a.get("match") and a.get("source") == "offline":
        out["match"] += 1
    elif a.get("error") == "unavailable" and "busy" in a.get("message", ""):
        out["busy"] += 1
    else:
        out["other"] += 1
out["all_ms"] = round((time.monotonic() - t0) * 1000, 1)
print(json.dumps(out))
PY
}
r=$(parallel 20)
diag "20 offline checks in parallel: $r"
check "while 20 offline checks wait, a status on another connection is answered" \
	[ "$(jfield "$r" 'd["status_ok"]')" = true ]
check "... within 1 s" [ "$(jfield "$r" 'int(d["status_ms"] < 1000)')" = 1 ]
expect_eq "... and all 20 match from the verifier" "20 0 0" "$(jfield "$r" '"%d %d %d" % (d["match"], d["busy"], d["other"])')"
r=$(parallel 100)
diag "100 offline checks in parallel: $r"
expect_eq "100 offline checks at once: each answered, a match or busy" 0 "$(jfield "$r" 'd["other"]')"
check "... at most 64 wait: the rest are refused as busy" \
	[ "$(jfield "$r" 'int(d["busy"] >= 1 and d["match"] >= 64)')" = 1 ]
check "... and the daemon still answers" [ "$(verdict "$(verify ktbg "$NEW")")" = "match AWSCURRENT offline" ]
stop_daemon

sed 's/^offline_max_age = .*/offline_max_age = 1/' "$T/full.conf" >"$KT_CONF"
sleep 2
start_daemon || bail "keyturnd did not start"
a=$(verify ktbg "$NEW")
expect_eq "a verifier older than offline_max_age is refused" unavailable "$(verdict "$a")"
check "... saying how old it is" grep -q 'offline_max_age 1' <<<"$a"
check "... and it is kept (its mapping still stands)" [ -e "$f" ]

base_config <<EOF
[secret:app/plain]
allow_users = root

[login:*]
secret = users/%u
key = password
EOF
kill -HUP "$KT_PID"
wait_until 10 grep -q 'offline verifier(s) no mapping uses were removed' "$KT_LOG"
check "removing the login's section removes its verifier" [ ! -e "$f" ]
stop_daemon
expect_eq "keyturnd stopped cleanly" 0 "$KT_STATUS"
check "no sanitizer report" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
done_testing
