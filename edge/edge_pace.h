/* edge_pace: the box's egress token bucket, shared by every viewer connection, so that
 * what the box sends stays within its provisioned uplink (box.uplink). Senders take tokens
 * for the bytes they hand to a socket and, when the bucket is empty, queue a waiter that is
 * called back (FIFO) once tokens are back. Does not send anything or know about HTTP. */
#ifndef ECHOS_EDGE_EDGE_PACE_H
#define ECHOS_EDGE_EDGE_PACE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct edge_pace;

/* One sender waiting for tokens: embedded in the sender's own state, initialised with
 * edge_pace_waiter_init(). The callback runs from the event loop with the waiter already
 * dequeued; it normally takes tokens and sends, or waits again. */
struct edge_pace_waiter {
	struct edge_pace_waiter *next, *prev;
	void (*cb)(void *arg);
	void *arg;
	int is_queued;
};

/* The pure bucket, for unit tests and for edge_pace itself: tokens in bytes, refilled at
 * rate_Bps up to burst. Tokens may go negative (a chunk taken on credit). */
struct edge_pace_bucket {
	uint64_t rate_Bps;          /* bytes/s; 0: unlimited */
	int64_t burst;              /* bucket capacity, bytes */
	int64_t tokens;
	int64_t last_us;            /* monotonic time of the last refill */
	uint64_t frac;              /* sub-byte remainder of refills, in byte·µs units */
};

void edge_pace_bucket_init(struct edge_pace_bucket *b, uint64_t rate_Bps, int64_t burst,
                           int64_t now_us);
void edge_pace_bucket_refill(struct edge_pace_bucket *b, int64_t now_us);
/* Microseconds until the bucket holds a positive amount of tokens (0 if it does). */
int64_t edge_pace_bucket_wait_us(const struct edge_pace_bucket *b);

/* Returns a new pacer owned by the caller (free with edge_pace_free), or NULL (no memory).
 * rate_Bps 0 makes it unlimited: edge_pace_ready() is always true and nothing waits. */
struct edge_pace *edge_pace_new(struct event_base *base, uint64_t rate_Bps);
/* Cancels nothing: every waiter must have been cancelled by its owner. NULL is a no-op. */
void edge_pace_free(struct edge_pace *p);
int edge_pace_is_limited(const struct edge_pace *p);
/* The largest piece a sender should hand over at once (bytes). */
size_t edge_pace_chunk(const struct edge_pace *p);
/* 1 when sender w may send now: tokens left and nobody queued before it (a waiter being
 * called back may send although others are still queued behind it). w may be NULL. */
int edge_pace_ready(struct edge_pace *p, const struct edge_pace_waiter *w);
/* Takes n bytes' worth of tokens (possibly going into debt). */
void edge_pace_take(struct edge_pace *p, uint64_t n);
void edge_pace_waiter_init(struct edge_pace_waiter *w, void (*cb)(void *arg), void *arg);
/* Queues w (no-op if already queued) to be called back when tokens are available. */
void edge_pace_wait(struct edge_pace *p, struct edge_pace_waiter *w);
/* Removes w from the queue if it is queued. */
void edge_pace_cancel(struct edge_pace *p, struct edge_pace_waiter *w);
/* Total bytes taken since start: the box's egress as handed to sockets. */
uint64_t edge_pace_taken(const struct edge_pace *p);

#endif
