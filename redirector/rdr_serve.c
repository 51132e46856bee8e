/* rdr_serve: answers viewers with a 302 to the best box (signed URL) or to the origin,
 * counting every outcome; serves /metrics on the admin listener. Reads only memory on
 * the request path. Owns no per-request state beyond the Location it formats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "ec_err.h"
#include "ec_http.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "ec_token.h"
#include "pol_score.h"
#include "rdr.h"
#include "rdr_pop.h"
#include "rdr_serve.h"
#include "rdr_table.h"

#define SERVE_MAX_PATH 4096
#define SERVE_BAD_LOGS_PER_S 10

static const char *const cors_allow_headers =
	"Range, If-Range, If-None-Match, If-Modified-Since, Accept, Accept-Encoding, "
	"Origin, Cache-Control";

/* ---- metrics ---------------------------------------------------------------------- */

static double metric_boxes(void *arg)
{
	const struct rdr *d = arg;

	return (double)rdr_boxes_table(d->boxes)->n;
}

static double metric_table_age(void *arg)
{
	const struct rdr *d = arg;

	return rdr_boxes_age_s(d->boxes, ec_now_ms());
}

static double metric_redis_up(void *arg)
{
	const struct rdr *d = arg;

	return ec_redis_is_up(d->redis) ? 1 : 0;
}

int rdr_serve_metrics_init(struct rdr *d)
{
	static const double bounds[] = { 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
	                                 2.5e-3, 1e-2 };
	static const char *const protos[2] = { "h1", "h2" };
	static const char *const outcomes[2] = { "box", "origin" };
	struct rdr_metrics *m = &d->m;
	struct ec_metrics *r = d->metrics;
	char labels[128];
	unsigned i, j;
	int ok = 1;

	for (i = 0; i < 2; i++)
		for (j = 0; j < 2; j++) {
			snprintf(labels, sizeof labels, "proto=\"%s\",outcome=\"%s\"", protos[i],
			         outcomes[j]);
			m->requests[i][j] = ec_metrics_counter(r, "echos_redirector_requests_total",
				"Redirects answered, by protocol and destination", labels);
			ok &= m->requests[i][j] != NULL;
		}
	for (i = 1; i < POL_MISS_COUNT_; i++) {
		snprintf(labels, sizeof labels, "reason=\"%s\"", pol_miss_name((enum pol_miss)i));
		m->fallbacks[i] = ec_metrics_counter(r, "echos_redirector_fallbacks_total",
			"Redirects to the origin, by reason", labels);
		ok &= m->fallbacks[i] != NULL;
	}
	m->decision = ec_metrics_histogram(r, "echos_redirector_decision_seconds",
		"Time from complete request headers to the redirect decision", NULL, bounds,
		EC_ARRAY_LEN(bounds));
	m->bad[RDR_BAD_METHOD] = ec_metrics_counter(r, "echos_redirector_bad_requests_total",
		"Requests refused, by reason", "reason=\"method\"");
	m->bad[RDR_BAD_PATH] = ec_metrics_counter(r, "echos_redirector_bad_requests_total",
		"Requests refused, by reason", "reason=\"path\"");
	m->syncs_ok = ec_metrics_counter(r, "echos_redirector_box_syncs_total",
		"Box table reads from Redis, by result", "result=\"ok\"");
	m->syncs_failed = ec_metrics_counter(r, "echos_redirector_box_syncs_total",
		"Box table reads from Redis, by result", "result=\"failed\"");
	m->malformed = ec_metrics_counter(r, "echos_redirector_box_malformed_total",
		"Box heartbeats ignored because they did not parse", NULL);
	m->pop_full = ec_metrics_counter(r, "echos_redirector_popularity_dropped_total",
		"Popularity counts dropped, by reason", "reason=\"full\"");
	m->pop_lost = ec_metrics_counter(r, "echos_redirector_popularity_dropped_total",
		"Popularity counts dropped, by reason", "reason=\"redis_down\"");
	m->geo_errors = ec_metrics_counter(r, "echos_redirector_geoip_errors_total",
		"MMDB lookups that hit corrupt data", NULL);
	m->acct_lost = ec_metrics_counter(r, "echos_redirector_acct_lost_total",
		"Accounting commands whose reply never came", NULL);
	ok &= m->decision && m->bad[0] && m->bad[1] && m->syncs_ok && m->syncs_failed &&
	      m->malformed && m->pop_full && m->pop_lost && m->geo_errors && m->acct_lost;
	ok &= ec_metrics_gauge_fn(r, "echos_redirector_boxes", "Boxes in the box table", NULL,
	                          metric_boxes, d) != NULL;
	ok &= ec_metrics_gauge_fn(r, "echos_redirector_box_table_age_seconds",
		"Time since the box table was last read from Redis (-1: never)", NULL,
		metric_table_age, d) != NULL;
	ok &= ec_metrics_gauge_fn(r, "echos_redirector_redis_up",
		"1 while the Redis link is up", NULL, metric_redis_up, d) != NULL;
	return ok ? 0 : EC_ENOMEM;
}

/* Copies counters kept by other modules into their series before a scrape. */
static void serve_metrics_refresh(struct rdr *d)
{
	struct rdr_metrics *m = &d->m;

	ec_metric_set(m->syncs_ok, (double)rdr_boxes_syncs(d->boxes, 0));
	ec_metric_set(m->syncs_failed, (double)rdr_boxes_syncs(d->boxes, 1));
	ec_metric_set(m->malformed, (double)rdr_boxes_malformed(d->boxes));
	ec_metric_set(m->pop_full, (double)rdr_pop_overflow(d->pop));
	ec_metric_set(m->pop_lost, (double)rdr_pop_lost(d->pop));
	ec_metric_set(m->geo_errors, (double)d->loc.geo_errors);
	ec_metric_set(m->acct_lost, (double)d->acct.lost);
}

/* ---- request checks ----------------------------------------------------------------- */

const char *rdr_serve_check_path(const char *path, size_t len)
{
	const char *why = NULL;
	size_t i;

	/* what a token can cover: absolute, no "..", "." or "//", no encoded dot or slash */
	if (ec_token_path_check(path, len, &why) != 0)
		return why ? why : "bad path";
	if (len > SERVE_MAX_PATH)
		return "path too long";
	for (i = 0; i < len; i++)
		if ((unsigned char)path[i] <= 0x20 || (unsigned char)path[i] >= 0x7f)
			return "space, control or non-ASCII byte in path (percent-encode it)";
	return NULL;
}

static int is_playlist(const char *path, size_t len)
{
	return (len >= 5 && strncasecmp(path + len - 5, ".m3u8", 5) == 0) ||
	       (len >= 4 && strncasecmp(path + len - 4, ".mpd", 4) == 0);
}

/* Directory depth of path: "/v/abc/x.m3u8" -> 2, "/x.m3u8" -> 0. */
static unsigned path_dir_segments(const char *path, size_t len)
{
	unsigned n = 0;
	size_t i;

	for (i = 0; i < len; i++)
		n += path[i] == '/';
	return n > 0 ? n - 1 : 0;
}

static int serve_bad_log_ok(struct rdr *d)
{
	uint64_t s = (uint64_t)(ec_now_ms() / 1000);

	if (s != d->bad_logged_s) {
		d->bad_logged_s = s;
		d->bad_logged_n = 0;
	}
	return d->bad_logged_n++ < SERVE_BAD_LOGS_PER_S;
}

static void serve_refuse(struct rdr *d, struct ec_http_req *req, int status,
                         enum rdr_bad why, const char *msg)
{
	char body[256];
	struct ec_http_header h[4];
	size_t n = 0;
	int len;

	ec_metric_inc(d->m.bad[why]);
	if (serve_bad_log_ok(d))
		ec_log_info("req %llu: %d %s", (unsigned long long)req->id, status, msg);
	len = snprintf(body, sizeof body, "%d %s: %s\n", status, ec_http_reason(status), msg);
	h[n++] = (struct ec_http_header){ "Content-Type", 0, "text/plain; charset=utf-8", 0 };
	h[n++] = (struct ec_http_header){ "Cache-Control", 0, "no-store", 0 };
	h[n++] = (struct ec_http_header){ "Access-Control-Allow-Origin", 0, "*", 0 };
	if (status == 405)
		h[n++] = (struct ec_http_header){ "Allow", 0, "GET, HEAD, OPTIONS", 0 };
	ec_http_respond(req, status, h, n, body, (size_t)len);
}

static void serve_preflight(struct ec_http_req *req)
{
	size_t vlen = 0, i;
	const char *want = ec_http_req_header(req, "access-control-request-headers", &vlen);
	const char *allow = cors_allow_headers;
	struct ec_http_header h[5];

	/* echo the requested header names when they are plain tokens */
	if (want && vlen > 0 && vlen < 512) {
		for (i = 0; i < vlen; i++) {
			char c = want[i];

			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '-' || c == '_' || c == ',' || c == ' '))
				break;
		}
		if (i == vlen)
			allow = want;
	}
	h[0] = (struct ec_http_header){ "Access-Control-Allow-Origin", 0, "*", 0 };
	h[1] = (struct ec_http_header){ "Access-Control-Allow-Methods", 0, "GET, HEAD, OPTIONS", 0 };
	h[2] = (struct ec_http_header){ "Access-Control-Allow-Headers", 0, allow, 0 };
	h[3] = (struct ec_http_header){ "Access-Control-Max-Age", 0, "86400", 0 };
	h[4] = (struct ec_http_header){ "Cache-Control", 0, "no-store", 0 };
	ec_http_respond(req, 204, h, EC_ARRAY_LEN(h), NULL, 0);
}

/* ---- the decision ----------------------------------------------------------------- */

/* Writes "<box url>/t/<token><path>[?query]" into a new heap string owned by the caller.
 * Returns NULL when signing fails or memory is short. */
static char *serve_box_location(const struct rdr *d, const struct rdr_box *row,
                                const struct ec_http_req *req)
{
	struct ec_token_claims c;
	char tok[EC_TOKEN_MAX_LEN + 1];
	size_t qlen = strlen(req->query), cap;
	char *loc;
	int tlen;

	EC_ASSERT(row->magic == RDR_BOX_MAGIC);
	if (row->kid == 0)
		return NULL;
	memset(&c, 0, sizeof c);
	c.kid = row->kid;
	c.exp_s = ec_wall_ms() / 1000 + d->conf.token_ttl_ms / 1000;
	memcpy(c.box, row->id, sizeof c.box);
	c.scope = EC_TOKEN_SCOPE_EXACT;
	/* playlists: scope their directory, so relative segment URLs keep the token */
	if (is_playlist(req->path, req->path_len)) {
		unsigned segs = path_dir_segments(req->path, req->path_len);

		if (segs > 0) {
			c.scope = EC_TOKEN_SCOPE_PREFIX;
			c.prefix_segments = segs;
		}
	}
	tlen = ec_token_sign(row->key, &c, req->path, req->path_len, tok, sizeof tok);
	if (tlen <= 0)
		return NULL;
	cap = row->url_len + 3 + (size_t)tlen + req->path_len + 1 + qlen + 1;
	loc = malloc(cap);
	if (!loc)
		return NULL;
	snprintf(loc, cap, "%s/t/%.*s%s%s%s", row->url, tlen, tok, req->path, qlen ? "?" : "",
	         req->query);
	return loc;
}

static char *serve_origin_location(const struct rdr *d, const struct ec_http_req *req)
{
	size_t qlen = strlen(req->query);
	size_t cap = d->conf.origin_len + req->path_len + 1 + qlen + 1;
	char *loc = malloc(cap);

	if (loc)
		snprintf(loc, cap, "%.*s%s%s%s", (int)d->conf.origin_len, d->conf.origin_url,
		         req->path, qlen ? "?" : "", req->query);
	return loc;
}

static void serve_redirect(struct ec_http_req *req, const char *location, const char *dbg_name,
                           const char *dbg_value)
{
	static const char body[] = "302 Found\n";
	struct ec_http_header h[6];

	h[0] = (struct ec_http_header){ "Location", 0, location, 0 };
	h[1] = (struct ec_http_header){ "Cache-Control", 0, "no-store", 0 };
	h[2] = (struct ec_http_header){ "Access-Control-Allow-Origin", 0, "*", 0 };
	h[3] = (struct ec_http_header){ "Content-Type", 0, "text/plain; charset=utf-8", 0 };
	h[4] = (struct ec_http_header){ dbg_name, 0, dbg_value, 0 };
	h[5] = (struct ec_http_header){ "Access-Control-Expose-Headers", 0,
	                                "Echos-Box, Echos-Miss", 0 };
	ec_http_respond(req, 302, h, EC_ARRAY_LEN(h), body, sizeof body - 1);
}

void rdr_serve_on_request(struct ec_http_req *req, void *arg)
{
	struct rdr *d = arg;
	const struct rdr_table *t;
	struct pol_client client;
	struct pol_choice choice;
	enum pol_miss miss = POL_MISS_NONE;
	const char *region, *why;
	char *location = NULL;
	int64_t t0 = ec_now_us(), judge_ms;
	unsigned proto = req->proto == EC_HTTP_H2 ? 1 : 0;

	EC_ASSERT(d->magic == RDR_MAGIC);
	if (strcmp(req->method, "OPTIONS") == 0) {
		serve_preflight(req);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		serve_refuse(d, req, 405, RDR_BAD_METHOD, "only GET, HEAD and OPTIONS");
		return;
	}
	why = rdr_serve_check_path(req->path, req->path_len);
	if (why || strlen(req->path) != req->path_len) {
		serve_refuse(d, req, 400, RDR_BAD_PATH, why ? why : "NUL in path");
		return;
	}

	rdr_locate_client(&d->loc, (const struct sockaddr *)&req->peer, &client, &region);
	t = rdr_boxes_table(d->boxes);
	judge_ms = rdr_boxes_judge_time(d->boxes, ec_now_ms(), &miss);
	if (miss == POL_MISS_NONE) {
		uint64_t obj = pol_hash_bytes(req->path, req->path_len);

		if (pol_score_choose(t->boxes, t->n, &client, obj, &d->conf.sla, judge_ms,
		                     &choice) == 0 && choice.box >= 0 && (size_t)choice.box < t->n) {
			location = serve_box_location(d, &t->rows[choice.box], req);
			if (!location)
				miss = POL_MISS_NO_BOX; /* cannot sign: the origin is still right */
		} else {
			miss = choice.miss != POL_MISS_NONE ? choice.miss : POL_MISS_NO_BOX;
		}
	}
	rdr_pop_count(d->pop, region, req->path, req->path_len);
	if (location) {
		ec_hist_observe(d->m.decision, (double)(ec_now_us() - t0) / 1e6);
		ec_metric_inc(d->m.requests[proto][0]);
		rdr_acct_box(&d->acct);
		serve_redirect(req, location, "Echos-Box", t->rows[choice.box].id);
		free(location);
		return;
	}
	location = serve_origin_location(d, req);
	ec_hist_observe(d->m.decision, (double)(ec_now_us() - t0) / 1e6);
	ec_metric_inc(d->m.requests[proto][1]);
	ec_metric_inc(d->m.fallbacks[miss]);
	rdr_acct_origin(&d->acct, miss);
	if (!location) {
		static const char body[] = "503 Service Unavailable: out of memory\n";

		ec_http_respond(req, 503, NULL, 0, body, sizeof body - 1);
		return;
	}
	serve_redirect(req, location, "Echos-Miss", pol_miss_name(miss));
	free(location);
}

/* ---- admin -------------------------------------------------------------------------- */

void rdr_serve_on_admin(struct ec_http_req *req, void *arg)
{
	struct rdr *d = arg;
	struct ec_http_header h[2];
	char *text;
	size_t len = 0;

	EC_ASSERT(d->magic == RDR_MAGIC);
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		ec_http_respond(req, 405, NULL, 0, "405 Method Not Allowed\n", 23);
		return;
	}
	if (strcmp(req->path, "/healthz") == 0) {
		ec_http_respond(req, 200, NULL, 0, "ok\n", 3);
		return;
	}
	if (strcmp(req->path, "/metrics") != 0) {
		ec_http_respond(req, 404, NULL, 0, "404 Not Found: try /metrics\n", 28);
		return;
	}
	serve_metrics_refresh(d);
	text = ec_metrics_render(d->metrics, &len);
	if (!text) {
		ec_http_respond(req, 503, NULL, 0, "503 out of memory\n", 18);
		return;
	}
	h[0] = (struct ec_http_header){ "Content-Type", 0, EC_METRICS_CONTENT_TYPE, 0 };
	h[1] = (struct ec_http_header){ "Cache-Control", 0, "no-store", 0 };
	ec_http_respond(req, 200, h, 2, text, len);
	free(text);
}
