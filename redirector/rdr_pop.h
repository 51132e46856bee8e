/* rdr_pop: popularity batching. Counts requests, and the origin fallbacks more replicas
 * could have avoided, per (region, object path) in a bounded in-memory map and flushes
 * them every second as ZINCRBY into the per-minute sorted sets of docs/redis.md
 * (echos:pop and echos:miss), in one pipeline. Never waits on Redis: when it is down the
 * batch is dropped and counted; when the map is full new objects are dropped and counted. */
#ifndef ECHOS_REDIRECTOR_RDR_POP_H
#define ECHOS_REDIRECTOR_RDR_POP_H

#include <stddef.h>
#include <stdint.h>

#include "pol_types.h"

struct ec_redis;
struct rdr_pop;

#define RDR_POP_MAX_ENTRIES 100000
#define RDR_POP_MAX_PATH 2048     /* longer paths are not counted */
#define RDR_POP_TTL_S 7200

/* Returns a new counter map owned by the caller (free with rdr_pop_free), holding at
 * most max_entries distinct (region, path) pairs per batch; NULL on allocation failure. */
struct rdr_pop *rdr_pop_new(size_t max_entries);
void rdr_pop_free(struct rdr_pop *p);

/* Counts one request. Borrows region and path for the call. Returns 0, EC_EFULL (map
 * full: dropped) or EC_ETOOBIG (path too long: not counted). */
int rdr_pop_count(struct rdr_pop *p, const char *region, const char *path, size_t path_len);

/* Is a redirect to the origin for reason m a sign that the object has too few replicas
 * in the viewer's region? Yes when boxes were in reach but could not take the viewer
 * (all_over_capacity, sla_ttfb) or none held it under a cached-only policy (not_cached);
 * no when more replicas would not have helped (no box, none in reach, stale state, Redis
 * down) or the request went to a box (POL_MISS_NONE). */
int rdr_pop_miss_counts(enum pol_miss m);

/* Counts one request as rdr_pop_count() does and, when rdr_pop_miss_counts(miss), one
 * origin fallback of the same (region, path), flushed to echos:miss. path_hash must be
 * pol_hash_bytes(path, path_len) (the redirector has it from the decision). Same
 * returns. */
int rdr_pop_count_outcome(struct rdr_pop *p, const char *region, const char *path,
                          size_t path_len, uint64_t path_hash, enum pol_miss miss);

/* Sends the batch to the bucket of wall_ms's minute and empties the map. Returns the
 * number of entries sent, or EC_EAGAIN when Redis is down (the rest of the batch is
 * dropped and counted). */
int rdr_pop_flush(struct rdr_pop *p, struct ec_redis *r, int64_t wall_ms);

size_t rdr_pop_size(const struct rdr_pop *p);      /* entries in the current batch */
uint64_t rdr_pop_overflow(const struct rdr_pop *p); /* requests dropped: map full */
uint64_t rdr_pop_lost(const struct rdr_pop *p);     /* entries dropped: Redis down */
uint64_t rdr_pop_sent(const struct rdr_pop *p);     /* entries handed to Redis */
uint64_t rdr_pop_misses_sent(const struct rdr_pop *p); /* fallbacks handed to Redis */

#endif
