/* test_ec_cfg: config files, value types and bounds, the exact problem messages, -o
 * overrides and the command line, through common/ec_cfg.h only. Table-driven; each row is
 * a cmocka test named for the behaviour. Files are written to a private temp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ec_cfg.h"
#include "ec_err.h"

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

struct tconf {
	char *name;
	int64_t port;
	uint64_t max_bytes;
	int64_t timeout_ms;
	uint64_t uplink_bps;
	int enabled;
	double ratio;
	char *addr;
	int level;
	struct ec_cfg_list peers;
	int64_t offset;       /* unbounded, may be negative */
};

static const struct ec_cfg_opt opts[] = {
	{ "name", EC_CFG_STR, offsetof(struct tconf, name), "echos", 0, 0, "instance name" },
	{ "port", EC_CFG_INT, offsetof(struct tconf, port), "8080", 1, 65535, "listen port" },
	{ "cache.max_bytes", EC_CFG_SIZE, offsetof(struct tconf, max_bytes), "20G", 1024,
	  1099511627776.0, "cache size" },
	{ "timeout", EC_CFG_DURATION, offsetof(struct tconf, timeout_ms), "3s", 10, 3600000,
	  "request timeout" },
	{ "uplink", EC_CFG_BPS, offsetof(struct tconf, uplink_bps), "100M", 0, 0, "uplink" },
	{ "enabled", EC_CFG_BOOL, offsetof(struct tconf, enabled), "yes", 0, 0, "on or off" },
	{ "ratio", EC_CFG_DOUBLE, offsetof(struct tconf, ratio), "0.9", 0, 1, "a ratio" },
	{ "redis.addr", EC_CFG_ADDR, offsetof(struct tconf, addr), "127.0.0.1:6379", 0, 0,
	  "redis" },
	{ "log.level", EC_CFG_LEVEL, offsetof(struct tconf, level), "info", 0, 0, "log level" },
	{ "peer", EC_CFG_LIST, offsetof(struct tconf, peers), "seed:1", 0, 0, "peers" },
	{ "offset", EC_CFG_INT, offsetof(struct tconf, offset), NULL, 0, 0, "an offset" },
	{ NULL, 0, 0, NULL, 0, 0, NULL }
};

static char tmpdir[64];

static int setup_dir(void **state)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_ec_cfg.XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* One line summary of a conf, to compare rows against. */
static void dump(const struct tconf *c, char *out, size_t outlen)
{
	size_t i, n;

	n = (size_t)snprintf(out, outlen,
	                     "name=%s port=%lld max=%llu timeout=%lld uplink=%llu enabled=%d "
	                     "ratio=%g addr=%s level=%d offset=%lld peers=[",
	                     c->name ? c->name : "(null)", (long long)c->port,
	                     (unsigned long long)c->max_bytes, (long long)c->timeout_ms,
	                     (unsigned long long)c->uplink_bps, c->enabled, c->ratio,
	                     c->addr ? c->addr : "(null)", c->level, (long long)c->offset);
	for (i = 0; i < c->peers.n && n < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s", i ? "," : "", c->peers.items[i]);
	if (n < outlen)
		snprintf(out + n, outlen - n, "]");
}

/* Replaces every "@" in tmpl with path. */
static void expand(const char *tmpl, const char *path, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *tmpl && n + strlen(path) + 1 < outlen; tmpl++) {
		if (*tmpl == '@') {
			memcpy(out + n, path, strlen(path));
			n += strlen(path);
		} else {
			out[n++] = *tmpl;
		}
	}
	out[n] = '\0';
}

#define DEFAULTS "name=echos port=8080 max=21474836480 timeout=3000 uplink=100000000 " \
	"enabled=1 ratio=0.9 addr=127.0.0.1:6379 level=1 offset=0 peers=[seed:1]"

struct file_row {
	const char *name;
	const char *text;       /* file content */
	int want;               /* return code of ec_cfg_load_all */
	const char *want_err;   /* exact problems, "@" stands for the file path; NULL: "" */
	const char *want_in;    /* must appear in the dump (" " added on both sides) */
};

static const struct file_row file_rows[] = {
	{ "empty file keeps every default", "", 0, NULL, DEFAULTS },
	{ "comments, blank lines and CRLF are ignored", "# a comment\n\n   \r\n  # indented\r\n"
	  "port = 81\r\n", 0, NULL, "port=81" },
	{ "key given twice: the last wins", "port = 81\nport=82\n", 0, NULL, "port=82" },
	{ "string may be empty", "name =\n", 0, NULL, "name=" },
	{ "unquoted value ends at a comment", "name = edge-1 # the first box\n", 0, NULL,
	  "name=edge-1" },
	{ "hash inside a word is kept", "name = a#b\n", 0, NULL, "name=a#b" },
	{ "quoted value keeps hash and spaces", "name = \" x # y \"  # c\n", 0, NULL,
	  "name= x # y " },
	{ "integer at the upper bound", "port = 65535\n", 0, NULL, "port=65535" },
	{ "negative integer when unbounded", "offset = -12\n", 0, NULL, "offset=-12" },
	{ "integer below the lower bound", "port = 0\n", EC_EINVAL,
	  "@:1: port: expected an integer from 1 to 65535, got \"0\"", NULL },
	{ "integer above the upper bound", "port = 65536\n", EC_EINVAL,
	  "@:1: port: expected an integer from 1 to 65535, got \"65536\"", NULL },
	{ "integer with trailing text", "port = 80x\n", EC_EINVAL,
	  "@:1: port: expected an integer from 1 to 65535, got \"80x\"", NULL },
	{ "size with K suffix", "cache.max_bytes = 4K\n", 0, NULL, "max=4096" },
	{ "size with M suffix", "cache.max_bytes = 20M\n", 0, NULL, "max=20971520" },
	{ "size with G suffix", "cache.max_bytes = 2G\n", 0, NULL, "max=2147483648" },
	{ "size with T suffix at the bound", "cache.max_bytes = 1T\n", 0, NULL,
	  "max=1099511627776" },
	{ "size with a fraction", "cache.max_bytes = 1.5K\n", 0, NULL, "max=1536" },
	{ "bare size is bytes", "cache.max_bytes = 4096\n", 0, NULL, "max=4096" },
	{ "size in words is refused", "cache.max_bytes = 20 gigs\n", EC_EINVAL,
	  "@:1: cache.max_bytes: expected a size from 1K to 1T, got \"20 gigs\"", NULL },
	{ "size above the bound is refused", "cache.max_bytes = 2T\n", EC_EINVAL,
	  "@:1: cache.max_bytes: expected a size from 1K to 1T, got \"2T\"", NULL },
	{ "duration in ms", "timeout = 250ms\n", 0, NULL, "timeout=250" },
	{ "duration in s", "timeout = 3s\n", 0, NULL, "timeout=3000" },
	{ "duration in m", "timeout = 5m\n", 0, NULL, "timeout=300000" },
	{ "duration in h", "timeout = 1h\n", 0, NULL, "timeout=3600000" },
	{ "bare duration is ms", "timeout = 1500\n", 0, NULL, "timeout=1500" },
	{ "duration below the bound is refused", "timeout = 5ms\n", EC_EINVAL,
	  "@:1: timeout: expected a duration from 10ms to 1h, got \"5ms\"", NULL },
	{ "negative duration is refused", "timeout = -1s\n", EC_EINVAL,
	  "@:1: timeout: expected a duration from 10ms to 1h, got \"-1s\"", NULL },
	{ "rate with k suffix is decimal", "uplink = 10k\n", 0, NULL, "uplink=10000" },
	{ "rate with G suffix", "uplink = 1G\n", 0, NULL, "uplink=1000000000" },
	{ "rate with Mbps suffix", "uplink = 100Mbps\n", 0, NULL, "uplink=100000000" },
	{ "rate in words is refused", "uplink = fast\n", EC_EINVAL,
	  "@:1: uplink: expected a rate in bits/s like 10k, 100M or 1G, got \"fast\"", NULL },
	{ "bool no", "enabled = no\n", 0, NULL, "enabled=0" },
	{ "bool off", "enabled = off\n", 0, NULL, "enabled=0" },
	{ "bool false", "enabled = false\n", 0, NULL, "enabled=0" },
	{ "bool 0", "enabled = 0\n", 0, NULL, "enabled=0" },
	{ "bool true", "enabled = true\n", 0, NULL, "enabled=1" },
	{ "bool other words are refused", "enabled = maybe\n", EC_EINVAL,
	  "@:1: enabled: expected yes or no, got \"maybe\"", NULL },
	{ "double within bounds", "ratio = 0.5\n", 0, NULL, "ratio=0.5" },
	{ "double above the bound is refused", "ratio = 1.5\n", EC_EINVAL,
	  "@:1: ratio: expected a number from 0 to 1, got \"1.5\"", NULL },
	{ "double that is not a number is refused", "ratio = nan\n", EC_EINVAL,
	  "@:1: ratio: expected a number from 0 to 1, got \"nan\"", NULL },
	{ "v4 address", "redis.addr = 127.0.0.2:6380\n", 0, NULL, "addr=127.0.0.2:6380" },
	{ "bracketed v6 address", "redis.addr = [::1]:6380\n", 0, NULL, "addr=[::1]:6380" },
	{ "host name address", "redis.addr = localhost:6380\n", 0, NULL,
	  "addr=localhost:6380" },
	{ "empty address means none", "redis.addr =\n", 0, NULL, "addr= " },
	{ "bare v6 address is refused", "redis.addr = ::1:6379\n", EC_EINVAL,
	  "@:1: redis.addr: expected an address like host:port or [v6]:port, got \"::1:6379\"",
	  NULL },
	{ "address without port is refused", "redis.addr = localhost\n", EC_EINVAL,
	  "@:1: redis.addr: expected an address like host:port or [v6]:port, got \"localhost\"",
	  NULL },
	{ "address with port 0 is refused", "redis.addr = h:0\n", EC_EINVAL,
	  "@:1: redis.addr: expected an address like host:port or [v6]:port, got \"h:0\"", NULL },
	{ "level debug", "log.level = debug\n", 0, NULL, "level=0" },
	{ "level error", "log.level = error\n", 0, NULL, "level=3" },
	{ "unknown level is refused", "log.level = loud\n", EC_EINVAL,
	  "@:1: log.level: expected one of debug, info, warn, error, got \"loud\"", NULL },
	{ "list: the file replaces the default, repeats append", "peer = a\npeer = b\n", 0, NULL,
	  "peers=[a,b]" },
	{ "list: an empty value clears", "peer = a\npeer =\npeer = c\n", 0, NULL, "peers=[c]" },
	{ "unknown key is named with file and line", "\nnope = 1\n", EC_EINVAL,
	  "@:2: nope: unknown key", NULL },
	{ "line without '=' is refused", "just words\n", EC_EINVAL,
	  "@:1: expected \"key = value\", got \"just words\"", NULL },
	{ "unterminated quote is refused", "name = \"abc\n", EC_EINVAL,
	  "@:1: unterminated quoted value, got \"name = \"abc\"", NULL },
	{ "control characters are not echoed", "port = 8\x01\n", EC_EINVAL,
	  "@:1: port: expected an integer from 1 to 65535, got \"8?\"", NULL },
	{ "long values are cut in messages",
	  "port = 1234567890123456789012345678901234567890123456789012345678901234567890\n",
	  EC_EINVAL, "@:1: port: expected an integer from 1 to 65535, got "
	  "\"1234567890123456789012345678901234567890123456789012345678901234...\"", NULL },
	{ "every problem is reported, good lines still apply",
	  "port = 81\ncache.max_bytes = lots\nenabled = sure\n# fine\nwhat = 1\nratio = 0.25\n",
	  EC_EINVAL,
	  "@:2: cache.max_bytes: expected a size from 1K to 1T, got \"lots\"\n"
	  "@:3: enabled: expected yes or no, got \"sure\"\n"
	  "@:5: what: unknown key", "port=81" },
};

static void test_file_row(void **state)
{
	const struct file_row *r = *state;
	char path[128], err[2048], want[2048], got[1024], frag[256];
	struct ec_args args;
	struct tconf c;
	int rc;

	snprintf(path, sizeof path, "%s/t.conf", tmpdir);
	write_file(path, r->text);
	memset(&args, 0, sizeof args);
	args.conf_path = path;
	memset(&c, 0xa5, sizeof c);   /* defaults must set every field */
	rc = ec_cfg_load_all(opts, &c, &args, err, sizeof err);
	expand(r->want_err ? r->want_err : "", path, want, sizeof want);
	if (rc != r->want || strcmp(err, want) != 0)
		fail_msg("%s:\n got rc %d: %s\nwant rc %d: %s", r->name, rc, err, r->want, want);
	if (r->want_in != NULL) {
		dump(&c, got, sizeof got);
		snprintf(frag, sizeof frag, " %s ", r->want_in);
		strcat(got, " ");
		memmove(got + 1, got, strlen(got) + 1);
		got[0] = ' ';
		if (strstr(got, frag) == NULL && strstr(got, r->want_in) == NULL)
			fail_msg("%s: %s not in%s", r->name, r->want_in, got);
	}
	ec_cfg_fini(opts, &c);
}

/* ---- command line and overrides ----------------------------------------------------------- */

struct args_row {
	const char *name;
	const char *argv[8];
	int want;
	const char *want_err;
	const char *conf;
	int test_only, help, version;
	size_t n_overrides;
};

static const struct args_row args_rows[] = {
	{ "no arguments means defaults only", { "d" }, 0, "", NULL, 0, 0, 0, 0 },
	{ "-c, -t and -o are read", { "d", "-c", "x.conf", "-t", "-o", "a=b", "-o", "c=d" }, 0, "",
	  "x.conf", 1, 0, 0, 2 },
	{ "attached and long forms are read", { "d", "-cx.conf", "--test", "--set=a=b" }, 0, "",
	  "x.conf", 1, 0, 0, 1 },
	{ "--config=FILE is read", { "d", "--config=y.conf" }, 0, "", "y.conf", 0, 0, 0, 0 },
	{ "-h and --version are flags", { "d", "-h", "--version" }, 0, "", NULL, 0, 1, 1, 0 },
	{ "-c without a file is refused", { "d", "-c" }, .want = EC_EINVAL,
	  .want_err = "option -c needs a file name" },
	{ "-o without '=' is refused", { "d", "-o", "port" }, .want = EC_EINVAL,
	  .want_err = "option -o needs KEY=VALUE, got \"port\"" },
	{ "unknown option is refused", { "d", "-x" }, .want = EC_EINVAL,
	  .want_err = "unknown option \"-x\" (try --help)" },
	{ "stray argument is refused", { "d", "file.conf" }, .want = EC_EINVAL,
	  .want_err = "unexpected argument \"file.conf\" (try --help)" },
};

static void test_args_row(void **state)
{
	const struct args_row *r = *state;
	struct ec_args a;
	char err[256];
	int argc = 0, rc;

	while (argc < (int)LEN(r->argv) && r->argv[argc] != NULL)
		argc++;
	rc = ec_args_parse(argc, (char **)r->argv, &a, err, sizeof err);
	assert_int_equal(rc, r->want);
	if (rc != 0) {
		assert_string_equal(err, r->want_err);
		return;
	}
	if (r->conf)
		assert_string_equal(a.conf_path, r->conf);
	else
		assert_null(a.conf_path);
	assert_int_equal(a.test_only, r->test_only);
	assert_int_equal(a.show_help, r->help);
	assert_int_equal(a.show_version, r->version);
	assert_int_equal(a.n_overrides, r->n_overrides);
}

struct override_row {
	const char *name;
	const char *file;          /* NULL: no -c */
	const char *o[3];
	int want;
	const char *want_err;
	const char *want_in;
};

static const struct override_row override_rows[] = {
	{ "-o overrides the file", "port = 81\n", { "port=9090" }, 0, "", "port=9090" },
	{ "-o works without a file", NULL, { "timeout = 2s" }, 0, "", "timeout=2000" },
	{ "-o list item replaces the default without a file", NULL, { "peer=x" }, 0, "",
	  "peers=[x]" },
	{ "-o list item appends to the file's list", "peer = a\n", { "peer=x" }, 0, "",
	  "peers=[a,x]" },
	{ "-o unknown key is refused", NULL, { "nope=1" }, EC_EINVAL, "-o: nope: unknown key",
	  NULL },
	{ "-o bad value names the key", NULL, { "port=http" }, EC_EINVAL,
	  "-o: port: expected an integer from 1 to 65535, got \"http\"", NULL },
	{ "file and -o problems are reported together", "port = x\n", { "ratio=2", "port=1" },
	  EC_EINVAL, "@:1: port: expected an integer from 1 to 65535, got \"x\"\n"
	  "-o: ratio: expected a number from 0 to 1, got \"2\"", "port=1" },
	{ "missing file is an I/O error", "", { NULL }, EC_EIO,
	  "@.missing: cannot open: No such file or directory", NULL },
};

static void test_override_row(void **state)
{
	const struct override_row *r = *state;
	char path[128], err[1024], want[1024], got[1024];
	struct ec_args a;
	struct tconf c;
	size_t i;
	int rc;

	memset(&a, 0, sizeof a);
	snprintf(path, sizeof path, "%s/o.conf", tmpdir);
	if (r->file) {
		write_file(path, r->file);
		a.conf_path = path;
		if (r->want == EC_EIO) {
			strcat(path, ".missing");
			a.conf_path = path;
		}
	}
	for (i = 0; i < LEN(r->o) && r->o[i]; i++)
		a.overrides[a.n_overrides++] = r->o[i];
	rc = ec_cfg_load_all(opts, &c, &a, err, sizeof err);
	snprintf(path, sizeof path, "%s/o.conf", tmpdir);
	expand(r->want_err, path, want, sizeof want);
	if (rc != r->want || strcmp(err, want) != 0)
		fail_msg("%s:\n got rc %d: %s\nwant rc %d: %s", r->name, rc, err, r->want, want);
	if (r->want_in) {
		dump(&c, got, sizeof got);
		if (strstr(got, r->want_in) == NULL)
			fail_msg("%s: %s not in %s", r->name, r->want_in, got);
	}
	ec_cfg_fini(opts, &c);
}

/* ---- value parsers -------------------------------------------------------------------------- */

struct parse_row {
	const char *name;
	int kind;      /* 0 size, 1 duration, 2 bps, 3 bool */
	const char *in;
	int want;
	uint64_t value;
};

static const struct parse_row parse_rows[] = {
	{ "size 512 is bytes", 0, "512", 0, 512 },
	{ "size suffixes are case-insensitive", 0, "4k", 0, 4096 },
	{ "size accepts KiB", 0, "4KiB", 0, 4096 },
	{ "size overflow is a range error", 0, "17179869184G", EC_ERANGE, 0 },
	{ "huge size number is a range error", 0, "99999999999999999999999", EC_ERANGE, 0 },
	{ "size with a space is refused", 0, "4 K", EC_EINVAL, 0 },
	{ "size with a sign is refused", 0, "+4K", EC_EINVAL, 0 },
	{ "empty size is refused", 0, "", EC_EINVAL, 0 },
	{ "size with a bare dot is refused", 0, "4.K", EC_EINVAL, 0 },
	{ "duration 1.5s is 1500ms", 1, "1.5s", 0, 1500 },
	{ "duration in days", 1, "2d", 0, 172800000 },
	{ "duration with unknown unit is refused", 1, "3w", EC_EINVAL, 0 },
	{ "rate 2.5G", 2, "2.5G", 0, 2500000000ull },
	{ "rate in kbps", 2, "64kbps", 0, 64000 },
	{ "bool yes", 3, "YES", 0, 1 },
	{ "bool on", 3, "on", 0, 1 },
	{ "bool refuses empty", 3, "", EC_EINVAL, 0 },
};

static void test_parse_row(void **state)
{
	const struct parse_row *r = *state;
	uint64_t u = 0;
	int64_t d = 0;
	int b = 0, rc;

	switch (r->kind) {
	case 0:
		rc = ec_cfg_parse_size(r->in, &u);
		break;
	case 1:
		rc = ec_cfg_parse_duration_ms(r->in, &d);
		u = (uint64_t)d;
		break;
	case 2:
		rc = ec_cfg_parse_bps(r->in, &u);
		break;
	default:
		rc = ec_cfg_parse_bool(r->in, &b);
		u = (uint64_t)b;
		break;
	}
	assert_int_equal(rc, r->want);
	if (rc == 0)
		assert_int_equal(u, r->value);
}

/* ---- single cases ----------------------------------------------------------------------- */

static void test_too_many_problems_are_counted(void **state)
{
	char path[128], text[4096], err[200];
	struct ec_args a;
	struct tconf c;
	size_t n = 0;
	int i;

	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(text + n, sizeof text - n, "bad%d = 1\n", i);
	snprintf(path, sizeof path, "%s/many.conf", tmpdir);
	write_file(path, text);
	memset(&a, 0, sizeof a);
	a.conf_path = path;
	assert_int_equal(ec_cfg_load_all(opts, &c, &a, err, sizeof err), EC_EINVAL);
	assert_non_null(strstr(err, "bad0: unknown key"));
	assert_non_null(strstr(err, "more problems not shown)"));
	assert_true(strlen(err) < sizeof err);
	ec_cfg_fini(opts, &c);
}

static void test_bad_default_is_reported(void **state)
{
	static const struct ec_cfg_opt bad[] = {
		{ "port", EC_CFG_INT, offsetof(struct tconf, port), "eighty", 1, 65535, "" },
		{ NULL, 0, 0, NULL, 0, 0, NULL }
	};
	struct tconf c;
	char err[256];

	assert_int_equal(ec_cfg_defaults(bad, &c, err, sizeof err), EC_EINVAL);
	assert_string_equal(err, "default: port: expected an integer from 1 to 65535, got \"eighty\"");
}

static void test_set_applies_one_key(void **state)
{
	struct tconf c;
	char err[256];

	assert_int_equal(ec_cfg_defaults(opts, &c, err, sizeof err), 0);
	assert_int_equal(ec_cfg_set(opts, &c, "env", "peer", "b:2", err, sizeof err), 0);
	assert_int_equal(c.peers.n, 2);  /* ec_cfg_set appends */
	assert_string_equal(c.peers.items[1], "b:2");
	assert_int_equal(ec_cfg_set(opts, &c, "env", "port", "0", err, sizeof err), EC_EINVAL);
	assert_string_equal(err, "env: port: expected an integer from 1 to 65535, got \"0\"");
	ec_cfg_fini(opts, &c);
	assert_null(c.name);
	assert_int_equal(c.peers.n, 0);
}

static void test_reference_lists_every_key(void **state)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	const struct ec_cfg_opt *o;

	assert_non_null(f);
	ec_args_usage(f, "echos-test", "Tests things.", opts);
	fclose(f);
	for (o = opts; o->key; o++) {
		char line[128];
		snprintf(line, sizeof line, "\n  %s = ", o->key);
		if (strstr(buf, line) == NULL)
			fail_msg("%s missing from:\n%s", o->key, buf);
	}
	assert_non_null(strstr(buf, "usage: echos-test [-c FILE] [-t]"));
	assert_non_null(strstr(buf, "  2  usage or configuration error"));
	assert_non_null(strstr(buf, "  cache.max_bytes = 20G\n      cache size (size, 1K to 1T)\n"));
	assert_non_null(strstr(buf, "  offset = (unset)\n"));
	free(buf);
}

static void test_exit_usage_returns_2(void **state)
{
	assert_int_equal(ec_exit_usage("echos-test", "line one\nline two"), 2);
	assert_int_equal(ec_exit_config("echos-test", "x.conf:1: a: unknown key"), 2);
}

#define ADD_ROWS(rows, fn)                                                            \
	for (i = 0; i < LEN(rows); i++)                                              \
		tests[n++] = (struct CMUnitTest){ rows[i].name, fn, NULL, NULL,      \
		                                  (void *)&rows[i] }
#define ADD(fn, nm) tests[n++] = (struct CMUnitTest){ nm, fn, NULL, NULL, NULL }

int main(void)
{
	struct CMUnitTest tests[200];
	size_t i, n = 0;

	ADD_ROWS(file_rows, test_file_row);
	ADD_ROWS(args_rows, test_args_row);
	ADD_ROWS(override_rows, test_override_row);
	ADD_ROWS(parse_rows, test_parse_row);
	ADD(test_too_many_problems_are_counted, "problems beyond the buffer are counted");
	ADD(test_bad_default_is_reported, "a malformed default is reported");
	ADD(test_set_applies_one_key, "ec_cfg_set applies one key and fini frees");
	ADD(test_reference_lists_every_key, "usage lists options, exit codes and every key");
	ADD(test_exit_usage_returns_2, "usage and config errors exit 2");
	return _cmocka_run_group_tests("ec_cfg", tests, n, setup_dir, remove_dir);
}
