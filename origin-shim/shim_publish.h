/* shim_publish: the publish API's back end: the bearer-token check, and one thread that
 * writes accepted announcements into Redis (docs/redis.md, "Publish announcements") with
 * a synchronous hiredis link and short timeouts, so no HTTP thread ever waits on Redis.
 * Does not parse requests (shim_pubreq) or answer them (shim_serve); owns the thread,
 * its queue and its Redis connection. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_PUBLISH_H
#define ECHOS_ORIGIN_SHIM_SHIM_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "shim_pubreq.h"

struct ec_metrics;
struct shim_publish;
struct shim_pub_job;

/* Called once from the publish thread when the job is finished (or refused at shutdown):
 * the job is the caller's again and the thread does not touch it after this call begins. */
typedef void (*shim_pub_done_fn)(struct shim_pub_job *job);

/* Embedded in the caller's request object. */
struct shim_pub_job {
	const struct shim_pubreq *req;  /* borrowed until done */
	shim_pub_done_fn done;
	int result;                     /* 0 written; EC_EAGAIN Redis unreachable or
	                                 * refused; EC_ETIMEOUT waited too long in the
	                                 * queue; EC_ESTATE shutting down */
	char reason[256];               /* why, when result != 0 */
	int64_t queued_ms;              /* private to shim_publish.c */
	struct shim_pub_job *next_;     /* private to shim_publish.c */
};

/* Outcomes of publish requests, for echos_shim_publish_total{result}. */
enum shim_pub_result {
	SHIM_PUB_ACCEPTED = 0,   /* 202 */
	SHIM_PUB_BAD_REQUEST,    /* 400: body refused */
	SHIM_PUB_UNAUTHORIZED,   /* 401: token missing or wrong */
	SHIM_PUB_METHOD,         /* 405 */
	SHIM_PUB_TOO_LARGE,      /* 413 */
	SHIM_PUB_DISABLED,       /* 404: publish.token is empty */
	SHIM_PUB_UNAVAILABLE,    /* 503: Redis down, queue full, shutting down */
	SHIM_PUB_RESULT_N_
};

/* Registers the series in m (borrowed; must outlive the result). With a non-empty token
 * (copied; its SHA-256 is kept, not the text) starts the thread that talks to redis_addr
 * ("host:port", must not be empty then). With an empty token the API is disabled and no
 * thread runs. Returns a new object owned by the caller (free with shim_publish_free) or
 * NULL with the reason in err. */
struct shim_publish *shim_publish_new(struct ec_metrics *m, const char *token,
                                      const char *redis_addr, char *err, size_t errlen);

int shim_publish_is_enabled(const struct shim_publish *p);

/* Checks an Authorization header value (NULL when absent) for "Bearer <token>", in time
 * independent of where a wrong token differs. Returns 1 if it matches, else 0. */
int shim_publish_auth(const struct shim_publish *p, const char *authorization);

/* Queues job (borrowed until its done callback). Returns 0, EC_EFULL when too many
 * announcements wait, EC_ESTATE when disabled or stopping; then no callback is called. */
int shim_publish_submit(struct shim_publish *p, struct shim_pub_job *job);

/* Counts one answered publish request. Safe from any thread. */
void shim_publish_count(struct shim_publish *p, enum shim_pub_result result);

/* Stops taking jobs, finishes the queued ones with EC_ESTATE and joins the thread: every
 * done callback has returned when this returns. Idempotent. */
void shim_publish_stop(struct shim_publish *p);

/* Stops if needed and frees p. NULL is a no-op. */
void shim_publish_free(struct shim_publish *p);

/* Returns 1 if token is acceptable for publish.token: 16-512 characters of the RFC 6750
 * token68 alphabet ([A-Za-z0-9-._~+/], then '=' padding only). */
int shim_publish_token_ok(const char *token);

#endif
