/* keyturn's wire protocol, defined once for the daemon and its clients:
 * each message is a 4-byte big-endian length and that many bytes of one JSON
 * object. docs/PROTOCOL.md is the reference for the requests and answers. */
#ifndef KT_PROTO_H
#define KT_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "kt_buf.h"

#define KT_PROTO_VERSION 1
#define KT_PROTO_MAX_FRAME (1024u * 1024u)
/* Requests are small (a name of at most 2,048 bytes, a password, a JSON
 * object around them); the daemon refuses a frame header announcing more. */
#define KT_PROTO_MAX_REQUEST (64u * 1024u)
#define KT_PROTO_HDR 4

/* The error codes of an answer {"ok":false,"error":CODE,"message":...}. */
enum kt_proto_err {
	KT_PERR_BAD_REQUEST = 1,
	KT_PERR_NOT_FOUND,
	KT_PERR_DENIED,
	KT_PERR_UNAVAILABLE,
	KT_PERR_THROTTLED,
	KT_PERR_INTERNAL,
};

const char *kt_proto_err_name(enum kt_proto_err e);
/* Returns 0 and the code for a known name, -EINVAL otherwise. */
int kt_proto_err_parse(const char *name, enum kt_proto_err *out);

/* Appends one frame holding payload to out. -EMSGSIZE over the limit. */
int kt_proto_frame(struct kt_buf *out, const char *payload, size_t len);

/* Reads a frame's header at the start of buf: 1 with *framelen (header
 * included) when the header is in, 0 when fewer than 4 bytes are, -EMSGSIZE
 * when it announces more than max, -EBADMSG for a zero length. */
int kt_proto_frame_len(const char *buf, size_t len, size_t max, size_t *framelen);

/* Looks for one whole frame at the start of buf. Returns 1 with *payload,
 * *plen and *framelen set, 0 when more bytes are needed, -EMSGSIZE when the
 * announced length is over KT_PROTO_MAX_FRAME, -EBADMSG for a zero length. */
int kt_proto_unframe(const char *buf, size_t len, const char **payload, size_t *plen,
		     size_t *framelen);

/* Serialises obj into one frame appended to out (values wiped from json-c's
 * buffer). Returns 0, -EMSGSIZE or -ENOMEM. */
int kt_proto_send_json(struct kt_buf *out, struct json_object *obj);

/* Builds {"ok":false,"error":CODE,"message":MSG}. NULL on ENOMEM. */
struct json_object *kt_proto_error(enum kt_proto_err code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
