/* DNS over TCP (RFC 7766): a client sends queries, each after a two-byte
 * length, several at once if it likes; answers go back as they come, in
 * any order.  Bounded: DNS_TCP_CLIENTS clients, DNS_TCP_PENDING queries in
 * progress each (reading pauses until answers go out), DNS_TCP_OUT_MAX
 * bytes queued for a client that does not read, an idle timeout.
 * Hostile clients: a query that trickles in does not extend the timeout
 * (a byte a second is dropped DNS_TCP_IDLE_MS after its last whole
 * query), and when every slot is taken a new client closes the one idle
 * the longest, so idle connections cannot lock others out. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/dnssrv.h"
#include "net/listener.h"
#include "net/sock.h"

static void tcpc_close(struct dnssrv_tcpc *c)
{
	struct dnssrv *s = c->s;

	if (c->fd < 0)
		return;
	loop_timer_cancel(s->d->loop, &c->idle);
	loop_close(s->d->loop, &c->fd);
	c->gen++; /* answers still on their way for it are dropped */
	outbuf_fini(&c->out);
	c->inlen = 0;
	c->pending = 0;
	c->eof = false;
	s->n_tcpc--;
}

static void tcpc_idle(struct loop *l, struct loop_timer *t)
{
	struct dnssrv_tcpc *c = t->arg;

	if (c->pending) /* still answering: not idle */
		loop_timer_arm(l, &c->idle, DNS_TCP_IDLE_MS, tcpc_idle, c);
	else
		tcpc_close(c);
}

/* What the client's socket waits for next; closes a client that is done. */
static void tcpc_update(struct dnssrv_tcpc *c)
{
	uint32_t ev = 0;

	if (c->eof && !c->pending && !outbuf_pending(&c->out)) {
		tcpc_close(c);
		return;
	}
	if (!c->eof && c->pending < DNS_TCP_PENDING)
		ev |= LOOP_IN;
	if (outbuf_pending(&c->out))
		ev |= LOOP_OUT;
	loop_mod(c->s->d->loop, c->fd, ev);
	if (!c->inlen) /* half a query waits on the deadline it has */
		loop_timer_arm(c->s->d->loop, &c->idle, DNS_TCP_IDLE_MS, tcpc_idle, c);
}

/* A free slot, or the one idle the longest, closed for a new client. */
static struct dnssrv_tcpc *tcpc_slot(struct dnssrv *s)
{
	struct dnssrv_tcpc *old = NULL;

	for (int k = 0; k < DNS_TCP_CLIENTS; k++) {
		struct dnssrv_tcpc *c = &s->tcpc[k];
		if (c->fd < 0)
			return c;
		if (!c->pending && !outbuf_pending(&c->out) && (!old || c->since_ms < old->since_ms))
			old = c;
	}
	if (old)
		tcpc_close(old);
	return old;
}

void dnssrv_tcp_answer(struct dnssrv *s, int tc, uint32_t gen, const uint8_t *m, size_t len)
{
	struct dnssrv_tcpc *c = &s->tcpc[tc];
	uint8_t hdr[2] = { (uint8_t)(len >> 8), (uint8_t)len };

	if (c->fd < 0 || c->gen != gen)
		return;
	c->pending--;
	/* Past the cap, the client does not read its answers: it goes. */
	if (outbuf_add(&c->out, hdr, 2, DNS_TCP_OUT_MAX - len) < 0 ||
	    outbuf_add(&c->out, m, len, DNS_TCP_OUT_MAX) < 0 || outbuf_flush(&c->out, c->fd) < 0) {
		tcpc_close(c);
		return;
	}
	tcpc_update(c);
}

/* Hands every complete query in c->in to the server.  False if c closed. */
static bool tcpc_queries(struct dnssrv_tcpc *c)
{
	uint32_t gen = c->gen;

	while (c->inlen >= 2 && c->pending < DNS_TCP_PENDING) {
		size_t l = (size_t)c->in[0] << 8 | c->in[1];
		bool took;
		if (l < DNS_HDR_LEN || l > DQ_QUERY_MAX) {
			tcpc_close(c); /* not DNS, or more than we take */
			return false;
		}
		if (c->inlen < 2 + l)
			break;
		c->pending++;
		c->since_ms = loop_now_ms(c->s->d->loop);
		took = dnssrv_query(c->s, c->in + 2, l, &c->peer, c->idx);
		if (c->fd < 0 || c->gen != gen)
			return false;
		if (!took) {
			tcpc_close(c);
			return false;
		}
		memmove(c->in, c->in + 2 + l, c->inlen - 2 - l);
		c->inlen -= 2 + l;
	}
	return true;
}

static void tcpc_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct dnssrv_tcpc *c = arg;

	(void)l;
	if ((events & LOOP_OUT) && outbuf_flush(&c->out, c->fd) < 0) {
		tcpc_close(c);
		return;
	}
	if ((events & LOOP_IN) && !c->eof && c->pending < DNS_TCP_PENDING) {
		ssize_t n = recv(fd, c->in + c->inlen, sizeof(c->in) - c->inlen, MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN) {
			tcpc_close(c);
			return;
		}
		if (n == 0)
			c->eof = true;
		if (n > 0)
			c->inlen += (size_t)n;
	}
	if (!tcpc_queries(c))
		return;
	tcpc_update(c);
}

static void tcpc_accept(void *arg, int fd)
{
	struct dnssrv *s = arg;
	struct loop *l = s->d->loop;
	struct dnssrv_tcpc *c;
	uint32_t addr;
	uint16_t port;

	if (sock_peer(fd, &addr, &port) < 0 || !(c = tcpc_slot(s)) || loop_add(l, fd, LOOP_IN, tcpc_event, c) < 0) {
		close(fd); /* gone already, or full: the client falls back or retries */
		return;
	}
	c->fd = fd;
	c->peer = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr) };
	c->since_ms = loop_now_ms(l);
	s->n_tcpc++;
	loop_timer_arm(l, &c->idle, DNS_TCP_IDLE_MS, tcpc_idle, c);
}

int dnssrv_tcp_open(struct dnssrv *s)
{
	for (int k = 0; k < DNS_TCP_CLIENTS; k++) {
		s->tcpc[k].s = s;
		s->tcpc[k].idx = k;
		s->tcpc[k].fd = -1;
	}
	return listener_init(&s->tcp, s->d->loop, sock_listen_tcp(s->addr, DNS_PORT, 128), 16, "DNS over TCP",
			     tcpc_accept, s);
}

void dnssrv_tcp_close(struct dnssrv *s)
{
	for (int k = 0; k < DNS_TCP_CLIENTS; k++)
		tcpc_close(&s->tcpc[k]);
	listener_fini(&s->tcp);
}
