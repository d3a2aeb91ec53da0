/* The error-message carrier: kt_errf fills a caller's buffer. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "common/err.h"

void kt_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
