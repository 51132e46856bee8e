/* test_ec_geo: lookups in the MaxMind test databases (known entries from their README),
 * refusal of wrong, corrupt and hostile files, and byte-flipped copies that must never
 * crash. Databases come from $ECHOS_GEOIP_DIR (default ../shared/geoip, relative to the
 * repository root where the tests run); without them the tests are skipped. */
#include <arpa/inet.h>
#include <dirent.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ec_err.h"
#include "ec_geo.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *geo_dir(void)
{
	const char *d = getenv("ECHOS_GEOIP_DIR");

	return d && *d ? d : "../shared/geoip";
}

/* Full path of a test database, or skips the test when the directory is missing. */
static const char *db_path(const char *name, char *buf, size_t len)
{
	struct stat st;

	if (stat(geo_dir(), &st) != 0) {
		print_message("no GeoIP test data in %s: set ECHOS_GEOIP_DIR\n", geo_dir());
		skip();
	}
	if (!name)
		return NULL;
	snprintf(buf, len, "%s/%s", geo_dir(), name);
	return buf;
}

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

/* --- known entries ------------------------------------------------------------------ */

struct lookup_row {
	const char *name;
	const char *city;   /* file names in the GeoIP directory, or NULL */
	const char *asn;
	const char *addr;
	int rc;
	int has_loc;
	double lat, lon;
	const char *country;
	uint32_t asn_num;
};

static const struct lookup_row lookup_rows[] = {
	{ "London address gives London coordinates and GB", "GeoIP2-City-Test.mmdb", NULL,
	  "81.2.69.142", 0, 1, 51.5142, -0.0931, "GB", 0 },
	{ "Linkoping address gives SE", "GeoIP2-City-Test.mmdb", NULL, "89.160.20.112", 0, 1,
	  58.4167, 15.6167, "SE", 0 },
	{ "Milton address gives US", "GeoIP2-City-Test.mmdb", NULL, "216.160.83.56", 0, 1,
	  47.2513, -122.3149, "US", 0 },
	{ "IPv6 address in 2001:218::/32 gives JP", "GeoIP2-City-Test.mmdb", NULL,
	  "2001:218::1", 0, 1, 35.68536, 139.75309, "JP", 0 },
	{ "IPv4-mapped London address gives London", "GeoIP2-City-Test.mmdb", NULL,
	  "::ffff:81.2.69.142", 0, 1, 51.5142, -0.0931, "GB", 0 },
	{ "GeoLite2 City layout gives London too", "GeoLite2-City-Test.mmdb", NULL,
	  "81.2.69.142", 0, 1, 51.5142, -0.0931, "GB", 0 },
	{ "address in no City network is not found", "GeoIP2-City-Test.mmdb", NULL,
	  "1.1.1.1", EC_ENOENT, 0, 0, 0, "", 0 },
	{ "ASN of 1.128.0.1 is 1221", NULL, "GeoLite2-ASN-Test.mmdb", "1.128.0.1", 0, 0, 0, 0,
	  "", 1221 },
	{ "ASN of 12.81.92.1 is 7018", NULL, "GeoLite2-ASN-Test.mmdb", "12.81.92.1", 0, 0, 0,
	  0, "", 7018 },
	{ "ASN of 31.224.0.1 is 3320", NULL, "GeoLite2-ASN-Test.mmdb", "31.224.0.1", 0, 0, 0,
	  0, "", 3320 },
	{ "ISP database gives the ASN too", NULL, "GeoIP2-ISP-Test.mmdb", "1.128.0.1", 0, 0,
	  0, 0, "", 1221 },
	{ "mapped address finds the ASN", NULL, "GeoLite2-ASN-Test.mmdb", "::ffff:1.128.0.1",
	  0, 0, 0, 0, "", 1221 },
	{ "both databases: London has a city and no ASN", "GeoIP2-City-Test.mmdb",
	  "GeoLite2-ASN-Test.mmdb", "81.2.69.142", 0, 1, 51.5142, -0.0931, "GB", 0 },
	{ "both databases: an ASN-only address has an ASN and no city",
	  "GeoIP2-City-Test.mmdb", "GeoLite2-ASN-Test.mmdb", "12.81.92.1", 0, 0, 0, 0, "",
	  7018 },
	{ "both databases: an address in neither is not found", "GeoIP2-City-Test.mmdb",
	  "GeoLite2-ASN-Test.mmdb", "1.1.1.1", EC_ENOENT, 0, 0, 0, "", 0 },
	{ "no databases: nothing is found", NULL, NULL, "81.2.69.142", EC_ENOENT, 0, 0, 0, "",
	  0 },
};

static void test_lookup_row(void **state)
{
	const struct lookup_row *r = *state;
	char a[512], b[512], err[512];
	struct sockaddr_storage ss;
	struct ec_geo_loc loc;
	struct ec_geo *g;

	db_path(NULL, NULL, 0);
	g = ec_geo_open(r->city ? db_path(r->city, a, sizeof a) : NULL,
	                r->asn ? db_path(r->asn, b, sizeof b) : "", err, sizeof err);
	if (!g)
		fail_msg("open failed: %s", err);
	assert_int_equal(ec_geo_lookup(g, addr_of(r->addr, &ss), &loc), r->rc);
	assert_int_equal(loc.has_loc, r->has_loc);
	if (r->has_loc) {
		assert_true(fabs(loc.lat - r->lat) < 1e-4);
		assert_true(fabs(loc.lon - r->lon) < 1e-4);
	}
	assert_string_equal(loc.country, r->country);
	assert_int_equal(loc.asn, r->asn_num);
	assert_int_equal(ec_geo_errors(g), 0);
	ec_geo_free(g);
}

/* --- files refused at open --------------------------------------------------------- */

struct open_row {
	const char *name;
	const char *city;     /* relative to the GeoIP directory */
	const char *asn;
	unsigned flags;
	const char *err;      /* expected after "<dir>/<file>: " */
};

static const struct open_row open_rows[] = {
	{ "ASN database in the City slot is refused", "GeoLite2-ASN-Test.mmdb", NULL, 0,
	  "expected a City database (database_type with \"City\"), got database_type "
	  "\"GeoLite2-ASN\"" },
	{ "Country database in the City slot is refused", "GeoIP2-Country-Test.mmdb", NULL, 0,
	  "expected a City database (database_type with \"City\"), got database_type "
	  "\"GeoIP2-Country\"" },
	{ "City database in the ASN slot is refused", NULL, "GeoIP2-City-Test.mmdb", 0,
	  "expected an ASN or ISP database (database_type with \"ASN\" or \"ISP\"), got "
	  "database_type \"GeoIP2-City\"" },
	{ "missing file is refused with the errno text", "no-such-file.mmdb", NULL, 0,
	  "No such file or directory" },
	{ "directory is refused", "bad-data", NULL, 0, "not a regular file" },
	{ "text file is refused", "README.md", NULL, 0,
	  "not a valid MaxMind DB: The MaxMind DB file contains invalid metadata" },
	{ "broken double format is caught by the open-time probe",
	  "bad-data/GeoIP2-City-Test-Broken-Double-Format.mmdb", NULL, 0,
	  "corrupt data record at offset 155: The MaxMind DB file's data section contains "
	  "bad data (unknown data type or corrupt data)" },
	{ "invalid node count is refused", "bad-data/GeoIP2-City-Test-Invalid-Node-Count.mmdb",
	  NULL, 0, "not a valid MaxMind DB: The MaxMind DB file contains invalid metadata" },
	{ "test database is not a City database",
	  "bad-data/libmaxminddb-corrupt-search-tree.mmdb", NULL, 0,
	  "expected a City database (database_type with \"City\"), got database_type "
	  "\"Test\"" },
	{ "search tree pointing back to the root is refused even as any type",
	  "bad-data/libmaxminddb-corrupt-search-tree.mmdb", NULL, EC_GEO_ANY_TYPE,
	  "corrupt search tree: node 1 points back to the root" },
	{ "record pointing into the separator is refused (max left)",
	  "bad-data/libmaxminddb-separator-record-max-left.mmdb", NULL, EC_GEO_ANY_TYPE,
	  "corrupt search tree: node 0 points into the data section separator" },
	{ "record pointing into the separator is refused (min left)",
	  "bad-data/libmaxminddb-separator-record-min-left.mmdb", NULL, EC_GEO_ANY_TYPE,
	  "corrupt search tree: node 0 points into the data section separator" },
	{ "record pointing into the separator is refused (min right)",
	  "bad-data/libmaxminddb-separator-record-min-right.mmdb", NULL, EC_GEO_ANY_TYPE,
	  "corrupt search tree: node 0 points into the data section separator" },
	{ "deeply nested maps are refused", "bad-data/libmaxminddb-deep-nesting.mmdb", NULL,
	  EC_GEO_ANY_TYPE, "corrupt data record at offset 0: The MaxMind DB file's data "
	  "section contains bad data (unknown data type or corrupt data)" },
	{ "deeply nested arrays are refused", "bad-data/libmaxminddb-deep-array-nesting.mmdb",
	  NULL, EC_GEO_ANY_TYPE, "corrupt data record at offset 0: The MaxMind DB file's "
	  "data section contains bad data (unknown data type or corrupt data)" },
	{ "oversized array is refused", "bad-data/libmaxminddb-oversized-array.mmdb", NULL,
	  EC_GEO_ANY_TYPE, "corrupt data record at offset 0: The MaxMind DB file's data "
	  "section contains bad data (unknown data type or corrupt data)" },
	{ "oversized map is refused", "bad-data/libmaxminddb-oversized-map.mmdb", NULL,
	  EC_GEO_ANY_TYPE, "corrupt data record at offset 0: The MaxMind DB file's data "
	  "section contains bad data (unknown data type or corrupt data)" },
	{ "metadata marker alone is refused", "bad-data/libmaxminddb-metadata-marker-only.mmdb",
	  NULL, EC_GEO_ANY_TYPE, "not a valid MaxMind DB: " },
	{ "offset integer overflow is refused",
	  "bad-data/libmaxminddb-offset-integer-overflow.mmdb", NULL, EC_GEO_ANY_TYPE,
	  "not a valid MaxMind DB: The MaxMind DB file's data section contains bad data "
	  "(unknown data type or corrupt data)" },
};

static void test_open_row(void **state)
{
	const struct open_row *r = *state;
	char a[512], b[512], err[512], want[1200];
	const char *city = r->city ? db_path(r->city, a, sizeof a) : NULL;
	const char *asn = r->asn ? db_path(r->asn, b, sizeof b) : NULL;
	struct ec_geo *g;

	db_path(NULL, NULL, 0);
	g = ec_geo_open_flags(city, asn, r->flags, err, sizeof err);
	assert_null(g);
	snprintf(want, sizeof want, "%s: %s", city ? city : asn, r->err);
	if (strncmp(err, want, strlen(want)) != 0)
		fail_msg("error was:  %s\nexpected: %s", err, want);
}

/* --- every hostile file, whatever libmaxminddb makes of it --------------------------- */

static const char *const probe_addrs[] = {
	"0.0.0.0", "1.1.1.1", "81.2.69.142", "127.0.0.1", "255.255.255.255",
	"::", "::1", "2001:218::1", "::ffff:81.2.69.142", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
};

/* Opens path both ways and looks every probe address up. Returns how many lookups
 * answered EC_EIO; fails on any other unexpected answer. */
static unsigned exercise(const char *path, int as_asn, unsigned flags, int *opened)
{
	char err[512];
	unsigned eio = 0;
	struct ec_geo *g = ec_geo_open_flags(as_asn ? NULL : path, as_asn ? path : NULL, flags,
	                                     err, sizeof err);

	*opened = g != NULL;
	if (!g) {
		/* a clear message that names the file */
		assert_true(strncmp(err, path, strlen(path)) == 0);
		assert_true(strlen(err) > strlen(path) + 2);
		return 0;
	}
	for (size_t i = 0; i < LEN(probe_addrs); i++) {
		struct sockaddr_storage ss;
		struct ec_geo_loc loc;
		int rc = ec_geo_lookup(g, addr_of(probe_addrs[i], &ss), &loc);

		assert_true(rc == 0 || rc == EC_ENOENT || rc == EC_EIO);
		if (loc.has_loc) {
			assert_true(loc.lat >= -90 && loc.lat <= 90);
			assert_true(loc.lon >= -180 && loc.lon <= 180);
		}
		eio += rc == EC_EIO;
	}
	assert_int_equal(ec_geo_errors(g), eio);
	ec_geo_free(g);
	return eio;
}

static void test_every_bad_data_file_is_refused_as_city_or_fails_cleanly(void **state)
{
	char dir[512], path[1024];
	struct dirent *de;
	unsigned files = 0;
	DIR *d;

	(void)state;
	db_path(NULL, NULL, 0);
	snprintf(dir, sizeof dir, "%s/bad-data", geo_dir());
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		int opened;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		files++;
		/* as the City database, strictly: refused at open, or lookups say EC_EIO */
		if (exercise(path, 0, 0, &opened) == 0)
			assert_false(opened);
		/* any slot, any type: never a crash, only the three documented answers */
		exercise(path, 1, 0, &opened);
		exercise(path, 0, EC_GEO_ANY_TYPE, &opened);
		exercise(path, 1, EC_GEO_ANY_TYPE, &opened);
	}
	closedir(d);
	assert_true(files >= 10);
}

/* Byte flips anywhere in a good City database (tree, data, metadata), fixed seed: each
 * copy is refused at open or answers lookups with 0, EC_ENOENT or EC_EIO. */
static void test_byte_flipped_city_databases_never_crash(void **state)
{
	char src[512], path[] = "/tmp/echos-geo-XXXXXX";
	uint64_t x = 0x2545F4914F6CDD1DULL;
	unsigned refused = 0, eio = 0;
	unsigned char *orig, *buf;
	FILE *f;
	long size;
	int fd;

	(void)state;
	f = fopen(db_path("GeoIP2-City-Test.mmdb", src, sizeof src), "rb");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	rewind(f);
	orig = malloc((size_t)size);
	buf = malloc((size_t)size);
	assert_true(orig && buf);
	assert_int_equal(fread(orig, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);

	for (int round = 0; round < 300; round++) {
		int opened;

		memcpy(buf, orig, (size_t)size);
		for (int k = 0; k < 1 + round % 8; k++) {
			x ^= x >> 12, x ^= x << 25, x ^= x >> 27;
			buf[(x * 0x2545F4914F6CDD1DULL >> 11) % (uint64_t)size] ^=
				(unsigned char)(1u << (x % 8));
		}
		f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(buf, 1, (size_t)size, f), (size_t)size);
		fclose(f);
		eio += exercise(path, 0, 0, &opened);
		refused += !opened;
	}
	print_message("300 flipped copies: %u refused at open, %u lookups hit corrupt data\n",
	              refused, eio);
	unlink(path);
	free(orig);
	free(buf);
}

static void test_free_null_and_lookup_null_are_safe(void **state)
{
	struct sockaddr_storage ss;
	struct ec_geo_loc loc;
	char err[64];
	struct ec_geo *g;

	(void)state;
	ec_geo_free(NULL);
	assert_int_equal(ec_geo_lookup(NULL, addr_of("1.2.3.4", &ss), &loc), EC_ENOENT);
	g = ec_geo_open(NULL, "", err, sizeof err);
	assert_non_null(g);
	memset(&ss, 0, sizeof ss);
	ss.ss_family = AF_UNIX;
	assert_int_equal(ec_geo_lookup(g, (struct sockaddr *)&ss, &loc), EC_ENOENT);
	assert_int_equal(ec_geo_errors(g), 0);
	ec_geo_free(g);
}

int main(void)
{
	struct CMUnitTest tests[LEN(lookup_rows) + LEN(open_rows) + 8];
	size_t n = 0;

	for (size_t i = 0; i < LEN(lookup_rows); i++)
		tests[n++] = (struct CMUnitTest){ lookup_rows[i].name, test_lookup_row, NULL,
			                          NULL, (void *)&lookup_rows[i] };
	for (size_t i = 0; i < LEN(open_rows); i++)
		tests[n++] = (struct CMUnitTest){ open_rows[i].name, test_open_row, NULL, NULL,
			                          (void *)&open_rows[i] };
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_every_bad_data_file_is_refused_as_city_or_fails_cleanly);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(
		test_byte_flipped_city_databases_never_crash);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_free_null_and_lookup_null_are_safe);
	return _cmocka_run_group_tests("ec_geo", tests, n, NULL, NULL);
}
