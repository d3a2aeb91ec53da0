#!/usr/bin/env python3
"""A fake keyturnd for pam_keyturn's tests: it answers only "verify", on a
Unix socket, in keyturn's framing (4-byte big-endian length, then that many
bytes of JSON), and how it answers depends on the user name asked about, so
that one fake serves every case of a test script:

  any other user      a real check: "match" is whether the password equals
                      --password ({"ok":true,"match":B,"stage":...,"source":"cache"})
  kt-nomatch          match false, whatever the password
  kt-notfound, kt-denied, kt-unavailable, kt-throttled, kt-internal,
  kt-badrequest       {"ok":false,"error":CODE,"message":...}
  kt-unknowncode      an error code that the protocol does not have
  kt-garbage          a frame of bytes that are not JSON
  kt-badjson          a frame of JSON cut in the middle
  kt-trailing         a good answer with junk after it in the same frame
  kt-array            a JSON array instead of an object
  kt-okstring         "ok":"true" (a string)
  kt-matchstring      "match":"true" (a string)
  kt-matchint         "match":1
  kt-matchnull        "match":null
  kt-nomatchmember    {"ok":true} without "match"
  kt-stageint         "match":true with "stage":1
  kt-truncated        a header announcing more bytes than come, then a close
  kt-headercut        two bytes of a header, then a close
  kt-oversize         a header announcing 2 GiB, then a close
  kt-zerolength       a header announcing 0 bytes
  kt-pytrue, kt-comment, kt-squote, kt-dupmatch, kt-nulname, kt-trailobj,
  kt-overlong, kt-surrogate, kt-nan
                      raw bytes (RAW below) that lax JSON would read as a
                      match: True, a comment, single quotes, "match":false
                      then "match":true, "match\u0000x":true, a second
                      object after the first, overlong or surrogate UTF-8
  kt-close            a close without any answer
  kt-slow             the real check, after --slow seconds

Every request and connection is logged to --log as one JSON line, with the
password replaced by its length and whether it was right (never its value).
"""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

MAX_FRAME = 1 << 20

ERRORS = {
    "kt-notfound": "not_found",
    "kt-denied": "denied",
    "kt-unavailable": "unavailable",
    "kt-throttled": "throttled",
    "kt-internal": "internal",
    "kt-badrequest": "bad_request",
    "kt-unknowncode": "exploded",
}

# Answers that are not strict JSON, sent as they are. Each says "match":true
# in a way that a lax parser (json-c's default mode) would take.
_TAIL = b'"stage":"AWSCURRENT","source":"cache"}'
RAW = {
    "kt-pytrue": b'{"ok":true,"match":True,' + _TAIL,
    "kt-comment": b'{"ok":true,/* yes */"match":true,' + _TAIL,
    "kt-squote": b"{'ok':true,'match':true,'stage':'AWSCURRENT','source':'cache'}",
    "kt-dupmatch": b'{"ok":true,"match":false,"match":true,' + _TAIL,
    "kt-nulname": b'{"ok":true,"match":false,"match\\u0000x":true,' + _TAIL,
    "kt-trailobj": b'{"ok":true,"match":true,' + _TAIL + b'{"ok":true,"match":true}',
    "kt-overlong": b'{"ok":true,"match":true,"stage":"AWSCURRENT\xc0\xaf","source":"cache"}',
    "kt-surrogate": b'{"ok":true,"match":true,"stage":"AWS\xed\xa0\x80","source":"cache"}',
    "kt-nan": b'{"ok":true,"match":true,"fetched_at":NaN,' + _TAIL,
}

log_lock = threading.Lock()
conn_seq = 0


def log(args, rec):
    line = json.dumps(rec, sort_keys=True)
    with log_lock:
        with open(args.log, "a") as f:
            f.write(line + "\n")


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def recv_exact(conn, n):
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def check(args, req):
    ok = req.get("password") == args.password
    return {"ok": True, "match": ok, "stage": "AWSCURRENT" if ok else None,
            "source": "cache"}


def answer(args, conn, req):
    """Sends the answer that the user name asks for. Returns False when the
    connection is to be closed."""
    user = req.get("user")
    if user in ERRORS:
        body = {"ok": False, "error": ERRORS[user], "message": "fake: " + ERRORS[user]}
    elif user in RAW:
        conn.sendall(frame(RAW[user]))
        return True
    elif user == "kt-nomatch":
        body = {"ok": True, "match": False, "stage": None, "source": "cache"}
    elif user == "kt-garbage":
        conn.sendall(frame(b"\x17\x03garbage, not JSON \xfe\xff"))
        return True
    elif user == "kt-badjson":
        conn.sendall(frame(b'{"ok":true,"match":tr'))
        return True
    elif user == "kt-trailing":
        conn.sendall(frame(b'{"ok":true,"match":true,"stage":"AWSCURRENT","source":"cache"} x'))
        return True
    elif user == "kt-array":
        body = [True]
    elif user == "kt-okstring":
        body = {"ok": "true", "match": True}
    elif user == "kt-matchstring":
        body = {"ok": True, "match": "true", "stage": "AWSCURRENT", "source": "cache"}
    elif user == "kt-matchint":
        body = {"ok": True, "match": 1, "stage": "AWSCURRENT", "source": "cache"}
    elif user == "kt-matchnull":
        body = {"ok": True, "match": None, "stage": None, "source": "cache"}
    elif user == "kt-nomatchmember":
        body = {"ok": True, "stage": "AWSCURRENT", "source": "cache"}
    elif user == "kt-stageint":
        body = {"ok": True, "match": True, "stage": 1, "source": "cache"}
    elif user == "kt-truncated":
        conn.sendall(struct.pack(">I", 200) + b'{"ok":true,"match":true')
        return False
    elif user == "kt-headercut":
        conn.sendall(b"\x00\x00")
        return False
    elif user == "kt-oversize":
        conn.sendall(struct.pack(">I", 0x80000000) + b'{"ok":true,"match":true}')
        return False
    elif user == "kt-zerolength":
        conn.sendall(struct.pack(">I", 0))
        return True
    elif user == "kt-close":
        return False
    elif user == "kt-slow":
        time.sleep(args.slow)
        body = check(args, req)
    else:
        body = check(args, req)
    conn.sendall(frame(json.dumps(body).encode()))
    return True


def serve(args, conn, n):
    try:
        cred = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid, uid, gid = struct.unpack("3i", cred)
        log(args, {"event": "open", "conn": n, "uid": uid})
        while True:
            hdr = recv_exact(conn, 4)
            if hdr is None:
                break
            (length,) = struct.unpack(">I", hdr)
            if length == 0 or length > MAX_FRAME:
                log(args, {"event": "bad_frame", "conn": n, "length": length})
                break
            payload = recv_exact(conn, length)
            if payload is None:
                break
            try:
                req = json.loads(payload.decode("utf-8"))
            except ValueError:
                log(args, {"event": "bad_json", "conn": n})
                break
            rec = {k: v for k, v in req.items() if k != "password"}
            pw = req.get("password")
            rec.update(event="request", conn=n,
                       password_len=len(pw) if isinstance(pw, str) else None,
                       password_ok=pw == args.password)
            log(args, rec)
            if req.get("op") != "verify":
                conn.sendall(frame(json.dumps(
                    {"ok": False, "error": "bad_request", "message": "fake: verify only"}).encode()))
                continue
            if not answer(args, conn, req):
                break
    except OSError:
        pass
    finally:
        log(args, {"event": "close", "conn": n})
        conn.close()


def main():
    global conn_seq
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--socket", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--password-file", required=True,
                   help="a file whose first line is the password that matches")
    p.add_argument("--slow", type=float, default=3.0)
    args = p.parse_args()
    with open(args.password_file) as f:
        args.password = f.readline().rstrip("\n")

    try:
        os.unlink(args.socket)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(args.socket)
    os.chmod(args.socket, 0o666)
    srv.listen(64)

    def stop(signum, frm):
        try:
            os.unlink(args.socket)
        except OSError:
            pass
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        conn, _ = srv.accept()
        conn_seq += 1
        threading.Thread(target=serve, args=(args, conn, conn_seq), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
