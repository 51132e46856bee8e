/* test_ec_svc: service prefixes (parsing, longest match, default) and the bounded scope
 * name table (slots, "_other" for invalid names and overflow). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "ec_err.h"
#include "ec_svc.h"

struct add_row {
	const char *name;
	const char *item;
	int rc;
};

static const struct add_row add_rows[] = {
	{ "a name and a prefix is a service", "vod=/v/", 0 },
	{ "a prefix without trailing slash is accepted", "big=/big", 0 },
	{ "no equals sign is refused", "vod/v/", EC_EINVAL },
	{ "an empty name is refused", "=/v/", EC_EINVAL },
	{ "a dot in the name is refused", "v.od=/v/", EC_EINVAL },
	{ "a name over 32 characters is refused", "abcdefghijklmnopqrstuvwxyz0123456=/v/",
	  EC_EINVAL },
	{ "a prefix not starting with a slash is refused", "vod=v/", EC_EINVAL },
	{ "an empty prefix is refused", "vod=", EC_EINVAL },
	{ "a space in the prefix is refused", "vod=/v /", EC_EINVAL },
	{ "a query in the prefix is refused", "vod=/v?x", EC_EINVAL },
};

static void test_add(void **state)
{
	(void)state;
	for (size_t i = 0; i < EC_ARRAY_LEN(add_rows); i++) {
		struct ec_svc_map m;
		char why[256] = "";
		int rc;

		ec_svc_map_init(&m);
		rc = ec_svc_map_add(&m, add_rows[i].item, why, sizeof why);
		if (rc != add_rows[i].rc)
			fail_msg("%s: got %d (%s)", add_rows[i].name, rc, why);
		assert_int_equal(m.n, rc == 0 ? 2 : 1);
		if (rc != 0)
			assert_true(why[0] != '\0');
	}
}

static void test_add_limits(void **state)
{
	struct ec_svc_map m;
	char item[64], why[256];

	(void)state;
	ec_svc_map_init(&m);
	assert_int_equal(ec_svc_map_add(&m, "vod=/v/", why, sizeof why), 0);
	/* the same name may own several prefixes, a prefix belongs to one service */
	assert_int_equal(ec_svc_map_add(&m, "vod=/hls/", why, sizeof why), 0);
	assert_int_equal(ec_svc_map_add(&m, "live=/v/", why, sizeof why), EC_EINVAL);
	for (int i = 2; i < EC_SVC_MAX; i++) {
		snprintf(item, sizeof item, "s%d=/p%d/", i, i);
		assert_int_equal(ec_svc_map_add(&m, item, why, sizeof why), 0);
	}
	assert_int_equal(m.n, EC_SVC_MAX + 1);
	assert_int_equal(ec_svc_map_add(&m, "one-more=/x/", why, sizeof why), EC_ERANGE);
}

struct match_row {
	const char *name;
	const char *path;
	const char *service;
};

static const struct match_row match_rows[] = {
	{ "a path under a prefix is that service", "/v/movie/seg1.ts", "vod" },
	{ "the longest prefix wins", "/v/live/chan1.m3u8", "live" },
	{ "a path matching no prefix is default", "/other/x", "default" },
	{ "a path shorter than the prefix is default", "/v", "default" },
	{ "a prefix without slash matches by bytes", "/bigfile.iso", "files" },
};

static void test_match(void **state)
{
	struct ec_svc_map m;
	char why[256];

	(void)state;
	ec_svc_map_init(&m);
	assert_int_equal(ec_svc_map_add(&m, "vod=/v/", why, sizeof why), 0);
	assert_int_equal(ec_svc_map_add(&m, "live=/v/live/", why, sizeof why), 0);
	assert_int_equal(ec_svc_map_add(&m, "files=/big", why, sizeof why), 0);
	for (size_t i = 0; i < EC_ARRAY_LEN(match_rows); i++) {
		const struct match_row *r = &match_rows[i];
		size_t k = ec_svc_map_match(&m, r->path, strlen(r->path));

		if (strcmp(m.svc[k].name, r->service) != 0)
			fail_msg("%s: got %s", r->name, m.svc[k].name);
	}
}

static void test_scope_name(void **state)
{
	(void)state;
	assert_string_equal(ec_svc_scope_name("eu-west"), "eu-west");
	assert_string_equal(ec_svc_scope_name("eu.west"), "_other");
	assert_string_equal(ec_svc_scope_name(""), "_other");
}

static void test_tab(void **state)
{
	struct ec_svc_tab t;
	char name[16];
	size_t a, b;

	(void)state;
	ec_svc_tab_init(&t, 4);
	a = ec_svc_tab_slot(&t, "eu-west", 7);
	assert_int_not_equal(a, 0);
	assert_int_equal(ec_svc_tab_slot(&t, "eu-westX", 7), a); /* len bounds the name */
	b = ec_svc_tab_slot(&t, "us-east", 7);
	assert_int_not_equal(b, a);
	assert_string_equal(t.names[b], "us-east");
	/* invalid names go to _other, and do not use a slot */
	assert_int_equal(ec_svc_tab_slot(&t, "eu.west", 7), 0);
	assert_int_equal(ec_svc_tab_slot(&t, "", 0), 0);
	assert_int_equal(ec_svc_tab_slot(&t, "_other", 6), 0);
	assert_int_equal(ec_svc_tab_slot(&t, "ap", 2), 3);
	/* full: further names are counted under _other, known ones keep their slot */
	assert_int_equal(ec_svc_tab_slot(&t, "sa", 2), 0);
	assert_int_equal(t.overflow, 1);
	assert_int_equal(ec_svc_tab_slot(&t, "us-east", 7), b);
	ec_svc_tab_init(&t, 0);
	for (int i = 1; i < EC_SVC_TAB_MAX; i++) {
		snprintf(name, sizeof name, "r%d", i);
		assert_int_equal(ec_svc_tab_slot(&t, name, strlen(name)), (size_t)i);
	}
	assert_int_equal(ec_svc_tab_slot(&t, "late", 4), 0);
	assert_int_equal(ec_svc_tab_slot(&t, "r200", 4), 200);
}

/* The last-name shortcut compares bytes: one buffer reused for other names (and for an
 * invalid one) still gets each name's own slot. */
static void test_tab_same_buffer_other_names(void **state)
{
	static struct ec_svc_tab t;
	char buf[32];
	size_t a, b;

	(void)state;
	ec_svc_tab_init(&t, 0);
	strcpy(buf, "alpha");
	a = ec_svc_tab_slot(&t, buf, strlen(buf));
	assert_int_equal(ec_svc_tab_slot(&t, buf, strlen(buf)), a);
	strcpy(buf, "beta");
	b = ec_svc_tab_slot(&t, buf, strlen(buf));
	assert_int_not_equal(a, b);
	assert_int_equal(ec_svc_tab_slot(&t, buf, strlen(buf)), b);
	strcpy(buf, "alphax");
	assert_int_not_equal(ec_svc_tab_slot(&t, buf, 5), b); /* "alpha" by length */
	assert_int_equal(ec_svc_tab_slot(&t, buf, 5), a);
	strcpy(buf, "bet");
	assert_int_not_equal(ec_svc_tab_slot(&t, buf, 3), b); /* a prefix is another name */
	strcpy(buf, "be ta");
	assert_int_equal(ec_svc_tab_slot(&t, buf, 5), 0);      /* invalid: "_other" */
	strcpy(buf, "alpha");
	assert_int_equal(ec_svc_tab_slot(&t, buf, 5), a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add),
		cmocka_unit_test(test_add_limits),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_scope_name),
		cmocka_unit_test(test_tab),
		cmocka_unit_test(test_tab_same_buffer_other_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
