/* test_shim_req: the origin-shim's request checks: which request targets are refused
 * (traversal, encoded slashes and NULs, control bytes) and how a Range is read.
 * The Makefile links unit tests with common/ and policy/ only, so the module is included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ec_err.h"

#include "../../origin-shim/shim_req.c"

struct target_row {
	const char *name;
	const char *target;
	int is_ok;
};

static const struct target_row target_rows[] = {
	{ "plain path is accepted", "/v/demo/seg0.ts", 1 },
	{ "root is accepted", "/", 1 },
	{ "query is accepted and may hold encoded slashes", "/a?x=%2F..%2F&y=1", 1 },
	{ "dots inside a name are accepted", "/v/a..b/.hidden/x...", 1 },
	{ "encoded ordinary bytes are accepted", "/v/caf%C3%A9%20x", 1 },
	{ "empty segments are accepted", "/v//x", 1 },
	{ "a dot-dot in the query only is accepted", "/x?p=../../etc", 1 },
	{ "missing leading slash is refused", "v/x", 0 },
	{ "asterisk form is refused", "*", 0 },
	{ "absolute form is refused", "http://h/x", 0 },
	{ "empty target is refused", "", 0 },
	{ "dot-dot segment is refused", "/v/../etc/passwd", 0 },
	{ "trailing dot-dot is refused", "/v/..", 0 },
	{ "dot segment is refused", "/v/./x", 0 },
	{ "encoded dot-dot is refused", "/v/%2e%2E/x", 0 },
	{ "half-encoded dot-dot is refused", "/v/.%2e/x", 0 },
	{ "dot-dot before the query is refused", "/v/..?x=1", 0 },
	{ "encoded slash is refused", "/a%2fb", 0 },
	{ "encoded slash in upper case is refused", "/a%2Fb", 0 },
	{ "encoded backslash is refused", "/a%5Cb", 0 },
	{ "backslash is refused", "/a\\b", 0 },
	{ "encoded NUL is refused", "/a%00b", 0 },
	{ "encoded NUL in the query is refused", "/a?x=%00", 0 },
	{ "encoded newline in the path is refused", "/a%0d%0ab", 0 },
	{ "bad escape is refused", "/a%zzb", 0 },
	{ "truncated escape is refused", "/a%2", 0 },
	{ "space is refused", "/a b", 0 },
	{ "tab is refused", "/a\tb", 0 },
	{ "DEL is refused", "/a\x7f", 0 },
	{ "fragment is refused", "/a#b", 0 },
};

static void test_targets(void **state)
{
	for (size_t i = 0; i < EC_ARRAY_LEN(target_rows); i++) {
		const struct target_row *r = &target_rows[i];
		const char *why = shim_req_check_target(r->target);
		if ((why == NULL) != r->is_ok)
			fail_msg("%s: \"%s\" gave %s", r->name, r->target, why ? why : "ok");
	}
}

static void test_null_target_is_refused(void **state)
{
	assert_non_null(shim_req_check_target(NULL));
}

struct range_row {
	const char *name;
	const char *value;
	uint64_t size;
	enum shim_range want;
	uint64_t first, last;
};

static const struct range_row range_rows[] = {
	{ "closed range", "bytes=10-19", 100, SHIM_RANGE_PART, 10, 19 },
	{ "open range runs to the end", "bytes=90-", 100, SHIM_RANGE_PART, 90, 99 },
	{ "suffix range is the last n bytes", "bytes=-5", 100, SHIM_RANGE_PART, 95, 99 },
	{ "suffix longer than the object is all of it", "bytes=-500", 100, SHIM_RANGE_PART, 0, 99 },
	{ "end past the size is clipped", "bytes=95-1000", 100, SHIM_RANGE_PART, 95, 99 },
	{ "single first byte", "bytes=0-0", 100, SHIM_RANGE_PART, 0, 0 },
	{ "single last byte", "bytes=99-99", 100, SHIM_RANGE_PART, 99, 99 },
	{ "unit is case-insensitive, spaces allowed", " Bytes = 1-2 ", 100, SHIM_RANGE_PART, 1, 2 },
	{ "start at the size is unsatisfiable", "bytes=100-", 100, SHIM_RANGE_UNSAT, 0, 0 },
	{ "start past the size is unsatisfiable", "bytes=200-300", 100, SHIM_RANGE_UNSAT, 0, 0 },
	{ "zero-length suffix is unsatisfiable", "bytes=-0", 100, SHIM_RANGE_UNSAT, 0, 0 },
	{ "any range of an empty object is unsatisfiable", "bytes=0-", 0, SHIM_RANGE_UNSAT, 0, 0 },
	{ "suffix of an empty object is unsatisfiable", "bytes=-1", 0, SHIM_RANGE_UNSAT, 0, 0 },
	{ "end before start is ignored", "bytes=5-2", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "a list of ranges is ignored", "bytes=0-1,5-6", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "another unit is ignored", "items=0-1", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "missing equals sign is ignored", "bytes 0-1", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "lone dash is ignored", "bytes=-", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "negative number is ignored", "bytes=--1", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "junk after the range is ignored", "bytes=1-2x", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "overflowing number is ignored", "bytes=99999999999999999999-", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "empty value is ignored", "", 100, SHIM_RANGE_NONE, 0, 0 },
	{ "large offsets work", "bytes=4294967296-4294967305", 8589934592ull, SHIM_RANGE_PART,
	  4294967296ull, 4294967305ull },
};

static void test_ranges(void **state)
{
	for (size_t i = 0; i < EC_ARRAY_LEN(range_rows); i++) {
		const struct range_row *r = &range_rows[i];
		uint64_t first = 12345, last = 12345;
		enum shim_range got = shim_req_parse_range(r->value, r->size, &first, &last);
		if (got != r->want)
			fail_msg("%s: \"%s\" gave %d, want %d", r->name, r->value, got, r->want);
		if (got == SHIM_RANGE_PART && (first != r->first || last != r->last))
			fail_msg("%s: got %llu-%llu, want %llu-%llu", r->name,
			         (unsigned long long)first, (unsigned long long)last,
			         (unsigned long long)r->first, (unsigned long long)r->last);
	}
}

static void test_null_range_is_none(void **state)
{
	uint64_t a, b;
	assert_int_equal(shim_req_parse_range(NULL, 10, &a, &b), SHIM_RANGE_NONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_targets),
		cmocka_unit_test(test_null_target_is_refused),
		cmocka_unit_test(test_ranges),
		cmocka_unit_test(test_null_range_is_none),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
