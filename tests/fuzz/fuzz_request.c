/* libFuzzer target: the daemon's frame reader and request parser. The input
 * is a byte stream as a client would send it: frames are cut off it with
 * kt_proto_unframe() as the server does, each payload goes through the
 * strict kt_json_parse(), and a request object is read the way the server
 * and its handlers read one (typed members, names without NUL or control
 * characters). Whatever kt_json_parse() accepts must survive its own
 * serialisation and be accepted again: the daemon's answers are built the
 * same way and the clients parse them with the same function. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/kt_buf.h"
#include "common/kt_json.h"
#include "common/proto.h"
#include "common/secmem.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void read_request(struct json_object *req)
{
	static const char *const names[] = { "op",   "secret",  "stage", "version_id", "key",
					     "user", "service", "rhost", "tty",        "password" };
	char shown[96];
	long long v;
	bool b;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		const char *s = kt_json_str(req, names[i]);

		if (s != NULL)
			kt_json_printable(s, shown, sizeof(shown));
	}
	(void)kt_json_int64(req, "v", &v);
	(void)kt_json_bool(req, "include_deprecated", &b);
	(void)kt_json_time(req, "at", &v);
}

/* Serialises obj as the daemon would answer and parses it back. */
static void round_trip(struct json_object *obj)
{
	struct kt_buf out = KT_BUF_INIT(4u * KT_PROTO_MAX_FRAME);
	const char *payload;
	size_t plen, framelen;
	struct json_object *back;

	if (kt_proto_send_json(&out, obj) == 0 &&
	    kt_proto_unframe(out.data, out.len, &payload, &plen, &framelen) == 1) {
		back = kt_json_parse(payload, plen);
		/* json-c writes what it read: a refusal would be a bug in the
		 * parser (or in json-c's writer) that a client would see as a
		 * garbled answer. */
		if (back == NULL)
			abort();
		kt_json_put_wiped(back);
	}
	kt_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	size_t off = 0;

	/* As many frames as the input holds, like one connection's stream. */
	while (off < size) {
		const char *payload;
		size_t plen, framelen;
		struct json_object *req;
		int rc = kt_proto_unframe(buf + off, size - off, &payload, &plen, &framelen);

		if (rc <= 0)
			break;
		req = kt_json_parse(payload, plen);
		if (req != NULL) {
			if (json_object_is_type(req, json_type_object))
				read_request(req);
			round_trip(req);
			kt_json_put_wiped(req);
		}
		off += framelen;
	}
	/* The whole input as one payload too: most inputs carry no header. */
	{
		struct json_object *o = kt_json_parse(buf, size);

		if (o != NULL) {
			if (json_object_is_type(o, json_type_object))
				read_request(o);
			round_trip(o);
			kt_json_put_wiped(o);
		}
	}
	return 0;
}
