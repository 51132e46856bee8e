/* test_sim_cache: basic behaviour of the simulator's pull-through caches (LRU, LFU,
 * S3-FIFO), of the operations echos' boxes use on them (remove, adopt, capacity
 * changes) and of its map. The simulator is not part of the library unit tests link, so
 * its one self-contained source file is compiled in here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "../../policy/sim_cache.c"

/* Runs a sequence of object ids (size 1 each) through one box of capacity cap, returns
 * a bitmask of which ids 0..31 are cached at the end. */
static uint32_t run_seq(enum sim_evict ev, uint64_t cap, const int *seq, size_t n)
{
	struct sim_cache *c = sim_cache_new(ev, 1, &cap);
	uint32_t mask = 0;

	assert_non_null(c);
	for (size_t i = 0; i < n; i++)
		if (!sim_cache_lookup(c, 0, (uint32_t)seq[i]))
			assert_int_equal(sim_cache_insert(c, 0, (uint32_t)seq[i], 1), 0);
	assert_true(sim_cache_used(c, 0) <= cap);
	for (uint32_t o = 0; o < 32; o++) {
		/* lookup changes state; read membership through the map instead */
		uint32_t *v = sim_map_get(&c->map, o);

		if (v && c->e[*v].q != Q_GHOST)
			mask |= 1u << o;
	}
	sim_cache_free(c);
	return mask;
}

struct cache_row {
	const char *name;
	enum sim_evict ev;
	uint64_t cap;
	int seq[24];
	size_t n;
	uint32_t expect; /* bitmask of ids that must be cached */
	uint32_t absent; /* bitmask of ids that must not be */
};

static const struct cache_row cache_rows[] = {
	{ "lru evicts the least recently used", SIM_EVICT_LRU, 3,
	  { 1, 2, 3, 1, 4 }, 5, 1u << 1 | 1u << 3 | 1u << 4, 1u << 2 },
	{ "lru keeps everything that fits", SIM_EVICT_LRU, 3, { 1, 2, 3, 3, 2 }, 5,
	  1u << 1 | 1u << 2 | 1u << 3, 0 },
	{ "lfu evicts the least frequently used", SIM_EVICT_LFU, 3,
	  { 1, 1, 2, 2, 3, 4 }, 6, 1u << 1 | 1u << 2 | 1u << 4, 1u << 3 },
	{ "lfu breaks frequency ties by age", SIM_EVICT_LFU, 3,
	  { 1, 2, 3, 3, 2, 4 }, 6, 1u << 2 | 1u << 3 | 1u << 4, 1u << 1 },
	/* cap 10: small FIFO holds 1; a scan of one-hit wonders passes through it and
	 * leaves the twice-seen objects in main */
	{ "s3fifo keeps reused objects through a scan", SIM_EVICT_S3FIFO, 10,
	  { 1, 1, 2, 2, 3, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21 }, 18,
	  1u << 1 | 1u << 2 | 1u << 3 | 1u << 21, 0 },
	{ "lru loses reused objects to a scan", SIM_EVICT_LRU, 10,
	  { 1, 1, 2, 2, 3, 3, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21 }, 18,
	  0x3ffc00u & ~(1u << 10 | 1u << 11), 1u << 1 | 1u << 2 | 1u << 3 },
	{ "s3fifo ghost hit goes straight to main", SIM_EVICT_S3FIFO, 10,
	  { 5, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 5, 20, 21, 22 }, 15,
	  1u << 5 | 1u << 22, 0 },
};

static void test_eviction(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cache_rows / sizeof cache_rows[0]; i++) {
		const struct cache_row *r = &cache_rows[i];
		uint32_t got = run_seq(r->ev, r->cap, r->seq, r->n);

		if ((got & r->expect) != r->expect || (got & r->absent)) {
			print_error("%s: cached 0x%x, want at least 0x%x\n", r->name, got, r->expect);
			fail();
		}
	}
}

static void test_too_big_is_not_kept(void **state)
{
	uint64_t cap = 100;

	(void)state;
	for (int ev = SIM_EVICT_LRU; ev <= SIM_EVICT_S3FIFO; ev++) {
		struct sim_cache *c = sim_cache_new((enum sim_evict)ev, 1, &cap);

		assert_int_equal(sim_cache_insert(c, 0, 1, 101), 0);
		assert_false(sim_cache_lookup(c, 0, 1));
		assert_int_equal(sim_cache_used(c, 0), 0);
		sim_cache_free(c);
	}
}

/* Many objects of mixed sizes: capacity holds at every step for every policy. */
static void test_capacity_holds(void **state)
{
	uint64_t caps[3] = { 1000, 5000, 20000 };

	(void)state;
	for (int ev = SIM_EVICT_LRU; ev <= SIM_EVICT_S3FIFO; ev++) {
		struct sim_cache *c = sim_cache_new((enum sim_evict)ev, 3, caps);
		uint64_t x = 12345;

		for (int i = 0; i < 200000; i++) {
			uint32_t box = (uint32_t)(i % 3), obj;

			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			obj = (uint32_t)((x >> 33) % 3000);
			if (!sim_cache_lookup(c, box, obj))
				assert_int_equal(sim_cache_insert(c, box, obj, 1 + obj % 400), 0);
			assert_true(sim_cache_used(c, box) <= caps[box]);
		}
		sim_cache_free(c);
	}
	sim_cache_free(NULL);
}

/* Bytes of the entries of box that are not ghosts, read from the cache's own arrays. */
static uint64_t resident_bytes(const struct sim_cache *c, uint32_t box)
{
	uint64_t sum = 0;

	for (size_t i = 0; i <= c->map.mask; i++) {
		const struct centry *e;

		if (!c->map.used[i] || (uint32_t)(c->map.keys[i] >> 32) != box)
			continue;
		e = &c->e[c->map.vals[i]];
		if (e->q != Q_GHOST)
			sum += e->size;
	}
	return sum;
}

/* Remove, adopt and capacity changes mixed with lookups and inserts: removed objects are
 * gone, adopted ones present, used never exceeds the capacity and always equals the
 * bytes of the resident entries. */
static void test_remove_adopt_and_capacity_changes(void **state)
{
	uint64_t caps[2] = { 4000, 9000 };

	(void)state;
	for (int ev = SIM_EVICT_LRU; ev <= SIM_EVICT_S3FIFO; ev++) {
		struct sim_cache *c = sim_cache_new((enum sim_evict)ev, 2, caps);
		uint64_t x = 99, cap[2] = { caps[0], caps[1] };

		assert_non_null(c);
		for (int i = 0; i < 100000; i++) {
			uint32_t box = (uint32_t)(i % 2), obj, op;
			uint64_t size;

			x = x * 6364136223846793005ULL + 1442695040888963407ULL;
			obj = (uint32_t)((x >> 33) % 500);
			op = (uint32_t)(x >> 20) % 16;
			size = 1 + obj % 300;
			if (op == 0) {
				sim_cache_remove(c, box, obj);
				assert_false(sim_cache_contains(c, box, obj));
			} else if (op == 1) {
				cap[box] = (x >> 40) % (caps[box] + 1);
				sim_cache_set_cap(c, box, cap[box]);
				assert_int_equal(sim_cache_cap(c, box), cap[box]);
			} else if (op == 2) {
				assert_int_equal(sim_cache_adopt(c, box, obj, size), 0);
				assert_true(size > cap[box] || sim_cache_contains(c, box, obj));
			} else if (!sim_cache_lookup(c, box, obj)) {
				assert_int_equal(sim_cache_insert(c, box, obj, size), 0);
			}
			assert_true(sim_cache_used(c, box) <= cap[box]);
			if (i % 997 == 0)
				assert_int_equal(sim_cache_used(c, box), resident_bytes(c, box));
		}
		sim_cache_set_cap(c, 0, 0);
		assert_int_equal(sim_cache_used(c, 0), 0);
		assert_int_equal(resident_bytes(c, 0), 0);
		sim_cache_free(c);
	}
}

/* An object a placement dropped (adopted) outlives one-hit wonders in S3-FIFO, while a
 * plain miss of the same size is the first to go. */
static void test_adopted_object_outlives_a_scan(void **state)
{
	uint64_t cap = 100;
	struct sim_cache *c = sim_cache_new(SIM_EVICT_S3FIFO, 1, &cap);

	(void)state;
	assert_int_equal(sim_cache_insert(c, 0, 1, 10), 0);
	assert_int_equal(sim_cache_adopt(c, 0, 2, 10), 0);
	for (uint32_t o = 10; o < 30; o++)
		assert_int_equal(sim_cache_insert(c, 0, o, 10), 0);
	assert_false(sim_cache_contains(c, 0, 1));
	assert_true(sim_cache_contains(c, 0, 2));
	assert_true(sim_cache_remove(c, 0, 2));
	assert_false(sim_cache_remove(c, 0, 2));
	sim_cache_free(c);
}

static void test_map_put_get_delete(void **state)
{
	struct sim_map m;

	(void)state;
	assert_int_equal(sim_map_init(&m, 4), 0);
	for (uint32_t i = 0; i < 50000; i++)
		assert_int_equal(sim_map_put(&m, (uint64_t)i * 7919, i), 0);
	for (uint32_t i = 0; i < 50000; i += 2)
		sim_map_del(&m, (uint64_t)i * 7919);
	for (uint32_t i = 0; i < 50000; i++) {
		uint32_t *v = sim_map_get(&m, (uint64_t)i * 7919);

		if (i % 2)
			assert_true(v && *v == i);
		else
			assert_null(v);
	}
	assert_int_equal(m.n, 25000);
	sim_map_fini(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_eviction),
		cmocka_unit_test(test_too_big_is_not_kept),
		cmocka_unit_test(test_capacity_holds),
		cmocka_unit_test(test_remove_adopt_and_capacity_changes),
		cmocka_unit_test(test_adopted_object_outlives_a_scan),
		cmocka_unit_test(test_map_put_get_delete),
	};
	return cmocka_run_group_tests_name("sim_cache", tests, NULL, NULL);
}
