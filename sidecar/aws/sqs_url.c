/* The endpoint and region a queue URL implies: the URL is checked for the
 * form AWS gives queue URLs, so that a mistyped [events] queue_url is
 * refused at start with a message that says what is wrong. */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/kt_json.h"
#include "sqs.h"

/* Room for a URL in a message: kt_json_printable() cuts it to fit. */
#define SQS_WHERE_MAX 200

/* A region name as it appears in an SQS host: lower-case letters, digits and
 * dashes, starting with a letter. */
static bool region_ok(const char *r, size_t n)
{
	if (n == 0 || n > 64 || !(r[0] >= 'a' && r[0] <= 'z'))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
			return false;
	}
	return true;
}

/* The region an AWS SQS host name implies, or "" for any other host. host
 * is lower case, without a port. */
static void region_of_host(const char *host, char *region, size_t rlen)
{
	static const char *const suffixes[] = { ".amazonaws.com", ".amazonaws.com.cn" };
	static const char *const prefixes[] = { "sqs.", "sqs-fips." };
	size_t hlen = strlen(host), n;
	const char *r = NULL;
	size_t rn = 0;

	region[0] = '\0';
	for (size_t i = 0; i < 2 && r == NULL; i++) {
		size_t sl = strlen(suffixes[i]);

		if (hlen <= sl || strcmp(host + hlen - sl, suffixes[i]) != 0)
			continue;
		n = hlen - sl; /* host[0..n) is what comes before the suffix */
		if (i == 0 && n == 5 && strncmp(host, "queue", 5) == 0) {
			r = "us-east-1";
			rn = 9;
			break;
		}
		for (size_t j = 0; j < 2; j++) {
			size_t pl = strlen(prefixes[j]);

			if (n > pl && strncmp(host, prefixes[j], pl) == 0) {
				r = host + pl;
				rn = n - pl;
				break;
			}
		}
		if (r == NULL && n > 6 && strncmp(host + n - 6, ".queue", 6) == 0) {
			r = host;
			rn = n - 6;
		}
	}
	if (r != NULL && region_ok(r, rn) && rn < rlen) {
		memcpy(region, r, rn);
		region[rn] = '\0';
	}
}

/* The path of a queue URL: /ACCOUNT/NAME, a 12-digit account and a name of
 * 1-80 letters, digits, '-' and '_' (a FIFO queue's ends in ".fifo"). */
static bool queue_path_ok(const char *p)
{
	size_t n;

	if (p[0] != '/')
		return false;
	for (n = 1; n <= 12; n++) {
		if (!(p[n] >= '0' && p[n] <= '9'))
			return false;
	}
	if (p[13] != '/')
		return false;
	p += 14;
	n = strlen(p);
	if (n > 5 && strcmp(p + n - 5, ".fifo") == 0)
		n -= 5;
	if (n == 0 || strlen(p) > 80)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= 'A' && p[i] <= 'Z') ||
		      (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '_'))
			return false;
	}
	return true;
}

/* Splits url into the length of "scheme://host[:port]" and the host part;
 * false when it is not http(s)://host with a sane host. */
static bool split_url(const char *url, size_t *base_len, const char **host, size_t *host_len)
{
	size_t skip, n;

	if (strncmp(url, "https://", 8) == 0)
		skip = 8;
	else if (strncmp(url, "http://", 7) == 0)
		skip = 7;
	else
		return false;
	n = strcspn(url + skip, "/?#");
	if (n == 0 || n > 255)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = url[skip + i];

		if (ch <= 0x20 || ch >= 0x7f || ch == '@' || ch == '\\')
			return false;
	}
	*host = url + skip;
	*host_len = n;
	*base_len = skip + n;
	return true;
}

int sqs_endpoint_for_queue(const char *queue_url, char *endpoint, size_t elen, char *region,
			   size_t rlen, char *errbuf, size_t errlen)
{
	char where[SQS_WHERE_MAX], lower[256];
	const char *host, *env = getenv("AWS_ENDPOINT_URL_SQS");
	size_t base, hlen, n;

	if (elen > 0)
		endpoint[0] = '\0';
	if (rlen > 0)
		region[0] = '\0';
	if (errlen > 0)
		errbuf[0] = '\0';
	if (queue_url == NULL || queue_url[0] == '\0') {
		snprintf(errbuf, errlen, "no queue URL");
		return -EINVAL;
	}
	kt_json_printable(queue_url, where, sizeof(where));
	if (strlen(queue_url) > SQS_MAX_QUEUE_URL) {
		snprintf(errbuf, errlen, "queue URL \"%s\" is longer than %d bytes", where,
			 SQS_MAX_QUEUE_URL);
		return -ENAMETOOLONG;
	}
	if (!split_url(queue_url, &base, &host, &hlen)) {
		snprintf(errbuf, errlen,
			 "queue URL \"%s\" is not an http(s)://host[:port]/ACCOUNT/NAME URL",
			 where);
		return -EINVAL;
	}
	if (!queue_path_ok(queue_url + base)) {
		snprintf(errbuf, errlen,
			 "queue URL \"%s\": the path is not /ACCOUNT/NAME (a 12-digit account and "
			 "a queue name of 1-80 letters, digits, '-' or '_')",
			 where);
		return -EINVAL;
	}

	/* The region comes from the queue's own host even when the endpoint
	 * is overridden: the queue lives there, and the signature must say so. */
	n = 0;
	if (host[0] != '[') {
		for (; n < hlen && host[n] != ':'; n++)
			lower[n] =
				(char)((host[n] >= 'A' && host[n] <= 'Z') ? host[n] + 32 : host[n]);
	}
	lower[n] = '\0';
	region_of_host(lower, region, rlen);

	if (env != NULL && env[0] != '\0') {
		const char *eh;
		size_t eb, ehl, elen_env = strlen(env);

		kt_json_printable(env, where, sizeof(where));
		while (elen_env > 0 && env[elen_env - 1] == '/')
			elen_env--;
		if (!split_url(env, &eb, &eh, &ehl) || eb != elen_env) {
			snprintf(errbuf, errlen,
				 "AWS_ENDPOINT_URL_SQS \"%s\" is not an http(s)://host[:port] URL",
				 where);
			return -EINVAL;
		}
		if (eb >= elen) {
			snprintf(errbuf, errlen, "AWS_ENDPOINT_URL_SQS \"%s\" is too long", where);
			return -ENAMETOOLONG;
		}
		memcpy(endpoint, env, eb);
		endpoint[eb] = '\0';
		return 0;
	}
	if (base >= elen) {
		snprintf(errbuf, errlen, "queue URL \"%s\": the host is too long", where);
		return -ENAMETOOLONG;
	}
	memcpy(endpoint, queue_url, base);
	endpoint[base] = '\0';
	return 0;
}
