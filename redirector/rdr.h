/* rdr: the echos-redirector daemon context shared by its modules: configuration, the
 * event loop, servers, the Redis link, the box table, locator, popularity and accounting.
 * One per process, owned by main(); every callback gets it as its argument. */
#ifndef ECHOS_REDIRECTOR_RDR_H
#define ECHOS_REDIRECTOR_RDR_H

#include <stdint.h>

#include "ec_cfg.h"
#include "ec_token.h"
#include "pol_memo.h"
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
struct rdr_inv;
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
	struct ec_metric *forwarded[2];              /* client from [peer, header] */
	struct ec_metric *memo[2];                   /* decision memo [hit, miss] */
	/* per service of the config in force: [service][reason], re-bound on reload */
	struct ec_metric *svc_fallbacks[RDR_SERVICES_MAX + 1][POL_MISS_COUNT_];
	struct ec_metric *svc_requests[RDR_SERVICES_MAX + 1][2]; /* [box, origin] */
};

/* Recently signed tokens, direct-mapped: the same object sent to the same box in the
 * same second gets the same token, so a popular object costs one HMAC per second and
 * box, not one per viewer. */
#define RDR_TOKCACHE_SLOTS 4096
struct rdr_tok_slot {
	uint64_t obj;                   /* pol_hash_bytes of the path */
	uint64_t box;                   /* id_hash of the box */
	uint64_t net;                   /* hash of the bound prefix, 0: none */
	int64_t exp_s;
	uint32_t kid;
	unsigned key_gen;
	uint32_t path_len;
	uint16_t len;                   /* token length, 0: empty slot */
	char tok[EC_TOKEN_MAX_LEN + 1];
};

/* Per-request scratch, reused: the event loop answers one request at a time. */
#define RDR_SCRATCH 20480

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
	struct rdr_inv *inv;            /* object -> holders from box inventories */
	uint32_t holders[POL_HOLDERS_MAX]; /* scratch for one decision */
	struct pol_memo *memo;          /* recent decisions (decision.memo); NULL: off */
	struct pol_memo_stats memo_past; /* of memos replaced by reloads */
	uint64_t memo_epoch;            /* the rdr_boxes_epoch it was filled under */
	struct rdr_pop *pop;
	struct rdr_acct acct;
	struct event *ev_term, *ev_int, *ev_hup, *ev_tick, *ev_drain;
	int is_draining;
	int64_t drain_deadline_ms;
	uint64_t bad_logged_s;          /* rate limit for bad-request log lines */
	unsigned bad_logged_n;
	struct rdr_tok_slot *tokcache;  /* RDR_TOKCACHE_SLOTS, owned */
	uint64_t tokcache_hits, tokcache_misses;
	char loc_buf[RDR_SCRATCH];      /* Location of the response being built */
	char link_buf[2 * RDR_SCRATCH]; /* Link alternates of the response being built */
};

#endif
