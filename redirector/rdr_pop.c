/* rdr_pop: bounded (region, path) -> (requests, fallbacks) map with a flush to Redis
 * each second.
 * Open addressing over one slot array, with the used slots listed in insertion order so
 * a flush and a clear visit only those (the array is sized for the cap, 2^18 slots by
 * default, and mostly empty); entries are single allocations holding both strings. Owns
 * the map and its entries; the map is emptied by every flush. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_fmt.h"
#include "ec_redis.h"
#include "pol_score.h"
#include "rdr_pop.h"

#define POP_MAGIC 0x52504f50u /* "RPOP" */
#define POP_EXPIRE_REGIONS 64 /* distinct regions remembered per flush for one EXPIRE each */

struct pop_entry {
	uint64_t hash;
	uint64_t count;
	uint64_t misses;            /* origin fallbacks more replicas could have avoided */
	size_t region_len;
	size_t path_len;
	char key[];                 /* region '\0' path '\0' */
};

struct rdr_pop {
	unsigned magic;
	size_t max_entries;
	size_t n;
	size_t cap;                 /* power of two, >= 2 * max_entries */
	struct pop_entry **slots;
	uint32_t *used;             /* n slot indexes in use, in insertion order */
	uint64_t overflow, lost, sent, misses_sent;
};

/* The map's hash of (region, path): the caller's hash of the path (pol_hash_bytes, which
 * the decision needs anyway) mixed with the region's bytes (a short name). */
static uint64_t pop_hash(const char *region, size_t rlen, uint64_t path_hash)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < rlen; i++)
		h = (h ^ (unsigned char)region[i]) * 1099511628211ull;
	h ^= path_hash;
	h ^= h >> 31;
	h *= 0x9E3779B97F4A7C15ULL;
	return h ^ (h >> 29);
}

struct rdr_pop *rdr_pop_new(size_t max_entries)
{
	struct rdr_pop *p = calloc(1, sizeof *p);

	if (!p)
		return NULL;
	p->magic = POP_MAGIC;
	p->max_entries = max_entries ? max_entries : RDR_POP_MAX_ENTRIES;
	p->cap = 16;
	while (p->cap < 2 * p->max_entries)
		p->cap *= 2;
	/* used[] holds slot indexes in 32 bits */
	if (p->cap <= UINT32_MAX) {
		p->slots = calloc(p->cap, sizeof *p->slots);
		p->used = malloc(p->max_entries * sizeof *p->used);
	}
	if (!p->slots || !p->used) {
		free(p->slots);
		free(p->used);
		free(p);
		return NULL;
	}
	return p;
}

static void pop_clear(struct rdr_pop *p)
{
	for (size_t k = 0; k < p->n; k++) {
		free(p->slots[p->used[k]]);
		p->slots[p->used[k]] = NULL;
	}
	p->n = 0;
}

void rdr_pop_free(struct rdr_pop *p)
{
	if (!p)
		return;
	EC_ASSERT(p->magic == POP_MAGIC);
	pop_clear(p);
	free(p->slots);
	free(p->used);
	p->magic = 0;
	free(p);
}

int rdr_pop_miss_counts(enum pol_miss m)
{
	return m == POL_MISS_ALL_OVER_CAPACITY || m == POL_MISS_SLA_TTFB ||
	       m == POL_MISS_NOT_CACHED;
}

int rdr_pop_count(struct rdr_pop *p, const char *region, const char *path, size_t path_len)
{
	return rdr_pop_count_outcome(p, region, path, path_len, pol_hash_bytes(path, path_len),
	                             POL_MISS_NONE);
}

int rdr_pop_count_outcome(struct rdr_pop *p, const char *region, const char *path,
                          size_t path_len, uint64_t path_hash, enum pol_miss miss)
{
	uint64_t is_miss = rdr_pop_miss_counts(miss) ? 1 : 0;
	size_t rlen = strlen(region), mask = p->cap - 1, i;
	uint64_t h;
	struct pop_entry *e;

	EC_ASSERT(p->magic == POP_MAGIC);
	if (path_len > RDR_POP_MAX_PATH)
		return EC_ETOOBIG;
	h = pop_hash(region, rlen, path_hash);
	for (i = h & mask; (e = p->slots[i]) != NULL; i = (i + 1) & mask) {
		if (e->hash == h && e->region_len == rlen && e->path_len == path_len &&
		    memcmp(e->key, region, rlen) == 0 &&
		    memcmp(e->key + rlen + 1, path, path_len) == 0) {
			e->count++;
			e->misses += is_miss;
			return 0;
		}
	}
	if (p->n >= p->max_entries) {
		p->overflow++;
		return EC_EFULL;
	}
	e = malloc(sizeof *e + rlen + 1 + path_len + 1);
	if (!e) {
		p->overflow++;
		return EC_EFULL;
	}
	e->hash = h;
	e->count = 1;
	e->misses = is_miss;
	e->region_len = rlen;
	e->path_len = path_len;
	memcpy(e->key, region, rlen + 1);
	memcpy(e->key + rlen + 1, path, path_len);
	e->key[rlen + 1 + path_len] = '\0';
	p->slots[i] = e;
	p->used[p->n++] = (uint32_t)i;
	return 0;
}

/* EXPIRE each distinct key once per flush (a few regions, many paths). */
static int pop_expire(struct ec_redis *r, char regions[][160], size_t *n_regions,
                      const char *key)
{
	const char *argv[3];
	size_t argvlen[3], i;
	char ttl[16];

	for (i = 0; i < *n_regions; i++)
		if (strcmp(regions[i], key) == 0)
			return 0;
	if (*n_regions < POP_EXPIRE_REGIONS && strlen(key) < 160)
		strcpy(regions[(*n_regions)++], key);
	argv[0] = "EXPIRE";
	argv[1] = key;
	snprintf(ttl, sizeof ttl, "%d", RDR_POP_TTL_S);
	argv[2] = ttl;
	for (i = 0; i < 3; i++)
		argvlen[i] = strlen(argv[i]);
	return ec_redis_commandv(r, NULL, NULL, 3, argv, argvlen);
}

/* ZINCRBY <prefix>{<region>}:m:<minute> <n> <path> and the key's EXPIRE. */
static int pop_send(struct ec_redis *r, char regions[][160], size_t *n_regions,
                    const char *prefix, const struct pop_entry *e, uint64_t n,
                    long long minute)
{
	char key[160], count[24], *k = key;
	const char *argv[4];
	size_t argvlen[4], plen = strlen(prefix);
	/* the key as "%s{%.*s}:m:%lld" would print it, cut to fit like snprintf */
	size_t rlen = e->region_len < sizeof key - 64 - plen ? e->region_len
	                                                     : sizeof key - 64 - plen;

	EC_ASSERT(plen < 32 && minute >= 0);
	memcpy(k, prefix, plen);
	k += plen;
	*k++ = '{';
	memcpy(k, e->key, rlen);
	k += rlen;
	memcpy(k, "}:m:", 4);
	k = ec_put_dec(k + 4, (uint64_t)minute);
	*k = '\0';
	argv[0] = "ZINCRBY";
	argv[1] = key;
	argv[2] = count;
	argv[3] = e->key + e->region_len + 1;
	argvlen[0] = 7;
	argvlen[1] = (size_t)(k - key);
	argvlen[2] = (size_t)(ec_put_dec(count, n) - count);
	argvlen[3] = e->path_len;
	if (ec_redis_commandv(r, NULL, NULL, 4, argv, argvlen) != 0)
		return EC_EAGAIN;
	return pop_expire(r, regions, n_regions, key);
}

int rdr_pop_flush(struct rdr_pop *p, struct ec_redis *r, int64_t wall_ms)
{
	char regions[POP_EXPIRE_REGIONS][160];
	size_t n_regions = 0;
	long long minute = (long long)(wall_ms / 60000);
	int sent = 0, lost = 0, is_down = !ec_redis_is_up(r);
	uint64_t misses = 0;

	EC_ASSERT(p->magic == POP_MAGIC);
	for (size_t k = 0; k < p->n; k++) {
		struct pop_entry *e = p->slots[p->used[k]];

		p->slots[p->used[k]] = NULL;
		if (!is_down) {
			if ((e->count > 0 && pop_send(r, regions, &n_regions, "echos:pop:", e,
			                              e->count, minute) != 0) ||
			    (e->misses > 0 && pop_send(r, regions, &n_regions, "echos:miss:", e,
			                               e->misses, minute) != 0)) {
				is_down = 1;
			} else {
				sent++;
				misses += e->misses;
			}
		}
		if (is_down)
			lost++;
		free(e);
	}
	p->n = 0;
	p->sent += (uint64_t)sent;
	p->misses_sent += misses;
	p->lost += (uint64_t)lost;
	return lost > 0 ? EC_EAGAIN : sent;
}

size_t rdr_pop_size(const struct rdr_pop *p) { return p->n; }
uint64_t rdr_pop_overflow(const struct rdr_pop *p) { return p->overflow; }
uint64_t rdr_pop_lost(const struct rdr_pop *p) { return p->lost; }
uint64_t rdr_pop_sent(const struct rdr_pop *p) { return p->sent; }
uint64_t rdr_pop_misses_sent(const struct rdr_pop *p) { return p->misses_sent; }
