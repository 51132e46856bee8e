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
#include "rdr_fwd.h"

#define RDR_MASTER_MAX 64   /* bytes of one master key */
#define RDR_MASTERS_MAX 8
#define RDR_SERVICES_MAX 32     /* configured services, beside the default one */
#define RDR_SVC_NAME_MAX 31
#define RDR_SVC_TEXT_MAX 255    /* prefix and host */
#define RDR_SVC_URL_MAX 511     /* origin */

/* A service: requests whose path starts with prefix (and whose host is host, when set)
 * get this SLA and this origin. services[0] is the default (sla.*, origin.url). */
struct rdr_service {
	char name[RDR_SVC_NAME_MAX + 1];
	char prefix[RDR_SVC_TEXT_MAX + 1];
	size_t prefix_len;
	char host[RDR_SVC_TEXT_MAX + 1];   /* lower case, no port; "" = any host */
	size_t host_len;
	char origin[RDR_SVC_URL_MAX + 1];  /* no trailing '/' */
	size_t origin_len;
	struct pol_sla sla;
};

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
	int64_t token_step_ms;          /* expiries rounded up to a multiple (s) */
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
	struct ec_cfg_list trusted_proxies; /* CIDRs whose forwarding headers are believed */
	struct ec_cfg_list service;     /* "name=... prefix=... key=value ..." */
	int64_t charge_ms;              /* how long a redirect counts against its box; 0: off */
	int64_t charge_reflect_ms;      /* a heartbeat first seen this long after a redirect
	                                   already reflects it */
	int alternates;                 /* Link: rel=duplicate alternates on box redirects */
	char *bind_client_prefix;       /* "" or "V4BITS/V6BITS" */
	int inventory;                  /* read box inventories and prefer holders */
	int64_t memo_slots;             /* decision.memo: decisions remembered; 0: off */

	/* derived by rdr_conf_load() */
	struct pol_sla sla;
	struct rdr_master masters[RDR_MASTERS_MAX];
	size_t n_masters;
	size_t sign_idx;                /* masters[sign_idx] signs (index: conf is copied) */
	size_t origin_len;              /* origin_url length without trailing '/' */
	struct rdr_fwd trusted;         /* parsed trusted_proxies */
	struct rdr_service services[RDR_SERVICES_MAX + 1]; /* [0]: the default service */
	size_t n_services;              /* including the default */
	unsigned bind_v4_bits, bind_v6_bits; /* 0/0: tokens are not bound to the client */
	int is_loaded;
};

/* The key table (for --help and ec_cfg). */
extern const struct ec_cfg_opt rdr_conf_opts[];

/* Loads defaults, the file named in args and the -o overrides, then checks and derives.
 * Every problem goes into err, one line each ("file:line: key: expected ..., got ...").
 * Returns 0, or a negative EC_E* code with conf left empty (nothing to free). */
int rdr_conf_load(struct rdr_conf *conf, const struct ec_args *args, char *err,
                  size_t errlen);
/* The service for a request: the longest prefix matching path among the services whose
 * host is empty or equals authority (case-insensitive, port ignored); on equal prefixes
 * a service naming the host wins. Returns an index into conf->services (0: default). */
size_t rdr_conf_service(const struct rdr_conf *conf, const char *authority, const char *path,
                        size_t path_len);

/* Frees what conf owns. Safe on a conf that failed to load or was zeroed. */
void rdr_conf_fini(struct rdr_conf *conf);

#endif
