/* pol_memo: recent choices of pol_index_choose, kept so a popular object asked for again
 * from the same network costs a lookup and a re-check of two boxes instead of a walk.
 * A remembered answer is given only when a fresh walk would give the same one (box, alt,
 * class, holds); see docs/policy.md ("Decision memo") for why that holds.
 *
 * The caller's side of the contract: between two pol_memo_clear calls the index stays the
 * same and no box's load goes down (charging up is fine; a heartbeat, a new table or
 * charges expiring is not: clear first). SLAs are told apart by address: clear when the
 * ones in use may have been freed or changed. Not thread-safe. */
#ifndef ECHOS_POLICY_POL_MEMO_H
#define ECHOS_POLICY_POL_MEMO_H

#include <stdint.h>

#include "pol_index.h"
#include "pol_types.h"

struct pol_memo;

/* A memo of about `slots` entries (rounded up to a power of two, at least 16). Returns
 * NULL when memory is short. */
struct pol_memo *pol_memo_new(size_t slots);
void pol_memo_free(struct pol_memo *m); /* NULL: no-op */

/* Forgets every entry, in constant time. */
void pol_memo_clear(struct pol_memo *m);

/* pol_index_choose(x, q, out), answered from the memo when it can be. x must be the
 * index the entries were made with (see the contract above). */
int pol_memo_choose(struct pol_memo *m, const struct pol_index *x, const struct pol_query *q,
                    struct pol_choice *out);

struct pol_memo_stats {
	uint64_t hits;     /* answered from the memo */
	uint64_t misses;   /* walked (nothing remembered, or no longer the answer) */
	uint64_t stored;   /* walks whose answer was remembered */
	uint64_t clears;
};

void pol_memo_stats(const struct pol_memo *m, struct pol_memo_stats *out);
size_t pol_memo_mem_bytes(const struct pol_memo *m);

#endif
