/* Per-uid use of the socket server, and the complaint-log limiter: a
 * caller that sends garbage in a loop gets one warning line and then one
 * summary line a minute, so journald's own rate limit never drops the
 * audit lines that matter. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "uidtab.h"

#define BUCKETS 256

struct kt_uidtab {
	struct kt_uid_use *bucket[BUCKETS];
	size_t n;
};

static const char *const complaint_names[KT_COMPLAINT_N] = {
	[KT_COMPLAINT_QUOTA] = "over max_connections_per_uid",
	[KT_COMPLAINT_FULL] = "max_connections reached",
	[KT_COMPLAINT_FRAME] = "bad frame length",
	[KT_COMPLAINT_DEADLINE] = "incomplete request",
	[KT_COMPLAINT_REQUEST] = "not a JSON object",
};

struct kt_uidtab *kt_uidtab_new(void)
{
	return calloc(1, sizeof(struct kt_uidtab));
}

void kt_uidtab_free(struct kt_uidtab *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < BUCKETS; i++) {
		while (t->bucket[i] != NULL) {
			struct kt_uid_use *u = t->bucket[i];

			t->bucket[i] = u->next;
			free(u);
		}
	}
	free(t);
}

static size_t slot(uid_t uid)
{
	return ((size_t)uid * 2654435761u) % BUCKETS;
}

struct kt_uid_use *kt_uidtab_get(struct kt_uidtab *t, uid_t uid)
{
	struct kt_uid_use *u;
	size_t i = slot(uid);

	for (u = t->bucket[i]; u != NULL; u = u->next) {
		if (u->uid == uid)
			return u;
	}
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return NULL;
	u->uid = uid;
	u->next = t->bucket[i];
	t->bucket[i] = u;
	t->n++;
	return u;
}

void kt_uidtab_complain(struct kt_uidtab *t, uid_t uid, enum kt_complaint what, time_t now,
			const char *fmt, ...)
{
	struct kt_uid_use *u = kt_uidtab_get(t, uid);
	char line[300];
	va_list ap;

	if (u != NULL && u->window_start != 0) {
		u->counts[what]++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (u == NULL) {
		/* Out of memory: a line unlimited is better than none. */
		log_warn("%s", line);
		return;
	}
	u->window_start = now;
	log_warn("%s (more complaints about uid %lu in the next %d s are only counted)", line,
		 (unsigned long)uid, KT_COMPLAINT_WINDOW);
}

static void summarise(struct kt_uid_use *u)
{
	char line[400];
	size_t used = 0;
	unsigned long total = 0;

	for (int i = 0; i < KT_COMPLAINT_N; i++) {
		int n;

		if (u->counts[i] == 0)
			continue;
		total += u->counts[i];
		n = snprintf(line + used, sizeof(line) - used, "%s%s: %lu", used > 0 ? ", " : "",
			     complaint_names[i], u->counts[i]);
		if (n > 0 && (size_t)n < sizeof(line) - used)
			used += (size_t)n;
	}
	if (total > 0)
		log_warn("uid %lu: %lu more complaints in the last %d s (%s)",
			 (unsigned long)u->uid, total, KT_COMPLAINT_WINDOW, line);
	memset(u->counts, 0, sizeof(u->counts));
}

void kt_uidtab_tick(struct kt_uidtab *t, time_t now)
{
	for (size_t i = 0; i < BUCKETS; i++) {
		struct kt_uid_use **pp = &t->bucket[i], *u;

		while ((u = *pp) != NULL) {
			if (u->window_start != 0 && now - u->window_start >= KT_COMPLAINT_WINDOW) {
				summarise(u);
				u->window_start = 0;
			}
			if (u->conns == 0 && u->out == 0 && u->window_start == 0) {
				*pp = u->next;
				free(u);
				t->n--;
				continue;
			}
			pp = &u->next;
		}
	}
}

size_t kt_uidtab_size(const struct kt_uidtab *t)
{
	return t->n;
}
