/* ec_http: the server core. Listeners, accepting and capping connections, TLS with ALPN,
 * protocol detection (h2 preface or ALPN), timers, request objects (pooled, one arena
 * each) and the public response API, which hands off to ec_http_h1.c or ec_http_h2.c.
 * Does not parse HTTP itself. Owns every connection and request until their free. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include "ec_err.h"
#include "ec_http_int.h"
#include "ec_scan.h"
#include "ec_log.h"
#include "ec_time.h"

static const char h2_preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
#define H2_PREFACE_LEN 24

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void on_rawwrite(evutil_socket_t fd, short what, void *arg);
static void conn_on_end(struct ec_http_conn *c, short what);
static void on_timer(evutil_socket_t fd, short what, void *arg);

/* ------------------------------------------------------------------------------------ */
/* small helpers */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static const char *tls_errstr(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e)
		return "unknown TLS error";
	ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

const char *ec_http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 303: return "See Other";
	case 304: return "Not Modified";
	case 307: return "Temporary Redirect";
	case 308: return "Permanent Redirect";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 417: return "Expectation Failed";
	case 421: return "Misdirected Request";
	case 422: return "Unprocessable Content";
	case 426: return "Upgrade Required";
	case 428: return "Precondition Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 505: return "HTTP Version Not Supported";
	default:
		break;
	}
	if (status >= 200 && status < 300) return "OK";
	if (status >= 300 && status < 400) return "Redirect";
	if (status >= 400 && status < 500) return "Client Error";
	return "Server Error";
}

/* RFC 9110 IMF-fixdate, rebuilt when the cached second changes. */
const char *ec_http_date(struct ec_http_server *s)
{
	static const char days[7][4] = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" };
	static const char mons[12][4] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                  "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
	struct timeval tv;
	struct tm tm;

	if (event_base_gettimeofday_cached(s->base, &tv) != 0)
		gettimeofday(&tv, NULL);
	if (tv.tv_sec == s->date_sec && s->date[0])
		return s->date;
	s->date_sec = tv.tv_sec;
	gmtime_r(&s->date_sec, &tm);
	snprintf(s->date, sizeof s->date, "%s, %02d %s %04d %02d:%02d:%02d GMT",
	         days[tm.tm_wday % 7], tm.tm_mday, mons[tm.tm_mon % 12], tm.tm_year + 1900,
	         tm.tm_hour, tm.tm_min, tm.tm_sec);
	return s->date;
}

/* Appends n bytes to a connection's output in chains sized for them. evbuffer_add sizes a
 * new chain after the last one, and a file-segment chain "measures" its file offset plus
 * length: a 9-byte frame header after a frame of a large file would otherwise allocate
 * that much. Returns 0 or -1 (allocation). */
int ec_http_out_add(struct evbuffer *out, const void *p, size_t n)
{
	struct evbuffer_iovec v[2];
	const char *src = p;
	int k, i;

	if (!n)
		return 0;
	k = evbuffer_reserve_space(out, (ev_ssize_t)n, v, 2);
	if (k < 1)
		return -1;
	for (i = 0; i < k && n; i++) {
		size_t m = v[i].iov_len < n ? v[i].iov_len : n;
		memcpy(v[i].iov_base, src, m);
		v[i].iov_len = m;
		src += m;
		n -= m;
	}
	return evbuffer_commit_space(out, v, i);
}

/* Records that the last `len` bytes of c's output are body bytes of rq, so that
 * ec_http_req_body_sent can tell when the socket took them. Returns 0 or EC_ENOMEM. */
static int out_note(struct ec_http_conn *c, struct ec_http_rq *rq, size_t len, int is_file)
{
	struct ec_http_note *n;

	if (!len)
		return 0;
	if (c->notes_len == c->notes_cap) {
		size_t cap = c->notes_cap ? c->notes_cap * 2 : 16, i;
		struct ec_http_note *p = malloc(cap * sizeof *p);
		if (!p)
			return EC_ENOMEM;
		for (i = 0; i < c->notes_len; i++)
			p[i] = c->notes[(c->notes_head + i) % c->notes_cap];
		free(c->notes);
		c->notes = p;
		c->notes_cap = cap;
		c->notes_head = 0;
	}
	n = &c->notes[(c->notes_head + c->notes_len) % c->notes_cap];
	n->rq = rq;
	n->end = c->out_sent + evbuffer_get_length(bufferevent_get_output(c->bev));
	n->len = len;
	n->is_file = is_file;
	c->file_notes += is_file != 0;
	c->notes_len++;
	rq->n_notes++;
	rq->oconn = c;
	return 0;
}

int ec_http_out_note(struct ec_http_conn *c, struct ec_http_rq *rq, size_t len)
{
	return out_note(c, rq, len, 0);
}

int ec_http_out_note_file(struct ec_http_conn *c, struct ec_http_rq *rq, size_t len)
{
	return out_note(c, rq, len, 1);
}

/* Output callback: counts what left the buffer and credits fully written notes. */
static void on_out_drained(struct evbuffer *buf, const struct evbuffer_cb_info *info,
                           void *arg)
{
	struct ec_http_conn *c = arg;

	if (!info->n_deleted)
		return;
	c->out_sent += info->n_deleted;
	while (c->notes_len) {
		struct ec_http_note *n = &c->notes[c->notes_head];
		if (n->end > c->out_sent)
			break;
		if (n->rq) {
			n->rq->body_sent += n->len;
			n->rq->n_notes--;
		}
		c->file_notes -= n->is_file != 0;
		c->notes_head = (c->notes_head + 1) % c->notes_cap;
		c->notes_len--;
	}
}

/* Drops rq's notes before it is recycled (their bytes may still be in the output). */
static void notes_forget(struct ec_http_rq *rq)
{
	struct ec_http_conn *c = rq->oconn;
	size_t i;

	for (i = 0; c && rq->n_notes && i < c->notes_len; i++) {
		struct ec_http_note *n = &c->notes[(c->notes_head + i) % c->notes_cap];
		if (n->rq == rq) {
			n->rq = NULL;
			rq->n_notes--;
		}
	}
	rq->n_notes = 0;
	rq->oconn = NULL;
}

static int ieq(const char *a, size_t alen, const char *lit)
{
	size_t n = strlen(lit);

	if (alen != n)
		return 0;
	return strncasecmp(a, lit, n) == 0;
}

/* 1 when a response header name must be dropped: empty, not a token, or one the server
 * owns. */
static int hdr_name_skip(const char *name, size_t nl, int is_h2)
{
	if (nl == 0 || ec_scan_token((const unsigned char *)name, nl) != nl)
		return 1;
	switch (nl) {
	case 2: return is_h2 && ieq(name, nl, "te");
	case 4: return ieq(name, nl, "date");
	case 7: return is_h2 && ieq(name, nl, "upgrade");
	case 10: return ieq(name, nl, "connection") || ieq(name, nl, "keep-alive");
	case 14: return ieq(name, nl, "content-length");
	case 16: return is_h2 && ieq(name, nl, "proxy-connection");
	case 17: return ieq(name, nl, "transfer-encoding");
	default: return 0;
	}
}

/* Decides whether a response header from the handler is sent. Fills the real lengths.
 * Returns 1 to skip: headers the server owns (Date, Content-Length, Transfer-Encoding,
 * Connection and, on h2, the other connection-specific ones) and any name or value that
 * would split the response (CR, LF, NUL, or an empty or non-token name). */
int ec_http_hdr_skip(const struct ec_http_header *h, size_t *nlen, size_t *vlen, int is_h2)
{
	size_t nl = h->name_len ? h->name_len : strlen(h->name);
	size_t vl = h->value_len ? h->value_len : strlen(h->value);

	*nlen = nl;
	*vlen = vl;
	if (h->flags & EC_HTTP_HDR_NAME_OK) {
#ifdef __SANITIZE_ADDRESS__
		/* the caller's promise, checked where the tests run */
		EC_ASSERT(!hdr_name_skip(h->name, nl, 0) && !hdr_name_skip(h->name, nl, 1));
#endif
	} else if (hdr_name_skip(h->name, nl, is_h2)) {
		return 1;
	}
	if (h->flags & EC_HTTP_HDR_VALUE_OK) {
#ifdef __SANITIZE_ADDRESS__
		EC_ASSERT(ec_scan_ctl((const unsigned char *)h->value, 0, vl) == vl);
#endif
		return 0;
	}
	return ec_scan_ctl((const unsigned char *)h->value, 0, vl) != vl;
}

void ec_http_reject(struct ec_http_server *s, enum ec_http_rej why)
{
	ec_metric_inc(s->m_rej[why]);
}

/* One info line per refused request, at most EC_HTTP_LOG_PER_SEC a second: a flood of bad
 * requests must not become a flood of log lines (the counters still see every one). */
void ec_http_log_refusal(struct ec_http_conn *c, uint64_t id, int status, const char *msg)
{
	struct ec_http_server *s = c->srv;
	struct timeval tv;
	char addr[INET6_ADDRSTRLEN + 8];

	if (event_base_gettimeofday_cached(s->base, &tv) != 0)
		gettimeofday(&tv, NULL);
	if (tv.tv_sec != s->log_sec) {
		if (s->log_dropped)
			ec_log_info("http: %u more refused requests not logged", s->log_dropped);
		s->log_sec = tv.tv_sec;
		s->log_n = 0;
		s->log_dropped = 0;
	}
	if (++s->log_n > EC_HTTP_LOG_PER_SEC) {
		s->log_dropped++;
		return;
	}
	if (c->peer.ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&c->peer)->sin6_addr, addr,
		          sizeof addr);
	else if (c->peer.ss_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&c->peer)->sin_addr, addr, sizeof addr);
	else
		strcpy(addr, "?");
	ec_log_info("http: request %llu from %s refused: %d %s; %s", (unsigned long long)id,
	            addr, status, msg, c->proto == EC_HTTP_CONN_H2 ? "resetting the stream"
	                                                           : "closing the connection");
}

/* ------------------------------------------------------------------------------------ */
/* requests */

/* Returns a request owned by c (freed through ec_http_rq_finish or _discard), from the
 * pool when one is there; NULL on allocation failure. */
struct ec_http_rq *ec_http_rq_new(struct ec_http_conn *c)
{
	struct ec_http_server *s = c->srv;
	struct ec_http_rq *rq = s->pool;

	if (rq) {
		s->pool = rq->znext;
		s->n_pool--;
	} else {
		rq = calloc(1, sizeof *rq);
		if (!rq)
			return NULL;
	}
	/* keep the buffers, clear the rest */
	{
		char *arena = rq->arena;
		size_t arena_cap = rq->arena_cap;
		struct ec_http_header *hdrs = rq->hdrs;
		size_t hdrs_cap = rq->hdrs_cap;
		struct evbuffer *body = rq->body;

		memset(rq, 0, sizeof *rq);
		rq->arena = arena;
		rq->arena_cap = arena_cap;
		rq->hdrs = hdrs;
		rq->hdrs_cap = hdrs_cap;
		rq->body = body;
	}
	rq->pub.magic = EC_HTTP_REQ_MAGIC;
	rq->pub.id = ++s->next_id;
	rq->pub.is_tls = c->is_tls;
	rq->pub.proto = c->proto == EC_HTTP_CONN_H2 ? EC_HTTP_H2 : EC_HTTP_H1;
	memcpy(&rq->pub.peer, &c->peer, sizeof c->peer);
	rq->pub.peer_len = c->peer_len;
	memcpy(&rq->pub.local, &c->local, sizeof c->local);
	rq->body_left = -1;
	rq->conn = c;
	rq->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = rq;
	c->reqs = rq;
	return rq;
}

static void rq_unlink(struct ec_http_rq *rq)
{
	struct ec_http_conn *c = rq->conn;

	if (rq->prev)
		rq->prev->next = rq->next;
	else
		c->reqs = rq->next;
	if (rq->next)
		rq->next->prev = rq->prev;
	rq->next = rq->prev = NULL;
}

/* Returns rq to the pool or frees it. Its close callback must have run. */
static void rq_recycle(struct ec_http_server *s, struct ec_http_rq *rq)
{
	notes_forget(rq);
	if (rq->seg) {
		evbuffer_file_segment_free(rq->seg);
		rq->seg = NULL;
	}
	if (rq->ra) {
		ec_http_chunk_unref(rq->ra);
		rq->ra = NULL;
	}
	if (rq->body)
		evbuffer_drain(rq->body, evbuffer_get_length(rq->body));
	rq->pub.magic = 0;
	if (s->n_pool >= EC_HTTP_POOL_MAX || rq->arena_cap > EC_HTTP_ARENA_KEEP) {
		free(rq->arena);
		free(rq->hdrs);
		if (rq->body)
			evbuffer_free(rq->body);
		free(rq);
		return;
	}
	rq->znext = s->pool;
	s->pool = rq;
	s->n_pool++;
}

/* Ends rq: unlinks it from its connection and queues its close callback, which runs when
 * no handler code is on the stack (at the connection's release or from the work event). */
void ec_http_rq_finish(struct ec_http_rq *rq, int completed)
{
	struct ec_http_conn *c = rq->conn;

	EC_ASSERT(rq->state != EC_HTTP_RQ_DEAD && c);
	rq_unlink(rq);
	if (rq->is_dispatched)
		c->srv->n_inflight--;
	rq->state = EC_HTTP_RQ_DEAD;
	rq->completed = completed ? 1 : 0;
	rq->znext = c->zombies;
	c->zombies = rq;
	if (!c->hold)
		ec_http_conn_schedule(c);
}

/* Frees a request the handler never saw (no close callback). */
void ec_http_rq_discard(struct ec_http_rq *rq)
{
	struct ec_http_server *s = rq->conn->srv;

	EC_ASSERT(!rq->is_dispatched);
	rq_unlink(rq);
	rq->conn = NULL;
	rq->state = EC_HTTP_RQ_DEAD;
	rq_recycle(s, rq);
}

/* Makes room for n more arena bytes. Returns 0 or EC_ENOMEM. */
int ec_http_rq_reserve(struct ec_http_rq *rq, size_t n)
{
	size_t need = rq->arena_len + n, cap;
	char *p;

	if (need > UINT32_MAX)
		return EC_ENOMEM;
	if (need <= rq->arena_cap)
		return 0;
	cap = rq->arena_cap ? rq->arena_cap : 1024;
	while (cap < need)
		cap *= 2;
	p = realloc(rq->arena, cap);
	if (!p)
		return EC_ENOMEM;
	rq->arena = p;
	rq->arena_cap = cap;
	return 0;
}

/* Appends n bytes (lowercased if asked) and a NUL to the arena; *off gets their offset.
 * Returns 0 or EC_ENOMEM. Pointers into the arena are set only by ec_http_rq_seal. */
int ec_http_rq_put(struct ec_http_rq *rq, const char *s, size_t n, int lower, uint32_t *off)
{
	char *d;

	if (ec_http_rq_reserve(rq, n + 1) != 0)
		return EC_ENOMEM;
	d = rq->arena + rq->arena_len;
	if (lower) {
		ec_scan_lower(d, s, n);
	} else if (n) {
		memcpy(d, s, n);
	}
	d[n] = '\0';
	*off = (uint32_t)rq->arena_len;
	rq->arena_len += n + 1;
	return 0;
}

/* Adds a header field; names are lowercased. Offsets are kept in the pointer fields until
 * ec_http_rq_seal. Returns 0 or EC_ENOMEM. */
int ec_http_rq_add_header(struct ec_http_rq *rq, const char *name, size_t nlen,
                          const char *value, size_t vlen)
{
	struct ec_http_header *h;
	uint32_t no, vo;

	if (rq->pub.n_headers == rq->hdrs_cap) {
		size_t cap = rq->hdrs_cap ? rq->hdrs_cap * 2 : 16;
		struct ec_http_header *p = realloc(rq->hdrs, cap * sizeof *p);
		if (!p)
			return EC_ENOMEM;
		rq->hdrs = p;
		rq->hdrs_cap = cap;
	}
	if (ec_http_rq_put(rq, name, nlen, 1, &no) || ec_http_rq_put(rq, value, vlen, 0, &vo))
		return EC_ENOMEM;
	h = &rq->hdrs[rq->pub.n_headers++];
	h->name = (const char *)(uintptr_t)no;
	h->name_len = nlen;
	h->value = (const char *)(uintptr_t)vo;
	h->value_len = vlen;
	h->flags = 0;
	return 0;
}

/* Turns the arena offsets into the public pointers and splits the target into path and
 * query. Returns 0, EC_ENOMEM, or EC_EINVAL for a target that is neither origin-form
 * ("/p?q") nor absolute-form ("http://host/p?q"). */
int ec_http_rq_seal(struct ec_http_rq *rq)
{
	const char *t;
	size_t tlen, plen, i, auth_at = 0, auth_len = 0, path_at = 0;
	uint32_t poff, qoff;
	size_t qlen;

	if (!rq->has_target)
		return EC_EINVAL;
	t = rq->arena + rq->target_off;
	tlen = rq->target_len;
	if (tlen && t[0] == '/') {
		path_at = 0;
	} else {
		size_t skip = 0;
		if (tlen > 7 && strncasecmp(t, "http://", 7) == 0)
			skip = 7;
		else if (tlen > 8 && strncasecmp(t, "https://", 8) == 0)
			skip = 8;
		else
			return EC_EINVAL;
		auth_at = skip;
		for (i = skip; i < tlen && t[i] != '/' && t[i] != '?'; i++)
			;
		auth_len = i - skip;
		if (!auth_len)
			return EC_EINVAL;
		path_at = i;
	}
	for (i = path_at; i < tlen && t[i] != '?'; i++)
		;
	plen = i - path_at;
	qlen = i < tlen ? tlen - i - 1 : 0;
	/* copies: path and query each need their own NUL (t may move on growth) */
	{
		uint32_t toff = rq->target_off;
		if (ec_http_rq_put(rq, rq->arena + toff + path_at, plen, 0, &poff))
			return EC_ENOMEM;
		if (ec_http_rq_put(rq, i < tlen ? rq->arena + toff + i + 1 : "", qlen, 0, &qoff))
			return EC_ENOMEM;
		if (auth_len) {
			if (ec_http_rq_put(rq, rq->arena + toff + auth_at, auth_len, 0,
			                   &rq->auth_off))
				return EC_ENOMEM;
			rq->auth_len = (uint32_t)auth_len;
			rq->has_auth = 1;
		}
	}
	/* the arena no longer grows: set the pointers */
	if (rq->method_len)
		rq->pub.method = rq->arena + rq->method_off;
	rq->pub.target = rq->arena + rq->target_off;
	rq->pub.target_len = tlen;
	rq->pub.path = plen ? rq->arena + poff : "/";
	rq->pub.path_len = plen ? plen : 1;
	rq->pub.query = rq->arena + qoff;
	rq->pub.authority = rq->has_auth ? rq->arena + rq->auth_off : "";
	for (i = 0; i < rq->pub.n_headers; i++) {
		struct ec_http_header *h = &rq->hdrs[i];
		h->name = rq->arena + (uintptr_t)h->name;
		h->value = rq->arena + (uintptr_t)h->value;
	}
	rq->pub.headers = rq->hdrs;
	return 0;
}

/* Hands a complete, valid request to the handler. */
void ec_http_rq_dispatch(struct ec_http_rq *rq)
{
	struct ec_http_conn *c = rq->conn;
	struct ec_http_server *s = c->srv;

	rq->state = EC_HTTP_RQ_HANDLER;
	rq->is_dispatched = 1;
	rq->pub.is_start_now = !s->cb_depth || !s->now_us;
	rq->pub.start_us = ec_http_now_us(s);
	s->n_inflight++;
	ec_metric_inc(rq->pub.proto == EC_HTTP_H2 ? s->m_req_h2 : s->m_req_h1);
	s->o.handler(&rq->pub, s->o.handler_arg);
}

/* ------------------------------------------------------------------------------------ */
/* per-IP connection counts */

static void ip_key(const struct sockaddr *sa, uint8_t out[16])
{
	memset(out, 0, 16);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		out[10] = out[11] = 0xff;
		memcpy(out + 12, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		memcpy(out, &in6->sin6_addr, 16);
	}
}

/* keyed, so a client cannot choose addresses that share a bucket */
static size_t ip_hash(const struct ec_http_server *s, const uint8_t a[16])
{
	uint64_t x, y, h;

	memcpy(&x, a, 8);
	memcpy(&y, a + 8, 8);
	h = (x ^ s->ip_seed) * 0x9e3779b97f4a7c15ull;
	h ^= h >> 29;
	h = (h + y) * 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	h = (h ^ (s->ip_seed >> 17)) * 0x94d049bb133111ebull;
	h ^= h >> 31;
	return (size_t)h & s->ip_mask;
}

/* Returns the entry for sa with its count incremented, or NULL when the address is at
 * its cap (*over = 1) or on allocation failure (*over = 0). */
static struct ec_http_ipent *ip_acquire(struct ec_http_server *s, const struct sockaddr *sa,
                                        int *over)
{
	uint8_t key[16];
	struct ec_http_ipent *e;
	size_t b;

	*over = 0;
	ip_key(sa, key);
	b = ip_hash(s, key);
	for (e = s->ip_tab[b]; e; e = e->next)
		if (memcmp(e->addr, key, 16) == 0)
			break;
	if (!e) {
		e = calloc(1, sizeof *e);
		if (!e)
			return NULL;
		memcpy(e->addr, key, 16);
		e->next = s->ip_tab[b];
		s->ip_tab[b] = e;
	}
	if (e->count >= s->o.max_conns_per_ip) { /* max >= 1: e is not a fresh entry */
		*over = 1;
		return NULL;
	}
	e->count++;
	return e;
}

static void ip_release(struct ec_http_server *s, struct ec_http_ipent *e)
{
	struct ec_http_ipent **pp;
	size_t b;

	if (!e || --e->count > 0)
		return;
	b = ip_hash(s, e->addr);
	for (pp = &s->ip_tab[b]; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			free(e);
			return;
		}
	}
	EC_ASSERT(0);
}

/* ------------------------------------------------------------------------------------ */
/* connections */

/* Sets the connection timer's mode (EC_HTTP_TM_NONE: nothing is due). The timer is
 * lazy: setting a mode records when it is due, and the event is only (re)armed when that
 * is earlier than the pending expiry. A later deadline, or NONE, leaves the event as it
 * is: when it fires, on_timer re-arms it for what is left, or does nothing. A keep-alive connection whose requests each arrive whole thus costs no
 * event_add/event_del per request, only one re-arm per idle period. */
void ec_http_conn_timer(struct ec_http_conn *c, int mode)
{
	struct ec_http_server *s = c->srv;
	const struct timeval *tv = NULL;
	int64_t ms = 0;

	if (c->tmode == mode && mode != EC_HTTP_TM_HEADER && mode != EC_HTTP_TM_IDLE)
		return;
	c->tmode = mode;
	switch (mode) {
	case EC_HTTP_TM_HEADER: tv = s->tv_header; ms = s->o.header_timeout_ms; break;
	case EC_HTTP_TM_IDLE: tv = s->tv_idle; ms = s->o.idle_timeout_ms; break;
	case EC_HTTP_TM_TICK: tv = s->tv_tick; ms = EC_HTTP_H2_TICK_MS; break;
	case EC_HTTP_TM_LINGER: tv = s->tv_linger; ms = EC_HTTP_LINGER_MS; break;
	default: return; /* NONE: a pending event finds nothing due */
	}
	c->t_due_us = ec_http_now_us(s) + ms * 1000;
	if (c->t_armed_us != 0 && c->t_armed_us <= c->t_due_us)
		return;
	event_add(&c->tmr, tv);
	c->t_armed_us = c->t_due_us;
}

/* on_timer's check: 1 when the mode's deadline has come (within EC_HTTP_TIMER_SLACK_US,
 * as libevent's coarse clock may fire a little early), else re-arms for what is left. */
static int conn_timer_due(struct ec_http_conn *c)
{
	int64_t now = ec_now_us(), left;
	struct timeval tv;

	c->t_armed_us = 0;
	if (c->tmode == EC_HTTP_TM_NONE)
		return 0;
	left = c->t_due_us - now;
	if (left <= EC_HTTP_TIMER_SLACK_US)
		return 1;
	tv.tv_sec = left / 1000000;
	tv.tv_usec = left % 1000000;
	event_add(&c->tmr, &tv);
	c->t_armed_us = c->t_due_us;
	return 0;
}

static void on_work(evutil_socket_t fd, short what, void *arg);

/* Queues c for the work event: used when an API call (handler code on the stack) left
 * something to do - frames to flush, close callbacks to run, a close to finish. */
void ec_http_conn_schedule(struct ec_http_conn *c)
{
	struct ec_http_server *s = c->srv;

	if (c->in_work)
		return;
	c->in_work = 1;
	c->wnext = s->work;
	s->work = c;
	event_active(s->work_ev, EV_TIMEOUT, 0);
}

static void work_remove(struct ec_http_conn *c)
{
	struct ec_http_conn **pp;

	if (!c->in_work)
		return;
	for (pp = &c->srv->work; *pp; pp = &(*pp)->wnext) {
		if (*pp == c) {
			*pp = c->wnext;
			c->in_work = 0;
			return;
		}
	}
	for (pp = &c->srv->work_run; *pp; pp = &(*pp)->wnext) {
		if (*pp == c) {
			*pp = c->wnext;
			break;
		}
	}
	c->in_work = 0;
}

/* Marks c for closing now (pending output is dropped). The free happens at release. */
void ec_http_conn_close(struct ec_http_conn *c)
{
	c->is_closing = 1;
	if (!c->hold)
		ec_http_conn_schedule(c);
}

static void linger_start(struct ec_http_conn *c)
{
	if (c->is_linger)
		return;
	c->is_linger = 1;
	if (c->is_tls) {
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		if (ssl && SSL_is_init_finished(ssl))
			SSL_shutdown(ssl);
	}
	/* FIN now, then read and discard what the client had in flight: closing with unread
	 * input would reset the connection and could destroy the response */
	shutdown(c->fd, SHUT_WR);
	if (c->is_direct) {
		if (c->wr_added)
			event_del(&c->wev);
		c->wr_added = 0;
	} else {
		bufferevent_disable(c->bev, EV_WRITE);
	}
	ec_http_conn_read_high(c, 0);
	ec_http_conn_read(c, 1);
	ec_http_conn_timer(c, EC_HTTP_TM_LINGER);
}

/* Graceful close: no new requests; once the output is flushed, FIN and linger. */
void ec_http_conn_shutdown(struct ec_http_conn *c)
{
	c->is_shutdown = 1;
	if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		linger_start(c);
	else if (!c->hold)
		ec_http_conn_schedule(c);
}

static void conn_free(struct ec_http_conn *c)
{
	struct ec_http_server *s = c->srv;
	struct ec_http_rq *rq;

	c->hold = 1; /* calls from close callbacks only queue */
	work_remove(c);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	ip_release(s, c->ip);
	event_del(&c->tmr);
	c->t_armed_us = 0;
	if (c->rd_added)
		event_del(&c->rev);
	if (c->wr_added)
		event_del(&c->wev);
	if (c->proto == EC_HTTP_CONN_H2)
		ec_http_h2_stop(c);
	while ((rq = c->reqs)) {
		if (rq->is_dispatched)
			ec_http_rq_finish(rq, 0);
		else
			ec_http_rq_discard(rq);
	}
	while ((rq = c->zombies)) {
		c->zombies = rq->znext;
		rq->conn = NULL;
		if (rq->close_cb)
			rq->close_cb(&rq->pub, rq->close_arg, rq->completed);
		rq_recycle(s, rq);
	}
	if (c->bev) {
		if (c->out_cb) /* the buffer may outlive c inside libevent */
			evbuffer_remove_cb_entry(bufferevent_get_output(c->bev), c->out_cb);
		bufferevent_free(c->bev); /* closes fd (and frees the SSL) */
	}
	free(c->notes);
	c->magic = 0;
	free(c);
}

/* Plain connections keep their read event in the loop exactly while reading is wanted and
 * the input is below its high water; called whenever either may have changed. */
static void conn_read_sync(struct ec_http_conn *c)
{
	int want;

	if (!c->is_direct)
		return;
	want = c->rd_want && !c->is_closing &&
	       (!c->rd_high || evbuffer_get_length(bufferevent_get_input(c->bev)) < c->rd_high);
	if (want && !c->rd_added) {
		if (event_add(&c->rev, NULL) == 0)
			c->rd_added = 1;
	} else if (!want && c->rd_added) {
		event_del(&c->rev);
		c->rd_added = 0;
	}
}

void ec_http_conn_read(struct ec_http_conn *c, int on)
{
	if (!c->is_direct) {
		if (on)
			bufferevent_enable(c->bev, EV_READ);
		else
			bufferevent_disable(c->bev, EV_READ);
		return;
	}
	c->rd_want = on != 0;
	conn_read_sync(c);
}

void ec_http_conn_read_high(struct ec_http_conn *c, size_t high)
{
	if (!c->is_direct) {
		bufferevent_setwatermark(c->bev, EV_READ, 0, high);
		return;
	}
	c->rd_high = high;
	conn_read_sync(c);
}

/* Bytes at the front of c's output before the next file segment: all `len` when none
 * is queued, 0 when the front is one. */
static size_t out_mem_run(const struct ec_http_conn *c, size_t len)
{
	size_t i;

	if (!c->file_notes)
		return len;
	for (i = 0; i < c->notes_len; i++) {
		const struct ec_http_note *n = &c->notes[(c->notes_head + i) % c->notes_cap];
		if (n->is_file) {
			uint64_t start = n->end - n->len;
			return start <= c->out_sent ? 0 : (size_t)(start - c->out_sent);
		}
	}
	return len;
}

/* Writes the first `mem` bytes of the output (memory) with MSG_MORE: the file segment
 * that follows joins them in the same TCP segments, instead of a tiny segment of its own
 * for an HTTP/1.1 header block or each 9-byte DATA frame header (what TCP_NOPUSH does for
 * nginx). The sendfile right after ends the hold. Returns what send returned. */
static ssize_t out_send_more(struct ec_http_conn *c, struct evbuffer *out, size_t mem)
{
	struct evbuffer_iovec v[16];
	struct iovec iov[16];
	struct msghdr mh;
	size_t left = mem;
	ssize_t n;
	int k, i;

	k = evbuffer_peek(out, (ev_ssize_t)mem, NULL, v, 16);
	if (k > 16)
		k = 16;
	for (i = 0; i < k && left; i++) {
		size_t m = v[i].iov_len < left ? v[i].iov_len : left;
		iov[i].iov_base = v[i].iov_base;
		iov[i].iov_len = m;
		left -= m;
	}
	memset(&mh, 0, sizeof mh);
	mh.msg_iov = iov;
	mh.msg_iovlen = (size_t)i;
	n = sendmsg(c->fd, &mh, MSG_MORE | MSG_NOSIGNAL);
	if (n > 0)
		evbuffer_drain(out, (size_t)n);
	return n;
}

/* Plain connections: writes the output straight to the socket (the bufferevent only
 * keeps the buffers), without a round through the event loop while the socket keeps up,
 * at most EC_HTTP_PUSH_BUDGET bytes a turn. Returns 1 when the output is empty; otherwise
 * the connection's write event takes over: it fires when there is room again (or at once
 * when the budget ran out), or after the write timeout without progress. A failed write
 * closes the connection. from_event: called by that event (else a large HTTP/1.1 output
 * waits for it, so that a handler's response never writes megabytes before it returns). */
static int conn_push_out(struct ec_http_conn *c, int from_event)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len, mem, done = 0;
	ssize_t n = 1;

	len = evbuffer_get_length(out);
	if (len == 0) {
		/* the common end of a direct answer: nothing was queued */
		if (c->wr_added) {
			event_del(&c->wev);
			c->wr_added = 0;
		}
		return 1;
	}
	if (!from_event && c->proto == EC_HTTP_CONN_H1 && len > EC_HTTP_MAX_WRITE)
		goto wait;
	/* the bufferevent keeps its output's front frozen except while it writes */
	evbuffer_unfreeze(out, 1);
	while ((len = evbuffer_get_length(out)) && done < EC_HTTP_PUSH_BUDGET) {
		mem = out_mem_run(c, len);
		/* libevent's sendfile answers 0 both for a full socket (errno EAGAIN) and for
		 * the end of the file (errno untouched) */
		errno = 0;
		if (mem && mem < len)
			n = out_send_more(c, out, mem);
		else
			n = evbuffer_write_atmost(out, c->fd, EC_HTTP_MAX_WRITE);
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	evbuffer_freeze(out, 1);
	if (n <= 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		/* the peer is gone, or a file under a response shrank: nothing more goes out */
		ec_log_debug("http: write failed: %s; closing",
		             errno ? strerror(errno) : "file shorter than announced");
		ec_http_conn_close(c);
		return 0;
	}
	if (!evbuffer_get_length(out)) {
		if (c->wr_added) {
			event_del(&c->wev);
			c->wr_added = 0;
		}
		return 1;
	}
wait:
	if (!c->wr_added && event_add(&c->wev, &c->srv->tv_write) == 0)
		c->wr_added = 1;
	return 0;
}

size_t ec_http_send_now(struct ec_http_conn *c, const void *buf, size_t n)
{
	ssize_t r;

	do
		r = send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	/* r < 0: EAGAIN queues it all; another error shows again on the queued write */
	if (r <= 0)
		return 0;
	c->out_sent += (size_t)r;
	return (size_t)r;
}

void ec_http_conn_push(struct ec_http_conn *c)
{
	if (c->is_direct && !c->is_linger && !c->is_closing)
		conn_push_out(c, 0);
}

static void conn_hold(struct ec_http_conn *c)
{
	if (c->hold++ == 0 && c->srv->cb_depth++ == 0)
		c->srv->now_us = 0; /* a new callback reads the clock afresh */
}

/* Rounds of push, settle and close callbacks one release makes before it leaves the
 * rest to the next turn of the loop. */
#define CONN_RELEASE_ROUNDS 64

/* Leaves a callback: with nothing else on the stack, does the deferred work - flushes
 * h2 frames, runs close callbacks, moves h1 to its next request - and frees c when it
 * is closing. */
static void conn_release(struct ec_http_conn *c)
{
	struct ec_http_rq *rq;
	int guard;

	EC_ASSERT(c->hold > 0);
	if (c->hold > 1) {
		c->hold--;
		return;
	}
	for (guard = 0; guard < CONN_RELEASE_ROUNDS && !c->is_closing; guard++) {
		int flushed = 1;
		if (c->is_direct && !c->is_linger) {
			flushed = conn_push_out(c, 0);
			/* no write callback follows a direct write: wake a producer here */
			if (c->proto == EC_HTTP_CONN_H1 && !c->is_closing)
				ec_http_h1_on_write(c);
		}
		if (c->proto == EC_HTTP_CONN_H2)
			ec_http_h2_settle(c);
		else if (c->proto == EC_HTTP_CONN_H1)
			ec_http_h1_settle(c);
		if (!c->zombies) {
			/* settling queued more output (the next pipelined answer): push it too */
			if (c->is_closing || !c->is_direct || c->is_linger || !flushed ||
			    !evbuffer_get_length(bufferevent_get_output(c->bev)))
				break;
			continue;
		}
		while ((rq = c->zombies)) {
			c->zombies = rq->znext;
			rq->conn = NULL;
			if (rq->close_cb)
				rq->close_cb(&rq->pub, rq->close_arg, rq->completed);
			rq_recycle(c->srv, rq);
		}
	}
	/* The guard ran out: a producer kept refilling a socket that keeps up, or a reader
	 * that lags took pipelined answers a little at a time. The rest - a drain callback,
	 * an answered request to settle and the next one to start - runs on the next turn of
	 * the loop, after other events. Output still queued needs nothing here: the write
	 * event is armed while it waits, and writing it belongs in a round, whose settle
	 * then sees the answer out (a write after the last round would leave it unsettled,
	 * with the requests pipelined behind it waiting for an event that never comes). */
	if (guard == CONN_RELEASE_ROUNDS && !c->is_closing)
		ec_http_conn_schedule(c);
	if (!c->is_closing && c->is_shutdown && !c->is_linger &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0)
		linger_start(c);
	if (c->is_closing) {
		struct ec_http_server *s = c->srv;
		conn_free(c);
		s->cb_depth--;
		return;
	}
	conn_read_sync(c); /* the protocol may have consumed input below high water */
	c->hold = 0;
	c->srv->cb_depth--;
}

static void on_work(evutil_socket_t fd, short what, void *arg)
{
	struct ec_http_server *s = arg;
	struct ec_http_conn *c;

	/* one batch: connections scheduled while it runs wait for the next turn of the
	 * loop, so a connection that keeps scheduling itself cannot starve the others */
	s->work_run = s->work;
	s->work = NULL;
	while ((c = s->work_run)) {
		s->work_run = c->wnext;
		c->in_work = 0;
		conn_hold(c);
		conn_release(c);
	}
}

/* Chooses the protocol once the first bytes (plain) or the handshake (TLS) are in. Returns
 * 0 when decided, 1 to wait for more bytes, or a negative code (c is closing). */
static int conn_detect(struct ec_http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	int h2 = 0;

	if (c->is_tls) {
		const unsigned char *alpn = NULL;
		unsigned alpn_len = 0;
		SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
		SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
		h2 = alpn_len == 2 && memcmp(alpn, "h2", 2) == 0;
	} else {
		size_t n = evbuffer_get_length(in);
		size_t m = n < H2_PREFACE_LEN ? n : H2_PREFACE_LEN;
		const unsigned char *p = evbuffer_pullup(in, (ev_ssize_t)m);
		if (!p || memcmp(p, h2_preface, m) != 0)
			h2 = 0;
		else if (m < H2_PREFACE_LEN)
			return 1; /* could still be the preface */
		else
			h2 = 1;
	}
	if (h2) {
		c->proto = EC_HTTP_CONN_H2;
		if (ec_http_h2_start(c) != 0) {
			ec_http_conn_close(c);
			return EC_ENOMEM;
		}
	} else {
		c->proto = EC_HTTP_CONN_H1;
		memset(&c->u.h1, 0, sizeof c->u.h1);
		ec_http_conn_read_high(c, c->srv->h1_raw_cap + 1);
	}
	return 0;
}

/* New input is in: hands it to the protocol (or discards it while lingering). */
static void conn_input(struct ec_http_conn *c)
{
	if (c->is_linger) {
		struct evbuffer *in = bufferevent_get_input(c->bev);
		size_t n = evbuffer_get_length(in);
		c->linger_bytes += n;
		evbuffer_drain(in, n);
		if (c->linger_bytes > EC_HTTP_LINGER_BYTES)
			ec_http_conn_close(c);
	} else if (c->is_closing || c->is_shutdown) {
		/* answered and closing: what follows a bad request is never processed */
	} else if (c->proto == EC_HTTP_CONN_NEW && conn_detect(c) != 0) {
		/* waiting for more of the preface, or failed */
	} else if (c->proto == EC_HTTP_CONN_H2) {
		ec_http_h2_on_read(c);
	} else if (c->proto == EC_HTTP_CONN_H1) {
		ec_http_h1_on_read(c);
	}
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct ec_http_conn *c = arg;

	(void)bev;
	EC_ASSERT(c->magic == EC_HTTP_CONN_MAGIC);
	conn_hold(c);
	conn_input(c);
	conn_release(c);
}

/* Plain connections: one recv() straight into the input buffer per readiness (the epoll
 * loop is level-triggered, so what is left comes next turn), without the FIONREAD probe
 * and the readv the bufferevent would make. */
static void on_rawread(evutil_socket_t fd, short what, void *arg)
{
	struct ec_http_conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	char buf[EC_HTTP_READ_CHUNK];
	size_t room = sizeof buf;
	ssize_t n;

	(void)what;
	EC_ASSERT(c->magic == EC_HTTP_CONN_MAGIC);
	if (c->rd_high) {
		size_t len = evbuffer_get_length(in);
		if (len >= c->rd_high) {
			conn_read_sync(c);
			return;
		}
		if (c->rd_high - len < room)
			room = c->rd_high - len;
	}
	/* into the stack, then a chain sized for what came (a request is ~100 bytes; a
	 * reserved 16 KiB chain would be a large allocation and free per request) */
	n = recv(fd, buf, room, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	conn_hold(c);
	if (n <= 0) {
		conn_on_end(c, n == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR);
	} else if (c->proto == EC_HTTP_CONN_H1 && !c->is_linger && !c->is_closing &&
	           !c->is_shutdown && evbuffer_get_length(in) == 0 &&
	           ec_http_h1_on_bytes(c, buf, (size_t)n) == 0) {
		/* most reads bring one whole request: it was parsed where it lies */
	} else if (ec_http_conn_in_add(c, buf, (size_t)n) != 0) {
		ec_http_conn_close(c);
	} else {
		conn_input(c);
	}
	conn_release(c);
}

int ec_http_conn_in_add(struct ec_http_conn *c, const void *p, size_t n)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);
	int r;

	/* the bufferevent keeps its input's end frozen except while it reads */
	evbuffer_unfreeze(in, 0);
	r = evbuffer_add(in, p, n);
	evbuffer_freeze(in, 0);
	return r == 0 ? 0 : EC_ENOMEM;
}

static void on_write(struct bufferevent *bev, void *arg)
{
	struct ec_http_conn *c = arg;

	EC_ASSERT(c->magic == EC_HTTP_CONN_MAGIC);
	conn_hold(c);
	if (!c->is_closing && !c->is_linger) {
		if (c->proto == EC_HTTP_CONN_H2)
			ec_http_h2_on_write(c);
		else if (c->proto == EC_HTTP_CONN_H1)
			ec_http_h1_on_write(c);
	}
	conn_release(c);
}

/* Plain connections: the socket has room again (or the budget of the last turn ran out),
 * or nothing moved for the write timeout. */
static void on_rawwrite(evutil_socket_t fd, short what, void *arg)
{
	struct ec_http_conn *c = arg;

	(void)fd;
	EC_ASSERT(c->magic == EC_HTTP_CONN_MAGIC);
	conn_hold(c);
	if (what & EV_TIMEOUT) {
		conn_on_end(c, BEV_EVENT_WRITING | BEV_EVENT_TIMEOUT);
	} else if (!c->is_closing && !c->is_linger) {
		conn_push_out(c, 1);
		if (c->is_closing) {
			/* the write failed */
		} else if (c->proto == EC_HTTP_CONN_H2) {
			ec_http_h2_on_write(c);
		} else if (c->proto == EC_HTTP_CONN_H1) {
			ec_http_h1_on_write(c);
		}
	}
	conn_release(c);
}

/* The bufferevent's events, and the end of a plain connection's input: c is held. */
static void conn_on_end(struct ec_http_conn *c, short what)
{
	if (what & BEV_EVENT_CONNECTED) {
		/* TLS handshake done: ALPN decides the protocol */
		if (c->proto == EC_HTTP_CONN_NEW)
			conn_detect(c);
	} else if (what & BEV_EVENT_TIMEOUT) {
		ec_http_reject(c->srv, EC_HTTP_REJ_WRITE_TIMEOUT);
		ec_http_conn_close(c);
	} else if (what & BEV_EVENT_ERROR) {
		if (c->is_tls && c->proto == EC_HTTP_CONN_NEW) {
			unsigned long e = bufferevent_get_openssl_error(c->bev);
			ec_http_reject(c->srv, EC_HTTP_REJ_TLS);
			if (ec_log_enabled(EC_LOG_DEBUG)) {
				char buf[256] = "connection closed during the handshake";
				if (e)
					ERR_error_string_n(e, buf, sizeof buf);
				ec_log_debug("http: TLS handshake failed: %s; closing", buf);
			}
		}
		ERR_clear_error();
		ec_http_conn_close(c);
	} else if (what & BEV_EVENT_EOF) {
		c->peer_eof = 1;
		if (c->proto == EC_HTTP_CONN_H1 && !c->is_linger && !c->is_shutdown) {
			ec_http_conn_read(c, 0);
			ec_http_h1_on_eof(c);
		} else {
			ec_http_conn_close(c);
		}
	}
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	struct ec_http_conn *c = arg;

	(void)bev;
	EC_ASSERT(c->magic == EC_HTTP_CONN_MAGIC);
	conn_hold(c);
	conn_on_end(c, what);
	conn_release(c);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct ec_http_conn *c = arg;
	int mode = c->tmode;

	EC_ASSERT(c->magic == EC_HTTP_CONN_MAGIC);
	if (!conn_timer_due(c))
		return;
	conn_hold(c);
	c->tmode = EC_HTTP_TM_NONE;
	switch (mode) {
	case EC_HTTP_TM_LINGER:
	case EC_HTTP_TM_IDLE:
		if (c->proto == EC_HTTP_CONN_H2 && mode == EC_HTTP_TM_IDLE)
			ec_http_h2_on_timeout(c, mode);
		else
			ec_http_conn_close(c);
		break;
	case EC_HTTP_TM_HEADER:
		ec_http_reject(c->srv, EC_HTTP_REJ_HEADER_TIMEOUT);
		if (c->proto == EC_HTTP_CONN_H1)
			ec_http_h1_on_timeout(c);
		else
			ec_http_conn_close(c);
		break;
	case EC_HTTP_TM_TICK:
		ec_http_h2_on_timeout(c, mode);
		break;
	default:
		break;
	}
	conn_release(c);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
	struct ec_http_listener *l = arg;
	struct ec_http_server *s = l->srv;
	struct ec_http_conn *c;
	struct ec_http_ipent *ip;
	socklen_t llen;
	int one = 1, over;

	ec_metric_inc(s->m_accepted);
	if (s->is_draining) {
		evutil_closesocket(fd);
		return;
	}
	if (s->n_conns >= s->o.max_conns) {
		ec_http_reject(s, EC_HTTP_REJ_CONN_LIMIT);
		evutil_closesocket(fd);
		return;
	}
	ip = ip_acquire(s, sa, &over);
	if (!ip) {
		if (over)
			ec_http_reject(s, EC_HTTP_REJ_IP_LIMIT);
		evutil_closesocket(fd);
		return;
	}
	c = calloc(1, sizeof *c);
	if (!c) {
		ip_release(s, ip);
		evutil_closesocket(fd);
		return;
	}
	c->magic = EC_HTTP_CONN_MAGIC;
	c->srv = s;
	c->fd = fd;
	c->ip = ip;
	c->is_tls = l->is_tls;
	if (salen > 0 && (size_t)salen <= sizeof c->peer)
		memcpy(&c->peer, sa, (size_t)salen);
	c->peer_len = (socklen_t)salen;
	llen = sizeof c->local;
	if (getsockname(fd, (struct sockaddr *)&c->local, &llen) != 0)
		memset(&c->local, 0, sizeof c->local);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (l->is_tls) {
		SSL *ssl = SSL_new(s->ssl_ctx);
		if (ssl)
			c->bev = bufferevent_openssl_socket_new(s->base, fd, ssl,
			                                        BUFFEREVENT_SSL_ACCEPTING,
			                                        BEV_OPT_CLOSE_ON_FREE |
			                                        BEV_OPT_DEFER_CALLBACKS);
		if (!c->bev && ssl)
			SSL_free(ssl);
		if (c->bev)
			bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
	} else {
		c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	}
	if (!c->bev) {
		ip_release(s, ip);
		evutil_closesocket(fd);
		free(c);
		return;
	}
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	event_assign(&c->tmr, s->base, -1, 0, on_timer, c);
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_timeouts(c->bev, NULL, &s->tv_write);
	bufferevent_set_max_single_write(c->bev, EC_HTTP_MAX_WRITE);
	c->out_cb = evbuffer_add_cb(bufferevent_get_output(c->bev), on_out_drained, c);
	/* plain sockets are written by conn_push (the write event only waits for room) and
	 * read by their own event; TLS goes through the bufferevent both ways */
	c->is_direct = !l->is_tls;
	if (c->is_direct) {
		bufferevent_disable(c->bev, EV_WRITE); /* new bufferevents start with it on */
		event_assign(&c->rev, s->base, fd, EV_READ | EV_PERSIST, on_rawread, c);
		event_assign(&c->wev, s->base, fd, EV_WRITE | EV_PERSIST, on_rawwrite, c);
	}
	ec_http_conn_read_high(c, s->h1_raw_cap + 1);
	ec_http_conn_read(c, 1);
	if (!c->is_direct)
		bufferevent_enable(c->bev, EV_WRITE);
	/* a new connection gets the header timeout: it must say something soon */
	ec_http_conn_timer(c, EC_HTTP_TM_HEADER);
}

/* ------------------------------------------------------------------------------------ */
/* TLS */

static int tls_on_alpn(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
	const unsigned char *h1 = NULL;
	unsigned i;

	for (i = 0; i < inlen; i += 1u + in[i]) {
		unsigned n = in[i];
		if (i + 1 + n > inlen)
			break;
		if (n == 2 && memcmp(in + i + 1, "h2", 2) == 0) {
			*out = in + i + 1;
			*outlen = 2;
			return SSL_TLSEXT_ERR_OK;
		}
		if (n == 8 && memcmp(in + i + 1, "http/1.1", 8) == 0)
			h1 = in + i + 1;
	}
	if (h1) {
		*out = h1;
		*outlen = 8;
		return SSL_TLSEXT_ERR_OK;
	}
	return SSL_TLSEXT_ERR_NOACK; /* no ALPN: HTTP/1.1 */
}

/* Returns a new SSL_CTX owned by the caller, or NULL with the reason in err. */
static SSL_CTX *tls_ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
	char buf[256];
	SSL_CTX *ctx;

	ctx = SSL_CTX_new(TLS_server_method());
	if (!ctx) {
		set_err(err, errlen, "TLS: %s", tls_errstr(buf, sizeof buf));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
	                         SSL_OP_CIPHER_SERVER_PREFERENCE);
	/* TLS 1.2 suites HTTP/2 accepts (RFC 9113 appendix A lists the rest as bad) */
	SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		set_err(err, errlen, "TLS certificate %s: %s", cert, tls_errstr(buf, sizeof buf));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		set_err(err, errlen, "TLS key %s: %s", key, tls_errstr(buf, sizeof buf));
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		set_err(err, errlen, "TLS key %s does not match certificate %s", key, cert);
		goto fail;
	}
	SSL_CTX_set_alpn_select_cb(ctx, tls_on_alpn, NULL);
	return ctx;
fail:
	ERR_clear_error();
	SSL_CTX_free(ctx);
	return NULL;
}

int ec_http_server_reload_tls(struct ec_http_server *s, const char *cert, const char *key,
                              char *err, size_t errlen)
{
	SSL_CTX *ctx;

	EC_ASSERT(s && s->magic == EC_HTTP_SERVER_MAGIC);
	if (!cert || !key) {
		set_err(err, errlen, "TLS: certificate and key files are both needed");
		return EC_EINVAL;
	}
	ctx = tls_ctx_new(cert, key, err, errlen);
	if (!ctx)
		return EC_EINVAL;
	/* connections hold their own reference through their SSL objects */
	SSL_CTX_free(s->ssl_ctx);
	s->ssl_ctx = ctx;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* server */

static double metric_conns_open(void *arg)
{
	return (double)((struct ec_http_server *)arg)->n_conns;
}

static double metric_inflight(void *arg)
{
	return (double)((struct ec_http_server *)arg)->n_inflight;
}

/* Registers the series. The registry borrows their names, kept in s->m_names: render
 * the registry only while the server exists. */
static int metrics_setup(struct ec_http_server *s)
{
	static const char *const rej_labels[EC_HTTP_REJ_N_] = {
		"reason=\"conn_limit\"", "reason=\"ip_limit\"", "reason=\"bad_request\"",
		"reason=\"smuggling\"", "reason=\"header_bytes\"", "reason=\"header_fields\"",
		"reason=\"body\"", "reason=\"header_timeout\"", "reason=\"write_timeout\"",
		"reason=\"h2_protocol\"", "reason=\"h2_glitch\"", "reason=\"tls_handshake\"",
	};
	static const char *const suffix[5] = { "connections_total", "requests_total",
	                                       "rejects_total", "connections_open",
	                                       "requests_inflight" };
	const char *p = s->o.metrics_prefix ? s->o.metrics_prefix : "echos_http";
	size_t plen = strlen(p), i, off = 0, cap = 5 * (plen + 32);
	/* "echos_redirector" -> echos_redirector_http_*; "echos_http" -> echos_http_* */
	const char *mid = plen >= 5 && strcmp(p + plen - 5, "_http") == 0 ? "_" : "_http_";
	const char *names[5];
	struct ec_metrics *m = s->o.metrics;

	s->m_names = malloc(cap);
	if (!s->m_names)
		return EC_ENOMEM;
	for (i = 0; i < 5; i++) {
		names[i] = s->m_names + off;
		off += (size_t)snprintf(s->m_names + off, cap - off, "%s%s%s", p, mid,
		                        suffix[i]) + 1;
	}
	s->m_accepted = ec_metrics_counter(m, names[0], "TCP connections accepted", NULL);
	s->m_req_h1 = ec_metrics_counter(m, names[1], "requests handed to the handler",
	                                 "proto=\"h1\"");
	s->m_req_h2 = ec_metrics_counter(m, names[1], "requests handed to the handler",
	                                 "proto=\"h2\"");
	for (i = 0; i < EC_HTTP_REJ_N_; i++)
		s->m_rej[i] = ec_metrics_counter(m, names[2],
		                                 "connections, requests and streams refused",
		                                 rej_labels[i]);
	ec_metrics_gauge_fn(m, names[3], "open connections", NULL, metric_conns_open, s);
	ec_metrics_gauge_fn(m, names[4], "requests with the handler or being sent", NULL,
	                    metric_inflight, s);
	return 0;
}

static void on_listener_resume(evutil_socket_t fd, short what, void *arg);

static void listener_free(struct ec_http_listener *l)
{
	if (l->lev)
		evconnlistener_free(l->lev); /* closes the socket */
	if (l->pause_ev)
		event_free(l->pause_ev);
	free(l);
}

static void on_listener_resume(evutil_socket_t fd, short what, void *arg)
{
	struct ec_http_listener *l = arg;

	evconnlistener_enable(l->lev);
}

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct ec_http_listener *l = arg;
	int e = EVUTIL_SOCKET_ERROR();
	struct timeval tv = { 0, 100 * 1000 };

	/* out of descriptors: the socket stays readable, so pause instead of spinning */
	ec_log_warn("http: accept failed: %s; pausing the listener for 100 ms",
	            evutil_socket_error_to_string(e));
	if (l->pause_ev) {
		evconnlistener_disable(lev);
		event_add(l->pause_ev, &tv);
	}
}

struct ec_http_server *ec_http_server_new(const struct ec_http_server_opts *o, char *err,
                                          size_t errlen)
{
	struct ec_http_server *s;
	struct timeval tv;
	size_t nb;

	if (!o || !o->base || !o->handler) {
		set_err(err, errlen, "http: an event base and a handler are required");
		return NULL;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		set_err(err, errlen, "http: out of memory");
		return NULL;
	}
	s->magic = EC_HTTP_SERVER_MAGIC;
	s->o = *o;
	s->base = o->base;
	if (!s->o.max_conns) s->o.max_conns = 10000;
	if (!s->o.max_conns_per_ip) s->o.max_conns_per_ip = 1000;
	if (s->o.header_timeout_ms <= 0) s->o.header_timeout_ms = 10000;
	if (s->o.idle_timeout_ms <= 0) s->o.idle_timeout_ms = 60000;
	if (s->o.write_timeout_ms <= 0) s->o.write_timeout_ms = 30000;
	if (!s->o.max_header_bytes) s->o.max_header_bytes = 16384;
	if (!s->o.max_header_fields) s->o.max_header_fields = 64;
	if (!s->o.h2_max_streams) s->o.h2_max_streams = 100;
	if (!s->o.h2_window) s->o.h2_window = 1u << 20;
	if (s->o.h2_window > NGHTTP2_MAX_WINDOW_SIZE) s->o.h2_window = NGHTTP2_MAX_WINDOW_SIZE;
	if (!s->o.out_high_water) s->o.out_high_water = 256 * 1024;
	if (!s->o.out_low_water) s->o.out_low_water = 64 * 1024;
	if (s->o.out_low_water >= s->o.out_high_water)
		s->o.out_low_water = s->o.out_high_water / 4;
	/* the request line may be as long as the header budget, plus separators */
	s->h1_raw_cap = 2 * s->o.max_header_bytes + 4 * s->o.max_header_fields + 1024;

	tv.tv_sec = s->o.header_timeout_ms / 1000;
	tv.tv_usec = (s->o.header_timeout_ms % 1000) * 1000;
	s->tv_header = event_base_init_common_timeout(s->base, &tv);
	tv.tv_sec = s->o.idle_timeout_ms / 1000;
	tv.tv_usec = (s->o.idle_timeout_ms % 1000) * 1000;
	s->tv_idle = event_base_init_common_timeout(s->base, &tv);
	tv.tv_sec = EC_HTTP_LINGER_MS / 1000;
	tv.tv_usec = (EC_HTTP_LINGER_MS % 1000) * 1000;
	s->tv_linger = event_base_init_common_timeout(s->base, &tv);
	tv.tv_sec = EC_HTTP_H2_TICK_MS / 1000;
	tv.tv_usec = (EC_HTTP_H2_TICK_MS % 1000) * 1000;
	s->tv_tick = event_base_init_common_timeout(s->base, &tv);
	s->tv_write.tv_sec = s->o.write_timeout_ms / 1000;
	s->tv_write.tv_usec = (s->o.write_timeout_ms % 1000) * 1000;

	for (nb = 64; nb < s->o.max_conns && nb < 65536; nb *= 2)
		;
	s->ip_tab = calloc(nb, sizeof *s->ip_tab);
	s->ip_mask = nb - 1;
	if (getrandom(&s->ip_seed, sizeof s->ip_seed, GRND_NONBLOCK) != sizeof s->ip_seed)
		s->ip_seed = (uint64_t)ec_now_us() ^ ((uint64_t)getpid() << 32);
	s->work_ev = event_new(s->base, -1, 0, on_work, s);
	if (!s->ip_tab || !s->work_ev) {
		set_err(err, errlen, "http: out of memory");
		goto fail;
	}
	if (o->tls_cert_file || o->tls_key_file) {
		if (!o->tls_cert_file || !o->tls_key_file) {
			set_err(err, errlen, "TLS: certificate and key files are both needed");
			goto fail;
		}
		s->ssl_ctx = tls_ctx_new(o->tls_cert_file, o->tls_key_file, err, errlen);
		if (!s->ssl_ctx)
			goto fail;
	}
	if (ec_http_h2_setup(s) != 0) {
		set_err(err, errlen, "http: out of memory");
		goto fail;
	}
	if (o->metrics && metrics_setup(s) != 0) {
		set_err(err, errlen, "http: out of memory");
		goto fail;
	}
	return s;
fail:
	ec_http_server_free(s);
	return NULL;
}

/* Splits "host:port", "[v6]:port" or ":port" (any address). Returns 0 or EC_EINVAL. */
static int addr_split(const char *addr, char *host, size_t hostlen, char *port,
                      size_t portlen)
{
	const char *colon, *h = addr;
	size_t hl;

	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (!rb || rb[1] != ':')
			return EC_EINVAL;
		h = addr + 1;
		hl = (size_t)(rb - h);
		colon = rb + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return EC_EINVAL;
		hl = (size_t)(colon - addr);
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen || !colon[1])
		return EC_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	strcpy(port, colon + 1);
	if (!host[0] || strcmp(host, "*") == 0)
		strcpy(host, "0.0.0.0");
	return 0;
}

int ec_http_server_listen(struct ec_http_server *s, const char *addr, int tls, char *err,
                          size_t errlen)
{
	char host[256], port[16];
	struct addrinfo hints, *res = NULL;
	struct ec_http_listener *l = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	int fd = -1, one = 1, r, bound;

	EC_ASSERT(s && s->magic == EC_HTTP_SERVER_MAGIC);
	if (tls && !s->ssl_ctx) {
		set_err(err, errlen, "%s: a TLS listener needs a certificate and a key", addr);
		return EC_EINVAL;
	}
	if (!addr || addr_split(addr, host, sizeof host, port, sizeof port) != 0) {
		set_err(err, errlen, "%s: expected host:port or [v6]:port",
		        addr ? addr : "(null)");
		return EC_EINVAL;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	r = getaddrinfo(host, port, &hints, &res);
	if (r != 0 || !res) {
		set_err(err, errlen, "%s: %s", addr, gai_strerror(r));
		return EC_EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto syserr;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (res->ai_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 4096) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ss, &sslen) != 0)
		goto syserr;
	bound = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
	                                       : ((struct sockaddr_in *)&ss)->sin_port);
	freeaddrinfo(res);
	res = NULL;
	l = calloc(1, sizeof *l);
	if (!l)
		goto nomem;
	l->srv = s;
	l->is_tls = tls ? 1 : 0;
	l->pause_ev = evtimer_new(s->base, on_listener_resume, l);
	l->lev = evconnlistener_new(s->base, on_accept, l,
	                            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, fd);
	if (!l->lev || !l->pause_ev)
		goto nomem;
	fd = -1;
	evconnlistener_set_error_cb(l->lev, on_accept_error);
	l->next = s->listeners;
	s->listeners = l;
	return bound;
syserr:
	set_err(err, errlen, "%s: %s", addr, strerror(errno));
	if (res)
		freeaddrinfo(res);
	if (fd >= 0)
		close(fd);
	return EC_EIO;
nomem:
	set_err(err, errlen, "%s: out of memory", addr);
	if (l && !l->lev && fd >= 0)
		close(fd);
	if (l)
		listener_free(l);
	return EC_ENOMEM;
}

void ec_http_server_drain(struct ec_http_server *s)
{
	struct ec_http_listener *l;
	struct ec_http_conn *c, *next;

	EC_ASSERT(s && s->magic == EC_HTTP_SERVER_MAGIC);
	s->is_draining = 1;
	while ((l = s->listeners)) {
		s->listeners = l->next;
		listener_free(l);
	}
	for (c = s->conns; c; c = next) {
		next = c->next;
		conn_hold(c);
		if (c->proto == EC_HTTP_CONN_H2)
			ec_http_h2_drain(c);
		else if (c->proto == EC_HTTP_CONN_H1)
			ec_http_h1_drain(c);
		else
			ec_http_conn_close(c);
		conn_release(c);
	}
}

size_t ec_http_server_conns(const struct ec_http_server *s)
{
	return s ? s->n_conns : 0;
}

size_t ec_http_server_inflight(const struct ec_http_server *s)
{
	return s ? s->n_inflight : 0;
}

void ec_http_server_free(struct ec_http_server *s)
{
	struct ec_http_listener *l;
	struct ec_http_rq *rq;
	size_t i;

	if (!s)
		return;
	EC_ASSERT(s->magic == EC_HTTP_SERVER_MAGIC);
	while ((l = s->listeners)) {
		s->listeners = l->next;
		listener_free(l);
	}
	while (s->conns)
		conn_free(s->conns);
	while ((rq = s->pool)) {
		s->pool = rq->znext;
		free(rq->arena);
		free(rq->hdrs);
		if (rq->body)
			evbuffer_free(rq->body);
		free(rq);
	}
	if (s->ip_tab) {
		for (i = 0; i <= s->ip_mask; i++) {
			struct ec_http_ipent *e, *n;
			for (e = s->ip_tab[i]; e; e = n) {
				n = e->next;
				free(e);
			}
		}
		free(s->ip_tab);
	}
	if (s->work_ev)
		event_free(s->work_ev);
	SSL_CTX_free(s->ssl_ctx);
	ec_http_h2_teardown(s);
	free(s->m_names);
	s->magic = 0;
	free(s);
}

/* ------------------------------------------------------------------------------------ */
/* the request API */

static struct ec_http_rq *req_get(struct ec_http_req *req)
{
	EC_ASSERT(req && req->magic == EC_HTTP_REQ_MAGIC);
	return ec_http_rq_of(req);
}

/* 0 when rq may move on from `state`; EC_ECLOSED or EC_ESTATE otherwise. */
static int req_state(const struct ec_http_rq *rq, int state)
{
	if (rq->state == EC_HTTP_RQ_DEAD || !rq->conn || rq->conn->is_closing)
		return EC_ECLOSED;
	return rq->state == state ? 0 : EC_ESTATE;
}

/* After an API call: if no callback of this connection is on the stack, let the work
 * event flush frames and finish what completed. */
static void req_poke(struct ec_http_rq *rq, struct ec_http_conn *c)
{
	if (c && !c->hold)
		ec_http_conn_schedule(c);
}

const char *ec_http_req_header(const struct ec_http_req *req, const char *lname,
                               size_t *value_len)
{
	size_t i, n = strlen(lname);

	for (i = 0; i < req->n_headers; i++) {
		const struct ec_http_header *h = &req->headers[i];
		if (h->name_len == n && memcmp(h->name, lname, n) == 0) {
			if (value_len)
				*value_len = h->value_len;
			return h->value;
		}
	}
	return NULL;
}

uint64_t ec_http_req_body_sent(const struct ec_http_req *req)
{
	const struct ec_http_rq *rq = (const struct ec_http_rq *)req;
	const struct ec_http_conn *c;
	uint64_t n;

	EC_ASSERT(req && req->magic == EC_HTTP_REQ_MAGIC);
	n = rq->body_sent;
	c = rq->oconn;
	if (c && rq->n_notes && c->notes_len) {
		/* the oldest note may be partly written */
		const struct ec_http_note *h = &c->notes[c->notes_head];
		if (h->rq == rq && c->out_sent > h->end - h->len)
			n += c->out_sent - (h->end - h->len);
	}
	return n;
}

void ec_http_req_on_close(struct ec_http_req *req, ec_http_close_cb cb, void *arg)
{
	struct ec_http_rq *rq = req_get(req);

	rq->close_cb = cb;
	rq->close_arg = arg;
}

void ec_http_stream_on_drain(struct ec_http_req *req, ec_http_drain_cb cb, void *arg)
{
	struct ec_http_rq *rq = req_get(req);

	rq->drain_cb = cb;
	rq->drain_arg = arg;
}

static int status_ok(int status)
{
	return status >= 200 && status <= 999;
}

static int status_no_body(const struct ec_http_rq *rq, int status)
{
	return rq->pub.is_head || status == 204 || status == 304;
}

/* clen: the Content-Length to announce (-2: none, as for 204 and 304). */
static int respond_mem(struct ec_http_rq *rq, int status, const struct ec_http_header *hdrs,
                       size_t n_hdrs, const void *body, size_t len, int64_t clen)
{
	struct ec_http_conn *c = rq->conn;
	int r;

	if (status == 204 || status == 304)
		clen = -2;
	rq->no_body = status_no_body(rq, status);
	if (rq->no_body)
		len = 0;
	if (c->proto == EC_HTTP_CONN_H2) {
		if (len) {
			if (!rq->body && !(rq->body = evbuffer_new()))
				return EC_ENOMEM;
			if (evbuffer_add(rq->body, body, len) != 0)
				return EC_ENOMEM;
		}
		rq->is_ended = 1;
		r = ec_http_h2_respond(rq, status, hdrs, n_hdrs, clen, len > 0);
	} else {
		r = ec_http_h1_respond_direct(rq, status, hdrs, n_hdrs, clen, body, len);
		if (r == EC_EAGAIN) {
			r = ec_http_h1_respond(rq, status, hdrs, n_hdrs, clen, 0);
			if (r == 0 && len)
				r = ec_http_h1_write(rq, body, len);
			if (r == 0)
				r = ec_http_h1_end(rq);
		} else if (r != 0) {
			ec_http_h1_abort(rq);
		}
	}
	req_poke(rq, c);
	return r;
}

int ec_http_respond(struct ec_http_req *req, int status, const struct ec_http_header *hdrs,
                    size_t n_hdrs, const void *body, size_t len)
{
	struct ec_http_rq *rq = req_get(req);
	int r = req_state(rq, EC_HTTP_RQ_HANDLER);

	if (r)
		return r;
	if (!status_ok(status))
		return EC_EINVAL;
	return respond_mem(rq, status, hdrs, n_hdrs, body, len, (int64_t)len);
}

int ec_http_respond_fd(struct ec_http_req *req, int status, const struct ec_http_header *hdrs,
                       size_t n_hdrs, int fd, off_t off, uint64_t len)
{
	struct ec_http_rq *rq = req_get(req);
	struct ec_http_conn *c;
	struct evbuffer_file_segment *seg;
	int r = req_state(rq, EC_HTTP_RQ_HANDLER);

	if (r == 0 && (!status_ok(status) || off < 0 || len > (uint64_t)INT64_MAX))
		r = EC_EINVAL;
	if (r != 0 || status_no_body(rq, status) || len == 0) {
		close(fd);
		if (r != 0)
			return r;
		return respond_mem(rq, status, hdrs, n_hdrs, NULL, 0, (int64_t)len);
	}
	c = rq->conn;
	seg = evbuffer_file_segment_new(fd, off, (ev_off_t)len,
	                                EVBUF_FS_CLOSE_ON_FREE | EVBUF_FS_DISABLE_LOCKING);
	if (!seg) {
		close(fd);
		return EC_EIO;
	}
	rq->no_body = 0;
	if (c->proto == EC_HTTP_CONN_H2) {
		rq->seg = seg;
		rq->seg_fd = fd;
		rq->seg_base = off;
		rq->seg_off = 0;
		rq->seg_left = len;
		rq->is_ended = 1;
		r = ec_http_h2_respond(rq, status, hdrs, n_hdrs, (int64_t)len, 1);
	} else {
		r = ec_http_h1_respond(rq, status, hdrs, n_hdrs, (int64_t)len, 0);
		if (r == 0)
			r = ec_http_h1_file(rq, seg, len);
		evbuffer_file_segment_free(seg); /* the output buffer holds its own reference */
		if (r == 0)
			r = ec_http_h1_end(rq);
	}
	req_poke(rq, c);
	return r;
}

int ec_http_stream_start(struct ec_http_req *req, int status,
                         const struct ec_http_header *hdrs, size_t n_hdrs,
                         int64_t content_length)
{
	struct ec_http_rq *rq = req_get(req);
	struct ec_http_conn *c;
	int64_t clen = content_length < 0 ? -1 : content_length;
	int r = req_state(rq, EC_HTTP_RQ_HANDLER);

	if (r)
		return r;
	if (!status_ok(status))
		return EC_EINVAL;
	c = rq->conn;
	if (status == 204 || status == 304)
		clen = -2;
	rq->no_body = status_no_body(rq, status);
	rq->body_left = content_length < 0 || rq->no_body ? -1 : content_length;
	if (c->proto == EC_HTTP_CONN_H2) {
		if (!rq->no_body && !rq->body && !(rq->body = evbuffer_new()))
			return EC_ENOMEM;
		r = ec_http_h2_respond(rq, status, hdrs, n_hdrs, clen, !rq->no_body);
	} else {
		r = ec_http_h1_respond(rq, status, hdrs, n_hdrs, clen, 1);
	}
	if (r == 0 && rq->state != EC_HTTP_RQ_DEAD)
		rq->state = EC_HTTP_RQ_BODY;
	req_poke(rq, c);
	return r;
}

int ec_http_stream_write(struct ec_http_req *req, const void *data, size_t len)
{
	struct ec_http_rq *rq = req_get(req);
	struct ec_http_conn *c;
	int r = req_state(rq, EC_HTTP_RQ_BODY);

	if (r)
		return r;
	if (rq->body_left >= 0) {
		if ((uint64_t)len > (uint64_t)rq->body_left)
			return EC_ESTATE;
		rq->body_left -= (int64_t)len;
	}
	if (rq->no_body || len == 0)
		return 0;
	c = rq->conn;
	if (c->proto == EC_HTTP_CONN_H2)
		r = ec_http_h2_write(rq, data, len);
	else
		r = ec_http_h1_write(rq, data, len);
	if (r == 0 && ec_http_stream_buffered(req) > c->srv->o.out_low_water)
		rq->drain_armed = 1;
	req_poke(rq, c);
	return r;
}

size_t ec_http_stream_buffered(const struct ec_http_req *req)
{
	const struct ec_http_rq *rq = (const struct ec_http_rq *)req;

	EC_ASSERT(req && req->magic == EC_HTTP_REQ_MAGIC);
	if (!rq->conn || rq->state == EC_HTTP_RQ_DEAD)
		return 0;
	if (rq->conn->proto == EC_HTTP_CONN_H2)
		return ec_http_h2_buffered(rq);
	return ec_http_h1_buffered(rq);
}

int ec_http_stream_end(struct ec_http_req *req)
{
	struct ec_http_rq *rq = req_get(req);
	struct ec_http_conn *c;
	int r = req_state(rq, EC_HTTP_RQ_BODY);

	if (r)
		return r;
	c = rq->conn;
	if (rq->body_left > 0) {
		/* shorter than announced: the client must see a truncation, not a whole body */
		ec_http_abort(req);
		return EC_ESTATE;
	}
	if (c->proto == EC_HTTP_CONN_H2)
		r = ec_http_h2_end(rq);
	else
		r = ec_http_h1_end(rq);
	req_poke(rq, c);
	return r;
}

void ec_http_abort(struct ec_http_req *req)
{
	struct ec_http_rq *rq = req_get(req);
	struct ec_http_conn *c = rq->conn;

	if (rq->state == EC_HTTP_RQ_DEAD || !c || c->is_closing)
		return;
	if (c->proto == EC_HTTP_CONN_H2)
		ec_http_h2_abort(rq);
	else
		ec_http_h1_abort(rq);
	req_poke(rq, c);
}
