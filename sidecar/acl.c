/* Peer credentials of local callers and the access rule of [secret:]
 * sections. Groups come from SO_PEERGROUPS, the kernel's list at connect
 * time, never from a lookup that a caller could influence. */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "acl.h"

int kt_peer_from_socket(int fd, struct kt_peer *out)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct passwd pw, *res = NULL;
	char pwbuf[4096];

	memset(out, 0, sizeof(*out));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return -errno;
	out->pid = cred.pid;
	out->uid = cred.uid;
	out->gid = cred.gid;
	len = sizeof(out->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, out->groups, &len) < 0) {
		/* More groups than we keep room for: refuse to guess. */
		if (errno == ERANGE)
			return -E2BIG;
		return -errno;
	}
	out->ngroups = len / sizeof(gid_t);
	if (getpwuid_r(cred.uid, &pw, pwbuf, sizeof(pwbuf), &res) == 0 && res != NULL &&
	    strlen(pw.pw_name) < sizeof(out->name))
		snprintf(out->name, sizeof(out->name), "%s", pw.pw_name);
	else
		snprintf(out->name, sizeof(out->name), "%lu", (unsigned long)cred.uid);
	return 0;
}

static bool has_gid(const struct kt_secret_cfg *s, gid_t g)
{
	for (size_t i = 0; i < s->nallow_groups; i++) {
		if (s->allow_gids[i] == g)
			return true;
	}
	return false;
}

bool kt_acl_may_read(const struct kt_secret_cfg *s, const struct kt_peer *p)
{
	if (p->uid == 0)
		return true;
	for (size_t i = 0; i < s->nallow_users; i++) {
		if (s->allow_uids[i] == p->uid)
			return true;
	}
	if (has_gid(s, p->gid))
		return true;
	for (size_t i = 0; i < p->ngroups; i++) {
		if (has_gid(s, p->groups[i]))
			return true;
	}
	return false;
}
