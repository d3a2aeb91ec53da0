/* Worker threads that make the AWS calls for keyturnd. The event loop hands
 * them jobs and gets finished jobs back through an eventfd, so the serving
 * path never waits on the network. Jobs are owned by the loop except while
 * queued or running. */
#ifndef KT_WORKER_H
#define KT_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aws/awserr.h"
#include "aws/client.h"
#include "aws/sm.h"

enum kt_job_kind {
	KT_JOB_BATCH_GET, /* BatchGetSecretValue of ids[0..nids) */
	KT_JOB_GET,       /* GetSecretValue of ids[0] by version_id or stage */
	KT_JOB_DESCRIBE,  /* DescribeSecret of ids[0] */
};

struct kt_job {
	enum kt_job_kind kind;
	uint64_t tag;            /* the loop's own reference (entry id, ...) */
	unsigned purpose;        /* the loop's own use; workers ignore it */
	char *ids[SM_BATCH_MAX]; /* owned by the job */
	size_t nids;
	char *version_id; /* for KT_JOB_GET; may be NULL */
	char *stage;      /* for KT_JOB_GET; may be NULL */
	/* results, filled by the worker */
	int rc; /* 0 or a negative errno */
	struct aws_error err;
	struct sm_value value;      /* KT_JOB_GET */
	struct sm_batch batch;      /* KT_JOB_BATCH_GET */
	struct sm_description desc; /* KT_JOB_DESCRIBE */
	unsigned long requests;     /* HTTP requests the job made */
	struct kt_job *next;        /* queue link */
};

struct kt_workers;

/* Makes a job (ids copied). NULL on ENOMEM. */
struct kt_job *kt_job_new(enum kt_job_kind kind, uint64_t tag, const char *const *ids, size_t nids,
			  const char *version_id, const char *stage);
/* Frees a job, wiping any value it holds. */
void kt_job_free(struct kt_job *job);

/* Starts n threads calling AWS through c. Returns 0 or a negative errno. */
int kt_workers_start(struct aws_client *c, int n, struct kt_workers **out);

/* The eventfd that becomes readable when finished jobs wait. */
int kt_workers_fd(const struct kt_workers *w);

/* Queues a job. */
void kt_workers_submit(struct kt_workers *w, struct kt_job *job);

/* Takes every finished job (a list linked by ->next), clearing the eventfd. */
struct kt_job *kt_workers_take_done(struct kt_workers *w);

/* Jobs queued or running. */
size_t kt_workers_busy(struct kt_workers *w);

/* Begins a stop without waiting: no job starts any more, and the AWS calls
 * in flight are cancelled through aws_client_cancel() (they end within about
 * a second, retries and backoff included). The client makes no call after
 * this. kt_workers_stop() still joins and frees. NULL is allowed. */
void kt_workers_abort(struct kt_workers *w);

/* Stops the threads (as kt_workers_abort does, if it was not called) and
 * waits for them; unstarted and untaken jobs are freed. */
void kt_workers_stop(struct kt_workers *w);

#endif
