/* keyturnd's host-driven rotation: for each [rotate:NAME] section, and for
 * the secrets of logins with rotate_after_use, keyturnd runs the four
 * rotation steps itself (rotate_steps.c) on the section's AWS schedule, on
 * request (the rotate op) and a while after a login used the password. It
 * plans on the loop thread, runs one rotation at a time on its own thread,
 * keeps each unfinished rotation's token in state_dir/rotations.json, and
 * asks the engine to fetch the new value once AWSCURRENT moved.
 *
 * The rotations and their commands are those read at start (the helper
 * runs them by index); a reload that changes [rotate:] sections is logged
 * and waits for a restart. */
#ifndef KT_ROTATE_H
#define KT_ROTATE_H

#include <stdint.h>

#include <json-c/json.h>

#include "aws/client.h"
#include "conf.h"
#include "engine.h"
#include "loop.h"

struct kt_rotator;

/* Delivers the answer (taken) of a rotate request. */
typedef void kt_rotator_reply_fn(void *ctx, uint64_t conn_id, struct json_object *answer);

/* Makes the rotator for cfg (copied), calling AWS through aws, running the
 * commands through the helper on helper_fd (taken; -1 when there is none),
 * subscribed to eng and watching its thread through loop. Reads the state
 * file. 0, or -errno logged. */
int kt_rotator_new(struct kt_loop *loop, struct kt_engine *eng, struct aws_client *aws,
		   const struct kt_config *cfg, int helper_fd, kt_rotator_reply_fn *reply,
		   void *reply_ctx, struct kt_rotator **out);
/* Stops the thread (the rotation running ends as failed, to be resumed at
 * the next start), answers the requests still waiting, frees. NULL is
 * allowed. */
void kt_rotator_free(struct kt_rotator *r);

/* Once a second: starts the rotations due. */
void kt_rotator_tick(struct kt_rotator *r);

/* A reload's configuration: changed [rotate:] sections are logged and wait
 * for a restart. */
void kt_rotator_configure(struct kt_rotator *r, const struct kt_config *next);

/* A successful login with the password of secret_id (its JSON member key,
 * or NULL: the whole value), verified with the cache entry named entry:
 * rotate it delay seconds from now, unless a rotation after use is due
 * already. */
void kt_rotator_used(struct kt_rotator *r, const char *secret_id, const char *entry,
		     const char *key, long delay);

/* The rotate op: runs [rotate:name] now (or joins the rotation running) and
 * answers conn_id through the reply callback when it ends. 0, or -ENOENT
 * when there is no such section, -ENOMEM. */
int kt_rotator_request(struct kt_rotator *r, const char *name, uint64_t conn_id);

/* status's "rotations" object (new), or NULL when out of memory. */
struct json_object *kt_rotator_status(const struct kt_rotator *r);

/* Whether cfg needs a rotator (a [rotate:] section, or a login with
 * rotate_after_use). */
bool kt_rotator_wanted(const struct kt_config *cfg);

#endif
