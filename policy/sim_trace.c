/* sim_trace: the requests a simulation replays. A generator (Zipf catalog, a stream of
 * new user-generated objects that rise and fade, diurnal load, flash crowds) or a CSV
 * trace; plus box churn events. Deterministic for a seed. Owns the arrays it builds; the
 * only file it reads is the CSV trace. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "pol_score.h"
#include "sim.h"

void sim_conf_default(struct sim_conf *c)
{
	memset(c, 0, sizeof *c);
	c->seed = 1;
	c->regions = 4;
	c->catalog = 100000;
	c->zipf_alpha = 0.9;
	c->size_median_bytes = 2.0 * SIM_MB;
	c->size_sigma = 1.0;
	c->requests = 4000000;
	c->duration_s = 86400;
	c->diurnal_amp = 0.5;
	c->ugc_share = 0.3;
	c->ugc_objects = 20000;
	c->ugc_home_share = 0.7;
	c->flash_crowds = 3;
	c->flash_requests = 6000;
	c->flash_tau_s = 300;
	c->churn_per_box_day = 1;
	c->churn_down_s = 1800;
	c->boxes = 100;
	c->storage_pct = 4;
	c->uplink_bps = 50 * SIM_MB;
	c->sla_queue_s = 2;
	c->half_life_s = 3600;
	c->replace_s = 60;
	c->full_replace_s = 900;
	c->prefetch_share = 0.25;
	c->pin_min_requests = 3;
	c->oracle_window_s = 900;
}

/* --- random numbers ---------------------------------------------------------------- */

static uint64_t splitmix(uint64_t *x)
{
	uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
	return z ^ (z >> 31);
}

void sim_rng_seed(struct sim_rng *r, uint64_t seed)
{
	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *r)
{
	uint64_t *s = r->s, out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return out;
}

double sim_rng_unit(struct sim_rng *r)
{
	return (double)(sim_rng_next(r) >> 11) * 0x1.0p-53;
}

static double rng_exp(struct sim_rng *r)
{
	return -log(1.0 - sim_rng_unit(r));
}

static double rng_normal(struct sim_rng *r)
{
	double u = sim_rng_unit(r), v = sim_rng_unit(r);

	return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

static uint64_t rng_size(struct sim_rng *r, const struct sim_conf *c)
{
	double s = c->size_median_bytes * exp(c->size_sigma * rng_normal(r));

	if (s < 16e3)
		s = 16e3;
	if (s > 200e6)
		s = 200e6;
	return (uint64_t)s;
}

/* Walker's alias table for sampling ranks 0..n-1 with Zipf weights in O(1). */
struct alias {
	double *prob;
	uint32_t *alias;
	uint32_t n;
};

static int alias_build(struct alias *a, uint32_t n, double alpha)
{
	double *w = malloc(n * sizeof *w), sum = 0;
	uint32_t *small = malloc(n * sizeof *small), *large = malloc(n * sizeof *large);
	uint32_t ns = 0, nl = 0;

	a->prob = malloc(n * sizeof *a->prob);
	a->alias = malloc(n * sizeof *a->alias);
	a->n = n;
	if (!w || !small || !large || !a->prob || !a->alias) {
		free(w), free(small), free(large);
		return EC_ENOMEM;
	}
	for (uint32_t i = 0; i < n; i++)
		sum += (w[i] = pow((double)i + 1, -alpha));
	for (uint32_t i = 0; i < n; i++) {
		w[i] = w[i] * n / sum;
		if (w[i] < 1)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns && nl) {
		uint32_t s = small[--ns], l = large[nl - 1];

		a->prob[s] = w[s];
		a->alias[s] = l;
		w[l] -= 1 - w[s];
		if (w[l] < 1) {
			nl--;
			small[ns++] = l;
		}
	}
	while (nl) {
		uint32_t l = large[--nl];
		a->prob[l] = 1, a->alias[l] = l;
	}
	while (ns) {
		uint32_t s = small[--ns];
		a->prob[s] = 1, a->alias[s] = s;
	}
	free(w), free(small), free(large);
	return 0;
}

static uint32_t alias_draw(const struct alias *a, struct sim_rng *r)
{
	uint64_t x = sim_rng_next(r);
	uint32_t i = (uint32_t)(((x >> 32) * a->n) >> 32);
	double u = (double)(x & 0xffffffffu) * 0x1.0p-32;

	return u < a->prob[i] ? i : a->alias[i];
}

/* --- building ------------------------------------------------------------------------ */

static int trace_push(struct sim_trace *t, size_t *cap, int64_t t_ms, uint32_t obj,
                      uint16_t region, uint16_t flags)
{
	if (t->n_reqs == *cap) {
		size_t nc = *cap ? *cap * 2 : 1 << 16;
		struct sim_req *v = realloc(t->reqs, nc * sizeof *v);

		if (!v)
			return EC_ENOMEM;
		t->reqs = v;
		*cap = nc;
	}
	t->reqs[t->n_reqs++] = (struct sim_req){ t_ms, obj, region, flags };
	return 0;
}

/* Stable LSD radix sort of the requests by time (16-bit digits). */
static int trace_sort(struct sim_trace *t)
{
	struct sim_req *tmp = malloc((t->n_reqs ? t->n_reqs : 1) * sizeof *tmp);
	size_t *count = malloc(65536 * sizeof *count);
	int64_t maxt = 0;

	if (!tmp || !count) {
		free(tmp), free(count);
		return EC_ENOMEM;
	}
	for (size_t i = 0; i < t->n_reqs; i++)
		if (t->reqs[i].t_ms > maxt)
			maxt = t->reqs[i].t_ms;
	for (unsigned shift = 0; shift < 64 && (maxt >> shift); shift += 16) {
		size_t sum = 0;

		memset(count, 0, 65536 * sizeof *count);
		for (size_t i = 0; i < t->n_reqs; i++)
			count[((uint64_t)t->reqs[i].t_ms >> shift) & 0xffff]++;
		for (size_t d = 0; d < 65536; d++) {
			size_t c = count[d];
			count[d] = sum;
			sum += c;
		}
		for (size_t i = 0; i < t->n_reqs; i++)
			tmp[count[((uint64_t)t->reqs[i].t_ms >> shift) & 0xffff]++] = t->reqs[i];
		memcpy(t->reqs, tmp, t->n_reqs * sizeof *tmp);
	}
	free(tmp), free(count);
	return 0;
}

static uint64_t obj_hash_of(uint64_t id)
{
	return pol_hash_bytes(&id, sizeof id);
}

static int trace_generate(const struct sim_conf *c, struct sim_trace *t)
{
	struct sim_rng r;
	struct alias zipf = { 0 };
	uint32_t n_obj = c->catalog + c->ugc_objects + c->flash_crowds;
	uint64_t n_flash = (uint64_t)c->flash_crowds * c->flash_requests;
	uint64_t n_ugc = (uint64_t)((double)c->requests * c->ugc_share), n_cat;
	int64_t dur_ms = (int64_t)(c->duration_s * 1000);
	size_t cap = 0;
	int rc = EC_ENOMEM;

	if (n_ugc + n_flash > c->requests || !c->catalog || !c->regions ||
	    c->regions > SIM_MAX_REGIONS || dur_ms <= 0 || (c->ugc_share > 0 && !c->ugc_objects))
		return EC_EINVAL;
	n_cat = c->requests - n_ugc - n_flash;
	t->n_regions = c->regions;
	for (uint32_t i = 0; i < c->regions; i++)
		snprintf(t->region_names[i], sizeof t->region_names[i], "r%u", i);
	t->duration_ms = dur_ms;
	t->n_objs = n_obj;
	t->obj_size = malloc(n_obj * sizeof *t->obj_size);
	t->obj_hash = malloc(n_obj * sizeof *t->obj_hash);
	if (!t->obj_size || !t->obj_hash)
		return EC_ENOMEM;
	sim_rng_seed(&r, c->seed ^ 0x0bec7ULL);
	for (uint32_t i = 0; i < n_obj; i++) {
		t->obj_size[i] = rng_size(&r, c);
		t->obj_hash[i] = obj_hash_of((c->seed << 32) ^ i);
		if (i < c->catalog)
			t->catalog_bytes += t->obj_size[i];
	}

	/* Catalog: Zipf ranks (rank = object index), times thinned by the diurnal curve
	 * (lowest at t = 0, highest half a day later). */
	if (alias_build(&zipf, c->catalog, c->zipf_alpha) != 0)
		goto out;
	sim_rng_seed(&r, c->seed ^ 0xca7a1ULL);
	for (uint64_t i = 0; i < n_cat;) {
		double ts = sim_rng_unit(&r) * c->duration_s;
		double f = 1 - c->diurnal_amp * cos(2 * M_PI * ts / 86400.0);

		if (sim_rng_unit(&r) * (1 + c->diurnal_amp) > f)
			continue;
		if (trace_push(t, &cap, (int64_t)(ts * 1000), alias_draw(&zipf, &r),
		               (uint16_t)(sim_rng_next(&r) % c->regions), 0) != 0)
			goto out;
		i++;
	}

	/* UGC: born uniformly over the run, Pareto-distributed appeal, requests at
	 * born + tau * Gamma(2) (rises, peaks at tau, fades), mostly from a home region. */
	sim_rng_seed(&r, c->seed ^ 0x06cULL);
	if (c->ugc_objects) {
		double *w = malloc(c->ugc_objects * sizeof *w), sum = 0;

		if (!w)
			goto out;
		for (uint32_t j = 0; j < c->ugc_objects; j++)
			sum += (w[j] = pow(1.0 - sim_rng_unit(&r), -1.0 / 1.2));
		for (uint32_t j = 0; j < c->ugc_objects; j++) {
			double born = sim_rng_unit(&r) * c->duration_s;
			double tau = 600.0 * pow(24.0, sim_rng_unit(&r)); /* 10 min .. 4 h */
			uint16_t home = (uint16_t)(sim_rng_next(&r) % c->regions);
			uint64_t k = (uint64_t)((double)n_ugc * w[j] / sum + sim_rng_unit(&r));

			for (uint64_t q = 0; q < k; q++) {
				double ts = born + tau * (rng_exp(&r) + rng_exp(&r));
				uint16_t reg = sim_rng_unit(&r) < c->ugc_home_share ? home :
				               (uint16_t)(sim_rng_next(&r) % c->regions);

				if (ts >= c->duration_s)
					continue;
				if (trace_push(t, &cap, (int64_t)(ts * 1000), c->catalog + j, reg, 0)) {
					free(w);
					goto out;
				}
			}
		}
		free(w);
	}

	/* Flash crowds: evenly spread over the run, each in one region (90% of its
	 * requests), an object nobody asked for before. */
	t->flash_start_ms = -1;
	sim_rng_seed(&r, c->seed ^ 0xf1a5ULL);
	for (uint32_t k = 0; k < c->flash_crowds; k++) {
		double start = c->duration_s * ((double)k + 0.5) / c->flash_crowds;
		uint16_t reg = (uint16_t)(k % c->regions);
		uint32_t obj = c->catalog + c->ugc_objects + k;

		if (k == 0) {
			t->flash_start_ms = (int64_t)(start * 1000);
			t->flash_region = reg;
		}
		for (uint32_t q = 0; q < c->flash_requests; q++) {
			double ts = start + c->flash_tau_s * (rng_exp(&r) + rng_exp(&r));
			uint16_t rr = sim_rng_unit(&r) < 0.9 ? reg :
			              (uint16_t)(sim_rng_next(&r) % c->regions);

			if (ts >= c->duration_s)
				continue;
			if (trace_push(t, &cap, (int64_t)(ts * 1000), obj, rr, SIM_REQ_FLASH) != 0)
				goto out;
		}
	}
	rc = trace_sort(t);
out:
	free(zipf.prob);
	free(zipf.alias);
	return rc;
}

/* --- CSV ------------------------------------------------------------------------------ */

static int csv_region(struct sim_trace *t, const char *name, size_t len)
{
	for (uint32_t i = 0; i < t->n_regions; i++)
		if (strlen(t->region_names[i]) == len && !memcmp(t->region_names[i], name, len))
			return (int)i;
	if (t->n_regions == SIM_MAX_REGIONS || len == 0 || len >= sizeof t->region_names[0])
		return -1;
	memcpy(t->region_names[t->n_regions], name, len);
	t->region_names[t->n_regions][len] = '\0';
	return (int)t->n_regions++;
}

static int csv_object(struct sim_trace *t, struct sim_map *ids, size_t *cap, const char *name,
                      size_t len, uint64_t size)
{
	uint64_t h = pol_hash_bytes(name, len);
	uint32_t *v = sim_map_get(ids, h);

	if (v) {
		t->obj_size[*v] = size;
		return (int)*v;
	}
	if (t->n_objs == *cap) {
		size_t nc = *cap ? *cap * 2 : 4096;
		uint64_t *s = realloc(t->obj_size, nc * sizeof *s), *hh;

		if (!s)
			return EC_ENOMEM;
		t->obj_size = s;
		hh = realloc(t->obj_hash, nc * sizeof *hh);
		if (!hh)
			return EC_ENOMEM;
		t->obj_hash = hh;
		*cap = nc;
	}
	if (sim_map_put(ids, h, (uint32_t)t->n_objs) != 0)
		return EC_ENOMEM;
	t->obj_size[t->n_objs] = size;
	t->obj_hash[t->n_objs] = h;
	return (int)t->n_objs++;
}

/* Splits "a,b,c,d" into 4 fields (no quoting: names must not contain commas). */
static int csv_split(char *line, char **f, size_t *len)
{
	int n = 0;
	char *p = line;

	for (;;) {
		char *comma = strchr(p, ',');

		if (n == 4)
			return -1;
		f[n] = p;
		len[n] = comma ? (size_t)(comma - p) : strlen(p);
		n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	return n == 4 ? 0 : -1;
}

static int trace_read_csv(const char *path, struct sim_trace *t, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct sim_map ids;
	char line[4096];
	size_t cap = 0, ocap = 0, lineno = 0;
	int rc = EC_EINVAL;

	if (!f) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return EC_EIO;
	}
	if (sim_map_init(&ids, 4096) != 0) {
		fclose(f);
		return EC_ENOMEM;
	}
	t->flash_start_ms = -1;
	while (fgets(line, sizeof line, f)) {
		char *fld[4], *end;
		size_t len[4], n = strcspn(line, "\r\n");
		double ts;
		unsigned long long size;
		int reg, obj;

		lineno++;
		if (n == sizeof line - 1) {
			snprintf(err, errlen, "%s:%zu: line longer than %zu bytes", path, lineno,
			         sizeof line - 2);
			goto out;
		}
		line[n] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		if (csv_split(line, fld, len) != 0) {
			snprintf(err, errlen, "%s:%zu: expected 4 fields "
			         "time,client_region,object,size", path, lineno);
			goto out;
		}
		fld[0][len[0]] = fld[1][len[1]] = fld[2][len[2]] = '\0';
		errno = 0;
		ts = strtod(fld[0], &end);
		if (end == fld[0] || *end || errno || !(ts >= 0) || ts > 1e9) {
			if (lineno == 1 && t->n_reqs == 0)
				continue; /* a header line */
			snprintf(err, errlen, "%s:%zu: time: expected seconds >= 0, got \"%s\"",
			         path, lineno, fld[0]);
			goto out;
		}
		errno = 0;
		size = strtoull(fld[3], &end, 10);
		if (end == fld[3] || *end || errno || fld[3][0] == '-' || size == 0) {
			snprintf(err, errlen, "%s:%zu: size: expected bytes > 0, got \"%s\"", path,
			         lineno, fld[3]);
			goto out;
		}
		reg = csv_region(t, fld[1], len[1]);
		if (reg < 0) {
			snprintf(err, errlen, "%s:%zu: client_region: \"%s\" is empty, too long, or "
			         "one region more than %d", path, lineno, fld[1], SIM_MAX_REGIONS);
			goto out;
		}
		if (len[2] == 0) {
			snprintf(err, errlen, "%s:%zu: object: empty name", path, lineno);
			goto out;
		}
		obj = csv_object(t, &ids, &ocap, fld[2], len[2], size);
		if (obj < 0 || trace_push(t, &cap, (int64_t)(ts * 1000), (uint32_t)obj,
		                          (uint16_t)reg, 0) != 0) {
			rc = EC_ENOMEM;
			snprintf(err, errlen, "%s:%zu: out of memory", path, lineno);
			goto out;
		}
		if ((int64_t)(ts * 1000) + 1 > t->duration_ms)
			t->duration_ms = (int64_t)(ts * 1000) + 1;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = EC_EIO;
		goto out;
	}
	if (t->n_reqs == 0) {
		snprintf(err, errlen, "%s: no requests", path);
		goto out;
	}
	for (size_t i = 0; i < t->n_objs; i++)
		t->catalog_bytes += t->obj_size[i];
	rc = trace_sort(t);
out:
	sim_map_fini(&ids);
	fclose(f);
	return rc;
}

int sim_trace_build(const struct sim_conf *c, struct sim_trace *t, char *err, size_t errlen)
{
	int rc;

	memset(t, 0, sizeof *t);
	if (c->trace_path)
		rc = trace_read_csv(c->trace_path, t, err, errlen);
	else if ((rc = trace_generate(c, t)) != 0)
		snprintf(err, errlen, "generator: %s", rc == EC_EINVAL ?
		         "inconsistent scenario (shares, counts or duration)" : ec_strerror(rc));
	if (rc != 0)
		sim_trace_fini(t);
	return rc;
}

void sim_trace_fini(struct sim_trace *t)
{
	free(t->reqs);
	free(t->obj_size);
	free(t->obj_hash);
	memset(t, 0, sizeof *t);
}

static int event_cmp(const void *a, const void *b)
{
	const struct sim_event *x = a, *y = b;

	if (x->t_ms != y->t_ms)
		return x->t_ms < y->t_ms ? -1 : 1;
	if (x->box != y->box)
		return x->box < y->box ? -1 : 1;
	return x->is_up - y->is_up;
}

int sim_churn_build(const struct sim_conf *c, const struct sim_trace *t, uint32_t n_boxes,
                    struct sim_event **ev, size_t *n)
{
	struct sim_rng r;
	struct sim_event *v = NULL;
	size_t k = 0, cap = 0;
	double dur = (double)t->duration_ms / 1000;

	*ev = NULL;
	*n = 0;
	if (c->churn_per_box_day <= 0)
		return 0;
	sim_rng_seed(&r, c->seed ^ 0xc4u ^ ((uint64_t)n_boxes << 40));
	for (uint32_t b = 0; b < n_boxes; b++) {
		double ts = 0;

		for (;;) {
			ts += rng_exp(&r) * 86400.0 / c->churn_per_box_day;
			if (ts >= dur)
				break;
			if (k + 2 > cap) {
				size_t nc = cap ? cap * 2 : 256;
				struct sim_event *nv = realloc(v, nc * sizeof *nv);

				if (!nv) {
					free(v);
					return EC_ENOMEM;
				}
				v = nv;
				cap = nc;
			}
			v[k++] = (struct sim_event){ (int64_t)(ts * 1000), b, 0 };
			ts += rng_exp(&r) * c->churn_down_s;
			v[k++] = (struct sim_event){ (int64_t)(ts * 1000), b, 1 };
		}
	}
	if (k)
		qsort(v, k, sizeof *v, event_cmp);
	*ev = v;
	*n = k;
	return 0;
}
