/* edge: the echos-edge daemon's shared types and module entry points (conf, serve, fill,
 * heartbeat). The store (edge_store.h) and the precondition logic (edge_cond.h) have their
 * own headers because they stand alone; everything else meets here.
 * Owns nothing itself: each struct says who owns its pointers. */
#ifndef ECHOS_EDGE_EDGE_H
#define ECHOS_EDGE_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include "ec_cfg.h"
#include "ec_http.h"
#include "ec_svc.h"
#include "ec_token.h"
#include "edge_pace.h"
#include "edge_store.h"

struct event;
struct event_base;
struct ec_metrics;
struct ec_metric;
struct ec_redis;
struct edge_fills;

/* --- configuration (edge_conf.c) ------------------------------------------------------ */

struct edge_conf {
	char *box_id;               /* required, [A-Za-z0-9._-]{1,63} */
	char *box_url;              /* required: base URL viewers are redirected to */
	char *box_pop;
	char *box_region;
	char *box_lat;              /* text as configured ("" unset), checked as a number */
	char *box_lon;
	int64_t box_asn;            /* 0: unknown */
	uint64_t box_uplink_bps;    /* provisioned uplink share, bits/s */
	int uplink_enforce;         /* pace viewer egress to box_uplink_bps */
	struct ec_cfg_list listen;  /* plain listeners: HTTP/1.1 + h2c */
	struct ec_cfg_list listen_tls;
	char *tls_cert;
	char *tls_key;
	char *admin_listen;         /* plain listener for /metrics, "" off */
	char *cache_dir;            /* required */
	uint64_t cache_max_bytes;
	char *cache_control;        /* Cache-Control for box responses, "" none */
	char *shim_url;             /* required: origin-shim base URL, no trailing '/' */
	int64_t fill_timeout_ms;    /* whole fill */
	int64_t fill_connect_timeout_ms;
	int64_t fill_viewer_stall_ms; /* a viewer blocking the fill longer is dropped */
	int64_t fill_max_inflight;  /* concurrent fills; more → 503 */
	char *redis_addr;
	struct ec_cfg_list token_keys; /* "kid:hex" box keys */
	int64_t heartbeat_interval_ms;
	int64_t heartbeat_ttl_ms;
	int64_t max_conns;
	int64_t drain_timeout_ms;   /* SIGTERM: longest wait for in-flight requests */
	uint64_t prefetch_bps;      /* background fill budget, bits/s; 0: no prefetch */
	int64_t prefetch_interval_ms; /* how often assignments / popularity are read */
	int64_t prefetch_window_ms; /* popularity: sum of this many recent minutes */
	int64_t prefetch_top;       /* popularity: most popular objects considered */
	struct ec_cfg_list service; /* "NAME=/prefix/": accounting breakdown by service */
	int log_level;              /* enum ec_log_level */

	/* derived by edge_conf_load, not keys */
	struct ec_token_keyring keys;
	char redis_host[256];
	int redis_port;
	struct ec_svc_map services;   /* parsed `service` items; [0] is "default" */
	const char *acct_region;      /* region of the box's counters: box.region, "_" when
	                               * empty, "_other" when not an accounting name */
};

extern const struct ec_cfg_opt edge_conf_opts[];

/* Loads defaults, the file and overrides of `args` into conf and checks the result:
 * required keys, box id syntax, URLs, keys. Every problem goes into err, one per line.
 * Returns 0 or EC_EINVAL/EC_EIO (conf is then already freed and zeroed). On success conf
 * owns its strings: edge_conf_fini() frees them. */
int edge_conf_load(struct edge_conf *conf, const struct ec_args *args, char *err,
                   size_t errlen);
void edge_conf_fini(struct edge_conf *conf);

/* --- counters shared by serve, fill, heartbeat and metrics ---------------------------- */

enum edge_acct {                /* accounting deltas flushed to Redis (docs/redis.md); all
                                 * but prefetch bytes also per service and for the region */
	EDGE_ACCT_BYTES = 0,    /* box.bytes and box.<id>.bytes */
	EDGE_ACCT_REQS,         /* box.reqs and box.<id>.reqs */
	EDGE_ACCT_HITS,
	EDGE_ACCT_MISSES,
	EDGE_ACCT_FILL_BYTES,
	EDGE_ACCT_PREFETCH_BYTES, /* box.prefetch_bytes: pulled from the shim by prefetch */
	EDGE_ACCT_COUNT_
};

enum edge_result {
	EDGE_RESULT_HIT = 0,
	EDGE_RESULT_MISS,
	EDGE_RESULT_ERROR,
	EDGE_RESULT_COUNT_
};

enum edge_reject {             /* token rejections, a bounded label set */
	EDGE_REJECT_MALFORMED = 0,
	EDGE_REJECT_UNKNOWN_KEY,
	EDGE_REJECT_BAD_SIGNATURE,
	EDGE_REJECT_EXPIRED,
	EDGE_REJECT_SCOPE,      /* another box, path outside the scope, client outside net */
	EDGE_REJECT_COUNT_
};

#define EDGE_CODES_N 13         /* bounded status label set, see serve_code_index() */

struct edge_metrics {
	struct ec_metric *requests[EDGE_CODES_N][EDGE_RESULT_COUNT_];
	struct ec_metric *bytes_served;
	struct ec_metric *fill_bytes;
	struct ec_metric *digest_mismatch;
	struct ec_metric *fill_errors;
	struct ec_metric *cache_write_errors;
	struct ec_metric *token_rejects[EDGE_REJECT_COUNT_];
	struct ec_metric *viewers_dropped;
	struct ec_metric *prefetch_bytes;
	struct ec_metric *prefetches[3]; /* enum edge_prefetch_result */
};

struct edge_stats {
	uint64_t acct[EDGE_ACCT_COUNT_];  /* since start */
	uint64_t hits, misses;            /* since start, for the heartbeat */
	uint64_t egress_bytes;            /* body bytes handed to viewer sockets since start,
	                                   * as they are written (egress_bps is its rate) */
	double ttfb_ms;                   /* EWMA of time to first byte */
	int has_ttfb;
};

/* --- the daemon ------------------------------------------------------------------------ */

struct edge_hb;
struct edge_prefetch;

struct edge_server {
	unsigned magic;
	struct edge_conf conf;          /* owned */
	const struct ec_args *args;     /* borrowed from main, for SIGHUP reloads */
	struct event_base *base;        /* owned */
	struct ec_http_server *http;    /* viewer listeners, owned */
	struct ec_http_server *admin;   /* admin listener, owned, NULL when off */
	struct ec_metrics *metrics;     /* owned */
	struct edge_metrics m;          /* series owned by metrics */
	struct edge_store *store;       /* owned */
	struct edge_fills *fills;       /* owned */
	struct ec_redis *redis;         /* owned */
	struct edge_hb *hb;             /* owned */
	struct edge_pace *pace;         /* owned: egress token bucket (box.uplink) */
	struct edge_prefetch *prefetch; /* owned, NULL when prefetch.bps is 0 */
	struct edge_stats stats;
	struct event *ev_term, *ev_int, *ev_hup, *ev_drain; /* owned */
	struct event *ev_usr1, *ev_usr2; /* owned: drain mode on / off */
	int is_stopping;                /* SIGTERM received: draining before exit */
	int is_drain_signalled;         /* SIGUSR1 received (SIGUSR2 clears it) */
	int64_t stop_deadline_ms;       /* monotonic */
	uint64_t next_req_id;
};

/* --- serving (edge_serve.c) ------------------------------------------------------------ */

/* Per-request state, hung on req->user. Allocated by the handler, freed in the close
 * callback only, unless a fill still holds it (then the fill frees it when it lets go). */
struct edge_reqctx {
	unsigned magic;
	struct edge_server *srv;        /* borrowed */
	struct ec_http_req *req;        /* NULL once the request closed */
	struct edge_fill *fill;         /* the fill this viewer is attached to, or NULL */
	struct edge_reqctx *fnext;      /* in the fill's viewer or waiter list */
	int is_streaming;               /* receives the fill's bytes as they arrive */
	int is_dropped;                 /* removed from the stream (too slow) */
	int status;
	enum edge_result result;
	uint64_t body_len;              /* body bytes of the response (0 for HEAD) */
	uint64_t stream_written;        /* streamed body bytes handed to ec_http */
	int hit_fd;                     /* paced hit: object file being pumped, -1 none */
	uint8_t *hit_buf;               /* paced hit from memory: own copy of the body */
	uint64_t hit_off, hit_left;     /* paced hit: next file offset, bytes left */
	struct edge_pace_waiter pace_w; /* paced hit: waiting for egress tokens */
	char path[EDGE_STORE_PATH_MAX + 1]; /* the object path, token stripped */
	size_t path_len;
	size_t svc;                     /* conf.services index of path (accounting) */
};

/* The viewer listener's request handler (ec_http_handler). arg: struct edge_server. */
void edge_serve_handle(struct ec_http_req *req, void *arg);
/* Checks an object path (leading '/', no "..", "//", "." segments, NUL, backslash,
 * control or non-ASCII bytes, bad or forbidden %-escapes). Returns NULL or the reason. */
const char *edge_serve_check_path(const char *path, size_t len);
/* The admin listener's handler: /metrics only. */
void edge_serve_admin(struct ec_http_req *req, void *arg);
/* Serves ctx's object from the store as a hit, or answers 503 if it is not there.
 * Used by the fill for waiters once the object is committed. */
void edge_serve_hit_or_503(struct edge_reqctx *ctx);
/* Answers ctx with a one-line text body and counts it. */
void edge_serve_text(struct edge_reqctx *ctx, int status, enum edge_result result,
                     const char *msg);
/* Counts a response status for metrics and the TTFB average. */
void edge_serve_count(struct edge_reqctx *ctx, int status, enum edge_result result);
/* Common response headers (CORS, Accept-Ranges, Cache-Control); returns the count. */
size_t edge_serve_common_headers(const struct edge_server *srv, struct ec_http_header *h,
                                 size_t max);
int edge_serve_metrics_init(struct edge_server *srv);

/* --- fills (edge_fill.c) --------------------------------------------------------------- */

struct edge_fills *edge_fills_new(struct edge_server *srv, char *err, size_t errlen);
void edge_fills_free(struct edge_fills *f);
size_t edge_fills_inflight(const struct edge_fills *f);
/* Handles a miss for ctx: joins the fill in flight for ctx->path or starts one. A plain
 * GET becomes a streaming viewer of a new fill; joiners, HEAD and range requests wait for
 * the commit and are then served as hits. Answers ctx itself on every error. */
void edge_fill_miss(struct edge_fills *f, struct edge_reqctx *ctx, int wants_stream);
/* Detaches a closing request from its fill (called from the close callback). */
void edge_fill_viewer_closed(struct edge_reqctx *ctx);
/* Egress: a fill's viewers took `n` bytes' worth of tokens of the box's uplink. */
void edge_serve_egress(struct edge_server *srv, uint64_t n);

/* Background fills (prefetch), sent with Echos-Fill-Kind: prefetch and received at most
 * at `bps` bits/s (lifted when a viewer joins). `may_evict` 0: abandoned unless the object
 * fits in the cache's free space. done(arg, result) (an enum edge_prefetch_result) is
 * called once when it ends, unless the fills are freed first. Returns 0, EC_ESTATE (a fill for path is in flight), EC_EAGAIN (too many
 * fills) or EC_ENOMEM. */
typedef void (*edge_fill_done_cb)(void *arg, int result);
int edge_fill_prefetch(struct edge_fills *f, const char *path, size_t len, int may_evict,
                       uint64_t bps, edge_fill_done_cb done, void *arg);
/* 1 if a fill for path is in flight. */
int edge_fill_inflight_for(struct edge_fills *f, const char *path, size_t len);

/* --- heartbeat and accounting (edge_hb.c) --------------------------------------------- */

struct edge_hb *edge_hb_new(struct edge_server *srv);
void edge_hb_free(struct edge_hb *hb);
/* Sends a heartbeat now (e.g. the last one, with status draining). */
void edge_hb_beat(struct edge_hb *hb);
int edge_hb_is_draining(const struct edge_hb *hb);
/* Adds to the accounting: the box's totals, its region's and those of service `svc`
 * (an index of conf.services, as edge_service() returns it). */
void edge_hb_account(struct edge_server *srv, enum edge_acct what, uint64_t n, size_t svc);
/* The conf.services index of an object path (0: "default"). */
static inline size_t edge_service(const struct edge_server *srv, const char *path, size_t len)
{
	return ec_svc_map_match(&srv->conf.services, path, len);
}
/* The Redis link came (back) up: the inventory set is rewritten at the next beat. */
void edge_hb_redis_up(struct edge_hb *hb);

/* --- prefetch (edge_prefetch.c) -------------------------------------------------------- */

enum edge_prefetch_result {
	EDGE_PREFETCH_OK = 0,
	EDGE_PREFETCH_FAILED,
	EDGE_PREFETCH_SKIPPED,   /* did not fit without evicting */
};

/* Returns a new prefetcher owned by the caller (free with edge_prefetch_free) or NULL. */
struct edge_prefetch *edge_prefetch_new(struct edge_server *srv);
void edge_prefetch_free(struct edge_prefetch *p);

#endif
