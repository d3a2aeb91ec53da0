/* HTTPS for the AWS client, over libcurl: one reused connection per handle,
 * TLS verified, timeouts, curl's proxy variables, and a cap on answer size.
 * A handle is used by one thread at a time. Programs using this module must
 * ignore SIGPIPE: libcurl runs with CURLOPT_NOSIGNAL (it is thread-safe only
 * so), and then a TLS write to a vanished peer can raise it. */
#ifndef KT_HTTP_H
#define KT_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/kt_buf.h"

#define KT_HTTP_DEFAULT_MAX_BODY (2u * 1024 * 1024)

struct kt_http_opts {
	const char *ca_file;     /* NULL: AWS_CA_BUNDLE, else the system store */
	long connect_timeout_ms; /* 0: 3000 */
	long timeout_ms;         /* total per request; 0: 10000 */
	size_t max_body;         /* 0: KT_HTTP_DEFAULT_MAX_BODY */
	bool no_proxy;           /* ignore the proxy variables (instance metadata) */
	/* When set and it turns true, a request in flight ends within about a
	 * second with -ECANCELED, and no new one starts (a daemon stopping). */
	const atomic_bool *cancel;
};

struct kt_http;

struct kt_http_req {
	const char *method; /* "GET", "POST", "PUT" */
	const char *url;
	const char *const *headers; /* "Name: value" lines */
	size_t nheaders;
	const void *body;
	size_t body_len;
	long timeout_ms; /* 0: the handle's */
};

struct kt_http_resp {
	long status;
	struct kt_buf body;   /* wiped when freed */
	char *date;           /* the Date header, or NULL */
	char *amzn_errortype; /* the X-Amzn-ErrorType header, or NULL */
};

/* Returns 0, -ENOMEM, or -EINVAL (bad CA file or options). */
int kt_http_new(const struct kt_http_opts *opts, struct kt_http **out);
void kt_http_free(struct kt_http *h);

/* Sends one request. Returns 0 when any HTTP answer arrived (whatever its
 * status), or: -ETIMEDOUT, -ECONNREFUSED, -ECONNRESET (cut, truncated),
 * -EHOSTUNREACH (name not resolved), -EKEYREJECTED (the server's
 * certificate did not verify), -EPROTO (other TLS or HTTP failure),
 * -EMSGSIZE (answer over max_body), -ECANCELED (the handle's cancel flag
 * turned true), -ENOMEM, -EIO (other transport failure), -EINVAL. kt_http_last_error() then says
 * what went wrong, without secrets. */
int kt_http_do(struct kt_http *h, const struct kt_http_req *req, struct kt_http_resp *resp);
void kt_http_resp_free(struct kt_http_resp *resp);

const char *kt_http_last_error(const struct kt_http *h);

/* The User-Agent every request carries: "keyturn/VERSION". */
const char *kt_http_user_agent(void);

#endif
