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
	uint32_t src;
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

static struct uflow *dgram_uflow_get(struct daemon *d, const struct pkt4 *p)
{
	struct uflow **pp = dgram_udp_slot(d, p->src, p->sport, p->dst, p->dport);
	struct uflow *u = *pp;

	if (u)
		return u;
	if (d->n_udp >= UDP_FLOWS_MAX || !(u = calloc(1, sizeof(*u))))
		return NULL;
	u->d = d;
	u->id = ++d->next_uid;
	u->src = p->src;
	u->sport = p->sport;
	u->dst = p->dst;
	u->dport = p->dport;
	*pp = u;
	pp = dgram_uid_slot(d, u->id);
	if (*pp) { /* the id space wrapped onto a live flow: should not happen in practice */
		*dgram_udp_slot(d, u->src, u->sport, u->dst, u->dport) = u->hnext;
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

	if (pkt4_parse(buf, len, &p) < 0 || p.frag || !(u = dgram_uflow_get(d, &p))) {
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
	n = pkt4_build_udp(d->out, sizeof(d->out), m->src, m->sport, u->src, u->sport, m->data, m->len);
	if (n && daemon_vif_write(d, d->out, n) == 0)
		d->c.udp_in++;
}

void dgram_icmp_from_vif(struct daemon *d, uint8_t *buf, size_t len)
{
	struct pkt4 p;
	struct msg_ping m;
	ssize_t n;

	if (pkt4_parse(buf, len, &p) < 0 || p.frag || p.icmp_type != 8)
		return;
	m = (struct msg_ping){ .id = ++ping_next, .dst = p.dst, .ident = p.icmp_id, .seq = p.icmp_seq,
			       .data = p.payload, .len = (uint16_t)p.payload_len };
	pings[m.id % PING_SLOTS].id = m.id;
	pings[m.id % PING_SLOTS].src = p.src;
	n = msg_ping_encode(d->out, sizeof(d->out), &m);
	if (n > 0 && tunnel_send(d, d->out, (size_t)n) == 0)
		d->c.pings++;
}

void dgram_icmp_from_tunnel(struct daemon *d, const struct msg_pong *m)
{
	size_t n;

	if (m->status != 0 || pings[m->id % PING_SLOTS].id != m->id)
		return;
	n = pkt4_build_icmp_echo_reply(d->out, sizeof(d->out), m->src, pings[m->id % PING_SLOTS].src,
				       m->ident, m->seq, m->data, m->len);
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
