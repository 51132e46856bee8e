/* test_rdr_table: the redirector's strict heartbeat parser (rdr_box_parse), the box table
 * lookup, the request path check and the popularity map bounds. No network, no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* The unit-test rule links common/ and policy/ only, so the redirector modules under test
 * are compiled into this file (they still go through their public headers). */
#include "../../redirector/rdr_locate.c"
#include "../../redirector/rdr_pop.c"
#include "../../redirector/rdr_serve.c"
#include "../../redirector/rdr_table.c"
#include "ec_err.h"
#include "ec_topo.h"
#include "pol_score.h"

#define GOOD "id", "b1", "url", "https://127.0.0.2:8443/", "pop", "pop-a", \
	"region", "eu", "uplink_bps", "100000000", "egress_bps", "5000", "conns", "3", \
	"ttfb_ms", "12", "status", "up", "ts_ms", "1700000000000"

struct parse_row {
	const char *name;
	const char *kv[40];
	int ok;
	const char *why; /* substring of the reason */
};

static const struct parse_row parse_rows[] = {
	{ "complete heartbeat parses", { GOOD }, 1, NULL },
	{ "unknown fields are ignored", { GOOD, "hits", "9", "cache_bytes", "1" }, 1, NULL },
	{ "optional lat/lon/asn parse", { GOOD, "lat", "48.85", "lon", "2.35", "asn", "3215" },
	  1, NULL },
	{ "empty pop and asn are unknown, not errors",
	  { "id", "b1", "url", "http://h", "pop", "", "asn", "", "uplink_bps", "1",
	    "status", "down", "ts_ms", "5" }, 1, NULL },
	{ "id differing from the member is refused",
	  { "id", "b2", "url", "http://h", "uplink_bps", "1", "status", "up", "ts_ms", "5" },
	  0, "id" },
	{ "missing url is refused",
	  { "id", "b1", "uplink_bps", "1", "status", "up", "ts_ms", "5" }, 0, "url" },
	{ "url without scheme is refused",
	  { "id", "b1", "url", "ftp://h", "uplink_bps", "1", "status", "up", "ts_ms", "5" },
	  0, "url" },
	{ "url with a query is refused",
	  { "id", "b1", "url", "http://h/?a", "uplink_bps", "1", "status", "up", "ts_ms", "5" },
	  0, "url" },
	{ "url with a space is refused",
	  { "id", "b1", "url", "http://h /", "uplink_bps", "1", "status", "up", "ts_ms", "5" },
	  0, "url" },
	{ "unknown status is refused", { GOOD, "status", "sideways" }, 0, "status" },
	{ "negative uplink is refused", { GOOD, "uplink_bps", "-1" }, 0, "uplink_bps" },
	{ "uplink with trailing junk is refused", { GOOD, "uplink_bps", "10x" }, 0,
	  "uplink_bps" },
	{ "zero ts_ms is refused", { GOOD, "ts_ms", "0" }, 0, "ts_ms" },
	{ "missing ts_ms is refused",
	  { "id", "b1", "url", "http://h", "uplink_bps", "1", "status", "up" }, 0, "ts_ms" },
	{ "latitude out of range is refused", { GOOD, "lat", "91", "lon", "0" }, 0, "lat" },
	{ "lat without lon is refused", { GOOD, "lat", "10" }, 0, "lat/lon" },
	{ "nan longitude is refused", { GOOD, "lat", "1", "lon", "nan" }, 0, "lon" },
	{ "pop with a slash is refused", { GOOD, "pop", "a/b" }, 0, "pop" },
	{ "conns over 32 bits is refused", { GOOD, "conns", "4294967296" }, 0, "conns" },
};

static void test_parse(void **state)
{
	size_t r;

	(void)state;
	for (r = 0; r < EC_ARRAY_LEN(parse_rows); r++) {
		const struct parse_row *row = &parse_rows[r];
		size_t n = 0, lens[40];
		struct rdr_box b;
		struct pol_box pb;
		char why[160] = "";
		int rc;

		while (n < 40 && row->kv[n])
			n++;
		for (size_t i = 0; i < n; i++)
			lens[i] = strlen(row->kv[i]);
		rc = rdr_box_parse("b1", n, row->kv, lens, &b, &pb, why, sizeof why);
		if (row->ok != (rc == 0))
			fail_msg("%s: rc %d (%s)", row->name, rc, why);
		if (!row->ok && !strstr(why, row->why))
			fail_msg("%s: reason \"%s\" lacks \"%s\"", row->name, why, row->why);
	}
}

static void test_parse_fills_fields(void **state)
{
	const char *kv[] = { GOOD, "lat", "48.85", "lon", "2.35", "asn", "3215" };
	size_t lens[EC_ARRAY_LEN(kv)], i;
	struct rdr_box b;
	struct pol_box pb;
	char why[160];

	(void)state;
	for (i = 0; i < EC_ARRAY_LEN(kv); i++)
		lens[i] = strlen(kv[i]);
	assert_int_equal(rdr_box_parse("b1", EC_ARRAY_LEN(kv), kv, lens, &b, &pb, why,
	                               sizeof why), 0);
	assert_string_equal(b.url, "https://127.0.0.2:8443"); /* trailing '/' dropped */
	assert_int_equal(b.url_len, strlen(b.url));
	assert_true(pb.pop_hash == ec_topo_name_hash("pop-a", 5));
	assert_true(pb.region_hash == ec_topo_name_hash("eu", 2));
	assert_true(pb.id_hash == pol_hash_bytes("b1", 2));
	assert_true(pb.uplink_bps == 100000000 && pb.egress_bps == 5000);
	assert_int_equal(pb.conns, 3);
	assert_int_equal(pb.ttfb_ms, 12);
	assert_int_equal(pb.status, POL_BOX_UP);
	assert_int_equal(pb.asn, 3215);
	assert_true(pb.has_loc && pb.lat > 48.8 && pb.lon < 2.4);
	assert_true(b.ts_ms == 1700000000000LL);
}

static void test_odd_and_embedded_nul(void **state)
{
	const char *kv[] = { "id", "b1", "url" };
	size_t lens[] = { 2, 2, 3 };
	const char *kv2[] = { "id", "b1", "url", "http://h\0x", "uplink_bps", "1", "status",
	                      "up", "ts_ms", "5" };
	size_t lens2[] = { 2, 2, 3, 10, 10, 1, 6, 2, 5, 1 };
	struct rdr_box b;
	struct pol_box pb;
	char why[160];

	(void)state;
	assert_int_equal(rdr_box_parse("b1", 3, kv, lens, &b, &pb, why, sizeof why), EC_EINVAL);
	assert_int_equal(rdr_box_parse("b1", 10, kv2, lens2, &b, &pb, why, sizeof why),
	                 EC_EINVAL);
}

struct path_row {
	const char *name;
	const char *path;
	int ok;
};

static const struct path_row path_rows[] = {
	{ "plain segment path is fine", "/v/abc/seg1.ts", 1 },
	{ "root is fine", "/", 1 },
	{ "percent-encoded space is fine", "/a%20b.ts", 1 },
	{ "dot-dot segment is refused", "/a/../b", 0 },
	{ "encoded dot-dot is refused", "/a/%2e%2e/b", 0 },
	{ "single dot segment is refused", "/a/./b", 0 },
	{ "empty segment is refused", "/a//b", 0 },
	{ "relative path is refused", "a/b", 0 },
	{ "raw space is refused", "/a b", 0 },
	{ "non-ASCII byte is refused", "/caf\xc3\xa9", 0 },
	{ "encoded slash is refused", "/a%2fb", 0 },
	{ "truncated percent-encoding is refused", "/a%2", 0 },
	{ "backslash is refused", "/a\\b", 0 },
};

static void test_check_path(void **state)
{
	size_t r;

	(void)state;
	for (r = 0; r < EC_ARRAY_LEN(path_rows); r++) {
		const struct path_row *row = &path_rows[r];
		const char *why = rdr_serve_check_path(row->path, strlen(row->path));

		if (row->ok != (why == NULL))
			fail_msg("%s: %s", row->name, why ? why : "accepted");
	}
	assert_non_null(rdr_serve_check_path("/a\0b", 4)); /* NUL inside the path */
}

static void test_pop_bounds(void **state)
{
	struct rdr_pop *p = rdr_pop_new(3);
	char big[RDR_POP_MAX_PATH + 2];

	(void)state;
	assert_non_null(p);
	assert_int_equal(rdr_pop_count(p, "eu", "/a", 2), 0);
	assert_int_equal(rdr_pop_count(p, "eu", "/a", 2), 0);      /* same entry */
	assert_int_equal(rdr_pop_count(p, "us", "/a", 2), 0);      /* other region */
	assert_int_equal(rdr_pop_count(p, "_", "/b", 2), 0);
	assert_int_equal(rdr_pop_size(p), 3);
	assert_int_equal(rdr_pop_count(p, "_", "/c", 2), EC_EFULL); /* full: dropped */
	assert_int_equal(rdr_pop_count(p, "eu", "/a", 2), 0);      /* known ones still count */
	assert_int_equal(rdr_pop_overflow(p), 1);
	memset(big, 'x', sizeof big);
	big[0] = '/';
	assert_int_equal(rdr_pop_count(p, "eu", big, sizeof big), EC_ETOOBIG);
	rdr_pop_free(p);
	rdr_pop_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_fills_fields),
		cmocka_unit_test(test_odd_and_embedded_nul),
		cmocka_unit_test(test_check_path),
		cmocka_unit_test(test_pop_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
