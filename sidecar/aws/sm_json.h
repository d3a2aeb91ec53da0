/* JSON helpers for the Secrets Manager operations (private to sm.c): typed
 * reads that tell an absent field from a mistyped one, request building, and
 * pagination that no server answer can turn into an endless loop. */
#ifndef KT_SM_JSON_H
#define KT_SM_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "awserr.h"

#define SM_MAX_PAGES 100

/* Sets err for an answer that could not be read: -ENOMEM, or -EBADMSG for
 * an answer whose `field` is missing or of the wrong type. Returns rc. */
int smj_answer_error(int rc, struct aws_error *err, const char *op, const char *field);

/* Add a member (nothing for a NULL string); false on allocation failure. */
bool smj_add_str(struct json_object *o, const char *key, const char *v);
bool smj_add_bool(struct json_object *o, const char *key, bool v);

/* Copy a string member: _opt leaves *out NULL when absent, _req makes that
 * -EBADMSG; a member of another type is -EBADMSG for both. */
int smj_dup_opt(struct json_object *o, const char *key, char **out);
int smj_dup_req(struct json_object *o, const char *key, char **out);

/* Copy an array of strings (the array itself, or member key of o; an
 * absent member is an empty list). */
int smj_str_array_copy(struct json_object *a, char ***out, size_t *n);
int smj_dup_str_array(struct json_object *o, const char *key, char ***out, size_t *n);
void smj_free_str_array(char **a, size_t n);

/* Takes a page's NextToken into *next, NULL at the end. sent is the token
 * that asked for this page; *pages counts pages. */
int smj_next_page(struct json_object *resp, char **next, const char *sent, int *pages);

/* A random version 4 UUID. */
int smj_make_uuid(char out[37]);

#endif
