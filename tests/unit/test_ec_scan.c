/* test_ec_scan: ec_scan_ctl finds the first CR, LF or NUL exactly where a byte loop does,
 * at every offset around the 16-byte blocks, from every start, and on random buffers with
 * a fixed seed. Through common/ec_scan.h only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ec_scan.h"

static size_t reference(const unsigned char *p, size_t i, size_t n)
{
	for (; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			return i;
	return n;
}

/* One control byte at each position of a 70-byte run of 'a', scanned from every start and
 * up to every end: the answer is the byte's position when it lies inside, else the end. */
static void test_every_position_start_and_end(void **state)
{
	static const unsigned char ctl[] = { '\r', '\n', '\0' };
	unsigned char buf[70];
	size_t pos, i, n, k;

	(void)state;
	for (k = 0; k < sizeof ctl; k++) {
		for (pos = 0; pos < sizeof buf; pos++) {
			memset(buf, 'a', sizeof buf);
			buf[pos] = ctl[k];
			for (i = 0; i <= sizeof buf; i++)
				for (n = i; n <= sizeof buf; n++)
					assert_int_equal(ec_scan_ctl(buf, i, n),
					                 pos >= i && pos < n ? pos : n);
		}
	}
}

/* Bytes near the control ones (0x0c, 0x0e, 0x8d, 0xff...) are not mistaken for them. */
static void test_neighbours_are_not_control(void **state)
{
	unsigned char buf[256];
	size_t i, j = 0;

	(void)state;
	for (i = 0; i < 256; i++)
		if (i != '\r' && i != '\n' && i != 0)
			buf[j++] = (unsigned char)i;
	assert_int_equal(ec_scan_ctl(buf, 0, j), j);
}

static void test_random_buffers_match_the_byte_loop(void **state)
{
	unsigned char buf[300];
	uint64_t x = 0x9e3779b97f4a7c15ull;
	size_t round, i, n;

	(void)state;
	for (round = 0; round < 20000; round++) {
		for (i = 0; i < sizeof buf; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			/* mostly printable, a control byte now and then */
			buf[i] = (x & 0x3f) == 0 ? (unsigned char)"\r\n"[(x >> 8) & 1]
			       : (x & 0x3ff) == 1 ? 0 : (unsigned char)(' ' + (x >> 16) % 95);
		}
		i = (size_t)(x >> 20) % sizeof buf;
		n = i + (size_t)(x >> 40) % (sizeof buf - i + 1);
		assert_int_equal(ec_scan_ctl(buf, i, n), reference(buf, i, n));
	}
}

/* The tchar bitmap against RFC 9110's list, byte by byte, and the token scan's stop. */
static void test_tchar_is_rfc9110(void **state)
{
	static const char extra[] = "!#$%&'*+-.^_`|~";
	unsigned char name[] = "X-Forwarded-For";
	int ch;

	(void)state;
	for (ch = 0; ch < 256; ch++) {
		int want = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		           (ch >= '0' && ch <= '9') || (ch != 0 && strchr(extra, ch) != NULL);

		assert_int_equal(ec_scan_is_tchar((unsigned char)ch), want);
	}
	assert_int_equal(ec_scan_token(name, sizeof name - 1), sizeof name - 1);
	name[5] = ' ';
	assert_int_equal(ec_scan_token(name, sizeof name - 1), 5);
	name[5] = ':';
	assert_int_equal(ec_scan_token(name, sizeof name - 1), 5);
	name[0] = 0x80;
	assert_int_equal(ec_scan_token(name, sizeof name - 1), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_position_start_and_end),
		cmocka_unit_test(test_neighbours_are_not_control),
		cmocka_unit_test(test_random_buffers_match_the_byte_loop),
		cmocka_unit_test(test_tchar_is_rfc9110),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
