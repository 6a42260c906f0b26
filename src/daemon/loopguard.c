/* The loop guard in the daemon (loopguard.h). */
#include "daemon/loopguard.h"

#include <ifaddrs.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "daemon/daemon.h"
#include "daemon/hairpin.h"
#include "net/packet.h"

/* The manager reached through a local address (a port-forward on
 * loopback, a proxy on this machine) is not a cluster egress address. */
static bool loopguard_local_addr(uint32_t addr)
{
	struct ifaddrs *ifa, *i;
	bool local = (addr >> 24) == 127;

	if (local || getifaddrs(&ifa) < 0)
		return local;
	for (i = ifa; i && !local; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) == addr)
			local = true;
	freeifaddrs(ifa);
	return local;
}

void loopguard_session(struct daemon *d)
{
	struct guard *g = &d->guard;
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);
	uint32_t mgr = tunnel_addr(&d->tun);
	bool local = loopguard_local_addr(mgr);
	unsigned seq = d->guard_seq;
	char ip[16];

	/* The lanes read the sources and the mark for every packet without the
	 * lock (loopguard_packet): an odd guard_seq tells them to wait. */
	daemon_guard_lock(d);
	__atomic_store_n(&d->guard_seq, seq + 1, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	guard_clear_sources(g);
	if (!local)
		guard_add_source(g, mgr);
	for (int i = 0; i < ci->n_nodes; i++)
		guard_add_source(g, ci->nodes[i]);
	for (int i = 0; i < ci->n_managers; i++)
		guard_add_source(g, ci->managers[i]);
	for (int i = 0; i < ci->pod.n; i++)
		guard_add_source_cidr(g, &ci->pod.v[i]);
	g->dscp_mark = (uint8_t)(d->tos_override >= 0 ? d->tos_override : ci->tos) & 0xFC;
	__atomic_store_n(&d->guard_seq, seq + 2, __ATOMIC_RELEASE);
	daemon_guard_unlock(d);
	if (!g->enabled)
		log_warn("loop guard off (--no-loop-guard): loops are bounded only by the caps "
			 "(%d dials in flight, %d dials/s)", DIALS_MAX, DIAL_RATE_PER_S);
	else
		log_info("loop guard on: %d egress address(es) from %s, %d pod CIDR(s), mark %s0x%02x", g->n_src,
			 ip4_str(mgr, ip), g->src_cidrs.n, g->dscp_mark ? "" : "off ", g->dscp_mark);
}

static const char *loopguard_why(enum guard_verdict v)
{
	switch (v) {
	case GUARD_SOURCE: return "its source is one of the cluster's own addresses";
	case GUARD_MARK: return "it carries the mark the manager puts on what it dials";
	case GUARD_CHAIN: return "new attempts to it kept coming while none was answered "
				 "(a user-mode NAT on this machine re-originates them)";
	default: return "?";
	}
}

void loopguard_count(struct lane *ln, uint8_t proto, uint32_t src, uint32_t dst, uint16_t dport,
		     enum guard_verdict v)
{
	struct daemon *d = ln->d;
	char s[16], t[16];
	bool due;

	switch (proto) {
	case IPPROTO_TCP: ln->c.loops_tcp++; break;
	case IPPROTO_UDP: ln->c.loops_udp++; break;
	default: ln->c.loops_icmp++; break;
	}
	daemon_guard_lock(d);
	d->loop_last_src = src;
	due = guard_log_due(&d->guard, src, now_us());
	daemon_guard_unlock(d);
	if (!due)
		return;
	log_warn("loop refused: %s from %s to %s:%u came back from the cluster: %s. The cluster "
		 "reaches this machine (a VM here?): see docs/vm-networking.md. (Logged once a minute "
		 "per source.)", proto == IPPROTO_TCP ? "TCP" : proto == IPPROTO_UDP ? "UDP" : "ICMP echo",
		 ip4_str(src, s), ip4_str(dst, t), dport, loopguard_why(v));
}

/* addr is routed through the VIF (a pod or service CIDR). */
static bool loopguard_routed(const struct daemon *d, uint32_t addr)
{
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);

	return cidr_list_contains(&ci->pod, addr) || cidr_list_contains(&ci->svc, addr);
}

static void loopguard_answer(struct lane *ln, const struct pkt4 *p, enum guard_verdict v)
{
	struct daemon *d = ln->d;
	size_t n = 0;

	switch (p->proto) {
	case IPPROTO_TCP:
		if ((p->tcp_flags & (PKT_TCP_SYN | PKT_TCP_ACK)) == PKT_TCP_SYN) {
			loopguard_count(ln, p->proto, p->src, p->dst, p->dport, v);
			/* The RST below cannot find its way back to a source inside
			 * the routed CIDRs (it would enter the VIF again): the dials
			 * it would have failed fail here, refused, at once. */
			if (loopguard_routed(d, p->src))
				lanes_refuse_dst(d, ln, p->dst, p->dport);
		}
		if (!(p->tcp_flags & PKT_TCP_RST))
			n = pkt4_build_rst(ln->out, sizeof(ln->out), p);
		break;
	case IPPROTO_UDP:
		loopguard_count(ln, p->proto, p->src, p->dst, p->dport, v);
		n = pkt4_build_icmp_unreach(ln->out, sizeof(ln->out), p, 3, p->dst);
		break;
	case IPPROTO_ICMP:
		if (p->icmp_type == 8)
			loopguard_count(ln, p->proto, p->src, p->dst, 0, v);
		break;
	}
	if (n)
		lane_vif_write(ln, ln->out, n, false);
}

bool loopguard_packet(struct lane *ln, const struct pkt4 *p)
{
	struct daemon *d = ln->d;
	enum guard_verdict v;
	unsigned seq;

	/* Sources and mark change only when a session starts (loopguard_session,
	 * on lane 0, under the lock): read without the lock, and under it only
	 * if they changed meanwhile. */
	seq = __atomic_load_n(&d->guard_seq, __ATOMIC_ACQUIRE);
	v = guard_packet(&d->guard, p->src, p->ip[1] /* TOS */);
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	if ((seq & 1) || __atomic_load_n(&d->guard_seq, __ATOMIC_RELAXED) != seq) {
		daemon_guard_lock(d);
		v = guard_packet(&d->guard, p->src, p->ip[1]);
		daemon_guard_unlock(d);
	}
	if (v == GUARD_PASS)
		return false;
	if (!p->frag)
		loopguard_answer(ln, p, v);
	return true;
}
