/* ec_cfg: "key = value" config files, -o overrides and the shared command line, driven
 * by each daemon's table of ec_cfg_opt. Checks everything before giving up, so the
 * operator sees every bad line at once. Knows no daemon's keys and opens nothing but the
 * config file. Owns the heap strings and lists it stores in a conf (ec_cfg_fini). */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_log.h"
#include "ec_redis.h"

#define CFG_SEEN_MAX 64        /* longest value quoted back in a message */
#define CFG_MSG_MAX 512

/* Problems are collected here, one per line, until the buffer is full. */
struct cfg_errs {
	char *buf;
	size_t cap;
	size_t len;
	unsigned n;        /* problems recorded */
	unsigned omitted;  /* problems that did not fit */
};

static void errs_init(struct cfg_errs *e, char *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->len = 0;
	e->n = 0;
	e->omitted = 0;
	if (cap > 0)
		buf[0] = '\0';
}

static void errs_add(struct cfg_errs *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void errs_add(struct cfg_errs *e, const char *fmt, ...)
{
	char line[CFG_MSG_MAX];
	va_list ap;
	size_t need;
	int r;

	va_start(ap, fmt);
	r = vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (r < 0)
		return;
	e->n++;
	need = strlen(line) + (e->len > 0 ? 1 : 0);
	if (e->buf == NULL || e->len + need >= e->cap) {
		e->omitted++;
		return;
	}
	if (e->len > 0)
		e->buf[e->len++] = '\n';
	memcpy(e->buf + e->len, line, strlen(line) + 1);
	e->len += strlen(line);
}

/* Appends "(N more problems not shown)" when some did not fit, if that fits. */
static void errs_finish(struct cfg_errs *e)
{
	char tail[64];
	size_t tl;

	if (e->omitted == 0 || e->buf == NULL)
		return;
	snprintf(tail, sizeof tail, "%s(%u more problem%s not shown)", e->len ? "\n" : "",
	         e->omitted, e->omitted == 1 ? "" : "s");
	tl = strlen(tail);
	if (e->len + tl < e->cap) {
		memcpy(e->buf + e->len, tail, tl + 1);
		e->len += tl;
	}
}

/* Quotes a value back to the operator: control characters become '?', long values are
 * cut with "...". */
static const char *seen_text(const char *v, char *out, size_t outlen)
{
	size_t i, n = 0;

	for (i = 0; v[i] != '\0' && n + 4 < outlen; i++) {
		unsigned char c = (unsigned char)v[i];
		out[n++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	if (v[i] != '\0') {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

/* ---- value parsers ----------------------------------------------------------------- */

struct cfg_unit {
	const char *suffix;
	uint64_t mult;
};

static const struct cfg_unit size_units[] = {
	{ "", 1 }, { "B", 1 },
	{ "K", 1ull << 10 }, { "KB", 1ull << 10 }, { "KiB", 1ull << 10 },
	{ "M", 1ull << 20 }, { "MB", 1ull << 20 }, { "MiB", 1ull << 20 },
	{ "G", 1ull << 30 }, { "GB", 1ull << 30 }, { "GiB", 1ull << 30 },
	{ "T", 1ull << 40 }, { "TB", 1ull << 40 }, { "TiB", 1ull << 40 },
	{ NULL, 0 }
};

static const struct cfg_unit duration_units[] = {
	{ "", 1 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 }, { "min", 60000 },
	{ "h", 3600000 }, { "d", 86400000 },
	{ NULL, 0 }
};

static const struct cfg_unit bps_units[] = {
	{ "", 1 }, { "bps", 1 },
	{ "k", 1000ull }, { "kbps", 1000ull },
	{ "M", 1000000ull }, { "Mbps", 1000000ull },
	{ "G", 1000000000ull }, { "Gbps", 1000000000ull },
	{ "T", 1000000000000ull }, { "Tbps", 1000000000000ull },
	{ NULL, 0 }
};

/* Parses digits[.digits] followed by a suffix from `units` (case-insensitive) into an
 * integer count of the base unit (fractions round down). Returns 0, EC_EINVAL, EC_ERANGE. */
static int parse_scaled(const char *s, const struct cfg_unit *units, uint64_t limit,
                        uint64_t *out)
{
	const char *p = s, *frac = NULL;
	uint64_t ip = 0, mult = 0;
	size_t i;
	int overflow = 0;

	if (s == NULL || *p < '0' || *p > '9')
		return EC_EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (ip > (UINT64_MAX - 9) / 10)
			overflow = 1;
		else
			ip = ip * 10 + (uint64_t)(*p - '0');
	}
	if (*p == '.') {
		frac = ++p;
		if (*p < '0' || *p > '9')
			return EC_EINVAL;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	for (i = 0; units[i].suffix != NULL; i++) {
		if (strcasecmp(p, units[i].suffix) == 0) {
			mult = units[i].mult;
			break;
		}
	}
	if (mult == 0)
		return EC_EINVAL;
	if (overflow)
		return EC_ERANGE;
	if (frac != NULL) {
		long double v = strtold(s, NULL) * (long double)mult;
		if (!(v <= (long double)limit))
			return EC_ERANGE;
		*out = (uint64_t)v;
		return 0;
	}
	if (ip != 0 && mult > limit / ip)
		return EC_ERANGE;
	*out = ip * mult;
	return 0;
}

int ec_cfg_parse_size(const char *s, uint64_t *out)
{
	return parse_scaled(s, size_units, UINT64_MAX, out);
}

int ec_cfg_parse_duration_ms(const char *s, int64_t *out)
{
	uint64_t v;
	int rc = parse_scaled(s, duration_units, INT64_MAX, &v);

	if (rc == 0)
		*out = (int64_t)v;
	return rc;
}

int ec_cfg_parse_bps(const char *s, uint64_t *out)
{
	return parse_scaled(s, bps_units, UINT64_MAX, out);
}

int ec_cfg_parse_bool(const char *s, int *out)
{
	static const char *const yes[] = { "yes", "true", "on", "1" };
	static const char *const no[] = { "no", "false", "off", "0" };
	size_t i;

	if (s == NULL)
		return EC_EINVAL;
	for (i = 0; i < EC_ARRAY_LEN(yes); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = 1;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = 0;
			return 0;
		}
	}
	return EC_EINVAL;
}

static int parse_int(const char *s, int64_t *out)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return EC_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (*end != '\0')
		return EC_EINVAL;
	if (errno == ERANGE)
		return EC_ERANGE;
	*out = v;
	return 0;
}

static int parse_double(const char *s, double *out)
{
	char *end;
	double v;

	if (s == NULL || *s == '\0' || strchr(" \t\n", *s) != NULL)
		return EC_EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (*end != '\0' || isnan(v))
		return EC_EINVAL;
	if (errno == ERANGE || isinf(v))
		return EC_ERANGE;
	*out = v;
	return 0;
}

/* ---- formatting numbers for messages and the reference ------------------------------ */

static const char *fmt_scaled(uint64_t v, const struct cfg_unit *units, char *out,
                              size_t outlen)
{
	const struct cfg_unit *best = NULL;
	size_t i;

	for (i = 0; units[i].suffix != NULL; i++) {
		/* short suffixes only: the first of each multiplier is the canonical one */
		if (units[i].suffix[0] == '\0' || (best && best->mult == units[i].mult))
			continue;
		if (v != 0 && v % units[i].mult == 0 && (best == NULL || units[i].mult > best->mult))
			best = &units[i];
	}
	if (best != NULL)
		snprintf(out, outlen, "%llu%s", (unsigned long long)(v / best->mult),
		         best->suffix);
	else
		snprintf(out, outlen, "%llu", (unsigned long long)v);
	return out;
}

static const char *fmt_bound(enum ec_cfg_type t, double b, char *out, size_t outlen)
{
	if (b < 0 || b > 1.8e19 || (t != EC_CFG_SIZE && t != EC_CFG_DURATION && t != EC_CFG_BPS)) {
		snprintf(out, outlen, "%.15g", b);
		return out;
	}
	if (t == EC_CFG_SIZE)
		return fmt_scaled((uint64_t)b, size_units, out, outlen);
	if (t == EC_CFG_BPS)
		return fmt_scaled((uint64_t)b, bps_units, out, outlen);
	/* durations: prefer "ms" for sub-second values, then s, m, h */
	if ((uint64_t)b % 1000 != 0 || b == 0)
		snprintf(out, outlen, "%llums", (unsigned long long)b);
	else
		fmt_scaled((uint64_t)b, duration_units, out, outlen);
	return out;
}

static const char *const type_names[] = {
	[EC_CFG_STR] = "string",
	[EC_CFG_INT] = "integer",
	[EC_CFG_SIZE] = "size",
	[EC_CFG_DURATION] = "duration",
	[EC_CFG_BPS] = "rate",
	[EC_CFG_BOOL] = "boolean",
	[EC_CFG_DOUBLE] = "number",
	[EC_CFG_ADDR] = "address",
	[EC_CFG_LEVEL] = "level",
	[EC_CFG_LIST] = "list",
};

static const char *const type_expect[] = {
	[EC_CFG_STR] = "a string",
	[EC_CFG_INT] = "an integer",
	[EC_CFG_SIZE] = "a size like 512, 4K, 20M or 2G",
	[EC_CFG_DURATION] = "a duration like 250ms, 3s, 5m or 1h",
	[EC_CFG_BPS] = "a rate in bits/s like 10k, 100M or 1G",
	[EC_CFG_BOOL] = "yes or no",
	[EC_CFG_DOUBLE] = "a number",
	[EC_CFG_ADDR] = "an address like host:port or [v6]:port",
	[EC_CFG_LEVEL] = "one of debug, info, warn, error",
	[EC_CFG_LIST] = "a string",
};

static int has_bounds(const struct ec_cfg_opt *o)
{
	return !(o->min == 0 && o->max == 0) &&
	       (o->type == EC_CFG_INT || o->type == EC_CFG_DOUBLE || o->type == EC_CFG_SIZE ||
	        o->type == EC_CFG_DURATION || o->type == EC_CFG_BPS);
}

/* "an integer from 1 to 65535" */
static const char *expect_text(const struct ec_cfg_opt *o, char *out, size_t outlen)
{
	static const char *const noun[] = {
		[EC_CFG_INT] = "an integer", [EC_CFG_DOUBLE] = "a number",
		[EC_CFG_SIZE] = "a size", [EC_CFG_DURATION] = "a duration",
		[EC_CFG_BPS] = "a rate in bits/s",
	};
	char lo[32], hi[32];

	if (!has_bounds(o)) {
		snprintf(out, outlen, "%s", type_expect[o->type]);
		return out;
	}
	snprintf(out, outlen, "%s from %s to %s", noun[o->type],
	         fmt_bound(o->type, o->min, lo, sizeof lo),
	         fmt_bound(o->type, o->max, hi, sizeof hi));
	return out;
}

/* ---- applying one value -------------------------------------------------------------- */

static const struct ec_cfg_opt *opt_find(const struct ec_cfg_opt *opts, const char *key)
{
	for (; opts->key != NULL; opts++)
		if (strcmp(opts->key, key) == 0)
			return opts;
	return NULL;
}

static void list_clear(struct ec_cfg_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->items[i]);
	free(l->items);
	l->items = NULL;
	l->n = 0;
}

static int list_append(struct ec_cfg_list *l, const char *v)
{
	char **items;
	char *dup = strdup(v);

	if (dup == NULL)
		return EC_ENOMEM;
	items = realloc(l->items, (l->n + 1) * sizeof *items);
	if (items == NULL) {
		free(dup);
		return EC_ENOMEM;
	}
	items[l->n++] = dup;
	l->items = items;
	return 0;
}

static int in_bounds(const struct ec_cfg_opt *o, double v)
{
	return !has_bounds(o) || (v >= o->min && v <= o->max);
}

/* Parses `value` for option `o` and stores it in conf. `replace_list`: a list key's first
 * occurrence replaces the list (its defaults) instead of appending.
 * Returns 0, EC_EINVAL/EC_ERANGE (bad value) or EC_ENOMEM. */
static int opt_store(const struct ec_cfg_opt *o, void *conf, const char *value,
                     int replace_list)
{
	void *field = (char *)conf + o->offset;
	char host[256];
	enum ec_log_level lvl;
	uint64_t u;
	int64_t i;
	double d;
	int b, port, rc;
	char *dup;

	switch (o->type) {
	case EC_CFG_STR:
	case EC_CFG_ADDR:
		if (o->type == EC_CFG_ADDR && value[0] != '\0' &&
		    ec_addr_split(value, host, sizeof host, &port) != 0)
			return EC_EINVAL;
		dup = strdup(value);
		if (dup == NULL)
			return EC_ENOMEM;
		free(*(char **)field);
		*(char **)field = dup;
		return 0;
	case EC_CFG_INT:
		if ((rc = parse_int(value, &i)) != 0)
			return rc;
		if (!in_bounds(o, (double)i))
			return EC_ERANGE;
		*(int64_t *)field = i;
		return 0;
	case EC_CFG_SIZE:
	case EC_CFG_BPS:
		rc = o->type == EC_CFG_SIZE ? ec_cfg_parse_size(value, &u)
		                            : ec_cfg_parse_bps(value, &u);
		if (rc != 0)
			return rc;
		if (!in_bounds(o, (double)u))
			return EC_ERANGE;
		*(uint64_t *)field = u;
		return 0;
	case EC_CFG_DURATION:
		if ((rc = ec_cfg_parse_duration_ms(value, &i)) != 0)
			return rc;
		if (!in_bounds(o, (double)i))
			return EC_ERANGE;
		*(int64_t *)field = i;
		return 0;
	case EC_CFG_BOOL:
		if (ec_cfg_parse_bool(value, &b) != 0)
			return EC_EINVAL;
		*(int *)field = b;
		return 0;
	case EC_CFG_DOUBLE:
		if ((rc = parse_double(value, &d)) != 0)
			return rc;
		if (!in_bounds(o, d))
			return EC_ERANGE;
		*(double *)field = d;
		return 0;
	case EC_CFG_LEVEL:
		if (ec_log_level_parse(value, &lvl) != 0)
			return EC_EINVAL;
		*(int *)field = (int)lvl;
		return 0;
	case EC_CFG_LIST:
		if (replace_list || value[0] == '\0')
			list_clear(field);
		return value[0] == '\0' ? 0 : list_append(field, value);
	}
	return EC_EINVAL;
}

/* Applies key = value, recording a problem as "where: key: ...". `seen` (one flag per
 * option, or NULL) makes the first occurrence of a list key replace its defaults. */
static int cfg_apply(const struct ec_cfg_opt *opts, void *conf, const char *where,
                     const char *key, const char *value, unsigned char *seen,
                     struct cfg_errs *e)
{
	const struct ec_cfg_opt *o = opt_find(opts, key);
	char seenbuf[CFG_SEEN_MAX + 4], what[128];
	int rc, first = 0;

	if (o == NULL) {
		errs_add(e, "%s: %s: unknown key", where, key);
		return EC_EINVAL;
	}
	if (seen != NULL) {
		first = !seen[o - opts];
		seen[o - opts] = 1;
	}
	rc = opt_store(o, conf, value, first);
	if (rc == EC_ENOMEM) {
		errs_add(e, "%s: %s: out of memory", where, key);
		return rc;
	}
	if (rc != 0) {
		errs_add(e, "%s: %s: expected %s, got \"%s\"", where, key,
		         expect_text(o, what, sizeof what),
		         seen_text(value, seenbuf, sizeof seenbuf));
		return EC_EINVAL;
	}
	return 0;
}

static size_t opts_count(const struct ec_cfg_opt *opts)
{
	size_t n = 0;

	while (opts[n].key != NULL)
		n++;
	return n;
}

int ec_cfg_defaults(const struct ec_cfg_opt *opts, void *conf, char *err, size_t errlen)
{
	const struct ec_cfg_opt *o;
	struct cfg_errs e;
	int rc = 0;

	errs_init(&e, err, errlen);
	for (o = opts; o->key != NULL; o++) {
		void *field = (char *)conf + o->offset;

		switch (o->type) {
		case EC_CFG_STR:
		case EC_CFG_ADDR:
			*(char **)field = NULL;
			break;
		case EC_CFG_INT:
		case EC_CFG_DURATION:
			*(int64_t *)field = 0;
			break;
		case EC_CFG_SIZE:
		case EC_CFG_BPS:
			*(uint64_t *)field = 0;
			break;
		case EC_CFG_BOOL:
		case EC_CFG_LEVEL:
			*(int *)field = 0;
			break;
		case EC_CFG_DOUBLE:
			*(double *)field = 0;
			break;
		case EC_CFG_LIST:
			((struct ec_cfg_list *)field)->items = NULL;
			((struct ec_cfg_list *)field)->n = 0;
			break;
		}
		if (o->def != NULL && cfg_apply(opts, conf, "default", o->key, o->def, NULL, &e) != 0)
			rc = EC_EINVAL;
	}
	errs_finish(&e);
	return rc;
}

/* ---- files ---------------------------------------------------------------------------- */

static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
	                   end[-1] == '\n'))
		*--end = '\0';
	return s;
}

static int key_valid(const char *k)
{
	if (*k == '\0')
		return 0;
	for (; *k; k++)
		if (!((*k >= 'a' && *k <= 'z') || (*k >= 'A' && *k <= 'Z') ||
		      (*k >= '0' && *k <= '9') || *k == '_' || *k == '.' || *k == '-'))
			return 0;
	return 1;
}

/* Splits one line (already without its newline) into key and value, in place.
 * Returns 1 for a setting, 0 for a blank or comment line, -1 (with *why) if malformed. */
static int line_split(char *line, char **key, char **value, const char **why)
{
	char *s = trim(line), *eq, *v, *p;

	if (*s == '\0' || *s == '#')
		return 0;
	eq = strchr(s, '=');
	if (eq == NULL) {
		*why = "expected \"key = value\"";
		return -1;
	}
	*eq = '\0';
	*key = trim(s);
	if (!key_valid(*key)) {
		*eq = '=';
		*why = "expected \"key = value\" with a key of letters, digits, '.', '_', '-'";
		return -1;
	}
	v = trim(eq + 1);
	if (*v == '"') {
		/* quoted: taken literally up to the closing quote, then only a comment */
		p = strchr(v + 1, '"');
		if (p == NULL) {
			*why = "unterminated quoted value";
			return -1;
		}
		*p = '\0';
		p = trim(p + 1);
		if (*p != '\0' && *p != '#') {
			*why = "text after the closing quote";
			return -1;
		}
		*value = v + 1;
		return 1;
	}
	/* unquoted: a '#' after whitespace starts a comment */
	for (p = v; *p != '\0'; p++) {
		if (*p == '#' && p > v && (p[-1] == ' ' || p[-1] == '\t')) {
			*p = '\0';
			break;
		}
	}
	*value = trim(v);
	return 1;
}

static int cfg_load_file(const struct ec_cfg_opt *opts, void *conf, const char *path,
                         unsigned char *seen, struct cfg_errs *e)
{
	char where[CFG_MSG_MAX / 2], seenbuf[CFG_SEEN_MAX + 4], orig[EC_CFG_LINE_MAX + 1];
	char *line = NULL, *key, *value;
	const char *why;
	size_t cap = 0;
	ssize_t len;
	unsigned lineno = 0;
	int rc = 0, kind;
	FILE *f;

	f = fopen(path, "r");
	if (f == NULL) {
		errs_add(e, "%s: cannot open: %s", path, strerror(errno));
		return EC_EIO;
	}
	errno = 0;
	while ((len = getline(&line, &cap, f)) >= 0) {
		char *s = line;

		lineno++;
		snprintf(where, sizeof where, "%s:%u", path, lineno);
		if (lineno == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0)
			s += 3;  /* UTF-8 byte order mark */
		if (memchr(line, '\0', (size_t)len) != NULL) {
			errs_add(e, "%s: line contains a NUL byte", where);
			rc = EC_EINVAL;
			continue;
		}
		if (len > EC_CFG_LINE_MAX) {
			errs_add(e, "%s: line longer than %d bytes", where, EC_CFG_LINE_MAX);
			rc = EC_EINVAL;
			continue;
		}
		memcpy(orig, s, strlen(s) + 1);   /* line_split cuts s up */
		kind = line_split(s, &key, &value, &why);
		if (kind < 0) {
			errs_add(e, "%s: %s, got \"%s\"", where, why,
			         seen_text(trim(orig), seenbuf, sizeof seenbuf));
			rc = EC_EINVAL;
		} else if (kind > 0) {
			int r = cfg_apply(opts, conf, where, key, value, seen, e);
			if (r == EC_ENOMEM) {
				rc = r;
				break;
			}
			if (r != 0)
				rc = EC_EINVAL;
		}
		errno = 0;
	}
	if (ferror(f)) {
		errs_add(e, "%s: cannot read: %s", path, strerror(errno ? errno : EIO));
		rc = EC_EIO;
	}
	free(line);
	fclose(f);
	return rc;
}

int ec_cfg_load(const struct ec_cfg_opt *opts, void *conf, const char *path, char *err,
                size_t errlen)
{
	unsigned char *seen = calloc(opts_count(opts) + 1, 1);
	struct cfg_errs e;
	int rc;

	errs_init(&e, err, errlen);
	if (seen == NULL) {
		errs_add(&e, "%s: out of memory", path);
		return EC_ENOMEM;
	}
	rc = cfg_load_file(opts, conf, path, seen, &e);
	free(seen);
	errs_finish(&e);
	return rc;
}

/* Splits "key=value" (spaces around '=' allowed) and applies it. */
static int cfg_apply_kv(const struct ec_cfg_opt *opts, void *conf, const char *where,
                        const char *kv, unsigned char *seen, struct cfg_errs *e)
{
	char buf[EC_CFG_LINE_MAX + 1], seenbuf[CFG_SEEN_MAX + 4];
	char *key, *value;
	const char *why;

	if (strlen(kv) > EC_CFG_LINE_MAX) {
		errs_add(e, "%s: longer than %d bytes", where, EC_CFG_LINE_MAX);
		return EC_EINVAL;
	}
	strcpy(buf, kv);
	if (strchr(buf, '=') == NULL || line_split(buf, &key, &value, &why) != 1) {
		errs_add(e, "%s: expected KEY=VALUE, got \"%s\"", where,
		         seen_text(kv, seenbuf, sizeof seenbuf));
		return EC_EINVAL;
	}
	return cfg_apply(opts, conf, where, key, value, seen, e);
}

int ec_cfg_set(const struct ec_cfg_opt *opts, void *conf, const char *where,
               const char *key, const char *value, char *err, size_t errlen)
{
	struct cfg_errs e;
	int rc;

	errs_init(&e, err, errlen);
	if (key == NULL || value == NULL) {
		errs_add(&e, "%s: missing key or value", where ? where : "-o");
		return EC_EINVAL;
	}
	rc = cfg_apply(opts, conf, where ? where : "-o", key, value, NULL, &e);
	errs_finish(&e);
	return rc;
}

void ec_cfg_fini(const struct ec_cfg_opt *opts, void *conf)
{
	for (; opts->key != NULL; opts++) {
		void *field = (char *)conf + opts->offset;

		if (opts->type == EC_CFG_STR || opts->type == EC_CFG_ADDR) {
			free(*(char **)field);
			*(char **)field = NULL;
		} else if (opts->type == EC_CFG_LIST) {
			list_clear(field);
		}
	}
}

void ec_cfg_print_reference(const struct ec_cfg_opt *opts, FILE *out)
{
	char lo[32], hi[32];

	for (; opts->key != NULL; opts++) {
		fprintf(out, "  %s = %s\n", opts->key,
		        opts->def ? (opts->def[0] ? opts->def : "\"\"") : "(unset)");
		fprintf(out, "      %s (%s", opts->help ? opts->help : "", type_names[opts->type]);
		if (has_bounds(opts))
			fprintf(out, ", %s to %s", fmt_bound(opts->type, opts->min, lo, sizeof lo),
			        fmt_bound(opts->type, opts->max, hi, sizeof hi));
		if (opts->type == EC_CFG_LIST)
			fputs(", repeat the key to add items, an empty value clears", out);
		fputs(")\n", out);
	}
}

/* ---- command line ------------------------------------------------------------------- */

/* Matches an option with a value given as "-c FILE", "-cFILE", "--config FILE" or
 * "--config=FILE". Returns 1 and sets *v (NULL when the value is missing) if argv[*i] is
 * that option, else 0. */
static int arg_with_value(int argc, char **argv, int *i, const char *sopt, const char *lopt,
                          const char **v)
{
	const char *a = argv[*i];
	size_t ll = strlen(lopt);

	if (strcmp(a, sopt) == 0 || strcmp(a, lopt) == 0) {
		*v = *i + 1 < argc ? argv[++*i] : NULL;
		return 1;
	}
	if (strncmp(a, sopt, 2) == 0 && a[2] != '\0') {
		*v = a + 2;
		return 1;
	}
	if (strncmp(a, lopt, ll) == 0 && a[ll] == '=') {
		*v = a + ll + 1;
		return 1;
	}
	return 0;
}

int ec_args_parse(int argc, char **argv, struct ec_args *args, char *err, size_t errlen)
{
	const char *v;
	int i;

	memset(args, 0, sizeof *args);
	if (errlen > 0)
		err[0] = '\0';
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (arg_with_value(argc, argv, &i, "-c", "--config", &v)) {
			if (v == NULL || *v == '\0') {
				snprintf(err, errlen, "option %s needs a file name", a);
				return EC_EINVAL;
			}
			args->conf_path = v;
		} else if (arg_with_value(argc, argv, &i, "-o", "--set", &v)) {
			if (v == NULL || strchr(v, '=') == NULL || v[0] == '=') {
				snprintf(err, errlen, "option -o needs KEY=VALUE, got \"%s\"",
				         v ? v : "");
				return EC_EINVAL;
			}
			if (args->n_overrides >= EC_ARRAY_LEN(args->overrides)) {
				snprintf(err, errlen, "too many -o options (at most %zu)",
				         EC_ARRAY_LEN(args->overrides));
				return EC_EINVAL;
			}
			args->overrides[args->n_overrides++] = v;
		} else if (strcmp(a, "-t") == 0 || strcmp(a, "--test") == 0) {
			args->test_only = 1;
		} else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			args->show_help = 1;
		} else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			args->show_version = 1;
		} else if (a[0] == '-') {
			snprintf(err, errlen, "unknown option \"%s\" (try --help)", a);
			return EC_EINVAL;
		} else {
			snprintf(err, errlen, "unexpected argument \"%s\" (try --help)", a);
			return EC_EINVAL;
		}
	}
	return 0;
}

int ec_cfg_load_all(const struct ec_cfg_opt *opts, void *conf, const struct ec_args *args,
                    char *err, size_t errlen)
{
	unsigned char *seen;
	struct cfg_errs e;
	int rc, r;
	size_t i;

	rc = ec_cfg_defaults(opts, conf, err, errlen);
	if (rc != 0)
		return rc;
	errs_init(&e, err, errlen);
	seen = calloc(opts_count(opts) + 1, 1);
	if (seen == NULL) {
		errs_add(&e, "out of memory");
		return EC_ENOMEM;
	}
	if (args->conf_path != NULL)
		rc = cfg_load_file(opts, conf, args->conf_path, seen, &e);
	for (i = 0; i < args->n_overrides && rc != EC_ENOMEM; i++) {
		r = cfg_apply_kv(opts, conf, "-o", args->overrides[i], seen, &e);
		if (r != 0 && rc == 0)
			rc = r;
	}
	free(seen);
	errs_finish(&e);
	return rc;
}

void ec_args_usage(FILE *out, const char *prog, const char *summary,
                   const struct ec_cfg_opt *opts)
{
	fprintf(out,
	        "usage: %s [-c FILE] [-t] [-o KEY=VALUE]... [-h] [-V]\n"
	        "%s%s"
	        "\noptions:\n"
	        "  -c, --config FILE   read settings from FILE (without it: defaults only)\n"
	        "  -t, --test          check the settings, print every problem, and exit\n"
	        "  -o, --set KEY=VALUE set one key after the file is read (repeatable)\n"
	        "  -h, --help          print this help and exit\n"
	        "  -V, --version       print the version and exit\n"
	        "\nexit codes:\n"
	        "  0  done (with -t: the settings are valid)\n"
	        "  1  runtime failure (the log says what failed)\n"
	        "  2  usage or configuration error (one line per problem: file:line: key: ...)\n",
	        prog, summary ? summary : "", summary ? "\n" : "");
	if (opts != NULL && opts->key != NULL) {
		fputs("\nconfiguration (\"key = value\" lines, '#' comments; "
		      "key, default, then meaning and type):\n", out);
		ec_cfg_print_reference(opts, out);
	}
}

int ec_exit_usage(const char *prog, const char *msg)
{
	const char *p = msg ? msg : "", *nl;

	do {
		nl = strchr(p, '\n');
		fprintf(stderr, "%s: %.*s\n", prog, nl ? (int)(nl - p) : (int)strlen(p), p);
		p = nl ? nl + 1 : NULL;
	} while (p != NULL && *p != '\0');
	return 2;
}

int ec_exit_config(const char *prog, const char *msg)
{
	return ec_exit_usage(prog, msg);
}
