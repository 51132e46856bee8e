/* ec_scan: finding the bytes that end or break an HTTP header line (CR, LF, NUL) sixteen
 * at a time: the header checks of the server core run over every byte of every request
 * and response header block. SSE2 where the compiler targets it (every x86-64), a byte
 * loop elsewhere; both give the same answers. */
#ifndef ECHOS_COMMON_EC_SCAN_H
#define ECHOS_COMMON_EC_SCAN_H

#include <stddef.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Index of the first CR, LF or NUL in p[i, n), or n when there is none. */
static inline size_t ec_scan_ctl(const unsigned char *p, size_t i, size_t n)
{
#ifdef __SSE2__
	const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
	const __m128i nul = _mm_setzero_si128();

	while (n - i >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
		__m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)),
		                           _mm_cmpeq_epi8(v, nul));
		unsigned m = (unsigned)_mm_movemask_epi8(hit);

		if (m)
			return i + (size_t)__builtin_ctz(m);
		i += 16;
	}
#endif
	for (; i < n; i++)
		if (p[i] == '\r' || p[i] == '\n' || p[i] == '\0')
			return i;
	return n;
}

/* RFC 9110 tchar ("!#$%&'*+-.^_`|~", digits, letters), one byte per byte value: a load
 * and a test per character. Bytes 0x80 and up are never tchars. */
static inline int ec_scan_is_tchar(unsigned char ch)
{
	static const unsigned char tab[256] = {
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 0x00 */
		0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,  /* 0x10 */
		0, 1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0,  /* 0x20 */
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,  /* 0x30 */
		0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 0x40 */
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1,  /* 0x50 */
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  /* 0x60 */
		1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1, 0,  /* 0x70 */
		/* 0x80-0xff: 0 */
	};

	return tab[ch];
}

/* Copies n bytes of s to d with ASCII capitals lowered (field names). */
static inline void ec_scan_lower(char *d, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		d[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
	}
}

/* Index of the first byte of p[0, n) that is not a tchar, or n. */
static inline size_t ec_scan_token(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!ec_scan_is_tchar(p[i]))
			return i;
	return n;
}

#endif
