/* ec_err: the message table behind ec_strerror(). One row per EC_E* code of ec_err.h;
 * the table is the only place a code gets its wording. Owns no state. */
#include "ec_err.h"

static const char *const err_msgs[] = {
	[0] = "success",
	[-EC_ENOMEM] = "out of memory",
	[-EC_EINVAL] = "invalid argument or malformed input",
	[-EC_EIO] = "I/O error",
	[-EC_ENOENT] = "not found",
	[-EC_ERANGE] = "value out of range",
	[-EC_EEXPIRED] = "expired",
	[-EC_EBADSIG] = "signature mismatch",
	[-EC_EAGAIN] = "try again later",
	[-EC_EFULL] = "capacity full",
	[-EC_ECLOSED] = "connection closed",
	[-EC_ETOOBIG] = "larger than the configured limit",
	[-EC_EDIGEST] = "content digest mismatch",
	[-EC_ESTATE] = "not allowed in this state",
	[-EC_EUNSUPP] = "unsupported",
	[-EC_ETIMEOUT] = "timed out",
};

_Static_assert(EC_ARRAY_LEN(err_msgs) == (size_t)-EC_ERR_MIN_,
               "every EC_E* code needs a message");

const char *ec_strerror(int code)
{
	if (code > 0 || code <= EC_ERR_MIN_ || err_msgs[-code] == NULL)
		return "unknown error";
	return err_msgs[-code];
}
