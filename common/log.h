/* Logging for keyturn's programs (in the manner of OpenBSD bgpd's log.c):
 * stderr in the foreground, syslog otherwise. Never pass a secret value. */
#ifndef KT_LOG_H
#define KT_LOG_H

#include <stdbool.h>
#include <stddef.h>

/* transitional: until every user includes err.h */
#include "common/err.h"

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

/* The line as given; every function here leaves errno as it found it, so a
 * log call between a failure and the use of its errno changes nothing. */
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* The line followed by ": " and strerror(errno), errno taken on entry (as
 * bgpd's log_warn, systemd's log_error_errno): log_warn_errno("cannot open %s",
 * path) writes what log_warn("cannot open %s: %s", path, strerror(errno)) did. */
void log_err_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn_errno(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One audit line, "<kind>: <fields>": kind names the log ("access" for
 * requests, "login" for checked passwords), fields are space-separated
 * key=value pairs, each value one word made printable by the caller
 * (kt_json_printable for anything a client sent) so that a line is never
 * forged or split. Logged at info when granted (a request allowed, a password
 * that matched), at warning otherwise: refusals are worth an operator's
 * attention at the default level. System tests grep these lines. */
void log_audit(const char *kind, bool granted, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
