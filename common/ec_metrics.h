/* ec_metrics: a registry of counters, gauges and histograms with Prometheus text
 * exposition (format 0.0.4). Single-threaded by design: each daemon updates metrics from
 * its event loop only (the origin-shim's worker threads use ec_metric_add_atomic).
 * Labels are fixed at registration, so cardinality is bounded by code, not by input. */
#ifndef ECHOS_COMMON_EC_METRICS_H
#define ECHOS_COMMON_EC_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct ec_metrics;

struct ec_metric {
	double value; /* counter or gauge value */
	/* private to ec_metrics.c below */
	unsigned magic;
	int kind;
	const char *name_;
	const char *help_;
	char *labels_;
	double (*fn_)(void *);
	void *fn_arg_;
	struct ec_metric *next_;
	/* histogram only */
	size_t nbuckets_;
	double *bounds_;
	uint64_t *counts_;
	uint64_t count_;
	double sum_;
};

/* Returns a new empty registry owned by the caller, free with ec_metrics_free(). */
struct ec_metrics *ec_metrics_new(void);
void ec_metrics_free(struct ec_metrics *m);

/* Registers a series. `name` and `help` are borrowed (use literals); `labels` is copied,
 * written as in the exposition without braces: "reason=\"stale\",proto=\"h2\"" or NULL.
 * Series with the same name share one HELP/TYPE block; registering the same name and
 * labels again returns the existing series. Returns a pointer owned by the registry (valid
 * until ec_metrics_free), or NULL on allocation failure or malformed labels (values must
 * be escaped: see ec_metrics_escape_label). */
struct ec_metric *ec_metrics_counter(struct ec_metrics *m, const char *name,
                                     const char *help, const char *labels);
struct ec_metric *ec_metrics_gauge(struct ec_metrics *m, const char *name,
                                   const char *help, const char *labels);
/* A gauge whose value is read by calling fn(arg) at exposition time. */
struct ec_metric *ec_metrics_gauge_fn(struct ec_metrics *m, const char *name,
                                      const char *help, const char *labels,
                                      double (*fn)(void *), void *arg);
/* A histogram with `n` ascending upper bounds (copied); +Inf is implicit. */
struct ec_metric *ec_metrics_histogram(struct ec_metrics *m, const char *name,
                                       const char *help, const char *labels,
                                       const double *bounds, size_t n);

static inline void ec_metric_add(struct ec_metric *c, double v) { if (c) c->value += v; }
static inline void ec_metric_inc(struct ec_metric *c) { if (c) c->value += 1; }
static inline void ec_metric_set(struct ec_metric *g, double v) { if (g) g->value = v; }
void ec_metric_add_atomic(struct ec_metric *c, double v);
void ec_hist_observe(struct ec_metric *h, double v);

/* Escapes a label value for the exposition (backslash, double quote, newline) into out,
 * NUL-terminated, truncated to outlen. Returns the length the whole escaped value needs
 * (like snprintf), so a result >= outlen means it was cut. */
size_t ec_metrics_escape_label(const char *value, char *out, size_t outlen);

/* Renders the whole registry. Returns a NUL-terminated heap string owned by the caller
 * (free()), with its length in *len, or NULL on allocation failure. */
char *ec_metrics_render(struct ec_metrics *m, size_t *len);

/* Content-Type of the exposition. */
#define EC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
