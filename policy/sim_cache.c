/* sim_cache: the pull-through caches the simulator compares echos with (LRU, LFU and
 * S3-FIFO per box, byte-sized), and the open-addressing map they and sim_run use.
 * Owns its entries, lists and heaps; knows nothing of time, uplinks or the origin. */
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "sim.h"

/* --- map -------------------------------------------------------------------------------- */

static inline size_t map_hash(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return (size_t)k;
}

int sim_map_init(struct sim_map *m, size_t expect)
{
	size_t n = 16;

	while (n < expect * 2)
		n *= 2;
	m->keys = malloc(n * sizeof *m->keys);
	m->vals = malloc(n * sizeof *m->vals);
	m->used = calloc(n, 1);
	m->mask = n - 1;
	m->n = 0;
	if (!m->keys || !m->vals || !m->used) {
		sim_map_fini(m);
		return EC_ENOMEM;
	}
	return 0;
}

void sim_map_fini(struct sim_map *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof *m);
}

uint32_t *sim_map_get(const struct sim_map *m, uint64_t key)
{
	size_t i = map_hash(key) & m->mask;

	while (m->used[i]) {
		if (m->keys[i] == key)
			return &m->vals[i];
		i = (i + 1) & m->mask;
	}
	return NULL;
}

static int map_grow(struct sim_map *m)
{
	struct sim_map big;

	if (sim_map_init(&big, (m->mask + 1)) != 0)
		return EC_ENOMEM;
	for (size_t i = 0; i <= m->mask; i++)
		if (m->used[i])
			sim_map_put(&big, m->keys[i], m->vals[i]);
	sim_map_fini(m);
	*m = big;
	return 0;
}

int sim_map_put(struct sim_map *m, uint64_t key, uint32_t val)
{
	size_t i;

	if ((m->n + 1) * 2 > m->mask + 1 && map_grow(m) != 0)
		return EC_ENOMEM;
	i = map_hash(key) & m->mask;
	while (m->used[i]) {
		if (m->keys[i] == key) {
			m->vals[i] = val;
			return 0;
		}
		i = (i + 1) & m->mask;
	}
	m->used[i] = 1;
	m->keys[i] = key;
	m->vals[i] = val;
	m->n++;
	return 0;
}

/* Backward-shift deletion: no tombstones, so lookups stay short however many keys come
 * and go (caches delete as often as they insert). */
void sim_map_del(struct sim_map *m, uint64_t key)
{
	size_t i = map_hash(key) & m->mask, j;

	while (m->used[i] && m->keys[i] != key)
		i = (i + 1) & m->mask;
	if (!m->used[i])
		return;
	j = i;
	for (;;) {
		size_t home;

		j = (j + 1) & m->mask;
		if (!m->used[j])
			break;
		home = map_hash(m->keys[j]) & m->mask;
		/* move j back to i unless its home lies cyclically in (i, j] */
		if ((j > i && (home <= i || home > j)) || (j < i && (home <= i && home > j))) {
			m->keys[i] = m->keys[j];
			m->vals[i] = m->vals[j];
			i = j;
		}
	}
	m->used[i] = 0;
	m->n--;
}

/* --- caches ----------------------------------------------------------------------------- */

#define NIL UINT32_MAX

enum cache_q {
	Q_MAIN = 0, /* LRU list, LFU (unused), S3-FIFO main FIFO */
	Q_SMALL,    /* S3-FIFO small FIFO */
	Q_GHOST,    /* S3-FIFO ghost: keys only */
	Q_COUNT_
};

struct centry {
	uint64_t key;   /* box << 32 | obj */
	uint64_t size;
	uint64_t seq;   /* LFU: last use, breaks frequency ties (older goes first) */
	uint32_t prev, next;
	uint32_t freq;
	uint32_t heap;  /* LFU: position in the box's heap */
	uint8_t q;
};

struct cbox {
	uint64_t cap, used;
	uint32_t head[Q_COUNT_], tail[Q_COUNT_];
	uint64_t qbytes[Q_COUNT_];
	uint32_t *heap;
	size_t hn, hcap;
};

struct sim_cache {
	enum sim_evict ev;
	struct cbox *boxes;
	size_t n_boxes;
	struct centry *e;
	size_t n_e, cap_e;
	uint32_t free_head;
	struct sim_map map;
	uint64_t clock;
};

struct sim_cache *sim_cache_new(enum sim_evict ev, size_t n_boxes, const uint64_t *cap_bytes)
{
	struct sim_cache *c = calloc(1, sizeof *c);

	if (!c)
		return NULL;
	c->ev = ev;
	c->n_boxes = n_boxes;
	c->free_head = NIL;
	c->boxes = calloc(n_boxes ? n_boxes : 1, sizeof *c->boxes);
	if (!c->boxes || sim_map_init(&c->map, 1 << 16) != 0) {
		free(c->boxes);
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < n_boxes; i++) {
		c->boxes[i].cap = cap_bytes[i];
		for (int q = 0; q < Q_COUNT_; q++)
			c->boxes[i].head[q] = c->boxes[i].tail[q] = NIL;
	}
	return c;
}

void sim_cache_free(struct sim_cache *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_boxes; i++)
		free(c->boxes[i].heap);
	free(c->boxes);
	free(c->e);
	sim_map_fini(&c->map);
	free(c);
}

uint64_t sim_cache_used(const struct sim_cache *c, uint32_t box)
{
	return c->boxes[box].used;
}

static uint32_t entry_new(struct sim_cache *c)
{
	if (c->free_head != NIL) {
		uint32_t i = c->free_head;

		c->free_head = c->e[i].next;
		return i;
	}
	if (c->n_e == c->cap_e) {
		size_t nc = c->cap_e ? c->cap_e * 2 : 4096;
		struct centry *v = realloc(c->e, nc * sizeof *v);

		if (!v)
			return NIL;
		c->e = v;
		c->cap_e = nc;
	}
	return (uint32_t)c->n_e++;
}

static void entry_free(struct sim_cache *c, uint32_t i)
{
	sim_map_del(&c->map, c->e[i].key);
	c->e[i].next = c->free_head;
	c->free_head = i;
}

static void list_push(struct sim_cache *c, struct cbox *b, int q, uint32_t i)
{
	struct centry *e = &c->e[i];

	e->q = (uint8_t)q;
	e->prev = NIL;
	e->next = b->head[q];
	if (b->head[q] != NIL)
		c->e[b->head[q]].prev = i;
	else
		b->tail[q] = i;
	b->head[q] = i;
	b->qbytes[q] += e->size;
}

static void list_unlink(struct sim_cache *c, struct cbox *b, uint32_t i)
{
	struct centry *e = &c->e[i];
	int q = e->q;

	if (e->prev != NIL)
		c->e[e->prev].next = e->next;
	else
		b->head[q] = e->next;
	if (e->next != NIL)
		c->e[e->next].prev = e->prev;
	else
		b->tail[q] = e->prev;
	b->qbytes[q] -= e->size;
}

/* LFU heap: min by (freq, seq). */
static int heap_less(const struct sim_cache *c, uint32_t a, uint32_t b)
{
	const struct centry *x = &c->e[a], *y = &c->e[b];

	return x->freq != y->freq ? x->freq < y->freq : x->seq < y->seq;
}

static void heap_set(struct sim_cache *c, struct cbox *b, size_t pos, uint32_t i)
{
	b->heap[pos] = i;
	c->e[i].heap = (uint32_t)pos;
}

static void heap_up(struct sim_cache *c, struct cbox *b, size_t pos)
{
	uint32_t i = b->heap[pos];

	while (pos > 0) {
		size_t parent = (pos - 1) / 2;

		if (!heap_less(c, i, b->heap[parent]))
			break;
		heap_set(c, b, pos, b->heap[parent]);
		pos = parent;
	}
	heap_set(c, b, pos, i);
}

static void heap_down(struct sim_cache *c, struct cbox *b, size_t pos)
{
	uint32_t i = b->heap[pos];

	for (;;) {
		size_t l = 2 * pos + 1, m = l;

		if (l >= b->hn)
			break;
		if (l + 1 < b->hn && heap_less(c, b->heap[l + 1], b->heap[l]))
			m = l + 1;
		if (!heap_less(c, b->heap[m], i))
			break;
		heap_set(c, b, pos, b->heap[m]);
		pos = m;
	}
	heap_set(c, b, pos, i);
}

static void evict_one(struct sim_cache *c, struct cbox *b)
{
	uint32_t t;

	if (c->ev == SIM_EVICT_LFU) {
		t = b->heap[0];
		b->hn--;
		if (b->hn) {
			heap_set(c, b, 0, b->heap[b->hn]);
			heap_down(c, b, 0);
		}
		b->used -= c->e[t].size;
		entry_free(c, t);
		return;
	}
	if (c->ev == SIM_EVICT_LRU) {
		t = b->tail[Q_MAIN];
		list_unlink(c, b, t);
		b->used -= c->e[t].size;
		entry_free(c, t);
		return;
	}
	/* S3-FIFO: the small FIFO (10%) filters one-hit wonders; an object seen again while
	 * in it moves to the main FIFO, others leave a ghost that sends them straight to
	 * main if they come back. Main is a FIFO with reinsertion (2-bit CLOCK). */
	for (;;) {
		if (b->qbytes[Q_SMALL] * 10 > b->cap || b->head[Q_MAIN] == NIL) {
			t = b->tail[Q_SMALL];
			list_unlink(c, b, t);
			if (c->e[t].freq >= 1) {
				c->e[t].freq = 0;
				list_push(c, b, Q_MAIN, t);
				continue;
			}
			b->used -= c->e[t].size;
			list_push(c, b, Q_GHOST, t);
			while (b->qbytes[Q_GHOST] * 10 > b->cap * 9) {
				uint32_t g = b->tail[Q_GHOST];

				list_unlink(c, b, g);
				entry_free(c, g);
			}
			return;
		}
		t = b->tail[Q_MAIN];
		list_unlink(c, b, t);
		if (c->e[t].freq > 0) {
			c->e[t].freq--;
			list_push(c, b, Q_MAIN, t);
			continue;
		}
		b->used -= c->e[t].size;
		entry_free(c, t);
		return;
	}
}

int sim_cache_lookup(struct sim_cache *c, uint32_t box, uint32_t obj)
{
	uint32_t *v = sim_map_get(&c->map, (uint64_t)box << 32 | obj);
	struct cbox *b = &c->boxes[box];
	struct centry *e;

	if (!v)
		return 0;
	e = &c->e[*v];
	switch (c->ev) {
	case SIM_EVICT_LRU:
		list_unlink(c, b, *v);
		list_push(c, b, Q_MAIN, *v);
		return 1;
	case SIM_EVICT_LFU:
		e->freq++;
		e->seq = ++c->clock;
		heap_down(c, b, e->heap);
		return 1;
	case SIM_EVICT_S3FIFO:
		if (e->q == Q_GHOST)
			return 0;
		if (e->freq < 3)
			e->freq++;
		return 1;
	}
	return 0;
}

int sim_cache_contains(const struct sim_cache *c, uint32_t box, uint32_t obj)
{
	const uint32_t *v = sim_map_get(&c->map, (uint64_t)box << 32 | obj);

	return v && c->e[*v].q != Q_GHOST;
}

static void heap_remove(struct sim_cache *c, struct cbox *b, uint32_t i)
{
	size_t pos = c->e[i].heap;
	uint32_t last;

	b->hn--;
	if (pos == b->hn)
		return;
	last = b->heap[b->hn];
	heap_set(c, b, pos, last);
	heap_up(c, b, pos);
	heap_down(c, b, c->e[last].heap);
}

int sim_cache_remove(struct sim_cache *c, uint32_t box, uint32_t obj)
{
	uint32_t *v = sim_map_get(&c->map, (uint64_t)box << 32 | obj), i;
	struct cbox *b = &c->boxes[box];

	if (!v || c->e[*v].q == Q_GHOST)
		return 0;
	i = *v;
	if (c->ev == SIM_EVICT_LFU)
		heap_remove(c, b, i);
	else
		list_unlink(c, b, i);
	b->used -= c->e[i].size;
	entry_free(c, i);
	return 1;
}

void sim_cache_set_cap(struct sim_cache *c, uint32_t box, uint64_t cap)
{
	struct cbox *b = &c->boxes[box];

	b->cap = cap;
	while (b->used > b->cap)
		evict_one(c, b);
}

uint64_t sim_cache_cap(const struct sim_cache *c, uint32_t box)
{
	return c->boxes[box].cap;
}

/* Inserts obj after a miss (hot = 0), or as an object known to be popular (hot = 1:
 * S3-FIFO puts it straight in its main FIFO, as for a ghost hit). */
static int cache_insert(struct sim_cache *c, uint32_t box, uint32_t obj, uint64_t size, int hot)
{
	struct cbox *b = &c->boxes[box];
	uint64_t key = (uint64_t)box << 32 | obj;
	uint32_t *v = sim_map_get(&c->map, key), i;
	int q = Q_MAIN;

	if (size > b->cap)
		return 0;
	if (v) {
		/* only a ghost can be present on a miss */
		i = *v;
		list_unlink(c, b, i);
		sim_map_del(&c->map, key);
	} else if (c->ev == SIM_EVICT_S3FIFO && !hot) {
		q = Q_SMALL;
	}
	while (b->used + size > b->cap)
		evict_one(c, b);
	if (!v) {
		i = entry_new(c);
		if (i == NIL)
			return EC_ENOMEM;
	}
	if (sim_map_put(&c->map, key, i) != 0)
		return EC_ENOMEM;
	c->e[i] = (struct centry){ .key = key, .size = size, .freq = 0, .seq = ++c->clock };
	b->used += size;
	if (c->ev == SIM_EVICT_LFU) {
		if (b->hn == b->hcap) {
			size_t nc = b->hcap ? b->hcap * 2 : 256;
			uint32_t *h = realloc(b->heap, nc * sizeof *h);

			if (!h)
				return EC_ENOMEM;
			b->heap = h;
			b->hcap = nc;
		}
		c->e[i].freq = 1;
		b->heap[b->hn++] = i;
		heap_up(c, b, b->hn - 1);
		return 0;
	}
	list_push(c, b, q, i);
	return 0;
}

int sim_cache_insert(struct sim_cache *c, uint32_t box, uint32_t obj, uint64_t size)
{
	return cache_insert(c, box, obj, size, 0);
}

int sim_cache_adopt(struct sim_cache *c, uint32_t box, uint32_t obj, uint64_t size)
{
	if (sim_cache_contains(c, box, obj))
		return 0;
	return cache_insert(c, box, obj, size, 1);
}
