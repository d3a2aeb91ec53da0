/* Unit tests for sm.c: the operations' request bodies and the checking of
 * answers. aws_client_call is replaced by a script of canned answers, so
 * malformed, mistyped and paginated answers can be played exactly. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/kt_json.h"
#include "scripted_client.h"
#include "aws/sm.h"

static int reset(void **state)
{
	return script_reset(state);
}

static struct json_object *request(size_t i)
{
	return kt_json_parse(requests[i], strlen(requests[i]));
}

static struct aws_client *fake = (struct aws_client *)0x1;

static void test_get_string(void **state)
{
	struct aws_error err;
	struct sm_value v;
	struct json_object *rq;

	(void)state;
	script(1,
	       "{\"ARN\":\"arn:x\",\"Name\":\"app/db\",\"VersionId\":\"v1\",\"SecretString\":\"pa\\u0000ss\","
	       "\"VersionStages\":[\"AWSCURRENT\"],\"CreatedDate\":1700000000.25}");
	assert_int_equal(sm_get_secret_value(fake, "app/db", NULL, "AWSCURRENT", &v, &err), 0);
	assert_string_equal(targets[0], "secretsmanager.GetSecretValue");
	rq = request(0);
	assert_string_equal(kt_json_str(rq, "SecretId"), "app/db");
	assert_string_equal(kt_json_str(rq, "VersionStage"), "AWSCURRENT");
	assert_null(kt_json_str(rq, "VersionId"));
	json_object_put(rq);
	assert_string_equal(v.name, "app/db");
	/* An embedded NUL is kept: the length comes from json-c, not strlen. */
	assert_int_equal(v.len, 5);
	assert_memory_equal(v.data, "pa\0ss", 5);
	assert_false(v.binary);
	assert_int_equal(v.nstages, 1);
	assert_string_equal(v.stages[0], "AWSCURRENT");
	assert_int_equal(v.created, 1700000000);
	sm_value_free(&v);
}

static void test_get_binary(void **state)
{
	struct aws_error err;
	struct sm_value v;

	(void)state;
	script(1, "{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretBinary\":\"AP8A\"}");
	assert_int_equal(sm_get_secret_value(fake, "n", "v", NULL, &v, &err), 0);
	assert_true(v.binary);
	assert_int_equal(v.len, 3);
	assert_memory_equal(v.data, "\x00\xff\x00", 3);
	sm_value_free(&v);
}

static void test_get_malformed(void **state)
{
	static const char *bad[] = {
		"{\"Name\":\"n\",\"VersionId\":\"v\",\"SecretString\":\"x\"}", /* no ARN */
		"{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"v\"}",          /* no value */
		"{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":7,\"SecretString\":\"x\"}", /* type */
		"{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretString\":5}", /* type */
		"{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretBinary\":\"@@@\"}", /* base64
												*/
		"{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretString\":\"x\",\"VersionStages\":\"AWSCURRENT\"}",
		"{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"v\",\"SecretString\":\"x\",\"VersionStages\":[1]}",
	};
	struct aws_error err;
	struct sm_value v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		script(1, bad[i]);
		assert_int_equal(sm_get_secret_value(fake, "n", NULL, NULL, &v, &err), -EBADMSG);
		assert_int_equal(err.code, AWS_ERR_MALFORMED);
		assert_null(v.data);
		reset(NULL);
	}
}

static void test_get_error_passes_through(void **state)
{
	struct aws_error err;
	struct sm_value v;

	(void)state;
	script(1, "ERR:{\"__type\":\"DecryptionFailure\",\"message\":\"kms\"}");
	assert_int_equal(sm_get_secret_value(fake, "n", NULL, NULL, &v, &err), -EIO);
	assert_int_equal(err.code, AWS_ERR_DECRYPTION);
}

static void test_batch_pages_and_errors(void **state)
{
	const char *ids[] = { "a", "b", "c" };
	struct aws_error err;
	struct sm_batch b;
	struct json_object *rq;

	(void)state;
	script(2,
	       "{\"SecretValues\":[{\"ARN\":\"A\",\"Name\":\"a\",\"VersionId\":\"1\",\"SecretString\":\"x\"}],"
	       "\"Errors\":[{\"SecretId\":\"c\",\"ErrorCode\":\"ResourceNotFoundException\",\"Message\":\"gone\"}],"
	       "\"NextToken\":\"t1\"}",
	       "{\"SecretValues\":[{\"ARN\":\"B\",\"Name\":\"b\",\"VersionId\":\"2\",\"SecretString\":\"y\"}],\"Errors\":[]}");
	assert_int_equal(sm_batch_get_secret_value(fake, ids, 3, &b, &err), 0);
	assert_int_equal(nrequests, 2);
	rq = request(1);
	assert_string_equal(kt_json_str(rq, "NextToken"), "t1");
	json_object_put(rq);
	assert_int_equal(b.nvalues, 2);
	assert_string_equal(b.values[1].name, "b");
	assert_int_equal(b.nerrors, 1);
	assert_string_equal(b.errors[0].secret_id, "c");
	assert_int_equal(b.errors[0].err.code, AWS_ERR_NOT_FOUND);
	sm_batch_free(&b);
}

static void test_batch_limits(void **state)
{
	const char *ids[21] = { 0 };
	struct aws_error err;
	struct sm_batch b;

	(void)state;
	assert_int_equal(sm_batch_get_secret_value(fake, ids, 21, &b, &err), -EINVAL);
	assert_int_equal(sm_batch_get_secret_value(fake, ids, 0, &b, &err), -EINVAL);
	assert_int_equal(nrequests, 0);
	script(1, "{\"SecretValues\":{}}");
	ids[0] = "a";
	assert_int_equal(sm_batch_get_secret_value(fake, ids, 1, &b, &err), -EBADMSG);
	assert_int_equal(b.nvalues, 0);
}

static void test_describe(void **state)
{
	struct aws_error err;
	struct sm_description d;

	(void)state;
	script(1,
	       "{\"ARN\":\"arn\",\"Name\":\"n\",\"RotationEnabled\":true,"
	       "\"RotationRules\":{\"AutomaticallyAfterDays\":30,\"Duration\":\"2h\",\"ScheduleExpression\":\"rate(30 days)\"},"
	       "\"NextRotationDate\":1800000000,\"LastRotatedDate\":1700000000.5,"
	       "\"VersionIdsToStages\":{\"v1\":[\"AWSPREVIOUS\"],\"v2\":[\"AWSCURRENT\",\"X\"],\"v3\":[\"AWSPENDING\"]}}");
	assert_int_equal(sm_describe_secret(fake, "n", &d, &err), 0);
	assert_true(d.rotation_enabled);
	assert_int_equal(d.rotation_days, 30);
	assert_string_equal(d.rotation_duration, "2h");
	assert_string_equal(d.rotation_schedule, "rate(30 days)");
	assert_int_equal(d.next_rotation, 1800000000);
	assert_int_equal(d.last_rotated, 1700000000);
	assert_int_equal(d.deleted, 0);
	assert_int_equal(d.nversions, 3);
	assert_string_equal(sm_description_version_for(&d, "AWSCURRENT"), "v2");
	assert_string_equal(sm_description_version_for(&d, "AWSPENDING"), "v3");
	assert_null(sm_description_version_for(&d, "NOPE"));
	sm_description_free(&d);

	script(1,
	       "{\"ARN\":\"arn\",\"Name\":\"n\",\"VersionIdsToStages\":{\"v1\":\"AWSCURRENT\"}}");
	assert_int_equal(sm_describe_secret(fake, "n", &d, &err), -EBADMSG);
	assert_int_equal(err.code, AWS_ERR_MALFORMED);
}

static void test_list_versions_pages(void **state)
{
	struct aws_error err;
	struct sm_version *v;
	size_t n;

	(void)state;
	script(2,
	       "{\"Versions\":[{\"VersionId\":\"v1\",\"VersionStages\":[\"AWSPREVIOUS\"]}],\"NextToken\":\"p2\"}",
	       "{\"Versions\":[{\"VersionId\":\"v2\",\"VersionStages\":[\"AWSCURRENT\"]}]}");
	assert_int_equal(sm_list_secret_version_ids(fake, "n", true, &v, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(v[1].version_id, "v2");
	sm_versions_free(v, n);
}

static void test_pagination_cannot_loop(void **state)
{
	struct aws_error err;
	struct sm_version *v;
	size_t n;

	(void)state;
	/* moto ends a listing with an empty token. */
	script(1, "{\"Versions\":[{\"VersionId\":\"v1\"}],\"NextToken\":\"\"}");
	assert_int_equal(sm_list_secret_version_ids(fake, "n", false, &v, &n, &err), 0);
	assert_int_equal(n, 1);
	assert_int_equal(nrequests, 1);
	sm_versions_free(v, n);
	reset(NULL);

	/* A server that hands back the token it was sent would loop forever. */
	script(2, "{\"Versions\":[],\"NextToken\":\"same\"}",
	       "{\"Versions\":[],\"NextToken\":\"same\"}");
	assert_int_equal(sm_list_secret_version_ids(fake, "n", false, &v, &n, &err), -EBADMSG);
	assert_int_equal(err.code, AWS_ERR_MALFORMED);
	assert_int_equal(nrequests, 2);
	assert_null(v);
}

static void test_put_sends_token_and_stages(void **state)
{
	const char *stages[] = { "AWSPENDING" };
	struct aws_error err;
	struct json_object *rq, *st;
	char *vid = NULL;

	(void)state;
	script(1, "{\"ARN\":\"a\",\"Name\":\"n\",\"VersionId\":\"new\"}");
	assert_int_equal(sm_put_secret_value(fake, "n", "\x01\x02", 2, true, stages, 1, &vid, &err),
			 0);
	assert_string_equal(vid, "new");
	free(vid);
	rq = request(0);
	assert_string_equal(kt_json_str(rq, "SecretBinary"), "AQI=");
	assert_int_equal(strlen(kt_json_str(rq, "ClientRequestToken")), 36);
	assert_true(json_object_object_get_ex(rq, "VersionStages", &st));
	assert_string_equal(json_object_get_string(json_object_array_get_idx(st, 0)), "AWSPENDING");
	json_object_put(rq);
}

static void test_random_password_and_create(void **state)
{
	struct sm_random_opts o = { .length = 12, .exclude_punctuation = true };
	struct aws_error err;
	struct json_object *rq;
	char *pw = NULL, *arn = NULL, *vid = NULL;

	(void)state;
	script(2, "{\"RandomPassword\":\"abcdefghijkl\"}",
	       "{\"ARN\":\"arn:new\",\"Name\":\"n\",\"VersionId\":\"v\"}");
	assert_int_equal(sm_get_random_password(fake, &o, &pw, &err), 0);
	assert_string_equal(pw, "abcdefghijkl");
	free(pw);
	rq = request(0);
	assert_int_equal(json_object_get_int(json_object_object_get(rq, "PasswordLength")), 12);
	assert_true(json_object_get_boolean(json_object_object_get(rq, "ExcludePunctuation")));
	json_object_put(rq);
	assert_int_equal(sm_create_secret(fake, "n", "v", 1, false, "desc", &arn, &vid, &err), 0);
	assert_string_equal(arn, "arn:new");
	free(arn);
	free(vid);
	assert_int_equal(sm_create_secret(fake, "n", "v", 70000, false, NULL, &arn, &vid, &err),
			 -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_get_string, reset),
		cmocka_unit_test_teardown(test_get_binary, reset),
		cmocka_unit_test_teardown(test_get_malformed, reset),
		cmocka_unit_test_teardown(test_get_error_passes_through, reset),
		cmocka_unit_test_teardown(test_batch_pages_and_errors, reset),
		cmocka_unit_test_teardown(test_batch_limits, reset),
		cmocka_unit_test_teardown(test_describe, reset),
		cmocka_unit_test_teardown(test_list_versions_pages, reset),
		cmocka_unit_test_teardown(test_pagination_cannot_loop, reset),
		cmocka_unit_test_teardown(test_put_sends_token_and_stages, reset),
		cmocka_unit_test_teardown(test_random_password_and_create, reset),
	};

	return cmocka_run_group_tests_name("sm", tests, NULL, NULL);
}
