/* rdr_conf: echos-redirector's config keys, the cross-key checks and derived values.
 * Reports every problem before giving up, naming file and line where there is one.
 * Owns the strings and lists of struct rdr_conf (through ec_cfg) and the parsed keys. */
#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ec_err.h"
#include "ec_redis.h"
#include "ec_token.h"
#include "pol_score.h"
#include "rdr_conf.h"

#define O(f) offsetof(struct rdr_conf, f)

const struct ec_cfg_opt rdr_conf_opts[] = {
	{ "listen", EC_CFG_LIST, O(listen), NULL, 0, 0,
	  "plain listener host:port (HTTP/1.1 and h2c), repeatable; none at all: 127.0.0.1:8080" },
	{ "listen_tls", EC_CFG_LIST, O(listen_tls), NULL, 0, 0,
	  "TLS listener host:port (ALPN h2 or http/1.1), repeatable; needs tls.cert and tls.key" },
	{ "tls.cert", EC_CFG_STR, O(tls_cert), "", 0, 0, "PEM certificate chain for listen_tls" },
	{ "tls.key", EC_CFG_STR, O(tls_key), "", 0, 0, "PEM private key for listen_tls" },
	{ "admin.listen", EC_CFG_STR, O(admin_listen), "", 0, 0,
	  "plain host:port serving /metrics; empty: no admin listener" },
	{ "redis.addr", EC_CFG_ADDR, O(redis_addr), "127.0.0.1:6379", 0, 0,
	  "Redis holding the box registry (docs/redis.md)" },
	{ "topology.file", EC_CFG_STR, O(topology_file), "", 0, 0,
	  "operator topology file (CIDR -> PoP, region); empty: none" },
	{ "geoip.city", EC_CFG_STR, O(geoip_city), "", 0, 0,
	  "MaxMind City database (client coordinates); empty: none" },
	{ "geoip.asn", EC_CFG_STR, O(geoip_asn), "", 0, 0,
	  "MaxMind ASN or ISP database (client AS number); empty: none" },
	{ "token.master", EC_CFG_LIST, O(token_master), NULL, 0, 0,
	  "master key \"kid:hex\" (16..64 bytes), repeatable; required" },
	{ "token.sign_kid", EC_CFG_INT, O(token_sign_kid), "0", 0, 65535,
	  "key id of the master key that signs new tokens; 0: the first token.master" },
	{ "token.ttl", EC_CFG_DURATION, O(token_ttl_ms), "1h", 1000, 7 * 86400000.0,
	  "lifetime of a signed URL" },
	{ "token.expiry_step", EC_CFG_DURATION, O(token_step_ms), "10s", 1000, 3600000,
	  "expiries are rounded up to a multiple of this (whole seconds, 1s..1h): a URL lives token.ttl "
	  "to token.ttl + step, and one object's viewers on one box within a step share one "
	  "signed token" },
	{ "origin.url", EC_CFG_STR, O(origin_url), "", 0, 0,
	  "public base URL of the origin-shim for SLA misses; required" },
	{ "sla.max_state_age", EC_CFG_DURATION, O(sla_max_state_age_ms), "2500ms", 100, 3600000,
	  "a box whose last heartbeat is older gets no viewers" },
	{ "sla.max_ttfb", EC_CFG_DURATION, O(sla_max_ttfb_ms), "0", 0, 600000,
	  "a box reporting a slower time to first byte gets no viewers; 0: no limit" },
	{ "sla.viewer_bitrate", EC_CFG_BPS, O(sla_viewer_bps), "5M", 0, 1e12,
	  "headroom a box needs for one more viewer" },
	{ "sla.max_util", EC_CFG_DOUBLE, O(sla_max_util), "0.9", 0, 1,
	  "highest uplink utilization (with the new viewer) a box may reach, 0 < x <= 1" },
	{ "sla.max_class", EC_CFG_STR, O(sla_max_class), "any", 0, 0,
	  "worst proximity class allowed: pop, asn, geo or any" },
	{ "sla.max_distance_km", EC_CFG_DOUBLE, O(sla_max_distance_km), "1000", 0, 40100,
	  "radius of the geo proximity class" },
	{ "sla.min_good_heartbeats", EC_CFG_INT, O(sla_min_good_hbs), "2", 1, 1000,
	  "consecutive heartbeats a box needs before it (again) gets viewers" },
	{ "boxes.sync_interval", EC_CFG_DURATION, O(sync_interval_ms), "250ms", 10, 60000,
	  "how often the box table is read from Redis" },
	{ "boxes.grace", EC_CFG_DURATION, O(grace_ms), "30s", 0, 86400000,
	  "how long the last-known box table is used while Redis is unreachable" },
	{ "log.level", EC_CFG_LEVEL, O(log_level), "info", 0, 0,
	  "debug, info, warn or error" },
	{ "trusted_proxies", EC_CFG_LIST, O(trusted_proxies), NULL, 0, 0,
	  "CIDR of a proxy whose X-Forwarded-For/Forwarded is believed, repeatable" },
	{ "service", EC_CFG_LIST, O(service), NULL, 0, 0,
	  "\"name=N prefix=/p/ [host=H] [origin=URL] [max_ttfb=..] [viewer_bitrate=..] "
	  "[max_util=..] [max_class=..] [max_state_age=..] [max_distance_km=..] "
	  "[min_good_heartbeats=..]\", repeatable; longest prefix wins" },
	{ "charge.duration", EC_CFG_DURATION, O(charge_ms), "10s", 0, 15000,
	  "how long each redirect counts its bitrate against the chosen box; 0: off" },
	{ "charge.reflect", EC_CFG_DURATION, O(charge_reflect_ms), "1s", 0, 15000,
	  "a heartbeat first seen this long after a redirect already includes its viewer" },
	{ "alternates", EC_CFG_BOOL, O(alternates), "no", 0, 0,
	  "add Link: rel=duplicate (RFC 6249) with the next-best box and the origin" },
	{ "token.bind_client_prefix", EC_CFG_STR, O(bind_client_prefix), "", 0, 0,
	  "bind tokens to the client's network, \"V4BITS/V6BITS\" like 24/48; empty: off" },
	{ "inventory", EC_CFG_BOOL, O(inventory), "yes", 0, 0,
	  "read box inventories (echos:inv:{box}) and prefer boxes holding the object" },
	{ "decision.memo", EC_CFG_INT, O(memo_slots), "16384", 0, 1 << 22,
	  "recent decisions remembered (object, client network, service), each reused while it "
	  "is still exactly what the full decision would give; 0: off" },
	{ NULL, 0, 0, NULL, 0, 0, NULL },
};

struct conf_errs {
	char *buf;
	size_t len, cap;
	int n;
};

static void errs_add(struct conf_errs *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void errs_add(struct conf_errs *e, const char *fmt, ...)
{
	va_list ap;
	int w;

	e->n++;
	if (e->cap == 0 || e->len + 1 >= e->cap)
		return;
	if (e->len > 0)
		e->buf[e->len++] = '\n';
	va_start(ap, fmt);
	w = vsnprintf(e->buf + e->len, e->cap - e->len, fmt, ap);
	va_end(ap);
	if (w > 0)
		e->len += (size_t)w < e->cap - e->len ? (size_t)w : e->cap - e->len - 1;
	e->buf[e->len] = '\0';
}

/* "file:line" of the last line setting `key` to `value` (or to anything, value NULL);
 * "file" alone when not found (a default or a -o override), "-o" without a file. */
static const char *conf_where(const struct ec_args *args, const char *key, const char *value,
                              char *out, size_t outlen)
{
	char line[4096];
	FILE *f;
	int lineno = 0, found = 0;
	size_t klen = strlen(key);

	if (!args->conf_path) {
		snprintf(out, outlen, "-o");
		return out;
	}
	f = fopen(args->conf_path, "r");
	while (f && fgets(line, sizeof line, f)) {
		char *p = line, *v, *end;

		lineno++;
		while (isspace((unsigned char)*p))
			p++;
		if (strncmp(p, key, klen) != 0)
			continue;
		v = p + klen;
		while (*v == ' ' || *v == '\t')
			v++;
		if (*v != '=')
			continue;
		v++;
		while (*v == ' ' || *v == '\t')
			v++;
		end = v + strlen(v);
		while (end > v && isspace((unsigned char)end[-1]))
			*--end = '\0';
		if (!value || strcmp(v, value) == 0)
			found = lineno;
	}
	if (f)
		fclose(f);
	if (found)
		snprintf(out, outlen, "%s:%d", args->conf_path, found);
	else
		snprintf(out, outlen, "%s", args->conf_path);
	return out;
}

/* Parses one "kid:hex" master key. Returns 0 or EC_EINVAL with the reason in err. */
static int conf_parse_master(const char *spec, struct rdr_master *m, char *err, size_t errlen)
{
	const char *colon = strchr(spec, ':');
	char *end;
	unsigned long kid;
	size_t hexlen;
	int n;

	if (!colon || colon == spec) {
		snprintf(err, errlen, "expected \"kid:hex\"");
		return EC_EINVAL;
	}
	kid = strtoul(spec, &end, 10);
	if (end != colon || kid < 1 || kid > 65535 || !isdigit((unsigned char)spec[0])) {
		snprintf(err, errlen, "expected a key id 1..65535 before ':'");
		return EC_EINVAL;
	}
	hexlen = strlen(colon + 1);
	if (hexlen % 2 != 0 || hexlen < 32 || hexlen > 2 * RDR_MASTER_MAX) {
		snprintf(err, errlen, "expected 32..128 hex digits (16..64 bytes) after ':'");
		return EC_EINVAL;
	}
	n = ec_hex_decode(colon + 1, hexlen, m->key, sizeof m->key);
	if (n < 0 || (size_t)n != hexlen / 2) {
		snprintf(err, errlen, "expected hex digits after ':'");
		return EC_EINVAL;
	}
	m->kid = (uint32_t)kid;
	m->len = (size_t)n;
	return 0;
}

static int conf_check_url(const char *u)
{
	const char *p;

	if (strncmp(u, "http://", 7) != 0 && strncmp(u, "https://", 8) != 0)
		return -1;
	for (p = u; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '?' || *p == '#' ||
		    *p == '"' || *p == '\\')
			return -1;
	p = strstr(u, "://") + 3;
	return *p && *p != '/' ? 0 : -1; /* a host */
}

static int conf_list_append(struct ec_cfg_list *l, const char *s)
{
	char **items = realloc(l->items, (l->n + 1) * sizeof *items);

	if (!items)
		return EC_ENOMEM;
	l->items = items;
	l->items[l->n] = strdup(s);
	if (!l->items[l->n])
		return EC_ENOMEM;
	l->n++;
	return 0;
}

static void conf_check_addrs(const struct ec_args *args, const char *key,
                             const struct ec_cfg_list *l, struct conf_errs *e)
{
	char host[256], where[1024];
	int port;
	size_t i;

	for (i = 0; i < l->n; i++)
		if (ec_addr_split(l->items[i], host, sizeof host, &port) != 0)
			errs_add(e, "%s: %s: expected host:port, got \"%s\"",
			         conf_where(args, key, l->items[i], where, sizeof where), key,
			         l->items[i]);
}

/* The checks ec_cfg cannot make key by key, and the derived values. */
static void conf_check(struct rdr_conf *c, const struct ec_args *args, struct conf_errs *e)
{
	char where[1024], why[256], host[256];
	int port;
	size_t i, j;

	conf_check_addrs(args, "listen", &c->listen, e);
	conf_check_addrs(args, "listen_tls", &c->listen_tls, e);
	if (c->listen_tls.n > 0 && (!c->tls_cert[0] || !c->tls_key[0]))
		errs_add(e, "%s: listen_tls: needs tls.cert and tls.key",
		         conf_where(args, "listen_tls", NULL, where, sizeof where));
	if (c->admin_listen[0] && ec_addr_split(c->admin_listen, host, sizeof host, &port) != 0)
		errs_add(e, "%s: admin.listen: expected host:port or nothing, got \"%s\"",
		         conf_where(args, "admin.listen", NULL, where, sizeof where),
		         c->admin_listen);

	if (!c->origin_url[0])
		errs_add(e, "%s: origin.url: expected the origin-shim's base URL "
		         "(http://host:port), got nothing", args->conf_path ? args->conf_path : "-o");
	else if (conf_check_url(c->origin_url) != 0)
		errs_add(e, "%s: origin.url: expected an http:// or https:// URL without query, "
		         "got \"%s\"", conf_where(args, "origin.url", NULL, where, sizeof where),
		         c->origin_url);
	c->origin_len = strlen(c->origin_url);
	while (c->origin_len > 0 && c->origin_url[c->origin_len - 1] == '/')
		c->origin_len--;

	if (c->token_master.n == 0)
		errs_add(e, "%s: token.master: expected at least one \"kid:hex\" master key, "
		         "got none", args->conf_path ? args->conf_path : "-o");
	if (c->token_master.n > RDR_MASTERS_MAX)
		errs_add(e, "%s: token.master: expected at most %d keys, got %zu",
		         conf_where(args, "token.master", NULL, where, sizeof where),
		         RDR_MASTERS_MAX, c->token_master.n);
	for (i = 0; i < c->token_master.n && i < RDR_MASTERS_MAX; i++) {
		struct rdr_master *m = &c->masters[c->n_masters];

		/* never echo the key material itself into logs */
		if (conf_parse_master(c->token_master.items[i], m, why, sizeof why) != 0) {
			errs_add(e, "%s: token.master: %s",
			         conf_where(args, "token.master", c->token_master.items[i], where,
			                    sizeof where), why);
			continue;
		}
		for (j = 0; j < c->n_masters; j++)
			if (c->masters[j].kid == m->kid)
				break;
		if (j < c->n_masters) {
			errs_add(e, "%s: token.master: key id %u given twice",
			         conf_where(args, "token.master", c->token_master.items[i], where,
			                    sizeof where), m->kid);
			continue;
		}
		c->n_masters++;
	}
	c->sign_idx = 0;
	if (c->token_sign_kid != 0 && c->n_masters > 0) {
		for (j = 0; j < c->n_masters; j++)
			if (c->masters[j].kid == (uint32_t)c->token_sign_kid)
				break;
		if (j == c->n_masters)
			errs_add(e, "%s: token.sign_kid: expected the key id of a token.master, "
			         "got %lld", conf_where(args, "token.sign_kid", NULL, where,
			                                sizeof where),
			         (long long)c->token_sign_kid);
		else
			c->sign_idx = j;
	}
	if (c->token_step_ms % 1000 != 0)
		errs_add(e, "%s: token.expiry_step: expected whole seconds, got %lldms",
		         conf_where(args, "token.expiry_step", NULL, where, sizeof where),
		         (long long)c->token_step_ms);

	if (pol_class_parse(c->sla_max_class, &c->sla.max_class) != 0)
		errs_add(e, "%s: sla.max_class: expected pop, asn, geo or any, got \"%s\"",
		         conf_where(args, "sla.max_class", NULL, where, sizeof where),
		         c->sla_max_class);
	if (c->sla_max_util <= 0)
		errs_add(e, "%s: sla.max_util: expected a number 0 < x <= 1, got %g",
		         conf_where(args, "sla.max_util", NULL, where, sizeof where),
		         c->sla_max_util);
	c->sla.max_state_age_ms = c->sla_max_state_age_ms;
	c->sla.max_ttfb_ms = (uint32_t)c->sla_max_ttfb_ms;
	c->sla.viewer_bps = c->sla_viewer_bps;
	c->sla.max_util = c->sla_max_util;
	c->sla.max_distance_km = c->sla_max_distance_km;
	c->sla.min_good_hbs = (uint32_t)c->sla_min_good_hbs;
}

/* ---- services --------------------------------------------------------------------- */

static int svc_name_ok(const char *v)
{
	size_t len = strlen(v);

	if (len == 0 || len > RDR_SVC_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)v[i]) && v[i] != '_' && v[i] != '-' && v[i] != '.')
			return 0;
	return 1;
}

static int svc_copy(char *dst, size_t cap, size_t *len, const char *v)
{
	size_t n = strlen(v);

	if (n >= cap)
		return -1;
	memcpy(dst, v, n + 1);
	if (len)
		*len = n;
	return 0;
}

/* Applies one key=value of a service line; returns NULL or what was expected. */
static const char *svc_set(struct rdr_service *sv, const char *k, const char *v, int *has)
{
	int64_t ms;
	uint64_t bps;
	double x;
	char *end;

	if (strcmp(k, "name") == 0) {
		if (!svc_name_ok(v) || svc_copy(sv->name, sizeof sv->name, NULL, v) != 0)
			return "name: expected [A-Za-z0-9._-]{1,31}";
		has[0] = 1;
	} else if (strcmp(k, "prefix") == 0) {
		if (v[0] != '/' || strpbrk(v, "?#") ||
		    svc_copy(sv->prefix, sizeof sv->prefix, &sv->prefix_len, v) != 0)
			return "prefix: expected a path starting with '/' (at most 255 bytes)";
		has[1] = 1;
	} else if (strcmp(k, "host") == 0) {
		if (svc_copy(sv->host, sizeof sv->host, &sv->host_len, v) != 0 ||
		    strpbrk(v, "/:@[]"))
			return "host: expected a host name without port";
		for (char *p = sv->host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	} else if (strcmp(k, "origin") == 0) {
		if (conf_check_url(v) != 0 ||
		    svc_copy(sv->origin, sizeof sv->origin, &sv->origin_len, v) != 0)
			return "origin: expected an http:// or https:// URL without query";
		while (sv->origin_len > 0 && sv->origin[sv->origin_len - 1] == '/')
			sv->origin[--sv->origin_len] = '\0';
	} else if (strcmp(k, "max_ttfb") == 0) {
		if (ec_cfg_parse_duration_ms(v, &ms) != 0 || ms < 0 || ms > 600000)
			return "max_ttfb: expected a duration like 800ms (0: no limit)";
		sv->sla.max_ttfb_ms = (uint32_t)ms;
	} else if (strcmp(k, "max_state_age") == 0) {
		if (ec_cfg_parse_duration_ms(v, &ms) != 0 || ms < 100 || ms > 3600000)
			return "max_state_age: expected a duration like 2.5s (100ms..1h)";
		sv->sla.max_state_age_ms = ms;
	} else if (strcmp(k, "viewer_bitrate") == 0) {
		if (ec_cfg_parse_bps(v, &bps) != 0 || bps > 1000000000000ULL)
			return "viewer_bitrate: expected bits/s like 5M";
		sv->sla.viewer_bps = bps;
	} else if (strcmp(k, "max_util") == 0) {
		x = strtod(v, &end);
		if (!v[0] || *end || !(x > 0 && x <= 1))
			return "max_util: expected a number 0 < x <= 1";
		sv->sla.max_util = x;
	} else if (strcmp(k, "max_class") == 0) {
		if (pol_class_parse(v, &sv->sla.max_class) != 0)
			return "max_class: expected pop, asn, geo or any";
	} else if (strcmp(k, "max_distance_km") == 0) {
		x = strtod(v, &end);
		if (!v[0] || *end || !(x >= 0 && x <= 40100))
			return "max_distance_km: expected a number 0..40100";
		sv->sla.max_distance_km = x;
	} else if (strcmp(k, "min_good_heartbeats") == 0) {
		x = strtod(v, &end);
		if (!v[0] || *end || !(x >= 1 && x <= 1000) || x != (double)(int)x)
			return "min_good_heartbeats: expected an integer 1..1000";
		sv->sla.min_good_hbs = (uint32_t)x;
	} else {
		return "expected one of name, prefix, host, origin, max_ttfb, viewer_bitrate, "
		       "max_util, max_class, max_state_age, max_distance_km, min_good_heartbeats";
	}
	return NULL;
}

/* Parses one "service" line over a copy of the default service. Returns NULL or the
 * problem, with the offending word in bad. */
static const char *svc_parse(const char *line, struct rdr_service *sv, char *bad, size_t badlen)
{
	char buf[EC_CFG_LINE_MAX], *save = NULL, *w;
	int has[2] = { 0, 0 };
	const char *why;

	snprintf(buf, sizeof buf, "%s", line);
	sv->host[0] = '\0';
	sv->host_len = 0;
	for (w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
		char *eq = strchr(w, '=');

		snprintf(bad, badlen, "%s", w);
		if (!eq || eq == w)
			return "expected key=value";
		*eq = '\0';
		why = svc_set(sv, w, eq + 1, has);
		if (why)
			return why;
	}
	bad[0] = '\0';
	if (!has[0])
		return "name: missing";
	if (!has[1])
		return "prefix: missing";
	return NULL;
}

static void conf_services(struct rdr_conf *c, const struct ec_args *args, struct conf_errs *e)
{
	struct rdr_service *def = &c->services[0];
	char where[1024], bad[256];

	memset(def, 0, sizeof *def);
	snprintf(def->name, sizeof def->name, "default");
	def->prefix[0] = '/';
	def->prefix_len = 1;
	def->origin_len = c->origin_len < RDR_SVC_URL_MAX ? c->origin_len : RDR_SVC_URL_MAX;
	memcpy(def->origin, c->origin_url, def->origin_len);
	def->sla = c->sla;
	c->n_services = 1;
	if (c->service.n > RDR_SERVICES_MAX)
		errs_add(e, "%s: service: expected at most %d services, got %zu",
		         conf_where(args, "service", NULL, where, sizeof where), RDR_SERVICES_MAX,
		         c->service.n);
	for (size_t i = 0; i < c->service.n && i < RDR_SERVICES_MAX; i++) {
		struct rdr_service *sv = &c->services[c->n_services];
		const char *why;

		*sv = *def;
		why = svc_parse(c->service.items[i], sv, bad, sizeof bad);
		if (!why) {
			for (size_t j = 0; j < c->n_services; j++)
				if (strcmp(c->services[j].name, sv->name) == 0)
					why = "name: given twice";
		}
		if (why) {
			errs_add(e, "%s: service: %s%s%s%s",
			         conf_where(args, "service", c->service.items[i], where, sizeof where),
			         why, bad[0] ? ", got \"" : "", bad, bad[0] ? "\"" : "");
			continue;
		}
		c->n_services++;
	}
}

size_t rdr_conf_service(const struct rdr_conf *conf, const char *authority, const char *path,
                        size_t path_len)
{
	size_t best = 0, best_len = 0, hlen = 0;
	int best_host = 0;

	if (authority) {
		hlen = strlen(authority);
		if (authority[0] == '[') {
			const char *close = strchr(authority, ']');

			hlen = close ? (size_t)(close - authority + 1) : hlen;
		} else {
			const char *colon = strchr(authority, ':');

			hlen = colon ? (size_t)(colon - authority) : hlen;
		}
	}
	for (size_t i = 1; i < conf->n_services; i++) {
		const struct rdr_service *sv = &conf->services[i];
		int has_host = sv->host_len > 0;

		if (has_host && (sv->host_len != hlen || strncasecmp(sv->host, authority, hlen) != 0))
			continue;
		if (sv->prefix_len > path_len || memcmp(sv->prefix, path, sv->prefix_len) != 0)
			continue;
		if (sv->prefix_len > best_len || (sv->prefix_len == best_len && has_host > best_host)) {
			best = i;
			best_len = sv->prefix_len;
			best_host = has_host;
		}
	}
	return best;
}

/* trusted_proxies and token.bind_client_prefix */
static void conf_net(struct rdr_conf *c, const struct ec_args *args, struct conf_errs *e)
{
	char where[1024], why[256];
	unsigned a, b;
	char tail;

	if (c->trusted_proxies.n > RDR_FWD_MAX_CIDRS)
		errs_add(e, "%s: trusted_proxies: expected at most %d entries, got %zu",
		         conf_where(args, "trusted_proxies", NULL, where, sizeof where),
		         RDR_FWD_MAX_CIDRS, c->trusted_proxies.n);
	for (size_t i = 0; i < c->trusted_proxies.n && i < RDR_FWD_MAX_CIDRS; i++) {
		const char *item = c->trusted_proxies.items[i];

		if (rdr_fwd_parse_cidr(item, &c->trusted.cidrs[c->trusted.n], why, sizeof why) != 0)
			errs_add(e, "%s: trusted_proxies: %s, got \"%s\"",
			         conf_where(args, "trusted_proxies", item, where, sizeof where), why,
			         item);
		else
			c->trusted.n++;
	}
	if (c->bind_client_prefix[0]) {
		if (sscanf(c->bind_client_prefix, "%u/%u%c", &a, &b, &tail) != 2 || a < 1 ||
		    a > 32 || b < 1 || b > 128)
			errs_add(e, "%s: token.bind_client_prefix: expected \"V4BITS/V6BITS\" like "
			         "24/48 (1..32 / 1..128), got \"%s\"",
			         conf_where(args, "token.bind_client_prefix", NULL, where, sizeof where),
			         c->bind_client_prefix);
		else {
			c->bind_v4_bits = a;
			c->bind_v6_bits = b;
		}
	}
}

int rdr_conf_load(struct rdr_conf *conf, const struct ec_args *args, char *err, size_t errlen)
{
	struct conf_errs e = { .buf = err, .cap = errlen };
	int rc;

	memset(conf, 0, sizeof *conf);
	if (errlen)
		err[0] = '\0';
	rc = ec_cfg_load_all(rdr_conf_opts, conf, args, err, errlen);
	if (rc != 0) {
		ec_cfg_fini(rdr_conf_opts, conf);
		memset(conf, 0, sizeof *conf);
		return rc;
	}
	if (conf->listen.n == 0 && conf->listen_tls.n == 0 &&
	    conf_list_append(&conf->listen, "127.0.0.1:8080") != 0)
		errs_add(&e, "out of memory");
	conf_check(conf, args, &e);
	conf_services(conf, args, &e);
	conf_net(conf, args, &e);
	if (e.n > 0) {
		rdr_conf_fini(conf);
		return EC_EINVAL;
	}
	conf->is_loaded = 1;
	return 0;
}

void rdr_conf_fini(struct rdr_conf *conf)
{
	ec_cfg_fini(rdr_conf_opts, conf);
	/* wipe the key material along with everything else */
	memset(conf, 0, sizeof *conf);
}
