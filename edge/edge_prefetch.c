/* edge_prefetch: background fills of what the control plane wants this box to hold.
 * Every prefetch.interval it reads echos:assign:{<box>} (a set of object paths, written by
 * echos-policy); when the box has no assignment, the region's most requested objects of the
 * last prefetch.window minutes (echos:pop:{<region>}:m:<minute>, summed). Missing objects
 * are then filled one at a time through edge_fill, received at most at prefetch.bps.
 * Popularity prefetches never evict (they are skipped unless they fit in the free space);
 * assigned ones may. Paused while the box drains. Owns the candidate list and its timers. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "edge.h"

#define PREFETCH_MAGIC 0x45505246u  /* "EPRF" */
#define CAND_MAX 10000               /* candidates kept per refresh */
#define RETRY_SLOTS 256              /* objects that failed or did not fit, remembered... */
#define RETRY_AFTER_MS 60000         /* ...for this long */

struct pf_cand {
	char *path;
	double score;                /* popularity (sum of recent minutes); 0 for assignments */
};

struct pf_retry {
	uint64_t hash;               /* of the path; 0: free slot */
	int64_t until_ms;            /* monotonic */
};

/* One popularity read in flight: a reply per minute bucket. */
struct pf_pop_query {
	struct edge_prefetch *p;
	int pending;
	struct pf_cand *v;
	size_t n, cap;
};

struct edge_prefetch {
	unsigned magic;
	struct edge_server *srv;     /* borrowed */
	struct event *ev_tick;       /* persistent, prefetch.interval */
	struct event *ev_next;       /* deferred: start the next fill */
	struct pf_cand *cand;        /* the current list, best first */
	size_t n_cand, i_cand;
	int cand_may_evict;          /* assignments may evict, popularity may not */
	int is_querying;             /* Redis replies pending */
	int is_running;              /* one fill in flight */
	struct pf_retry retry[RETRY_SLOTS];
	struct pf_pop_query *query;  /* in flight, or NULL; owned jointly with its replies */
};

static void prefetch_next(struct edge_prefetch *p);

/* --- candidates ----------------------------------------------------------------------- */

static uint64_t path_hash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a: only to remember recent failures */
	for (size_t i = 0; i < n; i++)
		h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
	return h ? h : 1;
}

static int retry_blocked(struct edge_prefetch *p, const char *path, size_t n, int64_t now)
{
	uint64_t h = path_hash(path, n);
	struct pf_retry *r = &p->retry[h % RETRY_SLOTS];
	return r->hash == h && r->until_ms > now;
}

static void retry_remember(struct edge_prefetch *p, const char *path, size_t n)
{
	uint64_t h = path_hash(path, n);
	p->retry[h % RETRY_SLOTS] = (struct pf_retry){ h, ec_now_ms() + RETRY_AFTER_MS };
}

static void cand_free(struct pf_cand *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].path);
	free(v);
}

/* Takes v (n entries): replaces the current list. */
static void cand_set(struct edge_prefetch *p, struct pf_cand *v, size_t n, int may_evict)
{
	cand_free(p->cand, p->n_cand);
	p->cand = v;
	p->n_cand = n;
	p->i_cand = 0;
	p->cand_may_evict = may_evict;
	prefetch_next(p);
}

/* Adds (or, for popularity, sums into) a candidate; refuses malformed paths. */
static void cand_add(struct pf_cand **v, size_t *n, size_t *cap, const char *s, size_t len,
                     double score, int sum)
{
	char *copy;

	if (edge_serve_check_path(s, len) != NULL)
		return; /* never fill a path a viewer could not ask for */
	if (sum) {
		for (size_t i = 0; i < *n; i++)
			if (strlen((*v)[i].path) == len && memcmp((*v)[i].path, s, len) == 0) {
				(*v)[i].score += score;
				return;
			}
	}
	if (*n >= CAND_MAX)
		return;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct pf_cand *nv = realloc(*v, nc * sizeof *nv);
		if (!nv)
			return;
		*v = nv;
		*cap = nc;
	}
	copy = malloc(len + 1);
	if (!copy)
		return;
	memcpy(copy, s, len);
	copy[len] = '\0';
	(*v)[(*n)++] = (struct pf_cand){ copy, score };
}

static int cmp_score(const void *a, const void *b)
{
	const struct pf_cand *x = a, *y = b;
	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return strcmp(x->path, y->path); /* stable order between boxes and runs */
}

/* --- running fills ---------------------------------------------------------------------- */

static void on_fill_done(void *arg, int result)
{
	struct edge_prefetch *p = arg;

	EC_ASSERT(p->magic == PREFETCH_MAGIC);
	p->is_running = 0;
	/* the fill is still being torn down: start the next one from the loop */
	event_active(p->ev_next, EV_TIMEOUT, 0);
	(void)result;
}

static void prefetch_next(struct edge_prefetch *p)
{
	struct edge_server *srv = p->srv;
	int64_t now = ec_now_ms();

	if (p->is_running || edge_hb_is_draining(srv->hb))
		return;
	while (p->i_cand < p->n_cand) {
		const char *path = p->cand[p->i_cand].path;
		size_t len = strlen(path);
		int rc;

		if (edge_store_has(srv->store, path, len) ||
		    edge_fill_inflight_for(srv->fills, path, len) || retry_blocked(p, path, len, now)) {
			p->i_cand++;
			continue;
		}
		rc = edge_fill_prefetch(srv->fills, path, len, p->cand_may_evict,
		                        srv->conf.prefetch_bps, on_fill_done, p);
		if (rc == EC_EAGAIN)
			return; /* fills are busy: the next tick tries again */
		p->i_cand++;
		if (rc != 0)
			continue;
		/* remembered now so that a failure is not retried at once; a success no longer
		 * matters (the object is then in the store) */
		retry_remember(p, path, len);
		p->is_running = 1;
		ec_log_debug("prefetch %s: started (%s, at most %" PRIu64 " bits/s)", path,
		             p->cand_may_evict ? "assigned" : "popular", srv->conf.prefetch_bps);
		return;
	}
}

static void on_next(evutil_socket_t fd, short what, void *arg)
{
	prefetch_next(arg);
}

/* --- reading Redis ---------------------------------------------------------------------- */

static void pop_query_end(struct pf_pop_query *q)
{
	struct edge_prefetch *p = q->p;

	if (p) {
		p->query = NULL;
		p->is_querying = 0;
		if (q->n)
			qsort(q->v, q->n, sizeof *q->v, cmp_score);
		cand_set(p, q->v, q->n, 0);
		q->v = NULL;
		q->n = 0;
	}
	cand_free(q->v, q->n);
	free(q);
}

static void on_pop_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct pf_pop_query *q = arg;

	if (q->p && reply && reply->type == REDIS_REPLY_ARRAY) {
		/* member, score, member, score, ... */
		for (size_t i = 0; i + 1 < reply->elements; i += 2) {
			const struct redisReply *m = reply->element[i], *sc = reply->element[i + 1];
			double score;
			if (m->type != REDIS_REPLY_STRING || sc->type != REDIS_REPLY_STRING)
				continue;
			score = strtod(sc->str, NULL);
			if (score > 0)
				cand_add(&q->v, &q->n, &q->cap, m->str, m->len, score, 1);
		}
	}
	if (--q->pending == 0)
		pop_query_end(q);
}

/* No assignment: the region's popular objects of the last prefetch.window minutes. */
static void prefetch_read_popularity(struct edge_prefetch *p)
{
	struct edge_server *srv = p->srv;
	int64_t minute = ec_wall_ms() / 60000;
	int64_t minutes = srv->conf.prefetch_window_ms / 60000;
	struct pf_pop_query *q;
	char key[300];

	if (!srv->conf.box_region[0]) {
		cand_set(p, NULL, 0, 0);
		p->is_querying = 0;
		return;
	}
	q = calloc(1, sizeof *q);
	if (!q) {
		p->is_querying = 0;
		return;
	}
	q->p = p;
	q->pending = 1; /* held by this function until every command is sent */
	p->query = q;
	for (int64_t m = minute; m > minute - minutes; m--) {
		snprintf(key, sizeof key, "echos:pop:{%s}:m:%" PRId64, srv->conf.box_region, m);
		if (ec_redis_command(srv->redis, on_pop_reply, q, "ZREVRANGE %s 0 %lld WITHSCORES",
		                     key, (long long)srv->conf.prefetch_top - 1) == 0)
			q->pending++;
	}
	if (--q->pending == 0)
		pop_query_end(q);
}

static void on_assign_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct edge_prefetch *p = arg;
	struct pf_cand *v = NULL;
	size_t n = 0, cap = 0;

	if (!reply || (reply->type != REDIS_REPLY_ARRAY)) {
		p->is_querying = 0; /* link dropped or wrong type: try again at the next tick */
		return;
	}
	if (reply->elements == 0) {
		prefetch_read_popularity(p);
		return;
	}
	for (size_t i = 0; i < reply->elements; i++) {
		const struct redisReply *m = reply->element[i];
		if (m->type == REDIS_REPLY_STRING)
			cand_add(&v, &n, &cap, m->str, m->len, 0, 0);
	}
	if (n)
		qsort(v, n, sizeof *v, cmp_score); /* same order on every read */
	p->is_querying = 0;
	cand_set(p, v, n, 1);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct edge_prefetch *p = arg;
	struct edge_server *srv = p->srv;
	char key[128];

	if (p->is_querying || !ec_redis_is_up(srv->redis) || edge_hb_is_draining(srv->hb))
		return;
	snprintf(key, sizeof key, "echos:assign:{%s}", srv->conf.box_id);
	if (ec_redis_command(srv->redis, on_assign_reply, p, "SMEMBERS %s", key) == 0)
		p->is_querying = 1;
}

/* --- lifetime --------------------------------------------------------------------------- */

struct edge_prefetch *edge_prefetch_new(struct edge_server *srv)
{
	struct edge_prefetch *p = calloc(1, sizeof *p);
	struct timeval tv;

	if (!p)
		return NULL;
	p->magic = PREFETCH_MAGIC;
	p->srv = srv;
	p->ev_tick = event_new(srv->base, -1, EV_PERSIST, on_tick, p);
	p->ev_next = event_new(srv->base, -1, 0, on_next, p);
	tv.tv_sec = srv->conf.prefetch_interval_ms / 1000;
	tv.tv_usec = (srv->conf.prefetch_interval_ms % 1000) * 1000;
	if (!p->ev_tick || !p->ev_next || event_add(p->ev_tick, &tv) != 0) {
		edge_prefetch_free(p);
		return NULL;
	}
	return p;
}

/* Must be called after the Redis link is freed (its pending replies call back here with
 * NULL) and after the fills (a running prefetch then ends without calling back). */
void edge_prefetch_free(struct edge_prefetch *p)
{
	if (!p)
		return;
	EC_ASSERT(p->magic == PREFETCH_MAGIC);
	if (p->query)
		p->query->p = NULL;
	if (p->ev_tick)
		event_free(p->ev_tick);
	if (p->ev_next)
		event_free(p->ev_next);
	cand_free(p->cand, p->n_cand);
	p->magic = 0;
	free(p);
}
