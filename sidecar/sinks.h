/* keyturnd's file sinks ([file:PATH]): files kept equal to a secret. A
 * subscriber of the engine's news: at start (once the secret's value is in
 * the cache) and at every change of AWSCURRENT, it renders the file's
 * content, writes it through the privileged helper (privhelper.h) when it
 * differs from what was last written (a SHA-256 of it is kept, never the
 * content), then runs the sink's on_change once. The sink table is the one
 * read at start; a reload that changes it is logged and waits for a
 * restart. */
#ifndef KT_SINKS_H
#define KT_SINKS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "conf.h"
#include "engine.h"
#include "loop.h"

struct kt_sinks;

/* Makes the sinks of cfg's [file:] sections, talking to the helper
 * helper_pid on helper_fd (taken: closed by kt_sinks_free; the helper is
 * reaped through the loop when it ends) and subscribed to eng.
 * 0, or -errno logged. */
int kt_sinks_new(struct kt_loop *loop, struct kt_engine *eng, const struct kt_config *cfg,
		 int helper_fd, pid_t helper_pid, struct kt_sinks **out);
void kt_sinks_free(struct kt_sinks *s);

/* Once a second: first values, retries after failures, staleness. */
void kt_sinks_tick(struct kt_sinks *s);

/* A reload's configuration: max_stale is taken; changed [file:] sections
 * are logged and wait for a restart. s may be NULL (no sinks at start). */
void kt_sinks_configure(struct kt_sinks *s, const struct kt_config *next);

/* status's "files" object: per path, state (waiting | ok | stale |
 * failing), secret, last_written (Unix time, or null) and error. NULL
 * when out of memory. */
struct json_object *kt_sinks_status(const struct kt_sinks *s);

/* The file's content for a value (len bytes; binary: not text). raw: the
 * value, or its JSON member key; env: KEY='value' lines from a JSON
 * object's members; json: the value as is. *out (in the locked arena,
 * *outlen bytes and a NUL) is freed with kt_secure_free(*out, *outlen + 1).
 * 0, or -EINVAL with err saying why (never quoting the value). */
int kt_sink_render(enum kt_file_format format, const char *key, const unsigned char *value,
		   size_t len, bool binary, unsigned char **out, size_t *outlen, char *err,
		   size_t errlen);

#endif
