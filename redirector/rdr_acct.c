/* rdr_acct: flushes the redirector's accounting deltas (totals, per service and per viewer
 * region) to Redis once a second. Owns nothing on the heap: the deltas and the
 * bounded name tables live in struct rdr_acct. */
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

/* Sends the fields of one scope: `scope` is "" or "svc.<name>." / "region.<name>.". */
static int acct_send_scope(struct rdr_acct *a, struct ec_redis *r, const char *minute_key,
                           const char *scope, uint64_t *box, uint64_t *origin, uint64_t *miss)
{
	char field[128];
	int sent = 0, rc;

	snprintf(field, sizeof field, "%srdr.box", scope);
	if ((rc = acct_send(a, r, minute_key, field, box)) < 0)
		return rc;
	sent += rc;
	snprintf(field, sizeof field, "%srdr.origin", scope);
	if ((rc = acct_send(a, r, minute_key, field, origin)) < 0)
		return rc;
	sent += rc;
	for (unsigned m = 1; m < POL_MISS_COUNT_; m++) {
		if (miss[m] == 0)
			continue;
		snprintf(field, sizeof field, "%srdr.miss.%s", scope,
		         pol_miss_name((enum pol_miss)m));
		if ((rc = acct_send(a, r, minute_key, field, &miss[m])) < 0)
			return rc;
		sent += rc;
	}
	return sent;
}

int rdr_acct_flush(struct rdr_acct *a, struct ec_redis *r, int64_t wall_ms)
{
	char minute_key[64], scope[EC_ACCT_SCOPE_NAME_MAX + 16];
	int sent = 0, rc;

	if (!ec_redis_is_up(r))
		return EC_EAGAIN;
	snprintf(minute_key, sizeof minute_key, "echos:acct:m:%lld",
	         (long long)(wall_ms / 60000));
	rc = acct_send_scope(a, r, minute_key, "", &a->box, &a->origin, a->miss);
	for (size_t i = 0; rc >= 0 && i < a->svc_names.n; i++) {
		sent += rc;
		snprintf(scope, sizeof scope, "svc.%s.", a->svc_names.names[i]);
		rc = acct_send_scope(a, r, minute_key, scope, &a->svc[i].box, &a->svc[i].origin,
		                     a->svc[i].miss);
	}
	for (size_t i = 0; rc >= 0 && i < a->region_names.n; i++) {
		sent += rc;
		snprintf(scope, sizeof scope, "region.%s.", a->region_names.names[i]);
		rc = acct_send_scope(a, r, minute_key, scope, &a->region[i].box,
		                     &a->region[i].origin, a->region[i].miss);
	}
	if (rc < 0)
		return rc;
	sent += rc;
	if (sent > 0)
		ec_redis_command(r, NULL, NULL, "EXPIRE %s %d", minute_key, RDR_ACCT_MINUTE_TTL_S);
	return sent;
}
