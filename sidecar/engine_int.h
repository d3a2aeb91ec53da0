/* What engine.c and engine_apply.c share; not a public face. */
#ifndef KT_ENGINE_INT_H
#define KT_ENGINE_INT_H

#include "engine.h"

#define MAX_SUBSCRIBERS 4

struct kt_engine {
	const struct kt_config *cfg;
	struct kt_engine_backend backend;
	struct kt_engine_clock clock;
	struct kt_cache cache;
	struct kt_sched_cfg sched;
	long quiet_interval; /* s, in place of check_interval while events work; 0: none */
	struct kt_parked *parked;
	kt_engine_resume_fn *resume_fn;
	void *resume_ctx;
	struct {
		kt_engine_news_fn *fn;
		void *ctx;
	} subs[MAX_SUBSCRIBERS];
	size_t nsubs;
	/* throttled_until is on the schedule clock, as the entries' times are. */
	time_t throttled_until;
	int throttle_failures;
	bool batch_denied; /* BatchGetSecretValue refused: fetch one by one */
	bool stopping;
	bool sched_more; /* schedule() left due work for lack of queue room */
	unsigned long jobs[KT_WHY_COUNT];
	struct {
		char secret[128];
		char message[400];
		time_t at; /* wall clock: shown */
	} errors[KT_LAST_ERRORS];
	size_t error_next;
};

/* engine.c: the clocks and dice (engine.h's kt_engine_clock, or the real
 * ones), news to subscribers, a job for one entry, the waiters of one entry
 * (e NULL: resumed as KT_RESUME_GONE), and the schedule. */
time_t kt_engine_sched_now(const struct kt_engine *eng);
time_t kt_engine_wall_now(const struct kt_engine *eng);
int64_t kt_engine_ms_now(const struct kt_engine *eng);
uint32_t kt_engine_rnd(const struct kt_engine *eng);
void kt_engine_tell(struct kt_engine *eng, enum kt_news what, struct kt_entry *e,
		    const char *version);
void kt_engine_submit_for(struct kt_engine *eng, struct kt_entry *e, enum kt_job_kind kind,
			  unsigned purpose, const char *vid, const char *stage,
			  enum kt_check_reason why);
void kt_engine_resume_id(struct kt_engine *eng, uint64_t entry_id, struct kt_entry *e,
			 const struct kt_job *job);
void kt_engine_schedule(struct kt_engine *eng, time_t now);

#endif
