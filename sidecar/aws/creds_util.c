/* Helpers beneath the credential providers: clearing and filling a
 * credential value, Expiration times, token files, and one HTTP request with
 * the error messages every provider gives. Nothing here knows a provider or
 * the chain; they all call down into this file. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "creds_util.h"
#include "http.h"
#include "common/secmem.h"

void aws_creds_clear(struct aws_creds *cr)
{
	if (cr == NULL)
		return;
	free(cr->access_key);
	kt_str_free_wiped(cr->secret_key);
	kt_str_free_wiped(cr->session_token);
	memset(cr, 0, sizeof(*cr));
}

/* Two-digit (or four-digit) fields of a timestamp, each checked to be digits
 * only before strtol sees it. */
static int time_field(const char **p, int width, int *out)
{
	char buf[8];
	char *end;
	long v;

	for (int i = 0; i < width; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -EINVAL;
		buf[i] = (*p)[i];
	}
	buf[width] = '\0';
	errno = 0;
	v = strtol(buf, &end, 10);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*out = (int)v;
	*p += width;
	return 0;
}

static int time_sep(const char **p, char c)
{
	if (**p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

int aws_creds_parse_time(const char *s, time_t *out)
{
	struct tm tm = { 0 };
	int year, mon, day, hour, min, sec, zh = 0, zm = 0, zsign = 0;
	const char *p = s;
	time_t t;

	if (s == NULL || time_field(&p, 4, &year) < 0 || time_sep(&p, '-') < 0 ||
	    time_field(&p, 2, &mon) < 0 || time_sep(&p, '-') < 0 || time_field(&p, 2, &day) < 0 ||
	    (*p != 'T' && *p != 't' && *p != ' ') || (p++, time_field(&p, 2, &hour) < 0) ||
	    time_sep(&p, ':') < 0 || time_field(&p, 2, &min) < 0 || time_sep(&p, ':') < 0 ||
	    time_field(&p, 2, &sec) < 0)
		return -EINVAL;
	/* Fractional seconds do not matter at the scale of renewals. */
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return -EINVAL;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		zsign = *p == '+' ? 1 : -1;
		p++;
		if (time_field(&p, 2, &zh) < 0 || time_sep(&p, ':') < 0 ||
		    time_field(&p, 2, &zm) < 0 || zh > 23 || zm > 59)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	if (*p != '\0' || year < 1970 || mon < 1 || mon > 12 || day < 1 || day > 31 || hour > 23 ||
	    min > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* timegm() normalises 31 April into 1 May; such a date is malformed. */
	if (t == (time_t)-1 || tm.tm_mday != day)
		return -EINVAL;
	*out = t - zsign * (time_t)(zh * 3600 + zm * 60);
	return 0;
}

int aws_creds_fill(struct aws_creds *out, const char *source, const char *what, const char *ak,
		   const char *sk, const char *tok, const char *expiration, struct aws_error *err)
{
	memset(out, 0, sizeof(*out));
	out->source = source;
	if (expiration != NULL && aws_creds_parse_time(expiration, &out->expiration) < 0) {
		aws_error_set(err, AWS_ERR_MALFORMED, "MalformedCredentials",
			      "%s: Expiration '%.64s' is not an ISO 8601 time", what, expiration);
		return -EBADMSG;
	}
	out->access_key = kt_strdup(ak);
	out->secret_key = kt_strdup(sk);
	if (tok != NULL && *tok != '\0')
		out->session_token = kt_strdup(tok);
	if (out->access_key == NULL || out->secret_key == NULL ||
	    (tok != NULL && *tok != '\0' && out->session_token == NULL)) {
		aws_creds_clear(out);
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "%s: out of memory", what);
		return -ENOMEM;
	}
	return 0;
}

int aws_creds_read_token_file(const char *what, const char *path, char **out, struct aws_error *err)
{
	struct stat st;
	char *buf = NULL;
	size_t cap = 0, len = 0;
	ssize_t n;
	int fd = -1, rc = 0;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		rc = -errno;
		aws_error_set(err, AWS_ERR_CONFIG, "TokenFile", "%s: cannot read token file %s: %s",
			      what, path, strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode) || (size_t)st.st_size > AWS_CREDS_MAX_TOKEN_FILE) {
		rc = -EINVAL;
		aws_error_set(err, AWS_ERR_CONFIG, "TokenFile",
			      "%s: token file %s is not a regular file of at most %u bytes", what,
			      path, AWS_CREDS_MAX_TOKEN_FILE);
		goto out;
	}
	/* The file may change between fstat() and read() (a kubelet renewing
	 * the token); reading into a bounded buffer copes with both. */
	cap = AWS_CREDS_MAX_TOKEN_FILE + 1;
	buf = malloc(cap);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (len < cap - 1 && (n = read(fd, buf + len, cap - 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			aws_error_set(err, AWS_ERR_CONFIG, "TokenFile", "%s: reading %s: %s", what,
				      path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	while (len > 0 && isspace((unsigned char)buf[len - 1]))
		len--;
	buf[len] = '\0';
	if (len == 0 || strlen(buf) != len) {
		rc = -EINVAL;
		aws_error_set(err, AWS_ERR_CONFIG, "TokenFile",
			      "%s: token file %s is empty or binary", what, path);
		goto out;
	}
	*out = kt_strdup(buf);
	if (*out == NULL)
		rc = -ENOMEM;
out:
	if (fd >= 0)
		close(fd);
	kt_free_wiped(buf, cap);
	return rc;
}

int aws_creds_url_shown(const char *url)
{
	return (int)strcspn(url, "?#");
}

int aws_creds_http_error(struct aws_error *err, const char *what, const char *url, int rc,
			 const struct kt_http *h)
{
	enum aws_errc code = AWS_ERR_TRANSPORT;
	const char *why = h != NULL ? kt_http_last_error(h) : NULL;

	if (rc == -ETIMEDOUT)
		code = AWS_ERR_TIMEOUT;
	else if (rc == -EMSGSIZE)
		code = AWS_ERR_MALFORMED;
	else if (rc == -ENOMEM || rc == -EINVAL)
		code = AWS_ERR_OTHER;
	if (why == NULL || *why == '\0')
		why = strerror(-rc);
	aws_error_set(err, code, "HttpError", "%s: %.*s: %s", what, aws_creds_url_shown(url), url,
		      why);
	return rc;
}

int aws_creds_status_error(struct aws_error *err, const char *what, const char *url, long status)
{
	enum aws_errc code = AWS_ERR_OTHER;

	if (status >= 500)
		code = AWS_ERR_SERVER;
	else if (status == 429)
		code = AWS_ERR_THROTTLED;
	else if (status == 401 || status == 403)
		code = AWS_ERR_ACCESS_DENIED;
	aws_error_set(err, code, "HttpStatus", "%s: %.*s answered %ld", what,
		      aws_creds_url_shown(url), url, status);
	err->http_status = status;
	return -EIO;
}

int aws_creds_http_send(const char *what, const struct aws_creds_opts *o,
			const struct kt_http_opts *hopts, const struct kt_http_req *req,
			struct kt_http_resp *resp, struct aws_error *err)
{
	struct kt_http_opts ho = *hopts;
	struct kt_http *h = NULL;
	int rc;

	ho.ca_file = o->ca_file;
	ho.cancel = o->cancel;
	rc = kt_http_new(&ho, &h);
	if (rc < 0) {
		aws_error_set(err, AWS_ERR_CONFIG, "HttpSetup", "%s: cannot set up HTTP (%s)", what,
			      strerror(-rc));
		return rc;
	}
	rc = kt_http_do(h, req, resp);
	if (rc < 0)
		aws_creds_http_error(err, what, req->url, rc, h);
	kt_http_free(h);
	return rc;
}
