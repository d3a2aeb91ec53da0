#!/bin/bash
# keyturnd's HTTP door, the one an application written for the AWS Secrets
# Manager Agent talks to: /ping, every error of the Agent's check order, the
# answer of /secretsmanager/get and of /v1/NAME member for member, an
# Agent-style urllib client (tests/lib/agentclient.py), versionStage,
# versionId and refreshNow across a rotation, AWS's errors passed on, the
# caller's uid over TCP and over a unix: listener, the token file, listen
# addresses off loopback refused, 2,000 idle connections of one uid, keep-alive
# and its timeouts, and /metrics read with Debian's prometheus_client; no
# value in /metrics or in the log.
# Needs root (it creates users and a group, removed again on any exit).

# The number of checks below; a run that cannot make users skips each of
# them, saying why (before common.sh, which may need what a user lacks).
PLANNED=82

. "$KT_SRCDIR/tests/lib/accounts.sh"
need_root_accounts "create users (useradd/groupadd) and to connect as them"
command -v curl >/dev/null || skip_all "needs curl"
command -v setpriv >/dev/null || skip_all "needs setpriv (util-linux) to run curl as another user"

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
need_built "$KEYTURND"
CTL="$KT_BUILDDIR/keyturnctl"
AGENT="$KT_LIB/agentclient.py"
# Debian's python3-prometheus-client is installed for the system Python; the
# python3 first on PATH (moto's) may not have it.
SYSPY=/usr/bin/python3

# --- users and groups, removed on any exit ----------------------------------
trap cleanup_accounts EXIT

GH=kttest-$$-h # token_group: both users may read the token file
UA=kttest-$$-a # in allow_users of app/plain
UB=kttest-$$-b # allowed nothing, but holds the token

mkgroup() { groupadd -r "$1" && made_groups+=("$1"); }
mkuser() { useradd -r -M -N -s /usr/sbin/nologin "$@" && made_users+=("${!#}"); }
mkgroup "$GH" && mkuser -G "$GH" "$UA" && mkuser -G "$GH" "$UB" ||
	bail "cannot create the test users and group"
uid_a=$(id -u "$UA") uid_b=$(id -u "$UB")
diag "users: $UA=$uid_a $UB=$uid_b, both in $GH"

# The test users must reach the token file and the unix: listener in $T
# (private to root by default), and write their curl output somewhere.
chmod 755 "$T"
mkdir -m 1777 "$T/u"

# --- moto ------------------------------------------------------------------------
start_moto
V_PLAIN="http-plain-value-$$-3f9a"
V_PW="http-json-password-$$-c1d7"
V_JSON="{\"username\":\"app\",\"password\":\"$V_PW\"}"
V_ROT1="http-rot-value-$$-0001"
V_ROT2="http-rot-value-$$-0002"
head -c 48 /dev/urandom >"$T/bin"
V_BIN64=$(base64 -w0 <"$T/bin")

# Set up by botocore in one process (an AWS CLI start costs a second or more).
"$PYTHON3" - "$MOTO_URL" "$T/bin" "$V_PLAIN" "$V_JSON" "$V_ROT1" >"$T/setup.json" <<'PY' || bail "moto setup: $(cat "$T/setup.json")"
import json, sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
out = {}
for name, kw in (("app/plain", {"SecretString": sys.argv[3]}),
                 ("app/json", {"SecretString": sys.argv[4]}),
                 ("app/bin", {"SecretBinary": open(sys.argv[2], "rb").read()}),
                 ("app/rot", {"SecretString": sys.argv[5]})):
    r = sm.create_secret(Name=name, **kw)
    g = sm.get_secret_value(SecretId=name)
    out[name] = {"arn": r["ARN"], "vid": r["VersionId"],
                 "created": str(int(g["CreatedDate"].timestamp()))}
print(json.dumps(out))
PY
setup() { json_get "$T/setup.json" "d[\"$1\"][\"$2\"]"; }
arn_plain=$(setup app/plain arn) vid_plain=$(setup app/plain vid)
created_plain=$(setup app/plain created)
vid_rot1=$(setup app/rot vid)

# --- the daemon --------------------------------------------------------------------
HTTP_PORT=$(free_port)
HTTP_SOCK="$T/http.sock"
TOKF="$T/http-token"
U="http://127.0.0.1:$HTTP_PORT"

# sections: the secrets, the same for every start.
sections() {
	cat <<EOF2
[secret:app/plain]
allow_users = $UA
[secret:app/json]
key = password
[secret:app/bin]
[secret:app/rot]
[secret:app/gone]
EOF2
}
# Quiet checks once an hour, so that only refreshNow can pick up a rotation.
{
	cat <<EOF2
[http]
listen = 127.0.0.1:$HTTP_PORT unix:$HTTP_SOCK
token_file = $TOKF
token_group = $GH
metrics = yes
EOF2
	sections
} | write_config "check_interval = 3600
refresh_min_interval = 1"
start_daemon || bail "keyturnd did not start with an [http] section"
ok "keyturnd starts with [http] listen = 127.0.0.1:$HTTP_PORT unix:$HTTP_SOCK"
check "the HTTP door listens on 127.0.0.1:$HTTP_PORT" wait_port "$HTTP_PORT" 20

# Check app/rot now, so that its first scheduled check (5 to 60 s after the
# first fetch) cannot pick up the rotation below before refreshNow does.
kt_req '{"v":1,"op":"refresh","secret":"app/rot"}' >"$T/first-refresh.out"
t_first_refresh=$(date +%s)

# --- the token file --------------------------------------------------------------
expect_eq "the daemon creates the token file, mode 0640, group token_group" "640 $GH" \
	"$(stat -c '%a %G' "$TOKF" 2>&1)"
TOKEN=$(cat "$TOKF" 2>/dev/null)
if [[ $TOKEN =~ ^[0-9a-fA-F]{64}$ ]]; then
	ok "the token file holds 64 hex characters"
else
	not_ok "the token file holds 64 hex characters"
	diag "it holds $(wc -c <"$TOKF" 2>/dev/null) bytes"
fi
TOK="X-Aws-Parameters-Secrets-Token: $TOKEN"

# --- requests and answers ----------------------------------------------------------
# h_as USER NAME CURL_ARGS...: one curl run (as USER, or as root when USER
# is empty); the body in $T/u/NAME.body, the headers in $T/u/NAME.hdr.
# Sets CODE (000 when nothing answered) and BODY.
h_as() {
	local user=$1 name=$2 run=()
	shift 2
	[ -n "$user" ] && run=(setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups)
	rm -f "$T/u/$name".*
	CODE=$("${run[@]}" curl -q -sS --max-time 20 -o "$T/u/$name.body" -D "$T/u/$name.hdr" \
		-w '%{http_code}' "$@" 2>"$T/u/$name.curl")
	BODY=$(cat "$T/u/$name.body" 2>/dev/null)
	[ -s "$T/u/$name.curl" ] && sed 's/^/#   curl: /' "$T/u/$name.curl"
	return 0
}
# h NAME CURL_ARGS...: the same as root.
h() { h_as "" "$@"; }
# header NAME FIELD: a header of the answer of h NAME.
header() { sed -n "s/^$2: *//Ip" "$T/u/$1.hdr" | tr -d '\r' | tail -n 1; }
# value_of: SecretString of a 200 answer, else "CODE BODY".
value_of() {
	if [ "$CODE" = 200 ]; then
		jfield "$BODY" 'd.get("SecretString")' 2>/dev/null || echo "200 (not JSON) $BODY"
	else
		echo "$CODE $BODY"
	fi
}
# err_of: "CODE __type" of a JSON error answer.
err_of() { echo "$CODE $(jfield "$BODY" 'd.get("__type")' 2>/dev/null || echo "(not JSON) $BODY")"; }
# fields EXPR: fields of a 200 answer (EXPR is Python on d), blank-separated.
fields() { jfield "$BODY" "$1" 2>/dev/null | tr -d "(),'" || echo "(not JSON) $BODY"; }
# agent NAME ARGS...: agentclient.py; its output in AGENT_OUT, status in AGENT_RC.
agent() {
	local name=$1
	shift
	"$PYTHON3" "$AGENT" --port "$HTTP_PORT" --token-file "$TOKF" "$@" >"$T/$name.out" \
		2>"$T/$name.err"
	AGENT_RC=$?
	AGENT_OUT=$(cat "$T/$name.out")
	[ -s "$T/$name.err" ] && sed 's/^/#   agentclient: /' "$T/$name.err"
	return 0
}
GET="$U/secretsmanager/get"

h ping "$U/ping"
expect_eq "GET /ping without a token: 200 healthy" "200 healthy" "$CODE $BODY"

# Every error of the Agent's check order, each alone, then two that show the order.
h fwd -H "$TOK" -H "X-Forwarded-For: 203.0.113.9" "$GET?secretId=app/plain"
expect_eq "X-Forwarded-For: 400 Forwarded" "400 Forwarded" "$CODE $BODY"
h notoken "$GET?secretId=app/plain"
expect_eq "no token: 403 Bad Token" "403 Bad Token" "$CODE $BODY"
h badtoken -H "X-Aws-Parameters-Secrets-Token: ${TOKEN%?}0x" "$GET?secretId=app/plain"
expect_eq "a wrong token: 403 Bad Token" "403 Bad Token" "$CODE $BODY"
h vault -H "X-Vault-Token: $TOKEN" "$GET?secretId=app/plain"
expect_eq "the token in X-Vault-Token is taken too" "$V_PLAIN" "$(value_of)"
h post -H "$TOK" -X POST "$GET?secretId=app/plain"
expect_eq "POST: 405 Not allowed" "405 Not allowed" "$CODE $BODY"
h postping -X POST "$U/ping"
expect_eq "POST /ping: 405 Not allowed" "405 Not allowed" "$CODE $BODY"
h nothing -H "$TOK" "$U/nothing"
expect_eq "GET /nothing: 404 Not found" "404 Not found" "$CODE $BODY"
h unknown -H "$TOK" "$GET?secretId=app/plain&abc=1"
expect_eq "an unknown parameter: 400 unknown parameter: abc" "400 unknown parameter: abc" "$CODE $BODY"
h noid -H "$TOK" "$GET?versionStage=AWSCURRENT"
expect_eq "no secretId: 400 missing parameter secretId" "400 missing parameter secretId" "$CODE $BODY"
h emptyid -H "$TOK" "$U/v1/"
expect_eq "GET /v1/: 400 missing secret ID" "400 missing secret ID" "$CODE $BODY"
h badrefresh -H "$TOK" "$GET?secretId=app/plain&refreshNow=maybe"
expect_eq "refreshNow=maybe: 400 invalid refreshNow value" "400 invalid refreshNow value" "$CODE $BODY"
h order1 -H "X-Forwarded-For: 203.0.113.9" "$GET?secretId=app/plain"
expect_eq "order: X-Forwarded-For is refused before the token is looked at" "400 Forwarded" \
	"$CODE $BODY"
h order2 -X POST "$GET?secretId=app/plain"
expect_eq "order: a POST without a token is refused for the token first" "403 Bad Token" \
	"$CODE $BODY"

# --- answers: member for member -----------------------------------------------------
h get -H "$TOK" "$GET?secretId=app/plain"
expect_eq "GET /secretsmanager/get as root: 200, application/json" "200 application/json" \
	"$CODE $(header get Content-Type | cut -d';' -f1)"
expect_eq "the answer's members, in the Agent's order" \
	'["ARN", "Name", "VersionId", "SecretString", "VersionStages", "CreatedDate"]' \
	"$("$PYTHON3" -c 'import json,sys; print(json.dumps(json.loads(sys.argv[1], object_pairs_hook=lambda p: [k for k, _ in p])))' "$BODY" 2>&1)"
expect_eq "ARN, Name, VersionId and SecretString are moto's" \
	"$arn_plain app/plain $vid_plain $V_PLAIN" \
	"$(fields 'd.get("ARN"), d.get("Name"), d.get("VersionId"), d.get("SecretString")')"
expect_eq "VersionStages holds AWSCURRENT; CreatedDate is moto's, epoch seconds as a string" \
	"True $created_plain str" \
	"$(fields '"AWSCURRENT" in d.get("VersionStages", []), d.get("CreatedDate"), type(d.get("CreatedDate")).__name__')"
body_get=$BODY

h v1 -H "$TOK" "$U/v1/app/plain"
expect_eq "GET /v1/app/plain answers the same as /secretsmanager/get" "200 $body_get" "$CODE $BODY"
h byarn -H "$TOK" "$GET?secretId=$arn_plain"
expect_eq "the secret's ARN as secretId finds it (Name is the AWS name)" "$V_PLAIN app/plain" \
	"$(fields 'd.get("SecretString"), d.get("Name")')"
h byarn_enc -H "$TOK" -G --data-urlencode "secretId=$arn_plain" "$GET"
expect_eq "a percent-encoded secretId is decoded" "$V_PLAIN" "$(value_of)"
h json -H "$TOK" "$GET?secretId=app/json"
expect_eq "a section's key = password does not apply: the whole SecretString" "$V_JSON" "$(value_of)"
h bin -H "$TOK" "$GET?secretId=app/bin"
expect_eq "a binary secret: SecretBinary (base64), no SecretString" "200 $V_BIN64 False" \
	"$CODE $(fields 'd.get("SecretBinary"), "SecretString" in d')"

# --- the Agent's own way: agentclient.py ------------------------------------------
agent agent-root app/plain
expect_eq "agentclient (urllib, as the Agent's documentation) as root reads app/plain" \
	"0 $V_PLAIN" "$AGENT_RC $AGENT_OUT"
agent agent-a --as-user "$UA" app/plain
expect_eq "agentclient as $UA (in allow_users), token read from the file as that user" \
	"0 $V_PLAIN" "$AGENT_RC $AGENT_OUT"
agent agent-b --as-user "$UB" app/plain
expect_eq "agentclient as $UB (allowed nothing) gets 403 AccessDeniedException" \
	"1 403 AccessDeniedException" \
	"$AGENT_RC $(printf '%s' "$AGENT_OUT" | cut -d' ' -f1) $(jfield "$(printf '%s' "$AGENT_OUT" | cut -d' ' -f2-)" 'd.get("__type")' 2>/dev/null)"

# --- AWS's errors passed on ------------------------------------------------------------
h gone -H "$TOK" "$GET?secretId=app/gone"
expect_eq "a configured secret missing in AWS: 400 ResourceNotFoundException" \
	"400 ResourceNotFoundException" "$(err_of)"
h unconf -H "$TOK" "$GET?secretId=not/configured-$$"
expect_eq "root asking for an unconfigured name: 400 ResourceNotFoundException" \
	"400 ResourceNotFoundException" "$(err_of)"
h_as "$UB" b-unconf -H "$TOK" "$GET?secretId=not/configured-$$"
expect_eq "$UB asking for an unconfigured name: 403 AccessDeniedException" \
	"403 AccessDeniedException" "$(err_of)"
h_as "$UB" b-gone -H "$TOK" "$GET?secretId=app/gone"
expect_eq "$UB asking for a configured secret it may not read: 403 AccessDeniedException" \
	"403 AccessDeniedException" "$(err_of)"

# --- the caller's uid, over TCP and over the unix: listener ----------------------------
h_as "$UA" a-tcp -H "$TOK" "$GET?secretId=app/plain"
expect_eq "curl as $UA over TCP reads app/plain" "$V_PLAIN" "$(value_of)"
h_as "$UB" b-tcp -H "$TOK" "$GET?secretId=app/plain"
expect_eq "curl as $UB over TCP, with the token: 403 AccessDeniedException" \
	"403 AccessDeniedException" "$(err_of)"
h_as "$UA" a-unix --unix-socket "$HTTP_SOCK" -H "$TOK" \
	"http://localhost/secretsmanager/get?secretId=app/plain"
expect_eq "curl as $UA over the unix: listener reads app/plain" "$V_PLAIN" "$(value_of)"
h_as "$UB" b-unix --unix-socket "$HTTP_SOCK" -H "$TOK" \
	"http://localhost/secretsmanager/get?secretId=app/plain"
expect_eq "curl as $UB over the unix: listener: 403 AccessDeniedException" \
	"403 AccessDeniedException" "$(err_of)"

# --- loopback only ---------------------------------------------------------------------
host_ip=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ print $4; exit }' | cut -d/ -f1)
if [ -n "$host_ip" ]; then
	expect_eq "a connection to the host's address $host_ip:$HTTP_PORT is refused: the token alone is no use off loopback" \
		refused "$("$PYTHON3" - "$host_ip" "$HTTP_PORT" <<'PY'
import socket, sys
s = socket.socket()
s.settimeout(10)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("connected")
except ConnectionRefusedError:
    print("refused")
except OSError as e:
    print("error: %s" % e)
PY
)"
else
	skip_test "the host has no non-loopback IPv4 address (ip -4 -o addr show scope global)"
fi

# --- limits of the request line and headers -----------------------------------------------
# libmicrohttpd holds a request's line and headers in 32 KiB: beyond, it
# answers 414 (a URL) or 431 (headers) at once, and reads no more.
big=$(head -c 40000 /dev/zero | tr '\0' a)
h longurl -H "$TOK" "$U/v1/app/plain?versionId=$big"
expect_eq "a 40 KB URL is answered 414 (URI Too Long)" 414 "$CODE"
h longhdr -H "$TOK" -H "X-Padding: $big" "$U/v1/app/plain"
expect_eq "a 40 KB header is answered 431 (Request Header Fields Too Large)" 431 "$CODE"
h afterbig -H "$TOK" "$U/v1/app/plain"
expect_eq "and the door serves the next request" "$V_PLAIN" "$(value_of)"

# --- keep-alive ---------------------------------------------------------------------------
expect_eq "curl fetching two URLs in one run makes one connection (keep-alive)" "1 0" \
	"$(curl -q -sS --max-time 20 -o /dev/null -o /dev/null -w '%{num_connects} ' -H "$TOK" \
		"$GET?secretId=app/plain" "$GET?secretId=app/plain" 2>&1 | sed 's/ $//')"

# --- /metrics ---------------------------------------------------------------------------
# prom.py EXPR FILE...: EXPR (Python) over the scrapes FILE..., parsed by
# prometheus_client: v(i, NAME, **labels) sums the samples of scrape i
# (0 when there is none), missing(i, NAMES) the families not there,
# secrets(i) the secret label values.
cat >"$T/prom.py" <<'PY'
import sys
from prometheus_client.parser import text_string_to_metric_families
expr, files = sys.argv[1], sys.argv[2:]
scrapes = [list(text_string_to_metric_families(open(f).read())) for f in files]

def v(i, name, **labels):
    return sum(s.value for f in scrapes[i] for s in f.samples
               if s.name == name and all(s.labels.get(k) == x for k, x in labels.items()))

def missing(i, names):
    have = {f.name for f in scrapes[i]}
    return " ".join(n for n in names.split() if n not in have and n.removesuffix("_total") not in have)

def secrets(i):
    return " ".join(sorted({s.labels["secret"] for f in scrapes[i] for s in f.samples
                            if "secret" in s.labels}))

r = eval(expr)
print(int(r) if isinstance(r, float) and r.is_integer() else r)
PY
if "$SYSPY" -c 'import prometheus_client.parser' 2>/dev/null; then
	PROM_WHY=""
else
	PROM_WHY="$SYSPY cannot import prometheus_client (scripts/install-deps installs python3-prometheus-client)"
fi
# pm EXPR SCRAPE...: prom.py on the scrapes (names of h runs).
pm() {
	local e=$1 f=() n
	shift
	for n in "$@"; do f+=("$T/u/$n.body"); done
	"$SYSPY" "$T/prom.py" "$e" "${f[@]}" 2>&1 | tail -n 3
}
# mexpect DESCRIPTION EXPECTED EXPR SCRAPE...: expect_eq on pm, or skipped
# without the parser.
mexpect() {
	local d=$1 e=$2
	shift 2
	if [ -z "$PROM_WHY" ]; then expect_eq "$d" "$e" "$(pm "$@")"; else skip_test "$PROM_WHY"; fi
}
# mcheck DESCRIPTION COMMAND...: check, or skipped without the parser.
mcheck() {
	if [ -z "$PROM_WHY" ]; then check "$@"; else skip_test "$PROM_WHY"; fi
}
FAMILIES="keyturn_requests_total keyturn_cache_hits_total keyturn_cache_misses_total
keyturn_aws_requests_total keyturn_secret_age_seconds keyturn_secret_version_changes_total
keyturn_logins_total keyturn_events_received_total keyturn_connections keyturn_up"
REQ_OK='"keyturn_requests_total", door="http", op="get", result="ok"'

h m1 -H "$TOK" "$U/metrics"
# The media type and its version parameter (prometheus_client itself adds
# "; charset=utf-8").
ctype=$(header m1 Content-Type)
expect_eq "GET /metrics with the token: 200, text/plain; version=0.0.4" "200 text/plain version=0.0.4" \
	"$CODE $(printf '%s' "$ctype" | tr -d ' ' | awk -F';' '{ v = ""; for (i = 2; i <= NF; i++) if ($i == "version=0.0.4") v = $i; print $1, v }')"
for i in 1 2 3; do
	h "m-get$i" -H "$TOK" "$GET?secretId=app/plain"
done
h m2 -H "$TOK" "$U/metrics"
mexpect "every family of the spec is in /metrics" "" "missing(0, '''$FAMILIES''')" m1
mexpect "requests_total{door=http,op=get,result=ok} grows by exactly the 3 GETs between scrapes" \
	3 "v(1, $REQ_OK) - v(0, $REQ_OK)" m1 m2
d_hits=$(pm 'v(1, "keyturn_cache_hits_total") - v(0, "keyturn_cache_hits_total")' m1 m2)
mcheck "cache hits grow with them (by $d_hits)" test "$d_hits" -ge 1
mexpect "keyturn_up is 1 and keyturn_connections{door=http} is at least 1" "True" \
	'v(0, "keyturn_up") == 1 and v(0, "keyturn_connections", door="http") >= 1' m2
mexpect "root's /metrics has per-secret series of app/plain and app/rot" "True" \
	'{"app/plain", "app/rot"} <= set(secrets(0).split())' m2
h_as "$UA" m-a -H "$TOK" "$U/metrics"
mexpect "$UA's /metrics has per-secret series of app/plain only" "200 app/plain" \
	"'$CODE ' + secrets(0)" m-a
h_as "$UB" m-b -H "$TOK" "$U/metrics"
mexpect "$UB's /metrics lists no per-secret series (it may read no secret)" "200 " \
	"'$CODE ' + secrets(0)" m-b

# --- rotation: versionStage, versionId, refreshNow ----------------------------------------
# The daemon's next check of app/rot is an hour away (after the refresh at
# the start), and refresh_min_interval (1 s) has passed since it.
listed() {
	jfield "$(kt_req '{"v":1,"op":"list"}')" \
		"[($2) for s in d[\"secrets\"] if s[\"name\"] == \"$1\"][0]"
}
rot_quiet() { [ "$(listed app/rot "s['next_check'] - $(date +%s)")" -gt 600 ] 2>/dev/null; }
refresh_allowed() { [ "$(date +%s)" -ge $((t_first_refresh + 2)) ]; }
check "the daemon's next check of app/rot is far off, so that only refreshNow can see a rotation" \
	wait_until 90 rot_quiet
wait_until 10 refresh_allowed
h rot0 -H "$TOK" "$GET?secretId=app/rot"
expect_eq "app/rot serves its first version" "$V_ROT1 $vid_rot1" \
	"$(fields 'd.get("SecretString"), d.get("VersionId")')"
h m3 -H "$TOK" "$U/metrics"
vid_rot2=$(rotate_secret app/rot "$V_ROT2") || bail "rotation in moto failed"
h rot1 -H "$TOK" "$GET?secretId=app/rot"
expect_eq "after the rotation in AWS a plain read still serves the cached old value" \
	"$V_ROT1 $vid_rot1" "$(fields 'd.get("SecretString"), d.get("VersionId")')"
h rot2 -H "$TOK" "$GET?secretId=app/rot&refreshNow=true"
expect_eq "refreshNow=true serves the new value at once" "$V_ROT2 $vid_rot2" \
	"$(fields 'd.get("SecretString"), d.get("VersionId")')"
h rot3 -H "$TOK" "$GET?secretId=app/rot"
expect_eq "and plain reads serve it from then on" "$V_ROT2 $vid_rot2" \
	"$(fields 'd.get("SecretString"), d.get("VersionId")')"
h m4 -H "$TOK" "$U/metrics"
mexpect "keyturn_secret_version_changes_total{secret=app/rot} grows by 1" 1 \
	'v(1, "keyturn_secret_version_changes_total", secret="app/rot") - v(0, "keyturn_secret_version_changes_total", secret="app/rot")' \
	m3 m4
d_desc=$(pm 'v(1, "keyturn_aws_requests_total", op="DescribeSecret", result="ok") - v(0, "keyturn_aws_requests_total", op="DescribeSecret", result="ok")' m3 m4)
mcheck "keyturn_aws_requests_total{op=DescribeSecret,result=ok} grows with refreshNow (by $d_desc)" \
	test "$d_desc" -ge 1
h prev -H "$TOK" "$GET?secretId=app/rot&versionStage=AWSPREVIOUS"
expect_eq "versionStage=AWSPREVIOUS: the old value and the old VersionId" "$V_ROT1 $vid_rot1" \
	"$(fields 'd.get("SecretString"), d.get("VersionId")')"
h byvid -H "$TOK" "$GET?secretId=app/rot&versionId=$vid_rot1"
expect_eq "versionId=<the old id>: the old value" "$V_ROT1 $vid_rot1" \
	"$(fields 'd.get("SecretString"), d.get("VersionId")')"
agent agent-prev --version-stage AWSPREVIOUS app/rot
expect_eq "agentclient with versionStage=AWSPREVIOUS reads the old value" "0 $V_ROT1" \
	"$AGENT_RC $AGENT_OUT"

check "no secret value (nor the token) in any /metrics text" sh -c "! cat '$T'/u/m[1-4].body '$T'/u/m-[ab].body | grep -qF -e '$V_PLAIN' -e '$V_PW' -e '$V_ROT1' -e '$V_ROT2' -e '$V_BIN64' -e '$TOKEN'"

# --- 2,000 idle connections of one uid -----------------------------------------------------
# flood.py: as USER, opens N connections to PORT at once and keeps them;
# counts how many connected, were refused, got a 429 answer, got another
# answer, or were closed without one. Writes those counts to READY once all
# connects are settled and all but KEEP are answered or closed (or after
# 30 s), then waits for STOP and prints the counts again.
cat >"$T/flood.py" <<'PY'
import errno, json, os, selectors, socket, sys, time
sys.path.insert(0, sys.argv[1])
import ktclient
port, n, keep = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ready, stop, user = sys.argv[5], sys.argv[6], sys.argv[7]
ktclient.become_user(user)
c = dict(connected=0, refused=0, errors=0, answered_429=0, answered_other=0, closed=0)
sample = ""
sel = selectors.DefaultSelector()
bufs = {}
connecting = 0
for i in range(n):
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError as e:
        c["errors"] += 1
        sample = sample or "socket: %s" % e
        continue
    s.setblocking(False)
    rc = s.connect_ex(("127.0.0.1", port))
    if rc in (0, errno.EINPROGRESS):
        sel.register(s, selectors.EVENT_WRITE, "connecting")
        connecting += 1
    else:
        c["refused" if rc == errno.ECONNREFUSED else "errors"] += 1
        s.close()

def settle(s, buf):
    global sample
    sel.unregister(s)
    s.close()
    bufs.pop(s, None)
    if buf.startswith(b"HTTP/1.1 429"):
        c["answered_429"] += 1
        sample = sample or buf.decode("latin-1")
    elif buf:
        c["answered_other"] += 1
        sample = buf.decode("latin-1")
    else:
        c["closed"] += 1

def report():
    return json.dumps(dict(c, open=len(bufs), sample=sample[-200:]))

start = time.monotonic()
written = False
while time.monotonic() - start < 600:
    for key, mask in sel.select(0.1):
        s = key.fileobj
        if key.data == "connecting":
            connecting -= 1
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                c["connected"] += 1
                bufs[s] = b""
                sel.modify(s, selectors.EVENT_READ, "open")
            else:
                c["refused" if err == errno.ECONNREFUSED else "errors"] += 1
                sel.unregister(s)
                s.close()
            continue
        try:
            d = s.recv(4096)
        except OSError:
            d = b""
        if d:
            bufs[s] += d
        else:
            settle(s, bufs[s])
    settled = n - connecting - len(bufs)
    if not written and ((connecting == 0 and settled >= n - keep) or time.monotonic() - start > 30):
        with open(ready + ".tmp", "w") as f:
            f.write(report() + "\n")
        os.rename(ready + ".tmp", ready)
        written = True
    if written and os.path.exists(stop):
        break
print(report(), flush=True)
PY
PER_UID=32 # max_connections_per_uid's default
FLOOD=2000 nofile=4096
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt 4096 ]; then
	nofile=$hard FLOOD=$((hard - 100))
	diag "ulimit -Hn is $hard: flooding with $FLOOD connections instead of 2000"
fi
(
	ulimit -Sn "$nofile"
	exec "$PYTHON3" "$T/flood.py" "$KT_LIB" "$HTTP_PORT" "$FLOOD" "$PER_UID" "$T/u/flood.ready" \
		"$T/u/flood.stop" "$UB"
) >"$T/flood.out" 2>"$T/flood.err" &
flood_pid=$!
kt_pids+=("$flood_pid")
flood_ready() { [ -s "$T/u/flood.ready" ] || ! kill -0 "$flood_pid" 2>/dev/null; }
wait_until 120 flood_ready
fr=$(cat "$T/u/flood.ready" 2>/dev/null)
diag "flood of $UB: ${fr:-no report; $(head -c 300 "$T/flood.err")}"
flood_verdict() {
	jfield "$fr" "d['connected'] + d['refused'] == $FLOOD and d['open'] <= $PER_UID, \
		d['answered_429'] >= 1 and 'Connection limit exceeded' in d['sample'], \
		d['answered_other']" 2>/dev/null | tr -d '(),' || echo "(no report)"
}
expect_eq "of $FLOOD connections of $UB at most $PER_UID stay open; the rest are answered 429 Connection limit exceeded" \
	"True True 0" "$(flood_verdict)"
"$CTL" --socket "$KT_SOCK" status --json </dev/null >"$T/ctl-flood.out" 2>"$T/ctl-flood.err"
expect_eq "the daemon's side: it holds at most $PER_UID HTTP connections and has refused some (status)" \
	"True True" \
	"$(json_get "$T/ctl-flood.out" '(d["http"]["connections"] <= '"$PER_UID"', d["http"]["refused"] >= 1)' 2>&1 | tr -d '(),')"
agent flood-a --as-user "$UA" app/plain
expect_eq "meanwhile $UA reads app/plain (agentclient over TCP)" "0 $V_PLAIN" "$AGENT_RC $AGENT_OUT"
h flood-root -H "$TOK" "$GET?secretId=app/plain"
expect_eq "meanwhile root reads app/plain (curl)" "$V_PLAIN" "$(value_of)"
"$CTL" --socket "$KT_SOCK" status --json </dev/null >"$T/ctl-status.out" 2>"$T/ctl-status.err"
rc=$?
expect_eq "meanwhile keyturnctl status answers" 0 "$rc"
diag "status http: $(json_get "$T/ctl-status.out" 'd.get("http")' 2>&1)"
touch "$T/u/flood.stop"
wait "$flood_pid"
diag "flood at its end: $(cat "$T/flood.out")"
h after-ping "$U/ping"
ping_after="$CODE $BODY"
h after-get -H "$TOK" "$GET?secretId=app/plain"
expect_eq "after the flood the daemon runs and answers /ping and a get" "running 200 healthy $V_PLAIN" \
	"$(kill -0 "$KT_PID" && echo running) $ping_after $(value_of)"

stop_daemon
expect_eq "SIGTERM stops keyturnd with status 0" 0 "$KT_STATUS"

# --- a token file that exists is used as it is; keep-alive timeouts -------------------------
TOKEN2=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '  %s \n' "$TOKEN2" >"$TOKF"
chmod 600 "$TOKF"
chown root:root "$TOKF"
tok_before="$(stat -c '%a %U %G' "$TOKF") $(sha256sum <"$TOKF")"
{
	cat <<EOF2
[http]
listen = 127.0.0.1:$HTTP_PORT unix:$HTTP_SOCK
token_file = $TOKF
EOF2
	sections
} | write_config "check_interval = 3600
idle_timeout = 2
request_timeout = 2"
start_daemon || bail "keyturnd did not start again"
wait_port "$HTTP_PORT" 20
expect_eq "keyturnd uses an existing token file as it is (mode, owner, content)" "$tok_before" \
	"$(stat -c '%a %U %G' "$TOKF") $(sha256sum <"$TOKF")"
h tok2 -H "X-Aws-Parameters-Secrets-Token: $TOKEN2" "$GET?secretId=app/plain"
expect_eq "its token, without the white space around it, is the token" "$V_PLAIN" "$(value_of)"
h tok1 -H "$TOK" "$GET?secretId=app/plain"
expect_eq "the token of the first start is no longer taken: 403 Bad Token" "403 Bad Token" \
	"$CODE $BODY"

# conn.py MODE PORT: idle: one request, its answer, then how the connection
# ends; partial: a request whose headers never finish, then how it ends.
# Each wait is bounded (30 s) by the socket's timeout.
cat >"$T/conn.py" <<'PY'
import socket, sys
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port), timeout=30)

def ending():
    got = b""
    try:
        while True:
            d = s.recv(4096)
            if not d:
                return "closed", got
            got += d
    except socket.timeout:
        return "open after 30 s", got
    except ConnectionResetError:
        return "closed", got

if mode == "idle":
    s.sendall(b"GET /ping HTTP/1.1\r\nHost: localhost\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    n = int(hdrs.get("content-length", "0"))
    while len(body) < n:
        d = s.recv(4096)
        if not d:
            break
        body += d
    status = lines[0].split(" ")[1] if lines[0].startswith("HTTP/") else "none"
    keep = "close" if hdrs.get("connection", "").lower() == "close" else "keep-alive"
    how, got = ending()
    print(status, body[:n].decode("latin-1"), keep, how)
    if got:
        print("then received: %r" % got[:100])
else:
    s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
    how, got = ending()
    print(how)
    print("received: %r" % got[:100])
PY
"$PYTHON3" "$T/conn.py" idle "$HTTP_PORT" >"$T/idle.out" 2>&1
expect_eq "with idle_timeout = 2 a kept-alive connection is closed by the daemon once idle" \
	"200 healthy keep-alive closed" "$(head -n 1 "$T/idle.out")"
sed -n '2,$s/^/#   /p' "$T/idle.out"
"$PYTHON3" "$T/conn.py" partial "$HTTP_PORT" >"$T/partial.out" 2>&1
expect_eq "with request_timeout = 2 a request whose headers never end is closed" closed \
	"$(head -n 1 "$T/partial.out")"
sed -n '2,$s/^/#   /p' "$T/partial.out"
h ping2 "$U/ping"
expect_eq "and the daemon answers /ping after both" "200 healthy" "$CODE $BODY"

stop_daemon
expect_eq "SIGTERM stops keyturnd again with status 0" 0 "$KT_STATUS"

# --- listen off loopback is refused at start -------------------------------------------------
# refuse N ADDRESS: keyturnd started with listen = ADDRESS; its exit status
# and what it said are in $T/refuse-N.err.
refuse() {
	local rc
	{
		cat <<EOF2
[http]
listen = $2
token_file = $T/refuse-token
EOF2
		sections
	} | KT_CONF="$T/refuse-$1.conf" write_config
	timeout 20 "$KEYTURND" -f -c "$T/refuse-$1.conf" >"$T/refuse-$1.err" 2>&1
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -qw listen "$T/refuse-$1.err"; then
		ok "listen = $2: keyturnd refuses to start (exit $rc), naming listen"
		sed -n '$s/^/#   /p' "$T/refuse-$1.err"
	else
		not_ok "listen = $2: keyturnd refuses to start (exit $rc), naming listen"
		tail -n 5 "$T/refuse-$1.err" | sed 's/^/#   /'
	fi
}
refuse 1 "0.0.0.0:$HTTP_PORT"
refuse 2 "192.0.2.1:$HTTP_PORT"

# --- the log ------------------------------------------------------------------------------------
check "no secret value in the daemon's debug log" \
	log_has_no_secrets "$V_PLAIN" "$V_PW" "$V_ROT1" "$V_ROT2" "$V_BIN64"
check "no HTTP token in the daemon's debug log" log_has_no_secrets "$TOKEN" "$TOKEN2"
check "no sanitizer report from keyturnd" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
no_sanitizer_report "no sanitizer report from the other programs run (keyturnctl, refused starts)"
[ "$tap_n" -eq "$PLANNED" ] || not_ok "PLANNED ($PLANNED) matches the checks run ($tap_n)"
done_testing
