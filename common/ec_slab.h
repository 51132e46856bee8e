/* ec_slab: free lists by size class for the small blocks a library allocates and frees
 * by the thousand per second (nghttp2's streams, outbound frames, header copies), so a
 * freed block is handed out again at the cost of a list pop instead of a trip through
 * malloc's bins. One slab per event loop: not thread-safe. Blocks over the largest class
 * go to malloc; each list keeps at most a bounded number of free blocks. */
#ifndef ECHOS_COMMON_EC_SLAB_H
#define ECHOS_COMMON_EC_SLAB_H

#include <stddef.h>

struct ec_slab;

/* What a slab holds now, for tests and metrics. */
struct ec_slab_stats {
	size_t cached_blocks; /* free blocks kept on the lists */
	size_t cached_bytes;  /* their usable bytes */
	size_t live_blocks;   /* blocks handed out and not yet released (all sizes) */
};

/* Returns a new slab that keeps at most max_cached free blocks per class (0: keeps none,
 * every release goes back to malloc), or NULL when memory is short. Free with
 * ec_slab_free(), after every block from it has been released. */
struct ec_slab *ec_slab_new(size_t max_cached);
/* Frees the slab and its cached blocks; NULL is a no-op. Blocks still handed out must
 * not be used or released afterwards. */
void ec_slab_free(struct ec_slab *s);

/* malloc, calloc and realloc from s: blocks aligned to 16 bytes, owned by the caller
 * until ec_slab_release(). NULL when memory is short (or nmemb * size overflows); a size
 * of 0 gives a valid, unique block. realloc(NULL, n) allocates; realloc to 0 returns a
 * valid block as for size 0 (the old one is released only on success). */
void *ec_slab_alloc(struct ec_slab *s, size_t size);
void *ec_slab_calloc(struct ec_slab *s, size_t nmemb, size_t size);
void *ec_slab_realloc(struct ec_slab *s, void *p, size_t size);
/* Takes back a block from this slab; NULL is a no-op. */
void ec_slab_release(struct ec_slab *s, void *p);

void ec_slab_stats(const struct ec_slab *s, struct ec_slab_stats *out);

#endif
