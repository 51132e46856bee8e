/* test_pol_score: the box choice, eligibility, miss reasons, hashes and distance of the
 * pure policy core, through policy/pol_score.h only. Table-driven; fixed now_ms, fixed
 * object hashes, no clock. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pol_score.h"

/* Rows start from a healthy default and override a few fields; a later designated
 * initializer replacing an earlier one is exactly what we want here. */
#pragma GCC diagnostic ignored "-Woverride-init"

#define NOW 10000000
#define MiB 1000000ULL
#define POP_A 0xA1
#define POP_B 0xB2
#define AS_X 64500
#define AS_Y 64501
/* London, Paris (343 km apart), Tokyo */
#define LON_LAT 51.5074
#define LON_LON (-0.1278)
#define PAR_LAT 48.8566
#define PAR_LON 2.3522
#define TYO_LAT 35.6895
#define TYO_LON 139.6917

/* A healthy box: up, fresh, trusted, 10% loaded, unknown location. */
#define BOX(id, ...)                                                                   \
	{ .id_hash = 0x1000 + (id), .uplink_bps = 1000 * MiB, .egress_bps = 100 * MiB, \
	  .status = POL_BOX_UP, .hb_ms = NOW - 500, .good_hbs = 5, .ttfb_ms = 20,      \
	  __VA_ARGS__ }

#define SLA(...)                                                                       \
	{ .max_state_age_ms = 3000, .max_ttfb_ms = 0, .viewer_bps = 5 * MiB,           \
	  .max_util = 0.9, .max_class = POL_CLASS_ANY, .max_distance_km = 500,          \
	  .min_good_hbs = 3, __VA_ARGS__ }

/* The client sits in PoP A, AS X, in London. */
#define CLIENT(...)                                                                    \
	{ .pop_hash = POP_A, .asn = AS_X, .has_loc = 1, .lat = LON_LAT, .lon = LON_LON,  \
	  __VA_ARGS__ }

#define FAR .has_loc = 1, .lat = TYO_LAT, .lon = TYO_LON
#define NEAR .has_loc = 1, .lat = PAR_LAT, .lon = PAR_LON

#define ANY_ALT (-2) /* the row does not check alt */
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

struct choose_row {
	const char *name;
	struct pol_box boxes[6];
	size_t n;
	struct pol_client c;
	struct pol_sla sla;
	int box;
	int alt;
	enum pol_class cls;
	enum pol_miss miss;
};

static const struct choose_row choose_rows[] = {
	{ "same PoP beats same ASN",
	  { BOX(0, .asn = AS_X), BOX(1, .pop_hash = POP_A) }, 2, CLIENT(), SLA(),
	  1, 0, POL_CLASS_POP, POL_MISS_NONE },
	{ "same ASN beats nearer city",
	  { BOX(0, NEAR), BOX(1, .asn = AS_X, FAR) }, 2, CLIENT(), SLA(),
	  1, 0, POL_CLASS_ASN, POL_MISS_NONE },
	{ "nearer city beats anywhere",
	  { BOX(0, FAR), BOX(1, NEAR) }, 2, CLIENT(), SLA(),
	  1, 0, POL_CLASS_GEO, POL_MISS_NONE },
	{ "a box with no location is anywhere",
	  { BOX(0) }, 1, CLIENT(), SLA(), 0, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "unknown PoP on both sides is not the same PoP",
	  { BOX(0) }, 1, CLIENT(.pop_hash = 0, .asn = 0), SLA(),
	  0, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "unknown ASN on both sides is not the same ASN",
	  { BOX(0, .pop_hash = POP_B) }, 1, CLIENT(.asn = 0), SLA(.max_class = POL_CLASS_ASN),
	  -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX_IN_REACH },
	{ "client without location never gets geo",
	  { BOX(0, NEAR) }, 1, CLIENT(.has_loc = 0), SLA(.max_class = POL_CLASS_GEO),
	  -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX_IN_REACH },
	{ "geo radius zero disables geo",
	  { BOX(0, NEAR) }, 1, CLIENT(), SLA(.max_class = POL_CLASS_GEO, .max_distance_km = 0),
	  -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX_IN_REACH },
	{ "box just outside the radius is not geo",
	  { BOX(0, NEAR) }, 1, CLIENT(), SLA(.max_class = POL_CLASS_GEO, .max_distance_km = 340),
	  -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX_IN_REACH },
	{ "class limit pop leaves an ASN box out of reach",
	  { BOX(0, .asn = AS_X) }, 1, CLIENT(), SLA(.max_class = POL_CLASS_POP),
	  -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX_IN_REACH },
	{ "class limit geo takes the geo box, never the far one",
	  { BOX(0, FAR), BOX(1, NEAR) }, 2, CLIENT(), SLA(.max_class = POL_CLASS_GEO),
	  1, -1, POL_CLASS_GEO, POL_MISS_NONE },
	{ "no box in reach even when the in-reach box is down",
	  { BOX(0, .pop_hash = POP_A, .status = POL_BOX_DOWN), BOX(1) }, 2, CLIENT(),
	  SLA(.max_class = POL_CLASS_POP), -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX_IN_REACH },
	{ "stale heartbeat is a miss with state_stale",
	  { BOX(0, .hb_ms = NOW - 3001) }, 1, CLIENT(), SLA(),
	  -1, -1, POL_CLASS_ANY, POL_MISS_STATE_STALE },
	{ "heartbeat exactly at max age is fresh",
	  { BOX(0, .hb_ms = NOW - 3000) }, 1, CLIENT(), SLA(), 0, -1, POL_CLASS_ANY,
	  POL_MISS_NONE },
	{ "heartbeat from the future is fresh",
	  { BOX(0, .hb_ms = NOW + 50) }, 1, CLIENT(), SLA(), 0, -1, POL_CLASS_ANY,
	  POL_MISS_NONE },
	{ "stale same-PoP box loses to a fresh box anywhere",
	  { BOX(0, .pop_hash = POP_A, .hb_ms = 0), BOX(1) }, 2, CLIENT(), SLA(),
	  1, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "stale in reach and fresh out of reach is state_stale",
	  { BOX(0, .pop_hash = POP_A, .hb_ms = 0), BOX(1) }, 2, CLIENT(),
	  SLA(.max_class = POL_CLASS_POP), -1, -1, POL_CLASS_ANY, POL_MISS_STATE_STALE },
	{ "draining box is never chosen",
	  { BOX(0, .pop_hash = POP_A, .status = POL_BOX_DRAINING), BOX(1) }, 2, CLIENT(),
	  SLA(), 1, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "down box is never chosen",
	  { BOX(0, .pop_hash = POP_A, .status = POL_BOX_DOWN), BOX(1) }, 2, CLIENT(),
	  SLA(), 1, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "only draining and down boxes is no_box",
	  { BOX(0, .status = POL_BOX_DRAINING), BOX(1, .status = POL_BOX_DOWN) }, 2,
	  CLIENT(), SLA(), -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX },
	{ "box below min_good_hbs is not chosen",
	  { BOX(0, .pop_hash = POP_A, .good_hbs = 2), BOX(1) }, 2, CLIENT(), SLA(),
	  1, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "box at min_good_hbs is chosen",
	  { BOX(0, .good_hbs = 3) }, 1, CLIENT(), SLA(), 0, -1, POL_CLASS_ANY,
	  POL_MISS_NONE },
	{ "only boxes below min_good_hbs is no_box",
	  { BOX(0, .good_hbs = 0) }, 1, CLIENT(), SLA(), -1, -1, POL_CLASS_ANY,
	  POL_MISS_NO_BOX },
	{ "over-capacity box is skipped",
	  { BOX(0, .pop_hash = POP_A, .egress_bps = 900 * MiB), BOX(1) }, 2, CLIENT(),
	  SLA(), 1, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "charged bandwidth counts toward capacity",
	  { BOX(0, .egress_bps = 500 * MiB, .charged_bps = 396 * MiB) }, 1, CLIENT(), SLA(),
	  -1, -1, POL_CLASS_ANY, POL_MISS_ALL_OVER_CAPACITY },
	{ "load exactly at max_util is within capacity",
	  { BOX(0, .egress_bps = 895 * MiB) }, 1, CLIENT(), SLA(), 0, -1, POL_CLASS_ANY,
	  POL_MISS_NONE },
	{ "all over capacity is all_over_capacity",
	  { BOX(0, .egress_bps = 900 * MiB), BOX(1, .egress_bps = 990 * MiB) }, 2,
	  CLIENT(), SLA(), -1, -1, POL_CLASS_ANY, POL_MISS_ALL_OVER_CAPACITY },
	{ "box with unknown uplink is over capacity",
	  { BOX(0, .uplink_bps = 0, .egress_bps = 0) }, 1, CLIENT(), SLA(.viewer_bps = 0),
	  -1, -1, POL_CLASS_ANY, POL_MISS_ALL_OVER_CAPACITY },
	{ "over capacity outranks stale when boxes in reach fail both ways",
	  { BOX(0, .hb_ms = 0), BOX(1, .egress_bps = 990 * MiB) }, 2, CLIENT(), SLA(),
	  -1, -1, POL_CLASS_ANY, POL_MISS_ALL_OVER_CAPACITY },
	{ "ttfb over SLA is sla_ttfb",
	  { BOX(0, .ttfb_ms = 300) }, 1, CLIENT(), SLA(.max_ttfb_ms = 200),
	  -1, -1, POL_CLASS_ANY, POL_MISS_SLA_TTFB },
	{ "slow box is skipped for a fast one",
	  { BOX(0, .pop_hash = POP_A, .ttfb_ms = 300), BOX(1, .ttfb_ms = 50) }, 2, CLIENT(),
	  SLA(.max_ttfb_ms = 200), 1, -1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "ttfb limit zero means no limit",
	  { BOX(0, .ttfb_ms = 60000) }, 1, CLIENT(), SLA(), 0, -1, POL_CLASS_ANY,
	  POL_MISS_NONE },
	{ "capacity outranks ttfb as the reason",
	  { BOX(0, .ttfb_ms = 300), BOX(1, .egress_bps = 990 * MiB) }, 2, CLIENT(),
	  SLA(.max_ttfb_ms = 200), -1, -1, POL_CLASS_ANY, POL_MISS_ALL_OVER_CAPACITY },
	{ "ttfb outranks stale as the reason",
	  { BOX(0, .ttfb_ms = 300), BOX(1, .hb_ms = 0) }, 2, CLIENT(),
	  SLA(.max_ttfb_ms = 200), -1, -1, POL_CLASS_ANY, POL_MISS_SLA_TTFB },
	{ "empty table is no_box",
	  { BOX(0) }, 0, CLIENT(), SLA(), -1, -1, POL_CLASS_ANY, POL_MISS_NO_BOX },
	{ "class beats load: a busy same-PoP box wins over an idle box anywhere",
	  { BOX(0, .egress_bps = 0), BOX(1, .pop_hash = POP_A, .egress_bps = 800 * MiB) },
	  2, CLIENT(), SLA(), 1, 0, POL_CLASS_POP, POL_MISS_NONE },
	{ "lower load bucket wins within a class (idle first)",
	  { BOX(0, .egress_bps = 10 * MiB), BOX(1, .egress_bps = 600 * MiB) }, 2, CLIENT(),
	  SLA(), 0, 1, POL_CLASS_ANY, POL_MISS_NONE },
	{ "lower load bucket wins within a class (idle second)",
	  { BOX(0, .egress_bps = 600 * MiB), BOX(1, .egress_bps = 10 * MiB) }, 2, CLIENT(),
	  SLA(), 1, 0, POL_CLASS_ANY, POL_MISS_NONE },
	{ "alt is the next best: same ASN after same PoP",
	  { BOX(0), BOX(1, .asn = AS_X), BOX(2, .pop_hash = POP_A) }, 3, CLIENT(), SLA(),
	  2, 1, POL_CLASS_POP, POL_MISS_NONE },
	{ "alt may come from a worse class in reach",
	  { BOX(0, .pop_hash = POP_A), BOX(1) }, 2, CLIENT(), SLA(), 0, 1, POL_CLASS_POP,
	  POL_MISS_NONE },
	{ "alt is never out of reach",
	  { BOX(0, .pop_hash = POP_A), BOX(1) }, 2, CLIENT(), SLA(.max_class = POL_CLASS_POP),
	  0, -1, POL_CLASS_POP, POL_MISS_NONE },
	{ "alt skips ineligible boxes",
	  { BOX(0, .pop_hash = POP_A), BOX(1, .asn = AS_X, .hb_ms = 0), BOX(2) }, 3, CLIENT(),
	  SLA(), 0, 2, POL_CLASS_POP, POL_MISS_NONE },
	{ "out-of-range max_class is treated as any",
	  { BOX(0) }, 1, CLIENT(), SLA(.max_class = (enum pol_class)17), 0, -1,
	  POL_CLASS_ANY, POL_MISS_NONE },
};

static void test_choose_row(void **state)
{
	const struct choose_row *r = *state;
	struct pol_choice ch;
	int rc;

	memset(&ch, 0x5a, sizeof ch);
	rc = pol_score_choose(r->boxes, r->n, &r->c, 0x0123456789abcdefULL, &r->sla, NOW, &ch);
	assert_int_equal(ch.box, r->box);
	assert_int_equal(rc, r->box >= 0 ? 0 : 1);
	assert_string_equal(pol_miss_name(ch.miss), pol_miss_name(r->miss));
	if (r->box >= 0)
		assert_string_equal(pol_class_name(ch.cls), pol_class_name(r->cls));
	if (r->alt != ANY_ALT)
		assert_int_equal(ch.alt, r->alt);
}

/* --- pol_sla_eligible ------------------------------------------------------------- */

struct sla_row {
	const char *name;
	struct pol_box box;
	struct pol_sla sla;
	int ok;
	enum pol_miss why;
};

static const struct sla_row sla_rows[] = {
	{ "healthy box is eligible", BOX(0), SLA(), 1, POL_MISS_NONE },
	{ "draining box is not eligible (no_box)", BOX(0, .status = POL_BOX_DRAINING), SLA(),
	  0, POL_MISS_NO_BOX },
	{ "down box is not eligible (no_box)", BOX(0, .status = POL_BOX_DOWN), SLA(), 0,
	  POL_MISS_NO_BOX },
	{ "too few good heartbeats is not eligible (no_box)", BOX(0, .good_hbs = 1), SLA(), 0,
	  POL_MISS_NO_BOX },
	{ "stale box is state_stale", BOX(0, .hb_ms = NOW - 10000), SLA(), 0,
	  POL_MISS_STATE_STALE },
	{ "negative max_state_age makes every box stale", BOX(0, .hb_ms = NOW),
	  SLA(.max_state_age_ms = -1), 0, POL_MISS_STATE_STALE },
	{ "heartbeat at INT64_MIN does not overflow, is stale", BOX(0, .hb_ms = INT64_MIN),
	  SLA(), 0, POL_MISS_STATE_STALE },
	{ "stale is reported before capacity", BOX(0, .hb_ms = 0, .egress_bps = 2000 * MiB),
	  SLA(), 0, POL_MISS_STATE_STALE },
	{ "viewer bitrate needs headroom", BOX(0, .egress_bps = 896 * MiB), SLA(), 0,
	  POL_MISS_ALL_OVER_CAPACITY },
	{ "huge rates do not overflow", BOX(0, .egress_bps = UINT64_MAX,
	  .charged_bps = UINT64_MAX, .uplink_bps = UINT64_MAX), SLA(), 0,
	  POL_MISS_ALL_OVER_CAPACITY },
	{ "NaN max_util is over capacity", BOX(0), SLA(.max_util = NAN), 0,
	  POL_MISS_ALL_OVER_CAPACITY },
	{ "capacity is reported before ttfb", BOX(0, .egress_bps = 2000 * MiB, .ttfb_ms = 999),
	  SLA(.max_ttfb_ms = 100), 0, POL_MISS_ALL_OVER_CAPACITY },
	{ "ttfb at the limit is eligible", BOX(0, .ttfb_ms = 100), SLA(.max_ttfb_ms = 100), 1,
	  POL_MISS_NONE },
	{ "ttfb over the limit is sla_ttfb", BOX(0, .ttfb_ms = 101), SLA(.max_ttfb_ms = 100),
	  0, POL_MISS_SLA_TTFB },
};

static void test_sla_row(void **state)
{
	const struct sla_row *r = *state;
	enum pol_miss why = POL_MISS_NONE;

	assert_int_equal(pol_sla_eligible(&r->box, &r->sla, NOW, &why), r->ok);
	assert_string_equal(pol_miss_name(why), pol_miss_name(r->why));
	/* why may be NULL */
	assert_int_equal(pol_sla_eligible(&r->box, &r->sla, NOW, NULL), r->ok);
}

/* --- names --------------------------------------------------------------------------- */

static void test_miss_names_are_stable(void **state)
{
	static const char *const want[POL_MISS_COUNT_] = {
		"none", "no_box", "no_box_in_reach", "all_over_capacity", "state_stale",
		"sla_ttfb", "not_cached", "redis_down",
	};

	(void)state;
	assert_int_equal(POL_MISS_COUNT_, 8);
	for (int i = 0; i < POL_MISS_COUNT_; i++)
		assert_string_equal(pol_miss_name((enum pol_miss)i), want[i]);
	assert_string_equal(pol_miss_name((enum pol_miss)99), "unknown");
}

static void test_class_names_round_trip(void **state)
{
	static const char *const want[POL_CLASS_COUNT_] = { "pop", "asn", "geo", "any" };
	enum pol_class c = POL_CLASS_ANY;

	(void)state;
	for (int i = 0; i < POL_CLASS_COUNT_; i++) {
		assert_string_equal(pol_class_name((enum pol_class)i), want[i]);
		assert_int_equal(pol_class_parse(want[i], &c), 0);
		assert_int_equal(c, i);
	}
	assert_string_equal(pol_class_name((enum pol_class)9), "unknown");
	c = POL_CLASS_GEO;
	assert_int_equal(pol_class_parse("POP", &c), -1);
	assert_int_equal(pol_class_parse("pop ", &c), -1);
	assert_int_equal(pol_class_parse("", &c), -1);
	assert_int_equal(pol_class_parse(NULL, &c), -1);
	assert_int_equal(c, POL_CLASS_GEO); /* untouched on error */
}

static void test_class_of_box(void **state)
{
	struct pol_client c = CLIENT();
	struct pol_box pop = BOX(0, .pop_hash = POP_A, .asn = AS_Y);
	struct pol_box asn = BOX(1, .pop_hash = POP_B, .asn = AS_X, FAR);
	struct pol_box geo = BOX(2, NEAR);
	struct pol_box any = BOX(3, FAR);

	(void)state;
	assert_int_equal(pol_score_class(&pop, &c, 500), POL_CLASS_POP);
	assert_int_equal(pol_score_class(&asn, &c, 500), POL_CLASS_ASN);
	assert_int_equal(pol_score_class(&geo, &c, 500), POL_CLASS_GEO);
	assert_int_equal(pol_score_class(&geo, &c, 100), POL_CLASS_ANY);
	assert_int_equal(pol_score_class(&any, &c, 500), POL_CLASS_ANY);
}

/* --- hashes and distance ----------------------------------------------------------- */

static void test_hash_bytes_matches_xxh64_vectors(void **state)
{
	static const struct { const char *s; uint64_t h; } v[] = {
		{ "", 0xEF46DB3751D8E999ULL },
		{ "a", 0xD24EC4F1A98C6E5BULL },
		{ "abc", 0x44BC2CF5AD770999ULL },
		{ "Nobody inspects the spammish repetition", 0xFBCEA83C8A378BF1ULL },
	};

	(void)state;
	for (size_t i = 0; i < LEN(v); i++)
		assert_true(pol_hash_bytes(v[i].s, strlen(v[i].s)) == v[i].h);
}

static void test_haversine_london_paris_is_343_km(void **state)
{
	double d = pol_haversine_km(LON_LAT, LON_LON, PAR_LAT, PAR_LON);

	(void)state;
	assert_true(fabs(d - 343.0) < 2.0);
	assert_true(fabs(pol_haversine_km(PAR_LAT, PAR_LON, LON_LAT, LON_LON) - d) < 1e-9);
	assert_true(pol_haversine_km(10, 20, 10, 20) == 0.0);
	/* antipodes: half the circumference, no NaN from rounding */
	d = pol_haversine_km(0, 0, 0, 180);
	assert_true(fabs(d - 20015.1) < 1.0);
	assert_true(isnan(pol_haversine_km(NAN, 0, 0, 0)));
}

/* --- rendezvous ----------------------------------------------------------------------- */

#define NBOX 10
#define NOBJ 10000

static void fill_equal_boxes(struct pol_box *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct pol_box one = BOX(0);

		one.id_hash = pol_hash_bytes(&i, sizeof i) ^ 0x5bd1e995; /* box ids hash */
		b[i] = one;
	}
}

static int choose_obj(const struct pol_box *b, size_t n, uint64_t obj, struct pol_choice *ch)
{
	struct pol_client c = CLIENT();
	struct pol_sla sla = SLA();

	return pol_score_choose(b, n, &c, obj, &sla, NOW, ch);
}

static uint64_t obj_hash(unsigned i)
{
	char name[64];
	int len = snprintf(name, sizeof name, "/v/video%u/seg%u.ts", i / 100, i % 100);

	return pol_hash_bytes(name, (size_t)len);
}

static void test_same_object_same_box_in_any_table_order(void **state)
{
	struct pol_box b[NBOX], rev[NBOX];
	struct pol_choice ch, ch2;

	(void)state;
	fill_equal_boxes(b, NBOX);
	for (size_t i = 0; i < NBOX; i++)
		rev[i] = b[NBOX - 1 - i];
	for (unsigned o = 0; o < 500; o++) {
		assert_int_equal(choose_obj(b, NBOX, obj_hash(o), &ch), 0);
		assert_int_equal(choose_obj(b, NBOX, obj_hash(o), &ch2), 0);
		assert_int_equal(ch.box, ch2.box);
		assert_int_equal(choose_obj(rev, NBOX, obj_hash(o), &ch2), 0);
		assert_true(b[ch.box].id_hash == rev[ch2.box].id_hash);
	}
}

/* Chi-square with 9 degrees of freedom: 27.9 is the 0.1% tail, so an even spread
 * passes with a wide margin and a skewed hash fails. */
static void test_objects_spread_evenly_over_boxes(void **state)
{
	struct pol_box b[NBOX];
	struct pol_choice ch;
	unsigned count[NBOX] = { 0 };
	double chi2 = 0, expect = (double)NOBJ / NBOX;

	(void)state;
	fill_equal_boxes(b, NBOX);
	for (unsigned o = 0; o < NOBJ; o++) {
		assert_int_equal(choose_obj(b, NBOX, obj_hash(o), &ch), 0);
		count[ch.box]++;
	}
	for (int i = 0; i < NBOX; i++)
		chi2 += (count[i] - expect) * (count[i] - expect) / expect;
	print_message("chi-square over %d boxes: %.2f\n", NBOX, chi2);
	assert_true(chi2 < 27.9);
}

/* Also: the alt of an object is where it goes when its box leaves. */
static void test_removing_a_box_moves_only_its_objects(void **state)
{
	struct pol_box b[NBOX], fewer[NBOX - 1];
	const size_t gone = 3;
	unsigned moved = 0;

	(void)state;
	fill_equal_boxes(b, NBOX);
	for (size_t i = 0, j = 0; i < NBOX; i++) {
		if (i != gone)
			fewer[j++] = b[i];
	}
	for (unsigned o = 0; o < NOBJ; o++) {
		struct pol_choice before, after;

		assert_int_equal(choose_obj(b, NBOX, obj_hash(o), &before), 0);
		assert_int_equal(choose_obj(fewer, NBOX - 1, obj_hash(o), &after), 0);
		if ((size_t)before.box != gone) {
			assert_true(b[before.box].id_hash == fewer[after.box].id_hash);
		} else {
			moved++;
			assert_true(b[before.alt].id_hash == fewer[after.box].id_hash);
		}
	}
	/* about a tenth of the objects were on the removed box */
	assert_true(moved > NOBJ / NBOX / 2 && moved < NOBJ / NBOX * 2);
}

static void test_same_bucket_leaves_choice_to_rendezvous(void **state)
{
	/* 10.5% and 12.5% load: both in the first quarter */
	struct pol_box b[2] = { BOX(0, .egress_bps = 100 * MiB), BOX(1, .egress_bps = 120 * MiB) };
	unsigned on[2] = { 0, 0 };

	(void)state;
	for (unsigned o = 0; o < 1000; o++) {
		struct pol_choice ch;
		uint64_t h = obj_hash(o);
		int want = pol_rendezvous(h, b[1].id_hash) > pol_rendezvous(h, b[0].id_hash);

		assert_int_equal(choose_obj(b, 2, h, &ch), 0);
		assert_int_equal(ch.box, want);
		on[ch.box]++;
	}
	assert_true(on[0] > 400 && on[1] > 400);
}

static void test_rendezvous_depends_on_both_inputs(void **state)
{
	(void)state;
	assert_true(pol_rendezvous(1, 2) != pol_rendezvous(2, 1));
	assert_true(pol_rendezvous(1, 2) != pol_rendezvous(1, 3));
	assert_true(pol_rendezvous(0, 0) != 0);
	assert_true(pol_rendezvous(42, 7) == pol_rendezvous(42, 7));
}

int main(void)
{
	struct CMUnitTest tests[LEN(choose_rows) + LEN(sla_rows) + 10];
	size_t n = 0;

	for (size_t i = 0; i < LEN(choose_rows); i++)
		tests[n++] = (struct CMUnitTest){ choose_rows[i].name, test_choose_row, NULL,
			                          NULL, (void *)&choose_rows[i] };
	for (size_t i = 0; i < LEN(sla_rows); i++)
		tests[n++] = (struct CMUnitTest){ sla_rows[i].name, test_sla_row, NULL, NULL,
			                          (void *)&sla_rows[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_miss_names_are_stable);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_class_names_round_trip);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_class_of_box);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_hash_bytes_matches_xxh64_vectors);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_haversine_london_paris_is_343_km);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_same_object_same_box_in_any_table_order);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_objects_spread_evenly_over_boxes);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_removing_a_box_moves_only_its_objects);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_same_bucket_leaves_choice_to_rendezvous);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_rendezvous_depends_on_both_inputs);
	return _cmocka_run_group_tests("pol_score", tests, n, NULL, NULL);
}
