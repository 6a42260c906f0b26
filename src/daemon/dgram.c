/* UDP and ICMP echo: datagrams read from the VIF are relayed as frames on
 * the control connection; the manager's answers are built into packets
 * and written to the VIF.  Per-flow state expires after UDP_IDLE_MS. */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/daemon.h"
#include "net/packet.h"

#define UDP_SWEEP_MS 5000
#define PING_SLOTS 256

static struct {
	uint32_t id;
	uint32_t src, dst;
	uint64_t sent_us;
	bool guarded; /* in flight for the loop guard until its PONG */
} pings[PING_SLOTS];
static uint32_t ping_next;

static uint32_t dgram_udp_hash(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint32_t size)
{
	uint64_t h = ((uint64_t)src << 32 | dst) * 0x9E3779B97F4A7C15ull;
	h ^= ((uint64_t)sport << 16 | dport) * 0xC2B2AE3D27D4EB4Full;
	h ^= h >> 29;
	return (uint32_t)(h % size);
}

static struct uflow **dgram_udp_slot(struct daemon *d, uint32_t src, uint16_t sport, uint32_t dst,
			       uint16_t dport)
{
	struct uflow **pp = &d->utab[dgram_udp_hash(src, sport, dst, dport, d->utab_size)];

	while (*pp && !((*pp)->src == src && (*pp)->sport == sport && (*pp)->dst == dst &&
			(*pp)->dport == dport))
		pp = &(*pp)->hnext;
	return pp;
}

static struct uflow **dgram_uid_slot(struct daemon *d, uint32_t id)
{
	struct uflow **pp = &d->uidtab[id % d->utab_size];

	while (*pp && (*pp)->id != id)
		pp = &(*pp)->inext;
	return pp;
}

static void dgram_uflow_free(struct daemon *d, struct uflow *u, bool tell)
{
	struct uflow **pp = dgram_udp_slot(d, u->src, u->sport, u->dst, u->dport);
	uint8_t buf[32];

	if (u->guarded)
		guard_end(&d->guard, IPPROTO_UDP, u->dst, u->dport, GUARD_NO_ANSWER, now_us(), 0);
	if (*pp == u)
		*pp = u->hnext;
	pp = dgram_uid_slot(d, u->id);
	if (*pp == u)
		*pp = u->inext;
	if (u->lprev)
		u->lprev->lnext = u->lnext;
	else
		d->ulist = u->lnext;
	if (u->lnext)
		u->lnext->lprev = u->lprev;
	if (tell) {
		struct msg_udp_close m = { .flow = u->id };
		ssize_t n = msg_udp_close_encode(buf, sizeof(buf), &m);
		if (n > 0)
			tunnel_send(d, buf, (size_t)n);
	}
	d->n_udp--;
	free(u);
}

static void dgram_udp_sweep(struct loop *l, struct loop_timer *t)
{
	struct daemon *d = t->arg;
	uint64_t now = loop_now_ms(l);

	for (struct uflow *u = d->ulist, *next; u; u = next) {
		next = u->lnext;
		if (now - u->last_ms > UDP_IDLE_MS)
			dgram_uflow_free(d, u, true);
	}
	loop_timer_arm(l, &d->udp_timer, UDP_SWEEP_MS, dgram_udp_sweep, d);
}

/* The flow of p, made if need be.  NULL when p is dropped (*cut: the loop
 * guard refused it, and it was answered). */
static struct uflow *dgram_uflow_get(struct daemon *d, const struct pkt4 *p, bool *cut)
{
	struct uflow **pp = dgram_udp_slot(d, p->src, p->sport, p->dst, p->dport);
	struct uflow *u = *pp;
	struct guard_attempt a;
	bool tracked;
	enum guard_verdict v;

	*cut = false;
	if (u)
		return u;
	if (d->n_udp >= UDP_FLOWS_MAX)
		return NULL;
	a = (struct guard_attempt){ .proto = IPPROTO_UDP, .dst = p->dst, .port = p->dport, .now = now_us(),
				    .load = d->n_dialing };
	v = guard_begin(&d->guard, &a, &tracked);
	if (v != GUARD_PASS) {
		size_t n = pkt4_build_icmp_unreach(d->out, sizeof(d->out), p, 3, p->dst);
		loopguard_count(d, IPPROTO_UDP, p->src, p->dst, p->dport, v);
		if (n)
			daemon_vif_write(d, d->out, n);
		*cut = true;
		return NULL;
	}
	if (!(u = calloc(1, sizeof(*u)))) {
		if (tracked)
			guard_end(&d->guard, IPPROTO_UDP, p->dst, p->dport, GUARD_NO_ANSWER, now_us(), 0);
		return NULL;
	}
	u->d = d;
	u->id = ++d->next_uid;
	u->src = p->src;
	u->sport = p->sport;
	u->dst = p->dst;
	u->dport = p->dport;
	u->guarded = tracked;
	u->sent_us = a.now;
	*pp = u;
	pp = dgram_uid_slot(d, u->id);
	if (*pp) { /* the id space wrapped onto a live flow: should not happen in practice */
		*dgram_udp_slot(d, u->src, u->sport, u->dst, u->dport) = u->hnext;
		if (tracked)
			guard_end(&d->guard, IPPROTO_UDP, p->dst, p->dport, GUARD_NO_ANSWER, now_us(), 0);
		free(u);
		return NULL;
	}
	*pp = u;
	u->lnext = d->ulist;
	if (d->ulist)
		d->ulist->lprev = u;
	d->ulist = u;
	d->n_udp++;
	d->c.udp_flows_total++;
	return u;
}

void dgram_udp_from_vif(struct daemon *d, uint8_t *buf, size_t len)
{
	struct pkt4 p;
	struct uflow *u;
	struct msg_udp m;
	ssize_t n;
	bool cut = false;

	if (pkt4_parse(buf, len, &p) < 0 || p.frag || !(u = dgram_uflow_get(d, &p, &cut))) {
		if (!cut)
			d->c.udp_dropped++;
		return;
	}
	u->last_ms = loop_now_ms(d->loop);
	m = (struct msg_udp){ .flow = u->id, .src = p.src, .sport = p.sport, .dst = p.dst,
			      .dport = p.dport, .data = p.payload, .len = (uint16_t)p.payload_len };
	n = msg_udp_encode(d->out, sizeof(d->out), &m);
	if (n < 0 || tunnel_send(d, d->out, (size_t)n) < 0) {
		d->c.udp_dropped++;
		return;
	}
	d->c.udp_out++;
}

void dgram_udp_from_tunnel(struct daemon *d, const struct msg_udp *m)
{
	struct uflow *u = *dgram_uid_slot(d, m->flow); /* the manager echoes our flow id */
	size_t n;

	if (!u) {
		d->c.udp_dropped++;
		return;
	}
	u->last_ms = loop_now_ms(d->loop);
	if (u->guarded) {
		u->guarded = false;
		guard_end(&d->guard, IPPROTO_UDP, u->dst, u->dport, GUARD_ANSWERED_OK, now_us(), u->sent_us);
	}
	n = pkt4_build_udp(d->out, sizeof(d->out), m->src, m->sport, u->src, u->sport, m->data, m->len);
	if (n && daemon_vif_write(d, d->out, n) == 0)
		d->c.udp_in++;
}

/* The loop guard's bookkeeping for the echo request in slot i. */
static void dgram_ping_end(struct daemon *d, uint32_t i, enum guard_outcome o)
{
	if (!pings[i].guarded)
		return;
	pings[i].guarded = false;
	guard_end(&d->guard, IPPROTO_ICMP, pings[i].dst, 0, o, now_us(), pings[i].sent_us);
}

void dgram_icmp_from_vif(struct daemon *d, uint8_t *buf, size_t len)
{
	struct pkt4 p;
	struct msg_ping m;
	ssize_t n;
	uint32_t i;
	struct guard_attempt a;
	bool tracked;
	enum guard_verdict v;

	if (pkt4_parse(buf, len, &p) < 0 || p.frag || p.icmp_type != 8)
		return;
	a = (struct guard_attempt){ .proto = IPPROTO_ICMP, .dst = p.dst, .now = now_us(), .load = d->n_dialing };
	v = guard_begin(&d->guard, &a, &tracked);
	if (v != GUARD_PASS) {
		loopguard_count(d, IPPROTO_ICMP, p.src, p.dst, 0, v);
		return;
	}
	m = (struct msg_ping){ .id = ++ping_next, .dst = p.dst, .ident = p.icmp_id, .seq = p.icmp_seq,
			       .data = p.payload, .len = (uint16_t)p.payload_len };
	i = m.id % PING_SLOTS;
	dgram_ping_end(d, i, GUARD_NO_ANSWER); /* overwritten unanswered */
	pings[i].id = m.id;
	pings[i].src = p.src;
	pings[i].dst = p.dst;
	pings[i].guarded = tracked;
	pings[i].sent_us = a.now;
	n = msg_ping_encode(d->out, sizeof(d->out), &m);
	if (n > 0 && tunnel_send(d, d->out, (size_t)n) == 0)
		d->c.pings++;
	else
		dgram_ping_end(d, i, GUARD_NO_ANSWER);
}

void dgram_icmp_from_tunnel(struct daemon *d, const struct msg_pong *m)
{
	uint32_t i = m->id % PING_SLOTS;
	size_t n;

	if (pings[i].id != m->id)
		return;
	dgram_ping_end(d, i, m->status == PONG_REPLY ? GUARD_ANSWERED_OK
			     : m->status == PONG_UNREACHABLE ? GUARD_ANSWERED_OTHER : GUARD_NO_ANSWER);
	if (m->status != PONG_REPLY)
		return;
	n = pkt4_build_icmp_echo_reply(d->out, sizeof(d->out), m->src, pings[i].src, m->ident, m->seq,
				       m->data, m->len);
	if (n && daemon_vif_write(d, d->out, n) == 0)
		d->c.pongs++;
}

int dgram_udp_init(struct daemon *d)
{
	d->utab_size = 4099;
	d->utab = calloc(d->utab_size, sizeof(*d->utab));
	d->uidtab = calloc(d->utab_size, sizeof(*d->uidtab));
	if (!d->utab || !d->uidtab)
		return -ENOMEM;
	loop_timer_arm(d->loop, &d->udp_timer, UDP_SWEEP_MS, dgram_udp_sweep, d);
	return 0;
}

void dgram_udp_fini(struct daemon *d)
{
	while (d->ulist)
		dgram_uflow_free(d, d->ulist, false);
	free(d->utab);
	free(d->uidtab);
	d->utab = NULL;
	d->uidtab = NULL;
	loop_timer_cancel(d->loop, &d->udp_timer);
}
