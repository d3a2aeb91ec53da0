/* One request as every front door hands it to the ops: who asks, what, and
 * where a quick answer may go. The contract between the doors (server.c,
 * and those to come) and the handlers (ops.c, login/). */
#ifndef KT_REQUEST_H
#define KT_REQUEST_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <json-c/json.h>

#include "acl.h"
#include "common/kt_buf.h"

/* The front doors. A connection id tells its door: the HTTP door's ids
 * carry KT_CONN_HTTP, the credentials door's KT_CONN_CRED, the socket
 * server's neither. */
enum kt_door {
	KT_DOOR_SOCKET,
	KT_DOOR_HTTP,
	KT_DOOR_CREDENTIALS,
	KT_DOOR_N,
};
#define KT_CONN_HTTP (UINT64_C(1) << 63)
#define KT_CONN_CRED (UINT64_C(1) << 62) /* the systemd credentials door */

static inline enum kt_door kt_conn_door(uint64_t conn_id)
{
	if ((conn_id & KT_CONN_HTTP) != 0)
		return KT_DOOR_HTTP;
	return (conn_id & KT_CONN_CRED) != 0 ? KT_DOOR_CREDENTIALS : KT_DOOR_SOCKET;
}

enum kt_op_result {
	KT_OP_ANSWER,  /* *answer holds the answer */
	KT_OP_WRITTEN, /* the answer's frame was appended to out (cache hits) */
	KT_OP_PARKED,  /* the request waits on AWS; it is answered later */
};

struct kt_request {
	uint64_t conn_id;           /* the door's connection, for a later answer */
	const struct kt_peer *peer; /* the caller, as the kernel reported it */
	struct json_object *req;    /* the decoded request (a reference is taken to park it) */
	time_t now;                 /* schedule clock (kt_sched_now) */
	struct kt_buf *out;         /* where a cache hit may be written, framed, or NULL */
	bool replay;                /* handled again after waiting: already audited */
	int waited;                 /* the kt_wait_kind it waited on, 0 the first time */
};

#endif
