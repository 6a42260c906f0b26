/* ICMP echo for the daemon: one socket for the whole manager, an
 * unprivileged ping socket (SOCK_DGRAM/IPPROTO_ICMP, allowed when
 * net.ipv4.ping_group_range holds our gid) or, failing that, a raw socket
 * (root).  Requests in flight live in MGR_PING_MAX slots; the sequence
 * number on the wire names the slot (low bits) and a generation (high
 * bits), so a reply finds its request in O(1) and a stale one matches
 * nothing.  The identifier is the ping socket's own (the kernel sets it)
 * or a random one for the raw socket. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/errqueue.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/icmp.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "net/packet.h"
#include "net/sock.h"

#define ICMP_HDR 8
#define ICMP_ECHO 8 /* the type of a request (RFC 792) */
#define ICMP_SLOT_BITS 10 /* MGR_PING_MAX == 1 << ICMP_SLOT_BITS */
#define ICMP_READS 64

_Static_assert(MGR_PING_MAX == 1 << ICMP_SLOT_BITS, "slot bits");

/* An echo request in flight. */
struct ping_slot {
	struct sreq r;     /* the session's, while in flight */
	uint32_t id;       /* the daemon's request id */
	uint32_t dst;
	uint16_t ident, seq; /* the daemon's, echoed in the PONG */
	uint16_t wire_seq;   /* the sequence number on the wire */
};

/* The session ended: its requests go, unanswered. */
void icmp_forget(struct session *s)
{
	while (!list_empty(&s->reqs[SREQ_PING]))
		sreq_end(list_first(&s->reqs[SREQ_PING], struct sreq, link), SREQ_PING);
}

/* Answers the daemon and frees the slot. */
static void icmp_pong(struct ping_slot *ps, uint8_t status, uint32_t src, const uint8_t *data,
		      size_t len)
{
	struct msg_pong pong = { .id = ps->id, .status = status, .src = src,
				 .ident = ps->ident, .seq = ps->seq, .data = data,
				 .len = (uint16_t)len };
	struct session *s = ps->r.s;
	size_t cap = FRAME_HDR_LEN + 32 + len;
	uint8_t *p = session_reserve(s, cap);
	ssize_t n = p ? msg_pong_encode(p, cap, &pong) : -ENOBUFS;

	if (n > 0) {
		session_commit(s, (size_t)n);
		session_kick(s);
	}
	if (status == PONG_REPLY)
		ps->r.m->st.pongs++;
	sreq_end(&ps->r, SREQ_PING);
}

static void icmp_on_timeout(struct loop *l, struct loop_timer *t)
{
	struct ping_slot *ps = t->arg;

	(void)l;
	ps->r.m->st.ping_timeouts++;
	icmp_pong(ps, PONG_TIMEOUT, ps->dst, NULL, 0);
}

static struct ping_slot *icmp_slot_of(struct mgr *m, uint16_t wire_seq)
{
	struct ping_slot *ps = &m->pings[wire_seq & (MGR_PING_MAX - 1)];

	return ps->r.s && ps->wire_seq == wire_seq ? ps : NULL;
}

/* An ICMP message from src, as the socket read it (a raw one with the IP
 * header).  A ping socket's identifier is the kernel's, which hands it
 * only replies to it; its errors come on the error queue. */
static void icmp_input(struct mgr *m, uint32_t src, const uint8_t *p, size_t len)
{
	struct pkt4_icmp_answer a;
	struct ping_slot *ps;

	if (pkt4_icmp_answer_parse(p, len, m->ping_raw, &a) < 0 || (m->ping_raw && a.ident != m->ping_ident) ||
	    (a.error && !m->ping_raw) || !(ps = icmp_slot_of(m, a.seq)))
		return;
	if (a.error)
		icmp_pong(ps, PONG_UNREACHABLE, src, NULL, 0);
	else if (ps->dst == src)
		icmp_pong(ps, PONG_REPLY, src, a.data, a.len);
}

/* Ping socket: ICMP errors arrive on the error queue, quoting our request. */
static void icmp_errqueue(struct mgr *m)
{
	uint8_t ctl[512];
	struct iovec iov = { .iov_base = m->scratch, .iov_len = 65535 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl,
			     .msg_controllen = sizeof(ctl) };
	ssize_t n = recvmsg(m->ping_fd, &mh, MSG_ERRQUEUE | MSG_DONTWAIT);

	if (n < ICMP_HDR)
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		struct sock_extended_err *ee;
		const struct sockaddr_in *off;
		struct ping_slot *ps;
		if (c->cmsg_level != SOL_IP || c->cmsg_type != IP_RECVERR)
			continue;
		ee = (struct sock_extended_err *)CMSG_DATA(c);
		if (ee->ee_origin != SO_EE_ORIGIN_ICMP)
			continue;
		off = (const struct sockaddr_in *)SO_EE_OFFENDER(ee);
		ps = icmp_slot_of(m, (uint16_t)(m->scratch[6] << 8 | m->scratch[7]));
		if (ps)
			icmp_pong(ps, PONG_UNREACHABLE, ntohl(off->sin_addr.s_addr), NULL, 0);
	}
}

static void icmp_on_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct mgr *m = arg;

	(void)l;
	if (!m->ping_raw && (events & EPOLLERR))
		for (int i = 0; i < ICMP_READS; i++)
			icmp_errqueue(m);
	for (int i = 0; i < ICMP_READS; i++) {
		uint32_t src;
		ssize_t n = sock_recv(fd, m->scratch, 65535, &src);
		if (n == -EAGAIN)
			break;
		if (n >= 0)
			icmp_input(m, src, m->scratch, (size_t)n);
	}
}

static int icmp_socket(struct mgr *m)
{
	int one = 1, tos = m->cfg.tos;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);

	m->ping_raw = false;
	if (fd < 0) {
		fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
		if (fd < 0)
			return -errno;
		m->ping_raw = true;
	} else {
		setsockopt(fd, SOL_IP, IP_RECVERR, &one, sizeof(one));
	}
	if (tos)
		setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	return fd;
}

int icmp_init(struct mgr *m)
{
	int fd, ret;

	m->pings = calloc(MGR_PING_MAX, sizeof(*m->pings));
	if (!m->pings)
		return -ENOMEM;
	if ((ret = auth_random(&m->ping_ident, sizeof(m->ping_ident))) < 0) {
		log_err("no random bytes for the ICMP identifier: %s", strerror(-ret));
		return ret;
	}
	fd = icmp_socket(m);
	if (fd < 0) {
		log_warn("no ICMP socket (%s): pings will be answered 'unreachable'; allow the "
			 "manager's gid in net.ipv4.ping_group_range",
			 strerror(-fd));
		return 0;
	}
	if (loop_add(m->loop, fd, LOOP_IN, icmp_on_event, m) < 0) {
		close(fd);
		return -ENOMEM;
	}
	m->ping_fd = fd;
	log_debug("ICMP echo through a %s socket", m->ping_raw ? "raw" : "ping");
	return 0;
}

static struct ping_slot *icmp_slot_new(struct mgr *m)
{
	uint32_t r = 0;

	/* r picks the slot, the low bits of the sequence number on the wire:
	 * without random bytes, no request rather than a predictable one. */
	if (m->n_reqs[SREQ_PING] >= MGR_PING_MAX || auth_random(&r, sizeof(r)) < 0)
		return NULL;
	for (unsigned i = 0; i < MGR_PING_MAX; i++) {
		struct ping_slot *ps = &m->pings[(r + i) & (MGR_PING_MAX - 1)];
		if (!ps->r.s) {
			/* A new generation: a late reply to the slot's last use matches nothing. */
			ps->wire_seq = (uint16_t)((ps->wire_seq + MGR_PING_MAX) |
						  ((r + i) & (MGR_PING_MAX - 1)));
			return ps;
		}
	}
	return NULL;
}

static int icmp_send(struct mgr *m, const struct ping_slot *ps, const struct msg_ping *req)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(req->dst) };
	uint8_t *p = m->scratch;
	uint16_t ck;

	if ((size_t)req->len > 65507 - ICMP_HDR)
		return -EMSGSIZE;
	p[0] = ICMP_ECHO;
	p[1] = 0;
	p[2] = p[3] = 0;
	p[4] = (uint8_t)(m->ping_ident >> 8);
	p[5] = (uint8_t)m->ping_ident;
	p[6] = (uint8_t)(ps->wire_seq >> 8);
	p[7] = (uint8_t)ps->wire_seq;
	memcpy(p + ICMP_HDR, req->data, req->len);
	ck = csum_fold(csum_partial(p, ICMP_HDR + req->len, 0)); /* the ping socket recomputes it */
	p[2] = (uint8_t)(ck >> 8);
	p[3] = (uint8_t)ck;
	if (sendto(m->ping_fd, p, ICMP_HDR + req->len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

/* Answers a request that could not be sent, without a slot. */
static void icmp_refuse(struct session *s, const struct msg_ping *req)
{
	struct ping_slot tmp = { .id = req->id, .dst = req->dst,
				 .ident = req->ident, .seq = req->seq };

	sreq_begin(&tmp.r, s, SREQ_PING);
	icmp_pong(&tmp, PONG_UNREACHABLE, req->dst, NULL, 0);
}

void icmp_ping(struct session *s, const struct msg_ping *req)
{
	struct mgr *m = s->m;
	struct ping_slot *ps;
	int r;

	m->st.pings++;
	if (!mgr_addr_allowed(m, req->dst))
		mgr_forbidden(m, s->name, "icmp", req->dst, 0);
	if (m->ping_fd < 0 || !mgr_addr_allowed(m, req->dst)) {
		icmp_refuse(s, req);
		return;
	}
	if (s->n_reqs[SREQ_PING] >= MGR_SESSION_PINGS_MAX || !(ps = icmp_slot_new(m)))
		return; /* too many in flight: lost, as on a busy network */
	r = icmp_send(m, ps, req);
	if (r < 0) {
		log_debug("session %s: echo request: %s", s->name, strerror(-r));
		icmp_refuse(s, req);
		return;
	}
	ps->id = req->id;
	ps->dst = req->dst;
	ps->ident = req->ident;
	ps->seq = req->seq;
	sreq_begin(&ps->r, s, SREQ_PING);
	loop_timer_arm(m->loop, &ps->r.timer, MGR_PING_TIMEOUT_MS, icmp_on_timeout, ps);
}

void icmp_fini(struct mgr *m)
{
	loop_close(m->loop, &m->ping_fd);
	free(m->pings);
	m->pings = NULL;
}
