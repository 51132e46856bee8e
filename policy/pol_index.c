/* pol_index: per-PoP and per-ASN member lists (open-addressed maps onto sorted arrays),
 * a 2-degree latitude/longitude grid of located boxes, and ANY-class lanes, built once
 * per box table. The choice visits holders, then the classes best first, and stops as
 * soon as nothing unvisited can outrank the two best. Owns its arrays, borrows the
 * table. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pol_index.h"
#include "pol_rank.h"
#include "pol_score.h"

#define GRID_DEG 2.0
#define GRID_ROWS 90  /* 180 / GRID_DEG */
#define GRID_COLS 180 /* 360 / GRID_DEG */
#define GRID_CELLS (GRID_ROWS * GRID_COLS)
#define EARTH_KM 6371.0088
#define MARGIN_DEG 0.001 /* float slack around the cap's bounding box, about 100 m */

struct idx_group {
	uint64_t key;   /* 0: empty slot (unknown PoP or ASN is never indexed) */
	uint32_t start; /* into members */
	uint32_t count;
};

struct idx_map {
	struct idx_group *slots;
	size_t cap;        /* power of two, 0 when nothing is indexed */
	uint32_t *members; /* box indexes grouped by key */
};

struct pol_index {
	const struct pol_box *boxes; /* borrowed */
	size_t n;
	struct idx_map pop, asn;
	uint32_t *cell_start;        /* GRID_CELLS + 1 offsets into cell_members */
	uint32_t *cell_members;
	uint32_t *odd;               /* located boxes off the grid (coordinates out of range) */
	struct pol_xyz *xyz;         /* unit vector of each box (located ones) */
	uint64_t *rdv_box;           /* pol_rank_rdv_box of each box */
	size_t n_odd;
	int has_lanes;
	uint32_t lane_start[POL_LANES + 1];
	uint32_t *lane_members;
	uint32_t nonempty[POL_LANES];
	unsigned n_nonempty;
	int has_up;                  /* some box is UP ... */
	uint32_t max_good_up;        /* ... with at most this many good heartbeats */
	size_t mem;
};

static inline size_t map_slot(uint64_t key, size_t mask)
{
	key ^= key >> 31;
	key *= 0x9E3779B97F4A7C15ULL;
	return (size_t)(key >> 17) & mask;
}

void pol_sort_key_idx(struct pol_key_idx *a, struct pol_key_idx *tmp, size_t n)
{
	enum { BITS = 11, BUCKETS = 1 << BITS };
	size_t count[BUCKETS];
	struct pol_key_idx *src = a, *dst = tmp, *t;

	if (n < 2)
		return;
	for (unsigned shift = 0; shift < 64; shift += BITS) {
		size_t sum = 0;

		memset(count, 0, sizeof count);
		for (size_t i = 0; i < n; i++)
			count[(src[i].key >> shift) & (BUCKETS - 1)]++;
		if (count[(src[0].key >> shift) & (BUCKETS - 1)] == n)
			continue; /* one value of this digit: the pass would change nothing */
		for (size_t d = 0; d < BUCKETS; d++) {
			size_t c = count[d];

			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < n; i++)
			dst[count[(src[i].key >> shift) & (BUCKETS - 1)]++] = src[i];
		t = src;
		src = dst;
		dst = t;
	}
	if (src != a)
		memcpy(a, src, n * sizeof *a);
}

/* Builds m from the nonzero keys of pairs[0..n) (sorted here, using tmp[0..n)), given
 * in index order: each group lists its members in index order. Returns 0 or -1. */
static int map_build(struct idx_map *m, struct pol_key_idx *pairs, struct pol_key_idx *tmp,
                     size_t n, size_t *mem)
{
	size_t groups = 0, cap = 8, i, j;

	pol_sort_key_idx(pairs, tmp, n);
	for (i = 0; i < n; i++)
		groups += i == 0 || pairs[i].key != pairs[i - 1].key;
	while (cap < 2 * groups)
		cap *= 2;
	m->slots = calloc(cap, sizeof *m->slots);
	m->members = malloc((n ? n : 1) * sizeof *m->members);
	if (!m->slots || !m->members)
		return -1;
	m->cap = cap;
	*mem += cap * sizeof *m->slots + n * sizeof *m->members;
	for (i = 0; i < n; i = j) {
		size_t s = map_slot(pairs[i].key, cap - 1);

		for (j = i; j < n && pairs[j].key == pairs[i].key; j++)
			m->members[j] = pairs[j].idx;
		while (m->slots[s].key != 0)
			s = (s + 1) & (cap - 1);
		m->slots[s] = (struct idx_group){ pairs[i].key, (uint32_t)i, (uint32_t)(j - i) };
	}
	return 0;
}

static inline const struct idx_group *map_find(const struct idx_map *m, uint64_t key)
{
	size_t s;

	if (m->cap == 0 || key == 0)
		return NULL;
	for (s = map_slot(key, m->cap - 1); m->slots[s].key != 0; s = (s + 1) & (m->cap - 1))
		if (m->slots[s].key == key)
			return &m->slots[s];
	return NULL;
}

static int on_grid(const struct pol_box *b)
{
	return b->lat >= -90 && b->lat <= 90 && b->lon >= -180 && b->lon <= 180;
}

static inline unsigned grid_row(double lat)
{
	int r = (int)floor((lat + 90) / GRID_DEG);

	return r < 0 ? 0 : r >= GRID_ROWS ? GRID_ROWS - 1 : (unsigned)r;
}

/* Columns wrap: longitude 180 is -180. */
static inline unsigned grid_col(long k)
{
	return (unsigned)(((k % GRID_COLS) + GRID_COLS) % GRID_COLS);
}

static inline long grid_col_of(double lon)
{
	return (long)floor((lon + 180) / GRID_DEG);
}

void pol_index_free(struct pol_index *x)
{
	if (!x)
		return;
	free(x->pop.slots);
	free(x->pop.members);
	free(x->asn.slots);
	free(x->asn.members);
	free(x->cell_start);
	free(x->cell_members);
	free(x->odd);
	free(x->xyz);
	free(x->rdv_box);
	free(x->lane_members);
	free(x);
}

/* Counting sort of box indexes into CSR buckets. start has nb + 1 entries. */
static void csr_fill(uint32_t *start, size_t nb, uint32_t *members, const uint32_t *bucket_of,
                     const uint32_t *order, size_t n)
{
	size_t i;

	memset(start, 0, (nb + 1) * sizeof *start);
	for (i = 0; i < n; i++)
		start[bucket_of[i] + 1]++;
	for (i = 0; i < nb; i++)
		start[i + 1] += start[i];
	/* place in index order, using start[b] as the running cursor, then shift back */
	for (i = 0; i < n; i++)
		members[start[bucket_of[i]]++] = order[i];
	for (i = nb; i > 0; i--)
		start[i] = start[i - 1];
	start[0] = 0;
}

struct pol_index *pol_index_new(const struct pol_box *boxes, size_t n)
{
	struct pol_index *x;
	struct pol_key_idx *pairs = NULL;
	uint32_t *bucket = NULL, *order = NULL;
	size_t i, np, ng;

	if (n > INT32_MAX)
		return NULL;
	x = calloc(1, sizeof *x);
	if (!x)
		return NULL;
	x->boxes = boxes;
	x->n = n;
	x->mem = sizeof *x;
	pairs = malloc((n ? n : 1) * 2 * sizeof *pairs); /* and a second half for the sort */
	bucket = malloc((n ? n : 1) * sizeof *bucket);
	order = malloc((n ? n : 1) * sizeof *order);
	x->cell_start = calloc(GRID_CELLS + 1, sizeof *x->cell_start);
	x->lane_members = malloc((n ? n : 1) * sizeof *x->lane_members);
	x->xyz = calloc(n ? n : 1, sizeof *x->xyz);
	x->rdv_box = malloc((n ? n : 1) * sizeof *x->rdv_box);
	if (!pairs || !bucket || !order || !x->cell_start || !x->lane_members || !x->xyz ||
	    !x->rdv_box)
		goto fail;
	x->mem += (GRID_CELLS + 1) * sizeof *x->cell_start + n * sizeof *x->lane_members +
	          n * sizeof *x->xyz + n * sizeof *x->rdv_box;
	for (i = 0; i < n; i++) {
		if (boxes[i].has_loc)
			x->xyz[i] = pol_rank_xyz(boxes[i].lat, boxes[i].lon);
		x->rdv_box[i] = pol_rank_rdv_box(boxes[i].id_hash);
	}

	for (i = 0, np = 0; i < n; i++)
		if (boxes[i].pop_hash != 0)
			pairs[np++] = (struct pol_key_idx){ boxes[i].pop_hash, (uint32_t)i };
	if (map_build(&x->pop, pairs, pairs + n, np, &x->mem) != 0)
		goto fail;
	for (i = 0, np = 0; i < n; i++)
		if (boxes[i].asn != 0)
			pairs[np++] = (struct pol_key_idx){ boxes[i].asn, (uint32_t)i };
	if (map_build(&x->asn, pairs, pairs + n, np, &x->mem) != 0)
		goto fail;

	/* the grid, and the located boxes whose coordinates cannot be placed on it */
	for (i = 0, ng = 0; i < n; i++) {
		const struct pol_box *b = &boxes[i];

		if (!b->has_loc)
			continue;
		if (!on_grid(b)) {
			x->n_odd++;
			continue;
		}
		bucket[ng] = grid_row(b->lat) * GRID_COLS + grid_col(grid_col_of(b->lon));
		order[ng++] = (uint32_t)i;
	}
	x->cell_members = malloc((ng ? ng : 1) * sizeof *x->cell_members);
	x->odd = malloc((x->n_odd ? x->n_odd : 1) * sizeof *x->odd);
	if (!x->cell_members || !x->odd)
		goto fail;
	x->mem += ng * sizeof *x->cell_members + x->n_odd * sizeof *x->odd;
	csr_fill(x->cell_start, GRID_CELLS, x->cell_members, bucket, order, ng);
	for (i = 0, np = 0; i < n; i++)
		if (boxes[i].has_loc && !on_grid(&boxes[i]))
			x->odd[np++] = (uint32_t)i;

	x->has_lanes = n > POL_LANES_MIN_BOXES;
	for (i = 0; i < n; i++) {
		bucket[i] = pol_lane_of(boxes[i].id_hash);
		order[i] = (uint32_t)i;
	}
	csr_fill(x->lane_start, POL_LANES, x->lane_members, bucket, order, n);
	for (i = 0; i < POL_LANES; i++)
		if (x->lane_start[i + 1] > x->lane_start[i])
			x->nonempty[x->n_nonempty++] = (uint32_t)i;

	for (i = 0; i < n; i++)
		if (boxes[i].status == POL_BOX_UP) {
			if (!x->has_up || boxes[i].good_hbs > x->max_good_up)
				x->max_good_up = boxes[i].good_hbs;
			x->has_up = 1;
		}
	free(pairs);
	free(bucket);
	free(order);
	return x;
fail:
	free(pairs);
	free(bucket);
	free(order);
	pol_index_free(x);
	return NULL;
}

const struct pol_box *pol_index_boxes(const struct pol_index *x)
{
	return x->boxes;
}

size_t pol_index_count(const struct pol_index *x)
{
	return x->n;
}

size_t pol_index_mem_bytes(const struct pol_index *x)
{
	return x ? x->mem : 0;
}

/* ---- the choice ------------------------------------------------------------------- */

struct walk {
	const struct pol_index *x;
	const struct pol_query *q;
	enum pol_class worst;
	struct pol_rank best, alt;
	struct pol_tally t;
	struct pol_geo_q g;
};

/* Box i, whose class is cls (already known to be within reach): judge and offer it. */
static inline __attribute__((always_inline)) void walk_visit(struct walk *w, size_t i,
                                                           enum pol_class cls, int holds,
                                                           int lanes)
{
	const struct pol_box *b = &w->x->boxes[i];
	enum pol_miss why;
	double load = 0;
	int ok = pol_rank_eligible(b, w->q->sla, w->q->now_ms, &why, &load);
	uint64_t lane = 0;

	if (!ok && why == POL_MISS_NO_BOX)
		return;
	if (ok && lanes && !holds)
		lane = pol_rank_lane_score(w->q->obj_hash, pol_rank_lane_of(b->id_hash));
	pol_rank_visit(b, i, cls, holds, lane, w->x->rdv_box[i], load, w->q, ok, why, &w->best,
	               &w->alt, &w->t);
}

static inline int walk_skip_holder(const struct walk *w, size_t i)
{
	return w->q->n_holders > 0 && pol_rank_is_holder(w->q, i);
}

/* After every box of classes up to `cls` and every holder was seen: can anything
 * unvisited (a non-holder of a worse class) still outrank the two best? */
static inline int walk_done(const struct walk *w, enum pol_class cls)
{
	return w->alt.idx >= 0 && w->alt.head < ((uint32_t)(cls + 1) << 1 | 1u);
}

static void walk_holders(struct walk *w)
{
	const struct pol_query *q = w->q;
	size_t nh = q->n_holders < POL_HOLDERS_MAX ? q->n_holders : POL_HOLDERS_MAX;

	for (size_t k = 0; k < nh; k++) {
		uint32_t i = q->holders[k];
		size_t j;
		enum pol_class cls;

		if (i >= w->x->n)
			continue;
		for (j = 0; j < k && q->holders[j] != i; j++)
			;
		if (j < k)
			continue; /* listed twice */
		cls = pol_rank_proximity(&w->x->boxes[i], q->client, w->worst, &w->g,
		                         &w->x->xyz[i]);
		if (cls <= w->worst)
			walk_visit(w, i, cls, 1, 0);
	}
}

static void walk_list(struct walk *w, const struct idx_map *m, uint64_t key,
                      enum pol_class cls)
{
	const struct idx_group *g = map_find(m, key);
	const struct pol_client *c = w->q->client;

	if (!g)
		return;
	for (uint32_t k = 0; k < g->count; k++) {
		uint32_t i = m->members[g->start + k];

		if (cls == POL_CLASS_ASN && c->pop_hash != 0 &&
		    w->x->boxes[i].pop_hash == c->pop_hash)
			continue; /* same PoP: seen as POP */
		if (!walk_skip_holder(w, i))
			walk_visit(w, i, cls, 0, 0);
	}
}

static inline void walk_geo_box(struct walk *w, uint32_t i)
{
	const struct pol_box *b = &w->x->boxes[i];

	if (walk_skip_holder(w, i))
		return;
	if (pol_rank_proximity(b, w->q->client, w->worst, &w->g, &w->x->xyz[i]) ==
	    POL_CLASS_GEO)
		walk_visit(w, i, POL_CLASS_GEO, 0, 0);
}

static void walk_cells(struct walk *w, unsigned r0, unsigned r1, long c0, long c1)
{
	const struct pol_index *x = w->x;

	if (c1 - c0 + 1 >= GRID_COLS) {
		c0 = 0;
		c1 = GRID_COLS - 1;
	}
	for (unsigned r = r0; r <= r1; r++)
		for (long k = c0; k <= c1; k++) {
			unsigned cell = r * GRID_COLS + grid_col(k);

			for (uint32_t j = x->cell_start[cell]; j < x->cell_start[cell + 1]; j++)
				walk_geo_box(w, x->cell_members[j]);
		}
}

/* The grid cells that can hold a box within the radius: the bounding box of the
 * spherical cap (latitude +- r/R; longitude +- asin(sin(r/R) / cos(lat)), or every
 * longitude when the cap reaches a pole), widened by MARGIN_DEG against rounding. */
static void walk_geo(struct walk *w)
{
	const struct pol_client *c = w->q->client;
	double r = w->q->sla->max_distance_km, dlat, lo, hi, s;
	const double deg = 180.0 / 3.14159265358979323846;

	for (size_t k = 0; k < w->x->n_odd; k++)
		walk_geo_box(w, w->x->odd[k]);
	if (!(c->lat >= -90 && c->lat <= 90 && c->lon >= -180 && c->lon <= 180)) {
		/* NaN is never within reach; any other odd client sees the whole grid */
		if (c->lat == c->lat && c->lon == c->lon)
			walk_cells(w, 0, GRID_ROWS - 1, 0, GRID_COLS - 1);
		return;
	}
	dlat = r / EARTH_KM * deg + MARGIN_DEG;
	lo = c->lat - dlat;
	hi = c->lat + dlat;
	s = r / EARTH_KM < 1.5707963 ? sin(r / EARTH_KM) / cos(c->lat / deg) : 2;
	if (lo <= -90 || hi >= 90 || !(s < 1)) {
		walk_cells(w, grid_row(lo < -90 ? -90 : lo), grid_row(hi > 90 ? 90 : hi), 0,
		           GRID_COLS - 1);
		return;
	}
	s = asin(s) * deg + MARGIN_DEG;
	walk_cells(w, grid_row(lo), grid_row(hi), grid_col_of(c->lon - s),
	           grid_col_of(c->lon + s));
}

static inline void walk_any_box(struct walk *w, uint32_t i, int lanes)
{
	const struct pol_box *b = &w->x->boxes[i];

	if (walk_skip_holder(w, i))
		return;
	if (pol_rank_proximity(b, w->q->client, POL_CLASS_ANY, &w->g, &w->x->xyz[i]) ==
	    POL_CLASS_ANY)
		walk_visit(w, i, POL_CLASS_ANY, 0, lanes);
}

/* Lanes in the object's order, best first; stops after the first lane that leaves an
 * alt (everything in later lanes ranks below it). */
static void walk_lanes(struct walk *w)
{
	const struct pol_index *x = w->x;
	uint64_t score[POL_LANES];
	unsigned n = x->n_nonempty, done = 0;
	uint64_t taken = 0;

	for (unsigned k = 0; k < n; k++)
		score[k] = pol_rank_lane_score(w->q->obj_hash, x->nonempty[k]);
	while (done < n) {
		unsigned top = n, lane;

		for (unsigned k = 0; k < n; k++)
			if (!(taken >> k & 1) && (top == n || score[k] > score[top]))
				top = k;
		taken |= 1ULL << top;
		done++;
		lane = x->nonempty[top];
		for (uint32_t j = x->lane_start[lane]; j < x->lane_start[lane + 1]; j++)
			walk_any_box(w, x->lane_members[j], 1);
		if (w->alt.idx >= 0)
			return;
	}
}

int pol_index_choose(const struct pol_index *x, const struct pol_query *q,
                     struct pol_choice *out)
{
	const struct pol_client *c = q->client;
	const struct pol_sla *sla = q->sla;
	struct walk w = { x, q, sla->max_class, POL_RANK_NONE, POL_RANK_NONE, { 0, 0, 0 },
	                  pol_rank_geo_q(c, sla->max_distance_km) };
	int alive = x->has_up && x->max_good_up >= sla->min_good_hbs;

	if ((unsigned)w.worst >= POL_CLASS_COUNT_)
		w.worst = POL_CLASS_ANY;
	if (!alive)
		return pol_rank_finish(&w.best, &w.alt, 0, &w.t, out);
	walk_holders(&w);
	if (c->pop_hash != 0)
		walk_list(&w, &x->pop, c->pop_hash, POL_CLASS_POP);
	if (walk_done(&w, POL_CLASS_POP) || w.worst < POL_CLASS_ASN)
		goto out;
	if (c->asn != 0)
		walk_list(&w, &x->asn, c->asn, POL_CLASS_ASN);
	if (walk_done(&w, POL_CLASS_ASN) || w.worst < POL_CLASS_GEO)
		goto out;
	if (w.g.is_on)
		walk_geo(&w);
	if (walk_done(&w, POL_CLASS_GEO) || w.worst < POL_CLASS_ANY)
		goto out;
	if (x->has_lanes) {
		walk_lanes(&w);
	} else {
		for (size_t i = 0; i < x->n; i++)
			walk_any_box(&w, (uint32_t)i, 0);
	}
out:
	return pol_rank_finish(&w.best, &w.alt, 1, &w.t, out);
}
