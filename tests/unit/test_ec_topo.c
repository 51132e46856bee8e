/* test_ec_topo: topology file parsing (exact error messages), longest-prefix match over
 * IPv4 and IPv6, and a generated 100k-prefix table checked against a brute-force
 * reference. Through common/ec_topo.h only; fixed seeds, no network. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ec_topo.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Fills ss from a textual address; fails the test on a typo in a row. */
static const struct sockaddr *addr_of(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
	} else {
		assert_int_equal(inet_pton(AF_INET6, text, &in6->sin6_addr), 1);
		in6->sin6_family = AF_INET6;
	}
	return (const struct sockaddr *)ss;
}

static struct ec_topo *parse_ok(const char *text)
{
	char err[512];
	struct ec_topo *t = ec_topo_parse(text, strlen(text), "t.conf", err, sizeof err);

	if (!t)
		fail_msg("unexpected error: %s", err);
	return t;
}

/* --- longest-prefix match ------------------------------------------------------------ */

static const char lpm_text[] =
	"# echos topology for the tests\n"
	"10.0.0.0/8          pop-a  eu\n"
	"10.1.0.0/16         pop-b  eu   # a comment after the fields\n"
	"\t10.1.2.0/24\tpop-c\teu\n"
	"10.1.2.128/25       pop-d  us\n"
	"   \n"
	"192.168.0.0/16      pop-a  eu\n"
	"255.255.255.255/32  pop-e  top\n"
	"2001:db8::/32       pop-a  eu\n"
	"2001:db8:1::/48     pop-b  eu\n"
	"2001:db8:1:2::/64   pop-c  eu\n"
	"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128 pop-e top\n"
	"::ffff:172.16.0.0/108 pop-m mapped\n"
	"::/0                pop-z any6\n";

struct lpm_row {
	const char *name;
	const char *addr;
	const char *pop;    /* NULL: no match */
	const char *region;
	unsigned bits;
};

static const struct lpm_row lpm_rows[] = {
	{ "v4 inside only the /8 matches the /8", "10.2.3.4", "pop-a", "eu", 8 },
	{ "v4 inside the /16 matches the /16", "10.1.9.9", "pop-b", "eu", 16 },
	{ "v4 inside the /24 matches the /24", "10.1.2.5", "pop-c", "eu", 24 },
	{ "v4 in the nested /25 matches the /25", "10.1.2.200", "pop-d", "us", 25 },
	{ "v4 first address of a nested prefix matches it", "10.1.2.128", "pop-d", "us", 25 },
	{ "v4 just after a nested prefix falls back to its parent", "10.1.3.0", "pop-b",
	  "eu", 16 },
	{ "v4 last address of the /8 matches the /8", "10.255.255.255", "pop-a", "eu", 8 },
	{ "v4 just past the /8 matches nothing", "11.0.0.0", NULL, NULL, 0 },
	{ "v4 just before the /8 matches nothing", "9.255.255.255", NULL, NULL, 0 },
	{ "v4 zero matches nothing", "0.0.0.0", NULL, NULL, 0 },
	{ "v4 all-ones /32 matches", "255.255.255.255", "pop-e", "top", 32 },
	{ "v4 next to a /32 matches nothing", "255.255.255.254", NULL, NULL, 0 },
	{ "mapped v6 client matches the v4 entry", "::ffff:10.1.2.200", "pop-d", "us", 25 },
	{ "mapped v6 client with no v4 entry matches nothing, not ::/0", "::ffff:8.8.8.8",
	  NULL, NULL, 0 },
	{ "mapped v6 prefix in the file is stored as v4", "172.16.5.5", "pop-m", "mapped",
	  12 },
	{ "v6 inside the /32 matches the /32", "2001:db8::1", "pop-a", "eu", 32 },
	{ "v6 inside the /64 matches the /64", "2001:db8:1:2::5", "pop-c", "eu", 64 },
	{ "v6 just after the /64 falls back to the /48", "2001:db8:1:3::", "pop-b", "eu",
	  48 },
	{ "v6 outside every specific prefix matches ::/0", "2001:db9::", "pop-z", "any6", 0 },
	{ "v6 all-ones /128 matches", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "pop-e",
	  "top", 128 },
	{ "v6 next to a /128 matches ::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe",
	  "pop-z", "any6", 0 },
	{ "v4-compatible v6 is not mapped", "::10.1.2.3", "pop-z", "any6", 0 },
};

static void test_lpm_row(void **state)
{
	const struct lpm_row *r = *state;
	struct ec_topo *t = parse_ok(lpm_text);
	struct sockaddr_storage ss;
	const struct ec_topo_loc *l = ec_topo_lookup(t, addr_of(r->addr, &ss));

	if (!r->pop) {
		assert_null(l);
	} else {
		assert_non_null(l);
		assert_string_equal(l->pop, r->pop);
		assert_string_equal(l->region, r->region);
		assert_int_equal(l->prefix_bits, r->bits);
		assert_true(l->pop_hash == ec_topo_name_hash(r->pop, strlen(r->pop)));
		assert_true(l->region_hash == ec_topo_name_hash(r->region, strlen(r->region)));
	}
	ec_topo_free(t);
}

/* --- bad files: exact messages --------------------------------------------------------- */

struct bad_row {
	const char *name;
	const char *text;
	const char *err;
};

static const struct bad_row bad_rows[] = {
	{ "address without a length is refused", "10.0.0.0 pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"10.0.0.0\"" },
	{ "empty length is refused", "10.0.0.0/ pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"10.0.0.0/\"" },
	{ "empty address is refused", "/8 pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"/8\"" },
	{ "signed length is refused", "10.0.0.0/+8 pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"10.0.0.0/+8\"" },
	{ "octet over 255 is refused", "10.0.0.256/32 pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"10.0.0.256/32\"" },
	{ "a word is refused where the CIDR goes", "paris pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"paris\"" },
	{ "IPv4 length over 32 is refused", "10.0.0.0/33 pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"10.0.0.0/33\": an IPv4 prefix "
	  "length is 0-32" },
	{ "IPv6 length over 128 is refused", "2001:db8::/129 pop-a eu\n",
	  "t.conf:1: expected a CIDR like 10.0.0.0/8, got \"2001:db8::/129\": an IPv6 "
	  "prefix length is 0-128" },
	{ "host bits set is refused with the fixed prefix",
	  "10.1.2.3/16 pop-a eu\n",
	  "t.conf:1: expected a CIDR with no host bits set like 10.1.0.0/16, got "
	  "\"10.1.2.3/16\"" },
	{ "IPv6 host bits set is refused with the fixed prefix",
	  "2001:db8::1/32 pop-a eu\n",
	  "t.conf:1: expected a CIDR with no host bits set like 2001:db8::/32, got "
	  "\"2001:db8::1/32\"" },
	{ "missing PoP is refused", "10.0.0.0/8\n",
	  "t.conf:1: expected a PoP name after \"10.0.0.0/8\", got end of line" },
	{ "missing region is refused", "10.0.0.0/8 pop-a   # no region\n",
	  "t.conf:1: expected a region name after \"pop-a\", got end of line" },
	{ "a fourth field is refused", "10.0.0.0/8 pop-a eu extra\n",
	  "t.conf:1: expected end of line after the region, got \"extra\"" },
	{ "PoP name with a slash is refused", "10.0.0.0/8 pop/a eu\n",
	  "t.conf:1: expected a PoP name of letters, digits, '.', '_' or '-' (1-63 bytes), "
	  "got \"pop/a\"" },
	{ "control byte in a name is escaped in the message", "10.0.0.0/8 po\x01p eu\n",
	  "t.conf:1: expected a PoP name of letters, digits, '.', '_' or '-' (1-63 bytes), "
	  "got \"po\\x01p\"" },
	{ "region name over 63 bytes is refused",
	  "10.0.0.0/8 pop-a "
	  "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\n",
	  "t.conf:1: expected a region name of letters, digits, '.', '_' or '-' (1-63 "
	  "bytes), got \"rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\"" },
	{ "error names the right line after comments and blanks",
	  "# header\n\n10.0.0.0/8 pop-a eu\r\n10.0.0.0/99 pop-a eu\n",
	  "t.conf:4: expected a CIDR like 10.0.0.0/8, got \"10.0.0.0/99\": an IPv4 prefix "
	  "length is 0-32" },
	{ "duplicate prefix names both lines",
	  "10.0.0.0/8 pop-a eu\n10.1.0.0/16 pop-b eu\n10.0.0.0/8 pop-c us\n",
	  "t.conf:3: duplicate prefix 10.0.0.0/8, first at line 1" },
	{ "first duplicate in file order is reported",
	  "20.0.0.0/8 pop-a eu\n30.0.0.0/8 pop-a eu\n30.0.0.0/8 pop-a eu\n"
	  "20.0.0.0/8 pop-a eu\n",
	  "t.conf:3: duplicate prefix 30.0.0.0/8, first at line 2" },
	{ "a prefix listed three times names its first two lines",
	  "10.0.0.0/8 pop-a eu\n10.0.0.0/8 pop-b eu\n10.0.0.0/8 pop-c eu\n",
	  "t.conf:2: duplicate prefix 10.0.0.0/8, first at line 1" },
	{ "duplicate IPv6 prefix names both lines",
	  "2001:db8::/32 pop-a eu\n2001:0db8:0::/32 pop-b eu\n",
	  "t.conf:2: duplicate prefix 2001:db8::/32, first at line 1" },
	{ "mapped IPv6 prefix duplicating an IPv4 prefix is refused",
	  "10.0.0.0/8 pop-a eu\n::ffff:10.0.0.0/104 pop-b eu\n",
	  "t.conf:2: duplicate prefix 10.0.0.0/8, first at line 1" },
};

static void test_bad_row(void **state)
{
	const struct bad_row *r = *state;
	char err[512];
	struct ec_topo *t;

	memset(err, 'x', sizeof err);
	t = ec_topo_parse(r->text, strlen(r->text), "t.conf", err, sizeof err);
	assert_null(t);
	assert_string_equal(err, r->err);
}

/* --- files that load --------------------------------------------------------------- */

struct ok_row {
	const char *name;
	const char *text;
	size_t count;
	const char *addr;   /* looked up after loading */
	const char *pop;    /* expected, NULL for no match */
};

static const struct ok_row ok_rows[] = {
	{ "empty file gives an empty table", "", 0, "10.0.0.1", NULL },
	{ "comments and blank lines only give an empty table", "# nothing\n\n   # here\n\t\n",
	  0, "2001:db8::1", NULL },
	{ "CRLF line ends are accepted", "10.0.0.0/8 pop-a eu\r\n10.1.0.0/16 pop-b eu\r\n", 2,
	  "10.1.0.1", "pop-b" },
	{ "last line without a newline is read", "10.0.0.0/8 pop-a eu", 1, "10.9.9.9",
	  "pop-a" },
	{ "zero-length prefix matches every IPv4 address", "0.0.0.0/0 pop-a eu\n", 1,
	  "203.0.113.7", "pop-a" },
	{ "comment right after the region is not a field", "10.0.0.0/8 pop-a eu#x\n", 1,
	  "10.0.0.1", "pop-a" },
};

static void test_ok_row(void **state)
{
	const struct ok_row *r = *state;
	struct ec_topo *t = parse_ok(r->text);
	struct sockaddr_storage ss;
	const struct ec_topo_loc *l;

	assert_int_equal(ec_topo_count(t), r->count);
	l = ec_topo_lookup(t, addr_of(r->addr, &ss));
	if (r->pop) {
		assert_non_null(l);
		assert_string_equal(l->pop, r->pop);
	} else {
		assert_null(l);
	}
	ec_topo_free(t);
}

static void test_names_are_interned_once(void **state)
{
	struct ec_topo *t = parse_ok(lpm_text);
	struct sockaddr_storage a, b;
	const struct ec_topo_loc *la, *lb;

	(void)state;
	la = ec_topo_lookup(t, addr_of("10.2.0.1", &a));      /* pop-a /8 */
	lb = ec_topo_lookup(t, addr_of("192.168.1.1", &b));   /* pop-a /16 */
	assert_non_null(la);
	assert_non_null(lb);
	assert_ptr_equal(la->pop, lb->pop);
	assert_ptr_equal(la->region, lb->region);
	assert_int_equal(ec_topo_count(t), 12);
	ec_topo_free(t);
}

static void test_name_hash_is_fnv1a64(void **state)
{
	(void)state;
	assert_true(ec_topo_name_hash("", 0) == 0xcbf29ce484222325ULL);
	assert_true(ec_topo_name_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
	assert_true(ec_topo_name_hash("foobar", 6) == 0x85944171f73967e8ULL);
	assert_true(ec_topo_name_hash("pop-a", 5) != ec_topo_name_hash("pop-b", 5));
}

static void test_other_families_and_null_match_nothing(void **state)
{
	struct ec_topo *t = parse_ok("0.0.0.0/0 pop-a eu\n::/0 pop-a eu\n");
	struct sockaddr_storage ss;

	(void)state;
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	assert_null(ec_topo_lookup(t, (struct sockaddr *)&ss));
	assert_null(ec_topo_lookup(t, NULL));
	assert_null(ec_topo_lookup(NULL, addr_of("10.0.0.1", &ss)));
	ec_topo_free(t);
	ec_topo_free(NULL);
}

static void test_load_reads_a_file_and_names_a_missing_one(void **state)
{
	char path[] = "/tmp/echos-topo-XXXXXX";
	const char text[] = "10.0.0.0/8 pop-a eu\n10.0.0.1/8 pop-b eu\n";
	char err[512], want[600];
	int fd = mkstemp(path);
	struct ec_topo *t;

	(void)state;
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	t = ec_topo_load(path, err, sizeof err);
	assert_null(t);
	snprintf(want, sizeof want, "%s:2: expected a CIDR with no host bits set like "
	         "10.0.0.0/8, got \"10.0.0.1/8\"", path);
	assert_string_equal(err, want);
	unlink(path);

	t = ec_topo_load("/nonexistent/echos/topology.conf", err, sizeof err);
	assert_null(t);
	assert_string_equal(err, "/nonexistent/echos/topology.conf: No such file or directory");
}

/* Random mixes of valid fragments and junk bytes (NUL included), fixed seed: each
 * buffer either loads or is refused with a "file:line: " message; never a crash. */
static void test_random_input_never_crashes_the_parser(void **state)
{
	static const char *const frags[] = {
		"10.0.0.0/8", "2001:db8::/32", "::ffff:1.2.3.0/120", "/", "::", " ", "\t", "\n",
		"\r\n", "#", "pop-a", "eu", "10.1.2.3/16", "999.1.1.1/8", "0.0.0.0/0", "::/0",
		"\x01", "\xff", "/129", "a.b", "1.2.3.4/32",
	};
	uint64_t x = 0x243F6A8885A308D3ULL;
	char buf[256], err[256];
	unsigned loaded = 0;

	(void)state;
	for (int round = 0; round < 20000; round++) {
		size_t len = 0;
		struct ec_topo *t;

		while (len < sizeof buf - 32) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			if (x % 5 == 0) {
				buf[len++] = (char)(x >> 32); /* any byte, NUL included */
			} else {
				const char *f = frags[(x >> 8) % LEN(frags)];

				memcpy(buf + len, f, strlen(f));
				len += strlen(f);
			}
			if ((x >> 40) % 16 == 0)
				break;
		}
		t = ec_topo_parse(buf, len, "fuzz", err, sizeof err);
		if (t) {
			struct sockaddr_storage ss;

			loaded++;
			(void)ec_topo_lookup(t, addr_of("10.1.2.3", &ss));
			(void)ec_topo_lookup(t, addr_of("2001:db8::1", &ss));
			ec_topo_free(t);
		} else {
			assert_true(strncmp(err, "fuzz:", 5) == 0);
		}
	}
	print_message("20000 random buffers: %u loaded\n", loaded);
}

static void test_megabyte_line_is_refused_with_a_short_message(void **state)
{
	size_t len = 1 << 20;
	char *buf = malloc(len), err[512];

	(void)state;
	assert_non_null(buf);
	memset(buf, '7', len);
	assert_null(ec_topo_parse(buf, len, "t.conf", err, sizeof err));
	assert_string_equal(err, "t.conf:1: expected a CIDR like 10.0.0.0/8, got "
	                    "\"7777777777777777777777777777777777777777777777777777777777777777...\"");
	free(buf);
}

/* --- a large generated table against a brute-force reference -------------------------- */

#define GEN_N 100000
#define GEN_V6_EVERY 4     /* one prefix in four is IPv6 */
#define GEN_LOOKUPS 200000

typedef unsigned __int128 u128;

struct gen_pfx {
	u128 start;
	unsigned bits, pop, is_v6;
};

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) /* xorshift64*, fixed seed */
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545F4914F6CDD1DULL;
}

static u128 mask_of(unsigned bits, unsigned width)
{
	u128 all = width == 128 ? ~(u128)0 : (((u128)1 << width) - 1);

	return bits == 0 ? 0 : all & ~(bits >= width ? 0 : all >> bits);
}

static int gen_cmp(const void *a, const void *b)
{
	const struct gen_pfx *x = a, *y = b;

	if (x->is_v6 != y->is_v6)
		return x->is_v6 < y->is_v6 ? -1 : 1;
	if (x->bits != y->bits)
		return x->bits < y->bits ? -1 : 1;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return 0;
}

/* Addresses concentrated in 10.0.0.0/11 and 2001:db8::/40 so prefixes nest deeply. */
static struct gen_pfx gen_one(void)
{
	struct gen_pfx p = { 0 };

	p.is_v6 = rng() % GEN_V6_EVERY == 0;
	p.pop = (unsigned)(rng() % 1000);
	if (p.is_v6) {
		u128 low = (((u128)rng() << 24) ^ rng()) & (((u128)1 << 88) - 1);
		u128 a = ((u128)0x20010db8u << 96) | ((u128)(rng() & 0xff) << 88) | low;

		p.bits = 40 + (unsigned)(rng() % 89); /* 40..128 */
		p.start = a & mask_of(p.bits, 128);
	} else {
		uint32_t a = (10u << 24) | (uint32_t)(rng() & 0x1fffff);

		p.bits = 11 + (unsigned)(rng() % 22); /* 11..32 */
		p.start = a & mask_of(p.bits, 32);
	}
	return p;
}

/* The reference: for each family and length, the sorted starts; an address matches the
 * longest length whose masked address is present. Independent of the interval code. */
struct ref {
	struct gen_pfx *by_len; /* sorted by family, length, start */
	size_t n;
	size_t first[2][130], count[2][130];
};

static const struct gen_pfx *ref_lookup(const struct ref *r, int is_v6, u128 addr)
{
	unsigned width = is_v6 ? 128 : 32;

	for (int bits = (int)width; bits >= 0; bits--) {
		const struct gen_pfx *p = r->by_len + r->first[is_v6][bits];
		size_t lo = 0, hi = r->count[is_v6][bits];
		u128 key = addr & mask_of((unsigned)bits, width);

		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (p[mid].start == key)
				return &p[mid];
			if (p[mid].start < key)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	return NULL;
}

static const struct sockaddr *sa_of(int is_v6, u128 a, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (is_v6) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		for (int i = 15; i >= 0; i--, a >>= 8)
			in6->sin6_addr.s6_addr[i] = (unsigned char)a;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl((uint32_t)a);
	}
	return (const struct sockaddr *)ss;
}

static void check_one(const struct ec_topo *t, const struct ref *r, int is_v6, u128 a)
{
	struct sockaddr_storage ss;
	const struct ec_topo_loc *l = ec_topo_lookup(t, sa_of(is_v6, a, &ss));
	const struct gen_pfx *want = ref_lookup(r, is_v6, a);
	char pop[16];

	if (!want) {
		assert_null(l);
		return;
	}
	assert_non_null(l);
	snprintf(pop, sizeof pop, "p%u", want->pop);
	assert_int_equal(l->prefix_bits, want->bits);
	assert_string_equal(l->pop, pop);
}

static void test_100k_prefixes_load_fast_and_match_brute_force(void **state)
{
	struct gen_pfx *g = malloc(GEN_N * 2 * sizeof *g);
	size_t n = 0, textcap = GEN_N * 64, textlen = 0;
	char *text = malloc(textcap), err[512];
	struct ref r = { 0 };
	struct ec_topo *t;
	struct timespec t0, t1;
	double secs;

	(void)state;
	assert_non_null(g);
	assert_non_null(text);
	/* generate, then drop duplicates so every prefix appears once */
	for (size_t i = 0; i < GEN_N * 2; i++)
		g[i] = gen_one();
	qsort(g, GEN_N * 2, sizeof *g, gen_cmp);
	for (size_t i = 0; i < GEN_N * 2 && n < GEN_N; i++) {
		if (n == 0 || gen_cmp(&g[n - 1], &g[i]) != 0)
			g[n++] = g[i];
	}
	assert_int_equal(n, GEN_N);
	/* write them out in a shuffled order */
	for (size_t i = 0; i < n; i++) {
		size_t j = i + (size_t)(rng() % (n - i));
		struct gen_pfx p = g[j];
		char a[INET6_ADDRSTRLEN];
		struct sockaddr_storage ss;

		g[j] = g[i];
		g[i] = p;
		sa_of((int)p.is_v6, p.start, &ss);
		if (p.is_v6)
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, a, sizeof a);
		else
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, a, sizeof a);
		textlen += (size_t)snprintf(text + textlen, textcap - textlen, "%s/%u p%u r%u\n",
		                            a, p.bits, p.pop, p.pop % 10);
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	t = ec_topo_parse(text, textlen, "gen.conf", err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (!t)
		fail_msg("generated table refused: %s", err);
	secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	print_message("loaded %zu prefixes in %.3f s, %zu bytes\n", ec_topo_count(t), secs,
	              ec_topo_mem_bytes(t));
	assert_int_equal(ec_topo_count(t), GEN_N);
	/* load time is printed, not asserted: speed targets live in bench/ */
	assert_true(ec_topo_mem_bytes(t) < (6u << 20)); /* a few MiB */

	/* the reference */
	qsort(g, n, sizeof *g, gen_cmp);
	r.by_len = g;
	r.n = n;
	for (size_t i = 0; i < n; i++) {
		if (r.count[g[i].is_v6][g[i].bits]++ == 0)
			r.first[g[i].is_v6][g[i].bits] = i;
	}

	/* every prefix's edges and their neighbours */
	for (size_t i = 0; i < n; i++) {
		unsigned width = g[i].is_v6 ? 128 : 32;
		u128 last = g[i].start | ~mask_of(g[i].bits, width);
		u128 top = width == 128 ? ~(u128)0 : 0xffffffffu;

		check_one(t, &r, (int)g[i].is_v6, g[i].start);
		check_one(t, &r, (int)g[i].is_v6, last);
		if (g[i].start > 0)
			check_one(t, &r, (int)g[i].is_v6, g[i].start - 1);
		if (last < top)
			check_one(t, &r, (int)g[i].is_v6, last + 1);
	}
	/* random addresses, mostly in the populated ranges */
	for (size_t i = 0; i < GEN_LOOKUPS; i++) {
		int is_v6 = (int)(rng() & 1);
		u128 a;

		if (is_v6)
			a = ((u128)0x20010db8u << 96) | ((u128)(rng() & 0x1ff) << 87) |
			    ((((u128)rng() << 24) ^ rng()) & (((u128)1 << 87) - 1));
		else
			a = (rng() & 3) == 0 ? (uint32_t)rng() : (10u << 24) | (rng() & 0x3fffff);
		check_one(t, &r, is_v6, a);
	}
	ec_topo_free(t);
	free(text);
	free(g);
}

int main(void)
{
	struct CMUnitTest tests[LEN(lpm_rows) + LEN(bad_rows) + LEN(ok_rows) + 10];
	size_t n = 0;

	for (size_t i = 0; i < LEN(lpm_rows); i++)
		tests[n++] = (struct CMUnitTest){ lpm_rows[i].name, test_lpm_row, NULL, NULL,
			                          (void *)&lpm_rows[i] };
	for (size_t i = 0; i < LEN(bad_rows); i++)
		tests[n++] = (struct CMUnitTest){ bad_rows[i].name, test_bad_row, NULL, NULL,
			                          (void *)&bad_rows[i] };
	for (size_t i = 0; i < LEN(ok_rows); i++)
		tests[n++] = (struct CMUnitTest){ ok_rows[i].name, test_ok_row, NULL, NULL,
			                          (void *)&ok_rows[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_names_are_interned_once);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_name_hash_is_fnv1a64);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_other_families_and_null_match_nothing);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_load_reads_a_file_and_names_a_missing_one);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_random_input_never_crashes_the_parser);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_megabyte_line_is_refused_with_a_short_message);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_100k_prefixes_load_fast_and_match_brute_force);
	return _cmocka_run_group_tests("ec_topo", tests, n, NULL, NULL);
}
