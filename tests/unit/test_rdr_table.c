/* test_rdr_table: the redirector's strict heartbeat parser (rdr_box_parse), the box table
 * lookup, charging between heartbeats, services and trusted proxies in the config, the
 * inventory map, the request path check and the popularity map bounds. No network, no
 * clock (times are passed in); config tests write temp files. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* The unit-test rule links common/ and policy/ only, so the redirector modules under test
 * are compiled into this file (they still go through their public headers). */
#include "../../redirector/rdr_conf.c"
#include "../../redirector/rdr_fwd.c"
#include "../../redirector/rdr_inv.c"
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
/* the least a heartbeat needs, with the url under test */
#define WITH_URL(u) "id", "b1", "url", (u), "uplink_bps", "1", "status", "up", "ts_ms", "5"

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
	{ "url without scheme is refused", { WITH_URL("ftp://h") }, 0, "url" },
	{ "url with a query is refused", { WITH_URL("http://h/?a") }, 0, "url" },
	{ "url with a space is refused", { WITH_URL("http://h /") }, 0, "url" },
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
	{ "uplink over 64 bits is refused", { GOOD, "uplink_bps", "18446744073709551616" }, 0,
	  "uplink_bps" },
	{ "uplink with a sign is refused", { GOOD, "uplink_bps", "+5" }, 0, "uplink_bps" },
	{ "uplink with a leading space is refused", { GOOD, "uplink_bps", " 5" }, 0,
	  "uplink_bps" },
	{ "empty uplink is refused", { GOOD, "uplink_bps", "" }, 0, "uplink_bps" },
	{ "hex uplink is refused", { GOOD, "uplink_bps", "0x10" }, 0, "uplink_bps" },
	{ "uplink with leading zeros parses", { GOOD, "uplink_bps", "000000000000000000000000010" },
	  1, NULL },
	{ "url of slashes after the scheme only is refused", { WITH_URL("http:///") }, 0, "url" },
	{ "url of a scheme prefix only is refused", { WITH_URL("https:/") }, 0, "url" },
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

/* The hb field holds the same pairs as "name=value" separated by spaces: every parse row
 * whose values a space-separated pair can carry gives the same verdict and, when it
 * parses, the same row and box. */
static void test_parse_hb_matches_fields(void **state)
{
	size_t r, tried = 0;

	(void)state;
	for (r = 0; r < EC_ARRAY_LEN(parse_rows); r++) {
		const struct parse_row *row = &parse_rows[r];
		size_t n = 0, lens[40], len = 0;
		struct rdr_box b1, b2;
		struct pol_box p1, p2;
		char why1[160] = "", why2[160] = "", hb[1024];
		int rc1, rc2, can = 1;

		while (n < 40 && row->kv[n])
			n++;
		for (size_t i = 0; i < n; i++) {
			lens[i] = strlen(row->kv[i]);
			if (strchr(row->kv[i], ' '))
				can = 0;
		}
		if (!can)
			continue;
		for (size_t i = 0; i + 1 < n; i += 2)
			len += (size_t)snprintf(hb + len, sizeof hb - len, "%s%s=%s", i ? " " : "",
			                        row->kv[i], row->kv[i + 1]);
		rc1 = rdr_box_parse("b1", n, row->kv, lens, &b1, &p1, why1, sizeof why1);
		rc2 = rdr_box_parse_hb("b1", hb, len, &b2, &p2, why2, sizeof why2);
		if (rc1 != rc2 || strcmp(why1, why2) != 0)
			fail_msg("%s: fields rc %d (%s), hb \"%s\" rc %d (%s)", row->name, rc1, why1,
			         hb, rc2, why2);
		if (rc1 == 0 && (memcmp(&b1, &b2, sizeof b1) != 0 || memcmp(&p1, &p2, sizeof p1) != 0))
			fail_msg("%s: hb parsed to another row", row->name);
		tried++;
	}
	assert_true(tried > EC_ARRAY_LEN(parse_rows) / 2);
}

struct hb_row {
	const char *name;
	const char *hb;
	const char *why; /* NULL: parses */
};

#define HB_MIN "id=b1 url=http://h uplink_bps=1 status=up ts_ms=5"

static const struct hb_row hb_rows[] = {
	{ "the least heartbeat parses", HB_MIN, NULL },
	{ "a value holding '=' keeps it", HB_MIN " note=a=b", NULL },
	{ "empty values are unknown, not errors", HB_MIN " pop= asn=", NULL },
	{ "empty string is refused", "", "hb: empty" },
	{ "a pair without '=' is refused", HB_MIN " junk", "name=value" },
	{ "an empty name is refused", HB_MIN " =5", "name=value" },
	{ "a doubled space is refused", "id=b1  url=http://h uplink_bps=1 status=up ts_ms=5",
	  "name=value" },
	{ "a leading space is refused", " " HB_MIN, "name=value" },
	{ "a trailing space is refused", HB_MIN " ", "trailing space" },
	{ "a tab inside a value is refused", "id=b1 url=http://h\tx uplink_bps=1 status=up ts_ms=5",
	  "url" },
	{ "a field the parser refuses is refused", HB_MIN " status=sideways", "status" },
	{ "a missing field is refused", "id=b1 url=http://h status=up ts_ms=5", "uplink_bps" },
	{ "an id other than the member is refused", "id=b2 url=http://h uplink_bps=1 status=up "
	  "ts_ms=5", "id" },
	{ "33 pairs are refused", HB_MIN " a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 "
	  "a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1", "too many" },
	{ "32 pairs parse", HB_MIN " a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 "
	  "a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1 a=1", NULL },
};

static void test_parse_hb(void **state)
{
	(void)state;
	for (size_t r = 0; r < EC_ARRAY_LEN(hb_rows); r++) {
		const struct hb_row *row = &hb_rows[r];
		struct rdr_box b;
		struct pol_box pb;
		char why[160] = "";
		int rc = rdr_box_parse_hb("b1", row->hb, strlen(row->hb), &b, &pb, why, sizeof why);

		if ((row->why == NULL) != (rc == 0))
			fail_msg("%s: rc %d (%s)", row->name, rc, why);
		if (row->why && !strstr(why, row->why))
			fail_msg("%s: reason \"%s\" lacks \"%s\"", row->name, why, row->why);
		if (!row->why && (b.magic != RDR_BOX_MAGIC || strcmp(b.url, "http://h") != 0))
			fail_msg("%s: row not filled", row->name);
	}
}

/* a NUL inside the string: the value is refused, never read past */
static void test_parse_hb_embedded_nul(void **state)
{
	static const char hb[] = "id=b1 url=http://h\0x uplink_bps=1 status=up ts_ms=5";
	struct rdr_box b;
	struct pol_box pb;
	char why[160] = "";

	(void)state;
	assert_int_equal(rdr_box_parse_hb("b1", hb, sizeof hb - 1, &b, &pb, why, sizeof why),
	                 EC_EINVAL);
	assert_non_null(strstr(why, "url"));
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

/* The entry of (region, path) in the current batch, or NULL. */
static const struct pop_entry *pop_find(const struct rdr_pop *p, const char *region,
                                        const char *path)
{
	for (size_t i = 0; i < p->cap; i++) {
		const struct pop_entry *e = p->slots[i];

		if (e && strcmp(e->key, region) == 0 &&
		    strcmp(e->key + e->region_len + 1, path) == 0)
			return e;
	}
	return NULL;
}

static const struct {
	const char *name;
	enum pol_miss miss;
	int counts;
} pop_miss_rows[] = {
	{ "a redirect to a box is no fallback", POL_MISS_NONE, 0 },
	{ "boxes in reach all over capacity: too few replicas", POL_MISS_ALL_OVER_CAPACITY, 1 },
	{ "boxes in reach too slow: too few replicas", POL_MISS_SLA_TTFB, 1 },
	{ "cached-only and nobody holds it: too few replicas", POL_MISS_NOT_CACHED, 1 },
	{ "no box at all: replicas cannot help", POL_MISS_NO_BOX, 0 },
	{ "no box in reach: replicas cannot help", POL_MISS_NO_BOX_IN_REACH, 0 },
	{ "stale heartbeats: replicas cannot help", POL_MISS_STATE_STALE, 0 },
	{ "redis down: replicas cannot help", POL_MISS_REDIS_DOWN, 0 },
};

static void test_pop_counts_only_fallbacks_replicas_could_fix(void **state)
{
	struct rdr_pop *p = rdr_pop_new(16);
	const struct pop_entry *e;

	(void)state;
	assert_non_null(p);
	for (size_t i = 0; i < sizeof pop_miss_rows / sizeof *pop_miss_rows; i++) {
		char path[32];

		snprintf(path, sizeof path, "/m/%zu", i);
		if (rdr_pop_miss_counts(pop_miss_rows[i].miss) != pop_miss_rows[i].counts)
			fail_msg("%s: miss_counts %d", pop_miss_rows[i].name, !pop_miss_rows[i].counts);
		assert_int_equal(rdr_pop_count_outcome(p, "eu", path, strlen(path),
		                                       pol_hash_bytes(path, strlen(path)),
		                                       pop_miss_rows[i].miss), 0);
		assert_int_equal(rdr_pop_count_outcome(p, "eu", path, strlen(path),
		                                       pol_hash_bytes(path, strlen(path)),
		                                       pop_miss_rows[i].miss), 0);
		assert_non_null(e = pop_find(p, "eu", path));
		if (e->count != 2 || e->misses != (uint64_t)(2 * pop_miss_rows[i].counts))
			fail_msg("%s: count %llu misses %llu", pop_miss_rows[i].name,
			         (unsigned long long)e->count, (unsigned long long)e->misses);
	}
	/* the same (region, path) mixes hits and fallbacks; rdr_pop_count() is a hit */
	assert_int_equal(rdr_pop_count(p, "eu", "/x", 2), 0);
	assert_int_equal(rdr_pop_count_outcome(p, "eu", "/x", 2, pol_hash_bytes("/x", 2),
	                                       POL_MISS_ALL_OVER_CAPACITY), 0);
	assert_int_equal(rdr_pop_count_outcome(p, "us", "/x", 2, pol_hash_bytes("/x", 2),
	                                       POL_MISS_SLA_TTFB), 0);
	assert_non_null(e = pop_find(p, "eu", "/x"));
	assert_int_equal(e->count, 2);
	assert_int_equal(e->misses, 1);
	assert_non_null(e = pop_find(p, "us", "/x"));
	assert_int_equal(e->misses, 1);
	rdr_pop_free(p);
}

/* ---- charging --------------------------------------------------------------------- */

/* A syncer with a one-box table, built without Redis or an event loop. */
static struct rdr_boxes *charge_boxes(int64_t charge_ms, int64_t reflect_ms, int64_t hb_ms)
{
	struct rdr_boxes *b = calloc(1, sizeof *b);
	struct rdr_box *rows = calloc(1, sizeof *rows);
	struct pol_box *boxes = calloc(1, sizeof *boxes);

	assert_non_null(b);
	assert_non_null(rows);
	assert_non_null(boxes);
	b->magic = BOXES_MAGIC;
	b->charge_ms = charge_ms;
	b->charge_reflect_ms = reflect_ms;
	strcpy(rows[0].id, "b1");
	rows[0].magic = RDR_BOX_MAGIC;
	boxes[0].hb_ms = hb_ms;
	b->cur = table_new(&rows, &boxes, 1, 1);
	assert_non_null(b->cur);
	return b;
}

static void charge_free(struct rdr_boxes *b)
{
	table_free(NULL, b->cur);
	free(b);
}

/* A sync in which every box was carried over (heartbeat unchanged, hash still there)
 * keeps the current table and its index; one in which a carried box is gone, or one
 * more box is read, builds a new table. */
static struct boxes_sync *carry_sync(struct rdr_boxes *b, size_t n, size_t carried)
{
	struct boxes_sync *s = calloc(1, sizeof *s);

	assert_non_null(s);
	s->magic = SYNC_MAGIC;
	s->owner = b;
	s->n = n;
	s->carried = carried;
	assert_int_equal(rows_get(b, n, &s->rows, &s->boxes, &s->cap), 0);
	for (size_t i = 0; i < carried && i < b->cur->n; i++) {
		s->rows[i] = b->cur->rows[i];
		s->boxes[i] = b->cur->boxes[i];
	}
	b->sync = s;
	return s;
}

static void test_sync_of_unchanged_boxes_keeps_the_table(void **state)
{
	struct rdr_boxes *b = charge_boxes(0, 0, 5);
	const struct rdr_table *t0 = b->cur;
	struct boxes_sync *s;

	(void)state;
	b->name = strdup("redis test");
	b->last_ok_ms = 1;
	sync_finish(carry_sync(b, 1, 1));
	assert_ptr_equal(b->cur, t0);
	assert_true(b->syncs_ok == 1 && b->last_ok_ms > 1 && b->sync == NULL);

	s = carry_sync(b, 1, 1);
	memset(&s->rows[0], 0, sizeof s->rows[0]); /* its EXISTS said 0: the row was wiped */
	sync_finish(s);
	assert_true(b->cur != t0 && b->cur->n == 0 && b->syncs_ok == 2);

	t0 = b->cur;
	s = carry_sync(b, 1, 0); /* a box read anew: a new table */
	strcpy(s->rows[0].id, "b2");
	s->rows[0].magic = RDR_BOX_MAGIC;
	sync_finish(s);
	assert_true(b->cur != t0 && b->cur->n == 1 && strcmp(b->cur->rows[0].id, "b2") == 0);
	free(b->name);
	rows_free(b->spare_rows, b->spare_boxes, b->spare_cap);
	charge_free(b);
}

static void test_charge_counts_until_it_expires(void **state)
{
	struct rdr_boxes *b = charge_boxes(10000, 1000, 0);

	(void)state;
	rdr_boxes_charge(b, 0, 5000000, 100000);
	rdr_boxes_charge(b, 0, 5000000, 100400);
	assert_true(b->cur->boxes[0].charged_bps == 10000000);
	charge_refresh(b, 105000);
	assert_true(b->cur->boxes[0].charged_bps == 10000000);
	charge_refresh(b, 110600); /* both slots ended more than 10 s ago */
	assert_true(b->cur->boxes[0].charged_bps == 0);
	charge_free(b);
}

static void test_charges_count_again_after_all_expired(void **state)
{
	struct rdr_boxes *b = charge_boxes(10000, 1000, 0);

	(void)state;
	rdr_boxes_charge(b, 0, 5000000, 100000);
	charge_refresh(b, 111000);
	assert_true(b->cur->boxes[0].charged_bps == 0);
	assert_int_equal(b->cur->rows[0].has_charges, 0);
	charge_refresh(b, 112000); /* nothing left: the empty box is skipped */
	assert_true(b->cur->boxes[0].charged_bps == 0);
	rdr_boxes_charge(b, 0, 3000000, 113000);
	charge_refresh(b, 114000);
	assert_true(b->cur->boxes[0].charged_bps == 3000000);
	charge_free(b);
}

/* A sync builds its table in the arrays of the table before the current one: the spare
 * comes back with every row unparsed (magic 0, no id) and zeroed boxes, and a larger sync
 * gets new arrays. */
static void test_sync_reuses_the_previous_arrays(void **state)
{
	struct rdr_boxes b = { .magic = BOXES_MAGIC };
	struct rdr_box *rows = NULL, *kept;
	struct pol_box *boxes = NULL;
	struct rdr_table *t;
	size_t cap = 0;

	(void)state;
	assert_int_equal(rows_get(&b, 4, &rows, &boxes, &cap), 0);
	assert_int_equal(cap, 4);
	strcpy(rows[0].id, "b0");
	rows[0].magic = RDR_BOX_MAGIC;
	boxes[0].egress_bps = 7;
	strcpy(rows[2].id, "b2");
	rows[2].magic = RDR_BOX_MAGIC; /* beyond the table's n: a leftover of a failed sync */
	t = table_new(&rows, &boxes, 1, cap);
	assert_non_null(t);
	kept = t->rows;
	table_free(&b, t);
	assert_ptr_equal(b.spare_rows, kept);
	assert_int_equal(b.spare_cap, 4);
	assert_int_equal(rows_get(&b, 3, &rows, &boxes, &cap), 0);
	assert_ptr_equal(rows, kept);
	assert_int_equal(cap, 4);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(rows[i].magic, 0);
		assert_int_equal(rows[i].id[0], 0);
	}
	assert_true(boxes[0].egress_bps == 0);
	assert_null(b.spare_rows);
	rows_retire(&b, rows, boxes, 3, cap);
	assert_int_equal(rows_get(&b, 5, &rows, &boxes, &cap), 0);
	assert_int_equal(cap, 5);
	assert_ptr_equal(b.spare_rows, kept); /* too small: still spare */
	rows_free(rows, boxes, 5);
	rows_free(b.spare_rows, b.spare_boxes, b.spare_cap);
}

static void test_heartbeat_after_reflect_time_clears_older_charges(void **state)
{
	struct rdr_boxes *b = charge_boxes(10000, 1000, 0);

	(void)state;
	rdr_boxes_charge(b, 0, 5000000, 100000);  /* slot 100000..100500 */
	rdr_boxes_charge(b, 0, 7000000, 101800);  /* slot 101500..102000 */
	/* a heartbeat first seen at 102000 reflects what was sent before 101000 */
	b->cur->boxes[0].hb_ms = 102000;
	charge_refresh(b, 102000);
	assert_true(b->cur->boxes[0].charged_bps == 7000000);
	/* one seen at 103000 reflects the rest */
	b->cur->boxes[0].hb_ms = 103000;
	charge_refresh(b, 103000);
	assert_true(b->cur->boxes[0].charged_bps == 0);
	charge_free(b);
}

static void test_charging_off_charges_nothing(void **state)
{
	struct rdr_boxes *b = charge_boxes(0, 1000, 0);

	(void)state;
	rdr_boxes_charge(b, 0, 5000000, 100000);
	rdr_boxes_charge(b, 7, 5000000, 100000); /* no such row: ignored */
	assert_true(b->cur->boxes[0].charged_bps == 0);
	charge_free(b);
}

static void test_charge_ring_wrap_drops_the_old_slot(void **state)
{
	struct rdr_boxes *b = charge_boxes(15000, 1000, 0);
	int64_t t = 200000;

	(void)state;
	rdr_boxes_charge(b, 0, 1000, t);
	/* the same ring position, RDR_CHARGE_SLOTS slots later, with no refresh between */
	rdr_boxes_charge(b, 0, 2000, t + RDR_CHARGE_SLOTS * RDR_CHARGE_SLOT_MS);
	assert_true(b->cur->boxes[0].charged_bps == 2000);
	charge_free(b);
}

/* ---- services (rdr_conf) ------------------------------------------------------------ */

static int conf_from(const char *text, struct rdr_conf *c, char *err, size_t errlen,
                     char *path, size_t pathlen)
{
	struct ec_args args;
	int fd;
	FILE *f;

	snprintf(path, pathlen, "/tmp/test_rdr_conf_XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	fputs("token.master = 7:000102030405060708090a0b0c0d0e0f\n"
	      "origin.url = http://origin.example/\n", f);
	fputs(text, f);
	fclose(f);
	memset(&args, 0, sizeof args);
	args.conf_path = path;
	return rdr_conf_load(c, &args, err, errlen);
}

static void test_services_longest_prefix_and_host(void **state)
{
	struct rdr_conf c;
	char err[2048], path[64];

	(void)state;
	assert_int_equal(conf_from(
		"service = name=vod prefix=/v/ origin=http://vod.example max_class=asn "
		"max_ttfb=800ms viewer_bitrate=5M max_util=0.8 max_state_age=2500ms "
		"max_distance_km=300\n"
		"service = name=live prefix=/v/live/ viewer_bitrate=8M\n"
		"service = name=tv prefix=/v/ host=TV.Example.com\n"
		"trusted_proxies = 10.0.0.0/8\n"
		"trusted_proxies = ::1\n"
		"token.bind_client_prefix = 24/48\n", &c, err, sizeof err, path, sizeof path), 0);
	unlink(path);
	assert_int_equal(c.n_services, 4);
	assert_int_equal(rdr_conf_service(&c, "", "/x.ts", 5), 0);
	assert_string_equal(c.services[rdr_conf_service(&c, "a", "/v/1.ts", 7)].name, "vod");
	assert_string_equal(c.services[rdr_conf_service(&c, "a", "/v/live/1.ts", 12)].name,
	                    "live");
	assert_string_equal(c.services[rdr_conf_service(&c, "tv.example.com:8080", "/v/1.ts",
	                                                7)].name, "tv");
	assert_string_equal(c.services[0].origin, "http://origin.example");
	assert_string_equal(c.services[1].origin, "http://vod.example");
	assert_string_equal(c.services[2].origin, "http://origin.example");
	assert_int_equal(c.services[1].sla.max_class, POL_CLASS_ASN);
	assert_int_equal(c.services[1].sla.max_ttfb_ms, 800);
	assert_true(c.services[1].sla.viewer_bps == 5000000);
	assert_true(c.services[2].sla.viewer_bps == 8000000);
	assert_true(c.services[2].sla.max_class == c.sla.max_class);
	assert_int_equal(c.trusted.n, 2);
	assert_int_equal(c.bind_v4_bits, 24);
	assert_int_equal(c.bind_v6_bits, 48);
	rdr_conf_fini(&c);
}

struct svc_err_row {
	const char *name;
	const char *line;
	const char *want;
};

static const struct svc_err_row svc_err_rows[] = {
	{ "service without prefix is refused", "service = name=a\n", ":3: service: prefix: missing" },
	{ "unknown service key is refused", "service = name=a prefix=/a/ colour=red\n",
	  ":3: service: expected one of" },
	{ "bad class in a service is refused", "service = name=a prefix=/a/ max_class=near\n",
	  "max_class: expected pop, asn, geo or any, got \"max_class=near\"" },
	{ "service name given twice is refused",
	  "service = name=a prefix=/a/\nservice = name=a prefix=/b/\n", ":4: service: name: given twice" },
	{ "relative prefix is refused", "service = name=a prefix=a/\n", "prefix: expected" },
	{ "bad trusted proxy is refused", "trusted_proxies = 10.0.0.1/8\n",
	  ":3: trusted_proxies: host bits set" },
	{ "bad client prefix is refused", "token.bind_client_prefix = 24\n",
	  ":3: token.bind_client_prefix: expected" },
};

static void test_service_errors_name_file_and_line(void **state)
{
	(void)state;
	for (size_t r = 0; r < EC_ARRAY_LEN(svc_err_rows); r++) {
		struct rdr_conf c;
		char err[2048] = "", path[64];
		int rc = conf_from(svc_err_rows[r].line, &c, err, sizeof err, path, sizeof path);

		unlink(path);
		if (rc == 0 || !strstr(err, svc_err_rows[r].want))
			fail_msg("%s: rc %d, \"%s\"", svc_err_rows[r].name, rc, err);
	}
}

/* ---- inventory ------------------------------------------------------------------------ */

static void test_inventory_holders_follow_box_sets(void **state)
{
	struct rdr_inv *inv = rdr_inv_new(NULL, 4);
	struct rdr_box *rows = calloc(3, sizeof *rows);
	struct pol_box *boxes = calloc(3, sizeof *boxes);
	const char *p1[] = { "/a", "/b" }, *p2[] = { "/b", "/c", "/d", "/e" };
	size_t l1[] = { 2, 2 }, l2[] = { 2, 2, 2, 2 };
	struct rdr_table *t;
	uint32_t out[8];

	(void)state;
	assert_non_null(inv);
	strcpy(rows[0].id, "b0");
	strcpy(rows[1].id, "b1");
	strcpy(rows[2].id, "b2");
	t = table_new(&rows, &boxes, 3, 3);
	assert_non_null(t);
	assert_int_equal(rdr_inv_set_box(inv, "b1", 1, p1, l1, 2), 0);
	/* map holds 4 objects: /e does not fit */
	assert_int_equal(rdr_inv_set_box(inv, "b2", 1, p2, l2, 4), 1);
	assert_int_equal(rdr_inv_objects(inv), 4);
	assert_int_equal(rdr_inv_holders(inv, t, pol_hash_bytes("/a", 2), out, 8), 1);
	assert_int_equal(out[0], 1);
	assert_int_equal(rdr_inv_holders(inv, t, pol_hash_bytes("/b", 2), out, 8), 2);
	assert_int_equal(rdr_inv_holders(inv, t, pol_hash_bytes("/zz", 3), out, 8), 0);
	/* b1 now holds only /c: /a is gone, /b has one holder left */
	assert_int_equal(rdr_inv_set_box(inv, "b1", 2, p2 + 1, l2 + 1, 1), 0);
	assert_int_equal(rdr_inv_holders(inv, t, pol_hash_bytes("/a", 2), out, 8), 0);
	assert_int_equal(rdr_inv_holders(inv, t, pol_hash_bytes("/b", 2), out, 8), 1);
	assert_int_equal(out[0], 2);
	assert_int_equal(rdr_inv_holders(inv, t, pol_hash_bytes("/c", 2), out, 8), 2);
	assert_int_equal(rdr_inv_objects(inv), 3);
	/* a box that left the table is no holder */
	assert_int_equal(rdr_inv_set_box(inv, "gone", 1, p1, l1, 1), 0);
	assert_int_equal(rdr_inv_holders(inv, t, pol_hash_bytes("/a", 2), out, 8), 0);
	table_free(NULL, t);
	rdr_inv_free(inv);
}

static void test_inventory_survives_many_replacements(void **state)
{
	struct rdr_inv *inv = rdr_inv_new(NULL, 1000);
	char buf[200][16];
	const char *p[200];
	size_t l[200];

	(void)state;
	for (unsigned round = 0; round < 50; round++) {
		for (unsigned i = 0; i < 200; i++) {
			l[i] = (size_t)snprintf(buf[i], sizeof buf[i], "/o%u", (round * 37 + i) % 700);
			p[i] = buf[i];
		}
		rdr_inv_set_box(inv, round % 2 ? "x" : "y", round, p, l, 200);
		assert_true(rdr_inv_objects(inv) <= 400);
	}
	rdr_inv_set_box(inv, "x", 99, p, l, 0);
	rdr_inv_set_box(inv, "y", 99, p, l, 0);
	assert_int_equal(rdr_inv_objects(inv), 0);
	rdr_inv_free(inv);
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static struct sockaddr_storage addr_of(const char *ip)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof ss);
	if (strchr(ip, ':')) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
		a6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &a6->sin6_addr), 1);
	} else {
		struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
		a4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &a4->sin_addr), 1);
	}
	return ss;
}

/* A second request from an address reuses its location; a reload forgets every kept one
 * (the new topology answers), and IPv4 and IPv6 addresses never share an answer. */
static void test_locate_cache_reuses_until_reload(void **state)
{
	char topo[] = "/tmp/test_rdr_topo_XXXXXX", text[256], err[2048], path[64];
	struct rdr_conf c;
	struct rdr_locator loc;
	struct pol_client a, b;
	struct sockaddr_storage v4 = addr_of("10.1.2.3"), v6 = addr_of("a01:203::1");
	const char *ra, *rb;
	int fd = mkstemp(topo);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	write_text(topo, "10.1.0.0/16 pop-a eu\n0a01:0203::/32 pop-b us\n");
	snprintf(text, sizeof text, "topology.file = %s\n", topo);
	assert_int_equal(conf_from(text, &c, err, sizeof err, path, sizeof path), 0);
	unlink(path);
	assert_int_equal(rdr_locate_init(&loc, &c, err, sizeof err), 0);

	rdr_locate_client(&loc, (struct sockaddr *)&v4, &a, &ra);
	assert_string_equal(ra, "eu");
	assert_int_equal(loc.cache_hits, 0);
	rdr_locate_client(&loc, (struct sockaddr *)&v4, &b, &rb);
	assert_int_equal(loc.cache_hits, 1);
	assert_string_equal(rb, "eu");
	assert_true(a.pop_hash != 0 && a.pop_hash == b.pop_hash);
	/* same leading bytes, other family: its own entry */
	rdr_locate_client(&loc, (struct sockaddr *)&v6, &b, &rb);
	assert_int_equal(loc.cache_hits, 1);
	assert_string_equal(rb, "us");
	assert_true(b.pop_hash != a.pop_hash);

	write_text(topo, "10.1.0.0/16 pop-c asia\n");
	assert_int_equal(rdr_locate_reload(&loc, &c), 0);
	rdr_locate_client(&loc, (struct sockaddr *)&v4, &b, &rb);
	assert_int_equal(loc.cache_hits, 1);
	assert_string_equal(rb, "asia");
	assert_true(b.pop_hash != a.pop_hash);
	rdr_locate_client(&loc, (struct sockaddr *)&v6, &b, &rb);
	assert_string_equal(rb, "_");
	assert_int_equal(b.pop_hash, 0);

	rdr_locate_fini(&loc);
	rdr_conf_fini(&c);
	unlink(topo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_parse_fills_fields),
		cmocka_unit_test(test_odd_and_embedded_nul),
		cmocka_unit_test(test_parse_hb_matches_fields),
		cmocka_unit_test(test_parse_hb),
		cmocka_unit_test(test_parse_hb_embedded_nul),
		cmocka_unit_test(test_check_path),
		cmocka_unit_test(test_pop_bounds),
		cmocka_unit_test(test_pop_counts_only_fallbacks_replicas_could_fix),
		cmocka_unit_test(test_charge_counts_until_it_expires),
		cmocka_unit_test(test_heartbeat_after_reflect_time_clears_older_charges),
		cmocka_unit_test(test_charging_off_charges_nothing),
		cmocka_unit_test(test_charge_ring_wrap_drops_the_old_slot),
		cmocka_unit_test(test_charges_count_again_after_all_expired),
		cmocka_unit_test(test_sync_reuses_the_previous_arrays),
		cmocka_unit_test(test_sync_of_unchanged_boxes_keeps_the_table),
		cmocka_unit_test(test_services_longest_prefix_and_host),
		cmocka_unit_test(test_service_errors_name_file_and_line),
		cmocka_unit_test(test_inventory_holders_follow_box_sets),
		cmocka_unit_test(test_inventory_survives_many_replacements),
		cmocka_unit_test(test_locate_cache_reuses_until_reload),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
