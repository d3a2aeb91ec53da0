/* Unit tests for sidecar/events_parse.c: the Secrets Manager events that
 * EventBridge sends (API calls and service events through CloudTrail, the
 * native Secret Label Updated), raw or in an SNS notification, written here
 * after the shapes the AWS documentation gives; what is ignored, what is
 * refused, and the matching of ids against configured ones. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "events_parse.h"

#define ARN "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-Ab12Cd"

static struct kt_event ev;
static char why[256];

/* What every call must leave, whatever it was given. */
static void check_invariants(int rc)
{
	size_t n;

	assert_true(rc == KT_EVENT_HINT || rc == KT_EVENT_IGNORED || rc == KT_EVENT_BAD);
	assert_true(ev.n_ids <= KT_EVENT_MAX_IDS);
	if (rc != KT_EVENT_HINT)
		assert_int_equal(ev.n_ids, 0);
	else
		assert_true(ev.n_ids > 0);
	for (size_t i = 0; i < ev.n_ids; i++)
		assert_non_null(memchr(ev.ids[i], '\0', sizeof(ev.ids[i])));
	assert_non_null(memchr(ev.name, '\0', sizeof(ev.name)));
	assert_non_null(memchr(ev.source_region, '\0', sizeof(ev.source_region)));
	n = strnlen(why, sizeof(why));
	assert_true(n > 0 && n < sizeof(why));
	for (size_t i = 0; i < n; i++) {
		if (why[i] < 0x20 || why[i] >= 0x7f)
			fail_msg("why holds byte 0x%02x: %s", (unsigned char)why[i], why);
	}
}

static int parse_n(const char *body, size_t len)
{
	int rc;

	memset(&ev, 0x5a, sizeof(ev));
	memset(why, 0x5a, sizeof(why));
	rc = kt_event_parse(body, len, &ev, why, sizeof(why));
	check_invariants(rc);
	return rc;
}

static int parse(const char *body)
{
	return parse_n(body, strlen(body));
}

static void expect_bad(const char *body, const char *reason)
{
	int rc = parse(body);

	if (rc != KT_EVENT_BAD)
		fail_msg("not refused (%d, %s): %.200s", rc, why, body);
	if (reason != NULL && strstr(why, reason) == NULL)
		fail_msg("why \"%s\" does not say \"%s\"", why, reason);
}

static void expect_ignored(const char *body, const char *reason)
{
	int rc = parse(body);

	if (rc != KT_EVENT_IGNORED)
		fail_msg("not ignored (%d, %s): %.200s", rc, why, body);
	if (reason != NULL && strstr(why, reason) == NULL)
		fail_msg("why \"%s\" does not say \"%s\"", why, reason);
}

/* A hint of name in region, with exactly the ids given (NULL-terminated). */
static void expect_hint(const char *body, const char *name, const char *region, ...)
{
	const char *id;
	size_t n = 0;
	va_list ap;
	int rc = parse(body);

	if (rc != KT_EVENT_HINT)
		fail_msg("no hint (%d, %s): %.300s", rc, why, body);
	assert_string_equal(ev.name, name);
	assert_string_equal(ev.source_region, region);
	va_start(ap, region);
	while ((id = va_arg(ap, const char *)) != NULL) {
		if (n >= ev.n_ids)
			fail_msg("id %zu (%s) missing", n, id);
		assert_string_equal(ev.ids[n], id);
		n++;
	}
	va_end(ap);
	assert_int_equal(ev.n_ids, n);
}

static char big[600 * 1024];

/* An EventBridge event of CloudTrail: detail-type, eventName and the rest
 * of detail (which must start with a comma when not empty). */
static const char *ct(const char *dtype, const char *name, const char *rest)
{
	snprintf(big, sizeof(big),
		 "{\"version\":\"0\",\"id\":\"0d1e2f3a-4b5c-6d7e-8f90-a1b2c3d4e5f6\","
		 "\"detail-type\":\"%s\",\"source\":\"aws.secretsmanager\","
		 "\"account\":\"123456789012\",\"time\":\"2024-05-02T10:11:12Z\","
		 "\"region\":\"eu-west-1\",\"resources\":[],"
		 "\"detail\":{\"eventVersion\":\"1.08\",\"eventTime\":\"2024-05-02T10:11:12Z\","
		 "\"eventSource\":\"secretsmanager.amazonaws.com\",\"eventName\":\"%s\","
		 "\"awsRegion\":\"eu-west-1\"%s}}",
		 dtype, name, rest);
	return big;
}

static const char *api(const char *name, const char *rest)
{
	return ct("AWS API Call via CloudTrail", name, rest);
}

/* A PutSecretValue call through CloudTrail, as EventBridge delivers it. */
static const char put_secret_value[] =
	"{\n"
	"  \"version\": \"0\",\n"
	"  \"id\": \"6f4c1a2b-3d5e-4f60-8a7b-9c0d1e2f3a4b\",\n"
	"  \"detail-type\": \"AWS API Call via CloudTrail\",\n"
	"  \"source\": \"aws.secretsmanager\",\n"
	"  \"account\": \"123456789012\",\n"
	"  \"time\": \"2024-05-02T10:11:12Z\",\n"
	"  \"region\": \"eu-west-1\",\n"
	"  \"resources\": [],\n"
	"  \"detail\": {\n"
	"    \"eventVersion\": \"1.09\",\n"
	"    \"userIdentity\": {\n"
	"      \"type\": \"AssumedRole\",\n"
	"      \"principalId\": \"AROAEXAMPLEID:rotator\",\n"
	"      \"arn\": \"arn:aws:sts::123456789012:assumed-role/rotator/rotator\",\n"
	"      \"accountId\": \"123456789012\",\n"
	"      \"sessionContext\": {\n"
	"        \"sessionIssuer\": {\"type\": \"Role\", \"userName\": \"rotator\"},\n"
	"        \"attributes\": {\"creationDate\": \"2024-05-02T10:00:00Z\",\n"
	"                       \"mfaAuthenticated\": \"false\"}\n"
	"      }\n"
	"    },\n"
	"    \"eventTime\": \"2024-05-02T10:11:12Z\",\n"
	"    \"eventSource\": \"secretsmanager.amazonaws.com\",\n"
	"    \"eventName\": \"PutSecretValue\",\n"
	"    \"awsRegion\": \"eu-west-1\",\n"
	"    \"sourceIPAddress\": \"192.0.2.10\",\n"
	"    \"userAgent\": \"aws-cli/2.15.0\",\n"
	"    \"requestParameters\": {\n"
	"      \"secretId\": \"prod/db\",\n"
	"      \"clientRequestToken\": \"EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE\"\n"
	"    },\n"
	"    \"responseElements\": {\n"
	"      \"arn\": \"" ARN "\"\n"
	"    },\n"
	"    \"requestID\": \"EXAMPLE2-90ab-cdef-fedc-ba987EXAMPLE\",\n"
	"    \"eventID\": \"EXAMPLE3-90ab-cdef-fedc-ba987EXAMPLE\",\n"
	"    \"readOnly\": false,\n"
	"    \"eventType\": \"AwsApiCall\",\n"
	"    \"managementEvent\": true,\n"
	"    \"recipientAccountId\": \"123456789012\",\n"
	"    \"eventCategory\": \"Management\",\n"
	"    \"tlsDetails\": {\"tlsVersion\": \"TLSv1.3\"}\n"
	"  }\n"
	"}\n";

/* A rotation that succeeded: a service event, the secret in
 * additionalEventData.SecretId, no resources. */
static const char rotation_succeeded[] =
	"{\"version\":\"0\",\"id\":\"1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809\","
	"\"detail-type\":\"AWS Service Event via CloudTrail\",\"source\":\"aws.secretsmanager\","
	"\"account\":\"123456789012\",\"time\":\"2024-05-02T10:20:00Z\",\"region\":\"us-west-2\","
	"\"resources\":[],"
	"\"detail\":{\"eventVersion\":\"1.08\","
	"\"userIdentity\":{\"accountId\":\"123456789012\","
	"\"invokedBy\":\"secretsmanager.amazonaws.com\"},"
	"\"eventTime\":\"2024-05-02T10:20:00Z\",\"eventSource\":\"secretsmanager.amazonaws.com\","
	"\"eventName\":\"RotationSucceeded\",\"awsRegion\":\"us-west-2\","
	"\"sourceIPAddress\":\"secretsmanager.amazonaws.com\","
	"\"userAgent\":\"secretsmanager.amazonaws.com\","
	"\"requestParameters\":null,\"responseElements\":null,"
	"\"additionalEventData\":{\"SecretId\":"
	"\"arn:aws:secretsmanager:us-west-2:123456789012:secret:app/api-key-Zx9Yw8\"},"
	"\"requestID\":\"Rotation-arn:aws:secretsmanager:us-west-2:123456789012:secret:app/"
	"api-key-Zx9Yw8-0a1b\","
	"\"eventID\":\"2b3c4d5e-6f70-8192-a3b4-c5d6e7f8091a\",\"readOnly\":false,"
	"\"eventType\":\"AwsServiceEvent\",\"managementEvent\":true,"
	"\"recipientAccountId\":\"123456789012\",\"eventCategory\":\"Management\"}}";

/* The native event of a staging label that moved. */
static const char label_updated[] =
	"{\"version\":\"0\",\"id\":\"3c4d5e6f-7081-92a3-b4c5-d6e7f8091a2b\","
	"\"detail-type\":\"Secret Label Updated\",\"source\":\"aws.secretsmanager\","
	"\"account\":\"123456789012\",\"time\":\"2024-05-02T10:20:01Z\",\"region\":\"us-west-2\","
	"\"resources\":[\"arn:aws:secretsmanager:us-west-2:123456789012:secret:mySecret-a1b2c3\"],"
	"\"detail\":{\"name\":\"mySecret\",\"labelUpdated\":\"AWSCURRENT\","
	"\"versionId\":\"a1b2c3d4-5678-90ab-cdef-EXAMPLE11111\"}}";

/* body inside an SNS notification, as SNS delivers it to SQS without raw
 * message delivery. */
static char *sns(const char *type, const char *message)
{
	struct json_object *o = json_object_new_object();
	char *s;

	json_object_object_add(o, "Type", json_object_new_string(type));
	json_object_object_add(o, "MessageId",
			       json_object_new_string("22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324"));
	json_object_object_add(o, "TopicArn",
			       json_object_new_string(
				       "arn:aws:sns:eu-west-1:123456789012:rotations"));
	if (message != NULL)
		json_object_object_add(o, "Message", json_object_new_string(message));
	json_object_object_add(o, "Timestamp", json_object_new_string("2024-05-02T10:11:13.000Z"));
	json_object_object_add(o, "SignatureVersion", json_object_new_string("1"));
	json_object_object_add(o, "Signature", json_object_new_string("EXAMPLEpH+..."));
	json_object_object_add(
		o, "SigningCertURL",
		json_object_new_string(
			"https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-"
			"0000000000000000000000.pem"));
	json_object_object_add(
		o, "UnsubscribeURL",
		json_object_new_string(
			"https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe&"
			"SubscriptionArn=arn:aws:sns:eu-west-1:123456789012:rotations:"
			"c9135db0-26c4-47ec-8998-413945fb5a96"));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	assert_non_null(s);
	return s;
}

static void test_api_calls(void **state)
{
	(void)state;
	expect_hint(put_secret_value, "PutSecretValue", "eu-west-1", ARN, "prod/db", NULL);
	/* DeleteSecret as logged before February 2024: "aRN"; the name
	 * given and the name answered are one id. */
	expect_hint(
		api("DeleteSecret",
		    ",\"requestParameters\":{\"recoveryWindowInDays\":30,\"secretId\":\"MyDb\"},"
		    "\"responseElements\":{\"name\":\"MyDb\",\"deletionDate\":\"May 3, 2024 "
		    "5:51:02 PM\",\"aRN\":\"arn:aws:secretsmanager:eu-west-1:123456789012:"
		    "secret:MyDb-a1b2c3\"}"),
		"DeleteSecret", "eu-west-1",
		"arn:aws:secretsmanager:eu-west-1:123456789012:secret:MyDb-a1b2c3", "MyDb", NULL);
	expect_hint(
		api("CreateSecret",
		    ",\"requestParameters\":{\"name\":\"app/new\",\"clientRequestToken\":\"x\"},"
		    "\"responseElements\":null"),
		"CreateSecret", "eu-west-1", "app/new", NULL);
	expect_hint(
		api("UpdateSecretVersionStage",
		    ",\"requestParameters\":{\"secretId\":\"" ARN "\",\"versionStage\":"
		    "\"AWSCURRENT\",\"moveToVersionId\":\"v2\",\"removeFromVersionId\":\"v1\"}"),
		"UpdateSecretVersionStage", "eu-west-1", ARN, NULL);
	expect_hint(api("RotateSecret", ",\"requestParameters\":{\"secretId\":\"prod/db\"}"),
		    "RotateSecret", "eu-west-1", "prod/db", NULL);
	expect_hint(api("ReplicateSecretToRegions",
			",\"requestParameters\":{\"secretId\":\"prod/db\",\"addReplicaRegions\":"
			"[{\"region\":\"eu-central-1\"}]}"),
		    "ReplicateSecretToRegions", "eu-west-1", "prod/db", NULL);
	static const char *const changes[] = { "UpdateSecret",
					       "RestoreSecret",
					       "CancelRotateSecret",
					       "RemoveRegionsFromReplication",
					       "StopReplicationToReplica",
					       "PutResourcePolicy",
					       "DeleteResourcePolicy",
					       "UpdateSomethingAwsAddsLater" };
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
		expect_hint(api(changes[i], ",\"requestParameters\":{\"secretId\":\"x\"}"),
			    changes[i], "eu-west-1", "x", NULL);
	/* The region of the call wins over the event's. */
	parse(ct("AWS API Call via CloudTrail", "PutSecretValue",
		 ",\"requestParameters\":{\"secretId\":\"x\"}"));
	assert_string_equal(ev.source_region, "eu-west-1");
}

static void test_reads_and_failures_ignored(void **state)
{
	static const char *const reads[] = { "GetSecretValue",    "BatchGetSecretValue",
					     "DescribeSecret",    "ListSecretVersionIds",
					     "GetResourcePolicy", "ValidateResourcePolicy",
					     "GetRandomPassword", "TagResource",
					     "UntagResource",     "FrobnicateSecret" };

	(void)state;
	for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
		expect_ignored(api(reads[i], ",\"requestParameters\":{\"secretId\":\"" ARN "\"}"),
			       "changes no secret");
		assert_string_equal(ev.name, reads[i]);
	}
	expect_ignored(api("ListSecrets", ",\"requestParameters\":null"), "changes no secret");
	/* A refused call changed nothing. */
	expect_ignored(api("PutSecretValue", ",\"errorCode\":\"AccessDenied\",\"errorMessage\":"
					     "\"no\",\"requestParameters\":{\"secretId\":\"x\"}"),
		       "failed (AccessDenied)");
	/* A change that names no secret. */
	expect_ignored(api("PutSecretValue",
			   ",\"requestParameters\":null,\"responseElements\":null"),
		       "names no secret");
	expect_ignored(api("PutSecretValue", ",\"requestParameters\":{\"secretId\":\"\"}"),
		       "names no secret");
}

static void test_service_events(void **state)
{
	static const char *const names[] = { "RotationStarted",        "RotationFailed",
					     "RotationAbandoned",      "StartSecretVersionDelete",
					     "EndSecretVersionDelete", "CancelSecretVersionDelete",
					     "ReplicationSucceeded" };
	const char *sid = "arn:aws:secretsmanager:us-west-2:123456789012:secret:app/api-key-Zx9Yw8";

	(void)state;
	expect_hint(rotation_succeeded, "RotationSucceeded", "us-west-2", sid, NULL);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		expect_hint(ct("AWS Service Event via CloudTrail", names[i],
			       ",\"requestParameters\":null,\"additionalEventData\":"
			       "{\"SecretId\":\"" ARN "\"}"),
			    names[i], "eu-west-1", ARN, NULL);
	/* Seen in the wild: the id under serviceEventDetails. */
	expect_hint(ct("AWS Service Event via CloudTrail", "RotationSucceeded",
		       ",\"serviceEventDetails\":{\"secretId\":\"" ARN "\"}"),
		    "RotationSucceeded", "eu-west-1", ARN, NULL);
	/* And in the CloudTrail record's resources, and EventBridge's. */
	expect_hint(ct("AWS Service Event via CloudTrail", "RotationSucceeded",
		       ",\"resources\":[{\"accountId\":\"123456789012\",\"type\":"
		       "\"AWS::SecretsManager::Secret\",\"ARN\":\"" ARN "\"},"
		       "{\"ARN\":\"arn:aws:kms:eu-west-1:123456789012:key/1234\"},{}]"),
		    "RotationSucceeded", "eu-west-1", ARN, NULL);
	expect_ignored(ct("AWS Service Event via CloudTrail", "RotationSucceeded",
			  ",\"additionalEventData\":{}"),
		       "names no secret");
	expect_ignored(ct("AWS Service Event via CloudTrail", "RotationFailed",
			  ",\"errorCode\":\"InternalFailure\","
			  "\"additionalEventData\":{\"SecretId\":\"x\"}"),
		       "failed");
}

static void test_label_updated(void **state)
{
	(void)state;
	expect_hint(label_updated, "Secret Label Updated", "us-west-2", "mySecret",
		    "arn:aws:secretsmanager:us-west-2:123456789012:secret:mySecret-a1b2c3", NULL);
	expect_bad("{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Label Updated\"}",
		   "without a detail object");
}

static void test_not_for_us(void **state)
{
	(void)state;
	expect_ignored("{}", "no source");
	expect_ignored("{\"detail-type\":\"AWS API Call via CloudTrail\",\"detail\":{}}",
		       "no source");
	expect_ignored("{\"source\":\"aws.ec2\",\"detail-type\":\"EC2 Instance State-change "
		       "Notification\",\"detail\":{\"state\":\"running\"}}",
		       "source \"aws.ec2\" is not aws.secretsmanager");
	expect_ignored("{\"source\":\"aws.secretsmanager\",\"detail\":{}}", "no detail-type");
	expect_ignored("{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Thing "
		       "Happened\",\"detail\":{}}",
		       "is not one keyturnd reads");
	/* A CloudTrail event of another service under the same source. */
	expect_ignored("{\"source\":\"aws.secretsmanager\",\"detail-type\":\"AWS API Call via "
		       "CloudTrail\",\"detail\":{\"eventSource\":\"kms.amazonaws.com\","
		       "\"eventName\":\"Decrypt\"}}",
		       "kms.amazonaws.com");
	expect_ignored(
		"{\"source\":\"aws.secretsmanager\",\"detail-type\":\"AWS API Call via "
		"CloudTrail\",\"detail\":{\"eventSource\":\"secretsmanager.amazonaws.com\"}}",
		"no detail.eventName");
	/* A test message an administrator sends by hand. */
	expect_ignored("{\"hello\":\"world\"}", "no source");
}

static void test_sns(void **state)
{
	char *s, *inner;

	(void)state;
	/* Raw message delivery off: the event is the envelope's Message. */
	s = sns("Notification", put_secret_value);
	expect_hint(s, "PutSecretValue", "eu-west-1", ARN, "prod/db", NULL);
	free(s);
	s = sns("Notification", label_updated);
	expect_hint(s, "Secret Label Updated", "us-west-2", "mySecret",
		    "arn:aws:secretsmanager:us-west-2:123456789012:secret:mySecret-a1b2c3", NULL);
	free(s);
	/* Raw message delivery on: the event itself. */
	expect_hint(rotation_succeeded, "RotationSucceeded", "us-west-2",
		    "arn:aws:secretsmanager:us-west-2:123456789012:secret:app/api-key-Zx9Yw8",
		    NULL);
	s = sns("Notification",
		api("GetSecretValue", ",\"requestParameters\":{\"secretId\":\"x\"}"));
	expect_ignored(s, "GetSecretValue changes no secret");
	free(s);
	/* A cross-account subscription confirms through the queue. */
	s = sns("SubscriptionConfirmation", "You have chosen to subscribe to the topic ...");
	expect_ignored(s, "SubscriptionConfirmation");
	free(s);
	s = sns("UnsubscribeConfirmation", "{}");
	expect_ignored(s, "UnsubscribeConfirmation");
	free(s);
	/* One envelope only. */
	inner = sns("Notification", put_secret_value);
	s = sns("Notification", inner);
	expect_bad(s, "envelope inside");
	free(s);
	free(inner);
	s = sns("Notification", "a text message published to the topic");
	expect_bad(s, "SNS Message: not a JSON object");
	free(s);
	s = sns("Notification", "{\"source\":");
	expect_bad(s, "SNS Message");
	free(s);
	s = sns("Notification", "");
	expect_bad(s, "SNS Message: empty");
	free(s);
	s = sns("Notification", NULL);
	expect_bad(s, "without a Message");
	free(s);
	expect_bad("{\"Type\":\"Notification\",\"Message\":42}", "Message is not a string");
	expect_bad("{\"Type\":7,\"Message\":\"{}\"}", "Type is not a string");
	expect_bad("{\"Type\":\"Notification\",\"Message\":\"{\\\"source\\\":\\\"a\\u0000b\\\"}\"}",
		   "NUL");
}

static void test_garbage(void **state)
{
	static const char *const bad[] = { "",
					   "   \n\t",
					   "not json",
					   "[]",
					   "[{\"source\":\"aws.secretsmanager\"}]",
					   "42",
					   "-1",
					   "\"a string\"",
					   "null",
					   "true",
					   "{",
					   "{\"source\":",
					   "{\"source\":\"aws.secretsmanager\"",
					   "{} x",
					   "{}{}",
					   "{\"a\":1,}",
					   "{\"a\":\"\\x41\"}",
					   "{/* c */}" };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad(bad[i], NULL);
	assert_int_equal(kt_event_parse(NULL, 0, &ev, why, sizeof(why)), KT_EVENT_BAD);
	assert_int_equal(kt_event_parse(NULL, 10, &ev, why, sizeof(why)), KT_EVENT_BAD);
	/* Nothing needs the reason. */
	assert_int_equal(kt_event_parse("{}", 2, &ev, NULL, 0), KT_EVENT_IGNORED);
	assert_int_equal(kt_event_parse("x", 1, &ev, why, 1), KT_EVENT_BAD);
	assert_string_equal(why, "");
	/* White space around the object is fine. */
	expect_ignored(" \r\n\t{}\n\n", "no source");
}

static void test_nul_and_utf8(void **state)
{
	static const char nul_inside[] = "{\"source\":\"aws.secrets\0manager\"}";
	static const char nul_after[] = "{\"source\":\"aws.ec2\"}\0{\"x\":1}";
	static const char nul_before[] = "\0{}";
	char *s;

	(void)state;
	assert_int_equal(parse_n(nul_inside, sizeof(nul_inside) - 1), KT_EVENT_BAD);
	assert_int_equal(parse_n(nul_after, sizeof(nul_after) - 1), KT_EVENT_BAD);
	assert_int_equal(parse_n(nul_before, sizeof(nul_before) - 1), KT_EVENT_BAD);
	assert_int_equal(parse_n("{}\0", 3), KT_EVENT_BAD);
	/* An escaped NUL in a member keyturnd reads is refused, not cut. */
	expect_bad("{\"source\":\"aws.secretsmanager\\u0000evil\"}", "NUL");
	expect_bad(api("PutSecretValue", ",\"requestParameters\":{\"secretId\":\"db\\u0000x\"}"),
		   "NUL");
	/* Invalid UTF-8, anywhere. */
	expect_bad("{\"source\":\"aws.\xff\"}", "not JSON");
	expect_bad("{\"other\":\"\xc3\x28\"}", "not JSON");
	/* json-c lets an encoded surrogate through; in an id it is refused. */
	expect_bad(api("PutSecretValue", ",\"requestParameters\":{\"secretId\":\"\xed\xa0\x80\"}"),
		   "byte 0xed");
	/* Well-formed UTF-8 in an id is still no secret id. */
	expect_bad(api("PutSecretValue", ",\"requestParameters\":{\"secretId\":\"caf\xc3\xa9\"}"),
		   "byte 0xc3");
	expect_bad(api("PutSecretValue", ",\"requestParameters\":{\"secretId\":\"a b\"}"),
		   "byte 0x20");
	expect_bad(api("PutSecretValue", ",\"requestParameters\":{\"secretId\":\"a\\nb\"}"),
		   "byte 0x0a");
	/* Control characters and non-ASCII in what is quoted stay escaped. */
	s = sns("Notification", "{\"source\":\"\x01\x1b[31mred\xc3\xa9\"}");
	expect_ignored(s, "source \"\\x01\\x1b[31mred\\xc3\\xa9\" is not");
	free(s);
}

static void test_sizes(void **state)
{
	char *buf = malloc(1024 * 1024 + 1);
	char *id = malloc(5001);
	size_t n;

	(void)state;
	assert_non_null(buf);
	assert_non_null(id);
	/* 1 MiB of '[': refused for its size before any parsing. */
	memset(buf, '[', 1024 * 1024);
	assert_int_equal(parse_n(buf, 1024 * 1024), KT_EVENT_BAD);
	assert_non_null(strstr(why, "more than 262144"));
	/* 256 KiB of '{"a":' is within the size, but far too deep. */
	for (n = 0; n + 5 <= KT_EVENT_BODY_MAX; n += 5)
		memcpy(buf + n, "{\"a\":", 5);
	assert_int_equal(parse_n(buf, n), KT_EVENT_BAD);
	/* 20 levels in all are read, 21 are not. */
	n = (size_t)snprintf(buf, 4096, "{\"source\":\"aws.ec2\",\"x\":");
	for (int i = 0; i < 19; i++)
		n += (size_t)snprintf(buf + n, 4096 - n, "[");
	for (int i = 0; i < 19; i++)
		n += (size_t)snprintf(buf + n, 4096 - n, "]");
	n += (size_t)snprintf(buf + n, 4096 - n, "}");
	assert_int_equal(parse_n(buf, n), KT_EVENT_IGNORED);
	n = (size_t)snprintf(buf, 4096, "{\"source\":\"aws.ec2\",\"x\":");
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(buf + n, 4096 - n, "[");
	for (int i = 0; i < 20; i++)
		n += (size_t)snprintf(buf + n, 4096 - n, "]");
	n += (size_t)snprintf(buf + n, 4096 - n, "}");
	assert_int_equal(parse_n(buf, n), KT_EVENT_BAD);
	assert_non_null(strstr(why, "not JSON"));
	/* Exactly the limit is read; a byte more is not. */
	memset(buf, ' ', KT_EVENT_BODY_MAX + 1);
	memcpy(buf, "{\"source\":\"aws.ec2\"}", 20);
	assert_int_equal(parse_n(buf, KT_EVENT_BODY_MAX), KT_EVENT_IGNORED);
	assert_int_equal(parse_n(buf, KT_EVENT_BODY_MAX + 1), KT_EVENT_BAD);
	/* Ids up to 2048 bytes are kept; one of 2049 or 5000 is refused. */
	memset(id, 'a', 5000);
	id[KT_EVENT_ID_MAX] = '\0';
	snprintf(buf, 8192, ",\"requestParameters\":{\"secretId\":\"%s\"}", id);
	expect_hint(api("PutSecretValue", buf), "PutSecretValue", "eu-west-1", id, NULL);
	id[KT_EVENT_ID_MAX] = 'a';
	id[KT_EVENT_ID_MAX + 1] = '\0';
	snprintf(buf, 8192, ",\"requestParameters\":{\"secretId\":\"%s\"}", id);
	expect_bad(api("PutSecretValue", buf), "an id of 2049 bytes, more than 2048");
	id[KT_EVENT_ID_MAX + 1] = 'a';
	id[5000] = '\0';
	snprintf(buf, 8192, ",\"requestParameters\":{\"secretId\":\"%s\"}", id);
	expect_bad(api("PutSecretValue", buf),
		   "detail.requestParameters.secretId: an id of 5000 bytes");
	free(id);
	free(buf);
}

static void test_many_resources(void **state)
{
	char *buf = malloc(64 * 1024);
	size_t n;

	(void)state;
	assert_non_null(buf);
	n = (size_t)snprintf(buf, 64 * 1024,
			     "{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Label "
			     "Updated\",\"detail\":{},\"resources\":[");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(buf + n, 64 * 1024 - n,
				      "%s\"arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
				      "s%d-Ab12Cd\"",
				      i > 0 ? "," : "", i);
	snprintf(buf + n, 64 * 1024 - n, "]}");
	assert_int_equal(parse(buf), KT_EVENT_HINT);
	assert_int_equal(ev.n_ids, KT_EVENT_MAX_IDS);
	assert_string_equal(ev.ids[0], "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
				       "s0-Ab12Cd");
	assert_string_equal(ev.ids[7], "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
				       "s7-Ab12Cd");
	assert_non_null(strstr(why, "more dropped"));
	/* The same id 100 times is one. */
	n = (size_t)snprintf(buf, 64 * 1024,
			     "{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Label "
			     "Updated\",\"detail\":{\"name\":\"s\"},\"resources\":[");
	for (int i = 0; i < 100; i++)
		n += (size_t)snprintf(buf + n, 64 * 1024 - n, "%s\"" ARN "\"", i > 0 ? "," : "");
	snprintf(buf + n, 64 * 1024 - n, "]}");
	expect_hint(buf, "Secret Label Updated", "", "s", ARN, NULL);
	assert_null(strstr(why, "dropped"));
	free(buf);
}

static void test_wrong_types(void **state)
{
	(void)state;
	expect_bad("{\"source\":[\"aws.secretsmanager\"]}", "source is not a string");
	expect_bad("{\"source\":\"aws.secretsmanager\",\"detail-type\":1}",
		   "detail-type is not a string");
	expect_bad("{\"source\":\"aws.secretsmanager\",\"detail-type\":\"AWS API Call via "
		   "CloudTrail\",\"detail\":\"x\"}",
		   "detail is not an object");
	expect_bad(api("PutSecretValue", ",\"requestParameters\":{\"secretId\":7}"),
		   "detail.requestParameters.secretId is not a string");
	expect_bad(api("PutSecretValue", ",\"requestParameters\":[\"x\"]"),
		   "detail.requestParameters is not an object");
	expect_bad(api("PutSecretValue", ",\"responseElements\":{\"arn\":{}}"),
		   "detail.responseElements.arn is not a string");
	expect_bad(api("PutSecretValue", ",\"resources\":\"" ARN "\""),
		   "detail.resources is not an array");
	expect_bad(api("PutSecretValue", ",\"resources\":[{\"ARN\":1}]"),
		   "detail.resources[0].ARN is not a string");
	expect_bad("{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Label Updated\","
		   "\"detail\":{},\"resources\":[\"" ARN "\",3]}",
		   "resources[1] is neither");
	expect_bad(api("PutSecretValue", ",\"eventName\":\"Put Secret\""), NULL);
	expect_bad(ct("AWS API Call via CloudTrail",
		      "PutSecretValuePutSecretValuePutSecretValuePutSecretValuePutSecretValue", ""),
		   "is not an event name");
	expect_bad(api("PutSecretValue", ",\"errorCode\":false"), "errorCode is not a string");
	/* The region must look like one. */
	expect_bad("{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Label Updated\","
		   "\"region\":\"EU West\",\"detail\":{\"name\":\"x\"}}",
		   "region \"EU West\" is not a region");
	expect_bad(
		"{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Label Updated\","
		"\"region\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"detail\":{\"name\":\"x\"}}",
		"is not a region");
	/* Null is as good as absent. */
	expect_hint("{\"source\":\"aws.secretsmanager\",\"detail-type\":\"Secret Label Updated\","
		    "\"region\":null,\"resources\":null,\"detail\":{\"name\":\"x\"}}",
		    "Secret Label Updated", "", "x", NULL);
}

/* What is quoted from a message is short and escaped. */
static void test_why_bounded(void **state)
{
	char *buf = malloc(16 * 1024);
	char small[8];

	(void)state;
	assert_non_null(buf);
	memcpy(buf, "{\"source\":\"", 11);
	memset(buf + 11, 'A', 10000);
	memcpy(buf + 10011, "\"}", 3);
	expect_ignored(buf, "...\" is not aws.secretsmanager");
	assert_true(strlen(why) < 64 + 40);
	assert_int_equal(kt_event_parse(buf, strlen(buf), &ev, small, sizeof(small)),
			 KT_EVENT_IGNORED);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	free(buf);
}

static void test_match_equal_and_names(void **state)
{
	(void)state;
	assert_true(kt_event_matches("prod/db", "prod/db"));
	assert_true(kt_event_matches(ARN, ARN));
	assert_false(kt_event_matches("prod/db", "prod/DB"));
	assert_false(kt_event_matches("prod/db", "prod/db2"));
	assert_false(kt_event_matches("", ""));
	assert_false(kt_event_matches(NULL, "x"));
	assert_false(kt_event_matches("x", NULL));
	/* A name against a full ARN: NAME less its six-character suffix. */
	assert_true(kt_event_matches(ARN, "prod/db"));
	assert_true(kt_event_matches("prod/db", ARN));
	assert_true(kt_event_matches("arn:aws:secretsmanager:eu-west-1:1:secret:a_b+c=d.e@f-g-"
				     "Q1w2E3",
				     "a_b+c=d.e@f-g"));
	assert_true(kt_event_matches("arn:aws-cn:secretsmanager:cn-north-1:1:secret:rds!db-"
				     "00aa11-Zz99Yy",
				     "rds!db-00aa11"));
	/* A name against a partial ARN: NAME whole. */
	assert_true(kt_event_matches("arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db",
				     "prod/db"));
	assert_false(kt_event_matches(ARN, "prod"));
	assert_false(kt_event_matches(ARN, "db"));
	assert_false(kt_event_matches(ARN, "prod/db-Ab12C"));
	/* The suffix is "-" and six letters or digits, nothing else. */
	assert_false(kt_event_matches("arn:aws:secretsmanager:r:1:secret:db-Ab12C", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager:r:1:secret:db-Ab12Cde", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager:r:1:secret:db_Ab12Cd", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager:r:1:secret:db-Ab_2Cd", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager:r:1:secret:dbx-Ab12Cd", "db"));
	/* Two names never match but equal. */
	assert_false(kt_event_matches("db-Ab12Cd", "db"));
	assert_false(kt_event_matches("db", "db-Ab12Cd"));
	/* Not a secret ARN: only equality. */
	assert_false(kt_event_matches("arn:aws:ssm:eu-west-1:1:parameter/db", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager:eu-west-1:1:other:db-Ab12Cd", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager:eu-west-1:1:secret:", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager::1:secret:db-Ab12Cd", "db"));
	assert_false(kt_event_matches("arn:aws:secretsmanager:eu-west-1:1:secret:db", "x:db"));
}

static void test_match_arns(void **state)
{
	const char *partial = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db";

	(void)state;
	/* Full against partial, either way round. */
	assert_true(kt_event_matches(ARN, partial));
	assert_true(kt_event_matches(partial, ARN));
	/* Everything before NAME must be the same. */
	assert_false(kt_event_matches(ARN, "arn:aws:secretsmanager:eu-west-2:123456789012:secret:"
					   "prod/db"));
	assert_false(kt_event_matches(ARN, "arn:aws:secretsmanager:eu-west-1:210987654321:secret:"
					   "prod/db"));
	assert_false(kt_event_matches(ARN, "arn:aws-us-gov:secretsmanager:eu-west-1:123456789012:"
					   "secret:prod/db"));
	/* Two full ARNs that differ are two secrets (deleted and made again). */
	assert_false(kt_event_matches(ARN, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
					   "prod/db-Zz99Yy"));
	/* A partial ARN of another name. */
	assert_false(kt_event_matches(ARN, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:"
					   "prod"));
	assert_false(kt_event_matches(partial, "arn:aws:secretsmanager:eu-west-1:123456789012:"
					       "secret:prod/db2-Ab12Cd"));
}

/* A name that itself ends like a suffix: "db-abcdef". */
static void test_match_ambiguous(void **state)
{
	const char *p = "arn:aws:secretsmanager:eu-west-1:1:secret:";
	char a[256], b[256];

	(void)state;
	/* Its own full ARN carries a second suffix: matched. */
	snprintf(a, sizeof(a), "%sdb-abcdef-Q1w2E3", p);
	assert_true(kt_event_matches(a, "db-abcdef"));
	/* ... and is not "db"'s. */
	assert_false(kt_event_matches(a, "db"));
	/* ...:secret:db-abcdef is its partial ARN, or the full ARN of "db":
	 * both readings match (a false match costs one DescribeSecret). */
	snprintf(a, sizeof(a), "%sdb-abcdef", p);
	assert_true(kt_event_matches(a, "db-abcdef"));
	assert_true(kt_event_matches(a, "db"));
	/* Its partial ARN against "db"'s partial ARN: the first may be "db"'s
	 * full one. */
	snprintf(b, sizeof(b), "%sdb", p);
	assert_true(kt_event_matches(a, b));
	/* Against its own full ARN: matched, as partial against full. */
	snprintf(b, sizeof(b), "%sdb-abcdef-Q1w2E3", p);
	assert_true(kt_event_matches(a, b));
	/* Against "db"'s full ARN of another suffix: no. */
	snprintf(b, sizeof(b), "%sdb-Zz99Yy", p);
	assert_false(kt_event_matches(a, b));
}

/* An event's ids through kt_event_matches, as keyturnd will use them. */
/* When it happened: EventBridge's time, else CloudTrail's eventTime;
 * missing or unreadable is 0, and never makes the event bad. */
static void test_event_time(void **state)
{
	static const char *const cases[][2] = {
		{ "\"time\":\"2024-05-02T10:11:12Z\",", "1714644672" },
		{ "\"time\":\"2024-05-02T10:11:12.345Z\",", "1714644672" },
		{ "\"time\":\"2024-05-02 10:11:12\",", "0" },
		{ "\"time\":\"2024-13-02T10:11:12Z\",", "0" },
		{ "\"time\":\"2024-05-02T10:11:12+02:00\",", "0" },
		{ "\"time\":17146446,", "0" },
		{ "", "1714644000" }, /* detail.eventTime below */
	};
	char body[1024];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(body, sizeof(body),
			 "{%s\"detail-type\":\"AWS API Call via CloudTrail\","
			 "\"source\":\"aws.secretsmanager\",\"region\":\"eu-west-1\","
			 "\"detail\":{\"eventSource\":\"secretsmanager.amazonaws.com\","
			 "\"eventName\":\"PutSecretValue\",\"eventTime\":\"2024-05-02T10:00:00Z\","
			 "\"requestParameters\":{\"secretId\":\"app/db\"}}}",
			 cases[i][0]);
		if (parse(body) != KT_EVENT_HINT)
			fail_msg("case %zu: no hint: %s", i, why);
		assert_int_equal((long long)ev.time, atoll(cases[i][1]));
	}
}

static void test_parse_then_match(void **state)
{
	bool hit = false;

	(void)state;
	assert_int_equal(parse(put_secret_value), KT_EVENT_HINT);
	for (size_t i = 0; i < ev.n_ids; i++)
		hit = hit || kt_event_matches(ev.ids[i], "prod/db");
	assert_true(hit);
	hit = false;
	for (size_t i = 0; i < ev.n_ids; i++)
		hit = hit || kt_event_matches(ev.ids[i], "prod/db2");
	assert_false(hit);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_calls),
		cmocka_unit_test(test_reads_and_failures_ignored),
		cmocka_unit_test(test_service_events),
		cmocka_unit_test(test_label_updated),
		cmocka_unit_test(test_not_for_us),
		cmocka_unit_test(test_sns),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_nul_and_utf8),
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_many_resources),
		cmocka_unit_test(test_wrong_types),
		cmocka_unit_test(test_why_bounded),
		cmocka_unit_test(test_match_equal_and_names),
		cmocka_unit_test(test_match_arns),
		cmocka_unit_test(test_match_ambiguous),
		cmocka_unit_test(test_parse_then_match),
		cmocka_unit_test(test_event_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
