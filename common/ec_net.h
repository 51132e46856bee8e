/* ec_net: address helpers shared by the daemons: formatting, parsing and prefix tests.
 * No sockets are opened here. */
#ifndef ECHOS_COMMON_EC_NET_H
#define ECHOS_COMMON_EC_NET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Formats a sockaddr's address (no port) into out; "?" for unknown families. Returns out. */
const char *ec_sockaddr_ntop(const struct sockaddr *sa, char *out, size_t outlen);
/* Parses a literal IPv4/IPv6 address (no port) into ss (port 0). Returns 0 or EC_EINVAL. */
int ec_addr_parse(const char *s, struct sockaddr_storage *ss);
/* Parses "a.b.c.d/len" or "v6/len"; a bare address gets the full length. 0 or EC_EINVAL. */
int ec_prefix_parse(const char *s, struct sockaddr_storage *net, unsigned *bits);
/* Returns 1 if addr lies in net/bits (same family; v4-mapped v6 addresses match v4 nets). */
int ec_prefix_contains(const struct sockaddr_storage *net, unsigned bits,
                       const struct sockaddr *addr);
/* Formats net/bits as "192.0.2.0/24". Returns out. */
const char *ec_prefix_ntop(const struct sockaddr_storage *net, unsigned bits, char *out,
                           size_t outlen);

#endif
