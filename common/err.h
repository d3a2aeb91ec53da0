/* Error messages for the caller that decides how to report them.
 * Outside sidecar/aws/ (which has its struct aws_error), the one carrier of a
 * message is a caller's `char *err, size_t errlen`, filled by kt_errf; the
 * function itself returns 0 or -errno, so the code and the words travel
 * separately and neither is ever invented twice. */
#ifndef KT_ERR_H
#define KT_ERR_H

#include <stddef.h>

/* Formats a message into err (at most errlen bytes, always terminated when
 * errlen > 0). err may be NULL or errlen 0: then nothing is written, so a
 * caller that only wants the code passes NULL, 0. Never pass a secret value:
 * the message ends up in a log line or an answer. */
void kt_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
