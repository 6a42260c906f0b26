/* UDP and ICMP echo (dgram.h). */
#include "daemon/dgram.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/daemon.h"
#include "daemon/loopguard.h"
#include "net/packet.h"

#define UDP_SWEEP_MS 5000

static uint32_t dgram_udp_hash(uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport, uint32_t size)
{
	uint64_t h = ((uint64_t)src << 32 | dst) * 0x9E3779B97F4A7C15ull;
	h ^= ((uint64_t)sport << 16 | dport) * 0xC2B2AE3D27D4EB4Full;
	h ^= h >> 29;
	return (uint32_t)(h % size);
}

static struct uflow **dgram_udp_slot(struct dgram *g, uint32_t src, uint16_t sport, uint32_t dst,
				     uint16_t dport)
{
	struct uflow **pp = &g->utab[dgram_udp_hash(src, sport, dst, dport, g->utab_size)];

	while (*pp && !((*pp)->src == src && (*pp)->sport == sport && (*pp)->dst == dst &&
			(*pp)->dport == dport))
		pp = &(*pp)->hnext;
	return pp;
}

static struct uflow *dgram_uflow_by_id(struct dgram *g, uint32_t id)
{
	struct idtab_node *n = idtab_find(&g->ids, id);

	return n ? container_of(n, struct uflow, hn) : NULL;
}

static void dgram_uflow_free(struct dgram *g, struct uflow *u, bool tell)
{
	struct daemon *d = g->d;
	struct uflow **pp = dgram_udp_slot(g, u->src, u->sport, u->dst, u->dport);
	uint8_t buf[32];

	if (u->guarded) {
		daemon_guard_lock(d);
		guard_end(&d->guard, IPPROTO_UDP, u->dst, u->dport, GUARD_NO_ANSWER, now_us(), 0);
		daemon_guard_unlock(d);
	}
	if (*pp == u)
		*pp = u->hnext;
	idtab_del(&g->ids, &u->hn);
	list_del(&u->link);
	if (tell) {
		struct msg_udp_close m = { .flow = u->hn.id };
		ssize_t n = msg_udp_close_encode(buf, sizeof(buf), &m);
		if (n > 0)
			tunnel_send(&d->tun, buf, (size_t)n);
	}
	g->n_udp--;
	free(u);
}

static void dgram_udp_sweep(struct loop *l, struct loop_timer *t)
{
	struct dgram *g = t->arg;
	uint64_t now = loop_now_ms(l);
	struct list *i, *next;

	list_for_each_safe(i, next, &g->flows) {
		struct uflow *u = list_entry(i, struct uflow, link);
		if (now - u->last_ms > UDP_IDLE_MS)
			dgram_uflow_free(g, u, true);
	}
	loop_timer_arm(l, &g->sweep, UDP_SWEEP_MS, dgram_udp_sweep, g);
}

/* Answers a datagram the loop guard cut: ICMP port unreachable. */
static void dgram_udp_cut(struct dgram *g, const struct pkt4 *p, enum guard_verdict v)
{
	struct daemon *d = g->d;
	size_t n = pkt4_build_icmp_unreach(d->lanes[0]->out, sizeof(d->lanes[0]->out), p, 3, p->dst);

	loopguard_count(d->lanes[0], IPPROTO_UDP, p->src, p->dst, p->dport, v);
	if (n)
		lane_vif_write(d->lanes[0], d->lanes[0]->out, n, false);
}

/* A new flow for p, in both tables.  NULL when it cannot be made. */
static struct uflow *dgram_uflow_new(struct dgram *g, const struct pkt4 *p, struct uflow **slot)
{
	struct uflow *u;

	if (g->n_udp >= UDP_FLOWS_MAX || dgram_uflow_by_id(g, g->next_uid + 1) ||
	    !(u = calloc(1, sizeof(*u))))
		return NULL; /* (the id space wrapped onto a live flow: should not happen in practice) */
	idtab_add(&g->ids, &u->hn, ++g->next_uid);
	u->src = p->src;
	u->sport = p->sport;
	u->dst = p->dst;
	u->dport = p->dport;
	*slot = u;
	list_add(&g->flows, &u->link);
	g->n_udp++;
	g->d->lanes[0]->c.udp_flows_total++;
	return u;
}

/* The flow of p, made if need be.  NULL when p is dropped (*cut: the loop
 * guard refused it, and it was answered). */
static struct uflow *dgram_uflow_get(struct dgram *g, const struct pkt4 *p, bool *cut)
{
	struct daemon *d = g->d;
	struct uflow **slot = dgram_udp_slot(g, p->src, p->sport, p->dst, p->dport);
	struct guard_attempt a = { .proto = IPPROTO_UDP, .dst = p->dst, .port = p->dport, .now = now_us(),
				   .load = lanes_dialing(d) };
	struct uflow *u = *slot;
	bool tracked;
	enum guard_verdict v;

	*cut = false;
	if (u || g->n_udp >= UDP_FLOWS_MAX)
		return u;
	daemon_guard_lock(d);
	v = guard_begin(&d->guard, &a, &tracked);
	daemon_guard_unlock(d);
	if (v != GUARD_PASS) {
		dgram_udp_cut(g, p, v);
		*cut = true;
		return NULL;
	}
	u = dgram_uflow_new(g, p, slot);
	if (!u && tracked) {
		daemon_guard_lock(d);
		guard_end(&d->guard, IPPROTO_UDP, p->dst, p->dport, GUARD_NO_ANSWER, a.now, 0);
		daemon_guard_unlock(d);
	}
	if (u) {
		u->guarded = tracked;
		u->sent_us = a.now;
	}
	return u;
}

/* Refuses a datagram: ICMP unreachable with code (3 port: the app's
 * socket gets ECONNREFUSED; 4 fragmentation needed: EMSGSIZE). */
static void dgram_udp_refuse(struct dgram *g, const struct pkt4 *p, uint8_t code)
{
	struct daemon *d = g->d;
	size_t n = pkt4_build_icmp_unreach(d->lanes[0]->out, sizeof(d->lanes[0]->out), p, code, p->dst);

	if (n)
		lane_vif_write(d->lanes[0], d->lanes[0]->out, n, false);
}

/* A first fragment: the datagram was larger than the VIF's MTU, which the
 * tunnel carries whole or not at all. */
static bool pkt4_first_fragment(const struct pkt4 *p)
{
	return p->frag && ((p->ip[6] & 0x1f) | p->ip[7]) == 0;
}

void dgram_udp_from_vif(struct dgram *g, const struct pkt4 *p)
{
	struct daemon *d = g->d;
	struct uflow *u;
	struct msg_udp m;
	ssize_t n;
	bool cut = false;

	if (pkt4_first_fragment(p)) {
		d->lanes[0]->c.udp_dropped++;
		dgram_udp_refuse(g, p, 4);
		return;
	}
	if (!p->frag && !tunnel_up(&d->tun)) {
		d->lanes[0]->c.failed_down++;
		dgram_udp_refuse(g, p, 3);
		return;
	}
	if (p->frag || !(u = dgram_uflow_get(g, p, &cut))) {
		if (!cut)
			d->lanes[0]->c.udp_dropped++;
		return;
	}
	u->last_ms = loop_now_ms(d->loop);
	m = (struct msg_udp){ .flow = u->hn.id, .src = p->src, .sport = p->sport, .dst = p->dst,
			      .dport = p->dport, .data = p->payload, .len = (uint16_t)p->payload_len };
	n = msg_udp_encode(d->lanes[0]->out, sizeof(d->lanes[0]->out), &m);
	if (n < 0 || tunnel_send(&d->tun, d->lanes[0]->out, (size_t)n) < 0) {
		d->lanes[0]->c.udp_dropped++;
		return;
	}
	d->lanes[0]->c.udp_out++;
}

void dgram_udp_from_tunnel(struct dgram *g, const struct msg_udp *m)
{
	struct daemon *d = g->d;
	struct uflow *u = dgram_uflow_by_id(g, m->flow); /* the manager echoes our flow id */
	size_t n;

	if (!u) {
		d->lanes[0]->c.udp_dropped++;
		return;
	}
	u->last_ms = loop_now_ms(d->loop);
	if (u->guarded) {
		u->guarded = false;
		daemon_guard_lock(d);
		guard_end(&d->guard, IPPROTO_UDP, u->dst, u->dport, GUARD_ANSWERED_OK, now_us(), u->sent_us);
		daemon_guard_unlock(d);
	}
	n = pkt4_build_udp(d->lanes[0]->out, sizeof(d->lanes[0]->out), m->src, m->sport, u->src, u->sport, m->data, m->len);
	if (n && lane_vif_write(d->lanes[0], d->lanes[0]->out, n, false) == 0)
		d->lanes[0]->c.udp_in++;
}

/* The loop guard's bookkeeping for an echo request. */
static void dgram_ping_end(struct dgram *g, struct dgram_ping *ping, enum guard_outcome o)
{
	if (!ping->guarded)
		return;
	ping->guarded = false;
	daemon_guard_lock(g->d);
	guard_end(&g->d->guard, IPPROTO_ICMP, ping->dst, 0, o, now_us(), ping->sent_us);
	daemon_guard_unlock(g->d);
}

void dgram_icmp_from_vif(struct dgram *g, const struct pkt4 *p)
{
	struct daemon *d = g->d;
	struct guard_attempt a = { .proto = IPPROTO_ICMP, .dst = p->dst, .now = now_us(), .load = lanes_dialing(d) };
	struct dgram_ping *ping;
	struct msg_ping m;
	bool tracked;
	enum guard_verdict v;
	ssize_t n;

	if (p->frag || p->icmp_type != 8)
		return;
	if (!tunnel_up(&d->tun)) { /* "Destination Host Unreachable" */
		size_t k = pkt4_build_icmp_unreach(d->lanes[0]->out, sizeof(d->lanes[0]->out), p, 1, p->dst);
		d->lanes[0]->c.failed_down++;
		if (k)
			lane_vif_write(d->lanes[0], d->lanes[0]->out, k, false);
		return;
	}
	daemon_guard_lock(d);
	v = guard_begin(&d->guard, &a, &tracked);
	daemon_guard_unlock(d);
	if (v != GUARD_PASS) {
		loopguard_count(d->lanes[0], IPPROTO_ICMP, p->src, p->dst, 0, v);
		return;
	}
	m = (struct msg_ping){ .id = ++g->ping_next, .dst = p->dst, .ident = p->icmp_id, .seq = p->icmp_seq,
			       .data = p->payload, .len = (uint16_t)p->payload_len };
	ping = &g->pings[m.id % DGRAM_PINGS];
	dgram_ping_end(g, ping, GUARD_NO_ANSWER); /* overwritten unanswered */
	*ping = (struct dgram_ping){ .id = m.id, .src = p->src, .dst = p->dst, .guarded = tracked,
				     .sent_us = a.now };
	n = msg_ping_encode(d->lanes[0]->out, sizeof(d->lanes[0]->out), &m);
	if (n > 0 && tunnel_send(&d->tun, d->lanes[0]->out, (size_t)n) == 0)
		d->lanes[0]->c.pings++;
	else
		dgram_ping_end(g, ping, GUARD_NO_ANSWER);
}

void dgram_icmp_from_tunnel(struct dgram *g, const struct msg_pong *m)
{
	struct daemon *d = g->d;
	struct dgram_ping *ping = &g->pings[m->id % DGRAM_PINGS];
	size_t n;

	if (ping->id != m->id)
		return;
	dgram_ping_end(g, ping, m->status == PONG_REPLY ? GUARD_ANSWERED_OK
				: m->status == PONG_UNREACHABLE ? GUARD_ANSWERED_OTHER : GUARD_NO_ANSWER);
	if (m->status != PONG_REPLY)
		return;
	n = pkt4_build_icmp_echo_reply(d->lanes[0]->out, sizeof(d->lanes[0]->out), m->src, ping->src, m->ident, m->seq,
				       m->data, m->len);
	if (n && lane_vif_write(d->lanes[0], d->lanes[0]->out, n, false) == 0)
		d->lanes[0]->c.pongs++;
}

int dgram_init(struct dgram *g, struct daemon *d)
{
	*g = (struct dgram){ .d = d, .utab_size = 4099 };
	list_init(&g->flows);
	g->utab = calloc(g->utab_size, sizeof(*g->utab));
	idtab_init(&g->ids, g->id_buckets, DGRAM_ID_BITS);
	if (!g->utab)
		return -ENOMEM;
	loop_timer_arm(d->loop, &g->sweep, UDP_SWEEP_MS, dgram_udp_sweep, g);
	return 0;
}

void dgram_reset(struct dgram *g)
{
	if (!g->d)
		return;
	while (!list_empty(&g->flows))
		dgram_uflow_free(g, list_first(&g->flows, struct uflow, link), false);
}

void dgram_fini(struct dgram *g)
{
	if (!g->d)
		return;
	dgram_reset(g);
	free(g->utab);
	g->utab = NULL;
	loop_timer_cancel(g->d->loop, &g->sweep);
}
