/* ec_fmt: numbers written without printf, for the hot paths that put them on the wire
 * (Content-Length, RESP lengths, token canonical strings). */
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

#endif
