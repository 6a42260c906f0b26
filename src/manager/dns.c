/* DNS for the daemon: each query is sent by UDP to the cluster DNS with a
 * fresh random ID; a reply is accepted only if its ID names a query in
 * flight and its question is that query's question; the client's ID is
 * put back and the reply goes to the daemon with the same message id.
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
#include "manager/manager.h"
#include "manager/session.h"

#define DNS_HDR 12
#define DNS_READS 64
#define DNS_SLOT_BITS 10
_Static_assert(MGR_DNS_MAX == 1 << DNS_SLOT_BITS, "slot bits");

/* Length of the single question that follows the header, or -EBADMSG.
 * The name must be uncompressed (it is the first name of the message). */
int mgr_dns_question_len(const uint8_t *msg, size_t len)
{
	size_t off = DNS_HDR, name = 0;

	if (len < DNS_HDR || msg[4] != 0 || msg[5] != 1)
		return -EBADMSG;
	for (;;) {
		uint8_t l;
		if (off >= len)
			return -EBADMSG;
		l = msg[off];
		if (l & 0xc0)
			return -EBADMSG;
		name += (size_t)l + 1;
		if (name > 255 || (size_t)l + 1 > len - off)
			return -EBADMSG;
		off += (size_t)l + 1;
		if (l == 0)
			break;
	}
	if (len - off < 4)
		return -EBADMSG;
	return (int)(off + 4 - DNS_HDR);
}

/* ASCII case-insensitive: resolvers may play with letter case (0x20). */
bool mgr_dns_question_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint8_t x = a[i], y = b[i];
		if (x >= 'A' && x <= 'Z')
			x = (uint8_t)(x + 32);
		if (y >= 'A' && y <= 'Z')
			y = (uint8_t)(y + 32);
		if (x != y)
			return false;
	}
	return true;
}

static void dns_slot_free(struct dns_slot *d)
{
	if (d->tcp) {
		dnstcp_cancel(d->tcp);
		d->tcp = NULL;
		d->m->n_dns_tcp--;
	}
	loop_timer_cancel(d->m->loop, &d->timer);
	d->s->n_dns--;
	d->s = NULL;
	d->m->n_dns--;
}

/* Sends msg (len bytes, the client's ID already in place) to the daemon. */
static void dns_reply(struct dns_slot *d, const uint8_t *msg, size_t len)
{
	struct msg_dns r = { .id = d->msg_id, .data = msg, .len = (uint16_t)len };
	size_t cap = FRAME_HDR_LEN + 8 + len;
	uint8_t *p = session_reserve(d->s, cap);
	ssize_t n = p ? msg_dns_encode(p, cap, FT_DNS_REPLY, &r) : -ENOBUFS;

	if (n < 0) {
		d->m->st.dns_dropped++;
		return;
	}
	session_commit(d->s, (size_t)n);
	session_kick(d->s);
}

/* Answers SERVFAIL for the query in d and frees d. */
static void dns_servfail(struct dns_slot *d)
{
	uint8_t msg[DNS_HDR + sizeof(d->question)];

	d->m->st.dns_dropped++;
	memset(msg, 0, DNS_HDR);
	msg[0] = (uint8_t)(d->client_id >> 8);
	msg[1] = (uint8_t)d->client_id;
	msg[2] = (uint8_t)(0x80 | (d->qflags & 0x79)); /* QR, opcode, RD */
	msg[3] = 0x80 | 2;                               /* RA, SERVFAIL */
	msg[5] = 1;
	memcpy(msg + DNS_HDR, d->question, d->qlen);
	dns_reply(d, msg, DNS_HDR + d->qlen);
	dns_slot_free(d);
}

static void dns_on_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	dns_servfail(t->arg);
}

/* The answer msg (ID already checked) answers d's question. */
static bool dns_answers(const struct dns_slot *d, const uint8_t *msg, size_t len)
{
	int qlen = mgr_dns_question_len(msg, len);

	return qlen == d->qlen && mgr_dns_question_eq(msg + DNS_HDR, d->question, d->qlen);
}

/* Sends the client's ID back in msg, and msg to the daemon; frees d. */
static void dns_answer(struct dns_slot *d, uint8_t *msg, size_t len)
{
	msg[0] = (uint8_t)(d->client_id >> 8);
	msg[1] = (uint8_t)d->client_id;
	d->m->st.dns_replies++;
	dns_reply(d, msg, len);
	dns_slot_free(d);
}

static void dns_tcp_done(void *arg, int err, const uint8_t *msg, size_t len)
{
	struct dns_slot *d = arg;

	d->tcp = NULL; /* it frees itself after this call */
	d->m->n_dns_tcp--;
	if (err || (uint16_t)(msg[0] << 8 | msg[1]) != d->wire_id || !(msg[2] & 0x80) ||
	    !dns_answers(d, msg, len)) {
		log_debug("dns over TCP: %s", err ? strerror(-err) : "not the answer");
		dns_servfail(d);
		return;
	}
	memcpy(d->m->scratch, msg, len); /* len <= 65535 < FRAME_MAX */
	dns_answer(d, d->m->scratch, len);
}

/* A truncated answer: ask again over TCP, from the same marked socket
 * options.  False when that cannot be done (then the TC answer goes on). */
static bool dns_retry_tcp(struct dns_slot *d)
{
	struct mgr *m = d->m;

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
	uint16_t id;

	if (len < DNS_HDR || !(msg[2] & 0x80))
		return;
	id = (uint16_t)(msg[0] << 8 | msg[1]);
	d = &m->dns[id & (MGR_DNS_MAX - 1)];
	if (!d->s || d->wire_id != id || d->tcp || !dns_answers(d, msg, len))
		return; /* not the answer to our question: keep waiting */
	if ((msg[2] & 0x02) && dns_retry_tcp(d))
		return;
	dns_answer(d, msg, len);
}

static void dns_on_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct mgr *m = arg;

	(void)l;
	(void)events;
	for (int i = 0; i < DNS_READS; i++) {
		ssize_t n = recv(fd, m->scratch, 65535, 0);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				break;
			continue; /* ECONNREFUSED: the server is down; queries time out */
		}
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
	for (int i = 0; i < MGR_DNS_MAX; i++)
		m->dns[i].m = m;
	if (!m->cfg.dns)
		log_warn("no cluster DNS server (--dns, /etc/resolv.conf): DNS queries are dropped");
	dns_open(m);
	return 0;
}

void dns_fini(struct mgr *m)
{
	if (m->dns_fd >= 0) {
		loop_del(m->loop, m->dns_fd);
		close(m->dns_fd);
		m->dns_fd = -1;
	}
	free(m->dns);
	m->dns = NULL;
}

void dns_forget(struct mgr *m, struct session *s)
{
	for (int i = 0; s->n_dns && i < MGR_DNS_MAX; i++)
		if (m->dns[i].s == s)
			dns_slot_free(&m->dns[i]);
}

/* A free slot with a fresh random wire ID whose low bits name it. */
static struct dns_slot *dns_slot_new(struct mgr *m)
{
	for (int tries = 0; tries < 8 && m->n_dns < MGR_DNS_MAX; tries++) {
		uint16_t id = 0;
		struct dns_slot *d;
		if (auth_random(&id, sizeof(id)) < 0)
			return NULL;
		d = &m->dns[id & (MGR_DNS_MAX - 1)];
		if (!d->s) {
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
	int qlen = mgr_dns_question_len(q->data, q->len);

	m->st.dns_queries++;
	if (dns_open(m) < 0 || qlen < 0 || (size_t)qlen > sizeof(d->question) ||
	    s->n_dns >= MGR_SESSION_DNS_MAX || !(d = dns_slot_new(m))) {
		m->st.dns_dropped++;
		return;
	}
	memcpy(m->scratch, q->data, q->len);
	m->scratch[0] = (uint8_t)(d->wire_id >> 8);
	m->scratch[1] = (uint8_t)d->wire_id;
	if (send(m->dns_fd, m->scratch, q->len, 0) < 0) {
		log_debug("session %s: dns send: %s", s->name, strerror(errno));
		m->st.dns_dropped++;
		return;
	}
	d->s = s;
	d->msg_id = q->id;
	d->client_id = (uint16_t)(q->data[0] << 8 | q->data[1]);
	d->qflags = q->data[2];
	d->qlen = (uint16_t)qlen;
	memcpy(d->question, q->data + DNS_HDR, (size_t)qlen);
	d->msg_len = q->len <= sizeof(d->msg) ? q->len : 0;
	memcpy(d->msg, m->scratch, d->msg_len);
	s->n_dns++;
	m->n_dns++;
	loop_timer_arm(m->loop, &d->timer, MGR_DNS_TIMEOUT_MS, dns_on_timeout, d);
}
