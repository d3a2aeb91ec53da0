/* keyturnctl rotate NAME: asks keyturnd to run the four rotation steps of
 * [rotate:NAME] now and prints each step (the rotate op, root only;
 * PROTOCOL.md). Spoken over the library's transport, like reload. */
#ifndef KT_CTL_ROTATE_H
#define KT_CTL_ROTATE_H

#include <stdbool.h>

/* socket: the daemon's socket or NULL; timeout_ms: 0 for 10 minutes.
 * Returns keyturnctl(1)'s exit code: 0 rotated, 1 a step failed, 3 no such
 * rotation, 4 not root, 5 AWS or the daemon unreachable, 6 another rotator
 * holds AWSPENDING, 7 AWS refused the host access. */
int kt_ctl_rotate(const char *socket, int timeout_ms, bool json, const char *name);

#endif
