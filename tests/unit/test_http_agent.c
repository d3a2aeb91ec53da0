/* Unit tests for sidecar/http_agent.c and sidecar/http_listen.c: the
 * Secrets Manager Agent's checks in its order with its statuses and texts,
 * the GetSecretValue body made from an ops answer, AWS's errors passed on,
 * keyturnd's own errors mapped to AWS's, and which `listen` addresses are
 * taken. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "common/kt_json.h"
#include "http_agent.h"
#include "http_listen.h"

static struct kt_agent_req q;

/* Routes a GET-like request with a token unless said otherwise. */
static void route(const char *method, const char *path, bool token, bool forwarded,
		  const struct kt_agent_arg *args, size_t nargs)
{
	struct kt_agent_in in = { 0 };

	in.method = method;
	in.path = path;
	in.prefix = "/v1/";
	in.token_ok = token;
	in.forwarded = forwarded;
	in.metrics = true;
	in.args = args;
	in.nargs = nargs;
	kt_agent_route(&in, &q);
}

static void expect_error(int status, const char *message)
{
	assert_int_equal(q.route, KT_AGENT_ERROR);
	assert_int_equal(q.status, status);
	assert_string_equal(q.message, message);
	assert_non_null(q.why);
}

static void test_order_of_checks(void **state)
{
	const struct kt_agent_arg bad[] = { { "abc", "1" } };

	(void)state;
	/* X-Forwarded-For before the token, the token before the method,
	 * the method before the path, the path before the parameters. */
	route("POST", "/nothing", false, true, bad, 1);
	expect_error(400, "Forwarded");
	route("POST", "/nothing", false, false, bad, 1);
	expect_error(403, "Bad Token");
	route("POST", "/nothing", true, false, bad, 1);
	expect_error(405, "Not allowed");
	route("GET", "/nothing", true, false, bad, 1);
	expect_error(404, "Not found");
	route("GET", "/secretsmanager/get", true, false, bad, 1);
	expect_error(400, "unknown parameter: abc");
}

static void test_ping(void **state)
{
	(void)state;
	/* No token and X-Forwarded-For do not matter to /ping; the method does. */
	route("GET", "/ping", false, true, NULL, 0);
	assert_int_equal(q.route, KT_AGENT_PING);
	route("DELETE", "/ping", false, false, NULL, 0);
	expect_error(405, "Not allowed");
}

static void test_query_get(void **state)
{
	const struct kt_agent_arg a[] = { { "secretId", "app/db" },
					  { "versionStage", "AWSPREVIOUS" },
					  { "refreshNow", "TRUE" } };
	const struct kt_agent_arg v[] = { { "versionId", "v-1" }, { "secretId", "x" } };

	(void)state;
	route("GET", "/secretsmanager/get", true, false, a, 3);
	assert_int_equal(q.route, KT_AGENT_GET);
	assert_string_equal(q.secret, "app/db");
	assert_string_equal(q.stage, "AWSPREVIOUS");
	assert_null(q.version_id);
	assert_true(q.refresh);
	route("GET", "/secretsmanager/get", true, false, v, 2);
	assert_int_equal(q.route, KT_AGENT_GET);
	assert_string_equal(q.version_id, "v-1");
	assert_false(q.refresh);
}

static void test_query_errors(void **state)
{
	const struct kt_agent_arg none[] = { { "versionStage", "AWSCURRENT" } };
	const struct kt_agent_arg empty[] = { { "secretId", "" } };
	const struct kt_agent_arg refresh[] = { { "secretId", "a" }, { "refreshNow", "yes" } };
	const struct kt_agent_arg noval[] = { { "secretId", "a" }, { "refreshNow", NULL } };
	const struct kt_agent_arg ctl[] = { { "a\nb", "1" } };

	(void)state;
	route("GET", "/secretsmanager/get", true, false, none, 1);
	expect_error(400, "missing parameter secretId");
	route("GET", "/secretsmanager/get", true, false, empty, 1);
	expect_error(400, "missing parameter secretId");
	route("GET", "/secretsmanager/get", true, false, refresh, 2);
	expect_error(400, "invalid refreshNow value");
	route("GET", "/secretsmanager/get", true, false, noval, 2);
	expect_error(400, "invalid refreshNow value");
	/* A parameter's name is shown, never with a raw control character. */
	route("GET", "/secretsmanager/get", true, false, ctl, 1);
	assert_int_equal(q.status, 400);
	assert_null(strchr(q.message, '\n'));
}

static void test_path_get(void **state)
{
	const struct kt_agent_arg a[] = { { "versionId", "v-2" } };
	const struct kt_agent_arg sid[] = { { "secretId", "other" } };

	(void)state;
	route("GET", "/v1/app/db", true, false, a, 1);
	assert_int_equal(q.route, KT_AGENT_GET);
	assert_string_equal(q.secret, "app/db");
	assert_string_equal(q.version_id, "v-2");
	route("GET", "/v1/", true, false, NULL, 0);
	expect_error(400, "missing secret ID");
	/* secretId is the query form's; the path form has its id in the path. */
	route("GET", "/v1/app/db", true, false, sid, 1);
	expect_error(400, "unknown parameter: secretId");
	route("GET", "/metrics", true, false, NULL, 0);
	assert_int_equal(q.route, KT_AGENT_METRICS);
}

/* The body and status for an answer given as JSON text. */
static int answer(const char *json, struct kt_buf *body)
{
	struct json_object *o = json_tokener_parse(json);
	int status = 0;

	assert_non_null(o);
	kt_buf_init(body, 1 << 20);
	assert_int_equal(kt_agent_answer(o, &status, body), 0);
	json_object_put(o);
	return status;
}

static void test_body(void **state)
{
	struct kt_buf b;

	(void)state;
	assert_int_equal(
		answer("{\"ok\":true,\"name\":\"app/db\",\"arn\":\"arn:aws:secretsmanager:us-east-1:"
		       "123456789012:secret:prod/app-db-Ab12Cd\",\"version_id\":\"v1\","
		       "\"stages\":[\"AWSCURRENT\",\"X\"],\"string\":\"p\\\"w\\u0000d\","
		       "\"fetched_at\":5,\"created\":1700000000,\"stale\":false}",
		       &b),
		200);
	assert_string_equal(
		kt_buf_str(&b),
		"{\"ARN\":\"arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/app-db-Ab12Cd\","
		"\"Name\":\"prod/app-db\",\"VersionId\":\"v1\",\"SecretString\":\"p\\\"w\\u0000d\","
		"\"VersionStages\":[\"AWSCURRENT\",\"X\"],\"CreatedDate\":\"1700000000\"}");
	kt_buf_free(&b);
	/* A binary value; no ARN known yet: the configured name, no date. */
	assert_int_equal(answer("{\"ok\":true,\"name\":\"bin\",\"arn\":null,\"version_id\":\"v2\","
				"\"stages\":[],\"binary\":\"AAEC\",\"fetched_at\":0,\"created\":0,"
				"\"stale\":false}",
				&b),
			 200);
	assert_string_equal(kt_buf_str(&b),
			    "{\"ARN\":null,\"Name\":\"bin\",\"VersionId\":\"v2\",\"SecretBinary\":"
			    "\"AAEC\",\"VersionStages\":[],\"CreatedDate\":null}");
	kt_buf_free(&b);
}

static void test_errors(void **state)
{
	static const struct {
		const char *json;
		int status;
		const char *body;
	} cases[] = {
		{ "{\"ok\":false,\"error\":\"denied\",\"message\":\"m\"}", 403,
		  "{\"__type\":\"AccessDeniedException\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"not_found\",\"message\":\"m\"}", 400,
		  "{\"__type\":\"ResourceNotFoundException\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"throttled\",\"message\":\"m\"}", 400,
		  "{\"__type\":\"ThrottlingException\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"bad_request\",\"message\":\"m\"}", 400,
		  "{\"__type\":\"InvalidParameterException\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"unavailable\",\"message\":\"m\"}", 503,
		  "{\"__type\":\"ServiceUnavailableException\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"internal\",\"message\":\"m\"}", 500,
		  "{\"__type\":\"InternalFailure\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"what\"}", 500,
		  "{\"__type\":\"InternalFailure\",\"message\":\"\"}" },
		/* AWS's own, passed on with its status and type. */
		{ "{\"ok\":false,\"error\":\"unavailable\",\"message\":\"m\",\"aws\":{\"class\":"
		  "\"decryption\",\"type\":\"DecryptionFailure\",\"status\":400}}",
		  400, "{\"__type\":\"DecryptionFailure\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"not_found\",\"message\":\"m\",\"aws\":{\"class\":"
		  "\"not_found\",\"type\":\"ResourceNotFoundException\",\"status\":404}}",
		  404, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"m\"}" },
		/* No answer from AWS: the Agent's 504 and 502. */
		{ "{\"ok\":false,\"error\":\"unavailable\",\"message\":\"m\",\"aws\":{\"class\":"
		  "\"timeout\",\"type\":\"Timeout\",\"status\":0}}",
		  504, "{\"__type\":\"TimeoutError\",\"message\":\"m\"}" },
		{ "{\"ok\":false,\"error\":\"unavailable\",\"message\":\"m\",\"aws\":{\"class\":"
		  "\"transport\",\"type\":\"Curl\",\"status\":0}}",
		  502, "{\"__type\":\"ConnectionError\",\"message\":\"m\"}" },
	};
	struct kt_buf b;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(answer(cases[i].json, &b), cases[i].status);
		assert_string_equal(kt_buf_str(&b), cases[i].body);
		kt_buf_free(&b);
	}
}

static void test_listen(void **state)
{
	static const char *const good[] = { "127.0.0.1:2773", "[::1]:2773", "127.1.2.3:1",
					    "unix:/run/keyturn/http.sock",
					    "127.0.0.1:2773 [::1]:2773 unix:/tmp/x" };
	static const char *const bad[] = {
		"0.0.0.0:2773",
		"192.0.2.1:2773",
		"[::]:2773",
		"localhost:2773",
		"127.0.0.1",
		"127.0.0.1:0",
		"127.0.0.1:65536",
		"127.0.0.1:02773",
		"unix:relative",
		"[::1]2773",
		"",
		"[::ffff:127.0.0.1]:1",
	};
	struct kt_listen_addr a[KT_HTTP_MAX_LISTEN];
	char why[200];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(kt_http_listen_parse(good[i], a, why, sizeof(why)) > 0);
	assert_int_equal(kt_http_listen_parse(good[4], a, why, sizeof(why)), 3);
	assert_int_equal(a[0].kind, KT_LISTEN_TCP);
	assert_string_equal(a[1].text, "[::1]:2773");
	assert_int_equal(a[2].kind, KT_LISTEN_UNIX);
	assert_string_equal(a[2].path, "/tmp/x");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_equal(kt_http_listen_parse(bad[i], NULL, why, sizeof(why)), -EINVAL);
		assert_true(why[0] != '\0');
	}
	kt_http_listen_parse("0.0.0.0:2773", NULL, why, sizeof(why));
	assert_non_null(strstr(why, "loopback only"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_of_checks), cmocka_unit_test(test_ping),
		cmocka_unit_test(test_query_get),       cmocka_unit_test(test_query_errors),
		cmocka_unit_test(test_path_get),        cmocka_unit_test(test_body),
		cmocka_unit_test(test_errors),          cmocka_unit_test(test_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
