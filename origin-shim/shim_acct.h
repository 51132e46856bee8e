/* shim_acct: what the shim served, by kind (box fill, box prefetch, client fallback):
 * Prometheus counters, and deltas a flusher thread adds to Redis every second
 * (docs/redis.md, "Accounting"), also per service and, for fallbacks, per viewer region.
 * A Redis outage keeps the deltas; nothing is lost.
 * Does not decide a request's kind or status: shim_serve tells it. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_ACCT_H
#define ECHOS_ORIGIN_SHIM_SHIM_ACCT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ec_metrics;
struct ec_svc_map;
struct ec_topo;

enum shim_kind {
	SHIM_KIND_FALLBACK = 0, /* a viewer the redirector sent to the origin */
	SHIM_KIND_FILL,         /* a box filling a miss ("Echos-Fill: <box>") */
	SHIM_KIND_PREFETCH,     /* a box prefetching ("Echos-Fill-Kind: prefetch") */
	SHIM_KIND_N_
};

struct shim_acct;

/* Registers the series in m and, if redis_addr is not empty, starts the flusher thread.
 * Borrows m, services (path prefix -> service) and topo (viewer address -> region, NULL:
 * every viewer is in region "_"): all must outlive the result. Returns a new object owned
 * by the caller (free with shim_acct_free) or NULL with the reason in err. */
struct shim_acct *shim_acct_new(struct ec_metrics *m, const char *redis_addr,
                                const struct ec_svc_map *services, const struct ec_topo *topo,
                                char *err, size_t errlen);

/* Counts one response: its status and the body bytes queued (0 for HEAD), under the
 * service of target ("/path?query", borrowed for the call) and, for a fallback, the
 * region of the viewer at client (NULL: region "_"). Safe from any thread; takes a
 * short lock, never waits on I/O. */
void shim_acct_count(struct shim_acct *a, enum shim_kind kind, unsigned status,
                     uint64_t body_bytes, const char *target, const struct sockaddr *client);

/* Stops the flusher after one last flush attempt, frees a. NULL is a no-op. */
void shim_acct_free(struct shim_acct *a);

const char *shim_kind_name(enum shim_kind kind);

#endif
