#!/usr/bin/env bash
# System test: moto checking SigV4 signatures and IAM policies (it does so only
# after INITIAL_NO_AUTH_ACTION_COUNT free calls, and only for an IAM user's
# key). The client must be accepted with the right key and refused, once and
# without retrying, with a wrong key, without permission or with a tampered body.
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/proxy.sh
. "$KT_LIB/proxy.sh"
need_built "$KT_AWS"

KT_AWS_OPTS=(--retry-base-ms 10 --timeout 5000)

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
