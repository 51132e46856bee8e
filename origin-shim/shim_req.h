/* shim_req: pure checks of what a client sends the shim: the request target (path and
 * query, as received) and a single byte Range. No I/O, no allocation, no logging. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_REQ_H
#define ECHOS_ORIGIN_SHIM_SHIM_REQ_H

#include <stddef.h>
#include <stdint.h>

/* Checks a raw request target ("/path?query", still percent-encoded). Refuses: not
 * starting with '/', control bytes or spaces, bad or NUL %-escapes, encoded '/' or '\',
 * a '\', and "." or ".." segments (also when encoded). Returns NULL if acceptable, else a
 * static one-line reason ("encoded slash in path"). */
const char *shim_req_check_target(const char *target);

enum shim_range {
	SHIM_RANGE_NONE = 0, /* no usable Range: serve the whole representation (200) */
	SHIM_RANGE_PART,     /* serve [*first, *last] (206) */
	SHIM_RANGE_UNSAT,    /* valid but unsatisfiable for this size (416) */
};

/* Parses a Range header value against a representation of `size` bytes. Only one
 * "bytes=" range is honoured; a malformed value or a list of ranges is ignored (NONE),
 * as RFC 9110 section 14.2 allows. On PART sets *first and *last (inclusive). */
enum shim_range shim_req_parse_range(const char *value, uint64_t size, uint64_t *first,
                                     uint64_t *last);

#endif
