/* SQS over the AWS JSON 1.0 protocol: ReceiveMessage and DeleteMessageBatch
 * for keyturnd's rotation events (sqs_url.c finds a queue's endpoint). An
 * answer comes from outside: every field is checked before anything is kept,
 * and a message body is never put into an error or a log line. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "common/kt_json.h"
#include "common/secmem.h"
#include "sqs.h"

/* Room for a queue URL in a message: kt_json_printable() cuts it to fit. */
#define SQS_WHERE_MAX 200

/* Puts "OP QUEUE_URL: " in front of err's message, so that a log line names
 * the queue that failed and not only the endpoint. */
static void sqs_error_context(struct aws_error *err, const char *op, const char *queue_url)
{
	char msg[sizeof(err->message)], where[SQS_WHERE_MAX];
	size_t n, m;
	int w;

	memcpy(msg, err->message, sizeof(msg));
	msg[sizeof(msg) - 1] = '\0';
	kt_json_printable(queue_url, where, sizeof(where));
	w = snprintf(err->message, sizeof(err->message), "%s %s: ", op, where);
	if (w < 0 || (size_t)w >= sizeof(err->message))
		return;
	n = (size_t)w;
	m = strnlen(msg, sizeof(err->message) - n - 1);
	memcpy(err->message + n, msg, m);
	err->message[n + m] = '\0';
}

/* SQS names some errors its own way (the JSON protocol's __type, or the
 * older query names): these are mapped to the codes keyturn acts on, so a
 * missing queue is not_found rather than "other". */
static void sqs_classify(struct aws_error *err)
{
	static const struct {
		const char *type;
		enum aws_errc code;
	} map[] = {
		{ "QueueDoesNotExist", AWS_ERR_NOT_FOUND },
		{ "AWS.SimpleQueueService.NonExistentQueue", AWS_ERR_NOT_FOUND },
		{ "QueueDeletedRecently", AWS_ERR_NOT_FOUND },
		{ "AWS.SimpleQueueService.QueueDeletedRecently", AWS_ERR_NOT_FOUND },
		{ "InvalidAddress", AWS_ERR_INVALID_REQUEST },
		{ "InvalidSecurity", AWS_ERR_ACCESS_DENIED },
		{ "KmsAccessDenied", AWS_ERR_ACCESS_DENIED },
		{ "RequestThrottled", AWS_ERR_THROTTLED },
		{ "KmsThrottled", AWS_ERR_THROTTLED },
		{ "OverLimit", AWS_ERR_LIMIT },
	};

	if (err->code != AWS_ERR_OTHER)
		return;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(err->type, map[i].type) == 0) {
			err->code = map[i].code;
			return;
		}
	}
}

/* Sends req (consumed) to AmazonSQS.<op> and returns the answer in *resp. */
static int sqs_call(struct aws_client *c, const char *op, const char *queue_url,
		    struct json_object *req, struct json_object **resp, struct aws_error *err)
{
	char target[64];
	int rc;

	snprintf(target, sizeof(target), "AmazonSQS.%s", op);
	rc = aws_client_call_obj(c, target, req, resp, err);
	if (rc < 0) {
		sqs_classify(err);
		sqs_error_context(err, op, queue_url);
	}
	return rc;
}

/* Sets err for an answer that could not be taken: out of memory, or one
 * that is not what the API documents (why says how). */
static int sqs_answer_error(int rc, struct aws_error *err, const char *op, const char *queue_url,
			    const char *why)
{
	char where[SQS_WHERE_MAX];

	if (rc == -ENOMEM) {
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "out of memory");
		return rc;
	}
	kt_json_printable(queue_url, where, sizeof(where));
	aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer", "%s %s: the answer's %s", op,
		      where, why);
	return -EBADMSG;
}

/* A queue URL given by the caller: present and of a sane length. Its form
 * is the service's to judge (sqs_endpoint_for_queue checks it up front). */
static int check_queue_arg(const char *op, const char *queue_url, struct aws_error *err)
{
	if (queue_url != NULL && queue_url[0] != '\0' && strlen(queue_url) <= SQS_MAX_QUEUE_URL)
		return 0;
	aws_error_set(err, AWS_ERR_INVALID_REQUEST, "BadQueueUrl", "%s: the queue URL is %s", op,
		      queue_url == NULL || queue_url[0] == '\0' ? "empty" : "too long");
	return -EINVAL;
}

static bool add_str(struct json_object *o, const char *key, const char *v)
{
	struct json_object *s = json_object_new_string(v);

	if (s == NULL || json_object_object_add(o, key, s) < 0) {
		json_object_put(s);
		return false;
	}
	return true;
}

static bool add_int(struct json_object *o, const char *key, int v)
{
	struct json_object *i = json_object_new_int(v);

	if (i == NULL || json_object_object_add(o, key, i) < 0) {
		json_object_put(i);
		return false;
	}
	return true;
}

/* Copies an identifier the service hands out (MessageId, ReceiptHandle):
 * a string of 1..max printable ASCII characters, no space. These go back
 * into requests and may appear in logs, so nothing else is accepted. */
static int take_token(struct json_object *o, const char *key, size_t max, char **out)
{
	struct json_object *v;
	const char *s;
	size_t len;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return -EBADMSG;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 0 || len > max)
		return -EBADMSG;
	for (size_t i = 0; i < len; i++) {
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return -EBADMSG;
	}
	*out = kt_strdup(s);
	return *out != NULL ? 0 : -ENOMEM;
}

/* The MD5 of data as lower-case hex; false when this OpenSSL cannot compute
 * one (a FIPS build refuses MD5), and then the check is left out. */
static bool md5_hex(const char *data, size_t len, char out[33])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL) != 1 || mdlen != 16)
		return false;
	for (unsigned int i = 0; i < 16; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0xf];
	}
	out[32] = '\0';
	return true;
}

/* The Body of one message: a string without NUL (SQS allows none) of at
 * most SQS_MAX_BODY bytes, matching MD5OfBody when the answer has one, as
 * the AWS SDKs check it. */
static int take_body(struct json_object *o, struct sqs_message *m, const char **why)
{
	struct json_object *v, *md5;
	const char *s;
	char mine[33];
	size_t len;

	if (!json_object_object_get_ex(o, "Body", &v) ||
	    !json_object_is_type(v, json_type_string)) {
		*why = "Body is missing or not a string";
		return -EBADMSG;
	}
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len > SQS_MAX_BODY) {
		*why = "Body is larger than 256 KiB";
		return -EBADMSG;
	}
	if (memchr(s, '\0', len) != NULL) {
		*why = "Body holds a NUL character";
		return -EBADMSG;
	}
	if (json_object_object_get_ex(o, "MD5OfBody", &md5)) {
		if (!json_object_is_type(md5, json_type_string) ||
		    json_object_get_string_len(md5) != 32) {
			*why = "MD5OfBody is not 32 hex digits";
			return -EBADMSG;
		}
		if (md5_hex(s, len, mine) && strcasecmp(mine, json_object_get_string(md5)) != 0) {
			*why = "MD5OfBody does not match the Body";
			return -EBADMSG;
		}
	}
	m->body = kt_memdup(s, len + 1);
	if (m->body == NULL)
		return -ENOMEM;
	m->body[len] = '\0';
	m->body_len = len;
	return 0;
}

static int take_message(struct json_object *o, struct sqs_message *m, const char **why)
{
	int rc;

	if (!json_object_is_type(o, json_type_object)) {
		*why = "entry is not an object";
		return -EBADMSG;
	}
	rc = take_token(o, "MessageId", SQS_MAX_MESSAGE_ID, &m->message_id);
	if (rc < 0) {
		*why = "MessageId is missing, not a string, or not 1-128 printable characters";
		return rc;
	}
	rc = take_token(o, "ReceiptHandle", SQS_MAX_RECEIPT_HANDLE, &m->receipt_handle);
	if (rc < 0) {
		*why = "ReceiptHandle is missing, not a string, or not 1-1024 printable "
		       "characters";
		return rc;
	}
	return take_body(o, m, why);
}

/* Takes the Messages of a ReceiveMessage answer; none at all (an empty
 * poll) is an answer without the member. */
static int take_messages(struct json_object *resp, int max_messages, struct sqs_batch *out,
			 char *why, size_t whylen)
{
	struct json_object *msgs;
	const char *what = NULL;
	size_t n;
	int rc;

	if (!json_object_object_get_ex(resp, "Messages", &msgs))
		return 0;
	if (!json_object_is_type(msgs, json_type_array)) {
		snprintf(why, whylen, "Messages is not an array");
		return -EBADMSG;
	}
	n = json_object_array_length(msgs);
	if (n > (size_t)max_messages) {
		snprintf(why, whylen, "Messages holds %zu messages, more than the %d asked for", n,
			 max_messages);
		return -EBADMSG;
	}
	if (n == 0)
		return 0;
	out->msgs = calloc(n, sizeof(*out->msgs));
	if (out->msgs == NULL)
		return -ENOMEM;
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		rc = take_message(json_object_array_get_idx(msgs, i), &out->msgs[i], &what);
		if (rc < 0) {
			if (what != NULL)
				snprintf(why, whylen, "Messages[%zu]: %s", i, what);
			return rc;
		}
	}
	return 0;
}

int sqs_receive_message(struct aws_client *c, const char *queue_url, int max_messages, int wait_s,
			struct sqs_batch *out, struct aws_error *err)
{
	struct json_object *req, *resp = NULL;
	char why[256] = "";
	long need_ms;
	int rc;

	memset(out, 0, sizeof(*out));
	aws_error_clear(err);
	rc = check_queue_arg("ReceiveMessage", queue_url, err);
	if (rc < 0)
		return rc;
	if (max_messages < 1 || max_messages > SQS_MAX_MESSAGES || wait_s < 0 ||
	    wait_s > SQS_MAX_WAIT_S) {
		aws_error_set(err, AWS_ERR_INVALID_REQUEST, "BadParameter",
			      "takes 1 to %d messages and a wait of 0 to %d s, not %d messages "
			      "and %d s",
			      SQS_MAX_MESSAGES, SQS_MAX_WAIT_S, max_messages, wait_s);
		sqs_error_context(err, "ReceiveMessage", queue_url);
		return -EINVAL;
	}
	/* A poll that outlasts the HTTP timeout would end as a timeout every
	 * time the queue is quiet, and be retried as if the service failed. */
	need_ms = (long)wait_s * 1000L + SQS_POLL_MARGIN_MS;
	if (aws_client_timeout_ms(c) < need_ms) {
		aws_error_set(err, AWS_ERR_CONFIG, "TimeoutTooShort",
			      "a %d s long poll needs a client timeout of at least %ld ms, not "
			      "%ld ms",
			      wait_s, need_ms, aws_client_timeout_ms(c));
		sqs_error_context(err, "ReceiveMessage", queue_url);
		return -EINVAL;
	}
	req = json_object_new_object();
	if (req != NULL && (!add_str(req, "QueueUrl", queue_url) ||
			    !add_int(req, "MaxNumberOfMessages", max_messages) ||
			    !add_int(req, "WaitTimeSeconds", wait_s))) {
		json_object_put(req);
		req = NULL;
	}
	rc = sqs_call(c, "ReceiveMessage", queue_url, req, &resp, err);
	if (rc < 0)
		return rc;
	rc = take_messages(resp, max_messages, out, why, sizeof(why));
	if (rc < 0) {
		sqs_batch_free(out);
		rc = sqs_answer_error(rc, err, "ReceiveMessage", queue_url, why);
	}
	kt_json_put_wiped(resp);
	return rc;
}

/* Marks the entries one list of a DeleteMessageBatch answer names
 * (Successful or Failed); each must be an object whose Id is one of those
 * sent, "0".."n-1", and not named before. */
static int take_entries(struct json_object *resp, const char *key, size_t n, bool seen[],
			size_t *count, char *why, size_t whylen)
{
	struct json_object *list, *e, *id;
	const char *s;
	size_t k;

	*count = 0;
	if (!json_object_object_get_ex(resp, key, &list))
		return 0;
	if (!json_object_is_type(list, json_type_array)) {
		snprintf(why, whylen, "%s is not an array", key);
		return -EBADMSG;
	}
	k = json_object_array_length(list);
	if (k > n) {
		snprintf(why, whylen, "%s names %zu entries, more than the %zu sent", key, k, n);
		return -EBADMSG;
	}
	for (size_t i = 0; i < k; i++) {
		e = json_object_array_get_idx(list, i);
		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "Id", &id) ||
		    !json_object_is_type(id, json_type_string)) {
			snprintf(why, whylen, "%s[%zu] is not an object with a string Id", key, i);
			return -EBADMSG;
		}
		s = json_object_get_string(id);
		if (json_object_get_string_len(id) != 1 || s[0] < '0' ||
		    (size_t)(s[0] - '0') >= n || seen[s[0] - '0']) {
			snprintf(why, whylen,
				 "%s[%zu] names an entry that was not sent or is named "
				 "twice",
				 key, i);
			return -EBADMSG;
		}
		seen[s[0] - '0'] = true;
		(*count)++;
	}
	return 0;
}

int sqs_delete_message_batch(struct aws_client *c, const char *queue_url,
			     const char *const *receipt_handles, size_t n, size_t *failed,
			     struct aws_error *err)
{
	struct json_object *req = NULL, *entries = NULL, *resp = NULL;
	bool seen[SQS_MAX_MESSAGES] = { false };
	size_t nok = 0, nfailed = 0;
	char why[256] = "";
	int rc;

	*failed = 0;
	aws_error_clear(err);
	rc = check_queue_arg("DeleteMessageBatch", queue_url, err);
	if (rc < 0)
		return rc;
	if (n == 0 || n > SQS_MAX_MESSAGES) {
		aws_error_set(err, AWS_ERR_INVALID_REQUEST, "BadParameter",
			      "takes 1 to %d receipt handles, not %zu", SQS_MAX_MESSAGES, n);
		sqs_error_context(err, "DeleteMessageBatch", queue_url);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (receipt_handles[i] == NULL || receipt_handles[i][0] == '\0' ||
		    strlen(receipt_handles[i]) > SQS_MAX_RECEIPT_HANDLE) {
			aws_error_set(err, AWS_ERR_INVALID_REQUEST, "BadParameter",
				      "receipt handle %zu is empty or longer than %d bytes", i,
				      SQS_MAX_RECEIPT_HANDLE);
			sqs_error_context(err, "DeleteMessageBatch", queue_url);
			return -EINVAL;
		}
	}
	req = json_object_new_object();
	entries = json_object_new_array();
	if (req == NULL || entries == NULL || !add_str(req, "QueueUrl", queue_url) ||
	    json_object_object_add(req, "Entries", entries) < 0) {
		json_object_put(entries);
		json_object_put(req);
		req = NULL;
	}
	for (size_t i = 0; req != NULL && i < n; i++) {
		struct json_object *e = json_object_new_object();
		char id[4];

		snprintf(id, sizeof(id), "%zu", i);
		if (e == NULL || !add_str(e, "Id", id) ||
		    !add_str(e, "ReceiptHandle", receipt_handles[i]) ||
		    json_object_array_add(entries, e) < 0) {
			json_object_put(e);
			json_object_put(req);
			req = NULL;
		}
	}
	rc = sqs_call(c, "DeleteMessageBatch", queue_url, req, &resp, err);
	if (rc < 0)
		return rc;
	rc = take_entries(resp, "Successful", n, seen, &nok, why, sizeof(why));
	if (rc == 0)
		rc = take_entries(resp, "Failed", n, seen, &nfailed, why, sizeof(why));
	if (rc == 0 && nok + nfailed != n) {
		snprintf(why, sizeof(why),
			 "Successful and Failed account for %zu of the %zu entries", nok + nfailed,
			 n);
		rc = -EBADMSG;
	}
	if (rc < 0)
		rc = sqs_answer_error(rc, err, "DeleteMessageBatch", queue_url, why);
	else
		*failed = nfailed;
	kt_json_put_wiped(resp);
	return rc;
}

void sqs_batch_free(struct sqs_batch *b)
{
	if (b == NULL)
		return;
	for (size_t i = 0; i < b->n; i++) {
		free(b->msgs[i].message_id);
		free(b->msgs[i].receipt_handle);
		free(b->msgs[i].body);
	}
	free(b->msgs);
	memset(b, 0, sizeof(*b));
}
