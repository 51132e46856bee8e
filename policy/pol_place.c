/* pol_place: replica counts from demand and uplinks, replica homes by rendezvous over a
 * bounded candidate set, greedy by requests per byte within storage and uplink, and the
 * diff between two placements. Pure: no I/O, no clock; allocates only its results and
 * scratch arrays, all freed before returning except the result handed to the caller. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "pol_place.h"
#include "pol_rank.h"
#include "pol_score.h"

void pol_place_params_default(struct pol_place_params *p)
{
	p->min_rate = 1.0 / 3600.0;
	p->object_share = 0.25;
	p->max_util = 0.8;
	p->fallback_weight = 1.0;
	p->max_replicas = 8;
	p->candidates = 32;
	p->extra_probes = 4;
	p->value = POL_PLACE_BY_REQ_DENSITY;
	p->stickiness = 0.2;
}

static int place_params_ok(const struct pol_place_params *p)
{
	return (p->value == POL_PLACE_BY_REQ_DENSITY || p->value == POL_PLACE_BY_RATE) &&
	       p->min_rate >= 0 && p->object_share > 0 && p->object_share <= 1 &&
	       p->max_util > 0 && p->max_util <= 1 && p->fallback_weight >= 0 &&
	       p->max_replicas >= 1 && p->candidates >= 1 && p->stickiness >= 0;
}

static double place_demand_bps(const struct pol_place_obj *o, const struct pol_place_params *p)
{
	double rate = o->rate + p->fallback_weight * o->fallback_rate;

	return rate * (double)o->size_bytes * 8.0;
}

static uint32_t place_replicas(const struct pol_place_obj *o, double demand_bps,
                               double box_uplink_bps, uint32_t region_boxes,
                               const struct pol_place_params *p)
{
	double share = box_uplink_bps * p->object_share, need;
	uint32_t want = 1;

	if (share > 0) {
		need = ceil(demand_bps / share);
		if (need > (double)p->max_replicas)
			want = p->max_replicas;
		else if (need > 1)
			want = (uint32_t)need;
	}
	if (o->min_replicas > want)
		want = o->min_replicas;
	if (want > p->max_replicas)
		want = p->max_replicas;
	if (want > region_boxes)
		want = region_boxes;
	return want;
}

uint32_t pol_place_replicas(const struct pol_place_obj *o, double box_uplink_bps,
                            uint32_t region_boxes, const struct pol_place_params *p)
{
	double demand = place_demand_bps(o, p);
	uint32_t want, sticky;

	if (!region_boxes || (o->rate < p->min_rate && !o->min_replicas))
		return 0;
	want = place_replicas(o, demand, box_uplink_bps, region_boxes, p);
	if (o->held > want) {
		/* keep the replicas it has while demand stays within the margin */
		sticky = place_replicas(o, demand * (1 + p->stickiness), box_uplink_bps,
		                        region_boxes, p);
		want = sticky < o->held ? sticky : o->held;
	}
	return want;
}

static inline unsigned place_bucket(uint64_t id_hash)
{
	return (unsigned)(pol_rank_mix(id_hash ^ 0x5bd1e9955bd1e995ULL) >> 58);
}

uint32_t pol_place_region_probes(uint32_t region_boxes, const struct pol_place_params *p)
{
	uint64_t k;

	if (!region_boxes)
		return POL_PLACE_BUCKETS;
	k = ((uint64_t)POL_PLACE_BUCKETS * p->candidates + region_boxes - 1) / region_boxes;
	return k > POL_PLACE_BUCKETS || k == 0 ? POL_PLACE_BUCKETS : (uint32_t)k;
}

/* An object's probe sequence: bucket i is (start + i * step) mod 64, step odd. */
static inline void place_probe_seq(uint64_t obj_hash, unsigned *start, unsigned *step)
{
	uint64_t h = pol_rank_mix(obj_hash);

	*start = (unsigned)(h & (POL_PLACE_BUCKETS - 1));
	*step = (unsigned)((h >> 6) & (POL_PLACE_BUCKETS - 1)) | 1;
}

unsigned pol_place_bucket(uint64_t box_id_hash)
{
	return place_bucket(box_id_hash);
}

unsigned pol_place_probe_rank(uint64_t obj_hash, uint64_t box_id_hash)
{
	unsigned start, step, inv;

	place_probe_seq(obj_hash, &start, &step);
	/* step is odd, so invertible mod 64: a*a = 1 (mod 8), two Newton steps reach 2^12 */
	inv = step;
	inv *= 2 - step * inv;
	inv *= 2 - step * inv;
	return ((place_bucket(box_id_hash) - start) * inv) & (POL_PLACE_BUCKETS - 1);
}

void pol_place_probe_ranks(uint64_t obj_hash, uint8_t rank[POL_PLACE_BUCKETS])
{
	unsigned start, step;

	place_probe_seq(obj_hash, &start, &step);
	for (unsigned i = 0; i < POL_PLACE_BUCKETS; i++)
		rank[(start + i * step) & (POL_PLACE_BUCKETS - 1)] = (uint8_t)i;
}

static size_t radix_digits(size_t n)
{
	return n >= 65536 ? 65536 : 256;
}

/* LSD radix sort of 64-bit keys carrying a 32-bit payload; stable, so equal keys keep
 * their input order (determinism). 16-bit digits for big inputs, 8-bit ones for small
 * inputs (where clearing 65536 counters would dominate). Uses tk/tv (n each) and count
 * (radix_digits(n)) as scratch. Passes where every key has the same digit are skipped. */
static void place_radix_sort(uint64_t *k, uint32_t *v, uint64_t *tk, uint32_t *tv, size_t n,
                             size_t *count)
{
	size_t digits = radix_digits(n), mask = digits - 1;
	unsigned bits = digits == 65536 ? 16 : 8;

	for (unsigned shift = 0; shift < 64; shift += bits) {
		size_t sum = 0;
		int same = 0;

		memset(count, 0, digits * sizeof *count);
		for (size_t i = 0; i < n; i++)
			count[(k[i] >> shift) & mask]++;
		for (size_t d = 0; d < digits; d++) {
			size_t c = count[d];

			if (c == n)
				same = 1;
			count[d] = sum;
			sum += c;
		}
		if (same)
			continue;
		for (size_t i = 0; i < n; i++) {
			size_t at = count[(k[i] >> shift) & mask]++;

			tk[at] = k[i];
			tv[at] = v[i];
		}
		memcpy(k, tk, n * sizeof *k);
		memcpy(v, tv, n * sizeof *v);
	}
}

struct place_region {
	uint64_t hash;
	uint32_t first, n;  /* this region's boxes are order[first .. first + n) */
	uint32_t probes;    /* buckets probed per object before extra probes */
	uint32_t boff[POL_PLACE_BUCKETS + 1]; /* bucket b: order[first + boff[b] .. boff[b+1]) */
	double mean_uplink_bps;
	uint64_t free_bytes;
};

/* Scratch of one computation; everything here is freed by place_state_fini(). */
struct place_state {
	const struct pol_place_box *boxes;
	const struct pol_place_params *p;
	uint32_t *order;          /* indices of the boxes that can take objects */
	struct place_region *regions;
	size_t n_regions;
	uint64_t *free_bytes;     /* [n_boxes] */
	double *load_bps;         /* [n_boxes] planned load */
	uint64_t *cand_score;     /* [largest region] */
	uint32_t *cand_box;
	uint32_t *pair_box;       /* chosen replicas: box index ... */
	uint32_t *pair_row;       /* ... and input row */
	size_t n_pairs, cap_pairs;
};

static void place_state_fini(struct place_state *s)
{
	free(s->order);
	free(s->regions);
	free(s->free_bytes);
	free(s->load_bps);
	free(s->cand_score);
	free(s->cand_box);
	free(s->pair_box);
	free(s->pair_row);
}

static const struct pol_place_box *sort_boxes; /* qsort has no context argument */

static int place_cmp_box(const void *a, const void *b)
{
	const struct pol_place_box *x = &sort_boxes[*(const uint32_t *)a];
	const struct pol_place_box *y = &sort_boxes[*(const uint32_t *)b];
	unsigned bx = place_bucket(x->id_hash), by = place_bucket(y->id_hash);

	if (x->region_hash != y->region_hash)
		return x->region_hash < y->region_hash ? -1 : 1;
	if (bx != by)
		return bx < by ? -1 : 1;
	if (x->id_hash != y->id_hash)
		return x->id_hash < y->id_hash ? -1 : 1;
	return *(const uint32_t *)a < *(const uint32_t *)b ? -1 : 1;
}

/* Groups the usable boxes by region and bucket. Returns 0 or EC_ENOMEM. */
static int place_regions_build(struct place_state *s, size_t n_boxes)
{
	const struct pol_place_params *p = s->p;
	size_t n = 0, largest = 1;

	s->order = malloc((n_boxes ? n_boxes : 1) * sizeof *s->order);
	s->free_bytes = calloc(n_boxes ? n_boxes : 1, sizeof *s->free_bytes);
	s->load_bps = calloc(n_boxes ? n_boxes : 1, sizeof *s->load_bps);
	s->regions = calloc(n_boxes ? n_boxes : 1, sizeof *s->regions);
	if (!s->order || !s->free_bytes || !s->load_bps || !s->regions)
		return EC_ENOMEM;
	for (size_t i = 0; i < n_boxes; i++) {
		s->free_bytes[i] = s->boxes[i].storage_bytes;
		if (s->boxes[i].is_up && s->boxes[i].storage_bytes && s->boxes[i].uplink_bps)
			s->order[n++] = (uint32_t)i;
	}
	/* XXX: qsort needs a global for its context; placement is not reentrant across
	 * threads for this reason alone (the daemon and the simulator are single-threaded). */
	sort_boxes = s->boxes;
	qsort(s->order, n, sizeof *s->order, place_cmp_box);
	sort_boxes = NULL;

	for (size_t i = 0; i < n;) {
		struct place_region *r = &s->regions[s->n_regions++];
		size_t j = i;
		double up = 0;

		r->hash = s->boxes[s->order[i]].region_hash;
		while (j < n && s->boxes[s->order[j]].region_hash == r->hash) {
			const struct pol_place_box *b = &s->boxes[s->order[j]];

			r->boff[place_bucket(b->id_hash) + 1]++;
			up += (double)b->uplink_bps;
			r->free_bytes += b->storage_bytes;
			j++;
		}
		r->first = (uint32_t)i;
		r->n = (uint32_t)(j - i);
		r->mean_uplink_bps = up / r->n;
		for (unsigned b = 0; b < POL_PLACE_BUCKETS; b++)
			r->boff[b + 1] += r->boff[b];
		/* Enough buckets that about p->candidates boxes are examined; a region with
		 * no more boxes than that is probed whole (exact rendezvous). */
		r->probes = pol_place_region_probes(r->n, p);
		if (r->n > largest)
			largest = r->n;
		i = j;
	}
	s->cand_score = malloc(largest * sizeof *s->cand_score);
	s->cand_box = malloc(largest * sizeof *s->cand_box);
	if (!s->cand_score || !s->cand_box)
		return EC_ENOMEM;
	return 0;
}

static const struct place_region *place_region_find(const struct place_state *s, uint64_t h)
{
	size_t lo = 0, hi = s->n_regions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->regions[mid].hash == h)
			return &s->regions[mid];
		if (s->regions[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Adds the boxes of bucket b of region r that can take the object (room for size
 * bytes, and for load_bps more planned load, capped at the box's object share) to the
 * candidates, with their rendezvous score. Only the box a replica goes to changes state
 * while one object is placed, and it leaves the candidates, so the check holds for the
 * whole object. */
static size_t place_gather(struct place_state *s, const struct place_region *r, unsigned b,
                           uint64_t obj_hash, uint64_t size, double load_bps, size_t m)
{
	const struct pol_place_params *p = s->p;

	for (uint32_t j = r->boff[b]; j < r->boff[b + 1]; j++) {
		uint32_t bi = s->order[r->first + j];
		const struct pol_place_box *bx = &s->boxes[bi];
		double up = (double)bx->uplink_bps, add = load_bps;

		if (s->free_bytes[bi] < size)
			continue;
		if (add > up * p->object_share)
			add = up * p->object_share;
		if (s->load_bps[bi] + add > up * p->max_util)
			continue;
		s->cand_box[m] = bi;
		s->cand_score[m] = pol_rendezvous(obj_hash, bx->id_hash);
		m++;
	}
	return m;
}

static int place_pair_add(struct place_state *s, uint32_t box, uint32_t row)
{
	if (s->n_pairs == s->cap_pairs) {
		size_t cap = s->cap_pairs ? s->cap_pairs * 2 : 4096;
		uint32_t *pb = realloc(s->pair_box, cap * sizeof *pb), *pr;

		if (!pb)
			return EC_ENOMEM;
		s->pair_box = pb;
		pr = realloc(s->pair_row, cap * sizeof *pr);
		if (!pr)
			return EC_ENOMEM;
		s->pair_row = pr;
		s->cap_pairs = cap;
	}
	s->pair_box[s->n_pairs] = box;
	s->pair_row[s->n_pairs] = row;
	s->n_pairs++;
	return 0;
}

/* Places up to want replicas of row on the highest-rendezvous candidates that still
 * have room for its bytes and its planned load. Candidates come from the object's
 * probe sequence of buckets (start and odd step from its hash: a permutation of all
 * buckets); when too few can take it, up to extra_probes more buckets are tried.
 * Returns the replicas placed, or EC_ENOMEM. */
static int place_one(struct place_state *s, struct place_region *r, uint32_t row,
                     const struct pol_place_obj *o, uint32_t want)
{
	const struct pol_place_params *p = s->p;
	uint64_t size = o->size_bytes ? o->size_bytes : 1;
	unsigned start, step;
	uint32_t probes = 0, limit = r->probes + p->extra_probes;
	double per_bps = place_demand_bps(o, p) / want;
	size_t m = 0;
	uint32_t placed = 0;

	place_probe_seq(o->obj_hash, &start, &step);
	if (limit > POL_PLACE_BUCKETS)
		limit = POL_PLACE_BUCKETS;
	for (; probes < r->probes; probes++)
		m = place_gather(s, r, (start + probes * step) & (POL_PLACE_BUCKETS - 1),
		                 o->obj_hash, size, per_bps, m);
	while (m < want && probes < limit) {
		m = place_gather(s, r, (start + probes * step) & (POL_PLACE_BUCKETS - 1),
		                 o->obj_hash, size, per_bps, m);
		probes++;
	}
	for (; placed < want && m; placed++) {
		size_t best = 0;
		uint32_t bi;
		double up, add = per_bps;

		for (size_t j = 1; j < m; j++)
			if (s->cand_score[j] > s->cand_score[best])
				best = j;
		bi = s->cand_box[best];
		up = (double)s->boxes[bi].uplink_bps;
		if (add > up * p->object_share)
			add = up * p->object_share;
		if (place_pair_add(s, bi, row) != 0)
			return EC_ENOMEM;
		s->free_bytes[bi] -= size;
		s->load_bps[bi] += add;
		r->free_bytes -= size;
		s->cand_box[best] = s->cand_box[m - 1];
		s->cand_score[best] = s->cand_score[m - 1];
		m--;
	}
	return (int)placed;
}

/* Sorts the rows by value (p->value), highest first (ties: input order). Fills order
 * with row numbers. Returns 0 or EC_ENOMEM. */
static int place_order_rows(const struct pol_place_obj *objs, size_t n,
                            const struct pol_place_params *p, uint32_t *order)
{
	uint64_t *k = malloc((n ? n : 1) * sizeof *k), *tk = malloc((n ? n : 1) * sizeof *tk);
	uint32_t *tv = malloc((n ? n : 1) * sizeof *tv);
	size_t *count = malloc(radix_digits(n) * sizeof *count);
	int rc = EC_ENOMEM;

	if (!k || !tk || !tv || !count)
		goto out;
	for (size_t i = 0; i < n; i++) {
		double d = objs[i].rate;
		uint64_t bits;

		if (p->value == POL_PLACE_BY_REQ_DENSITY)
			d /= (double)(objs[i].size_bytes ? objs[i].size_bytes : 1);
		if (objs[i].held)
			d *= 1 + p->stickiness;
		if (!(d > 0))
			d = 0; /* NaN and negatives sort last */
		memcpy(&bits, &d, sizeof bits); /* positive doubles order as their bits */
		k[i] = ~bits;
		order[i] = (uint32_t)i;
	}
	place_radix_sort(k, order, tk, tv, n, count);
	rc = 0;
out:
	free(k);
	free(tk);
	free(tv);
	free(count);
	return rc;
}

/* Turns the (box, row) pairs into per-box sorted object lists. */
static int place_result_build(struct place_state *s, const struct pol_place_obj *objs,
                              size_t n_boxes, struct pol_place_result *res)
{
	size_t n = s->n_pairs;
	uint64_t *k = malloc((n ? n : 1) * sizeof *k), *tk = malloc((n ? n : 1) * sizeof *tk);
	uint32_t *tv = malloc((n ? n : 1) * sizeof *tv);
	size_t *count = malloc(radix_digits(n) * sizeof *count);
	int rc = EC_ENOMEM;

	res->off = calloc(n_boxes + 1, sizeof *res->off);
	res->objs = malloc((n ? n : 1) * sizeof *res->objs);
	if (!k || !tk || !tv || !count || !res->off || !res->objs)
		goto out;
	for (size_t i = 0; i < n; i++) {
		k[i] = objs[s->pair_row[i]].obj_hash;
		res->off[s->pair_box[i] + 1]++;
		res->placed_bytes += objs[s->pair_row[i]].size_bytes;
	}
	place_radix_sort(k, s->pair_box, tk, tv, n, count);
	for (size_t b = 0; b < n_boxes; b++)
		res->off[b + 1] += res->off[b];
	{
		size_t *cur = malloc((n_boxes ? n_boxes : 1) * sizeof *cur);

		if (!cur)
			goto out;
		memcpy(cur, res->off, n_boxes * sizeof *cur);
		for (size_t i = 0; i < n; i++)
			res->objs[cur[s->pair_box[i]]++] = k[i];
		free(cur);
	}
	rc = 0;
out:
	free(k);
	free(tk);
	free(tv);
	free(count);
	return rc;
}

void pol_place_result_free(struct pol_place_result *r)
{
	if (!r)
		return;
	free(r->box_ids);
	free(r->off);
	free(r->objs);
	free(r->replicas);
	free(r->wanted);
	free(r);
}

int pol_place_compute(const struct pol_place_obj *objs, size_t n_objs,
                      const struct pol_place_box *boxes, size_t n_boxes,
                      const struct pol_place_params *p, struct pol_place_result **out)
{
	struct place_state s = { .boxes = boxes, .p = p };
	struct pol_place_result *res;
	uint32_t *rows = NULL;
	int rc = EC_ENOMEM;

	*out = NULL;
	if (!place_params_ok(p) || n_objs >= UINT32_MAX || n_boxes >= UINT32_MAX)
		return EC_EINVAL;
	res = calloc(1, sizeof *res);
	if (!res)
		return EC_ENOMEM;
	res->n_boxes = n_boxes;
	res->n_objs = n_objs;
	res->box_ids = malloc((n_boxes ? n_boxes : 1) * sizeof *res->box_ids);
	res->replicas = calloc(n_objs ? n_objs : 1, sizeof *res->replicas);
	res->wanted = calloc(n_objs ? n_objs : 1, sizeof *res->wanted);
	rows = malloc((n_objs ? n_objs : 1) * sizeof *rows);
	if (!res->box_ids || !res->replicas || !res->wanted || !rows)
		goto fail;
	for (size_t i = 0; i < n_boxes; i++)
		res->box_ids[i] = boxes[i].id_hash;
	if (place_regions_build(&s, n_boxes) != 0 || place_order_rows(objs, n_objs, p, rows) != 0)
		goto fail;

	for (size_t i = 0; i < n_objs; i++) {
		uint32_t row = rows[i];
		const struct pol_place_obj *o = &objs[row];
		struct place_region *r = (struct place_region *)place_region_find(&s, o->region_hash);
		uint32_t want;
		int got;

		if (!r)
			continue;
		want = pol_place_replicas(o, r->mean_uplink_bps, r->n, p);
		res->wanted[row] = want;
		if (!want || r->free_bytes < (o->size_bytes ? o->size_bytes : 1))
			continue;
		got = place_one(&s, r, row, o, want);
		if (got < 0)
			goto fail;
		res->replicas[row] = (uint32_t)got;
	}
	if (place_result_build(&s, objs, n_boxes, res) != 0)
		goto fail;
	free(rows);
	place_state_fini(&s);
	*out = res;
	return 0;
fail:
	free(rows);
	place_state_fini(&s);
	pol_place_result_free(res);
	return rc;
}

const uint64_t *pol_place_box_objs(const struct pol_place_result *r, size_t i, size_t *n)
{
	*n = r->off[i + 1] - r->off[i];
	return r->objs + r->off[i];
}

/* --- diff ------------------------------------------------------------------------- */

static int diff_push(struct pol_place_diff *d, size_t *cap, uint64_t box, uint64_t obj,
                     enum pol_place_op op)
{
	if (d->n == *cap) {
		size_t nc = *cap ? *cap * 2 : 1024;
		struct pol_place_change *v = realloc(d->v, nc * sizeof *v);

		if (!v)
			return EC_ENOMEM;
		d->v = v;
		*cap = nc;
	}
	d->v[d->n].box_id = box;
	d->v[d->n].obj_hash = obj;
	d->v[d->n].op = op;
	d->n++;
	return 0;
}

static int diff_all(struct pol_place_diff *d, size_t *cap, const struct pol_place_result *r,
                    size_t i, enum pol_place_op op)
{
	size_t n;
	const uint64_t *v = pol_place_box_objs(r, i, &n);

	for (size_t j = 0; j < n; j++)
		if (diff_push(d, cap, r->box_ids[i], v[j], op) != 0)
			return EC_ENOMEM;
	return 0;
}

/* Merges two ascending lists of one box. */
static int diff_box(struct pol_place_diff *d, size_t *cap, uint64_t box, const uint64_t *a,
                    size_t na, const uint64_t *b, size_t nb)
{
	size_t i = 0, j = 0;

	while (i < na || j < nb) {
		int rc = 0;

		if (j == nb || (i < na && a[i] < b[j]))
			rc = diff_push(d, cap, box, a[i++], POL_PLACE_DROP);
		else if (i == na || b[j] < a[i])
			rc = diff_push(d, cap, box, b[j++], POL_PLACE_ADD);
		else
			i++, j++;
		if (rc)
			return rc;
	}
	return 0;
}

static const uint64_t *sort_ids; /* qsort context, see place_regions_build() */

static int diff_cmp_id(const void *a, const void *b)
{
	uint64_t x = sort_ids[*(const size_t *)a], y = sort_ids[*(const size_t *)b];

	if (x != y)
		return x < y ? -1 : 1;
	return *(const size_t *)a < *(const size_t *)b ? -1 : 1;
}

static size_t *diff_index(const struct pol_place_result *r)
{
	size_t *ix = malloc((r->n_boxes ? r->n_boxes : 1) * sizeof *ix);

	if (!ix)
		return NULL;
	for (size_t i = 0; i < r->n_boxes; i++)
		ix[i] = i;
	sort_ids = r->box_ids;
	qsort(ix, r->n_boxes, sizeof *ix, diff_cmp_id);
	sort_ids = NULL;
	return ix;
}

int pol_place_diff(const struct pol_place_result *prev, const struct pol_place_result *next,
                   struct pol_place_diff *d)
{
	size_t cap = 0, *pi = NULL, *ni = NULL, i = 0, j = 0, np, nn;
	int rc = EC_ENOMEM;

	d->n = 0;
	d->v = NULL;
	np = prev ? prev->n_boxes : 0;
	nn = next->n_boxes;
	ni = diff_index(next);
	if (!ni || (prev && !(pi = diff_index(prev))))
		goto out;
	/* Boxes matched by id; a duplicated id is paired in index order. */
	while (i < np || j < nn) {
		uint64_t a = i < np ? prev->box_ids[pi[i]] : 0;
		uint64_t b = j < nn ? next->box_ids[ni[j]] : 0;

		if (j == nn || (i < np && a < b)) {
			if (diff_all(d, &cap, prev, pi[i++], POL_PLACE_DROP) != 0)
				goto out;
		} else if (i == np || b < a) {
			if (diff_all(d, &cap, next, ni[j++], POL_PLACE_ADD) != 0)
				goto out;
		} else {
			size_t na, nb;
			const uint64_t *va = pol_place_box_objs(prev, pi[i], &na);
			const uint64_t *vb = pol_place_box_objs(next, ni[j], &nb);

			if (diff_box(d, &cap, a, va, na, vb, nb) != 0)
				goto out;
			i++, j++;
		}
	}
	rc = 0;
out:
	free(pi);
	free(ni);
	if (rc)
		pol_place_diff_fini(d);
	return rc;
}

void pol_place_diff_fini(struct pol_place_diff *d)
{
	free(d->v);
	d->v = NULL;
	d->n = 0;
}
