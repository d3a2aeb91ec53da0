/* keyturnd's hashing thread: one thread, two FIFO queues (checks a login
 * waits on go first, then new verifiers to hash), finished jobs handed back
 * to the loop on a done list with an eventfd, as worker.c does for AWS. One
 * thread is enough: each job costs 16 MiB of scratch memory, and the loop
 * bounds how many checks may wait. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "hasher.h"
#include "common/kt_efd.h"
#include "common/log.h"
#include "common/secmem.h"

struct queue {
	struct kt_hash_job *head, *tail;
};

struct kt_hasher {
	pthread_mutex_t lock;
	pthread_cond_t wake; /* signalled when a job is queued or on stop */
	struct queue checks; /* KT_HASH_CHECK jobs not yet started */
	struct queue makes;  /* KT_HASH_MAKE jobs not yet started */
	struct queue done;   /* finished jobs, oldest first */
	bool stopping;
	bool started;
	int efd;
	pthread_t thread;
};

struct kt_hash_job *kt_hash_job_new(enum kt_hash_kind kind)
{
	struct kt_hash_job *j = calloc(1, sizeof(*j));

	if (j != NULL)
		j->kind = kind;
	return j;
}

static void wipe_passwords(struct kt_hash_job *j)
{
	for (size_t i = 0; i < 2; i++) {
		kt_free_wiped(j->pw[i], j->pwlen[i]);
		j->pw[i] = NULL;
		j->pwlen[i] = 0;
	}
}

void kt_hash_job_free(struct kt_hash_job *j)
{
	if (j == NULL)
		return;
	wipe_passwords(j);
	kt_verifier_clear(&j->v);
	kt_free_wiped(j, sizeof(*j));
}

void kt_hash_job_free_list(struct kt_hash_job *j)
{
	while (j != NULL) {
		struct kt_hash_job *next = j->next;

		kt_hash_job_free(j);
		j = next;
	}
}

static void push(struct queue *q, struct kt_hash_job *j)
{
	j->next = NULL;
	if (q->tail != NULL)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

static struct kt_hash_job *pop(struct queue *q)
{
	struct kt_hash_job *j = q->head;

	if (j == NULL)
		return NULL;
	q->head = j->next;
	if (q->head == NULL)
		q->tail = NULL;
	j->next = NULL;
	return j;
}

/* The passwords are wiped as soon as the hashing is done, not when the
 * loop gets round to freeing the job. */
static void job_run(struct kt_hash_job *j)
{
	int rc;

	j->err[0] = '\0';
	if (j->kind == KT_HASH_MAKE) {
		rc = kt_verifier_hash(j->pw[0], j->pwlen[0], j->v.cur_hash, j->err, sizeof(j->err));
		if (rc == 0 && j->v.prev_version != NULL)
			rc = kt_verifier_hash(j->pw[1], j->pwlen[1], j->v.prev_hash, j->err,
					      sizeof(j->err));
	} else {
		rc = kt_verifier_check(j->v.cur_hash, j->pw[0], j->pwlen[0]);
		if (rc == 0 && j->check_prev) {
			rc = kt_verifier_check(j->v.prev_hash, j->pw[0], j->pwlen[0]);
			if (rc == 1)
				rc = 2;
		}
	}
	j->rc = rc;
	wipe_passwords(j);
}

/* Called with the lock held, as worker.c's wake_loop is: the eventfd is
 * readable exactly when finished jobs wait. */
static void wake_loop(int efd)
{
	kt_efd_wake(efd, "hasher");
}

static void *hasher_main(void *arg)
{
	struct kt_hasher *h = arg;
	struct kt_hash_job *j;

	for (;;) {
		pthread_mutex_lock(&h->lock);
		while (!h->stopping && h->checks.head == NULL && h->makes.head == NULL)
			pthread_cond_wait(&h->wake, &h->lock);
		if (h->stopping) {
			/* Jobs still queued are freed by kt_hasher_stop. */
			pthread_mutex_unlock(&h->lock);
			break;
		}
		j = pop(&h->checks);
		if (j == NULL)
			j = pop(&h->makes);
		pthread_mutex_unlock(&h->lock);
		/* The wait above ends only with a job queued or a stop. */
		if (j == NULL)
			continue;

		job_run(j);

		pthread_mutex_lock(&h->lock);
		push(&h->done, j);
		wake_loop(h->efd);
		pthread_mutex_unlock(&h->lock);
	}
	return NULL;
}

static void hasher_free(struct kt_hasher *h)
{
	kt_hash_job_free_list(h->checks.head);
	kt_hash_job_free_list(h->makes.head);
	kt_hash_job_free_list(h->done.head);
	if (h->efd >= 0)
		close(h->efd);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* The thread is created with every asynchronous signal blocked (a new
 * thread inherits its creator's mask), so signals stay the loop's; the
 * synchronous ones stay deliverable, as in worker.c, for the sanitizers. */
int kt_hasher_start(struct kt_hasher **out)
{
	struct kt_hasher *h = NULL;
	sigset_t all, old;
	bool masked = false;
	int rc = -ENOMEM;

	*out = NULL;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto out;
	h->efd = -1;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	h->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (h->efd < 0) {
		rc = -errno;
		goto out;
	}
	sigfillset(&all);
	sigdelset(&all, SIGSEGV);
	sigdelset(&all, SIGBUS);
	sigdelset(&all, SIGFPE);
	sigdelset(&all, SIGILL);
	sigdelset(&all, SIGTRAP);
	sigdelset(&all, SIGSYS);
	rc = -pthread_sigmask(SIG_SETMASK, &all, &old);
	if (rc < 0)
		goto out;
	masked = true;
	rc = -pthread_create(&h->thread, NULL, hasher_main, h);
	if (rc < 0)
		goto out;
	h->started = true;
	*out = h;
	h = NULL;
out:
	if (masked)
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (h != NULL)
		hasher_free(h);
	return rc;
}

int kt_hasher_fd(const struct kt_hasher *h)
{
	return h->efd;
}

void kt_hasher_submit(struct kt_hasher *h, struct kt_hash_job *j)
{
	pthread_mutex_lock(&h->lock);
	push(j->kind == KT_HASH_CHECK ? &h->checks : &h->makes, j);
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
}

static void cancel_from(struct queue *q, bool (*match)(const struct kt_hash_job *j, void *arg),
			void *arg, struct queue *taken)
{
	struct queue keep = { NULL, NULL };
	struct kt_hash_job *j;

	while ((j = pop(q)) != NULL)
		push(match(j, arg) ? taken : &keep, j);
	*q = keep;
}

struct kt_hash_job *kt_hasher_cancel(struct kt_hasher *h,
				     bool (*match)(const struct kt_hash_job *j, void *arg),
				     void *arg)
{
	struct queue taken = { NULL, NULL };

	pthread_mutex_lock(&h->lock);
	cancel_from(&h->checks, match, arg, &taken);
	cancel_from(&h->makes, match, arg, &taken);
	pthread_mutex_unlock(&h->lock);
	return taken.head;
}

struct kt_hash_job *kt_hasher_take_done(struct kt_hasher *h)
{
	struct kt_hash_job *list;

	pthread_mutex_lock(&h->lock);
	kt_efd_drain(h->efd, "hasher");
	list = h->done.head;
	h->done.head = NULL;
	h->done.tail = NULL;
	pthread_mutex_unlock(&h->lock);
	return list;
}

void kt_hasher_stop(struct kt_hasher *h)
{
	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = true;
	pthread_cond_broadcast(&h->wake);
	pthread_mutex_unlock(&h->lock);
	if (h->started)
		pthread_join(h->thread, NULL);
	hasher_free(h);
}
