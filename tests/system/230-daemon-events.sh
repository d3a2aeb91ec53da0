#!/bin/bash
# Rotation events: keyturnd long-polls an SQS queue in moto, fed by an
# EventBridge rule or an SNS topic, and checks a secret when an event names
# it. Secrets Manager is reached through one fault proxy (counting
# DescribeSecret and GetSecretValue), SQS through another (faults).
#  - an event put on EventBridge after a change: the new value is served
#    with check_interval = 3600 and no rotation window, the queue is left
#    empty, and exactly one DescribeSecret and one GetSecretValue were made;
#  - the same through SNS, raw message delivery off and on;
#  - 50 events about one secret in one burst: one check;
#  - events for a secret not served here, of another region, and garbage:
#    deleted, counted, no AWS call;
#  - SQS failing (500, throttling, access denied), then back: status says
#    failing, checks fall back to check_interval, polling backs off (the
#    calls are counted), and it recovers without a restart.
# The figure for how fast an event reaches a reader is bench/events-staleness's.

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"

CTL="$KT_BUILDDIR/keyturnctl"
need_built "$KEYTURND"
need_built "$CTL"

start_moto
# Two proxies: proxy.sh's helpers talk to the one in PROXY_PORT.
start_proxy "$MOTO_URL"
SM_PORT=$PROXY_PORT
SM_URL=$PROXY_URL
rm -f "$T/proxy.port"
start_proxy "$MOTO_URL"
SQS_PORT=$PROXY_PORT
on_sm() { PROXY_PORT=$SM_PORT "$@"; }
on_sqs() { PROXY_PORT=$SQS_PORT "$@"; }

# aws_py SCRIPT ARGS...: boto3 against moto (one process, so that a burst
# is one).
aws_py() {
	local code=$1
	shift
	"$PYTHON3" - "$MOTO_URL" "$@" <<EOF
import boto3, json, sys, time
u = sys.argv[1]
kw = dict(region_name="us-east-1", endpoint_url=u)
sqs = boto3.client("sqs", **kw)
ev = boto3.client("events", **kw)
sns = boto3.client("sns", **kw)
sm = boto3.client("secretsmanager", **kw)
def event(secret, name="PutSecretValue", region="us-east-1", age=0):
    return {"Source": "aws.secretsmanager", "DetailType": "AWS API Call via CloudTrail",
            "Time": time.time() - age,
            "Detail": json.dumps({"eventSource": "secretsmanager.amazonaws.com",
                                  "eventName": name, "awsRegion": region,
                                  "requestParameters": {"secretId": secret}})}
def cloudtrail(secret, region="us-east-1"):
    return json.dumps({"version": "0", "id": "1", "detail-type": "AWS API Call via CloudTrail",
                       "source": "aws.secretsmanager", "account": "123456789012",
                       "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "region": region, "resources": [],
                       "detail": {"eventSource": "secretsmanager.amazonaws.com",
                                  "eventName": "PutSecretValue", "awsRegion": region,
                                  "requestParameters": {"secretId": secret}}})
$code
EOF
}

aws_py '
q = sqs.create_queue(QueueName="kt-host")["QueueUrl"]
arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
ev.put_rule(Name="kt", EventPattern=json.dumps({"source": ["aws.secretsmanager"]}))
ev.put_targets(Rule="kt", Targets=[{"Id": "1", "Arn": arn}])
t = sns.create_topic(Name="kt")["TopicArn"]
s = sns.subscribe(TopicArn=t, Protocol="sqs", Endpoint=arn)["SubscriptionArn"]
open(sys.argv[2], "w").write(t + "\n" + s + "\n")
for n in ("app/db", "app/other"):
    sm.create_secret(Name=n, SecretString="v1-" + n)
' "$T/sns" || bail "moto setup"
TOPIC=$(sed -n 1p "$T/sns")
SUB=$(sed -n 2p "$T/sns")
QUEUE="http://127.0.0.1:$SQS_PORT/123456789012/kt-host"

# events_config CHECK_INTERVAL: app/db through the SM proxy, events from
# the queue through the SQS proxy.
events_config() {
	write_config "endpoint = $SM_URL
check_interval = $1" <<EOF
[secret:app/db]
allow_users = $(id -un)

[events]
queue_url = $QUEUE
quiet_interval = 3600
EOF
	sed -i "s|^endpoint = $MOTO_URL\$||" "$KT_CONF"
}
events_config 3600
start_daemon || bail "keyturnd did not start"

evstat() { kt_req '{"v":1,"op":"status"}' | "$PYTHON3" -c "import json,sys; print(json.load(sys.stdin)['events'].get('$1'))"; }
value() { jfield "$(kt_get app/db)" 'd.get("string", d.get("error"))' 2>/dev/null; }
value_is() { [ "$(value)" = "$1" ]; }
queue_empty() {
	[ "$(aws_py 'a = sqs.get_queue_attributes(QueueUrl=sqs.get_queue_url(QueueName="kt-host")["QueueUrl"], AttributeNames=["All"])["Attributes"]
print(int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"]))')" = 0 ]
}
state_is() { [ "$(evstat state)" = "$1" ]; }
counter_at_least() { [ "$(evstat "$1")" -ge "$2" ] 2>/dev/null; }
change() { aws_py 'sm.put_secret_value(SecretId=sys.argv[2], SecretString=sys.argv[3])' "$1" "$2"; }

# next_check_in NAME: seconds until NAME's next check, from list.
next_check_in() {
	kt_req '{"v":1,"op":"list"}' | "$PYTHON3" -c '
import json, sys, time
d = json.load(sys.stdin)
print([e for e in d["secrets"] if e["name"] == sys.argv[1]][0]["next_check"] - int(time.time()))' "$1"
}
checked_once() { [ "$(next_check_in app/db)" -gt 600 ] 2>/dev/null; }

check "the poller answers: events state ok" wait_until 30 state_is ok
expect_eq "app/db is served" v1-app/db "$(value)"
ctl_status_has() { "$CTL" --socket "$KT_SOCK" status | grep -qE "$1"; }
check "keyturnctl status shows the queue" ctl_status_has "^events: +ok, $QUEUE\$"
# The first scheduled check comes 5 to 59 s after the first value; the
# counts below start after it (the next is an hour away).
check "the first scheduled check is done, the next an hour away" wait_until 90 checked_once

# --- EventBridge -> SQS ---------------------------------------------------------
wait_until 10 queue_empty
on_sm plan '{"default":null}'
change app/db v2-eventbridge
aws_py 'ev.put_events(Entries=[event("app/db")])'
check "after an EventBridge event the new value is served (check_interval 3600, no window)" \
	wait_until 30 value_is v2-eventbridge
check "the queue is empty afterwards" wait_until 30 queue_empty
expect_eq "exactly one DescribeSecret and one GetSecretValue for it" "1 1" \
	"$(on_sm calls DescribeSecret) $(on_sm calls GetSecretValue)"

# --- SNS -> SQS, raw delivery off, then on -----------------------------------------
for raw in false true; do
	aws_py 'sns.set_subscription_attributes(SubscriptionArn=sys.argv[2], AttributeName="RawMessageDelivery", AttributeValue=sys.argv[3])' \
		"$SUB" "$raw"
	on_sm plan '{"default":null}'
	change app/db "v3-sns-raw-$raw"
	aws_py 'sns.publish(TopicArn=sys.argv[2], Message=cloudtrail("app/db"))' "$TOPIC"
	check "through SNS (RawMessageDelivery $raw) the new value is served" \
		wait_until 30 value_is "v3-sns-raw-$raw"
	expect_eq "one DescribeSecret and one GetSecretValue (raw $raw)" "1 1" \
		"$(on_sm calls DescribeSecret) $(on_sm calls GetSecretValue)"
done

# --- a burst --------------------------------------------------------------------------
# Fifty events of one change, each saying when it was made, delivered late
# (6 s, past keyturnd's 5 s allowance for clocks that disagree): the check
# the first of them causes answers them all.
clock_past() { [ "$(date +%s)" -gt "$1" ]; }
wait_until 10 queue_empty
on_sm plan '{"default":null}'
received=$(evstat received)
changed_at=$(date +%s)
change app/db v4-burst
wait_until 20 clock_past $((changed_at + 6))
aws_py 'for i in range(5): ev.put_events(Entries=[event("app/db", age=time.time() - int(sys.argv[2]))] * 10)' \
	"$changed_at"
check "the 50 events are received" wait_until 30 counter_at_least received $((received + 50))
check "and the new value served" wait_until 30 value_is v4-burst
check "the queue is empty" wait_until 30 queue_empty
expect_eq "50 events in one burst: one DescribeSecret, one GetSecretValue" "1 1" \
	"$(on_sm calls DescribeSecret) $(on_sm calls GetSecretValue)"

# --- events that are not for this host ----------------------------------------------------
on_sm plan '{"default":null}'
received=$(evstat received)
unmatched=$(evstat unmatched)
other=$(evstat other_region)
bad=$(evstat unparseable)
aws_py '
ev.put_events(Entries=[event("app/other"), event("app/db", region="eu-west-1")])
q = sqs.get_queue_url(QueueName="kt-host")["QueueUrl"]
for body in ("not json", "[1,2]", "{\"Type\":\"Notification\",\"Message\":\"{\"}", "{" * 5000):
    sqs.send_message(QueueUrl=q, MessageBody=body)
'
check "six messages received" wait_until 30 counter_at_least received $((received + 6))
check "the queue is empty: every one deleted" wait_until 30 queue_empty
expect_eq "counted: one for a secret not served, one of another region, four unparseable" \
	"$((unmatched + 1)) $((other + 1)) $((bad + 4))" \
	"$(evstat unmatched) $(evstat other_region) $(evstat unparseable)"
expect_eq "and no AWS call for them" "0 0" "$(on_sm calls DescribeSecret) $(on_sm calls GetSecretValue)"
check "keyturnd still serves" value_is v4-burst
# moto long-polls as SQS does: an answer with messages is never taken for
# an early empty one (which would pause the poller 5 s).
expect_eq "no early-empty pauses" 0 "$(evstat early_pauses)"

# --- SQS failing, then back --------------------------------------------------------------
stop_daemon
events_config 5
on_sqs plan '{"default":{"status":500}}'
start_daemon || bail "keyturnd did not start again"
check "SQS answering 500: events state failing" wait_until 60 state_is failing
error_says() { evstat last_error | grep -q "$1"; }
logged_once() { [ "$(grep -c "$1" "$KT_LOG")" = 1 ]; }
described() { [ "$(on_sm calls DescribeSecret)" -ge 1 ] 2>/dev/null; }
check "and status says why" error_says 'ReceiveMessage .*InternalServiceError'
check "the log says so once" logged_once 'events: .*checking each secret every check_interval'
on_sm plan '{"default":null}'
check "while failing, checks fall back to check_interval (5 s): DescribeSecret is called" \
	wait_until 60 described
on_sqs plan '{"actions":["throttle","throttle","throttle","access_denied","access_denied"],"default":null}'
check "it recovers without a restart: state ok" wait_until 120 state_is ok
on_sqs requests >/dev/null
diag "ReceiveMessage calls while failing and recovering: $(json_get "$T/stats.json" "d['targets'].get('AmazonSQS.ReceiveMessage', 0)")"
fails=$(evstat failures)
check "no tight loop: $fails failed polls, back-off between them" test "$fails" -le 12
check "the log says it works again" grep -q 'events: receiving from .*safety-net checks every 3600 s' "$KT_LOG"
log_has_no_secrets "$KT_LOG" v1-app/db v2-eventbridge v3-sns-raw-false v3-sns-raw-true v4-burst
stop_daemon
expect_eq "keyturnd stops cleanly (exit 0)" 0 "$KT_STATUS"
no_sanitizer_report "no sanitizer report"
done_testing
