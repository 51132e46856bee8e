/* pol_place_types: the plain structs of popularity decay and placement (pol_decay,
 * pol_place). Values only: no pointers to memory owned elsewhere except where a field
 * says so. Times are the caller's milliseconds, rates per second, sizes bytes. */
#ifndef ECHOS_POLICY_POL_PLACE_TYPES_H
#define ECHOS_POLICY_POL_PLACE_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* One exponentially decayed counter, updated lazily: its value at time t is
 * v * 2^(-(t - t_ms) / half_life). */
struct pol_decay_val {
	double v;     /* decayed count as of t_ms */
	int64_t t_ms; /* when v was last brought up to date (caller's clock) */
};

/* Decayed demand of one object in one region, plus its decayed origin fallbacks. */
struct pol_decay_entry {
	uint64_t region_hash;      /* region of the clients that asked */
	uint64_t obj_hash;         /* object */
	uint64_t size_bytes;       /* last size seen for the object */
	struct pol_decay_val reqs; /* requests */
	struct pol_decay_val fbs;  /* requests that went to the origin (fallbacks) */
};

/* Demand of one object in one region: the input row of placement. */
struct pol_place_obj {
	uint64_t obj_hash;     /* object (rendezvous input) */
	uint64_t region_hash;  /* region whose boxes should serve this demand */
	uint64_t size_bytes;   /* object size */
	double rate;           /* requests/s (decayed estimate) */
	double fallback_rate;  /* of those, requests/s that went to the origin */
	uint32_t min_replicas; /* floor set by the caller (publish hint), 0: none */
	uint32_t held;         /* replicas the previous placement gave it (hysteresis) */
};

/* One box as placement sees it. */
struct pol_place_box {
	uint64_t id_hash;       /* hash of the box id (rendezvous input) */
	uint64_t region_hash;   /* region the box serves */
	uint64_t storage_bytes; /* space echos may fill with assigned objects */
	uint64_t uplink_bps;    /* provisioned uplink, bits/s */
	int is_up;              /* 0: down or draining, gets no assignment */
};

/* What a byte of box storage is worth, which orders the greedy fill. */
enum pol_place_value {
	POL_PLACE_BY_REQ_DENSITY = 0, /* requests/s per byte: maximizes request offload */
	POL_PLACE_BY_RATE,            /* requests/s (= bytes served per byte stored):
	                               * maximizes byte offload */
};

/* Tunables of placement. pol_place_params_default() gives the documented defaults. */
struct pol_place_params {
	double min_rate;         /* requests/s below which an object gets no replica (tail) */
	double object_share;     /* 0..1: most of one box's uplink one object may take */
	double max_util;         /* 0..1: planned load on a box's uplink stays under this */
	double fallback_weight;  /* extra demand counted per fallback (under-replication) */
	uint32_t max_replicas;   /* per object and region */
	uint32_t candidates;     /* boxes examined per object in big regions (>= replicas) */
	uint32_t extra_probes;   /* more buckets probed when the candidates are full */
	enum pol_place_value value; /* greedy order */
	double stickiness;       /* >= 0: a held object's value counts this much more, and it
	                          * keeps its replica count until demand falls by as much */
};

/* A placement: for each box (same order as the boxes passed in), the sorted hashes of
 * the objects it should hold. CSR layout: box i holds objs[off[i] .. off[i+1]). */
struct pol_place_result {
	size_t n_boxes;
	uint64_t *box_ids;  /* [n_boxes] id_hash of each box */
	size_t *off;        /* [n_boxes + 1] */
	uint64_t *objs;     /* [off[n_boxes]] object hashes, ascending within a box */
	uint32_t *replicas; /* [n objects passed in] replicas placed per input row */
	uint32_t *wanted;   /* [n objects passed in] replicas wanted per input row */
	size_t n_objs;      /* rows passed in */
	uint64_t placed_bytes; /* sum of sizes of all replicas */
};

enum pol_place_op {
	POL_PLACE_ADD = 0, /* box should fetch the object */
	POL_PLACE_DROP,    /* box may delete the object */
};

/* One change between two placements. */
struct pol_place_change {
	uint64_t box_id;  /* id_hash of the box */
	uint64_t obj_hash;
	enum pol_place_op op;
};

struct pol_place_diff {
	size_t n;
	struct pol_place_change *v; /* [n], grouped by box, ADDs and DROPs by object */
};

#endif
