/* shim_conf: echos-origin-shim's settings: the key table, loading, and the checks
 * ec_cfg cannot do alone (URL shape, addresses, spool directory).
 * Does not open sockets or threads; owns the strings in struct shim_conf. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_CONF_H
#define ECHOS_ORIGIN_SHIM_SHIM_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ec_cfg.h"
#include "ec_svc.h"

struct ec_topo;

#define SHIM_PROG "echos-origin-shim"

struct shim_conf {
	char *listen;                   /* "host:port" of the front listener */
	char *upstream_url;             /* "http[s]://host[:port][/base]", no trailing '/' */
	int64_t upstream_timeout_ms;    /* no byte from upstream for this long: give up */
	int64_t upstream_connect_timeout_ms;
	uint64_t max_object_size;       /* bytes; a bigger upstream object answers 502 */
	char *spool_dir;                /* temp files for objects in flight (unlinked) */
	int64_t threads;                /* upstream fetch workers (concurrent fetches) */
	int64_t http_threads;           /* libmicrohttpd polling threads */
	int64_t queue_max;              /* fetches waiting for a worker; more answer 503 */
	int64_t conn_max;               /* open client connections, all addresses */
	int64_t conn_per_ip;            /* open client connections per address */
	int64_t conn_timeout_ms;        /* idle client connection timeout (whole seconds) */
	uint64_t conn_memory;           /* bytes per connection for headers (libmicrohttpd) */
	int64_t drain_timeout_ms;       /* SIGTERM: how long in-flight requests may finish */
	char *redis_addr;               /* "host:port"; "" = no accounting to Redis */
	char *admin_listen;             /* "host:port" of /metrics; "" = disabled */
	char *publish_token;            /* bearer secret of POST /_echos/publish; "" = off */
	char *publish_listen;           /* "host:port" serving only the publish API;
	                                 * "" = served on `listen` */
	char *topology_file;            /* operator topology: viewer regions; "" = none */
	struct ec_cfg_list service;     /* "NAME=/prefix/": accounting breakdown by service */
	int log_level;                  /* enum ec_log_level */
	const char *path;               /* config file, borrowed from argv; NULL = none */

	/* derived by shim_conf_load() */
	struct ec_svc_map services;     /* parsed `service` items; [0] is "default" */
	struct ec_topo *topo;           /* topology_file loaded, owned; NULL = none */
};

/* The key table (terminated by key == NULL). */
extern const struct ec_cfg_opt shim_conf_opts[];

/* Loads defaults, the file and -o overrides from args, then checks what the table cannot
 * (and loads topology.file). Every problem goes into err, one line each,
 * "file:line: key: expected ..., got ...". Returns 0, EC_EINVAL or EC_EIO. conf owns its
 * strings and topology: free with shim_conf_fini(). */
int shim_conf_load(struct shim_conf *conf, const struct ec_args *args, char *err,
                   size_t errlen);
void shim_conf_fini(struct shim_conf *conf);

#endif
