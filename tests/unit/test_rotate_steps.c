/* Unit tests of the four rotation steps (rotate_steps.c's kt_rot_run)
 * against scripted Secrets Manager answers (tests/unit/scripted_client.c),
 * with no network: the calls made and their bodies, the outcomes, and the
 * set/test commands run by the real privileged helper, forked here. */
#include "config.h"

#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/kt_json.h"
#include "kt_tmp.h"
#include "scripted_client.h"
#include "sidecar/privhelper.h"
#include "sidecar/rotate_int.h"

#define SECRET_ID "app/db"
#define ARN "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf"
#define TOKEN "3f6c1a9e-7b2d-4e8f-9a01-b2c3d4e5f607"
#define OLD_ID "a1b2c3d4-0000-4000-8000-000000000001"
#define PREV_ID "a1b2c3d4-0000-4000-8000-000000000000"
#define OTHER_ID "c0ffee00-1111-4222-8333-444455556666"
#define OLD_PW "oldSecret-4a7Q"
/* The new password: quotes, a backslash, a slash and a space, so that its
 * JSON escaping and the exact bytes on a command's stdin are both tested;
 * no digit, as the policy below excludes numbers. */
#define NEW_PW "Rnd/x\"q!Zpw\\Lwk Tt"
#define OLD_JSON "{\"username\":\"app\",\"password\":\"" OLD_PW "\",\"host\":\"db\"}"

/* DescribeSecret answers: V(id, stages) is one VersionIdsToStages member. */
#define DESCRIBE(map) \
	"{\"ARN\":\"" ARN "\",\"Name\":\"" SECRET_ID "\",\"VersionIdsToStages\":{" map "}}"
#define V(id, stages) "\"" id "\":[" stages "]"
#define CUR "\"AWSCURRENT\""
#define PEND "\"AWSPENDING\""
#define PREV "\"AWSPREVIOUS\""
#define PUT_OK                                                                   \
	"{\"ARN\":\"" ARN "\",\"Name\":\"" SECRET_ID "\",\"VersionId\":\"" TOKEN \
	"\",\"VersionStages\":[\"AWSPENDING\"]}"
#define UPDATE_OK "{\"ARN\":\"" ARN "\",\"Name\":\"" SECRET_ID "\"}"
#define ERR(type, msg) "ERR:{\"__type\":\"" type "\",\"message\":\"" msg "\"}"

static struct aws_client *fake = (struct aws_client *)0x1;

/* Answers made at run time (JSON inside JSON), freed by the teardown. */
static char *made[16];
static size_t nmade;

/* The helper's scratch directory, configuration and socket (command tests). */
static char dir[256];
static char cmd[5][640];
static char *argv_set0[4], *argv_test0[4], *argv_set1[4], *argv_test1[4], *argv_slow[4];
static struct kt_rotate_cfg rot[3];
static struct kt_config cfg;
static int helper_fd = -1;
static pid_t helper_pid = -1;

struct seen {
	enum kt_rot_step s[8];
	size_t n;
};

static void record(void *ctx, enum kt_rot_step next)
{
	struct seen *p = ctx;

	assert_true(p->n < 8);
	p->s[p->n++] = next;
}

static const char *keep(char *s)
{
	assert_non_null(s);
	assert_true(nmade < sizeof(made) / sizeof(made[0]));
	made[nmade++] = s;
	return s;
}

static const char *dump(struct json_object *o)
{
	char *s = kt_json_dump(o, NULL);

	json_object_put(o);
	return keep(s);
}

/* A GetSecretValue answer: version with one stage, the string s or (s
 * NULL) a binary value. */
static const char *value_answer(const char *version, const char *stage, const char *s)
{
	struct json_object *o = json_object_new_object(), *st = json_object_new_array();

	json_object_object_add(o, "ARN", json_object_new_string(ARN));
	json_object_object_add(o, "Name", json_object_new_string(SECRET_ID));
	json_object_object_add(o, "VersionId", json_object_new_string(version));
	json_object_array_add(st, json_object_new_string(stage));
	json_object_object_add(o, "VersionStages", st);
	if (s != NULL)
		json_object_object_add(o, "SecretString", json_object_new_string(s));
	else
		json_object_object_add(o, "SecretBinary", json_object_new_string("AP8A"));
	return dump(o);
}

/* The JSON value with pw as its password member. */
static const char *json_value(const char *pw)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "username", json_object_new_string("app"));
	json_object_object_add(o, "password", json_object_new_string(pw));
	json_object_object_add(o, "host", json_object_new_string("db"));
	return dump(o);
}

static const char *random_answer(void)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "RandomPassword", json_object_new_string(NEW_PW));
	return dump(o);
}

static int teardown(void **state)
{
	for (size_t i = 0; i < nmade; i++)
		free(made[i]);
	nmade = 0;
	return script_reset(state);
}

static void job_init(struct kt_rot_job *j, const char *key, struct seen *seen)
{
	memset(j, 0, sizeof(*j));
	memset(seen, 0, sizeof(*seen));
	j->name = "db";
	j->secret_id = SECRET_ID;
	j->key = key;
	j->policy.length = 24;
	j->policy.exclude_chars = "@'`";
	j->policy.exclude_numbers = true;
	j->policy.include_space = true;
	j->policy.require_each_included_type = true;
	j->rotate_idx = -1;
	memcpy(j->token, TOKEN, sizeof(TOKEN));
	j->from = KT_ROT_CREATE;
	j->progress = record;
	j->progress_ctx = seen;
}

/* --- checking what was sent and what came out ---------------------------------- */

static void str_is(struct json_object *o, const char *key, const char *want)
{
	const char *got = kt_json_str(o, key);

	if (want == NULL) {
		if (got != NULL)
			fail_msg("%s is '%s', not absent", key, got);
		return;
	}
	if (got == NULL)
		fail_msg("%s is absent, not '%s'", key, want);
	assert_string_equal(got, want);
}

static void bool_is(struct json_object *o, const char *key, bool want)
{
	bool got;

	if (!kt_json_bool(o, key, &got))
		fail_msg("%s is absent or not a boolean", key);
	assert_int_equal(got, want);
}

/* Call i's body, after checking it went to op for our SecretId. */
static struct json_object *call(size_t i, const char *op)
{
	struct json_object *rq;
	char want[96];

	assert_true(i < nrequests);
	snprintf(want, sizeof(want), "secretsmanager.%s", op);
	assert_string_equal(targets[i], want);
	rq = kt_json_parse(requests[i], strlen(requests[i]));
	assert_non_null(rq);
	if (strcmp(op, "GetRandomPassword") != 0)
		str_is(rq, "SecretId", SECRET_ID);
	return rq;
}

static void check_describe(size_t i)
{
	json_object_put(call(i, "DescribeSecret"));
}

static void check_get(size_t i, const char *version, const char *stage)
{
	struct json_object *rq = call(i, "GetSecretValue");

	str_is(rq, "VersionId", version);
	if (stage != NULL || kt_json_str(rq, "VersionStage") != NULL)
		str_is(rq, "VersionStage", stage != NULL ? stage : "AWSCURRENT");
	json_object_put(rq);
}

static void check_random(size_t i)
{
	struct json_object *rq = call(i, "GetRandomPassword");
	long long len = 0;

	assert_true(kt_json_int64(rq, "PasswordLength", &len));
	assert_int_equal(len, 24);
	str_is(rq, "ExcludeCharacters", "@'`");
	bool_is(rq, "ExcludeNumbers", true);
	bool_is(rq, "ExcludePunctuation", false);
	bool_is(rq, "ExcludeUppercase", false);
	bool_is(rq, "ExcludeLowercase", false);
	bool_is(rq, "IncludeSpace", true);
	bool_is(rq, "RequireEachIncludedType", true);
	json_object_put(rq);
}

/* The PutSecretValue of call i: the token, AWSPENDING alone, a string;
 * its SecretString in want (NUL-terminated, at most wantlen). */
static void check_put(size_t i, char *want, size_t wantlen)
{
	struct json_object *rq = call(i, "PutSecretValue"), *st, *v;

	str_is(rq, "ClientRequestToken", TOKEN);
	assert_true(json_object_object_get_ex(rq, "VersionStages", &st));
	assert_true(json_object_is_type(st, json_type_array));
	assert_int_equal(json_object_array_length(st), 1);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(st, 0)), "AWSPENDING");
	assert_false(json_object_object_get_ex(rq, "SecretBinary", NULL));
	assert_true(json_object_object_get_ex(rq, "SecretString", &v));
	assert_true(json_object_is_type(v, json_type_string));
	assert_true((size_t)json_object_get_string_len(v) < wantlen);
	memcpy(want, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
	json_object_put(rq);
}

static void check_update(size_t i, const char *stage, const char *move_to, const char *remove_from)
{
	struct json_object *rq = call(i, "UpdateSecretVersionStage");

	str_is(rq, "VersionStage", stage);
	str_is(rq, "MoveToVersionId", move_to);
	str_is(rq, "RemoveFromVersionId", remove_from);
	json_object_put(rq);
}

/* No call i.. went to op. */
static void no_call_from(size_t i, const char *op)
{
	char want[96];

	snprintf(want, sizeof(want), "secretsmanager.%s", op);
	for (; i < nrequests; i++) {
		if (strcmp(targets[i], want) == 0)
			fail_msg("call %zu is %s", i, op);
	}
}

/* Neither password, nor a piece of one, in the message or a detail. */
static void no_value(const struct kt_rot_job *j)
{
	static const char *const values[] = { NEW_PW, OLD_PW, "Zpw", "oldSecret" };

	for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v++) {
		if (strstr(j->message, values[v]) != NULL)
			fail_msg("the message holds a value: %s", j->message);
		for (int s = 0; s < KT_ROT_NSTEPS; s++) {
			if (strstr(j->detail[s], values[v]) != NULL)
				fail_msg("%s's detail holds a value: %s", kt_rot_step_name(s),
					 j->detail[s]);
		}
	}
}

static void results_are(const struct kt_rot_job *j, const char *c, const char *s, const char *t,
			const char *f)
{
	assert_string_equal(j->result[KT_ROT_CREATE], c);
	assert_string_equal(j->result[KT_ROT_SET], s);
	assert_string_equal(j->result[KT_ROT_TEST], t);
	assert_string_equal(j->result[KT_ROT_FINISH], f);
}

static void has(const char *text, const char *part)
{
	if (strstr(text, part) == NULL)
		fail_msg("'%s' lacks '%s'", text, part);
}

static void ends(const char *text, const char *tail)
{
	size_t n = strlen(text), m = strlen(tail);

	if (n < m || strcmp(text + n - m, tail) != 0)
		fail_msg("'%s' does not end with '%s'", text, tail);
}

static void seen_are(const struct seen *seen, size_t n, ...)
{
	va_list ap;

	assert_int_equal(seen->n, n);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(seen->s[i], va_arg(ap, int));
	va_end(ap);
}

/* --- the steps without commands --------------------------------------------------- */

static void test_fresh_json(void **state)
{
	struct kt_rot_job j;
	struct seen seen;
	struct json_object *v;
	char put[512];

	(void)state;
	script(7, DESCRIBE(V(OLD_ID, CUR) "," V(PREV_ID, PREV)),
	       value_answer(OLD_ID, "AWSCURRENT", OLD_JSON), random_answer(), PUT_OK,
	       value_answer(TOKEN, "AWSPENDING", json_value(NEW_PW)), UPDATE_OK, UPDATE_OK);
	job_init(&j, "password", &seen);
	kt_rot_run(fake, -1, -1, &j);

	assert_int_equal(nrequests, 7);
	check_describe(0);
	check_get(1, OLD_ID, NULL);
	check_random(2);
	check_put(3, put, sizeof(put));
	v = kt_json_parse(put, strlen(put));
	assert_non_null(v);
	assert_true(json_object_is_type(v, json_type_object));
	assert_int_equal(json_object_object_length(v), 3);
	str_is(v, "username", "app");
	str_is(v, "host", "db");
	str_is(v, "password", NEW_PW);
	json_object_put(v);
	check_get(4, TOKEN, "AWSPENDING");
	check_update(5, "AWSCURRENT", TOKEN, OLD_ID);
	check_update(6, "AWSPENDING", NULL, TOKEN);

	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	assert_int_equal(j.step, KT_ROT_FINISH);
	results_are(&j, "ok", "skipped", "skipped", "ok");
	has(j.detail[KT_ROT_CREATE], TOKEN);
	has(j.detail[KT_ROT_SET], "no set_command");
	has(j.detail[KT_ROT_TEST], "no test_command");
	has(j.detail[KT_ROT_FINISH], OLD_ID);
	assert_string_equal(j.version, TOKEN);
	assert_string_equal(j.previous, OLD_ID);
	assert_string_equal(j.message, "");
	seen_are(&seen, 3, KT_ROT_SET, KT_ROT_TEST, KT_ROT_FINISH);
	no_value(&j);
}

static void test_fresh_whole_value(void **state)
{
	struct kt_rot_job j;
	struct seen seen;
	char put[512];

	(void)state;
	script(7, DESCRIBE(V(OLD_ID, CUR)), value_answer(OLD_ID, "AWSCURRENT", OLD_PW),
	       random_answer(), PUT_OK, value_answer(TOKEN, "AWSPENDING", NEW_PW), UPDATE_OK,
	       UPDATE_OK);
	job_init(&j, NULL, &seen);
	kt_rot_run(fake, -1, -1, &j);

	assert_int_equal(nrequests, 7);
	check_get(1, OLD_ID, NULL);
	check_random(2);
	check_put(3, put, sizeof(put));
	assert_int_equal(strlen(put), strlen(NEW_PW));
	assert_string_equal(put, NEW_PW);
	check_get(4, TOKEN, "AWSPENDING");
	check_update(5, "AWSCURRENT", TOKEN, OLD_ID);
	check_update(6, "AWSPENDING", NULL, TOKEN);
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	results_are(&j, "ok", "skipped", "skipped", "ok");
	no_value(&j);
}

/* The token's version holds AWSPENDING already: a rotation resumed after
 * createSecret; no second password, no second version. */
static void test_resumed_pending(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	script(4, DESCRIBE(V(OLD_ID, CUR) "," V(TOKEN, PEND)),
	       value_answer(TOKEN, "AWSPENDING", json_value(NEW_PW)), UPDATE_OK, UPDATE_OK);
	job_init(&j, "password", &seen);
	kt_rot_run(fake, -1, -1, &j);

	assert_int_equal(nrequests, 4);
	check_describe(0);
	check_get(1, TOKEN, "AWSPENDING");
	check_update(2, "AWSCURRENT", TOKEN, OLD_ID);
	check_update(3, "AWSPENDING", NULL, TOKEN);
	no_call_from(0, "GetRandomPassword");
	no_call_from(0, "PutSecretValue");
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	results_are(&j, "skipped", "skipped", "skipped", "ok");
	has(j.detail[KT_ROT_CREATE], "exists already");
	assert_string_equal(j.previous, OLD_ID);
	no_value(&j);
}

/* The token's version is AWSCURRENT: finished by an earlier run. */
static void test_already_current(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	script(1, DESCRIBE(V(TOKEN, CUR) "," V(OLD_ID, PREV)));
	job_init(&j, "password", &seen);
	j.from = KT_ROT_FINISH;
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(nrequests, 1);
	check_describe(0);
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	assert_int_equal(j.step, KT_ROT_FINISH);
	results_are(&j, "skipped", "skipped", "skipped", "skipped");
	has(j.detail[KT_ROT_FINISH], "AWSCURRENT already");
	assert_string_equal(j.version, TOKEN);
	assert_int_equal(seen.n, 0);
	no_value(&j);

	/* AWSPENDING left on it too: taken off, AWSCURRENT not moved again. */
	script_reset(state);
	script(2, DESCRIBE(V(TOKEN, CUR "," PEND) "," V(OLD_ID, PREV)), UPDATE_OK);
	job_init(&j, "password", &seen);
	j.from = KT_ROT_FINISH;
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(nrequests, 2);
	check_update(1, "AWSPENDING", NULL, TOKEN);
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
}

/* Another version holds AWSPENDING: another rotator; nothing is written. */
static void test_busy(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	script(1, DESCRIBE(V(OLD_ID, CUR) "," V(OTHER_ID, PEND)));
	job_init(&j, "password", &seen);
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(nrequests, 1);
	check_describe(0);
	assert_int_equal(j.outcome, KT_ROT_BUSY);
	assert_int_equal(j.step, KT_ROT_CREATE);
	results_are(&j, "failed", "not_run", "not_run", "not_run");
	has(j.message, "db: createSecret failed: ");
	has(j.message, OTHER_ID);
	has(j.detail[KT_ROT_CREATE], "AWSPENDING");
	assert_int_equal(seen.n, 0);
	/* Nothing of this host's was made: its token is not kept. */
	assert_true(j.drop_token);
	no_value(&j);
}

/* The token's version lost AWSPENDING (taken away while this host was
 * down): the rotation is abandoned, and its token dropped. */
static void test_abandoned(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	script(1, DESCRIBE(V(OLD_ID, CUR) "," V(TOKEN, PREV)));
	job_init(&j, "password", &seen);
	j.from = KT_ROT_TEST;
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(nrequests, 1);
	assert_int_equal(j.outcome, KT_ROT_FAILED);
	assert_int_equal(j.step, KT_ROT_CREATE);
	has(j.message, "lost its AWSPENDING label");
	assert_true(j.drop_token);
	no_value(&j);
}

/* AWSPENDING left on the AWSCURRENT version (a stale label): not busy. */
static void test_stale_pending_on_current(void **state)
{
	struct kt_rot_job j;
	struct seen seen;
	char put[512];

	(void)state;
	script(7, DESCRIBE(V(OLD_ID, CUR "," PEND)), value_answer(OLD_ID, "AWSCURRENT", OLD_JSON),
	       random_answer(), PUT_OK, value_answer(TOKEN, "AWSPENDING", json_value(NEW_PW)),
	       UPDATE_OK, UPDATE_OK);
	job_init(&j, "password", &seen);
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(nrequests, 7);
	check_put(3, put, sizeof(put));
	check_update(5, "AWSCURRENT", TOKEN, OLD_ID);
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	assert_string_equal(j.previous, OLD_ID);
	no_value(&j);
}

/* --- AWS errors -------------------------------------------------------------------- */

/* Runs a fresh rotation whose call at index bad answers err: the outcome,
 * the step, and no call after it. */
static void run_failing(size_t bad, const char *err, enum kt_rot_outcome want,
			enum kt_rot_step step, struct kt_rot_job *j)
{
	const char *a[7] = { DESCRIBE(V(OLD_ID, CUR)),
			     value_answer(OLD_ID, "AWSCURRENT", OLD_JSON),
			     random_answer(),
			     PUT_OK,
			     value_answer(TOKEN, "AWSPENDING", json_value(NEW_PW)),
			     UPDATE_OK,
			     UPDATE_OK };
	struct seen seen;

	a[bad] = err;
	script(bad + 1, a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
	job_init(j, "password", &seen);
	kt_rot_run(fake, -1, -1, j);
	assert_int_equal(nrequests, bad + 1);
	assert_int_equal(j->outcome, want);
	assert_int_equal(j->step, step);
	assert_string_equal(j->result[step], "failed");
	for (int s = step + 1; s < KT_ROT_NSTEPS; s++)
		assert_string_equal(j->result[s], "not_run");
	no_value(j);
}

static void test_put_denied(void **state)
{
	struct kt_rot_job j;

	(void)state;
	run_failing(
		3,
		ERR("AccessDeniedException",
		    "User: arn:aws:sts::123456789012:assumed-role/host/i-0abc is not authorized"),
		KT_ROT_DENIED, KT_ROT_CREATE, &j);
	check_put(3, (char[512]){ 0 }, 512);
	has(j.message, "db: createSecret failed: ");
	has(j.message, "PutSecretValue");
	has(j.message, "may not write " SECRET_ID);
	has(j.detail[KT_ROT_CREATE], "PutSecretValue");
}

static void test_put_throttled(void **state)
{
	struct kt_rot_job j;

	(void)state;
	run_failing(3, ERR("ThrottlingException", "Rate exceeded"), KT_ROT_UNREACHABLE,
		    KT_ROT_CREATE, &j);
	has(j.message, "PutSecretValue");
	has(j.message, "ThrottlingException");
}

static void test_describe_server_error(void **state)
{
	struct kt_rot_job j;

	(void)state;
	run_failing(0, ERR("InternalServiceError", "try again"), KT_ROT_UNREACHABLE, KT_ROT_CREATE,
		    &j);
	has(j.message, "DescribeSecret");
}

/* A call AWS refuses for another reason: failed, not denied. */
static void test_random_refused(void **state)
{
	struct kt_rot_job j;

	(void)state;
	run_failing(2, ERR("InvalidParameterException", "PasswordLength out of range"),
		    KT_ROT_FAILED, KT_ROT_CREATE, &j);
	has(j.message, "GetRandomPassword");
}

/* finishSecret refused: AWSCURRENT untouched, the failure at finishSecret. */
static void test_finish_denied(void **state)
{
	struct kt_rot_job j;

	(void)state;
	run_failing(5, ERR("AccessDeniedException", "not authorized"), KT_ROT_DENIED, KT_ROT_FINISH,
		    &j);
	results_are(&j, "ok", "skipped", "skipped", "failed");
	check_update(5, "AWSCURRENT", TOKEN, OLD_ID);
	has(j.message, "db: finishSecret failed: ");
	has(j.message, "UpdateSecretVersionStage");
}

/* AWSPENDING could not be taken off: rotated all the same, and said. */
static void test_pending_label_stays(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	script(7, DESCRIBE(V(OLD_ID, CUR)), value_answer(OLD_ID, "AWSCURRENT", OLD_JSON),
	       random_answer(), PUT_OK, value_answer(TOKEN, "AWSPENDING", json_value(NEW_PW)),
	       UPDATE_OK, ERR("InternalServiceError", "try again"));
	job_init(&j, "password", &seen);
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(nrequests, 7);
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	results_are(&j, "ok", "skipped", "skipped", "ok");
	has(j.detail[KT_ROT_FINISH], "AWSPENDING stays");
	no_value(&j);
}

/* --- values that do not fit the key ---------------------------------------------- */

static void not_an_object(void **state, const char *current)
{
	struct kt_rot_job j;
	struct seen seen;

	script_reset(state);
	script(3, DESCRIBE(V(OLD_ID, CUR)), value_answer(OLD_ID, "AWSCURRENT", current),
	       random_answer());
	job_init(&j, "password", &seen);
	kt_rot_run(fake, -1, -1, &j);
	no_call_from(0, "PutSecretValue");
	assert_int_equal(j.outcome, KT_ROT_FAILED);
	assert_int_equal(j.step, KT_ROT_CREATE);
	results_are(&j, "failed", "not_run", "not_run", "not_run");
	has(j.message, "db: createSecret failed: ");
	has(j.message, "not a JSON object");
	has(j.message, "'password'");
	no_value(&j);
}

static void test_not_json(void **state)
{
	not_an_object(state, "plain " OLD_PW);
	not_an_object(state, "[\"" OLD_PW "\"]");
	not_an_object(state, NULL); /* binary */
}

/* The pending version lacks the key's member: setSecret fails. */
static void test_pending_without_member(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	script(2, DESCRIBE(V(OLD_ID, CUR) "," V(TOKEN, PEND)),
	       value_answer(TOKEN, "AWSPENDING", "{\"username\":\"app\",\"pass\":\"" OLD_PW "\"}"));
	job_init(&j, "password", &seen);
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(nrequests, 2);
	assert_int_equal(j.outcome, KT_ROT_FAILED);
	assert_int_equal(j.step, KT_ROT_SET);
	results_are(&j, "skipped", "failed", "not_run", "not_run");
	has(j.message, "db: setSecret failed: ");
	no_value(&j);
}

/* --- commands, through the real helper ----------------------------------------------- */

static void argv_sh(char **argv, char *line)
{
	argv[0] = (char *)"/bin/sh";
	argv[1] = (char *)"-c";
	argv[2] = line;
	argv[3] = NULL;
}

/* [rotate:] 0 writes stdin and its environment to files; 1's set does the
 * same, its test fails with a line on stderr; 2's set outlives its 1 s. */
static int helper_setup(void **state)
{
	(void)state;
	kt_tmp_name(dir, sizeof(dir), "/tmp/kt-rotsteps-");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(cmd[0], sizeof(cmd[0]),
		 "cat > %s/set.out && printf %%s \"$KEYTURN_SECRET/$KEYTURN_STEP\" > %s/set.env",
		 dir, dir);
	snprintf(cmd[1], sizeof(cmd[1]),
		 "cat > %s/test.out && printf %%s \"$KEYTURN_SECRET/$KEYTURN_STEP\" > %s/test.env",
		 dir, dir);
	snprintf(cmd[2], sizeof(cmd[2]), "cat > %s/set1.out", dir);
	snprintf(cmd[3], sizeof(cmd[3]),
		 "cat > /dev/null; echo 'test-db-password: login refused for app' >&2; exit 3");
	snprintf(cmd[4], sizeof(cmd[4]), "exec sleep 30");
	argv_sh(argv_set0, cmd[0]);
	argv_sh(argv_test0, cmd[1]);
	argv_sh(argv_set1, cmd[2]);
	argv_sh(argv_test1, cmd[3]);
	argv_sh(argv_slow, cmd[4]);
	memset(rot, 0, sizeof(rot));
	for (size_t i = 0; i < 3; i++) {
		rot[i].name = (char *)"db";
		rot[i].run_uid = (uid_t)-1;
		rot[i].run_gid = (gid_t)-1;
		rot[i].command_timeout = 20;
	}
	rot[0].set_argv = argv_set0;
	rot[0].test_argv = argv_test0;
	rot[1].set_argv = argv_set1;
	rot[1].test_argv = argv_test1;
	rot[2].set_argv = argv_slow;
	rot[2].command_timeout = 1;
	memset(&cfg, 0, sizeof(cfg));
	cfg.rotates = rot;
	cfg.nrotates = 3;
	return kt_privhelper_start(&cfg, &helper_fd, &helper_pid) == 0 ? 0 : -1;
}

static int helper_teardown(void **state)
{
	char rm[300];
	int st;

	if (helper_fd >= 0)
		close(helper_fd);
	helper_fd = -1;
	/* The helper exits when its socket closes. */
	if (helper_pid > 0 && waitpid(helper_pid, &st, 0) != helper_pid)
		return -1;
	helper_pid = -1;
	snprintf(rm, sizeof(rm), "rm -rf '%s'", dir);
	if (system(rm) != 0)
		return -1;
	return teardown(state);
}

/* The file's bytes in buf (NUL-terminated): its length, or -1 when absent. */
static long slurp(const char *name, char *buf, size_t len)
{
	char path[512];
	FILE *fp;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fp = fopen(path, "rb");
	if (fp == NULL)
		return -1;
	n = fread(buf, 1, len - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return (long)n;
}

static void file_is(const char *name, const char *want)
{
	char buf[256];

	assert_int_equal(slurp(name, buf, sizeof(buf)), (long)strlen(want));
	assert_memory_equal(buf, want, strlen(want));
}

static void fresh_script(size_t n)
{
	script(n, DESCRIBE(V(OLD_ID, CUR)), value_answer(OLD_ID, "AWSCURRENT", OLD_JSON),
	       random_answer(), PUT_OK, value_answer(TOKEN, "AWSPENDING", json_value(NEW_PW)),
	       UPDATE_OK, UPDATE_OK);
}

static void test_commands_ok(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	fresh_script(7);
	job_init(&j, "password", &seen);
	j.rotate_idx = 0;
	j.has_set = j.has_test = true;
	kt_rot_run(fake, helper_fd, -1, &j);
	if (j.outcome != KT_ROT_ROTATED)
		fail_msg("not rotated: %s", j.message);
	assert_int_equal(nrequests, 7);
	check_update(5, "AWSCURRENT", TOKEN, OLD_ID);
	results_are(&j, "ok", "ok", "ok", "ok");
	has(j.detail[KT_ROT_SET], "set_command exited with status 0");
	has(j.detail[KT_ROT_TEST], "test_command exited with status 0");
	/* stdin is the new password alone, no newline; the step in the
	 * environment. */
	file_is("set.out", NEW_PW);
	file_is("set.env", "db/setSecret");
	file_is("test.out", NEW_PW);
	file_is("test.env", "db/testSecret");
	seen_are(&seen, 3, KT_ROT_SET, KT_ROT_TEST, KT_ROT_FINISH);
	no_value(&j);
}

/* The whole value as the password: the command's stdin is the SecretString. */
static void test_commands_whole_value(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	script(7, DESCRIBE(V(OLD_ID, CUR)), value_answer(OLD_ID, "AWSCURRENT", OLD_PW),
	       random_answer(), PUT_OK, value_answer(TOKEN, "AWSPENDING", NEW_PW), UPDATE_OK,
	       UPDATE_OK);
	job_init(&j, NULL, &seen);
	j.rotate_idx = 0;
	j.has_set = true;
	kt_rot_run(fake, helper_fd, -1, &j);
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	results_are(&j, "ok", "ok", "skipped", "ok");
	file_is("set.out", NEW_PW);
	assert_int_equal(slurp("test.out", (char[8]){ 0 }, 8), -1);
	no_value(&j);
}

static void test_test_command_fails(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	fresh_script(5);
	job_init(&j, "password", &seen);
	j.rotate_idx = 1;
	j.has_set = j.has_test = true;
	kt_rot_run(fake, helper_fd, -1, &j);
	assert_int_equal(j.outcome, KT_ROT_FAILED);
	assert_int_equal(j.step, KT_ROT_TEST);
	results_are(&j, "ok", "ok", "failed", "not_run");
	/* AWSCURRENT untouched: no UpdateSecretVersionStage. */
	assert_int_equal(nrequests, 5);
	no_call_from(0, "UpdateSecretVersionStage");
	file_is("set1.out", NEW_PW);
	/* The status, then stderr's line as written (no separator after it). */
	ends(j.message, "db: testSecret failed: test_command exited with status 3: "
			"test-db-password: login refused for app");
	has(j.detail[KT_ROT_TEST], "status 3");
	has(j.detail[KT_ROT_TEST], "login refused");
	seen_are(&seen, 2, KT_ROT_SET, KT_ROT_TEST);
	no_value(&j);
}

/* Resumed at testSecret: setSecret is not run again. */
static void test_resume_at_test(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	script(4, DESCRIBE(V(OLD_ID, CUR) "," V(TOKEN, PEND)),
	       value_answer(TOKEN, "AWSPENDING", json_value(NEW_PW)), UPDATE_OK, UPDATE_OK);
	job_init(&j, "password", &seen);
	j.rotate_idx = 0;
	j.has_set = j.has_test = true;
	j.from = KT_ROT_TEST;
	kt_rot_run(fake, helper_fd, -1, &j);
	assert_int_equal(j.outcome, KT_ROT_ROTATED);
	assert_int_equal(nrequests, 4);
	check_get(1, TOKEN, "AWSPENDING");
	results_are(&j, "skipped", "skipped", "ok", "ok");
	assert_int_equal(slurp("set.out", (char[8]){ 0 }, 8), -1);
	file_is("test.out", NEW_PW);
	seen_are(&seen, 1, KT_ROT_FINISH);
	no_value(&j);
}

static void test_command_timeout(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	fresh_script(5);
	job_init(&j, "password", &seen);
	j.rotate_idx = 2;
	j.has_set = true;
	kt_rot_run(fake, helper_fd, -1, &j);
	assert_int_equal(j.outcome, KT_ROT_FAILED);
	assert_int_equal(j.step, KT_ROT_SET);
	results_are(&j, "ok", "failed", "not_run", "not_run");
	assert_int_equal(nrequests, 5);
	has(j.message, "db: setSecret failed: set_command timed out");
	has(j.detail[KT_ROT_SET], "timed out");
	no_value(&j);
}

/* keyturnd stops while a command runs: the rotation ends without waiting
 * for it (its late answer is drained here). */
static void test_stopping(void **state)
{
	struct pollfd p = { -1, POLLIN, 0 };
	struct kt_priv_reply r;
	struct kt_rot_job j;
	struct seen seen;
	int stop = eventfd(1, EFD_CLOEXEC);

	(void)state;
	assert_true(stop >= 0);
	fresh_script(5);
	job_init(&j, "password", &seen);
	j.rotate_idx = 2;
	j.has_set = true;
	kt_rot_run(fake, helper_fd, stop, &j);
	close(stop);
	assert_int_equal(j.outcome, KT_ROT_STOPPING);
	assert_int_equal(j.step, KT_ROT_SET);
	assert_string_equal(j.result[KT_ROT_SET], "failed");
	no_value(&j);
	p.fd = helper_fd;
	assert_int_equal(poll(&p, 1, 20000), 1);
	assert_int_equal(kt_privhelper_recv(helper_fd, &r), 1);
	assert_true((r.h.flags & KT_PRIV_TIMED_OUT) != 0);
}

/* A command configured but no helper to run it. */
static void test_no_helper(void **state)
{
	struct kt_rot_job j;
	struct seen seen;

	(void)state;
	fresh_script(5);
	job_init(&j, "password", &seen);
	j.rotate_idx = 0;
	j.has_set = true;
	kt_rot_run(fake, -1, -1, &j);
	assert_int_equal(j.outcome, KT_ROT_FAILED);
	assert_int_equal(j.step, KT_ROT_SET);
	assert_int_equal(nrequests, 5);
	has(j.message, "no privileged helper to run set_command");
	no_value(&j);
}

/* --- the token ---------------------------------------------------------------------- */

static void check_uuid4(const char *t)
{
	assert_int_equal(strlen(t), KT_ROT_TOKEN_LEN);
	for (size_t i = 0; i < KT_ROT_TOKEN_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23)
			assert_int_equal(t[i], '-');
		else if (strchr("0123456789abcdef", t[i]) == NULL || t[i] == '\0')
			fail_msg("'%s': %c at %zu is not a lower-case hex digit", t, t[i], i);
	}
	assert_int_equal(t[14], '4');
	if (strchr("89ab", t[19]) == NULL)
		fail_msg("'%s': variant %c is not RFC 4122's", t, t[19]);
}

static void test_new_token(void **state)
{
	char a[KT_ROT_TOKEN_LEN + 1], b[KT_ROT_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(kt_rot_new_token(a), 0);
	assert_int_equal(kt_rot_new_token(b), 0);
	check_uuid4(a);
	check_uuid4(b);
	assert_string_not_equal(a, b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fresh_json, teardown),
		cmocka_unit_test_teardown(test_fresh_whole_value, teardown),
		cmocka_unit_test_teardown(test_resumed_pending, teardown),
		cmocka_unit_test_teardown(test_already_current, teardown),
		cmocka_unit_test_teardown(test_busy, teardown),
		cmocka_unit_test_teardown(test_abandoned, teardown),
		cmocka_unit_test_teardown(test_stale_pending_on_current, teardown),
		cmocka_unit_test_teardown(test_put_denied, teardown),
		cmocka_unit_test_teardown(test_put_throttled, teardown),
		cmocka_unit_test_teardown(test_describe_server_error, teardown),
		cmocka_unit_test_teardown(test_random_refused, teardown),
		cmocka_unit_test_teardown(test_finish_denied, teardown),
		cmocka_unit_test_teardown(test_pending_label_stays, teardown),
		cmocka_unit_test_teardown(test_not_json, teardown),
		cmocka_unit_test_teardown(test_pending_without_member, teardown),
		cmocka_unit_test_setup_teardown(test_commands_ok, helper_setup, helper_teardown),
		cmocka_unit_test_setup_teardown(test_commands_whole_value, helper_setup,
						helper_teardown),
		cmocka_unit_test_setup_teardown(test_test_command_fails, helper_setup,
						helper_teardown),
		cmocka_unit_test_setup_teardown(test_resume_at_test, helper_setup, helper_teardown),
		cmocka_unit_test_setup_teardown(test_command_timeout, helper_setup,
						helper_teardown),
		cmocka_unit_test_setup_teardown(test_stopping, helper_setup, helper_teardown),
		cmocka_unit_test_teardown(test_no_helper, teardown),
		cmocka_unit_test(test_new_token),
	};

	/* A ceiling for a helper that would never answer: kt_rot_run waits
	 * on it without a timeout of its own. */
	alarm(120);
	return cmocka_run_group_tests_name("rotate_steps", tests, NULL, NULL);
}
