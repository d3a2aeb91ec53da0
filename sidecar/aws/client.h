/* The AWS JSON-protocol client: signs a call with SigV4, sends it over HTTPS,
 * retries in the "standard" mode, renews credentials and corrects clock skew.
 * One client talks to one service (Secrets Manager unless opts.service says
 * otherwise). One client may be shared by threads; each call takes a
 * connection of its own. */
#ifndef KT_CLIENT_H
#define KT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "awserr.h"

struct aws_client_opts {
	const char *region;   /* NULL: the region chain */
	const char *endpoint; /* NULL: the endpoint chain */
	const char *ca_file;  /* NULL: AWS_CA_BUNDLE, else the system store */
	bool fips;
	long connect_timeout_ms; /* 0: 3000 */
	long timeout_ms;         /* 0: 10000; no upper bound (a 20 s long poll needs more) */
	int max_attempts;        /* 0: AWS_MAX_ATTEMPTS, else 3 */
	long retry_base_ms;      /* 0: 1000 (tests make it small) */
	long retry_cap_ms;       /* 0: 20000 */
	size_t max_body;         /* 0: KT_HTTP_DEFAULT_MAX_BODY */
	bool use_imds_region;    /* ask instance metadata when nothing else names a region */
	/* The SigV4 service name, which also picks the endpoint chain
	 * (AWS_ENDPOINT_URL_<SERVICE>, https://SERVICE.REGION.amazonaws.com):
	 * NULL is "secretsmanager"; SQS is "sqs". */
	const char *service;
	/* The AWS JSON protocol version of Content-Type
	 * (application/x-amz-json-VERSION): NULL is "1.1"; SQS speaks "1.0". */
	const char *json_version;
};

struct aws_client;

struct aws_call_stats {
	int attempts; /* HTTP requests sent for the last call */
	long skew_s;  /* the clock correction in force */
};

/* HTTP requests this client has sent since it was made (all threads). */
unsigned long aws_client_requests_sent(struct aws_client *c);

/* Every HTTP request sent to AWS is also counted for the whole process
 * (every client: Secrets Manager and SQS alike; each retry is a request),
 * by operation and result. The operation is the part of X-Amz-Target after
 * its last dot when it is one of a fixed list (the operations keyturn
 * calls), "other" otherwise; the result is aws_errc_name() of the
 * request's outcome ("ok" for a usable answer). A request that could not
 * be sent (no credentials, signing failed) is not counted. Safe from any
 * thread. The walk calls fn for each pair with a count that is not zero,
 * in a fixed order. */
void aws_client_counts_walk(void (*fn)(void *ctx, const char *op, const char *result,
				       unsigned long n),
			    void *ctx);

/* Resolves region, endpoint and the credential chain. Returns 0 or a negative
 * errno with err naming what is missing or bad. */
int aws_client_new(const struct aws_client_opts *opts, struct aws_client **out,
		   struct aws_error *err);
void aws_client_free(struct aws_client *c);

const char *aws_client_region(const struct aws_client *c);
const char *aws_client_endpoint(const struct aws_client *c);

/* The total time one HTTP request may take, in ms (opts.timeout_ms or its
 * default): a long poll must end well inside it. */
long aws_client_timeout_ms(const struct aws_client *c);

/* Calls `target` ("secretsmanager.GetSecretValue", "AmazonSQS.ReceiveMessage")
 * with a JSON body. On
 * success (0) *resp is the answer's JSON object, to be released with
 * kt_json_put_wiped(). On failure returns a negative errno (-EIO for an AWS
 * error) and err says what happened. stats may be NULL. */
int aws_client_call(struct aws_client *c, const char *target, const char *json, size_t json_len,
		    struct json_object **resp, struct aws_error *err, struct aws_call_stats *stats);

/* Ends the client's work for good, from any thread and without waiting:
 * calls in flight (their HTTP request, a credential fetch, a retry's
 * backoff) end within about a second with -ECANCELED, and later calls fail
 * at once the same way (err type "Cancelled"). For a daemon that stops. */
/* aws_client_call with req (consumed, NULL when it could not be made:
 * then -ENOMEM) as the body; the request text is wiped once sent, since a
 * PutSecretValue's holds a value. */
int aws_client_call_obj(struct aws_client *c, const char *target, struct json_object *req,
			struct json_object **resp, struct aws_error *err);

void aws_client_cancel(struct aws_client *c);

#endif
