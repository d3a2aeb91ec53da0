#!/bin/bash
# The libFuzzer targets of tests/fuzz, briefly: scripts/fuzz 5 builds them
# with clang (in $T, so no other build is touched) and runs each for five
# seconds from its seed corpus. It must end with "N targets, 0 crashes" and
# exit 0. Skipped, saying why, where clang or libFuzzer is missing.
. "$KT_SRCDIR/tests/lib/common.sh"

command -v clang >/dev/null || {
	echo "1..0 # SKIP clang is not installed (scripts/install-deps: clang libfuzzer-14-dev)"
	exit 0
}
printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
	'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }' \
	>"$T/probe.c"
clang -fsanitize=fuzzer "$T/probe.c" -o "$T/probe" >/dev/null 2>&1 || {
	echo "1..0 # SKIP clang cannot link libFuzzer targets (Debian: libfuzzer-14-dev)"
	exit 0
}

seeds_before=$(find "$KT_SRCDIR/tests/fuzz/corpus" -type f | wc -l)
start=$(date +%s)
KT_FUZZ_BUILDDIR="${KT_FUZZ_BUILDDIR:-$T/fuzz-build}" "$KT_SRCDIR/scripts/fuzz" 5 >"$T/fuzz.out" 2>&1
rc=$?
diag "scripts/fuzz 5 took $(($(date +%s) - start)) s"
sed 's/^/#   /' "$T/fuzz.out"
last=$(tail -n 1 "$T/fuzz.out")
expect_eq "scripts/fuzz 5 exits 0" 0 "$rc"
check "its last line counts the targets and the crashes" \
	sh -c "printf '%s\n' \"\$1\" | grep -Eq '^[0-9]+ targets, [0-9]+ crashes$'" _ "$last"
check "every target ran: 8 targets" sh -c "printf '%s\n' \"\$1\" | grep -q '^8 targets, '" _ "$last"
check "no crash: the last line says 0 crashes" sh -c "printf '%s\n' \"\$1\" | grep -q ', 0 crashes$'" _ "$last"
check "each target reports its executions per second" \
	test "$(grep -cE '^[a-z]+ +[0-9]+ exec/s' "$T/fuzz.out")" -eq 8
check "the events target (rotation-event parser) ran from its seeds" \
	grep -qE '^events +[0-9]+ exec/s' "$T/fuzz.out"
check "the agent target (the HTTP door's checks and bodies) ran from its seeds" \
	grep -qE '^agent +[0-9]+ exec/s' "$T/fuzz.out"
check "the sched target (rotation schedules) ran from its seeds" \
	grep -qE '^sched +[0-9]+ exec/s' "$T/fuzz.out"
check "the seed corpus in the tree is left as it was ($seeds_before inputs)" \
	test "$(find "$KT_SRCDIR/tests/fuzz/corpus" -type f | wc -l)" -eq "$seeds_before"
done_testing
