#!/usr/bin/env python3
"""Differential test data for keyturn's SigV4 signer: random AWS JSON-protocol
POST requests signed by botocore's own SigV4Auth at a fixed time, written as
input for tests/tools/sigv4-sign plus botocore's answers, and a compare mode.

  sigv4_cases.py gen --input IN.jsonl --expected EXP.jsonl [--count N] [--seed S]
  sigv4_cases.py compare --expected EXP.jsonl --actual OUT.jsonl [--tag TAG]
"""

import argparse
import base64
import datetime
import difflib
import json
import os
import random
import string
import sys
from unittest import mock
from urllib.parse import quote, urlsplit

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

DEFAULT_COUNT = 400
# Fixed so that a failure reproduces; KT_SIGV4_SEED or --seed picks another.
DEFAULT_SEED = 20150830

SERVICES = [
    # (signing name, X-Amz-Target prefix, JSON version, operations)
    ("secretsmanager", "secretsmanager", "1.1",
     ["GetSecretValue", "DescribeSecret", "ListSecretVersionIds", "PutSecretValue"]),
    ("kms", "TrentService", "1.1", ["Decrypt", "GenerateDataKey", "DescribeKey"]),
    ("sts", "AWSSecurityTokenServiceV20110615", "1.0",
     ["GetCallerIdentity", "AssumeRole", "AssumeRoleWithWebIdentity"]),
    ("ssm", "AmazonSSM", "1.1", ["GetParameter", "GetParametersByPath"]),
    ("dynamodb", "DynamoDB_20120810", "1.0", ["GetItem", "Query"]),
    ("logs", "Logs_20140328", "1.1", ["PutLogEvents"]),
]

REGIONS = ["us-east-1", "us-west-2", "eu-central-1", "eu-west-2", "ap-northeast-1",
           "ap-southeast-2", "sa-east-1", "us-gov-west-1", "cn-north-1", "il-central-1"]

PATHS = ["/2015-03-31/functions/", "/a/b/c", "/a/./b/../c", "//double//slash//",
         "/with space/x", "/%7Euser/%2Fenc", "/unicode/\u00fcn\u00ef/\u2713", "/trailing/",
         "/a/b/..", "/.../x", "/~tilde/-_.!*'()"]

# Strings that stress JSON escaping and UTF-8 in bodies and query values.
ODD_TEXT = ["", "plain", "line\nbreak", "tab\there", 'quote"s', "back\\slash",
            "nul\u0000byte", "caf\u00e9", "\u65e5\u672c\u8a9e", "emoji \U0001F511\U0001F680",
            "\u05e9\u05dc\u05d5\u05dd rtl", "e\u0301 combining", "slash/and+plus=eq&amp",
            "%41 not decoded", "~!@#$^*()[]{}|;:,.<>?", " spaced  out "]

# botocore leaves these out of the signature, and so does keyturn.
UNSIGNED = [("User-Agent", "Boto3/1.0 Python/3.11 keyturn-test"),
            ("Expect", "100-continue"),
            ("X-Amzn-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793"),
            ("Connection", "keep-alive"),
            ("TE", "trailers")]

B64CHARS = string.ascii_letters + string.digits + "+/"


def odd_case(rng, name):
    style = rng.randrange(4)
    if style == 0:
        return name
    if style == 1:
        return name.lower()
    if style == 2:
        return name.upper()
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in name)


def odd_space(rng, value):
    """Pads a value with blanks and widens the gaps inside it."""
    def blanks(lo):
        return "".join(rng.choice(" \t") for _ in range(rng.randint(lo, 3)))
    if rng.random() < 0.5:
        value = " ".join(w + blanks(0) for w in value.split(" "))
    if rng.random() < 0.5:
        value = blanks(1) + value + blanks(1)
    return value


def random_json_body(rng, op):
    kind = rng.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return b"{}"
    doc = {"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:"
           + "".join(rng.choice(string.ascii_letters) for _ in range(rng.randint(1, 30)))}
    for _ in range(rng.randint(0, 4)):
        key = rng.choice(["VersionStage", "Description", "Value", "Name", op])
        doc[key] = rng.choice(ODD_TEXT) + rng.choice(ODD_TEXT)
    if rng.random() < 0.3:
        doc["Nested"] = {"List": [rng.randint(-10**9, 10**9), None, True, 1.5e-7]}
    text = json.dumps(doc, ensure_ascii=rng.random() < 0.5,
                      separators=rng.choice([(",", ":"), (", ", ": ")]))
    return text.encode("utf-8")


def random_query(rng):
    parts = []
    for _ in range(rng.randint(1, 5)):
        key = rng.choice(["Action", "Version", "max-items", "prefix", "a", "b",
                          "Param", "x-id", "\u00e9t\u00e9", "k y"])
        form = rng.randrange(6)
        if form == 0:
            parts.append(quote(key, safe="-_.~"))
        elif form == 1:
            parts.append(quote(key, safe="-_.~") + "=")
        else:
            parts.append(quote(key, safe="-_.~") + "=" + quote(rng.choice(ODD_TEXT), safe="-_.~"))
    if rng.random() < 0.3:
        parts.append(parts[0])
    rng.shuffle(parts)
    return "&".join(parts)


def random_url(rng, service, region):
    dns = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    host = f"{service}.{region}.{dns}"
    kind = rng.randrange(10)
    if kind == 0:
        return f"https://{host}:443"
    if kind == 1:
        return f"https://{host}:8443"
    if kind == 2:
        return f"http://127.0.0.1:{rng.randint(1024, 65535)}"
    if kind == 3:
        return "http://localhost:4566"
    if kind == 4:
        return f"http://[::1]:{rng.randint(1024, 65535)}"
    if kind == 5:
        return f"https://{host.upper()}"
    if kind == 6:
        return f"https://vpce-0a1b2c3d4e5f-abcdefgh.{service}.{region}.vpce.{dns}"
    return f"https://{host}"


def make_case(rng):
    service, prefix, version, ops = rng.choice(SERVICES)
    region = rng.choice(REGIONS)
    op = rng.choice(ops)
    tags = set()
    url = random_url(rng, service, region)
    if urlsplit(url).port is not None:
        tags.add("port")
    path = "/"
    if rng.random() < 0.15:
        path = rng.choice(PATHS)
        tags.add("path")
    url += path
    if rng.random() < 0.25:
        url += "?" + random_query(rng)
        tags.add("query")

    body = random_json_body(rng, op)
    if not body:
        tags.add("empty-body")
    elif any(b >= 0x80 for b in body) or b"\\u" in body:
        tags.add("unicode-body")

    ctype = f"application/x-amz-json-{version}"
    if rng.random() < 0.2:
        ctype += "; charset=utf-8"
    headers = [(odd_case(rng, "Content-Type"), odd_space(rng, ctype)),
               (odd_case(rng, "X-Amz-Target"), odd_space(rng, f"{prefix}.{op}"))]
    extras = [("Content-Length", str(len(body))),
              ("Accept-Encoding", "identity"),
              ("Accept", "*/*"),
              ("X-Kt-Request-Id", "%032x" % rng.getrandbits(128)),
              ("amz-sdk-invocation-id", "%08x-%04x" % (rng.getrandbits(32), rng.getrandbits(16))),
              ("amz-sdk-request", "attempt=1; max=3"),
              ("X-Kt-Empty", ""),
              ("X-Kt-Note", "caf\u00e9 au  lait"),
              ("X-Kt-Quoted", '"a   b   c"')]
    for name, value in rng.sample(extras, rng.randint(0, 4)):
        headers.append((odd_case(rng, name), odd_space(rng, value)))
        tags.add("odd-headers")
    if rng.random() < 0.2:
        for value in rng.sample(["value4", "value1", " value3 ", "value2"], rng.randint(2, 4)):
            headers.append((odd_case(rng, "X-Kt-Dup"), value))
        tags.add("duplicate-header")
    if rng.random() < 0.3:
        headers.append(rng.choice(UNSIGNED))
        tags.add("unsigned-header")
    if rng.random() < 0.1:
        headers.insert(0, (odd_case(rng, "Host"), odd_space(rng, urlsplit(url).netloc.lower())))
        tags.add("explicit-host")
    rng.shuffle(headers)

    token = None
    access = "AKIA" + "".join(rng.choice(string.ascii_uppercase + string.digits)
                              for _ in range(16))
    if rng.random() < 0.3:
        token = "".join(rng.choice(B64CHARS) for _ in range(rng.randint(20, 600))) + "=="
        access = "ASIA" + access[4:]
        tags.add("token")
    secret = "".join(rng.choice(B64CHARS) for _ in range(40))
    # 2015 to 2040: past 2038 checks that time_t is wide enough.
    timestamp = rng.randint(1420070400, 2208988800)
    return dict(url=url, method="POST", headers=headers, body=body, access=access,
                secret=secret, token=token, region=region, service=service,
                timestamp=timestamp, tags=sorted(tags))


class RecordingSigV4Auth(SigV4Auth):
    """botocore's signer, keeping the canonical request for diagnostics."""

    def string_to_sign(self, request, canonical_request):
        self.canonical = canonical_request
        return super().string_to_sign(request, canonical_request)


def botocore_sign(case):
    req = AWSRequest(method=case["method"], url=case["url"], data=case["body"])
    for name, value in case["headers"]:
        req.headers[name] = value  # appends: repeated names stay repeated
    auth = RecordingSigV4Auth(Credentials(case["access"], case["secret"], case["token"]),
                              case["service"], case["region"])
    host = auth.headers_to_sign(req)["host"]
    when = datetime.datetime.fromtimestamp(case["timestamp"], datetime.timezone.utc)
    with mock.patch.object(botocore.auth, "get_current_datetime",
                           return_value=when.replace(tzinfo=None)):
        auth.add_auth(req)
    return host, req.headers["Authorization"], req.headers["X-Amz-Date"], auth.canonical


def generate(args):
    rng = random.Random(args.seed)
    with open(args.input, "w", encoding="utf-8") as fin, \
         open(args.expected, "w", encoding="utf-8") as fexp:
        for i in range(args.count):
            case = make_case(rng)
            host, authz, amz_date, canonical = botocore_sign(case)
            headers = [list(h) for h in case["headers"]]
            # A client sends Host whether or not the caller named it.
            if not any(n.lower() == "host" for n, _ in headers):
                headers.insert(0, ["Host", host])
            parts = urlsplit(case["url"])
            fin.write(json.dumps({
                "id": i, "method": case["method"], "path": parts.path,
                "query": parts.query or None, "headers": headers,
                "body_b64": base64.b64encode(case["body"]).decode("ascii"),
                "access_key": case["access"], "secret_key": case["secret"],
                "session_token": case["token"], "region": case["region"],
                "service": case["service"], "timestamp": case["timestamp"],
            }, ensure_ascii=False) + "\n")
            fexp.write(json.dumps({
                "id": i, "url": case["url"], "tags": case["tags"], "authorization": authz,
                "amz_date": amz_date, "canonical_request": canonical,
            }, ensure_ascii=False) + "\n")
    print(f"wrote {args.count} cases (seed {args.seed})")
    return 0


def load_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def compare(args):
    expected = load_jsonl(args.expected)
    actual = load_jsonl(args.actual)
    if len(expected) != len(actual):
        print(f"{len(expected)} expected results but {len(actual)} actual ones")
        return 1
    checked = bad = 0
    for exp, act in zip(expected, actual):
        if args.tag and args.tag not in exp["tags"]:
            continue
        checked += 1
        if act.get("authorization") == exp["authorization"] and \
           act.get("amz_date") == exp["amz_date"]:
            continue
        bad += 1
        if bad > args.show:
            continue
        print(f"case {exp['id']} ({exp['url']}, tags {','.join(exp['tags'])}):")
        if "error" in act:
            print(f"  sigv4-sign: {act['error']} (errno {act.get('errno')})")
            continue
        print(f"  botocore: {exp['authorization']}")
        print(f"  keyturn:  {act.get('authorization')}")
        diff = difflib.unified_diff(exp["canonical_request"].split("\n"),
                                    act.get("canonical_request", "").split("\n"),
                                    "botocore", "keyturn", lineterm="")
        for line in diff:
            print("  " + repr(line)[1:-1])
    what = f"tag {args.tag}" if args.tag else "all"
    print(f"{what}: {checked - bad}/{checked} requests sign identically to botocore")
    return 0 if bad == 0 and checked > 0 else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    g = sub.add_parser("gen", help="generate requests and botocore's signatures")
    g.add_argument("--count", type=int, default=DEFAULT_COUNT)
    g.add_argument("--seed", type=int,
                   default=int(os.environ.get("KT_SIGV4_SEED", DEFAULT_SEED)))
    g.add_argument("--input", required=True, help="JSONL requests for sigv4-sign")
    g.add_argument("--expected", required=True, help="JSONL of botocore's results")
    c = sub.add_parser("compare", help="compare sigv4-sign's output with botocore's")
    c.add_argument("--expected", required=True)
    c.add_argument("--actual", required=True)
    c.add_argument("--tag", help="only the cases with this tag (none there fails)")
    c.add_argument("--show", type=int, default=5, help="mismatches to print in full")
    args = ap.parse_args()
    return generate(args) if args.mode == "gen" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
