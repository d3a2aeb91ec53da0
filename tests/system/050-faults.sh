#!/usr/bin/env bash
# System test: the AWS client's "standard" retries against faults that moto
# cannot make, injected by tests/lib/faultproxy.py placed in front of it:
# which faults are retried, how many requests each costs, and that none crashes.
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/proxy.sh
. "$KT_LIB/proxy.sh"
need_built "$KT_AWS"

# kt runs go through the proxy with quick retries and short timeouts.
KT_AWS_OPTS=(--retry-base-ms 10 --retry-cap-ms 100 --connect-timeout 1000 --timeout 3000)

# scenario NAME PLAN OUTCOME REQUESTS [ENV=V...] -- KT-AWS ARGS: runs one
# fault plan and checks the result and how many requests it cost.
scenario() {
	local name=$1 p=$2 want=$3 count=$4 envs=() e
	shift 4
	while [ $# -gt 0 ] && [ "$1" != "--" ]; do
		envs+=("$1")
		shift
	done
	shift
	plan "$p"
	if [ ${#envs[@]} -gt 0 ]; then
		export "${envs[@]}"
	fi
	kt "$name" "$PROXY_URL" "$@"
	for e in "${envs[@]}"; do
		unset "${e%%=*}"
	done
	expect_eq "$name: outcome" "$want" "$(outcome "$name")"
	expect_eq "$name: requests seen by the proxy" "$count" "$(requests)"
	expect_eq "$name: attempts counted by kt-aws" "$count" "$(kt_attempts "$name")"
}

start_moto
start_proxy "$MOTO_URL"
aws_cli secretsmanager create-secret --name app/db --secret-string fault-test-value \
	>/dev/null || bail "could not create the test secret in moto"

GET=(get-secret-value app/db)

# --- the proxy itself ----------------------------------------------------------
scenario pass '{"actions":[]}' ok 1 -- "${GET[@]}"
expect_eq "pass: the value came through" fault-test-value "$(json_get "$T/pass.out" 'd["string"]')"

# --- throttling ----------------------------------------------------------------
scenario throttle-2 '{"actions":["throttle","throttle"]}' ok 3 -- "${GET[@]}"
expect_eq "throttle-2: value after the retries" fault-test-value \
	"$(json_get "$T/throttle-2.out" 'd["string"]')"
scenario throttle-always '{"default":"throttle"}' throttled 3 -- "${GET[@]}"
expect_eq "throttle-always: error type" ThrottlingException \
	"$(json_get "$T/throttle-always.out" 'd["type"]')"
scenario throttle-env5 '{"default":"throttle"}' throttled 5 AWS_MAX_ATTEMPTS=5 -- "${GET[@]}"
scenario throttle-opt2 '{"default":"throttle"}' throttled 2 -- --max-attempts 2 "${GET[@]}"
scenario throttle-opt1 '{"default":"throttle"}' throttled 1 -- --max-attempts 1 "${GET[@]}"
# The option wins over the environment.
scenario throttle-opt-env '{"default":"throttle"}' throttled 4 AWS_MAX_ATTEMPTS=2 -- \
	--max-attempts 4 "${GET[@]}"
scenario bad-env-attempts '{"actions":[]}' config 0 AWS_MAX_ATTEMPTS=many -- "${GET[@]}"
scenario throttle-describe '{"actions":["throttle"]}' ok 2 -- describe-secret app/db
expect_eq "throttle-describe: both requests were DescribeSecret" 2 \
	"$(json_get "$T/stats.json" 'd["targets"].get("secretsmanager.DescribeSecret")')"

# --- 5xx -----------------------------------------------------------------------
scenario 500-twice '{"actions":[{"status":500},{"status":500}]}' ok 3 -- "${GET[@]}"
scenario 503-once '{"actions":[{"status":503}]}' ok 2 -- "${GET[@]}"
scenario 500-always '{"default":{"status":500}}' server 3 -- "${GET[@]}"
scenario 503-always '{"default":{"status":503}}' server 3 -- "${GET[@]}"
scenario 503-env5 '{"default":{"status":503}}' server 5 AWS_MAX_ATTEMPTS=5 -- "${GET[@]}"
expect_eq "503-always: HTTP status reported" 503 \
	"$(json_get "$T/503-always.out" 'd["http_status"]')"

# --- slow answers: each attempt times out -------------------------------------
scenario delay-once '{"actions":[{"delay":1.5}]}' ok 2 -- --timeout 500 "${GET[@]}"
scenario delay-always '{"default":{"delay":1.5}}' timeout 3 -- --timeout 500 "${GET[@]}"

# --- cut connections -----------------------------------------------------------
scenario reset-once '{"actions":["reset"]}' ok 2 -- "${GET[@]}"
scenario reset-always '{"default":"reset"}' transport 3 -- "${GET[@]}"
scenario truncate-once '{"actions":["truncate"]}' ok 2 -- "${GET[@]}"
scenario truncate-always '{"default":"truncate"}' transport 3 -- "${GET[@]}"

# --- answers that are wrong: never retried -------------------------------------
scenario malformed '{"default":"malformed"}' malformed 1 -- "${GET[@]}"
scenario oversize '{"default":{"oversize":300000}}' malformed 1 -- \
	--max-body 100000 "${GET[@]}"
check "oversize: the message says the answer was too large" \
	grep -qiE 'large|size|big|limit' "$T/oversize.out"
scenario oversize-huge '{"default":{"oversize":20000000}}' malformed 1 -- "${GET[@]}"
# Just under the limit, a big answer is still read whole.
scenario big-but-allowed '{"actions":[{"oversize":90000}]}' ok 1 -- \
	--max-body 100000 "${GET[@]}"
expect_eq "big-but-allowed: the whole value arrived" true \
	"$(json_get "$T/big-but-allowed.out" 'len(d["string"]) > 89000')"

# --- clock skew: corrected from the Date header, then signed again --------------
# dates_apart: seconds between the last two X-Amz-Date values the proxy saw.
dates_apart() {
	json_get "$T/stats.json" '(lambda f: int((f(d["amz_dates"][-1]) - f(d["amz_dates"][-2])).total_seconds()))(lambda s: __import__("datetime").datetime.strptime(s, "%Y%m%dT%H%M%SZ"))'
}
within() { [ "$1" -ge $(($2 - 5)) ] && [ "$1" -le $(($2 + 5)) ]; }

scenario skew-ahead '{"actions":[{"skew":3600}]}' ok 2 -- "${GET[@]}"
apart=$(dates_apart)
check "skew-ahead: the retry was signed ~3600 s later (saw $apart)" within "$apart" 3600
scenario skew-behind '{"actions":[{"skew":-1800}]}' ok 2 -- "${GET[@]}"
apart=$(dates_apart)
check "skew-behind: the retry was signed ~1800 s earlier (saw $apart)" within "$apart" -1800

# A server whose clock keeps moving away is retried like any transient fault,
# and no more.
scenario skew-always '{"default":{"skew":7200}}' clock_skew 3 -- "${GET[@]}"

# --- AWS's own refusals are final ------------------------------------------------
scenario not-found '{"actions":[]}' not_found 1 -- get-secret-value no/such/secret
# Moto says 404 where AWS says 400; the code comes from __type all the same.
expect_eq "not-found: type" ResourceNotFoundException "$(json_get "$T/not-found.out" 'd["type"]')"

# A mixed run: every kind of transient fault once, then success. The reset
# comes first, on a fresh connection (see below for a reused one).
scenario mixed '{"actions":["reset","throttle",{"status":503},"truncate"]}' ok 5 -- \
	--max-attempts 5 "${GET[@]}"

# A reset on a connection kept from an earlier answer: libcurl itself sends
# the request again once on a new connection, unseen by the retry policy, so
# the proxy may count one request more than kt-aws. Only the outcome is fixed.
plan '{"actions":["throttle","reset"]}'
kt reset-reused "$PROXY_URL" "${GET[@]}"
expect_eq "reset-reused: outcome" ok "$(outcome reset-reused)"
diag "reset-reused: proxy saw $(requests) requests, kt-aws counted $(kt_attempts reset-reused)"

done_testing
