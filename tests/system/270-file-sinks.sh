#!/bin/bash
# File sinks ([file:PATH]): keyturnd started as root drops to a service user
# and keeps files equal to a secret through its privileged helper. A sink
# owned by nobody with mode 0400 exists after start; a rotation replaces it
# (a new inode, the new value) and runs on_change exactly once; a reader
# looping on the file through many rotations never sees it partial or
# empty; a symlink at the path or in a parent directory is refused, not
# followed; with AWS unreachable the file keeps its value (one with
# on_stale = remove is removed) and follows the next rotation once AWS is
# back; no value reaches the log.
# Needs root (it creates the service user, removed again on any exit).

PLANNED=34

. "$KT_SRCDIR/tests/lib/accounts.sh"
need_root_accounts "create the service user and to start keyturnd as root"
id nobody >/dev/null 2>&1 || skip_all "needs the user nobody"

. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
. "$KT_LIB/proxy.sh"
need_built "$KEYTURND"

trap cleanup_accounts EXIT
SVC=kttest-$$-svc
SVC_G=kttest-$$-svcg
groupadd -r "$SVC_G" && made_groups+=("$SVC_G") &&
	useradd -r -M -N -s /usr/sbin/nologin -g "$SVC_G" "$SVC" && made_users+=("$SVC") ||
	bail "cannot create the service user"
chmod 755 "$T"

start_moto
start_proxy "$MOTO_URL"
V1="sink-value-$$-one-7c1d"
aws_cli secretsmanager create-secret --name app/db --secret-string "$V1" >/dev/null ||
	bail "moto setup"
aws_cli secretsmanager create-secret --name app/json \
	--secret-string '{"user":"app","password":"pw-'"$$"'-it'"'"'s"}' >/dev/null || bail "moto setup"

# The sinks' directories: root's, 0755 (the service user cannot write there).
mkdir -p "$T/files" "$T/env" "$T/linked/real" "$T/victim"
chmod 755 "$T/files" "$T/env" "$T/linked" "$T/linked/real" "$T/victim"
echo "victim-original" >"$T/victim/target"
ln -s "$T/victim/target" "$T/files/planted"     # a symlink at a sink's path
ln -s "$T/victim" "$T/linked/dir"                # a symlink in a sink's parent
RUNS="$T/runs"
: >"$RUNS"
chmod 666 "$RUNS"

MOTO_URL=$PROXY_URL write_config "user = $SVC
refresh_min_interval = 1
check_interval = 3600
max_stale = 3" <<EOF
[secret:app/db]
[secret:app/json]
[file:$T/files/db]
secret = app/db
owner = nobody
mode = 0400
on_change = sh -c 'echo run >>$RUNS'
[file:$T/env/app.env]
secret = app/json
format = env
mode = 0640
[file:$T/files/password]
secret = app/json
key = password
[file:$T/files/planted]
secret = app/db
[file:$T/linked/dir/target]
secret = app/db
[file:$T/files/db-fresh]
secret = app/db
on_stale = remove
EOF
sed -i "/^user = $(id -un)\$/d" "$KT_CONF"
chmod 644 "$KT_CONF"
start_daemon || bail "keyturnd did not start as root"
ok "keyturnd started as root with six file sinks"
check "it dropped privileges to the service user" grep -qF "dropped privileges to $SVC" "$KT_LOG"
check "the privileged helper was started before the drop" \
	grep -qF "file sinks: privileged helper started" "$KT_LOG"

DB="$T/files/db"
wait_until 20 test -f "$DB" || diag "no $DB"
expect_eq "the sink exists with owner nobody, mode 0400, a regular file" \
	"nobody 400 regular file" "$(stat -c '%U %a %F' "$DB" 2>&1)"
expect_eq "its content is the value, byte for byte" "$V1" "$(cat "$DB")"
expect_eq "no trailing newline is added" "${#V1}" "$(stat -c %s "$DB")"
runs_are() { [ "$(wc -l <"$RUNS")" -eq "$1" ]; }
wait_until 20 runs_are 1
expect_eq "on_change ran once after the first write" 1 "$(wc -l <"$RUNS")"
wait_until 20 test -f "$T/env/app.env"
expect_eq "format = env: KEY='value' lines, a ' written as '\\''" \
	"user='app'
password='pw-$$-it'\\''s'" "$(cat "$T/env/app.env")"
expect_eq "format = env: the shell reads the value back" "pw-$$-it's" \
	"$(sh -c ". '$T/env/app.env'; printf %s \"\$password\"")"
wait_until 20 test -f "$T/files/password"
expect_eq "format = raw with key: the member alone" "pw-$$-it's" "$(cat "$T/files/password")"

# --- symlinks: refused, not followed -----------------------------------------
wait_until 20 grep -qF "file $T/files/planted: $T/files/planted: a symlink: refused" "$KT_LOG"
check "a symlink at the path is refused with a log line" \
	grep -qF "file $T/files/planted: $T/files/planted: a symlink: refused, not followed" "$KT_LOG"
wait_until 20 grep -qF "$T/linked/dir: a symlink: refused" "$KT_LOG"
check "a symlink in a parent directory is refused with a log line" \
	grep -qF "file $T/linked/dir/target: $T/linked/dir: a symlink: refused, not followed" "$KT_LOG"
expect_eq "the symlinks' target is untouched" "victim-original" "$(cat "$T/victim/target")"
check "the planted symlink is still a symlink" test -L "$T/files/planted"

# --- a rotation ---------------------------------------------------------------
ino1=$(stat -c %i "$DB")
V2="sink-value-$$-two-91ab"
rotate_secret app/db "$V2" >/dev/null || bail "rotation"
content_is() { [ "$(cat "$DB" 2>/dev/null)" = "$1" ]; }
# keyturnctl trusts only a socket of root or the keyturn user: the Python
# client asks for the refreshes.
REQ_REFRESH='{"v":1,"op":"refresh","secret":"app/db"}'
rotated_to() { kt_req "$REQ_REFRESH" >/dev/null 2>&1; content_is "$1"; }
wait_until 20 rotated_to "$V2"
expect_eq "after a rotation the file holds the new value" "$V2" "$(cat "$DB")"
check "the inode changed (a new file renamed over the old)" test "$(stat -c %i "$DB")" != "$ino1"
expect_eq "owner and mode are kept" "nobody 400" "$(stat -c '%U %a' "$DB")"
wait_until 20 runs_are 2
# Another on_change run would follow at once; a refresh that finds nothing
# new makes sure the daemon had its turn.
refreshed() { kt_req "$REQ_REFRESH" 2>/dev/null | grep -qE '"ok": *true'; }
wait_until 10 refreshed
expect_eq "on_change ran exactly once for the rotation" 2 "$(wc -l <"$RUNS")"

# --- a reader during many rotations ----------------------------------------------
# The reader opens and reads the file in a loop and records reads that are
# empty or not a whole value (every value from here on ends with -end).
# One Python process plays the rotations, each followed by refreshes until
# the file holds the new value; refresh_min_interval (1 s at least) sets the
# pace: the 100 rotations take about 100 s (bounded at 240 s).
cat >"$T/reader.py" <<'PY'
import os, sys
path, stop, bad = sys.argv[1], sys.argv[2], sys.argv[3]
reads = nbad = 0
with open(bad, "w") as out:
    while not os.path.exists(stop):
        with open(path, "rb") as f:
            data = f.read()
        reads += 1
        if not data.startswith(b"sink-value-") or not data.endswith(b"-end"):
            nbad += 1
            if nbad <= 5:
                out.write(repr(data[:80]) + "\n")
                out.flush()
print(reads)
PY
cat >"$T/rotator.py" <<'PY'
import base64, os, sys, time
import boto3
url, lib, sock, path, pid, seconds = sys.argv[1:7]
sys.path.insert(0, lib)
from ktclient import KtClient
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=url)
end = time.monotonic() + float(seconds)
n = 0
last = None
while n < 100 and time.monotonic() < end:
    value = "sink-value-%s-%d-%s-end" % (pid, n, base64.b16encode(os.urandom(200)).decode())
    cur = [v for v, s in sm.describe_secret(SecretId="app/db")["VersionIdsToStages"].items()
           if "AWSCURRENT" in s][0]
    new = sm.put_secret_value(SecretId="app/db", SecretString=value,
                              VersionStages=["AWSPENDING"])["VersionId"]
    sm.update_secret_version_stage(SecretId="app/db", VersionStage="AWSCURRENT",
                                   MoveToVersionId=new, RemoveFromVersionId=cur)
    n += 1
    last = value
    limit = time.monotonic() + 20
    while time.monotonic() < limit:
        try:
            with KtClient(sock, 20) as c:
                c.request('{"v":1,"op":"refresh","secret":"app/db"}')
        except Exception:  # noqa: BLE001 -- the next try may do
            pass
        with open(path) as f:
            if f.read() == value:
                break
        time.sleep(0.1)
    else:
        print("stuck", n, file=sys.stderr)
        break
print(n)
print(last)
PY
V="sink-value-$$-warm-end"
rotate_secret app/db "$V" >/dev/null
wait_until 20 rotated_to "$V"
expect_eq "a value ending in -end is in the file before the reader starts" "$V" "$(cat "$DB")"
"$PYTHON3" "$T/reader.py" "$DB" "$T/stop" "$T/bad" >"$T/reads" &
reader=$!
kt_pids+=("$reader")
began=$SECONDS
"$PYTHON3" "$T/rotator.py" "$MOTO_URL" "$KT_LIB" "$KT_SOCK" "$DB" "$$" 240 >"$T/rotations" 2>"$T/rotator.err"
touch "$T/stop"
wait "$reader"
{ read -r n && read -r V; } <"$T/rotations"
diag "${n:-0} rotations in $((SECONDS - began)) s; the reader read the file $(cat "$T/reads") times"
check "100 rotations went through while the reader looped" test "${n:-0}" -eq 100
expect_eq "the file holds the last value" "$V" "$(cat "$DB")"
expect_eq "the reader never saw a partial or empty file" "" "$(cat "$T/bad")"
check "no temporary file is left next to the sink" \
	test -z "$(find "$T/files" -name '.*keyturn-*')"

# --- AWS unreachable -------------------------------------------------------------
last=$V
plan '{"default":"reset"}'
VOUT="sink-value-$$-outage-end"
rotate_secret app/db "$VOUT" >/dev/null
# A refresh that reached the check (not one refused as too soon) fails.
refresh_failed() { kt_req "$REQ_REFRESH" 2>/dev/null | grep -qF '"unavailable"'; }
wait_until 20 refresh_failed
stale_logged() { grep -qF "file $DB: secret app/db is stale beyond max_stale; the file keeps its last value" "$KT_LOG"; }
wait_until 30 stale_logged
check "with AWS unreachable beyond max_stale the log says the file is kept" stale_logged
expect_eq "the file keeps its last value" "$last" "$(cat "$DB")"
fresh_gone() { [ ! -e "$T/files/db-fresh" ]; }
wait_until 30 fresh_gone
check "a sink with on_stale = remove is removed instead" fresh_gone
check "and the log says so" grep -qF "file $T/files/db-fresh: removed (secret app/db is stale, on_stale = remove)" "$KT_LOG"
plan '{"default":"pass"}'
wait_until 30 rotated_to "$VOUT"
expect_eq "AWS back: the file follows the rotation made meanwhile" "$VOUT" "$(cat "$DB")"
fresh_back() { [ "$(cat "$T/files/db-fresh" 2>/dev/null)" = "$VOUT" ]; }
wait_until 30 fresh_back
check "and the removed sink is written again with it" fresh_back
VBACK="sink-value-$$-back-end"
rotate_secret app/db "$VBACK" >/dev/null
wait_until 20 rotated_to "$VBACK"
expect_eq "and the next one" "$VBACK" "$(cat "$DB")"

# A reload that changes a sink: logged, and the sink in use is kept.
sed -i 's/^mode = 0400$/mode = 0444/' "$KT_CONF"
kill -HUP "$KT_PID"
sinks_changed() { grep -qF "reload: file sinks changed: restart keyturnd to apply" "$KT_LOG"; }
wait_until 20 sinks_changed
check "a reload that changes a [file:] section says a restart applies it" sinks_changed

stop_daemon
expect_eq "keyturnd stops cleanly" 0 "$KT_STATUS"
check "no value in the log" log_has_no_secrets "$V1" "$V2" "$VOUT" "$VBACK" "pw-$$-it" "$last"
sanitizer_clean() { ! grep -qE "$KT_SANITIZER_RE" "$KT_LOG"; }
check "no sanitizer report in the log" sanitizer_clean
[ "$tap_n" -eq "$PLANNED" ] || diag "ran $tap_n checks, planned $PLANNED"
done_testing
