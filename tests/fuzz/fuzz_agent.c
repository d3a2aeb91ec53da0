/* libFuzzer target: the HTTP door's pure parts (sidecar/http_agent.c,
 * sidecar/http_listen.c). The first byte picks what the rest is: a
 * request, as lines "METHOD", "PATH" and then "KEY=VALUE" parameters (a
 * line without '=' is a key with no value), with the first byte's bits as
 * the token, X-Forwarded-For and metrics flags; an ops answer (JSON) for
 * kt_agent_answer(); or a `listen` value. What each promises is checked:
 * statuses the Agent uses, messages without control characters, bodies
 * that are JSON; any breach aborts. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "http_agent.h"
#include "http_listen.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 16

static void route(uint8_t flags, char *text)
{
	struct kt_agent_arg args[MAX_ARGS];
	struct kt_agent_in in = { 0 };
	struct kt_agent_req q;
	char *lines[2 + MAX_ARGS], *save = NULL, *l;
	size_t n = 0;

	for (l = strtok_r(text, "\n", &save); l != NULL && n < 2 + MAX_ARGS;
	     l = strtok_r(NULL, "\n", &save))
		lines[n++] = l;
	if (n < 2)
		return;
	for (size_t i = 2; i < n; i++) {
		char *eq = strchr(lines[i], '=');

		if (eq != NULL)
			*eq = '\0';
		args[i - 2].key = lines[i];
		args[i - 2].value = eq != NULL ? eq + 1 : NULL;
	}
	in.method = lines[0];
	in.path = lines[1];
	in.prefix = "/v1/";
	in.token_ok = flags & 1;
	in.forwarded = flags & 2;
	in.metrics = flags & 4;
	in.args = args;
	in.nargs = n - 2;
	kt_agent_route(&in, &q);
	if (q.route == KT_AGENT_ERROR) {
		if (q.status != 400 && q.status != 403 && q.status != 404 && q.status != 405)
			abort();
		for (const char *s = q.message; *s; s++) {
			if ((unsigned char)*s < 0x20)
				abort();
		}
	} else if (q.route == KT_AGENT_GET) {
		if (q.secret == NULL || q.secret[0] == '\0' || !in.token_ok || in.forwarded ||
		    strcmp(in.method, "GET") != 0)
			abort();
	} else if (q.route == KT_AGENT_METRICS && !in.metrics) {
		abort();
	}
}

static void answer(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o = tok != NULL ? json_tokener_parse_ex(tok, text, (int)len) : NULL;
	struct json_object *back;
	struct kt_buf b;
	int status = 0;

	json_tokener_free(tok);
	if (o == NULL || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return;
	}
	kt_buf_init(&b, 1 << 20);
	if (kt_agent_answer(o, &status, &b) == 0) {
		if (status < 200 || status > 599)
			abort();
		/* Whatever came in, the body is one JSON object. */
		back = json_tokener_parse(kt_buf_str(&b));
		if (back == NULL || !json_object_is_type(back, json_type_object))
			abort();
		json_object_put(back);
	}
	kt_buf_free(&b);
	json_object_put(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kt_listen_addr a[KT_HTTP_MAX_LISTEN];
	char *text, why[200];
	int n;

	if (size < 1 || size > 65536)
		return 0;
	text = malloc(size);
	if (text == NULL)
		return 0;
	memcpy(text, data + 1, size - 1);
	text[size - 1] = '\0';
	switch (data[0] >> 6) {
	case 0:
	case 1:
		route(data[0], text);
		break;
	case 2:
		answer(text, strlen(text));
		break;
	default:
		n = kt_http_listen_parse(text, a, why, sizeof(why));
		if (n == 0 || n > KT_HTTP_MAX_LISTEN)
			abort();
		break;
	}
	free(text);
	return 0;
}
