/* What events_parse.c and events_match.c share: a secret ARN split into
 * its parts. Not a public face (events_parse.h is). */
#ifndef KT_EVENTS_INT_H
#define KT_EVENTS_INT_H

#include <stdbool.h>
#include <stddef.h>

/* A secret ARN split: the text up to and including "secret:", and NAME. */
struct kt_event_arn {
	size_t prefix;
	const char *name;
	size_t name_len;
};

/* Splits arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME with none
 * of its parts empty; false for anything else. */
bool kt_event_split_arn(const char *s, struct kt_event_arn *a);

static inline bool kt_event_is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

#endif
