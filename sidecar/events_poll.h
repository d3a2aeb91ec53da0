/* The rotation-event poller: one thread that long-polls an SQS queue
 * (ReceiveMessage, 20 s, up to 10 messages), turns each message body into a
 * hint (events_parse.c: which secrets an event names, never a value),
 * deletes every message it received, handled or not (DeleteMessageBatch),
 * and hands the hints to the event loop through an eventfd. It knows
 * nothing of the cache: events.c matches hints to secrets.
 *
 * One batch at a time: the thread receives again only once the loop has
 * taken what it posted, so what waits for the loop is at most ten
 * messages' hints. A failing queue is retried with a back-off of 2 s
 * doubling to 60 s; an answer that comes back empty much sooner than the
 * long poll asked (a queue or proxy that ignores WaitTimeSeconds) is
 * followed by a pause, so the thread never spins. */
#ifndef KT_EVENTS_POLL_H
#define KT_EVENTS_POLL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "events_parse.h"

struct kt_poller;

struct kt_poll_opts {
	const char *queue_url;
	const char *region;  /* for a queue URL that names none (an emulator) */
	const char *ca_file; /* NULL: the system store */
	bool fips;
	long backoff_cap_ms; /* 0: 60000 */
};

/* One message that named secrets: its region and the ids it gave. */
struct kt_poll_hint {
	char region[32];
	char name[64];
	time_t time; /* when it happened, 0: not said */
	size_t nids;
	char *ids[KT_EVENT_MAX_IDS];
};

/* Totals since start. */
struct kt_poll_counts {
	unsigned long receives;      /* ReceiveMessage calls that answered */
	unsigned long received;      /* messages */
	unsigned long hints;         /* messages that named a secret change */
	unsigned long ignored;       /* well-formed, but not a change of a secret */
	unsigned long unparseable;   /* not an event keyturnd can read */
	unsigned long deleted;       /* messages deleted */
	unsigned long delete_failed; /* deletes the queue refused */
	unsigned long failures;      /* failed ReceiveMessage calls */
	unsigned long early_pauses;  /* empty answers well before the long poll's end */
};

/* What the loop takes from the thread at each wake-up. */
struct kt_poll_news {
	struct kt_poll_hint *hints; /* nhints, owned by the taker */
	size_t nhints;
	struct kt_poll_counts counts;
	bool answered;       /* a ReceiveMessage answered since the last take */
	bool failing;        /* the last ReceiveMessage failed */
	char error[700];     /* why, when failing */
	time_t last_message; /* wall clock of the last message received, 0: none */
};

/* Starts the thread: 0, or a negative errno with err saying why (a queue
 * URL keyturnd cannot use, no memory, no thread). */
int kt_poller_start(const struct kt_poll_opts *o, struct kt_poller **out, char *err, size_t errlen);

/* Readable when news waits. */
int kt_poller_fd(const struct kt_poller *p);

/* Takes the news (and lets the thread receive again). */
void kt_poller_take(struct kt_poller *p, struct kt_poll_news *out);
void kt_poll_news_free(struct kt_poll_news *n);

/* Cancels a long poll in progress, joins the thread, frees p. */
void kt_poller_stop(struct kt_poller *p);

#endif
