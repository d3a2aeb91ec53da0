/* AWS errors: parsed from an answer's __type and message, never decided on
 * the HTTP status alone, and mapped to the small enum keyturn acts on. */
#ifndef KT_AWSERR_H
#define KT_AWSERR_H

#include <stdbool.h>
#include <stddef.h>

enum aws_errc {
	AWS_OK = 0,
	AWS_ERR_NOT_FOUND,     /* ResourceNotFoundException */
	AWS_ERR_ACCESS_DENIED, /* AccessDeniedException, not authorized */
	AWS_ERR_AUTH,          /* bad key or signature: UnrecognizedClient, InvalidSignature, ... */
	AWS_ERR_EXPIRED_TOKEN, /* ExpiredTokenException: credentials must be renewed */
	AWS_ERR_CLOCK_SKEW,    /* RequestExpired, RequestTimeTooSkewed, signature expired */
	AWS_ERR_THROTTLED,     /* ThrottlingException, TooManyRequests, RequestLimitExceeded, ... */
	AWS_ERR_INVALID_REQUEST, /* InvalidRequestException, InvalidParameterException,
				    ValidationException */
	AWS_ERR_DECRYPTION,      /* DecryptionFailure (KMS) */
	AWS_ERR_EXISTS,          /* ResourceExistsException */
	AWS_ERR_LIMIT,           /* LimitExceededException */
	AWS_ERR_SERVER,          /* InternalServiceError, InternalFailure, a 5xx answer */
	AWS_ERR_TRANSPORT,       /* connection refused, reset, TLS failure */
	AWS_ERR_TIMEOUT,         /* connect or total timeout */
	AWS_ERR_TLS,             /* the server's certificate was refused: not retried */
	AWS_ERR_MALFORMED,       /* an answer that is not what the API documents */
	AWS_ERR_NO_CREDENTIALS,  /* the credential chain found nothing */
	AWS_ERR_CONFIG,          /* bad region, endpoint, profile file */
	AWS_ERR_OTHER,           /* any other __type */
};

struct aws_error {
	enum aws_errc code;
	long http_status;  /* 0 when no answer came */
	char type[128];    /* the __type after stripping, or a local name */
	char message[512]; /* AWS's message or ours; never holds a secret value */
};

/* Clears e to AWS_OK. */
void aws_error_clear(struct aws_error *e);

/* Sets e to a local error with a printf-style message. */
void aws_error_set(struct aws_error *e, enum aws_errc code, const char *type, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Fills e from a failed answer. body may be JSON ({"__type":..,"message":..}),
 * XML (moto's signature errors, STS) or anything else; amzn_type is the
 * X-Amzn-ErrorType header or NULL. Always leaves e->code != AWS_OK. */
void aws_error_parse(long http_status, const char *body, size_t len, const char *amzn_type,
		     struct aws_error *e);

/* Strips "namespace#" and ":suffix" from a __type: "aws.foo#Bar:http://x" -> "Bar". */
void aws_error_type_strip(const char *in, char *out, size_t outlen);

/* Maps a stripped __type (and, for signature errors, the message) to a code. */
enum aws_errc aws_error_classify(const char *type, const char *message);

/* A stable lower-case name for a code ("not_found", "throttled", ...). */
const char *aws_errc_name(enum aws_errc code);

#endif
