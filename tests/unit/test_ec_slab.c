/* test_ec_slab: blocks of every size are aligned, usable and distinct; released blocks
 * come back from their class's list, up to the cap; calloc zeroes reused blocks; realloc
 * keeps the contents across classes; a random workload never hands out overlapping
 * blocks; a double release aborts, and under AddressSanitizer a use after release is
 * reported although the block stays cached. Through common/ec_slab.h only. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "ec_slab.h"

static void test_every_size_is_aligned_and_usable(void **state)
{
	struct ec_slab *s = ec_slab_new(8);
	struct ec_slab_stats st;

	(void)state;
	assert_non_null(s);
	for (size_t n = 0; n <= 5000; n++) {
		unsigned char *p = ec_slab_alloc(s, n);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xa5, n);
		ec_slab_release(s, p);
	}
	ec_slab_stats(s, &st);
	assert_int_equal(st.live_blocks, 0);
	ec_slab_release(s, NULL); /* a no-op */
	ec_slab_free(s);
	ec_slab_free(NULL);
}

/* A released block is the next one handed out for its class (LIFO), not for another. */
static void test_released_block_comes_back_for_its_class(void **state)
{
	struct ec_slab *s = ec_slab_new(8);
	void *a, *b, *c;

	(void)state;
	a = ec_slab_alloc(s, 100);
	ec_slab_release(s, a);
	b = ec_slab_alloc(s, 120); /* same class (128) */
	assert_ptr_equal(a, b);
	ec_slab_release(s, b);
	c = ec_slab_alloc(s, 20); /* another class: not the cached one */
	assert_ptr_not_equal(c, a);
	ec_slab_release(s, c);
	ec_slab_free(s);
}

static void test_cache_is_capped_per_class(void **state)
{
	struct ec_slab *s = ec_slab_new(2);
	struct ec_slab_stats st;
	void *p[5], *big;

	(void)state;
	for (int i = 0; i < 5; i++)
		p[i] = ec_slab_alloc(s, 64);
	big = ec_slab_alloc(s, 100000);
	assert_non_null(big);
	ec_slab_stats(s, &st);
	assert_int_equal(st.live_blocks, 6);
	assert_int_equal(st.cached_blocks, 0);
	for (int i = 0; i < 5; i++)
		ec_slab_release(s, p[i]);
	ec_slab_release(s, big); /* over the largest class: straight back to malloc */
	ec_slab_stats(s, &st);
	assert_int_equal(st.live_blocks, 0);
	assert_int_equal(st.cached_blocks, 2);
	assert_int_equal(st.cached_bytes, 2 * 64);
	ec_slab_free(s);

	s = ec_slab_new(0); /* keeps nothing */
	p[0] = ec_slab_alloc(s, 10);
	ec_slab_release(s, p[0]);
	ec_slab_stats(s, &st);
	assert_int_equal(st.cached_blocks, 0);
	ec_slab_free(s);
}

static void test_calloc_zeroes_a_dirty_block_and_refuses_overflow(void **state)
{
	struct ec_slab *s = ec_slab_new(8);
	unsigned char *p;

	(void)state;
	p = ec_slab_alloc(s, 200);
	memset(p, 0xff, 200);
	ec_slab_release(s, p);
	p = ec_slab_calloc(s, 25, 8);
	for (int i = 0; i < 200; i++)
		assert_int_equal(p[i], 0);
	ec_slab_release(s, p);
	assert_null(ec_slab_calloc(s, SIZE_MAX / 2, 3));
	assert_null(ec_slab_alloc(s, SIZE_MAX - 4));
	ec_slab_free(s);
}

static void test_realloc_keeps_contents_across_classes(void **state)
{
	static const size_t sizes[] = { 1, 30, 32, 33, 200, 2048, 2049, 9000, 64, 0, 700 };
	struct ec_slab *s = ec_slab_new(8);
	struct ec_slab_stats st;
	unsigned char *p = ec_slab_realloc(s, NULL, 10), *q;
	size_t have = 10;

	(void)state;
	for (size_t i = 0; i < have; i++)
		p[i] = (unsigned char)i;
	for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
		size_t keep = have < sizes[k] ? have : sizes[k];

		p = ec_slab_realloc(s, p, sizes[k]);
		assert_non_null(p);
		for (size_t i = 0; i < keep; i++)
			assert_int_equal(p[i], (unsigned char)i);
		for (size_t i = keep; i < sizes[k]; i++)
			p[i] = (unsigned char)i;
		have = sizes[k];
	}
	q = ec_slab_realloc(s, p, 720); /* same class (1024): the same block */
	assert_ptr_equal(q, p);
	ec_slab_release(s, q);
	ec_slab_stats(s, &st);
	assert_int_equal(st.live_blocks, 0);
	ec_slab_free(s);
}

/* Random alloc, realloc and release with every block filled with its own byte: a block
 * handed out twice, or overlapping another, shows as a foreign byte. */
static void test_random_workload_keeps_blocks_apart(void **state)
{
	enum { SLOTS = 300, ROUNDS = 100000 };
	struct ec_slab *s = ec_slab_new(16);
	struct ec_slab_stats st;
	unsigned char *p[SLOTS] = { 0 };
	size_t len[SLOTS] = { 0 }, live = 0;
	uint64_t x = 0x9e3779b97f4a7c15ull;

	(void)state;
	for (int r = 0; r < ROUNDS; r++) {
		size_t i, n;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		i = (size_t)(x % SLOTS);
		n = (size_t)(x >> 20) % (x & 0x100 ? 3000 : 300);
		if (p[i]) {
			for (size_t k = 0; k < len[i]; k++)
				assert_int_equal(p[i][k], (unsigned char)i);
		}
		if (p[i] && (x & 0x1000)) {
			ec_slab_release(s, p[i]);
			p[i] = NULL;
			live--;
			continue;
		}
		if (!p[i])
			live++;
		p[i] = p[i] ? ec_slab_realloc(s, p[i], n) : ec_slab_alloc(s, n);
		assert_non_null(p[i]);
		len[i] = n;
		memset(p[i], (int)i, n);
	}
	ec_slab_stats(s, &st);
	assert_int_equal(st.live_blocks, live);
	for (size_t i = 0; i < SLOTS; i++)
		ec_slab_release(s, p[i]);
	ec_slab_free(s);
}

/* Runs f in a child; returns its wait status. */
static int in_child(void (*f)(void))
{
	pid_t pid = fork();
	int status = 0;

	assert_true(pid >= 0);
	if (pid == 0) {
		/* the child's report is expected: keep it off the test's output */
		if (!freopen("/dev/null", "w", stderr))
			_exit(3);
		f();
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void release_twice(void)
{
	struct ec_slab *s = ec_slab_new(8);
	void *p = ec_slab_alloc(s, 50);

	ec_slab_release(s, p);
	ec_slab_release(s, p);
}

static void test_double_release_aborts(void **state)
{
	int status = in_child(release_twice);

	(void)state;
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
}

#if defined(__SANITIZE_ADDRESS__)
static void write_after_release(void)
{
	struct ec_slab *s = ec_slab_new(8);
	volatile unsigned char *p = ec_slab_alloc(s, 50);

	ec_slab_release(s, (void *)p);
	p[10] = 1; /* the block is cached, but poisoned */
}

static void test_use_after_release_is_reported(void **state)
{
	int status = in_child(write_after_release);

	(void)state;
	assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}
#endif

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_size_is_aligned_and_usable),
		cmocka_unit_test(test_released_block_comes_back_for_its_class),
		cmocka_unit_test(test_cache_is_capped_per_class),
		cmocka_unit_test(test_calloc_zeroes_a_dirty_block_and_refuses_overflow),
		cmocka_unit_test(test_realloc_keeps_contents_across_classes),
		cmocka_unit_test(test_random_workload_keeps_blocks_apart),
		cmocka_unit_test(test_double_release_aborts),
#if defined(__SANITIZE_ADDRESS__)
		cmocka_unit_test(test_use_after_release_is_reported),
#endif
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
