/* test_pol_index: the indexed choice gives exactly the linear reference's answer (box,
 * alt, class, miss, holds) on random tables, clients, SLAs and holders, with and without
 * lanes; plus the rules the index adds to the order: holders first within a class, ANY
 * lanes. Fixed seeds, fixed now_ms, no clock. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pol_index.h"
#include "pol_rank.h"
#include "pol_score.h"
#include "pol_test.h"

/* Rows start from a healthy default and override a few fields. */
#pragma GCC diagnostic ignored "-Woverride-init"

/* Where boxes and clients are: mostly a crowded area (so the GEO class is busy), some
 * anywhere on Earth, a few on the grid's edges (poles, the date line). */
static void rnd_loc(int *has, double *lat, double *lon)
{
	unsigned k = rnd_below(100);

	*has = k >= 15;
	if (k < 70) {
		*lat = rnd_in(40, 60);
		*lon = rnd_in(-10, 30);
	} else if (k < 95) {
		*lat = rnd_in(-90, 90);
		*lon = rnd_in(-180, 180);
	} else {
		static const double edge[][2] = { { 90, 0 }, { -90, 10 }, { 0, 180 },
		                                  { 0, -180 }, { 89.9, 179.9 }, { 10, -179.99 } };
		unsigned e = rnd_below(LEN(edge));

		*lat = edge[e][0];
		*lon = edge[e][1];
	}
}

static void rnd_box(struct pol_box *b, size_t i)
{
	memset(b, 0, sizeof *b);
	b->id_hash = rnd_below(50) == 0 && i > 0 ? (b - 1)->id_hash : rnd();
	b->pop_hash = rnd_below(4) == 0 ? 0 : 0x100 + rnd_below(20);
	b->asn = rnd_below(3) == 0 ? 0 : 64500 + rnd_below(8);
	rnd_loc(&b->has_loc, &b->lat, &b->lon);
	b->uplink_bps = rnd_below(40) == 0 ? 0 : (100 + rnd_below(900)) * MiB;
	b->egress_bps = (uint64_t)((double)b->uplink_bps * rnd_in(0, 1.0));
	b->charged_bps = rnd_below(3) == 0 ? rnd_below(100) * MiB : 0;
	b->ttfb_ms = rnd_below(400);
	b->status = rnd_below(10) < 8 ? POL_BOX_UP : rnd_below(2) ? POL_BOX_DRAINING : POL_BOX_DOWN;
	b->hb_ms = NOW - (int64_t)rnd_below(4000);
	b->good_hbs = rnd_below(5);
}

static void rnd_client(struct pol_client *c)
{
	memset(c, 0, sizeof *c);
	c->pop_hash = rnd_below(3) == 0 ? 0 : 0x100 + rnd_below(24);
	c->asn = rnd_below(3) == 0 ? 0 : 64500 + rnd_below(10);
	rnd_loc(&c->has_loc, &c->lat, &c->lon);
}

static void rnd_sla(struct pol_sla *s)
{
	static const double radius[] = { 0, 30, 300, 1000, 3000, 12000, 30000 };

	memset(s, 0, sizeof *s);
	s->max_state_age_ms = 3000;
	s->max_ttfb_ms = rnd_below(2) ? 0 : 250;
	s->viewer_bps = 5 * MiB;
	s->max_util = rnd_below(4) == 0 ? 0.5 : 0.9;
	s->max_class = (enum pol_class)rnd_below(POL_CLASS_COUNT_);
	s->max_distance_km = radius[rnd_below(LEN(radius))];
	s->min_good_hbs = rnd_below(4);
}

static void expect_same(const struct pol_box *boxes, size_t n, const struct pol_index *x,
                        const struct pol_query *q)
{
	struct pol_choice lin, idx;
	int rl, ri;

	memset(&lin, 0x5a, sizeof lin);
	memset(&idx, 0xa5, sizeof idx);
	rl = pol_score_choose_q(boxes, n, q, &lin);
	ri = pol_index_choose(x, q, &idx);
	if (rl != ri || lin.box != idx.box || lin.alt != idx.alt || lin.miss != idx.miss ||
	    (lin.box >= 0 && (lin.cls != idx.cls || lin.holds != idx.holds)))
		fail_msg("n=%zu obj=%016llx: linear box %d alt %d %s %s holds %d; index box %d "
		         "alt %d %s %s holds %d", n, (unsigned long long)q->obj_hash, lin.box,
		         lin.alt, pol_class_name(lin.cls), pol_miss_name(lin.miss), lin.holds,
		         idx.box, idx.alt, pol_class_name(idx.cls), pol_miss_name(idx.miss),
		         idx.holds);
}

static void check_random_tables(size_t n, unsigned tables, unsigned queries, uint64_t seed)
{
	rng_state = seed;
	for (unsigned t = 0; t < tables; t++) {
		struct pol_box *boxes = calloc(n ? n : 1, sizeof *boxes);
		struct pol_index *x;

		assert_non_null(boxes);
		for (size_t i = 0; i < n; i++)
			rnd_box(&boxes[i], i);
		x = pol_index_new(boxes, n);
		assert_non_null(x);
		for (unsigned k = 0; k < queries; k++) {
			struct pol_client c;
			struct pol_sla sla;
			uint32_t holders[6];
			struct pol_query q = { &c, rnd(), &sla, NOW, holders, rnd_below(7) };

			rnd_client(&c);
			rnd_sla(&sla);
			for (size_t h = 0; h < q.n_holders; h++)
				holders[h] = rnd_below(8) == 0 ? (uint32_t)(n + 3)
				           : h > 0 && rnd_below(5) == 0 ? holders[h - 1]
				           : (uint32_t)rnd_below(n ? (unsigned)n : 1);
			expect_same(boxes, n, x, &q);
		}
		pol_index_free(x);
		free(boxes);
	}
}

/* The best and second-best boxes by a plain search over every eligible box in reach,
 * ranked with pol_rank_better: a reference for the two the walk keeps as it goes
 * (pol_rank_offer), which shares nothing with it but the per-box helpers. */
static void best_two_by_search(const struct pol_box *boxes, size_t n, const struct pol_query *q,
                               int32_t *best, int32_t *alt)
{
	const struct pol_sla *sla = q->sla;
	enum pol_class worst = sla->max_class;
	struct pol_geo_q g = pol_rank_geo_q(q->client, sla->max_distance_km);
	struct pol_rank *r = calloc(n ? n : 1, sizeof *r), b = POL_RANK_NONE, a = POL_RANK_NONE;
	size_t m = 0;

	assert_non_null(r);
	if ((unsigned)worst >= POL_CLASS_COUNT_)
		worst = POL_CLASS_ANY;
	for (size_t i = 0; i < n; i++) {
		enum pol_miss why;
		enum pol_class cls;
		double load = 0;
		int holds;

		if (!pol_rank_eligible(&boxes[i], sla, q->now_ms, &why, &load))
			continue;
		cls = pol_rank_proximity(&boxes[i], q->client, worst, &g, NULL);
		if (cls > worst)
			continue;
		holds = q->n_holders > 0 && pol_rank_is_holder(q, i);
		r[m].head = (uint32_t)cls << 1 | (holds ? 0u : 1u);
		r[m].lane = n > POL_LANES_MIN_BOXES && cls == POL_CLASS_ANY && !holds
		          ? pol_rank_lane_score(q->obj_hash, pol_rank_lane_of(boxes[i].id_hash)) : 0;
		r[m].bucket = pol_rank_bucket(&boxes[i], load);
		r[m].rdv = pol_rank_rdv(q->obj_hash, boxes[i].id_hash);
		r[m].idx = (int32_t)i;
		m++;
	}
	for (size_t k = 0; k < m; k++)
		if (pol_rank_better(&r[k], &b))
			b = r[k];
	for (size_t k = 0; k < m; k++)
		if (r[k].idx != b.idx && pol_rank_better(&r[k], &a))
			a = r[k];
	*best = b.idx;
	*alt = a.idx;
	free(r);
}

/* The walk keeps exactly the two best (the search above), on tables small and large,
 * with lanes and without, busy and idle. */
static void test_walk_keeps_the_two_best_by_search(void **state)
{
	static const size_t sizes[] = { 1, 2, 5, 40, 300, 1500 };

	(void)state;
	rng_state = 77;
	for (size_t s = 0; s < LEN(sizes); s++)
		for (unsigned t = 0; t < 20; t++) {
			size_t n = sizes[s];
			struct pol_box *boxes = calloc(n, sizeof *boxes);

			assert_non_null(boxes);
			for (size_t i = 0; i < n; i++)
				rnd_box(&boxes[i], i);
			for (unsigned k = 0; k < 50; k++) {
				struct pol_client c;
				struct pol_sla sla;
				uint32_t holders[4];
				struct pol_query q = { &c, rnd(), &sla, NOW, holders, rnd_below(5) };
				struct pol_choice ch;
				int32_t best, alt;

				rnd_client(&c);
				rnd_sla(&sla);
				for (size_t h = 0; h < q.n_holders; h++)
					holders[h] = (uint32_t)rnd_below((unsigned)n);
				pol_score_choose_q(boxes, n, &q, &ch);
				best_two_by_search(boxes, n, &q, &best, &alt);
				if (ch.box != best || ch.alt != alt)
					fail_msg("n=%zu: walk box %d alt %d, search box %d alt %d", n,
					         ch.box, ch.alt, best, alt);
			}
			free(boxes);
		}
}

static void test_index_equals_linear_on_small_tables(void **state)
{
	(void)state;
	check_random_tables(0, 3, 20, 1);
	check_random_tables(1, 50, 40, 2);
	check_random_tables(7, 60, 60, 3);
	check_random_tables(60, 40, 100, 4);
}

static void test_index_equals_linear_on_tables_without_lanes(void **state)
{
	(void)state;
	check_random_tables(POL_LANES_MIN_BOXES, 6, 150, 5);
}

static void test_index_equals_linear_on_tables_with_lanes(void **state)
{
	(void)state;
	check_random_tables(POL_LANES_MIN_BOXES + 1, 6, 150, 6);
	check_random_tables(4000, 4, 150, 7);
}

/* A table where every box is healthy, so early stops are taken as often as possible. */
static void test_index_equals_linear_when_every_box_is_healthy(void **state)
{
	(void)state;
	rng_state = 8;
	for (size_t n = 10; n <= 3000; n *= 5) {
		struct pol_box *boxes = calloc(n, sizeof *boxes);
		struct pol_index *x;

		assert_non_null(boxes);
		for (size_t i = 0; i < n; i++) {
			rnd_box(&boxes[i], i);
			boxes[i].status = POL_BOX_UP;
			boxes[i].good_hbs = 5;
			boxes[i].hb_ms = NOW;
			boxes[i].uplink_bps = 1000 * MiB;
			boxes[i].egress_bps = rnd_below(4) * 200 * MiB;
			boxes[i].ttfb_ms = 1;
		}
		x = pol_index_new(boxes, n);
		assert_non_null(x);
		for (unsigned k = 0; k < 400; k++) {
			struct pol_client c;
			struct pol_sla sla;
			uint32_t holders[2] = { rnd_below((unsigned)n), rnd_below((unsigned)n) };
			struct pol_query q = { &c, rnd(), &sla, NOW, holders, rnd_below(3) };

			rnd_client(&c);
			rnd_sla(&sla);
			sla.min_good_hbs = 1;
			expect_same(boxes, n, x, &q);
		}
		pol_index_free(x);
		free(boxes);
	}
}

/* --- rules ---------------------------------------------------------------------- */

#define BOX(id, ...)                                                                   \
	{ .id_hash = 0x1000 + (id), .uplink_bps = 1000 * MiB, .egress_bps = 100 * MiB, \
	  .status = POL_BOX_UP, .hb_ms = NOW - 500, .good_hbs = 5, .ttfb_ms = 20,      \
	  __VA_ARGS__ }

static const struct pol_sla sla_any = { 3000, 0, 5 * MiB, 0.9, POL_CLASS_ANY, 500, 1 };
static const struct pol_client client_a = { 0xA1, 0, 64500, 0, 0, 0 };

static void choose_both(const struct pol_box *b, size_t n, const uint32_t *holders, size_t nh,
                        uint64_t obj, struct pol_choice *ch)
{
	struct pol_query q = { &client_a, obj, &sla_any, NOW, holders, nh };
	struct pol_index *x = pol_index_new(b, n);

	assert_non_null(x);
	expect_same(b, n, x, &q);
	assert_int_equal(pol_index_choose(x, &q, ch), ch->box >= 0 ? 0 : 1);
	pol_index_free(x);
}

static void test_holder_beats_idler_box_in_the_same_class(void **state)
{
	struct pol_box b[3] = { BOX(0, .pop_hash = 0xA1, .egress_bps = 0),
	                        BOX(1, .pop_hash = 0xA1, .egress_bps = 600 * MiB),
	                        BOX(2, .pop_hash = 0xA1, .egress_bps = 0) };
	uint32_t h[1] = { 1 };
	struct pol_choice ch;

	(void)state;
	choose_both(b, 3, h, 1, 42, &ch);
	assert_int_equal(ch.box, 1);
	assert_int_equal(ch.holds, 1);
	assert_int_equal(ch.cls, POL_CLASS_POP);
}

static void test_class_beats_holding_the_object(void **state)
{
	struct pol_box b[2] = { BOX(0, .asn = 64500), BOX(1, .pop_hash = 0xA1) };
	uint32_t h[1] = { 0 };
	struct pol_choice ch;

	(void)state;
	choose_both(b, 2, h, 1, 42, &ch);
	assert_int_equal(ch.box, 1);
	assert_int_equal(ch.holds, 0);
	assert_int_equal(ch.alt, 0);
}

static void test_full_holder_is_skipped(void **state)
{
	struct pol_box b[2] = { BOX(0, .pop_hash = 0xA1, .egress_bps = 899 * MiB),
	                        BOX(1, .pop_hash = 0xA1) };
	uint32_t h[2] = { 0, 0 };
	struct pol_choice ch;

	(void)state;
	choose_both(b, 2, h, 2, 42, &ch);
	assert_int_equal(ch.box, 1);
	assert_int_equal(ch.holds, 0);
	assert_int_equal(ch.alt, -1);
}

/* In a table with lanes, one object's ANY-class choices all come from one lane: the
 * highest-scoring lane that has an eligible box. */
static void test_any_class_choice_stays_in_the_objects_top_lane(void **state)
{
	size_t n = 3000;
	struct pol_box *b = calloc(n, sizeof *b);
	struct pol_client far = { 0, 0, 0, 0, 0, 0 };
	struct pol_index *x;

	(void)state;
	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		struct pol_box one = BOX(0);

		one.id_hash = pol_hash_bytes(&i, sizeof i);
		b[i] = one;
	}
	x = pol_index_new(b, n);
	assert_non_null(x);
	for (uint64_t obj = 1; obj < 200; obj++) {
		struct pol_query q = { &far, pol_hash_bytes(&obj, sizeof obj), &sla_any, NOW,
		                       NULL, 0 };
		struct pol_choice ch;
		unsigned top = 0;

		for (unsigned l = 1; l < POL_LANES; l++)
			if (pol_lane_score(q.obj_hash, l) > pol_lane_score(q.obj_hash, top))
				top = l;
		assert_int_equal(pol_index_choose(x, &q, &ch), 0);
		assert_int_equal(ch.cls, POL_CLASS_ANY);
		assert_int_equal(pol_lane_of(b[ch.box].id_hash), top);
		expect_same(b, n, x, &q);
	}
	pol_index_free(x);
	free(b);
}

static void test_lane_of_box_is_spread_and_stable(void **state)
{
	unsigned count[POL_LANES] = { 0 };

	(void)state;
	for (uint64_t i = 0; i < 64000; i++)
		count[pol_lane_of(pol_hash_bytes(&i, sizeof i))]++;
	for (unsigned l = 0; l < POL_LANES; l++)
		assert_true(count[l] > 800 && count[l] < 1200);
	assert_int_equal(pol_lane_of(12345), pol_lane_of(12345));
}

/* The shell charges every redirect to the chosen box until the next heartbeat: a burst
 * from one PoP spreads over its boxes (lowest load bucket first) and stops at max_util,
 * then goes to the origin as all_over_capacity. */
static void test_charging_between_heartbeats_spreads_a_burst(void **state)
{
	struct pol_box b[4] = { BOX(0, .pop_hash = 0xA1, .egress_bps = 0),
	                        BOX(1, .pop_hash = 0xA1, .egress_bps = 0),
	                        BOX(2, .pop_hash = 0xA1, .egress_bps = 0),
	                        BOX(3, .pop_hash = 0xA1, .egress_bps = 0) };
	struct pol_sla sla = { 3000, 0, 50 * MiB, 0.9, POL_CLASS_POP, 500, 1 };
	struct pol_index *x = pol_index_new(b, 4);
	unsigned got[4] = { 0 }, n = 0;
	struct pol_choice ch;

	(void)state;
	assert_non_null(x);
	for (uint64_t obj = 1;; obj++) {
		struct pol_query q = { &client_a, obj * 0x9E3779B97F4A7C15ULL, &sla, NOW, NULL, 0 };

		if (pol_index_choose(x, &q, &ch) != 0)
			break;
		got[ch.box]++;
		b[ch.box].charged_bps += sla.viewer_bps;
		n++;
		/* no box is ever charged past max_util */
		for (int k = 0; k < 4; k++)
			assert_true(b[k].charged_bps <= 1000 * MiB * 9 / 10);
	}
	/* 18 viewers of 50M fit under 90% of 1G on each box */
	assert_int_equal(n, 72);
	for (int k = 0; k < 4; k++)
		assert_int_equal(got[k], 18);
	assert_int_equal(ch.miss, POL_MISS_ALL_OVER_CAPACITY);
	pol_index_free(x);
}

static int cmp_key_then_idx(const void *a, const void *b)
{
	const struct pol_key_idx *x = a, *y = b;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* pol_sort_key_idx sorts by key and keeps equal keys in input order: the same as a
 * qsort by (key, input position), on random keys, few distinct keys (many ties), keys
 * sharing most digits (passes skipped), all keys equal, and 0, 1 or 2 keys. */
static void test_sort_key_idx_is_a_stable_sort(void **state)
{
	static struct pol_key_idx a[20000], b[20000], tmp[20000];
	static const size_t sizes[] = { 0, 1, 2, 3, 100, 10000, 20000 };
	uint64_t x = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int shape = 0; shape < 4; shape++) {
		for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
			size_t n = sizes[z];

			for (size_t i = 0; i < n; i++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				a[i].key = shape == 0 ? x
				         : shape == 1 ? (x % 50) * 0x0123456789abcdefull
				         : shape == 2 ? (x & 0xffff) | 0xabcd000000000000ull
				                      : UINT64_MAX;
				a[i].idx = (uint32_t)(x >> 40); /* not the position: stability shows */
				b[i] = a[i];
			}
			/* the reference: qsort by (key, position) */
			for (size_t i = 0; i < n; i++)
				b[i].idx = (uint32_t)i;
			qsort(b, n, sizeof *b, cmp_key_then_idx);
			for (size_t i = 0; i < n; i++)
				b[i].idx = a[b[i].idx].idx;
			pol_sort_key_idx(a, tmp, n);
			for (size_t i = 0; i < n; i++)
				if (a[i].key != b[i].key || a[i].idx != b[i].idx)
					fail_msg("shape %d, %zu keys: differs from the stable order at %zu",
					         shape, n, i);
		}
	}
}

static void test_empty_index_is_no_box(void **state)
{
	struct pol_index *x = pol_index_new(NULL, 0);
	struct pol_query q = { &client_a, 1, &sla_any, NOW, NULL, 0 };
	struct pol_choice ch;

	(void)state;
	assert_non_null(x);
	assert_int_equal(pol_index_choose(x, &q, &ch), 1);
	assert_int_equal(ch.miss, POL_MISS_NO_BOX);
	assert_true(pol_index_mem_bytes(x) > 0);
	pol_index_free(x);
	pol_index_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_keeps_the_two_best_by_search),
		cmocka_unit_test(test_index_equals_linear_on_small_tables),
		cmocka_unit_test(test_index_equals_linear_on_tables_without_lanes),
		cmocka_unit_test(test_index_equals_linear_on_tables_with_lanes),
		cmocka_unit_test(test_index_equals_linear_when_every_box_is_healthy),
		cmocka_unit_test(test_holder_beats_idler_box_in_the_same_class),
		cmocka_unit_test(test_class_beats_holding_the_object),
		cmocka_unit_test(test_full_holder_is_skipped),
		cmocka_unit_test(test_any_class_choice_stays_in_the_objects_top_lane),
		cmocka_unit_test(test_lane_of_box_is_spread_and_stable),
		cmocka_unit_test(test_charging_between_heartbeats_spreads_a_burst),
		cmocka_unit_test(test_empty_index_is_no_box),
		cmocka_unit_test(test_sort_key_idx_is_a_stable_sort),
	};

	return cmocka_run_group_tests_name("pol_index", tests, NULL, NULL);
}
