/* rdr_serve: the request handler (locate, choose, sign, 302) and the admin handler
 * (/metrics). Never waits on Redis: it reads only the in-memory box table. */
#ifndef ECHOS_REDIRECTOR_RDR_SERVE_H
#define ECHOS_REDIRECTOR_RDR_SERVE_H

#include <stddef.h>

struct ec_http_req;
struct rdr;
struct rdr_conf;

/* Registers every metric series of the redirector in d->metrics. Returns 0 or
 * EC_ENOMEM. */
int rdr_serve_metrics_init(struct rdr *d);

/* (Re)registers the per-service series for the services of conf (call after a reload
 * installs a new conf). Returns 0 or EC_ENOMEM. */
int rdr_serve_services_bind(struct rdr *d, const struct rdr_conf *conf);

/* ec_http handlers; arg is the struct rdr. */
void rdr_serve_on_request(struct ec_http_req *req, void *arg);
void rdr_serve_on_admin(struct ec_http_req *req, void *arg);

/* Checks a request path: what ec_token_path_check accepts (absolute, no "..", no "."
 * or empty segments, no encoded dot, slash, backslash or NUL), and printable ASCII only.
 * Returns NULL when acceptable, else a static reason. */
const char *rdr_serve_check_path(const char *path, size_t len);

#endif
