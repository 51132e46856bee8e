/* edge_store: object files on disk, their fixed header, the in-memory index and LRU.
 * Commits are one rename of a fully written and fsynced temp file, so a crash leaves either
 * the old state or the new object, never a torn one; startup removes whatever is left.
 * Owns the index entries and the writers' temp files; does not hash or verify bodies. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "ec_err.h"
#include "ec_log.h"
#include "ec_time.h"
#include "edge_store.h"

#define STORE_MAGIC 0x45535452u        /* "ESTR" */
#define ENTRY_MAGIC 0x45454e54u        /* "EENT" */
#define WRITER_MAGIC 0x45575254u       /* "EWRT" */

/* File header, little-endian:
 *   0  magic "ECHOSOBJ"      8  u32 version       12 u32 header_len
 *   16 u64 content_length    24 sha-256 [32]       56 u16 ctype_len, etag_len,
 *   lastmod_len, path_len    64 i64 stored_ms      72 ctype, etag, lastmod, path */
#define HDR_FIXED 72
#define HDR_VERSION 1
#define HDR_MAX (HDR_FIXED + EDGE_STORE_CTYPE_MAX + EDGE_STORE_ETAG_MAX + \
                 EDGE_STORE_LASTMOD_MAX + EDGE_STORE_PATH_MAX)
static const char hdr_magic[8] = { 'E', 'C', 'H', 'O', 'S', 'O', 'B', 'J' };

struct store_entry {
	unsigned magic;
	uint8_t key[32];            /* sha-256 of the object path */
	uint64_t size;              /* file bytes */
	int64_t atime_s;            /* last use, for the startup LRU order */
	struct store_entry *hnext;  /* hash chain */
	struct store_entry *prev, *next; /* LRU: head = most recently used */
	struct store_mem *mem;      /* in-memory copy of a small object, or NULL */
	uint16_t path_len;
	char path[];                /* the object path, NUL-terminated (inventory) */
};

/* A small object kept in memory: its metadata and body, as verified when read. */
struct store_mem {
	struct edge_obj meta;       /* fd -1, mem NULL */
	uint8_t body[];
};

struct edge_store {
	unsigned magic;
	char *dir;
	uint64_t max_bytes;
	uint64_t bytes;
	uint64_t objects;
	uint64_t evictions;
	uint64_t dropped;
	struct store_entry **buckets;
	size_t nbuckets;            /* power of two */
	struct store_entry *lru_head, *lru_tail;
	size_t mem_obj_max;         /* 0: no memory copies */
	size_t mem_max, mem_bytes;
	edge_store_change_cb on_change; /* inventory updates, may be NULL */
	void *on_change_arg;
};

struct edge_store_writer {
	unsigned magic;
	struct edge_store *st;
	int fd;
	uint8_t key[32];
	const char *path;           /* inside header[], path_len bytes */
	size_t path_len;
	char tmp_path[4096];
	int64_t announced;          /* content length announced, -1 unknown */
	uint64_t written;           /* body bytes written */
	uint32_t header_len;
	uint8_t header[HDR_MAX];    /* provisional header, completed at commit */
};

/* --- small helpers ---------------------------------------------------------------- */

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t get_u32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}
static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static void key_of(const char *path, size_t len, uint8_t key[32])
{
	unsigned int n = 32;
	if (EVP_Digest(path, len, key, &n, EVP_sha256(), NULL) != 1)
		EC_ASSERT(!"EVP_Digest(sha256) failed");
}

static void hex32(const uint8_t key[32], char out[65])
{
	static const char hx[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		out[2 * i] = hx[key[i] >> 4];
		out[2 * i + 1] = hx[key[i] & 15];
	}
	out[64] = '\0';
}

void edge_store_key_hex(const char *path, size_t path_len, char out[65])
{
	uint8_t key[32];
	key_of(path, path_len, key);
	hex32(key, out);
}

static void obj_path(const struct edge_store *st, const uint8_t key[32], char *out, size_t n)
{
	char hx[65];
	hex32(key, hx);
	snprintf(out, n, "%s/objects/%.2s/%s", st->dir, hx, hx);
}

static size_t bucket_of(const struct edge_store *st, const uint8_t key[32])
{
	uint64_t h;
	memcpy(&h, key, sizeof h);
	return (size_t)h & (st->nbuckets - 1);
}

/* Returns a new entry for `path` (owned by the caller until index_insert takes it). */
static struct store_entry *entry_new(const uint8_t key[32], const char *path, size_t len)
{
	struct store_entry *e = calloc(1, sizeof *e + len + 1);
	if (!e)
		return NULL;
	e->magic = ENTRY_MAGIC;
	memcpy(e->key, key, 32);
	memcpy(e->path, path, len);
	e->path[len] = '\0';
	e->path_len = (uint16_t)len;
	return e;
}

/* --- index and LRU ---------------------------------------------------------------- */

static struct store_entry *index_find(const struct edge_store *st, const uint8_t key[32])
{
	struct store_entry *e = st->buckets[bucket_of(st, key)];
	for (; e; e = e->hnext)
		if (memcmp(e->key, key, 32) == 0)
			return e;
	return NULL;
}

static void lru_unlink(struct edge_store *st, struct store_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		st->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		st->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_head(struct edge_store *st, struct store_entry *e)
{
	e->prev = NULL;
	e->next = st->lru_head;
	if (st->lru_head)
		st->lru_head->prev = e;
	st->lru_head = e;
	if (!st->lru_tail)
		st->lru_tail = e;
}

static void index_grow(struct edge_store *st)
{
	size_t n = st->nbuckets * 2;
	struct store_entry **b = calloc(n, sizeof *b);
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i < st->nbuckets; i++) {
		struct store_entry *e = st->buckets[i], *next;
		for (; e; e = next) {
			uint64_t h;
			next = e->hnext;
			memcpy(&h, e->key, sizeof h);
			e->hnext = b[(size_t)h & (n - 1)];
			b[(size_t)h & (n - 1)] = e;
		}
	}
	free(st->buckets);
	st->buckets = b;
	st->nbuckets = n;
}

/* Takes e into the index (at the LRU head). `notify`: tell the change callback. */
static void index_insert(struct edge_store *st, struct store_entry *e, int notify)
{
	size_t b;
	if (st->objects + 1 > st->nbuckets)
		index_grow(st);
	b = bucket_of(st, e->key);
	e->hnext = st->buckets[b];
	st->buckets[b] = e;
	lru_push_head(st, e);
	st->bytes += e->size;
	st->objects++;
	if (notify && st->on_change)
		st->on_change(st->on_change_arg, e->path, e->path_len, 1);
}

/* Removes e from the index and frees it (the file is the caller's business). */
static void index_remove(struct edge_store *st, struct store_entry *e)
{
	struct store_entry **pp = &st->buckets[bucket_of(st, e->key)];
	EC_ASSERT(e->magic == ENTRY_MAGIC);
	while (*pp && *pp != e)
		pp = &(*pp)->hnext;
	EC_ASSERT(*pp == e);
	*pp = e->hnext;
	lru_unlink(st, e);
	st->bytes -= e->size;
	st->objects--;
	if (st->on_change)
		st->on_change(st->on_change_arg, e->path, e->path_len, 0);
	if (e->mem) {
		st->mem_bytes -= e->mem->meta.content_length;
		free(e->mem);
	}
	e->magic = 0;
	free(e);
}

/* Unlinks the object file and drops the entry. */
static void entry_drop(struct edge_store *st, struct store_entry *e)
{
	char p[4096];
	obj_path(st, e->key, p, sizeof p);
	if (unlink(p) != 0 && errno != ENOENT)
		ec_log_warn("cache %s: cannot remove %s: %s", st->dir, p, strerror(errno));
	index_remove(st, e);
}

/* Evicts least recently used objects until `need` more bytes fit. Returns 0 or EC_ETOOBIG
 * if `need` alone exceeds the capacity. */
static int store_make_room(struct edge_store *st, uint64_t need)
{
	if (need > st->max_bytes)
		return EC_ETOOBIG;
	while (st->bytes + need > st->max_bytes && st->lru_tail) {
		ec_log_debug("cache %s: evicting an object of %llu bytes", st->dir,
		             (unsigned long long)st->lru_tail->size);
		entry_drop(st, st->lru_tail);
		st->evictions++;
	}
	return 0;
}

/* --- header ------------------------------------------------------------------------ */

/* Parses and checks a header read from a file of `file_size` bytes whose name is `key`.
 * Fills out (except fd) and, if path_out is given, the stored path. Returns NULL or the
 * reason the file is invalid. */
static const char *hdr_parse(const uint8_t *h, size_t n, uint64_t file_size,
                             const uint8_t key[32], struct edge_obj *out,
                             char *path_out, size_t *path_len_out)
{
	uint32_t hlen;
	uint64_t clen;
	size_t lc, le, ll, lp;
	const uint8_t *s;
	uint8_t k[32];

	if (n < HDR_FIXED)
		return "shorter than a header";
	if (memcmp(h, hdr_magic, sizeof hdr_magic) != 0)
		return "bad magic";
	if (get_u32(h + 8) != HDR_VERSION)
		return "unknown header version";
	hlen = get_u32(h + 12);
	clen = get_u64(h + 16);
	lc = get_u16(h + 56);
	le = get_u16(h + 58);
	ll = get_u16(h + 60);
	lp = get_u16(h + 62);
	if (lc > EDGE_STORE_CTYPE_MAX || le > EDGE_STORE_ETAG_MAX ||
	    ll > EDGE_STORE_LASTMOD_MAX || lp > EDGE_STORE_PATH_MAX || lp == 0)
		return "metadata field too long";
	if (hlen != HDR_FIXED + lc + le + ll + lp || hlen > n)
		return "bad header length";
	if (clen > UINT64_MAX - hlen || file_size != hlen + clen)
		return "size does not match the header (torn or truncated)";
	s = h + HDR_FIXED;
	key_of((const char *)s + lc + le + ll, lp, k);
	if (memcmp(k, key, 32) != 0)
		return "path does not match the file name";
	out->header_len = hlen;
	out->content_length = clen;
	memcpy(out->sha256, h + 24, 32);
	out->stored_ms = (int64_t)get_u64(h + 64);
	memcpy(out->ctype, s, lc);
	out->ctype[lc] = '\0';
	memcpy(out->etag, s + lc, le);
	out->etag[le] = '\0';
	memcpy(out->lastmod, s + lc + le, ll);
	out->lastmod[ll] = '\0';
	if (path_out) {
		memcpy(path_out, s + lc + le + ll, lp);
		path_out[lp] = '\0';
		*path_len_out = lp;
	}
	return NULL;
}

/* Reads and checks the header of the open file fd. Returns NULL or why it is invalid;
 * on EC_EIO-like read errors returns "read error" with errno set. */
static const char *hdr_read(int fd, const uint8_t key[32], struct edge_obj *out,
                            uint64_t *file_size, char *path_out, size_t *path_len_out)
{
	uint8_t h[HDR_MAX];
	struct stat sb;
	ssize_t n;

	if (fstat(fd, &sb) != 0)
		return "cannot stat";
	if (!S_ISREG(sb.st_mode))
		return "not a regular file";
	n = pread(fd, h, sizeof h, 0);
	if (n < 0)
		return "read error";
	*file_size = (uint64_t)sb.st_size;
	return hdr_parse(h, (size_t)n, (uint64_t)sb.st_size, key, out, path_out,
	                 path_len_out);
}

/* --- open: directories, tmp cleanup, scan ------------------------------------------ */

static int mkdir_p1(const char *p, char *err, size_t errlen)
{
	if (mkdir(p, 0755) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cache %s: cannot create: %s", p, strerror(errno));
		return EC_EIO;
	}
	return 0;
}

static int store_dirs(struct edge_store *st, char *err, size_t errlen)
{
	char p[4096];
	if (mkdir_p1(st->dir, err, errlen) != 0)
		return EC_EIO;
	snprintf(p, sizeof p, "%s/tmp", st->dir);
	if (mkdir_p1(p, err, errlen) != 0)
		return EC_EIO;
	snprintf(p, sizeof p, "%s/objects", st->dir);
	if (mkdir_p1(p, err, errlen) != 0)
		return EC_EIO;
	for (int i = 0; i < 256; i++) {
		snprintf(p, sizeof p, "%s/objects/%02x", st->dir, i);
		if (mkdir_p1(p, err, errlen) != 0)
			return EC_EIO;
	}
	return 0;
}

/* Removes every file in <dir>/tmp: fills that never committed. */
static void store_clean_tmp(struct edge_store *st)
{
	char p[4096];
	DIR *d;
	struct dirent *de;

	snprintf(p, sizeof p, "%s/tmp", st->dir);
	d = opendir(p);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), de->d_name, 0) == 0)
			ec_log_info("cache %s: removed unfinished fill tmp/%s", st->dir, de->d_name);
		else
			ec_log_warn("cache %s: cannot remove tmp/%s: %s", st->dir, de->d_name,
			            strerror(errno));
	}
	closedir(d);
}

static int is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return s[n] == '\0';
}

static int hex_to_key(const char *s, uint8_t key[32])
{
	for (int i = 0; i < 32; i++) {
		unsigned v;
		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			return -1;
		key[i] = (uint8_t)v;
	}
	return 0;
}

struct scan_list {
	struct store_entry **v;
	size_t n, cap;
};

static void scan_drop(struct edge_store *st, int dfd, const char *sub, const char *name,
                      const char *why)
{
	ec_log_warn("cache %s: removing objects/%s/%s: %s", st->dir, sub, name, why);
	if (unlinkat(dfd, name, 0) != 0 && errno != ENOENT)
		ec_log_warn("cache %s: cannot remove objects/%s/%s: %s", st->dir, sub, name,
		            strerror(errno));
	st->dropped++;
}

struct scan_name {
	ino_t ino;
	char name[65];
};

static int cmp_ino(const void *a, const void *b)
{
	const struct scan_name *x = a, *y = b;
	return (x->ino > y->ino) - (x->ino < y->ino);
}

/* Lists the object file names of one subdirectory in inode order: on a cold start, headers
 * are then read roughly in disk order instead of the directory's hash order. Other names
 * are removed here. Returns a new array owned by the caller (free()), *n its length. */
static struct scan_name *scan_names(struct edge_store *st, DIR *d, const char *sub,
                                    size_t *n)
{
	struct scan_name *v = NULL;
	size_t cap = 0;
	struct dirent *de;

	*n = 0;
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (strlen(de->d_name) != 64 || !is_hex(de->d_name, 64) ||
		    strncmp(de->d_name, sub, 2) != 0) {
			scan_drop(st, dirfd(d), sub, de->d_name, "not an object file name");
			continue;
		}
		if (*n == cap) {
			size_t nc = cap ? cap * 2 : 256;
			struct scan_name *nv = realloc(v, nc * sizeof *nv);
			if (!nv) {
				ec_log_err("cache %s: out of memory while scanning", st->dir);
				break;
			}
			v = nv;
			cap = nc;
		}
		v[*n].ino = de->d_ino;
		memcpy(v[*n].name, de->d_name, 65);
		(*n)++;
	}
	if (*n)
		qsort(v, *n, sizeof *v, cmp_ino);
	return v;
}

static void scan_subdir(struct edge_store *st, const char *sub, struct scan_list *out)
{
	char p[4096];
	DIR *d;
	struct scan_name *names;
	size_t n_names;

	snprintf(p, sizeof p, "%s/objects/%s", st->dir, sub);
	d = opendir(p);
	if (!d) {
		ec_log_warn("cache %s: cannot read objects/%s: %s", st->dir, sub, strerror(errno));
		return;
	}
	names = scan_names(st, d, sub, &n_names);
	for (size_t i = 0; i < n_names; i++) {
		struct scan_name *de = &names[i];
		struct edge_obj o;
		struct store_entry *e;
		struct stat sb;
		uint8_t key[32];
		uint64_t fsize = 0;
		char opath[EDGE_STORE_PATH_MAX + 1];
		size_t opath_len = 0;
		const char *why;
		int fd;

		if (hex_to_key(de->name, key) != 0) {
			scan_drop(st, dirfd(d), sub, de->name, "not an object file name");
			continue;
		}
		fd = openat(dirfd(d), de->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0) {
			scan_drop(st, dirfd(d), sub, de->name, strerror(errno));
			continue;
		}
		why = hdr_read(fd, key, &o, &fsize, opath, &opath_len);
		if (!why && fstat(fd, &sb) != 0)
			why = "cannot stat";
		close(fd);
		if (why) {
			scan_drop(st, dirfd(d), sub, de->name, why);
			continue;
		}
		if (out->n == out->cap) {
			size_t cap = out->cap ? out->cap * 2 : 256;
			struct store_entry **v = realloc(out->v, cap * sizeof *v);
			if (!v) {
				ec_log_err("cache %s: out of memory while scanning", st->dir);
				break;
			}
			out->v = v;
			out->cap = cap;
		}
		e = entry_new(key, opath, opath_len);
		if (!e) {
			ec_log_err("cache %s: out of memory while scanning", st->dir);
			break;
		}
		e->size = fsize;
		e->atime_s = sb.st_atime > sb.st_mtime ? sb.st_atime : sb.st_mtime;
		out->v[out->n++] = e;
	}
	free(names);
	closedir(d);
}

static int cmp_atime(const void *a, const void *b)
{
	const struct store_entry *x = *(struct store_entry *const *)a;
	const struct store_entry *y = *(struct store_entry *const *)b;
	return (x->atime_s > y->atime_s) - (x->atime_s < y->atime_s);
}

static void store_scan(struct edge_store *st)
{
	struct scan_list l = { 0 };
	char sub[3];

	for (int i = 0; i < 256; i++) {
		snprintf(sub, sizeof sub, "%02x", i);
		scan_subdir(st, sub, &l);
	}
	/* oldest first, so the most recently used ends at the LRU head */
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, cmp_atime);
	for (size_t i = 0; i < l.n; i++)
		index_insert(st, l.v[i], 0);
	free(l.v);
	if (st->bytes > st->max_bytes) {
		ec_log_info("cache %s: %llu bytes stored over a capacity of %llu; evicting",
		            st->dir, (unsigned long long)st->bytes,
		            (unsigned long long)st->max_bytes);
		store_make_room(st, 0);
	}
}

struct edge_store *edge_store_open(const char *dir, uint64_t max_bytes, char *err,
                                   size_t errlen)
{
	struct edge_store *st;

	if (!dir || !*dir || strlen(dir) > 2048) {
		snprintf(err, errlen, "cache directory missing or too long");
		return NULL;
	}
	st = calloc(1, sizeof *st);
	if (!st) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	st->magic = STORE_MAGIC;
	st->max_bytes = max_bytes;
	st->nbuckets = 1024;
	st->dir = strdup(dir);
	st->buckets = calloc(st->nbuckets, sizeof *st->buckets);
	if (!st->dir || !st->buckets) {
		snprintf(err, errlen, "out of memory");
		edge_store_free(st);
		return NULL;
	}
	/* "dir/" and "dir" are one store */
	while (strlen(st->dir) > 1 && st->dir[strlen(st->dir) - 1] == '/')
		st->dir[strlen(st->dir) - 1] = '\0';
	if (store_dirs(st, err, errlen) != 0) {
		edge_store_free(st);
		return NULL;
	}
	store_clean_tmp(st);
	store_scan(st);
	return st;
}

void edge_store_free(struct edge_store *st)
{
	if (!st)
		return;
	EC_ASSERT(st->magic == STORE_MAGIC);
	st->on_change = NULL; /* closing the store removes nothing from the inventory */
	while (st->lru_head)
		index_remove(st, st->lru_head);
	free(st->buckets);
	free(st->dir);
	st->magic = 0;
	free(st);
}

void edge_store_stats(const struct edge_store *st, struct edge_store_stats *out)
{
	out->bytes = st->bytes;
	out->max_bytes = st->max_bytes;
	out->objects = st->objects;
	out->evictions = st->evictions;
	out->dropped = st->dropped;
}

const char *edge_store_dir(const struct edge_store *st)
{
	return st->dir;
}

/* --- lookups ----------------------------------------------------------------------- */

void edge_store_mem_cache(struct edge_store *st, size_t max_obj, size_t max_total)
{
	st->mem_obj_max = max_obj;
	st->mem_max = max_total;
}

/* After a successful open: copies a small object into memory if there is room, then
 * answers from the copy (closes out->fd). A failed read leaves out as it was. */
static void store_mem_load(struct edge_store *st, struct store_entry *e, struct edge_obj *out)
{
	uint64_t len = out->content_length;
	struct store_mem *m;

	if (len > st->mem_obj_max || st->mem_bytes + len > st->mem_max)
		return;
	m = malloc(sizeof *m + (size_t)len);
	if (!m)
		return;
	if (len && pread(out->fd, m->body, (size_t)len, out->header_len) != (ssize_t)len) {
		free(m);
		return; /* served from the file; the next lookup tries again */
	}
	m->meta = *out;
	m->meta.fd = -1;
	m->meta.mem = NULL;
	e->mem = m;
	st->mem_bytes += len;
	close(out->fd);
	out->fd = -1;
	out->mem = m->body;
}

int edge_store_lookup(struct edge_store *st, const char *path, size_t path_len,
                      struct edge_obj *out)
{
	struct store_entry *e;
	uint8_t key[32];
	uint64_t fsize = 0;
	const char *why;
	char p[4096];
	int fd;

	EC_ASSERT(st && st->magic == STORE_MAGIC);
	key_of(path, path_len, key);
	e = index_find(st, key);
	if (!e)
		return EC_ENOENT;
	if (e->mem) {
		*out = e->mem->meta;
		out->mem = e->mem->body;
		lru_unlink(st, e);
		lru_push_head(st, e);
		return 0;
	}
	obj_path(st, key, p, sizeof p);
	fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT) {
			ec_log_warn("cache %s: object for %.*s vanished from disk; dropping it",
			            st->dir, (int)path_len, path);
			index_remove(st, e);
			return EC_ENOENT;
		}
		return EC_EIO;
	}
	memset(out, 0, sizeof *out);
	why = hdr_read(fd, key, out, &fsize, NULL, NULL);
	if (why && strcmp(why, "read error") == 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return EC_EIO;
	}
	if (why) {
		ec_log_warn("cache %s: object for %.*s is invalid (%s); removing it", st->dir,
		            (int)path_len, path, why);
		close(fd);
		entry_drop(st, e);
		st->dropped++;
		return EC_ENOENT;
	}
	out->fd = fd;
	lru_unlink(st, e);
	lru_push_head(st, e);
	store_mem_load(st, e, out);
	return 0;
}

int edge_store_has(const struct edge_store *st, const char *path, size_t path_len)
{
	uint8_t key[32];
	key_of(path, path_len, key);
	return index_find(st, key) != NULL;
}

int edge_store_remove(struct edge_store *st, const char *path, size_t path_len)
{
	struct store_entry *e;
	uint8_t key[32];
	key_of(path, path_len, key);
	e = index_find(st, key);
	if (!e)
		return EC_ENOENT;
	entry_drop(st, e);
	return 0;
}

/* --- writers ----------------------------------------------------------------------- */

static int write_all(int fd, const void *data, size_t len, off_t off)
{
	const uint8_t *p = data;
	while (len > 0) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return EC_EIO;
		}
		if (n == 0) {
			errno = EIO;
			return EC_EIO;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

int edge_store_begin(struct edge_store *st, const char *path, size_t path_len,
                     const struct edge_obj_info *info, int64_t content_length,
                     struct edge_store_writer **out)
{
	struct edge_store_writer *w;
	const char *ct = info && info->ctype ? info->ctype : "";
	const char *et = info && info->etag ? info->etag : "";
	const char *lm = info && info->lastmod ? info->lastmod : "";
	size_t lc = strlen(ct), le = strlen(et), ll = strlen(lm);
	uint8_t rnd[8];
	char hx[17];
	uint8_t *s;

	EC_ASSERT(st && st->magic == STORE_MAGIC);
	*out = NULL;
	if (path_len == 0 || path_len > EDGE_STORE_PATH_MAX || lc > EDGE_STORE_CTYPE_MAX ||
	    le > EDGE_STORE_ETAG_MAX || ll > EDGE_STORE_LASTMOD_MAX)
		return EC_EINVAL;
	if (content_length >= 0 &&
	    (uint64_t)content_length + HDR_FIXED + lc + le + ll + path_len > st->max_bytes)
		return EC_ETOOBIG;
	w = calloc(1, sizeof *w);
	if (!w)
		return EC_EIO;
	w->magic = WRITER_MAGIC;
	w->st = st;
	w->announced = content_length;
	key_of(path, path_len, w->key);
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		/* never fails for 8 bytes once the pool is up; fall back to a clock */
		uint64_t t = (uint64_t)ec_now_us() ^ ((uint64_t)getpid() << 32);
		memcpy(rnd, &t, sizeof rnd);
	}
	for (int i = 0; i < 8; i++)
		snprintf(hx + 2 * i, 3, "%02x", rnd[i]);
	snprintf(w->tmp_path, sizeof w->tmp_path, "%s/tmp/%s.part", st->dir, hx);
	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		int saved = errno;
		free(w);
		errno = saved;
		return EC_EIO;
	}
	memcpy(w->header, hdr_magic, sizeof hdr_magic);
	put_u32(w->header + 8, HDR_VERSION);
	w->header_len = (uint32_t)(HDR_FIXED + lc + le + ll + path_len);
	put_u32(w->header + 12, w->header_len);
	put_u64(w->header + 16, content_length >= 0 ? (uint64_t)content_length : 0);
	put_u16(w->header + 56, (uint16_t)lc);
	put_u16(w->header + 58, (uint16_t)le);
	put_u16(w->header + 60, (uint16_t)ll);
	put_u16(w->header + 62, (uint16_t)path_len);
	s = w->header + HDR_FIXED;
	memcpy(s, ct, lc);
	memcpy(s + lc, et, le);
	memcpy(s + lc + le, lm, ll);
	memcpy(s + lc + le + ll, path, path_len);
	w->path = (const char *)s + lc + le + ll;
	w->path_len = path_len;
	/* the provisional header has a zero digest; its length makes a torn file invalid */
	if (write_all(w->fd, w->header, w->header_len, 0) != 0) {
		int saved = errno;
		edge_store_abort(&w);
		errno = saved;
		return EC_EIO;
	}
	*out = w;
	return 0;
}

int edge_store_write(struct edge_store_writer *w, const void *data, size_t len)
{
	EC_ASSERT(w && w->magic == WRITER_MAGIC);
	if ((w->announced >= 0 && w->written + len > (uint64_t)w->announced) ||
	    w->header_len + w->written + len > w->st->max_bytes)
		return EC_ETOOBIG;
	if (write_all(w->fd, data, len, (off_t)(w->header_len + w->written)) != 0)
		return EC_EIO;
	w->written += len;
	return 0;
}

uint64_t edge_store_written(const struct edge_store_writer *w)
{
	return w->written;
}

static int fsync_dir(const char *path)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rc;
	if (fd < 0)
		return EC_EIO;
	rc = fsync(fd);
	if (rc != 0) {
		int saved = errno;
		close(fd);
		errno = saved;
		return EC_EIO;
	}
	close(fd);
	return 0;
}

int edge_store_commit(struct edge_store_writer **wp, const uint8_t sha256[32])
{
	struct edge_store_writer *w = *wp;
	struct edge_store *st;
	struct store_entry *e, *old;
	uint64_t size;
	char final[4096], dir[4096], hx[65];
	int rc;

	EC_ASSERT(w && w->magic == WRITER_MAGIC);
	st = w->st;
	if (w->announced >= 0 && w->written != (uint64_t)w->announced) {
		edge_store_abort(wp);
		return EC_EINVAL;
	}
	put_u64(w->header + 16, w->written);
	memcpy(w->header + 24, sha256, 32);
	put_u64(w->header + 64, (uint64_t)ec_wall_ms());
	if (write_all(w->fd, w->header, HDR_FIXED, 0) != 0 || fsync(w->fd) != 0)
		goto fail_errno;
	size = w->header_len + w->written;
	old = index_find(st, w->key);
	if (old)
		entry_drop(st, old); /* an older copy: the new one replaces it */
	rc = store_make_room(st, size);
	if (rc != 0) {
		edge_store_abort(wp);
		return rc;
	}
	e = entry_new(w->key, w->path, w->path_len);
	if (!e) {
		errno = ENOMEM;
		goto fail_errno;
	}
	obj_path(st, w->key, final, sizeof final);
	if (rename(w->tmp_path, final) != 0) {
		free(e);
		goto fail_errno;
	}
	hex32(w->key, hx);
	snprintf(dir, sizeof dir, "%s/objects/%.2s", st->dir, hx);
	if (fsync_dir(dir) != 0) {
		/* renamed but maybe not durable: keep serving it; a crash drops it at worst */
		ec_log_warn("cache %s: fsync of %s failed: %s", st->dir, dir, strerror(errno));
	}
	e->size = size;
	e->atime_s = ec_wall_s_coarse();
	index_insert(st, e, 1);
	close(w->fd);
	w->magic = 0;
	free(w);
	*wp = NULL;
	return 0;

fail_errno: {
		int saved = errno;
		edge_store_abort(wp);
		errno = saved;
		return EC_EIO;
	}
}

void edge_store_abort(struct edge_store_writer **wp)
{
	struct edge_store_writer *w = wp ? *wp : NULL;
	if (!w)
		return;
	EC_ASSERT(w->magic == WRITER_MAGIC);
	close(w->fd);
	if (unlink(w->tmp_path) != 0 && errno != ENOENT)
		ec_log_warn("cache %s: cannot remove %s: %s", w->st->dir, w->tmp_path,
		            strerror(errno));
	w->magic = 0;
	free(w);
	*wp = NULL;
}

/* --- inventory --------------------------------------------------------------------- */

void edge_store_on_change(struct edge_store *st, edge_store_change_cb cb, void *arg)
{
	EC_ASSERT(st && st->magic == STORE_MAGIC);
	st->on_change = cb;
	st->on_change_arg = arg;
}

size_t edge_store_foreach(const struct edge_store *st, edge_store_path_cb cb, void *arg)
{
	size_t n = 0;
	for (const struct store_entry *e = st->lru_head; e; e = e->next, n++)
		cb(arg, e->path, e->path_len);
	return n;
}
