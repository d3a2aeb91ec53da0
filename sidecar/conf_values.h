/* Value checks of keyturnd's configuration (private to conf.c, conf_keys.c and
 * conf_values.c): words, numbers, booleans and user or group ids. */
#ifndef KT_CONF_VALUES_H
#define KT_CONF_VALUES_H

#include <stdbool.h>
#include <stdint.h>

#define MAX_SECRET_ID 2048

/* Printable ASCII without spaces, at least one character. */
bool conf_is_word(const char *s);

/* What a %H or %u substitution may bring into a SecretId. */
bool conf_is_name_part(const char *s);

/* yes/no, true/false, on/off, 1/0, in any case. 0 or -EINVAL. */
int conf_parse_bool(const char *v, bool *out);

/* A decimal whole number in [min, max]: 0, -EINVAL or -ERANGE. */
int conf_parse_long(const char *v, long min, long max, long *out);

/* A size in bytes: decimal digits, then optionally K or M (KiB, MiB; in
 * either case), in [min, max]: 0, -EINVAL or -ERANGE. */
int conf_parse_size(const char *v, long min, long max, long *out);

/* A user (group = false) or group id by name, or digits as the id itself.
 * 0, -ENOENT for no such name, or another negative errno. */
int conf_lookup_id(const char *name, bool group, uint32_t *id);

#endif
