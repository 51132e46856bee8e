/* pol_rank: the order among eligible boxes and the per-box step shared by the linear
 * choice (pol_score.c) and the indexed one (pol_index.c), so both give the same answer
 * by construction. Internal to policy/: static inline helpers, no state, no memory. */
#ifndef ECHOS_POLICY_POL_RANK_H
#define ECHOS_POLICY_POL_RANK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "pol_score.h"

/* One candidate's sort key. Better is: smaller head (class, then holders first), larger
 * lane (ANY-class lane score, 0 elsewhere), smaller bucket, larger rdv, smaller idx. */
struct pol_rank {
	uint32_t head;   /* class << 1 | (does not hold the object) */
	uint32_t bucket; /* load bucket with the new viewer */
	uint64_t lane;   /* lane score: ANY class, non-holders, tables with lanes only */
	uint64_t rdv;    /* pol_rendezvous(obj, box) */
	int32_t idx;     /* table index; -1: empty */
};

/* Miss-reason counts over the eligible-or-not boxes in reach that are alive. */
struct pol_tally {
	size_t in_reach, stale, over_cap;
};

#define POL_RANK_NONE { 0, 0, 0, 0, -1 }
#define POL_RANK_BUCKET_MAX 255

static inline int pol_rank_better(const struct pol_rank *a, const struct pol_rank *b)
{
	if (b->idx < 0)
		return 1;
	if (a->head != b->head)
		return a->head < b->head;
	if (a->lane != b->lane)
		return a->lane > b->lane;
	if (a->bucket != b->bucket)
		return a->bucket < b->bucket;
	if (a->rdv != b->rdv)
		return a->rdv > b->rdv;
	return a->idx < b->idx;
}

/* Keeps the two best candidates seen so far. */
static inline void pol_rank_offer(struct pol_rank *best, struct pol_rank *alt,
                                  const struct pol_rank *r)
{
	if (pol_rank_better(r, best)) {
		*alt = *best;
		*best = *r;
	} else if (pol_rank_better(r, alt)) {
		*alt = *r;
	}
}

/* Unit vector of a point on the sphere. GEO reach is decided on the chord between two
 * unit vectors, which is monotone in the great-circle distance: the same answer as
 * haversine <= r without trigonometry per box once the vectors are known. */
struct pol_xyz {
	double x, y, z;
};

#define POL_RANK_EARTH_KM 6371.0088
#define POL_RANK_DEG (3.14159265358979323846 / 180.0)

static inline struct pol_xyz pol_rank_xyz(double lat, double lon)
{
	double cl = cos(lat * POL_RANK_DEG);
	struct pol_xyz v = { cl * cos(lon * POL_RANK_DEG), cl * sin(lon * POL_RANK_DEG),
	                     sin(lat * POL_RANK_DEG) };

	return v;
}

/* What one query needs to judge GEO reach: the client's vector and the squared chord of
 * the radius; is_on is 0 when GEO cannot apply (no location, radius not positive, or
 * NaN coordinates). A radius of half the circumference or more covers the sphere. */
struct pol_geo_q {
	int is_on;
	struct pol_xyz c;
	double chord2;
};

static inline struct pol_geo_q pol_rank_geo_q(const struct pol_client *c,
                                              double max_distance_km)
{
	struct pol_geo_q g = { 0, { 0, 0, 0 }, 0 };
	double half;

	if (!c->has_loc || !(max_distance_km > 0) || c->lat != c->lat || c->lon != c->lon)
		return g;
	half = max_distance_km / (2 * POL_RANK_EARTH_KM);
	g.is_on = 1;
	g.c = pol_rank_xyz(c->lat, c->lon);
	g.chord2 = half >= 3.14159265358979323846 / 2 ? 5.0 : 4 * sin(half) * sin(half);
	return g;
}

/* NaN box coordinates give a NaN chord, which is never within reach. */
static inline int pol_rank_geo_within(const struct pol_geo_q *g, const struct pol_xyz *b)
{
	double dx = b->x - g->c.x, dy = b->y - g->c.y, dz = b->z - g->c.z;

	return dx * dx + dy * dy + dz * dz <= g->chord2;
}

/* Class of b for c. GEO is judged only when the caller cares (worst >= GEO), the query
 * allows it (g->is_on) and the box is located; bxyz is the box's vector, or NULL to
 * compute it here. Unknown PoP (0) or ASN (0) never matches, even each other. */
static inline enum pol_class pol_rank_proximity(const struct pol_box *b,
                                                const struct pol_client *c,
                                                enum pol_class worst,
                                                const struct pol_geo_q *g,
                                                const struct pol_xyz *bxyz)
{
	struct pol_xyz v;

	if (c->pop_hash != 0 && b->pop_hash == c->pop_hash)
		return POL_CLASS_POP;
	if (c->asn != 0 && b->asn == c->asn)
		return POL_CLASS_ASN;
	if (worst < POL_CLASS_GEO || !g->is_on || !b->has_loc)
		return POL_CLASS_ANY;
	if (!bxyz) {
		v = pol_rank_xyz(b->lat, b->lon);
		bxyz = &v;
	}
	return pol_rank_geo_within(g, bxyz) ? POL_CLASS_GEO : POL_CLASS_ANY;
}

/* The rendezvous score, inline (pol_rendezvous in pol_hash.c is this). */
static inline uint64_t pol_rank_mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 27;
	x *= 0x94D049BB133111EBULL;
	x ^= x >> 31;
	return x;
}

/* The box's half of the rendezvous score: it depends on the box alone, so an index can
 * keep it per box (pol_index.c). */
static inline uint64_t pol_rank_rdv_box(uint64_t box_hash)
{
	return pol_rank_mix(box_hash + 0x9E3779B97F4A7C15ULL);
}

static inline uint64_t pol_rank_rdv(uint64_t obj_hash, uint64_t box_hash)
{
	return pol_rank_mix(obj_hash ^ pol_rank_rdv_box(box_hash));
}

/* pol_lane_of and pol_lane_score, inline: the top 6 bits of the mixed id (a box's lane
 * never depends on which other boxes exist), and the object's rendezvous over lanes,
 * salted so a lane's score is unrelated to any box score. */
static inline unsigned pol_rank_lane_of(uint64_t box_hash)
{
	return (unsigned)(pol_rank_mix(box_hash ^ 0x6c616e65ULL) >> 58) & (POL_LANES - 1);
}

static inline uint64_t pol_rank_lane_score(uint64_t obj_hash, unsigned lane)
{
	return pol_rank_rdv(obj_hash, 0x6c616e6500000000ULL | lane);
}

/* Utilization this box would have with one more viewer, in buckets of
 * 1/POL_SCORE_UTIL_BUCKETS. Coarse on purpose: a box at 31% and one at 34% are equally
 * good, and letting 3% decide would move objects between boxes with every heartbeat,
 * defeating rendezvous affinity (and the cache hits it buys). Only called on eligible
 * boxes, whose uplink is nonzero. */
static inline uint32_t pol_rank_bucket(const struct pol_box *b, double load)
{
	double u = load / (double)b->uplink_bps * POL_SCORE_UTIL_BUCKETS;

	if (!(u < POL_RANK_BUCKET_MAX))
		return POL_RANK_BUCKET_MAX;
	return (uint32_t)u;
}

/* pol_sla_eligible's rules (see pol_sla.c), inline for the per-box loops. *load is the
 * box's load with the new viewer when the box got as far as the capacity rule (always
 * when eligible), for pol_rank_bucket. */
static inline int pol_rank_eligible(const struct pol_box *b, const struct pol_sla *sla,
                                    int64_t now_ms, enum pol_miss *why, double *load_out)
{
	enum pol_miss m = POL_MISS_NONE;

	if (b->status != POL_BOX_UP || b->good_hbs < sla->min_good_hbs) {
		m = POL_MISS_NO_BOX;
	} else if (sla->max_state_age_ms < 0 ||
	           (now_ms > b->hb_ms &&
	            (uint64_t)now_ms - (uint64_t)b->hb_ms > (uint64_t)sla->max_state_age_ms)) {
		m = POL_MISS_STATE_STALE;
	} else {
		/* in double: three u64 rates could overflow an integer sum */
		double load = (double)b->egress_bps + (double)b->charged_bps +
		              (double)sla->viewer_bps;

		*load_out = load;
		/* written so that a NaN max_util compares false, i.e. over capacity */
		if (b->uplink_bps == 0 || !(load <= sla->max_util * (double)b->uplink_bps))
			m = POL_MISS_ALL_OVER_CAPACITY;
		else if (sla->max_ttfb_ms != 0 && b->ttfb_ms > sla->max_ttfb_ms)
			m = POL_MISS_SLA_TTFB;
	}
	*why = m;
	return m == POL_MISS_NONE;
}

/* Is table index i among the first POL_HOLDERS_MAX holders of q? */
static inline int pol_rank_is_holder(const struct pol_query *q, size_t i)
{
	size_t n = q->n_holders < POL_HOLDERS_MAX ? q->n_holders : POL_HOLDERS_MAX;

	for (size_t k = 0; k < n; k++)
		if (q->holders[k] == i)
			return 1;
	return 0;
}

/* One alive box in reach, of class cls: judged, tallied and offered. `lane` is its lane
 * score (0 unless the table has lanes, the box is ANY class and holds nothing), rdv_box
 * its pol_rank_rdv_box and load what pol_rank_eligible said (when ok). */
static inline void pol_rank_visit(const struct pol_box *b, size_t i, enum pol_class cls,
                                  int is_holder, uint64_t lane, uint64_t rdv_box,
                                  double load, const struct pol_query *q, int ok,
                                  enum pol_miss why, struct pol_rank *best,
                                  struct pol_rank *alt, struct pol_tally *t)
{
	struct pol_rank r;

	t->in_reach++;
	if (!ok) {
		t->stale += why == POL_MISS_STATE_STALE;
		t->over_cap += why == POL_MISS_ALL_OVER_CAPACITY;
		return;
	}
	r.head = (uint32_t)cls << 1 | (is_holder ? 0u : 1u);
	r.lane = lane;
	r.bucket = pol_rank_bucket(b, load);
	r.rdv = pol_rank_mix(q->obj_hash ^ rdv_box);
	r.idx = (int32_t)i;
	pol_rank_offer(best, alt, &r);
}

/* Fills out from the two best and the tally. alive: is any box alive at all. */
static inline int pol_rank_finish(const struct pol_rank *best, const struct pol_rank *alt,
                                  int alive, const struct pol_tally *t,
                                  struct pol_choice *out)
{
	out->box = best->idx;
	out->alt = alt->idx;
	out->holds = 0;
	if (best->idx >= 0) {
		out->cls = (enum pol_class)(best->head >> 1);
		out->holds = (best->head & 1) == 0;
		out->miss = POL_MISS_NONE;
		return 0;
	}
	out->cls = POL_CLASS_ANY;
	if (!alive)
		out->miss = POL_MISS_NO_BOX;
	else if (t->in_reach == 0)
		out->miss = POL_MISS_NO_BOX_IN_REACH;
	else if (t->stale == t->in_reach)
		out->miss = POL_MISS_STATE_STALE;
	else if (t->over_cap > 0)
		out->miss = POL_MISS_ALL_OVER_CAPACITY;
	else
		out->miss = POL_MISS_SLA_TTFB; /* the only reason left */
	return 1;
}

#endif
