/* libFuzzer target: AWS rotation schedules (common/awssched.c), which read
 * keyturnd.conf's schedule and window and whatever a user gives keyturnctl
 * schedule. The input is an expression; when it parses, windows are
 * computed from a few starting points (the first bytes pick one) and
 * checked against what awssched.h promises: strictly later, on the hour,
 * at least four hours apart, cron's before 2200; every result of the window
 * functions is sane. Any breach aborts. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/awssched.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define YEAR_END ((time_t)7258118400LL) /* 2200-01-01T00:00:00Z */

static void check_windows(const struct kt_awssched *s, time_t after)
{
	time_t prev = after, t;

	for (int i = 0; i < 16; i++) {
		t = kt_awssched_next(s, prev);
		if (t == 0)
			return;
		if (t <= prev || (!s->is_rate && (t >= YEAR_END || t % 3600 != 0)))
			abort();
		if (i > 0 && t - prev < 4 * 3600)
			abort();
		if (kt_awssched_default_window(s, t) <= 0 ||
		    kt_awssched_default_window(s, t) > 86400)
			abort();
		prev = t;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const time_t starts[] = { 0, 951782400 /* 2000-02-29 */, 1796428800, 4102444799,
					 7258117000 };
	char expr[KT_AWSSCHED_MAX + 64], err[256];
	struct kt_awssched s;
	long secs;

	if (size == 0 || size >= sizeof(expr))
		return 0;
	memcpy(expr, data + 1, size - 1);
	expr[size - 1] = '\0';
	memset(err, 'x', sizeof(err));
	if (kt_awssched_parse_duration(expr, &secs, err, sizeof(err)) == 0) {
		if (secs < 3600 || secs > 24 * 3600 || secs % 3600 != 0)
			abort();
	} else if (memchr(err, '\0', sizeof(err)) == NULL) {
		abort();
	}
	memset(err, 'x', sizeof(err));
	if (kt_awssched_parse(expr, &s, err, sizeof(err)) < 0) {
		if (memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0')
			abort();
		return 0;
	}
	check_windows(&s, starts[data[0] % (sizeof(starts) / sizeof(starts[0]))] +
				  (time_t)(data[0] / 5) * 7919);
	for (long w = 3600; w <= 24 * 3600; w += 3600)
		(void)kt_awssched_check_window(&s, w, err, sizeof(err));
	return 0;
}
