/* pold_plan: sorted path sets and their differences, the per-box assignment table, the
 * demand estimate from minute buckets, the replica floor of objects that keep falling
 * back to the origin and announcement liveness, for echos-policy's placement loop.
 * Pure: no I/O, no clock. Sets own their strings; diffs borrow them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "pold_plan.h"

/* --- path sets ----------------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void pold_pathset_take(struct pold_pathset *s, char **paths, size_t n)
{
	size_t i, k = 0;

	if (n == 0) {
		free(paths);
		s->v = NULL;
		s->n = 0;
		return;
	}
	qsort(paths, n, sizeof *paths, cmp_str);
	for (i = 0; i < n; i++) {
		if (k > 0 && strcmp(paths[k - 1], paths[i]) == 0)
			free(paths[i]);
		else
			paths[k++] = paths[i];
	}
	s->v = paths;
	s->n = k;
}

void pold_pathset_fini(struct pold_pathset *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

int pold_pathset_has(const struct pold_pathset *s, const char *path)
{
	return s->n && bsearch(&path, s->v, s->n, sizeof *s->v, cmp_str) != NULL;
}

int pold_pathset_diff(const struct pold_pathset *cur, const struct pold_pathset *want,
                      struct pold_delta *d)
{
	size_t i = 0, j = 0;

	memset(d, 0, sizeof *d);
	if (want->n && !(d->add = malloc(want->n * sizeof *d->add)))
		return EC_ENOMEM;
	if (cur->n && !(d->del = malloc(cur->n * sizeof *d->del))) {
		pold_delta_fini(d);
		return EC_ENOMEM;
	}
	while (i < cur->n || j < want->n) {
		int c = i == cur->n ? 1 : j == want->n ? -1 : strcmp(cur->v[i], want->v[j]);

		if (c < 0) {
			d->del[d->n_del++] = cur->v[i++];
		} else if (c > 0) {
			d->add[d->n_add++] = want->v[j++];
		} else {
			i++;
			j++;
		}
	}
	return 0;
}

void pold_delta_fini(struct pold_delta *d)
{
	free(d->add);
	free(d->del);
	memset(d, 0, sizeof *d);
}

/* --- assignments --------------------------------------------------------------------- */

/* Index of id in a, or of where it would go (*found says which). */
static size_t assign_find(const struct pold_assign *a, const char *id, int *found)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(a->v[mid].id, id);

		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

int pold_assign_put(struct pold_assign *a, const char *id, struct pold_pathset *set)
{
	size_t len = strlen(id), i;
	int found;

	if (len == 0 || len >= POLD_BOX_ID_MAX)
		return EC_EINVAL;
	i = assign_find(a, id, &found);
	if (found) {
		pold_pathset_fini(&a->v[i].set);
	} else {
		if (a->n == a->cap) {
			size_t cap = a->cap ? a->cap * 2 : 16;
			struct pold_assign_box *v = realloc(a->v, cap * sizeof *v);

			if (!v)
				return EC_ENOMEM;
			a->v = v;
			a->cap = cap;
		}
		memmove(&a->v[i + 1], &a->v[i], (a->n - i) * sizeof *a->v);
		a->n++;
		memcpy(a->v[i].id, id, len + 1);
	}
	a->v[i].set = *set;
	set->v = NULL;
	set->n = 0;
	return 0;
}

const struct pold_pathset *pold_assign_get(const struct pold_assign *a, const char *id)
{
	int found;
	size_t i = assign_find(a, id, &found);

	return found ? &a->v[i].set : NULL;
}

size_t pold_assign_total(const struct pold_assign *a)
{
	size_t t = 0;

	for (size_t i = 0; i < a->n; i++)
		t += a->v[i].set.n;
	return t;
}

void pold_assign_fini(struct pold_assign *a)
{
	for (size_t i = 0; i < a->n; i++)
		pold_pathset_fini(&a->v[i].set);
	free(a->v);
	memset(a, 0, sizeof *a);
}

void pold_assign_move(struct pold_assign *dst, struct pold_assign *src)
{
	pold_assign_fini(dst);
	*dst = *src;
	memset(src, 0, sizeof *src);
}

void pold_box_deltas_free(struct pold_box_delta *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		pold_delta_fini(&v[i].d);
	free(v);
}

int pold_assign_diff(const struct pold_assign *old, const struct pold_assign *next,
                     struct pold_box_delta **out, size_t *n, size_t *changes)
{
	static const struct pold_pathset empty;
	struct pold_box_delta *v;
	size_t i = 0, j = 0, k = 0;

	*out = NULL;
	*n = 0;
	*changes = 0;
	if (old->n + next->n == 0)
		return 0;
	v = calloc(old->n + next->n, sizeof *v);
	if (!v)
		return EC_ENOMEM;
	while (i < old->n || j < next->n) {
		int c = i == old->n ? 1 : j == next->n ? -1 : strcmp(old->v[i].id, next->v[j].id);
		const struct pold_pathset *cur = c <= 0 ? &old->v[i].set : &empty;
		const struct pold_pathset *want = c >= 0 ? &next->v[j].set : &empty;
		struct pold_box_delta *bd = &v[k];

		bd->id = c <= 0 ? old->v[i].id : next->v[j].id;
		bd->is_gone = c < 0;
		if (pold_pathset_diff(cur, want, &bd->d) != 0) {
			pold_box_deltas_free(v, k);
			return EC_ENOMEM;
		}
		if (bd->d.n_add + bd->d.n_del > 0) {
			*changes += bd->d.n_add + bd->d.n_del;
			k++;
		} else {
			pold_delta_fini(&bd->d);
		}
		if (c <= 0)
			i++;
		if (c >= 0)
			j++;
	}
	if (k == 0) {
		free(v);
		return 0;
	}
	*out = v;
	*n = k;
	return 0;
}

/* --- demand -------------------------------------------------------------------------- */

double pold_demand_rate(const double *counts, size_t n, int64_t now_ms, int64_t half_life_ms)
{
	int64_t now_min = now_ms / 60000, elapsed = now_ms - now_min * 60000;
	double num = 0, den = 0, avg, burst;

	if (n == 0 || half_life_ms <= 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int64_t start = (now_min - (int64_t)i) * 60000;
		int64_t end = i == 0 ? now_ms : start + 60000;
		double span_s = (double)(end - start) / 1000.0;
		double age_ms = (double)now_ms - (double)(start + end) / 2.0;
		double w = exp2(-age_ms / (double)half_life_ms);

		num += counts[i] * w;
		den += span_s * w;
	}
	avg = den > 0 ? num / den : 0;
	burst = counts[0] / ((double)(elapsed > POLD_BURST_MIN_MS ? elapsed
	                                                           : POLD_BURST_MIN_MS) / 1000.0);
	return avg > burst ? avg : burst;
}

double pold_demand_recent(double cur, double prev, int64_t now_ms, double ref_count,
                          int64_t ref_ms)
{
	int64_t now_min = now_ms / 60000, ref_min = ref_ms / 60000;
	double delta;

	if (ref_ms >= now_ms)
		return -1;
	if (now_min == ref_min)
		delta = cur - ref_count;
	else if (now_min == ref_min + 1)
		delta = cur + prev - ref_count;
	else
		return -1;
	return delta > 0 ? delta / ((double)(now_ms - ref_ms) / 1000.0) : 0;
}

/* --- origin fallbacks ---------------------------------------------------------------- */

int pold_miss_apply(struct pol_place_obj *o, double recent, double avg,
                    int64_t since_raise_ms, const struct pold_miss_params *mp)
{
	double rate = recent > avg ? recent : avg;
	uint32_t floor_n = 0;
	int is_raised = 0;

	if (!(rate > 0))
		return 0; /* no fallbacks (or NaN): leave the row alone */
	o->fallback_rate = rate;
	if (o->rate < rate)
		o->rate = rate;
	if (mp->raise_rate > 0 && recent >= mp->raise_rate &&
	    (since_raise_ms < 0 || since_raise_ms >= mp->cooldown_ms) && o->held < UINT32_MAX) {
		floor_n = o->held + 1;
		is_raised = 1;
	} else if (mp->raise_rate > 0 && rate >= mp->raise_rate / 2) {
		floor_n = o->held;
	}
	if (o->min_replicas < floor_n)
		o->min_replicas = floor_n;
	return is_raised;
}

int pold_pub_is_live(const char *regions, const char *expires_ms, const char *region,
                     int64_t now_ms)
{
	size_t rlen = strlen(region);
	char *end;
	long long exp;
	const char *s;

	if (!regions || !expires_ms || !*expires_ms || rlen == 0)
		return 0;
	exp = strtoll(expires_ms, &end, 10);
	if (*end != '\0' || exp <= now_ms)
		return 0;
	for (s = regions; *s;) {
		size_t len = strcspn(s, ",");

		if (len == rlen && memcmp(s, region, rlen) == 0)
			return 1;
		s += len;
		if (*s == ',')
			s++;
	}
	return 0;
}
