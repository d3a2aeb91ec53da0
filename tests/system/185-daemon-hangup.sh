#!/bin/bash
# keyturnd when a client hangs up while its request waits on AWS. The fault
# proxy delays every AWS answer by a few seconds; a client sends a refresh (or
# a get of a version not cached) and closes its connection. While the call
# waits, the daemon's CPU stays near idle (no loop spinning on the hang-up);
# when the answer comes it survives (no use of the freed connection: clean
# under ASan/UBSan), the answer still lands in the cache, and the next get
# works. Then 20 hang-ups at once, of refreshes and of version gets, to make
# a use-after-free likely to show.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"
need_built "$KEYTURND"
HOSTILE=$KT_BUILDDIR/tests/tools/kt-hostile
need_built "$HOSTILE"

# How long the proxy holds each AWS answer, in seconds.
DELAY=5
# The CPU the daemon may use while requests wait, in CPU seconds per second.
CPU_BOUND=0.3
NSEC=20
WORKERS=16

# --- moto, the proxy, 20 secrets of two versions each ------------------------------------
start_moto
start_proxy "$MOTO_URL"
declare -A old_vid
secrets=()
for ((i = 1; i <= NSEC; i++)); do
	s=$(printf 'app/h%02d' "$i")
	secrets+=("$s")
	aws_cli secretsmanager create-secret --name "$s" --secret-string "old-$s-$$" \
		>"$T/create.json" || bail "moto setup"
	old_vid[$s]=$(json_get "$T/create.json" 'd["VersionId"]')
	aws_cli secretsmanager put-secret-value --secret-id "$s" --secret-string "new-$s-$$" \
		>/dev/null || bail "moto setup (second version)"
done

write_config "workers = $WORKERS
refresh_min_interval = 1" < <(for s in "${secrets[@]}"; do echo "[secret:$s]"; done)
sed -i "s|^endpoint = .*|endpoint = $PROXY_URL|" "$KT_CONF"
start_daemon || bail "keyturnd did not start"
cached_all() {
	[ "$(jfield "$(kt_req '{"v":1,"op":"status"}')" 'd["secrets"]["cached"]' 2>/dev/null)" = "$NSEC" ]
}
# A refresh within refresh_min_interval of the first fetch would be throttled
# rather than wait on AWS.
up_2s() { [ "$(jfield "$(kt_req '{"v":1,"op":"status"}')" 'd["uptime"]' 2>/dev/null)" -ge 2 ]; }
# Each secret's first check comes 5 to 60 s after its first value: one still
# to come, or running, when the delay below is set would answer a refresh
# parked on it without the delay. Once done, the next is check_interval away.
first_checks_done() {
	local now
	now=$(date +%s)
	[ "$(jfield "$(kt_req '{"v":1,"op":"list"}')" \
		"all(s['next_check'] > $now + 600 for s in d['secrets']) and len(d['secrets']) == $NSEC" \
		2>/dev/null)" = true ]
}
if wait_until 60 cached_all && wait_until 10 up_2s && wait_until 90 first_checks_done; then
	ok "keyturnd serves through the fault proxy, its $NSEC secrets cached"
else
	not_ok "keyturnd serves through the fault proxy, its $NSEC secrets cached"
fi

# --- helpers ----------------------------------------------------------------------------
# cpu_ticks: the daemon's utime + stime, in clock ticks.
cpu_ticks() { sed 's/^.*) //' "/proc/$KT_PID/stat" 2>/dev/null | awk '{ print $12 + $13 }'; }
# cpu_rate NAME: samples the daemon's CPU over about 2 s (a measurement, not
# a wait) and checks it against CPU_BOUND.
cpu_rate() {
	local c0 c1 w0 w1 rate hz
	hz=$(getconf CLK_TCK)
	c0=$(cpu_ticks) w0=$(date +%s%N)
	sleep 2
	c1=$(cpu_ticks) w1=$(date +%s%N)
	if [ -z "$c0" ] || [ -z "$c1" ]; then
		not_ok "$1: keyturnd's CPU while the requests wait (keyturnd is gone)"
		return
	fi
	rate=$(awk -v c=$((c1 - c0)) -v hz="$hz" -v w=$((w1 - w0)) 'BEGIN { printf "%.3f", c / hz / (w / 1e9) }')
	diag "$1: keyturnd used $rate CPU seconds per second while the requests waited on AWS"
	if awk -v r="$rate" -v b="$CPU_BOUND" 'BEGIN { exit !(r < b) }'; then
		ok "$1: keyturnd's CPU stays near idle while the requests wait ($rate s/s < $CPU_BOUND)"
	else
		not_ok "$1: keyturnd's CPU stays near idle while the requests wait ($rate s/s < $CPU_BOUND)"
	fi
}
# checked_at NAME: the secret's checked_at per list.
checked_at() {
	jfield "$(kt_req '{"v":1,"op":"list"}')" \
		"[s['checked_at'] for s in d['secrets'] if s['name'] == '$1'][0]" 2>/dev/null
}
# checked_since NAME T: NAME was checked after T.
checked_since() { local c; c=$(checked_at "$1") && [ "$c" -gt "$2" ]; }
all_checked_since() {
	local s
	for s in "${secrets[@]}"; do
		checked_since "$s" "${before[$s]}" || return 1
	done
}
# at_least N COMMAND...: COMMAND prints a number that is N or more.
at_least() { local v; v=$("${@:2}") && [ "${v:-0}" -ge "$1" ]; }
forwarded() { requests >/dev/null && json_get "$T/stats.json" 'd["forwarded"]'; }
# handled OP N: the daemon's log has N or more audit lines of OP.
handled() { [ "$(grep -c "access: op=$1 " "$KT_LOG")" -ge "$2" ]; }
# hangup NAME OP CALL JSON...: the requests (of OP) on their own connections,
# closed once the daemon has handled every one (its audit lines) and the
# first CALL has reached the proxy; checks that none was answered first.
hangup() {
	local name=$1 op=$2 call=$3 pid out seen
	shift 3
	seen=$(grep -c "access: op=$op " "$KT_LOG")
	rm -f "$T/hold"
	"$HOSTILE" --socket "$KT_SOCK" --seconds 60 --hold-file "$T/hold" hangup "$@" \
		>"$T/hangup-$name.out" 2>"$T/hangup-$name.err" &
	pid=$!
	kt_pids+=("$pid")
	wait_until 20 handled "$op" $((seen + $#)) ||
		diag "$name: the daemon handled $(($(grep -c "access: op=$op " "$KT_LOG") - seen)) of $#"
	wait_until 20 at_least 1 calls "$call" || diag "$name: no $call call reached the proxy"
	touch "$T/hold"
	wait "$pid"
	out=$(cat "$T/hangup-$name.out")
	if [ "$out" = "hangup sent=$# of $# answered_before_hangup=0" ] &&
		at_least 1 calls "$call"; then
		ok "$name: $# requests wait on AWS when their clients hang up"
	else
		not_ok "$name: $# requests wait on AWS when their clients hang up"
		diag "$out; $(calls "$call") $call calls at the proxy"
		sed 's/^/#   /' "$T/hangup-$name.err" | head -n 5
	fi
	diag "$name: $(calls "$call") $call calls had reached the proxy at the hang-up"
}
# alive_and_clean NAME: the daemon runs and its log has no sanitizer report.
alive_and_clean() {
	check "$1: keyturnd is still running" kill -0 "$KT_PID"
	if grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; then
		not_ok "$1: no sanitizer report from keyturnd"
		grep -E -A12 "$KT_SANITIZER_RE" "$KT_LOG" | head -n 24 | sed 's/^/#   /'
	else
		ok "$1: no sanitizer report from keyturnd"
	fi
}
# value NAME [MEMBERS]: the string a get answers, or its error.
value() { jfield "$(kt_get "$@")" 'd.get("string", d.get("error"))' 2>/dev/null; }

# --- one refresh, hung up ------------------------------------------------------------------
plan "{\"default\":{\"delay\":$DELAY}}"
declare -A before
before[app/h01]=$(checked_at app/h01)
hangup "one refresh" refresh DescribeSecret '{"v":1,"op":"refresh","secret":"app/h01"}'
cpu_rate "one refresh"
if wait_until $((DELAY + 20)) at_least 1 forwarded &&
	wait_until 20 checked_since app/h01 "${before[app/h01]:-0}"; then
	ok "one refresh: the delayed answer reaches the daemon and its cache"
else
	not_ok "one refresh: the delayed answer reaches the daemon and its cache"
fi
alive_and_clean "one refresh"
expect_eq "one refresh: the next get works" "new-app/h01-$$" "$(value app/h01)"

# --- 20 refreshes, hung up --------------------------------------------------------------------
# app/h01 must be out of its refresh_min_interval again, or its refresh would
# be answered throttled at once.
h01_rested() { local c; c=$(checked_at app/h01) && [ "$(date +%s)" -ge $((c + 2)) ]; }
wait_until 10 h01_rested || diag "app/h01 was checked less than 2 s ago"
plan "{\"default\":{\"delay\":$DELAY}}"
reqs=()
for s in "${secrets[@]}"; do
	before[$s]=$(checked_at "$s")
	reqs+=("{\"v\":1,\"op\":\"refresh\",\"secret\":\"$s\"}")
done
hangup "$NSEC refreshes" refresh DescribeSecret "${reqs[@]}"
if wait_until $((3 * DELAY + 20)) at_least "$NSEC" forwarded && wait_until 20 all_checked_since; then
	ok "$NSEC refreshes: every delayed answer reaches the daemon and its cache"
else
	not_ok "$NSEC refreshes: every delayed answer reaches the daemon and its cache"
fi
alive_and_clean "$NSEC refreshes"
bad=""
for s in "${secrets[@]}"; do
	[ "$(value "$s")" = "new-$s-$$" ] || bad+=" $s"
done
expect_eq "$NSEC refreshes: the next get of each works" "" "$bad"

# --- 20 gets of versions not cached, hung up ----------------------------------------------
plan "{\"default\":{\"delay\":$DELAY}}"
reqs=()
for s in "${secrets[@]}"; do
	reqs+=("{\"v\":1,\"op\":\"get\",\"secret\":\"$s\",\"version_id\":\"${old_vid[$s]}\"}")
done
hangup "$NSEC version gets" get GetSecretValue "${reqs[@]}"
cpu_rate "$NSEC version gets"
wait_until $((3 * DELAY + 20)) at_least "$NSEC" forwarded ||
	diag "only $(forwarded) of the $NSEC GetSecretValue answers came back"
# A get of a version whose fetch still runs waits for it; so each answer
# below comes after the daemon took the delayed one.
plan '{"default":"pass"}'
bad=""
for s in "${secrets[@]}"; do
	[ "$(value "$s" "\"version_id\":\"${old_vid[$s]}\"")" = "old-$s-$$" ] || bad+=" $s"
done
expect_eq "$NSEC version gets: each version is served afterwards" "" "$bad"
alive_and_clean "$NSEC version gets"
expect_eq "$NSEC version gets: the next get of AWSCURRENT works" "new-app/h07-$$" "$(value app/h07)"

stop_daemon
expect_eq "SIGTERM stops keyturnd cleanly" 0 "$KT_STATUS"
check "no sanitizer report from keyturnd at all" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
done_testing
