/* The privileged helper's command runner (privhelper_run.c), shared by the
 * helper's on_change ([file:]) and set/test ([rotate:]) commands. */
#ifndef KT_PRIVHELPER_INT_H
#define KT_PRIVHELPER_INT_H

#include <stddef.h>
#include <sys/types.h>

#include "privhelper.h"

/* A command the configuration names, and how to run it. */
struct kt_priv_cmd {
	char *const *argv;  /* split like ExecStart=, NULL-terminated */
	const char *run_as; /* the user's name, or NULL */
	uid_t uid;          /* (uid_t)-1: the helper's own */
	gid_t gid;
	long timeout;           /* s, then SIGKILL to its process group */
	const char *const *env; /* NAME=value, NULL-terminated; PATH is added */
	const void *input;      /* stdin's bytes, or NULL for /dev/null */
	size_t input_len;
};

/* Runs c and waits for it (at most c->timeout seconds). Fills r: status
 * the wait status or -errno, flags KT_PRIV_TIMED_OUT, text the first
 * KT_PRIV_MAX_TEXT bytes of stderr made printable. */
void kt_priv_run(const struct kt_priv_cmd *c, struct kt_priv_reply *r);

#endif
