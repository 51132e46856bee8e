/* ec_err: the one table of failure codes shared by every echos module.
 * Functions return 0 on success or a negative EC_E* code; ec_strerror() names it.
 * Bugs (unreachable states) use EC_ASSERT(), never these codes. */
#ifndef ECHOS_COMMON_EC_ERR_H
#define ECHOS_COMMON_EC_ERR_H

#include <stdio.h>
#include <stdlib.h>

enum ec_err {
	EC_OK = 0,
	EC_ENOMEM = -1,    /* allocation failed */
	EC_EINVAL = -2,    /* invalid argument or malformed input */
	EC_EIO = -3,       /* I/O error (errno has details) */
	EC_ENOENT = -4,    /* not found */
	EC_ERANGE = -5,    /* value out of range */
	EC_EEXPIRED = -6,  /* token or state expired */
	EC_EBADSIG = -7,   /* signature mismatch */
	EC_EAGAIN = -8,    /* try again later (not connected, queue full) */
	EC_EFULL = -9,     /* capacity or disk full */
	EC_ECLOSED = -10,  /* peer or connection closed */
	EC_ETOOBIG = -11,  /* input larger than the configured limit */
	EC_EDIGEST = -12,  /* content digest mismatch */
	EC_ESTATE = -13,   /* operation not allowed in this state */
	EC_EUNSUPP = -14,  /* unsupported feature or version */
	EC_ETIMEOUT = -15, /* deadline passed */
	EC_ERR_MIN_ = -16
};

/* Returns a static, human-readable message for an EC_E* code (or "unknown error"). */
const char *ec_strerror(int code);

/* Aborts with file and line: for states no input can reach. */
#define EC_ASSERT(cond)                                                        \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: assertion failed: %s\n",       \
			        __FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

#define EC_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
