/* json-c helpers for documents that may carry secret values: json-c keeps
 * its own copies of the text, so these wipe every copy that can be reached
 * before json-c frees it. */
#ifndef KT_JSON_H
#define KT_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "kt_buf.h"

/* Parses text as exactly one JSON value with nothing but white space around
 * it, strictly (RFC 8259): no comments, single quotes, NaN, bare words or
 * raw control characters; well-formed UTF-8 only (no overlong form, no
 * surrogate, nothing above U+10FFFF; escaped surrogates only in pairs); no
 * two members of one object with the same name; no \u0000 in a name.
 * Wipes the parser's copy of the text. Returns NULL on any error. */
struct json_object *kt_json_parse(const char *text, size_t len);

/* Wipes every string inside obj, then releases it. The caller must hold the
 * last reference: json-c keeps no count it can be asked for. NULL is allowed. */
void kt_json_put_wiped(struct json_object *obj);

/* Serialises obj (plain, no escaping of '/') into a malloc'd string that the
 * caller frees with kt_str_free_wiped(); json-c's own buffer is wiped.
 * Returns NULL on allocation failure. */
char *kt_json_dump(struct json_object *obj, size_t *len);

/* Appends s (n bytes of UTF-8) as a JSON string literal, quotes included,
 * escaped as json-c does with JSON_C_TO_STRING_NOSLASHESCAPE. For answers
 * written without building json-c objects. Returns 0, -E2BIG or -ENOMEM. */
int kt_json_append_string(struct kt_buf *out, const char *s, size_t n);

/* Typed member lookups: NULL / false when absent or of another type. A
 * string holding a NUL byte counts as absent: C would read it shortened. */
const char *kt_json_str(struct json_object *obj, const char *key);

/* An optional string member: *out is NULL when absent or null. False when
 * present with another type, holding a NUL, or empty unless allow_empty. */
bool kt_json_opt_str(struct json_object *obj, const char *key, bool allow_empty, const char **out);

/* Copies a string from outside (a client, AWS) into out for a log line or a
 * message: control characters, non-ASCII bytes and backslashes as \xNN (so a
 * cut never splits a UTF-8 sequence), cut with "..." to fit. Returns out. */
char *kt_json_printable(const char *s, char *out, size_t outlen);
bool kt_json_bool(struct json_object *obj, const char *key, bool *out);
bool kt_json_int64(struct json_object *obj, const char *key, long long *out);

/* AWS timestamps are JSON numbers of epoch seconds (with a fraction). */
bool kt_json_time(struct json_object *obj, const char *key, long long *out);

#endif
