/* rdr_locate: client location from the topology file, then the MMDB databases.
 * Owns the loaded topology and MMDB handles; a reload builds the new ones completely
 * before freeing the old, and keeps the old one when the new one fails. */
#include <stdio.h>
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
			return EC_EINVAL;
		}
	}
	return 0;
}

int rdr_locate_reload(struct rdr_locator *loc, const struct rdr_conf *conf)
{
	char why[512], msg[1024];
	int failed = 0;

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
	memset(loc, 0, sizeof *loc);
}

void rdr_locate_client(struct rdr_locator *loc, const struct sockaddr *sa,
                       struct pol_client *c, const char **region)
{
	const struct ec_topo_loc *tl = loc->topo ? ec_topo_lookup(loc->topo, sa) : NULL;
	struct ec_geo_loc gl;

	memset(c, 0, sizeof *c);
	*region = "_";
	loc->lookups++;
	if (tl) {
		c->pop_hash = tl->pop_hash;
		c->region_hash = tl->region_hash;
		if (tl->region && tl->region[0])
			*region = tl->region;
	}
	if (!loc->geo)
		return;
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
		break;
	default:
		break;
	}
}
