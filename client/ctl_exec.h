/* keyturnctl watch and exec: one line per change of the secrets named, and
 * a command run with secrets in its environment, restarted after a change
 * when asked (keyturnctl(1)). Both speak libkeyturn's watch calls. */
#ifndef KT_CTL_EXEC_H
#define KT_CTL_EXEC_H

#include <stddef.h>

#include "keyturn.h"

/* keyturnctl's exit code (keyturnctl(1)) for a libkeyturn error code:
 * 3 not found, 4 denied, 5 unavailable, throttled, no daemon or timeout,
 * 2 a bad argument, 1 the rest. */
int kt_ctl_exit_code(int err);

/* One --env VAR=SECRET[#KEY]: the pieces point into the spec given. */
struct kt_ctl_env {
	const char *spec;
	size_t var_len; /* VAR is spec[0 .. var_len) */
	char *secret;   /* malloc'd */
	char *key;      /* malloc'd, or NULL for the value as `get` gives it */
};

/* Parses spec into out (out->secret and out->key to free with
 * kt_ctl_env_clear). 0, or -EINVAL with err saying what is wrong (never a
 * value: the spec holds none), or -ENOMEM. */
int kt_ctl_env_parse(const char *spec, struct kt_ctl_env *out, char *err, size_t errlen);
void kt_ctl_env_clear(struct kt_ctl_env *e);

/* keyturnctl watch NAME...: argv holds the names. Returns the exit code. */
int kt_ctl_watch(keyturn_t *kt, int argc, char **argv);

/* keyturnctl exec [OPTIONS] -- COMMAND [ARG...]: argv[0] is "exec". kt
 * reads the values; socket and timeout_ms (0: the default) make the
 * handle that watches. Returns the exit code (without
 * --restart-on-change it returns only when COMMAND cannot be started). */
int kt_ctl_exec(keyturn_t *kt, const char *socket, int timeout_ms, int argc, char **argv);

#endif
