/* rdr_inv: the object -> holders map (open addressing with backward-shift deletion, so
 * no tombstones pile up), the registry of boxes it refers to by number, and the
 * SMEMBERS reads that refresh one box at a time. Owns the map, the registry, each box's
 * list of held object hashes and the in-flight read contexts. */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "pol_score.h"
#include "rdr_inv.h"
#include "rdr_table.h"

#define INV_MAGIC 0x52494e56u /* "RINV" */
#define INV_NONE UINT32_MAX

struct inv_obj {
	uint64_t obj;                    /* 0: empty slot */
	uint32_t box[RDR_INV_HOLDERS];   /* box numbers, INV_NONE: unused */
};

struct inv_box {
	char id[EC_TOKEN_BOX_MAX + 1];
	uint64_t ver;                    /* version of the set we hold */
	int has_ver;
	int is_reading;
	uint64_t *objs;                  /* object hashes this box holds in the map */
	size_t n_objs;
	uint64_t table_gen;              /* row below is for this table */
	long row;
};

struct inv_read {
	struct rdr_inv *inv;             /* NULL once the inventory is gone */
	uint32_t box;
	uint64_t ver;
};

struct rdr_inv {
	unsigned magic;
	struct ec_redis *redis;          /* borrowed */
	struct inv_obj *slots;
	size_t cap, count, max_objects;
	struct inv_box *boxes;
	size_t n_boxes, boxes_cap;
	uint32_t *reg;                   /* open addressing by id: box number + 1, 0: empty */
	size_t reg_cap;                  /* power of two, at least 2 * boxes_cap */
	unsigned reading;
	uint64_t dropped;
	struct inv_read **reads;         /* in flight, to orphan on free */
	size_t n_reads;
};

static inline size_t inv_slot(uint64_t h, size_t mask)
{
	return (size_t)((h ^ (h >> 29)) * 0x9E3779B97F4A7C15ULL >> 20) & mask;
}

static struct inv_obj *inv_find(const struct rdr_inv *inv, uint64_t obj)
{
	size_t mask = inv->cap - 1;

	for (size_t s = inv_slot(obj, mask); inv->slots[s].obj; s = (s + 1) & mask)
		if (inv->slots[s].obj == obj)
			return &inv->slots[s];
	return NULL;
}

/* Removes the entry at e, shifting later entries of its probe run back. */
static void inv_erase(struct rdr_inv *inv, struct inv_obj *e)
{
	size_t mask = inv->cap - 1, i = (size_t)(e - inv->slots), j = i;

	for (;;) {
		size_t k;

		j = (j + 1) & mask;
		if (!inv->slots[j].obj)
			break;
		k = inv_slot(inv->slots[j].obj, mask);
		/* move j to i when its home k is not in (i, j] cyclically */
		if ((j > i && (k <= i || k > j)) || (j < i && (k <= i && k > j))) {
			inv->slots[i] = inv->slots[j];
			i = j;
		}
	}
	memset(&inv->slots[i], 0, sizeof inv->slots[i]);
	inv->count--;
}

/* Adds box to obj's holders. Returns 0, or -1 when the map is full. */
static int inv_add(struct rdr_inv *inv, uint64_t obj, uint32_t box)
{
	size_t mask = inv->cap - 1, s;
	struct inv_obj *e = inv_find(inv, obj);

	if (!e) {
		if (inv->count >= inv->max_objects)
			return -1;
		for (s = inv_slot(obj, mask); inv->slots[s].obj; s = (s + 1) & mask)
			;
		e = &inv->slots[s];
		e->obj = obj;
		for (size_t k = 0; k < RDR_INV_HOLDERS; k++)
			e->box[k] = INV_NONE;
		inv->count++;
	}
	for (size_t k = 0; k < RDR_INV_HOLDERS; k++) {
		if (e->box[k] == box)
			return 0;
		if (e->box[k] == INV_NONE) {
			e->box[k] = box;
			return 0;
		}
	}
	return 0; /* already RDR_INV_HOLDERS holders: enough to choose from */
}

static void inv_remove(struct rdr_inv *inv, uint64_t obj, uint32_t box)
{
	struct inv_obj *e = inv_find(inv, obj);
	size_t k, used = 0;

	if (!e)
		return;
	for (k = 0; k < RDR_INV_HOLDERS; k++)
		if (e->box[k] == box)
			e->box[k] = INV_NONE;
	/* keep the used entries at the front */
	for (k = 0; k < RDR_INV_HOLDERS; k++)
		if (e->box[k] != INV_NONE)
			e->box[used++] = e->box[k];
	for (k = used; k < RDR_INV_HOLDERS; k++)
		e->box[k] = INV_NONE;
	if (used == 0)
		inv_erase(inv, e);
}

static size_t reg_slot(const char *id, size_t mask)
{
	uint64_t h = 1469598103934665603ull;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 1099511628211ull;
	return (size_t)(h ^ (h >> 32)) & mask;
}

/* Box number of id, registering it. Returns INV_NONE when the registry is full. */
static uint32_t inv_box_of(struct rdr_inv *inv, const char *id)
{
	size_t s;

	if (inv->reg_cap) {
		for (s = reg_slot(id, inv->reg_cap - 1); inv->reg[s]; s = (s + 1) & (inv->reg_cap - 1))
			if (strcmp(inv->boxes[inv->reg[s] - 1].id, id) == 0)
				return inv->reg[s] - 1;
	}
	if (inv->n_boxes >= RDR_INV_MAX_BOXES || strlen(id) > EC_TOKEN_BOX_MAX)
		return INV_NONE;
	if (inv->n_boxes == inv->boxes_cap) {
		size_t cap = inv->boxes_cap ? 2 * inv->boxes_cap : 64, rcap = 4 * cap;
		struct inv_box *b = realloc(inv->boxes, cap * sizeof *b);
		uint32_t *reg;

		if (!b)
			return INV_NONE;
		inv->boxes = b;
		inv->boxes_cap = cap;
		reg = calloc(rcap, sizeof *reg);
		if (!reg)
			return INV_NONE;
		free(inv->reg);
		inv->reg = reg;
		inv->reg_cap = rcap;
		for (size_t i = 0; i < inv->n_boxes; i++) {
			for (s = reg_slot(inv->boxes[i].id, rcap - 1); reg[s]; s = (s + 1) & (rcap - 1))
				;
			reg[s] = (uint32_t)i + 1;
		}
	}
	memset(&inv->boxes[inv->n_boxes], 0, sizeof inv->boxes[0]);
	strcpy(inv->boxes[inv->n_boxes].id, id);
	inv->boxes[inv->n_boxes].row = -1;
	for (s = reg_slot(id, inv->reg_cap - 1); inv->reg[s]; s = (s + 1) & (inv->reg_cap - 1))
		;
	inv->reg[s] = (uint32_t)inv->n_boxes + 1;
	return (uint32_t)inv->n_boxes++;
}

struct rdr_inv *rdr_inv_new(struct ec_redis *redis, size_t max_objects)
{
	struct rdr_inv *inv = calloc(1, sizeof *inv);
	size_t cap = 16;

	if (!inv)
		return NULL;
	if (max_objects == 0)
		max_objects = RDR_INV_MAX_OBJECTS;
	while (cap < max_objects + max_objects / 2)
		cap *= 2;
	inv->slots = calloc(cap, sizeof *inv->slots);
	if (!inv->slots) {
		free(inv);
		return NULL;
	}
	inv->magic = INV_MAGIC;
	inv->redis = redis;
	inv->cap = cap;
	inv->max_objects = max_objects;
	return inv;
}

void rdr_inv_free(struct rdr_inv *inv)
{
	if (!inv)
		return;
	EC_ASSERT(inv->magic == INV_MAGIC);
	for (size_t i = 0; i < inv->n_reads; i++)
		inv->reads[i]->inv = NULL;
	for (size_t i = 0; i < inv->n_boxes; i++)
		free(inv->boxes[i].objs);
	free(inv->reads);
	free(inv->reg);
	free(inv->boxes);
	free(inv->slots);
	inv->magic = 0;
	free(inv);
}

size_t rdr_inv_set_box(struct rdr_inv *inv, const char *box_id, uint64_t ver,
                       const char *const *paths, const size_t *lens, size_t n)
{
	uint32_t bn = inv_box_of(inv, box_id);
	struct inv_box *b;
	uint64_t *objs;
	size_t i, kept = 0, lost = 0;

	if (bn == INV_NONE)
		return n;
	b = &inv->boxes[bn];
	for (i = 0; i < b->n_objs; i++)
		inv_remove(inv, b->objs[i], bn);
	free(b->objs);
	b->objs = NULL;
	b->n_objs = 0;
	b->ver = ver;
	b->has_ver = 1;
	objs = malloc((n ? n : 1) * sizeof *objs);
	if (!objs)
		return n;
	for (i = 0; i < n; i++) {
		uint64_t h = pol_hash_bytes(paths[i], lens[i]);

		if (h == 0 || inv_add(inv, h, bn) != 0) {
			lost++;
			continue;
		}
		objs[kept++] = h;
	}
	b->objs = objs;
	b->n_objs = kept;
	inv->dropped += lost;
	return lost;
}

static void inv_read_forget(struct rdr_inv *inv, struct inv_read *rd)
{
	for (size_t i = 0; i < inv->n_reads; i++)
		if (inv->reads[i] == rd) {
			inv->reads[i] = inv->reads[--inv->n_reads];
			return;
		}
}

static void on_inv_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct inv_read *rd = arg;
	struct rdr_inv *inv = rd->inv;
	const char **paths = NULL;
	size_t *lens = NULL, n = 0;

	if (!inv)
		goto out;
	inv_read_forget(inv, rd);
	inv->reading--;
	inv->boxes[rd->box].is_reading = 0;
	if (!reply || reply->type != REDIS_REPLY_ARRAY)
		goto out; /* tried again with the next table */
	paths = malloc((reply->elements ? reply->elements : 1) * sizeof *paths);
	lens = malloc((reply->elements ? reply->elements : 1) * sizeof *lens);
	if (!paths || !lens)
		goto out;
	for (size_t i = 0; i < reply->elements; i++) {
		const struct redisReply *e = reply->element[i];

		if (e->type == REDIS_REPLY_STRING && e->len > 0 && e->str[0] == '/') {
			paths[n] = e->str;
			lens[n++] = e->len;
		}
	}
	rdr_inv_set_box(inv, inv->boxes[rd->box].id, rd->ver, paths, lens, n);
out:
	free(paths);
	free(lens);
	free(rd);
}

void rdr_inv_on_table(void *arg, const struct rdr_table *t)
{
	struct rdr_inv *inv = arg;

	EC_ASSERT(inv->magic == INV_MAGIC);
	for (size_t i = 0; i < t->n && inv->reading < RDR_INV_READS_IN_FLIGHT; i++) {
		const struct rdr_box *row = &t->rows[i];
		uint32_t bn = inv_box_of(inv, row->id);
		struct inv_box *b;
		struct inv_read *rd, **reads;

		if (bn == INV_NONE)
			continue;
		b = &inv->boxes[bn];
		if (b->is_reading || (b->has_ver && b->ver == row->inv_ver))
			continue;
		rd = malloc(sizeof *rd);
		reads = realloc(inv->reads, (inv->n_reads + 1) * sizeof *reads);
		if (reads)
			inv->reads = reads;
		if (!rd || !reads) {
			free(rd);
			return;
		}
		*rd = (struct inv_read){ inv, bn, row->inv_ver };
		if (ec_redis_command(inv->redis, on_inv_reply, rd, "SMEMBERS echos:inv:{%s}",
		                     row->id) != 0) {
			free(rd);
			return;
		}
		inv->reads[inv->n_reads++] = rd;
		b->is_reading = 1;
		inv->reading++;
	}
}

size_t rdr_inv_holders(struct rdr_inv *inv, const struct rdr_table *t, uint64_t obj_hash,
                       uint32_t *out, size_t cap)
{
	const struct inv_obj *e;
	size_t n = 0;

	if (!inv || inv->count == 0 || !(e = inv_find(inv, obj_hash)))
		return 0;
	for (size_t k = 0; k < RDR_INV_HOLDERS && e->box[k] != INV_NONE && n < cap; k++) {
		struct inv_box *b = &inv->boxes[e->box[k]];

		if (b->table_gen != t->gen) {
			b->row = rdr_table_find(t, b->id);
			b->table_gen = t->gen;
		}
		if (b->row >= 0)
			out[n++] = (uint32_t)b->row;
	}
	return n;
}

size_t rdr_inv_objects(const struct rdr_inv *inv)
{
	return inv ? inv->count : 0;
}

uint64_t rdr_inv_dropped(const struct rdr_inv *inv)
{
	return inv ? inv->dropped : 0;
}
