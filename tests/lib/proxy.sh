# Helpers for system tests that put tests/lib/faultproxy.py in front of a
# service: starting it, and its control endpoints (fault plans, statistics).
# Source it after common.sh:  . "$KT_LIB/proxy.sh"

# start_proxy UPSTREAM [ARGS...]: the fault proxy on a port of its choosing; sets
# PROXY_PORT and PROXY_URL (https when ARGS has --tls-cert). It writes the port
# file once it listens.
start_proxy() {
	local pf="$T/proxy.port" scheme=http a
	for a in "${@:2}"; do
		if [ "$a" = --tls-cert ]; then scheme=https; fi
	done
	"$PYTHON3" "$KT_LIB/faultproxy.py" --upstream "$1" --port-file "$pf" "${@:2}" \
		>"$T/proxy.out" 2>"$T/proxy.log" &
	kt_pids+=("$!")
	wait_until 10 test -s "$pf" || bail "faultproxy did not start: $(cat "$T/proxy.log")"
	PROXY_PORT=$(cat "$pf")
	# shellcheck disable=SC2034 # read by the test scripts
	PROXY_URL="$scheme://127.0.0.1:$PROXY_PORT"
}

# proxy METHOD PATH [JSON]: one call to the proxy's control endpoints, made
# with bash's /dev/tcp (so plain HTTP only); prints the answer's body, fails
# unless it was a 200.
proxy() {
	local body=${3:-} line status
	exec 9<>"/dev/tcp/127.0.0.1/$PROXY_PORT" || return 1
	printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"$1" "$2" "${#body}" "$body" >&9
	IFS= read -r status <&9
	while IFS= read -r line <&9 && [ "$line" != $'\r' ]; do :; done
	cat <&9
	exec 9<&-
	[[ $status == "HTTP/1.1 200 "* ]]
}

# plan JSON: forgets earlier counts and plans, then sets this one.
plan() {
	proxy POST /__proxy/reset >/dev/null && proxy POST /__proxy/plan "$1" >/dev/null ||
		bail "faultproxy refused the plan $1"
}

# requests: how many AWS requests reached the proxy since the last plan;
# the whole statistics are kept in $T/stats.json.
requests() {
	proxy GET /__proxy/stats >"$T/stats.json" || return 1
	[[ $(<"$T/stats.json") =~ \"requests\":\ *([0-9]+) ]] && echo "${BASH_REMATCH[1]}"
}

# calls TARGET: how many TARGET calls (DescribeSecret, ...) reached the proxy
# since the last plan.
calls() {
	requests >/dev/null || return 1
	json_get "$T/stats.json" "d['targets'].get('secretsmanager.$1', 0)"
}
