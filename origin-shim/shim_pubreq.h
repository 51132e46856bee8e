/* shim_pubreq: the publish announcement a content owner sends (POST /_echos/publish):
 * a strict parser of its JSON body and the JSON forms of the answers. Pure: no I/O, no
 * allocation, no logging; the caller owns every buffer. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_PUBREQ_H
#define ECHOS_ORIGIN_SHIM_SHIM_PUBREQ_H

#include <stddef.h>
#include <stdint.h>

#define SHIM_PUB_MAX_BODY 16384          /* bytes of JSON accepted; more is refused */
#define SHIM_PUB_MAX_PATH 2048           /* as the redirector counts popularity */
#define SHIM_PUB_MAX_REGIONS 32
#define SHIM_PUB_REGION_LEN 64           /* 1-63 bytes of [A-Za-z0-9._-] and NUL */
#define SHIM_PUB_ALL_REGIONS "_all"      /* the region of an announcement naming none */
#define SHIM_PUB_MAX_RPS 1e9             /* expected requests/s, upper bound */
#define SHIM_PUB_TTL_DEFAULT_S 3600
#define SHIM_PUB_TTL_MAX_S 604800        /* 7 days */
#define SHIM_PUB_MAX_SIZE 1099511627776ull /* 1 TiB: size_bytes upper bound */

struct shim_pubreq {
	char path[SHIM_PUB_MAX_PATH + 1];   /* absolute, normalized, no query */
	double expected_rps;                /* 0 <= x <= SHIM_PUB_MAX_RPS */
	uint64_t size_bytes;                /* 0 when not announced */
	int64_t ttl_s;                      /* 1..SHIM_PUB_TTL_MAX_S */
	size_t n_regions;                   /* 1..SHIM_PUB_MAX_REGIONS, no duplicates */
	char regions[SHIM_PUB_MAX_REGIONS][SHIM_PUB_REGION_LEN]; /* "_all" when none given */
};

/* Parses body[0..len) (not NUL-terminated) into out. Accepts exactly one JSON object
 * with the keys "path" (string, required), "expected_rps" (number, required),
 * "size_bytes" (whole number), "regions" (array of names; empty or absent: all regions)
 * and "ttl_s" (whole number), each at most once; refuses unknown keys, other value types, strings with bytes outside
 * printable ASCII (also when escaped), nesting, and anything after the object. The path
 * must be what the shim serves and the redirector counts (shim_req_check_target and
 * ec_token_path_check, no query). Returns 0, or EC_EINVAL with a one-line reason in err
 * ("ttl_s: expected a whole number from 1 to 604800"). */
int shim_pubreq_parse(const char *body, size_t len, struct shim_pubreq *out, char *err,
                      size_t errlen);

/* Writes {"accepted": true, "path": ..., "regions": [...], "ttl_s": ...} and a newline.
 * Returns the length, or EC_ERANGE if out is too small (8 KiB always suffices). */
int shim_pubreq_accepted_json(const struct shim_pubreq *r, char *out, size_t outlen);

/* Writes {"error": "<msg>"} and a newline, msg escaped and cut to fit. Returns the
 * length (out must hold at least 16 bytes). */
int shim_pubreq_error_json(const char *msg, char *out, size_t outlen);

#endif
