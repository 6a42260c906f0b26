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
#include <netinet/ip_icmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/session.h"

#define ICMP_HDR 8
#define ICMP_SLOT_BITS 10 /* MGR_PING_MAX == 1 << ICMP_SLOT_BITS */
#define ICMP_READS 64

_Static_assert(MGR_PING_MAX == 1 << ICMP_SLOT_BITS, "slot bits");

static uint16_t icmp_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void icmp_slot_free(struct ping_slot *ps)
{
	loop_timer_cancel(ps->m->loop, &ps->timer);
	ps->s->n_pings--;
	ps->s = NULL;
	ps->m->n_pings--;
}

/* Answers the daemon and frees the slot. */
static void icmp_pong(struct ping_slot *ps, uint8_t status, uint32_t src, const uint8_t *data,
		      size_t len)
{
	struct msg_pong pong = { .id = ps->id, .status = status, .src = src,
				 .ident = ps->ident, .seq = ps->seq, .data = data,
				 .len = (uint16_t)len };
	struct session *s = ps->s;
	size_t cap = FRAME_HDR_LEN + 32 + len;
	uint8_t *p = session_reserve(s, cap);
	ssize_t n = p ? msg_pong_encode(p, cap, &pong) : -ENOBUFS;

	if (n > 0) {
		session_commit(s, (size_t)n);
		session_kick(s);
	}
	if (status == PONG_REPLY)
		ps->m->st.pongs++;
	icmp_slot_free(ps);
}

static void icmp_on_timeout(struct loop *l, struct loop_timer *t)
{
	struct ping_slot *ps = t->arg;

	(void)l;
	ps->m->st.ping_timeouts++;
	icmp_pong(ps, PONG_TIMEOUT, ps->dst, NULL, 0);
}

static struct ping_slot *icmp_slot_of(struct mgr *m, uint16_t wire_seq)
{
	struct ping_slot *ps = &m->pings[wire_seq & (MGR_PING_MAX - 1)];

	return ps->s && ps->wire_seq == wire_seq ? ps : NULL;
}

/* An ICMP message (header first) from src. */
static void icmp_input(struct mgr *m, uint32_t src, const uint8_t *p, size_t len)
{
	struct ping_slot *ps;

	if (len < ICMP_HDR)
		return;
	if (p[0] == ICMP_ECHOREPLY) {
		if (m->ping_raw && (p[4] << 8 | p[5]) != m->ping_ident)
			return;
		ps = icmp_slot_of(m, (uint16_t)(p[6] << 8 | p[7]));
		if (ps && ps->dst == src)
			icmp_pong(ps, PONG_REPLY, src, p + ICMP_HDR, len - ICMP_HDR);
		return;
	}
	/* Raw socket: an error quoting our request (IP header + 8 bytes). */
	if (m->ping_raw && (p[0] == ICMP_DEST_UNREACH || p[0] == ICMP_TIME_EXCEEDED) &&
	    len >= ICMP_HDR + 20 + ICMP_HDR) {
		const uint8_t *ip = p + ICMP_HDR;
		size_t ihl = (size_t)(ip[0] & 0xf) * 4;
		if (ihl < 20 || len < ICMP_HDR + ihl + ICMP_HDR || ip[9] != IPPROTO_ICMP)
			return;
		const uint8_t *q = ip + ihl;
		if (q[0] != ICMP_ECHO || (q[4] << 8 | q[5]) != m->ping_ident)
			return;
		ps = icmp_slot_of(m, (uint16_t)(q[6] << 8 | q[7]));
		if (ps)
			icmp_pong(ps, PONG_UNREACHABLE, src, NULL, 0);
	}
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
		struct sockaddr_in sa;
		socklen_t sl = sizeof(sa);
		ssize_t n = recvfrom(fd, m->scratch, 65535, 0, (struct sockaddr *)&sa, &sl);
		const uint8_t *p = m->scratch;
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			continue;
		}
		if (m->ping_raw) { /* raw sockets hand over the IP header too */
			size_t ihl = n >= 20 ? (size_t)(p[0] & 0xf) * 4 : 0;
			if (ihl < 20 || (size_t)n < ihl)
				continue;
			p += ihl;
			n -= (ssize_t)ihl;
		}
		icmp_input(m, ntohl(sa.sin_addr.s_addr), p, (size_t)n);
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
	int fd;

	m->pings = calloc(MGR_PING_MAX, sizeof(*m->pings));
	if (!m->pings)
		return -ENOMEM;
	for (int i = 0; i < MGR_PING_MAX; i++)
		m->pings[i].m = m;
	auth_random(&m->ping_ident, sizeof(m->ping_ident));
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

void icmp_fini(struct mgr *m)
{
	if (m->ping_fd >= 0) {
		loop_del(m->loop, m->ping_fd);
		close(m->ping_fd);
		m->ping_fd = -1;
	}
	free(m->pings);
	m->pings = NULL;
}

void icmp_forget(struct mgr *m, struct session *s)
{
	for (int i = 0; s->n_pings && i < MGR_PING_MAX; i++)
		if (m->pings[i].s == s)
			icmp_slot_free(&m->pings[i]);
}

static struct ping_slot *icmp_slot_new(struct mgr *m)
{
	uint32_t r = 0;

	if (m->n_pings >= MGR_PING_MAX)
		return NULL;
	auth_random(&r, sizeof(r));
	for (unsigned i = 0; i < MGR_PING_MAX; i++) {
		struct ping_slot *ps = &m->pings[(r + i) & (MGR_PING_MAX - 1)];
		if (!ps->s) {
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
	ck = icmp_csum(p, ICMP_HDR + req->len); /* the ping socket recomputes it */
	p[2] = (uint8_t)(ck >> 8);
	p[3] = (uint8_t)ck;
	if (sendto(m->ping_fd, p, ICMP_HDR + req->len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	return 0;
}

/* Answers a request that could not be sent, without a slot. */
static void icmp_refuse(struct session *s, const struct msg_ping *req)
{
	struct ping_slot tmp = { .m = s->m, .s = s, .id = req->id, .dst = req->dst,
				 .ident = req->ident, .seq = req->seq };

	s->n_pings++;
	s->m->n_pings++;
	icmp_pong(&tmp, PONG_UNREACHABLE, req->dst, NULL, 0);
}

void icmp_ping(struct session *s, const struct msg_ping *req)
{
	struct mgr *m = s->m;
	struct ping_slot *ps;
	int r;

	m->st.pings++;
	if (!mgr_addr_allowed(m, req->dst))
		mgr_forbidden(m, s, "icmp", req->dst, 0);
	if (m->ping_fd < 0 || !mgr_addr_allowed(m, req->dst)) {
		icmp_refuse(s, req);
		return;
	}
	if (s->n_pings >= MGR_SESSION_PINGS_MAX || !(ps = icmp_slot_new(m)))
		return; /* too many in flight: lost, as on a busy network */
	r = icmp_send(m, ps, req);
	if (r < 0) {
		log_debug("session %s: echo request: %s", s->name, strerror(-r));
		icmp_refuse(s, req);
		return;
	}
	ps->s = s;
	ps->id = req->id;
	ps->dst = req->dst;
	ps->ident = req->ident;
	ps->seq = req->seq;
	s->n_pings++;
	m->n_pings++;
	loop_timer_arm(m->loop, &ps->timer, MGR_PING_TIMEOUT_MS, icmp_on_timeout, ps);
}
