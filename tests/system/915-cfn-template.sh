#!/bin/bash
# packaging/aws/keyturn-events.yaml, the CloudFormation template for rotation
# events (docs/EVENTS.md):
#   a. cfn-lint (AWS's CloudFormation linter, the Python one) where it is
#      installed, and a broken copy of the template to show that it really
#      checks; skipped with the reason where it is not (Debian has no package
#      of it, and the npm package of that name is an unrelated old linter);
#   b. structural checks of our own, on the YAML read with CloudFormation's
#      short tags (!Ref, !Sub, !If, ...): known resource types, each explained
#      by a comment, every Ref/GetAtt/${} and Condition declared, the rule's
#      pattern, the queue's redrive and encryption, the topic and queue
#      policies, and a host policy that allows only what keyturnd calls, with
#      the sqs actions on the host's own queue;
#   c. the template deployed into moto (fan-out, host queue, fleet of one), and
#      the event pattern of the deployed rule tried on CloudTrail-shaped events
#      through moto's EventBridge.
# What moto cannot show: its CloudFormation skips AWS::SNS::Subscription,
# AWS::SNS::TopicPolicy and AWS::SQS::QueuePolicy (it warns and goes on), so
# the subscription and the two policies are checked in (b) only; its
# EventBridge cannot target SNS, so (c) tries the pattern on a rule that
# targets a queue; and it leaves an `!If [C, X, !Ref AWS::NoValue]` item of a
# policy's Statement list as a null (AWS drops it), so the host stacks there
# are made with SecretsKmsKeyArn set. moto's pattern matcher is an independent
# implementation of EventBridge's: agreement with it is evidence, not proof.

# The number of checks below (for skip_all; the plan is printed at the end).
PLANNED=24

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"

TEMPLATE="$KT_SRCDIR/packaging/aws/keyturn-events.yaml"
[ -f "$TEMPLATE" ] || bail "$TEMPLATE is missing"
"$PYTHON3" -c 'import yaml' 2>/dev/null ||
	skip_all "python3 has no PyYAML (moto brings it; scripts/install-deps installs moto)"

CFN="$T/cfn.py"
cat >"$CFN" <<'PY'
"""Checks of keyturn-events.yaml: cfn.py CHECK TEMPLATE [ARGS]; exit 1 with the
reason on failure."""
import json
import re
import sys

import yaml

PSEUDO = {"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition",
          "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}
TYPES = {"AWS::Events::Rule", "AWS::SNS::Topic", "AWS::SNS::TopicPolicy",
         "AWS::SNS::Subscription", "AWS::SQS::Queue", "AWS::SQS::QueuePolicy",
         "AWS::IAM::ManagedPolicy"}
SECTIONS = {"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules",
            "Mappings", "Conditions", "Transform", "Resources", "Outputs"}
CHANGE_CALLS = {"PutSecretValue", "UpdateSecretVersionStage", "RotateSecret", "UpdateSecret",
                "RestoreSecret", "DeleteSecret", "CancelRotateSecret",
                "ReplicateSecretToRegions", "RemoveRegionsFromReplication",
                "StopReplicationToReplica"}
ROTATION_EVENTS = {"RotationSucceeded", "RotationFailed"}
DETAIL_TYPES = {"AWS API Call via CloudTrail", "AWS Service Event via CloudTrail"}
HOST_ACTIONS = {"sqs:ReceiveMessage", "sqs:DeleteMessage", "secretsmanager:GetSecretValue",
                "secretsmanager:DescribeSecret", "secretsmanager:BatchGetSecretValue",
                "kms:Decrypt"}


class Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags, as the long forms ({"Fn::If": ...})."""


def _tag(name):
    key = "Ref" if name == "Ref" else ("Condition" if name == "Condition" else "Fn::" + name)

    def construct(loader, node):
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if name == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}
    return construct


for _n in ("Ref", "Sub", "GetAtt", "If", "Equals", "Not", "And", "Or", "Select", "Split",
           "Join", "ImportValue", "FindInMap", "Base64", "Cidr", "GetAZs", "Condition",
           "Transform", "Contains", "EachMemberEquals", "ValueOf", "RefAll", "ValueOfAll"):
    Loader.add_constructor("!" + _n, _tag(_n))


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader)  # noqa: S506 (a SafeLoader subclass)


def walk(node):
    yield node
    if isinstance(node, dict):
        for v in node.values():
            yield from walk(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk(v)


def fail(*lines):
    print("\n".join(lines))
    sys.exit(1)


def statements(doc):
    out = []
    for s in doc["Statement"]:
        if isinstance(s, dict) and "Fn::If" in s:
            cond, yes, no = s["Fn::If"]
            out += [(cond, x) for x in (yes, no) if x != {"Ref": "AWS::NoValue"}]
        else:
            out.append((None, s))
    return out


def as_list(v):
    return v if isinstance(v, list) else [v]


def c_load(t, path):
    if not isinstance(t, dict) or "Resources" not in t:
        fail("no Resources section")
    print(f"{len(t['Resources'])} resources, {len(t.get('Parameters', {}))} parameters")


def c_sections(t, path):
    extra = set(t) - SECTIONS
    if extra:
        fail(f"unknown top-level sections: {sorted(extra)}")
    if t.get("AWSTemplateFormatVersion") != "2010-09-09":
        fail("AWSTemplateFormatVersion is not 2010-09-09")


def c_types(t, path):
    bad = [f"{n}: {r.get('Type')}" for n, r in t["Resources"].items()
           if r.get("Type") not in TYPES or not isinstance(r.get("Properties"), dict)]
    if bad:
        fail("resources of an unexpected type, or without Properties:", *bad)


def c_comments(t, path):
    lines = open(path, encoding="utf-8").read().split("\n")
    start = lines.index("Resources:")
    missing = []
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if line and not line.startswith(" ") and not line.startswith("#"):
            break  # the next top-level section
        m = re.match(r"^  ([A-Za-z0-9]+):\s*$", line)
        if m and not lines[i - 1].startswith("  #"):
            missing.append(f"{m.group(1)} (line {i + 1})")
    if missing:
        fail("resources without a comment right above them:", *missing)


def c_refs(t, path):
    params, res = set(t.get("Parameters", {})), set(t["Resources"])
    bad = []
    for where, section in (("Resources", t["Resources"]), ("Outputs", t.get("Outputs", {})),
                           ("Conditions", t.get("Conditions", {})), ("Rules", t.get("Rules", {}))):
        for n in walk(section):
            if not isinstance(n, dict):
                continue
            if "Ref" in n and n["Ref"] not in params | res | PSEUDO:
                bad.append(f"{where}: Ref {n['Ref']}")
            if "Fn::GetAtt" in n and n["Fn::GetAtt"][0] not in res:
                bad.append(f"{where}: GetAtt {n['Fn::GetAtt']}")
            if "Fn::Sub" in n:
                text = n["Fn::Sub"] if isinstance(n["Fn::Sub"], str) else n["Fn::Sub"][0]
                local = set() if isinstance(n["Fn::Sub"], str) else set(n["Fn::Sub"][1])
                for var in re.findall(r"\$\{([^}!][^}]*)\}", text):
                    name = var.split(".", 1)[0] if "." in var else var
                    if name not in params | res | PSEUDO | local:
                        bad.append(f"{where}: Sub ${{{var}}}")
    if bad:
        fail("names that are no parameter, resource or pseudo-parameter:", *bad)


def c_conditions(t, path):
    declared = set(t.get("Conditions", {}))
    used = set()
    for section in (t["Resources"], t.get("Outputs", {})):
        for r in section.values():
            if "Condition" in r:
                used.add(r["Condition"])
    for n in walk([t["Resources"], t.get("Outputs", {}), t.get("Conditions", {})]):
        if isinstance(n, dict) and "Fn::If" in n:
            used.add(n["Fn::If"][0])
        if isinstance(n, dict) and set(n) == {"Condition"} and isinstance(n["Condition"], str):
            used.add(n["Condition"])
    if used - declared:
        fail(f"conditions used but not declared: {sorted(used - declared)}")
    if declared - used:
        fail(f"conditions declared but never used: {sorted(declared - used)}")
    params = set(t.get("Parameters", {}))
    refd = {n["Ref"] for n in walk(t) if isinstance(n, dict) and "Ref" in n}
    subd = {v for n in walk(t) if isinstance(n, dict) and "Fn::Sub" in n
            for v in re.findall(r"\$\{([^}!.]+)\}", json.dumps(n["Fn::Sub"]))}
    if params - refd - subd:
        fail(f"parameters never used: {sorted(params - refd - subd)}")


def rule(t):
    rules = [r for r in t["Resources"].values() if r["Type"] == "AWS::Events::Rule"]
    if len(rules) != 1:
        fail(f"{len(rules)} EventBridge rules, expected 1")
    return rules[0]


def c_pattern(t, path):
    p = rule(t)["Properties"]["EventPattern"]
    if p.get("source") != ["aws.secretsmanager"]:
        fail(f"source is {p.get('source')}, not [aws.secretsmanager]")
    if set(p.get("detail-type", [])) != DETAIL_TYPES:
        fail(f"detail-type is {p.get('detail-type')}")
    d = p["detail"]
    if d.get("eventSource") != ["secretsmanager.amazonaws.com"]:
        fail(f"detail.eventSource is {d.get('eventSource')}")
    names = set(d.get("eventName", []))
    missing = (CHANGE_CALLS | ROTATION_EVENTS) - names
    if missing:
        fail(f"change calls or rotation events not matched: {sorted(missing)}")
    reads = sorted(n for n in names if re.match(r"(Get|Describe|List|BatchGet)", n))
    if reads:
        fail(f"read-only calls matched (every host pays for each message): {reads}")
    if d.get("errorCode") != [{"exists": False}]:
        fail("failed calls (with an errorCode) are not left out")


def c_prefix(t, path):
    d = rule(t)["Properties"]["EventPattern"]["detail"]
    cond, yes, no = d["$or"]["Fn::If"]
    if cond != "HasPrefix":
        fail(f"the prefix filter depends on {cond}, not HasPrefix")
    arn = ("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
           "${SecretNamePrefix}")
    want = [{"prefix": {"Ref": "SecretNamePrefix"}}, {"prefix": {"Fn::Sub": arn}}]
    if yes != [{"requestParameters": {"secretId": want}},
               {"additionalEventData": {"SecretId": want}}]:
        fail("with a prefix: not secretId or SecretId by name or ARN prefix:", json.dumps(yes))
    if no != [{"requestParameters": {"secretId": [{"exists": True}]}},
              {"additionalEventData": {"SecretId": [{"exists": True}]}}]:
        fail("without a prefix: not any event that names a secret:", json.dumps(no))


def c_topic(t, path):
    r = t["Resources"]
    targets = rule(t)["Properties"]["Targets"]
    if [x["Arn"] for x in targets] != [{"Ref": "EventsTopic"}]:
        fail(f"the rule's targets are {targets}, not the topic alone")
    pol = r["EventsTopicPolicy"]["Properties"]
    if pol["Topics"] != [{"Ref": "EventsTopic"}]:
        fail("the topic policy is not on the topic")
    st = pol["PolicyDocument"]["Statement"]
    ok = (len(st) == 1 and st[0]["Effect"] == "Allow"
          and st[0]["Principal"] == {"Service": "events.amazonaws.com"}
          and as_list(st[0]["Action"]) == ["sns:Publish"]
          and st[0]["Condition"] == {"ArnEquals": {"aws:SourceArn":
                                                   {"Fn::GetAtt": ["SecretChangesRule", "Arn"]}}})
    if not ok:
        fail("the topic policy does not allow exactly sns:Publish by this rule:", json.dumps(st))


def c_queue(t, path):
    r = t["Resources"]
    q, dlq = r["HostQueue"]["Properties"], r["HostDeadLetterQueue"]["Properties"]
    rp = q.get("RedrivePolicy", {})
    problems = []
    if rp.get("deadLetterTargetArn") != {"Fn::GetAtt": ["HostDeadLetterQueue", "Arn"]}:
        problems.append(f"RedrivePolicy.deadLetterTargetArn is {rp.get('deadLetterTargetArn')}")
    if rp.get("maxReceiveCount") != {"Ref": "MaxReceiveCount"}:
        problems.append("RedrivePolicy.maxReceiveCount is not the MaxReceiveCount parameter")
    if q.get("MessageRetentionPeriod") != {"Ref": "MessageRetentionSeconds"}:
        problems.append("MessageRetentionPeriod is not the MessageRetentionSeconds parameter")
    if q.get("SqsManagedSseEnabled") is not True or dlq.get("SqsManagedSseEnabled") is not True:
        problems.append("a queue without SSE-SQS")
    if q.get("ReceiveMessageWaitTimeSeconds") != 20:
        problems.append("no 20 s long polling on the queue")
    if problems:
        fail(*problems)


def c_queue_policy(t, path):
    p = t["Resources"]["HostQueuePolicy"]["Properties"]
    if p["Queues"] != [{"Ref": "HostQueue"}]:
        fail("the queue policy is not on the host queue")
    allows = [s for s in p["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    want = {"Fn::If": ["FanOut", {"Ref": "EventsTopic"}, {"Ref": "TopicArn"}]}
    ok = (len(allows) == 1 and allows[0]["Principal"] == {"Service": "sns.amazonaws.com"}
          and as_list(allows[0]["Action"]) == ["sqs:SendMessage"]
          and allows[0]["Resource"] == {"Fn::GetAtt": ["HostQueue", "Arn"]}
          and allows[0]["Condition"] == {"ArnEquals": {"aws:SourceArn": want}})
    if not ok:
        fail("the queue policy allows more than the topic's sqs:SendMessage:", json.dumps(allows))
    s = t["Resources"]["HostSubscription"]["Properties"]
    if (s["TopicArn"] != want or s["Protocol"] != "sqs"
            or s["Endpoint"] != {"Fn::GetAtt": ["HostQueue", "Arn"]}
            or s["RawMessageDelivery"] != {"Ref": "RawMessageDelivery"}):
        fail("the subscription is not the topic's sqs delivery to the host queue:", json.dumps(s))


def host_statements(t):
    pols = [r for r in t["Resources"].values() if r["Type"] == "AWS::IAM::ManagedPolicy"]
    if len(pols) != 1:
        fail(f"{len(pols)} managed policies, expected 1")
    return statements(pols[0]["Properties"]["PolicyDocument"])


def c_host_actions(t, path):
    actions = set()
    for cond, s in host_statements(t):
        if s["Effect"] != "Allow" or "NotAction" in s or "NotResource" in s:
            fail(f"statement {s.get('Sid')} is not a plain Allow")
        actions |= set(as_list(s["Action"]))
    if actions != HOST_ACTIONS:
        fail(f"allowed: {sorted(actions)}", f"expected: {sorted(HOST_ACTIONS)}")


def c_host_sqs(t, path):
    for cond, s in host_statements(t):
        if any(a.startswith("sqs:") for a in as_list(s["Action"])):
            if s["Resource"] != {"Fn::GetAtt": ["HostQueue", "Arn"]}:
                fail(f"sqs actions of {s.get('Sid')} on {s['Resource']}, not the host queue")


def c_host_secrets(t, path):
    arn = ("arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
           "${SecretNamePrefix}*")
    for cond, s in host_statements(t):
        acts = set(as_list(s["Action"]))
        if acts & {"secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"}:
            if s["Resource"] != {"Fn::Sub": arn}:
                fail(f"{sorted(acts)} on {s['Resource']}, not the prefix's secrets")
        if s["Resource"] == "*" and acts != {"secretsmanager:BatchGetSecretValue"}:
            fail(f"{sorted(acts)} on *: only BatchGetSecretValue may be (IAM requires it)")
        if "kms:Decrypt" in acts:
            if cond != "HasKmsKey" or s["Resource"] != {"Ref": "SecretsKmsKeyArn"}:
                fail("kms:Decrypt is not only on SecretsKmsKeyArn, when given")
            via = s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService")
            if via != {"Fn::Sub": "secretsmanager.${AWS::Region}.amazonaws.com"}:
                fail("kms:Decrypt is not limited to calls through Secrets Manager")


def c_outputs(t, path):
    o = t.get("Outputs", {})
    want = {"QueueUrl": {"Ref": "HostQueue"}, "QueueArn": {"Fn::GetAtt": ["HostQueue", "Arn"]},
            "TopicArn": {"Ref": "EventsTopic"}}
    bad = [k for k, v in want.items() if o.get(k, {}).get("Value") != v]
    if bad:
        fail(f"outputs missing or wrong: {bad}")


# --- moto ------------------------------------------------------------------------
def clients(url):
    import boto3
    kw = {"region_name": "us-east-1", "endpoint_url": url}
    return {n: boto3.client(n, **kw) for n in ("cloudformation", "sqs", "iam", "events")}


def c_deploy(t, path, url, out):
    """Makes the three kinds of stack; writes what moto made to OUT (JSON)."""
    c = clients(url)
    body = open(path, encoding="utf-8").read()
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    state = {}

    def stack(name, params):
        c["cloudformation"].create_stack(
            StackName=name, TemplateBody=body, Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in params.items()])
        d = c["cloudformation"].describe_stacks(StackName=name)["Stacks"][0]
        s = {"status": d["StackStatus"],
             "outputs": {o["OutputKey"]: o["OutputValue"] for o in d.get("Outputs", [])},
             "resources": sorted(r["LogicalResourceId"] for r in c["cloudformation"]
                                 .list_stack_resources(StackName=name)["StackResourceSummaries"]
                                 if r["LogicalResourceId"])}
        o = s["outputs"]
        if "QueueUrl" in o:
            s["queue"] = c["sqs"].get_queue_attributes(
                QueueUrl=o["QueueUrl"], AttributeNames=["All"])["Attributes"]
            s["dlq"] = c["sqs"].get_queue_attributes(
                QueueUrl=o["DeadLetterQueueUrl"], AttributeNames=["All"])["Attributes"]
        if "HostPolicyArn" in o:
            p = c["iam"].get_policy(PolicyArn=o["HostPolicyArn"])["Policy"]
            v = c["iam"].get_policy_version(PolicyArn=o["HostPolicyArn"],
                                            VersionId=p["DefaultVersionId"])
            doc = v["PolicyVersion"]["Document"]
            s["policy"] = json.loads(doc) if isinstance(doc, str) else doc
        if "RuleArn" in o:
            r = c["events"].describe_rule(Name=o["RuleArn"].split("/")[-1])
            s["pattern"] = json.loads(r["EventPattern"])
        state[name] = s
        return s

    fan = stack("fanout", {"SecretNamePrefix": "app/"})
    stack("host-web-1", {"CreateFanOut": "false", "HostName": "web-1",
                         "TopicArn": fan["outputs"].get("TopicArn", ""),
                         "SecretNamePrefix": "app/", "SecretsKmsKeyArn": key})
    stack("solo", {"HostName": "solo", "SecretsKmsKeyArn": key})
    json.dump(state, open(out, "w"), indent=1)


def c_fanout(t, path, state):
    s = json.load(open(state))["fanout"]
    if s["status"] != "CREATE_COMPLETE" or not s["outputs"].get("TopicArn", "").startswith(
            "arn:aws:sns:us-east-1:123456789012:"):
        fail(json.dumps(s, indent=1))
    if s["resources"] != ["EventsTopic", "SecretChangesRule"] or "QueueUrl" in s["outputs"]:
        fail(f"a fan-out-only stack made {s['resources']}")


def c_host(t, path, state):
    s = json.load(open(state))["host-web-1"]
    o, q, dlq = s["outputs"], s.get("queue", {}), s.get("dlq", {})
    problems = []
    if s["status"] != "CREATE_COMPLETE":
        problems.append(s["status"])
    if not o.get("QueueUrl", "").endswith("/123456789012/keyturn-web-1"):
        problems.append(f"QueueUrl {o.get('QueueUrl')}")
    if o.get("QueueArn") != "arn:aws:sqs:us-east-1:123456789012:keyturn-web-1":
        problems.append(f"QueueArn {o.get('QueueArn')}")
    if "EventsTopic" in s["resources"] or "SecretChangesRule" in s["resources"]:
        problems.append(f"a host-queue stack made {s['resources']}")
    rp = json.loads(q.get("RedrivePolicy", "{}"))
    if (rp.get("deadLetterTargetArn") != dlq.get("QueueArn")
            or int(rp.get("maxReceiveCount", 0)) != 5):
        problems.append(f"RedrivePolicy {rp}")
    if q.get("MessageRetentionPeriod") != "86400" or q.get("ReceiveMessageWaitTimeSeconds") != "20":
        problems.append("retention or long polling")
    if q.get("SqsManagedSseEnabled") != "true" or dlq.get("SqsManagedSseEnabled") != "true":
        problems.append("SSE-SQS")
    if problems:
        fail(*problems, json.dumps(s, indent=1))


def c_host_policy(t, path, state):
    s = json.load(open(state))["host-web-1"]
    got = {}
    for st in s["policy"]["Statement"]:
        for a in as_list(st["Action"]):
            got[a] = st["Resource"]
    want = {"sqs:ReceiveMessage": "arn:aws:sqs:us-east-1:123456789012:keyturn-web-1",
            "sqs:DeleteMessage": "arn:aws:sqs:us-east-1:123456789012:keyturn-web-1",
            "secretsmanager:GetSecretValue":
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/*",
            "secretsmanager:DescribeSecret":
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/*",
            "secretsmanager:BatchGetSecretValue": "*",
            "kms:Decrypt": "arn:aws:kms:us-east-1:123456789012:key/"
                           "1234abcd-12ab-34cd-56ef-1234567890ab"}
    if got != want:
        fail(f"got  {json.dumps(got, indent=1)}", f"want {json.dumps(want, indent=1)}")


def c_solo(t, path, state):
    s = json.load(open(state))["solo"]
    want = {"EventsTopic", "SecretChangesRule", "HostQueue", "HostDeadLetterQueue", "HostPolicy"}
    if (s["status"] != "CREATE_COMPLETE" or not want <= set(s["resources"])
            or not s["outputs"].get("QueueUrl", "").endswith("/keyturn-solo")):
        fail(json.dumps(s, indent=1))
    if s["policy"]["Statement"][1]["Resource"] != \
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:*":
        fail("without a prefix the secret reads are not on every secret of the account")


def event(name, secret=None, where="requestParameters", service=False, error=None,
          source="aws.secretsmanager"):
    detail = {"eventVersion": "1.08", "eventSource": "secretsmanager.amazonaws.com",
              "eventName": name, "awsRegion": "us-east-1",
              "eventType": "AwsServiceEvent" if service else "AwsApiCall",
              "requestParameters": None, "responseElements": None}
    if where == "requestParameters":
        detail["requestParameters"] = {"secretId": secret}
    else:
        detail["additionalEventData"] = {"SecretId": secret}
    if error:
        detail["errorCode"] = error
    return {"Source": source, "EventBusName": "default",
            "DetailType": "AWS Service Event via CloudTrail" if service
            else "AWS API Call via CloudTrail",
            "Detail": json.dumps(detail)}


ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
# (label, event, matches with prefix app/, matches without a prefix)
CASES = [
    ("PutSecretValue app/db by name", event("PutSecretValue", "app/db"), True, True),
    ("UpdateSecretVersionStage app/db by full ARN",
     event("UpdateSecretVersionStage", ARN + "app/db-AbCdEf"), True, True),
    ("RotateSecret app/db by partial ARN", event("RotateSecret", ARN + "app/db"), True, True),
    ("RotationSucceeded app/db (service event)",
     event("RotationSucceeded", ARN + "app/db-AbCdEf", "additionalEventData", True), True, True),
    ("DeleteSecret app/old", event("DeleteSecret", "app/old"), True, True),
    ("PutSecretValue other/db", event("PutSecretValue", "other/db"), False, True),
    ("PutSecretValue other/db by ARN", event("PutSecretValue", ARN + "other/db-AbCdEf"),
     False, True),
    ("RotationSucceeded other/db",
     event("RotationSucceeded", ARN + "other/db-AbCdEf", "additionalEventData", True),
     False, True),
    ("PutSecretValue application/db (no slash after app)",
     event("PutSecretValue", "application/db"), False, True),
    ("PutSecretValue app/db in another account's ARN",
     event("PutSecretValue", "arn:aws:secretsmanager:us-east-1:999999999999:secret:app/db"),
     False, True),
    ("GetSecretValue app/db (a read)", event("GetSecretValue", "app/db"), False, False),
    ("DescribeSecret app/db (a read)", event("DescribeSecret", "app/db"), False, False),
    ("PutSecretValue app/db refused (errorCode)",
     event("PutSecretValue", "app/db", error="AccessDenied"), False, False),
    ("RotationStarted app/db", event("RotationStarted", ARN + "app/db-AbCdEf",
                                     "additionalEventData", True), False, False),
    ("a KMS event", event("PutSecretValue", "app/db", source="aws.kms"), False, False),
]


def c_matches(t, path, url, state, which):
    """The deployed rule's pattern (stack WHICH) on CASES, through moto's EventBridge:
    the same pattern on a rule that targets a probe queue, on a bus of its own (moto
    fails a PutEvents that matches the deployed rules, which target SNS); a last
    matching event marks the end (moto delivers in order)."""
    import time
    c = clients(url)
    pattern = json.load(open(state))[which]["pattern"]
    qurl = c["sqs"].create_queue(QueueName=f"probe-{which}")["QueueUrl"]
    qarn = c["sqs"].get_queue_attributes(QueueUrl=qurl, AttributeNames=["QueueArn"])
    bus = c["events"].create_event_bus(Name=f"probe-{which}")["EventBusArn"]
    c["events"].put_rule(Name=f"probe-{which}", EventBusName=bus,
                         EventPattern=json.dumps(pattern))
    c["events"].put_targets(Rule=f"probe-{which}", EventBusName=bus, Targets=[
        {"Id": "probe", "Arn": qarn["Attributes"]["QueueArn"]}])
    col = 2 if which == "fanout" else 3
    entries = []
    for i, case in enumerate(CASES):
        e = dict(case[1], EventBusName=bus)
        d = json.loads(e["Detail"])
        d["eventID"] = f"case-{i}"
        e["Detail"] = json.dumps(d)
        entries.append(e)
    end = dict(event("PutSecretValue", "app/end"), EventBusName=bus)
    d = json.loads(end["Detail"])
    d["eventID"] = "end"
    end["Detail"] = json.dumps(d)
    entries.append(end)
    for i in range(0, len(entries), 10):
        r = c["events"].put_events(Entries=entries[i:i + 10])
        if r.get("FailedEntryCount"):
            fail(f"put_events refused some: {r}")
    seen, deadline = set(), time.monotonic() + 30
    while "end" not in seen and time.monotonic() < deadline:
        for m in c["sqs"].receive_message(QueueUrl=qurl, MaxNumberOfMessages=10,
                                          WaitTimeSeconds=1).get("Messages", []):
            seen.add(json.loads(m["Body"])["detail"]["eventID"])
            c["sqs"].delete_message(QueueUrl=qurl, ReceiptHandle=m["ReceiptHandle"])
    if "end" not in seen:
        fail("the closing event never reached the probe queue")
    wrong = [f"{'missed' if case[col] else 'matched'}: {case[0]}"
             for i, case in enumerate(CASES) if (f"case-{i}" in seen) != case[col]]
    if wrong:
        fail(*wrong)
    print(f"{len(seen) - 1} of {len(CASES)} events matched, as expected")


if __name__ == "__main__":
    check, template = sys.argv[1], sys.argv[2]
    globals()["c_" + check](load(template), template, *sys.argv[3:])
PY

cfn() { "$PYTHON3" "$CFN" "$1" "$TEMPLATE" "${@:2}"; }

# --- a. cfn-lint -------------------------------------------------------------------
if "$PYTHON3" -c 'import cfnlint' 2>/dev/null; then
	CFNLINT=("$PYTHON3" -c 'import sys; from cfnlint.runner import main; sys.exit(main())')
	diag "cfn-lint $("$PYTHON3" -c 'import cfnlint.version as v; print(v.__version__)' 2>&1)"
	check "cfn-lint finds nothing in the template, informational checks included" \
		"${CFNLINT[@]}" --include-checks I -- "$TEMPLATE"
	# A wrong resource name and a misspelt action: a cfn-lint that found nothing
	# here would not be checking.
	sed -e 's/!GetAtt HostDeadLetterQueue.Arn/!GetAtt HostDeadLetterQ.Arn/' \
		-e 's/sqs:ReceiveMessage/sqs:ReceiveMesage/' "$TEMPLATE" >"$T/broken.yaml"
	"${CFNLINT[@]}" -- "$T/broken.yaml" >"$T/broken.out" 2>&1
	if grep -q E1010 "$T/broken.out" && grep -q W3037 "$T/broken.out"; then
		ok "cfn-lint reports a broken copy (an unknown resource, a misspelt action)"
	else
		not_ok "cfn-lint reports a broken copy (an unknown resource, a misspelt action)"
		sed 's/^/#   /' "$T/broken.out"
	fi
else
	skip_test "cfn-lint is not installed (no cfnlint module in python3; Debian has no package of it)"
	skip_test "cfn-lint is not installed, so no broken copy to show it checks"
fi

# --- b. structure ------------------------------------------------------------------
check "the template loads as YAML with CloudFormation's short tags" cfn load
check "its top-level sections are CloudFormation's, version 2010-09-09" cfn sections
check "every resource is of a known type and has Properties" cfn types
check "every resource is explained by a comment right above it" cfn comments
check "every Ref, GetAtt and \${} names a parameter, resource or pseudo-parameter" cfn refs
check "every Condition used is declared and used, every parameter used" cfn conditions
check "the rule matches aws.secretsmanager's change calls and rotation events, no reads" \
	cfn pattern
check "SecretNamePrefix filters secretId and SecretId by name or ARN prefix" cfn prefix
check "the rule targets the topic, which only this rule may publish to" cfn topic
check "the host queue: dead-letter queue, retention, SSE-SQS, 20 s long polls" cfn queue
check "only the topic may send to the host queue, through its subscription" cfn queue_policy
check "the host policy allows only what keyturnd calls" cfn host_actions
check "the host policy's sqs actions are on its own queue's ARN, never *" cfn host_sqs
check "its secret reads are on the prefix's ARNs, only BatchGet on * (as IAM requires)" \
	cfn host_secrets
check "the outputs give the queue's URL and ARN and the topic's ARN" cfn outputs

# --- c. moto -----------------------------------------------------------------------
start_moto
check "moto: three stacks made (fan-out, a host queue, a fleet of one)" \
	cfn deploy "$MOTO_URL" "$T/stacks.json"
if [ -s "$T/stacks.json" ]; then
	check "moto: the fan-out stack has the rule and the topic, and nothing of a host" \
		cfn fanout "$T/stacks.json"
	check "moto: the host stack's queue keyturn-web-1 with its redrive, retention, SSE" \
		cfn host "$T/stacks.json"
	check "moto: the host policy as stored: receive/delete on its queue, reads under app/" \
		cfn host_policy "$T/stacks.json"
	check "moto: the fleet of one has both halves; no prefix reads every secret" \
		cfn solo "$T/stacks.json"
	check "moto: with prefix app/, the deployed pattern lets through only app/ changes" \
		cfn matches "$MOTO_URL" "$T/stacks.json" fanout
	check "moto: without a prefix, every change and rotation outcome, no reads or failures" \
		cfn matches "$MOTO_URL" "$T/stacks.json" solo
else
	for what in fan-out host host-policy fleet-of-one prefix-pattern pattern; do
		skip_test "moto: no stacks to look at ($what)"
	done
fi

[ "$tap_n" -eq "$PLANNED" ] || not_ok "PLANNED ($PLANNED) matches the checks run ($tap_n)"
done_testing
