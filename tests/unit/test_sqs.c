/* Unit tests for sqs.c: request bodies, the strict checking of answers, the
 * mapping of SQS's own error names, and the endpoint a queue URL implies.
 * aws_client_call is replaced by a script of canned answers. */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/kt_json.h"
#include "scripted_client.h"
#include "aws/sqs.h"

#define QURL "https://sqs.eu-west-1.amazonaws.com/123456789012/keyturn-web-1"

static long client_timeout = 30000;

long aws_client_timeout_ms(const struct aws_client *c)
{
	(void)c;
	return client_timeout;
}

static int reset(void **state)
{
	client_timeout = 30000;
	return script_reset(state);
}

static struct json_object *request(size_t i)
{
	return kt_json_parse(requests[i], strlen(requests[i]));
}

static struct aws_client *fake = (struct aws_client *)0x1;

static void test_receive(void **state)
{
	struct aws_error err;
	struct sqs_batch b;
	struct json_object *rq;

	(void)state;
	/* 5d41402abc4b2a76b9719d911017c592 is the MD5 of "hello". */
	script(1, "{\"Messages\":[{\"MessageId\":\"m-1\",\"ReceiptHandle\":\"r+1/=\","
		  "\"MD5OfBody\":\"5d41402abc4b2a76b9719d911017c592\",\"Body\":\"hello\"},"
		  "{\"MessageId\":\"m-2\",\"ReceiptHandle\":\"r2\",\"Body\":\"{\\\"a\\\":1}\","
		  "\"Attributes\":{\"SentTimestamp\":\"1\"}}]}");
	assert_int_equal(sqs_receive_message(fake, QURL, 5, 20, &b, &err), 0);
	assert_string_equal(targets[0], "AmazonSQS.ReceiveMessage");
	rq = request(0);
	assert_string_equal(kt_json_str(rq, "QueueUrl"), QURL);
	assert_int_equal(json_object_get_int(json_object_object_get(rq, "MaxNumberOfMessages")), 5);
	assert_int_equal(json_object_get_int(json_object_object_get(rq, "WaitTimeSeconds")), 20);
	json_object_put(rq);
	assert_int_equal(b.n, 2);
	assert_string_equal(b.msgs[0].message_id, "m-1");
	assert_string_equal(b.msgs[0].receipt_handle, "r+1/=");
	assert_string_equal(b.msgs[0].body, "hello");
	assert_int_equal(b.msgs[0].body_len, 5);
	assert_string_equal(b.msgs[1].body, "{\"a\":1}");
	sqs_batch_free(&b);
	assert_null(b.msgs);
	assert_int_equal(b.n, 0);
}

static void test_receive_empty(void **state)
{
	struct aws_error err;
	struct sqs_batch b;

	(void)state;
	script(2, "{}", "{\"Messages\":[]}");
	assert_int_equal(sqs_receive_message(fake, QURL, 10, 0, &b, &err), 0);
	assert_int_equal(b.n, 0);
	sqs_batch_free(&b);
	assert_int_equal(sqs_receive_message(fake, QURL, 10, 0, &b, &err), 0);
	assert_int_equal(b.n, 0);
	sqs_batch_free(&b);
}

static void test_receive_malformed(void **state)
{
	static const struct {
		const char *answer, *says;
	} bad[] = {
		{ "{\"Messages\":{}}", "not an array" },
		{ "{\"Messages\":null}", "not an array" },
		{ "{\"Messages\":[1]}", "Messages[0]: entry is not an object" },
		{ "{\"Messages\":[{\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]}", "MessageId" },
		{ "{\"Messages\":[{\"MessageId\":7,\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]}",
		  "MessageId" },
		{ "{\"Messages\":[{\"MessageId\":\"\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]}",
		  "MessageId" },
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r 1\",\"Body\":\"b\"}]}",
		  "ReceiptHandle" },
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\\u00e9\",\"Body\":\"b\"}]}",
		  "ReceiptHandle" },
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\"}]}", "Body" },
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":5}]}",
		  "Body" },
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"a\\u0000b\"}]}",
		  "NUL" },
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"hello\","
		  "\"MD5OfBody\":\"00000000000000000000000000000000\"}]}",
		  "does not match" },
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"hello\","
		  "\"MD5OfBody\":\"5d41\"}]}",
		  "MD5OfBody" },
		/* One good message, then a bad one: nothing is kept. */
		{ "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"},"
		  "{\"MessageId\":\"m2\",\"ReceiptHandle\":\"r2\"}]}",
		  "Messages[1]: Body" },
		/* More than the 2 asked for. */
		{ "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"},"
		  "{\"MessageId\":\"b\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"},"
		  "{\"MessageId\":\"c\",\"ReceiptHandle\":\"r\",\"Body\":\"b\"}]}",
		  "more than the 2" },
	};
	struct aws_error err;
	struct sqs_batch b;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		script(1, bad[i].answer);
		assert_int_equal(sqs_receive_message(fake, QURL, 2, 1, &b, &err), -EBADMSG);
		assert_int_equal(err.code, AWS_ERR_MALFORMED);
		if (strstr(err.message, bad[i].says) == NULL || strstr(err.message, QURL) == NULL)
			fail_msg("answer %zu: message \"%s\" lacks \"%s\" or the queue", i,
				 err.message, bad[i].says);
		assert_null(b.msgs);
		assert_int_equal(b.n, 0);
		reset(NULL);
	}
}

/* The body limit is 256 KiB: that much is taken, one byte more is not, and
 * the message never holds the body itself. */
static void test_receive_body_limit(void **state)
{
	static const char head[] = "{\"Messages\":[{\"MessageId\":\"m\",\"ReceiptHandle\":\"r\","
				   "\"Body\":\"";
	size_t big = SQS_MAX_BODY + 1;
	char *answer = malloc(sizeof(head) + big + 8);
	struct aws_error err;
	struct sqs_batch b;

	(void)state;
	assert_non_null(answer);
	memcpy(answer, head, sizeof(head) - 1);
	memset(answer + sizeof(head) - 1, 'A', big);
	memcpy(answer + sizeof(head) - 1 + big, "\"}]}", 5);
	script(1, answer);
	assert_int_equal(sqs_receive_message(fake, QURL, 1, 0, &b, &err), -EBADMSG);
	assert_non_null(strstr(err.message, "256 KiB"));
	assert_null(strstr(err.message, "AAAA"));
	reset(NULL);
	memcpy(answer + sizeof(head) - 1 + big - 1, "\"}]}", 5);
	script(1, answer);
	assert_int_equal(sqs_receive_message(fake, QURL, 1, 0, &b, &err), 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(b.msgs[0].body_len, SQS_MAX_BODY);
	sqs_batch_free(&b);
	free(answer);
}

static void test_receive_refuses_before_sending(void **state)
{
	static const int args[][2] = { { 0, 0 }, { 11, 0 }, { 1, -1 }, { 1, 21 } };
	struct aws_error err;
	struct sqs_batch b;

	(void)state;
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		assert_int_equal(sqs_receive_message(fake, QURL, args[i][0], args[i][1], &b, &err),
				 -EINVAL);
		assert_int_equal(err.code, AWS_ERR_INVALID_REQUEST);
	}
	assert_int_equal(sqs_receive_message(fake, "", 1, 0, &b, &err), -EINVAL);
	assert_int_equal(sqs_receive_message(fake, NULL, 1, 0, &b, &err), -EINVAL);
	/* A 20 s poll with a 10 s timeout would time out whenever the queue is quiet. */
	client_timeout = 10000;
	assert_int_equal(sqs_receive_message(fake, QURL, 1, 20, &b, &err), -EINVAL);
	assert_int_equal(err.code, AWS_ERR_CONFIG);
	assert_non_null(strstr(err.message, "timeout"));
	assert_non_null(strstr(err.message, QURL));
	client_timeout = 22000;
	script(1, "{}");
	assert_int_equal(sqs_receive_message(fake, QURL, 1, 20, &b, &err), 0);
	assert_int_equal(nrequests, 1);
}

static void test_errors_are_mapped(void **state)
{
	struct aws_error err;
	struct sqs_batch b;
	size_t failed;
	const char *rh[] = { "r" };

	(void)state;
	script(4,
	       "ERR:{\"__type\":\"com.amazonaws.sqs#QueueDoesNotExist\",\"message\":\"The "
	       "specified queue does not exist.\"}",
	       "ERR:{\"__type\":\"AWS.SimpleQueueService.NonExistentQueue\",\"message\":\"gone\"}",
	       "ERR:{\"__type\":\"com.amazonaws.sqs#RequestThrottled\",\"message\":\"slow\"}",
	       "ERR:{\"__type\":\"com.amazonaws.sqs#InvalidParameterValue\",\"message\":\"x\"}");
	assert_int_equal(sqs_receive_message(fake, QURL, 1, 0, &b, &err), -EIO);
	assert_int_equal(err.code, AWS_ERR_NOT_FOUND);
	assert_string_equal(err.type, "QueueDoesNotExist");
	assert_string_equal(err.message,
			    "ReceiveMessage " QURL ": The specified queue does not exist.");
	assert_int_equal(sqs_delete_message_batch(fake, QURL, rh, 1, &failed, &err), -EIO);
	assert_int_equal(err.code, AWS_ERR_NOT_FOUND);
	assert_non_null(strstr(err.message, "DeleteMessageBatch " QURL));
	assert_int_equal(sqs_receive_message(fake, QURL, 1, 0, &b, &err), -EIO);
	assert_int_equal(err.code, AWS_ERR_THROTTLED);
	assert_int_equal(sqs_receive_message(fake, QURL, 1, 0, &b, &err), -EIO);
	assert_int_equal(err.code, AWS_ERR_INVALID_REQUEST);
}

static void test_delete(void **state)
{
	const char *rh[] = { "r0", "r1", "r2" };
	struct aws_error err;
	struct json_object *rq, *entries, *e;
	size_t failed = 99;

	(void)state;
	script(1,
	       "{\"Successful\":[{\"Id\":\"2\"},{\"Id\":\"0\"}],"
	       "\"Failed\":[{\"Id\":\"1\",\"SenderFault\":true,\"Code\":\"ReceiptHandleIsInvalid\","
	       "\"Message\":\"bad\"}]}");
	assert_int_equal(sqs_delete_message_batch(fake, QURL, rh, 3, &failed, &err), 0);
	assert_int_equal(failed, 1);
	assert_string_equal(targets[0], "AmazonSQS.DeleteMessageBatch");
	rq = request(0);
	assert_string_equal(kt_json_str(rq, "QueueUrl"), QURL);
	entries = json_object_object_get(rq, "Entries");
	assert_int_equal(json_object_array_length(entries), 3);
	for (size_t i = 0; i < 3; i++) {
		char id[2] = { (char)('0' + i), '\0' };

		e = json_object_array_get_idx(entries, i);
		assert_string_equal(kt_json_str(e, "Id"), id);
		assert_string_equal(kt_json_str(e, "ReceiptHandle"), rh[i]);
	}
	json_object_put(rq);
	reset(NULL);
	/* All deleted, Failed left out. */
	script(1, "{\"Successful\":[{\"Id\":\"0\"}]}");
	assert_int_equal(sqs_delete_message_batch(fake, QURL, rh, 1, &failed, &err), 0);
	assert_int_equal(failed, 0);
}

static void test_delete_malformed(void **state)
{
	static const char *bad[] = {
		"{}",
		"{\"Successful\":{},\"Failed\":[]}",
		"{\"Successful\":[{\"Id\":\"0\"}],\"Failed\":[{\"Id\":\"0\"}]}",
		"{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"2\"}]}",
		"{\"Successful\":[{\"Id\":0},{\"Id\":\"1\"}]}",
		"{\"Successful\":[{\"Id\":\"00\"},{\"Id\":\"1\"}]}",
		"{\"Successful\":[\"0\",{\"Id\":\"1\"}]}",
		"{\"Successful\":[{\"Id\":\"0\"},{\"Id\":\"1\"},{\"Id\":\"1\"}]}",
		"{\"Successful\":[{\"Id\":\"0\"}]}",
	};
	const char *rh[] = { "r0", "r1" };
	struct aws_error err;
	size_t failed = 99;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		script(1, bad[i]);
		if (sqs_delete_message_batch(fake, QURL, rh, 2, &failed, &err) != -EBADMSG)
			fail_msg("answer %zu was taken: %s", i, bad[i]);
		assert_int_equal(err.code, AWS_ERR_MALFORMED);
		assert_int_equal(failed, 0);
		reset(NULL);
	}
}

static void test_delete_refuses_before_sending(void **state)
{
	const char *rh[11] = { "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k" };
	const char *holes[] = { "a", NULL };
	const char *empty[] = { "" };
	struct aws_error err;
	size_t failed;

	(void)state;
	assert_int_equal(sqs_delete_message_batch(fake, QURL, rh, 0, &failed, &err), -EINVAL);
	assert_int_equal(sqs_delete_message_batch(fake, QURL, rh, 11, &failed, &err), -EINVAL);
	assert_int_equal(sqs_delete_message_batch(fake, QURL, holes, 2, &failed, &err), -EINVAL);
	assert_int_equal(sqs_delete_message_batch(fake, QURL, empty, 1, &failed, &err), -EINVAL);
	assert_int_equal(err.code, AWS_ERR_INVALID_REQUEST);
	assert_int_equal(nrequests, 0);
}

static void test_endpoint_for_queue(void **state)
{
	static const struct {
		const char *url, *endpoint, *region;
	} good[] = {
		{ QURL, "https://sqs.eu-west-1.amazonaws.com", "eu-west-1" },
		{ "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q",
		  "https://sqs.cn-north-1.amazonaws.com.cn", "cn-north-1" },
		{ "https://us-west-2.queue.amazonaws.com/123456789012/q",
		  "https://us-west-2.queue.amazonaws.com", "us-west-2" },
		{ "https://queue.amazonaws.com/123456789012/q", "https://queue.amazonaws.com",
		  "us-east-1" },
		{ "https://sqs-fips.us-gov-west-1.amazonaws.com/123456789012/q.fifo",
		  "https://sqs-fips.us-gov-west-1.amazonaws.com", "us-gov-west-1" },
		{ "https://SQS.EU-WEST-1.AMAZONAWS.COM:443/123456789012/Q_1-a",
		  "https://SQS.EU-WEST-1.AMAZONAWS.COM:443", "eu-west-1" },
		{ "http://127.0.0.1:4566/000000000000/local", "http://127.0.0.1:4566", "" },
		{ "http://[::1]:9324/123456789012/q", "http://[::1]:9324", "" },
		{ "https://sqs.amazonaws.com/123456789012/q", "https://sqs.amazonaws.com", "" },
		{ "https://sqs.eu.west.amazonaws.com/123456789012/q",
		  "https://sqs.eu.west.amazonaws.com", "" },
	};
	static const char *bad[] = {
		"",
		"ftp://sqs.eu-west-1.amazonaws.com/123456789012/q",
		"sqs.eu-west-1.amazonaws.com/123456789012/q",
		"https:///123456789012/q",
		"https://user@host/123456789012/q",
		"https://host",
		"https://host/",
		"https://host/123456789012",
		"https://host/123456789012/",
		"https://host/12345678901/q",
		"https://host/123456789012/q/extra",
		"https://host/123456789012/q?x=1",
		"https://host/123456789012/q#f",
		"https://host/123456789012/q.fifo.fifo",
		"https://host/123456789012/a b",
		"https://host/123456789012/"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		"https://ho st/123456789012/q",
	};
	char ep[256], region[32], msg[512];

	(void)state;
	unsetenv("AWS_ENDPOINT_URL_SQS");
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (sqs_endpoint_for_queue(good[i].url, ep, sizeof(ep), region, sizeof(region), msg,
					   sizeof(msg)) != 0)
			fail_msg("%s refused: %s", good[i].url, msg);
		assert_string_equal(ep, good[i].endpoint);
		assert_string_equal(region, good[i].region);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (sqs_endpoint_for_queue(bad[i], ep, sizeof(ep), region, sizeof(region), msg,
					   sizeof(msg)) == 0)
			fail_msg("%s taken as %s", bad[i], ep);
		assert_true(msg[0] != '\0');
		assert_string_equal(ep, "");
	}
	assert_int_equal(sqs_endpoint_for_queue(NULL, ep, sizeof(ep), region, sizeof(region), msg,
						sizeof(msg)),
			 -EINVAL);
	/* The message names the URL at fault. */
	sqs_endpoint_for_queue("https://host/1/q", ep, sizeof(ep), region, sizeof(region), msg,
			       sizeof(msg));
	assert_non_null(strstr(msg, "https://host/1/q"));
	/* An endpoint that does not fit is refused, not cut. */
	assert_int_equal(sqs_endpoint_for_queue(QURL, ep, 10, region, sizeof(region), msg,
						sizeof(msg)),
			 -ENAMETOOLONG);

	/* AWS_ENDPOINT_URL_SQS replaces the endpoint; the region stays the queue's. */
	setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5000/", 1);
	assert_int_equal(sqs_endpoint_for_queue(QURL, ep, sizeof(ep), region, sizeof(region), msg,
						sizeof(msg)),
			 0);
	assert_string_equal(ep, "http://127.0.0.1:5000");
	assert_string_equal(region, "eu-west-1");
	setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:5000/path", 1);
	assert_int_equal(sqs_endpoint_for_queue(QURL, ep, sizeof(ep), region, sizeof(region), msg,
						sizeof(msg)),
			 -EINVAL);
	assert_non_null(strstr(msg, "AWS_ENDPOINT_URL_SQS"));
	unsetenv("AWS_ENDPOINT_URL_SQS");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_receive, reset),
		cmocka_unit_test_teardown(test_receive_empty, reset),
		cmocka_unit_test_teardown(test_receive_malformed, reset),
		cmocka_unit_test_teardown(test_receive_body_limit, reset),
		cmocka_unit_test_teardown(test_receive_refuses_before_sending, reset),
		cmocka_unit_test_teardown(test_errors_are_mapped, reset),
		cmocka_unit_test_teardown(test_delete, reset),
		cmocka_unit_test_teardown(test_delete_malformed, reset),
		cmocka_unit_test_teardown(test_delete_refuses_before_sending, reset),
		cmocka_unit_test_teardown(test_endpoint_for_queue, reset),
	};

	return cmocka_run_group_tests_name("sqs", tests, NULL, NULL);
}
