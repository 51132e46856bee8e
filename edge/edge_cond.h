/* edge_cond: RFC 9110 preconditions and byte ranges for cache hits, as pure functions:
 * If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since, If-Range and one byte
 * range. No I/O, no clock. Several ranges in one request are answered with the whole
 * representation (200), which RFC 9110 allows; multipart/byteranges is not produced. */
#ifndef ECHOS_EDGE_EDGE_COND_H
#define ECHOS_EDGE_EDGE_COND_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum edge_range_kind {
	EDGE_RANGE_NONE = 0, /* no usable Range header: serve the whole body */
	EDGE_RANGE_OK,       /* one satisfiable range: [first, last] */
	EDGE_RANGE_UNSAT,    /* 416 */
};

/* Parses a Range header value against a body of `len` bytes. Malformed values, units
 * other than bytes and several ranges give NONE (the header is ignored). */
enum edge_range_kind edge_range_parse(const char *v, uint64_t len, uint64_t *first,
                                      uint64_t *last);

/* Returns 1 if the entity-tag list `list` ("*" or comma-separated tags) matches `etag`:
 * weak comparison when weak != 0, strong otherwise (a W/ tag never matches strongly). */
int edge_etag_match(const char *list, const char *etag, int weak);

/* Parses an HTTP-date (IMF-fixdate, RFC 850 or asctime). Returns 0 or -1. */
int edge_http_date_parse(const char *s, time_t *out);
/* Formats t as an IMF-fixdate into out (at least 30 bytes). Returns out. */
char *edge_http_date_format(time_t t, char *out, size_t outlen);

/* Inputs for edge_cond_eval: the request's condition headers (NULL when absent) and the
 * stored object's validators. */
struct edge_cond_in {
	const char *if_match;
	const char *if_none_match;
	const char *if_modified_since;
	const char *if_unmodified_since;
	const char *if_range;
	const char *range;
	const char *etag;       /* stored ETag, "" if none */
	const char *lastmod;    /* stored Last-Modified, "" if none */
	uint64_t len;           /* body length */
};

struct edge_cond_out {
	int status;             /* 200, 206, 304, 412 or 416 */
	uint64_t first, last;   /* 206: the range, inclusive */
};

/* Evaluates preconditions in the order of RFC 9110 section 13.2.2 for GET/HEAD. */
void edge_cond_eval(const struct edge_cond_in *in, struct edge_cond_out *out);

#endif
