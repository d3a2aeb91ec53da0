/* json-c helpers that wipe json-c's copies of secret-bearing documents. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <json-c/json.h>

#include "kt_json.h"
#include "secmem.h"

struct json_object *kt_json_parse(const char *text, size_t len)
{
	struct json_tokener *tok;
	struct json_object *obj = NULL;
	size_t used;

	if (len > 0x7fffffff)
		return NULL;
	tok = json_tokener_new();
	if (tok == NULL)
		return NULL;
	/* JSON is UTF-8; anything else would be passed on to logs and answers. */
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
		goto fail;
	/* Trailing white space is fine, anything else means the text was not
	 * one JSON document. */
	used = json_tokener_get_parse_end(tok);
	for (; used < len; used++) {
		if (strchr(" \t\r\n", text[used]) == NULL || text[used] == '\0')
			goto fail;
	}
	goto out;
fail:
	kt_json_put_wiped(obj);
	obj = NULL;
out:
	/* The tokener accumulates string values in its printbuf. */
	if (tok->pb != NULL && tok->pb->buf != NULL)
		kt_wipe(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
	return obj;
}

static void json_wipe(struct json_object *obj)
{
	size_t n;

	switch (json_object_get_type(obj)) {
	case json_type_string:
		/* json-c hands out a const pointer to storage the object owns;
		 * overwriting it just before the object is freed is safe. */
		kt_wipe((char *)json_object_get_string(obj),
			(size_t)json_object_get_string_len(obj));
		break;
	case json_type_array:
		n = json_object_array_length(obj);
		for (size_t i = 0; i < n; i++)
			json_wipe(json_object_array_get_idx(obj, i));
		break;
	case json_type_object: {
		json_object_object_foreach(obj, key, val) {
			(void)key;
			json_wipe(val);
		}
		break;
	}
	default:
		break;
	}
}

void kt_json_put_wiped(struct json_object *obj)
{
	if (obj == NULL)
		return;
	json_wipe(obj);
	json_object_put(obj);
}

char *kt_json_dump(struct json_object *obj, size_t *len)
{
	size_t n = 0;
	const char *s = json_object_to_json_string_length(obj,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	char *copy;

	if (s == NULL)
		return NULL;
	copy = kt_strndup(s, n);
	/* The serialisation stays cached in obj until it is freed; wipe it now. */
	kt_wipe((char *)s, n);
	if (len != NULL)
		*len = n;
	return copy;
}

#define SWAR_ONES 0x0101010101010101ULL
#define SWAR_HIGHS 0x8080808080808080ULL

/* Whether any of the eight bytes in w is below 0x20, '"' or '\\': the bytes
 * a JSON string must escape (the classic "has less than" and "has byte"
 * word tricks, exact for these values). */
static bool word_needs_escape(uint64_t w)
{
	uint64_t lt = (w - SWAR_ONES * 0x20) & ~w;
	uint64_t q = w ^ (SWAR_ONES * '"'), b = w ^ (SWAR_ONES * '\\');

	lt |= (q - SWAR_ONES) & ~q;
	lt |= (b - SWAR_ONES) & ~b;
	return (lt & SWAR_HIGHS) != 0;
}

int kt_json_append_string(struct kt_buf *out, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t run = 0;
	int rc = kt_buf_append(out, "\"", 1);

	/* Copies runs of plain bytes in one go; only the few that JSON
	 * requires are escaped. Values are scanned a word at a time: this is
	 * the hot path of every cache hit. */
	for (size_t i = 0; rc == 0 && i < n; i++) {
		unsigned char c;
		char esc[6];
		size_t elen = 2;

		while (i + 8 <= n) {
			uint64_t w;

			memcpy(&w, s + i, 8);
			if (word_needs_escape(w))
				break;
			i += 8;
		}
		if (i >= n)
			break;
		c = (unsigned char)s[i];
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		rc = kt_buf_append(out, s + run, i - run);
		run = i + 1;
		esc[0] = '\\';
		switch (c) {
		case '"': esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 0xf];
			elen = 6;
		}
		if (rc == 0)
			rc = kt_buf_append(out, esc, elen);
		kt_wipe(esc, sizeof(esc));
	}
	if (rc == 0)
		rc = kt_buf_append(out, s + run, n - run);
	if (rc == 0)
		rc = kt_buf_append(out, "\"", 1);
	return rc;
}

const char *kt_json_str(struct json_object *obj, const char *key)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	s = json_object_get_string(v);
	/* "a\u0000b" would read as "a" to every C caller: not that string. */
	if (strlen(s) != (size_t)json_object_get_string_len(v))
		return NULL;
	return s;
}

char *kt_json_printable(const char *s, char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	for (; s != NULL && *s != '\0' && o + 5 < outlen; s++) {
		unsigned char c = (unsigned char)*s;

		if (c < 0x20 || c >= 0x7f || c == '\\') {
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 0xf];
		} else {
			out[o++] = (char)c;
		}
	}
	if (s != NULL && *s != '\0' && o + 3 < outlen) {
		out[o++] = '.';
		out[o++] = '.';
		out[o++] = '.';
	}
	out[o] = '\0';
	return out;
}

bool kt_json_bool(struct json_object *obj, const char *key, bool *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_boolean))
		return false;
	*out = json_object_get_boolean(v);
	return true;
}

bool kt_json_int64(struct json_object *obj, const char *key, long long *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = (long long)json_object_get_int64(v);
	return true;
}

bool kt_json_time(struct json_object *obj, const char *key, long long *out)
{
	struct json_object *v;
	double d;

	if (!json_object_object_get_ex(obj, key, &v))
		return false;
	if (json_object_is_type(v, json_type_int)) {
		*out = (long long)json_object_get_int64(v);
		return true;
	}
	if (!json_object_is_type(v, json_type_double))
		return false;
	d = json_object_get_double(v);
	if (!isfinite(d) || d < 0 || d > 1e12)
		return false;
	*out = (long long)d;
	return true;
}
