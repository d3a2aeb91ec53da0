/* keyturn.h: read secrets that keyturnd keeps in step with AWS Secrets
 * Manager, over its local socket. See libkeyturn(3).
 *
 * Threads: a handle is not safe for use by two threads at once; give each
 * thread its own handle (they are cheap), or serialise calls on a shared one.
 * Fork: a handle may be used in a child after fork(); the library notices
 * the new process and opens a connection of its own for it, so parent and
 * child never interleave on one socket. Descriptors are close-on-exec.
 * Signals: the library never raises SIGPIPE and retries calls cut by EINTR.
 * Secrets: values are kept in memory that is wiped when freed. */
#ifndef KEYTURN_H
#define KEYTURN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. The first six are the daemon's own, one to one. */
enum keyturn_error {
	KEYTURN_OK = 0,
	KEYTURN_E_BAD_REQUEST = 1, /* the daemon refused the request as malformed */
	KEYTURN_E_NOT_FOUND = 2,   /* no such secret, version, stage or key */
	KEYTURN_E_DENIED = 3,      /* this user may not read it */
	KEYTURN_E_UNAVAILABLE = 4, /* the daemon cannot get the value now */
	KEYTURN_E_THROTTLED = 5,   /* too many requests; try again later */
	KEYTURN_E_INTERNAL = 6,    /* the daemon failed */
	KEYTURN_E_CONNECT = 7,     /* the daemon cannot be reached */
	KEYTURN_E_UNTRUSTED = 8,   /* the socket or its peer is not root's or keyturn's */
	KEYTURN_E_PROTOCOL = 9,    /* a garbled, oversize or unexpected answer */
	KEYTURN_E_TIMEOUT = 10,    /* no answer in time */
	KEYTURN_E_NOMEM = 11,      /* out of memory */
	KEYTURN_E_INVALID = 12,    /* a bad argument */
};

/* A short, stable description of an error code. Never NULL. */
const char *keyturn_strerror(int err);

typedef struct keyturn keyturn_t;
typedef struct keyturn_value keyturn_value_t;

/* Opens a handle on the daemon's socket: socket_path, else the
 * KEYTURN_SOCKET environment variable, else /run/keyturn/keyturnd.sock.
 * The connection is made lazily, on the first request. Returns NULL with
 * *err set (err may be NULL) only when out of memory or the path is too long. */
keyturn_t *keyturn_open(const char *socket_path, int *err);

/* Closes the connection and wipes what the handle held. NULL is allowed. */
void keyturn_close(keyturn_t *kt);

/* Milliseconds to wait for the daemon per request (default 5000; > 0). */
int keyturn_set_timeout(keyturn_t *kt, int timeout_ms);

/* The message of the last error: the daemon's words, or the library's.
 * Never holds a secret. Valid until the next call on the handle. */
const char *keyturn_last_message(const keyturn_t *kt);

/* The last answer exactly as the daemon sent it (a JSON object), or NULL.
 * It may hold a secret value; it is wiped at the next call and at close. */
const char *keyturn_last_answer(const keyturn_t *kt, size_t *len);

/* Reads a secret: AWSCURRENT unless stage or version_id is given; key picks
 * one member of a JSON value. Each of stage, version_id and key may be NULL.
 * On KEYTURN_OK, *out is a value to free with keyturn_value_free(). */
int keyturn_get(keyturn_t *kt, const char *name, const char *stage, const char *version_id,
		const char *key, keyturn_value_t **out);

/* The value's bytes (a string value is also NUL-terminated) and length. */
const void *keyturn_value_data(const keyturn_value_t *v, size_t *len);
/* 1 when the secret is binary (SecretBinary), 0 for a string. */
int keyturn_value_is_binary(const keyturn_value_t *v);
const char *keyturn_value_name(const keyturn_value_t *v);
const char *keyturn_value_arn(const keyturn_value_t *v); /* may be NULL */
const char *keyturn_value_version_id(const keyturn_value_t *v);
size_t keyturn_value_stage_count(const keyturn_value_t *v);
const char *keyturn_value_stage(const keyturn_value_t *v, size_t i); /* NULL past the end */
/* When the daemon fetched the value (seconds since the epoch). */
int64_t keyturn_value_fetched_at(const keyturn_value_t *v);
/* 1 when the daemon could not confirm the value with AWS lately. */
int keyturn_value_is_stale(const keyturn_value_t *v);
/* Wipes and frees a value. NULL is allowed. */
void keyturn_value_free(keyturn_value_t *v);

/* Asks the daemon to check a secret with AWS now (rate-limited by the
 * daemon). On KEYTURN_OK and a non-NULL json, *json is the answer (the
 * secret's metadata, never its value), to free with keyturn_free_string(). */
int keyturn_refresh(keyturn_t *kt, const char *name, char **json);

/* The secrets this caller may read, with metadata and never values, as the
 * daemon's JSON answer. Free with keyturn_free_string(). */
int keyturn_list(keyturn_t *kt, char **json);

/* The daemon's status as its JSON answer. Free with keyturn_free_string(). */
int keyturn_status(keyturn_t *kt, char **json);

/* Checks a password for an account (for root callers such as PAM, or a
 * caller asking about its own account). service, rhost and tty go into the
 * daemon's audit log and may be NULL. On KEYTURN_OK, *match is 1 or 0. */
int keyturn_verify(keyturn_t *kt, const char *user, const char *password, size_t password_len,
		   const char *service, const char *rhost, const char *tty, int *match);

/* The most names one watch may hold. */
#define KEYTURN_WATCH_MAX 64

/* Watches secrets (version node KEYTURN_1.1): asks the daemon
 * to tell this handle of every new AWSCURRENT value of each of the n
 * names, on a connection of the handle's own, and waits for its consent.
 * Every name must be one the caller may read (else KEYTURN_E_DENIED, or
 * KEYTURN_E_NOT_FOUND for root and a name not configured). Any other call
 * on the handle ends the watch. */
int keyturn_watch(keyturn_t *kt, const char *const *names, size_t n);

/* The next change of a watched secret: waits up to timeout_ms (-1: no
 * limit, 0: only what has come) and returns KEYTURN_OK with the secret's
 * name, the new version's id and when the daemon fetched it (seconds since
 * the epoch); name and version_id are freed with keyturn_free_string(),
 * and any of the three may be NULL. Never a value: read it with
 * keyturn_get() on another handle. KEYTURN_E_TIMEOUT when nothing came in
 * time, or a signal cut the wait (the watch goes on). Any other code ends
 * the watch: KEYTURN_E_DENIED or KEYTURN_E_NOT_FOUND when a reload took a
 * secret away, KEYTURN_E_CONNECT when the daemon closed the connection,
 * KEYTURN_E_INVALID when the handle watches nothing. */
int keyturn_watch_next(keyturn_t *kt, int timeout_ms, char **name, char **version_id,
		       int64_t *fetched_at);

/* Wipes and frees a string the library returned. NULL is allowed. */
void keyturn_free_string(char *s);

#ifdef __cplusplus
}
#endif

#endif
