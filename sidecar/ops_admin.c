/* Root's ops: reload (read the configuration file again) and rotate (run
 * a [rotate:] section's four rotation steps now). Both are answered when
 * the work is done; rotate's answer comes later, through the reply
 * callback, since the steps run on the rotation thread. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "answer.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "common/proto.h"
#include "ops_int.h"

/* Reloads the configuration and says how it went: {"ok":true,...} with the
 * counts now in effect, or `unavailable` with why the file was refused (the
 * configuration in use stays). The answer comes when the reload is done. */
enum kt_op_result kt_ops_reload(struct kt_ops *ops, struct json_object **answer)
{
	char err[512] = "";
	const struct kt_cache *c;

	if (ops->env.reload == NULL || ops->env.reload(ops->env.ctx, err, sizeof(err)) < 0) {
		*answer = kt_proto_error(KT_PERR_UNAVAILABLE, "reload refused: %s",
					 err[0] != '\0' ? err : "not supported");
		return KT_OP_ANSWER;
	}
	c = ops->cache;
	*answer = kt_answer_ok();
	if (*answer == NULL) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "out of memory");
		return KT_OP_ANSWER;
	}
	json_object_object_add(*answer, "secrets",
			       json_object_new_int64((int64_t)ops->cfg->nsecrets));
	json_object_object_add(*answer, "logins",
			       json_object_new_int64((int64_t)ops->cfg->nlogins));
	json_object_object_add(*answer, "cached_entries", json_object_new_int64((int64_t)c->n));
	return KT_OP_ANSWER;
}

enum kt_op_result kt_ops_rotate(struct kt_ops *ops, const struct kt_request *r,
				struct json_object **answer)
{
	const char *name = kt_json_str(r->req, "secret");
	char shown[160];
	int rc;

	if (name == NULL || name[0] == '\0') {
		*answer = kt_proto_error(KT_PERR_BAD_REQUEST,
					 "\"secret\" must be a non-empty string");
		return KT_OP_ANSWER;
	}
	kt_json_printable(name, shown, sizeof(shown));
	rc = ops->env.rotate != NULL ? ops->env.rotate(ops->env.ctx, name, r->conn_id) : -ENOENT;
	log_audit("access", rc == 0, "op=rotate secret=%s uid=%lu pid=%ld result=%s", shown,
		  (unsigned long)r->peer->uid, (long)r->peer->pid,
		  rc == 0         ? "allowed"
		  : rc == -ENOENT ? "not_found"
				  : "error");
	if (rc == -ENOENT) {
		*answer = kt_proto_error(KT_PERR_NOT_FOUND,
					 "%s: no [rotate:%s] section in the configuration", shown,
					 shown);
		return KT_OP_ANSWER;
	}
	if (rc < 0) {
		*answer = kt_proto_error(KT_PERR_INTERNAL, "%s: %s", shown, strerror(-rc));
		return KT_OP_ANSWER;
	}
	return KT_OP_PARKED;
}
