/* test_ec_metrics: the Prometheus text exposition of a registry, histogram buckets, label
 * escaping and atomic adds, through common/ec_metrics.h only. Exact text comparisons. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ec_metrics.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static double conns_fn(void *arg)
{
	return *(int *)arg;
}

static void expect_render(struct ec_metrics *m, const char *want)
{
	size_t len = 0;
	char *text = ec_metrics_render(m, &len);

	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	if (strcmp(text, want) != 0)
		fail_msg("got:\n%s\nwant:\n%s", text, want);
	free(text);
}

static void test_small_registry_exact_text(void **state)
{
	struct ec_metrics *m = ec_metrics_new();
	struct ec_metric *a, *b, *g, *c2;
	int conns = 7;

	a = ec_metrics_counter(m, "echos_misses_total", "SLA misses by reason.",
	                       "reason=\"stale\"");
	g = ec_metrics_gauge(m, "echos_boxes", "Boxes in the table.", NULL);
	b = ec_metrics_counter(m, "echos_misses_total", "SLA misses by reason.",
	                       "reason=\"full\"");
	ec_metrics_gauge_fn(m, "echos_conns", "Open connections.", NULL, conns_fn, &conns);
	c2 = ec_metrics_counter(m, "echos_misses_total", "ignored", "reason=\"stale\"");
	assert_ptr_equal(a, c2);   /* same name and labels: the same series */
	ec_metric_inc(a);
	ec_metric_add(a, 2);
	ec_metric_add(b, 0.5);
	ec_metric_set(g, 3);
	ec_metric_add_atomic(b, 1e15);
	expect_render(m,
	              "# HELP echos_misses_total SLA misses by reason.\n"
	              "# TYPE echos_misses_total counter\n"
	              "echos_misses_total{reason=\"stale\"} 3\n"
	              "echos_misses_total{reason=\"full\"} 1000000000000000.5\n"
	              "# HELP echos_boxes Boxes in the table.\n"
	              "# TYPE echos_boxes gauge\n"
	              "echos_boxes 3\n"
	              "# HELP echos_conns Open connections.\n"
	              "# TYPE echos_conns gauge\n"
	              "echos_conns 7\n");
	ec_metrics_free(m);
}

static void test_histogram_buckets(void **state)
{
	static const double bounds[] = { 0.005, 0.1, 1 };
	struct ec_metrics *m = ec_metrics_new();
	struct ec_metric *h = ec_metrics_histogram(m, "echos_ttfb_seconds", "Time to first byte.",
	                                           "proto=\"h2\"", bounds, LEN(bounds));
	struct ec_metric *h2 = ec_metrics_histogram(m, "echos_ttfb_seconds", "Time to first byte.",
	                                            NULL, bounds, LEN(bounds));

	ec_hist_observe(h, 0.005);  /* le is inclusive */
	ec_hist_observe(h, 0.05);
	ec_hist_observe(h, 0.1);
	ec_hist_observe(h, 3);
	expect_render(m,
	              "# HELP echos_ttfb_seconds Time to first byte.\n"
	              "# TYPE echos_ttfb_seconds histogram\n"
	              "echos_ttfb_seconds_bucket{proto=\"h2\",le=\"0.005\"} 1\n"
	              "echos_ttfb_seconds_bucket{proto=\"h2\",le=\"0.1\"} 3\n"
	              "echos_ttfb_seconds_bucket{proto=\"h2\",le=\"1\"} 3\n"
	              "echos_ttfb_seconds_bucket{proto=\"h2\",le=\"+Inf\"} 4\n"
	              "echos_ttfb_seconds_sum{proto=\"h2\"} 3.155\n"
	              "echos_ttfb_seconds_count{proto=\"h2\"} 4\n"
	              "echos_ttfb_seconds_bucket{le=\"0.005\"} 0\n"
	              "echos_ttfb_seconds_bucket{le=\"0.1\"} 0\n"
	              "echos_ttfb_seconds_bucket{le=\"1\"} 0\n"
	              "echos_ttfb_seconds_bucket{le=\"+Inf\"} 0\n"
	              "echos_ttfb_seconds_sum 0\n"
	              "echos_ttfb_seconds_count 0\n");
	(void)h2;
	ec_metrics_free(m);
}

struct escape_row {
	const char *name;
	const char *in;
	size_t outlen;
	const char *want;
	size_t want_need;
};

static const struct escape_row escape_rows[] = {
	{ "plain value is unchanged", "stale", 64, "stale", 5 },
	{ "double quote is escaped", "a\"b", 64, "a\\\"b", 4 },
	{ "backslash is escaped", "a\\b", 64, "a\\\\b", 4 },
	{ "newline is escaped", "a\nb", 64, "a\\nb", 4 },
	{ "cut never splits an escape", "ab\"c", 4, "ab", 5 },
};

static void test_escape_row(void **state)
{
	const struct escape_row *r = *state;
	char out[64];

	assert_int_equal(ec_metrics_escape_label(r->in, out, r->outlen), r->want_need);
	assert_string_equal(out, r->want);
}

static void test_escaped_labels_render_and_help_escapes(void **state)
{
	struct ec_metrics *m = ec_metrics_new();
	char v[64], labels[96];
	struct ec_metric *c;

	ec_metrics_escape_label("svc \"a\"\\b\nc", v, sizeof v);
	snprintf(labels, sizeof labels, "service=\"%s\"", v);
	c = ec_metrics_counter(m, "echos_bytes_total", "Bytes\\sent\nby service.", labels);
	assert_non_null(c);
	ec_metric_add(c, 10);
	expect_render(m,
	              "# HELP echos_bytes_total Bytes\\\\sent\\nby service.\n"
	              "# TYPE echos_bytes_total counter\n"
	              "echos_bytes_total{service=\"svc \\\"a\\\"\\\\b\\nc\"} 10\n");
	ec_metrics_free(m);
}

struct labels_row {
	const char *name;
	const char *labels;
	int ok;
};

static const struct labels_row labels_rows[] = {
	{ "two labels are accepted", "a=\"1\",b_2=\"x\"", 1 },
	{ "escaped quote is accepted", "a=\"\\\"\"", 1 },
	{ "unescaped quote is refused", "a=\"x\"y\"", 0 },
	{ "raw newline is refused", "a=\"x\ny\"", 0 },
	{ "unknown escape is refused", "a=\"\\t\"", 0 },
	{ "missing quotes are refused", "a=1", 0 },
	{ "trailing comma is refused", "a=\"1\",", 0 },
	{ "label name starting with a digit is refused", "1a=\"1\"", 0 },
};

static void test_labels_row(void **state)
{
	const struct labels_row *r = *state;
	struct ec_metrics *m = ec_metrics_new();

	assert_int_equal(ec_metrics_counter(m, "x_total", "x", r->labels) != NULL, r->ok);
	ec_metrics_free(m);
}

static void test_histogram_refuses_le_label(void **state)
{
	static const double b[] = { 1 };
	struct ec_metrics *m = ec_metrics_new();

	assert_null(ec_metrics_histogram(m, "h", "h", "le=\"1\"", b, 1));
	ec_metrics_free(m);
}

static void test_null_metric_is_a_noop(void **state)
{
	ec_metric_inc(NULL);
	ec_metric_add(NULL, 1);
	ec_metric_set(NULL, 1);
	ec_metric_add_atomic(NULL, 1);
	ec_hist_observe(NULL, 1);
	ec_metrics_free(NULL);
}

#define ADD_ROWS(rows, fn)                                                            \
	for (i = 0; i < LEN(rows); i++)                                              \
		tests[n++] = (struct CMUnitTest){ rows[i].name, fn, NULL, NULL,      \
		                                  (void *)&rows[i] }
#define ADD(fn, nm) tests[n++] = (struct CMUnitTest){ nm, fn, NULL, NULL, NULL }

int main(void)
{
	struct CMUnitTest tests[64];
	size_t i, n = 0;

	ADD(test_small_registry_exact_text, "small registry renders exactly, HELP/TYPE once per family");
	ADD(test_histogram_buckets, "histogram renders cumulative buckets, sum and count");
	ADD_ROWS(escape_rows, test_escape_row);
	ADD(test_escaped_labels_render_and_help_escapes, "escaped labels and HELP render exactly");
	ADD_ROWS(labels_rows, test_labels_row);
	ADD(test_histogram_refuses_le_label, "histogram refuses a label named le");
	ADD(test_null_metric_is_a_noop, "updates of a NULL series do nothing");
	return _cmocka_run_group_tests("ec_metrics", tests, n, NULL, NULL);
}
