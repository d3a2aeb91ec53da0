/* Growable, limited byte buffer whose old storage is always wiped. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kt_buf.h"
#include "secmem.h"

void kt_buf_init(struct kt_buf *b, size_t max)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	b->max = max;
}

/* Makes room for need more bytes plus the terminator: exactly that much
 * when exact, else by doubling. realloc() is not used because it may leave
 * a copy of the old contents in freed memory. */
static int buf_grow(struct kt_buf *b, size_t need, bool exact)
{
	size_t want, ncap;
	char *n;

	if (need > b->max - b->len)
		return -E2BIG;
	want = b->len + need + 1;
	if (want <= b->cap)
		return 0;
	ncap = exact ? want : b->cap ? b->cap : 64;
	while (ncap < want)
		ncap = ncap > ((size_t)-1) / 2 ? want : ncap * 2;
	n = malloc(ncap);
	if (n == NULL)
		return -ENOMEM;
	if (b->data != NULL) {
		memcpy(n, b->data, b->len + 1);
		kt_free_wiped(b->data, b->cap);
	} else {
		n[0] = '\0';
	}
	b->data = n;
	b->cap = ncap;
	return 0;
}

static int buf_reserve(struct kt_buf *b, size_t need)
{
	return buf_grow(b, need, false);
}

int kt_buf_reserve(struct kt_buf *b, size_t n)
{
	return buf_grow(b, n, true);
}

int kt_buf_append(struct kt_buf *b, const void *p, size_t n)
{
	int rc = buf_reserve(b, n);

	if (rc < 0)
		return rc;
	if (n > 0)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return 0;
}

int kt_buf_append_str(struct kt_buf *b, const char *s)
{
	return kt_buf_append(b, s, strlen(s));
}

int kt_buf_vprintf(struct kt_buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n, rc;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0)
		return -EINVAL;
	rc = buf_reserve(b, (size_t)n);
	if (rc < 0)
		return rc;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int kt_buf_printf(struct kt_buf *b, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = kt_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return rc;
}

const char *kt_buf_str(const struct kt_buf *b)
{
	return b->data != NULL ? b->data : "";
}

char *kt_buf_steal(struct kt_buf *b, size_t *len)
{
	char *d = b->data;

	if (d == NULL)
		d = kt_strdup("");
	if (len != NULL)
		*len = b->len;
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
	return d;
}

void kt_buf_truncate(struct kt_buf *b, size_t len)
{
	if (b->data == NULL || len >= b->len)
		return;
	kt_wipe(b->data + len, b->len - len);
	b->len = len;
	b->data[len] = '\0';
}

void kt_buf_consume(struct kt_buf *b, size_t n)
{
	if (b->data == NULL)
		return;
	if (n >= b->len) {
		kt_buf_reset(b);
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	kt_wipe(b->data + b->len - n, n);
	b->len -= n;
	b->data[b->len] = '\0';
}

void kt_buf_reset(struct kt_buf *b)
{
	/* Only the contents: nothing past len ever holds what was written
	 * (every shortening wipes what it drops), and a reader's buffer is
	 * reset once a request, so wiping its whole capacity each time
	 * was most of a cache hit's memset. */
	if (b->data != NULL) {
		kt_wipe(b->data, b->len);
		b->data[0] = '\0';
	}
	b->len = 0;
}

void kt_buf_free(struct kt_buf *b)
{
	kt_free_wiped(b->data, b->cap);
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}
