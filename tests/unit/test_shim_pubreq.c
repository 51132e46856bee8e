/* test_shim_pubreq: the publish announcement parser: which bodies are accepted, what
 * each refusal says, and the JSON answers. The Makefile links unit tests with common/
 * and policy/ only, so the module (and shim_req, which it uses) is included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ec_err.h"

#include "../../origin-shim/shim_req.c"
#include "../../origin-shim/shim_pubreq.c"

struct parse_row {
	const char *name;
	const char *body;
	const char *err;   /* NULL: accepted; else a substring of the reason */
};

static const struct parse_row parse_rows[] = {
	{ "minimal announcement is accepted", "{\"path\":\"/v/a.m3u8\",\"expected_rps\":50}",
	  NULL },
	{ "every key, any order, whitespace around is accepted",
	  " \n{ \"ttl_s\" : 60 , \"regions\" : [ \"eu-west\" , \"us.east_1\" ] ,"
	  "\"size_bytes\":0, \"expected_rps\": 0.5e1, \"path\": \"\\/v\\/b.ts\" }\r\n", NULL },
	{ "escaped ASCII is decoded", "{\"path\":\"/v/\\u0061.ts\",\"expected_rps\":1}", NULL },
	{ "empty body is refused", "", "expected a JSON object" },
	{ "an array is refused", "[1]", "expected a JSON object at byte 0, got '['" },
	{ "empty object lacks the path", "{}", "path: required" },
	{ "missing expected_rps is refused", "{\"path\":\"/a\"}", "expected_rps: required" },
	{ "unknown key is refused", "{\"path\":\"/a\",\"expected_rps\":1,\"prio\":1}",
	  "unknown key \"prio\"" },
	{ "duplicate key is refused", "{\"path\":\"/a\",\"path\":\"/b\",\"expected_rps\":1}",
	  "key \"path\" appears twice" },
	{ "trailing comma is refused", "{\"path\":\"/a\",\"expected_rps\":1,}",
	  "expected key at byte 30, got '}'" },
	{ "data after the object is refused", "{\"path\":\"/a\",\"expected_rps\":1}{}",
	  "unexpected data after the JSON object" },
	{ "unterminated string is refused", "{\"path\":\"/a", "unterminated string" },
	{ "truncated object is refused", "{\"path\":\"/a\",\"expected_rps\":1",
	  "got the end of the body" },
	{ "single quotes are refused", "{'path':'/a'}", "got '''" },
	{ "raw control byte in a string is refused", "{\"path\":\"/a\tb\",\"expected_rps\":1}",
	  "control byte in string" },
	{ "raw non-ASCII byte is refused", "{\"path\":\"/caf\xc3\xa9\",\"expected_rps\":1}",
	  "only printable ASCII" },
	{ "escaped non-ASCII is refused", "{\"path\":\"/caf\\u00e9\",\"expected_rps\":1}",
	  "only printable ASCII" },
	{ "escaped NUL is refused", "{\"path\":\"/a\\u0000b\",\"expected_rps\":1}",
	  "only printable ASCII" },
	{ "escaped newline is refused", "{\"path\":\"/a\\nb\",\"expected_rps\":1}",
	  "control character" },
	{ "bad escape is refused", "{\"path\":\"/a\\qb\",\"expected_rps\":1}", "bad escape" },
	{ "short unicode escape is refused", "{\"path\":\"/a\\u12\",\"expected_rps\":1}",
	  "bad \\u escape" },
	{ "relative path is refused", "{\"path\":\"v/a\",\"expected_rps\":1}",
	  "path: request target must start with '/'" },
	{ "dot-dot path is refused", "{\"path\":\"/v/../etc/passwd\",\"expected_rps\":1}",
	  "path: dot segment" },
	{ "encoded dot-dot path is refused", "{\"path\":\"/v/%2e%2e/x\",\"expected_rps\":1}",
	  "path: dot segment" },
	{ "encoded slash is refused", "{\"path\":\"/a%2fb\",\"expected_rps\":1}",
	  "path: encoded slash" },
	{ "empty segment is refused as the redirector does",
	  "{\"path\":\"/v//x\",\"expected_rps\":1}", "path: empty segment" },
	{ "query is refused", "{\"path\":\"/a?x=1\",\"expected_rps\":1}",
	  "without query" },
	{ "path of a number is refused", "{\"path\":1,\"expected_rps\":1}",
	  "expected path at byte 8, got '1'" },
	{ "zero rps is accepted", "{\"path\":\"/a\",\"expected_rps\":0}", NULL },
	{ "a billion rps is accepted", "{\"path\":\"/a\",\"expected_rps\":1e9}", NULL },
	{ "negative rps is refused", "{\"path\":\"/a\",\"expected_rps\":-3}",
	  "expected_rps: expected a number from 0 to 1000000000, got -3" },
	{ "huge rps is refused", "{\"path\":\"/a\",\"expected_rps\":1e300}",
	  "from 0 to 1000000000" },
	{ "overflowing rps is refused", "{\"path\":\"/a\",\"expected_rps\":1e999}",
	  "from 0 to 1000000000" },
	{ "rps as a string is refused", "{\"path\":\"/a\",\"expected_rps\":\"5\"}",
	  "expected_rps: expected a number" },
	{ "leading zero is refused", "{\"path\":\"/a\",\"expected_rps\":05}", "leading zero" },
	{ "bare dot number is refused", "{\"path\":\"/a\",\"expected_rps\":1.}",
	  "expected digits after '.'" },
	{ "fractional ttl is refused", "{\"path\":\"/a\",\"expected_rps\":1,\"ttl_s\":1.5}",
	  "ttl_s: expected a whole number from 1 to 604800, got 1.5" },
	{ "zero ttl is refused", "{\"path\":\"/a\",\"expected_rps\":1,\"ttl_s\":0}",
	  "ttl_s: expected a whole number" },
	{ "ttl over a week is refused", "{\"path\":\"/a\",\"expected_rps\":1,\"ttl_s\":604801}",
	  "ttl_s: expected a whole number" },
	{ "negative size is refused", "{\"path\":\"/a\",\"expected_rps\":1,\"size_bytes\":-1}",
	  "size_bytes: expected a whole number" },
	{ "overflowing size is refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"size_bytes\":99999999999999999999999}",
	  "size_bytes: expected a whole number" },
	{ "empty regions are accepted", "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[ ]}",
	  NULL },
	{ "regions as a string are refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":\"eu\"}",
	  "regions: an array" },
	{ "region with a slash is refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[\"eu/west\"]}",
	  "regions[0]: expected 1-63 letters" },
	{ "empty region name is refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[\"eu\",\"\"]}",
	  "regions[1]: expected 1-63 letters" },
	{ "region of 64 bytes is refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[\""
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"]}",
	  "regions[0]: longer than 63 bytes" },
	{ "duplicate region is refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[\"eu\",\"us\",\"eu\"]}",
	  "regions[2]: \"eu\" is listed twice" },
	{ "nested array in regions is refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[[\"eu\"]]}",
	  "expected regions[0]" },
	{ "unclosed regions are refused",
	  "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[\"eu\"}",
	  "expected ',' or ']' in regions" },
	{ "null is refused", "{\"path\":null,\"expected_rps\":1}", "expected path" },
};

static void test_parse(void **state)
{
	for (size_t i = 0; i < EC_ARRAY_LEN(parse_rows); i++) {
		const struct parse_row *r = &parse_rows[i];
		struct shim_pubreq out;
		char err[512];
		int rc = shim_pubreq_parse(r->body, strlen(r->body), &out, err, sizeof err);

		if (r->err == NULL && rc != 0)
			fail_msg("%s: refused: %s", r->name, err);
		if (r->err != NULL && rc != EC_EINVAL)
			fail_msg("%s: accepted, want \"%s\"", r->name, r->err);
		if (r->err != NULL && strstr(err, r->err) == NULL)
			fail_msg("%s: said \"%s\", want \"%s\"", r->name, err, r->err);
		if (rc != 0 && strchr(err, '\n') != NULL)
			fail_msg("%s: reason is not one line", r->name);
	}
}

static void test_defaults_when_optional_keys_are_absent(void **state)
{
	const char *b = "{\"path\":\"/v/a.m3u8\",\"expected_rps\":50}";
	struct shim_pubreq r;
	char err[256];

	assert_int_equal(shim_pubreq_parse(b, strlen(b), &r, err, sizeof err), 0);
	assert_string_equal(r.path, "/v/a.m3u8");
	assert_true(r.expected_rps == 50.0);
	assert_int_equal(r.ttl_s, SHIM_PUB_TTL_DEFAULT_S);
	assert_int_equal(r.size_bytes, 0);
	assert_int_equal(r.n_regions, 1);
	assert_string_equal(r.regions[0], SHIM_PUB_ALL_REGIONS);
}

static void test_empty_regions_mean_all_regions(void **state)
{
	const char *b = "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[]}";
	struct shim_pubreq r;
	char err[256];

	assert_int_equal(shim_pubreq_parse(b, strlen(b), &r, err, sizeof err), 0);
	assert_int_equal(r.n_regions, 1);
	assert_string_equal(r.regions[0], SHIM_PUB_ALL_REGIONS);
}

static void test_every_field_is_read(void **state)
{
	const char *b = "{\"ttl_s\":60,\"regions\":[\"eu-west\",\"us.east_1\"],"
	                "\"size_bytes\":1099511627776,\"expected_rps\":2.5,\"path\":\"/x\"}";
	struct shim_pubreq r;
	char err[256];

	assert_int_equal(shim_pubreq_parse(b, strlen(b), &r, err, sizeof err), 0);
	assert_int_equal(r.ttl_s, 60);
	assert_int_equal(r.size_bytes, 1099511627776ull);
	assert_true(r.expected_rps == 2.5);
	assert_int_equal(r.n_regions, 2);
	assert_string_equal(r.regions[1], "us.east_1");
}

static void test_body_is_not_read_past_its_length(void **state)
{
	const char *b = "{\"path\":\"/a\",\"expected_rps\":1}GARBAGE";
	struct shim_pubreq r;
	char err[256];

	assert_int_equal(shim_pubreq_parse(b, strlen(b) - 7, &r, err, sizeof err), 0);
	/* cut inside a number: the parser must stop at the end, not read on */
	assert_int_equal(shim_pubreq_parse(b, 27, &r, err, sizeof err), EC_EINVAL);
}

static void test_too_many_regions_are_refused(void **state)
{
	char b[2048];
	size_t n = (size_t)snprintf(b, sizeof b, "{\"path\":\"/a\",\"expected_rps\":1,\"regions\":[");
	struct shim_pubreq r;
	char err[256];

	for (int i = 0; i <= SHIM_PUB_MAX_REGIONS; i++)
		n += (size_t)snprintf(b + n, sizeof b - n, "%s\"r%d\"", i ? "," : "", i);
	snprintf(b + n, sizeof b - n, "]}");
	assert_int_equal(shim_pubreq_parse(b, strlen(b), &r, err, sizeof err), EC_EINVAL);
	assert_non_null(strstr(err, "more than 32 names"));
}

static void test_path_over_the_bound_is_refused(void **state)
{
	static char b[SHIM_PUB_MAX_PATH + 100];
	struct shim_pubreq r;
	char err[256];
	size_t n = (size_t)snprintf(b, sizeof b, "{\"path\":\"/");

	memset(b + n, 'a', SHIM_PUB_MAX_PATH);
	snprintf(b + n + SHIM_PUB_MAX_PATH, sizeof b - n - SHIM_PUB_MAX_PATH,
	         "\",\"expected_rps\":1}");
	assert_int_equal(shim_pubreq_parse(b, strlen(b), &r, err, sizeof err), EC_EINVAL);
	assert_non_null(strstr(err, "path: longer than 2048 bytes"));
}

static void test_accepted_json_escapes_and_lists_regions(void **state)
{
	const char *b = "{\"path\":\"/v/\\\"q\\\".ts\",\"expected_rps\":1,\"regions\":[\"a\",\"b\"]}";
	struct shim_pubreq r;
	char err[256], out[512];
	int n;

	assert_int_equal(shim_pubreq_parse(b, strlen(b), &r, err, sizeof err), 0);
	n = shim_pubreq_accepted_json(&r, out, sizeof out);
	assert_true(n > 0);
	assert_string_equal(out, "{\"accepted\": true, \"path\": \"/v/\\\"q\\\".ts\", "
	                    "\"regions\": [\"a\", \"b\"], \"ttl_s\": 3600}\n");
	assert_int_equal(shim_pubreq_accepted_json(&r, out, 20), EC_ERANGE);
}

static void test_error_json_is_one_escaped_line_that_fits(void **state)
{
	char out[64], longmsg[300];

	shim_pubreq_error_json("unknown key \"x\\\"", out, sizeof out);
	assert_string_equal(out, "{\"error\": \"unknown key \\\"x\\\\\\\"\"}\n");
	memset(longmsg, '"', sizeof longmsg - 1);
	longmsg[sizeof longmsg - 1] = '\0';
	shim_pubreq_error_json(longmsg, out, sizeof out);
	assert_true(strlen(out) < sizeof out);
	assert_non_null(strstr(out, "\"}\n"));
	assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_defaults_when_optional_keys_are_absent),
		cmocka_unit_test(test_empty_regions_mean_all_regions),
		cmocka_unit_test(test_every_field_is_read),
		cmocka_unit_test(test_body_is_not_read_past_its_length),
		cmocka_unit_test(test_too_many_regions_are_refused),
		cmocka_unit_test(test_path_over_the_bound_is_refused),
		cmocka_unit_test(test_accepted_json_escapes_and_lists_regions),
		cmocka_unit_test(test_error_json_is_one_escaped_line_that_fits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
