/* ec_geo: client location from MaxMind DB files (libmaxminddb): city coordinates and
 * country from a City database, autonomous system number from an ASN (or ISP) database.
 * Either file may be absent. Corrupt or hostile files give a clear error at open or at
 * lookup, never a crash. Does not reload itself: the daemon swaps on SIGHUP. */
#ifndef ECHOS_COMMON_EC_GEO_H
#define ECHOS_COMMON_EC_GEO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ec_geo;

struct ec_geo_loc {
	int has_loc;       /* lat/lon valid */
	double lat, lon;   /* degrees */
	uint32_t asn;      /* 0: unknown */
	char country[3];   /* ISO 3166-1 alpha-2, "" if unknown */
};

/* Opens the databases (either path may be NULL or ""). Returns a new handle owned by the
 * caller (free with ec_geo_free), or NULL with "path: reason" in err. A file that opens
 * but whose metadata or search tree is invalid is refused here where libmaxminddb can tell. */
struct ec_geo *ec_geo_open(const char *city_path, const char *asn_path, char *err,
                           size_t errlen);
/* The same with flags. EC_GEO_ANY_TYPE skips the database_type check (for tools and
 * tests that open arbitrary MaxMind DB files); every other check still runs. */
#define EC_GEO_ANY_TYPE 0x1u
struct ec_geo *ec_geo_open_flags(const char *city_path, const char *asn_path,
                                 unsigned flags, char *err, size_t errlen);
void ec_geo_free(struct ec_geo *g);

/* Looks the address up. Returns 0 (out filled, fields unknown left zero), EC_ENOENT (no
 * entry in either database) or EC_EIO (database corrupt at this entry: counted, logged
 * by the caller; out keeps what the other database gave). IPv4-mapped IPv6 addresses
 * are looked up as IPv4. Never crashes on corrupt data. */
int ec_geo_lookup(const struct ec_geo *g, const struct sockaddr *sa, struct ec_geo_loc *out);
uint64_t ec_geo_errors(const struct ec_geo *g); /* lookups that hit corrupt data */

#endif
