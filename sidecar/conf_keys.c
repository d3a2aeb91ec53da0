/* The keys of keyturnd's configuration: the key table of each section kind,
 * the check of a value against its key's type and its storing (allow lists
 * resolved to ids), kt_config_free for all that was stored, and the error
 * record every check writes. conf.c reads the file and its sections and
 * calls in here (conf_int.h). */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "conf.h"
#include "conf_int.h"
#include "conf_values.h"
#include "http_listen.h"
#include "common/secmem.h"

#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* The string types come first: IS_STRING tells them from the rest. */
enum vtype {
	V_TEXT,    /* non-empty, no control characters */
	V_WORD,    /* non-empty, printable ASCII, no spaces */
	V_PATTERN, /* a V_WORD that may hold %H, %u and %% */
	V_PATH,    /* an absolute V_WORD */
	V_SOCKET,  /* a V_PATH that fits in sun_path */
	V_URL,     /* http:// or https:// */
	V_LISTEN,  /* loopback addresses and unix: paths (kt_http_listen_parse) */
	V_PREFIX,  /* a V_WORD that starts and ends with '/' */
	V_REGION,  /* lower-case letters, digits and '-' */
#define IS_STRING(t) ((t) <= V_REGION)
	V_BOOL,
	V_SECS,  /* whole seconds in [min, max] */
	V_COUNT, /* a whole number in [min, max] */
	V_POW2,  /* bytes, with K or M, a power of two in [min, max] */
	V_LEVEL,
	V_USERS,
	V_GROUPS,
};

struct keydef {
	const char *name;
	enum vtype type;
	size_t off; /* of the field in kt_config, kt_secret_cfg or kt_login_cfg */
	long min, max;
};

#define D(f) offsetof(struct kt_config, f)
static const struct keydef daemon_keys[] = {
	{ "region", V_REGION, D(region), 0, 0 },
	{ "endpoint", V_URL, D(endpoint), 0, 0 },
	{ "ca_file", V_PATH, D(ca_file), 0, 0 },
	{ "fips", V_BOOL, D(fips), 0, 0 },
	{ "socket", V_SOCKET, D(socket_path), 0, 0 },
	{ "user", V_WORD, D(user), 0, 0 },
	{ "state_dir", V_PATH, D(state_dir), 0, 0 },
	{ "check_interval", V_SECS, D(check_interval), 1, WEEK },
	{ "window_interval", V_SECS, D(window_interval), 1, DAY },
	{ "max_stale", V_SECS, D(max_stale), 0, YEAR },
	{ "log_level", V_LEVEL, D(log_level), 0, 0 },
	{ "max_connections", V_COUNT, D(max_connections), 1, 65536 },
	{ "idle_timeout", V_SECS, D(idle_timeout), 1, DAY },
	{ "max_connections_per_uid", V_COUNT, D(max_connections_per_uid), 1, 65536 },
	{ "request_timeout", V_SECS, D(request_timeout), 1, 3600 },
	{ "max_wait", V_SECS, D(max_wait), 1, 3600 },
	{ "refresh_min_interval", V_SECS, D(refresh_min_interval), 1, DAY },
	{ "workers", V_COUNT, D(workers), 1, 16 },
	{ "locked_memory", V_POW2, D(locked_memory), KT_SECURE_MIN, KT_SECURE_MAX },
	{ NULL, 0, 0, 0, 0 },
};
#undef D

#define D(f) offsetof(struct kt_config, f)
static const struct keydef events_keys[] = {
	{ "queue_url", V_URL, D(events_queue_url), 0, 0 },
	{ "quiet_interval", V_SECS, D(events_quiet_interval), 60, WEEK },
	{ NULL, 0, 0, 0, 0 },
};
#undef D

#define D(f) offsetof(struct kt_config, f)
static const struct keydef http_keys[] = {
	{ "listen", V_LISTEN, D(http_listen), 0, 0 },
	{ "token_file", V_PATH, D(http_token_file), 0, 0 },
	{ "token_group", V_WORD, D(http_token_group), 0, 0 },
	{ "path_prefix", V_PREFIX, D(http_path_prefix), 0, 0 },
	{ "metrics", V_BOOL, D(http_metrics), 0, 0 },
	{ NULL, 0, 0, 0, 0 },
};
#undef D

#define D(f) offsetof(struct kt_config, f)
static const struct keydef credentials_keys[] = {
	{ "socket", V_SOCKET, D(credentials_socket), 0, 0 },
	{ NULL, 0, 0, 0, 0 },
};
#undef D

#define S(f) offsetof(struct kt_secret_cfg, f)
static const struct keydef secret_keys[] = {
	{ "id", V_WORD, S(id), 0, 0 },
	{ "allow_users", V_USERS, 0, 0, 0 },
	{ "allow_groups", V_GROUPS, 0, 0, 0 },
	{ "key", V_TEXT, S(key), 0, 0 },
	{ "credential", V_WORD, S(credential), 0, 0 },
	{ "allow_units", V_TEXT, S(allow_units), 0, 0 },
	{ NULL, 0, 0, 0, 0 },
};
#undef S

#define L(f) offsetof(struct kt_login_cfg, f)
static const struct keydef login_keys[] = {
	{ "secret", V_PATTERN, L(secret), 0, 0 },
	{ "key", V_TEXT, L(key), 0, 0 },
	{ "previous_grace", V_SECS, L(previous_grace), 0, 30 * DAY },
	{ "offline", V_BOOL, L(offline), 0, 0 },
	{ "offline_max_age", V_SECS, L(offline_max_age), 1, YEAR },
	{ "rotate_after_use", V_SECS, L(rotate_after_use), 0, YEAR },
	{ NULL, 0, 0, 0, 0 },
};
#undef L

#define F(f) offsetof(struct kt_file_cfg, f)
static const struct keydef file_keys[] = {
	{ "secret", V_WORD, F(secret), 0, 0 },
	{ "format", V_WORD, F(format_text), 0, 0 },
	{ "key", V_TEXT, F(key), 0, 0 },
	{ "owner", V_WORD, F(owner), 0, 0 },
	{ "group", V_WORD, F(group), 0, 0 },
	{ "mode", V_WORD, F(mode_text), 0, 0 },
	{ "on_change", V_TEXT, F(on_change), 0, 0 },
	{ "run_as", V_WORD, F(run_as), 0, 0 },
	{ "on_change_timeout", V_SECS, F(on_change_timeout), 1, 3600 },
	{ "on_stale", V_WORD, F(on_stale_text), 0, 0 },
	{ NULL, 0, 0, 0, 0 },
};
#undef F

#define R(f) offsetof(struct kt_rotate_cfg, f)
static const struct keydef rotate_keys[] = {
	{ "schedule", V_TEXT, R(schedule), 0, 0 },
	{ "window", V_WORD, R(window_text), 0, 0 },
	{ "length", V_COUNT, R(length), 1, 4096 },
	{ "exclude_characters", V_TEXT, R(exclude_characters), 0, 0 },
	{ "exclude_numbers", V_BOOL, R(exclude_numbers), 0, 0 },
	{ "exclude_punctuation", V_BOOL, R(exclude_punctuation), 0, 0 },
	{ "exclude_uppercase", V_BOOL, R(exclude_uppercase), 0, 0 },
	{ "exclude_lowercase", V_BOOL, R(exclude_lowercase), 0, 0 },
	{ "include_space", V_BOOL, R(include_space), 0, 0 },
	{ "require_each_included_type", V_BOOL, R(require_each_included_type), 0, 0 },
	{ "key", V_TEXT, R(key), 0, 0 },
	{ "set_command", V_TEXT, R(set_command), 0, 0 },
	{ "test_command", V_TEXT, R(test_command), 0, 0 },
	{ "run_as", V_WORD, R(run_as), 0, 0 },
	{ "command_timeout", V_SECS, R(command_timeout), 1, 3600 },
	{ NULL, 0, 0, 0, 0 },
};
#undef R

static const struct keydef *const tables[] = {
	[SEC_NONE] = NULL,
	[SEC_DAEMON] = daemon_keys,
	[SEC_EVENTS] = events_keys,
	[SEC_HTTP] = http_keys,
	[SEC_CREDENTIALS] = credentials_keys,
	[SEC_SECRET] = secret_keys,
	[SEC_LOGIN] = login_keys,
	[SEC_FILE] = file_keys,
	[SEC_ROTATE] = rotate_keys,
};

_Static_assert(sizeof(daemon_keys) / sizeof(daemon_keys[0]) <= MAX_KEYS,
	       "struct parser's key_line is too small for [daemon]");

int conf_fail_at(struct parser *p, int line, const char *section, const char *key, int err,
		 const char *fmt, ...)
{
	char msg[256], at[16] = "";
	va_list ap;

	if (p->err != 0)
		return p->err;
	p->err = err;
	p->errline = p->lineno;
	if (p->errbuf == NULL || p->errlen == 0)
		return err;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (line > 0)
		snprintf(at, sizeof(at), ":%d", line);
	snprintf(p->errbuf, p->errlen, "%s%s:%s%s%s%s%s%s %s", p->path, at, section ? " [" : "",
		 section ? section : "", section ? "]" : "", key ? " " : "", key ? key : "",
		 section || key ? ":" : "", msg);
	return err;
}

static int set_list(struct parser *p, const char *key, struct kt_secret_cfg *s, bool group,
		    const char *v)
{
	const char *what = group ? "group" : "user";
	char ***names = group ? &s->allow_groups : &s->allow_users;
	size_t *count = group ? &s->nallow_groups : &s->nallow_users;
	/* Room for every name the value can hold, and a NULL after them;
	 * *count grows only with complete entries, for kt_config_free. */
	size_t max = strlen(v) / 2 + 2, len;
	uint32_t id = 0;
	int ret;

	*names = calloc(max, sizeof(**names));
	if (group)
		s->allow_gids = calloc(max, sizeof(*s->allow_gids));
	else
		s->allow_uids = calloc(max, sizeof(*s->allow_uids));
	if (*names == NULL || (group ? (void *)s->allow_gids : (void *)s->allow_uids) == NULL)
		return conf_fail(p, key, -ENOMEM, "out of memory");
	for (v += strspn(v, " \t"); *v; v += len, v += strspn(v, " \t")) {
		len = strcspn(v, " \t");
		(*names)[*count] = strndup(v, len);
		if ((*names)[*count] == NULL)
			return conf_fail(p, key, -ENOMEM, "out of memory");
		ret = conf_lookup_id((*names)[*count], group, &id);
		if (ret == -ENOENT)
			return conf_fail(p, key, -EINVAL, "unknown %s '%s'", what,
					 (*names)[*count]);
		if (ret < 0)
			return conf_fail(p, key, ret, "cannot look up %s '%s': %s", what,
					 (*names)[*count], strerror(-ret));
		if (group)
			s->allow_gids[*count] = (gid_t)id;
		else
			s->allow_uids[*count] = (uid_t)id;
		(*count)++;
	}
	return 0;
}

/* A login's secret pattern is checked now, so that a bad escape is found
 * by --check-config and not at the first login. */
static int check_pattern(struct parser *p, const char *key, const char *v)
{
	for (const char *s = strchr(v, '%'); s != NULL; s = strchr(s + 2, '%')) {
		if (s[1] == '\0')
			return conf_fail(p, key, -EINVAL,
					 "'%%' at the end (write %%%% for a literal %%)");
		if (s[1] != '%' && s[1] != 'H' && s[1] != 'u')
			return conf_fail(p, key, -EINVAL,
					 "unknown escape '%%%c' (use %%H, %%u or %%%%)", s[1]);
	}
	return 0;
}

static int check_string(struct parser *p, const char *key, enum vtype type, const char *v)
{
	char why[200];

	if (type == V_TEXT || type == V_LISTEN) {
		for (const char *s = v; *s; s++) {
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				return conf_fail(p, key, -EINVAL, "control character in value");
		}
		if (type == V_LISTEN && kt_http_listen_parse(v, NULL, why, sizeof(why)) < 0)
			return conf_fail(p, key, -EINVAL, "%s", why);
		return 0;
	}
	if (!conf_is_word(v))
		return conf_fail(p, key, -EINVAL, "'%.64s' must be printable and hold no spaces",
				 v);
	switch (type) {
	case V_PATTERN:
		return check_pattern(p, key, v);
	case V_PATH:
	case V_SOCKET:
		if (v[0] != '/')
			return conf_fail(p, key, -EINVAL, "'%.64s' is not an absolute path", v);
		if (type == V_SOCKET && strlen(v) > SUN_PATH_MAX)
			return conf_fail(p, key, -EINVAL, "longer than a socket path may be (%zu)",
					 SUN_PATH_MAX);
		return 0;
	case V_URL:
		if ((strncmp(v, "https://", 8) != 0 || v[8] == '\0') &&
		    (strncmp(v, "http://", 7) != 0 || v[7] == '\0'))
			return conf_fail(p, key, -EINVAL,
					 "'%.64s' is not an http:// or https:// URL", v);
		return 0;
	case V_PREFIX:
		if (v[0] != '/' || v[strlen(v) - 1] != '/' || strpbrk(v, "?#%") != NULL)
			return conf_fail(
				p, key, -EINVAL,
				"'%.64s' must start and end with '/' and hold no ?, # or %%", v);
		return 0;
	case V_REGION:
		if (strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(v))
			return conf_fail(p, key, -EINVAL,
					 "'%.64s' is not a region (like us-east-1)", v);
		return 0;
	default:
		return 0;
	}
}

static int set_value(struct parser *p, const struct keydef *kd, void *base, const char *v)
{
	void *field = (char *)base + kd->off;
	const char *unit = kd->type == V_SECS ? " seconds" : "";
	char *copy;
	int ret;

	if (*v == '\0' && kd->type != V_USERS && kd->type != V_GROUPS)
		return conf_fail(p, kd->name, -EINVAL, "empty value");
	switch (kd->type) {
	case V_USERS:
	case V_GROUPS:
		return set_list(p, kd->name, base, kd->type == V_GROUPS, v);
	case V_BOOL:
		if (conf_parse_bool(v, field) < 0)
			return conf_fail(p, kd->name, -EINVAL, "'%.64s' is not yes or no", v);
		return 0;
	case V_SECS:
	case V_COUNT:
		ret = conf_parse_long(v, kd->min, kd->max, field);
		if (ret == -EINVAL)
			return conf_fail(p, kd->name, ret, "'%.64s' is not a whole number%s", v,
					 kd->type == V_SECS ? " of seconds" : "");
		if (ret < 0)
			return conf_fail(p, kd->name, -EINVAL,
					 "%.64s is out of range (%ld to %ld%s)", v, kd->min,
					 kd->max, unit);
		return 0;
	case V_POW2:
		ret = conf_parse_size(v, kd->min, kd->max, field);
		if (ret == -EINVAL)
			return conf_fail(p, kd->name, ret,
					 "'%.64s' is not a size (bytes, or a number with K or M)",
					 v);
		if (ret < 0 || (*(long *)field & (*(long *)field - 1)) != 0)
			return conf_fail(
				p, kd->name, -EINVAL,
				"%.64s is not a power of two from 4K to 1024M (OpenSSL's secure "
				"heap needs one, like 4M or 8M)",
				v);
		return 0;
	case V_LEVEL:
		if (log_parse_level(v, field) < 0)
			return conf_fail(p, kd->name, -EINVAL,
					 "'%.64s' is not error, warning, info or debug", v);
		return 0;
	default:
		ret = check_string(p, kd->name, kd->type, v);
		if (ret < 0)
			return ret;
		copy = strdup(v);
		if (copy == NULL)
			return conf_fail(p, kd->name, -ENOMEM, "out of memory");
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
}

int conf_set_pair(struct parser *p, const char *name, const char *value)
{
	const struct keydef *kd = tables[p->kind];
	void *base;
	size_t i;

	if (*name == '\0')
		return conf_fail(p, NULL, -EINVAL, "a key name must come before '='");
	if (kd == NULL)
		return conf_fail(p, name, -EINVAL,
				 "outside any section (put it under [daemon], [events], [http], "
				 "[credentials], [secret:NAME], [login:USER], [file:PATH] or "
				 "[rotate:NAME])");
	for (i = 0; kd[i].name != NULL && strcmp(kd[i].name, name) != 0; i++)
		;
	if (kd[i].name == NULL)
		return conf_fail(p, name, -EINVAL, "unknown key");
	if (p->key_line[i] != 0)
		return conf_fail(p, name, -EINVAL, "set twice (first on line %d)", p->key_line[i]);
	p->key_line[i] = p->lineno;
	if (p->kind == SEC_DAEMON || p->kind == SEC_EVENTS || p->kind == SEC_HTTP ||
	    p->kind == SEC_CREDENTIALS)
		base = p->cfg;
	else if (p->kind == SEC_SECRET)
		base = &p->cfg->secrets[p->idx];
	else if (p->kind == SEC_FILE)
		base = &p->cfg->files[p->idx];
	else if (p->kind == SEC_ROTATE)
		base = &p->cfg->rotates[p->idx];
	else
		base = &p->cfg->logins[p->idx];
	return set_value(p, &kd[i], base, value);
}

/* The lists are NULL-terminated (set_list sizes them one longer). */
void conf_free_list(char **names)
{
	for (size_t i = 0; names != NULL && names[i] != NULL; i++)
		free(names[i]);
	free(names);
}

/* Frees the strings a key table points at, so no key's value is forgotten. */
static void free_strings(const struct keydef *kd, void *base)
{
	for (; kd->name != NULL; kd++) {
		if (IS_STRING(kd->type))
			free(*(char **)((char *)base + kd->off));
	}
}

void kt_config_free(struct kt_config *cfg)
{
	if (cfg == NULL)
		return;
	free_strings(events_keys, cfg);
	free_strings(http_keys, cfg);
	free_strings(credentials_keys, cfg);
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		struct kt_secret_cfg *s = &cfg->secrets[i];

		free_strings(secret_keys, s);
		free(s->name);
		conf_free_list(s->allow_users);
		free(s->allow_uids);
		conf_free_list(s->allow_groups);
		free(s->allow_gids);
	}
	for (size_t i = 0; i < cfg->nlogins; i++) {
		free_strings(login_keys, &cfg->logins[i]);
		free(cfg->logins[i].user);
	}
	for (size_t i = 0; i < cfg->nfiles; i++) {
		free_strings(file_keys, &cfg->files[i]);
		free(cfg->files[i].path);
		conf_free_list(cfg->files[i].argv);
	}
	free(cfg->files);
	for (size_t i = 0; i < cfg->nrotates; i++) {
		free_strings(rotate_keys, &cfg->rotates[i]);
		free(cfg->rotates[i].name);
		conf_free_list(cfg->rotates[i].set_argv);
		conf_free_list(cfg->rotates[i].test_argv);
	}
	free(cfg->rotates);
	free_strings(daemon_keys, cfg);
	free(cfg->secrets);
	free(cfg->logins);
	free(cfg->path);
	free(cfg);
}
