/* pol_sla: is one box fit to take a new viewer under a service's SLA, and if not, why.
 * Judges one row of the box table against now_ms; does not compare boxes (pol_score
 * does) and reads no clock. Owns no memory. */
#include <stdint.h>

#include "pol_rank.h"
#include "pol_score.h"

/* Checks, in this order, and stops at the first that fails:
 *   status UP                         else POL_MISS_NO_BOX (draining/down take no viewers)
 *   good_hbs >= min_good_hbs          else POL_MISS_NO_BOX (back too recently: no flapping)
 *   now_ms - hb_ms <= max_state_age   else POL_MISS_STATE_STALE
 *   (egress + charged + viewer) <= max_util * uplink, uplink > 0
 *                                     else POL_MISS_ALL_OVER_CAPACITY
 *   ttfb_ms <= max_ttfb_ms (if set)   else POL_MISS_SLA_TTFB
 * The first two say the box is not alive for new viewers; the rest say it is alive but
 * its latest state does not predict the SLA is met. A heartbeat stamped after now_ms
 * (clock skew between threads) counts as fresh. A box with no known uplink has no
 * capacity. Borrows b and sla for the call. Returns 1, or 0 with *why set.
 * The rules live in pol_rank.h (pol_rank_eligible), inline for the choice loops. */
int pol_sla_eligible(const struct pol_box *b, const struct pol_sla *sla, int64_t now_ms,
                     enum pol_miss *why)
{
	enum pol_miss m;
	double load;

	if (pol_rank_eligible(b, sla, now_ms, &m, &load))
		return 1;
	if (why)
		*why = m;
	return 0;
}
