/* edge_serve: the viewer request path. Strict path checks, token verification (the token
 * is stripped here: it never reaches the cache key, the fill or a log line), hits from the
 * store with ranges and preconditions, CORS, and hand-off of misses to edge_fill.
 * Owns each request's edge_reqctx (freed in the close callback) and the admin /metrics. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ec_err.h"
#include "ec_http.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_time.h"
#include "ec_token.h"
#include "edge.h"
#include "edge_cond.h"

#define REQCTX_MAGIC 0x45524358u /* "ERCX" */
#define PUMP_HIGH_WATER (128 * 1024) /* paced hits: queued bytes before waiting to drain */

/* Bounded status label set of echos_edge_requests_total; the last one is "other". */
static const int serve_codes[EDGE_CODES_N] = {
	200, 204, 206, 304, 400, 403, 404, 405, 412, 416, 502, 503, 0
};
static const char *const result_names[EDGE_RESULT_COUNT_] = { "hit", "miss", "error" };
static const char *const reject_names[EDGE_REJECT_COUNT_] = {
	"malformed", "unknown_key", "bad_signature", "expired", "scope"
};

static int serve_code_index(int status)
{
	for (int i = 0; i < EDGE_CODES_N - 1; i++)
		if (serve_codes[i] == status)
			return i;
	return EDGE_CODES_N - 1;
}

int edge_serve_metrics_init(struct edge_server *srv)
{
	struct ec_metrics *m = srv->metrics;
	struct edge_metrics *em = &srv->m;
	char labels[96];

	for (int c = 0; c < EDGE_CODES_N; c++) {
		for (int r = 0; r < EDGE_RESULT_COUNT_; r++) {
			if (serve_codes[c])
				snprintf(labels, sizeof labels, "code=\"%d\",result=\"%s\"",
				         serve_codes[c], result_names[r]);
			else
				snprintf(labels, sizeof labels, "code=\"other\",result=\"%s\"",
				         result_names[r]);
			em->requests[c][r] = ec_metrics_counter(m, "echos_edge_requests_total",
			        "Viewer responses by status and cache result.", labels);
		}
	}
	for (int r = 0; r < EDGE_REJECT_COUNT_; r++) {
		snprintf(labels, sizeof labels, "reason=\"%s\"", reject_names[r]);
		em->token_rejects[r] = ec_metrics_counter(m, "echos_edge_token_rejects_total",
		        "Requests refused with 403 by token check result.", labels);
	}
	em->bytes_served = ec_metrics_counter(m, "echos_edge_bytes_served_total",
	        "Body bytes handed to viewer sockets (counted when a response closes).", NULL);
	em->fill_bytes = ec_metrics_counter(m, "echos_edge_fill_bytes_total",
	        "Body bytes received from the origin-shim by fills.", NULL);
	em->digest_mismatch = ec_metrics_counter(m, "echos_edge_digest_mismatch_total",
	        "Fills whose body did not match the origin's Repr-Digest (never cached).", NULL);
	em->fill_errors = ec_metrics_counter(m, "echos_edge_fill_errors_total",
	        "Fills that failed: origin error, unreachable, timeout, missing digest.", NULL);
	em->cache_write_errors = ec_metrics_counter(m, "echos_edge_cache_write_errors_total",
	        "Fills served without caching because the disk failed.", NULL);
	em->viewers_dropped = ec_metrics_counter(m, "echos_edge_viewers_dropped_total",
	        "Streaming viewers dropped from a fill for falling too far behind.", NULL);
	em->prefetch_bytes = ec_metrics_counter(m, "echos_edge_prefetch_bytes_total",
	        "Body bytes received from the origin-shim by prefetches.", NULL);
	for (int r = 0; r < 3; r++) {
		static const char *const names[3] = { "ok", "failed", "skipped" };
		snprintf(labels, sizeof labels, "result=\"%s\"", names[r]);
		em->prefetches[r] = ec_metrics_counter(m, "echos_edge_prefetches_total",
		        "Background fills by result (skipped: did not fit without evicting).",
		        labels);
	}
	if (!em->bytes_served || !em->fill_bytes || !em->digest_mismatch)
		return EC_ENOMEM;
	return 0;
}

/* --- accounting -------------------------------------------------------------------------- */

void edge_serve_count(struct edge_reqctx *ctx, int status, enum edge_result result)
{
	struct edge_server *srv = ctx->srv;
	struct edge_stats *s = &srv->stats;
	double ms;

	ctx->status = status;
	ctx->result = result;
	ec_metric_inc(srv->m.requests[serve_code_index(status)][result]);
	if (!ctx->req)
		return;
	/* time to the first response byte, as an exponentially weighted moving average */
	ms = (double)(ec_now_us() - ctx->req->start_us) / 1000.0;
	if (ms < 0)
		ms = 0;
	if (!s->has_ttfb) {
		s->ttfb_ms = ms;
		s->has_ttfb = 1;
	} else {
		s->ttfb_ms = 0.8 * s->ttfb_ms + 0.2 * ms;
	}
}

/* Close callback: accounts the bytes the viewer got and frees ctx, unless a fill still
 * holds it (the fill frees it when it lets go). */
static void on_req_close(struct ec_http_req *req, void *arg, int completed)
{
	struct edge_reqctx *ctx = arg;
	struct edge_server *srv = ctx->srv;
	uint64_t bytes = 0;

	EC_ASSERT(ctx->magic == REQCTX_MAGIC);
	if (completed) {
		bytes = ctx->body_len;
	} else if (ctx->is_streaming) {
		size_t queued = ec_http_stream_buffered(req);
		bytes = ctx->stream_written > queued ? ctx->stream_written - queued : 0;
	}
	/* XXX: a sendfile response cut short counts 0 bytes: ec_http does not report how
	 * far it got. */
	if (bytes) {
		ec_metric_add(srv->m.bytes_served, (double)bytes);
		edge_hb_account(srv, EDGE_ACCT_BYTES, bytes, ctx->svc);
		/* streamed bodies were counted for egress as they were written */
		if (!ctx->is_streaming && ctx->hit_fd < 0 && !ctx->hit_buf && !ctx->stream_written)
			srv->stats.egress_bytes += bytes;
	}
	if (ctx->hit_fd >= 0) {
		close(ctx->hit_fd);
		ctx->hit_fd = -1;
	}
	free(ctx->hit_buf);
	ctx->hit_buf = NULL;
	edge_pace_cancel(srv->pace, &ctx->pace_w);
	if (ctx->status && ctx->status < 400) {
		edge_hb_account(srv, EDGE_ACCT_REQS, 1, ctx->svc);
		if (ctx->result == EDGE_RESULT_HIT) {
			srv->stats.hits++;
			edge_hb_account(srv, EDGE_ACCT_HITS, 1, ctx->svc);
		} else if (ctx->result == EDGE_RESULT_MISS) {
			srv->stats.misses++;
			edge_hb_account(srv, EDGE_ACCT_MISSES, 1, ctx->svc);
		}
	}
	ctx->req = NULL;
	if (ctx->fill) {
		edge_fill_viewer_closed(ctx);
		return;
	}
	ctx->magic = 0;
	free(ctx);
}

void edge_serve_egress(struct edge_server *srv, uint64_t n)
{
	edge_pace_take(srv->pace, n);
	srv->stats.egress_bytes += n;
}

/* --- responses --------------------------------------------------------------------------- */

size_t edge_serve_common_headers(const struct edge_server *srv, struct ec_http_header *h,
                                 size_t max)
{
	size_t n = 0;
	EC_ASSERT(max >= 3);
	h[n++] = (struct ec_http_header){ "Access-Control-Allow-Origin", 0, "*", 0, 0 };
	h[n++] = (struct ec_http_header){ "Access-Control-Expose-Headers", 0,
	                                  "Content-Length, Content-Range, ETag, Accept-Ranges", 0, 0 };
	if (srv->conf.cache_control[0])
		h[n++] = (struct ec_http_header){ "Cache-Control", 0, srv->conf.cache_control, 0, 0 };
	return n;
}

void edge_serve_text(struct edge_reqctx *ctx, int status, enum edge_result result,
                     const char *msg)
{
	struct ec_http_header h[8];
	char body[512];
	size_t n, len;
	struct ec_http_req *req = ctx->req;

	if (!req)
		return;
	n = edge_serve_common_headers(ctx->srv, h, EC_ARRAY_LEN(h));
	h[n++] = (struct ec_http_header){ "Content-Type", 0, "text/plain; charset=utf-8", 0, 0 };
	if (status == 405)
		h[n++] = (struct ec_http_header){ "Allow", 0, "GET, HEAD, OPTIONS", 0, 0 };
	if (status == 503)
		h[n++] = (struct ec_http_header){ "Retry-After", 0, "1", 0, 0 };
	len = (size_t)snprintf(body, sizeof body, "%s\n", msg);
	if (len >= sizeof body)
		len = sizeof body - 1;
	ctx->body_len = req->is_head ? 0 : len;
	edge_serve_count(ctx, status, result);
	ec_http_respond(req, status, h, n, body, len); /* may close ctx: not touched after */
}

/* Paced hits: with box.uplink enforced, a hit body goes out in chunks read from the
 * object file, each taking egress tokens, instead of one sendfile. Runs from the handler,
 * from pace wake-ups and from drain callbacks; the close callback closes hit_fd. */
static void pump_run(void *arg);

static void on_pump_drain(struct ec_http_req *req, void *arg)
{
	pump_run(arg);
}

static void pump_run(void *arg)
{
	static uint8_t buf[65536]; /* one event loop, one pump at a time: shared */
	struct edge_reqctx *ctx = arg;
	struct edge_server *srv = ctx->srv;
	struct ec_http_req *req = ctx->req;
	size_t chunk = edge_pace_chunk(srv->pace);
	int rc;

	EC_ASSERT(ctx->magic == REQCTX_MAGIC);
	if (!req || (ctx->hit_fd < 0 && !ctx->hit_buf))
		return;
	if (chunk > sizeof buf)
		chunk = sizeof buf;
	while (ctx->hit_left > 0) {
		size_t n = ctx->hit_left < chunk ? (size_t)ctx->hit_left : chunk;
		ssize_t got;

		if (ec_http_stream_buffered(req) > PUMP_HIGH_WATER) {
			ec_http_stream_on_drain(req, on_pump_drain, ctx);
			return;
		}
		if (!edge_pace_ready(srv->pace, &ctx->pace_w)) {
			edge_pace_wait(srv->pace, &ctx->pace_w);
			return;
		}
		if (ctx->hit_buf) {
			rc = ec_http_stream_write(req, ctx->hit_buf + ctx->hit_off, n);
			got = (ssize_t)n;
			goto written;
		}
		got = pread(ctx->hit_fd, buf, n, (off_t)ctx->hit_off);
		if (got <= 0) {
			ec_log_warn("cache %s: cannot read the object for %s: %s; cutting request "
			            "%" PRIu64, edge_store_dir(srv->store), ctx->path,
			            got < 0 ? strerror(errno) : "file shrank", req->id);
			ec_http_abort(req);
			return;
		}
		rc = ec_http_stream_write(req, buf, (size_t)got);
written:
		if (rc != 0) {
			if (rc != EC_ECLOSED)
				ec_http_abort(req);
			return;
		}
		edge_serve_egress(srv, (uint64_t)got);
		ctx->stream_written += (uint64_t)got;
		ctx->hit_off += (uint64_t)got;
		ctx->hit_left -= (uint64_t)got;
	}
	if (ctx->hit_fd >= 0)
		close(ctx->hit_fd);
	ctx->hit_fd = -1;
	ec_http_stream_end(req);
}

/* Starts a paced hit response of `len` body bytes from off of the file fd (taken), or of
 * the store's memory copy `mem` (borrowed: copied if the response has to wait). */
static void serve_paced(struct edge_reqctx *ctx, int status, const struct ec_http_header *h,
                        size_t n, int fd, const uint8_t *mem, uint64_t off, uint64_t len)
{
	struct edge_server *srv = ctx->srv;

	if (mem && edge_pace_ready(srv->pace, NULL)) {
		/* tokens now: one response from memory, counted at close like any other */
		edge_pace_take(srv->pace, len);
		ec_http_respond(ctx->req, status, h, n, mem + off, (size_t)len);
		return;
	}
	if (mem) {
		ctx->hit_buf = malloc((size_t)len ? (size_t)len : 1);
		if (!ctx->hit_buf) {
			ec_http_abort(ctx->req);
			return;
		}
		memcpy(ctx->hit_buf, mem + off, (size_t)len);
		off = 0;
	}
	if (ec_http_stream_start(ctx->req, status, h, n, (int64_t)len) != 0) {
		if (fd >= 0)
			close(fd);
		return;
	}
	ctx->hit_fd = fd;
	ctx->hit_off = off;
	ctx->hit_left = len;
	pump_run(ctx);
}

/* Serves an object found in the store: preconditions, ranges, headers. Takes o->fd. */
static void serve_object(struct edge_reqctx *ctx, struct edge_obj *o, enum edge_result result)
{
	struct ec_http_req *req = ctx->req;
	struct ec_http_header h[16];
	struct edge_cond_in in = { 0 };
	struct edge_cond_out out;
	char crange[96];
	uint64_t len;
	size_t n;

	in.if_match = ec_http_req_header(req, "if-match", NULL);
	in.if_none_match = ec_http_req_header(req, "if-none-match", NULL);
	in.if_modified_since = ec_http_req_header(req, "if-modified-since", NULL);
	in.if_unmodified_since = ec_http_req_header(req, "if-unmodified-since", NULL);
	in.if_range = ec_http_req_header(req, "if-range", NULL);
	in.range = ec_http_req_header(req, "range", NULL);
	in.etag = o->etag;
	in.lastmod = o->lastmod;
	in.len = o->content_length;
	edge_cond_eval(&in, &out);

	if (out.status == 412) {
		if (o->fd >= 0)
			close(o->fd);
		edge_serve_text(ctx, 412, result, "precondition failed");
		return;
	}
	n = edge_serve_common_headers(ctx->srv, h, EC_ARRAY_LEN(h));
	if (o->etag[0])
		h[n++] = (struct ec_http_header){ "ETag", 0, o->etag, 0, 0 };
	if (o->lastmod[0])
		h[n++] = (struct ec_http_header){ "Last-Modified", 0, o->lastmod, 0, 0 };
	if (out.status == 304) {
		if (o->fd >= 0)
			close(o->fd);
		ctx->body_len = 0;
		edge_serve_count(ctx, 304, result);
		ec_http_respond(req, 304, h, n, NULL, 0);
		return;
	}
	h[n++] = (struct ec_http_header){ "Accept-Ranges", 0, "bytes", 0, 0 };
	if (out.status == 416) {
		static const char msg[] = "range not satisfiable\n";
		if (o->fd >= 0)
			close(o->fd);
		snprintf(crange, sizeof crange, "bytes */%" PRIu64, o->content_length);
		h[n++] = (struct ec_http_header){ "Content-Range", 0, crange, 0, 0 };
		h[n++] = (struct ec_http_header){ "Content-Type", 0, "text/plain; charset=utf-8", 0, 0 };
		ctx->body_len = req->is_head ? 0 : sizeof msg - 1;
		edge_serve_count(ctx, 416, result);
		ec_http_respond(req, 416, h, n, msg, sizeof msg - 1);
		return;
	}
	h[n++] = (struct ec_http_header){ "Content-Type", 0,
	                                  o->ctype[0] ? o->ctype : "application/octet-stream", 0, 0 };
	len = o->content_length;
	if (out.status == 206) {
		len = out.last - out.first + 1;
		snprintf(crange, sizeof crange, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64,
		         out.first, out.last, o->content_length);
		h[n++] = (struct ec_http_header){ "Content-Range", 0, crange, 0, 0 };
	}
	ctx->body_len = req->is_head ? 0 : len;
	edge_serve_count(ctx, out.status, result);
	if (!req->is_head && len > 0 && edge_pace_is_limited(ctx->srv->pace)) {
		if (o->mem)
			serve_paced(ctx, out.status, h, n, -1, o->mem,
			            out.status == 206 ? out.first : 0, len);
		else
			serve_paced(ctx, out.status, h, n, o->fd,
			            NULL, o->header_len + (out.status == 206 ? out.first : 0), len);
		return;
	}
	if (o->mem) {
		/* a small hot object: headers and body in one write, no file system call */
		ec_http_respond(req, out.status, h, n, o->mem + (out.status == 206 ? out.first : 0),
		                (size_t)len);
		return;
	}
	ec_http_respond_fd(req, out.status, h, n, o->fd,
	                   (off_t)(o->header_len + (out.status == 206 ? out.first : 0)), len);
}

void edge_serve_hit_or_503(struct edge_reqctx *ctx)
{
	struct edge_obj o;
	int rc;

	if (!ctx->req)
		return;
	rc = edge_store_lookup(ctx->srv->store, ctx->path, ctx->path_len, &o);
	if (rc != 0) {
		edge_serve_text(ctx, 503, EDGE_RESULT_ERROR,
		                "object not available from this box right now; retry");
		return;
	}
	serve_object(ctx, &o, ctx->result == EDGE_RESULT_MISS ? EDGE_RESULT_MISS
	                                                     : EDGE_RESULT_HIT);
}

/* --- request checks ---------------------------------------------------------------------- */

/* Splits "/t/<token>/<object path>" and checks the object path strictly: no "..", "//",
 * NUL, backslash, control characters, bad or forbidden percent-escapes (%2e %2f %5c %00).
 * On success sets the token span and copies the object path (with its leading '/') into
 * ctx. Returns NULL or the reason for a 400. */
static const char *serve_split_path(const char *p, size_t len, const char **tok,
                                    size_t *toklen, struct edge_reqctx *ctx)
{
	const char *obj, *slash, *why;
	size_t objlen;

	if (memchr(p, '\0', len))
		return "NUL in path";
	if (len < 3 || memcmp(p, "/t/", 3) != 0)
		return "expected /t/<token>/<path>";
	slash = memchr(p + 3, '/', len - 3);
	if (!slash)
		return "no object path after the token";
	*tok = p + 3;
	*toklen = (size_t)(slash - (p + 3));
	if (*toklen == 0)
		return "empty token";
	if (*toklen > EC_TOKEN_MAX_LEN)
		return "token too long";
	obj = slash;
	objlen = len - (size_t)(slash - p);
	why = edge_serve_check_path(obj, objlen);
	if (why)
		return why;
	memcpy(ctx->path, obj, objlen);
	ctx->path[objlen] = '\0';
	ctx->path_len = objlen;
	ctx->svc = edge_service(ctx->srv, obj, objlen);
	return NULL;
}

/* The token layer's path rules (ec_token_path_check: no "..", "//", "." segments, NUL,
 * backslash, control bytes, bad or encoded '.', '/', '\\', NUL escapes), plus what a cache
 * key must not hold: spaces and non-ASCII bytes. Returns NULL or the reason for a 400. */
const char *edge_serve_check_path(const char *obj, size_t objlen)
{
	const char *why = NULL;

	if (objlen < 2 || obj[0] != '/')
		return "empty object path";
	if (objlen > EDGE_STORE_PATH_MAX)
		return "object path too long";
	if (ec_token_path_check(obj, objlen, &why) != 0)
		return why;
	for (size_t i = 0; i < objlen; i++)
		if ((unsigned char)obj[i] <= 0x20 || (unsigned char)obj[i] >= 0x7f)
			return "space or non-ASCII byte in path";
	return NULL;
}

/* Percent-decodes a token segment into out; a bad escape is kept as is (the token parser
 * then refuses it). Returns the decoded length. */
static size_t serve_unescape(const char *in, size_t len, char *out, size_t outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < len && n + 1 < outlen; i++) {
		int hi, lo;
		if (in[i] == '%' && i + 2 < len && (hi = ec_hex_digit(in[i + 1])) >= 0 &&
		    (lo = ec_hex_digit(in[i + 2])) >= 0) {
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[n++] = in[i];
		}
	}
	out[n] = '\0';
	return n;
}

static enum edge_reject reject_of(int rc)
{
	switch (rc) {
	case EC_ENOENT: return EDGE_REJECT_UNKNOWN_KEY;
	case EC_EBADSIG: return EDGE_REJECT_BAD_SIGNATURE;
	case EC_EEXPIRED: return EDGE_REJECT_EXPIRED;
	case EC_ESTATE: return EDGE_REJECT_SCOPE;
	default: return EDGE_REJECT_MALFORMED;
	}
}

static void serve_preflight(struct edge_reqctx *ctx)
{
	struct ec_http_header h[8];
	size_t n = edge_serve_common_headers(ctx->srv, h, EC_ARRAY_LEN(h));

	h[n++] = (struct ec_http_header){ "Access-Control-Allow-Methods", 0,
	                                  "GET, HEAD, OPTIONS", 0, 0 };
	h[n++] = (struct ec_http_header){ "Access-Control-Allow-Headers", 0,
	        "Range, If-Range, If-None-Match, If-Modified-Since, If-Match, "
	        "If-Unmodified-Since", 0, 0 };
	h[n++] = (struct ec_http_header){ "Access-Control-Max-Age", 0, "86400", 0, 0 };
	h[n++] = (struct ec_http_header){ "Allow", 0, "GET, HEAD, OPTIONS", 0, 0 };
	ctx->body_len = 0;
	edge_serve_count(ctx, 204, EDGE_RESULT_ERROR);
	ec_http_respond(ctx->req, 204, h, n, NULL, 0);
}

/* A miss can stream the fill's bytes only for a plain GET: HEAD, ranges and conditionals
 * wait for the commit and are then answered like hits. */
static int serve_wants_stream(const struct ec_http_req *req)
{
	static const char *const conds[] = { "range", "if-match", "if-none-match",
	                                     "if-modified-since", "if-unmodified-since" };
	if (req->is_head)
		return 0;
	for (size_t i = 0; i < EC_ARRAY_LEN(conds); i++)
		if (ec_http_req_header(req, conds[i], NULL))
			return 0;
	return 1;
}

void edge_serve_handle(struct ec_http_req *req, void *arg)
{
	struct edge_server *srv = arg;
	struct edge_reqctx *ctx;
	struct ec_token_claims claims;
	struct edge_obj o;
	const char *tok = NULL, *why;
	size_t toklen = 0;
	char reason[160], tokbuf[EC_TOKEN_MAX_LEN + 1];
	int rc;

	ctx = calloc(1, sizeof *ctx);
	if (!ctx) {
		ec_log_err("request %" PRIu64 ": out of memory", req->id);
		ec_http_respond(req, 503, NULL, 0, "out of memory\n", 14);
		return;
	}
	ctx->magic = REQCTX_MAGIC;
	ctx->srv = srv;
	ctx->req = req;
	ctx->hit_fd = -1;
	edge_pace_waiter_init(&ctx->pace_w, pump_run, ctx);
	req->user = ctx;
	ec_http_req_on_close(req, on_req_close, ctx);

	if (strcmp(req->method, "OPTIONS") == 0) {
		serve_preflight(ctx);
		return;
	}
	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		edge_serve_text(ctx, 405, EDGE_RESULT_ERROR, "method not allowed");
		return;
	}
	why = serve_split_path(req->path, req->path_len, &tok, &toklen, ctx);
	if (why) {
		snprintf(reason, sizeof reason, "bad path: %s", why);
		ec_log_info("request %" PRIu64 ": 400 %s", req->id, reason);
		edge_serve_text(ctx, 400, EDGE_RESULT_ERROR, reason);
		return;
	}
	reason[0] = '\0';
	if (memchr(tok, '%', toklen)) {
		/* a client network in the token ("/24") may arrive percent-encoded */
		toklen = serve_unescape(tok, toklen, tokbuf, sizeof tokbuf);
		tok = tokbuf;
	}
	rc = ec_token_verify(&srv->conf.keys, tok, toklen, ctx->path, ctx->path_len,
	                     srv->conf.box_id, (const struct sockaddr *)&req->peer,
	                     ec_wall_s_coarse(), &claims, reason, sizeof reason);
	if (rc != 0) {
		if (!reason[0])
			snprintf(reason, sizeof reason, "%s", ec_strerror(rc));
		ec_metric_inc(srv->m.token_rejects[reject_of(rc)]);
		ec_log_info("request %" PRIu64 ": 403 %s for %s", req->id, reason, ctx->path);
		edge_serve_text(ctx, 403, EDGE_RESULT_ERROR, reason);
		return;
	}
	rc = edge_store_lookup(srv->store, ctx->path, ctx->path_len, &o);
	if (rc == 0) {
		serve_object(ctx, &o, EDGE_RESULT_HIT);
		return;
	}
	if (rc == EC_EIO)
		ec_log_warn("cache %s: cannot read the object for %s: %s; filling it again",
		            edge_store_dir(srv->store), ctx->path, strerror(errno));
	ctx->result = EDGE_RESULT_MISS;
	edge_fill_miss(srv->fills, ctx, serve_wants_stream(req));
}

/* --- admin listener ---------------------------------------------------------------------- */

void edge_serve_admin(struct ec_http_req *req, void *arg)
{
	struct edge_server *srv = arg;
	struct ec_http_header h[1] = { { "Content-Type", 0, EC_METRICS_CONTENT_TYPE, 0, 0 } };
	char *text;
	size_t len = 0;

	if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
		ec_http_respond(req, 405, NULL, 0, "method not allowed\n", 19);
		return;
	}
	if (strcmp(req->path, "/metrics") != 0) {
		ec_http_respond(req, 404, NULL, 0, "not found: try /metrics\n", 24);
		return;
	}
	text = ec_metrics_render(srv->metrics, &len);
	if (!text) {
		ec_http_respond(req, 503, NULL, 0, "out of memory\n", 14);
		return;
	}
	ec_http_respond(req, 200, h, 1, text, len);
	free(text);
}
