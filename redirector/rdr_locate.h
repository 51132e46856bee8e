/* rdr_locate: where a client is: the operator's topology file first (PoP, region), then
 * the MMDB databases (AS number, coordinates). Holds the loaded files and swaps them on
 * reload only after the new ones loaded completely. Does not choose boxes. */
#ifndef ECHOS_REDIRECTOR_RDR_LOCATE_H
#define ECHOS_REDIRECTOR_RDR_LOCATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pol_types.h"

struct ec_topo;
struct ec_geo;
struct rdr_conf;

/* A viewer asks for many objects (an HLS playlist, then every segment) from one address:
 * the last answers are kept, direct-mapped by address, until the files reload. */
#define RDR_LOCATE_CACHE 4096 /* slots, a power of two */

struct rdr_locate_ent {
	uint8_t key[17];        /* key[0]: 4 or 6 (0: empty); the address after it */
	const char *region;     /* into topo */
	struct pol_client c;
};

struct rdr_locator {
	struct ec_topo *topo;   /* owned; NULL: no topology file */
	struct ec_geo *geo;     /* owned; NULL: no MMDB file */
	uint64_t geo_errors;    /* lookups that hit corrupt MMDB data */
	uint64_t lookups;
	uint64_t cache_hits;
	struct rdr_locate_ent *cache; /* RDR_LOCATE_CACHE slots; NULL: none (no memory) */
};

/* Loads the topology and MMDB files named in conf into loc (zeroed first). Returns 0,
 * or EC_EINVAL with "file: reason" in err and nothing loaded. */
int rdr_locate_init(struct rdr_locator *loc, const struct rdr_conf *conf, char *err,
                    size_t errlen);
/* Reloads every file named in conf; each one that fails is logged ("reload: <file>:
 * <reason>; keeping the old one") and the old one kept. Returns the number of failures. */
int rdr_locate_reload(struct rdr_locator *loc, const struct rdr_conf *conf);
void rdr_locate_fini(struct rdr_locator *loc);

/* Fills *c for the client at sa; *region gets the region name for popularity keys
 * (owned by loc, valid until the next reload) or "_" when the topology does not say. */
void rdr_locate_client(struct rdr_locator *loc, const struct sockaddr *sa,
                       struct pol_client *c, const char **region);

#endif
