/* What daemon.c and daemon_doors.c share; not a public face. daemon.c
 * starts, reloads and stops keyturnd; daemon_doors.c wires the front doors
 * (the socket server and the HTTP door) to the ops. */
#ifndef KT_DAEMON_INT_H
#define KT_DAEMON_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "conf.h"
#include "credentials.h"
#include "http.h"
#include "http_listen.h"
#include "http_token.h"
#include "ops.h"
#include "server.h"

#define READY_WAIT 10 /* s to wait for the first fetches before READY=1 */

/* The doors' sockets, bound before the privileges are dropped. */
struct kt_doors_prep {
	int socket_fd;
	size_t nhttp;
	int http_fds[KT_HTTP_MAX_LISTEN];
	struct kt_listen_addr http_addrs[KT_HTTP_MAX_LISTEN];
	char token[KT_HTTP_TOKEN_MAX + 1];
	int cred_fd; /* the credentials socket, when cred_open */
	bool cred_open;
};

struct kt_daemon {
	struct kt_config *cfg;
	const char *config_path;
	struct aws_client *aws;
	struct kt_workers *workers;
	struct kt_loop *loop;
	struct kt_engine *eng;
	struct kt_login *login;
	struct kt_events *events; /* NULL without [events] */
	struct kt_ops *ops;
	struct kt_server *server;
	struct kt_hdoor *http;  /* NULL without [http] */
	struct kt_sinks *sinks; /* NULL without [file:] sections */
	int helper_fd;          /* the privileged helper's socket, until the sinks take it */
	pid_t helper_pid;
	struct kt_rotator *rotator; /* NULL without rotations */
	int rot_helper_fd;          /* the rotation's own helper, until the rotator takes it */
	struct kt_cred *cred;       /* NULL without [credentials] */
	struct kt_doors_prep prep;
	struct kt_loop_io *workers_io;
	struct kt_loop_timer *tick;
	int sigfd;
	int clockfd;         /* CLOCK_REALTIME timerfd, cancelled when the wall clock steps */
	time_t clock_offset; /* wall clock minus schedule clock, as last seen */
	/* On the schedule clock (kt_sched_now(), CLOCK_BOOTTIME). */
	time_t started;
	time_t ready_deadline;
	bool ready; /* READY=1 sent */
	uint64_t watchdog_usec;
};

/* Binds the socket and the HTTP door's addresses and reads (or makes) the
 * HTTP token, as root before the drop; owner and group get the sockets.
 * 0, or -1 with the error logged. */
int kt_doors_prepare(struct kt_daemon *d, uid_t owner, gid_t group);
/* Fills the ops' door callbacks. */
void kt_doors_env(struct kt_daemon *d, struct kt_ops_env *env);
/* Starts the doors in the loop (the ops exist). 0, or -1 logged. */
int kt_doors_start(struct kt_daemon *d);
/* Delivers the answer (taken) of a request that waited, to its door. */
void kt_doors_reply(void *ctx, uint64_t conn_id, struct json_object *answer);
/* A reload's new limits; [http] changes wait for a restart (logged). */
void kt_doors_reload(struct kt_daemon *d, const struct kt_config *next);
void kt_doors_stop_accepting(struct kt_daemon *d);
bool kt_doors_flushing(const struct kt_daemon *d);
/* Frees the doors, and the prepared sockets never started. */
void kt_doors_free(struct kt_daemon *d, bool clean);

#endif
