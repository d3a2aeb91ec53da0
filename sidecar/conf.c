/* keyturnd's configuration: libinih splits the file into sections and
 * key = value pairs, each value is checked against its section's key table,
 * and allow lists are resolved to ids. A file with any error yields nothing. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "conf.h"
#include "conf_values.h"
#include "common/secmem.h"

#define DAY  (24L * 3600)
#define WEEK (7 * DAY)
#define YEAR (365 * DAY)
/* Longest SecretId (an ARN) that kt_config_expand will build. */
/* Upper bound for getpwnam_r/getgrnam_r buffers; huge groups need a lot. */
#define SUN_PATH_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 1)

/* The string types come first: IS_STRING tells them from the rest. */
enum vtype {
	V_TEXT,    /* non-empty, no control characters */
	V_WORD,    /* non-empty, printable ASCII, no spaces */
	V_PATTERN, /* a V_WORD that may hold %H, %u and %% */
	V_PATH,    /* an absolute V_WORD */
	V_SOCKET,  /* a V_PATH that fits in sun_path */
	V_URL,     /* http:// or https:// */
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

#define S(f) offsetof(struct kt_secret_cfg, f)
static const struct keydef secret_keys[] = {
	{ "id", V_WORD, S(id), 0, 0 },
	{ "allow_users", V_USERS, 0, 0, 0 },
	{ "allow_groups", V_GROUPS, 0, 0, 0 },
	{ "key", V_TEXT, S(key), 0, 0 },
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
	{ NULL, 0, 0, 0, 0 },
};
#undef L

enum sec_kind { SEC_NONE, SEC_DAEMON, SEC_SECRET, SEC_LOGIN };

static const struct keydef *const tables[] = {
	[SEC_NONE] = NULL,
	[SEC_DAEMON] = daemon_keys,
	[SEC_SECRET] = secret_keys,
	[SEC_LOGIN] = login_keys,
};

#define MAX_KEYS 32
_Static_assert(sizeof(daemon_keys) / sizeof(daemon_keys[0]) <= MAX_KEYS,
               "struct parser's key_line is too small for [daemon]");

struct parser {
	const char *path;
	FILE *fp;
	struct kt_config *cfg;
	char *line; /* getline's buffer */
	size_t linecap;
	int lineno;
	/* The current section, tracked by read_line in full: libinih cuts long
	 * section names and does not report sections that hold no keys. */
	enum sec_kind kind;
	char *section;
	size_t idx;             /* into cfg->secrets or cfg->logins */
	int key_line[MAX_KEYS]; /* where each key of the section was set, or 0 */
	int daemon_line;
	/* The first error wins; nothing after it is looked at. errline is the
	 * line being read when it was found, to compare with libinih's. */
	int err;
	int errline;
	char *errbuf;
	size_t errlen;
};

/* Records "FILE:LINE: [SECTION] KEY: message" unless an error is already
 * recorded; line 0 leaves out the line, a NULL section or key its part. */
__attribute__((format(printf, 6, 7))) static int fail_at(struct parser *p, int line,
                                                         const char *section, const char *key,
                                                         int err, const char *fmt, ...)
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

#define fail(p, key, err, ...) fail_at((p), (p)->lineno, (p)->section, (key), (err), __VA_ARGS__)

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
		return fail(p, key, -ENOMEM, "out of memory");
	for (v += strspn(v, " \t"); *v; v += len, v += strspn(v, " \t")) {
		len = strcspn(v, " \t");
		(*names)[*count] = strndup(v, len);
		if ((*names)[*count] == NULL)
			return fail(p, key, -ENOMEM, "out of memory");
		ret = conf_lookup_id((*names)[*count], group, &id);
		if (ret == -ENOENT)
			return fail(p, key, -EINVAL, "unknown %s '%s'", what, (*names)[*count]);
		if (ret < 0)
			return fail(p, key, ret, "cannot look up %s '%s': %s", what,
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
			return fail(p, key, -EINVAL,
			            "'%%' at the end (write %%%% for a literal %%)");
		if (s[1] != '%' && s[1] != 'H' && s[1] != 'u')
			return fail(p, key, -EINVAL, "unknown escape '%%%c' (use %%H, %%u or %%%%)",
			            s[1]);
	}
	return 0;
}

static int check_string(struct parser *p, const char *key, enum vtype type, const char *v)
{
	if (type == V_TEXT) {
		for (const char *s = v; *s; s++) {
			if ((unsigned char)*s < 0x20 || *s == 0x7f)
				return fail(p, key, -EINVAL, "control character in value");
		}
		return 0;
	}
	if (!conf_is_word(v))
		return fail(p, key, -EINVAL, "'%.64s' must be printable and hold no spaces", v);
	switch (type) {
	case V_PATTERN:
		return check_pattern(p, key, v);
	case V_PATH:
	case V_SOCKET:
		if (v[0] != '/')
			return fail(p, key, -EINVAL, "'%.64s' is not an absolute path", v);
		if (type == V_SOCKET && strlen(v) > SUN_PATH_MAX)
			return fail(p, key, -EINVAL, "longer than a socket path may be (%zu)",
			            SUN_PATH_MAX);
		return 0;
	case V_URL:
		if ((strncmp(v, "https://", 8) != 0 || v[8] == '\0') &&
		    (strncmp(v, "http://", 7) != 0 || v[7] == '\0'))
			return fail(p, key, -EINVAL, "'%.64s' is not an http:// or https:// URL",
			            v);
		return 0;
	case V_REGION:
		if (strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789-") != strlen(v))
			return fail(p, key, -EINVAL, "'%.64s' is not a region (like us-east-1)", v);
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
		return fail(p, kd->name, -EINVAL, "empty value");
	switch (kd->type) {
	case V_USERS:
	case V_GROUPS:
		return set_list(p, kd->name, base, kd->type == V_GROUPS, v);
	case V_BOOL:
		if (conf_parse_bool(v, field) < 0)
			return fail(p, kd->name, -EINVAL, "'%.64s' is not yes or no", v);
		return 0;
	case V_SECS:
	case V_COUNT:
		ret = conf_parse_long(v, kd->min, kd->max, field);
		if (ret == -EINVAL)
			return fail(p, kd->name, ret, "'%.64s' is not a whole number%s", v,
			            kd->type == V_SECS ? " of seconds" : "");
		if (ret < 0)
			return fail(p, kd->name, -EINVAL, "%.64s is out of range (%ld to %ld%s)", v,
			            kd->min, kd->max, unit);
		return 0;
	case V_POW2:
		ret = conf_parse_size(v, kd->min, kd->max, field);
		if (ret == -EINVAL)
			return fail(p, kd->name, ret,
			            "'%.64s' is not a size (bytes, or a number with K or M)", v);
		if (ret < 0 || (*(long *)field & (*(long *)field - 1)) != 0)
			return fail(
			        p, kd->name, -EINVAL,
			        "%.64s is not a power of two from 4K to 1024M (OpenSSL's secure "
			        "heap needs one, like 4M or 8M)",
			        v);
		return 0;
	case V_LEVEL:
		if (log_parse_level(v, field) < 0)
			return fail(p, kd->name, -EINVAL,
			            "'%.64s' is not error, warning, info or debug", v);
		return 0;
	default:
		ret = check_string(p, kd->name, kd->type, v);
		if (ret < 0)
			return ret;
		copy = strdup(v);
		if (copy == NULL)
			return fail(p, kd->name, -ENOMEM, "out of memory");
		free(*(char **)field);
		*(char **)field = copy;
		return 0;
	}
}

static int set_pair(struct parser *p, const char *name, const char *value)
{
	const struct keydef *kd = tables[p->kind];
	void *base;
	size_t i;

	if (*name == '\0')
		return fail(p, NULL, -EINVAL, "a key name must come before '='");
	if (kd == NULL)
		return fail(p, name, -EINVAL,
		            "outside any section (put it under [daemon], "
		            "[secret:NAME] or [login:USER])");
	for (i = 0; kd[i].name != NULL && strcmp(kd[i].name, name) != 0; i++)
		;
	if (kd[i].name == NULL)
		return fail(p, name, -EINVAL, "unknown key");
	if (p->key_line[i] != 0)
		return fail(p, name, -EINVAL, "set twice (first on line %d)", p->key_line[i]);
	p->key_line[i] = p->lineno;
	if (p->kind == SEC_DAEMON)
		base = p->cfg;
	else if (p->kind == SEC_SECRET)
		base = &p->cfg->secrets[p->idx];
	else
		base = &p->cfg->logins[p->idx];
	return set_value(p, &kd[i], base, value);
}

/* libinih's handler: one key = value pair; it wants nonzero for success. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;

	(void)section; /* read_line tracks the section in full */
	return p->err == 0 && set_pair(p, name, value) == 0;
}

/* Thousands of sections are read on the loop thread at a reload, so this is
 * linear: the array doubles when full (its room is the next power of two),
 * and twice the same name is found by check_unique_secrets() at the end. */
static int add_secret(struct parser *p, const char *name)
{
	struct kt_config *cfg = p->cfg;
	struct kt_secret_cfg *n, *s;
	size_t room = cfg->nsecrets > 0 ? cfg->nsecrets * 2 : 1;

	if (!conf_is_word(name))
		return fail(p, NULL, -EINVAL, "a secret name must be printable and hold no spaces");
	if ((cfg->nsecrets & (cfg->nsecrets - 1)) == 0) {
		n = realloc(cfg->secrets, room * sizeof(*n));
		if (n == NULL)
			return fail(p, NULL, -ENOMEM, "out of memory");
		cfg->secrets = n;
	}
	s = &cfg->secrets[cfg->nsecrets++];
	memset(s, 0, sizeof(*s));
	s->line = p->lineno;
	s->name = strdup(name);
	s->id = strdup(name);
	if (s->name == NULL || s->id == NULL)
		return fail(p, NULL, -ENOMEM, "out of memory");
	p->kind = SEC_SECRET;
	p->idx = cfg->nsecrets - 1;
	return 0;
}

static int add_login(struct parser *p, const char *user)
{
	struct kt_config *cfg = p->cfg;
	struct kt_login_cfg *n, *l;

	if (!conf_is_word(user) || strchr(user, ':') != NULL)
		return fail(p, NULL, -EINVAL,
		            "a user name must be printable, without spaces or ':'");
	if (strchr(user, '*') != NULL && strcmp(user, "*") != 0)
		return fail(p, NULL, -EINVAL, "only a lone '*' is a wildcard");
	for (size_t i = 0; i < cfg->nlogins; i++) {
		if (strcmp(cfg->logins[i].user, user) == 0)
			return fail(p, NULL, -EINVAL, "section appears twice (first on line %d)",
			            cfg->logins[i].line);
	}
	n = realloc(cfg->logins, (cfg->nlogins + 1) * sizeof(*n));
	if (n == NULL)
		return fail(p, NULL, -ENOMEM, "out of memory");
	cfg->logins = n;
	l = &n[cfg->nlogins++];
	memset(l, 0, sizeof(*l));
	l->line = p->lineno;
	l->offline_max_age = WEEK;
	l->user = strdup(user);
	if (l->user == NULL)
		return fail(p, NULL, -ENOMEM, "out of memory");
	p->kind = SEC_LOGIN;
	p->idx = cfg->nlogins - 1;
	return 0;
}

/* Checks what only the whole section can tell, while its name is at hand. */
static int end_section(struct parser *p)
{
	const struct kt_login_cfg *l;

	if (p->kind != SEC_LOGIN)
		return 0;
	l = &p->cfg->logins[p->idx];
	if (l->secret == NULL)
		return fail_at(p, l->line, p->section, "secret", -EINVAL,
		               "missing; every [login:] section needs one");
	return 0;
}

static int secret_order(const void *a, const void *b)
{
	const struct kt_secret_cfg *const *x = a, *const *y = b;
	int r = strcmp((*x)->name, (*y)->name);

	return r != 0 ? r : ((*x)->line > (*y)->line) - ((*x)->line < (*y)->line);
}

/* Reports the first [secret:] section (by line) whose name came before, by
 * sorting the names once instead of a search per section. */
static int check_unique_secrets(struct parser *p)
{
	const struct kt_config *cfg = p->cfg;
	const struct kt_secret_cfg **v, *dup = NULL, *first = NULL;
	char section[1024];

	if (cfg->nsecrets < 2)
		return 0;
	v = malloc(cfg->nsecrets * sizeof(*v));
	if (v == NULL)
		return fail_at(p, 0, NULL, NULL, -ENOMEM, "out of memory");
	for (size_t i = 0; i < cfg->nsecrets; i++)
		v[i] = &cfg->secrets[i];
	qsort(v, cfg->nsecrets, sizeof(*v), secret_order);
	for (size_t i = 1; i < cfg->nsecrets; i++) {
		if (strcmp(v[i - 1]->name, v[i]->name) == 0 &&
		    (dup == NULL || v[i]->line < dup->line)) {
			dup = v[i];
			first = v[i - 1];
		}
	}
	free(v);
	if (dup == NULL)
		return 0;
	snprintf(section, sizeof(section), "secret:%s", dup->name);
	return fail_at(p, dup->line, section, NULL, -EINVAL,
	               "section appears twice (first on line %d)", first->line);
}

/* A "[...]" line: starts the section it names, or records why it cannot. */
static int start_section(struct parser *p, const char *s)
{
	const char *end = strchr(s + 1, ']');
	const char *t;

	if (end_section(p) < 0)
		return p->err;
	free(p->section);
	p->section = NULL;
	p->kind = SEC_NONE;
	memset(p->key_line, 0, sizeof(p->key_line));
	if (end == NULL)
		return fail(p, NULL, -EINVAL, "section header lacks ']'");
	p->section = strndup(s + 1, (size_t)(end - s - 1));
	if (p->section == NULL)
		return fail(p, NULL, -ENOMEM, "out of memory");
	t = end + 1 + strspn(end + 1, " \t\r\n");
	if (*t != '\0' && *t != ';' && *t != '#')
		return fail(p, NULL, -EINVAL, "text after ']'");
	if (strcmp(p->section, "daemon") == 0) {
		if (p->daemon_line != 0)
			return fail(p, NULL, -EINVAL, "section appears twice (first on line %d)",
			            p->daemon_line);
		p->daemon_line = p->lineno;
		p->kind = SEC_DAEMON;
		return 0;
	}
	if (strncmp(p->section, "secret:", 7) == 0)
		return add_secret(p, p->section + 7);
	if (strncmp(p->section, "login:", 6) == 0)
		return add_login(p, p->section + 6);
	return fail(p, NULL, -EINVAL,
	            "unknown section (expected [daemon], [secret:NAME] or [login:USER])");
}

/* libinih's reader. It counts lines for the messages, refuses lines that
 * libinih would silently cut, and drops leading blanks: libinih takes an
 * indented line as the continuation of the previous value, which no key
 * here wants and which would hide a duplicate. */
static char *read_line(char *str, int num, void *stream)
{
	struct parser *p = stream;
	ssize_t n;
	size_t len;
	char *s;

	if (p->err != 0)
		return NULL;
	errno = 0;
	n = getline(&p->line, &p->linecap, p->fp);
	if (n < 0) {
		if (ferror(p->fp))
			fail_at(p, 0, NULL, NULL, -EIO, "cannot read: %s", strerror(errno));
		return NULL;
	}
	p->lineno++;
	if (memchr(p->line, '\0', (size_t)n) != NULL) {
		fail(p, NULL, -EINVAL, "NUL byte in line");
		return NULL;
	}
	s = p->line;
	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s += strspn(s, " \t");
	len = strcspn(s, "\n");
	if (num < 2 || len > (size_t)num - 2) {
		fail(p, NULL, -EINVAL, "line longer than %d characters", num - 2);
		return NULL;
	}
	if (*s == '[' && start_section(p, s) < 0)
		return NULL;
	memcpy(str, s, len);
	str[len] = '\n';
	str[len + 1] = '\0';
	return str;
}

/* The file decides who may read which secret, so nobody but root or the
 * account that runs keyturnd may be able to change it. */
static int check_file(struct parser *p)
{
	struct stat st;

	if (fstat(fileno(p->fp), &st) < 0)
		return fail_at(p, 0, NULL, NULL, -errno, "cannot stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return fail_at(p, 0, NULL, NULL, -EINVAL, "not a regular file");
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return fail_at(p, 0, NULL, NULL, -EPERM, "owned by uid %u, not by root or uid %u",
		               (unsigned)st.st_uid, (unsigned)geteuid());
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return fail_at(p, 0, NULL, NULL, -EPERM,
		               "writable by group or others (chmod go-w)");
	return 0;
}

static struct kt_config *config_new(const char *path)
{
	struct kt_config *cfg = calloc(1, sizeof(*cfg));

	if (cfg == NULL)
		return NULL;
	cfg->path = strdup(path);
	cfg->socket_path = strdup(KT_DEFAULT_SOCKET);
	cfg->state_dir = strdup(KT_DEFAULT_STATE_DIR);
	cfg->user = strdup("keyturn");
	cfg->check_interval = 3600;
	cfg->window_interval = 30;
	cfg->max_stale = DAY;
	cfg->log_level = KT_LOG_INFO;
	cfg->max_connections = 1024;
	cfg->idle_timeout = 60;
	cfg->max_connections_per_uid = 32;
	cfg->request_timeout = 5;
	cfg->max_wait = 3;
	cfg->refresh_min_interval = 10;
	cfg->workers = 2;
	cfg->locked_memory = 4 * 1024 * 1024;
	if (cfg->path == NULL || cfg->socket_path == NULL || cfg->state_dir == NULL ||
	    cfg->user == NULL) {
		kt_config_free(cfg);
		cfg = NULL;
	}
	return cfg;
}

int kt_config_load(const char *path, struct kt_config **out, char *err, size_t errlen)
{
	struct parser p;
	int r;

	memset(&p, 0, sizeof(p));
	p.path = path;
	p.errbuf = err;
	p.errlen = errlen;
	*out = NULL;
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	p.cfg = config_new(path);
	if (p.cfg == NULL) {
		fail_at(&p, 0, NULL, NULL, -ENOMEM, "out of memory");
		goto out;
	}
	p.fp = fopen(path, "re");
	if (p.fp == NULL) {
		fail_at(&p, 0, NULL, NULL, -errno, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (check_file(&p) < 0)
		goto out;
	r = ini_parse_stream(read_line, &p, on_pair, &p);
	/* libinih tells of its own syntax errors only by a line number; the
	 * earlier of its error and ours is the one to report. */
	if (r > 0 && (p.err == 0 || r < p.errline)) {
		p.err = 0;
		fail_at(&p, r, NULL, NULL, -EINVAL,
		        "syntax error (expected 'key = value', '[section]' or a comment)");
	} else if (r < 0) {
		fail_at(&p, 0, NULL, NULL, -ENOMEM, "libinih failed (%d)", r);
	} else if (p.err == 0) {
		end_section(&p);
	}
	if (p.err == 0)
		check_unique_secrets(&p);
	if (p.err == 0) {
		*out = p.cfg;
		p.cfg = NULL;
	}
out:
	if (p.fp != NULL)
		fclose(p.fp);
	free(p.line);
	free(p.section);
	kt_config_free(p.cfg);
	return p.err;
}

/* The lists are NULL-terminated (set_list sizes them one longer). */
static void free_list(char **names)
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
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		struct kt_secret_cfg *s = &cfg->secrets[i];

		free_strings(secret_keys, s);
		free(s->name);
		free_list(s->allow_users);
		free(s->allow_uids);
		free_list(s->allow_groups);
		free(s->allow_gids);
	}
	for (size_t i = 0; i < cfg->nlogins; i++) {
		free_strings(login_keys, &cfg->logins[i]);
		free(cfg->logins[i].user);
	}
	free_strings(daemon_keys, cfg);
	free(cfg->secrets);
	free(cfg->logins);
	free(cfg->path);
	free(cfg);
}

const struct kt_secret_cfg *kt_config_secret(const struct kt_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		if (strcmp(cfg->secrets[i].name, name) == 0)
			return &cfg->secrets[i];
	}
	return NULL;
}

const struct kt_login_cfg *kt_config_login(const struct kt_config *cfg, const char *user)
{
	const struct kt_login_cfg *any = NULL;

	for (size_t i = 0; i < cfg->nlogins; i++) {
		if (strcmp(cfg->logins[i].user, user) == 0)
			return &cfg->logins[i];
		if (strcmp(cfg->logins[i].user, "*") == 0)
			any = &cfg->logins[i];
	}
	return any;
}
