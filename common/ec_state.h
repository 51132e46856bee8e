/* ec_state: the operator's read view of the shared state in Redis (docs/redis.md):
 * accounting windows and per-minute series, the box registry, fallbacks by reason and
 * top objects, read over a synchronous hiredis context with short timeouts, and the one
 * JSON rendering of each that echosctl --json and echos-policy's API both print, so the
 * numbers agree everywhere. Does not keep state between calls and never writes Redis,
 * except the short-lived scratch key of ec_state_read_top(). */
#ifndef ECHOS_COMMON_EC_STATE_H
#define ECHOS_COMMON_EC_STATE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ec_acct.h"

struct redisContext;

/* Connects to "host:port" with timeout_ms for the connect and for every command.
 * Returns a context owned by the caller (redisFree()), or NULL with the reason in err
 * ("redis 127.0.0.1:6379: Connection refused"). */
struct redisContext *ec_state_connect(const char *addr, int64_t timeout_ms, char *err,
                                      size_t errlen);

/* Adds the window of `minutes` (0: the running total; N: the minute of now_ms and the N
 * before it) to a, initialized by the caller (ec_acct_init). Returns 0, or EC_EIO with
 * the reason in err (the context is then unusable: free it). */
int ec_state_read_acct(struct redisContext *rc, int minutes, int64_t now_ms,
                       struct ec_acct *a, char *err, size_t errlen);
/* The same for n windows at once, reading each minute bucket once (for /metrics). */
int ec_state_read_accts(struct redisContext *rc, struct ec_acct *const *accts,
                        const int *minutes, size_t n, int64_t now_ms, char *err,
                        size_t errlen);

/* One minute of a series: the scope's sums in that minute's bucket. */
struct ec_state_point {
	int64_t minute; /* unix minute */
	struct ec_acct_sums s;
};
/* Fills pts[0..minutes] (minutes + 1 points, oldest first) for the scope of service or
 * region (NULL/"" for everything). Returns 0, EC_EINVAL (bad scope name) or EC_EIO. */
int ec_state_read_series(struct redisContext *rc, const char *service, const char *region,
                         int minutes, int64_t now_ms, struct ec_state_point *pts,
                         char *err, size_t errlen);

/* One box of the registry (echos:{boxes} and its echos:box:{<id>} hash). */
struct ec_state_box {
	char id[64], pop[64], region[64], url[256], status[16];
	int is_alive;              /* its heartbeat hash still exists */
	int64_t last_seen_ms;      /* score in echos:{boxes} */
	int64_t ts_ms;             /* ts_ms of the heartbeat (0 when expired) */
	double uplink_bps, egress_bps, conns, ttfb_ms;
	double cache_bytes, cache_max_bytes, cache_objects, hits, misses;
};
/* Reads every box of the registry, sorted by id. *boxes is a new array owned by the
 * caller (free()), NULL when *n is 0. Returns 0, EC_ENOMEM or EC_EIO. */
int ec_state_read_boxes(struct redisContext *rc, struct ec_state_box **boxes, size_t *n,
                        char *err, size_t errlen);

struct ec_state_top {
	char *path;      /* heap, owned by the array (ec_state_top_free) */
	double requests; /* requests in the window */
};
/* The most requested objects in the window (minutes 1 or 60: popularity is kept 2 h)
 * from echos:pop:{<region>}:m:<minute>: exact for one region; for every region (region
 * NULL/""), the sum of each region's top `limit`, so *approximate is set when more than
 * one region has data. *rows is a new array owned by the caller (ec_state_top_free).
 * Returns 0, EC_EINVAL (window or region name), EC_ENOMEM or EC_EIO. */
int ec_state_read_top(struct redisContext *rc, const char *region, int minutes,
                      size_t limit, int64_t now_ms, struct ec_state_top **rows, size_t *n,
                      int *approximate, char *err, size_t errlen);
void ec_state_top_free(struct ec_state_top *rows, size_t n);

/* JSON documents (one line, then "\n"); field meanings in docs/ops.md. Ratios without
 * traffic are null. a is the window's accounting; boxes may be NULL when n is 0. */
void ec_state_json_offload(FILE *f, const struct ec_acct *a, const char *window,
                           const char *service, const char *region, int64_t now_ms);
void ec_state_json_fallbacks(FILE *f, const struct ec_acct *a, const char *window,
                             const char *service, const char *region, int64_t now_ms);
void ec_state_json_boxes(FILE *f, const struct ec_state_box *boxes, size_t n,
                         const struct ec_acct *a, const char *window, int64_t now_ms);
void ec_state_json_top(FILE *f, const struct ec_state_top *rows, size_t n,
                       int approximate, const char *region, const char *window,
                       int64_t now_ms);
void ec_state_json_series(FILE *f, const struct ec_state_point *pts, size_t n,
                          const char *window, const char *service, const char *region);
/* {"error":"...","status":N} for API failures. */
void ec_state_json_error(FILE *f, int status, const char *msg);

/* JSON helpers: a string with escapes (NULL as null), a number (NaN/inf as null, else
 * the shortest text that reads back as the same double). */
void ec_json_str(FILE *f, const char *s);
void ec_json_num(FILE *f, double v);

#endif
