/* The SQS operations keyturnd uses to hear of rotation events, over the AWS
 * JSON 1.0 protocol: ReceiveMessage (long polls) and DeleteMessageBatch.
 * The client must be made with service "sqs", json_version "1.0", the
 * endpoint and region that sqs_endpoint_for_queue() finds for the queue, and
 * a timeout longer than the longest poll (SQS_CLIENT_TIMEOUT_MS). Message
 * bodies are event hints, not secrets, but they come from outside and are
 * never logged. */
#ifndef KT_SQS_H
#define KT_SQS_H

#include <stddef.h>

#include "awserr.h"
#include "client.h"

#define SQS_MAX_MESSAGES 10         /* per ReceiveMessage or DeleteMessageBatch */
#define SQS_MAX_WAIT_S 20           /* the longest long poll SQS allows */
#define SQS_MAX_BODY (256u * 1024)  /* bytes of one message body */
#define SQS_MAX_RECEIPT_HANDLE 1024 /* bytes of a receipt handle */
#define SQS_MAX_MESSAGE_ID 128      /* bytes of a MessageId */
#define SQS_MAX_QUEUE_URL 1024      /* bytes of a queue URL */
/* A client's timeout must exceed a poll's wait by at least this much, or
 * every empty poll would end as a timeout (and be retried). */
#define SQS_POLL_MARGIN_MS 2000L
/* The timeout to give a client that polls for up to wait_s seconds. */
#define SQS_CLIENT_TIMEOUT_MS(wait_s) ((long)(wait_s)*1000L + 10000L)

struct sqs_message {
	char *message_id;
	char *receipt_handle;
	char *body; /* NUL-terminated; body_len bytes */
	size_t body_len;
};

struct sqs_batch {
	struct sqs_message *msgs;
	size_t n;
};

/* ReceiveMessage: MaxNumberOfMessages max_messages (1..10), WaitTimeSeconds
 * wait_s (0..20). An empty queue gives 0 with out->n == 0. The answer is
 * checked strictly (an array of objects with string MessageId, ReceiptHandle
 * and Body, bodies of at most SQS_MAX_BODY bytes matching their MD5OfBody,
 * no more messages than asked for): anything else is -EBADMSG with err
 * saying what was wrong. Other failures as aws_client_call(); err's message
 * names the queue. */
int sqs_receive_message(struct aws_client *c, const char *queue_url, int max_messages, int wait_s,
			struct sqs_batch *out, struct aws_error *err);

/* DeleteMessageBatch for 1..10 receipt handles (entry ids "0".."n-1").
 * Returns 0 when the call succeeded, with *failed the number of entries AWS
 * reported as failed (an expired or invalid receipt handle); an answer that
 * does not account for every entry exactly once is -EBADMSG. */
int sqs_delete_message_batch(struct aws_client *c, const char *queue_url,
			     const char *const *receipt_handles, size_t n, size_t *failed,
			     struct aws_error *err);

void sqs_batch_free(struct sqs_batch *b);

/* The endpoint for a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME):
 * its scheme://host[:port], or AWS_ENDPOINT_URL_SQS when that is set; and the
 * region when the host is sqs[-fips].REGION.amazonaws.com[.cn] or the legacy
 * REGION.queue.amazonaws.com (queue.amazonaws.com: us-east-1), else "" (a
 * local emulator: the region chain decides). The path must be /ACCOUNT/NAME
 * (12 digits; 1-80 letters, digits, '-' or '_', ".fifo" allowed). Returns 0,
 * or -EINVAL / -ENAMETOOLONG with errbuf naming the URL and what is wrong. */
int sqs_endpoint_for_queue(const char *queue_url, char *endpoint, size_t elen, char *region,
			   size_t rlen, char *errbuf, size_t errlen);

#endif
