/* ec_h1fast: the common HTTP/1.1 request head read without http-parser. A plain GET or
 * HEAD of an origin-form target with ordinary header lines is most of what a redirector
 * and an edge see; http-parser walks such a block byte by byte through its state machine
 * and a callback per span. This scanner accepts only a strict subset of what http-parser
 * accepts and gives the same spans for it; anything else (another method, an absolute or
 * odd target, another version, an empty or non-ASCII value, any header http-parser
 * interprets: Connection, Content-Length, Transfer-Encoding, Upgrade, Proxy-Connection)
 * is declined and goes to http-parser as before. Pure: no allocation, no state.
 * tests/unit/test_ec_h1fast.c checks the agreement against http-parser itself. */
#ifndef ECHOS_COMMON_EC_H1FAST_H
#define ECHOS_COMMON_EC_H1FAST_H

#include <stddef.h>

#define EC_H1FAST_MAX_FIELDS 64

struct ec_h1fast_span {
	const char *p;
	size_t len;
};

struct ec_h1fast {
	int is_head;             /* HEAD, else GET */
	int minor;               /* HTTP/1.<minor>: 0 or 1 */
	struct ec_h1fast_span target;
	size_t n_fields;
	/* name as sent; value without leading or trailing SP/HT, never empty */
	struct ec_h1fast_span name[EC_H1FAST_MAX_FIELDS];
	struct ec_h1fast_span value[EC_H1FAST_MAX_FIELDS];
};

/* Reads the header block p[0, len), which ends with CRLF CRLF (the scanner of the HTTP
 * core has checked that every line ends with CRLF and holds no NUL, bare CR or LF).
 * Returns 1 with *out filled, or 0 to leave the block to http-parser. */
int ec_h1fast_parse(const char *p, size_t len, struct ec_h1fast *out);

#endif
