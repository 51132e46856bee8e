/* ec_token: signed URL tokens (HMAC-SHA256), per-box key derivation (HKDF-SHA256) and the
 * strict token parser. Format and canonical string: docs/tokens.md.
 *   token = "1~" kid "~" exp "~" box "~" scope "~" net "~" mac
 *   kid: 1..65535 decimal; exp: unix seconds; box: [A-Za-z0-9._-]{1,63};
 *   scope: "e" (exact path) or "d" N (the first N path segments, as a directory prefix);
 *   net: "-" or a client prefix "192.0.2.0/24" / "2001:db8::/48";
 *   mac: base64url without padding of HMAC-SHA256(box_key, canonical string), 43 chars.
 * Does no I/O and reads no clock: callers pass now_s. Keys live in ec_token_keyring. */
#ifndef ECHOS_COMMON_EC_TOKEN_H
#define ECHOS_COMMON_EC_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define EC_TOKEN_KEY_LEN 32
#define EC_TOKEN_BOX_MAX 63
#define EC_TOKEN_MAX_LEN 256   /* longest token text accepted */
#define EC_TOKEN_MAX_KEYS 8
#define EC_TOKEN_MASTER_MAX 64 /* longest master key, bytes */
#define EC_TOKEN_PATH_MAX 4096 /* longest request path a token can cover */

enum ec_token_scope {
	EC_TOKEN_SCOPE_EXACT = 0,
	EC_TOKEN_SCOPE_PREFIX,
};

struct ec_token_claims {
	uint32_t kid;                   /* key id, 1..65535 */
	int64_t exp_s;                  /* expiry, unix seconds */
	char box[EC_TOKEN_BOX_MAX + 1]; /* box id the token is for */
	enum ec_token_scope scope;
	unsigned prefix_segments;       /* PREFIX: directory depth of the scope, >= 1 */
	int has_net;                    /* client network restriction present */
	struct sockaddr_storage net;    /* network address (AF_INET or AF_INET6) */
	unsigned net_bits;              /* prefix length */
};

struct ec_token_key {
	uint32_t kid;
	uint8_t key[EC_TOKEN_MASTER_MAX]; /* the first `len` bytes are the key */
	size_t len;                       /* 32 for a box key; 16..64 for a master key */
};

struct ec_token_keyring {
	struct ec_token_key keys[EC_TOKEN_MAX_KEYS];
	size_t n;
};

/* Parses "kid:hex" (hex of 16..64 bytes for a master key, exactly 32 for a box key) into
 * a keyring entry, appending. Returns 0, EC_EINVAL (err says why) or EC_EFULL. */
int ec_token_keyring_add(struct ec_token_keyring *kr, const char *spec, char *err,
                         size_t errlen);
const struct ec_token_key *ec_token_keyring_find(const struct ec_token_keyring *kr,
                                                 uint32_t kid);

/* Derives a box's key: HKDF-SHA256(ikm = master, salt = "echos-box-key-v1",
 * info = box_id), 32 bytes. Returns 0 or EC_EINVAL. */
int ec_token_derive_box_key(const uint8_t *master, size_t master_len, const char *box_id,
                            uint8_t out[EC_TOKEN_KEY_LEN]);

/* Fills `out` with the box keys of box_id derived from every master key in `masters`,
 * same key ids. Returns 0 or EC_EINVAL (bad box id). */
int ec_token_keyring_derive(const struct ec_token_keyring *masters, const char *box_id,
                            struct ec_token_keyring *out);

/* RFC 5869 HKDF with SHA-256 (extract then expand). Returns 0 or EC_EINVAL. */
int ec_token_hkdf_sha256(const uint8_t *salt, size_t salt_len, const uint8_t *ikm,
                         size_t ikm_len, const uint8_t *info, size_t info_len, uint8_t *out,
                         size_t out_len);

/* Returns 1 if box_id is 1..63 characters of [A-Za-z0-9._-], else 0. */
int ec_token_box_id_valid(const char *box_id);

/* Checks that a request path is absolute and normalized, the rule tokens are signed and
 * verified under: refuses NUL and control bytes, backslashes, "//", "..", "." segments,
 * '%' not followed by two hex digits, and encoded dots, slashes, backslashes and NULs
 * ("%2e", "%2f", "%5c", "%00"). Returns 0, or EC_EINVAL with *why set to a reason. */
int ec_token_path_check(const char *path, size_t path_len, const char **why);

/* Returns the scope path for `path` and claims: the whole path (EXACT) or its first N
 * segments with the trailing '/' (PREFIX). Writes at most outlen bytes including NUL.
 * Returns the length, or EC_EINVAL if the path has fewer segments or is not absolute. */
int ec_token_scope_of(const char *path, size_t path_len, const struct ec_token_claims *c,
                      char *out, size_t outlen);

/* Signs: writes the token text for `claims` covering `path` (an absolute, normalized
 * path; for PREFIX scopes any path under the prefix gives the same token) into out.
 * Returns the token length, or EC_EINVAL / EC_ERANGE (out too small). */
int ec_token_sign(const uint8_t key[EC_TOKEN_KEY_LEN], const struct ec_token_claims *claims,
                  const char *path, size_t path_len, char *out, size_t outlen);

/* Parses the token text strictly (fixed order, no duplicates, bounded length) without
 * checking the MAC. Returns 0 or EC_EINVAL with a reason in err. */
int ec_token_parse(const char *tok, size_t tok_len, struct ec_token_claims *out,
                   char *err, size_t errlen);

/* Verifies a token for a request to box `box_id` for `path` from `client` (may be NULL
 * when the token carries no net) at now_s, with the box's derived keys in kr (entries
 * that are not 32 bytes long are never used). `path` must pass ec_token_path_check.
 * Compares MACs in constant time. Returns 0, or EC_EINVAL (malformed token or path),
 * EC_ENOENT (unknown
 * key id), EC_EBADSIG (bad signature), EC_EEXPIRED, EC_ESTATE (other box, path out of
 * scope, client outside net); err gets a one-line reason like "token expired". */
int ec_token_verify(const struct ec_token_keyring *kr, const char *tok, size_t tok_len,
                    const char *path, size_t path_len, const char *box_id,
                    const struct sockaddr *client, int64_t now_s,
                    struct ec_token_claims *claims_out, char *err, size_t errlen);

/* base64url without padding. Encode returns the length written (NUL-terminated) or -1;
 * decode returns the decoded length or -1 on bad input / too small out. */
int ec_b64url_encode(const uint8_t *in, size_t len, char *out, size_t outlen);
int ec_b64url_decode(const char *in, size_t len, uint8_t *out, size_t outlen);

/* The value of one hex digit (either case), or -1. */
int ec_hex_digit(char c);

/* Lowercase hex; decode returns the byte count or -1. */
void ec_hex_encode(const uint8_t *in, size_t len, char *out /* 2*len+1 */);
int ec_hex_decode(const char *in, size_t len, uint8_t *out, size_t outlen);

#endif
