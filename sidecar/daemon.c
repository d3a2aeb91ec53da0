/* keyturnd's start-up and event loop: the daemon wires the parts. Start-up
 * does what needs root (read the configuration, bind the socket, make the
 * state directory), drops to the service user, then starts the AWS
 * workers. The loop (loop.c) runs the engine (the cache and every AWS
 * decision), the socket server (a front door) and the ops that turn
 * requests into engine calls; the daemon only connects them and handles
 * signals, reloads, the wall clock and systemd. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/err.h"
#include "common/kt_json.h"
#include "common/kt_time.h"
#include "common/log.h"
#include "common/secmem.h"
#include "daemon.h"
#include "engine.h"
#include "login/login.h"
#include "loop.h"
#include "notify.h"
#include "ops.h"
#include "privdrop.h"
#include "server.h"
#include "worker.h"
#include "events.h"
#include "privhelper.h"
#include "rotate.h"
#include "sinks.h"

#include "daemon_int.h"

/* --- the wiring: what each part asks of the others ---------------------- */

static void backend_submit(void *ctx, struct kt_job *job)
{
	kt_workers_submit(ctx, job);
}

static size_t backend_busy(void *ctx)
{
	return kt_workers_busy(ctx);
}

/* --- the loop's events --------------------------------------------------- */

static void maybe_ready(struct kt_daemon *d, time_t now)
{
	size_t waiting;

	if (d->ready)
		return;
	waiting = kt_engine_unfetched(d->eng);
	if (waiting > 0 && now < d->ready_deadline)
		return;
	d->ready = true;
	log_info("ready: %zu secrets configured, %zu not fetched yet", kt_engine_cache(d->eng)->n,
		 waiting);
	kt_notify_ready(waiting == 0 ? "serving" : "serving; some secrets not fetched yet");
}

static void workers_event(void *ctx, uint32_t events)
{
	struct kt_daemon *d = ctx;

	(void)events;
	kt_engine_jobs_done(d->eng, kt_workers_take_done(d->workers));
	maybe_ready(d, kt_sched_now());
}

static void hasher_event(void *ctx, uint32_t events)
{
	struct kt_daemon *d = ctx;

	(void)events;
	kt_login_hashed(d->login);
}

/* The wall clock is watched two ways: a CLOCK_REALTIME timerfd armed with
 * TFD_TIMER_CANCEL_ON_SET is cancelled by the kernel at any settimeofday or
 * clock_settime (an NTP step, a VM's clock sync), and each tick compares the
 * wall clock with the schedule clock, which also sees what the timerfd
 * cannot (a resume from suspend, or a wall clock that only this process sees
 * differently, as under libfaketime). */
static void arm_clock_watch(struct kt_daemon *d)
{
	struct itimerspec its = { { 0, 0 }, { 0, 0 } };
	int flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET;

	/* Far enough away never to fire; only the cancellation matters. */
	its.it_value.tv_sec = time(NULL) + 10L * 366 * 86400;
	if (timerfd_settime(d->clockfd, flags, &its, NULL) < 0)
		log_warn_errno("the wall clock is watched once a second only: timerfd");
}

static void clock_watch(struct kt_daemon *d, bool cancelled)
{
	time_t now = kt_sched_now(), step = 0;
	uint64_t expirations;

	if (cancelled) {
		while (read(d->clockfd, &expirations, sizeof(expirations)) > 0)
			;
		arm_clock_watch(d);
	}
	if (kt_sched_clock_stepped(&d->clock_offset, now, time(NULL), &step))
		kt_engine_clock_stepped(d->eng, step);
}

static void clock_event(void *ctx, uint32_t events)
{
	(void)events;
	clock_watch(ctx, true);
}

static void tick(void *ctx)
{
	struct kt_daemon *d = ctx;

	clock_watch(d, false);
	kt_engine_tick(d->eng);
	kt_login_tick(d->login);
	kt_sinks_tick(d->sinks);
	if (d->rotator != NULL)
		kt_rotator_tick(d->rotator);
	maybe_ready(d, kt_sched_now());
	if (d->watchdog_usec > 0)
		kt_notify_watchdog();
}

/* --- reload ---------------------------------------------------------------- */

static void swap_str(char **a, char **b)
{
	char *t = *a;

	*a = *b;
	*b = t;
}

/* Settings that only a restart applies stay as they are in effect, so the
 * next reload compares the file with what runs, not with the last file. */
static void keep_running_settings(struct kt_config *next, struct kt_config *running)
{
	swap_str(&next->socket_path, &running->socket_path);
	swap_str(&next->user, &running->user);
	swap_str(&next->state_dir, &running->state_dir);
	swap_str(&next->region, &running->region);
	swap_str(&next->endpoint, &running->endpoint);
	swap_str(&next->ca_file, &running->ca_file);
	swap_str(&next->http_listen, &running->http_listen);
	swap_str(&next->http_token_file, &running->http_token_file);
	swap_str(&next->http_token_group, &running->http_token_group);
	swap_str(&next->http_path_prefix, &running->http_path_prefix);
	next->http_metrics = running->http_metrics;
	next->workers = running->workers;
	next->fips = running->fips;
	next->locked_memory = running->locked_memory;
}

/* Reads the configuration file again and applies it; on failure the one in
 * use stays and err says why (the file, line and key at fault). 0 or -1. */
static int reload(struct kt_daemon *d, char *err, size_t errlen)
{
	struct kt_config *cfg = NULL;
	int64_t began = kt_mono_ms();

	kt_notify_reloading();
	if (kt_config_load(d->config_path, &cfg, err, errlen) < 0) {
		log_err("reload: %s; keeping the configuration in use", err);
		kt_notify_ready("reload failed; old configuration kept");
		return -1;
	}
	if (strcmp(cfg->socket_path, d->cfg->socket_path) != 0 ||
	    strcmp(cfg->user, d->cfg->user) != 0 ||
	    strcmp(cfg->state_dir, d->cfg->state_dir) != 0 ||
	    !kt_str_eq(cfg->region, d->cfg->region) || !kt_str_eq(cfg->endpoint, d->cfg->endpoint))
		log_warn("reload: socket, user, state_dir, region and endpoint changes take effect "
			 "at the next restart");
	if (cfg->workers != d->cfg->workers || cfg->fips != d->cfg->fips ||
	    !kt_str_eq(cfg->ca_file, d->cfg->ca_file) ||
	    cfg->locked_memory != d->cfg->locked_memory)
		log_warn("reload: workers, fips, ca_file and locked_memory changes take effect at "
			 "the next restart");
	if (kt_engine_configure(d->eng, cfg) < 0) {
		kt_errf(err, errlen, "out of memory");
		log_err("reload: out of memory; keeping the configuration in use");
		kt_config_free(cfg);
		kt_notify_ready("reload failed; old configuration kept");
		return -1;
	}
	kt_doors_reload(d, cfg);
	keep_running_settings(cfg, d->cfg);
	kt_ops_configure(d->ops, cfg);
	kt_login_configure(d->login, cfg);
	kt_events_configure(d->events, cfg);
	kt_sinks_configure(d->sinks, cfg);
	if (d->rotator != NULL)
		kt_rotator_configure(d->rotator, cfg);
	else if (kt_rotator_wanted(cfg))
		log_warn("reload: rotations added; they start when keyturnd restarts");
	kt_config_free(d->cfg);
	d->cfg = cfg;
	log_set_level(cfg->log_level);
	kt_engine_tick(d->eng);
	/* The whole reload holds the loop: its cost is worth a figure. */
	log_info("reloaded %s: %zu secrets, %zu logins, in %lld ms", d->config_path, cfg->nsecrets,
		 cfg->nlogins, (long long)(kt_mono_ms() - began));
	kt_notify_ready("serving");
	return 0;
}

static int ops_rotate(void *ctx, const char *name, uint64_t conn_id)
{
	struct kt_daemon *d = ctx;

	return d->rotator != NULL ? kt_rotator_request(d->rotator, name, conn_id) : -ENOENT;
}

static struct json_object *ops_rotations_status(void *ctx)
{
	struct kt_daemon *d = ctx;

	return d->rotator != NULL ? kt_rotator_status(d->rotator) : NULL;
}

/* A login's password matched: with rotate_after_use, its secret rotates a
 * while later (LAPS's post-authentication reset). */
static void login_used(void *ctx, const char *user, const struct kt_login_cfg *l,
		       const struct kt_entry *e)
{
	struct kt_daemon *d = ctx;

	(void)user;
	if (l->rotate_after_use > 0 && d->rotator != NULL)
		kt_rotator_used(d->rotator, e->cfg != NULL ? e->cfg->id : e->name, e->name, l->key,
				l->rotate_after_use);
}

/* The reload op (keyturnctl reload, systemd's ExecReload): the same, and
 * the caller hears how it went. */
static int ops_reload(void *ctx, char *err, size_t errlen)
{
	struct kt_daemon *d = ctx;

	log_info("reload asked for over the socket: reloading %s", d->config_path);
	return reload(d, err, errlen);
}

static struct json_object *ops_files_status(void *ctx)
{
	return kt_sinks_status(((struct kt_daemon *)ctx)->sinks);
}

static struct json_object *ops_events_status(void *ctx)
{
	return kt_events_status(((struct kt_daemon *)ctx)->events);
}

/* Answers what waits, cancels AWS calls, sends what is queued (for two
 * seconds at most); kt_daemon_main then joins the workers. */
static void stop(struct kt_daemon *d)
{
	time_t until = kt_sched_now() + 2;

	kt_notify_stopping();
	/* From here on the loop only sends what is queued: results of the
	 * AWS calls being cancelled and the schedule are not looked at. */
	kt_loop_io_del(d->loop, d->workers_io);
	kt_loop_timer_del(d->loop, d->tick);
	kt_doors_stop_accepting(d);
	kt_engine_stop(d->eng);
	kt_events_free(d->events);
	d->events = NULL;
	/* Parked callers are answered first; then the AWS calls in flight are
	 * cancelled, so the workers are joined within about a second. */
	kt_workers_abort(d->workers);
	/* Its AWS call is cancelled with the workers'; a command it waits
	 * for is left to the helper, and the rotation resumes at the next
	 * start. */
	kt_rotator_free(d->rotator);
	d->rotator = NULL;
	while (kt_doors_flushing(d) && kt_sched_now() < until) {
		if (kt_loop_turn(d->loop, 200) < 0)
			break;
	}
}

static void signal_event(void *ctx, uint32_t events)
{
	struct kt_daemon *d = ctx;
	struct signalfd_siginfo si;

	(void)events;
	while (read(d->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			char err[512];

			log_info("SIGHUP: reloading %s", d->config_path);
			(void)reload(d, err, sizeof(err));
		} else {
			log_info("%s: stopping", strsignal((int)si.ssi_signo));
			kt_loop_quit(d->loop, 0);
			return;
		}
	}
}

/* --- start-up -------------------------------------------------------------- */

/* What must happen as root, then the drop; or, started unprivileged, the
 * same without it. */
static int start_privileged(struct kt_daemon *d)
{
	char err[512];
	uid_t uid = geteuid();
	gid_t gid = getegid();
	bool root = uid == 0;
	int rc;

	if (root && kt_lookup_user(d->cfg->user, &uid, &gid, err, sizeof(err)) < 0) {
		log_err("user = %s: %s", d->cfg->user, err);
		return -1;
	}
	if (kt_doors_prepare(d, uid, gid) < 0)
		return -1;
	if (mkdir(d->cfg->state_dir, 0700) < 0 && errno != EEXIST) {
		log_err_errno("state_dir = %s", d->cfg->state_dir);
		return -1;
	}
	if (root && chown(d->cfg->state_dir, uid, gid) < 0) {
		log_err_errno("state_dir = %s: cannot give it to %s", d->cfg->state_dir,
			      d->cfg->user);
		return -1;
	}
	/* File sinks: the helper keeps what keyturnd starts with (root, or
	 * nothing more than keyturnd's own user) after the drop. */
	if (d->cfg->nfiles > 0) {
		rc = kt_privhelper_start(d->cfg, &d->helper_fd, &d->helper_pid);
		if (rc < 0) {
			log_err("file sinks: cannot start the privileged helper: %s",
				strerror(-rc));
			return -1;
		}
		log_info("file sinks: privileged helper started (pid %ld, %s)", (long)d->helper_pid,
			 root ? "root" : "unprivileged");
	}
	/* Rotations' commands: a helper of their own, so that a long test
	 * command holds up no file write. */
	for (size_t i = 0; i < d->cfg->nrotates; i++) {
		const struct kt_rotate_cfg *r = &d->cfg->rotates[i];
		pid_t pid;

		if (r->set_argv == NULL && r->test_argv == NULL)
			continue;
		rc = kt_privhelper_start(d->cfg, &d->rot_helper_fd, &pid);
		if (rc < 0) {
			log_err("rotation: cannot start the privileged helper: %s", strerror(-rc));
			return -1;
		}
		log_info("rotation: privileged helper started (pid %ld, %s)", (long)pid,
			 root ? "root" : "unprivileged");
		break;
	}
	if (!root) {
		log_info("running as uid %lu: no privileges to drop", (unsigned long)uid);
		return 0;
	}
	if (uid == 0) {
		log_warn("user = %s is root: keyturnd keeps every privilege; use a service user",
			 d->cfg->user);
		return 0;
	}
	rc = kt_drop_privileges(d->cfg->user, uid, gid, err, sizeof(err));
	if (rc < 0) {
		log_err("dropping privileges to %s: %s", d->cfg->user, err);
		return -1;
	}
	log_info("dropped privileges to %s (uid %lu, gid %lu)", d->cfg->user, (unsigned long)uid,
		 (unsigned long)gid);
	return 0;
}

static int start_aws(struct kt_daemon *d)
{
	struct aws_client_opts o = { 0 };
	struct aws_error err;

	o.region = d->cfg->region;
	o.endpoint = d->cfg->endpoint;
	o.ca_file = d->cfg->ca_file;
	o.fips = d->cfg->fips;
	o.use_imds_region = true;
	if (aws_client_new(&o, &d->aws, &err) < 0) {
		log_err("AWS client: %s", err.message);
		return -1;
	}
	log_info("AWS: region %s, endpoint %s", aws_client_region(d->aws),
		 aws_client_endpoint(d->aws));
	if (kt_workers_start(d->aws, (int)d->cfg->workers, &d->workers) < 0) {
		log_err("cannot start %ld worker threads", d->cfg->workers);
		return -1;
	}
	return 0;
}

static int start_loop(struct kt_daemon *d)
{
	struct kt_ops_env env = { 0 };
	struct kt_engine_backend backend = { backend_submit, backend_busy, d->workers };

	d->clockfd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK | TFD_CLOEXEC);
	if (kt_loop_new(&d->loop) < 0 || d->clockfd < 0 ||
	    kt_loop_io_add(d->loop, d->sigfd, EPOLLIN, signal_event, d, NULL) < 0 ||
	    kt_loop_io_add(d->loop, d->clockfd, EPOLLIN, clock_event, d, NULL) < 0 ||
	    kt_loop_io_add(d->loop, kt_workers_fd(d->workers), EPOLLIN, workers_event, d,
			   &d->workers_io) < 0 ||
	    kt_loop_every(d->loop, 1000, tick, d, &d->tick) < 0) {
		log_err_errno("event loop set-up");
		return -1;
	}
	if (kt_engine_new(d->cfg, &backend, NULL, &d->eng) < 0 ||
	    kt_engine_configure(d->eng, d->cfg) < 0 ||
	    kt_login_new(d->eng, d->cfg, &d->login) < 0) {
		log_err("out of memory");
		return -1;
	}
	env.eng = d->eng;
	env.login = d->login;
	env.aws = d->aws;
	env.started = d->started;
	kt_doors_env(d, &env);
	env.reload = ops_reload;
	env.events_status = ops_events_status;
	env.files_status = ops_files_status;
	env.rotate = ops_rotate;
	env.rotations_status = ops_rotations_status;
	env.ctx = d;
	if (kt_ops_new(&env, d->cfg, &d->ops) < 0) {
		log_err("out of memory");
		return -1;
	}
	if (kt_doors_start(d) < 0)
		return -1;
	if (kt_loop_io_add(d->loop, kt_login_fd(d->login), EPOLLIN, hasher_event, d, NULL) < 0) {
		log_err_errno("event loop set-up");
		return -1;
	}
	kt_login_configure(d->login, d->cfg);
	if (d->cfg->events_queue_url != NULL &&
	    kt_events_new(d->loop, d->eng, d->cfg, aws_client_region(d->aws), &d->events) < 0)
		return -1;
	if (d->helper_fd >= 0) {
		int fd = d->helper_fd;

		d->helper_fd = -1;
		if (kt_sinks_new(d->loop, d->eng, d->cfg, fd, d->helper_pid, &d->sinks) < 0)
			return -1;
	}
	if (kt_rotator_wanted(d->cfg)) {
		int fd = d->rot_helper_fd;

		d->rot_helper_fd = -1;
		if (kt_rotator_new(d->loop, d->eng, d->aws, d->cfg, fd, kt_doors_reply, d,
				   &d->rotator) < 0)
			return -1;
		kt_login_on_use(d->login, login_used, d);
	}
	return 0;
}

int kt_daemon_main(const char *config_path, bool foreground)
{
	struct kt_daemon d = { .sigfd = -1,
			       .clockfd = -1,
			       .prep.socket_fd = -1,
			       .helper_fd = -1,
			       .rot_helper_fd = -1 };
	char err[512];
	sigset_t mask;
	int rc = 1;

	d.config_path = config_path;
	/* One malloc arena: the workers allocate little, and per-thread arenas
	 * would each keep their own free pages of parsed AWS answers. */
	mallopt(M_ARENA_MAX, 1);
	log_init("keyturnd", foreground, KT_LOG_INFO);
	if (kt_config_load(config_path, &d.cfg, err, sizeof(err)) < 0) {
		log_err("%s", err);
		return 1;
	}
	log_set_level(d.cfg->log_level);
	/* Values are kept only in locked memory, so a locked_memory that does
	 * not fit RLIMIT_MEMLOCK ends the start here, before anything runs. */
	if (kt_harden_process((size_t)d.cfg->locked_memory, err, sizeof(err)) < 0) {
		log_err("%s", err);
		goto out;
	}
	/* Signals are read from a signalfd by the loop; workers inherit the
	 * blocked mask, so none lands on them. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (d.sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) {
		log_err_errno("signalfd");
		goto out;
	}
	if (kt_notify_init() < 0)
		log_warn("NOTIFY_SOCKET is set but unusable; systemd will not hear from keyturnd");
	d.watchdog_usec = kt_notify_watchdog_usec();
	if (start_privileged(&d) < 0 || start_aws(&d) < 0)
		goto out;
	d.started = kt_sched_now();
	d.ready_deadline = d.started + READY_WAIT;
	d.clock_offset = time(NULL) - d.started;
	if (start_loop(&d) < 0)
		goto out;
	arm_clock_watch(&d);
	log_info("keyturnd %s serving %s with %zu secrets", PACKAGE_VERSION, d.cfg->socket_path,
		 kt_engine_cache(d.eng)->n);
	kt_engine_tick(d.eng);
	maybe_ready(&d, d.started);
	rc = kt_loop_run(d.loop);
	if (rc < 0)
		log_err("event loop: %s", strerror(-rc));
	else
		stop(&d);
	rc = rc < 0 ? 1 : 0;
out:
	if (d.workers != NULL)
		kt_workers_stop(d.workers);
	kt_rotator_free(d.rotator);
	kt_doors_free(&d, true);
	kt_events_free(d.events);
	kt_ops_free(d.ops);
	kt_login_free(d.login);
	kt_sinks_free(d.sinks);
	if (d.helper_fd >= 0)
		close(d.helper_fd);
	if (d.rot_helper_fd >= 0)
		close(d.rot_helper_fd);
	kt_engine_free(d.eng);
	kt_loop_free(d.loop);
	aws_client_free(d.aws);
	kt_config_free(d.cfg);
	kt_notify_close();
	if (d.clockfd >= 0)
		close(d.clockfd);
	if (d.sigfd >= 0)
		close(d.sigfd);
	log_info("stopped");
	return rc;
}
