/* test_pol_place: replica counts (tail, monotone in demand, uplink bound, floors),
 * capacity respected, rendezvous stability when a box leaves or joins, determinism and
 * the diff between placements. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ec_err.h"
#include "pol_place.h"
#include "pol_score.h"

#define MBIT 1000000ULL
#define MB 1000000ULL

struct replica_row {
	const char *name;
	double rate, fallback_rate;
	uint64_t size_bytes;
	uint32_t min_replicas;
	double uplink_bps;
	uint32_t region_boxes;
	uint32_t expect;
};

/* Defaults: min_rate 1/3600, share 0.25, max_replicas 8. A 1 MB object at 1 req/s is
 * 8 Mbit/s; a 100 Mbit/s box gives one object 25 Mbit/s. */
static const struct replica_row replica_rows[] = {
	{ "tail below min_rate gets none", 1.0 / 7200, 0, MB, 0, 100 * MBIT, 10, 0 },
	{ "just at min_rate gets one", 1.0 / 3600, 0, MB, 0, 100 * MBIT, 10, 1 },
	{ "demand within one share gets one", 3, 0, MB, 0, 100 * MBIT, 10, 1 },
	{ "demand of two shares gets two", 6, 0, MB, 0, 100 * MBIT, 10, 2 },
	{ "demand of 2.1 shares gets three", 6.5, 0, MB, 0, 100 * MBIT, 10, 3 },
	{ "huge demand is capped at max_replicas", 1000, 0, MB, 0, 100 * MBIT, 100, 8 },
	{ "capped by the region's boxes", 1000, 0, MB, 0, 100 * MBIT, 3, 3 },
	{ "no boxes in the region gets none", 1000, 0, MB, 0, 100 * MBIT, 0, 0 },
	{ "min_replicas lifts a tail object", 0, 0, MB, 2, 100 * MBIT, 10, 2 },
	{ "min_replicas lifts a warm object", 1, 0, MB, 4, 100 * MBIT, 10, 4 },
	{ "fallbacks add replicas", 3, 3, MB, 0, 100 * MBIT, 10, 2 },
	{ "unknown uplink still gets one", 5, 0, MB, 0, 0, 10, 1 },
};

static void test_replica_counts(void **state)
{
	struct pol_place_params p;

	(void)state;
	pol_place_params_default(&p);
	for (size_t i = 0; i < sizeof replica_rows / sizeof replica_rows[0]; i++) {
		const struct replica_row *r = &replica_rows[i];
		struct pol_place_obj o = { .obj_hash = 1, .region_hash = 1, .size_bytes = r->size_bytes,
		                           .rate = r->rate, .fallback_rate = r->fallback_rate,
		                           .min_replicas = r->min_replicas };
		uint32_t got = pol_place_replicas(&o, r->uplink_bps, r->region_boxes, &p);

		if (got != r->expect) {
			print_error("%s: got %u, want %u\n", r->name, got, r->expect);
			fail();
		}
	}
}

static void test_replicas_monotone_in_demand(void **state)
{
	struct pol_place_params p;
	uint32_t last = 0;

	(void)state;
	pol_place_params_default(&p);
	for (double rate = 0; rate < 200; rate = rate * 1.01 + 0.0001) {
		struct pol_place_obj o = { .obj_hash = 7, .region_hash = 1, .size_bytes = 3 * MB,
		                           .rate = rate };
		uint32_t got = pol_place_replicas(&o, 50 * MBIT, 20, &p);

		assert_true(got >= last);
		last = got;
	}
	assert_int_equal(last, 8);
}

struct sticky_row {
	const char *name;
	double rate;
	uint32_t held, expect;
};

/* 1 MB objects on 100 Mbit/s boxes: a share is 25 Mbit/s, 1 req/s is 8 Mbit/s. */
static const struct sticky_row sticky_rows[] = {
	{ "a new object gets what demand asks", 6, 0, 2 },
	{ "a held object keeps its replicas within the margin", 6, 3, 3 },
	{ "a held object sheds replicas when demand falls further", 4, 3, 2 },
	{ "holding fewer than demand asks grows to demand", 9, 1, 3 },
};

static void test_held_replicas_are_sticky(void **state)
{
	struct pol_place_params p;

	(void)state;
	pol_place_params_default(&p);
	for (size_t i = 0; i < sizeof sticky_rows / sizeof sticky_rows[0]; i++) {
		const struct sticky_row *r = &sticky_rows[i];
		struct pol_place_obj o = { .obj_hash = 1, .region_hash = 1, .size_bytes = MB,
		                           .rate = r->rate, .held = r->held };
		uint32_t got = pol_place_replicas(&o, 100 * MBIT, 10, &p);

		if (got != r->expect) {
			print_error("%s: got %u, want %u\n", r->name, got, r->expect);
			fail();
		}
	}
}

/* n boxes: regions 1..nr round robin, equal storage and uplink. */
static struct pol_place_box *make_boxes(size_t n, size_t nr, uint64_t storage, uint64_t uplink)
{
	struct pol_place_box *b = calloc(n, sizeof *b);

	for (size_t i = 0; i < n; i++) {
		uint64_t id = 1000 + i;

		b[i].id_hash = pol_hash_bytes(&id, sizeof id);
		b[i].region_hash = 1 + i % nr;
		b[i].storage_bytes = storage;
		b[i].uplink_bps = uplink;
		b[i].is_up = 1;
	}
	return b;
}

/* n objects, Zipf-like rates, sizes 1..10 MB, regions 1..nr. */
static struct pol_place_obj *make_objs(size_t n, size_t nr)
{
	struct pol_place_obj *o = calloc(n, sizeof *o);

	for (size_t i = 0; i < n; i++) {
		uint64_t id = i;

		o[i].obj_hash = pol_hash_bytes(&id, sizeof id);
		o[i].region_hash = 1 + (i * 7) % nr;
		o[i].size_bytes = MB + (i * 7919) % (9 * MB);
		o[i].rate = 10.0 / pow((double)i + 1, 0.8);
	}
	return o;
}

static const struct pol_place_obj *row_of(const struct pol_place_obj *o, size_t n, uint64_t h)
{
	for (size_t i = 0; i < n; i++)
		if (o[i].obj_hash == h)
			return &o[i];
	return NULL;
}

struct capacity_row {
	const char *name;
	size_t n_boxes, n_regions, n_objs;
	uint64_t storage, uplink;
};

static const struct capacity_row capacity_rows[] = {
	{ "tight storage is never exceeded", 40, 2, 3000, 50 * MB, 100 * MBIT },
	{ "tight uplink is never exceeded", 40, 2, 3000, 5000 * MB, 10 * MBIT },
	{ "big regions probe buckets and stay within capacity", 600, 1, 20000, 40 * MB, 50 * MBIT },
};

static void test_capacity_respected(void **state)
{
	struct pol_place_params p;

	(void)state;
	pol_place_params_default(&p);
	for (size_t c = 0; c < sizeof capacity_rows / sizeof capacity_rows[0]; c++) {
		const struct capacity_row *cr = &capacity_rows[c];
		struct pol_place_box *b = make_boxes(cr->n_boxes, cr->n_regions, cr->storage, cr->uplink);
		struct pol_place_obj *o = make_objs(cr->n_objs, cr->n_regions);
		struct pol_place_result *r;
		size_t placed = 0, full = 0;

		assert_int_equal(pol_place_compute(o, cr->n_objs, b, cr->n_boxes, &p, &r), 0);
		for (size_t i = 0; i < cr->n_boxes; i++) {
			size_t n;
			const uint64_t *v = pol_place_box_objs(r, i, &n);
			uint64_t bytes = 0;
			double load = 0;

			for (size_t j = 0; j < n; j++) {
				const struct pol_place_obj *x = row_of(o, cr->n_objs, v[j]);
				size_t row = (size_t)(x - o);
				double per = x->rate * (double)x->size_bytes * 8 / r->wanted[row];

				assert_int_equal(x->region_hash, b[i].region_hash);
				if (j)
					assert_true(v[j - 1] < v[j]);
				bytes += x->size_bytes;
				load += fmin(per, (double)b[i].uplink_bps * p.object_share);
			}
			if (bytes > b[i].storage_bytes ||
			    load > (double)b[i].uplink_bps * p.max_util * (1 + 1e-9)) {
				print_error("%s: box %zu holds %llu bytes, load %.0f\n", cr->name, i,
				            (unsigned long long)bytes, load);
				fail();
			}
			if (bytes > b[i].storage_bytes * 9 / 10)
				full++;
		}
		for (size_t i = 0; i < cr->n_objs; i++) {
			assert_true(r->replicas[i] <= r->wanted[i]);
			placed += r->replicas[i];
		}
		assert_int_equal(placed, r->off[cr->n_boxes]);
		assert_true(placed > 0);
		pol_place_result_free(r);
		free(b);
		free(o);
	}
}

/* With room to spare, the most popular objects get the most replicas. */
static void test_placed_replicas_follow_demand(void **state)
{
	struct pol_place_params p;
	struct pol_place_box *b = make_boxes(100, 1, 100000 * MB, 1000 * MBIT);
	struct pol_place_obj o[50];
	struct pol_place_result *r;

	(void)state;
	pol_place_params_default(&p);
	for (size_t i = 0; i < 50; i++) {
		o[i] = (struct pol_place_obj){ .obj_hash = 500 + i, .region_hash = 1,
		                               .size_bytes = 10 * MB, .rate = 0.6 * (double)i };
	}
	assert_int_equal(pol_place_compute(o, 50, b, 100, &p, &r), 0);
	assert_int_equal(r->replicas[0], 0); /* rate 0: tail */
	for (size_t i = 2; i < 50; i++)
		assert_true(r->replicas[i] >= r->replicas[i - 1]);
	assert_int_equal(r->replicas[49], 8);
	pol_place_result_free(r);
	free(b);
}

struct churn_row {
	const char *name;
	size_t n_boxes;   /* one region */
	size_t changed;   /* index of the box that leaves, or n_boxes: one joins */
};

static const struct churn_row churn_rows[] = {
	{ "small region: a box leaving moves only its objects", 20, 7 },
	{ "big region: a box leaving moves only its objects", 500, 123 },
	{ "small region: a joining box takes about 1/n", 20, 20 },
	{ "big region: a joining box takes about 1/n", 500, 500 },
};

static void test_rendezvous_stability(void **state)
{
	struct pol_place_params p;

	(void)state;
	pol_place_params_default(&p);
	for (size_t c = 0; c < sizeof churn_rows / sizeof churn_rows[0]; c++) {
		const struct churn_row *cr = &churn_rows[c];
		size_t n_objs = 20000, n_all = cr->n_boxes + 1;
		struct pol_place_box *b = make_boxes(n_all, 1, 100000 * MB, 10000 * MBIT);
		struct pol_place_obj *o = make_objs(n_objs, 1);
		struct pol_place_result *before, *after;
		struct pol_place_diff d;
		int joins = cr->changed == cr->n_boxes;
		uint64_t changed_id = b[cr->changed].id_hash;
		size_t on_changed, adds = 0, drops = 0, wrong = 0, total;

		/* Before: the last box is absent when one joins; all present when one leaves. */
		b[cr->n_boxes].is_up = !joins;
		assert_int_equal(pol_place_compute(o, n_objs, b, n_all, &p, &before), 0);
		if (joins)
			b[cr->n_boxes].is_up = 1;
		else
			b[cr->changed].is_up = 0;
		assert_int_equal(pol_place_compute(o, n_objs, b, n_all, &p, &after), 0);
		assert_int_equal(pol_place_diff(before, after, &d), 0);
		pol_place_box_objs(joins ? after : before, cr->changed, &on_changed);
		total = before->off[n_all];
		for (size_t i = 0; i < d.n; i++) {
			int on_it = d.v[i].box_id == changed_id;

			if (d.v[i].op == POL_PLACE_ADD)
				adds++;
			else
				drops++;
			/* leaving: drops only on that box; joining: adds only on that box */
			if ((!joins && d.v[i].op == POL_PLACE_DROP && !on_it) ||
			    (joins && d.v[i].op == POL_PLACE_ADD && !on_it))
				wrong++;
		}
		if (wrong || adds != on_changed || drops != on_changed) {
			print_error("%s: %zu adds, %zu drops, %zu elsewhere, %zu on the box\n",
			            cr->name, adds, drops, wrong, on_changed);
			fail();
		}
		/* its share is about 1/n of all replicas (within 40%) */
		assert_true(on_changed * n_all > total * 6 / 10);
		assert_true(on_changed * n_all < total * 14 / 10);
		pol_place_diff_fini(&d);
		pol_place_result_free(before);
		pol_place_result_free(after);
		free(b);
		free(o);
	}
}

struct probe_row {
	const char *name;
	size_t n_boxes;
	uint32_t candidates;
	uint32_t expect_probes;
};

static const struct probe_row probe_rows[] = {
	{ "a region no bigger than the candidates is probed whole", 20, 32, 64 },
	{ "500 boxes, 32 candidates: 5 buckets", 500, 32, 5 },
	{ "10000 boxes, 32 candidates: one bucket", 10000, 32, 1 },
	{ "25 boxes, 8 candidates: 21 buckets", 25, 8, 21 },
};

/* pol_place_probe_rank() names the buckets pol_place_compute() examines: with room
 * everywhere, every replica lies in the object's first pol_place_region_probes()
 * buckets; and an object's ranks over all 64 buckets are a permutation. */
static void test_probe_rank_matches_compute(void **state)
{
	struct pol_place_params p;

	(void)state;
	pol_place_params_default(&p);
	for (size_t c = 0; c < sizeof probe_rows / sizeof probe_rows[0]; c++) {
		const struct probe_row *pr = &probe_rows[c];
		size_t n_objs = 2000, bad = 0;
		struct pol_place_box *b = make_boxes(pr->n_boxes, 1, 100000 * MB, 10000 * MBIT);
		struct pol_place_obj *o = make_objs(n_objs, 1);
		struct pol_place_result *res;
		uint32_t probes;

		p.candidates = pr->candidates;
		probes = pol_place_region_probes((uint32_t)pr->n_boxes, &p);
		if (probes != pr->expect_probes) {
			print_error("%s: %u probes\n", pr->name, probes);
			fail();
		}
		assert_int_equal(pol_place_compute(o, n_objs, b, pr->n_boxes, &p, &res), 0);
		for (size_t i = 0; i < pr->n_boxes; i++) {
			size_t n;
			const uint64_t *v = pol_place_box_objs(res, i, &n);

			for (size_t j = 0; j < n; j++)
				bad += pol_place_probe_rank(v[j], b[i].id_hash) >= probes;
		}
		if (bad) {
			print_error("%s: %zu replicas outside the first buckets\n", pr->name, bad);
			fail();
		}
		pol_place_result_free(res);
		free(b);
		free(o);
	}
	for (uint64_t obj = 1; obj < 200; obj++) {
		uint64_t seen = 0, oh = obj * 0x9E3779B97F4A7C15ULL;
		uint8_t rank[POL_PLACE_BUCKETS];

		pol_place_probe_ranks(oh, rank);
		for (uint64_t id = 0; id < 100; id++)
			assert_int_equal(rank[pol_place_bucket(id * 77 + 5)],
			                 pol_place_probe_rank(oh, id * 77 + 5));

		/* 4096 boxes reach every one of the 64 buckets */
		for (uint64_t id = 0; id < 4096; id++)
			seen |= 1ULL << pol_place_probe_rank(oh, id * 77 + 5);
		assert_true(seen == UINT64_MAX);
	}
	assert_int_equal(pol_place_region_probes(0, &p), POL_PLACE_BUCKETS);
}

static void test_deterministic(void **state)
{
	struct pol_place_params p;
	struct pol_place_box *b = make_boxes(300, 3, 80 * MB, 100 * MBIT);
	struct pol_place_obj *o = make_objs(10000, 3);
	struct pol_place_result *r1, *r2;
	struct pol_place_diff d;

	(void)state;
	pol_place_params_default(&p);
	assert_int_equal(pol_place_compute(o, 10000, b, 300, &p, &r1), 0);
	assert_int_equal(pol_place_compute(o, 10000, b, 300, &p, &r2), 0);
	assert_memory_equal(r1->off, r2->off, 301 * sizeof *r1->off);
	assert_memory_equal(r1->objs, r2->objs, r1->off[300] * sizeof *r1->objs);
	assert_memory_equal(r1->replicas, r2->replicas, 10000 * sizeof *r1->replicas);
	assert_int_equal(pol_place_diff(r1, r2, &d), 0);
	assert_int_equal(d.n, 0);
	pol_place_diff_fini(&d);
	assert_int_equal(pol_place_diff(NULL, r1, &d), 0);
	assert_int_equal(d.n, r1->off[300]);
	for (size_t i = 0; i < d.n; i++)
		assert_int_equal(d.v[i].op, POL_PLACE_ADD);
	pol_place_diff_fini(&d);
	pol_place_result_free(r1);
	pol_place_result_free(r2);
	free(b);
	free(o);
}

struct invalid_row {
	const char *name;
	double object_share, max_util;
	uint32_t max_replicas;
};

static const struct invalid_row invalid_rows[] = {
	{ "zero object share is refused", 0, 0.8, 8 },
	{ "object share over 1 is refused", 1.5, 0.8, 8 },
	{ "zero max_util is refused", 0.25, 0, 8 },
	{ "zero max_replicas is refused", 0.25, 0.8, 0 },
};

static void test_bad_params_refused(void **state)
{
	struct pol_place_box *b = make_boxes(4, 1, MB, MBIT);
	struct pol_place_obj *o = make_objs(4, 1);

	(void)state;
	for (size_t i = 0; i < sizeof invalid_rows / sizeof invalid_rows[0]; i++) {
		struct pol_place_params p;
		struct pol_place_result *r = (void *)1;

		pol_place_params_default(&p);
		p.object_share = invalid_rows[i].object_share;
		p.max_util = invalid_rows[i].max_util;
		p.max_replicas = invalid_rows[i].max_replicas;
		if (pol_place_compute(o, 4, b, 4, &p, &r) != EC_EINVAL || r != NULL) {
			print_error("%s\n", invalid_rows[i].name);
			fail();
		}
	}
	pol_place_result_free(NULL);
	free(b);
	free(o);
}

static void test_down_boxes_and_unknown_regions_get_nothing(void **state)
{
	struct pol_place_params p;
	struct pol_place_box *b = make_boxes(10, 2, 1000 * MB, 100 * MBIT);
	struct pol_place_obj *o = make_objs(200, 3); /* region 3 has no boxes */
	struct pol_place_result *r;

	(void)state;
	pol_place_params_default(&p);
	b[4].is_up = 0;
	assert_int_equal(pol_place_compute(o, 200, b, 10, &p, &r), 0);
	assert_int_equal(r->off[5] - r->off[4], 0);
	for (size_t i = 0; i < 200; i++)
		if (o[i].region_hash == 3)
			assert_int_equal(r->replicas[i] + r->wanted[i], 0);
	pol_place_result_free(r);
	assert_int_equal(pol_place_compute(o, 0, b, 10, &p, &r), 0);
	assert_int_equal(r->off[10], 0);
	pol_place_result_free(r);
	free(b);
	free(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replica_counts),
		cmocka_unit_test(test_replicas_monotone_in_demand),
		cmocka_unit_test(test_held_replicas_are_sticky),
		cmocka_unit_test(test_capacity_respected),
		cmocka_unit_test(test_placed_replicas_follow_demand),
		cmocka_unit_test(test_rendezvous_stability),
		cmocka_unit_test(test_probe_rank_matches_compute),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_bad_params_refused),
		cmocka_unit_test(test_down_boxes_and_unknown_regions_get_nothing),
	};
	return cmocka_run_group_tests_name("pol_place", tests, NULL, NULL);
}
