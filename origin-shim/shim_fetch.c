/* shim_fetch: upstream GETs with libcurl into anonymous spool files, hashing as bytes
 * arrive. One easy handle per fetcher keeps upstream connections alive between requests.
 * Does not follow redirects, retry, or log: the caller decides what a failure means. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "ec_cfg.h"
#include "ec_err.h"
#include "shim_fetch.h"

#define FETCHER_MAGIC 0x5f37c4a1u
#define FETCH_BUFFER_BYTES (256 * 1024)
#define SHIM_USER_AGENT "echos-origin-shim/" EC_VERSION

struct shim_fetcher {
	unsigned magic;
	CURL *easy;                   /* owned; its connection cache is the keep-alive */
	struct curl_slist *headers;   /* owned: request headers sent upstream */
	struct shim_fetch_opts *opts; /* borrowed */
	struct shim_sha256 sha;
	struct shim_object *obj;      /* borrowed during shim_fetch_get() only */
	char errbuf[CURL_ERROR_SIZE];
};

int shim_fetch_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : EC_EIO;
}

void shim_fetch_global_fini(void)
{
	curl_global_cleanup();
}

void shim_object_fini(struct shim_object *obj)
{
	if (obj->fd >= 0)
		close(obj->fd);
	obj->fd = -1;
}

__attribute__((format(printf, 3, 4)))
static void fetch_fail(struct shim_object *o, int code, const char *fmt, ...)
{
	va_list ap;

	if (o->error != 0)
		return;  /* the first cause is the one worth reporting */
	o->error = code;
	va_start(ap, fmt);
	vsnprintf(o->reason, sizeof o->reason, fmt, ap);
	va_end(ap);
}

/* Opens an anonymous file in dir: O_TMPFILE where the file system has it, else a named
 * temp file unlinked at once. Returns the fd or -1 with errno set. */
static int fetch_spool_open(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
		return fd;
	if ((size_t)snprintf(path, sizeof path, "%s/echos-shim.XXXXXX", dir) >= sizeof path) {
		errno = ENAMETOOLONG;
		return -1;
	}
	fd = mkostemp(path, O_CLOEXEC);
	if (fd >= 0)
		unlink(path);
	return fd;
}

static void fetch_reset_headers(struct shim_object *o)
{
	o->content_type[0] = o->last_modified[0] = o->etag[0] = '\0';
	o->repr_digest[0] = o->cache_control[0] = o->content_encoding[0] = '\0';
	o->location[0] = o->date[0] = '\0';
}

/* Returns 1 if [v, v+n) holds a byte no header value may carry (CTL other than HTAB). */
static int fetch_has_ctl(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return 1;
	}
	return 0;
}

/* Copies a header value into dst; appends with ", " when `append` (list headers).
 * Returns 0, or -1 if it does not fit. */
static int fetch_store(char *dst, size_t dstlen, const char *v, size_t n, int append)
{
	size_t used = append ? strlen(dst) : 0;
	size_t sep = used ? 2 : 0;

	if (used + sep + n + 1 > dstlen)
		return -1;
	if (sep)
		memcpy(dst + used, ", ", 2);
	memcpy(dst + used + sep, v, n);
	dst[used + sep + n] = '\0';
	return 0;
}

/* libcurl header callback: one raw header line, CRLF included. A status line starts a
 * new response (after 1xx), so the fields seen so far are dropped. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	struct shim_fetcher *f = arg;
	struct shim_object *o = f->obj;
	size_t len = size * nitems, nlen, vlen;
	const char *colon, *v;
	char *dst = NULL;
	size_t dstlen = 0;

	if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		fetch_reset_headers(o);
		return len;
	}
	colon = memchr(buf, ':', len);
	if (colon == NULL)
		return len;
	nlen = (size_t)(colon - buf);
	v = colon + 1;
	vlen = len - nlen - 1;
	while (vlen > 0 && (*v == ' ' || *v == '\t'))
		v++, vlen--;
	while (vlen > 0 && strchr(" \t\r\n", v[vlen - 1]) != NULL)
		vlen--;

#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(buf, name, nlen) == 0)
	if (IS("Repr-Digest")) {
		/* the content owner's digest travels unchanged; one we cannot carry is an error,
		 * never silently replaced by ours */
		if (fetch_has_ctl(v, vlen) ||
		    fetch_store(o->repr_digest, sizeof o->repr_digest, v, vlen, 1) != 0) {
			fetch_fail(o, EC_EINVAL, "%s", "unusable Repr-Digest header from upstream");
			return 0;
		}
		return len;
	}
	if (IS("Content-Type"))
		dst = o->content_type, dstlen = sizeof o->content_type;
	else if (IS("Last-Modified"))
		dst = o->last_modified, dstlen = sizeof o->last_modified;
	else if (IS("ETag"))
		dst = o->etag, dstlen = sizeof o->etag;
	else if (IS("Cache-Control"))
		dst = o->cache_control, dstlen = sizeof o->cache_control;
	else if (IS("Content-Encoding"))
		dst = o->content_encoding, dstlen = sizeof o->content_encoding;
	else if (IS("Location"))
		dst = o->location, dstlen = sizeof o->location;
	else if (IS("Date"))
		dst = o->date, dstlen = sizeof o->date;
#undef IS
	/* XXX: an over-long or malformed value of these is dropped rather than failing the
	 * object; none of them changes the bytes served */
	if (dst != NULL && !fetch_has_ctl(v, vlen))
		if (fetch_store(dst, dstlen, v, vlen, 0) != 0)
			dst[0] = '\0';
	return len;
}

static int fetch_write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* libcurl write callback: body bytes to the spool file and the hash, within the bound. */
static size_t on_body(char *buf, size_t size, size_t nitems, void *arg)
{
	struct shim_fetcher *f = arg;
	struct shim_object *o = f->obj;
	size_t len = size * nitems;
	uint64_t max = atomic_load(&f->opts->max_bytes);

	if (o->size_bytes + len > max) {
		fetch_fail(o, EC_ETOOBIG, "%s", "object larger than max_object_size");
		return 0;
	}
	if (fetch_write_all(o->fd, buf, len) != 0) {
		fetch_fail(o, EC_EFULL, "spool write: %s", strerror(errno));
		return 0;
	}
	if (shim_sha256_update(&f->sha, buf, len) != 0) {
		fetch_fail(o, EC_EIO, "%s", "sha-256 update failed");
		return 0;
	}
	o->size_bytes += len;
	return len;
}

/* libcurl progress callback: lets shutdown abort transfers in flight. */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
	struct shim_fetcher *f = arg;

	return atomic_load(&f->opts->is_stopping) ? 1 : 0;
}

/* Returns a new fetcher owned by the caller; see shim_fetch.h. */
struct shim_fetcher *shim_fetcher_new(struct shim_fetch_opts *opts)
{
	struct shim_fetcher *f = calloc(1, sizeof *f);

	if (f == NULL)
		return NULL;
	f->magic = FETCHER_MAGIC;
	f->opts = opts;
	f->easy = curl_easy_init();
	f->headers = curl_slist_append(NULL, "User-Agent: " SHIM_USER_AGENT);
	if (f->easy == NULL || f->headers == NULL || shim_sha256_init(&f->sha) != 0) {
		shim_fetcher_free(f);
		return NULL;
	}
	curl_easy_setopt(f->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(f->easy, CURLOPT_ERRORBUFFER, f->errbuf);
	curl_easy_setopt(f->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(f->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(f->easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(f->easy, CURLOPT_HTTPHEADER, f->headers);
	curl_easy_setopt(f->easy, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(f->easy, CURLOPT_BUFFERSIZE, (long)FETCH_BUFFER_BYTES);
	curl_easy_setopt(f->easy, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(f->easy, CURLOPT_HEADERDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(f->easy, CURLOPT_WRITEDATA, f);
	curl_easy_setopt(f->easy, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(f->easy, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(f->easy, CURLOPT_XFERINFODATA, f);
	curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
	return f;
}

void shim_fetcher_free(struct shim_fetcher *f)
{
	if (f == NULL)
		return;
	EC_ASSERT(f->magic == FETCHER_MAGIC);
	if (f->easy != NULL)
		curl_easy_cleanup(f->easy);
	curl_slist_free_all(f->headers);
	shim_sha256_fini(&f->sha);
	f->magic = 0;
	free(f);
}

static int fetch_curl_code(CURLcode rc)
{
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return EC_ETIMEOUT;
	case CURLE_FILESIZE_EXCEEDED:
		return EC_ETOOBIG;
	case CURLE_ABORTED_BY_CALLBACK:
		return EC_ESTATE;
	default:
		return EC_EIO;
	}
}

/* Sets what every transfer sets: URL and the timeouts in force now. */
static void fetch_prepare(struct shim_fetcher *f, const char *url)
{
	int64_t timeout_ms = atomic_load(&f->opts->timeout_ms);

	f->errbuf[0] = '\0';
	curl_easy_setopt(f->easy, CURLOPT_URL, url);
	curl_easy_setopt(f->easy, CURLOPT_CONNECTTIMEOUT_MS,
	                 (long)atomic_load(&f->opts->connect_timeout_ms));
	/* "no byte for timeout_ms" rather than a cap on the whole transfer, so large
	 * objects are not cut; it also bounds the wait for the response headers */
	curl_easy_setopt(f->easy, CURLOPT_LOW_SPEED_TIME, (long)((timeout_ms + 999) / 1000));
	curl_easy_setopt(f->easy, CURLOPT_MAXFILESIZE_LARGE,
	                 (curl_off_t)atomic_load(&f->opts->max_bytes));
}

/* After a transfer: status, Content-Length, the validator's strength, the failure. */
static void fetch_finish(struct shim_fetcher *f, struct shim_object *obj, CURLcode rc)
{
	curl_off_t clen = -1;
	time_t lm, date;

	curl_easy_getinfo(f->easy, CURLINFO_RESPONSE_CODE, &obj->status);
	if (curl_easy_getinfo(f->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &clen) == CURLE_OK)
		obj->content_length = clen >= 0 ? (int64_t)clen : -1;
	if (obj->etag[0] == '"') {
		obj->has_strong_validator = 1;
	} else if (obj->last_modified[0] && obj->date[0]) {
		/* RFC 9110 8.8.2.2: a Last-Modified well before Date is a strong validator */
		lm = curl_getdate(obj->last_modified, NULL);
		date = curl_getdate(obj->date, NULL);
		obj->has_strong_validator = lm > 0 && date > 0 && date - lm >= 60;
	}
	if (rc == CURLE_FILESIZE_EXCEEDED)
		fetch_fail(obj, EC_ETOOBIG, "%s", "object larger than max_object_size");
	if (rc != CURLE_OK)
		fetch_fail(obj, fetch_curl_code(rc), "%s",
		           f->errbuf[0] ? f->errbuf : curl_easy_strerror(rc));
}

/* Fetches url; see shim_fetch.h. The easy handle keeps its live connections across
 * calls: options are set again each time, never reset. */
int shim_fetch_get(struct shim_fetcher *f, const char *url, struct shim_object *obj)
{
	CURLcode rc;

	EC_ASSERT(f->magic == FETCHER_MAGIC);
	memset(obj, 0, sizeof *obj);
	obj->content_length = -1;
	obj->fd = fetch_spool_open(f->opts->spool_dir);
	if (obj->fd < 0) {
		fetch_fail(obj, EC_EFULL, "spool: %s", strerror(errno));
		return obj->error;
	}
	if (shim_sha256_begin(&f->sha) != 0) {
		fetch_fail(obj, EC_EIO, "%s", "sha-256 init failed");
		shim_object_fini(obj);
		return obj->error;
	}
	f->obj = obj;
	fetch_prepare(f, url);
	curl_easy_setopt(f->easy, CURLOPT_HTTPGET, 1L);  /* also undoes a HEAD's NOBODY */
	rc = curl_easy_perform(f->easy);
	f->obj = NULL;
	fetch_finish(f, obj, rc);
	if (obj->error == 0 && shim_sha256_end(&f->sha, obj->sha256) != 0)
		fetch_fail(obj, EC_EIO, "%s", "sha-256 final failed");
	if (obj->error != 0)
		shim_object_fini(obj);
	return obj->error;
}

/* Sends HEAD; see shim_fetch.h. */
int shim_fetch_head(struct shim_fetcher *f, const char *url, struct shim_object *obj)
{
	CURLcode rc;

	EC_ASSERT(f->magic == FETCHER_MAGIC);
	memset(obj, 0, sizeof *obj);
	obj->fd = -1;
	obj->content_length = -1;
	f->obj = obj;
	fetch_prepare(f, url);
	curl_easy_setopt(f->easy, CURLOPT_NOBODY, 1L);
	rc = curl_easy_perform(f->easy);
	f->obj = NULL;
	fetch_finish(f, obj, rc);
	curl_easy_setopt(f->easy, CURLOPT_HTTPGET, 1L);
	return obj->error;
}
