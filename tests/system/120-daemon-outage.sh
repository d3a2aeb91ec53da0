#!/bin/bash
# keyturnd when AWS fails. Secrets deleted in AWS disappear from the daemon
# (at once, or when scheduled for deletion) and come back when restored. With
# moto killed, cached values are still served but marked stale, until
# max_stale has passed; then they are unavailable, and they are fresh again
# at the first check after moto is back on the same port. Throttling from
# the fault proxy makes the daemon back off instead of hammering AWS, while
# it keeps serving from its cache; it recovers once AWS answers again.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"

need_built "$KEYTURND"
me=$(id -un)

# ktpoll.py: requests in a loop on fresh connections, for waits that last
# seconds (one Python start instead of one per request).
#   poll SECONDS COND REQUEST: asks every 0.2 s until COND (Python on the
#     answer d) holds; prints that answer (or the last one) and fails on timeout.
#   hammer SECONDS: what a busy client does while AWS throttles: a get of
#     app/db every 0.1 s, a refresh of app/api and a status every 0.5 s;
#     prints a summary as JSON.
cat >"$T/ktpoll.py" <<'PY'
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ktclient import KtClient

sock, mode = sys.argv[2], sys.argv[3]

def ask(req):
    try:
        with KtClient(sock, 20) as c:
            return c.request(req)
    except Exception as e:  # noqa: BLE001 -- reported as an answer
        return {"ok": False, "error": "client", "message": str(e)}

if mode == "poll":
    limit, cond, req = float(sys.argv[4]), sys.argv[5], sys.argv[6]
    end = time.monotonic() + limit
    while True:
        d = ask(req)
        if eval(cond):
            print(json.dumps(d))
            sys.exit(0)
        if time.monotonic() >= end:
            print(json.dumps(d))
            sys.exit(1)
        time.sleep(0.2)
elif mode == "hammer":
    end = time.monotonic() + float(sys.argv[4])
    s = {"gets": 0, "gets_stale_value": 0, "get_other": [], "refreshes": 0,
         "refresh_errors": {}, "states": {}}
    i = 0
    while time.monotonic() < end:
        d = ask({"v": 1, "op": "get", "secret": "app/db"})
        s["gets"] += 1
        if d.get("ok") and d.get("stale") is True and d.get("string") == sys.argv[5]:
            s["gets_stale_value"] += 1
        elif len(s["get_other"]) < 5:
            s["get_other"].append({k: d.get(k) for k in ("ok", "error", "stale", "version_id")})
        if i % 5 == 0:
            d = ask({"v": 1, "op": "refresh", "secret": "app/api"})
            s["refreshes"] += 1
            e = d.get("error", "ok")
            s["refresh_errors"][e] = s["refresh_errors"].get(e, 0) + 1
            d = ask({"v": 1, "op": "status"})
            st = d.get("backend", {}).get("state", "?")
            s["states"][st] = s["states"].get(st, 0) + 1
        i += 1
        time.sleep(0.1)
    print(json.dumps(s))
PY
# kt_poll SECONDS COND REQUEST: see ktpoll.py; the answer is left in $ans.
kt_poll() {
	ans=$("$PYTHON3" "$T/ktpoll.py" "$KT_LIB" "$KT_SOCK" poll "$@")
}
# listed NAME EXPR: EXPR (Python on s) for NAME's entry in the answer to list.
listed() {
	jfield "$(kt_req '{"v":1,"op":"list"}')" \
		"[($2) for s in d[\"secrets\"] if s[\"name\"] == \"$1\"][0]"
}
backend_state() { jfield "$(kt_req '{"v":1,"op":"status"}')" 'd["backend"]["state"]'; }
state_is() { [ "$(backend_state)" = "$1" ]; }
req_get() { printf '{"v":1,"op":"get","secret":"%s"}' "$1"; }
req_refresh() { printf '{"v":1,"op":"refresh","secret":"%s"}' "$1"; }
# create NAME=VALUE...: secrets in moto, made by botocore in one process (an
# AWS CLI start costs a second or more); prints their VersionIds, one a line.
create() {
	"$PYTHON3" - "$MOTO_URL" "$@" <<'PY'
import sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
for arg in sys.argv[2:]:
    name, value = arg.split("=", 1)
    print(sm.create_secret(Name=name, SecretString=value)["VersionId"])
PY
}
not_in_log() { ! grep -qE -- "$1" "$KT_LOG"; }
lacks() { ! grep -qF -- "$1" <<<"$2"; }
sanitizer_clean() { ! grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; }

start_moto
{ read -r v_db && read -r v_api && read -r v_now && read -r v_later; } < <(create \
	app/db=outage-db-value-0001 app/api=outage-api-value-0002 \
	gone/now=gone-now-value-0003 gone/later=gone-later-value-0004) || bail "moto setup"
secrets=(outage-db-value-0001 outage-api-value-0002 gone-now-value-0003 gone-later-value-0004)

# Phase 1: keyturnd straight at moto, checking every 2 s, serving stale
# values for 10 s at most. max_stale leaves room for the first failing check
# to end (its three attempts sleep up to 1 s and 2 s) before it runs out.
write_config "check_interval = 2
max_stale = 10
refresh_min_interval = 1" <<EOF
[secret:app/db]
allow_users = $me
[secret:app/api]
allow_users = $me
[secret:gone/now]
allow_users = $me
[secret:gone/later]
allow_users = $me
EOF
start_daemon || bail "keyturnd did not start"
ok "keyturnd starts with check_interval = 2 and max_stale = 10"

n=0
for s in app/db app/api gone/now gone/later; do
	a=$(kt_get "$s")
	[ "$(jfield "$a" 'd["ok"] and d["stale"] is False')" = true ] && n=$((n + 1))
done
expect_eq "all four secrets are served fresh" 4 "$n"
# The first DescribeSecret of a secret comes 5 to 60 s after its first fetch
# (spread over a fleet); a refresh makes it now, so that the checks every
# check_interval start at once.
n=0
for s in app/db app/api gone/now gone/later; do
	a=$(kt_req "$(req_refresh "$s")")
	[ "$(jfield "$a" 'd["ok"]')" = true ] && n=$((n + 1))
done
expect_eq "a refresh of each makes its first check" 4 "$n"

# --- (e) deleted secrets ------------------------------------------------------
aws_cli secretsmanager delete-secret --secret-id gone/now --force-delete-without-recovery >/dev/null
aws_cli secretsmanager delete-secret --secret-id gone/later --recovery-window-in-days 7 >/dev/null
kt_poll 10 'd.get("error") == "not_found"' "$(req_get gone/now)"
expect_eq "a secret deleted without recovery: get answers not_found" not_found "$(jfield "$ans" 'd.get("error")')"
kt_poll 10 'd.get("error") == "not_found"' "$(req_get gone/later)"
expect_eq "a secret scheduled for deletion: get answers not_found" not_found "$(jfield "$ans" 'd.get("error")')"
a=$(kt_req "{\"v\":1,\"op\":\"get\",\"secret\":\"gone/now\",\"version_id\":\"$v_now\"}" \
	"{\"v\":1,\"op\":\"get\",\"secret\":\"gone/later\",\"version_id\":\"$v_later\"}")
expect_eq "the deleted values are not served by VersionId either" "not_found not_found" \
	"$(printf '%s\n' "$a" | "$PYTHON3" -c 'import json,sys; print(" ".join(json.loads(l).get("error", "ok") for l in sys.stdin))')"
for s in gone/now gone/later; do
	expect_eq "list shows $s unavailable, with no version cached" "False None" \
		"$(listed "$s" 's["available"], s["version_id"]' | tr -d '(),')"
done
check "the log says the deleted values were wiped" grep -q "gone/now: .*cached values are wiped" "$KT_LOG"
aws_cli secretsmanager restore-secret --secret-id gone/later >/dev/null
kt_poll 10 'd.get("ok") is True' "$(req_get gone/later)"
expect_eq "a restored secret is served again at the next check" "gone-later-value-0004 False" \
	"$(jfield "$ans" 'd.get("string"), d.get("stale")' | tr -d "(),'")"

# --- (a) moto stops: stale values -----------------------------------------
expect_eq "before the outage the backend is ok" ok "$(backend_state)"
kill "$MOTO_PID"
wait "$MOTO_PID" 2>/dev/null
t_kill=$SECONDS
# The first answer that is not a fresh value must be the cached value marked
# stale, never an error: that comes only once max_stale has passed.
kt_poll 15 'not (d.get("ok") is True and d.get("stale") is False)' "$(req_get app/db)"
expect_eq "moto stopped: the cached value is still served, marked stale" \
	"True True outage-db-value-0001 $v_db" \
	"$(jfield "$ans" 'd.get("ok"), d.get("stale"), d.get("string"), d.get("version_id")' | tr -d "(),'")"
diag "stale after $((SECONDS - t_kill)) s"
expect_eq "list says app/db is stale but available" "True True" \
	"$(listed app/db 's["stale"], s["available"]' | tr -d '(),')"
check "status says the backend is unreachable" wait_until 10 state_is unreachable
a=$(kt_req '{"v":1,"op":"status"}')
check "status lists the transport errors" test "$(jfield "$a" 'sum(1 for e in d["last_errors"] if e["secret"] == "app/db")')" -gt 0
a=$(kt_req "$(req_refresh app/api)")
expect_eq "a refresh while AWS is out of reach answers unavailable" unavailable "$(jfield "$a" 'd.get("error")')"

# --- (b) past max_stale ---------------------------------------------------------
kt_poll 20 'd.get("ok") is not True' "$(req_get app/db)"
expect_eq "past max_stale get answers unavailable" unavailable "$(jfield "$ans" 'd.get("error")')"
diag "unavailable after $((SECONDS - t_kill)) s: $(jfield "$ans" 'd.get("message")')"
check "the error names no value" lacks outage-db-value "$ans"
expect_eq "list says app/db is no longer available" "True False" \
	"$(listed app/db 's["stale"], s["available"]' | tr -d '(),')"

# --- (c) moto back on the same port ------------------------------------------
# A fresh moto is empty, and a daemon that asks it would rightly take the
# secrets for deleted and wipe them. So moto comes back with the secrets it
# had (same names, values and VersionIds) before it listens: like AWS after
# an outage.
cat >"$T/moto-again.json" <<EOF
[{"name": "app/db", "value": "outage-db-value-0001", "version_id": "$v_db"},
 {"name": "app/api", "value": "outage-api-value-0002", "version_id": "$v_api"},
 {"name": "gone/later", "value": "gone-later-value-0004", "version_id": "$v_later"}]
EOF
cat >"$T/moto-again.py" <<'PY'
import json, sys, threading
import boto3
from moto import mock_aws
from moto.server import ThreadedMotoServer

# The in-process mock and the server share one state, so the secrets exist
# before the port opens.
mock = mock_aws()
mock.start()
sm = boto3.client("secretsmanager", region_name="us-east-1")
for s in json.load(open(sys.argv[2])):
    sm.create_secret(Name=s["name"], SecretString=s["value"], ClientRequestToken=s["version_id"])
ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False).start()
threading.Event().wait()
PY
"$PYTHON3" "$T/moto-again.py" "$MOTO_PORT" "$T/moto-again.json" >"$T/moto-again.log" 2>&1 &
MOTO_PID=$!
kt_pids+=("$MOTO_PID")
wait_port "$MOTO_PORT" 60 || bail "moto did not start again on port $MOTO_PORT: $(tail -5 "$T/moto-again.log")"
t_back=$SECONDS
# After failures the daemon backs off (5 s doubling, full jitter, capped at
# check_interval = 2 s here), so recovery comes within a few seconds.
kt_poll 15 'd.get("ok") is True and d.get("stale") is False' "$(req_get app/db)"
expect_eq "moto back: the value is fresh again at the next check" "True False outage-db-value-0001 $v_db" \
	"$(jfield "$ans" 'd.get("ok"), d.get("stale"), d.get("string"), d.get("version_id")' | tr -d "(),'")"
diag "fresh again $((SECONDS - t_back)) s after moto came back"
check "status says the backend is ok again" wait_until 10 state_is ok
expect_eq "list says app/db is available and not stale" "False True" \
	"$(listed app/db 's["stale"], s["available"]' | tr -d '(),')"
a=$(kt_get gone/now)
expect_eq "the secret deleted for good stays not_found" not_found "$(jfield "$a" 'd.get("error")')"

check "phase 1: no secret value in the daemon's debug log" log_has_no_secrets "${secrets[@]}"
stop_daemon
expect_eq "phase 1: SIGTERM stops keyturnd with status 0" 0 "$KT_STATUS"

# --- (d) throttling ---------------------------------------------------------------
# Phase 2: the fault proxy in front of moto. check_interval = 6 caps the
# backoff at 6 s, so recovery stays within the time of a test.
start_proxy "$MOTO_URL"
MOTO_URL=$PROXY_URL write_config "check_interval = 6" <<EOF
[secret:app/db]
allow_users = $me
[secret:app/api]
allow_users = $me
EOF
start_daemon || bail "keyturnd did not start again"
a=$(kt_get app/db)
expect_eq "through the proxy app/db is served" outage-db-value-0001 "$(jfield "$a" 'd.get("string")')"
a=$(kt_req "$(req_refresh app/api)")
expect_eq "a refresh of app/api passes" true "$(jfield "$a" 'd.get("ok")')"

plan '{"default":"throttle"}'
t_thr=$SECONDS
a=$(kt_req "$(req_refresh app/db)")
expect_eq "a refresh while AWS throttles answers throttled" throttled "$(jfield "$a" 'd.get("error")')"
hammer_s=8
summary=$("$PYTHON3" "$T/ktpoll.py" "$KT_LIB" "$KT_SOCK" hammer "$hammer_s" outage-db-value-0001)
n_req=$(requests)
window=$((SECONDS - t_thr))
diag "throttled for ${window} s: $n_req AWS requests reached the proxy; client: $summary"
check "the busy client got the cached value, marked stale, all along" \
	test "$(jfield "$summary" 'd["gets_stale_value"] == d["gets"] > 20')" = true
check "its refreshes were answered throttled" \
	test "$(jfield "$summary" 'list(d["refresh_errors"]) == ["throttled"]')" = true
check "status showed the backend throttled" test "$(jfield "$summary" 'd["states"].get("throttled", 0) > 0')" = true
# Each check costs at most max_attempts = 3 HTTP requests, and no client
# request adds any (the busy client above made dozens).
check "every AWS call made at most 3 attempts" not_in_log 'attempt ([4-9]|[1-9][0-9]+):'
# A storm would pass the client's requests on to AWS, or retry a failing
# check on every 1 s tick (3 requests x 2 secrets each second). keyturnd
# waits instead, after k failures of a secret, a uniform time up to
# min(5 s * 2^(k-1), check_interval), at least 1 s, and makes no call at all
# while AWS throttles it. Simulated, that schedule gives 9 to 27 requests in
# such a window (over 30 about once in 20000 runs); the bound, one check per
# secret every 2 s, is half the hot loop.
bound=$((3 * 2 * (window / 2 + 1)))
check "no storm: $n_req AWS requests in ${window} s, bound $bound" test "$n_req" -le "$bound"

plan '{"default":"pass"}'
t_pass=$SECONDS
kt_poll 25 'd.get("ok") is True and d.get("stale") is False' "$(req_get app/db)"
expect_eq "throttling over: the value is fresh again" "True False" \
	"$(jfield "$ans" 'd.get("ok"), d.get("stale")' | tr -d '(),')"
diag "fresh again $((SECONDS - t_pass)) s after the proxy passed requests again"
check "status says the backend is ok again" wait_until 15 state_is ok
requests >/dev/null
expect_eq "recovery costs no GetSecretValue: AWSCURRENT did not move" 0 \
	"$(json_get "$T/stats.json" 'd["targets"].get("secretsmanager.GetSecretValue", 0)')"

check "no secret value in the daemon's debug log" log_has_no_secrets "${secrets[@]}"
stop_daemon
expect_eq "SIGTERM stops keyturnd with status 0" 0 "$KT_STATUS"
# Counted now that every check has ended; one may have been cut in two by
# the switch back to passing.
n_checks=$(grep -c 'AWS is throttling keyturnd' "$KT_LOG")
check "the throttled requests came from $n_checks checks of at most 3 attempts ($n_req)" \
	test "$n_req" -le $((3 * (n_checks + 1)))
check "no sanitizer report from keyturnd" sanitizer_clean
done_testing
