/* shim_serve: the client side of echos-origin-shim on libmicrohttpd. A few epoll threads
 * run connections and never block: a request suspends while a pool worker fetches (libcurl
 * blocks per transfer), so upstream concurrency is bounded by `threads`, idle keep-alive
 * connections cost no thread (unlike thread-per-connection) and a slow origin stalls no
 * other client. Owns the per-request objects, freed on completion only. */
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
#include "shim_digest.h"
#include "shim_fetch.h"
#include "shim_pool.h"
#include "shim_req.h"
#include "shim_serve.h"

#define SERVE_MAGIC 0x53e7be11u
#define REQ_MAGIC 0x7e9a11cbu
#define LOG_TARGET_MAX 160      /* bytes of a client's target quoted in a log line */

#define CORS_EXPOSE "Content-Length, Content-Range, Repr-Digest, ETag"

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

struct shim_serve {
	unsigned magic;
	struct MHD_Daemon *mhd;
	const struct shim_conf *conf;  /* borrowed */
	struct shim_pool *pool;        /* borrowed */
	struct shim_acct *acct;        /* borrowed */
	atomic_uint inflight;          /* requests from request line to completion */
	atomic_uint next_id;           /* request ids for log lines */
	atomic_int is_draining;        /* responses say Connection: close */
	struct ec_metric *upstream_errors;
	struct ec_metric *rejects[REJECT_N_];
};

enum req_state {
	REQ_NEW = 0,   /* headers received, nothing decided */
	REQ_READING,   /* accepted; the rest of the request (a body, dropped) is read */
	REQ_FETCHING,  /* suspended; a pool worker owns the fetch */
	REQ_DONE,      /* fetch finished (or refused); answer on the next call */
	REQ_ANSWERED,  /* response queued */
};

struct shim_req {
	unsigned magic;
	struct shim_serve *srv;        /* borrowed */
	struct MHD_Connection *conn;   /* borrowed from libmicrohttpd */
	unsigned id;
	enum req_state state;
	enum shim_kind kind;
	int is_head;
	char method[8];
	int is_fetched;                /* a fetch ran (for the completion log) */
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
	shim_acct_count(s->acct, req->kind, status, req->body_bytes);
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

/* Worker thread: the fetch itself. */
static void on_job_run(struct shim_job *job, struct shim_fetcher *f)
{
	struct shim_req *req = (struct shim_req *)((char *)job - offsetof(struct shim_req, job));

	shim_fetch_get(f, req->url, &req->obj);
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
	resp = MHD_create_response_from_fd_at_offset64(len, o->fd, first);
	if (resp == NULL)
		return serve_queue(req, status, NULL, 0);  /* logs; o->fd closed on completion */
	o->fd = -1;  /* the response owns it now and closes it */
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
 * request body (dropped: GET and HEAD need none), and after a resume. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
	struct shim_serve *s = cls;
	struct shim_req *req = *req_cls;

	if (req == NULL)
		return MHD_NO;  /* on_uri could not allocate: close the connection */
	EC_ASSERT(req->magic == REQ_MAGIC);
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	switch (req->state) {
	case REQ_NEW:
		return serve_check(s, req, method);
	case REQ_READING:
		return serve_start(s, req);
	case REQ_DONE:
		return serve_answer(s, req);
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
	struct shim_serve *s = cls;
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
	struct shim_serve *s = cls;
	struct shim_req *req = *req_cls;
	char target[LOG_TARGET_MAX + 4];

	if (req == NULL)
		return;
	EC_ASSERT(req->magic == REQ_MAGIC);
	EC_ASSERT(req->state != REQ_FETCHING);
	ec_log_debug("req %u: %s %s %s -> %u, %" PRIu64 " bytes, %s, %" PRId64 " ms%s",
	             req->id, shim_kind_name(req->kind), req->method,
	             serve_log_safe(req->target, target, sizeof target), req->status,
	             req->body_bytes, req->is_fetched ? "fetched" : "not fetched",
	             (ec_now_us() - req->start_us) / 1000,
	             toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : ", cut short");
	shim_object_fini(&req->obj);
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
	if (ec_metrics_gauge_fn(m, "echos_shim_requests_in_flight",
	                        "Requests received and not yet completed", NULL,
	                        serve_inflight_fn, s) == NULL ||
	    ec_metrics_gauge_fn(m, "echos_shim_fetches_busy",
	                        "Upstream fetches running or waiting for a worker", NULL,
	                        serve_busy_fn, s) == NULL)
		return EC_ENOMEM;
	return 0;
}

struct shim_serve *shim_serve_new(const struct shim_conf *conf, struct shim_pool *pool,
                                  struct shim_acct *acct, struct ec_metrics *m, char *err,
                                  size_t errlen)
{
	struct shim_serve *s;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
	                 MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;

	if (shim_serve_resolve(conf->listen, &ss, err, errlen) != 0)
		return NULL;
	s = calloc(1, sizeof *s);
	if (s == NULL || serve_register(s, m) != 0) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->magic = SERVE_MAGIC;
	s->conf = conf;
	s->pool = pool;
	s->acct = acct;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
		MHD_OPTION_EXTERNAL_LOGGER, shim_serve_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		/* 0, not 1, for a single thread: libmicrohttpd warns about a pool of 1 */
		MHD_OPTION_THREAD_POOL_SIZE,
		(unsigned)(conf->http_threads > 1 ? conf->http_threads : 0),
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)conf->conn_max,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)conf->conn_per_ip,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((conf->conn_timeout_ms + 999) / 1000),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)conf->conn_memory,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
		MHD_OPTION_END);
	if (s->mhd == NULL) {
		snprintf(err, errlen, "listen %s: cannot start the HTTP server (%s)",
		         conf->listen, errno ? strerror(errno) : "libmicrohttpd refused");
		free(s);
		return NULL;
	}
	di = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);
	ec_log_info("listening on %s (port %u), upstream %s, %" PRId64 " fetch workers",
	            conf->listen, di != NULL ? (unsigned)di->port : 0, conf->upstream_url,
	            conf->threads);
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
	fd = MHD_quiesce_daemon(s->mhd);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	while (shim_serve_inflight(s) > 0 && ec_now_ms() < deadline)
		nanosleep(&nap, NULL);
	return shim_serve_inflight(s);
}

void shim_serve_free(struct shim_serve *s)
{
	if (s == NULL)
		return;
	EC_ASSERT(s->magic == SERVE_MAGIC);
	MHD_stop_daemon(s->mhd);
	s->magic = 0;
	free(s);
}
