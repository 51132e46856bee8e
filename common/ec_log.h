/* ec_log: leveled logging, one line per event, to stderr.
 * Line format: "2026-11-24T20:15:00.123Z echos-edge[123] warn: message".
 * Does not rotate files or buffer: the service manager owns stderr. */
#ifndef ECHOS_COMMON_EC_LOG_H
#define ECHOS_COMMON_EC_LOG_H

enum ec_log_level {
	EC_LOG_DEBUG = 0,
	EC_LOG_INFO,
	EC_LOG_WARN,
	EC_LOG_ERR,
};

/* Sets the program name (borrowed: must outlive the process) and the minimum level. */
void ec_log_open(const char *prog, enum ec_log_level min_level);
void ec_log_set_level(enum ec_log_level min_level);
int ec_log_enabled(enum ec_log_level level);

/* Parses "debug", "info", "warn", "error". Returns 0 or EC_EINVAL. */
int ec_log_level_parse(const char *s, enum ec_log_level *out);

void ec_log(enum ec_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define ec_log_debug(...) do { if (ec_log_enabled(EC_LOG_DEBUG)) ec_log(EC_LOG_DEBUG, __VA_ARGS__); } while (0)
#define ec_log_info(...) ec_log(EC_LOG_INFO, __VA_ARGS__)
#define ec_log_warn(...) ec_log(EC_LOG_WARN, __VA_ARGS__)
#define ec_log_err(...) ec_log(EC_LOG_ERR, __VA_ARGS__)

#endif
