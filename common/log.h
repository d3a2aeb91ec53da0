/* Logging for keyturn's programs (in the manner of OpenBSD bgpd's log.c):
 * stderr in the foreground, syslog otherwise. Never pass a secret value. */
#ifndef KT_LOG_H
#define KT_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum kt_log_level {
	KT_LOG_ERR = 3,
	KT_LOG_WARN = 4,
	KT_LOG_INFO = 6,
	KT_LOG_DEBUG = 7,
};

/* to_stderr: write to stderr; otherwise syslog with ident and LOG_DAEMON. */
void log_init(const char *ident, bool to_stderr, enum kt_log_level level);
void log_set_level(enum kt_log_level level);
enum kt_log_level log_get_level(void);

/* Parses "error", "warning", "info" or "debug". Returns 0 or -EINVAL. */
int log_parse_level(const char *s, enum kt_log_level *out);

/* Formats an error message into a caller's buffer (err may be NULL): the
 * way modules hand a message up to the caller that decides how to log it. */
void kt_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
