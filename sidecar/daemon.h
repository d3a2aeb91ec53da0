/* keyturnd's state and event loop: one thread owns the cache, the socket
 * server and the timers (epoll over the listening socket, connections, a
 * signalfd, a one-second timerfd, the workers' and the hashing thread's
 * eventfds). */
#ifndef KT_DAEMON_H
#define KT_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "acl.h"
#include "cache.h"
#include "aws/client.h"
#include "conf.h"
#include "sched.h"
#include "worker.h"

struct kt_server;
struct kt_login_state;

/* Why the loop asked a worker for something (struct kt_job's purpose). */
enum kt_job_purpose {
	PURPOSE_PREFETCH = 1, /* the first value of secrets not yet fetched */
	PURPOSE_CURRENT,      /* the AWSCURRENT value (first, or after a rotation) */
	PURPOSE_VERSION,      /* another version a caller asked for */
	PURPOSE_CHECK,        /* DescribeSecret */
};

/* A request waiting for AWS: answered when its entry's job ends. */
enum kt_wait_kind {
	KT_WAIT_CURRENT, /* get of AWSCURRENT, no value yet */
	KT_WAIT_VERSION, /* get of another version or stage */
	KT_WAIT_REFRESH, /* refresh: waits for the whole check */
	KT_WAIT_VERIFY_VALUE,   /* verify: no value yet, waits for its fetch */
	KT_WAIT_VERIFY_RECHECK, /* verify: a failed password, waits for a check */
	KT_WAIT_VERIFY_DEFER,   /* verify: a failed password, waits for a check not due yet */
	KT_WAIT_VERIFY_OFFLINE, /* verify: no value, waits for the hashing thread's check */
};

struct kt_parked {
	struct kt_parked *next;
	uint64_t entry_id;
	uint64_t conn_id;
	enum kt_wait_kind kind;
	struct kt_peer peer;
	struct json_object *req;
	int64_t since_ms;       /* CLOCK_MONOTONIC ms when the request first parked */
};

#define KT_LAST_ERRORS 8

struct kt_daemon {
	struct kt_config *cfg;
	const char *config_path;
	struct aws_client *aws;
	struct kt_workers *workers;
	struct kt_cache cache;
	struct kt_server *server;
	struct kt_sched_cfg sched;
	struct kt_parked *parked;
	struct kt_login_state *login; /* login.c's state */
	int epfd, sigfd, tickfd;
	int clockfd;           /* CLOCK_REALTIME timerfd, cancelled when the wall clock steps */
	time_t clock_offset;   /* wall clock minus schedule clock, as last seen */
	/* started, throttled_until and ready_deadline are on the schedule
	 * clock (kt_sched_now(), CLOCK_BOOTTIME), as the entries' times are. */
	time_t started;
	time_t throttled_until;
	int throttle_failures;
	bool batch_denied;     /* BatchGetSecretValue refused: fetch one by one */
	bool stopping;
	bool sched_more;       /* schedule() left due work for lack of queue room */
	bool ready;            /* READY=1 sent */
	time_t ready_deadline;
	uint64_t watchdog_usec;
	unsigned long requests, denied, aws_jobs;
	struct {
		char secret[128];
		char message[400];
		time_t at;      /* wall clock: shown */
	} errors[KT_LAST_ERRORS];
	size_t error_next;
};

/* Sets up everything that start-up as root needs (config read, socket
 * bound, state directory), drops privileges, starts workers; then runs the
 * loop until SIGTERM/SIGINT. Returns the process exit code. */
int kt_daemon_main(const char *config_path, bool foreground);

/* Called by the ops: queue work for an entry. */
void kt_daemon_fetch_current(struct kt_daemon *d, struct kt_entry *e);
void kt_daemon_fetch_version(struct kt_daemon *d, struct kt_entry *e, const char *version_id,
			     const char *stage);
void kt_daemon_check(struct kt_daemon *d, struct kt_entry *e);

/* Parks a request (req reference taken) until e's job ends. */
int kt_daemon_park(struct kt_daemon *d, struct kt_entry *e, uint64_t conn_id,
		   const struct kt_peer *peer, enum kt_wait_kind kind, struct json_object *req);

/* Answers or re-parks now every request parked on e, without a job (a check
 * login.c deferred and then could not make). */
void kt_daemon_resume(struct kt_daemon *d, struct kt_entry *e);

/* Answers or re-parks now the request conn_id parked as kind, if it still
 * waits (the hashing thread's check for it ended). */
void kt_daemon_resume_conn(struct kt_daemon *d, uint64_t conn_id, enum kt_wait_kind kind);

/* Forgets the requests a connection had parked: it went away. */
void kt_daemon_drop_parked(struct kt_daemon *d, uint64_t conn_id);

/* Records a failure for status (never a value). */
void kt_daemon_note_error(struct kt_daemon *d, const char *secret, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
