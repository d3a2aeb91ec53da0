/* What wrong passwords may cost in AWS calls. After a failed password the
 * user may already type a new one keyturnd has not seen, so a check with AWS
 * is worth making; but guesses must not turn into AWS calls. Two limits:
 *
 * - Per secret, a back-off: after a call a verify caused, the next one waits
 *   `interval`, which starts at refresh_min_interval and doubles with every
 *   call, up to check_interval. A match, a rotation seen, or check_interval
 *   without a wrong password for that secret start it over.
 * - Daemon-wide, a token bucket that every account shares: 3 tokens at start
 *   and at most, one more earned per 200 wrong passwords answered and one per
 *   check_interval of time. Every call a verify causes (a re-check after a
 *   failed password, or the first fetch of a login's secret) takes one.
 *
 * So W wrong passwords over T seconds cost at most 3 + W/200 + T/check_interval
 * AWS calls however they are spread over time and accounts, and never more
 * than one per secret per refresh_min_interval. A failed password whose
 * check is not allowed yet but due within DEFER_MAX_MS waits for it (parked,
 * made by the once-a-second tick); further away, or with no token left, it
 * is answered at once from the value in hand. Times are CLOCK_MONOTONIC. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "engine.h"
#include "common/log.h"
#include "login.h"
#include "login_int.h"
#include "common/secmem.h"

#define BURST 3
#define FAILURES_PER_TOKEN 200
#define TOKEN 1000000LL /* credit units per call */
/* The PAM module waits 5 s by default; the tick makes a due call up to 1 s
 * late, and AWS needs a moment to answer. */
#define DEFER_MAX_MS 3000
/* [login:*] secrets known not to exist, remembered at most. */
#define ABSENT_MAX 1024

struct recheck {
	uint64_t entry_id;
	int64_t interval_ms;  /* the wait after the next call */
	int64_t last_call_ms; /* the last call a verify caused (0: none) */
	int64_t next_ms;      /* no call before then */
	int64_t last_fail_ms; /* the last wrong password for it (0: none) */
	bool deferred;        /* a call is promised at next_ms; its token is taken */
};

struct absent {
	char *id;
	int64_t until_ms;
};

struct kt_login_budget {
	int64_t credit;       /* TOKEN units */
	int64_t credit_at_ms; /* when time last added to it */
	bool empty_logged;
	struct recheck *r;
	size_t n, cap;
	struct absent absent[ABSENT_MAX];
};

#ifdef KT_UNIT_TEST
/* tests/unit/test_budget.c includes this file and sets the clock. */
static int64_t kt_test_mono_ms;

static int64_t mono_ms(void)
{
	return kt_test_mono_ms;
}
#else
static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
#endif

int kt_login_budget_new(struct kt_login_budget **out)
{
	struct kt_login_budget *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	b->credit = BURST * TOKEN;
	b->credit_at_ms = mono_ms();
	*out = b;
	return 0;
}

void kt_login_budget_free(struct kt_login_budget *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < ABSENT_MAX; i++)
		free(b->absent[i].id);
	free(b->r);
	free(b);
}

static int64_t base_ms(const struct kt_login *lg)
{
	return (int64_t)lg->cfg->refresh_min_interval * 1000;
}

static int64_t cap_ms(const struct kt_login *lg)
{
	int64_t c = (int64_t)lg->cfg->check_interval * 1000;

	return c > base_ms(lg) ? c : base_ms(lg);
}

static void add_credit(struct kt_login_budget *b, int64_t units)
{
	b->credit += units;
	if (b->credit > BURST * TOKEN)
		b->credit = BURST * TOKEN;
	if (b->credit >= TOKEN)
		b->empty_logged = false;
}

/* One token per check_interval of time. */
static void refill(const struct kt_login *lg, struct kt_login_budget *b, int64_t now)
{
	if (now > b->credit_at_ms)
		add_credit(b, (now - b->credit_at_ms) * (TOKEN / 1000) / lg->cfg->check_interval);
	b->credit_at_ms = now;
}

static struct recheck *rec_of(struct kt_login_budget *b, uint64_t entry_id, bool create)
{
	struct recheck *grown;

	for (size_t i = 0; i < b->n; i++) {
		if (b->r[i].entry_id == entry_id)
			return &b->r[i];
	}
	if (!create)
		return NULL;
	if (b->n == b->cap) {
		size_t cap = b->cap > 0 ? b->cap * 2 : 16;

		grown = realloc(b->r, cap * sizeof(*grown));
		if (grown == NULL)
			return NULL;
		b->r = grown;
		b->cap = cap;
	}
	b->r[b->n] = (struct recheck){ .entry_id = entry_id };
	return &b->r[b->n++];
}

/* Keeps the interval within the settings in effect (a reload may change
 * them), and starts it over after check_interval without a failure. */
static void settle(const struct kt_login *lg, struct recheck *r, int64_t now)
{
	if (r->interval_ms < base_ms(lg) ||
	    (r->last_fail_ms != 0 && now - r->last_fail_ms >= cap_ms(lg)))
		r->interval_ms = base_ms(lg);
	if (r->interval_ms > cap_ms(lg))
		r->interval_ms = cap_ms(lg);
}

/* A call is made now: the next one for this secret waits a longer time. */
static void called(const struct kt_login *lg, struct recheck *r, int64_t now)
{
	r->last_call_ms = now;
	r->next_ms = now + r->interval_ms;
	r->interval_ms *= 2;
	if (r->interval_ms > cap_ms(lg))
		r->interval_ms = cap_ms(lg);
}

static void note_empty(struct kt_login_budget *b)
{
	if (b->empty_logged)
		return;
	b->empty_logged = true;
	log_warn("login: AWS calls caused by failed passwords are over budget (%d, and one more "
		 "per %d wrong passwords or per check_interval); failed passwords are answered "
		 "from the values in hand until then",
		 BURST, FAILURES_PER_TOKEN);
}

enum kt_recheck_plan kt_login_budget_plan(struct kt_login *lg, struct kt_entry *e, bool fetch,
					  const char **why)
{
	struct kt_login_budget *b = lg->budget;
	int64_t now = mono_ms();
	struct recheck *r;
	const char *dummy;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	refill(lg, b, now);
	r = rec_of(b, e->id, true);
	if (r == NULL) {
		*why = "out of memory";
		return KT_RECHECK_NO;
	}
	settle(lg, r, now);
	if (kt_engine_throttled_until(lg->eng) > kt_sched_now()) {
		*why = "AWS is throttling keyturnd";
		return KT_RECHECK_NO;
	}
	if (!fetch && r->deferred)
		return KT_RECHECK_LATER;
	if (b->credit < TOKEN) {
		note_empty(b);
		*why = "AWS calls caused by failed passwords are over budget";
		return KT_RECHECK_NO;
	}
	if (now >= r->next_ms) {
		b->credit -= TOKEN;
		called(lg, r, now);
		return KT_RECHECK_NOW;
	}
	if (!fetch && r->next_ms - now <= DEFER_MAX_MS) {
		b->credit -= TOKEN;
		r->deferred = true;
		log_info("login: %s: a password did not match; checking with AWS in %lld ms, "
			 "failed passwords wait for it",
			 e->name, (long long)(r->next_ms - now));
		return KT_RECHECK_LATER;
	}
	*why = "a verify checked it with AWS a moment ago";
	log_debug("login: %s: no check with AWS for %lld ms (back-off)", e->name,
		  (long long)(r->next_ms - now));
	return KT_RECHECK_NO;
}

bool kt_login_budget_deferred(struct kt_login *lg, const struct kt_entry *e)
{
	const struct recheck *r = rec_of(lg->budget, e->id, false);

	return r != NULL && r->deferred;
}

bool kt_login_budget_can_pay(struct kt_login *lg)
{
	struct kt_login_budget *b = lg->budget;

	refill(lg, b, mono_ms());
	if (b->credit < TOKEN)
		note_empty(b);
	return b->credit >= TOKEN;
}

void kt_login_budget_failed(struct kt_login *lg, const struct kt_entry *e)
{
	struct kt_login_budget *b = lg->budget;
	struct recheck *r = e != NULL ? rec_of(b, e->id, true) : NULL;

	add_credit(b, TOKEN / FAILURES_PER_TOKEN);
	if (r != NULL)
		r->last_fail_ms = mono_ms();
}

void kt_login_budget_reset(struct kt_login *lg, const struct kt_entry *e)
{
	struct recheck *r = rec_of(lg->budget, e->id, false);

	if (r == NULL)
		return;
	r->interval_ms = base_ms(lg);
	if (r->last_call_ms != 0 && r->next_ms > r->last_call_ms + base_ms(lg))
		r->next_ms = r->last_call_ms + base_ms(lg);
}

void kt_login_absent_add(struct kt_login *lg, const char *id)
{
	struct kt_login_budget *b = lg->budget;
	struct absent *slot = &b->absent[0];
	int64_t now = mono_ms();
	char *copy = kt_strdup(id);

	if (copy == NULL)
		return;
	for (size_t i = 0; i < ABSENT_MAX; i++) {
		struct absent *a = &b->absent[i];

		if (a->id != NULL && strcmp(a->id, id) == 0) {
			slot = a;
			break;
		}
		if (a->until_ms < slot->until_ms)
			slot = a;
	}
	free(slot->id);
	slot->id = copy;
	slot->until_ms = now + (int64_t)lg->cfg->check_interval * 1000;
}

bool kt_login_absent(struct kt_login *lg, const char *id)
{
	struct kt_login_budget *b = lg->budget;
	int64_t now = mono_ms();

	for (size_t i = 0; i < ABSENT_MAX; i++) {
		struct absent *a = &b->absent[i];

		if (a->id == NULL || strcmp(a->id, id) != 0)
			continue;
		if (now < a->until_ms)
			return true;
		free(a->id);
		a->id = NULL;
		a->until_ms = 0;
	}
	return false;
}

void kt_login_budget_tick(struct kt_login *lg)
{
	struct kt_login_budget *b = lg->budget;
	int64_t now = mono_ms();

	refill(lg, b, now);
	for (size_t i = b->n; i-- > 0;) {
		struct recheck *r = &b->r[i];
		struct kt_entry *e = kt_cache_by_id(lg->cache, r->entry_id);

		if (e == NULL) {
			if (r->deferred)
				add_credit(b, TOKEN);
			b->r[i] = b->r[--b->n];
			continue;
		}
		if (!r->deferred || now < r->next_ms)
			continue;
		r->deferred = false;
		/* Nobody waits any more (they hung up), or a job for the secret
		 * is running already and its end answers them: no call. */
		if (!kt_engine_has_waiter(lg->eng, e->id) || e->in_flight) {
			add_credit(b, TOKEN);
			continue;
		}
		if (kt_engine_throttled_until(lg->eng) > kt_sched_now() || e->gone ||
		    kt_engine_stopping(lg->eng)) {
			add_credit(b, TOKEN);
			/* r may move: resuming can add records. */
			kt_engine_resume(lg->eng, e);
			continue;
		}
		called(lg, r, now);
		log_info("login: %s: checking with AWS for the failed passwords that waited",
			 e->name);
		kt_engine_check(lg->eng, e, KT_WHY_LOGIN);
	}
}
