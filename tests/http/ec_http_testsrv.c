/* ec_http_testsrv: a small server on the HTTP core for its integration test
 * (tests/integration/test_http_core.py). Fixed routes exercise every response kind:
 * in-memory, file (respond_fd), async streaming with backpressure, delayed, redirect.
 * Not a daemon: no config file; everything comes from the command line. */
#include <errno.h>
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

struct tsrv {
	struct event_base *base;
	struct ec_http_server *http;
	struct ec_metrics *metrics;
	struct event *ev_term, *ev_int, *ev_check;
	uint64_t handler_calls, closed_ok, closed_gone;
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
};

static const struct ec_http_header text_hdr[] = {
	{ "Content-Type", 0, "text/plain; charset=utf-8", 0 },
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

static void stream_step(struct job *j);

static void on_stream_drain(struct ec_http_req *req, void *arg)
{
	struct job *j = arg;

	if (j->waiting_drain) {
		j->waiting_drain = 0;
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

static void on_job_timer(evutil_socket_t fd, short what, void *arg)
{
	struct job *j = arg;
	static const char body[] = "slow\n";

	if (j->is_stream)
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
			{ "Location", 0, "https://box1.example.net/t/AAAA/v/abc/seg42.ts", 0 },
			{ "Cache-Control", 0, "no-store", 0 },
			{ "Access-Control-Allow-Origin", 0, "*", 0 },
		};
		ec_http_req_on_close(req, on_req_close, t);
		ec_http_respond(req, 302, h, EC_ARRAY_LEN(h), NULL, 0);
	} else if (strcmp(p, "/file") == 0) {
		long size = query_num(req->query, "size", 1024);
		long off = query_num(req->query, "off", 0);
		int fd;
		ec_http_req_on_close(req, on_req_close, t);
		if (size < 0 || off < 0 || off > size || (fd = file_make(size)) < 0) {
			ec_http_respond(req, 500, text_hdr, 1, "no file\n", 8);
			return;
		}
		if (ec_http_respond_fd(req, 200, NULL, 0, fd, off, (uint64_t)(size - off)) != 0)
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
	} else if (strcmp(p, "/slow") == 0) {
		struct job *j = job_new(t, req);
		struct timeval tv = { 0, 200 * 1000 };
		if (!j) {
			ec_http_respond(req, 503, text_hdr, 1, "busy\n", 5);
			return;
		}
		event_add(j->ev, &tv);
	} else if (strcmp(p, "/stats") == 0) {
		char body[256];
		int n = snprintf(body, sizeof body,
		                 "{\"conns\": %zu, \"inflight\": %zu, \"handler_calls\": %llu, "
		                 "\"closed_ok\": %llu, \"closed_gone\": %llu}\n",
		                 ec_http_server_conns(t->http), ec_http_server_inflight(t->http),
		                 (unsigned long long)t->handler_calls,
		                 (unsigned long long)t->closed_ok,
		                 (unsigned long long)t->closed_gone);
		ec_http_req_on_close(req, on_req_close, t);
		ec_http_respond(req, 200, NULL, 0, body, (size_t)n);
	} else if (strcmp(p, "/metrics") == 0) {
		size_t len = 0;
		char *body = ec_metrics_render(t->metrics, &len);
		static const struct ec_http_header h[] = {
			{ "Content-Type", 0, EC_METRICS_CONTENT_TYPE, 0 },
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
	if (t.ev_check)
		event_free(t.ev_check);
	event_free(t.ev_term);
	event_free(t.ev_int);
	ec_metrics_free(t.metrics);
	event_base_free(t.base);
	return n_listen ? 0 : 1;
}
