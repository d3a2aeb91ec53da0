#!/bin/bash
# Differential test of the SigV4 signer: random AWS JSON-protocol requests are
# signed by botocore and by keyturn (tests/tools/sigv4-sign) at the same time,
# and every Authorization header must come out the same.
. "$KT_SRCDIR/tests/lib/common.sh"

CASES="$KT_LIB/sigv4_cases.py"
SIGN="$KT_BUILDDIR/tests/tools/sigv4-sign"
N=${KT_SIGV4_CASES:-400}
SEED=${KT_SIGV4_SEED:-20150830}

[ -x "$SIGN" ] || bail "$SIGN is not built (make check builds it)"
"$PYTHON3" -c 'import botocore' 2>/dev/null || bail "python3 has no botocore"

diag "$N requests, seed $SEED (set KT_SIGV4_SEED to vary, KT_SIGV4_CASES to resize)"

run_signer() {
	"$SIGN" <"$T/input.jsonl" >"$T/actual.jsonl"
}

compare() {
	"$PYTHON3" "$CASES" compare --expected "$T/expected.jsonl" --actual "$T/actual.jsonl" "$@"
}

check "botocore signs $N random requests" \
	"$PYTHON3" "$CASES" gen --count "$N" --seed "$SEED" \
	--input "$T/input.jsonl" --expected "$T/expected.jsonl"
check "sigv4-sign signs all $N requests without error" run_signer
check "all $N requests sign identically to botocore" compare

# The same comparison per kind of request, so that a regression names its kind.
check "requests with a session token" compare --tag token
check "requests with a query string" compare --tag query
check "requests with a non-ASCII or escaped JSON body" compare --tag unicode-body
check "requests with an empty body" compare --tag empty-body
check "requests with repeated header names" compare --tag duplicate-header
check "requests with hop-by-hop headers left unsigned" compare --tag unsigned-header
check "requests with odd header case and spacing" compare --tag odd-headers
check "requests with a port in the endpoint" compare --tag port
check "requests with a path to normalize and encode" compare --tag path

done_testing
