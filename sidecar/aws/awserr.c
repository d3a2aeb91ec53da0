/* Parses AWS error answers (JSON __type/message, or the XML that STS and
 * moto's signature checks send) and maps them to the codes keyturn acts on.
 * The HTTP status is recorded but never decides the class on its own, except
 * that a 5xx with nothing parseable is a server error. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "awserr.h"

void aws_error_clear(struct aws_error *e)
{
	memset(e, 0, sizeof(*e));
	e->code = AWS_OK;
}

void aws_error_set(struct aws_error *e, enum aws_errc code, const char *type, const char *fmt, ...)
{
	va_list ap;

	if (e == NULL)
		return;
	e->code = code;
	snprintf(e->type, sizeof(e->type), "%s", type != NULL ? type : aws_errc_name(code));
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

void aws_error_type_strip(const char *in, char *out, size_t outlen)
{
	const char *start = strrchr(in, '#');
	size_t n;

	start = start != NULL ? start + 1 : in;
	n = strcspn(start, ":");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, start, n);
	out[n] = '\0';
}

static const struct {
	const char *type;
	enum aws_errc code;
} error_types[] = {
	{ "ResourceNotFoundException", AWS_ERR_NOT_FOUND },
	{ "AccessDeniedException", AWS_ERR_ACCESS_DENIED },
	{ "AccessDenied", AWS_ERR_ACCESS_DENIED },
	{ "NotAuthorized", AWS_ERR_ACCESS_DENIED },
	{ "UnauthorizedOperation", AWS_ERR_ACCESS_DENIED },
	{ "UnrecognizedClientException", AWS_ERR_AUTH },
	{ "InvalidClientTokenId", AWS_ERR_AUTH },
	{ "IncompleteSignature", AWS_ERR_AUTH },
	{ "IncompleteSignatureException", AWS_ERR_AUTH },
	{ "InvalidSignatureException", AWS_ERR_AUTH },
	{ "SignatureDoesNotMatch", AWS_ERR_AUTH },
	{ "MissingAuthenticationToken", AWS_ERR_AUTH },
	{ "MissingAuthenticationTokenException", AWS_ERR_AUTH },
	{ "InvalidIdentityToken", AWS_ERR_AUTH },
	{ "ExpiredTokenException", AWS_ERR_EXPIRED_TOKEN },
	{ "ExpiredToken", AWS_ERR_EXPIRED_TOKEN },
	{ "RequestExpired", AWS_ERR_CLOCK_SKEW },
	{ "RequestTimeTooSkewed", AWS_ERR_CLOCK_SKEW },
	{ "RequestInTheFuture", AWS_ERR_CLOCK_SKEW },
	{ "ThrottlingException", AWS_ERR_THROTTLED },
	{ "Throttling", AWS_ERR_THROTTLED },
	{ "ThrottledException", AWS_ERR_THROTTLED },
	{ "RequestThrottledException", AWS_ERR_THROTTLED },
	{ "TooManyRequestsException", AWS_ERR_THROTTLED },
	{ "ProvisionedThroughputExceededException", AWS_ERR_THROTTLED },
	{ "TransactionInProgressException", AWS_ERR_THROTTLED },
	{ "RequestLimitExceeded", AWS_ERR_THROTTLED },
	{ "BandwidthLimitExceeded", AWS_ERR_THROTTLED },
	{ "SlowDown", AWS_ERR_THROTTLED },
	{ "PriorRequestNotComplete", AWS_ERR_THROTTLED },
	{ "EC2ThrottledException", AWS_ERR_THROTTLED },
	{ "InvalidRequestException", AWS_ERR_INVALID_REQUEST },
	{ "InvalidParameterException", AWS_ERR_INVALID_REQUEST },
	{ "InvalidParameterValue", AWS_ERR_INVALID_REQUEST },
	{ "InvalidNextTokenException", AWS_ERR_INVALID_REQUEST },
	{ "ValidationException", AWS_ERR_INVALID_REQUEST },
	{ "ValidationError", AWS_ERR_INVALID_REQUEST },
	{ "MalformedPolicyDocumentException", AWS_ERR_INVALID_REQUEST },
	{ "SerializationException", AWS_ERR_INVALID_REQUEST },
	{ "DecryptionFailure", AWS_ERR_DECRYPTION },
	{ "EncryptionFailure", AWS_ERR_DECRYPTION },
	{ "ResourceExistsException", AWS_ERR_EXISTS },
	{ "LimitExceededException", AWS_ERR_LIMIT },
	{ "PreconditionNotMetException", AWS_ERR_INVALID_REQUEST },
	{ "InternalServiceError", AWS_ERR_SERVER },
	{ "InternalServiceErrorException", AWS_ERR_SERVER },
	{ "InternalFailure", AWS_ERR_SERVER },
	{ "InternalError", AWS_ERR_SERVER },
	{ "ServiceUnavailable", AWS_ERR_SERVER },
	{ "ServiceUnavailableException", AWS_ERR_SERVER },
};

enum aws_errc aws_error_classify(const char *type, const char *message)
{
	for (size_t i = 0; i < sizeof(error_types) / sizeof(error_types[0]); i++) {
		if (strcmp(type, error_types[i].type) != 0)
			continue;
		/* AWS reports an old X-Amz-Date as a signature problem; only the
		 * message tells it apart from a wrong key, and only a skew can be
		 * mended by retrying with a corrected clock. */
		if (error_types[i].code == AWS_ERR_AUTH && message != NULL &&
		    (strstr(message, "Signature expired") != NULL ||
		     strstr(message, "Signature not yet current") != NULL))
			return AWS_ERR_CLOCK_SKEW;
		return error_types[i].code;
	}
	return AWS_ERR_OTHER;
}

const char *aws_errc_name(enum aws_errc code)
{
	static const char *const names[] = {
		[AWS_OK] = "ok",
		[AWS_ERR_NOT_FOUND] = "not_found",
		[AWS_ERR_ACCESS_DENIED] = "access_denied",
		[AWS_ERR_AUTH] = "auth",
		[AWS_ERR_EXPIRED_TOKEN] = "expired_token",
		[AWS_ERR_CLOCK_SKEW] = "clock_skew",
		[AWS_ERR_THROTTLED] = "throttled",
		[AWS_ERR_INVALID_REQUEST] = "invalid_request",
		[AWS_ERR_DECRYPTION] = "decryption",
		[AWS_ERR_EXISTS] = "exists",
		[AWS_ERR_LIMIT] = "limit",
		[AWS_ERR_SERVER] = "server",
		[AWS_ERR_TRANSPORT] = "transport",
		[AWS_ERR_TIMEOUT] = "timeout",
		[AWS_ERR_TLS] = "tls",
		[AWS_ERR_MALFORMED] = "malformed",
		[AWS_ERR_NO_CREDENTIALS] = "no_credentials",
		[AWS_ERR_CONFIG] = "config",
		[AWS_ERR_OTHER] = "other",
	};

	if ((size_t)code >= sizeof(names) / sizeof(names[0]) || names[code] == NULL)
		return "other";
	return names[code];
}

/* Copies the text of the first <tag>...</tag> in an XML body into out.
 * Enough for the flat <Error><Code/><Message/></Error> bodies AWS sends. */
static bool xml_tag_text(const char *body, size_t len, const char *tag, char *out, size_t outlen)
{
	char open[64], close[64];
	const char *s, *e, *end = body + len;
	size_t n;

	snprintf(open, sizeof(open), "<%s>", tag);
	snprintf(close, sizeof(close), "</%s>", tag);
	s = memmem(body, len, open, strlen(open));
	if (s == NULL)
		return false;
	s += strlen(open);
	e = memmem(s, (size_t)(end - s), close, strlen(close));
	if (e == NULL)
		return false;
	n = (size_t)(e - s);
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return true;
}

/* Copies a printable, single-line version of s: AWS messages end up in logs. */
static void copy_clean(char *out, size_t outlen, const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0' && i + 1 < outlen; i++)
		out[i] = (s[i] >= 0x20 && s[i] != 0x7f) ? s[i] : ' ';
	out[i] = '\0';
}

static bool parse_json_error(const char *body, size_t len, char *type, size_t typelen, char *msg,
			     size_t msglen)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *obj = NULL, *v;
	bool found = false;

	if (tok == NULL || len > (size_t)0x7fffffff)
		goto out;
	obj = json_tokener_parse_ex(tok, body, (int)len);
	if (obj == NULL || !json_object_is_type(obj, json_type_object))
		goto out;
	if ((json_object_object_get_ex(obj, "__type", &v) ||
	     json_object_object_get_ex(obj, "code", &v) ||
	     json_object_object_get_ex(obj, "Code", &v)) &&
	    json_object_is_type(v, json_type_string)) {
		aws_error_type_strip(json_object_get_string(v), type, typelen);
		found = true;
	}
	if ((json_object_object_get_ex(obj, "message", &v) ||
	     json_object_object_get_ex(obj, "Message", &v)) &&
	    json_object_is_type(v, json_type_string))
		copy_clean(msg, msglen, json_object_get_string(v));
out:
	json_object_put(obj);
	if (tok != NULL)
		json_tokener_free(tok);
	return found;
}

void aws_error_parse(long http_status, const char *body, size_t len, const char *amzn_type,
		     struct aws_error *e)
{
	char type[128] = "", msg[512] = "", raw[512];

	aws_error_clear(e);
	e->http_status = http_status;
	if (body != NULL && len > 0 &&
	    !parse_json_error(body, len, type, sizeof(type), msg, sizeof(msg))) {
		if (xml_tag_text(body, len, "Code", raw, sizeof(raw)))
			aws_error_type_strip(raw, type, sizeof(type));
		if (xml_tag_text(body, len, "Message", raw, sizeof(raw)))
			copy_clean(msg, sizeof(msg), raw);
	}
	if (type[0] == '\0' && amzn_type != NULL && amzn_type[0] != '\0')
		aws_error_type_strip(amzn_type, type, sizeof(type));

	if (type[0] != '\0') {
		e->code = aws_error_classify(type, msg);
		snprintf(e->type, sizeof(e->type), "%s", type);
		snprintf(e->message, sizeof(e->message), "%s", msg[0] ? msg : type);
		return;
	}
	/* Nothing names the error: only then does the status say anything. A
	 * 5xx is the service failing (worth a retry), anything else is an
	 * answer we cannot interpret. */
	if (http_status >= 500) {
		e->code = AWS_ERR_SERVER;
		snprintf(e->type, sizeof(e->type), "HTTP%ld", http_status);
		snprintf(e->message, sizeof(e->message), "the service answered HTTP %ld",
			 http_status);
	} else if (http_status == 429) {
		e->code = AWS_ERR_THROTTLED;
		snprintf(e->type, sizeof(e->type), "HTTP429");
		snprintf(e->message, sizeof(e->message),
			 "the service answered HTTP 429 Too Many Requests");
	} else {
		e->code = AWS_ERR_MALFORMED;
		snprintf(e->type, sizeof(e->type), "HTTP%ld", http_status);
		snprintf(e->message, sizeof(e->message),
			 "the service answered HTTP %ld without an error type", http_status);
	}
}
