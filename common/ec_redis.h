/* ec_redis: an asynchronous Redis link on a libevent loop (hiredis async adapter).
 * Connects in the background, reconnects with capped exponential backoff and jitter,
 * times out commands itself (hiredis 0.14 has no async timeouts) and never blocks the
 * caller: while the link is down, commands fail at once with EC_EAGAIN.
 * Does not queue across reconnects and does not retry commands: callers decide. */
#ifndef ECHOS_COMMON_EC_REDIS_H
#define ECHOS_COMMON_EC_REDIS_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct redisReply;
struct ec_redis;

enum ec_redis_state {
	EC_REDIS_DOWN = 0,   /* not connected, a reconnect is scheduled */
	EC_REDIS_CONNECTING,
	EC_REDIS_UP,
};

/* Reply callback: reply is NULL when the link dropped or the command timed out.
 * The reply is owned by hiredis and valid during the call only. */
typedef void (*ec_redis_reply_cb)(struct ec_redis *r, struct redisReply *reply, void *arg);
/* Called on every state change (for logs and metrics). */
typedef void (*ec_redis_state_cb)(struct ec_redis *r, enum ec_redis_state state, void *arg);

struct ec_redis_opts {
	const char *host;          /* copied */
	int port;
	int64_t connect_timeout_ms; /* default 1000 */
	int64_t command_timeout_ms; /* default 2000: an unanswered command drops the link */
	int64_t backoff_min_ms;     /* default 100 */
	int64_t backoff_max_ms;     /* default 5000 */
	size_t max_pending;         /* default 10000 commands in flight; more → EC_EAGAIN */
	const char *name;           /* for log lines, e.g. "redis 127.0.0.1:6379"; copied */
};

/* Returns a new link owned by the caller (free with ec_redis_free). It starts in DOWN and
 * connects from the event loop (no callback runs inside ec_redis_new). The host should
 * be a numeric address: hiredis resolves names with a blocking getaddrinfo().
 * `base` is borrowed and must outlive the link. NULL on allocation failure. */
struct ec_redis *ec_redis_new(struct event_base *base, const struct ec_redis_opts *o,
                              ec_redis_state_cb on_state, void *state_arg);
/* Disconnects; pending callbacks are called with reply NULL (each exactly once, as for
 * every other drop of the link). NULL is a no-op. Safe to call from inside any callback
 * of this link (reply or state): the memory is released when the outermost callback
 * returns; after the call, commands on r are not allowed. */
void ec_redis_free(struct ec_redis *r);

enum ec_redis_state ec_redis_state(const struct ec_redis *r);
static inline int ec_redis_is_up(const struct ec_redis *r) { return ec_redis_state(r) == EC_REDIS_UP; }

/* Sends a command (printf-style as redisAsyncCommand / argv form). cb may be NULL.
 * Returns 0 if sent, EC_EAGAIN if the link is down or too many are pending, EC_EINVAL. */
int ec_redis_command(struct ec_redis *r, ec_redis_reply_cb cb, void *arg, const char *fmt, ...);
int ec_redis_commandv(struct ec_redis *r, ec_redis_reply_cb cb, void *arg, int argc,
                      const char **argv, const size_t *argvlen);
/* Sends one command the caller wrote in RESP itself (resp[0..len), copied), for a command
 * sent thousands of times with most of its text fixed. Same returns. */
int ec_redis_command_resp(struct ec_redis *r, ec_redis_reply_cb cb, void *arg,
                          const char *resp, size_t len);
/* RESP writers for ec_redis_command_resp: an array header "*<n>\r\n", and a bulk string
 * "$<len>\r\n<bytes>\r\n" (at most len + EC_REDIS_RESP_OVERHEAD bytes). Each returns the
 * end of what it wrote at d; the caller made room. */
#define EC_REDIS_RESP_OVERHEAD 26
char *ec_redis_put_array(char *d, size_t n);
char *ec_redis_put_bulk(char *d, const char *s, size_t len);

/* Why the link last went down ("connection refused", "command timed out after 2000ms"),
 * and in how many ms the next attempt is due (while DOWN), for the caller's log line.
 * With on_state == NULL, ec_redis logs state changes itself. */
const char *ec_redis_last_error(const struct ec_redis *r);
int64_t ec_redis_retry_in_ms(const struct ec_redis *r);
/* The link's name for log lines ("redis 127.0.0.1:6379" unless opts->name was given). */
const char *ec_redis_name(const struct ec_redis *r);

/* Counters for metrics. */
uint64_t ec_redis_dropped(const struct ec_redis *r);    /* commands refused or lost */
uint64_t ec_redis_reconnects(const struct ec_redis *r);

/* Parses "host:port" (or "[v6]:port") into host and port. Returns 0 or EC_EINVAL. */
int ec_addr_split(const char *addr, char *host, size_t hostlen, int *port);

#endif
