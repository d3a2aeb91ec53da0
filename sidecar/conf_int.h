/* What conf.c and conf_keys.c share; not a public face (conf.h is).
 * conf.c owns the reading: the file and its checks, libinih, the sections
 * and what only a whole section or file can tell (a missing key, a name
 * twice). conf_keys.c owns the keys: their tables, the check and storing of
 * one key = value pair, freeing what was stored, and the error record.
 * Calls go one way only: conf.c calls conf_keys.c. */
#ifndef KT_CONF_INT_H
#define KT_CONF_INT_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"

#define DAY (24L * 3600)
#define WEEK (7 * DAY)
#define YEAR (365 * DAY)

enum sec_kind {
	SEC_NONE,
	SEC_DAEMON,
	SEC_EVENTS,
	SEC_HTTP,
	SEC_CREDENTIALS,
	SEC_SECRET,
	SEC_LOGIN,
	SEC_FILE,
	SEC_ROTATE,
};

/* Keys a section kind may have, at most (conf_keys.c checks its tables). */
#define MAX_KEYS 32

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
	size_t idx;             /* into cfg->secrets, logins, files or rotates */
	int key_line[MAX_KEYS]; /* where each key of the section was set, or 0 */
	int daemon_line;
	int events_line;
	int http_line;
	int credentials_line;
	/* The first error wins; nothing after it is looked at. errline is the
	 * line being read when it was found, to compare with libinih's. */
	int err;
	int errline;
	char *errbuf;
	size_t errlen;
};

/* Records "FILE:LINE: [SECTION] KEY: message" unless an error is already
 * recorded; line 0 leaves out the line, a NULL section or key its part.
 * Returns the error recorded first (err when this is the first). */
__attribute__((format(printf, 6, 7))) int conf_fail_at(struct parser *p, int line,
						       const char *section, const char *key,
						       int err, const char *fmt, ...);

/* conf_fail_at at the line being read, in the current section. */
#define conf_fail(p, key, err, ...) \
	conf_fail_at((p), (p)->lineno, (p)->section, (key), (err), __VA_ARGS__)

/* Checks and stores one key = value pair of the current section (p->kind,
 * p->idx): 0, or the negative errno recorded with conf_fail. */
int conf_set_pair(struct parser *p, const char *name, const char *value);

/* Frees a NULL-terminated list of strings (conf_keys.c). */
void conf_free_list(char **names);

/* conf_sections.c: what is checked once the whole file is read. Every
 * [file:] section (its secret must be configured, anywhere in the file;
 * owner, group, mode, run_as and on_change resolved) and every [rotate:]
 * section (its secret, schedule, window, commands and run_as): 0 or the
 * negative errno recorded. */
int conf_check_files(struct parser *p);
int conf_check_rotates(struct parser *p);

#endif
