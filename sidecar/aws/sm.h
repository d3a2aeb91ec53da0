/* The Secrets Manager operations keyturn uses, as C structures: request
 * bodies built and answers parsed with json-c, values wiped when freed. */
#ifndef KT_SM_H
#define KT_SM_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "awserr.h"
#include "client.h"

#define SM_BATCH_MAX 20

struct sm_value {
	char *arn;
	char *name;
	char *version_id;
	char **stages;
	size_t nstages;
	unsigned char *data; /* the SecretString bytes, or the decoded SecretBinary; wiped */
	size_t len;
	bool binary;
	time_t created;
};

struct sm_version {
	char *version_id;
	char **stages;
	size_t nstages;
	time_t created;
	time_t last_accessed;
};

struct sm_description {
	char *arn;
	char *name;
	bool rotation_enabled;
	long rotation_days;      /* RotationRules.AutomaticallyAfterDays, 0 when absent */
	char *rotation_schedule; /* RotationRules.ScheduleExpression or NULL */
	char *rotation_duration; /* RotationRules.Duration ("2h") or NULL */
	time_t last_rotated, last_changed, next_rotation, deleted;
	struct sm_version *versions; /* from VersionIdsToStages */
	size_t nversions;
};

struct sm_batch_error {
	char *secret_id;
	struct aws_error err;
};

struct sm_batch {
	struct sm_value *values;
	size_t nvalues;
	struct sm_batch_error *errors;
	size_t nerrors;
};

struct sm_random_opts {
	long length;               /* 0: AWS default (32) */
	const char *exclude_chars; /* NULL: none */
	bool exclude_numbers, exclude_punctuation, exclude_uppercase, exclude_lowercase;
	bool include_space, require_each_included_type;
};

/* GetSecretValue by VersionId or VersionStage (both NULL: AWSCURRENT). */
int sm_get_secret_value(struct aws_client *c, const char *id, const char *version_id,
			const char *stage, struct sm_value *out, struct aws_error *err);

/* BatchGetSecretValue for 1..20 ids; per-secret errors land in out->errors.
 * Follows NextToken until every id is answered. */
int sm_batch_get_secret_value(struct aws_client *c, const char *const *ids, size_t n,
			      struct sm_batch *out, struct aws_error *err);

int sm_describe_secret(struct aws_client *c, const char *id, struct sm_description *out,
		       struct aws_error *err);

/* ListSecretVersionIds, every page. */
int sm_list_secret_version_ids(struct aws_client *c, const char *id, bool include_deprecated,
			       struct sm_version **out, size_t *n, struct aws_error *err);

/* PutSecretValue: string (binary=false) or bytes; stages may be NULL (AWSCURRENT).
 * *version_id receives the new VersionId (malloc'd) when not NULL. */
int sm_put_secret_value(struct aws_client *c, const char *id, const void *data, size_t len,
			bool binary, const char *const *stages, size_t nstages, char **version_id,
			struct aws_error *err);

/* PutSecretValue with a ClientRequestToken (token; NULL: none), which becomes
 * the new VersionId: a retry with the same token and value is a no-op for
 * AWS, the rotation steps' idempotence. */
int sm_put_secret_version(struct aws_client *c, const char *id, const char *token, const void *data,
			  size_t len, bool binary, const char *const *stages, size_t nstages,
			  char **version_id, struct aws_error *err);

/* UpdateSecretVersionStage: move `stage` to move_to (may be NULL) and off
 * remove_from (may be NULL). */
int sm_update_secret_version_stage(struct aws_client *c, const char *id, const char *stage,
				   const char *move_to, const char *remove_from,
				   struct aws_error *err);

/* GetRandomPassword; *password is malloc'd and must be freed with kt_str_free_wiped(). */
int sm_get_random_password(struct aws_client *c, const struct sm_random_opts *opts, char **password,
			   struct aws_error *err);

/* CreateSecret with an initial string or binary value. */
int sm_create_secret(struct aws_client *c, const char *name, const void *data, size_t len,
		     bool binary, const char *description, char **arn, char **version_id,
		     struct aws_error *err);

/* Finds the VersionId carrying `stage` in a description, or NULL. */
const char *sm_description_version_for(const struct sm_description *d, const char *stage);

void sm_value_free(struct sm_value *v);
void sm_description_free(struct sm_description *d);
void sm_versions_free(struct sm_version *v, size_t n);
void sm_batch_free(struct sm_batch *b);

#endif
