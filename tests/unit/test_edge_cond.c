/* test_edge_cond: RFC 9110 preconditions and byte ranges as the box answers them on hits.
 * Each row names the expected behaviour. The module is included: the Makefile links unit
 * tests with common/ and policy/ only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../edge/edge_cond.c"

#define LM "Tue, 01 Oct 2024 10:00:00 GMT"
#define ETAG "\"v1\""

struct cond_row {
	const char *name;
	struct edge_cond_in in;
	int status;
	uint64_t first, last;
};

static const struct cond_row rows[] = {
	{ "no conditions: 200 whole", { .etag = ETAG, .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "bytes=0-9 is 206 of 10 bytes",
	  { .range = "bytes=0-9", .etag = ETAG, .lastmod = LM, .len = 100 }, 206, 0, 9 },
	{ "open range bytes=90- runs to the end",
	  { .range = "bytes=90-", .etag = ETAG, .lastmod = LM, .len = 100 }, 206, 90, 99 },
	{ "suffix bytes=-10 is the last 10",
	  { .range = "bytes=-10", .etag = ETAG, .lastmod = LM, .len = 100 }, 206, 90, 99 },
	{ "suffix longer than the body is the whole body",
	  { .range = "bytes=-500", .etag = ETAG, .lastmod = LM, .len = 100 }, 206, 0, 99 },
	{ "end past the body is clipped",
	  { .range = "bytes=50-1000", .etag = ETAG, .lastmod = LM, .len = 100 }, 206, 50, 99 },
	{ "start past the body is 416",
	  { .range = "bytes=100-", .etag = ETAG, .lastmod = LM, .len = 100 }, 416, 0, 99 },
	{ "suffix of zero is 416",
	  { .range = "bytes=-0", .etag = ETAG, .lastmod = LM, .len = 100 }, 416, 0, 99 },
	{ "any range of an empty body is 416",
	  { .range = "bytes=0-", .etag = ETAG, .lastmod = LM, .len = 0 }, 416, 0, 0 },
	{ "several ranges give the whole body",
	  { .range = "bytes=0-1,5-6", .etag = ETAG, .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "end before start is ignored",
	  { .range = "bytes=9-1", .etag = ETAG, .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "other units are ignored",
	  { .range = "items=0-1", .etag = ETAG, .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "garbage range is ignored",
	  { .range = "bytes=abc", .etag = ETAG, .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "overflowing number is ignored",
	  { .range = "bytes=99999999999999999999999-", .etag = ETAG, .lastmod = LM, .len = 100 },
	  200, 0, 99 },
	{ "If-None-Match with the ETag is 304",
	  { .if_none_match = ETAG, .etag = ETAG, .lastmod = LM, .len = 100 }, 304, 0, 99 },
	{ "If-None-Match weak form matches (weak comparison)",
	  { .if_none_match = "W/\"v1\"", .etag = ETAG, .lastmod = LM, .len = 100 }, 304, 0, 99 },
	{ "If-None-Match in a list matches",
	  { .if_none_match = "\"x\", \"v1\"", .etag = ETAG, .lastmod = LM, .len = 100 }, 304, 0, 99 },
	{ "If-None-Match * is 304",
	  { .if_none_match = "*", .etag = ETAG, .lastmod = LM, .len = 100 }, 304, 0, 99 },
	{ "If-None-Match other tag is 200",
	  { .if_none_match = "\"v2\"", .etag = ETAG, .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "If-Modified-Since at Last-Modified is 304",
	  { .if_modified_since = LM, .etag = ETAG, .lastmod = LM, .len = 100 }, 304, 0, 99 },
	{ "If-Modified-Since before Last-Modified is 200",
	  { .if_modified_since = "Mon, 30 Sep 2024 10:00:00 GMT", .etag = ETAG, .lastmod = LM,
	    .len = 100 }, 200, 0, 99 },
	{ "If-Modified-Since is ignored when If-None-Match is present",
	  { .if_none_match = "\"v2\"", .if_modified_since = LM, .etag = ETAG, .lastmod = LM,
	    .len = 100 }, 200, 0, 99 },
	{ "bad If-Modified-Since date is ignored",
	  { .if_modified_since = "yesterday", .etag = ETAG, .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "If-Match other tag is 412",
	  { .if_match = "\"v2\"", .etag = ETAG, .lastmod = LM, .len = 100 }, 412, 0, 99 },
	{ "If-Match weak tag never matches strongly: 412",
	  { .if_match = "W/\"v1\"", .etag = ETAG, .lastmod = LM, .len = 100 }, 412, 0, 99 },
	{ "If-Match same tag passes to the range",
	  { .if_match = ETAG, .range = "bytes=0-0", .etag = ETAG, .lastmod = LM, .len = 100 },
	  206, 0, 0 },
	{ "If-Unmodified-Since before Last-Modified is 412",
	  { .if_unmodified_since = "Mon, 30 Sep 2024 10:00:00 GMT", .etag = ETAG, .lastmod = LM,
	    .len = 100 }, 412, 0, 99 },
	{ "If-Range with the ETag honours the range",
	  { .if_range = ETAG, .range = "bytes=0-9", .etag = ETAG, .lastmod = LM, .len = 100 },
	  206, 0, 9 },
	{ "If-Range with another ETag gives the whole body",
	  { .if_range = "\"v0\"", .range = "bytes=0-9", .etag = ETAG, .lastmod = LM, .len = 100 },
	  200, 0, 99 },
	{ "If-Range with the Last-Modified date honours the range",
	  { .if_range = LM, .range = "bytes=0-9", .etag = ETAG, .lastmod = LM, .len = 100 },
	  206, 0, 9 },
	{ "If-Range with another date gives the whole body",
	  { .if_range = "Mon, 30 Sep 2024 10:00:00 GMT", .range = "bytes=0-9", .etag = ETAG,
	    .lastmod = LM, .len = 100 }, 200, 0, 99 },
	{ "If-Range weak ETag gives the whole body",
	  { .if_range = "W/\"v1\"", .range = "bytes=0-9", .etag = ETAG, .lastmod = LM,
	    .len = 100 }, 200, 0, 99 },
	{ "no stored ETag: If-None-Match * does not match",
	  { .if_none_match = "*", .etag = "", .lastmod = LM, .len = 100 }, 200, 0, 99 },
};

static void test_cond_rows(void **state)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		struct edge_cond_out out;
		print_message("row: %s\n", rows[i].name);
		edge_cond_eval(&rows[i].in, &out);
		assert_int_equal(out.status, rows[i].status);
		if (out.status == 206 || out.status == 200) {
			assert_int_equal(out.first, rows[i].first);
			assert_int_equal(out.last, rows[i].last);
		}
	}
}

static void test_http_dates_round_trip_in_all_three_formats(void **state)
{
	time_t t, u;
	char buf[64];

	assert_int_equal(edge_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
	assert_int_equal(t, 784111777);
	assert_int_equal(edge_http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &u), 0);
	assert_int_equal(u, t);
	assert_int_equal(edge_http_date_parse("Sun Nov  6 08:49:37 1994", &u), 0);
	assert_int_equal(u, t);
	assert_string_equal(edge_http_date_format(t, buf, sizeof buf),
	                    "Sun, 06 Nov 1994 08:49:37 GMT");
	assert_int_equal(edge_http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT trailing", &u), -1);
	assert_int_equal(edge_http_date_parse(NULL, &u), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cond_rows),
		cmocka_unit_test(test_http_dates_round_trip_in_all_three_formats),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
