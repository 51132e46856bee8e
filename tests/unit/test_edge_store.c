/* test_edge_store: the box's disk cache: commit and lookup, startup recovery (torn temp
 * files, truncated or corrupt objects, stray names), LRU eviction by size, write failures.
 * The Makefile links unit tests with common/ and policy/ only, so the module is included. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../edge/edge_store.c"

static char *mkdtemp_dir(void)
{
	char tpl[] = "/tmp/test_edge_store.XXXXXX";
	char *d = mkdtemp(tpl);
	assert_non_null(d);
	return strdup(d);
}

static void rm_rf(const char *dir)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void sha_of(const void *data, size_t len, uint8_t out[32])
{
	unsigned int n = 32;
	assert_int_equal(EVP_Digest(data, len, out, &n, EVP_sha256(), NULL), 1);
}

/* Stores `body` under `path`; returns the commit's result. */
static int put(struct edge_store *st, const char *path, const char *body, size_t len)
{
	struct edge_obj_info info = { "video/mp2t", "\"abc\"", "Tue, 01 Oct 2024 10:00:00 GMT" };
	struct edge_store_writer *w = NULL;
	uint8_t sha[32];
	int rc;

	rc = edge_store_begin(st, path, strlen(path), &info, (int64_t)len, &w);
	if (rc != 0)
		return rc;
	rc = edge_store_write(w, body, len);
	if (rc != 0) {
		edge_store_abort(&w);
		return rc;
	}
	sha_of(body, len, sha);
	return edge_store_commit(&w, sha);
}

static void obj_file(const char *dir, const char *path, char *out, size_t n)
{
	char hx[65];
	edge_store_key_hex(path, strlen(path), hx);
	snprintf(out, n, "%s/objects/%.2s/%s", dir, hx, hx);
}

static size_t count_files(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void write_file(const char *p, const void *data, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* --- tests ----------------------------------------------------------------------------- */

static void test_commit_then_lookup_returns_metadata_and_body(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256], buf[64];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_store_stats ss;
	struct edge_obj o;
	uint8_t sha[32];

	assert_non_null(st);
	assert_int_equal(put(st, "/v/a.ts", "hello world", 11), 0);
	assert_int_equal(edge_store_lookup(st, "/v/a.ts", 7, &o), 0);
	assert_int_equal(o.content_length, 11);
	assert_string_equal(o.ctype, "video/mp2t");
	assert_string_equal(o.etag, "\"abc\"");
	assert_string_equal(o.lastmod, "Tue, 01 Oct 2024 10:00:00 GMT");
	sha_of("hello world", 11, sha);
	assert_memory_equal(o.sha256, sha, 32);
	assert_int_equal(pread(o.fd, buf, 11, o.header_len), 11);
	assert_memory_equal(buf, "hello world", 11);
	close(o.fd);
	edge_store_stats(st, &ss);
	assert_int_equal(ss.objects, 1);
	assert_int_equal(ss.bytes, o.header_len + 11);
	assert_int_equal(edge_store_lookup(st, "/v/b.ts", 7, &o), EC_ENOENT);
	snprintf(buf, sizeof buf, "%s/tmp", dir);
	assert_int_equal(count_files(buf), 0);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_empty_body_is_a_valid_object(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_obj o;

	assert_int_equal(put(st, "/empty", "", 0), 0);
	assert_int_equal(edge_store_lookup(st, "/empty", 6, &o), 0);
	assert_int_equal(o.content_length, 0);
	close(o.fd);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_short_body_is_not_committed(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256], tmp[512];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_store_writer *w;
	struct edge_obj o;
	uint8_t sha[32] = { 0 };

	assert_int_equal(edge_store_begin(st, "/x", 2, NULL, 10, &w), 0);
	assert_int_equal(edge_store_write(w, "abc", 3), 0);
	assert_int_equal(edge_store_commit(&w, sha), EC_EINVAL);
	assert_null(w);
	assert_int_equal(edge_store_lookup(st, "/x", 2, &o), EC_ENOENT);
	snprintf(tmp, sizeof tmp, "%s/tmp", dir);
	assert_int_equal(count_files(tmp), 0);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_more_than_announced_is_refused(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_store_writer *w;

	assert_int_equal(edge_store_begin(st, "/x", 2, NULL, 2, &w), 0);
	assert_int_equal(edge_store_write(w, "abc", 3), EC_ETOOBIG);
	edge_store_abort(&w);
	assert_null(w);
	edge_store_abort(&w); /* NULL is a no-op */
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_object_larger_than_cache_is_refused(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256];
	struct edge_store *st = edge_store_open(dir, 4096, err, sizeof err);
	struct edge_store_writer *w = NULL;

	assert_int_equal(edge_store_begin(st, "/big", 4, NULL, 5000, &w), EC_ETOOBIG);
	assert_null(w);
	/* unknown length: refused while writing */
	assert_int_equal(edge_store_begin(st, "/big", 4, NULL, -1, &w), 0);
	{
		char buf[5000] = { 0 };
		assert_int_equal(edge_store_write(w, buf, sizeof buf), EC_ETOOBIG);
	}
	edge_store_abort(&w);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_reopen_rebuilds_the_index(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_store_stats ss;
	struct edge_obj o;

	assert_int_equal(put(st, "/a", "aaaa", 4), 0);
	assert_int_equal(put(st, "/b", "bbbbbbbb", 8), 0);
	edge_store_free(st);
	st = edge_store_open(dir, 1 << 20, err, sizeof err);
	assert_non_null(st);
	edge_store_stats(st, &ss);
	assert_int_equal(ss.objects, 2);
	assert_int_equal(ss.dropped, 0);
	assert_int_equal(edge_store_lookup(st, "/b", 2, &o), 0);
	assert_int_equal(o.content_length, 8);
	close(o.fd);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

/* Recovery rows: what is planted in the cache before a restart, and what must remain. */
struct recovery_row {
	const char *name;
	void (*plant)(const char *dir);
	uint64_t objects_left;   /* "/keep" is always stored and must survive */
	uint64_t dropped;
};

static void plant_torn_temp(const char *dir)
{
	char p[512];
	snprintf(p, sizeof p, "%s/tmp/0123456789abcdef.part", dir);
	write_file(p, "ECHOSOBJ partial", 16);
}

static void plant_truncated_object(const char *dir)
{
	char p[512];
	obj_file(dir, "/trunc", p, sizeof p);
	assert_int_equal(truncate(p, 100), 0);
}

static void plant_bad_magic(const char *dir)
{
	char p[512];
	int fd;
	obj_file(dir, "/trunc", p, sizeof p);
	fd = open(p, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "XXXX", 4, 0), 4);
	close(fd);
}

static void plant_stray_name(const char *dir)
{
	char p[512];
	snprintf(p, sizeof p, "%s/objects/00/not-an-object", dir);
	write_file(p, "x", 1);
}

static void plant_wrong_name(const char *dir)
{
	/* a valid object under another object's name: the path check catches it */
	char from[512], to[512];
	obj_file(dir, "/trunc", from, sizeof from);
	obj_file(dir, "/elsewhere", to, sizeof to);
	assert_int_equal(rename(from, to), 0);
}

static void plant_appended_bytes(const char *dir)
{
	char p[512];
	int fd;
	obj_file(dir, "/trunc", p, sizeof p);
	fd = open(p, O_WRONLY | O_APPEND);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "zz", 2), 2);
	close(fd);
}

static const struct recovery_row recovery_rows[] = {
	{ "torn temp file is removed, objects stay", plant_torn_temp, 2, 0 },
	{ "truncated object is removed", plant_truncated_object, 1, 1 },
	{ "object with a bad magic is removed", plant_bad_magic, 1, 1 },
	{ "stray file name in objects/ is removed", plant_stray_name, 2, 1 },
	{ "object under another path's name is removed", plant_wrong_name, 1, 1 },
	{ "object longer than its header says is removed", plant_appended_bytes, 1, 1 },
};

static void test_recovery_rows(void **state)
{
	for (size_t i = 0; i < sizeof recovery_rows / sizeof recovery_rows[0]; i++) {
		const struct recovery_row *r = &recovery_rows[i];
		char *dir = mkdtemp_dir();
		char err[256], tmp[512];
		struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
		struct edge_store_stats ss;
		struct edge_obj o;

		print_message("row: %s\n", r->name);
		assert_int_equal(put(st, "/keep", "kept", 4), 0);
		assert_int_equal(put(st, "/trunc", "0123456789", 10), 0);
		edge_store_free(st);
		r->plant(dir);
		st = edge_store_open(dir, 1 << 20, err, sizeof err);
		assert_non_null(st);
		edge_store_stats(st, &ss);
		assert_int_equal(ss.objects, r->objects_left);
		assert_int_equal(ss.dropped, r->dropped);
		assert_int_equal(edge_store_lookup(st, "/keep", 5, &o), 0);
		close(o.fd);
		snprintf(tmp, sizeof tmp, "%s/tmp", dir);
		assert_int_equal(count_files(tmp), 0);
		snprintf(tmp, sizeof tmp, "%s/objects/00", dir);
		edge_store_free(st);
		rm_rf(dir);
		free(dir);
	}
}

static void test_lookup_drops_a_file_damaged_while_running(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256], p[512];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_store_stats ss;
	struct edge_obj o;

	assert_int_equal(put(st, "/a", "aaaaaaaaaa", 10), 0);
	obj_file(dir, "/a", p, sizeof p);
	assert_int_equal(truncate(p, 50), 0);
	assert_int_equal(edge_store_lookup(st, "/a", 2, &o), EC_ENOENT);
	edge_store_stats(st, &ss);
	assert_int_equal(ss.objects, 0);
	assert_int_equal(access(p, F_OK), -1);
	/* deleted behind our back: a miss, and the entry goes */
	assert_int_equal(put(st, "/b", "b", 1), 0);
	obj_file(dir, "/b", p, sizeof p);
	assert_int_equal(unlink(p), 0);
	assert_int_equal(edge_store_lookup(st, "/b", 2, &o), EC_ENOENT);
	assert_int_equal(edge_store_has(st, "/b", 2), 0);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_lru_evicts_least_recently_used(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256], body[1500];
	struct edge_store *st;
	struct edge_store_stats ss;
	struct edge_obj o;

	memset(body, 'x', sizeof body);
	/* each object is ~1500 bytes + ~100 header: three fit in 5000, four do not */
	st = edge_store_open(dir, 5000, err, sizeof err);
	assert_non_null(st);
	assert_int_equal(put(st, "/1", body, sizeof body), 0);
	assert_int_equal(put(st, "/2", body, sizeof body), 0);
	assert_int_equal(put(st, "/3", body, sizeof body), 0);
	assert_int_equal(edge_store_lookup(st, "/1", 2, &o), 0); /* /1 becomes recent */
	close(o.fd);
	assert_int_equal(put(st, "/4", body, sizeof body), 0);
	assert_int_equal(edge_store_has(st, "/1", 2), 1);
	assert_int_equal(edge_store_has(st, "/2", 2), 0);
	assert_int_equal(edge_store_has(st, "/3", 2), 1);
	assert_int_equal(edge_store_has(st, "/4", 2), 1);
	edge_store_stats(st, &ss);
	assert_int_equal(ss.evictions, 1);
	assert_true(ss.bytes <= 5000);
	edge_store_free(st);
	/* a smaller capacity at restart evicts down to it */
	st = edge_store_open(dir, 4096, err, sizeof err);
	edge_store_stats(st, &ss);
	assert_true(ss.bytes <= 4096);
	assert_int_equal(ss.objects, 2);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_replacing_an_object_keeps_one_copy(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256], buf[8];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_store_stats ss;
	struct edge_obj o;

	assert_int_equal(put(st, "/a", "old", 3), 0);
	assert_int_equal(put(st, "/a", "newer", 5), 0);
	edge_store_stats(st, &ss);
	assert_int_equal(ss.objects, 1);
	assert_int_equal(edge_store_lookup(st, "/a", 2, &o), 0);
	assert_int_equal(pread(o.fd, buf, 5, o.header_len), 5);
	assert_memory_equal(buf, "newer", 5);
	assert_int_equal(ss.bytes, o.header_len + 5);
	close(o.fd);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

/* Failure injection: RLIMIT_FSIZE makes the write fail like a full disk would. */
static void test_write_failure_reports_eio_and_leaves_nothing(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256], tmp[512], big[8192];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_store_writer *w;
	struct rlimit old, lim;
	int rc;

	memset(big, 'y', sizeof big);
	assert_int_equal(edge_store_begin(st, "/f", 2, NULL, sizeof big, &w), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 1024;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	rc = edge_store_write(w, big, sizeof big);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rc, EC_EIO);
	assert_int_equal(errno, EFBIG);
	edge_store_abort(&w);
	snprintf(tmp, sizeof tmp, "%s/tmp", dir);
	assert_int_equal(count_files(tmp), 0);
	assert_int_equal(edge_store_has(st, "/f", 2), 0);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

/* Records inventory changes for the tests below. */
struct change_log {
	char text[512];
};

static void on_change(void *arg, const char *path, size_t len, int is_added)
{
	struct change_log *l = arg;
	size_t n = strlen(l->text);
	snprintf(l->text + n, sizeof l->text - n, "%c%.*s ", is_added ? '+' : '-', (int)len,
	         path);
}

static void count_path(void *arg, const char *path, size_t len)
{
	(*(int *)arg)++;
}

static void test_small_objects_are_served_from_memory_until_they_leave(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256];
	struct edge_store *st = edge_store_open(dir, 1 << 20, err, sizeof err);
	struct edge_obj o;

	assert_non_null(st);
	edge_store_mem_cache(st, 16, 1024);
	assert_int_equal(put(st, "/s", "small body", 10), 0);
	assert_int_equal(put(st, "/big", "a body over sixteen bytes", 25), 0);
	/* small: the first lookup reads it into memory, later ones need no file */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(edge_store_lookup(st, "/s", 2, &o), 0);
		assert_int_equal(o.fd, -1);
		assert_non_null(o.mem);
		assert_memory_equal(o.mem, "small body", 10);
		assert_string_equal(o.etag, "\"abc\"");
	}
	/* over the per-object limit: a file as before */
	assert_int_equal(edge_store_lookup(st, "/big", 4, &o), 0);
	assert_true(o.fd >= 0);
	assert_null(o.mem);
	close(o.fd);
	/* removed from the index: the memory copy goes with it */
	assert_int_equal(edge_store_remove(st, "/s", 2), 0);
	assert_int_equal(edge_store_lookup(st, "/s", 2, &o), EC_ENOENT);
	edge_store_free(st);
	rm_rf(dir);
	free(dir);
}

static void test_inventory_hears_commits_and_removals_not_the_startup_scan(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256];
	struct edge_store *st = edge_store_open(dir, 4096, err, sizeof err);
	struct change_log log = { "" };
	int n = 0;

	assert_non_null(st);
	assert_int_equal(put(st, "/old", "x", 1), 0);
	edge_store_free(st);
	st = edge_store_open(dir, 4096, err, sizeof err);
	assert_non_null(st);
	edge_store_on_change(st, on_change, &log);
	assert_int_equal(edge_store_foreach(st, count_path, &n), 1);
	assert_int_equal(n, 1);
	assert_int_equal(put(st, "/a", "1", 1), 0);
	assert_int_equal(put(st, "/a", "2", 1), 0);  /* replaced: out, then in */
	assert_int_equal(edge_store_remove(st, "/old", 4), 0);
	assert_string_equal(log.text, "+/a -/a +/a -/old ");
	edge_store_free(st);                       /* closing is not a removal */
	assert_string_equal(log.text, "+/a -/a +/a -/old ");
	rm_rf(dir);
	free(dir);
}

static void test_open_fails_on_a_file_where_the_dir_should_be(void **state)
{
	char *dir = mkdtemp_dir();
	char err[256] = "", p[512];
	snprintf(p, sizeof p, "%s/cache", dir);
	write_file(p, "x", 1);
	assert_null(edge_store_open(p, 1 << 20, err, sizeof err));
	assert_true(strlen(err) > 0);
	rm_rf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_commit_then_lookup_returns_metadata_and_body),
		cmocka_unit_test(test_empty_body_is_a_valid_object),
		cmocka_unit_test(test_short_body_is_not_committed),
		cmocka_unit_test(test_more_than_announced_is_refused),
		cmocka_unit_test(test_object_larger_than_cache_is_refused),
		cmocka_unit_test(test_reopen_rebuilds_the_index),
		cmocka_unit_test(test_recovery_rows),
		cmocka_unit_test(test_lookup_drops_a_file_damaged_while_running),
		cmocka_unit_test(test_lru_evicts_least_recently_used),
		cmocka_unit_test(test_replacing_an_object_keeps_one_copy),
		cmocka_unit_test(test_write_failure_reports_eio_and_leaves_nothing),
		cmocka_unit_test(test_open_fails_on_a_file_where_the_dir_should_be),
		cmocka_unit_test(test_small_objects_are_served_from_memory_until_they_leave),
		cmocka_unit_test(test_inventory_hears_commits_and_removals_not_the_startup_scan),
	};
	ec_log_open("test_edge_store", EC_LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
