/* ctl: what the echosctl commands share: the parsed options and the command entry
 * points. Each command returns the process exit status (0 done, 1 runtime failure,
 * 2 usage) and has already printed its error. */
#ifndef ECHOS_CTL_CTL_H
#define ECHOS_CTL_CTL_H

#include <stddef.h>
#include <stdint.h>

#define CTL_PROG "echosctl"
#define CTL_MAX_REGIONS 32

struct ctl_opts {
	const char *redis_addr;   /* --redis, $ECHOS_REDIS, or 127.0.0.1:6379 */
	int json;
	const char *window;       /* offload, fallbacks: total, 1m, 1h, 1d; top: 1m, 1h */
	const char *service;      /* offload, fallbacks: one service's share */
	const char *region;       /* offload, fallbacks, top: one region's share */
	const char *regions[CTL_MAX_REGIONS]; /* publish: every --region given */
	size_t n_regions;
	unsigned limit;           /* top: rows */
	double expected_rps;      /* publish: -1 when not given */
	const char *token_file;   /* publish: bearer token file */
	const char *master;       /* kid:hex master key */
	const char *key;          /* kid:hex box key */
	const char *box;
	const char *path;
	const char *net;
	unsigned prefix_segments;
	int64_t ttl_s;
	int64_t timeout_ms;       /* Redis and HTTP timeouts */
};

/* Prints "echosctl: msg (see echosctl --help)" and returns 2. */
int ctl_fail_usage(const char *msg);

/* ctl_state.c: commands reading or writing the shared state in Redis. */
int ctl_cmd_boxes(const struct ctl_opts *o);
int ctl_cmd_offload(const struct ctl_opts *o);
int ctl_cmd_fallbacks(const struct ctl_opts *o);
int ctl_cmd_top(const struct ctl_opts *o);
int ctl_cmd_drain(const struct ctl_opts *o, const char *box, int on);

/* ctl_publish.c: announces new content to an origin-shim (docs/ops.md). */
int ctl_cmd_publish(const struct ctl_opts *o, const char *url);

#endif
