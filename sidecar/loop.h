/* keyturnd's event loop: one epoll set with the fds, timers, child processes
 * and end-of-turn work of every module, driven by one thread (the daemon's
 * loop thread; nothing here is thread-safe). Modules register callbacks and
 * never see epoll themselves.
 *
 * Why not sd-event or libevent: keyturnd needs fds, a few timers, pidfds and
 * end-of-turn hooks, about 500 lines; sd-event would add libsystemd to a
 * daemon that speaks sd_notify itself and must build on rpm/deb hosts
 * without it, and libevent brings its own buffers and a much larger API.
 * docs/ARCHITECTURE.md has the longer version.
 *
 * A turn: wait in epoll_wait (not at all when a hook asked for more or work
 * is deferred; else until the earliest timer or the caller's timeout),
 * deliver each event to its fd's callback unless that fd was deleted earlier
 * in the turn, fire the timers that are due, run the deferred work, run the
 * end-of-turn hooks, then free the handles deleted during the turn. Memory a
 * batch may still point to is therefore never freed inside it.
 *
 * Handles (kt_loop_io, kt_loop_timer) belong to the loop: the caller keeps
 * the pointer only to modify or delete it, and never frees it. */
#ifndef KT_LOOP_H
#define KT_LOOP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct kt_loop;
struct kt_loop_io;    /* one watched fd */
struct kt_loop_timer; /* one timer */

typedef void kt_loop_io_fn(void *ctx, uint32_t events); /* epoll events (EPOLLIN, ...) */
typedef void kt_loop_fn(void *ctx);
/* End-of-turn hook: true = it left work for the next turn. */
typedef bool kt_loop_turn_fn(void *ctx);
/* status as from waitpid(), or -1 when the child had been reaped elsewhere. */
typedef void kt_loop_child_fn(void *ctx, pid_t pid, int status);

/* 0 or -errno. */
int kt_loop_new(struct kt_loop **out);

/* Frees every handle and what is still deferred (without running it), and
 * closes only the fds the loop opened itself (its epoll fd, pidfds); the
 * fds given to kt_loop_io_add stay open. Children still watched are not
 * reaped. Not from a callback. NULL is a no-op. */
void kt_loop_free(struct kt_loop *l);

/* Watches fd for events (EPOLLIN, EPOLLOUT, ...; level-triggered unless
 * EPOLLET is given). fn(ctx, revents) runs for each event. The fd stays the
 * caller's: delete the handle before closing it. 0 or -errno (-EEXIST when
 * fd is watched already, -EPERM for a regular file); *out is set on 0. */
int kt_loop_io_add(struct kt_loop *l, int fd, uint32_t events, kt_loop_io_fn *fn, void *ctx,
		   struct kt_loop_io **out);

/* Changes the events watched. 0 or -errno (-ENOENT for a deleted handle). */
int kt_loop_io_mod(struct kt_loop *l, struct kt_loop_io *io, uint32_t events);

/* Stops watching (EPOLL_CTL_DEL) at once; safe from any callback, including
 * io's own. The handle is freed at the end of the turn (at once outside a
 * turn), and no event of this turn is delivered for it after the call
 * (epoll may have returned events for it already in this batch: they are
 * skipped). Does not close fd. NULL is a no-op. */
void kt_loop_io_del(struct kt_loop *l, struct kt_loop_io *io);

/* Timers on CLOCK_MONOTONIC, in ms. every: periodic, first after
 * interval_ms (-EINVAL for 0); a periodic timer that fell behind (the loop
 * was busy) fires once, not once per missed period, and its next deadline
 * is counted from then. after: one shot; the handle is freed after it fires
 * (kt_loop_timer_del on it from its own callback is a harmless no-op; after
 * that turn the pointer is stale). Timers due at once fire in the order of
 * their deadlines; one added by a timer's callback fires in a later turn at
 * the earliest. 0 or -errno; out may be NULL for a timer never deleted. */
int kt_loop_every(struct kt_loop *l, unsigned interval_ms, kt_loop_fn *fn, void *ctx,
		  struct kt_loop_timer **out);
int kt_loop_after(struct kt_loop *l, unsigned delay_ms, kt_loop_fn *fn, void *ctx,
		  struct kt_loop_timer **out);

/* Cancels a timer; safe from callbacks, including its own. NULL is a no-op. */
void kt_loop_timer_del(struct kt_loop *l, struct kt_loop_timer *t);

/* Watches a child process of this one with a pidfd (pidfd_open, Linux >=
 * 5.3). When the child exits it is reaped (waitpid) and fn runs once with
 * its status; the pidfd is then closed. A child that already exited but was
 * not reaped yet is reported in the next turn. Returns 0, -ENOSYS when
 * pidfd_open is unavailable (so the caller can decide what to do without
 * it), -ESRCH when no such process is left, or another -errno. */
int kt_loop_child(struct kt_loop *l, pid_t pid, kt_loop_child_fn *fn, void *ctx);

/* Work run once at the end of the current turn, after every event and timer
 * of it, in the order queued. Work deferred by deferred work or by a hook
 * (or outside a turn) runs in the next turn, which then does not sleep.
 * 0 or -ENOMEM. */
int kt_loop_defer(struct kt_loop *l, kt_loop_fn *fn, void *ctx);

/* Hooks run at the end of every turn, in the order added, after the
 * deferred work; if any returns true the next wait does not sleep (timeout
 * 0). Every hook runs each turn, whatever the others return. Hooks stay
 * until kt_loop_free. 0 or -ENOMEM. */
int kt_loop_on_turn_end(struct kt_loop *l, kt_loop_turn_fn *fn, void *ctx);

/* Runs turns until kt_loop_quit; returns the code given to kt_loop_quit, or
 * -errno when epoll_wait fails (EINTR is retried). -EBUSY from a callback:
 * turns do not nest. */
int kt_loop_run(struct kt_loop *l);

/* From a callback: the current turn finishes (deferred work and hooks run),
 * then kt_loop_run returns code. Outside a turn, the next kt_loop_run
 * returns code without a turn. */
void kt_loop_quit(struct kt_loop *l, int code);

/* One turn that waits at most timeout_ms (-1: no limit; the wait is also
 * bounded by timers, hooks and deferred work), for a shutdown that flushes
 * output for a bounded time once kt_loop_run has returned. Returns the
 * number of fd events and timers handled (0 also when a signal interrupted
 * the wait), or -errno when epoll_wait fails; -EBUSY from a callback. */
int kt_loop_turn(struct kt_loop *l, int timeout_ms);

#endif
