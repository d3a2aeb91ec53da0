#!/usr/bin/env bash
# System test: the web identity provider against moto's STS: an unsigned
# AssumeRoleWithWebIdentity from a token file named by the environment or by
# the config file's profile, renewal that reads the token file again, its
# place in the chain, and STS's XML errors (played by tests/lib/fakemeta.py).
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"

KT_CREDS="$KT_BUILDDIR/tests/tools/kt-creds"
if [ ! -x "$KT_CREDS" ]; then
	echo "1..0 # SKIP $KT_CREDS is not built"
	exit 0
fi

# kc NAME ARGS...: runs kt-creds, leaving $T/NAME.out, $T/NAME.err and KC_RC.
kc() {
	local name=$1
	shift
	"$KT_CREDS" "$@" >"$T/$name.out" 2>"$T/$name.err"
	KC_RC=$?
}

# field NAME EXPR [LINE]: a value from line LINE (default 1) of NAME's output.
field() {
	sed -n "${3:-1}p" "$T/$1.out" >"$T/$1.line"
	[ -s "$T/$1.line" ] || { echo "(no line ${3:-1})"; return; }
	json_get "$T/$1.line" "$2"
}

expect_ok() {
	if [ "$KC_RC" -eq 0 ]; then
		ok "$1: kt-creds succeeded"
	else
		not_ok "$1: kt-creds succeeded"
		diag "exit $KC_RC" "$(cat "$T/$1.out" "$T/$1.err")"
	fi
}

# expect_fail NAME CODE TEXT: failed with error CODE, message containing TEXT.
expect_fail() {
	local msg
	expect_eq "$1: exit status" 1 "$KC_RC"
	expect_eq "$1: error code" "$2" "$(field "$1" 'd.get("error")')"
	msg=$(field "$1" 'd.get("message")')
	if [[ "$msg" == *"$3"* ]]; then
		ok "$1: message names '$3'"
	else
		not_ok "$1: message names '$3'"
		diag "message: $msg"
	fi
}

# sts_calls: AssumeRoleWithWebIdentity requests moto has answered so far.
sts_calls() { grep -c '"POST / HTTP' "$T/moto-$MOTO_PORT.log"; }

start_moto
now=$(date +%s)

# The role the token is traded for. moto does not insist on it, AWS does.
cat >"$T/trust.json" <<'EOF'
{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
 "Principal": {"Federated": "arn:aws:iam::123456789012:oidc-provider/oidc.example.com"},
 "Action": "sts:AssumeRoleWithWebIdentity"}]}
EOF
if aws_cli iam create-role --role-name kt-web-identity \
	--assume-role-policy-document "file://$T/trust.json" >"$T/role.json" 2>"$T/role.err"; then
	ROLE_ARN=$(json_get "$T/role.json" 'd["Role"]["Arn"]')
	ok "iam create-role"
else
	not_ok "iam create-role"
	diag "$(cat "$T/role.err")"
	ROLE_ARN=arn:aws:iam::123456789012:role/kt-web-identity
fi

# A JWT-shaped token; moto does not verify it.
printf 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6a3Q6YXBwIn0.kt-jwt-signature\n' \
	>"$T/token"

unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
export AWS_WEB_IDENTITY_TOKEN_FILE="$T/token"
export AWS_ROLE_ARN="$ROLE_ARN"
export AWS_ENDPOINT_URL_STS="$MOTO_URL"

# --- from the environment -----------------------------------------------------------
before=$(sts_calls)
kc wi
expect_ok wi
expect_eq "web identity: source" web-identity "$(field wi 'd["source"]')"
expect_eq "web identity: session token" true "$(field wi 'd["has_session_token"]')"
check "web identity: temporary key id (ASIA...)" \
	grep -q '"access_key_id":"ASIA' "$T/wi.out"
check "web identity: expiration in the future" test "$(field wi 'd["expiration"]')" -gt "$now"
expect_eq "web identity: one STS call" $((before + 1)) "$(sts_calls)"

# AWS_ENDPOINT_URL serves every service, STS included.
AWS_ENDPOINT_URL="$MOTO_URL" env -u AWS_ENDPOINT_URL_STS "$KT_CREDS" >"$T/wi-any.out" 2>"$T/wi-any.err"
KC_RC=$?
expect_ok wi-any
expect_eq "web identity: through AWS_ENDPOINT_URL" web-identity "$(field wi-any 'd["source"]')"

AWS_ROLE_SESSION_NAME=kt-named-session kc wi-session
expect_eq "web identity: with AWS_ROLE_SESSION_NAME" web-identity "$(field wi-session 'd["source"]')"

# --- renewal ------------------------------------------------------------------------
# moto's credentials last an hour; a refresh-ahead longer than that renews
# on every lookup, each one a new STS call.
before=$(sts_calls)
kc wi-renew --repeat 3 --refresh-ahead 7200
expect_ok wi-renew
expect_eq "web identity: renewed on each lookup" $((before + 3)) "$(sts_calls)"
check "web identity: renewal brings a new key id" test \
	"$(field wi-renew 'd["access_key_id"]' 1)" != "$(field wi-renew 'd["access_key_id"]' 3)"

kc wi-cached --repeat 3
expect_eq "web identity: cached within the hour" \
	"$(field wi-cached 'd["access_key_id"]' 1)" "$(field wi-cached 'd["access_key_id"]' 3)"

# The token file is read again at each renewal: once it is gone, the
# renewal fails, and the still-valid credentials stay in service.
cp "$T/token" "$T/token-renew"
AWS_WEB_IDENTITY_TOKEN_FILE="$T/token-renew" "$KT_CREDS" --repeat 2 --sleep-ms 2000 \
	--refresh-ahead 7200 >"$T/wi-reread.out" 2>"$T/wi-reread.err" &
reread_pid=$!
for ((i = 0; i < 100; i++)); do
	[ -s "$T/wi-reread.out" ] && break
	sleep 0.1
done
rm -f "$T/token-renew"
wait "$reread_pid"
KC_RC=$?
expect_ok wi-reread
expect_eq "web identity: cached key served while the token file is missing" \
	"$(field wi-reread 'd["access_key_id"]' 1)" "$(field wi-reread 'd["access_key_id"]' 2)"
check "web identity: the renewal read the token file again" \
	grep -q "token-renew" "$T/wi-reread.err"

# --- errors -------------------------------------------------------------------------
AWS_WEB_IDENTITY_TOKEN_FILE="$T/no-such-token" kc wi-nofile
expect_fail wi-nofile config "$T/no-such-token"

env -u AWS_ROLE_ARN "$KT_CREDS" >"$T/wi-norole.out" 2>"$T/wi-norole.err"
KC_RC=$?
expect_fail wi-norole config AWS_ROLE_ARN

# STS's XML error, from the fake server (moto accepts any token).
META_PF="$T/meta.port"
"$PYTHON3" "$KT_LIB/fakemeta.py" --port-file "$META_PF" 2>"$T/meta.log" &
kt_pids+=("$!")
for ((i = 0; i < 100; i++)); do
	[ -s "$META_PF" ] && break
	sleep 0.1
done
[ -s "$META_PF" ] || bail "fakemeta did not start: $(cat "$T/meta.log")"
AWS_ENDPOINT_URL_STS="http://127.0.0.1:$(cat "$META_PF")" kc wi-sts-error
expect_fail wi-sts-error auth "InvalidIdentityToken"
check "web identity: STS message decoded" \
	grep -q "token & its signature could not be verified" "$T/wi-sts-error.out"
"$PYTHON3" -c '
import json, sys, urllib.request
d = json.load(urllib.request.urlopen(sys.argv[1] + "/__ctl/stats"))
sys.exit(0 if d.get("sts_unsigned") and d.get("sts_has_token") else 1)
' "http://127.0.0.1:$(cat "$META_PF")"
expect_eq "web identity: the STS request is unsigned and carries the token" 0 $?

# --- from the config file's profile ----------------------------------------------------
unset AWS_WEB_IDENTITY_TOKEN_FILE AWS_ROLE_ARN
cat >"$AWS_CONFIG_FILE" <<EOF
[profile wi]
role_arn = $ROLE_ARN
web_identity_token_file = $T/token
role_session_name = kt-profile-session

[profile wi-broken]
web_identity_token_file = $T/token
EOF
AWS_PROFILE=wi kc wi-profile
expect_ok wi-profile
expect_eq "web identity: from the config file's profile" web-identity \
	"$(field wi-profile 'd["source"]')"
AWS_PROFILE=wi-broken kc wi-profile-broken
expect_fail wi-profile-broken config "$AWS_CONFIG_FILE:7:"

# --- place in the chain ---------------------------------------------------------------------
export AWS_WEB_IDENTITY_TOKEN_FILE="$T/token" AWS_ROLE_ARN="$ROLE_ARN"
printf '[default]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n' \
	>"$AWS_SHARED_CREDENTIALS_FILE"
AWS_ACCESS_KEY_ID=AKIDENVFIRST AWS_SECRET_ACCESS_KEY=env-secret kc chain-env
expect_eq "chain: environment before web identity" environment "$(field chain-env 'd["source"]')"
kc chain-wi
expect_eq "chain: web identity before the shared files" web-identity \
	"$(field chain-wi 'd["source"]')"

# --- hygiene ------------------------------------------------------------------------------
if grep -l -e kt-jwt-signature -e profile-secret -e env-secret "$T"/*.out "$T"/*.err \
	>/dev/null 2>&1; then
	not_ok "no token or secret key in any output"
else
	ok "no token or secret key in any output"
fi
if grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error' "$T"/*.err >/dev/null 2>&1; then
	not_ok "no sanitizer report"
	grep -h -A5 -E 'AddressSanitizer|LeakSanitizer|runtime error' "$T"/*.err | head -40 | sed 's/^/# /'
else
	ok "no sanitizer report"
fi

done_testing
