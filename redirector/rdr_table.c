/* rdr_table: the box table and its Redis syncer (ZRANGEBYSCORE echos:{boxes} WITHSCORES,
 * then one pipelined HMGET per member whose score - its heartbeat's ts_ms - changed, and
 * an EXISTS for the others). Builds each new table beside the current one and swaps
 * the pointer when every reply is in; a failed sync leaves the current table untouched.
 * Owns tables, rows, derived box keys and the in-flight sync state. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "ec_err.h"
#include "ec_fmt.h"
#include "ec_geo.h"
#include "ec_log.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "ec_token.h"
#include "ec_topo.h"
#include "pol_index.h"
#include "pol_score.h"
#include "rdr_table.h"

#define SYNC_MAGIC 0x5253594eu      /* "RSYN" */
#define BOXES_MAGIC 0x52425853u     /* "RBXS" */
#define MALFORMED_LOG_EVERY_MS 10000
#define GOOD_HBS_CAP 1000000u

struct sync_slot {
	struct boxes_sync *sync;
	size_t i;
};

/* One sync in flight. Owned by itself: freed when its last reply arrives. */
struct boxes_sync {
	unsigned magic;
	struct rdr_boxes *owner;        /* NULL once the owner is gone: replies are dropped */
	size_t n;                       /* members asked for */
	size_t pending;                 /* replies still expected (ZRANGE counts as one) */
	int is_failed;
	size_t carried;                 /* members whose row was carried over (EXISTS) */
	struct sync_slot *slots;        /* n */
	struct rdr_box *rows;           /* n; rows[i].magic != 0: parsed */
	struct pol_box *boxes;          /* n */
	size_t cap;                     /* rows and boxes allocated (>= n) */
};

struct rdr_boxes {
	unsigned magic;
	struct event_base *base;        /* borrowed */
	struct ec_redis *redis;         /* borrowed */
	char *name;
	int64_t sync_interval_ms;
	int64_t grace_ms;
	int64_t max_state_age_ms;
	uint32_t sign_kid;
	uint8_t master[64];
	size_t master_len;
	unsigned key_gen;
	int64_t charge_ms, charge_reflect_ms;
	struct ec_geo *const *geo;      /* borrowed */
	void (*on_table)(void *arg, const struct rdr_table *t);
	void *on_table_arg;

	struct event *timer;
	struct rdr_table *cur;          /* never NULL */
	struct boxes_sync *sync;        /* in flight, or NULL */
	/* the arrays of the table before cur, kept for the next sync: ~1 KiB a box, so
	 * allocating them anew each time would fault in megabytes a second */
	struct rdr_box *spare_rows;
	struct pol_box *spare_boxes;
	size_t spare_cap;
	int64_t last_ok_ms;             /* monotonic end of the last good sync; 0: never */
	int64_t started_ms;             /* monotonic creation time */
	int is_down_logged;
	uint64_t syncs_ok, syncs_failed, malformed, malformed_unlogged;
	int64_t malformed_next_log_ms;
	uint64_t epoch;                 /* rdr_boxes_epoch */
};

/* ---- parsing ---------------------------------------------------------------------- */

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

/* [A-Za-z0-9._-]{1,max} */
static int is_valid_name(const char *s, size_t len, size_t max)
{
	size_t i;

	if (len == 0 || len > max)
		return 0;
	for (i = 0; i < len; i++)
		if (!is_name_char(s[i]))
			return 0;
	return 1;
}

/* Copies a value into buf as a C string; refuses embedded NULs and overlong values. */
static int table_cstr(const char *v, size_t len, char *buf, size_t buflen)
{
	if (len >= buflen || memchr(v, '\0', len))
		return -1;
	memcpy(buf, v, len);
	buf[len] = '\0';
	return 0;
}

/* A decimal of digits only (what strtoull would take whole without a sign, space or
 * base prefix), at most max. Parsed here: strtoull's locale and base handling cost more
 * than the rest of a heartbeat's fields (10,000 boxes, several numbers each, every read). */
static int table_u64(const char *v, size_t len, uint64_t max, uint64_t *out)
{
	uint64_t x = 0;

	if (len == 0 || len > 31)
		return -1;
	for (size_t i = 0; i < len; i++) {
		unsigned d = (unsigned char)v[i] - (unsigned)'0';

		if (d > 9 || x > (UINT64_MAX - d) / 10)
			return -1;
		x = x * 10 + d;
	}
	if (x > max)
		return -1;
	*out = x;
	return 0;
}

static int table_double(const char *v, size_t len, double lo, double hi, double *out)
{
	char buf[48], *end;
	double x;

	if (table_cstr(v, len, buf, sizeof buf) != 0 || !buf[0] ||
	    !(buf[0] == '-' || buf[0] == '+' || buf[0] == '.' || (buf[0] >= '0' && buf[0] <= '9')))
		return -1;
	/* plain decimals (every coordinate an edge writes) without strtod's locale and
	 * big-number machinery: the same value, exactly */
	if (ec_parse_decimal(buf, len, &x) != 0) {
		errno = 0;
		x = strtod(buf, &end);
		if (errno || *end)
			return -1;
	}
	if (!isfinite(x) || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

/* A base URL viewers can be sent to: http(s)://, printable, no query or fragment. */
static int table_url(const char *v, size_t len, struct rdr_box *row)
{
	size_t i, scheme = len >= 7 && memcmp(v, "http://", 7) == 0    ? 7
	                 : len >= 8 && memcmp(v, "https://", 8) == 0 ? 8
	                                                              : 0;

	if (!scheme || table_cstr(v, len, row->url, sizeof row->url) != 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)row->url[i];

		if (c <= 0x20 || c >= 0x7f || c == '?' || c == '#' || c == '"' || c == '\\' ||
		    c == '<' || c == '>')
			return -1;
	}
	while (len > 0 && row->url[len - 1] == '/')
		row->url[--len] = '\0';
	if (scheme >= len) /* no host */
		return -1;
	row->url_len = len;
	return 0;
}

/* the first byte first: most names of a length differ there, and memcmp is a call */
#define FIELD_IS(lit) (flen == sizeof(lit) - 1 && f[0] == (lit)[0] && memcmp(f, lit, flen) == 0)

int rdr_box_parse(const char *member, size_t nkv, const char *const *kv, const size_t *kvlen,
                  struct rdr_box *row, struct pol_box *box, char *err, size_t errlen)
{
	int has_id = 0, has_url = 0, has_up = 0, has_status = 0, has_ts = 0;
	int has_lat = 0, has_lon = 0, has_inv_ver = 0;
	const char *bad = NULL;
	uint64_t u = 0;
	size_t i;

	memset(row, 0, sizeof *row);
	memset(box, 0, sizeof *box);
	if (nkv % 2 != 0) {
		snprintf(err, errlen, "odd number of hash elements");
		return EC_EINVAL;
	}
	for (i = 0; i < nkv && !bad; i += 2) {
		const char *f = kv[i], *v = kv[i + 1];
		size_t flen = kvlen[i], vlen = kvlen[i + 1];

		if (FIELD_IS("id")) {
			if (!is_valid_name(v, vlen, EC_TOKEN_BOX_MAX) || strlen(member) != vlen ||
			    memcmp(member, v, vlen) != 0)
				bad = "id: expected the member name [A-Za-z0-9._-]{1,63}";
			else {
				memcpy(row->id, v, vlen);
				has_id = 1;
			}
		} else if (FIELD_IS("url")) {
			if (table_url(v, vlen, row) != 0)
				bad = "url: expected an http(s)://host[:port] base URL";
			has_url = 1;
		} else if (FIELD_IS("pop") || FIELD_IS("region")) {
			char *dst = FIELD_IS("pop") ? row->pop : row->region;

			if (vlen > 0 && !is_valid_name(v, vlen, RDR_NAME_MAX))
				bad = "pop/region: expected a name [A-Za-z0-9._-]{1,63}";
			else
				memcpy(dst, v, vlen);
		} else if (FIELD_IS("lat")) {
			if (vlen > 0 && table_double(v, vlen, -90, 90, &box->lat) != 0)
				bad = "lat: expected degrees -90..90";
			has_lat = vlen > 0;
		} else if (FIELD_IS("lon")) {
			if (vlen > 0 && table_double(v, vlen, -180, 180, &box->lon) != 0)
				bad = "lon: expected degrees -180..180";
			has_lon = vlen > 0;
		} else if (FIELD_IS("asn")) {
			if (vlen > 0 && table_u64(v, vlen, UINT32_MAX, &u) != 0)
				bad = "asn: expected an AS number";
			else if (vlen > 0)
				box->asn = (uint32_t)u;
		} else if (FIELD_IS("uplink_bps")) {
			if (table_u64(v, vlen, UINT64_MAX / 4, &box->uplink_bps) != 0)
				bad = "uplink_bps: expected bits/s";
			has_up = 1;
		} else if (FIELD_IS("egress_bps")) {
			if (table_u64(v, vlen, UINT64_MAX / 4, &box->egress_bps) != 0)
				bad = "egress_bps: expected bits/s";
		} else if (FIELD_IS("conns")) {
			if (table_u64(v, vlen, UINT32_MAX, &u) != 0)
				bad = "conns: expected a count";
			box->conns = (uint32_t)u;
		} else if (FIELD_IS("ttfb_ms")) {
			if (table_u64(v, vlen, UINT32_MAX, &u) != 0)
				bad = "ttfb_ms: expected milliseconds";
			box->ttfb_ms = (uint32_t)u;
		} else if (FIELD_IS("status")) {
			if (vlen == 2 && memcmp(v, "up", 2) == 0)
				box->status = POL_BOX_UP;
			else if (vlen == 8 && memcmp(v, "draining", 8) == 0)
				box->status = POL_BOX_DRAINING;
			else if (vlen == 4 && memcmp(v, "down", 4) == 0)
				box->status = POL_BOX_DOWN;
			else
				bad = "status: expected up, draining or down";
			has_status = 1;
		} else if (FIELD_IS("inv_ver") || FIELD_IS("cache_objects")) {
			/* inv_ver wins; cache_objects stands in for edges that do not send it */
			if (table_u64(v, vlen, UINT64_MAX, &u) != 0)
				bad = "inv_ver/cache_objects: expected a number";
			else if (FIELD_IS("inv_ver") || !has_inv_ver)
				row->inv_ver = u;
			has_inv_ver |= FIELD_IS("inv_ver");
		} else if (FIELD_IS("ts_ms")) {
			if (table_u64(v, vlen, INT64_MAX / 2, &u) != 0 || u == 0)
				bad = "ts_ms: expected milliseconds since the epoch";
			row->ts_ms = (int64_t)u;
			has_ts = 1;
		}
	}
	if (!bad && !has_id)
		bad = "id: missing";
	if (!bad && !has_url)
		bad = "url: missing";
	if (!bad && !has_up)
		bad = "uplink_bps: missing";
	if (!bad && !has_status)
		bad = "status: missing";
	if (!bad && !has_ts)
		bad = "ts_ms: missing";
	if (!bad && has_lat != has_lon)
		bad = "lat/lon: expected both or neither";
	if (bad) {
		snprintf(err, errlen, "%s", bad);
		return EC_EINVAL;
	}
	box->has_loc = has_lat && has_lon;
	box->id_hash = pol_hash_bytes(row->id, strlen(row->id));
	if (row->pop[0])
		box->pop_hash = ec_topo_name_hash(row->pop, strlen(row->pop));
	if (row->region[0])
		box->region_hash = ec_topo_name_hash(row->region, strlen(row->region));
	row->magic = RDR_BOX_MAGIC;
	return 0;
}

int rdr_box_parse_hb(const char *member, const char *hb, size_t len, struct rdr_box *row,
                     struct pol_box *box, char *err, size_t errlen)
{
	const char *kv[2 * RDR_HB_PAIRS_MAX], *p = hb, *end = hb + len;
	size_t kvlen[2 * RDR_HB_PAIRS_MAX], nkv = 0;
	const char *bad = NULL;

	if (len == 0)
		bad = "hb: empty";
	while (p < end && !bad) {
		const char *sp = memchr(p, ' ', (size_t)(end - p)), *eq;
		const char *tok_end = sp ? sp : end;

		eq = memchr(p, '=', (size_t)(tok_end - p));
		if (!eq || eq == p)
			bad = "hb: expected name=value pairs separated by single spaces";
		else if (nkv == EC_ARRAY_LEN(kv))
			bad = "hb: too many pairs";
		else {
			kv[nkv] = p;
			kvlen[nkv++] = (size_t)(eq - p);
			kv[nkv] = eq + 1;
			kvlen[nkv++] = (size_t)(tok_end - eq - 1);
		}
		if (sp && sp + 1 == end)
			bad = "hb: trailing space";
		p = tok_end + 1;
	}
	if (bad) {
		memset(row, 0, sizeof *row);
		memset(box, 0, sizeof *box);
		snprintf(err, errlen, "%s", bad);
		return EC_EINVAL;
	}
	return rdr_box_parse(member, nkv, kv, kvlen, row, box, err, errlen);
}

/* ---- tables ----------------------------------------------------------------------- */

static uint64_t table_id_hash(const char *id, size_t len)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; i < len; i++)
		h = (h ^ (unsigned char)id[i]) * 1099511628211ull;
	return h;
}

long rdr_table_find(const struct rdr_table *t, const char *id)
{
	size_t len = strlen(id), mask, i;

	if (!t || t->n == 0 || len >= sizeof t->rows[0].id)
		return -1;
	mask = t->index_cap - 1;
	for (i = table_id_hash(id, len) & mask; t->index[i]; i = (i + 1) & mask) {
		const struct rdr_box *r = &t->rows[t->index[i] - 1];

		/* with the NUL: equal exactly when strcmp would say so, and within r->id */
		if (memcmp(r->id, id, len + 1) == 0)
			return (long)(t->index[i] - 1);
	}
	return -1;
}

/* Frees arrays of cap rows and boxes (n used), wiping the rows (magic and keys). */
static void rows_free(struct rdr_box *rows, struct pol_box *boxes, size_t n)
{
	if (rows)
		memset(rows, 0, n * sizeof *rows);
	free(rows);
	free(boxes);
}

/* Keeps arrays of cap rows and boxes (n used) as b's spares when b has none as large,
 * else frees them. b may be NULL (its owner is gone). */
static void rows_retire(struct rdr_boxes *b, struct rdr_box *rows, struct pol_box *boxes,
                        size_t n, size_t cap)
{
	if (!b || !rows || !boxes || cap <= b->spare_cap) {
		rows_free(rows, boxes, n);
		return;
	}
	rows_free(b->spare_rows, b->spare_boxes, b->spare_cap);
	b->spare_rows = rows;
	b->spare_boxes = boxes;
	b->spare_cap = cap;
}

/* Arrays for n rows and boxes: b's spares when large enough, else new ones. The boxes
 * are zeroed; of a row, only magic (0: not parsed) and id (""): a sync writes every row
 * it keeps whole (parsed, carried over or wiped), and wiping 1 KiB rows it is about to
 * overwrite was a tenth of what a sync cost. Returns 0 with *cap set, or -1 (nothing
 * allocated). */
static int rows_get(struct rdr_boxes *b, size_t n, struct rdr_box **rows,
                    struct pol_box **boxes, size_t *cap)
{
	if (n == 0)
		n = 1;
	if (b && b->spare_cap >= n) {
		*rows = b->spare_rows;
		*boxes = b->spare_boxes;
		*cap = b->spare_cap;
		b->spare_rows = NULL;
		b->spare_boxes = NULL;
		b->spare_cap = 0;
		for (size_t i = 0; i < n; i++) {
			(*rows)[i].magic = 0;
			(*rows)[i].id[0] = '\0';
		}
		memset(*boxes, 0, n * sizeof **boxes);
		return 0;
	}
	*rows = calloc(n, sizeof **rows);
	*boxes = calloc(n, sizeof **boxes);
	if (!*rows || !*boxes) {
		free(*rows);
		free(*boxes);
		*rows = NULL;
		*boxes = NULL;
		return -1;
	}
	*cap = n;
	return 0;
}

/* Frees t and everything it owns but its rows and boxes, which go to rows_retire.
 * NULL is a no-op. */
static void table_free(struct rdr_boxes *b, struct rdr_table *t)
{
	if (!t)
		return;
	EC_ASSERT(t->magic == RDR_TABLE_MAGIC);
	pol_index_free(t->cand);
	rows_retire(b, t->rows, t->boxes, t->n, t->cap);
	free(t->index);
	t->magic = 0;
	free(t);
}

/* Returns a new table taking rows and boxes (n used of cap; *rows and *boxes set to
 * NULL), with its index built, or NULL on allocation failure (the arrays are freed then
 * too). */
static struct rdr_table *table_new(struct rdr_box **rows, struct pol_box **boxes, size_t n,
                                   size_t cap_rows)
{
	struct rdr_table *t = calloc(1, sizeof *t);
	size_t cap = 16, i;

	while (cap < 2 * n)
		cap *= 2;
	if (t)
		t->index = calloc(cap, sizeof *t->index);
	if (t && t->index)
		t->cand = pol_index_new(*boxes, n);
	if (!t || !t->index || !t->cand) {
		if (t) {
			free(t->index);
			pol_index_free(t->cand);
		}
		free(t);
		rows_free(*rows, *boxes, n);
		*rows = NULL;
		*boxes = NULL;
		return NULL;
	}
	static uint64_t gens;

	t->magic = RDR_TABLE_MAGIC;
	t->gen = ++gens;
	t->rows = *rows;
	t->boxes = *boxes;
	t->n = n;
	t->cap = cap_rows;
	t->index_cap = cap;
	*rows = NULL;
	*boxes = NULL;
	for (i = 0; i < n; i++) {
		size_t j = table_id_hash(t->rows[i].id, strlen(t->rows[i].id)) & (cap - 1);

		while (t->index[j])
			j = (j + 1) & (cap - 1);
		t->index[j] = (uint32_t)(i + 1);
	}
	return t;
}

static void boxes_derive(const struct rdr_boxes *b, struct rdr_box *row)
{
	if (ec_token_derive_box_key(b->master, b->master_len, row->id, row->key) != 0) {
		/* cannot happen for a validated id and master; keep the box out of reach */
		memset(row->key, 0, sizeof row->key);
		row->kid = 0;
	} else {
		row->kid = b->sign_kid;
	}
	row->key_gen = b->key_gen;
}

/* ---- syncing ---------------------------------------------------------------------- */

static void sync_free(struct boxes_sync *s)
{
	EC_ASSERT(s->magic == SYNC_MAGIC);
	rows_retire(s->owner, s->rows, s->boxes, s->n, s->cap);
	free(s->slots);
	s->magic = 0;
	free(s);
}

static void boxes_log_malformed(struct rdr_boxes *b, const char *id, const char *why)
{
	int64_t now = ec_now_ms();

	b->malformed++;
	if (now < b->malformed_next_log_ms) {
		b->malformed_unlogged++;
		return;
	}
	ec_log_warn("%s: box %s: malformed heartbeat in echos:box:{%s}: %s; ignoring the box "
	            "(%llu similar lines suppressed)", b->name, id, id, why,
	            (unsigned long long)b->malformed_unlogged);
	b->malformed_unlogged = 0;
	b->malformed_next_log_ms = now + MALFORMED_LOG_EVERY_MS;
}

/* ---- charging --------------------------------------------------------------------- */

/* Sum of the charges that still count at now: made within charge_ms, and not before the
 * box's last new heartbeat (hb_ms, local) minus charge_reflect_ms. Slots that no longer
 * count are emptied. */
static uint64_t charge_sum(const struct rdr_boxes *b, struct rdr_box *r, int64_t hb_ms,
                           int64_t now)
{
	int64_t cut = now - b->charge_ms, hb_cut = hb_ms - b->charge_reflect_ms;
	uint64_t sum = 0;
	int left = 0;

	if (!r->has_charges)
		return 0;
	if (hb_cut > cut)
		cut = hb_cut;
	for (size_t k = 0; k < RDR_CHARGE_SLOTS; k++) {
		int64_t end;

		if (r->charge_slot[k] == 0)
			continue;
		end = ((int64_t)r->charge_slot[k]) * RDR_CHARGE_SLOT_MS; /* slot + 1 */
		if (b->charge_ms == 0 || end <= cut) {
			r->charge_slot[k] = 0;
			r->charge_bps[k] = 0;
			continue;
		}
		sum += r->charge_bps[k];
		left = 1;
	}
	r->has_charges = left;
	return sum;
}

void rdr_boxes_charge(struct rdr_boxes *b, size_t row, uint64_t bps, int64_t now_ms)
{
	struct rdr_table *t = b->cur;
	struct rdr_box *r;
	uint32_t slot;
	size_t k;

	EC_ASSERT(b->magic == BOXES_MAGIC);
	if (b->charge_ms == 0 || bps == 0 || row >= t->n || now_ms < 0)
		return;
	r = &t->rows[row];
	slot = (uint32_t)(now_ms / RDR_CHARGE_SLOT_MS) + 1;
	k = slot % RDR_CHARGE_SLOTS;
	if (r->charge_slot[k] != slot) {
		/* the ring wrapped: what was here is older than any charge can last */
		if (r->charge_slot[k] != 0 && t->boxes[row].charged_bps >= r->charge_bps[k] &&
		    r->charge_bps[k] != 0) {
			t->boxes[row].charged_bps -= r->charge_bps[k];
			b->epoch++;
		}
		r->charge_slot[k] = slot;
		r->charge_bps[k] = 0;
	}
	r->charge_bps[k] += bps;
	r->has_charges = 1;
	t->boxes[row].charged_bps += bps;
}

/* Re-sums every box's charges (expiry happens here, once per sync tick). */
static void charge_refresh(struct rdr_boxes *b, int64_t now)
{
	struct rdr_table *t = b->cur;
	int dropped = 0;

	for (size_t i = 0; i < t->n; i++) {
		uint64_t c = charge_sum(b, &t->rows[i], t->boxes[i].hb_ms, now);

		dropped |= c < t->boxes[i].charged_bps;
		t->boxes[i].charged_bps = c;
	}
	b->epoch += (uint64_t)dropped;
}

/* ---- locating boxes --------------------------------------------------------------- */

/* The numeric host of a base URL ("https://[2001:db8::1]:8443" -> 2001:db8::1) into ss.
 * Returns 0, or -1 for a name (no DNS on the event loop) or anything odd. */
static int url_host_addr(const char *url, struct sockaddr_storage *ss)
{
	const char *h = strstr(url, "://");
	char buf[64];
	size_t len;

	if (!h)
		return -1;
	h += 3;
	if (*h == '[') {
		const char *close = strchr(h, ']');

		if (!close || (size_t)(close - h - 1) >= sizeof buf)
			return -1;
		len = (size_t)(close - h - 1);
		memcpy(buf, h + 1, len);
	} else {
		len = strcspn(h, ":/");
		if (len >= sizeof buf)
			return -1;
		memcpy(buf, h, len);
	}
	buf[len] = '\0';
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, buf, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		ss->ss_family = AF_INET6;
		return 0;
	}
	return -1;
}

/* Fills what the heartbeat left out (asn, lat/lon) from the MMDB entry of the box's url
 * host, looked up once per url (orow: the same box in the old table, or NULL). */
static void boxes_locate(const struct rdr_boxes *b, struct rdr_box *r, struct pol_box *pb,
                         const struct rdr_box *orow)
{
	struct sockaddr_storage ss;
	struct ec_geo_loc gl;

	if (pb->asn != 0 && pb->has_loc)
		return;
	if (orow && orow->is_geo_done && strcmp(orow->url, r->url) == 0) {
		r->is_geo_done = 1;
		r->geo_asn = orow->geo_asn;
		r->geo_has_loc = orow->geo_has_loc;
		r->geo_lat = orow->geo_lat;
		r->geo_lon = orow->geo_lon;
	} else if (b->geo && *b->geo && url_host_addr(r->url, &ss) == 0) {
		memset(&gl, 0, sizeof gl);
		r->is_geo_done = 1;
		if (ec_geo_lookup(*b->geo, (struct sockaddr *)&ss, &gl) == 0) {
			r->geo_asn = gl.asn;
			r->geo_has_loc = gl.has_loc;
			r->geo_lat = gl.lat;
			r->geo_lon = gl.lon;
		}
	}
	if (pb->asn == 0)
		pb->asn = r->geo_asn;
	if (!pb->has_loc && r->geo_has_loc) {
		pb->has_loc = 1;
		pb->lat = r->geo_lat;
		pb->lon = r->geo_lon;
	}
}

/* Carries heartbeat tracking and keys over from the current table into the new rows. */
static void sync_track(struct rdr_boxes *b, struct rdr_box *rows, struct pol_box *boxes,
                       size_t n, int64_t now)
{
	const struct rdr_table *old = b->cur;
	/* our own gap: heartbeats missed while we could not read Redis are not the box's */
	int had_outage = b->last_ok_ms == 0 ||
	                 now - b->last_ok_ms > b->max_state_age_ms;
	size_t i;

	for (i = 0; i < n; i++) {
		struct rdr_box *r = &rows[i];
		struct pol_box *pb = &boxes[i];
		long j = rdr_table_find(old, r->id);
		const struct rdr_box *orow = j >= 0 ? &old->rows[j] : NULL;
		const struct pol_box *ob = j >= 0 ? &old->boxes[j] : NULL;

		if (!orow) {
			pb->hb_ms = now;
			pb->good_hbs = pb->status == POL_BOX_UP ? 1 : 0;
		} else if (r->ts_ms == orow->ts_ms) {
			pb->hb_ms = ob->hb_ms;  /* nothing new from this box */
			pb->good_hbs = ob->good_hbs;
		} else {
			int64_t gap = r->ts_ms - orow->ts_ms;

			pb->hb_ms = now;
			if (pb->status != POL_BOX_UP)
				pb->good_hbs = 0;
			else if ((gap < 0 || gap > b->max_state_age_ms) && !had_outage)
				pb->good_hbs = 1; /* it went quiet (or restarted): start again */
			else
				pb->good_hbs = ob->good_hbs < GOOD_HBS_CAP ? ob->good_hbs + 1
				                                           : GOOD_HBS_CAP;
		}
		boxes_locate(b, r, pb, orow);
		if (orow) {
			memcpy(r->charge_slot, orow->charge_slot, sizeof r->charge_slot);
			memcpy(r->charge_bps, orow->charge_bps, sizeof r->charge_bps);
			r->has_charges = orow->has_charges;
		}
		pb->charged_bps = charge_sum(b, r, pb->hb_ms, now);
		if (orow && orow->key_gen == b->key_gen) {
			memcpy(r->key, orow->key, sizeof r->key);
			r->kid = orow->kid;
			r->key_gen = orow->key_gen;
		} else {
			boxes_derive(b, r);
		}
	}
}

/* All replies are in: builds the new table and swaps it in (or drops it on failure). */
static void sync_finish(struct boxes_sync *s)
{
	struct rdr_boxes *b = s->owner;
	struct rdr_table *t;
	int64_t now = ec_now_ms();
	size_t i, n = 0;

	if (!b)
		goto out;
	b->sync = NULL;
	if (s->is_failed) {
		b->syncs_failed++;
		goto out;
	}
	EC_ASSERT(s->rows != NULL); /* on_members_reply allocated them, or failed the sync */
	/* the parsed rows, compacted in place: the arrays become the new table's */
	for (i = 0; i < s->n; i++) {
		if (s->rows[i].magic != RDR_BOX_MAGIC)
			continue;
		if (n != i) {
			s->rows[n] = s->rows[i];
			s->boxes[n] = s->boxes[i];
		}
		n++;
	}
	if (b->last_ok_ms != 0 && s->carried == s->n && n == s->n && n == b->cur->n) {
		/* every member carried over and still there (an invalid member or a wiped row
		 * would leave n short), none new: the current table holds these rows (in
		 * another order); it stays, with its index, instead of a rebuild. Between
		 * heartbeats, three reads in four are such reads by default. */
		t = b->cur;
		goto read_ok;
	}
	s->n = n;
	sync_track(b, s->rows, s->boxes, n, now);
	t = table_new(&s->rows, &s->boxes, n, s->cap);
	if (!t) {
		b->syncs_failed++;
		goto out;
	}
	/* single-threaded: nobody holds the old table across a return to the loop */
	table_free(b, b->cur);
	b->cur = t;
	b->epoch++;
read_ok:
	b->syncs_ok++;
	if (b->is_down_logged)
		ec_log_warn("%s: box table read again after %.1fs (%zu boxes); choosing boxes "
		            "again", b->name,
		            (double)(now - (b->last_ok_ms ? b->last_ok_ms : b->started_ms)) / 1000,
		            n);
	else if (b->last_ok_ms == 0)
		ec_log_info("%s: box table loaded (%zu boxes)", b->name, n);
	b->is_down_logged = 0;
	b->last_ok_ms = now;
	if (b->on_table)
		b->on_table(b->on_table_arg, t);
out:
	sync_free(s);
}

static void sync_reply_done(struct boxes_sync *s)
{
	EC_ASSERT(s->pending > 0);
	if (--s->pending == 0)
		sync_finish(s);
}

/* The heartbeat fields the table uses, read with one HMGET from hashes without hb (a box
 * writes a few more: asking only for these halves the reply objects). */
#define BOX_FIELD(name) { name, sizeof name - 1 }
struct box_field {
	const char *name;
	size_t len;
};
static const struct box_field hb_field[] = { BOX_FIELD("hb") };
static const struct box_field box_fields[] = {
	BOX_FIELD("id"), BOX_FIELD("url"), BOX_FIELD("pop"), BOX_FIELD("region"),
	BOX_FIELD("lat"), BOX_FIELD("lon"), BOX_FIELD("asn"), BOX_FIELD("uplink_bps"),
	BOX_FIELD("egress_bps"), BOX_FIELD("conns"), BOX_FIELD("ttfb_ms"), BOX_FIELD("status"),
	BOX_FIELD("ts_ms"), BOX_FIELD("cache_objects"), BOX_FIELD("inv_ver"),
};

static void on_box_reply(struct ec_redis *r, struct redisReply *reply, void *arg);

static void on_hb_reply(struct ec_redis *r, struct redisReply *reply, void *arg);

static void on_exists_reply(struct ec_redis *r, struct redisReply *reply, void *arg);

#define BOX_KEY_MAX (sizeof "echos:box:{}" - 1 + EC_TOKEN_BOX_MAX)

/* Writes echos:box:{<id>} (docs/redis.md) into key; returns its length, 0 when the id is
 * too long. */
static size_t box_key(char key[BOX_KEY_MAX], const char *id)
{
	size_t idlen = strlen(id), n = sizeof "echos:box:{" - 1;

	if (idlen > EC_TOKEN_BOX_MAX)
		return 0;
	memcpy(key, "echos:box:{", n);
	memcpy(key + n, id, idlen);
	n += idlen;
	key[n++] = '}';
	return n;
}

/* The fixed parts of a per-box command in RESP, written once: before the key, the array
 * header and the command name; after it, the fields. */
struct box_resp {
	char head[32];
	char fields[(EC_REDIS_RESP_OVERHEAD + 16) * EC_ARRAY_LEN(box_fields)];
	size_t head_len, fields_len;
};

static void box_resp_init(struct box_resp *h, const char *cmd,
                          const struct box_field *fields, size_t nfields)
{
	char *d = ec_redis_put_array(h->head, 2 + nfields);

	h->head_len = (size_t)(ec_redis_put_bulk(d, cmd, strlen(cmd)) - h->head);
	d = h->fields;
	for (size_t i = 0; i < nfields; i++)
		d = ec_redis_put_bulk(d, fields[i].name, fields[i].len);
	h->fields_len = (size_t)(d - h->fields);
	EC_ASSERT(h->head_len <= sizeof h->head && h->fields_len <= sizeof h->fields);
}

/* HGET <key> hb: the whole heartbeat as one string */
static const struct box_resp *hget_resp(void)
{
	static struct box_resp h;

	if (!h.head_len)
		box_resp_init(&h, "HGET", hb_field, 1);
	return &h;
}

/* EXISTS <key>: is a box whose heartbeat did not change still alive */
static const struct box_resp *exists_resp(void)
{
	static struct box_resp h;

	if (!h.head_len)
		box_resp_init(&h, "EXISTS", NULL, 0);
	return &h;
}

/* HMGET <key> <the table's fields>: heartbeats without the hb field */
static const struct box_resp *hmget_resp(void)
{
	static struct box_resp h;

	if (!h.head_len)
		box_resp_init(&h, "HMGET", box_fields, EC_ARRAY_LEN(box_fields));
	return &h;
}

/* Sends the per-box command h for slot's box with reply callback cb. */
static int box_send(struct ec_redis *r, struct sync_slot *slot, const char *id,
                    const struct box_resp *h, ec_redis_reply_cb cb)
{
	char key[BOX_KEY_MAX], cmd[sizeof h->head + sizeof h->fields + BOX_KEY_MAX +
	                           EC_REDIS_RESP_OVERHEAD];
	size_t klen = box_key(key, id);
	char *d = cmd;

	if (klen == 0)
		return EC_EINVAL;
	memcpy(d, h->head, h->head_len);
	d = ec_redis_put_bulk(d + h->head_len, key, klen);
	memcpy(d, h->fields, h->fields_len);
	d += h->fields_len;
	return ec_redis_command_resp(r, cb, slot, cmd, (size_t)(d - cmd));
}

/* The per-box command of a sync: for a box whose heartbeat changed, HGET of its hb field,
 * written in RESP from the key and the fixed parts (ten thousand a second: building each
 * from an argument vector was half of what sending it cost; one string instead of fifteen
 * fields is a third of what reading the reply cost); else EXISTS (the row is carried
 * over). */
static int box_command(struct ec_redis *r, struct sync_slot *slot, const char *id,
                       int is_carried)
{
	if (is_carried)
		return box_send(r, slot, id, exists_resp(), on_exists_reply);
	return box_send(r, slot, id, hget_resp(), on_hb_reply);
}

/* Puts slot's box out of this sync: its row is wiped, and when why is given and the sync
 * still has an owner, a log line names the box (id) and why. */
static void slot_drop(struct boxes_sync *s, const struct sync_slot *slot, const char *id,
                      const char *why)
{
	if (why && s->owner)
		boxes_log_malformed(s->owner, id, why);
	memset(&s->rows[slot->i], 0, sizeof s->rows[slot->i]);
}

/* Why a per-box reply that is not what its command returns for a hash (e.g. WRONGTYPE:
 * the key holds no hash) puts the box out; the one box, not the sync. */
static const char *reply_not_hash(const struct redisReply *reply)
{
	return reply->type == REDIS_REPLY_ERROR ? reply->str : "not a hash";
}

/* The hb field of a changed box. Nil: either the hash expired (the death notice) or its
 * writer does not write hb (an older edge, a hand-made registry): HMGET tells which. */
static void on_hb_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct sync_slot *slot = arg;
	struct boxes_sync *s = slot->sync;
	char why[160];

	EC_ASSERT(s->magic == SYNC_MAGIC);
	if (!reply) {
		s->is_failed = 1; /* the link went down mid-sync */
	} else if (reply->type == REDIS_REPLY_NIL && s->owner) {
		if (box_send(r, slot, s->rows[slot->i].id, hmget_resp(), on_box_reply) == 0) {
			s->pending++;
		} else {
			s->is_failed = 1;
		}
	} else if (reply->type != REDIS_REPLY_STRING) {
		slot_drop(s, slot, s->rows[slot->i].id, reply_not_hash(reply));
	} else if (s->owner) {
		char member[EC_TOKEN_BOX_MAX + 1];

		memcpy(member, s->rows[slot->i].id, sizeof member);
		if (rdr_box_parse_hb(member, reply->str, reply->len, &s->rows[slot->i],
		                     &s->boxes[slot->i], why, sizeof why) != 0)
			slot_drop(s, slot, member, why);
	}
	sync_reply_done(s);
}

static void on_box_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct sync_slot *slot = arg;
	struct boxes_sync *s = slot->sync;
	const char *kv[2 * EC_ARRAY_LEN(box_fields)];
	size_t kvlen[2 * EC_ARRAY_LEN(box_fields)], i, nkv = 0;
	char why[160];

	EC_ASSERT(s->magic == SYNC_MAGIC);
	if (!reply) {
		s->is_failed = 1; /* the link went down mid-sync */
	} else if (reply->type != REDIS_REPLY_ARRAY ||
	           reply->elements != EC_ARRAY_LEN(box_fields)) {
		slot_drop(s, slot, s->rows[slot->i].id, reply_not_hash(reply));
	} else if (s->owner) {
		int bad = 0;

		for (i = 0; i < reply->elements && !bad; i++) {
			const struct redisReply *e = reply->element[i];

			if (e->type == REDIS_REPLY_NIL)
				continue; /* not in the hash */
			bad = e->type != REDIS_REPLY_STRING;
			kv[nkv] = box_fields[i].name;
			kvlen[nkv++] = box_fields[i].len;
			kv[nkv] = e->str;
			kvlen[nkv++] = e->len;
		}
		if (bad) {
			slot_drop(s, slot, s->rows[slot->i].id, "non-string hash element");
		} else if (nkv == 0) {
			slot_drop(s, slot, NULL, NULL); /* no such hash: it expired, the death notice */
		} else {
			char member[EC_TOKEN_BOX_MAX + 1];

			memcpy(member, s->rows[slot->i].id, sizeof member);
			if (rdr_box_parse(member, nkv, kv, kvlen, &s->rows[slot->i],
			                  &s->boxes[slot->i], why, sizeof why) != 0)
				slot_drop(s, slot, member, why);
		}
	}
	sync_reply_done(s);
}

/* A box still alive and unchanged: its hash exists (else it expired: the death notice). */
static void on_exists_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct sync_slot *slot = arg;
	struct boxes_sync *s = slot->sync;

	(void)r;
	EC_ASSERT(s->magic == SYNC_MAGIC);
	if (!reply || reply->type != REDIS_REPLY_INTEGER)
		s->is_failed = 1;
	else if (reply->integer == 0)
		slot_drop(s, slot, NULL, NULL); /* it drops out */
	sync_reply_done(s);
}

/* Where a member goes in the new table: rows are grouped by the PoP the current table
 * knows for the box, so a PoP's boxes - what one decision walks - lie side by side in
 * memory; boxes not yet known (key UINT64_MAX) go last; members keep their order within
 * a group (a stable sort: pol_sort_key_idx, linear; a qsort of 10,000 members a second
 * was a tenth of what a sync cost), and new boxes find their place next sync. */

/* Member i's score in echos:{boxes} is the ts_ms of its last heartbeat (the box writes
 * both from one clock reading). When the current table holds the box with that ts_ms, the
 * hash has not changed since it was read: the row is carried over and only the hash's
 * existence is asked. Boxes beat every second and the table is read every 250 ms by
 * default, so most reads need no HMGET. Returns 1 when carried over. */
static int sync_carry(struct boxes_sync *s, size_t i, long j, const struct redisReply *score)
{
	const struct rdr_table *t = s->owner->cur;
	uint64_t ts;

	/* a score that is not a whole number of ms: read the hash */
	if (!t || j < 0 || score->type != REDIS_REPLY_STRING ||
	    table_u64(score->str, score->len, INT64_MAX, &ts) != 0)
		return 0;
	if (t->rows[j].ts_ms != (int64_t)ts)
		return 0;
	s->rows[i] = t->rows[j];
	s->boxes[i] = t->boxes[j];
	return 1;
}

static void on_members_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct boxes_sync *s = arg;
	struct pol_key_idx *order; /* n: PoP and member index, then n for the sort */
	long *row_of;    /* per member: its row in the current table, -1 none, -2 not an id */
	size_t i, k, n;

	EC_ASSERT(s->magic == SYNC_MAGIC);
	if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0 ||
	    !s->owner) {
		s->is_failed = 1;
		sync_reply_done(s);
		return;
	}
	n = reply->elements / 2; /* member, score, member, score... */
	s->slots = calloc(n ? n : 1, sizeof *s->slots);
	order = malloc((n ? n : 1) * 2 * sizeof *order);
	row_of = malloc((n ? n : 1) * sizeof *row_of);
	if (!s->slots || !order || !row_of || n > RDR_BOXES_MAX ||
	    rows_get(s->owner, n, &s->rows, &s->boxes, &s->cap) != 0) {
		free(order);
		free(row_of);
		s->is_failed = 1;
		sync_reply_done(s);
		return;
	}
	s->n = n;
	for (i = 0; i < n; i++) {
		const struct redisReply *m = reply->element[2 * i];
		uint64_t pop = UINT64_MAX;
		char id[EC_TOKEN_BOX_MAX + 1];

		row_of[i] = -2;
		if (m->type == REDIS_REPLY_STRING && is_valid_name(m->str, m->len, EC_TOKEN_BOX_MAX)) {
			memcpy(id, m->str, m->len);
			id[m->len] = '\0';
			row_of[i] = rdr_table_find(s->owner->cur, id);
			if (row_of[i] >= 0)
				pop = s->owner->cur->boxes[row_of[i]].pop_hash;
		}
		order[i] = (struct pol_key_idx){ pop, (uint32_t)i };
	}
	pol_sort_key_idx(order, order + n, n);
	for (k = 0; k < n && !s->is_failed; k++) {
		const struct redisReply *m;
		int rc, is_carried;

		i = order[k].idx;
		m = reply->element[2 * i];
		s->slots[k].sync = s;
		s->slots[k].i = k;
		if (row_of[i] == -2) {
			boxes_log_malformed(s->owner, "(invalid id)",
			                    "member of echos:{boxes} is not a box id");
			continue;
		}
		/* the row holds the member name until the reply is parsed over it */
		memcpy(s->rows[k].id, m->str, m->len);
		s->rows[k].id[m->len] = '\0';
		is_carried = sync_carry(s, k, row_of[i], reply->element[2 * i + 1]);
		s->carried += (size_t)is_carried;
		rc = box_command(r, &s->slots[k], s->rows[k].id, is_carried);
		if (rc != 0) {
			s->is_failed = 1;
			break;
		}
		s->pending++;
	}
	free(order);
	free(row_of);
	sync_reply_done(s); /* the ZRANGEBYSCORE reply itself */
}

static void boxes_check_down(struct rdr_boxes *b, int64_t now)
{
	int64_t since = b->last_ok_ms ? b->last_ok_ms : b->started_ms;

	if (b->is_down_logged)
		return;
	if (b->last_ok_ms == 0 && now - b->started_ms >= 2 * b->sync_interval_ms &&
	    !ec_redis_is_up(b->redis)) {
		ec_log_warn("%s: unreachable since start; sending viewers to the origin until it "
		            "answers", b->name);
		b->is_down_logged = 1;
	} else if (b->last_ok_ms != 0 && now - since > b->grace_ms) {
		ec_log_warn("%s: down for %.0fs; sending viewers to the origin until it returns",
		            b->name, (double)(now - since) / 1000);
		b->is_down_logged = 1;
	}
}

static void boxes_sync_start(struct rdr_boxes *b)
{
	struct boxes_sync *s;
	long long min_score = (long long)(ec_wall_ms() - 60000);

	if (b->sync || !ec_redis_is_up(b->redis))
		return;
	s = calloc(1, sizeof *s);
	if (!s)
		return;
	s->magic = SYNC_MAGIC;
	s->owner = b;
	s->pending = 1;
	if (ec_redis_command(b->redis, on_members_reply, s,
	                     "ZRANGEBYSCORE echos:{boxes} %lld +inf WITHSCORES LIMIT 0 %d",
	                     min_score,
	                     RDR_BOXES_MAX) != 0) {
		sync_free(s);
		b->syncs_failed++;
		return;
	}
	b->sync = s;
}

static void on_sync_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rdr_boxes *b = arg;

	EC_ASSERT(b->magic == BOXES_MAGIC);
	charge_refresh(b, ec_now_ms());
	boxes_sync_start(b);
	boxes_check_down(b, ec_now_ms());
}

static int boxes_set_timer(struct rdr_boxes *b)
{
	struct timeval tv = {
		.tv_sec = b->sync_interval_ms / 1000,
		.tv_usec = (b->sync_interval_ms % 1000) * 1000,
	};

	return event_add(b->timer, &tv) == 0 ? 0 : EC_ENOMEM;
}

int rdr_boxes_configure(struct rdr_boxes *b, const struct rdr_boxes_opts *o)
{
	int key_changed;
	char *name = strdup(o->name ? o->name : "redis");
	size_t i;

	EC_ASSERT(b->magic == BOXES_MAGIC);
	if (!name || o->master_len > sizeof b->master)
		return free(name), EC_ENOMEM;
	free(b->name);
	b->name = name;
	key_changed = o->sign_kid != b->sign_kid || o->master_len != b->master_len ||
	              memcmp(o->master, b->master, o->master_len) != 0;
	b->sync_interval_ms = o->sync_interval_ms > 0 ? o->sync_interval_ms : 250;
	b->grace_ms = o->grace_ms;
	b->max_state_age_ms = o->max_state_age_ms;
	b->charge_ms = o->charge_ms;
	b->charge_reflect_ms = o->charge_reflect_ms;
	b->geo = o->geo;
	b->on_table = o->on_table;
	b->on_table_arg = o->on_table_arg;
	if (key_changed) {
		b->sign_kid = o->sign_kid;
		memcpy(b->master, o->master, o->master_len);
		b->master_len = o->master_len;
		b->key_gen++;
		for (i = 0; i < b->cur->n; i++)
			boxes_derive(b, &b->cur->rows[i]);
	}
	return b->timer ? boxes_set_timer(b) : 0;
}

struct rdr_boxes *rdr_boxes_new(struct event_base *base, struct ec_redis *redis,
                                const struct rdr_boxes_opts *o)
{
	struct rdr_boxes *b = calloc(1, sizeof *b);
	struct rdr_box *rows = NULL;
	struct pol_box *boxes = NULL;
	size_t cap = 0;

	if (!b)
		return NULL;
	b->magic = BOXES_MAGIC;
	b->base = base;
	b->redis = redis;
	b->started_ms = ec_now_ms();
	b->cur = rows_get(NULL, 0, &rows, &boxes, &cap) == 0 ? table_new(&rows, &boxes, 0, cap)
	                                                    : NULL;
	b->timer = event_new(base, -1, EV_PERSIST, on_sync_timer, b);
	if (!b->cur || !b->timer || rdr_boxes_configure(b, o) != 0) {
		rdr_boxes_free(b);
		return NULL;
	}
	boxes_sync_start(b);
	return b;
}

void rdr_boxes_free(struct rdr_boxes *b)
{
	if (!b)
		return;
	EC_ASSERT(b->magic == BOXES_MAGIC);
	if (b->timer)
		event_free(b->timer);
	if (b->sync)
		b->sync->owner = NULL; /* its replies will free it */
	if (b->cur)
		table_free(NULL, b->cur);
	rows_free(b->spare_rows, b->spare_boxes, b->spare_cap);
	memset(b->master, 0, sizeof b->master);
	free(b->name);
	b->magic = 0;
	free(b);
}

const struct rdr_table *rdr_boxes_table(const struct rdr_boxes *b)
{
	EC_ASSERT(b->magic == BOXES_MAGIC);
	return b->cur;
}

int64_t rdr_boxes_judge_time(const struct rdr_boxes *b, int64_t now_ms, enum pol_miss *miss)
{
	int64_t age;

	*miss = POL_MISS_NONE;
	if (b->last_ok_ms == 0) {
		*miss = POL_MISS_REDIS_DOWN; /* never read: we know nothing about boxes */
		return now_ms;
	}
	age = now_ms - b->last_ok_ms;
	if (age <= b->sync_interval_ms + RDR_SYNC_SLACK_MS)
		return now_ms;
	if (age > b->grace_ms) {
		*miss = POL_MISS_REDIS_DOWN;
		return now_ms;
	}
	/* freeze: judge every box as of the last time we could see it */
	return b->last_ok_ms;
}

double rdr_boxes_age_s(const struct rdr_boxes *b, int64_t now_ms)
{
	return b->last_ok_ms ? (double)(now_ms - b->last_ok_ms) / 1000 : -1;
}

uint64_t rdr_boxes_syncs(const struct rdr_boxes *b, int failed)
{
	return failed ? b->syncs_failed : b->syncs_ok;
}

uint64_t rdr_boxes_epoch(const struct rdr_boxes *b)
{
	return b->epoch;
}

uint64_t rdr_boxes_malformed(const struct rdr_boxes *b)
{
	return b->malformed;
}
