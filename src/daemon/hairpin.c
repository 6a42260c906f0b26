/* TCP through the hairpin NAT (ARCHITECTURE.md, "The data path").
 *
 *   app S:sp -> D:dp   SYN held; the manager dials D:dp; on success the
 *                      SYN is written back as F:np -> S:L
 *   listener S:L       accepts; the flow's tunnel connection is spliced to it
 *   S:L -> F:np        rewritten to D:dp -> S:sp
 *
 * F:np comes from the NAT table, which never reuses a tuple the kernel may
 * still hold in TIME_WAIT. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/daemon.h"
#include "net/packet.h"
#include "net/sock.h"

#define ACCEPT_TIMEOUT_MS 5000
#define ACCEPTS_PER_WAKEUP 64
#define ACCEPT_PAUSE_MS 100 /* after EMFILE: the listener stays readable */

static void tflow_free(struct tflow *f);

static void wait_unlink(struct daemon *d, struct tflow *f)
{
	if (!f->waiting)
		return;
	if (f->wprev)
		f->wprev->wnext = f->wnext;
	else
		d->wait_head = f->wnext;
	if (f->wnext)
		f->wnext->wprev = f->wprev;
	else
		d->wait_tail = f->wprev;
	f->wnext = f->wprev = NULL;
	f->waiting = false;
}

static void wait_push(struct daemon *d, struct tflow *f)
{
	f->wnext = NULL;
	f->wprev = d->wait_tail;
	if (d->wait_tail)
		d->wait_tail->wnext = f;
	else
		d->wait_head = f;
	d->wait_tail = f;
	f->waiting = true;
}

static void tflow_timeout(struct loop *l, struct loop_timer *t)
{
	struct tflow *f = t->arg;

	(void)l;
	if (f->state == TF_DIALING)
		f->d->c.dial_fail[DIAL_TIMEOUT]++;
	tflow_free(f);
}

static enum guard_outcome tflow_outcome(uint8_t status)
{
	switch (status) {
	case DIAL_OK: return GUARD_ANSWERED_OK;
	case DIAL_REFUSED: return GUARD_ANSWERED_REFUSED;
	case DIAL_UNREACHABLE:
	case DIAL_FORBIDDEN: return GUARD_ANSWERED_OTHER;
	default: return GUARD_NO_ANSWER;
	}
}

/* Tells the loop guard how the dial ended, once. */
static void tflow_guard_end(struct tflow *f, enum guard_outcome o)
{
	if (!f->guarded)
		return;
	f->guarded = false;
	if (f->guard_queued)
		guard_sent(&f->d->guard, IPPROTO_TCP, f->key.dst, f->key.dport, now_us());
	guard_end(&f->d->guard, IPPROTO_TCP, f->key.dst, f->key.dport, o, now_us(), f->sent_us);
}

static void tflow_free(struct tflow *f)
{
	struct daemon *d = f->d;

	tflow_guard_end(f, GUARD_NO_ANSWER);
	if (f->state == TF_DIALING)
		d->n_dialing--;
	d->n_tflows--;
	loop_timer_cancel(d->loop, &f->timer);
	wait_unlink(d, f);
	nat_remove(d->nat, &f->key);
	if (f->pc) {
		f->pc->flow = NULL;
		pconn_close(f->pc, true);
	}
	mux_reset(&f->ms); /* a stream still open: the manager drops its side */
	if (f->state == TF_RELAY && f->sfd >= 0) {
		sock_linger_rst(f->sfd);
		close(f->sfd);
	} else if (f->state == TF_RELAY) {
		relay_close(&f->relay, true);
	}
	if (f->drain_fd >= 0) {
		sock_linger_rst(f->drain_fd);
		close(f->drain_fd);
	}
	if (f->lprev)
		f->lprev->lnext = f->lnext;
	else
		d->flows = f->lnext;
	if (f->lnext)
		f->lnext->lprev = f->lprev;
	if (f->state == TF_RELAY || f->state == TF_ACCEPTING)
		d->n_tcp--;
	free(f);
}

/* After the relay has ended the kernel may still be delivering what it
 * buffered: keep the mapping while packets pass, and drop it soon once
 * both FINs or a RST have crossed. */
static void tflow_track(struct tflow *f, const struct pkt4 *p, bool from_app)
{
	if (p->tcp_flags & PKT_TCP_FIN) {
		if (from_app)
			f->fin_app = true;
		else
			f->fin_lst = true;
	}
	if (p->tcp_flags & PKT_TCP_RST)
		f->rst = true;
	if (f->state == TF_LINGER && f->drain_fd < 0)
		loop_timer_arm(f->d->loop, &f->timer,
			       (f->fin_app && f->fin_lst) || f->rst ? LINGER_DONE_MS : LINGER_MS,
			       tflow_timeout, f);
}

/* partial: p came from the VIF with its checksum left to the kernel
 * (vif_read); it goes back the same way. */
static void tflow_write(struct tflow *f, struct pkt4 *p, bool partial, bool from_app, uint32_t src,
			uint16_t sport, uint32_t dst, uint16_t dport)
{
	tflow_track(f, p, from_app);
	pkt4_rewrite(p, src, sport, dst, dport, partial);
	daemon_vif_write_csum(f->d, p->ip, p->len, partial);
}

/* The flow waits for a pooled connection; the loop guard hears of it. */
static void tflow_queue(struct daemon *d, struct tflow *f)
{
	f->pc = NULL;
	wait_push(d, f);
	if (f->guarded && !f->guard_queued) {
		f->guard_queued = true;
		guard_queued(&d->guard, IPPROTO_TCP, f->key.dst, f->key.dport);
	}
}

/* TLS: the flow becomes a stream on a trunk.  0, or -errno if no trunk
 * is up (the flow waits) or its queue is full. */
static int tflow_open_stream(struct tflow *f)
{
	struct mux *mx = trunk_pick(f->d);
	struct msg_dial m = { .addr = f->key.dst, .port = f->key.dport, .timeout_ms = DIAL_TIMEOUT_MS };

	return mx ? mux_open(mx, &f->ms, &m, f) : -ENOTCONN;
}

static void tflow_dial(struct tflow *f)
{
	struct daemon *d = f->d;
	struct pconn *pc;

	d->c.dials++;
	f->sent_us = now_us();
	if (daemon_trunks(d)) {
		if (tflow_open_stream(f) == 0)
			return;
		pool_fill(d);
		tflow_queue(d, f);
		return;
	}
	pc = pool_take(d);
	if (pc && pconn_dial(pc, f) == 0)
		return;
	if (pc)
		pconn_close(pc, true);
	tflow_queue(d, f);
}

/* A waiting flow onto a trunk, or a pooled connection: 0, or -errno
 * (it waits again). */
static int tflow_dial_waiting(struct daemon *d, struct tflow *f)
{
	struct pconn *pc;

	if (daemon_trunks(d))
		return tflow_open_stream(f);
	pc = pool_take(d);
	if (pconn_dial(pc, f) < 0) {
		pconn_close(pc, true);
		return -EIO;
	}
	return 0;
}

void hairpin_pool_ready(struct daemon *d)
{
	while (d->wait_head && (daemon_trunks(d) ? d->n_trunks > 0 : d->idle != NULL)) {
		struct tflow *f = d->wait_head;
		wait_unlink(d, f);
		if (tflow_dial_waiting(d, f) < 0) {
			tflow_queue(d, f);
			return;
		}
		f->sent_us = now_us();
		if (f->guard_queued) {
			f->guard_queued = false;
			guard_sent(&d->guard, IPPROTO_TCP, f->key.dst, f->key.dport, f->sent_us);
		}
	}
}

static void hairpin_reply_rst(struct daemon *d, const struct pkt4 *p)
{
	size_t n = pkt4_build_rst(d->out, sizeof(d->out), p);
	if (n)
		daemon_vif_write(d, d->out, n);
}

/* The daemon's own caps: dials in flight, flows, and a token bucket of
 * DIAL_RATE_PER_S.  True if one more dial may start (and takes a token).
 * A destination that connected lately is no storm: it passes the rate
 * cap even when an app hammering dead addresses has drained it. */
static bool hairpin_admit(struct daemon *d, const struct nat_key *k, uint64_t now)
{
	const uint64_t one = 1000000, full = (uint64_t)DIAL_BURST * one;

	d->dial_tokens = MIN(d->dial_tokens + (now - d->dial_tokens_us) * DIAL_RATE_PER_S, full);
	d->dial_tokens_us = now;
	if (d->n_dialing >= DIALS_MAX || d->n_tflows >= d->tflows_max)
		return false;
	if (d->dial_tokens >= one)
		d->dial_tokens -= one;
	else if (!guard_answered_lately(&d->guard, IPPROTO_TCP, k->dst, k->dport, now))
		return false;
	return true;
}

/* Refused by the daemon's caps.  A chain the caps cut (chains side by
 * side can fill them before the guard's window ends) is a loop as well. */
static void tflow_refuse(struct daemon *d, struct pkt4 *p, const struct guard_attempt *a, bool tracked)
{
	if (tracked)
		guard_end(&d->guard, IPPROTO_TCP, p->dst, p->dport, GUARD_NO_ANSWER, a->now, 0);
	if (guard_overflow(&d->guard, a))
		loopguard_count(d, IPPROTO_TCP, p->src, p->dst, p->dport, GUARD_CHAIN);
	d->c.dials_limited++;
	hairpin_reply_rst(d, p);
}

static void tflow_new(struct daemon *d, struct pkt4 *p, const struct nat_key *k)
{
	uint64_t now = now_us();
	struct guard_attempt a = { .proto = IPPROTO_TCP, .dst = k->dst, .port = k->dport, .now = now,
				   .load = d->n_dialing };
	bool tracked;
	enum guard_verdict v = guard_begin(&d->guard, &a, &tracked);
	struct tflow *f;
	if (v != GUARD_PASS) {
		loopguard_count(d, IPPROTO_TCP, k->src, k->dst, k->dport, v);
		hairpin_reply_rst(d, p);
		return;
	}
	if (p->len > sizeof(f->syn) || !hairpin_admit(d, k, now) || !(f = calloc(1, sizeof(*f)))) {
		tflow_refuse(d, p, &a, tracked);
		return;
	}
	f->d = d;
	f->key = *k;
	f->drain_fd = -1;
	f->sfd = -1;
	if (nat_insert(d->nat, k, f, &f->tup) < 0) {
		free(f);
		tflow_refuse(d, p, &a, tracked);
		return;
	}
	/* The SYN is written back later, after other packets: complete its
	 * checksum now so that it stands alone. */
	if (d->pkt_partial)
		pkt4_csum_complete(p);
	memcpy(f->syn, p->ip, p->len);
	f->syn_len = (uint16_t)p->len;
	f->state = TF_DIALING;
	f->guarded = tracked;
	d->n_tflows++;
	if (++d->n_dialing > d->dialing_peak)
		d->dialing_peak = d->n_dialing;
	f->lnext = d->flows;
	if (d->flows)
		d->flows->lprev = f;
	d->flows = f;
	d->c.tcp_flows_total++;
	loop_timer_arm(d->loop, &f->timer, DIAL_TIMEOUT_MS + 2000, tflow_timeout, f);
	tflow_dial(f);
}

void hairpin_dial_result(struct tflow *f, uint8_t status)
{
	struct daemon *d = f->d;
	struct pkt4 p;

	f->pc = status == DIAL_OK ? f->pc : NULL;
	tflow_guard_end(f, tflow_outcome(status));
	if (pkt4_parse(f->syn, f->syn_len, &p) < 0) {
		tflow_free(f);
		return;
	}
	if (status == DIAL_OK) {
		d->c.dials_ok++;
		d->n_dialing--;
		f->state = TF_ACCEPTING;
		d->n_tcp++;
		loop_timer_arm(d->loop, &f->timer, ACCEPT_TIMEOUT_MS, tflow_timeout, f);
		tflow_write(f, &p, false, true, f->tup.addr, f->tup.port, VIF_ADDR, d->lport);
		return;
	}
	d->c.dial_fail[status < DIAL_STATUS_MAX_ ? status : DIAL_ERROR]++;
	if (status == DIAL_UNREACHABLE) {
		size_t n = pkt4_build_icmp_unreach(d->out, sizeof(d->out), &p, 1, p.dst);
		if (n)
			daemon_vif_write(d, d->out, n);
	} else if (status != DIAL_TIMEOUT) {
		hairpin_reply_rst(d, &p);
	}
	tflow_free(f);
}

static void tflow_linger(struct tflow *f)
{
	loop_timer_arm(f->d->loop, &f->timer, (f->fin_app && f->fin_lst) || f->rst ? LINGER_DONE_MS : LINGER_MS,
		       tflow_timeout, f);
}

/* The relay is over but the kernel may still hold bytes for the app in the
 * accepted socket: keep it (and the mapping) until they are acknowledged. */
static void tflow_drain_check(struct loop *l, struct loop_timer *t)
{
	struct tflow *f = t->arg;
	int outq = 0;

	if (!f->rst && loop_now_ms(l) < f->drain_until && ioctl(f->drain_fd, SIOCOUTQ, &outq) == 0 &&
	    outq > 0) {
		loop_timer_arm(l, &f->timer, DRAIN_CHECK_MS, tflow_drain_check, f);
		return;
	}
	close(f->drain_fd);
	f->drain_fd = -1;
	tflow_linger(f);
}

/* The relay (or stream) of f is over; fd is the accepted socket.  True if
 * the socket is kept to drain, false if the caller closes it. */
static bool tflow_relay_end(struct tflow *f, int fd, int err, const uint64_t bytes[2])
{
	struct daemon *d = f->d;
	int outq = 0;

	d->c.bytes_out += bytes[0];
	d->c.bytes_in += bytes[1];
	f->state = TF_LINGER;
	d->n_tcp--;
	if (!err && ioctl(fd, SIOCOUTQ, &outq) == 0 && outq > 0) {
		f->drain_fd = fd;
		f->drain_until = loop_now_ms(d->loop) + DRAIN_MAX_MS;
		loop_timer_arm(d->loop, &f->timer, DRAIN_CHECK_MS, tflow_drain_check, f);
		return true;
	}
	/* Keep the mapping a while: the FIN/ACK exchange still crosses the VIF. */
	tflow_linger(f);
	return false;
}

static void tflow_relay_done(struct relay *r, int err, void *arg)
{
	if (tflow_relay_end(arg, r->fd[0], err, r->bytes))
		relay_release(r, 0);
	else
		relay_close(r, err != 0);
}

void hairpin_stream_result(struct mux_stream *st, uint8_t status)
{
	hairpin_dial_result(st->owner, status);
}

void hairpin_stream_done(struct mux_stream *st, int err)
{
	struct tflow *f = st->owner;
	int fd = f->sfd;

	if (f->state != TF_RELAY) { /* the trunk went down before the app was accepted */
		if (f->state == TF_DIALING)
			hairpin_dial_result(f, DIAL_ERROR);
		else
			tflow_free(f);
		return;
	}
	f->sfd = -1;
	if (tflow_relay_end(f, fd, err, st->bytes))
		return;
	if (err)
		sock_linger_rst(fd);
	close(fd);
}

/* TLS: the stream starts moving the accepted socket's bytes. */
static void tflow_accepted_stream(struct tflow *f, int fd)
{
	if (mux_bind(&f->ms, fd) < 0) {
		sock_linger_rst(fd);
		close(fd);
		tflow_free(f);
		return;
	}
	f->sfd = fd;
	f->state = TF_RELAY;
	loop_timer_cancel(f->d->loop, &f->timer);
}

static void tflow_accepted(struct tflow *f, int fd)
{
	struct daemon *d = f->d;
	struct pconn *pc = f->pc;
	const uint8_t *rest;
	size_t n;

	if (mux_attached(&f->ms)) {
		tflow_accepted_stream(f, fd);
		return;
	}
	/* --insecure: the flow connection itself is spliced to the socket.
	 * Bytes the destination sent right after the dial (a banner) came
	 * in with the DIAL_RESULT; the accepted socket's buffer is empty. */
	n = wire_take_rest(&pc->w, &rest);
	if ((n && write(fd, rest, n) != (ssize_t)n) ||
	    relay_start(&f->relay, d->loop, fd, pc->fd, tflow_relay_done, f) < 0) {
		sock_linger_rst(fd);
		close(fd);
		tflow_free(f);
		return;
	}
	/* The relay owns pc's socket now; drop the rest of pc. */
	wire_free(&pc->w);
	loop_timer_cancel(d->loop, &pc->timer);
	free(pc);
	f->pc = NULL;
	f->state = TF_RELAY;
	loop_timer_cancel(d->loop, &f->timer);
}

static void hairpin_accept_resume(struct loop *l, struct loop_timer *t)
{
	struct daemon *d = t->arg;

	loop_mod(l, d->lfd, LOOP_IN);
}

static void hairpin_accept_event(struct loop *l, int lfd, uint32_t events, void *arg)
{
	struct daemon *d = arg;

	(void)events;
	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		uint32_t addr;
		uint16_t port;
		struct tflow *f;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0 && (errno == EMFILE || errno == ENFILE)) {
			/* Out of fds: a level-triggered listener would spin. */
			loop_mod(l, lfd, 0);
			loop_timer_arm(l, &d->accept_timer, ACCEPT_PAUSE_MS, hairpin_accept_resume, d);
		}
		if (fd < 0)
			return;
		f = sock_peer(fd, &addr, &port) == 0 ? nat_lookup_tuple(d->nat, addr, port) : NULL;
		if (!f || f->state != TF_ACCEPTING) {
			sock_linger_rst(fd);
			close(fd);
			continue;
		}
		sock_nodelay(fd);
		sock_delack(fd);
		tflow_accepted(f, fd);
	}
}

/* Packets the listener sends to a NAT address: back to the app. */
static void hairpin_from_listener(struct daemon *d, struct pkt4 *p)
{
	struct tflow *f = nat_lookup_tuple(d->nat, p->dst, p->dport);

	if (!f) {
		d->c.pkts_dropped++;
		return;
	}
	tflow_write(f, p, d->pkt_partial, false, f->key.dst, f->key.dport, f->key.src, f->key.sport);
}

static void hairpin_from_app(struct daemon *d, struct pkt4 *p)
{
	struct nat_key k = { .src = p->src, .dst = p->dst, .sport = p->sport, .dport = p->dport };
	struct tflow *f = nat_lookup_app(d->nat, &k);
	bool syn = (p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;

	if (syn && f && f->state == TF_LINGER) {
		tflow_free(f); /* the app reused its port: a new connection */
		f = NULL;
	}
	if (!f) {
		if (syn)
			tflow_new(d, p, &k);
		else if (!(p->tcp_flags & PKT_TCP_RST))
			hairpin_reply_rst(d, p);
		return;
	}
	if (f->state == TF_DIALING) {
		d->c.pkts_dropped++; /* a retransmitted SYN while the manager dials */
		return;
	}
	tflow_write(f, p, d->pkt_partial, true, f->tup.addr, f->tup.port, VIF_ADDR, d->lport);
}

void hairpin_from_vif(struct daemon *d, uint8_t *buf, size_t len)
{
	struct pkt4 p;

	if (pkt4_parse(buf, len, &p) < 0 || p.proto != IPPROTO_TCP || p.frag) {
		d->c.pkts_dropped++;
		return;
	}
	if (p.src == VIF_ADDR && p.sport == d->lport && nat_owns_addr(d->nat, p.dst))
		hairpin_from_listener(d, &p);
	else
		hairpin_from_app(d, &p);
}

void hairpin_reset_all(struct daemon *d)
{
	while (d->flows)
		tflow_free(d->flows);
}

/* Every flow holds at most two fds (the accepted socket and its tunnel
 * connection): the cap leaves the rest of the fd limit to everything else. */
static uint32_t hairpin_flows_max(void)
{
	struct rlimit rl;
	uint64_t n = TCP_FLOWS_CAP;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur > 2 * FDS_RESERVED ? (rl.rlim_cur - FDS_RESERVED) / 2 : 64;
	return (uint32_t)MIN(n, (uint64_t)TCP_FLOWS_CAP);
}

int hairpin_init(struct daemon *d)
{
	uint64_t seed;
	int ret;

	d->tflows_max = hairpin_flows_max();
	d->dial_tokens = (uint64_t)DIAL_BURST * 1000000;
	d->dial_tokens_us = now_us();
	if (auth_random(&seed, sizeof(seed)) < 0)
		seed = now_us();
	d->nat = nat_new(FLOWS_MAX, VIF_NAT_BASE, VIF_NAT_ADDRS, seed);
	if (!d->nat)
		return -ENOMEM;
	d->lfd = sock_listen_tcp(VIF_ADDR, 0, 4096);
	if (d->lfd < 0)
		return d->lfd;
	if ((ret = sock_local(d->lfd, NULL, &d->lport)) < 0)
		return ret;
	return loop_add(d->loop, d->lfd, LOOP_IN, hairpin_accept_event, d);
}

void hairpin_fini(struct daemon *d)
{
	hairpin_reset_all(d);
	loop_timer_cancel(d->loop, &d->accept_timer);
	if (d->lfd >= 0) {
		loop_del(d->loop, d->lfd);
		close(d->lfd);
		d->lfd = -1;
	}
	nat_free(d->nat);
	d->nat = NULL;
}
