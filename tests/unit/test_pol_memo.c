/* test_pol_memo: the memo answers exactly as a fresh pol_index_choose would (box, alt,
 * class, miss, holds) through random sequences of choices in which chosen boxes are
 * charged, time moves on and boxes go stale, loads fall (with a clear, as the contract
 * asks) and tables are rebuilt; and it does answer from memory when it can. Fixed seeds,
 * no clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pol_index.h"
#include "pol_memo.h"
#include "pol_score.h"
#include "pol_test.h"

#pragma GCC diagnostic ignored "-Woverride-init"

/* Boxes in few PoPs and ASNs, loaded so that charging moves them between buckets and
 * over capacity, with heartbeats of every age up to 6 s (the SLA allows 3 or 5 s). */
static void rnd_box(struct pol_box *b, int64_t now)
{
	memset(b, 0, sizeof *b);
	b->id_hash = rnd();
	b->pop_hash = rnd_below(5) == 0 ? 0 : 0x100 + rnd_below(6);
	b->asn = rnd_below(4) == 0 ? 0 : 64500 + rnd_below(4);
	b->has_loc = rnd_below(5) != 0;
	b->lat = rnd_in(40, 60);
	b->lon = rnd_in(-10, 30);
	b->uplink_bps = rnd_below(30) == 0 ? 0 : (100 + rnd_below(900)) * MiB;
	b->egress_bps = (uint64_t)((double)b->uplink_bps * rnd_in(0, 0.95));
	b->charged_bps = rnd_below(3) == 0 ? rnd_below(50) * MiB : 0;
	b->ttfb_ms = rnd_below(400);
	b->status = rnd_below(10) < 8 ? POL_BOX_UP : rnd_below(2) ? POL_BOX_DRAINING : POL_BOX_DOWN;
	b->hb_ms = now - (int64_t)rnd_below(6000);
	b->good_hbs = rnd_below(4);
}

/* A few networks, so answers repeat: PoP and ASN known, one of them, or neither; the
 * same network seen from different places. */
static void rnd_client(struct pol_client *c)
{
	memset(c, 0, sizeof *c);
	c->pop_hash = rnd_below(4) == 0 ? 0 : 0x100 + rnd_below(7);
	c->asn = rnd_below(4) == 0 ? 0 : 64500 + rnd_below(5);
	c->has_loc = rnd_below(4) != 0;
	c->lat = rnd_in(40, 60);
	c->lon = rnd_in(-10, 30);
}

static void rnd_sla(struct pol_sla *s)
{
	static const double radius[] = { 0, 300, 3000 };

	memset(s, 0, sizeof *s);
	s->max_state_age_ms = rnd_below(2) ? 3000 : 5000;
	s->max_ttfb_ms = rnd_below(2) ? 0 : 250;
	s->viewer_bps = (1 + rnd_below(20)) * MiB;
	s->max_util = rnd_below(4) == 0 ? 0.5 : 0.9;
	s->max_class = (enum pol_class)rnd_below(POL_CLASS_COUNT_);
	s->max_distance_km = radius[rnd_below(LEN(radius))];
	s->min_good_hbs = rnd_below(3);
}

static void expect_same(const struct pol_choice *a, int ra, const struct pol_choice *b,
                        int rb, unsigned step)
{
	if (ra != rb || a->box != b->box || a->alt != b->alt || a->miss != b->miss ||
	    (a->box >= 0 && (a->cls != b->cls || a->holds != b->holds)))
		fail_msg("step %u: memo box %d alt %d %s %s holds %d; walk box %d alt %d %s %s "
		         "holds %d", step, a->box, a->alt, pol_class_name(a->cls),
		         pol_miss_name(a->miss), a->holds, b->box, b->alt, pol_class_name(b->cls),
		         pol_miss_name(b->miss), b->holds);
}

/* n boxes, `steps` choices over 20 objects, 8 clients and 3 SLAs. Most chosen boxes are
 * charged; time moves 0-2 ms a step (boxes go stale as it does); every 1,000 steps some charges expire (loads fall:
 * clear); every 4,000 steps a new table. Returns the memo's stats. */
static struct pol_memo_stats run_sequence(size_t n, unsigned steps, uint64_t seed)
{
	struct pol_box *boxes = calloc(n, sizeof *boxes);
	struct pol_client clients[8];
	struct pol_sla slas[3];
	uint64_t objs[20];
	uint32_t holders[20][6];
	size_t n_holders[20];
	struct pol_memo *m = pol_memo_new(4096);
	struct pol_index *x = NULL;
	struct pol_memo_stats st;
	int64_t now = NOW;

	rng_state = seed;
	assert_non_null(boxes);
	assert_non_null(m);
	for (size_t i = 0; i < LEN(clients); i++)
		rnd_client(&clients[i]);
	for (size_t i = 0; i < LEN(slas); i++)
		rnd_sla(&slas[i]);
	for (size_t i = 0; i < LEN(objs); i++) {
		objs[i] = rnd();
		/* most objects held by nobody, some by up to 4 (remembered), some by 6 (not) */
		n_holders[i] = rnd_below(3) == 0 ? 1 + rnd_below(4) : rnd_below(8) == 0 ? 6 : 0;
		for (size_t h = 0; h < n_holders[i]; h++)
			holders[i][h] = (uint32_t)rnd_below((unsigned)n);
	}
	for (unsigned s = 0; s < steps; s++) {
		if (s % 4000 == 0) {
			for (size_t i = 0; i < n; i++)
				rnd_box(&boxes[i], now);
			pol_index_free(x);
			x = pol_index_new(boxes, n);
			assert_non_null(x);
			pol_memo_clear(m);
		} else if (s % 1000 == 0) {
			for (size_t i = 0; i < n; i++)
				if (rnd_below(2))
					boxes[i].charged_bps /= 2;
			pol_memo_clear(m);
		}
		size_t o = rnd_below(LEN(objs));
		struct pol_query q = { &clients[rnd_below(LEN(clients))], objs[o],
			               &slas[rnd_below(LEN(slas))], now, holders[o], n_holders[o] };
		struct pol_choice a, b;
		int ra, rb;

		memset(&a, 0x5a, sizeof a);
		memset(&b, 0xa5, sizeof b);
		ra = pol_memo_choose(m, x, &q, &a);
		rb = pol_index_choose(x, &q, &b);
		expect_same(&a, ra, &b, rb, s);
		if (ra == 0 && rnd_below(4) != 0)
			boxes[a.box].charged_bps += q.sla->viewer_bps;
		now += rnd_below(3);
	}
	pol_memo_stats(m, &st);
	pol_index_free(x);
	pol_memo_free(m);
	free(boxes);
	return st;
}

static void test_memo_answers_as_the_walk_on_small_tables(void **state)
{
	(void)state;
	for (uint64_t seed = 1; seed <= 20; seed++) {
		struct pol_memo_stats st = run_sequence(12 + seed * 3, 6000, seed);

		assert_int_equal(st.hits + st.misses, 6000);
	}
}

static void test_memo_answers_as_the_walk_on_tables_with_lanes(void **state)
{
	(void)state;
	for (uint64_t seed = 100; seed < 104; seed++) {
		struct pol_memo_stats st = run_sequence(3000, 8000, seed);

		/* the sequences are built to repeat: a memo that never answered would pass the
		 * equality above without testing anything */
		assert_true(st.hits > 500);
		assert_true(st.stored > 2000);
	}
}

#define BOX(i, ...)                                                                       \
	{ .id_hash = 0x1000 + (i), .pop_hash = 0xA1, .asn = 64500, .has_loc = 1, .lat = 51.5,  \
	  .lon = -0.1, .uplink_bps = 1000 * MiB, .egress_bps = 100 * MiB, .ttfb_ms = 20,     \
	  .status = POL_BOX_UP, .hb_ms = NOW, .good_hbs = 3, __VA_ARGS__ }

static const struct pol_client client_a = { 0xA1, 0, 64500, 1, 51.5, -0.1 };

/* A remembered answer is given again; charging the chosen box into the next bucket
 * makes the memo walk again and follow the walk to the other box; a box gone stale is
 * never answered from memory. */
static void test_memo_follows_charges_and_staleness(void **state)
{
	struct pol_box b[3] = { BOX(0), BOX(1), BOX(2, .pop_hash = 0xB2, .asn = 64999) };
	struct pol_sla sla = { 3000, 0, 10 * MiB, 0.9, POL_CLASS_ANY, 500, 1 };
	struct pol_index *x = pol_index_new(b, 3);
	struct pol_memo *m = pol_memo_new(64);
	struct pol_query q = { &client_a, 0x1234567, &sla, NOW, NULL, 0 };
	struct pol_memo_stats st;
	struct pol_choice ch, walk;
	int first;

	(void)state;
	assert_non_null(x);
	assert_non_null(m);
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	first = ch.box;
	assert_true(first == 0 || first == 1);
	assert_int_equal(ch.alt, 1 - first);
	assert_int_equal(ch.cls, POL_CLASS_POP);
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_int_equal(ch.box, first);
	pol_memo_stats(m, &st);
	assert_int_equal(st.hits, 1);
	assert_int_equal(st.misses, 1);
	assert_int_equal(st.stored, 1);

	/* 100M + 10M viewer is bucket 0 (under 250M); charged to 300M it is bucket 1 */
	b[first].charged_bps = 200 * MiB;
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_int_equal(pol_index_choose(x, &q, &walk), 0);
	assert_int_equal(ch.box, 1 - first);
	assert_int_equal(walk.box, ch.box);
	assert_int_equal(walk.alt, ch.alt);
	pol_memo_stats(m, &st);
	assert_int_equal(st.misses, 2);

	/* the chosen box's heartbeat ages past the SLA: walked, and it is not chosen */
	q.now_ms = NOW + 2000;
	b[1 - first].hb_ms = NOW - 1500;
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_int_equal(ch.box, first);
	assert_int_equal(ch.alt, 2); /* the other PoP, class any: not remembered */
	assert_int_equal(ch.cls, POL_CLASS_POP);
	pol_memo_stats(m, &st);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.stored, 2);
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	pol_memo_stats(m, &st);
	assert_int_equal(st.misses, 4);

	/* fresh again at the remembered walk's time: answered from memory; judged before
	 * that walk: walked */
	b[1 - first].hb_ms = NOW;
	q.now_ms = NOW;
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_int_equal(ch.box, 1 - first);
	pol_memo_stats(m, &st);
	assert_int_equal(st.hits, 2);
	q.now_ms = NOW - 1;
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	pol_memo_stats(m, &st);
	assert_int_equal(st.misses, 5);
	assert_int_equal(st.hits, 2);

	/* after a clear nothing is remembered */
	pol_memo_clear(m);
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	pol_memo_stats(m, &st);
	assert_int_equal(st.misses, 6);
	assert_int_equal(st.clears, 1);
	pol_memo_free(m);
	pol_index_free(x);
}

/* Same object and network, other holders or another SLA: not the remembered answer. */
static void test_memo_keys_on_holders_and_sla(void **state)
{
	struct pol_box b[4] = { BOX(0), BOX(1), BOX(2), BOX(3) };
	struct pol_sla sla = { 3000, 0, 10 * MiB, 0.9, POL_CLASS_ANY, 500, 1 }, sla2 = sla;
	struct pol_index *x = pol_index_new(b, 4);
	struct pol_memo *m = pol_memo_new(64);
	uint32_t h[2] = { 3, 2 };
	struct pol_query q = { &client_a, 0x77, &sla, NOW, h, 0 };
	struct pol_choice ch;
	struct pol_memo_stats st;

	(void)state;
	assert_non_null(x);
	assert_non_null(m);
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_int_equal(ch.holds, 0);
	q.n_holders = 1;
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_int_equal(ch.box, 3);
	assert_int_equal(ch.holds, 1);
	q.n_holders = 2;
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_true(ch.box == 3 || ch.box == 2);
	assert_true(ch.alt == 3 || ch.alt == 2);
	assert_int_equal(ch.holds, 1);
	q.sla = &sla2;
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	pol_memo_stats(m, &st);
	assert_int_equal(st.hits, 0);
	assert_int_equal(st.misses, 4);
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	pol_memo_stats(m, &st);
	assert_int_equal(st.hits, 1);
	assert_true(pol_memo_mem_bytes(m) > 64 * sizeof(uint64_t));
	pol_memo_free(m);
	pol_index_free(x);
}

/* Against the contract, a smaller index without a clear: the remembered boxes lie past
 * its end, and the memo walks the new index instead of reading beyond its table. */
static void test_memo_never_reads_past_a_smaller_table(void **state)
{
	struct pol_box b[4] = { BOX(0), BOX(1), BOX(2), BOX(3) };
	struct pol_sla sla = { 3000, 0, 10 * MiB, 0.9, POL_CLASS_ANY, 500, 1 };
	struct pol_index *x = pol_index_new(b, 4);
	struct pol_memo *m = pol_memo_new(16);
	struct pol_choice ch, walk;
	struct pol_query q = { &client_a, 0, &sla, NOW, NULL, 0 };
	uint64_t obj;

	(void)state;
	assert_non_null(x);
	assert_non_null(m);
	/* an object whose two best are boxes 2 and 3 */
	for (obj = 1;; obj++) {
		q.obj_hash = obj;
		assert_int_equal(pol_index_choose(x, &q, &walk), 0);
		if (walk.box >= 2 && walk.alt >= 2)
			break;
	}
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	pol_index_free(x);
	x = pol_index_new(b, 2);
	assert_non_null(x);
	assert_int_equal(pol_memo_choose(m, x, &q, &ch), 0);
	assert_int_equal(pol_index_choose(x, &q, &walk), 0);
	assert_int_equal(ch.box, walk.box);
	assert_int_equal(ch.alt, walk.alt);
	assert_true(ch.box < 2 && ch.alt < 2);
	pol_memo_free(m);
	pol_index_free(x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_memo_answers_as_the_walk_on_small_tables),
		cmocka_unit_test(test_memo_answers_as_the_walk_on_tables_with_lanes),
		cmocka_unit_test(test_memo_follows_charges_and_staleness),
		cmocka_unit_test(test_memo_keys_on_holders_and_sla),
		cmocka_unit_test(test_memo_never_reads_past_a_smaller_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
