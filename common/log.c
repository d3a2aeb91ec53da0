/* Logging to stderr or syslog, with a level threshold. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "log.h"

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
		{ "error", KT_LOG_ERR },   { "err", KT_LOG_ERR },
		{ "warning", KT_LOG_WARN }, { "warn", KT_LOG_WARN },
		{ "info", KT_LOG_INFO },   { "debug", KT_LOG_DEBUG },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i].name) == 0) {
			*out = names[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

static void log_vwrite(enum kt_log_level level, const char *fmt, va_list ap)
{
	static const char *const tags[] = {
		[KT_LOG_ERR] = "error", [KT_LOG_WARN] = "warning",
		[KT_LOG_INFO] = "info", [KT_LOG_DEBUG] = "debug",
	};
	char msg[2048];

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (!log_stderr) {
		syslog((int)level, "%s", msg);
		return;
	}
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s: %s: %s\n", log_ident, tags[level], msg);
	pthread_mutex_unlock(&log_lock);
}

void kt_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#define LOG_FN(name, level)                        \
	void name(const char *fmt, ...)                \
	{                                              \
		va_list ap;                                \
		va_start(ap, fmt);                         \
		log_vwrite(level, fmt, ap);                \
		va_end(ap);                                \
	}

LOG_FN(log_err, KT_LOG_ERR)
LOG_FN(log_warn, KT_LOG_WARN)
LOG_FN(log_info, KT_LOG_INFO)
LOG_FN(log_debug, KT_LOG_DEBUG)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(KT_LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}
