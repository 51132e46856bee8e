/* test_ec_net: address and prefix parsing, formatting and containment, and ec_addr_split,
 * through common/ec_net.h and common/ec_redis.h only. Table-driven, no sockets. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "ec_err.h"
#include "ec_net.h"
#include "ec_redis.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

struct prefix_row {
	const char *name;
	const char *in;
	int want;
	const char *want_text;  /* ec_prefix_ntop of the result */
};

static const struct prefix_row prefix_rows[] = {
	{ "v4 prefix parses", "192.0.2.0/24", 0, "192.0.2.0/24" },
	{ "v4 host bits are cleared", "192.0.2.77/24", 0, "192.0.2.0/24" },
	{ "bare v4 address is a /32", "192.0.2.1", 0, "192.0.2.1/32" },
	{ "v4 /0 parses", "10.1.2.3/0", 0, "0.0.0.0/0" },
	{ "odd v4 length clears partial bytes", "10.255.255.255/9", 0, "10.128.0.0/9" },
	{ "v6 prefix parses", "2001:db8::/32", 0, "2001:db8::/32" },
	{ "v6 text is canonical", "2001:DB8:0:0::1/128", 0, "2001:db8::1/128" },
	{ "bare v6 address is a /128", "::1", 0, "::1/128" },
	{ "v4 length above 32 is refused", "192.0.2.0/33", EC_EINVAL, NULL },
	{ "v6 length above 128 is refused", "::/129", EC_EINVAL, NULL },
	{ "length with a leading zero is refused", "192.0.2.0/024", EC_EINVAL, NULL },
	{ "signed length is refused", "192.0.2.0/+24", EC_EINVAL, NULL },
	{ "empty length is refused", "192.0.2.0/", EC_EINVAL, NULL },
	{ "host name is refused", "example.com/24", EC_EINVAL, NULL },
	{ "empty text is refused", "", EC_EINVAL, NULL },
	{ "short v4 form is refused", "10.1/16", EC_EINVAL, NULL },
};

static void test_prefix_row(void **state)
{
	const struct prefix_row *r = *state;
	struct sockaddr_storage net;
	unsigned bits = 999;
	char text[64];

	assert_int_equal(ec_prefix_parse(r->in, &net, &bits), r->want);
	if (r->want == 0)
		assert_string_equal(ec_prefix_ntop(&net, bits, text, sizeof text), r->want_text);
}

struct contains_row {
	const char *name;
	const char *net;
	const char *addr;
	int want;
};

static const struct contains_row contains_rows[] = {
	{ "v4 address inside", "192.0.2.0/24", "192.0.2.255", 1 },
	{ "v4 address outside", "192.0.2.0/24", "192.0.3.0", 0 },
	{ "v4 /0 contains everything v4", "0.0.0.0/0", "203.0.113.9", 1 },
	{ "odd length boundary inside", "10.128.0.0/9", "10.255.1.1", 1 },
	{ "odd length boundary outside", "10.128.0.0/9", "10.127.1.1", 0 },
	{ "v4-mapped v6 address matches a v4 net", "192.0.2.0/24", "::ffff:192.0.2.1", 1 },
	{ "v4-compatible-looking v6 does not match a v4 net", "192.0.2.0/24", "::192.0.2.1", 0 },
	{ "v6 address inside", "2001:db8::/32", "2001:db8:ffff::1", 1 },
	{ "v6 address outside", "2001:db8::/32", "2001:db9::1", 0 },
	{ "v4 address never matches a v6 net", "::/0", "192.0.2.1", 0 },
	{ "exact host match", "192.0.2.7", "192.0.2.7", 1 },
};

static void parse_addr(const char *s, struct sockaddr_storage *ss)
{
	assert_int_equal(ec_addr_parse(s, ss), 0);
}

static void test_contains_row(void **state)
{
	const struct contains_row *r = *state;
	struct sockaddr_storage net, addr;
	unsigned bits;

	assert_int_equal(ec_prefix_parse(r->net, &net, &bits), 0);
	parse_addr(r->addr, &addr);
	assert_int_equal(ec_prefix_contains(&net, bits, (struct sockaddr *)&addr), r->want);
}

struct split_row {
	const char *name;
	const char *in;
	int want;
	const char *host;
	int port;
};

static const struct split_row split_rows[] = {
	{ "v4 address and port", "127.0.0.1:6379", 0, "127.0.0.1", 6379 },
	{ "host name and port", "redis-1.example:6380", 0, "redis-1.example", 6380 },
	{ "bracketed v6 and port", "[::1]:8443", 0, "::1", 8443 },
	{ "highest port", "h:65535", 0, "h", 65535 },
	{ "bare v6 is refused", "::1:6379", EC_EINVAL, NULL, 0 },
	{ "missing port is refused", "127.0.0.1", EC_EINVAL, NULL, 0 },
	{ "empty port is refused", "127.0.0.1:", EC_EINVAL, NULL, 0 },
	{ "port 0 is refused", "h:0", EC_EINVAL, NULL, 0 },
	{ "port above 65535 is refused", "h:65536", EC_EINVAL, NULL, 0 },
	{ "port with a sign is refused", "h:+80", EC_EINVAL, NULL, 0 },
	{ "empty host is refused", ":80", EC_EINVAL, NULL, 0 },
	{ "bad bracketed v6 is refused", "[zz]:80", EC_EINVAL, NULL, 0 },
	{ "bracket without port is refused", "[::1]", EC_EINVAL, NULL, 0 },
	{ "host with a space is refused", "a b:80", EC_EINVAL, NULL, 0 },
};

static void test_split_row(void **state)
{
	const struct split_row *r = *state;
	char host[64];
	int port = 0;

	assert_int_equal(ec_addr_split(r->in, host, sizeof host, &port), r->want);
	if (r->want == 0) {
		assert_string_equal(host, r->host);
		assert_int_equal(port, r->port);
	}
}

static void test_ntop_formats_and_unknown_family(void **state)
{
	struct sockaddr_storage ss;
	char out[64];

	parse_addr("2001:db8::5", &ss);
	assert_string_equal(ec_sockaddr_ntop((struct sockaddr *)&ss, out, sizeof out), "2001:db8::5");
	parse_addr("198.51.100.3", &ss);
	assert_string_equal(ec_sockaddr_ntop((struct sockaddr *)&ss, out, sizeof out), "198.51.100.3");
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	assert_string_equal(ec_sockaddr_ntop((struct sockaddr *)&ss, out, sizeof out), "?");
	assert_int_equal(ec_addr_parse("1.2.3.4:80", &ss), EC_EINVAL);
	assert_int_equal(ec_addr_parse("[::1]", &ss), EC_EINVAL);
}

#define ADD_ROWS(rows, fn)                                                            \
	for (i = 0; i < LEN(rows); i++)                                              \
		tests[n++] = (struct CMUnitTest){ rows[i].name, fn, NULL, NULL,      \
		                                  (void *)&rows[i] }

int main(void)
{
	struct CMUnitTest tests[64];
	size_t i, n = 0;

	ADD_ROWS(prefix_rows, test_prefix_row);
	ADD_ROWS(contains_rows, test_contains_row);
	ADD_ROWS(split_rows, test_split_row);
	tests[n++] = (struct CMUnitTest){ "addresses format; unknown family is ?",
	                                  test_ntop_formats_and_unknown_family, NULL, NULL, NULL };
	return _cmocka_run_group_tests("ec_net", tests, n, NULL, NULL);
}
