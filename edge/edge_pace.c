/* edge_pace: a token bucket (pure arithmetic, clock passed in) and, around it, the FIFO of
 * senders waiting for tokens with one libevent timer that wakes them when the bucket
 * refills. Owns the bucket and the timer; the waiters belong to their senders. */
#include <stdlib.h>

#include <event2/event.h>

#include "ec_err.h"
#include "ec_time.h"
#include "edge_pace.h"

#define PACE_MAGIC 0x45504143u   /* "EPAC" */
#define PACE_BURST_MS 20         /* bucket depth: 20 ms of the rate... */
#define PACE_BURST_MIN 65536     /* ...but at least one chunk */
#define PACE_CHUNK_MAX 65536

struct edge_pace {
	unsigned magic;
	struct edge_pace_bucket b;
	struct event *ev_timer;
	int is_armed;
	struct edge_pace_waiter *head, *tail;
	const struct edge_pace_waiter *waking; /* the waiter being called back */
	uint64_t taken;
};

/* --- the bucket --------------------------------------------------------------------- */

void edge_pace_bucket_init(struct edge_pace_bucket *b, uint64_t rate_Bps, int64_t burst,
                           int64_t now_us)
{
	b->rate_Bps = rate_Bps;
	b->burst = burst;
	b->tokens = burst;
	b->last_us = now_us;
	b->frac = 0;
}

void edge_pace_bucket_refill(struct edge_pace_bucket *b, int64_t now_us)
{
	uint64_t dt, add;

	if (now_us <= b->last_us || b->rate_Bps == 0)
		return;
	dt = (uint64_t)(now_us - b->last_us);
	b->last_us = now_us;
	if (dt > 10 * 1000000ull)
		dt = 10 * 1000000ull; /* long idle: the bucket is full anyway; no overflow */
	/* rate·dt in byte·µs, remainder kept so slow rates do not round to zero */
	b->frac += b->rate_Bps * dt;
	add = b->frac / 1000000u;
	b->frac %= 1000000u;
	if (b->tokens + (int64_t)add >= b->burst) {
		b->tokens = b->burst;
		b->frac = 0;
	} else {
		b->tokens += (int64_t)add;
	}
}

int64_t edge_pace_bucket_wait_us(const struct edge_pace_bucket *b)
{
	uint64_t need;

	if (b->tokens > 0 || b->rate_Bps == 0)
		return 0;
	need = (uint64_t)(1 - b->tokens) * 1000000u;
	need = need > b->frac ? need - b->frac : 0;
	return (int64_t)((need + b->rate_Bps - 1) / b->rate_Bps);
}

/* --- the pacer ---------------------------------------------------------------------- */

static void pace_arm(struct edge_pace *p)
{
	int64_t us = edge_pace_bucket_wait_us(&p->b);
	struct timeval tv;

	if (p->is_armed)
		return;
	if (us < 1000)
		us = 1000; /* no busy loop: wake at most every millisecond */
	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	if (evtimer_add(p->ev_timer, &tv) == 0)
		p->is_armed = 1;
}

static void on_pace_timer(evutil_socket_t fd, short what, void *arg)
{
	struct edge_pace *p = arg;

	p->is_armed = 0;
	edge_pace_bucket_refill(&p->b, ec_now_us());
	/* wake waiters in order while there are tokens; each takes its share synchronously */
	while (p->head && p->b.tokens > 0) {
		struct edge_pace_waiter *w = p->head;
		edge_pace_cancel(p, w);
		p->waking = w;
		w->cb(w->arg);
		p->waking = NULL;
	}
	if (p->head)
		pace_arm(p);
}

struct edge_pace *edge_pace_new(struct event_base *base, uint64_t rate_Bps)
{
	struct edge_pace *p = calloc(1, sizeof *p);
	int64_t burst;

	if (!p)
		return NULL;
	p->magic = PACE_MAGIC;
	burst = (int64_t)(rate_Bps / 1000 * PACE_BURST_MS);
	if (burst < PACE_BURST_MIN)
		burst = PACE_BURST_MIN;
	edge_pace_bucket_init(&p->b, rate_Bps, burst, ec_now_us());
	p->ev_timer = evtimer_new(base, on_pace_timer, p);
	if (!p->ev_timer) {
		free(p);
		return NULL;
	}
	return p;
}

void edge_pace_free(struct edge_pace *p)
{
	if (!p)
		return;
	EC_ASSERT(p->magic == PACE_MAGIC && !p->head);
	event_free(p->ev_timer);
	p->magic = 0;
	free(p);
}

int edge_pace_is_limited(const struct edge_pace *p)
{
	return p && p->b.rate_Bps > 0;
}

size_t edge_pace_chunk(const struct edge_pace *p)
{
	if (!edge_pace_is_limited(p) || p->b.burst >= PACE_CHUNK_MAX)
		return PACE_CHUNK_MAX;
	return (size_t)p->b.burst;
}

int edge_pace_ready(struct edge_pace *p, const struct edge_pace_waiter *w)
{
	if (!edge_pace_is_limited(p))
		return 1;
	if (p->head && (!w || p->waking != w))
		return 0;
	edge_pace_bucket_refill(&p->b, ec_now_us());
	return p->b.tokens > 0;
}

void edge_pace_take(struct edge_pace *p, uint64_t n)
{
	if (!p)
		return;
	p->taken += n;
	if (p->b.rate_Bps > 0)
		p->b.tokens -= (int64_t)n;
}

uint64_t edge_pace_taken(const struct edge_pace *p)
{
	return p ? p->taken : 0;
}

void edge_pace_waiter_init(struct edge_pace_waiter *w, void (*cb)(void *arg), void *arg)
{
	w->next = w->prev = NULL;
	w->cb = cb;
	w->arg = arg;
	w->is_queued = 0;
}

void edge_pace_wait(struct edge_pace *p, struct edge_pace_waiter *w)
{
	EC_ASSERT(p && p->magic == PACE_MAGIC);
	if (w->is_queued)
		return;
	w->is_queued = 1;
	w->next = NULL;
	w->prev = p->tail;
	if (p->tail)
		p->tail->next = w;
	else
		p->head = w;
	p->tail = w;
	pace_arm(p);
}

void edge_pace_cancel(struct edge_pace *p, struct edge_pace_waiter *w)
{
	if (!p || !w->is_queued)
		return;
	if (w->prev)
		w->prev->next = w->next;
	else
		p->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		p->tail = w->prev;
	w->next = w->prev = NULL;
	w->is_queued = 0;
}
