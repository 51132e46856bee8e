/* rdr_acct: flushes the redirector's accounting deltas to Redis once a second.
 * Owns nothing on the heap: the deltas live in struct rdr_acct. */
#include <stdio.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "ec_err.h"
#include "ec_redis.h"
#include "pol_score.h"
#include "rdr_acct.h"

static void on_acct_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct rdr_acct *a = arg;

	if (!reply || reply->type == REDIS_REPLY_ERROR)
		a->lost++;
}

/* HINCRBY key field delta on both keys; 0 or EC_EAGAIN. */
static int acct_send(struct rdr_acct *a, struct ec_redis *r, const char *minute_key,
                     const char *field, uint64_t *delta)
{
	int rc;

	if (*delta == 0)
		return 0;
	rc = ec_redis_command(r, on_acct_reply, a, "HINCRBY echos:acct:total %s %llu", field,
	                      (unsigned long long)*delta);
	if (rc != 0)
		return EC_EAGAIN;
	rc = ec_redis_command(r, on_acct_reply, a, "HINCRBY %s %s %llu", minute_key, field,
	                      (unsigned long long)*delta);
	/* the total went out: clear even if the bucket did not, never count twice */
	*delta = 0;
	return rc != 0 ? EC_EAGAIN : 1;
}

int rdr_acct_flush(struct rdr_acct *a, struct ec_redis *r, int64_t wall_ms)
{
	char minute_key[64], field[64];
	int sent = 0, rc;
	unsigned m;

	if (!ec_redis_is_up(r))
		return EC_EAGAIN;
	snprintf(minute_key, sizeof minute_key, "echos:acct:m:%lld",
	         (long long)(wall_ms / 60000));
	if ((rc = acct_send(a, r, minute_key, "rdr.box", &a->box)) < 0)
		return rc;
	sent += rc;
	if ((rc = acct_send(a, r, minute_key, "rdr.origin", &a->origin)) < 0)
		return rc;
	sent += rc;
	for (m = 1; m < POL_MISS_COUNT_; m++) {
		snprintf(field, sizeof field, "rdr.miss.%s", pol_miss_name((enum pol_miss)m));
		if ((rc = acct_send(a, r, minute_key, field, &a->miss[m])) < 0)
			return rc;
		sent += rc;
	}
	if (sent > 0)
		ec_redis_command(r, NULL, NULL, "EXPIRE %s %d", minute_key, RDR_ACCT_MINUTE_TTL_S);
	return sent;
}
