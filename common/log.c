/* Logging to stderr or syslog, with a level threshold; errno-aware variants
 * and the audit lines. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "common/log.h"

static bool log_stderr = true;
static enum kt_log_level log_level = KT_LOG_INFO;
static const char *log_ident = "keyturn";
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void log_init(const char *ident, bool to_stderr, enum kt_log_level level)
{
	log_ident = ident;
	log_stderr = to_stderr;
	log_level = level;
	if (!to_stderr)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum kt_log_level level)
{
	log_level = level;
}

enum kt_log_level log_get_level(void)
{
	return log_level;
}

int log_parse_level(const char *s, enum kt_log_level *out)
{
	static const struct {
		const char *name;
		enum kt_log_level level;
	} names[] = {
		{ "error", KT_LOG_ERR }, { "err", KT_LOG_ERR },   { "warning", KT_LOG_WARN },
		{ "warn", KT_LOG_WARN }, { "info", KT_LOG_INFO }, { "debug", KT_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

/* Writes one line: msg, then ": " and suffix when suffix is not NULL. The
 * suffix is kept apart from msg so that a long msg cannot cut it off. One
 * fprintf under the lock, so lines from threads never interleave. */
static void log_emit(enum kt_log_level level, const char *msg, const char *suffix)
{
	static const char *const tags[] = {
		[KT_LOG_ERR] = "error",
		[KT_LOG_WARN] = "warning",
		[KT_LOG_INFO] = "info",
		[KT_LOG_DEBUG] = "debug",
	};
	const char *sep = suffix != NULL ? ": " : "";

	if (suffix == NULL)
		suffix = "";
	if (!log_stderr) {
		syslog((int)level, "%s%s%s", msg, sep, suffix);
		return;
	}
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s: %s: %s%s%s\n", log_ident, tags[level], msg, sep, suffix);
	pthread_mutex_unlock(&log_lock);
}

/* Formats and writes a line, with strerror(errnum) after it when with_errno.
 * It may change errno (stdio and syslog do): the callers restore it. */
static void log_vwrite(enum kt_log_level level, bool with_errno, int errnum, const char *fmt,
		       va_list ap)
{
	char msg[2048], ebuf[128];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* strerror_r, not strerror: the GNU one (AC_USE_SYSTEM_EXTENSIONS)
	 * returns its text without a buffer shared between threads. */
	log_emit(level, msg, with_errno ? strerror_r(errnum, ebuf, sizeof(ebuf)) : NULL);
}

#define LOG_FN(name, level, with_errno)                            \
	void name(const char *fmt, ...)                            \
	{                                                          \
		int e = errno; /* before anything can change it */ \
		va_list ap;                                        \
		va_start(ap, fmt);                                 \
		log_vwrite(level, with_errno, e, fmt, ap);         \
		va_end(ap);                                        \
		errno = e;                                         \
	}

LOG_FN(log_err, KT_LOG_ERR, false)
LOG_FN(log_warn, KT_LOG_WARN, false)
LOG_FN(log_info, KT_LOG_INFO, false)
LOG_FN(log_debug, KT_LOG_DEBUG, false)
LOG_FN(log_err_errno, KT_LOG_ERR, true)
LOG_FN(log_warn_errno, KT_LOG_WARN, true)

void log_audit(const char *kind, bool granted, const char *fmt, ...)
{
	int e = errno;
	char fields[1536];
	va_list ap;

	/* Every request makes one: a line the level drops costs no formatting. */
	if ((granted ? KT_LOG_INFO : KT_LOG_WARN) > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(fields, sizeof(fields), fmt, ap);
	va_end(ap);
	if (granted)
		log_info("%s: %s", kind, fields);
	else
		log_warn("%s: %s", kind, fields);
	errno = e;
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(KT_LOG_ERR, false, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
