/* pol_memo: a direct-mapped table of recent answers, keyed by what the answer depends on
 * (object, the client's PoP and ASN, SLA, holders), each kept with the utilization
 * buckets its two boxes had. An entry is only made when both boxes are of class POP or
 * ASN: then no box whose class depends on the client's location, or on lanes, can rank
 * above either. While loads only go up and time only forward, every other box can only
 * drop in rank or out of eligibility, so if the two still pass and sit in the same
 * buckets they are still the best two. */
#include <stdlib.h>
#include <string.h>

#include "pol_memo.h"
#include "pol_rank.h"

#define MEMO_HOLDERS 4 /* answers for objects with more holders are not kept */

struct memo_entry {
	uint64_t obj;
	uint64_t pop;
	const struct pol_sla *sla;
	int64_t now_ms;   /* when the walk ran: a query judged earlier cannot use it */
	uint32_t asn;
	uint32_t epoch;   /* 0: empty */
	int32_t box, alt;
	uint8_t box_bucket, alt_bucket;
	uint8_t cls;      /* of box */
	uint8_t holds;
	uint32_t n_holders;
	uint32_t holders[MEMO_HOLDERS];
};

struct pol_memo {
	struct memo_entry *e;
	size_t mask;
	uint32_t epoch;
	struct pol_memo_stats st;
};

struct pol_memo *pol_memo_new(size_t slots)
{
	struct pol_memo *m = calloc(1, sizeof *m);
	size_t cap = 16;

	if (!m)
		return NULL;
	while (cap < slots && cap < ((size_t)1 << 24))
		cap *= 2;
	m->e = calloc(cap, sizeof *m->e);
	if (!m->e) {
		free(m);
		return NULL;
	}
	m->mask = cap - 1;
	m->epoch = 1;
	return m;
}

void pol_memo_free(struct pol_memo *m)
{
	if (!m)
		return;
	free(m->e);
	free(m);
}

void pol_memo_clear(struct pol_memo *m)
{
	m->st.clears++;
	if (++m->epoch == 0) { /* after 2^32 clears: wipe once rather than mistake an old entry */
		memset(m->e, 0, (m->mask + 1) * sizeof *m->e);
		m->epoch = 1;
	}
}

/* b's load bucket with the new viewer, or -1 when b is not eligible (pol_rank). */
static inline int memo_bucket(const struct pol_box *b, const struct pol_query *q)
{
	enum pol_miss why;
	double load = 0;

	if (!pol_rank_eligible(b, q->sla, q->now_ms, &why, &load))
		return -1;
	return (int)pol_rank_bucket(b, load);
}

int pol_memo_choose(struct pol_memo *m, const struct pol_index *x, const struct pol_query *q,
                    struct pol_choice *out)
{
	const struct pol_client *c = q->client;
	const struct pol_box *boxes = pol_index_boxes(x);
	size_t n = pol_index_count(x);
	const struct pol_geo_q no_geo = { 0, { 0, 0, 0 }, 0 };
	size_t nh = q->n_holders;
	struct memo_entry *e;
	int r;

	e = &m->e[pol_rank_mix(q->obj_hash + c->pop_hash * 0x9E3779B97F4A7C15ULL +
	                       (uint64_t)c->asn * 0xC2B2AE3D27D4EB4FULL) &
	          m->mask];
	if (e->epoch == m->epoch && e->obj == q->obj_hash && e->pop == c->pop_hash &&
	    e->asn == c->asn && e->sla == q->sla && q->now_ms >= e->now_ms &&
	    e->n_holders == nh &&
	    (nh == 0 || memcmp(e->holders, q->holders, nh * sizeof *q->holders) == 0) &&
	    /* a caller that swapped the index without a clear gets walks, not a stray read */
	    (size_t)e->box < n && (size_t)e->alt < n &&
	    memo_bucket(&boxes[e->box], q) == e->box_bucket &&
	    memo_bucket(&boxes[e->alt], q) == e->alt_bucket) {
		out->box = e->box;
		out->alt = e->alt;
		out->cls = (enum pol_class)e->cls;
		out->miss = POL_MISS_NONE;
		out->holds = e->holds;
		m->st.hits++;
		return 0;
	}
	m->st.misses++;
	r = pol_index_choose(x, q, out);
	/* the alternative ranks below the box, so its class bounds both */
	if (r != 0 || out->alt < 0 || nh > MEMO_HOLDERS ||
	    pol_rank_proximity(&boxes[out->alt], c, POL_CLASS_ASN, &no_geo, NULL) >
	            POL_CLASS_ASN)
		return r;
	*e = (struct memo_entry){ .obj = q->obj_hash,
		                  .pop = c->pop_hash,
		                  .sla = q->sla,
		                  .now_ms = q->now_ms,
		                  .asn = c->asn,
		                  .epoch = m->epoch,
		                  .box = out->box,
		                  .alt = out->alt,
		                  .box_bucket = (uint8_t)memo_bucket(&boxes[out->box], q),
		                  .alt_bucket = (uint8_t)memo_bucket(&boxes[out->alt], q),
		                  .cls = (uint8_t)out->cls,
		                  .holds = (uint8_t)(out->holds != 0),
		                  .n_holders = (uint32_t)nh };
	if (nh)
		memcpy(e->holders, q->holders, nh * sizeof *q->holders);
	m->st.stored++;
	return r;
}

void pol_memo_stats(const struct pol_memo *m, struct pol_memo_stats *out)
{
	*out = m->st;
}

size_t pol_memo_mem_bytes(const struct pol_memo *m)
{
	return m ? sizeof *m + (m->mask + 1) * sizeof *m->e : 0;
}
