/* echosctl: the operator's command line. Reads and writes the shared state in Redis
 * (docs/redis.md) with a synchronous connection, and mints keys and tokens offline.
 * Owns nothing long-lived; every command connects, does its work and exits.
 * Human tables by default, --json for scripts; exit 0 done, 1 runtime failure, 2 usage. */
#include <errno.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_net.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "ec_token.h"

#define PROG "echosctl"

struct ctl_opts {
	const char *redis_addr;
	int json;
	const char *window;       /* offload: total, 1m, 1h, 1d */
	const char *master;       /* kid:hex master key */
	const char *key;          /* kid:hex box key */
	const char *box;
	const char *path;
	const char *net;
	unsigned prefix_segments;
	int64_t ttl_s;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--redis HOST:PORT] [--json] COMMAND [ARGS]\n"
		"\n"
		"Commands reading Redis (default --redis 127.0.0.1:6379):\n"
		"  boxes                     the box table: id, PoP, status, load/uplink, fill, age\n"
		"  offload [--window W]      byte and request offload; W: total (default), 1m, 1h, 1d\n"
		"  drain BOX | undrain BOX   ask a box to stop (or resume) taking new viewers\n"
		"Offline commands:\n"
		"  derive-key --master KID:HEX --box ID\n"
		"                            print the box key (KID:HEX) for a box's token.key\n"
		"  token (--master KID:HEX | --key KID:HEX) --box ID --path /P\n"
		"        [--prefix-segments N] [--ttl SECONDS] [--net CIDR]\n"
		"                            mint a token (exact path, or a directory prefix)\n"
		"\n"
		"Exit status: 0 done, 1 runtime failure (e.g. Redis unreachable), 2 usage error.\n");
}

static int fail_usage(const char *msg)
{
	fprintf(stderr, PROG ": %s (see " PROG " --help)\n", msg);
	return 2;
}

/* --- offline: keys and tokens ------------------------------------------------------ */

/* Parses "kid:hex" into kid and raw bytes. Returns the byte count or -1. */
static int parse_key_spec(const char *spec, uint32_t *kid, uint8_t *out, size_t outlen)
{
	char *end;
	unsigned long k;
	const char *colon = strchr(spec, ':');

	if (!colon)
		return -1;
	errno = 0;
	k = strtoul(spec, &end, 10);
	if (errno || end != colon || k == 0 || k > 65535)
		return -1;
	*kid = (uint32_t)k;
	return ec_hex_decode(colon + 1, strlen(colon + 1), out, outlen);
}

static int cmd_derive_key(const struct ctl_opts *o)
{
	uint8_t master[64], key[EC_TOKEN_KEY_LEN];
	char hex[2 * EC_TOKEN_KEY_LEN + 1];
	uint32_t kid;
	int n;

	if (!o->master || !o->box)
		return fail_usage("derive-key needs --master KID:HEX and --box ID");
	n = parse_key_spec(o->master, &kid, master, sizeof master);
	if (n < 16)
		return fail_usage("--master: expected KID:HEX with 16 to 64 bytes of hex");
	if (ec_token_derive_box_key(master, (size_t)n, o->box, key) != 0)
		return fail_usage("--box: expected a box id of [A-Za-z0-9._-], 1 to 63 chars");
	ec_hex_encode(key, sizeof key, hex);
	printf("%" PRIu32 ":%s\n", kid, hex);
	return 0;
}

static int cmd_token(const struct ctl_opts *o)
{
	struct ec_token_claims c;
	uint8_t raw[64], key[EC_TOKEN_KEY_LEN];
	char tok[EC_TOKEN_MAX_LEN + 1];
	uint32_t kid;
	int n;

	if ((!o->master && !o->key) || !o->box || !o->path)
		return fail_usage("token needs --master or --key, --box and --path");
	memset(&c, 0, sizeof c);
	if (o->master) {
		n = parse_key_spec(o->master, &kid, raw, sizeof raw);
		if (n < 16)
			return fail_usage("--master: expected KID:HEX with 16 to 64 bytes of hex");
		if (ec_token_derive_box_key(raw, (size_t)n, o->box, key) != 0)
			return fail_usage("--box: expected [A-Za-z0-9._-], 1 to 63 chars");
	} else {
		n = parse_key_spec(o->key, &kid, key, sizeof key);
		if (n != EC_TOKEN_KEY_LEN)
			return fail_usage("--key: expected KID:HEX with exactly 32 bytes of hex");
	}
	c.kid = kid;
	c.exp_s = ec_wall_ms() / 1000 + o->ttl_s;
	if (strlen(o->box) > EC_TOKEN_BOX_MAX)
		return fail_usage("--box: longer than 63 characters");
	strcpy(c.box, o->box);
	c.scope = o->prefix_segments ? EC_TOKEN_SCOPE_PREFIX : EC_TOKEN_SCOPE_EXACT;
	c.prefix_segments = o->prefix_segments;
	if (o->net) {
		if (ec_prefix_parse(o->net, &c.net, &c.net_bits) != 0)
			return fail_usage("--net: expected a prefix like 192.0.2.0/24");
		c.has_net = 1;
	}
	n = ec_token_sign(key, &c, o->path, strlen(o->path), tok, sizeof tok);
	if (n < 0) {
		fprintf(stderr, PROG ": cannot sign for %s: %s\n", o->path, ec_strerror(n));
		return 2;
	}
	printf("%s\n", tok);
	return 0;
}

/* --- Redis commands ------------------------------------------------------------------ */

static redisContext *connect_redis(const char *addr)
{
	char host[256];
	int port;
	struct timeval tv = { 2, 0 };
	redisContext *rc;

	if (ec_addr_split(addr, host, sizeof host, &port) != 0) {
		fprintf(stderr, PROG ": --redis: expected HOST:PORT, got \"%s\"\n", addr);
		exit(2);
	}
	rc = redisConnectWithTimeout(host, port, tv);
	if (!rc || rc->err) {
		fprintf(stderr, PROG ": redis %s: %s; is redis-server running? (--redis HOST:PORT)\n",
		        addr, rc ? rc->errstr : "cannot allocate");
		if (rc)
			redisFree(rc);
		return NULL;
	}
	redisSetTimeout(rc, tv);
	return rc;
}

static redisReply *command(redisContext *rc, const char *addr, const char *fmt, ...)
{
	va_list ap;
	redisReply *r;

	va_start(ap, fmt);
	r = redisvCommand(rc, fmt, ap);
	va_end(ap);
	if (!r) {
		fprintf(stderr, PROG ": redis %s: %s\n", addr, rc->errstr);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		fprintf(stderr, PROG ": redis %s: %s\n", addr, r->str);
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

static const char *hash_get(const redisReply *r, const char *field)
{
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, field) == 0)
			return r->element[i + 1]->str;
	return NULL;
}

static double hash_num(const redisReply *r, const char *field)
{
	const char *v = hash_get(r, field);
	return v ? strtod(v, NULL) : 0;
}

static void print_json_str(const char *s)
{
	putchar('"');
	for (; s && *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

static int cmd_boxes(const struct ctl_opts *o)
{
	redisContext *rc = connect_redis(o->redis_addr);
	redisReply *ids, *h;
	int64_t now = ec_wall_ms();
	int first = 1;

	if (!rc)
		return 1;
	ids = command(rc, o->redis_addr, "ZRANGE echos:{boxes} 0 -1");
	if (!ids) {
		redisFree(rc);
		return 1;
	}
	if (o->json)
		printf("[");
	else
		printf("%-16s %-14s %-9s %8s %10s %10s %6s %8s\n", "BOX", "POP", "STATUS",
		       "LOAD", "UPLINK", "CACHE", "CONNS", "AGE");
	for (size_t i = 0; i < ids->elements; i++) {
		const char *id = ids->element[i]->str;
		double uplink, egress, age_s, cache, cache_max;
		const char *status, *pop;

		h = command(rc, o->redis_addr, "HGETALL echos:box:{%s}", id);
		if (!h)
			continue;
		if (h->elements == 0) {
			freeReplyObject(h);
			continue; /* expired: the box is gone */
		}
		uplink = hash_num(h, "uplink_bps");
		egress = hash_num(h, "egress_bps");
		cache = hash_num(h, "cache_bytes");
		cache_max = hash_num(h, "cache_max_bytes");
		age_s = (double)(now - (int64_t)hash_num(h, "ts_ms")) / 1000.0;
		status = hash_get(h, "status");
		pop = hash_get(h, "pop");
		if (o->json) {
			printf("%s{\"id\":", first ? "" : ",");
			print_json_str(id);
			printf(",\"pop\":");
			print_json_str(pop ? pop : "");
			printf(",\"region\":");
			print_json_str(hash_get(h, "region") ? hash_get(h, "region") : "");
			printf(",\"status\":");
			print_json_str(status ? status : "unknown");
			printf(",\"url\":");
			print_json_str(hash_get(h, "url") ? hash_get(h, "url") : "");
			printf(",\"egress_bps\":%.0f,\"uplink_bps\":%.0f,\"conns\":%.0f,"
			       "\"cache_bytes\":%.0f,\"cache_max_bytes\":%.0f,\"age_s\":%.3f}",
			       egress, uplink, hash_num(h, "conns"), cache, cache_max, age_s);
			first = 0;
		} else {
			printf("%-16s %-14s %-9s %7.1f%% %9.0fM %9.1f%% %6.0f %7.1fs\n", id,
			       pop ? pop : "-", status ? status : "?",
			       uplink > 0 ? 100.0 * egress / uplink : 0.0, uplink / 1e6,
			       cache_max > 0 ? 100.0 * cache / cache_max : 0.0,
			       hash_num(h, "conns"), age_s);
		}
		freeReplyObject(h);
	}
	if (o->json)
		printf("]\n");
	freeReplyObject(ids);
	redisFree(rc);
	return 0;
}

/* Sums the accounting hashes of the window into *sum (field -> value pairs we need). */
struct acct {
	double box_bytes, box_reqs, fb_bytes, fb_reqs, fill_bytes, prefetch_bytes;
	double rdr_box, rdr_origin;
};

static void acct_add(struct acct *a, const redisReply *h)
{
	a->box_bytes += hash_num(h, "box.bytes");
	a->box_reqs += hash_num(h, "box.reqs");
	a->fb_bytes += hash_num(h, "origin.fallback_bytes");
	a->fb_reqs += hash_num(h, "origin.fallback_reqs");
	a->fill_bytes += hash_num(h, "origin.fill_bytes");
	a->prefetch_bytes += hash_num(h, "origin.prefetch_bytes");
	a->rdr_box += hash_num(h, "rdr.box");
	a->rdr_origin += hash_num(h, "rdr.origin");
}

static int window_minutes(const char *w)
{
	if (!w || strcmp(w, "total") == 0)
		return 0;
	if (strcmp(w, "1m") == 0)
		return 1;
	if (strcmp(w, "1h") == 0)
		return 60;
	if (strcmp(w, "1d") == 0)
		return 1440;
	return -1;
}

static int cmd_offload(const struct ctl_opts *o)
{
	int minutes = window_minutes(o->window);
	struct acct a;
	redisContext *rc;
	redisReply *h;
	double byte_ratio, req_ratio;

	if (minutes < 0)
		return fail_usage("--window: expected total, 1m, 1h or 1d");
	rc = connect_redis(o->redis_addr);
	if (!rc)
		return 1;
	memset(&a, 0, sizeof a);
	if (minutes == 0) {
		h = command(rc, o->redis_addr, "HGETALL echos:acct:total");
		if (!h) {
			redisFree(rc);
			return 1;
		}
		acct_add(&a, h);
		freeReplyObject(h);
	} else {
		/* The current minute counts: "1m" is the minute so far and the one before. */
		int64_t now_min = ec_wall_ms() / 60000;
		for (int64_t m = now_min - minutes; m <= now_min; m++)
			redisAppendCommand(rc, "HGETALL echos:acct:m:%lld", (long long)m);
		for (int64_t m = now_min - minutes; m <= now_min; m++) {
			void *rep = NULL;
			if (redisGetReply(rc, &rep) != REDIS_OK || !rep) {
				fprintf(stderr, PROG ": redis %s: %s\n", o->redis_addr, rc->errstr);
				redisFree(rc);
				return 1;
			}
			acct_add(&a, rep);
			freeReplyObject(rep);
		}
	}
	redisFree(rc);
	byte_ratio = a.box_bytes + a.fb_bytes > 0 ? a.box_bytes / (a.box_bytes + a.fb_bytes) : 0;
	req_ratio = a.box_reqs + a.fb_reqs > 0 ? a.box_reqs / (a.box_reqs + a.fb_reqs) : 0;
	if (o->json) {
		printf("{\"window\":\"%s\",\"box_bytes\":%.0f,\"origin_bytes\":%.0f,"
		       "\"box_requests\":%.0f,\"origin_requests\":%.0f,"
		       "\"byte_offload\":%.6f,\"request_offload\":%.6f,"
		       "\"origin_egress_bytes\":%.0f,\"origin_fill_bytes\":%.0f,"
		       "\"origin_prefetch_bytes\":%.0f}\n",
		       o->window ? o->window : "total", a.box_bytes, a.fb_bytes, a.box_reqs,
		       a.fb_reqs, byte_ratio, req_ratio,
		       a.fb_bytes + a.fill_bytes + a.prefetch_bytes, a.fill_bytes,
		       a.prefetch_bytes);
	} else {
		printf("window            %s\n", o->window ? o->window : "total");
		printf("served by boxes   %.0f bytes in %.0f responses\n", a.box_bytes, a.box_reqs);
		printf("served by origin  %.0f bytes in %.0f responses (fallbacks)\n", a.fb_bytes,
		       a.fb_reqs);
		printf("origin egress     %.0f bytes (fallbacks %.0f + fills %.0f + prefetch %.0f)\n",
		       a.fb_bytes + a.fill_bytes + a.prefetch_bytes, a.fb_bytes, a.fill_bytes,
		       a.prefetch_bytes);
		printf("request offload   %.1f%%\n", 100.0 * req_ratio);
		printf("byte offload      %.1f%%\n", 100.0 * byte_ratio);
	}
	return 0;
}

static int cmd_drain(const struct ctl_opts *o, const char *box, int on)
{
	redisContext *rc;
	redisReply *r;

	if (!box)
		return fail_usage(on ? "drain needs a BOX id" : "undrain needs a BOX id");
	rc = connect_redis(o->redis_addr);
	if (!rc)
		return 1;
	r = on ? command(rc, o->redis_addr, "HSET echos:ctl:{%s} drain 1", box)
	       : command(rc, o->redis_addr, "HDEL echos:ctl:{%s} drain", box);
	redisFree(rc);
	if (!r)
		return 1;
	freeReplyObject(r);
	printf("%s: %s requested; the box reports it with its next heartbeat\n", box,
	       on ? "drain" : "undrain");
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "redis", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "window", required_argument, NULL, 'w' },
		{ "master", required_argument, NULL, 'm' },
		{ "key", required_argument, NULL, 'k' },
		{ "box", required_argument, NULL, 'b' },
		{ "path", required_argument, NULL, 'p' },
		{ "prefix-segments", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 't' },
		{ "net", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_opts o = { .redis_addr = "127.0.0.1:6379", .ttl_s = 3600 };
	const char *cmd;
	int c;

	while ((c = getopt_long(argc, argv, "r:jw:m:k:b:p:s:t:n:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.redis_addr = optarg; break;
		case 'j': o.json = 1; break;
		case 'w': o.window = optarg; break;
		case 'm': o.master = optarg; break;
		case 'k': o.key = optarg; break;
		case 'b': o.box = optarg; break;
		case 'p': o.path = optarg; break;
		case 's': o.prefix_segments = (unsigned)strtoul(optarg, NULL, 10); break;
		case 't': o.ttl_s = strtoll(optarg, NULL, 10); break;
		case 'n': o.net = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " " EC_VERSION "\n"); return 0;
		default: return fail_usage("unknown option");
		}
	}
	if (optind >= argc)
		return fail_usage("missing COMMAND");
	cmd = argv[optind];
	if (strcmp(cmd, "derive-key") == 0)
		return cmd_derive_key(&o);
	if (strcmp(cmd, "token") == 0)
		return cmd_token(&o);
	if (strcmp(cmd, "boxes") == 0)
		return cmd_boxes(&o);
	if (strcmp(cmd, "offload") == 0)
		return cmd_offload(&o);
	if (strcmp(cmd, "drain") == 0 || strcmp(cmd, "undrain") == 0)
		return cmd_drain(&o, optind + 1 < argc ? argv[optind + 1] : NULL,
		                 strcmp(cmd, "drain") == 0);
	return fail_usage("unknown COMMAND");
}
