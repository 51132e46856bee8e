/* rdr_inv: which boxes hold which objects, from the boxes' inventories in Redis
 * (echos:inv:{<box>}, sets of object paths written by echos-edge). One global map from
 * object hash to up to RDR_INV_HOLDERS boxes, bounded by inventory.max_objects; a box's
 * set is read again (SMEMBERS) only when its heartbeat says it changed (inv_ver, or
 * cache_objects for edges that do not send inv_ver). Never on the request path. */
#ifndef ECHOS_REDIRECTOR_RDR_INV_H
#define ECHOS_REDIRECTOR_RDR_INV_H

#include <stddef.h>
#include <stdint.h>

struct ec_redis;
struct rdr_inv;
struct rdr_table;

#define RDR_INV_HOLDERS 4          /* boxes remembered per object */
#define RDR_INV_MAX_OBJECTS 262144 /* objects remembered in all */
#define RDR_INV_READS_IN_FLIGHT 16
#define RDR_INV_MAX_BOXES 100000

/* Returns a new, empty inventory owned by the caller (free with rdr_inv_free), reading
 * through redis (borrowed, must outlive it), or NULL when memory is short. */
struct rdr_inv *rdr_inv_new(struct ec_redis *redis, size_t max_objects);
/* In-flight reads are orphaned and finish harmlessly. NULL is a no-op. */
void rdr_inv_free(struct rdr_inv *inv);

/* A new box table was swapped in: starts reads of the inventories whose version changed
 * (at most RDR_INV_READS_IN_FLIGHT at once; the rest on later tables). */
void rdr_inv_on_table(void *inv, const struct rdr_table *t);

/* Adds or replaces the objects one box holds (paths[i] of lens[i] bytes); used by the
 * Redis reply handler and by tests. Returns the number of objects that did not fit. */
size_t rdr_inv_set_box(struct rdr_inv *inv, const char *box_id, uint64_t ver,
                       const char *const *paths, const size_t *lens, size_t n);

/* Writes into out (up to cap) the rows of t whose boxes hold the object; returns the
 * count. NULL inv gives 0. */
size_t rdr_inv_holders(struct rdr_inv *inv, const struct rdr_table *t, uint64_t obj_hash,
                       uint32_t *out, size_t cap);

/* Objects in the map, and objects dropped because it was full (for metrics). */
size_t rdr_inv_objects(const struct rdr_inv *inv);
uint64_t rdr_inv_dropped(const struct rdr_inv *inv);

#endif
