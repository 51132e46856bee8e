/* ec_slab: size-class free lists in front of malloc (see ec_slab.h). Every block carries
 * a 16-byte header with its class and a magic word, so a release needs no size and a
 * double release is caught. Under AddressSanitizer the usable bytes of a cached block
 * are poisoned, so a use after release is still reported although the memory stays
 * ours. Owns the cached blocks; the blocks handed out are the caller's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ec_err.h"
#include "ec_slab.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLAB_POISON(p, n) ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SLAB_MIN_SHIFT 5                       /* smallest class: 32 usable bytes */
#define SLAB_CLASSES 7                         /* 32 .. 2048 */
#define SLAB_MAX ((size_t)1 << (SLAB_MIN_SHIFT + SLAB_CLASSES - 1))
#define SLAB_BIG SLAB_CLASSES                  /* class of a block from plain malloc */
#define SLAB_LIVE 0x51ab11feu
#define SLAB_FREE 0x51abf4eeu

/* 16 bytes, so the usable part keeps malloc's 16-byte alignment. */
struct slab_hdr {
	uint32_t cls;
	uint32_t magic;   /* SLAB_LIVE while handed out, SLAB_FREE on a list */
	union {
		size_t size;  /* SLAB_BIG: the usable size asked for */
		struct slab_hdr *next; /* on a list: the next free block */
	} u;
};

struct slab_list {
	struct slab_hdr *head;
	size_t n;
};

struct ec_slab {
	struct slab_list lists[SLAB_CLASSES];
	size_t max_cached; /* per class */
	size_t live;
};

_Static_assert(sizeof(struct slab_hdr) == 16, "the header keeps 16-byte alignment");

static inline size_t class_size(unsigned cls)
{
	return (size_t)1 << (SLAB_MIN_SHIFT + cls);
}

/* The class for size usable bytes, or SLAB_BIG above the largest. */
static inline unsigned class_of(size_t size)
{
	if (size <= ((size_t)1 << SLAB_MIN_SHIFT))
		return 0;
	if (size > SLAB_MAX)
		return SLAB_BIG;
	/* ceil(log2(size)) - SLAB_MIN_SHIFT, for 32 < size <= SLAB_MAX */
	return (unsigned)(64 - __builtin_clzll((unsigned long long)(size - 1))) - SLAB_MIN_SHIFT;
}

static inline struct slab_hdr *hdr_of(void *p)
{
	struct slab_hdr *h = (struct slab_hdr *)((char *)p - sizeof(struct slab_hdr));

	EC_ASSERT(h->magic == SLAB_LIVE); /* FREE here: released twice */
	return h;
}

struct ec_slab *ec_slab_new(size_t max_cached)
{
	struct ec_slab *s = calloc(1, sizeof *s);

	if (s)
		s->max_cached = max_cached;
	return s;
}

void ec_slab_free(struct ec_slab *s)
{
	if (!s)
		return;
	for (unsigned c = 0; c < SLAB_CLASSES; c++) {
		struct slab_hdr *h = s->lists[c].head, *next;

		for (; h; h = next) {
			next = h->u.next;
			SLAB_UNPOISON(h + 1, class_size(c));
			free(h);
		}
	}
	free(s);
}

void *ec_slab_alloc(struct ec_slab *s, size_t size)
{
	unsigned cls = class_of(size);
	struct slab_list *l;
	struct slab_hdr *h;

	if (cls == SLAB_BIG) {
		if (size > SIZE_MAX - sizeof *h || !(h = malloc(sizeof *h + size)))
			return NULL;
		h->u.size = size;
	} else if ((h = (l = &s->lists[cls])->head) != NULL) {
		l->head = h->u.next;
		l->n--;
		SLAB_UNPOISON(h + 1, class_size(cls));
	} else if (!(h = malloc(sizeof *h + class_size(cls)))) {
		return NULL;
	}
	h->cls = cls;
	h->magic = SLAB_LIVE;
	s->live++;
	return h + 1;
}

void *ec_slab_calloc(struct ec_slab *s, size_t nmemb, size_t size)
{
	void *p;

	if (size && nmemb > SIZE_MAX / size)
		return NULL;
	p = ec_slab_alloc(s, nmemb * size);
	if (p)
		memset(p, 0, nmemb * size);
	return p;
}

void ec_slab_release(struct ec_slab *s, void *p)
{
	struct slab_hdr *h;
	struct slab_list *l;

	if (!p)
		return;
	h = hdr_of(p);
	s->live--;
	if (h->cls == SLAB_BIG || (l = &s->lists[h->cls])->n >= s->max_cached) {
		h->magic = 0;
		free(h);
		return;
	}
	h->magic = SLAB_FREE;
	h->u.next = l->head;
	l->head = h;
	l->n++;
	SLAB_POISON(p, class_size(h->cls));
}

void *ec_slab_realloc(struct ec_slab *s, void *p, size_t size)
{
	struct slab_hdr *h;
	size_t have;
	void *q;

	if (!p)
		return ec_slab_alloc(s, size);
	h = hdr_of(p);
	have = h->cls == SLAB_BIG ? h->u.size : class_size(h->cls);
	if (h->cls != SLAB_BIG && class_of(size) == h->cls)
		return p; /* fits, and a smaller class would not be worth the copy */
	if (!(q = ec_slab_alloc(s, size)))
		return NULL;
	memcpy(q, p, have < size ? have : size);
	ec_slab_release(s, p);
	return q;
}

void ec_slab_stats(const struct ec_slab *s, struct ec_slab_stats *out)
{
	memset(out, 0, sizeof *out);
	for (unsigned c = 0; c < SLAB_CLASSES; c++) {
		out->cached_blocks += s->lists[c].n;
		out->cached_bytes += s->lists[c].n * class_size(c);
	}
	out->live_blocks = s->live;
}
