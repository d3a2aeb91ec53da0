/* Logins, from accounts to secrets: a user's [login:] section, the SecretId
 * it expands to, the cache entry that holds it, and the password a value
 * holds. */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cache.h"
#include "engine.h"
#include "common/kt_json.h"
#include "common/log.h"
#include "login.h"
#include "login_int.h"
#include "common/secmem.h"

/* Login entries of their own (not named by a [secret:] section); with
 * [login:*] and %u there is one per account that tried to log in. */
#define LOGIN_ENTRIES_MAX 256

/* The SecretId mapping l names for user: its secret with %H (this host's
 * name) and %u expanded. NULL on ENOMEM or a name that cannot be part of
 * a SecretId. */
static char *secret_id(const struct kt_login_cfg *l, const char *user)
{
	char host[256];

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	return kt_config_expand(l->secret, user, host);
}

bool kt_login_pattern_has_user(const char *p)
{
	for (const char *s = strchr(p, '%'); s != NULL && s[1] != '\0'; s = strchr(s + 2, '%')) {
		if (s[1] == 'u')
			return true;
	}
	return false;
}

const char *kt_login_mapping_user(const struct kt_login_cfg *l, const struct kt_entry *e)
{
	if (strcmp(l->user, "*") != 0 || !kt_login_pattern_has_user(l->secret))
		return l->user;
	return e != NULL ? e->login_user : NULL;
}

/* Whether mapping l, for user, names the SecretId id. */
bool kt_login_maps_to(const struct kt_login_cfg *l, const char *user, const char *id)
{
	char *want = secret_id(l, user);
	bool same = want != NULL && strcmp(want, id) == 0;

	free(want);
	return same;
}

/* Whether mapping l, for user, leads to entry e. */
bool kt_login_maps_entry(struct kt_login *lg, const struct kt_login_cfg *l, const char *user,
			 const struct kt_entry *e)
{
	char *id = secret_id(l, user);
	bool same = id != NULL && kt_cache_find(lg->cache, id) == e;

	free(id);
	return same;
}

/* The uid of a local account; false when there is none. */
static bool account_uid(const char *user, uid_t *uid)
{
	struct passwd pw, *res = NULL;
	char buf[4096];

	if (getpwnam_r(user, &pw, buf, sizeof(buf), &res) != 0 || res == NULL)
		return false;
	*uid = res->pw_uid;
	return true;
}

/* One number setting of login.defs ("NAME value"), if the line holds it. */
static void login_defs_value(const char *line, const char *name, uid_t *out)
{
	size_t n = strlen(name);
	unsigned long long v;
	char *end;

	if (strncmp(line, name, n) != 0 || (line[n] != ' ' && line[n] != '\t'))
		return;
	errno = 0;
	v = strtoull(line + n, &end, 10);
	while (*end == ' ' || *end == '\t' || *end == '\n')
		end++;
	if (errno == 0 && end != line + n && *end == '\0' && v <= (uid_t)-1)
		*out = (uid_t)v;
}

void kt_login_read_login_defs(struct kt_login *st, const char *path)
{
	FILE *f = fopen(path, "re");
	char line[512];

	/* shadow's defaults, where the file or a setting is missing. */
	st->uid_min = 1000;
	st->uid_max = 60000;
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		const char *s = line + strspn(line, " \t");

		login_defs_value(s, "UID_MIN", &st->uid_min);
		login_defs_value(s, "UID_MAX", &st->uid_max);
	}
	fclose(f);
}

static size_t login_entries(const struct kt_cache *c)
{
	size_t n = 0;

	for (size_t i = 0; i < c->n; i++)
		n += c->entries[i]->login_only;
	return n;
}

/* Whether a [secret:] section names id (then its entry serves the login). */
static bool section_names(const struct kt_config *cfg, const char *id)
{
	for (size_t i = 0; i < cfg->nsecrets; i++) {
		if (strcmp(cfg->secrets[i].name, id) == 0 || strcmp(cfg->secrets[i].id, id) == 0)
			return true;
	}
	return false;
}

/* The entry for a SecretId a login maps to, made when there is none. */
static struct kt_entry *entry_for(struct kt_login *lg, const char *id)
{
	struct kt_entry *e = kt_cache_find(lg->cache, id);

	if (e != NULL)
		return e;
	if (login_entries(lg->cache) >= LOGIN_ENTRIES_MAX) {
		log_warn("login: %d login secrets are cached already; not adding %s",
			 LOGIN_ENTRIES_MAX, id);
		return NULL;
	}
	return kt_cache_add_login(lg->cache, id);
}

int kt_login_resolve(struct kt_login *lg, const char *user, const struct kt_login_cfg **lp,
		     struct kt_entry **ep, char *msg, size_t msglen)
{
	const struct kt_login_cfg *l = kt_config_login(lg->cfg, user);
	char shown[96];
	struct kt_entry *e;
	char *id = NULL;
	uid_t uid = 0;
	bool star;
	int rc = 0;

	kt_json_printable(user, shown, sizeof(shown));
	if (l == NULL) {
		kt_errf(msg, msglen, "no [login:] section maps the account %s", shown);
		return -ENOENT;
	}
	star = strcmp(l->user, "*") == 0;
	/* [login:*] serves local accounts only: a made-up name must not make
	 * keyturnd ask AWS for made-up secrets; nor does a system account,
	 * unless a [login:NAME] section of its own names it. */
	if (star && !account_uid(user, &uid)) {
		kt_errf(msg, msglen, "%s is not a local account", shown);
		return -ENOENT;
	}
	if (star && (uid < lg->uid_min || uid > lg->uid_max)) {
		kt_errf(msg, msglen,
			"%s is a system account (uid %lu, outside UID_MIN..UID_MAX); "
			"[login:*] does not serve it",
			shown, (unsigned long)uid);
		return -ENOENT;
	}
	id = secret_id(l, user);
	if (id == NULL) {
		kt_errf(msg, msglen, "the account name %s cannot be part of a SecretId", shown);
		return -ENOENT;
	}
	if (star && kt_login_absent(lg, id)) {
		kt_errf(msg, msglen, "the secret of %s does not exist in AWS", shown);
		rc = -ENODATA;
		goto out;
	}
	/* A new entry costs a fetch: only within the budget of AWS calls that
	 * failed passwords may cause (budget.c). */
	if (kt_cache_find(lg->cache, id) == NULL && !kt_login_budget_can_pay(lg)) {
		kt_errf(msg, msglen,
			"the secret of %s is not cached, and AWS calls caused by failed "
			"passwords are over budget",
			shown);
		rc = -EAGAIN;
		goto out;
	}
	e = entry_for(lg, id);
	if (e == NULL) {
		kt_errf(msg, msglen, "cannot cache the secret of %s now", shown);
		rc = -EAGAIN;
		goto out;
	}
	if (star && kt_login_pattern_has_user(l->secret) && !kt_str_eq(e->login_user, user)) {
		free(e->login_user);
		e->login_user = kt_strdup(user);
	}
	*lp = l;
	*ep = e;
out:
	free(id);
	return rc;
}

int kt_login_password(const struct kt_entry *e, const struct kt_value *v, const char *key,
		      char **out, size_t *len, char *msg, size_t msglen)
{
	struct json_object *doc = NULL, *member;
	char shown[96];
	int rc = -EINVAL;

	*out = NULL;
	*len = 0;
	if (key == NULL) {
		*out = kt_memdup(v->data, v->len);
		*len = v->len;
		return *out != NULL || v->len == 0 ? 0 : -ENOMEM;
	}
	kt_json_printable(key, shown, sizeof(shown));
	if (!v->binary)
		doc = kt_json_parse((const char *)v->data, v->len);
	if (doc == NULL || !json_object_is_type(doc, json_type_object)) {
		kt_errf(msg, msglen, "%s is not a JSON object, so it has no key %s", e->name,
			shown);
		goto out;
	}
	if (!json_object_object_get_ex(doc, key, &member) ||
	    !json_object_is_type(member, json_type_string)) {
		kt_errf(msg, msglen, "%s has no string under the key %s", e->name, shown);
		goto out;
	}
	*len = (size_t)json_object_get_string_len(member);
	*out = kt_memdup(json_object_get_string(member), *len);
	rc = *out != NULL || *len == 0 ? 0 : -ENOMEM;
out:
	kt_json_put_wiped(doc);
	return rc;
}

/* AWSPREVIOUS counts only within previous_grace of the rotation this
 * daemon saw, and only while AWS still calls that version AWSPREVIOUS. */
bool kt_login_previous_in_grace(const struct kt_entry *e, const struct kt_login_cfg *l, time_t now)
{
	const char *prev;

	if (l->previous_grace <= 0 || e->prev_version == NULL || e->rotated_at == 0 ||
	    now - e->rotated_at >= l->previous_grace)
		return false;
	prev = kt_cache_version_for_stage(e, "AWSPREVIOUS");
	return e->stages_map == NULL || kt_str_eq(prev, e->prev_version);
}

/* Whether some mapping still needs login entry e. */
static bool entry_wanted(const struct kt_config *cfg, const struct kt_entry *e)
{
	if (section_names(cfg, e->cfg->id))
		return false;
	for (size_t i = 0; i < cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &cfg->logins[i];
		const char *user = kt_login_mapping_user(l, e);

		if (user != NULL && kt_login_maps_to(l, user, e->cfg->id))
			return true;
	}
	return false;
}

void kt_login_map_sync(struct kt_login *lg)
{
	for (size_t i = lg->cache->n; i-- > 0;) {
		struct kt_entry *e = lg->cache->entries[i];

		if (e->login_only && !entry_wanted(lg->cfg, e))
			kt_engine_remove(lg->eng, e);
	}
	/* Logins whose secret does not depend on the user are fetched at
	 * start, so their offline verifiers exist before the first login. */
	for (size_t i = 0; i < lg->cfg->nlogins; i++) {
		const struct kt_login_cfg *l = &lg->cfg->logins[i];
		char *id;

		if (kt_login_pattern_has_user(l->secret) && strcmp(l->user, "*") == 0)
			continue;
		id = secret_id(l, l->user);
		if (id != NULL && entry_for(lg, id) == NULL)
			log_warn("login: cannot cache %s for [login:%s]", id, l->user);
		free(id);
	}
}
