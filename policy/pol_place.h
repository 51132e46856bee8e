/* pol_place: which objects each box should hold. Replica counts follow demand and the
 * boxes' uplinks; replicas go to the highest-rendezvous boxes of the object's region
 * that have room, objects taken greedily by value density (requests per byte).
 * Pure: no I/O, no clock. Results and diffs are heap objects owned by the caller.
 * The algorithm, its cost and its limits are described in docs/placement.md. */
#ifndef ECHOS_POLICY_POL_PLACE_H
#define ECHOS_POLICY_POL_PLACE_H

#include "pol_place_types.h"

/* Bucket count per region: a box falls in bucket mix(id_hash) >> 58 (6 bits). Fixed, so
 * a box's bucket never depends on which other boxes exist. */
#define POL_PLACE_BUCKETS 64

/* Fills p with the defaults: min_rate 1/3600 per s, object_share 0.25, max_util 0.8,
 * fallback_weight 1, max_replicas 8, candidates 32, extra_probes 4, value by requests
 * per byte, stickiness 0.2. */
void pol_place_params_default(struct pol_place_params *p);

/* Replicas one object wants, given the uplink of a typical box of its region and the
 * number of boxes there (up): 0 for the tail (rate under min_rate and no min_replicas),
 * else max(1, min_replicas, ceil(demand_bps / share_bps)) capped by max_replicas and
 * region_boxes, where demand_bps = (rate + fallback_weight * fallback_rate) * size * 8 and
 * share_bps = box_uplink_bps * object_share. An object that holds more replicas now
 * (o->held) keeps them, up to what demand * (1 + stickiness) would ask for. Monotone:
 * never fewer replicas for more demand. */
uint32_t pol_place_replicas(const struct pol_place_obj *o, double box_uplink_bps,
                            uint32_t region_boxes, const struct pol_place_params *p);

/* Buckets an object probes first in a region of region_boxes usable boxes:
 * ceil(64 * candidates / region_boxes), at most 64 (then the region is probed whole). */
uint32_t pol_place_region_probes(uint32_t region_boxes, const struct pol_place_params *p);

/* Where the bucket of box box_id_hash comes in the probe sequence of obj_hash (0..63).
 * The box is one of the object's first candidates when this is below
 * pol_place_region_probes(), and an extra candidate below that plus extra_probes: an
 * incremental placer uses it to pick the same boxes pol_place_compute() would. */
unsigned pol_place_probe_rank(uint64_t obj_hash, uint64_t box_id_hash);

/* The same for many boxes: the bucket of a box (fixed by its id), and for one object the
 * rank of every bucket, so that pol_place_probe_rank(obj, box) ==
 * rank[pol_place_bucket(box)]. */
unsigned pol_place_bucket(uint64_t box_id_hash);
void pol_place_probe_ranks(uint64_t obj_hash, uint8_t rank[POL_PLACE_BUCKETS]);

/* Computes a placement of objs[0..n_objs) over boxes[0..n_boxes) (both borrowed for the
 * call; rows of the same object in several regions are independent). Each box's planned
 * bytes stay within storage_bytes and its planned load within uplink_bps * max_util.
 * Deterministic: same inputs in the same order, same result. On success sets *out to a
 * new result owned by the caller (free with pol_place_result_free()) and returns 0.
 * Returns EC_EINVAL (bad params, or more than 2^32-1 rows or boxes) or EC_ENOMEM. */
int pol_place_compute(const struct pol_place_obj *objs, size_t n_objs,
                      const struct pol_place_box *boxes, size_t n_boxes,
                      const struct pol_place_params *p, struct pol_place_result **out);

void pol_place_result_free(struct pol_place_result *r); /* NULL: no-op */

/* The sorted object hashes box i should hold (borrowed from r); *n set to their count. */
const uint64_t *pol_place_box_objs(const struct pol_place_result *r, size_t i, size_t *n);

/* The changes that turn prev into next, boxes matched by id_hash: ADD for objects next
 * gives a box that prev did not, DROP for the reverse; a box missing from next drops
 * everything, a box new in next adds everything. prev may be NULL (all ADDs). Both are
 * borrowed. Fills *d with a new array owned by the caller (pol_place_diff_fini()).
 * Returns 0 or EC_ENOMEM. */
int pol_place_diff(const struct pol_place_result *prev, const struct pol_place_result *next,
                   struct pol_place_diff *d);
void pol_place_diff_fini(struct pol_place_diff *d);

#endif
