/* shim_digest: streaming SHA-256 with OpenSSL EVP and the textual forms the shim sends.
 * Knows nothing of HTTP beyond the two header value syntaxes. */
#include <openssl/evp.h>
#include <string.h>

#include "ec_err.h"
#include "shim_digest.h"

int shim_sha256_init(struct shim_sha256 *h)
{
	h->ctx = EVP_MD_CTX_new();
	return h->ctx != NULL ? 0 : EC_ENOMEM;
}

void shim_sha256_fini(struct shim_sha256 *h)
{
	EVP_MD_CTX_free(h->ctx);
	h->ctx = NULL;
}

int shim_sha256_begin(struct shim_sha256 *h)
{
	return EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : EC_EIO;
}

int shim_sha256_update(struct shim_sha256 *h, const void *data, size_t len)
{
	return EVP_DigestUpdate(h->ctx, data, len) == 1 ? 0 : EC_EIO;
}

int shim_sha256_end(struct shim_sha256 *h, uint8_t out[SHIM_SHA256_LEN])
{
	unsigned int n = 0;

	if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != SHIM_SHA256_LEN)
		return EC_EIO;
	return 0;
}

char *shim_digest_repr(const uint8_t d[SHIM_SHA256_LEN], char out[SHIM_REPR_DIGEST_LEN])
{
	/* 32 bytes encode to 44 base64 characters plus the NUL EVP_EncodeBlock writes */
	memcpy(out, "sha-256=:", 9);
	EVP_EncodeBlock((unsigned char *)out + 9, d, SHIM_SHA256_LEN);
	out[53] = ':';
	out[54] = '\0';
	return out;
}

char *shim_digest_etag(const uint8_t d[SHIM_SHA256_LEN], char out[SHIM_ETAG_LEN])
{
	static const char hex[] = "0123456789abcdef";

	out[0] = '"';
	for (int i = 0; i < 8; i++) {
		out[1 + 2 * i] = hex[d[i] >> 4];
		out[2 + 2 * i] = hex[d[i] & 15];
	}
	out[17] = '"';
	out[18] = '\0';
	return out;
}
