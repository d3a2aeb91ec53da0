/* The answers of get, refresh and list (answer.c), and the members they
 * carry, in one place: ops.c decides, this encodes. */
#ifndef KT_ANSWER_H
#define KT_ANSWER_H

#include <stdbool.h>
#include <time.h>

#include <json-c/json.h>

#include "aws/awserr.h"
#include "cache.h"
#include "common/kt_buf.h"

/* {"ok":true}, to which an answer adds its members; NULL on ENOMEM. */
struct json_object *kt_answer_ok(void);

/* The protocol's error for an AWS failure about secret name. */
struct json_object *kt_answer_aws_failure(const char *name, const struct aws_error *err);

/* Adds "aws":{"class","type","status"} to an error answer: what AWS said
 * (status 0 when no answer came), for doors that pass AWS's errors on.
 * Nothing for AWS_OK. */
void kt_answer_add_aws(struct json_object *answer, enum aws_errc code, const char *type,
		       long status);
/* The same from e's last failure (cache.h last_aws_*). */
void kt_answer_add_entry_aws(struct json_object *answer, const struct kt_entry *e);

/* A get answer for version v of e: the whole value, or the JSON member key
 * of it (an error answer when v is not a JSON object or has no such
 * string member). */
struct json_object *kt_answer_value(const struct kt_entry *e, const struct kt_value *v,
				    const char *key, bool stale);

/* Appends a framed get answer for v (no key) to out without building
 * json-c objects: the same members, in the same order, as kt_answer_value.
 * 0, or -ENOMEM / -EMSGSIZE with out as it was. */
int kt_answer_write_hit(struct kt_buf *out, const struct kt_entry *e, const struct kt_value *v,
			bool stale);

/* A list entry (and a refresh answer's body): e's metadata, never a value.
 * now is on the schedule clock. */
struct json_object *kt_answer_metadata(const struct kt_entry *e, time_t now, long max_stale);

#endif
