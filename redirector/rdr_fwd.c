/* rdr_fwd: trusted-proxy CIDRs and the client address behind them, from X-Forwarded-For
 * or RFC 7239 Forwarded. A hop list is read right to left, each element parsed into a
 * fixed buffer; nothing is allocated and nothing a client sends can overrun. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rdr_fwd.h"

#define ADDR_TEXT_MAX 64

static void fwd_apply_bits(uint8_t *a, size_t len, unsigned bits)
{
	for (size_t i = 0; i < len; i++) {
		unsigned lo = (unsigned)i * 8;

		if (bits <= lo)
			a[i] = 0;
		else if (bits < lo + 8)
			a[i] &= (uint8_t)(0xff << (8 - (bits - lo)));
	}
}

int rdr_fwd_parse_cidr(const char *s, struct rdr_cidr *c, char *err, size_t errlen)
{
	char buf[ADDR_TEXT_MAX];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long bits;
	uint8_t want[16];
	char *end;

	memset(c, 0, sizeof *c);
	if (alen == 0 || alen >= sizeof buf) {
		snprintf(err, errlen, "expected an address or CIDR like 10.0.0.0/8 or fd00::/8");
		return -1;
	}
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (inet_pton(AF_INET, buf, c->addr) == 1) {
		c->family = AF_INET;
	} else if (inet_pton(AF_INET6, buf, c->addr) == 1) {
		c->family = AF_INET6;
	} else {
		snprintf(err, errlen, "expected an IPv4 or IPv6 address before '/'");
		return -1;
	}
	bits = c->family == AF_INET ? 32 : 128;
	if (slash) {
		if (slash[1] < '0' || slash[1] > '9') {
			snprintf(err, errlen, "expected a prefix length after '/'");
			return -1;
		}
		bits = strtoul(slash + 1, &end, 10);
		if (*end || bits > (c->family == AF_INET ? 32u : 128u)) {
			snprintf(err, errlen, "expected a prefix length of at most %d",
			         c->family == AF_INET ? 32 : 128);
			return -1;
		}
	}
	c->bits = (unsigned)bits;
	memcpy(want, c->addr, sizeof want);
	fwd_apply_bits(want, c->family == AF_INET ? 4 : 16, c->bits);
	if (memcmp(want, c->addr, c->family == AF_INET ? 4 : 16) != 0) {
		snprintf(err, errlen, "host bits set after the prefix length");
		return -1;
	}
	return 0;
}

/* The address bytes of sa, v4-mapped v6 unwrapped to v4. Returns the family or 0. */
static int fwd_bytes(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		memcpy(out, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return AF_INET;
	}
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(a)) {
			memcpy(out, a->s6_addr + 12, 4);
			return AF_INET;
		}
		memcpy(out, a->s6_addr, 16);
		return AF_INET6;
	}
	return 0;
}

static int fwd_in(const struct rdr_cidr *c, int fam, const uint8_t *a)
{
	uint8_t m[16];
	size_t len = fam == AF_INET ? 4 : 16;

	if (c->family != fam)
		return 0;
	memcpy(m, a, len);
	fwd_apply_bits(m, len, c->bits);
	return memcmp(m, c->addr, len) == 0;
}

static int fwd_trusted_bytes(const struct rdr_fwd *f, int fam, const uint8_t *a)
{
	for (size_t i = 0; i < f->n; i++)
		if (fwd_in(&f->cidrs[i], fam, a))
			return 1;
	return 0;
}

int rdr_fwd_is_trusted(const struct rdr_fwd *f, const struct sockaddr *sa)
{
	uint8_t a[16];
	int fam = fwd_bytes(sa, a);

	return fam != 0 && fwd_trusted_bytes(f, fam, a);
}

/* Parses one hop's node text: "1.2.3.4", "1.2.3.4:80", "[2001:db8::1]", "[2001:db8::1]:80"
 * or a bare IPv6 address (X-Forwarded-For). Returns the family (0: not an address). */
static int fwd_parse_node(const char *p, size_t len, uint8_t out[16])
{
	char buf[ADDR_TEXT_MAX];
	const char *colon;

	while (len > 0 && (*p == ' ' || *p == '\t'))
		p++, len--;
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len >= 2 && p[0] == '"' && p[len - 1] == '"')
		p++, len -= 2;
	if (len == 0 || len >= sizeof buf)
		return 0;
	if (p[0] == '[') {
		const char *close = memchr(p, ']', len);

		if (!close || (close + 1 != p + len && close[1] != ':'))
			return 0;
		len = (size_t)(close - p - 1);
		p++;
		memcpy(buf, p, len);
		buf[len] = '\0';
		return inet_pton(AF_INET6, buf, out) == 1 ? AF_INET6 : 0;
	}
	memcpy(buf, p, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET6, buf, out) == 1)
		return AF_INET6;
	colon = strchr(buf, ':');
	if (colon && !strchr(colon + 1, ':'))
		buf[colon - buf] = '\0'; /* v4:port */
	return inet_pton(AF_INET, buf, out) == 1 ? AF_INET : 0;
}

/* Finds the for= value inside one Forwarded element (pairs split by ';', the name
 * case-insensitive, the value a token or a quoted string). Returns 1 with *v, *vlen. */
static int fwd_element_for(const char *p, size_t len, const char **v, size_t *vlen)
{
	size_t i = 0;

	while (i < len) {
		size_t start, end;
		int in_quote = 0;

		while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == ';'))
			i++;
		start = i;
		for (end = i; end < len; end++) {
			if (p[end] == '"')
				in_quote = !in_quote;
			else if (p[end] == ';' && !in_quote)
				break;
		}
		if (end - start > 4 && strncasecmp(p + start, "for=", 4) == 0) {
			*v = p + start + 4;
			*vlen = end - start - 4;
			return 1;
		}
		i = end + 1;
	}
	return 0;
}

struct hop {
	int fam;            /* 0: present but not an address ("unknown", "_hidden", junk) */
	uint8_t a[16];
};

/* Splits the header values into hops (commas outside quotes), keeping only the last
 * RDR_FWD_MAX_HOPS. Returns the number kept in hops (right-most last). */
static size_t fwd_hops(const struct rdr_fwd_hdr *h, size_t nh, int is_forwarded,
                       struct hop *hops)
{
	size_t n = 0, total = 0;

	for (size_t k = 0; k < nh; k++) {
		const char *p = h[k].value;
		size_t len = h[k].len, i = 0;

		while (i <= len) {
			size_t start = i;
			int in_quote = 0;
			const char *v;
			size_t vlen;
			struct hop hop = { 0, { 0 } };

			for (; i < len; i++) {
				if (p[i] == '"')
					in_quote = !in_quote;
				else if (p[i] == ',' && !in_quote)
					break;
			}
			if (is_forwarded) {
				if (fwd_element_for(p + start, i - start, &v, &vlen))
					hop.fam = fwd_parse_node(v, vlen, hop.a);
				else
					hop.fam = -1; /* an element without for=: not a hop */
			} else {
				hop.fam = fwd_parse_node(p + start, i - start, hop.a);
			}
			i++;
			if (hop.fam < 0)
				continue;
			/* ring of the last RDR_FWD_MAX_HOPS */
			hops[total % RDR_FWD_MAX_HOPS] = hop;
			total++;
		}
	}
	n = total < RDR_FWD_MAX_HOPS ? total : RDR_FWD_MAX_HOPS;
	if (total > RDR_FWD_MAX_HOPS) {
		struct hop tmp[RDR_FWD_MAX_HOPS];

		for (size_t j = 0; j < n; j++)
			tmp[j] = hops[(total - n + j) % RDR_FWD_MAX_HOPS];
		memcpy(hops, tmp, sizeof tmp);
	}
	return n;
}

static void fwd_store(int fam, const uint8_t *a, struct sockaddr_storage *out)
{
	memset(out, 0, sizeof *out);
	if (fam == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)out;

		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, a, 4);
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)out;

		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, a, 16);
	}
}

int rdr_fwd_client(const struct rdr_fwd *f, const struct sockaddr *peer,
                   const struct rdr_fwd_hdr *fwd, size_t n_fwd,
                   const struct rdr_fwd_hdr *xff, size_t n_xff, struct sockaddr_storage *out)
{
	struct hop hops[RDR_FWD_MAX_HOPS];
	uint8_t pa[16], last[16];
	int pfam = fwd_bytes(peer, pa), lfam;
	size_t n;

	if (pfam == 0 || (n_fwd == 0 && n_xff == 0) || !fwd_trusted_bytes(f, pfam, pa))
		goto peer;
	n = n_fwd > 0 ? fwd_hops(fwd, n_fwd, 1, hops) : fwd_hops(xff, n_xff, 0, hops);
	if (n == 0)
		goto peer;
	lfam = pfam;
	memcpy(last, pa, sizeof last);
	for (size_t k = n; k-- > 0;) {
		struct hop *h = &hops[k];

		if (h->fam == 0)
			break; /* unparseable: the trusted hop to its right is as far as we know */
		if (h->fam == AF_INET6 && IN6_IS_ADDR_V4MAPPED((struct in6_addr *)h->a)) {
			memmove(h->a, h->a + 12, 4);
			h->fam = AF_INET;
		}
		lfam = h->fam;
		memcpy(last, h->a, sizeof last);
		if (!fwd_trusted_bytes(f, h->fam, h->a))
			break;
	}
	if (lfam == pfam && memcmp(last, pa, lfam == AF_INET ? 4 : 16) == 0)
		goto peer;
	fwd_store(lfam, last, out);
	return 1;
peer:
	memset(out, 0, sizeof *out);
	memcpy(out, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
	                                              : sizeof(struct sockaddr_in));
	return 0;
}

unsigned rdr_fwd_mask(const struct sockaddr *sa, unsigned v4_bits, unsigned v6_bits,
                      struct sockaddr_storage *out)
{
	uint8_t a[16];
	int fam = fwd_bytes(sa, a);
	unsigned bits;

	if (fam == 0) {
		memset(out, 0, sizeof *out);
		return 0;
	}
	bits = fam == AF_INET ? (v4_bits > 32 ? 32 : v4_bits) : (v6_bits > 128 ? 128 : v6_bits);
	fwd_apply_bits(a, fam == AF_INET ? 4 : 16, bits);
	fwd_store(fam, a, out);
	return bits;
}
