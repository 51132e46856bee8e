/* ec_time: the clocks. Only shells read them; policy/ takes now_ms as an argument. */
#ifndef ECHOS_COMMON_EC_TIME_H
#define ECHOS_COMMON_EC_TIME_H

#include <stdint.h>
#include <time.h>

static inline int64_t ec_now_us(void) /* CLOCK_MONOTONIC, microseconds */
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
static inline int64_t ec_now_ms(void) { return ec_now_us() / 1000; }
static inline int64_t ec_wall_ms(void) /* CLOCK_REALTIME, ms since the epoch */
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
/* CLOCK_REALTIME_COARSE, seconds since the epoch: a clock tick old at most (a few ms),
 * and several times cheaper to read than ec_wall_ms; for second-grained stamps. */
static inline int64_t ec_wall_s_coarse(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return (int64_t)ts.tv_sec;
}

#endif
