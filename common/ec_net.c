/* ec_net: textual addresses and CIDR prefixes (parse, format, containment).
 * Opens no sockets and resolves no names: only numeric literals are accepted.
 * Prefixes are stored with their host bits cleared, so their text form is canonical. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "ec_err.h"
#include "ec_net.h"

const char *ec_sockaddr_ntop(const struct sockaddr *sa, char *out, size_t outlen)
{
	const void *a = NULL;

	if (outlen == 0)
		return out;
	if (sa != NULL && sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa != NULL && sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, out, (socklen_t)outlen) == NULL)
		snprintf(out, outlen, "?");
	return out;
}

int ec_addr_parse(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

	if (s == NULL || ss == NULL)
		return EC_EINVAL;
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET, s, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		return 0;
	}
	memset(ss, 0, sizeof *ss);
	if (inet_pton(AF_INET6, s, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		return 0;
	}
	memset(ss, 0, sizeof *ss);
	return EC_EINVAL;
}

/* Returns the address bytes of a v4/v6 sockaddr and their count, or NULL. */
static const uint8_t *net_bytes(const struct sockaddr *sa, size_t *len)
{
	if (sa->sa_family == AF_INET) {
		*len = 4;
		return (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	}
	if (sa->sa_family == AF_INET6) {
		*len = 16;
		return (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	}
	return NULL;
}

static void net_mask(uint8_t *b, size_t len, unsigned bits)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if (bits >= 8) {
			bits -= 8;
			continue;
		}
		b[i] &= (uint8_t)(0xff00u >> bits);
		bits = 0;
	}
}

int ec_prefix_parse(const char *s, struct sockaddr_storage *net, unsigned *bits)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash;
	unsigned long b = 0;
	size_t alen, len = 0, i;
	uint8_t *bytes;

	if (s == NULL || net == NULL || bits == NULL)
		return EC_EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof addr)
		return EC_EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (ec_addr_parse(addr, net) != 0)
		return EC_EINVAL;
	bytes = (uint8_t *)net_bytes((struct sockaddr *)net, &len);
	if (slash == NULL) {
		*bits = (unsigned)(len * 8);
		return 0;
	}
	/* strict decimal: 1-3 digits, no sign, no leading zero except "0" itself */
	s = slash + 1;
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9' || i >= 3)
			return EC_EINVAL;
		b = b * 10 + (unsigned long)(s[i] - '0');
	}
	if (i == 0 || (i > 1 && s[0] == '0') || b > len * 8)
		return EC_EINVAL;
	*bits = (unsigned)b;
	net_mask(bytes, len, *bits);
	return 0;
}

int ec_prefix_contains(const struct sockaddr_storage *net, unsigned bits,
                       const struct sockaddr *addr)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	const uint8_t *n, *a;
	size_t nlen, alen, full;

	if (net == NULL || addr == NULL)
		return 0;
	n = net_bytes((const struct sockaddr *)net, &nlen);
	a = net_bytes(addr, &alen);
	if (n == NULL || a == NULL)
		return 0;
	if (nlen == 4 && alen == 16) {
		if (memcmp(a, v4mapped, sizeof v4mapped) != 0)
			return 0;
		a += 12;
		alen = 4;
	}
	if (nlen != alen || bits > nlen * 8)
		return 0;
	full = bits / 8;
	if (memcmp(n, a, full) != 0)
		return 0;
	if (bits % 8) {
		uint8_t m = (uint8_t)(0xff00u >> (bits % 8));
		if ((n[full] & m) != (a[full] & m))
			return 0;
	}
	return 1;
}

const char *ec_prefix_ntop(const struct sockaddr_storage *net, unsigned bits, char *out,
                           size_t outlen)
{
	struct sockaddr_storage masked;
	char a[INET6_ADDRSTRLEN];
	uint8_t *b;
	size_t len;

	if (outlen == 0)
		return out;
	masked = *net;
	b = (uint8_t *)net_bytes((struct sockaddr *)&masked, &len);
	if (b == NULL || bits > len * 8) {
		snprintf(out, outlen, "?");
		return out;
	}
	net_mask(b, len, bits);
	ec_sockaddr_ntop((struct sockaddr *)&masked, a, sizeof a);
	snprintf(out, outlen, "%s/%u", a, bits);
	return out;
}
