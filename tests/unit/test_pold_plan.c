/* test_pold_plan: the pure parts of echos-policy's placement loop: path sets, the diff
 * of assignments per box (what is written to Redis), the demand estimate from minute
 * buckets, the replicas objects that keep falling back to the origin get, and the
 * liveness of announcements. pold_plan.c is not part of the policy
 * library the unit tests link, so it is compiled into this test directly. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../../policy/pold_plan.c"
#include "pol_place.h"

#define MAXP 8

/* A set from a NULL-terminated list of literals (copied). */
static void set_of(struct pold_pathset *s, const char *const *lit)
{
	size_t n = 0;
	char **v;

	while (lit[n])
		n++;
	v = calloc(n + 1, sizeof *v);
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		assert_non_null(v[i] = strdup(lit[i]));
	memset(s, 0, sizeof *s);
	pold_pathset_take(s, v, n);
}

/* "a,b,c" of a list of strings, for comparing with the expected text. */
static void join(char *out, size_t len, const char *const *v, size_t n)
{
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		snprintf(out + strlen(out), len - strlen(out), "%s%s", i ? "," : "", v[i]);
}

struct set_row {
	const char *name;
	const char *in[MAXP];
	const char *want; /* members in order */
};

static const struct set_row set_rows[] = {
	{ "members are sorted", { "/c", "/a", "/b" }, "/a,/b,/c" },
	{ "duplicates are kept once", { "/a", "/b", "/a", "/a" }, "/a,/b" },
	{ "an empty input is an empty set", { NULL }, "" },
	{ "byte order, not locale order", { "/b", "/B", "/a" }, "/B,/a,/b" },
};

static void test_pathset(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof set_rows / sizeof *set_rows; i++) {
		const struct set_row *r = &set_rows[i];
		struct pold_pathset s;
		char got[256];

		set_of(&s, r->in);
		join(got, sizeof got, (const char *const *)s.v, s.n);
		if (strcmp(got, r->want) != 0) {
			print_error("%s: got \"%s\", want \"%s\"\n", r->name, got, r->want);
			fail();
		}
		for (size_t k = 0; k < s.n; k++)
			assert_true(pold_pathset_has(&s, s.v[k]));
		assert_false(pold_pathset_has(&s, "/zz"));
		pold_pathset_fini(&s);
		assert_int_equal(s.n, 0);
	}
}

struct diff_row {
	const char *name;
	const char *cur[MAXP], *want[MAXP];
	const char *add, *del;
};

static const struct diff_row diff_rows[] = {
	{ "same sets change nothing", { "/a", "/b" }, { "/b", "/a" }, "", "" },
	{ "a new member is one add", { "/a" }, { "/a", "/b" }, "/b", "" },
	{ "a gone member is one remove", { "/a", "/b" }, { "/b" }, "", "/a" },
	{ "from nothing everything is added", { NULL }, { "/x", "/y" }, "/x,/y", "" },
	{ "to nothing everything is removed", { "/x", "/y" }, { NULL }, "", "/x,/y" },
	{ "disjoint sets swap all", { "/a", "/c" }, { "/b", "/d" }, "/b,/d", "/a,/c" },
	{ "interleaved changes keep order", { "/a", "/c", "/e" }, { "/b", "/c", "/f" },
	  "/b,/f", "/a,/e" },
};

static void test_pathset_diff(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof diff_rows / sizeof *diff_rows; i++) {
		const struct diff_row *r = &diff_rows[i];
		struct pold_pathset cur, want;
		struct pold_delta d;
		char add[256], del[256];

		set_of(&cur, r->cur);
		set_of(&want, r->want);
		assert_int_equal(pold_pathset_diff(&cur, &want, &d), 0);
		join(add, sizeof add, d.add, d.n_add);
		join(del, sizeof del, d.del, d.n_del);
		if (strcmp(add, r->add) != 0 || strcmp(del, r->del) != 0) {
			print_error("%s: got +[%s] -[%s], want +[%s] -[%s]\n", r->name, add, del,
			            r->add, r->del);
			fail();
		}
		pold_delta_fini(&d);
		pold_pathset_fini(&cur);
		pold_pathset_fini(&want);
	}
}

/* Two tables of up to three boxes; expected changes as "box:+a+b-c;box2:gone-x". */
struct adiff_row {
	const char *name;
	const char *old_ids[3];
	const char *old_sets[3][MAXP];
	const char *new_ids[3];
	const char *new_sets[3][MAXP];
	const char *want;
	size_t changes;
};

static const struct adiff_row adiff_rows[] = {
	{ "unchanged tables write nothing",
	  { "b1", "b2" }, { { "/a" }, { "/b" } },
	  { "b2", "b1" }, { { "/b" }, { "/a" } }, "", 0 },
	{ "a new box adds its whole set",
	  { "b1" }, { { "/a" } },
	  { "b1", "b2" }, { { "/a" }, { "/a", "/b" } }, "b2:+/a+/b", 2 },
	{ "a box that left is gone with its set",
	  { "b1", "b2" }, { { "/a" }, { "/c", "/d" } },
	  { "b1" }, { { "/a" } }, "b2:gone-/c-/d", 2 },
	{ "only boxes with changes are listed, in id order",
	  { "b3", "b1", "b2" }, { { "/x" }, { "/a" }, { "/b" } },
	  { "b3", "b1", "b2" }, { { "/y" }, { "/a" }, { "/b", "/c" } },
	  "b2:+/c;b3:+/y-/x", 3 },
	{ "empty tables write nothing", { NULL }, { { NULL } }, { NULL }, { { NULL } }, "", 0 },
};

static void table_of(struct pold_assign *a, const char *const *ids,
                     const char *const (*sets)[MAXP])
{
	memset(a, 0, sizeof *a);
	for (size_t i = 0; i < 3 && ids[i]; i++) {
		struct pold_pathset s;

		set_of(&s, sets[i]);
		assert_int_equal(pold_assign_put(a, ids[i], &s), 0);
		assert_null(s.v);
	}
}

static void test_assign_diff(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof adiff_rows / sizeof *adiff_rows; i++) {
		const struct adiff_row *r = &adiff_rows[i];
		struct pold_assign old, next;
		struct pold_box_delta *d;
		size_t n, changes;
		char got[512] = "";

		table_of(&old, r->old_ids, r->old_sets);
		table_of(&next, r->new_ids, r->new_sets);
		assert_int_equal(pold_assign_diff(&old, &next, &d, &n, &changes), 0);
		for (size_t k = 0; k < n; k++) {
			snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s:%s", k ? ";" : "",
			         d[k].id, d[k].is_gone ? "gone" : "");
			for (size_t m = 0; m < d[k].d.n_add; m++)
				snprintf(got + strlen(got), sizeof got - strlen(got), "+%s", d[k].d.add[m]);
			for (size_t m = 0; m < d[k].d.n_del; m++)
				snprintf(got + strlen(got), sizeof got - strlen(got), "-%s", d[k].d.del[m]);
		}
		if (strcmp(got, r->want) != 0 || changes != r->changes) {
			print_error("%s: got \"%s\" (%zu changes), want \"%s\" (%zu)\n", r->name, got,
			            changes, r->want, r->changes);
			fail();
		}
		pold_box_deltas_free(d, n);
		/* applying the diff: the written state becomes next */
		pold_assign_move(&old, &next);
		assert_int_equal(next.n, 0);
		pold_assign_fini(&old);
	}
}

static void test_assign_table(void **state)
{
	struct pold_assign a = { NULL, 0, 0 };
	struct pold_pathset s;
	const char *one[] = { "/a", NULL }, *two[] = { "/b", "/c", NULL };
	char long_id[80];

	(void)state;
	set_of(&s, one);
	assert_int_equal(pold_assign_put(&a, "box-2", &s), 0);
	set_of(&s, two);
	assert_int_equal(pold_assign_put(&a, "box-1", &s), 0);
	assert_int_equal(pold_assign_total(&a), 3);
	assert_string_equal(a.v[0].id, "box-1"); /* kept sorted by id */
	assert_null(pold_assign_get(&a, "box-3"));
	/* putting a box again replaces its set */
	set_of(&s, one);
	assert_int_equal(pold_assign_put(&a, "box-1", &s), 0);
	assert_int_equal(pold_assign_get(&a, "box-1")->n, 1);
	assert_int_equal(pold_assign_total(&a), 2);
	/* an id too long for a box is refused and the set stays with the caller */
	memset(long_id, 'x', sizeof long_id - 1);
	long_id[sizeof long_id - 1] = '\0';
	set_of(&s, one);
	assert_int_equal(pold_assign_put(&a, long_id, &s), EC_EINVAL);
	assert_int_equal(pold_assign_put(&a, "", &s), EC_EINVAL);
	assert_int_equal(s.n, 1);
	pold_pathset_fini(&s);
	pold_assign_fini(&a);
}

/* now = minute 1000 + 30 s; counts[i] for minute 1000 - i. */
#define NOW (1000LL * 60000 + 30000)
#define HL5 (5 * 60000)

struct rate_row {
	const char *name;
	double counts[15];
	size_t n;
	int64_t now_ms, hl_ms;
	double lo, hi; /* expected range, requests/s */
};

static const struct rate_row rate_rows[] = {
	{ "no requests is no demand", { 0 }, 15, NOW, HL5, 0, 0 },
	{ "a steady 1/s over the window reads 1/s",
	  { 30, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60, 60 }, 15, NOW, HL5,
	  0.999, 1.001 },
	{ "a flash crowd of the current minute is seen at once (200 in 30 s)",
	  { 200 }, 15, NOW, HL5, 6.6, 6.7 },
	{ "the first seconds of a minute count as 10 s at least",
	  { 50 }, 15, 1000LL * 60000 + 2000, HL5, 4.99, 5.01 },
	{ "old demand decays: 600 requests 14 minutes ago",
	  { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 600 }, 15, NOW, HL5, 0.05, 0.5 },
	{ "a zero half-life estimates nothing", { 100 }, 1, NOW, 0, 0, 0 },
	{ "an empty window estimates nothing", { 100 }, 0, NOW, HL5, 0, 0 },
};

static void test_demand_rate(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof rate_rows / sizeof *rate_rows; i++) {
		const struct rate_row *r = &rate_rows[i];
		double got = pold_demand_rate(r->counts, r->n, r->now_ms, r->hl_ms);

		if (!(got >= r->lo && got <= r->hi)) {
			print_error("%s: got %g, want [%g, %g]\n", r->name, got, r->lo, r->hi);
			fail();
		}
	}
}

static void test_demand_monotone(void **state)
{
	double a[3] = { 10, 60, 60 }, b[3] = { 11, 60, 60 }, c[3] = { 10, 61, 60 };

	(void)state;
	/* more requests in any minute never lower the estimate */
	assert_true(pold_demand_rate(b, 3, NOW, HL5) >= pold_demand_rate(a, 3, NOW, HL5));
	assert_true(pold_demand_rate(c, 3, NOW, HL5) >= pold_demand_rate(a, 3, NOW, HL5));
}

struct recent_row {
	const char *name;
	double cur, prev, ref_count;
	int64_t now_ms, ref_ms;
	double want;
};

#define M0 (1000LL * 60000) /* start of minute 1000 */

static const struct recent_row recent_rows[] = {
	{ "requests since the reference in the same minute", 150, 0, 50, M0 + 40000, M0 + 30000,
	  10 },
	{ "a crowd late in the minute is seen at its own rate", 200, 0, 0, M0 + 55000,
	  M0 + 45000, 20 },
	{ "across one minute boundary the old minute's rest counts", 30, 90, 60, M0 + 65000,
	  M0 + 55000, 6 },
	{ "no new requests is zero", 70, 0, 70, M0 + 50000, M0 + 40000, 0 },
	{ "a count that went down reads as zero", 10, 0, 70, M0 + 50000, M0 + 40000, 0 },
	{ "two minute boundaries: the reference cannot tell", 10, 10, 0, M0 + 130000,
	  M0 + 10000, -1 },
	{ "a reference not in the past cannot tell", 10, 0, 0, M0 + 10000, M0 + 10000, -1 },
};

static void test_demand_recent(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof recent_rows / sizeof *recent_rows; i++) {
		const struct recent_row *r = &recent_rows[i];
		double got = pold_demand_recent(r->cur, r->prev, r->now_ms, r->ref_count, r->ref_ms);

		if (fabs(got - r->want) > 1e-9) {
			print_error("%s: got %g, want %g\n", r->name, got, r->want);
			fail();
		}
	}
}

/* ---- origin fallbacks raise replicas ------------------------------------------------ */

#define MISS_UPLINK 1e9   /* share 2.5e8 bps at object_share 0.25 */
#define MISS_SIZE 1000    /* small: demand alone asks for one replica */
#define MISS_COOL 30000

struct miss_row {
	const char *name;
	double rate;          /* requests/s before fallbacks are applied */
	uint64_t size;
	uint32_t held, region_boxes;
	double recent, avg;   /* fallbacks/s */
	int64_t since;        /* since the last raise, -1 none */
	double raise_rate;
	uint32_t want;        /* replicas after pol_place_replicas() */
	int raised;           /* pold_miss_apply()'s answer */
};

static const struct miss_row miss_rows[] = {
	{ "no fallbacks: replicas as demand says", 10, MISS_SIZE, 1, 5, 0, 0, -1, 0.1, 1, 0 },
	{ "no fallbacks, three held: stickiness decides as without", 10, MISS_SIZE, 3, 5, 0, 0,
	  -1, 0.1, 1, 0 },
	{ "fallbacks at the raise rate add one replica to those held", 10, MISS_SIZE, 1, 5, 0.1,
	  0.05, -1, 0.1, 2, 1 },
	{ "an object held nowhere and out of the top gets one", 0, MISS_SIZE, 0, 5, 1, 1, -1,
	  0.1, 1, 1 },
	{ "still falling back after the cooldown: one more again", 10, MISS_SIZE, 2, 5, 1, 1,
	  MISS_COOL, 0.1, 3, 1 },
	{ "within the cooldown no raise, the held replicas stay", 10, MISS_SIZE, 3, 5, 5, 5,
	  1000, 0.1, 3, 0 },
	{ "fading fallbacks (half the raise rate) keep the held replicas", 10, MISS_SIZE, 3, 5,
	  0, 0.05, -1, 0.1, 3, 0 },
	{ "fallbacks under half the raise rate: demand decides again", 10, MISS_SIZE, 3, 5, 0,
	  0.04, -1, 0.1, 1, 0 },
	{ "only recent fallbacks raise, not old ones in the average", 10, MISS_SIZE, 1, 5, 0, 2,
	  -1, 0.1, 1, 0 },
	{ "bounded by the boxes of the region", 10, MISS_SIZE, 5, 5, 10, 10, -1, 0.1, 5, 1 },
	{ "bounded by max_replicas", 10, MISS_SIZE, 8, 20, 10, 10, -1, 0.1, 8, 1 },
	{ "raise rate 0: no floor, fallbacks only weigh as demand", 10, MISS_SIZE, 1, 5, 1, 1,
	  -1, 0, 1, 0 },
	{ "fallbacks add to demand: 10 req/s plus 10 fallbacks/s of 3 MB", 10, 3000000, 0, 5, 10,
	  10, -1, 0, 2, 0 },
	{ "the same demand without fallbacks is one replica", 10, 3000000, 0, 5, 0, 0, -1, 0, 1,
	  0 },
};

static uint32_t miss_replicas(double rate, uint64_t size, uint32_t held, uint32_t boxes,
                              double recent, double avg, int64_t since, double raise_rate,
                              int *raised)
{
	struct pol_place_params p;
	struct pold_miss_params mp = { 1.0, raise_rate, MISS_COOL };
	struct pol_place_obj o = { .obj_hash = 1, .region_hash = 2, .size_bytes = size,
	                           .rate = rate, .held = held };
	struct pol_place_obj before = o;
	int r;

	pol_place_params_default(&p);
	r = pold_miss_apply(&o, recent, avg, since, &mp);
	if (raised)
		*raised = r;
	if (recent == 0 && avg == 0)
		assert_memory_equal(&o, &before, sizeof o); /* no fallbacks: row unchanged */
	return pol_place_replicas(&o, MISS_UPLINK, boxes, &p);
}

static void test_misses_raise_replicas(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof miss_rows / sizeof *miss_rows; i++) {
		const struct miss_row *r = &miss_rows[i];
		int raised;
		uint32_t got = miss_replicas(r->rate, r->size, r->held, r->region_boxes, r->recent,
		                             r->avg, r->since, r->raise_rate, &raised);

		if (got != r->want || raised != r->raised) {
			print_error("%s: got %u replicas (raised %d), want %u (raised %d)\n",
			            r->name, got, raised, r->want, r->raised);
			fail();
		}
	}
}

/* More fallbacks (recent or average) never give fewer replicas, and never more than the
 * region's boxes or max_replicas (8). */
static void test_misses_monotone_and_bounded(void **state)
{
	static const double rates[] = { 0, 0.01, 0.04, 0.05, 0.06, 0.1, 0.5, 3, 100 };
	static const int64_t sinces[] = { -1, 0, 1000, MISS_COOL, 600000 };
	const size_t nr = sizeof rates / sizeof *rates;

	(void)state;
	for (size_t k = 0; k < 4 * 13 * 5 * nr * nr; k++) {
		uint32_t boxes = 1 + 3 * (uint32_t)(k % 4), held = (uint32_t)(k / 4 % 13);
		int64_t since = sinces[k / 52 % 5];
		size_t a = k / 260 % nr, b = k / 260 / nr;
		uint32_t n, up_a, up_b;

		if (held > boxes)
			continue;
		n = miss_replicas(10, MISS_SIZE, held, boxes, rates[a], rates[b], since, 0.1, NULL);
		up_a = a + 1 == nr ? n : miss_replicas(10, MISS_SIZE, held, boxes, rates[a + 1],
		                                       rates[b], since, 0.1, NULL);
		up_b = b + 1 == nr ? n : miss_replicas(10, MISS_SIZE, held, boxes, rates[a],
		                                       rates[b + 1], since, 0.1, NULL);
		assert_true(n <= boxes && n <= 8);
		assert_true(up_a >= n && up_b >= n);
	}
}

/* The raised floor is a wish: placement puts replicas only where there is room. Four boxes
 * in the region, two with space for the object: a floor of 4 places 2. */
static void test_misses_bounded_by_capacity(void **state)
{
	struct pol_place_params p;
	struct pold_miss_params mp = { 1.0, 0.1, MISS_COOL };
	struct pol_place_obj o = { .obj_hash = 77, .region_hash = 5, .size_bytes = 1000,
	                           .rate = 10, .held = 3 };
	struct pol_place_box b[4];
	struct pol_place_result *res = NULL;

	(void)state;
	pol_place_params_default(&p);
	for (uint64_t i = 0; i < 4; i++)
		b[i] = (struct pol_place_box){ .id_hash = 1000 + i * 7919, .region_hash = 5,
		                               .storage_bytes = i < 2 ? 1000000 : 10,
		                               .uplink_bps = 1000000000, .is_up = 1 };
	assert_int_equal(pold_miss_apply(&o, 1, 1, -1, &mp), 1);
	assert_int_equal(o.min_replicas, 4);
	assert_int_equal(pol_place_compute(&o, 1, b, 4, &p, &res), 0);
	assert_int_equal(res->wanted[0], 4);
	assert_int_equal(res->replicas[0], 2);
	pol_place_result_free(res);
}

struct pub_row {
	const char *name;
	const char *regions, *expires, *region;
	int live;
};

static const struct pub_row pub_rows[] = {
	{ "a region named in the list is live", "eu,us", "2000", "us", 1 },
	{ "the first region of the list is live", "eu,us", "2000", "eu", 1 },
	{ "_all is live for the _all set", "_all", "2000", "_all", 1 },
	{ "a region not in the list is dead", "eu,us", "2000", "asia", 0 },
	{ "a prefix of a region is not the region", "eu-west", "2000", "eu", 0 },
	{ "an expired announcement is dead", "eu", "999", "eu", 0 },
	{ "expiring now is dead", "eu", "1000", "eu", 0 },
	{ "a missing metadata hash is dead", NULL, NULL, "eu", 0 },
	{ "a malformed expiry is dead", "eu", "12x", "eu", 0 },
	{ "an empty expiry is dead", "eu", "", "eu", 0 },
};

static void test_pub_live(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof pub_rows / sizeof *pub_rows; i++) {
		const struct pub_row *r = &pub_rows[i];
		int got = pold_pub_is_live(r->regions, r->expires, r->region, 1000);

		if (got != r->live) {
			print_error("%s: got %d, want %d\n", r->name, got, r->live);
			fail();
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pathset),
		cmocka_unit_test(test_pathset_diff),
		cmocka_unit_test(test_assign_diff),
		cmocka_unit_test(test_assign_table),
		cmocka_unit_test(test_demand_rate),
		cmocka_unit_test(test_demand_monotone),
		cmocka_unit_test(test_demand_recent),
		cmocka_unit_test(test_misses_raise_replicas),
		cmocka_unit_test(test_misses_monotone_and_bounded),
		cmocka_unit_test(test_misses_bounded_by_capacity),
		cmocka_unit_test(test_pub_live),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
