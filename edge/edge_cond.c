/* edge_cond: preconditions and byte ranges (RFC 9110 sections 13 and 14) for hits.
 * Pure functions over header values; nothing here allocates or reads a clock.
 * Does not build responses: edge_serve turns the status into headers. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "edge_cond.h"

static const char *skip_ows(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* Parses decimal digits into *out; returns the end or NULL (no digit, overflow). */
static const char *parse_u64(const char *p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = p;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return NULL;
		v = v * 10 + d;
		p++;
	}
	if (p == s)
		return NULL;
	*out = v;
	return p;
}

enum edge_range_kind edge_range_parse(const char *v, uint64_t len, uint64_t *first,
                                      uint64_t *last)
{
	const char *p;
	uint64_t a, b;

	if (!v)
		return EDGE_RANGE_NONE;
	v = skip_ows(v);
	if (strncasecmp(v, "bytes=", 6) != 0)
		return EDGE_RANGE_NONE;
	p = skip_ows(v + 6);
	if (strchr(p, ','))
		return EDGE_RANGE_NONE; /* several ranges: whole body (documented) */
	if (*p == '-') {                /* suffix: the last n bytes */
		p = parse_u64(p + 1, &b);
		if (!p || *skip_ows(p) != '\0')
			return EDGE_RANGE_NONE;
		if (b == 0 || len == 0)
			return EDGE_RANGE_UNSAT;
		*first = b >= len ? 0 : len - b;
		*last = len - 1;
		return EDGE_RANGE_OK;
	}
	p = parse_u64(p, &a);
	if (!p || *p != '-')
		return EDGE_RANGE_NONE;
	p++;
	if (*skip_ows(p) == '\0') {
		b = UINT64_MAX;
	} else {
		p = parse_u64(p, &b);
		if (!p || *skip_ows(p) != '\0' || b < a)
			return EDGE_RANGE_NONE;
	}
	if (a >= len)
		return EDGE_RANGE_UNSAT;
	*first = a;
	*last = b >= len ? len - 1 : b;
	return EDGE_RANGE_OK;
}

/* Splits the next entity-tag off the list at *pp. Sets tag/taglen to the opaque tag with
 * its quotes and *is_weak. Returns 0, or -1 at the end or on garbage. */
static int next_etag(const char **pp, const char **tag, size_t *taglen, int *is_weak)
{
	const char *p = *pp, *q;

	while (*p == ' ' || *p == '\t' || *p == ',')
		p++;
	if (*p == '\0')
		return -1;
	*is_weak = 0;
	if (p[0] == 'W' && p[1] == '/') {
		*is_weak = 1;
		p += 2;
	}
	if (*p != '"')
		return -1;
	q = strchr(p + 1, '"');
	if (!q)
		return -1;
	*tag = p;
	*taglen = (size_t)(q - p) + 1;
	*pp = q + 1;
	return 0;
}

int edge_etag_match(const char *list, const char *etag, int weak)
{
	const char *p, *mine, *tag;
	size_t mylen, taglen;
	int my_weak, tag_weak;

	if (!list || !etag)
		return 0;
	p = skip_ows(list);
	if (p[0] == '*' && *skip_ows(p + 1) == '\0')
		return etag[0] != '\0';
	if (etag[0] == '\0')
		return 0;
	mine = etag;
	if (next_etag(&mine, &tag, &taglen, &my_weak) != 0)
		return 0;
	mine = tag;
	mylen = taglen;
	while (next_etag(&p, &tag, &taglen, &tag_weak) == 0) {
		if (!weak && (tag_weak || my_weak))
			continue;
		if (taglen == mylen && memcmp(tag, mine, mylen) == 0)
			return 1;
	}
	return 0;
}

int edge_http_date_parse(const char *s, time_t *out)
{
	static const char *const fmts[] = {
		"%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate */
		"%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850 */
		"%a %b %e %H:%M:%S %Y",      /* asctime */
	};
	struct tm tm;

	if (!s)
		return -1;
	s = skip_ows(s);
	for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
		const char *end;
		memset(&tm, 0, sizeof tm);
		end = strptime(s, fmts[i], &tm);
		if (end && *skip_ows(end) == '\0') {
			*out = timegm(&tm);
			return *out == (time_t)-1 ? -1 : 0;
		}
	}
	return -1;
}

char *edge_http_date_format(time_t t, char *out, size_t outlen)
{
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, outlen, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return out;
}

/* The object's Last-Modified, parsed the first time a precondition compares with it
 * (*state: 0 not yet, 1 known, -1 absent or unparsable). Returns 1 when known. */
static int lastmod_known(const struct edge_cond_in *in, time_t *lm, int *state)
{
	if (*state == 0)
		*state = in->lastmod && edge_http_date_parse(in->lastmod, lm) == 0 ? 1 : -1;
	return *state > 0;
}

void edge_cond_eval(const struct edge_cond_in *in, struct edge_cond_out *out)
{
	time_t lm = 0, t;
	int lm_state = 0, use_range = 1;

	out->status = 200;
	out->first = 0;
	out->last = in->len ? in->len - 1 : 0;

	/* 1-2: If-Match, else If-Unmodified-Since */
	if (in->if_match) {
		if (!edge_etag_match(in->if_match, in->etag, 0)) {
			out->status = 412;
			return;
		}
	} else if (in->if_unmodified_since && lastmod_known(in, &lm, &lm_state) &&
	           edge_http_date_parse(in->if_unmodified_since, &t) == 0 && lm > t) {
		out->status = 412;
		return;
	}
	/* 3-4: If-None-Match, else If-Modified-Since */
	if (in->if_none_match) {
		if (edge_etag_match(in->if_none_match, in->etag, 1)) {
			out->status = 304;
			return;
		}
	} else if (in->if_modified_since && lastmod_known(in, &lm, &lm_state) &&
	           edge_http_date_parse(in->if_modified_since, &t) == 0 && lm <= t) {
		out->status = 304;
		return;
	}
	/* 5: If-Range: a strong ETag match or the exact Last-Modified date */
	if (in->range && in->if_range) {
		const char *v = skip_ows(in->if_range);
		if (*v == '"' || (v[0] == 'W' && v[1] == '/'))
			use_range = edge_etag_match(v, in->etag, 0);
		else
			use_range = lastmod_known(in, &lm, &lm_state) &&
			            edge_http_date_parse(v, &t) == 0 && t == lm;
	}
	if (!use_range)
		return;
	switch (edge_range_parse(in->range, in->len, &out->first, &out->last)) {
	case EDGE_RANGE_OK:
		out->status = 206;
		break;
	case EDGE_RANGE_UNSAT:
		out->status = 416;
		break;
	case EDGE_RANGE_NONE:
		break;
	}
}
