#!/bin/bash
# What wrong passwords may cost in AWS calls, counted at the fault proxy:
#   a. 1,000 wrong passwords for one account at 10 a second against
#      refresh_min_interval = 1 s (as 1 a second against the shipped 10 s,
#      time scaled by 10; check_interval 3600 s): at most 3 + 5 per 1,000
#      calls, and never two within refresh_min_interval;
#   b. one wrong password for each of 50 regular accounts with [login:*]:
#      at most 3 calls; system accounts cost none; a secret AWS said does
#      not exist is not asked for again (the negative cache);
#   c. a wrong password, a rotation within refresh_min_interval, then the
#      new password: it waits for the deferred check and matches; while
#      failures go on, the back-off grows and failed passwords are answered
#      at once.
# Each part starts keyturnd afresh (a full budget). Needs root: verify for
# other accounts is root's, and the test makes accounts.

PLANNED=21

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"
trap cleanup_accounts EXIT

need_built "$KEYTURND"
need_root_accounts "verify the passwords of other accounts and make test users"

HOST=$(hostname)
OLD=Old-pass-0001
verify() { kt_req "{\"v\":1,\"op\":\"verify\",\"user\":\"$1\",\"password\":\"$2\"}"; }
verdict() {
	jfield "$1" '("match %s %s" % (d["stage"], d["source"]) if d["match"] else "mismatch %s" % d["source"]) if d.get("ok") else d["error"]'
}

# pace.py USER COUNT RATE: COUNT wrong passwords for USER, RATE a second, each
# on a connection of its own (so a request that waits for a deferred check
# holds nobody up); meanwhile polls the proxy's counts every 0.1 s. Prints one
# JSON line: answers by kind, the times (s from the start) at which each AWS
# call was first seen, and the slowest answer.
cat >"$T/pace.py" <<'PY'
import json, socket, struct, sys, time, selectors, http.client
sock_path, user, count, rate, proxy_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
sel = selectors.DefaultSelector()
kinds, calls, slowest = {}, [], 0.0
seen = 0
def aws_count():
    c = http.client.HTTPConnection("127.0.0.1", proxy_port, timeout=5)
    c.request("GET", "/__proxy/stats")
    n = json.loads(c.getresponse().read())["requests"]
    c.close()
    return n
t0 = time.monotonic()
sent = answered = 0
next_poll = t0
while answered < count and time.monotonic() - t0 < count / rate + 30:
    now = time.monotonic()
    while sent < count and now >= t0 + sent / rate:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        req = json.dumps({"v": 1, "op": "verify", "user": user, "password": "guess-%d" % sent}).encode()
        s.sendall(struct.pack(">I", len(req)) + req)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, [b"", now])
        sent += 1
    if now >= next_poll:
        n = aws_count()
        calls += [round(now - t0, 2)] * (n - seen)
        seen = n
        next_poll = now + 0.1
    for key, _ in sel.select(timeout=0.02):
        buf, start = key.data
        chunk = key.fileobj.recv(65536)
        buf += chunk
        if len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0] or not chunk:
            d = json.loads(buf[4:]) if chunk else {"error": "closed"}
            k = ("match" if d["match"] else "mismatch") if d.get("ok") else d.get("error")
            kinds[k] = kinds.get(k, 0) + 1
            slowest = max(slowest, time.monotonic() - start)
            answered += 1
            sel.unregister(key.fileobj)
            key.fileobj.close()
        else:
            key.data[0] = buf
n = aws_count()
calls += [round(time.monotonic() - t0, 2)] * (n - seen)
print(json.dumps({"kinds": kinds, "calls": calls, "slowest": round(slowest, 2),
                  "elapsed": round(time.monotonic() - t0, 1)}))
PY

start_moto
start_proxy "$MOTO_URL"
AWS_URL=$MOTO_URL
MOTO_URL=$PROXY_URL
# Regular accounts (uid from UID_MIN up): 45 whose secret does not exist, then
# 5 whose secret does.
ACCTS=()
for ((i = 0; i < 50; i++)); do
	u=ktb-$$-$i
	useradd -M -N -s /usr/sbin/nologin "$u" && made_users+=("$u") || bail "useradd $u failed"
	ACCTS+=("$u")
done
"$PYTHON3" - "$AWS_URL" "$HOST" "$OLD" "${ACCTS[@]:45}" >"$T/setup.out" 2>&1 <<'PY' || bail "moto setup: $(cat "$T/setup.out")"
import json, sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.create_secret(Name="hosts/%s/breakglass" % sys.argv[2],
                 SecretString=json.dumps({"username": "ktbg", "password": sys.argv[3]}))
for u in sys.argv[4:]:
    sm.create_secret(Name="users/" + u, SecretString=json.dumps({"password": "pass-" + u}))
PY
# fresh_daemon REFRESH_MIN_INTERVAL [LOGINS]: keyturnd started afresh (its
# earlier logs kept in $T/earlier.log), with [login:*] and, unless LOGINS
# is "star", [login:ktbg], whose value is fetched at start.
fresh_daemon() {
	local ktbg=$'[login:ktbg]\nsecret = hosts/%H/breakglass\nkey = password\n'
	[ "${2:-}" = star ] && ktbg=
	[ -n "${KT_PID:-}" ] && stop_daemon
	write_config "check_interval = 3600
refresh_min_interval = $1" <<EOF
$ktbg
[login:*]
secret = users/%u
key = password
EOF
	[ -f "$KT_LOG" ] && cat "$KT_LOG" >>"$T/earlier.log" && : >"$KT_LOG"
	start_daemon || bail "keyturnd did not start"
	wait_until 15 grep -q "ready:" "$KT_LOG" || bail "keyturnd did not get ready"
}

# --- a. 1,000 wrong passwords over time --------------------------------------------
fresh_daemon 1
plan '{}'
out=$("$PYTHON3" "$T/pace.py" "$KT_SOCK" ktbg 1000 10 "$PROXY_PORT")
diag "paced run: $out"
expect_eq "1,000 wrong passwords, 10 a second: all answered no match" 1000 \
	"$(jfield "$out" 'd["kinds"].get("mismatch", 0)')"
n=$(jfield "$out" 'len(d["calls"])')
diag "AWS calls for 1,000 wrong passwords over $(jfield "$out" 'd["elapsed"]') s: $n (before this budget: one per second, about 100)"
check "... cost at most 3 + 5 per 1,000 AWS calls (8)" [ "$n" -le 8 ]
check "... and at least one (the first failure is checked)" [ "$n" -ge 1 ]
gap=$(jfield "$out" 'min([b - a for a, b in zip(d["calls"], d["calls"][1:])] or [99])')
diag "shortest time between two calls: $gap s (polled every 0.1 s)"
check "... never two within refresh_min_interval" "$PYTHON3" -c "import sys; sys.exit(not $gap >= 0.8)"
slow=$(jfield "$out" 'd["slowest"]')
diag "slowest answer: $slow s"
check "... every answer within the PAM module's default timeout (5 s)" \
	"$PYTHON3" -c "import sys; sys.exit(not $slow < 5)"

# --- b. one wrong password for every account ---------------------------------------------
# (No [login:ktbg]: its first scheduled check would come within a minute.)
fresh_daemon 1 star
plan '{}'
mapfile -t SYS < <(getent passwd | awk -F: '$3 < 1000 || $3 > 60000 { print $1 }')
for u in "${SYS[@]}"; do
	echo "{\"v\":1,\"op\":\"verify\",\"user\":\"$u\",\"password\":\"guess\"}"
done | kt_req - >"$T/sys.out"
expect_eq "system accounts (${#SYS[@]}, uid outside UID_MIN..UID_MAX): all not_found" "${#SYS[@]}" \
	"$(grep -c '"not_found"' "$T/sys.out")"
diag "AWS calls for one wrong password for each of ${#SYS[@]} system accounts: $(requests)"
expect_eq "... at no AWS call" 0 "$(requests)"
for u in "${ACCTS[@]}"; do
	echo "{\"v\":1,\"op\":\"verify\",\"user\":\"$u\",\"password\":\"guess\"}"
done | kt_req - >"$T/all.out"
expect_eq "one wrong password for each of 50 regular accounts: 50 answers" 50 "$(wc -l <"$T/all.out")"
check "... none a match" sh -c "! grep -q '\"match\": *true' '$T/all.out'"
n=$(requests)
diag "AWS calls for one wrong password for each of 50 accounts: $n (before this budget: 50)"
diag "answers: $(grep -o '"error": *"[a-z_]*"' "$T/all.out" | sort | uniq -c | tr -s ' \n' ' ')"
check "... cost at most 3 AWS calls" [ "$n" -le 3 ]
absent=$(grep -c '"not_found"' "$T/all.out")
check "... the accounts fetched first have no secret: not_found ($absent)" [ "$absent" -ge 1 ]
check "... the others are unavailable, saying the budget is spent" grep -q 'over budget' "$T/all.out"
wait_until 5 grep -q 'does not exist in AWS; not asking again' "$KT_LOG"
plan '{}'
for ((i = 0; i < absent; i++)); do
	echo "{\"v\":1,\"op\":\"verify\",\"user\":\"${ACCTS[$i]}\",\"password\":\"guess\"}"
done | kt_req - >"$T/again.out"
expect_eq "their wrong passwords again: not_found" "$absent" "$(grep -c '"not_found"' "$T/again.out")"
expect_eq "... from the negative cache, at no AWS call" 0 "$(requests)"

# --- c. a typo, a rotation, the new password -------------------------------------------
fresh_daemon 4
a=$(verify ktbg "$OLD")
expect_eq "the right password matches" "match AWSCURRENT cache" "$(verdict "$a")"
plan '{}'
a=$(verify ktbg typo-"$OLD")
expect_eq "a typo does not match" "mismatch cache" "$(verdict "$a")"
typo=$(date +%s.%N)
MOTO_URL=$AWS_URL rotate_secret "hosts/$HOST/breakglass" \
	'{"username": "ktbg", "password": "New-pass-0002"}' >"$T/rotate.out" 2>&1
# The user types the new password 1.5 s after the typo's answer, so the
# next check allowed (4 s after the typo's) is within the 3 s keyturnd waits.
sleep "$("$PYTHON3" -c "print(max(0, 1.5 - ($(date +%s.%N) - $typo)))")"
started=$(date +%s.%N)
a=$(verify ktbg New-pass-0002)
took=$("$PYTHON3" -c "import sys; print(round($(date +%s.%N) - $started, 2))")
expect_eq "the new password, sent within refresh_min_interval of the typo's check: a match" \
	"match AWSCURRENT cache" "$(verdict "$a")"
diag "it waited $took s for the deferred check; AWS calls: $(calls DescribeSecret) DescribeSecret, $(calls GetSecretValue) GetSecretValue"
check "... after a deferred check (the daemon says so)" grep -q 'checking with AWS in [0-9]* ms' "$KT_LOG"
plan '{}'
for ((i = 0; i < 4; i++)); do
	verify ktbg "wrong-$i" >/dev/null
done
started=$(date +%s.%N)
a=$(verify ktbg wrong-again)
took=$("$PYTHON3" -c "import sys; print(round($(date +%s.%N) - $started, 2))")
diag "5 failures in a row cost $(requests) AWS calls; the last was answered in $took s"
check "with failures going on and the back-off beyond a few seconds, a failure is answered at once" \
	"$PYTHON3" -c "import sys; sys.exit(not $took < 1)"
stop_daemon
expect_eq "keyturnd stopped cleanly" 0 "$KT_STATUS"
check "no sanitizer report" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG' '$T/earlier.log'"
done_testing
