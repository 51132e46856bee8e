/* ec_http: the one HTTP server core used by the redirector and the edge.
 * libevent bufferevents + OpenSSL + nghttp2: HTTP/1.1 with keep-alive (http-parser),
 * HTTP/2 cleartext with prior knowledge (h2c, detected by the connection preface), and
 * TLS with ALPN choosing h2 or http/1.1. Enforces the limits of HARDENING.md (header
 * size and count, timeouts, connection caps, h2 flood and reset budgets).
 * Owns connections and requests; the handler owns only what it hangs on req->user.
 * Does not route, read files on its own, or know about tokens and caches.
 *
 * Request bodies are refused for now: a GET or HEAD with a body gets 400, any other
 * method with a body 413 (HTTP/1.1 then closes; HTTP/2 resets the stream after the
 * answer). Handlers only ever see bodiless requests. Malformed or oversized headers
 * (smuggling shapes, bare LF/CR, NUL, obs-fold, too many or too large) are answered by
 * the server (400/431/505 and close on HTTP/1.1, stream reset on HTTP/2) and never
 * reach the handler. On HTTP/1.1 a client EOF while the handler still works counts as
 * the client gone (close callback with completed = 0); pipelined requests are answered
 * one at a time, in order.
 *
 * With opts.metrics, the server registers <p>_connections_total, _connections_open,
 * _requests_total{proto}, _requests_inflight and _rejects_total{reason}, where <p> is
 * metrics_prefix + "_http" (or the prefix itself when it already ends in "_http"). The
 * registry borrows the names and calls back into the server: render it only while the
 * server exists. */
#ifndef ECHOS_COMMON_EC_HTTP_H
#define ECHOS_COMMON_EC_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

struct event_base;
struct ec_metrics;
struct ec_http_server;

enum ec_http_proto {
	EC_HTTP_H1 = 0,
	EC_HTTP_H2,
};

struct ec_http_header {
	const char *name; /* lowercase for request headers; any case accepted in responses */
	size_t name_len;  /* 0: strlen(name) */
	const char *value;
	size_t value_len; /* 0: strlen(value) */
	unsigned flags;   /* EC_HTTP_HDR_*; 0 in request headers */
};

/* A response header whose name is a string literal the caller vouches for: a token
 * (RFC 9110) and none of the names the server writes itself (Date, Content-Length,
 * Transfer-Encoding, Connection, Keep-Alive, TE, Upgrade, Proxy-Connection). The server
 * then checks only the value, and on h2 keeps a lowercase copy of the name by the
 * literal's address for every later response (so the name must never be a buffer that
 * is reused). Sanitizer builds (make check) verify the claim. */
#define EC_HTTP_HDR_NAME_OK 1u
/* A response header whose value is secret or never repeats (a signed URL): on h2 it is
 * sent as a literal never indexed (RFC 7541 6.2.3), so no HPACK table keeps it, neither
 * the connection's (where a unique Link would evict the fields that do repeat; nghttp2
 * leaves location out by itself) nor an intermediary's re-encoding, and it cannot be
 * probed through compression (RFC 7541 7.1). No effect on HTTP/1.1. */
#define EC_HTTP_HDR_SENSITIVE 2u
/* A response header whose value the caller vouches for: no CR, LF or NUL in it (a
 * literal, or text built only from parts checked before). The server then does not scan
 * it; sanitizer builds (make check) verify the claim. */
#define EC_HTTP_HDR_VALUE_OK 4u

/* A request as the handler sees it. All pointers are owned by the server and valid until
 * the request is closed (see ec_http_req_on_close). Read-only for the handler except user. */
struct ec_http_req {
	unsigned magic;
	uint64_t id;                   /* unique per process, for log lines */
	enum ec_http_proto proto;
	int is_tls;
	int is_head;                   /* method is HEAD: bodies are not sent */
	const char *method;            /* "GET", NUL-terminated */
	const char *target;            /* request target as received: path and query */
	size_t target_len;
	const char *path;              /* target without the query, NUL-terminated */
	size_t path_len;
	const char *query;             /* after '?', NUL-terminated, "" if none */
	const char *authority;         /* Host or :authority, "" if none */
	struct ec_http_header *headers; /* lowercase names, NUL-terminated values */
	size_t n_headers;
	struct sockaddr_storage peer;  /* the socket's peer */
	socklen_t peer_len;
	struct sockaddr_storage local; /* the socket's local address */
	int64_t start_us;              /* monotonic clock of the server callback that completed
	                                * the headers (one reading serves a batch of requests) */
	int is_start_now;              /* start_us was read as this request was handed over
	                                * (the first of its batch): it is "now" for the handler */
	void *user;                    /* free for the handler */
};

/* Called once per request after its headers are complete and valid. The handler must
 * eventually call exactly one of ec_http_respond*, ec_http_stream_start or ec_http_abort,
 * now or later from the same event loop. */
typedef void (*ec_http_handler)(struct ec_http_req *req, void *arg);

/* Called once when the server is about to free req: completed != 0 when the whole
 * response was handed to the kernel (HTTP/2: its last frame was queued on the
 * connection and the stream closed cleanly), 0 when the client went away or the stream
 * was reset first. It never runs inside an ec_http_* call the handler made: it comes
 * from the event loop. After it returns the handler must not touch req again. */
typedef void (*ec_http_close_cb)(struct ec_http_req *req, void *arg, int completed);
/* Called when a stream's queued output drops below the low-water mark. */
typedef void (*ec_http_drain_cb)(struct ec_http_req *req, void *arg);

struct ec_http_server_opts {
	struct event_base *base;      /* borrowed, must outlive the server */
	ec_http_handler handler;
	void *handler_arg;
	const char *tls_cert_file;    /* PEM; NULL: TLS listeners refused */
	const char *tls_key_file;
	struct ec_metrics *metrics;   /* optional: echos_http_* series registered here */
	const char *metrics_prefix;   /* e.g. "echos_redirector" (default "echos_http") */
	/* limits; 0 selects the default in parentheses */
	size_t max_conns;             /* (10000) over → accept and close at once */
	size_t max_conns_per_ip;      /* (1000) */
	int64_t header_timeout_ms;    /* (10000) request headers must complete */
	int64_t idle_timeout_ms;      /* (60000) keep-alive idle */
	int64_t write_timeout_ms;     /* (30000) no progress on output, or a stalled h2 window */
	size_t max_header_bytes;      /* (16384) sum of name+value bytes */
	size_t max_header_fields;     /* (64) */
	uint32_t h2_max_streams;      /* (100) SETTINGS_MAX_CONCURRENT_STREAMS */
	uint32_t h2_window;           /* (1 MiB) initial stream window */
	size_t out_high_water;        /* (256 KiB) stop reading / stream not drained above */
	size_t out_low_water;         /* (64 KiB) drain callbacks fire below */
};

/* Returns a new server owned by the caller (free with ec_http_server_free), or NULL with
 * the reason in err (bad TLS files, allocation). */
struct ec_http_server *ec_http_server_new(const struct ec_http_server_opts *o, char *err,
                                          size_t errlen);
/* Listens on "host:port" ("[::1]:port" for IPv6; port 0 picks a free one), plain or TLS.
 * Plain listeners serve HTTP/1.1 and h2c prior knowledge; TLS listeners use ALPN.
 * Returns the bound port (> 0) or a negative code with the reason in err. */
int ec_http_server_listen(struct ec_http_server *s, const char *addr, int tls, char *err,
                          size_t errlen);
/* Replaces the TLS certificate and key for new connections. Returns 0 or a negative code
 * (the old ones stay) with the reason in err. */
int ec_http_server_reload_tls(struct ec_http_server *s, const char *cert, const char *key,
                              char *err, size_t errlen);
/* Graceful stop: closes the listeners, sends GOAWAY on h2 connections, closes idle
 * HTTP/1.1 connections, and lets in-flight requests finish. */
void ec_http_server_drain(struct ec_http_server *s);
size_t ec_http_server_conns(const struct ec_http_server *s);     /* open connections */
size_t ec_http_server_inflight(const struct ec_http_server *s);  /* open requests */
/* Closes everything at once (requests get their close callbacks). NULL is a no-op. */
void ec_http_server_free(struct ec_http_server *s);

/* Returns the value of the first header named `lname` (lowercase) or NULL. */
const char *ec_http_req_header(const struct ec_http_req *req, const char *lname,
                               size_t *value_len);
void ec_http_req_on_close(struct ec_http_req *req, ec_http_close_cb cb, void *arg);
/* Body bytes of this request's response the socket has taken so far (through TLS: the
 * bytes handed to it); headers and framing are not counted. Exact at the byte level; on
 * HTTP/1.1 it equals the body length once the close callback says completed, on HTTP/2
 * the close callback can run while the last frames still wait in the connection's output,
 * and the count stops there. Valid until the close callback returns. */
uint64_t ec_http_req_body_sent(const struct ec_http_req *req);

/* A complete response. The body is copied (not sent for HEAD; Content-Length is still
 * len; 204 and 304 get neither body nor Content-Length). Date and Content-Length are
 * added by the server; handler headers named Date, Content-Length, Transfer-Encoding,
 * Connection or Keep-Alive are dropped ("Connection: close" closes after the response
 * on HTTP/1.1), as is any header whose name or value could split the response.
 * Returns 0, EC_ECLOSED (client gone: the response is dropped), EC_ESTATE (already
 * responded) or EC_EINVAL (status outside 200..999). */
int ec_http_respond(struct ec_http_req *req, int status, const struct ec_http_header *hdrs,
                    size_t n_hdrs, const void *body, size_t len);
/* A response whose body is `len` bytes of `fd` from `off`. Takes fd (closes it, also on
 * error). HTTP/1.1 uses sendfile; HTTP/2 reads into DATA frames without extra copies
 * (file-segment references: sendfile on h2c, one mapping under TLS). A file shorter
 * than off+len ends the connection when its end is reached. Returns as ec_http_respond,
 * or EC_EIO when the file cannot be used: nothing was sent, the handler must still
 * respond. */
int ec_http_respond_fd(struct ec_http_req *req, int status, const struct ec_http_header *hdrs,
                       size_t n_hdrs, int fd, off_t off, uint64_t len);

/* Streaming: headers now, body in pieces. content_length < 0: unknown (chunked on
 * HTTP/1.1). Writes copy the data; when ec_http_stream_buffered() passes out_high_water
 * the producer should wait for the drain callback. End completes the response; abort
 * resets the stream (h2) or closes the connection (h1), so a client never mistakes a
 * truncated body for a whole one. All return 0, EC_ECLOSED or EC_ESTATE. */
int ec_http_stream_start(struct ec_http_req *req, int status,
                         const struct ec_http_header *hdrs, size_t n_hdrs,
                         int64_t content_length);
int ec_http_stream_write(struct ec_http_req *req, const void *data, size_t len);
size_t ec_http_stream_buffered(const struct ec_http_req *req);
void ec_http_stream_on_drain(struct ec_http_req *req, ec_http_drain_cb cb, void *arg);
int ec_http_stream_end(struct ec_http_req *req);
void ec_http_abort(struct ec_http_req *req);

/* "OK", "Found", ... for a status code. */
const char *ec_http_reason(int status);

#endif
