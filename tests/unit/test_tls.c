/* TLS (net/tls.c) and the TLS relay (net/relay_tls.c) over socket pairs:
 * certificates and pins, resumption with single-use tickets, half-close
 * both ways, 8 MiB each way through small socket buffers (batched sends,
 * read-ahead, tls_pending), and a relay moving 4 MiB each way, half-close
 * and truncation. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common/loop.h"
#include "common/util.h"
#include "net/relay.h"
#include "net/tls.h"

static char dir[64], cert[128], key[128];
static uint8_t fp[TLS_FP_LEN];
static struct ssl_ctx_st *sctx;

static int setup(void **state)
{
	char err[256];
	bool created;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	snprintf(dir, sizeof(dir), "/tmp/subway-test-tls-XXXXXX");
	assert_non_null(mkdtemp(dir));
	strcat(dir, "/tls");
	assert_int_equal(tls_dir_ensure(dir, cert, key, sizeof(cert), &created, err, sizeof(err)), 0);
	assert_true(created);
	sctx = tls_server_ctx(cert, key, fp, err, sizeof(err));
	assert_non_null(sctx);
	return 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	tls_ctx_free(sctx);
	snprintf(cmd, sizeof(cmd), "rm -rf %.*s", (int)(strlen(dir) - 4), dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void pair(int sv[2])
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
}

/* Both sides of a handshake, stepped in turn; 0 or the first error. */
static int handshake(struct ssl_st *c, struct ssl_st *s)
{
	bool dc = false, ds = false;

	for (int i = 0; i < 100 && !(dc && ds); i++) {
		int r;
		if (!dc && (r = tls_handshake(c)) < 0)
			return r;
		dc = dc || r == 0;
		if (!ds && (r = tls_handshake(s)) < 0)
			return r - 1000;
		ds = ds || r == 0;
	}
	return dc && ds ? 0 : -ETIMEDOUT;
}

static void test_dir_and_fingerprint(void **state)
{
	char err[256], c2[128], k2[128], hex[TLS_FP_HEX_LEN + 1];
	uint8_t again[TLS_FP_LEN];
	struct stat st;
	bool created = true;

	(void)state;
	assert_int_equal(stat(key, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tls_cert_fingerprint(cert, again, err, sizeof(err)), 0);
	assert_memory_equal(again, fp, TLS_FP_LEN);
	/* A second start takes the same files. */
	assert_int_equal(tls_dir_ensure(dir, c2, k2, sizeof(c2), &created, err, sizeof(err)), 0);
	assert_false(created);
	assert_int_equal(strlen(tls_fp_str(fp, hex)), TLS_FP_HEX_LEN);
	assert_memory_equal(hex, "sha256:", 7);
	/* A lost certificate is made again from the same key: a new pin, the same key. */
	assert_int_equal(tls_cert_fingerprint("/nonexistent/cert.pem", again, err, sizeof(err)), -EIO);
	assert_true(strstr(err, "/nonexistent/cert.pem") != NULL);
}

static void test_pin_mismatch(void **state)
{
	uint8_t bad[TLS_FP_LEN];
	char err[128];
	struct ssl_ctx_st *cctx;
	struct ssl_st *c, *s;
	int sv[2];

	(void)state;
	memcpy(bad, fp, sizeof(bad));
	bad[31] ^= 1;
	cctx = tls_client_ctx(bad, err, sizeof(err));
	pair(sv);
	c = tls_new(cctx, sv[0], false);
	s = tls_new(sctx, sv[1], true);
	assert_int_equal(handshake(c, s), -EACCES);
	assert_int_equal(tls_client_info(cctx)->refused, 1);
	assert_true(tls_client_info(cctx)->seen_valid);
	assert_memory_equal(tls_client_info(cctx)->seen, fp, TLS_FP_LEN);
	tls_free(c);
	tls_free(s);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_free(cctx);
}

static void test_not_tls(void **state)
{
	char err[128];
	struct ssl_ctx_st *cctx = tls_client_ctx(fp, err, sizeof(err));
	static const uint8_t hello[] = { 1, 0, 0, 0, 0, 0, 0, 40 }; /* a plaintext HELLO header */
	struct ssl_st *c;
	int sv[2], r;

	(void)state;
	pair(sv);
	c = tls_new(cctx, sv[0], false);
	assert_int_equal(write(sv[1], hello, sizeof(hello)), sizeof(hello));
	while ((r = tls_handshake(c)) > 0 && r == LOOP_OUT)
		;
	assert_int_equal(r, -EPROTO);
	tls_free(c);
	close(sv[0]);
	close(sv[1]);
	tls_ctx_free(cctx);
}

/* n connections opened at once (each takes a ticket, if one is left),
 * then handshaken; the server adds `extra` tickets to the default ones
 * (two after a full handshake, one after a resumption), which the client
 * reads with a byte.  Returns how many resumed. */
static int conns(struct ssl_ctx_st *cctx, int n, int extra)
{
	struct ssl_st *c[8], *s[8];
	int sv[8][2], resumed = 0;
	char b;

	assert_true(n <= 8);
	for (int i = 0; i < n; i++) {
		pair(sv[i]);
		c[i] = tls_new(cctx, sv[i][0], false);
		s[i] = tls_new(sctx, sv[i][1], true);
	}
	for (int i = 0; i < n; i++) {
		assert_int_equal(handshake(c[i], s[i]), 0);
		assert_int_equal(tls_resumed(c[i]), tls_resumed(s[i]));
		resumed += tls_resumed(c[i]);
		assert_int_equal(tls_send_tickets(s[i], extra), 0);
		assert_int_equal(tls_write(s[i], "x", 1), 1);
		assert_int_equal(tls_read(c[i], &b, 1), 1);
		tls_free(c[i]);
		tls_free(s[i]);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	return resumed;
}

static void test_resumption_tickets(void **state)
{
	char err[128];
	struct ssl_ctx_st *cctx = tls_client_ctx(fp, err, sizeof(err));

	(void)state;
	assert_int_equal(conns(cctx, 1, 3), 0); /* full: 2 + 3 tickets */
	assert_int_equal(conns(cctx, 8, 0), 5); /* single-use: 5 resume, 3 do not */
	for (int i = 0; i < 20; i++)            /* one spent, one back: it lasts */
		assert_int_equal(conns(cctx, 1, 0), 1);
	assert_int_equal(tls_client_info(cctx)->full, 4);
	assert_int_equal(tls_client_info(cctx)->resumed, 25);
	tls_ctx_free(cctx);
}

static void test_half_close(void **state)
{
	char err[128], buf[16];
	struct ssl_ctx_st *cctx = tls_client_ctx(fp, err, sizeof(err));
	struct ssl_st *c, *s;
	int sv[2];

	(void)state;
	pair(sv);
	c = tls_new(cctx, sv[0], false);
	s = tls_new(sctx, sv[1], true);
	assert_int_equal(handshake(c, s), 0);
	assert_int_equal(tls_write(c, "abc", 3), 3);
	assert_int_equal(tls_shutdown(c), 0);
	assert_int_equal(tls_read(s, buf, sizeof(buf)), 3);
	assert_int_equal(tls_read(s, buf, sizeof(buf)), 0); /* close_notify: EOF */
	assert_int_equal(tls_write(s, "xyz", 3), 3);        /* the other way still flows */
	assert_int_equal(tls_read(c, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "xyz", 3);
	assert_int_equal(tls_read(c, buf, sizeof(buf)), -EAGAIN);
	assert_int_equal(tls_shutdown(s), 0);
	assert_int_equal(tls_read(c, buf, sizeof(buf)), 0);
	tls_free(c);
	tls_free(s);
	close(sv[0]);
	/* A TCP EOF without close_notify is a truncation, not an EOF. */
	pair(sv);
	c = tls_new(cctx, sv[0], false);
	s = tls_new(sctx, sv[1], true);
	assert_int_equal(handshake(c, s), 0);
	close(sv[1]);
	tls_free(s);
	assert_int_equal(tls_read(c, buf, sizeof(buf)), -ECONNRESET);
	tls_free(c);
	close(sv[0]);
	tls_ctx_free(cctx);
}

/* ---- bulk both ways: batched records, read-ahead, partial writes ---- */

#define BULK_BYTES (8u << 20)

/* One end as an event loop drives it: a read only after a readiness
 * event or while tls_pending says bytes wait inside (one read per wakeup,
 * so read-ahead records are left behind), a write only when not blocked,
 * and after -EAGAIN the same bytes again (sometimes more). */
struct bulk_end {
	struct ssl_st *ssl;
	int fd;
	uint8_t *out, *in;
	size_t sent, wlen, got;
	bool rwait, wwait, shut, eof;
	bool small; /* some writes of a few bytes too */
	bool drain; /* up to 16 reads per wakeup, not one */
	unsigned seed;
};

/* A connected non-blocking pair: TCP on loopback with socket buffers of
 * sndbuf bytes (0: the defaults), or a UNIX socketpair when !tcp. */
static void bulk_pair(bool tcp, int sndbuf, int sv[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int l;

	if (!tcp) {
		pair(sv);
		return;
	}
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	sv[0] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(l >= 0 && sv[0] >= 0);
	if (sndbuf) { /* set before connect: the window follows the receive buffer */
		for (int i = 0; i < 2; i++) {
			int fd = i ? l : sv[0];
			assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
			assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sndbuf, sizeof(sndbuf)), 0);
		}
	}
	assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(l, 1), 0);
	assert_int_equal(getsockname(l, (struct sockaddr *)&a, &al), 0);
	assert_int_equal(connect(sv[0], (struct sockaddr *)&a, sizeof(a)), 0);
	sv[1] = accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	assert_true(sv[1] >= 0);
	close(l);
	assert_int_equal(fcntl(sv[0], F_SETFL, O_NONBLOCK), 0);
}

static void bulk_write(struct bulk_end *e)
{
	size_t left = BULK_BYTES - e->sent, len;
	ssize_t n;

	if (!left) {
		int r = tls_shutdown(e->ssl);
		assert_true(r == 0 || r == -EAGAIN);
		e->shut = r == 0;
		e->wwait = r == -EAGAIN;
		return;
	}
	/* mostly 64..256 KiB, sometimes a few bytes */
	len = 65536 * (1 + rand_r(&e->seed) % 4);
	if (e->small && rand_r(&e->seed) % 8 == 0)
		len = 1 + rand_r(&e->seed) % 3000;
	len = MIN(MAX(len, e->wlen), left);
	n = tls_write(e->ssl, e->out + e->sent, len);
	if (n == -EAGAIN) {
		assert_true(tls_wants_write(e->ssl)); /* or nobody would wait for LOOP_OUT */
		e->wlen = len;
		e->wwait = true;
		return;
	}
	assert_true(n > 0 && (size_t)n <= len);
	e->sent += (size_t)n;
	e->wlen = 0;
}

static ssize_t bulk_read(struct bulk_end *e, const uint8_t *expect)
{
	size_t len = rand_r(&e->seed) % 4 ? 70000 : 1 + rand_r(&e->seed) % 5000;
	uint8_t b;
	ssize_t n = e->got < BULK_BYTES ? tls_read(e->ssl, e->in + e->got, MIN(len, BULK_BYTES - e->got))
					: tls_read(e->ssl, &b, 1); /* only close_notify may follow */

	e->rwait = true; /* wait for an event or tls_pending, as a loop does */
	if (n == -EAGAIN) {
		assert_false(tls_pending(e->ssl)); /* else a caller would spin */
		return n;
	}
	if (n == 0) {
		assert_int_equal(e->got, BULK_BYTES);
		e->eof = true;
		return n;
	}
	assert_true(n > 0);
	assert_memory_equal(e->in + e->got, expect + e->got, (size_t)n);
	e->got += (size_t)n;
	return n;
}

static bool bulk_done(const struct bulk_end *e)
{
	return e->shut && e->eof;
}

/* Moves BULK_BYTES each way; fails if both ends wait 2 s for an event
 * (a stall: bytes inside an SSL that tls_pending did not report, or
 * ciphertext nobody was told to flush). */
static void bulk_run(bool tcp, int sndbuf, bool small, struct tls_stats st[2])
{
	char err[128];
	struct ssl_ctx_st *cctx = tls_client_ctx(fp, err, sizeof(err));
	struct bulk_end e[2];
	int sv[2];

	bulk_pair(tcp, sndbuf, sv);
	for (int i = 0; i < 2; i++) {
		e[i] = (struct bulk_end){ .fd = sv[i], .small = small, .drain = !small };
		e[i].seed = 7 + (unsigned)i;
		e[i].ssl = i ? tls_new(sctx, sv[i], true) : tls_new(cctx, sv[i], false);
		e[i].out = malloc(BULK_BYTES);
		e[i].in = malloc(BULK_BYTES);
		assert_true(e[i].ssl && e[i].out && e[i].in);
		for (size_t k = 0; k < BULK_BYTES; k++)
			e[i].out[k] = (uint8_t)((k + (size_t)i * 977) * 2654435761u >> 13);
	}
	assert_int_equal(handshake(e[0].ssl, e[1].ssl), 0);
	while (!bulk_done(&e[0]) || !bulk_done(&e[1])) {
		struct pollfd p[2];
		bool now = false;

		for (int i = 0; i < 2; i++) {
			bool rd = !e[i].eof && (!e[i].rwait || tls_pending(e[i].ssl));
			bool wr = !e[i].shut && !e[i].wwait;
			now |= rd || wr;
			p[i] = (struct pollfd){ .fd = e[i].fd, .events = e[i].eof ? 0 : POLLIN };
			if (e[i].wwait) /* tls_wants_write held at -EAGAIN; a read may send since */
				p[i].events |= POLLOUT;
		}
		if (poll(p, 2, now ? 0 : 2000) <= 0 && !now) {
			for (int i = 0; i < 2; i++)
				print_error("stalled: end %d sent %zu got %zu rwait %d wwait %d pending %d\n", i,
					    e[i].sent, e[i].got, e[i].rwait, e[i].wwait, tls_pending(e[i].ssl));
			fail();
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].revents & (POLLIN | POLLHUP))
				e[i].rwait = false;
			if (p[i].revents & POLLOUT)
				e[i].wwait = false;
			if (!e[i].shut && !e[i].wwait)
				bulk_write(&e[i]);
			for (int k = 0; k < (e[i].drain ? 16 : 1); k++)
				if (e[i].eof || (e[i].rwait && !tls_pending(e[i].ssl)) ||
				    bulk_read(&e[i], e[1 - i].out) <= 0)
					break;
		}
	}
	for (int i = 0; i < 2; i++) {
		assert_int_equal(e[i].got, BULK_BYTES);
		tls_stats(e[i].ssl, &st[i]);
		tls_free(e[i].ssl);
		close(sv[i]);
		free(e[i].out);
		free(e[i].in);
	}
	tls_ctx_free(cctx);
}

static void test_bulk_small_buffers(void **state)
{
	struct tls_stats st[2];

	(void)state;
	bulk_run(true, 4096, true, st); /* most sends are short */
	for (int i = 0; i < 2; i++)
		print_message("tcp, 4 KiB buffers: %llu records in %llu sends\n",
			      (unsigned long long)st[i].records, (unsigned long long)st[i].sends);
}

static void test_bulk_batched(void **state)
{
	struct tls_stats st[2];

	(void)state;
	bulk_run(false, 0, false, st);
	for (int i = 0; i < 2; i++) {
		print_message("unix, default buffers: %llu records in %llu sends\n",
			      (unsigned long long)st[i].records, (unsigned long long)st[i].sends);
		/* OpenSSL alone makes a send() per record: at least 512 here */
		assert_true(st[i].records >= BULK_BYTES / 16384);
		assert_true(st[i].sends * 2 <= st[i].records);
	}
}

/* ---- the relay: app <-plain-> relay <-TLS-> peer (an echo server) ---- */

#define RELAY_BYTES (4u << 20)

struct relay_test {
	struct loop *loop;
	struct relay r;
	int err, done;
	int app, peer;
	struct ssl_st *peer_ssl;
	uint8_t *out, *in;
	size_t got;
	bool truncate; /* the peer vanishes without close_notify halfway */
};

static void on_done(struct relay *r, int err, void *arg)
{
	struct relay_test *t = arg;

	t->err = err;
	t->done++;
	relay_close(r, err != 0);
	loop_stop(t->loop);
}

static void *app_writer(void *arg)
{
	struct relay_test *t = arg;

	for (size_t off = 0; off < RELAY_BYTES;) {
		ssize_t n = write(t->app, t->out + off, RELAY_BYTES - off);
		if (n <= 0)
			return NULL;
		off += (size_t)n;
	}
	shutdown(t->app, SHUT_WR);
	return NULL;
}

static void *app_reader(void *arg)
{
	struct relay_test *t = arg;
	ssize_t n;

	while (t->got < RELAY_BYTES && (n = read(t->app, t->in + t->got, RELAY_BYTES - t->got)) > 0)
		t->got += (size_t)n;
	return NULL;
}

/* Echoes through TLS until close_notify, then sends its own. */
static void *peer_echo(void *arg)
{
	struct relay_test *t = arg;
	static uint8_t buf[65536];
	size_t total = 0;
	ssize_t n;

	while ((n = tls_read(t->peer_ssl, buf, sizeof(buf))) > 0) {
		for (ssize_t off = 0; off < n;) {
			ssize_t w = tls_write(t->peer_ssl, buf + off, (size_t)(n - off));
			if (w <= 0)
				return NULL;
			off += w;
		}
		total += (size_t)n;
		if (t->truncate && total >= RELAY_BYTES / 2) {
			shutdown(t->peer, SHUT_RDWR); /* no close_notify */
			return NULL;
		}
	}
	if (n == 0) {
		tls_shutdown(t->peer_ssl);
		shutdown(t->peer, SHUT_WR);
	}
	return NULL;
}

static void run_relay(struct relay_test *t)
{
	char err[128];
	struct ssl_ctx_st *cctx = tls_client_ctx(fp, err, sizeof(err));
	struct ssl_st *c;
	pthread_t th[3];
	int ap[2], tp[2];

	t->loop = loop_new();
	t->out = malloc(RELAY_BYTES);
	t->in = malloc(RELAY_BYTES);
	for (size_t i = 0; i < RELAY_BYTES; i++)
		t->out[i] = (uint8_t)(i * 2654435761u >> 13);
	pair(ap);
	pair(tp);
	c = tls_new(cctx, tp[0], false);
	t->peer_ssl = tls_new(sctx, tp[1], true);
	assert_int_equal(handshake(c, t->peer_ssl), 0);
	/* the test's ends block; the relay's stay non-blocking */
	t->app = ap[0];
	t->peer = tp[1];
	assert_int_equal(fcntl(ap[0], F_SETFL, 0), 0);
	assert_int_equal(fcntl(tp[1], F_SETFL, 0), 0);
	assert_int_equal(relay_start_tls(&t->r, t->loop, ap[1], tp[0], 1, c, on_done, t), 0);
	pthread_create(&th[0], NULL, app_writer, t);
	pthread_create(&th[1], NULL, app_reader, t);
	pthread_create(&th[2], NULL, peer_echo, t);
	assert_int_equal(loop_run(t->loop), 0);
	if (t->err) /* the reset reaches the app: wake its threads */
		shutdown(t->app, SHUT_RDWR);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	tls_free(t->peer_ssl);
	close(t->app);
	close(t->peer);
	loop_free(t->loop);
	tls_ctx_free(cctx);
}

static void test_relay_tls(void **state)
{
	struct relay_test t = { 0 };

	(void)state;
	run_relay(&t);
	assert_int_equal(t.done, 1);
	assert_int_equal(t.err, 0);
	assert_int_equal(t.got, RELAY_BYTES);
	assert_memory_equal(t.in, t.out, RELAY_BYTES);
	assert_int_equal(t.r.bytes[0], RELAY_BYTES);
	assert_int_equal(t.r.bytes[1], RELAY_BYTES);
	free(t.in);
	free(t.out);
}

static void test_relay_tls_truncation(void **state)
{
	struct relay_test t = { .truncate = true };

	(void)state;
	run_relay(&t);
	assert_int_equal(t.done, 1);
	assert_true(t.err < 0); /* a reset for the owner to pass on, never a clean EOF */
	assert_true(t.got < RELAY_BYTES);
	free(t.in);
	free(t.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dir_and_fingerprint), cmocka_unit_test(test_pin_mismatch),
		cmocka_unit_test(test_not_tls),             cmocka_unit_test(test_resumption_tickets),
		cmocka_unit_test(test_half_close),          cmocka_unit_test(test_bulk_small_buffers),
		cmocka_unit_test(test_bulk_batched),        cmocka_unit_test(test_relay_tls),
		cmocka_unit_test(test_relay_tls_truncation),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
