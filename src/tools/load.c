/* subway-load: the benchmark's connection-rate load tool (bench/README.md).
 *
 * A fixed number of slots each run connect -> send N bytes -> read them
 * back -> close, and start over, until the duration or the count is
 * reached; prints connections/s and connect latency (SYN sent to
 * connected) p50/p99 as one JSON object.  --hold keeps each connection
 * open after its exchange, to load a path with idle connections.
 * --serve is a small epoll echo server that holds any number of idle
 * connections cheaply (socat forks per connection).  --rtt N measures
 * request/response latency instead: one connection (TCP_NODELAY), N round
 * trips of SIZE bytes each, one at a time, percentiles in microseconds.
 *
 * Every run is bounded: by --duration, or by --count with --timeout per
 * connection.  Not linked into subway; built as build/subway-load. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/loop.h"
#include "common/util.h"
#include "net/sock.h"

#define SIZE_MAX_ 4096
#define SAMPLES_MAX (16u << 20)

enum slot_state { S_IDLE, S_CONNECTING, S_EXCHANGE };

struct load;

struct slot {
	struct load *ld;
	int fd;
	enum slot_state state;
	uint64_t t0_us;
	size_t got;
	struct loop_timer timer;
};

struct samples {
	uint32_t *v; /* microseconds */
	size_t n, cap;
};

struct load {
	struct loop *loop;
	uint32_t addr;
	uint16_t port;
	uint64_t conc, size, count, timeout_ms, hold, rtt;
	double duration_s;
	uint64_t started, done, held, inflight;
	int *held_fds;
	uint64_t err_refused, err_timeout, err_unreach, err_other, err_short;
	uint64_t t_start_us, t_end_us;
	struct samples connect_us, total_us, fail_us;
	struct slot *slots;
	struct loop_timer stop_timer, progress_timer;
	bool stopping, hold_reported;
	uint8_t payload[SIZE_MAX_];
};

static void sample_add(struct samples *s, uint64_t us)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint32_t *v;
		if (cap > SAMPLES_MAX || !(v = realloc(s->v, cap * sizeof(*v))))
			return; /* enough samples for percentiles */
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = (uint32_t)MIN(us, UINT32_MAX);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile in milliseconds; -1 without samples. */
static double sample_pct(const struct samples *s, double p)
{
	size_t i;

	if (!s->n)
		return -1;
	i = (size_t)(p / 100.0 * (double)s->n);
	if (i >= s->n)
		i = s->n - 1;
	return s->v[i] / 1000.0;
}

static void slot_start(struct slot *s);
static void slot_event(struct loop *l, int fd, uint32_t events, void *arg);

static bool load_finished(const struct load *ld)
{
	return ld->stopping || (ld->count && ld->started >= ld->count);
}

static void load_maybe_stop(struct load *ld)
{
	if (ld->inflight)
		return;
	if (ld->hold && !ld->stopping) {
		/* Everything is open: say so, then hold until the duration ends. */
		if (!ld->hold_reported)
			fprintf(stderr, "subway-load: holding %llu connections\n", (unsigned long long)ld->held);
		ld->hold_reported = true;
		return;
	}
	loop_stop(ld->loop);
}

static void slot_end(struct slot *s, bool keep)
{
	struct load *ld = s->ld;

	loop_timer_cancel(ld->loop, &s->timer);
	if (s->fd >= 0) {
		loop_del(ld->loop, s->fd);
		if (keep)
			ld->held_fds[ld->held++] = s->fd;
		else
			close(s->fd);
	}
	s->fd = -1;
	s->state = S_IDLE;
	ld->inflight--;
	ld->t_end_us = now_us();
	slot_start(s);
}

static void slot_count_error(struct load *ld, int err)
{
	if (err == -ECONNREFUSED || err == -ECONNRESET)
		ld->err_refused++;
	else if (err == -ETIMEDOUT)
		ld->err_timeout++;
	else if (err == -EHOSTUNREACH || err == -ENETUNREACH)
		ld->err_unreach++;
	else if (err == -EPIPE)
		ld->err_short++;
	else
		ld->err_other++;
}

static void slot_fail(struct slot *s, int err)
{
	struct load *ld = s->ld;

	if (s->state == S_CONNECTING)
		sample_add(&ld->fail_us, now_us() - s->t0_us);
	slot_count_error(ld, err);
	slot_end(s, false);
}

static void slot_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	slot_fail(t->arg, -ETIMEDOUT);
}

static void slot_connected(struct slot *s)
{
	struct load *ld = s->ld;
	int ret = sock_connect_result(s->fd);

	if (ret < 0) {
		slot_fail(s, ret);
		return;
	}
	sample_add(&ld->connect_us, now_us() - s->t0_us);
	s->state = S_EXCHANGE;
	s->got = 0;
	if (ld->size == 0) {
		ld->done++;
		sample_add(&ld->total_us, now_us() - s->t0_us);
		slot_end(s, ld->hold != 0);
		return;
	}
	/* A few bytes on a fresh connection: the send buffer takes them whole. */
	if (send(s->fd, ld->payload, ld->size, MSG_NOSIGNAL) != (ssize_t)ld->size) {
		slot_fail(s, errno ? -errno : -EPIPE);
		return;
	}
	if ((ret = loop_mod(ld->loop, s->fd, LOOP_IN)) < 0)
		slot_fail(s, ret);
}

static void slot_readable(struct slot *s)
{
	struct load *ld = s->ld;
	uint8_t buf[SIZE_MAX_];
	ssize_t n = recv(s->fd, buf, sizeof(buf), 0);

	if (n < 0 && errno == EAGAIN)
		return;
	if (n <= 0) {
		slot_fail(s, n < 0 ? -errno : -EPIPE);
		return;
	}
	s->got += (size_t)n;
	if (s->got < ld->size)
		return;
	ld->done++;
	sample_add(&ld->total_us, now_us() - s->t0_us);
	slot_end(s, ld->hold != 0);
}

static void slot_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct slot *s = arg;

	(void)l;
	(void)fd;
	if (s->state == S_CONNECTING && (events & (LOOP_OUT | EPOLLERR | EPOLLHUP)))
		slot_connected(s);
	else if (s->state == S_EXCHANGE && (events & LOOP_IN))
		slot_readable(s);
}

static void slot_retry(struct loop *l, struct loop_timer *t)
{
	(void)l;
	slot_start(t->arg);
}

static void slot_start(struct slot *s)
{
	struct load *ld = s->ld;
	int ret = 0;

	if (load_finished(ld) || (ld->hold && ld->held + ld->inflight >= ld->hold)) {
		load_maybe_stop(ld);
		return;
	}
	ld->started++;
	ld->inflight++;
	s->t0_us = now_us();
	s->state = S_CONNECTING;
	s->fd = sock_connect_tcp(ld->addr, ld->port, 0);
	if (s->fd < 0 || (ret = loop_add(ld->loop, s->fd, LOOP_OUT, slot_event, s)) < 0) {
		/* Failed at once (no route, no port, no fd): count it and try
		 * again on a later wakeup rather than recursing. */
		ret = s->fd < 0 ? s->fd : ret;
		sample_add(&ld->fail_us, now_us() - s->t0_us);
		slot_count_error(ld, ret);
		if (s->fd >= 0)
			close(s->fd);
		s->fd = -1;
		s->state = S_IDLE;
		ld->inflight--;
		loop_timer_arm(ld->loop, &s->timer, 1, slot_retry, s);
		return;
	}
	loop_timer_arm(ld->loop, &s->timer, ld->timeout_ms, slot_timeout, s);
}

/* --hold: a line a second, so that a caller can tell a plateau (the path
 * refuses more) from slow progress. */
static void load_progress(struct loop *l, struct loop_timer *t)
{
	struct load *ld = t->arg;

	fprintf(stderr, "subway-load: open %llu, failed %llu\n", (unsigned long long)ld->held,
		(unsigned long long)(ld->err_refused + ld->err_timeout + ld->err_unreach + ld->err_short +
				     ld->err_other));
	loop_timer_arm(l, t, 1000, load_progress, ld);
}

static void load_deadline(struct loop *l, struct loop_timer *t)
{
	struct load *ld = t->arg;

	(void)l;
	ld->stopping = true;
	loop_stop(ld->loop);
}

/* qsort of an empty set (v may be NULL: never allocated). */
static void samples_sort(const struct samples *s)
{
	if (s->n)
		qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
}

static void load_report(struct load *ld)
{
	double secs = (double)(ld->t_end_us - ld->t_start_us) / 1e6;
	const struct samples *c = &ld->connect_us, *x = &ld->total_us, *f = &ld->fail_us;

	samples_sort(c);
	samples_sort(x);
	samples_sort(f);
	printf("{\"concurrency\": %llu, \"size\": %llu, \"seconds\": %.3f, \"started\": %llu, "
	       "\"connections\": %llu, \"held\": %llu, \"conn_per_s\": %.1f, "
	       "\"errors\": {\"refused\": %llu, \"timeout\": %llu, \"unreachable\": %llu, "
	       "\"closed\": %llu, \"other\": %llu}, "
	       "\"connect_ms\": {\"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}, "
	       "\"exchange_ms\": {\"p50\": %.3f, \"p99\": %.3f}, "
	       "\"fail_ms\": {\"n\": %zu, \"p50\": %.3f, \"p99\": %.3f}}\n",
	       (unsigned long long)ld->conc, (unsigned long long)ld->size, secs,
	       (unsigned long long)ld->started, (unsigned long long)ld->done,
	       (unsigned long long)ld->held, secs > 0 ? (double)ld->done / secs : 0.0,
	       (unsigned long long)ld->err_refused, (unsigned long long)ld->err_timeout,
	       (unsigned long long)ld->err_unreach, (unsigned long long)ld->err_short,
	       (unsigned long long)ld->err_other, sample_pct(c, 50), sample_pct(c, 99),
	       sample_pct(c, 100), sample_pct(x, 50), sample_pct(x, 99), f->n, sample_pct(f, 50),
	       sample_pct(f, 99));
}

static void signal_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;
	struct load *ld = arg;

	(void)events;
	if (read(fd, &si, sizeof(si)) > 0)
		ld->stopping = true;
	loop_stop(l);
}

/* SIGTERM/SIGINT end the run early, with a report. */
static int signals_init(struct loop *l, void *arg)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	return loop_add(l, fd, LOOP_IN, signal_event, arg);
}

static int load_run(struct load *ld)
{
	int ret;

	if (!(ld->slots = calloc(ld->conc, sizeof(*ld->slots))) ||
	    (ld->hold && !(ld->held_fds = calloc(ld->hold, sizeof(*ld->held_fds)))))
		return -ENOMEM;
	for (size_t i = 0; i < ld->size; i++)
		ld->payload[i] = (uint8_t)('a' + i % 26);
	if ((ret = signals_init(ld->loop, ld)) < 0)
		return ret;
	ld->t_start_us = ld->t_end_us = now_us();
	if (ld->duration_s > 0)
		loop_timer_arm(ld->loop, &ld->stop_timer, (uint64_t)(ld->duration_s * 1000), load_deadline,
			       ld);
	if (ld->hold)
		loop_timer_arm(ld->loop, &ld->progress_timer, 1000, load_progress, ld);
	for (uint64_t i = 0; i < ld->conc; i++) {
		ld->slots[i].ld = ld;
		ld->slots[i].fd = -1;
	}
	for (uint64_t i = 0; i < ld->conc && !load_finished(ld); i++)
		slot_start(&ld->slots[i]);
	if ((ret = loop_run(ld->loop)) < 0)
		return ret;
	if (!ld->hold)
		ld->t_end_us = ld->stopping ? now_us() : ld->t_end_us;
	load_report(ld);
	return 0;
}

/* ---- --serve: an epoll echo server ---- */

static void serve_conn_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	uint8_t buf[16384];

	(void)events;
	(void)arg;
	for (int i = 0; i < 4; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EAGAIN)
			return;
		/* Echo what fits; a client of this tool never sends more than its buffer. */
		if (n <= 0 || send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
			loop_del(l, fd);
			close(fd);
			return;
		}
	}
}

static void serve_accept_event(struct loop *l, int lfd, uint32_t events, void *arg)
{
	(void)events;
	(void)arg;
	for (int i = 0; i < 64; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		sock_nodelay(fd);
		if (loop_add(l, fd, LOOP_IN, serve_conn_event, NULL) < 0)
			close(fd);
	}
}

static int serve_run(struct loop *l, uint32_t addr, uint16_t port)
{
	static struct load quit; /* what the signal handler marks: lives as long as the loop */
	int lfd = sock_listen_tcp(addr, port, 65535);
	int ret;

	if (lfd < 0)
		return lfd;
	if ((ret = loop_add(l, lfd, LOOP_IN, serve_accept_event, NULL)) < 0 ||
	    (ret = signals_init(l, &quit)) < 0)
		return ret;
	fprintf(stderr, "subway-load: echo server listening on port %u\n", port);
	return loop_run(l);
}

/* ---- --rtt: request/response latency on one connection ---- */

#define RTT_WARMUP 200

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Connected, blocking, with timeouts on every call: fd or -errno. */
static int rtt_connect(const struct load *ld)
{
	struct timeval tv = { .tv_sec = (time_t)(ld->timeout_ms / 1000),
			      .tv_usec = (suseconds_t)(ld->timeout_ms % 1000) * 1000 };
	struct pollfd pfd = { .events = POLLOUT };
	int fd = sock_connect_tcp(ld->addr, ld->port, 0), r;

	if (fd < 0)
		return fd;
	pfd.fd = fd;
	r = poll(&pfd, 1, (int)ld->timeout_ms);
	r = r == 0 ? -ETIMEDOUT : r < 0 ? -errno : sock_connect_result(fd);
	if (r == 0 && (fcntl(fd, F_SETFL, 0) < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
		       setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0))
		r = -errno;
	if (r < 0) {
		close(fd);
		return r;
	}
	return fd;
}

/* One request out, its echo back: 0 or -errno. */
static int rtt_once(int fd, const uint8_t *msg, uint8_t *buf, size_t size)
{
	size_t off = 0;
	ssize_t n;

	while (off < size) {
		if ((n = send(fd, msg + off, size - off, MSG_NOSIGNAL)) < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		off += (size_t)n;
	}
	for (off = 0; off < size; off += (size_t)n)
		if ((n = recv(fd, buf + off, size - off, 0)) <= 0)
			return n == 0 ? -EPIPE : errno == EAGAIN ? -ETIMEDOUT : -errno;
	return memcmp(msg, buf, size) ? -EBADMSG : 0;
}

/* Percentile of sorted nanoseconds, in microseconds. */
static double rtt_pct(const uint64_t *v, size_t n, double p)
{
	size_t i = (size_t)(p / 100.0 * (double)n);

	return (double)v[MIN(i, n - 1)] / 1000.0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static int rtt_run(struct load *ld)
{
	uint8_t buf[SIZE_MAX_];
	uint64_t *v = calloc(ld->rtt, sizeof(*v)), sum = 0, t0 = now_ns();
	int fd = rtt_connect(ld), r = fd < 0 ? fd : 0;
	size_t n = 0;

	if (!v)
		r = -ENOMEM;
	for (size_t i = 0; i < ld->size; i++)
		ld->payload[i] = (uint8_t)('a' + i % 26);
	for (uint64_t i = 0; r == 0 && i < RTT_WARMUP + ld->rtt; i++) {
		uint64_t t = now_ns();
		ld->payload[0] = (uint8_t)i; /* each answer is told from the last */
		r = rtt_once(fd, ld->payload, buf, ld->size);
		if (r == 0 && i >= RTT_WARMUP)
			sum += (v[n++] = now_ns() - t);
	}
	if (fd >= 0)
		close(fd);
	if (n)
		qsort(v, n, sizeof(*v), cmp_u64);
	printf("{\"size\": %llu, \"round_trips\": %zu, \"seconds\": %.3f, \"error\": \"%s\", "
	       "\"rtt_us\": {\"p50\": %.1f, \"p99\": %.1f, \"p999\": %.1f, \"max\": %.1f, \"mean\": %.1f}}\n",
	       (unsigned long long)ld->size, n, (double)(now_ns() - t0) / 1e9, r < 0 ? strerror(-r) : "",
	       n ? rtt_pct(v, n, 50) : -1, n ? rtt_pct(v, n, 99) : -1, n ? rtt_pct(v, n, 99.9) : -1,
	       n ? (double)v[n - 1] / 1000.0 : -1, n ? (double)sum / (double)n / 1000.0 : -1);
	free(v);
	return r < 0 && !n ? r : 0;
}

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: subway-load [OPTIONS] HOST:PORT\n"
		"       subway-load --rtt N [-s SIZE] HOST:PORT\n"
		"       subway-load --serve [ADDR:]PORT\n\n"
		"Opens TCP connections to an echo server at a fixed concurrency: connect,\n"
		"send SIZE bytes, read them back, close, again.  Prints one JSON object:\n"
		"connections/s, connect latency p50/p99 (ms), errors.\n\n"
		"  -c, --concurrency N  connections in flight (default 32)\n"
		"  -d, --duration S     stop after S seconds (default 5; 0: no limit)\n"
		"  -n, --count N        stop after N connections (default: no limit)\n"
		"  -s, --size N         bytes exchanged per connection, 0..%d (default 16)\n"
		"  -t, --timeout MS     per-connection timeout (default 5000)\n"
		"      --hold N         keep N connections open after their exchange, until\n"
		"                       the duration ends or SIGTERM\n"
		"      --rtt N          one connection, N round trips of SIZE bytes, one at a\n"
		"                       time (TCP_NODELAY): latency p50/p99/p99.9 in us\n"
		"      --serve          run an echo server instead (until SIGTERM)\n",
		SIZE_MAX_);
}

static int parse_opts(struct load *ld, int argc, char **argv, bool *serve)
{
	static const struct option opts[] = {
		{ "concurrency", required_argument, NULL, 'c' }, { "duration", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' }, { "size", required_argument, NULL, 's' },
		{ "timeout", required_argument, NULL, 't' }, { "hold", required_argument, NULL, 'H' },
		{ "serve", no_argument, NULL, 'S' }, { "rtt", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' }, { 0 } };
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "c:d:n:s:t:h", opts, NULL)) != -1) {
		int ret = 0;
		switch (c) {
		case 'c': ret = u64_parse(optarg, 1000000, &ld->conc); break;
		case 'n': ret = u64_parse(optarg, UINT64_MAX, &ld->count); break;
		case 's': ret = u64_parse(optarg, SIZE_MAX_, &ld->size); break;
		case 't': ret = u64_parse(optarg, 600000, &ld->timeout_ms); break;
		case 'H': ret = u64_parse(optarg, 1000000, &ld->hold); break;
		case 'S': *serve = true; break;
		case 'R':
			ret = u64_parse(optarg, 10000000, &ld->rtt);
			ret = ret ? ret : ld->rtt ? 0 : -EINVAL;
			break;
		case 'd':
			ld->duration_s = strtod(optarg, &end);
			ret = *end || ld->duration_s < 0 || ld->duration_s > 3600 ? -EINVAL : 0;
			break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -EINVAL;
		}
		if (ret < 0) {
			if (c == 'H' || c == 'R')
				fprintf(stderr, "subway-load: bad value for --%s: '%s'\n", c == 'H' ? "hold" : "rtt", optarg);
			else
				fprintf(stderr, "subway-load: bad value for -%c: '%s'\n", c, optarg);
			return -EINVAL;
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		return -EINVAL;
	}
	return 0;
}

static int parse_target(const char *s, bool serve, uint32_t *addr, uint16_t *port)
{
	if (serve && !strchr(s, ':')) {
		*addr = 0;
		return port_parse(s, port);
	}
	return endpoint_parse(s, addr, port);
}

int main(int argc, char **argv)
{
	static struct load ld = { .conc = 32, .size = 16, .timeout_ms = 5000, .duration_s = 5 };
	bool serve = false;
	int ret = parse_opts(&ld, argc, argv, &serve);

	if (ret)
		return ret > 0 ? 0 : 2;
	if (parse_target(argv[optind], serve, &ld.addr, &ld.port) < 0) {
		fprintf(stderr, "subway-load: bad target '%s' (want IPv4:PORT)\n", argv[optind]);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	sock_raise_nofile(1u << 20);
	if (ld.hold && ld.conc > ld.hold)
		ld.conc = ld.hold;
	if (!(ld.loop = loop_new()))
		return 1;
	ret = serve ? serve_run(ld.loop, ld.addr, ld.port) : ld.rtt ? rtt_run(&ld) : load_run(&ld);
	if (ret < 0) {
		fprintf(stderr, "subway-load: %s\n", strerror(-ret));
		return 1;
	}
	return 0;
}
