/* test_ec_acct: reading the accounting fields of docs/redis.md: base fields, scopes,
 * per-box ids with dots, reasons, bad values, ratios and windows. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ec_acct.h"
#include "ec_err.h"

/* The fields every row below is fed, as one HGETALL of a bucket would return them. */
static const char *const fields[][2] = {
	{ "box.bytes", "3000" }, { "box.reqs", "30" },
	{ "origin.fallback_bytes", "1000" }, { "origin.fallback_reqs", "10" },
	{ "origin.fill_bytes", "200" }, { "origin.prefetch_bytes", "50" },
	{ "box.box-a.bytes", "2000" }, { "box.box-a.reqs", "20" },
	{ "box.node.7.lan.bytes", "1000" }, { "box.node.7.lan.reqs", "10" },
	{ "rdr.miss.no_box_in_reach", "6" }, { "rdr.miss.all_over_capacity", "4" },
	{ "svc.vod.box.bytes", "3000" }, { "svc.vod.origin.fallback_bytes", "1000" },
	{ "svc.vod.rdr.miss.sla_ttfb", "2" },
	{ "region.eu-west.box.bytes", "900" }, { "region.eu-west.origin.fallback_bytes", "100" },
	{ "some.future.field", "12" },
};

struct scope_row {
	const char *name;
	const char *service, *region;
	uint64_t box_bytes, fallback_bytes, egress;
	double byte_offload;
	size_t reasons;
};

static const struct scope_row scope_rows[] = {
	{ "everything sums the unscoped fields", NULL, NULL, 3000, 1000, 1250, 0.75, 2 },
	{ "a service sums only its prefixed fields", "vod", NULL, 3000, 1000, 1000, 0.75, 1 },
	{ "a region sums only its prefixed fields", NULL, "eu-west", 900, 100, 100, 0.9, 0 },
	{ "an unknown service is empty, not an error", "live", NULL, 0, 0, 0, NAN, 0 },
};

static void feed(struct ec_acct *a)
{
	for (size_t i = 0; i < EC_ARRAY_LEN(fields); i++)
		assert_int_equal(ec_acct_add(a, fields[i][0], fields[i][1]), 0);
}

static void test_scopes(void **state)
{
	(void)state;
	for (size_t i = 0; i < EC_ARRAY_LEN(scope_rows); i++) {
		const struct scope_row *r = &scope_rows[i];
		struct ec_acct a;
		double got;

		assert_int_equal(ec_acct_init(&a, r->service, r->region), 0);
		feed(&a);
		feed(&a); /* two buckets of one window */
		got = ec_acct_byte_offload(&a.s);
		if (a.s.box_bytes != 2 * r->box_bytes || a.s.fallback_bytes != 2 * r->fallback_bytes ||
		    ec_acct_origin_egress(&a.s) != 2 * r->egress || a.reasons.n != r->reasons ||
		    (isnan(r->byte_offload) ? !isnan(got) : got != r->byte_offload))
			fail_msg("%s: box %llu origin %llu ratio %g reasons %zu", r->name,
			         (unsigned long long)a.s.box_bytes,
			         (unsigned long long)a.s.fallback_bytes, got, a.reasons.n);
		ec_acct_fini(&a);
	}
}

static void test_tables(void **state)
{
	struct ec_acct a;

	(void)state;
	assert_int_equal(ec_acct_init(&a, NULL, NULL), 0);
	feed(&a);
	/* box ids with dots are read by their suffix */
	assert_int_equal(a.boxes.n, 2);
	ec_acct_table_sort(&a.boxes);
	assert_string_equal(a.boxes.rows[0].name, "box-a");
	assert_int_equal(a.boxes.rows[0].s.box_bytes, 2000);
	assert_string_equal(a.boxes.rows[1].name, "node.7.lan");
	assert_int_equal(a.boxes.rows[1].s.box_reqs, 10);
	/* services and regions tables list every name seen, whatever the scope */
	assert_int_equal(a.services.n, 1);
	assert_string_equal(a.services.rows[0].name, "vod");
	assert_int_equal(a.regions.n, 1);
	assert_int_equal(a.regions.rows[0].s.fallback_bytes, 100);
	ec_acct_table_sort(&a.reasons);
	assert_string_equal(a.reasons.rows[0].name, "no_box_in_reach");
	/* the index survives sorting: adding finds the same row */
	assert_int_equal(ec_acct_add(&a, "rdr.miss.no_box_in_reach", "1"), 0);
	assert_int_equal(a.reasons.n, 2);
	assert_int_equal(a.reasons.rows[0].s.rdr_origin, 7);
	ec_acct_fini(&a);
	ec_acct_fini(&a); /* twice is harmless */
}

static void test_many_boxes_grow_the_table(void **state)
{
	struct ec_acct a;
	char f[64];

	(void)state;
	ec_acct_init(&a, NULL, NULL);
	for (int k = 0; k < 3; k++)
		for (int i = 0; i < 1000; i++) {
			snprintf(f, sizeof f, "box.b%d.bytes", i);
			assert_int_equal(ec_acct_add(&a, f, "1"), 0);
		}
	assert_int_equal(a.boxes.n, 1000);
	for (size_t i = 0; i < a.boxes.n; i++)
		assert_int_equal(a.boxes.rows[i].s.box_bytes, 3);
	ec_acct_fini(&a);
}

struct bad_row {
	const char *name, *field, *value;
	int rc;
};

static const struct bad_row bad_rows[] = {
	{ "a negative value is refused", "box.bytes", "-5", EC_EINVAL },
	{ "a value with trailing text is refused", "box.bytes", "12abc", EC_EINVAL },
	{ "an empty value is refused", "box.bytes", "", EC_EINVAL },
	{ "a value past 64 bits is refused", "box.bytes", "99999999999999999999999", EC_EINVAL },
	{ "an unknown field is ignored", "box.frobs", "5", 0 },
	{ "a scope without a field is ignored", "svc.vod", "5", 0 },
	{ "a box field without an id is not a box", "box..bytes", "5", 0 },
};

static void test_bad_input(void **state)
{
	(void)state;
	for (size_t i = 0; i < EC_ARRAY_LEN(bad_rows); i++) {
		const struct bad_row *r = &bad_rows[i];
		struct ec_acct a;
		int rc;

		ec_acct_init(&a, NULL, NULL);
		rc = ec_acct_add(&a, r->field, r->value);
		if (rc != r->rc || a.s.box_bytes != 0 || a.boxes.n != 0)
			fail_msg("%s: rc %d, box bytes %llu, boxes %zu", r->name, rc,
			         (unsigned long long)a.s.box_bytes, a.boxes.n);
		ec_acct_fini(&a);
	}
}

static void test_init_and_windows(void **state)
{
	struct ec_acct a;

	(void)state;
	assert_int_equal(ec_acct_init(&a, "vod", "eu"), EC_EINVAL); /* one scope only */
	assert_int_equal(ec_acct_init(&a, "v.od", NULL), EC_EINVAL);
	assert_int_equal(ec_acct_init(&a, NULL, "012345678901234567890123456789012"),
	                 EC_EINVAL);
	assert_int_equal(ec_acct_init(&a, "", ""), 0);
	assert_string_equal(a.scope, "");
	assert_int_equal(ec_acct_window_minutes(NULL), 0);
	assert_int_equal(ec_acct_window_minutes("total"), 0);
	assert_int_equal(ec_acct_window_minutes("1m"), 1);
	assert_int_equal(ec_acct_window_minutes("1h"), 60);
	assert_int_equal(ec_acct_window_minutes("1d"), 1440);
	assert_int_equal(ec_acct_window_minutes("2h"), -1);
	assert_true(isnan(ec_acct_ratio(0, 0)));
	assert_true(ec_acct_ratio(0, 5) == 0.0);
	assert_true(ec_acct_ratio(3, 1) == 0.75);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scopes),
		cmocka_unit_test(test_tables),
		cmocka_unit_test(test_many_boxes_grow_the_table),
		cmocka_unit_test(test_bad_input),
		cmocka_unit_test(test_init_and_windows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
