#!/usr/bin/env python3
"""A programmable stand-in for EC2 instance metadata (IMDSv2) and the ECS/EKS
container credentials endpoint, on 127.0.0.1, for keyturn's system tests.

IMDS:      PUT /latest/api/token (needs X-aws-ec2-metadata-token-ttl-seconds),
           GET /latest/meta-data/iam/security-credentials/[ROLE],
           GET /latest/meta-data/placement/region
Container: GET /creds (checks the Authorization header when one is configured)
STS:       POST / answers the XML error named by sts_error (for error paths only)
Control:   GET /__ctl/stats (counters and the request log as JSON),
           POST /__ctl/mode (a JSON object of settings to change),
           POST /__ctl/reset (zero the counters and forget the log),
           POST /__ctl/expire-tokens (every issued token becomes invalid)

Settings (command line --name value or /__ctl/mode):
  role             role name the listing answers ("" or no_role: 404)
  no_role          true: the role listing answers 404
  expire_s         credentials expire this many seconds from now
  expiration       this Expiration instead (e.g. "9999-12-31T23:59:59Z")
  no_expiration    true: credentials carry no Expiration at all
  token_ttl_cap    tokens live at most this long, whatever the client asked
  token_put_status answer the token PUT with this status instead (403/404/405)
  v1_allowed       answer GETs that carry no token (IMDSv1)
  creds_status     answer the role credentials GET with this status instead
  container_status answer the container GET with this status instead
  auth_token       the Authorization value the container endpoint requires
  region           what placement/region answers
  sts_error        the <Code> of the XML error POST / answers (with HTTP 400)
"""
import argparse
import datetime
import json
import os
import secrets
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROLES = "/latest/meta-data/iam/security-credentials/"

state_lock = threading.Lock()
settings = {
    "role": "kt-test-role",
    "no_role": False,
    "expire_s": 3600,
    "expiration": "",
    "no_expiration": False,
    "token_ttl_cap": 0,
    "token_put_status": 0,
    "v1_allowed": False,
    "creds_status": 0,
    "container_status": 0,
    "container_path": "/creds",
    "auth_token": "",
    "region": "eu-west-3",
    "sts_error": "InvalidIdentityToken",
}
tokens = {}  # token -> expiry (monotonic seconds)
stats = {}
log = []
serial = [0]


def count(name):
    stats[name] = stats.get(name, 0) + 1


def iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def new_creds(prefix):
    serial[0] += 1
    doc = {
        "AccessKeyId": "%s%06d" % (prefix, serial[0]),
        "SecretAccessKey": secrets.token_urlsafe(30),
        "Token": secrets.token_urlsafe(60),
        "Expiration": settings["expiration"] or iso(time.time() + int(settings["expire_s"])),
    }
    if settings["no_expiration"]:
        del doc["Expiration"]
    return doc


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fakemeta: " + (fmt % args) + "\n")

    def reply(self, status, body=b"", ctype="text/plain"):
        if isinstance(body, str):
            body = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def note(self):
        log.append({
            "method": self.command,
            "path": self.path,
            "token": self.headers.get("X-aws-ec2-metadata-token") is not None,
            "ttl": self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"),
            "authorization": self.headers.get("Authorization") is not None,
        })
        del log[:-200]

    # --- control -----------------------------------------------------------
    def control(self):
        if self.command == "GET" and self.path == "/__ctl/stats":
            out = dict(stats)
            out["log"] = log
            out["settings"] = settings
            return self.reply(200, json.dumps(out), "application/json")
        if self.command == "POST" and self.path == "/__ctl/mode":
            try:
                change = json.loads(self.body() or b"{}")
            except ValueError:
                return self.reply(400, "bad json")
            settings.update(change)
            return self.reply(200, json.dumps(settings), "application/json")
        if self.command == "POST" and self.path == "/__ctl/reset":
            self.body()
            stats.clear()
            log.clear()
            return self.reply(200, "{}", "application/json")
        if self.command == "POST" and self.path == "/__ctl/expire-tokens":
            self.body()
            tokens.clear()
            return self.reply(200, "{}", "application/json")
        return self.reply(404, "no such control")

    # --- IMDS ----------------------------------------------------------------
    def token_put(self):
        self.body()
        count("token_put")
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds")
        stats["last_ttl"] = ttl
        if settings["token_put_status"]:
            return self.reply(int(settings["token_put_status"]), "refused")
        # Real IMDS refuses tokens requested through a proxy.
        if self.headers.get("X-Forwarded-For") is not None:
            return self.reply(403, "forwarded")
        try:
            ttl = int(ttl)
        except (TypeError, ValueError):
            return self.reply(400, "missing or bad TTL")
        if ttl < 1 or ttl > 21600:
            return self.reply(400, "bad TTL")
        if settings["token_ttl_cap"]:
            ttl = min(ttl, int(settings["token_ttl_cap"]))
        tok = secrets.token_urlsafe(40)
        tokens[tok] = time.monotonic() + ttl
        return self.reply(200, tok)

    def token_ok(self):
        """None when the request may go on, else the status to answer."""
        tok = self.headers.get("X-aws-ec2-metadata-token")
        if tok is None:
            count("v1_get")
            return None if settings["v1_allowed"] else 401
        exp = tokens.get(tok)
        if exp is None or exp <= time.monotonic():
            tokens.pop(tok, None)
            count("stale_token")
            return 401
        return None

    def imds_get(self):
        refused = self.token_ok()
        if refused is not None:
            count("answered_401")
            return self.reply(refused, "unauthorized")
        if self.path == "/latest/meta-data/placement/region":
            count("region")
            return self.reply(200, settings["region"])
        if self.path == ROLES:
            count("role_list")
            if settings["no_role"] or not settings["role"]:
                return self.reply(404, "no role")
            return self.reply(200, settings["role"] + "\n")
        if self.path == ROLES + settings["role"] and settings["role"]:
            count("role_creds")
            if settings["creds_status"]:
                return self.reply(int(settings["creds_status"]), "failing")
            doc = new_creds("ASIAIMDS")
            doc.update({"Code": "Success", "Type": "AWS-HMAC",
                        "LastUpdated": iso(time.time())})
            return self.reply(200, json.dumps(doc), "text/plain")
        return self.reply(404, "not found")

    # --- container ---------------------------------------------------------------
    def container_get(self):
        count("container")
        want = settings["auth_token"]
        got = self.headers.get("Authorization")
        stats["container_auth_seen"] = got is not None
        if want and got != want:
            count("container_denied")
            return self.reply(401, json.dumps({"message": "bad authorization"}),
                              "application/json")
        if settings["container_status"]:
            return self.reply(int(settings["container_status"]), "failing")
        doc = new_creds("ASIACONT")
        doc["RoleArn"] = "arn:aws:iam::123456789012:role/kt-task"
        return self.reply(200, json.dumps(doc), "application/json")

    # --- STS errors --------------------------------------------------------------
    def sts_post(self):
        form = self.body().decode(errors="replace")
        count("sts")
        stats["sts_unsigned"] = self.headers.get("Authorization") is None
        stats["sts_has_token"] = "WebIdentityToken=" in form
        doc = ('<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
               "<Error><Type>Sender</Type><Code>%s</Code>"
               "<Message>The token &amp; its signature could not be verified</Message>"
               "</Error><RequestId>fake</RequestId></ErrorResponse>" % settings["sts_error"])
        return self.reply(400, doc, "text/xml")

    def dispatch(self):
        with state_lock:
            if self.path.startswith("/__ctl/"):
                return self.control()
            self.note()
            if self.command == "PUT" and self.path == "/latest/api/token":
                return self.token_put()
            if self.command == "GET" and self.path.startswith("/latest/"):
                return self.imds_get()
            if self.command == "GET" and self.path == settings["container_path"]:
                return self.container_get()
            if self.command == "POST" and self.path == "/":
                return self.sts_post()
            self.body()
            return self.reply(404 if self.command == "GET" else 405, "not here")

    do_GET = dispatch
    do_PUT = dispatch
    do_POST = dispatch


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="0: any free port")
    ap.add_argument("--port-file", help="write the port here once listening")
    for key, val in settings.items():
        if isinstance(val, bool):
            ap.add_argument("--" + key.replace("_", "-"), action="store_true")
        else:
            ap.add_argument("--" + key.replace("_", "-"), type=type(val), default=val)
    args = ap.parse_args()
    for key in settings:
        settings[key] = getattr(args, key)
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.daemon_threads = True
    if args.port_file:
        # Written whole and then renamed, so a reader never sees half a number.
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.replace(tmp, args.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
