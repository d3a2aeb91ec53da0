/* keyturnd's privileged helper (OpenSSH's monitor, chrony's privops): a
 * process forked before the drop that keeps the privileges keyturnd
 * started with and does a few things only, on request over a socketpair:
 * write [file:] sink N with these bytes (or remove it), run sink N's
 * on_change command, and run [rotate:] N's set_command or test_command with
 * these bytes (the new password) on stdin. N indexes the sections of the
 * configuration read at start; a request can never name a new path or
 * command. The helper exits when the socketpair closes.
 *
 * Messages are SOCK_SEQPACKET datagrams, a fixed header and len bytes:
 * requests carry the content to write (WRITE) or nothing; replies carry
 * the status and a short text (an error, or a command's first stderr
 * lines), never a value. */
#ifndef KT_PRIVHELPER_H
#define KT_PRIVHELPER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

/* A sink's content, at most (a Secrets Manager value is at most 64 KiB; env
 * quoting may add a little). */
#define KT_PRIV_MAX_DATA (64 * 1024 + 4096)
/* A reply's text, at most. */
#define KT_PRIV_MAX_TEXT 512

enum kt_priv_op {
	KT_PRIV_WRITE = 1,   /* write sink idx with the bytes that follow */
	KT_PRIV_REMOVE,      /* remove sink idx's file (on_stale = remove) */
	KT_PRIV_RUN,         /* run sink idx's on_change */
	KT_PRIV_ROTATE_SET,  /* run [rotate:] idx's set_command, the data on stdin */
	KT_PRIV_ROTATE_TEST, /* run [rotate:] idx's test_command, the data on stdin */
};

struct kt_priv_hdr {
	uint32_t op;
	uint32_t idx;
	int32_t status; /* replies: 0 or -errno; RUN: the wait status, or -errno */
	uint32_t flags; /* RUN replies: KT_PRIV_TIMED_OUT */
	uint32_t len;   /* bytes after the header */
};
#define KT_PRIV_TIMED_OUT 1u

struct kt_priv_reply {
	struct kt_priv_hdr h;
	char text[KT_PRIV_MAX_TEXT + 1]; /* NUL-terminated, printable */
};

/* Forks the helper for cfg's [file:] sections (cfg must not change in this
 * process afterwards; the helper keeps the copy it was forked with). *fd:
 * the daemon's end (non-blocking, close-on-exec), *pid the helper's.
 * 0 or -errno. */
int kt_privhelper_start(const struct kt_config *cfg, int *fd, pid_t *pid);

/* Daemon side. Sends one request without waiting: 0, -EAGAIN when the
 * socket is full, or another -errno. */
int kt_privhelper_send(int fd, enum kt_priv_op op, uint32_t idx, const void *data, size_t len);
/* Receives one reply: 1, 0 when none is waiting, -EPIPE when the helper is
 * gone, -EPROTO for a malformed one. */
int kt_privhelper_recv(int fd, struct kt_priv_reply *r);

/* What the helper does, also usable in-process (unit tests). Writes data
 * to f->path as the path rules say (SECURITY.md): 0 or -errno, err says
 * why. */
int kt_priv_write_file(const struct kt_file_cfg *f, const void *data, size_t len, char *err,
		       size_t errlen);
/* Removes f->path (a regular file only); a missing file is fine. */
int kt_priv_remove_file(const struct kt_file_cfg *f, char *err, size_t errlen);

#endif
