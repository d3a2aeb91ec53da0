/* Reads one profile from the AWS shared config or credentials file. The
 * whole file is checked, so a syntax error anywhere is reported with its file
 * and line instead of being silently skipped; values are wiped when freed. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "profile.h"
#include "common/secmem.h"

/* No sane profile line is this long; a longer one is a sign of the wrong
 * file, and refusing it keeps memory use bounded. */
#define PROFILE_MAX_LINE 65536

/* Where the parser stands while it walks the file. */
struct parse_state {
	const char *path;
	const char *want; /* the profile asked for */
	bool is_config;
	bool in_want;    /* the current section is the wanted profile */
	bool in_section; /* any section header seen */
	bool found;      /* the wanted section appeared at least once */
	bool nested;     /* after "key =" with an empty value */
	int lineno;
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	*e = '\0';
	return s;
}

/* Cuts an inline comment: '#' or ';' that follows whitespace. A '#' glued to
 * other text stays, since it may be part of a value. */
static void cut_inline_comment(char *s)
{
	for (char *p = s; *p != '\0'; p++) {
		if ((*p == '#' || *p == ';') && p > s && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			return;
		}
	}
}

/* Whether the section header text names the wanted profile. In the config
 * file "[profile NAME]" names NAME and "[default]" the default profile; in
 * the credentials file the header is the bare name. */
static bool section_matches(const struct parse_state *st, const char *sect)
{
	if (!st->is_config)
		return strcmp(sect, st->want) == 0;
	if (strcmp(sect, "default") == 0)
		return strcmp(st->want, "default") == 0;
	if (strncmp(sect, "profile", 7) != 0 || (sect[7] != ' ' && sect[7] != '\t'))
		return false;
	sect += 7;
	while (*sect == ' ' || *sect == '\t')
		sect++;
	return strcmp(sect, st->want) == 0;
}

static int parse_section(struct parse_state *st, char *line, char *err, size_t errlen)
{
	char *close = strchr(line, ']');
	char *rest;

	if (close == NULL) {
		kt_errf(err, errlen, "%s:%d: unterminated section header (missing ']')", st->path,
			st->lineno);
		return -EINVAL;
	}
	*close = '\0';
	rest = trim(close + 1);
	if (*rest != '\0' && *rest != '#' && *rest != ';') {
		kt_errf(err, errlen, "%s:%d: unexpected text after ']'", st->path, st->lineno);
		return -EINVAL;
	}
	st->in_section = true;
	st->nested = false;
	st->in_want = section_matches(st, trim(line + 1));
	if (st->in_want)
		st->found = true;
	return 0;
}

/* Stores key = value, replacing an earlier value of the same key. */
static int profile_put(struct aws_profile *p, const char *key, const char *value, int line)
{
	struct aws_profile_kv *kv;
	char *v = kt_strdup(value);

	if (v == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->nkv; i++) {
		if (strcmp(p->kv[i].key, key) == 0) {
			kt_str_free_wiped(p->kv[i].value);
			p->kv[i].value = v;
			p->kv[i].line = line;
			return 0;
		}
	}
	kv = realloc(p->kv, (p->nkv + 1) * sizeof(*kv));
	if (kv == NULL) {
		kt_str_free_wiped(v);
		return -ENOMEM;
	}
	p->kv = kv;
	kv[p->nkv].key = kt_strdup(key);
	if (kv[p->nkv].key == NULL) {
		kt_str_free_wiped(v);
		return -ENOMEM;
	}
	kv[p->nkv].value = v;
	kv[p->nkv].line = line;
	p->nkv++;
	return 0;
}

static int parse_line(struct parse_state *st, char *raw, struct aws_profile *out, char *err,
		      size_t errlen)
{
	bool indented = raw[0] == ' ' || raw[0] == '\t';
	char *line = trim(raw);
	char *eq, *key, *value;

	if (*line == '\0' || *line == '#' || *line == ';')
		return 0;
	/* An indented line after "key =" belongs to a nested block such as
	 * "s3 =\n  max_concurrent_requests = 10"; keyturn uses none of them. */
	if (indented && st->nested)
		return 0;
	st->nested = false;
	if (*line == '[')
		return parse_section(st, line, err, errlen);
	eq = strchr(line, '=');
	if (eq == NULL || eq == line) {
		kt_errf(err, errlen, "%s:%d: expected 'key = value' or '[section]'", st->path,
			st->lineno);
		return -EINVAL;
	}
	if (!st->in_section) {
		kt_errf(err, errlen, "%s:%d: 'key = value' before any '[section]'", st->path,
			st->lineno);
		return -EINVAL;
	}
	*eq = '\0';
	key = trim(line);
	if (*key == '\0') {
		kt_errf(err, errlen, "%s:%d: expected 'key = value' or '[section]'", st->path,
			st->lineno);
		return -EINVAL;
	}
	for (char *k = key; *k != '\0'; k++)
		*k = (char)tolower((unsigned char)*k);
	value = eq + 1;
	cut_inline_comment(value);
	value = trim(value);
	if (*value == '\0')
		st->nested = true;
	if (!st->in_want)
		return 0;
	return profile_put(out, key, value, st->lineno);
}

/* Reads one line (without its newline) into buf. Not getline(): its buffer
 * grows by realloc, which would leave unwiped copies of a long session token
 * in freed memory. Returns 1 for a line, 0 at the end of the file, -E2BIG for
 * a line that does not fit, -EINVAL for a NUL byte. */
static int read_line(FILE *f, char *buf, size_t cap)
{
	size_t n = 0;
	int c;

	while ((c = getc(f)) != EOF && c != '\n') {
		if (c == '\0')
			return -EINVAL;
		if (n + 1 >= cap)
			return -E2BIG;
		buf[n++] = (char)c;
	}
	buf[n] = '\0';
	return c == EOF && n == 0 ? 0 : 1;
}

int aws_profile_load(const char *path, const char *name, bool is_config, struct aws_profile *out,
		     char *err, size_t errlen)
{
	struct parse_state st = { .path = path, .want = name, .is_config = is_config };
	char iobuf[4096];
	char *line = NULL;
	FILE *f = NULL;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	f = fopen(path, "re");
	if (f == NULL) {
		rc = -errno;
		kt_errf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	/* stdio's buffer holds raw file contents, secret keys included; giving
	 * it one of ours lets it be wiped afterwards. */
	setvbuf(f, iobuf, _IOFBF, sizeof(iobuf));
	out->path = kt_strdup(path);
	out->name = kt_strdup(name);
	if (out->path == NULL || out->name == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	line = malloc(PROFILE_MAX_LINE + 1);
	if (line == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while ((rc = read_line(f, line, PROFILE_MAX_LINE + 1)) > 0) {
		st.lineno++;
		rc = parse_line(&st, line, out, err, errlen);
		if (rc < 0)
			goto out;
	}
	if (rc < 0) {
		kt_errf(err, errlen, "%s:%d: %s", path, st.lineno + 1,
			rc == -E2BIG ? "line too long" : "NUL byte in line");
		rc = -EINVAL;
		goto out;
	}
	if (ferror(f)) {
		rc = -EIO;
		kt_errf(err, errlen, "%s: read error", path);
		goto out;
	}
	if (!st.found) {
		rc = -ENOENT;
		kt_errf(err, errlen, "%s: no profile '%s'", path, name);
		goto out;
	}
out:
	if (f != NULL)
		fclose(f);
	kt_wipe(iobuf, sizeof(iobuf));
	kt_free_wiped(line, line != NULL ? PROFILE_MAX_LINE + 1 : 0);
	if (rc < 0)
		aws_profile_free(out);
	return rc;
}

const char *aws_profile_get(const struct aws_profile *p, const char *key)
{
	for (size_t i = 0; i < p->nkv; i++) {
		if (strcmp(p->kv[i].key, key) == 0)
			return p->kv[i].value;
	}
	return NULL;
}

int aws_profile_line(const struct aws_profile *p, const char *key)
{
	for (size_t i = 0; i < p->nkv; i++) {
		if (strcmp(p->kv[i].key, key) == 0)
			return p->kv[i].line;
	}
	return 0;
}

void aws_profile_free(struct aws_profile *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->nkv; i++) {
		free(p->kv[i].key);
		kt_str_free_wiped(p->kv[i].value);
	}
	free(p->kv);
	free(p->path);
	free(p->name);
	memset(p, 0, sizeof(*p));
}

/* The home directory: $HOME, else the password database, since a service
 * started by systemd often runs without HOME. */
static char *home_dir(void)
{
	const char *h = getenv("HOME");
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (h != NULL && *h != '\0')
		return kt_strdup(h);
	if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) != 0 || res == NULL ||
	    res->pw_dir == NULL || res->pw_dir[0] == '\0')
		return NULL;
	return kt_strdup(res->pw_dir);
}

static char *join_home(const char *home, const char *rest)
{
	size_t len = strlen(home) + strlen(rest) + 1;
	char *s = malloc(len);

	if (s != NULL)
		snprintf(s, len, "%s%s", home, rest);
	return s;
}

/* The file named by env (with "~/" expanded, as the AWS CLI does), else
 * ~/.aws/NAME. */
static char *aws_file_path(const char *env, const char *dflt)
{
	const char *v = getenv(env);
	char *home = NULL, *res = NULL;

	if (v != NULL && *v != '\0' && strncmp(v, "~/", 2) != 0)
		return kt_strdup(v);
	home = home_dir();
	if (home == NULL)
		goto out;
	if (v != NULL && *v != '\0')
		res = join_home(home, v + 1);
	else
		res = join_home(home, dflt);
out:
	free(home);
	return res;
}

char *aws_profile_credentials_path(void)
{
	return aws_file_path("AWS_SHARED_CREDENTIALS_FILE", "/.aws/credentials");
}

char *aws_profile_config_path(void)
{
	return aws_file_path("AWS_CONFIG_FILE", "/.aws/config");
}

char *aws_profile_name(void)
{
	const char *p = getenv("AWS_PROFILE");

	if (p == NULL || *p == '\0')
		p = "default";
	return kt_strdup(p);
}
