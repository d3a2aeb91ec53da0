/* keyturnctl reload (ctl_reload.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/proto.h"
#include "ctl_reload.h"
#include "transport.h"

#define RELOAD_TIMEOUT_MS 60000

/* The same socket keyturn_open() would use. */
static const char *socket_path(const char *given)
{
	const char *env;

	if (given != NULL && *given != '\0')
		return given;
	env = secure_getenv("KEYTURN_SOCKET");
	return env != NULL && *env != '\0' ? env : RUNSTATEDIR "/keyturn/keyturnd.sock";
}

/* keyturnctl's exit code for the daemon's error name. */
static int exit_for(const char *error)
{
	if (error != NULL && strcmp(error, "denied") == 0)
		return 4;
	if (error != NULL && (strcmp(error, "unavailable") == 0 || strcmp(error, "throttled") == 0))
		return 5;
	return 1;
}

static void say(const char *msg)
{
	char line[1100];

	/* The message may quote a configuration file: no control characters. */
	kt_json_printable(msg, line, sizeof(line));
	fprintf(stderr, "keyturnctl: reload: %s\n", line);
}

int kt_ctl_reload(const char *socket, int timeout_ms, bool json)
{
	static const char req[] = "{\"v\":1,\"op\":\"reload\"}";
	struct kt_transport t;
	struct kt_buf answer = KT_BUF_INIT(KT_PROTO_MAX_FRAME);
	struct json_object *a = NULL;
	const char *error;
	int rc;

	if (kt_transport_init(&t, socket_path(socket)) < 0) {
		say("the socket path is empty or too long");
		return 1;
	}
	t.timeout_ms = timeout_ms > 0 ? timeout_ms : RELOAD_TIMEOUT_MS;
	rc = kt_transport_call(&t, req, sizeof(req) - 1, &answer);
	kt_transport_disconnect(&t);
	if (rc < 0) {
		say(t.msg[0] != '\0' ? t.msg : strerror(-rc));
		kt_buf_free(&answer);
		return rc == -EPERM ? 4 : 5;
	}
	a = kt_json_parse(answer.data, answer.len);
	if (a == NULL || !json_object_is_type(a, json_type_object)) {
		say("keyturnd's answer is not a JSON object");
		rc = 1;
		goto out;
	}
	if (json)
		printf("%.*s\n", (int)answer.len, answer.data);
	if (json_object_get_boolean(json_object_object_get(a, "ok"))) {
		if (!json)
			printf("reloaded: %s secrets, %s logins\n",
			       json_object_get_string(json_object_object_get(a, "secrets")),
			       json_object_get_string(json_object_object_get(a, "logins")));
		rc = 0;
		goto out;
	}
	error = kt_json_str(a, "error");
	say(kt_json_str(a, "message") != NULL ? kt_json_str(a, "message") : "refused");
	rc = exit_for(error);
out:
	json_object_put(a);
	kt_buf_free(&answer);
	return rc;
}
