/* Rotation events as keyturnd receives them from an SQS queue: which
 * secrets a message says have changed, and whether an id from an event
 * names a configured secret. Pure parsing and matching, no I/O: an event
 * is only ever a hint that makes the daemon look again (DescribeSecret),
 * never a value or a version to trust. */
#ifndef KT_EVENTS_PARSE_H
#define KT_EVENTS_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The most ids kept from one event; further ones are dropped, not an error. */
#define KT_EVENT_MAX_IDS 8
/* The longest id kept (Secrets Manager's limit for a SecretId); a longer
 * one makes the message KT_EVENT_BAD. */
#define KT_EVENT_ID_MAX 2048
/* The longest body read: SQS's own limit for a message. */
#define KT_EVENT_BODY_MAX (256 * 1024)

struct kt_event {
	char source_region[32]; /* detail.awsRegion, else region; "" when none given */
	char name[64];          /* detail.eventName, or the detail-type of a native event */
	time_t time; /* when it happened (time, else detail.eventTime), 0 when not given */
	size_t n_ids;
	char ids[KT_EVENT_MAX_IDS][KT_EVENT_ID_MAX + 1]; /* ARNs or names, each once */
};

enum kt_event_result { KT_EVENT_HINT = 0, KT_EVENT_IGNORED = 1, KT_EVENT_BAD = -1 };

/* Reads one SQS message body (untrusted, len bytes, no NUL needed) into out:
 * an EventBridge event from source aws.secretsmanager, raw or as the
 * Message of an SNS notification (one envelope only).
 *
 * KT_EVENT_HINT: a change of one or more secrets (an API call that may
 *   change one: Put*, Update*, Rotate*, Restore*, Delete*, Cancel*,
 *   Replicate*, Remove*, Stop*, Create*; any "AWS Service Event via
 *   CloudTrail", such as RotationSucceeded; a native "Secret Label
 *   Updated"), with at least one id in out->ids.
 * KT_EVENT_IGNORED: well formed but not for keyturnd: another source or
 *   event type, a read-only or failed call, no id, an SNS subscription
 *   message. out->name and out->source_region may be filled.
 * KT_EVENT_BAD: not something keyturnd can read: empty, longer than
 *   KT_EVENT_BODY_MAX, not JSON or not an object, nested too deep, a field
 *   of the wrong type, an id longer than KT_EVENT_ID_MAX or holding a byte
 *   no secret id has (control, space, non-ASCII), an envelope inside an
 *   envelope.
 *
 * out is always left consistent (n_ids <= KT_EVENT_MAX_IDS, every string
 * terminated); n_ids is 0 unless the result is KT_EVENT_HINT. why
 * (whylen bytes, may be NULL) always says what was found or what is wrong,
 * in printable ASCII; it quotes at most 64 bytes of the message, escaped. */
int kt_event_parse(const char *body, size_t len, struct kt_event *out, char *why, size_t whylen);

/* Whether an id from an event names the configured secret conf_id (an ARN,
 * a partial ARN or a name, as keyturnd.conf's id =). A secret ARN is
 * arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-SUFFIX, the
 * suffix being six random letters or digits (db-Ab12Cd); a partial ARN
 * leaves "-SUFFIX" out. True when the two are equal; when both are secret
 * ARNs with the same text up to "secret:" and one's NAME is the other's
 * plus "-SUFFIX"; when one is a secret ARN and the other a name equal to the
 * ARN's NAME, taken either whole (a partial ARN) or without its "-SUFFIX"
 * (a full one).
 *
 * An ARN does not say whether it is full or partial: ...:secret:db-Ab12Cd
 * is the full ARN of "db" or the partial one of "db-Ab12Cd". Both readings
 * are taken, so a name that itself ends in "-" and six letters or digits
 * may match a second secret's ARN. AWS advises against such names; the
 * cost of a false match is one DescribeSecret, that of a missed one a
 * secret left stale until its next refresh. Names hold no region: the
 * caller compares the event's source_region with the secret's region. */
bool kt_event_matches(const char *event_id, const char *conf_id);

#endif
