/* rdr_acct: the redirector's share of offload accounting: redirects to boxes, to the
 * origin, and misses by reason, HINCRBYed into echos:acct:total and the minute bucket
 * (docs/redis.md) once a second. Deltas wait in memory while Redis is down. */
#ifndef ECHOS_REDIRECTOR_RDR_ACCT_H
#define ECHOS_REDIRECTOR_RDR_ACCT_H

#include <stdint.h>

#include "pol_types.h"

struct ec_redis;

#define RDR_ACCT_MINUTE_TTL_S 172800

struct rdr_acct {
	uint64_t box;                       /* redirects to a box not yet flushed */
	uint64_t origin;                    /* redirects to the origin not yet flushed */
	uint64_t miss[POL_MISS_COUNT_];     /* of which, by reason */
	uint64_t lost;                      /* commands sent whose reply never came */
};

static inline void rdr_acct_box(struct rdr_acct *a) { a->box++; }
static inline void rdr_acct_origin(struct rdr_acct *a, enum pol_miss why)
{
	a->origin++;
	if ((unsigned)why < POL_MISS_COUNT_)
		a->miss[why]++;
}

/* Sends the pending deltas (each to the total and to wall_ms's minute) and clears what
 * was handed to Redis. Returns the number of fields sent, or EC_EAGAIN when Redis is
 * down (the deltas stay for the next flush). A link lost with commands in flight loses
 * at most those deltas (counted in lost): counts are never applied twice. */
int rdr_acct_flush(struct rdr_acct *a, struct ec_redis *r, int64_t wall_ms);

#endif
