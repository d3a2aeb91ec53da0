/* aws_client_call with a json-c object for the request: apart from
 * client.c so that unit tests that script aws_client_call link it too. */
#include "config.h"

#include <errno.h>

#include "client.h"
#include "common/kt_json.h"
#include "common/secmem.h"

int aws_client_call_obj(struct aws_client *c, const char *target, struct json_object *req,
			struct json_object **resp, struct aws_error *err)
{
	size_t len = 0;
	char *body;
	int rc;

	*resp = NULL;
	if (req == NULL) {
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "out of memory");
		return -ENOMEM;
	}
	body = kt_json_dump(req, &len);
	kt_json_put_wiped(req);
	if (body == NULL) {
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "out of memory");
		return -ENOMEM;
	}
	rc = aws_client_call(c, target, body, len, resp, err, NULL);
	kt_free_wiped(body, len);
	return rc;
}
