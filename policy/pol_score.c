/* pol_score: picks the box for one (client, object) from the box table, plus the
 * next-best as a fallback, or names the reason the answer is the origin.
 * One linear pass, no allocation, no clock; eligibility itself is pol_sla's. */
#include <math.h>
#include <stdint.h>
#include <string.h>

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

/* Class of b for c, computing the distance only when GEO could still be in reach
 * (`worst` is the worst class the caller cares about): trigonometry is the costliest
 * thing in the loop. Unknown PoP (0) or ASN (0) never matches, even each other. */
static inline enum pol_class score_proximity(const struct pol_box *b,
                                             const struct pol_client *c,
                                             enum pol_class worst, double max_distance_km)
{
	if (c->pop_hash != 0 && b->pop_hash == c->pop_hash)
		return POL_CLASS_POP;
	if (c->asn != 0 && b->asn == c->asn)
		return POL_CLASS_ASN;
	if (worst < POL_CLASS_GEO || !c->has_loc || !b->has_loc || !(max_distance_km > 0))
		return POL_CLASS_ANY;
	/* a great circle is never shorter than its latitude difference: far boxes are
	 * ruled out without trigonometry (the constant is a hair under 1 degree in km) */
	if (fabs(c->lat - b->lat) * 111.19 > max_distance_km)
		return POL_CLASS_ANY;
	if (pol_haversine_km(c->lat, c->lon, b->lat, b->lon) <= max_distance_km)
		return POL_CLASS_GEO;
	return POL_CLASS_ANY;
}

/* GEO needs both locations and a positive radius; a NaN distance is never within it. */
enum pol_class pol_score_class(const struct pol_box *b, const struct pol_client *c,
                               double max_distance_km)
{
	return score_proximity(b, c, POL_CLASS_ANY, max_distance_km);
}

/* Order of preference among eligible boxes: class, then load bucket (both smaller is
 * better, packed in `coarse`), then rendezvous score (larger is better), then table
 * index (earlier wins, by scanning in order and replacing only on strictly better). */
struct rank {
	uint32_t coarse;
	uint64_t rdv;
	int32_t idx;
};

static inline int rank_better(uint32_t coarse, uint64_t rdv, const struct rank *r)
{
	if (r->idx < 0)
		return 1;
	if (coarse != r->coarse)
		return coarse < r->coarse;
	return rdv > r->rdv;
}

#define BUCKET_MAX 255

/* Utilization this box would have with one more viewer, in buckets of
 * 1/POL_SCORE_UTIL_BUCKETS. Coarse on purpose: a box at 31% and one at 34% are equally
 * good, and letting 3% decide would move objects between boxes with every heartbeat,
 * defeating rendezvous affinity (and the cache hits it buys). Only called on eligible
 * boxes, whose uplink is nonzero. */
static inline uint32_t score_bucket(const struct pol_box *b, const struct pol_sla *sla)
{
	double load = (double)b->egress_bps + (double)b->charged_bps + (double)sla->viewer_bps;
	double u = load / (double)b->uplink_bps * POL_SCORE_UTIL_BUCKETS;

	if (!(u < BUCKET_MAX))
		return BUCKET_MAX;
	return (uint32_t)u;
}

/* See pol_score.h and docs/policy.md. Miss reason when nothing is eligible, first match:
 *   no_box           n == 0, or no box is alive (UP with enough good heartbeats)
 *   no_box_in_reach  no alive box is within sla->max_class, whatever its state
 *   state_stale      every alive box in reach has a stale heartbeat
 *   all_over_capacity  at least one alive box in reach failed only for capacity
 *   sla_ttfb         otherwise: the fresh boxes in reach with room are all too slow
 * Borrows boxes, c and sla for the call. */
int pol_score_choose(const struct pol_box *boxes, size_t n, const struct pol_client *c,
                     uint64_t obj_hash, const struct pol_sla *sla, int64_t now_ms,
                     struct pol_choice *out)
{
	enum pol_class worst = sla->max_class;
	struct rank best = { 0, 0, -1 }, alt = { 0, 0, -1 };
	size_t alive = 0, in_reach = 0, stale = 0, over_cap = 0;

	if ((unsigned)worst >= POL_CLASS_COUNT_)
		worst = POL_CLASS_ANY;
	if (n > INT32_MAX) /* indexes are int32: the tail is never considered */
		n = INT32_MAX;

	for (size_t i = 0; i < n; i++) {
		const struct pol_box *b = &boxes[i];
		enum pol_miss why = POL_MISS_NONE;
		enum pol_class cls;
		uint32_t coarse;
		uint64_t rdv;
		int ok = pol_sla_eligible(b, sla, now_ms, &why);

		if (!ok && why == POL_MISS_NO_BOX)
			continue;
		alive++;
		cls = score_proximity(b, c, worst, sla->max_distance_km);
		if (cls > worst)
			continue;
		in_reach++;
		if (!ok) {
			stale += why == POL_MISS_STATE_STALE;
			over_cap += why == POL_MISS_ALL_OVER_CAPACITY;
			continue;
		}
		coarse = (uint32_t)cls << 8 | score_bucket(b, sla);
		rdv = pol_rendezvous(obj_hash, b->id_hash);
		if (rank_better(coarse, rdv, &best)) {
			alt = best;
			best = (struct rank){ coarse, rdv, (int32_t)i };
		} else if (rank_better(coarse, rdv, &alt)) {
			alt = (struct rank){ coarse, rdv, (int32_t)i };
		}
	}

	out->box = best.idx;
	out->alt = alt.idx;
	if (best.idx >= 0) {
		out->cls = (enum pol_class)(best.coarse >> 8);
		out->miss = POL_MISS_NONE;
		return 0;
	}
	out->cls = POL_CLASS_ANY;
	if (alive == 0)
		out->miss = POL_MISS_NO_BOX;
	else if (in_reach == 0)
		out->miss = POL_MISS_NO_BOX_IN_REACH;
	else if (stale == in_reach)
		out->miss = POL_MISS_STATE_STALE;
	else if (over_cap > 0)
		out->miss = POL_MISS_ALL_OVER_CAPACITY;
	else
		out->miss = POL_MISS_SLA_TTFB; /* the only reason left */
	return 1;
}
