/* DNS for the daemon: each query is sent by UDP to the cluster DNS with a
 * fresh random ID; a reply is accepted only if its ID names a query in
 * flight and its question is that query's question (dnsmsg: header and
 * question are read here, the rest is the daemon's to parse); the daemon's
 * ID is put back and the reply goes to it with the same message id.
 * A query without an answer within MGR_DNS_TIMEOUT_MS gets a SERVFAIL,
 * so the application fails fast instead of waiting for its own timeout.
 * A truncated (TC) reply is asked again over TCP (RFC 7766) and the whole
 * answer goes back: the daemon fits it to its own client, UDP or TCP. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "dns/dnsmsg.h"
#include "dns/dnstcp.h"
#include "manager/dns.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "net/sock.h"

#define DNS_READS 64
#define DNS_SLOT_BITS 10
_Static_assert(MGR_DNS_MAX == 1 << DNS_SLOT_BITS, "slot bits");

/* A query in flight; the low bits of its wire ID name its slot. */
struct dns_slot {
	struct sreq r;     /* the session's, while in flight */
	uint32_t msg_id;   /* the daemon's message id */
	uint16_t wire_id;  /* the ID the cluster DNS sees */
	struct dns_msg q;  /* the daemon's query, header and question: its ID, and a SERVFAIL's question */
	struct dnstcp *tcp; /* the retry over TCP of a truncated answer */
	uint16_t msg_len;   /* the query as sent (0: too long to keep) */
	uint8_t msg[MGR_DNS_QUERY_MAX];
};

static void dns_slot_free(struct dns_slot *d)
{
	if (d->tcp) {
		dnstcp_cancel(d->tcp);
		d->tcp = NULL;
		d->r.m->n_dns_tcp--;
	}
	sreq_end(&d->r, SREQ_DNS);
}

/* The session ended: its requests go, unanswered. */
void dns_forget(struct session *s)
{
	while (!list_empty(&s->reqs[SREQ_DNS]))
		dns_slot_free(container_of(list_first(&s->reqs[SREQ_DNS], struct sreq, link), struct dns_slot, r));
}

/* Sends msg (len bytes, the client's ID already in place) to the daemon. */
static void dns_reply(struct dns_slot *d, const uint8_t *msg, size_t len)
{
	struct msg_dns r = { .id = d->msg_id, .data = msg, .len = (uint16_t)len };
	size_t cap = FRAME_HDR_LEN + 8 + len;
	uint8_t *p = session_reserve(d->r.s, cap);
	ssize_t n = p ? msg_dns_encode(p, cap, FT_DNS_REPLY, &r) : -ENOBUFS;

	if (n < 0) {
		d->r.m->st.dns_dropped++;
		return;
	}
	session_commit(d->r.s, (size_t)n);
	session_kick(d->r.s);
}

/* Answers SERVFAIL for the query in d and frees d. */
static void dns_servfail(struct dns_slot *d)
{
	uint8_t msg[DNS_HDR_LEN + DNS_NAME_MAX + 4];
	ssize_t n = dnsmsg_error(&d->q, DNS_R_SERVFAIL, msg, sizeof(msg));

	d->r.m->st.dns_dropped++;
	if (n > 0)
		dns_reply(d, msg, (size_t)n);
	dns_slot_free(d);
}

static void dns_on_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	dns_servfail(t->arg);
}

/* The answer a (its header and question) answers d's query. */
static bool dns_answers(const struct dns_slot *d, const struct dns_msg *a)
{
	return a->h.id == d->wire_id && (a->h.flags & DNS_F_QR) && dnsmsg_question_eq(a, &d->q);
}

/* Sends the daemon's ID back in msg, and msg to the daemon; frees d. */
static void dns_answer(struct dns_slot *d, uint8_t *msg, size_t len)
{
	dnsmsg_set_id(msg, d->q.h.id);
	d->r.m->st.dns_replies++;
	dns_reply(d, msg, len);
	dns_slot_free(d);
}

static void dns_tcp_done(void *arg, int err, const uint8_t *msg, size_t len)
{
	struct dns_slot *d = arg;
	struct dns_msg a;

	d->tcp = NULL; /* it frees itself after this call */
	d->r.m->n_dns_tcp--;
	if (err || dnsmsg_question_read(msg, len, &a) < 0 || !dns_answers(d, &a)) {
		log_debug("dns over TCP: %s", err ? strerror(-err) : "not the answer");
		dns_servfail(d);
		return;
	}
	memcpy(d->r.m->scratch, msg, len); /* len <= 65535 < FRAME_MAX */
	dns_answer(d, d->r.m->scratch, len);
}

/* A truncated answer: ask again over TCP, from the same marked socket
 * options.  False when that cannot be done (then the TC answer goes on). */
static bool dns_retry_tcp(struct dns_slot *d)
{
	struct mgr *m = d->r.m;

	if (!d->msg_len || d->tcp || m->n_dns_tcp >= MGR_DNS_TCP_MAX)
		return false;
	d->tcp = dnstcp_start(m->loop, m->cfg.dns, m->cfg.dns_port, m->cfg.tos, d->msg, d->msg_len,
			      MGR_DNS_TIMEOUT_MS, dns_tcp_done, d);
	if (!d->tcp)
		return false;
	m->n_dns_tcp++;
	m->st.dns_tcp++;
	return true;
}

static void dns_input(struct mgr *m, uint8_t *msg, size_t len)
{
	struct dns_slot *d;
	struct dns_msg a;

	if (dnsmsg_question_read(msg, len, &a) < 0)
		return;
	d = &m->dns[a.h.id & (MGR_DNS_MAX - 1)];
	if (!d->r.s || d->tcp || !dns_answers(d, &a))
		return; /* not the answer to our question: keep waiting */
	if ((a.h.flags & DNS_F_TC) && dns_retry_tcp(d))
		return;
	dns_answer(d, msg, len);
}

static void dns_on_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct mgr *m = arg;

	(void)l;
	(void)events;
	for (int i = 0; i < DNS_READS; i++) {
		ssize_t n = sock_recv(fd, m->scratch, 65535, NULL);
		if (n == -EAGAIN)
			break;
		if (n >= 0) /* else ECONNREFUSED: the server is down; queries time out */
			dns_input(m, m->scratch, (size_t)n);
	}
}

/* The upstream socket, connected to the DNS server.  A failure (no route
 * yet) is not fatal: the manager still serves TCP, and the next query
 * tries again, at most once a second. */
static int dns_open(struct mgr *m)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(m->cfg.dns_port),
				  .sin_addr.s_addr = htonl(m->cfg.dns) };
	uint64_t now = loop_now_ms(m->loop);
	int tos = m->cfg.tos;
	int fd, ret;

	if (m->dns_fd >= 0 || !m->cfg.dns || (m->dns_tried_ms && now - m->dns_tried_ms < 1000))
		return m->dns_fd >= 0 ? 0 : -ENOTCONN;
	m->dns_tried_ms = now;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (tos)
		setsockopt(fd, IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ? -errno : 0;
	if (ret == 0)
		ret = loop_add(m->loop, fd, LOOP_IN, dns_on_event, m);
	if (ret < 0) {
		close(fd);
		log_warn("cannot use DNS server %s: %s; will retry", inet_ntoa(sa.sin_addr),
			 strerror(-ret));
		return ret;
	}
	m->dns_fd = fd;
	return 0;
}

int dns_init(struct mgr *m)
{
	m->dns = calloc(MGR_DNS_MAX, sizeof(*m->dns));
	if (!m->dns)
		return -ENOMEM;
	if (!m->cfg.dns)
		log_warn("no cluster DNS server (--dns, /etc/resolv.conf): DNS queries are dropped");
	dns_open(m);
	return 0;
}

void dns_fini(struct mgr *m)
{
	loop_close(m->loop, &m->dns_fd);
	free(m->dns);
	m->dns = NULL;
}

/* A free slot with a fresh random wire ID whose low bits name it. */
static struct dns_slot *dns_slot_new(struct mgr *m)
{
	for (int tries = 0; tries < 8 && m->n_reqs[SREQ_DNS] < MGR_DNS_MAX; tries++) {
		uint16_t id = 0;
		struct dns_slot *d;
		if (auth_random(&id, sizeof(id)) < 0)
			return NULL;
		d = &m->dns[id & (MGR_DNS_MAX - 1)];
		if (!d->r.s) {
			d->wire_id = id;
			return d;
		}
	}
	return NULL;
}

void dns_query(struct session *s, const struct msg_dns *q)
{
	struct mgr *m = s->m;
	struct dns_slot *d;
	struct dns_msg qm;

	m->st.dns_queries++;
	if (dns_open(m) < 0 || dnsmsg_question_read(q->data, q->len, &qm) < 0 ||
	    s->n_reqs[SREQ_DNS] >= MGR_SESSION_DNS_MAX || !(d = dns_slot_new(m))) {
		m->st.dns_dropped++;
		return;
	}
	memcpy(m->scratch, q->data, q->len);
	dnsmsg_set_id(m->scratch, d->wire_id);
	if (send(m->dns_fd, m->scratch, q->len, 0) < 0) {
		log_debug("session %s: dns send: %s", s->name, strerror(errno));
		m->st.dns_dropped++;
		return;
	}
	d->msg_id = q->id;
	d->q = qm;
	d->msg_len = q->len <= sizeof(d->msg) ? q->len : 0;
	memcpy(d->msg, m->scratch, d->msg_len);
	sreq_begin(&d->r, s, SREQ_DNS);
	loop_timer_arm(m->loop, &d->r.timer, MGR_DNS_TIMEOUT_MS, dns_on_timeout, d);
}
