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

struct rdr_locator {
	struct ec_topo *topo;   /* owned; NULL: no topology file */
	struct ec_geo *geo;     /* owned; NULL: no MMDB file */
	uint64_t geo_errors;    /* lookups that hit corrupt MMDB data */
	uint64_t lookups;
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
