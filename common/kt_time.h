/* Monotonic time for timeouts and figures: now in milliseconds, and the
 * absolute CLOCK_MONOTONIC time ms from now (for a condition variable
 * set to that clock). Never the wall clock, which steps. */
#ifndef KT_TIME_H
#define KT_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t kt_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline struct timespec kt_mono_after_ms(long ms)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

#endif
