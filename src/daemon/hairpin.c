/* TCP through the hairpin NAT (hairpin.h).
 *
 * F:np comes from the NAT table, which never reuses a tuple the kernel may
 * still hold in TIME_WAIT. */
#include "daemon/hairpin.h"

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
#include "daemon/lane.h"
#include "daemon/loopguard.h"
#include "net/packet.h"
#include "net/sock.h"

#define ACCEPT_TIMEOUT_MS 5000
#define ACCEPTS_PER_WAKEUP 64

static void tflow_free(struct tflow *f);
static const struct carrier_ops tflow_carrier_ops;

static void tflow_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	tflow_free(t->arg);
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
	struct daemon *d = f->h->d;

	if (!f->guarded)
		return;
	f->guarded = false;
	daemon_guard_lock(d);
	if (f->guard_queued)
		guard_sent(&d->guard, IPPROTO_TCP, f->key.dst, f->key.dport, now_us());
	guard_end(&d->guard, IPPROTO_TCP, f->key.dst, f->key.dport, o, now_us(), f->sent_us);
	daemon_guard_unlock(d);
}

/* Closes an fd the flow holds; a RST unless the flow ended cleanly. */
static void tflow_close_fd(int fd, bool rst)
{
	if (fd < 0)
		return;
	if (rst)
		sock_linger_rst(fd);
	close(fd);
}

/* A flow is dialing no more: its place under DIALS_MAX is free. */
static void tflow_dialed(struct tflow *f)
{
	f->h->n_dialing--;
	list_del(&f->dlink);
	__atomic_sub_fetch(&f->h->d->caps.n_dialing, 1, __ATOMIC_RELAXED);
}

static void tflow_free(struct tflow *f)
{
	struct hairpin *h = f->h;
	bool bound = f->car.state == CARRIER_BOUND;

	tflow_guard_end(f, GUARD_NO_ANSWER);
	if (f->state == TF_DIALING)
		tflow_dialed(f);
	if (f->state == TF_RELAY || f->state == TF_ACCEPTING)
		h->n_tcp--;
	if (f->drain_fd >= 0)
		h->n_draining--;
	h->n_flows--;
	loop_timer_cancel(h->ln->loop, &f->timer);
	nat_remove(h->nat, &f->key);
	carrier_reset(&f->car); /* the manager drops its side; a bound socket is ours again */
	if (bound)
		tflow_close_fd(f->car.fd, true);
	tflow_close_fd(f->drain_fd, true);
	list_del(&f->link);
	free(f);
}

static void tflow_linger(struct tflow *f)
{
	loop_timer_arm(f->h->ln->loop, &f->timer,
		       (f->fin_app && f->fin_lst) || f->rst ? LINGER_DONE_MS : LINGER_MS, tflow_timeout, f);
}

/* After the flow has ended the kernel may still be delivering what it
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
		tflow_linger(f);
}

/* partial: p came from the VIF with its checksum left to the kernel
 * (vif_read); it goes back the same way. */
static void tflow_write(struct tflow *f, struct pkt4 *p, bool partial, bool from_app, uint32_t src,
			uint16_t sport, uint32_t dst, uint16_t dport)
{
	tflow_track(f, p, from_app);
	pkt4_rewrite(p, src, sport, dst, dport, partial);
	lane_vif_write(f->h->ln, p->ip, p->len, partial);
}

static void hairpin_reply_rst(struct hairpin *h, const struct pkt4 *p)
{
	struct lane *ln = h->ln;
	size_t n = pkt4_build_rst(ln->out, sizeof(ln->out), p);

	if (n)
		lane_vif_write(ln, ln->out, n, false);
}

/* The daemon's own caps: dials in flight, flows, and a token bucket of
 * DIAL_RATE_PER_S.  True if one more dial may start (and takes a token,
 * and its place among the dials in flight: tflow_dialed gives it back).
 * A destination that connected lately is no storm: it passes the rate
 * cap even when an app hammering dead addresses has drained it. */
static bool hairpin_admit(struct hairpin *h, const struct nat_key *k, uint64_t now)
{
	const uint64_t one = 1000000, full = (uint64_t)DIAL_BURST * one;
	struct hairpin_caps *c = &h->d->caps;
	uint32_t dialing;
	bool ok = true;

	if (lanes_held(h->d) >= c->flows_max || h->n_flows >= HAIRPIN_FLOWS_MAX)
		return false;
	/* The dial's place is taken first: lanes admitting at once stay under the cap. */
	if ((dialing = __atomic_add_fetch(&c->n_dialing, 1, __ATOMIC_RELAXED)) > DIALS_MAX) {
		__atomic_sub_fetch(&c->n_dialing, 1, __ATOMIC_RELAXED);
		return false;
	}
	daemon_guard_lock(h->d);
	c->dial_tokens = MIN(c->dial_tokens + (now - c->dial_tokens_us) * DIAL_RATE_PER_S, full);
	c->dial_tokens_us = now;
	if (c->dial_tokens >= one)
		c->dial_tokens -= one;
	else
		ok = guard_answered_lately(&h->d->guard, IPPROTO_TCP, k->dst, k->dport, now);
	if (ok && dialing > c->dialing_peak)
		c->dialing_peak = dialing;
	daemon_guard_unlock(h->d);
	if (!ok)
		__atomic_sub_fetch(&c->n_dialing, 1, __ATOMIC_RELAXED);
	return ok;
}

/* Refused by the daemon's caps.  A chain the caps cut (chains side by
 * side can fill them before the guard's window ends) is a loop as well. */
static void tflow_refuse(struct hairpin *h, struct pkt4 *p, const struct guard_attempt *a, bool tracked)
{
	struct lane *ln = h->ln;
	bool overflow;

	daemon_guard_lock(h->d);
	if (tracked)
		guard_end(&h->d->guard, IPPROTO_TCP, p->dst, p->dport, GUARD_NO_ANSWER, a->now, 0);
	overflow = guard_overflow(&h->d->guard, a);
	daemon_guard_unlock(h->d);
	if (overflow)
		loopguard_count(ln, IPPROTO_TCP, p->src, p->dst, p->dport, GUARD_CHAIN);
	ln->c.dials_limited++;
	hairpin_reply_rst(h, p);
}

/* The held SYN, parsed again (it was copied whole, so it parses). */
static int tflow_syn(struct tflow *f, struct pkt4 *p)
{
	return pkt4_parse(f->syn, f->syn_len, p);
}

/* The app's connect() fails with EHOSTUNREACH: the tunnel is not there. */
static void tflow_unreachable(struct tflow *f)
{
	struct lane *ln = f->h->ln;
	struct pkt4 p;
	size_t n;

	if (tflow_syn(f, &p) < 0)
		return;
	n = pkt4_build_icmp_unreach(ln->out, sizeof(ln->out), &p, 1, p.dst);
	if (n)
		lane_vif_write(ln, ln->out, n, false);
}

static void tflow_dial_timeout(struct loop *l, struct loop_timer *t);

/* The manager is asked to dial; the SYN waits for the answer.  With no
 * connection to the manager it waits the grace, in case the session
 * comes back. */
static void tflow_dial(struct tflow *f)
{
	struct hairpin *h = f->h;
	struct msg_dial m = { .addr = f->key.dst, .port = f->key.dport, .timeout_ms = TUNNEL_DIAL_TIMEOUT_MS };
	int r;

	f->sent_us = now_us();
	r = carrier_open(h->ln->tun, &f->car, &m, &tflow_carrier_ops, f);
	if (r != 1)
		return;
	if (f->guarded && !f->guard_queued) {
		/* It waits for a connection to the manager: the loop guard hears of it. */
		f->guard_queued = true;
		daemon_guard_lock(h->d);
		guard_queued(&h->d->guard, IPPROTO_TCP, f->key.dst, f->key.dport);
		daemon_guard_unlock(h->d);
	}
	if (!tunnel_up(h->ln->tun)) {
		uint64_t now = loop_now_ms(h->ln->loop);
		if (!f->wait_until)
			f->wait_until = now + h->grace_ms;
		loop_timer_arm(h->ln->loop, &f->timer, f->wait_until > now ? f->wait_until - now : 0,
			       tflow_dial_timeout, f);
	}
}

/* Still waiting for the tunnel after the grace, or no answer from the
 * manager in time. */
static void tflow_dial_timeout(struct loop *l, struct loop_timer *t)
{
	struct tflow *f = t->arg;
	struct lane *ln = f->h->ln;

	(void)l;
	if (f->car.state == CARRIER_WAITING && !tunnel_up(ln->tun)) {
		ln->c.failed_down++;
		tflow_unreachable(f);
	} else {
		ln->c.dial_fail[DIAL_TIMEOUT]++;
	}
	tflow_free(f);
}

/* A dial the tunnel's loss cut short goes again on the next session, if
 * that comes within the grace.  True if it waits again. */
static bool tflow_redial(struct tflow *f)
{
	struct lane *ln = f->h->ln;
	uint64_t now = loop_now_ms(ln->loop);

	if (tunnel_up(ln->tun))
		return false;
	if (!f->wait_until)
		f->wait_until = now + f->h->grace_ms;
	if (now >= f->wait_until)
		return false;
	carrier_reset(&f->car);
	tflow_dial(f); /* it waits: the timer ends the wait at wait_until */
	return true;
}

static void tflow_new(struct hairpin *h, struct pkt4 *p, const struct nat_key *k)
{
	struct lane *ln = h->ln;
	uint64_t now = now_us();
	struct guard_attempt a = { .proto = IPPROTO_TCP, .dst = k->dst, .port = k->dport, .now = now,
				   .load = lanes_dialing(h->d) };
	bool tracked;
	enum guard_verdict v;
	struct tflow *f;

	daemon_guard_lock(h->d);
	v = guard_begin(&h->d->guard, &a, &tracked);
	daemon_guard_unlock(h->d);

	if (v != GUARD_PASS) {
		loopguard_count(ln, IPPROTO_TCP, k->src, k->dst, k->dport, v);
		hairpin_reply_rst(h, p);
		return;
	}
	if (p->len > sizeof(f->syn) || !hairpin_admit(h, k, now)) {
		tflow_refuse(h, p, &a, tracked);
		return;
	}
	if (!(f = calloc(1, sizeof(*f))) || nat_insert(h->nat, k, f, &f->tup) < 0) {
		free(f);
		__atomic_sub_fetch(&h->d->caps.n_dialing, 1, __ATOMIC_RELAXED); /* the place admit took */
		tflow_refuse(h, p, &a, tracked);
		return;
	}
	f->h = h;
	f->key = *k;
	f->drain_fd = -1;
	/* The SYN is written back later, after other packets: complete its
	 * checksum now so that it stands alone. */
	if (ln->pkt_partial)
		pkt4_csum_complete(p);
	memcpy(f->syn, p->ip, p->len);
	f->syn_len = (uint16_t)p->len;
	f->state = TF_DIALING;
	f->guarded = tracked;
	h->n_flows++;
	h->n_dialing++;
	list_add(&h->flows, &f->link);
	list_add(&h->dialing, &f->dlink);
	ln->c.tcp_flows_total++;
	ln->c.dials++;
	loop_timer_arm(ln->loop, &f->timer, TUNNEL_DIAL_TIMEOUT_MS + 2000, tflow_dial_timeout, f);
	tflow_dial(f);
}

/* ---- the carrier's callbacks ---- */

static void tflow_sent(struct carrier *c)
{
	struct tflow *f = c->owner;

	f->sent_us = now_us();
	loop_timer_arm(f->h->ln->loop, &f->timer, TUNNEL_DIAL_TIMEOUT_MS + 2000, tflow_dial_timeout, f);
	if (f->guard_queued) {
		f->guard_queued = false;
		daemon_guard_lock(f->h->d);
		guard_sent(&f->h->d->guard, IPPROTO_TCP, f->key.dst, f->key.dport, f->sent_us);
		daemon_guard_unlock(f->h->d);
	}
}

/* The dial's outcome: the SYN goes on to the listener, or the app hears
 * what a node would have told it. */
static void tflow_result(struct carrier *c, uint8_t status)
{
	struct tflow *f = c->owner;
	struct hairpin *h = f->h;
	struct lane *ln = h->ln;
	struct pkt4 p;

	if (status == DIAL_ERROR && tflow_redial(f))
		return;
	tflow_guard_end(f, tflow_outcome(status));
	if (tflow_syn(f, &p) < 0) {
		tflow_free(f);
		return;
	}
	if (status == DIAL_OK) {
		ln->c.dials_ok++;
		tflow_dialed(f);
		f->state = TF_ACCEPTING;
		h->n_tcp++;
		loop_timer_arm(ln->loop, &f->timer, ACCEPT_TIMEOUT_MS, tflow_timeout, f);
		tflow_write(f, &p, false, true, f->tup.addr, f->tup.port, VIF_ADDR, h->lport);
		return;
	}
	ln->c.dial_fail[status < DIAL_STATUS_MAX_ ? status : DIAL_ERROR]++;
	if (status == DIAL_UNREACHABLE) {
		size_t n = pkt4_build_icmp_unreach(ln->out, sizeof(ln->out), &p, 1, p.dst);
		if (n)
			lane_vif_write(ln, ln->out, n, false);
	} else if (status != DIAL_TIMEOUT) {
		hairpin_reply_rst(h, &p);
	}
	tflow_free(f);
}

/* The socket may still hold bytes for the app: keep it (and the mapping)
 * until they are acknowledged. */
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
	f->h->n_draining--;
	tflow_linger(f);
}

/* The flow's bytes are over; the accepted socket is ours again. */
static void tflow_done(struct carrier *c, int err)
{
	struct tflow *f = c->owner;
	struct lane *ln = f->h->ln;
	int outq = 0;

	if (f->state == TF_ACCEPTING) {
		/* The far side went before the app was accepted: the app's
		 * connection is up (the listener answered its SYN), so it hears
		 * a RST once the socket is accepted (tflow_accepted). */
		f->aborted = true;
		return;
	}
	ln->c.bytes_out += c->bytes[0];
	ln->c.bytes_in += c->bytes[1];
	f->state = TF_LINGER;
	f->h->n_tcp--;
	if (!err && ioctl(c->fd, SIOCOUTQ, &outq) == 0 && outq > 0) {
		f->drain_fd = c->fd;
		f->h->n_draining++;
		f->drain_until = loop_now_ms(ln->loop) + DRAIN_MAX_MS;
		loop_timer_arm(ln->loop, &f->timer, DRAIN_CHECK_MS, tflow_drain_check, f);
		return;
	}
	tflow_close_fd(c->fd, err != 0);
	/* Keep the mapping a while: the FIN/ACK exchange still crosses the VIF. */
	tflow_linger(f);
}

static const struct carrier_ops tflow_carrier_ops = {
	.sent = tflow_sent,
	.result = tflow_result,
	.done = tflow_done,
};

/* ---- the listener ---- */

static void tflow_accepted(struct tflow *f, int fd)
{
	if (f->aborted) {
		tflow_close_fd(fd, true); /* through the NAT, to the app */
		f->rst = true;
		f->state = TF_LINGER;
		f->h->n_tcp--;
		tflow_linger(f);
		return;
	}
	if (carrier_bind(&f->car, fd) < 0) {
		tflow_close_fd(fd, true);
		tflow_free(f);
		return;
	}
	f->state = TF_RELAY;
	loop_timer_cancel(f->h->ln->loop, &f->timer);
}

/* A connection the listener accepted: the SYN it answered came from a flow
 * whose dial succeeded, at its NAT tuple. */
static void hairpin_on_accept(void *arg, int fd)
{
	struct hairpin *h = arg;
	uint32_t addr;
	uint16_t port;
	struct tflow *f = sock_peer(fd, &addr, &port) == 0 ? nat_lookup_tuple(h->nat, addr, port) : NULL;

	if (!f || f->state != TF_ACCEPTING) {
		tflow_close_fd(fd, true);
		return;
	}
	sock_nodelay(fd);
	sock_delack(fd);
	tflow_accepted(f, fd);
}

/* ---- packets ---- */

/* Packets the listener sends to a NAT address: back to the app. */
static void hairpin_from_listener(struct hairpin *h, struct pkt4 *p)
{
	struct tflow *f = nat_lookup_tuple(h->nat, p->dst, p->dport);

	if (!f) {
		h->ln->c.pkts_dropped++;
		return;
	}
	tflow_write(f, p, h->ln->pkt_partial, false, f->key.dst, f->key.dport, f->key.src, f->key.sport);
}

static void hairpin_from_app(struct hairpin *h, struct pkt4 *p)
{
	struct nat_key k = { .src = p->src, .dst = p->dst, .sport = p->sport, .dport = p->dport };
	struct tflow *f = nat_lookup_app(h->nat, &k);
	bool syn = (p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN;

	if (syn && f && f->state == TF_LINGER) {
		tflow_free(f); /* the app reused its port: a new connection */
		f = NULL;
	}
	if (!f) {
		if (syn)
			tflow_new(h, p, &k);
		else if (!(p->tcp_flags & PKT_TCP_RST))
			hairpin_reply_rst(h, p);
		return;
	}
	if (f->state == TF_DIALING) {
		h->ln->c.pkts_dropped++; /* a retransmitted SYN while the manager dials */
		return;
	}
	tflow_write(f, p, h->ln->pkt_partial, true, f->tup.addr, f->tup.port, VIF_ADDR, h->lport);
}

void hairpin_from_vif(struct hairpin *h, struct pkt4 *p)
{
	if (p->frag) {
		h->ln->c.pkts_dropped++;
		return;
	}
	if (p->src == VIF_ADDR && p->sport == h->lport && nat_owns_addr(h->nat, p->dst))
		hairpin_from_listener(h, p);
	else
		hairpin_from_app(h, p);
}

/* The flow's carrier is gone: the app's connection is reset, through
 * the NAT mapping, which stays a little while for the RST to pass. */
static void tflow_abort(struct tflow *f, bool final)
{
	struct hairpin *h = f->h;
	struct lane *ln = h->ln;
	uint64_t b[2];

	switch (f->state) {
	case TF_RELAY:
		carrier_bytes(&f->car, b);
		ln->c.bytes_out += b[0];
		ln->c.bytes_in += b[1];
		carrier_reset(&f->car);
		tflow_close_fd(f->car.fd, true);
		f->state = TF_LINGER;
		h->n_tcp--;
		f->rst = true;
		tflow_linger(f);
		break;
	case TF_ACCEPTING:
		carrier_reset(&f->car);
		f->aborted = true;
		break;
	case TF_LINGER:
		if (f->drain_fd >= 0) {
			tflow_close_fd(f->drain_fd, true);
			f->drain_fd = -1;
			h->n_draining--;
			f->rst = true;
			tflow_linger(f);
		}
		break;
	case TF_DIALING:
		if (!final && tflow_redial(f))
			break;
		ln->c.failed_down++;
		tflow_unreachable(f);
		tflow_free(f);
		break;
	}
}

void hairpin_abort_all(struct hairpin *h, bool final)
{
	struct list *i, *next;

	if (!h->d)
		return;
	list_for_each_safe(i, next, &h->flows)
		tflow_abort(list_entry(i, struct tflow, link), final);
}

void hairpin_refuse_dst(struct hairpin *h, uint32_t dst, uint16_t dport)
{
	struct list *i, *next;

	if (!h->d)
		return;
	list_for_each_safe(i, next, &h->dialing) {
		struct tflow *f = list_entry(i, struct tflow, dlink);
		if (f->key.dst == dst && f->key.dport == dport && f->car.state == CARRIER_OPENING) {
			carrier_reset(&f->car); /* the manager forgets its dial */
			tflow_result(&f->car, DIAL_REFUSED);
		}
	}
}

void hairpin_bytes(const struct hairpin *h, uint64_t b[2])
{
	const struct list *i;

	b[0] = b[1] = 0;
	if (!h->d) /* never started */
		return;
	for (i = h->flows.next; i != &h->flows; i = i->next) {
		const struct tflow *f = list_entry(i, struct tflow, link);
		uint64_t fb[2];
		if (f->state != TF_RELAY)
			continue;
		carrier_bytes(&f->car, fb);
		b[0] += fb[0];
		b[1] += fb[1];
	}
}

/* Every flow holds at most two fds (the accepted socket and its tunnel
 * connection): the cap leaves the rest of the fd limit to everything else. */
void hairpin_caps_init(struct hairpin_caps *c)
{
	struct rlimit rl;
	uint64_t n = TCP_FLOWS_CAP;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		n = rl.rlim_cur > 2 * FDS_RESERVED ? (rl.rlim_cur - FDS_RESERVED) / 2 : 64;
	*c = (struct hairpin_caps){ .flows_max = (uint32_t)MIN(n, (uint64_t)TCP_FLOWS_CAP),
				    .dial_tokens = (uint64_t)DIAL_BURST * 1000000, .dial_tokens_us = now_us() };
}

int hairpin_init(struct hairpin *h, struct lane *ln, uint32_t grace_ms)
{
	uint32_t n = (uint32_t)ln->d->n_lanes;
	uint64_t seed;
	int ret;

	*h = (struct hairpin){ .d = ln->d, .ln = ln, .ls.fd = -1, .grace_ms = grace_ms };
	list_init(&h->flows);
	list_init(&h->dialing);
	if ((ret = auth_random(&seed, sizeof(seed))) < 0)
		return ret; /* NAT ports a peer could guess: not without randomness */
	/* The NAT addresses the VIF steers to this lane's queue (vif_steer):
	 * every n-th, from the lane's number on. */
	h->nat = nat_new(HAIRPIN_FLOWS_MAX, VIF_NAT_BASE + (uint32_t)ln->id,
			 (VIF_NAT_ADDRS - (uint32_t)ln->id + n - 1) / n, n, seed);
	if (!h->nat)
		return -ENOMEM;
	ret = listener_init(&h->ls, ln->loop, sock_listen_tcp(VIF_ADDR, 0, 4096), ACCEPTS_PER_WAKEUP, "the hairpin",
			    hairpin_on_accept, h);
	return ret < 0 ? ret : sock_local(h->ls.fd, NULL, &h->lport);
}

void hairpin_fini(struct hairpin *h)
{
	if (!h->d)
		return;
	while (!list_empty(&h->flows))
		tflow_free(list_first(&h->flows, struct tflow, link));
	listener_fini(&h->ls);
	nat_free(h->nat);
	h->nat = NULL;
}
