/* The HTTP door's addresses: `[http] listen =` read and checked (loopback
 * TCP and Unix sockets only). Pure: the configuration reader uses it. */
#ifndef KT_HTTP_LISTEN_H
#define KT_HTTP_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

#define KT_HTTP_MAX_LISTEN 8

enum kt_listen_kind {
	KT_LISTEN_TCP,
	KT_LISTEN_UNIX,
};

struct kt_listen_addr {
	enum kt_listen_kind kind;
	struct sockaddr_storage sa; /* TCP: the address and port */
	socklen_t salen;
	char path[108]; /* unix: the socket's path */
	char text[128]; /* as written, for messages and status */
};

/* Reads a `listen` value: up to KT_HTTP_MAX_LISTEN addresses separated by
 * spaces, each 127.X.Y.Z:PORT, [::1]:PORT or unix:/ABSOLUTE/PATH (PORT 1 to
 * 65535). Any other address is refused, a host name too: the door serves
 * this host's users and nobody else. out may be NULL (a check only).
 * Returns the number of addresses, or -EINVAL with why. */
int kt_http_listen_parse(const char *value, struct kt_listen_addr *out, char *why, size_t whylen);

#endif
