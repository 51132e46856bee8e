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

struct pold_conf {
	char *redis_addr;
	int64_t interval_ms;
	int64_t registry_max_age_ms;
	char *http_listen;            /* "" disables the dashboard and API */
	int64_t http_redis_timeout_ms; /* connect and command timeout of the API's reads */
	int64_t http_conns_max;
	int log_level;
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
};

/* Starts the HTTP server on p->base at p->conf.http_listen. Returns a new server owned
 * by p (free with pold_http_free), or NULL after logging why. */
struct pold_http *pold_http_new(struct pold *p);
/* Stops listening and frees h; NULL is a no-op. */
void pold_http_free(struct pold_http *h);

/* The dashboard page, embedded from policy/pold_dash.html (NUL-terminated). */
const char *pold_dash_page(size_t *len);

#endif
