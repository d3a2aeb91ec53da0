/* keyturnd's rotation thread: runs the rotations the loop queues, one at
 * a time (rotate_steps.c's kt_rot_run), and hands them back through an
 * eventfd, with the step a running one reached for the state file. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/kt_efd.h"
#include "rotate_int.h"

/* --- the thread ------------------------------------------------------------- */

struct kt_rot_thread {
	struct aws_client *aws;
	int helper_fd;
	int efd;     /* done jobs or progress: the loop's */
	int stop_fd; /* an eventfd written once at stop: ends a wait on the helper */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	struct kt_rot_job *queue, *done;
	bool has_progress;
	enum kt_rot_step progress;
};

static void on_progress(void *ctx, enum kt_rot_step next)
{
	struct kt_rot_thread *t = ctx;

	pthread_mutex_lock(&t->lock);
	t->has_progress = true;
	t->progress = next;
	pthread_mutex_unlock(&t->lock);
	kt_efd_wake(t->efd, "rotation");
}

static void push_done(struct kt_rot_thread *t, struct kt_rot_job *j)
{
	struct kt_rot_job **tail = &t->done;

	while (*tail != NULL)
		tail = &(*tail)->next;
	j->next = NULL;
	*tail = j;
}

static void *thread_main(void *arg)
{
	struct kt_rot_thread *t = arg;

	pthread_mutex_lock(&t->lock);
	for (;;) {
		struct kt_rot_job *j;

		while (!t->stopping && t->queue == NULL)
			pthread_cond_wait(&t->cond, &t->lock);
		j = t->queue;
		if (j == NULL)
			break;
		t->queue = j->next;
		if (t->stopping) {
			for (int s = 0; s < KT_ROT_NSTEPS; s++)
				j->result[s] = "not_run";
			j->outcome = KT_ROT_STOPPING;
			j->step = j->from;
			snprintf(j->message, sizeof(j->message), "%s: keyturnd is stopping",
				 j->name);
		} else {
			t->has_progress = false;
			j->progress = on_progress;
			j->progress_ctx = t;
			pthread_mutex_unlock(&t->lock);
			kt_rot_run(t->aws, t->helper_fd, t->stop_fd, j);
			pthread_mutex_lock(&t->lock);
			t->has_progress = false;
		}
		push_done(t, j);
		kt_efd_wake(t->efd, "rotation");
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int kt_rot_thread_start(struct aws_client *c, int helper_fd, struct kt_rot_thread **out)
{
	struct kt_rot_thread *t = calloc(1, sizeof(*t));
	int rc;

	if (t == NULL) {
		if (helper_fd >= 0)
			close(helper_fd);
		return -ENOMEM;
	}
	t->aws = c;
	t->helper_fd = helper_fd;
	t->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	t->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (t->efd < 0 || t->stop_fd < 0) {
		rc = -errno;
		goto fail;
	}
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	rc = -pthread_create(&t->thread, NULL, thread_main, t);
	if (rc < 0) {
		pthread_mutex_destroy(&t->lock);
		pthread_cond_destroy(&t->cond);
		goto fail;
	}
	*out = t;
	return 0;
fail:
	if (t->efd >= 0)
		close(t->efd);
	if (t->stop_fd >= 0)
		close(t->stop_fd);
	if (helper_fd >= 0)
		close(helper_fd);
	free(t);
	return rc;
}

int kt_rot_thread_fd(const struct kt_rot_thread *t)
{
	return t->efd;
}

void kt_rot_thread_submit(struct kt_rot_thread *t, struct kt_rot_job *j)
{
	struct kt_rot_job **tail;

	pthread_mutex_lock(&t->lock);
	j->next = NULL;
	for (tail = &t->queue; *tail != NULL; tail = &(*tail)->next)
		;
	*tail = j;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

struct kt_rot_job *kt_rot_thread_take(struct kt_rot_thread *t)
{
	struct kt_rot_job *j;

	kt_efd_drain(t->efd, "rotation");
	pthread_mutex_lock(&t->lock);
	j = t->done;
	t->done = NULL;
	pthread_mutex_unlock(&t->lock);
	return j;
}

bool kt_rot_thread_progress(struct kt_rot_thread *t, enum kt_rot_step *next)
{
	bool has;

	pthread_mutex_lock(&t->lock);
	has = t->has_progress;
	*next = t->progress;
	pthread_mutex_unlock(&t->lock);
	return has;
}

struct kt_rot_job *kt_rot_thread_stop(struct kt_rot_thread *t)
{
	struct kt_rot_job *done;

	if (t == NULL)
		return NULL;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
	kt_efd_wake(t->stop_fd, "rotation stop");
	pthread_join(t->thread, NULL);
	done = t->done;
	if (t->helper_fd >= 0)
		close(t->helper_fd);
	close(t->efd);
	close(t->stop_fd);
	pthread_mutex_destroy(&t->lock);
	pthread_cond_destroy(&t->cond);
	free(t);
	return done;
}
