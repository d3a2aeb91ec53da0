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
#include "ctl_say.h"
#include "transport.h"

#define RELOAD_TIMEOUT_MS 60000

int kt_ctl_reload(const char *socket, int timeout_ms, bool json)
{
	static const char req[] = "{\"v\":1,\"op\":\"reload\"}";
	struct kt_transport t;
	struct kt_buf answer = KT_BUF_INIT(KT_PROTO_MAX_FRAME);
	struct json_object *a = NULL;
	struct json_object *ok;
	enum kt_proto_err perr;
	const char *error;
	int rc;

	if (kt_transport_init(&t, kt_transport_path(socket, true)) < 0) {
		kt_ctl_say("reload", "the socket path is empty or too long");
		return 1;
	}
	t.timeout_ms = timeout_ms > 0 ? timeout_ms : RELOAD_TIMEOUT_MS;
	rc = kt_transport_call(&t, req, sizeof(req) - 1, &answer);
	kt_transport_disconnect(&t);
	if (rc < 0) {
		kt_ctl_say("reload", "%s", t.msg[0] != '\0' ? t.msg : strerror(-rc));
		kt_buf_free(&answer);
		return rc == -EPERM ? 4 : 5;
	}
	a = kt_json_parse(answer.data, answer.len);
	if (a == NULL || !json_object_is_type(a, json_type_object)) {
		kt_ctl_say("reload", "keyturnd's answer is not a JSON object");
		rc = 1;
		goto out;
	}
	/* As libkeyturn reads answers: "ok" must be a boolean, and an error
	 * code this program does not know is never taken for success. */
	if (!json_object_object_get_ex(a, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean)) {
		kt_ctl_say("reload", "keyturnd's answer has no boolean \"ok\"");
		rc = 1;
		goto out;
	}
	if (json)
		printf("%.*s\n", (int)answer.len, answer.data);
	if (json_object_get_boolean(ok)) {
		if (!json)
			printf("reloaded: %s secrets, %s logins\n",
			       json_object_get_string(json_object_object_get(a, "secrets")),
			       json_object_get_string(json_object_object_get(a, "logins")));
		rc = 0;
		goto out;
	}
	error = kt_json_str(a, "error");
	kt_ctl_say("reload", "%s",
		   kt_json_str(a, "message") != NULL ? kt_json_str(a, "message") : "refused");
	rc = error != NULL && kt_proto_err_parse(error, &perr) == 0 ? kt_ctl_perr_exit(perr) : 1;
out:
	json_object_put(a);
	kt_buf_free(&answer);
	return rc;
}
