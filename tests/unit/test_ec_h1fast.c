/* test_ec_h1fast: the fast request-head reader against http-parser itself. Whatever
 * ec_h1fast_parse accepts, http-parser must accept with the same method, target, version,
 * fields (values trimmed as the HTTP core trims them), no framing or upgrade flags and the
 * same keep-alive answer. Hand-picked blocks for each rule, then random blocks (fixed
 * seed) built from pieces near every boundary. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>

#include "ec_h1fast.h"

/* ---- what http-parser reports ---------------------------------------------------- */

struct ref {
	char url[512];
	size_t url_len;
	size_t n;
	char name[80][128], value[80][512];
	size_t nlen[80], vlen[80];
	int last; /* 1 field, 2 value */
	int overflow;
};

static int ref_url(http_parser *p, const char *at, size_t len)
{
	struct ref *r = p->data;

	if (r->url_len + len > sizeof r->url)
		return r->overflow = 1, -1;
	memcpy(r->url + r->url_len, at, len);
	r->url_len += len;
	return 0;
}

static int ref_field(http_parser *p, const char *at, size_t len)
{
	struct ref *r = p->data;

	if (r->last != 1) {
		if (r->n == 80)
			return r->overflow = 1, -1;
		r->n++;
		r->nlen[r->n - 1] = 0;
		r->vlen[r->n - 1] = 0;
	}
	r->last = 1;
	if (r->nlen[r->n - 1] + len > sizeof r->name[0])
		return r->overflow = 1, -1;
	memcpy(r->name[r->n - 1] + r->nlen[r->n - 1], at, len);
	r->nlen[r->n - 1] += len;
	return 0;
}

static int ref_value(http_parser *p, const char *at, size_t len)
{
	struct ref *r = p->data;

	if (r->n == 0)
		return -1;
	r->last = 2;
	if (r->vlen[r->n - 1] + len > sizeof r->value[0])
		return r->overflow = 1, -1;
	memcpy(r->value[r->n - 1] + r->vlen[r->n - 1], at, len);
	r->vlen[r->n - 1] += len;
	return 0;
}

static const http_parser_settings ref_settings = {
	.on_url = ref_url,
	.on_header_field = ref_field,
	.on_header_value = ref_value,
};

/* Checks that http-parser agrees with an accepted fast parse of block. */
static void agree(const char *block, size_t len, const struct ec_h1fast *f)
{
	static struct ref r;
	http_parser hp;
	size_t n, i;

	memset(&r, 0, sizeof r);
	http_parser_init(&hp, HTTP_REQUEST);
	hp.data = &r;
	n = http_parser_execute(&hp, &ref_settings, block, len);
	if (HTTP_PARSER_ERRNO(&hp) != HPE_OK || n != len)
		fail_msg("http-parser refuses what the fast path took: %s\n%.*s",
		         http_errno_name(HTTP_PARSER_ERRNO(&hp)), (int)len, block);
	assert_int_equal(hp.method, f->is_head ? HTTP_HEAD : HTTP_GET);
	assert_int_equal(hp.http_major, 1);
	assert_int_equal(hp.http_minor, f->minor);
	assert_int_equal(hp.upgrade, 0);
	assert_int_equal(hp.flags, 0);
	assert_int_equal(http_should_keep_alive(&hp), f->minor == 1);
	assert_int_equal(r.url_len, f->target.len);
	assert_memory_equal(r.url, f->target.p, r.url_len);
	assert_int_equal(r.n, f->n_fields);
	for (i = 0; i < r.n; i++) {
		size_t vl = r.vlen[i];

		while (vl && (r.value[i][vl - 1] == ' ' || r.value[i][vl - 1] == '\t'))
			vl--; /* as h1_on_value trims */
		assert_int_equal(r.nlen[i], f->name[i].len);
		assert_memory_equal(r.name[i], f->name[i].p, r.nlen[i]);
		assert_int_equal(vl, f->value[i].len);
		assert_memory_equal(r.value[i], f->value[i].p, vl);
	}
}

static int fast(const char *block, struct ec_h1fast *f)
{
	return ec_h1fast_parse(block, strlen(block), f);
}

/* ---- hand-picked ------------------------------------------------------------------- */

static void test_plain_requests_are_taken(void **state)
{
	static struct ec_h1fast f;
	static const char *const ok[] = {
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"HEAD /v/movie/seg1.ts?x=1&y=%20 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
		"User-Agent: h2load nghttp2/1.52.0\r\nAccept: */*\r\n\r\n",
		"GET /a HTTP/1.0\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost:a\r\nX-Pad: \t spaced value \t \r\n\r\n",
		"GET /a:b@c;d=e,f(g)*+!$'~ HTTP/1.1\r\nhOsT: A\r\n\r\n",
		"GET /t/1~1~0~b00000~e~-~x/v/movie/seg1.ts HTTP/1.1\r\nKeep-Alive: 5\r\n\r\n",
	};

	(void)state;
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (!fast(ok[i], &f))
			fail_msg("declined: %s", ok[i]);
		agree(ok[i], strlen(ok[i]), &f);
	}
	assert_true(fast(ok[3], &f));
	assert_int_equal(f.n_fields, 2);
	assert_int_equal(f.value[1].len, strlen("spaced value"));
	assert_memory_equal(f.value[1].p, "spaced value", f.value[1].len);
}

static void test_anything_else_is_left_to_http_parser(void **state)
{
	static struct ec_h1fast f;
	static const char *const no[] = {
		"POST / HTTP/1.1\r\nHost: a\r\n\r\n",          /* method */
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",   /* absolute form */
		"GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n",     /* fragment */
		"GET /a\"b HTTP/1.1\r\nHost: a\r\n\r\n",       /* not a pchar */
		"GET  /a HTTP/1.1\r\nHost: a\r\n\r\n",         /* two spaces */
		"GET /a HTTP/1.1 \r\nHost: a\r\n\r\n",
		"GET /a HTTP/2.0\r\nHost: a\r\n\r\n",          /* version */
		"GET /a HTTP/1.2\r\nHost: a\r\n\r\n",
		"GET /a http/1.1\r\nHost: a\r\n\r\n",
		"\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n",      /* empty line first */
		"GET /a HTTP/1.1\r\nHost : a\r\n\r\n",         /* space before the colon */
		"GET /a HTTP/1.1\r\nHo(st: a\r\n\r\n",         /* not a token */
		"GET /a HTTP/1.1\r\n: a\r\n\r\n",              /* empty name */
		"GET /a HTTP/1.1\r\nHost: a\r\nX-Empty:\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\nX-Blank:  \t\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: \xc3\xa9\r\n\r\n",   /* non-ASCII */
		"GET /a HTTP/1.1\r\nHost: a\x7f\r\n\r\n",
		"GET /a HTTP/1.1\r\nConnection: close\r\n\r\n", /* interpreted by http-parser */
		"GET /a HTTP/1.1\r\nCONTENT-LENGTH: 0\r\n\r\n",
		"GET /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET /a HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
		"GET /a HTTP/1.1\r\nProxy-Connection: keep-alive\r\n\r\n",
		"GET /a HTTP/1.1\r\nHost: a\r\n",              /* not a whole block */
		"GET",
	};

	(void)state;
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		if (fast(no[i], &f))
			fail_msg("taken: %s", no[i]);
}

static void test_at_most_64_fields(void **state)
{
	static char block[8192];
	static struct ec_h1fast f;
	size_t n = 0;
	int i;

	(void)state;
	n += (size_t)snprintf(block + n, sizeof block - n, "GET / HTTP/1.1\r\n");
	for (i = 0; i < 64; i++)
		n += (size_t)snprintf(block + n, sizeof block - n, "X-%d: %d\r\n", i, i);
	snprintf(block + n, sizeof block - n, "\r\n");
	assert_true(fast(block, &f));
	assert_int_equal(f.n_fields, 64);
	agree(block, strlen(block), &f);
	snprintf(block + n, sizeof block - n, "X-64: 64\r\n\r\n");
	assert_false(fast(block, &f));
}

/* ---- random ------------------------------------------------------------------------- */

static uint64_t rnd_state = 0x243f6a8885a308d3ull;

static unsigned rnd(unsigned n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (unsigned)(rnd_state >> 11) % n;
}

/* One of set[0, k), or in a clean round one of its first `good` entries. */
static void put_pick(char *b, size_t *n, const char *const *set, size_t k, int clean,
                     size_t good)
{
	const char *s = set[rnd((unsigned)(clean ? good : k))];

	memcpy(b + *n, s, strlen(s));
	*n += strlen(s);
}

/* A byte for a target or a value: in a clean round one the fast path takes in a target;
 * else mostly ordinary, sometimes anything but CR/LF/NUL (the core's scanner refuses
 * those before either parser runs). */
static char rnd_byte(int clean)
{
	static const char safe[] = "abcXYZ019-._~!$&'()*+,;=:@/?%";
	static const char common[] = "abcXYZ019-._~!$&'()*+,;=:@/?%# \t\"<>[]\\^`{|}";
	unsigned c;

	if (clean)
		return safe[rnd(sizeof safe - 1)];
	if (rnd(4) != 0)
		return common[rnd(sizeof common - 1)];
	do
		c = rnd(256);
	while (c == '\r' || c == '\n' || c == 0);
	return (char)c;
}

static void test_random_blocks_agree_with_http_parser(void **state)
{
	static const char *const methods[] = { "GET ", "HEAD ", "GET  ", "PUT ", "get " };
	static const char *const versions[] = { " HTTP/1.1\r\n", " HTTP/1.0\r\n", " HTTP/1.1 \r\n",
		                                " HTTP/1.9\r\n" };
	static const char *const names[] = {
		"Host", "host", "User-Agent", "Accept", "X-Forwarded-For", "Forwarded", "Cookie",
		"Range", "If-None-Match", "Keep-Alive", "X~!#$%&'*+-.^_`|", "Connection",
		"content-length", "Transfer-Encoding", "Upgrade", "Bad Name", "Bad\"Name", "",
	};
	static const char *const seps[] = { ":", ": ", ":\t", ":  \t ", " :" };
	static char block[4096];
	static struct ec_h1fast f;
	unsigned round, taken = 0;

	(void)state;
	for (round = 0; round < 200000; round++) {
		size_t n = 0, k, fields = rnd(6);
		int clean = rnd(2);

		put_pick(block, &n, methods, sizeof methods / sizeof methods[0], clean, 2);
		if (clean || rnd(10) != 0)
			block[n++] = '/';
		for (k = rnd(20); k > 0; k--)
			block[n++] = rnd_byte(clean);
		put_pick(block, &n, versions, sizeof versions / sizeof versions[0], clean, 2);
		for (; fields > 0; fields--) {
			put_pick(block, &n, names, sizeof names / sizeof names[0], clean, 11);
			put_pick(block, &n, seps, sizeof seps / sizeof seps[0], clean, 4);
			block[n++] = 'v'; /* a value is never empty in a clean round */
			for (k = rnd(12); k > 0; k--)
				block[n++] = rnd_byte(clean && rnd(8) != 0);
			memcpy(block + n, "\r\n", 2);
			n += 2;
		}
		memcpy(block + n, "\r\n", 2);
		n += 2;
		if (ec_h1fast_parse(block, n, &f)) {
			taken++;
			agree(block, n, &f);
		}
	}
	/* the generator must exercise the fast path, not only its refusals */
	print_message("%u of %u random blocks taken by the fast path\n", taken, round);
	assert_true(taken > 40000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_requests_are_taken),
		cmocka_unit_test(test_anything_else_is_left_to_http_parser),
		cmocka_unit_test(test_at_most_64_fields),
		cmocka_unit_test(test_random_blocks_agree_with_http_parser),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
