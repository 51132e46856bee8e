/* ec_http_h1: HTTP/1.1 (and 1.0) on one connection. A strict scanner finds each request's
 * header block and refuses what request smuggling needs (bare LF or CR, NUL, obs-fold,
 * oversize); http-parser then validates it. One request is answered at a time: pipelined
 * ones wait in the input and are answered in order, none after a bad one.
 * Request bodies are refused (400 on GET/HEAD, 413 otherwise, then close): handlers only
 * see bodiless requests. Owns nothing beyond the connection's h1 state. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sys/socket.h>

#include "ec_err.h"
#include "ec_fmt.h"
#include "ec_h1fast.h"
#include "ec_http_int.h"
#include "ec_scan.h"

static int h1_on_url(http_parser *p, const char *at, size_t len);
static int h1_on_field(http_parser *p, const char *at, size_t len);
static int h1_on_value(http_parser *p, const char *at, size_t len);
static int h1_on_headers_complete(http_parser *p);
static int h1_on_message_complete(http_parser *p);

static const http_parser_settings h1_settings = {
	.on_url = h1_on_url,
	.on_header_field = h1_on_field,
	.on_header_value = h1_on_value,
	.on_headers_complete = h1_on_headers_complete,
	.on_message_complete = h1_on_message_complete,
};

static void h1_process(struct ec_http_conn *c);

/* Answers a request we will not serve with a one-line body and closes after it. Nothing
 * received after it on this connection is processed. */
static void h1_refuse(struct ec_http_conn *c, int status, enum ec_http_rej why,
                      const char *msg)
{
	struct ec_http_h1 *h = &c->u.h1;
	struct ec_http_server *s = c->srv;
	char buf[512];
	int n;

	ec_http_reject(s, why);
	ec_http_log_refusal(c, h->cur ? h->cur->pub.id : 0, status, msg);
	h->is_broken = 1;
	if (h->cur) {
		ec_http_rq_discard(h->cur);
		h->cur = NULL;
	}
	n = snprintf(buf, sizeof buf,
	             "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
	             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
	             status, ec_http_reason(status), ec_http_date(s), strlen(msg) + 1, msg);
	if (n > 0 && (size_t)n < sizeof buf)
		bufferevent_write(c->bev, buf, (size_t)n);
	ec_http_conn_timer(c, EC_HTTP_TM_NONE);
	ec_http_conn_shutdown(c);
}

static void h1_scan_reset(struct ec_http_h1 *h)
{
	h->scan_off = 0;
	h->line_start = 0;
	h->n_lines = 0;
	h->seen_reqline = 0;
}

/* Looks for the end of the header block at the front of the input p[0, avail), scanning
 * each byte once (where the last call stopped, h->scan_off, onwards). Returns 0 to wait
 * for more, 1 with *blocklen set, or a status to refuse with (*why, *msg set). */
static int h1_scan(struct ec_http_conn *c, const unsigned char *p, size_t avail,
                   size_t *blocklen, enum ec_http_rej *why, const char **msg)
{
	struct ec_http_h1 *h = &c->u.h1;
	struct ec_http_server *s = c->srv;
	size_t cap = s->h1_raw_cap, i;

	if (avail > cap + 1)
		avail = cap + 1;
	*why = EC_HTTP_REJ_SMUGGLING;
	i = h->scan_off;
	while (i < avail) {
		unsigned char ch;

		/* a line may not start with whitespace; only CR, LF and NUL matter after that */
		if (i == h->line_start && (p[i] == ' ' || p[i] == '\t')) {
			*msg = h->seen_reqline ? "obsolete line folding in request header"
			                       : "whitespace before the request line";
			if (!h->seen_reqline)
				*why = EC_HTTP_REJ_BAD_REQUEST;
			return 400;
		}
		i = ec_scan_ctl(p, i, avail);
		if (i == avail)
			break;
		ch = p[i];
		if (ch == '\n') {
			if (i == 0 || p[i - 1] != '\r') {
				*msg = "bare LF in request header";
				return 400;
			}
			if (i - 1 == h->line_start) {
				if (!h->seen_reqline) { /* empty lines before the request line */
					h->line_start = ++i;
					continue;
				}
				*blocklen = i + 1;
				return 1;
			}
			if (!h->seen_reqline) {
				h->seen_reqline = 1;
			} else if (++h->n_lines > s->o.max_header_fields) {
				*why = EC_HTTP_REJ_HEADER_FIELDS;
				*msg = "too many header fields";
				return 431;
			}
			h->line_start = i + 1;
		} else if (ch == '\r') {
			if (i + 1 == avail)
				break; /* see what follows first */
			if (p[i + 1] != '\n') {
				*msg = "bare CR in request header";
				return 400;
			}
		} else {
			*msg = "NUL in request header";
			return 400;
		}
		i++;
	}
	h->scan_off = i;
	if (avail > cap) {
		*why = EC_HTTP_REJ_HEADER_BYTES;
		*msg = "request header block too large";
		return 431;
	}
	return 0;
}

/* RFC 9110 tchar: http-parser's lenient mode lets a space into a field name, which is how
 * "Transfer-Encoding : chunked" would slip past as some other header */
static int is_token(const char *s, size_t n)
{
	return n > 0 && ec_scan_token((const unsigned char *)s, n) == n;
}

static struct ec_http_rq *parser_rq(http_parser *p, struct ec_http_conn **cp)
{
	struct ec_http_conn *c = p->data;

	*cp = c;
	return c->u.h1.cur;
}

static int h1_fail(struct ec_http_conn *c, int status, enum ec_http_rej why, const char *msg)
{
	struct ec_http_h1 *h = &c->u.h1;

	if (!h->bad) {
		h->bad = status;
		h->bad_rej = why;
		h->bad_msg = msg;
	}
	return -1;
}

static int h1_on_url(http_parser *p, const char *at, size_t len)
{
	struct ec_http_conn *c;
	struct ec_http_rq *rq = parser_rq(p, &c);

	/* the block is contiguous: the target comes in one piece */
	if (rq->has_target)
		return h1_fail(c, 400, EC_HTTP_REJ_BAD_REQUEST, "malformed request target");
	if (len > c->srv->o.max_header_bytes)
		return h1_fail(c, 414, EC_HTTP_REJ_HEADER_BYTES, "request target too long");
	if (ec_http_rq_put(rq, at, len, 0, &rq->target_off))
		return h1_fail(c, 503, EC_HTTP_REJ_BAD_REQUEST, "out of memory");
	rq->target_len = (uint32_t)len;
	rq->has_target = 1;
	return 0;
}

static int h1_on_field(http_parser *p, const char *at, size_t len)
{
	struct ec_http_conn *c;
	struct ec_http_rq *rq = parser_rq(p, &c);
	struct ec_http_server *s = c->srv;
	struct ec_http_header *hd;
	uint32_t no, vo;

	if (c->u.h1.last_cb == 1)
		return h1_fail(c, 400, EC_HTTP_REJ_BAD_REQUEST, "malformed header field");
	c->u.h1.last_cb = 1;
	if (!is_token(at, len))
		return h1_fail(c, 400, EC_HTTP_REJ_SMUGGLING, "invalid header field name");
	if (++rq->n_fields > s->o.max_header_fields)
		return h1_fail(c, 431, EC_HTTP_REJ_HEADER_FIELDS, "too many header fields");
	rq->hdr_bytes += len;
	if (rq->hdr_bytes > s->o.max_header_bytes)
		return h1_fail(c, 431, EC_HTTP_REJ_HEADER_BYTES, "request headers too large");
	if (rq->pub.n_headers == rq->hdrs_cap) {
		size_t cap = rq->hdrs_cap ? rq->hdrs_cap * 2 : 16;
		struct ec_http_header *n = realloc(rq->hdrs, cap * sizeof *n);
		if (!n)
			return h1_fail(c, 503, EC_HTTP_REJ_BAD_REQUEST, "out of memory");
		rq->hdrs = n;
		rq->hdrs_cap = cap;
	}
	/* the value starts empty: http-parser may skip the callback for an empty one */
	if (ec_http_rq_put(rq, at, len, 1, &no) || ec_http_rq_put(rq, "", 0, 0, &vo))
		return h1_fail(c, 503, EC_HTTP_REJ_BAD_REQUEST, "out of memory");
	hd = &rq->hdrs[rq->pub.n_headers++];
	hd->name = (const char *)(uintptr_t)no;
	hd->name_len = len;
	hd->value = (const char *)(uintptr_t)vo;
	hd->value_len = 0;
	hd->flags = 0;
	return 0;
}

static int h1_on_value(http_parser *p, const char *at, size_t len)
{
	struct ec_http_conn *c;
	struct ec_http_rq *rq = parser_rq(p, &c);
	struct ec_http_h1 *h = &c->u.h1;
	struct ec_http_header *hd;
	const char *name;
	uint32_t vo;

	if (h->last_cb != 1 || !rq->pub.n_headers)
		return h1_fail(c, 400, EC_HTTP_REJ_BAD_REQUEST, "malformed header value");
	h->last_cb = 2;
	while (len && (at[len - 1] == ' ' || at[len - 1] == '\t'))
		len--;
	rq->hdr_bytes += len;
	if (rq->hdr_bytes > c->srv->o.max_header_bytes)
		return h1_fail(c, 431, EC_HTTP_REJ_HEADER_BYTES, "request headers too large");
	if (ec_scan_ctl((const unsigned char *)at, 0, len) != len)
		return h1_fail(c, 400, EC_HTTP_REJ_SMUGGLING, "CR, LF or NUL in a header value");
	if (ec_http_rq_put(rq, at, len, 0, &vo))
		return h1_fail(c, 503, EC_HTTP_REJ_BAD_REQUEST, "out of memory");
	hd = &rq->hdrs[rq->pub.n_headers - 1];
	hd->value = (const char *)(uintptr_t)vo;
	hd->value_len = len;
	name = rq->arena + (uintptr_t)hd->name;
	switch (hd->name_len) {
	case 4:
		if (memcmp(name, "host", 4) == 0) {
			h->n_host++;
			rq->auth_off = vo;
			rq->auth_len = (uint32_t)len;
			rq->has_auth = 1;
		}
		break;
	case 14:
		if (memcmp(name, "content-length", 14) == 0)
			h->n_cl++;
		break;
	case 17:
		if (memcmp(name, "transfer-encoding", 17) == 0)
			h->n_te++;
		break;
	default:
		break;
	}
	return 0;
}

static int h1_on_headers_complete(http_parser *p)
{
	return 0;
}

static int h1_on_message_complete(http_parser *p)
{
	return 0;
}

/* A block ec_h1fast took: the same callbacks with the same spans http-parser would have
 * made (test_ec_h1fast checks that), then the parser fields h1_parse reads. Returns the
 * bytes consumed, as http_parser_execute does. */
static size_t h1_parse_fast(struct ec_http_h1 *h, const struct ec_h1fast *f, size_t blocklen)
{
	http_parser *p = &h->parser;
	size_t i;

	if (h1_on_url(p, f->target.p, f->target.len) != 0)
		return 0;
	for (i = 0; i < f->n_fields; i++)
		if (h1_on_field(p, f->name[i].p, f->name[i].len) != 0 ||
		    h1_on_value(p, f->value[i].p, f->value[i].len) != 0)
			return 0;
	p->method = f->is_head ? HTTP_HEAD : HTTP_GET;
	p->http_major = 1;
	p->http_minor = (unsigned short)f->minor;
	return blocklen;
}

/* Parses the header block data[0, blocklen) (the common plain GET or HEAD with ec_h1fast,
 * anything else with http-parser); dispatches the request or refuses it. The block is the
 * front of the input buffer, drained once parsed; or, when `rest` is not NULL, it came
 * straight from a read that found the input empty, and the rest of that read (rest_len
 * bytes: a pipelined request, or part of one) goes into the input buffer instead. The
 * request copies what it keeps, so data need not outlive the call. */
static void h1_parse(struct ec_http_conn *c, const char *data, size_t blocklen,
                     const char *rest, size_t rest_len)
{
	struct ec_http_h1 *h = &c->u.h1;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct ec_http_rq *rq;
	struct ec_h1fast fast;
	enum http_errno he;
	size_t n;
	int has_body;

	h->bad = 0;
	h->last_cb = 0;
	h->n_cl = h->n_te = h->n_host = 0;
	rq = ec_http_rq_new(c);
	if (!rq || !data) {
		h1_refuse(c, 503, EC_HTTP_REJ_BAD_REQUEST, "out of memory");
		return;
	}
	h->cur = rq;
	/* one growth up front: the block fits with room for the path and query copies */
	ec_http_rq_reserve(rq, blocklen + 256);
	http_parser_init(&h->parser, HTTP_REQUEST);
	h->parser.data = c;
	if (ec_h1fast_parse(data, blocklen, &fast))
		n = h1_parse_fast(h, &fast, blocklen);
	else
		n = http_parser_execute(&h->parser, &h1_settings, data, blocklen);
	if (h->bad) {
		h1_refuse(c, h->bad, (enum ec_http_rej)h->bad_rej, h->bad_msg);
		return;
	}
	he = HTTP_PARSER_ERRNO(&h->parser);
	if (he != HPE_OK || (n != blocklen && !h->parser.upgrade)) {
		if (he == HPE_UNEXPECTED_CONTENT_LENGTH || he == HPE_INVALID_TRANSFER_ENCODING ||
		    he == HPE_INVALID_CONTENT_LENGTH)
			h1_refuse(c, 400, EC_HTTP_REJ_SMUGGLING, http_errno_description(he));
		else if (he == HPE_INVALID_VERSION)
			h1_refuse(c, 505, EC_HTTP_REJ_BAD_REQUEST, "HTTP version not supported");
		else
			h1_refuse(c, 400, EC_HTTP_REJ_BAD_REQUEST,
			          he != HPE_OK ? http_errno_description(he) : "malformed request");
		return;
	}
	if (h->parser.http_major != 1 || h->parser.http_minor > 1) {
		h1_refuse(c, 505, EC_HTTP_REJ_BAD_REQUEST, "HTTP version not supported");
		return;
	}
	if (h->n_cl && h->n_te) {
		h1_refuse(c, 400, EC_HTTP_REJ_SMUGGLING,
		          "both Content-Length and Transfer-Encoding");
		return;
	}
	if (h->n_cl > 1) {
		h1_refuse(c, 400, EC_HTTP_REJ_SMUGGLING, "more than one Content-Length");
		return;
	}
	if (h->n_host > 1) {
		h1_refuse(c, 400, EC_HTTP_REJ_BAD_REQUEST, "more than one Host");
		return;
	}
	if (!h->n_host && h->parser.http_minor == 1) {
		h1_refuse(c, 400, EC_HTTP_REJ_BAD_REQUEST, "missing Host");
		return;
	}
	has_body = h->n_te || (h->n_cl && h->parser.content_length > 0);
	if (has_body) {
		if (h->parser.method == HTTP_GET || h->parser.method == HTTP_HEAD)
			h1_refuse(c, 400, EC_HTTP_REJ_BODY, "a GET or HEAD request has no body");
		else
			h1_refuse(c, 413, EC_HTTP_REJ_BODY, "request bodies are not accepted");
		return;
	}
	rq->pub.method = http_method_str((enum http_method)h->parser.method);
	rq->pub.is_head = h->parser.method == HTTP_HEAD;
	rq->keep_alive = http_should_keep_alive(&h->parser) ? 1 : 0;
	rq->is_http10 = h->parser.http_minor == 0;
	if (ec_http_rq_seal(rq) != 0) {
		h1_refuse(c, 400, EC_HTTP_REJ_BAD_REQUEST, "request target must be a path");
		return;
	}
	if (!rest) {
		evbuffer_drain(in, blocklen);
	} else if (rest_len && ec_http_conn_in_add(c, rest, rest_len) != 0) {
		h1_refuse(c, 503, EC_HTTP_REJ_BAD_REQUEST, "out of memory");
		return;
	}
	h1_scan_reset(h);
	ec_http_conn_timer(c, EC_HTTP_TM_NONE);
	ec_http_rq_dispatch(rq);
}

/* Starts requests while none is in flight: one at a time, in order. */
static void h1_process(struct ec_http_conn *c)
{
	struct ec_http_h1 *h = &c->u.h1;
	struct evbuffer *in = bufferevent_get_input(c->bev);

	while (!c->is_closing && !c->is_shutdown && !h->is_broken && !h->cur) {
		size_t blocklen = 0;
		enum ec_http_rej why;
		const char *msg = NULL;
		int r;

		if (evbuffer_get_length(in) == 0 || c->peer_eof) {
			/* after EOF no new request starts: the client cannot read the answer
			 * unless it only half-closed, and that is too rare to hold work for */
			if (c->peer_eof)
				ec_http_conn_close(c);
			break;
		}
		size_t avail = evbuffer_get_length(in);
		const unsigned char *p;

		if (avail > c->srv->h1_raw_cap + 1)
			avail = c->srv->h1_raw_cap + 1;
		p = evbuffer_pullup(in, (ev_ssize_t)avail);
		if (!p) {
			h1_refuse(c, 503, EC_HTTP_REJ_BAD_REQUEST, "out of memory");
			break;
		}
		r = h1_scan(c, p, avail, &blocklen, &why, &msg);
		if (r == 0) {
			/* a partial request: the header timeout runs from its first bytes (a
			 * request that arrives whole never needs it) */
			if (c->tmode != EC_HTTP_TM_HEADER)
				ec_http_conn_timer(c, EC_HTTP_TM_HEADER);
			break;
		}
		if (r != 1) {
			h1_refuse(c, r, why, msg);
			break;
		}
		h1_parse(c, (const char *)p, blocklen, NULL, 0);
	}
}

/* n bytes read from the socket while the input buffer was empty: a request that arrived
 * whole in them is parsed (or refused) where it lies, without a trip through the input
 * buffer. Returns 0 when the bytes were handled, or EC_EAGAIN when they must be queued
 * and read as any input (a request in flight, a partial request: the scan's position
 * then counts from the same first byte in the input buffer). */
int ec_http_h1_on_bytes(struct ec_http_conn *c, const char *buf, size_t n)
{
	struct ec_http_h1 *h = &c->u.h1;
	size_t blocklen = 0;
	enum ec_http_rej why;
	const char *msg = NULL;
	int r;

	if (h->cur || h->is_broken || c->peer_eof || h->scan_off != 0)
		return EC_EAGAIN;
	r = h1_scan(c, (const unsigned char *)buf, n, &blocklen, &why, &msg);
	if (r == 0)
		return EC_EAGAIN;
	if (r == 1)
		h1_parse(c, buf, blocklen, buf + blocklen, n - blocklen);
	else
		h1_refuse(c, r, why, msg);
	return 0;
}

void ec_http_h1_on_read(struct ec_http_conn *c)
{
	h1_process(c);
}

/* The client closed its side. A request still with the handler (or mid-stream) counts
 * as gone: its close callback says so and the handler can stop working for it. A
 * response already queued is flushed, then the connection closes. */
void ec_http_h1_on_eof(struct ec_http_conn *c)
{
	struct ec_http_rq *rq = c->u.h1.cur;

	if (rq && rq->state != EC_HTTP_RQ_SENT)
		ec_http_h1_abort(rq);
	else if (!rq)
		ec_http_conn_close(c);
}

/* 1 when a streaming producer waits for room and the output is at low water: the next
 * ec_http_h1_on_write calls its drain callback. */
int ec_http_h1_drain_due(const struct ec_http_conn *c)
{
	const struct ec_http_rq *rq = c->u.h1.cur;

	return rq && rq->state == EC_HTTP_RQ_BODY && rq->drain_armed && rq->drain_cb &&
	       evbuffer_get_length(bufferevent_get_output(c->bev)) <= c->srv->o.out_low_water;
}

/* Output fell to a watermark: wake a streaming producer waiting for room. */
void ec_http_h1_on_write(struct ec_http_conn *c)
{
	struct ec_http_rq *rq = c->u.h1.cur;

	if (ec_http_h1_drain_due(c)) {
		rq->drain_armed = 0;
		rq->drain_cb(&rq->pub, rq->drain_arg);
	}
}

/* With no callback on the stack: a response whose bytes all left ends its request; then
 * the connection idles, closes, or starts the next pipelined request. */
void ec_http_h1_settle(struct ec_http_conn *c)
{
	struct ec_http_h1 *h = &c->u.h1;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct ec_http_rq *rq;

	while ((rq = h->cur) && rq->state == EC_HTTP_RQ_SENT && evbuffer_get_length(out) == 0) {
		h->cur = NULL;
		ec_http_rq_finish(rq, 1);
		if (h->close_after || c->is_shutdown) {
			ec_http_conn_shutdown(c);
			return;
		}
		ec_http_conn_timer(c, EC_HTTP_TM_IDLE);
		h1_process(c);
	}
}

void ec_http_h1_on_timeout(struct ec_http_conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->bev);

	if (c->u.h1.cur || evbuffer_get_length(in) == 0) {
		ec_http_conn_close(c);
		return;
	}
	h1_refuse(c, 408, EC_HTTP_REJ_HEADER_TIMEOUT, "request headers not completed in time");
}

void ec_http_h1_drain(struct ec_http_conn *c)
{
	if (c->u.h1.cur)
		c->u.h1.close_after = 1;
	else
		ec_http_conn_shutdown(c);
}

static char *put_str(char *d, const char *s, size_t n)
{
	memcpy(d, s, n);
	return d + n;
}

#define PUT_LIT(d, lit) put_str((d), (lit), sizeof(lit) - 1)

/* A response head measured by h1_head_plan and written by h1_head_write. */
struct h1_head {
	size_t need;          /* bytes h1_head_write may write */
	size_t rlen;
	const char *reason;
	int keep;
	uint64_t skip;        /* headers 0..63 the plan dropped: checked once, not twice */
	size_t lens[64][2];   /* and the lengths it found for the others */
};

/* First pass over a response head: which headers go out, how long it can be, whether
 * the connection stays open. clen >= 0: Content-Length; -1: unknown (chunked when the
 * client speaks 1.1 and chunked_ok, else the close delimits); -2: none. */
static void h1_head_plan(struct ec_http_rq *rq, int status, const struct ec_http_header *hdrs,
                         size_t n_hdrs, int64_t clen, int chunked_ok, struct h1_head *hp)
{
	struct ec_http_conn *c = rq->conn;
	struct ec_http_server *s = c->srv;
	size_t i, nl, vl;

	hp->reason = ec_http_reason(status);
	hp->rlen = strlen(hp->reason);
	hp->keep = rq->keep_alive && !s->is_draining && !c->peer_eof && !c->u.h1.close_after;
	hp->skip = 0;
	hp->need = 9 + 4 + hp->rlen + 2 + 6 + 29 + 2 + 2;
	for (i = 0; i < n_hdrs; i++) {
		int drop = ec_http_hdr_skip(&hdrs[i], &nl, &vl, 0);

		if (i < 64) {
			hp->lens[i][0] = nl;
			hp->lens[i][1] = vl;
		}
		if (drop) {
			if (i < 64)
				hp->skip |= (uint64_t)1 << i;
			if (nl == 10 && vl == 5 && strncasecmp(hdrs[i].name, "connection", 10) == 0 &&
			    strncasecmp(hdrs[i].value, "close", 5) == 0)
				hp->keep = 0;
			continue;
		}
		hp->need += nl + vl + 4;
	}
	rq->is_chunked = 0;
	if (clen == -1) {
		if (chunked_ok && !rq->is_http10)
			rq->is_chunked = 1;
		else
			hp->keep = 0;
	}
	hp->need += 16 + 20 + 2 + 28 + 24;
}

/* Second pass: writes the head h1_head_plan measured into d (hp->need bytes of room).
 * Returns the end of what it wrote. */
static char *h1_head_write(struct ec_http_rq *rq, int status, const struct ec_http_header *hdrs,
                           size_t n_hdrs, int64_t clen, const struct h1_head *hp, char *d)
{
	struct ec_http_server *s = rq->conn->srv;
	size_t i, nl, vl;

	d = PUT_LIT(d, "HTTP/1.1 ");
	*d++ = (char)('0' + status / 100);
	*d++ = (char)('0' + status / 10 % 10);
	*d++ = (char)('0' + status % 10);
	*d++ = ' ';
	d = put_str(d, hp->reason, hp->rlen);
	d = PUT_LIT(d, "\r\nDate: ");
	d = put_str(d, ec_http_date(s), 29);
	d = PUT_LIT(d, "\r\n");
	for (i = 0; i < n_hdrs; i++) {
		if (i < 64) {
			if (hp->skip >> i & 1)
				continue;
			nl = hp->lens[i][0];
			vl = hp->lens[i][1];
		} else if (ec_http_hdr_skip(&hdrs[i], &nl, &vl, 0)) {
			continue;
		}
		d = put_str(d, hdrs[i].name, nl);
		*d++ = ':';
		*d++ = ' ';
		d = put_str(d, hdrs[i].value, vl);
		*d++ = '\r';
		*d++ = '\n';
	}
	if (clen >= 0) {
		d = PUT_LIT(d, "Content-Length: ");
		d = ec_put_dec(d, (uint64_t)clen);
		d = PUT_LIT(d, "\r\n");
	} else if (rq->is_chunked) {
		d = PUT_LIT(d, "Transfer-Encoding: chunked\r\n");
	}
	if (!hp->keep)
		d = PUT_LIT(d, "Connection: close\r\n");
	else if (rq->is_http10)
		d = PUT_LIT(d, "Connection: keep-alive\r\n");
	return PUT_LIT(d, "\r\n");
}

/* Writes the status line and headers. clen as for h1_head_plan. */
int ec_http_h1_respond(struct ec_http_rq *rq, int status, const struct ec_http_header *hdrs,
                       size_t n_hdrs, int64_t clen, int chunked_ok)
{
	struct ec_http_conn *c = rq->conn;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	struct evbuffer_iovec vec;
	struct h1_head hp;
	char *d;

	h1_head_plan(rq, status, hdrs, n_hdrs, clen, chunked_ok, &hp);
	if (evbuffer_reserve_space(out, (ev_ssize_t)hp.need, &vec, 1) < 1)
		return EC_ENOMEM;
	d = h1_head_write(rq, status, hdrs, n_hdrs, clen, &hp, vec.iov_base);
	vec.iov_len = (size_t)(d - (char *)vec.iov_base);
	EC_ASSERT(vec.iov_len <= hp.need);
	if (evbuffer_commit_space(out, &vec, 1) != 0)
		return EC_ENOMEM;
	c->u.h1.close_after = !hp.keep;
	rq->state = EC_HTTP_RQ_BODY;
	if (chunked_ok) /* streaming: the write callback wakes the producer at low water */
		bufferevent_setwatermark(c->bev, EV_WRITE, c->srv->o.out_low_water, 0);
	return 0;
}

/* A whole response from memory on a plain connection with nothing queued: head and body
 * are put together on the stack and sent at once, without the output buffer. What the
 * socket does not take (it rarely happens: the response is small) is queued as usual.
 * Returns 0, EC_EAGAIN when the response does not fit this path (nothing done: use
 * ec_http_h1_respond), or EC_ENOMEM. */
int ec_http_h1_respond_direct(struct ec_http_rq *rq, int status,
                              const struct ec_http_header *hdrs, size_t n_hdrs, int64_t clen,
                              const void *body, size_t len)
{
	struct ec_http_conn *c = rq->conn;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	char buf[EC_HTTP_DIRECT_MAX];
	struct h1_head hp;
	size_t head, total, sent, body_sent;

	if (!c->is_direct || c->is_linger || c->is_closing || c->notes_len || clen == -1 ||
	    len > sizeof buf || evbuffer_get_length(out) != 0)
		return EC_EAGAIN;
	h1_head_plan(rq, status, hdrs, n_hdrs, clen, 0, &hp);
	if (hp.need + len > sizeof buf)
		return EC_EAGAIN;
	head = (size_t)(h1_head_write(rq, status, hdrs, n_hdrs, clen, &hp, buf) - buf);
	if (len)
		memcpy(buf + head, body, len);
	total = head + len;
	c->u.h1.close_after = !hp.keep;
	sent = ec_http_send_now(c, buf, total);
	body_sent = sent > head ? sent - head : 0;
	rq->body_sent += body_sent;
	if (sent < total &&
	    (evbuffer_add(out, buf + sent, total - sent) != 0 ||
	     ec_http_out_note(c, rq, len - body_sent) != 0))
		return EC_ENOMEM;
	rq->state = EC_HTTP_RQ_SENT;
	return 0;
}

int ec_http_h1_write(struct ec_http_rq *rq, const void *data, size_t len)
{
	struct evbuffer *out = bufferevent_get_output(rq->conn->bev);
	char hd[24];
	int n;

	if (rq->no_body || !len)
		return 0;
	if (rq->is_chunked) {
		n = snprintf(hd, sizeof hd, "%zx\r\n", len);
		if (evbuffer_add(out, hd, (size_t)n) || evbuffer_add(out, data, len) ||
		    ec_http_out_note(rq->conn, rq, len) || evbuffer_add(out, "\r\n", 2))
			return EC_ENOMEM;
		return 0;
	}
	if (evbuffer_add(out, data, len))
		return EC_ENOMEM;
	return ec_http_out_note(rq->conn, rq, len);
}

int ec_http_h1_file(struct ec_http_rq *rq, struct evbuffer_file_segment *seg, uint64_t len)
{
	struct evbuffer *out = bufferevent_get_output(rq->conn->bev);

	if (evbuffer_add_file_segment(out, seg, 0, (ev_off_t)len) != 0)
		return EC_EIO;
	return ec_http_out_note_file(rq->conn, rq, (size_t)len);
}

int ec_http_h1_end(struct ec_http_rq *rq)
{
	struct ec_http_conn *c = rq->conn;
	int r = 0;

	if (rq->is_chunked && !rq->no_body &&
	    evbuffer_add(bufferevent_get_output(c->bev), "0\r\n\r\n", 5) != 0)
		r = EC_ENOMEM;
	rq->state = EC_HTTP_RQ_SENT;
	bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
	if (r)
		ec_http_h1_abort(rq);
	return r;
}

/* An unfinished response cannot be repaired on HTTP/1.1: end the request and close. */
void ec_http_h1_abort(struct ec_http_rq *rq)
{
	struct ec_http_conn *c = rq->conn;

	if (c->u.h1.cur == rq)
		c->u.h1.cur = NULL;
	ec_http_rq_finish(rq, 0);
	ec_http_conn_close(c);
}

size_t ec_http_h1_buffered(const struct ec_http_rq *rq)
{
	return evbuffer_get_length(bufferevent_get_output(rq->conn->bev));
}
