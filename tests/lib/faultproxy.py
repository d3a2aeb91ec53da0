#!/usr/bin/env python3
"""A programmable HTTP(S) reverse proxy for keyturn's system tests.

It sits between the AWS client under test and moto and, on command, makes the
faults moto cannot make: throttling, 5xx answers, slow answers, cut or
truncated connections, malformed or huge bodies, tampered requests and a
server clock that disagrees with the client's.

    faultproxy.py --listen-port P --upstream http://127.0.0.1:MOTO_PORT
                  [--tls-cert C --tls-key K] [--port-file F]

Control endpoints share the port (requests under /__proxy/ are never AWS ones):
    POST /__proxy/plan   {"actions":[A,...]} replaces the queue: each action is
                         used by one AWS request, in order; an empty queue passes
                         requests through. {"default":A} (or null) sets what
                         every request gets when the queue is empty.
    GET  /__proxy/stats  counts, X-Amz-Target totals, the last 50 X-Amz-Date
                         values and the actions applied.
    POST /__proxy/reset  forgets plan and statistics.
Actions: "pass", "throttle", "access_denied", {"status":500|503}, {"delay":SECONDS}, "reset",
"truncate", "malformed", {"oversize":BYTES}, "tamper", {"skew":SECONDS},
"decryption_failure" (a GetSecretValue that names a VersionId gets KMS's
DecryptionFailure, as when the new version's key is unusable; every other
request passes).
"""

import argparse
import email.utils
import http.client
import http.server
import json
import os
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse

# Headers that describe one hop of a connection, not the message: never copied.
HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
               "transfer-encoding", "upgrade", "expect", "content-length"}
AWS_JSON = "application/x-amz-json-1.1"
SIMPLE_ACTIONS = {"pass", "throttle", "access_denied", "reset", "truncate", "malformed", "tamper",
                  "decryption_failure"}
NUMERIC_ACTIONS = {"status": int, "delay": (int, float), "oversize": int,
                   "skew": (int, float)}


def log(msg):
    print("faultproxy: " + msg, file=sys.stderr, flush=True)


def action_name(action):
    """A short label for logs, and the check that an action is one we know."""
    if isinstance(action, str) and action in SIMPLE_ACTIONS:
        return action
    if isinstance(action, dict) and len(action) == 1:
        key, val = next(iter(action.items()))
        kind = NUMERIC_ACTIONS.get(key)
        # Only a clock may be off in either direction; the rest are sizes.
        if (kind and isinstance(val, kind) and not isinstance(val, bool)
                and (val >= 0 or key == "skew")):
            return "%s=%s" % (key, val)
    raise ValueError("unknown action: %r" % (action,))


class State:
    """The plan and the statistics, shared by every handler thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.queue = []
            self.default = "pass"
            self.requests = 0
            self.forwarded = 0
            self.targets = {}
            self.amz_dates = []
            self.applied = []

    def next_action(self, headers):
        """Counts one AWS request and takes the action meant for it."""
        with self.lock:
            self.requests += 1
            target = headers.get("X-Amz-Target") or "(none)"
            self.targets[target] = self.targets.get(target, 0) + 1
            date = headers.get("X-Amz-Date")
            if date:
                self.amz_dates = (self.amz_dates + [date])[-50:]
            action = self.queue.pop(0) if self.queue else self.default
            self.applied = (self.applied + [action])[-1000:]
            return action

    def stats(self):
        with self.lock:
            return {"requests": self.requests, "forwarded": self.forwarded,
                    "targets": dict(self.targets), "amz_dates": list(self.amz_dates),
                    "actions_applied": list(self.applied),
                    "queued": len(self.queue), "default": self.default}


class Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.1 lets a client keep its connection, so "reset" can also cut a
    # reused one, as a load balancer does.
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    timeout = 60

    def log_message(self, fmt, *args):
        pass  # one line per AWS request is written by handle_aws instead

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_HEAD = do_GET

    def dispatch(self):
        try:
            body = self.read_body()
            if self.path.startswith("/__proxy/"):
                self.handle_control(body)
            else:
                self.handle_aws(body)
        except (ConnectionError, socket.timeout, ssl.SSLError):
            # The client gave up (often on purpose: a timeout test); nothing
            # more can be said to it.
            self.close_connection = True

    def read_body(self):
        """The whole request body: it must be read before any answer, or the
        next request on a kept connection would start inside it."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # --- answers made here ------------------------------------------------
    def answer(self, status, body, ctype=AWS_JSON, date=None, extra=()):
        """Sends a whole answer. send_response() is avoided because it adds
        its own Date header, and "skew" needs to choose that one."""
        if isinstance(body, str):
            body = body.encode()
        self.send_response_only(status)
        self.send_header("Date", date or email.utils.formatdate(usegmt=True))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-amzn-RequestId", "faultproxy-%d" % time.monotonic_ns())
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def aws_error(self, status, etype, message, date=None):
        self.answer(status, json.dumps({"__type": etype, "message": message}), date=date,
                    extra=[("x-amzn-ErrorType", etype)])

    def handle_control(self, body):
        state = self.server.state
        if self.command == "GET" and self.path == "/__proxy/stats":
            self.answer(200, json.dumps(state.stats()), "application/json")
        elif self.command == "POST" and self.path == "/__proxy/reset":
            state.reset()
            self.answer(200, "{}", "application/json")
        elif self.command == "POST" and self.path == "/__proxy/plan":
            try:
                plan = json.loads(body or b"{}")
                actions = plan.get("actions")
                if actions is not None and not isinstance(actions, list):
                    raise ValueError("actions must be a list")
                for a in (actions or []) + [plan.get("default") or "pass"]:
                    action_name(a)
            except (ValueError, AttributeError) as e:
                self.answer(400, json.dumps({"error": str(e)}), "application/json")
                return
            with state.lock:
                if actions is not None:
                    state.queue = list(actions)
                if "default" in plan:
                    state.default = plan["default"] or "pass"
            self.answer(200, "{}", "application/json")
        else:
            self.answer(404, json.dumps({"error": "no such control endpoint"}),
                        "application/json")

    # --- AWS requests -----------------------------------------------------
    def handle_aws(self, body):
        action = self.server.state.next_action(self.headers)
        name = action_name(action)
        log("%s %s -> %s" % (self.headers.get("X-Amz-Target", self.command),
                             self.path, name))
        if isinstance(action, dict):
            key, val = next(iter(action.items()))
        else:
            key, val = action, None

        if key == "pass":
            self.forward(body)
        elif key == "throttle":
            self.aws_error(400, "ThrottlingException", "Rate exceeded")
        elif key == "access_denied":
            self.aws_error(400, "AccessDeniedException", "faultproxy: injected access denied")
        elif key == "status":
            etype = {500: "InternalServiceError", 503: "ServiceUnavailable"}.get(
                val, "InternalFailure")
            self.aws_error(val, etype, "faultproxy: injected HTTP %d" % val)
        elif key == "delay":
            time.sleep(val)
            self.forward(body)
        elif key == "reset":
            self.reset_connection()
        elif key == "truncate":
            self.forward(body, truncate=True)
        elif key == "malformed":
            self.answer(200, '{"ARN": "x", "Name":')
        elif key == "oversize":
            self.send_oversize(val)
        elif key == "tamper":
            self.forward(tamper(body))
        elif key == "skew":
            self.send_skew(val)
        elif key == "decryption_failure":
            self.decryption_failure(body)

    def decryption_failure(self, body):
        target = self.headers.get("X-Amz-Target") or ""
        try:
            named = bool(json.loads(body or b"{}").get("VersionId"))
        except (ValueError, AttributeError):
            named = False
        if target.endswith(".GetSecretValue") and named:
            self.aws_error(400, "DecryptionFailure",
                           "Secrets Manager can't decrypt the protected secret text "
                           "using the provided KMS key.")
        else:
            self.forward(body)

    def reset_connection(self):
        """Aborts the TCP connection with RST instead of FIN: SO_LINGER with a
        zero timeout makes close() discard everything and reset. The socket is
        detached first because the buffered files made from it hold references
        that would otherwise delay the real close()."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.close_connection = True
        os.close(self.connection.detach())

    def send_oversize(self, size):
        """A well-formed JSON answer of exactly `size` bytes (at least the
        fixed part), written in pieces so a huge one costs no memory here."""
        head = b'{"ARN":"arn:aws:secretsmanager:us-east-1:123456789012:secret:big",' \
               b'"Name":"big","VersionId":"v","SecretString":"'
        tail = b'"}'
        fill = max(0, size - len(head) - len(tail))
        self.send_response_only(200)
        self.send_header("Date", email.utils.formatdate(usegmt=True))
        self.send_header("Content-Type", AWS_JSON)
        self.send_header("Content-Length", str(len(head) + fill + len(tail)))
        self.end_headers()
        self.wfile.write(head)
        chunk = b"A" * 65536
        while fill > 0:
            n = min(fill, len(chunk))
            self.wfile.write(chunk[:n])
            fill -= n
        self.wfile.write(tail)

    def send_skew(self, seconds):
        """Refuses the request as AWS refuses one signed with a clock that is
        off, and puts the server's (shifted) time in Date for the client to
        correct its clock from."""
        now = time.time()
        server = now + seconds
        fmt = "%Y%m%dT%H%M%SZ"
        signed = self.headers.get("X-Amz-Date") or time.strftime(fmt, time.gmtime(now))
        # AWS words the two directions differently; both are reproduced.
        if seconds >= 0:
            msg = "Signature expired: %s is now earlier than %s (%s - 5 min.)" % (
                signed, time.strftime(fmt, time.gmtime(server - 300)),
                time.strftime(fmt, time.gmtime(server)))
        else:
            msg = "Signature not yet current: %s is still later than %s (%s + 15 min.)" % (
                signed, time.strftime(fmt, time.gmtime(server + 900)),
                time.strftime(fmt, time.gmtime(server)))
        self.aws_error(400, "InvalidSignatureException", msg,
                       date=email.utils.formatdate(server, usegmt=True))

    def forward(self, body, truncate=False):
        """Sends the request on to moto unchanged (Host included, since the
        signature covers it) and relays the answer."""
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port or 80, timeout=60)
        try:
            conn.putrequest(self.command, self.path, skip_host=True,
                            skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in HOP_HEADERS:
                    conn.putheader(name, value)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
        except OSError as e:
            self.aws_error(502, "BadGateway", "faultproxy: upstream: %s" % e)
            return
        finally:
            conn.close()
        with self.server.state.lock:
            self.server.state.forwarded += 1
        self.send_response_only(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        if truncate:
            # Promise more than will come, send half, and hang up: the client
            # must see a short body, not a complete answer.
            self.send_header("Content-Length", str(len(data) + 1024))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)


def tamper(body):
    """Changes one character inside the first JSON string value (the
    SecretId, as a rule) so the body stays valid JSON and UTF-8 but no
    longer matches its signature."""
    b = bytearray(body)
    start = body.find(b'":')
    if start >= 0:
        i = body.find(b'"', start + 2) + 1
        while 0 < i < len(b) and b[i] != ord('"'):
            c = chr(b[i])
            if c.isascii() and c.isalpha():
                b[i] = ord(c.swapcase())
                return bytes(b)
            if c.isdigit():
                b[i] = ord(str((int(c) + 1) % 10))
                return bytes(b)
            i += 1
    return body + b" "  # nothing to flip: one more byte breaks it as well


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    tls = None

    def handle_error(self, request, client_address):
        # A client hanging up between requests (after a timeout or a size
        # limit, on purpose) is routine here and not worth a traceback.
        if not isinstance(sys.exc_info()[1], (ConnectionError, socket.timeout, ssl.SSLError)):
            super().handle_error(request, client_address)

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread, so
        # that a client that never finishes it cannot stall accept().
        if self.tls is not None:
            request.settimeout(10)
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log("TLS handshake failed: %s" % e)
                return
        try:
            self.RequestHandlerClass(request, client_address, self)
        finally:
            if self.tls is not None:
                request.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--listen-port", type=int, default=0, help="0: any free port")
    p.add_argument("--upstream", required=True, help="http://127.0.0.1:PORT")
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--port-file", help="written (atomically) once listening")
    args = p.parse_args()

    server = Server(("127.0.0.1", args.listen_port), Handler)
    server.state = State()
    server.upstream = urllib.parse.urlsplit(args.upstream)
    if args.tls_cert:
        server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.tls.load_cert_chain(args.tls_cert, args.tls_key)
    port = server.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    print("READY %d" % port, flush=True)
    log("listening on 127.0.0.1:%d%s, upstream %s" % (
        port, " (TLS)" if server.tls else "", args.upstream))
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
