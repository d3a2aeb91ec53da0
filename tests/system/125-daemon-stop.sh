#!/bin/bash
# keyturnd stops quickly while AWS is slow. The fault proxy holds every AWS
# answer for 8 s; a refresh and a get of an uncached version are parked on
# such calls when SIGTERM comes. Both clients are answered `unavailable`
# ("keyturnd is stopping") first, the calls in flight are cancelled (libcurl's
# progress callback), and keyturnd exits 0 within 2 s, with no sanitizer
# report. A second run stops the daemon while a retry waits in its backoff.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"

need_built "$KEYTURND"
me=$(id -un)

# now_ms: the wall clock in milliseconds, for the figures.
now_ms() { echo $(($(date +%s%N) / 1000000)); }
logged() { grep -qF -- "$1" "$KT_LOG"; }
proxy_saw() { [ "$(calls "$1")" -ge "${2:-1}" ] 2>/dev/null; }
sanitizer_clean() { ! grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; }
# error_of FILE: the error code of the first answer in FILE.
error_of() { [ -s "$1" ] && json_get <(head -n 1 "$1") 'd.get("error")'; }

start_moto
"$PYTHON3" - "$MOTO_URL" <<'PY' || bail "moto setup"
import sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.create_secret(Name="app/db", SecretString="stop-db-value-0001")
sm.create_secret(Name="app/api", SecretString="stop-api-value-0002")
PY
start_proxy "$MOTO_URL"
MOTO_URL=$PROXY_URL

# max_wait = 30: the parked callers must still be waiting when SIGTERM comes.
write_config "check_interval = 3600
refresh_min_interval = 1
max_wait = 30" <<EOF
[secret:app/db]
allow_users = $me
[secret:app/api]
allow_users = $me
EOF

# --- SIGTERM with two callers parked on 8 s AWS answers ---------------------------
start_daemon || bail "keyturnd did not start"
a=$(kt_get app/db)
expect_eq "app/db is served before the slow phase" "True stop-db-value-0001" \
	"$(jfield "$a" 'd.get("ok"), d.get("string")' | tr -d "(),'")"

plan '{"default": {"delay": 8}}'
"$PYTHON3" "$KT_LIB/ktclient.py" --socket "$KT_SOCK" --timeout 30 \
	'{"v":1,"op":"refresh","secret":"app/db"}' >"$T/refresh.out" 2>"$T/refresh.err" &
refresh_pid=$!
"$PYTHON3" "$KT_LIB/ktclient.py" --socket "$KT_SOCK" --timeout 30 \
	'{"v":1,"op":"get","secret":"app/api","version_id":"00000000-0000-4000-8000-000000000125"}' \
	>"$T/getv.out" 2>"$T/getv.err" &
getv_pid=$!
# Each is parked once its access line is logged (the same loop turn parks
# it) and the proxy holds the call it waits for.
check "the refresh is parked" wait_until 10 logged "op=refresh secret=app/db uid=$(id -u) pid=$refresh_pid "
check "the get of an uncached version is parked" \
	wait_until 10 logged "op=get secret=app/api uid=$(id -u) pid=$getv_pid "
check "the proxy holds a DescribeSecret" wait_until 10 proxy_saw DescribeSecret
check "the proxy holds a GetSecretValue" wait_until 10 proxy_saw GetSecretValue

t0=$(now_ms)
kill -TERM "$KT_PID"
wait "$KT_PID"
KT_STATUS=$?
t1=$(now_ms)
wait "$refresh_pid" "$getv_pid"
diag "keyturnd exited $((t1 - t0)) ms after SIGTERM with AWS answers held for 8 s"
expect_eq "keyturnd exits with status 0" 0 "$KT_STATUS"
check "keyturnd exits within 2 s of SIGTERM ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 2000
for c in refresh getv; do
	expect_eq "$c: the parked caller gets unavailable" unavailable "$(error_of "$T/$c.out")"
	check "$c: ... saying keyturnd is stopping" grep -q "keyturnd is stopping" "$T/$c.out"
done
check "the log says it stopped" logged "stopped"
check "no sanitizer report" sanitizer_clean

# --- SIGTERM while a retry waits in its backoff ----------------------------------------
# Every AWS answer is a 500: the first fetches are retried after a full-jitter
# backoff of up to 1 s, then 2 s, and a refresh waits for them. The stop cuts
# the wait short.
mv "$KT_LOG" "$T/keyturnd-1.log"
plan '{"default": {"status": 500}}'
start_daemon || bail "keyturnd did not start again"
"$PYTHON3" "$KT_LIB/ktclient.py" --socket "$KT_SOCK" --timeout 30 \
	'{"v":1,"op":"refresh","secret":"app/db"}' >"$T/refresh2.out" 2>"$T/refresh2.err" &
refresh_pid=$!
check "the refresh is parked" wait_until 10 logged "op=refresh secret=app/db uid=$(id -u) pid=$refresh_pid "
check "an AWS call failed once and is to be retried" wait_until 10 logged " attempt 1: server"
t0=$(now_ms)
kill -TERM "$KT_PID"
wait "$KT_PID"
KT_STATUS=$?
t1=$(now_ms)
wait "$refresh_pid"
diag "keyturnd exited $((t1 - t0)) ms after SIGTERM during retries and backoff"
expect_eq "keyturnd exits with status 0 (retrying)" 0 "$KT_STATUS"
check "keyturnd exits within 2 s of SIGTERM while retrying ($((t1 - t0)) ms)" test $((t1 - t0)) -lt 2000
expect_eq "the parked refresh gets unavailable" unavailable "$(error_of "$T/refresh2.out")"
check "no sanitizer report (retrying)" sanitizer_clean

# --- max_wait: a get waiting on a slow AWS is answered before the client gives up ----
mv "$KT_LOG" "$T/keyturnd-2.log"
sed -i 's/^max_wait = 30$/max_wait = 2/' "$KT_CONF"
plan '{}'
start_daemon || bail "keyturnd did not start a third time"
plan '{"default": {"delay": 8}}'
t0=$(now_ms)
a=$(kt_req '{"v":1,"op":"get","secret":"app/api","version_id":"00000000-0000-4000-8000-000000000126"}')
t1=$(now_ms)
diag "a get parked on an 8 s AWS answer was answered after $((t1 - t0)) ms (max_wait = 2)"
expect_eq "with max_wait = 2 it is answered unavailable, still being fetched" "unavailable True" \
	"$(jfield "$a" 'd.get("error"), "still being fetched" in d.get("message", "")' | tr -d "(),'")"
check "after about max_wait, well before the AWS answer ($((t1 - t0)) ms)" \
	test $((t1 - t0)) -ge 1900 -a $((t1 - t0)) -lt 6000
stop_daemon
expect_eq "and it stops cleanly" 0 "$KT_STATUS"

done_testing
