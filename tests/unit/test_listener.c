/* Unit tests for net/listener.c: batches of accepts on a real loopback
 * listener, and the pause when the process is out of fds. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"
#include "net/listener.h"
#include "net/sock.h"

#define LOCALHOST 0x7f000001u
#define CLIENTS 5

static struct {
	struct loop *l;
	struct listener ls;
	int clients[CLIENTS];
	int accepted[CLIENTS];
	int n_accepted, wakeups;
	struct loop_timer stop;
} T;

static void on_accept(void *arg, int fd)
{
	(void)arg;
	if (T.n_accepted < CLIENTS)
		T.accepted[T.n_accepted++] = fd;
	else
		close(fd);
}

static void on_stop(struct loop *l, struct loop_timer *t)
{
	(void)t;
	loop_stop(l);
}

/* Runs the loop for ms milliseconds. */
static void run_for(uint64_t ms)
{
	loop_timer_arm(T.l, &T.stop, ms, on_stop, NULL);
	assert_int_equal(loop_run(T.l), 0);
}

static uint16_t start(unsigned batch)
{
	uint32_t addr;
	uint16_t port;

	memset(&T, 0, sizeof(T));
	T.l = loop_new();
	assert_non_null(T.l);
	assert_int_equal(listener_init(&T.ls, T.l, sock_listen_tcp(LOCALHOST, 0, 64), batch, "test", on_accept, NULL), 0);
	assert_int_equal(sock_local(T.ls.fd, &addr, &port), 0);
	return port;
}

static void finish(void)
{
	for (int i = 0; i < CLIENTS; i++)
		close(T.clients[i]);
	for (int i = 0; i < T.n_accepted; i++)
		close(T.accepted[i]);
	listener_fini(&T.ls);
	assert_int_equal(T.ls.fd, -1);
	listener_fini(&T.ls); /* again: nothing */
	loop_free(T.l);
}

/* Every pending connection is accepted, one batch per wakeup. */
static void test_accepts_in_batches(void **state)
{
	uint16_t port = start(2);

	(void)state;
	for (int i = 0; i < CLIENTS; i++)
		assert_true((T.clients[i] = sock_connect_tcp(LOCALHOST, port, 0)) >= 0);
	usleep(20000); /* the handshakes complete in the kernel */
	run_for(50);
	assert_int_equal(T.n_accepted, CLIENTS);
	for (int i = 0; i < CLIENTS; i++)
		assert_true(T.accepted[i] >= 0);
	finish();
}

/* Out of fds: the listener stops watching its socket (no spin), counts the
 * pause, and takes the connection once fds are back. */
static void test_pauses_out_of_fds(void **state)
{
	uint16_t port = start(8);
	struct rlimit old, low;
	int spare;

	(void)state;
	assert_true((T.clients[0] = sock_connect_tcp(LOCALHOST, port, 0)) >= 0);
	usleep(20000);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
	spare = dup(0); /* the highest fd in use now; below it, none free */
	assert_true(spare >= 0);
	close(spare);
	low = old;
	low.rlim_cur = (rlim_t)spare;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	run_for(30);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
	assert_int_equal(T.n_accepted, 0);
	assert_int_equal(T.ls.paused, 1);
	assert_int_equal(loop_events(T.l, T.ls.fd), 0);
	run_for(LISTENER_PAUSE_MS + 50);
	assert_int_equal(T.n_accepted, 1);
	assert_int_equal(loop_events(T.l, T.ls.fd), LOOP_IN);
	finish();
}

/* A socket that could not be made is passed on, and stops nothing. */
static void test_start_failure(void **state)
{
	struct listener ls;

	(void)state;
	memset(&ls, 0, sizeof(ls));
	listener_fini(&ls); /* zeroed: nothing */
	T.l = loop_new();
	assert_int_equal(listener_init(&ls, T.l, -EADDRINUSE, 4, "test", on_accept, NULL), -EADDRINUSE);
	assert_int_equal(ls.fd, -1);
	listener_fini(&ls);
	loop_free(T.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_accepts_in_batches),
		cmocka_unit_test(test_pauses_out_of_fds),
		cmocka_unit_test(test_start_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
