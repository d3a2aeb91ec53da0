/* Whether an id from an event names a configured secret: ARNs, partial
 * ARNs and names (see kt_event_matches in events_parse.h). */
#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "events_int.h"
#include "events_parse.h"

bool kt_event_split_arn(const char *s, struct kt_event_arn *a)
{
	const char *field[6], *p = s, *colon;
	size_t flen[6];

	for (size_t i = 0; i < 6; i++) {
		colon = strchr(p, ':');
		if (colon == NULL || colon == p)
			return false;
		field[i] = p;
		flen[i] = (size_t)(colon - p);
		p = colon + 1;
	}
	if (flen[0] != 3 || memcmp(field[0], "arn", 3) != 0 || flen[2] != 14 ||
	    memcmp(field[2], "secretsmanager", 14) != 0 || flen[5] != 6 ||
	    memcmp(field[5], "secret", 6) != 0 || *p == '\0')
		return false;
	a->prefix = (size_t)(p - s);
	a->name = p;
	a->name_len = strlen(p);
	return true;
}

/* Whether full (n bytes) is base (m bytes) followed by "-" and six letters
 * or digits: the suffix Secrets Manager adds to a secret's ARN. */
static bool ev_with_suffix(const char *full, size_t n, const char *base, size_t m)
{
	if (n != m + 7 || memcmp(full, base, m) != 0 || full[m] != '-')
		return false;
	for (size_t i = m + 1; i < n; i++) {
		if (!kt_event_is_alnum(full[i]))
			return false;
	}
	return true;
}

/* A secret ARN against a name (which never holds ':'): the ARN's NAME
 * read as a partial ARN's (whole) or as a full one's (less the suffix). */
static bool ev_arn_names(const struct kt_event_arn *a, const char *name)
{
	size_t m = strlen(name);

	if (strchr(name, ':') != NULL)
		return false;
	return (a->name_len == m && memcmp(a->name, name, m) == 0) ||
	       ev_with_suffix(a->name, a->name_len, name, m);
}

bool kt_event_matches(const char *event_id, const char *conf_id)
{
	struct kt_event_arn a, b;
	bool a_arn, b_arn;

	if (event_id == NULL || conf_id == NULL || event_id[0] == '\0' || conf_id[0] == '\0')
		return false;
	if (strcmp(event_id, conf_id) == 0)
		return true;
	a_arn = kt_event_split_arn(event_id, &a);
	b_arn = kt_event_split_arn(conf_id, &b);
	if (a_arn && b_arn) {
		/* Same partition, region, account; one full, the other partial.
		 * Two full ARNs that differ are two secrets: a secret deleted
		 * and made again under its name gets a new suffix. */
		return a.prefix == b.prefix && memcmp(event_id, conf_id, a.prefix) == 0 &&
		       (ev_with_suffix(a.name, a.name_len, b.name, b.name_len) ||
			ev_with_suffix(b.name, b.name_len, a.name, a.name_len));
	}
	if (a_arn)
		return ev_arn_names(&a, conf_id);
	if (b_arn)
		return ev_arn_names(&b, event_id);
	return false;
}
