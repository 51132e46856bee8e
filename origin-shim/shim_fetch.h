/* shim_fetch: one upstream GET into an anonymous spool file, hashed while it arrives
 * (or one upstream HEAD, headers only).
 * A fetcher is one libcurl easy handle, reused so its upstream connections stay alive;
 * it belongs to one thread at a time. Does not decide the client's answer or log:
 * the result says what happened and the caller chooses the status. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_FETCH_H
#define ECHOS_ORIGIN_SHIM_SHIM_FETCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shim_digest.h"

/* Settings shared by all fetchers; the atomics may change on SIGHUP. */
struct shim_fetch_opts {
	_Atomic int64_t timeout_ms;         /* no byte for this long: EC_ETIMEOUT */
	_Atomic int64_t connect_timeout_ms;
	_Atomic uint64_t max_bytes;         /* larger objects: EC_ETOOBIG */
	const char *spool_dir;              /* borrowed */
	atomic_int is_stopping;             /* set at shutdown: transfers abort (EC_ESTATE) */
};

/* The outcome of one fetch. Header values are as the upstream sent them (trimmed). */
struct shim_object {
	int fd;                        /* the body, read from offset 0; -1 if none; owned */
	uint64_t size_bytes;           /* body bytes received */
	int64_t content_length;        /* upstream Content-Length; -1 if none (HEAD's size) */
	int has_strong_validator;      /* a strong ETag, or a Last-Modified at least a
	                                * minute before the response's Date: the same
	                                * validators then mean the same bytes */
	long status;                   /* upstream HTTP status; 0 if no response */
	int error;                     /* 0, or EC_EIO, EC_ETIMEOUT, EC_ETOOBIG, EC_EFULL
	                                * (spool), EC_EINVAL (unusable header), EC_ESTATE */
	char reason[256];              /* why, when error != 0 (libcurl's words or ours) */
	uint8_t sha256[SHIM_SHA256_LEN]; /* of the body, valid when error == 0 */
	char content_type[128];
	char last_modified[64];
	char etag[192];
	char repr_digest[512];         /* "" if the upstream sent none */
	char cache_control[128];
	char content_encoding[64];
	char location[1024];
	char date[64];                 /* the response's Date, to judge Last-Modified */
};

struct shim_fetcher;

/* Returns a new fetcher owned by the caller (free with shim_fetcher_free), borrowing
 * opts for its lifetime; NULL on allocation failure. */
struct shim_fetcher *shim_fetcher_new(struct shim_fetch_opts *opts);
void shim_fetcher_free(struct shim_fetcher *f);

/* Fetches url into obj (obj->fd is then owned by the caller: close it, or hand it on).
 * Always fills obj; returns obj->error. */
int shim_fetch_get(struct shim_fetcher *f, const char *url, struct shim_object *obj);

/* Sends HEAD for url: fills obj's status, headers and content_length, no body (obj->fd is
 * -1, sha256 unset). Returns obj->error. */
int shim_fetch_head(struct shim_fetcher *f, const char *url, struct shim_object *obj);

/* Closes obj->fd if open. */
void shim_object_fini(struct shim_object *obj);

/* Process-wide libcurl setup/teardown: call once, before any thread starts / after all. */
int shim_fetch_global_init(void);
void shim_fetch_global_fini(void);

#endif
