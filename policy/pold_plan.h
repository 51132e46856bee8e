/* pold_plan: the pure parts of echos-policy's placement loop (pold_place.c): sorted sets
 * of object paths and the changes between them, the table of assignments per box, the
 * demand estimate from per-minute popularity buckets, the replica floor of objects that
 * keep falling back to the origin and the liveness of a publish announcement. No I/O,
 * no clock, no logging: the loop passes now_ms. Each set and table owns its strings. */
#ifndef ECHOS_POLICY_POLD_PLAN_H
#define ECHOS_POLICY_POLD_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "pol_place_types.h"

/* --- path sets ----------------------------------------------------------------------- */

/* Object paths, sorted by strcmp() and unique. Owns v and every string in it. */
struct pold_pathset {
	char **v;
	size_t n;
};

/* Takes paths[0..n) and the array itself (heap, may be NULL when n is 0): sorts them,
 * frees duplicates, and makes s own the rest. s must be empty (zeroed or fini'd). */
void pold_pathset_take(struct pold_pathset *s, char **paths, size_t n);
void pold_pathset_fini(struct pold_pathset *s); /* leaves s empty */
int pold_pathset_has(const struct pold_pathset *s, const char *path);

/* The changes that turn cur into want: add = members of want missing from cur, del =
 * members of cur missing from want. The strings are borrowed from cur and want (valid
 * while they are); the arrays are owned by d (pold_delta_fini()). */
struct pold_delta {
	const char **add, **del;
	size_t n_add, n_del;
};

/* Fills d (O(|cur| + |want|), merge of the sorted sets). Returns 0 or EC_ENOMEM (then d
 * is empty). */
int pold_pathset_diff(const struct pold_pathset *cur, const struct pold_pathset *want,
                      struct pold_delta *d);
void pold_delta_fini(struct pold_delta *d);

/* --- assignments: per box, the set of paths it should hold -------------------------- */

#define POLD_BOX_ID_MAX 64 /* box ids are 1..63 bytes (docs/redis.md) */

struct pold_assign_box {
	char id[POLD_BOX_ID_MAX];
	struct pold_pathset set;
};

/* Boxes sorted by id, unique. Owns the rows and their sets. Zeroed = empty. */
struct pold_assign {
	struct pold_assign_box *v;
	size_t n, cap;
};

/* Sets the paths of box id, taking *set (then zeroed); a box already present has its
 * old set freed. Returns 0, EC_EINVAL (id empty or too long: *set is left to the caller)
 * or EC_ENOMEM. */
int pold_assign_put(struct pold_assign *a, const char *id, struct pold_pathset *set);
/* The set of box id (borrowed), or NULL. */
const struct pold_pathset *pold_assign_get(const struct pold_assign *a, const char *id);
size_t pold_assign_total(const struct pold_assign *a); /* paths over all boxes */
void pold_assign_fini(struct pold_assign *a);          /* leaves a empty */
/* Moves src into dst (dst's old content freed), leaving src empty. */
void pold_assign_move(struct pold_assign *dst, struct pold_assign *src);

/* The changes of one box between two tables. is_gone: the box is in the old table only
 * (its key can be deleted whole). Strings borrowed from the two tables. */
struct pold_box_delta {
	const char *id;
	int is_gone;
	struct pold_delta d;
};

/* Every box whose set differs between old and next, in id order, as a new array owned
 * by the caller (pold_box_deltas_free()); boxes without changes are left out. Sets *n
 * and *changes (paths added plus removed). Returns 0 or EC_ENOMEM (*out NULL). */
int pold_assign_diff(const struct pold_assign *old, const struct pold_assign *next,
                     struct pold_box_delta **out, size_t *n, size_t *changes);
void pold_box_deltas_free(struct pold_box_delta *v, size_t n);

/* --- demand ------------------------------------------------------------------------- */

/* Shortest span the current minute's rate is measured over, so that the first requests of
 * a minute do not read as a huge rate. */
#define POLD_BURST_MIN_MS 10000

/* Requests per second of one object, from its per-minute counts: counts[i] is the count
 * of unix minute (now_ms / 60000 - i), i < n. The estimate is the larger of
 *  - the decayed average: sum(count * w) / sum(span * w) over the window, where span is
 *    the part of the minute already past (60 s, or less for the current minute) and
 *    w = 2^(-age / half_life) with age measured from the middle of that span;
 *  - the current minute's rate: counts[0] / max(elapsed, POLD_BURST_MIN_MS), which
 *    follows a flash crowd within seconds while the average still remembers the quiet.
 * Returns 0 when n is 0 or half_life_ms <= 0. */
double pold_demand_rate(const double *counts, size_t n, int64_t now_ms, int64_t half_life_ms);

/* Requests per second since a reference pass at ref_ms, when the object had counted
 * ref_count in the minute of ref_ms (0 if it was not seen): cur and prev are its counts
 * of the minute of now_ms and the one before. Follows a crowd at the speed of the passes,
 * whatever the second of the minute. Returns -1 when the reference cannot tell (ref_ms
 * not before now_ms, or more than one minute boundary between them); a count that went
 * down (lost buckets) reads as 0. */
double pold_demand_recent(double cur, double prev, int64_t now_ms, double ref_count,
                          int64_t ref_ms);

/* --- origin fallbacks --------------------------------------------------------------- */

/* How origin fallbacks (echos:miss, redirects the redirector sent to the origin although
 * boxes were in reach: more replicas would have served them) raise replicas. */
struct pold_miss_params {
	double weight;       /* demand added per fallback/s: pol_place's fallback_weight */
	double raise_rate;   /* fallbacks/s from which the object gets one more replica; 0:
	                      * never (then only weight acts) */
	int64_t cooldown_ms; /* least time between two raises of one object */
};

/* Applies the fallbacks of one object in one region to its placement row o (o->held
 * already set). recent is the fallback rate lately (since the reference pass, or the
 * decayed estimate when there is none), avg the decayed estimate (pold_demand_rate over
 * the fallback buckets); since_raise_ms the time since this loop last raised the object,
 * or -1 if it has not (lately). Then:
 *  - o->fallback_rate = max(recent, avg): pol_place adds weight times it to the demand;
 *  - o->rate is raised to it (fallbacks are requests, even when the object fell out of
 *    the top popularity read);
 *  - o->min_replicas is raised to held + 1 when recent >= raise_rate and since_raise_ms
 *    is -1 or at least cooldown_ms: the object keeps falling back with the replicas it
 *    has, so it gets one more; and to held while max(recent, avg) >= raise_rate / 2,
 *    so that replicas added for fallbacks are not taken back while some still happen.
 * pol_place then caps the count by max_replicas and the region's boxes, and places
 * replicas only where storage and uplink have room. Monotone: more fallbacks never give
 * a lower floor or less demand. No fallbacks (both rates 0): o is left unchanged.
 * Returns 1 when the floor was raised above held (the caller remembers when), else 0. */
int pold_miss_apply(struct pol_place_obj *o, double recent, double avg,
                    int64_t since_raise_ms, const struct pold_miss_params *mp);

/* Is an announcement live for region at now_ms? It is while its echos:pubmeta hash
 * exists (regions and expires_ms not NULL), expires_ms is in the future and regions (a
 * comma-separated list) names region. */
int pold_pub_is_live(const char *regions, const char *expires_ms, const char *region,
                     int64_t now_ms);

#endif
