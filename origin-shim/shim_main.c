/* shim_main: echos-origin-shim's entry point: arguments, config, the server's parts in
 * start order, and the signal loop (SIGTERM drains, SIGHUP reloads what can change live).
 * Does no request work itself; owns every long-lived object of the process. */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "shim_acct.h"
#include "shim_admin.h"
#include "shim_conf.h"
#include "shim_fetch.h"
#include "shim_pool.h"
#include "shim_publish.h"
#include "shim_serve.h"

#define SHIM_SUMMARY \
	"fronts a content owner's origin for echos: fetches objects upstream, adds\n" \
	"Repr-Digest (sha-256) and ETag, serves box fills and viewer fallbacks, counts bytes."

struct shim_server {
	struct shim_conf *conf;          /* borrowed from main */
	const struct ec_args *args;      /* borrowed from main */
	struct shim_fetch_opts fetch_opts;
	struct ec_metrics *metrics;      /* owned */
	struct shim_pool *pool;          /* owned */
	struct shim_acct *acct;          /* owned */
	struct shim_publish *pub;        /* owned; disabled when publish.token is empty */
	struct shim_serve *serve;        /* owned */
	struct shim_admin *admin;        /* owned; NULL when admin.listen is empty */
	sigset_t signals;                /* handled by shim_server_run() */
};

/* Prints --help or --version. Returns the exit code. */
static int shim_print_info(const struct ec_args *args)
{
	if (args->show_version)
		printf("%s %s\n", SHIM_PROG, EC_VERSION);
	else
		ec_args_usage(stdout, SHIM_PROG, SHIM_SUMMARY, shim_conf_opts);
	return EXIT_SUCCESS;
}

/* Blocks the signals the main loop waits for, before any thread exists, so every thread
 * inherits the mask and only shim_server_run() sees them. */
static void shim_signals_block(struct shim_server *srv)
{
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&srv->signals);
	sigaddset(&srv->signals, SIGTERM);
	sigaddset(&srv->signals, SIGINT);
	sigaddset(&srv->signals, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &srv->signals, NULL);
}

static void shim_fetch_opts_apply(struct shim_fetch_opts *o, const struct shim_conf *c)
{
	atomic_store(&o->timeout_ms, c->upstream_timeout_ms);
	atomic_store(&o->connect_timeout_ms, c->upstream_connect_timeout_ms);
	atomic_store(&o->max_bytes, c->max_object_size);
}

/* Starts the parts in dependency order. Returns 0 or EC_EIO (logged). */
static int shim_server_init(struct shim_server *srv, struct shim_conf *conf,
                            const struct ec_args *args)
{
	char err[512];

	memset(srv, 0, sizeof *srv);
	srv->conf = conf;
	srv->args = args;
	shim_signals_block(srv);
	shim_fetch_opts_apply(&srv->fetch_opts, conf);
	srv->fetch_opts.spool_dir = conf->spool_dir;
	if (shim_fetch_global_init() != 0) {
		ec_log_err("cannot initialise libcurl; exiting");
		return EC_EIO;
	}
	srv->metrics = ec_metrics_new();
	if (srv->metrics == NULL) {
		ec_log_err("out of memory; exiting");
		return EC_EIO;
	}
	srv->pool = shim_pool_new((size_t)conf->threads, (size_t)conf->queue_max,
	                          &srv->fetch_opts, err, sizeof err);
	if (srv->pool == NULL)
		goto fail;
	srv->acct = shim_acct_new(srv->metrics, conf->redis_addr, &conf->services, conf->topo,
	                          err, sizeof err);
	if (srv->acct == NULL)
		goto fail;
	srv->pub = shim_publish_new(srv->metrics, conf->publish_token, conf->redis_addr, err,
	                            sizeof err);
	if (srv->pub == NULL)
		goto fail;
	srv->serve = shim_serve_new(conf, srv->pool, srv->acct, srv->pub, srv->metrics, err,
	                            sizeof err);
	if (srv->serve == NULL)
		goto fail;
	if (conf->admin_listen[0] != '\0') {
		srv->admin = shim_admin_new(conf->admin_listen, srv->metrics, err, sizeof err);
		if (srv->admin == NULL)
			goto fail;
	}
	if (conf->redis_addr[0] == '\0')
		ec_log_info("redis.addr is empty: byte accounting goes to /metrics only");
	return 0;
fail:
	ec_log_err("%s; exiting", err);
	return EC_EIO;
}

/* SIGHUP: re-reads the config file. Applies log.level, upstream.timeout,
 * upstream.connect_timeout and max_object_size; other keys need a restart. A bad file
 * changes nothing. */
static void shim_server_reload(struct shim_server *srv)
{
	struct shim_conf next;
	char err[4096];

	if (shim_conf_load(&next, srv->args, err, sizeof err) != 0) {
		ec_log_err("SIGHUP: %s; keeping the running config", err);
		return;
	}
	/* logged before the new level applies, so it shows at the level that asked */
	ec_log_info("SIGHUP: reloaded %s: log.level, upstream.timeout, "
	            "upstream.connect_timeout and max_object_size applied; other keys need "
	            "a restart", srv->args->conf_path ? srv->args->conf_path : "defaults");
	ec_log_set_level(next.log_level);
	shim_fetch_opts_apply(&srv->fetch_opts, &next);
	srv->conf->log_level = next.log_level;
	srv->conf->upstream_timeout_ms = next.upstream_timeout_ms;
	srv->conf->upstream_connect_timeout_ms = next.upstream_connect_timeout_ms;
	srv->conf->max_object_size = next.max_object_size;
	shim_conf_fini(&next);
}

/* Waits for signals until SIGTERM or SIGINT, then drains. */
static void shim_server_run(struct shim_server *srv)
{
	unsigned left;
	int sig = 0;

	for (;;) {
		if (sigwait(&srv->signals, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			shim_server_reload(srv);
			continue;
		}
		break;
	}
	ec_log_info("%s: draining (up to %" PRId64 " ms for requests in flight)",
	            sig == SIGINT ? "SIGINT" : "SIGTERM", srv->conf->drain_timeout_ms);
	left = shim_serve_drain(srv->serve, srv->conf->drain_timeout_ms);
	if (left > 0)
		ec_log_warn("drain: %u requests still in flight; aborting their fetches", left);
	/* fetches still running end now; their clients get 503 before the listener stops */
	atomic_store(&srv->fetch_opts.is_stopping, 1);
	shim_pool_stop(srv->pool);
	shim_publish_stop(srv->pub);
	shim_serve_drain(srv->serve, 1000);
}

/* Stops the parts in reverse order. Safe after a partial shim_server_init(). */
static void shim_server_fini(struct shim_server *srv)
{
	atomic_store(&srv->fetch_opts.is_stopping, 1);
	if (srv->pool != NULL)
		shim_pool_stop(srv->pool);
	if (srv->pub != NULL)
		shim_publish_stop(srv->pub);
	shim_admin_free(srv->admin);
	shim_serve_free(srv->serve);
	shim_pool_free(srv->pool);
	shim_publish_free(srv->pub);
	shim_acct_free(srv->acct);  /* after the listener: the last counts are flushed */
	if (srv->metrics != NULL)
		ec_metrics_free(srv->metrics);
	shim_fetch_global_fini();
	ec_log_info("stopped");
}

int main(int argc, char **argv)
{
	struct ec_args args;
	struct shim_conf conf;
	struct shim_server srv;
	char err[4096];
	int rc;

	if (ec_args_parse(argc, argv, &args, err, sizeof err) != 0)
		return ec_exit_usage(SHIM_PROG, err);                 /* exit 2 */
	if (args.show_help || args.show_version)
		return shim_print_info(&args);
	if (shim_conf_load(&conf, &args, err, sizeof err) != 0)
		return ec_exit_usage(SHIM_PROG, err);                 /* exit 2 */
	if (args.test_only) {
		printf("%s: %s: configuration ok\n", SHIM_PROG,
		       args.conf_path ? args.conf_path : "defaults");
		shim_conf_fini(&conf);
		return EXIT_SUCCESS;
	}
	ec_log_open(SHIM_PROG, conf.log_level);
	rc = shim_server_init(&srv, &conf, &args);
	if (rc == 0)
		shim_server_run(&srv);                                /* until SIGTERM */
	shim_server_fini(&srv);
	shim_conf_fini(&conf);
	return rc == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
