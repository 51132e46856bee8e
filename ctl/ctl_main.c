/* echosctl: the operator's command line. Reads and writes the shared state in Redis
 * (docs/redis.md) with a synchronous connection, announces content to the origin-shim,
 * and mints keys and tokens offline. Owns nothing long-lived; every command connects,
 * does its work and exits. Human tables by default, --json for scripts (the documents of
 * echos-policy's API); exit 0 done, 1 runtime failure, 2 usage. This file: options,
 * dispatch and the offline commands; ctl_state.c and ctl_publish.c hold the others. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ctl.h"
#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_net.h"
#include "ec_time.h"
#include "ec_token.h"

#define PROG CTL_PROG

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " [--redis HOST:PORT] [--json] COMMAND [ARGS]\n"
		"\n"
		"Commands reading Redis (--redis, else $ECHOS_REDIS, else 127.0.0.1:6379):\n"
		"  boxes                     the box table: id, PoP, status, load/uplink, cache\n"
		"                            fill, hit ratio, connections, heartbeat age\n"
		"  offload [--window W] [--service S | --region R]\n"
		"                            byte and request offload, origin egress, per box,\n"
		"                            service and region; W: total (default), 1m, 1h, 1d\n"
		"  fallbacks [--window W] [--service S | --region R]\n"
		"                            redirects to the origin by reason\n"
		"  top [--window 1m|1h] [--region R] [--limit N]\n"
		"                            the most requested objects (default 1h, 20 rows)\n"
		"  drain BOX | undrain BOX   ask a box to stop (or resume) taking new viewers\n"
		"Command talking to an origin-shim:\n"
		"  publish URL [--expected-rps N] [--region R]... [--token-file FILE]\n"
		"                            announce new content: POST /_echos/publish on the\n"
		"                            shim serving URL; the bearer token comes from FILE\n"
		"                            or $ECHOS_PUBLISH_TOKEN\n"
		"Offline commands:\n"
		"  derive-key --master KID:HEX --box ID\n"
		"                            print the box key (KID:HEX) for a box's token.key\n"
		"  token (--master KID:HEX | --key KID:HEX) --box ID --path /P\n"
		"        [--prefix-segments N] [--ttl SECONDS] [--net CIDR]\n"
		"                            mint a token (exact path, or a directory prefix)\n"
		"Options: --timeout MS (Redis and HTTP, default 2000), --json, --help, --version,\n"
		"  -c FILE (defaults for redis.addr, timeout, publish.token_file), -t (check it)\n"
		"\n"
		"Exit status: 0 done, 1 runtime failure (e.g. Redis unreachable), 2 usage error.\n");
}

int ctl_fail_usage(const char *msg)
{
	fprintf(stderr, PROG ": %s (see " PROG " --help)\n", msg);
	return 2;
}

static int fail_usage(const char *msg)
{
	return ctl_fail_usage(msg);
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

/* Parses a non-negative number option; returns 0 or -1. */
static int parse_num(const char *s, double max, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > max)
		return -1;
	*out = v;
	return 0;
}

/* The optional config file (-c): the defaults every command falls back to. The command
 * line wins over $ECHOS_REDIS, which wins over the file. */
struct ctl_conf {
	char *redis_addr;
	int64_t timeout_ms;
	char *token_file;
};

static const struct ec_cfg_opt ctl_cfg_opts[] = {
	{ "redis.addr", EC_CFG_ADDR, offsetof(struct ctl_conf, redis_addr), "127.0.0.1:6379", 0,
	  0, "Redis holding the shared state" },
	{ "timeout", EC_CFG_DURATION, offsetof(struct ctl_conf, timeout_ms), "2s", 1, 600000,
	  "Redis and HTTP timeouts" },
	{ "publish.token_file", EC_CFG_STR, offsetof(struct ctl_conf, token_file), "", 0, 0,
	  "file holding the origin-shim's publish bearer token" },
	{ NULL, 0, 0, NULL, 0, 0, NULL },
};

static struct ctl_conf ctl_conf;

static void free_conf(void)
{
	ec_cfg_fini(ctl_cfg_opts, &ctl_conf);
}

/* Loads -c FILE into conf and applies what the command line and environment left unset.
 * Returns 0, or 2 after printing every problem. */
static int load_conf(const char *path, int test_only, struct ctl_conf *conf,
                     struct ctl_opts *o, int redis_given, int timeout_given)
{
	char err[4096];

	if (ec_cfg_defaults(ctl_cfg_opts, conf, err, sizeof err) != 0 ||
	    (path && ec_cfg_load(ctl_cfg_opts, conf, path, err, sizeof err) != 0)) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	if (test_only) {
		printf("%s: configuration ok\n", path ? path : "(defaults)");
		return 0;
	}
	if (!redis_given && !(getenv("ECHOS_REDIS") && *getenv("ECHOS_REDIS")))
		o->redis_addr = conf->redis_addr;
	if (!timeout_given)
		o->timeout_ms = conf->timeout_ms;
	if (!o->token_file && conf->token_file[0])
		o->token_file = conf->token_file;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "redis", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "window", required_argument, NULL, 'w' },
		{ "service", required_argument, NULL, 'S' },
		{ "region", required_argument, NULL, 'R' },
		{ "limit", required_argument, NULL, 'l' },
		{ "expected-rps", required_argument, NULL, 'e' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "timeout", required_argument, NULL, 'o' },
		{ "master", required_argument, NULL, 'm' },
		{ "key", required_argument, NULL, 'k' },
		{ "box", required_argument, NULL, 'b' },
		{ "path", required_argument, NULL, 'p' },
		{ "prefix-segments", required_argument, NULL, 's' },
		{ "ttl", required_argument, NULL, 'L' },
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "net", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl_opts o = { .redis_addr = "127.0.0.1:6379", .ttl_s = 3600, .limit = 20,
	                      .expected_rps = -1, .timeout_ms = 2000 };
	const char *cmd, *arg, *conf_path = NULL;
	double num;
	int c, rc, test_only = 0, redis_given = 0, timeout_given = 0;

	if (getenv("ECHOS_REDIS") && *getenv("ECHOS_REDIS"))
		o.redis_addr = getenv("ECHOS_REDIS");
	while ((c = getopt_long(argc, argv, "r:jw:m:k:b:p:s:n:c:thV", longopts, NULL)) != -1) {
		switch (c) {
		case 'r': o.redis_addr = optarg; redis_given = 1; break;
		case 'c': conf_path = optarg; break;
		case 't': test_only = 1; break;
		case 'j': o.json = 1; break;
		case 'w': o.window = optarg; break;
		case 'S': o.service = optarg; break;
		case 'R':
			o.region = optarg;
			if (o.n_regions == CTL_MAX_REGIONS)
				return fail_usage("--region: at most 32");
			o.regions[o.n_regions++] = optarg;
			break;
		case 'l':
			if (parse_num(optarg, 1000, &num) != 0 || num < 1)
				return fail_usage("--limit: expected 1 to 1000");
			o.limit = (unsigned)num;
			break;
		case 'e':
			if (parse_num(optarg, 1e9, &o.expected_rps) != 0)
				return fail_usage("--expected-rps: expected a number >= 0");
			break;
		case 'T': o.token_file = optarg; break;
		case 'o':
			if (parse_num(optarg, 600000, &num) != 0 || num < 1)
				return fail_usage("--timeout: expected milliseconds, 1 to 600000");
			o.timeout_ms = (int64_t)num;
			timeout_given = 1;
			break;
		case 'm': o.master = optarg; break;
		case 'k': o.key = optarg; break;
		case 'b': o.box = optarg; break;
		case 'p': o.path = optarg; break;
		case 's': o.prefix_segments = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'L': o.ttl_s = strtoll(optarg, NULL, 10); break;
		case 'n': o.net = optarg; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf(PROG " " EC_VERSION "\n"); return 0;
		default: return fail_usage("unknown option");
		}
	}
	rc = load_conf(conf_path, test_only, &ctl_conf, &o, redis_given, timeout_given);
	atexit(free_conf); /* o borrows the config's strings until exit */
	if (rc != 0 || test_only)
		return rc;
	if (optind >= argc)
		return fail_usage("missing COMMAND");
	cmd = argv[optind];
	arg = optind + 1 < argc ? argv[optind + 1] : NULL;
	if (optind + 2 < argc)
		return fail_usage("too many arguments");
	if (strcmp(cmd, "derive-key") == 0)
		return cmd_derive_key(&o);
	if (strcmp(cmd, "token") == 0)
		return cmd_token(&o);
	if (o.n_regions > 1 && strcmp(cmd, "publish") != 0)
		return fail_usage("--region: give one region (several only for publish)");
	if (strcmp(cmd, "boxes") == 0)
		return ctl_cmd_boxes(&o);
	if (strcmp(cmd, "offload") == 0)
		return ctl_cmd_offload(&o);
	if (strcmp(cmd, "fallbacks") == 0)
		return ctl_cmd_fallbacks(&o);
	if (strcmp(cmd, "top") == 0)
		return ctl_cmd_top(&o);
	if (strcmp(cmd, "drain") == 0 || strcmp(cmd, "undrain") == 0)
		return ctl_cmd_drain(&o, arg, strcmp(cmd, "drain") == 0);
	if (strcmp(cmd, "publish") == 0) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
			fprintf(stderr, PROG ": cannot initialize libcurl\n");
			return 1;
		}
		rc = ctl_cmd_publish(&o, arg);
		curl_global_cleanup();
		return rc;
	}
	return fail_usage("unknown COMMAND");
}
