/* Unit tests for streams over a trunk (src/net/mux.c): two muxes joined by
 * a loopback TCP trunk (plain wire), streams bound to loopback TCP pairs,
 * all driven by one event loop.  The "apps" at the ends are the test's
 * own non-blocking sockets, served from a 1 ms timer. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/loop.h"
#include "common/util.h"
#include "net/mux.h"
#include "net/sock.h"

#define MAX_STREAMS 4

/* One test world: side A is the trunk's initiator (the daemon's role), side
 * B its acceptor (the manager's).  Either opens streams: the other "dials"
 * by binding a fresh loopback pair, whose far end is the app there. */
struct world {
	struct loop *l;
	struct mux *a, *b;
	int down_a, down_b;
	struct mux_stream sa[MAX_STREAMS], sb[MAX_STREAMS];
	int client[MAX_STREAMS], server[MAX_STREAMS]; /* the apps' sockets */
	int a_fd[MAX_STREAMS], b_fd[MAX_STREAMS];     /* what the muxes relay */
	int result[MAX_STREAMS], done_a[MAX_STREAMS], done_b[MAX_STREAMS]; /* result -1: none yet */
	int na, nb;
	uint8_t refuse; /* B answers opens with this */
	struct loop_timer tick;
	bool (*step)(struct world *w); /* true: finished */
	uint64_t deadline;
};

static struct world W;

/* A connected loopback TCP pair, non-blocking, small buffers if asked. */
static void tcp_pair(int fds[2], int sndbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 1), 0);
	assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &sl), 0);
	fds[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(fds[0], (struct sockaddr *)&sa, sizeof(sa)), 0);
	fds[1] = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	assert_true(fds[1] >= 0);
	close(lfd);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(sock_nonblock(fds[i]), 0);
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (sndbuf) {
			setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
			setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf));
		}
	}
}

static int idx_a(const struct mux_stream *st) { return (int)(st - W.sa); }
static int idx_b(const struct mux_stream *st) { return (int)(st - W.sb); }

static void on_result(struct mux_stream *st, uint8_t status)
{
	int i = idx_a(st);

	W.result[i] = status;
	if (status == DIAL_OK)
		assert_int_equal(mux_bind(st, W.a_fd[i]), 0);
}

/* B opened (reverse): the answer from A. */
static void on_result_b(struct mux_stream *st, uint8_t status)
{
	int i = idx_b(st);

	W.result[i] = status;
	if (status == DIAL_OK)
		assert_int_equal(mux_bind(st, W.b_fd[i]), 0);
}

static void on_done_a(struct mux_stream *st, int err) { W.done_a[idx_a(st)] = err ? err : 1; }
static void on_done_b(struct mux_stream *st, int err) { W.done_b[idx_b(st)] = err ? err : 1; }

static void on_open(struct mux *mx, uint32_t id, const struct msg_dial *m, void *arg)
{
	int i = m->port - 80;

	(void)arg;
	assert_true(i >= 0 && i < MAX_STREAMS);
	W.nb++;
	if (W.refuse) {
		assert_int_equal(mux_refuse(mx, id, W.refuse), 0);
		return;
	}
	assert_int_equal(mux_attach(mx, &W.sb[i], id, NULL), 0);
	assert_int_equal(mux_result(&W.sb[i], DIAL_OK), 0);
	assert_int_equal(mux_bind(&W.sb[i], W.b_fd[i]), 0);
}

/* A asked by B (the laptop asked by the cluster): A "dials" its local app. */
static void on_open_a(struct mux *mx, uint32_t id, const struct msg_dial *m, void *arg)
{
	int i = m->port - 8080;

	(void)arg;
	assert_true(i >= 0 && i < MAX_STREAMS);
	W.na++;
	assert_int_equal(mux_attach(mx, &W.sa[i], id, NULL), 0);
	assert_int_equal(mux_result(&W.sa[i], DIAL_OK), 0);
	assert_int_equal(mux_bind(&W.sa[i], W.a_fd[i]), 0);
}

static void on_down(struct mux *mx, int err, void *arg)
{
	(void)err;
	if (arg == &W.down_a) {
		W.down_a = 1;
		W.a = NULL;
	} else {
		W.down_b = 1;
		W.b = NULL;
	}
	mux_free(mx);
}

static const struct mux_ops ops_a = { .open = on_open_a, .result = on_result, .done = on_done_a, .down = on_down };
static const struct mux_ops ops_b = { .open = on_open, .result = on_result_b, .done = on_done_b, .down = on_down };
/* A that serves no opens of the peer (the daemon before any intercept). */
static const struct mux_ops ops_a_closed = { .result = on_result, .done = on_done_a, .down = on_down };

static int setup(void **state)
{
	int t[2];
	struct wire wa, wb;

	(void)state;
	memset(&W, 0, sizeof(W));
	W.l = loop_new();
	assert_non_null(W.l);
	tcp_pair(t, 0);
	assert_int_equal(wire_init(&wa, t[0], FRAME_MAX, FRAME_MAX_PAYLOAD), 0);
	assert_int_equal(wire_init(&wb, t[1], FRAME_MAX, FRAME_MAX_PAYLOAD), 0);
	W.a = mux_new(W.l, &wa, MUX_INITIATOR, &ops_a, &W.down_a);
	W.b = mux_new(W.l, &wb, MUX_ACCEPTOR, &ops_b, &W.down_b);
	assert_non_null(W.a);
	assert_non_null(W.b);
	for (int i = 0; i < MAX_STREAMS; i++) {
		int c[2], s[2];
		W.result[i] = -1;
		tcp_pair(c, i < 2 ? 16384 : 0);
		tcp_pair(s, i < 2 ? 16384 : 0);
		W.client[i] = c[0];
		W.a_fd[i] = c[1];
		W.b_fd[i] = s[0];
		W.server[i] = s[1];
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	mux_free(W.a);
	mux_free(W.b);
	for (int i = 0; i < MAX_STREAMS; i++) {
		close(W.client[i]);
		close(W.server[i]);
		close(W.a_fd[i]);
		close(W.b_fd[i]);
	}
	loop_free(W.l);
	return 0;
}

static void tick(struct loop *l, struct loop_timer *t)
{
	(void)t;
	if (W.step(&W) || loop_now_ms(l) > W.deadline) {
		loop_stop(l);
		return;
	}
	loop_timer_arm(l, &W.tick, 1, tick, NULL);
}

/* Runs the loop until step says finished; fails after 10 s. */
static void run(bool (*step)(struct world *w))
{
	W.step = step;
	W.deadline = loop_now_ms(W.l) + 10000;
	loop_timer_arm(W.l, &W.tick, 1, tick, NULL);
	assert_int_equal(loop_run(W.l), 0);
	if (!step(&W))
		fail_msg("timed out");
}

static void open_stream(int i)
{
	struct msg_dial m = { .addr = 0x0a2a0001, .port = (uint16_t)(80 + i) };

	assert_int_equal(mux_open(W.a, &W.sa[i], &m, NULL), 0);
	W.na = i + 1;
}

/* A byte pattern that shows misplaced or lost bytes. */
static uint8_t pat(uint64_t off, int dir) { return (uint8_t)(off * 7 + off / 251 + (uint64_t)dir * 13); }

struct xfer {
	uint64_t sent[2], got[2], total;
	bool shut[2], eof[2];
	bool paused; /* the server app does not read */
};

static struct xfer X[MAX_STREAMS];

/* dir 0: client -> server, 1: server -> client. */
static void pump(int i, int dir)
{
	struct xfer *x = &X[i];
	int src = dir ? W.server[i] : W.client[i], dst = dir ? W.client[i] : W.server[i];
	uint8_t buf[32768];

	while (x->sent[dir] < x->total) {
		size_t n = (size_t)MIN((uint64_t)sizeof(buf), x->total - x->sent[dir]);
		for (size_t k = 0; k < n; k++)
			buf[k] = pat(x->sent[dir] + k, dir);
		ssize_t r = send(src, buf, n, MSG_NOSIGNAL);
		if (r <= 0)
			break;
		x->sent[dir] += (uint64_t)r;
	}
	if (x->sent[dir] == x->total && !x->shut[dir]) {
		shutdown(src, SHUT_WR);
		x->shut[dir] = true;
	}
	if (dir == 0 && x->paused)
		return;
	for (;;) {
		ssize_t r = recv(dst, buf, sizeof(buf), 0);
		if (r == 0)
			x->eof[dir] = true;
		if (r <= 0)
			break;
		for (ssize_t k = 0; k < r; k++)
			if (buf[k] != pat(x->got[dir] + (uint64_t)k, dir))
				fail_msg("stream %d dir %d: byte %lu wrong", i, dir, (unsigned long)(x->got[dir] + (uint64_t)k));
		x->got[dir] += (uint64_t)r;
	}
}

static bool step_bulk(struct world *w)
{
	bool all = true;

	for (int i = 0; i < 2; i++) {
		if (w->result[i] != DIAL_OK) {
			all = false;
			continue;
		}
		pump(i, 0);
		pump(i, 1);
		all &= X[i].eof[0] && X[i].eof[1] && w->done_a[i] && w->done_b[i];
	}
	return all;
}

/* Bytes both ways, a half-close each way, and a clean end on both sides;
 * small socket buffers, so bytes wait in the mux. */
static void test_bulk_both_ways(void **state)
{
	(void)state;
	memset(X, 0, sizeof(X));
	X[0].total = 3u << 20;
	X[1].total = 2u << 20;
	open_stream(0);
	open_stream(1);
	run(step_bulk);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(X[i].got[0], X[i].total);
		assert_int_equal(X[i].got[1], X[i].total);
		assert_int_equal(W.done_a[i], 1);
		assert_int_equal(W.done_b[i], 1);
		assert_int_equal(W.sa[i].bytes[0], X[i].total);
		assert_int_equal(W.sa[i].bytes[1], X[i].total);
		assert_false(mux_attached(&W.sa[i]));
	}
	assert_int_equal(W.a->n_streams, 0);
	assert_int_equal(W.b->n_streams, 0);
	assert_int_equal(W.a->st.overruns + W.b->st.overruns, 0);
}

static bool step_result(struct world *w)
{
	for (int i = 0; i < w->na; i++)
		if (w->result[i] < 0)
			return false;
	return true;
}

static void test_refused(void **state)
{
	(void)state;
	W.refuse = DIAL_REFUSED;
	open_stream(0);
	run(step_result);
	assert_int_equal(W.result[0], DIAL_REFUSED);
	assert_false(mux_attached(&W.sa[0]));
	assert_int_equal(W.a->n_streams, 0);
	assert_int_equal(W.done_a[0], 0);
}

static bool step_stalled(struct world *w)
{
	pump(0, 0);
	pump(1, 0);
	pump(1, 1);
	/* stream 0's server app sleeps: its bytes stop at the window */
	return X[1].eof[0] && X[1].eof[1] && w->done_a[1] && w->done_b[1] && w->sa[0].credit == 0;
}

static bool step_resume(struct world *w)
{
	pump(0, 0);
	pump(0, 1);
	return X[0].eof[0] && X[0].eof[1] && w->done_a[0] && w->done_b[0];
}

/* A stream whose app does not read holds at most the window in the mux
 * and stops its sender; another stream on the same trunk moves freely. */
static void test_slow_reader_stalls_only_itself(void **state)
{
	(void)state;
	memset(X, 0, sizeof(X));
	X[0].total = 8u << 20;
	X[0].paused = true;
	X[1].total = 1u << 20;
	open_stream(0);
	open_stream(1);
	run(step_result);
	run(step_stalled);
	assert_true(W.sb[0].pend_len <= MUX_WINDOW);
	assert_true(X[0].sent[0] < X[0].total);
	assert_int_equal(X[1].got[0], X[1].total);
	X[0].paused = false;
	run(step_resume);
	assert_int_equal(X[0].got[0], X[0].total);
	assert_int_equal(W.b->st.overruns, 0);
}

static bool step_reset(struct world *w) { return w->done_b[0] != 0; }

/* An app's reset reaches the other side as a reset. */
static void test_reset_travels(void **state)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	uint8_t b;

	(void)state;
	open_stream(0);
	run(step_result);
	setsockopt(W.client[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(W.client[0]);
	W.client[0] = -1;
	run(step_reset);
	assert_int_equal(W.done_b[0], -ECONNRESET);
	assert_true(W.done_a[0] < 0);
	/* B's owner resets its socket; the server app sees no clean EOF */
	setsockopt(W.b_fd[0], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(W.b_fd[0]);
	W.b_fd[0] = -1;
	usleep(10000);
	assert_int_equal(recv(W.server[0], &b, 1, 0), -1);
	assert_int_equal(errno, ECONNRESET);
}

static bool step_both_done(struct world *w) { return w->done_a[0] && w->done_b[0]; }

static bool step_server_eof(struct world *w)
{
	uint8_t b;

	return recv(w->server[0], &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

/* A's side is a socketpair whose owner closes it whole once done (the
 * agent's HTTP proxy with an idle laptop connection): the server app sees
 * a clean EOF, its FIN ends both sides cleanly, no reset anywhere.  With
 * bytes instead of a FIN, the server gets the reset TCP would give. */
static void hup_setup(int i)
{
	int sp[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp), 0);
	close(W.client[i]);
	close(W.a_fd[i]);
	W.client[i] = sp[0];
	W.a_fd[i] = sp[1];
	open_stream(i);
	run(step_result);
	close(W.client[i]); /* the owner is done: closed both ways */
	W.client[i] = -1;
}

static void test_closed_socketpair_ends_cleanly(void **state)
{
	uint8_t b;

	(void)state;
	hup_setup(0);
	run(step_server_eof); /* the FIN reaches the server app */
	assert_int_equal(recv(W.server[0], &b, 1, MSG_DONTWAIT), 0);
	assert_int_equal(W.done_a[0], 0); /* the stream waits for the server's half */
	shutdown(W.server[0], SHUT_WR);
	run(step_both_done);
	assert_int_equal(W.done_a[0], 1);
	assert_int_equal(W.done_b[0], 1);
}

static void test_closed_socketpair_then_bytes(void **state)
{
	(void)state;
	hup_setup(0);
	run(step_server_eof);
	assert_int_equal(send(W.server[0], "late", 4, 0), 4);
	run(step_both_done);
	assert_int_equal(W.done_a[0], -ECONNRESET);
	assert_true(W.done_b[0] < 0);
}

static bool step_down(struct world *w) { return w->down_a && w->done_a[0] && w->done_a[1]; }

/* The trunk closing ends every stream on it with a reset, then the mux. */
/* The acceptor opens toward the initiator (an intercept: the cluster
 * connects, the laptop dials a local port): the same frames, the other
 * parity, bytes both ways, a clean end on both sides. */
static void test_open_from_acceptor(void **state)
{
	struct msg_dial m = { .addr = 0x7f000001, .port = 8080 };

	(void)state;
	memset(X, 0, sizeof(X));
	X[0].total = X[1].total = 1u << 20;
	assert_int_equal(mux_open(W.b, &W.sb[0], &m, NULL), 0);
	m.port = 8081;
	assert_int_equal(mux_open(W.b, &W.sb[1], &m, NULL), 0);
	assert_int_equal(mux_stream_id(&W.sb[0]) % 2, 0);
	assert_int_equal(mux_stream_id(&W.sb[1]) % 2, 0);
	run(step_bulk);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(X[i].got[0], X[i].total);
		assert_int_equal(X[i].got[1], X[i].total);
		assert_int_equal(W.done_a[i], 1);
		assert_int_equal(W.done_b[i], 1);
		assert_int_equal(mux_stream_id(&W.sa[i]), mux_stream_id(&W.sb[i]));
	}
	assert_int_equal(W.a->n_streams, 0);
	assert_int_equal(W.b->n_streams, 0);
}

/* Streams opened both ways at once on one trunk never share an id. */
static void test_open_both_ways(void **state)
{
	struct msg_dial m = { .addr = 0x0a2a0001, .port = 80 };

	(void)state;
	memset(X, 0, sizeof(X));
	X[0].total = X[1].total = 256u << 10;
	assert_int_equal(mux_open(W.a, &W.sa[0], &m, NULL), 0); /* A -> B: B binds sb[0] */
	m.port = 8081;
	assert_int_equal(mux_open(W.b, &W.sb[1], &m, NULL), 0); /* B -> A: A binds sa[1] */
	assert_int_not_equal(mux_stream_id(&W.sa[0]), mux_stream_id(&W.sb[1]));
	run(step_bulk);
	assert_int_equal(X[0].got[1], X[0].total);
	assert_int_equal(X[1].got[0], X[1].total);
}

/* A side that serves no opens refuses them (DIAL_FORBIDDEN); the trunk stays. */
static void test_open_refused_when_closed(void **state)
{
	struct msg_dial m = { .addr = 0x7f000001, .port = 22 };

	(void)state;
	W.a->ops = &ops_a_closed;
	assert_int_equal(mux_open(W.b, &W.sb[0], &m, NULL), 0);
	W.na = 1; /* step_result waits for result[0] */
	run(step_result);
	assert_int_equal(W.result[0], DIAL_FORBIDDEN);
	assert_false(mux_attached(&W.sb[0]));
	assert_int_equal(W.down_a + W.down_b, 0);
	assert_int_equal(W.a->n_streams + W.b->n_streams, 0);
}

static void test_trunk_loss(void **state)
{
	(void)state;
	open_stream(0);
	open_stream(1);
	run(step_result);
	mux_free(W.b);
	W.b = NULL;
	run(step_down);
	assert_int_equal(W.done_a[0], -ECONNRESET);
	assert_int_equal(W.done_a[1], -ECONNRESET);
	assert_null(W.a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bulk_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_reader_stalls_only_itself, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reset_travels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trunk_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_from_acceptor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refused_when_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_socketpair_ends_cleanly, setup, teardown),
		cmocka_unit_test_setup_teardown(test_closed_socketpair_then_bytes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
