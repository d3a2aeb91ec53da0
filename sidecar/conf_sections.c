/* What keyturnd's configuration checks once the whole file is read, when
 * every section's name is known: [file:PATH] sections (their secret,
 * format, owner, group, mode, run_as and on_change) and [rotate:NAME]
 * sections (their secret, schedule, window, commands and run_as).
 * Commands are split into words here, as systemd splits ExecStart=. */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"
#include "conf_values.h"

/* --- [file:PATH] sections, checked once the whole file is read ----------- */

/* Records "FILE:LINE: [KIND:NAME] KEY: message" for the section of that
 * kind and name starting at line. */
__attribute__((format(printf, 6, 7))) static int section_fail(struct parser *p, int line,
							      const char *kind, const char *name,
							      const char *key, const char *fmt, ...)
{
	char section[1024], msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	snprintf(section, sizeof(section), "%s:%s", kind, name);
	return conf_fail_at(p, line, section, key, -EINVAL, "%s", msg);
}

/* on_change split into words as systemd splits ExecStart=, without a
 * shell: blanks separate words; '...' keeps its text as it is; "..." and
 * unquoted text take a backslash as an escape of the next character.
 * -EINVAL for an unterminated quote or a lone trailing backslash. */
static int split_argv(const char *v, char ***out)
{
	size_t max = strlen(v) / 2 + 2, n = 0, len = 0;
	char **argv = calloc(max, sizeof(*argv)), *w = NULL, q = 0;
	int rc = -ENOMEM;

	if (argv == NULL)
		return rc;
	for (;; v++) {
		if (q == 0 && (*v == ' ' || *v == '\t' || *v == '\0')) {
			if (w != NULL) {
				w[len] = '\0';
				argv[n++] = w;
				w = NULL;
			}
			if (*v == '\0')
				break;
			continue;
		}
		if (*v == '\0') {
			rc = -EINVAL;
			goto fail;
		}
		if (w == NULL) {
			w = calloc(1, strlen(v) + 1);
			len = 0;
			if (w == NULL)
				goto fail;
		}
		if (q == 0 && (*v == '\'' || *v == '"')) {
			q = *v;
		} else if (q != 0 && *v == q) {
			q = 0;
		} else if (q != '\'' && *v == '\\') {
			if (*++v == '\0') {
				rc = -EINVAL;
				goto fail;
			}
			w[len++] = *v;
		} else {
			w[len++] = *v;
		}
	}
	if (n == 0) {
		rc = -EINVAL;
		goto fail;
	}
	*out = argv;
	return 0;
fail:
	free(w);
	conf_free_list(argv);
	return rc;
}

static int check_file_section(struct parser *p, struct kt_file_cfg *f)
{
	struct passwd *pw;
	uint32_t id;
	unsigned long mode;
	size_t i;
	char *end;
	int ret;

	if (f->secret == NULL)
		return section_fail(p, f->line, "file", f->path, "secret",
				    "missing; every [file:] section needs one");
	for (i = 0; i < p->cfg->nsecrets && strcmp(p->cfg->secrets[i].name, f->secret) != 0; i++)
		;
	if (i == p->cfg->nsecrets)
		return section_fail(p, f->line, "file", f->path, "secret",
				    "'%.64s' is not a configured [secret:] section", f->secret);
	if (f->format_text == NULL || strcmp(f->format_text, "raw") == 0)
		f->format = KT_FILE_RAW;
	else if (strcmp(f->format_text, "env") == 0)
		f->format = KT_FILE_ENV;
	else if (strcmp(f->format_text, "json") == 0)
		f->format = KT_FILE_JSON;
	else
		return section_fail(p, f->line, "file", f->path, "format",
				    "'%.64s' is not raw, env or json", f->format_text);
	if (f->key != NULL && f->format != KT_FILE_RAW)
		return section_fail(p, f->line, "file", f->path, "key",
				    "only format = raw takes a key");
	if (f->mode_text != NULL) {
		errno = 0;
		mode = strtoul(f->mode_text, &end, 8);
		if (errno != 0 || *end != '\0' || f->mode_text[0] < '0' || f->mode_text[0] > '7' ||
		    mode > 0777)
			return section_fail(p, f->line, "file", f->path, "mode",
					    "'%.64s' is not an octal mode from 0 to 0777",
					    f->mode_text);
		f->mode = (mode_t)mode;
	}
	if (f->owner != NULL) {
		ret = conf_lookup_id(f->owner, false, &id);
		if (ret < 0)
			return section_fail(p, f->line, "file", f->path, "owner",
					    "unknown user '%.64s'", f->owner);
		f->uid = (uid_t)id;
	}
	if (f->group != NULL) {
		ret = conf_lookup_id(f->group, true, &id);
		if (ret < 0)
			return section_fail(p, f->line, "file", f->path, "group",
					    "unknown group '%.64s'", f->group);
		f->gid = (gid_t)id;
	}
	if (f->run_as != NULL) {
		pw = getpwnam(f->run_as);
		if (pw == NULL)
			return section_fail(p, f->line, "file", f->path, "run_as",
					    "unknown user '%.64s'", f->run_as);
		f->run_uid = pw->pw_uid;
		f->run_gid = pw->pw_gid;
	}
	if (f->run_as != NULL && f->on_change == NULL)
		return section_fail(p, f->line, "file", f->path, "run_as",
				    "given without on_change");
	if (f->on_stale_text != NULL && strcmp(f->on_stale_text, "keep") != 0) {
		if (strcmp(f->on_stale_text, "remove") != 0)
			return section_fail(p, f->line, "file", f->path, "on_stale",
					    "'%.64s' is not keep or remove", f->on_stale_text);
		f->on_stale_remove = true;
	}
	ret = f->on_change != NULL ? split_argv(f->on_change, &f->argv) : 0;
	if (ret == -EINVAL)
		return section_fail(p, f->line, "file", f->path, "on_change",
				    "an unterminated quote, a trailing backslash, or no command");
	if (ret < 0)
		return conf_fail_at(p, f->line, NULL, "on_change", ret, "out of memory");
	return 0;
}

int conf_check_files(struct parser *p)
{
	for (size_t i = 0; i < p->cfg->nfiles; i++) {
		int ret = check_file_section(p, &p->cfg->files[i]);

		if (ret < 0)
			return ret;
	}
	return 0;
}

/* --- [rotate:NAME] sections ---------------------------------------------- */

static int split_command(struct parser *p, struct kt_rotate_cfg *r, const char *key,
			 const char *text, char ***argv)
{
	int ret = text != NULL ? split_argv(text, argv) : 0;

	if (ret == -EINVAL)
		return section_fail(p, r->line, "rotate", r->name, key,
				    "an unterminated quote, a trailing backslash, or no command");
	if (ret < 0)
		return conf_fail_at(p, r->line, NULL, key, ret, "out of memory");
	return 0;
}

static int check_rotate_section(struct parser *p, struct kt_rotate_cfg *r)
{
	const struct kt_secret_cfg *s = NULL;
	char why[256];
	struct passwd *pw;
	int ret;

	/* Looked up here, not with kt_config_secret: conf.c calls this file. */
	for (size_t i = 0; s == NULL && i < p->cfg->nsecrets; i++) {
		if (strcmp(p->cfg->secrets[i].name, r->name) == 0)
			s = &p->cfg->secrets[i];
	}
	if (s == NULL)
		return section_fail(p, r->line, "rotate", r->name, NULL,
				    "'%.64s' is not a configured [secret:] section", r->name);
	r->secret_id = s->id;
	for (const struct kt_rotate_cfg *o = p->cfg->rotates; o < r; o++) {
		if (strcmp(o->secret_id, r->secret_id) == 0)
			return section_fail(
				p, r->line, "rotate", r->name, NULL,
				"[rotate:%.64s] (line %d) rotates the same SecretId already",
				o->name, o->line);
	}
	if (r->key == NULL && s->key != NULL && (r->key = strdup(s->key)) == NULL)
		return conf_fail_at(p, r->line, NULL, "key", -ENOMEM, "out of memory");
	if (r->schedule != NULL && kt_awssched_parse(r->schedule, &r->sched, why, sizeof(why)) < 0)
		return section_fail(p, r->line, "rotate", r->name, "schedule", "%s", why);
	if (r->window_text != NULL) {
		if (r->schedule == NULL)
			return section_fail(p, r->line, "rotate", r->name, "window",
					    "given without a schedule");
		if (kt_awssched_parse_duration(r->window_text, &r->window, why, sizeof(why)) < 0 ||
		    kt_awssched_check_window(&r->sched, r->window, why, sizeof(why)) < 0)
			return section_fail(p, r->line, "rotate", r->name, "window", "%s", why);
	}
	if (r->exclude_numbers && r->exclude_punctuation && r->exclude_uppercase &&
	    r->exclude_lowercase && !r->include_space)
		return section_fail(p, r->line, "rotate", r->name, "exclude_lowercase",
				    "every type of character is excluded: no password can be made");
	if (r->run_as != NULL) {
		if (r->set_command == NULL && r->test_command == NULL)
			return section_fail(p, r->line, "rotate", r->name, "run_as",
					    "given without set_command or test_command");
		pw = getpwnam(r->run_as);
		if (pw == NULL)
			return section_fail(p, r->line, "rotate", r->name, "run_as",
					    "unknown user '%.64s'", r->run_as);
		r->run_uid = pw->pw_uid;
		r->run_gid = pw->pw_gid;
	}
	ret = split_command(p, r, "set_command", r->set_command, &r->set_argv);
	if (ret == 0)
		ret = split_command(p, r, "test_command", r->test_command, &r->test_argv);
	return ret;
}

/* A login rotated after use whose secret a [rotate:] section rotates: the
 * section's key must be where the login finds its password, or the first
 * rotation would lock the account out. */
static int check_after_use(struct parser *p, const struct kt_login_cfg *l)
{
	char section[600];

	if (l->rotate_after_use == 0 || strchr(l->secret, '%') != NULL)
		return 0;
	for (size_t i = 0; i < p->cfg->nrotates; i++) {
		const struct kt_rotate_cfg *r = &p->cfg->rotates[i];
		const char *lk = l->key != NULL ? l->key : "", *rk = r->key != NULL ? r->key : "";

		if ((strcmp(r->name, l->secret) != 0 && strcmp(r->secret_id, l->secret) != 0) ||
		    strcmp(lk, rk) == 0)
			continue;
		snprintf(section, sizeof(section), "login:%.500s", l->user);
		return conf_fail_at(
			p, l->line, section, "rotate_after_use", -EINVAL,
			"[rotate:%.64s] (line %d) puts the new password in %s%.64s%s, but "
			"this login reads it from %s%.64s%s",
			r->name, r->line, *rk ? "key '" : "the whole value", rk, *rk ? "'" : "",
			*lk ? "key '" : "the whole value", lk, *lk ? "'" : "");
	}
	return 0;
}

int conf_check_rotates(struct parser *p)
{
	for (size_t i = 0; i < p->cfg->nrotates; i++) {
		int ret = check_rotate_section(p, &p->cfg->rotates[i]);

		if (ret < 0)
			return ret;
	}
	for (size_t i = 0; i < p->cfg->nlogins; i++) {
		int ret = check_after_use(p, &p->cfg->logins[i]);

		if (ret < 0)
			return ret;
	}
	return 0;
}
