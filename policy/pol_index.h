/* pol_index: a candidate index over a box table, so one choice touches tens of boxes
 * instead of the whole table, with exactly the answers of pol_score_choose_q: per-PoP
 * and per-ASN lists, a 2-degree geographic grid, and the ANY class split into lanes.
 * Pure: no I/O, no clock; the index is one heap object built from a table it borrows. */
#ifndef ECHOS_POLICY_POL_INDEX_H
#define ECHOS_POLICY_POL_INDEX_H

#include "pol_types.h"

struct pol_index;

/* Builds an index over boxes[0..n), which it borrows: the array must stay where it is
 * for the index's life. Between builds the caller may change the load and heartbeat
 * fields of a row (egress_bps, charged_bps, conns, ttfb_ms, hb_ms, uplink_bps) but not
 * id_hash, pop_hash, asn, has_loc/lat/lon, status or good_hbs (rebuild for those).
 * Returns a new index owned by the caller (free with pol_index_free), or NULL when
 * memory is short or n > INT32_MAX. */
struct pol_index *pol_index_new(const struct pol_box *boxes, size_t n);
void pol_index_free(struct pol_index *x); /* NULL: no-op */

/* pol_score_choose_q over the indexed table: same box, alt, class, miss and holds.
 * Cost: the holders, the client's PoP list, its ASN list, the grid cells within the
 * GEO radius, and in the ANY class one lane (or the whole table when it has no lanes
 * or nothing in reach is eligible). Borrows x and q for the call. */
int pol_index_choose(const struct pol_index *x, const struct pol_query *q,
                     struct pol_choice *out);

/* A key and the index of what it belongs to. */
struct pol_key_idx {
	uint64_t key;
	uint32_t idx;
};

/* Sorts a[0..n) by key, stably (equal keys keep their order), using tmp[0..n): an LSD
 * radix sort in at most six passes over 11-bit digits, skipping digits all keys share.
 * Linear: the index and the redirector's sync order 10,000 boxes a second with it. */
void pol_sort_key_idx(struct pol_key_idx *a, struct pol_key_idx *tmp, size_t n);

/* The table the index was built over (what pol_index_new borrowed) and its size. */
const struct pol_box *pol_index_boxes(const struct pol_index *x);
size_t pol_index_count(const struct pol_index *x);

/* Bytes held by the index (for metrics). */
size_t pol_index_mem_bytes(const struct pol_index *x);

#endif
