/* `[http] listen =`: which addresses the HTTP door may have (http.c binds
 * them). Only loopback and Unix sockets: the door trusts the kernel's word
 * on who is calling (SO_PEERCRED, or the owner of the peer's socket found
 * through NETLINK_SOCK_DIAG), which exists only for peers on this host. */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_listen.h"

/* "'WORD'" and what is wrong with it. */
static int fail(char *why, size_t whylen, const char *word, size_t len, const char *what)
{
	snprintf(why, whylen, "'%.*s'%s", (int)(len > 64 ? 64 : len), word, what);
	return -EINVAL;
}

static bool parse_port(const char *s, size_t len, in_port_t *port)
{
	unsigned long v = 0;

	if (len == 0 || len > 5)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v == 0 || v > 65535 || (len > 1 && s[0] == '0'))
		return false;
	*port = htons((in_port_t)v);
	return true;
}

/* One address of len bytes at w. */
static int parse_one(const char *w, size_t len, struct kt_listen_addr *a, char *why, size_t whylen)
{
	const char *colon;
	char host[64];
	in_port_t port;

	memset(a, 0, sizeof(*a));
	if (len >= sizeof(a->text))
		return fail(why, whylen, w, len, " is too long");
	memcpy(a->text, w, len);
	if (len > 5 && strncmp(w, "unix:", 5) == 0) {
		if (w[5] != '/' || len - 5 >= sizeof(a->path))
			return fail(
				why, whylen, w, len,
				": a unix: address needs an absolute path that fits a socket address");
		a->kind = KT_LISTEN_UNIX;
		memcpy(a->path, w + 5, len - 5);
		return 0;
	}
	a->kind = KT_LISTEN_TCP;
	if (w[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->sa;
		const char *end = memchr(w, ']', len);

		if (end == NULL || end[1] != ':' || (size_t)(end - w - 1) >= sizeof(host))
			return fail(why, whylen, w, len, " is not [ADDRESS]:PORT");
		memcpy(host, w + 1, (size_t)(end - w - 1));
		host[end - w - 1] = '\0';
		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1 ||
		    !IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
			return fail(
				why, whylen, w, len,
				": keyturnd listens on loopback only (127.0.0.1, [::1]) or unix:PATH");
		if (!parse_port(end + 2, len - (size_t)(end + 2 - w), &port))
			return fail(why, whylen, w, len, ": the port must be 1 to 65535");
		s6->sin6_family = AF_INET6;
		s6->sin6_port = port;
		a->salen = sizeof(*s6);
		return 0;
	}
	colon = memchr(w, ':', len);
	if (colon == NULL || (size_t)(colon - w) >= sizeof(host))
		return fail(why, whylen, w, len, " is not ADDRESS:PORT, [::1]:PORT or unix:PATH");
	memcpy(host, w, (size_t)(colon - w));
	host[colon - w] = '\0';
	{
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a->sa;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1 ||
		    (ntohl(s4->sin_addr.s_addr) >> 24) != 127)
			return fail(
				why, whylen, w, len,
				": keyturnd listens on loopback only (127.0.0.1, [::1]) or unix:PATH");
		if (!parse_port(colon + 1, len - (size_t)(colon + 1 - w), &port))
			return fail(why, whylen, w, len, ": the port must be 1 to 65535");
		s4->sin_family = AF_INET;
		s4->sin_port = port;
		a->salen = sizeof(*s4);
	}
	return 0;
}

int kt_http_listen_parse(const char *value, struct kt_listen_addr *out, char *why, size_t whylen)
{
	struct kt_listen_addr tmp;
	int n = 0, rc;
	size_t len;

	for (const char *w = value + strspn(value, " \t"); *w; w += len, w += strspn(w, " \t")) {
		len = strcspn(w, " \t");
		if (n == KT_HTTP_MAX_LISTEN) {
			snprintf(why, whylen, "more than %d addresses", KT_HTTP_MAX_LISTEN);
			return -EINVAL;
		}
		rc = parse_one(w, len, out != NULL ? &out[n] : &tmp, why, whylen);
		if (rc < 0)
			return rc;
		n++;
	}
	if (n == 0) {
		snprintf(why, whylen, "no address");
		return -EINVAL;
	}
	return n;
}
