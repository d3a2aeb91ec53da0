/* libFuzzer target: the rotation-event parser and id matcher
 * (sidecar/events_parse.c). The first byte picks what the rest is: an SQS
 * message body as it comes; an event that this file wraps in an SNS
 * notification first (so that the fuzzer reaches the inner parse without
 * having to learn JSON string escaping); or two ids, split at the first
 * newline, for kt_event_matches() alone. Every result is checked against
 * what events_parse.h promises, and the matcher for symmetry and
 * reflexivity; any breach aborts. */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "events_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct kt_event ev;

static void check_printable(const char *s, size_t cap)
{
	const char *end = memchr(s, '\0', cap);

	if (end == NULL)
		abort();
	for (; s < end; s++) {
		if (*s < 0x20 || *s >= 0x7f)
			abort();
	}
}

/* kt_event_matches() must not depend on which side an id is given. */
static void check_match(const char *a, const char *b)
{
	bool ab = kt_event_matches(a, b);

	if (ab != kt_event_matches(b, a))
		abort();
	if (a[0] != '\0' && !kt_event_matches(a, a))
		abort();
	if (ab && (a[0] == '\0' || b[0] == '\0'))
		abort();
}

static void parse(const char *body, size_t len)
{
	static const char *const conf[] = {
		"prod/db",
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db",
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-Ab12Cd",
		"db-abcdef",
	};
	char why[128];
	int rc;

	memset(&ev, 0x5a, sizeof(ev));
	memset(why, 0x5a, sizeof(why));
	rc = kt_event_parse(body, len, &ev, why, sizeof(why));
	if (rc != KT_EVENT_HINT && rc != KT_EVENT_IGNORED && rc != KT_EVENT_BAD)
		abort();
	check_printable(why, sizeof(why));
	if (why[0] == '\0')
		abort();
	if (memchr(ev.name, '\0', sizeof(ev.name)) == NULL ||
	    memchr(ev.source_region, '\0', sizeof(ev.source_region)) == NULL)
		abort();
	if (ev.n_ids > KT_EVENT_MAX_IDS || (rc == KT_EVENT_HINT) != (ev.n_ids > 0))
		abort();
	for (size_t i = 0; i < ev.n_ids; i++) {
		size_t n;

		check_printable(ev.ids[i], sizeof(ev.ids[i]));
		n = strlen(ev.ids[i]);
		if (n == 0 || n > KT_EVENT_ID_MAX || strchr(ev.ids[i], ' ') != NULL)
			abort();
		for (size_t j = 0; j < i; j++) {
			if (strcmp(ev.ids[i], ev.ids[j]) == 0)
				abort();
		}
		for (size_t j = 0; j < sizeof(conf) / sizeof(conf[0]); j++)
			check_match(ev.ids[i], conf[j]);
	}
}

/* data as the Message of an SNS notification. */
static void parse_in_envelope(const char *data, size_t size)
{
	struct json_object *o = json_object_new_object();
	const char *s;
	size_t n = 0;

	if (o == NULL)
		return;
	json_object_object_add(o, "Type", json_object_new_string("Notification"));
	json_object_object_add(o, "Message", json_object_new_string_len(data, (int)size));
	s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &n);
	if (s != NULL)
		parse(s, n);
	json_object_put(o);
}

/* Two ids split at the first newline, each cut at its first NUL. */
static void match(const char *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t na = nl != NULL ? (size_t)(nl - data) : size;
	char *a = strndup(data, na);
	char *b = strndup(nl != NULL ? nl + 1 : "", nl != NULL ? size - na - 1 : 0);

	if (a == NULL || b == NULL)
		abort();
	check_match(a, b);
	free(a);
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *rest = (const char *)data + 1;

	if (size < 1)
		return 0;
	/* SQS gives at most 256 KiB; a little more reaches the size check. */
	if (size > KT_EVENT_BODY_MAX + 2)
		return 0;
	switch (data[0] % 3) {
	case 0:
		parse(rest, size - 1);
		break;
	case 1:
		parse_in_envelope(rest, size - 1);
		break;
	default:
		match(rest, size - 1);
		break;
	}
	return 0;
}
