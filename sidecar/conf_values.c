/* Value checks of keyturnd's configuration, and the %H/%u expansion of
 * [login:] secrets. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "conf_values.h"

#define MAX_NSS_BUF (1024 * 1024)

bool conf_is_word(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		if (*s < 0x21 || *s > 0x7e)
			return false;
	}
	return true;
}

/* Characters a %H or %u substitution may bring into a SecretId: those AWS
 * allows in secret names, minus '/', so one account or host cannot reach
 * into another part of the name hierarchy. */
bool conf_is_name_part(const char *s)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789_+=.@-";

	return s != NULL && *s != '\0' && strcmp(s, ".") != 0 && strcmp(s, "..") != 0 &&
	       strspn(s, ok) == strlen(s);
}

int conf_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0 || strcasecmp(v, no[i]) == 0) {
			*out = strcasecmp(v, yes[i]) == 0;
			return 0;
		}
	}
	return -EINVAL;
}

/* Decimal only: "010" is ten, and "0x10", "10s" or "+5" are refused rather
 * than read in some way the operator did not mean. */
int conf_parse_long(const char *v, long min, long max, long *out)
{
	char *end = NULL;
	long n;

	if (!((*v >= '0' && *v <= '9') || *v == '-'))
		return -EINVAL;
	errno = 0;
	n = strtol(v, &end, 10);
	if (end == v || *end != '\0')
		return -EINVAL;
	if (errno == ERANGE || n < min || n > max)
		return -ERANGE;
	*out = n;
	return 0;
}

int conf_parse_size(const char *v, long min, long max, long *out)
{
	char *end = NULL;
	unsigned long long n, unit = 1;

	if (!(*v >= '0' && *v <= '9'))
		return -EINVAL;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (end == v)
		return -EINVAL;
	if (*end == 'K' || *end == 'k')
		unit = 1024;
	else if (*end == 'M' || *end == 'm')
		unit = 1024 * 1024;
	if (unit != 1)
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || n > (unsigned long long)LONG_MAX / unit || (long)(n * unit) < min ||
	    (long)(n * unit) > max)
		return -ERANGE;
	*out = (long)(n * unit);
	return 0;
}

/* A name of only digits is taken as a numeric id without a lookup, so an
 * id without a passwd or group entry can still be allowed. Returns 0,
 * -ENOENT for no such name, or another negative errno. */
int conf_lookup_id(const char *name, bool group, uint32_t *id)
{
	struct passwd pw, *pwres = NULL;
	struct group gr, *grres = NULL;
	char *buf = NULL, *nb;
	size_t cap = 1024;
	long n;
	int r = 0, ret = -ENOENT;

	/* (uid_t)-1 means "no id" to chown and setreuid, never a caller. */
	if (strspn(name, "0123456789") == strlen(name)) {
		if (conf_parse_long(name, 0, (long)UINT32_MAX - 1, &n) == 0) {
			*id = (uint32_t)n;
			ret = 0;
		}
		goto out;
	}
	do {
		nb = realloc(buf, cap);
		if (nb == NULL) {
			ret = -ENOMEM;
			goto out;
		}
		buf = nb;
		if (group)
			r = getgrnam_r(name, &gr, buf, cap, &grres);
		else
			r = getpwnam_r(name, &pw, buf, cap, &pwres);
		cap *= 2;
	} while (r == ERANGE && cap <= MAX_NSS_BUF);
	/* glibc reports "no such name" as 0 with a NULL result, some NSS
	 * modules as ENOENT or ESRCH. */
	if (r == 0 && (grres != NULL || pwres != NULL)) {
		*id = group ? gr.gr_gid : pw.pw_uid;
		ret = 0;
	} else if (r != 0 && r != ENOENT && r != ESRCH) {
		ret = -r;
	}
out:
	free(buf);
	return ret;
}

/* Two passes: the first checks every substitution and sizes the result,
 * the second copies. errno is EINVAL for a bad pattern or value. */
char *kt_config_expand(const char *pattern, const char *user, const char *host)
{
	char *out = NULL;
	const char *v;
	size_t at = 0, n;

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1 && (out = malloc(at + 1)) == NULL)
			goto out;
		at = 0;
		for (const char *s = pattern; *s; s++) {
			if (*s != '%') {
				v = s;
				n = 1;
			} else if (s[1] == '%') {
				v = ++s;
				n = 1;
			} else if (s[1] == 'H' || s[1] == 'u') {
				v = *++s == 'H' ? host : user;
				if (!conf_is_name_part(v))
					goto bad;
				n = strlen(v);
			} else {
				goto bad; /* an unknown escape, or a '%' at the end */
			}
			if (n > MAX_SECRET_ID - at)
				goto bad;
			if (out != NULL)
				memcpy(out + at, v, n);
			at += n;
		}
	}
	out[at] = '\0';
	goto out;
bad:
	free(out);
	out = NULL;
	errno = EINVAL;
out:
	return out;
}
