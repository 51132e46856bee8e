/* edge_store: the box's object cache on disk. One file per object under
 * <dir>/objects/<2 hex>/<sha-256 hex of the object path>: a fixed header (metadata) then the
 * body, committed by one atomic rename; an in-memory index with LRU eviction by size.
 * Does not hash bodies or talk HTTP: callers verify digests and pass the result in. */
#ifndef ECHOS_EDGE_EDGE_STORE_H
#define ECHOS_EDGE_EDGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#define EDGE_STORE_PATH_MAX 2048   /* longest object path stored */
#define EDGE_STORE_CTYPE_MAX 255
#define EDGE_STORE_ETAG_MAX 255
#define EDGE_STORE_LASTMOD_MAX 63

struct edge_store;
struct edge_store_writer;

/* Metadata of one stored object, as read from its header. */
struct edge_obj {
	int fd;                    /* open read-only on the object file, owned by the caller;
	                            * -1 when the body is in memory (mem) */
	const uint8_t *mem;        /* the body in the store's memory copy, or NULL: borrowed,
	                            * valid until the next call that changes the store */
	uint32_t header_len;       /* body starts at this file offset */
	uint64_t content_length;   /* body bytes */
	uint8_t sha256[32];        /* digest of the body, verified at commit */
	int64_t stored_ms;         /* wall clock of the commit */
	char ctype[EDGE_STORE_CTYPE_MAX + 1];     /* Content-Type from the origin, "" if none */
	char etag[EDGE_STORE_ETAG_MAX + 1];       /* ETag as sent, quotes included */
	char lastmod[EDGE_STORE_LASTMOD_MAX + 1]; /* Last-Modified as sent, "" if none */
};

/* What a new object carries besides its body. Strings are borrowed for the call. */
struct edge_obj_info {
	const char *ctype;
	const char *etag;
	const char *lastmod;
};

struct edge_store_stats {
	uint64_t bytes;            /* file bytes of all indexed objects (headers included) */
	uint64_t max_bytes;
	uint64_t objects;
	uint64_t evictions;        /* objects removed to make room */
	uint64_t dropped;          /* invalid files removed at startup or on open */
};

/* Opens (creating what is missing) the store in `dir`: empties <dir>/tmp, scans
 * <dir>/objects and rebuilds the index, removing (and logging) every file whose header is
 * invalid or whose size does not match it. Returns a new store owned by the caller (free
 * with edge_store_free), or NULL with the reason in err. */
struct edge_store *edge_store_open(const char *dir, uint64_t max_bytes, char *err,
                                   size_t errlen);
void edge_store_free(struct edge_store *st);

void edge_store_stats(const struct edge_store *st, struct edge_store_stats *out);
const char *edge_store_dir(const struct edge_store *st);

/* Looks up the object for `path` (normalized, absolute). On a hit, opens it, checks its
 * header and length, marks it most recently used and fills *out (out->fd is the caller's
 * to close). A file that fails the checks is removed, logged, and reported as a miss.
 * Returns 0, EC_ENOENT (miss) or EC_EIO (open/read failed, errno set; still indexed). */
int edge_store_lookup(struct edge_store *st, const char *path, size_t path_len,
                      struct edge_obj *out);
/* Keeps the header and body of objects of at most `max_obj` body bytes in memory once
 * they were read, up to `max_total` bytes in all (first come, kept until the object
 * leaves the index), so that hot small objects cost no file system call. Off (0) by
 * default. With it on, edge_store_lookup may answer with out->mem and out->fd = -1. */
void edge_store_mem_cache(struct edge_store *st, size_t max_obj, size_t max_total);
/* Returns 1 if `path` is in the index (no disk access), else 0. */
int edge_store_has(const struct edge_store *st, const char *path, size_t path_len);
/* Removes the object for `path` if present. Returns 0 or EC_ENOENT. */
int edge_store_remove(struct edge_store *st, const char *path, size_t path_len);

/* Starts a new object: creates <dir>/tmp/<random>.part and writes a provisional header.
 * content_length < 0 when unknown. Sets *out to a new writer owned by the caller, which
 * must end it with edge_store_commit or edge_store_abort.
 * Returns 0, EC_EINVAL (path or metadata too long), EC_ETOOBIG (larger than the whole
 * cache) or EC_EIO (errno set). */
int edge_store_begin(struct edge_store *st, const char *path, size_t path_len,
                     const struct edge_obj_info *info, int64_t content_length,
                     struct edge_store_writer **out);
/* Appends body bytes. Returns 0, EC_ETOOBIG (more than announced or than the cache) or
 * EC_EIO (errno set). The writer stays valid: the caller aborts it. */
int edge_store_write(struct edge_store_writer *w, const void *data, size_t len);
/* Commits: writes the final header with `sha256` (already verified by the caller), fsyncs,
 * evicts least recently used objects until it fits, renames into place and fsyncs the
 * directory. Takes the writer (sets *wp to NULL), also on failure, which removes the temp
 * file. Returns 0, EC_EINVAL (fewer bytes than announced), EC_ETOOBIG or EC_EIO (errno). */
int edge_store_commit(struct edge_store_writer **wp, const uint8_t sha256[32]);
/* Abandons the writer and removes its temp file. Sets *wp to NULL; NULL is a no-op. */
void edge_store_abort(struct edge_store_writer **wp);
uint64_t edge_store_written(const struct edge_store_writer *w);

/* Inventory: called with the object path whenever an object enters the index by a commit
 * (is_added 1) or leaves it (eviction, replacement, damage, removal: 0). Objects found at
 * startup are not announced: edge_store_foreach() lists them. `path` is borrowed. */
typedef void (*edge_store_change_cb)(void *arg, const char *path, size_t len, int is_added);
void edge_store_on_change(struct edge_store *st, edge_store_change_cb cb, void *arg);
/* Calls cb for every indexed object's path, most recently used first; returns the count.
 * cb must not change the store. */
typedef void (*edge_store_path_cb)(void *arg, const char *path, size_t len);
size_t edge_store_foreach(const struct edge_store *st, edge_store_path_cb cb, void *arg);

/* The cache key: sha-256 of the object path, as 64 lowercase hex digits + NUL. */
void edge_store_key_hex(const char *path, size_t path_len, char out[65]);

#endif
