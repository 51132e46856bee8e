/* shim_dcache: a fixed array of digest entries behind one mutex (lookups are a hash, a
 * few string compares and a copy: far shorter than any upstream round trip). A stale
 * entry is harmless: it is used only when every validator still matches, and replaced
 * by the next GET of its URL. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "shim_dcache.h"
#include "shim_fetch.h"

#define DCACHE_MAGIC 0xdca7c4e1u
#define DCACHE_URL_MAX 1024        /* longer URLs are not cached */

struct dcache_entry {
	uint64_t hash;                 /* 0: empty */
	uint64_t size_bytes;
	uint8_t sha256[SHIM_SHA256_LEN];
	char etag[192];
	char last_modified[64];
	char content_encoding[64];
	char url[DCACHE_URL_MAX];
};

struct shim_dcache {
	unsigned magic;
	size_t n;
	pthread_mutex_t lock;
	struct dcache_entry *e;        /* owned, n entries */
};

/* 64-bit FNV-1a, never 0 (0 marks an empty slot). */
static uint64_t dcache_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

struct shim_dcache *shim_dcache_new(size_t slots)
{
	struct shim_dcache *c = calloc(1, sizeof *c);

	if (c == NULL || slots == 0 || (c->e = calloc(slots, sizeof *c->e)) == NULL) {
		free(c);
		return NULL;
	}
	c->magic = DCACHE_MAGIC;
	c->n = slots;
	pthread_mutex_init(&c->lock, NULL);
	return c;
}

void shim_dcache_free(struct shim_dcache *c)
{
	if (c == NULL)
		return;
	EC_ASSERT(c->magic == DCACHE_MAGIC);
	pthread_mutex_destroy(&c->lock);
	free(c->e);
	c->magic = 0;
	free(c);
}

void shim_dcache_put(struct shim_dcache *c, const char *url, const struct shim_object *o)
{
	uint64_t h = dcache_hash(url);
	struct dcache_entry *e;

	if (!o->has_strong_validator || strlen(url) >= DCACHE_URL_MAX)
		return;
	pthread_mutex_lock(&c->lock);
	e = &c->e[h % c->n];
	e->hash = h;
	e->size_bytes = o->size_bytes;
	memcpy(e->sha256, o->sha256, sizeof e->sha256);
	memcpy(e->etag, o->etag, sizeof e->etag);
	memcpy(e->last_modified, o->last_modified, sizeof e->last_modified);
	memcpy(e->content_encoding, o->content_encoding, sizeof e->content_encoding);
	strcpy(e->url, url);
	pthread_mutex_unlock(&c->lock);
}

int shim_dcache_get(struct shim_dcache *c, const char *url, const struct shim_object *o,
                    uint8_t sha256[SHIM_SHA256_LEN])
{
	uint64_t h = dcache_hash(url);
	const struct dcache_entry *e;
	int is_hit;

	if (!o->has_strong_validator || o->content_length < 0)
		return 0;
	pthread_mutex_lock(&c->lock);
	e = &c->e[h % c->n];
	is_hit = e->hash == h && strcmp(e->url, url) == 0 &&
	         e->size_bytes == (uint64_t)o->content_length &&
	         strcmp(e->etag, o->etag) == 0 &&
	         strcmp(e->last_modified, o->last_modified) == 0 &&
	         strcmp(e->content_encoding, o->content_encoding) == 0;
	if (is_hit)
		memcpy(sha256, e->sha256, SHIM_SHA256_LEN);
	pthread_mutex_unlock(&c->lock);
	return is_hit;
}
