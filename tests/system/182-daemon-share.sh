#!/bin/bash
# A uid that pipelines requests on several connections and reads none of the
# answers is stopped at its share of unsent output (1 MiB) instead of making
# the daemon hold all of them; once it reads, every answer arrives, in order,
# on every connection (its stalled connections are woken, none is left
# waiting for the idle timeout). Needs root (it creates a user).
PLANNED=8

. "$KT_SRCDIR/tests/lib/accounts.sh"
need_root_accounts "create a user that reads the secret"
command -v setpriv >/dev/null || skip_all "needs setpriv (util-linux) to act as another user"

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
need_built "$KEYTURND"

trap cleanup_accounts EXIT
U=kttest-$$-r
useradd -r -M -s /usr/sbin/nologin "$U" && made_users+=("$U") || bail "cannot create $U"
uid=$(id -u "$U") gid=$(id -g "$U")
chmod 755 "$T"

start_moto
head -c 45000 /dev/urandom | base64 -w0 >"$T/big"   # 60,000 characters
aws_cli secretsmanager create-secret --name app/big --secret-string "file://$T/big" >/dev/null ||
	bail "moto setup"
write_config "idle_timeout = 60" <<EOF2
[secret:app/big]
allow_users = $U
EOF2
start_daemon || bail "keyturnd did not start"
a=$(kt_get app/big)
expect_eq "the 60,000-character secret is cached" 60000 "$(jfield "$a" 'len(d.get("string", ""))')"

cat >"$T/pipeline.py" <<'PY'
import json, os, select, socket, struct, sys, time
sock, conns, per = sys.argv[1], 4, 40
req = json.dumps({"v": 1, "op": "get", "secret": "app/big"}).encode()
frame = struct.pack(">I", len(req)) + req
cs = []
for _ in range(conns):
    c = socket.socket(socket.AF_UNIX)
    c.connect(sock)
    c.setblocking(False)
    cs.append([c, frame * per, b"", 0])
# Send everything we can without reading an answer, for up to 3 s.
t0 = time.monotonic()
while time.monotonic() - t0 < 3 and any(x[1] for x in cs):
    _, w, _ = select.select([], [x[0] for x in cs if x[1]], [], 0.2)
    for x in cs:
        if x[0] in w:
            try:
                n = x[0].send(x[1])
                x[1] = x[1][n:]
            except BlockingIOError:
                pass
unsent = sum(len(x[1]) for x in cs)
# Tell the test we have sent, and wait until it has looked at the daemon.
open(sys.argv[2], "w").close()
while not os.path.exists(sys.argv[3]) and time.monotonic() - t0 < 60:
    time.sleep(0.05)
# Now read every answer (and send what is left as room appears).
ok = bad = 0
t0 = time.monotonic()
while time.monotonic() - t0 < 30 and any(x[3] < per for x in cs):
    r, w, _ = select.select([x[0] for x in cs if x[3] < per], [x[0] for x in cs if x[1]], [], 0.5)
    for x in cs:
        if x[0] in w and x[1]:
            try:
                n = x[0].send(x[1]); x[1] = x[1][n:]
            except BlockingIOError:
                pass
        if x[0] in r:
            d = x[0].recv(1 << 20)
            if not d:
                x[3] = per + 1000  # closed early
                continue
            x[2] += d
            while len(x[2]) >= 4:
                (n,) = struct.unpack(">I", x[2][:4])
                if len(x[2]) < 4 + n:
                    break
                ans = json.loads(x[2][4:4 + n]); x[2] = x[2][4 + n:]
                x[3] += 1
                if ans.get("ok") and len(ans.get("string", "")) == 60000:
                    ok += 1
                else:
                    bad += 1
print(json.dumps({"ok": ok, "bad": bad, "requests_unsent": unsent,
                  "secs": round(time.monotonic() - t0, 2)}))
PY
mkdir -m 777 "$T/flags"
setpriv --reuid="$uid" --regid="$gid" --init-groups "$PYTHON3" "$T/pipeline.py" "$KT_SOCK" \
	"$T/flags/sent" "$T/flags/go" >"$T/pipeline.out" 2>&1 &
pp=$!
kt_pids+=("$pp")
wait_until 30 test -e "$T/flags/sent" || bail "the pipelining client did not start"
# unsent_over N: the daemon holds more than N bytes of unsent answers now.
unsent() { jfield "$(kt_req '{"v":1,"op":"status"}')" 'd["unsent_bytes"]'; }
unsent_over() { [ "$(unsent)" -gt "$1" ]; }
check "the daemon answers the uid up to its 1 MiB share" wait_until 20 unsent_over 1048576
# Once at the share it stops: 160 answers of 60 KiB would be 9.6 MB.
held=$(unsent)
diag "unsent answers held for the uid: $held bytes"
check "but no further: at most the share plus one answer per connection ($held bytes)" \
	test "$held" -le $((1048576 + 4 * 70000))
touch "$T/flags/go"
wait "$pp"
out=$(cat "$T/pipeline.out")
diag "pipeline: $out"
expect_eq "every one of 4 x 40 pipelined answers arrives once the uid reads" "160 0" \
	"$(jfield "$out" 'str(d["ok"]) + " " + str(d["bad"])' 2>/dev/null || echo "$out")"
check "and it took well under the idle timeout" \
	test "$(jfield "$out" 'int(d["secs"] < 20)' 2>/dev/null || echo 0)" -eq 1
a=$(kt_get app/big)
expect_eq "the daemon serves afterwards" 60000 "$(jfield "$a" 'len(d.get("string", ""))')"
stop_daemon
expect_eq "SIGTERM stops keyturnd cleanly" 0 "$KT_STATUS"
check "no sanitizer report from keyturnd" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
[ "$tap_n" -eq "$PLANNED" ] || not_ok "PLANNED ($PLANNED) matches the checks run ($tap_n)"
done_testing
