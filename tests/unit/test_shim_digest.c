/* test_shim_digest: streaming SHA-256 and the header forms the origin-shim sends: RFC 9530
 * Repr-Digest and the fallback ETag, against known vectors.
 * The Makefile links unit tests with common/ and policy/ only, so the module is included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../origin-shim/shim_digest.c"

struct digest_row {
	const char *name;
	const char *input;
	size_t chunk;          /* feed in pieces of this many bytes (0 = all at once) */
	const char *repr;
	const char *etag;
};

/* sha-256("") = e3b0c442...; sha-256("abc") = ba7816bf... (FIPS 180-2) */
static const struct digest_row digest_rows[] = {
	{ "empty object", "", 0, "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:",
	  "\"e3b0c44298fc1c14\"" },
	{ "abc at once", "abc", 0, "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:",
	  "\"ba7816bf8f01cfea\"" },
	{ "abc byte by byte gives the same digest", "abc", 1,
	  "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:", "\"ba7816bf8f01cfea\"" },
};

static void test_digests(void **state)
{
	struct shim_sha256 h;
	uint8_t d[SHIM_SHA256_LEN];
	char repr[SHIM_REPR_DIGEST_LEN], etag[SHIM_ETAG_LEN];

	assert_int_equal(shim_sha256_init(&h), 0);
	for (size_t i = 0; i < sizeof digest_rows / sizeof digest_rows[0]; i++) {
		const struct digest_row *r = &digest_rows[i];
		size_t len = strlen(r->input), step = r->chunk ? r->chunk : len;
		assert_int_equal(shim_sha256_begin(&h), 0);
		for (size_t off = 0; off < len; off += step)
			assert_int_equal(shim_sha256_update(&h, r->input + off,
			                 len - off < step ? len - off : step), 0);
		assert_int_equal(shim_sha256_end(&h, d), 0);
		if (strcmp(shim_digest_repr(d, repr), r->repr) != 0)
			fail_msg("%s: repr %s, want %s", r->name, repr, r->repr);
		if (strcmp(shim_digest_etag(d, etag), r->etag) != 0)
			fail_msg("%s: etag %s, want %s", r->name, etag, r->etag);
	}
	shim_sha256_fini(&h);
	shim_sha256_fini(&h);  /* twice is harmless */
}

static void test_repr_fits_its_buffer_exactly(void **state)
{
	uint8_t d[SHIM_SHA256_LEN];
	char repr[SHIM_REPR_DIGEST_LEN + 8];

	memset(d, 0xff, sizeof d);
	memset(repr, 'x', sizeof repr);
	shim_digest_repr(d, repr);
	assert_int_equal(strlen(repr), 54);
	assert_true(strlen(repr) < SHIM_REPR_DIGEST_LEN);
	assert_string_equal(repr, "sha-256=://////////////////////////////////////////8=:");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_digests),
		cmocka_unit_test(test_repr_fits_its_buffer_exactly),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
