/* What offline.c and offline_write.c share; not a public face (login_int.h
 * declares the kt_login_offline_* calls the rest of login/ makes). offline.c
 * owns the hashing thread (start, stop, its descriptor), the offline checks
 * and their queue, and takes every finished job; offline_write.c owns
 * writing, refreshing and removing the verifier files, and the retries of
 * failed writes. Calls go one way only: offline.c calls offline_write.c. */
#ifndef KT_LOGIN_OFFLINE_INT_H
#define KT_LOGIN_OFFLINE_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "hasher.h"
#include "login_int.h"

/* A check that waits on the thread, by the job's id. conn_id is 0 once no
 * request waits for its answer any more (the connection asked something
 * else since). */
struct pending {
	uint64_t job_id;
	uint64_t conn_id;
	uid_t uid;
};

/* lg->hasher: the loop's side of the hashing thread. */
struct kt_login_hasher {
	struct kt_hasher *h;
	uint64_t next_id;
	size_t unwritten; /* entries with offline_failed_at set, at the last count */
	struct pending checks[KT_LOGIN_OFFLINE_CHECKS];
	size_t nchecks;
	const struct kt_hash_job *answering; /* the check being answered now */
};

/* offline_write.c: new hashes came back (a KT_HASH_MAKE job, still owned by
 * the caller): written unless the value or the mapping changed meanwhile (a
 * newer job is queued then, or the verifier is not wanted). */
void kt_login_offline_made(struct kt_login *lg, struct kt_hash_job *j, time_t now);

#endif
