/* ec_acct: sums the fields of the echos:acct:* hashes (docs/redis.md) for one scope.
 * Does not talk to Redis; ec_state feeds it. Owns its tables (rows plus a hash index,
 * so that a day of minute buckets with many boxes stays linear in the fields read). */
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_acct.h"
#include "ec_err.h"

static uint64_t name_hash(const char *s, size_t len)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

int ec_acct_name_ok(const char *s)
{
	size_t n = 0;

	if (!s)
		return 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '-'))
			return 0;
		if (n >= EC_ACCT_SCOPE_NAME_MAX)
			return 0;
	}
	return n > 0;
}

int ec_acct_init(struct ec_acct *a, const char *service, const char *region)
{
	int has_svc = service && *service, has_region = region && *region;

	memset(a, 0, sizeof *a);
	if (has_svc && has_region)
		return EC_EINVAL;
	if ((has_svc && !ec_acct_name_ok(service)) || (has_region && !ec_acct_name_ok(region)))
		return EC_EINVAL;
	if (has_svc)
		snprintf(a->scope, sizeof a->scope, "svc.%s.", service);
	else if (has_region)
		snprintf(a->scope, sizeof a->scope, "region.%s.", region);
	return 0;
}

/* Index slots are stored after the rows' capacity in one allocation: rows[0..cap) then
 * uint32_t slots[2 * cap]. Growing reallocates both and rebuilds the index. */
static uint32_t *table_slots(const struct ec_acct_table *t)
{
	return (uint32_t *)(void *)(t->rows + t->cap);
}

static void table_fini(struct ec_acct_table *t)
{
	free(t->rows);
	memset(t, 0, sizeof *t);
}

void ec_acct_fini(struct ec_acct *a)
{
	table_fini(&a->boxes);
	table_fini(&a->reasons);
	table_fini(&a->services);
	table_fini(&a->regions);
}

static void index_put(struct ec_acct_table *t, size_t row)
{
	uint32_t *slots = table_slots(t);
	size_t mask = 2 * t->cap - 1;
	size_t i = name_hash(t->rows[row].name, strlen(t->rows[row].name)) & mask;

	while (slots[i])
		i = (i + 1) & mask;
	slots[i] = (uint32_t)row + 1;
}

static int table_grow(struct ec_acct_table *t)
{
	size_t cap = t->cap ? 2 * t->cap : 16;
	size_t bytes = cap * sizeof(struct ec_acct_row) + 2 * cap * sizeof(uint32_t);
	struct ec_acct_row *rows = realloc(t->rows, bytes);

	if (!rows)
		return EC_ENOMEM;
	t->rows = rows;
	t->cap = cap;
	memset(table_slots(t), 0, 2 * cap * sizeof(uint32_t));
	for (size_t i = 0; i < t->n; i++)
		index_put(t, i);
	return 0;
}

/* Finds or adds the row named s[0..len). NULL when the table is full or out of memory
 * (counted in dropped). The row is owned by the table. */
static struct ec_acct_row *table_row(struct ec_acct_table *t, const char *s, size_t len)
{
	size_t i, mask;
	uint32_t *slots;

	if (len == 0 || len >= EC_ACCT_NAME_MAX) {
		t->dropped++;
		return NULL;
	}
	if (t->cap) {
		slots = table_slots(t);
		mask = 2 * t->cap - 1;
		for (i = name_hash(s, len) & mask; slots[i]; i = (i + 1) & mask) {
			struct ec_acct_row *r = &t->rows[slots[i] - 1];
			if (strncmp(r->name, s, len) == 0 && r->name[len] == '\0')
				return r;
		}
	}
	if (t->n >= EC_ACCT_TABLE_MAX || (t->n == t->cap && table_grow(t) != 0)) {
		t->dropped++;
		return NULL;
	}
	memset(&t->rows[t->n], 0, sizeof t->rows[t->n]);
	memcpy(t->rows[t->n].name, s, len);
	index_put(t, t->n);
	return &t->rows[t->n++];
}

/* Adds v to the base field `f` of s. Returns 1 if f is a base field, else 0. */
static int sums_add(struct ec_acct_sums *s, const char *f, uint64_t v)
{
	static const struct {
		const char *name;
		size_t off;
	} base[] = {
		{ "box.bytes", offsetof(struct ec_acct_sums, box_bytes) },
		{ "box.reqs", offsetof(struct ec_acct_sums, box_reqs) },
		{ "box.hits", offsetof(struct ec_acct_sums, box_hits) },
		{ "box.misses", offsetof(struct ec_acct_sums, box_misses) },
		{ "box.fill_bytes", offsetof(struct ec_acct_sums, box_fill_bytes) },
		{ "origin.fallback_bytes", offsetof(struct ec_acct_sums, fallback_bytes) },
		{ "origin.fallback_reqs", offsetof(struct ec_acct_sums, fallback_reqs) },
		{ "origin.fill_bytes", offsetof(struct ec_acct_sums, fill_bytes) },
		{ "origin.fill_reqs", offsetof(struct ec_acct_sums, fill_reqs) },
		{ "origin.prefetch_bytes", offsetof(struct ec_acct_sums, prefetch_bytes) },
		{ "rdr.box", offsetof(struct ec_acct_sums, rdr_box) },
		{ "rdr.origin", offsetof(struct ec_acct_sums, rdr_origin) },
	};

	for (size_t i = 0; i < EC_ARRAY_LEN(base); i++) {
		if (strcmp(f, base[i].name) == 0) {
			*(uint64_t *)(void *)((char *)s + base[i].off) += v;
			return 1;
		}
	}
	return 0;
}

/* A field of the scope being summed: a base field, or rdr.miss.<reason>. */
static int scope_add(struct ec_acct *a, const char *f, uint64_t v)
{
	struct ec_acct_row *r;

	if (strncmp(f, "rdr.miss.", 9) == 0) {
		r = table_row(&a->reasons, f + 9, strlen(f + 9));
		if (!r)
			return EC_ENOMEM;
		r->s.rdr_origin += v;
		return 0;
	}
	sums_add(&a->s, f, v);
	return 0;
}

/* "svc.<name>.<rest>" or "region.<name>.<rest>": adds rest to the named row of t, and to
 * the scope's sums when the scope is this one. */
static int named_add(struct ec_acct *a, struct ec_acct_table *t, const char *field,
                     size_t prefix_len, uint64_t v)
{
	const char *name = field + prefix_len;
	const char *dot = strchr(name, '.');
	struct ec_acct_row *r;
	size_t scope_len = strlen(a->scope);

	if (!dot || dot == name)
		return 0;
	if (scope_len && strncmp(field, a->scope, scope_len) == 0 &&
	    (size_t)(dot + 1 - field) == scope_len) {
		int rc = scope_add(a, dot + 1, v);
		if (rc != 0)
			return rc;
	}
	if (strncmp(dot + 1, "rdr.miss.", 9) == 0)
		return 0;
	r = table_row(t, name, (size_t)(dot - name));
	if (!r)
		return EC_ENOMEM;
	sums_add(&r->s, dot + 1, v);
	return 0;
}

/* "box.<id>.bytes" / "box.<id>.reqs" (ids may contain dots: match on the suffix). */
static int box_add(struct ec_acct *a, const char *field, uint64_t v)
{
	size_t len = strlen(field);
	struct ec_acct_row *r;
	int is_bytes;

	if (len > 4 + 6 && strcmp(field + len - 6, ".bytes") == 0)
		is_bytes = 1;
	else if (len > 4 + 5 && strcmp(field + len - 5, ".reqs") == 0)
		is_bytes = 0;
	else
		return 0;
	r = table_row(&a->boxes, field + 4, len - 4 - (is_bytes ? 6 : 5));
	if (!r)
		return EC_ENOMEM;
	if (is_bytes)
		r->s.box_bytes += v;
	else
		r->s.box_reqs += v;
	return 0;
}

int ec_acct_add(struct ec_acct *a, const char *field, const char *value)
{
	unsigned long long v;
	char *end;

	if (!field || !value)
		return EC_EINVAL;
	errno = 0;
	v = strtoull(value, &end, 10);
	if (errno || end == value || *end != '\0' || value[0] == '-') {
		a->bad_values++;
		return EC_EINVAL;
	}
	if (strncmp(field, "svc.", 4) == 0)
		return named_add(a, &a->services, field, 4, v);
	if (strncmp(field, "region.", 7) == 0)
		return named_add(a, &a->regions, field, 7, v);
	if (a->scope[0] == '\0') {
		/* unscoped base fields; box.<id>.* below is never a base field */
		if (sums_add(&a->s, field, v))
			return 0;
		if (strncmp(field, "rdr.miss.", 9) == 0)
			return scope_add(a, field, v);
	}
	if (strncmp(field, "box.", 4) == 0)
		return box_add(a, field, v);
	return 0;
}

double ec_acct_ratio(uint64_t part, uint64_t other)
{
	if (part == 0 && other == 0)
		return NAN;
	return (double)part / ((double)part + (double)other);
}

int ec_acct_window_minutes(const char *w)
{
	if (!w || strcmp(w, "total") == 0)
		return 0;
	if (strcmp(w, "1m") == 0)
		return 1;
	if (strcmp(w, "1h") == 0)
		return 60;
	if (strcmp(w, "1d") == 0)
		return 1440;
	return -1;
}

int ec_acct_row_cmp(const void *x, const void *y)
{
	const struct ec_acct_row *a = x, *b = y;

	if (a->s.box_bytes != b->s.box_bytes)
		return a->s.box_bytes > b->s.box_bytes ? -1 : 1;
	if (a->s.rdr_origin != b->s.rdr_origin)
		return a->s.rdr_origin > b->s.rdr_origin ? -1 : 1;
	return strcmp(a->name, b->name);
}

void ec_acct_table_sort(struct ec_acct_table *t)
{
	if (t->n < 2)
		return;
	qsort(t->rows, t->n, sizeof t->rows[0], ec_acct_row_cmp);
	memset(table_slots(t), 0, 2 * t->cap * sizeof(uint32_t));
	for (size_t i = 0; i < t->n; i++)
		index_put(t, i);
}
