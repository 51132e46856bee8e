/* pol_score: which box serves this client and object, or why none can.
 * Eligibility (status, heartbeat age, good heartbeats, utilization, ttfb) comes from
 * pol_sla; among eligible boxes the best proximity class wins, then boxes holding the
 * object, then (ANY class of a large table only) the object's lane, then the lowest
 * utilization bucket, then the highest rendezvous hash of (object, box).
 * This is the linear reference; pol_index.h gives the same answers touching few boxes.
 * Pure: no I/O, no clock, no allocation. */
#ifndef ECHOS_POLICY_POL_SCORE_H
#define ECHOS_POLICY_POL_SCORE_H

#include "pol_types.h"

/* Utilization buckets within a class: boxes whose load (with the new viewer) falls in
 * the same quarter of their uplink are equals, and rendezvous decides among them. */
#define POL_SCORE_UTIL_BUCKETS 4

/* Lanes: in a table of more than POL_LANES_MIN_BOXES boxes, the ANY class is split into
 * POL_LANES lanes by box id (pol_lane_of); an object ranks the lanes by rendezvous
 * (pol_lane_score) and non-holders of the ANY class are compared lane first, so a
 * choice in the ANY class looks at one lane (n / 64 boxes), not the whole table. */
#define POL_LANES 64
#define POL_LANES_MIN_BOXES 1024

/* Borrows boxes and client for the call. Fills *out; returns 0 when a box was chosen,
 * 1 when the answer is the origin (out->miss says why, out->cls is then POL_CLASS_ANY).
 * out->alt is the next-best eligible box in reach, or -1. With nothing eligible, the
 * reason is the first that holds: no_box (n == 0, or no box UP with enough good
 * heartbeats), no_box_in_reach (none of those within sla->max_class), state_stale
 * (all of those in reach are stale), all_over_capacity (any in reach is full), else
 * sla_ttfb. One linear pass over the table; see docs/policy.md. */
int pol_score_choose(const struct pol_box *boxes, size_t n, const struct pol_client *c,
                     uint64_t obj_hash, const struct pol_sla *sla, int64_t now_ms,
                     struct pol_choice *out);
/* The same with holders (struct pol_query); out->holds says whether the chosen box holds
 * the object. pol_score_choose is this with no holders. */
int pol_score_choose_q(const struct pol_box *boxes, size_t n, const struct pol_query *q,
                       struct pol_choice *out);

/* The proximity class of box for client (POL_CLASS_ANY when nothing closer matches). */
enum pol_class pol_score_class(const struct pol_box *b, const struct pol_client *c,
                               double max_distance_km);

/* Is this box eligible under sla at now_ms? Returns 1, or 0 with *why set. */
int pol_sla_eligible(const struct pol_box *b, const struct pol_sla *sla, int64_t now_ms,
                     enum pol_miss *why);

const char *pol_miss_name(enum pol_miss m);   /* "no_box_in_reach", ... */
const char *pol_class_name(enum pol_class c); /* "pop", "asn", "geo", "any" */
int pol_class_parse(const char *s, enum pol_class *out); /* 0 or -1 */

/* Hashes: 64-bit, stable across runs and machines. */
uint64_t pol_hash_bytes(const void *p, size_t n);
uint64_t pol_rendezvous(uint64_t obj_hash, uint64_t box_hash);
double pol_haversine_km(double lat1, double lon1, double lat2, double lon2);
/* The lane of a box (0..POL_LANES-1), from its id hash only, and an object's score for a
 * lane (larger ranks first). */
unsigned pol_lane_of(uint64_t box_hash);
uint64_t pol_lane_score(uint64_t obj_hash, unsigned lane);

#endif
