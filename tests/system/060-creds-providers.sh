#!/usr/bin/env bash
# System test: the credential chain's providers through tests/tools/kt-creds:
# environment, shared files (and their errors, which name file and line), the
# container endpoint and IMDSv2 played by tests/lib/fakemeta.py on loopback,
# renewal ahead of expiry, and the order in which the providers are asked.
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/meta.sh
. "$KT_LIB/meta.sh"
need_built "$KT_CREDS"

# No long waits for an instance metadata service that is not there.
KC_OPTS=(--imds-timeout-ms 1000)

now=$(date +%s)

# --- environment ----------------------------------------------------------------
kc env
expect_ok env
expect_eq "env: source" environment "$(field env 'd["source"]')"
expect_eq "env: key id" AKIDKEYTURNTEST "$(field env 'd["access_key_id"]')"
expect_eq "env: no session token" false "$(field env 'd["has_session_token"]')"
expect_eq "env: static credentials do not expire" 0 "$(field env 'd["expiration"]')"

AWS_SESSION_TOKEN=kt-session-token kc env-token
expect_eq "env: session token seen" true "$(field env-token 'd["has_session_token"]')"

env -u AWS_SECRET_ACCESS_KEY "$KT_CREDS" >"$T/env-half.out" 2>"$T/env-half.err"
KC_RC=$?
expect_fail env-half config AWS_SECRET_ACCESS_KEY

unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY

# --- shared files ---------------------------------------------------------------
write_profiles() {
	cat >"$AWS_SHARED_CREDENTIALS_FILE" <<-EOF
		# keyturn test credentials
		[default]
		aws_access_key_id = AKIDPROFDEFAULT
		aws_secret_access_key = profsecret-default ; inline comment

		[dev]
		aws_access_key_id = AKIDPROFDEV
		aws_secret_access_key = profsecret-dev
		aws_session_token = profsession-dev
	EOF
	cat >"$AWS_CONFIG_FILE" <<-EOF
		[default]
		region = us-east-1
		s3 =
		  max_concurrent_requests = 10
		[profile cfg]
		aws_access_key_id = AKIDPROFCFG
		aws_secret_access_key = profsecret-cfg
	EOF
}
write_profiles

kc prof
expect_ok prof
expect_eq "profile: source" profile "$(field prof 'd["source"]')"
expect_eq "profile: default profile" AKIDPROFDEFAULT "$(field prof 'd["access_key_id"]')"

AWS_PROFILE=dev kc prof-dev
expect_eq "profile: AWS_PROFILE=dev" AKIDPROFDEV "$(field prof-dev 'd["access_key_id"]')"
expect_eq "profile: dev has a session token" true "$(field prof-dev 'd["has_session_token"]')"

AWS_PROFILE=cfg kc prof-cfg
expect_eq "profile: keys from the config file" AKIDPROFCFG "$(field prof-cfg 'd["access_key_id"]')"

AWS_PROFILE=ghost kc prof-ghost
expect_fail prof-ghost config "'ghost'"

printf '[default]\naws_access_key_id = AKIDX\nthis is not a setting\n' >"$T/bad-credentials"
AWS_SHARED_CREDENTIALS_FILE=$T/bad-credentials kc prof-bad
expect_fail prof-bad config "$T/bad-credentials:3: expected 'key = value' or '[section]'"

printf '[default]\nregion = x\n[profile broken\n' >"$T/bad-config"
AWS_CONFIG_FILE=$T/bad-config kc prof-badcfg
expect_fail prof-badcfg config "$T/bad-config:3:"

printf '[default]\naws_access_key_id = AKIDHALF\n' >"$T/half-credentials"
AWS_SHARED_CREDENTIALS_FILE=$T/half-credentials kc prof-half
expect_fail prof-half config "$T/half-credentials:2: profile 'default' has aws_access_key_id but no aws_secret_access_key"

rm -f "$AWS_SHARED_CREDENTIALS_FILE" "$AWS_CONFIG_FILE"

# --- container endpoint ---------------------------------------------------------
start_fakemeta --auth-token kt-container-auth --region eu-west-3
export AWS_CONTAINER_CREDENTIALS_FULL_URI="$META_URL/creds"

AWS_CONTAINER_AUTHORIZATION_TOKEN=kt-container-auth kc cont
expect_ok cont
expect_eq "container: source" container "$(field cont 'd["source"]')"
expect_eq "container: session token" true "$(field cont 'd["has_session_token"]')"
check "container: expiration in the future" test "$(field cont 'd["expiration"]')" -gt "$now"
expect_eq "container: Authorization header seen" true "$(mstat container_auth_seen)"

printf 'kt-container-auth\n' >"$T/auth-token"
AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=$T/auth-token AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong \
	kc cont-file
expect_eq "container: token file wins over the variable" container "$(field cont-file 'd["source"]')"

AWS_CONTAINER_AUTHORIZATION_TOKEN=wrong kc cont-denied
expect_fail cont-denied access_denied "$META_URL/creds answered 401"

reset_stats
AWS_CONTAINER_AUTHORIZATION_TOKEN=kt-container-auth \
	AWS_CONTAINER_CREDENTIALS_FULL_URI=http://192.0.2.10/creds kc cont-remote
expect_fail cont-remote config "refused"
AWS_CONTAINER_CREDENTIALS_FULL_URI="http://127.0.0.1@192.0.2.10:$META_PORT/creds" kc cont-userinfo
expect_fail cont-userinfo config "refused"
expect_eq "container: nothing sent for a refused URL" 0 "$(mstat container)"

AWS_CONTAINER_AUTHORIZATION_TOKEN=kt-container-auth \
	AWS_CONTAINER_CREDENTIALS_FULL_URI="http://localhost:$META_PORT/creds" kc cont-localhost
expect_eq "container: http://localhost is allowed" container "$(field cont-localhost 'd["source"]')"

mode '{"container_status": 500}'
AWS_CONTAINER_AUTHORIZATION_TOKEN=kt-container-auth kc cont-500
expect_fail cont-500 server "answered 500"
mode '{"container_status": 0}'

unset AWS_CONTAINER_CREDENTIALS_FULL_URI

# --- instance metadata (IMDSv2) -----------------------------------------------------
unset AWS_EC2_METADATA_DISABLED
export AWS_EC2_METADATA_SERVICE_ENDPOINT="$META_URL"

reset_stats
kc imds
expect_ok imds
expect_eq "imds: source" imds "$(field imds 'd["source"]')"
expect_eq "imds: session token" true "$(field imds 'd["has_session_token"]')"
check "imds: expiration in the future" test "$(field imds 'd["expiration"]')" -gt "$now"
expect_eq "imds: one token PUT" 1 "$(mstat token_put)"
expect_eq "imds: token TTL header" 21600 "$(mstat last_ttl)"
expect_eq "imds: role listed once" 1 "$(mstat role_list)"
expect_eq "imds: credentials fetched once" 1 "$(mstat role_creds)"
expect_eq "imds: no tokenless (IMDSv1) request" 0 "$(mstat v1_get)"

# Credentials valid for an hour are cached: three lookups, one fetch.
reset_stats
kc imds-cached --repeat 3
expect_ok imds-cached
expect_eq "imds: cached credentials reused" 1 "$(mstat role_creds)"
expect_eq "imds: same key id on the third lookup" "$(field imds-cached 'd["access_key_id"]' 1)" \
	"$(field imds-cached 'd["access_key_id"]' 3)"

# Credentials that expire within the refresh-ahead window are renewed (here
# on every lookup, the renewal interval being 1 s), and the session token is
# reused meanwhile. 065-creds-odd checks the default interval.
mode '{"expire_s": 120}'
reset_stats
kc imds-renew --repeat 3 --sleep-ms 1100 --renew-interval 1 --refresh-ahead 300
expect_ok imds-renew
expect_eq "imds: renewed ahead of expiry (3 fetches)" 3 "$(mstat role_creds)"
expect_eq "imds: the token is reused across renewals" 1 "$(mstat token_put)"
check "imds: a renewal brings a new key id" test \
	"$(field imds-renew 'd["access_key_id"]' 1)" != "$(field imds-renew 'd["access_key_id"]' 3)"
kc imds-norenew --repeat 3 --refresh-ahead 60
expect_eq "imds: no renewal outside the window" \
	"$(field imds-norenew 'd["access_key_id"]' 1)" "$(field imds-norenew 'd["access_key_id"]' 3)"

# A renewal that fails while the cached credentials are still valid keeps
# them in service (with a warning), instead of failing the caller.
reset_stats
"$KT_CREDS" --repeat 2 --sleep-ms 2500 --renew-interval 1 --refresh-ahead 300 >"$T/imds-keep.out" 2>"$T/imds-keep.err" &
keep_pid=$!
wait_until 5 test -s "$T/imds-keep.out"
mode '{"creds_status": 500}'
wait "$keep_pid"
KC_RC=$?
mode '{"creds_status": 0}'
expect_ok imds-keep
expect_eq "imds: failed renewal keeps the cached key" \
	"$(field imds-keep 'd["access_key_id"]' 1)" "$(field imds-keep 'd["access_key_id"]' 2)"
expect_eq "imds: the renewal was tried" 2 "$(mstat role_creds)"
check "imds: the failed renewal is logged" grep -q "renewing imds credentials failed" "$T/imds-keep.err"

# A token the service no longer accepts (its TTL is shorter than the client
# assumed) is answered 401; the client takes a new token once and goes on.
mode '{"token_ttl_cap": 1}'
reset_stats
kc imds-stale --repeat 2 --sleep-ms 1500 --renew-interval 1 --refresh-ahead 300
expect_ok imds-stale
expect_eq "imds: stale token answered 401" 1 "$(mstat stale_token)"
expect_eq "imds: a new token after the 401" 2 "$(mstat token_put)"
expect_eq "imds: both lookups fetched" 2 "$(mstat role_creds)"
mode '{"token_ttl_cap": 0}'
meta POST /__ctl/expire-tokens >/dev/null

mode '{"no_role": true}'
kc imds-norole
expect_fail imds-norole no_credentials "no IAM role"
mode '{"no_role": false}'

# No IMDSv1 unless asked for: a refused token PUT is an error.
mode '{"token_put_status": 403, "v1_allowed": true}'
reset_stats
kc imds-nov1
expect_fail imds-nov1 access_denied "IMDSv1 fallback is off"
expect_eq "imds: no tokenless request without the flag" 0 "$(mstat v1_get)"
kc imds-v1 --imds-v1-fallback
expect_ok imds-v1
expect_eq "imds: IMDSv1 with --imds-v1-fallback" imds "$(field imds-v1 'd["source"]')"
expect_eq "imds: tokenless requests with the flag" 2 "$(mstat v1_get)"
mode '{"token_put_status": 0, "v1_allowed": false}'

kc imds-region --region-from-imds
expect_eq "imds: region" eu-west-3 "$(field imds-region 'd.get("region")')"

reset_stats
AWS_EC2_METADATA_DISABLED=true kc imds-disabled
expect_fail imds-disabled no_credentials "AWS_EC2_METADATA_DISABLED"
expect_eq "imds: nothing asked when disabled" 0 "$(mstat token_put)"

dead_port=$(free_port)
AWS_EC2_METADATA_SERVICE_ENDPOINT="http://127.0.0.1:$dead_port" kc imds-absent
expect_fail imds-absent no_credentials "instance metadata"

# --- precedence: environment, shared files, container, instance metadata -----------
export AWS_ACCESS_KEY_ID=AKIDKEYTURNTEST AWS_SECRET_ACCESS_KEY=keyturn-test-secret-key
export AWS_CONTAINER_CREDENTIALS_FULL_URI="$META_URL/creds"
export AWS_CONTAINER_AUTHORIZATION_TOKEN=kt-container-auth
write_profiles
kc prec-1
expect_eq "precedence: environment first" environment "$(field prec-1 'd["source"]')"
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
kc prec-2
expect_eq "precedence: then the shared files" profile "$(field prec-2 'd["source"]')"
rm -f "$AWS_SHARED_CREDENTIALS_FILE" "$AWS_CONFIG_FILE"
kc prec-3
expect_eq "precedence: then the container endpoint" container "$(field prec-3 'd["source"]')"
unset AWS_CONTAINER_CREDENTIALS_FULL_URI
kc prec-4
expect_eq "precedence: then instance metadata" imds "$(field prec-4 'd["source"]')"

# --- hygiene ------------------------------------------------------------------------
no_secret_output "no secret key, token or authorization in any output" \
	keyturn-test-secret-key profsecret profsession kt-container-auth
no_sanitizer_report "no sanitizer report"

done_testing
