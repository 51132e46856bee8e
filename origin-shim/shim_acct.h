/* shim_acct: what the shim served, by kind (box fill, box prefetch, client fallback):
 * Prometheus counters, and deltas a flusher thread adds to Redis every second
 * (docs/redis.md, "Accounting"). A Redis outage keeps the deltas; nothing is lost.
 * Does not decide a request's kind or status: shim_serve tells it. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_ACCT_H
#define ECHOS_ORIGIN_SHIM_SHIM_ACCT_H

#include <stddef.h>
#include <stdint.h>

struct ec_metrics;

enum shim_kind {
	SHIM_KIND_FALLBACK = 0, /* a viewer the redirector sent to the origin */
	SHIM_KIND_FILL,         /* a box filling a miss ("Echos-Fill: <box>") */
	SHIM_KIND_PREFETCH,     /* a box prefetching ("Echos-Fill-Kind: prefetch") */
	SHIM_KIND_N_
};

struct shim_acct;

/* Registers the series in m (borrowed; must outlive the result) and, if redis_addr is
 * not empty, starts the flusher thread. Returns a new object owned by the caller (free
 * with shim_acct_free) or NULL with the reason in err. */
struct shim_acct *shim_acct_new(struct ec_metrics *m, const char *redis_addr, char *err,
                                size_t errlen);

/* Counts one response: its status and the body bytes queued (0 for HEAD).
 * Safe from any thread, never blocks. */
void shim_acct_count(struct shim_acct *a, enum shim_kind kind, unsigned status,
                     uint64_t body_bytes);

/* Stops the flusher after one last flush attempt, frees a. NULL is a no-op. */
void shim_acct_free(struct shim_acct *a);

const char *shim_kind_name(enum shim_kind kind);

#endif
