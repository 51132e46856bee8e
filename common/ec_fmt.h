/* ec_fmt: numbers written without printf, for the hot paths that put them on the wire
 * (Content-Length, RESP lengths, token canonical strings), and plain decimals read
 * without strtod where a sync reads thousands of them a second (box coordinates). */
#ifndef ECHOS_COMMON_EC_FMT_H
#define ECHOS_COMMON_EC_FMT_H

#include <stdint.h>
#include <string.h>

/* Writes the decimal digits of v at p (at most 20, no NUL); returns the end. */
static inline char *ec_put_dec(char *p, uint64_t v)
{
	char tmp[20];
	size_t n = sizeof tmp;

	do
		tmp[--n] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	memcpy(p, tmp + n, sizeof tmp - n);
	return p + (sizeof tmp - n);
}

/* Plain decimals "[+-]digits[.digits]" (at least one digit) of at most 15 significant
 * digits, read as mantissa / 10^k: both are exact doubles, so the one division rounds
 * correctly and the result is exactly strtod's (Clinger's fast path). Returns 0 with
 * *out set, or -1 for anything else (an exponent, more digits, "inf", spaces...): the
 * caller then asks strtod. */
static inline int ec_parse_decimal(const char *s, size_t len, double *out)
{
	static const double pow10[] = { 1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
	                                1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
	                                1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22 };
	uint64_t m = 0;
	size_t i = 0, digits = 0, frac = 0;
	int neg = 0, dot = 0;

	if (len && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	for (; i < len; i++) {
		char c = s[i];

		if (c >= '0' && c <= '9') {
			digits++;
			frac += (size_t)dot;
			m = m * 10 + (uint64_t)(c - '0');
			if (m > 999999999999999ull) /* over 15 significant digits: not exact */
				return -1;
		} else if (c == '.' && !dot) {
			dot = 1;
		} else {
			return -1;
		}
	}
	if (digits == 0 || frac >= sizeof pow10 / sizeof pow10[0])
		return -1;
	*out = (double)m / pow10[frac];
	if (neg)
		*out = -*out;
	return 0;
}

#endif
