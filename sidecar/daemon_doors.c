/* keyturnd's front doors wired to the ops: the socket server and the HTTP
 * door hand requests to kt_ops_handle, answers that waited go back to the
 * door their connection id names, and both doors keep a reserve of
 * connections for root and for uids that may read a secret. */
#include "config.h"

#include <limits.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"
#include "common/secmem.h"
#include "daemon_int.h"
#include "engine.h"

static enum kt_op_result serve_request(void *ctx, struct kt_request *r, struct json_object **answer)
{
	struct kt_daemon *d = ctx;

	return kt_ops_handle(d->ops, r, answer);
}

static void serve_gone(void *ctx, uint64_t conn_id)
{
	struct kt_daemon *d = ctx;

	kt_engine_drop_waiters(d->eng, conn_id);
	kt_ops_gone(d->ops, conn_id);
}

/* The reserve of connections is kept for root and for uids that may read
 * at least one configured secret. */
static bool serve_reserved(void *ctx, const struct kt_peer *p)
{
	struct kt_daemon *d = ctx;

	for (size_t i = 0; i < d->cfg->nsecrets; i++) {
		if (kt_acl_may_read(&d->cfg->secrets[i], p))
			return true;
	}
	return false;
}

/* The credentials door looks up credential and allow_units in the
 * configuration in effect, which a reload replaces. */
static const struct kt_config *cred_config(void *ctx)
{
	struct kt_daemon *d = ctx;

	return d->cfg;
}

void kt_doors_reply(void *ctx, uint64_t conn_id, struct json_object *answer)
{
	struct kt_daemon *d = ctx;

	if (kt_conn_door(conn_id) == KT_DOOR_HTTP && d->http != NULL)
		kt_hdoor_reply(d->http, conn_id, answer);
	else if (kt_conn_door(conn_id) == KT_DOOR_CREDENTIALS)
		kt_cred_reply(d->cred, conn_id, answer);
	else
		kt_server_reply(d->server, conn_id, answer);
}

/* Watching is the socket's alone (the op refuses other doors' ids). */
static int ops_watch(void *ctx, uint64_t conn_id)
{
	struct kt_daemon *d = ctx;

	return kt_server_watch(d->server, conn_id);
}

static int ops_push(void *ctx, uint64_t conn_id, struct json_object *answer, bool last)
{
	struct kt_daemon *d = ctx;

	return kt_server_push(d->server, conn_id, answer, last);
}

static void ops_door_stats(void *ctx, struct kt_door_stats *out)
{
	struct kt_daemon *d = ctx;

	out->connections = kt_server_connections(d->server);
	out->unsent = kt_server_unsent(d->server);
	out->refused = kt_server_refused(d->server);
	out->requests = kt_server_requests(d->server);
	out->socket = kt_server_socket_json(d->server);
}

static int http_metrics(void *ctx, const struct kt_peer *peer, struct kt_buf *out)
{
	struct kt_daemon *d = ctx;

	return kt_ops_metrics(d->ops, peer, out);
}

static void http_answered(void *ctx, const char *op, const char *result)
{
	struct kt_daemon *d = ctx;

	kt_ops_count_door(d->ops, KT_DOOR_HTTP, op, result);
}

static void ops_http_stats(void *ctx, struct kt_door_stats *out)
{
	struct kt_daemon *d = ctx;

	out->connections = kt_hdoor_connections(d->http);
	out->refused = kt_hdoor_refused(d->http);
	out->requests = kt_hdoor_requests(d->http);
	out->socket = kt_hdoor_json(d->http);
}

static void ops_cred_stats(void *ctx, struct kt_door_stats *out)
{
	struct kt_daemon *d = ctx;

	out->connections = kt_cred_connections(d->cred);
	out->refused = kt_cred_refused(d->cred);
	out->requests = kt_cred_served(d->cred);
	out->socket = json_object_new_object();
	if (out->socket != NULL && kt_cred_path(d->cred) != NULL)
		json_object_object_add(out->socket, "socket",
				       json_object_new_string(kt_cred_path(d->cred)));
}

/* Each connection costs a descriptor; so do the workers' HTTPS connections
 * and a few files. Raises the soft limit to the hard one and keeps
 * max_connections under it, so accept never runs out in normal service. */
static long connection_limit(long wanted)
{
	struct rlimit rl;
	long room;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return wanted;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)LONG_MAX)
		return wanted;
	room = (long)rl.rlim_cur - 64;
	if (room < 16)
		room = 16;
	if (wanted > room) {
		log_warn("max_connections = %ld is more than the open-file limit (%ld) allows; "
			 "using %ld",
			 wanted, (long)rl.rlim_cur, room);
		return room;
	}
	return wanted;
}

/* The socket server's limits from a configuration. The reserve, for root
 * and uids that may read a secret, is an eighth of max_connections (at
 * least 16) on top of it. */
static void server_limits(const struct kt_config *cfg, struct kt_server_limits *lim)
{
	long reserve = cfg->max_connections / 8 < 16 ? 16 : cfg->max_connections / 8;

	lim->max_conns = connection_limit(cfg->max_connections + reserve) - reserve;
	if (lim->max_conns < 1)
		lim->max_conns = 1;
	lim->reserve = reserve;
	lim->per_uid = cfg->max_connections_per_uid;
	lim->idle_timeout = cfg->idle_timeout;
	lim->request_timeout = cfg->request_timeout;
}

int kt_doors_prepare(struct kt_daemon *d, uid_t owner, gid_t group)
{
	struct kt_doors_prep *p = &d->prep;
	char err[512];
	int n, fd;

	p->socket_fd = kt_server_listen(d->cfg->socket_path, owner, group, err, sizeof(err));
	if (p->socket_fd < 0) {
		log_err("socket = %s: %s", d->cfg->socket_path, err);
		return -1;
	}
	if (d->cfg->credentials_socket != NULL) {
		fd = kt_cred_listen(d->cfg->credentials_socket, owner, group, err, sizeof(err));
		if (fd < 0) {
			log_err("[credentials] socket = %s: %s", d->cfg->credentials_socket, err);
			return -1;
		}
		p->cred_fd = fd;
		p->cred_open = true;
	}
	if (d->cfg->http_listen == NULL)
		return 0;
	n = kt_http_listen_parse(d->cfg->http_listen, p->http_addrs, err, sizeof(err));
	if (n < 0) {
		log_err("[http] listen = %s: %s", d->cfg->http_listen, err);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		fd = kt_hdoor_listen(&p->http_addrs[i], owner, group, err, sizeof(err));
		if (fd < 0) {
			log_err("[http] listen: %s", err);
			return -1;
		}
		p->http_fds[p->nhttp++] = fd;
	}
	if (kt_http_token_load(d->cfg->http_token_file, d->cfg->http_token_group, p->token, err,
			       sizeof(err)) < 0) {
		log_err("[http] %s", err);
		return -1;
	}
	return 0;
}

void kt_doors_env(struct kt_daemon *d, struct kt_ops_env *env)
{
	env->door_stats = ops_door_stats;
	env->http_stats = d->cfg->http_listen != NULL ? ops_http_stats : NULL;
	env->cred_stats = d->cfg->credentials_socket != NULL ? ops_cred_stats : NULL;
	env->reply = kt_doors_reply;
	env->watch = ops_watch;
	env->push = ops_push;
}

int kt_doors_start(struct kt_daemon *d)
{
	struct kt_server_handler h = { serve_request, serve_gone, serve_reserved, d };
	struct kt_hdoor_handler hh = { serve_request, serve_gone,    serve_reserved,
				       http_metrics,  http_answered, d };
	struct kt_hdoor_opts o = { d->prep.token, d->cfg->http_path_prefix, d->cfg->http_metrics };
	struct kt_server_limits lim;
	int rc;

	server_limits(d->cfg, &lim);
	rc = kt_server_new(d->loop, d->prep.socket_fd, d->cfg->socket_path, &lim, &h, &d->server);
	if (rc < 0) {
		log_err("socket server set-up: %s", strerror(-rc));
		return -1;
	}
	d->prep.socket_fd = -1;
	if (d->prep.cred_open) {
		struct kt_cred_handler ch = { serve_request, serve_gone, cred_config, d };

		d->prep.cred_open = false;
		rc = kt_cred_new(d->loop, d->prep.cred_fd, d->cfg->credentials_socket,
				 d->cfg->request_timeout, &ch, &d->cred);
		if (rc < 0) {
			close(d->prep.cred_fd);
			log_err("credentials door set-up: %s", strerror(-rc));
			return -1;
		}
		log_info("credentials door on %s", d->cfg->credentials_socket);
	}
	if (d->prep.nhttp == 0)
		return 0;
	rc = kt_hdoor_new(d->loop, d->prep.http_addrs, d->prep.http_fds, d->prep.nhttp, &lim, &o,
			  &hh, &d->http);
	d->prep.nhttp = 0;
	memset(d->prep.token, 0, sizeof(d->prep.token));
	if (rc < 0) {
		log_err("HTTP door set-up: %s", strerror(-rc));
		return -1;
	}
	log_info("HTTP door on %s%s", d->cfg->http_listen,
		 d->cfg->http_metrics ? ", with /metrics" : "");
	return 0;
}

void kt_doors_reload(struct kt_daemon *d, const struct kt_config *next)
{
	struct kt_server_limits lim;

	server_limits(next, &lim);
	kt_server_set_limits(d->server, &lim);
	if (d->http != NULL)
		kt_hdoor_set_limits(d->http, &lim);
	if (!kt_str_eq(next->http_listen, d->cfg->http_listen) ||
	    strcmp(next->http_token_file, d->cfg->http_token_file) != 0 ||
	    strcmp(next->http_path_prefix, d->cfg->http_path_prefix) != 0 ||
	    next->http_metrics != d->cfg->http_metrics)
		log_warn("reload: [http] changes take effect at the next restart");
	kt_cred_set_timeout(d->cred, next->request_timeout);
	if (!kt_str_eq(next->credentials_socket, d->cfg->credentials_socket))
		log_warn("reload: [credentials] socket changes take effect at the next restart");
}

void kt_doors_stop_accepting(struct kt_daemon *d)
{
	kt_server_stop_accepting(d->server);
	kt_hdoor_stop_accepting(d->http);
	kt_cred_stop_accepting(d->cred);
}

bool kt_doors_flushing(const struct kt_daemon *d)
{
	return kt_server_flushing(d->server);
}

void kt_doors_free(struct kt_daemon *d, bool clean)
{
	kt_hdoor_free(d->http);
	d->http = NULL;
	kt_cred_free(d->cred);
	d->cred = NULL;
	if (d->prep.cred_open)
		close(d->prep.cred_fd);
	d->prep.cred_open = false;
	kt_server_free(d->server, clean && d->server != NULL);
	d->server = NULL;
	if (d->prep.socket_fd >= 0)
		close(d->prep.socket_fd);
	d->prep.socket_fd = -1;
	for (size_t i = 0; i < d->prep.nhttp; i++)
		close(d->prep.http_fds[i]);
	d->prep.nhttp = 0;
	memset(d->prep.token, 0, sizeof(d->prep.token));
}
