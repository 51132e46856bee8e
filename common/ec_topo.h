/* ec_topo: the operator's topology file (CIDR -> PoP and region) with longest-prefix
 * match over IPv4 and IPv6. File format, one entry per line, '#' comments:
 *     10.1.0.0/16      pop-paris-1   eu-west
 *     2001:db8:1::/48  pop-paris-1   eu-west
 * Loaded into flat sorted interval arrays (binary search, no per-prefix allocation), so
 * 100k+ prefixes load in well under a second and take a few MiB.
 * Does not watch the file: the daemon reloads on SIGHUP and swaps the pointer. */
#ifndef ECHOS_COMMON_EC_TOPO_H
#define ECHOS_COMMON_EC_TOPO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct ec_topo;

struct ec_topo_loc {
	const char *pop;      /* PoP name, owned by the topology */
	const char *region;   /* region name, owned by the topology */
	uint64_t pop_hash;    /* ec_topo_name_hash(pop) */
	uint64_t region_hash; /* ec_topo_name_hash(region) */
	unsigned prefix_bits; /* length of the matching prefix */
};

/* Loads a topology file. Returns a new table owned by the caller (free with
 * ec_topo_free), or NULL with "file:line: what was expected, what was seen" (or the
 * errno text) in err. An empty file gives an empty table. */
struct ec_topo *ec_topo_load(const char *path, char *err, size_t errlen);
/* The same from a memory buffer; `name` labels error messages. */
struct ec_topo *ec_topo_parse(const char *buf, size_t len, const char *name, char *err,
                              size_t errlen);
void ec_topo_free(struct ec_topo *t);

/* Longest-prefix match. Returns a pointer owned by t (valid until ec_topo_free), or
 * NULL when no prefix covers the address. IPv4-mapped IPv6 addresses match IPv4 entries. */
const struct ec_topo_loc *ec_topo_lookup(const struct ec_topo *t, const struct sockaddr *sa);
size_t ec_topo_count(const struct ec_topo *t); /* prefixes loaded */
size_t ec_topo_mem_bytes(const struct ec_topo *t); /* bytes held by the loaded table */

/* The hash used for PoP and region names everywhere (64-bit FNV-1a); never 0. */
uint64_t ec_topo_name_hash(const char *name, size_t len);

#endif
