/* The AWS shared configuration and credentials files (~/.aws/config,
 * ~/.aws/credentials): INI-like files with profile sections. */
#ifndef KT_PROFILE_H
#define KT_PROFILE_H

#include <stdbool.h>
#include <stddef.h>

struct aws_profile_kv {
	char *key;   /* lower-case */
	char *value; /* wiped when freed: it may be a secret key */
	int line;
};

struct aws_profile {
	char *path; /* the file it came from */
	char *name;
	struct aws_profile_kv *kv;
	size_t nkv;
};

/* Reads profile `name` from `path`. In a config file (is_config) sections are
 * "[profile NAME]" except "[default]"; in a credentials file they are "[NAME]".
 * Returns 0; -ENOENT when the file or the profile does not exist; -EINVAL for
 * a syntax error, with err naming the file and line ("FILE:LINE: ..."). */
int aws_profile_load(const char *path, const char *name, bool is_config, struct aws_profile *out,
		     char *err, size_t errlen);

/* The value of key in the profile, or NULL. */
const char *aws_profile_get(const struct aws_profile *p, const char *key);
int aws_profile_line(const struct aws_profile *p, const char *key);

void aws_profile_free(struct aws_profile *p);

/* Paths and profile name as the AWS tools pick them: AWS_SHARED_CREDENTIALS_FILE
 * or ~/.aws/credentials, AWS_CONFIG_FILE or ~/.aws/config, AWS_PROFILE or
 * "default". Each returns a malloc'd string or NULL when HOME is unknown. */
char *aws_profile_credentials_path(void);
char *aws_profile_config_path(void);
char *aws_profile_name(void);

#endif
