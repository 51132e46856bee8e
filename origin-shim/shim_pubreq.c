/* shim_pubreq: a small, strict JSON reader for exactly one shape of object, the publish
 * announcement, and the JSON answers. Not a general JSON library: no nesting beyond one
 * array of strings, printable ASCII strings only, so nothing needs UTF-8 handling. */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_token.h"
#include "shim_pubreq.h"
#include "shim_req.h"

#define PJ_KEY_MAX 32      /* longer keys are unknown anyway */
#define PJ_NUM_MAX 40      /* bytes of one number's text */

struct pj {
	const char *p;     /* next byte */
	const char *start; /* for byte offsets in messages */
	const char *end;
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 2, 3)))
static int pj_fail(struct pj *j, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->err, j->errlen, fmt, ap);
	va_end(ap);
	return EC_EINVAL;
}

static void pj_ws(struct pj *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' ||
	                         *j->p == '\r'))
		j->p++;
}

/* Fails with "expected X at byte N, got 'c'" (or "end of body"). */
static int pj_expected(struct pj *j, const char *what)
{
	size_t off = (size_t)(j->p - j->start);

	if (j->p >= j->end)
		return pj_fail(j, "expected %s at byte %zu, got the end of the body", what, off);
	if (*j->p >= 0x21 && *j->p <= 0x7e)
		return pj_fail(j, "expected %s at byte %zu, got '%c'", what, off, *j->p);
	return pj_fail(j, "expected %s at byte %zu, got byte 0x%02x", what, off,
	               (unsigned char)*j->p);
}

static int pj_hex(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads a JSON string at j->p (at its opening quote) into dst (cap bytes with NUL).
 * Every character, raw or escaped, must be printable ASCII. Returns the decoded length,
 * EC_ETOOBIG when it does not fit (the string is still consumed), or EC_EINVAL (err set).
 * `what` names the value in messages. */
static int pj_string(struct pj *j, char *dst, size_t cap, const char *what)
{
	size_t n = 0;
	int is_truncated = 0;

	if (j->p >= j->end || *j->p != '"')
		return pj_expected(j, what);
	j->p++;
	for (;;) {
		unsigned c;

		if (j->p >= j->end)
			return pj_fail(j, "%s: unterminated string", what);
		c = (unsigned char)*j->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			return pj_fail(j, "%s: control byte in string", what);
		if (c == '\\') {
			if (j->p >= j->end)
				return pj_fail(j, "%s: unterminated string", what);
			c = (unsigned char)*j->p++;
			switch (c) {
			case '"': case '\\': case '/':
				break;
			case 'u': {
				unsigned v = 0;
				for (int k = 0; k < 4; k++) {
					int h = j->p < j->end ? pj_hex(*j->p) : -1;
					if (h < 0)
						return pj_fail(j, "%s: bad \\u escape", what);
					v = v * 16 + (unsigned)h;
					j->p++;
				}
				c = v;
				break;
			}
			case 'b': case 'f': case 'n': case 'r': case 't':
				return pj_fail(j, "%s: control character in string", what);
			default:
				return pj_fail(j, "%s: bad escape '\\%c'", what, c >= 0x21 &&
				               c <= 0x7e ? (char)c : '?');
			}
		}
		if (c < 0x20 || c >= 0x7f)
			return pj_fail(j, "%s: only printable ASCII is accepted", what);
		if (n + 1 < cap)
			dst[n++] = (char)c;
		else
			is_truncated = 1;
	}
	dst[n] = '\0';
	return is_truncated ? EC_ETOOBIG : (int)n;
}

/* Copies the text of a JSON number at j->p into buf (checked against the JSON grammar).
 * Sets *is_whole when it has no fraction, exponent or sign. Returns 0 or EC_EINVAL. */
static int pj_number_text(struct pj *j, char *buf, size_t cap, int *is_whole,
                          const char *what)
{
	const char *s = j->p, *p = j->p;

	*is_whole = 1;
	if (p < j->end && *p == '-')
		p++, *is_whole = 0;
	if (p >= j->end || !isdigit((unsigned char)*p))
		return pj_fail(j, "%s: expected a number", what);
	if (*p == '0' && p + 1 < j->end && isdigit((unsigned char)p[1]))
		return pj_fail(j, "%s: leading zero in number", what);
	while (p < j->end && isdigit((unsigned char)*p))
		p++;
	if (p < j->end && *p == '.') {
		*is_whole = 0;
		if (++p >= j->end || !isdigit((unsigned char)*p))
			return pj_fail(j, "%s: expected digits after '.'", what);
		while (p < j->end && isdigit((unsigned char)*p))
			p++;
	}
	if (p < j->end && (*p == 'e' || *p == 'E')) {
		*is_whole = 0;
		p++;
		if (p < j->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= j->end || !isdigit((unsigned char)*p))
			return pj_fail(j, "%s: expected digits in the exponent", what);
		while (p < j->end && isdigit((unsigned char)*p))
			p++;
	}
	if ((size_t)(p - s) + 1 > cap)
		return pj_fail(j, "%s: number too long", what);
	memcpy(buf, s, (size_t)(p - s));
	buf[p - s] = '\0';
	j->p = p;
	return 0;
}

/* A JSON number in [0, max]. */
static int pj_nonneg(struct pj *j, double max, double *out, const char *what)
{
	char buf[PJ_NUM_MAX];
	int is_whole;
	double v;

	if (pj_number_text(j, buf, sizeof buf, &is_whole, what) != 0)
		return EC_EINVAL;
	v = strtod(buf, NULL);
	if (!isfinite(v) || !(v >= 0) || v > max)
		return pj_fail(j, "%s: expected a number from 0 to %.0f, got %s", what, max,
		               buf);
	*out = v;
	return 0;
}

/* A JSON number without fraction, exponent or sign, in [min, max]. */
static int pj_whole(struct pj *j, uint64_t min, uint64_t max, uint64_t *out,
                    const char *what)
{
	char buf[PJ_NUM_MAX];
	int is_whole;
	uint64_t v = 0;

	if (pj_number_text(j, buf, sizeof buf, &is_whole, what) != 0)
		return EC_EINVAL;
	if (is_whole) {
		for (const char *p = buf; *p; p++) {
			unsigned d = (unsigned)(*p - '0');
			if (v > (UINT64_MAX - d) / 10) {
				v = UINT64_MAX;
				break;
			}
			v = v * 10 + d;
		}
	}
	if (!is_whole || v < min || v > max)
		return pj_fail(j, "%s: expected a whole number from %" PRIu64 " to %" PRIu64
		               ", got %s", what, min, max, buf);
	*out = v;
	return 0;
}

/* Returns 1 if name is 1-63 bytes of [A-Za-z0-9._-] (the topology's region names). */
static int pubreq_region_ok(const char *name)
{
	size_t n = strlen(name);

	return n >= 1 && n < SHIM_PUB_REGION_LEN &&
	       strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	                    "0123456789._-") == n;
}

/* The "regions" array: up to SHIM_PUB_MAX_REGIONS distinct names; [] is all regions. */
static int pj_regions(struct pj *j, struct shim_pubreq *out)
{
	char what[32];
	int rc;

	if (j->p >= j->end || *j->p != '[')
		return pj_expected(j, "regions: an array of region names");
	j->p++;
	pj_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return 0;  /* as if absent: every region */
	}
	for (;;) {
		char *name;

		if (out->n_regions == SHIM_PUB_MAX_REGIONS)
			return pj_fail(j, "regions: more than %d names", SHIM_PUB_MAX_REGIONS);
		snprintf(what, sizeof what, "regions[%zu]", out->n_regions);
		name = out->regions[out->n_regions];
		rc = pj_string(j, name, SHIM_PUB_REGION_LEN, what);
		if (rc == EC_EINVAL)
			return rc;
		if (rc == EC_ETOOBIG)
			return pj_fail(j, "%s: longer than %d bytes", what, SHIM_PUB_REGION_LEN - 1);
		if (!pubreq_region_ok(name))
			return pj_fail(j, "%s: expected 1-63 letters, digits, '.', '_' or '-', "
			               "got \"%s\"", what, name);
		for (size_t i = 0; i < out->n_regions; i++)
			if (strcmp(out->regions[i], name) == 0)
				return pj_fail(j, "%s: \"%s\" is listed twice", what, name);
		out->n_regions++;
		pj_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			pj_ws(j);
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return 0;
		}
		return pj_expected(j, "',' or ']' in regions");
	}
}

enum pubreq_key {
	KEY_PATH = 0,
	KEY_RPS,
	KEY_SIZE,
	KEY_REGIONS,
	KEY_TTL,
	KEY_N_
};
static const char *const pubreq_keys[KEY_N_] = {
	"path", "expected_rps", "size_bytes", "regions", "ttl_s",
};

/* Checks the announced path: what the shim serves and what the redirector counts. */
static int pubreq_check_path(struct pj *j, const char *path, size_t n)
{
	const char *why = NULL;

	if (strpbrk(path, "?#") != NULL)
		return pj_fail(j, "path: expected a path without query or fragment");
	if ((why = shim_req_check_target(path)) != NULL ||
	    ec_token_path_check(path, n, &why) != 0)
		return pj_fail(j, "path: %s", why ? why : "not acceptable");
	return 0;
}

static int pj_value(struct pj *j, enum pubreq_key k, struct shim_pubreq *out)
{
	uint64_t v;
	int rc;

	switch (k) {
	case KEY_PATH:
		rc = pj_string(j, out->path, sizeof out->path, "path");
		if (rc == EC_ETOOBIG)
			return pj_fail(j, "path: longer than %d bytes", SHIM_PUB_MAX_PATH);
		if (rc < 0)
			return rc;
		return pubreq_check_path(j, out->path, (size_t)rc);
	case KEY_RPS:
		return pj_nonneg(j, SHIM_PUB_MAX_RPS, &out->expected_rps, "expected_rps");
	case KEY_SIZE:
		rc = pj_whole(j, 0, SHIM_PUB_MAX_SIZE, &v, "size_bytes");
		out->size_bytes = v;
		return rc;
	case KEY_REGIONS:
		return pj_regions(j, out);
	case KEY_TTL:
		rc = pj_whole(j, 1, SHIM_PUB_TTL_MAX_S, &v, "ttl_s");
		out->ttl_s = (int64_t)v;
		return rc;
	default:
		EC_ASSERT(0);
		return EC_EINVAL;
	}
}

int shim_pubreq_parse(const char *body, size_t len, struct shim_pubreq *out, char *err,
                      size_t errlen)
{
	struct pj j = { body, body, body + len, err, errlen };
	int seen[KEY_N_] = { 0 };
	char key[PJ_KEY_MAX];

	memset(out, 0, sizeof *out);
	out->ttl_s = SHIM_PUB_TTL_DEFAULT_S;
	err[0] = '\0';
	pj_ws(&j);
	if (j.p >= j.end || *j.p != '{')
		return pj_expected(&j, "a JSON object");
	j.p++;
	pj_ws(&j);
	if (j.p < j.end && *j.p == '}') {
		j.p++;
	} else {
		for (;;) {
			enum pubreq_key k;
			int rc = pj_string(&j, key, sizeof key, "key");

			if (rc == EC_EINVAL)
				return rc;
			for (k = 0; k < KEY_N_; k++)
				if (rc >= 0 && strcmp(key, pubreq_keys[k]) == 0)
					break;
			if (k == KEY_N_)
				return pj_fail(&j, "unknown key \"%s%s\" (expected path, expected_rps,"
				               " size_bytes, regions, ttl_s)", key,
				               rc == EC_ETOOBIG ? "..." : "");
			if (seen[k]++)
				return pj_fail(&j, "key \"%s\" appears twice", key);
			pj_ws(&j);
			if (j.p >= j.end || *j.p != ':')
				return pj_expected(&j, "':'");
			j.p++;
			pj_ws(&j);
			if (pj_value(&j, k, out) != 0)
				return EC_EINVAL;
			pj_ws(&j);
			if (j.p < j.end && *j.p == ',') {
				j.p++;
				pj_ws(&j);
				continue;
			}
			if (j.p < j.end && *j.p == '}') {
				j.p++;
				break;
			}
			return pj_expected(&j, "',' or '}'");
		}
	}
	pj_ws(&j);
	if (j.p != j.end)
		return pj_fail(&j, "unexpected data after the JSON object at byte %zu",
		               (size_t)(j.p - j.start));
	if (!seen[KEY_PATH])
		return pj_fail(&j, "path: required");
	if (!seen[KEY_RPS])
		return pj_fail(&j, "expected_rps: required");
	if (out->n_regions == 0) {
		snprintf(out->regions[0], SHIM_PUB_REGION_LEN, "%s", SHIM_PUB_ALL_REGIONS);
		out->n_regions = 1;
	}
	return 0;
}

/* Appends s as a JSON string (quotes included) at out[*used]. Returns 0 or EC_ERANGE. */
static int pubreq_put_string(char *out, size_t outlen, size_t *used, const char *s)
{
	size_t n = *used;

	if (n + 1 >= outlen)
		return EC_ERANGE;
	out[n++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (n + 7 >= outlen)
			return EC_ERANGE;
		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			n += (size_t)snprintf(out + n, outlen - n, "\\u%04x", c);
		} else {
			out[n++] = (char)c;
		}
	}
	if (n + 1 >= outlen)
		return EC_ERANGE;
	out[n++] = '"';
	out[n] = '\0';
	*used = n;
	return 0;
}

static int pubreq_put_raw(char *out, size_t outlen, size_t *used, const char *s)
{
	size_t n = strlen(s);

	if (*used + n + 1 > outlen)
		return EC_ERANGE;
	memcpy(out + *used, s, n + 1);
	*used += n;
	return 0;
}

int shim_pubreq_accepted_json(const struct shim_pubreq *r, char *out, size_t outlen)
{
	size_t used = 0;
	char tail[48];

	if (pubreq_put_raw(out, outlen, &used, "{\"accepted\": true, \"path\": ") != 0 ||
	    pubreq_put_string(out, outlen, &used, r->path) != 0 ||
	    pubreq_put_raw(out, outlen, &used, ", \"regions\": [") != 0)
		return EC_ERANGE;
	for (size_t i = 0; i < r->n_regions; i++)
		if ((i > 0 && pubreq_put_raw(out, outlen, &used, ", ") != 0) ||
		    pubreq_put_string(out, outlen, &used, r->regions[i]) != 0)
			return EC_ERANGE;
	snprintf(tail, sizeof tail, "], \"ttl_s\": %" PRId64 "}\n", r->ttl_s);
	if (pubreq_put_raw(out, outlen, &used, tail) != 0)
		return EC_ERANGE;
	return (int)used;
}

int shim_pubreq_error_json(const char *msg, char *out, size_t outlen)
{
	char cut[512];
	size_t used = 0;

	EC_ASSERT(outlen >= 16);
	snprintf(cut, outlen - 14 < sizeof cut ? outlen - 14 : sizeof cut, "%s", msg);
	/* escaping may grow the message: shorten it until it fits */
	for (size_t n = strlen(cut);; n = n > 8 ? n - 8 : 0) {
		cut[n] = '\0';
		used = 0;
		if (pubreq_put_raw(out, outlen, &used, "{\"error\": ") == 0 &&
		    pubreq_put_string(out, outlen, &used, cut) == 0 &&
		    pubreq_put_raw(out, outlen, &used, "}\n") == 0)
			return (int)used;
		if (n == 0)
			break;
	}
	snprintf(out, outlen, "{\"error\": \"\"}\n");
	return (int)strlen(out);
}
