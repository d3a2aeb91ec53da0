/* What login.c, login_map.c and login_offline.c share; not a public face. */
#ifndef KT_LOGIN_INT_H
#define KT_LOGIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "conf.h"

struct kt_daemon;

static inline bool kt_login_same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* login_map.c: from accounts to secrets. */
bool kt_login_pattern_has_user(const char *p);
/* The account a mapping writes its verifiers for: its own name, or for
 * [login:*] with %u the last account that used the entry (or NULL). */
const char *kt_login_mapping_user(const struct kt_login_cfg *l, const struct kt_entry *e);
bool kt_login_maps_to(const struct kt_login_cfg *l, const char *user, const char *id);
bool kt_login_maps_entry(struct kt_daemon *d, const struct kt_login_cfg *l, const char *user,
			 const struct kt_entry *e);
/* Maps user to its section and entry. -ENOENT when the account has no
 * mapping, -EAGAIN when no entry can be made; msg says why. */
int kt_login_resolve(struct kt_daemon *d, const char *user, const struct kt_login_cfg **lp,
		     struct kt_entry **ep, char *msg, size_t msglen);
/* The password a value holds: one JSON key's string, or the whole value.
 * *out is a copy to free with kt_free_wiped(*out, *len). */
int kt_login_password(const struct kt_entry *e, const struct kt_value *v, const char *key,
		      char **out, size_t *len, char *msg, size_t msglen);
bool kt_login_previous_in_grace(const struct kt_entry *e, const struct kt_login_cfg *l, time_t now);

/* login_offline.c: the verifiers in state_dir. */
/* 1 on a match (*stage set), 0 on none, -ENOENT when there is no verifier
 * (or offline is off), -ESTALE when it is too old; msg says why. */
int kt_login_offline_check(struct kt_daemon *d, const struct kt_entry *e,
			   const struct kt_login_cfg *l, const char *pw, size_t len, time_t now,
			   const char **stage, char *msg, size_t msglen);
/* Removes the verifiers no mapping uses any more. */
void kt_login_offline_prune(struct kt_daemon *d);

#endif
