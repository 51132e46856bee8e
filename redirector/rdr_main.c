/* rdr_main: echos-redirector's entry point: arguments, config, startup, the one-second
 * flush tick, signals (SIGTERM/SIGINT drain, SIGHUP reload) and orderly shutdown.
 * Owns the struct rdr and everything hanging from it; the modules borrow it. */
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_http.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "ec_redis.h"
#include "ec_time.h"
#include "pol_memo.h"
#include "rdr.h"
#include "rdr_inv.h"
#include "rdr_pop.h"
#include "rdr_serve.h"
#include "rdr_table.h"

#define RDR_SWAP(a, b) do { __typeof__(a) tmp_ = (a); (a) = (b); (b) = tmp_; } while (0)

static const char summary[] =
	"echos-redirector: sends each viewer to the best box with a signed URL (HTTP 302),\n"
	"or to the origin when no box meets the SLA. Speaks HTTP/1.1, h2c and TLS (ALPN h2).\n"
	"Signals: SIGTERM/SIGINT drain and exit; SIGHUP reloads the config (keys, services,\n"
	"trusted proxies), the topology and the MMDB files (a file that fails to load is kept\n"
	"as it was).\n"
	"Exit codes: 0 done, 1 runtime failure, 2 usage or config error (including an\n"
	"unreadable or corrupt topology or MMDB file at start).";

static void rdr_boxes_opts_of(struct rdr *d, const struct rdr_conf *c,
                              struct rdr_boxes_opts *o, char *name, size_t namelen)
{
	const struct rdr_master *m = &c->masters[c->sign_idx];

	snprintf(name, namelen, "redis %s", c->redis_addr);
	memset(o, 0, sizeof *o);
	o->name = name;
	o->sync_interval_ms = c->sync_interval_ms;
	o->grace_ms = c->grace_ms;
	o->max_state_age_ms = c->sla_max_state_age_ms;
	o->sign_kid = m->kid;
	o->master = m->key;
	o->master_len = m->len;
	o->charge_ms = c->charge_ms;
	o->charge_reflect_ms = c->charge_reflect_ms;
	o->geo = &d->loc.geo;
	o->on_table = c->inventory && d->inv ? rdr_inv_on_table : NULL;
	o->on_table_arg = d->inv;
}

/* ---- flushing and signals --------------------------------------------------------- */

static void rdr_flush(struct rdr *d)
{
	int64_t wall = ec_wall_ms();

	rdr_pop_flush(d->pop, d->redis, wall);
	rdr_acct_flush(&d->acct, d->redis, wall);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
	rdr_flush(arg);
}

static void on_drain_check(evutil_socket_t fd, short what, void *arg)
{
	struct rdr *d = arg;
	struct timeval linger = { 0, 200000 };

	if (ec_http_server_inflight(d->http) > 0 && ec_now_ms() < d->drain_deadline_ms)
		return;
	if (ec_http_server_inflight(d->http) > 0)
		ec_log_warn("drain: %zu requests still open after %ds; closing them",
		            ec_http_server_inflight(d->http), RDR_DRAIN_MS / 1000);
	event_del(d->ev_drain);
	rdr_flush(d);
	/* give the last flush a moment on the wire */
	event_base_loopexit(d->base, &linger);
}

static void on_sigterm(evutil_socket_t sig, short what, void *arg)
{
	struct rdr *d = arg;
	struct timeval tv = { 0, 50000 };

	if (d->is_draining) {
		ec_log_warn("signal %d again: exiting now", (int)sig);
		event_base_loopbreak(d->base);
		return;
	}
	d->is_draining = 1;
	d->drain_deadline_ms = ec_now_ms() + RDR_DRAIN_MS;
	ec_log_info("signal %d: draining (%zu requests in flight)", (int)sig,
	            ec_http_server_inflight(d->http));
	ec_http_server_drain(d->http);
	event_add(d->ev_drain, &tv);
}

static int rdr_same_list(const struct ec_cfg_list *a, const struct ec_cfg_list *b)
{
	size_t i;

	if (a->n != b->n)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->items[i], b->items[i]) != 0)
			return 0;
	return 1;
}

/* Replaces the decision memo with one of `slots` entries (0: none), keeping the counts
 * of the one it replaces for the metrics. Returns 0, or EC_ENOMEM (then no memo). */
static int rdr_memo_make(struct rdr *d, int64_t slots)
{
	struct pol_memo_stats st;

	if (d->memo) {
		pol_memo_stats(d->memo, &st);
		d->memo_past.hits += st.hits;
		d->memo_past.misses += st.misses;
		pol_memo_free(d->memo);
	}
	d->memo = slots ? pol_memo_new((size_t)slots) : NULL;
	return slots && !d->memo ? EC_ENOMEM : 0;
}

/* SIGHUP: a new config replaces the old only when it loads completely; the topology and
 * MMDB files are reloaded either way (under the config in force), each kept if it fails. */
static void rdr_reload(struct rdr *d)
{
	struct rdr_conf nc;
	struct rdr_boxes_opts bo;
	char err[8192], name[300];
	const char *path = d->args.conf_path ? d->args.conf_path : "(no config file)";

	if (rdr_conf_load(&nc, &d->args, err, sizeof err) != 0) {
		char *line, *save = NULL;

		for (line = strtok_r(err, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			ec_log_err("reload: %s; keeping the old one", line);
		rdr_locate_reload(&d->loc, &d->conf);
		return;
	}
	if (!rdr_same_list(&nc.listen, &d->conf.listen) ||
	    !rdr_same_list(&nc.listen_tls, &d->conf.listen_tls) ||
	    strcmp(nc.admin_listen, d->conf.admin_listen) != 0 ||
	    strcmp(nc.redis_addr, d->conf.redis_addr) != 0)
		ec_log_warn("reload: %s: listen, listen_tls, admin.listen and redis.addr change "
		            "only on restart; keeping the old ones", path);
	if (nc.listen_tls.n > 0 && d->conf.listen_tls.n > 0 &&
	    ec_http_server_reload_tls(d->http, nc.tls_cert, nc.tls_key, err, sizeof err) != 0)
		ec_log_err("reload: %s; keeping the old one", err);
	rdr_locate_reload(&d->loc, &nc);
	/* restart-only keys keep their running values; the old conf frees the new ones */
	RDR_SWAP(nc.listen, d->conf.listen);
	RDR_SWAP(nc.listen_tls, d->conf.listen_tls);
	RDR_SWAP(nc.admin_listen, d->conf.admin_listen);
	RDR_SWAP(nc.redis_addr, d->conf.redis_addr);
	rdr_boxes_opts_of(d, &nc, &bo, name, sizeof name);
	if (rdr_boxes_configure(d->boxes, &bo) != 0)
		ec_log_err("reload: box table options: out of memory; keeping the old ones");
	ec_log_set_level((enum ec_log_level)nc.log_level);
	/* the services' SLAs the memo's entries point at go with the old conf: empty the
	 * memo, or make it anew at its new size */
	if (d->memo && nc.memo_slots == d->conf.memo_slots)
		pol_memo_clear(d->memo);
	else if (rdr_memo_make(d, nc.memo_slots) != 0)
		ec_log_err("reload: decision.memo: out of memory; deciding without it");
	rdr_conf_fini(&d->conf);
	d->conf = nc;
	if (rdr_serve_services_bind(d, &d->conf) != 0)
		ec_log_err("reload: per-service metrics: out of memory; those series stop");
	ec_log_info("reload: %s: done", path);
}

static void on_sighup(evutil_socket_t sig, short what, void *arg)
{
	rdr_reload(arg);
}

/* ---- startup and shutdown --------------------------------------------------------- */

static int rdr_listen(struct rdr *d, struct ec_http_server *s, const char *addr, int tls,
                      const char *what)
{
	char err[512];
	int port = ec_http_server_listen(s, addr, tls, err, sizeof err);

	if (port < 0) {
		ec_log_err("listen %s: %s; exiting", addr, err);
		return port;
	}
	ec_log_info("listening on %s (port %d, %s)", addr, port, what);
	return 0;
}

static int rdr_init(struct rdr *d)
{
	struct ec_http_server_opts ho;
	struct ec_redis_opts ro;
	struct rdr_boxes_opts bo;
	struct timeval sec = { 1, 0 };
	char host[256], name[300], err[512];
	int port = 0;
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	d->base = event_base_new();
	d->metrics = ec_metrics_new();
	d->pop = rdr_pop_new(RDR_POP_MAX_ENTRIES);
	d->tokcache = calloc(RDR_TOKCACHE_SLOTS, sizeof *d->tokcache);
	if (!d->base || !d->metrics || !d->pop || !d->tokcache ||
	    rdr_memo_make(d, d->conf.memo_slots) != 0 || rdr_serve_metrics_init(d) != 0) {
		ec_log_err("startup: out of memory");
		return EC_ENOMEM;
	}

	if (ec_addr_split(d->conf.redis_addr, host, sizeof host, &port) != 0)
		return EC_EINVAL; /* checked with the config */
	snprintf(name, sizeof name, "redis %s", d->conf.redis_addr);
	memset(&ro, 0, sizeof ro);
	ro.host = host;
	ro.port = port;
	ro.name = name;
	d->redis = ec_redis_new(d->base, &ro, NULL, NULL); /* it logs link changes itself */
	d->inv = d->redis ? rdr_inv_new(d->redis, RDR_INV_MAX_OBJECTS) : NULL;
	rdr_boxes_opts_of(d, &d->conf, &bo, name, sizeof name);
	d->boxes = d->inv ? rdr_boxes_new(d->base, d->redis, &bo) : NULL;
	if (!d->redis || !d->inv || !d->boxes) {
		ec_log_err("startup: out of memory");
		return EC_ENOMEM;
	}

	memset(&ho, 0, sizeof ho);
	ho.base = d->base;
	ho.handler = rdr_serve_on_request;
	ho.handler_arg = d;
	ho.tls_cert_file = d->conf.listen_tls.n ? d->conf.tls_cert : NULL;
	ho.tls_key_file = d->conf.listen_tls.n ? d->conf.tls_key : NULL;
	ho.metrics = d->metrics;
	ho.metrics_prefix = "echos_redirector_http";
	d->http = ec_http_server_new(&ho, err, sizeof err);
	if (!d->http) {
		ec_log_err("startup: %s; exiting", err);
		return EC_EINVAL;
	}
	for (i = 0; i < d->conf.listen.n; i++)
		if (rdr_listen(d, d->http, d->conf.listen.items[i], 0, "HTTP/1.1 and h2c") != 0)
			return EC_EIO;
	for (i = 0; i < d->conf.listen_tls.n; i++)
		if (rdr_listen(d, d->http, d->conf.listen_tls.items[i], 1, "TLS, ALPN h2") != 0)
			return EC_EIO;
	if (d->conf.admin_listen[0]) {
		memset(&ho, 0, sizeof ho);
		ho.base = d->base;
		ho.handler = rdr_serve_on_admin;
		ho.handler_arg = d;
		ho.max_conns = 64;
		d->admin = ec_http_server_new(&ho, err, sizeof err);
		if (!d->admin) {
			ec_log_err("startup: admin server: %s; exiting", err);
			return EC_ENOMEM;
		}
		if (rdr_listen(d, d->admin, d->conf.admin_listen, 0, "admin: /metrics") != 0)
			return EC_EIO;
	}

	d->ev_term = evsignal_new(d->base, SIGTERM, on_sigterm, d);
	d->ev_int = evsignal_new(d->base, SIGINT, on_sigterm, d);
	d->ev_hup = evsignal_new(d->base, SIGHUP, on_sighup, d);
	d->ev_tick = event_new(d->base, -1, EV_PERSIST, on_tick, d);
	d->ev_drain = event_new(d->base, -1, EV_PERSIST, on_drain_check, d);
	if (!d->ev_term || !d->ev_int || !d->ev_hup || !d->ev_tick || !d->ev_drain ||
	    event_add(d->ev_term, NULL) || event_add(d->ev_int, NULL) ||
	    event_add(d->ev_hup, NULL) || event_add(d->ev_tick, &sec)) {
		ec_log_err("startup: cannot set up signals and timers; exiting");
		return EC_ENOMEM;
	}
	ec_log_info("started: origin %s, %s, %zu master key(s), signing with key id %u",
	            d->conf.origin_url, name, d->conf.n_masters,
	            d->conf.masters[d->conf.sign_idx].kid);
	return 0;
}

static void rdr_fini(struct rdr *d)
{
	struct event **evs[] = { &d->ev_term, &d->ev_int, &d->ev_hup, &d->ev_tick, &d->ev_drain };
	size_t i;

	for (i = 0; i < EC_ARRAY_LEN(evs); i++)
		if (*evs[i]) {
			event_free(*evs[i]);
			*evs[i] = NULL;
		}
	ec_http_server_free(d->admin);
	ec_http_server_free(d->http);
	rdr_boxes_free(d->boxes);   /* before the link: an in-flight sync is orphaned */
	rdr_inv_free(d->inv);       /* likewise its reads */
	ec_redis_free(d->redis);    /* ... and freed by the NULL replies here */
	rdr_pop_free(d->pop);
	free(d->tokcache);
	d->tokcache = NULL;
	pol_memo_free(d->memo);
	d->memo = NULL;
	if (d->metrics)
		ec_metrics_free(d->metrics);
	rdr_locate_fini(&d->loc);
	rdr_conf_fini(&d->conf);
	if (d->base)
		event_base_free(d->base);
	d->magic = 0;
}

static void rdr_run(struct rdr *d)
{
	event_base_dispatch(d->base);
	ec_log_info("stopped");
}

int main(int argc, char **argv)
{
	static struct rdr d;
	char err[8192];
	int rc;

	d.magic = RDR_MAGIC;
	/* Every box sync allocates and frees the candidate index of the whole table (arrays of
	 * hundreds of KiB; the rows themselves are reused). A fixed threshold keeps such
	 * arrays mmapped, so each free returns its pages: glibc's adaptive one moves them onto
	 * the heap after the first free, where the churn of one sync after another held RSS
	 * far above the table's size. */
	mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	if (ec_args_parse(argc, argv, &d.args, err, sizeof err) != 0)
		return ec_exit_usage(RDR_PROG, err);
	if (d.args.show_help) {
		ec_args_usage(stdout, RDR_PROG, summary, rdr_conf_opts);
		return EXIT_SUCCESS;
	}
	if (d.args.show_version) {
		printf("%s %s\n", RDR_PROG, EC_VERSION);
		return EXIT_SUCCESS;
	}
	if (rdr_conf_load(&d.conf, &d.args, err, sizeof err) != 0)
		return ec_exit_config(RDR_PROG, err);
	if (rdr_locate_init(&d.loc, &d.conf, err, sizeof err) != 0) {
		rdr_conf_fini(&d.conf);
		return ec_exit_config(RDR_PROG, err);
	}
	if (d.args.test_only) {
		printf("%s: %s: configuration ok\n", RDR_PROG,
		       d.args.conf_path ? d.args.conf_path : "(defaults)");
		rdr_fini(&d);
		return EXIT_SUCCESS;
	}
	ec_log_open(RDR_PROG, (enum ec_log_level)d.conf.log_level);
	rc = rdr_init(&d);
	if (rc == 0)
		rdr_run(&d);
	rdr_fini(&d);
	return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
