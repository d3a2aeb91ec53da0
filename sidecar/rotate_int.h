/* What rotate.c, rotate_steps.c and rotate_state.c share; not a public
 * face (rotate.h is). rotate.c plans rotations on the loop thread;
 * rotate_steps.c runs them, one at a time, on the rotation thread (AWS
 * calls and the helper's commands block there); rotate_state.c keeps
 * their tokens in state_dir. */
#ifndef KT_ROTATE_INT_H
#define KT_ROTATE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <json-c/json.h>

#include "aws/client.h"
#include "common/awssched.h"
#include "conf.h"
#include "engine.h"
#include "loop.h"
#include "rotate.h"
#include "aws/sm.h"

/* The four steps, in order; the step a rotation resumes at is kept. */
enum kt_rot_step { KT_ROT_CREATE, KT_ROT_SET, KT_ROT_TEST, KT_ROT_FINISH, KT_ROT_NSTEPS };

enum kt_rot_outcome {
	KT_ROT_ROTATED,     /* AWSCURRENT moved to the token's version */
	KT_ROT_FAILED,      /* a step failed: a command, or AWS refused a call */
	KT_ROT_BUSY,        /* another version holds AWSPENDING: another rotator */
	KT_ROT_DENIED,      /* AWS said AccessDenied: the host may not write */
	KT_ROT_UNREACHABLE, /* AWS could not be reached, throttled, timed out */
	KT_ROT_STOPPING,    /* keyturnd stops */
};

#define KT_ROT_TOKEN_LEN 36 /* a UUID, the ClientRequestToken */
#define KT_ROT_VERSION_MAX 72

/* One rotation run on the thread: what to do (set on the loop thread
 * before it is queued), and what happened (set by the thread). */
struct kt_rot_job {
	/* in */
	const char *name;      /* for logs and messages (the target's) */
	const char *secret_id; /* the SecretId */
	const char *key;       /* the JSON member replaced, or NULL: the whole value */
	struct sm_random_opts policy;
	int rotate_idx; /* [rotate:] index for the helper's commands, or -1 */
	bool has_set, has_test;
	char token[KT_ROT_TOKEN_LEN + 1];
	enum kt_rot_step from; /* where to start (a resumed rotation) */
	/* Told each time a step is done, with the step to resume at. */
	void (*progress)(void *ctx, enum kt_rot_step next);
	void *progress_ctx;
	/* out */
	enum kt_rot_outcome outcome;
	enum kt_rot_step step;             /* the step that failed, or the last one run */
	const char *result[KT_ROT_NSTEPS]; /* "ok", "skipped", "failed", "not_run" */
	char detail[KT_ROT_NSTEPS][480];   /* never a value */
	char message[700];                 /* why it failed, for the log and the answer */
	char version[KT_ROT_VERSION_MAX];  /* the new version (the token's) */
	char previous[KT_ROT_VERSION_MAX]; /* the AWSCURRENT it replaced */
	bool drop_token; /* the token is not worth keeping (nothing made, or abandoned) */
	struct kt_rot_job *next;
};

/* --- rotate_thread.c: the rotation thread ----------------------------------- */

struct kt_rot_thread;

/* Starts the thread calling AWS through c and the helper on helper_fd
 * (taken; -1: no commands can run). 0 or -errno. */
int kt_rot_thread_start(struct aws_client *c, int helper_fd, struct kt_rot_thread **out);
/* The eventfd that becomes readable when a job is done. */
int kt_rot_thread_fd(const struct kt_rot_thread *t);
/* Queues a job (owned by the thread until taken back done). */
void kt_rot_thread_submit(struct kt_rot_thread *t, struct kt_rot_job *j);
/* Takes the jobs done (a list), clearing the eventfd. */
struct kt_rot_job *kt_rot_thread_take(struct kt_rot_thread *t);
/* The step the running job resumes at, once it is past its first (for
 * the state file); false when no job runs or none is past its first. */
bool kt_rot_thread_progress(struct kt_rot_thread *t, enum kt_rot_step *next);
/* Stops: the job running ends as soon as its AWS call or command does (the
 * helper's commands are not waited for), queued jobs end stopping. Joins
 * the thread, closes the helper's socket, and returns the jobs done and not
 * taken (a list the caller frees). NULL is allowed. */
struct kt_rot_job *kt_rot_thread_stop(struct kt_rot_thread *t);

/* rotate_steps.c: the steps of j, run here (blocking); the thread's body,
 * also callable in tests. helper_fd, stop_fd: -1 for none. */
void kt_rot_run(struct aws_client *c, int helper_fd, int stop_fd, struct kt_rot_job *j);

/* Makes a version 4 UUID (the rotation's token). 0 or -errno. */
int kt_rot_new_token(char out[KT_ROT_TOKEN_LEN + 1]);

const char *kt_rot_step_name(enum kt_rot_step s);
const char *kt_rot_outcome_name(enum kt_rot_outcome o);

/* --- rotate_state.c: state_dir/rotations.json ------------------------------- */

/* Reads the file: *out its "rotations" object (new), an empty object when
 * the file does not exist. 0, or -errno with err naming the file and why
 * (a file that is not keyturnd's format is refused, not half-read). */
int kt_rot_state_read(const char *path, struct json_object **out, char *err, size_t errlen);
/* Writes {"v":1,"rotations":rotations} atomically (a temporary file, fsync,
 * rename, fsync of the directory), mode 0600. 0, or -errno with err. */
int kt_rot_state_write(const char *path, struct json_object *rotations, char *err, size_t errlen);

/* --- the loop thread's side (rotate.c, rotate_state.c, rotate_status.c) ---- */

#define BACKOFF_MIN 30

struct kt_rot_target {
	char *name;      /* the [rotate:] name, or the SecretId (after use only) */
	char *secret_id; /* the SecretId */
	char *key;       /* the JSON member replaced, or NULL */
	char *entry;     /* the cache entry a login verifies with, when not named above */
	char *schedule;  /* as written, or NULL */
	struct kt_awssched sched;
	long window;
	struct sm_random_opts policy;
	char *exclude;
	int idx;         /* [rotate:] index (the helper's), or -1 */
	char *signature; /* the section's keys as read at start (kt_rot_signature) */
	bool has_set, has_test;
	/* kept in the state file */
	char token[KT_ROT_TOKEN_LEN + 1]; /* "" when no rotation is unfinished */
	enum kt_rot_step step;            /* where it resumes */
	time_t started, last_rotated, after_use_due;
	/* this run's */
	bool running, resume, requested;
	time_t next_window, window_end, next_try;
	long backoff;
	bool has_result;
	enum kt_rot_outcome last;
	enum kt_rot_step last_step;
	char last_error[700];
	unsigned long rotations, failures;
	uint64_t *waiters;
	size_t nwaiters;
	struct json_object *held; /* the answer, until the cache has version */
	char version[KT_ROT_VERSION_MAX];
	time_t held_until;
};

struct kt_rotator {
	struct kt_loop *loop;
	struct kt_engine *eng;
	struct kt_rot_thread *th;
	struct kt_loop_io *io;
	char *state_path;
	struct kt_rot_target **t;
	size_t n;
	size_t nconf;           /* the first nconf targets are [rotate:] sections */
	struct kt_rot_job *job; /* the job in flight, or NULL */
	struct kt_rot_target *job_target;
	kt_rotator_reply_fn *reply;
	void *reply_ctx;
};

/* rotate_state.c: targets, and the state file. */
struct kt_rot_target *kt_rot_target_new(const char *name, const char *secret_id, const char *key);
struct kt_rot_target *kt_rot_target_from(const struct kt_rotate_cfg *c, int idx);
void kt_rot_target_free(struct kt_rot_target *t);
/* Every key of c in one string, to tell a changed section at a reload;
 * NULL when out of memory. */
char *kt_rot_signature(const struct kt_rotate_cfg *c);
struct kt_rot_target *kt_rot_by_id(const struct kt_rotator *r, const char *secret_id);
/* Appends t to r's targets: 0 or -ENOMEM. */
int kt_rot_add(struct kt_rotator *r, struct kt_rot_target *t);
/* Writes the state file: false with err when it could not be. */
bool kt_rot_save(struct kt_rotator *r, char *err, size_t errlen);
void kt_rot_save_or_log(struct kt_rotator *r);
/* Takes what the state file kept (targets for rotations after use made). */
void kt_rot_load(struct kt_rotator *r);

/* rotate_status.c: answers and status. */
/* The rotate op's answer for j's end (new), or NULL when out of memory. */
struct json_object *kt_rot_answer(const struct kt_rot_target *t, const struct kt_rot_job *j);
/* Whether t should start now. */
bool kt_rot_due(const struct kt_rot_target *t, time_t now);

#endif
