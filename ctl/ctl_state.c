/* ctl_state: the echosctl commands over the shared state in Redis: boxes, offload,
 * fallbacks, top, drain and undrain. Reads go through ec_state, so --json prints the very
 * document echos-policy's API serves; tables for people are drawn here. Owns one
 * short-lived hiredis context per command. */
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "ec_acct.h"
#include "ec_err.h"
#include "ec_state.h"
#include "ec_time.h"

/* Connects or prints why not (with what to check) and returns NULL. */
static redisContext *state_connect(const struct ctl_opts *o)
{
	char err[512];
	redisContext *rc = ec_state_connect(o->redis_addr, o->timeout_ms, err, sizeof err);

	if (!rc)
		fprintf(stderr, CTL_PROG ": %s; is redis-server running there? "
		        "(--redis HOST:PORT or $ECHOS_REDIS)\n", err);
	return rc;
}

static int state_fail(const struct ctl_opts *o, redisContext *rc, const char *what,
                      const char *err)
{
	fprintf(stderr, CTL_PROG ": redis %s: reading %s: %s\n", o->redis_addr, what, err);
	redisFree(rc);
	return 1;
}

/* "1.5 GB": bytes for people (powers of 1000, like the network's units). */
static const char *human_bytes(double v, char *buf, size_t len)
{
	static const char *units[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	size_t u = 0;

	while (v >= 1000 && u + 1 < EC_ARRAY_LEN(units)) {
		v /= 1000;
		u++;
	}
	snprintf(buf, len, u ? "%.1f %s" : "%.0f %s", v, units[u]);
	return buf;
}

static const char *pct(double ratio, char *buf, size_t len)
{
	if (isnan(ratio))
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f%%", 100.0 * ratio);
	return buf;
}

/* Opens the window's accounting for offload and fallbacks. Returns 0, or the exit status
 * after printing why. */
static int read_window(const struct ctl_opts *o, struct ec_acct *a, int64_t now_ms)
{
	int minutes = ec_acct_window_minutes(o->window);
	redisContext *rc;
	char err[512];

	if (minutes < 0)
		return ctl_fail_usage("--window: expected total, 1m, 1h or 1d");
	if (ec_acct_init(a, o->service, o->region) != 0)
		return ctl_fail_usage("--service and --region: give one of them, a name of "
		                      "[A-Za-z0-9_-], 1 to 32 characters");
	rc = state_connect(o);
	if (!rc)
		return 1;
	if (ec_state_read_acct(rc, minutes, now_ms, a, err, sizeof err) != 0)
		return state_fail(o, rc, "the accounting", err);
	redisFree(rc);
	return 0;
}

static const char *scope_text(const struct ctl_opts *o, char *buf, size_t len)
{
	if (o->service && *o->service)
		snprintf(buf, len, " (service %s)", o->service);
	else if (o->region && *o->region)
		snprintf(buf, len, " (region %s)", o->region);
	else
		buf[0] = '\0';
	return buf;
}

int ctl_cmd_offload(const struct ctl_opts *o)
{
	int64_t now = ec_wall_ms();
	const char *w = o->window ? o->window : "total";
	struct ec_acct a;
	const struct ec_acct_sums *s = &a.s;
	char b1[32], b2[32], b3[32], scope[64];
	int rc = read_window(o, &a, now);

	if (rc != 0)
		return rc;
	if (o->json) {
		ec_state_json_offload(stdout, &a, w, o->service, o->region, now);
		ec_acct_fini(&a);
		return 0;
	}
	ec_acct_table_sort(&a.boxes);
	ec_acct_table_sort(&a.services);
	ec_acct_table_sort(&a.regions);
	printf("window            %s%s\n", w, scope_text(o, scope, sizeof scope));
	printf("served by boxes   %llu bytes (%s) in %llu responses\n",
	       (unsigned long long)s->box_bytes, human_bytes((double)s->box_bytes, b1, sizeof b1),
	       (unsigned long long)s->box_reqs);
	printf("served by origin  %llu bytes (%s) in %llu responses (fallbacks)\n",
	       (unsigned long long)s->fallback_bytes,
	       human_bytes((double)s->fallback_bytes, b1, sizeof b1),
	       (unsigned long long)s->fallback_reqs);
	printf("origin egress     %llu bytes (fallbacks %s + fills %s + prefetch %s)\n",
	       (unsigned long long)ec_acct_origin_egress(s),
	       human_bytes((double)s->fallback_bytes, b1, sizeof b1),
	       human_bytes((double)s->fill_bytes, b2, sizeof b2),
	       human_bytes((double)s->prefetch_bytes, b3, sizeof b3));
	printf("request offload   %s\n", pct(ec_acct_req_offload(s), b1, sizeof b1));
	printf("byte offload      %s\n", pct(ec_acct_byte_offload(s), b1, sizeof b1));
	if (a.boxes.n && !(o->service && *o->service) && !(o->region && *o->region)) {
		printf("\n%-24s %16s %10s %8s\n", "BOX", "BYTES", "RESPONSES", "SHARE");
		for (size_t i = 0; i < a.boxes.n; i++) {
			const struct ec_acct_row *r = &a.boxes.rows[i];
			printf("%-24s %16llu %10llu %8s\n", r->name,
			       (unsigned long long)r->s.box_bytes, (unsigned long long)r->s.box_reqs,
			       pct(ec_acct_ratio(r->s.box_bytes, s->box_bytes - r->s.box_bytes),
			           b1, sizeof b1));
		}
	}
	for (int t = 0; t < 2; t++) {
		const struct ec_acct_table *tab = t ? &a.regions : &a.services;
		if (tab->n == 0)
			continue;
		printf("\n%-24s %16s %16s %10s %10s\n", t ? "REGION" : "SERVICE", "BOX BYTES",
		       "ORIGIN BYTES", "BYTE OFF", "REQ OFF");
		for (size_t i = 0; i < tab->n; i++) {
			const struct ec_acct_sums *rs = &tab->rows[i].s;
			printf("%-24s %16llu %16llu %10s %10s\n", tab->rows[i].name,
			       (unsigned long long)rs->box_bytes,
			       (unsigned long long)rs->fallback_bytes,
			       pct(ec_acct_byte_offload(rs), b1, sizeof b1),
			       pct(ec_acct_req_offload(rs), b2, sizeof b2));
		}
	}
	ec_acct_fini(&a);
	return 0;
}

int ctl_cmd_fallbacks(const struct ctl_opts *o)
{
	int64_t now = ec_wall_ms();
	const char *w = o->window ? o->window : "total";
	struct ec_acct a;
	uint64_t sum = 0;
	char b1[32], scope[64];
	int rc = read_window(o, &a, now);

	if (rc != 0)
		return rc;
	if (o->json) {
		ec_state_json_fallbacks(stdout, &a, w, o->service, o->region, now);
		ec_acct_fini(&a);
		return 0;
	}
	ec_acct_table_sort(&a.reasons);
	for (size_t i = 0; i < a.reasons.n; i++)
		sum += a.reasons.rows[i].s.rdr_origin;
	printf("window %s%s: %llu redirects to boxes, %llu to the origin\n", w,
	       scope_text(o, scope, sizeof scope), (unsigned long long)a.s.rdr_box,
	       (unsigned long long)a.s.rdr_origin);
	if (a.reasons.n == 0) {
		printf("no fallbacks counted\n");
		ec_acct_fini(&a);
		return 0;
	}
	printf("\n%-28s %12s %8s\n", "REASON", "REDIRECTS", "SHARE");
	for (size_t i = 0; i < a.reasons.n; i++) {
		const struct ec_acct_row *r = &a.reasons.rows[i];
		printf("%-28s %12llu %8s\n", r->name, (unsigned long long)r->s.rdr_origin,
		       pct(ec_acct_ratio(r->s.rdr_origin, sum - r->s.rdr_origin), b1, sizeof b1));
	}
	ec_acct_fini(&a);
	return 0;
}

int ctl_cmd_top(const struct ctl_opts *o)
{
	int64_t now = ec_wall_ms();
	const char *w = o->window ? o->window : "1h";
	int minutes = ec_acct_window_minutes(w), approximate;
	struct ec_state_top *rows;
	redisContext *rc;
	size_t n;
	char err[512];
	int r;

	if (minutes != 1 && minutes != 60)
		return ctl_fail_usage("--window: top reads popularity, kept 2 hours: 1m or 1h");
	if (o->region && *o->region && !ec_acct_name_ok(o->region))
		return ctl_fail_usage("--region: expected [A-Za-z0-9_-], 1 to 32 characters");
	rc = state_connect(o);
	if (!rc)
		return 1;
	r = ec_state_read_top(rc, o->region, minutes, o->limit, now, &rows, &n, &approximate,
	                      err, sizeof err);
	if (r != 0)
		return state_fail(o, rc, "popularity", err);
	redisFree(rc);
	if (o->json) {
		ec_state_json_top(stdout, rows, n, approximate, o->region, w, now);
	} else if (n == 0) {
		printf("no requests counted in the last %s%s%s\n", w,
		       o->region && *o->region ? " in region " : "",
		       o->region && *o->region ? o->region : "");
	} else {
		printf("%-5s %10s  %s\n", "RANK", "REQUESTS", "OBJECT");
		for (size_t i = 0; i < n; i++)
			printf("%-5zu %10.0f  %s\n", i + 1, rows[i].requests, rows[i].path);
		if (approximate)
			printf("(several regions: each region's top %u summed)\n", o->limit);
	}
	ec_state_top_free(rows, n);
	return 0;
}

int ctl_cmd_boxes(const struct ctl_opts *o)
{
	int64_t now = ec_wall_ms();
	struct ec_state_box *boxes;
	struct ec_acct a;
	redisContext *rc;
	size_t n;
	char err[512], b1[32], b2[32], b3[32];

	rc = state_connect(o);
	if (!rc)
		return 1;
	if (ec_state_read_boxes(rc, &boxes, &n, err, sizeof err) != 0)
		return state_fail(o, rc, "the box registry", err);
	ec_acct_init(&a, NULL, NULL);
	if (o->json && ec_state_read_acct(rc, 60, now, &a, err, sizeof err) != 0) {
		free(boxes);
		ec_acct_fini(&a);
		return state_fail(o, rc, "the accounting", err);
	}
	redisFree(rc);
	if (o->json) {
		ec_state_json_boxes(stdout, boxes, n, &a, "1h", now);
	} else {
		printf("%-20s %-12s %-9s %8s %10s %7s %7s %6s %8s\n", "BOX", "POP", "STATUS",
		       "LOAD", "UPLINK", "CACHE", "HITS", "CONNS", "AGE");
		for (size_t i = 0; i < n; i++) {
			const struct ec_state_box *b = &boxes[i];
			int64_t seen = b->ts_ms ? b->ts_ms : b->last_seen_ms;
			printf("%-20s %-12s %-9s %8s %9.0fM %7s %7s %6.0f %7.1fs\n", b->id,
			       b->pop[0] ? b->pop : "-", b->status,
			       pct(b->uplink_bps > 0 ? b->egress_bps / b->uplink_bps : NAN, b1,
			           sizeof b1),
			       b->uplink_bps / 1e6,
			       pct(b->cache_max_bytes > 0 ? b->cache_bytes / b->cache_max_bytes
			                                  : NAN, b2, sizeof b2),
			       pct(b->hits + b->misses > 0 ? b->hits / (b->hits + b->misses) : NAN,
			           b3, sizeof b3),
			       b->conns, (double)(now - seen) / 1000.0);
		}
		if (n == 0)
			printf("(no box in the registry)\n");
	}
	free(boxes);
	ec_acct_fini(&a);
	return 0;
}

int ctl_cmd_drain(const struct ctl_opts *o, const char *box, int on)
{
	redisContext *rc;
	redisReply *r;

	if (!box)
		return ctl_fail_usage(on ? "drain needs a BOX id" : "undrain needs a BOX id");
	if (strlen(box) > 63 || strspn(box, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                                    "0123456789._-") != strlen(box) || !*box)
		return ctl_fail_usage("BOX: expected a box id of [A-Za-z0-9._-], 1 to 63 chars");
	rc = state_connect(o);
	if (!rc)
		return 1;
	r = on ? redisCommand(rc, "HSET echos:ctl:{%s} drain 1", box)
	       : redisCommand(rc, "HDEL echos:ctl:{%s} drain", box);
	if (!r || r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, CTL_PROG ": redis %s: %s for %s: %s\n", o->redis_addr,
		        on ? "drain" : "undrain", box, r ? r->str : rc->errstr);
		if (r)
			freeReplyObject(r);
		redisFree(rc);
		return 1;
	}
	freeReplyObject(r);
	redisFree(rc);
	if (o->json)
		printf("{\"box\":\"%s\",\"drain\":%s}\n", box, on ? "true" : "false");
	else
		printf("%s: %s requested; the box reports it with its next heartbeat\n", box,
		       on ? "drain" : "undrain");
	return 0;
}
