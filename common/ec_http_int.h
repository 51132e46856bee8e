/* ec_http_int: private to common/ec_http*.c. The server, connection and request structs
 * shared by the core (ec_http.c: listeners, connections, timers, the public API), the
 * HTTP/1.1 engine (ec_http_h1.c) and the HTTP/2 engine (ec_http_h2.c).
 * Nothing outside common/ec_http*.c includes it. */
#ifndef ECHOS_COMMON_EC_HTTP_INT_H
#define ECHOS_COMMON_EC_HTTP_INT_H

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <event2/listener.h>
#include <http_parser.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include "ec_http.h"
#include "ec_time.h"
#include "ec_metrics.h"

#define EC_HTTP_SERVER_MAGIC 0x45485356u /* "EHSV" */
#define EC_HTTP_CONN_MAGIC   0x4548434eu /* "EHCN" */
#define EC_HTTP_REQ_MAGIC    0x45485251u /* "EHRQ" */

#define EC_HTTP_LINGER_MS      2000    /* discard input this long after our last byte */
#define EC_HTTP_LINGER_BYTES   (256u * 1024)
#define EC_HTTP_H2_TICK_MS     1000    /* stalled-stream checks while streams are open */
#define EC_HTTP_TIMER_SLACK_US 2000    /* a connection timeout this close to due is due */
#define EC_HTTP_DIRECT_MAX     4096    /* h1 responses up to this size are sent from the stack */
#define EC_HTTP_H2_GLITCH_BURST 200    /* invalid frames + resets a peer may cause ... */
#define EC_HTTP_H2_GLITCH_RATE  20     /* ... refilled per second */
#define EC_HTTP_LOG_PER_SEC    20      /* refusal log lines per second */
#define EC_HTTP_POOL_MAX       1024    /* recycled request objects kept */
#define EC_HTTP_ARENA_KEEP     (32u * 1024) /* larger arenas are freed, not recycled */
#define EC_HTTP_MAX_WRITE      (262144) /* bytes per write call on the socket */
#define EC_HTTP_READ_CHUNK     (16384)  /* bytes per read call on a plain socket */
#define EC_HTTP_PUSH_BUDGET    (1048576) /* bytes a plain connection writes per turn */
#define EC_HTTP_H2_FRAME_MAX   (64u * 1024) /* DATA payload cap when the peer allows more */
/* h2c: a file DATA payload up to EC_HTTP_H2_COPY_MAX is cut from a block of
 * EC_HTTP_H2_READ_AHEAD bytes read with one pread (small frames then leave many to one
 * writev instead of two calls each; larger ones reference the file and go out by
 * sendfile); the output is written every EC_HTTP_H2_BATCH bytes while the
 * socket keeps up, and serialization waits at EC_HTTP_H2_COPY_WATER while it is full, which
 * bounds the copies a connection holds. */
#define EC_HTTP_H2_COPY_MAX    (16u * 1024)
#define EC_HTTP_H2_READ_AHEAD  (32u * 1024) /* file bytes read at once for such frames */
#define EC_HTTP_H2_COPY_WATER  (128u * 1024)
#define EC_HTTP_H2_BATCH       (64u * 1024)
#define EC_HTTP_H2_LC_SLOTS 32 /* response names kept lowercase for nghttp2 */
#define EC_HTTP_H2_STAGE (16u * 1024) /* frames one flush gathers before the output */
#define EC_HTTP_H2_SLAB_KEEP 1024 /* free nghttp2 blocks cached per size class (<= 4 MiB) */

/* Why a request or connection was refused; one counter each. */
enum ec_http_rej {
	EC_HTTP_REJ_CONN_LIMIT = 0, /* max_conns reached */
	EC_HTTP_REJ_IP_LIMIT,       /* max_conns_per_ip reached */
	EC_HTTP_REJ_BAD_REQUEST,    /* malformed request line or header */
	EC_HTTP_REJ_SMUGGLING,      /* CL+TE, duplicate CL, obs-fold, bare LF/CR, NUL */
	EC_HTTP_REJ_HEADER_BYTES,   /* header bytes over max_header_bytes */
	EC_HTTP_REJ_HEADER_FIELDS,  /* field count over max_header_fields */
	EC_HTTP_REJ_BODY,           /* request carried a body */
	EC_HTTP_REJ_HEADER_TIMEOUT, /* headers did not complete in time */
	EC_HTTP_REJ_WRITE_TIMEOUT,  /* output or h2 window stalled */
	EC_HTTP_REJ_H2_PROTOCOL,    /* nghttp2 session error (bad preface, flood, ...) */
	EC_HTTP_REJ_H2_GLITCH,      /* invalid frame / reset budget exhausted */
	EC_HTTP_REJ_TLS,            /* handshake failed */
	EC_HTTP_REJ_N_
};

enum ec_http_conn_proto {
	EC_HTTP_CONN_NEW = 0, /* nothing read yet: preface or ALPN decides */
	EC_HTTP_CONN_H1,
	EC_HTTP_CONN_H2,
};

enum ec_http_tmode {
	EC_HTTP_TM_NONE = 0,
	EC_HTTP_TM_HEADER, /* request headers (or TLS handshake / h2 preface) must complete */
	EC_HTTP_TM_IDLE,   /* keep-alive, nothing in flight */
	EC_HTTP_TM_TICK,   /* h2 with open streams: periodic stall checks */
	EC_HTTP_TM_LINGER, /* closing: discarding input until EOF */
};

enum ec_http_rq_state {
	EC_HTTP_RQ_HEADERS = 0, /* h2: collecting header fields; h2 body wait */
	EC_HTTP_RQ_HANDLER,     /* with the handler, no response yet */
	EC_HTTP_RQ_BODY,        /* response headers queued, streamed body in progress */
	EC_HTTP_RQ_SENT,        /* whole response queued */
	EC_HTTP_RQ_DEAD,        /* finished: close callback pending or fired */
};

struct ec_http_ipent {
	struct ec_http_ipent *next;
	uint8_t addr[16];  /* IPv6, or IPv4-mapped */
	uint32_t count;    /* open connections from addr */
};

struct ec_http_conn;

/* A request: the public part first, so &rq->pub and rq convert both ways. */
struct ec_http_rq {
	struct ec_http_req pub;
	struct ec_http_conn *conn;       /* NULL once finished */
	struct ec_http_rq *next, *prev;  /* conn's open requests */
	struct ec_http_rq *znext;        /* zombie list, drain-notify list, or pool */
	int state;                       /* enum ec_http_rq_state */
	int32_t stream_id;               /* h2 only */
	unsigned is_dispatched : 1;      /* handler saw it (counts as inflight) */
	unsigned is_chunked : 1;         /* h1 body in chunked coding */
	unsigned no_body : 1;            /* HEAD, 204, 304: body bytes are dropped */
	unsigned keep_alive : 1;         /* h1: the client allows reuse */
	unsigned is_http10 : 1;          /* h1: request was HTTP/1.0 */
	unsigned is_ended : 1;           /* stream_end called (h2 data source EOF) */
	unsigned drain_armed : 1;        /* buffered passed low water: notify on drain */
	unsigned in_drain_q : 1;
	unsigned completed : 1;          /* close callback argument */
	unsigned wait_end : 1;           /* h2: HEADERS without END_STREAM, body not yet seen */
	unsigned rst_after_end : 1;      /* h2: refused request, reset after the response */
	int64_t body_left;               /* declared length still to write, -1 unknown */
	uint64_t body_sent;              /* body bytes of fully written output notes */
	uint32_t n_notes;                /* its notes still in the connection's output */
	struct ec_http_conn *oconn;      /* the connection its notes live on, until recycled */
	int64_t progress_us;             /* h2: last DATA sent, for stall checks */
	int64_t begin_us;                /* h2: HEADERS began */
	ec_http_close_cb close_cb;
	void *close_arg;
	ec_http_drain_cb drain_cb;
	void *drain_arg;
	/* header strings live in the arena; pointers are set once parsing completes */
	char *arena;
	size_t arena_len, arena_cap;
	struct ec_http_header *hdrs;
	size_t hdrs_cap;
	size_t hdr_bytes;                /* name+value bytes seen, against max_header_bytes */
	size_t n_fields;                 /* fields seen, against max_header_fields */
	uint32_t method_off, method_len; /* method_len 0: pub.method is a static string */
	uint32_t target_off, target_len;
	uint32_t auth_off, auth_len;
	int has_target, has_auth;
	/* h2 response body: in-memory bytes or a file range */
	struct evbuffer *body;
	struct evbuffer_file_segment *seg;
	uint64_t seg_off, seg_left;
	int seg_fd;                      /* the segment's file and where the range starts in it */
	off_t seg_base;
	struct ec_http_chunk *ra;        /* h2c: file bytes read ahead, from segment offset ra_off */
	uint64_t ra_off;
};

/* A block of file bytes read once and referenced by the DATA frames cut from it: freed when
 * the last frame left the output and its request let go. */
struct ec_http_chunk {
	unsigned refs;
	size_t len;
	unsigned char data[];
};

void ec_http_chunk_unref(struct ec_http_chunk *k);

struct ec_http_h1 {
	http_parser parser;
	size_t scan_off;       /* bytes of the pending header block already scanned */
	size_t line_start;     /* offset of the current line */
	size_t n_lines;        /* header lines so far */
	int seen_reqline;
	struct ec_http_rq *cur; /* the request being answered; the next waits in input */
	unsigned close_after : 1; /* close once the current response is flushed */
	unsigned is_broken : 1;   /* a bad request was answered: parse nothing more */
	/* parse-time state for the header callbacks */
	int last_cb;           /* 0 none, 1 field, 2 value */
	int n_cl, n_te, n_host;
	int bad;               /* status to answer, set by a callback */
	int bad_rej;
	const char *bad_msg;
};

struct ec_http_h2 {
	nghttp2_session *sess;
	size_t n_streams;        /* open requests */
	int got_frame;           /* the client preface and a frame arrived */
	double glitch_tokens;    /* budget of invalid frames and resets */
	int64_t glitch_us;
	struct ec_http_rq *drain_q; /* streams whose buffered data fell below low water */
	int send_paused;         /* a DATA frame paused serialization at a batch's end */
	int32_t last_sid;        /* the stream last looked up (0: none) ... */
	struct ec_http_rq *last_rq; /* ... and its request: the header callbacks of one
	                          * HEADERS block come in a row, each asking for it */
	uint8_t *stage;          /* while a flush runs: frames gathered on its stack ... */
	size_t staged;           /* ... this many bytes, not yet in the output */
};

/* Body bytes of one request that end at output position `end` (counted from the
 * connection's first output byte); popped once the socket took them. */
struct ec_http_note {
	struct ec_http_rq *rq;  /* NULL: its request was recycled */
	uint64_t end;
	uint64_t len;
	int is_file;            /* the bytes are a file segment (sendfile on plain sockets) */
};

struct ec_http_conn {
	unsigned magic;
	struct ec_http_server *srv;
	struct ec_http_conn *next, *prev; /* server's connections */
	struct ec_http_conn *wnext;       /* server's work list */
	struct bufferevent *bev;
	evutil_socket_t fd;
	int proto;                        /* enum ec_http_conn_proto */
	int tmode;                        /* enum ec_http_tmode */
	struct event tmr;                 /* armed lazily: see ec_http_conn_timer */
	int64_t t_due_us;                 /* when tmode's timeout is due (tmode != NONE) */
	int64_t t_armed_us;               /* when tmr fires; 0: not pending */
	struct ec_http_ipent *ip;
	struct sockaddr_storage peer, local;
	socklen_t peer_len;
	unsigned hold;                    /* >0: inside a callback; frees wait for release */
	unsigned is_tls : 1;
	unsigned is_closing : 1;          /* free at release */
	unsigned is_shutdown : 1;         /* no more requests; linger once output is out */
	unsigned is_linger : 1;
	unsigned in_work : 1;
	unsigned need_flush : 1;          /* h2 frames to serialize */
	unsigned read_paused : 1;         /* output above high water */
	unsigned peer_eof : 1;
	unsigned is_direct : 1;           /* plain socket: output is written by conn_push, input
	                                   * read by the connection's own read event */
	unsigned rd_want : 1;             /* reading wanted (direct) */
	unsigned rd_added : 1;            /* rev is in the event loop */
	unsigned wr_added : 1;            /* wev is: the socket was full (direct) */
	struct event rev;                 /* direct: the socket's read event */
	struct event wev;                 /* direct: waits for room, with the write timeout */
	size_t rd_high;                   /* direct: reading stops at this much input (0: none) */
	size_t linger_bytes;
	uint64_t out_sent;                /* output bytes taken by the socket (or TLS) */
	struct evbuffer_cb_entry *out_cb; /* counts them */
	struct ec_http_note *notes;       /* ring of body notes in output order */
	size_t notes_head, notes_len, notes_cap;
	size_t file_notes;                /* notes of file segments among them */
	struct ec_http_rq *reqs;          /* open requests */
	struct ec_http_rq *zombies;       /* finished, close callbacks pending */
	union {
		struct ec_http_h1 h1;
		struct ec_http_h2 h2;
	} u;
};

struct ec_http_listener {
	struct ec_http_listener *next;
	struct ec_http_server *srv;
	struct evconnlistener *lev;
	struct event *pause_ev;  /* re-enables lev after an accept error */
	int is_tls;
};

struct ec_http_server {
	unsigned magic;
	unsigned cb_depth;                /* connection callbacks on the stack */
	int64_t now_us;                   /* the clock, read once per callback (0: not yet) */
	struct ec_http_server_opts o;     /* defaults filled in */
	struct event_base *base;
	SSL_CTX *ssl_ctx;
	struct ec_http_listener *listeners;
	struct ec_http_conn *conns;
	struct ec_http_conn *work;        /* conns with deferred work */
	struct ec_http_conn *work_run;    /* the batch on_work is running now */
	struct event *work_ev;
	size_t n_conns, n_inflight;
	uint64_t next_id;
	int is_draining;
	/* per-IP connection counts */
	struct ec_http_ipent **ip_tab;
	size_t ip_mask;
	uint64_t ip_seed;
	/* timeouts, as libevent common timeouts */
	const struct timeval *tv_header, *tv_idle, *tv_linger, *tv_tick;
	struct timeval tv_write;
	size_t h1_raw_cap;                /* bytes a header block may take on the wire */
	/* recycled requests */
	struct ec_http_rq *pool;
	size_t n_pool;
	/* refusal log lines: at most EC_HTTP_LOG_PER_SEC, the rest counted */
	time_t log_sec;
	unsigned log_n, log_dropped;
	/* Date header, formatted once per second */
	time_t date_sec;
	char date[32];
	/* nghttp2 setup shared by every session */
	nghttp2_session_callbacks *h2_cbs;
	nghttp2_option *h2_opt;
	/* every session's memory: nghttp2 allocates and frees a few small blocks per stream */
	struct ec_slab *h2_slab;
	nghttp2_mem h2_mem;
	/* lowercase copies of EC_HTTP_HDR_NAME_OK names, by the literal's address, that
	 * nghttp2 takes by reference (ec_http_h2.c h2_name_lc) */
	struct {
		const char *name;
		size_t len;
		char *lc;
	} h2_lc[EC_HTTP_H2_LC_SLOTS];
	/* metrics (NULL without a registry) */
	struct ec_metric *m_accepted, *m_req_h1, *m_req_h2;
	struct ec_metric *m_rej[EC_HTTP_REJ_N_];
	char *m_names;                    /* series names, borrowed by the registry */
};

static inline struct ec_http_rq *ec_http_rq_of(struct ec_http_req *req)
{
	return (struct ec_http_rq *)req;
}

/* ec_http.c: shared by the engines */
struct ec_http_rq *ec_http_rq_new(struct ec_http_conn *c);
void ec_http_rq_finish(struct ec_http_rq *rq, int completed);
void ec_http_rq_discard(struct ec_http_rq *rq);
int ec_http_rq_reserve(struct ec_http_rq *rq, size_t n);
int ec_http_rq_put(struct ec_http_rq *rq, const char *s, size_t n, int lower, uint32_t *off);
int ec_http_rq_add_header(struct ec_http_rq *rq, const char *name, size_t nlen,
                          const char *value, size_t vlen);
int ec_http_rq_seal(struct ec_http_rq *rq);
void ec_http_rq_dispatch(struct ec_http_rq *rq);
/* Monotonic microseconds. Inside a connection callback, one reading serves everything the
 * callback does (an h2 read can carry a hundred requests); outside, a fresh one. */
static inline int64_t ec_http_now_us(struct ec_http_server *s)
{
	if (!s->cb_depth)
		return ec_now_us();
	if (!s->now_us)
		s->now_us = ec_now_us();
	return s->now_us;
}

void ec_http_conn_close(struct ec_http_conn *c);
void ec_http_conn_shutdown(struct ec_http_conn *c);
void ec_http_conn_schedule(struct ec_http_conn *c);
void ec_http_conn_timer(struct ec_http_conn *c, int mode);
void ec_http_reject(struct ec_http_server *s, enum ec_http_rej why);
void ec_http_log_refusal(struct ec_http_conn *c, uint64_t id, int status, const char *msg);
const char *ec_http_date(struct ec_http_server *s);
int ec_http_hdr_skip(const struct ec_http_header *h, size_t *nlen, size_t *vlen, int is_h2);
int ec_http_out_add(struct evbuffer *out, const void *p, size_t n);
/* Sends buf[0..n) on c's plain socket at once, bypassing the output buffer, which the
 * caller checked is empty; returns the bytes the socket took (counted in out_sent), 0 when
 * it took none. The caller queues the rest. */
size_t ec_http_send_now(struct ec_http_conn *c, const void *buf, size_t n);
int ec_http_out_note(struct ec_http_conn *c, struct ec_http_rq *rq, size_t len);
/* The same for a file segment just added: its header bytes go out with its first bytes. */
int ec_http_out_note_file(struct ec_http_conn *c, struct ec_http_rq *rq, size_t len);
void ec_http_conn_push(struct ec_http_conn *c);
/* Reading from the socket on or off, and the input length at which it pauses by itself
 * (0: never) until the protocol consumed some. */
void ec_http_conn_read(struct ec_http_conn *c, int on);
void ec_http_conn_read_high(struct ec_http_conn *c, size_t high);

/* ec_http_h1.c */
void ec_http_h1_on_read(struct ec_http_conn *c);
int ec_http_h1_on_bytes(struct ec_http_conn *c, const char *buf, size_t n);
/* Appends n bytes to c's input buffer (as a read would). Returns 0 or EC_ENOMEM. */
int ec_http_conn_in_add(struct ec_http_conn *c, const void *p, size_t n);
void ec_http_h1_on_write(struct ec_http_conn *c);
int ec_http_h1_drain_due(const struct ec_http_conn *c);
void ec_http_h1_on_eof(struct ec_http_conn *c);
void ec_http_h1_settle(struct ec_http_conn *c);
void ec_http_h1_on_timeout(struct ec_http_conn *c);
int ec_http_h1_respond(struct ec_http_rq *rq, int status, const struct ec_http_header *hdrs,
                       size_t n_hdrs, int64_t clen, int chunked_ok);
/* A whole small response from memory sent at once on a plain connection with nothing
 * queued (see ec_http_h1.c); EC_EAGAIN: not this path, use ec_http_h1_respond. */
int ec_http_h1_respond_direct(struct ec_http_rq *rq, int status,
                              const struct ec_http_header *hdrs, size_t n_hdrs, int64_t clen,
                              const void *body, size_t len);
int ec_http_h1_write(struct ec_http_rq *rq, const void *data, size_t len);
int ec_http_h1_file(struct ec_http_rq *rq, struct evbuffer_file_segment *seg, uint64_t len);
int ec_http_h1_end(struct ec_http_rq *rq);
void ec_http_h1_abort(struct ec_http_rq *rq);
size_t ec_http_h1_buffered(const struct ec_http_rq *rq);
void ec_http_h1_drain(struct ec_http_conn *c);

/* ec_http_h2.c */
int ec_http_h2_setup(struct ec_http_server *s);
void ec_http_h2_teardown(struct ec_http_server *s);
int ec_http_h2_start(struct ec_http_conn *c);
void ec_http_h2_stop(struct ec_http_conn *c);
void ec_http_h2_on_read(struct ec_http_conn *c);
void ec_http_h2_on_write(struct ec_http_conn *c);
void ec_http_h2_flush(struct ec_http_conn *c);
void ec_http_h2_settle(struct ec_http_conn *c);
void ec_http_h2_on_timeout(struct ec_http_conn *c, int mode);
int ec_http_h2_respond(struct ec_http_rq *rq, int status, const struct ec_http_header *hdrs,
                       size_t n_hdrs, int64_t clen, int has_body);
int ec_http_h2_write(struct ec_http_rq *rq, const void *data, size_t len);
int ec_http_h2_end(struct ec_http_rq *rq);
void ec_http_h2_abort(struct ec_http_rq *rq);
size_t ec_http_h2_buffered(const struct ec_http_rq *rq);
void ec_http_h2_drain(struct ec_http_conn *c);

#endif
