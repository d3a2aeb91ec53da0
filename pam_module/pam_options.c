/* pam_keyturn's module arguments, and the checks on what a login hands it.
 * An argument this file does not know is an error: a typo in a service file
 * must not quietly change how a login is checked (the module then fails
 * closed, see pam_keyturn.c). */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pam_options.h"

/* At most this much of a bad argument is quoted back. */
#define QUOTE_MAX 80

static int bad(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (errlen > 0) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

bool kt_pam_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char c = p[i];
		size_t len;
		uint32_t cp, min;

		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
			min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
			min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
			min = 0x10000;
		} else {
			return false;
		}
		if (n - i < len)
			return false;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += len;
	}
	return true;
}

bool kt_pam_user_valid(const char *user)
{
	if (user == NULL || *user == '\0')
		return false;
	for (const unsigned char *p = (const unsigned char *)user; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return false;
	}
	return kt_pam_utf8_valid(user, strlen(user));
}

const char *kt_pam_printable(const char *s, char *buf, size_t size)
{
	size_t i;

	if (size == 0)
		return "";
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < size; i++)
		buf[i] = s[i] >= 0x20 && s[i] < 0x7f ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}

/* A decimal number of milliseconds: digits only (no sign, no blanks, no
 * unit), in range. */
static int parse_timeout(const char *s, int *out)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno != 0 || v < KT_PAM_MIN_TIMEOUT_MS || v > KT_PAM_MAX_TIMEOUT_MS)
		return -ERANGE;
	*out = (int)v;
	return 0;
}

int kt_pam_opts_parse(struct kt_pam_opts *o, int argc, const char *const *argv, char *err,
		      size_t errlen)
{
	char q[QUOTE_MAX + 1];
	bool use_first = false, try_first = false;

	memset(o, 0, sizeof(*o));
	o->socket = KT_PAM_DEFAULT_SOCKET;
	o->timeout_ms = KT_PAM_DEFAULT_TIMEOUT_MS;
	o->pass = KT_PAM_PASS_DEFAULT;
	if (errlen > 0)
		err[0] = '\0';
	if (argc < 0 || (argc > 0 && argv == NULL))
		return bad(err, errlen, "no arguments to read");

	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (a == NULL)
			return bad(err, errlen, "argument %d is missing", i + 1);
		if (strcmp(a, "debug") == 0) {
			o->debug = true;
		} else if (strcmp(a, "use_first_pass") == 0) {
			use_first = true;
		} else if (strcmp(a, "try_first_pass") == 0) {
			try_first = true;
		} else if (strcmp(a, "ignore_unknown_user") == 0) {
			o->ignore_unknown_user = true;
		} else if (strcmp(a, "ignore_authinfo_unavail") == 0) {
			o->ignore_authinfo_unavail = true;
		} else if (strncmp(a, "socket=", 7) == 0) {
			const char *p = a + 7;

			if (*p != '/')
				return bad(err, errlen, "socket=%s: not an absolute path",
					   kt_pam_printable(p, q, sizeof(q)));
			if (strlen(p) > KT_PAM_MAX_SOCKET_LEN)
				return bad(err, errlen, "socket=%s...: longer than %d bytes",
					   kt_pam_printable(p, q, sizeof(q)),
					   KT_PAM_MAX_SOCKET_LEN);
			o->socket = p;
		} else if (strncmp(a, "timeout=", 8) == 0) {
			int rc = parse_timeout(a + 8, &o->timeout_ms);

			if (rc == -EINVAL)
				return bad(err, errlen, "timeout=%s: not a number of milliseconds",
					   kt_pam_printable(a + 8, q, sizeof(q)));
			if (rc < 0)
				return bad(err, errlen, "timeout=%s: out of range (%d to %d ms)",
					   kt_pam_printable(a + 8, q, sizeof(q)),
					   KT_PAM_MIN_TIMEOUT_MS, KT_PAM_MAX_TIMEOUT_MS);
		} else {
			return bad(err, errlen, "unknown option \"%s\"",
				   kt_pam_printable(a, q, sizeof(q)));
		}
	}
	/* The stricter one wins, as with pam_unix: a line that says
	 * use_first_pass anywhere never prompts. */
	if (use_first)
		o->pass = KT_PAM_PASS_USE_FIRST;
	else if (try_first)
		o->pass = KT_PAM_PASS_TRY_FIRST;
	return 0;
}
