/* edge_hb: the heartbeat and the offload accounting, one Redis pipeline per interval
 * (keys in docs/redis.md), with the box's region and each service as breakdowns.
 * Accounting deltas leave the pending totals only when Redis acknowledged them, so an
 * outage delays counts but loses none. Also reads the drain flag
 * and keeps the box's inventory set (echos:inv:{<box>}) in step with the store: changes
 * are sent with each beat, and the whole set is rewritten after a (re)connect.
 * Owns its timer, the pending deltas and inventory changes; never blocks on a reply. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "ec_err.h"
#include "ec_http.h"
#include "ec_log.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "edge.h"

#define HB_MAGIC 0x45484254u /* "EHBT" */
#define ACCT_MINUTE_TTL_S 172800
#define INV_PENDING_MAX 10000   /* queued inventory changes; more → rewrite the whole set */
#define INV_BATCH 512           /* members per SADD / SREM */

/* The unscoped accounting fields, first in hb->fields. */
enum hb_field {
	HB_BOX_BYTES = 0, HB_BOX_REQS, HB_ID_BYTES, HB_ID_REQS, HB_HITS, HB_MISSES,
	HB_FILL_BYTES, HB_PREFETCH_BYTES, HB_FIELD_COUNT_
};

/* Then, per scope (the region, then each service of conf.services), the base fields the
 * readers break down (common/ec_acct.c): "<scope>box.bytes" and so on. */
enum hb_scoped { HB_S_BYTES = 0, HB_S_REQS, HB_S_HITS, HB_S_MISSES, HB_S_FILL_BYTES,
	HB_SCOPED_COUNT_ };
static const char *const hb_scoped_names[HB_SCOPED_COUNT_] = {
	"box.bytes", "box.reqs", "box.hits", "box.misses", "box.fill_bytes",
};

enum hb_bucket { HB_TOTAL = 0, HB_MINUTE, HB_BUCKET_COUNT_ };

/* "region." + 32 + "." + "box.fill_bytes", or "box." + a 63-byte id + ".bytes" */
#define HB_FIELD_NAME_MAX 96

struct hb_acct_field {
	char name[HB_FIELD_NAME_MAX];
	uint64_t pending[HB_BUCKET_COUNT_]; /* not yet acknowledged */
};

struct edge_hb {
	unsigned magic;
	struct edge_server *srv;      /* borrowed */
	struct event *ev_timer;
	int is_draining;              /* echos:ctl:{id} drain = 1 */
	struct hb_acct_field *fields;  /* owned: HB_FIELD_COUNT_, then the scoped ones */
	size_t n_fields;
	uint64_t last_egress_bytes;
	int64_t last_beat_ms;         /* monotonic */
	uint64_t egress_bps;
	int was_up;
	/* inventory */
	struct hb_inv_op *inv_ops;    /* changes not yet sent, in order */
	size_t n_inv_ops, cap_inv_ops;
	int inv_resync;               /* rewrite the whole set at the next beat */
	uint64_t inv_ver;             /* bumped on every change; heartbeat field inv_ver */
};

struct hb_inv_op {
	int is_added;
	char *path;                   /* owned */
};

/* One HINCRBY in flight: on failure its amount goes back to pending. */
struct hb_incr {
	struct edge_hb *hb;
	enum hb_bucket bucket;
	size_t field;                 /* index in hb->fields */
	uint64_t n;
};

/* Index of the scoped field k of scope `scope` (0: the region, 1 + i: service i). */
static size_t hb_scoped_index(size_t scope, enum hb_scoped k)
{
	return HB_FIELD_COUNT_ + scope * HB_SCOPED_COUNT_ + (size_t)k;
}

static void hb_add(struct edge_hb *hb, size_t field, uint64_t n)
{
	EC_ASSERT(field < hb->n_fields);
	hb->fields[field].pending[HB_TOTAL] += n;
	hb->fields[field].pending[HB_MINUTE] += n;
}

void edge_hb_account(struct edge_server *srv, enum edge_acct what, uint64_t n, size_t svc)
{
	struct edge_hb *hb = srv->hb;
	static const int map[EDGE_ACCT_COUNT_][3] = { /* base, per box, scoped */
		[EDGE_ACCT_BYTES] = { HB_BOX_BYTES, HB_ID_BYTES, HB_S_BYTES },
		[EDGE_ACCT_REQS] = { HB_BOX_REQS, HB_ID_REQS, HB_S_REQS },
		[EDGE_ACCT_HITS] = { HB_HITS, -1, HB_S_HITS },
		[EDGE_ACCT_MISSES] = { HB_MISSES, -1, HB_S_MISSES },
		[EDGE_ACCT_FILL_BYTES] = { HB_FILL_BYTES, -1, HB_S_FILL_BYTES },
		[EDGE_ACCT_PREFETCH_BYTES] = { HB_PREFETCH_BYTES, -1, -1 },
	};

	srv->stats.acct[what] += n;
	if (!hb || n == 0)
		return;
	hb_add(hb, (size_t)map[what][0], n);
	if (map[what][1] >= 0)
		hb_add(hb, (size_t)map[what][1], n);
	if (map[what][2] < 0)
		return;
	EC_ASSERT(svc < srv->conf.services.n);
	hb_add(hb, hb_scoped_index(0, (enum hb_scoped)map[what][2]), n);
	hb_add(hb, hb_scoped_index(1 + svc, (enum hb_scoped)map[what][2]), n);
}

static void on_incr_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct hb_incr *in = arg;
	if (!reply || reply->type != REDIS_REPLY_INTEGER)
		in->hb->fields[in->field].pending[in->bucket] += in->n; /* next flush retries it */
	free(in);
}

static void hb_flush_acct(struct edge_hb *hb, int64_t wall_ms)
{
	struct ec_redis *r = hb->srv->redis;
	char keys[HB_BUCKET_COUNT_][64], num[32];
	int sent_minute = 0;

	snprintf(keys[HB_TOTAL], sizeof keys[HB_TOTAL], "echos:acct:total");
	snprintf(keys[HB_MINUTE], sizeof keys[HB_MINUTE], "echos:acct:m:%" PRId64,
	         wall_ms / 60000);
	for (int b = 0; b < HB_BUCKET_COUNT_; b++) {
		for (size_t f = 0; f < hb->n_fields; f++) {
			struct hb_incr *in;
			const char *argv[4];
			size_t argl[4];
			uint64_t n = hb->fields[f].pending[b];

			if (n == 0)
				continue;
			in = malloc(sizeof *in);
			if (!in)
				return;
			*in = (struct hb_incr){ hb, (enum hb_bucket)b, f, n };
			snprintf(num, sizeof num, "%" PRIu64, n);
			argv[0] = "HINCRBY";
			argv[1] = keys[b];
			argv[2] = hb->fields[f].name;
			argv[3] = num;
			for (int i = 0; i < 4; i++)
				argl[i] = strlen(argv[i]);
			if (ec_redis_commandv(r, on_incr_reply, in, 4, argv, argl) != 0) {
				free(in);
				return; /* link down: everything stays pending */
			}
			hb->fields[f].pending[b] -= n;
			if (b == HB_MINUTE)
				sent_minute = 1;
		}
	}
	if (sent_minute)
		ec_redis_command(r, NULL, NULL, "EXPIRE %s %d", keys[HB_MINUTE], ACCT_MINUTE_TTL_S);
}

static void on_drain_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct edge_hb *hb = arg;
	int drain;

	if (!reply || (reply->type != REDIS_REPLY_STRING && reply->type != REDIS_REPLY_NIL))
		return; /* keep the last known state */
	drain = reply->type == REDIS_REPLY_STRING && reply->len == 1 && reply->str[0] == '1';
	if (drain != hb->is_draining)
		ec_log_info("box %s: %s (echos:ctl:{%s} drain)", hb->srv->conf.box_id,
		            drain ? "draining on request" : "back up", hb->srv->conf.box_id);
	hb->is_draining = drain;
}

int edge_hb_is_draining(const struct edge_hb *hb)
{
	return hb->is_draining || hb->srv->is_stopping || hb->srv->is_drain_signalled;
}

/* --- inventory ---------------------------------------------------------------------------- */

static void inv_ops_clear(struct edge_hb *hb)
{
	for (size_t i = 0; i < hb->n_inv_ops; i++)
		free(hb->inv_ops[i].path);
	hb->n_inv_ops = 0;
}

/* Store change callback: queues the change for the next beat. */
static void on_store_change(void *arg, const char *path, size_t len, int is_added)
{
	struct edge_hb *hb = arg;
	char *copy;

	hb->inv_ver++;
	if (hb->inv_resync)
		return; /* the rewrite reads the store as it is then */
	if (hb->n_inv_ops == hb->cap_inv_ops) {
		size_t nc = hb->cap_inv_ops ? hb->cap_inv_ops * 2 : 64;
		struct hb_inv_op *v = nc <= INV_PENDING_MAX ?
		                      realloc(hb->inv_ops, nc * sizeof *v) : NULL;
		if (!v) {
			inv_ops_clear(hb);
			hb->inv_resync = 1;
			return;
		}
		hb->inv_ops = v;
		hb->cap_inv_ops = nc;
	}
	copy = malloc(len + 1);
	if (!copy) {
		inv_ops_clear(hb);
		hb->inv_resync = 1;
		return;
	}
	memcpy(copy, path, len);
	copy[len] = '\0';
	hb->inv_ops[hb->n_inv_ops++] = (struct hb_inv_op){ is_added, copy };
}

static void on_inv_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct edge_hb *hb = arg;
	if (!reply || reply->type == REDIS_REPLY_ERROR)
		hb->inv_resync = 1; /* lost or refused: the set may be off, rewrite it */
}

/* A batch command: argv[0..1] are the verb and key, then up to INV_BATCH members. */
struct inv_batch {
	const char *argv[INV_BATCH + 2];
	size_t argl[INV_BATCH + 2];
	int argc;
};

static int inv_batch_send(struct edge_hb *hb, struct inv_batch *b)
{
	int rc = 0;
	if (b->argc > 2)
		rc = ec_redis_commandv(hb->srv->redis, on_inv_reply, hb, b->argc, b->argv, b->argl);
	b->argc = 2;
	return rc;
}

struct inv_fill {
	struct edge_hb *hb;
	struct inv_batch *b;
	int failed;
};

static void inv_add_path(void *arg, const char *path, size_t len)
{
	struct inv_fill *f = arg;
	if (f->failed)
		return;
	f->b->argv[f->b->argc] = path;
	f->b->argl[f->b->argc++] = len;
	if (f->b->argc == INV_BATCH + 2 && inv_batch_send(f->hb, f->b) != 0)
		f->failed = 1;
}

/* Rewrites echos:inv:{id} from the store: filled under a side key, then renamed over it,
 * so readers never see a half-written set. Returns 0 or EC_EAGAIN (link down). */
static int inv_rewrite(struct edge_hb *hb, const char *key, const char *next)
{
	struct ec_redis *r = hb->srv->redis;
	struct inv_batch *b = malloc(sizeof *b);
	struct inv_fill f = { hb, b, 0 };
	size_t n;

	if (!b)
		return EC_ENOMEM;
	if (ec_redis_command(r, on_inv_reply, hb, "DEL %s", next) != 0) {
		free(b);
		return EC_EAGAIN;
	}
	b->argv[0] = "SADD";
	b->argl[0] = 4;
	b->argv[1] = next;
	b->argl[1] = strlen(next);
	b->argc = 2;
	n = edge_store_foreach(hb->srv->store, inv_add_path, &f);
	if (!f.failed && inv_batch_send(hb, b) != 0)
		f.failed = 1;
	free(b);
	if (f.failed)
		return EC_EAGAIN;
	if (n)
		ec_redis_command(r, on_inv_reply, hb, "RENAME %s %s", next, key);
	else
		ec_redis_command(r, on_inv_reply, hb, "DEL %s", key);
	ec_log_debug("inventory: %zu objects written to %s", n, key);
	return 0;
}

/* Sends the queued changes in order, a batch per run of adds or removes. */
static int inv_flush_ops(struct edge_hb *hb, const char *key)
{
	struct inv_batch *b;
	int rc = 0, cur = -1;

	if (!hb->n_inv_ops)
		return 0;
	b = malloc(sizeof *b);
	if (!b)
		return EC_ENOMEM;
	b->argv[1] = key;
	b->argl[1] = strlen(key);
	b->argc = 2;
	for (size_t i = 0; i < hb->n_inv_ops && rc == 0; i++) {
		struct hb_inv_op *op = &hb->inv_ops[i];
		if (op->is_added != cur || b->argc == INV_BATCH + 2) {
			rc = inv_batch_send(hb, b);
			cur = op->is_added;
			b->argv[0] = cur ? "SADD" : "SREM";
			b->argl[0] = 4;
		}
		b->argv[b->argc] = op->path;
		b->argl[b->argc++] = strlen(op->path);
	}
	if (rc == 0)
		rc = inv_batch_send(hb, b);
	free(b);
	inv_ops_clear(hb);
	return rc;
}

static void hb_flush_inventory(struct edge_hb *hb)
{
	const char *id = hb->srv->conf.box_id;
	char key[128], next[160];

	snprintf(key, sizeof key, "echos:inv:{%s}", id);
	snprintf(next, sizeof next, "echos:inv:{%s}:next", id);
	if (hb->inv_resync) {
		inv_ops_clear(hb);
		if (inv_rewrite(hb, key, next) != 0)
			return; /* still due */
		hb->inv_resync = 0;
	} else if (inv_flush_ops(hb, key) != 0) {
		hb->inv_resync = 1;
		return;
	}
	/* the set lives a little longer than the heartbeat: a box that died is dropped by
	 * its heartbeat first, and its inventory follows */
	ec_redis_command(hb->srv->redis, NULL, NULL, "PEXPIRE %s %lld", key,
	                 (long long)hb->srv->conf.heartbeat_ttl_ms * 10);
}

void edge_hb_redis_up(struct edge_hb *hb)
{
	if (!hb)
		return;
	inv_ops_clear(hb);
	hb->inv_resync = 1;
}

/* Writes the heartbeat's hb field (docs/redis.md): the n/2 field-value pairs of kv as
 * "name=value" separated by single spaces. Returns 0, or -1 when a value holds a byte
 * the format cannot carry (a space or a control byte; no valid value does, and readers
 * then fall back to the separate fields, which refuse it with a reason) or out is short. */
static int hb_pack(char *out, size_t outlen, const char *const *kv, size_t n)
{
	char *d = out, *end = out + outlen;

	for (size_t i = 0; i + 1 < n; i += 2) {
		size_t nl = strlen(kv[i]), vl = strlen(kv[i + 1]);

		for (size_t j = 0; j < vl; j++)
			if ((unsigned char)kv[i + 1][j] <= 0x20 || kv[i + 1][j] == 0x7f)
				return -1;
		if ((size_t)(end - d) < nl + vl + 3)
			return -1;
		if (d != out)
			*d++ = ' ';
		memcpy(d, kv[i], nl);
		d += nl;
		*d++ = '=';
		memcpy(d, kv[i + 1], vl);
		d += vl;
	}
	*d = '\0';
	return 0;
}

void edge_hb_beat(struct edge_hb *hb)
{
	struct edge_server *srv = hb->srv;
	struct edge_conf *c = &srv->conf;
	struct edge_store_stats ss;
	int64_t now = ec_now_ms(), wall = ec_wall_ms();
	char key[128], ctl[128], v[16][32], hbv[1024];
	const char *argv[48];
	size_t argl[48];
	int argc = 0, k = 0;

	/* egress over the last interval */
	if (hb->last_beat_ms && now > hb->last_beat_ms)
		hb->egress_bps = (srv->stats.egress_bytes - hb->last_egress_bytes) * 8 * 1000 /
		                 (uint64_t)(now - hb->last_beat_ms);
	hb->last_beat_ms = now;
	hb->last_egress_bytes = srv->stats.egress_bytes;

	if (!ec_redis_is_up(srv->redis))
		return; /* deltas stay pending; the state cb logs the outage */
	/* the inventory goes first, so a reader that sees the new inv_ver sees the set too */
	hb_flush_inventory(hb);
	edge_store_stats(srv->store, &ss);
	snprintf(key, sizeof key, "echos:box:{%s}", c->box_id);
	snprintf(ctl, sizeof ctl, "echos:ctl:{%s}", c->box_id);

#define F(name, val) do { argv[argc++] = (name); argv[argc++] = (val); } while (0)
#define FNUM(name, fmt, x) do { snprintf(v[k], sizeof v[k], fmt, x); F(name, v[k]); k++; } \
	while (0)
	argv[argc++] = "HSET";
	argv[argc++] = key;
	F("id", c->box_id);
	F("url", c->box_url);
	F("pop", c->box_pop);
	F("region", c->box_region);
	if (c->box_lat[0] && c->box_lon[0]) {
		F("lat", c->box_lat);
		F("lon", c->box_lon);
	}
	if (c->box_asn)
		FNUM("asn", "%" PRId64, c->box_asn);
	FNUM("uplink_bps", "%" PRIu64, c->box_uplink_bps);
	FNUM("egress_bps", "%" PRIu64, hb->egress_bps);
	FNUM("conns", "%zu", srv->http ? ec_http_server_conns(srv->http) : (size_t)0);
	FNUM("ttfb_ms", "%.0f", srv->stats.ttfb_ms);
	F("status", edge_hb_is_draining(hb) ? "draining" : "up");
	FNUM("ts_ms", "%" PRId64, wall);
	FNUM("cache_bytes", "%" PRIu64, ss.bytes);
	FNUM("cache_max_bytes", "%" PRIu64, ss.max_bytes);
	FNUM("cache_objects", "%" PRIu64, ss.objects);
	FNUM("inv_ver", "%" PRIu64, hb->inv_ver);
	FNUM("hits", "%" PRIu64, srv->stats.hits);
	FNUM("misses", "%" PRIu64, srv->stats.misses);
	/* and all of it again as one field, which readers take with one HGET */
	if (hb_pack(hbv, sizeof hbv, argv + 2, (size_t)argc - 2) == 0)
		F("hb", hbv);
#undef F
#undef FNUM
	EC_ASSERT(argc <= (int)EC_ARRAY_LEN(argv) && k <= (int)EC_ARRAY_LEN(v));
	for (int i = 0; i < argc; i++)
		argl[i] = strlen(argv[i]);
	/* one pipeline: hiredis sends these back to back on one connection */
	if (ec_redis_commandv(srv->redis, NULL, NULL, argc, argv, argl) != 0)
		return;
	ec_redis_command(srv->redis, NULL, NULL, "PEXPIRE %s %lld", key,
	                 (long long)c->heartbeat_ttl_ms);
	ec_redis_command(srv->redis, NULL, NULL, "ZADD echos:{boxes} %lld %s", (long long)wall,
	                 c->box_id);
	ec_redis_command(srv->redis, on_drain_reply, hb, "HGET %s drain", ctl);
	hb_flush_acct(hb, wall);
}

static void on_hb_timer(evutil_socket_t fd, short what, void *arg)
{
	edge_hb_beat(arg);
}

/* Names every accounting field: the unscoped ones, then region.<r>.* and svc.<s>.* for
 * the region and each configured service. Returns 0 or EC_ENOMEM. */
static int hb_fields_init(struct edge_hb *hb)
{
	const struct edge_conf *c = &hb->srv->conf;
	static const char *const base[HB_FIELD_COUNT_] = {
		[HB_BOX_BYTES] = "box.bytes", [HB_BOX_REQS] = "box.reqs",
		[HB_HITS] = "box.hits", [HB_MISSES] = "box.misses",
		[HB_FILL_BYTES] = "box.fill_bytes", [HB_PREFETCH_BYTES] = "box.prefetch_bytes",
	};
	size_t n_scopes = 1 + c->services.n;

	hb->n_fields = HB_FIELD_COUNT_ + n_scopes * HB_SCOPED_COUNT_;
	hb->fields = calloc(hb->n_fields, sizeof *hb->fields);
	if (!hb->fields)
		return EC_ENOMEM;
	for (size_t f = 0; f < HB_FIELD_COUNT_; f++)
		snprintf(hb->fields[f].name, sizeof hb->fields[f].name, "%s", base[f] ? base[f] : "");
	snprintf(hb->fields[HB_ID_BYTES].name, HB_FIELD_NAME_MAX, "box.%s.bytes", c->box_id);
	snprintf(hb->fields[HB_ID_REQS].name, HB_FIELD_NAME_MAX, "box.%s.reqs", c->box_id);
	for (size_t s = 0; s < n_scopes; s++) {
		for (size_t k = 0; k < HB_SCOPED_COUNT_; k++)
			snprintf(hb->fields[hb_scoped_index(s, (enum hb_scoped)k)].name,
			         HB_FIELD_NAME_MAX, "%s.%s.%s", s == 0 ? "region" : "svc",
			         s == 0 ? c->acct_region : c->services.svc[s - 1].name,
			         hb_scoped_names[k]);
	}
	if (c->box_region[0] && strcmp(c->acct_region, c->box_region) != 0)
		ec_log_warn("box.region \"%s\" is not an accounting name ([A-Za-z0-9_-]{1,32}); "
		            "counting its traffic under region %s", c->box_region,
		            c->acct_region);
	return 0;
}

struct edge_hb *edge_hb_new(struct edge_server *srv)
{
	struct edge_hb *hb = calloc(1, sizeof *hb);
	struct timeval tv;

	if (!hb)
		return NULL;
	hb->magic = HB_MAGIC;
	hb->srv = srv;
	hb->inv_ver = (uint64_t)ec_wall_ms() * 1000; /* distinct across restarts */
	if (hb_fields_init(hb) != 0) {
		edge_hb_free(hb);
		return NULL;
	}
	hb->inv_resync = 1;
	edge_store_on_change(srv->store, on_store_change, hb);
	hb->ev_timer = event_new(srv->base, -1, EV_PERSIST, on_hb_timer, hb);
	tv.tv_sec = srv->conf.heartbeat_interval_ms / 1000;
	tv.tv_usec = (srv->conf.heartbeat_interval_ms % 1000) * 1000;
	if (!hb->ev_timer || event_add(hb->ev_timer, &tv) != 0) {
		edge_hb_free(hb);
		return NULL;
	}
	return hb;
}

void edge_hb_free(struct edge_hb *hb)
{
	if (!hb)
		return;
	EC_ASSERT(hb->magic == HB_MAGIC);
	if (hb->srv->store)
		edge_store_on_change(hb->srv->store, NULL, NULL);
	if (hb->ev_timer)
		event_free(hb->ev_timer);
	inv_ops_clear(hb);
	free(hb->inv_ops);
	free(hb->fields);
	hb->magic = 0;
	free(hb);
}
