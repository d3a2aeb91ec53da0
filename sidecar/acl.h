/* Who is calling, and may they read a secret: the kernel's word on the peer
 * of a Unix socket (SO_PEERCRED, SO_PEERGROUPS) against a section's
 * allow_users and allow_groups. */
#ifndef KT_ACL_H
#define KT_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "conf.h"

#define KT_PEER_MAX_GROUPS 256

struct kt_peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	gid_t groups[KT_PEER_MAX_GROUPS];
	size_t ngroups;
	char name[64]; /* user name, or the uid in digits when it has none */
};

/* Reads the peer of a connected Unix socket. Returns 0 or a negative errno. */
int kt_peer_from_socket(int fd, struct kt_peer *out);

/* Root reads everything; otherwise the uid must be allowed, or the primary
 * or a supplementary group. */
bool kt_acl_may_read(const struct kt_secret_cfg *s, const struct kt_peer *p);

#endif
