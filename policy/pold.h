/* pold: what the files of echos-policy share: its configuration, the daemon struct
 * (event loop, async Redis link for the control loop, metrics) and the HTTP side
 * (pold_http.c: dashboard, JSON API, /metrics). All of it runs on one libevent loop. */
#ifndef ECHOS_POLICY_POLD_H
#define ECHOS_POLICY_POLD_H

#include <stddef.h>
#include <stdint.h>

struct event;
struct event_base;
struct ec_metric;
struct ec_metrics;
struct ec_redis;
struct pold_http;
struct pold_place;

struct pold_conf {
	char *redis_addr;
	int64_t interval_ms;
	int64_t registry_max_age_ms;
	char *http_listen;            /* "" disables the dashboard and API */
	int64_t http_redis_timeout_ms; /* connect and command timeout of the API's reads */
	int64_t http_conns_max;
	int log_level;
	/* placement loop (pold_place.c, docs/control-plane.md) */
	int64_t place_interval_ms;    /* 0: placement off */
	int64_t place_half_life_ms;   /* popularity half-life */
	int64_t place_window_ms;      /* minutes of popularity read, as a duration */
	int64_t place_top;            /* objects read per region and minute */
	uint64_t place_default_object_bytes; /* size of an object nobody announced */
	double place_storage_share;   /* 0..1 of a box's cache_max_bytes for assignments */
	double place_object_share;
	double place_max_util;
	double place_min_rate;
	double place_stickiness;
	int64_t place_max_replicas;
	int64_t place_assign_ttl_ms;  /* TTL of echos:assign:{<box>}, renewed while running */
	int64_t place_max_objects;    /* rows one pass may place (memory bound) */
	double place_miss_weight;     /* demand added per origin fallback/s */
	double place_miss_raise_rate; /* fallbacks/s that add a replica (0: never) */
	int64_t place_miss_cooldown_ms; /* least time between two such raises of one object */
};

struct pold {
	struct pold_conf conf;
	struct event_base *base;
	struct ec_redis *redis;       /* the control loop's async link */
	struct event *tick;
	struct event *sigterm, *sigint;
	long long last_boxes;
	struct ec_metrics *metrics;
	struct ec_metric *m_boxes, *m_pruned;
	struct pold_http *http;
	struct pold_place *place;     /* NULL when place.interval is 0 */
};

/* Starts the HTTP server on p->base at p->conf.http_listen. Returns a new server owned
 * by p (free with pold_http_free), or NULL after logging why. */
struct pold_http *pold_http_new(struct pold *p);
/* Stops listening and frees h; NULL is a no-op. */
void pold_http_free(struct pold_http *h);

/* Starts the placement loop on p->base and p->redis (every place.interval). Returns a new
 * loop owned by p (free with pold_place_free, after p->redis is freed so that its pending
 * replies have come back), or NULL on allocation failure. */
struct pold_place *pold_place_new(struct pold *p);
void pold_place_free(struct pold_place *pl); /* NULL: no-op */
/* Tells the loop the Redis link changed state: after a drop, what was written is read
 * again before the next change is written. */
void pold_place_on_redis_state(struct pold_place *pl, int is_up);

/* The dashboard page, embedded from policy/pold_dash.html (NUL-terminated). */
const char *pold_dash_page(size_t *len);

#endif
