/* sigv4-sign: signs requests read as JSON lines on stdin with sigv4_sign() and
 * prints one JSON line per request, for the differential test against
 * botocore (tests/system/010-sigv4-botocore.sh, tests/lib/sigv4_cases.py). */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/kt_base64.h"
#include "aws/sigv4.h"

/* A request line that names more headers than this is a broken test input. */
#define MAX_HEADERS 64

static const char *get_string(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/* Signs the request described by one input object; fills res. Returns 0 or
 * a negative errno, and names what was wrong in *why. */
static int sign_one(json_object *in, struct sigv4_result *res, const char **why)
{
	struct sigv4_header headers[MAX_HEADERS];
	struct sigv4_request req = { 0 };
	struct sigv4_params params = { 0 };
	struct sigv4_key key = { 0 };
	unsigned char *body = NULL;
	json_object *hl, *ts;
	const char *b64;
	size_t i, body_len = 0;
	int rc = -EINVAL;

	*why = "bad input";
	req.method = get_string(in, "method");
	req.path = get_string(in, "path");
	req.query = get_string(in, "query");
	key.access_key = get_string(in, "access_key");
	key.secret_key = get_string(in, "secret_key");
	key.session_token = get_string(in, "session_token");
	params.region = get_string(in, "region");
	params.service = get_string(in, "service");
	params.normalize_path = true;
	b64 = get_string(in, "body_b64");
	if (req.method == NULL || req.path == NULL || key.access_key == NULL ||
	    key.secret_key == NULL || params.region == NULL || params.service == NULL ||
	    !json_object_object_get_ex(in, "timestamp", &ts) ||
	    !json_object_is_type(ts, json_type_int) ||
	    !json_object_object_get_ex(in, "headers", &hl) ||
	    !json_object_is_type(hl, json_type_array) || json_object_array_length(hl) > MAX_HEADERS)
		goto out;
	params.when = (time_t)json_object_get_int64(ts);

	for (i = 0; i < json_object_array_length(hl); i++) {
		json_object *pair = json_object_array_get_idx(hl, i);

		if (!json_object_is_type(pair, json_type_array) ||
		    json_object_array_length(pair) != 2)
			goto out;
		headers[i].name = json_object_get_string(json_object_array_get_idx(pair, 0));
		headers[i].value = json_object_get_string(json_object_array_get_idx(pair, 1));
	}
	req.headers = headers;
	req.nheaders = json_object_array_length(hl);

	if (b64 != NULL && b64[0] != '\0') {
		*why = "bad body_b64";
		rc = kt_base64_decode(b64, strlen(b64), &body, &body_len);
		if (rc != 0)
			goto out;
	}
	req.body = body;
	req.body_len = body_len;

	*why = "sigv4_sign failed";
	rc = sigv4_sign(&req, &key, &params, res);
out:
	free(body);
	return rc;
}

/* Prints the result, or an error object, as one JSON line. */
static int print_result(int rc, const struct sigv4_result *res, const char *why)
{
	json_object *o = json_object_new_object();
	const char *text;
	int ret = -ENOMEM;

	if (o == NULL)
		return -ENOMEM;
	if (rc == 0) {
		if (json_object_object_add(o, "authorization",
					   json_object_new_string(res->authorization)) != 0 ||
		    json_object_object_add(o, "amz_date", json_object_new_string(res->amz_date)) !=
			    0 ||
		    json_object_object_add(o, "canonical_request",
					   json_object_new_string(res->canonical_request)) != 0)
			goto out;
	} else {
		if (json_object_object_add(o, "error", json_object_new_string(why)) != 0 ||
		    json_object_object_add(o, "errno", json_object_new_int(-rc)) != 0)
			goto out;
	}
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE);
	if (text == NULL || puts(text) < 0)
		goto out;
	ret = 0;
out:
	json_object_put(o);
	return ret;
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	bool failed = false;

	while ((n = getline(&line, &cap, stdin)) != -1) {
		struct sigv4_result res = { 0 };
		const char *why = "not a JSON object";
		json_object *in;
		int rc = -EINVAL;

		/* Blank lines separate nothing; skip them rather than answer them. */
		if (strspn(line, " \t\r\n") == (size_t)n)
			continue;
		in = json_tokener_parse(line);
		if (in != NULL && json_object_is_type(in, json_type_object))
			rc = sign_one(in, &res, &why);
		if (rc != 0)
			failed = true;
		if (print_result(rc, &res, why) != 0) {
			fprintf(stderr, "sigv4-sign: cannot write output\n");
			failed = true;
		}
		sigv4_result_free(&res);
		json_object_put(in);
	}
	free(line);
	if (fflush(stdout) != 0)
		failed = true;
	return failed ? 1 : 0;
}
