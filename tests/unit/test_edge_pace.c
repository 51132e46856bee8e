/* test_edge_pace: the egress token bucket's arithmetic (clock passed in): refill at the
 * rate, capped at the burst, debt after a chunk taken on credit, and the wait it implies.
 * The Makefile links unit tests with common/ and policy/ only, so the module is included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "../../edge/edge_pace.c"

struct row {
	const char *name;
	uint64_t rate_Bps;
	int64_t burst;
	int64_t take;         /* taken at t = 0 */
	int64_t at_us;        /* then refilled at this time */
	int64_t want_tokens;
	int64_t want_wait_us; /* edge_pace_bucket_wait_us after the refill */
};

static const struct row rows[] = {
	{ "a full bucket stays at its burst", 1000000, 20000, 0, 500000, 20000, 0 },
	{ "tokens come back at the rate", 1000000, 20000, 20000, 5000, 5000, 0 },
	{ "a chunk on credit leaves a debt", 1000000, 20000, 84000, 0, -64000, 64001 },
	{ "the debt is paid off in time", 1000000, 20000, 84000, 64001, 1, 0 },
	{ "slow rates do not round to zero", 3, 100, 100, 1000000, 3, 0 },
	{ "an empty bucket waits for one byte", 1000, 100, 100, 0, 0, 1000 },
	{ "a long idle fills without overflow", 1000000000, 1 << 20, 1 << 20, INT64_C(1) << 40,
	  1 << 20, 0 },
	{ "rate 0 is unlimited", 0, 100, 1000, 10, -900, 0 },
};

static void test_bucket_rows(void **state)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const struct row *r = &rows[i];
		struct edge_pace_bucket b;

		edge_pace_bucket_init(&b, r->rate_Bps, r->burst, 0);
		b.tokens -= r->take;
		edge_pace_bucket_refill(&b, r->at_us);
		if (b.tokens != r->want_tokens ||
		    edge_pace_bucket_wait_us(&b) != r->want_wait_us)
			fail_msg("%s: tokens %lld (want %lld), wait %lld us (want %lld)", r->name,
			         (long long)b.tokens, (long long)r->want_tokens,
			         (long long)edge_pace_bucket_wait_us(&b),
			         (long long)r->want_wait_us);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bucket_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
