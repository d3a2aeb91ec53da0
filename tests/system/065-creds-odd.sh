#!/usr/bin/env bash
# System test: odd answers from the metadata credential providers, played by
# tests/lib/fakemeta.py and read through tests/tools/kt-creds: an IMDS role
# name longer than IAM allows, credentials that expire soon (renewed at most
# once per renewal interval, not on every lookup), credentials without an
# Expiration or with one in year 9999 (fetched again periodically), and
# expired credentials that cannot be renewed (one warning per expiry).
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/meta.sh
. "$KT_LIB/meta.sh"
need_built "$KT_CREDS"

KC_OPTS=(--imds-timeout-ms 1000)
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_EC2_METADATA_DISABLED
rm -f "$AWS_SHARED_CREDENTIALS_FILE" "$AWS_CONFIG_FILE"

start_fakemeta --auth-token kt-container-auth
export AWS_EC2_METADATA_SERVICE_ENDPOINT="$META_URL"

# --- role names -----------------------------------------------------------------
# IAM role names have 1 to 64 characters (CreateRole, RoleName). A longer name
# in the listing is refused with a clear error, never cut to fit.
role64=$(printf 'r%.0s' $(seq 64))
role65=$(printf 'r%.0s' $(seq 65))
role129=$(printf 'x%.0s' $(seq 129))

mode "{\"role\": \"$role129\"}"
reset_stats
kc role-129
expect_fail role-129 malformed "an IAM role of 129 characters, more than the 64 IAM allows"
expect_eq "role 129: no credentials asked for under any name" 0 "$(mstat role_creds)"

mode "{\"role\": \"$role65\"}"
kc role-65
expect_fail role-65 malformed "an IAM role of 65 characters"

mode "{\"role\": \"$role64\"}"
reset_stats
kc role-64
expect_ok role-64
expect_eq "role 64: credentials of the full name" 1 "$(mstat role_creds)"
mode '{"role": "kt-test-role"}'

# --- near expiry ---------------------------------------------------------------------
# Every answer expires in 120 s, inside the 300 s refresh window. 31 lookups in
# about 3 s: the first fetches, the others use those credentials (they work for
# 2 minutes more) instead of fetching again each time.
mode '{"expire_s": 120}'
reset_stats
kc near-31 --repeat 31 --sleep-ms 100
expect_ok near-31
near=$(mstat role_creds)
diag "near-expiry credentials, default renewal interval: $near fetches for 31 lookups"
check "near expiry: at most 2 fetches for 31 lookups (got $near)" test "$near" -le 2
check "near expiry: still fetched once" test "$near" -ge 1
expect_eq "near expiry: the same key for the 1st and the 31st lookup" \
	"$(field near-31 'd["access_key_id"]' 1)" "$(field near-31 'd["access_key_id"]' 31)"

# With a 1 s renewal interval the same 31 lookups renew about once a second.
reset_stats
kc near-31-fast --repeat 31 --sleep-ms 100 --renew-interval 1
expect_ok near-31-fast
fast=$(mstat role_creds)
diag "near-expiry credentials, 1 s renewal interval: $fast fetches for 31 lookups"
check "near expiry, 1 s interval: renewed, but not per lookup (2..8, got $fast)" \
	test "$fast" -ge 2 -a "$fast" -le 8
mode '{"expire_s": 3600}'

# --- no Expiration, or year 9999 ------------------------------------------------------
# Fetched again every --no-expiry-refetch seconds (900 by default), not kept
# for the life of the process; 5 lookups 0.6 s apart with a 1 s period.
for kind in none 9999; do
	if [ "$kind" = none ]; then
		mode '{"no_expiration": true, "expiration": ""}'
	else
		mode '{"no_expiration": false, "expiration": "9999-12-31T23:59:59Z"}'
	fi
	reset_stats
	kc "noexp-$kind" --repeat 5 --sleep-ms 600 --no-expiry-refetch 1 --renew-interval 1
	expect_ok "noexp-$kind"
	n=$(mstat role_creds)
	diag "IMDS credentials with expiration $kind: $n fetches for 5 lookups over 2.4 s"
	check "imds, expiration $kind: fetched again periodically (2..4 fetches, got $n)" \
		test "$n" -ge 2 -a "$n" -le 4
	check "imds, expiration $kind: a new key after the period" test \
		"$(field "noexp-$kind" 'd["access_key_id"]' 1)" != \
		"$(field "noexp-$kind" 'd["access_key_id"]' 5)"
	# With the default period (15 min) the same lookups fetch once.
	reset_stats
	kc "noexp-$kind-dflt" --repeat 5 --sleep-ms 100
	expect_eq "imds, expiration $kind: default period, one fetch" 1 "$(mstat role_creds)"
done

# The container endpoint is treated the same way.
mode '{"no_expiration": true, "expiration": ""}'
reset_stats
AWS_CONTAINER_CREDENTIALS_FULL_URI="$META_URL/creds" AWS_CONTAINER_AUTHORIZATION_TOKEN=kt-container-auth \
	kc noexp-container --repeat 5 --sleep-ms 600 --no-expiry-refetch 1 --renew-interval 1
expect_ok noexp-container
n=$(mstat container)
diag "container credentials without Expiration: $n fetches for 5 lookups over 2.4 s"
check "container, no Expiration: fetched again periodically (2..4, got $n)" \
	test "$n" -ge 2 -a "$n" -le 4
mode '{"no_expiration": false, "expiration": ""}'

# --- expired and not renewable ---------------------------------------------------------
# Credentials valid for 2 s, then every fetch fails: lookups go on for about
# 4 s (renewal interval 1 s). The loss is logged once for that expiry, not
# once per lookup; lookups fail meanwhile with the provider's error.
mode '{"expire_s": 2}'
reset_stats
"$KT_CREDS" "${KC_OPTS[@]}" --repeat 40 --sleep-ms 100 --renew-interval 1 --keep-going \
	>"$T/expired.out" 2>"$T/expired.err" &
exp_pid=$!
wait_until 5 test -s "$T/expired.out"
mode '{"creds_status": 500}'
wait "$exp_pid"
KC_RC=$?
mode '{"creds_status": 0, "expire_s": 3600}'
warned=$(grep -c "cannot be renewed" "$T/expired.err")
failed=$(grep -c '"error"' "$T/expired.out")
fetches=$(mstat role_creds)
diag "expired credentials: $warned warning(s), $failed failed lookups of 40, $fetches fetches"
expect_eq "expired: exactly one warning for the expiry" 1 "$warned"
check "expired: lookups failed after the expiry (got $failed)" test "$failed" -ge 10
check "expired: fetches rate-limited, not one per lookup (got $fetches)" test "$fetches" -le 8
check "expired: the failure names the metadata answer" grep -q "answered 500" "$T/expired.out"

# --- hygiene ------------------------------------------------------------------------------
no_secret_output "no secret key, token or authorization in any output" kt-container-auth
no_sanitizer_report "no sanitizer report"

done_testing
