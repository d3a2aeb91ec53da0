#!/bin/bash
# The README's first command, scripts/demo, from start to finish: it builds
# keyturn afresh (in $T, so the test build is left alone), runs keyturnd
# against moto, reads, rotates and reads a secret, logs in through PAM with
# the old and the new password, and cleans up. It must exit 0 and say what
# each step did.
. "$KT_SRCDIR/tests/lib/common.sh"

command -v pamtester >/dev/null || {
	echo "1..0 # SKIP the demo needs pamtester (scripts/install-deps installs it)"
	exit 0
}
start=$(date +%s)
KT_BUILD_DIR="$T/demo-build" "$KT_SRCDIR/scripts/demo" >"$T/demo.out" 2>&1
rc=$?
diag "scripts/demo took $(($(date +%s) - start)) s"
expect_eq "scripts/demo exits 0" 0 "$rc"
[ "$rc" -eq 0 ] || tail -n 30 "$T/demo.out" | sed 's/^/#   /'
check "it reads the secret through keyturnctl" grep -q '^==> keyturnctl get demo/db' "$T/demo.out"
check "it rotates as a rotation function does" grep -q 'AWSCURRENT moved from' "$T/demo.out"
check "it shows the rotated value served" grep -q 'the rotated value is served' "$T/demo.out"
check "PAM refuses the old password" grep -q 'pamtester: Authentication failure' "$T/demo.out"
check "PAM accepts the new password" grep -q 'pamtester: successfully authenticated' "$T/demo.out"
if [ "$(id -u)" -eq 0 ]; then
	check "keyturnctl rotate: keyturnd runs the four steps itself and serves the result" \
		sh -c "grep -q '^   finishSecret: ok' '$T/demo.out' && grep -q '^   served at once: ' '$T/demo.out'"
else
	skip_test "keyturnctl rotate is root's: the demo shows it when run as root"
fi
check "keyturnd's log shows both logins, the old refused and the new accepted" \
	sh -c "grep -q 'login: user=.*result=mismatch' '$T/demo.out' && grep -q 'login: user=.*result=match stage=AWSCURRENT' '$T/demo.out'"
check "it leaves no keyturnd or moto behind" sh -c "! pgrep -f '^$T/demo-build/keyturnd' >/dev/null"
check "it removes its temporary directory" sh -c "! ls -d /tmp/*.keyturn-demo 2>/dev/null | grep -q ."
done_testing
