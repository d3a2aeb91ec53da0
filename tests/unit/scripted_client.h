/* A scripted aws_client_call for the unit tests of sm.c and sqs.c: each
 * call pops the next canned answer (a JSON body, or "ERR:" and an AWS error
 * body for a failed call) and records its target and request body, so that
 * malformed, mistyped and paginated answers can be played exactly. */
#ifndef KT_SCRIPTED_CLIENT_H
#define KT_SCRIPTED_CLIENT_H

#include <stddef.h>

#define SCRIPT_MAX 8

/* What the calls since the last script_reset sent. */
extern char *requests[SCRIPT_MAX];
extern char *targets[SCRIPT_MAX];
extern size_t nrequests;

/* The next n calls answer with these, in order. */
void script(size_t n, ...);

/* Forgets the script and the requests (a cmocka setup). */
int script_reset(void **state);

#endif
