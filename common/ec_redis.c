/* ec_redis: one asynchronous Redis link on a libevent loop (hiredis 0.14 async API).
 * Adds what hiredis 0.14 lacks: a connect deadline, a command deadline (the oldest
 * unanswered command older than command_timeout_ms drops the link), reconnection with
 * capped exponential backoff and jitter, and a bound on commands in flight.
 * Does not queue while down or retry commands: callers decide. Owns its hiredis context. */
#include <errno.h>
#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "ec_err.h"
#include "ec_fmt.h"
#include "ec_log.h"
#include "ec_redis.h"
#include "ec_time.h"

#define REDIS_MAGIC 0x72646973u  /* "rdis" */

/* One command in flight; hiredis holds it as privdata until it calls on_reply. */
struct redis_cmd {
	struct ec_redis *r;
	ec_redis_reply_cb cb;   /* may be NULL */
	void *arg;
	int64_t sent_ms;        /* monotonic */
	struct redis_cmd *prev, *next;
};

struct ec_redis {
	unsigned magic;
	struct event_base *base;      /* borrowed */
	char *host;
	int port;
	char *name;
	int64_t connect_timeout_ms;
	int64_t command_timeout_ms;
	int64_t backoff_min_ms;
	int64_t backoff_max_ms;
	size_t max_pending;
	ec_redis_state_cb on_state;
	void *state_arg;

	redisAsyncContext *ac;        /* NULL while DOWN; owned (hiredis frees it on errors) */
	int is_ac_dying;              /* hiredis is tearing ac down: touch nothing */
	enum ec_redis_state state;
	enum ec_redis_state notified; /* last state given to on_state */
	struct event *ev_retry;       /* next connect attempt */
	struct event *ev_connect;     /* connect deadline */
	struct event *ev_command;     /* deadline of the oldest command */
	struct event *ev_notify;      /* UP is announced from the loop, not from hiredis */

	struct redis_cmd *head, *tail;  /* in flight, oldest first (Redis answers in order) */
	size_t npending;

	unsigned attempts;            /* failed attempts since the last success */
	int64_t retry_in_ms;
	int has_been_up;
	int is_quiet;                 /* a failure was already logged (own logging only) */
	uint64_t dropped;
	uint64_t reconnects;
	uint64_t rng;                 /* xorshift state for the jitter */
	char last_error[160];

	int busy;                     /* depth of our callbacks on the stack */
	int is_freeing;
};

static void link_start(struct ec_redis *r);

/* ---- lifetime --------------------------------------------------------------------------- */

static void redis_destroy(struct ec_redis *r)
{
	if (r->ev_retry)
		event_free(r->ev_retry);
	if (r->ev_connect)
		event_free(r->ev_connect);
	if (r->ev_command)
		event_free(r->ev_command);
	if (r->ev_notify)
		event_free(r->ev_notify);
	free(r->host);
	free(r->name);
	r->magic = 0;
	free(r);
}

static void enter(struct ec_redis *r)
{
	EC_ASSERT(r->magic == REDIS_MAGIC);
	r->busy++;
}

/* Leaves one of our callbacks; a free requested inside it completes here once nothing
 * of ours is on the stack and hiredis holds no command of ours. Returns 1 if r is gone. */
static int leave(struct ec_redis *r)
{
	EC_ASSERT(r->busy > 0);
	if (--r->busy == 0 && r->is_freeing && r->npending == 0) {
		redis_destroy(r);
		return 1;
	}
	return 0;
}

/* ---- state ------------------------------------------------------------------------------ */

static void notify_now(struct ec_redis *r)
{
	if (r->notified == r->state || r->is_freeing)
		return;
	r->notified = r->state;
	if (r->on_state != NULL) {
		r->on_state(r, r->state, r->state_arg);
		return;
	}
	switch (r->state) {
	case EC_REDIS_UP:
		ec_log_info("%s: connected", r->name);
		r->is_quiet = 0;
		break;
	case EC_REDIS_DOWN:
		if (!r->is_quiet)
			ec_log_warn("%s: %s; retrying in %lldms", r->name, r->last_error,
			            (long long)r->retry_in_ms);
		else
			ec_log_debug("%s: %s; retrying in %lldms", r->name, r->last_error,
			             (long long)r->retry_in_ms);
		r->is_quiet = 1;
		break;
	case EC_REDIS_CONNECTING:
		ec_log_debug("%s: connecting", r->name);
		break;
	}
}

static void set_state(struct ec_redis *r, enum ec_redis_state s)
{
	r->state = s;
	/* hiredis 0.14 calls the connect callback outside its callback guard: freeing the
	 * context from there would crash it, so UP reaches the user from the loop instead */
	if (s == EC_REDIS_UP)
		event_active(r->ev_notify, EV_TIMEOUT, 0);
	else
		notify_now(r);
}

static uint64_t rng_next(struct ec_redis *r)
{
	r->rng ^= r->rng << 13;
	r->rng ^= r->rng >> 7;
	r->rng ^= r->rng << 17;
	return r->rng;
}

/* The link is gone (r->ac already released or being released by hiredis): schedule
 * the next attempt after a capped exponential backoff with jitter (half fixed, half
 * random, so that many daemons losing one Redis do not reconnect in step). */
static void link_failed(struct ec_redis *r, const char *why)
{
	int64_t delay = r->backoff_min_ms;
	unsigned i;
	struct timeval tv;

	r->ac = NULL;
	r->is_ac_dying = 0;
	evtimer_del(r->ev_connect);
	evtimer_del(r->ev_command);
	snprintf(r->last_error, sizeof r->last_error, "%s", why && *why ? why : "link lost");
	for (i = 0; i < r->attempts && delay < r->backoff_max_ms; i++)
		delay *= 2;
	if (delay > r->backoff_max_ms)
		delay = r->backoff_max_ms;
	if (delay > 1)
		delay = delay / 2 + (int64_t)(rng_next(r) % (uint64_t)(delay / 2 + 1));
	r->attempts++;
	r->retry_in_ms = delay;
	tv.tv_sec = delay / 1000;
	tv.tv_usec = (delay % 1000) * 1000;
	evtimer_add(r->ev_retry, &tv);
	set_state(r, EC_REDIS_DOWN);
}

/* We decided to drop the link (deadline passed). Pending callbacks get NULL from hiredis
 * here, synchronously. Returns with r->is_freeing set if a callback freed r. */
static void link_drop(struct ec_redis *r, const char *why)
{
	redisAsyncContext *ac = r->ac;

	r->ac = NULL;
	if (ac != NULL) {
		ac->data = NULL;   /* our connect/disconnect callbacks ignore it from now on */
		redisAsyncFree(ac);
	}
	if (!r->is_freeing)
		link_failed(r, why);
}

static void ms_to_tv(int64_t ms, struct timeval *tv)
{
	if (ms < 0)
		ms = 0;
	tv->tv_sec = ms / 1000;
	tv->tv_usec = (ms % 1000) * 1000;
}

/* ---- hiredis and libevent callbacks ------------------------------------------------------ */

static void on_connect(const redisAsyncContext *ac, int status)
{
	struct ec_redis *r = ac->data;

	if (r == NULL)
		return;
	enter(r);
	evtimer_del(r->ev_connect);
	if (status != REDIS_OK) {
		/* hiredis frees ac after this returns */
		link_failed(r, ac->errstr);
	} else {
		r->attempts = 0;
		if (r->has_been_up)
			r->reconnects++;
		r->has_been_up = 1;
		set_state(r, EC_REDIS_UP);
	}
	leave(r);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
	struct ec_redis *r = ac->data;

	if (r == NULL)
		return;
	enter(r);
	/* pending commands have had their NULL replies already; hiredis frees ac next */
	link_failed(r, status == REDIS_OK ? "connection closed" : ac->errstr);
	leave(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct redis_cmd *cmd = privdata;
	struct ec_redis *r = cmd->r;

	if (cmd->prev)
		cmd->prev->next = cmd->next;
	else
		r->head = cmd->next;
	if (cmd->next)
		cmd->next->prev = cmd->prev;
	else
		r->tail = cmd->prev;
	r->npending--;
	if (reply == NULL) {
		r->dropped++;
		if (r->ac == ac)
			r->is_ac_dying = 1;
	}
	enter(r);
	if (cmd->cb != NULL)
		cmd->cb(r, reply, cmd->arg);
	free(cmd);
	leave(r);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ec_redis *r = arg;

	enter(r);
	if (r->ac == NULL && !r->is_freeing)
		link_start(r);
	leave(r);
}

static void on_connect_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ec_redis *r = arg;
	char why[64];

	enter(r);
	if (r->state == EC_REDIS_CONNECTING && r->ac != NULL) {
		snprintf(why, sizeof why, "connect timed out after %lldms",
		         (long long)r->connect_timeout_ms);
		link_drop(r, why);
	}
	leave(r);
}

static void on_command_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ec_redis *r = arg;
	struct timeval tv;
	char why[64];
	int64_t age;

	enter(r);
	if (r->head != NULL && r->ac != NULL && !r->is_ac_dying) {
		age = ec_now_ms() - r->head->sent_ms;
		if (age >= r->command_timeout_ms) {
			snprintf(why, sizeof why, "command timed out after %lldms",
			         (long long)r->command_timeout_ms);
			link_drop(r, why);
		} else {
			ms_to_tv(r->command_timeout_ms - age, &tv);
			evtimer_add(r->ev_command, &tv);
		}
	}
	leave(r);
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
	struct ec_redis *r = arg;

	enter(r);
	notify_now(r);
	leave(r);
}

/* ---- reply objects ---------------------------------------------------------------------- */

/* hiredis's reply objects with one allocation each: a string's bytes and an array's
 * element vector follow the redisReply in the same block (hiredis allocates them apart:
 * two allocations and two frees per field of every HMGET reply of a box sync). Replies
 * reach callbacks as ordinary redisReply trees, and hiredis frees them through
 * reply_free; nothing here calls freeReplyObject on them. */
static void *reply_link(const redisReadTask *task, redisReply *r)
{
	if (task->parent) {
		redisReply *parent = task->parent->obj;

		EC_ASSERT(parent->type == REDIS_REPLY_ARRAY);
		parent->element[task->idx] = r;
	}
	return r;
}

static void *reply_string(const redisReadTask *task, char *str, size_t len)
{
	redisReply *r = malloc(sizeof *r + len + 1);

	if (!r)
		return NULL;
	memset(r, 0, sizeof *r);
	r->type = task->type;
	r->str = (char *)(r + 1);
	memcpy(r->str, str, len);
	r->str[len] = '\0';
	r->len = len;
	return reply_link(task, r);
}

static void *reply_array(const redisReadTask *task, int elements)
{
	size_t n = elements > 0 ? (size_t)elements : 0;
	redisReply *r = malloc(sizeof *r + n * sizeof *r->element);

	if (!r)
		return NULL;
	memset(r, 0, sizeof *r + n * sizeof *r->element);
	r->type = REDIS_REPLY_ARRAY;
	r->elements = n;
	r->element = n ? (redisReply **)(r + 1) : NULL;
	return reply_link(task, r);
}

static void *reply_integer(const redisReadTask *task, long long value)
{
	redisReply *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->type = REDIS_REPLY_INTEGER;
	r->integer = value;
	return reply_link(task, r);
}

static void *reply_nil(const redisReadTask *task)
{
	redisReply *r = calloc(1, sizeof *r);

	if (!r)
		return NULL;
	r->type = REDIS_REPLY_NIL;
	return reply_link(task, r);
}

static void reply_free(void *p)
{
	redisReply *r = p;

	if (!r)
		return;
	if (r->type == REDIS_REPLY_ARRAY)
		for (size_t i = 0; i < r->elements; i++)
			reply_free(r->element[i]); /* NULL for a reply cut short */
	free(r);
}

static redisReplyObjectFunctions reply_fns = {
	reply_string, reply_array, reply_integer, reply_nil, reply_free,
};

/* ---- connecting ------------------------------------------------------------------------- */

static void link_start(struct ec_redis *r)
{
	redisAsyncContext *ac;
	struct timeval tv;
	char why[sizeof r->last_error];

	r->state = EC_REDIS_CONNECTING;
	ac = redisAsyncConnect(r->host, r->port);
	if (ac == NULL) {
		link_failed(r, "out of memory");
		return;
	}
	if (ac->err) {
		/* e.g. connection refused at once on loopback */
		snprintf(why, sizeof why, "%s", ac->errstr);
		redisAsyncFree(ac);
		link_failed(r, why);
		return;
	}
	ac->data = r;
	ac->c.reader->fn = &reply_fns;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
		ac->data = NULL;
		redisAsyncFree(ac);
		link_failed(r, "cannot attach to the event loop");
		return;
	}
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
	r->ac = ac;
	r->is_ac_dying = 0;
	ms_to_tv(r->connect_timeout_ms, &tv);
	evtimer_add(r->ev_connect, &tv);
	set_state(r, EC_REDIS_CONNECTING);
}

struct ec_redis *ec_redis_new(struct event_base *base, const struct ec_redis_opts *o,
                              ec_redis_state_cb on_state, void *state_arg)
{
	struct ec_redis *r;
	struct timeval zero = { 0, 0 };
	char name[300];

	if (base == NULL || o == NULL || o->host == NULL)
		return NULL;
	r = calloc(1, sizeof *r);
	if (r == NULL)
		return NULL;
	r->magic = REDIS_MAGIC;
	r->base = base;
	r->host = strdup(o->host);
	r->port = o->port;
	if (o->name != NULL)
		snprintf(name, sizeof name, "%s", o->name);
	else if (strchr(o->host, ':') != NULL)
		snprintf(name, sizeof name, "redis [%s]:%d", o->host, o->port);
	else
		snprintf(name, sizeof name, "redis %s:%d", o->host, o->port);
	r->name = strdup(name);
	r->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 1000;
	r->command_timeout_ms = o->command_timeout_ms > 0 ? o->command_timeout_ms : 2000;
	r->backoff_min_ms = o->backoff_min_ms > 0 ? o->backoff_min_ms : 100;
	r->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 5000;
	if (r->backoff_max_ms < r->backoff_min_ms)
		r->backoff_max_ms = r->backoff_min_ms;
	r->max_pending = o->max_pending > 0 ? o->max_pending : 10000;
	r->on_state = on_state;
	r->state_arg = state_arg;
	r->state = EC_REDIS_DOWN;
	r->notified = EC_REDIS_DOWN;
	r->rng = (uint64_t)ec_now_us() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)r;
	if (r->rng == 0)
		r->rng = 0x9e3779b97f4a7c15ull;
	snprintf(r->last_error, sizeof r->last_error, "not connected yet");
	r->ev_retry = evtimer_new(base, on_retry_timer, r);
	r->ev_connect = evtimer_new(base, on_connect_timer, r);
	r->ev_command = evtimer_new(base, on_command_timer, r);
	r->ev_notify = evtimer_new(base, on_notify, r);
	if (r->host == NULL || r->name == NULL || r->ev_retry == NULL || r->ev_connect == NULL ||
	    r->ev_command == NULL || r->ev_notify == NULL) {
		redis_destroy(r);
		return NULL;
	}
	evtimer_add(r->ev_retry, &zero);
	return r;
}

void ec_redis_free(struct ec_redis *r)
{
	redisAsyncContext *ac;

	if (r == NULL)
		return;
	EC_ASSERT(r->magic == REDIS_MAGIC);
	if (r->is_freeing)
		return;
	r->is_freeing = 1;
	evtimer_del(r->ev_retry);
	evtimer_del(r->ev_connect);
	evtimer_del(r->ev_command);
	event_del(r->ev_notify);
	enter(r);
	ac = r->ac;
	r->ac = NULL;
	if (ac != NULL) {
		ac->data = NULL;
		/* inside a reply callback hiredis defers this until the callback returns;
		 * while hiredis is already tearing ac down it needs no help */
		if (!r->is_ac_dying)
			redisAsyncFree(ac);
	}
	leave(r);
}

enum ec_redis_state ec_redis_state(const struct ec_redis *r)
{
	return r != NULL ? r->state : EC_REDIS_DOWN;
}

const char *ec_redis_last_error(const struct ec_redis *r)
{
	return r->last_error;
}

int64_t ec_redis_retry_in_ms(const struct ec_redis *r)
{
	return r->retry_in_ms;
}

const char *ec_redis_name(const struct ec_redis *r)
{
	return r->name;
}

uint64_t ec_redis_dropped(const struct ec_redis *r)
{
	return r->dropped;
}

uint64_t ec_redis_reconnects(const struct ec_redis *r)
{
	return r->reconnects;
}

/* ---- commands --------------------------------------------------------------------------- */

static struct redis_cmd *cmd_begin(struct ec_redis *r, ec_redis_reply_cb cb, void *arg,
                                   int *rc)
{
	struct redis_cmd *cmd;

	EC_ASSERT(r != NULL && r->magic == REDIS_MAGIC);
	if (r->is_freeing || r->state != EC_REDIS_UP || r->ac == NULL || r->is_ac_dying ||
	    r->npending >= r->max_pending) {
		r->dropped++;
		*rc = EC_EAGAIN;
		return NULL;
	}
	cmd = calloc(1, sizeof *cmd);
	if (cmd == NULL) {
		r->dropped++;
		*rc = EC_ENOMEM;
		return NULL;
	}
	cmd->r = r;
	cmd->cb = cb;
	cmd->arg = arg;
	cmd->sent_ms = ec_now_ms();
	return cmd;
}

static int cmd_commit(struct ec_redis *r, struct redis_cmd *cmd, int hiredis_rc)
{
	struct timeval tv;

	if (hiredis_rc != REDIS_OK) {
		free(cmd);
		r->dropped++;
		if (r->ac->c.flags & (REDIS_DISCONNECTING | REDIS_FREEING))
			return EC_EAGAIN;
		return EC_EINVAL;
	}
	cmd->prev = r->tail;
	if (r->tail)
		r->tail->next = cmd;
	else
		r->head = cmd;
	r->tail = cmd;
	r->npending++;
	if (!evtimer_pending(r->ev_command, NULL)) {
		ms_to_tv(r->command_timeout_ms, &tv);
		evtimer_add(r->ev_command, &tv);
	}
	return 0;
}

int ec_redis_command(struct ec_redis *r, ec_redis_reply_cb cb, void *arg, const char *fmt, ...)
{
	struct redis_cmd *cmd;
	va_list ap;
	int rc;

	if (fmt == NULL)
		return EC_EINVAL;
	cmd = cmd_begin(r, cb, arg, &rc);
	if (cmd == NULL)
		return rc;
	va_start(ap, fmt);
	rc = redisvAsyncCommand(r->ac, on_reply, cmd, fmt, ap);
	va_end(ap);
	return cmd_commit(r, cmd, rc);
}

/* Writes "<lead><n>\r\n" at d; returns the end. */
static char *resp_len(char *d, char lead, size_t n)
{
	*d++ = lead;
	d = ec_put_dec(d, n);
	*d++ = '\r';
	*d++ = '\n';
	return d;
}

char *ec_redis_put_array(char *d, size_t n)
{
	return resp_len(d, '*', n);
}

char *ec_redis_put_bulk(char *d, const char *s, size_t len)
{
	d = resp_len(d, '$', len);
	memcpy(d, s, len);
	d += len;
	*d++ = '\r';
	*d++ = '\n';
	return d;
}

int ec_redis_commandv(struct ec_redis *r, ec_redis_reply_cb cb, void *arg, int argc,
                      const char **argv, const size_t *argvlen)
{
	char stack[2048], *buf = stack, *d;
	size_t need = EC_REDIS_RESP_OVERHEAD, i;
	int rc;

	if (argc <= 0 || argv == NULL)
		return EC_EINVAL;
	/* RESP written here in one pass: hiredis's argv formatter grows an sds string with
	 * a formatted print per argument, most of a box sync's command cost */
	for (i = 0; i < (size_t)argc; i++)
		need += EC_REDIS_RESP_OVERHEAD + (argvlen ? argvlen[i] : strlen(argv[i]));
	if (need > sizeof stack && (buf = malloc(need)) == NULL) {
		r->dropped++;
		return EC_ENOMEM;
	}
	d = ec_redis_put_array(buf, (size_t)argc);
	for (i = 0; i < (size_t)argc; i++)
		d = ec_redis_put_bulk(d, argv[i], argvlen ? argvlen[i] : strlen(argv[i]));
	EC_ASSERT((size_t)(d - buf) <= need);
	rc = ec_redis_command_resp(r, cb, arg, buf, (size_t)(d - buf));
	if (buf != stack)
		free(buf);
	return rc;
}

int ec_redis_command_resp(struct ec_redis *r, ec_redis_reply_cb cb, void *arg,
                          const char *resp, size_t len)
{
	struct redis_cmd *cmd;
	int rc;

	if (resp == NULL || len < 4 || resp[0] != '*')
		return EC_EINVAL;
	cmd = cmd_begin(r, cb, arg, &rc);
	if (cmd == NULL)
		return rc;
	rc = redisAsyncFormattedCommand(r->ac, on_reply, cmd, resp, len);
	return cmd_commit(r, cmd, rc);
}

/* ---- addresses -------------------------------------------------------------------------- */

int ec_addr_split(const char *addr, char *host, size_t hostlen, int *port)
{
	const char *colon, *h;
	struct in6_addr a6;
	char buf[INET6_ADDRSTRLEN + 1];
	size_t hl, i;
	long p = 0;

	if (addr == NULL || host == NULL || port == NULL)
		return EC_EINVAL;
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');
		if (close == NULL || close[1] != ':')
			return EC_EINVAL;
		h = addr + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
		if (hl == 0 || hl >= sizeof buf)
			return EC_EINVAL;
		memcpy(buf, h, hl);
		buf[hl] = '\0';
		if (inet_pton(AF_INET6, buf, &a6) != 1)
			return EC_EINVAL;
	} else {
		colon = strrchr(addr, ':');
		if (colon == NULL || memchr(addr, ':', (size_t)(colon - addr)) != NULL)
			return EC_EINVAL;   /* bare IPv6 needs brackets */
		h = addr;
		hl = (size_t)(colon - addr);
		if (hl == 0)
			return EC_EINVAL;
		for (i = 0; i < hl; i++)
			if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= 'A' && h[i] <= 'Z') ||
			      (h[i] >= '0' && h[i] <= '9') || h[i] == '.' || h[i] == '-' ||
			      h[i] == '_'))
				return EC_EINVAL;
	}
	/* port: 1..65535, decimal digits only */
	for (i = 1; colon[i] != '\0'; i++) {
		if (colon[i] < '0' || colon[i] > '9' || i > 5)
			return EC_EINVAL;
		p = p * 10 + (colon[i] - '0');
	}
	if (i == 1 || p < 1 || p > 65535)
		return EC_EINVAL;
	if (hl + 1 > hostlen)
		return EC_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}
