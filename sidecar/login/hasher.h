/* keyturnd's hashing thread: yescrypt for the offline verifiers (about
 * 80 ms and 16 MiB each) runs here, never on the loop thread. The loop
 * queues jobs and takes finished ones back through an eventfd, as with the
 * AWS workers; a job is the loop's except while queued or running. */
#ifndef KT_HASHER_H
#define KT_HASHER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "verifier.h"

enum kt_hash_kind {
	KT_HASH_MAKE,  /* hash pw[0] (and pw[1]) into v.cur_hash (and v.prev_hash) */
	KT_HASH_CHECK, /* compare pw[0] with v.cur_hash (and v.prev_hash) */
};

struct kt_hash_job {
	enum kt_hash_kind kind;
	uint64_t id; /* the loop's own references; the thread ignores them */
	uint64_t conn_id;
	uint64_t entry_id;
	uid_t uid;
	/* Passwords, freed wiped: MAKE hashes pw[1] only when v.prev_version is
	 * set; CHECK compares pw[0] with v.prev_hash only when check_prev. */
	char *pw[2];
	size_t pwlen[2];
	bool check_prev;
	struct kt_verifier v; /* MAKE: the verifier to write; CHECK: the one read */
	/* Results, filled by the thread. MAKE: 0 or a negative errno (err set).
	 * CHECK: 1 on a match with cur_hash, 2 with prev_hash, 0 on none, a
	 * negative errno when a hash is unusable. */
	int rc;
	char err[256];
	struct kt_hash_job *next;
};

struct kt_hasher;

/* A job of kind with its strings NULL. NULL on ENOMEM. */
struct kt_hash_job *kt_hash_job_new(enum kt_hash_kind kind);
/* Wipes the passwords and hashes, frees the strings and the job. */
void kt_hash_job_free(struct kt_hash_job *j);
void kt_hash_job_free_list(struct kt_hash_job *j);

/* Starts the thread. 0 or a negative errno. */
int kt_hasher_start(struct kt_hasher **out);

/* The eventfd that becomes readable when finished jobs wait. */
int kt_hasher_fd(const struct kt_hasher *h);

/* Queues a job: CHECKs (a login waits on them) before MAKEs. */
void kt_hasher_submit(struct kt_hasher *h, struct kt_hash_job *j);

/* Takes the queued jobs not started yet for which match() says true (a
 * list linked by ->next, in queue order); a job that runs is left to end. */
struct kt_hash_job *kt_hasher_cancel(struct kt_hasher *h,
				     bool (*match)(const struct kt_hash_job *j, void *arg),
				     void *arg);

/* Takes every finished job (a list linked by ->next), clearing the eventfd. */
struct kt_hash_job *kt_hasher_take_done(struct kt_hasher *h);

/* Stops the thread after its current job and joins it; every job still
 * queued or finished is freed wiped. h may be NULL. */
void kt_hasher_stop(struct kt_hasher *h);

#endif
