/* sim_run: replays a trace against one policy on simulated boxes (storage, uplink as a
 * fluid queue, SLA as a bound on that queue) and counts where every byte came from.
 * Pull-through policies fill on a miss; echos places and prefetches from decayed
 * popularity of the past only; the upper bound places once knowing the whole trace,
 * and the windowed oracle re-places every window knowing that window's requests.
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
};

/* Boxes holding one object for one region, best rendezvous first (echos, upper bound). */
struct run_holder {
	uint32_t obj;
	uint16_t region;
	uint8_t n;
	uint32_t box[RUN_MAX_HOLDERS];
	uint64_t round;      /* last round it was listed as a candidate */
	uint64_t count;      /* upper bound, oracle: requests in the coming window */
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
	struct sim_event *ev;
	size_t n_ev, next_ev;
	struct sim_cache *cache;
	/* placement policies */
	struct sim_map hold_ix;           /* region << 32 | obj -> holders index */
	struct run_holder *hold;
	size_t n_hold, cap_hold;
	uint32_t *touched;                /* holders requested since the last round */
	size_t n_touched, cap_touched;
	uint64_t round;
	struct pol_decay_table *pop;
	struct pol_place_result *prev;
	struct pol_place_box *pboxes;
	struct sim_map box_ix;            /* id_hash -> box */
	struct sim_map obj_ix;            /* obj_hash -> object */
	struct pol_place_params params;
};

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

static void count_origin(struct run *r, const struct sim_req *q, uint64_t size, int sla_miss)
{
	r->st->fallback_reqs++;
	r->st->fallback_bytes += size;
	r->st->sla_miss_reqs += (uint64_t)sla_miss;
	(void)q;
}

static void count_hit(struct run *r, const struct sim_req *q, uint64_t size)
{
	r->st->hit_reqs++;
	r->st->hit_bytes += size;
	if (q->flags & SIM_REQ_FLASH)
		r->st->bin_hit_bytes[q->t_ms / SIM_BIN_MS] += size;
}

/* Pull-through: the region's two highest-rendezvous boxes that are up, in order, as
 * the redirector ranks equals; a miss fills from the origin and is kept. */
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
			return 0;
		}
		r->st->fill_reqs++;
		r->st->fill_bytes += size;
		return sim_cache_insert(r->cache, best[k], q->obj, size);
	}
	count_origin(r, q, size, 1);
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

/* Echos and the upper bound: a box that holds the object, preferring the first (best
 * rendezvous) whose queue is under a quarter of the SLA, else the least loaded. No box
 * holding it: the origin serves, and echos counts a fallback for that object. */
static int serve_placed(struct run *r, const struct sim_req *q)
{
	uint64_t size = r->t->obj_size[q->obj], oh = r->t->obj_hash[q->obj];
	struct run_holder *h = holder_get(r, q->region, q->obj, r->pol == SIM_POL_ECHOS);
	struct run_box *pick = NULL;
	int any = 0;

	if (r->pol == SIM_POL_ECHOS) {
		if (!h || pol_decay_table_hit(r->pop, (uint64_t)q->region + 1, oh, size, 1,
		                              q->t_ms) != 0)
			return EC_ENOMEM;
		if (h->round != r->round + 1) {
			h->round = r->round + 1;
			if (r->n_touched == r->cap_touched) {
				size_t nc = r->cap_touched ? r->cap_touched * 2 : 4096;
				uint32_t *v = realloc(r->touched, nc * sizeof *v);

				if (!v)
					return EC_ENOMEM;
				r->touched = v;
				r->cap_touched = nc;
			}
			r->touched[r->n_touched++] = (uint32_t)(h - r->hold);
		}
	}
	for (uint8_t k = 0; h && k < h->n; k++) {
		struct run_box *b = &r->boxes[h->box[k]];

		if (!b->is_up)
			continue;
		any = 1;
		box_drain(b, q->t_ms);
		if (b->backlog <= b->uplink_Bps * r->c->sla_queue_s / 4) {
			pick = b;
			break;
		}
		if (!pick || b->backlog < pick->backlog)
			pick = b;
	}
	if (pick && box_admit(r, pick, q->t_ms, size)) {
		count_hit(r, q, size);
		return 0;
	}
	count_origin(r, q, size, any || r->rn[q->region] == 0);
	if (r->pol == SIM_POL_ECHOS &&
	    pol_decay_table_fallback(r->pop, (uint64_t)q->region + 1, oh, 1, q->t_ms) != 0)
		return EC_ENOMEM;
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

/* Computes a placement from rows, applies its diff to the holders, counts prefetches. */
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

/* Appends the decayed demand of holder h to rows (grown as needed). */
static int round_row(struct run *r, const struct run_holder *h, int64_t now_ms,
                     struct pol_place_obj **rows, size_t *n, size_t *cap)
{
	int64_t hl = pol_decay_table_half_life(r->pop);
	const struct pol_decay_entry *e;

	e = pol_decay_table_find(r->pop, (uint64_t)h->region + 1, r->t->obj_hash[h->obj]);
	if (!e)
		return 0;
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 4096;
		struct pol_place_obj *v = realloc(*rows, nc * sizeof *v);

		if (!v)
			return EC_ENOMEM;
		*rows = v;
		*cap = nc;
	}
	(*rows)[(*n)++] = (struct pol_place_obj){
		.obj_hash = e->obj_hash, .region_hash = e->region_hash,
		.size_bytes = e->size_bytes,
		.rate = pol_decay_rate(&e->reqs, now_ms, hl),
		.fallback_rate = pol_decay_rate(&e->fbs, now_ms, hl),
		.held = h->n,
	};
	return 0;
}

/* One echos round: candidates are the objects requested since the last round and those
 * placed now. An object neither requested nor placed only decayed, like every other
 * such object, so it cannot overtake one that is placed: leaving it out changes little
 * and keeps each round proportional to recent activity, not to the catalog. */
static int run_round(struct run *r, int64_t now_ms)
{
	struct pol_place_obj *rows = NULL;
	size_t n = 0, cap = 0;
	uint64_t stamp = r->round + 1;
	int rc = 0;

	for (size_t i = 0; i < r->n_touched && rc == 0; i++)
		rc = round_row(r, &r->hold[r->touched[i]], now_ms, &rows, &n, &cap);
	for (size_t b = 0; r->prev && b < r->prev->n_boxes && rc == 0; b++) {
		size_t k;
		const uint64_t *v = pol_place_box_objs(r->prev, b, &k);

		for (size_t j = 0; j < k && rc == 0; j++) {
			uint32_t *oi = sim_map_get(&r->obj_ix, v[j]);
			struct run_holder *h = oi ? holder_get(r, r->boxes[b].region, *oi, 0) : NULL;

			if (!h || h->round == stamp)
				continue;
			h->round = stamp;
			rc = round_row(r, h, now_ms, &rows, &n, &cap);
		}
	}
	if (rc == 0)
		rc = run_place(r, rows, n);
	free(rows);
	r->n_touched = 0;
	r->round++;
	if (rc == 0 && r->round % 64 == 0)
		pol_decay_table_prune(r->pop, now_ms, 0.01);
	return rc;
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

	r->n_touched = 0;
	for (size_t i = from; i < r->t->n_reqs && r->t->reqs[i].t_ms < end_ms; i++) {
		const struct sim_req *q = &r->t->reqs[i];
		struct run_holder *h = holder_get(r, q->region, q->obj, 1);

		if (!h)
			return EC_ENOMEM;
		if (h->count++ == 0) {
			if (r->n_touched == r->cap_touched) {
				size_t nc = r->cap_touched ? r->cap_touched * 2 : 4096;
				uint32_t *v = realloc(r->touched, nc * sizeof *v);

				if (!v)
					return EC_ENOMEM;
				r->touched = v;
				r->cap_touched = nc;
			}
			r->touched[r->n_touched++] = (uint32_t)(h - r->hold);
		}
	}
	rows = malloc((r->n_touched ? r->n_touched : 1) * sizeof *rows);
	if (!rows)
		return EC_ENOMEM;
	for (size_t i = 0; i < r->n_touched; i++) {
		struct run_holder *h = &r->hold[r->touched[i]];

		rows[n++] = (struct pol_place_obj){
			.obj_hash = r->t->obj_hash[h->obj], .region_hash = (uint64_t)h->region + 1,
			.size_bytes = r->t->obj_size[h->obj], .rate = (double)h->count / win_s,
			.held = h->n,
		};
		h->count = 0;
	}
	rc = run_place(r, rows, n);
	free(rows);
	r->n_touched = 0;
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
	if (r->pol <= SIM_POL_S3FIFO) {
		r->cache = sim_cache_new((enum sim_evict)r->pol, nb, caps);
		free(caps);
		return r->cache ? 0 : EC_ENOMEM;
	}
	free(caps);
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
		int64_t hl = (int64_t)(c->half_life_s * 1000);

		/* one request is not enough: about two within a half-life place an object */
		r->params.min_rate = 1.5 * M_LN2 / c->half_life_s;
		r->pop = pol_decay_table_new(hl);
		return r->pop ? 0 : EC_ENOMEM;
	}
	r->params.min_rate = 0;
	return 0;
}

static void run_fini(struct run *r)
{
	sim_cache_free(r->cache);
	for (uint32_t g = 0; g < SIM_MAX_REGIONS; g++)
		free(r->rlist[g]);
	free(r->boxes);
	free(r->pboxes);
	free(r->ev);
	free(r->hold);
	free(r->touched);
	sim_map_fini(&r->hold_ix);
	sim_map_fini(&r->box_ix);
	sim_map_fini(&r->obj_ix);
	pol_decay_table_free(r->pop);
	pol_place_result_free(r->prev);
}

int sim_run(const struct sim_conf *c, const struct sim_trace *t, enum sim_policy p,
            struct sim_stats *st, char *err, size_t errlen)
{
	struct run r = { .c = c, .t = t, .pol = p, .st = st };
	int64_t replace_ms = (int64_t)(c->replace_s * 1000), next_round;
	int64_t window_ms = (int64_t)(c->oracle_window_s * 1000);
	int64_t t0 = ec_now_us();
	int rc;

	memset(st, 0, sizeof *st);
	st->n_bins = (size_t)(t->duration_ms / SIM_BIN_MS) + 1;
	st->bin_bytes = calloc(st->n_bins, sizeof *st->bin_bytes);
	st->bin_hit_bytes = calloc(st->n_bins, sizeof *st->bin_hit_bytes);
	if (!st->bin_bytes || !st->bin_hit_bytes) {
		rc = EC_ENOMEM;
		goto out;
	}
	if (replace_ms <= 0 || window_ms <= 0) {
		snprintf(err, errlen, "re-placement period and oracle window must be > 0");
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
				rc = run_round(&r, next_round);
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
		rc = p <= SIM_POL_S3FIFO ? serve_pull(&r, q) : serve_placed(&r, q);
		if (rc != 0)
			goto out;
	}
out:
	if (rc == EC_ENOMEM)
		snprintf(err, errlen, "%s: out of memory", sim_policy_name(p));
	st->seconds = (double)(ec_now_us() - t0) / 1e6;
	run_fini(&r);
	return rc;
}
