/* The daemon's DNS server: queries in, answers out (see dnssrv.h).
 *
 *   query -> loop? ----------------------------------> NXDOMAIN at once
 *         -> route: cluster (or a short name) -> cache -> tunnel -> answer
 *                                                           NXDOMAIN of a
 *                                                           short name -+
 *                   anything else ------------------> upstream <--------+
 *
 * A loop is a query for a name the daemon is asking the cluster right now,
 * spelled with the random letter case (0x20) it put on it, or a query for
 * a cluster name from one of the cluster's own addresses: the cluster's
 * DNS asked its upstream, which is this laptop (docs/dns.md). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/dnssrv.h"

static void dq_pump(struct dnssrv *s);

static uint64_t now(const struct dnssrv *s)
{
	return loop_now_ms(s->d->loop);
}

/* n (<= sizeof(s->rnd)) random bytes, or NULL when the kernel has none to
 * give: then the query is refused (SERVFAIL), never asked with an ID or a
 * letter case that can be guessed. */
static const uint8_t *rnd_bytes(struct dnssrv *s, size_t n)
{
	static bool said;

	if (s->rnd_left < n) {
		int ret = auth_random(s->rnd, sizeof(s->rnd));
		if (ret < 0) {
			if (!said)
				log_err("no random bytes for DNS IDs: %s; queries are refused", strerror(-ret));
			said = true;
			return NULL;
		}
		s->rnd_left = sizeof(s->rnd);
	}
	s->rnd_left -= n;
	return s->rnd + s->rnd_left;
}

static bool rnd16(struct dnssrv *s, uint16_t *v)
{
	const uint8_t *p = rnd_bytes(s, 2);

	if (p)
		*v = (uint16_t)(p[0] << 8 | p[1]);
	return p != NULL;
}

static uint32_t dq_index(const struct dq *q)
{
	return (uint32_t)(q - q->s->slots);
}

/* The tunnel message id: the slot and its generation, so a late answer
 * for a slot used again since is recognised and dropped. */
static uint32_t dq_tunnel_id(const struct dq *q)
{
	return q->gen << DQ_BITS | dq_index(q);
}

/* A slot can be had for a query. */
static bool dq_room(const struct dnssrv *s)
{
	return !list_empty(&s->free) || s->n_fresh < DQ_MAX;
}

/* ---- in-flight cluster names, by exact spelling ---- */

static void name_hash_add(struct dq *q)
{
	q->hash = dnsmsg_name_hash(&q->sent, false);
	list_add(&q->s->names[q->hash & (DQ_MAX - 1)], &q->hlink);
}

static bool name_in_flight(struct dnssrv *s, const struct dns_name *n)
{
	uint32_t h = dnsmsg_name_hash(n, false);
	struct dq *q;

	list_for_each_entry(q, &s->names[h & (DQ_MAX - 1)], hlink)
		if (q->hash == h && dnsmsg_name_same(&q->sent, n))
			return true;
	return false;
}

/* ---- slots ---- */

/* Freed slots first, then one never used: the 5 MB array stays mostly
 * untouched (and out of the daemon's RSS) unless DNS traffic needs it. */
static struct dq *dq_alloc(struct dnssrv *s)
{
	struct dq *q;

	if (!list_empty(&s->free)) {
		q = list_first(&s->free, struct dq, link);
		list_del(&q->link);
	} else if (s->n_fresh < DQ_MAX) {
		q = &s->slots[s->n_fresh++];
		q->s = s;
	} else {
		return NULL;
	}
	q->gen = (q->gen + 1) & ((1u << (32 - DQ_BITS)) - 1);
	q->state = DQ_FREE;
	q->tc = -1;
	q->tcp = NULL;
	q->start_ms = now(s);
	s->n_used++;
	return q;
}

/* Leaves q's current state (queue, tunnel, upstream) but keeps the slot. */
static void dq_release(struct dq *q)
{
	struct dnssrv *s = q->s;

	loop_timer_cancel(s->d->loop, &q->timer);
	switch (q->state) {
	case DQ_QUEUED:
	case DQ_UP_QUEUED:
		list_del(&q->link);
		break;
	case DQ_CLUSTER:
		list_del(&q->hlink);
		s->n_cluster--;
		break;
	case DQ_UPSTREAM:
		if (s->upmap[q->up_id] == dq_index(q) + 1) /* it maps to q only once sent */
			s->upmap[q->up_id] = 0;
		s->n_upstream--;
		break;
	case DQ_UPSTREAM_TCP:
		dnstcp_cancel(q->tcp);
		q->tcp = NULL;
		s->n_upstream--;
		break;
	case DQ_FREE:
		break;
	}
	q->state = DQ_FREE;
	dq_pump(s); /* room for a query that waits, if q was in flight */
}

static void dq_free(struct dq *q)
{
	struct dnssrv *s = q->s;

	dq_release(q);
	list_add(&s->free, &q->link);
	s->n_used--;
	if (s->udp_paused && s->udp_fd >= 0) {
		s->udp_paused = false;
		loop_mod(s->d->loop, s->udp_fd, LOOP_IN);
	}
}

/* ---- answers ---- */

/* Sends the answer m (a buffer that may be changed) to q's client; frees q. */
static void dq_send(struct dq *q, uint8_t *m, size_t len)
{
	struct dnssrv *s = q->s;
	uint8_t err[512];

	if (q->tc >= 0) {
		dnssrv_tcp_answer(s, q->tc, q->tc_gen, m, len);
	} else {
		if (len > q->max_udp) {
			size_t n = dnsmsg_truncate(m, len, q->max_udp);
			ssize_t e;
			s->c.truncated++;
			if (!n && (e = dnsmsg_error(&q->msg, DNS_R_SERVFAIL, err, sizeof(err))) > 0) {
				m = err;
				n = (size_t)e;
			}
			len = n;
		}
		if (len)
			sendto(s->udp_fd, m, len, MSG_DONTWAIT, (struct sockaddr *)&q->peer, sizeof(q->peer));
	}
	dq_free(q);
}

/* An answer with only the question and an rcode. */
static void dq_rcode(struct dq *q, uint16_t rcode)
{
	uint8_t b[512];
	ssize_t n = dnsmsg_error(&q->msg, rcode, b, sizeof(b));

	if (rcode == DNS_R_SERVFAIL)
		q->s->c.failures++;
	if (n < 0) {
		dq_free(q);
		return;
	}
	dq_send(q, b, (size_t)n);
}

/* ---- upstream: the resolvers the laptop had ---- */

static bool can_upstream(const struct dnssrv *s)
{
	/* With systemd-resolved, a name only reaches us because resolved
	 * routed it here: handing it back would loop. */
	return s->n_up > 0 && s->mode != DNS_MODE_RESOLVED;
}

/* Does the answer a (its header and question) answer q's query upstream?
 * The rest of an upstream answer is the client's business, passed on as is. */
static bool answers(const struct dns_msg *a, const struct dq *q)
{
	return a->h.id == q->up_id && (a->h.flags & DNS_F_QR) && dnsmsg_question_eq(a, &q->msg);
}

static void dq_timeout(struct loop *l, struct loop_timer *t);

/* A random upstream ID not in use; false without random bytes. */
static bool upstream_id(struct dnssrv *s, uint16_t *id)
{
	for (int i = 0; i < 16; i++) {
		if (!rnd16(s, id))
			return false;
		if (!s->upmap[*id])
			return true;
	}
	/* At most DQ_MAX of the 65536 are in use: the next free one. */
	for (uint32_t k = 0; k < 65536 && s->upmap[*id]; k++)
		*id = (uint16_t)(*id + 1);
	return true;
}

static void dq_up_tcp_done(void *arg, int err, const uint8_t *m, size_t len)
{
	struct dq *q = arg;
	struct dnssrv *s = q->s;
	struct dns_msg a;

	q->tcp = NULL; /* it frees itself */
	if (err || dnsmsg_question_read(m, len, &a) < 0 || !answers(&a, q)) {
		log_debug("upstream over TCP: %s", err ? strerror(-err) : "not the answer");
		dq_rcode(q, DNS_R_SERVFAIL);
		return;
	}
	memcpy(s->out, m, len);
	dnsmsg_set_id(s->out, q->msg.h.id);
	dq_release(q);
	dq_send(q, s->out, len);
}

/* Sends q's query, untouched but for a fresh random ID, to upstream server
 * q->up_server: over TCP for a TCP client, else over UDP.  q is counted
 * in n_upstream already. */
static void dq_up_transmit(struct dq *q)
{
	struct dnssrv *s = q->s;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(DNS_PORT),
				  .sin_addr.s_addr = htonl(s->up[q->up_server]) };
	uint8_t b[DQ_QUERY_MAX];
	uint16_t id, sock = 0;

	q->state = q->tc >= 0 ? DQ_UPSTREAM_TCP : DQ_UPSTREAM; /* so that a failure below is released as one */
	if (!upstream_id(s, &id) || (q->tc < 0 && !rnd16(s, &sock))) {
		dq_rcode(q, DNS_R_SERVFAIL);
		return;
	}
	memcpy(b, q->q, q->qlen);
	dnsmsg_set_id(b, id);
	q->up_id = id;
	if (q->tc >= 0) {
		q->tcp = dnstcp_start(s->d->loop, s->up[q->up_server], DNS_PORT, 0, b, q->qlen,
				      DQ_UPSTREAM_TIMEOUT_MS, dq_up_tcp_done, q);
		if (!q->tcp) {
			dq_rcode(q, DNS_R_SERVFAIL);
			return;
		}
		loop_timer_arm(s->d->loop, &q->timer, DQ_UPSTREAM_TIMEOUT_MS + 500, dq_timeout, q);
		return;
	}
	q->up_sock = sock % DNS_UP_SOCKS;
	s->upmap[id] = (uint16_t)(dq_index(q) + 1);
	if (sendto(s->up_fd[q->up_sock], b, q->qlen, MSG_DONTWAIT, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		log_debug("upstream %s: %s", inet_ntoa(sa.sin_addr), strerror(errno)); /* the timer tries again */
	loop_timer_arm(s->d->loop, &q->timer, DQ_UPSTREAM_TRY_MS, dq_timeout, q);
}

static void dq_up_start(struct dq *q)
{
	q->s->n_upstream++;
	q->up_server = 0;
	q->up_start_ms = now(q->s);
	dq_up_transmit(q);
}

static void dq_upstream(struct dq *q)
{
	struct dnssrv *s = q->s;

	if (!can_upstream(s)) {
		dq_rcode(q, q->route.kind == DNSROUTE_UPSTREAM ? DNS_R_REFUSED : DNS_R_SERVFAIL);
		return;
	}
	s->c.forwarded++;
	if (s->n_upstream >= DQ_UPSTREAM_MAX) {
		q->state = DQ_UP_QUEUED;
		list_add_tail(&s->uq, &q->link);
		loop_timer_arm(s->d->loop, &q->timer, DQ_UPSTREAM_TIMEOUT_MS, dq_timeout, q);
		return;
	}
	dq_up_start(q);
}

static void up_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct dnssrv *s = arg;
	int k = 0;

	(void)l;
	(void)events;
	while (k < DNS_UP_SOCKS && s->up_fd[k] != fd)
		k++;
	for (int i = 0; i < DQ_UDP_READS; i++) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(fd, s->buf, sizeof(s->buf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		struct dns_msg a;
		struct dq *q;
		uint16_t v;

		if (n < 0)
			return;
		if (dnsmsg_question_read(s->buf, (size_t)n, &a) < 0 || !(v = s->upmap[a.h.id]))
			continue;
		q = &s->slots[v - 1];
		if (q->state != DQ_UPSTREAM || q->up_sock != k || ntohl(from.sin_addr.s_addr) != s->up[q->up_server] ||
		    ntohs(from.sin_port) != DNS_PORT || !answers(&a, q))
			continue; /* spoofed, late or stray: keep waiting */
		dnsmsg_set_id(s->buf, q->msg.h.id);
		dq_release(q);
		dq_send(q, s->buf, (size_t)n);
	}
}

/* ---- the cluster ---- */

/* The cluster can answer now: connected, and the manager knows a DNS
 * server (CLUSTER_INFO says 0 when it has none: it would drop queries). */
static bool dq_cluster_ready(const struct dnssrv *s)
{
	return tunnel_up(&s->d->tun) && tunnel_info(&s->d->tun)->dns;
}

/* The cluster could not answer: a short name falls back to upstream. */
static void dq_cluster_failed(struct dq *q)
{
	if (q->route.kind == DNSROUTE_SEARCH && can_upstream(q->s))
		dq_upstream(q);
	else
		dq_rcode(q, DNS_R_SERVFAIL);
}

/* The cluster's answer m (validated: one question, route.name) for q,
 * given back under the name and ID the client used. */
static void dq_cluster_answer(struct dq *q, const uint8_t *m, size_t len, uint32_t age)
{
	struct dnssrv *s = q->s;
	struct dnsmsg_rewrite rw = { q->msg.h.id, &q->route.name, &q->msg.qname, age };
	uint16_t rcode = m[3] & 15;
	ssize_t n;

	if (q->route.kind == DNSROUTE_SEARCH && can_upstream(s) &&
	    (rcode == DNS_R_NXDOMAIN || rcode == DNS_R_SERVFAIL || rcode == DNS_R_REFUSED)) {
		dq_upstream(q);
		return;
	}
	n = dnsmsg_rewrite(m, len, &rw, s->out, sizeof(s->out));
	if (n < 0) {
		dq_rcode(q, DNS_R_SERVFAIL);
		return;
	}
	dq_send(q, s->out, (size_t)n);
}

static void dq_send_cluster(struct dq *q)
{
	struct dnssrv *s = q->s;
	struct msg_dns md = { .id = dq_tunnel_id(q) };
	const uint8_t *mix = rnd_bytes(s, 16);
	ssize_t n, fn;
	uint16_t id;
	int letters;

	if (!mix || !rnd16(s, &id)) {
		dq_rcode(q, DNS_R_SERVFAIL);
		return;
	}
	q->sent = q->route.name;
	letters = dnsmsg_name_mix(&q->sent, mix, 16, &q->msg.qname);
	n = dnsmsg_requery(q->q, &q->msg, id, &q->sent, s->out, sizeof(s->out));
	md.data = s->out;
	md.len = (uint16_t)(n > 0 ? n : 0);
	fn = n > 0 ? msg_dns_encode(s->frame, sizeof(s->frame), FT_DNS_QUERY, &md) : -EINVAL;
	if (fn < 0 || !dq_cluster_ready(s) || tunnel_send(&s->d->tun, s->frame, (size_t)fn) < 0) {
		dq_cluster_failed(q);
		return;
	}
	q->state = DQ_CLUSTER;
	s->n_cluster++;
	/* A name without a letter has no spelling of its own: an application
	 * asking it too would look like our question coming back. */
	if (letters)
		name_hash_add(q);
	loop_timer_arm(s->d->loop, &q->timer,
		       q->route.kind == DNSROUTE_SEARCH ? DQ_SEARCH_TIMEOUT_MS : DQ_CLUSTER_TIMEOUT_MS, dq_timeout, q);
}

/* Starts the queries waiting for the tunnel and for upstream while each
 * has room, until neither can move.  Not from inside itself: a start that
 * fails frees a slot, which pumps. */
static void dq_pump(struct dnssrv *s)
{
	struct dq *q;

	if (s->pumping || s->closing)
		return;
	s->pumping = true;
	for (;;) {
		if (!list_empty(&s->cq) && s->n_cluster < DQ_CLUSTER_MAX) {
			dq_release(q = list_first(&s->cq, struct dq, link));
			dq_send_cluster(q);
		} else if (!list_empty(&s->uq) && s->n_upstream < DQ_UPSTREAM_MAX) {
			dq_release(q = list_first(&s->uq, struct dq, link));
			dq_up_start(q);
		} else {
			break;
		}
	}
	s->pumping = false;
}

static void cache_key(const struct dq *q, struct dnscache_key *k)
{
	k->name = q->route.name;
	k->type = q->msg.qtype;
	k->klass = q->msg.qclass;
	k->dnssec_ok = q->msg.edns_do;
}

static void dq_cluster(struct dq *q)
{
	struct dnssrv *s = q->s;
	struct dnscache_key k;
	const uint8_t *m;
	size_t len;
	uint32_t age;

	cache_key(q, &k);
	if ((m = dnscache_get(s->cache, &k, now(s), &len, &age))) {
		s->c.cache_hits++;
		dq_cluster_answer(q, m, len, age);
		return;
	}
	if (!dq_cluster_ready(s)) {
		dq_cluster_failed(q);
		return;
	}
	if (s->n_cluster >= DQ_CLUSTER_MAX) {
		q->state = DQ_QUEUED;
		list_add_tail(&s->cq, &q->link);
		loop_timer_arm(s->d->loop, &q->timer, q->route.kind == DNSROUTE_SEARCH ? DQ_SEARCH_TIMEOUT_MS
									      : DQ_CLUSTER_TIMEOUT_MS,
			       dq_timeout, q);
		return;
	}
	dq_send_cluster(q);
}

void dnssrv_from_tunnel(struct daemon *d, const struct msg_dns *m)
{
	struct dnssrv *s = d->dns;
	struct dns_msg rm;
	struct dnscache_key k;
	struct dq *q;
	uint32_t ttl;
	bool ok;

	if (!s || !s->slots)
		return;
	q = &s->slots[m->id & (DQ_MAX - 1)];
	if (q->state != DQ_CLUSTER || dq_tunnel_id(q) != m->id)
		return; /* late: the query timed out or its slot moved on */
	ok = dnsmsg_parse(m->data, m->len, &rm) == 0 && (rm.h.flags & DNS_F_QR) &&
	     dnsmsg_name_eq(&rm.qname, &q->sent) && rm.qtype == q->msg.qtype && rm.qclass == q->msg.qclass;
	dq_release(q);
	if (!ok) {
		log_debug("not an answer to the question asked");
		dq_cluster_failed(q);
		return;
	}
	s->c.cluster++;
	if (dnsmsg_cache_ttl(&rm, &ttl) == 0) {
		cache_key(q, &k);
		dnscache_put(s->cache, &k, m->data, m->len, ttl, now(s));
	}
	dq_cluster_answer(q, m->data, m->len, 0);
}

void dnssrv_session_lost(struct daemon *d)
{
	struct dnssrv *s = d->dns;

	if (!s || !s->slots)
		return;
	for (uint32_t i = 0; i < DQ_MAX; i++) {
		struct dq *q = &s->slots[i];
		if (q->state == DQ_QUEUED || q->state == DQ_CLUSTER) {
			dq_release(q);
			dq_cluster_failed(q);
		}
	}
}

static void dq_timeout(struct loop *l, struct loop_timer *t)
{
	struct dq *q = t->arg;

	(void)l;
	switch (q->state) {
	case DQ_QUEUED:
	case DQ_CLUSTER:
		dq_release(q);
		dq_cluster_failed(q);
		break;
	case DQ_UPSTREAM:
		if (now(q->s) - q->up_start_ms + DQ_UPSTREAM_TRY_MS > DQ_UPSTREAM_TIMEOUT_MS) {
			dq_rcode(q, DNS_R_SERVFAIL);
			return;
		}
		/* Still counted in flight: the next server, or the same again. */
		q->s->upmap[q->up_id] = 0;
		q->up_server = (q->up_server + 1) % q->s->n_up;
		dq_up_transmit(q);
		break;
	default:
		dq_rcode(q, DNS_R_SERVFAIL);
	}
}

/* ---- the loop guard ---- */

static void loop_note(struct dnssrv *s, const struct dq *q, uint32_t src)
{
	uint64_t t = now(s);
	char ip[16], name[DNS_NAME_STR_MAX];
	int slot = 0;

	s->c.loops++;
	s->last_loop_src = src;
	s->d->lanes[0]->c.loops_dns++;
	daemon_guard_lock(s->d);
	s->d->loop_last_src = src;
	daemon_guard_unlock(s->d);
	for (int i = 0; i < DNS_LOOP_LOG_SOURCES; i++) {
		if (s->loop_log[i].src == src && s->loop_log[i].last_ms) {
			if (t - s->loop_log[i].last_ms < DNS_LOOP_LOG_MS)
				return;
			slot = i;
			break;
		}
		if (s->loop_log[i].last_ms < s->loop_log[slot].last_ms)
			slot = i;
	}
	s->loop_log[slot].src = src;
	s->loop_log[slot].last_ms = t ? t : 1;
	log_warn("DNS loop blocked: %s from %s came back while subway was asking the cluster; "
		 "answered NXDOMAIN at once (docs/dns.md)", dnsmsg_name_str(&q->msg.qname, name), ip4_str(src, ip));
}

/* ---- queries ---- */

bool dnssrv_query(struct dnssrv *s, const uint8_t *m, size_t len, const struct sockaddr_in *peer, int tc)
{
	struct dns_msg msg;
	struct dq *q;
	uint32_t src = ntohl(peer->sin_addr.s_addr);

	s->c.queries++;
	if (tc >= 0)
		s->c.tcp++;
	if (dnsmsg_parse(m, len, &msg) < 0 || (msg.h.flags & DNS_F_QR)) {
		s->c.failures++;
		return false;
	}
	if (!(q = dq_alloc(s))) {
		/* Only a TCP client gets here (UDP stops reading first). */
		uint8_t b[512];
		ssize_t n = dnsmsg_error(&msg, DNS_R_SERVFAIL, b, sizeof(b));
		s->c.failures++;
		if (n > 0 && tc >= 0)
			dnssrv_tcp_answer(s, tc, s->tcpc[tc].gen, b, (size_t)n);
		return n > 0;
	}
	q->tc = tc;
	q->tc_gen = tc >= 0 ? s->tcpc[tc].gen : 0;
	q->peer = *peer;
	q->msg = msg;
	q->max_udp = msg.edns ? MIN(msg.edns_size, DQ_UDP_MAX) : DNS_UDP_MIN;
	q->qlen = (uint16_t)MIN(len, sizeof(q->q));
	memcpy(q->q, m, q->qlen);
	if (DNS_OPCODE(msg.h.flags) != 0) { /* NOTIFY, UPDATE...: not a resolver's business */
		dq_rcode(q, DNS_R_NOTIMP);
		return true;
	}
	if (len > sizeof(q->q) || msg.h.an || msg.h.ns) {
		dq_rcode(q, DNS_R_FORMERR);
		return true;
	}
	dnsroute_decide(&s->route, &msg.qname, &q->route);
	if (msg.qclass != DNS_C_IN)
		q->route.kind = DNSROUTE_UPSTREAM;
	/* Only names asked of the cluster as they are can come back; a short
	 * name from the cluster has been through its own search list already. */
	if (s->d->guard.enabled && q->route.kind == DNSROUTE_CLUSTER &&
	    (name_in_flight(s, &msg.qname) || guard_is_source(&s->d->guard, src))) {
		loop_note(s, q, src);
		dq_rcode(q, DNS_R_NXDOMAIN);
		return true;
	}
	if (q->route.kind == DNSROUTE_SEARCH && guard_is_source(&s->d->guard, src))
		q->route.kind = DNSROUTE_UPSTREAM;
	if (q->route.kind == DNSROUTE_UPSTREAM)
		dq_upstream(q);
	else
		dq_cluster(q);
	return true;
}

static void udp_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct dnssrv *s = arg;

	(void)events;
	for (int i = 0; i < DQ_UDP_READS; i++) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		ssize_t n;

		if (!dq_room(s)) {
			/* Every slot busy: leave the rest in the socket's buffer. */
			s->udp_paused = true;
			loop_mod(l, fd, 0);
			return;
		}
		n = recvfrom(fd, s->buf, sizeof(s->buf), MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
		if (n < 0)
			return;
		dnssrv_query(s, s->buf, (size_t)n, &peer, -1);
	}
}

/* ---- sockets ---- */

static int udp_socket(uint32_t addr, uint16_t port, int rcvbuf)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return -errno;
	/* FORCE: above rmem_max, as root; the plain option is the fallback. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

int dnssrv_open(struct dnssrv *s)
{
	struct loop *l = s->d->loop;
	int ret;

	s->udp_fd = -1;
	for (int k = 0; k < DNS_UP_SOCKS; k++)
		s->up_fd[k] = -1;
	list_init(&s->free);
	list_init(&s->cq);
	list_init(&s->uq);
	for (uint32_t i = 0; i < DQ_MAX; i++)
		list_init(&s->names[i]);
	if (!(s->slots = calloc(DQ_MAX, sizeof(*s->slots))) || !(s->tcpc = calloc(DNS_TCP_CLIENTS, sizeof(*s->tcpc))) ||
	    !(s->cache = dnscache_new(DNS_CACHE_ENTRIES, DNS_CACHE_BYTES)))
		return -ENOMEM;
	s->n_fresh = 0;
	if ((s->udp_fd = udp_socket(s->addr, DNS_PORT, DNS_RCVBUF)) < 0)
		return s->udp_fd;
	if ((ret = loop_add(l, s->udp_fd, LOOP_IN, udp_event, s)) < 0)
		return ret;
	for (int k = 0; k < DNS_UP_SOCKS; k++) {
		if ((s->up_fd[k] = udp_socket(0, 0, 1 << 20)) < 0)
			return s->up_fd[k];
		if ((ret = loop_add(l, s->up_fd[k], LOOP_IN, up_event, s)) < 0)
			return ret;
	}
	return dnssrv_tcp_open(s);
}

void dnssrv_close(struct dnssrv *s)
{
	struct loop *l = s->d->loop;

	s->closing = true;
	if (s->slots)
		for (uint32_t i = 0; i < DQ_MAX; i++)
			if (s->slots[i].state != DQ_FREE)
				dq_release(&s->slots[i]);
	if (s->tcpc)
		dnssrv_tcp_close(s);
	loop_close(l, &s->udp_fd);
	for (int k = 0; k < DNS_UP_SOCKS; k++)
		loop_close(l, &s->up_fd[k]);
	free(s->slots);
	free(s->tcpc);
	dnscache_free(s->cache);
	s->slots = NULL;
	s->tcpc = NULL;
	s->cache = NULL;
}
