/* ec_acct: the read side of the offload accounting of docs/redis.md. Turns the fields of
 * the echos:acct:* hashes into sums, per-box, per-reason, per-service and per-region
 * tables and ratios, for one scope (everything, one service or one region). Pure: no
 * Redis, no clock; it owns only its tables. The writers keep their own code: the field
 * names in docs/redis.md are the contract between them and this reader. */
#ifndef ECHOS_COMMON_EC_ACCT_H
#define ECHOS_COMMON_EC_ACCT_H

#include <stddef.h>
#include <stdint.h>

#define EC_ACCT_NAME_MAX 64      /* box ids 63 chars; service and region names 32 */
#define EC_ACCT_TABLE_MAX 4096   /* rows kept per table; more are counted in dropped */
#define EC_ACCT_SCOPE_NAME_MAX 32

/* The base fields of docs/redis.md ("box.bytes", "origin.fallback_bytes", ...). */
struct ec_acct_sums {
	uint64_t box_bytes, box_reqs;           /* served by boxes to viewers */
	uint64_t box_hits, box_misses;          /* box responses from cache / via a fill */
	uint64_t box_fill_bytes;                /* pulled by boxes from the origin-shim */
	uint64_t fallback_bytes, fallback_reqs; /* served by the origin to viewers */
	uint64_t fill_bytes, fill_reqs;         /* served by the origin to boxes (fills) */
	uint64_t prefetch_bytes;                /* served by the origin to boxes (prefetch) */
	uint64_t rdr_box, rdr_origin;           /* redirects to a box / to the origin */
};

struct ec_acct_row {
	char name[EC_ACCT_NAME_MAX];
	struct ec_acct_sums s; /* boxes: box_bytes, box_reqs; reasons: rdr_origin */
};

struct ec_acct_table {
	struct ec_acct_row *rows; /* heap, owned by the table */
	size_t n, cap;
	uint64_t dropped;         /* fields whose name did not fit (table full) */
};

struct ec_acct {
	char scope[EC_ACCT_SCOPE_NAME_MAX + 16]; /* "", "svc.<name>." or "region.<name>." */
	struct ec_acct_sums s;         /* the scope's sums */
	struct ec_acct_table boxes;    /* box.<id>.bytes|reqs, never scoped */
	struct ec_acct_table reasons;  /* <scope>rdr.miss.<reason>: count in s.rdr_origin */
	struct ec_acct_table services; /* svc.<name>.<base>: each service's sums */
	struct ec_acct_table regions;  /* region.<name>.<base>: each region's sums */
	uint64_t bad_values;           /* fields whose value was not a non-negative integer */
};

/* Starts an empty accumulator for everything, one service or one region (service and
 * region NULL or "" for everything). Returns 0, or EC_EINVAL when both are given or a
 * name is not [A-Za-z0-9_-]{1,32}. Free with ec_acct_fini(). */
int ec_acct_init(struct ec_acct *a, const char *service, const char *region);
/* Frees the tables. Safe on a zeroed or already finished struct. */
void ec_acct_fini(struct ec_acct *a);

/* Adds one hash field (name, decimal value) read from an echos:acct:* hash.
 * Unknown fields are ignored: writers may add fields before readers know them.
 * Returns 0, EC_EINVAL for a value that is not a decimal integer (counted in
 * bad_values, ignored) or EC_ENOMEM (the field is lost, the sums stay consistent). */
int ec_acct_add(struct ec_acct *a, const char *field, const char *value);

/* part / (part + other); NaN when both are 0 (no traffic: no ratio). */
double ec_acct_ratio(uint64_t part, uint64_t other);
static inline double ec_acct_byte_offload(const struct ec_acct_sums *s)
{
	return ec_acct_ratio(s->box_bytes, s->fallback_bytes);
}
static inline double ec_acct_req_offload(const struct ec_acct_sums *s)
{
	return ec_acct_ratio(s->box_reqs, s->fallback_reqs);
}
/* Everything the origin sent: fallbacks to viewers, fills and prefetches to boxes. */
static inline uint64_t ec_acct_origin_egress(const struct ec_acct_sums *s)
{
	return s->fallback_bytes + s->fill_bytes + s->prefetch_bytes;
}

/* Windows: "total" (0, the running total), "1m" (1), "1h" (60), "1d" (1440).
 * A window of N minutes is the current minute bucket and the N before it.
 * Returns the minutes, or -1 for anything else (NULL is "total"). */
int ec_acct_window_minutes(const char *window);

/* 1 if s is a valid service or region name: [A-Za-z0-9_-]{1,32}. */
int ec_acct_name_ok(const char *s);

/* Sorts a table by box_bytes, then by rdr_origin, descending; ties by name. */
void ec_acct_table_sort(struct ec_acct_table *t);
/* That order as a qsort comparison of two struct ec_acct_row. */
int ec_acct_row_cmp(const void *x, const void *y);

#endif
