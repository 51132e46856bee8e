/* shim_pool: fixed worker threads pulling fetch jobs from one bounded FIFO.
 * A worker blocks in libcurl for the whole transfer, which is why fetching is not done
 * on the libmicrohttpd threads. Owns the threads and their fetchers. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "shim_pool.h"

#define POOL_MAGIC 0x6b1e93d2u

struct pool_worker {
	struct shim_pool *pool;
	struct shim_fetcher *fetcher; /* owned */
	pthread_t thread;
	int is_started;
};

struct shim_pool {
	unsigned magic;
	pthread_mutex_t lock;
	pthread_cond_t has_work;
	struct shim_job *head, *tail; /* FIFO, under lock */
	size_t queued, running;       /* under lock */
	size_t max_queued;
	int is_stopping;              /* under lock */
	size_t nworkers;
	struct pool_worker *workers;  /* owned array */
};

static void *pool_worker_main(void *arg)
{
	struct pool_worker *w = arg;
	struct shim_pool *p = w->pool;
	struct shim_job *job;

	for (;;) {
		pthread_mutex_lock(&p->lock);
		while (p->head == NULL && !p->is_stopping)
			pthread_cond_wait(&p->has_work, &p->lock);
		job = p->head;
		if (job == NULL) {              /* stopping and nothing left */
			pthread_mutex_unlock(&p->lock);
			return NULL;
		}
		p->head = job->next_;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		p->running++;
		pthread_mutex_unlock(&p->lock);

		job->next_ = NULL;
		job->run(job, w->fetcher);
		pthread_mutex_lock(&p->lock);
		p->running--;
		pthread_mutex_unlock(&p->lock);
		job->done(job);  /* last touch: the job may be freed by now */
	}
}

struct shim_pool *shim_pool_new(size_t workers, size_t max_queued,
                                struct shim_fetch_opts *opts, char *err, size_t errlen)
{
	struct shim_pool *p = calloc(1, sizeof *p);
	int rc;

	if (p == NULL || (p->workers = calloc(workers, sizeof *p->workers)) == NULL) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->magic = POOL_MAGIC;
	p->max_queued = max_queued;
	p->nworkers = workers;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->has_work, NULL);
	for (size_t i = 0; i < workers; i++) {
		struct pool_worker *w = &p->workers[i];
		w->pool = p;
		w->fetcher = shim_fetcher_new(opts);
		if (w->fetcher == NULL) {
			snprintf(err, errlen, "cannot create upstream fetcher: out of memory");
			shim_pool_free(p);
			return NULL;
		}
		rc = pthread_create(&w->thread, NULL, pool_worker_main, w);
		if (rc != 0) {
			snprintf(err, errlen, "cannot start fetch worker: %s", strerror(rc));
			shim_pool_free(p);
			return NULL;
		}
		w->is_started = 1;
	}
	return p;
}

int shim_pool_submit(struct shim_pool *p, struct shim_job *job)
{
	int rc = 0;

	EC_ASSERT(p->magic == POOL_MAGIC);
	pthread_mutex_lock(&p->lock);
	if (p->is_stopping) {
		rc = EC_ESTATE;
	} else if (p->queued >= p->max_queued) {
		rc = EC_EFULL;
	} else {
		job->next_ = NULL;
		if (p->tail != NULL)
			p->tail->next_ = job;
		else
			p->head = job;
		p->tail = job;
		p->queued++;
		pthread_cond_signal(&p->has_work);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

size_t shim_pool_busy(struct shim_pool *p)
{
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->queued + p->running;
	pthread_mutex_unlock(&p->lock);
	return n;
}

void shim_pool_stop(struct shim_pool *p)
{
	EC_ASSERT(p->magic == POOL_MAGIC);
	pthread_mutex_lock(&p->lock);
	p->is_stopping = 1;
	pthread_cond_broadcast(&p->has_work);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->nworkers; i++) {
		if (p->workers[i].is_started)
			pthread_join(p->workers[i].thread, NULL);
		p->workers[i].is_started = 0;
	}
	EC_ASSERT(p->head == NULL);
}

void shim_pool_free(struct shim_pool *p)
{
	if (p == NULL)
		return;
	shim_pool_stop(p);
	for (size_t i = 0; i < p->nworkers; i++)
		shim_fetcher_free(p->workers[i].fetcher);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->has_work);
	free(p->workers);
	p->magic = 0;
	free(p);
}
