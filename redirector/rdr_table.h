/* rdr_table: the in-memory box table the request path chooses from, and the syncer that
 * rebuilds it from Redis heartbeats every boxes.sync_interval (docs/redis.md).
 * A new table is built off to the side and swapped in whole; the request path never
 * waits on Redis. Heartbeat freshness is judged by the local monotonic time at which
 * each new ts_ms was first seen, so clock skew between machines does not matter.
 * Owns the tables, their rows (with each box's derived token key) and the sync state. */
#ifndef ECHOS_REDIRECTOR_RDR_TABLE_H
#define ECHOS_REDIRECTOR_RDR_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "ec_token.h"
#include "pol_types.h"

struct event_base;
struct ec_redis;
struct rdr_boxes;

#define RDR_BOX_MAGIC 0x52424f58u   /* "RBOX" */
#define RDR_TABLE_MAGIC 0x5254424cu /* "RTBL" */
#define RDR_URL_MAX 512
#define RDR_NAME_MAX 63             /* PoP and region names */
#define RDR_BOXES_MAX 100000        /* members read per sync */
#define RDR_SYNC_SLACK_MS 1000      /* a sync this late past its interval freezes ages */
#define RDR_CHARGE_SLOTS 32         /* charges per box, in slots of RDR_CHARGE_SLOT_MS */
#define RDR_CHARGE_SLOT_MS 500      /* so charges can last up to 16 s */

/* One row: what the request path needs about one box beside its struct pol_box. */
struct rdr_box {
	unsigned magic;
	char id[EC_TOKEN_BOX_MAX + 1];
	char url[RDR_URL_MAX];          /* base URL viewers are sent to, no trailing '/' */
	size_t url_len;
	char pop[RDR_NAME_MAX + 1];     /* "" if the box did not say */
	char region[RDR_NAME_MAX + 1];
	int64_t ts_ms;                  /* ts_ms of its last heartbeat (the box's clock) */
	uint32_t kid;                   /* key id of key */
	unsigned key_gen;               /* signing-key generation key was derived under */
	uint8_t key[EC_TOKEN_KEY_LEN];  /* the box's token key, derived once */
	uint64_t inv_ver;               /* inventory version (heartbeat inv_ver, else
	                                   cache_objects): a change triggers a re-read */
	/* located from the url host by MMDB when the heartbeat gave no asn or lat/lon */
	int is_geo_done;                /* lookup made for this url */
	uint32_t geo_asn;
	int geo_has_loc;
	double geo_lat, geo_lon;
	/* bitrate charged by redirects, per slot of local monotonic time */
	uint32_t charge_slot[RDR_CHARGE_SLOTS]; /* slot number + 1; 0: empty */
	uint64_t charge_bps[RDR_CHARGE_SLOTS];
	int has_charges;                /* 0: every charge slot is empty */
};

/* A table: rows[i] and boxes[i] describe the same box. Read-only once built. */
struct rdr_table {
	unsigned magic;
	size_t n;
	struct rdr_box *rows;
	struct pol_box *boxes;          /* passed to pol_score_choose as is */
	size_t cap;                     /* rows and boxes allocated (>= n) */
	uint32_t *index;                /* open addressing by id: row + 1, 0 = empty */
	size_t index_cap;               /* power of two */
	struct pol_index *cand;         /* candidate index over boxes (pol_index.h) */
	uint64_t gen;                   /* unique per table built, never 0 */
};

struct rdr_boxes_opts {
	const char *name;               /* "redis 127.0.0.1:6379", for log lines; copied */
	int64_t sync_interval_ms;
	int64_t grace_ms;
	int64_t max_state_age_ms;       /* a gap in heartbeats longer than this resets good_hbs */
	uint32_t sign_kid;
	const uint8_t *master;          /* copied */
	size_t master_len;
	int64_t charge_ms;              /* charge.duration; 0: no charging */
	int64_t charge_reflect_ms;      /* charge.reflect */
	struct ec_geo *const *geo;      /* borrowed: where the current MMDB handle lives */
	/* called after each new table is swapped in (e.g. to read changed inventories) */
	void (*on_table)(void *arg, const struct rdr_table *t);
	void *on_table_arg;
};

/* Parses one HGETALL reply (nkv strings: field, value, field, value...) for `member`
 * strictly into row and box (hb_ms and good_hbs are left 0, keys are not derived).
 * Unknown fields are ignored. Returns 0, or EC_EINVAL with the reason in err. */
int rdr_box_parse(const char *member, size_t nkv, const char *const *kv, const size_t *kvlen,
                  struct rdr_box *row, struct pol_box *box, char *err, size_t errlen);

/* The heartbeat's `hb` field (docs/redis.md): the other fields of the hash as
 * name=value pairs separated by single spaces, e.g. "id=b1 url=https://h:8443 ...",
 * parsed with the same rules as rdr_box_parse. Returns 0, or EC_EINVAL with the reason in
 * err (an empty string, a pair without '=' or with an empty name, a leading, trailing or
 * doubled space, more than RDR_HB_PAIRS_MAX pairs, or any field rdr_box_parse refuses:
 * its validators refuse control bytes in every field it reads). */
#define RDR_HB_PAIRS_MAX 32
int rdr_box_parse_hb(const char *member, const char *hb, size_t len, struct rdr_box *row,
                     struct pol_box *box, char *err, size_t errlen);

/* Returns the row index of box `id` in t, or -1. */
long rdr_table_find(const struct rdr_table *t, const char *id);

/* Returns a new syncer owned by the caller (free with rdr_boxes_free) with an empty
 * table; starts its timer at once. Borrows base and redis, which must outlive it. NULL on
 * allocation failure. */
struct rdr_boxes *rdr_boxes_new(struct event_base *base, struct ec_redis *redis,
                                const struct rdr_boxes_opts *o);
/* Applies new options (config reload); a changed signing key re-derives every row's key
 * at once. Returns 0 or EC_ENOMEM (the old options stay). */
int rdr_boxes_configure(struct rdr_boxes *b, const struct rdr_boxes_opts *o);
/* Stops the timer and frees the tables; a sync still in flight finishes harmlessly when
 * its replies (or the link's NULL replies) arrive. NULL is a no-op. */
void rdr_boxes_free(struct rdr_boxes *b);

/* The current table, owned by b, valid until the next return to the event loop. */
const struct rdr_table *rdr_boxes_table(const struct rdr_boxes *b);

/* The time heartbeat ages are judged at (for pol_score_choose): now while syncs are
 * current, frozen at the last successful sync while Redis is away, and *miss =
 * POL_MISS_REDIS_DOWN once that is older than boxes.grace (or before any sync). */
int64_t rdr_boxes_judge_time(const struct rdr_boxes *b, int64_t now_ms, enum pol_miss *miss);

/* Charges bps to row `row` of the current table at now_ms (local monotonic): it counts
 * in the box's charged_bps for charge.duration, or until a heartbeat first seen
 * charge.reflect after it (that heartbeat's egress already includes the viewer). */
void rdr_boxes_charge(struct rdr_boxes *b, size_t row, uint64_t bps, int64_t now_ms);

/* Seconds since the last successful sync (-1: never), and counters for metrics. */
double rdr_boxes_age_s(const struct rdr_boxes *b, int64_t now_ms);
uint64_t rdr_boxes_syncs(const struct rdr_boxes *b, int failed);
uint64_t rdr_boxes_malformed(const struct rdr_boxes *b);
/* Changes whenever the current table is replaced or a box's load in it goes down in
 * place (charges expiring); in between, loads only rise (charging). A decision memo
 * (pol_memo.h) filled under another epoch must be cleared. */
uint64_t rdr_boxes_epoch(const struct rdr_boxes *b);

#endif
