/* pol_test: what the policy unit tests share: a fixed time, units, and a seeded
 * splitmix64 generator, so random tables replay the same on every run. Header only. */
#ifndef ECHOS_TESTS_POL_TEST_H
#define ECHOS_TESTS_POL_TEST_H

#include <stdint.h>

#define NOW 50000000
#define MiB 1000000ULL
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static uint64_t rng_state; /* the seed: set it before a run */

static inline uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static inline unsigned rnd_below(unsigned n)
{
	return (unsigned)(rnd() % n);
}

static inline double rnd_in(double lo, double hi)
{
	return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}

#endif
