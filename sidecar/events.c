/* Rotation events, the loop's side (see events.h). */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include "common/log.h"
#include "events.h"
#include "events_parse.h"
#include "events_poll.h"

/* Hints within this long of the first make one check. */
#define EVENTS_SETTLE_MS 1000
/* An event that happened this long before a check of its secret began is
 * answered by that check (the slack covers clocks that disagree). */
#define EVENTS_SLACK_S 5

enum ev_state { EV_STARTING, EV_OK, EV_FAILING };

struct kt_events {
	struct kt_loop *loop;
	struct kt_engine *eng;
	struct kt_poller *poller;
	struct kt_loop_io *io;
	char *queue_url;
	char region[64];
	long quiet_interval;
	enum ev_state state;
	struct kt_poll_news last; /* counts, error, last message (hints taken) */
	unsigned long matched;    /* hints that named a secret served here */
	unsigned long unmatched;  /* hints about no secret served here */
	unsigned long other_region;
	unsigned long checks;   /* checks asked of the engine */
	unsigned long answered; /* hints older than a check made since */
	/* When the last event check of each entry began (wall clock). */
	struct {
		uint64_t id;
		time_t at;
	} * began;
	size_t nbegan, capbegan;
	char last_error[700]; /* the last failure of the queue, kept after it ends */
	time_t last_error_at; /* wall clock */
	/* Entries (by id) with a check to ask for when the timer fires. */
	uint64_t *pending;
	size_t npending, cap;
	struct kt_loop_timer *settle;
};

static bool names_entry(const char *id, const struct kt_entry *e)
{
	if (e->cfg != NULL && e->cfg->id != NULL && kt_event_matches(id, e->cfg->id))
		return true;
	return e->arn != NULL && kt_event_matches(id, e->arn);
}

static void flush(void *ctx);

static time_t began_at(const struct kt_events *ev, uint64_t id)
{
	for (size_t i = 0; i < ev->nbegan; i++)
		if (ev->began[i].id == id)
			return ev->began[i].at;
	return 0;
}

static void set_began(struct kt_events *ev, uint64_t id, time_t at)
{
	for (size_t i = 0; i < ev->nbegan; i++) {
		if (ev->began[i].id == id) {
			ev->began[i].at = at;
			return;
		}
	}
	if (ev->nbegan == ev->capbegan) {
		/* Entries a reload removed are forgotten before the table grows. */
		struct kt_cache *c = kt_engine_cache(ev->eng);
		size_t kept = 0;

		for (size_t i = 0; i < ev->nbegan; i++)
			if (kt_cache_by_id(c, ev->began[i].id) != NULL)
				ev->began[kept++] = ev->began[i];
		ev->nbegan = kept;
	}
	if (ev->nbegan == ev->capbegan) {
		size_t cap = ev->capbegan ? ev->capbegan * 2 : 16;
		void *n = realloc(ev->began, cap * sizeof(*ev->began));

		if (n == NULL)
			return; /* the event is only checked again: one call */
		ev->began = n;
		ev->capbegan = cap;
	}
	ev->began[ev->nbegan].id = id;
	ev->began[ev->nbegan++].at = at;
}

static void add_pending(struct kt_events *ev, uint64_t id)
{
	for (size_t i = 0; i < ev->npending; i++)
		if (ev->pending[i] == id)
			return;
	if (ev->npending == ev->cap) {
		size_t cap = ev->cap ? ev->cap * 2 : 16;
		uint64_t *n = realloc(ev->pending, cap * sizeof(*n));

		if (n == NULL)
			return; /* the safety-net check finds the change */
		ev->pending = n;
		ev->cap = cap;
	}
	ev->pending[ev->npending++] = id;
	if (ev->settle == NULL &&
	    kt_loop_after(ev->loop, EVENTS_SETTLE_MS, flush, ev, &ev->settle) < 0)
		ev->settle = NULL;
}

/* Asks for the checks; an entry whose job still runs keeps its place
 * until the next turn of the timer, so that a change made during that
 * job is not lost. */
static void flush(void *ctx)
{
	struct kt_events *ev = ctx;
	struct kt_cache *c = kt_engine_cache(ev->eng);
	size_t kept = 0;

	ev->settle = NULL;
	/* While AWS throttles, nothing is asked for; the timer comes back. */
	if (kt_engine_throttled_until(ev->eng) > kt_sched_now()) {
		if (kt_loop_after(ev->loop, EVENTS_SETTLE_MS, flush, ev, &ev->settle) < 0)
			ev->settle = NULL;
		return;
	}
	for (size_t i = 0; i < ev->npending; i++) {
		struct kt_entry *e = kt_cache_by_id(c, ev->pending[i]);

		if (e == NULL)
			continue;
		if (e->in_flight) {
			ev->pending[kept++] = ev->pending[i];
			continue;
		}
		log_info("events: checking %s", e->name);
		set_began(ev, e->id, time(NULL));
		kt_engine_check(ev->eng, e, KT_WHY_EVENT);
		ev->checks++;
	}
	ev->npending = 0;
	for (size_t i = 0; i < kept; i++)
		add_pending(ev, ev->pending[i]);
}

static void match(struct kt_events *ev, const struct kt_poll_hint *h)
{
	struct kt_cache *c = kt_engine_cache(ev->eng);
	bool any = false;

	if (h->region[0] != '\0' && strcmp(h->region, ev->region) != 0) {
		ev->other_region++;
		return;
	}
	for (size_t i = 0; i < c->n; i++) {
		struct kt_entry *e = c->entries[i];

		for (size_t j = 0; j < h->nids; j++) {
			if (!names_entry(h->ids[j], e))
				continue;
			any = true;
			if (h->time > 0 && h->time + EVENTS_SLACK_S < began_at(ev, e->id))
				ev->answered++;
			else
				add_pending(ev, e->id);
			break;
		}
	}
	if (any)
		ev->matched++;
	else
		ev->unmatched++;
}

static void set_state(struct kt_events *ev, const struct kt_poll_news *n)
{
	if (n->failing && ev->state != EV_FAILING) {
		ev->state = EV_FAILING;
		kt_engine_set_quiet_interval(ev->eng, 0);
		log_warn("events: %s; checking each secret every check_interval until the queue "
			 "answers again",
			 n->error);
	} else if (!n->failing && n->answered && ev->state != EV_OK) {
		ev->state = EV_OK;
		kt_engine_set_quiet_interval(ev->eng, ev->quiet_interval);
		log_info("events: receiving from %s; safety-net checks every %ld s", ev->queue_url,
			 ev->quiet_interval);
	}
}

static void poller_event(void *ctx, uint32_t events)
{
	struct kt_events *ev = ctx;
	struct kt_poll_news n;

	(void)events;
	kt_poller_take(ev->poller, &n);
	for (size_t i = 0; i < n.nhints; i++)
		match(ev, &n.hints[i]);
	set_state(ev, &n);
	if (n.failing) {
		snprintf(ev->last_error, sizeof(ev->last_error), "%s", n.error);
		ev->last_error_at = time(NULL);
	}
	kt_poll_news_free(&n);
	ev->last = n;
}

int kt_events_new(struct kt_loop *loop, struct kt_engine *eng, const struct kt_config *cfg,
		  const char *region, struct kt_events **out)
{
	struct kt_events *ev = calloc(1, sizeof(*ev));
	struct kt_poll_opts o = { 0 };
	char err[700];

	*out = NULL;
	if (ev == NULL || (ev->queue_url = strdup(cfg->events_queue_url)) == NULL) {
		log_err("events: out of memory");
		goto fail;
	}
	ev->loop = loop;
	ev->eng = eng;
	ev->quiet_interval = cfg->events_quiet_interval;
	snprintf(ev->region, sizeof(ev->region), "%s", region);
	o.queue_url = cfg->events_queue_url;
	o.region = region;
	o.ca_file = cfg->ca_file;
	o.fips = cfg->fips;
	if (kt_poller_start(&o, &ev->poller, err, sizeof(err)) < 0) {
		log_err("[events] queue_url = %s: %s", cfg->events_queue_url, err);
		goto fail;
	}
	if (kt_loop_io_add(loop, kt_poller_fd(ev->poller), EPOLLIN, poller_event, ev, &ev->io) <
	    0) {
		log_err("events: cannot watch the poller");
		goto fail;
	}
	log_info("events: polling %s", ev->queue_url);
	*out = ev;
	return 0;
fail:
	kt_events_free(ev);
	return -1;
}

void kt_events_configure(struct kt_events *ev, const struct kt_config *cfg)
{
	if (ev == NULL) {
		if (cfg->events_queue_url != NULL)
			log_warn("reload: [events] takes effect at the next start");
		return;
	}
	if (cfg->events_queue_url == NULL || strcmp(cfg->events_queue_url, ev->queue_url) != 0)
		log_warn("reload: a change of [events] queue_url takes effect at the next start");
	ev->quiet_interval = cfg->events_quiet_interval;
	if (ev->state == EV_OK)
		kt_engine_set_quiet_interval(ev->eng, ev->quiet_interval);
}

static void add_count(struct json_object *o, const char *k, unsigned long v)
{
	json_object_object_add(o, k, json_object_new_int64((int64_t)v));
}

struct json_object *kt_events_status(const struct kt_events *ev)
{
	static const char *const states[] = { "starting", "ok", "failing" };
	struct json_object *o = json_object_new_object();
	const struct kt_poll_counts *c;

	if (o == NULL)
		return NULL;
	if (ev == NULL) {
		json_object_object_add(o, "state", json_object_new_string("off"));
		return o;
	}
	c = &ev->last.counts;
	json_object_object_add(o, "state", json_object_new_string(states[ev->state]));
	json_object_object_add(o, "queue_url", json_object_new_string(ev->queue_url));
	add_count(o, "quiet_interval", (unsigned long)ev->quiet_interval);
	add_count(o, "receives", c->receives);
	add_count(o, "received", c->received);
	add_count(o, "matched", ev->matched);
	add_count(o, "unmatched", ev->unmatched);
	add_count(o, "other_region", ev->other_region);
	add_count(o, "ignored", c->ignored);
	add_count(o, "unparseable", c->unparseable);
	add_count(o, "deleted", c->deleted);
	add_count(o, "delete_failed", c->delete_failed);
	add_count(o, "failures", c->failures);
	add_count(o, "early_pauses", c->early_pauses);
	add_count(o, "checks", ev->checks);
	add_count(o, "answered", ev->answered);
	json_object_object_add(o, "last_message",
			       json_object_new_int64((int64_t)ev->last.last_message));
	json_object_object_add(o, "last_error",
			       ev->last_error[0] != '\0' ? json_object_new_string(ev->last_error)
							 : NULL);
	json_object_object_add(o, "last_error_at",
			       json_object_new_int64((int64_t)ev->last_error_at));
	return o;
}

void kt_events_free(struct kt_events *ev)
{
	if (ev == NULL)
		return;
	if (ev->io != NULL)
		kt_loop_io_del(ev->loop, ev->io);
	if (ev->settle != NULL)
		kt_loop_timer_del(ev->loop, ev->settle);
	kt_poller_stop(ev->poller);
	free(ev->pending);
	free(ev->began);
	free(ev->queue_url);
	free(ev);
}
