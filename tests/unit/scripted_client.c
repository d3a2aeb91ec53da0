/* The scripted aws_client_call (see scripted_client.h). */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/kt_json.h"
#include "aws/client.h"
#include "scripted_client.h"

char *requests[SCRIPT_MAX];
char *targets[SCRIPT_MAX];
size_t nrequests;
static const char *answers[SCRIPT_MAX];
static size_t nanswers, next_answer;

int aws_client_call(struct aws_client *c, const char *target, const char *json, size_t json_len,
		    struct json_object **resp, struct aws_error *err, struct aws_call_stats *stats)
{
	const char *a;

	(void)c;
	(void)stats;
	assert_true(nrequests < SCRIPT_MAX);
	requests[nrequests] = strndup(json, json_len);
	targets[nrequests++] = strdup(target);
	assert_true(next_answer < nanswers);
	a = answers[next_answer++];
	if (strncmp(a, "ERR:", 4) == 0) {
		aws_error_parse(400, a + 4, strlen(a + 4), NULL, err);
		return -EIO;
	}
	*resp = kt_json_parse(a, strlen(a));
	assert_non_null(*resp);
	return 0;
}

void script(size_t n, ...)
{
	va_list ap;

	assert_true(n <= SCRIPT_MAX);
	va_start(ap, n);
	for (size_t i = 0; i < n; i++)
		answers[i] = va_arg(ap, const char *);
	va_end(ap);
	nanswers = n;
	next_answer = 0;
}

int script_reset(void **state)
{
	(void)state;
	for (size_t i = 0; i < nrequests; i++) {
		free(requests[i]);
		free(targets[i]);
	}
	nrequests = 0;
	nanswers = next_answer = 0;
	return 0;
}
