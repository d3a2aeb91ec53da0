#!/bin/bash
# Offline verifiers never outlive a rotation, even on a full disk: state_dir
# is a tiny tmpfs; after the first verifier is written the tmpfs is filled
# and the secret rotated by hand (PutSecretValue AWSPENDING, then
# UpdateSecretVersionStage). The daemon notices, removes the old verifier
# at once (unlink needs no room) and cannot write the new one: the log and
# status say offline logins are unavailable for the account. Restarted with
# AWS unreachable, the OLD password is refused. With AWS back and room made
# again, the write is retried (10 s, then doubling) and succeeds; offline,
# the new password then works and the old one does not.
# Mounting a tmpfs needs root (and a container that allows it).

PLANNED=21

. "$KT_SRCDIR/tests/lib/accounts.sh"
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"

need_built "$KEYTURND"
[ "$(id -u)" -eq 0 ] || skip_all "needs root to mount a tmpfs"
mkdir -p "$T/state"
mount -t tmpfs -o size=256k,mode=0700 tmpfs "$T/state" 2>"$T/mount.err" ||
	skip_all "cannot mount a tmpfs here: $(head -n 1 "$T/mount.err")"
cleanup_mount() {
	[ -n "${KT_PID:-}" ] && kill "$KT_PID" 2>/dev/null && wait "$KT_PID" 2>/dev/null
	umount "$T/state" 2>/dev/null || umount -l "$T/state"
	kt_cleanup
}
trap cleanup_mount EXIT

HOST=h172-$$
OLD=Old-pass-172a
NEW=New-pass-172b
SECRET=hosts/$HOST/bg
# verify USER PASSWORD: the answer to one verify request, as root.
verify() { kt_req "{\"v\":1,\"op\":\"verify\",\"user\":\"$1\",\"password\":\"$2\"}"; }
# verdict ANSWER: "match STAGE SOURCE", "mismatch SOURCE", or the error code.
verdict() {
	jfield "$1" '("match %s %s" % (d["stage"], d["source"]) if d["match"] else "mismatch %s" % d["source"]) if d.get("ok") else d["error"]'
}
verifier_of() { echo "$T/state/verifier-$(printf '%s\n%s' "$1" "$2" | sha256sum | cut -c1-40)"; }
# fill: takes every free block of the tmpfs.
fill() { dd if=/dev/zero of="$T/state/fill" bs=4k 2>/dev/null; sync; }
status_offline() { jfield "$(kt_req '{"v":1,"op":"status"}')" "$1"; }
logged() { [ "$(grep -c -- "$2" "$KT_LOG")" -gt "$1" ]; }

start_moto
aws_cli secretsmanager create-secret --name "$SECRET" \
	--secret-string "{\"password\":\"$OLD\"}" >"$T/create.json" || bail "moto setup"
OLD_VID=$(jfield "$(cat "$T/create.json")" 'd["VersionId"]')
MOTO_UP=$MOTO_URL
config() {
	write_config "check_interval = 3600
refresh_min_interval = 1" <<EOF
[login:ktoff]
secret = $SECRET
key = password
previous_grace = 0
offline = yes
EOF
}
config
start_daemon || bail "keyturnd did not start"
f=$(verifier_of "$SECRET" password)
check "the first verifier is written on the tmpfs" \
	wait_until 15 grep -q "offline verifier for ktoff written (login:$SECRET, version $OLD_VID)" "$KT_LOG"
check "... the file is there" [ -f "$f" ]

# --- a rotation on a full disk ------------------------------------------------------
# A second name for the old verifier keeps its block taken when the daemon
# removes it, as on a real full disk where others take what is freed (else
# the new verifier would fit in the old one's place).
ln "$f" "$T/state/held-link"
fill
diag "tmpfs after filling: $(df -k --output=avail "$T/state" | tail -n 1 | tr -d ' ') KiB free"
NEW_VID=$(aws_cli secretsmanager put-secret-value --secret-id "$SECRET" \
	--secret-string "{\"password\":\"$NEW\"}" --version-stages AWSPENDING | jfield "$(cat)" 'd["VersionId"]')
aws_cli secretsmanager update-secret-version-stage --secret-id "$SECRET" --version-stage AWSCURRENT \
	--move-to-version-id "$NEW_VID" --remove-from-version-id "$OLD_VID" >/dev/null ||
	bail "UpdateSecretVersionStage failed"
# A wrong (here: the new) password makes the daemon check with AWS at once.
a=$(verify ktoff "$NEW")
expect_eq "the daemon notices the rotation: the new password matches" "match AWSCURRENT cache" "$(verdict "$a")"
check "writing the new verifier fails, and the log says so" \
	wait_until 10 grep -q "offline verifier for ktoff not written: .*No space left on device" "$KT_LOG"
check "... and that offline logins for the account are unavailable" \
	grep -q "offline logins for ktoff are unavailable until a write succeeds" "$KT_LOG"
check "the old verifier file is gone" [ ! -e "$f" ]
expect_eq "status: offline logins unavailable for one login secret" 1 "$(status_offline 'd["offline_unavailable"]["count"]')"
why=$(status_offline 'd["offline_unavailable"]["secrets"][0]["message"]')
check "... saying why" grep -q 'No space left on device' <<<"$why"
stop_daemon

# --- restarted with AWS unreachable ------------------------------------------------
MOTO_URL=http://127.0.0.1:$(free_port)
config
start_daemon || bail "keyturnd did not start without AWS"
a=$(verify ktoff "$OLD")
expect_eq "AWS unreachable after a restart: the OLD password is refused" unavailable "$(verdict "$a")"
check "... saying no verifier is kept" grep -q 'no offline verifier is kept' <<<"$a"
a=$(verify ktoff "$NEW")
expect_eq "... and the new one is unavailable too (its verifier could not be written)" unavailable "$(verdict "$a")"
stop_daemon

# --- AWS back, the disk still full, then room made: the write is retried ---------------
MOTO_URL=$MOTO_UP
config
start_daemon || bail "keyturnd did not start"
# moto's GetSecretValue and BatchGetSecretValue without a version still
# answer the version that UpdateSecretVersionStage moved AWSCURRENT from;
# the new password's re-check finds AWSCURRENT by DescribeSecret.
n=$(grep -c "offline verifier for ktoff not written" "$KT_LOG")
a=$(verify ktoff "$NEW")
expect_eq "AWS back: the new password matches" "match AWSCURRENT cache" "$(verdict "$a")"
check "... the disk still full: the write fails again" \
	wait_until 15 logged "$n" "offline verifier for ktoff not written"
rm -f "$T/state/fill"
t0=$EPOCHREALTIME
check "room made: a retry writes the new verifier" \
	wait_until 45 grep -q "offline verifier for ktoff written (login:$SECRET, version $NEW_VID)" "$KT_LOG"
diag "the retry wrote it $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s after room was made"
check "... the log says offline logins are available again" \
	grep -q "offline logins for ktoff are available again" "$KT_LOG"
expect_eq "... status lists none unavailable" 0 "$(status_offline 'd["offline_unavailable"]["count"]')"
stop_daemon

MOTO_URL=http://127.0.0.1:$(free_port)
config
start_daemon || bail "keyturnd did not start without AWS"
a=$(verify ktoff "$NEW")
expect_eq "offline again: the new password works from the verifier" "match AWSCURRENT offline" "$(verdict "$a")"
a=$(verify ktoff "$OLD")
expect_eq "... the old one does not" "mismatch offline" "$(verdict "$a")"
stop_daemon
expect_eq "SIGTERM: exit status 0" 0 "$KT_STATUS"
check "no password is in the log" log_has_no_secrets "$OLD" "$NEW"
check "the daemon ran clean" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"
done_testing
