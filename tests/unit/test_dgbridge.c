/* Unit tests for net/dgbridge.c: datagrams framed on a stream (a u16
 * length and the bytes) come out whole however the stream cuts them, and
 * a bridge between a socketpair and a UDP socket carries them both ways. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"
#include "net/dgbridge.h"

static struct {
	size_t n, total;
	size_t sizes[64];
	uint8_t last[DGB_MAX];
} got;

static void take(void *arg, const uint8_t *p, size_t n)
{
	(void)arg;
	if (got.n < 64)
		got.sizes[got.n] = n;
	got.n++;
	got.total += n;
	memcpy(got.last, p, n);
}

static size_t frame(uint8_t *out, size_t n, uint8_t fill)
{
	out[0] = (uint8_t)(n >> 8);
	out[1] = (uint8_t)n;
	memset(out + 2, fill, n);
	return 2 + n;
}

/* Three datagrams (0, 1 and 300 bytes) fed in pieces of every size. */
static void test_take_in_pieces(void **state)
{
	static uint8_t stream[1024], buf[DGB_FRAME];
	size_t len = 0;

	(void)state;
	len += frame(stream + len, 0, 0);
	len += frame(stream + len, 1, 'a');
	len += frame(stream + len, 300, 'b');
	for (size_t piece = 1; piece <= len; piece++) {
		size_t have = 0;
		memset(&got, 0, sizeof(got));
		for (size_t off = 0; off < len; off += piece) {
			size_t k = off + piece > len ? len - off : piece;
			memcpy(buf + have, stream + off, k);
			have += k;
			dgframe_take(buf, &have, take, NULL);
		}
		assert_int_equal(have, 0);
		assert_int_equal(got.n, 3);
		assert_int_equal(got.sizes[0], 0);
		assert_int_equal(got.sizes[1], 1);
		assert_int_equal(got.sizes[2], 300);
		assert_int_equal(got.last[299], 'b');
	}
}

/* The largest datagram, whole. */
static void test_take_largest(void **state)
{
	static uint8_t buf[DGB_FRAME];
	size_t have = frame(buf, DGB_MAX, 'z');

	(void)state;
	memset(&got, 0, sizeof(got));
	have--; /* one byte short: nothing yet */
	assert_int_equal(dgframe_take(buf, &have, take, NULL), 0);
	assert_int_equal(have, DGB_FRAME - 1);
	have++;
	assert_int_equal(dgframe_take(buf, &have, take, NULL), 1);
	assert_int_equal(got.total, DGB_MAX);
	assert_int_equal(have, 0);
}

static struct {
	struct loop *l;
	int closed;
} h;

static void closed(struct dgbridge *b, void *arg)
{
	(void)arg;
	h.closed++;
	dgbridge_fini(b);
	loop_stop(h.l);
}

static void stop(struct loop *l, struct loop_timer *t)
{
	(void)t;
	loop_stop(l);
}

/* A bridge with a UDP socket of its own, connected to a UDP "server"
 * here: datagrams written framed to the stream reach the server; its
 * answers come back framed; the stream's EOF ends the bridge. */
static void test_bridge_both_ways(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t slen = sizeof(sa);
	struct dgbridge b;
	struct loop_timer t = { 0 };
	uint8_t out[64], in[64];
	char dg[64];
	int sp[2], srv, udp;
	size_t n, have = 0;
	ssize_t r;

	(void)state;
	memset(&h, 0, sizeof(h));
	assert_non_null(h.l = loop_new());
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sp), 0);
	assert_true((srv = socket(AF_INET, SOCK_DGRAM, 0)) >= 0);
	assert_int_equal(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(srv, (struct sockaddr *)&sa, &slen), 0);
	assert_true((udp = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0)) >= 0);
	assert_int_equal(connect(udp, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(dgbridge_init(&b, h.l, sp[1], udp, true, NULL, closed, NULL), 0);
	/* stream -> UDP */
	n = frame(out, 5, 'q');
	assert_int_equal(write(sp[0], out, n), (ssize_t)n);
	loop_timer_arm(h.l, &t, 50, stop, NULL);
	loop_run(h.l);
	r = recv(srv, dg, sizeof(dg), MSG_DONTWAIT);
	assert_int_equal(r, 5);
	assert_memory_equal(dg, "qqqqq", 5);
	/* UDP -> stream */
	{
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		assert_int_equal(getsockname(udp, (struct sockaddr *)&from, &flen), 0);
		assert_int_equal(sendto(srv, "answer", 6, 0, (struct sockaddr *)&from, flen), 6);
	}
	loop_timer_arm(h.l, &t, 50, stop, NULL);
	loop_run(h.l);
	r = read(sp[0], in, sizeof(in));
	assert_int_equal(r, 8);
	memset(&got, 0, sizeof(got));
	have = (size_t)r;
	assert_int_equal(dgframe_take(in, &have, take, NULL), 1);
	assert_memory_equal(got.last, "answer", 6);
	assert_int_equal(b.dgrams[0], 1);
	assert_int_equal(b.dgrams[1], 1);
	/* the stream's end ends it */
	close(sp[0]);
	loop_timer_arm(h.l, &t, 1000, stop, NULL);
	loop_run(h.l);
	assert_int_equal(h.closed, 1);
	loop_timer_cancel(h.l, &t);
	close(srv);
	loop_free(h.l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_take_in_pieces),
		cmocka_unit_test(test_take_largest),
		cmocka_unit_test(test_bridge_both_ways),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
