/* The value object of libkeyturn (keyturn_value_t): its layout, shared by
 * the code that fills it from an answer and the accessors of keyturn.h. */
#ifndef KT_CLIENT_VALUE_H
#define KT_CLIENT_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "keyturn.h"

struct keyturn_value {
	unsigned char *data; /* len bytes and a NUL; wiped when freed */
	size_t len;
	int binary;
	char *name;
	char *arn; /* NULL while the daemon does not know it */
	char *version_id;
	char **stages;
	size_t nstages;
	int64_t fetched_at;
	int stale;
};

#endif
