/* policy_decide: microbenchmark of one box choice with 10,000 boxes: the indexed choice
 * (pol_index_choose) and the linear reference (pol_score_choose_q) on the same queries,
 * after checking that both agree; then the decision memo (pol_memo_choose) on a popular
 * catalogue, after checking it agrees with the index. Prints decisions per second on one
 * core.
 * Synthetic table: 500 PoPs of 20 boxes in 100 ASNs around the world; clients mostly in
 * a known PoP, some known only by ASN, by location, or not at all. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pol_index.h"
#include "pol_memo.h"
#include "pol_score.h"

#define NOW 1000000
#define MiB 1000000ULL
#define NQ 65536
#define CATALOGUE 10000 /* objects of the memo's stream, Zipf-popular */
#define NETS 256        /* client networks of the memo's stream */

static uint64_t rng = 42;

static uint64_t rnd(void)
{
	uint64_t z = (rng += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

static double rnd_in(double lo, double hi)
{
	return lo + (hi - lo) * (double)(rnd() >> 11) / 9007199254740992.0;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The memo on a stream a redirector sees: CATALOGUE objects drawn by popularity (Zipf,
 * s = 1) from NETS client networks (the first NETS clients: in a PoP, known by ASN only,
 * located only, or unknown, as above), loads as they are (nothing charged). Every answer
 * of one pass over the stream is checked against the index first. */
static int memo_bench(const struct pol_index *x, const struct pol_client *cl,
                      const struct pol_sla *sla, double seconds, uint64_t *sum)
{
	double *cdf = calloc(CATALOGUE, sizeof *cdf), acc = 0, t0, t1, rate;
	uint32_t *qo = calloc(NQ, sizeof *qo), *qc = calloc(NQ, sizeof *qc);
	struct pol_memo *m = pol_memo_new(16384);
	struct pol_memo_stats st;
	struct pol_choice ch, ref;
	uint64_t iters = 0;
	size_t k;
	int rc = 1;

	if (!cdf || !qo || !qc || !m)
		goto out;
	for (k = 0; k < CATALOGUE; k++)
		cdf[k] = acc += 1.0 / (double)(k + 1);
	for (k = 0; k < NQ; k++) {
		double u = rnd_in(0, acc);
		size_t lo = 0, hi = CATALOGUE - 1;

		while (lo < hi) {
			size_t mid = (lo + hi) / 2;

			if (cdf[mid] < u)
				lo = mid + 1;
			else
				hi = mid;
		}
		qo[k] = (uint32_t)lo;
		qc[k] = (uint32_t)(rnd() % NETS);
	}
	for (k = 0; k < NQ; k++) {
		uint64_t o = qo[k];
		struct pol_query q = { &cl[qc[k]], pol_hash_bytes(&o, sizeof o), sla, NOW, NULL, 0 };

		pol_memo_choose(m, x, &q, &ch);
		pol_index_choose(x, &q, &ref);
		if (ch.box != ref.box || ch.alt != ref.alt || ch.miss != ref.miss) {
			fprintf(stderr, "policy-decide: memo query %zu: memo %d/%d, index %d/%d\n", k,
			        ch.box, ch.alt, ref.box, ref.alt);
			goto out;
		}
	}
	pol_memo_free(m);
	m = pol_memo_new(16384);
	if (!m)
		goto out;
	t0 = now_s();
	do {
		for (k = 0; k < 4096; k++, iters++) {
			size_t j = iters % NQ;
			uint64_t o = qo[j];
			struct pol_query q = { &cl[qc[j]], pol_hash_bytes(&o, sizeof o), sla, NOW,
			                       NULL, 0 };

			pol_memo_choose(m, x, &q, &ch);
			*sum += (uint64_t)ch.box;
		}
		t1 = now_s();
	} while (t1 - t0 < seconds);
	rate = (double)iters / (t1 - t0);
	pol_memo_stats(m, &st);
	printf("policy-decide: memo:    %.0f decisions/s (%.0f ns each, %.1f%% answered from "
	       "it; %d objects by popularity from %d networks)\n", rate, 1e9 / rate,
	       100.0 * (double)st.hits / (double)(st.hits + st.misses), CATALOGUE, NETS);
	rc = 0;
out:
	pol_memo_free(m);
	free(cdf);
	free(qo);
	free(qc);
	return rc;
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoul(argv[1], NULL, 10) : 10000, pops = n / 20 ? n / 20 : 1;
	double seconds = argc > 2 ? atof(argv[2]) : 1.0;
	struct pol_box *b = calloc(n, sizeof *b);
	double *plat = calloc(pops, sizeof *plat), *plon = calloc(pops, sizeof *plon);
	struct pol_client *cl = calloc(NQ, sizeof *cl);
	uint64_t *obj = calloc(NQ, sizeof *obj);
	uint32_t *hold = calloc(NQ * 2, sizeof *hold);
	uint8_t *nhold = calloc(NQ, 1);
	struct pol_sla sla = { 2500, 0, 5 * MiB, 0.9, POL_CLASS_ANY, 500, 2 };
	struct pol_index *x;
	struct pol_choice ch, ref;
	uint64_t sum = 0, iters = 0;
	double t0, t1, idx_rate, lin_rate;
	size_t i, k, origin = 0;

	if (!b || !plat || !plon || !cl || !obj || !hold || !nhold)
		return 1;
	for (i = 0; i < pops; i++) {
		plat[i] = rnd_in(-45, 60);
		plon[i] = rnd_in(-125, 150);
	}
	for (i = 0; i < n; i++) {
		size_t p = i % pops;

		b[i].id_hash = pol_hash_bytes(&i, sizeof i);
		b[i].pop_hash = 0x1000 + p;
		b[i].asn = 64500 + (uint32_t)(p % 100);
		b[i].has_loc = 1;
		b[i].lat = plat[p] + rnd_in(-0.5, 0.5);
		b[i].lon = plon[p] + rnd_in(-0.5, 0.5);
		b[i].uplink_bps = 1000 * MiB;
		b[i].egress_bps = (uint64_t)rnd_in(0, 700) * MiB;
		b[i].conns = 10;
		b[i].ttfb_ms = 20;
		b[i].status = rnd() % 50 ? POL_BOX_UP : POL_BOX_DRAINING;
		b[i].hb_ms = NOW - (int64_t)(rnd() % 1000);
		b[i].good_hbs = 5;
	}
	for (k = 0; k < NQ; k++) {
		unsigned kind = (unsigned)(rnd() % 100);
		size_t p = rnd() % pops;

		memset(&cl[k], 0, sizeof cl[k]);
		if (kind < 70) {         /* in a known PoP */
			cl[k].pop_hash = 0x1000 + p;
			cl[k].asn = 64500 + (uint32_t)(p % 100);
		} else if (kind < 85) {  /* in a known network only */
			cl[k].asn = 64500 + (uint32_t)(p % 100);
		}
		if (kind < 95) {         /* located near a PoP */
			cl[k].has_loc = 1;
			cl[k].lat = plat[p] + rnd_in(-3, 3);
			cl[k].lon = plon[p] + rnd_in(-3, 3);
		}
		obj[k] = pol_hash_bytes(&k, sizeof k) ^ (rnd() % 100000);
		nhold[k] = (uint8_t)(rnd() % 3);
		hold[2 * k] = (uint32_t)(p + pops * (rnd() % 20)) % (uint32_t)n;
		hold[2 * k + 1] = (uint32_t)(rnd() % n);
	}
	t0 = now_s();
	x = pol_index_new(b, n);
	t1 = now_s();
	if (!x)
		return 1;
	printf("policy-decide: %zu boxes, %zu PoPs, index built in %.2f ms, %.1f KiB\n", n, pops,
	       (t1 - t0) * 1e3, (double)pol_index_mem_bytes(x) / 1024);

	/* the index must agree with the linear reference */
	for (k = 0; k < 4096; k++) {
		struct pol_query q = { &cl[k], obj[k], &sla, NOW, &hold[2 * k], nhold[k] };

		pol_index_choose(x, &q, &ch);
		pol_score_choose_q(b, n, &q, &ref);
		if (ch.box != ref.box || ch.alt != ref.alt || ch.miss != ref.miss) {
			fprintf(stderr, "policy-decide: query %zu: index %d/%d, linear %d/%d\n", k,
			        ch.box, ch.alt, ref.box, ref.alt);
			return 1;
		}
	}

	t0 = now_s();
	do {
		for (k = 0; k < 4096; k++, iters++) {
			size_t j = iters % NQ;
			struct pol_query q = { &cl[j], obj[j], &sla, NOW, &hold[2 * j], nhold[j] };

			pol_index_choose(x, &q, &ch);
			sum += (uint64_t)ch.box;
			origin += ch.box < 0;
		}
		t1 = now_s();
	} while (t1 - t0 < seconds);
	idx_rate = (double)iters / (t1 - t0);
	printf("policy-decide: indexed: %.0f decisions/s (%.0f ns each, %.2f%% to the origin)\n",
	       idx_rate, 1e9 / idx_rate, 100.0 * (double)origin / (double)iters);

	iters = 0;
	t0 = now_s();
	do {
		for (k = 0; k < 64; k++, iters++) {
			size_t j = iters % NQ;
			struct pol_query q = { &cl[j], obj[j], &sla, NOW, &hold[2 * j], nhold[j] };

			pol_score_choose_q(b, n, &q, &ch);
			sum += (uint64_t)ch.box;
		}
		t1 = now_s();
	} while (t1 - t0 < seconds / 2);
	lin_rate = (double)iters / (t1 - t0);
	printf("policy-decide: linear:  %.0f decisions/s (%.0f ns each)\n", lin_rate,
	       1e9 / lin_rate);
	if (memo_bench(x, cl, &sla, seconds, &sum) != 0)
		return 1;
	printf("policy-decide: %zu boxes: %.0f decisions/s (indexed), %.0fx the linear scan "
	       "[checksum %llu]\n", n, idx_rate, idx_rate / lin_rate, (unsigned long long)sum);
	pol_index_free(x);
	free(b);
	free(plat);
	free(plon);
	free(cl);
	free(obj);
	free(hold);
	free(nhold);
	return 0;
}
