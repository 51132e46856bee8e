/* edge_conf: echos-edge's configuration keys (one table, documented in docs/config.md)
 * and the checks that need more than one key or more than a type: required keys, the box
 * id's syntax, URLs and token keys. Does not open sockets or directories. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_redis.h"
#include "edge.h"

#define O(f) offsetof(struct edge_conf, f)

const struct ec_cfg_opt edge_conf_opts[] = {
	{ "box.id", EC_CFG_STR, O(box_id), "", 0, 0,
	  "this box's id, [A-Za-z0-9._-]{1,63} (required)" },
	{ "box.url", EC_CFG_STR, O(box_url), "", 0, 0,
	  "public base URL viewers are redirected to, e.g. https://127.0.0.2:8443 (required)" },
	{ "box.pop", EC_CFG_STR, O(box_pop), "", 0, 0, "PoP name, as in the topology file" },
	{ "box.region", EC_CFG_STR, O(box_region), "", 0, 0, "region name" },
	{ "box.lat", EC_CFG_STR, O(box_lat), "", 0, 0, "latitude in degrees (optional)" },
	{ "box.lon", EC_CFG_STR, O(box_lon), "", 0, 0, "longitude in degrees (optional)" },
	{ "box.asn", EC_CFG_INT, O(box_asn), "0", 0, 4294967295.0,
	  "autonomous system number (0: unknown)" },
	{ "box.uplink", EC_CFG_BPS, O(box_uplink_bps), "100M", 0, 0,
	  "provisioned uplink share for echos, bits/s" },
	{ "uplink.enforce", EC_CFG_BOOL, O(uplink_enforce), "yes", 0, 0,
	  "pace what viewers receive to box.uplink (one token bucket for all connections)" },
	{ "listen", EC_CFG_LIST, O(listen), NULL, 0, 0,
	  "plain listener host:port (HTTP/1.1 and h2c); repeat for more" },
	{ "listen_tls", EC_CFG_LIST, O(listen_tls), NULL, 0, 0,
	  "TLS listener host:port (ALPN h2, http/1.1); repeat for more" },
	{ "tls.cert", EC_CFG_STR, O(tls_cert), "", 0, 0, "PEM certificate chain for listen_tls" },
	{ "tls.key", EC_CFG_STR, O(tls_key), "", 0, 0, "PEM private key for listen_tls" },
	{ "admin.listen", EC_CFG_STR, O(admin_listen), "", 0, 0,
	  "plain host:port serving /metrics (empty: off)" },
	{ "cache.dir", EC_CFG_STR, O(cache_dir), "", 0, 0, "cache directory (required)" },
	{ "cache.max_bytes", EC_CFG_SIZE, O(cache_max_bytes), "1G", 4096, 1125899906842624.0,
	  "cache capacity; least recently used objects are evicted" },
	{ "cache.control", EC_CFG_STR, O(cache_control), "", 0, 0,
	  "Cache-Control header value for responses (empty: none)" },
	{ "shim.url", EC_CFG_STR, O(shim_url), "", 0, 0,
	  "origin-shim base URL fills are fetched from (required)" },
	{ "fill.timeout", EC_CFG_DURATION, O(fill_timeout_ms), "5m", 1000, 86400000,
	  "longest time a fill may take" },
	{ "fill.connect_timeout", EC_CFG_DURATION, O(fill_connect_timeout_ms), "5s", 100,
	  600000, "connecting to the origin-shim" },
	{ "fill.viewer_stall", EC_CFG_DURATION, O(fill_viewer_stall_ms), "10s", 100, 600000,
	  "a viewer that keeps a fill paused this long is dropped from it" },
	{ "fill.max_inflight", EC_CFG_INT, O(fill_max_inflight), "256", 1, 100000,
	  "concurrent fills; misses beyond get 503" },
	{ "redis.addr", EC_CFG_ADDR, O(redis_addr), "127.0.0.1:6379", 0, 0, "Redis host:port" },
	{ "token.key", EC_CFG_LIST, O(token_keys), NULL, 0, 0,
	  "this box's token key \"kid:hex\" (32 bytes, echosctl derive-key); repeat to rotate" },
	{ "heartbeat.interval", EC_CFG_DURATION, O(heartbeat_interval_ms), "1s", 100, 60000,
	  "heartbeat and accounting flush period" },
	{ "heartbeat.ttl", EC_CFG_DURATION, O(heartbeat_ttl_ms), "5s", 1000, 600000,
	  "TTL of the box's registry hash" },
	{ "max_conns", EC_CFG_INT, O(max_conns), "10000", 1, 1000000,
	  "open viewer connections; more are closed at once" },
	{ "drain.timeout", EC_CFG_DURATION, O(drain_timeout_ms), "10s", 0, 3600000,
	  "SIGTERM: longest wait for in-flight requests before exiting" },
	{ "prefetch.bps", EC_CFG_BPS, O(prefetch_bps), "0", 0, 0,
	  "background fill budget, bits/s, one object at a time (0: no prefetch)" },
	{ "prefetch.interval", EC_CFG_DURATION, O(prefetch_interval_ms), "5s", 100, 3600000,
	  "how often echos:assign:{box} (or the region's popularity) is read" },
	{ "prefetch.window", EC_CFG_DURATION, O(prefetch_window_ms), "10m", 60000, 7200000,
	  "popularity: requests summed over this many recent minutes" },
	{ "prefetch.top", EC_CFG_INT, O(prefetch_top), "100", 1, 10000,
	  "popularity: the region's most requested objects considered per minute" },
	{ "service", EC_CFG_LIST, O(service), NULL, 0, 0,
	  "NAME=/prefix/: counts responses under the service with the longest matching "
	  "prefix (else \"default\"); repeat, at most 64" },
	{ "log.level", EC_CFG_LEVEL, O(log_level), "info", 0, 0, "debug, info, warn or error" },
	{ NULL, 0, 0, NULL, 0, 0, NULL },
};

/* Appends one problem line "file: key: ..." to err. */
static void add_err(char *err, size_t errlen, const char *file, const char *key,
                    const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void add_err(char *err, size_t errlen, const char *file, const char *key,
                    const char *fmt, ...)
{
	size_t n = strlen(err);
	va_list ap;

	if (n + 1 >= errlen)
		return;
	snprintf(err + n, errlen - n, "%s%s: %s: ", n ? "\n" : "", file, key);
	n = strlen(err);
	va_start(ap, fmt);
	vsnprintf(err + n, errlen - n, fmt, ap);
	va_end(ap);
}

static int valid_box_id(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > EC_TOKEN_BOX_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

/* An absolute http(s) URL without whitespace; a trailing '/' is removed in place. */
static int fix_base_url(char *s)
{
	size_t n;
	if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0)
		return 0;
	if (strpbrk(s, " \t\r\n?#"))
		return 0;
	n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	return strchr(s, ':') && strlen(strstr(s, "://") + 3) > 0;
}

static int valid_degrees(const char *s, double lim)
{
	char *end;
	double v;
	if (!*s)
		return 1;
	errno = 0;
	v = strtod(s, &end);
	return errno == 0 && *end == '\0' && end != s && v >= -lim && v <= lim;
}

static void conf_check(struct edge_conf *c, const char *file, char *err, size_t errlen)
{
	char e[256];

	if (!valid_box_id(c->box_id))
		add_err(err, errlen, file, "box.id",
		        "expected 1-63 characters of [A-Za-z0-9._-], got \"%s\"", c->box_id);
	if (!fix_base_url(c->box_url))
		add_err(err, errlen, file, "box.url",
		        "expected a base URL like https://box.example:8443, got \"%s\"", c->box_url);
	if (!fix_base_url(c->shim_url))
		add_err(err, errlen, file, "shim.url",
		        "expected a base URL like http://127.0.0.1:8081, got \"%s\"", c->shim_url);
	if (!c->cache_dir[0])
		add_err(err, errlen, file, "cache.dir", "expected a directory, got \"%s\"", "");
	if (!valid_degrees(c->box_lat, 90))
		add_err(err, errlen, file, "box.lat", "expected degrees in [-90, 90], got \"%s\"",
		        c->box_lat);
	if (!valid_degrees(c->box_lon, 180))
		add_err(err, errlen, file, "box.lon", "expected degrees in [-180, 180], got \"%s\"",
		        c->box_lon);
	if (c->listen.n == 0 && c->listen_tls.n == 0)
		add_err(err, errlen, file, "listen", "expected at least one listen or listen_tls, "
		        "got %s", "none");
	for (size_t i = 0; i < c->listen.n + c->listen_tls.n; i++) {
		const char *a = i < c->listen.n ? c->listen.items[i]
		                                : c->listen_tls.items[i - c->listen.n];
		char host[256];
		int port;
		if (ec_addr_split(a, host, sizeof host, &port) != 0)
			add_err(err, errlen, file, i < c->listen.n ? "listen" : "listen_tls",
			        "expected host:port, got \"%s\"", a);
	}
	if (c->listen_tls.n && (!c->tls_cert[0] || !c->tls_key[0]))
		add_err(err, errlen, file, "tls.cert",
		        "expected tls.cert and tls.key with listen_tls, got %s", "none");
	if (c->admin_listen[0]) {
		char host[256];
		int port;
		if (ec_addr_split(c->admin_listen, host, sizeof host, &port) != 0)
			add_err(err, errlen, file, "admin.listen", "expected host:port, got \"%s\"",
			        c->admin_listen);
	}
	if (ec_addr_split(c->redis_addr, c->redis_host, sizeof c->redis_host,
	                  &c->redis_port) != 0)
		add_err(err, errlen, file, "redis.addr", "expected host:port, got \"%s\"",
		        c->redis_addr);
	if (c->heartbeat_ttl_ms <= c->heartbeat_interval_ms)
		add_err(err, errlen, file, "heartbeat.ttl",
		        "expected more than heartbeat.interval, got %s", "less");
	ec_svc_map_init(&c->services);
	for (size_t i = 0; i < c->service.n; i++) {
		if (ec_svc_map_add(&c->services, c->service.items[i], e, sizeof e) != 0)
			add_err(err, errlen, file, "service", "%s, got \"%.64s\"", e,
			        c->service.items[i]);
	}
	/* the box's own region scopes all its counters (docs/redis.md) */
	c->acct_region = c->box_region[0] ? ec_svc_scope_name(c->box_region) : EC_SVC_UNPLACED;
	memset(&c->keys, 0, sizeof c->keys);
	if (c->token_keys.n == 0)
		add_err(err, errlen, file, "token.key",
		        "expected at least one \"kid:hex\" box key, got %s", "none");
	for (size_t i = 0; i < c->token_keys.n; i++) {
		const char *spec = c->token_keys.items[i];
		const char *colon = strchr(spec, ':');
		e[0] = '\0';
		/* a box holds derived 32-byte keys only, never the master key */
		if (!colon || strlen(colon + 1) != 2 * EC_TOKEN_KEY_LEN) {
			add_err(err, errlen, file, "token.key",
			        "expected \"kid:\" and 64 hex digits (a derived box key), got a value "
			        "of another shape (%s)", "not shown");
			continue;
		}
		if (ec_token_keyring_add(&c->keys, spec, e, sizeof e) != 0)
			add_err(err, errlen, file, "token.key", "%s", e[0] ? e : "bad key");
	}
}

int edge_conf_load(struct edge_conf *conf, const struct ec_args *args, char *err,
                   size_t errlen)
{
	const char *file = args->conf_path ? args->conf_path : "(defaults)";
	int rc;

	memset(conf, 0, sizeof *conf);
	err[0] = '\0';
	rc = ec_cfg_load_all(edge_conf_opts, conf, args, err, errlen);
	if (rc == 0) {
		conf_check(conf, file, err, errlen);
		rc = err[0] ? EC_EINVAL : 0;
	}
	if (rc != 0) {
		edge_conf_fini(conf);
		memset(conf, 0, sizeof *conf);
	}
	return rc;
}

void edge_conf_fini(struct edge_conf *conf)
{
	ec_cfg_fini(edge_conf_opts, conf);
	memset(&conf->keys, 0, sizeof conf->keys);
}
