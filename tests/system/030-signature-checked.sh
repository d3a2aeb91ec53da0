#!/usr/bin/env bash
# System test: moto checking SigV4 signatures and IAM policies (it does so only
# after INITIAL_NO_AUTH_ACTION_COUNT free calls, and only for an IAM user's
# key). The client must be accepted with the right key and refused, once and
# without retrying, with a wrong key, without permission or with a tampered body.
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"

if [ ! -x "$KT_AWS" ]; then
	echo "1..0 # SKIP $KT_AWS is not built"
	exit 0
fi


# start_proxy UPSTREAM [ARGS...]: the fault proxy on a port of its choosing;
# sets PROXY_PORT and PROXY_URL. It writes the port file once it listens.
start_proxy() {
	local pf="$T/proxy.port" i
	"$PYTHON3" "$KT_LIB/faultproxy.py" --upstream "$1" --port-file "$pf" "${@:2}" \
		>"$T/proxy.out" 2>"$T/proxy.log" &
	kt_pids+=("$!")
	for ((i = 0; i < 100; i++)); do
		[ -s "$pf" ] && break
		sleep 0.1
	done
	[ -s "$pf" ] || bail "faultproxy did not start: $(cat "$T/proxy.log")"
	PROXY_PORT=$(cat "$pf")
	PROXY_URL="http://127.0.0.1:$PROXY_PORT"
}

# proxy METHOD PATH [JSON]: one call to the proxy's control endpoints, made
# with bash's /dev/tcp; prints the answer's body, fails unless it was a 200.
proxy() {
	local body=${3:-} line status
	exec 9<>"/dev/tcp/127.0.0.1/$PROXY_PORT" || return 1
	printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"$1" "$2" "${#body}" "$body" >&9
	IFS= read -r status <&9
	while IFS= read -r line <&9 && [ "$line" != $'\r' ]; do :; done
	cat <&9
	exec 9<&-
	[[ $status == "HTTP/1.1 200 "* ]]
}

# plan JSON: forgets earlier counts and plans, then sets this one.
plan() {
	proxy POST /__proxy/reset >/dev/null && proxy POST /__proxy/plan "$1" >/dev/null ||
		bail "faultproxy refused the plan $1"
}

# requests: how many AWS requests reached the proxy since the last plan;
# the whole statistics are kept in $T/stats.json.
requests() {
	proxy GET /__proxy/stats >"$T/stats.json" || return 1
	[[ $(<"$T/stats.json") =~ \"requests\":\ *([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

# kt NAME URL ARGS...: kt-aws against URL; leaves $T/NAME.out, $T/NAME.err and
# KT_RC and reports whether it ended normally (exit 0/1, no sanitizer report).
kt() {
	local name=$1 url=$2
	shift 2
	"$KT_AWS" --endpoint "$url" --retry-base-ms 10 --timeout 5000 "$@" \
		>"$T/$name.out" 2>"$T/$name.err"
	KT_RC=$?
	if [ "$KT_RC" -le 1 ] &&
		! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' "$T/$name.err"; then
		ok "$name: kt-aws ended cleanly (exit $KT_RC)"
	else
		not_ok "$name: kt-aws ended cleanly (exit $KT_RC)"
		sed 's/^/#   /' "$T/$name.err" | head -n 40
	fi
}

outcome() {
	if [ "$KT_RC" -eq 0 ]; then
		echo ok
	else
		json_get "$T/$1.out" 'd["error"]' 2>/dev/null || echo "(no error object)"
	fi
}

kt_attempts() { sed -n 's/^kt-aws: attempts=//p' "$T/$1.err" | tail -n 1; }

# refused NAME: the call failed as a refusal of the caller (auth or
# access_denied), with moto's 403, after exactly one request.
refused() {
	local got
	got=$(outcome "$1")
	case $got in
	auth | access_denied) ok "$1: refused ($got)" ;;
	*)
		not_ok "$1: refused (got $got)"
		sed 's/^/#   /' "$T/$1.out"
		;;
	esac
	expect_eq "$1: HTTP status" 403 "$(json_get "$T/$1.out" 'd.get("http_status")' 2>/dev/null)"
	expect_eq "$1: not retried" 1 "$(kt_attempts "$1")"
}

# Moto lets the first NOAUTH calls through unchecked, whatever their key.
# Exactly these four setup calls use them up; everything after is checked.
NOAUTH=4
start_moto INITIAL_NO_AUTH_ACTION_COUNT=$NOAUTH
policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","iam:CreateUser","iam:CreateAccessKey"],"Resource":"*"}]}'
aws_cli iam create-user --user-name kt-reader >/dev/null &&                     # 1
	aws_cli iam create-access-key --user-name kt-reader >"$T/reader.json" &&     # 2
	aws_cli iam put-user-policy --user-name kt-reader --policy-name sm \
		--policy-document "$policy" &&                                        # 3
	aws_cli secretsmanager create-secret --name app/db \
		--secret-string sig-checked-value >/dev/null ||                       # 4
	bail "setup calls against moto failed"
READER_ID=$(json_get "$T/reader.json" 'd["AccessKey"]["AccessKeyId"]')
READER_SECRET=$(json_get "$T/reader.json" 'd["AccessKey"]["SecretAccessKey"]')

# The free calls are used up: the made-up key of common.sh is now refused,
# which shows that moto really checks from here on.
if aws_cli secretsmanager describe-secret --secret-id app/db >/dev/null 2>&1; then
	bail "moto does not check signatures (INITIAL_NO_AUTH_ACTION_COUNT miscounted?)"
fi
ok "moto refuses an unknown key after the $NOAUTH free calls"

# A user without any policy, made with the reader's (checked) key.
export AWS_ACCESS_KEY_ID=$READER_ID AWS_SECRET_ACCESS_KEY=$READER_SECRET
aws_cli iam create-user --user-name kt-nobody >/dev/null &&
	aws_cli iam create-access-key --user-name kt-nobody >"$T/nobody.json" ||
	bail "could not create the user without permissions"

# --- the right key -----------------------------------------------------------
kt right-key "$MOTO_URL" get-secret-value app/db
expect_eq "right-key: accepted" ok "$(outcome right-key)"
expect_eq "right-key: value" sig-checked-value "$(json_get "$T/right-key.out" 'd.get("string")')"
expect_eq "right-key: one request" 1 "$(kt_attempts right-key)"
kt right-key-describe "$MOTO_URL" describe-secret app/db
expect_eq "right-key-describe: accepted" ok "$(outcome right-key-describe)"

# --- wrong keys and no permission ----------------------------------------------
AWS_SECRET_ACCESS_KEY=not-the-secret-key kt wrong-secret "$MOTO_URL" get-secret-value app/db
refused wrong-secret
expect_eq "wrong-secret: error" auth "$(outcome wrong-secret)"
AWS_ACCESS_KEY_ID=AKIDNOSUCHKEY0000000 kt unknown-key "$MOTO_URL" get-secret-value app/db
refused unknown-key
AWS_ACCESS_KEY_ID=$(json_get "$T/nobody.json" 'd["AccessKey"]["AccessKeyId"]') \
	AWS_SECRET_ACCESS_KEY=$(json_get "$T/nobody.json" 'd["AccessKey"]["SecretAccessKey"]') \
	kt no-permission "$MOTO_URL" get-secret-value app/db
refused no-permission
expect_eq "no-permission: error" access_denied "$(outcome no-permission)"
# Even when more attempts are allowed, a refusal is final.
AWS_SECRET_ACCESS_KEY=not-the-secret-key kt wrong-secret-5 "$MOTO_URL" --max-attempts 5 \
	get-secret-value app/db
refused wrong-secret-5

# --- through the proxy: untouched it passes, tampered it is refused --------------
start_proxy "$MOTO_URL"
plan '{"actions":[]}'
kt proxied "$PROXY_URL" get-secret-value app/db
expect_eq "proxied: accepted (the proxy keeps Host and body intact)" ok "$(outcome proxied)"
expect_eq "proxied: one request" 1 "$(requests)"

plan '{"default":"tamper"}'
kt tampered "$PROXY_URL" --max-attempts 5 get-secret-value app/db
refused tampered
expect_eq "tampered: error" auth "$(outcome tampered)"
expect_eq "tampered: moto found the signature wrong" SignatureDoesNotMatch \
	"$(json_get "$T/tampered.out" 'd.get("type")')"
expect_eq "tampered: one request reached the proxy" 1 "$(requests)"

# A tampered request once, then a clean one: the next call works again.
plan '{"actions":["tamper"]}'
kt tampered-once "$PROXY_URL" get-secret-value app/db
refused tampered-once
kt after-tamper "$PROXY_URL" get-secret-value app/db
expect_eq "after-tamper: accepted" ok "$(outcome after-tamper)"

done_testing
