/* pol_hash: the numeric building blocks of the decision core: a 64-bit byte hash
 * (XXH64, seed 0), the rendezvous score of (object, box), and great-circle distance.
 * Pure functions, stable across runs, compilers and byte orders. Owns no memory. */
#include <math.h>
#include <stdint.h>

#include "pol_rank.h"
#include "pol_score.h"

#define P1 0x9E3779B185EBCA87ULL
#define P2 0xC2B2AE3D27D4EB4FULL
#define P3 0x165667B19E3779F9ULL
#define P4 0x85EBCA77C2B2AE63ULL
#define P5 0x27D4EB2F165667C5ULL

static inline uint64_t rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> ((64 - r) & 63));
}

/* Explicit little-endian loads, so the hash of a name is the same on every machine. */
static inline uint64_t load64(const unsigned char *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 |
	       (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static inline uint32_t load32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t hash_round(uint64_t acc, uint64_t in)
{
	acc += in * P2;
	acc = rotl64(acc, 31);
	return acc * P1;
}

static inline uint64_t hash_merge(uint64_t acc, uint64_t v)
{
	acc ^= hash_round(0, v);
	return acc * P1 + P4;
}

/* XXH64 with seed 0: a well-studied 64-bit hash with published test vectors, so other
 * tools (dashboards, scripts) can reproduce an object's hash exactly. */
uint64_t pol_hash_bytes(const void *data, size_t n)
{
	const unsigned char *p = data, *end = p + n;
	uint64_t h;

	if (n >= 32) {
		const unsigned char *limit = end - 32;
		uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = (uint64_t)0 - P1;

		do {
			v1 = hash_round(v1, load64(p));
			v2 = hash_round(v2, load64(p + 8));
			v3 = hash_round(v3, load64(p + 16));
			v4 = hash_round(v4, load64(p + 24));
			p += 32;
		} while (p <= limit);
		h = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
		h = hash_merge(h, v1);
		h = hash_merge(h, v2);
		h = hash_merge(h, v3);
		h = hash_merge(h, v4);
	} else {
		h = P5;
	}
	h += (uint64_t)n;
	while (end - p >= 8) {
		h ^= hash_round(0, load64(p));
		h = rotl64(h, 27) * P1 + P4;
		p += 8;
	}
	if (end - p >= 4) {
		h ^= (uint64_t)load32(p) * P1;
		h = rotl64(h, 23) * P2 + P3;
		p += 4;
	}
	while (p < end) {
		h ^= (uint64_t)*p * P5;
		h = rotl64(h, 11) * P1;
		p++;
	}
	h ^= h >> 33;
	h *= P2;
	h ^= h >> 29;
	h *= P3;
	h ^= h >> 32;
	return h;
}

/* Rendezvous (highest random weight) score of box for object. The box hash is mixed on
 * its own before it meets the object hash, so boxes whose ids differ in few bits, or
 * objects whose hashes are related, still get independent-looking orderings; the outer
 * mix spreads the result over all 64 bits. Rendezvous, not modulo: removing a box moves
 * only the objects that were on it, and adding one takes about 1/n of the objects,
 * where hash % n would reshuffle almost every object and empty every cache at once. */
uint64_t pol_rendezvous(uint64_t obj_hash, uint64_t box_hash)
{
	return pol_rank_rdv(obj_hash, box_hash);
}

#define EARTH_RADIUS_KM 6371.0088 /* IUGG mean radius */
#define DEG_TO_RAD (3.14159265358979323846 / 180.0)

/* Great-circle distance in km between two points given in degrees. The haversine form
 * stays accurate for short distances; the clamp keeps rounding from pushing asin's
 * argument past 1 for antipodal points. NaN in gives NaN out (compares false). */
double pol_haversine_km(double lat1, double lon1, double lat2, double lon2)
{
	double dlat = (lat2 - lat1) * DEG_TO_RAD;
	double dlon = (lon2 - lon1) * DEG_TO_RAD;
	double s1 = sin(dlat / 2), s2 = sin(dlon / 2);
	double a = s1 * s1 + cos(lat1 * DEG_TO_RAD) * cos(lat2 * DEG_TO_RAD) * s2 * s2;

	if (a > 1.0)
		a = 1.0;
	return 2.0 * EARTH_RADIUS_KM * asin(sqrt(a));
}

/* See pol_rank.h: a box's lane depends on its id only. */
unsigned pol_lane_of(uint64_t box_hash)
{
	return pol_rank_lane_of(box_hash);
}

uint64_t pol_lane_score(uint64_t obj_hash, unsigned lane)
{
	return pol_rank_lane_score(obj_hash, lane);
}
