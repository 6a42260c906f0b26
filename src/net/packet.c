/* IPv4 packets from and to the VIF: parse, rewrite, build (packet.h). */
#include "net/packet.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "common/cursor.h"

#define IP4_HLEN 20
#define TCP_HLEN 20
#define UDP_HLEN 8
#define ICMP_HLEN 8
#define IP4_MAXLEN 65535u
#define IP4_TTL 64
#define IP4_DF 0x4000
#define IP4_MF 0x2000
#define IP4_OFFMASK 0x1fff

#define TCP_CSUM_OFF 16
#define UDP_CSUM_OFF 6
#define ICMP_CSUM_OFF 2

#define ICMP_ECHOREPLY 0
#define ICMP_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIMXCEED 11
#define ICMP_UNREACH_MAXCODE 15

/* A field of a packet pkt4_parse has checked already (checksums). */
static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* RFC 793 pseudo-header, also used by UDP (RFC 768). */
static uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	return (src >> 16) + (src & 0xffffu) + (dst >> 16) + (dst & 0xffffu) + proto +
	       (uint32_t)len;
}

/* ---- parse ---- */

/* What follows the transport header at c (a cursor on p->l4). */
static int parse_payload(struct pkt4 *p, struct cursor *c)
{
	if (c->err)
		return -EBADMSG;
	p->payload = p->l4 + c->off;
	p->payload_len = cursor_remaining(c);
	return 0;
}

static int parse_tcp(struct pkt4 *p, struct cursor *c)
{
	struct cursor h = cursor_sub(c, TCP_HLEN);
	uint8_t data_off;

	p->sport = cursor_u16(&h);
	p->dport = cursor_u16(&h);
	p->seq = cursor_u32(&h);
	p->ack = cursor_u32(&h);
	data_off = cursor_u8(&h);
	p->tcp_flags = cursor_u8(&h);
	/* window, checksum, urgent pointer */
	p->tcp_hlen = (size_t)(data_off >> 4) * 4;
	if (p->tcp_hlen < TCP_HLEN)
		cursor_fail(c);
	else
		cursor_skip(c, p->tcp_hlen - TCP_HLEN); /* options */
	return parse_payload(p, c);
}

/* Strict: the UDP length must be the IP payload length exactly (the kernel
 * never sends trailing bytes; a mismatch means a broken or crafted packet). */
static int parse_udp(struct pkt4 *p, struct cursor *c)
{
	struct cursor h = cursor_sub(c, UDP_HLEN);

	p->sport = cursor_u16(&h);
	p->dport = cursor_u16(&h);
	if (cursor_u16(&h) != p->l4len) /* then the checksum */
		cursor_fail(c);
	return parse_payload(p, c);
}

/* Every ICMP message has an 8-byte header; id and seq mean something only
 * for echo, the payload (after those 8 bytes) is set for every type. */
static int parse_icmp(struct pkt4 *p, struct cursor *c)
{
	struct cursor h = cursor_sub(c, ICMP_HLEN);
	uint16_t id, seq;

	p->icmp_type = cursor_u8(&h);
	p->icmp_code = cursor_u8(&h);
	cursor_skip(&h, 2); /* checksum */
	id = cursor_u16(&h);
	seq = cursor_u16(&h);
	if (p->icmp_type == ICMP_ECHO || p->icmp_type == ICMP_ECHOREPLY) {
		p->icmp_id = id;
		p->icmp_seq = seq;
	}
	return parse_payload(p, c);
}

int pkt4_parse(uint8_t *buf, size_t len, struct pkt4 *p)
{
	struct cursor c, h;
	uint8_t vihl;
	uint16_t tot, frag;

	memset(p, 0, sizeof(*p));
	cursor_init(&c, buf, len);
	h = cursor_sub(&c, IP4_HLEN);
	vihl = cursor_u8(&h);
	cursor_skip(&h, 1); /* TOS */
	tot = cursor_u16(&h);
	cursor_skip(&h, 2); /* ID */
	frag = cursor_u16(&h);
	p->ttl = cursor_u8(&h);
	p->proto = cursor_u8(&h);
	cursor_skip(&h, 2); /* checksum */
	p->src = cursor_u32(&h);
	p->dst = cursor_u32(&h);
	p->ihl = (size_t)(vihl & 0x0f) * 4;
	if (h.err || vihl >> 4 != 4 || p->ihl < IP4_HLEN || tot < p->ihl || tot > len)
		return -EBADMSG;
	p->ip = buf;
	p->len = tot;
	p->frag = (frag & (IP4_MF | IP4_OFFMASK)) != 0;
	p->l4 = buf + p->ihl;
	p->l4len = tot - p->ihl;
	if (p->frag)
		return 0;
	/* The transport header lies within the total length, not the buffer. */
	cursor_init(&c, p->l4, p->l4len);
	switch (p->proto) {
	case IPPROTO_TCP: return parse_tcp(p, &c);
	case IPPROTO_UDP: return parse_udp(p, &c);
	case IPPROTO_ICMP: return parse_icmp(p, &c);
	default: return 0;
	}
}

/* The IPv4 header at c, options included: its protocol; c moves past it. */
static uint8_t ip4_header_skip(struct cursor *c)
{
	struct cursor h = cursor_sub(c, IP4_HLEN);
	size_t ihl = (size_t)(cursor_u8(&h) & 0x0f) * 4;
	uint8_t proto;

	cursor_skip(&h, 8); /* TOS, length, ID, fragment, TTL */
	proto = cursor_u8(&h);
	if (ihl < IP4_HLEN)
		cursor_fail(c);
	else
		cursor_skip(c, ihl - IP4_HLEN);
	return proto;
}

/* The ICMP header at c: type, then the identifier and sequence of echo. */
static uint8_t icmp_echo_header(struct cursor *c, uint16_t *ident, uint16_t *seq)
{
	struct cursor h = cursor_sub(c, ICMP_HLEN);
	uint8_t type = cursor_u8(&h);

	cursor_skip(&h, 3); /* code, checksum */
	*ident = cursor_u16(&h);
	*seq = cursor_u16(&h);
	return type;
}

int pkt4_icmp_answer_parse(const uint8_t *buf, size_t len, bool with_ip, struct pkt4_icmp_answer *a)
{
	struct cursor c;
	uint8_t type;

	memset(a, 0, sizeof(*a));
	cursor_init(&c, buf, len);
	if (with_ip)
		ip4_header_skip(&c);
	type = icmp_echo_header(&c, &a->ident, &a->seq);
	if (type == ICMP_ECHOREPLY) {
		a->len = cursor_remaining(&c);
		a->data = cursor_ref(&c, a->len);
		return c.err ? -EBADMSG : 0;
	}
	a->error = true;
	if ((type != ICMP_UNREACH && type != ICMP_TIMXCEED) || ip4_header_skip(&c) != IPPROTO_ICMP ||
	    icmp_echo_header(&c, &a->ident, &a->seq) != ICMP_ECHO)
		cursor_fail(&c);
	return c.err ? -EBADMSG : 0;
}

/* ---- rewrite ---- */

/* A full checksum C = ~S: eqn. 3 of RFC 1624 for each changed field.
 * CHECKSUM_PARTIAL (csum_partial): the field holds the folded pseudo-header
 * sum P itself, not complemented, and the kernel later sums the L4 bytes
 * from it and complements.  Then P' = P + ~m + m' (one's complement), which
 * is ~update(~P): and only addresses count, ports are in the summed bytes. */
static uint16_t l4_csum_update(uint16_t c, const struct pkt4 *p, uint32_t src, uint16_t sport,
			       uint32_t dst, uint16_t dport, bool partial)
{
	if (partial) {
		c = (uint16_t)~csum_update32((uint16_t)~c, p->src, src);
		return (uint16_t)~csum_update32((uint16_t)~c, p->dst, dst);
	}
	c = csum_update32(c, p->src, src);
	c = csum_update32(c, p->dst, dst);
	c = csum_update16(c, p->sport, sport);
	return csum_update16(c, p->dport, dport);
}

static void rewrite_l4(struct pkt4 *p, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
		       bool partial)
{
	uint8_t *cp;
	uint16_t c;

	if (p->proto == IPPROTO_TCP)
		cp = p->l4 + TCP_CSUM_OFF;
	else if (p->proto == IPPROTO_UDP)
		cp = p->l4 + UDP_CSUM_OFF;
	else
		return;
	c = get16(cp);
	/* UDP checksum 0 means none (RFC 768): leave it so. */
	if (partial || p->proto == IPPROTO_TCP || c != 0) {
		c = l4_csum_update(c, p, src, sport, dst, dport, partial);
		/* A computed 0 is sent as 0xffff in UDP (RFC 768). */
		if (!partial && p->proto == IPPROTO_UDP && c == 0)
			c = 0xffff;
		put16(cp, c);
	}
	put16(p->l4, sport);
	put16(p->l4 + 2, dport);
	p->sport = sport;
	p->dport = dport;
}

void pkt4_csum_complete(struct pkt4 *p)
{
	uint8_t *cp;
	uint16_t c;

	if (p->frag || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		return;
	cp = p->l4 + (p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
	c = csum_fold(csum_partial(p->l4, p->l4len, 0));
	if (p->proto == IPPROTO_UDP && c == 0)
		c = 0xffff; /* RFC 768: 0 means no checksum */
	put16(cp, c);
}

/* Fragments: only the IP header is rewritten (the L4 header may not be in
 * this fragment); callers should not NAT fragments. */
void pkt4_rewrite(struct pkt4 *p, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
		  bool partial)
{
	uint16_t c = get16(p->ip + 10);

	c = csum_update32(c, p->src, src);
	c = csum_update32(c, p->dst, dst);
	put16(p->ip + 10, c);
	put32(p->ip + 12, src);
	put32(p->ip + 16, dst);
	if (!p->frag)
		rewrite_l4(p, src, sport, dst, dport, partial);
	p->src = src;
	p->dst = dst;
}

/* ---- verify ---- */

/* Fragments: only the IP header checksum (the L4 one spans the datagram). */
bool pkt4_csum_ok(const struct pkt4 *p)
{
	uint32_t ps = pseudo_sum(p->src, p->dst, p->proto, p->l4len);

	if (csum_fold(csum_partial(p->ip, p->ihl, 0)) != 0)
		return false;
	if (p->frag)
		return true;
	switch (p->proto) {
	case IPPROTO_UDP:
		if (get16(p->l4 + UDP_CSUM_OFF) == 0)
			return true;
		/* fall through */
	case IPPROTO_TCP: return csum_fold(csum_partial(p->l4, p->l4len, ps)) == 0;
	case IPPROTO_ICMP: return csum_fold(csum_partial(p->l4, p->l4len, 0)) == 0;
	default: return true;
	}
}

/* ---- build ---- */

/* IP ID: the builders are pure, so no counter.  A mix of what identifies
 * the datagram: equal IDs need equal addresses, length and L4 checksum. */
static uint16_t ip4_id(uint32_t src, uint32_t dst, size_t tot, uint16_t l4csum)
{
	uint32_t h = src * 0x9e3779b1u ^ dst;

	h = (h ^ (uint32_t)tot << 16 ^ l4csum) * 0x85ebca6bu;
	h ^= h >> 15;
	h *= 0xc2b2ae35u;
	return (uint16_t)(h ^ h >> 16);
}

/* DF on TCP (as the kernel sends it); off on ICMP and UDP, whose datagrams
 * the laptop may forward and then have to fragment. */
static void ip4_build(uint8_t *out, size_t tot, uint8_t proto, uint32_t src, uint32_t dst,
		      bool df, uint16_t l4csum)
{
	out[0] = 0x45;
	out[1] = 0;
	put16(out + 2, (uint16_t)tot);
	put16(out + 4, ip4_id(src, dst, tot, l4csum));
	put16(out + 6, df ? IP4_DF : 0);
	out[8] = IP4_TTL;
	out[9] = proto;
	put16(out + 10, 0);
	put32(out + 12, src);
	put32(out + 16, dst);
	put16(out + 10, csum_fold(csum_partial(out, IP4_HLEN, 0)));
}

/* RFC 793, "Reset Generation"; never a RST for a RST. */
size_t pkt4_build_rst(uint8_t *out, size_t cap, const struct pkt4 *in)
{
	const size_t tot = IP4_HLEN + TCP_HLEN;
	uint8_t *t;
	uint16_t c;

	if (in->proto != IPPROTO_TCP || in->frag || (in->tcp_flags & PKT_TCP_RST) || cap < tot)
		return 0;
	t = out + IP4_HLEN;
	memset(t, 0, TCP_HLEN);
	put16(t, in->dport);
	put16(t + 2, in->sport);
	if (in->tcp_flags & PKT_TCP_ACK) {
		put32(t + 4, in->ack);
		t[13] = PKT_TCP_RST;
	} else {
		uint32_t ack = in->seq + (uint32_t)in->payload_len;
		ack += !!(in->tcp_flags & PKT_TCP_SYN) + !!(in->tcp_flags & PKT_TCP_FIN);
		put32(t + 8, ack);
		t[13] = PKT_TCP_RST | PKT_TCP_ACK;
	}
	t[12] = (TCP_HLEN / 4) << 4;
	c = csum_fold(csum_partial(t, TCP_HLEN, pseudo_sum(in->dst, in->src, IPPROTO_TCP, TCP_HLEN)));
	put16(t + TCP_CSUM_OFF, c);
	ip4_build(out, tot, IPPROTO_TCP, in->dst, in->src, true, c);
	return tot;
}

/* RFC 1122 3.2.2: no error about an ICMP error, about a fragment other
 * than the first, about a datagram to or from a broadcast or multicast
 * address (or from 0.0.0.0). */
static bool ip4_is_multi(uint32_t a)
{
	return a == 0xffffffffu || (a >> 28) == 0xe;
}

static bool icmp_error_allowed(const struct pkt4 *in)
{
	uint8_t type = in->l4len ? in->l4[0] : 0;
	bool icmp_err = type == 3 || type == 4 || type == 5 || type == 11 || type == 12;

	if (get16(in->ip + 6) & IP4_OFFMASK)
		return false;
	if (in->proto == IPPROTO_ICMP && icmp_err)
		return false;
	return in->src != 0 && !ip4_is_multi(in->src) && !ip4_is_multi(in->dst);
}

size_t pkt4_build_icmp_unreach(uint8_t *out, size_t cap, const struct pkt4 *in, uint8_t code,
			       uint32_t from)
{
	size_t quote = in->ihl + (in->l4len < 8 ? in->l4len : 8);
	size_t tot = IP4_HLEN + ICMP_HLEN + quote;
	uint8_t *ic;
	uint16_t c;

	if (code > ICMP_UNREACH_MAXCODE || cap < tot || !icmp_error_allowed(in))
		return 0;
	ic = out + IP4_HLEN;
	memset(ic, 0, ICMP_HLEN);
	ic[0] = ICMP_UNREACH;
	ic[1] = code;
	memcpy(ic + ICMP_HLEN, in->ip, quote);
	c = csum_fold(csum_partial(ic, ICMP_HLEN + quote, 0));
	put16(ic + ICMP_CSUM_OFF, c);
	ip4_build(out, tot, IPPROTO_ICMP, from, in->src, false, c);
	return tot;
}

/* The transport header of a datagram built at out: l4hlen bytes, then the
 * len bytes of data moved into place after it (data may overlap out, e.g.
 * received at out + 28 and built in place).  NULL when it does not fit. */
static uint8_t *l4_place(uint8_t *out, size_t cap, size_t l4hlen, const uint8_t *data, size_t len)
{
	uint8_t *l4 = out + IP4_HLEN;

	if (len > IP4_MAXLEN - IP4_HLEN - l4hlen || cap < IP4_HLEN + l4hlen + len || (len && !data))
		return NULL;
	if (len)
		memmove(l4 + l4hlen, data, len);
	return l4;
}

size_t pkt4_build_udp(uint8_t *out, size_t cap, uint32_t src, uint16_t sport, uint32_t dst,
		      uint16_t dport, const uint8_t *data, size_t len)
{
	uint8_t *u = l4_place(out, cap, UDP_HLEN, data, len);
	size_t l4len = UDP_HLEN + len;
	uint16_t c;

	if (!u)
		return 0;
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, (uint16_t)l4len);
	put16(u + UDP_CSUM_OFF, 0);
	c = csum_fold(csum_partial(u, l4len, pseudo_sum(src, dst, IPPROTO_UDP, l4len)));
	put16(u + UDP_CSUM_OFF, c ? c : 0xffff);
	ip4_build(out, IP4_HLEN + l4len, IPPROTO_UDP, src, dst, false, c);
	return IP4_HLEN + l4len;
}

size_t pkt4_build_icmp_echo_reply(uint8_t *out, size_t cap, uint32_t src, uint32_t dst,
				  uint16_t ident, uint16_t seq, const uint8_t *data, size_t len)
{
	uint8_t *ic = l4_place(out, cap, ICMP_HLEN, data, len);
	size_t l4len = ICMP_HLEN + len;
	uint16_t c;

	if (!ic)
		return 0;
	ic[0] = ICMP_ECHOREPLY;
	ic[1] = 0;
	put16(ic + ICMP_CSUM_OFF, 0);
	put16(ic + 4, ident);
	put16(ic + 6, seq);
	c = csum_fold(csum_partial(ic, l4len, 0));
	put16(ic + ICMP_CSUM_OFF, c);
	ip4_build(out, IP4_HLEN + l4len, IPPROTO_ICMP, src, dst, false, c);
	return IP4_HLEN + l4len;
}
