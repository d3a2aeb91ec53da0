#!/usr/bin/env bash
# System test: the SQS operations of keyturn's AWS client (ReceiveMessage and
# DeleteMessageBatch over the AWS JSON 1.0 protocol) against moto, cross-checked
# with the real AWS CLI: the request on the wire, receiving and deleting,
# invalid receipt handles, bad queue URLs, retries through the fault proxy,
# and moto checking the SigV4 signature and the IAM action (sqs:*).
KT_SRCDIR=${KT_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
. "$KT_SRCDIR/tests/lib/common.sh"
# shellcheck source=tests/lib/proxy.sh
. "$KT_LIB/proxy.sh"
need_built "$KT_AWS"
# common.sh keeps AWS tools away from real endpoints; this one is SQS's own.
unset AWS_ENDPOINT_URL_SQS

# The number of checks below (the plan is printed at the end).
PLANNED=75

# ksqs NAME ARGS...: kt-aws with quick retries and no --endpoint, so that the
# sqs- operations find theirs in the queue URL as the daemon does. Leaves
# $T/NAME.out, $T/NAME.err and KT_RC, and reports as a test whether it ended
# normally: exit 0 or 1 (no signal), no sanitizer report.
KT_AWS_OPTS=(--retry-base-ms 10 --retry-cap-ms 100)
ksqs() {
	local name=$1
	shift
	kt "$name" - "$@"
}

# msgs NAME EXPR: a value computed (Python, on `m`, the list of message
# objects) from what sqs-receive printed in kt NAME, one JSON line each.
msgs() {
	"$PYTHON3" -c 'import json,sys; m=[json.loads(l) for l in open(sys.argv[1]) if l.strip()]; print(eval(sys.argv[2]))' \
		"$T/$1.out" "$2"
}

# send QUEUE_URL BODY: sends one message with the AWS CLI; prints its MessageId.
send() {
	aws_cli sqs send-message --queue-url "$1" --message-body "$2" --query MessageId --output text
}

# queue_counts QUEUE_URL: "visible in-flight", as the AWS CLI reads them.
queue_counts() {
	aws_cli sqs get-queue-attributes --queue-url "$1" --attribute-names All \
		--query 'Attributes.[ApproximateNumberOfMessages,ApproximateNumberOfMessagesNotVisible]' \
		--output text | tr '\t' ' '
}

# targets: the X-Amz-Target counts the proxy saw since the last plan (JSON).
targets() {
	requests >/dev/null && json_get "$T/stats.json" 'd["targets"]'
}

# --- the request on the wire ---------------------------------------------------
# A one-shot listener records what the client sends and answers an empty
# poll, so the protocol is checked without trusting any server's leniency.
"$PYTHON3" - "$T/capture.port" "$T/capture.json" >"$T/capture.log" 2>&1 <<'PY' &
import http.server, json, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with open(sys.argv[2] + ".tmp", "w") as f:
            json.dump({"path": self.path, "body": json.loads(body),
                       "headers": {k.lower(): v for k, v in self.headers.items()}}, f)
        os.rename(sys.argv[2] + ".tmp", sys.argv[2])
        out = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.0")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)
    def log_message(self, *a):
        pass
s = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
s.serve_forever()
PY
kt_pids+=("$!")
wait_until 10 test -s "$T/capture.port" || bail "the capture listener did not start: $(cat "$T/capture.log")"
CAPTURE_URL="http://127.0.0.1:$(cat "$T/capture.port")"
AWSQ=https://sqs.eu-west-1.amazonaws.com/123456789012/keyturn-web-1

ksqs wire --endpoint "$CAPTURE_URL" sqs-receive "$AWSQ" --max 3 --wait 2
expect_eq "wire: an empty poll is no message" "0 0" "$KT_RC $(msgs wire 'len(m)')"
expect_eq "wire: Content-Type is the JSON 1.0 protocol's" application/x-amz-json-1.0 \
	"$(json_get "$T/capture.json" 'd["headers"]["content-type"]')"
expect_eq "wire: X-Amz-Target" AmazonSQS.ReceiveMessage \
	"$(json_get "$T/capture.json" 'd["headers"]["x-amz-target"]')"
expect_eq "wire: POST to /" / "$(json_get "$T/capture.json" 'd["path"]')"
expect_eq "wire: the body names the queue, the count and the wait as JSON numbers" \
	"{\"MaxNumberOfMessages\": 3, \"QueueUrl\": \"$AWSQ\", \"WaitTimeSeconds\": 2}" \
	"$(json_get "$T/capture.json" 'json.dumps(d["body"], sort_keys=True)')"
check "wire: signed for sqs in the queue's region (eu-west-1)" \
	grep -q '/eu-west-1/sqs/aws4_request' <(json_get "$T/capture.json" 'd["headers"]["authorization"]')

# AWS_ENDPOINT_URL_SQS replaces the queue URL's host; the region stays the queue's.
rm -f "$T/capture.json"
AWS_ENDPOINT_URL_SQS=$CAPTURE_URL ksqs env-endpoint sqs-delete "$AWSQ" some-receipt
check "env-endpoint: AWS_ENDPOINT_URL_SQS took the request" test -s "$T/capture.json"
expect_eq "env-endpoint: X-Amz-Target" AmazonSQS.DeleteMessageBatch \
	"$(json_get "$T/capture.json" 'd["headers"]["x-amz-target"]' 2>/dev/null)"
expect_eq "env-endpoint: entries are numbered from 0" '[{"Id": "0", "ReceiptHandle": "some-receipt"}]' \
	"$(json_get "$T/capture.json" 'd["body"]["Entries"]' 2>/dev/null)"
# The listener's empty answer accounts for no entry: a malformed answer.
expect_eq "env-endpoint: an answer without the entries is malformed" malformed "$(outcome env-endpoint)"

# --- against moto ---------------------------------------------------------------
start_moto
Q=$(aws_cli sqs create-queue --queue-name keyturn-host-1 --query QueueUrl --output text) ||
	bail "could not create the queue in moto"
expect_eq "moto's queue URL names the host it was called with" \
	"$MOTO_URL/123456789012/keyturn-host-1" "$Q"

b1='{"source":"aws.secretsmanager","detail-type":"AWS API Call via CloudTrail","detail":{"eventName":"PutSecretValue"}}'
b2='naïve "quoted" \back\slash € and a tab:	end'
b3='plain'
ids=$(for b in "$b1" "$b2" "$b3"; do send "$Q" "$b"; done | LC_ALL=C sort | tr '\n' ' ')
check "the AWS CLI sent three messages" test "$(echo "$ids" | wc -w)" -eq 3

# MaxNumberOfMessages is read from the JSON body: 2 of the 3 come.
ksqs recv-2 sqs-receive "$Q" --max 2
expect_eq "recv-2: --max 2 gives two messages" "0 2" "$KT_RC $(msgs recv-2 'len(m)')"
ksqs recv-rest sqs-receive "$Q" --max 10 --wait 1
expect_eq "recv-rest: the third one follows" "0 1" "$KT_RC $(msgs recv-rest 'len(m)')"
cat "$T/recv-2.out" "$T/recv-rest.out" >"$T/all.out"
expect_eq "the MessageIds are those the AWS CLI sent" "$ids" \
	"$(msgs all '"".join(i + " " for i in sorted(x["id"] for x in m))')"
expect_eq "the bodies arrive byte for byte (JSON, quotes, UTF-8, tab)" \
	"$("$PYTHON3" -c 'import json,sys; print(json.dumps(sorted(sys.argv[1:])))' "$b1" "$b2" "$b3")" \
	"$(msgs all 'json.dumps(sorted(x["body"] for x in m))')"
expect_eq "the AWS CLI sees the three in flight" "0 3" "$(queue_counts "$Q")"

# A long poll of an empty queue ends with no message (after about a second).
ksqs empty-poll sqs-receive "$Q" --wait 1
expect_eq "empty-poll: no message, no error" "0 0" "$KT_RC $(msgs empty-poll 'len(m)')"
expect_eq "empty-poll: one request" 1 "$(kt_attempts empty-poll)"

# Delete the three, and an invalid receipt handle in the same batch.
mapfile -t receipts < <(msgs all '"\n".join(x["receipt"] for x in m)')
ksqs delete sqs-delete "$Q" "${receipts[@]}" not-a-receipt-handle
expect_eq "delete: three deleted, the invalid handle counted as failed" '0 {"deleted":3,"failed":1}' \
	"$KT_RC $(tr -d ' \n' <"$T/delete.out")"
expect_eq "delete: one request" 1 "$(kt_attempts delete)"
expect_eq "the queue is empty after the delete" "0 0" "$(queue_counts "$Q")"
ksqs delete-again sqs-delete "$Q" "${receipts[0]}x"
expect_eq "delete-again: a batch of only an invalid handle is no error" '0 {"deleted":0,"failed":1}' \
	"$KT_RC $(tr -d ' \n' <"$T/delete-again.out")"

# --- bad queue URLs and arguments -------------------------------------------------
ksqs no-queue sqs-receive "$MOTO_URL/123456789012/no-such-queue"
expect_eq "no-queue: a missing queue is not_found" not_found "$(outcome no-queue)"
check "no-queue: the message names the queue" \
	grep -q "$MOTO_URL/123456789012/no-such-queue" "$T/no-queue.out"
expect_eq "no-queue: not retried" 1 "$(kt_attempts no-queue)"
ksqs bad-url sqs-receive "$MOTO_URL/no-account/keyturn-host-1"
expect_eq "bad-url: a URL without /ACCOUNT/NAME is a configuration error" config "$(outcome bad-url)"
check "bad-url: the message names the URL and says what is wrong" \
	grep -q "$MOTO_URL/no-account/keyturn-host-1.*ACCOUNT/NAME" "$T/bad-url.out"
expect_eq "bad-url: no request was sent" 0 "$(kt_attempts bad-url)"
ksqs bad-scheme sqs-receive "ftp://127.0.0.1/123456789012/keyturn-host-1"
expect_eq "bad-scheme: refused before any request" "config 0" \
	"$(outcome bad-scheme) $(kt_attempts bad-scheme)"
ksqs bad-max sqs-receive "$Q" --max 11
expect_eq "bad-max: 11 messages are refused before any request" "invalid_request 0" \
	"$(outcome bad-max) $(kt_attempts bad-max)"
ksqs bad-wait sqs-receive "$Q" --wait 21
expect_eq "bad-wait: a 21 s poll is refused before any request" "invalid_request 0" \
	"$(outcome bad-wait) $(kt_attempts bad-wait)"
ksqs short-timeout --timeout 3000 sqs-receive "$Q" --wait 5
expect_eq "short-timeout: a poll longer than the timeout is refused" "config 0" \
	"$(outcome short-timeout) $(kt_attempts short-timeout)"

# --- faults, through the proxy ------------------------------------------------------
# The queue URL names the proxy, which passes requests on to moto.
start_proxy "$MOTO_URL"
aws_cli sqs create-queue --queue-name keyturn-faults >/dev/null || bail "could not create keyturn-faults"
PQ="$PROXY_URL/123456789012/keyturn-faults"
for i in 1 2 3; do send "$PQ" "fault-$i" >/dev/null; done

# fault NAME PLAN OUTCOME REQUESTS -- ARGS: one kt-aws run through the proxy
# under PLAN; checks its outcome and how many requests it cost.
fault() {
	local name=$1 p=$2 want=$3 count=$4
	shift 5
	plan "$p"
	ksqs "$name" "$@"
	expect_eq "$name: outcome" "$want" "$(outcome "$name")"
	expect_eq "$name: requests seen by the proxy and attempts counted by kt-aws" \
		"$count $count" "$(requests) $(kt_attempts "$name")"
}

fault 500-once '{"actions":[{"status":500}]}' ok 2 -- sqs-receive "$PQ" --max 1
expect_eq "500-once: the message came after the retry" 1 "$(msgs 500-once 'len(m)')"
expect_eq "500-once: both requests were ReceiveMessage" '{"AmazonSQS.ReceiveMessage": 2}' "$(targets)"
fault throttle-2 '{"actions":["throttle","throttle"]}' ok 3 -- sqs-receive "$PQ" --max 1
expect_eq "throttle-2: the message came after the retries" 1 "$(msgs throttle-2 'len(m)')"
expect_eq "throttle-2: every request was ReceiveMessage" '{"AmazonSQS.ReceiveMessage": 3}' "$(targets)"
fault 503-always '{"default":{"status":503}}' server 3 -- sqs-receive "$PQ" --max 1
fault malformed '{"default":"malformed"}' malformed 1 -- sqs-receive "$PQ" --max 1
cat "$T/500-once.out" "$T/throttle-2.out" >"$T/faulted.out"
mapfile -t freceipts < <(msgs faulted '"\n".join(x["receipt"] for x in m)')
fault delete-500 '{"actions":[{"status":500}]}' ok 2 -- sqs-delete "$PQ" "${freceipts[@]}"
expect_eq "delete-500: both deleted after the retry" '{"deleted":2,"failed":0}' \
	"$(tr -d ' \n' <"$T/delete-500.out")"
expect_eq "delete-500: both requests were DeleteMessageBatch" '{"AmazonSQS.DeleteMessageBatch": 2}' \
	"$(targets)"
expect_eq "one message is left in the queue" "1 0" "$(queue_counts "$PQ")"

# --- moto checking signatures and the IAM action ------------------------------------
# moto checks SigV4 only after INITIAL_NO_AUTH_ACTION_COUNT free calls and
# only for an IAM user's key; it takes the IAM action's service from the
# signature's scope, so a key allowed nothing but sqs:* proves that scope.
start_moto INITIAL_NO_AUTH_ACTION_COUNT=3
policy='{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sqs:*"],"Resource":"*"}]}'
aws_cli iam create-user --user-name kt-sqs >/dev/null &&
	aws_cli iam create-access-key --user-name kt-sqs >"$T/sqs-user.json" &&
	aws_cli iam put-user-policy --user-name kt-sqs --policy-name sqs --policy-document "$policy" ||
	bail "setup calls against the signature-checking moto failed"
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
AWS_ACCESS_KEY_ID=$(json_get "$T/sqs-user.json" 'd["AccessKey"]["AccessKeyId"]')
AWS_SECRET_ACCESS_KEY=$(json_get "$T/sqs-user.json" 'd["AccessKey"]["SecretAccessKey"]')
SQ=$(aws_cli sqs create-queue --queue-name keyturn-signed --query QueueUrl --output text) &&
	send "$SQ" signed-body >/dev/null || bail "the AWS CLI could not use the sqs:* key"
ksqs signed sqs-receive "$SQ" --wait 1
expect_eq "signed: moto accepts the signature and the sqs action" "ok signed-body" \
	"$(outcome signed) $(msgs signed '" ".join(x["body"] for x in m)')"
mapfile -t sreceipts < <(msgs signed '"\n".join(x["receipt"] for x in m)')
ksqs signed-delete sqs-delete "$SQ" "${sreceipts[@]}"
expect_eq "signed-delete: accepted, and the message deleted" '0 {"deleted":1,"failed":0}' \
	"$KT_RC $(tr -d ' \n' <"$T/signed-delete.out")"
AWS_SECRET_ACCESS_KEY=wrong-secret ksqs wrong-key sqs-receive "$SQ"
expect_eq "wrong-key: refused as auth with moto's 403, not retried" "auth 403 1" \
	"$(outcome wrong-key) $(json_get "$T/wrong-key.out" 'd.get("http_status")') $(kt_attempts wrong-key)"

no_sanitizer_report "no sanitizer report in any kt-aws run"
[ "$tap_n" -eq "$PLANNED" ] || not_ok "PLANNED ($PLANNED) matches the checks run ($tap_n)"
done_testing
