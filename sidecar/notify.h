/* systemd's sd_notify protocol without libsystemd: datagrams to the socket
 * named by NOTIFY_SOCKET. Every call is a no-op when that is unset. */
#ifndef KT_NOTIFY_H
#define KT_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Opens the notification socket (before privileges are dropped: it is
 * connected here, so later sends need no access to its path). Returns 0
 * also when NOTIFY_SOCKET is unset; a negative errno for a bad address
 * (-EAFNOSUPPORT for neither "/path" nor "@abstract") or an unreachable
 * socket. After a failure every call is a no-op. The environment is read
 * here only and left as it is. */
int kt_notify_init(void);

/* Sends a text such as "READY=1\nSTATUS=serving 3 secrets". Never blocks;
 * -EMSGSIZE for a text of 4096 bytes or more, -EAGAIN when systemd's queue
 * is full. */
int kt_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* status may be NULL or ""; one with a newline is refused (-EINVAL). The
 * status is kept, so that a problem set later is shown with it. */
int kt_notify_ready(const char *status);
/* A standing problem (NULL or "" when it is over, such as the socket's path
 * lost; see server_listen.c): sent at once as STATUS=, and appended to the
 * status of every later READY=1 until cleared. Newlines become blanks. */
int kt_notify_problem(const char *problem);
int kt_notify_reloading(void); /* RELOADING=1 with MONOTONIC_USEC */
int kt_notify_stopping(void);
int kt_notify_watchdog(void);

/* The watchdog interval asked for by WATCHDOG_USEC (for this pid), or 0. */
uint64_t kt_notify_watchdog_usec(void);

void kt_notify_close(void);

#endif
