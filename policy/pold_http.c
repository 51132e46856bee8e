/* pold_http: echos-policy's admin HTTP server on libmicrohttpd, driven by the daemon's
 * libevent loop through MHD's epoll descriptor (no thread): the dashboard page, the JSON
 * API (docs/ops.md) and /metrics. Each request reads Redis with a synchronous hiredis
 * context under a short timeout, so every answer is computed from the state of the
 * moment and the numbers match echosctl's; when Redis does not answer, the API says so
 * with a 503 and the page keeps loading. Does not write Redis (except ec_state's scratch
 * key for top objects). Owns the MHD daemon, its two events and the hiredis context. */
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>

#include "ec_acct.h"
#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_state.h"
#include "ec_time.h"
#include "pold.h"

#define HTTP_MAGIC 0x50485454u /* "PHTT" */
#define HTTP_RETRY_MS 1000       /* after a failed connect, answer 503 at once this long */
#define HTTP_TOP_LIMIT 20
#define HTTP_MAX_REASONS 32      /* bounded label values for echos_policy_fallbacks_total */
#define HTTP_CSP "default-src 'none'; script-src 'unsafe-inline'; " \
	"style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; " \
	"form-action 'none'; frame-ancestors 'none'"

enum http_code_idx { HC_200 = 0, HC_400, HC_404, HC_405, HC_500, HC_503, HC_COUNT_ };
static const unsigned http_codes[HC_COUNT_] = { 200, 400, 404, 405, 500, 503 };

/* The windows /metrics exports, each read once per scrape. */
static const char *const metric_windows[] = { "1m", "1h", "1d", "total" };
#define N_WINDOWS 4

struct pold_http {
	unsigned magic;
	struct pold *p;                 /* borrowed */
	struct MHD_Daemon *mhd;
	struct event *ev_ready;         /* MHD's epoll descriptor is readable */
	struct event *ev_timer;         /* MHD's next timeout */
	redisContext *rc;               /* NULL until the first read, or after a failure */
	int64_t retry_at_ms;            /* monotonic: no new connect before this */
	char last_err[256];             /* why Redis could not be read */
	int is_failing;                 /* the last read failed (logged once per outage) */
	/* metrics */
	struct ec_metric *m_requests[HC_COUNT_];
	struct ec_metric *m_redis_errors, *m_state_up;
	struct ec_metric *m_byte_ratio[N_WINDOWS], *m_req_ratio[N_WINDOWS];
	struct ec_metric *m_win_box_bytes[N_WINDOWS], *m_win_origin_bytes[N_WINDOWS];
	struct ec_metric *m_win_egress_bytes[N_WINDOWS];
	struct ec_metric *m_tot_box_bytes, *m_tot_fb_bytes, *m_tot_fill_bytes;
	struct ec_metric *m_tot_prefetch_bytes, *m_tot_box_reqs, *m_tot_fb_reqs;
	struct ec_metric *m_tot_rdr_box, *m_tot_rdr_origin;
	struct ec_metric *m_reasons[HTTP_MAX_REASONS];
	char reason_names[HTTP_MAX_REASONS][EC_ACCT_NAME_MAX];
	size_t n_reasons;
};

/* A response being built: status and a body written through a memstream. */
struct reply {
	unsigned status;
	const char *type;
	char *body;
	size_t len;
	FILE *f;
};

/* --- Redis: one synchronous context, reconnected on demand --------------------------- */

/* Returns a usable context, or NULL with h->last_err set (and a retry time, so that a
 * dead Redis costs one connect attempt per second, not one per request). */
static redisContext *http_redis(struct pold_http *h)
{
	int64_t now = ec_now_ms();

	if (h->rc)
		return h->rc;
	if (now < h->retry_at_ms)
		return NULL;
	h->rc = ec_state_connect(h->p->conf.redis_addr, h->p->conf.http_redis_timeout_ms,
	                         h->last_err, sizeof h->last_err);
	if (!h->rc)
		h->retry_at_ms = now + HTTP_RETRY_MS;
	return h->rc;
}

/* Runs read(rc, arg) once, and once more on a fresh context when a reused one failed
 * (Redis restarted since the last request). Returns 0, EC_EINVAL (the read refused its
 * input: the message is in err) or EC_EIO (h->last_err says why). */
static int http_read(struct pold_http *h, int (*read)(redisContext *, void *, char *, size_t),
                     void *arg, char *err, size_t errlen)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int was_open = h->rc != NULL, rc;
		redisContext *c = http_redis(h);

		if (!c)
			break;
		rc = read(c, arg, err, errlen);
		if (rc == 0 || rc == EC_EINVAL) {
			if (h->is_failing)
				ec_log_info("redis %s: readable again; API answers resume",
				            h->p->conf.redis_addr);
			h->is_failing = 0;
			return rc;
		}
		snprintf(h->last_err, sizeof h->last_err, "redis %s: %s", h->p->conf.redis_addr,
		         err);
		redisFree(h->rc);
		h->rc = NULL;
		if (!was_open) {
			h->retry_at_ms = ec_now_ms() + HTTP_RETRY_MS;
			break;
		}
	}
	ec_metric_inc(h->m_redis_errors);
	if (!h->is_failing)
		ec_log_warn("%s; API answers 503 until it is back (checked at most once a "
		            "second)", h->last_err);
	h->is_failing = 1;
	return EC_EIO;
}

/* --- replies ------------------------------------------------------------------------- */

static int reply_open(struct reply *r, unsigned status, const char *type)
{
	memset(r, 0, sizeof *r);
	r->status = status;
	r->type = type;
	r->f = open_memstream(&r->body, &r->len);
	return r->f ? 0 : EC_ENOMEM;
}

static void reply_error(struct reply *r, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_error(struct reply *r, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (r->f) {
		fclose(r->f);
		free(r->body);
	}
	if (reply_open(r, status, "application/json") == 0)
		ec_state_json_error(r->f, (int)status, msg);
}

static void reply_unreachable(struct pold_http *h, struct reply *r)
{
	reply_error(r, 503, "redis unreachable: %s", h->last_err);
}

static enum MHD_Result reply_send(struct pold_http *h, struct MHD_Connection *conn,
                                  struct reply *r)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (!r->f || fclose(r->f) != 0) {
		free(r->body);
		return MHD_NO; /* out of memory: MHD closes the connection */
	}
	r->f = NULL;
	resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(r->body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type", r->type);
	MHD_add_response_header(resp, "Cache-Control", "no-store");
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	if (strncmp(r->type, "text/html", 9) == 0) {
		MHD_add_response_header(resp, "Content-Security-Policy", HTTP_CSP);
		MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	}
	if (r->status == 405)
		MHD_add_response_header(resp, "Allow", "GET, HEAD");
	ret = MHD_queue_response(conn, r->status, resp);
	MHD_destroy_response(resp);
	for (int i = 0; i < HC_COUNT_; i++)
		if (http_codes[i] == r->status)
			ec_metric_inc(h->m_requests[i]);
	return ret;
}

/* --- query parameters ---------------------------------------------------------------- */

struct query {
	const char *window;  /* as given, validated */
	int minutes;
	const char *service; /* NULL or a valid name */
	const char *region;
};

/* Reads window, service and region. Returns 0, or fills r with a 400 and returns -1. */
static int query_parse(struct MHD_Connection *conn, const char *def_window, int top,
                       struct query *q, struct reply *r)
{
	q->window = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "window");
	q->service = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "service");
	q->region = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "region");
	if (!q->window || !*q->window)
		q->window = def_window;
	if (q->service && !*q->service)
		q->service = NULL;
	if (q->region && !*q->region)
		q->region = NULL;
	q->minutes = ec_acct_window_minutes(q->window);
	if (q->minutes < 0 || (top && q->minutes != 1 && q->minutes != 60)) {
		reply_error(r, 400, top ? "window: expected 1m or 1h (popularity is kept 2 hours)"
		                        : "window: expected 1m, 1h, 1d or total");
		return -1;
	}
	if ((q->service && !ec_acct_name_ok(q->service)) ||
	    (q->region && !ec_acct_name_ok(q->region))) {
		reply_error(r, 400, "service, region: expected [A-Za-z0-9_-], 1 to 32 characters");
		return -1;
	}
	if (q->service && q->region) {
		reply_error(r, 400, "give service or region, not both");
		return -1;
	}
	return 0;
}

/* --- API handlers -------------------------------------------------------------------- */

struct acct_read {
	struct ec_acct *a;
	int minutes;
	int64_t now_ms;
};

static int read_acct(redisContext *rc, void *arg, char *err, size_t errlen)
{
	struct acct_read *ar = arg;

	return ec_state_read_acct(rc, ar->minutes, ar->now_ms, ar->a, err, errlen);
}

/* /api/offload and /api/fallbacks: one window of the accounting. */
static void api_acct(struct pold_http *h, struct MHD_Connection *conn, struct reply *r,
                     int fallbacks)
{
	int64_t now = ec_wall_ms();
	struct query q;
	struct ec_acct a;
	struct acct_read ar = { &a, 0, now };
	char err[512];

	if (query_parse(conn, "1h", 0, &q, r) != 0)
		return;
	ec_acct_init(&a, q.service, q.region); /* names checked by query_parse */
	ar.minutes = q.minutes;
	if (http_read(h, read_acct, &ar, err, sizeof err) != 0) {
		reply_unreachable(h, r);
	} else if (fallbacks) {
		ec_state_json_fallbacks(r->f, &a, q.window, q.service, q.region, now);
	} else {
		ec_state_json_offload(r->f, &a, q.window, q.service, q.region, now);
	}
	ec_acct_fini(&a);
}

struct boxes_read {
	struct ec_state_box *boxes;
	size_t n;
	struct acct_read ar;
};

static int read_boxes(redisContext *rc, void *arg, char *err, size_t errlen)
{
	struct boxes_read *br = arg;
	int r;

	free(br->boxes);
	br->boxes = NULL;
	br->n = 0;
	r = ec_state_read_boxes(rc, &br->boxes, &br->n, err, errlen);
	if (r != 0)
		return r == EC_ENOMEM ? EC_EIO : r;
	ec_acct_fini(br->ar.a);
	ec_acct_init(br->ar.a, NULL, NULL);
	return read_acct(rc, &br->ar, err, errlen);
}

static void api_boxes(struct pold_http *h, struct MHD_Connection *conn, struct reply *r)
{
	int64_t now = ec_wall_ms();
	struct query q;
	struct ec_acct a;
	struct boxes_read br;
	char err[512];

	if (query_parse(conn, "1h", 0, &q, r) != 0)
		return;
	memset(&br, 0, sizeof br);
	ec_acct_init(&a, NULL, NULL);
	br.ar = (struct acct_read){ &a, q.minutes, now };
	if (http_read(h, read_boxes, &br, err, sizeof err) != 0)
		reply_unreachable(h, r);
	else
		ec_state_json_boxes(r->f, br.boxes, br.n, &a, q.window, now);
	free(br.boxes);
	ec_acct_fini(&a);
}

struct top_read {
	const char *region;
	int minutes;
	int64_t now_ms;
	struct ec_state_top *rows;
	size_t n;
	int approximate;
};

static int read_top(redisContext *rc, void *arg, char *err, size_t errlen)
{
	struct top_read *t = arg;
	int r;

	ec_state_top_free(t->rows, t->n);
	t->rows = NULL;
	t->n = 0;
	r = ec_state_read_top(rc, t->region, t->minutes, HTTP_TOP_LIMIT, t->now_ms, &t->rows,
	                      &t->n, &t->approximate, err, errlen);
	return r == EC_ENOMEM ? EC_EIO : r;
}

static void api_top(struct pold_http *h, struct MHD_Connection *conn, struct reply *r)
{
	struct query q;
	struct top_read t;
	char err[512];

	if (query_parse(conn, "1h", 1, &q, r) != 0)
		return;
	memset(&t, 0, sizeof t);
	t.region = q.region;
	t.minutes = q.minutes;
	t.now_ms = ec_wall_ms();
	if (http_read(h, read_top, &t, err, sizeof err) != 0)
		reply_unreachable(h, r);
	else
		ec_state_json_top(r->f, t.rows, t.n, t.approximate, q.region, q.window, t.now_ms);
	ec_state_top_free(t.rows, t.n);
}

struct series_read {
	const char *service, *region;
	int minutes;
	int64_t now_ms;
	struct ec_state_point *pts;
};

static int read_series(redisContext *rc, void *arg, char *err, size_t errlen)
{
	struct series_read *s = arg;

	return ec_state_read_series(rc, s->service, s->region, s->minutes, s->now_ms, s->pts,
	                            err, errlen);
}

static void api_series(struct pold_http *h, struct MHD_Connection *conn, struct reply *r)
{
	struct query q;
	struct series_read s;
	char err[512];

	if (query_parse(conn, "1h", 0, &q, r) != 0)
		return;
	if (q.minutes != 60 && q.minutes != 1440) {
		reply_error(r, 400, "window: expected 1h or 1d (one point per minute)");
		return;
	}
	s = (struct series_read){ q.service, q.region, q.minutes, ec_wall_ms(), NULL };
	s.pts = calloc((size_t)q.minutes + 1, sizeof *s.pts);
	if (!s.pts) {
		reply_error(r, 500, "out of memory");
		return;
	}
	if (http_read(h, read_series, &s, err, sizeof err) != 0)
		reply_unreachable(h, r);
	else
		ec_state_json_series(r->f, s.pts, (size_t)q.minutes + 1, q.window, q.service,
		                     q.region);
	free(s.pts);
}

/* --- /metrics ------------------------------------------------------------------------ */

/* Registers (once) the counter of one fallback reason; NULL past HTTP_MAX_REASONS. */
static struct ec_metric *reason_metric(struct pold_http *h, const char *reason)
{
	char labels[EC_ACCT_NAME_MAX + 16];
	size_t i;

	for (i = 0; i < h->n_reasons; i++)
		if (strcmp(h->reason_names[i], reason) == 0)
			return h->m_reasons[i];
	if (h->n_reasons == HTTP_MAX_REASONS || !ec_acct_name_ok(reason))
		return NULL;
	snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
	h->m_reasons[i] = ec_metrics_counter(h->p->metrics, "echos_policy_fallbacks_total",
	                                     "Redirects to the origin by reason, from the shared "
	                                     "accounting (echos:acct:total)", labels);
	if (!h->m_reasons[i])
		return NULL;
	snprintf(h->reason_names[i], sizeof h->reason_names[i], "%s", reason);
	h->n_reasons++;
	return h->m_reasons[i];
}

struct metrics_read {
	struct ec_acct *accts[N_WINDOWS];
	int minutes[N_WINDOWS];
	int64_t now_ms;
};

static int read_metrics(redisContext *rc, void *arg, char *err, size_t errlen)
{
	struct metrics_read *m = arg;

	for (int i = 0; i < N_WINDOWS; i++) {
		ec_acct_fini(m->accts[i]);
		ec_acct_init(m->accts[i], NULL, NULL);
	}
	return ec_state_read_accts(rc, m->accts, m->minutes, N_WINDOWS, m->now_ms, err, errlen);
}

static void metrics_update(struct pold_http *h)
{
	struct ec_acct a[N_WINDOWS];
	struct metrics_read m;
	char err[512];
	int ok, i;

	memset(a, 0, sizeof a);
	m.now_ms = ec_wall_ms();
	for (i = 0; i < N_WINDOWS; i++) {
		m.accts[i] = &a[i];
		m.minutes[i] = ec_acct_window_minutes(metric_windows[i]);
	}
	ok = http_read(h, read_metrics, &m, err, sizeof err) == 0;
	ec_metric_set(h->m_state_up, ok);
	for (i = 0; i < N_WINDOWS; i++) {
		const struct ec_acct_sums *s = &a[i].s;
		/* without Redis the windows are unknown, not zero */
		ec_metric_set(h->m_byte_ratio[i], ok ? ec_acct_byte_offload(s) : NAN);
		ec_metric_set(h->m_req_ratio[i], ok ? ec_acct_req_offload(s) : NAN);
		ec_metric_set(h->m_win_box_bytes[i], ok ? (double)s->box_bytes : NAN);
		ec_metric_set(h->m_win_origin_bytes[i], ok ? (double)s->fallback_bytes : NAN);
		ec_metric_set(h->m_win_egress_bytes[i],
		              ok ? (double)ec_acct_origin_egress(s) : NAN);
	}
	if (ok) {
		const struct ec_acct *t = &a[N_WINDOWS - 1]; /* "total" */
		/* counters mirror the running totals in Redis; they only go back if Redis
		 * lost its data, which Prometheus reads as a counter reset */
		ec_metric_set(h->m_tot_box_bytes, (double)t->s.box_bytes);
		ec_metric_set(h->m_tot_box_reqs, (double)t->s.box_reqs);
		ec_metric_set(h->m_tot_fb_bytes, (double)t->s.fallback_bytes);
		ec_metric_set(h->m_tot_fb_reqs, (double)t->s.fallback_reqs);
		ec_metric_set(h->m_tot_fill_bytes, (double)t->s.fill_bytes);
		ec_metric_set(h->m_tot_prefetch_bytes, (double)t->s.prefetch_bytes);
		ec_metric_set(h->m_tot_rdr_box, (double)t->s.rdr_box);
		ec_metric_set(h->m_tot_rdr_origin, (double)t->s.rdr_origin);
		for (size_t k = 0; k < t->reasons.n; k++)
			ec_metric_set(reason_metric(h, t->reasons.rows[k].name),
			              (double)t->reasons.rows[k].s.rdr_origin);
	}
	for (i = 0; i < N_WINDOWS; i++)
		ec_acct_fini(&a[i]);
}

static void serve_metrics(struct pold_http *h, struct reply *r)
{
	size_t len;
	char *text;

	metrics_update(h);
	text = ec_metrics_render(h->p->metrics, &len);
	if (!text) {
		reply_error(r, 500, "out of memory");
		return;
	}
	r->type = EC_METRICS_CONTENT_TYPE;
	fwrite(text, 1, len, r->f);
	free(text);
}

static int register_metrics(struct pold_http *h)
{
	struct ec_metrics *m = h->p->metrics;
	char labels[64];
	int i, ok = 1;

	for (i = 0; i < HC_COUNT_; i++) {
		snprintf(labels, sizeof labels, "code=\"%u\"", http_codes[i]);
		h->m_requests[i] = ec_metrics_counter(m, "echos_policy_http_requests_total",
		                                      "Dashboard, API and metrics requests by "
		                                      "status", labels);
		ok &= h->m_requests[i] != NULL;
	}
	h->m_redis_errors = ec_metrics_counter(m, "echos_policy_http_redis_errors_total",
	                                       "Requests answered 503 because Redis could not "
	                                       "be read", NULL);
	h->m_state_up = ec_metrics_gauge(m, "echos_policy_state_readable",
	                                 "1 if this scrape could read the accounting in Redis",
	                                 NULL);
	for (i = 0; i < N_WINDOWS; i++) {
		snprintf(labels, sizeof labels, "window=\"%s\"", metric_windows[i]);
		h->m_byte_ratio[i] = ec_metrics_gauge(m, "echos_policy_byte_offload_ratio",
			"Bytes served by boxes / (by boxes + by the origin to viewers); NaN "
			"without traffic", labels);
		h->m_req_ratio[i] = ec_metrics_gauge(m, "echos_policy_request_offload_ratio",
			"Responses by boxes / (by boxes + by the origin to viewers)", labels);
		h->m_win_box_bytes[i] = ec_metrics_gauge(m, "echos_policy_window_box_bytes",
			"Bytes served by boxes to viewers in the window", labels);
		h->m_win_origin_bytes[i] = ec_metrics_gauge(m, "echos_policy_window_origin_bytes",
			"Bytes served by the origin to viewers (fallbacks) in the window", labels);
		h->m_win_egress_bytes[i] = ec_metrics_gauge(m,
			"echos_policy_window_origin_egress_bytes",
			"Origin egress in the window: fallbacks, fills and prefetches", labels);
		ok &= h->m_byte_ratio[i] && h->m_req_ratio[i] && h->m_win_box_bytes[i] &&
		      h->m_win_origin_bytes[i] && h->m_win_egress_bytes[i];
	}
#define ACCT_BYTES "echos_policy_acct_bytes_total"
#define ACCT_BYTES_HELP "Bytes by kind, from the shared accounting (echos:acct:total)"
	h->m_tot_box_bytes = ec_metrics_counter(m, ACCT_BYTES, ACCT_BYTES_HELP, "kind=\"box\"");
	h->m_tot_fb_bytes = ec_metrics_counter(m, ACCT_BYTES, ACCT_BYTES_HELP,
	                                       "kind=\"origin_fallback\"");
	h->m_tot_fill_bytes = ec_metrics_counter(m, ACCT_BYTES, ACCT_BYTES_HELP,
	                                         "kind=\"origin_fill\"");
	h->m_tot_prefetch_bytes = ec_metrics_counter(m, ACCT_BYTES, ACCT_BYTES_HELP,
	                                             "kind=\"origin_prefetch\"");
	h->m_tot_box_reqs = ec_metrics_counter(m, "echos_policy_acct_responses_total",
	                                       "Responses to viewers by server kind, from the "
	                                       "shared accounting", "kind=\"box\"");
	h->m_tot_fb_reqs = ec_metrics_counter(m, "echos_policy_acct_responses_total",
	                                      "Responses to viewers by server kind, from the "
	                                      "shared accounting", "kind=\"origin_fallback\"");
	h->m_tot_rdr_box = ec_metrics_counter(m, "echos_policy_acct_redirects_total",
	                                      "Redirects by target, from the shared accounting",
	                                      "to=\"box\"");
	h->m_tot_rdr_origin = ec_metrics_counter(m, "echos_policy_acct_redirects_total",
	                                         "Redirects by target, from the shared "
	                                         "accounting", "to=\"origin\"");
	ok &= h->m_redis_errors && h->m_state_up && h->m_tot_box_bytes && h->m_tot_fb_bytes &&
	      h->m_tot_fill_bytes && h->m_tot_prefetch_bytes && h->m_tot_box_reqs &&
	      h->m_tot_fb_reqs && h->m_tot_rdr_box && h->m_tot_rdr_origin;
	return ok ? 0 : EC_ENOMEM;
}

/* --- request dispatch ---------------------------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
	struct pold_http *h = cls;
	struct reply r;

	EC_ASSERT(h->magic == HTTP_MAGIC);
	if (reply_open(&r, 200, "application/json") != 0)
		return MHD_NO;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		reply_error(&r, 405, "%s: only GET and HEAD", url);
	} else if (strcmp(url, "/") == 0 || strcmp(url, "/index.html") == 0) {
		size_t len;
		const char *page = pold_dash_page(&len);
		r.type = "text/html; charset=utf-8";
		fwrite(page, 1, len, r.f);
	} else if (strcmp(url, "/api/offload") == 0) {
		api_acct(h, conn, &r, 0);
	} else if (strcmp(url, "/api/fallbacks") == 0) {
		api_acct(h, conn, &r, 1);
	} else if (strcmp(url, "/api/boxes") == 0) {
		api_boxes(h, conn, &r);
	} else if (strcmp(url, "/api/top") == 0) {
		api_top(h, conn, &r);
	} else if (strcmp(url, "/api/series") == 0) {
		api_series(h, conn, &r);
	} else if (strcmp(url, "/metrics") == 0) {
		serve_metrics(h, &r);
	} else if (strcmp(url, "/healthz") == 0) {
		r.type = "text/plain; charset=utf-8";
		fputs("ok\n", r.f);
	} else {
		reply_error(&r, 404, "no such page; see /, /api/offload, /api/boxes, "
		            "/api/fallbacks, /api/top, /api/series, /metrics");
	}
	if (r.status == 500)
		ec_log_warn("http %s %s: 500 (out of memory)", method, url);
	return reply_send(h, conn, &r);
}

/* --- MHD on the libevent loop -------------------------------------------------------- */

static void http_schedule(struct pold_http *h)
{
	MHD_UNSIGNED_LONG_LONG to;
	struct timeval tv;

	if (MHD_get_timeout(h->mhd, &to) == MHD_YES) {
		tv.tv_sec = (time_t)(to / 1000);
		tv.tv_usec = (suseconds_t)(to % 1000) * 1000;
		evtimer_add(h->ev_timer, &tv);
	} else {
		evtimer_del(h->ev_timer);
	}
}

static void on_mhd_ready(evutil_socket_t fd, short what, void *arg)
{
	struct pold_http *h = arg;

	MHD_run(h->mhd);
	http_schedule(h);
}

static void on_mhd_log(void *arg, const char *fmt, va_list ap)
{
	char line[512];

	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	ec_log_warn("http: %s", line);
}

struct pold_http *pold_http_new(struct pold *p)
{
	struct addrinfo hints, *ai = NULL;
	const union MHD_DaemonInfo *di;
	struct pold_http *h;
	char host[256], port_s[16];
	int port, rc;

	if (ec_addr_split(p->conf.http_listen, host, sizeof host, &port) != 0) {
		ec_log_err("http.listen: expected HOST:PORT, got \"%s\"", p->conf.http_listen);
		return NULL;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port_s, sizeof port_s, "%d", port);
	if ((rc = getaddrinfo(host, port_s, &hints, &ai)) != 0) {
		ec_log_err("http.listen %s: expected a numeric address: %s", p->conf.http_listen,
		           gai_strerror(rc));
		return NULL;
	}
	h = calloc(1, sizeof *h);
	if (!h) {
		freeaddrinfo(ai);
		ec_log_err("http: out of memory");
		return NULL;
	}
	h->magic = HTTP_MAGIC;
	h->p = p;
	snprintf(h->last_err, sizeof h->last_err, "not read yet");
	if (register_metrics(h) != 0) {
		ec_log_err("http: out of memory for metrics");
		goto fail;
	}
	h->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
	                          (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	                          (uint16_t)port, NULL, NULL, on_request, h,
	                          MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
	                          MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	                          MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)p->conf.http_conns_max,
	                          MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)16,
	                          MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)65536,
	                          MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
	                          MHD_OPTION_END);
	if (!h->mhd) {
		ec_log_err("http.listen %s: cannot listen (address in use or not local?)",
		           p->conf.http_listen);
		goto fail;
	}
	di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
	h->ev_ready = di ? event_new(p->base, di->epoll_fd, EV_READ | EV_PERSIST,
	                             on_mhd_ready, h) : NULL;
	h->ev_timer = evtimer_new(p->base, on_mhd_ready, h);
	if (!h->ev_ready || !h->ev_timer || event_add(h->ev_ready, NULL) != 0) {
		ec_log_err("http: cannot watch libmicrohttpd's epoll descriptor");
		goto fail;
	}
	http_schedule(h);
	freeaddrinfo(ai);
	return h;
fail:
	freeaddrinfo(ai);
	pold_http_free(h);
	return NULL;
}

void pold_http_free(struct pold_http *h)
{
	if (!h)
		return;
	EC_ASSERT(h->magic == HTTP_MAGIC);
	if (h->ev_ready)
		event_free(h->ev_ready);
	if (h->ev_timer)
		event_free(h->ev_timer);
	if (h->mhd)
		MHD_stop_daemon(h->mhd);
	if (h->rc)
		redisFree(h->rc);
	h->magic = 0;
	free(h);
}
