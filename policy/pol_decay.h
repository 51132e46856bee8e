/* pol_decay: time-decayed request and fallback counts per (region, object), with a
 * configurable half-life and exact lazy decay. Pure: the caller passes now_ms; no clock,
 * no I/O. The table owns its rows; placement rows it exports belong to the caller. */
#ifndef ECHOS_POLICY_POL_DECAY_H
#define ECHOS_POLICY_POL_DECAY_H

#include "pol_place_types.h"

/* --- one counter ----------------------------------------------------------------- */

/* Value of x at now_ms: x->v * 2^(-(now_ms - x->t_ms) / half_life_ms). A now_ms before
 * x->t_ms (a clock step back) decays nothing. half_life_ms must be > 0. */
double pol_decay_get(const struct pol_decay_val *x, int64_t now_ms, int64_t half_life_ms);

/* Brings x up to now_ms, then adds inc. Decaying lazily at each update gives exactly the
 * value an eager per-tick decay would, up to rounding. */
void pol_decay_add(struct pol_decay_val *x, double inc, int64_t now_ms, int64_t half_life_ms);

/* The rate, per second, a decayed count stands for: a steady stream of r events/s
 * drives the count to r * half_life / ln 2, so rate = value * ln 2 / half_life. */
double pol_decay_rate(const struct pol_decay_val *x, int64_t now_ms, int64_t half_life_ms);

/* --- the table of (region, object) rows -------------------------------------------- */

struct pol_decay_table;

/* Returns a new empty table owned by the caller (free with pol_decay_table_free()), or
 * NULL when half_life_ms <= 0 or memory runs out. */
struct pol_decay_table *pol_decay_table_new(int64_t half_life_ms);
void pol_decay_table_free(struct pol_decay_table *t); /* NULL: no-op */

int64_t pol_decay_table_half_life(const struct pol_decay_table *t);

/* Counts n requests for obj from clients of region at now_ms (size_bytes: the object's
 * current size, 0 keeps the known one). Returns 0 or EC_ENOMEM. */
int pol_decay_table_hit(struct pol_decay_table *t, uint64_t region_hash, uint64_t obj_hash,
                        uint64_t size_bytes, double n, int64_t now_ms);

/* Counts n of those requests as origin fallbacks: none of the region's boxes could serve.
 * Returns 0 or EC_ENOMEM. */
int pol_decay_table_fallback(struct pol_decay_table *t, uint64_t region_hash,
                             uint64_t obj_hash, double n, int64_t now_ms);

/* The row of (region, obj), or NULL. The pointer is borrowed and valid until the next
 * call that adds or prunes rows. */
const struct pol_decay_entry *pol_decay_table_find(const struct pol_decay_table *t,
                                                   uint64_t region_hash, uint64_t obj_hash);

size_t pol_decay_table_count(const struct pol_decay_table *t);

/* Removes rows whose decayed request count at now_ms is below min_count (the table stays
 * small when the tail is forgotten). Returns the number of rows removed. */
size_t pol_decay_table_prune(struct pol_decay_table *t, int64_t now_ms, double min_count);

/* Writes placement rows for every row whose rate at now_ms is at least min_rate into a
 * new array owned by the caller (free()), sets *out and *n. Row order is the table's
 * internal order, which depends only on the sequence of calls (deterministic).
 * Returns 0 or EC_ENOMEM (then *out is NULL). */
int pol_decay_table_export(const struct pol_decay_table *t, int64_t now_ms, double min_rate,
                           struct pol_place_obj **out, size_t *n);

/* Is this row under-replicated? True when its decayed fallbacks reach min_fallbacks and
 * are at least ratio (0..1) of its decayed requests: an object that keeps going to the
 * origin needs more replicas than its demand alone suggested. */
int pol_decay_under_replicated(const struct pol_decay_entry *e, int64_t now_ms,
                               int64_t half_life_ms, double min_fallbacks, double ratio);

#endif
