/* shim_dcache: digests of objects recently fetched, keyed by upstream URL and checked
 * against the validators of a fresh upstream HEAD, so a HEAD after a GET needs no second
 * download. Direct-mapped and fixed in size: a colliding URL replaces the older entry.
 * Stores only digests of responses with a strong validator; never decides an answer. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_DCACHE_H
#define ECHOS_ORIGIN_SHIM_SHIM_DCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "shim_digest.h"

struct shim_object;
struct shim_dcache;

/* Returns a new cache of `slots` entries owned by the caller (free with
 * shim_dcache_free), or NULL on allocation failure. Safe to use from any thread. */
struct shim_dcache *shim_dcache_new(size_t slots);
void shim_dcache_free(struct shim_dcache *c);

/* Remembers the digest of a complete 200 GET of url (o borrowed for the call). Does
 * nothing unless o has a strong validator and url fits an entry. */
void shim_dcache_put(struct shim_dcache *c, const char *url, const struct shim_object *o);

/* Looks up url for a HEAD answered upstream by o: returns 1 and fills sha256 when the
 * entry's ETag, Last-Modified, Content-Encoding and size equal o's (Content-Length) and
 * o has a strong validator; else 0. */
int shim_dcache_get(struct shim_dcache *c, const char *url, const struct shim_object *o,
                    uint8_t sha256[SHIM_SHA256_LEN]);

#endif
