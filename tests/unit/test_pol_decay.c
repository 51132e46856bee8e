/* test_pol_decay: exact lazy decay of counters and the (region, object) table:
 * half-lives, lazy equals eager, rates, fallbacks, pruning and export. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "pol_decay.h"

#define HL 60000 /* half-life used by the rows below, ms */

struct decay_row {
	const char *name;
	double start;    /* value at t = 0 */
	int64_t at_ms;   /* read at */
	double expect;
};

static const struct decay_row decay_rows[] = {
	{ "no time passed keeps the value", 8, 0, 8 },
	{ "one half-life halves the value", 8, HL, 4 },
	{ "two half-lives quarter the value", 8, 2 * HL, 2 },
	{ "half a half-life divides by sqrt 2", 8, HL / 2, 8 / M_SQRT2 },
	{ "a clock step back decays nothing", 8, -5000, 8 },
	{ "a zero value stays zero", 0, 10 * HL, 0 },
	{ "a day at a minute half-life is zero", 8, 1440LL * HL, 0 },
};

static void test_decay_values(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof decay_rows / sizeof decay_rows[0]; i++) {
		const struct decay_row *r = &decay_rows[i];
		struct pol_decay_val v = { r->start, 0 };
		double got = pol_decay_get(&v, r->at_ms, HL);

		if (fabs(got - r->expect) > 1e-9) {
			print_error("%s: got %g, want %g\n", r->name, got, r->expect);
			fail();
		}
	}
}

/* Increments at irregular times, decayed lazily at each one, must equal the eager sum
 * of each increment decayed from its own time. */
static void test_lazy_equals_eager(void **state)
{
	static const int64_t t[] = { 0, 10, 999, 30000, 30001, 61000, 200000, 200000, 450123 };
	static const double inc[] = { 1, 2, 0.5, 7, 1, 3, 1, 1, 4 };
	struct pol_decay_val lazy = { 0, 0 };
	int64_t end = 500000;
	double eager = 0;

	(void)state;
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
		pol_decay_add(&lazy, inc[i], t[i], HL);
		eager += inc[i] * exp2(-(double)(end - t[i]) / HL);
	}
	assert_true(fabs(pol_decay_get(&lazy, end, HL) - eager) < 1e-9 * eager);

	/* Eager per-second ticks of the same stream give the same value. */
	struct pol_decay_val ticked = { 0, 0 };
	size_t k = 0;

	for (int64_t now = 0; now <= end; now += 1) {
		while (k < sizeof t / sizeof t[0] && t[k] == now)
			pol_decay_add(&ticked, inc[k++], now, HL);
		if (now % 1000 == 0)
			pol_decay_add(&ticked, 0, now, HL);
	}
	assert_true(fabs(pol_decay_get(&ticked, end, HL) - eager) < 1e-9 * eager);
}

/* A steady stream of r requests/s makes pol_decay_rate converge to r. */
static void test_rate_of_steady_stream(void **state)
{
	struct pol_decay_val v = { 0, 0 };
	int64_t now;

	(void)state;
	for (now = 0; now < 20 * HL; now += 100)
		pol_decay_add(&v, 1, now, HL); /* 10 per second */
	assert_true(fabs(pol_decay_rate(&v, now - 100, HL) - 10.0) < 0.1);
}

static void test_table_counts_per_region(void **state)
{
	struct pol_decay_table *t = pol_decay_table_new(HL);
	const struct pol_decay_entry *e;

	(void)state;
	assert_non_null(t);
	assert_null(pol_decay_table_new(0));
	for (int i = 0; i < 5000; i++)
		assert_int_equal(pol_decay_table_hit(t, 1 + i % 3, 100 + i % 1000, 500, 1, 0), 0);
	assert_int_equal(pol_decay_table_count(t), 3000);
	e = pol_decay_table_find(t, 1, 100);
	assert_non_null(e);
	assert_true(fabs(e->reqs.v - 2.0) < 1e-12); /* i = 0 and i = 3000 */
	assert_int_equal(e->size_bytes, 500);
	assert_null(pol_decay_table_find(t, 9, 100));

	/* Fallbacks mark under-replication once they are a large share of requests. */
	assert_false(pol_decay_under_replicated(e, 0, HL, 1, 0.5));
	assert_int_equal(pol_decay_table_fallback(t, 1, 100, 1, 0), 0);
	e = pol_decay_table_find(t, 1, 100);
	assert_true(pol_decay_under_replicated(e, 0, HL, 1, 0.5));
	assert_false(pol_decay_under_replicated(e, 0, HL, 2, 0.5));
	pol_decay_table_free(t);
	pol_decay_table_free(NULL);
}

static void test_table_prune_and_export(void **state)
{
	struct pol_decay_table *t = pol_decay_table_new(HL);
	struct pol_place_obj *rows;
	size_t n;

	(void)state;
	assert_int_equal(pol_decay_table_hit(t, 1, 10, 100, 1, 0), 0);        /* old */
	assert_int_equal(pol_decay_table_hit(t, 1, 11, 100, 64, 0), 0);       /* old, big */
	assert_int_equal(pol_decay_table_hit(t, 2, 12, 100, 1, 4 * HL), 0);   /* fresh */
	/* At 4 half-lives: 1/16, 4, 1. */
	assert_int_equal(pol_decay_table_prune(t, 4 * HL, 0.5), 1);
	assert_int_equal(pol_decay_table_count(t), 2);
	assert_null(pol_decay_table_find(t, 1, 10));
	assert_non_null(pol_decay_table_find(t, 1, 11));
	assert_non_null(pol_decay_table_find(t, 2, 12));

	assert_int_equal(pol_decay_table_export(t, 4 * HL, 0, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].obj_hash, 11);
	assert_true(fabs(rows[0].rate - 4 * M_LN2 / 60.0) < 1e-12);
	free(rows);
	/* min_rate drops the slower row */
	assert_int_equal(pol_decay_table_export(t, 4 * HL, 2 * M_LN2 / 60.0, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].obj_hash, 11);
	free(rows);
	pol_decay_table_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_decay_values),
		cmocka_unit_test(test_lazy_equals_eager),
		cmocka_unit_test(test_rate_of_steady_stream),
		cmocka_unit_test(test_table_counts_per_region),
		cmocka_unit_test(test_table_prune_and_export),
	};
	return cmocka_run_group_tests_name("pol_decay", tests, NULL, NULL);
}
