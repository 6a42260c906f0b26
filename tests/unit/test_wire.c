/* Unit tests for the framed connection buffer (src/net/wire.c), over a
 * socketpair. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/wire.h"

struct pair {
	int a, b; /* a is the wire's fd, b the test's end */
	struct wire w;
};

static int setup(void **state)
{
	static struct pair p;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	p.a = sv[0];
	p.b = sv[1];
	assert_int_equal(wire_init(&p.w, p.a, FRAME_MAX, FRAME_MAX_PAYLOAD), 0);
	*state = &p;
	return 0;
}

static int teardown(void **state)
{
	struct pair *p = *state;

	wire_fini(&p->w);
	close(p->a);
	close(p->b);
	return 0;
}

/* A frame of type HEARTBEAT with len bytes of payload (value i + seed). */
static size_t make_frame(uint8_t *out, uint32_t len, uint8_t seed)
{
	frame_hdr_encode(out, FT_HEARTBEAT, len);
	for (uint32_t i = 0; i < len; i++)
		out[FRAME_HDR_LEN + i] = (uint8_t)(i + seed);
	return FRAME_HDR_LEN + len;
}

static void expect_frame(struct wire *w, uint32_t len, uint8_t seed)
{
	struct frame_hdr h;
	const uint8_t *pl = NULL;

	assert_int_equal(wire_next(w, &h, &pl), 1);
	assert_int_equal(h.type, FT_HEARTBEAT);
	assert_int_equal(h.len, len);
	for (uint32_t i = 0; i < len; i++)
		assert_int_equal(pl[i], (uint8_t)(i + seed));
	wire_consume(w);
}

static void test_byte_by_byte(void **state)
{
	struct pair *p = *state;
	uint8_t buf[64];
	struct frame_hdr h;
	const uint8_t *pl;
	size_t n = make_frame(buf, 20, 7);

	for (size_t i = 0; i < n; i++) {
		assert_int_equal(wire_next(&p->w, &h, &pl), 0);
		assert_int_equal(write(p->b, buf + i, 1), 1);
		assert_int_equal(wire_read(&p->w), 1);
	}
	expect_frame(&p->w, 20, 7);
	assert_int_equal(wire_next(&p->w, &h, &pl), 0);
	assert_int_equal(wire_read(&p->w), -EAGAIN);
	assert_int_equal(wire_unread(&p->w), 0);
}

static void test_several_in_one_read(void **state)
{
	struct pair *p = *state;
	uint8_t buf[4096];
	struct frame_hdr h;
	const uint8_t *pl;
	size_t n = 0;

	for (int i = 0; i < 10; i++)
		n += make_frame(buf + n, (uint32_t)(i * 37), (uint8_t)i);
	n += make_frame(buf + n, 0, 0);
	/* Half of a last frame: it must wait. */
	make_frame(buf + n, 100, 1);
	n += FRAME_HDR_LEN + 50;
	assert_int_equal(write(p->b, buf, n), (ssize_t)n);
	assert_int_equal(wire_read(&p->w), (int)n);
	for (int i = 0; i < 10; i++)
		expect_frame(&p->w, (uint32_t)(i * 37), (uint8_t)i);
	expect_frame(&p->w, 0, 0);
	assert_int_equal(wire_next(&p->w, &h, &pl), 0);
	assert_int_equal(wire_unread(&p->w), FRAME_HDR_LEN + 50);
	make_frame(buf, 100, 1);
	assert_int_equal(write(p->b, buf + FRAME_HDR_LEN + 50, 50), 50);
	assert_int_equal(wire_read(&p->w), 50);
	expect_frame(&p->w, 100, 1);
}

static void test_oversized(void **state)
{
	struct pair *p = *state;
	uint8_t buf[FRAME_HDR_LEN];
	struct frame_hdr h;
	const uint8_t *pl;

	/* Before authentication: small limits, a 4 GiB announcement. */
	assert_int_equal(wire_set_limits(&p->w, FRAME_HDR_LEN + FRAME_MAX_PAYLOAD_PREAUTH,
					 FRAME_MAX_PAYLOAD_PREAUTH), 0);
	frame_hdr_encode(buf, FT_AUTH, 0xffffffffu);
	assert_int_equal(write(p->b, buf, sizeof(buf)), (ssize_t)sizeof(buf));
	assert_int_equal(wire_read(&p->w), FRAME_HDR_LEN);
	assert_int_equal(wire_next(&p->w, &h, &pl), -EMSGSIZE);
}

static void test_preauth_then_grow(void **state)
{
	struct pair *p = *state;
	static uint8_t buf[FRAME_MAX];
	size_t n;

	assert_int_equal(wire_set_limits(&p->w, FRAME_HDR_LEN + FRAME_MAX_PAYLOAD_PREAUTH,
					 FRAME_MAX_PAYLOAD_PREAUTH), 0);
	assert_int_equal(wire_set_limits(&p->w, 16, 100), -EINVAL);
	n = make_frame(buf, 10, 3);
	assert_int_equal(write(p->b, buf, n), (ssize_t)n);
	assert_int_equal(wire_read(&p->w), (int)n);
	expect_frame(&p->w, 10, 3);
	assert_int_equal(wire_set_limits(&p->w, FRAME_MAX, FRAME_MAX_PAYLOAD), 0);
	n = make_frame(buf, 60000, 9);
	assert_int_equal(write(p->b, buf, n), (ssize_t)n);
	size_t got = 0;
	while (got < n) {
		int r = wire_read(&p->w);
		assert_true(r > 0);
		got += (size_t)r;
	}
	expect_frame(&p->w, 60000, 9);
}

static void test_take_rest(void **state)
{
	struct pair *p = *state;
	uint8_t buf[128];
	const uint8_t *rest;
	size_t n = make_frame(buf, 4, 0);

	memcpy(buf + n, "raw bytes", 9);
	assert_int_equal(write(p->b, buf, n + 9), (ssize_t)(n + 9));
	assert_int_equal(wire_read(&p->w), (int)(n + 9));
	expect_frame(&p->w, 4, 0);
	assert_int_equal(wire_take_rest(&p->w, &rest), 9);
	assert_memory_equal(rest, "raw bytes", 9);
	assert_int_equal(wire_unread(&p->w), 0);
	assert_int_equal(wire_take_rest(&p->w, &rest), 0);
}

static void test_eof(void **state)
{
	struct pair *p = *state;

	shutdown(p->b, SHUT_WR);
	assert_int_equal(wire_read(&p->w), 0);
}

static void drain(int fd, uint8_t *out, size_t *got, size_t cap)
{
	ssize_t r;

	while (*got < cap && (r = read(fd, out + *got, cap - *got)) > 0)
		*got += (size_t)r;
}

static void test_flush_partial(void **state)
{
	struct pair *p = *state;
	static uint8_t out[1 << 20];
	static uint8_t in[1 << 20];
	size_t total = 0, got = 0;
	int sz = 4096;

	setsockopt(p->a, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	setsockopt(p->b, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	p->w.wmax = sizeof(out);
	while (total + FRAME_HDR_LEN + 1000 <= sizeof(out)) {
		uint8_t *q = wire_reserve(&p->w, FRAME_HDR_LEN + 1000);
		assert_non_null(q);
		size_t n = make_frame(q, 1000, (uint8_t)total);
		memcpy(out + total, q, n);
		wire_commit(&p->w, n);
		total += n;
	}
	assert_int_equal(wire_pending(&p->w), total);
	/* The socket cannot take it all: flush says "more", the peer drains. */
	int r = wire_flush(&p->w);
	assert_int_equal(r, 1);
	assert_true(wire_pending(&p->w) < total);
	while (r == 1) {
		drain(p->b, in, &got, sizeof(in));
		r = wire_flush(&p->w);
		assert_true(r >= 0);
	}
	drain(p->b, in, &got, sizeof(in));
	assert_int_equal(got, total);
	assert_memory_equal(in, out, total);
	assert_int_equal(wire_pending(&p->w), 0);
}

static void test_queue_cap(void **state)
{
	struct pair *p = *state;
	uint8_t frame[100];
	int sz = 4096;

	setsockopt(p->a, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	p->w.wmax = 1000;
	memset(frame, 0x5a, sizeof(frame));
	for (int i = 0; i < 10; i++)
		assert_int_equal(wire_queue(&p->w, frame, sizeof(frame)), 0);
	assert_int_equal(wire_queue(&p->w, frame, sizeof(frame)), -ENOBUFS);
	assert_null(wire_reserve(&p->w, 1));
	assert_null(wire_reserve(&p->w, SIZE_MAX));
	assert_int_equal(wire_pending(&p->w), 1000);
	/* Once part is written, room opens again (the queue compacts). */
	assert_int_equal(wire_flush(&p->w), 0);
	assert_int_equal(wire_queue(&p->w, frame, sizeof(frame)), 0);
	assert_int_equal(wire_pending(&p->w), 100);
}

static void test_write_error(void **state)
{
	struct pair *p = *state;

	close(p->b);
	p->b = -1;
	assert_int_equal(wire_queue(&p->w, "x", 1), 0);
	assert_int_equal(wire_flush(&p->w), -EPIPE);
	p->b = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static void test_init_limits(void **state)
{
	struct wire w;

	(void)state;
	assert_int_equal(wire_init(&w, -1, 10, 100), -EINVAL);
	wire_fini(&w);
	assert_int_equal(wire_init(&w, -1, FRAME_HDR_LEN, 0), 0);
	wire_fini(&w);
	wire_fini(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_byte_by_byte, setup, teardown),
		cmocka_unit_test_setup_teardown(test_several_in_one_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oversized, setup, teardown),
		cmocka_unit_test_setup_teardown(test_preauth_then_grow, setup, teardown),
		cmocka_unit_test_setup_teardown(test_take_rest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flush_partial, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
		cmocka_unit_test(test_init_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
