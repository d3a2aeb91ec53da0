/* keyturnctl reload: asks keyturnd to read its configuration file again and
 * waits for the outcome (the reload op, root only; PROTOCOL.md). systemd's
 * ExecReload runs it, so a refused file fails `systemctl reload`. The op is
 * an administrator's, not part of libkeyturn's API: this file speaks it
 * over the library's transport, compiled into keyturnctl. */
#ifndef KT_CTL_RELOAD_H
#define KT_CTL_RELOAD_H

#include <stdbool.h>

/* socket: the daemon's socket, or NULL for $KEYTURN_SOCKET or the default.
 * timeout_ms: 0 for 60 s (a reload of thousands of secrets takes a while).
 * Prints the outcome (json: the answer as it came) and returns the exit
 * code keyturnctl(1) gives: 0 reloaded, 4 not root, 5 refused or no
 * daemon, 1 other errors. */
int kt_ctl_reload(const char *socket, int timeout_ms, bool json);

#endif
