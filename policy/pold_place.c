/* pold_place: echos-policy's placement loop. Every place.interval one pass reads the box
 * registry, per-region popularity, origin fallbacks and publish announcements from Redis
 * over the daemon's async link, computes a placement with pol_place (objects that keep
 * falling back get more replicas) and writes only the changed members of each box's
 * echos:assign:{<box>} set, in one pipeline. It remembers what it wrote and
 * reads it back after every (re)connection. Never blocks on Redis; placement itself runs
 * on the loop. Owns the pass in flight, the written state and its metrics. The loop is
 * described in docs/control-plane.md, the keys in docs/redis.md. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "pol_place.h"
#include "pol_score.h"
#include "pold.h"
#include "pold_plan.h"

#define PLACE_MAGIC 0x504c4143u  /* "PLAC" */
#define PLACE_CHUNK 512          /* members per SADD / SREM command */
#define PLACE_MAX_MINUTES 120    /* popularity is kept 2 hours */
#define PLACE_ANNOUNCED UINT32_MAX /* place_acc.minute of an announcement */
#define PLACE_ALL UINT32_MAX     /* place_ann.region of an announcement for every region */

struct place_box {
	char id[POLD_BOX_ID_MAX];
	char region[64];
	double storage_bytes, uplink_bps;
	int is_up;                /* heartbeat hash present, status up, region known */
	uint32_t region_idx;      /* into pass->regions, when is_up */
};

/* One sighting of (region, path): a minute bucket's count (requests or origin
 * fallbacks) or an announcement. */
struct place_acc {
	uint32_t region;
	uint32_t minute;          /* 0 = current minute; PLACE_ANNOUNCED */
	int is_miss;              /* value counts fallbacks (echos:miss), not requests */
	double value;             /* requests in that minute, or expected requests/s */
	char *path;               /* heap, owned by the pass */
};

/* One member of an echos:pub:{<region>} set. */
struct place_ann {
	char *path;               /* heap */
	uint32_t region;          /* index into pass->regions, or PLACE_ALL */
	double rps;
	uint64_t size_bytes;      /* from echos:pubmeta, 0 unknown */
};

/* A reply's context: which box, region or announcement group it belongs to. */
struct place_tag {
	struct place_pass *ps;
	uint32_t a, b;
};

enum place_stage {
	ST_INDEX = 0,  /* ZRANGE echos:{boxes} */
	ST_BOXES,      /* HGETALL each box (+ SMEMBERS its assignment when re-reading) */
	ST_DEMAND,     /* popularity and fallback buckets, announcement sets */
	ST_PUBMETA,    /* HMGET each announced path's metadata */
	ST_WRITE,      /* the changes */
};

struct place_pass {
	struct pold_place *pl;
	enum place_stage stage;
	size_t pending;           /* replies awaited in this stage */
	int is_issuing;           /* commands of this stage are still being sent */
	int is_failed;
	char why[128];
	int64_t wall_ms, t0_us;
	int is_rereading;         /* the written state is read back this pass */
	struct pold_assign reread;
	struct place_box *boxes;
	size_t n_boxes;
	char **regions;           /* distinct regions of up boxes, sorted (heap strings) */
	size_t n_regions;
	struct place_acc *acc;
	size_t n_acc, cap_acc;
	struct place_ann *ann;
	size_t n_ann, cap_ann;
	struct place_tag *tags;
	size_t n_tags;
	size_t write_errors;
};

struct pold_place {
	unsigned magic;
	struct pold *p;           /* borrowed */
	struct event *tick;
	struct pol_place_params params;
	struct pold_assign written; /* what Redis holds, as far as this loop knows */
	int is_known;             /* written was read back since the last (re)connection */
	int is_failing;           /* the last pass failed (logged once) */
	int64_t refreshed_ms;     /* wall clock of the last TTL renewal of every key */
	struct place_pass *pass;  /* in flight, or NULL */
	struct place_snap *ref;   /* current-minute counts at ref_ms, sorted by key */
	size_t n_ref;
	int64_t ref_ms;           /* wall clock of that snapshot; 0: none yet */
	struct pold_miss_params miss;
	struct place_raise *raised; /* objects raised for fallbacks within the cooldown */
	size_t n_raised;
	struct ec_metric *m_seconds, *m_assign, *m_changes, *m_objects;
	struct ec_metric *m_ok, *m_failed, *m_raises;
};

/* The counts of one (region, object) in the current minute at a pass, keyed by a mix of
 * both hashes: the reference the recent rates are measured against. */
struct place_snap {
	uint64_t key;
	double count;
	double misses;            /* origin fallbacks */
};

/* When the loop last gave one (region, object) a replica for its fallbacks (same key as
 * place_snap), sorted by key. */
struct place_raise {
	uint64_t key;
	int64_t ms;
};

static void pass_next(struct place_pass *ps);

/* --- the pass's lifetime ------------------------------------------------------------- */

static void pass_free(struct place_pass *ps)
{
	for (size_t i = 0; i < ps->n_regions; i++)
		free(ps->regions[i]);
	free(ps->regions);
	for (size_t i = 0; i < ps->n_acc; i++)
		free(ps->acc[i].path);
	free(ps->acc);
	for (size_t i = 0; i < ps->n_ann; i++)
		free(ps->ann[i].path);
	free(ps->ann);
	free(ps->boxes);
	free(ps->tags);
	pold_assign_fini(&ps->reread);
	free(ps);
}

static void pass_fail(struct place_pass *ps, const char *why)
{
	if (!ps->is_failed)
		snprintf(ps->why, sizeof ps->why, "%s", why);
	ps->is_failed = 1;
}

static void pass_end(struct place_pass *ps)
{
	struct pold_place *pl = ps->pl;

	ec_hist_observe(pl->m_seconds, (double)(ec_now_us() - ps->t0_us) / 1e6);
	if (ps->is_failed) {
		ec_metric_inc(pl->m_failed);
		pl->is_known = 0; /* a write may have been lost half-way: read back first */
		if (!pl->is_failing)
			ec_log_warn("place: pass abandoned: %s; assignments read back and "
			            "retried next interval", ps->why);
		pl->is_failing = 1;
	} else {
		ec_metric_inc(pl->m_ok);
		if (pl->is_failing)
			ec_log_info("place: passes complete again");
		pl->is_failing = 0;
	}
	pl->pass = NULL;
	pass_free(ps);
}

/* Starts a stage: room for n reply tags. Returns 0 or EC_ENOMEM. */
static int stage_begin(struct place_pass *ps, enum place_stage st, size_t n)
{
	free(ps->tags);
	ps->tags = n ? calloc(n, sizeof *ps->tags) : NULL;
	ps->n_tags = 0;
	ps->stage = st;
	ps->is_issuing = 1;
	if (n && !ps->tags) {
		pass_fail(ps, "out of memory");
		return EC_ENOMEM;
	}
	return 0;
}

/* All commands of the stage are sent: go on now if no reply is awaited. */
static void stage_sent(struct place_pass *ps)
{
	ps->is_issuing = 0;
	if (ps->pending == 0)
		pass_next(ps);
}

/* A reply came (or the link dropped: reply NULL). */
static int reply_begin(struct place_tag *t, struct redisReply *reply)
{
	struct place_pass *ps = t->ps;

	EC_ASSERT(ps->pending > 0);
	ps->pending--;
	if (!reply) {
		pass_fail(ps, "redis link lost or command timed out");
		return -1;
	}
	if (reply->type == REDIS_REPLY_ERROR) {
		char why[128];

		snprintf(why, sizeof why, "redis error: %.100s", reply->str);
		pass_fail(ps, why);
		return -1;
	}
	return ps->is_failed ? -1 : 0;
}

static void reply_end(struct place_tag *t)
{
	struct place_pass *ps = t->ps;

	if (ps->pending == 0 && !ps->is_issuing)
		pass_next(ps);
}

/* Sends one command whose reply goes to cb with a tag (a, b). A link that refuses it
 * fails the pass; the stage still waits for the replies already due. */
static void send_fmt(struct place_pass *ps, ec_redis_reply_cb cb, uint32_t a, uint32_t b,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void send_argv(struct place_pass *ps, ec_redis_reply_cb cb, uint32_t a, uint32_t b,
                      int argc, const char **argv, const size_t *lens)
{
	struct place_tag *t;

	if (ps->is_failed)
		return;
	t = &ps->tags[ps->n_tags++];
	*t = (struct place_tag){ ps, a, b };
	if (ec_redis_commandv(ps->pl->p->redis, cb, t, argc, argv, lens) != 0) {
		pass_fail(ps, "redis link down or its queue full");
		return;
	}
	ps->pending++;
}

static void send_fmt(struct place_pass *ps, ec_redis_reply_cb cb, uint32_t a, uint32_t b,
                     const char *fmt, ...)
{
	char *argv[8];
	size_t lens[8];
	char buf[1024];
	va_list ap;
	int argc = 0, n;
	char *s, *save = NULL;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof buf) {
		pass_fail(ps, "command too long");
		return;
	}
	/* the words are separated by single spaces; none of them holds a space (paths
	 * never go through here) */
	for (s = strtok_r(buf, " ", &save); s && argc < 8; s = strtok_r(NULL, " ", &save)) {
		argv[argc] = s;
		lens[argc++] = strlen(s);
	}
	send_argv(ps, cb, a, b, argc, (const char **)argv, lens);
}

/* --- reading: registry, boxes, assignments ------------------------------------------ */

static const char *hash_field(const struct redisReply *r, const char *name)
{
	if (r->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, name) == 0 &&
		    r->element[i + 1]->type == REDIS_REPLY_STRING)
			return r->element[i + 1]->str;
	return NULL;
}

static double num_field(const struct redisReply *r, const char *name)
{
	const char *s = hash_field(r, name);
	char *end;
	double v;

	if (!s || !*s)
		return 0;
	v = strtod(s, &end);
	return *end == '\0' && v > 0 && v < 1e300 ? v : 0;
}

static void on_index(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;
	struct place_pass *ps = t->ps;

	if (reply_begin(t, reply) == 0) {
		size_t n = reply->type == REDIS_REPLY_ARRAY ? reply->elements : 0;

		ps->boxes = n ? calloc(n, sizeof *ps->boxes) : NULL;
		if (n && !ps->boxes)
			pass_fail(ps, "out of memory");
		for (size_t i = 0; ps->boxes && i < n; i++) {
			const struct redisReply *e = reply->element[i];

			if (e->type != REDIS_REPLY_STRING || e->len == 0 ||
			    e->len >= POLD_BOX_ID_MAX || strpbrk(e->str, " {}"))
				continue; /* not a box id: nothing of ours to read for it */
			memcpy(ps->boxes[ps->n_boxes++].id, e->str, e->len + 1);
		}
	}
	reply_end(t);
}

/* Region names as the topology writes them: 1-63 letters, digits, '.', '_', '-'. */
static int region_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n < 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                 "0123456789._-") == n && strcmp(s, "_all") != 0;
}

static void on_box(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;
	struct place_pass *ps = t->ps;

	if (reply_begin(t, reply) == 0) {
		struct place_box *b = &ps->boxes[t->a];
		const char *status = hash_field(reply, "status");
		const char *region = hash_field(reply, "region");

		b->storage_bytes = num_field(reply, "cache_max_bytes");
		b->uplink_bps = num_field(reply, "uplink_bps");
		b->is_up = status && strcmp(status, "up") == 0 && region_ok(region) &&
		           b->storage_bytes > 0 && b->uplink_bps > 0;
		if (b->is_up)
			snprintf(b->region, sizeof b->region, "%s", region);
	}
	reply_end(t);
}

/* Stores the members of an SMEMBERS reply as box id's read-back set. Returns 0 or
 * EC_ENOMEM. */
static int assigned_take(struct place_pass *ps, const char *id, const struct redisReply *r)
{
	struct pold_pathset set = { NULL, 0 };
	char **v = calloc(r->elements, sizeof *v);
	size_t n = 0;

	if (!v)
		return EC_ENOMEM;
	for (size_t i = 0; i < r->elements; i++) {
		const struct redisReply *e = r->element[i];

		if (e->type != REDIS_REPLY_STRING)
			continue;
		if (!(v[n] = strndup(e->str, e->len))) {
			while (n-- > 0)
				free(v[n]);
			free(v);
			return EC_ENOMEM;
		}
		n++;
	}
	pold_pathset_take(&set, v, n);
	if (pold_assign_put(&ps->reread, id, &set) != 0) {
		pold_pathset_fini(&set);
		return EC_ENOMEM;
	}
	return 0;
}

static void on_assigned(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;
	struct place_pass *ps = t->ps;

	if (reply_begin(t, reply) == 0 && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements > 0 && assigned_take(ps, ps->boxes[t->a].id, reply) != 0)
		pass_fail(ps, "out of memory reading assignments");
	reply_end(t);
}

/* --- reading: demand ----------------------------------------------------------------- */

static int acc_push(struct place_pass *ps, uint32_t region, uint32_t minute, int is_miss,
                    double value, const char *path, size_t len)
{
	struct place_acc *a;

	if (ps->n_acc == ps->cap_acc) {
		size_t cap = ps->cap_acc ? ps->cap_acc * 2 : 1024;
		struct place_acc *v = realloc(ps->acc, cap * sizeof *v);

		if (!v)
			return EC_ENOMEM;
		ps->acc = v;
		ps->cap_acc = cap;
	}
	a = &ps->acc[ps->n_acc];
	if (!(a->path = strndup(path, len)))
		return EC_ENOMEM;
	a->region = region;
	a->minute = minute;
	a->is_miss = is_miss;
	a->value = value;
	ps->n_acc++;
	return 0;
}

/* A ZRANGE/ZREVRANGE ... WITHSCORES reply as (member, score) pairs; calls each(). */
static int zset_each(struct place_pass *ps, const struct redisReply *reply,
                     int (*each)(struct place_pass *, const struct place_tag *,
                                 const struct redisReply *, double),
                     const struct place_tag *t)
{
	if (reply->type != REDIS_REPLY_ARRAY)
		return 0;
	for (size_t i = 0; i + 1 < reply->elements; i += 2) {
		const struct redisReply *m = reply->element[i], *s = reply->element[i + 1];
		char *end;
		double v;

		if (m->type != REDIS_REPLY_STRING || s->type != REDIS_REPLY_STRING ||
		    m->len == 0 || m->str[0] != '/')
			continue; /* not an object path: nothing to place */
		v = strtod(s->str, &end);
		if (*end != '\0' || !(v > 0) || v > 1e15)
			continue;
		if (each(ps, t, m, v) != 0)
			return EC_ENOMEM;
	}
	return 0;
}

static int each_pop(struct place_pass *ps, const struct place_tag *t,
                    const struct redisReply *m, double v)
{
	return acc_push(ps, t->a, t->b, 0, v, m->str, m->len);
}

static int each_miss(struct place_pass *ps, const struct place_tag *t,
                     const struct redisReply *m, double v)
{
	return acc_push(ps, t->a, t->b, 1, v, m->str, m->len);
}

static int each_pub(struct place_pass *ps, const struct place_tag *t,
                    const struct redisReply *m, double v)
{
	struct place_ann *a;

	if (ps->n_ann == ps->cap_ann) {
		size_t cap = ps->cap_ann ? ps->cap_ann * 2 : 64;
		struct place_ann *nv = realloc(ps->ann, cap * sizeof *nv);

		if (!nv)
			return EC_ENOMEM;
		ps->ann = nv;
		ps->cap_ann = cap;
	}
	a = &ps->ann[ps->n_ann];
	memset(a, 0, sizeof *a);
	if (!(a->path = strndup(m->str, m->len)))
		return EC_ENOMEM;
	a->region = t->a;
	a->rps = v;
	ps->n_ann++;
	return 0;
}

static void on_pop(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;

	if (reply_begin(t, reply) == 0 && zset_each(t->ps, reply, each_pop, t) != 0)
		pass_fail(t->ps, "out of memory reading popularity");
	reply_end(t);
}

static void on_miss(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;

	if (reply_begin(t, reply) == 0 && zset_each(t->ps, reply, each_miss, t) != 0)
		pass_fail(t->ps, "out of memory reading fallbacks");
	reply_end(t);
}

static void on_pub(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;

	if (reply_begin(t, reply) == 0 && zset_each(t->ps, reply, each_pub, t) != 0)
		pass_fail(t->ps, "out of memory reading announcements");
	reply_end(t);
}

static const char *ann_region_name(const struct place_pass *ps, const struct place_ann *a)
{
	return a->region == PLACE_ALL ? "_all" : ps->regions[a->region];
}

/* HMGET echos:pubmeta:{<path>} expires_ms regions size_bytes for the announcements
 * ann[t->a .. t->b) (all of one path). Live ones become demand floors; dead ones leave
 * their set (docs/redis.md: readers remove them). */
static void on_pubmeta(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;
	struct place_pass *ps = t->ps;

	if (reply_begin(t, reply) == 0 && reply->type == REDIS_REPLY_ARRAY &&
	    reply->elements == 3) {
		const struct redisReply *e = reply->element[0], *g = reply->element[1];
		const struct redisReply *z = reply->element[2];
		const char *expires = e->type == REDIS_REPLY_STRING ? e->str : NULL;
		const char *regions = g->type == REDIS_REPLY_STRING ? g->str : NULL;
		uint64_t size = z->type == REDIS_REPLY_STRING ? strtoull(z->str, NULL, 10) : 0;

		for (uint32_t i = t->a; i < t->b; i++) {
			struct place_ann *a = &ps->ann[i];
			const char *rn = ann_region_name(ps, a);

			a->size_bytes = size;
			if (pold_pub_is_live(regions, expires, rn, ps->wall_ms)) {
				int rc = 0;

				if (a->region != PLACE_ALL)
					rc = acc_push(ps, a->region, PLACE_ANNOUNCED, 0, a->rps,
					              a->path, strlen(a->path));
				for (uint32_t k = 0; a->region == PLACE_ALL && k < ps->n_regions; k++)
					rc |= acc_push(ps, k, PLACE_ANNOUNCED, 0, a->rps, a->path,
					               strlen(a->path));
				if (rc != 0)
					pass_fail(ps, "out of memory reading announcements");
			} else {
				const char *argv[3] = { "ZREM", NULL, a->path };
				size_t lens[3];
				char key[128];

				snprintf(key, sizeof key, "echos:pub:{%s}", rn);
				argv[1] = key;
				lens[0] = 4;
				lens[1] = strlen(key);
				lens[2] = strlen(a->path);
				/* best effort: the next reader removes it otherwise */
				ec_redis_commandv(ps->pl->p->redis, NULL, NULL, 3, argv, lens);
			}
		}
	}
	reply_end(t);
}

/* --- computing ------------------------------------------------------------------------ */

static int cmp_region(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Collects the distinct regions of up boxes and gives each box its index. */
static int pass_regions(struct place_pass *ps)
{
	size_t n = 0;

	ps->regions = calloc(ps->n_boxes + 1, sizeof *ps->regions);
	if (!ps->regions)
		return EC_ENOMEM;
	for (size_t i = 0; i < ps->n_boxes; i++) {
		const struct place_box *b = &ps->boxes[i];
		int seen = 0;

		if (!b->is_up)
			continue;
		for (size_t k = 0; k < n && !seen; k++)
			seen = strcmp(ps->regions[k], b->region) == 0;
		if (!seen) {
			if (!(ps->regions[n] = strdup(b->region)))
				return EC_ENOMEM;
			ps->n_regions = ++n;
		}
	}
	qsort(ps->regions, n, sizeof *ps->regions, cmp_region);
	for (size_t i = 0; i < ps->n_boxes; i++) {
		struct place_box *b = &ps->boxes[i];
		const char *key = b->region;
		char **hit;

		if (!b->is_up)
			continue;
		hit = bsearch(&key, ps->regions, n, sizeof *ps->regions, cmp_region);
		EC_ASSERT(hit);
		b->region_idx = (uint32_t)(hit - ps->regions);
	}
	return 0;
}

static int cmp_acc(const void *a, const void *b)
{
	const struct place_acc *x = a, *y = b;
	int c;

	if (x->region != y->region)
		return x->region < y->region ? -1 : 1;
	c = strcmp(x->path, y->path);
	return c;
}

static int cmp_ann_path(const void *a, const void *b)
{
	const struct place_ann *x = a, *y = b;

	return strcmp(x->path, y->path);
}

/* (region, path) a box of that region holds in the written state: for hysteresis. */
struct place_held {
	uint32_t region;
	const char *path;
};

static int cmp_held(const void *a, const void *b)
{
	const struct place_held *x = a, *y = b;

	if (x->region != y->region)
		return x->region < y->region ? -1 : 1;
	return strcmp(x->path, y->path);
}

/* Object hash → path, for turning the placement back into paths. */
struct place_name {
	uint64_t hash;
	const char *path;
};

static int cmp_name(const void *a, const void *b)
{
	const struct place_name *x = a, *y = b;

	return x->hash < y->hash ? -1 : x->hash > y->hash;
}

/* The rows placement reads, one per (region, path), from the sightings: the demand
 * estimate of the minute counts, raised to the announced floor. paths[i] is borrowed
 * from ps->acc (sorted by then). */
struct place_rows {
	struct pol_place_obj *objs;
	const char **paths;
	uint32_t *regions;
	double *miss_recent, *miss_avg; /* origin fallbacks/s (pold_miss_apply()) */
	size_t n, n_announced;
	size_t n_missing, n_raised; /* rows with fallbacks; rows given a replica for them */
};

static uint64_t snap_key(uint64_t obj_hash, uint64_t region_hash)
{
	return obj_hash ^ (region_hash * 0x9e3779b97f4a7c15ull);
}

static int cmp_snap(const void *a, const void *b)
{
	const struct place_snap *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* The rate of requests (or of fallbacks: is_miss) since the reference snapshot (an
 * object missing from it had none then), or -1 without a reference. */
static double snap_recent(const struct pold_place *pl, const struct place_snap *now_snap,
                          int is_miss, double prev, int64_t now_ms)
{
	const struct place_snap *hit;
	double ref;

	if (pl->ref_ms == 0)
		return -1;
	hit = pl->n_ref ? bsearch(now_snap, pl->ref, pl->n_ref, sizeof *pl->ref, cmp_snap)
	                : NULL;
	ref = !hit ? 0 : is_miss ? hit->misses : hit->count;
	return pold_demand_recent(is_miss ? now_snap->misses : now_snap->count, prev, now_ms,
	                          ref, pl->ref_ms);
}

/* Takes snap (heap): it becomes the reference once the current one is POLD_BURST_MIN_MS
 * old, so the recent rate is measured over at least that long. */
static void snap_update(struct pold_place *pl, struct place_snap *snap, size_t n,
                        int64_t now_ms)
{
	if (pl->ref_ms != 0 && now_ms - pl->ref_ms < POLD_BURST_MIN_MS && now_ms >= pl->ref_ms) {
		free(snap);
		return;
	}
	if (n)
		qsort(snap, n, sizeof *snap, cmp_snap);
	free(pl->ref);
	pl->ref = snap;
	pl->n_ref = n;
	pl->ref_ms = now_ms;
}

static int build_rows(struct place_pass *ps, struct place_rows *rows)
{
	const struct pold_conf *c = &ps->pl->p->conf;
	size_t window = (size_t)(c->place_window_ms / 60000), i, j;
	double counts[PLACE_MAX_MINUTES], misses[PLACE_MAX_MINUTES];
	struct place_snap *snap;
	size_t n_snap = 0;

	if (window < 1)
		window = 1;
	if (window > PLACE_MAX_MINUTES)
		window = PLACE_MAX_MINUTES;
	memset(rows, 0, sizeof *rows);
	snap = malloc((ps->n_acc + 1) * sizeof *snap);
	if (!snap)
		return EC_ENOMEM;
	if (ps->n_acc)
		qsort(ps->acc, ps->n_acc, sizeof *ps->acc, cmp_acc);
	if (ps->n_ann)
		qsort(ps->ann, ps->n_ann, sizeof *ps->ann, cmp_ann_path);
	rows->objs = calloc(ps->n_acc + 1, sizeof *rows->objs);
	rows->paths = calloc(ps->n_acc + 1, sizeof *rows->paths);
	rows->regions = calloc(ps->n_acc + 1, sizeof *rows->regions);
	rows->miss_recent = calloc(ps->n_acc + 1, sizeof *rows->miss_recent);
	rows->miss_avg = calloc(ps->n_acc + 1, sizeof *rows->miss_avg);
	if (!rows->objs || !rows->paths || !rows->regions || !rows->miss_recent ||
	    !rows->miss_avg) {
		free(snap);
		return EC_ENOMEM;
	}
	for (i = 0; i < ps->n_acc; i = j) {
		const struct place_acc *a = &ps->acc[i];
		struct pol_place_obj *o = &rows->objs[rows->n];
		struct place_ann key = { .path = a->path }, *ann;
		double floor_rps = 0, rate, recent, m_avg, m_recent;
		const char *region = ps->regions[a->region];
		uint64_t obj_hash, region_hash;

		memset(counts, 0, window * sizeof *counts);
		memset(misses, 0, window * sizeof *misses);
		for (j = i; j < ps->n_acc && ps->acc[j].region == a->region &&
		            strcmp(ps->acc[j].path, a->path) == 0; j++) {
			const struct place_acc *s = &ps->acc[j];

			if (s->minute == PLACE_ANNOUNCED) {
				if (s->value > floor_rps)
					floor_rps = s->value;
			} else if (s->minute < window) {
				(s->is_miss ? misses : counts)[s->minute] += s->value;
			}
		}
		rate = pold_demand_rate(counts, window, ps->wall_ms, c->place_half_life_ms);
		obj_hash = pol_hash_bytes(a->path, strlen(a->path));
		region_hash = pol_hash_bytes(region, strlen(region));
		snap[n_snap] = (struct place_snap){ snap_key(obj_hash, region_hash), counts[0],
		                                    misses[0] };
		recent = snap_recent(ps->pl, &snap[n_snap], 0, window > 1 ? counts[1] : 0,
		                     ps->wall_ms);
		if (recent > rate)
			rate = recent;
		m_avg = pold_demand_rate(misses, window, ps->wall_ms, c->place_half_life_ms);
		m_recent = snap_recent(ps->pl, &snap[n_snap++], 1, window > 1 ? misses[1] : 0,
		                       ps->wall_ms);
		if (m_recent < 0)
			m_recent = m_avg; /* no reference yet: the decayed estimate stands in */
		if (m_recent > rate)
			rate = m_recent; /* fallbacks are requests too */
		if (m_avg > rate)
			rate = m_avg;
		if (floor_rps > 0)
			rows->n_announced++;
		if (floor_rps > rate)
			rate = floor_rps;
		if (rate < ps->pl->params.min_rate)
			continue; /* the tail: keep the input small */
		ann = ps->n_ann ? bsearch(&key, ps->ann, ps->n_ann, sizeof *ps->ann,
		                          cmp_ann_path) : NULL;
		o->obj_hash = obj_hash;
		o->region_hash = region_hash;
		o->size_bytes = ann && ann->size_bytes ? ann->size_bytes
		                                       : c->place_default_object_bytes;
		o->rate = rate;
		rows->miss_recent[rows->n] = m_recent;
		rows->miss_avg[rows->n] = m_avg;
		rows->paths[rows->n] = a->path;
		rows->regions[rows->n] = a->region;
		rows->n++;
	}
	snap_update(ps->pl, snap, n_snap, ps->wall_ms);
	return 0;
}

static void rows_fini(struct place_rows *rows)
{
	free(rows->miss_recent);
	free(rows->miss_avg);
	free(rows->objs);
	free(rows->paths);
	free(rows->regions);
}

/* Sets each row's held count: up boxes of its region that hold it in the written state.
 * Rows are sorted by (region, path), so this is one merge. */
static int rows_held(struct place_pass *ps, struct place_rows *rows)
{
	const struct pold_assign *w = &ps->pl->written;
	struct place_held *h;
	size_t n = 0, i, k = 0;

	h = malloc((pold_assign_total(w) + 1) * sizeof *h);
	if (!h)
		return EC_ENOMEM;
	for (i = 0; i < ps->n_boxes; i++) {
		const struct place_box *b = &ps->boxes[i];
		const struct pold_pathset *s = b->is_up ? pold_assign_get(w, b->id) : NULL;

		for (size_t m = 0; s && m < s->n; m++)
			h[n++] = (struct place_held){ b->region_idx, s->v[m] };
	}
	qsort(h, n, sizeof *h, cmp_held);
	for (i = 0; i < rows->n; i++) {
		struct place_held key = { rows->regions[i], rows->paths[i] };

		while (k < n && cmp_held(&h[k], &key) < 0)
			k++;
		for (; k < n && cmp_held(&h[k], &key) == 0; k++)
			rows->objs[i].held++;
	}
	free(h);
	return 0;
}

static int cmp_raise(const void *a, const void *b)
{
	const struct place_raise *x = a, *y = b;

	return x->key < y->key ? -1 : x->key > y->key;
}

/* Applies each row's fallbacks (pold_miss_apply(), after rows_held()) and keeps, for the
 * next passes, when the rows raised now or within the cooldown were raised. */
static int rows_misses(struct place_pass *ps, struct place_rows *rows)
{
	struct pold_place *pl = ps->pl;
	struct place_raise *next = malloc((rows->n + 1) * sizeof *next);
	size_t n = 0;

	if (!next)
		return EC_ENOMEM;
	for (size_t i = 0; i < rows->n; i++) {
		struct pol_place_obj *o = &rows->objs[i];
		struct place_raise key = { snap_key(o->obj_hash, o->region_hash), 0 };
		const struct place_raise *hit = NULL;
		int64_t since;

		if (pl->n_raised)
			hit = bsearch(&key, pl->raised, pl->n_raised, sizeof *pl->raised,
			              cmp_raise);
		since = hit && ps->wall_ms >= hit->ms ? ps->wall_ms - hit->ms : -1;

		if (rows->miss_recent[i] > 0 || rows->miss_avg[i] > 0)
			rows->n_missing++;
		if (pold_miss_apply(o, rows->miss_recent[i], rows->miss_avg[i], since, &pl->miss)) {
			rows->n_raised++;
			next[n++] = (struct place_raise){ key.key, ps->wall_ms };
		} else if (since >= 0 && since < pl->miss.cooldown_ms) {
			next[n++] = *hit;
		}
	}
	if (n)
		qsort(next, n, sizeof *next, cmp_raise);
	free(pl->raised);
	pl->raised = next;
	pl->n_raised = n;
	ec_metric_add(pl->m_raises, (double)rows->n_raised);
	return 0;
}

/* Turns the placement into the next assignment table (paths copied). */
static int result_to_assign(struct place_pass *ps, const struct place_rows *rows,
                            const struct pol_place_result *res, const size_t *box_of,
                            struct pold_assign *next)
{
	struct place_name *names = malloc((rows->n + 1) * sizeof *names);

	if (!names)
		return EC_ENOMEM;
	for (size_t i = 0; i < rows->n; i++)
		names[i] = (struct place_name){ rows->objs[i].obj_hash, rows->paths[i] };
	qsort(names, rows->n, sizeof *names, cmp_name);
	for (size_t i = 0; i < res->n_boxes; i++) {
		size_t n, k;
		const uint64_t *objs = pol_place_box_objs(res, i, &n);
		struct pold_pathset set = { NULL, 0 };
		char **v;

		if (n == 0)
			continue;
		if (!(v = calloc(n, sizeof *v)))
			goto nomem;
		for (k = 0; k < n; k++) {
			struct place_name key = { objs[k], NULL };
			const struct place_name *hit = bsearch(&key, names, rows->n, sizeof *names,
			                                       cmp_name);

			EC_ASSERT(hit); /* placement only returns hashes it was given */
			if (!(v[k] = strdup(hit->path)))
				break;
		}
		if (k < n) {
			while (k-- > 0)
				free(v[k]);
			free(v);
			goto nomem;
		}
		pold_pathset_take(&set, v, n);
		if (pold_assign_put(next, ps->boxes[box_of[i]].id, &set) != 0) {
			pold_pathset_fini(&set);
			goto nomem;
		}
	}
	free(names);
	return 0;
nomem:
	free(names);
	return EC_ENOMEM;
}

/* --- writing ------------------------------------------------------------------------- */

static void on_written(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct place_tag *t = arg;

	if (reply_begin(t, reply) != 0)
		t->ps->write_errors++;
	reply_end(t);
}

/* SADD or SREM members[0..n) to key, in chunks. */
static void send_members(struct place_pass *ps, const char *cmd, const char *key,
                         const char **members, size_t n)
{
	const char *argv[PLACE_CHUNK + 2];
	size_t lens[PLACE_CHUNK + 2];

	for (size_t i = 0; i < n; i += PLACE_CHUNK) {
		size_t m = n - i < PLACE_CHUNK ? n - i : PLACE_CHUNK;

		argv[0] = cmd;
		lens[0] = strlen(cmd);
		argv[1] = key;
		lens[1] = strlen(key);
		for (size_t k = 0; k < m; k++) {
			argv[k + 2] = members[i + k];
			lens[k + 2] = strlen(members[i + k]);
		}
		send_argv(ps, on_written, 0, 0, (int)m + 2, argv, lens);
	}
}

static size_t chunks(size_t n)
{
	return (n + PLACE_CHUNK - 1) / PLACE_CHUNK;
}

/* Sends the changes of every box and the TTL renewals in one pipeline; the written
 * state becomes next at once (a failed write makes the next pass read it back). */
static void pass_write(struct place_pass *ps, struct pold_assign *next,
                       const struct place_rows *rows, double compute_ms)
{
	struct pold_place *pl = ps->pl;
	const struct pold_conf *c = &pl->p->conf;
	struct pold_box_delta *d = NULL;
	size_t nd = 0, changes = 0, cmds = 0, adds = 0, dels = 0, i;
	long long ttl_s = (long long)(c->place_assign_ttl_ms / 1000);
	int refresh = ps->wall_ms - pl->refreshed_ms >= c->place_assign_ttl_ms / 4;

	if (pold_assign_diff(&pl->written, next, &d, &nd, &changes) != 0) {
		pass_fail(ps, "out of memory comparing assignments");
		pass_end(ps);
		return;
	}
	for (i = 0; i < nd; i++)
		cmds += d[i].is_gone ? 1 : chunks(d[i].d.n_add) + chunks(d[i].d.n_del) + 1;
	if (refresh)
		cmds += next->n;
	if (stage_begin(ps, ST_WRITE, cmds) != 0) {
		pold_box_deltas_free(d, nd);
		pass_end(ps);
		return;
	}
	for (i = 0; i < nd; i++) {
		char key[POLD_BOX_ID_MAX + 32];

		snprintf(key, sizeof key, "echos:assign:{%s}", d[i].id);
		adds += d[i].d.n_add;
		dels += d[i].d.n_del;
		if (d[i].is_gone) {
			send_fmt(ps, on_written, 0, 0, "DEL %s", key);
			continue;
		}
		send_members(ps, "SREM", key, d[i].d.del, d[i].d.n_del);
		send_members(ps, "SADD", key, d[i].d.add, d[i].d.n_add);
		if (!refresh)
			send_fmt(ps, on_written, 0, 0, "EXPIRE %s %lld", key, ttl_s);
	}
	for (i = 0; refresh && i < next->n; i++)
		send_fmt(ps, on_written, 0, 0, "EXPIRE echos:assign:{%s} %lld", next->v[i].id,
		         ttl_s);
	if (refresh && !ps->is_failed)
		pl->refreshed_ms = ps->wall_ms;
	if (changes > 0)
		ec_log_info("place: %zu objects (%zu announced, %zu falling back, %zu raised) in "
		            "%zu regions, %zu assigned on %zu boxes; +%zu -%zu on %zu boxes "
		            "(computed in %.1f ms)", rows->n, rows->n_announced, rows->n_missing,
		            rows->n_raised, ps->n_regions, pold_assign_total(next), next->n,
		            adds, dels, nd, compute_ms);
	pold_box_deltas_free(d, nd); /* borrowed strings: free before the tables change */
	pold_assign_move(&pl->written, next);
	ec_metric_add(pl->m_changes, (double)changes);
	ec_metric_set(pl->m_assign, (double)pold_assign_total(&pl->written));
	ec_metric_set(pl->m_objects, (double)rows->n);
	stage_sent(ps);
}

/* Everything is read: place and write. */
static void pass_compute(struct place_pass *ps)
{
	struct pold_place *pl = ps->pl;
	struct place_rows rows;
	struct pol_place_box *boxes = NULL;
	struct pol_place_result *res = NULL;
	struct pold_assign next = { NULL, 0, 0 };
	size_t *box_of = NULL, nb = 0;
	int64_t t0 = ec_now_us();
	int rc = EC_ENOMEM;

	if (ps->is_rereading) {
		pold_assign_move(&pl->written, &ps->reread);
		pl->is_known = 1;
		pl->refreshed_ms = 0;
		ec_metric_set(pl->m_assign, (double)pold_assign_total(&pl->written));
	}
	if (build_rows(ps, &rows) != 0)
		goto out;
	if ((size_t)pl->p->conf.place_max_objects < rows.n) {
		ec_log_warn("place: %zu objects exceed place.max_objects (%lld); keeping the "
		            "current assignments", rows.n, (long long)pl->p->conf.place_max_objects);
		rc = 0;
		goto out;
	}
	boxes = calloc(ps->n_boxes + 1, sizeof *boxes);
	box_of = calloc(ps->n_boxes + 1, sizeof *box_of);
	if (!boxes || !box_of || rows_held(ps, &rows) != 0 || rows_misses(ps, &rows) != 0)
		goto out;
	for (size_t i = 0; i < ps->n_boxes; i++) {
		const struct place_box *b = &ps->boxes[i];
		const char *region;

		if (!b->is_up)
			continue;
		region = ps->regions[b->region_idx];
		boxes[nb] = (struct pol_place_box){
			.id_hash = pol_hash_bytes(b->id, strlen(b->id)),
			.region_hash = pol_hash_bytes(region, strlen(region)),
			.storage_bytes = (uint64_t)(b->storage_bytes *
			                            pl->p->conf.place_storage_share),
			.uplink_bps = (uint64_t)b->uplink_bps,
			.is_up = 1,
		};
		box_of[nb++] = i;
	}
	rc = pol_place_compute(rows.objs, rows.n, boxes, nb, &pl->params, &res);
	if (rc == 0)
		rc = result_to_assign(ps, &rows, res, box_of, &next);
	if (rc == 0) {
		pass_write(ps, &next, &rows, (double)(ec_now_us() - t0) / 1000.0);
		pold_assign_fini(&next);
		pol_place_result_free(res);
		free(boxes);
		free(box_of);
		rows_fini(&rows);
		return;
	}
out:
	if (rc != 0)
		pass_fail(ps, rc == EC_ENOMEM ? "out of memory placing" : "placement refused "
		          "its input");
	pold_assign_fini(&next);
	pol_place_result_free(res);
	free(boxes);
	free(box_of);
	rows_fini(&rows);
	pass_end(ps);
}

/* --- the stages ---------------------------------------------------------------------- */

static void stage_boxes(struct place_pass *ps)
{
	size_t n = ps->n_boxes;

	if (stage_begin(ps, ST_BOXES, n * 2) != 0)
		return pass_end(ps);
	for (size_t i = 0; i < n; i++) {
		send_fmt(ps, on_box, (uint32_t)i, 0, "HGETALL echos:box:{%s}", ps->boxes[i].id);
		if (ps->is_rereading)
			send_fmt(ps, on_assigned, (uint32_t)i, 0, "SMEMBERS echos:assign:{%s}",
			         ps->boxes[i].id);
	}
	stage_sent(ps);
}

static void stage_demand(struct place_pass *ps)
{
	const struct pold_conf *c = &ps->pl->p->conf;
	int64_t minute = ps->wall_ms / 60000;
	size_t window = (size_t)(c->place_window_ms / 60000);

	if (window < 1)
		window = 1;
	if (window > PLACE_MAX_MINUTES)
		window = PLACE_MAX_MINUTES;
	if (pass_regions(ps) != 0) {
		pass_fail(ps, "out of memory");
		return pass_end(ps);
	}
	if (stage_begin(ps, ST_DEMAND, ps->n_regions * (2 * window + 1) + 1) != 0)
		return pass_end(ps);
	for (size_t r = 0; r < ps->n_regions; r++) {
		for (size_t i = 0; i < window; i++) {
			send_fmt(ps, on_pop, (uint32_t)r, (uint32_t)i,
			         "ZREVRANGE echos:pop:{%s}:m:%" PRId64 " 0 %lld WITHSCORES",
			         ps->regions[r], minute - (int64_t)i, (long long)c->place_top - 1);
			send_fmt(ps, on_miss, (uint32_t)r, (uint32_t)i,
			         "ZREVRANGE echos:miss:{%s}:m:%" PRId64 " 0 %lld WITHSCORES",
			         ps->regions[r], minute - (int64_t)i, (long long)c->place_top - 1);
		}
		send_fmt(ps, on_pub, (uint32_t)r, 0, "ZRANGE echos:pub:{%s} 0 -1 WITHSCORES",
		         ps->regions[r]);
	}
	if (ps->n_regions > 0)
		send_fmt(ps, on_pub, PLACE_ALL, 0, "ZRANGE echos:pub:{_all} 0 -1 WITHSCORES");
	stage_sent(ps);
}

static void stage_pubmeta(struct place_pass *ps)
{
	size_t groups = 0, i, j;

	if (ps->n_ann)
		qsort(ps->ann, ps->n_ann, sizeof *ps->ann, cmp_ann_path);
	for (i = 0; i < ps->n_ann; i = j) {
		for (j = i; j < ps->n_ann && strcmp(ps->ann[j].path, ps->ann[i].path) == 0; j++)
			;
		groups++;
	}
	if (stage_begin(ps, ST_PUBMETA, groups) != 0)
		return pass_end(ps);
	for (i = 0; i < ps->n_ann; i = j) {
		const char *argv[5] = { "HMGET", NULL, "expires_ms", "regions", "size_bytes" };
		size_t lens[5] = { 5, 0, 10, 7, 10 };
		char *key;

		for (j = i; j < ps->n_ann && strcmp(ps->ann[j].path, ps->ann[i].path) == 0; j++)
			;
		if (asprintf(&key, "echos:pubmeta:{%s}", ps->ann[i].path) < 0) {
			pass_fail(ps, "out of memory");
			break;
		}
		argv[1] = key;
		lens[1] = strlen(key);
		send_argv(ps, on_pubmeta, (uint32_t)i, (uint32_t)j, 5, argv, lens);
		free(key);
	}
	stage_sent(ps);
}

/* Called when every reply of a stage is in. */
static void pass_next(struct place_pass *ps)
{
	if (ps->is_failed)
		return pass_end(ps);
	switch (ps->stage) {
	case ST_INDEX:
		return stage_boxes(ps);
	case ST_BOXES:
		return stage_demand(ps);
	case ST_DEMAND:
		return stage_pubmeta(ps);
	case ST_PUBMETA:
		return pass_compute(ps);
	case ST_WRITE:
		if (ps->write_errors)
			pass_fail(ps, "a write was refused or lost");
		return pass_end(ps);
	}
}

static void on_place_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pold_place *pl = arg;
	struct place_pass *ps;

	EC_ASSERT(pl->magic == PLACE_MAGIC);
	if (pl->pass) {
		ec_log_debug("place: previous pass still running; skipping this interval");
		return;
	}
	if (!ec_redis_is_up(pl->p->redis))
		return; /* the daemon logs the link's state */
	ps = calloc(1, sizeof *ps);
	if (!ps) {
		ec_log_warn("place: out of memory starting a pass; retrying next interval");
		return;
	}
	ps->pl = pl;
	ps->wall_ms = ec_wall_ms();
	ps->t0_us = ec_now_us();
	/* read back what was written after a (re)connection, and with every TTL renewal:
	 * a key someone else changed or deleted is then repaired within ttl/4 */
	ps->is_rereading = !pl->is_known ||
	                   ps->wall_ms - pl->refreshed_ms >= pl->p->conf.place_assign_ttl_ms / 4;
	pl->pass = ps;
	if (stage_begin(ps, ST_INDEX, 1) != 0)
		return pass_end(ps);
	send_fmt(ps, on_index, 0, 0, "ZRANGE echos:{boxes} 0 -1");
	stage_sent(ps);
}

/* --- lifetime ------------------------------------------------------------------------ */

static int place_metrics(struct pold_place *pl)
{
	static const double bounds[] = { 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
	                                 5, 10 };
	struct ec_metrics *m = pl->p->metrics;

	pl->m_seconds = ec_metrics_histogram(m, "echos_policy_place_seconds",
	                                     "Duration of a placement pass: reads, placement "
	                                     "and acknowledged writes", NULL, bounds,
	                                     sizeof bounds / sizeof *bounds);
	pl->m_assign = ec_metrics_gauge(m, "echos_policy_assignments",
	                                "Object assignments written (sum over boxes of "
	                                "echos:assign members)", NULL);
	pl->m_changes = ec_metrics_counter(m, "echos_policy_assignment_changes_total",
	                                   "Assignment members added or removed", NULL);
	pl->m_objects = ec_metrics_gauge(m, "echos_policy_place_objects",
	                                 "Rows (region, object) the last pass placed", NULL);
	pl->m_ok = ec_metrics_counter(m, "echos_policy_place_passes_total",
	                              "Placement passes by result", "result=\"ok\"");
	pl->m_failed = ec_metrics_counter(m, "echos_policy_place_passes_total",
	                                  "Placement passes by result", "result=\"failed\"");
	pl->m_raises = ec_metrics_counter(m, "echos_policy_miss_raises_total",
	                                  "Replicas added to objects that kept falling back to "
	                                  "the origin (replica floor raised)", NULL);
	return pl->m_seconds && pl->m_assign && pl->m_changes && pl->m_objects && pl->m_ok &&
	       pl->m_failed && pl->m_raises ? 0 : EC_ENOMEM;
}

struct pold_place *pold_place_new(struct pold *p)
{
	const struct pold_conf *c = &p->conf;
	struct pold_place *pl = calloc(1, sizeof *pl);
	struct timeval tv;

	if (!pl)
		return NULL;
	pl->magic = PLACE_MAGIC;
	pl->p = p;
	pol_place_params_default(&pl->params);
	pl->params.object_share = c->place_object_share;
	pl->params.max_util = c->place_max_util;
	pl->params.min_rate = c->place_min_rate;
	pl->params.stickiness = c->place_stickiness;
	pl->params.max_replicas = (uint32_t)c->place_max_replicas;
	pl->params.fallback_weight = c->place_miss_weight;
	pl->miss = (struct pold_miss_params){ c->place_miss_weight, c->place_miss_raise_rate,
	                                      c->place_miss_cooldown_ms };
	pl->tick = event_new(p->base, -1, EV_PERSIST, on_place_tick, pl);
	if (!pl->tick || place_metrics(pl) != 0) {
		pold_place_free(pl);
		return NULL;
	}
	tv.tv_sec = c->place_interval_ms / 1000;
	tv.tv_usec = (c->place_interval_ms % 1000) * 1000;
	event_add(pl->tick, &tv);
	return pl;
}

void pold_place_free(struct pold_place *pl)
{
	if (!pl)
		return;
	EC_ASSERT(pl->magic == PLACE_MAGIC);
	EC_ASSERT(!pl->pass); /* the link was freed first: every reply came back */
	if (pl->tick)
		event_free(pl->tick);
	pold_assign_fini(&pl->written);
	free(pl->ref);
	free(pl->raised);
	pl->magic = 0;
	free(pl);
}

void pold_place_on_redis_state(struct pold_place *pl, int is_up)
{
	if (!pl)
		return;
	EC_ASSERT(pl->magic == PLACE_MAGIC);
	if (!is_up)
		pl->is_known = 0; /* Redis may have restarted empty: read back before writing */
}
