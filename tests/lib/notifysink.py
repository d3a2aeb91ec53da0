#!/usr/bin/env python3
"""Plays systemd's side of sd_notify for tests: binds a datagram socket and
writes each message it receives, one per line (newlines shown as '|'), to a
file. Stops after --seconds."""
import argparse
import os
import socket
import time

p = argparse.ArgumentParser()
p.add_argument("--socket", required=True)
p.add_argument("--out", required=True)
p.add_argument("--seconds", type=float, default=120)
a = p.parse_args()

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(a.socket)
os.chmod(a.socket, 0o777)
deadline = time.monotonic() + a.seconds
with open(a.out, "a", buffering=1) as out:
    while time.monotonic() < deadline:
        s.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            data = s.recv(4096)
        except socket.timeout:
            continue
        out.write(data.decode("utf-8", "replace").replace("\n", "|") + "\n")
