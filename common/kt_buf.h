/* A growable byte buffer that knows its limit (in the manner of curl's dynbuf).
 * Every buffer is treated as if it held a secret: old storage is wiped when the
 * buffer grows and when it is freed, so callers never have to decide. */
#ifndef KT_BUF_H
#define KT_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct kt_buf {
	char *data; /* always NUL-terminated when non-NULL */
	size_t len; /* bytes used, not counting the terminator */
	size_t cap; /* bytes allocated */
	size_t max; /* largest len allowed */
};

#define KT_BUF_INIT(maxlen)          \
	{                            \
		NULL, 0, 0, (maxlen) \
	}

void kt_buf_init(struct kt_buf *b, size_t max);

/* Appends n bytes. Returns 0, -E2BIG past the limit, or -ENOMEM. */
int kt_buf_append(struct kt_buf *b, const void *p, size_t n);
int kt_buf_append_str(struct kt_buf *b, const char *s);
int kt_buf_printf(struct kt_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int kt_buf_vprintf(struct kt_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* Makes room for n more bytes (and the terminator), allocating exactly
 * that much when the buffer must grow: for a reader that knows how long a
 * frame is and must not hold more. Returns 0, -E2BIG or -ENOMEM. */
int kt_buf_reserve(struct kt_buf *b, size_t n);

/* The contents as a C string ("" for an empty buffer). */
const char *kt_buf_str(const struct kt_buf *b);

/* Hands the storage to the caller (who must wipe and free it); b becomes empty. */
char *kt_buf_steal(struct kt_buf *b, size_t *len);

/* Shortens the contents to len bytes (no-op when already shorter); the
 * dropped bytes are wiped. */
void kt_buf_truncate(struct kt_buf *b, size_t len);

/* Removes the first n bytes (all when n >= len), moving the rest to the
 * front; the vacated tail is wiped. */
void kt_buf_consume(struct kt_buf *b, size_t n);

/* Wipes the contents but keeps the storage. */
void kt_buf_reset(struct kt_buf *b);

/* Wipes and frees the storage. */
void kt_buf_free(struct kt_buf *b);

#endif
