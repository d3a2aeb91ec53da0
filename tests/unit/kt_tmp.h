/* Scratch names for unit tests: a prefix made the mkstemp(3)/mkdtemp(3)
 * way, followed by the six characters those calls replace. */
#ifndef KT_TMP_H
#define KT_TMP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static inline void kt_tmp_name(char *buf, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static inline void kt_tmp_name(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	size_t n;
	int w;

	va_start(ap, fmt);
	w = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	n = w < 0 ? 0 : (size_t)w;
	if (n + 6 < len) {
		memset(buf + n, 'X', 6);
		buf[n + 6] = '\0';
	}
}

#endif
