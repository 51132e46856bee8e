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
#include "pol_index.h"
#include "pol_memo.h"
#include "pol_score.h"
#include "rdr.h"
#include "rdr_fwd.h"
#include "rdr_inv.h"
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

static double metric_inv_objects(void *arg)
{
	const struct rdr *d = arg;

	return (double)rdr_inv_objects(d->inv);
}

static double metric_loc_hits(void *arg)
{
	const struct rdr *d = arg;

	return (double)d->loc.cache_hits;
}

static double metric_tok_hits(void *arg)
{
	const struct rdr *d = arg;

	return (double)d->tokcache_hits;
}

static double metric_index_bytes(void *arg)
{
	const struct rdr *d = arg;

	return (double)pol_index_mem_bytes(rdr_boxes_table(d->boxes)->cand);
}

int rdr_serve_services_bind(struct rdr *d, const struct rdr_conf *conf)
{
	static const char *const outcomes[2] = { "box", "origin" };
	struct rdr_metrics *m = &d->m;
	char labels[160];
	int ok = 1;

	memset(m->svc_fallbacks, 0, sizeof m->svc_fallbacks);
	memset(m->svc_requests, 0, sizeof m->svc_requests);
	for (size_t s = 0; s < conf->n_services; s++) {
		const char *name = conf->services[s].name; /* [A-Za-z0-9._-]: no escaping */

		for (unsigned i = 1; i < POL_MISS_COUNT_; i++) {
			snprintf(labels, sizeof labels, "service=\"%s\",reason=\"%s\"", name,
			         pol_miss_name((enum pol_miss)i));
			m->svc_fallbacks[s][i] = ec_metrics_counter(d->metrics,
				"echos_redirector_service_fallbacks_total",
				"Redirects to the origin, by service and reason", labels);
			ok &= m->svc_fallbacks[s][i] != NULL;
		}
		for (unsigned j = 0; j < 2; j++) {
			snprintf(labels, sizeof labels, "service=\"%s\",outcome=\"%s\"", name,
			         outcomes[j]);
			m->svc_requests[s][j] = ec_metrics_counter(d->metrics,
				"echos_redirector_service_requests_total",
				"Redirects answered, by service and destination", labels);
			ok &= m->svc_requests[s][j] != NULL;
		}
	}
	return ok ? 0 : EC_ENOMEM;
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
	m->forwarded[0] = ec_metrics_counter(r, "echos_redirector_client_address_total",
		"Where the client address came from", "source=\"peer\"");
	m->forwarded[1] = ec_metrics_counter(r, "echos_redirector_client_address_total",
		"Where the client address came from", "source=\"forwarded\"");
	ok &= m->forwarded[0] && m->forwarded[1];
	ok &= ec_metrics_gauge_fn(r, "echos_redirector_box_index_bytes",
		"Memory held by the candidate index of the box table", NULL,
		metric_index_bytes, d) != NULL;
	ok &= rdr_serve_services_bind(d, &d->conf) == 0;
	ok &= ec_metrics_gauge_fn(r, "echos_redirector_inventory_objects",
		"Objects whose holders are known from box inventories", NULL,
		metric_inv_objects, d) != NULL;
	ok &= ec_metrics_gauge_fn(r, "echos_redirector_token_cache_hits",
		"Redirect tokens reused from the cache (same object, box and second)", NULL,
		metric_tok_hits, d) != NULL;
	m->memo[0] = ec_metrics_counter(r, "echos_redirector_decision_memo_total",
		"Box decisions by whether the memo answered (hit) or the index was walked (miss)",
		"result=\"hit\"");
	m->memo[1] = ec_metrics_counter(r, "echos_redirector_decision_memo_total",
		"Box decisions by whether the memo answered (hit) or the index was walked (miss)",
		"result=\"miss\"");
	ok &= m->memo[0] && m->memo[1];
	ok &= ec_metrics_gauge_fn(r, "echos_redirector_locate_cache_hits",
		"Client locations reused from the per-address cache (kept until a reload)", NULL,
		metric_loc_hits, d) != NULL;
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
	struct pol_memo_stats st = { 0, 0, 0, 0 };

	ec_metric_set(m->syncs_ok, (double)rdr_boxes_syncs(d->boxes, 0));
	ec_metric_set(m->syncs_failed, (double)rdr_boxes_syncs(d->boxes, 1));
	ec_metric_set(m->malformed, (double)rdr_boxes_malformed(d->boxes));
	ec_metric_set(m->pop_full, (double)rdr_pop_overflow(d->pop));
	ec_metric_set(m->pop_lost, (double)rdr_pop_lost(d->pop));
	ec_metric_set(m->geo_errors, (double)d->loc.geo_errors);
	ec_metric_set(m->acct_lost, (double)d->acct.lost);
	if (d->memo)
		pol_memo_stats(d->memo, &st);
	ec_metric_set(m->memo[0], (double)(d->memo_past.hits + st.hits));
	ec_metric_set(m->memo[1], (double)(d->memo_past.misses + st.misses));
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
	h[n++] = (struct ec_http_header){ "Content-Type", 0, "text/plain; charset=utf-8", 0, 0 };
	h[n++] = (struct ec_http_header){ "Cache-Control", 0, "no-store", 0, 0 };
	h[n++] = (struct ec_http_header){ "Access-Control-Allow-Origin", 0, "*", 0, 0 };
	if (status == 405)
		h[n++] = (struct ec_http_header){ "Allow", 0, "GET, HEAD, OPTIONS", 0, 0 };
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
	h[0] = (struct ec_http_header){ "Access-Control-Allow-Origin", 0, "*", 0, 0 };
	h[1] = (struct ec_http_header){ "Access-Control-Allow-Methods", 0, "GET, HEAD, OPTIONS", 0, 0 };
	h[2] = (struct ec_http_header){ "Access-Control-Allow-Headers", 0, allow, 0, 0 };
	h[3] = (struct ec_http_header){ "Access-Control-Max-Age", 0, "86400", 0, 0 };
	h[4] = (struct ec_http_header){ "Cache-Control", 0, "no-store", 0, 0 };
	ec_http_respond(req, 204, h, EC_ARRAY_LEN(h), NULL, 0);
}

/* ---- the decision ----------------------------------------------------------------- */

/* Signs the token for row, req's path and net into out (EC_TOKEN_MAX_LEN + 1 bytes),
 * through the token cache (one slot per object and box, reused while the expiry, rounded
 * up to token.expiry_step, stays the same). Returns the token length, or -1 when signing
 * fails. */
static int serve_token(struct rdr *d, const struct rdr_box *row, uint64_t box_hash,
                       const struct ec_http_req *req, uint64_t obj,
                       const struct sockaddr_storage *net, unsigned net_bits, char *out)
{
	struct ec_token_claims c;
	struct rdr_tok_slot *slot = NULL;
	int64_t step = d->conf.token_step_ms / 1000; /* whole seconds, >= 1: rdr_conf */
	int64_t exp_s = (ec_wall_s_coarse() + d->conf.token_ttl_ms / 1000 + step - 1) / step * step;
	uint64_t net_key = 0;
	int tlen;

	if (net)
		net_key = pol_hash_bytes(net, sizeof *net) ^ net_bits;
	if (d->tokcache) {
		slot = &d->tokcache[(obj ^ box_hash * 0x9E3779B97F4A7C15ULL) >> 52 &
		                    (RDR_TOKCACHE_SLOTS - 1)];
		if (slot->len && slot->obj == obj && slot->box == box_hash &&
		    slot->net == net_key && slot->exp_s == exp_s && slot->kid == row->kid &&
		    slot->key_gen == row->key_gen && slot->path_len == req->path_len) {
			memcpy(out, slot->tok, slot->len);
			d->tokcache_hits++;
			return slot->len;
		}
		d->tokcache_misses++;
	}
	c.kid = row->kid;
	c.exp_s = exp_s;
	memcpy(c.box, row->id, sizeof c.box);
	c.scope = EC_TOKEN_SCOPE_EXACT;
	c.prefix_segments = 0;
	c.has_net = net != NULL;
	c.net_bits = net_bits;
	if (net)
		c.net = *net;
	/* playlists: scope their directory, so relative segment URLs keep the token */
	if (is_playlist(req->path, req->path_len)) {
		unsigned segs = path_dir_segments(req->path, req->path_len);

		if (segs > 0) {
			c.scope = EC_TOKEN_SCOPE_PREFIX;
			c.prefix_segments = segs;
		}
	}
	tlen = ec_token_sign(row->key, &c, req->path, req->path_len, out, EC_TOKEN_MAX_LEN + 1);
	if (tlen <= 0 || tlen > EC_TOKEN_MAX_LEN)
		return -1;
	if (slot) {
		*slot = (struct rdr_tok_slot){ obj, box_hash, net_key, exp_s, row->kid,
		                               row->key_gen, (uint32_t)req->path_len,
		                               (uint16_t)tlen, "" };
		memcpy(slot->tok, out, (size_t)tlen);
	}
	return tlen;
}

/* Writes "<path>[?query]" (qlen: the query's length) and a NUL at p; returns the NUL's
 * address. The caller made room. */
static char *put_path_query(char *p, const struct ec_http_req *req, size_t qlen)
{
	memcpy(p, req->path, req->path_len);
	p += req->path_len;
	if (qlen) {
		*p++ = '?';
		memcpy(p, req->query, qlen);
		p += qlen;
	}
	*p = '\0';
	return p;
}

/* Appends "<box url>/t/<token><path>[?query]" to buf at *len (NUL-terminated). obj is the
 * path's hash, net the client's prefix the token is bound to, or NULL. Returns 0, or -1
 * when signing fails or buf is too small. */
static int serve_box_url(struct rdr *d, const struct rdr_table *t, int32_t i,
                         const struct ec_http_req *req, uint64_t obj,
                         const struct sockaddr_storage *net, unsigned net_bits, char *buf,
                         size_t cap, size_t *len)
{
	const struct rdr_box *row = &t->rows[i];
	size_t qlen = strlen(req->query), need;
	char *p;
	int tlen;

	EC_ASSERT(row->magic == RDR_BOX_MAGIC);
	if (row->kid == 0)
		return -1;
	need = row->url_len + 3 + EC_TOKEN_MAX_LEN + req->path_len + 1 + qlen + 1;
	if (*len + need > cap)
		return -1;
	p = buf + *len;
	memcpy(p, row->url, row->url_len);
	p += row->url_len;
	memcpy(p, "/t/", 3);
	p += 3;
	tlen = serve_token(d, row, t->boxes[i].id_hash, req, obj, net, net_bits, p);
	if (tlen <= 0)
		return -1;
	p += tlen;
	*len = (size_t)(put_path_query(p, req, qlen) - buf);
	return 0;
}

/* Appends "<origin><path>[?query]". Returns 0 or -1 when buf is too small. */
static int serve_origin_url(const struct rdr_service *sv, const struct ec_http_req *req,
                            char *buf, size_t cap, size_t *len)
{
	size_t qlen = strlen(req->query);
	char *p;

	if (*len + sv->origin_len + req->path_len + qlen + 2 > cap)
		return -1;
	p = buf + *len;
	memcpy(p, sv->origin, sv->origin_len);
	p += sv->origin_len;
	*len = (size_t)(put_path_query(p, req, qlen) - buf);
	return 0;
}

/* Appends a literal. Returns 0 or -1 when buf is too small. */
static int serve_put(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
	if (*len + n + 1 > cap)
		return -1;
	memcpy(buf + *len, s, n);
	*len += n;
	buf[*len] = '\0';
	return 0;
}

/* Link: <alt box>; rel=duplicate, <origin>; rel=duplicate (RFC 6249) into d->link_buf.
 * Returns its length, 0 when it does not fit (the header is then left out). */
static size_t serve_link(struct rdr *d, const struct rdr_table *t, int32_t alt,
                         const struct rdr_service *sv, const struct ec_http_req *req,
                         uint64_t obj, const struct sockaddr_storage *net, unsigned net_bits)
{
	static const char rel[] = ">; rel=duplicate";
	size_t len = 0, cap = sizeof d->link_buf;
	char *b = d->link_buf;

	if (alt >= 0 && (size_t)alt < t->n) {
		if (serve_put(b, cap, &len, "<", 1) != 0 ||
		    serve_box_url(d, t, alt, req, obj, net, net_bits, b, cap, &len) != 0 ||
		    serve_put(b, cap, &len, rel, sizeof rel - 1) != 0 ||
		    serve_put(b, cap, &len, ", ", 2) != 0)
			return 0;
	}
	if (serve_put(b, cap, &len, "<", 1) != 0 || serve_origin_url(sv, req, b, cap, &len) != 0 ||
	    serve_put(b, cap, &len, rel, sizeof rel - 1) != 0)
		return 0;
	return len;
}

/* A 302 to location with no body (Content-Length: 0): players and browsers follow
 * Location and never show a redirect's text, so a body would only add bytes to every
 * redirect, and on h2 a DATA frame. is_signed: location (and link) carry tokens, unique
 * and secret, sent never indexed on h2 (EC_HTTP_HDR_SENSITIVE). */
#define LIT(s) (s), (sizeof(s) - 1) /* a string literal and its length, as two arguments */

static void serve_redirect(struct ec_http_req *req, const char *location, size_t loc_len,
                           int is_signed, const char *dbg_name, size_t dbg_name_len,
                           const char *dbg_value, const char *link, size_t link_len)
{
	/* every name is a literal token (EC_HTTP_HDR_NAME_OK), every value but Location and
	 * Link (which carry the viewer's query) a literal, a box id or a miss reason
	 * (EC_HTTP_HDR_VALUE_OK): the server skips those checks per request */
	const unsigned ok = EC_HTTP_HDR_NAME_OK | EC_HTTP_HDR_VALUE_OK;
	unsigned tok = is_signed ? EC_HTTP_HDR_SENSITIVE : 0;
	struct ec_http_header h[6];
	size_t n = 5;

	h[0] = (struct ec_http_header){ "Location", 8, location, loc_len,
	                                EC_HTTP_HDR_NAME_OK | tok };
	h[1] = (struct ec_http_header){ "Cache-Control", 13, "no-store", 8, ok };
	h[2] = (struct ec_http_header){ "Access-Control-Allow-Origin", 27, "*", 1, ok };
	h[3] = (struct ec_http_header){ dbg_name, dbg_name_len, dbg_value, strlen(dbg_value),
	                                ok };
	h[4] = (struct ec_http_header){ "Access-Control-Expose-Headers", 29,
	                                "Echos-Box, Echos-Miss, Link", 27, ok };
	if (link_len > 0)
		h[n++] = (struct ec_http_header){ "Link", 4, link, link_len,
		                                  EC_HTTP_HDR_NAME_OK | tok };
	ec_http_respond(req, 302, h, n, NULL, 0);
}

/* The client address: the socket's, or the forwarded one when the peer is a trusted
 * proxy (docs/config.md, trusted_proxies). */
static const struct sockaddr *serve_client_addr(struct rdr *d, const struct ec_http_req *req,
                                                struct sockaddr_storage *buf)
{
	struct rdr_fwd_hdr fwd[8], xff[8];
	size_t nf = 0, nx = 0;
	int from;

	if (d->conf.trusted.n == 0)
		return (const struct sockaddr *)&req->peer;
	for (size_t i = 0; i < req->n_headers; i++) {
		const struct ec_http_header *h = &req->headers[i];
		size_t nl = h->name_len ? h->name_len : strlen(h->name);
		size_t vl = h->value_len ? h->value_len : strlen(h->value);

		if (nl == 9 && memcmp(h->name, "forwarded", 9) == 0 && nf < EC_ARRAY_LEN(fwd))
			fwd[nf++] = (struct rdr_fwd_hdr){ h->value, vl };
		else if (nl == 15 && memcmp(h->name, "x-forwarded-for", 15) == 0 &&
		         nx < EC_ARRAY_LEN(xff))
			xff[nx++] = (struct rdr_fwd_hdr){ h->value, vl };
	}
	from = rdr_fwd_client(&d->conf.trusted, (const struct sockaddr *)&req->peer, fwd, nf,
	                      xff, nx, buf);
	ec_metric_inc(d->m.forwarded[from]);
	return (const struct sockaddr *)buf;
}

/* The decision, through the memo when there is one: a memo filled under another epoch
 * of the box table (rdr_boxes_epoch) is cleared first. */
static int serve_choose(struct rdr *d, const struct rdr_table *t, const struct pol_query *q,
                        struct pol_choice *out)
{
	uint64_t epoch;

	if (!d->memo)
		return pol_index_choose(t->cand, q, out);
	epoch = rdr_boxes_epoch(d->boxes);
	if (epoch != d->memo_epoch) {
		pol_memo_clear(d->memo);
		d->memo_epoch = epoch;
	}
	return pol_memo_choose(d->memo, t->cand, q, out);
}

void rdr_serve_on_request(struct ec_http_req *req, void *arg)
{
	struct rdr *d = arg;
	const struct rdr_table *t;
	const struct rdr_service *sv;
	const struct sockaddr *client_sa;
	struct sockaddr_storage client_buf, net;
	struct pol_client client;
	struct pol_choice choice;
	struct pol_query q;
	enum pol_miss miss = POL_MISS_NONE;
	const char *region, *why;
	size_t svc, loc_len = 0, link_len = 0;
	uint64_t obj_hash;
	unsigned net_bits = 0;
	int has_box = 0;
	/* the decision's own latency is timed from here: start_us when the server read it
	 * as it handed this request over, else (later requests of an h2 batch share the
	 * batch's reading) a reading of our own */
	int64_t t0 = req->is_start_now ? req->start_us : ec_now_us();
	int64_t now_ms = req->start_us / 1000, judge_ms;
	unsigned proto = req->proto == EC_HTTP_H2 ? 1 : 0;

	EC_ASSERT(d->magic == RDR_MAGIC);
	if (req->method[0] != 'G' && req->method[0] != 'H') {
		if (strcmp(req->method, "OPTIONS") == 0) {
			serve_preflight(req);
			return;
		}
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

	svc = rdr_conf_service(&d->conf, req->authority, req->path, req->path_len);
	sv = &d->conf.services[svc];
	client_sa = serve_client_addr(d, req, &client_buf);
	rdr_locate_client(&d->loc, client_sa, &client, &region);
	if (d->conf.bind_v4_bits)
		net_bits = rdr_fwd_mask(client_sa, d->conf.bind_v4_bits, d->conf.bind_v6_bits,
		                        &net);
	t = rdr_boxes_table(d->boxes);
	obj_hash = pol_hash_bytes(req->path, req->path_len);
	judge_ms = rdr_boxes_judge_time(d->boxes, now_ms, &miss);
	if (miss == POL_MISS_NONE) {
		q = (struct pol_query){ &client, obj_hash, &sv->sla, judge_ms, NULL, 0 };
		if (d->conf.inventory)
			q.n_holders = rdr_inv_holders(d->inv, t, q.obj_hash, d->holders,
			                              EC_ARRAY_LEN(d->holders));
		q.holders = d->holders;
		if (serve_choose(d, t, &q, &choice) == 0 && choice.box >= 0 &&
		    (size_t)choice.box < t->n) {
			if (serve_box_url(d, t, choice.box, req, q.obj_hash, net_bits ? &net : NULL,
			                  net_bits, d->loc_buf, sizeof d->loc_buf, &loc_len) == 0)
				has_box = 1;
			else
				miss = POL_MISS_NO_BOX; /* cannot sign: the origin is still right */
		} else {
			miss = choice.miss != POL_MISS_NONE ? choice.miss : POL_MISS_NO_BOX;
		}
	}
	rdr_pop_count_outcome(d->pop, region, req->path, req->path_len, obj_hash, miss);
	if (has_box) {
		rdr_boxes_charge(d->boxes, (size_t)choice.box, sv->sla.viewer_bps, now_ms);
		if (d->conf.alternates)
			link_len = serve_link(d, t, choice.alt, sv, req, q.obj_hash,
			                      net_bits ? &net : NULL, net_bits);
		ec_hist_observe(d->m.decision, (double)(ec_now_us() - t0) / 1e6);
		ec_metric_inc(d->m.requests[proto][0]);
		ec_metric_inc(d->m.svc_requests[svc][0]);
		rdr_acct_box(&d->acct, sv->name, region);
		serve_redirect(req, d->loc_buf, loc_len, 1, LIT("Echos-Box"), t->rows[choice.box].id,
		               d->link_buf, link_len);
		return;
	}
	if (serve_origin_url(sv, req, d->loc_buf, sizeof d->loc_buf, &loc_len) != 0) {
		static const char body[] = "414 URI Too Long\n";

		ec_http_respond(req, 414, NULL, 0, body, sizeof body - 1);
		return;
	}
	ec_hist_observe(d->m.decision, (double)(ec_now_us() - t0) / 1e6);
	ec_metric_inc(d->m.requests[proto][1]);
	ec_metric_inc(d->m.fallbacks[miss]);
	ec_metric_inc(d->m.svc_requests[svc][1]);
	ec_metric_inc(d->m.svc_fallbacks[svc][miss]);
	rdr_acct_origin(&d->acct, miss, sv->name, region);
	serve_redirect(req, d->loc_buf, loc_len, 0, LIT("Echos-Miss"), pol_miss_name(miss), NULL,
	               0);
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
	h[0] = (struct ec_http_header){ "Content-Type", 0, EC_METRICS_CONTENT_TYPE, 0, 0 };
	h[1] = (struct ec_http_header){ "Cache-Control", 0, "no-store", 0, 0 };
	ec_http_respond(req, 200, h, 2, text, len);
	free(text);
}
