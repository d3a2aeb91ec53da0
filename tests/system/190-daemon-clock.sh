#!/bin/bash
# keyturnd when the wall clock steps. The daemon runs under libfaketime
# (Debian's faketime package) with its wall clock read from a file that the
# test rewrites while it runs; CLOCK_MONOTONIC and CLOCK_BOOTTIME stay real
# (FAKETIME_DONT_FAKE_MONOTONIC=1). With check_interval = 3 the DescribeSecret
# cadence, counted at the fault proxy over a window, holds after a step of
# -1 h and one of +2 days, and a value changed in AWS is served within about
# check_interval after each step. A forward step of two more days while AWS
# fails leaves the cached value served (stale) instead of making it
# unavailable at once. Counts and delays are printed as diagnostics; only
# generous bounds are asserted.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"

need_built "$KEYTURND"
FT_LIB=
for f in /usr/lib/*/faketime/libfaketimeMT.so.1 /usr/lib/faketime/libfaketimeMT.so.1; do
	[ -f "$f" ] && FT_LIB=$f && break
done
if [ -z "$FT_LIB" ]; then
	echo "1..0 # SKIP needs libfaketime (apt-get install faketime)"
	exit 0
fi
me=$(id -un)
WINDOW=9 # s over which DescribeSecret calls are counted
CHECK=3   # check_interval

# put NAME VALUE: a new AWSCURRENT value, straight at moto.
put() {
	"$PYTHON3" - "$MOTO_URL_DIRECT" "$1" "$2" <<'PY'
import sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.put_secret_value(SecretId=sys.argv[2], SecretString=sys.argv[3])
PY
}
value_of() { jfield "$(kt_get app/db)" 'd.get("string")'; }
value_is() { [ "$(value_of)" = "$1" ]; }
stale_is() { [ "$(jfield "$(kt_get app/db)" 'd.get("stale")')" = "$1" ]; }
# checked_at: the wall-clock time the daemon shows for its last check.
checked_at() { jfield "$(kt_req '{"v":1,"op":"list"}')" 'd["secrets"][0]["checked_at"]'; }
sanitizer_clean() { ! grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; }
steps_logged() { grep -c 'wall clock stepped by' "$KT_LOG"; }
# Conditions for wait_until, re-evaluated at each try.
steps_at_least() { [ "$(steps_logged)" -ge "$1" ]; }
checks_at_least() { [ "$(calls DescribeSecret)" -ge "$1" ]; }
checked_before() { [ "$(checked_at)" -lt "$(($(date +%s) + $1))" ]; }
checked_after() { [ "$(checked_at)" -gt "$(($(date +%s) + $1))" ]; }
# step SPEC N: the daemon's wall clock becomes real time SPEC ("-1h", "+2d");
# waits until the daemon has logged its Nth step.
step() {
	echo "$1" >"$T/faketime"
	wait_until 10 steps_at_least "$2"
}
# cadence LABEL: DescribeSecret calls over WINDOW seconds, checked against
# the WINDOW / CHECK expected (jitter is +-10%; the bounds are generous).
cadence() {
	local n
	plan '{}'
	sleep "$WINDOW" # a measurement window, not a wait for a condition
	n=$(calls DescribeSecret)
	diag "$1: $n DescribeSecret in $WINDOW s (check_interval $CHECK s)"
	check "$1: the check cadence holds ($n checks in $WINDOW s)" [ "$n" -ge 2 -a "$n" -le 6 ]
}
# rotation LABEL VALUE: changes the value in AWS and times how long the
# daemon takes to serve it.
rotation() {
	local t0 t1
	put app/db "$2" || bail "put-secret-value failed"
	t0=$(date +%s.%N)
	wait_until 20 value_is "$2"
	t1=$(date +%s.%N)
	check "$1: the new value is served" value_is "$2"
	local dt
	dt=$("$PYTHON3" -c "print(round($t1 - $t0, 1))")
	diag "$1: the change was served after $dt s"
	check "$1: ... within check_interval and a margin ($dt s)" \
		"$PYTHON3" -c "import sys; sys.exit(0 if $dt <= $CHECK * 1.1 + 4 else 1)"
}

start_moto
start_proxy "$MOTO_URL"
MOTO_URL_DIRECT=$MOTO_URL
MOTO_URL=$PROXY_URL
"$PYTHON3" - "$MOTO_URL_DIRECT" <<'PY' || bail "moto setup"
import sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.create_secret(Name="app/db", SecretString="clock-value-0")
PY

write_config "check_interval = $CHECK
max_stale = 60" <<EOF
[secret:app/db]
allow_users = $me
EOF
echo "+0" >"$T/faketime"
# ASan wants to be first among the preloaded libraries; libfaketime is
# preloaded before it here, which ASan accepts when told not to check.
start_daemon LD_PRELOAD="$FT_LIB" FAKETIME_TIMESTAMP_FILE="$T/faketime" FAKETIME_NO_CACHE=1 \
	FAKETIME_DONT_FAKE_MONOTONIC=1 \
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" ||
	bail "keyturnd did not start under libfaketime"
wait_until 10 value_is clock-value-0
check "the value is served" value_is clock-value-0
# The first check comes 5 to 60 s after the first fetch, then every CHECK s.
wait_until 70 checks_at_least 1

cadence "before any step"
rotation "before any step" clock-value-1

# --- the wall clock steps back an hour --------------------------------------------
step -1h 1
check "a step of -1 h is noticed and logged" [ "$(steps_logged)" -ge 1 ]
grep -m1 'wall clock stepped by' "$KT_LOG" | sed 's/^/# log: /'
wait_until 10 checked_before -3000
ca=$(checked_at)
check "the daemon's wall clock is an hour behind (checked_at $ca, now $(date +%s))" \
	[ "$ca" -lt $(($(date +%s) - 3000)) -a "$ca" -gt $(($(date +%s) - 4000)) ]
cadence "after -1 h"
rotation "after -1 h" clock-value-2

# --- and forward two days ------------------------------------------------------------
step +2d 2
check "a step of +2 days is noticed" [ "$(steps_logged)" -ge 2 ]
wait_until 10 checked_after 86400
cadence "after +2 d"
rotation "after +2 d" clock-value-3

# --- a forward step while AWS fails --------------------------------------------------
plan '{"default":{"status":503}}'
wait_until 30 stale_is true
check "with AWS failing the value turns stale" stale_is true
step +4d 3
# max_stale was measured on the wall clock before, and two days made every
# value unavailable at the first request after the step.
a=$(kt_get app/db)
diag "get after the step: $(jfield "$a" '{k: d.get(k) for k in ("ok", "error", "message", "stale")}')"
expect_eq "after a +2 d step while AWS fails, the value is still served" clock-value-3 \
	"$(jfield "$a" 'd.get("string")')"
expect_eq "... marked stale" true "$(jfield "$a" 'd.get("stale")')"
check "... and list says it is available" \
	[ "$(jfield "$(kt_req '{"v":1,"op":"list"}')" 'd["secrets"][0]["available"]')" = true ]
plan '{}'
wait_until 30 stale_is false
check "AWS back: the value is fresh again" stale_is false

stop_daemon
check "keyturnd stops cleanly" [ "$KT_STATUS" -eq 0 ]
check "no sanitizer report in keyturnd's log" sanitizer_clean
done_testing
