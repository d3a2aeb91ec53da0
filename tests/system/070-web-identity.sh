#!/usr/bin/env bash
# System test: the web identity provider against moto's STS: an unsigned
# AssumeRoleWithWebIdentity from a token file named by the environment or by
# the config file's profile, renewal that reads the token file again, its
# place in the chain, and STS's XML errors (played by tests/lib/fakemeta.py).
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/meta.sh
. "$KT_LIB/meta.sh"
need_built "$KT_CREDS"

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
# at every lookup that the renewal interval allows (once a minute; 1 s here,
# with lookups 1.1 s apart), each one a new STS call.
before=$(sts_calls)
kc wi-renew --repeat 3 --sleep-ms 1100 --renew-interval 1 --refresh-ahead 7200
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
	--renew-interval 1 --refresh-ahead 7200 >"$T/wi-reread.out" 2>"$T/wi-reread.err" &
reread_pid=$!
wait_until 10 test -s "$T/wi-reread.out"
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
start_fakemeta
AWS_ENDPOINT_URL_STS="$META_URL" kc wi-sts-error
expect_fail wi-sts-error auth "InvalidIdentityToken"
check "web identity: STS message decoded" \
	grep -q "token & its signature could not be verified" "$T/wi-sts-error.out"
expect_eq "web identity: the STS request is unsigned and carries the token" "true true" \
	"$(mstat sts_unsigned) $(mstat sts_has_token)"

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
no_secret_output "no token or secret key in any output" kt-jwt-signature profile-secret env-secret
no_sanitizer_report "no sanitizer report"

done_testing
