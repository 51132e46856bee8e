/* rdr_locate: client location from the topology file, then the MMDB databases.
 * Owns the loaded topology and MMDB handles; a reload builds the new ones completely
 * before freeing the old, and keeps the old one when the new one fails. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_geo.h"
#include "ec_log.h"
#include "ec_topo.h"
#include "rdr_conf.h"
#include "rdr_locate.h"

/* err as "file: reason", whether or not the lower layer named the file already. */
static void locate_err(char *err, size_t errlen, const char *file, const char *why)
{
	if (strncmp(why, file, strlen(file)) == 0)
		snprintf(err, errlen, "%s", why);
	else
		snprintf(err, errlen, "%s: %s", file, why);
}

static int locate_has_geo(const struct rdr_conf *conf)
{
	return conf->geoip_city[0] || conf->geoip_asn[0];
}

static const char *locate_geo_name(const struct rdr_conf *conf)
{
	return conf->geoip_city[0] ? conf->geoip_city : conf->geoip_asn;
}

int rdr_locate_init(struct rdr_locator *loc, const struct rdr_conf *conf, char *err,
                    size_t errlen)
{
	char why[512];

	memset(loc, 0, sizeof *loc);
	loc->cache = calloc(RDR_LOCATE_CACHE, sizeof *loc->cache);
	if (conf->topology_file[0]) {
		loc->topo = ec_topo_load(conf->topology_file, why, sizeof why);
		if (!loc->topo) {
			locate_err(err, errlen, conf->topology_file, why);
			return EC_EINVAL;
		}
	}
	if (locate_has_geo(conf)) {
		loc->geo = ec_geo_open(conf->geoip_city, conf->geoip_asn, why, sizeof why);
		if (!loc->geo) {
			locate_err(err, errlen, locate_geo_name(conf), why);
			ec_topo_free(loc->topo);
			loc->topo = NULL;
			free(loc->cache);
			loc->cache = NULL;
			return EC_EINVAL;
		}
	}
	return 0;
}

int rdr_locate_reload(struct rdr_locator *loc, const struct rdr_conf *conf)
{
	char why[512], msg[1024];
	int failed = 0;

	/* the kept answers point into the files about to be replaced */
	if (loc->cache)
		memset(loc->cache, 0, RDR_LOCATE_CACHE * sizeof *loc->cache);

	if (!conf->topology_file[0]) {
		ec_topo_free(loc->topo);
		loc->topo = NULL;
	} else {
		struct ec_topo *t = ec_topo_load(conf->topology_file, why, sizeof why);

		if (!t) {
			locate_err(msg, sizeof msg, conf->topology_file, why);
			ec_log_err("reload: %s; keeping the old one", msg);
			failed++;
		} else {
			ec_topo_free(loc->topo);
			loc->topo = t;
			ec_log_info("reload: %s: %zu prefixes", conf->topology_file,
			            ec_topo_count(t));
		}
	}
	if (!locate_has_geo(conf)) {
		ec_geo_free(loc->geo);
		loc->geo = NULL;
	} else {
		struct ec_geo *g = ec_geo_open(conf->geoip_city, conf->geoip_asn, why, sizeof why);

		if (!g) {
			locate_err(msg, sizeof msg, locate_geo_name(conf), why);
			ec_log_err("reload: %s; keeping the old one", msg);
			failed++;
		} else {
			ec_geo_free(loc->geo);
			loc->geo = g;
			ec_log_info("reload: MMDB %s%s%s loaded", conf->geoip_city,
			            conf->geoip_city[0] && conf->geoip_asn[0] ? ", " : "",
			            conf->geoip_asn);
		}
	}
	return failed;
}

void rdr_locate_fini(struct rdr_locator *loc)
{
	ec_topo_free(loc->topo);
	ec_geo_free(loc->geo);
	free(loc->cache);
	memset(loc, 0, sizeof *loc);
}

/* The cache key of an address: family tag and address bytes; 0 when not IP. */
static int locate_key(const struct sockaddr *sa, uint8_t key[17])
{
	memset(key, 0, 17);
	if (sa->sa_family == AF_INET) {
		key[0] = 4;
		memcpy(key + 1, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
		return 1;
	}
	if (sa->sa_family == AF_INET6) {
		key[0] = 6;
		memcpy(key + 1, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
		return 1;
	}
	return 0;
}

static size_t locate_slot(const uint8_t key[17])
{
	uint64_t a, b;

	memcpy(&a, key + 1, 8);
	memcpy(&b, key + 9, 8);
	a = (a ^ key[0]) * 0x9e3779b97f4a7c15ull ^ b * 0xc2b2ae3d27d4eb4full;
	return (size_t)(a >> 52) & (RDR_LOCATE_CACHE - 1);
}

void rdr_locate_client(struct rdr_locator *loc, const struct sockaddr *sa,
                       struct pol_client *c, const char **region)
{
	const struct ec_topo_loc *tl;
	struct rdr_locate_ent *e = NULL;
	struct ec_geo_loc gl;
	uint8_t key[17];

	loc->lookups++;
	if (loc->cache && locate_key(sa, key)) {
		e = &loc->cache[locate_slot(key)];
		if (memcmp(e->key, key, sizeof key) == 0) {
			loc->cache_hits++;
			*c = e->c;
			*region = e->region;
			return;
		}
	}
	tl = loc->topo ? ec_topo_lookup(loc->topo, sa) : NULL;
	memset(c, 0, sizeof *c);
	*region = "_";
	if (tl) {
		c->pop_hash = tl->pop_hash;
		c->region_hash = tl->region_hash;
		if (tl->region && tl->region[0])
			*region = tl->region;
	}
	if (loc->geo) {
		memset(&gl, 0, sizeof gl);
		switch (ec_geo_lookup(loc->geo, sa, &gl)) {
		case 0:
			c->asn = gl.asn;
			c->has_loc = gl.has_loc;
			c->lat = gl.lat;
			c->lon = gl.lon;
			break;
		case EC_EIO:
			loc->geo_errors++;
			return; /* not kept: the next request tries (and counts) again */
		default:
			break;
		}
	}
	if (e) {
		memcpy(e->key, key, sizeof key);
		e->c = *c;
		e->region = *region;
	}
}
