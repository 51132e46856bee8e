/* rdr_fwd: who the client is when a trusted proxy stands in front: a list of trusted
 * CIDRs, and the right-most untrusted hop of X-Forwarded-For / Forwarded (RFC 7239).
 * Headers from a peer that is not trusted are ignored. Pure parsing: no I/O, no state
 * beyond the list it is given. */
#ifndef ECHOS_REDIRECTOR_RDR_FWD_H
#define ECHOS_REDIRECTOR_RDR_FWD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RDR_FWD_MAX_CIDRS 64
#define RDR_FWD_MAX_HOPS 32  /* hops looked at, right to left */

struct rdr_cidr {
	int family;        /* AF_INET or AF_INET6 */
	uint8_t addr[16];  /* network, host bits zero (4 bytes used for AF_INET) */
	unsigned bits;
};

struct rdr_fwd {
	struct rdr_cidr cidrs[RDR_FWD_MAX_CIDRS];
	size_t n;
};

/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a /32 or /128) into c.
 * Host bits must be zero. Returns 0, or -1 with a reason in err. */
int rdr_fwd_parse_cidr(const char *s, struct rdr_cidr *c, char *err, size_t errlen);

/* Is sa (IPv4, IPv6 or IPv4-mapped IPv6, matched as IPv4) inside one of f's CIDRs? */
int rdr_fwd_is_trusted(const struct rdr_fwd *f, const struct sockaddr *sa);

/* One forwarding header value, in arrival order (several X-Forwarded-For lines are
 * one list, the last line's last element being the nearest hop). */
struct rdr_fwd_hdr {
	const char *value;
	size_t len;
};

/* The client address for a request whose socket peer is `peer`: peer itself unless peer
 * is trusted and the request carries forwarding headers; then, walking the hops from the
 * right, the first one that is not trusted (or, if a hop cannot be parsed, e.g.
 * "unknown", the trusted hop to its right; if every hop is trusted, the left-most).
 * Forwarded (for=) is used when present, X-Forwarded-For otherwise. Ports and brackets
 * are stripped. Writes the address into *out (port 0) and returns 1 when it came from a
 * header, 0 when it is the peer. Borrows everything for the call. */
int rdr_fwd_client(const struct rdr_fwd *f, const struct sockaddr *peer,
                   const struct rdr_fwd_hdr *fwd, size_t n_fwd,
                   const struct rdr_fwd_hdr *xff, size_t n_xff, struct sockaddr_storage *out);

/* Applies a prefix to an address: zeroes the host bits past v4_bits / v6_bits (an
 * IPv4-mapped IPv6 address becomes plain IPv4). Returns the bits applied. */
unsigned rdr_fwd_mask(const struct sockaddr *sa, unsigned v4_bits, unsigned v6_bits,
                      struct sockaddr_storage *out);

#endif
