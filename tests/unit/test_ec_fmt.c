/* test_ec_fmt: ec_put_dec writes what printf's %llu writes; ec_parse_decimal takes plain
 * decimals of up to 15 significant digits and gives bit for bit what strtod gives, and
 * refuses everything else (so its caller asks strtod). Hand-picked strings, then random
 * ones with a fixed seed. Through common/ec_fmt.h only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ec_fmt.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void test_put_dec_matches_printf(void **state)
{
	static const uint64_t edge[] = { 0, 1, 9, 10, 99, 100, 1000000007, UINT32_MAX,
	                                 (uint64_t)UINT32_MAX + 1, UINT64_MAX / 10, UINT64_MAX };
	char a[32], b[32];

	(void)state;
	for (size_t k = 0; k < sizeof edge / sizeof edge[0] + 100000; k++) {
		uint64_t v = k < sizeof edge / sizeof edge[0] ? edge[k] : next() >> (next() % 64);
		size_t n = (size_t)(ec_put_dec(a, v) - a);

		snprintf(b, sizeof b, "%llu", (unsigned long long)v);
		assert_int_equal(n, strlen(b));
		assert_memory_equal(a, b, n);
	}
}

/* ok: the fast path must take it, and give strtod's double bit for bit. */
static void same_as_strtod(const char *s, int ok)
{
	double fast = 12345, slow;
	char *end;
	int rc = ec_parse_decimal(s, strlen(s), &fast);

	if (!ok) {
		if (rc == 0)
			fail_msg("\"%s\" taken by the fast path", s);
		return;
	}
	if (rc != 0)
		fail_msg("\"%s\" refused by the fast path", s);
	slow = strtod(s, &end);
	assert_true(*end == '\0');
	if (memcmp(&fast, &slow, sizeof fast) != 0)
		fail_msg("\"%s\": %.17g, strtod %.17g", s, fast, slow);
}

static void test_parse_decimal_hand_picked(void **state)
{
	static const char *const taken[] = {
		"0", "-0", "+0", "00", "0.0", "1", "-1", "51.5074", "-0.1278", "59.3293",
		"18.0686", "-122.4194", "37.7749", "90", "-90", "180", "-180.0000", ".5", "5.",
		"-.5", "0.1", "0.2", "0.3", "1.1", "2.675", "123456789012345",
		"0.000000000000000000001", "0.0000000000000000000001", "99999999999999.9", "0.999999999999999",
		"000000000000000000000000000000000001", "3.14159265358979",
	};
	static const char *const refused[] = {
		"", "-", "+", ".", "-.", "1e5", "1E5", "inf", "nan", "0x10", " 1", "1 ", "1..2",
		"1.2.3", "--1", "+-1", "1234567890123456", "1.234567890123456",
		"0.00000000000000000000001",
		"1,5", "١",
	};

	(void)state;
	for (size_t i = 0; i < sizeof taken / sizeof taken[0]; i++)
		same_as_strtod(taken[i], 1);
	for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
		same_as_strtod(refused[i], 0);
}

/* Random decimals of 1 to 15 significant digits, a point anywhere, a sign or none,
 * leading zeros: every one taken and equal to strtod's double. */
static void test_parse_decimal_random_matches_strtod(void **state)
{
	char s[64];

	(void)state;
	for (int r = 0; r < 300000; r++) {
		size_t n = 0, digits = 1 + next() % 15, zeros = next() % 4, point;
		uint64_t sign = next() % 3;

		if (sign == 1)
			s[n++] = '-';
		else if (sign == 2)
			s[n++] = '+';
		point = next() % (zeros + digits + 1);
		for (size_t i = 0; i < zeros + digits; i++) {
			if (i == point && (next() & 1))
				s[n++] = '.';
			s[n++] = i < zeros ? '0' : (char)('0' + next() % 10);
		}
		s[n] = '\0';
		same_as_strtod(s, 1);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_dec_matches_printf),
		cmocka_unit_test(test_parse_decimal_hand_picked),
		cmocka_unit_test(test_parse_decimal_random_matches_strtod),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
