/* pol_types: the plain structs the pure decision core works on. No I/O, no clock:
 * every time is a number the caller passes (now_ms in the caller's monotonic clock).
 * Names of PoPs and regions are 64-bit hashes (ec_topo_name_hash), never strings. */
#ifndef ECHOS_POLICY_POL_TYPES_H
#define ECHOS_POLICY_POL_TYPES_H

#include <stddef.h>
#include <stdint.h>

/* Proximity classes, best first. A service allows classes up to its max_class. */
enum pol_class {
	POL_CLASS_POP = 0, /* same PoP (operator topology) */
	POL_CLASS_ASN,     /* same autonomous system */
	POL_CLASS_GEO,     /* within the service's max distance (haversine) */
	POL_CLASS_ANY,     /* anywhere */
	POL_CLASS_COUNT_
};

enum pol_box_status {
	POL_BOX_UP = 0,
	POL_BOX_DRAINING, /* finishes what it has, takes no new viewers */
	POL_BOX_DOWN,
};

/* Why a request went to the origin. Stable names: pol_miss_name(). */
enum pol_miss {
	POL_MISS_NONE = 0,
	POL_MISS_NO_BOX,            /* no box is registered or alive at all */
	POL_MISS_NO_BOX_IN_REACH,   /* boxes are alive, none within the allowed class */
	POL_MISS_ALL_OVER_CAPACITY, /* boxes in reach are at max utilization */
	POL_MISS_STATE_STALE,       /* boxes in reach have heartbeats older than allowed */
	POL_MISS_SLA_TTFB,          /* boxes in reach report a time to first byte over SLA */
	POL_MISS_NOT_CACHED,        /* policy asks for cached-only and none holds it */
	POL_MISS_REDIS_DOWN,        /* box table too old: shared state lost past the grace */
	POL_MISS_COUNT_
};

/* One row of the box table, filled by the redirector from heartbeats. */
struct pol_box {
	uint64_t id_hash;      /* hash of the box id (rendezvous input) */
	uint64_t pop_hash;     /* 0: unknown PoP */
	uint64_t region_hash;  /* 0: unknown region */
	uint32_t asn;          /* 0: unknown */
	int has_loc;           /* lat/lon valid */
	double lat, lon;       /* degrees */
	uint64_t uplink_bps;   /* provisioned uplink, bits/s */
	uint64_t egress_bps;   /* current egress reported in the last heartbeat, bits/s */
	uint64_t charged_bps;  /* charged by redirects since that heartbeat, bits/s */
	uint32_t conns;        /* active connections */
	uint32_t ttfb_ms;      /* recent time to first byte, ms */
	enum pol_box_status status;
	int64_t hb_ms;         /* when the last heartbeat was seen (caller's clock), ms */
	uint32_t good_hbs;     /* consecutive good heartbeats (no flapping) */
};

/* Where the client is, as far as the shell could tell. */
struct pol_client {
	uint64_t pop_hash;     /* 0: the topology does not know the client */
	uint64_t region_hash;  /* 0: unknown */
	uint32_t asn;          /* 0: unknown */
	int has_loc;
	double lat, lon;
};

/* A service's SLA, from configuration. */
struct pol_sla {
	int64_t max_state_age_ms; /* heartbeat older than this: not eligible */
	uint32_t max_ttfb_ms;     /* 0: no limit */
	uint64_t viewer_bps;      /* the service's bitrate; a box needs this much headroom */
	double max_util;          /* 0..1: (egress + charged + viewer) / uplink must stay under */
	enum pol_class max_class; /* worst proximity class allowed */
	double max_distance_km;   /* GEO class radius */
	uint32_t min_good_hbs;    /* heartbeats needed before a box (re)gets viewers */
};

/* At most this many holders of an object are looked at per decision. */
#define POL_HOLDERS_MAX 16

/* One question: which box for this client and object under this SLA at now_ms.
 * holders are table indexes of boxes that hold the object (from their inventories);
 * they rank first within their class. Every pointer is borrowed for the call. */
struct pol_query {
	const struct pol_client *client;
	uint64_t obj_hash;        /* pol_hash_bytes() of the object path */
	const struct pol_sla *sla;
	int64_t now_ms;           /* heartbeat ages are judged at this time */
	const uint32_t *holders;  /* may be NULL when n_holders == 0 */
	size_t n_holders;         /* only the first POL_HOLDERS_MAX count */
};

/* The answer: a box (index into the table) or a miss with a reason. */
struct pol_choice {
	int32_t box;           /* index, or -1 for the origin */
	int32_t alt;           /* next-best box index, or -1 */
	enum pol_class cls;    /* proximity class of the chosen box */
	enum pol_miss miss;    /* POL_MISS_NONE when box >= 0 */
	int holds;             /* the chosen box is one of the query's holders */
};

#endif
