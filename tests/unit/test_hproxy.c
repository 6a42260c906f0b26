/* The agent's HTTP routing proxy (src/agent/hproxy.c) in one loop: a TCP
 * client on loopback, and fake upstreams (the app, the laptops of routes
 * 1 to 3) on socket pairs that answer each request with a text naming who
 * answered what, so that the client's bytes can be compared with what each
 * request should have earned, in order.  "who" is a route's id, 0 for the
 * app; the setup's one route (1, personal, X-Dev: alice) is who 1, the
 * same index as HPROXY_LAPTOP. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "agent/hproxy.h"
#include "agent/http.h"
#include "common/loop.h"
#include "net/outbuf.h"
#include "net/sock.h"

#define GOT_MAX (8 << 20)
#define SRV_IN (512 * 1024)
#define SRV_MAX 12
#define WHO_MAX 4
#define LOG_MAX 256

enum { APP = 0, A = 1, B = 2, M = 3 }; /* who */

enum srv_kind { SRV_ANSWER, SRV_NEVER_READ, SRV_CLOSE_BEFORE, SRV_CUT, SRV_JUNK, SRV_RAW, SRV_IDLE_CLOSE, SRV_BAD };

struct harness;

struct srv {
	struct harness *hn;
	int who;     /* the route's id, 0 for the app */
	bool mirror; /* opened for copies */
	int fd;
	char *in;
	size_t len;
	struct http_head h;
	struct http_body b;
	size_t seen; /* bytes of the request in progress in s->in */
	size_t body; /* bytes of its body so far */
	bool in_body, raw, eof, reset, close_after;
	struct outbuf out;
	char log[LOG_MAX]; /* the paths of the requests it got, each after a space */
};

struct harness {
	struct loop *loop;
	struct hproxy *p;
	struct hproxy_cfg cfg;
	struct hproxy_ops ops;
	int c; /* the client's end */
	struct outbuf cout;
	size_t drip; /* bytes per write from the client, 0 for all */
	size_t sent;
	char *got;
	size_t got_len;
	bool client_eof, client_reset;
	int refuse[WHO_MAX];      /* upstream() fails with this */
	bool tcp_refuse[WHO_MAX]; /* upstream() gives a connect to a closed port */
	int hold[WHO_MAX];        /* upstream() holds its fd, then readies it: 1 ok, or -errno */
	struct { int fd, err; uint64_t at; } held[SRV_MAX];
	int nheld;
	enum srv_kind kind[WHO_MAX];
	struct srv srv[SRV_MAX];
	int nsrv, conns[WHO_MAX];
	int served[WHO_MAX], expected[WHO_MAX]; /* responses made and foreseen */
	int laptops_open_max; /* laptop connections for requests open at once, at most */
	uint64_t counted[WHO_MAX][3]; /* ops->counted, by route and what */
	char *want;
	size_t want_len;
	bool done;
	struct hproxy_stats st;
	struct loop_timer tick;
	bool (*until)(struct harness *);
	uint64_t deadline;
};

static struct harness H;

/* What a fake upstream answers: its name, the path, the request body's
 * framed length and its count, in the framing the request asks for. */
static size_t gen_response(char *out, size_t cap, int who, const char *path, size_t plen, size_t bodylen, int n,
			   const char *kind, size_t size, bool head, bool cont)
{
	static char text[512 * 1024];
	size_t tl = who ? (size_t)snprintf(text, 200, "laptop%d %.*s %zu #%d\n", who, (int)plen, path, bodylen, n)
			: (size_t)snprintf(text, 200, "app %.*s %zu #%d\n", (int)plen, path, bodylen, n);
	size_t o = 0;

	if (size > tl && size < sizeof(text)) {
		memset(text + tl, '.', size - tl);
		tl = size;
	}
	if (cont)
		o += (size_t)snprintf(out + o, cap - o, "HTTP/1.1 100 Continue\r\n\r\n");
	if (head)
		return o + (size_t)snprintf(out + o, cap - o, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", tl);
	if (!strcmp(kind, "chunked")) {
		size_t half = tl / 2;
		o += (size_t)snprintf(out + o, cap - o, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx;e=1\r\n", half);
		memcpy(out + o, text, half);
		o += half;
		o += (size_t)snprintf(out + o, cap - o, "\r\n%zx\r\n", tl - half);
		memcpy(out + o, text + half, tl - half);
		o += tl - half;
		return o + (size_t)snprintf(out + o, cap - o, "\r\n0\r\nX-T: 1\r\n\r\n");
	}
	if (!strcmp(kind, "close"))
		o += (size_t)snprintf(out + o, cap - o, "HTTP/1.1 200 OK\r\n\r\n");
	else
		o += (size_t)snprintf(out + o, cap - o, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", tl);
	memcpy(out + o, text, tl);
	return o + tl;
}

static char scratch[1 << 20];

/* The client should get this for its next request. */
static void expect(int who, const char *path, size_t bodylen, const char *kind, size_t size, bool head,
		   bool cont)
{
	size_t n = gen_response(scratch, sizeof(scratch), who, path, strlen(path), bodylen, ++H.expected[who], kind,
				size, head, cont);
	H.want = realloc(H.want, H.want_len + n);
	memcpy(H.want + H.want_len, scratch, n);
	H.want_len += n;
}

static void expect_raw(const char *s)
{
	size_t n = strlen(s);

	H.want = realloc(H.want, H.want_len + n);
	memcpy(H.want + H.want_len, s, n);
	H.want_len += n;
}

static void srv_event(struct loop *l, int fd, uint32_t events, void *arg);

static void srv_watch(struct srv *s)
{
	uint32_t e = s->hn->kind[s->who] == SRV_NEVER_READ ? 0 : LOOP_IN;

	if (outbuf_pending(&s->out))
		e |= LOOP_OUT;
	loop_mod(s->hn->loop, s->fd, e);
}

static void srv_close(struct srv *s)
{
	loop_close(s->hn->loop, &s->fd);
}

static void srv_respond(struct srv *s)
{
	int t = s->who;
	size_t klen = 0, slen = 0, n;
	const char *k = http_head_get(&s->h, "x-resp", &klen), *sz = http_head_get(&s->h, "x-size", &slen);
	char kind[16] = "fixed";
	size_t size = sz ? strtoul(sz, NULL, 10) : 0;

	if (k)
		snprintf(kind, sizeof(kind), "%.*s", (int)klen, k);
	snprintf(s->log + strlen(s->log), LOG_MAX - strlen(s->log), " %.*s", (int)s->h.path.len, http_at(&s->h, s->h.path));
	if (s->hn->kind[t] == SRV_CLOSE_BEFORE) {
		srv_close(s);
		return;
	}
	n = gen_response(scratch, sizeof(scratch), t, http_at(&s->h, s->h.path), s->h.path.len, s->body,
			 ++s->hn->served[t], kind, size, s->h.method == HTTP_M_HEAD, http_head_get(&s->h, "x-100", &klen));
	if (s->hn->kind[t] == SRV_CUT)
		n = 50;
	if (s->hn->kind[t] == SRV_BAD)
		n = (size_t)snprintf(scratch, sizeof(scratch), "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab");
	if (s->h.upgrade)
		n = (size_t)snprintf(scratch, sizeof(scratch), "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n"
							       "Connection: upgrade\r\n\r\n");
	assert_int_equal(outbuf_add(&s->out, scratch, n, 0), 0);
	if (s->hn->kind[t] == SRV_JUNK)
		outbuf_add(&s->out, "JUNK", 4, 0);
	s->raw = s->h.upgrade;
	s->close_after = !strcmp(kind, "close") || s->hn->kind[t] == SRV_CUT || s->hn->kind[t] == SRV_IDLE_CLOSE;
}

/* Takes every whole request in s->in (after a 101: echoes in upper case). */
static void srv_parse(struct srv *s)
{
	while (s->fd >= 0 && s->len) {
		ssize_t k;
		if (s->raw) {
			for (size_t i = 0; i < s->len; i++)
				s->in[i] = (char)(s->in[i] >= 'a' && s->in[i] <= 'z' ? s->in[i] - 32 : s->in[i]);
			outbuf_add(&s->out, s->in, s->len, 0);
			s->len = 0;
			return;
		}
		if (!s->in_body) {
			ssize_t r = http_head_parse(&s->h, s->in, s->len);
			if (r == 0)
				return;
			assert_true(r > 0);
			s->seen = (size_t)r;
			http_body_init(&s->b, &s->h);
			s->in_body = true;
		}
		k = http_body_feed(&s->b, s->in + s->seen, s->len - s->seen);
		assert_true(k >= 0);
		s->seen += (size_t)k;
		s->body += (size_t)k;
		if (!s->b.done) { /* keep the head, drop the body seen so far */
			memmove(s->in + s->h.len, s->in + s->seen, s->len - s->seen);
			s->len -= s->seen - s->h.len;
			s->seen = s->h.len;
			return;
		}
		s->in_body = false;
		srv_respond(s);
		memmove(s->in, s->in + s->seen, s->len - s->seen);
		s->len -= s->seen;
		s->body = 0;
		http_head_init(&s->h, HTTP_REQUEST, HTTP_M_OTHER);
	}
}

static void srv_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct srv *s = arg;
	ssize_t n;

	(void)l;
	(void)fd;
	if (s->hn->kind[s->who] == SRV_NEVER_READ) { /* until the proxy goes */
		if (events & (EPOLLHUP | EPOLLERR))
			srv_close(s);
		return;
	}
	if (events & LOOP_IN) {
		n = recv(s->fd, s->in + s->len, SRV_IN - s->len, 0);
		if (n <= 0 && !(n < 0 && errno == EAGAIN)) {
			s->eof = true;
			s->reset = n < 0;
			srv_close(s);
			return;
		}
		if (n > 0) {
			s->len += (size_t)n;
			srv_parse(s);
		}
	}
	if (s->fd >= 0 && outbuf_flush(&s->out, s->fd) < 0)
		srv_close(s);
	if (s->fd >= 0 && s->close_after && !outbuf_pending(&s->out))
		srv_close(s);
	if (s->fd >= 0)
		srv_watch(s);
}

static int closed_port(void)
{
	int l = sock_listen_tcp(0x7f000001, 0, 1);
	uint32_t a;
	uint16_t port;

	assert_true(l >= 0);
	sock_local(l, &a, &port);
	close(l);
	return port;
}

/* Whether the proxy's end of s is still open (s has read all it was sent). */
static bool srv_peer_open(struct srv *s)
{
	char c;

	return s->fd >= 0 && !(recv(s->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0);
}

static int h_upstream(void *arg, const struct hproxy_route *r, bool *held)
{
	struct harness *hn = arg;
	int t = r ? (int)r->id : APP, open = 0;
	struct srv *s;
	int sv[2];

	assert_true(t < WHO_MAX);
	*held = false;
	if (hn->refuse[t])
		return hn->refuse[t];
	if (hn->tcp_refuse[t])
		return sock_connect_tcp(0x7f000001, (uint16_t)closed_port(), 0);
	assert_true(hn->nsrv < SRV_MAX);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	s = &hn->srv[hn->nsrv++];
	s->hn = hn;
	s->who = t;
	s->mirror = r && r->mirror;
	s->fd = sv[1];
	if (hn->hold[t]) { /* the far end answers 20 ms later */
		*held = true;
		hn->held[hn->nheld].fd = sv[0];
		hn->held[hn->nheld].err = hn->hold[t] < 0 ? hn->hold[t] : 0;
		hn->held[hn->nheld++].at = loop_now_ms(hn->loop) + 20;
	}
	s->in = malloc(SRV_IN);
	s->raw = hn->kind[t] == SRV_RAW;
	http_head_init(&s->h, HTTP_REQUEST, HTTP_M_OTHER);
	assert_int_equal(loop_add(hn->loop, s->fd, 0, srv_event, s), 0);
	srv_watch(s);
	hn->conns[t]++;
	for (int i = 0; i < hn->nsrv; i++)
		open += hn->srv[i].who && !hn->srv[i].mirror && srv_peer_open(&hn->srv[i]);
	hn->laptops_open_max = open > hn->laptops_open_max ? open : hn->laptops_open_max;
	return sv[0];
}

static void h_counted(void *arg, uint32_t route, enum hproxy_count what, uint64_t n)
{
	struct harness *hn = arg;

	assert_true(route > 0 && route < WHO_MAX);
	assert_true(n > 0);
	hn->counted[route][what] += n;
}

static void h_done(void *arg, struct hproxy *p, const struct hproxy_stats *st)
{
	struct harness *hn = arg;

	assert_ptr_equal(p, hn->p);
	hn->st = *st;
	hn->done = true;
	hproxy_free(p);
	hn->p = NULL;
}

static void client_watch(void)
{
	uint32_t e = H.client_eof ? 0 : LOOP_IN;

	if (outbuf_pending(&H.cout))
		e |= LOOP_OUT;
	if (H.c >= 0)
		loop_mod(H.loop, H.c, e);
}

static void client_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	(void)l;
	(void)fd;
	(void)arg;
	if ((events & LOOP_OUT) && outbuf_pending(&H.cout)) {
		size_t n = outbuf_pending(&H.cout);
		if (H.drip && n > H.drip)
			n = H.drip;
		ssize_t w = send(H.c, H.cout.buf + H.cout.off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w > 0)
			H.cout.off += (size_t)w;
		if (H.cout.off == H.cout.len)
			H.cout.off = H.cout.len = 0;
	}
	if ((events & LOOP_IN) && !H.client_eof) {
		ssize_t n = recv(H.c, H.got + H.got_len, GOT_MAX - H.got_len, MSG_DONTWAIT);
		if (n > 0)
			H.got_len += (size_t)n;
		else if (n == 0 || errno != EAGAIN) {
			H.client_eof = true;
			H.client_reset = n < 0 && errno == ECONNRESET;
			shutdown(H.c, SHUT_WR); /* as a client does when its server is done */
		}
	}
	client_watch();
}

static void client_send(const char *s, size_t n)
{
	assert_int_equal(outbuf_add(&H.cout, s, n, 0), 0);
	H.sent += n;
	client_watch();
}

#define SEND(lit) client_send(lit, sizeof(lit) - 1)

static void tick(struct loop *l, struct loop_timer *t)
{
	(void)t;
	for (int i = 0; i < H.nheld; i++)
		if (H.held[i].fd >= 0 && loop_now_ms(l) >= H.held[i].at) {
			int fd = H.held[i].fd;
			H.held[i].fd = -1;
			hproxy_upstream_ready(H.p, fd, H.held[i].err);
		}
	if ((H.until && H.until(&H)) || loop_now_ms(l) > H.deadline)
		loop_stop(l);
	else
		loop_timer_arm(l, &H.tick, 2, tick, NULL);
}

static bool never(struct harness *hn)
{
	(void)hn;
	return false;
}

/* Runs the loop for ms. */
static void run_for(uint64_t ms)
{
	H.until = never;
	H.deadline = loop_now_ms(H.loop) + ms;
	loop_timer_arm(H.loop, &H.tick, 0, tick, NULL);
	loop_run(H.loop);
	loop_timer_cancel(H.loop, &H.tick);
}

static bool run_until(bool (*until)(struct harness *))
{
	H.until = until;
	H.deadline = loop_now_ms(H.loop) + 10000;
	loop_timer_arm(H.loop, &H.tick, 0, tick, NULL);
	loop_run(H.loop);
	loop_timer_cancel(H.loop, &H.tick);
	return until(&H);
}

static bool until_done(struct harness *hn)
{
	return hn->done && hn->client_eof;
}

static bool until_want(struct harness *hn)
{
	return hn->got_len >= hn->want_len;
}

/* A TCP connection on loopback: the client's end and the proxy's. */
static void tcp_pair(int *client, int *server)
{
	int l = sock_listen_tcp(0x7f000001, 0, 4);
	uint32_t a;
	uint16_t port;

	assert_true(l >= 0);
	sock_local(l, &a, &port);
	*client = sock_connect_tcp(0x7f000001, port, 0);
	assert_true(*client >= 0);
	for (int i = 0; i < 1000 && (*server = accept4(l, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) < 0; i++)
		usleep(1000);
	assert_true(*server >= 0);
	close(l);
}

static int setup(void **state)
{
	int pfd;

	(void)state;
	memset(&H, 0, sizeof(H));
	H.loop = loop_new();
	H.got = malloc(GOT_MAX);
	H.ops.upstream = h_upstream;
	H.ops.counted = h_counted;
	H.ops.done = h_done;
	H.cfg.n_routes = 1;
	H.cfg.routes[0].id = A;
	assert_int_equal(http_filter_add(&H.cfg.routes[0].filter, "x-dev=alice", (char[100]){ 0 }, 100), 0);
	tcp_pair(&H.c, &pfd);
	assert_int_equal(loop_add(H.loop, H.c, LOOP_IN, client_event, NULL), 0);
	H.p = hproxy_new(H.loop, pfd, &H.cfg, &H.ops, &H);
	assert_non_null(H.p);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hproxy_free(H.p);
	for (int i = 0; i < H.nsrv; i++) {
		loop_close(H.loop, &H.srv[i].fd);
		free(H.srv[i].in);
		outbuf_fini(&H.srv[i].out);
	}
	loop_close(H.loop, &H.c);
	outbuf_fini(&H.cout);
	loop_free(H.loop);
	free(H.got);
	free(H.want);
	return 0;
}

static void assert_got_want(void)
{
	if (H.got_len != H.want_len || memcmp(H.got, H.want, H.want_len)) {
		size_t i = 0;
		while (i < H.got_len && i < H.want_len && H.got[i] == H.want[i])
			i++;
		fail_msg("client got %zu bytes, wanted %zu; first difference at %zu: got '%.60s' want '%.60s'",
			 H.got_len, H.want_len, i, H.got + i, H.want + i);
	}
}

/* Alternating targets on one keep-alive connection, bodies of every kind,
 * written at once (pipelined: the proxy takes them one by one). */
static void send_mixed(void)
{
	static char big[100000 + 200];
	size_t n;

	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	SEND("POST /b HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nTransfer-Encoding: chunked\r\nX-Resp: chunked\r\n\r\n"
	     "3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\nT: v\r\n\r\n");
	expect(HPROXY_LAPTOP, "/b", 32, "chunked", 0, false, false);
	SEND("POST /c HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nX-Resp: chunked\r\n\r\nhello");
	expect(HPROXY_APP, "/c", 5, "chunked", 0, false, false);
	SEND("GET /d?q HTTP/1.1\r\nHost: web\r\nx-dev: alice\r\n\r\n");
	expect(HPROXY_LAPTOP, "/d", 0, "fixed", 0, false, false);
	SEND("HEAD /e HTTP/1.1\r\nHost: web\r\nX-DEV: alice\r\n\r\n");
	expect(HPROXY_LAPTOP, "/e", 0, "fixed", 0, true, false);
	SEND("\r\nPOST /f HTTP/1.1\r\nHost: web\r\nX-100: 1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
	expect(HPROXY_APP, "/f", 2, "fixed", 0, false, true);
	SEND("GET /g HTTP/1.1\r\nHost: web\r\nX-Size: 300000\r\nX-Dev: bob\r\n\r\n");
	expect(HPROXY_APP, "/g", 0, "fixed", 300000, false, false);
	n = (size_t)snprintf(big, sizeof(big), "POST /h HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nContent-Length: 100000\r\n\r\n");
	memset(big + n, 'b', 100000);
	client_send(big, n + 100000);
	expect(HPROXY_LAPTOP, "/h", 100000, "fixed", 0, false, false);
	SEND("GET /last HTTP/1.1\r\nHost: web\r\nConnection: close\r\nX-Resp: chunked\r\n\r\n");
	expect(HPROXY_APP, "/last", 0, "chunked", 0, false, false);
}

static void check_mixed(void)
{
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.st.err, 0);
	assert_int_equal(H.st.requests[HPROXY_APP], 5);
	assert_int_equal(H.st.requests[HPROXY_LAPTOP], 4);
	assert_int_equal(H.conns[HPROXY_APP], 1); /* kept alive across the laptop's turns */
	assert_int_equal(H.conns[HPROXY_LAPTOP], 1);
	assert_int_equal(H.st.client_out, H.want_len);
	assert_int_equal(H.st.client_in, H.sent);
	assert_int_equal(H.st.up_out[0] + H.st.up_out[1], H.sent - 2); /* the empty line before /f is not sent on */
	assert_int_equal(H.st.up_in[0] + H.st.up_in[1], H.want_len);
	assert_false(H.client_reset);
	assert_int_equal(H.counted[A][HPROXY_SENT], 4);
	assert_int_equal(H.counted[A][HPROXY_MIRRORED] + H.counted[A][HPROXY_DROPPED], 0);
}

static void test_keepalive_alternating(void **state)
{
	(void)state;
	send_mixed();
	check_mixed();
}

/* The same, the client's bytes coming 7 at a time: heads and bodies split. */
static void test_keepalive_drip(void **state)
{
	(void)state;
	H.drip = 7;
	send_mixed();
	check_mixed();
}

static bool until_want_app_gone(struct harness *hn)
{
	return hn->got_len >= hn->want_len && hn->srv[0].fd < 0;
}

/* A request matching the filter upgrades: the laptop takes the raw bytes
 * for the rest of the connection; the app's connection is closed. */
static void test_upgrade(void **state)
{
	(void)state;
	SEND("GET /x HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/x", 0, "fixed", 0, false, false);
	SEND("GET /ws HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\nhello raw");
	expect_raw("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\nHELLO RAW");
	assert_true(run_until(until_want_app_gone));
	assert_got_want();
	assert_int_equal(H.srv[0].fd, -1); /* the app's connection: closed at the switch */
	SEND("GET /not-http-any-more HTTP/1.1\r\n\r\n");
	expect_raw("GET /NOT-HTTP-ANY-MORE HTTP/1.1\r\n\r\n");
	assert_true(run_until(until_want));
	assert_got_want();
	shutdown(H.c, SHUT_WR); /* the client's end travels to the laptop, whose end comes back */
	assert_true(run_until(until_done));
	assert_int_equal(H.st.err, 0);
	assert_int_equal(H.st.requests[HPROXY_LAPTOP], 1);
	assert_int_equal(H.conns[HPROXY_LAPTOP], 1);
}

static bool until_mirror(struct harness *hn)
{
	return hn->done && hn->client_eof && hn->st.mirrored + hn->st.mirror_dropped == 40;
}

/* Mirror: the app answers everything; the laptop never reads, so copies
 * past the buffer are dropped and counted, and the client does not wait. */
static void test_mirror_laptop_never_reads(void **state)
{
	static char req[65536 + 200];
	(void)state;
	H.cfg.routes[0].mirror = true;
	memset(&H.cfg.routes[0].filter, 0, sizeof(H.cfg.routes[0].filter));
	H.kind[HPROXY_LAPTOP] = SRV_NEVER_READ;
	for (int i = 0; i < 40; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/m%d", i);
		size_t n = (size_t)snprintf(req, sizeof(req), "POST %s HTTP/1.1\r\nHost: web\r\nContent-Length: 65536%s\r\n\r\n",
					    path, i == 39 ? "\r\nConnection: close" : "");
		memset(req + n, 'm', 65536);
		client_send(req, n + 65536);
		expect(HPROXY_APP, path, 65536, "fixed", 0, false, false);
	}
	assert_true(run_until(until_mirror));
	assert_got_want();
	assert_int_equal(H.st.requests[HPROXY_APP], 40);
	assert_int_equal(H.st.requests[HPROXY_LAPTOP], 0);
	assert_true(H.st.mirror_dropped > 0);
	assert_true(H.st.mirrored > 0);
	assert_int_equal(H.st.mirrored + H.st.mirror_dropped, 40);
	assert_int_equal(H.served[HPROXY_LAPTOP], 0);
	assert_int_equal(H.counted[A][HPROXY_MIRRORED], H.st.mirrored);
	assert_int_equal(H.counted[A][HPROXY_DROPPED], H.st.mirror_dropped);
}

static bool until_mirror_served(struct harness *hn)
{
	return hn->done && hn->client_eof && hn->served[HPROXY_LAPTOP] == 2;
}

/* Mirror with a filter: the laptop sees a copy of the matching requests,
 * and its answers go nowhere. */
static void test_mirror_copies(void **state)
{
	(void)state;
	H.cfg.routes[0].mirror = true;
	SEND("GET /1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(HPROXY_APP, "/1", 0, "fixed", 0, false, false);
	SEND("GET /2 HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/2", 0, "fixed", 0, false, false);
	SEND("POST /3 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
	     "2\r\nab\r\n0\r\n\r\n");
	expect(HPROXY_APP, "/3", 12, "fixed", 0, false, false);
	assert_true(run_until(until_mirror_served));
	assert_got_want();
	assert_int_equal(H.st.mirrored, 2);
	assert_int_equal(H.st.mirror_dropped, 0);
	assert_int_equal(H.counted[A][HPROXY_MIRRORED], 2);
	assert_int_equal(H.counted[A][HPROXY_SENT], 0);
	assert_string_equal(H.srv[1].log, " /1 /3");
	assert_int_equal(H.st.requests[HPROXY_APP], 3);
	assert_true(H.st.up_in[HPROXY_LAPTOP] > 0);
}

static bool until_sink_done(struct harness *hn)
{
	return hn->done && hn->client_eof && hn->nsrv == 2 && hn->srv[1].eof;
}

/* A short connection (one request, then the client's end) whose copy
 * waits for the laptop's answer to the dial: the copy goes all the same,
 * then a FIN (no reset); done comes after it. */
static void test_mirror_short_connection(void **state)
{
	(void)state;
	H.cfg.routes[0].mirror = true;
	H.hold[A] = 1;
	SEND("POST /1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc");
	expect(HPROXY_APP, "/1", 3, "fixed", 0, false, false);
	assert_true(run_until(until_sink_done));
	assert_got_want();
	assert_true(H.srv[1].mirror);
	assert_string_equal(H.srv[1].log, " /1");
	assert_false(H.srv[1].reset);
	assert_int_equal(H.counted[A][HPROXY_MIRRORED], 1);
	assert_int_equal(H.counted[A][HPROXY_DROPPED], 0);
}

/* Mirror with no laptop at all: every copy dropped, the client served. */
/* A laptop whose stream is not accepted yet: nothing is sent on it until
 * it is; then requests flow (personal), or, refused, copies are dropped
 * and counted, never mirrored (mirror). */
static void test_held_laptop(void **state)
{
	(void)state;
	H.hold[A] = 1;
	SEND("GET /1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(A, "/1", 0, "fixed", 0, false, false);
	run_for(8); /* opened, not yet accepted: nothing on it */
	assert_int_equal(H.nsrv, 1);
	assert_int_equal(H.srv[0].len, 0);
	SEND("GET /2 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nConnection: close\r\n\r\n");
	expect(A, "/2", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.conns[A], 1);
	assert_int_equal(H.counted[A][HPROXY_SENT], 2);
}

static void test_held_laptop_refused(void **state)
{
	(void)state;
	H.cfg.routes[0].mirror = true;
	H.hold[A] = -ECONNREFUSED;
	SEND("GET /1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(HPROXY_APP, "/1", 0, "fixed", 0, false, false);
	run_for(60); /* refused meanwhile */
	SEND("GET /2 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nConnection: close\r\n\r\n");
	expect(HPROXY_APP, "/2", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	run_for(60);
	assert_got_want();
	assert_int_equal(H.counted[A][HPROXY_MIRRORED], 0);
	assert_int_equal(H.counted[A][HPROXY_DROPPED], 2);
	assert_int_equal(H.st.err, 0);
}

static void test_mirror_no_laptop(void **state)
{
	(void)state;
	H.cfg.routes[0].mirror = true;
	H.refuse[HPROXY_LAPTOP] = -ECONNREFUSED;
	SEND("GET /1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(HPROXY_APP, "/1", 0, "fixed", 0, false, false);
	SEND("GET /2 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nConnection: close\r\n\r\n");
	expect(HPROXY_APP, "/2", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.st.mirror_dropped, 2);
	assert_int_equal(H.counted[A][HPROXY_DROPPED], 2);
	assert_int_equal(H.st.err, 0);
}

static bool got_has(const char *s)
{
	H.got[H.got_len] = 0;
	return strstr(H.got, s) != NULL;
}

/* The laptop refuses (at once, then a TCP connect refused later): the
 * client gets what the app answered, then a 502, then the end. */
static void test_refused_502(void **state)
{
	(void)state;
	H.refuse[HPROXY_LAPTOP] = -ECONNREFUSED;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	SEND("GET /b HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\nGET /never HTTP/1.1\r\nHost: web\r\n\r\n");
	assert_true(run_until(until_done));
	assert_true(H.got_len > H.want_len);
	H.got_len = H.want_len;
	assert_got_want();
	H.got_len = strlen(H.got);
	assert_true(got_has("#1\nHTTP/1.1 502 Bad Gateway\r\n"));
	assert_true(got_has("Connection: close\r\n"));
	assert_true(got_has("subway agent: the laptop could not be reached (Connection refused)\n"));
	assert_int_equal(H.st.replied, 502);
	assert_int_equal(H.st.err, -ECONNREFUSED);
	assert_false(H.client_reset);
}

static void test_refused_async_502(void **state)
{
	(void)state;
	H.tcp_refuse[HPROXY_APP] = true;
	SEND("POST /a HTTP/1.1\r\nHost: web\r\nContent-Length: 3\r\n\r\nabc");
	assert_true(run_until(until_done));
	assert_true(got_has("HTTP/1.1 502 Bad Gateway\r\n"));
	assert_true(got_has("Connection refused"));
	assert_int_equal(H.st.err, -ECONNREFUSED);
}

/* The app closes without answering: 502.  It sends half an answer and
 * closes: the client is reset. */
static void test_upstream_closes(void **state)
{
	(void)state;
	H.kind[HPROXY_APP] = SRV_CLOSE_BEFORE;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	assert_true(run_until(until_done));
	assert_true(got_has("HTTP/1.1 502 Bad Gateway\r\n"));
	assert_true(got_has("closed the connection before answering"));
}

static void test_upstream_cut(void **state)
{
	(void)state;
	H.kind[HPROXY_LAPTOP] = SRV_CUT;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nX-Size: 1000\r\n\r\n");
	assert_true(run_until(until_done));
	assert_int_equal(H.got_len, 50); /* what came, then the reset */
	assert_true(H.client_reset);
	assert_int_equal(H.st.err, -EPIPE);
}

/* A malformed answer (a smuggling attempt from upstream): 502. */
static void test_upstream_malformed(void **state)
{
	(void)state;
	H.kind[HPROXY_LAPTOP] = SRV_BAD;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	assert_true(run_until(until_done));
	assert_true(got_has("HTTP/1.1 502 Bad Gateway\r\n"));
	assert_true(got_has("subway agent: the laptop sent a malformed answer (conflicting Content-Lengths)\n"));
	assert_false(got_has("ab"));
	assert_int_equal(H.st.err, -EBADMSG);
}

/* Bytes after an answer: that upstream is not used again. */
static void test_upstream_junk(void **state)
{
	(void)state;
	H.kind[HPROXY_APP] = SRV_JUNK;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	assert_true(run_until(until_want));
	SEND("GET /b HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n");
	expect(HPROXY_APP, "/b", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.conns[HPROXY_APP], 2);
}

static bool until_app_gone(struct harness *hn)
{
	return hn->done && hn->nsrv == 2 && hn->srv[0].fd < 0 && hn->srv[1].fd < 0;
}

static bool until_app_has_some(struct harness *hn)
{
	return hn->nsrv == 2 && hn->srv[1].body == 9; /* "only some" */
}

/* The client resets mid-body: both upstreams are closed, err says why. */
static void test_client_reset(void **state)
{
	(void)state;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(HPROXY_LAPTOP, "/a", 0, "fixed", 0, false, false);
	assert_true(run_until(until_want));
	SEND("POST /b HTTP/1.1\r\nHost: web\r\nContent-Length: 100\r\n\r\nonly some");
	assert_true(run_until(until_app_has_some));
	sock_linger_rst(H.c);
	loop_close(H.loop, &H.c);
	assert_true(run_until(until_app_gone));
	assert_int_equal(H.st.err, -ECONNRESET);
	assert_int_equal(H.st.requests[HPROXY_APP], 1);
}

static void test_bad_requests(void **state)
{
	(void)state;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	SEND("POST /b HTTP/1.1\r\nHost: web\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
	assert_true(run_until(until_done));
	assert_true(H.got_len > H.want_len);
	assert_memory_equal(H.got, H.want, H.want_len);
	assert_true(got_has("HTTP/1.1 400 Bad Request\r\n"));
	assert_true(got_has("both Content-Length and Transfer-Encoding"));
	assert_int_equal(H.st.replied, 400);
	assert_int_equal(H.st.err, -EBADMSG);
	assert_int_equal(H.st.requests[HPROXY_APP], 1);
}

static void test_huge_head(void **state)
{
	static char big[HTTP_HEAD_MAX + 100];
	size_t n = (size_t)snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nHost: web\r\nX: ");
	(void)state;
	memset(big + n, 'x', sizeof(big) - n);
	client_send(big, sizeof(big));
	assert_true(run_until(until_done));
	assert_true(got_has("HTTP/1.1 431 Request Header Fields Too Large\r\n"));
	assert_int_equal(H.nsrv, 0);
}

static void test_bad_chunk_body(void **state)
{
	(void)state;
	SEND("POST /b HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n");
	assert_true(run_until(until_done));
	assert_true(got_has("HTTP/1.1 400 Bad Request\r\n"));
	assert_true(got_has("bad chunk extension"));
}

/* HTTP/2 with prior knowledge is not routed: all of it goes to the app. */
static void test_h2_to_app(void **state)
{
	(void)state;
	H.kind[HPROXY_APP] = SRV_RAW;
	SEND("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\4\0\0\0\0\0frames");
	expect_raw("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
	H.want = realloc(H.want, H.want_len + 15);
	memcpy(H.want + H.want_len, "\0\0\0\4\0\0\0\0\0FRAMES", 15);
	H.want_len += 15;
	assert_true(run_until(until_want));
	assert_got_want();
	shutdown(H.c, SHUT_WR);
	assert_true(run_until(until_done));
	assert_int_equal(H.nsrv, 1);
	assert_int_equal(H.srv[0].who, APP);
	assert_int_equal(H.st.requests[0] + H.st.requests[1], 0);
}

/* The owner turns the intercept off between requests: the next matching
 * request goes to the app. */
static void test_cfg_change(void **state)
{
	(void)state;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(HPROXY_LAPTOP, "/a", 0, "fixed", 0, false, false);
	assert_true(run_until(until_want));
	H.cfg.n_routes = 0;
	SEND("GET /b HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nConnection: close\r\n\r\n");
	expect(HPROXY_APP, "/b", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
}

/* An answer that ends with its connection ends the client's too. */
static void test_response_until_close(void **state)
{
	(void)state;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\nX-Resp: close\r\nX-Size: 70000\r\n\r\nGET /b HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "close", 70000, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.st.requests[HPROXY_APP], 1);
	assert_int_equal(H.st.err, 0);
}

/* HTTP/1.0 without keep-alive: one request, then the end. */
static void test_http10(void **state)
{
	(void)state;
	SEND("GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.st.requests[HPROXY_APP], 1);
}

static bool until_sent(struct harness *hn)
{
	(void)hn;
	return !outbuf_pending(&H.cout);
}

/* The client half-closes within a body: the app sees the end too. */
static void test_client_eof_mid_body(void **state)
{
	(void)state;
	SEND("POST /a HTTP/1.1\r\nHost: web\r\nContent-Length: 10\r\n\r\nabc");
	assert_true(run_until(until_sent));
	shutdown(H.c, SHUT_WR);
	assert_true(run_until(until_done));
	if (!got_has("HTTP/1.1 502 Bad Gateway\r\n")) /* the app saw the end, and closed */
		fail_msg("got %zu: %s (err %d)", H.got_len, H.got, H.st.err);
	assert_int_equal(H.nsrv, 1);
	assert_true(H.srv[0].eof);
}

/* A bad request followed by more than the socket holds: the 400 still
 * arrives whole (the proxy drains instead of closing on unread bytes). */
static void test_reply_survives_junk(void **state)
{
	static char junk[300000];
	(void)state;
	SEND("GET / HTTP/1.1\r\nHost: web\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
	memset(junk, 'j', sizeof(junk));
	client_send(junk, sizeof(junk));
	assert_true(run_until(until_done));
	assert_false(H.client_reset);
	assert_true(got_has("HTTP/1.1 400 Bad Request\r\n"));
	assert_true(got_has("conflicting Content-Lengths\n"));
	assert_int_equal(H.st.replied, 400);
}

static bool until_two_laptops(struct harness *hn)
{
	return hn->done && hn->client_eof && hn->conns[HPROXY_LAPTOP] == 2;
}

/* Mirror: a chunked copy outgrows the buffer mid-way: the laptop's
 * connection is reset (its stream is lost) and the next copy opens anew. */
static void test_mirror_cut_midway(void **state)
{
	static char chunk[70000];
	size_t n;
	(void)state;
	H.cfg.routes[0].mirror = true;
	H.kind[HPROXY_LAPTOP] = SRV_NEVER_READ;
	SEND("POST /big HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 30; i++) {
		n = (size_t)snprintf(chunk, sizeof(chunk), "%x\r\n", 65536);
		memset(chunk + n, 'c', 65536);
		memcpy(chunk + n + 65536, "\r\n", 2);
		client_send(chunk, n + 65538);
	}
	SEND("0\r\n\r\n");
	expect(HPROXY_APP, "/big", 30 * (65536 + 9) + 5, "fixed", 0, false, false);
	SEND("GET /small HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nConnection: close\r\n\r\n");
	expect(HPROXY_APP, "/small", 0, "fixed", 0, false, false);
	assert_true(run_until(until_two_laptops));
	assert_got_want();
	assert_int_equal(H.st.mirror_dropped, 1);
	assert_int_equal(H.st.mirrored, 1);
	assert_int_equal(H.counted[A][HPROXY_DROPPED], 1);
	assert_int_equal(H.counted[A][HPROXY_MIRRORED], 1);
}

/* The app closes its idle keep-alive connection: the next request opens
 * another. */
static void test_idle_upstream_closes(void **state)
{
	(void)state;
	H.kind[HPROXY_APP] = SRV_IDLE_CLOSE;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	assert_true(run_until(until_want));
	run_for(20);
	SEND("GET /b HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n");
	expect(HPROXY_APP, "/b", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.conns[HPROXY_APP], 2);
	assert_int_equal(H.st.err, 0);
}

/* Keep-alive ends when the client stays silent; a slow head gets 408. */
static void test_idle_client(void **state)
{
	(void)state;
	H.cfg.idle_ms = 50;
	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done)); /* 50 ms after the answer */
	assert_got_want();
	assert_int_equal(H.st.err, 0);
	assert_int_equal(H.srv[0].fd, -1);
}

static void test_slow_head(void **state)
{
	(void)state;
	H.cfg.idle_ms = 50; /* read when the wait for a head begins: from the next one */
	SEND("GET /a HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(HPROXY_APP, "/a", 0, "fixed", 0, false, false);
	assert_true(run_until(until_want));
	SEND("GET /b HTTP/1.1\r\nHost: w");
	assert_true(run_until(until_done));
	assert_memory_equal(H.got, H.want, H.want_len);
	assert_true(got_has("#1\nHTTP/1.1 408 Request Timeout\r\n"));
	assert_int_equal(H.st.err, -ETIMEDOUT);
	assert_int_equal(H.st.requests[HPROXY_APP], 1);
}

/* Routes. */

static void add_route(uint32_t id, bool mirror, const char *spec, const char *path)
{
	struct hproxy_route *r = &H.cfg.routes[H.cfg.n_routes++];
	char err[100];

	memset(r, 0, sizeof(*r));
	r->id = id;
	r->mirror = mirror;
	if (spec)
		assert_int_equal(http_filter_add(&r->filter, spec, err, sizeof(err)), 0);
	if (path)
		assert_int_equal(http_filter_set_path(&r->filter, path, err, sizeof(err)), 0);
}

/* Two developers' personal routes and everyone else on one keep-alive
 * connection: A, B and the app in turn, bodies fixed and chunked. */
static void send_two_routes(void)
{
	H.cfg.n_routes = 0;
	add_route(A, false, "x-dev=alice", NULL);
	add_route(B, false, "x-dev=bob", NULL);
	SEND("GET /1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(A, "/1", 0, "fixed", 0, false, false);
	SEND("POST /2 HTTP/1.1\r\nHost: web\r\nX-Dev: bob\r\nTransfer-Encoding: chunked\r\nX-Resp: chunked\r\n\r\n"
	     "3\r\nabc\r\n0\r\n\r\n");
	expect(B, "/2", 13, "chunked", 0, false, false);
	SEND("GET /3 HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(APP, "/3", 0, "fixed", 0, false, false);
	SEND("POST /4 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nContent-Length: 5\r\n\r\nhello");
	expect(A, "/4", 5, "fixed", 0, false, false);
	SEND("POST /5 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nTransfer-Encoding: chunked\r\nX-Size: 70000\r\n\r\n"
	     "2\r\nhi\r\n0\r\n\r\n");
	expect(A, "/5", 12, "fixed", 70000, false, false);
	SEND("GET /6 HTTP/1.1\r\nHost: web\r\nX-Dev: bob\r\nX-Resp: chunked\r\n\r\n");
	expect(B, "/6", 0, "chunked", 0, false, false);
	SEND("POST /7 HTTP/1.1\r\nHost: web\r\nX-Dev: carol\r\nContent-Length: 3\r\n\r\nabc");
	expect(APP, "/7", 3, "fixed", 0, false, false);
	SEND("GET /8 HTTP/1.1\r\nHost: web\r\nX-Dev: bob\r\nConnection: close\r\n\r\n");
	expect(B, "/8", 0, "fixed", 0, false, false);
}

static void check_two_routes(void)
{
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.st.err, 0);
	assert_false(H.client_reset);
	/* each upstream saw exactly its requests, in the order of creation */
	assert_int_equal(H.nsrv, 5);
	assert_int_equal(H.srv[0].who, A);
	assert_string_equal(H.srv[0].log, " /1");
	assert_int_equal(H.srv[1].who, B);
	assert_string_equal(H.srv[1].log, " /2");
	assert_int_equal(H.srv[2].who, APP);
	assert_string_equal(H.srv[2].log, " /3 /7");
	assert_int_equal(H.srv[3].who, A);
	assert_string_equal(H.srv[3].log, " /4 /5");
	assert_int_equal(H.srv[4].who, B);
	assert_string_equal(H.srv[4].log, " /6 /8");
	/* a switch closes the idle laptop connection before opening the next */
	assert_int_equal(H.laptops_open_max, 1);
	assert_true(H.srv[0].eof && H.srv[1].eof && H.srv[3].eof);
	assert_int_equal(H.conns[APP], 1);
	assert_int_equal(H.st.requests[HPROXY_APP], 2);
	assert_int_equal(H.st.requests[HPROXY_LAPTOP], 6);
	assert_int_equal(H.counted[A][HPROXY_SENT], 3);
	assert_int_equal(H.counted[B][HPROXY_SENT], 3);
	assert_int_equal(H.st.client_in, H.sent);
	assert_int_equal(H.st.up_out[0] + H.st.up_out[1], H.sent);
	assert_int_equal(H.st.client_out, H.want_len);
}

static void test_routes_alternating(void **state)
{
	(void)state;
	send_two_routes();
	check_two_routes();
}

static void test_routes_drip(void **state)
{
	(void)state;
	H.drip = 5;
	send_two_routes();
	check_two_routes();
}

/* A route removed between requests (its laptop gone): its requests go to
 * the app, its idle connection is closed; the other route still works,
 * until the table is empty.  The counts come as requests go. */
static void test_route_removed(void **state)
{
	(void)state;
	H.cfg.n_routes = 0;
	add_route(A, false, "x-dev=alice", NULL);
	add_route(B, false, "x-dev=bob", NULL);
	SEND("GET /1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(A, "/1", 0, "fixed", 0, false, false);
	assert_true(run_until(until_want));
	assert_got_want();
	assert_int_equal(H.counted[A][HPROXY_SENT], 1);
	H.cfg.routes[0] = H.cfg.routes[1];
	H.cfg.n_routes = 1;
	SEND("GET /2 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(APP, "/2", 0, "fixed", 0, false, false);
	SEND("GET /3 HTTP/1.1\r\nHost: web\r\nX-Dev: bob\r\n\r\n");
	expect(B, "/3", 0, "fixed", 0, false, false);
	assert_true(run_until(until_want));
	assert_got_want();
	assert_true(H.srv[0].eof); /* closed at the head of /2 */
	assert_int_equal(H.counted[B][HPROXY_SENT], 1);
	H.cfg.n_routes = 0;
	SEND("GET /4 HTTP/1.1\r\nHost: web\r\nX-Dev: bob\r\nConnection: close\r\n\r\n");
	expect(APP, "/4", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.nsrv, 3);
	assert_string_equal(H.srv[1].log, " /2 /4");
	assert_string_equal(H.srv[2].log, " /3");
	assert_int_equal(H.counted[A][HPROXY_SENT], 1);
	assert_int_equal(H.counted[B][HPROXY_SENT], 1);
	assert_int_equal(H.st.requests[HPROXY_APP], 2);
	assert_int_equal(H.st.requests[HPROXY_LAPTOP], 2);
}

static bool until_three_copies(struct harness *hn)
{
	return hn->done && hn->client_eof && hn->served[M] == 3;
}

/* A mirror route and a personal one on one connection: the copies'
 * connection stays open across the personal route's turns. */
static void test_mirror_and_personal(void **state)
{
	(void)state;
	H.cfg.n_routes = 0;
	add_route(M, true, NULL, "/m/");
	add_route(B, false, "x-dev=bob", NULL);
	SEND("GET /m/1 HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(APP, "/m/1", 0, "fixed", 0, false, false);
	SEND("GET /x HTTP/1.1\r\nHost: web\r\nX-Dev: bob\r\n\r\n");
	expect(B, "/x", 0, "fixed", 0, false, false);
	SEND("POST /m/2 HTTP/1.1\r\nHost: web\r\nTransfer-Encoding: chunked\r\nX-Resp: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n");
	expect(APP, "/m/2", 14, "chunked", 0, false, false);
	SEND("GET /y HTTP/1.1\r\nHost: web\r\n\r\n");
	expect(APP, "/y", 0, "fixed", 0, false, false);
	SEND("POST /m/3 HTTP/1.1\r\nHost: web\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
	expect(APP, "/m/3", 2, "fixed", 0, false, false);
	assert_true(run_until(until_three_copies));
	assert_got_want();
	assert_int_equal(H.conns[M], 1);
	assert_int_equal(H.conns[B], 1);
	assert_int_equal(H.conns[APP], 1);
	for (int i = 0; i < H.nsrv; i++) {
		const struct srv *s = &H.srv[i];
		assert_string_equal(s->log, s->who == M ? " /m/1 /m/2 /m/3" : s->who == B ? " /x" : " /m/1 /m/2 /y /m/3");
	}
	assert_int_equal(H.counted[M][HPROXY_MIRRORED], 3);
	assert_int_equal(H.counted[M][HPROXY_DROPPED] + H.counted[M][HPROXY_SENT], 0);
	assert_int_equal(H.counted[B][HPROXY_SENT], 1);
	assert_int_equal(H.counted[B][HPROXY_MIRRORED] + H.counted[B][HPROXY_DROPPED], 0);
	assert_int_equal(H.st.mirrored, 3);
	assert_int_equal(H.st.requests[HPROXY_APP], 4);
	assert_int_equal(H.st.requests[HPROXY_LAPTOP], 1);
}

static bool until_b_copy(struct harness *hn)
{
	return hn->done && hn->client_eof && hn->served[B] == 1;
}

/* Two mirror routes: a copy for B closes A's connection for copies; the
 * copies still waiting for A (its laptop never reads) are dropped and
 * counted as A's. */
static void test_mirror_switch(void **state)
{
	static char req[65536 + 200];
	(void)state;
	H.cfg.n_routes = 0;
	add_route(A, true, "x-dev=alice", NULL);
	add_route(B, true, "x-dev=bob", NULL);
	H.kind[A] = SRV_NEVER_READ;
	for (int i = 0; i < 10; i++) {
		char path[32];
		snprintf(path, sizeof(path), "/a%d", i);
		size_t n = (size_t)snprintf(req, sizeof(req),
					    "POST %s HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nContent-Length: 65536\r\n\r\n", path);
		memset(req + n, 'a', 65536);
		client_send(req, n + 65536);
		expect(APP, path, 65536, "fixed", 0, false, false);
	}
	SEND("GET /b HTTP/1.1\r\nHost: web\r\nX-Dev: bob\r\nConnection: close\r\n\r\n");
	expect(APP, "/b", 0, "fixed", 0, false, false);
	assert_true(run_until(until_b_copy));
	assert_got_want();
	assert_int_equal(H.conns[A], 1);
	assert_int_equal(H.conns[B], 1);
	assert_string_equal(H.srv[H.nsrv - 1].log, " /b");
	assert_true(H.counted[A][HPROXY_DROPPED] > 0);
	assert_int_equal(H.counted[A][HPROXY_MIRRORED] + H.counted[A][HPROXY_DROPPED], 10);
	assert_int_equal(H.counted[B][HPROXY_MIRRORED], 1);
	assert_int_equal(H.counted[B][HPROXY_DROPPED], 0);
	assert_int_equal(H.st.mirrored, H.counted[A][HPROXY_MIRRORED] + 1);
	assert_int_equal(H.st.mirror_dropped, H.counted[A][HPROXY_DROPPED]);
	assert_int_equal(H.st.requests[HPROXY_LAPTOP], 0);
}

/* The first route that matches decides, whatever the later ones say. */
static void test_route_order(void **state)
{
	(void)state;
	H.cfg.n_routes = 0;
	add_route(B, false, NULL, "/api");
	add_route(A, false, "x-dev=alice", NULL);
	SEND("GET /api/1 HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\n\r\n");
	expect(B, "/api/1", 0, "fixed", 0, false, false);
	SEND("GET /web HTTP/1.1\r\nHost: web\r\nX-Dev: alice\r\nConnection: close\r\n\r\n");
	expect(A, "/web", 0, "fixed", 0, false, false);
	assert_true(run_until(until_done));
	assert_got_want();
	assert_int_equal(H.counted[A][HPROXY_SENT], 1);
	assert_int_equal(H.counted[B][HPROXY_SENT], 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_keepalive_alternating, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keepalive_drip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upgrade, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror_laptop_never_reads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror_short_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror_no_laptop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_502, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_async_502, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_laptop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_laptop_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_upstream_junk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_reset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_requests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_chunk_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_h2_to_app, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cfg_change, setup, teardown),
		cmocka_unit_test_setup_teardown(test_response_until_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_http10, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_eof_mid_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_survives_junk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror_cut_midway, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_upstream_closes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slow_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes_alternating, setup, teardown),
		cmocka_unit_test_setup_teardown(test_routes_drip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_removed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror_and_personal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mirror_switch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_route_order, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
