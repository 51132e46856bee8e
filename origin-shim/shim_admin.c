/* shim_admin: a small libmicrohttpd listener (one polling thread) for /metrics and
 * /healthz. Rendering takes the registry mutex: request threads only add atomically,
 * and this is the one reader. Owns its daemon and the mutex. */
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_metrics.h"
#include "shim_admin.h"
#include "shim_serve.h"

#define ADMIN_MAGIC 0xad3170c5u

struct shim_admin {
	unsigned magic;
	struct MHD_Daemon *mhd;
	struct ec_metrics *metrics;  /* borrowed */
	pthread_mutex_t render_lock;
};

static enum MHD_Result admin_text(struct MHD_Connection *conn, unsigned status,
                                  const char *text)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(text),
		(void *)text, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result admin_metrics(struct shim_admin *a, struct MHD_Connection *conn)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	size_t len = 0;
	char *body;

	pthread_mutex_lock(&a->render_lock);
	body = ec_metrics_render(a->metrics, &len);
	pthread_mutex_unlock(&a->render_lock);
	if (body == NULL)
		return admin_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "500 out of memory\n");
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, EC_METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* Access handler: GET or HEAD of /metrics or /healthz; a request body is dropped. */
static enum MHD_Result on_admin_request(void *cls, struct MHD_Connection *conn,
                                        const char *url, const char *method,
                                        const char *version, const char *upload_data,
                                        size_t *upload_data_size, void **req_cls)
{
	struct shim_admin *a = cls;
	static int seen;

	/* answer on the second call: a response queued before the request is read closes
	 * the connection */
	if (*req_cls == NULL) {
		*req_cls = &seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return admin_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "405 method not allowed\n");
	if (strcmp(url, "/metrics") == 0)
		return admin_metrics(a, conn);
	if (strcmp(url, "/healthz") == 0)
		return admin_text(conn, MHD_HTTP_OK, "ok\n");
	return admin_text(conn, MHD_HTTP_NOT_FOUND, "404 not found: try /metrics\n");
}

struct shim_admin *shim_admin_new(const char *addr, struct ec_metrics *m, char *err,
                                  size_t errlen)
{
	struct shim_admin *a;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	const union MHD_DaemonInfo *di;

	if (shim_serve_resolve(addr, &ss, err, errlen) != 0)
		return NULL;
	a = calloc(1, sizeof *a);
	if (a == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	a->magic = ADMIN_MAGIC;
	a->metrics = m;
	pthread_mutex_init(&a->render_lock, NULL);
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	a->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_admin_request, a,
		MHD_OPTION_EXTERNAL_LOGGER, shim_serve_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
		MHD_OPTION_STRICT_FOR_CLIENT, (int)1,
		MHD_OPTION_SIGPIPE_HANDLED_BY_APP, (int)1,
		MHD_OPTION_END);
	if (a->mhd == NULL) {
		snprintf(err, errlen, "admin.listen %s: cannot start the listener (%s)", addr,
		         errno ? strerror(errno) : "libmicrohttpd refused");
		pthread_mutex_destroy(&a->render_lock);
		free(a);
		return NULL;
	}
	di = MHD_get_daemon_info(a->mhd, MHD_DAEMON_INFO_BIND_PORT);
	ec_log_info("admin listener on %s (port %u): /metrics, /healthz", addr,
	            di != NULL ? (unsigned)di->port : 0);
	return a;
}

void shim_admin_free(struct shim_admin *a)
{
	if (a == NULL)
		return;
	EC_ASSERT(a->magic == ADMIN_MAGIC);
	MHD_stop_daemon(a->mhd);
	pthread_mutex_destroy(&a->render_lock);
	a->magic = 0;
	free(a);
}
