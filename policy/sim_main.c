/* echos-sim: replays a generated or recorded trace against pull-through caches (LRU,
 * LFU, S3-FIFO), echos placement with prefetch, and a clairvoyant upper bound, on the
 * same simulated boxes; prints a table, writes a CSV and SVG plots on request. Also
 * times one placement pass (--bench-placement). Owns its trace and results; the only
 * files it writes are the ones named on the command line. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "ec_time.h"
#include "pol_place.h"
#include "pol_score.h"
#include "sim.h"

#define PROG "echos-sim"

struct sim_args {
	struct sim_conf conf;
	const char *csv_path;
	const char *plots_dir;
	int bench;
	uint64_t bench_objects;
	int boxes_set, regions_set;
	unsigned policies;        /* bit k: run all_policies[k] */
};

static void usage(FILE *f)
{
	fprintf(f,
	"usage: " PROG " [options]\n"
	"Simulates boxes serving a trace under several policies and compares their offload.\n"
	"With no options it runs the default scenario (fixed seed) and ends with the line\n"
	"  echos/upper-bound byte offload: X; echos-lru: +Y points\n"
	"\n"
	"scenario:\n"
	"  --seed N            generator seed (default 1)\n"
	"  --trace FILE        replay a CSV trace: time_s,client_region,object,size_bytes\n"
	"  --requests N        requests in the generated trace (default 4000000)\n"
	"  --catalog N         objects present at the start (default 100000)\n"
	"  --duration S        simulated seconds (default 86400)\n"
	"  --regions N         regions (default 4)\n"
	"  --zipf A            catalog Zipf exponent (default 0.9)\n"
	"  --ugc-share X       share of requests for new user-generated objects (default 0.3)\n"
	"  --ugc-objects N     new objects during the run (default 20000)\n"
	"  --flash-crowds N    flash crowds (default 3)\n"
	"  --flash-requests N  requests per flash crowd (default 6000)\n"
	"  --churn X           failures per box per day (default 1; 0: none)\n"
	"boxes:\n"
	"  --boxes N           boxes, spread evenly over the regions (default 100)\n"
	"  --storage-pct P     a region's boxes hold P%% of the catalog bytes (default 4)\n"
	"  --box-storage BYTES storage per box (overrides --storage-pct)\n"
	"  --uplink-mbps M     uplink per box in Mbit/s (default 50)\n"
	"  --sla-queue S       most queued uplink time of a box within SLA (default 2)\n"
	"echos:\n"
	"  --half-life S       popularity half-life in seconds (default 3600)\n"
	"  --replace S         incremental re-placement period in seconds (default 60)\n"
	"  --full-replace S    full placement pass period in seconds (default 900)\n"
	"  --min-requests N    decayed requests an object needs before it is assigned to\n"
	"                      boxes (default 3: about 3 within a half-life)\n"
	"  --prefetch-share F  a box prefetches at most F times its uplink rate per round\n"
	"                      (default 0.25; 0: no limit)\n"
	"references: upper-bound places once knowing the whole trace; oracle-window\n"
	"  --oracle-window S   places every S seconds knowing those requests (default 900)\n"
	"  --policies LIST     run only these, comma-separated (default: all six); the last\n"
	"                      line needs lru, echos and upper-bound\n"
	"output:\n"
	"  --csv FILE          write every result row as CSV\n"
	"  --plots DIR         run the storage and box-count sweeps, write SVG plots to DIR\n"
	"benchmark:\n"
	"  --bench-placement   time one placement pass of --objects rows over --boxes boxes\n"
	"  --objects N         objects for --bench-placement (default 1000000)\n"
	"  --help, --version\n"
	"\n"
	"exit status: 0 done, 1 runtime failure, 2 usage error\n");
}

/* --- the comparison ------------------------------------------------------------------------ */

static const enum sim_policy all_policies[] = {
	SIM_POL_LRU, SIM_POL_LFU, SIM_POL_S3FIFO, SIM_POL_ECHOS, SIM_POL_UPPER, SIM_POL_ORACLE,
};
#define N_POL (sizeof all_policies / sizeof all_policies[0])

#define ALL_POLICIES ((1u << N_POL) - 1)

static int parse_policies(const char *s, unsigned *mask, char *err, size_t errlen)
{
	*mask = 0;
	while (*s) {
		size_t n = strcspn(s, ","), k;

		for (k = 0; k < N_POL; k++) {
			const char *name = sim_policy_name(all_policies[k]);

			if (strlen(name) == n && !strncmp(name, s, n))
				break;
		}
		if (k == N_POL) {
			snprintf(err, errlen, "--policies: unknown policy \"%.*s\" (lru, lfu, s3fifo, "
			         "echos, upper-bound, oracle-window)", (int)n, s);
			return -1;
		}
		*mask |= 1u << k;
		s += n;
		if (*s == ',')
			s++;
	}
	if (!*mask) {
		snprintf(err, errlen, "--policies: name at least one policy");
		return -1;
	}
	return 0;
}

/* Strict number parsers: the whole string, in range, or a reason in err. */
static int parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max, uint64_t *out,
                     char *err, size_t errlen)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < min || v > max) {
		snprintf(err, errlen, "%s: expected an integer from %llu to %llu, got \"%s\"", opt,
		         (unsigned long long)min, (unsigned long long)max, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_dbl(const char *opt, const char *s, double min, double max, double *out,
                     char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v >= min && v <= max)) {
		snprintf(err, errlen, "%s: expected a number from %g to %g, got \"%s\"", opt, min,
		         max, s);
		return -1;
	}
	*out = v;
	return 0;
}

enum {
	OPT_SEED = 256, OPT_TRACE, OPT_REQUESTS, OPT_CATALOG, OPT_DURATION, OPT_REGIONS,
	OPT_ZIPF, OPT_UGC_SHARE, OPT_UGC_OBJECTS, OPT_FLASH, OPT_FLASH_REQ, OPT_CHURN,
	OPT_BOXES, OPT_STORAGE_PCT, OPT_BOX_STORAGE, OPT_UPLINK, OPT_SLA, OPT_HALF_LIFE,
	OPT_REPLACE, OPT_FULL_REPLACE, OPT_PREFETCH_SHARE, OPT_MIN_REQ, OPT_ORACLE, OPT_POLICIES, OPT_CSV,
	OPT_PLOTS,
	OPT_BENCH, OPT_OBJECTS, OPT_HELP, OPT_VERSION,
};

static const struct option long_opts[] = {
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "trace", required_argument, NULL, OPT_TRACE },
	{ "requests", required_argument, NULL, OPT_REQUESTS },
	{ "catalog", required_argument, NULL, OPT_CATALOG },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "regions", required_argument, NULL, OPT_REGIONS },
	{ "zipf", required_argument, NULL, OPT_ZIPF },
	{ "ugc-share", required_argument, NULL, OPT_UGC_SHARE },
	{ "ugc-objects", required_argument, NULL, OPT_UGC_OBJECTS },
	{ "flash-crowds", required_argument, NULL, OPT_FLASH },
	{ "flash-requests", required_argument, NULL, OPT_FLASH_REQ },
	{ "churn", required_argument, NULL, OPT_CHURN },
	{ "boxes", required_argument, NULL, OPT_BOXES },
	{ "storage-pct", required_argument, NULL, OPT_STORAGE_PCT },
	{ "box-storage", required_argument, NULL, OPT_BOX_STORAGE },
	{ "uplink-mbps", required_argument, NULL, OPT_UPLINK },
	{ "sla-queue", required_argument, NULL, OPT_SLA },
	{ "half-life", required_argument, NULL, OPT_HALF_LIFE },
	{ "replace", required_argument, NULL, OPT_REPLACE },
	{ "full-replace", required_argument, NULL, OPT_FULL_REPLACE },
	{ "prefetch-share", required_argument, NULL, OPT_PREFETCH_SHARE },
	{ "min-requests", required_argument, NULL, OPT_MIN_REQ },
	{ "oracle-window", required_argument, NULL, OPT_ORACLE },
	{ "policies", required_argument, NULL, OPT_POLICIES },
	{ "csv", required_argument, NULL, OPT_CSV },
	{ "plots", required_argument, NULL, OPT_PLOTS },
	{ "bench-placement", no_argument, NULL, OPT_BENCH },
	{ "objects", required_argument, NULL, OPT_OBJECTS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

/* Returns 0 to run, 1 when --help/--version was served, -1 with err on a usage error. */
static int sim_args_parse(int argc, char **argv, struct sim_args *a, char *err, size_t errlen)
{
	struct sim_conf *c = &a->conf;
	uint64_t u;
	double d;
	int o;

	memset(a, 0, sizeof *a);
	sim_conf_default(c);
	a->bench_objects = 1000000;
	a->policies = ALL_POLICIES;
	opterr = 0;
	optind = 1;
	while ((o = getopt_long(argc, argv, ":", long_opts, NULL)) != -1) {
		const char *name = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
		int rc = 0;

		switch (o) {
		case OPT_SEED:
			rc = parse_u64("--seed", optarg, 0, UINT64_MAX, &c->seed, err, errlen);
			break;
		case OPT_TRACE: c->trace_path = optarg; break;
		case OPT_REQUESTS:
			rc = parse_u64("--requests", optarg, 1, 2000000000, &c->requests, err, errlen);
			break;
		case OPT_CATALOG:
			rc = parse_u64("--catalog", optarg, 1, 100000000, &u, err, errlen);
			c->catalog = (uint32_t)u;
			break;
		case OPT_DURATION:
			rc = parse_dbl("--duration", optarg, 1, 1e8, &c->duration_s, err, errlen);
			break;
		case OPT_REGIONS:
			rc = parse_u64("--regions", optarg, 1, SIM_MAX_REGIONS, &u, err, errlen);
			c->regions = (uint32_t)u;
			a->regions_set = 1;
			break;
		case OPT_ZIPF:
			rc = parse_dbl("--zipf", optarg, 0, 5, &c->zipf_alpha, err, errlen);
			break;
		case OPT_UGC_SHARE:
			rc = parse_dbl("--ugc-share", optarg, 0, 0.9, &c->ugc_share, err, errlen);
			break;
		case OPT_UGC_OBJECTS:
			rc = parse_u64("--ugc-objects", optarg, 0, 100000000, &u, err, errlen);
			c->ugc_objects = (uint32_t)u;
			break;
		case OPT_FLASH:
			rc = parse_u64("--flash-crowds", optarg, 0, 1000, &u, err, errlen);
			c->flash_crowds = (uint32_t)u;
			break;
		case OPT_FLASH_REQ:
			rc = parse_u64("--flash-requests", optarg, 0, 100000000, &u, err, errlen);
			c->flash_requests = (uint32_t)u;
			break;
		case OPT_CHURN:
			rc = parse_dbl("--churn", optarg, 0, 1000, &c->churn_per_box_day, err, errlen);
			break;
		case OPT_BOXES:
			rc = parse_u64("--boxes", optarg, 1, 1000000, &u, err, errlen);
			c->boxes = (uint32_t)u;
			a->boxes_set = 1;
			break;
		case OPT_STORAGE_PCT:
			rc = parse_dbl("--storage-pct", optarg, 0.001, 100, &c->storage_pct, err, errlen);
			break;
		case OPT_BOX_STORAGE:
			rc = parse_u64("--box-storage", optarg, 1, UINT64_MAX / 2, &c->box_storage_bytes,
			               err, errlen);
			break;
		case OPT_UPLINK:
			rc = parse_dbl("--uplink-mbps", optarg, 0.001, 1e6, &d, err, errlen);
			c->uplink_bps = (uint64_t)(d * 1e6);
			break;
		case OPT_SLA:
			rc = parse_dbl("--sla-queue", optarg, 0, 3600, &c->sla_queue_s, err, errlen);
			break;
		case OPT_HALF_LIFE:
			rc = parse_dbl("--half-life", optarg, 1, 1e7, &c->half_life_s, err, errlen);
			break;
		case OPT_REPLACE:
			rc = parse_dbl("--replace", optarg, 0.1, 1e7, &c->replace_s, err, errlen);
			break;
		case OPT_FULL_REPLACE:
			rc = parse_dbl("--full-replace", optarg, 0.1, 1e7, &c->full_replace_s, err,
			               errlen);
			break;
		case OPT_PREFETCH_SHARE:
			rc = parse_dbl("--prefetch-share", optarg, 0, 100, &c->prefetch_share, err,
			               errlen);
			break;
		case OPT_MIN_REQ:
			rc = parse_dbl("--min-requests", optarg, 0, 1e9, &c->pin_min_requests, err,
			               errlen);
			break;
		case OPT_ORACLE:
			rc = parse_dbl("--oracle-window", optarg, 1, 1e8, &c->oracle_window_s, err,
			               errlen);
			break;
		case OPT_POLICIES:
			rc = parse_policies(optarg, &a->policies, err, errlen);
			break;
		case OPT_CSV: a->csv_path = optarg; break;
		case OPT_PLOTS: a->plots_dir = optarg; break;
		case OPT_BENCH: a->bench = 1; break;
		case OPT_OBJECTS:
			rc = parse_u64("--objects", optarg, 1, 100000000, &a->bench_objects, err, errlen);
			break;
		case OPT_HELP:
			usage(stdout);
			return 1;
		case OPT_VERSION:
			printf("%s %s\n", PROG, EC_VERSION);
			return 1;
		case ':':
			snprintf(err, errlen, "%s: needs a value (see --help)", name);
			return -1;
		default:
			snprintf(err, errlen, "unknown option %s (see --help)", name);
			return -1;
		}
		if (rc)
			return -1;
	}
	if (optind < argc) {
		snprintf(err, errlen, "unexpected argument \"%s\" (see --help)", argv[optind]);
		return -1;
	}
	if (a->plots_dir && a->policies != ALL_POLICIES) {
		snprintf(err, errlen, "--plots needs every policy: drop --policies");
		return -1;
	}
	if (c->ugc_share > 0 && c->ugc_objects == 0) {
		snprintf(err, errlen, "--ugc-share %g needs --ugc-objects > 0", c->ugc_share);
		return -1;
	}
	if (!a->bench && !c->trace_path && c->boxes < c->regions) {
		snprintf(err, errlen, "--boxes %u: need at least one box per region (%u regions)",
		         c->boxes, c->regions);
		return -1;
	}
	return 0;
}

/* --- placement benchmark ---------------------------------------------------------------- */

static int bench_placement(const struct sim_args *a)
{
	size_t no = a->bench_objects, nb = a->boxes_set ? a->conf.boxes : 10000;
	size_t nr = a->regions_set ? a->conf.regions : 20;
	struct pol_place_obj *o = calloc(no, sizeof *o);
	struct pol_place_box *b = calloc(nb, sizeof *b);
	struct pol_place_params p;
	struct pol_place_result *r1 = NULL, *r2 = NULL;
	struct pol_place_diff d = { 0 };
	struct sim_rng rng;
	uint64_t total = 0;
	int64_t t0, t1, t2, t3;
	int rc = EXIT_FAILURE;

	if (!o || !b)
		goto out;
	sim_rng_seed(&rng, a->conf.seed);
	for (size_t i = 0; i < no; i++) {
		uint64_t id = i;

		o[i].obj_hash = pol_hash_bytes(&id, sizeof id);
		o[i].region_hash = 1 + sim_rng_next(&rng) % nr;
		o[i].size_bytes = (uint64_t)(a->conf.size_median_bytes *
		                             exp(a->conf.size_sigma * (sim_rng_unit(&rng) * 2 - 1)));
		o[i].rate = 100.0 / pow((double)i + 1, a->conf.zipf_alpha);
		total += o[i].size_bytes;
	}
	for (size_t i = 0; i < nb; i++) {
		uint64_t id = 0xb0c5000000000000ULL | i;

		b[i].id_hash = pol_hash_bytes(&id, sizeof id);
		b[i].region_hash = 1 + i % nr;
		/* all boxes together hold half of the objects' bytes */
		b[i].storage_bytes = total / 2 / nb;
		b[i].uplink_bps = a->conf.uplink_bps;
		b[i].is_up = 1;
	}
	pol_place_params_default(&p);
	t0 = ec_now_us();
	if (pol_place_compute(o, no, b, nb, &p, &r1) != 0)
		goto out;
	t1 = ec_now_us();
	b[nb / 2].is_up = 0;
	if (pol_place_compute(o, no, b, nb, &p, &r2) != 0)
		goto out;
	t2 = ec_now_us();
	if (pol_place_diff(r1, r2, &d) != 0)
		goto out;
	t3 = ec_now_us();
	printf("placement: %zu objects x %zu boxes in %zu regions: %.3f s per pass, "
	       "%zu replicas, %.1f%% of the bytes placed\n", no, nb, nr,
	       (double)(t1 - t0) / 1e6, r1->off[nb],
	       100.0 * (double)r1->placed_bytes / (double)(total ? total : 1));
	printf("placement: one box down: %.3f s per pass; diff %zu changes in %.3f s\n",
	       (double)(t2 - t1) / 1e6, d.n, (double)(t3 - t2) / 1e6);
	rc = EXIT_SUCCESS;
out:
	if (rc != EXIT_SUCCESS)
		fprintf(stderr, PROG ": placement benchmark: out of memory\n");
	pol_place_diff_fini(&d);
	pol_place_result_free(r1);
	pol_place_result_free(r2);
	free(o);
	free(b);
	return rc;
}

struct sim_out {
	FILE *csv;
	uint64_t sim_reqs;
	double sim_seconds;
};

static void csv_row(struct sim_out *out, const char *scenario, double x, enum sim_policy p,
                    const struct sim_stats *s)
{
	out->sim_reqs += s->reqs;
	out->sim_seconds += s->seconds;
	if (!out->csv)
		return;
	fprintf(out->csv, "%s,%g,%s,%.6f,%.6f,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%.3f\n",
	        scenario,
	        x, sim_policy_name(p), sim_stats_byte_offload(s), sim_stats_req_offload(s),
	        (unsigned long long)sim_stats_origin_egress(s),
	        (unsigned long long)s->fill_bytes, (unsigned long long)s->prefetch_bytes,
	        (unsigned long long)s->fallback_bytes, (unsigned long long)s->sla_miss_reqs,
	        (unsigned long long)s->reqs, (unsigned long long)s->req_bytes,
	        (unsigned long long)s->cache_hit_bytes, (unsigned long long)s->prefetch_deferred,
	        s->seconds);
}

static unsigned run_mask = ALL_POLICIES; /* --policies */

/* Runs every policy of run_mask with conf c over t; fills st[N_POL] (zero for the
 * others). */
static int run_all(const struct sim_conf *c, const struct sim_trace *t, struct sim_stats *st,
                   struct sim_out *out, const char *scenario, double x)
{
	char err[512];

	for (size_t k = 0; k < N_POL; k++) {
		if (!(run_mask & 1u << k)) {
			memset(&st[k], 0, sizeof st[k]);
			continue;
		}
		if (sim_run(c, t, all_policies[k], &st[k], err, sizeof err) != 0) {
			fprintf(stderr, PROG ": %s\n", err);
			for (size_t j = 0; j <= k; j++)
				sim_stats_fini(&st[j]);
			return -1;
		}
		csv_row(out, scenario, x, all_policies[k], &st[k]);
	}
	return 0;
}

static void fmt_bytes(char *buf, size_t n, double v)
{
	static const char *const unit[] = { "B", "kB", "MB", "GB", "TB", "PB" };
	int u = 0;

	while (v >= 1000 && u < 5)
		v /= 1000, u++;
	snprintf(buf, n, "%.1f %s", v, unit[u]);
}

static void print_table(const struct sim_conf *c, const struct sim_trace *t,
                        const struct sim_stats *st)
{
	uint32_t per_region = c->boxes / t->n_regions;
	double box_bytes = c->box_storage_bytes ? (double)c->box_storage_bytes :
	                   (double)t->catalog_bytes * c->storage_pct / 100.0 / per_region;
	char a[32], b[32];

	fmt_bytes(a, sizeof a, (double)t->catalog_bytes);
	fmt_bytes(b, sizeof b, box_bytes);
	printf("scenario: %s, seed %llu: %zu requests over %.1f h, %zu objects (catalog %s), "
	       "%u regions\n", c->trace_path ? c->trace_path : "generated",
	       (unsigned long long)c->seed, t->n_reqs, (double)t->duration_ms / 3.6e6, t->n_objs, a,
	       t->n_regions);
	printf("boxes: %u, %s each (a region's boxes hold %.2f%% of the catalog), uplink %.0f "
	       "Mbit/s, SLA queue %.1f s\n", c->boxes, b,
	       100.0 * box_bytes * per_region / (double)(t->catalog_bytes ? t->catalog_bytes : 1),
	       (double)c->uplink_bps / 1e6, c->sla_queue_s);
	printf("echos: half-life %.0f s, rounds every %.0f s, full pass every %.0f s, "
	       "prefetch <= %.2f of uplink, assigned from %g decayed requests; the rest of each "
	       "box is an S3-FIFO cache\n", c->half_life_s, c->replace_s, c->full_replace_s,
	       c->prefetch_share, c->pin_min_requests);
	printf("upper-bound: one clairvoyant static placement (the issue's bound); "
	       "oracle-window: clairvoyant every %.0f s\n", c->oracle_window_s);
	printf("origin egress = fallback (origin to viewer) + fill + prefetch\n");
	printf("\n%-13s %12s %11s %13s %12s %10s %10s %10s %10s %7s\n", "policy",
	       "byte-offload", "req-offload", "origin-egress", "egress/bytes", "sla-misses",
	       "fallback", "fill", "prefetch", "Mreq/s");
	for (size_t k = 0; k < N_POL; k++) {
		const struct sim_stats *s = &st[k];
		char eg[32], fi[32], pf[32], fb[32];

		if (!(run_mask & 1u << k))
			continue;
		fmt_bytes(eg, sizeof eg, (double)sim_stats_origin_egress(s));
		fmt_bytes(fi, sizeof fi, (double)s->fill_bytes);
		fmt_bytes(pf, sizeof pf, (double)s->prefetch_bytes);
		fmt_bytes(fb, sizeof fb, (double)s->fallback_bytes);
		printf("%-13s %12.3f %11.3f %13s %12.3f %10llu %10s %10s %10s %7.2f\n",
		       sim_policy_name(all_policies[k]), sim_stats_byte_offload(s),
		       sim_stats_req_offload(s), eg,
		       (double)sim_stats_origin_egress(s) / (double)(s->req_bytes ? s->req_bytes : 1),
		       (unsigned long long)s->sla_miss_reqs, fb, fi, pf,
		       s->seconds > 0 ? (double)s->reqs / s->seconds / 1e6 : 0);
	}
}

static int plot_path(char *buf, size_t n, const char *dir, const char *name)
{
	return snprintf(buf, n, "%s/%s", dir, name) >= (int)n ? -1 : 0;
}

/* Byte offload of flash-crowd requests per minute around the first flash crowd, while
 * it still brings at least 5% of its peak minute's bytes (the last minutes hold a few
 * requests each, whose offload is 0 or 1 and says nothing). */
static int plot_flash(const char *dir, const struct sim_trace *t, const struct sim_stats *st)
{
	int64_t first = t->flash_start_ms / SIM_BIN_MS - 2, last = first + 72, b;
	double x[80], y[N_POL][80];
	struct sim_series s[N_POL];
	uint64_t peak = 0;
	size_t n = 0;
	char path[4096];

	if (t->flash_start_ms < 0)
		return 0;
	if (first < 0)
		first = 0;
	if ((size_t)last > st[0].n_bins)
		last = (int64_t)st[0].n_bins;
	for (b = first; b < last; b++)
		if (st[0].bin_bytes[b] > peak)
			peak = st[0].bin_bytes[b];
	while (last > first + 1 && st[0].bin_bytes[last - 1] * 20 < peak)
		last--;
	for (b = first; b < last; b++, n++) {
		x[n] = (double)(b * SIM_BIN_MS - t->flash_start_ms) / 60000.0;
		for (size_t k = 0; k < N_POL; k++)
			y[k][n] = st[k].bin_bytes[b] ? (double)st[k].bin_hit_bytes[b] /
			                               (double)st[k].bin_bytes[b] : NAN;
	}
	for (size_t k = 0; k < N_POL; k++)
		s[k] = (struct sim_series){ sim_policy_name(all_policies[k]), y[k] };
	if (plot_path(path, sizeof path, dir, "offload_flash_crowd.svg") != 0)
		return -1;
	return sim_svg_lines(path, "First flash crowd: byte offload of its requests, per minute",
	                     "minutes since the flash crowd began", "byte offload", x, n, s,
	                     N_POL, 0, 1);
}

/* One sweep: run all policies for each value, plot byte offload against it. */
static int sweep(const struct sim_args *a, const struct sim_trace *t, struct sim_out *out,
                 const char *name, const double *vals, size_t nv, const char *file,
                 const char *title, const char *xlabel)
{
	double y[N_POL][16];
	struct sim_series s[N_POL];
	char path[4096];
	uint64_t base_box = a->conf.box_storage_bytes ? a->conf.box_storage_bytes :
		(uint64_t)((double)t->catalog_bytes * a->conf.storage_pct / 100.0 /
		           (a->conf.boxes / t->n_regions));

	for (size_t i = 0; i < nv; i++) {
		struct sim_conf c = a->conf;
		struct sim_stats st[N_POL];

		if (!strcmp(name, "storage_pct")) {
			c.storage_pct = vals[i];
			c.box_storage_bytes = 0;
		} else {
			c.boxes = (uint32_t)vals[i];
			c.box_storage_bytes = base_box;
		}
		if (run_all(&c, t, st, out, name, vals[i]) != 0)
			return -1;
		for (size_t k = 0; k < N_POL; k++) {
			y[k][i] = sim_stats_byte_offload(&st[k]);
			sim_stats_fini(&st[k]);
		}
		fprintf(stderr, PROG ": sweep %s = %g done\n", name, vals[i]);
	}
	for (size_t k = 0; k < N_POL; k++)
		s[k] = (struct sim_series){ sim_policy_name(all_policies[k]), y[k] };
	if (plot_path(path, sizeof path, a->plots_dir, file) != 0)
		return -1;
	return sim_svg_lines(path, title, xlabel, "byte offload", vals, nv, s, N_POL, 0, 1);
}

static int write_plots(const struct sim_args *a, const struct sim_trace *t,
                       const struct sim_stats *st, struct sim_out *out)
{
	static const double pct[] = { 0.5, 1, 2, 4, 8, 16 };
	double boxes[5];
	uint32_t nb = a->conf.boxes;

	if (mkdir(a->plots_dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, PROG ": --plots %s: %s\n", a->plots_dir, strerror(errno));
		return -1;
	}
	boxes[0] = nb / 4 >= t->n_regions ? nb / 4 : t->n_regions;
	boxes[1] = nb / 2 >= t->n_regions ? nb / 2 : t->n_regions;
	boxes[2] = nb, boxes[3] = nb * 2, boxes[4] = nb * 4;
	if (plot_flash(a->plots_dir, t, st) != 0 ||
	    sweep(a, t, out, "storage_pct", pct, sizeof pct / sizeof pct[0],
	          "offload_vs_storage.svg", "Byte offload vs box storage",
	          "storage of a region's boxes, % of the catalog bytes") != 0 ||
	    sweep(a, t, out, "boxes", boxes, 5, "offload_vs_boxes.svg",
	          "Byte offload vs number of boxes (fixed storage per box)", "boxes") != 0) {
		fprintf(stderr, PROG ": --plots %s: cannot write the plots: %s\n", a->plots_dir,
		        strerror(errno));
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sim_args a;
	struct sim_trace t;
	struct sim_stats st[N_POL];
	struct sim_out out = { 0 };
	char err[1024];
	int rc;

	rc = sim_args_parse(argc, argv, &a, err, sizeof err);
	if (rc < 0)
		return ec_exit_usage(PROG, err);
	if (rc > 0)
		return EXIT_SUCCESS;
	if (a.bench)
		return bench_placement(&a);
	run_mask = a.policies;
	if (sim_trace_build(&a.conf, &t, err, sizeof err) != 0) {
		fprintf(stderr, PROG ": %s\n", err);
		return EXIT_FAILURE;
	}
	if (a.conf.boxes < t.n_regions) {
		fprintf(stderr, PROG ": --boxes %u: the trace has %u regions; need a box for each\n",
		        a.conf.boxes, t.n_regions);
		sim_trace_fini(&t);
		return 2;
	}
	if (a.csv_path) {
		out.csv = fopen(a.csv_path, "w");
		if (!out.csv) {
			fprintf(stderr, PROG ": --csv %s: %s\n", a.csv_path, strerror(errno));
			sim_trace_fini(&t);
			return EXIT_FAILURE;
		}
		fputs("scenario,x,policy,byte_offload,req_offload,origin_egress_bytes,fill_bytes,"
		      "prefetch_bytes,fallback_bytes,sla_miss_reqs,reqs,req_bytes,cache_hit_bytes,"
		      "prefetch_deferred,seconds\n", out.csv);
	}
	rc = EXIT_FAILURE;
	if (run_all(&a.conf, &t, st, &out, "default", 0) != 0)
		goto out;
	print_table(&a.conf, &t, st);
	if (a.plots_dir && write_plots(&a, &t, st, &out) != 0) {
		for (size_t k = 0; k < N_POL; k++)
			sim_stats_fini(&st[k]);
		goto out;
	}
	printf("\nsimulated %llu requests in %.2f s of CPU: %.2f million requests/s on one core\n",
	       (unsigned long long)out.sim_reqs, out.sim_seconds,
	       out.sim_seconds > 0 ? (double)out.sim_reqs / out.sim_seconds / 1e6 : 0);
	if ((run_mask & 0x28) == 0x28) { /* echos, oracle-window */
		double echos = sim_stats_byte_offload(&st[3]), orc = sim_stats_byte_offload(&st[5]);

		printf("echos/oracle-window byte offload: %.3f\n", orc > 0 ? echos / orc : 0);
	}
	if ((run_mask & 0x19) == 0x19) { /* lru, echos, upper-bound */
		double echos = sim_stats_byte_offload(&st[3]), upper = sim_stats_byte_offload(&st[4]);
		double lru = sim_stats_byte_offload(&st[0]);

		printf("echos/upper-bound byte offload: %.3f; echos-lru: %+.1f points\n",
		       upper > 0 ? echos / upper : 0, 100.0 * (echos - lru));
	}
	for (size_t k = 0; k < N_POL; k++)
		sim_stats_fini(&st[k]);
	rc = EXIT_SUCCESS;
out:
	if (out.csv && fclose(out.csv) != 0) {
		fprintf(stderr, PROG ": --csv %s: %s\n", a.csv_path, strerror(errno));
		rc = EXIT_FAILURE;
	}
	sim_trace_fini(&t);
	return rc;
}
