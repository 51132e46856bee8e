/* test_ec_token: signing, verifying and parsing echos URL tokens, key derivation and the
 * encodings, through common/ec_token.h only. Table-driven: each row is one cmocka test
 * named for the behaviour it checks. Fixed now_s; no clock, no network. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ec_err.h"
#include "ec_net.h"
#include "ec_token.h"

#define NOW 1700000000LL
#define EXP (NOW + 3600)
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t master1[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t master2[32] = "fedcba9876543210fedcba9876543210";

/* Box keys of "box-a" for kid 1 and 2, and of "box-b" for kid 1. */
static struct ec_token_keyring ring_a, ring_a1, ring_b;
static uint8_t key_a1[32], key_a2[32], key_b1[32];

static void rings_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	assert_int_equal(ec_token_derive_box_key(master1, 32, "box-a", key_a1), 0);
	assert_int_equal(ec_token_derive_box_key(master2, 32, "box-a", key_a2), 0);
	assert_int_equal(ec_token_derive_box_key(master1, 32, "box-b", key_b1), 0);
	memset(&ring_a, 0, sizeof ring_a);
	ring_a.keys[0].kid = 1;
	memcpy(ring_a.keys[0].key, key_a1, 32);
	ring_a.keys[0].len = 32;
	ring_a.keys[1].kid = 2;
	memcpy(ring_a.keys[1].key, key_a2, 32);
	ring_a.keys[1].len = 32;
	ring_a.n = 2;
	ring_a1 = ring_a;
	ring_a1.n = 1;
	memset(&ring_b, 0, sizeof ring_b);
	ring_b.keys[0].kid = 1;
	memcpy(ring_b.keys[0].key, key_b1, 32);
	ring_b.keys[0].len = 32;
	ring_b.n = 1;
}

static struct ec_token_claims claims_of(uint32_t kid, int64_t exp, const char *box,
                                        unsigned prefix, const char *net)
{
	struct ec_token_claims c;

	memset(&c, 0, sizeof c);
	c.kid = kid;
	c.exp_s = exp;
	snprintf(c.box, sizeof c.box, "%s", box);
	c.scope = prefix ? EC_TOKEN_SCOPE_PREFIX : EC_TOKEN_SCOPE_EXACT;
	c.prefix_segments = prefix;
	if (net != NULL) {
		c.has_net = 1;
		assert_int_equal(ec_prefix_parse(net, &c.net, &c.net_bits), 0);
	}
	return c;
}

/* ---- sign then verify ------------------------------------------------------------------ */

struct verify_row {
	const char *name;
	/* signing */
	uint32_t kid;
	const uint8_t *key;       /* NULL: the box-a key of kid */
	int64_t exp;
	const char *box;
	unsigned prefix;          /* 0: exact */
	const char *net;          /* NULL: none */
	const char *sign_path;
	/* verifying */
	const struct ec_token_keyring *ring;  /* NULL: ring_a */
	const char *verify_box;   /* NULL: "box-a" */
	const char *path;         /* NULL: sign_path */
	const char *client;       /* NULL: no client address */
	int64_t now;              /* 0: NOW */
	int want;
	const char *want_reason;  /* NULL: not checked */
};

static const struct verify_row verify_rows[] = {
	{ "exact scope verifies for the signed path", 1, NULL, EXP, "box-a", 0, NULL,
	  "/v/ab/seg1.ts", .want = 0 },
	{ "exact scope refuses a sibling path", 1, NULL, EXP, "box-a", 0, NULL,
	  "/v/ab/seg1.ts", .path = "/v/ab/seg2.ts", .want = EC_EBADSIG,
	  .want_reason = "bad signature" },
	{ "prefix scope covers another file in the directory", 1, NULL, EXP, "box-a", 2, NULL,
	  "/v/ab/index.m3u8", .path = "/v/ab/seg7.ts", .want = 0 },
	{ "prefix scope covers deeper directories", 1, NULL, EXP, "box-a", 2, NULL,
	  "/v/ab/index.m3u8", .path = "/v/ab/720p/seg7.ts", .want = 0 },
	{ "prefix /v/ab/ does not cover /v/abc", 1, NULL, EXP, "box-a", 2, NULL,
	  "/v/ab/index.m3u8", .path = "/v/abc/index.m3u8", .want = EC_EBADSIG },
	{ "prefix /v/ab/ does not cover the bare /v/ab", 1, NULL, EXP, "box-a", 2, NULL,
	  "/v/ab/index.m3u8", .path = "/v/ab", .want = EC_ESTATE },
	{ "prefix scope does not cover a sibling directory", 1, NULL, EXP, "box-a", 2, NULL,
	  "/v/ab/index.m3u8", .path = "/v/ac/index.m3u8", .want = EC_EBADSIG },
	{ "one-segment prefix covers its whole tree", 1, NULL, EXP, "box-a", 1, NULL,
	  "/v/ab/index.m3u8", .path = "/v/zz/x.ts", .want = 0 },
	{ "expired token is refused at exp", 1, NULL, EXP, "box-a", 0, NULL, "/f", .now = EXP,
	  .want = EC_EEXPIRED, .want_reason = "token expired" },
	{ "token verifies one second before exp", 1, NULL, EXP, "box-a", 0, NULL, "/f",
	  .now = EXP - 1, .want = 0 },
	{ "token for another box is refused", 1, NULL, EXP, "box-b", 0, NULL, "/f",
	  .want = EC_ESTATE, .want_reason = "token is for another box" },
	{ "token signed with another box's key is refused", 1, key_b1, EXP, "box-a", 0, NULL,
	  "/f", .want = EC_EBADSIG },
	{ "unknown key id is refused", 3, key_a1, EXP, "box-a", 0, NULL, "/f",
	  .want = EC_ENOENT, .want_reason = "unknown key id 3" },
	{ "rotation: old key id verifies while both are in the ring", 1, NULL, EXP, "box-a", 0,
	  NULL, "/f", .want = 0 },
	{ "rotation: new key id verifies while both are in the ring", 2, NULL, EXP, "box-a", 0,
	  NULL, "/f", .want = 0 },
	{ "rotation: new key id is unknown before boxes get it", 2, NULL, EXP, "box-a", 0, NULL,
	  "/f", .ring = &ring_a1, .want = EC_ENOENT },
	{ "key ids are not interchangeable", 2, key_a1, EXP, "box-a", 0, NULL, "/f",
	  .want = EC_EBADSIG },
	{ "v4 net admits a client inside", 1, NULL, EXP, "box-a", 0, "192.0.2.0/24", "/f",
	  .client = "192.0.2.77", .want = 0 },
	{ "v4 net refuses a client outside", 1, NULL, EXP, "box-a", 0, "192.0.2.0/24", "/f",
	  .client = "198.51.100.1", .want = EC_ESTATE,
	  .want_reason = "client outside the token's network" },
	{ "v4 net admits a v4-mapped v6 client", 1, NULL, EXP, "box-a", 0, "192.0.2.0/24", "/f",
	  .client = "::ffff:192.0.2.9", .want = 0 },
	{ "v4 net refuses a request without a client address", 1, NULL, EXP, "box-a", 0,
	  "192.0.2.0/24", "/f", .want = EC_ESTATE },
	{ "v6 net admits a client inside", 1, NULL, EXP, "box-a", 0, "2001:db8::/48", "/f",
	  .client = "2001:db8:0:1::5", .want = 0 },
	{ "v6 net refuses a client outside", 1, NULL, EXP, "box-a", 0, "2001:db8::/48", "/f",
	  .client = "2001:db8:1::5", .want = EC_ESTATE },
	{ "v6 net refuses a v4 client", 1, NULL, EXP, "box-a", 0, "2001:db8::/48", "/f",
	  .client = "192.0.2.1", .want = EC_ESTATE },
	{ "no net admits any client", 1, NULL, EXP, "box-a", 0, NULL, "/f",
	  .client = "203.0.113.1", .want = 0 },
	{ "verify refuses a traversal path even under the prefix", 1, NULL, EXP, "box-a", 1,
	  NULL, "/v/x", .path = "/v/../etc/passwd", .want = EC_EINVAL },
	{ "verify refuses an encoded dot path under the prefix", 1, NULL, EXP, "box-a", 1, NULL,
	  "/v/x", .path = "/v/%2e%2e/etc/passwd", .want = EC_EINVAL },
};

static void client_addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, s, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		ss->ss_family = AF_INET;
		return;
	}
	assert_int_equal(inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)ss)->sin6_addr), 1);
	ss->ss_family = AF_INET6;
}

static void test_verify_row(void **state)
{
	const struct verify_row *r = *state;
	struct ec_token_claims c, out;
	struct sockaddr_storage client;
	const uint8_t *key = r->key;
	char tok[EC_TOKEN_MAX_LEN + 1], err[128] = "";
	const char *path = r->path ? r->path : r->sign_path;
	int n, rc;

	rings_init();
	if (key == NULL)
		key = r->kid == 2 ? key_a2 : key_a1;
	c = claims_of(r->kid, r->exp, r->box, r->prefix, r->net);
	n = ec_token_sign(key, &c, r->sign_path, strlen(r->sign_path), tok, sizeof tok);
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(tok));
	if (r->client)
		client_addr(r->client, &client);
	rc = ec_token_verify(r->ring ? r->ring : &ring_a, tok, (size_t)n, path, strlen(path),
	                     r->verify_box ? r->verify_box : "box-a",
	                     r->client ? (struct sockaddr *)&client : NULL,
	                     r->now ? r->now : NOW, &out, err, sizeof err);
	if (rc != r->want)
		fail_msg("%s: token %s: got %d (%s), want %d", r->name, tok, rc, err, r->want);
	if (r->want_reason)
		assert_string_equal(err, r->want_reason);
	if (rc == 0) {
		assert_int_equal(out.kid, r->kid);
		assert_int_equal(out.exp_s, r->exp);
		assert_string_equal(out.box, r->box);
	}
}

/* ---- tampering: the MAC of one token on the fields of another -------------------------- */

struct tamper_row {
	const char *name;
	uint32_t kid;
	int64_t exp;
	const char *box;
	unsigned prefix;
	const char *net;
	int want;
};

/* Original: kid 1, EXP, box-a, exact, no net, path /v/ab/seg1.ts. */
static const struct tamper_row tamper_rows[] = {
	{ "tampered expiry fails the signature", 1, EXP + 86400, "box-a", 0, NULL, EC_EBADSIG },
	{ "tampered key id fails the signature", 2, EXP, "box-a", 0, NULL, EC_EBADSIG },
	{ "tampered scope kind fails the signature", 1, EXP, "box-a", 1, NULL, EC_EBADSIG },
	{ "tampered net fails the signature", 1, EXP, "box-a", 0, "0.0.0.0/0", EC_EBADSIG },
	{ "tampered box id fails the signature", 1, EXP, "box-b", 0, NULL, EC_EBADSIG },
};

static void test_tamper_row(void **state)
{
	const struct tamper_row *r = *state;
	struct ec_token_claims orig, c;
	char tok[300], forged[300], err[128];
	const char *path = "/v/ab/seg1.ts", *mac, *box;
	int n;

	rings_init();
	orig = claims_of(1, EXP, "box-a", 0, NULL);
	n = ec_token_sign(key_a1, &orig, path, strlen(path), tok, sizeof tok);
	assert_true(n > 0);
	mac = strrchr(tok, '~') + 1;
	c = claims_of(r->kid, r->exp, r->box, r->prefix, r->net);
	n = ec_token_sign(key_a1, &c, path, strlen(path), forged, sizeof forged);
	assert_true(n > 0);
	strcpy(strrchr(forged, '~') + 1, mac);
	box = r->box;
	n = ec_token_verify(strcmp(box, "box-b") == 0 ? &ring_b : &ring_a, forged, strlen(forged),
	                    path, strlen(path), box, NULL, NOW, NULL, err, sizeof err);
	if (n != r->want)
		fail_msg("%s: %s: got %d (%s)", r->name, forged, n, err);
}

static void test_tampered_mac(void **state)
{
	struct ec_token_claims c;
	char tok[300], err[128];
	const char *path = "/f";
	size_t i;
	int n;

	rings_init();
	c = claims_of(1, EXP, "box-a", 0, NULL);
	n = ec_token_sign(key_a1, &c, path, 2, tok, sizeof tok);
	assert_true(n > 0);
	/* every single-character change of the MAC is refused (the last character changes
	 * to a value with zero low bits so the encoding stays canonical) */
	for (i = (size_t)n - 43; i < (size_t)n; i++) {
		char saved = tok[i];
		tok[i] = (i == (size_t)n - 1) ? (saved == 'A' ? 'E' : 'A') : (saved == 'A' ? 'B' : 'A');
		assert_int_equal(ec_token_verify(&ring_a, tok, (size_t)n, path, 2, "box-a", NULL, NOW,
		                                 NULL, err, sizeof err), EC_EBADSIG);
		tok[i] = saved;
	}
	assert_int_equal(ec_token_verify(&ring_a, tok, (size_t)n, path, 2, "box-a", NULL, NOW,
	                                 NULL, err, sizeof err), 0);
}

/* ---- malformed tokens ------------------------------------------------------------------ */

#define MAC43 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

struct parse_row {
	const char *name;
	const char *tok;   /* NULL: the too-long token */
	const char *want_reason;  /* NULL: parses */
};

static const struct parse_row parse_rows[] = {
	{ "well-formed exact token parses", "1~1~1700003600~box-a~e~-~" MAC43, NULL },
	{ "well-formed prefix token with v6 net parses",
	  "1~65535~1700003600~b.0_x-Y~d3~2001:db8::_48~" MAC43, NULL },
	{ "token longer than the limit is refused", NULL, "token too long" },
	{ "empty token is refused", "", "empty token" },
	{ "missing field is refused", "1~1~1700003600~box-a~e~" MAC43,
	  "token has 6 fields, expected 7" },
	{ "extra field is refused", "1~1~1700003600~box-a~e~-~x~" MAC43,
	  "token has too many fields" },
	{ "duplicate separator is refused", "1~1~~1700003600~box-a~e~-~" MAC43,
	  "empty field 3 in token" },
	{ "trailing separator is refused", "1~1~1700003600~box-a~e~-~" MAC43 "~",
	  "token has too many fields" },
	{ "unknown version is refused", "2~1~1700003600~box-a~e~-~" MAC43,
	  "unsupported token version" },
	{ "key id 0 is refused", "1~0~1700003600~box-a~e~-~" MAC43, "bad key id in token" },
	{ "key id above 65535 is refused", "1~65536~1700003600~box-a~e~-~" MAC43,
	  "bad key id in token" },
	{ "key id with a leading zero is refused", "1~01~1700003600~box-a~e~-~" MAC43,
	  "bad key id in token" },
	{ "signed expiry is refused", "1~1~+1700003600~box-a~e~-~" MAC43, "bad expiry in token" },
	{ "negative expiry is refused", "1~1~-1~box-a~e~-~" MAC43, "bad expiry in token" },
	{ "box id with a slash is refused", "1~1~1700003600~box/a~e~-~" MAC43,
	  "bad box id in token" },
	{ "box id of 64 characters is refused",
	  "1~1~1700003600~bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb~e~-~" MAC43,
	  "bad box id in token" },
	{ "unknown scope kind is refused", "1~1~1700003600~box-a~x~-~" MAC43,
	  "bad scope in token" },
	{ "prefix of zero segments is refused", "1~1~1700003600~box-a~d0~-~" MAC43,
	  "bad scope in token" },
	{ "prefix without a depth is refused", "1~1~1700003600~box-a~d~-~" MAC43,
	  "bad scope in token" },
	{ "net with host bits set is refused", "1~1~1700003600~box-a~e~192.0.2.1_24~" MAC43,
	  "bad network in token" },
	{ "net without a length is refused", "1~1~1700003600~box-a~e~192.0.2.0~" MAC43,
	  "bad network in token" },
	{ "net in non-canonical v6 form is refused",
	  "1~1~1700003600~box-a~e~2001:DB8::/48~" MAC43, "bad network in token" },
	{ "signature with a padding character is refused",
	  "1~1~1700003600~box-a~e~-~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
	  "bad signature encoding in token" },
	{ "signature with a non-base64url character is refused",
	  "1~1~1700003600~box-a~e~-~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+",
	  "bad signature encoding in token" },
	{ "short signature is refused", "1~1~1700003600~box-a~e~-~AAAA",
	  "bad signature encoding in token" },
	{ "signature with non-zero padding bits is refused",
	  "1~1~1700003600~box-a~e~-~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB",
	  "bad signature encoding in token" },
};

static void test_parse_row(void **state)
{
	const struct parse_row *r = *state;
	char longtok[EC_TOKEN_MAX_LEN + 2], err[128] = "";
	struct ec_token_claims c;
	const char *tok = r->tok;
	int rc;

	if (tok == NULL) {
		memset(longtok, 'a', sizeof longtok - 1);
		longtok[sizeof longtok - 1] = '\0';
		tok = longtok;
	}
	rc = ec_token_parse(tok, strlen(tok), &c, err, sizeof err);
	if (r->want_reason == NULL) {
		if (rc != 0)
			fail_msg("%s: %s", r->name, err);
		return;
	}
	assert_int_equal(rc, EC_EINVAL);
	assert_string_equal(err, r->want_reason);
	/* the verifier refuses the same text the same way */
	rings_init();
	assert_int_equal(ec_token_verify(&ring_a, tok, strlen(tok), "/f", 2, "box-a", NULL, NOW,
	                                 NULL, err, sizeof err), EC_EINVAL);
}

/* ---- paths ------------------------------------------------------------------------------ */

struct path_row {
	const char *name;
	const char *path;
	size_t len;        /* 0: strlen */
	int ok;
};

static const struct path_row path_rows[] = {
	{ "plain path is accepted", "/v/ab/seg-1.ts", 0, 1 },
	{ "path with a percent-encoded space is accepted", "/v/a%20b.ts", 0, 1 },
	{ "path with dots inside a name is accepted", "/v/a.b.c", 0, 1 },
	{ "relative path is refused", "v/ab", 0, 0 },
	{ "dot-dot segment is refused", "/v/../etc/passwd", 0, 0 },
	{ "trailing dot-dot is refused", "/v/..", 0, 0 },
	{ "dot-dot inside a name is refused", "/v/a..b", 0, 0 },
	{ "dot segment is refused", "/v/./x", 0, 0 },
	{ "trailing dot segment is refused", "/v/x/.", 0, 0 },
	{ "double slash is refused", "/v//x", 0, 0 },
	{ "encoded dot (lower case) is refused", "/v/%2e%2e/x", 0, 0 },
	{ "encoded dot (upper case) is refused", "/v/%2E./x", 0, 0 },
	{ "encoded slash is refused", "/v/a%2fb", 0, 0 },
	{ "encoded upper-case slash is refused", "/v/a%2Fb", 0, 0 },
	{ "encoded backslash is refused", "/v/a%5cb", 0, 0 },
	{ "encoded NUL is refused", "/v/a%00b", 0, 0 },
	{ "stray percent is refused", "/v/100%", 0, 0 },
	{ "bad percent escape is refused", "/v/%zz", 0, 0 },
	{ "backslash is refused", "/v/a\\b", 0, 0 },
	{ "NUL byte is refused", "/v/a\0b", 6, 0 },
	{ "newline is refused", "/v/a\nb", 0, 0 },
};

static void test_path_row(void **state)
{
	const struct path_row *r = *state;
	size_t len = r->len ? r->len : strlen(r->path);
	struct ec_token_claims c;
	const char *why = NULL;
	char tok[300];
	int rc = ec_token_path_check(r->path, len, &why);

	if ((rc == 0) != r->ok)
		fail_msg("%s: got %d (%s)", r->name, rc, why ? why : "");
	/* signing refuses what the check refuses */
	rings_init();
	c = claims_of(1, EXP, "box-a", 0, NULL);
	rc = ec_token_sign(key_a1, &c, r->path, len, tok, sizeof tok);
	assert_int_equal(rc > 0, r->ok);
}

/* ---- keys --------------------------------------------------------------------------------- */

static void test_hkdf_rfc5869_case1(void **state)
{
	uint8_t ikm[22], salt[13], info[10], okm[42], want[42];
	size_t i;

	memset(ikm, 0x0b, sizeof ikm);
	for (i = 0; i < sizeof salt; i++)
		salt[i] = (uint8_t)i;
	for (i = 0; i < sizeof info; i++)
		info[i] = (uint8_t)(0xf0 + i);
	assert_int_equal(ec_hex_decode("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4"
	                               "c5bf34007208d5b887185865", 84, want, sizeof want), 42);
	assert_int_equal(ec_token_hkdf_sha256(salt, sizeof salt, ikm, sizeof ikm, info,
	                                      sizeof info, okm, sizeof okm), 0);
	assert_memory_equal(okm, want, sizeof want);
}

static void test_derived_keys_differ_per_box(void **state)
{
	uint8_t a[32], a2[32], b[32];

	assert_int_equal(ec_token_derive_box_key(master1, 32, "box-a", a), 0);
	assert_int_equal(ec_token_derive_box_key(master1, 32, "box-a", a2), 0);
	assert_int_equal(ec_token_derive_box_key(master1, 32, "box-b", b), 0);
	assert_memory_equal(a, a2, 32);
	assert_memory_not_equal(a, b, 32);
	assert_memory_not_equal(a, master1, 32);
	assert_int_equal(ec_token_derive_box_key(master1, 32, "bad/box", a), EC_EINVAL);
	assert_int_equal(ec_token_derive_box_key(master1, 8, "box-a", a), EC_EINVAL);
}

static void test_keyring_derive_keeps_kids(void **state)
{
	struct ec_token_keyring masters, box;
	char err[128];

	rings_init();
	memset(&masters, 0, sizeof masters);
	assert_int_equal(ec_token_keyring_add(&masters, "1:3031323334353637383961626364656630313233"
	                                      "343536373839616263646566", err, sizeof err), 0);
	assert_int_equal(ec_token_keyring_derive(&masters, "box-a", &box), 0);
	assert_int_equal(box.n, 1);
	assert_int_equal(box.keys[0].kid, 1);
	assert_int_equal(box.keys[0].len, 32);
	assert_memory_equal(box.keys[0].key, key_a1, 32);
}

struct keyspec_row {
	const char *name;
	const char *spec;
	int want;
	size_t len;
};

static const struct keyspec_row keyspec_rows[] = {
	{ "32-byte key parses", "7:000102030405060708090a0b0c0d0e0f000102030405060708090a0b0c0d0e0f",
	  0, 32 },
	{ "16-byte master key parses", "9:000102030405060708090A0B0C0D0E0F", 0, 16 },
	{ "key without a key id is refused", "000102030405060708090a0b0c0d0e0f", EC_EINVAL, 0 },
	{ "key id 0 is refused", "0:000102030405060708090a0b0c0d0e0f", EC_EINVAL, 0 },
	{ "key id above 65535 is refused", "70000:000102030405060708090a0b0c0d0e0f", EC_EINVAL, 0 },
	{ "short key is refused", "1:0001020304050607", EC_EINVAL, 0 },
	{ "odd hex length is refused", "1:000102030405060708090a0b0c0d0e0f0", EC_EINVAL, 0 },
	{ "non-hex key is refused", "1:zz0102030405060708090a0b0c0d0e0f", EC_EINVAL, 0 },
};

static void test_keyspec_row(void **state)
{
	const struct keyspec_row *r = *state;
	struct ec_token_keyring kr;
	char err[128] = "";
	int rc;

	memset(&kr, 0, sizeof kr);
	rc = ec_token_keyring_add(&kr, r->spec, err, sizeof err);
	if (rc != r->want)
		fail_msg("%s: got %d (%s)", r->name, rc, err);
	if (rc == 0)
		assert_int_equal(kr.keys[0].len, r->len);
	else
		assert_true(err[0] != '\0');
}

static void test_keyring_refuses_duplicates_and_overflow(void **state)
{
	struct ec_token_keyring kr;
	char spec[64], err[128];
	int i;

	memset(&kr, 0, sizeof kr);
	for (i = 1; i <= EC_TOKEN_MAX_KEYS; i++) {
		snprintf(spec, sizeof spec, "%d:000102030405060708090a0b0c0d0e0f", i);
		assert_int_equal(ec_token_keyring_add(&kr, spec, err, sizeof err), 0);
	}
	assert_int_equal(ec_token_keyring_add(&kr, "1:000102030405060708090a0b0c0d0e0f", err,
	                                      sizeof err), EC_EINVAL);
	assert_string_equal(err, "key id 1 given twice");
	assert_int_equal(ec_token_keyring_add(&kr, "99:000102030405060708090a0b0c0d0e0f", err,
	                                      sizeof err), EC_EFULL);
	assert_non_null(ec_token_keyring_find(&kr, 3));
	assert_null(ec_token_keyring_find(&kr, 99));
}

/* ---- encodings and canonical form ---------------------------------------------------------- */

static void test_b64url_roundtrip_and_strictness(void **state)
{
	uint8_t in[40], out[40];
	char text[64];
	size_t n;
	int len;

	for (n = 0; n < sizeof in; n++)
		in[n] = (uint8_t)(n * 37 + 250);
	for (n = 0; n <= sizeof in; n++) {
		len = ec_b64url_encode(in, n, text, sizeof text);
		assert_true(len >= 0);
		assert_null(strchr(text, '='));
		assert_int_equal(ec_b64url_decode(text, (size_t)len, out, sizeof out), (int)n);
		assert_memory_equal(in, out, n);
	}
	assert_int_equal(ec_b64url_decode("A", 1, out, sizeof out), -1);
	assert_int_equal(ec_b64url_decode("AB", 2, out, sizeof out), -1);  /* bits left over */
	assert_int_equal(ec_b64url_decode("AA==", 4, out, sizeof out), -1);
	assert_int_equal(ec_b64url_encode(in, 3, text, 4), -1);            /* no room for NUL */
}

static void test_token_text_is_canonical(void **state)
{
	struct ec_token_claims c;
	char tok[300];
	int n;

	rings_init();
	c = claims_of(12, 1700003600, "box-a", 2, "2001:db8::/48");
	n = ec_token_sign(key_a1, &c, "/v/ab/x.ts", 10, tok, sizeof tok);
	assert_true(n > 0);
	assert_int_equal(strncmp(tok, "1~12~1700003600~box-a~d2~2001:db8::_48~", 39), 0);
	assert_int_equal(strlen(tok + 39), 43);
	/* the same prefix token for any path under the prefix */
	{
		char tok2[300];
		assert_int_equal(ec_token_sign(key_a1, &c, "/v/ab/other/y.ts", 16, tok2,
		                               sizeof tok2), n);
		assert_string_equal(tok, tok2);
	}
	/* too small an output buffer, by one byte (the NUL) and by more; just large enough */
	assert_int_equal(ec_token_sign(key_a1, &c, "/v/ab/x.ts", 10, tok, 20), EC_ERANGE);
	assert_int_equal(ec_token_sign(key_a1, &c, "/v/ab/x.ts", 10, tok, (size_t)n), EC_ERANGE);
	assert_int_equal(ec_token_sign(key_a1, &c, "/v/ab/x.ts", 10, tok, (size_t)n + 1), n);
	assert_int_equal(strlen(tok), n);
	/* path with fewer segments than the prefix */
	assert_int_equal(ec_token_sign(key_a1, &c, "/v", 2, tok, sizeof tok), EC_EINVAL);
	/* exact scope, no network, the largest key id and a 10-digit expiry */
	c = claims_of(65535, 9999999999, "b.0_x-Y", 0, NULL);
	n = ec_token_sign(key_a1, &c, "/v/ab/x.ts", 10, tok, sizeof tok);
	assert_int_equal(n, 31 + 43);
	assert_int_equal(strncmp(tok, "1~65535~9999999999~b.0_x-Y~e~-~", 31), 0);
}

/* The canonical string, recomputed here with OpenSSL directly, pins the format. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
static void test_mac_covers_documented_canonical_string(void **state)
{
	const char *canon = "echos-token-v1\n5\n1700003600\nbox-a\nd\n/v/ab/\n192.0.2.0/24\n";
	struct ec_token_claims c;
	unsigned char mac[32];
	unsigned int maclen = 32;
	char tok[300], b64[64];

	rings_init();
	c = claims_of(5, 1700003600, "box-a", 2, "192.0.2.0/24");
	assert_true(ec_token_sign(key_a1, &c, "/v/ab/x.ts", 10, tok, sizeof tok) > 0);
	HMAC(EVP_sha256(), key_a1, 32, (const unsigned char *)canon, strlen(canon), mac, &maclen);
	ec_b64url_encode(mac, 32, b64, sizeof b64);
	assert_string_equal(strrchr(tok, '~') + 1, b64);
}

/* Every byte value inside a segment: refused exactly when it is a control, DEL, a
 * backslash or a '%' without two hex digits after it; anything else (non-ASCII too) is
 * the caller's business. */
static void test_path_check_every_byte(void **state)
{
	(void)state;
	for (int b = 0; b < 256; b++) {
		char p[4] = { '/', 'a', (char)b, 'b' };
		int bad = b < 0x20 || b == 0x7f || b == '\\' || b == '%';
		const char *why = NULL;

		assert_int_equal(ec_token_path_check(p, 4, &why), bad ? EC_EINVAL : 0);
		assert_true(bad == (why != NULL));
	}
}

/* Keyed HMAC contexts are kept per key: many keys in turn (more than the contexts kept,
 * some alike in their first bytes so they land on one context) each get the MAC
 * OpenSSL's one-shot HMAC gives under that key, round after round. */
static void test_mac_under_many_keys_in_turn(void **state)
{
	const char *canon = "echos-token-v1\n5\n1700003600\nbox-a\nd\n/v/ab/\n192.0.2.0/24\n";
	static uint8_t keys[300][32];
	struct ec_token_claims c;
	uint64_t x = 0x243f6a8885a308d3ull;
	int k, round;

	(void)state;
	for (k = 0; k < 300; k++)
		for (int b = 0; b < 32; b++) {
			x = x * 6364136223846793005ull + 1442695040888963407ull;
			keys[k][b] = (uint8_t)(x >> 56);
		}
	for (k = 0; k < 300; k += 3) /* every third key shares its first 16 bytes with key 0 */
		memcpy(keys[k], keys[0], 16);
	c = claims_of(5, 1700003600, "box-a", 2, "192.0.2.0/24");
	for (round = 0; round < 3; round++)
		for (k = 0; k < 300; k++) {
			int i = (k * 7 + round) % 300; /* a different order each round */
			unsigned char mac[32];
			unsigned int maclen = 32;
			char tok[300], b64[64];

			assert_true(ec_token_sign(keys[i], &c, "/v/ab/x.ts", 10, tok, sizeof tok) > 0);
			HMAC(EVP_sha256(), keys[i], 32, (const unsigned char *)canon, strlen(canon),
			     mac, &maclen);
			ec_b64url_encode(mac, 32, b64, sizeof b64);
			assert_string_equal(strrchr(tok, '~') + 1, b64);
		}
}

/* Verification answers are computed again for every key: after a token verified under
 * kid 1, the same token against a keyring whose kid 1 is another key is refused, and
 * verifies again under the first (rotation never reuses a MAC of another key). */
static void test_mac_memo_is_per_key(void **state)
{
	struct ec_token_keyring other;
	struct ec_token_claims c;
	char tok[300];
	int n, i;

	(void)state;
	rings_init();
	other = ring_a1;
	memcpy(other.keys[0].key, key_a2, 32);
	c = claims_of(1, EXP, "box-a", 1, NULL);
	n = ec_token_sign(key_a1, &c, "/v/seg1.ts", 10, tok, sizeof tok);
	assert_true(n > 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(ec_token_verify(&ring_a1, tok, (size_t)n, "/v/seg2.ts", 10,
		                                 "box-a", NULL, NOW, NULL, NULL, 0), 0);
		assert_int_equal(ec_token_verify(&other, tok, (size_t)n, "/v/seg2.ts", 10,
		                                 "box-a", NULL, NOW, NULL, NULL, 0), EC_EBADSIG);
	}
}

/* ---- runner ------------------------------------------------------------------------------ */

#define ADD_ROWS(rows, fn)                                                            \
	for (i = 0; i < LEN(rows); i++)                                              \
		tests[n++] = (struct CMUnitTest){ rows[i].name, fn, NULL, NULL,      \
		                                  (void *)&rows[i] }
#define ADD(fn, nm) tests[n++] = (struct CMUnitTest){ nm, fn, NULL, NULL, NULL }

int main(void)
{
	struct CMUnitTest tests[200];
	size_t i, n = 0;

	ADD_ROWS(verify_rows, test_verify_row);
	ADD_ROWS(tamper_rows, test_tamper_row);
	ADD_ROWS(parse_rows, test_parse_row);
	ADD_ROWS(path_rows, test_path_row);
	ADD_ROWS(keyspec_rows, test_keyspec_row);
	ADD(test_tampered_mac, "any change to the signature is refused");
	ADD(test_mac_memo_is_per_key, "a MAC computed under one key never answers for another");
	ADD(test_hkdf_rfc5869_case1, "HKDF-SHA256 matches RFC 5869 test case 1");
	ADD(test_derived_keys_differ_per_box, "derived box keys are per box and deterministic");
	ADD(test_keyring_derive_keeps_kids, "a derived keyring keeps the master key ids");
	ADD(test_keyring_refuses_duplicates_and_overflow,
	    "keyring refuses a duplicate key id and a ninth key");
	ADD(test_b64url_roundtrip_and_strictness, "base64url round-trips and decodes strictly");
	ADD(test_token_text_is_canonical, "token text has the documented layout");
	ADD(test_mac_covers_documented_canonical_string,
	    "the MAC covers the documented canonical string");
	ADD(test_mac_under_many_keys_in_turn, "many keys in turn each get their own MAC");
	ADD(test_path_check_every_byte, "a path byte is refused exactly when the rules say");
	assert_true(n <= LEN(tests));
	return _cmocka_run_group_tests("ec_token", tests, n, NULL, NULL);
}
