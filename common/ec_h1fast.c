/* ec_h1fast: see ec_h1fast.h. */
#include <string.h>

#include "ec_h1fast.h"
#include "ec_scan.h"

/* Bytes of an origin-form target taken here (RFC 3986 pchar, '/', '?'); others ('#',
 * quotes, brackets, controls, non-ASCII) go to http-parser. */
static const unsigned char target_ok[256] = {
	['a' ... 'z'] = 1, ['A' ... 'Z'] = 1, ['0' ... '9'] = 1,
	['-'] = 1, ['.'] = 1, ['_'] = 1, ['~'] = 1,
	['!'] = 1, ['$'] = 1, ['&'] = 1, ['\''] = 1, ['('] = 1, [')'] = 1, ['*'] = 1,
	['+'] = 1, [','] = 1, [';'] = 1, ['='] = 1,
	[':'] = 1, ['@'] = 1, ['/'] = 1, ['?'] = 1, ['%'] = 1,
};

/* Visible ASCII and HT: a field value taken here. */
static const unsigned char value_ok[256] = {
	[' ' ... '~'] = 1, ['\t'] = 1,
};

static int lower_eq(const char *s, size_t n, const char *lit, size_t litlen)
{
	size_t i;

	if (n != litlen)
		return 0;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch >= 'A' && ch <= 'Z' ? ch + 32 : ch) != (unsigned char)lit[i])
			return 0;
	}
	return 1;
}

#define NAME_IS(s, n, lit) lower_eq((s), (n), (lit), sizeof(lit) - 1)

/* The headers http-parser acts on (framing, keep-alive, upgrade): left to it. */
static int is_interpreted(const char *s, size_t n)
{
	switch (n) {
	case 7: return NAME_IS(s, n, "upgrade");
	case 10: return NAME_IS(s, n, "connection");
	case 14: return NAME_IS(s, n, "content-length");
	case 16: return NAME_IS(s, n, "proxy-connection");
	case 17: return NAME_IS(s, n, "transfer-encoding");
	default: return 0;
	}
}

int ec_h1fast_parse(const char *p, size_t len, struct ec_h1fast *out)
{
	const char *end = p + len, *s;
	size_t i;

	if (len < 4 || memcmp(end - 4, "\r\n\r\n", 4) != 0)
		return 0;
	if (len >= 4 && memcmp(p, "GET ", 4) == 0) {
		out->is_head = 0;
		p += 4;
	} else if (len >= 5 && memcmp(p, "HEAD ", 5) == 0) {
		out->is_head = 1;
		p += 5;
	} else {
		return 0;
	}
	if (*p != '/')
		return 0;
	for (s = p; target_ok[(unsigned char)*s]; s++)
		;
	/* the block ends with CRLF, which stops the loop inside it */
	out->target.p = p;
	out->target.len = (size_t)(s - p);
	if ((size_t)(end - s) < 11 || memcmp(s, " HTTP/1.", 8) != 0 ||
	    (s[8] != '0' && s[8] != '1') || s[9] != '\r' || s[10] != '\n')
		return 0;
	out->minor = s[8] - '0';
	p = s + 11;
	out->n_fields = 0;
	while (p < end - 2) {
		const char *name = p, *v, *ve;

		for (; ec_scan_is_tchar((unsigned char)*p); p++)
			;
		if (p == name || *p != ':' || out->n_fields == EC_H1FAST_MAX_FIELDS ||
		    is_interpreted(name, (size_t)(p - name)))
			return 0;
		i = out->n_fields;
		out->name[i].p = name;
		out->name[i].len = (size_t)(p - name);
		for (p++; *p == ' ' || *p == '\t'; p++)
			;
		for (v = p; value_ok[(unsigned char)*p]; p++)
			;
		if (*p != '\r')
			return 0; /* a byte outside visible ASCII and HT */
		for (ve = p; ve > v && (ve[-1] == ' ' || ve[-1] == '\t'); ve--)
			;
		if (ve == v)
			return 0; /* empty value */
		out->value[i].p = v;
		out->value[i].len = (size_t)(ve - v);
		out->n_fields++;
		p += 2; /* CRLF, as the core's scanner saw */
	}
	return p == end - 2;
}
