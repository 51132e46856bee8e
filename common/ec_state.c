/* ec_state: synchronous, pipelined reads of the shared state for operators, and the JSON
 * documents echosctl --json and echos-policy's API share. Each read sends its commands in
 * one pipeline and fails as a whole: a partial answer is never rendered as a number.
 * Owns nothing between calls; the caller owns the hiredis context. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "ec_acct.h"
#include "ec_err.h"
#include "ec_redis.h"
#include "ec_state.h"

#define STATE_TOP_MAX_REGIONS 256

/* --- JSON helpers -------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	unsigned c = s[0];

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef)
		n = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	if (n == 3 && ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f)))
		return 0; /* overlong, surrogate */
	if (n == 4 && ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f)))
		return 0;
	return n;
}

void ec_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	if (!s) {
		fputs("null", f);
		return;
	}
	putc('"', f);
	while (*p) {
		size_t n;

		if (*p == '"' || *p == '\\') {
			putc('\\', f);
			putc(*p++, f);
		} else if (*p < 0x20 || *p == 0x7f || *p == '<' || *p == '>' || *p == '&') {
			/* control bytes, and markup characters in case a page inlines it */
			fprintf(f, "\\u%04x", *p++);
		} else if ((n = utf8_len(p)) == 0) {
			fputs("\\ufffd", f); /* paths come from viewers: never emit invalid UTF-8 */
			p++;
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	putc('"', f);
}

void ec_json_num(FILE *f, double v)
{
	char buf[40];

	if (!isfinite(v)) {
		fputs("null", f);
		return;
	}
	if (v == floor(v) && fabs(v) < 9007199254740992.0) {
		fprintf(f, "%.0f", v);
		return;
	}
	snprintf(buf, sizeof buf, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof buf, "%.17g", v);
	fputs(buf, f);
}

static void json_u64(FILE *f, const char *key, uint64_t v, int comma)
{
	fprintf(f, "%s\"%s\":%llu", comma ? "," : "", key, (unsigned long long)v);
}

static void json_key_num(FILE *f, const char *key, double v)
{
	fprintf(f, ",\"%s\":", key);
	ec_json_num(f, v);
}

static void json_key_str(FILE *f, const char *key, const char *v, int comma)
{
	fprintf(f, "%s\"%s\":", comma ? "," : "", key);
	ec_json_str(f, v && *v ? v : NULL);
}

/* --- Redis plumbing ------------------------------------------------------------------ */

static int set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return EC_EIO;
}

struct redisContext *ec_state_connect(const char *addr, int64_t timeout_ms, char *err,
                                      size_t errlen)
{
	char host[256];
	int port;
	struct timeval tv = { (time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000 };
	redisContext *rc;

	if (ec_addr_split(addr, host, sizeof host, &port) != 0) {
		snprintf(err, errlen, "redis address: expected HOST:PORT, got \"%s\"", addr);
		return NULL;
	}
	rc = redisConnectWithTimeout(host, port, tv);
	if (!rc || rc->err) {
		snprintf(err, errlen, "redis %s: %s", addr, rc ? rc->errstr : "out of memory");
		if (rc)
			redisFree(rc);
		return NULL;
	}
	if (redisSetTimeout(rc, tv) != REDIS_OK) {
		snprintf(err, errlen, "redis %s: cannot set the timeout", addr);
		redisFree(rc);
		return NULL;
	}
	return rc;
}

/* Takes the next pipelined reply. Returns 0 with *out owned by the caller
 * (freeReplyObject), or EC_EIO with the reason (error replies are freed). */
static int next_reply(redisContext *rc, redisReply **out, char *err, size_t errlen)
{
	void *r = NULL;

	*out = NULL;
	if (redisGetReply(rc, &r) != REDIS_OK || !r)
		return set_err(err, errlen, "%s", rc->err ? rc->errstr : "no reply");
	if (((redisReply *)r)->type == REDIS_REPLY_ERROR) {
		set_err(err, errlen, "%s", ((redisReply *)r)->str);
		freeReplyObject(r);
		return EC_EIO;
	}
	*out = r;
	return 0;
}

/* Drains `left` pending replies after a failure so that nothing is read out of turn
 * (the caller frees the context anyway on EC_EIO; this keeps a reused one sane). */
static void drain_replies(redisContext *rc, size_t left)
{
	void *r;

	while (left-- > 0 && !rc->err) {
		r = NULL;
		if (redisGetReply(rc, &r) != REDIS_OK)
			return;
		freeReplyObject(r);
	}
}

static void hash_feed(struct ec_acct *a, const redisReply *h)
{
	if (h->type != REDIS_REPLY_ARRAY)
		return;
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING)
			ec_acct_add(a, h->element[i]->str, h->element[i + 1]->str);
}

int ec_state_read_accts(struct redisContext *rc, struct ec_acct *const *accts,
                        const int *minutes, size_t n, int64_t now_ms, char *err,
                        size_t errlen)
{
	int64_t now_min = now_ms / 60000, m;
	int max_min = 0, want_total = 0;
	size_t sent = 0, got = 0;
	redisReply *r;

	for (size_t i = 0; i < n; i++) {
		if (minutes[i] == 0)
			want_total = 1;
		else if (minutes[i] > max_min)
			max_min = minutes[i];
	}
	if (want_total) {
		redisAppendCommand(rc, "HGETALL echos:acct:total");
		sent++;
	}
	for (m = now_min - max_min; max_min > 0 && m <= now_min; m++, sent++)
		redisAppendCommand(rc, "HGETALL echos:acct:m:%lld", (long long)m);
	if (want_total) {
		if (next_reply(rc, &r, err, errlen) != 0)
			goto fail;
		got++;
		for (size_t i = 0; i < n; i++)
			if (minutes[i] == 0)
				hash_feed(accts[i], r);
		freeReplyObject(r);
	}
	for (m = now_min - max_min; max_min > 0 && m <= now_min; m++) {
		if (next_reply(rc, &r, err, errlen) != 0)
			goto fail;
		got++;
		for (size_t i = 0; i < n; i++)
			if (minutes[i] > 0 && m >= now_min - minutes[i])
				hash_feed(accts[i], r);
		freeReplyObject(r);
	}
	return 0;
fail:
	drain_replies(rc, sent - got - 1);
	return EC_EIO;
}

int ec_state_read_acct(struct redisContext *rc, int minutes, int64_t now_ms,
                       struct ec_acct *a, char *err, size_t errlen)
{
	struct ec_acct *one[1] = { a };

	return ec_state_read_accts(rc, one, &minutes, 1, now_ms, err, errlen);
}

int ec_state_read_series(struct redisContext *rc, const char *service, const char *region,
                         int minutes, int64_t now_ms, struct ec_state_point *pts,
                         char *err, size_t errlen)
{
	int64_t first = now_ms / 60000 - minutes;
	struct ec_acct a;
	redisReply *r;
	int i, rc2;

	if (ec_acct_init(&a, service, region) != 0) {
		snprintf(err, errlen, "expected one service or one region of [A-Za-z0-9_-]");
		return EC_EINVAL;
	}
	ec_acct_fini(&a);
	for (i = 0; i <= minutes; i++)
		redisAppendCommand(rc, "HGETALL echos:acct:m:%lld", (long long)(first + i));
	for (i = 0; i <= minutes; i++) {
		if (next_reply(rc, &r, err, errlen) != 0) {
			drain_replies(rc, (size_t)(minutes - i));
			return EC_EIO;
		}
		rc2 = ec_acct_init(&a, service, region);
		EC_ASSERT(rc2 == 0); /* checked above */
		hash_feed(&a, r);
		freeReplyObject(r);
		pts[i].minute = first + i;
		pts[i].s = a.s;
		ec_acct_fini(&a);
	}
	return 0;
}

/* --- box registry -------------------------------------------------------------------- */

static const char *hash_str(const redisReply *h, const char *field)
{
	for (size_t i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING &&
		    strcmp(h->element[i]->str, field) == 0)
			return h->element[i + 1]->str;
	return NULL;
}

static double hash_num(const redisReply *h, const char *field)
{
	const char *v = hash_str(h, field);
	double d;

	if (!v)
		return 0;
	d = strtod(v, NULL);
	return isfinite(d) ? d : 0;
}

static void copy_str(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src ? src : "");
}

static int box_cmp(const void *x, const void *y)
{
	const struct ec_state_box *a = x, *b = y;

	return strcmp(a->id, b->id);
}

int ec_state_read_boxes(struct redisContext *rc, struct ec_state_box **boxes, size_t *n,
                        char *err, size_t errlen)
{
	redisReply *ids = NULL, *h;
	struct ec_state_box *out = NULL;
	size_t count, i;

	*boxes = NULL;
	*n = 0;
	redisAppendCommand(rc, "ZRANGE echos:{boxes} 0 -1 WITHSCORES");
	if (next_reply(rc, &ids, err, errlen) != 0)
		return EC_EIO;
	count = ids->type == REDIS_REPLY_ARRAY ? ids->elements / 2 : 0;
	if (count == 0) {
		freeReplyObject(ids);
		return 0;
	}
	out = calloc(count, sizeof *out);
	if (!out) {
		freeReplyObject(ids);
		snprintf(err, errlen, "out of memory for %zu boxes", count);
		return EC_ENOMEM;
	}
	for (i = 0; i < count; i++)
		redisAppendCommand(rc, "HGETALL echos:box:{%s}", ids->element[2 * i]->str);
	for (i = 0; i < count; i++) {
		struct ec_state_box *b = &out[i];

		if (next_reply(rc, &h, err, errlen) != 0) {
			drain_replies(rc, count - i - 1);
			freeReplyObject(ids);
			free(out);
			return EC_EIO;
		}
		copy_str(b->id, sizeof b->id, ids->element[2 * i]->str);
		b->last_seen_ms = (int64_t)strtod(ids->element[2 * i + 1]->str, NULL);
		b->is_alive = h->type == REDIS_REPLY_ARRAY && h->elements > 0;
		if (b->is_alive) {
			copy_str(b->pop, sizeof b->pop, hash_str(h, "pop"));
			copy_str(b->region, sizeof b->region, hash_str(h, "region"));
			copy_str(b->url, sizeof b->url, hash_str(h, "url"));
			copy_str(b->status, sizeof b->status, hash_str(h, "status"));
			b->ts_ms = (int64_t)hash_num(h, "ts_ms");
			b->uplink_bps = hash_num(h, "uplink_bps");
			b->egress_bps = hash_num(h, "egress_bps");
			b->conns = hash_num(h, "conns");
			b->ttfb_ms = hash_num(h, "ttfb_ms");
			b->cache_bytes = hash_num(h, "cache_bytes");
			b->cache_max_bytes = hash_num(h, "cache_max_bytes");
			b->cache_objects = hash_num(h, "cache_objects");
			b->hits = hash_num(h, "hits");
			b->misses = hash_num(h, "misses");
		}
		if (!b->status[0])
			copy_str(b->status, sizeof b->status, b->is_alive ? "unknown" : "expired");
		freeReplyObject(h);
	}
	freeReplyObject(ids);
	qsort(out, count, sizeof *out, box_cmp);
	*boxes = out;
	*n = count;
	return 0;
}

/* --- top objects --------------------------------------------------------------------- */

struct name_set {
	char names[STATE_TOP_MAX_REGIONS][EC_ACCT_SCOPE_NAME_MAX + 1];
	size_t n;
};

static void name_set_add(struct name_set *s, const char *name, size_t len)
{
	char tmp[EC_ACCT_SCOPE_NAME_MAX + 1];

	if (len == 0 || len > EC_ACCT_SCOPE_NAME_MAX || s->n >= STATE_TOP_MAX_REGIONS)
		return;
	memcpy(tmp, name, len);
	tmp[len] = '\0';
	if (!ec_acct_name_ok(tmp))
		return;
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->names[i], tmp) == 0)
			return;
	memcpy(s->names[s->n++], tmp, len + 1);
}

/* Regions that may have popularity: the unplaced "_", those of the boxes in the registry
 * and those named by the accounting. */
static int top_regions(redisContext *rc, struct name_set *set, char *err, size_t errlen)
{
	redisReply *ids, *keys, *r;
	size_t i;

	name_set_add(set, "_", 1);
	redisAppendCommand(rc, "ZRANGE echos:{boxes} 0 -1");
	redisAppendCommand(rc, "HKEYS echos:acct:total");
	if (next_reply(rc, &ids, err, errlen) != 0) {
		drain_replies(rc, 1);
		return EC_EIO;
	}
	if (next_reply(rc, &keys, err, errlen) != 0) {
		freeReplyObject(ids);
		return EC_EIO;
	}
	for (i = 0; i < keys->elements; i++) {
		const char *k = keys->element[i]->str, *dot;
		if (keys->element[i]->type == REDIS_REPLY_STRING && strncmp(k, "region.", 7) == 0 &&
		    (dot = strchr(k + 7, '.')) != NULL)
			name_set_add(set, k + 7, (size_t)(dot - (k + 7)));
	}
	freeReplyObject(keys);
	for (i = 0; i < ids->elements; i++)
		redisAppendCommand(rc, "HGET echos:box:{%s} region", ids->element[i]->str);
	for (i = 0; i < ids->elements; i++) {
		if (next_reply(rc, &r, err, errlen) != 0) {
			drain_replies(rc, ids->elements - i - 1);
			freeReplyObject(ids);
			return EC_EIO;
		}
		if (r->type == REDIS_REPLY_STRING)
			name_set_add(set, r->str, (size_t)r->len);
		freeReplyObject(r);
	}
	freeReplyObject(ids);
	return 0;
}

static int top_cmp(const void *x, const void *y)
{
	const struct ec_state_top *a = x, *b = y;

	if (a->requests != b->requests)
		return a->requests > b->requests ? -1 : 1;
	return strcmp(a->path, b->path);
}

void ec_state_top_free(struct ec_state_top *rows, size_t n)
{
	if (!rows)
		return;
	for (size_t i = 0; i < n; i++)
		free(rows[i].path);
	free(rows);
}

/* Adds (path, count) to rows, summing equal paths. Returns 0 or EC_ENOMEM. */
static int top_merge(struct ec_state_top **rows, size_t *n, size_t *cap, const char *path,
                     size_t len, double count)
{
	struct ec_state_top *t;

	for (size_t i = 0; i < *n; i++) {
		if (strlen((*rows)[i].path) == len && memcmp((*rows)[i].path, path, len) == 0) {
			(*rows)[i].requests += count;
			return 0;
		}
	}
	if (*n == *cap) {
		size_t ncap = *cap ? 2 * *cap : 32;
		t = realloc(*rows, ncap * sizeof *t);
		if (!t)
			return EC_ENOMEM;
		*rows = t;
		*cap = ncap;
	}
	t = &(*rows)[*n];
	t->path = strndup(path, len);
	if (!t->path)
		return EC_ENOMEM;
	t->requests = count;
	(*n)++;
	return 0;
}

int ec_state_read_top(struct redisContext *rc, const char *region, int minutes,
                      size_t limit, int64_t now_ms, struct ec_state_top **rows, size_t *n,
                      int *approximate, char *err, size_t errlen)
{
	static struct name_set set; /* 8 KiB: not on the stack; callers are single-threaded */
	int64_t now_min = now_ms / 60000;
	const char *argv[64];
	size_t argl[64], cap = 0, regions_with_data = 0, i;
	char keys[62][96], dest[96], nkeys_s[16];
	int rc2 = 0, nkeys;

	*rows = NULL;
	*n = 0;
	*approximate = 0;
	if (minutes != 1 && minutes != 60) {
		snprintf(err, errlen, "popularity is kept for 2 hours: window 1m or 1h");
		return EC_EINVAL;
	}
	if (limit == 0 || limit > 1000)
		limit = 1000;
	memset(&set, 0, sizeof set);
	if (region && *region) {
		if (!ec_acct_name_ok(region)) {
			snprintf(err, errlen, "region: expected [A-Za-z0-9_-]{1,32}");
			return EC_EINVAL;
		}
		name_set_add(&set, region, strlen(region));
	} else if (top_regions(rc, &set, err, errlen) != 0) {
		return EC_EIO;
	}
	nkeys = minutes + 1;
	for (i = 0; i < set.n; i++) {
		const char *reg = set.names[i];

		snprintf(dest, sizeof dest, "echos:pop:{%s}:top.%ld", reg, (long)getpid());
		argv[0] = "ZUNIONSTORE";
		argv[1] = dest;
		snprintf(nkeys_s, sizeof nkeys_s, "%d", nkeys);
		argv[2] = nkeys_s;
		for (int k = 0; k < nkeys; k++) {
			snprintf(keys[k], sizeof keys[k], "echos:pop:{%s}:m:%lld", reg,
			         (long long)(now_min - minutes + k));
			argv[3 + k] = keys[k];
		}
		for (int k = 0; k < 3 + nkeys; k++)
			argl[k] = strlen(argv[k]);
		redisAppendCommandArgv(rc, 3 + nkeys, argv, argl);
		redisAppendCommand(rc, "ZREVRANGE %s 0 %lld WITHSCORES", dest,
		                   (long long)limit - 1);
		redisAppendCommand(rc, "DEL %s", dest);
	}
	for (i = 0; i < set.n; i++) {
		redisReply *r[3];
		int k;

		for (k = 0; k < 3; k++) {
			if (next_reply(rc, &r[k], err, errlen) != 0) {
				while (k-- > 0)
					freeReplyObject(r[k]);
				drain_replies(rc, 3 * (set.n - i) - 1);
				ec_state_top_free(*rows, *n);
				*rows = NULL;
				*n = 0;
				return EC_EIO;
			}
		}
		if (r[1]->type == REDIS_REPLY_ARRAY && r[1]->elements > 0)
			regions_with_data++;
		for (size_t e = 0; rc2 == 0 && r[1]->type == REDIS_REPLY_ARRAY &&
		                   e + 1 < r[1]->elements; e += 2)
			rc2 = top_merge(rows, n, &cap, r[1]->element[e]->str,
			                (size_t)r[1]->element[e]->len,
			                strtod(r[1]->element[e + 1]->str, NULL));
		for (k = 0; k < 3; k++)
			freeReplyObject(r[k]);
	}
	if (rc2 != 0) {
		ec_state_top_free(*rows, *n);
		*rows = NULL;
		*n = 0;
		snprintf(err, errlen, "out of memory for the top objects");
		return rc2;
	}
	if (*n > 1)
		qsort(*rows, *n, sizeof **rows, top_cmp);
	while (*n > limit)
		free((*rows)[--*n].path);
	*approximate = regions_with_data > 1;
	return 0;
}

/* --- JSON documents ------------------------------------------------------------------ */

static void json_sums(FILE *f, const struct ec_acct_sums *s)
{
	json_key_num(f, "byte_offload", ec_acct_byte_offload(s));
	json_key_num(f, "request_offload", ec_acct_req_offload(s));
	json_u64(f, "box_bytes", s->box_bytes, 1);
	json_u64(f, "box_requests", s->box_reqs, 1);
	json_u64(f, "origin_bytes", s->fallback_bytes, 1);
	json_u64(f, "origin_requests", s->fallback_reqs, 1);
	json_u64(f, "origin_egress_bytes", ec_acct_origin_egress(s), 1);
	json_u64(f, "origin_fill_bytes", s->fill_bytes, 1);
	json_u64(f, "origin_fill_requests", s->fill_reqs, 1);
	json_u64(f, "origin_prefetch_bytes", s->prefetch_bytes, 1);
	json_u64(f, "box_hits", s->box_hits, 1);
	json_u64(f, "box_misses", s->box_misses, 1);
	json_u64(f, "box_fill_bytes", s->box_fill_bytes, 1);
	json_u64(f, "redirects_box", s->rdr_box, 1);
	json_u64(f, "redirects_origin", s->rdr_origin, 1);
}

static void json_head(FILE *f, const char *window, const char *service, const char *region,
                      int64_t now_ms)
{
	json_key_str(f, "window", window ? window : "total", 0);
	json_key_str(f, "service", service, 1);
	json_key_str(f, "region", region, 1);
	fprintf(f, ",\"now_ms\":%lld", (long long)now_ms);
}

/* A sorted copy of a table's rows (heap, caller frees), or NULL (use the rows as they
 * are) when empty or out of memory. */
static struct ec_acct_row *sorted_rows(const struct ec_acct_table *t)
{
	struct ec_acct_row *s;

	if (t->n == 0 || !(s = malloc(t->n * sizeof *s)))
		return NULL;
	memcpy(s, t->rows, t->n * sizeof *s);
	qsort(s, t->n, sizeof *s, ec_acct_row_cmp);
	return s;
}

static int row_name_cmp(const void *x, const void *y)
{
	const struct ec_acct_row *a = x, *b = y;

	return strcmp(a->name, b->name);
}

/* Rows of a service or region table: [{"name":..., sums}] sorted by name. */
static void json_named_rows(FILE *f, const char *key, const struct ec_acct_table *t)
{
	struct ec_acct_row *sorted = t->n ? malloc(t->n * sizeof *sorted) : NULL;

	if (sorted) {
		memcpy(sorted, t->rows, t->n * sizeof *sorted);
		qsort(sorted, t->n, sizeof *sorted, row_name_cmp);
	}
	fprintf(f, ",\"%s\":[", key);
	for (size_t i = 0; i < t->n; i++) {
		const struct ec_acct_row *r = sorted ? &sorted[i] : &t->rows[i];
		fprintf(f, "%s{", i ? "," : "");
		json_key_str(f, "name", r->name, 0);
		json_sums(f, &r->s);
		putc('}', f);
	}
	putc(']', f);
	free(sorted);
}

void ec_state_json_offload(FILE *f, const struct ec_acct *a, const char *window,
                           const char *service, const char *region, int64_t now_ms)
{
	struct ec_acct_row *rows = sorted_rows(&a->boxes);

	putc('{', f);
	json_head(f, window, service, region, now_ms);
	json_sums(f, &a->s);
	fputs(",\"boxes\":[", f);
	for (size_t i = 0; i < a->boxes.n; i++) {
		const struct ec_acct_row *r = rows ? &rows[i] : &a->boxes.rows[i];
		fprintf(f, "%s{", i ? "," : "");
		json_key_str(f, "id", r->name, 0);
		json_u64(f, "bytes", r->s.box_bytes, 1);
		json_u64(f, "requests", r->s.box_reqs, 1);
		putc('}', f);
	}
	putc(']', f);
	free(rows);
	json_named_rows(f, "services", &a->services);
	json_named_rows(f, "regions", &a->regions);
	fputs("}\n", f);
}

void ec_state_json_fallbacks(FILE *f, const struct ec_acct *a, const char *window,
                             const char *service, const char *region, int64_t now_ms)
{
	struct ec_acct_row *rows = sorted_rows(&a->reasons);
	uint64_t sum = 0;

	for (size_t i = 0; i < a->reasons.n; i++)
		sum += a->reasons.rows[i].s.rdr_origin;
	putc('{', f);
	json_head(f, window, service, region, now_ms);
	json_u64(f, "redirects_box", a->s.rdr_box, 1);
	json_u64(f, "redirects_origin", a->s.rdr_origin, 1);
	json_u64(f, "origin_requests", a->s.fallback_reqs, 1);
	json_u64(f, "origin_bytes", a->s.fallback_bytes, 1);
	fputs(",\"reasons\":[", f);
	for (size_t i = 0; i < a->reasons.n; i++) {
		const struct ec_acct_row *r = rows ? &rows[i] : &a->reasons.rows[i];
		fprintf(f, "%s{", i ? "," : "");
		json_key_str(f, "reason", r->name, 0);
		json_u64(f, "count", r->s.rdr_origin, 1);
		json_key_num(f, "share", sum ? (double)r->s.rdr_origin / (double)sum : NAN);
		putc('}', f);
	}
	fputs("]}\n", f);
	free(rows);
}

static double safe_div(double a, double b)
{
	return b > 0 ? a / b : NAN;
}

static const struct ec_acct_row *table_find(const struct ec_acct_table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->rows[i].name, name) == 0)
			return &t->rows[i];
	return NULL;
}

void ec_state_json_boxes(FILE *f, const struct ec_state_box *boxes, size_t n,
                         const struct ec_acct *a, const char *window, int64_t now_ms)
{
	/* regions: those of the registry, then those only the accounting names */
	const char *seen[STATE_TOP_MAX_REGIONS];
	size_t nseen = 0, i, j;

	putc('{', f);
	json_head(f, window, NULL, NULL, now_ms);
	fputs(",\"boxes\":[", f);
	for (i = 0; i < n; i++) {
		const struct ec_state_box *b = &boxes[i];
		const struct ec_acct_row *r = a ? table_find(&a->boxes, b->id) : NULL;
		int64_t seen_ms = b->ts_ms ? b->ts_ms : b->last_seen_ms;

		fprintf(f, "%s{", i ? "," : "");
		json_key_str(f, "id", b->id, 0);
		json_key_str(f, "pop", b->pop, 1);
		json_key_str(f, "region", b->region, 1);
		json_key_str(f, "url", b->url, 1);
		json_key_str(f, "status", b->status, 1);
		fprintf(f, ",\"alive\":%s", b->is_alive ? "true" : "false");
		json_key_num(f, "age_s", (double)(now_ms - seen_ms) / 1000.0);
		json_key_num(f, "uplink_bps", b->uplink_bps);
		json_key_num(f, "egress_bps", b->egress_bps);
		json_key_num(f, "load", safe_div(b->egress_bps, b->uplink_bps));
		json_key_num(f, "conns", b->conns);
		json_key_num(f, "ttfb_ms", b->ttfb_ms);
		json_key_num(f, "cache_bytes", b->cache_bytes);
		json_key_num(f, "cache_max_bytes", b->cache_max_bytes);
		json_key_num(f, "cache_objects", b->cache_objects);
		json_key_num(f, "cache_fill", safe_div(b->cache_bytes, b->cache_max_bytes));
		json_key_num(f, "hits", b->hits);
		json_key_num(f, "misses", b->misses);
		json_key_num(f, "hit_ratio", safe_div(b->hits, b->hits + b->misses));
		json_u64(f, "bytes", r ? r->s.box_bytes : 0, 1);
		json_u64(f, "requests", r ? r->s.box_reqs : 0, 1);
		putc('}', f);
	}
	fputs("],\"regions\":[", f);
	for (i = 0; i < n; i++) {
		if (!boxes[i].region[0] || nseen == STATE_TOP_MAX_REGIONS)
			continue;
		for (j = 0; j < nseen && strcmp(seen[j], boxes[i].region) != 0; j++)
			;
		if (j == nseen)
			seen[nseen++] = boxes[i].region;
	}
	for (i = 0; a && i < a->regions.n && nseen < STATE_TOP_MAX_REGIONS; i++) {
		for (j = 0; j < nseen && strcmp(seen[j], a->regions.rows[i].name) != 0; j++)
			;
		if (j == nseen)
			seen[nseen++] = a->regions.rows[i].name;
	}
	for (i = 0; i < nseen; i++) {
		double up = 0, uplink = 0, egress = 0, count = 0;
		const struct ec_acct_row *r = a ? table_find(&a->regions, seen[i]) : NULL;
		struct ec_acct_sums zero;

		memset(&zero, 0, sizeof zero);
		for (j = 0; j < n; j++) {
			if (strcmp(boxes[j].region, seen[i]) != 0)
				continue;
			count++;
			if (boxes[j].is_alive && strcmp(boxes[j].status, "up") == 0)
				up++;
			if (boxes[j].is_alive) {
				uplink += boxes[j].uplink_bps;
				egress += boxes[j].egress_bps;
			}
		}
		fprintf(f, "%s{", i ? "," : "");
		json_key_str(f, "name", seen[i], 0);
		json_key_num(f, "boxes", count);
		json_key_num(f, "up", up);
		json_key_num(f, "uplink_bps", uplink);
		json_key_num(f, "egress_bps", egress);
		json_key_num(f, "load", safe_div(egress, uplink));
		json_sums(f, r ? &r->s : &zero);
		putc('}', f);
	}
	fputs("]}\n", f);
}

void ec_state_json_top(FILE *f, const struct ec_state_top *rows, size_t n,
                       int approximate, const char *region, const char *window,
                       int64_t now_ms)
{
	putc('{', f);
	json_head(f, window, NULL, region, now_ms);
	fprintf(f, ",\"approximate\":%s,\"objects\":[", approximate ? "true" : "false");
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s{", i ? "," : "");
		json_key_str(f, "path", rows[i].path, 0);
		json_key_num(f, "requests", rows[i].requests);
		putc('}', f);
	}
	fputs("]}\n", f);
}

void ec_state_json_series(FILE *f, const struct ec_state_point *pts, size_t n,
                          const char *window, const char *service, const char *region)
{
	putc('{', f);
	json_key_str(f, "window", window, 0);
	json_key_str(f, "service", service, 1);
	json_key_str(f, "region", region, 1);
	fputs(",\"points\":[", f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s{\"t\":%lld", i ? "," : "", (long long)pts[i].minute * 60);
		json_key_num(f, "byte_offload", ec_acct_byte_offload(&pts[i].s));
		json_key_num(f, "request_offload", ec_acct_req_offload(&pts[i].s));
		json_u64(f, "box_bytes", pts[i].s.box_bytes, 1);
		json_u64(f, "origin_bytes", pts[i].s.fallback_bytes, 1);
		json_u64(f, "origin_egress_bytes", ec_acct_origin_egress(&pts[i].s), 1);
		putc('}', f);
	}
	fputs("]}\n", f);
}

void ec_state_json_error(FILE *f, int status, const char *msg)
{
	fputs("{\"error\":", f);
	ec_json_str(f, msg);
	fprintf(f, ",\"status\":%d}\n", status);
}
