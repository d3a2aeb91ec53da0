/* Rotation events, the loop's side: takes the poller's hints
 * (events_poll.c), matches the secrets they name to the cache's entries by
 * ARN (full or partial), name or configured id, and asks the engine for a
 * check of each (KT_WHY_EVENT): a DescribeSecret, then a fetch only when
 * AWSCURRENT moved. A hint is never trusted data and never a value.
 *
 * Hints about one secret that arrive within a second of each other make
 * one check; a hint that finds the secret's check already running waits
 * for it and checks again after, so a change is never lost in a burst.
 *
 * While the queue answers, quiet-time checks run every quiet_interval (a
 * safety net); from its first failure until it answers again, every
 * check_interval, as without events. Each change of state is logged once. */
#ifndef KT_EVENTS_H
#define KT_EVENTS_H

#include <json-c/json.h>

#include "conf.h"
#include "engine.h"
#include "loop.h"

struct kt_events;

/* Starts the poller for cfg's [events] (which must name a queue); region
 * is Secrets Manager's, which an event must name (or name none) to count.
 * 0, or -1 after logging why. */
int kt_events_new(struct kt_loop *loop, struct kt_engine *eng, const struct kt_config *cfg,
		  const char *region, struct kt_events **out);

/* A reload: quiet_interval applies at once; another queue_url at the next
 * start (logged). */
void kt_events_configure(struct kt_events *ev, const struct kt_config *cfg);

/* status's "events" object; {"state":"off"} for NULL. */
struct json_object *kt_events_status(const struct kt_events *ev);

/* Stops the poller (a long poll in progress is cancelled). */
void kt_events_free(struct kt_events *ev);

#endif
