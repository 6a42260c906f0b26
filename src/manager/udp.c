/* UDP flows: per (session, flow id) a connected UDP socket to the
 * destination, marked with the TOS byte.  Replies go back as FT_UDP with
 * the same flow id; an idle flow expires after MGR_UDP_IDLE_MS and the
 * daemon is told with FT_UDP_CLOSE.  A datagram that finds the control
 * connection's queue full is dropped, as a router would. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/udp.h"

#include "manager/manager.h"
#include "manager/session.h"
#include "net/sock.h"

/* Fixed fields of an FT_UDP payload: flow, src, sport, dst, dport, len. */
#define UDP_FIELDS 20

struct udp_flow {
	struct session *s;
	struct idtab_node hn; /* by the daemon's flow id (hn.id), in s->udp */
	int fd;
	uint32_t src, dst; /* laptop side, cluster side */
	uint16_t sport, dport;
	uint64_t last_ms;
	struct loop_timer timer;
};

static struct udp_flow *udp_find(struct session *s, uint32_t id)
{
	struct idtab_node *n = idtab_find(&s->udp, id);

	return n ? container_of(n, struct udp_flow, hn) : NULL;
}

static void udp_free(struct udp_flow *u)
{
	struct session *s = u->s;
	struct mgr *m = s->m;

	idtab_del(&s->udp, &u->hn);
	loop_timer_cancel(m->loop, &u->timer);
	loop_close(m->loop, &u->fd);
	s->n_udp--;
	m->st.udp_flows_active--;
	free(u);
}

void udp_free_all(struct session *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(s->udp_buckets); i++)
		while (s->udp_buckets[i])
			udp_free(container_of(s->udp_buckets[i], struct udp_flow, hn));
}

static void udp_send_close(struct session *s, uint32_t id)
{
	struct msg_udp_close c = { .flow = id };
	uint8_t *p = session_reserve(s, 32);
	ssize_t n = p ? msg_udp_close_encode(p, 32, &c) : -ENOBUFS;

	if (n > 0) {
		session_commit(s, (size_t)n);
		session_kick(s);
	}
}

static void udp_on_timer(struct loop *l, struct loop_timer *t)
{
	struct udp_flow *u = t->arg;
	uint64_t idle = loop_now_ms(l) - u->last_ms;

	if (idle < MGR_UDP_IDLE_MS) {
		/* Activity re-arms lazily: one timer per flow, no heap work per datagram. */
		loop_timer_arm(l, &u->timer, MGR_UDP_IDLE_MS - idle, udp_on_timer, u);
		return;
	}
	udp_send_close(u->s, u->hn.id);
	udp_free(u);
}

/* One reply datagram to the daemon; false when it had to be dropped. */
static bool udp_forward_reply(struct udp_flow *u, const uint8_t *data, size_t len)
{
	struct msg_udp msg = { .flow = u->hn.id, .src = u->dst, .sport = u->dport,
			       .dst = u->src, .dport = u->sport, .data = data,
			       .len = (uint16_t)len };
	size_t cap = FRAME_HDR_LEN + UDP_FIELDS + len;
	uint8_t *p = session_reserve(u->s, cap);
	ssize_t n = p ? msg_udp_encode(p, cap, &msg) : -ENOBUFS;

	if (n < 0)
		return false;
	session_commit(u->s, (size_t)n);
	return true;
}

static void udp_on_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct udp_flow *u = arg;
	struct mgr *m = u->s->m;

	(void)events;
	for (int i = 0; i < MGR_UDP_READS; i++) {
		ssize_t n = sock_recv(fd, m->scratch, 65535, NULL);
		if (n == -EAGAIN)
			break;
		if (n < 0)
			continue; /* ECONNREFUSED: an ICMP port unreachable; the flow stays */
		u->last_ms = loop_now_ms(l);
		if (!udp_forward_reply(u, m->scratch, (size_t)n)) {
			m->st.udp_dropped++;
			continue;
		}
		m->st.udp_dgrams_down++;
		MGR_ST_ADD(m, bytes_down, (uint64_t)n);
	}
	session_kick(u->s);
}

static struct udp_flow *udp_open(struct session *s, const struct msg_udp *msg)
{
	struct mgr *m = s->m;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(msg->dport),
				  .sin_addr.s_addr = htonl(msg->dst) };
	struct udp_flow *u = calloc(1, sizeof(*u));
	int tos = m->cfg.tos;

	if (!u)
		return NULL;
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		free(u);
		return NULL;
	}
	if (tos)
		setsockopt(u->fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	if (connect(u->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    loop_add(m->loop, u->fd, LOOP_IN, udp_on_event, u) < 0) {
		close(u->fd);
		free(u);
		return NULL;
	}
	u->s = s;
	u->src = msg->src;
	u->sport = msg->sport;
	u->dst = msg->dst;
	u->dport = msg->dport;
	u->last_ms = loop_now_ms(m->loop);
	idtab_add(&s->udp, &u->hn, msg->flow);
	s->n_udp++;
	m->st.udp_flows_active++;
	m->st.udp_flows_total++;
	loop_timer_arm(m->loop, &u->timer, MGR_UDP_IDLE_MS, udp_on_timer, u);
	return u;
}

/* The flow for msg: existing, or new if policy and limits allow. */
static struct udp_flow *udp_flow_for(struct session *s, const struct msg_udp *msg)
{
	struct udp_flow *u = udp_find(s, msg->flow);
	char dst[24];

	if (u && u->dst == msg->dst && u->dport == msg->dport && u->src == msg->src &&
	    u->sport == msg->sport)
		return u;
	if (u)
		udp_free(u); /* the daemon reused the id for another pair of ends */
	if (!mgr_dial_allowed(s->m, msg->dst, msg->dport)) {
		mgr_forbidden(s->m, s->name, "udp", msg->dst, msg->dport);
		return NULL;
	}
	if (s->n_udp >= s->m->cfg.lim.udp) {
		s->m->st.limit_udp++;
		log_debug("session %s: udp flow limit (%u) reached, to %s", s->name, s->m->cfg.lim.udp,
			  mgr_peer_str(msg->dst, msg->dport, dst));
		return NULL;
	}
	u = udp_open(s, msg);
	if (!u)
		log_warn("session %s: cannot open a udp socket: %s", s->name, strerror(errno));
	return u;
}

static void udp_send(struct session *s, const struct msg_udp *msg)
{
	struct mgr *m = s->m;
	struct udp_flow *u = udp_flow_for(s, msg);

	if (!u || send(u->fd, msg->data, msg->len, 0) < 0) {
		m->st.udp_dropped++;
		if (!u)
			udp_send_close(s, msg->flow);
		return;
	}
	u->last_ms = loop_now_ms(m->loop);
	m->st.udp_dgrams_up++;
	MGR_ST_ADD(m, bytes_up, msg->len);
}

int udp_frame(struct session *s, const uint8_t *p, size_t len, uint8_t type)
{
	struct msg_udp msg;
	struct msg_udp_close c;
	struct udp_flow *u;

	if (type == FT_UDP_CLOSE) {
		if (msg_udp_close_decode(p, len, &c) < 0)
			return -EBADMSG;
		u = udp_find(s, c.flow);
		if (u)
			udp_free(u);
		return 0;
	}
	if (msg_udp_decode(p, len, &msg) < 0)
		return -EBADMSG;
	udp_send(s, &msg);
	return 0;
}
