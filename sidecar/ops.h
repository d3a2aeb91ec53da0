/* The requests keyturnd answers, dispatched from one table of
 * {op, who may call, handler} (in the manner of SSSD's sss_cmd_table). */
#ifndef KT_OPS_H
#define KT_OPS_H

#include <stdint.h>

#include <json-c/json.h>

#include "acl.h"
#include "worker.h"

struct kt_daemon;
struct kt_entry;
struct kt_parked;

enum kt_op_result {
	KT_OP_ANSWER,  /* *answer holds the answer */
	KT_OP_WRITTEN, /* the answer's frame was appended to out (cache hits) */
	KT_OP_PARKED,  /* the request waits on AWS; the daemon answers later */
};

#include "common/kt_buf.h"

/* Handles one decoded request from a peer. out may be NULL; when it is
 * not, a cache hit may be written there directly, already framed. */
enum kt_op_result kt_ops_handle(struct kt_daemon *d, uint64_t conn_id, const struct kt_peer *peer,
				struct json_object *req, struct json_object **answer,
				struct kt_buf *out);

/* Answers a parked request now that the job of its entry ended (job is
 * NULL when the entry went away on reload): either handles it again or turns
 * the job's failure into an answer. */
enum kt_op_result kt_ops_resume(struct kt_daemon *d, struct kt_parked *p, struct kt_entry *e,
				const struct kt_job *job, struct json_object **answer);

#endif
