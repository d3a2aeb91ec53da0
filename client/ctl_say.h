/* keyturnctl's complaints, shared by its command files: one line on stderr,
 * "keyturnctl: WHAT: message", with control characters shown as '?' (a
 * message may quote what a daemon, a configuration file or a command
 * sent), after whatever stdout holds. And the exit code keyturnctl(1)
 * gives for an error code of keyturnd's. */
#ifndef KT_CTL_SAY_H
#define KT_CTL_SAY_H

#include "common/proto.h"

/* what may be NULL: "keyturnctl: message". */
void kt_ctl_say(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A usage error: the line, then "Try 'keyturnctl [WHAT] --help'."; returns
 * 2, keyturnctl's exit code for it. */
int kt_ctl_usage(const char *what, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* 3 not_found, 4 denied, 5 unavailable or throttled, 1 the rest. */
int kt_ctl_perr_exit(enum kt_proto_err e);

#endif
