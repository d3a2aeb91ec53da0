/* keyturnd's event loop (loop.h): an epoll set, a short sorted list of
 * timers that bounds epoll_wait's timeout, pidfds for child processes, and
 * the deferred work and hooks of the end of a turn. Deleted handles wait on
 * a list until the turn ends, because the batch epoll returned may still
 * hold events that point to them. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

#define BATCH 64 /* events taken from epoll per turn */

struct kt_loop_io {
	int fd;
	bool dead;         /* off epoll and the live list; on the dead list */
	kt_loop_io_fn *fn; /* NULL for a child's pidfd */
	kt_loop_child_fn *child_fn;
	void *ctx;
	pid_t pid;                      /* of the child, when child_fn is set */
	struct kt_loop_io *prev, *next; /* live list, or next on the dead list */
};

struct kt_loop_timer {
	uint64_t deadline; /* ns, CLOCK_MONOTONIC */
	uint64_t interval; /* ns; 0 for a one-shot timer */
	uint64_t seq;      /* when it was put on the list (see fire_timers) */
	bool dead;         /* off the list; on the dead list */
	kt_loop_fn *fn;
	void *ctx;
	struct kt_loop_timer *prev, *next; /* sorted list, or next on the dead list */
};

struct kt_loop_work {
	kt_loop_fn *fn;
	void *ctx;
	struct kt_loop_work *next;
};

struct kt_loop_hook {
	kt_loop_turn_fn *fn;
	void *ctx;
	struct kt_loop_hook *next;
};

struct kt_loop {
	int epfd;
	bool in_turn;
	bool more; /* a hook asked for another turn at once */
	bool quit;
	int quit_code;
	struct kt_loop_io *ios;       /* live handles, for kt_loop_free */
	struct kt_loop_io *dead_ios;  /* freed at the end of the turn */
	struct kt_loop_timer *timers; /* by deadline, earliest first */
	struct kt_loop_timer *dead_timers;
	uint64_t timer_seq;
	struct kt_loop_work *work, **work_tail;
	struct kt_loop_hook *hooks, **hooks_tail;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int kt_loop_new(struct kt_loop **out)
{
	struct kt_loop *l = calloc(1, sizeof(*l));

	if (l == NULL)
		return -ENOMEM;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		int err = -errno;

		free(l);
		return err;
	}
	l->work_tail = &l->work;
	l->hooks_tail = &l->hooks;
	*out = l;
	return 0;
}

static void io_free(struct kt_loop_io *io)
{
	/* A pidfd is the loop's own; any other fd is the caller's. */
	if (io->child_fn != NULL && io->fd >= 0)
		close(io->fd);
	free(io);
}

static void free_dead(struct kt_loop *l)
{
	while (l->dead_ios != NULL) {
		struct kt_loop_io *io = l->dead_ios;

		l->dead_ios = io->next;
		io_free(io);
	}
	while (l->dead_timers != NULL) {
		struct kt_loop_timer *t = l->dead_timers;

		l->dead_timers = t->next;
		free(t);
	}
}

void kt_loop_free(struct kt_loop *l)
{
	if (l == NULL)
		return;
	free_dead(l);
	while (l->ios != NULL) {
		struct kt_loop_io *io = l->ios;

		l->ios = io->next;
		io_free(io);
	}
	while (l->timers != NULL) {
		struct kt_loop_timer *t = l->timers;

		l->timers = t->next;
		free(t);
	}
	while (l->work != NULL) {
		struct kt_loop_work *w = l->work;

		l->work = w->next;
		free(w);
	}
	while (l->hooks != NULL) {
		struct kt_loop_hook *h = l->hooks;

		l->hooks = h->next;
		free(h);
	}
	close(l->epfd);
	free(l);
}

/* Registers an io made by the caller; on failure it is left to the caller
 * to free, and nothing of it is in the loop. */
static int io_register(struct kt_loop *l, struct kt_loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
		return -errno;
	io->next = l->ios;
	if (l->ios != NULL)
		l->ios->prev = io;
	l->ios = io;
	return 0;
}

int kt_loop_io_add(struct kt_loop *l, int fd, uint32_t events, kt_loop_io_fn *fn, void *ctx,
		   struct kt_loop_io **out)
{
	struct kt_loop_io *io = calloc(1, sizeof(*io));
	int rc;

	if (io == NULL)
		return -ENOMEM;
	io->fd = fd;
	io->fn = fn;
	io->ctx = ctx;
	rc = io_register(l, io, events);
	if (rc < 0) {
		free(io);
		return rc;
	}
	if (out != NULL)
		*out = io;
	return 0;
}

int kt_loop_io_mod(struct kt_loop *l, struct kt_loop_io *io, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = io };

	if (io->dead)
		return -ENOENT;
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
		return -errno;
	return 0;
}

void kt_loop_io_del(struct kt_loop *l, struct kt_loop_io *io)
{
	if (io == NULL || io->dead)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, io->fd, NULL);
	if (io->prev != NULL)
		io->prev->next = io->next;
	else
		l->ios = io->next;
	if (io->next != NULL)
		io->next->prev = io->prev;
	io->dead = true;
	io->prev = NULL;
	/* A pidfd is closed at once, like the caller would close its own fd;
	 * only the memory waits. */
	if (io->child_fn != NULL) {
		close(io->fd);
		io->fd = -1;
	}
	if (!l->in_turn) {
		io_free(io);
		return;
	}
	io->next = l->dead_ios;
	l->dead_ios = io;
}

/* Puts t on the sorted list behind every timer of the same deadline, so
 * that timers due together fire in the order they were set. */
static void timer_insert(struct kt_loop *l, struct kt_loop_timer *t)
{
	struct kt_loop_timer *prev = NULL, *cur = l->timers;

	while (cur != NULL && cur->deadline <= t->deadline) {
		prev = cur;
		cur = cur->next;
	}
	t->seq = l->timer_seq++;
	t->prev = prev;
	t->next = cur;
	if (prev != NULL)
		prev->next = t;
	else
		l->timers = t;
	if (cur != NULL)
		cur->prev = t;
}

static void timer_unlink(struct kt_loop *l, struct kt_loop_timer *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		l->timers = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = NULL;
	t->next = NULL;
}

/* Off the list; freed at the end of the turn (at once outside one), since
 * the timer being fired may be this one. */
static void timer_retire(struct kt_loop *l, struct kt_loop_timer *t)
{
	t->dead = true;
	if (!l->in_turn) {
		free(t);
		return;
	}
	t->next = l->dead_timers;
	l->dead_timers = t;
}

static int timer_add(struct kt_loop *l, uint64_t delay_ns, uint64_t interval_ns, kt_loop_fn *fn,
		     void *ctx, struct kt_loop_timer **out)
{
	struct kt_loop_timer *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -ENOMEM;
	t->deadline = now_ns() + delay_ns;
	t->interval = interval_ns;
	t->fn = fn;
	t->ctx = ctx;
	timer_insert(l, t);
	if (out != NULL)
		*out = t;
	return 0;
}

int kt_loop_every(struct kt_loop *l, unsigned interval_ms, kt_loop_fn *fn, void *ctx,
		  struct kt_loop_timer **out)
{
	/* A period of 0 would fire in every turn and keep the loop awake. */
	if (interval_ms == 0)
		return -EINVAL;
	return timer_add(l, interval_ms * 1000000ull, interval_ms * 1000000ull, fn, ctx, out);
}

int kt_loop_after(struct kt_loop *l, unsigned delay_ms, kt_loop_fn *fn, void *ctx,
		  struct kt_loop_timer **out)
{
	return timer_add(l, delay_ms * 1000000ull, 0, fn, ctx, out);
}

void kt_loop_timer_del(struct kt_loop *l, struct kt_loop_timer *t)
{
	if (t == NULL || t->dead)
		return;
	timer_unlink(l, t);
	timer_retire(l, t);
}

/* Fires the timers due at now, earliest first. Only timers that were on
 * the list when this started are fired: one added or re-armed by a
 * callback has a seq of at least limit and waits for a later turn, so that
 * a callback that sets a timer of 0 ms cannot keep this loop going. A
 * timer added here has a deadline of now or later and sorts behind every
 * older one due, so stopping at it skips none of them. */
static int fire_timers(struct kt_loop *l, uint64_t now)
{
	uint64_t limit = l->timer_seq;
	int fired = 0;

	while (l->timers != NULL && l->timers->deadline <= now && l->timers->seq < limit) {
		struct kt_loop_timer *t = l->timers;

		timer_unlink(l, t);
		if (t->interval != 0) {
			/* Re-armed before the callback, which may delete it. A
			 * timer that fell behind fires once and counts on from
			 * now rather than catching up period by period. */
			t->deadline += t->interval;
			if (t->deadline <= now)
				t->deadline = now + t->interval;
			timer_insert(l, t);
		} else {
			timer_retire(l, t);
		}
		t->fn(t->ctx);
		fired++;
	}
	return fired;
}

/* The pidfd turned readable: the child has exited (or, in theory, the
 * event is spurious and waitpid finds nothing yet). */
static void child_event(struct kt_loop *l, struct kt_loop_io *io)
{
	int status = -1;
	pid_t r;

	do {
		r = waitpid(io->pid, &status, WNOHANG);
	} while (r < 0 && errno == EINTR);
	if (r == 0)
		return;
	/* ECHILD: reaped by someone else (SIGCHLD ignored, another waitpid);
	 * the caller still hears of it once, with status -1. */
	if (r < 0)
		status = -1;
	kt_loop_io_del(l, io);
	io->child_fn(io->ctx, io->pid, status);
}

int kt_loop_child(struct kt_loop *l, pid_t pid, kt_loop_child_fn *fn, void *ctx)
{
#ifdef SYS_pidfd_open
	struct kt_loop_io *io = calloc(1, sizeof(*io));
	int rc;

	if (io == NULL)
		return -ENOMEM;
	/* pidfds are always close-on-exec. */
	io->fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (io->fd < 0) {
		rc = -errno;
		free(io);
		return rc;
	}
	io->child_fn = fn;
	io->ctx = ctx;
	io->pid = pid;
	rc = io_register(l, io, EPOLLIN);
	if (rc < 0) {
		io_free(io);
		return rc;
	}
	return 0;
#else
	(void)l;
	(void)pid;
	(void)fn;
	(void)ctx;
	return -ENOSYS;
#endif
}

int kt_loop_defer(struct kt_loop *l, kt_loop_fn *fn, void *ctx)
{
	struct kt_loop_work *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -ENOMEM;
	w->fn = fn;
	w->ctx = ctx;
	*l->work_tail = w;
	l->work_tail = &w->next;
	return 0;
}

/* Runs the work queued so far; what it queues waits for the next turn. */
static void run_deferred(struct kt_loop *l)
{
	struct kt_loop_work *list = l->work;

	l->work = NULL;
	l->work_tail = &l->work;
	while (list != NULL) {
		struct kt_loop_work *w = list;
		kt_loop_fn *fn = w->fn;
		void *ctx = w->ctx;

		list = w->next;
		free(w);
		fn(ctx);
	}
}

int kt_loop_on_turn_end(struct kt_loop *l, kt_loop_turn_fn *fn, void *ctx)
{
	struct kt_loop_hook *h = calloc(1, sizeof(*h));

	if (h == NULL)
		return -ENOMEM;
	h->fn = fn;
	h->ctx = ctx;
	*l->hooks_tail = h;
	l->hooks_tail = &h->next;
	return 0;
}

/* epoll_wait's timeout: 0 when work waits, else the earliest of the
 * caller's limit and the first timer, rounded up to whole ms so that a
 * timer is never woken for before its deadline. */
static int wait_timeout(struct kt_loop *l, int timeout_ms, uint64_t now)
{
	uint64_t ms;

	if (l->more || l->work != NULL)
		return 0;
	if (l->timers == NULL)
		return timeout_ms < 0 ? -1 : timeout_ms;
	if (l->timers->deadline <= now)
		return 0;
	ms = (l->timers->deadline - now + 999999u) / 1000000u;
	if (ms > INT_MAX)
		ms = INT_MAX;
	if (timeout_ms >= 0 && (uint64_t)timeout_ms < ms)
		return timeout_ms;
	return (int)ms;
}

int kt_loop_turn(struct kt_loop *l, int timeout_ms)
{
	struct epoll_event evs[BATCH];
	int handled = 0;
	int n;

	if (l->in_turn)
		return -EBUSY;
	n = epoll_wait(l->epfd, evs, BATCH, wait_timeout(l, timeout_ms, now_ns()));
	if (n < 0) {
		if (errno != EINTR)
			return -errno;
		/* A signal: the rest of the turn still runs (timers may be
		 * due), and the caller's loop waits again. */
		n = 0;
	}
	l->in_turn = true;
	for (int i = 0; i < n; i++) {
		struct kt_loop_io *io = evs[i].data.ptr;

		/* Deleted by an earlier event of this batch. */
		if (io->dead)
			continue;
		if (io->child_fn != NULL)
			child_event(l, io);
		else
			io->fn(io->ctx, evs[i].events);
		handled++;
	}
	if (l->timers != NULL)
		handled += fire_timers(l, now_ns());
	run_deferred(l);
	l->more = false;
	for (struct kt_loop_hook *h = l->hooks; h != NULL; h = h->next) {
		if (h->fn(h->ctx))
			l->more = true;
	}
	free_dead(l);
	l->in_turn = false;
	return handled;
}

int kt_loop_run(struct kt_loop *l)
{
	int code;

	if (l->in_turn)
		return -EBUSY;
	while (!l->quit) {
		int rc = kt_loop_turn(l, -1);

		if (rc < 0)
			return rc;
	}
	code = l->quit_code;
	l->quit = false;
	l->quit_code = 0;
	return code;
}

void kt_loop_quit(struct kt_loop *l, int code)
{
	l->quit = true;
	l->quit_code = code;
}
