#!/bin/bash
# sidecar/'s layering, on the objects this build made (scripts/check-layers):
# no two of its C files call each other in a loop, and no .c file of it is over
# 600 lines (STYLE.md, "Layout and size"). On failure the script's findings,
# each circle with the symbols on its edges, are shown as TAP comments.

. "$KT_SRCDIR/tests/lib/common.sh"

LAYERS="$KT_SRCDIR/scripts/check-layers"
command -v nm >/dev/null || bail "nm is not installed (binutils)"

# layers DESCRIPTION CHECK: one test from check-layers --check CHECK, with its
# whole output as comments when it fails.
layers() {
	if "$PYTHON3" "$LAYERS" --srcdir "$KT_SRCDIR" --check "$2" "$KT_BUILDDIR" \
		>"$T/$2.out" 2>&1; then
		ok "$1"
		tail -n 1 "$T/$2.out" | sed 's/^/# /'
	else
		not_ok "$1"
		sed 's/^/#   /' "$T/$2.out"
	fi
}

layers "no call circles among sidecar/ files" circles
layers "no sidecar/ .c file over 600 lines" lines

done_testing
