/* Logging for keyturn's programs (in the manner of OpenBSD bgpd's log.c):
 * stderr in the foreground, syslog otherwise. Never pass a secret value. */
#ifndef KT_LOG_H
#define KT_LOG_H

#include <stdbool.h>

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

void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

#endif
