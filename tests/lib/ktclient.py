#!/usr/bin/env python3
"""An independent client of keyturnd's socket protocol, for system tests.

Each message is a 4-byte big-endian length and that many bytes of one JSON
object (UTF-8), at most 1 MiB. Written from the protocol description alone
(standard library only), so that it checks the C side rather than mirrors it.

  ktclient.py --socket PATH [--as-user USER] [--timeout S] REQUEST_JSON...
      Sends each request on one connection, prints each answer as one JSON
      line. A REQUEST_JSON of "-" reads requests from stdin, one per line.
      Requests are sent exactly as given, so malformed JSON can be tested.
  ktclient.py --socket PATH MODE [options]
      Abuse modes (flood, slowloris, garbage, vanish) for robustness tests;
      each prints one JSON summary line. See --help of each mode.

Only the given Unix socket is ever contacted; every loop is bounded in count
and in time.
"""

import argparse
import errno
import json
import os
import pwd
import random
import resource
import select
import socket
import struct
import sys
import time

MAX_FRAME = 1024 * 1024
MAX_REQUEST = 64 * 1024  # the daemon closes a connection announcing a longer request
HDR = struct.Struct(">I")

# Bounds for the abuse modes, so a test can never run away.
MAX_FLOOD_CONNECTIONS = 20000
MAX_HOLD_S = 600.0
MAX_VANISH_COUNT = 100000

STATUS_REQUEST = b'{"v":1,"op":"status"}'


class ProtocolError(Exception):
    """The peer broke the framing (oversize or zero length, not JSON)."""


class ConnectionClosed(ProtocolError):
    """The peer closed the connection before a whole frame came in."""


def frame(payload):
    """Returns payload (bytes) with its length header."""
    return HDR.pack(len(payload)) + payload


class KtClient:
    """One connection to keyturnd: framed JSON requests, answers in order."""

    def __init__(self, path=None, timeout=5.0):
        self.sock = None
        if path is not None:
            self.connect(path, timeout)

    def connect(self, path, timeout=5.0):
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        try:
            s.connect(path)
        except BaseException:
            s.close()
            raise
        self.sock = s
        return self

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data):
        """Sends bytes as they are: no framing added."""
        self.sock.sendall(data)

    def send_frame(self, payload):
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if len(payload) > MAX_FRAME:
            raise ProtocolError("request of %d bytes is over 1 MiB" % len(payload))
        self.send_raw(frame(payload))

    def _recv_exact(self, n):
        chunks = []
        got = 0
        while got < n:
            b = self.sock.recv(min(n - got, 1 << 16))
            if not b:
                raise ConnectionClosed(
                    "connection closed after %d of %d bytes" % (got, n))
            chunks.append(b)
            got += len(b)
        return b"".join(chunks)

    def recv_frame(self):
        """Reads one whole frame; returns its payload (bytes)."""
        (n,) = HDR.unpack(self._recv_exact(HDR.size))
        if n == 0:
            raise ProtocolError("frame of zero length")
        if n > MAX_FRAME:
            raise ProtocolError("frame of %d bytes is over 1 MiB" % n)
        return self._recv_exact(n)

    def recv_json(self):
        payload = self.recv_frame()
        try:
            obj = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ProtocolError("answer is not JSON: %s" % e) from None
        if not isinstance(obj, dict):
            raise ProtocolError("answer is not a JSON object")
        return obj

    def request(self, obj):
        """Sends one request (a dict, or str/bytes sent as they are) and
        returns the answer as a dict."""
        if isinstance(obj, dict):
            obj = json.dumps(obj, separators=(",", ":"))
        self.send_frame(obj)
        return self.recv_json()


# --- helpers for the modes -------------------------------------------------


def become_user(spec):
    """Switches to a user: a name (with its groups), or UID[:GID] with no
    supplementary groups (for callers that have no passwd entry)."""
    if os.geteuid() != 0:
        raise SystemExit("ktclient: --as-user needs root")
    try:
        pw = pwd.getpwnam(spec)
        uid, gid = pw.pw_uid, pw.pw_gid
        os.initgroups(pw.pw_name, gid)
    except KeyError:
        parts = spec.split(":")
        if not (1 <= len(parts) <= 2 and all(p.isdigit() for p in parts)):
            raise SystemExit("ktclient: no such user: %s" % spec) from None
        uid = int(parts[0])
        gid = int(parts[1]) if len(parts) == 2 else uid
        os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
        raise SystemExit("ktclient: could not become %s" % spec)


def errno_name(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__


def server_alive(path, timeout):
    """True when a fresh connection gets an answer to status."""
    try:
        with KtClient(path, timeout) as c:
            return isinstance(c.request(STATUS_REQUEST), dict)
    except (OSError, ProtocolError):
        return False


def wait_closed(sock, timeout):
    """Waits for the peer to close or answer. Returns (what, seconds, data):
    what is "closed" (EOF or reset), "answered" (a whole frame came),
    "data" (bytes, but no whole frame), or "open" (nothing at all)."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    buf = b""
    sock.setblocking(False)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return ("data" if buf else "open"), timeout, buf
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        try:
            b = sock.recv(1 << 16)
        except BlockingIOError:
            continue
        except OSError:
            return "closed", time.monotonic() - t0, buf
        if not b:
            return "closed", time.monotonic() - t0, buf
        buf += b
        if len(buf) >= HDR.size:
            (n,) = HDR.unpack(buf[:HDR.size])
            if len(buf) >= HDR.size + n:
                return "answered", time.monotonic() - t0, buf


def describe_answer(buf):
    """The error code (or "ok") of a framed answer, for summaries."""
    try:
        (n,) = HDR.unpack(buf[:HDR.size])
        obj = json.loads(buf[HDR.size:HDR.size + n].decode("utf-8"))
    except (struct.error, UnicodeDecodeError, ValueError):
        return "unparsable"
    if not isinstance(obj, dict):
        return "not-an-object"
    if obj.get("ok") is True:
        return "ok"
    return str(obj.get("error"))


def raise_fd_limit(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


def emit(obj):
    print(json.dumps(obj, sort_keys=True), flush=True)


# --- modes -------------------------------------------------------------------


def mode_requests(args):
    reqs = []
    for r in args.requests:
        if r == "-":
            reqs.extend(line.rstrip("\n") for line in sys.stdin if line.strip())
        else:
            reqs.append(r)
    if not reqs:
        raise SystemExit("ktclient: no request given")
    try:
        c = KtClient(args.socket, args.timeout)
    except OSError as e:
        print("ktclient: connect %s: %s" % (args.socket, e), file=sys.stderr)
        return 1
    with c:
        for r in reqs:
            try:
                c.send_frame(r)
                ans = c.recv_json()
            except (OSError, ProtocolError) as e:
                print("ktclient: %s" % e, file=sys.stderr)
                return 1
            print(json.dumps(ans, separators=(",", ":")), flush=True)
    return 0


def connect_nonblocking(path, deadline):
    """Connects without blocking on a full backlog; retries EAGAIN until the
    deadline. Returns (socket, None) or (None, errno name)."""
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
            return s, None
        except BlockingIOError:
            s.close()
            if time.monotonic() >= deadline:
                return None, "EAGAIN"
            time.sleep(0.01)
        except OSError as e:
            s.close()
            return None, errno_name(e)


def mode_flood(args):
    """Opens many connections at once and holds them; then checks which of
    them the server still serves, and whether it serves a fresh one."""
    n = args.connections
    raise_fd_limit(n + 64)
    socks = []
    connect_errors = {}
    deadline = time.monotonic() + args.timeout
    for _ in range(n):
        s, err = connect_nonblocking(args.socket, deadline)
        if s is None:
            connect_errors[err] = connect_errors.get(err, 0) + 1
        else:
            socks.append(s)

    # Hold: note the connections the server closes meanwhile.
    closed = set()
    hold_end = time.monotonic() + args.hold
    poller = select.poll()
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    while True:
        left = hold_end - time.monotonic()
        if left <= 0:
            break
        for fd, _ev in poller.poll(max(1, int(left * 1000))):
            s = by_fd[fd]
            try:
                b = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                b = b""
            if not b:
                closed.add(fd)
                poller.unregister(fd)

    # After the hold: one status request on each connection still open.
    pending = {}
    send_failed = 0
    for fd, s in by_fd.items():
        if fd in closed:
            continue
        try:
            s.send(frame(STATUS_REQUEST))
            pending[fd] = b""
        except OSError:
            send_failed += 1
    answered = 0
    closed_after = 0
    ans_end = time.monotonic() + args.timeout
    while pending:
        left = ans_end - time.monotonic()
        if left <= 0:
            break
        for fd, _ev in poller.poll(max(1, int(left * 1000))):
            if fd not in pending:
                continue
            try:
                b = by_fd[fd].recv(1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                b = b""
            if not b:
                closed_after += 1
                del pending[fd]
                poller.unregister(fd)
                continue
            pending[fd] += b
            buf = pending[fd]
            if len(buf) >= 4 and len(buf) >= 4 + HDR.unpack(buf[:4])[0]:
                answered += 1
                del pending[fd]
                poller.unregister(fd)
    for s in socks:
        s.close()
    emit({
        "mode": "flood",
        "requested": n,
        "connected": len(socks),
        "connect_errors": connect_errors,
        "closed_during_hold": len(closed),
        "answered_after_hold": answered,
        "closed_after_hold": closed_after + send_failed,
        "unanswered_after_hold": len(pending),
        "alive_after": server_alive(args.socket, args.timeout),
    })
    return 0


def mode_slowloris(args):
    """Sends one valid frame a byte at a time; meanwhile checks that another
    connection is still served. Reports whether the server answered, or when
    it closed the connection."""
    data = frame(args.request.encode("utf-8"))
    out = {"mode": "slowloris", "frame_len": len(data), "delay": args.delay,
           "bytes_sent": 0, "closed_by_server": False, "closed_after_s": None,
           "answer": None, "others_served": None, "others_latency_s": None}
    try:
        c = KtClient(args.socket, args.timeout)
    except OSError as e:
        out["error"] = "connect: %s" % errno_name(e)
        emit(out)
        return 1
    t0 = time.monotonic()
    stop_at = t0 + args.max_time
    # Probe once the header and a byte of the body are in: the server then
    # holds a partial frame, which must not stall anybody else.
    probe_at = min(HDR.size + 1, len(data) - 1)
    with c:
        for i in range(len(data)):
            if i == probe_at and out["others_served"] is None:
                t = time.monotonic()
                out["others_served"] = server_alive(args.socket, args.timeout)
                out["others_latency_s"] = round(time.monotonic() - t, 4)
            try:
                c.sock.send(data[i:i + 1])
                out["bytes_sent"] = i + 1
            except OSError:
                out["closed_by_server"] = True
                break
            if i + 1 == len(data):
                break
            # Sleep the delay, but notice at once if the server hangs up.
            r, _, _ = select.select([c.sock], [], [], args.delay)
            if r:
                try:
                    b = c.sock.recv(1 << 16)
                except OSError:
                    b = b""
                if not b:
                    out["closed_by_server"] = True
                    break
            if time.monotonic() >= stop_at:
                out["gave_up"] = True
                break
        if out["bytes_sent"] == len(data) and not out["closed_by_server"]:
            what, _secs, buf = wait_closed(c.sock, args.timeout)
            if what == "answered":
                out["answer"] = describe_answer(buf)
            elif what == "closed":
                out["closed_by_server"] = True
        if out["closed_by_server"]:
            out["closed_after_s"] = round(time.monotonic() - t0, 3)
    out["alive_after"] = server_alive(args.socket, args.timeout)
    emit(out)
    return 0


def garbage_cases(rng):
    """name -> (bytes to send, whether to shut down our sending side)."""
    pad = b'{"v":1,"op":"status","pad":"'
    tail = b'"}'
    exact = pad + b"x" * (MAX_REQUEST - len(pad) - len(tail)) + tail
    over = pad + b"x" * (MAX_REQUEST + 1 - len(pad) - len(tail)) + tail
    return {
        "random_bytes": (bytes(rng.getrandbits(8) for _ in range(256)), False),
        "zero_length": (HDR.pack(0), False),
        "oversize_length": (HDR.pack(MAX_FRAME + 1), False),
        "max_u32_length": (HDR.pack(0xFFFFFFFF), False),
        "oversize_with_body": (HDR.pack(MAX_FRAME + 1) + b"{" * 4096, False),
        "random_payload": (frame(bytes(rng.getrandbits(8) for _ in range(64))), False),
        "invalid_utf8": (frame(b'{"v":1,"op":"\xff\xfe"}'), False),
        "not_json": (frame(b"hello, keyturn"), False),
        "not_object": (frame(b"[1,2,3]"), False),
        "nul_inside": (frame(b'{"v":1,"op":"status\x00"}'), False),
        "trailing_data": (frame(b'{"v":1,"op":"status"} {}'), False),
        "deep_nesting": (frame(b"[" * 30000 + b"]" * 30000), False),
        "truncated_then_eof": (HDR.pack(100) + b'{"v":1', True),
        "exact_max_request": (frame(exact), False),
        "over_max_request": (frame(over), False),
    }


def mode_garbage(args):
    """Sends each kind of malformed input on its own connection and reports
    what the server did: closed, answered (with the error code), or nothing."""
    rng = random.Random(args.seed)
    cases = garbage_cases(rng)
    names = list(cases) if not args.cases else args.cases.split(",")
    for name in names:
        if name not in cases:
            raise SystemExit("ktclient: unknown garbage case %s (known: %s)"
                             % (name, ",".join(cases)))
    results = {}
    for name in names:
        data, shut = cases[name]
        r = {}
        try:
            c = KtClient(args.socket, args.timeout)
        except OSError as e:
            results[name] = {"outcome": "connect-failed", "error": errno_name(e)}
            continue
        with c:
            try:
                c.sock.sendall(data)
                if shut:
                    c.sock.shutdown(socket.SHUT_WR)
            except OSError as e:
                # The server may close before it has read everything.
                r["send_error"] = errno_name(e)
            what, secs, buf = wait_closed(c.sock, args.timeout)
            r["outcome"] = what
            r["after_s"] = round(secs, 3)
            if what == "answered":
                r["answer"] = describe_answer(buf)
                # After an error answer, does the server keep or drop the line?
                what2, _s, _b = wait_closed(c.sock, min(args.timeout, 1.0))
                r["then"] = what2
        results[name] = r
    emit({"mode": "garbage", "seed": args.seed, "cases": results,
          "alive_after": server_alive(args.socket, args.timeout)})
    return 0


def mode_vanish(args):
    """Sends a request and closes at once without reading the answer, count
    times; with --reset the close is an abortive one (RST)."""
    data = frame(args.request.encode("utf-8"))
    sent = 0
    errors = {}
    deadline = time.monotonic() + args.max_time
    for _ in range(args.count):
        if time.monotonic() >= deadline:
            break
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(args.timeout)
            try:
                s.connect(args.socket)
                if args.reset:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
                s.sendall(data)
                sent += 1
            finally:
                s.close()
        except OSError as e:
            k = errno_name(e)
            errors[k] = errors.get(k, 0) + 1
    # Give the server a moment to trip over the closed peers.
    time.sleep(min(0.2, args.timeout))
    emit({"mode": "vanish", "count": args.count, "sent": sent, "errors": errors,
          "alive_after": server_alive(args.socket, args.timeout)})
    return 0


# --- command line ------------------------------------------------------------


def positive(kind, hi):
    def conv(s):
        v = kind(s)
        if not (0 < v <= hi):
            raise argparse.ArgumentTypeError("must be in (0, %s]" % hi)
        return v
    return conv


def mode_parsers():
    p = {}
    f = argparse.ArgumentParser(prog="ktclient.py flood")
    f.add_argument("--connections", type=positive(int, MAX_FLOOD_CONNECTIONS), default=1000)
    f.add_argument("--hold", type=positive(float, MAX_HOLD_S), default=5.0)
    p["flood"] = (f, mode_flood)

    s = argparse.ArgumentParser(prog="ktclient.py slowloris")
    s.add_argument("--delay", type=positive(float, 60.0), default=1.0)
    s.add_argument("--max-time", type=positive(float, MAX_HOLD_S), default=120.0)
    s.add_argument("--request", default=STATUS_REQUEST.decode())
    p["slowloris"] = (s, mode_slowloris)

    g = argparse.ArgumentParser(prog="ktclient.py garbage")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--cases", help="comma-separated subset of the cases")
    p["garbage"] = (g, mode_garbage)

    v = argparse.ArgumentParser(prog="ktclient.py vanish")
    v.add_argument("--count", type=positive(int, MAX_VANISH_COUNT), default=100)
    v.add_argument("--reset", action="store_true")
    v.add_argument("--max-time", type=positive(float, MAX_HOLD_S), default=60.0)
    v.add_argument("--request", default=STATUS_REQUEST.decode())
    p["vanish"] = (v, mode_vanish)
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="ktclient.py", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--as-user", metavar="USER")
    ap.add_argument("--timeout", type=positive(float, MAX_HOLD_S), default=5.0)
    ap.add_argument("rest", nargs=argparse.REMAINDER,
                    help="REQUEST_JSON... or MODE [options]")
    args = ap.parse_args(argv)
    if not args.rest:
        ap.error("give REQUEST_JSON... or a mode (%s)" % ", ".join(mode_parsers()))
    if args.as_user:
        become_user(args.as_user)
    modes = mode_parsers()
    if args.rest[0] in modes:
        parser, fn = modes[args.rest[0]]
        margs = parser.parse_args(args.rest[1:])
        margs.socket = args.socket
        margs.timeout = args.timeout
        return fn(margs)
    args.requests = args.rest
    return mode_requests(args)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
