#!/bin/bash
# Every C file follows .clang-format: `make format-check`, the same list and
# the same clang-format that `make format` uses. Skipped where there is no
# clang-format 14 (scripts/install-deps installs it): other versions lay out
# some lines differently, and a difference that only they see is no finding.

. "$KT_SRCDIR/tests/lib/common.sh"

cf=$(command -v clang-format-14 || command -v clang-format) || {
	echo "1..0 # SKIP clang-format is not installed (scripts/install-deps installs it)"
	exit 0
}
version=$("$cf" --version)
case $version in
*" version 14."*) ;;
*)
	echo "1..0 # SKIP $version: .clang-format is tuned for clang-format 14"
	exit 0
	;;
esac
diag "$version"

# A make of its own, not a part of the `make check` that runs this script:
# without the parent's MAKEFLAGS (a jobserver it cannot reach). format-check
# builds nothing.
if MAKEFLAGS='' make -s --no-print-directory -C "$KT_BUILDDIR" format-check \
	>"$T/format.out" 2>&1; then
	ok "every C file follows .clang-format"
	tail -n 1 "$T/format.out" | sed 's/^/# /'
else
	not_ok "every C file follows .clang-format (make format rewrites them)"
	sed 's/^/#   /' "$T/format.out"
fi

done_testing
