/* shim_serve: the client side of echos-origin-shim on libmicrohttpd. Epoll threads never
 * block: a request suspends while a pool worker fetches (libcurl blocks per transfer) or the
 * publisher writes an announcement, so upstream concurrency is bounded by `threads` and a
 * slow origin or Redis stalls no other client. Owns the per-request objects (freed on
 * completion only) and the HEAD digest cache. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_net.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "shim_acct.h"
#include "shim_conf.h"
#include "shim_dcache.h"
#include "shim_digest.h"
#include "shim_fetch.h"
#include "shim_pool.h"
#include "shim_publish.h"
#include "shim_pubreq.h"
#include "shim_req.h"
#include "shim_serve.h"

#define SERVE_MAGIC 0x53e7be11u
#define REQ_MAGIC 0x7e9a11cbu
#define LOG_TARGET_MAX 160      /* bytes of a client's target quoted in a log line */

#define CORS_EXPOSE "Content-Length, Content-Range, Repr-Digest, ETag"
#define PUBLISH_TARGET "/_echos/publish"
/* a chunked publish body past the bound is read and dropped up to this many bytes, so
 * the client can read its 413; beyond, the connection is closed */
#define PUBLISH_DISCARD_MAX (1024 * 1024)
#define DCACHE_SLOTS 4096       /* digests kept for HEAD (about 1.4 KiB each) */

/* Where a HEAD's digest came from. */
enum head_source {
	HEAD_FETCH = 0,          /* a full upstream GET, as for a GET */
	HEAD_CACHE,              /* the digest cache, validators checked by an upstream HEAD */
	HEAD_UPSTREAM,           /* the origin's own Repr-Digest and strong ETag on HEAD */
	HEAD_SOURCE_N_
};
static const char *const head_source_names[HEAD_SOURCE_N_] = { "fetch", "cache",
                                                               "upstream" };

enum serve_reject {
	REJECT_METHOD = 0,
	REJECT_TARGET,
	REJECT_QUEUE_FULL,
	REJECT_STOPPING,
	REJECT_N_
};
static const char *const serve_reject_names[REJECT_N_] = {
	"method", "target", "queue_full", "stopping",
};

/* One libmicrohttpd daemon; its address is the callbacks' closure. */
struct serve_listener {
	struct shim_serve *srv;        /* the server this listener belongs to */
	struct MHD_Daemon *mhd;        /* owned; NULL when not started */
	int is_publish_only;           /* publish.listen: serves only the publish API */
};

struct shim_serve {
	unsigned magic;
	struct serve_listener main_l;  /* `listen` */
	struct serve_listener pub_l;   /* `publish.listen`; pub_l.mhd NULL when empty */
	const struct shim_conf *conf;  /* borrowed */
	struct shim_pool *pool;        /* borrowed */
	struct shim_acct *acct;        /* borrowed */
	struct shim_publish *pub;      /* borrowed */
	struct shim_dcache *dcache;    /* owned: digests for HEAD */
	struct ec_metric *heads[HEAD_SOURCE_N_];
	atomic_uint inflight;          /* requests from request line to completion */
	atomic_uint next_id;           /* request ids for log lines */
	atomic_int is_draining;        /* responses say Connection: close */
	struct ec_metric *upstream_errors;
	struct ec_metric *rejects[REJECT_N_];
};

enum req_state {
	REQ_NEW = 0,   /* headers received, nothing decided */
	REQ_READING,   /* accepted; the rest of the request (a body, dropped) is read */
	REQ_FETCHING,  /* suspended; a pool worker owns the fetch (or the publish thread
	                * the announcement) */
	REQ_DONE,      /* fetch or announcement finished (or refused); answer next call */
	REQ_ANSWERED,  /* response queued */
};

/* A publish request's body and its Redis job: allocated only for publish requests. */
struct serve_pub {
	struct shim_pub_job job;
	struct shim_req *req;          /* the request this belongs to */
	struct shim_pubreq preq;
	size_t body_len;
	uint64_t discarded;            /* bytes dropped past SHIM_PUB_MAX_BODY */
	char body[SHIM_PUB_MAX_BODY];
};

struct shim_req {
	unsigned magic;
	struct shim_serve *srv;        /* borrowed */
	int is_publish;                /* the publish API: not counted as a fetch kind */
	int is_publish_only;           /* arrived on publish.listen */
	struct serve_pub *pub;         /* owned, freed on completion; NULL unless publish */
	struct MHD_Connection *conn;   /* borrowed from libmicrohttpd */
	unsigned id;
	enum req_state state;
	enum shim_kind kind;
	int is_head;
	char method[8];
	int is_fetched;                /* a fetch ran (for the completion log) */
	enum head_source head_source;  /* HEAD only */
	int refused;                   /* EC_EFULL/EC_ESTATE when the pool refused the job */
	struct shim_job job;
	struct shim_object obj;        /* fetch result; obj.fd owned until handed to MHD */
	unsigned status;               /* the answer, for the completion log */
	uint64_t body_bytes;
	int64_t start_us;
	const char *target;            /* the request target as received: inside url[] */
	char url[];                    /* upstream_url + target, allocated with the request */
};

void shim_serve_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char line[512];
	size_t n;

	vsnprintf(line, sizeof line, fmt, ap);
	n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	ec_log_warn("libmicrohttpd: %s", line);
}

int shim_serve_resolve(const char *addr, struct sockaddr_storage *ss, char *err,
                       size_t errlen)
{
	struct addrinfo hints = { 0 }, *res = NULL;
	char host[256], port_s[8];
	int port, rc;

	if (ec_addr_split(addr, host, sizeof host, &port) != 0 || port < 0 || port > 65535) {
		snprintf(err, errlen, "%s: expected host:port", addr);
		return EC_EINVAL;
	}
	snprintf(port_s, sizeof port_s, "%d", port);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	rc = getaddrinfo(host[0] ? host : NULL, port_s, &hints, &res);
	if (rc != 0 || res == NULL) {
		snprintf(err, errlen, "%s: %s", addr, rc ? gai_strerror(rc) : "no address");
		return EC_EINVAL;
	}
	memset(ss, 0, sizeof *ss);
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	return 0;
}

/* Copies a client-supplied string for a log line: printable ASCII only, bounded. */
static const char *serve_log_safe(const char *in, char *out, size_t outlen)
{
	size_t i = 0;

	for (; in != NULL && *in && i + 4 < outlen; in++)
		out[i++] = (*in >= 0x21 && *in <= 0x7e) ? *in : '?';
	if (in != NULL && *in)
		out[i++] = '.', out[i++] = '.', out[i++] = '.';
	out[i] = '\0';
	return out;
}

static const char *serve_client(struct MHD_Connection *conn, char *out, size_t outlen)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

	if (ci == NULL || ci->client_addr == NULL)
		return "?";
	return ec_sockaddr_ntop(ci->client_addr, out, outlen);
}

/* Adds the headers every answer carries, queues it, counts it. Takes resp. */
static enum MHD_Result serve_queue(struct shim_req *req, unsigned status,
                                   struct MHD_Response *resp, uint64_t body_bytes)
{
	struct shim_serve *s = req->srv;
	enum MHD_Result ret;

	if (resp == NULL) {
		ec_log_err("req %u: cannot build a response: out of memory; closing", req->id);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Access-Control-Allow-Origin", "*");
	MHD_add_response_header(resp, "Access-Control-Expose-Headers", CORS_EXPOSE);
	if (atomic_load(&s->is_draining))
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	ret = MHD_queue_response(req->conn, status, resp);
	MHD_destroy_response(resp);
	if (ret != MHD_YES)
		return ret;
	req->state = REQ_ANSWERED;
	req->status = status;
	req->body_bytes = req->is_head ? 0 : body_bytes;
	if (!req->is_publish) { /* announcements are not bytes served for anyone */
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		shim_acct_count(s->acct, req->kind, status, req->body_bytes, req->target,
		                ci != NULL ? ci->client_addr : NULL);
	}
	return ret;
}

/* A short text answer: errors and refusals. `text` is one line. */
static enum MHD_Result serve_text(struct shim_req *req, unsigned status, const char *text,
                                  const char *hname, const char *hvalue)
{
	size_t len = strlen(text);
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)text, MHD_RESPMEM_MUST_COPY);

	if (resp != NULL) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
		                        "text/plain; charset=utf-8");
		if (hname != NULL)
			MHD_add_response_header(resp, hname, hvalue);
	}
	return serve_queue(req, status, resp, len);
}

static enum MHD_Result serve_reject(struct shim_req *req, enum serve_reject why,
                                    unsigned status, const char *reason, const char *hname,
                                    const char *hvalue)
{
	char line[256], client[64], target[LOG_TARGET_MAX + 4];

	ec_metric_add_atomic(req->srv->rejects[why], 1);
	ec_log_info("req %u from %s: %s %s: %u %s", req->id,
	            serve_client(req->conn, client, sizeof client), req->method,
	            serve_log_safe(req->target, target, sizeof target), status, reason);
	snprintf(line, sizeof line, "%u %s\n", status, reason);
	return serve_text(req, status, line, hname, hvalue);
}

/* A CORS preflight: a browser sent here by a redirect asks before a request with Range
 * or a box header. Answered without touching upstream; any other OPTIONS is a 405. */
static enum MHD_Result serve_preflight(struct shim_req *req)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);

	if (resp != NULL) {
		MHD_add_response_header(resp, "Access-Control-Allow-Methods", "GET, HEAD");
		MHD_add_response_header(resp, "Access-Control-Allow-Headers",
		                        "Range, If-Range, Echos-Fill, Echos-Fill-Kind");
		MHD_add_response_header(resp, "Access-Control-Max-Age", "86400");
	}
	return serve_queue(req, MHD_HTTP_NO_CONTENT, resp, 0);
}

/* ---- the publish API (POST /_echos/publish, docs/ops.md) ----------------------- */

static int serve_is_publish_target(const char *target)
{
	size_t n = sizeof PUBLISH_TARGET - 1;

	return strncmp(target, PUBLISH_TARGET, n) == 0 &&
	       (target[n] == '\0' || target[n] == '?');
}

/* A JSON answer of the publish API: never cached, one line. */
static enum MHD_Result serve_json(struct shim_req *req, unsigned status, const char *json,
                                  size_t len, const char *hname, const char *hvalue)
{
	struct MHD_Response *resp =
		MHD_create_response_from_buffer(len, (void *)json, MHD_RESPMEM_MUST_COPY);

	if (resp != NULL) {
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
		if (hname != NULL)
			MHD_add_response_header(resp, hname, hvalue);
	}
	return serve_queue(req, status, resp, len);
}

/* Refuses a publish request: one log line, one count, {"error": msg}. */
static enum MHD_Result serve_pub_refuse(struct shim_req *req, unsigned status,
                                        enum shim_pub_result result, const char *msg,
                                        const char *hname, const char *hvalue)
{
	char json[640], client[64];
	int n;

	if (result != SHIM_PUB_RESULT_N_)
		shim_publish_count(req->srv->pub, result);
	ec_log_info("req %u from %s: publish: %u %s", req->id,
	            serve_client(req->conn, client, sizeof client), status, msg);
	n = shim_pubreq_error_json(msg, json, sizeof json);
	return serve_json(req, status, json, (size_t)n, hname, hvalue);
}

/* First call of a publish request (headers complete): everything that can be refused
 * before the body is read is refused here, so a wrong token costs no body. */
static enum MHD_Result serve_pub_check(struct shim_serve *s, struct shim_req *req,
                                       const char *method)
{
	const char *auth, *clen;
	char *end;
	unsigned long long n;

	req->is_publish = 1;
	if (!serve_is_publish_target(req->target))
		return serve_pub_refuse(req, MHD_HTTP_NOT_FOUND, SHIM_PUB_RESULT_N_,
		                        "only POST " PUBLISH_TARGET " is served here", NULL, NULL);
	if (!shim_publish_is_enabled(s->pub) ||
	    (s->pub_l.mhd != NULL && !req->is_publish_only))
		return serve_pub_refuse(req, MHD_HTTP_NOT_FOUND, SHIM_PUB_DISABLED,
		                        "the publish API is not enabled on this listener", NULL,
		                        NULL);
	if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
		return serve_pub_refuse(req, MHD_HTTP_METHOD_NOT_ALLOWED, SHIM_PUB_METHOD,
		                        "method not allowed: use POST", MHD_HTTP_HEADER_ALLOW,
		                        "POST");
	auth = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                   MHD_HTTP_HEADER_AUTHORIZATION);
	if (!shim_publish_auth(s->pub, auth))
		return serve_pub_refuse(req, MHD_HTTP_UNAUTHORIZED, SHIM_PUB_UNAUTHORIZED,
		                        auth == NULL ? "missing Authorization: Bearer <token>" :
		                        "wrong token", MHD_HTTP_HEADER_WWW_AUTHENTICATE,
		                        auth == NULL ? "Bearer realm=\"echos-publish\"" :
		                        "Bearer realm=\"echos-publish\", error=\"invalid_token\"");
	clen = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                   MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (clen != NULL) {
		errno = 0;
		n = strtoull(clen, &end, 10);
		if (errno == 0 && *end == '\0' && n > SHIM_PUB_MAX_BODY)
			return serve_pub_refuse(req, MHD_HTTP_CONTENT_TOO_LARGE, SHIM_PUB_TOO_LARGE,
			                        "body larger than 16384 bytes", NULL, NULL);
	}
	req->pub = calloc(1, sizeof *req->pub);
	if (req->pub == NULL)
		return serve_pub_refuse(req, MHD_HTTP_SERVICE_UNAVAILABLE, SHIM_PUB_UNAVAILABLE,
		                        "out of memory", "Retry-After", "1");
	req->pub->req = req;
	req->state = REQ_READING;
	return MHD_YES;
}

/* A piece of the body: kept up to SHIM_PUB_MAX_BODY, then dropped (answered 413 when the
 * body ends) up to PUBLISH_DISCARD_MAX, then the connection is closed. */
static enum MHD_Result serve_pub_upload(struct shim_req *req, const char *data,
                                        size_t *size)
{
	struct serve_pub *pub = req->pub;
	size_t n = *size;

	*size = 0;
	if (pub->discarded == 0 && pub->body_len + n <= sizeof pub->body) {
		memcpy(pub->body + pub->body_len, data, n);
		pub->body_len += n;
		return MHD_YES;
	}
	pub->discarded += n;
	if (pub->discarded > PUBLISH_DISCARD_MAX) {
		shim_publish_count(req->srv->pub, SHIM_PUB_TOO_LARGE);
		ec_log_info("req %u: publish: body over %d bytes and still sending; closing",
		            req->id, PUBLISH_DISCARD_MAX);
		return MHD_NO;
	}
	return MHD_YES;
}

/* Publish thread: the announcement is written (or not); hand the request back. */
static void on_pub_done(struct shim_pub_job *job)
{
	struct serve_pub *pub = (struct serve_pub *)((char *)job -
	                                             offsetof(struct serve_pub, job));
	struct shim_req *req = pub->req;
	struct MHD_Connection *conn = req->conn;

	req->state = REQ_DONE;
	MHD_resume_connection(conn);  /* last touch: the request may be freed at once */
}

/* Last call, the body complete: parse, then hand the write to the publish thread. */
static enum MHD_Result serve_pub_start(struct shim_serve *s, struct shim_req *req)
{
	struct serve_pub *pub = req->pub;
	char why[512];
	int rc;

	if (pub->discarded > 0)
		return serve_pub_refuse(req, MHD_HTTP_CONTENT_TOO_LARGE, SHIM_PUB_TOO_LARGE,
		                        "body larger than 16384 bytes", NULL, NULL);
	if (shim_pubreq_parse(pub->body, pub->body_len, &pub->preq, why, sizeof why) != 0)
		return serve_pub_refuse(req, MHD_HTTP_BAD_REQUEST, SHIM_PUB_BAD_REQUEST, why,
		                        NULL, NULL);
	pub->job.req = &pub->preq;
	pub->job.done = on_pub_done;
	req->state = REQ_FETCHING;
	MHD_suspend_connection(req->conn);  /* before the job is visible to the thread */
	rc = shim_publish_submit(s->pub, &pub->job);
	if (rc != 0) {
		req->refused = rc;
		req->state = REQ_DONE;
		MHD_resume_connection(req->conn);
	}
	return MHD_YES;
}

/* After the write: 202 with what was recorded, or 503 telling the client to retry. */
static enum MHD_Result serve_pub_answer(struct shim_req *req)
{
	struct serve_pub *pub = req->pub;
	const struct shim_pubreq *r = &pub->preq;
	char json[8192], client[64], regions[SHIM_PUB_MAX_REGIONS * SHIM_PUB_REGION_LEN];
	size_t used = 0;
	int n;

	if (req->refused == EC_EFULL)
		return serve_pub_refuse(req, MHD_HTTP_SERVICE_UNAVAILABLE, SHIM_PUB_UNAVAILABLE,
		                        "busy: too many announcements waiting; retry",
		                        "Retry-After", "1");
	if (req->refused != 0)
		return serve_pub_refuse(req, MHD_HTTP_SERVICE_UNAVAILABLE, SHIM_PUB_UNAVAILABLE,
		                        "shutting down; retry", "Retry-After", "1");
	if (pub->job.result != 0) {
		char msg[320];

		snprintf(msg, sizeof msg, "%s; retry", pub->job.reason);
		return serve_pub_refuse(req, MHD_HTTP_SERVICE_UNAVAILABLE, SHIM_PUB_UNAVAILABLE,
		                        msg, "Retry-After", "1");
	}
	for (size_t i = 0; i < r->n_regions; i++)
		used += (size_t)snprintf(regions + used, sizeof regions - used, "%s%s",
		                         i ? "," : "", r->regions[i]);
	shim_publish_count(req->srv->pub, SHIM_PUB_ACCEPTED);
	ec_log_info("req %u from %s: publish %s: %.6g rps, regions %s, ttl %" PRId64 " s",
	            req->id, serve_client(req->conn, client, sizeof client), r->path,
	            r->expected_rps, regions, r->ttl_s);
	n = shim_pubreq_accepted_json(r, json, sizeof json);
	EC_ASSERT(n > 0);
	return serve_json(req, MHD_HTTP_ACCEPTED, json, (size_t)n, NULL, NULL);
}

/* Worker thread, HEAD: an upstream HEAD first; its validators unlock a cached digest
 * (or the origin sends its own). Anything else (no strong validator, a changed object,
 * an origin that refuses HEAD) falls back to the full GET, so no stale digest is served.
 * Returns 1 if obj is the answer (also a failed HEAD: answered 502), 0 to fetch. */
static int serve_head_cheap(struct shim_req *req, struct shim_fetcher *f)
{
	struct shim_serve *s = req->srv;
	struct shim_object *o = &req->obj;

	if (shim_fetch_head(f, req->url, o) != 0) {
		req->head_source = HEAD_FETCH;
		return 1;  /* the origin is unreachable: a GET would only wait as long again */
	}
	if (o->status != 200 || o->content_length < 0 ||
	    (uint64_t)o->content_length > s->conf->max_object_size)
		return 0;
	o->size_bytes = (uint64_t)o->content_length;
	if (o->repr_digest[0] && o->etag[0] == '"') {
		req->head_source = HEAD_UPSTREAM;
		return 1;
	}
	if (shim_dcache_get(s->dcache, req->url, o, o->sha256)) {
		req->head_source = HEAD_CACHE;
		return 1;
	}
	return 0;
}

/* Worker thread: the fetch itself. */
static void on_job_run(struct shim_job *job, struct shim_fetcher *f)
{
	struct shim_req *req = (struct shim_req *)((char *)job - offsetof(struct shim_req, job));

	if (req->is_head && serve_head_cheap(req, f))
		return;
	req->head_source = HEAD_FETCH;
	if (shim_fetch_get(f, req->url, &req->obj) == 0 && req->obj.status == 200)
		shim_dcache_put(req->srv->dcache, req->url, &req->obj);
}

/* libmicrohttpd content reader of a HEAD answered without a body: never called for
 * HEAD (the response only lends its size to Content-Length). */
static ssize_t on_no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* Worker thread: hands the request back to libmicrohttpd. Resuming is the last touch:
 * the request may complete and be freed at once. */
static void on_job_done(struct shim_job *job)
{
	struct shim_req *req = (struct shim_req *)((char *)job - offsetof(struct shim_req, job));
	struct MHD_Connection *conn = req->conn;

	req->state = REQ_DONE;
	MHD_resume_connection(conn);
}

/* First call, headers complete: classify, and refuse at once what cannot be served
 * (answering before the request is read makes libmicrohttpd close the connection,
 * which is what a bad request deserves). */
static enum MHD_Result serve_check(struct shim_serve *s, struct shim_req *req,
                                   const char *method)
{
	const char *fill, *fill_kind, *why;

	snprintf(req->method, sizeof req->method, "%s", method);
	fill = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Echos-Fill");
	fill_kind = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, "Echos-Fill-Kind");
	if (fill != NULL && fill[0] != '\0')
		req->kind = fill_kind != NULL && strcasecmp(fill_kind, "prefetch") == 0 ?
		            SHIM_KIND_PREFETCH : SHIM_KIND_FILL;
	else
		req->kind = SHIM_KIND_FALLBACK;

	req->is_head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (req->is_publish_only || serve_is_publish_target(req->target))
		return serve_pub_check(s, req, method);
	if (strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0 &&
	    MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                "Access-Control-Request-Method") != NULL)
		return serve_preflight(req);
	if (!req->is_head && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return serve_reject(req, REJECT_METHOD, MHD_HTTP_METHOD_NOT_ALLOWED,
		                    "method not allowed", MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if ((why = shim_req_check_target(req->target)) != NULL)
		return serve_reject(req, REJECT_TARGET, MHD_HTTP_BAD_REQUEST, why, NULL, NULL);
	req->state = REQ_READING;
	return MHD_YES;
}

/* Last call, the request fully read: start the fetch, suspending the connection. */
static enum MHD_Result serve_start(struct shim_serve *s, struct shim_req *req)
{
	int rc;

	req->is_fetched = 1;
	req->job.run = on_job_run;
	req->job.done = on_job_done;
	req->state = REQ_FETCHING;
	/* suspend before the job is visible to a worker, so its resume always finds the
	 * connection suspended */
	MHD_suspend_connection(req->conn);
	rc = shim_pool_submit(s->pool, &req->job);
	if (rc != 0) {
		req->refused = rc;
		req->state = REQ_DONE;
		MHD_resume_connection(req->conn);
	}
	return MHD_YES;
}

/* The answer to a fetch that failed, or that the pool refused. */
static enum MHD_Result serve_failed(struct shim_serve *s, struct shim_req *req)
{
	const struct shim_object *o = &req->obj;

	if (req->refused == EC_EFULL)
		return serve_reject(req, REJECT_QUEUE_FULL, MHD_HTTP_SERVICE_UNAVAILABLE,
		                    "busy: too many fetches waiting", "Retry-After", "1");
	if (req->refused != 0 || o->error == EC_ESTATE)
		return serve_reject(req, REJECT_STOPPING, MHD_HTTP_SERVICE_UNAVAILABLE,
		                    "shutting down", "Retry-After", "1");
	if (o->error == EC_EFULL) {
		ec_log_err("req %u: spool %s: %s; answering 503", req->id, s->conf->spool_dir,
		           o->reason);
		return serve_text(req, MHD_HTTP_SERVICE_UNAVAILABLE,
		                  "503 cannot store the object right now\n", "Retry-After", "5");
	}
	ec_metric_add_atomic(s->upstream_errors, 1);
	ec_log_warn("upstream %s: %s; answering 502", req->url, o->reason);
	return serve_text(req, MHD_HTTP_BAD_GATEWAY, "502 upstream unavailable\n", NULL, NULL);
}

/* Returns 1 if If-Range (absent, or matching our validator) lets the Range apply. */
static int serve_if_range_ok(struct shim_req *req, const char *etag, const char *lm)
{
	const char *v = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND,
	                                            MHD_HTTP_HEADER_IF_RANGE);

	if (v == NULL)
		return 1;
	if (v[0] == '"')
		return strcmp(v, etag) == 0;  /* strong comparison, RFC 9110 13.1.5 */
	return lm[0] != '\0' && strcmp(v, lm) == 0;
}

/* 200 or 206 (or 416) from the spooled object. Repr-Digest always describes the whole
 * representation, also on 206. */
static enum MHD_Result serve_object(struct shim_req *req)
{
	struct shim_object *o = &req->obj;
	char etag_buf[SHIM_ETAG_LEN], repr_buf[SHIM_REPR_DIGEST_LEN], crange[80];
	const char *etag, *repr, *range;
	enum shim_range rk = SHIM_RANGE_NONE;
	uint64_t first = 0, last = 0, len = o->size_bytes;
	struct MHD_Response *resp;
	unsigned status = MHD_HTTP_OK;

	etag = o->etag[0] == '"' ? o->etag : shim_digest_etag(o->sha256, etag_buf);
	/* the content owner's digest is authoritative end to end: never recomputed over */
	repr = o->repr_digest[0] ? o->repr_digest : shim_digest_repr(o->sha256, repr_buf);
	range = MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
	if (range != NULL && !req->is_head && serve_if_range_ok(req, etag, o->last_modified))
		rk = shim_req_parse_range(range, o->size_bytes, &first, &last);

	if (rk == SHIM_RANGE_UNSAT) {
		snprintf(crange, sizeof crange, "bytes */%" PRIu64, o->size_bytes);
		shim_object_fini(o);
		return serve_text(req, MHD_HTTP_RANGE_NOT_SATISFIABLE,
		                  "416 range not satisfiable\n", MHD_HTTP_HEADER_CONTENT_RANGE,
		                  crange);
	}
	if (rk == SHIM_RANGE_PART) {
		status = MHD_HTTP_PARTIAL_CONTENT;
		len = last - first + 1;
		snprintf(crange, sizeof crange, "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, first,
		         last, o->size_bytes);
	}
	if (o->fd < 0) {  /* a HEAD answered from validators and a known digest */
		EC_ASSERT(req->is_head);
		resp = MHD_create_response_from_callback(len, 4096, on_no_body, NULL, NULL);
	} else {
		resp = MHD_create_response_from_fd_at_offset64(len, o->fd, first);
	}
	if (resp == NULL)
		return serve_queue(req, status, NULL, 0);  /* logs; o->fd closed on completion */
	o->fd = -1;  /* the response owns it now and closes it */
	if (req->is_head)
		ec_metric_add_atomic(req->srv->heads[req->head_source], 1);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        o->content_type[0] ? o->content_type : "application/octet-stream");
	if (o->last_modified[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, o->last_modified);
	if (o->cache_control[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, o->cache_control);
	if (o->content_encoding[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING,
		                        o->content_encoding);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(resp, "Repr-Digest", repr);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (status == MHD_HTTP_PARTIAL_CONTENT)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, crange);
	return serve_queue(req, status, resp, len);
}

/* A 3xx or 4xx from upstream, passed through with its body and type. */
static enum MHD_Result serve_passthrough(struct shim_req *req)
{
	struct shim_object *o = &req->obj;
	struct MHD_Response *resp;
	uint64_t len = o->size_bytes;

	resp = MHD_create_response_from_fd_at_offset64(len, o->fd, 0);
	if (resp == NULL)
		return serve_queue(req, (unsigned)o->status, NULL, 0);
	o->fd = -1;
	if (o->content_type[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, o->content_type);
	if (o->location[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, o->location);
	if (o->cache_control[0])
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, o->cache_control);
	return serve_queue(req, (unsigned)o->status, resp, len);
}

/* After the fetch: choose the answer from what upstream said. */
static enum MHD_Result serve_answer(struct shim_serve *s, struct shim_req *req)
{
	long st = req->obj.status;

	if (req->refused != 0 || req->obj.error != 0)
		return serve_failed(s, req);
	if (st == 200 || st == 203)
		return serve_object(req);
	if (st >= 300 && st < 500)
		return serve_passthrough(req);
	ec_metric_add_atomic(s->upstream_errors, 1);
	ec_log_warn("upstream %s: %s %ld; answering 502", req->url,
	            st >= 500 ? "status" : "unexpected status", st);
	shim_object_fini(&req->obj);
	return serve_text(req, MHD_HTTP_BAD_GATEWAY, "502 upstream unavailable\n", NULL, NULL);
}


/* libmicrohttpd access handler: called with complete headers, for each piece of a
 * request body (dropped: GET and HEAD need none; kept for a publish), and after a
 * resume. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
	struct shim_req *req = *req_cls;
	struct shim_serve *s;

	if (req == NULL)
		return MHD_NO;  /* on_uri could not allocate: close the connection */
	EC_ASSERT(req->magic == REQ_MAGIC);
	s = req->srv;
	if (*upload_data_size != 0) {
		if (req->pub != NULL && req->state == REQ_READING)
			return serve_pub_upload(req, upload_data, upload_data_size);
		*upload_data_size = 0;
		return MHD_YES;
	}
	switch (req->state) {
	case REQ_NEW:
		return serve_check(s, req, method);
	case REQ_READING:
		return req->pub != NULL ? serve_pub_start(s, req) : serve_start(s, req);
	case REQ_DONE:
		return req->pub != NULL ? serve_pub_answer(req) : serve_answer(s, req);
	default:
		return MHD_YES;
	}
}

/* libmicrohttpd URI callback, once per request before the headers are parsed: creates
 * the request object (freed in on_completed) and keeps the target as received, before
 * libmicrohttpd decodes it, so encoded slashes and NULs can be refused and the query
 * goes upstream unchanged. One allocation holds the request and its upstream URL.
 * Returns the new request, owned by libmicrohttpd's slot until on_completed. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct serve_listener *l = cls;
	struct shim_serve *s = l->srv;
	size_t ulen = strlen(s->conf->upstream_url), tlen = uri != NULL ? strlen(uri) : 0;
	struct shim_req *req = calloc(1, sizeof *req + ulen + tlen + 1);

	if (req == NULL)
		return NULL;
	memcpy(req->url, s->conf->upstream_url, ulen);
	if (tlen)
		memcpy(req->url + ulen, uri, tlen);
	req->target = req->url + ulen;
	req->magic = REQ_MAGIC;
	req->srv = s;
	req->is_publish_only = l->is_publish_only;
	req->conn = conn;
	req->obj.fd = -1;
	req->id = atomic_fetch_add(&s->next_id, 1) + 1;
	req->start_us = ec_now_us();
	atomic_fetch_add(&s->inflight, 1);
	return req;
}

/* libmicrohttpd completion callback: the only place a request object is freed. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct shim_req *req = *req_cls;
	char target[LOG_TARGET_MAX + 4];
	struct shim_serve *s;

	if (req == NULL)
		return;
	EC_ASSERT(req->magic == REQ_MAGIC);
	s = req->srv;
	EC_ASSERT(req->state != REQ_FETCHING);
	ec_log_debug("req %u: %s %s %s -> %u, %" PRIu64 " bytes, %s, %" PRId64 " ms%s",
	             req->id, req->is_publish ? "publish" : shim_kind_name(req->kind),
	             req->method,
	             serve_log_safe(req->target, target, sizeof target), req->status,
	             req->body_bytes, !req->is_fetched ? "not fetched" :
	             req->is_head && req->head_source == HEAD_CACHE ? "digest cached" :
	             req->is_head && req->head_source == HEAD_UPSTREAM ? "digest upstream" :
	             "fetched",
	             (ec_now_us() - req->start_us) / 1000,
	             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ", cut short");
	shim_object_fini(&req->obj);
	free(req->pub);
	req->magic = 0;
	free(req);
	*req_cls = NULL;
	atomic_fetch_sub(&s->inflight, 1);
}

static double serve_inflight_fn(void *arg)
{
	return (double)shim_serve_inflight(arg);
}

static double serve_busy_fn(void *arg)
{
	struct shim_serve *s = arg;

	return (double)shim_pool_busy(s->pool);
}

static int serve_register(struct shim_serve *s, struct ec_metrics *m)
{
	char labels[64];

	s->upstream_errors = ec_metrics_counter(m, "echos_shim_upstream_errors_total",
		"Upstream failures answered 502 (refused, timeout, 5xx, too large)", NULL);
	if (s->upstream_errors == NULL)
		return EC_ENOMEM;
	for (size_t i = 0; i < REJECT_N_; i++) {
		snprintf(labels, sizeof labels, "reason=\"%s\"", serve_reject_names[i]);
		s->rejects[i] = ec_metrics_counter(m, "echos_shim_rejected_total",
			"Requests refused before any upstream fetch, by reason", labels);
		if (s->rejects[i] == NULL)
			return EC_ENOMEM;
	}
	for (size_t i = 0; i < HEAD_SOURCE_N_; i++) {
		snprintf(labels, sizeof labels, "source=\"%s\"", head_source_names[i]);
		s->heads[i] = ec_metrics_counter(m, "echos_shim_head_digests_total",
			"HEAD answers by where the digest came from", labels);
		if (s->heads[i] == NULL)
			return EC_ENOMEM;
	}
	if (ec_metrics_gauge_fn(m, "echos_shim_requests_in_flight",
	                        "Requests received and not yet completed", NULL,
	                        serve_inflight_fn, s) == NULL ||
	    ec_metrics_gauge_fn(m, "echos_shim_fetches_busy",
	                        "Upstream fetches running or waiting for a worker", NULL,
	                        serve_busy_fn, s) == NULL)
		return EC_ENOMEM;
	return 0;
}

/* Starts one libmicrohttpd daemon on addr for l. Returns 0 or EC_EIO with err set. */
static int serve_listen(struct shim_serve *s, struct serve_listener *l, const char *addr,
                        int64_t threads, char *err, size_t errlen)
{
	const struct shim_conf *conf = s->conf;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	                 MHD_USE_ERROR_LOG;

	if (shim_serve_resolve(addr, &ss, err, errlen) != 0)
		return EC_EIO;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	l->srv = s;
	l->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, l,
		MHD_OPTION_EXTERNAL_LOGGER, shim_serve_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		/* 0, not 1, for a single thread: libmicrohttpd warns about a pool of 1 */
		MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)conf->conn_max,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)conf->conn_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((conf->conn_timeout_ms + 999) / 1000),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)conf->conn_memory,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, l,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
		MHD_OPTION_END);
	if (l->mhd == NULL) {
		snprintf(err, errlen, "listen %s: cannot start the HTTP server (%s)", addr,
		         errno ? strerror(errno) : "libmicrohttpd refused");
		return EC_EIO;
	}
	return 0;
}

static unsigned serve_port(const struct serve_listener *l)
{
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->mhd,
	                                                     MHD_DAEMON_INFO_BIND_PORT);

	return di != NULL ? (unsigned)di->port : 0;
}

struct shim_serve *shim_serve_new(const struct shim_conf *conf, struct shim_pool *pool,
                                  struct shim_acct *acct, struct shim_publish *pub,
                                  struct ec_metrics *m, char *err, size_t errlen)
{
	struct shim_serve *s = calloc(1, sizeof *s);

	if (s == NULL || serve_register(s, m) != 0 ||
	    (s->dcache = shim_dcache_new(DCACHE_SLOTS)) == NULL) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->magic = SERVE_MAGIC;
	s->conf = conf;
	s->pool = pool;
	s->acct = acct;
	s->pub = pub;
	s->pub_l.is_publish_only = 1;
	if (serve_listen(s, &s->main_l, conf->listen, conf->http_threads, err, errlen) != 0 ||
	    (conf->publish_listen[0] != '\0' &&
	     serve_listen(s, &s->pub_l, conf->publish_listen, 1, err, errlen) != 0)) {
		shim_serve_free(s);
		return NULL;
	}
	ec_log_info("listening on %s (port %u), upstream %s, %" PRId64 " fetch workers",
	            conf->listen, serve_port(&s->main_l), conf->upstream_url, conf->threads);
	if (s->pub_l.mhd != NULL)
		ec_log_info("publish API on %s (port %u) only", conf->publish_listen,
		            serve_port(&s->pub_l));
	else if (shim_publish_is_enabled(pub))
		ec_log_info("publish API on %s: POST " PUBLISH_TARGET, conf->listen);
	return s;
}

unsigned shim_serve_inflight(const struct shim_serve *s)
{
	return atomic_load(&((struct shim_serve *)s)->inflight);
}

unsigned shim_serve_drain(struct shim_serve *s, int64_t timeout_ms)
{
	int64_t deadline = ec_now_ms() + timeout_ms;
	struct timespec nap = { 0, 20 * 1000 * 1000 };
	MHD_socket fd;

	EC_ASSERT(s->magic == SERVE_MAGIC);
	atomic_store(&s->is_draining, 1);
	for (int i = 0; i < 2; i++) {
		struct serve_listener *l = i == 0 ? &s->main_l : &s->pub_l;
		if (l->mhd == NULL)
			continue;
		fd = MHD_quiesce_daemon(l->mhd);
		if (fd != MHD_INVALID_SOCKET)
			close(fd);
	}
	while (shim_serve_inflight(s) > 0 && ec_now_ms() < deadline)
		nanosleep(&nap, NULL);
	return shim_serve_inflight(s);
}

void shim_serve_free(struct shim_serve *s)
{
	if (s == NULL)
		return;
	EC_ASSERT(s->magic == SERVE_MAGIC);
	if (s->pub_l.mhd != NULL)
		MHD_stop_daemon(s->pub_l.mhd);
	if (s->main_l.mhd != NULL)
		MHD_stop_daemon(s->main_l.mhd);
	shim_dcache_free(s->dcache);
	s->magic = 0;
	free(s);
}
