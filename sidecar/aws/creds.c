/* The credential chain: asks the providers in the SDKs' order, caches what the
 * first one yields and renews it ahead of its Expiration. The environment and
 * shared-file providers live here; the HTTP ones in creds_sts.c and creds_meta.c,
 * and what they all share beneath them in creds_util.c. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "creds.h"
#include "creds_int.h"
#include "creds_util.h"
#include "imds.h"
#include "common/log.h"
#include "profile.h"
#include "common/secmem.h"

#define CREDS_DEFAULT_REFRESH_AHEAD_S 300
/* While the cached credentials still work, a renewal is tried at most once a
 * minute: credentials handed out with less than refresh_ahead left (an agent
 * that renews late, a clock that is ahead) would otherwise be fetched again
 * for every call. The same pause follows a failed fetch. */
#define CREDS_DEFAULT_RENEW_MIN_INTERVAL_S 60
/* Container and instance credentials are always temporary; when the answer
 * gives no usable Expiration they are fetched again every 15 minutes. The
 * agents put renewed credentials up well before the old ones expire (IMDS at
 * least 5 minutes ahead, of sessions that last an hour or more), so 15 minutes
 * notices a rotation in time at a cost of 4 local requests an hour; should a
 * set still be refused as expired, the client fetches anew at once. */
#define CREDS_DEFAULT_NO_EXPIRY_REFETCH_S 900
/* No AWS session lasts longer than 36 hours (GetSessionToken); an Expiration
 * more than a week away, such as 9999-12-31, is a placeholder, not a date. */
#define CREDS_FAR_FUTURE_S (7L * 24 * 3600)

struct aws_creds_chain {
	pthread_mutex_t lock;
	struct aws_creds_opts opts; /* region and ca_file point at the copies below */
	char *region;
	char *ca_file;
	struct aws_creds cached;
	bool have;
	int provider;               /* index in providers[] of the cached ones */
	struct aws_imds_token imds; /* reused across renewals until near its TTL */
	time_t fetched_at;          /* creds_clock_boot() when the cached ones came */
	bool periodic;              /* no usable Expiration: fetched every no_expiry_refetch_s */
	time_t next_fetch;          /* creds_clock_boot(): no fetch before, while they work */
	bool failed;                /* the last fetch failed with last_rc, for last_err */
	int last_rc;
	struct aws_error last_err;
	time_t warned_expiry; /* the Expiration whose loss was already logged */
};

/* Renewal intervals count on the boot clock, so that a wall-clock step does
 * not move them and a suspended machine's credentials are known to be old;
 * Expiration is AWS's own date and is compared with the wall clock. The unit
 * tests replace both. */
static time_t creds_clock_wall_real(void)
{
	return time(NULL);
}

static time_t creds_clock_boot_real(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_BOOTTIME, &ts) < 0)
		clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

static time_t (*creds_clock_wall)(void) = creds_clock_wall_real;
static time_t (*creds_clock_boot)(void) = creds_clock_boot_real;

static int creds_copy(struct aws_creds *dst, const struct aws_creds *src)
{
	memset(dst, 0, sizeof(*dst));
	dst->access_key = kt_strdup(src->access_key);
	dst->secret_key = kt_strdup(src->secret_key);
	if (src->session_token != NULL)
		dst->session_token = kt_strdup(src->session_token);
	dst->expiration = src->expiration;
	dst->source = src->source;
	if (dst->access_key == NULL || dst->secret_key == NULL ||
	    (src->session_token != NULL && dst->session_token == NULL)) {
		aws_creds_clear(dst);
		return -ENOMEM;
	}
	return 0;
}

static const char *env_nonempty(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? v : NULL;
}

static int from_env(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err)
{
	const char *ak = env_nonempty("AWS_ACCESS_KEY_ID");
	const char *sk = env_nonempty("AWS_SECRET_ACCESS_KEY");

	(void)c;
	if (ak == NULL && sk == NULL)
		return -ENOENT;
	if (ak == NULL || sk == NULL) {
		aws_error_set(err, AWS_ERR_CONFIG, "IncompleteCredentials",
			      "environment: %s is set but %s is not",
			      ak != NULL ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			      ak != NULL ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return -EINVAL;
	}
	return aws_creds_fill(out, "environment", "environment", ak, sk,
			      env_nonempty("AWS_SESSION_TOKEN"),
			      env_nonempty("AWS_CREDENTIAL_EXPIRATION"), err);
}

/* Keys from one loaded profile: 0 with creds, -ENOENT when the profile
 * has neither key, -EINVAL when it has only one. */
static int profile_keys(const struct aws_profile *p, struct aws_creds *out, struct aws_error *err)
{
	static const char AK[] = "aws_access_key_id", SK[] = "aws_secret_access_key";
	const char *ak = aws_profile_get(p, AK);
	const char *sk = aws_profile_get(p, SK);

	if (ak == NULL && sk == NULL)
		return -ENOENT;
	if (ak == NULL || sk == NULL) {
		aws_error_set(err, AWS_ERR_CONFIG, "IncompleteCredentials",
			      "profile: %s:%d: profile '%s' has %s but no %s", p->path,
			      aws_profile_line(p, ak != NULL ? AK : SK), p->name,
			      ak != NULL ? AK : SK, ak != NULL ? SK : AK);
		return -EINVAL;
	}
	return aws_creds_fill(out, "profile", "profile", ak, sk,
			      aws_profile_get(p, "aws_session_token"), NULL, err);
}

static int from_profile(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err)
{
	char *paths[2] = { aws_profile_credentials_path(), aws_profile_config_path() };
	char *name = aws_profile_name();
	struct aws_profile p[2] = { { 0 }, { 0 } };
	bool loaded[2] = { false, false };
	char msg[512];
	int rc = -ENOENT;

	(void)c;
	if (name == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	/* Both files are read first, so that a syntax error in either one is
	 * reported even when the other has the keys, as the AWS CLI does. */
	for (int i = 0; i < 2; i++) {
		if (paths[i] == NULL)
			continue;
		rc = aws_profile_load(paths[i], name, i == 1, &p[i], msg, sizeof(msg));
		if (rc == -ENOENT)
			continue;
		if (rc < 0) {
			aws_error_set(err, AWS_ERR_CONFIG, "ProfileError", "profile: %s", msg);
			goto out;
		}
		loaded[i] = true;
	}
	rc = -ENOENT;
	for (int i = 0; i < 2 && rc == -ENOENT; i++) {
		if (loaded[i])
			rc = profile_keys(&p[i], out, err);
	}
	/* A profile chosen by name that exists nowhere is a mistake to report,
	 * not a reason to fall through to the instance's role (as the AWS CLI). */
	if (rc == -ENOENT && !loaded[0] && !loaded[1] && env_nonempty("AWS_PROFILE") != NULL) {
		aws_error_set(err, AWS_ERR_CONFIG, "ProfileNotFound",
			      "profile: AWS_PROFILE names profile '%s', found in neither %s nor %s",
			      name, paths[0] ? paths[0] : "(no credentials file)",
			      paths[1] ? paths[1] : "(no config file)");
		rc = -EINVAL;
	}
out:
	aws_profile_free(&p[0]);
	aws_profile_free(&p[1]);
	free(paths[0]);
	free(paths[1]);
	free(name);
	return rc;
}

static int from_web_identity(struct aws_creds_chain *c, struct aws_creds *out,
			     struct aws_error *err)
{
	return aws_creds_from_web_identity(&c->opts, out, err);
}

static int from_container(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err)
{
	return aws_creds_from_container(&c->opts, out, err);
}

static int from_imds(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err)
{
	return aws_creds_from_imds(&c->opts, &c->imds, out, err);
}

static const struct {
	const char *name;
	int (*fetch)(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err);
} providers[] = {
	{ "environment", from_env },        { "web identity", from_web_identity },
	{ "profile", from_profile },        { "container", from_container },
	{ "instance metadata", from_imds },
};

#define NPROVIDERS ((int)(sizeof(providers) / sizeof(providers[0])))

/* Runs the chain from the first provider, or asks only the one that gave the
 * cached credentials when renewing them (as the SDKs do). */
static int chain_fetch(struct aws_creds_chain *c, int only, struct aws_creds *out, int *provider,
		       struct aws_error *err)
{
	int rc = -ENOENT;

	for (int i = only >= 0 ? only : 0; i < NPROVIDERS; i++) {
		rc = providers[i].fetch(c, out, err);
		if (rc == 0) {
			*provider = i;
			return 0;
		}
		/* -ENOENT with err set is a configured provider that failed
		 * (a missing token file, say): that ends the chain too. */
		if (rc != -ENOENT || err->code != AWS_OK || only >= 0)
			break;
	}
	if (rc == -ENOENT && only >= 0 && err->code == AWS_OK) {
		aws_error_set(err, AWS_ERR_NO_CREDENTIALS, "NoCredentials",
			      "%s: the credentials found before are no longer configured",
			      providers[only].name);
	} else if (rc == -ENOENT && err->code == AWS_OK) {
		aws_error_set(err, AWS_ERR_NO_CREDENTIALS, "NoCredentials",
			      "no credentials: none in the environment, no web identity, no keys "
			      "in the shared files' profile, no container endpoint, and instance "
			      "metadata is disabled (AWS_EC2_METADATA_DISABLED)");
	} else if (only < 0 && (err->code == AWS_ERR_TIMEOUT || err->code == AWS_ERR_TRANSPORT) &&
		   strncmp(err->message, "instance metadata", 17) == 0) {
		/* Off EC2 the metadata service is simply absent: say "no
		 * credentials" first and keep the reason. */
		struct aws_error e = *err;

		aws_error_set(err, AWS_ERR_NO_CREDENTIALS, "NoCredentials",
			      "no credentials found (last tried %.400s)", e.message);
		rc = -ENOENT;
	}
	return rc;
}

/* Whether cached credentials must be fetched again: temporary ones from
 * refresh_ahead seconds before their Expiration on. */
static bool creds_need_refresh(const struct aws_creds *cr, time_t now, long ahead)
{
	if (cr->expiration == 0)
		return false;
	return now >= cr->expiration - (time_t)ahead;
}

/* Credentials that the metadata agents hand out without a usable
 * Expiration: none at all, or a placeholder far in the future. */
static bool creds_periodic(const struct aws_creds *cr, time_t now)
{
	if (strcmp(cr->source, "imds") != 0 && strcmp(cr->source, "container") != 0)
		return false;
	return cr->expiration == 0 || cr->expiration - now > CREDS_FAR_FUTURE_S;
}

static bool creds_due(const struct aws_creds_chain *c, time_t now, time_t boot)
{
	if (c->periodic)
		return boot - c->fetched_at >= (time_t)c->opts.no_expiry_refetch_s;
	return creds_need_refresh(&c->cached, now, c->opts.refresh_ahead_s);
}

/* Whether the cached credentials can still sign a request. */
static bool creds_valid(const struct aws_creds_chain *c, time_t now)
{
	return c->have && (c->cached.expiration == 0 || now < c->cached.expiration);
}

static void creds_keep(struct aws_creds_chain *c, struct aws_creds *fresh, int provider, time_t now,
		       time_t boot)
{
	if (fresh->expiration != 0 && fresh->expiration <= now)
		log_warn("credentials from %s expired already (clock skew?)", fresh->source);
	aws_creds_clear(&c->cached);
	c->cached = *fresh;
	memset(fresh, 0, sizeof(*fresh));
	c->have = true;
	c->provider = provider;
	c->fetched_at = boot;
	c->periodic = creds_periodic(&c->cached, now);
	c->failed = false;
	if (c->periodic)
		log_debug("credentials from %s carry no usable Expiration; fetching them again "
			  "every %ld s",
			  c->cached.source, c->opts.no_expiry_refetch_s);
}

/* A failed renewal is not yet an outage: the old credentials stay good until
 * their Expiration. Once they have expired the loss is logged once for that
 * Expiration, not for every call that finds them so. Returns whether the
 * cached ones may still be served. */
static bool creds_after_failure(struct aws_creds_chain *c, const struct aws_error *ferr, time_t now)
{
	char when[32];
	struct tm tm;

	if (creds_valid(c, now)) {
		if (c->cached.expiration == 0 || c->periodic)
			log_warn("renewing %s credentials failed, using the current ones: %s",
				 c->cached.source, ferr->message);
		else
			log_warn("renewing %s credentials failed, using the current ones for %ld s "
				 "more: %s",
				 c->cached.source, (long)(c->cached.expiration - now),
				 ferr->message);
		return true;
	}
	if (c->have && c->warned_expiry != c->cached.expiration) {
		c->warned_expiry = c->cached.expiration;
		gmtime_r(&c->cached.expiration, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		log_warn("%s credentials expired at %s and cannot be renewed (tried again at most "
			 "every %ld s): %s",
			 c->cached.source, when, c->opts.renew_min_interval_s, ferr->message);
	}
	return false;
}

int aws_creds_get(struct aws_creds_chain *c, struct aws_creds *out, struct aws_error *err)
{
	struct aws_creds fresh = { 0 };
	struct aws_error ferr;
	int provider = -1, rc;
	time_t now, boot;

	memset(out, 0, sizeof(*out));
	aws_error_clear(err);
	aws_error_clear(&ferr);
	/* The lock is held across the fetch: callers that arrive during a
	 * renewal wait for it instead of each starting one of their own. */
	pthread_mutex_lock(&c->lock);
	now = creds_clock_wall();
	boot = creds_clock_boot();
	if (c->have && !creds_due(c, now, boot)) {
		rc = creds_copy(out, &c->cached);
		goto out;
	}
	/* Due, but tried a moment ago: the current ones while they work (the
	 * SDKs' "static stability"), else the reason the last try failed. */
	if (c->have && boot < c->next_fetch) {
		if (creds_valid(c, now)) {
			rc = creds_copy(out, &c->cached);
			goto out;
		}
		if (c->failed) {
			*err = c->last_err;
			rc = c->last_rc;
			goto out;
		}
	}
	c->next_fetch = boot + (time_t)c->opts.renew_min_interval_s;
	rc = chain_fetch(c, c->have ? c->provider : -1, &fresh, &provider, &ferr);
	if (rc == 0) {
		creds_keep(c, &fresh, provider, now, boot);
		rc = creds_copy(out, &c->cached);
		goto out;
	}
	c->failed = true;
	c->last_rc = rc;
	c->last_err = ferr;
	if (c->have && creds_after_failure(c, &ferr, now)) {
		rc = creds_copy(out, &c->cached);
		goto out;
	}
	*err = ferr;
out:
	pthread_mutex_unlock(&c->lock);
	aws_creds_clear(&fresh);
	if (rc == -ENOMEM && err->code == AWS_OK)
		aws_error_set(err, AWS_ERR_OTHER, "NoMemory", "credentials: out of memory");
	return rc;
}

void aws_creds_invalidate(struct aws_creds_chain *c)
{
	pthread_mutex_lock(&c->lock);
	aws_creds_clear(&c->cached);
	c->have = false;
	c->provider = -1;
	c->periodic = false;
	c->failed = false;
	pthread_mutex_unlock(&c->lock);
}

int aws_creds_chain_new(const struct aws_creds_opts *opts, struct aws_creds_chain **out)
{
	struct aws_creds_chain *c = calloc(1, sizeof(*c));
	int rc = 0;

	*out = NULL;
	if (c == NULL)
		return -ENOMEM;
	if (opts != NULL)
		c->opts = *opts;
	c->region = c->opts.region != NULL ? kt_strdup(c->opts.region) : NULL;
	c->ca_file = c->opts.ca_file != NULL ? kt_strdup(c->opts.ca_file) : NULL;
	if ((c->opts.region != NULL && c->region == NULL) ||
	    (c->opts.ca_file != NULL && c->ca_file == NULL)) {
		rc = -ENOMEM;
		goto out;
	}
	c->opts.region = c->region;
	c->opts.ca_file = c->ca_file;
	if (c->opts.refresh_ahead_s <= 0)
		c->opts.refresh_ahead_s = CREDS_DEFAULT_REFRESH_AHEAD_S;
	if (c->opts.imds_timeout_ms <= 0)
		c->opts.imds_timeout_ms = 1000;
	if (c->opts.renew_min_interval_s <= 0)
		c->opts.renew_min_interval_s = CREDS_DEFAULT_RENEW_MIN_INTERVAL_S;
	if (c->opts.no_expiry_refetch_s <= 0)
		c->opts.no_expiry_refetch_s = CREDS_DEFAULT_NO_EXPIRY_REFETCH_S;
	c->provider = -1;
	rc = -pthread_mutex_init(&c->lock, NULL);
out:
	if (rc < 0) {
		free(c->region);
		free(c->ca_file);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

void aws_creds_chain_free(struct aws_creds_chain *c)
{
	if (c == NULL)
		return;
	aws_creds_clear(&c->cached);
	aws_imds_token_clear(&c->imds);
	pthread_mutex_destroy(&c->lock);
	free(c->region);
	free(c->ca_file);
	free(c);
}
