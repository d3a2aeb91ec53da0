/* HTTPS requests for the AWS client over libcurl. A handle keeps one curl easy
 * handle, so connections to the same endpoint are reused between requests;
 * TLS is always verified, and answers larger than the cap are refused. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "http.h"
#include "common/secmem.h"

struct kt_http {
	CURL *curl;
	char *ca_file;
	long connect_timeout_ms;
	long timeout_ms;
	size_t max_body;
	bool no_proxy;
	const atomic_bool *cancel;
	bool oversize; /* set by the write callback when the cap is hit */
	struct kt_http_resp *cur;
	char errbuf[CURL_ERROR_SIZE];
	char last_error[CURL_ERROR_SIZE + 64];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

/* curl_global_init is not thread-safe on every libcurl; do it exactly once. */
static void http_global_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *kt_http_user_agent(void)
{
	return "keyturn/" PACKAGE_VERSION;
}

int kt_http_new(const struct kt_http_opts *opts, struct kt_http **out)
{
	struct kt_http *h = NULL;
	const char *ca;
	int rc = -ENOMEM;

	*out = NULL;
	pthread_once(&curl_once, http_global_init);
	if (curl_init_rc != CURLE_OK)
		return -ENOMEM;
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		goto out;
	h->curl = curl_easy_init();
	if (h->curl == NULL)
		goto out;
	ca = opts != NULL ? opts->ca_file : NULL;
	if (ca == NULL || ca[0] == '\0')
		ca = getenv("AWS_CA_BUNDLE");
	if (ca != NULL && ca[0] != '\0') {
		/* A CA file that cannot be read would otherwise surface as a vague
		 * TLS failure on the first request; say so now instead. */
		if (access(ca, R_OK) != 0) {
			rc = -EINVAL;
			goto out;
		}
		h->ca_file = kt_strdup(ca);
		if (h->ca_file == NULL)
			goto out;
	}
	h->connect_timeout_ms =
		opts != NULL && opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : 3000;
	h->timeout_ms = opts != NULL && opts->timeout_ms > 0 ? opts->timeout_ms : 10000;
	h->max_body =
		opts != NULL && opts->max_body > 0 ? opts->max_body : KT_HTTP_DEFAULT_MAX_BODY;
	h->no_proxy = opts != NULL && opts->no_proxy;
	h->cancel = opts != NULL ? opts->cancel : NULL;
	*out = h;
	h = NULL;
	rc = 0;
out:
	kt_http_free(h);
	return rc;
}

void kt_http_free(struct kt_http *h)
{
	if (h == NULL)
		return;
	if (h->curl != NULL)
		curl_easy_cleanup(h->curl);
	free(h->ca_file);
	free(h);
}

const char *kt_http_last_error(const struct kt_http *h)
{
	return h->last_error;
}

static size_t http_write_cb(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct kt_http *h = data;
	size_t n = size * nmemb;

	if (kt_buf_append(&h->cur->body, ptr, n) < 0) {
		/* Returning short makes curl stop with CURLE_WRITE_ERROR. */
		h->oversize = true;
		return 0;
	}
	return n;
}

/* libcurl calls this often while data flows and about once a second while
 * it waits (connecting, or for a slow answer); a nonzero return ends the
 * transfer with CURLE_ABORTED_BY_CALLBACK. */
static int http_xferinfo_cb(void *data, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
			    curl_off_t ulnow)
{
	const struct kt_http *h = data;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return atomic_load(h->cancel) ? 1 : 0;
}

/* Keeps the value of one header, replacing an earlier one (a redirect or an
 * interim 100 answer may carry its own). */
static int http_keep_header(char **slot, const char *v, size_t n)
{
	char *copy;

	while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
		n--;
	while (n > 0 && (*v == ' ' || *v == '\t')) {
		v++;
		n--;
	}
	copy = kt_strndup(v, n);
	if (copy == NULL)
		return -1;
	free(*slot);
	*slot = copy;
	return 0;
}

static size_t http_header_cb(char *buf, size_t size, size_t nitems, void *data)
{
	static const char date[] = "date:", etype[] = "x-amzn-errortype:";
	struct kt_http *h = data;
	size_t n = size * nitems;

	if (n > sizeof(date) - 1 && strncasecmp(buf, date, sizeof(date) - 1) == 0) {
		if (http_keep_header(&h->cur->date, buf + sizeof(date) - 1,
				     n - (sizeof(date) - 1)) < 0)
			return 0;
	} else if (n > sizeof(etype) - 1 && strncasecmp(buf, etype, sizeof(etype) - 1) == 0) {
		if (http_keep_header(&h->cur->amzn_errortype, buf + sizeof(etype) - 1,
				     n - (sizeof(etype) - 1)) < 0)
			return 0;
	}
	return n;
}

static int http_map_error(struct kt_http *h, CURLcode cc)
{
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_WRITE_ERROR:
		return h->oversize ? -EMSGSIZE : -EIO;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
		return -ECONNRESET;
	/* A certificate that does not verify will not verify on a retry. */
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
		return -EKEYREJECTED;
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CIPHER:
	case CURLE_USE_SSL_FAILED:
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return -EPROTO;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

/* Sets the options of one request on the (reset) easy handle. */
static CURLcode http_setup(struct kt_http *h, const struct kt_http_req *req,
			   struct curl_slist *hdrs)
{
	CURLcode cc = CURLE_OK;
	long timeout = req->timeout_ms > 0 ? req->timeout_ms : h->timeout_ms;
	CURL *c = h->curl;

#define SET(opt, val)                                                 \
	do {                                                          \
		if ((cc = curl_easy_setopt(c, opt, val)) != CURLE_OK) \
			return cc;                                    \
	} while (0)
	SET(CURLOPT_URL, req->url);
	SET(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "http,https");
#else
	SET(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (h->ca_file != NULL)
		SET(CURLOPT_CAINFO, h->ca_file);
	/* An empty proxy string makes curl ignore the proxy variables. */
	if (h->no_proxy)
		SET(CURLOPT_PROXY, "");
	SET(CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
	SET(CURLOPT_TIMEOUT_MS, timeout);
	SET(CURLOPT_USERAGENT, kt_http_user_agent());
	SET(CURLOPT_ERRORBUFFER, h->errbuf);
	SET(CURLOPT_WRITEFUNCTION, http_write_cb);
	SET(CURLOPT_WRITEDATA, h);
	SET(CURLOPT_HEADERFUNCTION, http_header_cb);
	SET(CURLOPT_HEADERDATA, h);
	SET(CURLOPT_HTTPHEADER, hdrs);
	if (h->cancel != NULL) {
		SET(CURLOPT_XFERINFOFUNCTION, http_xferinfo_cb);
		SET(CURLOPT_XFERINFODATA, h);
		SET(CURLOPT_NOPROGRESS, 0L);
	}
	if (strcmp(req->method, "GET") == 0) {
		SET(CURLOPT_HTTPGET, 1L);
	} else {
		SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
		SET(CURLOPT_POSTFIELDS, req->body != NULL ? (const char *)req->body : "");
		if (strcmp(req->method, "POST") != 0)
			SET(CURLOPT_CUSTOMREQUEST, req->method);
	}
#undef SET
	return cc;
}

int kt_http_do(struct kt_http *h, const struct kt_http_req *req, struct kt_http_resp *resp)
{
	struct curl_slist *hdrs = NULL, *tmp;
	CURLcode cc;
	int rc = -ENOMEM;

	memset(resp, 0, sizeof(*resp));
	kt_buf_init(&resp->body, h->max_body);
	h->last_error[0] = '\0';
	h->errbuf[0] = '\0';
	h->oversize = false;
	h->cur = resp;

	/* curl adds "Expect: 100-continue" and a form Content-Type to POSTs;
	 * neither is wanted, and an empty value removes them. */
	tmp = curl_slist_append(hdrs, "Expect:");
	if (tmp == NULL)
		goto out;
	hdrs = tmp;
	for (size_t i = 0; i < req->nheaders; i++) {
		tmp = curl_slist_append(hdrs, req->headers[i]);
		if (tmp == NULL)
			goto out;
		hdrs = tmp;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "PUT") != 0 &&
	    strcmp(req->method, "POST") != 0) {
		rc = -EINVAL;
		goto out;
	}
	if (h->cancel != NULL && atomic_load(h->cancel)) {
		rc = -ECANCELED;
		snprintf(h->last_error, sizeof(h->last_error), "cancelled before it was sent");
		goto out;
	}

	/* Reset keeps the connection cache, so a reused handle keeps its
	 * keep-alive connection while no option leaks between requests.
	 * When a reused connection turns out dead before any answer, libcurl
	 * itself sends the request once more on a new connection; that resend
	 * is invisible here, so one attempt may cost two requests at most. */
	curl_easy_reset(h->curl);
	cc = http_setup(h, req, hdrs);
	if (cc == CURLE_OK)
		cc = curl_easy_perform(h->curl);
	if (cc != CURLE_OK) {
		rc = http_map_error(h, cc);
		if (rc == -EMSGSIZE)
			snprintf(h->last_error, sizeof(h->last_error),
				 "answer larger than %zu bytes", h->max_body);
		else if (rc == -ECANCELED)
			snprintf(h->last_error, sizeof(h->last_error), "cancelled in flight");
		else
			snprintf(h->last_error, sizeof(h->last_error), "%s",
				 h->errbuf[0] ? h->errbuf : curl_easy_strerror(cc));
		goto out;
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &resp->status);
	rc = 0;
out:
	/* The header list may hold a session token or a metadata token. */
	for (tmp = hdrs; tmp != NULL; tmp = tmp->next)
		kt_wipe(tmp->data, strlen(tmp->data));
	curl_slist_free_all(hdrs);
	h->cur = NULL;
	if (rc < 0) {
		kt_http_resp_free(resp);
		if (h->last_error[0] == '\0')
			snprintf(h->last_error, sizeof(h->last_error), "%s", strerror(-rc));
	}
	return rc;
}

void kt_http_resp_free(struct kt_http_resp *resp)
{
	if (resp == NULL)
		return;
	kt_buf_free(&resp->body);
	free(resp->date);
	free(resp->amzn_errortype);
	resp->date = NULL;
	resp->amzn_errortype = NULL;
	resp->status = 0;
}
