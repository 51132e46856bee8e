/* ec_http_h2: HTTP/2 on one connection, with an nghttp2 server session. Applies the
 * SETTINGS and limits of HARDENING.md: header bytes and fields per stream, a budget of
 * invalid frames and resets per connection, stalled-window timeouts, no reading while the
 * output is above high water. Responses come from memory, from a file (DATA payloads are
 * file-segment references: no copy on h2c, one mapping on TLS) or from a stream.
 * Request bodies are refused as on HTTP/1.1. Owns the connection's nghttp2 session. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "ec_err.h"
#include "ec_fmt.h"
#include "ec_log.h"
#include "ec_http_int.h"
#include "ec_scan.h"
#include "ec_slab.h"
#include "ec_time.h"

static void h2_refuse(struct ec_http_conn *c, struct ec_http_rq *rq, int status,
                      enum ec_http_rej why, const char *msg);
static int h2_unstage(struct ec_http_conn *c);

/* The request of stream sid, or NULL. The last answer is kept on the connection: the
 * callbacks for one stream come in a row (a header block cannot interleave with another),
 * and nghttp2's lookup is a hash probe per call. on_stream_close forgets it. */
static struct ec_http_rq *stream_rq(struct ec_http_conn *c, int32_t sid)
{
	struct ec_http_h2 *h = &c->u.h2;

	if (sid != h->last_sid || sid == 0) {
		h->last_rq = nghttp2_session_get_stream_user_data(h->sess, sid);
		h->last_sid = sid;
	}
	return h->last_rq;
}

/* Spends one token of the peer's budget of invalid frames and resets. Returns 0, or -1
 * after ending the session with ENHANCE_YOUR_CALM. */
static int h2_glitch(struct ec_http_conn *c)
{
	struct ec_http_h2 *h = &c->u.h2;
	int64_t now = ec_http_now_us(c->srv);

	h->glitch_tokens += (double)(now - h->glitch_us) * EC_HTTP_H2_GLITCH_RATE / 1e6;
	if (h->glitch_tokens > EC_HTTP_H2_GLITCH_BURST)
		h->glitch_tokens = EC_HTTP_H2_GLITCH_BURST;
	h->glitch_us = now;
	if (h->glitch_tokens < 1) {
		ec_http_reject(c->srv, EC_HTTP_REJ_H2_GLITCH);
		nghttp2_session_terminate_session(h->sess, NGHTTP2_ENHANCE_YOUR_CALM);
		c->need_flush = 1;
		return -1;
	}
	h->glitch_tokens -= 1;
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* receiving */

static int on_begin_headers(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
	struct ec_http_conn *c = user;
	struct ec_http_rq *rq;

	if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0;
	rq = ec_http_rq_new(c);
	if (!rq)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	rq->stream_id = frame->hd.stream_id;
	rq->state = EC_HTTP_RQ_HEADERS;
	rq->begin_us = ec_http_now_us(c->srv);
	c->u.h2.n_streams++;
	nghttp2_session_set_stream_user_data(sess, frame->hd.stream_id, rq);
	c->u.h2.last_sid = frame->hd.stream_id;
	c->u.h2.last_rq = rq;
	return 0;
}

static const char *static_method(const uint8_t *v, size_t n)
{
	static const char *const m[] = { "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS",
	                                 "PATCH", "TRACE", "CONNECT" };
	size_t i;

	for (i = 0; i < EC_ARRAY_LEN(m); i++)
		if (strlen(m[i]) == n && memcmp(m[i], v, n) == 0)
			return m[i];
	return NULL;
}

static int on_header(nghttp2_session *sess, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user)
{
	struct ec_http_conn *c = user;
	struct ec_http_server *s = c->srv;
	struct ec_http_rq *rq;
	const char *n = (const char *)name, *v = (const char *)value;

	if (frame->hd.type != NGHTTP2_HEADERS)
		return 0;
	rq = stream_rq(c, frame->hd.stream_id);
	if (!rq || rq->state != EC_HTTP_RQ_HEADERS)
		return 0;
	/* decoded bytes: a small HPACK block can expand to megabytes */
	rq->hdr_bytes += namelen + valuelen;
	if (rq->hdr_bytes > s->o.max_header_bytes) {
		ec_http_reject(s, EC_HTTP_REJ_HEADER_BYTES);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (frame->headers.cat != NGHTTP2_HCAT_REQUEST)
		return 0; /* trailers: counted, not kept */
	if (namelen && n[0] == ':') {
		/* nghttp2 has checked presence, order and duplicates */
		if (namelen == 7 && memcmp(n, ":method", 7) == 0) {
			const char *m = static_method(value, valuelen);
			if (m) {
				rq->pub.method = m;
			} else if (ec_http_rq_put(rq, v, valuelen, 0, &rq->method_off)) {
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			} else {
				rq->method_len = (uint32_t)valuelen;
			}
			rq->pub.is_head = valuelen == 4 && memcmp(v, "HEAD", 4) == 0;
		} else if (namelen == 5 && memcmp(n, ":path", 5) == 0) {
			if (ec_http_rq_put(rq, v, valuelen, 0, &rq->target_off))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			rq->target_len = (uint32_t)valuelen;
			rq->has_target = 1;
		} else if (namelen == 10 && memcmp(n, ":authority", 10) == 0) {
			if (ec_http_rq_put(rq, v, valuelen, 0, &rq->auth_off))
				return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
			rq->auth_len = (uint32_t)valuelen;
			rq->has_auth = 1;
		}
		return 0;
	}
	if (++rq->n_fields > s->o.max_header_fields) {
		ec_http_reject(s, EC_HTTP_REJ_HEADER_FIELDS);
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	}
	if (ec_http_rq_add_header(rq, n, namelen, v, valuelen))
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
	if (namelen == 4 && memcmp(n, "host", 4) == 0 && !rq->has_auth) {
		rq->auth_off = (uint32_t)(uintptr_t)rq->hdrs[rq->pub.n_headers - 1].value;
		rq->auth_len = (uint32_t)valuelen;
		rq->has_auth = 1;
	}
	return 0;
}

/* The request is complete and bodiless: seal it and hand it to the handler. */
static void h2_ready(struct ec_http_conn *c, struct ec_http_rq *rq)
{
	rq->wait_end = 0;
	if (ec_http_rq_seal(rq) != 0 || !rq->pub.method) {
		h2_refuse(c, rq, 400, EC_HTTP_REJ_BAD_REQUEST, "request target must be a path");
		return;
	}
	ec_http_rq_dispatch(rq);
}

static void h2_refuse_body(struct ec_http_conn *c, struct ec_http_rq *rq)
{
	const char *m = rq->pub.method;

	rq->wait_end = 0;
	if (m && (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0))
		h2_refuse(c, rq, 400, EC_HTTP_REJ_BODY, "a GET or HEAD request has no body");
	else
		h2_refuse(c, rq, 413, EC_HTTP_REJ_BODY, "request bodies are not accepted");
}

static int on_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
	struct ec_http_conn *c = user;
	struct ec_http_rq *rq;

	c->u.h2.got_frame = 1;
	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		rq = stream_rq(c, frame->hd.stream_id);
		if (!rq)
			return 0;
		if (frame->headers.cat == NGHTTP2_HCAT_REQUEST && rq->state == EC_HTTP_RQ_HEADERS) {
			if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
				h2_ready(c, rq);
			} else {
				/* a body may follow; an empty DATA with END_STREAM is still fine */
				size_t i, k;
				rq->wait_end = 1;
				for (i = 0; i < rq->pub.n_headers; i++) {
					const struct ec_http_header *h = &rq->hdrs[i];
					const char *v = rq->arena + (uintptr_t)h->value;
					if (h->name_len != 14 ||
					    memcmp(rq->arena + (uintptr_t)h->name, "content-length",
					           14) != 0)
						continue;
					for (k = 0; k < h->value_len && v[k] == '0'; k++)
						;
					if (k < h->value_len)
						break; /* announces a body */
				}
				if (i < rq->pub.n_headers)
					h2_refuse_body(c, rq);
			}
		} else if (rq->wait_end && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
			h2_ready(c, rq); /* trailers ended a bodiless request */
		}
		break;
	case NGHTTP2_DATA:
		rq = stream_rq(c, frame->hd.stream_id);
		if (rq && rq->wait_end && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
			h2_ready(c, rq);
		break;
	default:
		break;
	}
	return 0;
}

static int on_data_chunk_recv(nghttp2_session *sess, uint8_t flags, int32_t sid,
                              const uint8_t *data, size_t len, void *user)
{
	struct ec_http_conn *c = user;
	struct ec_http_rq *rq = stream_rq(c, sid);

	if (rq && len && rq->wait_end)
		h2_refuse_body(c, rq);
	return 0;
}

static void drain_q_remove(struct ec_http_conn *c, struct ec_http_rq *rq)
{
	struct ec_http_rq **pp;

	for (pp = &c->u.h2.drain_q; *pp; pp = &(*pp)->znext) {
		if (*pp == rq) {
			*pp = rq->znext;
			break;
		}
	}
	rq->in_drain_q = 0;
}

static int on_stream_close(nghttp2_session *sess, int32_t sid, uint32_t error_code,
                           void *user)
{
	struct ec_http_conn *c = user;
	struct ec_http_rq *rq = stream_rq(c, sid);

	c->u.h2.last_sid = 0;
	c->u.h2.last_rq = NULL;
	if (!rq)
		return 0;
	nghttp2_session_set_stream_user_data(sess, sid, NULL);
	c->u.h2.n_streams--;
	if (rq->in_drain_q)
		drain_q_remove(c, rq);
	if (rq->is_dispatched)
		ec_http_rq_finish(rq, error_code == NGHTTP2_NO_ERROR &&
		                      rq->state == EC_HTTP_RQ_SENT);
	else
		ec_http_rq_discard(rq);
	return 0;
}

static int on_invalid_frame_recv(nghttp2_session *sess, const nghttp2_frame *frame,
                                 int lib_error_code, void *user)
{
	h2_glitch(user);
	return 0;
}

static int on_frame_send(nghttp2_session *sess, const nghttp2_frame *frame, void *user)
{
	struct ec_http_conn *c = user;
	struct ec_http_rq *rq;

	if (frame->hd.type == NGHTTP2_RST_STREAM) {
		/* resets the peer makes us send count against its budget ("MadeYouReset") */
		h2_glitch(c);
		return 0;
	}
	if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
	    (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
		rq = stream_rq(c, frame->hd.stream_id);
		if (rq && rq->rst_after_end) /* stop the body we refused */
			nghttp2_submit_rst_stream(sess, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
			                          NGHTTP2_NO_ERROR);
	}
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* sending */

static ssize_t on_data_read(nghttp2_session *sess, int32_t sid, uint8_t *buf, size_t length,
                            uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
	struct ec_http_rq *rq = source->ptr;
	size_t n;

	if (rq->seg) {
		n = rq->seg_left < length ? (size_t)rq->seg_left : length;
		if (n == rq->seg_left)
			*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		if (n)
			*data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
		return (ssize_t)n;
	}
	n = rq->body ? evbuffer_get_length(rq->body) : 0;
	if (!n) {
		if (!rq->is_ended)
			return NGHTTP2_ERR_DEFERRED;
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	if (n > length)
		n = length;
	*data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
	if (rq->is_ended && n == evbuffer_get_length(rq->body))
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
	return (ssize_t)n;
}

/* DATA payloads as large as the peer accepts (SETTINGS_MAX_FRAME_SIZE), up to
 * EC_HTTP_H2_FRAME_MAX: fewer frames and writes per response. nghttp2 applies the flow
 * control windows; its frame buffer grows to this size once per session. */
static ssize_t on_data_len(nghttp2_session *sess, uint8_t type, int32_t sid,
                           int32_t session_window, int32_t stream_window,
                           uint32_t remote_max_frame_size, void *user)
{
	return remote_max_frame_size < EC_HTTP_H2_FRAME_MAX ? (ssize_t)remote_max_frame_size
	                                                    : (ssize_t)EC_HTTP_H2_FRAME_MAX;
}

void ec_http_chunk_unref(struct ec_http_chunk *k)
{
	if (--k->refs == 0)
		free(k);
}

static void chunk_cleanup(const void *data, size_t len, void *extra)
{
	(void)data;
	(void)len;
	ec_http_chunk_unref(extra);
}

/* Appends bytes [seg_off, seg_off + length) of rq's file to out as a reference into rq's
 * read-ahead block, reading the next block (up to EC_HTTP_H2_READ_AHEAD bytes, one pread)
 * when they are not in it. Returns 0, or -1 when the file fails or ends early (the stream
 * is then cut: never wrong bytes) or memory runs out. */
static int h2_add_read_ahead(struct evbuffer *out, struct ec_http_rq *rq, size_t length)
{
	struct ec_http_chunk *k = rq->ra;

	if (!k || rq->seg_off < rq->ra_off || rq->seg_off + length > rq->ra_off + k->len) {
		size_t want = rq->seg_left < EC_HTTP_H2_READ_AHEAD ? (size_t)rq->seg_left
		                                                    : EC_HTTP_H2_READ_AHEAD;
		ssize_t r;

		if (want < length)
			want = length;
		if (k)
			ec_http_chunk_unref(k);
		rq->ra = NULL;
		k = malloc(sizeof *k + want);
		if (!k)
			return -1;
		k->refs = 1;
		k->len = want;
		do
			r = pread(rq->seg_fd, k->data, want, rq->seg_base + (off_t)rq->seg_off);
		while (r < 0 && errno == EINTR);
		if (r != (ssize_t)want) {
			ec_log_warn("http: reading a response body failed at offset %llu: %s",
			            (unsigned long long)rq->seg_off,
			            r < 0 ? strerror(errno) : "file shorter than announced");
			free(k);
			return -1;
		}
		rq->ra = k;
		rq->ra_off = rq->seg_off;
	}
	k->refs++;
	if (evbuffer_add_reference(out, k->data + (rq->seg_off - rq->ra_off), length,
	                           chunk_cleanup, k) != 0) {
		k->refs--;
		return -1;
	}
	return 0;
}

/* A DATA frame: its header, then the payload moved (memory) or referenced (file). */
static int on_send_data(nghttp2_session *sess, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user)
{
	struct ec_http_conn *c = user;
	struct ec_http_rq *rq = source->ptr;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	static const uint8_t zeros[256];
	size_t pad = frame->data.padlen;

	/* frames staged before this one go first; never evbuffer_add: see ec_http_out_add */
	if (h2_unstage(c) != 0 || ec_http_out_add(out, framehd, 9) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	if (pad > 0) {
		uint8_t pl = (uint8_t)(pad - 1);
		if (ec_http_out_add(out, &pl, 1) != 0)
			return NGHTTP2_ERR_CALLBACK_FAILURE;
	}
	if (length) {
		if (rq->seg && c->is_direct && length <= EC_HTTP_H2_COPY_MAX &&
		    evbuffer_get_length(out) < EC_HTTP_H2_COPY_WATER) {
			/* a small frame on h2c: cut from a block read ahead, by reference */
			if (h2_add_read_ahead(out, rq, length) != 0)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
			rq->seg_off += length;
			rq->seg_left -= length;
			if (ec_http_out_note(c, rq, length) != 0)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
		} else if (rq->seg) {
			/* a reference into the response's one segment: sendfile on h2c, the
			 * segment's single mapping under TLS */
			if (evbuffer_add_file_segment(out, rq->seg, (ev_off_t)rq->seg_off,
			                              (ev_off_t)length) != 0)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
			rq->seg_off += length;
			rq->seg_left -= length;
			if (ec_http_out_note_file(c, rq, length) != 0)
				return NGHTTP2_ERR_CALLBACK_FAILURE;
		} else if (evbuffer_remove_buffer(rq->body, out, length) != (int)length ||
		           ec_http_out_note(c, rq, length) != 0) {
			return NGHTTP2_ERR_CALLBACK_FAILURE;
		}
	}
	if (pad > 1 && ec_http_out_add(out, zeros, pad - 1) != 0)
		return NGHTTP2_ERR_CALLBACK_FAILURE;
	rq->progress_us = ec_http_now_us(c->srv);
	if (rq->drain_armed && !rq->in_drain_q && rq->state == EC_HTTP_RQ_BODY &&
	    rq->drain_cb && ec_http_h2_buffered(rq) <= c->srv->o.out_low_water) {
		rq->in_drain_q = 1;
		rq->znext = c->u.h2.drain_q;
		c->u.h2.drain_q = rq;
	}
	/* one serialization call would otherwise queue every DATA frame the windows allow
	 * (megabytes): stop at a batch, which ec_http_h2_flush writes before the next */
	if (evbuffer_get_length(out) >= (c->is_direct ? EC_HTTP_H2_BATCH
	                                                : c->srv->o.out_high_water)) {
		c->u.h2.send_paused = 1;
		return NGHTTP2_ERR_PAUSE;
	}
	return 0;
}

/* Ends the connection after a session error: GOAWAY if nghttp2 still can, then close. */
static void h2_fatal(struct ec_http_conn *c, int err)
{
	ec_http_reject(c->srv, EC_HTTP_REJ_H2_PROTOCOL);
	if (err == NGHTTP2_ERR_BAD_CLIENT_MAGIC || err == NGHTTP2_ERR_NOMEM ||
	    err == NGHTTP2_ERR_CALLBACK_FAILURE) {
		ec_http_conn_close(c);
		return;
	}
	nghttp2_session_terminate_session(c->u.h2.sess, err == NGHTTP2_ERR_FLOODED
	                                                ? NGHTTP2_ENHANCE_YOUR_CALM
	                                                : NGHTTP2_PROTOCOL_ERROR);
	/* one last serialization for the GOAWAY, then close */
	{
		struct evbuffer *out = bufferevent_get_output(c->bev);
		const uint8_t *data;
		ssize_t n;
		while ((n = nghttp2_session_mem_send(c->u.h2.sess, &data)) > 0)
			ec_http_out_add(out, data, (size_t)n);
	}
	ec_http_conn_shutdown(c);
}

/* Output at which serialization stops until the socket takes some: a plain socket that is
 * full already holds megabytes, and serializing on would only turn small frames into file
 * references (two calls each) later. */
static size_t h2_flush_water(const struct ec_http_conn *c)
{
	return c->is_direct ? EC_HTTP_H2_COPY_WATER : c->srv->o.out_high_water;
}

/* Frames from nghttp2 are gathered in a buffer on the flush's stack (h->stage) and reach
 * the output in one piece: one append per flush instead of one per frame, or, on a plain
 * socket with nothing queued, one send() and no output buffer at all. Anything that adds
 * to the output itself while frames are staged (DATA in on_send_data, GOAWAY in
 * h2_fatal) moves the staged bytes there first, so the order on the wire holds. */

/* Moves the staged frames to the output. Returns 0 or -1 (allocation). */
static int h2_unstage(struct ec_http_conn *c)
{
	struct ec_http_h2 *h = &c->u.h2;
	size_t n = h->staged;

	if (!n)
		return 0;
	h->staged = 0;
	return ec_http_out_add(bufferevent_get_output(c->bev), h->stage, n);
}

/* The end of a flush: the staged frames go to the socket at once when it is plain, keeps
 * up (no write event armed) and has nothing queued before them; what it does not take,
 * or everything otherwise, is queued. Returns 0 or -1 (allocation). */
static int h2_stage_out(struct ec_http_conn *c)
{
	struct ec_http_h2 *h = &c->u.h2;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t n = h->staged, sent;

	if (!n)
		return 0;
	if (!c->is_direct || c->is_linger || c->is_closing || c->wr_added ||
	    evbuffer_get_length(out) != 0)
		return h2_unstage(c);
	h->staged = 0;
	sent = ec_http_send_now(c, h->stage, n);
	return sent < n ? ec_http_out_add(out, h->stage + sent, n - sent) : 0;
}

/* Serializes queued frames into the output until it reaches high water; on plain sockets
 * writes each batch at once and goes on while the socket takes it. */
void ec_http_h2_flush(struct ec_http_conn *c)
{
	struct ec_http_h2 *h = &c->u.h2;
	nghttp2_session *sess = h->sess;
	struct evbuffer *out = bufferevent_get_output(c->bev);
	uint8_t stage[EC_HTTP_H2_STAGE];
	const uint8_t *data;
	ssize_t n;

	c->need_flush = 0;
	if (c->is_closing || c->is_shutdown)
		return;
	if (h->stage) {
		c->need_flush = 1; /* called from inside a flush: that one goes on */
		return;
	}
	h->stage = stage;
	h->staged = 0;
	for (;;) {
		size_t len = evbuffer_get_length(out) + h->staged;
		/* a plain socket that keeps up takes each batch at once (while it is full the
		 * write event is on and the batches wait for it) */
		if (c->is_direct && len >= EC_HTTP_H2_BATCH && !c->wr_added) {
			if (h2_unstage(c) != 0)
				goto fail;
			ec_http_conn_push(c);
			len = evbuffer_get_length(out);
		}
		if (len >= h2_flush_water(c)) {
			c->need_flush = 1; /* resumed by the write callback */
			break;
		}
		h->send_paused = 0;
		n = nghttp2_session_mem_send(sess, &data);
		if (n < 0) {
			if (h2_unstage(c) != 0)
				goto fail;
			h->stage = NULL;
			h2_fatal(c, (int)n);
			return;
		}
		if (n == 0) {
			if (h->send_paused)
				continue; /* a batch is out: the session has more */
			break;
		}
		if (h->staged + (size_t)n > sizeof stage && h2_unstage(c) != 0)
			goto fail;
		if ((size_t)n > sizeof stage) {
			if (ec_http_out_add(out, data, (size_t)n) != 0)
				goto fail;
		} else {
			memcpy(stage + h->staged, data, (size_t)n);
			h->staged += (size_t)n;
		}
	}
	if (h2_stage_out(c) != 0)
		goto fail;
	h->stage = NULL;
	ec_http_conn_push(c);
	if (!nghttp2_session_want_read(sess) && !nghttp2_session_want_write(sess))
		ec_http_conn_shutdown(c);
	return;
fail:
	h->stage = NULL;
	h->staged = 0;
	ec_http_conn_close(c);
}

/* ------------------------------------------------------------------------------------ */
/* responses */

#define NV_FLAGS(nm, nml, val, vall, fl)                                                      \
	((nghttp2_nv){ (uint8_t *)(uintptr_t)(nm), (uint8_t *)(uintptr_t)(val), (nml), (vall), \
	               (fl) })

/* The lowercase copy of an EC_HTTP_HDR_NAME_OK name, kept for the server's life by the
 * literal's address (the flag promises a string literal), or NULL when its slot holds
 * another name or memory is short: the name is then copied and lower-cased by nghttp2
 * as usual. nghttp2 takes such a copy by reference (NGHTTP2_NV_FLAG_NO_COPY_NAME) instead
 * of copying and lower-casing the name for every response. */
static const char *h2_name_lc(struct ec_http_server *s, const char *name, size_t len)
{
	size_t k = (size_t)(((uintptr_t)name * 0x9E3779B97F4A7C15ull) >> 40) % EC_HTTP_H2_LC_SLOTS;
	char *lc;

	if (s->h2_lc[k].name == name && s->h2_lc[k].len == len)
		return s->h2_lc[k].lc;
	if (s->h2_lc[k].name || !(lc = malloc(len + 1)))
		return NULL;
	ec_scan_lower(lc, name, len);
	lc[len] = '\0';
	s->h2_lc[k].name = name;
	s->h2_lc[k].len = len;
	s->h2_lc[k].lc = lc;
	return lc;
}

/* Submits the response headers, with the request's data source when has_body. clen >= 0
 * adds content-length. nghttp2_submit_response copies every value, and every name not
 * flagged NGHTTP2_NV_FLAG_NO_COPY_NAME, lower-casing the names it copies (nghttp2.h);
 * names we hold lowercase for good (literals, h2_name_lc) go by reference. Returns 0,
 * EC_ENOMEM or EC_ECLOSED (stream gone). */
int ec_http_h2_respond(struct ec_http_rq *rq, int status, const struct ec_http_header *hdrs,
                       size_t n_hdrs, int64_t clen, int has_body)
{
	struct ec_http_conn *c = rq->conn;
	struct ec_http_server *s = c->srv;
	nghttp2_nv nvstack[32], *nv = nvstack;
	nghttp2_data_provider prd;
	char st[4], cl[24];
	const char *lc;
	size_t n = 0, i, nl, vl;
	uint32_t lens[32][2]; /* headers 0..31: lengths, or name length 0 when skipped */
	uint8_t fl;
	int r;

	for (i = 0; i < n_hdrs; i++) {
		int skip = ec_http_hdr_skip(&hdrs[i], &nl, &vl, 1);
		if (i < EC_ARRAY_LEN(lens)) {
			lens[i][0] = skip || nl > UINT32_MAX ? 0 : (uint32_t)nl;
			lens[i][1] = vl > UINT32_MAX ? 0 : (uint32_t)vl;
		}
	}
	if (n_hdrs + 3 > EC_ARRAY_LEN(nvstack)) {
		nv = malloc((n_hdrs + 3) * sizeof *nv);
		if (!nv)
			return EC_ENOMEM;
	}
	st[0] = (char)('0' + status / 100);
	st[1] = (char)('0' + status / 10 % 10);
	st[2] = (char)('0' + status % 10);
	st[3] = '\0';
	/* literal lowercase names: nghttp2 takes them by reference */
	nv[n++] = NV_FLAGS(":status", 7, st, 3, NGHTTP2_NV_FLAG_NO_COPY_NAME);
	nv[n++] = NV_FLAGS("date", 4, ec_http_date(s), 29, NGHTTP2_NV_FLAG_NO_COPY_NAME);
	if (clen >= 0) {
		nv[n++] = NV_FLAGS("content-length", 14, cl,
		                   (size_t)(ec_put_dec(cl, (uint64_t)clen) - cl),
		                   NGHTTP2_NV_FLAG_NO_COPY_NAME);
	}
	for (i = 0; i < n_hdrs; i++) {
		if (i < EC_ARRAY_LEN(lens)) {
			if (!(nl = lens[i][0]))
				continue;
			vl = lens[i][1];
		} else if (ec_http_hdr_skip(&hdrs[i], &nl, &vl, 1)) {
			continue;
		}
		fl = hdrs[i].flags & EC_HTTP_HDR_SENSITIVE ? NGHTTP2_NV_FLAG_NO_INDEX
		                                            : NGHTTP2_NV_FLAG_NONE;
		lc = hdrs[i].flags & EC_HTTP_HDR_NAME_OK ? h2_name_lc(s, hdrs[i].name, nl) : NULL;
		if (lc)
			nv[n++] = NV_FLAGS(lc, nl, hdrs[i].value, vl, fl | NGHTTP2_NV_FLAG_NO_COPY_NAME);
		else
			nv[n++] = NV_FLAGS(hdrs[i].name, nl, hdrs[i].value, vl, fl);
	}
	prd.source.ptr = rq;
	prd.read_callback = on_data_read;
	r = nghttp2_submit_response(c->u.h2.sess, rq->stream_id, nv, n, has_body ? &prd : NULL);
	if (nv != nvstack)
		free(nv);
	if (r != 0)
		return r == NGHTTP2_ERR_NOMEM ? EC_ENOMEM : EC_ECLOSED;
	rq->state = has_body && !rq->is_ended ? EC_HTTP_RQ_BODY : EC_HTTP_RQ_SENT;
	rq->progress_us = ec_http_now_us(c->srv);
	c->need_flush = 1;
	return 0;
}

int ec_http_h2_write(struct ec_http_rq *rq, const void *data, size_t len)
{
	struct ec_http_conn *c = rq->conn;

	if (evbuffer_add(rq->body, data, len) != 0)
		return EC_ENOMEM;
	nghttp2_session_resume_data(c->u.h2.sess, rq->stream_id);
	c->need_flush = 1;
	return 0;
}

int ec_http_h2_end(struct ec_http_rq *rq)
{
	struct ec_http_conn *c = rq->conn;

	rq->is_ended = 1;
	rq->state = EC_HTTP_RQ_SENT;
	nghttp2_session_resume_data(c->u.h2.sess, rq->stream_id);
	c->need_flush = 1;
	return 0;
}

void ec_http_h2_abort(struct ec_http_rq *rq)
{
	struct ec_http_conn *c = rq->conn;

	rq->rst_after_end = 0;
	nghttp2_submit_rst_stream(c->u.h2.sess, NGHTTP2_FLAG_NONE, rq->stream_id,
	                          NGHTTP2_INTERNAL_ERROR);
	c->need_flush = 1;
}

size_t ec_http_h2_buffered(const struct ec_http_rq *rq)
{
	return rq->body ? evbuffer_get_length(rq->body) : 0;
}

/* Answers a request the handler will not see; the stream is reset once the answer is out
 * so the client stops sending. */
static void h2_refuse(struct ec_http_conn *c, struct ec_http_rq *rq, int status,
                      enum ec_http_rej why, const char *msg)
{
	static const struct ec_http_header ct = { "content-type", 12,
	                                          "text/plain; charset=utf-8", 25, 0 };
	size_t len = strlen(msg);

	ec_http_reject(c->srv, why);
	ec_http_log_refusal(c, rq->pub.id, status, msg);
	rq->state = EC_HTTP_RQ_HANDLER;
	rq->rst_after_end = 1;
	if (!rq->body && !(rq->body = evbuffer_new())) {
		nghttp2_submit_rst_stream(c->u.h2.sess, NGHTTP2_FLAG_NONE, rq->stream_id,
		                          NGHTTP2_REFUSED_STREAM);
		c->need_flush = 1;
		return;
	}
	evbuffer_add(rq->body, msg, len);
	evbuffer_add(rq->body, "\n", 1);
	rq->is_ended = 1;
	if (ec_http_h2_respond(rq, status, &ct, 1, (int64_t)len + 1, 1) != 0)
		nghttp2_submit_rst_stream(c->u.h2.sess, NGHTTP2_FLAG_NONE, rq->stream_id,
		                          NGHTTP2_INTERNAL_ERROR);
	c->need_flush = 1;
}

/* ------------------------------------------------------------------------------------ */
/* the connection */

/* nghttp2's allocator: the server's slab (see ec_slab.h) */
static void *h2_malloc(size_t size, void *user)
{
	return ec_slab_alloc(user, size);
}

static void h2_free(void *p, void *user)
{
	ec_slab_release(user, p);
}

static void *h2_calloc(size_t nmemb, size_t size, void *user)
{
	return ec_slab_calloc(user, nmemb, size);
}

static void *h2_realloc(void *p, size_t size, void *user)
{
	return ec_slab_realloc(user, p, size);
}

int ec_http_h2_setup(struct ec_http_server *s)
{
	nghttp2_session_callbacks *cb;

	if (nghttp2_session_callbacks_new(&cb) != 0)
		return EC_ENOMEM;
	nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
	nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
	nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, on_invalid_frame_recv);
	nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
	nghttp2_session_callbacks_set_send_data_callback(cb, on_send_data);
	nghttp2_session_callbacks_set_data_source_read_length_callback(cb, on_data_len);
	s->h2_cbs = cb;
	/* at most EC_HTTP_H2_SLAB_KEEP free blocks per size class stay cached */
	if (!(s->h2_slab = ec_slab_new(EC_HTTP_H2_SLAB_KEEP)))
		return EC_ENOMEM;
	s->h2_mem = (nghttp2_mem){ s->h2_slab, h2_malloc, h2_free, h2_calloc, h2_realloc };
	if (nghttp2_option_new(&s->h2_opt) != 0)
		return EC_ENOMEM;
	nghttp2_option_set_no_closed_streams(s->h2_opt, 1);
	/* the default of 8 closes legitimate connections whose CONTINUATION frames arrive a
	 * few bytes per read; the header budget still bounds the total */
	nghttp2_option_set_max_continuations(s->h2_opt, 32);
	nghttp2_option_set_stream_reset_rate_limit(s->h2_opt, 1000, 33);
	return 0;
}

void ec_http_h2_teardown(struct ec_http_server *s)
{
	for (size_t i = 0; i < EC_ARRAY_LEN(s->h2_lc); i++) {
		free(s->h2_lc[i].lc);
		s->h2_lc[i].name = s->h2_lc[i].lc = NULL;
	}
	if (s->h2_cbs)
		nghttp2_session_callbacks_del(s->h2_cbs);
	if (s->h2_opt)
		nghttp2_option_del(s->h2_opt);
	s->h2_cbs = NULL;
	s->h2_opt = NULL;
	ec_slab_free(s->h2_slab); /* every session is gone */
	s->h2_slab = NULL;
}

int ec_http_h2_start(struct ec_http_conn *c)
{
	struct ec_http_server *s = c->srv;
	struct ec_http_h2 *h = &c->u.h2;
	nghttp2_settings_entry iv[5] = {
		{ NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, s->o.h2_max_streams },
		{ NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s->o.h2_window },
		{ NGHTTP2_SETTINGS_HEADER_TABLE_SIZE, 4096 },
		/* HPACK counts 32 bytes of overhead per field */
		{ NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE,
		  (uint32_t)(s->o.max_header_bytes + 32 * (s->o.max_header_fields + 8)) },
		{ NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1 },
	};

	memset(h, 0, sizeof *h);
	if (nghttp2_session_server_new3(&h->sess, s->h2_cbs, c, s->h2_opt, &s->h2_mem) != 0) {
		h->sess = NULL;
		return EC_ENOMEM;
	}
	if (nghttp2_submit_settings(h->sess, NGHTTP2_FLAG_NONE, iv, EC_ARRAY_LEN(iv)) != 0)
		return EC_ENOMEM;
	h->glitch_tokens = EC_HTTP_H2_GLITCH_BURST;
	h->glitch_us = ec_http_now_us(c->srv);
	/* input is consumed as it arrives; output above high water pauses reading instead */
	ec_http_conn_read_high(c, 0);
	bufferevent_setwatermark(c->bev, EV_WRITE, s->o.out_low_water, 0);
	c->need_flush = 1;
	return 0;
}

void ec_http_h2_stop(struct ec_http_conn *c)
{
	struct ec_http_rq *rq;

	if (c->u.h2.sess) {
		nghttp2_session_del(c->u.h2.sess); /* calls no stream-close callbacks */
		c->u.h2.sess = NULL;
	}
	for (rq = c->reqs; rq; rq = rq->next)
		rq->in_drain_q = 0;
	c->u.h2.drain_q = NULL;
}

void ec_http_h2_on_read(struct ec_http_conn *c)
{
	struct ec_http_server *s = c->srv;
	struct evbuffer *in = bufferevent_get_input(c->bev);
	struct evbuffer *out = bufferevent_get_output(c->bev);

	while (!c->is_closing && !c->is_shutdown && !c->read_paused) {
		size_t n = evbuffer_get_contiguous_space(in);
		const uint8_t *data;
		ssize_t r;

		if (!n)
			break;
		data = evbuffer_pullup(in, (ev_ssize_t)n);
		r = nghttp2_session_mem_recv(c->u.h2.sess, data, n);
		if (r < 0) {
			h2_fatal(c, (int)r);
			return;
		}
		evbuffer_drain(in, (size_t)r);
		ec_http_h2_flush(c);
		if (evbuffer_get_length(out) >= s->o.out_high_water) {
			/* the peer reads slower than it asks: stop feeding the session */
			c->read_paused = 1;
			ec_http_conn_read(c, 0);
		}
	}
}

/* Reading paused at high water resumes once the output fell below it, whoever wrote it
 * (the write callback, or a flush that wrote to the socket directly). */
static void h2_resume_read(struct ec_http_conn *c)
{
	if (c->read_paused && !c->is_closing && !c->is_shutdown &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) < c->srv->o.out_high_water) {
		c->read_paused = 0;
		ec_http_conn_read(c, 1);
		ec_http_h2_on_read(c);
	}
}

void ec_http_h2_on_write(struct ec_http_conn *c)
{
	ec_http_h2_flush(c);
	h2_resume_read(c);
}

/* With no callback on the stack: wake drained producers, flush, pick the timer. */
void ec_http_h2_settle(struct ec_http_conn *c)
{
	struct ec_http_h2 *h = &c->u.h2;
	struct ec_http_rq *rq;
	int guard;

	for (guard = 0; guard < 16 && !c->is_closing; guard++) {
		while ((rq = h->drain_q)) {
			h->drain_q = rq->znext;
			rq->in_drain_q = 0;
			if (rq->state == EC_HTTP_RQ_BODY && rq->drain_cb && rq->drain_armed) {
				rq->drain_armed = 0;
				rq->drain_cb(&rq->pub, rq->drain_arg);
			}
		}
		if (c->need_flush)
			ec_http_h2_flush(c);
		h2_resume_read(c);
		if (!c->need_flush && !h->drain_q)
			break;
		if (c->need_flush &&
		    evbuffer_get_length(bufferevent_get_output(c->bev)) >= h2_flush_water(c))
			break; /* at high water: the write callback resumes */
	}
	if (c->is_closing || c->is_shutdown || !h->got_frame)
		return;
	if (h->n_streams == 0) {
		if (c->tmode != EC_HTTP_TM_IDLE)
			ec_http_conn_timer(c, EC_HTTP_TM_IDLE);
	} else if (c->tmode != EC_HTTP_TM_TICK) {
		ec_http_conn_timer(c, EC_HTTP_TM_TICK);
	}
}

/* Idle: say goodbye. Tick: reset streams whose output has not moved for write_timeout
 * (a window the peer never opens) and end header blocks that never complete. */
void ec_http_h2_on_timeout(struct ec_http_conn *c, int mode)
{
	struct ec_http_server *s = c->srv;
	struct ec_http_rq *rq;
	int64_t now = ec_http_now_us(s);

	if (mode == EC_HTTP_TM_IDLE) {
		nghttp2_session_terminate_session(c->u.h2.sess, NGHTTP2_NO_ERROR);
		c->need_flush = 1;
		return;
	}
	for (rq = c->reqs; rq; rq = rq->next) {
		if (rq->state == EC_HTTP_RQ_HEADERS &&
		    now - rq->begin_us > s->o.header_timeout_ms * 1000) {
			ec_http_reject(s, EC_HTTP_REJ_HEADER_TIMEOUT);
			if (rq->wait_end) {
				nghttp2_submit_rst_stream(c->u.h2.sess, NGHTTP2_FLAG_NONE,
				                          rq->stream_id, NGHTTP2_CANCEL);
			} else {
				nghttp2_session_terminate_session(c->u.h2.sess,
				                                  NGHTTP2_PROTOCOL_ERROR);
				break;
			}
		} else if ((rq->state == EC_HTTP_RQ_BODY || rq->state == EC_HTTP_RQ_SENT) &&
		           (ec_http_h2_buffered(rq) || rq->seg_left) &&
		           now - rq->progress_us > s->o.write_timeout_ms * 1000) {
			ec_http_reject(s, EC_HTTP_REJ_WRITE_TIMEOUT);
			nghttp2_submit_rst_stream(c->u.h2.sess, NGHTTP2_FLAG_NONE, rq->stream_id,
			                          NGHTTP2_CANCEL);
		}
	}
	c->need_flush = 1;
}

/* Graceful stop: GOAWAY with the last stream we took; the rest finish, then close. */
void ec_http_h2_drain(struct ec_http_conn *c)
{
	nghttp2_session *sess = c->u.h2.sess;

	nghttp2_submit_goaway(sess, NGHTTP2_FLAG_NONE,
	                      nghttp2_session_get_last_proc_stream_id(sess), NGHTTP2_NO_ERROR,
	                      NULL, 0);
	c->need_flush = 1;
}
