/* keyturnctl rotate (ctl_rotate.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/proto.h"
#include "ctl_rotate.h"
#include "ctl_say.h"
#include "transport.h"

/* The steps' commands have command_timeout each (at most an hour); the
 * default is for the common case, --timeout for the rest. */
#define ROTATE_TIMEOUT_MS (10 * 60 * 1000)

/* The exit code for a rotation that did not happen (keyturnctl(1)). */
static int exit_for(struct json_object *a)
{
	const char *error = kt_json_str(a, "error"), *outcome = kt_json_str(a, "outcome");
	enum kt_proto_err perr;

	if (outcome != NULL) {
		if (strcmp(outcome, "busy") == 0)
			return 6;
		if (strcmp(outcome, "denied") == 0)
			return 7;
		if (strcmp(outcome, "unreachable") == 0 || strcmp(outcome, "stopping") == 0)
			return 5;
		return 1;
	}
	if (error == NULL || kt_proto_err_parse(error, &perr) < 0)
		return 1;
	return kt_ctl_perr_exit(perr);
}

/* One line per step: "createSecret: ok (detail)". */
static void print_steps(struct json_object *a)
{
	struct json_object *steps;
	char step[64], result[32], detail[400];

	if (!json_object_object_get_ex(a, "steps", &steps) ||
	    !json_object_is_type(steps, json_type_array))
		return;
	for (size_t i = 0; i < json_object_array_length(steps); i++) {
		struct json_object *s = json_object_array_get_idx(steps, i);
		const char *d = kt_json_str(s, "detail");

		kt_json_printable(kt_json_str(s, "step") ? kt_json_str(s, "step") : "?", step,
				  sizeof(step));
		kt_json_printable(kt_json_str(s, "result") ? kt_json_str(s, "result") : "?", result,
				  sizeof(result));
		kt_json_printable(d != NULL ? d : "", detail, sizeof(detail));
		printf("%s: %s%s%s%s\n", step, result, d != NULL ? " (" : "", detail,
		       d != NULL ? ")" : "");
	}
}

int kt_ctl_rotate(const char *socket, int timeout_ms, bool json, const char *name)
{
	struct json_object *req = json_object_new_object(), *a = NULL, *ok;
	struct kt_buf answer = KT_BUF_INIT(KT_PROTO_MAX_FRAME);
	struct kt_transport t;
	char shown[160];
	const char *text;
	int rc;

	if (req == NULL || json_object_object_add(req, "v", json_object_new_int(1)) < 0 ||
	    json_object_object_add(req, "op", json_object_new_string("rotate")) < 0 ||
	    json_object_object_add(req, "secret", json_object_new_string(name)) < 0) {
		json_object_put(req);
		kt_ctl_say("rotate", "out of memory");
		return 1;
	}
	if (kt_transport_init(&t, kt_transport_path(socket, true)) < 0) {
		json_object_put(req);
		kt_ctl_say("rotate", "the socket path is empty or too long");
		return 1;
	}
	t.timeout_ms = timeout_ms > 0 ? timeout_ms : ROTATE_TIMEOUT_MS;
	text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
	rc = kt_transport_call(&t, text, strlen(text), &answer);
	kt_transport_disconnect(&t);
	json_object_put(req);
	if (rc < 0) {
		kt_ctl_say("rotate", "%s", t.msg[0] != '\0' ? t.msg : strerror(-rc));
		kt_buf_free(&answer);
		return rc == -EPERM ? 4 : 5;
	}
	a = kt_json_parse(answer.data, answer.len);
	if (a == NULL || !json_object_is_type(a, json_type_object) ||
	    !json_object_object_get_ex(a, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		kt_ctl_say("rotate",
			   "keyturnd's answer is not a JSON object with a boolean \"ok\"");
		rc = 1;
		goto out;
	}
	if (json)
		printf("%.*s\n", (int)answer.len, answer.data);
	else
		print_steps(a);
	kt_json_printable(name, shown, sizeof(shown));
	if (json_object_get_boolean(ok)) {
		char version[96];

		kt_json_printable(kt_json_str(a, "version") ? kt_json_str(a, "version") : "?",
				  version, sizeof(version));
		if (!json)
			printf("%s: rotated to version %s\n", shown, version);
		rc = 0;
		goto out;
	}
	kt_ctl_say("rotate", "%s",
		   kt_json_str(a, "message") != NULL ? kt_json_str(a, "message") : "refused");
	rc = exit_for(a);
out:
	json_object_put(a);
	kt_buf_free(&answer);
	return rc;
}
