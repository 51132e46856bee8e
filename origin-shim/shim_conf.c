/* shim_conf: the key table of echos-origin-shim and the checks that need more than one
 * value or the file system. Parsing itself is ec_cfg's; this file only adds meaning.
 * Owns nothing beyond the strings ec_cfg stores in struct shim_conf. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_redis.h"
#include "ec_topo.h"
#include "shim_conf.h"
#include "shim_publish.h"

#define OPT(k, t, f, d, lo, hi, h) { k, t, offsetof(struct shim_conf, f), d, lo, hi, h }

const struct ec_cfg_opt shim_conf_opts[] = {
	OPT("listen", EC_CFG_ADDR, listen, "127.0.0.1:8080", 0, 0,
	    "address for boxes and viewers (host:port)"),
	OPT("upstream_url", EC_CFG_STR, upstream_url, "http://127.0.0.1:9000", 0, 0,
	    "the content owner's origin: http[s]://host[:port][/base]; the request path is appended"),
	OPT("upstream.timeout", EC_CFG_DURATION, upstream_timeout_ms, "10s", 1000, 3600000,
	    "give up on an upstream response when no byte arrived for this long (whole seconds)"),
	OPT("upstream.connect_timeout", EC_CFG_DURATION, upstream_connect_timeout_ms, "2s", 1,
	    600000, "give up connecting to the upstream after this long"),
	OPT("max_object_size", EC_CFG_SIZE, max_object_size, "2G", 1, 1099511627776.0,
	    "largest object fetched; a bigger one answers 502"),
	OPT("spool_dir", EC_CFG_STR, spool_dir, "/tmp", 0, 0,
	    "directory for objects in flight (anonymous temp files, never named on disk)"),
	OPT("threads", EC_CFG_INT, threads, "16", 1, 1024,
	    "upstream fetch workers: at most this many upstream requests at once"),
	OPT("http_threads", EC_CFG_INT, http_threads, "2", 1, 64,
	    "threads serving client connections (epoll each)"),
	OPT("limits.queue", EC_CFG_INT, queue_max, "1024", 1, 1000000,
	    "fetches waiting for a worker; beyond this requests answer 503"),
	OPT("limits.connections", EC_CFG_INT, conn_max, "1024", 1, 1000000,
	    "open client connections, all addresses together"),
	OPT("limits.per_ip", EC_CFG_INT, conn_per_ip, "64", 0, 1000000,
	    "open client connections per address (0 = no per-address limit)"),
	OPT("limits.timeout", EC_CFG_DURATION, conn_timeout_ms, "60s", 1000, 3600000,
	    "close a client connection idle for this long (whole seconds)"),
	OPT("limits.conn_memory", EC_CFG_SIZE, conn_memory, "32K", 8192, 1048576,
	    "memory per client connection for the request line and headers"),
	OPT("limits.drain_timeout", EC_CFG_DURATION, drain_timeout_ms, "10s", 0, 3600000,
	    "on SIGTERM, how long requests in flight may take to finish"),
	OPT("redis.addr", EC_CFG_STR, redis_addr, "127.0.0.1:6379", 0, 0,
	    "Redis for byte accounting (host:port); empty = no accounting to Redis"),
	OPT("admin.listen", EC_CFG_STR, admin_listen, "", 0, 0,
	    "address of the Prometheus /metrics listener (host:port); empty = disabled"),
	OPT("publish.token", EC_CFG_STR, publish_token, "", 0, 0,
	    "bearer secret of POST /_echos/publish (16-512 token68 characters); empty = "
	    "the publish API is off (404)"),
	OPT("publish.listen", EC_CFG_STR, publish_listen, "", 0, 0,
	    "address serving only the publish API (host:port); empty = served on listen"),
	OPT("topology.file", EC_CFG_STR, topology_file, "", 0, 0,
	    "operator topology (CIDR -> PoP, region): fallbacks are counted per viewer region; "
	    "empty = every viewer in region _"),
	OPT("service", EC_CFG_LIST, service, NULL, 0, 0,
	    "NAME=/prefix/: counts responses under the service with the longest matching "
	    "prefix (else \"default\"); repeat, at most 64"),
	OPT("log.level", EC_CFG_LEVEL, log_level, "info", 0, 0,
	    "debug, info, warn or error"),
	{ NULL, 0, 0, NULL, 0, 0, NULL },
};

/* Names where `key` got its value: the -o override, the file line, or the default.
 * Writes into out (at least 1 byte) and returns it. */
static const char *conf_where(const struct ec_args *args, const char *key, char *out,
                              size_t outlen)
{
	size_t klen = strlen(key);
	char line[1024];
	unsigned lineno = 0, found = 0;
	FILE *f;

	for (size_t i = args->n_overrides; i-- > 0;) {
		const char *o = args->overrides[i];
		if (strncmp(o, key, klen) == 0 && (o[klen] == '=' || o[klen] == ' ')) {
			snprintf(out, outlen, "-o %s", key);
			return out;
		}
	}
	snprintf(out, outlen, "default");
	if (args->conf_path == NULL || (f = fopen(args->conf_path, "r")) == NULL)
		return out;
	while (fgets(line, sizeof line, f) != NULL) {
		const char *p = line + strspn(line, " \t");
		lineno++;
		if (strncmp(p, key, klen) == 0 && strchr(" \t=", p[klen]) != NULL)
			found = lineno;
	}
	fclose(f);
	if (found)
		snprintf(out, outlen, "%s:%u", args->conf_path, found);
	return out;
}

/* Appends one problem line to err. */
static void conf_problem(char *err, size_t errlen, const struct ec_args *args,
                         const char *key, const char *fmt, ...)
{
	char where[512];
	size_t used = strlen(err);
	va_list ap;

	if (used + 1 >= errlen)
		return;
	conf_where(args, key, where, sizeof where);
	used += snprintf(err + used, errlen - used, "%s%s: %s: ", used ? "\n" : "", where, key);
	if (used >= errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err + used, errlen - used, fmt, ap);
	va_end(ap);
}

/* Accepts "http://" or "https://" followed by a non-empty authority; strips trailing '/'. */
static int conf_check_url(char *url)
{
	const char *rest;
	size_t n;

	if (strncasecmp(url, "http://", 7) == 0)
		rest = url + 7;
	else if (strncasecmp(url, "https://", 8) == 0)
		rest = url + 8;
	else
		return EC_EINVAL;
	if (*rest == '\0' || *rest == '/' || strpbrk(url, " \t\r\n?#") != NULL)
		return EC_EINVAL;
	n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		url[--n] = '\0';
	return 0;
}

static int conf_check_addr(const char *addr, int allow_empty)
{
	char host[256];
	int port;

	if (*addr == '\0')
		return allow_empty ? 0 : EC_EINVAL;
	return ec_addr_split(addr, host, sizeof host, &port) == 0 && port >= 0 &&
	       port <= 65535 ? 0 : EC_EINVAL;
}

/* Checks what the table cannot; appends one line per problem. Returns 0 or EC_EINVAL. */
static int conf_check(struct shim_conf *c, const struct ec_args *args, char *err,
                      size_t errlen)
{
	int rc = 0;

	if (conf_check_url(c->upstream_url) != 0) {
		conf_problem(err, errlen, args, "upstream_url",
		             "expected http://host[:port][/base] or https://..., got \"%s\"",
		             c->upstream_url);
		rc = EC_EINVAL;
	}
	if (conf_check_addr(c->redis_addr, 1) != 0) {
		conf_problem(err, errlen, args, "redis.addr",
		             "expected host:port or nothing, got \"%s\"", c->redis_addr);
		rc = EC_EINVAL;
	}
	if (conf_check_addr(c->admin_listen, 1) != 0) {
		conf_problem(err, errlen, args, "admin.listen",
		             "expected host:port or nothing, got \"%s\"", c->admin_listen);
		rc = EC_EINVAL;
	}
	if (conf_check_addr(c->publish_listen, 1) != 0) {
		conf_problem(err, errlen, args, "publish.listen",
		             "expected host:port or nothing, got \"%s\"", c->publish_listen);
		rc = EC_EINVAL;
	}
	/* the secret itself is never echoed into a message */
	if (c->publish_token[0] != '\0' && !shim_publish_token_ok(c->publish_token)) {
		conf_problem(err, errlen, args, "publish.token",
		             "expected 16-512 characters of A-Z a-z 0-9 - . _ ~ + / (then '=' "
		             "padding), got a value of %zu characters (not shown)",
		             strlen(c->publish_token));
		rc = EC_EINVAL;
	}
	if (c->publish_token[0] != '\0' && c->redis_addr[0] == '\0') {
		conf_problem(err, errlen, args, "publish.token",
		             "the publish API writes to Redis: expected redis.addr to be set, "
		             "got an empty redis.addr");
		rc = EC_EINVAL;
	}
	if (c->publish_listen[0] != '\0' && c->publish_token[0] == '\0') {
		conf_problem(err, errlen, args, "publish.listen",
		             "expected publish.token to be set too (the API is off without it), "
		             "got \"%s\" with no token", c->publish_listen);
		rc = EC_EINVAL;
	}
	ec_svc_map_init(&c->services);
	for (size_t i = 0; i < c->service.n; i++) {
		char why[256];

		if (ec_svc_map_add(&c->services, c->service.items[i], why, sizeof why) != 0) {
			conf_problem(err, errlen, args, "service", "%s, got \"%.64s\"", why,
			             c->service.items[i]);
			rc = EC_EINVAL;
		}
	}
	if (c->topology_file[0] != '\0') {
		char why[512];

		c->topo = ec_topo_load(c->topology_file, why, sizeof why);
		if (c->topo == NULL) {
			conf_problem(err, errlen, args, "topology.file", "%s", why);
			rc = EC_EINVAL;
		}
	}
	if (c->spool_dir[0] == '\0' || access(c->spool_dir, W_OK | X_OK) != 0) {
		conf_problem(err, errlen, args, "spool_dir",
		             "expected a writable directory, got \"%s\" (%s)", c->spool_dir,
		             c->spool_dir[0] ? strerror(errno) : "empty");
		rc = EC_EINVAL;
	}
	return rc;
}

/* Loads and checks; see shim_conf.h. On failure conf holds nothing to free. */
int shim_conf_load(struct shim_conf *conf, const struct ec_args *args, char *err,
                   size_t errlen)
{
	int rc;

	memset(conf, 0, sizeof *conf);
	err[0] = '\0';
	rc = ec_cfg_load_all(shim_conf_opts, conf, args, err, errlen);
	/* bad lines leave the others applied: check those too, to report every problem */
	if ((rc == 0 || rc == EC_EINVAL) && conf_check(conf, args, err, errlen) != 0)
		rc = EC_EINVAL;
	if (rc != 0) {
		shim_conf_fini(conf);
		return rc;
	}
	conf->path = args->conf_path;
	return 0;
}

void shim_conf_fini(struct shim_conf *conf)
{
	ec_topo_free(conf->topo);
	ec_cfg_fini(shim_conf_opts, conf);
	memset(conf, 0, sizeof *conf);
}
