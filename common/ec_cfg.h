/* ec_cfg: table-driven config files and the command line every daemon shares.
 * File format: "key = value" per line, '#' comments, blank lines ignored; a key given
 * twice overrides, except list keys, which append. Every problem is reported (one line
 * each, "file:line: key: expected ..., got ...") before the caller exits 2.
 * Does not know any daemon's keys: each daemon passes its own table of ec_cfg_opt. */
#ifndef ECHOS_COMMON_EC_CFG_H
#define ECHOS_COMMON_EC_CFG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum ec_cfg_type {
	EC_CFG_STR = 0,  /* char * (heap, freed by ec_cfg_fini); "" allowed */
	EC_CFG_INT,      /* int64_t within [min, max] */
	EC_CFG_SIZE,     /* uint64_t bytes: 512, 4K, 20M, 2G, 1T (powers of 1024) */
	EC_CFG_DURATION, /* int64_t milliseconds: 250ms, 3s, 5m, 1h; bare number = ms */
	EC_CFG_BPS,      /* uint64_t bits/s: 1000, 10k, 100M, 1G (powers of 1000) */
	EC_CFG_BOOL,     /* int: yes/no, true/false, on/off, 1/0 */
	EC_CFG_DOUBLE,   /* double within [min, max] */
	EC_CFG_ADDR,     /* char *: "host:port", "[v6]:port" (validated, stored as text) */
	EC_CFG_LEVEL,    /* int (enum ec_log_level): debug, info, warn, error */
	EC_CFG_LIST,     /* struct ec_cfg_list: repeated key appends one string */
};

struct ec_cfg_list {
	char **items; /* heap strings, freed by ec_cfg_fini */
	size_t n;
};

struct ec_cfg_opt {
	const char *key;      /* e.g. "cache.max_bytes" */
	enum ec_cfg_type type;
	size_t offset;        /* offsetof(struct xxx_conf, field) */
	const char *def;      /* default as it would be written in a file; NULL = none */
	double min, max;      /* for INT/DOUBLE/SIZE/DURATION/BPS; min == max == 0: unbounded */
	const char *help;     /* one line for --help and docs */
};

/* Sets every option of `opts` (terminated by key == NULL) to its default in `conf`.
 * Returns 0, or EC_EINVAL with a message in err if a default is malformed (a bug). */
int ec_cfg_defaults(const struct ec_cfg_opt *opts, void *conf, char *err, size_t errlen);

/* Reads `path` and applies it over `conf`. All problems are collected, one per line,
 * "path:line: key: expected ..., got \"...\"" into err (truncated to errlen).
 * Returns 0, EC_EIO (cannot open/read: err says why) or EC_EINVAL (bad lines). */
int ec_cfg_load(const struct ec_cfg_opt *opts, void *conf, const char *path, char *err,
                size_t errlen);

/* Applies one "key=value" (e.g. from -o on the command line); `where` labels errors. */
int ec_cfg_set(const struct ec_cfg_opt *opts, void *conf, const char *where,
               const char *key, const char *value, char *err, size_t errlen);

/* Frees the heap strings and lists owned by `conf`. */
void ec_cfg_fini(const struct ec_cfg_opt *opts, void *conf);

/* Writes every key with its default and help text (used by --help and docs). */
void ec_cfg_print_reference(const struct ec_cfg_opt *opts, FILE *out);

/* Value parsers, shared with other modules. Return 0 or EC_EINVAL/EC_ERANGE. */
int ec_cfg_parse_size(const char *s, uint64_t *out);
int ec_cfg_parse_duration_ms(const char *s, int64_t *out);
int ec_cfg_parse_bps(const char *s, uint64_t *out);
int ec_cfg_parse_bool(const char *s, int *out);

/* The command line every daemon accepts:
 *   -c FILE   config file        -t        check config and exit (0 ok, 2 bad)
 *   -o K=V    override one key   -h/--help -V/--version
 */
struct ec_args {
	const char *conf_path;   /* NULL: defaults only */
	int test_only;           /* -t */
	int show_help;
	int show_version;
	const char *overrides[32];  /* "key=value" strings from -o, borrowed from argv */
	size_t n_overrides;
};

/* Parses argv. Returns 0, or EC_EINVAL with a message in err. */
int ec_args_parse(int argc, char **argv, struct ec_args *args, char *err, size_t errlen);

/* Loads defaults, the file and -o overrides into conf (the usual daemon sequence).
 * Returns 0 or a negative code with every problem in err. */
int ec_cfg_load_all(const struct ec_cfg_opt *opts, void *conf, const struct ec_args *args,
                    char *err, size_t errlen);

/* Prints usage: synopsis, common options, exit codes, and the config reference. */
void ec_args_usage(FILE *out, const char *prog, const char *summary,
                   const struct ec_cfg_opt *opts);

/* Prints "prog: msg" to stderr and returns 2 (usage or config error exit code).
 * A multi-line msg (every config problem) gets "prog: " before each line. */
int ec_exit_usage(const char *prog, const char *msg);
/* The same for configuration problems (exit code 2 as well); reads better in main(). */
int ec_exit_config(const char *prog, const char *msg);

/* Limits of the file format: longest line, and longest value echoed in a message. */
#define EC_CFG_LINE_MAX 4096

#define EC_VERSION "0.1.0"

#endif
