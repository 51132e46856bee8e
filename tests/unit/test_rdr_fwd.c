/* test_rdr_fwd: trusted-proxy CIDRs and the client address behind X-Forwarded-For and
 * Forwarded (RFC 7239): right-most untrusted hop, quoted IPv6 with ports, spoofed
 * headers from untrusted peers ignored, junk hops, prefix masking. No network. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* The unit-test rule links common/ and policy/ only: the module is compiled in here. */
#include "../../redirector/rdr_fwd.c"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static void make_fwd(struct rdr_fwd *f)
{
	static const char *const cidrs[] = { "10.0.0.0/8", "192.0.2.7", "fd00::/8" };
	char err[128];

	memset(f, 0, sizeof *f);
	for (size_t i = 0; i < LEN(cidrs); i++)
		assert_int_equal(rdr_fwd_parse_cidr(cidrs[i], &f->cidrs[f->n++], err, sizeof err), 0);
}

static void sa_of(const char *text, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
}

static const char *text_of(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	if (ss->ss_family == AF_INET)
		return inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, buf,
		                 (socklen_t)len);
	return inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, buf,
	                 (socklen_t)len);
}

struct client_row {
	const char *name;
	const char *peer;
	const char *fwd[2];   /* Forwarded lines */
	const char *xff[3];   /* X-Forwarded-For lines */
	const char *want;
	int from_header;
};

static const struct client_row client_rows[] = {
	{ "no headers: the peer", "10.1.1.1", { NULL }, { NULL }, "10.1.1.1", 0 },
	{ "spoofed XFF from an untrusted peer is ignored", "203.0.113.9", { NULL },
	  { "81.2.69.142" }, "203.0.113.9", 0 },
	{ "spoofed Forwarded from an untrusted peer is ignored", "203.0.113.9",
	  { "for=81.2.69.142" }, { NULL }, "203.0.113.9", 0 },
	{ "trusted peer: the XFF hop", "10.0.0.1", { NULL }, { "81.2.69.142" },
	  "81.2.69.142", 1 },
	{ "right-most untrusted hop wins over a spoofed left part", "10.0.0.1", { NULL },
	  { "1.1.1.1, 81.2.69.142, 10.9.9.9" }, "81.2.69.142", 1 },
	{ "several XFF lines are one list", "10.0.0.1", { NULL },
	  { "6.6.6.6, 89.160.20.112", "10.2.2.2" }, "89.160.20.112", 1 },
	{ "every hop trusted: the left-most", "10.0.0.1", { NULL }, { "10.3.3.3, 192.0.2.7" },
	  "10.3.3.3", 1 },
	{ "unknown hop stops at the trusted hop to its right", "10.0.0.1", { NULL },
	  { "81.2.69.142, unknown, 10.4.4.4" }, "10.4.4.4", 1 },
	{ "junk right next to the peer leaves the peer", "10.0.0.1", { NULL },
	  { "81.2.69.142, <script>" }, "10.0.0.1", 0 },
	{ "XFF with v4 port", "10.0.0.1", { NULL }, { "216.160.83.56:4711" },
	  "216.160.83.56", 1 },
	{ "XFF with bare IPv6", "10.0.0.1", { NULL }, { "2001:db8::5" }, "2001:db8::5", 1 },
	{ "XFF with bracketed IPv6 and port", "10.0.0.1", { NULL }, { "[2001:db8::6]:443" },
	  "2001:db8::6", 1 },
	{ "Forwarded for= with quoted IPv6 and port", "10.0.0.1",
	  { "for=\"[2001:db8:cafe::17]:4711\";proto=https" }, { NULL }, "2001:db8:cafe::17", 1 },
	{ "Forwarded is preferred over XFF", "10.0.0.1", { "for=89.160.20.112" },
	  { "81.2.69.142" }, "89.160.20.112", 1 },
	{ "Forwarded: right-most untrusted element, name case-insensitive", "10.0.0.1",
	  { "for=1.2.3.4, For=81.2.69.142;by=10.0.0.1", "for=10.7.7.7" }, { NULL },
	  "81.2.69.142", 1 },
	{ "Forwarded obfuscated identifier stops the walk", "10.0.0.1",
	  { "for=81.2.69.142, for=_hidden, for=10.5.5.5" }, { NULL }, "10.5.5.5", 1 },
	{ "Forwarded element without for= is not a hop", "10.0.0.1",
	  { "for=81.2.69.142, proto=https;by=10.0.0.1" }, { NULL }, "81.2.69.142", 1 },
	{ "quoted comma inside Forwarded does not split", "10.0.0.1",
	  { "for=81.2.69.142;ext=\"a,b\"" }, { NULL }, "81.2.69.142", 1 },
	{ "IPv6 trusted peer", "fd00::1", { NULL }, { "89.160.20.112" }, "89.160.20.112", 1 },
	{ "v4-mapped trusted peer matches the v4 CIDR", "::ffff:10.0.0.1", { NULL },
	  { "81.2.69.142" }, "81.2.69.142", 1 },
	{ "v4-mapped hop is the v4 address", "10.0.0.1", { NULL }, { "::ffff:81.2.69.142" },
	  "81.2.69.142", 1 },
	{ "empty XFF leaves the peer", "10.0.0.1", { NULL }, { "" }, "10.0.0.1", 0 },
	{ "overlong hop is junk", "10.0.0.1", { NULL },
	  { "81.2.69.142, 1111111111111111111111111111111111111111111111111111111111111111111" },
	  "10.0.0.1", 0 },
};

static void test_client_row(void **state)
{
	const struct client_row *r = *state;
	struct rdr_fwd f;
	struct rdr_fwd_hdr fwd[2], xff[3];
	size_t nf = 0, nx = 0;
	struct sockaddr_storage peer, out;
	char buf[64];

	make_fwd(&f);
	sa_of(r->peer, &peer);
	for (size_t i = 0; i < LEN(r->fwd) && r->fwd[i]; i++)
		fwd[nf++] = (struct rdr_fwd_hdr){ r->fwd[i], strlen(r->fwd[i]) };
	for (size_t i = 0; i < LEN(r->xff) && r->xff[i]; i++)
		xff[nx++] = (struct rdr_fwd_hdr){ r->xff[i], strlen(r->xff[i]) };
	assert_int_equal(rdr_fwd_client(&f, (struct sockaddr *)&peer, fwd, nf, xff, nx, &out),
	                 r->from_header);
	if (r->from_header || !strchr(r->peer, 'f'))
		assert_string_equal(text_of(&out, buf, sizeof buf), r->want);
}

static void test_many_hops_keep_the_right_most(void **state)
{
	char line[4096];
	size_t len = 0;
	struct rdr_fwd f;
	struct rdr_fwd_hdr xff;
	struct sockaddr_storage peer, out;
	char buf[64];

	(void)state;
	make_fwd(&f);
	for (int i = 0; i < 200; i++)
		len += (size_t)snprintf(line + len, sizeof line - len, "1.1.1.%d, ", i % 250);
	snprintf(line + len, sizeof line - len, "81.2.69.142, 10.1.2.3");
	xff = (struct rdr_fwd_hdr){ line, strlen(line) };
	sa_of("10.0.0.1", &peer);
	assert_int_equal(rdr_fwd_client(&f, (struct sockaddr *)&peer, NULL, 0, &xff, 1, &out), 1);
	assert_string_equal(text_of(&out, buf, sizeof buf), "81.2.69.142");
}

struct cidr_row {
	const char *text;
	int ok;
};

static const struct cidr_row cidr_rows[] = {
	{ "10.0.0.0/8", 1 }, { "127.0.0.1", 1 }, { "::1", 1 }, { "2001:db8::/32", 1 },
	{ "10.0.0.1/8", 0 }, { "10.0.0.0/33", 0 }, { "10.0.0.0/", 0 }, { "host/8", 0 },
	{ "", 0 }, { "2001:db8::/129", 0 }, { "10.0.0.0/8x", 0 },
};

static void test_cidr_parsing(void **state)
{
	struct rdr_cidr c;
	char err[128];

	(void)state;
	for (size_t i = 0; i < LEN(cidr_rows); i++) {
		int rc = rdr_fwd_parse_cidr(cidr_rows[i].text, &c, err, sizeof err);

		if ((rc == 0) != cidr_rows[i].ok)
			fail_msg("%s: expected %s", cidr_rows[i].text,
			         cidr_rows[i].ok ? "ok" : "an error");
	}
}

static void test_mask_client_prefix(void **state)
{
	struct sockaddr_storage a, out;
	char buf[64];

	(void)state;
	sa_of("81.2.69.142", &a);
	assert_int_equal(rdr_fwd_mask((struct sockaddr *)&a, 24, 48, &out), 24);
	assert_string_equal(text_of(&out, buf, sizeof buf), "81.2.69.0");
	sa_of("2001:db8:1:2:3::9", &a);
	assert_int_equal(rdr_fwd_mask((struct sockaddr *)&a, 24, 48, &out), 48);
	assert_string_equal(text_of(&out, buf, sizeof buf), "2001:db8:1::");
	sa_of("::ffff:81.2.69.142", &a);
	assert_int_equal(rdr_fwd_mask((struct sockaddr *)&a, 24, 48, &out), 24);
	assert_string_equal(text_of(&out, buf, sizeof buf), "81.2.69.0");
}

int main(void)
{
	struct CMUnitTest tests[LEN(client_rows) + 3];
	size_t n = 0;

	for (size_t i = 0; i < LEN(client_rows); i++)
		tests[n++] = (struct CMUnitTest){ client_rows[i].name, test_client_row, NULL, NULL,
		                                  (void *)&client_rows[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_many_hops_keep_the_right_most);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_cidr_parsing);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_mask_client_prefix);
	return _cmocka_run_group_tests("rdr_fwd", tests, n, NULL, NULL);
}
