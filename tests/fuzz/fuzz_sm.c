/* libFuzzer target: the Secrets Manager answer parsers (sidecar/aws/sm.c,
 * sm_json.c) and the AWS error parser (awserr.c). sm.c is linked on its own
 * with this file's aws_client_call(), which answers with the input, as
 * tests/unit/test_sm.c does. The first byte picks the operation; the rest
 * is the answer's body. */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aws/awserr.h"
#include "aws/client.h"
#include "common/kt_json.h"
#include "aws/sm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *answer;
static size_t answer_len;
static int calls;

/* Every call (a paginated one asks again) gets the same answer; a few pages
 * are enough to reach the paging code without looping for long. */
int aws_client_call(struct aws_client *c, const char *target, const char *json, size_t json_len,
		    struct json_object **resp, struct aws_error *err, struct aws_call_stats *stats)
{
	(void)c;
	(void)target;
	(void)json;
	(void)json_len;
	(void)stats;
	if (++calls > 4) {
		aws_error_set(err, AWS_ERR_OTHER, "TooManyPages", "fuzz: page limit");
		return -EIO;
	}
	*resp = kt_json_parse(answer, answer_len);
	if (*resp == NULL) {
		aws_error_set(err, AWS_ERR_MALFORMED, "MalformedAnswer", "not JSON");
		return -EBADMSG;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct aws_client *fake = (struct aws_client *)0x1;
	struct aws_error err;
	unsigned op;

	if (size < 1)
		return 0;
	op = data[0] % 6;
	answer = (const char *)data + 1;
	answer_len = size - 1;
	calls = 0;
	memset(&err, 0, sizeof(err));
	switch (op) {
	case 0: {
		struct sm_value v;

		memset(&v, 0, sizeof(v));
		if (sm_get_secret_value(fake, "app/db", NULL, NULL, &v, &err) == 0)
			sm_value_free(&v);
		break;
	}
	case 1: {
		struct sm_description d;

		memset(&d, 0, sizeof(d));
		if (sm_describe_secret(fake, "app/db", &d, &err) == 0) {
			(void)sm_description_version_for(&d, "AWSCURRENT");
			(void)sm_description_version_for(&d, "AWSPREVIOUS");
			sm_description_free(&d);
		}
		break;
	}
	case 2: {
		static const char *const ids[] = { "app/db", "app/api", "other" };
		struct sm_batch b;

		memset(&b, 0, sizeof(b));
		if (sm_batch_get_secret_value(fake, ids, 3, &b, &err) == 0)
			sm_batch_free(&b);
		break;
	}
	case 3: {
		struct sm_version *vers = NULL;
		size_t n = 0;

		if (sm_list_secret_version_ids(fake, "app/db", false, &vers, &n, &err) == 0)
			sm_versions_free(vers, n);
		break;
	}
	case 4:
		aws_error_parse(400, answer, answer_len, NULL, &err);
		break;
	default:
		aws_error_parse(500, answer, answer_len, "ThrottlingException:http://internal",
				&err);
		break;
	}
	aws_error_clear(&err);
	return 0;
}
