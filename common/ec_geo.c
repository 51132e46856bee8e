/* ec_geo: client location from MaxMind DB files: coordinates and country from a City
 * database, autonomous system number from an ASN or ISP database (libmaxminddb, mmap).
 * Checks each file at open (metadata, a bounded walk of the search tree, a decode of the
 * first records) and every value at lookup; does not reload. Owns the two MMDB handles. */
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <maxminddb.h>

#include "ec_err.h"
#include "ec_geo.h"

/* Open-time check budget: enough to cover a test database entirely and the top of a
 * production one, small enough to stay in the tens of milliseconds. */
#define GEO_PROBE_MAX_NODES (1u << 20)
#define GEO_PROBE_MAX_RECORDS 512u

enum geo_kind { GEO_CITY = 0, GEO_ASN };

struct geo_db {
	MMDB_s mmdb;
	int is_open;
};

struct ec_geo {
	struct geo_db db[2];          /* indexed by enum geo_kind */
	_Atomic uint64_t *errors;     /* lookups that hit corrupt data; points at errors_n */
	_Atomic uint64_t errors_n;    /* counted through a const handle, hence the pointer */
};

static void geo_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void geo_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Reads one double field. Returns 1 (found, *v set), 0 (absent) or EC_EIO (corrupt,
 * wrong type, or outside [-limit, limit]). */
static int geo_get_coord(MMDB_entry_s *e, const char *key, double limit, double *v)
{
	MMDB_entry_data_s d;
	int st = MMDB_get_value(e, &d, "location", key, NULL);

	if (st == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR || (st == MMDB_SUCCESS && !d.has_data))
		return 0;
	if (st != MMDB_SUCCESS)
		return EC_EIO;
	if (d.type == MMDB_DATA_TYPE_DOUBLE)
		*v = d.double_value;
	else if (d.type == MMDB_DATA_TYPE_FLOAT)
		*v = d.float_value;
	else
		return EC_EIO;
	if (!isfinite(*v) || *v < -limit || *v > limit)
		return EC_EIO;
	return 1;
}

/* Reads <map>/iso_code. Returns 1 (two upper-case letters copied), 0 (absent) or EC_EIO. */
static int geo_get_country(MMDB_entry_s *e, const char *map, char out[3])
{
	MMDB_entry_data_s d;
	int st = MMDB_get_value(e, &d, map, "iso_code", NULL);

	if (st == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR || (st == MMDB_SUCCESS && !d.has_data))
		return 0;
	if (st != MMDB_SUCCESS || d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size != 2)
		return EC_EIO;
	for (int i = 0; i < 2; i++) {
		if (d.utf8_string[i] < 'A' || d.utf8_string[i] > 'Z')
			return EC_EIO;
	}
	out[0] = d.utf8_string[0];
	out[1] = d.utf8_string[1];
	out[2] = '\0';
	return 1;
}

/* Fills the City fields of out from one record. Returns 0 or EC_EIO. */
static int geo_read_city(MMDB_entry_s *e, struct ec_geo_loc *out)
{
	double lat = 0, lon = 0;
	int a = geo_get_coord(e, "latitude", 90.0, &lat);
	int b = geo_get_coord(e, "longitude", 180.0, &lon);
	int c = geo_get_country(e, "country", out->country);

	if (a < 0 || b < 0 || c < 0)
		return EC_EIO;
	if (c == 0 && geo_get_country(e, "registered_country", out->country) < 0)
		return EC_EIO;
	if (a == 1 && b == 1) {
		out->has_loc = 1;
		out->lat = lat;
		out->lon = lon;
	}
	return 0;
}

/* Fills out->asn from one record. Returns 0 or EC_EIO. */
static int geo_read_asn(MMDB_entry_s *e, struct ec_geo_loc *out)
{
	MMDB_entry_data_s d;
	int st = MMDB_get_value(e, &d, "autonomous_system_number", NULL);
	uint64_t v;

	if (st == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR || (st == MMDB_SUCCESS && !d.has_data))
		return 0;
	if (st != MMDB_SUCCESS)
		return EC_EIO;
	switch (d.type) {
	case MMDB_DATA_TYPE_UINT16: v = d.uint16; break;
	case MMDB_DATA_TYPE_UINT32: v = d.uint32; break;
	case MMDB_DATA_TYPE_UINT64: v = d.uint64; break;
	default: return EC_EIO;
	}
	if (v > UINT32_MAX)
		return EC_EIO;
	out->asn = (uint32_t)v;
	return 0;
}

static int geo_read(enum geo_kind kind, MMDB_entry_s *e, struct ec_geo_loc *out)
{
	return kind == GEO_CITY ? geo_read_city(e, out) : geo_read_asn(e, out);
}

/* Decodes one data record completely (catches bad types, sizes, pointers and nesting
 * anywhere in it), then reads our fields from it. Returns 0 or an MMDB status, with
 * MMDB_INVALID_DATA_ERROR for a field of the wrong type or range. */
static int geo_probe_record(enum geo_kind kind, MMDB_entry_s *e)
{
	MMDB_entry_data_list_s *list = NULL;
	struct ec_geo_loc loc = { 0 };
	int st = MMDB_get_entry_data_list(e, &list);

	MMDB_free_entry_data_list(list);
	if (st != MMDB_SUCCESS)
		return st;
	if (geo_read(kind, e, &loc) != 0)
		return MMDB_INVALID_DATA_ERROR;
	return MMDB_SUCCESS;
}

/* Reads the first GEO_PROBE_MAX_NODES nodes in file order, reachable or not: no record
 * may point back to the root (a cycle), into the 16-byte separator after the tree, or
 * past the data section. Returns 0, or EC_EIO with the reason in err. */
static int geo_probe_scan(const MMDB_s *m, const char *path, char *err, size_t errlen)
{
	uint32_t n = m->metadata.node_count;

	if (n > GEO_PROBE_MAX_NODES)
		n = GEO_PROBE_MAX_NODES;
	for (uint32_t node = 0; node < n; node++) {
		MMDB_search_node_s sn;
		int st = MMDB_read_node(m, node, &sn);

		if (st != MMDB_SUCCESS) {
			geo_err(err, errlen, "%s: search tree node %u: %s", path, node,
			        MMDB_strerror(st));
			return EC_EIO;
		}
		for (int side = 0; side < 2; side++) {
			uint64_t rec = side ? sn.right_record : sn.left_record;
			uint8_t type = side ? sn.right_record_type : sn.left_record_type;
			const char *why = NULL;

			if (rec == 0)
				why = "points back to the root";
			else if (type == MMDB_RECORD_TYPE_DATA && rec - m->metadata.node_count < 16)
				why = "points into the data section separator";
			else if (type == MMDB_RECORD_TYPE_INVALID)
				why = "points past the data section";
			if (why) {
				geo_err(err, errlen, "%s: corrupt search tree: node %u %s", path,
				        node, why);
				return EC_EIO;
			}
		}
	}
	return 0;
}

/* Walks the search tree depth-first from the root, at most one level per address bit
 * (so a cycle cannot loop) and at most GEO_PROBE_MAX_NODES nodes, checking that every
 * record is a node, empty, or a pointer past the 16-byte separator into the data
 * section, and decoding the first GEO_PROBE_MAX_RECORDS data records. Returns 0, or
 * EC_EIO with the reason in err. */
static int geo_probe_walk(enum geo_kind kind, const MMDB_s *m, const char *path,
                          char *err, size_t errlen)
{
	struct { uint32_t node; uint16_t depth; } stack[130];
	unsigned max_depth = m->metadata.ip_version == 6 ? 128 : 32;
	uint32_t nodes = 0, records = 0, last_off = UINT32_MAX;
	size_t sp = 0;

	stack[sp].node = 0;
	stack[sp++].depth = 0;
	while (sp > 0 && nodes < GEO_PROBE_MAX_NODES) {
		uint32_t node = stack[sp - 1].node;
		uint16_t depth = stack[--sp].depth;
		MMDB_search_node_s sn;
		int st = MMDB_read_node(m, node, &sn);

		nodes++;
		if (st != MMDB_SUCCESS) {
			geo_err(err, errlen, "%s: search tree node %u: %s", path, node,
			        MMDB_strerror(st));
			return EC_EIO;
		}
		/* right first onto the stack, so the walk goes in address order */
		for (int side = 1; side >= 0; side--) {
			uint64_t rec = side ? sn.right_record : sn.left_record;
			uint8_t type = side ? sn.right_record_type : sn.left_record_type;
			MMDB_entry_s e = side ? sn.right_record_entry : sn.left_record_entry;

			if (type == MMDB_RECORD_TYPE_SEARCH_NODE) {
				if (depth + 1u >= max_depth) {
					geo_err(err, errlen, "%s: corrupt search tree: deeper than "
					        "%u bits at node %u", path, max_depth, node);
					return EC_EIO;
				}
				EC_ASSERT(sp < EC_ARRAY_LEN(stack));
				stack[sp].node = (uint32_t)rec;
				stack[sp++].depth = (uint16_t)(depth + 1);
			} else if (type == MMDB_RECORD_TYPE_DATA) {
				if (rec - m->metadata.node_count < 16) {
					geo_err(err, errlen, "%s: corrupt search tree: node %u "
					        "points into the data section separator", path, node);
					return EC_EIO;
				}
				if (records >= GEO_PROBE_MAX_RECORDS || e.offset == last_off)
					continue;
				records++;
				last_off = e.offset;
				st = geo_probe_record(kind, &e);
				if (st != MMDB_SUCCESS) {
					geo_err(err, errlen, "%s: corrupt data record at offset %u: %s",
					        path, e.offset, MMDB_strerror(st));
					return EC_EIO;
				}
			} else if (type != MMDB_RECORD_TYPE_EMPTY) {
				geo_err(err, errlen, "%s: corrupt search tree: node %u points "
				        "past the data section", path, node);
				return EC_EIO;
			}
		}
	}
	return 0;
}

static int geo_probe(enum geo_kind kind, const MMDB_s *m, const char *path, char *err,
                     size_t errlen)
{
	if (geo_probe_scan(m, path, err, errlen) != 0)
		return EC_EIO;
	return geo_probe_walk(kind, m, path, err, errlen);
}

static int geo_type_ok(enum geo_kind kind, const char *type)
{
	if (!type)
		return 0;
	if (kind == GEO_CITY)
		return strstr(type, "City") != NULL;
	return strstr(type, "ASN") != NULL || strstr(type, "ISP") != NULL;
}

/* Opens and checks one database. Returns 0, or EC_EIO / EC_EINVAL with "path: reason"
 * in err (db left closed). */
static int geo_open_one(struct geo_db *db, enum geo_kind kind, const char *path,
                        unsigned flags, char *err, size_t errlen)
{
	static const char *const want[] = { "a City database (database_type with \"City\")",
		                            "an ASN or ISP database (database_type with "
		                            "\"ASN\" or \"ISP\")" };
	const MMDB_metadata_s *md;
	struct stat stt;
	int st;

	/* a FIFO or device would block MMDB_open or mmap something that is not a file */
	if (stat(path, &stt) != 0) {
		geo_err(err, errlen, "%s: %s", path, strerror(errno));
		return EC_EIO;
	}
	if (!S_ISREG(stt.st_mode)) {
		geo_err(err, errlen, "%s: not a regular file", path);
		return EC_EINVAL;
	}
	errno = 0;
	st = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
	if (st != MMDB_SUCCESS) {
		if ((st == MMDB_IO_ERROR || st == MMDB_FILE_OPEN_ERROR) && errno != 0)
			geo_err(err, errlen, "%s: cannot open MaxMind DB: %s (%s)", path,
			        MMDB_strerror(st), strerror(errno));
		else if (st == MMDB_IO_ERROR || st == MMDB_FILE_OPEN_ERROR)
			geo_err(err, errlen, "%s: cannot open MaxMind DB: %s", path,
			        MMDB_strerror(st));
		else
			geo_err(err, errlen, "%s: not a valid MaxMind DB: %s", path,
			        MMDB_strerror(st));
		return EC_EIO;
	}
	db->is_open = 1;
	md = &db->mmdb.metadata;
	if (!(flags & EC_GEO_ANY_TYPE) && !geo_type_ok(kind, md->database_type)) {
		geo_err(err, errlen, "%s: expected %s, got database_type \"%.64s\"", path,
		        want[kind], md->database_type ? md->database_type : "");
		goto fail;
	}
	if (md->binary_format_major_version != 2 || md->node_count == 0 ||
	    (md->ip_version != 4 && md->ip_version != 6)) {
		geo_err(err, errlen, "%s: invalid metadata: format %u, ip_version %u, "
		        "node_count %u (expected format 2, ip_version 4 or 6, nodes > 0)",
		        path, md->binary_format_major_version, md->ip_version,
		        md->node_count);
		goto fail;
	}
	if (geo_probe(kind, &db->mmdb, path, err, errlen) != 0)
		goto fail;
	return 0;
fail:
	MMDB_close(&db->mmdb);
	db->is_open = 0;
	return EC_EINVAL;
}

struct ec_geo *ec_geo_open_flags(const char *city_path, const char *asn_path,
                                 unsigned flags, char *err, size_t errlen)
{
	struct ec_geo *g = calloc(1, sizeof *g);

	if (err && errlen)
		err[0] = '\0';
	if (!g) {
		geo_err(err, errlen, "geo: out of memory");
		return NULL;
	}
	g->errors = &g->errors_n;
	if ((city_path && *city_path &&
	     geo_open_one(&g->db[GEO_CITY], GEO_CITY, city_path, flags, err, errlen) != 0) ||
	    (asn_path && *asn_path &&
	     geo_open_one(&g->db[GEO_ASN], GEO_ASN, asn_path, flags, err, errlen) != 0)) {
		ec_geo_free(g);
		return NULL;
	}
	return g;
}

struct ec_geo *ec_geo_open(const char *city_path, const char *asn_path, char *err,
                           size_t errlen)
{
	return ec_geo_open_flags(city_path, asn_path, 0, err, errlen);
}

void ec_geo_free(struct ec_geo *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < EC_ARRAY_LEN(g->db); i++) {
		if (g->db[i].is_open)
			MMDB_close(&g->db[i].mmdb);
	}
	free(g);
}

/* Looks sa up in one database. Returns 1 (found, fields filled), 0 (no entry) or
 * EC_EIO. An IPv6 address in an IPv4-only database is simply not there. */
static int geo_lookup_one(const struct geo_db *db, enum geo_kind kind,
                          const struct sockaddr *sa, struct ec_geo_loc *out)
{
	int st = MMDB_SUCCESS;
	MMDB_lookup_result_s r = MMDB_lookup_sockaddr(&db->mmdb, sa, &st);
	struct ec_geo_loc tmp = *out; /* a corrupt record must not leave half its fields */

	if (st == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR)
		return 0;
	if (st != MMDB_SUCCESS)
		return EC_EIO;
	if (!r.found_entry)
		return 0;
	if (geo_read(kind, &r.entry, &tmp) != 0)
		return EC_EIO;
	*out = tmp;
	return 1;
}

/* Reads both databases. An IPv4-mapped IPv6 address is looked up as IPv4, so it finds
 * the same entry in IPv4-only and IPv6 databases alike. When one database is corrupt at
 * this address, out keeps what the other gave and EC_EIO is returned (and counted). */
int ec_geo_lookup(const struct ec_geo *g, const struct sockaddr *sa, struct ec_geo_loc *out)
{
	struct sockaddr_in v4;
	int found = 0, failed = 0;

	memset(out, 0, sizeof *out);
	if (!g || !sa)
		return EC_ENOENT;
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			memset(&v4, 0, sizeof v4);
			v4.sin_family = AF_INET;
			memcpy(&v4.sin_addr, &in6->sin6_addr.s6_addr[12], 4);
			sa = (const struct sockaddr *)&v4;
		}
	} else if (sa->sa_family != AF_INET) {
		return EC_ENOENT;
	}
	for (size_t i = 0; i < EC_ARRAY_LEN(g->db); i++) {
		int rc;

		if (!g->db[i].is_open)
			continue;
		rc = geo_lookup_one(&g->db[i], (enum geo_kind)i, sa, out);
		if (rc < 0)
			failed = 1;
		else
			found |= rc;
	}
	if (failed) {
		atomic_fetch_add_explicit(g->errors, 1, memory_order_relaxed);
		return EC_EIO;
	}
	return found ? 0 : EC_ENOENT;
}

uint64_t ec_geo_errors(const struct ec_geo *g)
{
	return g ? atomic_load_explicit(g->errors, memory_order_relaxed) : 0;
}
