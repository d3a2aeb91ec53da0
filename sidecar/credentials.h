/* keyturnd's systemd credentials door (kt_cred_*): the socket a unit's
 * LoadCredential=ID:/run/keyturn/credentials.sock connects to. systemd
 * (PID 1, uid 0) binds its end to the abstract address
 * "\0<random>/unit/<unit name>/<credential ID>", connects, shuts down its
 * writing side and reads to EOF. The door reads that address with
 * getpeername(), refuses every peer but uid 0, finds the [secret:] whose
 * credential is the ID and whose allow_units match the unit, asks the ops
 * for the value (as root) through its handler, writes exactly its bytes and
 * closes. Anything else is closed without a byte and logged, never with a
 * value. Like the other doors it knows nothing of the daemon: it takes the
 * loop, a handler and the configuration in effect (asked for per
 * connection, so a reload's credential and allow_units apply at once). */
#ifndef KT_CREDENTIALS_H
#define KT_CREDENTIALS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "conf.h"
#include "request.h"

struct kt_loop;
struct kt_cred;

/* Connections open at once; more are closed at accept. systemd asks once
 * per credential at a unit's start, so this is far above normal use. */
#define KT_CRED_MAX_CONNS 64

/* The longest abstract address, unit name and credential ID taken. */
#define KT_CRED_UNIT_MAX 255
#define KT_CRED_ID_MAX 255

/* What the door calls; ctx is passed back. */
struct kt_cred_handler {
	/* A get request ({"v":1,"op":"get","secret":NAME}, the peer root,
	 * r->out NULL): answered now, or parked and answered with
	 * kt_cred_reply. */
	enum kt_op_result (*request)(void *ctx, struct kt_request *r, struct json_object **answer);
	/* A parked request's connection went away: forget conn_id. */
	void (*gone)(void *ctx, uint64_t conn_id);
	/* The configuration in effect, looked at for each connection. */
	const struct kt_config *(*config)(void *ctx);
	void *ctx;
};

/* Binds path as kt_server_listen does, then makes the socket mode 0600
 * (owned by owner): only root, which is what systemd is, and the service
 * user itself may connect, and the door refuses all but uid 0. Run as
 * root before the drop. The fd, or -errno with err set. */
int kt_cred_listen(const char *path, uid_t owner, gid_t group, char *err, size_t errlen);

/* Serves fd (taken) in loop; request_timeout (s) bounds each connection.
 * 0 or -errno. */
int kt_cred_new(struct kt_loop *loop, int fd, const char *path, long request_timeout,
		const struct kt_cred_handler *h, struct kt_cred **out);
/* Closes every connection (parked ones through gone), the socket, and
 * removes the socket's path if it is still the one bound. NULL: no-op. */
void kt_cred_free(struct kt_cred *c);

/* Delivers the answer (taken) of a parked request; dropped when its
 * connection has gone. */
void kt_cred_reply(struct kt_cred *c, uint64_t conn_id, struct json_object *answer);

/* A reload's request_timeout, for connections accepted from now on. */
void kt_cred_set_timeout(struct kt_cred *c, long request_timeout);

/* Stops accepting (the daemon is stopping). NULL: no-op. */
void kt_cred_stop_accepting(struct kt_cred *c);

/* The socket's path as bound (a reload does not move it), or NULL. */
const char *kt_cred_path(const struct kt_cred *c);
size_t kt_cred_connections(const struct kt_cred *c);
unsigned long kt_cred_served(const struct kt_cred *c);
unsigned long kt_cred_refused(const struct kt_cred *c);

/* Parses an abstract address as systemd binds it (name: the bytes after
 * the leading NUL, len of them): "<random>/unit/<unit>/<id>", each part
 * printable ASCII without spaces or '/', unit and id at most
 * KT_CRED_UNIT_MAX and KT_CRED_ID_MAX bytes. Copies them NUL-terminated
 * into unit and id (room for the maximum and a NUL). 0, or -EINVAL with
 * why (a static string). */
int kt_cred_parse_address(const char *name, size_t len, char *unit, char *id, const char **why);

/* The [secret:] of cfg serving credential id to unit, or NULL with why
 * ("unknown credential ID" or "unit not allowed"). */
const struct kt_secret_cfg *kt_cred_match(const struct kt_config *cfg, const char *unit,
					  const char *id, const char **why);

#endif
