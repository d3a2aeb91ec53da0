/* Framing and error vocabulary of keyturn's Unix-socket protocol. */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kt_json.h"
#include "proto.h"
#include "secmem.h"

static const char *const err_names[] = {
	[KT_PERR_BAD_REQUEST] = "bad_request", [KT_PERR_NOT_FOUND] = "not_found",
	[KT_PERR_DENIED] = "denied",           [KT_PERR_UNAVAILABLE] = "unavailable",
	[KT_PERR_THROTTLED] = "throttled",     [KT_PERR_INTERNAL] = "internal",
};

const char *kt_proto_err_name(enum kt_proto_err e)
{
	if ((size_t)e >= sizeof(err_names) / sizeof(err_names[0]) || err_names[e] == NULL)
		return "internal";
	return err_names[e];
}

int kt_proto_err_parse(const char *name, enum kt_proto_err *out)
{
	for (size_t i = 1; i < sizeof(err_names) / sizeof(err_names[0]); i++) {
		if (strcmp(name, err_names[i]) == 0) {
			*out = (enum kt_proto_err)i;
			return 0;
		}
	}
	return -EINVAL;
}

int kt_proto_frame(struct kt_buf *out, const char *payload, size_t len)
{
	unsigned char hdr[KT_PROTO_HDR];
	int rc;

	if (len == 0 || len > KT_PROTO_MAX_FRAME)
		return -EMSGSIZE;
	hdr[0] = (unsigned char)(len >> 24);
	hdr[1] = (unsigned char)(len >> 16);
	hdr[2] = (unsigned char)(len >> 8);
	hdr[3] = (unsigned char)len;
	rc = kt_buf_append(out, hdr, sizeof(hdr));
	if (rc == 0)
		rc = kt_buf_append(out, payload, len);
	return rc;
}

int kt_proto_frame_len(const char *buf, size_t len, size_t max, size_t *framelen)
{
	const unsigned char *u = (const unsigned char *)buf;
	uint32_t n;

	if (len < KT_PROTO_HDR)
		return 0;
	n = (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
	if (n == 0)
		return -EBADMSG;
	if (n > max)
		return -EMSGSIZE;
	*framelen = KT_PROTO_HDR + (size_t)n;
	return 1;
}

int kt_proto_unframe(const char *buf, size_t len, const char **payload, size_t *plen,
		     size_t *framelen)
{
	size_t need = 0;
	int rc = kt_proto_frame_len(buf, len, KT_PROTO_MAX_FRAME, &need);

	if (rc <= 0)
		return rc;
	if (len < need)
		return 0;
	*payload = buf + KT_PROTO_HDR;
	*plen = need - KT_PROTO_HDR;
	*framelen = need;
	return 1;
}

int kt_proto_send_json(struct kt_buf *out, struct json_object *obj)
{
	size_t len = 0;
	char *s = kt_json_dump(obj, &len);
	int rc;

	if (s == NULL)
		return -ENOMEM;
	rc = kt_proto_frame(out, s, len);
	kt_free_wiped(s, len);
	return rc;
}

struct json_object *kt_proto_error(enum kt_proto_err code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	const char *name = kt_proto_err_name(code);
	char msg[512];
	va_list ap;

	if (o == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json_object_object_add(o, "ok", json_object_new_boolean(false)) < 0 ||
	    json_object_object_add(o, "error", json_object_new_string(name)) < 0 ||
	    json_object_object_add(o, "message", json_object_new_string(msg)) < 0) {
		json_object_put(o);
		return NULL;
	}
	return o;
}
