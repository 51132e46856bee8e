/* shim_serve: the client-facing listeners (libmicrohttpd): checks each request, hands the
 * upstream fetch to the worker pool, and answers from the spooled object with digest,
 * ETag, ranges and CORS; routes POST /_echos/publish to the publisher. Does not fetch
 * (shim_fetch), count into Redis (shim_acct) or write announcements (shim_publish). */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_SERVE_H
#define ECHOS_ORIGIN_SHIM_SHIM_SERVE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr_storage;
struct shim_conf;
struct shim_pool;
struct shim_acct;
struct shim_publish;
struct ec_metrics;
struct shim_serve;

/* Starts listening on conf->listen (and conf->publish_listen when set: that listener
 * serves only POST /_echos/publish). Borrows conf, pool, acct, pub and m: all must
 * outlive the result. Returns a new server owned by the caller (free with
 * shim_serve_free) or NULL with the reason in err. */
struct shim_serve *shim_serve_new(const struct shim_conf *conf, struct shim_pool *pool,
                                  struct shim_acct *acct, struct shim_publish *pub,
                                  struct ec_metrics *m, char *err, size_t errlen);

/* Stops accepting connections and waits up to timeout_ms for requests in flight to
 * finish (responses sent). Returns how many are still in flight. */
unsigned shim_serve_drain(struct shim_serve *s, int64_t timeout_ms);

/* Requests between their request line and their completion. */
unsigned shim_serve_inflight(const struct shim_serve *s);

/* Closes every connection and frees s. The pool and the publisher must be stopped first:
 * no connection may still wait for a fetch or a publish write. NULL is a no-op. */
void shim_serve_free(struct shim_serve *s);

/* libmicrohttpd's error logger for every daemon of the shim: one ec_log line each. */
void shim_serve_mhd_log(void *cls, const char *fmt, va_list ap);

/* Resolves "host:port" into ss for a listener. Returns 0 or EC_EINVAL with err set. */
int shim_serve_resolve(const char *addr, struct sockaddr_storage *ss, char *err,
                       size_t errlen);

#endif
