/* AWS "standard" retry mode: which errors earn another attempt, how long to
 * wait before it (full-jitter exponential backoff), and the client-wide retry
 * quota that stops a fleet of clients from hammering a service in trouble. */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "retry.h"

/* Reads AWS_MAX_ATTEMPTS. An unset or empty variable means "not configured";
 * anything else must be a plain decimal number >= 1 that fits an int. A sign,
 * leading blanks or trailing text are refused rather than guessed at, so that
 * a typo is reported instead of silently turning retries off. */
static int retry_env_attempts(int *out)
{
	const char *s = getenv("AWS_MAX_ATTEMPTS");
	char *end = NULL;
	long v;

	*out = AWS_RETRY_DEFAULT_ATTEMPTS;
	if (s == NULL || *s == '\0')
		return 0;
	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > INT_MAX)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

int aws_retry_init(struct aws_retry *r, int max_attempts)
{
	int attempts = max_attempts;
	int rc = 0;

	if (attempts <= 0) {
		rc = retry_env_attempts(&attempts);
		if (rc < 0)
			goto out;
	}
	rc = -pthread_mutex_init(&r->lock, NULL);
	if (rc < 0)
		goto out;
	r->max_attempts = attempts;
	r->quota = AWS_RETRY_QUOTA;
	r->base_ms = AWS_RETRY_BASE_MS;
	r->cap_ms = AWS_RETRY_CAP_MS;
out:
	return rc;
}

void aws_retry_destroy(struct aws_retry *r)
{
	pthread_mutex_destroy(&r->lock);
}

/* Clock skew is retryable only so that the caller gets a chance to sign again
 * with the corrected clock; the other codes are the transient ones. Errors
 * that would fail the same way again (not found, denied, bad request, an
 * answer we cannot parse) are never retried. */
bool aws_retry_is_retryable(enum aws_errc code)
{
	switch (code) {
	case AWS_ERR_THROTTLED:
	case AWS_ERR_SERVER:
	case AWS_ERR_TRANSPORT:
	case AWS_ERR_TIMEOUT:
	case AWS_ERR_CLOCK_SKEW:
		return true;
	default:
		return false;
	}
}

/* splitmix64: a fallback generator for the rare kernel without getrandom().
 * Its state is per thread so that no lock is needed; jitter only has to
 * spread clients apart, it does not have to be unpredictable. */
static uint64_t retry_fallback_u64(void)
{
	static _Thread_local uint64_t state;
	struct timespec ts;
	uint64_t z;

	if (state == 0) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		state = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^
			((uint64_t)getpid() << 16) ^ (uint64_t)(uintptr_t)&ts;
	}
	state += 0x9e3779b97f4a7c15ULL;
	z = state;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* A uniform fraction in [0,1). getrandom() is thread-safe and needs no seed;
 * the top 53 bits fill a double's mantissa exactly, so 1.0 cannot come out. */
static double retry_random_fraction(void)
{
	uint64_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
		v = retry_fallback_u64();
	return (double)(v >> 11) * (1.0 / 9007199254740992.0);
}

long aws_retry_backoff_ms(const struct aws_retry *r, int attempt, double rnd)
{
	long limit, delay;
	int i;

	if (r->base_ms <= 0 || r->cap_ms <= 0)
		return 0;
	if (attempt < 1)
		attempt = 1;
	/* Doubling step by step instead of shifting keeps base * 2^(attempt-1)
	 * from overflowing for a large attempt number. */
	limit = r->base_ms < r->cap_ms ? r->base_ms : r->cap_ms;
	for (i = 1; i < attempt && limit < r->cap_ms; i++)
		limit = limit > r->cap_ms / 2 ? r->cap_ms : limit * 2;
	/* "!(rnd >= 0)" also catches NaN. */
	if (!(rnd >= 0.0))
		rnd = 0.0;
	if (rnd >= 1.0)
		return limit - 1;
	delay = (long)((double)limit * rnd);
	/* Rounding of the product must not reach the limit itself. */
	if (delay >= limit)
		delay = limit - 1;
	return delay;
}

bool aws_retry_should_retry(struct aws_retry *r, enum aws_errc code, int attempt, long *delay_ms,
			    uint64_t *cost_out)
{
	unsigned cost = code == AWS_ERR_TIMEOUT ? AWS_RETRY_TIMEOUT_COST : AWS_RETRY_COST;
	bool yes = false;

	if (!aws_retry_is_retryable(code) || attempt < 1 || attempt >= r->max_attempts)
		goto out;
	/* The quota is shared by every thread using the client; once it runs
	 * dry, failures are returned at once until successes refill it. */
	pthread_mutex_lock(&r->lock);
	if (r->quota >= cost) {
		r->quota -= cost;
		yes = true;
	}
	pthread_mutex_unlock(&r->lock);
	if (!yes)
		goto out;
	if (cost_out != NULL)
		*cost_out = cost;
	if (delay_ms != NULL)
		*delay_ms = aws_retry_backoff_ms(r, attempt, retry_random_fraction());
out:
	return yes;
}

/* A success pays back what its last retry took, so a service that recovers
 * restores the quota quickly; a success at the first try adds a little. */
void aws_retry_on_success(struct aws_retry *r, uint64_t cost)
{
	uint64_t refund = cost != 0 ? cost : AWS_RETRY_SUCCESS_REFUND;

	pthread_mutex_lock(&r->lock);
	if (r->quota >= AWS_RETRY_QUOTA || refund >= AWS_RETRY_QUOTA - r->quota)
		r->quota = AWS_RETRY_QUOTA;
	else
		r->quota += (unsigned)refund;
	pthread_mutex_unlock(&r->lock);
}
