/* shim_pool: the upstream fetch workers and the bounded queue that feeds them.
 * Each worker owns one fetcher (one libcurl easy handle, so upstream keep-alive is per
 * worker). Knows nothing of HTTP clients: a job is two callbacks. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_POOL_H
#define ECHOS_ORIGIN_SHIM_SHIM_POOL_H

#include <stddef.h>

#include "shim_fetch.h"

struct shim_job;
/* Runs in a worker thread with that worker's fetcher. */
typedef void (*shim_job_run_fn)(struct shim_job *job, struct shim_fetcher *f);
/* Called once after run (or instead of it, never): the job is the caller's again and the
 * pool does not touch it after this call begins. */
typedef void (*shim_job_done_fn)(struct shim_job *job);

/* Embedded in the caller's request object; the pool links it while queued. */
struct shim_job {
	shim_job_run_fn run;
	shim_job_done_fn done;
	struct shim_job *next_; /* private to shim_pool.c */
};

struct shim_pool;

/* Starts `workers` threads, each with its own fetcher over `opts` (borrowed, must outlive
 * the pool). At most `max_queued` jobs wait. Returns a new pool owned by the caller
 * (free with shim_pool_free) or NULL, with the reason in err. */
struct shim_pool *shim_pool_new(size_t workers, size_t max_queued,
                                struct shim_fetch_opts *opts, char *err, size_t errlen);

/* Queues job (borrowed until its done callback). Returns 0, EC_EFULL when the queue is
 * full or EC_ESTATE when the pool is stopping; then no callback is called. */
int shim_pool_submit(struct shim_pool *p, struct shim_job *job);

/* Jobs waiting plus jobs running. */
size_t shim_pool_busy(struct shim_pool *p);

/* Stops taking jobs (submit answers EC_ESTATE from now on), runs the queued ones to
 * completion (they see opts->is_stopping if the caller set it) and joins the workers.
 * Every job's done callback has returned when this returns. Idempotent. */
void shim_pool_stop(struct shim_pool *p);

/* Stops the pool if needed and frees it. NULL is a no-op. */
void shim_pool_free(struct shim_pool *p);

#endif
