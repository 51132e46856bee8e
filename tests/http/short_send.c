/* short_send: an LD_PRELOAD shim for the HTTP core's tests. send() takes at most
 * EC_SHORT_SEND bytes a call (default 7), as a socket with almost no room would, so the
 * servers' "what the socket does not take is queued" paths run on every direct answer
 * instead of once in a while. writev and sendfile (the queued output) are untouched.
 * Built without sanitizers; tests/integration/test_http_core.py preloads it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/types.h>

ssize_t send(int fd, const void *buf, size_t len, int flags)
{
	static ssize_t (*real_send)(int, const void *, size_t, int);
	static size_t cap;

	if (!real_send) {
		const char *e = getenv("EC_SHORT_SEND");

		real_send = (ssize_t (*)(int, const void *, size_t, int))dlsym(RTLD_NEXT, "send");
		cap = e ? strtoul(e, NULL, 10) : 0;
		if (cap == 0)
			cap = 7;
	}
	if (!real_send)
		abort();
	return real_send(fd, buf, len < cap ? len : cap, flags);
}
