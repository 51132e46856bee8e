/* shim_digest: SHA-256 over an object as it streams in, and the header forms built from
 * it: RFC 9530 Repr-Digest ("sha-256=:<base64>:") and the fallback strong ETag.
 * Does not read files or sockets; the caller feeds bytes. */
#ifndef ECHOS_ORIGIN_SHIM_SHIM_DIGEST_H
#define ECHOS_ORIGIN_SHIM_SHIM_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define SHIM_SHA256_LEN 32
/* "sha-256=:" + 44 base64 chars + ":" + NUL */
#define SHIM_REPR_DIGEST_LEN 56
/* '"' + 16 hex + '"' + NUL */
#define SHIM_ETAG_LEN 19

struct evp_md_ctx_st;

struct shim_sha256 {
	struct evp_md_ctx_st *ctx; /* owned; reused across objects */
};

/* Prepares h (allocates the OpenSSL context). Returns 0 or EC_ENOMEM. */
int shim_sha256_init(struct shim_sha256 *h);
void shim_sha256_fini(struct shim_sha256 *h);
/* Starts a new object. Returns 0 or EC_EIO (OpenSSL refused). */
int shim_sha256_begin(struct shim_sha256 *h);
int shim_sha256_update(struct shim_sha256 *h, const void *data, size_t len);
int shim_sha256_end(struct shim_sha256 *h, uint8_t out[SHIM_SHA256_LEN]);

/* Writes "sha-256=:<base64>:" into out (SHIM_REPR_DIGEST_LEN bytes). Returns out. */
char *shim_digest_repr(const uint8_t d[SHIM_SHA256_LEN], char out[SHIM_REPR_DIGEST_LEN]);
/* Writes "\"<first 16 hex digits>\"" into out (SHIM_ETAG_LEN bytes). Returns out. */
char *shim_digest_etag(const uint8_t d[SHIM_SHA256_LEN], char out[SHIM_ETAG_LEN]);

#endif
