/* rdr: the echos-redirector daemon context shared by its modules: configuration, the
 * event loop, servers, the Redis link, the box table, locator, popularity and accounting.
 * One per process, owned by main(); every callback gets it as its argument. */
#ifndef ECHOS_REDIRECTOR_RDR_H
#define ECHOS_REDIRECTOR_RDR_H

#include <stdint.h>

#include "ec_cfg.h"
#include "pol_types.h"
#include "rdr_acct.h"
#include "rdr_conf.h"
#include "rdr_locate.h"

struct event;
struct event_base;
struct ec_http_server;
struct ec_metric;
struct ec_metrics;
struct ec_redis;
struct rdr_boxes;
struct rdr_pop;

#define RDR_PROG "echos-redirector"
#define RDR_MAGIC 0x52445244u /* "RDRD" */
#define RDR_DRAIN_MS 10000    /* SIGTERM: in-flight requests get this long */

enum rdr_bad {
	RDR_BAD_METHOD = 0,
	RDR_BAD_PATH,
	RDR_BAD_COUNT_
};

/* Metric series, registered once in rdr_serve_metrics_init (owned by the registry). */
struct rdr_metrics {
	struct ec_metric *requests[2][2];            /* [h1, h2][box, origin] */
	struct ec_metric *fallbacks[POL_MISS_COUNT_]; /* [0] unused */
	struct ec_metric *decision;                  /* histogram, seconds */
	struct ec_metric *bad[RDR_BAD_COUNT_];
	struct ec_metric *syncs_ok, *syncs_failed, *malformed;
	struct ec_metric *pop_full, *pop_lost;
	struct ec_metric *geo_errors, *acct_lost;
};

struct rdr {
	unsigned magic;
	struct ec_args args;
	struct rdr_conf conf;           /* swapped whole on a good reload */
	struct rdr_locator loc;
	struct event_base *base;
	struct ec_metrics *metrics;
	struct rdr_metrics m;
	struct ec_http_server *http;
	struct ec_http_server *admin;   /* NULL: admin.listen empty */
	struct ec_redis *redis;
	struct rdr_boxes *boxes;
	struct rdr_pop *pop;
	struct rdr_acct acct;
	struct event *ev_term, *ev_int, *ev_hup, *ev_tick, *ev_drain;
	int is_draining;
	int64_t drain_deadline_ms;
	uint64_t bad_logged_s;          /* rate limit for bad-request log lines */
	unsigned bad_logged_n;
};

#endif
