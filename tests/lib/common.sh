# Shared helpers for keyturn's system tests: TAP output, a scratch directory, moto
# on a free loopback port, kt-aws runs checked for a clean exit, and cleanup of
# everything started, on any exit. Source it:  . "$KT_SRCDIR/tests/lib/common.sh"

set -u

: "${KT_SRCDIR:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
: "${KT_BUILDDIR:=$KT_SRCDIR}"
: "${PYTHON3:=python3}"
: "${KT_TESTDATA:=$KT_SRCDIR/../shared/testdata}"

# pyenv's python3 is a shim that costs most of a second per start; resolve
# the real interpreter once, for moto, the helpers and the AWS CLI alike.
PYTHON3=$("$PYTHON3" -c 'import sys; print(sys.executable)') ||
	{ echo "Bail out! no working python3"; exit 1; }

KT_AWS="$KT_BUILDDIR/tests/tools/kt-aws"
KT_LIB="$KT_SRCDIR/tests/lib"

# Scratch space, removed at exit.
T=$(mktemp -d --suffix=.kt-test)
kt_pids=()
tap_n=0
tap_failed=0

# kt_cleanup: stops every process in kt_pids and removes $T.
kt_cleanup() {
	local p
	for p in "${kt_pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${kt_pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	# KT_KEEP_TMP=1 keeps the scratch directory (logs, configs) for a look.
	if [ "${KT_KEEP_TMP:-0}" = 1 ]; then
		echo "# kept $T" >&2
	else
		rm -rf "$T"
	fi
}
trap kt_cleanup EXIT
trap 'exit 130' INT TERM

# Keeps AWS tools away from any real account or host configuration.
export AWS_ACCESS_KEY_ID=AKIDKEYTURNTEST
export AWS_SECRET_ACCESS_KEY=keyturn-test-secret-key
export AWS_REGION=us-east-1
export AWS_CONFIG_FILE=$T/aws-config
export AWS_SHARED_CREDENTIALS_FILE=$T/aws-credentials
export AWS_EC2_METADATA_DISABLED=true
export NO_PROXY='*'
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_DEFAULT_REGION AWS_ENDPOINT_URL \
	AWS_ENDPOINT_URL_SECRETS_MANAGER AWS_CA_BUNDLE AWS_WEB_IDENTITY_TOKEN_FILE \
	AWS_ROLE_ARN AWS_CONTAINER_CREDENTIALS_RELATIVE_URI \
	AWS_CONTAINER_CREDENTIALS_FULL_URI AWS_MAX_ATTEMPTS http_proxy https_proxy \
	HTTP_PROXY HTTPS_PROXY ALL_PROXY all_proxy

# --- TAP ---------------------------------------------------------------------
# tap_plan N: the TAP plan line, for a script that knows its count ahead.
tap_plan() { echo "1..$1"; }

# ok DESCRIPTION: one passing test.
ok() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n - $*"
}

# not_ok DESCRIPTION: one failing test; done_testing will then fail.
not_ok() {
	tap_n=$((tap_n + 1))
	tap_failed=$((tap_failed + 1))
	echo "not ok $tap_n - $*"
}

# skip_test REASON: one skipped test.
skip_test() {
	tap_n=$((tap_n + 1))
	echo "ok $tap_n # SKIP $*"
}

# diag LINE...: TAP comment lines.
diag() { printf '# %s\n' "$@"; }

# check DESCRIPTION COMMAND...: one TAP line from the command's exit status.
check() {
	local what=$1
	shift
	if "$@" >"$T/check.out" 2>&1; then
		ok "$what"
	else
		not_ok "$what"
		sed 's/^/#   /' "$T/check.out" | head -n 40
	fi
}

# expect_eq DESCRIPTION EXPECTED ACTUAL
expect_eq() {
	if [ "$2" = "$3" ]; then
		ok "$1"
	else
		not_ok "$1"
		diag "expected: $2" "actual:   $3"
	fi
}

# bail REASON: the whole script cannot go on (a service did not start).
bail() {
	echo "Bail out! $*"
	exit 1
}

# --- processes -----------------------------------------------------------------
# free_port: prints a loopback port that is free right now.
free_port() { "$PYTHON3" "$KT_LIB/freeport.py"; }

# wait_until SECONDS COMMAND...: runs COMMAND every 0.1 s until it succeeds;
# fails when it has not succeeded within SECONDS.
wait_until() {
	local limit=$1 i
	shift
	for ((i = 0; i < limit * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# port_open PORT: succeeds when something listens on 127.0.0.1:PORT.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_port PORT [SECONDS]: waits until something listens on 127.0.0.1:PORT.
wait_port() { wait_until "${2:-30}" port_open "$1"; }

# start_moto [ENV=VALUE...]: starts moto on a free port; sets MOTO_PORT,
# MOTO_URL and MOTO_PID. Extra arguments are environment settings for it.
start_moto() {
	MOTO_PORT=$(free_port)
	env "$@" "$PYTHON3" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" \
		>"$T/moto-$MOTO_PORT.log" 2>&1 &
	MOTO_PID=$!
	kt_pids+=("$MOTO_PID")
	MOTO_URL="http://127.0.0.1:$MOTO_PORT"
	wait_port "$MOTO_PORT" 60 || bail "moto did not start on port $MOTO_PORT"
}

# aws_cli ARGS...: the real AWS CLI against moto.
aws_cli() {
	"$PYTHON3" -m awscli --region us-east-1 --endpoint-url "$MOTO_URL" --output json "$@"
}

# rotate_secret SECRET_ID NEW_STRING: plays a rotation Lambda's steps against
# moto (MOTO_URL): the new value as AWSPENDING, then AWSCURRENT moved to it
# from the version that had it. Prints the new VersionId.
rotate_secret() {
	"$PYTHON3" - "$MOTO_URL" "$1" "$2" <<'PY'
import sys, boto3
sm = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=sys.argv[1])
sid, value = sys.argv[2], sys.argv[3]
cur = [v for v, s in sm.describe_secret(SecretId=sid)["VersionIdsToStages"].items() if "AWSCURRENT" in s][0]
new = sm.put_secret_value(SecretId=sid, SecretString=value, VersionStages=["AWSPENDING"])["VersionId"]
sm.update_secret_version_stage(SecretId=sid, VersionStage="AWSCURRENT", MoveToVersionId=new,
                               RemoveFromVersionId=cur)
print(new)
PY
}

# kt_aws ARGS...: the keyturn AWS client against moto, quick retries.
kt_aws() {
	"$KT_AWS" --endpoint "$MOTO_URL" --retry-base-ms 10 "$@"
}

# need_built PROGRAM: skips the whole script when PROGRAM has not been built.
need_built() {
	[ -x "$1" ] && return 0
	echo "1..0 # SKIP $1 is not built"
	exit 0
}

# What a sanitizer (ASan, LSan, UBSan) writes to stderr when it finds a fault.
KT_SANITIZER_RE='AddressSanitizer|LeakSanitizer|runtime error'

# Options that kt passes ahead of each call's own; a script sets its own
# retry pace and timeouts here.
KT_AWS_OPTS=(--retry-base-ms 10)

# kt NAME URL ARGS...: kt-aws against URL (- for none: the SQS calls take
# theirs from the queue URL) with KT_AWS_OPTS. Leaves $T/NAME.out,
# $T/NAME.err and KT_RC, and reports as a test whether it ended normally:
# exit 0 or 1 (no signal), no sanitizer report.
kt() {
	local name=$1 url=$2 ep
	shift 2
	ep=(--endpoint "$url")
	[ "$url" = - ] && ep=()
	"$KT_AWS" "${ep[@]}" "${KT_AWS_OPTS[@]}" "$@" >"$T/$name.out" 2>"$T/$name.err"
	KT_RC=$?
	if [ "$KT_RC" -le 1 ] && ! grep -qE "$KT_SANITIZER_RE" "$T/$name.err"; then
		ok "$name: kt-aws ended cleanly (exit $KT_RC)"
	else
		not_ok "$name: kt-aws ended cleanly (exit $KT_RC)"
		sed 's/^/#   /' "$T/$name.err" | head -n 40
	fi
}

# outcome NAME: "ok" after kt NAME succeeded, else the error code kt-aws printed.
outcome() {
	if [ "$KT_RC" -eq 0 ]; then
		echo ok
	else
		json_get "$T/$1.out" 'd["error"]' 2>/dev/null || echo "(no error object)"
	fi
}

# kt_attempts NAME: how many attempts kt-aws counted in kt NAME (from NAME.err).
kt_attempts() { sed -n 's/^kt-aws: attempts=//p' "$T/$1.err" | tail -n 1; }

# no_sanitizer_report DESCRIPTION: one test, that no $T/*.err holds a
# sanitizer report; shows the start of the reports when some does.
no_sanitizer_report() {
	if grep -l -E "$KT_SANITIZER_RE" "$T"/*.err >/dev/null 2>&1; then
		not_ok "$1"
		grep -h -A5 -E "$KT_SANITIZER_RE" "$T"/*.err | head -40 | sed 's/^/# /'
	else
		ok "$1"
	fi
}

# json_get FILE EXPR: prints a value from a JSON file (EXPR is Python on `d`).
json_get() {
	"$PYTHON3" -c 'import json,sys; d=json.load(open(sys.argv[1])); v=eval(sys.argv[2]); print(v if not isinstance(v,(dict,list,bool)) else json.dumps(v))' "$1" "$2"
}

# done_testing: closes the plan; exits non-zero when a test failed.
done_testing() {
	echo "1..$tap_n"
	[ "$tap_failed" -eq 0 ]
}
