/* pol_score: picks the box for one (client, object) from the box table, plus the
 * next-best as a fallback, or names the reason the answer is the origin.
 * One linear pass, no allocation, no clock: the reference the index (pol_index.c) is
 * tested against. Eligibility and the order among boxes are pol_rank.h's. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "pol_rank.h"
#include "pol_score.h"

static const char *const miss_names[POL_MISS_COUNT_] = {
	[POL_MISS_NONE] = "none",
	[POL_MISS_NO_BOX] = "no_box",
	[POL_MISS_NO_BOX_IN_REACH] = "no_box_in_reach",
	[POL_MISS_ALL_OVER_CAPACITY] = "all_over_capacity",
	[POL_MISS_STATE_STALE] = "state_stale",
	[POL_MISS_SLA_TTFB] = "sla_ttfb",
	[POL_MISS_NOT_CACHED] = "not_cached",
	[POL_MISS_REDIS_DOWN] = "redis_down",
};

static const char *const class_names[POL_CLASS_COUNT_] = {
	[POL_CLASS_POP] = "pop",
	[POL_CLASS_ASN] = "asn",
	[POL_CLASS_GEO] = "geo",
	[POL_CLASS_ANY] = "any",
};

const char *pol_miss_name(enum pol_miss m)
{
	if ((unsigned)m >= POL_MISS_COUNT_)
		return "unknown";
	return miss_names[m];
}

const char *pol_class_name(enum pol_class c)
{
	if ((unsigned)c >= POL_CLASS_COUNT_)
		return "unknown";
	return class_names[c];
}

/* Accepts exactly "pop", "asn", "geo" or "any" (lower case). Returns 0, or -1 leaving
 * *out untouched. */
int pol_class_parse(const char *s, enum pol_class *out)
{
	for (unsigned i = 0; i < POL_CLASS_COUNT_; i++) {
		if (s && strcmp(s, class_names[i]) == 0) {
			*out = (enum pol_class)i;
			return 0;
		}
	}
	return -1;
}

/* GEO needs both locations and a positive radius; NaN coordinates are never within it. */
enum pol_class pol_score_class(const struct pol_box *b, const struct pol_client *c,
                               double max_distance_km)
{
	struct pol_geo_q g = pol_rank_geo_q(c, max_distance_km);

	return pol_rank_proximity(b, c, POL_CLASS_ANY, &g, NULL);
}

int pol_score_choose(const struct pol_box *boxes, size_t n, const struct pol_client *c,
                     uint64_t obj_hash, const struct pol_sla *sla, int64_t now_ms,
                     struct pol_choice *out)
{
	struct pol_query q = { c, obj_hash, sla, now_ms, NULL, 0 };

	return pol_score_choose_q(boxes, n, &q, out);
}

/* See pol_score.h and docs/policy.md. The order among eligible boxes is pol_rank's:
 * class, holders first, lane (ANY class of a table with lanes, non-holders), load
 * bucket, rendezvous score, table index. Miss reason when nothing is eligible, first
 * match:
 *   no_box           n == 0, or no box is alive (UP with enough good heartbeats)
 *   no_box_in_reach  no alive box is within sla->max_class, whatever its state
 *   state_stale      every alive box in reach has a stale heartbeat
 *   all_over_capacity  at least one alive box in reach failed only for capacity
 *   sla_ttfb         otherwise: the fresh boxes in reach with room are all too slow
 * Borrows boxes and q for the call. */
int pol_score_choose_q(const struct pol_box *boxes, size_t n, const struct pol_query *q,
                       struct pol_choice *out)
{
	const struct pol_sla *sla = q->sla;
	enum pol_class worst = sla->max_class;
	struct pol_rank best = POL_RANK_NONE, alt = POL_RANK_NONE;
	struct pol_tally t = { 0, 0, 0 };
	size_t alive = 0;
	int has_lanes = n > POL_LANES_MIN_BOXES;
	struct pol_geo_q g = pol_rank_geo_q(q->client, sla->max_distance_km);

	if ((unsigned)worst >= POL_CLASS_COUNT_)
		worst = POL_CLASS_ANY;
	if (n > INT32_MAX) /* indexes are int32: the tail is never considered */
		n = INT32_MAX;

	for (size_t i = 0; i < n; i++) {
		const struct pol_box *b = &boxes[i];
		enum pol_miss why;
		enum pol_class cls;
		double load = 0;
		int ok = pol_rank_eligible(b, sla, q->now_ms, &why, &load), holds;
		uint64_t lane = 0;

		if (!ok && why == POL_MISS_NO_BOX)
			continue;
		alive++;
		cls = pol_rank_proximity(b, q->client, worst, &g, NULL);
		if (cls > worst)
			continue;
		holds = q->n_holders > 0 && pol_rank_is_holder(q, i);
		if (ok && has_lanes && cls == POL_CLASS_ANY && !holds)
			lane = pol_rank_lane_score(q->obj_hash, pol_rank_lane_of(b->id_hash));
		pol_rank_visit(b, i, cls, holds, lane, pol_rank_rdv_box(b->id_hash), load, q, ok,
		               why, &best, &alt, &t);
	}
	return pol_rank_finish(&best, &alt, alive > 0, &t, out);
}
