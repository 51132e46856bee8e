/* test_ec_redis: the async Redis link against a real redis-server this test starts itself
 * on a free loopback port (no persistence, own temp dir): connect, replies, a killed
 * server, EC_EAGAIN while down, reconnection within the backoff bounds, the command
 * timeout, and freeing from inside callbacks. Every wait is bounded. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <cmocka.h>

#include "ec_err.h"
#include "ec_redis.h"
#include "ec_time.h"

static pid_t redis_pid = -1;
static int redis_port;
static char redis_dir[64];

static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t alen = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &alen) != 0)
		return -1;
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static int port_open(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
	close(fd);
	return ok;
}

/* Starts redis-server on redis_port and waits (at most 5 s) until it accepts. */
static int redis_start(void)
{
	char port[16];
	int64_t deadline = ec_now_ms() + 5000;

	snprintf(port, sizeof port, "%d", redis_port);
	redis_pid = fork();
	if (redis_pid < 0)
		return -1;
	if (redis_pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, 1);
		dup2(devnull, 2);
		execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1",
		       "--save", "", "--appendonly", "no", "--dir", redis_dir,
		       "--enable-debug-command", "local", (char *)NULL);
		_exit(127);
	}
	while (ec_now_ms() < deadline) {
		if (port_open(redis_port))
			return 0;
		sleep_ms(20);
	}
	return -1;
}

static void redis_kill(void)
{
	if (redis_pid > 0) {
		kill(redis_pid, SIGKILL);
		waitpid(redis_pid, NULL, 0);
	}
	redis_pid = -1;
}

static int group_setup(void **state)
{
	signal(SIGPIPE, SIG_IGN);
	snprintf(redis_dir, sizeof redis_dir, "/tmp/test_ec_redis.XXXXXX");
	if (mkdtemp(redis_dir) == NULL)
		return -1;
	redis_port = free_port();
	return redis_port > 0 && redis_start() == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	redis_kill();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", redis_dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- a link under test -------------------------------------------------------------------- */

struct t {
	struct event_base *base;
	struct event *tick;
	struct ec_redis *r;
	enum ec_redis_state states[64];
	size_t nstates;
	int replies;       /* callbacks with a reply */
	int nulls;         /* callbacks with NULL */
	char last[64];     /* last string or status reply */
	int free_in_cb;    /* free the link inside the next reply callback */
	int64_t null_at_ms;
};

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
}

static void on_state(struct ec_redis *r, enum ec_redis_state s, void *arg)
{
	struct t *t = arg;

	if (t->nstates < 64)
		t->states[t->nstates++] = s;
}

static void on_reply(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct t *t = arg;

	if (reply == NULL) {
		t->nulls++;
		t->null_at_ms = ec_now_ms();
	} else {
		t->replies++;
		if (reply->type == REDIS_REPLY_STRING || reply->type == REDIS_REPLY_STATUS ||
		    reply->type == REDIS_REPLY_ERROR)
			snprintf(t->last, sizeof t->last, "%s", reply->str);
	}
	if (t->free_in_cb) {
		t->free_in_cb = 0;
		ec_redis_free(r);
		t->r = NULL;
	}
}

static void t_open(struct t *t, int port, int64_t cmd_timeout_ms, size_t max_pending)
{
	struct ec_redis_opts o = {
		.host = "127.0.0.1", .port = port, .connect_timeout_ms = 1000,
		.command_timeout_ms = cmd_timeout_ms, .backoff_min_ms = 50,
		.backoff_max_ms = 400, .max_pending = max_pending,
	};
	struct timeval tv = { 0, 10000 };

	memset(t, 0, sizeof *t);
	t->base = event_base_new();
	assert_non_null(t->base);
	t->tick = event_new(t->base, -1, EV_PERSIST, on_tick, NULL);
	event_add(t->tick, &tv);
	t->r = ec_redis_new(t->base, &o, on_state, t);
	assert_non_null(t->r);
	assert_int_equal(ec_redis_state(t->r), EC_REDIS_DOWN);
	assert_int_equal(t->nstates, 0);   /* nothing runs inside ec_redis_new */
}

static void t_close(struct t *t)
{
	ec_redis_free(t->r);
	event_free(t->tick);
	event_base_free(t->base);
}

/* Runs the loop until pred(t) or timeout_ms; returns pred's last value. */
static int run_until(struct t *t, int (*pred)(struct t *), int64_t timeout_ms)
{
	int64_t deadline = ec_now_ms() + timeout_ms;

	while (!pred(t)) {
		if (ec_now_ms() >= deadline)
			return 0;
		event_base_loop(t->base, EVLOOP_ONCE);
	}
	return 1;
}

static int never(struct t *t)
{
	return 0;
}

static int is_up(struct t *t)
{
	return t->r != NULL && ec_redis_state(t->r) == EC_REDIS_UP;
}

static int is_down(struct t *t)
{
	return t->r != NULL && ec_redis_state(t->r) == EC_REDIS_DOWN;
}

static int got_one(struct t *t)
{
	return t->replies + t->nulls >= 1;
}

static int got_two(struct t *t)
{
	return t->replies + t->nulls >= 2;
}

static int saw_state(const struct t *t, enum ec_redis_state s)
{
	size_t i;

	for (i = 0; i < t->nstates; i++)
		if (t->states[i] == s)
			return 1;
	return 0;
}

static void ensure_server(void)
{
	if (redis_pid < 0)
		assert_int_equal(redis_start(), 0);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_connects_and_answers(void **state)
{
	struct t t;

	ensure_server();
	t_open(&t, redis_port, 2000, 0);
	assert_true(run_until(&t, is_up, 2000));
	assert_true(saw_state(&t, EC_REDIS_CONNECTING));
	assert_true(saw_state(&t, EC_REDIS_UP));
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "SET %s %s", "k", "v 1"), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_string_equal(t.last, "OK");
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "GET %s", "k"), 0);
	assert_true(run_until(&t, got_two, 2000));
	assert_string_equal(t.last, "v 1");
	assert_int_equal(t.nulls, 0);
	t_close(&t);
}

static void test_argv_form_and_bad_input(void **state)
{
	const char *argv[] = { "ECHO", "hello" };
	struct t t;

	ensure_server();
	t_open(&t, redis_port, 2000, 0);
	assert_true(run_until(&t, is_up, 2000));
	assert_int_equal(ec_redis_commandv(t.r, on_reply, &t, 2, argv, NULL), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_string_equal(t.last, "hello");
	assert_int_equal(ec_redis_commandv(t.r, on_reply, &t, 0, argv, NULL), EC_EINVAL);
	t_close(&t);
}

/* Replies are built in one block each (ec_redis.c): a nested array of every kind of
 * element arrives intact, and an empty array, an error and a long string too. */
static char shape[256];

static void describe(const struct redisReply *r, char **p, char *end)
{
	switch (r->type) {
	case REDIS_REPLY_ARRAY:
		*p += snprintf(*p, (size_t)(end - *p), "[");
		for (size_t i = 0; i < r->elements; i++)
			describe(r->element[i], p, end);
		*p += snprintf(*p, (size_t)(end - *p), "]");
		break;
	case REDIS_REPLY_INTEGER:
		*p += snprintf(*p, (size_t)(end - *p), "i%lld ", r->integer);
		break;
	case REDIS_REPLY_NIL:
		*p += snprintf(*p, (size_t)(end - *p), "nil ");
		break;
	default:
		*p += snprintf(*p, (size_t)(end - *p), "%d:%zu:%.8s ", r->type, r->len, r->str);
		break;
	}
}

static void on_shape(struct ec_redis *r, struct redisReply *reply, void *arg)
{
	struct t *t = arg;
	char *p = shape;

	(void)r;
	t->replies++;
	if (reply)
		describe(reply, &p, shape + sizeof shape);
}

static int got_three(struct t *t) { return t->replies >= 3; }

static void test_replies_of_every_shape(void **state)
{
	struct t t;

	ensure_server();
	t_open(&t, redis_port, 2000, 0);
	assert_true(run_until(&t, is_up, 2000));
	assert_int_equal(ec_redis_command(t.r, on_shape, &t,
	                                  "EVAL %s 0", "return {1, {'ab', false, {}}, 'c'}"), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_string_equal(shape, "[i1 [1:2:ab nil []]1:1:c ]");
	assert_int_equal(ec_redis_command(t.r, on_shape, &t, "NOSUCHCOMMAND"), 0);
	assert_true(run_until(&t, got_two, 2000));
	assert_int_equal(strncmp(shape, "6:", 2), 0); /* REDIS_REPLY_ERROR */
	assert_int_equal(ec_redis_command(t.r, on_shape, &t, "ECHO %s",
	                                  "0123456789012345678901234567890123456789"), 0);
	assert_true(run_until(&t, got_three, 2000));
	assert_string_equal(shape, "1:40:01234567 ");
	t_close(&t);
}

static int got_four(struct t *t) { return t->replies >= 4; }

/* The argv form writes RESP itself: binary arguments (CR, LF, NUL) of any length, with
 * lengths given or taken by strlen, on the stack or beyond it. */
static void test_argv_binary_and_long(void **state)
{
	static char big[6000];
	const char *set[] = { "SET", "bin", big }, *get[] = { "GET", "bin" };
	const char *echo[] = { "ECHO", "a\r\n$3\r\nb" };
	size_t setlen[] = { 3, 3, sizeof big }, getlen[] = { 3, 3 };
	struct t t;

	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (char)(i % 7 == 0 ? '\0' : i % 5 == 0 ? '\r' : i % 3 == 0 ? '\n' : 'x');
	big[0] = 'P';
	big[1] = 'Q';
	ensure_server();
	t_open(&t, redis_port, 2000, 0);
	assert_true(run_until(&t, is_up, 2000));
	assert_int_equal(ec_redis_commandv(t.r, on_shape, &t, 3, set, setlen), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_string_equal(shape, "5:2:OK "); /* REDIS_REPLY_STATUS */
	assert_int_equal(ec_redis_commandv(t.r, on_shape, &t, 2, get, getlen), 0);
	assert_true(run_until(&t, got_two, 2000));
	assert_int_equal(strncmp(shape, "1:6000:", 7), 0);
	assert_int_equal(shape[7], 'P');
	assert_int_equal(shape[8], 'Q');
	assert_int_equal(ec_redis_commandv(t.r, on_shape, &t, 2, echo, NULL), 0);
	assert_true(run_until(&t, got_three, 2000));
	assert_string_equal(shape, "1:8:a\r\n$3\r\nb ");
	assert_int_equal(ec_redis_commandv(t.r, on_shape, &t, 2, get, NULL), 0);
	assert_true(run_until(&t, got_four, 2000));
	assert_int_equal(strncmp(shape, "1:6000:", 7), 0);
	t_close(&t);
}

static void test_killed_server_nulls_pending_once(void **state)
{
	struct t t;
	int64_t down_at, up_at, started;

	ensure_server();
	t_open(&t, redis_port, 5000, 0);
	assert_true(run_until(&t, is_up, 2000));
	/* a command that stays pending: BLPOP on an empty list, no timeout */
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "BLPOP nothing-here 0"), 0);
	run_until(&t, never, 100);
	assert_int_equal(t.replies + t.nulls, 0);
	redis_kill();
	assert_true(run_until(&t, is_down, 2000));
	down_at = ec_now_ms();
	assert_int_equal(t.nulls, 1);
	assert_int_equal(t.replies, 0);
	assert_true(ec_redis_dropped(t.r) >= 1);
	/* while down: refused at once */
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), EC_EAGAIN);
	run_until(&t, never, 300);
	assert_int_equal(t.nulls, 1);    /* exactly once, never again */
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), EC_EAGAIN);
	assert_non_null(ec_redis_last_error(t.r));

	/* the server returns: the link comes back by itself within the backoff bound
	 * (backoff_max 400 ms) plus a connect */
	started = ec_now_ms();
	assert_int_equal(redis_start(), 0);
	assert_true(run_until(&t, is_up, 2000));
	up_at = ec_now_ms();
	assert_true(up_at - started <= 1000);
	assert_true(up_at > down_at);
	assert_true(ec_redis_reconnects(t.r) >= 1);
	t.replies = t.nulls = 0;
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_string_equal(t.last, "PONG");
	t_close(&t);
}

static void test_command_timeout_drops_and_reconnects(void **state)
{
	struct t t;
	int64_t sent;

	ensure_server();
	t_open(&t, redis_port, 200, 0);
	assert_true(run_until(&t, is_up, 2000));
	t.nstates = 0;
	sent = ec_now_ms();
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "DEBUG SLEEP 1"), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_int_equal(t.nulls, 1);
	assert_true(t.null_at_ms - sent >= 190);
	assert_true(t.null_at_ms - sent <= 800);
	assert_true(saw_state(&t, EC_REDIS_DOWN));
	assert_non_null(strstr(ec_redis_last_error(t.r), "timed out"));
	/* reconnects by itself; the server answers again once its sleep is over */
	assert_true(run_until(&t, is_up, 3000));
	run_until(&t, never, 1000);
	if (!is_up(&t))
		assert_true(run_until(&t, is_up, 3000));
	t.replies = t.nulls = 0;
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_string_equal(t.last, "PONG");
	t_close(&t);
}

static void test_free_inside_reply_callback(void **state)
{
	struct t t;
	int i;

	ensure_server();
	t_open(&t, redis_port, 2000, 0);
	assert_true(run_until(&t, is_up, 2000));
	for (i = 0; i < 3; i++)
		assert_int_equal(ec_redis_command(t.r, on_reply, &t, "BLPOP nothing-%d 0", i), 0);
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), 0);
	t_close(&t);   /* nothing answered yet: the PING waits behind the BLPOPs */
	assert_int_equal(t.nulls, 4);    /* free delivers NULL to everything pending */

	t_open(&t, redis_port, 2000, 0);
	assert_true(run_until(&t, is_up, 2000));
	t.free_in_cb = 1;
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), 0);
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "BLPOP nothing-a 0"), 0);
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "BLPOP nothing-b 0"), 0);
	assert_true(run_until(&t, got_one, 2000));
	assert_null(t.r);                /* freed inside the PING callback */
	assert_int_equal(t.replies, 1);
	assert_int_equal(t.nulls, 2);    /* the others got NULL, once each */
	run_until(&t, never, 100);
	assert_int_equal(t.nulls, 2);
	t_close(&t);
}

static void test_free_inside_state_callback(void **state)
{
	struct t t;

	ensure_server();
	t_open(&t, redis_port, 2000, 0);
	assert_true(run_until(&t, is_up, 2000));
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "BLPOP nothing-c 0"), 0);
	run_until(&t, never, 50);
	redis_kill();
	/* free from the reply callback that reports the drop */
	t.free_in_cb = 1;
	run_until(&t, got_one, 2000);
	assert_int_equal(t.nulls, 1);
	assert_null(t.r);
	run_until(&t, never, 200);
	t_close(&t);
	assert_int_equal(redis_start(), 0);
}

static void test_pending_is_bounded(void **state)
{
	struct t t;

	ensure_server();
	t_open(&t, redis_port, 5000, 2);
	assert_true(run_until(&t, is_up, 2000));
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "BLPOP nothing-d 0"), 0);
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "BLPOP nothing-e 0"), 0);
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), EC_EAGAIN);
	assert_true(ec_redis_dropped(t.r) >= 1);
	t_close(&t);
}

static void test_absent_server_retries_with_backoff(void **state)
{
	struct t t;
	int port = free_port();

	t_open(&t, port, 2000, 0);
	run_until(&t, never, 500);
	assert_true(ec_redis_state(t.r) != EC_REDIS_UP);
	assert_true(saw_state(&t, EC_REDIS_DOWN) || ec_redis_state(t.r) == EC_REDIS_DOWN);
	assert_int_equal(ec_redis_command(t.r, on_reply, &t, "PING"), EC_EAGAIN);
	assert_non_null(strstr(ec_redis_last_error(t.r), "refused"));
	assert_true(ec_redis_retry_in_ms(t.r) >= 25 && ec_redis_retry_in_ms(t.r) <= 400);
	t_close(&t);
	assert_int_equal(t.nulls + t.replies, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		{ "connects and answers commands", test_connects_and_answers, NULL, NULL, NULL },
		{ "argv form works, empty argv is refused", test_argv_form_and_bad_input, NULL, NULL,
		  NULL },
		{ "replies of every shape arrive intact", test_replies_of_every_shape, NULL, NULL,
		  NULL },
		{ "argv form: binary and long arguments", test_argv_binary_and_long, NULL, NULL,
		  NULL },
		{ "killed server: DOWN, pending gets NULL once, EAGAIN, then reconnects",
		  test_killed_server_nulls_pending_once, NULL, NULL, NULL },
		{ "command timeout drops the link and it reconnects",
		  test_command_timeout_drops_and_reconnects, NULL, NULL, NULL },
		{ "free inside a reply callback is safe", test_free_inside_reply_callback, NULL,
		  NULL, NULL },
		{ "free inside the NULL callback of a dying link is safe",
		  test_free_inside_state_callback, NULL, NULL, NULL },
		{ "commands in flight are bounded", test_pending_is_bounded, NULL, NULL, NULL },
		{ "absent server: stays down, refuses, retries within the backoff",
		  test_absent_server_retries_with_backoff, NULL, NULL, NULL },
	};

	return cmocka_run_group_tests_name("ec_redis", tests, group_setup, group_teardown);
}
