/* AWS "standard" retry mode: max attempts, full-jitter exponential backoff and
 * a client-wide retry quota, so that a struggling service is not hammered. */
#ifndef KT_RETRY_H
#define KT_RETRY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "awserr.h"

#define AWS_RETRY_DEFAULT_ATTEMPTS 3
#define AWS_RETRY_BASE_MS 1000
#define AWS_RETRY_CAP_MS 20000
#define AWS_RETRY_QUOTA 500
#define AWS_RETRY_COST 5
#define AWS_RETRY_TIMEOUT_COST 10
#define AWS_RETRY_SUCCESS_REFUND 1

struct aws_retry {
	pthread_mutex_t lock;
	int max_attempts;
	unsigned quota;
	long base_ms; /* tests shrink these to keep suites fast */
	long cap_ms;
};

/* max_attempts <= 0 takes AWS_MAX_ATTEMPTS from the environment, else 3.
 * Returns 0 or -EINVAL when AWS_MAX_ATTEMPTS is not a whole number >= 1. */
int aws_retry_init(struct aws_retry *r, int max_attempts);
void aws_retry_destroy(struct aws_retry *r);

/* Whether an error of this class is worth another attempt at all. */
bool aws_retry_is_retryable(enum aws_errc code);

/* Called after a failed attempt number `attempt` (1-based). Decides whether to
 * try again: the code must be retryable, attempts must remain, and the quota
 * must pay for it (taking 5, or 10 for a timeout). On yes, *delay_ms is the
 * full-jitter backoff min(cap, base * 2^(attempt-1)) * rnd, rnd in [0,1). */
bool aws_retry_should_retry(struct aws_retry *r, enum aws_errc code, int attempt, long *delay_ms,
			    uint64_t *cost_out);

/* Called after a successful attempt: refunds what the retry cost, or 1. */
void aws_retry_on_success(struct aws_retry *r, uint64_t cost);

/* The backoff for a given attempt and random fraction in [0,1), for tests. */
long aws_retry_backoff_ms(const struct aws_retry *r, int attempt, double rnd);

#endif
