/* rdr_acct: the redirector's share of offload accounting: redirects to boxes, to the
 * origin, and misses by reason, HINCRBYed into echos:acct:total and the minute bucket
 * (docs/redis.md) once a second, also per service (svc.<s>.rdr.*) and per viewer region
 * (region.<r>.rdr.*). Deltas wait in memory while Redis is down. */
#ifndef ECHOS_REDIRECTOR_RDR_ACCT_H
#define ECHOS_REDIRECTOR_RDR_ACCT_H

#include <stdint.h>
#include <string.h>

#include "ec_svc.h"
#include "pol_types.h"

struct ec_redis;

#define RDR_ACCT_MINUTE_TTL_S 172800

/* The deltas of one service or one region. */
struct rdr_acct_row {
	uint64_t box;                       /* redirects to a box not yet flushed */
	uint64_t origin;                    /* redirects to the origin not yet flushed */
	uint64_t miss[POL_MISS_COUNT_];     /* of which, by reason */
};

struct rdr_acct {
	uint64_t box;                       /* redirects to a box not yet flushed */
	uint64_t origin;                    /* redirects to the origin not yet flushed */
	uint64_t miss[POL_MISS_COUNT_];     /* of which, by reason */
	uint64_t lost;                      /* commands sent whose reply never came */
	/* breakdowns: names seen since start (services across reloads, regions of the
	 * topology), bounded; more, or names with dots, are counted under "_other".
	 * A zeroed struct is ready: the tables start on first use. */
	struct ec_svc_tab svc_names, region_names;
	struct rdr_acct_row svc[EC_SVC_TAB_MAX], region[EC_SVC_TAB_MAX];
};

/* The row of name in t, starting the table on first use. */
static inline struct rdr_acct_row *rdr_acct_row(struct ec_svc_tab *t,
                                                struct rdr_acct_row *rows, const char *name)
{
	if (t->cap == 0)
		ec_svc_tab_init(t, 0);
	return &rows[ec_svc_tab_slot(t, name, strlen(name))];
}

/* Counts a redirect to a box / to the origin for `why`, under the service and the
 * viewer region named (borrowed for the call; NULL: "default" / "_"). */
static inline void rdr_acct_box(struct rdr_acct *a, const char *service, const char *region)
{
	a->box++;
	rdr_acct_row(&a->svc_names, a->svc, service ? service : EC_SVC_DEFAULT)->box++;
	rdr_acct_row(&a->region_names, a->region, region ? region : EC_SVC_UNPLACED)->box++;
}

static inline void rdr_acct_origin(struct rdr_acct *a, enum pol_miss why, const char *service,
                                   const char *region)
{
	struct rdr_acct_row *s = rdr_acct_row(&a->svc_names, a->svc,
	                                      service ? service : EC_SVC_DEFAULT);
	struct rdr_acct_row *g = rdr_acct_row(&a->region_names, a->region,
	                                      region ? region : EC_SVC_UNPLACED);

	a->origin++;
	s->origin++;
	g->origin++;
	if ((unsigned)why < POL_MISS_COUNT_) {
		a->miss[why]++;
		s->miss[why]++;
		g->miss[why]++;
	}
}

/* Sends the pending deltas (each to the total and to wall_ms's minute) and clears what
 * was handed to Redis. Returns the number of fields sent, or EC_EAGAIN when Redis is
 * down (the deltas stay for the next flush). A link lost with commands in flight loses
 * at most those deltas (counted in lost): counts are never applied twice. */
int rdr_acct_flush(struct rdr_acct *a, struct ec_redis *r, int64_t wall_ms);

#endif
