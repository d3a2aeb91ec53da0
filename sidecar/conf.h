/* keyturnd's configuration file (INI, parsed with libinih): [daemon],
 * [events], [secret:NAME], [login:USER], [login:*], [file:PATH] and
 * [rotate:NAME]. Every error names the file, the
 * line and the key at fault; nothing is half-applied. */
#ifndef KT_CONF_H
#define KT_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/awssched.h"
#include "common/log.h"

#define KT_DEFAULT_CONFIG SYSCONFDIR "/keyturn/keyturnd.conf"
#define KT_DEFAULT_SOCKET RUNSTATEDIR "/keyturn/keyturnd.sock"
#define KT_DEFAULT_STATE_DIR LOCALSTATEDIR "/lib/keyturn"
#define KT_DEFAULT_HTTP_TOKEN RUNSTATEDIR "/keyturn/http-token"

struct kt_secret_cfg {
	char *name;         /* the name local callers use (after "secret:") */
	char *id;           /* SecretId sent to AWS: `id =`, default the name */
	char **allow_users; /* user names as written */
	size_t nallow_users;
	uid_t *allow_uids; /* resolved at load; unknown names are an error */
	char **allow_groups;
	size_t nallow_groups;
	gid_t *allow_gids;
	char *key; /* default JSON key for `get`, or NULL */
	/* systemd credentials ([credentials] socket): the credential ID systemd
	 * asks for, and the units that may load it (glob patterns, separated by
	 * spaces, as written); NULL when not served as a credential. */
	char *credential;
	char *allow_units;
	int line; /* where the section starts */
};

struct kt_login_cfg {
	char *user;            /* account name, or "*" for every account without a section */
	char *secret;          /* a SecretId or a [secret:] name; may hold %H and %u */
	char *key;             /* JSON key of the password, or NULL for the whole value */
	long previous_grace;   /* s AWSPREVIOUS is accepted after a rotation; 0 = never */
	bool offline;          /* keep a salted hash on disk */
	long offline_max_age;  /* s an offline verifier may be used; default 7 days */
	long rotate_after_use; /* s after a successful login its secret rotates; 0: never */
	int line;
};

/* [file:PATH]: a file kept equal to a secret (sinks.c, privhelper.c). */
enum kt_file_format { KT_FILE_RAW, KT_FILE_ENV, KT_FILE_JSON };

struct kt_file_cfg {
	char *path;   /* absolute, without "." or ".." components */
	char *secret; /* a configured [secret:] name */
	char *format_text;
	char *key; /* raw only: the JSON member written instead of the value */
	char *owner;
	char *group;
	char *mode_text;
	char *on_change; /* as written */
	char *run_as;
	char *on_stale_text;
	long on_change_timeout; /* s, default 30 */
	/* Resolved at load. (uid_t)-1 and (gid_t)-1: the writer's own. */
	enum kt_file_format format;
	uid_t uid;
	gid_t gid;
	mode_t mode;   /* default 0400 */
	char **argv;   /* on_change split into words (no shell), NULL-terminated; or NULL */
	uid_t run_uid; /* (uid_t)-1: the helper's own (root when started as root) */
	gid_t run_gid;
	bool on_stale_remove; /* on_stale = remove */
	int line;
};

/* [rotate:NAME]: keyturnd runs the four rotation steps of [secret:NAME]
 * (rotate.c; GetRandomPassword's policy in the sm_random_opts members). */
struct kt_rotate_cfg {
	char *name;     /* a configured [secret:] name */
	char *schedule; /* rate() or cron() as written, or NULL: on request only */
	char *window_text;
	long length; /* 1..4096, default 32 */
	char *exclude_characters;
	bool exclude_numbers, exclude_punctuation, exclude_uppercase, exclude_lowercase;
	bool include_space, require_each_included_type; /* the latter default yes */
	char *key;                                      /* default the [secret:]'s key */
	char *set_command;
	char *test_command;
	char *run_as;
	long command_timeout; /* s, default 60 */
	/* Resolved at load. */
	struct kt_awssched sched; /* when schedule is set */
	long window;              /* s; 0: AWS's default for the window */
	const char *secret_id;    /* its [secret:]'s SecretId (points into cfg->secrets) */
	char **set_argv;          /* the commands split into words, or NULL */
	char **test_argv;
	uid_t run_uid; /* (uid_t)-1: the helper's own */
	gid_t run_gid;
	int line;
};

struct kt_config {
	char *path;
	/* [daemon] */
	char *region;
	char *endpoint;
	char *ca_file;
	bool fips;
	char *socket_path;
	char *user;
	char *state_dir;
	long check_interval;  /* default 3600 */
	long window_interval; /* default 30 */
	long max_stale;       /* default 86400 */
	enum kt_log_level log_level;
	long max_connections;         /* default 1024 */
	long idle_timeout;            /* s, default 60 */
	long max_connections_per_uid; /* default 32; root is not counted */
	long request_timeout; /* s a request frame may take from its first byte, default 5 */
	long max_wait;        /* s a get or refresh waits on AWS before `unavailable`, default 3 */
	long refresh_min_interval; /* s between `refresh` checks of one secret, default 10 */
	long workers;              /* AWS worker threads, default 2 */
	long locked_memory; /* bytes of locked arena for values, a power of two; default 4M */
	/* [http]: the Agent-compatible HTTP door (NULL listen: off) */
	char *http_listen;      /* addresses, checked by kt_http_listen_parse */
	char *http_token_file;  /* the token every request but /ping carries */
	char *http_token_group; /* the group of a token file keyturnd creates */
	char *http_path_prefix; /* GET {prefix}ID, like the Agent's path_prefix */
	bool http_metrics;      /* GET /metrics */
	/* [credentials]: systemd's LoadCredential= socket (NULL: off) */
	char *credentials_socket;
	/* [events]: rotation events from an SQS queue (NULL queue_url: off) */
	char *events_queue_url;
	long events_quiet_interval; /* s between safety-net checks while the queue works */
	/* sections */
	struct kt_secret_cfg *secrets;
	size_t nsecrets;
	struct kt_login_cfg *logins;
	size_t nlogins;
	struct kt_file_cfg *files;
	size_t nfiles;
	struct kt_rotate_cfg *rotates;
	size_t nrotates;
};

/* Loads and checks path. On error returns a negative errno and writes one
 * line to err: "FILE:LINE: [SECTION] KEY: what is wrong" (or "FILE: ..."
 * when the file cannot be read at all). Names in allow_users/allow_groups
 * are resolved to ids here. */
int kt_config_load(const char *path, struct kt_config **out, char *err, size_t errlen);
void kt_config_free(struct kt_config *cfg);

/* The [secret:NAME] section for name, or NULL. */
const struct kt_secret_cfg *kt_config_secret(const struct kt_config *cfg, const char *name);

/* The [rotate:NAME] section for name, or NULL. */
const struct kt_rotate_cfg *kt_config_rotate(const struct kt_config *cfg, const char *name);

/* The [rotate:] section whose secret has SecretId id, or NULL. */
const struct kt_rotate_cfg *kt_config_rotate_by_id(const struct kt_config *cfg, const char *id);

/* The [login:USER] section for user, else [login:*], else NULL. */
const struct kt_login_cfg *kt_config_login(const struct kt_config *cfg, const char *user);

/* Expands %H (host name), %u (user) and %% in a login's secret. Returns a
 * malloc'd string or NULL (ENOMEM, or a user name that cannot be part of a
 * SecretId). */
char *kt_config_expand(const char *pattern, const char *user, const char *host);

#endif
