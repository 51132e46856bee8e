/* edge_fill: pull-through fills from the origin-shim with libcurl's multi interface on the
 * daemon's libevent loop (curl_multi_socket_action). One fill per object: it streams to
 * the viewers that arrived before the first byte, writes a temp file while hashing, holds
 * back the last chunk until the Repr-Digest matches, then commits; later arrivals wait for
 * the commit and are served as hits. Viewer bytes take tokens of the box's egress bucket
 * (edge_pace): an empty bucket pauses the transfer like a slow viewer does. Background
 * fills (prefetch) use the same path at a capped receive rate.
 * Owns fills, their curl handles and viewer lists. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <openssl/evp.h>

#include "ec_err.h"
#include "ec_http.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_time.h"
#include "edge.h"

#define FILLS_MAGIC 0x45464c53u /* "EFLS" */
#define FILL_MAGIC 0x4546494cu  /* "EFIL" */
#define VIEWER_HIGH_WATER (256 * 1024) /* same as the server's out_high_water */

enum fill_outcome {
	FILL_OK = 0,          /* body complete and digest verified */
	FILL_NOT_FOUND,       /* origin answered 404/410 */
	FILL_FAILED,          /* origin error, unreachable, timeout, torn body */
	FILL_BAD_DIGEST,      /* body does not match Repr-Digest, or no digest */
	FILL_SKIPPED,         /* prefetch that does not fit without evicting */
};

struct edge_fill {
	unsigned magic;
	struct edge_fills *fills;
	struct edge_fill *next;           /* in fills->list */
	CURL *easy;
	struct curl_slist *req_hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char path[EDGE_STORE_PATH_MAX + 1];
	size_t path_len;
	size_t svc;                       /* conf.services index of path (accounting) */
	int64_t start_us;

	/* background fill (prefetch) */
	int is_prefetch;
	int may_evict;                    /* 0: abandoned unless it fits in the free space */
	int is_skipped;
	int is_capped;                    /* receive rate limited (no viewer yet) */
	edge_fill_done_cb done;
	void *done_arg;

	/* response */
	long status;
	int headers_done;
	int64_t content_length;           /* -1 unknown */
	char ctype[EDGE_STORE_CTYPE_MAX + 1];
	char etag[EDGE_STORE_ETAG_MAX + 1];
	char lastmod[EDGE_STORE_LASTMOD_MAX + 1];
	int has_digest;
	uint8_t want_sha[32];             /* from Repr-Digest */
	EVP_MD_CTX *md;
	uint64_t received;
	struct edge_store_writer *w;      /* NULL: not caching this one */

	/* viewers */
	struct edge_reqctx *viewers;      /* stream the bytes as they arrive */
	struct edge_reqctx *waiters;      /* served from the store after the commit */
	int streams_started;
	uint8_t *hold;                    /* last chunk, sent once the digest matches */
	size_t hold_len, hold_cap;
	int is_paused;
	struct edge_pace_waiter pace_w;   /* paused for egress tokens */
	int is_pace_granted;              /* woken by the pacer: may send once */
	struct event *ev_resume;          /* deferred unpause (never inside curl callbacks) */
	struct event *ev_stall;           /* paused too long: drop the slow viewers */
};

struct edge_fills {
	unsigned magic;
	struct edge_server *srv;          /* borrowed */
	CURLM *multi;
	struct event *ev_timer;
	struct edge_fill *list;
	size_t n;
};

struct fill_sock {
	struct event *ev;
	struct edge_fills *fills;
};

static void fills_check_done(struct edge_fills *fs);

/* --- curl <-> libevent ------------------------------------------------------------------- */

static void on_sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct edge_fills *fs = arg;
	int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
	             ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
	int running = 0;

	curl_multi_socket_action(fs->multi, fd, action, &running);
	fills_check_done(fs);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct edge_fills *fs = arg;
	int running = 0;

	curl_multi_socket_action(fs->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	fills_check_done(fs);
}

/* curl tells which sockets to watch; one persistent event per socket. */
static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *sockp)
{
	struct edge_fills *fs = userp;
	struct fill_sock *sk = sockp;
	short flags;

	if (what == CURL_POLL_REMOVE) {
		if (sk) {
			event_free(sk->ev);
			free(sk);
			curl_multi_assign(fs->multi, s, NULL);
		}
		return 0;
	}
	if (!sk) {
		sk = calloc(1, sizeof *sk);
		if (!sk)
			return -1;
		sk->fills = fs;
		curl_multi_assign(fs->multi, s, sk);
	} else {
		event_free(sk->ev);
		sk->ev = NULL;
	}
	flags = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	        ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	sk->ev = event_new(fs->srv->base, s, flags, on_sock_event, fs);
	if (!sk->ev || event_add(sk->ev, NULL) != 0)
		return -1;
	return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct edge_fills *fs = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(fs->ev_timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(fs->ev_timer, &tv);
	return 0;
}

struct edge_fills *edge_fills_new(struct edge_server *srv, char *err, size_t errlen)
{
	static int curl_ready;
	struct edge_fills *fs;

	if (!curl_ready) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
			snprintf(err, errlen, "libcurl initialisation failed");
			return NULL;
		}
		curl_ready = 1;
	}
	fs = calloc(1, sizeof *fs);
	if (!fs) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	fs->magic = FILLS_MAGIC;
	fs->srv = srv;
	fs->multi = curl_multi_init();
	fs->ev_timer = evtimer_new(srv->base, on_timer, fs);
	if (!fs->multi || !fs->ev_timer) {
		snprintf(err, errlen, "out of memory");
		edge_fills_free(fs);
		return NULL;
	}
	curl_multi_setopt(fs->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
	curl_multi_setopt(fs->multi, CURLMOPT_SOCKETDATA, fs);
	curl_multi_setopt(fs->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
	curl_multi_setopt(fs->multi, CURLMOPT_TIMERDATA, fs);
	return fs;
}

size_t edge_fills_inflight(const struct edge_fills *fs)
{
	return fs->n;
}

/* --- viewer lists ------------------------------------------------------------------------ */

/* Frees list entries whose request already closed. */
static void list_sweep(struct edge_reqctx **pp)
{
	while (*pp) {
		struct edge_reqctx *c = *pp;
		if (!c->req) {
			*pp = c->fnext;
			c->magic = 0;
			free(c);
		} else {
			pp = &c->fnext;
		}
	}
}

void edge_fill_viewer_closed(struct edge_reqctx *ctx)
{
	struct edge_fill *f = ctx->fill;

	EC_ASSERT(f && f->magic == FILL_MAGIC);
	/* stays listed until the next sweep: the fill may be walking its lists right now */
	if (f->is_paused)
		event_active(f->ev_resume, EV_TIMEOUT, 0);
}

/* Gives ctx back to its request (its close callback frees it) or frees it if it closed. */
static struct edge_reqctx *detach(struct edge_reqctx *c)
{
	struct edge_reqctx *next = c->fnext;
	c->fnext = NULL;
	c->fill = NULL;
	if (!c->req) {
		c->magic = 0;
		free(c);
	}
	return next;
}

static int viewer_live(const struct edge_reqctx *c)
{
	return c->req && c->is_streaming && !c->is_dropped;
}

/* --- fill lifetime ----------------------------------------------------------------------- */

static void fill_free(struct edge_fill *f)
{
	struct edge_fills *fs = f->fills;
	struct edge_fill **pp;
	struct edge_reqctx *c;

	for (pp = &fs->list; *pp && *pp != f; pp = &(*pp)->next)
		;
	if (*pp) {
		*pp = f->next;
		fs->n--;
	}
	if (f->easy) {
		curl_multi_remove_handle(fs->multi, f->easy);
		curl_easy_cleanup(f->easy);
	}
	curl_slist_free_all(f->req_hdrs);
	edge_pace_cancel(fs->srv->pace, &f->pace_w);
	edge_store_abort(&f->w);
	EVP_MD_CTX_free(f->md);
	for (c = f->viewers; c; )
		c = detach(c);
	for (c = f->waiters; c; )
		c = detach(c);
	if (f->ev_resume)
		event_free(f->ev_resume);
	if (f->ev_stall)
		event_free(f->ev_stall);
	free(f->hold);
	f->magic = 0;
	free(f);
}

void edge_fills_free(struct edge_fills *fs)
{
	if (!fs)
		return;
	EC_ASSERT(fs->magic == FILLS_MAGIC);
	while (fs->list) {
		struct edge_fill *f = fs->list;
		/* the process is going away: whoever still streams sees a cut transfer */
		for (struct edge_reqctx *c = f->viewers; c; c = c->fnext)
			if (c->req && c->is_streaming && !c->is_dropped) {
				c->is_dropped = 1;
				ec_http_abort(c->req);
			}
		fill_free(f);
	}
	if (fs->multi)
		curl_multi_cleanup(fs->multi);
	if (fs->ev_timer)
		event_free(fs->ev_timer);
	fs->magic = 0;
	free(fs);
}

/* --- response headers from the shim ------------------------------------------------------- */

static int b64val(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Decodes standard base64 (padding optional) of exactly 32 bytes. Returns 0 or -1. */
static int b64_sha256(const char *s, size_t n, uint8_t out[32])
{
	uint32_t acc = 0;
	int bits = 0;
	size_t o = 0;

	while (n > 0 && s[n - 1] == '=')
		n--;
	for (size_t i = 0; i < n; i++) {
		int v = b64val((unsigned char)s[i]);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (o == 32)
				return -1;
			out[o++] = (uint8_t)(acc >> bits);
		}
	}
	return o == 32 ? 0 : -1;
}

/* Finds the sha-256 member of a Repr-Digest dictionary: sha-256=:<base64>: */
static int parse_repr_digest(const char *v, size_t n, uint8_t out[32])
{
	for (size_t i = 0; i + 8 < n; i++) {
		const char *p, *end;
		if (strncasecmp(v + i, "sha-256", 7) != 0 ||
		    (i > 0 && v[i - 1] != ' ' && v[i - 1] != ',' && v[i - 1] != '\t'))
			continue;
		p = v + i + 7;
		if (p + 2 > v + n || p[0] != '=' || p[1] != ':')
			continue;
		p += 2;
		end = memchr(p, ':', (size_t)(v + n - p));
		if (!end)
			return -1;
		return b64_sha256(p, (size_t)(end - p), out);
	}
	return -1;
}

/* Copies a header value without surrounding blanks into out if it fits. */
static void copy_value(char *out, size_t outlen, const char *v, size_t n)
{
	while (n && (*v == ' ' || *v == '\t'))
		v++, n--;
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
		n--;
	if (n >= outlen) {
		out[0] = '\0';
		return;
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)v[i] < 0x20 && v[i] != '\t') {
			out[0] = '\0'; /* never pass a control character on to viewers */
			return;
		}
	memcpy(out, v, n);
	out[n] = '\0';
}

static size_t fill_viewer_headers(struct edge_fill *f, struct ec_http_header *h, size_t max)
{
	size_t n = edge_serve_common_headers(f->fills->srv, h, max);
	h[n++] = (struct ec_http_header){ "Content-Type", 0,
	                                  f->ctype[0] ? f->ctype : "application/octet-stream", 0, 0 };
	h[n++] = (struct ec_http_header){ "Accept-Ranges", 0, "bytes", 0, 0 };
	if (f->etag[0])
		h[n++] = (struct ec_http_header){ "ETag", 0, f->etag, 0, 0 };
	if (f->lastmod[0])
		h[n++] = (struct ec_http_header){ "Last-Modified", 0, f->lastmod, 0, 0 };
	return n;
}

static void fill_cache_error(struct edge_fill *f, int rc, int err_no)
{
	struct edge_server *srv = f->fills->srv;
	if (rc == EC_ETOOBIG)
		ec_log_info("fill %s: larger than the cache; serving it without caching", f->path);
	else
		ec_log_warn("cache %s: %s; serving %s without caching",
		            edge_store_dir(srv->store), strerror(err_no), f->path);
	if (rc != EC_ETOOBIG)
		ec_metric_inc(srv->m.cache_write_errors);
	edge_store_abort(&f->w);
}

/* A prefetch that may not evict fits only in the free space (header bytes included);
 * once a viewer joined it is a normal fill. */
static int fill_fits(const struct edge_fill *f, uint64_t body)
{
	struct edge_store_stats ss;

	if (f->may_evict || f->viewers || f->waiters)
		return 1;
	edge_store_stats(f->fills->srv->store, &ss);
	return ss.bytes <= ss.max_bytes &&
	       body + 1024 + f->path_len <= ss.max_bytes - ss.bytes;
}

/* The status line and headers are complete: open the temp file and start the streams. */
static void fill_headers_done(struct edge_fill *f)
{
	struct edge_server *srv = f->fills->srv;
	struct ec_http_header h[16];
	struct edge_obj_info info;
	curl_off_t cl = -1;
	size_t n;
	int rc;

	f->headers_done = 1;
	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &f->status);
	if (f->status != 200)
		return;
	curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	f->content_length = cl >= 0 ? (int64_t)cl : -1;
	if (!f->etag[0] && f->has_digest) {
		/* no origin ETag: the digest makes a strong one */
		char hx[33];
		for (int i = 0; i < 16; i++)
			snprintf(hx + 2 * i, 3, "%02x", f->want_sha[i]);
		snprintf(f->etag, sizeof f->etag, "\"%s\"", hx);
	}
	info.ctype = f->ctype;
	info.etag = f->etag;
	info.lastmod = f->lastmod;
	if (!fill_fits(f, f->content_length >= 0 ? (uint64_t)f->content_length : 0)) {
		f->is_skipped = 1;
		return;
	}
	rc = edge_store_begin(srv->store, f->path, f->path_len, &info, f->content_length, &f->w);
	if (rc != 0)
		fill_cache_error(f, rc, errno);
	if (f->content_length == 0)
		return; /* nothing to stream: viewers are answered after the commit */
	n = fill_viewer_headers(f, h, EC_ARRAY_LEN(h));
	f->streams_started = 1;
	for (struct edge_reqctx *c = f->viewers; c; c = c->fnext) {
		if (!c->req)
			continue;
		c->is_streaming = 1;
		c->body_len = f->content_length > 0 ? (uint64_t)f->content_length : 0;
		edge_serve_count(c, 200, EDGE_RESULT_MISS);
		if (ec_http_stream_start(c->req, 200, h, n, f->content_length) != 0)
			c->is_dropped = 1;
	}
}

static size_t on_curl_header(char *data, size_t size, size_t nmemb, void *arg)
{
	struct edge_fill *f = arg;
	size_t len = size * nmemb;
	const char *colon;
	size_t nlen;

	if (len == 2 && data[0] == '\r' && data[1] == '\n') {
		long code = 0;
		curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &code);
		if (!f->headers_done && code >= 200)
			fill_headers_done(f);
		return f->is_skipped ? 0 : len; /* 0: curl ends a skipped prefetch here */
	}
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* a new header block (after 1xx): forget the previous one */
		f->ctype[0] = f->etag[0] = f->lastmod[0] = '\0';
		f->has_digest = 0;
		return len;
	}
	colon = memchr(data, ':', len);
	if (!colon)
		return len;
	nlen = (size_t)(colon - data);
	colon++;
	if (nlen == 12 && strncasecmp(data, "content-type", 12) == 0)
		copy_value(f->ctype, sizeof f->ctype, colon, len - nlen - 1);
	else if (nlen == 4 && strncasecmp(data, "etag", 4) == 0)
		copy_value(f->etag, sizeof f->etag, colon, len - nlen - 1);
	else if (nlen == 13 && strncasecmp(data, "last-modified", 13) == 0)
		copy_value(f->lastmod, sizeof f->lastmod, colon, len - nlen - 1);
	else if (nlen == 11 && strncasecmp(data, "repr-digest", 11) == 0)
		/* also read as a trailer; a digest arriving after the body still verifies it */
		f->has_digest = parse_repr_digest(colon, len - nlen - 1, f->want_sha) == 0;
	return len;
}

/* --- body --------------------------------------------------------------------------------- */

static int fill_viewers_high(const struct edge_fill *f)
{
	for (const struct edge_reqctx *c = f->viewers; c; c = c->fnext)
		if (viewer_live(c) && ec_http_stream_buffered(c->req) > VIEWER_HIGH_WATER)
			return 1;
	return 0;
}

static void fill_send(struct edge_fill *f, const uint8_t *data, size_t len)
{
	struct edge_server *srv = f->fills->srv;

	for (struct edge_reqctx *c = f->viewers; c; c = c->fnext) {
		if (!viewer_live(c))
			continue;
		int rc = ec_http_stream_write(c->req, data, len);
		if (rc != 0) {
			c->is_dropped = 1;
			if (rc != EC_ECLOSED)
				ec_http_abort(c->req); /* a broken stream must not look whole */
			continue;
		}
		c->stream_written += len;
		edge_serve_egress(srv, len);
	}
}

static int fill_has_live_viewer(const struct edge_fill *f)
{
	for (const struct edge_reqctx *c = f->viewers; c; c = c->fnext)
		if (viewer_live(c))
			return 1;
	return 0;
}

static void on_viewer_drain(struct ec_http_req *req, void *arg)
{
	struct edge_reqctx *c = arg;
	if (c->fill && c->fill->is_paused)
		event_active(c->fill->ev_resume, EV_TIMEOUT, 0);
}

static size_t on_curl_write(char *data, size_t size, size_t nmemb, void *arg)
{
	struct edge_fill *f = arg;
	struct edge_server *srv = f->fills->srv;
	size_t len = size * nmemb;
	int rc;

	if (!f->headers_done)
		fill_headers_done(f);
	if (f->is_skipped)
		return 0; /* curl ends the transfer */
	if (f->status != 200)
		return len; /* an error body: read and dropped */
	list_sweep(&f->viewers);
	if (fill_viewers_high(f)) {
		/* a viewer is behind: stop reading; drained or dropped viewers resume us */
		struct timeval tv = { (time_t)(srv->conf.fill_viewer_stall_ms / 1000),
		                      (suseconds_t)(srv->conf.fill_viewer_stall_ms % 1000) * 1000 };
		for (struct edge_reqctx *c = f->viewers; c; c = c->fnext)
			if (viewer_live(c))
				ec_http_stream_on_drain(c->req, on_viewer_drain, c);
		if (!f->is_paused)
			evtimer_add(f->ev_stall, &tv);
		f->is_paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	if (f->streams_started && f->hold_len && fill_has_live_viewer(f) &&
	    !f->is_pace_granted && !edge_pace_ready(srv->pace, &f->pace_w)) {
		/* the box's uplink is used up: wait for tokens like for a slow viewer */
		edge_pace_wait(srv->pace, &f->pace_w);
		f->is_paused = 1;
		return CURL_WRITEFUNC_PAUSE;
	}
	f->is_pace_granted = 0;
	EVP_DigestUpdate(f->md, data, len);
	f->received += len;
	if (f->is_prefetch) {
		ec_metric_add(srv->m.prefetch_bytes, (double)len);
		edge_hb_account(srv, EDGE_ACCT_PREFETCH_BYTES, len, f->svc);
	} else {
		ec_metric_add(srv->m.fill_bytes, (double)len);
		edge_hb_account(srv, EDGE_ACCT_FILL_BYTES, len, f->svc);
	}
	if (f->w) {
		rc = edge_store_write(f->w, data, len);
		if (rc != 0)
			fill_cache_error(f, rc, errno);
	}
	if (!f->streams_started)
		return len;
	/* hold back the newest chunk: it goes out only once the digest matches */
	if (f->hold_len)
		fill_send(f, f->hold, f->hold_len);
	if (len > f->hold_cap) {
		uint8_t *p = realloc(f->hold, len);
		if (!p)
			return 0; /* curl fails the transfer: viewers get a cut body */
		f->hold = p;
		f->hold_cap = len;
	}
	memcpy(f->hold, data, len);
	f->hold_len = len;
	return len;
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct edge_fill *f = arg;

	list_sweep(&f->viewers);
	if (!f->is_paused || fill_viewers_high(f) || f->pace_w.is_queued)
		return;
	f->is_paused = 0;
	evtimer_del(f->ev_stall);
	curl_easy_pause(f->easy, CURLPAUSE_CONT);
	fills_check_done(f->fills);
}

/* The pacer has tokens for this fill again. */
static void on_pace_wake(void *arg)
{
	struct edge_fill *f = arg;

	f->is_pace_granted = 1;
	event_active(f->ev_resume, EV_TIMEOUT, 0);
}

/* The fill stayed paused for fill.viewer_stall: viewers still behind are dropped so the
 * object can finish for everyone else and for the cache. */
static void on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct edge_fill *f = arg;
	struct edge_server *srv = f->fills->srv;

	for (struct edge_reqctx *c = f->viewers; c; c = c->fnext) {
		if (!viewer_live(c) || ec_http_stream_buffered(c->req) <= VIEWER_HIGH_WATER)
			continue;
		ec_log_info("fill %s: request %" PRIu64 " kept the fill waiting for %" PRId64
		            " ms; dropping that viewer", f->path, c->req->id,
		            srv->conf.fill_viewer_stall_ms);
		ec_metric_inc(srv->m.viewers_dropped);
		c->is_dropped = 1;
		ec_http_abort(c->req); /* its close callback may run now: c stays listed */
	}
	event_active(f->ev_resume, EV_TIMEOUT, 0);
}

/* --- completion --------------------------------------------------------------------------- */

static const char *hexsha(const uint8_t sha[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", sha[i]);
	return out;
}

/* Decides how the transfer ended and commits the object if it is whole and verified. */
static enum fill_outcome fill_finish(struct edge_fill *f, CURLcode cc, char *why,
                                     size_t whylen)
{
	struct edge_server *srv = f->fills->srv;
	uint8_t got[32];
	unsigned int n = 32;
	char a[65], b[65];
	int rc;

	if (f->is_skipped)
		return FILL_SKIPPED;
	if (cc != CURLE_OK) {
		snprintf(why, whylen, "origin-shim %s", f->errbuf[0] ? f->errbuf
		                                                   : curl_easy_strerror(cc));
		return FILL_FAILED;
	}
	if (f->status == 404 || f->status == 410)
		return FILL_NOT_FOUND;
	if (f->status != 200) {
		snprintf(why, whylen, "origin-shim answered %ld", f->status);
		return FILL_FAILED;
	}
	if (f->content_length >= 0 && f->received != (uint64_t)f->content_length) {
		snprintf(why, whylen, "origin-shim sent %" PRIu64 " of %" PRId64 " bytes",
		         f->received, f->content_length);
		return FILL_FAILED;
	}
	if (!f->has_digest) {
		snprintf(why, whylen, "origin-shim sent no Repr-Digest (sha-256)");
		return FILL_BAD_DIGEST;
	}
	EVP_DigestFinal_ex(f->md, got, &n);
	if (memcmp(got, f->want_sha, 32) != 0) {
		snprintf(why, whylen, "digest mismatch: Repr-Digest says sha-256 %s, body is %s",
		         hexsha(f->want_sha, a), hexsha(got, b));
		return FILL_BAD_DIGEST;
	}
	if (f->w && !fill_fits(f, f->received)) {
		edge_store_abort(&f->w);
		return FILL_SKIPPED;
	}
	if (f->w) {
		rc = edge_store_commit(&f->w, got);
		if (rc == EC_EIO)
			ec_log_warn("cache %s: %s; serving %s without caching",
			            edge_store_dir(srv->store), strerror(errno), f->path);
		else if (rc != 0)
			ec_log_info("fill %s: not cached: %s", f->path, ec_strerror(rc));
		if (rc == EC_EIO)
			ec_metric_inc(srv->m.cache_write_errors);
	}
	return FILL_OK;
}

static void fill_done(struct edge_fill *f, CURLcode cc)
{
	struct edge_server *srv = f->fills->srv;
	enum fill_outcome out;
	struct edge_reqctx *c, *waiters;
	char why[512] = "";

	/* no callback of this transfer runs any more: take it out of curl first */
	curl_multi_remove_handle(f->fills->multi, f->easy);
	if (f->ev_stall)
		evtimer_del(f->ev_stall);
	out = fill_finish(f, cc, why, sizeof why);
	switch (out) {
	case FILL_OK:
		ec_log_debug("fill %s: %" PRIu64 " bytes in %" PRId64 " ms", f->path, f->received,
		             (ec_now_us() - f->start_us) / 1000);
		break;
	case FILL_NOT_FOUND:
		ec_log_info("%s %s: not found at the origin", f->is_prefetch ? "prefetch" : "fill",
		            f->path);
		break;
	case FILL_BAD_DIGEST:
		ec_metric_inc(srv->m.digest_mismatch);
		ec_log_warn("fill %s: %s; not cached, viewers get a cut transfer", f->path, why);
		break;
	case FILL_FAILED:
		ec_metric_inc(srv->m.fill_errors);
		if (f->is_prefetch && !f->viewers && !f->waiters)
			ec_log_warn("prefetch %s: %s; trying again later", f->path, why);
		else
			ec_log_warn("fill %s: %s; answering 502", f->path, why);
		break;
	case FILL_SKIPPED:
		ec_log_info("prefetch %s: does not fit in the cache's free space; skipped",
		            f->path);
		break;
	}
	if (f->is_prefetch)
		ec_metric_inc(srv->m.prefetches[out == FILL_OK ? EDGE_PREFETCH_OK :
		              out == FILL_SKIPPED ? EDGE_PREFETCH_SKIPPED : EDGE_PREFETCH_FAILED]);
	if (f->done) {
		edge_fill_done_cb done = f->done;
		f->done = NULL;
		done(f->done_arg, out == FILL_OK ? EDGE_PREFETCH_OK :
		     out == FILL_SKIPPED ? EDGE_PREFETCH_SKIPPED : EDGE_PREFETCH_FAILED);
	}
	edge_store_abort(&f->w); /* whatever did not commit */

	/* Streams that started are finished or cut; viewers that never started streaming
	 * (empty body, error before the first byte) are answered with the waiters. */
	waiters = f->waiters;
	f->waiters = NULL;
	for (c = f->viewers; c; ) {
		struct edge_reqctx *next = c->fnext;
		if (c->req && !c->is_streaming) {
			c->fnext = waiters;
			waiters = c;
			c = next;
			continue;
		}
		if (viewer_live(c)) {
			struct ec_http_req *req = c->req;
			if (out == FILL_OK) {
				if (f->hold_len && ec_http_stream_write(req, f->hold, f->hold_len) == 0) {
					c->stream_written += f->hold_len;
					edge_serve_egress(srv, f->hold_len);
				}
				c->body_len = c->stream_written;
				detach(c);
				ec_http_stream_end(req);
			} else {
				detach(c);
				ec_http_abort(req);
			}
		} else {
			detach(c);
		}
		c = next;
	}
	f->viewers = NULL;
	for (c = waiters; c; ) {
		struct edge_reqctx *next = c->fnext;
		if (!c->req) {
			c = detach(c);
			continue;
		}
		detach(c);
		if (out == FILL_OK)
			edge_serve_hit_or_503(c);
		else if (out == FILL_NOT_FOUND)
			edge_serve_text(c, 404, EDGE_RESULT_MISS, "not found");
		else
			edge_serve_text(c, 502, EDGE_RESULT_ERROR, out == FILL_BAD_DIGEST ?
			                "origin content failed its digest check" :
			                "origin fetch failed");
		c = next;
	}
	fill_free(f);
}

static void fills_check_done(struct edge_fills *fs)
{
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(fs->multi, &left)) != NULL) {
		struct edge_fill *f = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&f);
		EC_ASSERT(f && f->magic == FILL_MAGIC);
		fill_done(f, msg->data.result);
	}
}

/* --- start -------------------------------------------------------------------------------- */

static struct edge_fill *fill_find(struct edge_fills *fs, const char *path, size_t len)
{
	for (struct edge_fill *f = fs->list; f; f = f->next)
		if (f->path_len == len && memcmp(f->path, path, len) == 0)
			return f;
	return NULL;
}

static struct edge_fill *fill_new(struct edge_fills *fs, const char *path, size_t len,
                                  int is_prefetch, uint64_t bps)
{
	struct edge_server *srv = fs->srv;
	struct edge_fill *f;
	char url[EDGE_STORE_PATH_MAX + 1024], hdr[128];

	f = calloc(1, sizeof *f);
	if (!f)
		return NULL;
	f->magic = FILL_MAGIC;
	f->fills = fs;
	memcpy(f->path, path, len);
	f->path[len] = '\0';
	f->path_len = len;
	f->svc = edge_service(srv, path, len);
	f->content_length = -1;
	f->start_us = ec_now_us();
	f->md = EVP_MD_CTX_new();
	f->easy = curl_easy_init();
	f->ev_resume = event_new(srv->base, -1, 0, on_resume, f);
	f->ev_stall = evtimer_new(srv->base, on_stall, f);
	edge_pace_waiter_init(&f->pace_w, on_pace_wake, f);
	f->is_prefetch = is_prefetch;
	f->may_evict = 1;
	snprintf(hdr, sizeof hdr, "Echos-Fill: %s", srv->conf.box_id);
	f->req_hdrs = curl_slist_append(NULL, hdr);
	if (f->req_hdrs && is_prefetch) {
		/* the shim counts these bytes as prefetch, not as a viewer's miss */
		struct curl_slist *l = curl_slist_append(f->req_hdrs, "Echos-Fill-Kind: prefetch");
		if (!l) {
			curl_slist_free_all(f->req_hdrs);
			f->req_hdrs = NULL;
		} else {
			f->req_hdrs = l;
		}
	}
	if (!f->md || !f->easy || !f->ev_resume || !f->ev_stall || !f->req_hdrs ||
	    EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1) {
		fill_free(f);
		return NULL;
	}
	snprintf(url, sizeof url, "%s%s", srv->conf.shim_url, path);
	curl_easy_setopt(f->easy, CURLOPT_URL, url);
	curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->req_hdrs);
	curl_easy_setopt(f->easy, CURLOPT_USERAGENT, "echos-edge/" EC_VERSION);
	curl_easy_setopt(f->easy, CURLOPT_PRIVATE, f);
	curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(f->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)srv->conf.fill_connect_timeout_ms);
	curl_easy_setopt(f->easy, CURLOPT_TIMEOUT_MS, (long)srv->conf.fill_timeout_ms);
	curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_curl_header);
	curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_curl_write);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	if (is_prefetch && bps > 0) {
		/* prefetch budget: curl spreads the transfer at this average receive rate */
		curl_easy_setopt(f->easy, CURLOPT_MAX_RECV_SPEED_LARGE,
		                 (curl_off_t)(bps / 8 > 1 ? bps / 8 : 1));
		f->is_capped = 1;
	}
	if (curl_multi_add_handle(fs->multi, f->easy) != CURLM_OK) {
		fill_free(f);
		return NULL;
	}
	f->next = fs->list;
	fs->list = f;
	fs->n++;
	return f;
}

void edge_fill_miss(struct edge_fills *fs, struct edge_reqctx *ctx, int wants_stream)
{
	struct edge_server *srv = fs->srv;
	struct edge_fill *f;

	EC_ASSERT(fs->magic == FILLS_MAGIC && ctx->req);
	f = fill_find(fs, ctx->path, ctx->path_len);
	if (!f) {
		if (fs->n >= (size_t)srv->conf.fill_max_inflight) {
			ec_log_warn("fill %s: %zu fills in flight (fill.max_inflight); answering 503",
			            ctx->path, fs->n);
			edge_serve_text(ctx, 503, EDGE_RESULT_ERROR, "too many fills in flight; retry");
			return;
		}
		f = fill_new(fs, ctx->path, ctx->path_len, 0, 0);
		if (!f) {
			ec_log_err("fill %s: cannot start (out of memory); answering 503", ctx->path);
			edge_serve_text(ctx, 503, EDGE_RESULT_ERROR, "cannot start a fill; retry");
			return;
		}
	}
	if (f->is_capped) {
		/* a viewer waits for this prefetch now: full speed (read at the next transfer
		 * step; a rate-limit wait already scheduled still runs out) */
		curl_easy_setopt(f->easy, CURLOPT_MAX_RECV_SPEED_LARGE, (curl_off_t)0);
		f->is_capped = 0;
		ec_log_debug("prefetch %s: a viewer asked for it; no longer rate-capped", f->path);
	}
	ctx->fill = f;
	ctx->result = EDGE_RESULT_MISS;
	/* coalescing: a GET that arrives before the first byte streams with the others;
	 * everyone else waits for the commit (documented in docs/edge.md) */
	if (wants_stream && !f->headers_done) {
		ctx->fnext = f->viewers;
		f->viewers = ctx;
	} else {
		ctx->fnext = f->waiters;
		f->waiters = ctx;
	}
}

int edge_fill_inflight_for(struct edge_fills *fs, const char *path, size_t len)
{
	return fill_find(fs, path, len) != NULL;
}

int edge_fill_prefetch(struct edge_fills *fs, const char *path, size_t len, int may_evict,
                       uint64_t bps, edge_fill_done_cb done, void *arg)
{
	struct edge_fill *f;

	EC_ASSERT(fs->magic == FILLS_MAGIC);
	if (len == 0 || len > EDGE_STORE_PATH_MAX)
		return EC_EINVAL;
	if (fill_find(fs, path, len))
		return EC_ESTATE;
	if (fs->n >= (size_t)fs->srv->conf.fill_max_inflight)
		return EC_EAGAIN;
	f = fill_new(fs, path, len, 1, bps);
	if (!f)
		return EC_ENOMEM;
	f->may_evict = may_evict;
	f->done = done;
	f->done_arg = arg;
	return 0;
}
