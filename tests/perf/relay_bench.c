/* What TLS costs the tunnel, on loopback TCP (`make bench-relay`):
 *
 *   throughput   source -> relay A -> relay B -> sink, each relay in its own
 *                event loop thread, as the daemon and the manager are:
 *                  plain: splice relays (--insecure)
 *                  tls:   A reads plain and writes TLS, B the reverse
 *                BYTES one way, then the same both ways at once; then
 *                two TLS streams with one relay thread per side, and
 *                with two per side (what --threads changes).
 *   handshakes   new tunnel connections: TCP connect + accept alone, then
 *                with a full TLS 1.3 handshake, then a resumed one.
 *
 * Prints one line per measurement and a JSON summary. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/util.h"
#include "net/relay.h"
#include "net/tls.h"

#define CHUNK (256 * 1024)

static struct ssl_ctx_st *sctx, *cctx;
static uint8_t fp[TLS_FP_LEN];
static uint64_t total = 1ull << 30;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
	       ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static int lfd;
static struct sockaddr_in laddr;

/* A connected TCP pair on loopback: *a the connecting end, *b the accepted. */
static void tcp_pair(int *a, int *b)
{
	int one = 1;

	*a = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&laddr, sizeof(laddr)) < 0 ||
	    (*b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		perror("tcp pair");
		exit(1);
	}
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void nonblock(int fd, bool on)
{
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

/* Both ends of a TLS handshake, each non-blocking, stepped in turn. */
static int handshake(struct ssl_st *c, struct ssl_st *s)
{
	bool dc = false, ds = false;

	while (!(dc && ds)) {
		int r;
		if (!dc && (r = tls_handshake(c)) < 0)
			return r;
		dc = dc || r == 0;
		if (!ds && (r = tls_handshake(s)) < 0)
			return r;
		ds = ds || r == 0;
	}
	return 0;
}

/* The tunnel between the relays: a TCP pair, with TLS (*ca the client
 * side, *sb the server side, handshaken) unless tls is false. */
static void tunnel_pair(int *a, int *b, bool tls, struct ssl_st **ca, struct ssl_st **sb)
{
	tcp_pair(a, b);
	nonblock(*a, true);
	nonblock(*b, true);
	*ca = *sb = NULL;
	if (!tls)
		return;
	*ca = tls_new(cctx, *a, false);
	*sb = tls_new(sctx, *b, true);
	if (handshake(*ca, *sb) < 0) {
		fprintf(stderr, "handshake failed\n");
		exit(1);
	}
}

/* ---- throughput ---- */

struct relay_thread {
	struct loop *loop;
	struct relay r;
	pthread_t th;
	int open;
};

static void relay_done(struct relay *r, int err, void *arg)
{
	struct relay_thread *t = arg;

	if (err)
		fprintf(stderr, "relay: %s\n", strerror(-err));
	relay_close(r, err != 0);
	loop_stop(t->loop);
}

static void *relay_run(void *arg)
{
	struct relay_thread *t = arg;

	loop_run(t->loop);
	return NULL;
}

struct pump {
	int fd;
	bool write;
	uint64_t n;
	pthread_t th;
};

static void *pump_run(void *arg)
{
	struct pump *p = arg;
	static __thread uint8_t buf[CHUNK];

	if (p->write) {
		memset(buf, 'x', sizeof(buf));
		for (uint64_t left = total; left;) {
			ssize_t n = write(p->fd, buf, MIN(left, sizeof(buf)));
			if (n <= 0)
				break;
			left -= (uint64_t)n;
			p->n += (uint64_t)n;
		}
		shutdown(p->fd, SHUT_WR);
		return NULL;
	}
	for (ssize_t n; (n = read(p->fd, buf, sizeof(buf))) > 0;)
		p->n += (uint64_t)n;
	return NULL;
}

/* src_end <-> [A] <-> [B] <-> dst_end; both ways when bidi.  MB/s of payload. */
static double run_chain(bool tls, bool bidi, double *cpu)
{
	struct relay_thread A = { .loop = loop_new() }, B = { .loop = loop_new() };
	int s1, a1, a2, b1, b2, d1;
	struct ssl_st *ca = NULL, *sb = NULL;
	struct pump p[4];
	double t0, c0, secs;
	uint64_t moved = 0;
	int np = 0;

	tcp_pair(&s1, &a1); /* source - A */
	tunnel_pair(&a2, &b1, tls, &ca, &sb); /* A - B */
	tcp_pair(&b2, &d1); /* B - sink */
	nonblock(a1, true);
	nonblock(b2, true);
	if ((tls ? relay_start_tls(&A.r, A.loop, a1, a2, 1, ca, relay_done, &A)
		 : relay_start(&A.r, A.loop, a1, a2, relay_done, &A)) < 0 ||
	    (tls ? relay_start_tls(&B.r, B.loop, b1, b2, 0, sb, relay_done, &B)
		 : relay_start(&B.r, B.loop, b1, b2, relay_done, &B)) < 0) {
		fprintf(stderr, "relay start failed\n");
		exit(1);
	}
	p[np++] = (struct pump){ .fd = s1, .write = true };
	p[np++] = (struct pump){ .fd = d1, .write = false };
	if (bidi) {
		p[np++] = (struct pump){ .fd = d1, .write = true };
		p[np++] = (struct pump){ .fd = s1, .write = false };
	} else {
		shutdown(d1, SHUT_WR); /* nothing comes back: that direction ends at once */
	}
	t0 = now_s();
	c0 = cpu_s();
	pthread_create(&A.th, NULL, relay_run, &A);
	pthread_create(&B.th, NULL, relay_run, &B);
	for (int i = 0; i < np; i++)
		pthread_create(&p[i].th, NULL, pump_run, &p[i]);
	for (int i = 0; i < np; i++) {
		pthread_join(p[i].th, NULL);
		if (!p[i].write)
			moved += p[i].n;
	}
	pthread_join(A.th, NULL);
	pthread_join(B.th, NULL);
	secs = now_s() - t0;
	*cpu = cpu_s() - c0;
	close(s1);
	close(d1);
	loop_free(A.loop);
	loop_free(B.loop);
	if (moved != total * (bidi ? 2 : 1))
		fprintf(stderr, "moved %lu of %lu bytes\n", (unsigned long)moved, (unsigned long)total);
	return (double)moved / secs / 1e6;
}

/* ---- threads: streams on one relay thread per side, or on several ---- */

struct side {
	struct loop *loop;
	pthread_t th;
	int open; /* relays still running in it */
};

struct side_relay {
	struct relay r;
	struct side *side;
};

static void side_relay_done(struct relay *r, int err, void *arg)
{
	struct side_relay *sr = arg;

	if (err)
		fprintf(stderr, "relay: %s\n", strerror(-err));
	relay_close(r, err != 0);
	if (--sr->side->open == 0)
		loop_stop(sr->side->loop);
}

static void *side_run(void *arg)
{
	struct side *s = arg;

	loop_run(s->loop);
	return NULL;
}

#define STREAMS_MAX 4

/* n TLS streams, one way, each source -> A -> B -> sink; the A relays on
 * `threads` loops (stream i on loop i % threads), the B relays the same:
 * what giving each side more threads (connect --threads, manager
 * --threads) changes.  MB/s of payload, all streams together. */
static double run_streams(int n, int threads, double *cpu)
{
	struct side A[STREAMS_MAX], B[STREAMS_MAX];
	struct side_relay ra[STREAMS_MAX], rb[STREAMS_MAX];
	struct pump p[2 * STREAMS_MAX];
	double t0, c0, secs;
	uint64_t moved = 0;

	for (int t = 0; t < threads; t++) {
		A[t] = (struct side){ .loop = loop_new() };
		B[t] = (struct side){ .loop = loop_new() };
	}
	for (int i = 0; i < n; i++) {
		int s1, a1, a2, b1, b2, d1;
		struct ssl_st *ca, *sb;

		tcp_pair(&s1, &a1);
		tunnel_pair(&a2, &b1, true, &ca, &sb);
		tcp_pair(&b2, &d1);
		nonblock(a1, true);
		nonblock(b2, true);
		ra[i].side = &A[i % threads];
		rb[i].side = &B[i % threads];
		ra[i].side->open++;
		rb[i].side->open++;
		if (relay_start_tls(&ra[i].r, ra[i].side->loop, a1, a2, 1, ca, side_relay_done, &ra[i]) < 0 ||
		    relay_start_tls(&rb[i].r, rb[i].side->loop, b1, b2, 0, sb, side_relay_done, &rb[i]) < 0) {
			fprintf(stderr, "relay start failed\n");
			exit(1);
		}
		p[2 * i] = (struct pump){ .fd = s1, .write = true };
		p[2 * i + 1] = (struct pump){ .fd = d1, .write = false };
		shutdown(d1, SHUT_WR);
	}
	t0 = now_s();
	c0 = cpu_s();
	for (int t = 0; t < threads; t++) {
		pthread_create(&A[t].th, NULL, side_run, &A[t]);
		pthread_create(&B[t].th, NULL, side_run, &B[t]);
	}
	for (int i = 0; i < 2 * n; i++)
		pthread_create(&p[i].th, NULL, pump_run, &p[i]);
	for (int i = 0; i < 2 * n; i++) {
		pthread_join(p[i].th, NULL);
		if (!p[i].write)
			moved += p[i].n;
	}
	for (int t = 0; t < threads; t++) {
		pthread_join(A[t].th, NULL);
		pthread_join(B[t].th, NULL);
		loop_free(A[t].loop);
		loop_free(B[t].loop);
	}
	secs = now_s() - t0;
	*cpu = cpu_s() - c0;
	for (int i = 0; i < 2 * n; i++)
		close(p[i].fd);
	if (moved != total * (uint64_t)n)
		fprintf(stderr, "moved %lu of %lu bytes\n", (unsigned long)moved, (unsigned long)(total * (uint64_t)n));
	return (double)moved / secs / 1e6;
}

/* ---- new connections ---- */

/* Microseconds (wall) per new connection, and CPU per connection in *cpu_us. */
static double run_conns(int n, int mode, double *cpu_us)
{
	double t0 = now_s(), c0 = cpu_s();
	char b;

	for (int i = 0; i < n; i++) {
		int a, c;
		struct ssl_st *cs, *ss;
		tcp_pair(&a, &c);
		if (mode > 0) {
			nonblock(a, true);
			nonblock(c, true);
			cs = tls_new(cctx, a, false);
			ss = tls_new(sctx, c, true);
			if (handshake(cs, ss) < 0 || (i > 0 && (mode == 2) != tls_resumed(cs))) {
				fprintf(stderr, "handshake %d: resumed %d\n", i, tls_resumed(cs));
				exit(1);
			}
			/* as the manager does: one more ticket on a resumed connection */
			tls_send_tickets(ss, tls_resumed(ss) ? 1 : 0);
			tls_write(ss, "x", 1);
			while (tls_read(cs, &b, 1) == -EAGAIN)
				;
			tls_shutdown(cs);
			tls_shutdown(ss);
			tls_free(cs);
			tls_free(ss);
		}
		close(a);
		close(c);
		if (mode == 1) { /* full handshakes: no ticket to offer next time */
			tls_ctx_free(cctx);
			cctx = tls_client_ctx(fp, NULL, 0);
		}
	}
	*cpu_us = (cpu_s() - c0) / n * 1e6;
	return (now_s() - t0) / n * 1e6;
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/subway-bench-XXXXXX", cert[128], key[128], err[256];
	double plain1, tls1, plain2, tls2, cp1, ct1, cp2, ct2, th1, th2, cth1, cth2, tcp_us, full_us, res_us, tcp_cpu, full_cpu, res_cpu;
	socklen_t sl = sizeof(laddr);
	bool created;
	int n = 2000;

	if (argc > 1)
		total = strtoull(argv[1], NULL, 0) << 20;
	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(dir) || tls_dir_ensure(dir, cert, key, sizeof(cert), &created, err, sizeof(err)) < 0 ||
	    !(sctx = tls_server_ctx(cert, key, fp, err, sizeof(err))) ||
	    !(cctx = tls_client_ctx(fp, err, sizeof(err)))) {
		fprintf(stderr, "setup: %s\n", err);
		return 1;
	}
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	laddr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (bind(lfd, (struct sockaddr *)&laddr, sizeof(laddr)) < 0 || listen(lfd, 128) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&laddr, &sl) < 0) {
		perror("listen");
		return 1;
	}
	plain1 = run_chain(false, false, &cp1);
	tls1 = run_chain(true, false, &ct1);
	printf("one way, %lu MiB:   plain splice %7.0f MB/s (cpu %.2f s)   tls %7.0f MB/s (cpu %.2f s)\n",
	       (unsigned long)(total >> 20), plain1, cp1, tls1, ct1);
	plain2 = run_chain(false, true, &cp2);
	tls2 = run_chain(true, true, &ct2);
	printf("both ways, %lu MiB each: plain splice %7.0f MB/s (cpu %.2f s)   tls %7.0f MB/s (cpu %.2f s)\n",
	       (unsigned long)(total >> 20), plain2, cp2, tls2, ct2);
	th1 = run_streams(2, 1, &cth1);
	th2 = run_streams(2, 2, &cth2);
	printf("two tls streams, %lu MiB each: one relay thread per side %7.0f MB/s (cpu %.2f s)   "
	       "two per side %7.0f MB/s (cpu %.2f s)\n", (unsigned long)(total >> 20), th1, cth1, th2, cth2);
	tcp_us = run_conns(n, 0, &tcp_cpu);
	res_us = run_conns(n, 2, &res_cpu);
	full_us = run_conns(n / 4, 1, &full_cpu);
	printf("new connection (both ends, %d each): tcp %.0f us (cpu %.0f), +tls resumed %.0f us (cpu %.0f), "
	       "+tls full %.0f us (cpu %.0f)\n", n, tcp_us, tcp_cpu, res_us, res_cpu, full_us, full_cpu);
	printf("{\"plain_mbps\": %.0f, \"tls_mbps\": %.0f, \"plain_bidi_mbps\": %.0f, \"tls_bidi_mbps\": %.0f, "
	       "\"tls_2streams_1thread_mbps\": %.0f, \"tls_2streams_2threads_mbps\": %.0f, "
	       "\"tcp_conn_us\": %.0f, \"tls_resumed_conn_us\": %.0f, \"tls_full_conn_us\": %.0f}\n",
	       plain1, tls1, plain2, tls2, th1, th2, tcp_us, res_us, full_us);
	tls_ctx_free(cctx);
	tls_ctx_free(sctx);
	unlink(cert);
	unlink(key);
	rmdir(dir);
	return 0;
}
