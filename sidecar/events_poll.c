/* The rotation-event poller thread (see events_poll.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/err.h"
#include "common/kt_efd.h"
#include "common/log.h"
#include "common/kt_time.h"
#include "events_poll.h"
#include "aws/client.h"
#include "aws/sqs.h"

#define POLL_WAIT_S 20       /* WaitTimeSeconds */
#define POLL_MAX_MESSAGES 10 /* MaxNumberOfMessages */
#define POLL_BACKOFF_BASE_MS 2000L
#define POLL_BACKOFF_CAP_MS 60000L
/* An empty answer sooner than this after a long poll of POLL_WAIT_S means
 * the far end does not wait: pause this long before the next one. */
#define POLL_EARLY_MS 1000L
#define POLL_EARLY_PAUSE_MS 5000L

struct kt_poller {
	struct aws_client *client;
	char *queue_url;
	long backoff_cap_ms;
	pthread_t thread;
	bool started;
	int efd;
	pthread_mutex_t lock;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC: taken, or stopping */
	bool stopping;
	bool posted; /* news waits for the loop */
	struct kt_poll_news news;
	size_t cap; /* of news.hints */
};

/* Sleeps ms unless stopping; false when stopping. */
static bool pause_ms(struct kt_poller *p, long ms)
{
	struct timespec until = kt_mono_after_ms(ms);
	bool go_on;

	pthread_mutex_lock(&p->lock);
	while (!p->stopping && pthread_cond_timedwait(&p->cond, &p->lock, &until) != ETIMEDOUT)
		;
	go_on = !p->stopping;
	pthread_mutex_unlock(&p->lock);
	return go_on;
}

/* Waits until the loop took the last news; false when stopping. */
static bool wait_taken(struct kt_poller *p)
{
	bool go_on;

	pthread_mutex_lock(&p->lock);
	while (p->posted && !p->stopping)
		pthread_cond_wait(&p->cond, &p->lock);
	go_on = !p->stopping;
	pthread_mutex_unlock(&p->lock);
	return go_on;
}

static void post(struct kt_poller *p)
{
	pthread_mutex_lock(&p->lock);
	p->posted = true;
	pthread_mutex_unlock(&p->lock);
	kt_efd_wake(p->efd, "events");
}

/* Adds a hint for ev; false when out of memory (the message still counts,
 * and the safety-net check finds the change). */
static bool add_hint(struct kt_poller *p, const struct kt_event *ev)
{
	struct kt_poll_hint *h;

	if (p->news.nhints == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : POLL_MAX_MESSAGES;
		struct kt_poll_hint *n = realloc(p->news.hints, cap * sizeof(*n));

		if (n == NULL)
			return false;
		p->news.hints = n;
		p->cap = cap;
	}
	h = &p->news.hints[p->news.nhints];
	memset(h, 0, sizeof(*h));
	snprintf(h->region, sizeof(h->region), "%s", ev->source_region);
	snprintf(h->name, sizeof(h->name), "%s", ev->name);
	h->time = ev->time;
	for (size_t i = 0; i < ev->n_ids; i++) {
		h->ids[h->nids] = strdup(ev->ids[i]);
		if (h->ids[h->nids] != NULL)
			h->nids++;
	}
	if (h->nids == 0)
		return false;
	p->news.nhints++;
	return true;
}

/* Parses each message into news and counts it. */
static void handle_batch(struct kt_poller *p, const struct sqs_batch *b)
{
	struct kt_event *ev = malloc(sizeof(*ev));
	char why[160];

	pthread_mutex_lock(&p->lock);
	p->news.counts.receives++;
	p->news.counts.received += b->n;
	p->news.answered = true;
	p->news.failing = false;
	p->news.error[0] = '\0';
	if (b->n > 0)
		p->news.last_message = time(NULL);
	for (size_t i = 0; i < b->n; i++) {
		int r = ev != NULL ? kt_event_parse(b->msgs[i].body, b->msgs[i].body_len, ev, why,
						    sizeof(why))
				   : KT_EVENT_BAD;

		if (ev == NULL)
			snprintf(why, sizeof(why), "out of memory");
		if (r == KT_EVENT_HINT && add_hint(p, ev)) {
			p->news.counts.hints++;
		} else if (r == KT_EVENT_IGNORED) {
			p->news.counts.ignored++;
		} else if (r == KT_EVENT_BAD) {
			p->news.counts.unparseable++;
			log_debug("events: message %.64s is not an event keyturnd reads: %s",
				  b->msgs[i].message_id, why);
		}
	}
	pthread_mutex_unlock(&p->lock);
	free(ev);
}

static void delete_batch(struct kt_poller *p, const struct sqs_batch *b)
{
	const char *handles[POLL_MAX_MESSAGES];
	struct aws_error err;
	size_t n = 0, failed = 0;
	int rc;

	for (size_t i = 0; i < b->n && n < POLL_MAX_MESSAGES; i++)
		handles[n++] = b->msgs[i].receipt_handle;
	if (n == 0)
		return;
	rc = sqs_delete_message_batch(p->client, p->queue_url, handles, n, &failed, &err);
	if (rc < 0)
		failed = n;
	pthread_mutex_lock(&p->lock);
	p->news.counts.deleted += n - failed;
	p->news.counts.delete_failed += failed;
	pthread_mutex_unlock(&p->lock);
	if (rc < 0)
		log_debug("events: DeleteMessageBatch: %s", err.message);
}

static void *poll_main(void *arg)
{
	struct kt_poller *p = arg;
	long backoff = 0;

	while (wait_taken(p)) {
		struct sqs_batch b = { 0 };
		struct aws_error err;
		size_t got;
		int64_t t0 = kt_mono_ms();
		int rc = sqs_receive_message(p->client, p->queue_url, POLL_MAX_MESSAGES,
					     POLL_WAIT_S, &b, &err);

		if (rc < 0) {
			pthread_mutex_lock(&p->lock);
			p->news.counts.failures++;
			p->news.failing = true;
			snprintf(p->news.error, sizeof(p->news.error), "%s%s%s%s", err.message,
				 err.type[0] != '\0' ? " (" : "", err.type,
				 err.type[0] != '\0' ? ")" : "");
			pthread_mutex_unlock(&p->lock);
			post(p);
			backoff = backoff == 0 ? POLL_BACKOFF_BASE_MS : backoff * 2;
			if (backoff > p->backoff_cap_ms)
				backoff = p->backoff_cap_ms;
			if (!pause_ms(p, backoff))
				break;
			continue;
		}
		backoff = 0;
		got = b.n; /* sqs_batch_free clears b */
		handle_batch(p, &b);
		post(p);
		delete_batch(p, &b);
		sqs_batch_free(&b);
		if (got == 0 && kt_mono_ms() - t0 < POLL_EARLY_MS) {
			pthread_mutex_lock(&p->lock);
			p->news.counts.early_pauses++;
			pthread_mutex_unlock(&p->lock);
			if (!pause_ms(p, POLL_EARLY_PAUSE_MS))
				break;
		}
	}
	return NULL;
}

static int client_for(const struct kt_poll_opts *o, struct aws_client **out, char *err,
		      size_t errlen)
{
	struct aws_client_opts co = { 0 };
	struct aws_error aerr;
	char endpoint[512], region[64];

	if (sqs_endpoint_for_queue(o->queue_url, endpoint, sizeof(endpoint), region, sizeof(region),
				   err, errlen) < 0)
		return -EINVAL;
	co.service = "sqs";
	co.json_version = "1.0";
	co.endpoint = endpoint;
	co.region = region[0] != '\0' ? region : o->region;
	co.ca_file = o->ca_file;
	co.fips = o->fips;
	co.timeout_ms = SQS_CLIENT_TIMEOUT_MS(POLL_WAIT_S);
	/* Ten messages of SQS's largest, escaped in JSON. */
	co.max_body = (size_t)POLL_MAX_MESSAGES * 2 * KT_EVENT_BODY_MAX + 65536;
	if (aws_client_new(&co, out, &aerr) < 0) {
		kt_errf(err, errlen, "%s", aerr.message);
		return -EINVAL;
	}
	return 0;
}

int kt_poller_start(const struct kt_poll_opts *o, struct kt_poller **out, char *err, size_t errlen)
{
	struct kt_poller *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc = -ENOMEM;

	*out = NULL;
	if (p == NULL || (p->queue_url = strdup(o->queue_url)) == NULL) {
		kt_errf(err, errlen, "out of memory");
		goto fail;
	}
	p->efd = -1;
	p->backoff_cap_ms = o->backoff_cap_ms > 0 ? o->backoff_cap_ms : POLL_BACKOFF_CAP_MS;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	rc = client_for(o, &p->client, err, errlen);
	if (rc < 0)
		goto fail;
	p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->efd < 0) {
		rc = -errno;
		kt_errf(err, errlen, "eventfd: %s", strerror(-rc));
		goto fail;
	}
	/* The loop reads signals from a signalfd: the thread takes none. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&p->thread, NULL, poll_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0) {
		kt_errf(err, errlen, "cannot start the poller thread: %s", strerror(-rc));
		goto fail;
	}
	p->started = true;
	*out = p;
	return 0;
fail:
	kt_poller_stop(p);
	return rc;
}

int kt_poller_fd(const struct kt_poller *p)
{
	return p->efd;
}

void kt_poller_take(struct kt_poller *p, struct kt_poll_news *out)
{
	pthread_mutex_lock(&p->lock);
	kt_efd_drain(p->efd, "events");
	*out = p->news;
	p->news.hints = NULL;
	p->news.nhints = 0;
	p->news.answered = false;
	p->cap = 0;
	p->posted = false;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void kt_poll_news_free(struct kt_poll_news *n)
{
	for (size_t i = 0; i < n->nhints; i++)
		for (size_t j = 0; j < n->hints[i].nids; j++)
			free(n->hints[i].ids[j]);
	free(n->hints);
	n->hints = NULL;
	n->nhints = 0;
}

void kt_poller_stop(struct kt_poller *p)
{
	if (p == NULL)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		pthread_cond_broadcast(&p->cond);
		pthread_mutex_unlock(&p->lock);
		aws_client_cancel(p->client);
		pthread_join(p->thread, NULL);
	}
	if (p->efd >= 0)
		close(p->efd);
	kt_poll_news_free(&p->news);
	aws_client_free(p->client);
	free(p->queue_url);
	if (p->queue_url != NULL || p->started) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
	}
	free(p);
}
