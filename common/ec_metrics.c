/* ec_metrics: counters, gauges (stored or computed on demand) and histograms, rendered
 * in the Prometheus text format 0.0.4. Series of one family are kept next to each other
 * in registration order, so rendering is one pass. Serves no HTTP itself: daemons put
 * the rendered text on their own /metrics route. Owns every series it hands out. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_metrics.h"

#define METRIC_MAGIC 0x6d747263u   /* "mtrc" */
#define METRICS_MAGIC 0x6d726567u  /* "mreg" */

enum metric_kind {
	METRIC_COUNTER = 1,
	METRIC_GAUGE,
	METRIC_GAUGE_FN,
	METRIC_HISTOGRAM,
};

struct ec_metrics {
	unsigned magic;
	struct ec_metric *head;  /* families contiguous, in order of first registration */
};

struct ec_metrics *ec_metrics_new(void)
{
	struct ec_metrics *m = calloc(1, sizeof *m);

	if (m != NULL)
		m->magic = METRICS_MAGIC;
	return m;
}

void ec_metrics_free(struct ec_metrics *m)
{
	struct ec_metric *c, *next;

	if (m == NULL)
		return;
	EC_ASSERT(m->magic == METRICS_MAGIC);
	for (c = m->head; c != NULL; c = next) {
		next = c->next_;
		c->magic = 0;
		free(c->labels_);
		free(c->bounds_);
		free(c->counts_);
		free(c);
	}
	m->magic = 0;
	free(m);
}

static int name_valid(const char *s)
{
	if (s == NULL || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
	                   *s == ':'))
		return 0;
	for (s++; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == ':'))
			return 0;
	return 1;
}

/* Checks `name="value",name="value"` with escaped values; `le` is refused for
 * histograms, where it is the bucket label. */
static int labels_valid(const char *s, int is_hist)
{
	const char *start;

	if (s == NULL || *s == '\0')
		return 1;
	for (;;) {
		start = s;
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
			return 0;
		while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		       (*s >= '0' && *s <= '9') || *s == '_')
			s++;
		if (is_hist && s - start == 2 && memcmp(start, "le", 2) == 0)
			return 0;
		if (s[0] != '=' || s[1] != '"')
			return 0;
		for (s += 2; *s != '"'; s++) {
			if (*s == '\0' || *s == '\n')
				return 0;
			if (*s == '\\') {
				s++;
				if (*s != '\\' && *s != '"' && *s != 'n')
					return 0;
			}
		}
		s++;
		if (*s == '\0')
			return 1;
		if (*s++ != ',')
			return 0;
	}
}

size_t ec_metrics_escape_label(const char *value, char *out, size_t outlen)
{
	size_t need = 0, w = 0;
	int is_cut = 0;

	for (; value != NULL && *value; value++) {
		char one[2] = { *value, '\0' };
		const char *rep = *value == '\\' ? "\\\\" : *value == '"' ? "\\\""
		                : *value == '\n' ? "\\n" : one;
		size_t rl = strlen(rep);

		/* never split an escape sequence when cutting */
		if (!is_cut && w + rl < outlen) {
			memcpy(out + w, rep, rl);
			w += rl;
		} else {
			is_cut = 1;
		}
		need += rl;
	}
	if (outlen > 0)
		out[w] = '\0';
	return need;
}

static int family_kind(int kind)
{
	return kind == METRIC_GAUGE_FN ? METRIC_GAUGE : kind;
}

/* Registers or finds a series. Keeps each family contiguous: a new series goes after
 * the last one of its name. */
static struct ec_metric *metric_add(struct ec_metrics *m, int kind, const char *name,
                                    const char *help, const char *labels)
{
	struct ec_metric **pos = &m->head, *c, *last = NULL;
	const char *l = labels ? labels : "";

	EC_ASSERT(m != NULL && m->magic == METRICS_MAGIC);
	EC_ASSERT(name_valid(name));
	if (!labels_valid(l, kind == METRIC_HISTOGRAM))
		return NULL;
	for (c = m->head; c != NULL; c = c->next_) {
		if (strcmp(c->name_, name) != 0)
			continue;
		/* one name, one type: two modules disagreeing is a bug */
		EC_ASSERT(family_kind(c->kind) == family_kind(kind));
		if (strcmp(c->labels_, l) == 0 && c->kind == kind)
			return c;
		last = c;
	}
	if (last != NULL)
		pos = &last->next_;
	else
		while (*pos != NULL)
			pos = &(*pos)->next_;
	c = calloc(1, sizeof *c);
	if (c == NULL)
		return NULL;
	c->labels_ = strdup(l);
	if (c->labels_ == NULL) {
		free(c);
		return NULL;
	}
	c->magic = METRIC_MAGIC;
	c->kind = kind;
	c->name_ = name;
	c->help_ = help ? help : "";
	c->next_ = *pos;
	*pos = c;
	return c;
}

struct ec_metric *ec_metrics_counter(struct ec_metrics *m, const char *name,
                                     const char *help, const char *labels)
{
	return metric_add(m, METRIC_COUNTER, name, help, labels);
}

struct ec_metric *ec_metrics_gauge(struct ec_metrics *m, const char *name,
                                   const char *help, const char *labels)
{
	return metric_add(m, METRIC_GAUGE, name, help, labels);
}

struct ec_metric *ec_metrics_gauge_fn(struct ec_metrics *m, const char *name,
                                      const char *help, const char *labels,
                                      double (*fn)(void *), void *arg)
{
	struct ec_metric *c;

	EC_ASSERT(fn != NULL);
	c = metric_add(m, METRIC_GAUGE_FN, name, help, labels);
	if (c != NULL) {
		c->fn_ = fn;
		c->fn_arg_ = arg;
	}
	return c;
}

struct ec_metric *ec_metrics_histogram(struct ec_metrics *m, const char *name,
                                       const char *help, const char *labels,
                                       const double *bounds, size_t n)
{
	struct ec_metric *c;
	size_t i;

	for (i = 1; i < n; i++)
		EC_ASSERT(bounds[i - 1] < bounds[i]);
	c = metric_add(m, METRIC_HISTOGRAM, name, help, labels);
	if (c == NULL || c->counts_ != NULL)
		return c;
	c->bounds_ = malloc((n ? n : 1) * sizeof *c->bounds_);
	c->counts_ = calloc(n + 1, sizeof *c->counts_);  /* last: above every bound */
	if (c->bounds_ == NULL || c->counts_ == NULL) {
		/* leave an empty histogram behind: it renders only +Inf */
		free(c->bounds_);
		free(c->counts_);
		c->bounds_ = NULL;
		c->counts_ = NULL;
		return NULL;
	}
	if (n > 0)
		memcpy(c->bounds_, bounds, n * sizeof *bounds);
	c->nbuckets_ = n;
	return c;
}

void ec_metric_add_atomic(struct ec_metric *c, double v)
{
	double old, sum;

	if (c == NULL)
		return;
	__atomic_load(&c->value, &old, __ATOMIC_RELAXED);
	do {
		sum = old + v;
	} while (!__atomic_compare_exchange(&c->value, &old, &sum, 1, __ATOMIC_RELAXED,
	                                    __ATOMIC_RELAXED));
}

void ec_hist_observe(struct ec_metric *h, double v)
{
	size_t lo = 0, hi;

	if (h == NULL || h->counts_ == NULL)
		return;
	EC_ASSERT(h->magic == METRIC_MAGIC && h->kind == METRIC_HISTOGRAM);
	if (isnan(v))
		return;
	/* first bound >= v ("le" is inclusive) */
	hi = h->nbuckets_;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (h->bounds_[mid] < v)
			lo = mid + 1;
		else
			hi = mid;
	}
	h->counts_[lo]++;
	h->count_++;
	h->sum_ += v;
}

/* ---- rendering ------------------------------------------------------------------------ */

struct out_buf {
	char *p;
	size_t len, cap;
	int failed;
};

static void out_printf(struct out_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct out_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->failed = 1;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap * 2 + (size_t)n;
		char *np = realloc(b->p, ncap);
		if (np == NULL) {
			b->failed = 1;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/* Shortest text that reads back as the same double; integers without exponent. */
static const char *fmt_num(double v, char *out, size_t outlen)
{
	int prec;

	if (isnan(v))
		return "NaN";
	if (isinf(v))
		return v > 0 ? "+Inf" : "-Inf";
	if (v == floor(v) && fabs(v) < 1e15) {
		snprintf(out, outlen, "%.0f", v == 0 ? 0.0 : v);
		return out;
	}
	for (prec = 1; prec <= 17; prec++) {
		snprintf(out, outlen, "%.*g", prec, v);
		if (strtod(out, NULL) == v)
			break;
	}
	return out;
}

/* HELP text escapes backslash and newline only. */
static void out_help(struct out_buf *b, const char *name, const char *help)
{
	out_printf(b, "# HELP %s ", name);
	for (; *help; help++) {
		if (*help == '\\')
			out_printf(b, "\\\\");
		else if (*help == '\n')
			out_printf(b, "\\n");
		else
			out_printf(b, "%c", *help);
	}
	out_printf(b, "\n");
}

static void render_histogram(struct out_buf *b, const struct ec_metric *c)
{
	const char *sep = c->labels_[0] ? "," : "";
	char num[64];
	uint64_t cum = 0;
	size_t i;

	for (i = 0; i <= c->nbuckets_; i++) {
		cum += c->counts_ ? c->counts_[i] : 0;
		out_printf(b, "%s_bucket{%s%sle=\"%s\"} %llu\n", c->name_, c->labels_, sep,
		           i < c->nbuckets_ ? fmt_num(c->bounds_[i], num, sizeof num) : "+Inf",
		           (unsigned long long)cum);
	}
	if (c->labels_[0]) {
		out_printf(b, "%s_sum{%s} %s\n", c->name_, c->labels_,
		           fmt_num(c->sum_, num, sizeof num));
		out_printf(b, "%s_count{%s} %llu\n", c->name_, c->labels_,
		           (unsigned long long)c->count_);
	} else {
		out_printf(b, "%s_sum %s\n", c->name_, fmt_num(c->sum_, num, sizeof num));
		out_printf(b, "%s_count %llu\n", c->name_, (unsigned long long)c->count_);
	}
}

char *ec_metrics_render(struct ec_metrics *m, size_t *len)
{
	static const char *const type_names[] = {
		[METRIC_COUNTER] = "counter", [METRIC_GAUGE] = "gauge",
		[METRIC_GAUGE_FN] = "gauge", [METRIC_HISTOGRAM] = "histogram",
	};
	struct out_buf b = { NULL, 0, 4096, 0 };
	const struct ec_metric *c, *prev = NULL;
	char num[64];
	double v;

	EC_ASSERT(m != NULL && m->magic == METRICS_MAGIC);
	b.p = malloc(b.cap);
	if (b.p == NULL)
		return NULL;
	b.p[0] = '\0';
	for (c = m->head; c != NULL; prev = c, c = c->next_) {
		if (prev == NULL || strcmp(prev->name_, c->name_) != 0) {
			out_help(&b, c->name_, c->help_);
			out_printf(&b, "# TYPE %s %s\n", c->name_, type_names[c->kind]);
		}
		if (c->kind == METRIC_HISTOGRAM) {
			render_histogram(&b, c);
			continue;
		}
		if (c->kind == METRIC_GAUGE_FN)
			v = c->fn_(c->fn_arg_);
		else
			__atomic_load(&c->value, &v, __ATOMIC_RELAXED);
		if (c->labels_[0])
			out_printf(&b, "%s{%s} %s\n", c->name_, c->labels_, fmt_num(v, num, sizeof num));
		else
			out_printf(&b, "%s %s\n", c->name_, fmt_num(v, num, sizeof num));
	}
	if (b.failed) {
		free(b.p);
		return NULL;
	}
	if (len != NULL)
		*len = b.len;
	return b.p;
}
