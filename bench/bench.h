/* What the load generators share (bench/loadgen.c, bench/http_load.c):
 * the monotonic clock, number parsing, and the latency histogram:
 * log-linear, exact below HIST_SUB ns, then HIST_SUB/2 buckets per power of
 * two (under 1.6% error), bounded memory however long the run. */
#ifndef KT_BENCH_BENCH_H
#define KT_BENCH_BENCH_H

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

/* The longest run a generator takes, in seconds. */
#define BENCH_MAX_SECONDS 3600.0

static inline uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static inline int parse_seconds(const char *s, double *out)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0) || v > BENCH_MAX_SECONDS)
		return -EINVAL;
	*out = v;
	return 0;
}

#define HIST_SUB 128
#define HIST_HALF (HIST_SUB / 2)
#define HIST_BUCKETS (HIST_SUB + 58 * HIST_HALF)

struct hist {
	uint64_t count[HIST_BUCKETS];
	uint64_t total;
	uint64_t min;
	uint64_t max;
};

static inline size_t hist_index(uint64_t v)
{
	unsigned shift;

	if (v < HIST_SUB)
		return (size_t)v;
	shift = (unsigned)(63 - __builtin_clzll(v)) - 6;
	if (shift > 58)
		return HIST_BUCKETS - 1;
	return HIST_SUB + (shift - 1) * HIST_HALF + (size_t)((v >> shift) - HIST_HALF);
}

/* The middle of bucket i, in ns. */
static inline double hist_value(size_t i)
{
	unsigned shift;
	uint64_t m;

	if (i < HIST_SUB)
		return (double)i;
	shift = (unsigned)((i - HIST_SUB) / HIST_HALF) + 1;
	m = (uint64_t)((i - HIST_SUB) % HIST_HALF) + HIST_HALF;
	return (double)(m << shift) + (double)(1ull << shift) / 2.0;
}

static inline void hist_add(struct hist *h, uint64_t v)
{
	h->count[hist_index(v)]++;
	if (h->total == 0 || v < h->min)
		h->min = v;
	if (v > h->max)
		h->max = v;
	h->total++;
}

static inline void hist_merge(struct hist *into, const struct hist *h)
{
	if (h->total == 0)
		return;
	for (size_t i = 0; i < HIST_BUCKETS; i++)
		into->count[i] += h->count[i];
	if (into->total == 0 || h->min < into->min)
		into->min = h->min;
	if (h->max > into->max)
		into->max = h->max;
	into->total += h->total;
}

/* The q-quantile (0 < q <= 1) in ns, clamped to what was seen. */
static inline double hist_quantile(const struct hist *h, double q)
{
	uint64_t rank, seen = 0;
	double v;

	if (h->total == 0)
		return 0.0;
	rank = (uint64_t)ceil(q * (double)h->total);
	if (rank == 0)
		rank = 1;
	for (size_t i = 0; i < HIST_BUCKETS; i++) {
		seen += h->count[i];
		if (seen >= rank) {
			v = hist_value(i);
			if (v < (double)h->min)
				v = (double)h->min;
			if (v > (double)h->max)
				v = (double)h->max;
			return v;
		}
	}
	return (double)h->max;
}

#endif
