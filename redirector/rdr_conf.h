/* rdr_conf: echos-redirector's configuration: the key table for ec_cfg, the checks
 * ec_cfg cannot do alone (required keys, master keys, class names, listen addresses),
 * and the values derived from them (SLA, signing key). Does no I/O beyond reading the
 * config file; topology and MMDB files are opened by rdr_locate. */
#ifndef ECHOS_REDIRECTOR_RDR_CONF_H
#define ECHOS_REDIRECTOR_RDR_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "ec_cfg.h"
#include "pol_types.h"

#define RDR_MASTER_MAX 64   /* bytes of one master key */
#define RDR_MASTERS_MAX 8

struct rdr_master {
	uint32_t kid;                 /* key id, 1..65535 */
	uint8_t key[RDR_MASTER_MAX];
	size_t len;                   /* 16..64 bytes */
};

struct rdr_conf {
	/* from the file (ec_cfg table); heap strings and lists freed by rdr_conf_fini */
	struct ec_cfg_list listen;      /* plain host:port: HTTP/1.1 and h2c */
	struct ec_cfg_list listen_tls;  /* TLS host:port: ALPN h2 / http/1.1 */
	char *tls_cert;
	char *tls_key;
	char *admin_listen;             /* "" = no admin listener */
	char *redis_addr;
	char *topology_file;            /* "" = none */
	char *geoip_city;               /* "" = none */
	char *geoip_asn;                /* "" = none */
	struct ec_cfg_list token_master; /* "kid:hex" */
	int64_t token_sign_kid;         /* 0 = the first master key */
	int64_t token_ttl_ms;
	char *origin_url;
	int64_t sla_max_state_age_ms;
	int64_t sla_max_ttfb_ms;        /* 0 = no limit */
	uint64_t sla_viewer_bps;
	double sla_max_util;
	char *sla_max_class;
	double sla_max_distance_km;
	int64_t sla_min_good_hbs;
	int64_t sync_interval_ms;
	int64_t grace_ms;
	int log_level;                  /* enum ec_log_level */

	/* derived by rdr_conf_load() */
	struct pol_sla sla;
	struct rdr_master masters[RDR_MASTERS_MAX];
	size_t n_masters;
	size_t sign_idx;                /* masters[sign_idx] signs (index: conf is copied) */
	size_t origin_len;              /* origin_url length without trailing '/' */
	int is_loaded;
};

/* The key table (for --help and ec_cfg). */
extern const struct ec_cfg_opt rdr_conf_opts[];

/* Loads defaults, the file named in args and the -o overrides, then checks and derives.
 * Every problem goes into err, one line each ("file:line: key: expected ..., got ...").
 * Returns 0, or a negative EC_E* code with conf left empty (nothing to free). */
int rdr_conf_load(struct rdr_conf *conf, const struct ec_args *args, char *err,
                  size_t errlen);
/* Frees what conf owns. Safe on a conf that failed to load or was zeroed. */
void rdr_conf_fini(struct rdr_conf *conf);

#endif
