/* shim_acct: per-kind byte and request counters of the shim, exposed to Prometheus and
 * flushed to Redis by one thread with a synchronous hiredis link (requests never wait).
 * The per-service and per-region deltas sit in fixed tables under one short lock.
 * Owns the flusher thread and its Redis connection. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_svc.h"
#include "ec_time.h"
#include "ec_topo.h"
#include "shim_acct.h"

#define ACCT_MAGIC 0x2ac7f00du
#define ACCT_FLUSH_MS 1000
#define ACCT_MINUTE_TTL_S 172800  /* 48 h, docs/redis.md */
#define ACCT_TOTAL_KEY "echos:acct:total"

enum acct_field {
	ACCT_FALLBACK_BYTES = 0,
	ACCT_FALLBACK_REQS,
	ACCT_FILL_BYTES,
	ACCT_FILL_REQS,
	ACCT_PREFETCH_BYTES,
	ACCT_PREFETCH_REQS,
	ACCT_NFIELDS
};

static const char *const acct_field_names[ACCT_NFIELDS] = {
	"origin.fallback_bytes", "origin.fallback_reqs", "origin.fill_bytes",
	"origin.fill_reqs", "origin.prefetch_bytes", "origin.prefetch_reqs",
};

static const char *const acct_kind_names[SHIM_KIND_N_] = { "fallback", "fill", "prefetch" };

/* Regions are the viewer's: they get the fallback fields only (fills are not viewers). */
#define ACCT_REGION_NFIELDS (ACCT_FALLBACK_REQS + 1)
/* HINCRBYs of one flush at most (total and minute for every field), plus the EXPIRE */
#define ACCT_SLOTS_MAX (2 * (ACCT_NFIELDS * (2 + EC_SVC_MAX) + \
                             ACCT_REGION_NFIELDS * EC_SVC_TAB_MAX) + 1)

/* One scope's deltas: pending under scope_lock, unsent by the flusher thread only. */
struct acct_scope {
	uint64_t pending[ACCT_NFIELDS];
	uint64_t unsent_total[ACCT_NFIELDS];
	uint64_t unsent_minute[ACCT_NFIELDS];
};

/* Status label values: a fixed set, so the series count is bounded by code. */
static const char *const acct_codes[] = {
	"200", "206", "2xx", "3xx", "400", "404", "405", "416", "4xx", "502", "503", "5xx",
};
#define ACCT_NCODES EC_ARRAY_LEN(acct_codes)

struct shim_acct {
	unsigned magic;
	_Atomic uint64_t pending[ACCT_NFIELDS];  /* added by request threads */
	/* flusher thread only: counted but not yet acknowledged by Redis, per key */
	uint64_t unsent_total[ACCT_NFIELDS];
	uint64_t unsent_minute[ACCT_NFIELDS];
	struct ec_metric *bytes[SHIM_KIND_N_];
	struct ec_metric *reqs[SHIM_KIND_N_][ACCT_NCODES];
	int has_redis;
	char host[256];
	int port;
	char name[300];            /* "redis host:port" for log lines */
	redisContext *redis;       /* flusher thread only; NULL while down */
	int is_down;               /* flusher thread only: the outage was logged */
	pthread_t thread;
	int is_started;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	int is_stopping;           /* under lock */
	/* breakdowns (docs/redis.md): services by index of *services, regions by slot of
	 * `regions`; pending counts and region names under scope_lock */
	const struct ec_svc_map *services; /* borrowed */
	const struct ec_topo *topo;        /* borrowed; NULL: every viewer in "_" */
	pthread_mutex_t scope_lock;
	struct acct_scope svc[EC_SVC_MAX + 1];
	struct acct_scope region[EC_SVC_TAB_MAX];
	struct ec_svc_tab regions;
	uint64_t *flush_slot[ACCT_SLOTS_MAX]; /* flusher thread only */
};

const char *shim_kind_name(enum shim_kind kind)
{
	return (unsigned)kind < SHIM_KIND_N_ ? acct_kind_names[kind] : "?";
}

static size_t acct_code_index(unsigned status)
{
	switch (status) {
	case 200: return 0;
	case 206: return 1;
	case 400: return 4;
	case 404: return 5;
	case 405: return 6;
	case 416: return 7;
	case 502: return 9;
	case 503: return 10;
	}
	if (status >= 500)
		return 11;
	if (status >= 400)
		return 8;
	if (status >= 300)
		return 3;
	return 2;
}

void shim_acct_count(struct shim_acct *a, enum shim_kind kind, unsigned status,
                     uint64_t body_bytes, const char *target, const struct sockaddr *client)
{
	enum acct_field fb, fr;
	const struct ec_topo_loc *loc = NULL;
	const char *region = EC_SVC_UNPLACED;
	size_t svc = 0, slot;

	EC_ASSERT((unsigned)kind < SHIM_KIND_N_);
	ec_metric_add_atomic(a->bytes[kind], (double)body_bytes);
	ec_metric_add_atomic(a->reqs[kind][acct_code_index(status)], 1);
	if (!a->has_redis)
		return;
	switch (kind) {
	case SHIM_KIND_FALLBACK:
		fb = ACCT_FALLBACK_BYTES, fr = ACCT_FALLBACK_REQS;
		break;
	case SHIM_KIND_FILL:
		fb = ACCT_FILL_BYTES, fr = ACCT_FILL_REQS;
		break;
	default:
		fb = ACCT_PREFETCH_BYTES, fr = ACCT_PREFETCH_REQS;
		break;
	}
	atomic_fetch_add(&a->pending[fb], body_bytes);
	atomic_fetch_add(&a->pending[fr], 1);
	if (target != NULL)
		svc = ec_svc_map_match(a->services, target, strcspn(target, "?"));
	if (kind == SHIM_KIND_FALLBACK && a->topo != NULL && client != NULL)
		loc = ec_topo_lookup(a->topo, client);
	if (loc != NULL)
		region = loc->region;
	pthread_mutex_lock(&a->scope_lock);
	a->svc[svc].pending[fb] += body_bytes;
	a->svc[svc].pending[fr] += 1;
	if (kind == SHIM_KIND_FALLBACK) {
		/* a topology name that is not an accounting name, or one past the table's
		 * bound, is counted under "_other" */
		slot = ec_svc_tab_slot(&a->regions, region, strlen(region));
		a->region[slot].pending[fb] += body_bytes;
		a->region[slot].pending[fr] += 1;
	}
	pthread_mutex_unlock(&a->scope_lock);
}

/* Logs the start of an outage, once. */
static void acct_outage(struct shim_acct *a, const char *why)
{
	if (a->is_down)
		return;
	a->is_down = 1;
	ec_log_warn("%s: %s; keeping counts, retrying in 1s", a->name, why);
}

/* Connects with 1 s timeouts. Returns 0 or EC_EIO with the reason in why. */
static int acct_connect(struct shim_acct *a, char *why, size_t whylen)
{
	struct timeval tv = { ACCT_FLUSH_MS / 1000, 0 };
	redisContext *c = redisConnectWithTimeout(a->host, a->port, tv);

	if (c == NULL || c->err) {
		snprintf(why, whylen, "%s", c != NULL ? c->errstr : "out of memory");
		redisFree(c);
		return EC_EIO;
	}
	if (redisSetTimeout(c, tv) != REDIS_OK) {
		snprintf(why, whylen, "cannot set timeout: %s", c->errstr);
		redisFree(c);
		return EC_EIO;
	}
	a->redis = c;
	return 0;
}

/* Appends one HINCRBY to the pipeline. */
static void acct_append_hincrby(redisContext *c, const char *key, const char *field,
                                uint64_t delta)
{
	char v[24];

	snprintf(v, sizeof v, "%" PRIu64, delta);
	redisAppendCommand(c, "HINCRBY %s %s %s", key, field, v);
}

/* Moves one scope's pending deltas (the first nfields) into its unsent ones. The caller
 * holds scope_lock. Returns 1 if anything is left to send. */
static int acct_scope_take(struct acct_scope *sc, size_t nfields)
{
	int has_any = 0;

	for (size_t i = 0; i < nfields; i++) {
		sc->unsent_total[i] += sc->pending[i];
		sc->unsent_minute[i] += sc->pending[i];
		sc->pending[i] = 0;
		has_any |= sc->unsent_total[i] != 0 || sc->unsent_minute[i] != 0;
	}
	return has_any;
}

/* Appends the HINCRBYs of one scope ("svc.vod." ...; "" for the unscoped fields) and
 * records where each reply's delta lives. */
static void acct_append_scope(struct shim_acct *a, const char *mkey, const char *scope,
                              uint64_t *total, uint64_t *minute, size_t nfields, size_t *n)
{
	char field[96];

	for (size_t i = 0; i < nfields; i++) {
		if (total[i] == 0 && minute[i] == 0)
			continue;
		snprintf(field, sizeof field, "%s%s", scope, acct_field_names[i]);
		if (total[i] != 0) {
			acct_append_hincrby(a->redis, ACCT_TOTAL_KEY, field, total[i]);
			a->flush_slot[(*n)++] = &total[i];
		}
		if (minute[i] != 0) {
			acct_append_hincrby(a->redis, mkey, field, minute[i]);
			a->flush_slot[(*n)++] = &minute[i];
		}
	}
}

/* Moves the pending deltas into the unsent ones and sends them all in one pipeline:
 * HINCRBY into the total and the current minute, then EXPIRE the minute. Each reply that
 * says OK clears its own delta, so a failure part way re-sends only what may be missing.
 * XXX: a connection lost after Redis applied a command but before its reply arrived
 * counts that delta twice; at-least-once is the trade for never losing an outage's counts. */
static void acct_flush(struct shim_acct *a)
{
	char mkey[64], why[256] = "", scope[EC_ACCT_SCOPE_NAME_MAX + 16];
	uint64_t **slot = a->flush_slot;
	size_t n = 0, ok = 0, n_regions;
	int has_any = 0, has_io_error = 0;
	redisReply *r;

	for (size_t i = 0; i < ACCT_NFIELDS; i++) {
		uint64_t d = atomic_exchange(&a->pending[i], 0);
		a->unsent_total[i] += d;
		a->unsent_minute[i] += d;
		has_any |= a->unsent_total[i] != 0 || a->unsent_minute[i] != 0;
	}
	pthread_mutex_lock(&a->scope_lock);
	for (size_t s = 0; s < a->services->n; s++)
		has_any |= acct_scope_take(&a->svc[s], ACCT_NFIELDS);
	n_regions = a->regions.n; /* names below n are written once, before n grows */
	for (size_t s = 0; s < n_regions; s++)
		has_any |= acct_scope_take(&a->region[s], ACCT_REGION_NFIELDS);
	pthread_mutex_unlock(&a->scope_lock);
	if (a->redis == NULL && acct_connect(a, why, sizeof why) != 0) {
		acct_outage(a, why);
		return;
	}
	if (!has_any)
		return;
	snprintf(mkey, sizeof mkey, "echos:acct:m:%" PRId64, ec_wall_ms() / 60000);
	acct_append_scope(a, mkey, "", a->unsent_total, a->unsent_minute, ACCT_NFIELDS, &n);
	for (size_t s = 0; s < a->services->n; s++) {
		snprintf(scope, sizeof scope, "svc.%s.", a->services->svc[s].name);
		acct_append_scope(a, mkey, scope, a->svc[s].unsent_total, a->svc[s].unsent_minute,
		                  ACCT_NFIELDS, &n);
	}
	for (size_t s = 0; s < n_regions; s++) {
		snprintf(scope, sizeof scope, "region.%s.", a->regions.names[s]);
		acct_append_scope(a, mkey, scope, a->region[s].unsent_total,
		                  a->region[s].unsent_minute, ACCT_REGION_NFIELDS, &n);
	}
	redisAppendCommand(a->redis, "EXPIRE %s %d", mkey, ACCT_MINUTE_TTL_S);
	slot[n++] = NULL;
	EC_ASSERT(n <= ACCT_SLOTS_MAX);

	for (size_t i = 0; i < n; i++) {
		if (redisGetReply(a->redis, (void **)&r) != REDIS_OK || r == NULL) {
			snprintf(why, sizeof why, "%s", a->redis->errstr[0] ?
			         a->redis->errstr : "connection lost");
			has_io_error = 1;
			break;
		}
		if (r->type == REDIS_REPLY_ERROR) {
			snprintf(why, sizeof why, "%s", r->str);
		} else {
			if (slot[i] != NULL)
				*slot[i] = 0;
			ok++;
		}
		freeReplyObject(r);
	}
	if (has_io_error) {
		redisFree(a->redis);
		a->redis = NULL;
	}
	if (ok < n) {
		acct_outage(a, why);
		return;
	}
	if (a->is_down) {
		a->is_down = 0;
		ec_log_info("%s: accounting flushed again, counts kept during the outage added",
		            a->name);
	}
}

static void *acct_main(void *arg)
{
	struct shim_acct *a = arg;
	struct timespec deadline;

	pthread_mutex_lock(&a->lock);
	while (!a->is_stopping) {
		clock_gettime(CLOCK_MONOTONIC, &deadline);
		deadline.tv_sec += ACCT_FLUSH_MS / 1000;
		while (!a->is_stopping &&
		       pthread_cond_timedwait(&a->wake, &a->lock, &deadline) == 0)
			;
		pthread_mutex_unlock(&a->lock);
		acct_flush(a);
		pthread_mutex_lock(&a->lock);
	}
	pthread_mutex_unlock(&a->lock);
	acct_flush(a);  /* the last second's counts */
	return NULL;
}

static int acct_register(struct shim_acct *a, struct ec_metrics *m)
{
	char labels[64];

	for (size_t k = 0; k < SHIM_KIND_N_; k++) {
		snprintf(labels, sizeof labels, "kind=\"%s\"", acct_kind_names[k]);
		a->bytes[k] = ec_metrics_counter(m, "echos_shim_bytes_total",
		                                 "Body bytes queued to clients, by kind", labels);
		if (a->bytes[k] == NULL)
			return EC_ENOMEM;
	}
	for (size_t k = 0; k < SHIM_KIND_N_; k++) {
		for (size_t c = 0; c < ACCT_NCODES; c++) {
			snprintf(labels, sizeof labels, "kind=\"%s\",code=\"%s\"",
			         acct_kind_names[k], acct_codes[c]);
			a->reqs[k][c] = ec_metrics_counter(m, "echos_shim_requests_total",
			                                   "Responses, by kind and status", labels);
			if (a->reqs[k][c] == NULL)
				return EC_ENOMEM;
		}
	}
	return 0;
}

struct shim_acct *shim_acct_new(struct ec_metrics *m, const char *redis_addr,
                                const struct ec_svc_map *services, const struct ec_topo *topo,
                                char *err, size_t errlen)
{
	struct shim_acct *a = calloc(1, sizeof *a);
	pthread_condattr_t ca;
	int rc;

	if (a == NULL || acct_register(a, m) != 0) {
		free(a);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->magic = ACCT_MAGIC;
	a->services = services;
	a->topo = topo;
	ec_svc_tab_init(&a->regions, 0);
	pthread_mutex_init(&a->scope_lock, NULL);
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&a->wake, &ca);
	pthread_condattr_destroy(&ca);
	if (redis_addr == NULL || redis_addr[0] == '\0')
		return a;
	if (ec_addr_split(redis_addr, a->host, sizeof a->host, &a->port) != 0) {
		snprintf(err, errlen, "redis.addr: cannot parse \"%s\"", redis_addr);
		shim_acct_free(a);
		return NULL;
	}
	snprintf(a->name, sizeof a->name, "redis %s", redis_addr);
	a->has_redis = 1;
	rc = pthread_create(&a->thread, NULL, acct_main, a);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the accounting thread: %s", strerror(rc));
		shim_acct_free(a);
		return NULL;
	}
	a->is_started = 1;
	return a;
}

void shim_acct_free(struct shim_acct *a)
{
	if (a == NULL)
		return;
	EC_ASSERT(a->magic == ACCT_MAGIC);
	if (a->is_started) {
		pthread_mutex_lock(&a->lock);
		a->is_stopping = 1;
		pthread_cond_signal(&a->wake);
		pthread_mutex_unlock(&a->lock);
		pthread_join(a->thread, NULL);
	}
	if (a->redis != NULL)
		redisFree(a->redis);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->scope_lock);
	pthread_cond_destroy(&a->wake);
	a->magic = 0;
	free(a);
}
