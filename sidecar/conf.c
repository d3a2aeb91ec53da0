/* keyturnd's configuration: libinih splits the file into sections and
 * key = value pairs, each value is checked against its section's key table
 * (conf_keys.c), and allow lists are resolved to ids. This file reads the
 * file, starts and checks the sections, and looks them up. A file with any
 * error yields nothing. */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "conf.h"
#include "conf_int.h"
#include "conf_values.h"
#include "common/secmem.h"

/* libinih's handler: one key = value pair; it wants nonzero for success. */
static int on_pair(void *user, const char *section, const char *name, const char *value)
{
	struct parser *p = user;

	(void)section; /* read_line tracks the section in full */
	return p->err == 0 && conf_set_pair(p, name, value) == 0;
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
		return conf_fail(p, NULL, -EINVAL,
				 "a secret name must be printable and hold no spaces");
	if ((cfg->nsecrets & (cfg->nsecrets - 1)) == 0) {
		n = realloc(cfg->secrets, room * sizeof(*n));
		if (n == NULL)
			return conf_fail(p, NULL, -ENOMEM, "out of memory");
		cfg->secrets = n;
	}
	s = &cfg->secrets[cfg->nsecrets++];
	memset(s, 0, sizeof(*s));
	s->line = p->lineno;
	s->name = strdup(name);
	s->id = strdup(name);
	if (s->name == NULL || s->id == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	p->kind = SEC_SECRET;
	p->idx = cfg->nsecrets - 1;
	return 0;
}

static int add_login(struct parser *p, const char *user)
{
	struct kt_config *cfg = p->cfg;
	struct kt_login_cfg *n, *l;

	if (!conf_is_word(user) || strchr(user, ':') != NULL)
		return conf_fail(p, NULL, -EINVAL,
				 "a user name must be printable, without spaces or ':'");
	if (strchr(user, '*') != NULL && strcmp(user, "*") != 0)
		return conf_fail(p, NULL, -EINVAL, "only a lone '*' is a wildcard");
	for (size_t i = 0; i < cfg->nlogins; i++) {
		if (strcmp(cfg->logins[i].user, user) == 0)
			return conf_fail(p, NULL, -EINVAL,
					 "section appears twice (first on line %d)",
					 cfg->logins[i].line);
	}
	n = realloc(cfg->logins, (cfg->nlogins + 1) * sizeof(*n));
	if (n == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	cfg->logins = n;
	l = &n[cfg->nlogins++];
	memset(l, 0, sizeof(*l));
	l->line = p->lineno;
	l->offline_max_age = WEEK;
	l->user = strdup(user);
	if (l->user == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	p->kind = SEC_LOGIN;
	p->idx = cfg->nlogins - 1;
	return 0;
}

/* A file sink's path: absolute, every component a plain name (no "." or
 * "..", no empty one), so that the helper's walk from / is the whole
 * story. Its other keys are checked once the file is read
 * (conf_check_files). */
static int add_file(struct parser *p, const char *path)
{
	struct kt_config *cfg = p->cfg;
	struct kt_file_cfg *n, *f;
	const char *c;
	size_t len;

	if (!conf_is_word(path) || path[0] != '/' || strlen(path) >= PATH_MAX)
		return conf_fail(p, NULL, -EINVAL,
				 "a file's path must be absolute, printable and hold no spaces");
	for (c = path + 1;; c += len + 1) {
		len = strcspn(c, "/");
		if (len == 0 || len > NAME_MAX || (len == 1 && c[0] == '.') ||
		    (len == 2 && c[0] == '.' && c[1] == '.'))
			return conf_fail(p, NULL, -EINVAL,
					 "a file's path may not hold '//', '.' or '..' "
					 "components, nor end with '/'");
		if (c[len] == '\0')
			break;
	}
	for (size_t i = 0; i < cfg->nfiles; i++) {
		if (strcmp(cfg->files[i].path, path) == 0)
			return conf_fail(p, NULL, -EINVAL,
					 "section appears twice (first on line %d)",
					 cfg->files[i].line);
	}
	n = realloc(cfg->files, (cfg->nfiles + 1) * sizeof(*n));
	if (n == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	cfg->files = n;
	f = &n[cfg->nfiles++];
	memset(f, 0, sizeof(*f));
	f->line = p->lineno;
	f->uid = (uid_t)-1;
	f->gid = (gid_t)-1;
	f->run_uid = (uid_t)-1;
	f->run_gid = (gid_t)-1;
	f->mode = 0400;
	f->on_change_timeout = 30;
	f->path = strdup(path);
	if (f->path == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	p->kind = SEC_FILE;
	p->idx = cfg->nfiles - 1;
	return 0;
}

/* A rotation's name is a [secret:] name, checked once the file is read
 * (conf_check_rotates), as are its other keys. */
static int add_rotate(struct parser *p, const char *name)
{
	struct kt_config *cfg = p->cfg;
	struct kt_rotate_cfg *n, *r;

	if (!conf_is_word(name) || strlen(name) > MAX_SECRET_ID)
		return conf_fail(p, NULL, -EINVAL, "a rotation's name must be a [secret:] name");
	for (size_t i = 0; i < cfg->nrotates; i++) {
		if (strcmp(cfg->rotates[i].name, name) == 0)
			return conf_fail(p, NULL, -EINVAL,
					 "section appears twice (first on line %d)",
					 cfg->rotates[i].line);
	}
	n = realloc(cfg->rotates, (cfg->nrotates + 1) * sizeof(*n));
	if (n == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	cfg->rotates = n;
	r = &n[cfg->nrotates++];
	memset(r, 0, sizeof(*r));
	r->line = p->lineno;
	r->length = 32;
	r->require_each_included_type = true;
	r->command_timeout = 60;
	r->run_uid = (uid_t)-1;
	r->run_gid = (gid_t)-1;
	r->name = strdup(name);
	if (r->name == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	p->kind = SEC_ROTATE;
	p->idx = cfg->nrotates - 1;
	return 0;
}

/* Checks what only the whole section can tell, while its name is at hand. */
static int end_section(struct parser *p)
{
	const struct kt_login_cfg *l;

	if (p->kind == SEC_EVENTS && p->cfg->events_queue_url == NULL)
		return conf_fail_at(p, p->events_line, p->section, "queue_url", -EINVAL,
				    "missing; an [events] section needs the queue's URL");
	if (p->kind == SEC_HTTP && p->cfg->http_listen == NULL)
		return conf_fail_at(p, p->http_line, p->section, "listen", -EINVAL,
				    "missing; an [http] section needs at least one address");
	if (p->kind == SEC_CREDENTIALS && p->cfg->credentials_socket == NULL)
		return conf_fail_at(p, p->credentials_line, p->section, "socket", -EINVAL,
				    "missing; a [credentials] section needs the socket's path");
	if (p->kind == SEC_SECRET && p->cfg->secrets[p->idx].credential != NULL &&
	    (strchr(p->cfg->secrets[p->idx].credential, '/') != NULL ||
	     strlen(p->cfg->secrets[p->idx].credential) > 255))
		return conf_fail_at(p, p->cfg->secrets[p->idx].line, p->section, "credential",
				    -EINVAL,
				    "a credential ID is a file name: no '/', at most "
				    "255 bytes");
	if (p->kind == SEC_SECRET && p->cfg->secrets[p->idx].credential != NULL &&
	    p->cfg->secrets[p->idx].allow_units == NULL)
		return conf_fail_at(p, p->cfg->secrets[p->idx].line, p->section, "allow_units",
				    -EINVAL,
				    "missing; a secret served as a credential needs the "
				    "units that may load it");
	if (p->kind != SEC_LOGIN)
		return 0;
	l = &p->cfg->logins[p->idx];
	if (l->secret == NULL)
		return conf_fail_at(p, l->line, p->section, "secret", -EINVAL,
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
		return conf_fail_at(p, 0, NULL, NULL, -ENOMEM, "out of memory");
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
	return conf_fail_at(p, dup->line, section, NULL, -EINVAL,
			    "section appears twice (first on line %d)", first->line);
}

/* Two [secret:] sections serving the same credential ID: the second (by
 * line) is reported. Quadratic in the sections that are credentials, which
 * are few. */
static int check_unique_credentials(struct parser *p)
{
	const struct kt_config *cfg = p->cfg;
	char section[1024];

	for (size_t i = 0; i < cfg->nsecrets; i++) {
		const struct kt_secret_cfg *s = &cfg->secrets[i];

		if (s->credential == NULL)
			continue;
		for (size_t j = 0; j < i; j++) {
			const struct kt_secret_cfg *f = &cfg->secrets[j];

			if (f->credential == NULL || strcmp(f->credential, s->credential) != 0)
				continue;
			snprintf(section, sizeof(section), "secret:%s", s->name);
			return conf_fail_at(p, s->line, section, "credential", -EINVAL,
					    "'%s' is served by [secret:%s] already (line %d)",
					    s->credential, f->name, f->line);
		}
	}
	return 0;
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
		return conf_fail(p, NULL, -EINVAL, "section header lacks ']'");
	p->section = strndup(s + 1, (size_t)(end - s - 1));
	if (p->section == NULL)
		return conf_fail(p, NULL, -ENOMEM, "out of memory");
	t = end + 1 + strspn(end + 1, " \t\r\n");
	if (*t != '\0' && *t != ';' && *t != '#')
		return conf_fail(p, NULL, -EINVAL, "text after ']'");
	if (strcmp(p->section, "daemon") == 0) {
		if (p->daemon_line != 0)
			return conf_fail(p, NULL, -EINVAL,
					 "section appears twice (first on line %d)",
					 p->daemon_line);
		p->daemon_line = p->lineno;
		p->kind = SEC_DAEMON;
		return 0;
	}
	if (strcmp(p->section, "events") == 0) {
		if (p->events_line != 0)
			return conf_fail(p, NULL, -EINVAL,
					 "section appears twice (first on line %d)",
					 p->events_line);
		p->events_line = p->lineno;
		p->kind = SEC_EVENTS;
		return 0;
	}
	if (strcmp(p->section, "http") == 0) {
		if (p->http_line != 0)
			return conf_fail(p, NULL, -EINVAL,
					 "section appears twice (first on line %d)", p->http_line);
		p->http_line = p->lineno;
		p->kind = SEC_HTTP;
		return 0;
	}
	if (strcmp(p->section, "credentials") == 0) {
		if (p->credentials_line != 0)
			return conf_fail(p, NULL, -EINVAL,
					 "section appears twice (first on line %d)",
					 p->credentials_line);
		p->credentials_line = p->lineno;
		p->kind = SEC_CREDENTIALS;
		return 0;
	}
	if (strncmp(p->section, "secret:", 7) == 0)
		return add_secret(p, p->section + 7);
	if (strncmp(p->section, "login:", 6) == 0)
		return add_login(p, p->section + 6);
	if (strncmp(p->section, "file:", 5) == 0)
		return add_file(p, p->section + 5);
	if (strncmp(p->section, "rotate:", 7) == 0)
		return add_rotate(p, p->section + 7);
	return conf_fail(p, NULL, -EINVAL,
			 "unknown section (expected [daemon], [events], [http], [credentials], "
			 "[secret:NAME], [login:USER], [file:PATH] or [rotate:NAME])");
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
			conf_fail_at(p, 0, NULL, NULL, -EIO, "cannot read: %s", strerror(errno));
		return NULL;
	}
	p->lineno++;
	if (memchr(p->line, '\0', (size_t)n) != NULL) {
		conf_fail(p, NULL, -EINVAL, "NUL byte in line");
		return NULL;
	}
	s = p->line;
	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	s += strspn(s, " \t");
	len = strcspn(s, "\n");
	if (num < 2 || len > (size_t)num - 2) {
		conf_fail(p, NULL, -EINVAL, "line longer than %d characters", num - 2);
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
		return conf_fail_at(p, 0, NULL, NULL, -errno, "cannot stat: %s", strerror(errno));
	if (!S_ISREG(st.st_mode))
		return conf_fail_at(p, 0, NULL, NULL, -EINVAL, "not a regular file");
	if (st.st_uid != 0 && st.st_uid != geteuid())
		return conf_fail_at(p, 0, NULL, NULL, -EPERM,
				    "owned by uid %u, not by root or uid %u", (unsigned)st.st_uid,
				    (unsigned)geteuid());
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return conf_fail_at(p, 0, NULL, NULL, -EPERM,
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
	cfg->events_quiet_interval = 21600;
	cfg->http_token_file = strdup(KT_DEFAULT_HTTP_TOKEN);
	cfg->http_token_group = strdup("keyturn-http");
	cfg->http_path_prefix = strdup("/v1/");
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
	    cfg->user == NULL || cfg->http_token_file == NULL || cfg->http_token_group == NULL ||
	    cfg->http_path_prefix == NULL) {
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
		conf_fail_at(&p, 0, NULL, NULL, -ENOMEM, "out of memory");
		goto out;
	}
	p.fp = fopen(path, "re");
	if (p.fp == NULL) {
		conf_fail_at(&p, 0, NULL, NULL, -errno, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (check_file(&p) < 0)
		goto out;
	r = ini_parse_stream(read_line, &p, on_pair, &p);
	/* libinih tells of its own syntax errors only by a line number; the
	 * earlier of its error and ours is the one to report. */
	if (r > 0 && (p.err == 0 || r < p.errline)) {
		p.err = 0;
		conf_fail_at(&p, r, NULL, NULL, -EINVAL,
			     "syntax error (expected 'key = value', '[section]' or a comment)");
	} else if (r < 0) {
		conf_fail_at(&p, 0, NULL, NULL, -ENOMEM, "libinih failed (%d)", r);
	} else if (p.err == 0) {
		end_section(&p);
	}
	if (p.err == 0)
		check_unique_secrets(&p);
	if (p.err == 0)
		check_unique_credentials(&p);
	if (p.err == 0)
		conf_check_files(&p);
	if (p.err == 0)
		conf_check_rotates(&p);
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

const struct kt_secret_cfg *kt_config_secret(const struct kt_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		if (strcmp(cfg->secrets[i].name, name) == 0)
			return &cfg->secrets[i];
	}
	return NULL;
}

const struct kt_rotate_cfg *kt_config_rotate(const struct kt_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nrotates; i++) {
		if (strcmp(cfg->rotates[i].name, name) == 0)
			return &cfg->rotates[i];
	}
	return NULL;
}

const struct kt_rotate_cfg *kt_config_rotate_by_id(const struct kt_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->nrotates; i++) {
		if (strcmp(cfg->rotates[i].secret_id, id) == 0)
			return &cfg->rotates[i];
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
