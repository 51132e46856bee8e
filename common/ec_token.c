/* ec_token: signs and verifies echos URL tokens (HMAC-SHA256 over a canonical string),
 * derives per-box keys (HKDF-SHA256) and parses token text strictly. Format: docs/tokens.md.
 * Reads no clock and does no I/O; keeps no state beyond the keyrings callers own.
 * Secrets never leave the keyring: MACs are compared with CRYPTO_memcmp only. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_fmt.h"
#include "ec_net.h"
#include "ec_token.h"

#define TOKEN_VERSION "1"
#define TOKEN_FIELDS 7
#define TOKEN_MAC_LEN 32
#define TOKEN_MAC_B64_LEN 43
#define TOKEN_EXP_MAX 253402300799LL  /* 9999-12-31T23:59:59Z */
#define TOKEN_SEGMENTS_MAX 64
#define TOKEN_NET_MAX 50
#define CANON_PREFIX "echos-token-v1\n"
#define BOX_KEY_SALT "echos-box-key-v1"

static void set_err(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- encodings ------------------------------------------------------------------------ */

static const char b64url_chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int ec_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen)
{
	size_t need = len / 3 * 4 + (len % 3 ? len % 3 + 1 : 0), i, o = 0;

	if (need + 1 > outlen || need > INT32_MAX)
		return -1;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
		out[o++] = b64url_chars[v & 63];
	}
	if (len - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
	} else if (len - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64url_chars[v >> 18 & 63];
		out[o++] = b64url_chars[v >> 12 & 63];
		out[o++] = b64url_chars[v >> 6 & 63];
	}
	out[o] = '\0';
	return (int)o;
}

static int b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/* Strict: no padding, no whitespace, and the unused low bits of the last character must
 * be zero, so every byte string has exactly one encoding. */
int ec_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
	size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0), i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1 || need > outlen || need > INT32_MAX)
		return -1;
	for (i = 0; i < len; i++) {
		int v = b64url_value(in[i]);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc != 0)
		return -1;
	return (int)o;
}

void ec_hex_encode(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int ec_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int ec_hex_decode(const char *in, size_t len, uint8_t *out, size_t outlen)
{
	size_t i;

	if (len % 2 != 0 || len / 2 > outlen || len / 2 > INT32_MAX)
		return -1;
	for (i = 0; i < len; i += 2) {
		int hi = ec_hex_digit(in[i]), lo = ec_hex_digit(in[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	return (int)(len / 2);
}

/* Strict decimal: 1..n digits, no sign, no leading zero, value <= max. */
static int parse_dec(const char *s, size_t n, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0 || n > 20 || (n > 1 && s[0] == '0'))
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		if (v > (max - (uint64_t)(s[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* ---- keys ----------------------------------------------------------------------------- */

int ec_token_box_id_valid(const char *box_id)
{
	size_t i;

	if (box_id == NULL)
		return 0;
	for (i = 0; box_id[i] != '\0'; i++) {
		char c = box_id[i];
		if (i >= EC_TOKEN_BOX_MAX ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return i > 0;
}

static int box_valid_n(const char *s, size_t n)
{
	char box[EC_TOKEN_BOX_MAX + 1];

	if (n == 0 || n > EC_TOKEN_BOX_MAX)
		return 0;
	memcpy(box, s, n);
	box[n] = '\0';
	return strlen(box) == n && ec_token_box_id_valid(box);
}

int ec_token_keyring_add(struct ec_token_keyring *kr, const char *spec, char *err,
                         size_t errlen)
{
	struct ec_token_key *k;
	const char *colon, *hex;
	uint64_t kid;
	size_t hexlen, i;
	int n;

	if (kr == NULL || spec == NULL) {
		set_err(err, errlen, "no key given");
		return EC_EINVAL;
	}
	colon = strchr(spec, ':');
	if (colon == NULL || parse_dec(spec, (size_t)(colon - spec), 65535, &kid) != 0 ||
	    kid == 0) {
		set_err(err, errlen, "expected KID:HEX with a key id from 1 to 65535");
		return EC_EINVAL;
	}
	hex = colon + 1;
	hexlen = strlen(hex);
	if (hexlen < 32 || hexlen > 2 * EC_TOKEN_MASTER_MAX || hexlen % 2 != 0) {
		set_err(err, errlen, "key %u: expected 32 to 128 hex digits (16 to 64 bytes), got %zu",
		        (unsigned)kid, hexlen);
		return EC_EINVAL;
	}
	for (i = 0; i < kr->n; i++) {
		if (kr->keys[i].kid == kid) {
			set_err(err, errlen, "key id %u given twice", (unsigned)kid);
			return EC_EINVAL;
		}
	}
	if (kr->n >= EC_TOKEN_MAX_KEYS) {
		set_err(err, errlen, "too many keys (at most %d)", EC_TOKEN_MAX_KEYS);
		return EC_EFULL;
	}
	k = &kr->keys[kr->n];
	n = ec_hex_decode(hex, hexlen, k->key, sizeof k->key);
	if (n < 0) {
		OPENSSL_cleanse(k, sizeof *k);
		set_err(err, errlen, "key %u: not hexadecimal", (unsigned)kid);
		return EC_EINVAL;
	}
	k->kid = (uint32_t)kid;
	k->len = (size_t)n;
	kr->n++;
	return 0;
}

const struct ec_token_key *ec_token_keyring_find(const struct ec_token_keyring *kr,
                                                 uint32_t kid)
{
	size_t i;

	for (i = 0; kr != NULL && i < kr->n; i++)
		if (kr->keys[i].kid == kid)
			return &kr->keys[i];
	return NULL;
}

int ec_token_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                         size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                         size_t out_len)
{
	EVP_PKEY_CTX *ctx;
	size_t n = out_len;
	int ok;

	if (ikm == NULL || ikm_len == 0 || out == NULL || out_len == 0 || out_len > 255 * 32 ||
	    salt_len > INT32_MAX || ikm_len > INT32_MAX || info_len > 1024)
		return EC_EINVAL;
	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	if (ctx == NULL)
		return EC_ENOMEM;
	ok = EVP_PKEY_derive_init(ctx) > 0 &&
	     EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) > 0 &&
	     (salt_len == 0 || EVP_PKEY_CTX_set1_hkdf_salt(ctx, salt, (int)salt_len) > 0) &&
	     EVP_PKEY_CTX_set1_hkdf_key(ctx, ikm, (int)ikm_len) > 0 &&
	     (info_len == 0 || EVP_PKEY_CTX_add1_hkdf_info(ctx, info, (int)info_len) > 0) &&
	     EVP_PKEY_derive(ctx, out, &n) > 0 && n == out_len;
	EVP_PKEY_CTX_free(ctx);
	if (!ok) {
		OPENSSL_cleanse(out, out_len);
		return EC_EINVAL;
	}
	return 0;
}

int ec_token_derive_box_key(const uint8_t *master, size_t master_len, const char *box_id,
                            uint8_t out[EC_TOKEN_KEY_LEN])
{
	if (master == NULL || master_len < 16 || master_len > EC_TOKEN_MASTER_MAX ||
	    !ec_token_box_id_valid(box_id))
		return EC_EINVAL;
	return ec_token_hkdf_sha256((const uint8_t *)BOX_KEY_SALT, strlen(BOX_KEY_SALT), master,
	                            master_len, (const uint8_t *)box_id, strlen(box_id), out,
	                            EC_TOKEN_KEY_LEN);
}

int ec_token_keyring_derive(const struct ec_token_keyring *masters, const char *box_id,
                            struct ec_token_keyring *out)
{
	size_t i;
	int rc;

	memset(out, 0, sizeof *out);
	for (i = 0; i < masters->n; i++) {
		rc = ec_token_derive_box_key(masters->keys[i].key, masters->keys[i].len, box_id,
		                             out->keys[i].key);
		if (rc != 0) {
			OPENSSL_cleanse(out, sizeof *out);
			return rc;
		}
		out->keys[i].kid = masters->keys[i].kid;
		out->keys[i].len = EC_TOKEN_KEY_LEN;
		out->n = i + 1;
	}
	return 0;
}

/* ---- paths and scopes ----------------------------------------------------------------- */

/* The bytes ec_token_path_check looks at: controls, DEL, backslash, slash, dot and
 * percent. Every other byte passes on one table load. */
static const unsigned char path_special[256] = {
	[0 ... 0x1f] = 1, ['\\'] = 1, ['/'] = 1, ['.'] = 1, ['%'] = 1, [0x7f] = 1,
};

int ec_token_path_check(const char *p, size_t n, const char **why)
{
	const char *dummy;
	size_t i;

	if (why == NULL)
		why = &dummy;
	if (p == NULL || n == 0 || p[0] != '/') {
		*why = "path is not absolute";
		return EC_EINVAL;
	}
	if (n > EC_TOKEN_PATH_MAX) {
		*why = "path too long";
		return EC_EINVAL;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (!path_special[c])
			continue;
		if (c == '\0') {
			*why = "NUL byte in path";
			return EC_EINVAL;
		}
		if (c < 0x20 || c == 0x7f) {
			*why = "control character in path";
			return EC_EINVAL;
		}
		if (c == '\\') {
			*why = "backslash in path";
			return EC_EINVAL;
		}
		if (c == '/' && i + 1 < n && p[i + 1] == '/') {
			*why = "empty segment (\"//\") in path";
			return EC_EINVAL;
		}
		if (c == '.' && i + 1 < n && p[i + 1] == '.') {
			*why = "\"..\" in path";
			return EC_EINVAL;
		}
		if (c == '.' && p[i - 1] == '/' && (i + 1 == n || p[i + 1] == '/')) {
			*why = "\".\" segment in path";
			return EC_EINVAL;
		}
		if (c == '%') {
			int hi = i + 2 < n ? ec_hex_digit(p[i + 1]) : -1;
			int lo = i + 2 < n ? ec_hex_digit(p[i + 2]) : -1;
			int v;

			if (hi < 0 || lo < 0) {
				*why = "'%' not followed by two hex digits in path";
				return EC_EINVAL;
			}
			v = hi << 4 | lo;
			if (v == '.' || v == '/' || v == '\\' || v == 0) {
				*why = "encoded dot, slash, backslash or NUL in path";
				return EC_EINVAL;
			}
		}
	}
	return 0;
}

int ec_token_scope_of(const char *path, size_t path_len, const struct ec_token_claims *c,
                      char *out, size_t outlen)
{
	size_t n = path_len, i;
	unsigned slashes = 0;

	if (path == NULL || path_len == 0 || path[0] != '/' || c == NULL)
		return EC_EINVAL;
	if (c->scope == EC_TOKEN_SCOPE_PREFIX) {
		if (c->prefix_segments == 0)
			return EC_EINVAL;
		/* the prefix ends at the slash closing segment N: a '/' boundary, so "/v/ab/"
		 * never covers "/v/abc" */
		for (i = 0, n = 0; i < path_len; i++) {
			if (path[i] == '/' && ++slashes == c->prefix_segments + 1) {
				n = i + 1;
				break;
			}
		}
		if (n == 0)
			return EC_EINVAL;
	} else if (c->scope != EC_TOKEN_SCOPE_EXACT) {
		return EC_EINVAL;
	}
	if (n + 1 > outlen || n > INT32_MAX)
		return EC_EINVAL;
	memcpy(out, path, n);
	out[n] = '\0';
	return (int)n;
}

/* ---- canonical string and MAC ---------------------------------------------------------- */

/* Keyed HMAC contexts kept per thread, direct-mapped by the key's first bytes (keys are
 * HKDF output, so those bytes are uniform). A redirector signs for the boxes of the
 * client's PoP in turn: keying a context costs two SHA-256 blocks and OpenSSL's
 * parameter handling, a restart of a keyed one only a copy of its inner state. */
#define HMAC_SLOTS 128

struct hmac_slot {
	EVP_MAC_CTX *ctx;
	size_t keylen; /* 0: not keyed */
	uint8_t key[EC_TOKEN_MASTER_MAX];
};

/* HMAC-SHA256 with the MAC fetched once and a keyed context per recent key: the one-shot
 * HMAC() looks the algorithm up by name, under a lock, and keys afresh on every call. */
static int hmac_sha256(const uint8_t *key, size_t keylen, const void *msg, size_t msglen,
                       uint8_t out[TOKEN_MAC_LEN])
{
	static _Thread_local EVP_MAC *mac;
	static _Thread_local struct hmac_slot *slots;
	struct hmac_slot *sl;
	uint64_t h = 0;
	size_t n = 0;
	int ok;

	if (keylen == 0 || keylen > sizeof sl->key)
		return EC_EINVAL;
	if (!slots && !(slots = calloc(HMAC_SLOTS, sizeof *slots)))
		return EC_ENOMEM;
	memcpy(&h, key, keylen < sizeof h ? keylen : sizeof h);
	sl = &slots[(h ^ h >> 29 ^ keylen) % HMAC_SLOTS];
	if (!sl->ctx) {
		if (!mac && !(mac = EVP_MAC_fetch(NULL, "HMAC", NULL)))
			return EC_EINVAL;
		if (!(sl->ctx = EVP_MAC_CTX_new(mac)))
			return EC_ENOMEM;
		sl->keylen = 0;
	}
	if (keylen == sl->keylen && CRYPTO_memcmp(key, sl->key, keylen) == 0) {
		ok = EVP_MAC_init(sl->ctx, NULL, 0, NULL) == 1; /* same key: restart */
	} else {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string("digest", (char *)"SHA256", 0),
			OSSL_PARAM_construct_end(),
		};
		ok = EVP_MAC_init(sl->ctx, key, keylen, params) == 1;
		if (ok) {
			memcpy(sl->key, key, keylen);
			sl->keylen = keylen;
		} else {
			sl->keylen = 0;
		}
	}
	ok = ok && EVP_MAC_update(sl->ctx, msg, msglen) == 1 &&
	     EVP_MAC_final(sl->ctx, out, &n, TOKEN_MAC_LEN) == 1 && n == TOKEN_MAC_LEN;
	if (!ok) {
		/* start over with a fresh context next time */
		EVP_MAC_CTX_free(sl->ctx);
		sl->ctx = NULL;
		sl->keylen = 0;
		return EC_EINVAL;
	}
	return 0;
}

/* MACs of recent canonical strings under their key: a viewer's token comes back with every
 * segment (and a box sees the same popular tokens again and again), and an HMAC costs a
 * microsecond. A pure memo of a deterministic function: an entry answers only for the exact
 * key and message it was computed from. Direct-mapped; strings over MEMO_MSG_MAX bytes
 * are not kept. */
#define MEMO_SLOTS 512
#define MEMO_MSG_MAX 256

struct mac_memo {
	uint16_t len;                   /* 0: empty */
	uint8_t keylen;
	uint8_t key[EC_TOKEN_MASTER_MAX];
	uint8_t mac[TOKEN_MAC_LEN];
	char msg[MEMO_MSG_MAX];
};

static _Thread_local struct mac_memo *memo;

static size_t memo_slot(const char *msg, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, msg + i, 8);
		h = (h ^ w) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	for (; i < len; i++)
		h = (h ^ (uint8_t)msg[i]) * 0x100000001b3ull;
	h ^= h >> 32;
	return (size_t)(h % MEMO_SLOTS);
}

static int hmac_memo(const uint8_t *key, size_t keylen, const char *msg, size_t len,
                     uint8_t out[TOKEN_MAC_LEN])
{
	struct mac_memo *m = NULL;

	if (len <= MEMO_MSG_MAX && keylen <= EC_TOKEN_MASTER_MAX) {
		if (!memo)
			memo = calloc(MEMO_SLOTS, sizeof *memo);
		if (memo) {
			m = &memo[memo_slot(msg, len)];
			if (m->len == len && m->keylen == keylen && memcmp(m->msg, msg, len) == 0 &&
			    CRYPTO_memcmp(m->key, key, keylen) == 0) {
				memcpy(out, m->mac, TOKEN_MAC_LEN);
				return 0;
			}
		}
	}
	if (hmac_sha256(key, keylen, msg, len, out) != 0)
		return EC_EINVAL;
	if (m) {
		m->len = (uint16_t)len;
		m->keylen = (uint8_t)keylen;
		memcpy(m->key, key, keylen);
		memcpy(m->mac, out, TOKEN_MAC_LEN);
		memcpy(m->msg, msg, len);
	}
	return 0;
}

/* Computes HMAC-SHA256(key, canonical string of claims and scope path):
 *   "echos-token-v1\n" kid "\n" exp "\n" box "\n" ("d"|"e") "\n" scope "\n" net "\n" */
static int token_mac(const uint8_t *key, size_t keylen, const struct ec_token_claims *c,
                     const char *scope, size_t scope_len, uint8_t mac[TOKEN_MAC_LEN])
{
	char canon[EC_TOKEN_PATH_MAX + 256], net[64], *p = canon;
	size_t boxlen = strlen(c->box), netlen;

	if (c->has_net) {
		ec_prefix_ntop(&c->net, c->net_bits, net, sizeof net);
		netlen = strlen(net);
	} else {
		net[0] = '-';
		netlen = 1;
	}
	/* prefix, two numbers of at most 20 digits, box, scope letter, scope, net, 6 newlines */
	if (sizeof CANON_PREFIX - 1 + 40 + boxlen + 1 + scope_len + netlen + 6 > sizeof canon)
		return EC_ERANGE;
	memcpy(p, CANON_PREFIX, sizeof CANON_PREFIX - 1);
	p += sizeof CANON_PREFIX - 1;
	p = ec_put_dec(p, c->kid);
	*p++ = '\n';
	p = ec_put_dec(p, (uint64_t)c->exp_s); /* claims checked: 0..TOKEN_EXP_MAX */
	*p++ = '\n';
	memcpy(p, c->box, boxlen);
	p += boxlen;
	*p++ = '\n';
	*p++ = c->scope == EC_TOKEN_SCOPE_PREFIX ? 'd' : 'e';
	*p++ = '\n';
	memcpy(p, scope, scope_len);
	p += scope_len;
	*p++ = '\n';
	memcpy(p, net, netlen);
	p += netlen;
	*p++ = '\n';
	return hmac_memo(key, keylen, canon, (size_t)(p - canon), mac);
}

static int claims_valid(const struct ec_token_claims *c)
{
	if (c->kid == 0 || c->kid > 65535 || c->exp_s < 0 || c->exp_s > TOKEN_EXP_MAX ||
	    !ec_token_box_id_valid(c->box))
		return 0;
	if (c->scope == EC_TOKEN_SCOPE_PREFIX)
		return c->prefix_segments >= 1 && c->prefix_segments <= TOKEN_SEGMENTS_MAX;
	if (c->scope != EC_TOKEN_SCOPE_EXACT)
		return 0;
	if (c->has_net) {
		if (c->net.ss_family == AF_INET)
			return c->net_bits <= 32;
		if (c->net.ss_family == AF_INET6)
			return c->net_bits <= 128;
		return 0;
	}
	return 1;
}

int ec_token_sign(const uint8_t key[EC_TOKEN_KEY_LEN], const struct ec_token_claims *claims,
                  const char *path, size_t path_len, char *out, size_t outlen)
{
	/* version, kid, exp, box, scope, net and MAC with their six '~': at most 2 + 5 + 21 +
	 * 64 + 4 + 64 + 44 bytes */
	char scope[EC_TOKEN_PATH_MAX + 1], net[64], tok[256], *p = tok;
	uint8_t mac[TOKEN_MAC_LEN];
	size_t netlen, boxlen, n;
	int sn;

	if (key == NULL || claims == NULL || !claims_valid(claims) ||
	    ec_token_path_check(path, path_len, NULL) != 0)
		return EC_EINVAL;
	sn = ec_token_scope_of(path, path_len, claims, scope, sizeof scope);
	if (sn < 0)
		return EC_EINVAL;
	if (token_mac(key, EC_TOKEN_KEY_LEN, claims, scope, (size_t)sn, mac) != 0)
		return EC_EINVAL;
	if (claims->has_net) {
		/* in the token text the prefix length follows '_', not '/': the token is
		 * one URL path segment */
		ec_prefix_ntop(&claims->net, claims->net_bits, net, sizeof net);
		char *slash = strchr(net, '/');
		if (slash)
			*slash = '_';
		netlen = strlen(net);
	} else {
		net[0] = '-';
		netlen = 1;
	}
	boxlen = strlen(claims->box); /* claims checked: at most EC_TOKEN_BOX_MAX */
	/* TOKEN_VERSION "~kid~exp~box~scope~net~mac", without printf: this runs per redirect */
	*p++ = TOKEN_VERSION[0];
	*p++ = '~';
	p = ec_put_dec(p, (unsigned)claims->kid);
	*p++ = '~';
	p = ec_put_dec(p, (uint64_t)claims->exp_s); /* claims checked: 0..TOKEN_EXP_MAX */
	*p++ = '~';
	memcpy(p, claims->box, boxlen);
	p += boxlen;
	*p++ = '~';
	if (claims->scope == EC_TOKEN_SCOPE_PREFIX) {
		*p++ = 'd';
		p = ec_put_dec(p, claims->prefix_segments);
	} else {
		*p++ = 'e';
	}
	*p++ = '~';
	memcpy(p, net, netlen);
	p += netlen;
	*p++ = '~';
	ec_b64url_encode(mac, sizeof mac, p, TOKEN_MAC_B64_LEN + 1);
	OPENSSL_cleanse(mac, sizeof mac);
	p += TOKEN_MAC_B64_LEN;
	n = (size_t)(p - tok);
	if (n >= outlen)
		return EC_ERANGE;
	memcpy(out, tok, n);
	out[n] = '\0';
	return (int)n;
}

/* ---- parsing and verifying ------------------------------------------------------------- */

/* Parses the token and decodes its MAC into mac. */
static int token_parse(const char *tok, size_t tok_len, struct ec_token_claims *c,
                       uint8_t mac[TOKEN_MAC_LEN], char *err, size_t errlen)
{
	const char *f[TOKEN_FIELDS];
	size_t fl[TOKEN_FIELDS], i, nf = 0, start = 0;
	char net[TOKEN_NET_MAX + 1], canon_net[64];
	uint64_t v;

	memset(c, 0, sizeof *c);
	if (tok == NULL || tok_len == 0) {
		set_err(err, errlen, "empty token");
		return EC_EINVAL;
	}
	if (tok_len > EC_TOKEN_MAX_LEN) {
		set_err(err, errlen, "token too long");
		return EC_EINVAL;
	}
	for (i = 0; i <= tok_len; i++) {
		if (i < tok_len && tok[i] != '~')
			continue;
		if (nf == TOKEN_FIELDS) {
			set_err(err, errlen, "token has too many fields");
			return EC_EINVAL;
		}
		f[nf] = tok + start;
		fl[nf] = i - start;
		if (fl[nf] == 0) {
			set_err(err, errlen, "empty field %zu in token", nf + 1);
			return EC_EINVAL;
		}
		nf++;
		start = i + 1;
	}
	if (nf != TOKEN_FIELDS) {
		set_err(err, errlen, "token has %zu fields, expected %d", nf, TOKEN_FIELDS);
		return EC_EINVAL;
	}
	if (fl[0] != 1 || f[0][0] != TOKEN_VERSION[0]) {
		set_err(err, errlen, "unsupported token version");
		return EC_EINVAL;
	}
	if (parse_dec(f[1], fl[1], 65535, &v) != 0 || v == 0) {
		set_err(err, errlen, "bad key id in token");
		return EC_EINVAL;
	}
	c->kid = (uint32_t)v;
	if (parse_dec(f[2], fl[2], TOKEN_EXP_MAX, &v) != 0) {
		set_err(err, errlen, "bad expiry in token");
		return EC_EINVAL;
	}
	c->exp_s = (int64_t)v;
	if (!box_valid_n(f[3], fl[3])) {
		set_err(err, errlen, "bad box id in token");
		return EC_EINVAL;
	}
	memcpy(c->box, f[3], fl[3]);
	c->box[fl[3]] = '\0';
	if (fl[4] == 1 && f[4][0] == 'e') {
		c->scope = EC_TOKEN_SCOPE_EXACT;
	} else if (f[4][0] == 'd' && parse_dec(f[4] + 1, fl[4] - 1, TOKEN_SEGMENTS_MAX, &v) == 0 &&
	           v >= 1) {
		c->scope = EC_TOKEN_SCOPE_PREFIX;
		c->prefix_segments = (unsigned)v;
	} else {
		set_err(err, errlen, "bad scope in token");
		return EC_EINVAL;
	}
	if (fl[5] == 1 && f[5][0] == '-') {
		c->has_net = 0;
	} else {
		/* the network must be written exactly as the signer writes it */
		char *us;
		if (fl[5] > TOKEN_NET_MAX || memchr(f[5], '/', fl[5]) != NULL ||
		    memchr(f[5], '_', fl[5]) == NULL)
			goto bad_net;
		memcpy(net, f[5], fl[5]);
		net[fl[5]] = '\0';
		us = strchr(net, '_');
		*us = '/'; /* "192.0.2.0_24" is written for "192.0.2.0/24" */
		if (strlen(net) != fl[5] || ec_prefix_parse(net, &c->net, &c->net_bits) != 0)
			goto bad_net;
		ec_prefix_ntop(&c->net, c->net_bits, canon_net, sizeof canon_net);
		if (strcmp(canon_net, net) != 0)
			goto bad_net;
		c->has_net = 1;
	}
	if (fl[6] != TOKEN_MAC_B64_LEN ||
	    ec_b64url_decode(f[6], fl[6], mac, TOKEN_MAC_LEN) != TOKEN_MAC_LEN) {
		set_err(err, errlen, "bad signature encoding in token");
		return EC_EINVAL;
	}
	return 0;
bad_net:
	memset(&c->net, 0, sizeof c->net);
	c->net_bits = 0;
	set_err(err, errlen, "bad network in token");
	return EC_EINVAL;
}

int ec_token_parse(const char *tok, size_t tok_len, struct ec_token_claims *out, char *err,
                   size_t errlen)
{
	uint8_t mac[TOKEN_MAC_LEN];
	struct ec_token_claims c;
	int rc = token_parse(tok, tok_len, &c, mac, err, errlen);

	if (rc == 0 && out != NULL)
		*out = c;
	return rc;
}

int ec_token_verify(const struct ec_token_keyring *kr, const char *tok, size_t tok_len,
                    const char *path, size_t path_len, const char *box_id,
                    const struct sockaddr *client, int64_t now_s,
                    struct ec_token_claims *claims_out, char *err, size_t errlen)
{
	char scope[EC_TOKEN_PATH_MAX + 1];
	uint8_t mac[TOKEN_MAC_LEN], want[TOKEN_MAC_LEN];
	const struct ec_token_key *k;
	struct ec_token_claims c;
	const char *why;
	int rc, sn;

	rc = token_parse(tok, tok_len, &c, mac, err, errlen);
	if (rc != 0)
		return rc;
	if (claims_out != NULL)
		*claims_out = c;
	if (ec_token_path_check(path, path_len, &why) != 0) {
		set_err(err, errlen, "%s", why);
		return EC_EINVAL;
	}
	if (box_id == NULL || strcmp(c.box, box_id) != 0) {
		set_err(err, errlen, "token is for another box");
		return EC_ESTATE;
	}
	k = ec_token_keyring_find(kr, c.kid);
	if (k == NULL || k->len != EC_TOKEN_KEY_LEN) {
		set_err(err, errlen, "unknown key id %u", (unsigned)c.kid);
		return EC_ENOENT;
	}
	sn = ec_token_scope_of(path, path_len, &c, scope, sizeof scope);
	if (sn < 0) {
		set_err(err, errlen, "path outside the token's scope");
		return EC_ESTATE;
	}
	if (token_mac(k->key, k->len, &c, scope, (size_t)sn, want) != 0) {
		set_err(err, errlen, "cannot compute signature");
		return EC_EINVAL;
	}
	rc = CRYPTO_memcmp(mac, want, TOKEN_MAC_LEN);
	OPENSSL_cleanse(want, sizeof want);
	if (rc != 0) {
		set_err(err, errlen, "bad signature");
		return EC_EBADSIG;
	}
	if (now_s >= c.exp_s) {
		set_err(err, errlen, "token expired");
		return EC_EEXPIRED;
	}
	if (c.has_net && (client == NULL || !ec_prefix_contains(&c.net, c.net_bits, client))) {
		set_err(err, errlen, "client outside the token's network");
		return EC_ESTATE;
	}
	return 0;
}
