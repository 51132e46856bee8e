/* shim_admin: the operators' listener of echos-origin-shim: Prometheus text at
 * GET /metrics and a liveness answer at GET /healthz. Serves nothing else. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_ADMIN_H
#define ECHOS_ORIGIN_SHIM_SHIM_ADMIN_H

#include <stddef.h>

struct ec_metrics;
struct shim_admin;

/* Listens on addr ("host:port"), rendering m (borrowed; must outlive the result).
 * Returns a new listener owned by the caller (free with shim_admin_free) or NULL with the
 * reason in err. */
struct shim_admin *shim_admin_new(const char *addr, struct ec_metrics *m, char *err,
                                  size_t errlen);
void shim_admin_free(struct shim_admin *a);

#endif
