/* sim: the declarations shared by the files of echos-sim (sim_trace, sim_cache,
 * sim_run, sim_svg, sim_main). The simulator is a shell around policy/: it owns every
 * trace, cache and result array it builds, reads files only in sim_trace and sim_main,
 * and writes output only in sim_main and sim_svg. */
#ifndef ECHOS_POLICY_SIM_H
#define ECHOS_POLICY_SIM_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SIM_MAX_REGIONS 64
#define SIM_MB 1000000ULL

/* --- scenario ------------------------------------------------------------------------ */

/* Every knob of a run; sim_conf_default() gives the default scenario (docs/simulator.md). */
struct sim_conf {
	uint64_t seed;
	const char *trace_path;   /* CSV trace instead of the generator, or NULL */
	/* generator */
	uint32_t regions;
	uint32_t catalog;         /* objects present at the start */
	double zipf_alpha;        /* catalog popularity */
	double size_median_bytes; /* lognormal object sizes */
	double size_sigma;
	uint64_t requests;        /* total requests (catalog + UGC + flash crowds) */
	double duration_s;        /* simulated time */
	double diurnal_amp;       /* 0..1: catalog load swings by this much over a day */
	double ugc_share;         /* share of requests for new user-generated objects */
	uint32_t ugc_objects;     /* new objects appearing during the run */
	double ugc_home_share;    /* share of a UGC object's requests from its home region */
	uint32_t flash_crowds;    /* objects nobody asked for that suddenly get hot */
	uint32_t flash_requests;  /* requests per flash crowd */
	double flash_tau_s;       /* rise-and-decay time constant of a flash crowd */
	double churn_per_box_day; /* failures per box per day */
	double churn_down_s;      /* mean time a failed box stays down */
	/* boxes */
	uint32_t boxes;
	double storage_pct;       /* a region's boxes together hold this % of catalog bytes */
	uint64_t box_storage_bytes; /* when nonzero, overrides storage_pct */
	uint64_t uplink_bps;
	double sla_queue_s;       /* a box within SLA has at most this much queued uplink time */
	/* echos */
	double half_life_s;
	double replace_s;         /* re-placement period (incremental rounds) */
	double full_replace_s;    /* period of the full placement passes */
	double pin_min_requests;  /* decayed requests an object needs to be assigned */
	double prefetch_share;    /* a box prefetches at most this share of its uplink rate
	                           * per round (0: no limit) */
	/* windowed oracle */
	double oracle_window_s;   /* places each window knowing its requests in advance */
};

void sim_conf_default(struct sim_conf *c);

/* --- trace --------------------------------------------------------------------------- */

#define SIM_REQ_FLASH 1u /* request of a flash-crowd object */

struct sim_req {
	int64_t t_ms;
	uint32_t obj;     /* index into trace objects */
	uint16_t region;
	uint16_t flags;   /* SIM_REQ_* */
};

struct sim_event {  /* box churn */
	int64_t t_ms;
	uint32_t box;
	int is_up;        /* 1: comes back, 0: fails */
};

struct sim_trace {
	struct sim_req *reqs;
	size_t n_reqs;
	uint64_t *obj_size;   /* [n_objs] bytes */
	uint64_t *obj_hash;   /* [n_objs] */
	size_t n_objs;
	uint64_t catalog_bytes; /* bytes of the objects present at the start (all, for CSV) */
	uint32_t n_regions;
	char region_names[SIM_MAX_REGIONS][32];
	int64_t duration_ms;
	int64_t flash_start_ms; /* first flash crowd, -1: none */
	uint16_t flash_region;
};

/* Builds the trace of conf: the generator, or the CSV file conf->trace_path (lines
 * "time_s,client_region,object,size_bytes", '#' comments and a header line allowed).
 * Returns 0, or EC_EINVAL / EC_EIO / EC_ENOMEM with a message in err. The trace's arrays
 * are owned by *t: sim_trace_fini(). */
int sim_trace_build(const struct sim_conf *c, struct sim_trace *t, char *err, size_t errlen);
void sim_trace_fini(struct sim_trace *t);

/* Box churn events for n_boxes over the trace, sorted by time; new array owned by the
 * caller (free()). Returns 0 or EC_ENOMEM. */
int sim_churn_build(const struct sim_conf *c, const struct sim_trace *t, uint32_t n_boxes,
                    struct sim_event **ev, size_t *n);

/* Deterministic generator (xoshiro256**), seeded through splitmix64. */
struct sim_rng {
	uint64_t s[4];
};
void sim_rng_seed(struct sim_rng *r, uint64_t seed);
uint64_t sim_rng_next(struct sim_rng *r);
double sim_rng_unit(struct sim_rng *r); /* [0, 1) */

/* --- maps and caches ------------------------------------------------------------------ */

/* Open-addressing map from a nonzero-agnostic 64-bit key to a 32-bit value. */
struct sim_map {
	uint64_t *keys;
	uint32_t *vals;
	uint8_t *used;
	size_t mask, n;
};
int sim_map_init(struct sim_map *m, size_t expect);
void sim_map_fini(struct sim_map *m);
uint32_t *sim_map_get(const struct sim_map *m, uint64_t key);   /* NULL: absent */
int sim_map_put(struct sim_map *m, uint64_t key, uint32_t val); /* 0 or EC_ENOMEM */
void sim_map_del(struct sim_map *m, uint64_t key);

enum sim_evict {
	SIM_EVICT_LRU = 0,
	SIM_EVICT_LFU,
	SIM_EVICT_S3FIFO,
};

struct sim_cache;

/* A pull-through cache per box with the given byte capacities (copied). Returns a new
 * cache owned by the caller (sim_cache_free()), or NULL when memory runs out. */
struct sim_cache *sim_cache_new(enum sim_evict ev, size_t n_boxes, const uint64_t *cap_bytes);
void sim_cache_free(struct sim_cache *c);
/* Is obj in box's cache? A hit updates recency/frequency. */
int sim_cache_lookup(struct sim_cache *c, uint32_t box, uint32_t obj);
/* Inserts obj (after a miss), evicting as the policy says. Objects larger than the box
 * are not kept. Returns 0 or EC_ENOMEM. */
int sim_cache_insert(struct sim_cache *c, uint32_t box, uint32_t obj, uint64_t size);
uint64_t sim_cache_used(const struct sim_cache *c, uint32_t box);
uint64_t sim_cache_cap(const struct sim_cache *c, uint32_t box);
/* Is obj in box's cache (a ghost is not)? Changes nothing. */
int sim_cache_contains(const struct sim_cache *c, uint32_t box, uint32_t obj);
/* Takes obj out of box's cache (it became pinned, or left). Returns 1 if it was there. */
int sim_cache_remove(struct sim_cache *c, uint32_t box, uint32_t obj);
/* Sets box's capacity, evicting as the policy says until the cache fits. */
void sim_cache_set_cap(struct sim_cache *c, uint32_t box, uint64_t cap);
/* Keeps obj as an object known to be popular (a placement dropped it but it is still on
 * the disk): S3-FIFO puts it in its main FIFO, LRU at the head. No-op if present.
 * Returns 0 or EC_ENOMEM. */
int sim_cache_adopt(struct sim_cache *c, uint32_t box, uint32_t obj, uint64_t size);

/* --- runs ----------------------------------------------------------------------------- */

enum sim_policy {
	SIM_POL_LRU = 0,
	SIM_POL_LFU,
	SIM_POL_S3FIFO,
	SIM_POL_ECHOS,
	SIM_POL_UPPER,  /* clairvoyant static placement of the whole trace */
	SIM_POL_ORACLE, /* clairvoyant placement per window */
	SIM_POL_COUNT_
};

const char *sim_policy_name(enum sim_policy p);

#define SIM_BIN_MS 60000 /* time series bin */

struct sim_stats {
	uint64_t reqs, req_bytes;
	uint64_t hit_reqs, hit_bytes;           /* served by a box from its store */
	uint64_t cache_hit_bytes;               /* echos: of those, from a box's cache */
	uint64_t fill_reqs, fill_bytes;         /* served by a box after a fill from the origin */
	uint64_t fallback_reqs, fallback_bytes; /* served by the origin to the viewer */
	uint64_t sla_miss_reqs;                 /* fallbacks because no box was within SLA */
	uint64_t prefetch_bytes;                /* origin to boxes, ahead of demand */
	uint64_t prefetch_deferred;             /* echos: additions put off by the budget */
	uint64_t placements;                    /* placement rounds (echos: full passes) */
	double seconds;                         /* CPU time of the run (one thread) */
	size_t n_bins;
	uint64_t *bin_bytes, *bin_hit_bytes;    /* flash-crowd requests per time bin */
};

double sim_stats_byte_offload(const struct sim_stats *s);
double sim_stats_req_offload(const struct sim_stats *s);
uint64_t sim_stats_origin_egress(const struct sim_stats *s);
void sim_stats_fini(struct sim_stats *s);

/* Runs policy p over trace t with boxes sized by c (borrowed). Fills *st (its bins owned
 * by *st: sim_stats_fini()). Returns 0 or EC_ENOMEM / EC_EINVAL with a message in err. */
int sim_run(const struct sim_conf *c, const struct sim_trace *t, enum sim_policy p,
            struct sim_stats *st, char *err, size_t errlen);

/* --- plots ----------------------------------------------------------------------------- */

struct sim_series {
	const char *name;
	const double *y; /* [n] */
};

/* Writes a line chart to path as a standalone SVG. Returns 0 or EC_EIO (errno set). */
int sim_svg_lines(const char *path, const char *title, const char *xlabel, const char *ylabel,
                  const double *x, size_t n, const struct sim_series *s, size_t ns,
                  double ymin, double ymax);

#endif
