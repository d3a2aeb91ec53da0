#!/bin/bash
# keyturnd speaks systemd's notify protocol: READY=1 once the first fetch is
# done, RELOADING=1 with MONOTONIC_USEC and READY=1 again around a SIGHUP
# reload, STOPPING=1 on SIGTERM. A small datagram receiver plays systemd.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"

start_moto
aws_cli secretsmanager create-secret --name app/n --secret-string notify-value-0001 >/dev/null ||
	bail "moto setup"
"$PYTHON3" "$KT_LIB/notifysink.py" --socket "$T/notify" --out "$T/notify.log" --seconds 120 &
kt_pids+=("$!")
wait_until 10 test -S "$T/notify" || bail "the notify receiver did not start"
write_config <<EOF2
[secret:app/n]
allow_users = $(id -un)
EOF2
start_daemon NOTIFY_SOCKET="$T/notify" || bail "keyturnd did not start"

check "READY=1 once the first fetch is done" wait_until 15 grep -q '^READY=1' "$T/notify.log"
check "READY carries a STATUS" grep -q '^READY=1|STATUS=' "$T/notify.log"
a=$(kt_get app/n)
expect_eq "the secret was fetched before READY" "notify-value-0001" "$(jfield "$a" 'd["string"]')"

# ready_count_above N: more READY=1 lines than N now; counted at each
# call, so wait_until re-reads the log at every try.
ready_count_above() { [ "$(grep -c '^READY=1' "$T/notify.log")" -gt "$1" ]; }

before=$(grep -c '^READY=1' "$T/notify.log")
kill -HUP "$KT_PID"
check "SIGHUP sends RELOADING=1 with MONOTONIC_USEC" \
	wait_until 10 grep -qE '^RELOADING=1\|MONOTONIC_USEC=[0-9]+$' "$T/notify.log"
check "then READY=1 again" wait_until 10 ready_count_above "$before"
usec=$(sed -n 's/^RELOADING=1|MONOTONIC_USEC=//p' "$T/notify.log" | tail -n 1)
read -r up _ </proc/uptime
now=$((${up%.*} * 1000000))
check "MONOTONIC_USEC is the monotonic clock (within 60 s of now)" \
	test $((now - usec)) -lt 60000000 -a $((usec - now)) -lt 60000000

# A reload that fails keeps the old configuration and says READY again.
printf 'bogus = 1\n' >>"$KT_CONF"
before=$(grep -c '^READY=1' "$T/notify.log")
kill -HUP "$KT_PID"
check "a failed reload still ends with READY=1" \
	wait_until 10 ready_count_above "$before"
check "and the log names the file and line at fault" \
	wait_until 5 grep -qE "reload: $KT_CONF:[0-9]+: .*bogus" "$KT_LOG"
a=$(kt_get app/n)
expect_eq "the old configuration still serves" "notify-value-0001" "$(jfield "$a" 'd["string"]')"

stop_daemon
expect_eq "SIGTERM: exit status 0" 0 "$KT_STATUS"
check "SIGTERM sends STOPPING=1" grep -q '^STOPPING=1' "$T/notify.log"
check "no secret value in the notify messages or the log" \
	sh -c "! grep -q notify-value-0001 '$T/notify.log' '$KT_LOG'"
done_testing
