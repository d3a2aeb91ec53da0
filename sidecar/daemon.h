/* keyturnd's daemon: start-up as root, the drop of privileges, and the
 * event loop that wires the engine, the ops and the front doors together
 * (daemon.c). Its state is its own. */
#ifndef KT_DAEMON_H
#define KT_DAEMON_H

#include <stdbool.h>

/* Sets up everything that start-up as root needs (config read, socket
 * bound, state directory), drops privileges, starts workers; then runs the
 * loop until SIGTERM/SIGINT. Returns the process exit code. */
int kt_daemon_main(const char *config_path, bool foreground);

#endif
