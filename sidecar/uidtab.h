/* What each local uid holds of keyturnd's socket server: its connections,
 * its unsent answers, and its complaint log lines. Every cost a caller can
 * cause is counted per uid here, so one user's flood is bounded by its own
 * share and never by what other users are left with. */
#ifndef KT_UIDTAB_H
#define KT_UIDTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

/* What a complaint line is about; counted per uid per window. */
enum kt_complaint {
	KT_COMPLAINT_QUOTA,    /* over max_connections_per_uid */
	KT_COMPLAINT_FULL,     /* max_connections reached, not in the reserve */
	KT_COMPLAINT_FRAME,    /* a frame over the request limit, or of length 0 */
	KT_COMPLAINT_DEADLINE, /* a request frame not completed in time */
	KT_COMPLAINT_REQUEST,  /* a frame that is not a JSON object */
	KT_COMPLAINT_N,
};

/* One summary line per uid per window, besides the first complaint. */
#define KT_COMPLAINT_WINDOW 60

struct kt_uid_use {
	uid_t uid;
	long conns;                           /* open connections */
	size_t out;                           /* bytes of answers queued and not yet sent */
	bool stalled;                         /* some connection waits for out to drop */
	time_t window_start;                  /* of the complaint window, 0 when none is open */
	unsigned long counts[KT_COMPLAINT_N]; /* complaints not logged in it */
	struct kt_uid_use *next;
};

struct kt_uidtab;

struct kt_uidtab *kt_uidtab_new(void);
void kt_uidtab_free(struct kt_uidtab *t);

/* The entry for uid, made when missing (NULL on ENOMEM only then). */
struct kt_uid_use *kt_uidtab_get(struct kt_uidtab *t, uid_t uid);

/* Logs a complaint about uid at warning level, unless one was logged in
 * this uid's current window: then it is only counted, for the summary
 * that kt_uidtab_tick() logs when the window ends. */
void kt_uidtab_complain(struct kt_uidtab *t, uid_t uid, enum kt_complaint what, time_t now,
			const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Logs the summaries of windows that ended and forgets uids that hold
 * nothing any more. now is CLOCK_MONOTONIC seconds. */
void kt_uidtab_tick(struct kt_uidtab *t, time_t now);

/* How many uids are known (for tests and status). */
size_t kt_uidtab_size(const struct kt_uidtab *t);

#endif
