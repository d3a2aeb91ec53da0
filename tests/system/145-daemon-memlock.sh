#!/bin/bash
# keyturnd keeps secret values in a locked arena (OpenSSL's secure heap,
# `locked_memory`) that fits the default RLIMIT_MEMLOCK of 8 MiB: under that
# limit its memory is locked (VmLck) without any warning and values are
# served; a value that does not fit is refused with a clear log line and an
# error answer, not a crash; a locked_memory over the limit, or not a power
# of two, stops the start with a message that says so.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"
need_built "$KEYTURND"

# The default limit of a Linux login, whatever this machine's is; lowering
# it is always allowed.
ulimit -l 8192 2>/dev/null || { echo "1..0 # SKIP cannot set RLIMIT_MEMLOCK to 8 MiB here"; exit 0; }
diag "RLIMIT_MEMLOCK: $(ulimit -S -l) KiB soft, $(ulimit -H -l) KiB hard"

start_moto
aws_cli secretsmanager create-secret --name app/small --secret-string 'memlock-value-0001' \
	>/dev/null || bail "moto setup"
big=$(head -c 3000 /dev/urandom | base64 -w0)  # 4,000 bytes
aws_cli secretsmanager create-secret --name app/big --secret-string "$big" >/dev/null ||
	bail "moto setup"

sections() {
	cat <<EOF2
[secret:app/small]
allow_users = $(id -un)
[secret:app/big]
allow_users = $(id -un)
EOF2
}

# vmlck PID: the locked memory of a process, in KiB.
vmlck() { sed -n 's/^VmLck:[[:space:]]*\([0-9]*\) kB$/\1/p' "/proc/$1/status"; }

# --- the default locked_memory (4M) under an 8 MiB limit ----------------------------
sections | write_config
start_daemon || bail "keyturnd did not start"
ok "keyturnd starts with the default locked_memory under RLIMIT_MEMLOCK = 8 MiB"
a=$(kt_get app/small)
expect_eq "a value is served" "memlock-value-0001" "$(jfield "$a" 'd.get("string")')"
a=$(kt_get app/big)
expect_eq "a 4,000-byte value is served" "$big" "$(jfield "$a" 'd.get("string")')"
expect_eq "its memory is locked: VmLck is the 4 MiB arena" 4096 "$(vmlck "$KT_PID")"
check "no 'may be swapped out' warning" sh -c "! grep -q 'may be swapped out' '$KT_LOG'"
check "no refusal in the log" sh -c "! grep -q 'no room in locked memory' '$KT_LOG'"
stop_daemon
expect_eq "SIGTERM stops it cleanly" 0 "$KT_STATUS"

# --- a 4K arena: the big value does not fit -----------------------------------
: >"$KT_LOG"
sections | write_config "locked_memory = 4K"
start_daemon || bail "keyturnd did not start with locked_memory = 4K"
ok "keyturnd starts with locked_memory = 4K"
a=$(kt_get app/big)
expect_eq "a value larger than the arena: an error answer" "unavailable" "$(jfield "$a" 'd.get("error")')"
msg=$(jfield "$a" 'd.get("message")')
check "the answer says why: $msg" grep -q 'no room in locked memory' <<<"$msg"
check "the log names the secret and locked_memory" \
	grep -q 'app/big: version .* not cached: no room in locked memory (locked_memory = 4096 bytes' "$KT_LOG"
a=$(kt_get app/small)
expect_eq "a small value is still served" "memlock-value-0001" "$(jfield "$a" 'd.get("string")')"
for i in 1 2 3 4 5; do kt_get app/big >/dev/null; done
n=$(grep -c 'app/big: version .* not cached' "$KT_LOG")
check "repeated gets do not fetch it again and again ($n refusals logged)" test "$n" -le 2
check "keyturnd is still running" kill -0 "$KT_PID"
expect_eq "VmLck is the 4 KiB arena" 4 "$(vmlck "$KT_PID")"
stop_daemon
expect_eq "SIGTERM stops it cleanly" 0 "$KT_STATUS"
check "no sanitizer report" sh -c "! grep -qE '$KT_SANITIZER_RE' '$KT_LOG'"

# --- start-up errors --------------------------------------------------------------
# start_fails NAME: runs keyturnd on $KT_CONF in the foreground; its exit
# status in RC, its output in $T/NAME.out.
start_fails() {
	timeout 20 "$KEYTURND" -f -c "$KT_CONF" >"$T/$1.out" 2>&1
	RC=$?
}
sections | write_config "locked_memory = 16M"
start_fails over
expect_eq "locked_memory = 16M over an 8 MiB limit: the start fails (exit 1)" 1 "$RC"
check "the error names locked_memory and the limit" \
	grep -q 'locked_memory = 16777216 bytes (16384 KiB) is more than RLIMIT_MEMLOCK allows (8388608 bytes)' "$T/over.out"
sections | write_config "locked_memory = 3M"
start_fails pow2
expect_eq "locked_memory = 3M: the start fails (exit 1)" 1 "$RC"
check "the error names the file, line and key" \
	grep -q "$KT_CONF:8: \[daemon\] locked_memory: 3M is not a power of two" "$T/pow2.out"
check "no sanitizer report from the failed starts" \
	sh -c "! grep -qE '$KT_SANITIZER_RE' '$T/over.out' '$T/pow2.out'"
done_testing
