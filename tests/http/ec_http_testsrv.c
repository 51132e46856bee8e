/* ec_http_testsrv: a small server on the HTTP core for its integration test
 * (tests/integration/test_http_core.py). Fixed routes exercise every response kind:
 * in-memory, file (respond_fd), async streaming with backpressure, delayed, redirect.
 * Not a daemon: no config file; everything comes from the command line. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "ec_err.h"
#include "ec_http.h"
#include "ec_log.h"
#include "ec_metrics.h"

#define TSRV_FILES 8 /* file sizes kept open for /file */

struct tsrv {
	struct event_base *base;
	struct ec_http_server *http;
	struct ec_metrics *metrics;
	struct event *ev_term, *ev_int, *ev_check;
	uint64_t handler_calls, closed_ok, closed_gone;
	uint64_t body_sent;  /* ec_http_req_body_sent summed over closed requests */
	struct { long size; int fd; } files[TSRV_FILES]; /* unlinked, fd -1: empty */
	unsigned files_next;
};

/* async work for /slow and /stream; freed in its request's close callback */
struct job {
	struct tsrv *t;
	struct ec_http_req *req;
	struct event *ev;
	int left;            /* chunks still to write */
	int n;               /* chunks written */
	size_t size;         /* bytes per chunk, 0: a short text line */
	int waiting_drain;
	int is_stream;
	/* /pstream: pattern bytes off..len, chunk sizes varied around `chunk` */
	uint64_t off, len;
	size_t chunk, high;
	unsigned seed;
	long ms;             /* pause between chunks; -1: write until backpressure */
	int no_drain;        /* paced by the timer only: no drain callback, no high water */
};

static const struct ec_http_header text_hdr[] = {
	{ "Content-Type", 0, "text/plain; charset=utf-8", 0, 0 },
};

static long query_num(const char *q, const char *key, long dflt)
{
	size_t kl = strlen(key);
	const char *p = q;

	while (p && *p) {
		if (strncmp(p, key, kl) == 0 && p[kl] == '=')
			return strtol(p + kl + 1, NULL, 10);
		p = strchr(p, '&');
		if (p)
			p++;
	}
	return dflt;
}

static void on_req_close(struct ec_http_req *req, void *arg, int completed)
{
	struct tsrv *t = arg;

	/* /stats answers are left out, so a client can take exact differences */
	if (strcmp(req->path, "/stats") != 0)
		t->body_sent += ec_http_req_body_sent(req);
	if (completed)
		t->closed_ok++;
	else
		t->closed_gone++;
}

static void on_job_close(struct ec_http_req *req, void *arg, int completed)
{
	struct job *j = arg;

	on_req_close(req, j->t, completed);
	event_free(j->ev);
	free(j);
}

/* byte i of /file is (i * 31 + 7) & 0xff, so a client can check what it got */
static int file_make(long size)
{
	char path[] = "/tmp/ec_http_testsrv.XXXXXX";
	unsigned char buf[65536];
	long done = 0, i;
	int fd = mkstemp(path);

	if (fd < 0)
		return -1;
	unlink(path);
	while (done < size) {
		long n = size - done < (long)sizeof buf ? size - done : (long)sizeof buf;
		for (i = 0; i < n; i++)
			buf[i] = (unsigned char)((done + i) * 31 + 7);
		if (write(fd, buf, (size_t)n) != n) {
			close(fd);
			return -1;
		}
		done += n;
	}
	return fd;
}

/* Returns a new descriptor (the caller's) of a file of `size` pattern bytes. Files are
 * made once per size and reopened for each request, as a cache would serve them. */
static int file_open(struct tsrv *t, long size)
{
	char path[64];
	unsigned i;
	int fd;

	for (i = 0; i < TSRV_FILES; i++)
		if (t->files[i].fd >= 0 && t->files[i].size == size)
			break;
	if (i == TSRV_FILES) {
		i = t->files_next++ % TSRV_FILES;
		if (t->files[i].fd >= 0)
			close(t->files[i].fd);
		t->files[i].fd = file_make(size);
		t->files[i].size = size;
		if (t->files[i].fd < 0)
			return -1;
	}
	snprintf(path, sizeof path, "/proc/self/fd/%d", t->files[i].fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : dup(t->files[i].fd);
}

/* The pattern of /pstream and /pmem: 16-byte records "SSSSSSOOOOOOOOO\n", the seed and
 * the record's offset in hex, so a lost, repeated, misplaced or foreign byte shows. */
static void pat_fill(char *d, unsigned seed, uint64_t off, size_t n)
{
	char rec[17];

	while (n) {
		uint64_t r = off & ~(uint64_t)15;
		size_t at = (size_t)(off - r), m = 16 - at;
		snprintf(rec, sizeof rec, "%06x%09llx", seed & 0xffffff,
		         (unsigned long long)(r & 0xfffffffffULL));
		rec[15] = '\n';
		if (m > n)
			m = n;
		memcpy(d, rec + at, m);
		d += m;
		off += m;
		n -= m;
	}
}

/* VmRSS of this process in KiB, or -1 */
static long rss_kib(void)
{
	char line[256];
	long kib = -1;
	FILE *f = fopen("/proc/self/status", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			kib = strtol(line + 6, NULL, 10);
	fclose(f);
	return kib;
}

static void stream_step(struct job *j);
static void pstream_step(struct job *j);

static void on_stream_drain(struct ec_http_req *req, void *arg)
{
	struct job *j = arg;

	if (j->waiting_drain) {
		j->waiting_drain = 0;
		if (j->is_stream == 2)
			pstream_step(j);
		else
			stream_step(j);
	}
}

static void stream_step(struct job *j)
{
	struct timeval tv = { 0, 10 * 1000 };
	char line[64];

	while (j->left > 0) {
		int r;
		if (j->size) {
			char *buf = malloc(j->size);
			if (!buf) {
				ec_http_abort(j->req);
				return;
			}
			memset(buf, 'a' + j->n % 26, j->size);
			r = ec_http_stream_write(j->req, buf, j->size);
			free(buf);
		} else {
			int n = snprintf(line, sizeof line, "chunk %d\n", j->n);
			r = ec_http_stream_write(j->req, line, (size_t)n);
		}
		if (r != 0) {
			ec_http_abort(j->req);
			return;
		}
		j->n++;
		j->left--;
		if (ec_http_stream_buffered(j->req) > 256 * 1024) {
			j->waiting_drain = 1; /* on_stream_drain resumes */
			return;
		}
		if (!j->size)
			break; /* text chunks: one per timer tick */
	}
	if (j->left > 0) {
		event_add(j->ev, &tv);
		return;
	}
	ec_http_stream_end(j->req);
}

/* One buffer shared by every /pstream response, refilled for each write: the API copies. */
static void pstream_step(struct job *j)
{
	static char buf[256 * 1024];
	struct timeval tv = { j->ms / 1000, (j->ms % 1000) * 1000 };

	while (j->off < j->len) {
		size_t n = j->chunk;
		if (j->n % 3 == 1)
			n = j->chunk / 2 + 13;
		else if (j->n % 3 == 2)
			n = 1 + (size_t)j->n * 7919 % j->chunk;
		if (n > sizeof buf)
			n = sizeof buf;
		if (n > j->len - j->off)
			n = (size_t)(j->len - j->off);
		pat_fill(buf, j->seed, j->off, n);
		if (ec_http_stream_write(j->req, buf, n) != 0) {
			ec_http_abort(j->req);
			return;
		}
		memset(buf, 'X', n); /* a copy the server did not take shows up as X */
		j->off += n;
		j->n++;
		if (!j->no_drain && j->off < j->len && ec_http_stream_buffered(j->req) > j->high) {
			j->waiting_drain = 1; /* on_stream_drain resumes */
			return;
		}
		if (j->ms >= 0 && j->off < j->len) {
			event_add(j->ev, &tv);
			return;
		}
	}
	ec_http_stream_end(j->req);
}

static void on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	static const char body[] = "slow\n";

	if (j->is_stream == 2)
		pstream_step(j);
	else if (j->is_stream)
		stream_step(j);
	else
		ec_http_respond(j->req, 200, text_hdr, 1, body, sizeof body - 1);
}

static struct job *job_new(struct tsrv *t, struct ec_http_req *req)
{
	struct job *j = calloc(1, sizeof *j);

	if (!j)
		return NULL;
	j->t = t;
	j->req = req;
	j->ev = evtimer_new(t->base, on_job_timer, j);
	if (!j->ev) {
		free(j);
		return NULL;
	}
	ec_http_req_on_close(req, on_job_close, j);
	return j;
}

static void on_request(struct ec_http_req *req, void *arg)
{
	struct tsrv *t = arg;
	const char *p = req->path;

	t->handler_calls++;
	if (strcmp(p, "/hello") == 0) {
		static const char body[] = "hello\n";
		ec_http_req_on_close(req, on_req_close, t);
		ec_http_respond(req, 200, text_hdr, 1, body, sizeof body - 1);
	} else if (strcmp(p, "/redirect") == 0) {
		static const struct ec_http_header h[] = {
			{ "Location", 0, "https://box1.example.net/t/AAAA/v/abc/seg42.ts", 0, 0 },
			{ "Cache-Control", 0, "no-store", 0, 0 },
			{ "Access-Control-Allow-Origin", 0, "*", 0, 0 },
		};
		ec_http_req_on_close(req, on_req_close, t);
		ec_http_respond(req, 302, h, EC_ARRAY_LEN(h), NULL, 0);
	} else if (strcmp(p, "/file") == 0) {
		long size = query_num(req->query, "size", 1024);
		long off = query_num(req->query, "off", 0);
		int fd;
		ec_http_req_on_close(req, on_req_close, t);
		if (size < 0 || off < 0 || off > size || (fd = file_open(t, size)) < 0) {
			ec_http_respond(req, 500, text_hdr, 1, "no file\n", 8);
			return;
		}
		/* claim > size: the response announces more than the file holds (a file that
		 * shrank under the server): the body must end cut, never padded or wrong */
		long claim = query_num(req->query, "claim", size);
		if (claim < size)
			claim = size;
		if (ec_http_respond_fd(req, 200, NULL, 0, fd, off, (uint64_t)(claim - off)) != 0)
			ec_http_respond(req, 500, text_hdr, 1, "no file\n", 8);
	} else if (strcmp(p, "/stream") == 0) {
		struct job *j = job_new(t, req);
		long known = query_num(req->query, "len", 0);
		if (!j) {
			ec_http_respond(req, 503, text_hdr, 1, "busy\n", 5);
			return;
		}
		j->is_stream = 1;
		j->left = (int)query_num(req->query, "chunks", 5);
		j->size = (size_t)query_num(req->query, "size", 0);
		ec_http_stream_on_drain(req, on_stream_drain, j);
		ec_http_stream_start(req, 200, text_hdr, 1,
		                     known ? (int64_t)j->left * (int64_t)j->size : -1);
		stream_step(j);
	} else if (strcmp(p, "/pstream") == 0) {
		struct job *j = job_new(t, req);
		if (!j) {
			ec_http_respond(req, 503, text_hdr, 1, "busy\n", 5);
			return;
		}
		j->is_stream = 2;
		j->len = (uint64_t)query_num(req->query, "len", 65536);
		j->chunk = (size_t)query_num(req->query, "chunk", 16384);
		j->seed = (unsigned)query_num(req->query, "seed", 1);
		j->ms = query_num(req->query, "ms", -1);
		j->high = (size_t)query_num(req->query, "high", 256 * 1024);
		j->no_drain = query_num(req->query, "drain", 1) == 0;
		if (!j->chunk)
			j->chunk = 1;
		if (j->no_drain && j->ms < 0)
			j->ms = 0;
		if (!j->no_drain)
			ec_http_stream_on_drain(req, on_stream_drain, j);
		ec_http_stream_start(req, 200, NULL, 0,
		                     query_num(req->query, "known", 1) ? (int64_t)j->len : -1);
		pstream_step(j);
	} else if (strcmp(p, "/pmem") == 0) {
		size_t len = (size_t)query_num(req->query, "len", 1024);
		char *body = malloc(len ? len : 1);
		ec_http_req_on_close(req, on_req_close, t);
		if (!body) {
			ec_http_respond(req, 503, text_hdr, 1, "busy\n", 5);
			return;
		}
		pat_fill(body, (unsigned)query_num(req->query, "seed", 1), 0, len);
		ec_http_respond(req, 200, NULL, 0, body, len);
		free(body);
	} else if (strcmp(p, "/slow") == 0) {
		struct job *j = job_new(t, req);
		struct timeval tv = { 0, 200 * 1000 };
		if (!j) {
			ec_http_respond(req, 503, text_hdr, 1, "busy\n", 5);
			return;
		}
		event_add(j->ev, &tv);
	} else if (strcmp(p, "/stats") == 0) {
		struct mallinfo2 mi = mallinfo2();
		char body[448];
		int n = snprintf(body, sizeof body,
		                 "{\"conns\": %zu, \"inflight\": %zu, \"handler_calls\": %llu, "
		                 "\"closed_ok\": %llu, \"closed_gone\": %llu, "
		                 "\"body_sent\": %llu, \"rss_kib\": %ld, \"heap_kib\": %zu}\n",
		                 ec_http_server_conns(t->http), ec_http_server_inflight(t->http),
		                 (unsigned long long)t->handler_calls,
		                 (unsigned long long)t->closed_ok,
		                 (unsigned long long)t->closed_gone,
		                 (unsigned long long)t->body_sent, rss_kib(),
		                 (mi.uordblks + mi.hblkhd) / 1024);
		ec_http_req_on_close(req, on_req_close, t);
		ec_http_respond(req, 200, NULL, 0, body, (size_t)n);
	} else if (strcmp(p, "/metrics") == 0) {
		size_t len = 0;
		char *body = ec_metrics_render(t->metrics, &len);
		static const struct ec_http_header h[] = {
			{ "Content-Type", 0, EC_METRICS_CONTENT_TYPE, 0, 0 },
		};
		ec_http_req_on_close(req, on_req_close, t);
		if (!body) {
			ec_http_respond(req, 503, text_hdr, 1, "busy\n", 5);
			return;
		}
		ec_http_respond(req, 200, h, 1, body, len);
		free(body);
	} else {
		ec_http_req_on_close(req, on_req_close, t);
		ec_http_respond(req, 404, text_hdr, 1, "not found\n", 10);
	}
}

static void on_check(evutil_socket_t fd, short what, void *arg)
{
	struct tsrv *t = arg;

	if (ec_http_server_conns(t->http) == 0)
		event_base_loopbreak(t->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct tsrv *t = arg;
	struct timeval tv = { 0, 50 * 1000 }, limit = { 5, 0 };

	if (sig == SIGINT) {
		event_base_loopbreak(t->base);
		return;
	}
	/* SIGTERM: drain, exit once every connection is gone (5 s at most) */
	ec_log_info("draining");
	ec_http_server_drain(t->http);
	t->ev_check = event_new(t->base, -1, EV_PERSIST, on_check, t);
	event_add(t->ev_check, &tv);
	event_base_loopexit(t->base, &limit);
}

static int usage(void)
{
	fprintf(stderr,
	        "usage: ec_http_testsrv [options] ADDR...\n"
	        "  ADDR                 host:port or [v6]:port (plain), tls:ADDR (TLS)\n"
	        "  --tls CERT KEY       certificate and key for tls: listeners\n"
	        "  --header-timeout MS  --idle-timeout MS  --write-timeout MS\n"
	        "  --max-conns N  --max-per-ip N  --max-header-bytes N  --max-header-fields N\n"
	        "  --h2-window N  --debug\n"
	        "prints \"listening ADDR PORT plain|tls\" per listener; SIGTERM drains.\n"
	        "exit: 0 done, 1 runtime failure, 2 usage\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct ec_http_server_opts o;
	struct tsrv t;
	char err[512];
	int i, n_listen = 0;

	memset(&o, 0, sizeof o);
	memset(&t, 0, sizeof t);
	for (i = 0; i < TSRV_FILES; i++)
		t.files[i].fd = -1;
	signal(SIGPIPE, SIG_IGN);
	ec_log_open("ec_http_testsrv", EC_LOG_INFO);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--tls") == 0 && i + 2 < argc) {
			o.tls_cert_file = argv[++i];
			o.tls_key_file = argv[++i];
		} else if (strcmp(a, "--debug") == 0) {
			ec_log_set_level(EC_LOG_DEBUG);
		} else if (i + 1 < argc && strcmp(a, "--header-timeout") == 0) {
			o.header_timeout_ms = atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(a, "--idle-timeout") == 0) {
			o.idle_timeout_ms = atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(a, "--write-timeout") == 0) {
			o.write_timeout_ms = atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(a, "--max-conns") == 0) {
			o.max_conns = (size_t)atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(a, "--max-per-ip") == 0) {
			o.max_conns_per_ip = (size_t)atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(a, "--max-header-bytes") == 0) {
			o.max_header_bytes = (size_t)atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(a, "--max-header-fields") == 0) {
			o.max_header_fields = (size_t)atoll(argv[++i]);
		} else if (i + 1 < argc && strcmp(a, "--h2-window") == 0) {
			o.h2_window = (uint32_t)atoll(argv[++i]);
		} else {
			return usage();
		}
	}
	if (i >= argc)
		return usage();
	t.base = event_base_new();
	t.metrics = ec_metrics_new();
	if (!t.base || !t.metrics) {
		fprintf(stderr, "ec_http_testsrv: out of memory\n");
		return 1;
	}
	o.base = t.base;
	o.handler = on_request;
	o.handler_arg = &t;
	o.metrics = t.metrics;
	o.metrics_prefix = "echos_test";
	t.http = ec_http_server_new(&o, err, sizeof err);
	if (!t.http) {
		fprintf(stderr, "ec_http_testsrv: %s\n", err);
		return 1;
	}
	for (; i < argc; i++) {
		int tls = strncmp(argv[i], "tls:", 4) == 0;
		const char *addr = tls ? argv[i] + 4 : argv[i];
		int port = ec_http_server_listen(t.http, addr, tls, err, sizeof err);
		if (port < 0) {
			fprintf(stderr, "ec_http_testsrv: %s\n", err);
			return 1;
		}
		printf("listening %s %d %s\n", addr, port, tls ? "tls" : "plain");
		n_listen++;
	}
	fflush(stdout);
	t.ev_term = evsignal_new(t.base, SIGTERM, on_signal, &t);
	t.ev_int = evsignal_new(t.base, SIGINT, on_signal, &t);
	event_add(t.ev_term, NULL);
	event_add(t.ev_int, NULL);
	event_base_dispatch(t.base);
	ec_http_server_free(t.http);
	for (i = 0; i < TSRV_FILES; i++)
		if (t.files[i].fd >= 0)
			close(t.files[i].fd);
	if (t.ev_check)
		event_free(t.ev_check);
	event_free(t.ev_term);
	event_free(t.ev_int);
	ec_metrics_free(t.metrics);
	event_base_free(t.base);
	return n_listen ? 0 : 1;
}
