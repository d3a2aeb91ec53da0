/* json-c helpers that wipe json-c's copies of secret-bearing documents. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "kt_json.h"
#include "secmem.h"

/* As deep as json-c's tokener goes by default: it refuses anything deeper,
 * and the strict scanner below recurses no further. */
#define STRICT_MAX_DEPTH 32

/* The strict scanner's state: where it is in the text, and the number of
 * members of each object met so far, in document order. */
struct strict {
	const unsigned char *p, *end;
	uint32_t *counts;
	size_t ncounts, cap;
};

static int scan_value(struct strict *s, int depth);

static void skip_ws(struct strict *s)
{
	while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
		s->p++;
}

/* One UTF-8 sequence of two to four bytes starting at p (lead byte c), as
 * Unicode's table 3-7 has them: no overlong form, no surrogate, nothing
 * above U+10FFFF. json-c's own check lets all three through. Returns its
 * length, or 0 when it is not well formed. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t n;

	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++) {
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	}
	return n;
}

/* Four hex digits of a \u escape. Returns the code unit or -1. */
static long hex4(const unsigned char *p, const unsigned char *end)
{
	long v = 0;

	if (end - p < 4)
		return -1;
	for (int i = 0; i < 4; i++) {
		unsigned char c = p[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= c - '0';
		else if (c >= 'a' && c <= 'f')
			v |= c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			v |= c - 'A' + 10;
		else
			return -1;
	}
	return v;
}

/* A string: raw control characters, unknown escapes and lone surrogates
 * (escaped or not) are refused. A member name may not hold \u0000: json-c
 * keeps names as C strings, so "match\u0000x" would become "match". */
static int scan_string(struct strict *s, bool key)
{
	if (s->p >= s->end || *s->p != '"')
		return -EBADMSG;
	s->p++;
	while (s->p < s->end) {
		unsigned char c = *s->p;
		size_t n;
		long u, lo;

		if (c == '"') {
			s->p++;
			return 0;
		}
		if (c < 0x20)
			return -EBADMSG;
		if (c < 0x80 && c != '\\') {
			s->p++;
			continue;
		}
		if (c >= 0x80) {
			n = utf8_seq(s->p, s->end);
			if (n == 0)
				return -EBADMSG;
			s->p += n;
			continue;
		}
		if (s->end - s->p < 2)
			return -EBADMSG;
		c = s->p[1];
		if (c != 'u') {
			if (strchr("\"\\/bfnrt", c) == NULL || c == '\0')
				return -EBADMSG;
			s->p += 2;
			continue;
		}
		u = hex4(s->p + 2, s->end);
		if (u < 0 || (key && u == 0) || (u >= 0xdc00 && u <= 0xdfff))
			return -EBADMSG;
		s->p += 6;
		if (u < 0xd800 || u > 0xdbff)
			continue;
		/* A high surrogate must be followed by an escaped low one. */
		if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u')
			return -EBADMSG;
		lo = hex4(s->p + 2, s->end);
		if (lo < 0xdc00 || lo > 0xdfff)
			return -EBADMSG;
		s->p += 6;
	}
	return -EBADMSG;
}

static size_t digits(struct strict *s)
{
	const unsigned char *start = s->p;

	while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
		s->p++;
	return (size_t)(s->p - start);
}

/* RFC 8259's number: no leading zero, no bare '.', no NaN or Infinity
 * (which json-c takes even in strict mode). */
static int scan_number(struct strict *s)
{
	if (s->p < s->end && *s->p == '-')
		s->p++;
	if (s->p < s->end && *s->p == '0')
		s->p++;
	else if (digits(s) == 0)
		return -EBADMSG;
	if (s->p < s->end && *s->p == '.') {
		s->p++;
		if (digits(s) == 0)
			return -EBADMSG;
	}
	if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
		s->p++;
		if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
			s->p++;
		if (digits(s) == 0)
			return -EBADMSG;
	}
	return 0;
}

static int scan_literal(struct strict *s, const char *word)
{
	size_t n = strlen(word);

	if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
		return -EBADMSG;
	s->p += n;
	return 0;
}

static int scan_object(struct strict *s, int depth)
{
	size_t slot = s->ncounts;
	int rc;

	if (s->ncounts == s->cap) {
		size_t cap = s->cap > 0 ? s->cap * 2 : 16;
		uint32_t *c = realloc(s->counts, cap * sizeof(*c));

		if (c == NULL)
			return -ENOMEM;
		s->counts = c;
		s->cap = cap;
	}
	s->counts[s->ncounts++] = 0;
	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == '}') {
		s->p++;
		return 0;
	}
	for (;;) {
		skip_ws(s);
		if ((rc = scan_string(s, true)) < 0)
			return rc;
		skip_ws(s);
		if (s->p >= s->end || *s->p != ':')
			return -EBADMSG;
		s->p++;
		if ((rc = scan_value(s, depth + 1)) < 0)
			return rc;
		/* A frame is at most a few MiB: no count comes near 2^32. */
		s->counts[slot]++;
		skip_ws(s);
		if (s->p < s->end && *s->p == '}') {
			s->p++;
			return 0;
		}
		if (s->p >= s->end || *s->p != ',')
			return -EBADMSG;
		s->p++;
	}
}

static int scan_array(struct strict *s, int depth)
{
	int rc;

	s->p++;
	skip_ws(s);
	if (s->p < s->end && *s->p == ']') {
		s->p++;
		return 0;
	}
	for (;;) {
		if ((rc = scan_value(s, depth + 1)) < 0)
			return rc;
		skip_ws(s);
		if (s->p < s->end && *s->p == ']') {
			s->p++;
			return 0;
		}
		if (s->p >= s->end || *s->p != ',')
			return -EBADMSG;
		s->p++;
	}
}

static int scan_value(struct strict *s, int depth)
{
	if (depth > STRICT_MAX_DEPTH)
		return -EBADMSG;
	skip_ws(s);
	if (s->p >= s->end)
		return -EBADMSG;
	switch (*s->p) {
	case '{':
		return scan_object(s, depth);
	case '[':
		return scan_array(s, depth);
	case '"':
		return scan_string(s, false);
	case 't':
		return scan_literal(s, "true");
	case 'f':
		return scan_literal(s, "false");
	case 'n':
		return scan_literal(s, "null");
	default:
		return scan_number(s);
	}
}

/* Compares json-c's tree with the member counts of the text, objects in
 * the same (document) order: json-c keeps only the last of two members of
 * the same name, so an object that holds fewer members than its text had
 * a duplicate. The first such object is met before anything inside it. */
static bool same_counts(struct json_object *o, const struct strict *s, size_t *i)
{
	size_t n;

	switch (json_object_get_type(o)) {
	case json_type_object:
		if (*i >= s->ncounts ||
		    (size_t)json_object_object_length(o) != (size_t)s->counts[*i])
			return false;
		(*i)++;
		{
			json_object_object_foreach(o, key, val) {
				(void)key;
				if (!same_counts(val, s, i))
					return false;
			}
		}
		return true;
	case json_type_array:
		n = json_object_array_length(o);
		for (size_t k = 0; k < n; k++) {
			if (!same_counts(json_object_array_get_idx(o, k), s, i))
				return false;
		}
		return true;
	default:
		return true;
	}
}

struct json_object *kt_json_parse(const char *text, size_t len)
{
	struct strict s = { .p = (const unsigned char *)text,
			    .end = (const unsigned char *)text + len };
	struct json_tokener *tok = NULL;
	struct json_object *obj = NULL;
	size_t used, i = 0;

	if (text == NULL || len > 0x7fffffff)
		return NULL;
	/* Every frame is read by this grammar first (RFC 8259, strict UTF-8,
	 * one value and white space around it): json-c's strict mode still
	 * takes single quotes, NaN, raw control characters in strings and
	 * overlong UTF-8, and silently keeps the last of duplicate members. */
	if (scan_value(&s, 1) < 0)
		goto fail;
	skip_ws(&s);
	if (s.p != s.end)
		goto fail;
	tok = json_tokener_new();
	if (tok == NULL)
		goto fail;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	/* A number alone ("12") is not over until json-c sees what follows
	 * it: the end of the text is its end, as json_tokener_parse() has it. */
	if (obj == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
		obj = json_tokener_parse_ex(tok, "", 1);
		if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
			goto fail;
	} else {
		if (obj == NULL || json_tokener_get_error(tok) != json_tokener_success)
			goto fail;
		/* Trailing white space is fine, anything else means the text
		 * was not one JSON document. */
		used = json_tokener_get_parse_end(tok);
		for (; used < len; used++) {
			if (strchr(" \t\r\n", text[used]) == NULL || text[used] == '\0')
				goto fail;
		}
	}
	if (!same_counts(obj, &s, &i) || i != s.ncounts)
		goto fail;
	goto out;
fail:
	kt_json_put_wiped(obj);
	obj = NULL;
out:
	free(s.counts);
	/* The tokener accumulates string values in its printbuf. */
	if (tok != NULL && tok->pb != NULL && tok->pb->buf != NULL)
		kt_wipe(tok->pb->buf, (size_t)tok->pb->size);
	if (tok != NULL)
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
	const char *s = json_object_to_json_string_length(
		obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
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
		case '"':
			esc[1] = '"';
			break;
		case '\\':
			esc[1] = '\\';
			break;
		case '\b':
			esc[1] = 'b';
			break;
		case '\f':
			esc[1] = 'f';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
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

bool kt_json_opt_str(struct json_object *obj, const char *key, bool allow_empty, const char **out)
{
	struct json_object *v;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return true;
	*out = kt_json_str(obj, key);
	return *out != NULL && (allow_empty || (*out)[0] != '\0');
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
