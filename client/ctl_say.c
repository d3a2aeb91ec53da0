/* keyturnctl's complaints (ctl_say.h). */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include "ctl_say.h"

void kt_ctl_say(const char *what, const char *fmt, ...)
{
	char msg[1024], line[1200];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (what != NULL)
		snprintf(line, sizeof(line), "keyturnctl: %s: %s", what, msg);
	else
		snprintf(line, sizeof(line), "keyturnctl: %s", msg);
	for (char *c = line; *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	}
	fflush(stdout);
	fprintf(stderr, "%s\n", line);
}

int kt_ctl_usage(const char *what, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	kt_ctl_say(what, "%s", msg);
	fprintf(stderr, "Try 'keyturnctl%s%s --help'.\n", what != NULL ? " " : "",
		what != NULL ? what : "");
	return 2;
}

int kt_ctl_perr_exit(enum kt_proto_err e)
{
	switch (e) {
	case KT_PERR_NOT_FOUND:
		return 3;
	case KT_PERR_DENIED:
		return 4;
	case KT_PERR_UNAVAILABLE:
	case KT_PERR_THROTTLED:
		return 5;
	default:
		return 1;
	}
}
