/* pol_decay: exponentially decayed counters (exact, lazily updated) and a table of
 * (region, object) rows holding decayed requests and origin fallbacks. Pure: now_ms
 * comes from the caller. Owns its rows and index; never logs, never reads a clock. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "pol_decay.h"

double pol_decay_get(const struct pol_decay_val *x, int64_t now_ms, int64_t half_life_ms)
{
	int64_t dt = now_ms - x->t_ms;

	if (dt <= 0 || x->v == 0.0)
		return x->v;
	return x->v * exp2(-(double)dt / (double)half_life_ms);
}

void pol_decay_add(struct pol_decay_val *x, double inc, int64_t now_ms, int64_t half_life_ms)
{
	x->v = pol_decay_get(x, now_ms, half_life_ms) + inc;
	if (now_ms > x->t_ms)
		x->t_ms = now_ms;
}

double pol_decay_rate(const struct pol_decay_val *x, int64_t now_ms, int64_t half_life_ms)
{
	return pol_decay_get(x, now_ms, half_life_ms) * M_LN2 * 1000.0 / (double)half_life_ms;
}

/* Rows live in one dense array (export and prune walk it in order); an open-addressing
 * index of row numbers + 1 (0: empty slot), linear probing, at most half full. */
struct pol_decay_table {
	int64_t half_life_ms;
	struct pol_decay_entry *rows;
	size_t n, cap;
	uint32_t *slots;
	size_t mask; /* slots - 1, a power of two minus one */
};

static inline uint64_t decay_key(uint64_t region_hash, uint64_t obj_hash)
{
	uint64_t x = obj_hash ^ (region_hash * 0x9E3779B97F4A7C15ULL);

	x ^= x >> 31;
	x *= 0xBF58476D1CE4E5B9ULL;
	x ^= x >> 29;
	return x;
}

static int decay_index_build(struct pol_decay_table *t, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof *slots);

	if (!slots)
		return EC_ENOMEM;
	free(t->slots);
	t->slots = slots;
	t->mask = nslots - 1;
	for (size_t i = 0; i < t->n; i++) {
		size_t s = decay_key(t->rows[i].region_hash, t->rows[i].obj_hash) & t->mask;

		while (slots[s])
			s = (s + 1) & t->mask;
		slots[s] = (uint32_t)(i + 1);
	}
	return 0;
}

struct pol_decay_table *pol_decay_table_new(int64_t half_life_ms)
{
	struct pol_decay_table *t;

	if (half_life_ms <= 0)
		return NULL;
	t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->half_life_ms = half_life_ms;
	if (decay_index_build(t, 1024) != 0) {
		free(t);
		return NULL;
	}
	return t;
}

void pol_decay_table_free(struct pol_decay_table *t)
{
	if (!t)
		return;
	free(t->rows);
	free(t->slots);
	free(t);
}

int64_t pol_decay_table_half_life(const struct pol_decay_table *t)
{
	return t->half_life_ms;
}

size_t pol_decay_table_count(const struct pol_decay_table *t)
{
	return t->n;
}

/* Slot holding (region, obj), or the empty slot where it would go. */
static size_t decay_slot(const struct pol_decay_table *t, uint64_t region_hash,
                         uint64_t obj_hash)
{
	size_t s = decay_key(region_hash, obj_hash) & t->mask;

	for (;;) {
		uint32_t r = t->slots[s];

		if (!r)
			return s;
		if (t->rows[r - 1].obj_hash == obj_hash && t->rows[r - 1].region_hash == region_hash)
			return s;
		s = (s + 1) & t->mask;
	}
}

const struct pol_decay_entry *pol_decay_table_find(const struct pol_decay_table *t,
                                                   uint64_t region_hash, uint64_t obj_hash)
{
	uint32_t r = t->slots[decay_slot(t, region_hash, obj_hash)];

	return r ? &t->rows[r - 1] : NULL;
}

/* Row of (region, obj), created zeroed when absent; NULL when memory runs out. */
static struct pol_decay_entry *decay_row(struct pol_decay_table *t, uint64_t region_hash,
                                         uint64_t obj_hash, int64_t now_ms)
{
	size_t s = decay_slot(t, region_hash, obj_hash);
	struct pol_decay_entry *e;

	if (t->slots[s])
		return &t->rows[t->slots[s] - 1];
	if (t->n >= UINT32_MAX - 1)
		return NULL;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 256;
		struct pol_decay_entry *rows = realloc(t->rows, cap * sizeof *rows);

		if (!rows)
			return NULL;
		t->rows = rows;
		t->cap = cap;
	}
	if ((t->n + 1) * 2 > t->mask + 1) {
		if (decay_index_build(t, (t->mask + 1) * 2) != 0)
			return NULL;
		s = decay_slot(t, region_hash, obj_hash);
	}
	e = &t->rows[t->n];
	memset(e, 0, sizeof *e);
	e->region_hash = region_hash;
	e->obj_hash = obj_hash;
	e->reqs.t_ms = now_ms;
	e->fbs.t_ms = now_ms;
	t->slots[s] = (uint32_t)(++t->n);
	return e;
}

int pol_decay_table_hit(struct pol_decay_table *t, uint64_t region_hash, uint64_t obj_hash,
                        uint64_t size_bytes, double n, int64_t now_ms)
{
	struct pol_decay_entry *e = decay_row(t, region_hash, obj_hash, now_ms);

	if (!e)
		return EC_ENOMEM;
	if (size_bytes)
		e->size_bytes = size_bytes;
	pol_decay_add(&e->reqs, n, now_ms, t->half_life_ms);
	return 0;
}

int pol_decay_table_fallback(struct pol_decay_table *t, uint64_t region_hash,
                             uint64_t obj_hash, double n, int64_t now_ms)
{
	struct pol_decay_entry *e = decay_row(t, region_hash, obj_hash, now_ms);

	if (!e)
		return EC_ENOMEM;
	pol_decay_add(&e->fbs, n, now_ms, t->half_life_ms);
	return 0;
}

size_t pol_decay_table_prune(struct pol_decay_table *t, int64_t now_ms, double min_count)
{
	size_t kept = 0, removed;

	for (size_t i = 0; i < t->n; i++) {
		if (pol_decay_get(&t->rows[i].reqs, now_ms, t->half_life_ms) < min_count)
			continue;
		t->rows[kept++] = t->rows[i];
	}
	removed = t->n - kept;
	t->n = kept;
	if (removed) {
		/* Rebuilt in place at the same size: needs no memory, so prune cannot fail. */
		memset(t->slots, 0, (t->mask + 1) * sizeof *t->slots);
		for (size_t i = 0; i < t->n; i++) {
			size_t s = decay_key(t->rows[i].region_hash, t->rows[i].obj_hash) & t->mask;

			while (t->slots[s])
				s = (s + 1) & t->mask;
			t->slots[s] = (uint32_t)(i + 1);
		}
	}
	return removed;
}

int pol_decay_table_export(const struct pol_decay_table *t, int64_t now_ms, double min_rate,
                           struct pol_place_obj **out, size_t *n)
{
	struct pol_place_obj *v = NULL;
	size_t k = 0;

	*out = NULL;
	*n = 0;
	if (t->n) {
		v = malloc(t->n * sizeof *v);
		if (!v)
			return EC_ENOMEM;
	}
	for (size_t i = 0; i < t->n; i++) {
		const struct pol_decay_entry *e = &t->rows[i];
		double rate = pol_decay_rate(&e->reqs, now_ms, t->half_life_ms);

		if (rate < min_rate || rate <= 0.0)
			continue;
		v[k].obj_hash = e->obj_hash;
		v[k].region_hash = e->region_hash;
		v[k].size_bytes = e->size_bytes;
		v[k].rate = rate;
		v[k].fallback_rate = pol_decay_rate(&e->fbs, now_ms, t->half_life_ms);
		v[k].min_replicas = 0;
		k++;
	}
	*out = v;
	*n = k;
	return 0;
}

int pol_decay_under_replicated(const struct pol_decay_entry *e, int64_t now_ms,
                               int64_t half_life_ms, double min_fallbacks, double ratio)
{
	double fb = pol_decay_get(&e->fbs, now_ms, half_life_ms);
	double rq = pol_decay_get(&e->reqs, now_ms, half_life_ms);

	return fb >= min_fallbacks && fb >= ratio * rq;
}
