/* shim_publish: publish announcements into Redis from one thread with a synchronous
 * hiredis link (connect 500 ms, command 1 s), fed by a small bounded queue. A failure is
 * never hidden: the job comes back with EC_EAGAIN and the client is told to retry; the
 * writes are idempotent, so a retry after a partial write is harmless.
 * Owns the thread, the queue links and the Redis connection. */
#include <hiredis/hiredis.h>
#include <inttypes.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "shim_publish.h"

#define PUBLISH_MAGIC 0x9b11540bu
#define PUB_QUEUE_MAX 64          /* announcements waiting; more answer 503 at once */
#define PUB_MAX_WAIT_MS 2000      /* a job older than this when its turn comes: 503 */
#define PUB_CONNECT_MS 500
#define PUB_COMMAND_MS 1000
#define PUB_RETRY_MS 1000         /* after a failed connect, answer 503 without trying */
#define PUB_TOKEN_MIN 16
#define PUB_TOKEN_MAX 512
#define PUB_KEY_MAX (SHIM_PUB_MAX_PATH + 32)
/* ZREM per old region + (ZADD, EXPIRE NX, EXPIRE GT) per new region + HSET + EXPIRE */
#define PUB_MAX_CMDS (4 * SHIM_PUB_MAX_REGIONS + 2)

static const char *const pub_result_names[SHIM_PUB_RESULT_N_] = {
	"accepted", "bad_request", "unauthorized", "method", "too_large", "disabled",
	"unavailable",
};

struct shim_publish {
	unsigned magic;
	int is_enabled;
	uint8_t token_sha[32];        /* SHA-256 of publish.token */
	struct ec_metric *results[SHIM_PUB_RESULT_N_];
	char host[256];
	int port;
	char name[300];               /* "redis host:port" for log lines */
	/* publish thread only */
	redisContext *redis;          /* NULL while down */
	int is_down;                  /* the outage was logged */
	int64_t retry_at_ms;          /* no connect attempt before this (monotonic) */
	char down_why[200];
	/* under lock */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct shim_pub_job *head, *tail;
	size_t n_queued;
	int is_stopping;
	int is_started;
	int is_joined;
	pthread_t thread;
};

static int pub_sha256(const void *data, size_t len, uint8_t out[32])
{
	unsigned n = 0;

	return EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) == 1 && n == 32 ? 0 : EC_EIO;
}

int shim_publish_token_ok(const char *t)
{
	size_t n = strspn(t, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                     "0123456789-._~+/");
	size_t len = strlen(t);

	if (n == 0 || strspn(t + n, "=") != len - n)
		return 0;
	return len >= PUB_TOKEN_MIN && len <= PUB_TOKEN_MAX;
}

int shim_publish_is_enabled(const struct shim_publish *p)
{
	return p->is_enabled;
}

/* Hashing both sides first makes the comparison independent of the given token's length
 * and content; CRYPTO_memcmp then compares the digests in constant time. */
int shim_publish_auth(const struct shim_publish *p, const char *authorization)
{
	const char *v = authorization;
	uint8_t got[32];
	size_t n;

	if (!p->is_enabled || v == NULL || strncasecmp(v, "Bearer", 6) != 0 ||
	    (v[6] != ' ' && v[6] != '\t'))
		return 0;
	v += 6;
	v += strspn(v, " \t");
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	if (n == 0 || n > PUB_TOKEN_MAX || pub_sha256(v, n, got) != 0)
		return 0;
	return CRYPTO_memcmp(got, p->token_sha, sizeof got) == 0;
}

void shim_publish_count(struct shim_publish *p, enum shim_pub_result result)
{
	EC_ASSERT((unsigned)result < SHIM_PUB_RESULT_N_);
	ec_metric_add_atomic(p->results[result], 1);
}

/* Marks Redis down (logged once per outage) and fails the job with EC_EAGAIN. */
static void pub_outage(struct shim_publish *p, struct shim_pub_job *job, const char *why)
{
	snprintf(p->down_why, sizeof p->down_why, "%s", why);
	if (!p->is_down) {
		p->is_down = 1;
		ec_log_warn("%s: %s; publish answers 503 (clients retry) until it is back",
		            p->name, why);
	}
	job->result = EC_EAGAIN;
	snprintf(job->reason, sizeof job->reason, "redis unavailable: %s", why);
}

/* Connects with short timeouts unless a recent attempt failed. Returns 0 or EC_EAGAIN
 * (job failed). */
static int pub_connect(struct shim_publish *p, struct shim_pub_job *job)
{
	struct timeval ct = { 0, PUB_CONNECT_MS * 1000 };
	struct timeval rt = { PUB_COMMAND_MS / 1000, (PUB_COMMAND_MS % 1000) * 1000 };
	redisContext *c;
	char why[256];

	if (p->redis != NULL)
		return 0;
	if (ec_now_ms() < p->retry_at_ms) {
		pub_outage(p, job, p->down_why);
		return EC_EAGAIN;
	}
	c = redisConnectWithTimeout(p->host, p->port, ct);
	if (c == NULL || c->err || redisSetTimeout(c, rt) != REDIS_OK) {
		snprintf(why, sizeof why, "%s", c != NULL ? c->errstr : "out of memory");
		redisFree(c);
		p->retry_at_ms = ec_now_ms() + PUB_RETRY_MS;
		pub_outage(p, job, why);
		return EC_EAGAIN;
	}
	p->redis = c;
	return 0;
}

/* Drops the link after an I/O error and fails the job. */
static void pub_io_error(struct shim_publish *p, struct shim_pub_job *job)
{
	char why[256];

	snprintf(why, sizeof why, "%s", p->redis->errstr[0] ? p->redis->errstr :
	         "connection lost");
	redisFree(p->redis);
	p->redis = NULL;
	pub_outage(p, job, why);
}

/* Returns 1 if name is one of r's regions. */
static int pub_has_region(const struct shim_pubreq *r, const char *name, size_t len)
{
	for (size_t i = 0; i < r->n_regions; i++)
		if (strlen(r->regions[i]) == len && memcmp(r->regions[i], name, len) == 0)
			return 1;
	return 0;
}

/* Appends ZREM for each region of the previous announcement (`old`, comma-separated)
 * that the new one no longer names. Returns the number of commands appended. */
static size_t pub_append_stale(redisContext *c, const struct shim_pubreq *r, const char *old)
{
	char key[PUB_KEY_MAX];
	size_t n = 0;

	while (*old && n < SHIM_PUB_MAX_REGIONS) {
		size_t len = strcspn(old, ",");
		if (len > 0 && len < SHIM_PUB_REGION_LEN && !pub_has_region(r, old, len)) {
			snprintf(key, sizeof key, "echos:pub:{%.*s}", (int)len, old);
			redisAppendCommand(c, "ZREM %s %s", key, r->path);
			n++;
		}
		old += len;
		old += *old == ',';
	}
	return n;
}

/* Writes one announcement (docs/redis.md): reads the previous one's regions, then one
 * pipeline. EXPIRE NX then GT keeps a region's set alive as long as its longest-lived
 * announcement (Redis 7.0 or later). Sets job->result. Returns 1 if the link, reused
 * from an earlier job, broke on the first command (worth one retry on a new link). */
static int pub_write(struct shim_publish *p, struct shim_pub_job *job)
{
	const struct shim_pubreq *r = job->req;
	char meta[PUB_KEY_MAX], key[PUB_KEY_MAX], old[SHIM_PUB_MAX_REGIONS * SHIM_PUB_REGION_LEN];
	char rps[40], size[24], ttl[24], ts[24], exp[24], regions[sizeof old];
	int64_t now = ec_wall_ms();
	size_t ncmd = 0, used = 0;
	redisReply *reply = NULL;
	int is_reused = p->redis != NULL;

	if (pub_connect(p, job) != 0)
		return 0;
	snprintf(meta, sizeof meta, "echos:pubmeta:{%s}", r->path);
	reply = redisCommand(p->redis, "HGET %s regions", meta);
	if (reply == NULL && is_reused) {
		redisFree(p->redis);  /* not logged: the retry on a new link decides */
		p->redis = NULL;
		return 1;
	}
	if (reply == NULL) {
		pub_io_error(p, job);
		return 0;
	}
	old[0] = '\0';
	if (reply->type == REDIS_REPLY_STRING)
		snprintf(old, sizeof old, "%s", reply->str);
	freeReplyObject(reply);

	snprintf(rps, sizeof rps, "%.17g", r->expected_rps);
	snprintf(size, sizeof size, "%" PRIu64, r->size_bytes);
	snprintf(ttl, sizeof ttl, "%" PRId64, r->ttl_s);
	snprintf(ts, sizeof ts, "%" PRId64, now);
	snprintf(exp, sizeof exp, "%" PRId64, now + r->ttl_s * 1000);
	regions[0] = '\0';
	for (size_t i = 0; i < r->n_regions; i++)
		used += (size_t)snprintf(regions + used, sizeof regions - used, "%s%s",
		                         i ? "," : "", r->regions[i]);

	ncmd += pub_append_stale(p->redis, r, old);
	for (size_t i = 0; i < r->n_regions; i++) {
		snprintf(key, sizeof key, "echos:pub:{%s}", r->regions[i]);
		redisAppendCommand(p->redis, "ZADD %s %s %s", key, rps, r->path);
		redisAppendCommand(p->redis, "EXPIRE %s %s NX", key, ttl);
		redisAppendCommand(p->redis, "EXPIRE %s %s GT", key, ttl);
		ncmd += 3;
	}
	redisAppendCommand(p->redis, "HSET %s expected_rps %s size_bytes %s regions %s "
	                   "ts_ms %s ttl_s %s expires_ms %s", meta, rps, size, regions, ts,
	                   ttl, exp);
	redisAppendCommand(p->redis, "EXPIRE %s %s", meta, ttl);
	ncmd += 2;
	EC_ASSERT(ncmd <= PUB_MAX_CMDS);

	job->result = 0;
	for (size_t i = 0; i < ncmd; i++) {
		if (redisGetReply(p->redis, (void **)&reply) != REDIS_OK || reply == NULL) {
			pub_io_error(p, job);
			return 0;
		}
		if (reply->type == REDIS_REPLY_ERROR && job->result == 0) {
			/* read the other replies too, so the link stays in step */
			job->result = EC_EAGAIN;
			snprintf(job->reason, sizeof job->reason, "redis refused a write: %s",
			         reply->str);
		}
		freeReplyObject(reply);
	}
	if (job->result != 0) {
		ec_log_warn("%s: publish %s: %s; answering 503", p->name, r->path, job->reason);
		return 0;
	}
	if (p->is_down) {
		p->is_down = 0;
		ec_log_info("%s: publishing again", p->name);
	}
	return 0;
}

static void pub_run(struct shim_publish *p, struct shim_pub_job *job)
{
	if (ec_now_ms() - job->queued_ms > PUB_MAX_WAIT_MS) {
		job->result = EC_ETIMEOUT;
		snprintf(job->reason, sizeof job->reason, "busy: waited over %d ms for redis",
		         PUB_MAX_WAIT_MS);
		return;
	}
	/* a link idle since Redis restarted fails at once: one retry on a new link */
	if (pub_write(p, job))
		pub_write(p, job);
}

static void *pub_main(void *arg)
{
	struct shim_publish *p = arg;
	struct shim_pub_job *job;
	int is_stopping;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->is_stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		job = p->head;
		if (job == NULL)
			break;  /* stopping, queue empty */
		p->head = job->next_;
		if (p->head == NULL)
			p->tail = NULL;
		p->n_queued--;
		is_stopping = p->is_stopping;
		pthread_mutex_unlock(&p->lock);
		job->next_ = NULL;
		if (is_stopping) {
			job->result = EC_ESTATE;
			snprintf(job->reason, sizeof job->reason, "shutting down");
		} else {
			pub_run(p, job);
		}
		job->done(job);  /* last touch: the job may be freed at once */
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int shim_publish_submit(struct shim_publish *p, struct shim_pub_job *job)
{
	int rc = 0;

	EC_ASSERT(p->magic == PUBLISH_MAGIC);
	job->result = 0;
	job->reason[0] = '\0';
	job->next_ = NULL;
	job->queued_ms = ec_now_ms();
	pthread_mutex_lock(&p->lock);
	if (!p->is_started || p->is_stopping)
		rc = EC_ESTATE;
	else if (p->n_queued >= PUB_QUEUE_MAX)
		rc = EC_EFULL;
	if (rc == 0) {
		if (p->tail != NULL)
			p->tail->next_ = job;
		else
			p->head = job;
		p->tail = job;
		p->n_queued++;
		pthread_cond_signal(&p->wake);
	}
	pthread_mutex_unlock(&p->lock);
	return rc;
}

static int pub_register(struct shim_publish *p, struct ec_metrics *m)
{
	char labels[64];

	for (size_t i = 0; i < SHIM_PUB_RESULT_N_; i++) {
		snprintf(labels, sizeof labels, "result=\"%s\"", pub_result_names[i]);
		p->results[i] = ec_metrics_counter(m, "echos_shim_publish_total",
		                                   "Publish API requests, by outcome", labels);
		if (p->results[i] == NULL)
			return EC_ENOMEM;
	}
	return 0;
}

struct shim_publish *shim_publish_new(struct ec_metrics *m, const char *token,
                                      const char *redis_addr, char *err, size_t errlen)
{
	struct shim_publish *p = calloc(1, sizeof *p);
	int rc;

	if (p == NULL || pub_register(p, m) != 0) {
		free(p);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->magic = PUBLISH_MAGIC;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (token == NULL || token[0] == '\0')
		return p;
	if (redis_addr == NULL || ec_addr_split(redis_addr, p->host, sizeof p->host,
	                                        &p->port) != 0) {
		snprintf(err, errlen, "publish needs redis.addr, got \"%s\"",
		         redis_addr ? redis_addr : "");
		shim_publish_free(p);
		return NULL;
	}
	if (pub_sha256(token, strlen(token), p->token_sha) != 0) {
		snprintf(err, errlen, "publish.token: cannot hash it (OpenSSL refused)");
		shim_publish_free(p);
		return NULL;
	}
	snprintf(p->name, sizeof p->name, "redis %s", redis_addr);
	rc = pthread_create(&p->thread, NULL, pub_main, p);
	if (rc != 0) {
		snprintf(err, errlen, "cannot start the publish thread: %s", strerror(rc));
		shim_publish_free(p);
		return NULL;
	}
	p->is_started = 1;
	p->is_enabled = 1;
	return p;
}

void shim_publish_stop(struct shim_publish *p)
{
	EC_ASSERT(p->magic == PUBLISH_MAGIC);
	pthread_mutex_lock(&p->lock);
	p->is_stopping = 1;
	pthread_cond_broadcast(&p->wake);
	pthread_mutex_unlock(&p->lock);
	if (p->is_started && !p->is_joined) {
		pthread_join(p->thread, NULL);
		p->is_joined = 1;
	}
}

void shim_publish_free(struct shim_publish *p)
{
	if (p == NULL)
		return;
	shim_publish_stop(p);
	if (p->redis != NULL)
		redisFree(p->redis);
	pthread_mutex_destroy(&p->lock);
	pthread_cond_destroy(&p->wake);
	OPENSSL_cleanse(p->token_sha, sizeof p->token_sha);
	p->magic = 0;
	free(p);
}
