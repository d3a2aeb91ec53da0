/* JSON helpers for the Secrets Manager operations: typed reads, request
 * building, pagination guards and idempotency tokens. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "common/secmem.h"
#include "sm_json.h"

/* Turns a failure to read an answer into an error: out of memory, or an
 * answer whose `field` is missing or of the wrong type. */
int smj_answer_error(int rc, struct aws_error *err, const char *op, const char *field)
{
	if (rc == -ENOMEM) {
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "out of memory");
		return rc;
	}
	aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer",
		      "%s answer: \"%s\" is missing or of the wrong type", op, field);
	return -EBADMSG;
}

/* Adds a string member; false on allocation failure. */
bool smj_add_str(struct json_object *o, const char *key, const char *v)
{
	struct json_object *s;

	if (v == NULL)
		return true;
	s = json_object_new_string(v);
	return s != NULL && json_object_object_add(o, key, s) == 0;
}

bool smj_add_bool(struct json_object *o, const char *key, bool v)
{
	struct json_object *b = json_object_new_boolean(v);

	return b != NULL && json_object_object_add(o, key, b) == 0;
}

/* Copies an optional string member: *out stays NULL when absent, but a
 * member of the wrong type is an error. */
int smj_dup_opt(struct json_object *o, const char *key, char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	/* A name, an ARN or a version id holding \u0000 would be read short
	 * by every C caller: not that string. */
	if (!json_object_is_type(v, json_type_string) ||
	    strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v))
		return -EBADMSG;
	*out = kt_strdup(json_object_get_string(v));
	return *out != NULL ? 0 : -ENOMEM;
}

int smj_dup_req(struct json_object *o, const char *key, char **out)
{
	int rc = smj_dup_opt(o, key, out);

	return rc == 0 && *out == NULL ? -EBADMSG : rc;
}

/* Copies a JSON array of strings. */
int smj_str_array_copy(struct json_object *a, char ***out, size_t *n)
{
	size_t len;

	*out = NULL;
	*n = 0;
	if (!json_object_is_type(a, json_type_array))
		return -EBADMSG;
	len = json_object_array_length(a);
	*out = calloc(len + 1, sizeof(char *));
	if (*out == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++) {
		struct json_object *s = json_object_array_get_idx(a, i);

		if (!json_object_is_type(s, json_type_string) ||
		    strlen(json_object_get_string(s)) != (size_t)json_object_get_string_len(s))
			return -EBADMSG;
		(*out)[i] = kt_strdup(json_object_get_string(s));
		if ((*out)[i] == NULL)
			return -ENOMEM;
		(*n)++;
	}
	return 0;
}

/* Copies the array member key; an absent member gives an empty list. */
int smj_dup_str_array(struct json_object *o, const char *key, char ***out, size_t *n)
{
	struct json_object *a;

	*out = NULL;
	*n = 0;
	if (!json_object_object_get_ex(o, key, &a))
		return 0;
	return smj_str_array_copy(a, out, n);
}

void smj_free_str_array(char **a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

/* Takes the NextToken of a page into *next (NULL at the last page). An empty
 * token ends the listing too (moto sends ""), and a token that repeats the
 * one just sent, or a listing past SM_MAX_PAGES pages, is a malformed answer:
 * no server reply may keep a caller paging forever. */
int smj_next_page(struct json_object *resp, char **next, const char *sent, int *pages)
{
	int rc = smj_dup_opt(resp, "NextToken", next);

	if (rc < 0)
		return rc;
	if (*next != NULL && (*next)[0] == '\0') {
		free(*next);
		*next = NULL;
	}
	if (*next != NULL &&
	    ((sent != NULL && strcmp(*next, sent) == 0) || ++*pages >= SM_MAX_PAGES)) {
		free(*next);
		*next = NULL;
		return -EBADMSG;
	}
	return 0;
}

/* A random UUID (version 4), for ClientRequestToken. */
int smj_make_uuid(char out[37])
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -EIO;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}
