#!/bin/bash
# keyturnd against moto: get by name and ARN, by stage and VersionId, with a
# JSON key, binary values; list and status; the errors of bad requests; and
# no secret value in the daemon's debug log.
. "$KT_SRCDIR/tests/lib/common.sh"
. "$KT_LIB/daemon.sh"

start_moto
aws_cli secretsmanager create-secret --name app/db \
	--secret-string '{"username":"app","password":"db-pass-0001"}' >/dev/null || bail "moto setup"
head -c 64 /dev/urandom >"$T/bin"
aws_cli secretsmanager create-secret --name app/cert --secret-binary "fileb://$T/bin" >/dev/null
aws_cli secretsmanager create-secret --name app/plain --secret-string 'plain-value-0002' >/dev/null
arn=$(aws_cli secretsmanager describe-secret --secret-id app/db --query ARN --output text)

write_config <<EOF2
[secret:app/db]
allow_users = $(id -un)
[secret:db-by-arn]
id = $arn
key = password
allow_users = $(id -un)
[secret:app/cert]
allow_users = $(id -un)
[secret:app/plain]
allow_users = $(id -un)
[secret:missing/in/aws]
allow_users = $(id -un)
EOF2
start_daemon || bail "keyturnd did not start"
ok "keyturnd starts against moto and answers status"

a=$(kt_get app/db)
expect_eq "get by name returns the value" '{"username":"app","password":"db-pass-0001"}' "$(jfield "$a" 'd["string"]')"
expect_eq "get says AWSCURRENT" '["AWSCURRENT"]' "$(jfield "$a" 'd["stages"]')"
expect_eq "get reports the ARN" "$arn" "$(jfield "$a" 'd["arn"]')"
expect_eq "a fresh value is not stale" "false" "$(jfield "$a" 'd["stale"]')"
check "get carries fetched_at" test "$(jfield "$a" 'd["fetched_at"]')" -gt 0
v1=$(jfield "$a" 'd["version_id"]')

a=$(kt_get "$arn")
expect_eq "get by ARN finds the same secret" "app/db" "$(jfield "$a" 'd["name"]')"
a=$(kt_get db-by-arn)
expect_eq "a section with id = ARN and key = password serves that key" "db-pass-0001" "$(jfield "$a" 'd["string"]')"
a=$(kt_get app/db '"key":"username"')
expect_eq "get with a JSON key" "app" "$(jfield "$a" 'd["string"]')"
a=$(kt_get app/db '"key":"nope"')
expect_eq "a missing JSON key is not_found" "not_found" "$(jfield "$a" 'd["error"]')"
a=$(kt_get app/plain '"key":"x"')
expect_eq "a key of a value that is not JSON is bad_request" "bad_request" "$(jfield "$a" 'd["error"]')"

a=$(kt_get app/cert)
jfield "$a" 'd["binary"]' | base64 -d >"$T/bin.out"
check "a binary secret comes back byte for byte as base64" cmp "$T/bin" "$T/bin.out"

a=$(kt_get app/db "\"version_id\":\"$v1\"")
expect_eq "get by VersionId" "$v1" "$(jfield "$a" 'd["version_id"]')"
a=$(kt_get app/db '"stage":"AWSCURRENT"')
expect_eq "get by stage AWSCURRENT" "$v1" "$(jfield "$a" 'd["version_id"]')"
printf 'db-pass-0002' >"$T/v2"
v2=$(aws_cli secretsmanager put-secret-value --secret-id app/db --secret-string 'pending-value-0003' \
	--version-stages AWSPENDING --query VersionId --output text)
a=$(kt_get app/db '"stage":"AWSPENDING"')
expect_eq "get by stage AWSPENDING fetches that version" "pending-value-0003" "$(jfield "$a" 'd["string"]')"
a=$(kt_get app/db "\"version_id\":\"$v2\"")
expect_eq "get by the pending VersionId" "$v2" "$(jfield "$a" 'd["version_id"]')"
a=$(kt_get app/db)
expect_eq "AWSPENDING is never served as current" "$v1" "$(jfield "$a" 'd["version_id"]')"
a=$(kt_get app/db '"version_id":"00000000-0000-0000-0000-000000000000"')
expect_eq "an unknown VersionId is not_found" "not_found" "$(jfield "$a" 'd["error"]')"

# Uncached versions cost an AWS call each: a caller cannot drive a flood.
answers=""
for i in 1 2 3 4 5 6; do
	a=$(kt_get app/db "\"version_id\":\"00000000-0000-0000-0000-00000000000$i\"")
	answers="$answers $(jfield "$a" 'd.get("error","ok")')"
done
expect_eq "reads of uncached versions are rate-limited per secret" "throttled" "${answers##* }"
a=$(kt_get app/db "\"version_id\":\"$v2\"")
expect_eq "a cached version is still served while that limit holds" "$v2" "$(jfield "$a" 'd["version_id"]')"

a=$(kt_get missing/in/aws)
expect_eq "a configured secret that AWS does not have is not_found" "not_found" "$(jfield "$a" 'd["error"]')"
a=$(kt_get not/configured)
expect_eq "an unconfigured name is not_found" "not_found" "$(jfield "$a" 'd["error"]')"

a=$(kt_req '{"v":1,"op":"list"}')
expect_eq "list names every readable secret" "app/cert app/db app/plain db-by-arn missing/in/aws" \
	"$(jfield "$a" '" ".join(s["name"] for s in d["secrets"])')"
check "list carries no values" sh -c "! printf '%s' '$a' | grep -qE 'db-pass|plain-value|\"string\"|\"binary\"'"
a=$(kt_req '{"v":1,"op":"status"}')
expect_eq "status names the backend endpoint" "$MOTO_URL" "$(jfield "$a" 'd["backend"]["endpoint"]')"
expect_eq "status counts the configured secrets" "5" "$(jfield "$a" 'd["secrets"]["configured"]')"

# Bad requests are answered, and the connection stays usable.
out=$(kt_req '{"op":"get","secret":"app/db"}' '{"v":1,"op":"nope"}' '{"v":1,"op":"get"}' \
	'{"v":1,"op":"get","secret":"app/plain","stage":5}' '[1,2]' '{"v":1,"op":"get","secret":"app/plain"}')
expect_eq "bad requests get bad_request, in order, on one connection" \
	"bad_request bad_request bad_request bad_request bad_request ok" \
	"$(printf '%s\n' "$out" | "$PYTHON3" -c 'import json,sys; print(" ".join(json.loads(l).get("error","ok") for l in sys.stdin))')"

a=$(kt_req '{"v":1,"op":"refresh","secret":"app/db"}')
expect_eq "refresh answers the metadata" "$v1" "$(jfield "$a" 'd["version_id"]')"
a=$(kt_req '{"v":1,"op":"refresh","secret":"app/db"}')
expect_eq "a second refresh right away is throttled" "throttled" "$(jfield "$a" 'd["error"]')"

# After that check the daemon knows every stage of app/db: one it did not
# list is not_found at once, naming the stage, without asking AWS.
aws_calls() { jfield "$(kt_req '{"v":1,"op":"status"}')" 'd["backend"]["aws_requests"]'; }
n0=$(aws_calls)
a=$(kt_get app/db '"stage":"NOSUCHSTAGE"')
expect_eq "a stage the last DescribeSecret did not list is not_found, by name" \
	"not_found|app/db has no version labelled NOSUCHSTAGE" \
	"$(jfield "$a" 'd.get("error") + "|" + d.get("message", "")')"
expect_eq "and it cost no AWS call" "$n0" "$(aws_calls)"

check "no secret value in the daemon's debug log" \
	log_has_no_secrets db-pass-0001 plain-value-0002 pending-value-0003 "$(base64 <"$T/bin" | head -c 40)"
stop_daemon
expect_eq "SIGTERM stops keyturnd cleanly" 0 "$KT_STATUS"
check "the socket is removed on stop" test ! -e "$KT_SOCK"
check "no sanitizer report from keyturnd" sh -c "! grep -qE 'AddressSanitizer|LeakSanitizer|runtime error' '$KT_LOG'"
done_testing
