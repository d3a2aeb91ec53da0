#!/bin/bash
# keyturnd's systemd credentials door ([credentials] socket), with a client
# that behaves as systemd's LoadCredential=ID:SOCKET does: bind to the
# abstract name "\0<random>/unit/<unit>/<id>", connect, shut down writing,
# read to EOF. An allowed unit gets exactly the value (or its key member,
# or the bytes of a binary secret; a glob in allow_units works); a wrong
# unit, a wrong ID, a malformed address, a secret AWS does not have, an
# unbound or path-bound client
# and a non-root peer (a real second uid, refused by the socket's mode and,
# with the mode loosened by hand, by the door) get 0 bytes and a log line
# saying why, and the daemon answers status afterwards. A reload applies
# new allow_units at once and says a new socket path needs a restart. No
# value reaches the log. Needs root (a second user, and the door serves
# uid 0 only).

PLANNED=37

. "$KT_SRCDIR/tests/lib/accounts.sh"
need_root_accounts "create a second user and to load credentials as root"
command -v setpriv >/dev/null || skip_all "needs setpriv (util-linux) to connect as another user"

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"
need_built "$KEYTURND"
CTL="$KT_BUILDDIR/keyturnctl"
need_built "$CTL"
trap cleanup_accounts EXIT

UA=kttest-$$-c
useradd -r -M -N -s /usr/sbin/nologin "$UA" && made_users+=("$UA") ||
	bail "cannot create the test user"
uid_a=$(id -u "$UA")
chmod 755 "$T"

# --- moto -------------------------------------------------------------------------
start_moto
V_DB="cred-db-value-$$-7c1e"
V_PW="cred-json-password-$$-a2b9"
V_JSON="{\"username\":\"app\",\"password\":\"$V_PW\"}"
head -c 40 /dev/urandom >"$T/bin"
"$PYTHON3" - "$MOTO_URL" "$T/bin" "$V_DB" "$V_JSON" >"$T/setup.out" 2>&1 <<'PY' || bail "moto setup: $(cat "$T/setup.out")"
import sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sm.create_secret(Name="app/db", SecretString=sys.argv[3])
sm.create_secret(Name="app/json", SecretString=sys.argv[4])
sm.create_secret(Name="app/bin", SecretBinary=open(sys.argv[2], "rb").read())
sm.create_secret(Name="app/late", SecretString=sys.argv[3] + "-late")
PY
# The daemon talks to moto through the fault proxy, which can slow AWS down
# so that a first load has to wait for its fetch.
start_proxy "$MOTO_URL"
MOTO_URL=$PROXY_URL # what write_config points the daemon at

# --- the client, as systemd's LoadCredential= -----------------------------------------
# cred [--as USER] MODE SOCKET UNIT ID OUT: MODE abstract (systemd's way),
# unbound, path (bound to a file) or raw (UNIT is the whole abstract name).
# The bytes read go to OUT; exit 0 after EOF, 3 when connect failed.
cat >"$T/credclient.py" <<'PY'
import os, socket, sys
mode, path, unit, cid, out = sys.argv[1:6]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
if mode == "abstract":
    s.bind("\0" + os.urandom(8).hex() + "/unit/" + unit + "/" + cid)
elif mode == "raw":
    s.bind("\0" + unit)
elif mode == "path":
    s.bind(out + ".sock")
s.settimeout(20)
try:
    s.connect(path)
except OSError as e:
    print("connect: %s" % e, file=sys.stderr)
    sys.exit(3)
s.shutdown(socket.SHUT_WR)
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
open(out, "wb").write(data)
PY
chmod 644 "$T/credclient.py"
mkdir -m 1777 "$T/u"
CRED_SOCK="$T/run/credentials.sock"
cred() {
	local run=()
	if [ "$1" = --as ]; then
		run=(setpriv --reuid="$2" --regid="$(id -g "$2")" --init-groups)
		shift 2
	fi
	rm -f "$5" "$5.sock"
	"${run[@]}" "$PYTHON3" "$T/credclient.py" "$1" "$CRED_SOCK" "$2" "$3" "$5" 2>"$5.err"
}
size() { stat -c %s "$1" 2>/dev/null || echo none; }
logged() { grep -qF -- "$1" "$KT_LOG"; }

# --- the daemon ----------------------------------------------------------------------
units_db="app.service"
extra=""
sections() {
	cat <<EOF2
[credentials]
socket = $CRED_SOCK

[secret:app/db]
credential = db-password
allow_units = $units_db

[secret:app/json]
credential = json-pw
key = password
allow_units = web-*.service  other.service

[secret:app/bin]
credential = bin-key
allow_units = app.service

[secret:app/missing]
credential = missing
allow_units = app.service
EOF2
	printf '%s' "$extra"
}
sections | write_config
start_daemon || bail "keyturnd did not start with a [credentials] section"
ok "keyturnd starts with [credentials] socket = $CRED_SOCK"
expect_eq "the credentials socket is mode 0600, owned by the daemon's user" \
	"600 $(id -un)" "$(stat -c '%a %U' "$CRED_SOCK" 2>&1)"

# --- allowed: exactly the value ------------------------------------------------------
cred abstract app.service db-password x "$T/u/db"
expect_eq "app.service gets db-password: exactly the value, no newline" \
	"$V_DB" "$(cat "$T/u/db" 2>&1)"
expect_eq "... and not a byte more" "${#V_DB}" "$(size "$T/u/db")"
cred abstract web-frontend.service json-pw x "$T/u/json"
expect_eq "a glob in allow_units (web-*.service): the key member" "$V_PW" "$(cat "$T/u/json" 2>&1)"
cred abstract other.service json-pw x "$T/u/json2"
expect_eq "the second pattern of allow_units matches too" "$V_PW" "$(cat "$T/u/json2" 2>&1)"
cred abstract app.service bin-key x "$T/u/bin"
check "a binary secret: exactly its bytes" cmp "$T/bin" "$T/u/bin"
check "the log says what was served, to which unit" logged "credentials: db-password served to app.service (secret app/db"

# --- refused: 0 bytes and a log line -------------------------------------------------
cred abstract evil.service db-password x "$T/u/wrong-unit"
expect_eq "a unit not allowed: 0 bytes" 0 "$(size "$T/u/wrong-unit")"
check "... logged with the unit, the ID and why" logged \
	"refused uid 0 (unit evil.service, credential db-password): unit not allowed"
cred abstract app.service no-such-id x "$T/u/wrong-id"
expect_eq "an unknown credential ID: 0 bytes" 0 "$(size "$T/u/wrong-id")"
check "... logged" logged "refused uid 0 (unit app.service, credential no-such-id): unknown credential ID"
cred abstract web-x.service db-password x "$T/u/other-pattern"
expect_eq "another secret's pattern does not open this one: 0 bytes" 0 "$(size "$T/u/other-pattern")"
cred unbound - - x "$T/u/unbound"
expect_eq "a client without an abstract name (unbound): 0 bytes" 0 "$(size "$T/u/unbound")"
check "... logged" logged "the peer's socket has no address"
cred path - - x "$T/u/pathbound"
expect_eq "a client bound to a path: 0 bytes" 0 "$(size "$T/u/pathbound")"
check "... logged" logged "the peer's address is a path, not an abstract name"
cred raw "abc/unit/app.service" - x "$T/u/malformed"
expect_eq "an abstract name without an ID: 0 bytes" 0 "$(size "$T/u/malformed")"
check "... logged" logged "the address lacks a credential ID"
cred abstract app.service missing x "$T/u/missing"
expect_eq "a secret AWS does not have: 0 bytes" 0 "$(size "$T/u/missing")"
check "... logged with the cache's error" logged \
	"refused uid 0 (unit app.service, credential missing): the cache answered"

# A non-root peer: the socket's mode stops it at connect...
cred --as "$UA" abstract app.service db-password x "$T/u/nonroot"
expect_eq "uid $uid_a cannot connect to the 0600 socket" 3 "$?"
expect_eq "... and gets 0 bytes" none "$(size "$T/u/nonroot")"
# ...and with the mode loosened by hand, the door itself refuses it.
chmod 666 "$CRED_SOCK"
cred --as "$UA" abstract app.service db-password x "$T/u/nonroot2"
expect_eq "uid $uid_a on a socket made 0666 by hand: 0 bytes" 0 "$(size "$T/u/nonroot2")"
check "... logged with the uid and why" logged \
	"refused uid $uid_a (unit app.service, credential db-password): the peer is not root"
chmod 600 "$CRED_SOCK"

kt_req '{"v":1,"op":"status"}' >"$T/status.json"
expect_eq "the daemon still answers status, with the door's figures" \
	"on $CRED_SOCK 0 4 8" \
	"$(json_get "$T/status.json" 'd["credentials"]["state"]+" "+d["credentials"]["socket"]+" "+" ".join(str(d["credentials"][k]) for k in ("connections","served","refused"))' 2>&1)"
cred abstract app.service db-password x "$T/u/db-again"
expect_eq "... and serves the credential again" "$V_DB" "$(cat "$T/u/db-again" 2>&1)"

# --- reload ------------------------------------------------------------------------------
units_db="app2.service"
# A section new at this reload is not cached yet, and AWS answers after a
# second: its first load waits for the fetch (parked in the ops).
plan '{"default":{"delay":1}}'
extra=$'\n[secret:app/late]\ncredential = late\nallow_units = late.service\n'
sections | write_config
"$CTL" --socket "$KT_SOCK" reload >"$T/reload.out" 2>&1
expect_eq "reload with new allow_units exits 0" 0 "$?"
cred abstract late.service late x "$T/u/late"
cred abstract app2.service db-password x "$T/u/app2"
expect_eq "the new unit gets the value at once" "$V_DB" "$(cat "$T/u/app2" 2>&1)"
cred abstract app.service db-password x "$T/u/app-old"
expect_eq "the unit no longer listed gets 0 bytes" 0 "$(size "$T/u/app-old")"
expect_eq "a section added by the reload serves its credential" "$V_DB-late" "$(cat "$T/u/late" 2>&1)"
check "... after waiting for its first fetch" logged \
	"credentials: late for late.service waits for app/late to be fetched"
plan '{"actions":[]}'
CRED_SOCK_OLD=$CRED_SOCK
CRED_SOCK="$T/run/other.sock"
sections | write_config
"$CTL" --socket "$KT_SOCK" reload >"$T/reload2.out" 2>&1
check "a new socket path: reload says it needs a restart" logged \
	"reload: [credentials] socket changes take effect at the next restart"
CRED_SOCK=$CRED_SOCK_OLD

# --- the log --------------------------------------------------------------------------
check "no value in the daemon's log" log_has_no_secrets "$V_DB" "$V_PW"
stop_daemon
expect_eq "keyturnd exits 0 on SIGTERM" 0 "$KT_STATUS"
check "the credentials socket is removed at exit" test ! -e "$CRED_SOCK"
if grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; then
	not_ok "no sanitizer report in the daemon's log"
	grep -E -A5 "$KT_SANITIZER_RE" "$KT_LOG" | head -20 | sed 's/^/# /'
else
	ok "no sanitizer report in the daemon's log"
fi

done_testing
