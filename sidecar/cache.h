/* keyturnd's cache of secret values. It is owned by the event loop thread
 * alone (workers only hand results back), so it needs no locks. Value bytes
 * live in the locked arena (OpenSSL's secure heap, see secmem.h) and are
 * wiped before they are freed. */
#ifndef KT_CACHE_H
#define KT_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "conf.h"
#include "sched.h"
#include "aws/sm.h"

#define KT_CACHE_OTHER_VERSIONS 4

/* One version of a secret's value. */
struct kt_value {
	char *version_id;
	char **stages;
	size_t nstages;
	unsigned char *data; /* len bytes and a NUL, in the locked arena; wiped when freed */
	size_t len;
	bool binary;
	time_t fetched_at; /* wall clock: shown, never scheduled on */
	time_t created;    /* the version's CreatedDate in AWS (wall clock), 0 when not told */
};

struct kt_entry {
	uint64_t id;                                    /* tag for worker jobs; never reused */
	char *name;                                     /* the [secret:NAME] */
	const struct kt_secret_cfg *cfg;                /* re-bound on reload */
	char *arn;                                      /* known after the first answer */
	struct kt_value cur;                            /* AWSCURRENT; data NULL until fetched */
	struct kt_value other[KT_CACHE_OTHER_VERSIONS]; /* other versions asked for */
	struct sm_version *stages_map;                  /* VersionIdsToStages from the last check */
	size_t nstages_map;
	/* Times are on the schedule clock (kt_sched_now(), CLOCK_BOOTTIME)
	 * unless they say "wall clock": those are only shown or written to disk. */
	struct kt_rotation_info rot;
	time_t last_ok;         /* last answer from AWS about this secret */
	time_t checked_at;      /* the same, wall clock (list, offline verifiers) */
	bool superseded;        /* AWS moved AWSCURRENT to a version not fetched yet */
	time_t superseded_at;   /* when a check first said so; stale from then on */
	char superseded_by[72]; /* the version KT_NEWS_SUPERSEDED was last told for */
	time_t next_check;      /* when the next check is due */
	time_t last_refresh;    /* last `refresh` request that made a check */
	time_t version_window;  /* start of the current version-fetch window */
	int version_fetches;    /* fetches of other versions in that window */
	int failures;           /* consecutive failed checks or fetches */
	bool in_flight;         /* a job for this entry is running */
	bool fetch_alone;       /* a batch answer left it out: fetched on its own */
	bool gone;              /* AWS says it does not exist or is deleted */
	/* For logins (see login.c). */
	bool login_only;               /* made for a [login:] mapping: `get` cannot read it */
	struct kt_secret_cfg *own_cfg; /* its section, owned by the entry (login_only) */
	char *login_user;              /* the last account that mapped to it through %u */
	char *prev_version;            /* the version AWSCURRENT last moved away from, */
	time_t rotated_at;             /* when this daemon saw it move (0: never) */
	time_t last_verify_check;      /* the last check made after a failed password */
	time_t offline_written;        /* the last write of its offline verifiers (wall clock) */
	/* Its offline verifiers could not be written, or were removed as
	 * superseded (login_offline.c): offline logins are unavailable since
	 * offline_failed_at (wall clock, 0: fine) and retried at
	 * offline_retry_at (monotonic). */
	time_t offline_failed_at;
	time_t offline_retry_at;
	int offline_tries;
	char offline_error[300];
	char last_error[400]; /* the last failure, for status (no values) */
	/* What AWS said at the last failure, for doors that pass AWS's errors on
	 * (the HTTP door): its __type and HTTP status; status 0 when AWS was not
	 * reached or the failure was keyturnd's own. */
	enum aws_errc last_aws_code;
	char last_aws_type[64];
	long last_aws_status;
	time_t last_error_at; /* wall clock */
	/* Times AWSCURRENT moved from a value in hand to a newly fetched
	 * version (not the first value): keyturn_secret_version_changes_total. */
	unsigned long version_changes;
};

/* What makes e's AWSCURRENT value stale (see kt_sched_stale_since). */
static inline struct kt_staleness kt_entry_staleness(const struct kt_entry *e)
{
	struct kt_staleness s = { e->failures > 0, e->last_ok, e->superseded, e->superseded_at };

	return s;
}

/* Whether e's value is stale: AWS fails, or AWSCURRENT moved past it. */
static inline bool kt_entry_stale(const struct kt_entry *e)
{
	struct kt_staleness s = kt_entry_staleness(e);
	time_t since;

	return kt_sched_stale_since(&s, &since);
}

/* Whether e's value may still be served at now (schedule clock). */
static inline bool kt_entry_servable(const struct kt_entry *e, time_t now, long max_stale)
{
	struct kt_staleness s = kt_entry_staleness(e);

	return kt_sched_servable(&s, now, max_stale);
}

struct kt_cache {
	struct kt_entry **entries; /* sorted by name */
	struct kt_entry **by_id;   /* the same n entries, sorted by id */
	size_t n;
	uint64_t next_id;
};

void kt_cache_init(struct kt_cache *c);
void kt_cache_free(struct kt_cache *c);

/* Makes entries match cfg: new sections are added (empty), removed ones are
 * wiped and dropped, kept ones are re-bound to their new section and keep
 * their values unless their `id` changed. login_only entries are kept (the
 * login module prunes them). Returns 0 or -ENOMEM (then the cache is
 * unchanged). */
int kt_cache_sync(struct kt_cache *c, const struct kt_config *cfg);

/* The index in entries of the first entry whose name sorts after name
 * (strcmp order); 0 for NULL. For walks that resume after a name (list). */
size_t kt_cache_after(const struct kt_cache *c, const char *name);

/* By [secret:] name (O(log n)), or by ARN or configured id (a walk). NULL
 * when unknown. by_id is O(log n). */
struct kt_entry *kt_cache_find(struct kt_cache *c, const char *name);
struct kt_entry *kt_cache_by_id(struct kt_cache *c, uint64_t id);

/* Takes v (moved, v is left empty; its bytes are copied into the locked
 * arena and the worker's copy wiped) as the entry's AWSCURRENT value; the
 * old current value, when different, is kept among the other versions and
 * becomes prev_version, with rotated_at = now. Returns 0, or -ENOSPC when
 * the arena has no room: then the entry's values are as they were, its
 * last_error says why, a warning is logged, kt_secure_stats counts it, and
 * v is left untouched for the caller to free. The caller should treat it as
 * a failed fetch (back off), or it would fetch the same value again. */
int kt_cache_set_current(struct kt_entry *e, struct sm_value *v, time_t now);

/* Stores v as another version (not AWSCURRENT), as kt_cache_set_current
 * does; the same -ENOSPC. */
int kt_cache_add_other(struct kt_entry *e, struct sm_value *v, time_t now);

/* Takes the VersionIdsToStages of a description (moved). */
void kt_cache_set_stages(struct kt_entry *e, struct sm_description *d);

/* The version carrying `stage` per the last check, or NULL. */
const char *kt_cache_version_for_stage(const struct kt_entry *e, const char *stage);

/* Adds an entry of its own for a login's SecretId that no [secret:]
 * section names (login_only; name "login:" + id). NULL on ENOMEM or when
 * the name is taken. */
struct kt_entry *kt_cache_add_login(struct kt_cache *c, const char *secret_id);

/* Wipes and drops one entry. */
void kt_cache_remove(struct kt_cache *c, struct kt_entry *e);

/* The most recently fetched cached value whose own answer carried `stage`,
 * or NULL: used before the first check has mapped the stages. */
const struct kt_value *kt_cache_value_with_stage(const struct kt_entry *e, const char *stage);

/* The cached value with this version id (current or other), or NULL. */
const struct kt_value *kt_cache_value(const struct kt_entry *e, const char *version_id);

/* Wipes every value of the entry (secret deleted, or access removed). */
void kt_cache_forget(struct kt_entry *e);

void kt_value_clear(struct kt_value *v);

#endif
