/* echos-policy: the control-plane daemon. Every interval it removes boxes whose last
 * heartbeat is older than registry.max_age from the registry index (docs/redis.md) and
 * logs the box count; every place.interval the placement loop (pold_place.c) writes each
 * box's assignments. It serves the ops dashboard, the JSON API and /metrics
 * (pold_http.c). It owns its event loop, one async Redis link shared by both loops, the
 * metrics registry, the placement loop and the HTTP server. */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "pold.h"

#define PROG "echos-policy"

static const struct ec_cfg_opt pold_opts[] = {
	{ "redis.addr", EC_CFG_ADDR, offsetof(struct pold_conf, redis_addr), "127.0.0.1:6379",
	  0, 0, "Redis holding the shared state" },
	{ "interval", EC_CFG_DURATION, offsetof(struct pold_conf, interval_ms), "5s", 100,
	  3600000, "how often the control loop runs" },
	{ "registry.max_age", EC_CFG_DURATION,
	  offsetof(struct pold_conf, registry_max_age_ms), "1h", 1000, 2592000000.0,
	  "boxes silent for longer leave the registry index" },
	{ "http.listen", EC_CFG_ADDR, offsetof(struct pold_conf, http_listen), "127.0.0.1:9090",
	  0, 0, "dashboard, JSON API and /metrics (admin network only; empty: off)" },
	{ "http.redis_timeout", EC_CFG_DURATION,
	  offsetof(struct pold_conf, http_redis_timeout_ms), "500ms", 10, 10000,
	  "connect and command timeout of the API's Redis reads" },
	{ "http.conns_max", EC_CFG_INT, offsetof(struct pold_conf, http_conns_max), "64", 1,
	  10000, "concurrent HTTP connections (16 per client address)" },
	{ "place.interval", EC_CFG_DURATION, offsetof(struct pold_conf, place_interval_ms), "5s",
	  0, 3600000, "how often placement runs and assignments are written (0: off)" },
	{ "place.half_life", EC_CFG_DURATION, offsetof(struct pold_conf, place_half_life_ms),
	  "5m", 1000, 86400000, "half-life of the popularity placement follows" },
	{ "place.window", EC_CFG_DURATION, offsetof(struct pold_conf, place_window_ms), "15m",
	  60000, 7200000, "minutes of popularity read each pass (kept 2h in Redis)" },
	{ "place.top", EC_CFG_INT, offsetof(struct pold_conf, place_top), "100000", 1,
	  10000000, "most requested objects read per region and minute" },
	{ "place.default_object_bytes", EC_CFG_SIZE,
	  offsetof(struct pold_conf, place_default_object_bytes), "2M", 1, 1099511627776.0,
	  "size assumed for an object whose announcement gave none" },
	{ "place.storage_share", EC_CFG_DOUBLE, offsetof(struct pold_conf, place_storage_share),
	  "0.8", 0.01, 1, "share of a box's cache.max_bytes assignments may fill" },
	{ "place.object_share", EC_CFG_DOUBLE, offsetof(struct pold_conf, place_object_share),
	  "0.25", 0.001, 1, "most of one box's uplink one object may take (more: replicas)" },
	{ "place.max_util", EC_CFG_DOUBLE, offsetof(struct pold_conf, place_max_util), "0.8",
	  0.01, 1, "planned load on a box's uplink stays under this share" },
	{ "place.min_rate", EC_CFG_DOUBLE, offsetof(struct pold_conf, place_min_rate),
	  "0.000277778", 0, 1e9, "requests/s under which an object gets no replica" },
	{ "place.stickiness", EC_CFG_DOUBLE, offsetof(struct pold_conf, place_stickiness), "0.2",
	  0, 10, "hysteresis: held replicas stay until demand falls by this share" },
	{ "place.max_replicas", EC_CFG_INT, offsetof(struct pold_conf, place_max_replicas), "8",
	  1, 1024, "most replicas of one object in one region" },
	{ "place.assign_ttl", EC_CFG_DURATION, offsetof(struct pold_conf, place_assign_ttl_ms),
	  "1h", 10000, 2592000000.0,
	  "assignments expire this long after echos-policy stops renewing them" },
	{ "place.max_objects", EC_CFG_INT, offsetof(struct pold_conf, place_max_objects),
	  "5000000", 1, 1000000000, "most (region, object) rows one pass places" },
	{ "place.miss_weight", EC_CFG_DOUBLE, offsetof(struct pold_conf, place_miss_weight),
	  "1", 0, 1000, "demand added per origin fallback/s of an object (echos:miss)" },
	{ "place.miss_raise_rate", EC_CFG_DOUBLE,
	  offsetof(struct pold_conf, place_miss_raise_rate), "0.1", 0, 1e9,
	  "origin fallbacks/s from which an object gets one more replica (0: never)" },
	{ "place.miss_cooldown", EC_CFG_DURATION,
	  offsetof(struct pold_conf, place_miss_cooldown_ms), "30s", 0, 86400000,
	  "least time between two replicas added to one object for its fallbacks" },
	{ "log.level", EC_CFG_LEVEL, offsetof(struct pold_conf, log_level), "info", 0, 0,
	  "debug, info, warn or error" },
	{ NULL, 0, 0, NULL, 0, 0, NULL },
};

static void on_prune_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct pold *p = arg;

	if (reply && reply->type == REDIS_REPLY_INTEGER && reply->integer > 0) {
		ec_log_info("registry: removed %lld silent boxes", reply->integer);
		ec_metric_add(p->m_pruned, (double)reply->integer);
	}
}

static void on_count_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct pold *p = arg;

	if (!reply || reply->type != REDIS_REPLY_INTEGER)
		return;
	if (reply->integer != p->last_boxes)
		ec_log_info("registry: %lld boxes", reply->integer);
	p->last_boxes = reply->integer;
	ec_metric_set(p->m_boxes, (double)reply->integer);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	struct pold *p = arg;
	long long cutoff = (long long)(ec_wall_ms() - p->conf.registry_max_age_ms);

	if (!ec_redis_is_up(p->redis))
		return; /* the link logs its own state; the next tick tries again */
	ec_redis_command(p->redis, on_prune_reply, p,
	                 "ZREMRANGEBYSCORE echos:{boxes} -inf %lld", cutoff);
	ec_redis_command(p->redis, on_count_reply, p, "ZCARD echos:{boxes}");
}

static void on_redis_state(struct ec_redis *r, enum ec_redis_state state, void *arg)
{
	struct pold *p = arg;

	pold_place_on_redis_state(p->place, state == EC_REDIS_UP);
	if (state == EC_REDIS_UP)
		ec_log_info("redis %s: connected", p->conf.redis_addr);
	else if (state == EC_REDIS_DOWN)
		ec_log_warn("redis %s: down; control loop paused, reconnecting",
		            p->conf.redis_addr);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct pold *p = arg;

	ec_log_info("signal %d: stopping", (int)sig);
	event_base_loopexit(p->base, NULL);
}

static double redis_up(void *arg)
{
	struct pold *p = arg;

	return ec_redis_is_up(p->redis);
}

static int pold_metrics_init(struct pold *p)
{
	p->metrics = ec_metrics_new();
	if (!p->metrics)
		return EC_ENOMEM;
	p->m_boxes = ec_metrics_gauge(p->metrics, "echos_policy_registry_boxes",
	                              "Boxes in the registry index (echos:{boxes})", NULL);
	p->m_pruned = ec_metrics_counter(p->metrics, "echos_policy_registry_pruned_total",
	                                 "Silent boxes removed from the registry index", NULL);
	if (!p->m_boxes || !p->m_pruned ||
	    !ec_metrics_gauge_fn(p->metrics, "echos_policy_redis_up",
	                         "1 while the control loop's Redis link is up", NULL,
	                         redis_up, p))
		return EC_ENOMEM;
	return 0;
}

static int pold_init(struct pold *p)
{
	struct ec_redis_opts ro;
	char host[256];
	int port;
	struct timeval tv;

	p->base = event_base_new();
	if (!p->base) {
		ec_log_err("cannot create the event loop");
		return -1;
	}
	if (ec_addr_split(p->conf.redis_addr, host, sizeof host, &port) != 0) {
		ec_log_err("redis.addr: cannot parse \"%s\"", p->conf.redis_addr);
		return -1;
	}
	memset(&ro, 0, sizeof ro);
	ro.host = host;
	ro.port = port;
	ro.name = p->conf.redis_addr;
	p->redis = ec_redis_new(p->base, &ro, on_redis_state, p);
	p->tick = event_new(p->base, -1, EV_PERSIST, on_tick, p);
	p->sigterm = evsignal_new(p->base, SIGTERM, on_stop_signal, p);
	p->sigint = evsignal_new(p->base, SIGINT, on_stop_signal, p);
	if (!p->redis || !p->tick || !p->sigterm || !p->sigint || pold_metrics_init(p) != 0) {
		ec_log_err("out of memory at start");
		return -1;
	}
	if (p->conf.place_interval_ms > 0 && !(p->place = pold_place_new(p))) {
		ec_log_err("out of memory at start");
		return -1;
	}
	if (p->conf.http_listen[0] && !(p->http = pold_http_new(p)))
		return -1; /* logged */
	tv.tv_sec = p->conf.interval_ms / 1000;
	tv.tv_usec = (p->conf.interval_ms % 1000) * 1000;
	event_add(p->tick, &tv);
	event_add(p->sigterm, NULL);
	event_add(p->sigint, NULL);
	signal(SIGPIPE, SIG_IGN);
	p->last_boxes = -1;
	return 0;
}

static void pold_fini(struct pold *p)
{
	pold_http_free(p->http);
	if (p->tick)
		event_free(p->tick);
	if (p->sigterm)
		event_free(p->sigterm);
	if (p->sigint)
		event_free(p->sigint);
	ec_redis_free(p->redis); /* first: pending replies come back to the placement loop */
	pold_place_free(p->place);
	ec_metrics_free(p->metrics);
	if (p->base)
		event_base_free(p->base);
	ec_cfg_fini(pold_opts, &p->conf);
}

int main(int argc, char **argv)
{
	struct ec_args args;
	struct pold p;
	char err[4096];
	int rc;

	memset(&p, 0, sizeof p);
	if (ec_args_parse(argc, argv, &args, err, sizeof err) != 0)
		return ec_exit_usage(PROG, err);
	if (args.show_help) {
		ec_args_usage(stdout, PROG, "the echos control-plane daemon", pold_opts);
		return 0;
	}
	if (args.show_version) {
		printf(PROG " " EC_VERSION "\n");
		return 0;
	}
	if (ec_cfg_load_all(pold_opts, &p.conf, &args, err, sizeof err) != 0) {
		ec_cfg_fini(pold_opts, &p.conf);
		return ec_exit_usage(PROG, err);
	}
	if (args.test_only) {
		printf("%s: configuration ok\n", args.conf_path ? args.conf_path : "(defaults)");
		ec_cfg_fini(pold_opts, &p.conf);
		return 0;
	}
	ec_log_open(PROG, (enum ec_log_level)p.conf.log_level);
	if (pold_init(&p) != 0) {
		pold_fini(&p);
		return EXIT_FAILURE;
	}
	ec_log_info("started; redis %s, every %lld ms; placement %s%lld ms; dashboard %s%s",
	            p.conf.redis_addr, (long long)p.conf.interval_ms,
	            p.conf.place_interval_ms > 0 ? "every " : "off ",
	            (long long)p.conf.place_interval_ms, p.conf.http_listen[0] ? "http://" : "off",
	            p.conf.http_listen);
	rc = event_base_dispatch(p.base);
	pold_fini(&p);
	return rc < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
