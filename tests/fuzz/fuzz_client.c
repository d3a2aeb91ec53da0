/* libFuzzer target: how libkeyturn (and so pam_keyturn, which calls
 * keyturn_verify()) reads the daemon's answers. client/libkeyturn.c and
 * value.c are linked with this file's transport in place of transport.c:
 * every request is answered with the input. The first byte picks the call;
 * the rest is the answer's payload (the frame's header is transport.c's
 * business, fuzzed with the request reader). A verify answer may only be a
 * match when it is exactly a well-formed "ok":true,"match":true object. */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keyturn.h"
#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/proto.h"
#include "transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *answer;
static size_t answer_len;

int kt_transport_init(struct kt_transport *t, const char *path)
{
	memset(t, 0, sizeof(*t));
	t->fd = -1;
	t->timeout_ms = KT_TRANSPORT_DEFAULT_TIMEOUT_MS;
	if (path == NULL || *path == '\0' || strlen(path) >= sizeof(t->path))
		return -EINVAL;
	memcpy(t->path, path, strlen(path) + 1);
	return 0;
}

int kt_transport_call(struct kt_transport *t, const char *req, size_t len, struct kt_buf *out)
{
	(void)req;
	(void)len;
	kt_buf_reset(out);
	if (answer_len == 0 || answer_len > KT_PROTO_MAX_FRAME) {
		memcpy(t->msg, "bad frame", sizeof("bad frame"));
		return -EPROTO;
	}
	return kt_buf_append(out, answer, answer_len);
}

/* A watch's next frame is the same input as an answer. */
int kt_transport_recv(struct kt_transport *t, int wait_ms, struct kt_buf *out)
{
	(void)wait_ms;
	return kt_transport_call(t, NULL, 0, out);
}

void kt_transport_disconnect(struct kt_transport *t)
{
	t->fd = -1;
}

/* The oracle for verify: a match needs the answer to be a strict JSON
 * object whose "ok" and "match" are both the boolean true. */
static void check_match(void)
{
	struct json_object *o = kt_json_parse(answer, answer_len), *ok, *m;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "ok", &ok) ||
	    !json_object_is_type(ok, json_type_boolean) || !json_object_get_boolean(ok) ||
	    !json_object_object_get_ex(o, "match", &m) ||
	    !json_object_is_type(m, json_type_boolean) || !json_object_get_boolean(m))
		abort();
	kt_json_put_wiped(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	keyturn_t *kt;
	keyturn_value_t *v = NULL;
	char *json = NULL;
	int match = -1, rc;

	if (size < 1)
		return 0;
	answer = (const char *)data + 1;
	answer_len = size - 1;
	kt = keyturn_open("/nonexistent/fuzz.sock", NULL);
	if (kt == NULL)
		return 0;
	switch (data[0] % 6) {
	case 0:
		rc = keyturn_verify(kt, "alice", "pw", 2, "sshd", NULL, NULL, &match);
		if (rc == KEYTURN_OK && match == 1)
			check_match();
		if (rc != KEYTURN_OK && match == 1)
			abort();
		break;
	case 1:
		rc = keyturn_get(kt, "app/db", NULL, NULL, NULL, &v);
		if (rc == KEYTURN_OK) {
			size_t n;

			(void)keyturn_value_data(v, &n);
			(void)keyturn_value_name(v);
			for (size_t i = 0; i < keyturn_value_stage_count(v); i++)
				(void)keyturn_value_stage(v, i);
		}
		keyturn_value_free(v);
		break;
	case 2:
		rc = keyturn_get(kt, "app/db", "AWSPREVIOUS", NULL, "password", &v);
		keyturn_value_free(v);
		break;
	case 3:
		rc = keyturn_list(kt, &json);
		break;
	case 4:
		rc = keyturn_status(kt, &json);
		break;
	default:
		rc = keyturn_refresh(kt, "app/db", &json);
		break;
	}
	(void)rc;
	(void)keyturn_last_message(kt);
	keyturn_free_string(json);
	keyturn_close(kt);
	return 0;
}
