/* ec_svc: the write side of the per-service and per-region accounting breakdowns
 * (docs/redis.md, "Breakdowns by service and by region"): the `service = NAME=/prefix/`
 * map the edge and the origin-shim share (longest prefix wins, `default` otherwise), and a
 * bounded name table that turns region or service names into counter slots, with `_other`
 * for overflow and for names that cannot be accounting names. Pure: no I/O, no locks
 * (a multi-threaded caller serializes the name table itself). Owns nothing on the heap. */
#ifndef ECHOS_COMMON_EC_SVC_H
#define ECHOS_COMMON_EC_SVC_H

#include <stddef.h>
#include <stdint.h>

#include "ec_acct.h"

#define EC_SVC_MAX 64              /* configured services, beside the default one */
#define EC_SVC_PREFIX_MAX 255      /* bytes of one prefix */
#define EC_SVC_DEFAULT "default"   /* paths no prefix matches */
#define EC_SVC_OTHER "_other"      /* table full, or a name that is not an accounting name */
#define EC_SVC_UNPLACED "_"        /* a viewer the topology does not place */

struct ec_svc {
	char name[EC_ACCT_SCOPE_NAME_MAX + 1];
	char prefix[EC_SVC_PREFIX_MAX + 1];
	size_t prefix_len;
};

/* Path prefix -> service. svc[0] is the default service (empty prefix). */
struct ec_svc_map {
	struct ec_svc svc[EC_SVC_MAX + 1];
	size_t n;                      /* entries in use, the default included */
};

/* Empties m down to the default service. */
void ec_svc_map_init(struct ec_svc_map *m);

/* Adds one `NAME=/prefix/` item (NAME: [A-Za-z0-9_-]{1,32}; prefix: '/' then at most 254
 * bytes without spaces, controls, '?' or '#'). A name may own several prefixes; a prefix
 * may appear once. Returns 0, or EC_EINVAL (bad item, duplicate prefix) or EC_ERANGE
 * (more than EC_SVC_MAX) with the expectation in why. */
int ec_svc_map_add(struct ec_svc_map *m, const char *item, char *why, size_t whylen);

/* The entry whose prefix is the longest one starting path[0..len) (a query is not part
 * of the path: the caller passes the length up to '?'); 0 (default) when none does. */
size_t ec_svc_map_match(const struct ec_svc_map *m, const char *path, size_t len);

/* name itself if it is a valid accounting scope name (ec_acct_name_ok), else "_other". */
const char *ec_svc_scope_name(const char *name);

/* Bounded table of scope names (regions, or services seen across reloads). Slot 0 is
 * always "_other": it takes every name once the table is full and every name that is not
 * an accounting name, so a caller's counters are bounded by EC_SVC_TAB_MAX. */
#define EC_SVC_TAB_MAX 257         /* 256 names plus "_other" */
#define EC_SVC_TAB_SLOTS 1024      /* hash slots: a power of two, at most half used */

struct ec_svc_tab {
	char names[EC_SVC_TAB_MAX][EC_ACCT_SCOPE_NAME_MAX + 1];
	uint16_t slots[EC_SVC_TAB_SLOTS]; /* name index + 1, 0: empty */
	size_t n;                      /* names in use, "_other" included */
	size_t cap;                    /* at most EC_SVC_TAB_MAX, set by init */
	uint64_t overflow;             /* lookups sent to "_other" because the table was full */
	size_t last;                   /* slot of the last name found (0: none yet): a lookup
	                                * of the same name needs only one comparison */
};

/* Starts a table holding "_other" only; cap (2..EC_SVC_TAB_MAX, 0: the maximum) bounds the
 * names it will hold, "_other" included. */
void ec_svc_tab_init(struct ec_svc_tab *t, size_t cap);

/* The slot of name (len bytes, no NUL needed), added on first sight. Never fails: an
 * invalid name or a full table gives slot 0, "_other". */
size_t ec_svc_tab_slot(struct ec_svc_tab *t, const char *name, size_t len);

#endif
