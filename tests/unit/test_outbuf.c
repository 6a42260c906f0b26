/* The send queue of a non-blocking socket, over a socket pair. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/outbuf.h"

static void test_queue_and_flush(void **state)
{
	struct outbuf o = { 0 };
	char big[300000], got[300000];
	size_t have = 0;
	int sv[2], r;
	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 31 + 7);
	assert_int_equal(outbuf_flush(&o, sv[0]), 0); /* nothing waits */
	assert_int_equal(outbuf_add(&o, NULL, 0, 0), 0);
	assert_null(o.buf);
	assert_int_equal(outbuf_add(&o, big, 1000, 0), 0);
	assert_int_equal(outbuf_add(&o, big + 1000, sizeof(big) - 1000, 0), 0);
	assert_int_equal(outbuf_pending(&o), sizeof(big));
	/* more than the socket takes: the rest waits, in order */
	for (int i = 0; i < 1000 && (r = outbuf_flush(&o, sv[0])) == 1; i++) {
		ssize_t n = read(sv[1], got + have, sizeof(got) - have);
		assert_true(n > 0);
		have += (size_t)n;
		/* queued while some waits: goes after it */
		if (i == 0)
			assert_int_equal(outbuf_add(&o, "tail", 4, 0), 0);
	}
	assert_int_equal(outbuf_pending(&o), 0);
	for (ssize_t n; have < sizeof(got) && (n = read(sv[1], got + have, sizeof(got) - have)) > 0;)
		have += (size_t)n;
	assert_int_equal(have, sizeof(got));
	assert_memory_equal(got, big, sizeof(big));
	{
		char tail[4];
		assert_int_equal(read(sv[1], tail, 4), 4);
		assert_memory_equal(tail, "tail", 4);
	}
	/* the peer gone: an error, not a signal */
	assert_int_equal(outbuf_add(&o, "x", 1, 0), 0);
	close(sv[1]);
	assert_int_equal(outbuf_flush(&o, sv[0]), -EPIPE);
	outbuf_fini(&o);
	assert_null(o.buf);
	assert_int_equal(outbuf_pending(&o), 0);
	close(sv[0]);
}

static void test_cap(void **state)
{
	struct outbuf o = { 0 };
	char b[100] = { 0 };
	(void)state;
	assert_int_equal(outbuf_add(&o, b, 60, 100), 0);
	assert_int_equal(outbuf_add(&o, b, 41, 100), -ENOBUFS); /* nothing of it queued */
	assert_int_equal(outbuf_pending(&o), 60);
	assert_int_equal(outbuf_add(&o, b, 40, 100), 0);
	assert_true(o.cap <= 100);
	assert_int_equal(outbuf_add(&o, b, SIZE_MAX, 100), -ENOBUFS);
	outbuf_fini(&o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_queue_and_flush),
		cmocka_unit_test(test_cap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
