/* sim_run: replays a trace against one policy on simulated boxes (storage, uplink as a
 * fluid queue, SLA as a bound on it) and counts where every byte came from. Pull-through
 * caches fill on a miss; echos pins what placement assigns from past popularity (within a
 * prefetch budget) and caches the rest with S3-FIFO; the references place clairvoyantly.
 * Owns all state of a run and frees it before returning; writes nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_time.h"
#include "pol_decay.h"
#include "pol_place.h"
#include "pol_score.h"
#include "sim.h"

#define RUN_MAX_HOLDERS 8

static const char *const policy_names[SIM_POL_COUNT_] = {
	[SIM_POL_LRU] = "lru",
	[SIM_POL_LFU] = "lfu",
	[SIM_POL_S3FIFO] = "s3fifo",
	[SIM_POL_ECHOS] = "echos",
	[SIM_POL_UPPER] = "upper-bound",
	[SIM_POL_ORACLE] = "oracle-window",
};

const char *sim_policy_name(enum sim_policy p)
{
	return (unsigned)p < SIM_POL_COUNT_ ? policy_names[p] : "?";
}

double sim_stats_byte_offload(const struct sim_stats *s)
{
	return s->req_bytes ? (double)s->hit_bytes / (double)s->req_bytes : 0;
}

double sim_stats_req_offload(const struct sim_stats *s)
{
	return s->reqs ? (double)s->hit_reqs / (double)s->reqs : 0;
}

uint64_t sim_stats_origin_egress(const struct sim_stats *s)
{
	return s->fallback_bytes + s->fill_bytes + s->prefetch_bytes;
}

void sim_stats_fini(struct sim_stats *s)
{
	free(s->bin_bytes);
	free(s->bin_hit_bytes);
	s->bin_bytes = s->bin_hit_bytes = NULL;
}

struct run_box {
	uint64_t id_hash;
	uint64_t storage_bytes;
	double uplink_Bps;   /* bytes/s */
	double backlog;      /* bytes queued on the uplink as of last_ms */
	int64_t last_ms;
	uint16_t region;
	int is_up;
	unsigned bucket;     /* pol_place_bucket() */
	/* echos */
	int was_up;          /* is_up at the last round */
	uint64_t pinned_bytes; /* assigned objects; the cache has the rest */
	double plan_bps;     /* planned load of the assigned objects */
	double min_nz;       /* at most the least run_holder.nz of its assignments */
	uint64_t prefetch_left; /* prefetch budget left in this round */
	uint32_t *pins;      /* holders of the objects assigned here */
	size_t n_pins, cap_pins;
};

/* One object in one region: the boxes holding it (best rendezvous first) for echos and
 * the references, and for echos its decayed popularity (pol_decay counters). */
struct run_holder {
	uint32_t obj;
	uint16_t region;
	uint8_t n;
	uint32_t box[RUN_MAX_HOLDERS];
	uint64_t round;      /* last round it was put on the touched list */
	uint64_t epoch;      /* last full pass it was put on the seen list */
	uint64_t count;      /* upper bound, oracle: requests in the coming window */
	double plan_bps;     /* echos: planned load of one replica */
	uint32_t home[2];    /* echos: the two boxes an unassigned request goes to ... */
	uint32_t home_epoch; /* ... as of this region_epoch + 1 */
	double nz;           /* echos: log2 of reqs brought to time 0, which orders holders
	                      * by value at any one time: log2(v) + t_ms / half-life */
	struct pol_decay_val reqs, fbs; /* echos: decayed requests, origin fallbacks */
};

/* A list of holder indices, each at most once per stamp. */
struct run_list {
	uint32_t *v;
	size_t n, cap;
};

struct run {
	const struct sim_conf *c;
	const struct sim_trace *t;
	enum sim_policy pol;
	struct sim_stats *st;
	struct run_box *boxes;
	uint32_t n_boxes;
	uint32_t *rlist[SIM_MAX_REGIONS]; /* up boxes per region */
	uint32_t rn[SIM_MAX_REGIONS];
	uint32_t region_epoch[SIM_MAX_REGIONS]; /* changes when a box goes down or up */
	struct sim_event *ev;
	size_t n_ev, next_ev;
	struct sim_cache *cache;          /* pull-through policies; echos: the free space */
	/* placement policies */
	struct sim_map hold_ix;           /* region << 32 | obj -> holders index */
	struct run_holder *hold;
	size_t n_hold, cap_hold;
	struct run_list touched;          /* echos: requested since the last round;
	                                   * references: requested in the coming window */
	uint64_t round;
	struct pol_place_result *prev;
	struct pol_place_box *pboxes;
	struct sim_map box_ix;            /* id_hash -> box */
	struct sim_map obj_ix;            /* obj_hash -> object */
	struct pol_place_params params;
	/* echos */
	int64_t hl_ms;
	struct run_list seen;             /* requested since the last full pass */
	uint64_t epoch;
	struct run_list pending;          /* additions put off to the next round */
	double theta[SIM_MAX_REGIONS];    /* value of the last object a full pass placed */
	uint64_t region_free[SIM_MAX_REGIONS]; /* unassigned bytes of up boxes */
	uint32_t full_every;              /* rounds per full pass */
	double log2_sticky;               /* log2(1 + stickiness) */
	uint64_t budget;                  /* prefetch bytes per box and round, 0: no limit */
	uint32_t *cand;                   /* [n_boxes] scratch: candidate boxes ... */
	uint64_t *cand_score;             /* ... and their scores */
};

/* CPU time of this thread, microseconds: a run's speed on one core, whatever else the
 * machine runs meanwhile. */
static int64_t run_cpu_us(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0)
		return ec_now_us();
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int list_push(struct run_list *l, uint32_t v)
{
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 4096;
		uint32_t *nv = realloc(l->v, nc * sizeof *nv);

		if (!nv)
			return EC_ENOMEM;
		l->v = nv;
		l->cap = nc;
	}
	l->v[l->n++] = v;
	return 0;
}

static void box_drain(struct run_box *b, int64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->backlog -= (double)(now_ms - b->last_ms) / 1000.0 * b->uplink_Bps;
		if (b->backlog < 0)
			b->backlog = 0;
		b->last_ms = now_ms;
	}
}

/* Can box b start sending size bytes now within the SLA? If so, queues them. */
static int box_admit(const struct run *r, struct run_box *b, int64_t now_ms, uint64_t size)
{
	box_drain(b, now_ms);
	if (b->backlog > b->uplink_Bps * r->c->sla_queue_s)
		return 0;
	b->backlog += (double)size;
	return 1;
}

static void region_rebuild(struct run *r, uint16_t reg)
{
	r->region_epoch[reg]++;
	r->rn[reg] = 0;
	for (uint32_t i = 0; i < r->n_boxes; i++)
		if (r->boxes[i].region == reg && r->boxes[i].is_up)
			r->rlist[reg][r->rn[reg]++] = i;
}

static void run_events_until(struct run *r, int64_t t_ms)
{
	while (r->next_ev < r->n_ev && r->ev[r->next_ev].t_ms <= t_ms) {
		const struct sim_event *e = &r->ev[r->next_ev++];
		struct run_box *b = &r->boxes[e->box];

		b->is_up = e->is_up;
		region_rebuild(r, b->region);
	}
}

static void count_origin(struct run *r, uint64_t size, int sla_miss)
{
	r->st->fallback_reqs++;
	r->st->fallback_bytes += size;
	r->st->sla_miss_reqs += (uint64_t)sla_miss;
}

static void count_hit(struct run *r, const struct sim_req *q, uint64_t size)
{
	r->st->hit_reqs++;
	r->st->hit_bytes += size;
	if (q->flags & SIM_REQ_FLASH)
		r->st->bin_hit_bytes[q->t_ms / SIM_BIN_MS] += size;
}

/* Pull-through: the region's two highest-rendezvous boxes that are up, in order, as
 * the redirector ranks equals; a miss fills from the origin and is kept. Returns 1
 * served from a cache, 2 filled, 0 sent to the origin, or EC_ENOMEM. */
static int serve_pull(struct run *r, const struct sim_req *q)
{
	uint32_t reg = q->region, best[2] = { UINT32_MAX, UINT32_MAX };
	uint64_t sc[2] = { 0, 0 }, oh = r->t->obj_hash[q->obj], size = r->t->obj_size[q->obj];

	for (uint32_t i = 0; i < r->rn[reg]; i++) {
		uint32_t bi = r->rlist[reg][i];
		uint64_t s = pol_rendezvous(oh, r->boxes[bi].id_hash);

		if (best[0] == UINT32_MAX || s > sc[0]) {
			best[1] = best[0], sc[1] = sc[0];
			best[0] = bi, sc[0] = s;
		} else if (best[1] == UINT32_MAX || s > sc[1]) {
			best[1] = bi, sc[1] = s;
		}
	}
	for (int k = 0; k < 2; k++) {
		if (best[k] == UINT32_MAX || !box_admit(r, &r->boxes[best[k]], q->t_ms, size))
			continue;
		if (sim_cache_lookup(r->cache, best[k], q->obj)) {
			count_hit(r, q, size);
			return 1;
		}
		r->st->fill_reqs++;
		r->st->fill_bytes += size;
		return sim_cache_insert(r->cache, best[k], q->obj, size) == 0 ? 2 : EC_ENOMEM;
	}
	count_origin(r, size, 1);
	return 0;
}

static struct run_holder *holder_get(struct run *r, uint16_t reg, uint32_t obj, int create)
{
	uint64_t key = (uint64_t)reg << 32 | obj;
	uint32_t *v = sim_map_get(&r->hold_ix, key);

	if (v)
		return &r->hold[*v];
	if (!create)
		return NULL;
	if (r->n_hold == r->cap_hold) {
		size_t nc = r->cap_hold ? r->cap_hold * 2 : 4096;
		struct run_holder *h = realloc(r->hold, nc * sizeof *h);

		if (!h)
			return NULL;
		r->hold = h;
		r->cap_hold = nc;
	}
	if (sim_map_put(&r->hold_ix, key, (uint32_t)r->n_hold) != 0)
		return NULL;
	memset(&r->hold[r->n_hold], 0, sizeof r->hold[0]);
	r->hold[r->n_hold].obj = obj;
	r->hold[r->n_hold].region = reg;
	return &r->hold[r->n_hold++];
}

/* A box holding h's object: the first (best rendezvous) whose queue is under a quarter
 * of the SLA, else the least loaded; NULL when none is up. Sets *any when one is up. */
static struct run_box *holder_pick(struct run *r, const struct run_holder *h, int64_t now_ms,
                                   int *any)
{
	struct run_box *pick = NULL;

	for (uint8_t k = 0; h && k < h->n; k++) {
		struct run_box *b = &r->boxes[h->box[k]];

		if (!b->is_up)
			continue;
		*any = 1;
		box_drain(b, now_ms);
		if (b->backlog <= b->uplink_Bps * r->c->sla_queue_s / 4)
			return b;
		if (!pick || b->backlog < pick->backlog)
			pick = b;
	}
	return pick;
}

/* The references: a box that holds the object serves it, else the origin. */
static int serve_placed(struct run *r, const struct sim_req *q)
{
	uint64_t size = r->t->obj_size[q->obj];
	struct run_holder *h = holder_get(r, q->region, q->obj, 0);
	struct run_box *pick;
	int any = 0;

	pick = holder_pick(r, h, q->t_ms, &any);
	if (pick && box_admit(r, pick, q->t_ms, size)) {
		count_hit(r, q, size);
		return 0;
	}
	count_origin(r, size, any || r->rn[q->region] == 0);
	return 0;
}

/* Rank of box bi for the object among the boxes placement would examine: the first
 * probed buckets first, then the extra ones, each by rendezvous score; 0: not examined.
 * rank: the object's pol_place_probe_ranks(). */
static uint64_t echos_rank(const struct run *r, uint64_t obj_hash, const uint8_t *rank,
                           uint32_t bi, uint32_t probes)
{
	unsigned k = rank[r->boxes[bi].bucket];

	if (k >= probes + r->params.extra_probes)
		return 0;
	return (pol_rendezvous(obj_hash, r->boxes[bi].id_hash) >> 2 | 1) |
	       (uint64_t)(k < probes) << 63;
}

/* The two boxes an unassigned request for h's object goes to: the ones placement
 * would give its first replicas (echos_rank()), so that an object the cache kept is
 * usually where placement later assigns it, and the assignment costs no prefetch. */
static void echos_home(struct run *r, struct run_holder *h)
{
	uint32_t reg = h->region, probes = pol_place_region_probes(r->rn[reg], &r->params);
	uint64_t sc[2] = { 0, 0 }, oh = r->t->obj_hash[h->obj];
	uint8_t rank[POL_PLACE_BUCKETS];

	pol_place_probe_ranks(oh, rank);
	h->home[0] = h->home[1] = UINT32_MAX;
	for (uint32_t i = 0; i < r->rn[reg]; i++) {
		uint32_t bi = r->rlist[reg][i];
		uint64_t s = echos_rank(r, oh, rank, bi, probes);

		if (s > sc[0]) {
			sc[1] = sc[0], h->home[1] = h->home[0];
			sc[0] = s, h->home[0] = bi;
		} else if (s > sc[1]) {
			sc[1] = s, h->home[1] = bi;
		}
	}
	h->home_epoch = r->region_epoch[reg] + 1;
}

/* Echos: every request counts in the decayed popularity of its (region, object). A box
 * the object is assigned to serves it; otherwise the request goes to the region's boxes
 * as for a pull-through cache, where the free space is an S3-FIFO cache: a hit is
 * served, a miss is filled. Fills and fallbacks count as origin fallbacks of the object
 * (it keeps missing: under-replicated). */
static int serve_echos(struct run *r, const struct sim_req *q)
{
	uint64_t size = r->t->obj_size[q->obj];
	struct run_holder *h = holder_get(r, q->region, q->obj, 1);
	struct run_box *pick;
	uint32_t hi;
	int any = 0;

	if (!h)
		return EC_ENOMEM;
	hi = (uint32_t)(h - r->hold);
	pol_decay_add(&h->reqs, 1, q->t_ms, r->hl_ms);
	h->nz = log2(h->reqs.v) + (double)h->reqs.t_ms / (double)r->hl_ms;
	if (h->round != r->round + 1) {
		h->round = r->round + 1;
		if (list_push(&r->touched, hi) != 0)
			return EC_ENOMEM;
	}
	if (h->epoch != r->epoch + 1) {
		h->epoch = r->epoch + 1;
		if (list_push(&r->seen, hi) != 0)
			return EC_ENOMEM;
	}
	pick = holder_pick(r, h, q->t_ms, &any);
	if (pick && box_admit(r, pick, q->t_ms, size)) {
		count_hit(r, q, size);
		return 0;
	}
	if (h->home_epoch != r->region_epoch[q->region] + 1)
		echos_home(r, h);
	for (int k = 0; k < 2; k++) {
		uint32_t bi = h->home[k];

		if (bi == UINT32_MAX || !box_admit(r, &r->boxes[bi], q->t_ms, size))
			continue;
		if (sim_cache_lookup(r->cache, bi, q->obj)) {
			count_hit(r, q, size);
			r->st->cache_hit_bytes += size;
			return 0;
		}
		r->st->fill_reqs++;
		r->st->fill_bytes += size;
		pol_decay_add(&h->fbs, 1, q->t_ms, r->hl_ms);
		return sim_cache_insert(r->cache, bi, q->obj, size);
	}
	count_origin(r, size, 1);
	pol_decay_add(&h->fbs, 1, q->t_ms, r->hl_ms);
	return 0;
}

static void holder_add(struct run *r, struct run_holder *h, uint32_t box)
{
	uint64_t oh = r->t->obj_hash[h->obj], s = pol_rendezvous(oh, r->boxes[box].id_hash);
	uint8_t k;

	if (h->n == RUN_MAX_HOLDERS)
		return;
	for (k = h->n; k > 0; k--) {
		if (pol_rendezvous(oh, r->boxes[h->box[k - 1]].id_hash) >= s)
			break;
		h->box[k] = h->box[k - 1];
	}
	h->box[k] = box;
	h->n++;
}

static void holder_drop(struct run_holder *h, uint32_t box)
{
	for (uint8_t k = 0; k < h->n; k++) {
		if (h->box[k] != box)
			continue;
		memmove(&h->box[k], &h->box[k + 1], (size_t)(h->n - k - 1) * sizeof h->box[0]);
		h->n--;
		return;
	}
}

static int holder_has(const struct run_holder *h, uint32_t box)
{
	for (uint8_t k = 0; k < h->n; k++)
		if (h->box[k] == box)
			return 1;
	return 0;
}

/* --- the references: clairvoyant placements ------------------------------------------- */

/* Computes a placement from rows, applies its diff to the holders, counts prefetches
 * (no budget: the references know the future and fetch instantly). */
static int run_place(struct run *r, const struct pol_place_obj *rows, size_t n)
{
	struct pol_place_result *next;
	struct pol_place_diff d;
	int rc;

	for (uint32_t i = 0; i < r->n_boxes; i++)
		r->pboxes[i].is_up = r->boxes[i].is_up;
	rc = pol_place_compute(rows, n, r->pboxes, r->n_boxes, &r->params, &next);
	if (rc != 0)
		return rc;
	rc = pol_place_diff(r->prev, next, &d);
	if (rc != 0) {
		pol_place_result_free(next);
		return rc;
	}
	for (size_t i = 0; i < d.n; i++) {
		uint32_t *bi = sim_map_get(&r->box_ix, d.v[i].box_id);
		uint32_t *oi = sim_map_get(&r->obj_ix, d.v[i].obj_hash);
		struct run_holder *h;

		if (!bi || !oi)
			continue; /* XXX: two objects with one hash; the second is never placed */
		h = holder_get(r, r->boxes[*bi].region, *oi, 1);
		if (!h) {
			pol_place_diff_fini(&d);
			pol_place_result_free(next);
			return EC_ENOMEM;
		}
		if (d.v[i].op == POL_PLACE_ADD) {
			holder_add(r, h, *bi);
			r->st->prefetch_bytes += r->t->obj_size[*oi];
		} else {
			holder_drop(h, *bi);
		}
	}
	pol_place_diff_fini(&d);
	pol_place_result_free(r->prev);
	r->prev = next;
	r->st->placements++;
	return 0;
}

/* The clairvoyant placements, one window: knowing every request of [now, end_ms) in
 * advance, place for exactly that demand (rates over the window), prefetching before the
 * window opens. The upper bound has one window, the whole trace; the oracle one per
 * oracle_window_s. from: index of the first request of the window. */
static int run_oracle_window(struct run *r, size_t from, int64_t end_ms, double win_s)
{
	struct pol_place_obj *rows = NULL;
	size_t n = 0;
	int rc = 0;

	r->touched.n = 0;
	for (size_t i = from; i < r->t->n_reqs && r->t->reqs[i].t_ms < end_ms; i++) {
		const struct sim_req *q = &r->t->reqs[i];
		struct run_holder *h = holder_get(r, q->region, q->obj, 1);

		if (!h)
			return EC_ENOMEM;
		if (h->count++ == 0 && list_push(&r->touched, (uint32_t)(h - r->hold)) != 0)
			return EC_ENOMEM;
	}
	rows = malloc((r->touched.n ? r->touched.n : 1) * sizeof *rows);
	if (!rows)
		return EC_ENOMEM;
	for (size_t i = 0; i < r->touched.n; i++) {
		struct run_holder *h = &r->hold[r->touched.v[i]];

		rows[n++] = (struct pol_place_obj){
			.obj_hash = r->t->obj_hash[h->obj], .region_hash = (uint64_t)h->region + 1,
			.size_bytes = r->t->obj_size[h->obj], .rate = (double)h->count / win_s,
			.held = h->n,
		};
		h->count = 0;
	}
	rc = run_place(r, rows, n);
	free(rows);
	r->touched.n = 0;
	return rc;
}

/* --- echos: assigned objects pinned, the rest of each box a cache ---------------------- */

static struct pol_place_obj echos_row(const struct run *r, const struct run_holder *h,
                                      int64_t now_ms)
{
	return (struct pol_place_obj){
		.obj_hash = r->t->obj_hash[h->obj], .region_hash = (uint64_t)h->region + 1,
		.size_bytes = r->t->obj_size[h->obj],
		.rate = pol_decay_rate(&h->reqs, now_ms, r->hl_ms),
		.fallback_rate = pol_decay_rate(&h->fbs, now_ms, r->hl_ms),
		.held = h->n,
	};
}

/* Per-replica planned load of row o with want replicas on a box of uplink up_bps, as
 * pol_place_compute() plans it. */
static double echos_plan(const struct run *r, const struct pol_place_obj *o, uint32_t want,
                         double up_bps)
{
	double d = (o->rate + r->params.fallback_weight * o->fallback_rate) *
	           (double)o->size_bytes * 8.0 / (want ? want : 1);

	return d > up_bps * r->params.object_share ? up_bps * r->params.object_share : d;
}

static void echos_set_cap(struct run *r, uint32_t bi)
{
	struct run_box *b = &r->boxes[bi];

	sim_cache_set_cap(r->cache, bi, b->storage_bytes - b->pinned_bytes);
}

/* Box bi stops holding h's object as an assignment: it stays on the disk, in the cache. */
static int echos_unpin(struct run *r, struct run_holder *h, uint32_t bi)
{
	struct run_box *b = &r->boxes[bi];
	uint64_t size = r->t->obj_size[h->obj];
	uint32_t hi = (uint32_t)(h - r->hold);

	holder_drop(h, bi);
	for (size_t k = 0; k < b->n_pins; k++) {
		if (b->pins[k] == hi) {
			b->pins[k] = b->pins[--b->n_pins];
			break;
		}
	}
	b->pinned_bytes -= size;
	b->plan_bps -= h->plan_bps;
	if (b->plan_bps < 0)
		b->plan_bps = 0;
	if (b->is_up)
		r->region_free[b->region] += size;
	echos_set_cap(r, bi);
	return sim_cache_adopt(r->cache, bi, h->obj, size);
}

/* Box bi holds h's object from now on: taken from its cache when there, else
 * prefetched within the round's budget. Returns 1 done, 0 out of budget, or EC_ENOMEM. */
static int echos_pin(struct run *r, struct run_holder *h, uint32_t bi, double plan_bps)
{
	struct run_box *b = &r->boxes[bi];
	uint64_t size = r->t->obj_size[h->obj];

	if (b->n_pins == b->cap_pins) {
		size_t nc = b->cap_pins ? b->cap_pins * 2 : 64;
		uint32_t *v = realloc(b->pins, nc * sizeof *v);

		if (!v)
			return EC_ENOMEM;
		b->pins = v;
		b->cap_pins = nc;
	}
	if (!sim_cache_remove(r->cache, bi, h->obj)) {
		if (r->budget && b->prefetch_left < size)
			return 0;
		if (r->budget)
			b->prefetch_left -= size;
		r->st->prefetch_bytes += size;
	}
	b->pins[b->n_pins++] = (uint32_t)(h - r->hold);
	if (h->nz < b->min_nz)
		b->min_nz = h->nz;
	b->pinned_bytes += size;
	b->plan_bps += plan_bps;
	h->plan_bps = plan_bps;
	r->region_free[b->region] -= size < r->region_free[b->region] ? size :
	                             r->region_free[b->region];
	holder_add(r, h, bi);
	echos_set_cap(r, bi);
	return 1;
}

static int echos_defer(struct run *r, struct run_holder *h)
{
	r->st->prefetch_deferred++;
	return list_push(&r->pending, (uint32_t)(h - r->hold));
}

/* A box that went down since the last round loses its assignments (they stay on its
 * disk, in its cache, for when it comes back); their objects are re-examined. */
static int echos_boxes_changed(struct run *r)
{
	memset(r->region_free, 0, sizeof r->region_free);
	for (uint32_t i = 0; i < r->n_boxes; i++) {
		struct run_box *b = &r->boxes[i];

		if (!b->is_up && b->was_up) {
			while (b->n_pins) {
				uint32_t hi = b->pins[b->n_pins - 1];

				if (echos_unpin(r, &r->hold[hi], i) != 0 ||
				    list_push(&r->pending, hi) != 0)
					return EC_ENOMEM;
			}
		}
		b->was_up = b->is_up;
		b->prefetch_left = r->budget;
		if (b->is_up)
			r->region_free[b->region] += b->storage_bytes - b->pinned_bytes;
	}
	return 0;
}

/* An assignment as the full pass hands it over: ADDs are applied by value, highest
 * first, so the prefetch budget goes to the objects that serve the most. */
struct echos_add {
	double value;
	uint32_t hold, box;
};

static int echos_add_cmp(const void *a, const void *b)
{
	const struct echos_add *x = a, *y = b;

	if (x->value != y->value)
		return x->value > y->value ? -1 : 1;
	if (x->hold != y->hold)
		return x->hold < y->hold ? -1 : 1;
	return x->box < y->box ? -1 : (x->box > y->box);
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : (x > y);
}

/* The assignments the boxes hold now, as a placement result (to diff against). */
static int echos_actual(const struct run *r, struct pol_place_result *a)
{
	size_t total = 0;

	memset(a, 0, sizeof *a);
	for (uint32_t i = 0; i < r->n_boxes; i++)
		total += r->boxes[i].n_pins;
	a->n_boxes = r->n_boxes;
	a->box_ids = malloc(r->n_boxes * sizeof *a->box_ids);
	a->off = calloc(r->n_boxes + 1, sizeof *a->off);
	a->objs = malloc((total ? total : 1) * sizeof *a->objs);
	if (!a->box_ids || !a->off || !a->objs)
		return EC_ENOMEM;
	for (uint32_t i = 0; i < r->n_boxes; i++) {
		const struct run_box *b = &r->boxes[i];
		uint64_t *o = a->objs + a->off[i];

		a->box_ids[i] = b->id_hash;
		for (size_t k = 0; k < b->n_pins; k++)
			o[k] = r->t->obj_hash[r->hold[b->pins[k]].obj];
		qsort(o, b->n_pins, sizeof *o, u64_cmp);
		a->off[i + 1] = a->off[i] + b->n_pins;
	}
	return 0;
}

/* Full pass: pol_place_compute() over every object assigned now or requested since the
 * last full pass, its diff against what the boxes hold applied (DROPs first, then ADDs
 * by value within the budget), and each region's marginal value noted for the
 * incremental rounds that follow. */
static int echos_full(struct run *r, int64_t now_ms)
{
	struct pol_place_obj *rows = NULL;
	uint32_t *rh = NULL;
	struct echos_add *adds = NULL;
	struct pol_place_result *next = NULL, actual;
	struct pol_place_diff d = { 0 };
	size_t n = 0, cap = r->seen.n + 1, na = 0;
	uint64_t stamp = r->epoch + 2; /* not a value requests use */
	int rc = EC_ENOMEM;

	for (uint32_t i = 0; i < r->n_boxes; i++)
		cap += r->boxes[i].n_pins;
	rows = malloc(cap * sizeof *rows);
	rh = malloc(cap * sizeof *rh);
	if (!rows || !rh || echos_actual(r, &actual) != 0)
		goto out;
	for (size_t i = 0; i < r->seen.n; i++) {
		struct run_holder *h = &r->hold[r->seen.v[i]];

		h->epoch = stamp;
		rows[n] = echos_row(r, h, now_ms);
		if (rows[n].rate >= r->params.min_rate || h->n)
			rh[n++] = r->seen.v[i];
	}
	for (uint32_t i = 0; i < r->n_boxes; i++) {
		for (size_t k = 0; k < r->boxes[i].n_pins; k++) {
			struct run_holder *h = &r->hold[r->boxes[i].pins[k]];

			if (h->epoch == stamp)
				continue;
			h->epoch = stamp;
			rows[n] = echos_row(r, h, now_ms);
			rh[n++] = r->boxes[i].pins[k];
		}
	}
	for (uint32_t i = 0; i < r->n_boxes; i++)
		r->pboxes[i].is_up = r->boxes[i].is_up;
	rc = pol_place_compute(rows, n, r->pboxes, r->n_boxes, &r->params, &next);
	if (rc == 0)
		rc = pol_place_diff(&actual, next, &d);
	if (rc != 0)
		goto out;
	rc = EC_ENOMEM;
	adds = malloc((d.n ? d.n : 1) * sizeof *adds);
	if (!adds)
		goto out;
	for (size_t i = 0; i < d.n; i++) {
		uint32_t *bi = sim_map_get(&r->box_ix, d.v[i].box_id);
		uint32_t *oi = sim_map_get(&r->obj_ix, d.v[i].obj_hash);
		struct run_holder *h;

		if (!bi || !oi)
			continue; /* XXX: two objects with one hash; the second is never placed */
		h = holder_get(r, r->boxes[*bi].region, *oi, 0);
		if (!h)
			continue;
		if (d.v[i].op == POL_PLACE_DROP) {
			if (echos_unpin(r, h, *bi) != 0)
				goto out;
		} else {
			adds[na++] = (struct echos_add){ pol_decay_get(&h->reqs, now_ms, r->hl_ms),
			                                 (uint32_t)(h - r->hold), *bi };
		}
	}
	qsort(adds, na, sizeof *adds, echos_add_cmp);
	for (size_t i = 0; i < na; i++) {
		struct run_holder *h = &r->hold[adds[i].hold];
		struct pol_place_obj o = echos_row(r, h, now_ms);
		uint32_t want = pol_place_replicas(&o, (double)r->c->uplink_bps,
		                                   r->rn[h->region], &r->params);
		int got;

		if (holder_has(h, adds[i].box))
			continue;
		got = echos_pin(r, h, adds[i].box,
		                echos_plan(r, &o, want, (double)r->c->uplink_bps));
		if (got < 0 || (got == 0 && echos_defer(r, h) != 0))
			goto out;
	}
	/* the marginal value per region: the least valuable row that got a replica */
	for (uint32_t g = 0; g < SIM_MAX_REGIONS; g++)
		r->theta[g] = INFINITY;
	for (size_t i = 0; i < n; i++) {
		const struct run_holder *h = &r->hold[rh[i]];
		double v = rows[i].rate * (rows[i].held ? 1 + r->params.stickiness : 1);

		if (next->replicas[i] && v < r->theta[h->region])
			r->theta[h->region] = v;
	}
	/* planned loads from the demand of now */
	for (uint32_t i = 0; i < r->n_boxes; i++)
		r->boxes[i].plan_bps = 0;
	for (size_t i = 0; i < n; i++) {
		struct run_holder *h = &r->hold[rh[i]];
		uint32_t want;

		if (!h->n)
			continue;
		rows[i].held = h->n;
		want = pol_place_replicas(&rows[i], (double)r->c->uplink_bps, r->rn[h->region],
		                          &r->params);
		h->plan_bps = echos_plan(r, &rows[i], want ? want : h->n, (double)r->c->uplink_bps);
		for (uint8_t k = 0; k < h->n; k++)
			r->boxes[h->box[k]].plan_bps += h->plan_bps;
	}
	r->seen.n = 0;
	r->epoch = stamp;
	r->st->placements++;
	rc = 0;
out:
	free(rows);
	free(rh);
	free(adds);
	free(actual.box_ids);
	free(actual.off);
	free(actual.objs);
	pol_place_diff_fini(&d);
	pol_place_result_free(next);
	return rc;
}

/* Makes room on box bi for size bytes and plan_bps of load by dropping assignments
 * worth less than the newcomer, least valuable first. Values are compared as decayed
 * counts brought to one time in log2 (run_holder.nz), so no decay is computed here; key
 * is the newcomer's, with the stickiness bonus if it holds replicas already, and every
 * assignment counts the bonus. Returns 1 when there is room now, 0 when not (nothing
 * dropped), or EC_ENOMEM. */
static int echos_make_room(struct run *r, uint32_t bi, uint64_t size, double plan_bps,
                           double key)
{
	struct run_box *b = &r->boxes[bi];
	double lim = (double)r->c->uplink_bps * r->params.max_util, bonus = r->log2_sticky;
	double load = b->plan_bps, low = INFINITY;
	uint64_t got = b->storage_bytes - b->pinned_bytes;
	struct echos_add *v;
	size_t nv = 0, k;

	if (got >= size && load + plan_bps <= lim)
		return 1;
	if (b->min_nz + bonus >= key)
		return 0; /* a lower bound of its assignments' values: none is worth less */
	v = malloc((b->n_pins ? b->n_pins : 1) * sizeof *v);
	if (!v)
		return EC_ENOMEM;
	for (k = 0; k < b->n_pins; k++) {
		double nz = r->hold[b->pins[k]].nz;

		if (nz < low)
			low = nz;
		if (nz + bonus < key)
			v[nv++] = (struct echos_add){ nz, b->pins[k], bi };
	}
	b->min_nz = low;
	qsort(v, nv, sizeof *v, echos_add_cmp);
	for (k = nv; k > 0 && (got < size || load + plan_bps > lim); k--) {
		got += r->t->obj_size[r->hold[v[k - 1].hold].obj];
		load -= r->hold[v[k - 1].hold].plan_bps;
	}
	if (got < size || load + plan_bps > lim) {
		free(v);
		return 0;
	}
	for (size_t j = nv; j > k; j--) {
		if (echos_unpin(r, &r->hold[v[j - 1].hold], bi) != 0) {
			free(v);
			return EC_ENOMEM;
		}
	}
	free(v);
	return 1;
}

/* The boxes of h's region that could take one more replica, best first: those in the
 * object's first probed buckets by rendezvous score, then those of its extra buckets
 * (the candidates pol_place_compute() would examine). Returns their count. */
static size_t echos_candidates(struct run *r, const struct run_holder *h, uint32_t *out,
                               uint64_t *score)
{
	uint32_t reg = h->region, probes = pol_place_region_probes(r->rn[reg], &r->params);
	uint64_t oh = r->t->obj_hash[h->obj];
	uint8_t rank[POL_PLACE_BUCKETS];
	size_t m = 0;

	pol_place_probe_ranks(oh, rank);
	for (uint32_t i = 0; i < r->rn[reg]; i++) {
		uint32_t bi = r->rlist[reg][i];
		uint64_t s;

		if (holder_has(h, bi) || !(s = echos_rank(r, oh, rank, bi, probes)))
			continue;
		score[m] = s;
		out[m++] = bi;
	}
	for (size_t a = 1; a < m; a++) { /* insertion sort, best first: a few boxes */
		uint64_t s = score[a];
		uint32_t o = out[a];
		size_t j = a;

		for (; j > 0 && score[j - 1] < s; j--) {
			score[j] = score[j - 1];
			out[j] = out[j - 1];
		}
		score[j] = s;
		out[j] = o;
	}
	return m;
}

/* One incremental round: the objects requested since the last round (and additions the
 * budget put off) whose demand now asks for more replicas than they hold, and whose
 * value reaches their region's margin (or the region still has free room), get them,
 * most valuable first, on their best candidates with room, or by dropping assignments
 * worth less there. Everything else waits for the next full pass. */
static int echos_incremental(struct run *r, int64_t now_ms)
{
	struct echos_add *el = NULL;
	size_t ne = 0, cap = 0;
	double min_count = r->params.min_rate * (double)r->hl_ms / 1000.0 / M_LN2;
	double up = (double)r->c->uplink_bps;
	int rc = 0;

	for (size_t i = 0; i < r->touched.n; i++) {
		struct run_holder *h = &r->hold[r->touched.v[i]];
		struct pol_place_obj o;
		uint32_t want;
		double value;

		if (h->reqs.v < min_count)
			continue; /* under min_rate even before its decay since the last request */
		o = echos_row(r, h, now_ms);
		want = pol_place_replicas(&o, up, r->rn[h->region], &r->params);
		if (want <= h->n)
			continue;
		value = o.rate * (h->n ? 1 + r->params.stickiness : 1);
		if (value < r->theta[h->region] && r->region_free[h->region] < o.size_bytes)
			continue;
		if (ne == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct echos_add *v = realloc(el, nc * sizeof *v);

			if (!v) {
				free(el);
				return EC_ENOMEM;
			}
			el = v;
			cap = nc;
		}
		el[ne++] = (struct echos_add){ value, r->touched.v[i], want };
	}
	if (ne)
		qsort(el, ne, sizeof *el, echos_add_cmp);
	for (size_t i = 0; i < ne && rc == 0; i++) {
		struct run_holder *h = &r->hold[el[i].hold];
		struct pol_place_obj o = echos_row(r, h, now_ms);
		uint32_t want = el[i].box;
		double plan = echos_plan(r, &o, want, up);
		size_t m;

		m = echos_candidates(r, h, r->cand, r->cand_score);
		for (size_t k = 0; k < m && h->n < want && rc == 0; k++) {
			uint32_t bi = r->cand[k];

			if (r->budget && r->boxes[bi].prefetch_left < o.size_bytes &&
			    !sim_cache_contains(r->cache, bi, h->obj)) {
				rc = echos_defer(r, h);
				break;
			}
			rc = echos_make_room(r, bi, o.size_bytes, plan,
			                     h->nz + (h->n ? r->log2_sticky : 0));
			if (rc == 1)
				rc = echos_pin(r, h, bi, plan) < 0 ? EC_ENOMEM : 0;
		}
	}
	free(el);
	return rc;
}

/* One echos round: box failures first, then a full pass every full_every rounds and an
 * incremental round otherwise. Additions put off by the budget are retried next round. */
static int echos_round(struct run *r, int64_t now_ms)
{
	int rc = echos_boxes_changed(r);

	/* additions put off last round are retried with this round's requests */
	for (size_t i = 0; i < r->pending.n && rc == 0; i++) {
		struct run_holder *h = &r->hold[r->pending.v[i]];

		if (h->round != r->round + 1) {
			h->round = r->round + 1;
			rc = list_push(&r->touched, r->pending.v[i]);
		}
		if (rc == 0 && h->epoch != r->epoch + 1) {
			h->epoch = r->epoch + 1;
			rc = list_push(&r->seen, r->pending.v[i]);
		}
	}
	r->pending.n = 0;
	if (rc == 0)
		rc = r->round % r->full_every == 0 ? echos_full(r, now_ms) :
		     echos_incremental(r, now_ms);
	r->touched.n = 0;
	r->round++;
	return rc;
}

static int run_setup(struct run *r, char *err, size_t errlen)
{
	const struct sim_conf *c = r->c;
	const struct sim_trace *t = r->t;
	uint32_t nb = c->boxes, per_region;
	uint64_t storage;
	uint64_t *caps;

	if (nb == 0 || nb < t->n_regions) {
		snprintf(err, errlen, "%u boxes for %u regions: need at least one per region",
		         nb, t->n_regions);
		return EC_EINVAL;
	}
	per_region = nb / t->n_regions;
	storage = c->box_storage_bytes ? c->box_storage_bytes :
	          (uint64_t)((double)t->catalog_bytes * c->storage_pct / 100.0 / per_region);
	r->n_boxes = nb;
	r->boxes = calloc(nb, sizeof *r->boxes);
	r->pboxes = calloc(nb, sizeof *r->pboxes);
	caps = calloc(nb, sizeof *caps);
	if (!r->boxes || !r->pboxes || !caps) {
		free(caps);
		return EC_ENOMEM;
	}
	for (uint32_t i = 0; i < nb; i++) {
		uint64_t id = 0xb0c5000000000000ULL | i;
		struct run_box *b = &r->boxes[i];

		b->id_hash = pol_hash_bytes(&id, sizeof id);
		b->region = (uint16_t)(i % t->n_regions);
		b->storage_bytes = storage;
		b->uplink_Bps = (double)c->uplink_bps / 8.0;
		b->is_up = 1;
		b->was_up = 1;
		b->bucket = pol_place_bucket(b->id_hash);
		b->min_nz = INFINITY;
		caps[i] = storage;
		r->pboxes[i] = (struct pol_place_box){ b->id_hash, (uint64_t)b->region + 1, storage,
		                                       c->uplink_bps, 1 };
	}
	for (uint32_t g = 0; g < t->n_regions; g++) {
		r->rlist[g] = malloc(nb * sizeof *r->rlist[g]);
		if (!r->rlist[g]) {
			free(caps);
			return EC_ENOMEM;
		}
		region_rebuild(r, (uint16_t)g);
	}
	if (sim_churn_build(c, t, nb, &r->ev, &r->n_ev) != 0) {
		free(caps);
		return EC_ENOMEM;
	}
	if (r->pol <= SIM_POL_S3FIFO || r->pol == SIM_POL_ECHOS) {
		r->cache = sim_cache_new(r->pol == SIM_POL_ECHOS ? SIM_EVICT_S3FIFO :
		                         (enum sim_evict)r->pol, nb, caps);
		if (!r->cache) {
			free(caps);
			return EC_ENOMEM;
		}
	}
	free(caps);
	if (r->pol <= SIM_POL_S3FIFO)
		return 0;
	pol_place_params_default(&r->params);
	r->params.value = POL_PLACE_BY_RATE;
	/* Regions of a few dozen boxes: 8 candidates keep each round cheap; big regions
	 * probe buckets anyway. */
	r->params.candidates = 8;
	if (sim_map_init(&r->hold_ix, 1 << 16) != 0 || sim_map_init(&r->box_ix, nb) != 0 ||
	    sim_map_init(&r->obj_ix, t->n_objs) != 0)
		return EC_ENOMEM;
	for (uint32_t i = 0; i < nb; i++)
		if (sim_map_put(&r->box_ix, r->boxes[i].id_hash, i) != 0)
			return EC_ENOMEM;
	for (size_t i = 0; i < t->n_objs; i++)
		if (!sim_map_get(&r->obj_ix, t->obj_hash[i]) &&
		    sim_map_put(&r->obj_ix, t->obj_hash[i], (uint32_t)i) != 0)
			return EC_ENOMEM;
	if (r->pol == SIM_POL_ECHOS) {
		double every = c->full_replace_s / c->replace_s;

		r->hl_ms = (int64_t)(c->half_life_s * 1000);
		if (r->hl_ms <= 0)
			r->hl_ms = 1;
		/* a decayed count of pin_min_requests: about that many within a half-life */
		r->params.min_rate = c->pin_min_requests * M_LN2 / c->half_life_s;
		r->log2_sticky = log2(1 + r->params.stickiness);
		r->full_every = every < 1 ? 1 : every > 1e6 ? 1000000 : (uint32_t)(every + 0.5);
		r->budget = c->prefetch_share > 0 ? (uint64_t)(c->prefetch_share *
		            (double)c->uplink_bps / 8.0 * c->replace_s) : 0;
		if (c->prefetch_share > 0 && r->budget == 0)
			r->budget = 1;
		for (uint32_t g = 0; g < SIM_MAX_REGIONS; g++)
			r->theta[g] = INFINITY;
		r->cand = malloc(nb * sizeof *r->cand);
		r->cand_score = malloc(nb * sizeof *r->cand_score);
		return r->cand && r->cand_score ? 0 : EC_ENOMEM;
	}
	r->params.min_rate = 0;
	return 0;
}

static void run_fini(struct run *r)
{
	sim_cache_free(r->cache);
	for (uint32_t g = 0; g < SIM_MAX_REGIONS; g++)
		free(r->rlist[g]);
	for (uint32_t i = 0; r->boxes && i < r->n_boxes; i++)
		free(r->boxes[i].pins);
	free(r->boxes);
	free(r->pboxes);
	free(r->ev);
	free(r->hold);
	free(r->touched.v);
	free(r->seen.v);
	free(r->pending.v);
	free(r->cand);
	free(r->cand_score);
	sim_map_fini(&r->hold_ix);
	sim_map_fini(&r->box_ix);
	sim_map_fini(&r->obj_ix);
	pol_place_result_free(r->prev);
}

int sim_run(const struct sim_conf *c, const struct sim_trace *t, enum sim_policy p,
            struct sim_stats *st, char *err, size_t errlen)
{
	struct run r = { .c = c, .t = t, .pol = p, .st = st };
	int64_t replace_ms = (int64_t)(c->replace_s * 1000), next_round;
	int64_t window_ms = (int64_t)(c->oracle_window_s * 1000);
	int64_t t0 = run_cpu_us();
	int rc;

	memset(st, 0, sizeof *st);
	st->n_bins = (size_t)(t->duration_ms / SIM_BIN_MS) + 1;
	st->bin_bytes = calloc(st->n_bins, sizeof *st->bin_bytes);
	st->bin_hit_bytes = calloc(st->n_bins, sizeof *st->bin_hit_bytes);
	if (!st->bin_bytes || !st->bin_hit_bytes) {
		rc = EC_ENOMEM;
		goto out;
	}
	if (replace_ms <= 0 || window_ms <= 0 || !(c->full_replace_s > 0) ||
	    !(c->prefetch_share >= 0)) {
		snprintf(err, errlen, "re-placement periods and oracle window must be > 0, "
		         "the prefetch share >= 0");
		rc = EC_EINVAL;
		goto out;
	}
	rc = run_setup(&r, err, errlen);
	if (rc != 0)
		goto out;
	next_round = p == SIM_POL_ORACLE ? 0 : replace_ms;
	if (p == SIM_POL_UPPER) {
		double dur = (double)t->duration_ms / 1000.0;

		rc = run_oracle_window(&r, 0, t->duration_ms + 1, dur > 0 ? dur : 1);
		if (rc != 0)
			goto out;
	}
	for (size_t i = 0; i < t->n_reqs; i++) {
		const struct sim_req *q = &t->reqs[i];
		uint64_t size = t->obj_size[q->obj];

		run_events_until(&r, q->t_ms);
		if (p == SIM_POL_ECHOS) {
			while (q->t_ms >= next_round) {
				rc = echos_round(&r, next_round);
				if (rc != 0)
					goto out;
				next_round += replace_ms;
			}
		} else if (p == SIM_POL_ORACLE) {
			while (q->t_ms >= next_round) {
				rc = run_oracle_window(&r, i, next_round + window_ms,
				                       (double)window_ms / 1000.0);
				if (rc != 0)
					goto out;
				next_round += window_ms;
			}
		}
		st->reqs++;
		st->req_bytes += size;
		if (q->flags & SIM_REQ_FLASH)
			st->bin_bytes[q->t_ms / SIM_BIN_MS] += size;
		rc = p <= SIM_POL_S3FIFO ? serve_pull(&r, q) :
		     p == SIM_POL_ECHOS ? serve_echos(&r, q) : serve_placed(&r, q);
		if (rc < 0)
			goto out;
		rc = 0;
	}
out:
	if (rc == EC_ENOMEM)
		snprintf(err, errlen, "%s: out of memory", sim_policy_name(p));
	st->seconds = (double)(run_cpu_us() - t0) / 1e6;
	run_fini(&r);
	return rc;
}
