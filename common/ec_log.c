/* ec_log: leveled, one-line-per-event logging to stderr with a UTC timestamp.
 * Each event is formatted into one buffer and written with a single write(2), so lines
 * from threads or processes sharing stderr do not interleave. Control characters in a
 * message are replaced, so nothing logged can forge a second line. Does not rotate. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ec_err.h"
#include "ec_log.h"

#define LOG_LINE_MAX 2048

static const char *log_prog = "echos";   /* borrowed from ec_log_open() */
static enum ec_log_level log_min = EC_LOG_INFO;

static const char *const log_names[] = {
	[EC_LOG_DEBUG] = "debug",
	[EC_LOG_INFO] = "info",
	[EC_LOG_WARN] = "warn",
	[EC_LOG_ERR] = "error",
};

void ec_log_open(const char *prog, enum ec_log_level min_level)
{
	if (prog != NULL)
		log_prog = prog;
	ec_log_set_level(min_level);
}

void ec_log_set_level(enum ec_log_level min_level)
{
	if (min_level >= EC_LOG_DEBUG && min_level <= EC_LOG_ERR)
		log_min = min_level;
}

int ec_log_enabled(enum ec_log_level level)
{
	return level >= log_min;
}

int ec_log_level_parse(const char *s, enum ec_log_level *out)
{
	size_t i;

	if (s == NULL)
		return EC_EINVAL;
	for (i = 0; i < EC_ARRAY_LEN(log_names); i++) {
		if (strcasecmp(s, log_names[i]) == 0) {
			*out = (enum ec_log_level)i;
			return 0;
		}
	}
	if (strcasecmp(s, "warning") == 0) {
		*out = EC_LOG_WARN;
		return 0;
	}
	return EC_EINVAL;
}

void ec_log(enum ec_log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	va_list ap;
	size_t n, i, head;
	int r, saved_errno = errno;

	if (level < log_min)
		return;
	if (level < EC_LOG_DEBUG || level > EC_LOG_ERR)
		level = EC_LOG_ERR;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof line - n, ".%03ldZ %s[%ld] %s: ", ts.tv_nsec / 1000000L,
	             log_prog, (long)getpid(), log_names[level]);
	if (r < 0)
		return;
	n += (size_t)r;
	head = n;
	va_start(ap, fmt);
	r = vsnprintf(line + n, sizeof line - n, fmt, ap);
	va_end(ap);
	if (r < 0)
		r = 0;
	n += (size_t)r;
	if (n > sizeof line - 2) {           /* truncated: mark it */
		n = sizeof line - 2;
		memcpy(line + n - 3, "...", 3);
	}
	for (i = head; i < n; i++) {
		unsigned char c = (unsigned char)line[i];
		if (c < 0x20 || c == 0x7f)
			line[i] = (c == '\t') ? ' ' : '?';
	}
	line[n++] = '\n';
	/* one write per event; a short write to a pipe of < PIPE_BUF bytes cannot happen */
	while (write(STDERR_FILENO, line, n) < 0 && errno == EINTR)
		;
	errno = saved_errno;
}
