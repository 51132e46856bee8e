/* ec_topo: loads the operator's topology file (CIDR -> PoP, region) into flat sorted
 * arrays of disjoint address intervals, one per family, searched by bisection.
 * Does not watch or reload the file. Owns one arena holding every name once, the
 * interned locations, and the interval arrays; all freed by ec_topo_free(). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ec_err.h"
#include "ec_topo.h"

typedef unsigned __int128 u128;

#define TOPO_MAX_FILE_BYTES ((size_t)256 << 20) /* refuse larger files: not a topology */
#define TOPO_MAX_NAME 63                         /* PoP and region names, bytes */
#define TOPO_NO_LOC UINT32_MAX                   /* interval covered by no prefix */

struct ec_topo {
	size_t n_prefixes;
	uint32_t *v4_start;      /* sorted; v4_start[0] == 0; interval i ends at i+1's start */
	uint32_t *v4_loc;        /* index into locs, or TOPO_NO_LOC */
	size_t n_v4;
	u128 *v6_start;          /* the same for IPv6, addresses as 128-bit integers */
	uint32_t *v6_loc;
	size_t n_v6;
	struct ec_topo_loc *locs; /* one per distinct (pop, region, prefix length) */
	size_t n_locs;
	char *names;             /* arena: every name once, NUL-terminated */
	size_t names_len;
	size_t mem_bytes;
};

/* One parsed line, kept only while loading. */
struct topo_pfx {
	u128 start, last; /* first and last address covered */
	uint32_t loc;     /* index into the loader's locations */
	uint32_t line;
	uint8_t bits;
	uint8_t is_v6;
};

struct topo_name {        /* an interned name: offset into the arena */
	uint64_t hash;
	uint32_t off, len;
};

struct topo_tmploc {
	uint32_t pop, region; /* indexes into the name table */
	uint8_t bits;
};

/* Everything the loader grows while parsing; freed by topo_loader_fini(). */
struct topo_loader {
	const char *file;
	char *err;
	size_t errlen;

	struct topo_pfx *pfx;
	size_t n_pfx, cap_pfx;

	char *arena;
	size_t arena_len, arena_cap;
	struct topo_name *names;
	size_t n_names, cap_names;
	uint32_t *name_slots; /* open addressing: index + 1, 0 empty */
	size_t n_name_slots;

	struct topo_tmploc *locs;
	size_t n_locs, cap_locs;
	uint32_t *loc_slots;
	size_t n_loc_slots;
};

uint64_t ec_topo_name_hash(const char *name, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)name[i];
		h *= 0x100000001b3ULL;
	}
	return h ? h : 1; /* 0 means "unknown" in policy structs */
}

static void topo_err(struct topo_loader *ld, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void topo_err(struct topo_loader *ld, unsigned line, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!ld->err || ld->errlen == 0)
		return;
	if (line)
		n = snprintf(ld->err, ld->errlen, "%s:%u: ", ld->file, line);
	else
		n = snprintf(ld->err, ld->errlen, "%s: ", ld->file);
	if (n < 0 || (size_t)n >= ld->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
	va_end(ap);
}

/* Copies a token for an error message: at most 64 bytes, bytes that are not printable
 * ASCII as \xHH, so a hostile file cannot put control sequences in the log. */
static const char *topo_quote(char *dst, size_t dstlen, const char *s, size_t len)
{
	size_t o = 0, i;

	for (i = 0; i < len && i < 64 && o + 5 < dstlen; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			dst[o++] = (char)ch;
		else
			o += (size_t)snprintf(dst + o, dstlen - o, "\\x%02x", ch);
	}
	if (i < len && o + 4 < dstlen) {
		memcpy(dst + o, "...", 3);
		o += 3;
	}
	dst[o] = '\0';
	return dst;
}

/* Grows *p (elements of size sz) to hold at least need; returns 0 or EC_ENOMEM. */
static int topo_grow(void *pp, size_t *cap, size_t need, size_t sz)
{
	void **p = pp;
	size_t ncap = *cap ? *cap : 16;
	void *np;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	if (ncap > SIZE_MAX / sz)
		return EC_ENOMEM;
	np = realloc(*p, ncap * sz);
	if (!np)
		return EC_ENOMEM;
	*p = np;
	*cap = ncap;
	return 0;
}

static uint64_t topo_mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return x;
}

/* Rebuilds an open-addressing index of n entries into nslots slots (a power of two). */
static uint32_t *topo_reindex(size_t nslots, size_t n, uint64_t (*hash_of)(const void *, size_t),
                              const void *ctx)
{
	uint32_t *slots = calloc(nslots, sizeof *slots);

	if (!slots)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t s = (size_t)hash_of(ctx, i) & (nslots - 1);

		while (slots[s])
			s = (s + 1) & (nslots - 1);
		slots[s] = (uint32_t)i + 1;
	}
	return slots;
}

static uint64_t topo_name_hash_at(const void *ctx, size_t i)
{
	return ((const struct topo_loader *)ctx)->names[i].hash;
}

static uint64_t topo_loc_key(uint32_t pop, uint32_t region, uint8_t bits)
{
	return topo_mix(((uint64_t)pop << 32 | region) ^ ((uint64_t)bits << 56) ^
	                0x9e3779b97f4a7c15ULL);
}

static uint64_t topo_loc_hash_at(const void *ctx, size_t i)
{
	const struct topo_tmploc *l = &((const struct topo_loader *)ctx)->locs[i];

	return topo_loc_key(l->pop, l->region, l->bits);
}

/* Keeps an index at most half full, so probes stay short. */
static int topo_index_room(struct topo_loader *ld, uint32_t **slots, size_t *nslots,
                           size_t n, uint64_t (*hash_of)(const void *, size_t))
{
	uint32_t *ns;
	size_t want = *nslots ? *nslots : 64;

	if ((n + 1) * 2 <= *nslots)
		return 0;
	while ((n + 1) * 2 > want)
		want *= 2;
	ns = topo_reindex(want, n, hash_of, ld);
	if (!ns)
		return EC_ENOMEM;
	free(*slots);
	*slots = ns;
	*nslots = want;
	return 0;
}

/* Returns the index of name in the loader's name table, adding it once; or -1. */
static int64_t topo_intern_name(struct topo_loader *ld, const char *s, size_t len)
{
	uint64_t h = ec_topo_name_hash(s, len);
	size_t slot;

	if (topo_index_room(ld, &ld->name_slots, &ld->n_name_slots, ld->n_names,
	                    topo_name_hash_at) != 0)
		return -1;
	slot = (size_t)h & (ld->n_name_slots - 1);
	while (ld->name_slots[slot]) {
		const struct topo_name *nm = &ld->names[ld->name_slots[slot] - 1];

		if (nm->hash == h && nm->len == len && memcmp(ld->arena + nm->off, s, len) == 0)
			return ld->name_slots[slot] - 1;
		slot = (slot + 1) & (ld->n_name_slots - 1);
	}
	if (topo_grow(&ld->names, &ld->cap_names, ld->n_names + 1, sizeof *ld->names) != 0 ||
	    topo_grow(&ld->arena, &ld->arena_cap, ld->arena_len + len + 1, 1) != 0)
		return -1;
	memcpy(ld->arena + ld->arena_len, s, len);
	ld->arena[ld->arena_len + len] = '\0';
	ld->names[ld->n_names] = (struct topo_name){ h, (uint32_t)ld->arena_len, (uint32_t)len };
	ld->arena_len += len + 1;
	ld->name_slots[slot] = (uint32_t)ld->n_names + 1;
	return (int64_t)ld->n_names++;
}

/* Returns the index of the (pop, region, bits) location, adding it once; or -1. */
static int64_t topo_intern_loc(struct topo_loader *ld, uint32_t pop, uint32_t region,
                               uint8_t bits)
{
	size_t slot;

	if (topo_index_room(ld, &ld->loc_slots, &ld->n_loc_slots, ld->n_locs,
	                    topo_loc_hash_at) != 0)
		return -1;
	slot = (size_t)topo_loc_key(pop, region, bits) & (ld->n_loc_slots - 1);
	while (ld->loc_slots[slot]) {
		const struct topo_tmploc *l = &ld->locs[ld->loc_slots[slot] - 1];

		if (l->pop == pop && l->region == region && l->bits == bits)
			return ld->loc_slots[slot] - 1;
		slot = (slot + 1) & (ld->n_loc_slots - 1);
	}
	if (topo_grow(&ld->locs, &ld->cap_locs, ld->n_locs + 1, sizeof *ld->locs) != 0)
		return -1;
	ld->locs[ld->n_locs] = (struct topo_tmploc){ pop, region, bits };
	ld->loc_slots[slot] = (uint32_t)ld->n_locs + 1;
	return (int64_t)ld->n_locs++;
}

static u128 topo_be128(const unsigned char *b)
{
	u128 v = 0;

	for (int i = 0; i < 16; i++)
		v = v << 8 | b[i];
	return v;
}

static void topo_from128(u128 v, unsigned char *b)
{
	for (int i = 15; i >= 0; i--) {
		b[i] = (unsigned char)v;
		v >>= 8;
	}
}

/* Mask of the host part of a prefix of `bits` in a family of `width` bits. */
static u128 topo_hostmask(unsigned bits, unsigned width)
{
	u128 all = width == 128 ? ~(u128)0 : (((u128)1 << width) - 1);

	return bits >= width ? 0 : all >> bits;
}

/* Writes a prefix as text ("10.0.0.0/8", "2001:db8::/32"). */
static void topo_format(char *dst, size_t len, u128 start, unsigned bits, int is_v6)
{
	char a[INET6_ADDRSTRLEN];

	if (is_v6) {
		unsigned char b[16];

		topo_from128(start, b);
		inet_ntop(AF_INET6, b, a, sizeof a);
	} else {
		struct in_addr in = { htonl((uint32_t)start) };

		inet_ntop(AF_INET, &in, a, sizeof a);
	}
	snprintf(dst, len, "%s/%u", a, bits);
}

/* Parses a CIDR token into p (start, last, bits, is_v6). Prefixes inside
 * ::ffff:0:0/96 become IPv4 prefixes, so mapped clients and IPv4 clients see one table.
 * Returns 0, or EC_EINVAL with the message in the loader. */
static int topo_parse_cidr(struct topo_loader *ld, unsigned line, const char *tok,
                           size_t len, struct topo_pfx *p)
{
	char addr[INET6_ADDRSTRLEN], q[300], fixed[64];
	const char *slash = memchr(tok, '/', len);
	size_t alen, blen;
	unsigned bits = 0, width;
	unsigned char raw[16];
	u128 v;
	int is_v6;

	if (!slash)
		goto bad;
	alen = (size_t)(slash - tok);
	blen = len - alen - 1;
	if (alen == 0 || alen >= sizeof addr || blen == 0 || blen > 3)
		goto bad;
	memcpy(addr, tok, alen);
	addr[alen] = '\0';
	for (size_t i = 0; i < blen; i++) {
		if (slash[1 + i] < '0' || slash[1 + i] > '9')
			goto bad;
		bits = bits * 10 + (unsigned)(slash[1 + i] - '0');
	}
	is_v6 = memchr(addr, ':', alen) != NULL;
	if (inet_pton(is_v6 ? AF_INET6 : AF_INET, addr, raw) != 1)
		goto bad;
	width = is_v6 ? 128 : 32;
	if (bits > width) {
		topo_err(ld, line, "expected a CIDR like 10.0.0.0/8, got \"%s\": an %s prefix "
		         "length is 0-%u", topo_quote(q, sizeof q, tok, len),
		         is_v6 ? "IPv6" : "IPv4", width);
		return EC_EINVAL;
	}
	if (is_v6) {
		v = topo_be128(raw);
	} else {
		v = (u128)((uint32_t)raw[0] << 24 | (uint32_t)raw[1] << 16 |
		           (uint32_t)raw[2] << 8 | raw[3]);
	}
	if (v & topo_hostmask(bits, width)) {
		topo_format(fixed, sizeof fixed, v & ~topo_hostmask(bits, width), bits, is_v6);
		topo_err(ld, line, "expected a CIDR with no host bits set like %s, got \"%s\"",
		         fixed, topo_quote(q, sizeof q, tok, len));
		return EC_EINVAL;
	}
	if (is_v6 && bits >= 96 && (v >> 32) == 0xffff) {
		is_v6 = 0;
		bits -= 96;
		v &= 0xffffffffu;
		width = 32;
	}
	p->start = v;
	p->last = v | topo_hostmask(bits, width);
	p->bits = (uint8_t)bits;
	p->is_v6 = (uint8_t)is_v6;
	p->line = line;
	return 0;
bad:
	topo_err(ld, line, "expected a CIDR like 10.0.0.0/8, got \"%s\"",
	         topo_quote(q, sizeof q, tok, len));
	return EC_EINVAL;
}

static int topo_name_ok(const char *s, size_t len)
{
	if (len == 0 || len > TOPO_MAX_NAME)
		return 0;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* Parses one line (without its newline). Returns 0 or a negative EC_E* code. */
static int topo_parse_line(struct topo_loader *ld, unsigned line, const char *s, size_t len)
{
	static const char *const what[] = { "a CIDR like 10.0.0.0/8", "a PoP name",
		                            "a region name" };
	const char *tok[4];
	size_t toklen[4], ntok = 0, i = 0;
	char q[300];
	int64_t pop, region, loc;
	struct topo_pfx p;
	const char *hash = memchr(s, '#', len);

	if (hash)
		len = (size_t)(hash - s);
	while (i < len) {
		size_t b;

		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
			i++;
		if (i == len)
			break;
		b = i;
		while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			i++;
		if (ntok == 4)
			break;
		tok[ntok] = s + b;
		toklen[ntok++] = i - b;
	}
	if (ntok == 0)
		return 0;
	if (ntok > 3) {
		topo_err(ld, line, "expected end of line after the region, got \"%s\"",
		         topo_quote(q, sizeof q, tok[3], toklen[3]));
		return EC_EINVAL;
	}
	if (topo_parse_cidr(ld, line, tok[0], toklen[0], &p) != 0)
		return EC_EINVAL;
	if (ntok < 3) {
		topo_err(ld, line, "expected %s after \"%s\", got end of line", what[ntok],
		         topo_quote(q, sizeof q, tok[ntok - 1], toklen[ntok - 1]));
		return EC_EINVAL;
	}
	for (size_t t = 1; t < 3; t++) {
		if (!topo_name_ok(tok[t], toklen[t])) {
			topo_err(ld, line, "expected %s of letters, digits, '.', '_' or '-' "
			         "(1-%d bytes), got \"%s\"", what[t], TOPO_MAX_NAME,
			         topo_quote(q, sizeof q, tok[t], toklen[t]));
			return EC_EINVAL;
		}
	}
	pop = topo_intern_name(ld, tok[1], toklen[1]);
	region = pop < 0 ? -1 : topo_intern_name(ld, tok[2], toklen[2]);
	loc = region < 0 ? -1 : topo_intern_loc(ld, (uint32_t)pop, (uint32_t)region, p.bits);
	if (loc < 0 || topo_grow(&ld->pfx, &ld->cap_pfx, ld->n_pfx + 1, sizeof *ld->pfx) != 0) {
		topo_err(ld, line, "out of memory");
		return EC_ENOMEM;
	}
	p.loc = (uint32_t)loc;
	ld->pfx[ld->n_pfx++] = p;
	return 0;
}

/* Family, then start, then wider first (a parent before its children), then line. */
static int topo_pfx_cmp(const void *a, const void *b)
{
	const struct topo_pfx *x = a, *y = b;

	if (x->is_v6 != y->is_v6)
		return x->is_v6 < y->is_v6 ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	if (x->bits != y->bits)
		return x->bits < y->bits ? -1 : 1;
	return x->line < y->line ? -1 : x->line > y->line;
}

/* Appends the interval starting at pos to the flat arrays. An interval starting where
 * the previous one starts replaces it (a child at its parent's first address); one
 * with the same location as the previous is merged into it. */
static void topo_emit(u128 *start, uint32_t *loc, size_t *n, u128 pos, uint32_t l)
{
	if (*n > 0 && start[*n - 1] == pos) {
		loc[*n - 1] = l;
		if (*n >= 2 && loc[*n - 2] == l)
			(*n)--;
		return;
	}
	if (*n > 0 && loc[*n - 1] == l)
		return;
	start[*n] = pos;
	loc[*n] = l;
	(*n)++;
}

/* Flattens sorted, duplicate-free prefixes of one family into disjoint intervals, each
 * labelled with its most specific covering prefix. CIDR prefixes are either nested or
 * disjoint, so a stack of open prefixes (at most one per length) suffices. Writes at
 * most 2 * n + 1 intervals; returns how many. */
static size_t topo_flatten(const struct topo_pfx *p, size_t n, u128 family_last,
                           u128 *start, uint32_t *loc)
{
	const struct topo_pfx *stack[130];
	size_t sp = 0, out = 0;

	topo_emit(start, loc, &out, 0, TOPO_NO_LOC);
	for (size_t i = 0; i <= n; i++) {
		/* close every open prefix that ends before this one starts (all at the end) */
		while (sp > 0 && (i == n || stack[sp - 1]->last < p[i].start)) {
			const struct topo_pfx *t = stack[--sp];

			if (t->last != family_last)
				topo_emit(start, loc, &out, t->last + 1,
				          sp > 0 ? stack[sp - 1]->loc : TOPO_NO_LOC);
		}
		if (i == n)
			break;
		EC_ASSERT(sp < EC_ARRAY_LEN(stack));
		stack[sp++] = &p[i];
		topo_emit(start, loc, &out, p[i].start, p[i].loc);
	}
	return out;
}

static void topo_loader_fini(struct topo_loader *ld)
{
	free(ld->pfx);
	free(ld->arena);
	free(ld->names);
	free(ld->name_slots);
	free(ld->locs);
	free(ld->loc_slots);
}

/* Turns the loader's parsed prefixes into t. Returns 0 or a negative EC_E* code. */
static int topo_build(struct topo_loader *ld, struct ec_topo *t)
{
	size_t n4 = 0, cap;
	u128 *tmp = NULL;
	uint32_t *tmploc = NULL;
	const struct topo_pfx *dup = NULL, *first = NULL;
	char a[64];

	if (ld->n_pfx > 0)
		qsort(ld->pfx, ld->n_pfx, sizeof *ld->pfx, topo_pfx_cmp);
	/* duplicates sort next to each other; report the one a reader meets first */
	for (size_t i = 1; i < ld->n_pfx; i++) {
		const struct topo_pfx *x = &ld->pfx[i - 1], *y = &ld->pfx[i];

		if (x->is_v6 == y->is_v6 && x->start == y->start && x->bits == y->bits &&
		    (!dup || y->line < dup->line)) {
			dup = y;
			first = x;
		}
	}
	if (dup) {
		topo_format(a, sizeof a, dup->start, dup->bits, dup->is_v6);
		topo_err(ld, dup->line, "duplicate prefix %s, first at line %u", a, first->line);
		return EC_EINVAL;
	}
	while (n4 < ld->n_pfx && !ld->pfx[n4].is_v6)
		n4++;

	cap = 2 * ld->n_pfx + 2;
	tmp = malloc(cap * sizeof *tmp);
	tmploc = malloc(cap * sizeof *tmploc);
	if (!tmp || !tmploc)
		goto nomem;

	t->n_v4 = topo_flatten(ld->pfx, n4, 0xffffffffu, tmp, tmploc);
	t->v4_start = malloc(t->n_v4 * sizeof *t->v4_start);
	t->v4_loc = malloc(t->n_v4 * sizeof *t->v4_loc);
	if (!t->v4_start || !t->v4_loc)
		goto nomem;
	for (size_t i = 0; i < t->n_v4; i++)
		t->v4_start[i] = (uint32_t)tmp[i];
	memcpy(t->v4_loc, tmploc, t->n_v4 * sizeof *tmploc);

	t->n_v6 = topo_flatten(ld->pfx + n4, ld->n_pfx - n4, ~(u128)0, tmp, tmploc);
	t->v6_start = malloc(t->n_v6 * sizeof *t->v6_start);
	t->v6_loc = malloc(t->n_v6 * sizeof *t->v6_loc);
	if (!t->v6_start || !t->v6_loc)
		goto nomem;
	memcpy(t->v6_start, tmp, t->n_v6 * sizeof *tmp);
	memcpy(t->v6_loc, tmploc, t->n_v6 * sizeof *tmploc);
	free(tmp);
	free(tmploc);
	tmp = NULL;
	tmploc = NULL;

	/* the arena becomes the table's: shrink it, then point the locations into it */
	t->names_len = ld->arena_len;
	t->names = ld->arena_len ? realloc(ld->arena, ld->arena_len) : NULL;
	if (t->names)
		ld->arena = NULL;
	else if (ld->arena_len)
		goto nomem;
	t->n_locs = ld->n_locs;
	t->locs = calloc(t->n_locs ? t->n_locs : 1, sizeof *t->locs);
	if (!t->locs)
		goto nomem;
	for (size_t i = 0; i < t->n_locs; i++) {
		const struct topo_name *pop = &ld->names[ld->locs[i].pop];
		const struct topo_name *reg = &ld->names[ld->locs[i].region];

		t->locs[i].pop = t->names + pop->off;
		t->locs[i].region = t->names + reg->off;
		t->locs[i].pop_hash = pop->hash;
		t->locs[i].region_hash = reg->hash;
		t->locs[i].prefix_bits = ld->locs[i].bits;
	}
	t->n_prefixes = ld->n_pfx;
	t->mem_bytes = sizeof *t + t->n_v4 * 8 + t->n_v6 * (sizeof(u128) + 4) +
	               t->n_locs * sizeof *t->locs + t->names_len;
	return 0;
nomem:
	free(tmp);
	free(tmploc);
	topo_err(ld, 0, "out of memory loading %zu prefixes", ld->n_pfx);
	return EC_ENOMEM;
}

/* Borrows buf and name for the call; buf need not be NUL-terminated. Stops at the first
 * problem, in line order (duplicates are found after the last line). */
struct ec_topo *ec_topo_parse(const char *buf, size_t len, const char *name, char *err,
                              size_t errlen)
{
	struct topo_loader ld = { .file = name ? name : "topology", .err = err,
		                  .errlen = errlen };
	struct ec_topo *t = calloc(1, sizeof *t);
	size_t pos = 0;
	unsigned line = 0;

	if (err && errlen)
		err[0] = '\0';
	if (!t) {
		topo_err(&ld, 0, "out of memory");
		return NULL;
	}
	while (pos < len) {
		const char *s = buf + pos;
		const char *nl = memchr(s, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - s) : len - pos;

		if (line == UINT32_MAX - 1) {
			topo_err(&ld, line, "too many lines");
			goto fail;
		}
		line++;
		if (topo_parse_line(&ld, line, s, l) != 0)
			goto fail;
		pos += l + 1;
	}
	if (topo_build(&ld, t) != 0)
		goto fail;
	topo_loader_fini(&ld);
	return t;
fail:
	topo_loader_fini(&ld);
	ec_topo_free(t);
	return NULL;
}

static void topo_load_err(char *err, size_t errlen, const char *path, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "%s: %s", path, why);
}

/* Reads the whole file (at most 256 MiB) into a temporary buffer, then parses it. */
struct ec_topo *ec_topo_load(const char *path, char *err, size_t errlen)
{
	struct ec_topo *t;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		topo_load_err(err, errlen, path, strerror(errno));
		return NULL;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			if (cap >= TOPO_MAX_FILE_BYTES) {
				topo_load_err(err, errlen, path,
				         "larger than 256 MiB, not a topology file");
				goto fail;
			}
			if (topo_grow(&buf, &cap, cap ? cap * 2 : 65536, 1) != 0) {
				topo_load_err(err, errlen, path, "out of memory");
				goto fail;
			}
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			topo_load_err(err, errlen, path, strerror(errno));
			goto fail;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	t = ec_topo_parse(buf, len, path, err, errlen);
	free(buf);
	return t;
fail:
	close(fd);
	free(buf);
	return NULL;
}

void ec_topo_free(struct ec_topo *t)
{
	if (!t)
		return;
	free(t->v4_start);
	free(t->v4_loc);
	free(t->v6_start);
	free(t->v6_loc);
	free(t->locs);
	free(t->names);
	free(t);
}

size_t ec_topo_count(const struct ec_topo *t)
{
	return t ? t->n_prefixes : 0;
}

size_t ec_topo_mem_bytes(const struct ec_topo *t)
{
	return t ? t->mem_bytes : 0;
}

/* Index of the last interval starting at or before key; start[0] is 0, so there is one. */
static size_t topo_bisect32(const uint32_t *start, size_t n, uint32_t key)
{
	size_t lo = 0, hi = n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (start[mid] <= key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

static size_t topo_bisect128(const u128 *start, size_t n, u128 key)
{
	size_t lo = 0, hi = n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (start[mid] <= key)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

const struct ec_topo_loc *ec_topo_lookup(const struct ec_topo *t, const struct sockaddr *sa)
{
	uint32_t l;

	if (!t || !sa)
		return NULL;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		uint32_t key = ntohl(in->sin_addr.s_addr);

		l = t->v4_loc[topo_bisect32(t->v4_start, t->n_v4, key)];
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const unsigned char *b = in6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			uint32_t key = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 |
			               (uint32_t)b[14] << 8 | b[15];

			l = t->v4_loc[topo_bisect32(t->v4_start, t->n_v4, key)];
		} else {
			u128 key = topo_be128(b);

			l = t->v6_loc[topo_bisect128(t->v6_start, t->n_v6, key)];
		}
	} else {
		return NULL;
	}
	return l == TOPO_NO_LOC ? NULL : &t->locs[l];
}
