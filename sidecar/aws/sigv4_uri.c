/* SigV4's canonical URI and query (sigv4_int.h): percent-encoding as AWS
 * specifies it, path normalisation, and query parameters sorted by key and
 * value. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/secmem.h"
#include "sigv4_int.h"

/* One query parameter, both halves already in canonical (encoded) form. */
struct query_param {
	char *key;
	char *value;
};

static bool is_unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '.' || c == '_' || c == '~';
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Appends n bytes of s percent-encoded: unreserved characters stay, and so
 * does '/' with ENC_KEEP_SLASH; everything else becomes %XX in upper case.
 * Clients send query parts encoded or not, so ENC_DECODE decodes them first
 * and the result is the same either way; a path keeps its '%' as "%25",
 * which is the double encoding every service but S3 expects. */
int sigv4_uri_encode(struct kt_buf *out, const char *s, size_t n, int flags)
{
	static const char digits[] = "0123456789ABCDEF";
	char esc[3] = { '%' };
	size_t i;
	int rc = 0;

	for (i = 0; i < n && rc == 0; i++) {
		unsigned char c = (unsigned char)s[i];

		if ((flags & ENC_DECODE) && c == '%' && i + 2 < n && hex_value(s[i + 1]) >= 0 &&
		    hex_value(s[i + 2]) >= 0) {
			c = (unsigned char)(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2]));
			i += 2;
		}
		if (is_unreserved(c) || ((flags & ENC_KEEP_SLASH) && c == '/')) {
			rc = kt_buf_append(out, &c, 1);
		} else {
			esc[1] = digits[c >> 4];
			esc[2] = digits[c & 0x0f];
			rc = kt_buf_append(out, esc, 3);
		}
	}
	return rc;
}

/* Drops the last "/segment" that sigv4_normalize_path() appended. */
static void buf_drop_segment(struct kt_buf *b)
{
	char *slash = b->data != NULL ? strrchr(b->data, '/') : NULL;

	if (slash == NULL)
		return;
	kt_buf_truncate(b, (size_t)(slash - b->data));
}

/* Removes "." and ".." segments and empty segments (repeated slashes), as
 * every AWS service but S3 expects. The result keeps a trailing slash when
 * the input had one and something is left besides the root. */
int sigv4_normalize_path(const char *path, struct kt_buf *out)
{
	const char *p = path, *end;
	size_t n, plen = strlen(path);
	int rc = 0;

	while (*p != '\0' && rc == 0) {
		end = strchr(p, '/');
		n = end != NULL ? (size_t)(end - p) : strlen(p);
		if (n == 2 && p[0] == '.' && p[1] == '.') {
			buf_drop_segment(out);
		} else if (n > 0 && !(n == 1 && p[0] == '.')) {
			rc = kt_buf_append(out, "/", 1);
			if (rc == 0)
				rc = kt_buf_append(out, p, n);
		}
		p += n;
		if (*p == '/')
			p++;
	}
	if (rc == 0 && (out->len == 0 || (plen > 0 && path[plen - 1] == '/')))
		rc = kt_buf_append(out, "/", 1);
	return rc;
}

int sigv4_canonical_uri(const char *path, bool normalize, struct kt_buf *cr)
{
	struct kt_buf norm = KT_BUF_INIT(SIGV4_TEXT_MAX);
	int rc;

	if (path == NULL || path[0] == '\0')
		path = "/";
	if (path[0] != '/')
		return -EINVAL;
	if (!normalize)
		return sigv4_uri_encode(cr, path, strlen(path), ENC_KEEP_SLASH);
	rc = sigv4_normalize_path(path, &norm);
	if (rc == 0)
		rc = sigv4_uri_encode(cr, kt_buf_str(&norm), norm.len, ENC_KEEP_SLASH);
	kt_buf_free(&norm);
	return rc;
}

static int query_cmp(const void *a, const void *b)
{
	const struct query_param *x = a, *y = b;
	int c = strcmp(x->key, y->key);

	return c != 0 ? c : strcmp(x->value, y->value);
}

/* Appends the query as "k=v&k=v", each half canonical, sorted by key and then
 * value; a parameter without '=' gets an empty value. */
int sigv4_canonical_query(const char *query, struct kt_buf *cr)
{
	struct query_param *params = NULL;
	struct kt_buf part = KT_BUF_INIT(SIGV4_TEXT_MAX);
	const char *p, *amp, *eq;
	size_t i, n = 0, cap = 1, len, klen;
	int rc = 0;

	if (query == NULL || query[0] == '\0')
		return 0;
	for (p = query; *p != '\0'; p++)
		cap += *p == '&';
	params = calloc(cap, sizeof(*params));
	if (params == NULL)
		return -ENOMEM;
	for (p = query; rc == 0 && *p != '\0'; p += len + (p[len] == '&')) {
		amp = strchr(p, '&');
		len = amp != NULL ? (size_t)(amp - p) : strlen(p);
		if (len == 0)
			continue;
		eq = memchr(p, '=', len);
		klen = eq != NULL ? (size_t)(eq - p) : len;
		rc = sigv4_uri_encode(&part, p, klen, ENC_DECODE);
		if (rc == 0)
			params[n].key = kt_buf_steal(&part, NULL);
		if (rc == 0 && eq != NULL)
			rc = sigv4_uri_encode(&part, eq + 1, len - klen - 1, ENC_DECODE);
		if (rc == 0)
			params[n].value = kt_buf_steal(&part, NULL);
		if (rc == 0 && (params[n].key == NULL || params[n].value == NULL))
			rc = -ENOMEM;
		n++;
	}
	if (rc != 0)
		goto out;
	qsort(params, n, sizeof(*params), query_cmp);
	for (i = 0; i < n && rc == 0; i++)
		rc = kt_buf_printf(cr, "%s%s=%s", i > 0 ? "&" : "", params[i].key, params[i].value);
out:
	for (i = 0; i < n; i++) {
		kt_str_free_wiped(params[i].key);
		kt_str_free_wiped(params[i].value);
	}
	free(params);
	kt_buf_free(&part);
	return rc;
}
