/* edge_main: echos-edge's entry point and the server's lifetime: listeners, store, fills,
 * egress pacing, prefetch, Redis link, heartbeat, signals (SIGTERM drains and exits,
 * SIGUSR1/SIGUSR2 enter/leave drain mode, SIGHUP reloads token keys).
 * Owns struct edge_server and everything hung on it; request handling is in edge_serve. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_http.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "edge.h"

#define SERVER_MAGIC 0x45535256u /* "ESRV" */
#define PROG "echos-edge"
#define EDGE_MEM_OBJ_MAX (64 * 1024)      /* objects kept in memory: at most this big... */
#define EDGE_MEM_TOTAL (32 * 1024 * 1024) /* ...and this much in all */

static const char summary[] =
	"the echos box: serves /t/<token>/<path> from its disk cache, fills misses from the\n"
	"origin-shim, and reports a heartbeat and offload counters to Redis.\n"
	"Signals: SIGTERM/SIGINT drain and exit; SIGUSR1 reports draining (new viewers go\n"
	"elsewhere, requests keep being served), SIGUSR2 ends that; SIGHUP reloads token.key.";

/* --- metrics gauges ------------------------------------------------------------------------ */

static double gauge_cache_bytes(void *arg)
{
	struct edge_store_stats s;
	edge_store_stats(((struct edge_server *)arg)->store, &s);
	return (double)s.bytes;
}

static double gauge_cache_objects(void *arg)
{
	struct edge_store_stats s;
	edge_store_stats(((struct edge_server *)arg)->store, &s);
	return (double)s.objects;
}

static double gauge_redis_up(void *arg)
{
	struct edge_server *srv = arg;
	return srv->redis && ec_redis_is_up(srv->redis) ? 1.0 : 0.0;
}

static int server_metrics(struct edge_server *srv)
{
	srv->metrics = ec_metrics_new();
	if (!srv->metrics || edge_serve_metrics_init(srv) != 0)
		return EC_ENOMEM;
	ec_metrics_gauge_fn(srv->metrics, "echos_edge_cache_bytes",
	                    "Bytes of objects in the cache (headers included).", NULL,
	                    gauge_cache_bytes, srv);
	ec_metrics_gauge_fn(srv->metrics, "echos_edge_cache_objects", "Objects in the cache.",
	                    NULL, gauge_cache_objects, srv);
	ec_metrics_gauge_fn(srv->metrics, "echos_edge_redis_up",
	                    "1 while the Redis link is up.", NULL, gauge_redis_up, srv);
	return 0;
}

/* --- signals ------------------------------------------------------------------------------- */

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
	struct edge_server *srv = arg;
	size_t left = ec_http_server_inflight(srv->http);

	if (left == 0 || ec_now_ms() >= srv->stop_deadline_ms) {
		if (left)
			ec_log_warn("drain: %zu requests still open after drain.timeout; exiting",
			            left);
		else
			ec_log_info("drain: all requests done; exiting");
		event_base_loopexit(srv->base, NULL);
	}
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct edge_server *srv = arg;
	struct timeval tick = { 0, 100 * 1000 };

	if (srv->is_stopping) {
		ec_log_info("signal %d again: exiting now", (int)sig);
		event_base_loopexit(srv->base, NULL);
		return;
	}
	srv->is_stopping = 1;
	srv->stop_deadline_ms = ec_now_ms() + srv->conf.drain_timeout_ms;
	ec_log_info("signal %d: draining (%zu requests in flight, up to %" PRId64 " ms)",
	            (int)sig, ec_http_server_inflight(srv->http), srv->conf.drain_timeout_ms);
	ec_http_server_drain(srv->http);
	edge_hb_beat(srv->hb); /* the redirector stops choosing us now, not at the TTL */
	srv->ev_drain = event_new(srv->base, -1, EV_PERSIST, on_drain_tick, srv);
	if (!srv->ev_drain || event_add(srv->ev_drain, &tick) != 0)
		event_base_loopexit(srv->base, NULL);
}

/* Logs a multi-line error one line at a time. */
static void log_lines(enum ec_log_level lvl, const char *prefix, const char *text)
{
	const char *p = text;
	while (*p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);
		ec_log(lvl, "%s%.*s", prefix, n, p);
		p += n + (nl ? 1 : 0);
	}
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	struct edge_server *srv = arg;
	struct edge_conf nc;
	char err[4096];

	if (edge_conf_load(&nc, srv->args, err, sizeof err) != 0) {
		log_lines(EC_LOG_ERR, "reload refused: ", err);
		ec_log_err("reload refused: keeping the current token keys");
		return;
	}
	srv->conf.keys = nc.keys;
	ec_log_set_level((enum ec_log_level)nc.log_level);
	ec_log_info("reload: %zu token keys in use; other settings take a restart",
	            srv->conf.keys.n);
	edge_conf_fini(&nc);
}

/* SIGUSR1: drain mode (the heartbeat says draining, so the redirector sends no new
 * viewers; whatever arrives is still served). SIGUSR2: back up. */
static void on_sigusr(evutil_socket_t sig, short what, void *arg)
{
	struct edge_server *srv = arg;
	int on = sig == SIGUSR1;

	if (srv->is_drain_signalled != on)
		ec_log_info("signal %d: %s (%zu requests in flight)", (int)sig,
		            on ? "draining: reporting status draining, still serving"
		               : "drain mode off: reporting status up",
		            ec_http_server_inflight(srv->http));
	srv->is_drain_signalled = on;
	edge_hb_beat(srv->hb); /* tell the redirector now, not at the next beat */
}

static int server_signals(struct edge_server *srv)
{
	signal(SIGPIPE, SIG_IGN);
	srv->ev_term = evsignal_new(srv->base, SIGTERM, on_sigterm, srv);
	srv->ev_int = evsignal_new(srv->base, SIGINT, on_sigterm, srv);
	srv->ev_hup = evsignal_new(srv->base, SIGHUP, on_sighup, srv);
	srv->ev_usr1 = evsignal_new(srv->base, SIGUSR1, on_sigusr, srv);
	srv->ev_usr2 = evsignal_new(srv->base, SIGUSR2, on_sigusr, srv);
	if (!srv->ev_term || !srv->ev_int || !srv->ev_hup || !srv->ev_usr1 || !srv->ev_usr2 ||
	    event_add(srv->ev_term, NULL) || event_add(srv->ev_int, NULL) ||
	    event_add(srv->ev_hup, NULL) || event_add(srv->ev_usr1, NULL) ||
	    event_add(srv->ev_usr2, NULL))
		return EC_ENOMEM;
	return 0;
}

/* --- lifetime ------------------------------------------------------------------------------ */

static void on_redis_state(struct ec_redis *r, enum ec_redis_state st, void *arg)
{
	struct edge_server *srv = arg;
	if (st == EC_REDIS_UP) {
		ec_log_info("redis %s: connected; heartbeats and counters flow", srv->conf.redis_addr);
		edge_hb_redis_up(srv->hb); /* the inventory may be gone or stale: rewrite it */
	}
	else if (st == EC_REDIS_DOWN)
		ec_log_warn("redis %s: down; serving from cache, counters kept until it returns",
		            srv->conf.redis_addr);
}

static int server_listen(struct edge_server *srv)
{
	struct edge_conf *c = &srv->conf;
	char err[512];

	for (size_t i = 0; i < c->listen.n + c->listen_tls.n; i++) {
		int tls = i >= c->listen.n;
		const char *a = tls ? c->listen_tls.items[i - c->listen.n] : c->listen.items[i];
		int port = ec_http_server_listen(srv->http, a, tls, err, sizeof err);
		if (port < 0) {
			ec_log_err("listen %s: %s; exiting", a, err);
			return port;
		}
		ec_log_info("listening on %s (%s)", a, tls ? "TLS: h2, http/1.1" : "http/1.1, h2c");
	}
	return 0;
}

static int server_admin(struct edge_server *srv)
{
	struct ec_http_server_opts o = { 0 };
	char err[512];
	int port;

	if (!srv->conf.admin_listen[0])
		return 0;
	o.base = srv->base;
	o.handler = edge_serve_admin;
	o.handler_arg = srv;
	o.max_conns = 64;
	srv->admin = ec_http_server_new(&o, err, sizeof err);
	if (!srv->admin) {
		ec_log_err("admin listener: %s; exiting", err);
		return EC_ENOMEM;
	}
	port = ec_http_server_listen(srv->admin, srv->conf.admin_listen, 0, err, sizeof err);
	if (port < 0) {
		ec_log_err("admin.listen %s: %s; exiting", srv->conf.admin_listen, err);
		return port;
	}
	ec_log_info("admin listener on %s (/metrics)", srv->conf.admin_listen);
	return 0;
}

static int edge_server_init(struct edge_server *srv, const struct ec_args *args)
{
	struct edge_conf *c = &srv->conf;
	struct ec_http_server_opts o = { 0 };
	struct ec_redis_opts ro = { 0 };
	struct edge_store_stats ss;
	char err[1024], name[300];

	srv->magic = SERVER_MAGIC;
	srv->args = args;
	srv->base = event_base_new();
	if (!srv->base || server_metrics(srv) != 0 || server_signals(srv) != 0) {
		ec_log_err("startup: out of memory");
		return EC_ENOMEM;
	}
	srv->store = edge_store_open(c->cache_dir, c->cache_max_bytes, err, sizeof err);
	if (!srv->store) {
		ec_log_err("%s; exiting", err);
		return EC_EIO;
	}
	/* small hot objects answer from memory: no open/read/close per request */
	edge_store_mem_cache(srv->store, EDGE_MEM_OBJ_MAX, EDGE_MEM_TOTAL);
	edge_store_stats(srv->store, &ss);
	ec_log_info("cache %s: %" PRIu64 " objects, %" PRIu64 " of %" PRIu64 " bytes", c->cache_dir,
	            ss.objects, ss.bytes, ss.max_bytes);
	srv->pace = edge_pace_new(srv->base, c->uplink_enforce ? c->box_uplink_bps / 8 : 0);
	if (!srv->pace) {
		ec_log_err("startup: out of memory");
		return EC_ENOMEM;
	}
	srv->fills = edge_fills_new(srv, err, sizeof err);
	if (!srv->fills) {
		ec_log_err("fills: %s; exiting", err);
		return EC_ENOMEM;
	}
	o.base = srv->base;
	o.handler = edge_serve_handle;
	o.handler_arg = srv;
	o.tls_cert_file = c->tls_cert[0] ? c->tls_cert : NULL;
	o.tls_key_file = c->tls_key[0] ? c->tls_key : NULL;
	o.metrics = srv->metrics;
	o.metrics_prefix = "echos_edge";
	o.max_conns = (size_t)c->max_conns;
	srv->http = ec_http_server_new(&o, err, sizeof err);
	if (!srv->http) {
		ec_log_err("http server: %s; exiting", err);
		return EC_EINVAL;
	}
	if (server_listen(srv) != 0 || server_admin(srv) != 0)
		return EC_EIO;
	snprintf(name, sizeof name, "redis %s", c->redis_addr);
	ro.host = c->redis_host;
	ro.port = c->redis_port;
	ro.name = name;
	srv->redis = ec_redis_new(srv->base, &ro, on_redis_state, srv);
	srv->hb = edge_hb_new(srv);
	if (!srv->redis || !srv->hb) {
		ec_log_err("startup: out of memory");
		return EC_ENOMEM;
	}
	if (c->prefetch_bps && !(srv->prefetch = edge_prefetch_new(srv))) {
		ec_log_err("startup: out of memory");
		return EC_ENOMEM;
	}
	ec_log_info("box %s up: %zu token keys, shim %s, uplink %s%" PRIu64 " bits/s, "
	            "prefetch %" PRIu64 " bits/s", c->box_id, c->keys.n, c->shim_url,
	            c->uplink_enforce ? "paced at " : "not paced, ", c->box_uplink_bps,
	            c->prefetch_bps);
	return 0;
}

static void edge_server_run(struct edge_server *srv)
{
	event_base_dispatch(srv->base);
}

/* Frees everything in reverse dependency order. Safe on a partly initialised server. */
static void edge_server_fini(struct edge_server *srv)
{
	ec_http_server_free(srv->http);   /* close callbacks detach viewers from fills */
	ec_http_server_free(srv->admin);
	edge_fills_free(srv->fills);
	ec_redis_free(srv->redis);        /* pending replies call back into hb and prefetch */
	edge_prefetch_free(srv->prefetch);
	edge_hb_free(srv->hb);
	edge_pace_free(srv->pace);
	edge_store_free(srv->store);
	if (srv->ev_drain)
		event_free(srv->ev_drain);
	if (srv->ev_term)
		event_free(srv->ev_term);
	if (srv->ev_int)
		event_free(srv->ev_int);
	if (srv->ev_hup)
		event_free(srv->ev_hup);
	if (srv->ev_usr1)
		event_free(srv->ev_usr1);
	if (srv->ev_usr2)
		event_free(srv->ev_usr2);
	ec_metrics_free(srv->metrics);
	if (srv->base)
		event_base_free(srv->base);
	edge_conf_fini(&srv->conf);
	srv->magic = 0;
}

static int edge_print_version(void)
{
	printf("%s %s\n", PROG, EC_VERSION);
	return EXIT_SUCCESS;
}

static int edge_print_help(void)
{
	ec_args_usage(stdout, PROG, summary, edge_conf_opts);
	return EXIT_SUCCESS;
}

/* -t: the configuration loaded and checked; frees it. */
static int edge_conf_ok(struct edge_conf *conf, const struct ec_args *args)
{
	printf("%s: %s: configuration ok\n", PROG, args->conf_path ? args->conf_path
	                                                            : "(defaults)");
	edge_conf_fini(conf);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	static struct edge_server srv;
	struct ec_args args;
	char err[8192];

	if (ec_args_parse(argc, argv, &args, err, sizeof err) != 0)
		return ec_exit_usage(PROG, err);                 /* exit 2 */
	if (args.show_help)
		return edge_print_help();
	if (args.show_version)
		return edge_print_version();
	if (edge_conf_load(&srv.conf, &args, err, sizeof err) != 0)
		return ec_exit_usage(PROG, err);                 /* exit 2 */
	if (args.test_only)
		return edge_conf_ok(&srv.conf, &args);
	ec_log_open(PROG, (enum ec_log_level)srv.conf.log_level);
	if (edge_server_init(&srv, &args) != 0) {
		edge_server_fini(&srv);
		return EXIT_FAILURE;                             /* already logged */
	}
	edge_server_run(&srv);                                   /* until SIGTERM */
	edge_server_fini(&srv);
	return EXIT_SUCCESS;
}
