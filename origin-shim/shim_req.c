/* shim_req: request target and Range checks, kept pure so every rule has a unit test.
 * Does not decode the target for use: the shim forwards it upstream as received. */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "shim_req.h"

static int req_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* Returns 1 if the decoded segment [s, e) is "." or "..": decodes %2e on the way. */
static int req_is_dot_segment(const char *s, const char *e)
{
	size_t dots = 0;

	while (s < e) {
		if (*s == '.') {
			s++;
		} else if (e - s >= 3 && s[0] == '%' && s[1] == '2' &&
		           (s[2] == 'e' || s[2] == 'E')) {
			s += 3;
		} else {
			return 0;
		}
		if (++dots > 2)
			return 0;
	}
	return dots > 0;
}

const char *shim_req_check_target(const char *target)
{
	const char *p, *seg, *end;

	if (target == NULL || target[0] != '/')
		return "request target must start with '/'";
	end = target + strcspn(target, "?");
	for (p = target; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c == 0x7f)
			return "control byte or space in request target";
		if (c == '#')
			return "fragment in request target";
		if (c == '%') {
			int hi = req_hexval(p[1]), lo = hi < 0 ? -1 : req_hexval(p[2]);
			int v = hi * 16 + lo;
			if (hi < 0 || lo < 0)
				return "bad percent-escape in request target";
			if (v == 0)
				return "encoded NUL in request target";
			if (p < end && (v == '/' || v == '\\'))
				return "encoded slash in path";
			if (p < end && (v < 0x20 || v == 0x7f))
				return "encoded control byte in path";
			p += 2;
			continue;
		}
		if (c == '\\' && p < end)
			return "backslash in path";
	}
	for (seg = target + 1;; seg++) {
		const char *e = seg;
		while (e < end && *e != '/')
			e++;
		if (req_is_dot_segment(seg, e))
			return "dot segment in path";
		if (e >= end)
			break;
		seg = e;
	}
	return NULL;
}

/* Parses decimal digits at *s into *out; advances *s. Returns 0, or -1 on none/overflow. */
static int req_parse_u64(const char **s, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*s = p;
	*out = v;
	return 0;
}

enum shim_range shim_req_parse_range(const char *value, uint64_t size, uint64_t *first,
                                     uint64_t *last)
{
	const char *p = value;
	uint64_t a = 0, b = 0;
	int has_first, has_last;

	if (p == NULL)
		return SHIM_RANGE_NONE;
	p += strspn(p, " \t");
	if (strncasecmp(p, "bytes", 5) != 0)
		return SHIM_RANGE_NONE;
	p += 5;
	p += strspn(p, " \t");
	if (*p++ != '=')
		return SHIM_RANGE_NONE;
	p += strspn(p, " \t");
	has_first = req_parse_u64(&p, &a) == 0;
	if (*p++ != '-')
		return SHIM_RANGE_NONE;
	has_last = req_parse_u64(&p, &b) == 0;
	p += strspn(p, " \t");
	if (*p != '\0')
		return SHIM_RANGE_NONE;  /* a list of ranges, or junk: ignored */
	if (!has_first && !has_last)
		return SHIM_RANGE_NONE;
	if (has_first && has_last && b < a)
		return SHIM_RANGE_NONE;  /* invalid range-spec: the header is ignored */
	if (!has_first) {               /* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return SHIM_RANGE_UNSAT;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return SHIM_RANGE_PART;
	}
	if (a >= size)
		return SHIM_RANGE_UNSAT;
	*first = a;
	*last = has_last && b < size - 1 ? b : size - 1;
	return SHIM_RANGE_PART;
}
