/* Unit tests for awserr.c: __type stripping, classification, and parsing of
 * JSON, XML and bare answers, never deciding on the status when a type exists. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "aws/awserr.h"

static void parse(long status, const char *body, const char *hdr, struct aws_error *e)
{
	aws_error_parse(status, body, body != NULL ? strlen(body) : 0, hdr, e);
}

static void test_type_strip(void **state)
{
	char out[64];

	(void)state;
	aws_error_type_strip("com.amazonaws.secretsmanager#ResourceNotFoundException", out,
			     sizeof(out));
	assert_string_equal(out, "ResourceNotFoundException");
	aws_error_type_strip("ThrottlingException:http://internal.amazon.com/coral/", out,
			     sizeof(out));
	assert_string_equal(out, "ThrottlingException");
	aws_error_type_strip("aws#Foo:bar", out, sizeof(out));
	assert_string_equal(out, "Foo");
	aws_error_type_strip("Plain", out, sizeof(out));
	assert_string_equal(out, "Plain");
	aws_error_type_strip("AVeryLongTypeNameThatDoesNotFit", out, 8);
	assert_string_equal(out, "AVeryLo");
}

static void test_classify(void **state)
{
	(void)state;
	assert_int_equal(aws_error_classify("ResourceNotFoundException", NULL), AWS_ERR_NOT_FOUND);
	assert_int_equal(aws_error_classify("AccessDeniedException", NULL), AWS_ERR_ACCESS_DENIED);
	assert_int_equal(aws_error_classify("ThrottlingException", NULL), AWS_ERR_THROTTLED);
	assert_int_equal(aws_error_classify("TooManyRequestsException", NULL), AWS_ERR_THROTTLED);
	assert_int_equal(aws_error_classify("InternalServiceError", NULL), AWS_ERR_SERVER);
	assert_int_equal(aws_error_classify("DecryptionFailure", NULL), AWS_ERR_DECRYPTION);
	assert_int_equal(aws_error_classify("InvalidRequestException", NULL),
			 AWS_ERR_INVALID_REQUEST);
	assert_int_equal(aws_error_classify("ExpiredTokenException", NULL), AWS_ERR_EXPIRED_TOKEN);
	assert_int_equal(aws_error_classify("RequestTimeTooSkewed", NULL), AWS_ERR_CLOCK_SKEW);
	assert_int_equal(aws_error_classify("InvalidSignatureException", "Signature mismatch"),
			 AWS_ERR_AUTH);
	assert_int_equal(
		aws_error_classify(
			"InvalidSignatureException",
			"Signature expired: 20261129T100000Z is now earlier than 20261129T101000Z"),
		AWS_ERR_CLOCK_SKEW);
	assert_int_equal(aws_error_classify("SomethingNew", NULL), AWS_ERR_OTHER);
}

static void test_parse_json(void **state)
{
	struct aws_error e;

	(void)state;
	/* moto sends 404 where AWS sends 400: the type decides, not the status. */
	parse(404,
	      "{\"__type\": \"ResourceNotFoundException\", \"message\": \"Secrets Manager can't find the specified secret.\"}",
	      NULL, &e);
	assert_int_equal(e.code, AWS_ERR_NOT_FOUND);
	assert_int_equal(e.http_status, 404);
	assert_string_equal(e.type, "ResourceNotFoundException");
	assert_string_equal(e.message, "Secrets Manager can't find the specified secret.");

	parse(400,
	      "{\"__type\":\"com.amazonaws.coral.availability#ThrottlingException\",\"Message\":\"Rate exceeded\"}",
	      NULL, &e);
	assert_int_equal(e.code, AWS_ERR_THROTTLED);
	assert_string_equal(e.message, "Rate exceeded");

	/* A 500 that names a client error is that client error. */
	parse(500, "{\"__type\":\"AccessDeniedException\",\"message\":\"no\"}", NULL, &e);
	assert_int_equal(e.code, AWS_ERR_ACCESS_DENIED);
}

static void test_parse_xml(void **state)
{
	struct aws_error e;

	(void)state;
	parse(403,
	      "<?xml version=\"1.0\"?><ErrorResponse><Error><Type>Sender</Type>"
	      "<Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated "
	      "does not match</Message></Error></ErrorResponse>",
	      NULL, &e);
	assert_int_equal(e.code, AWS_ERR_AUTH);
	assert_string_equal(e.type, "SignatureDoesNotMatch");
	assert_string_equal(e.message, "The request signature we calculated does not match");

	parse(403, "<Error><Code>InvalidClientTokenId</Code></Error>", NULL, &e);
	assert_int_equal(e.code, AWS_ERR_AUTH);
	assert_string_equal(e.message, "InvalidClientTokenId");
}

static void test_parse_header_and_status(void **state)
{
	struct aws_error e;

	(void)state;
	parse(400, "", "ThrottlingException:http://internal", &e);
	assert_int_equal(e.code, AWS_ERR_THROTTLED);
	parse(503, "<html>Service Unavailable</html>", NULL, &e);
	assert_int_equal(e.code, AWS_ERR_SERVER);
	parse(502, NULL, NULL, &e);
	assert_int_equal(e.code, AWS_ERR_SERVER);
	parse(429, "", NULL, &e);
	assert_int_equal(e.code, AWS_ERR_THROTTLED);
	/* A 400 that says nothing is not something to retry. */
	parse(400, "garbage", NULL, &e);
	assert_int_equal(e.code, AWS_ERR_MALFORMED);
	parse(400, "{\"message\":\"no type\"}", NULL, &e);
	assert_int_equal(e.code, AWS_ERR_MALFORMED);
	parse(400, "{\"__type\": 5}", NULL, &e);
	assert_int_equal(e.code, AWS_ERR_MALFORMED);
}

static void test_message_is_cleaned(void **state)
{
	struct aws_error e;
	char big[2000];

	(void)state;
	parse(400, "{\"__type\":\"ValidationException\",\"message\":\"line1\\nline2\\u0007\"}",
	      NULL, &e);
	assert_string_equal(e.message, "line1 line2 ");
	memset(big, 'a', sizeof(big));
	memcpy(big, "{\"__type\":\"X\",\"message\":\"", 25);
	memcpy(big + sizeof(big) - 3, "\"}", 3);
	parse(400, big, NULL, &e);
	assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(aws_errc_name(AWS_ERR_NOT_FOUND), "not_found");
	assert_string_equal(aws_errc_name(AWS_ERR_THROTTLED), "throttled");
	assert_string_equal(aws_errc_name((enum aws_errc)999), "other");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_type_strip),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_parse_json),
		cmocka_unit_test(test_parse_xml),
		cmocka_unit_test(test_parse_header_and_status),
		cmocka_unit_test(test_message_is_cleaned),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests_name("awserr", tests, NULL, NULL);
}
