/* Unit tests for src/net/packet.c and csum.c.  Packets are made here by
 * hand and checksums recomputed from scratch with a byte-wise reference,
 * independent of the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "net/packet.h"

#define A(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define BUFSZ 70000

static uint8_t buf[BUFSZ], out[BUFSZ];

/* ---- reference helpers ---- */

static uint64_t rng_state = 0x5eed1234abcdull;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state >> 11);
}

static uint16_t g16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t g32(const uint8_t *p)
{
	return (uint32_t)g16(p) << 16 | g16(p + 2);
}

static void p16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void p32(uint8_t *p, uint32_t v)
{
	p16(p, (uint16_t)(v >> 16));
	p16(p + 2, (uint16_t)v);
}

/* Unfolded big-endian word sum, byte by byte. */
static uint64_t ref_sum(const uint8_t *p, size_t n, uint64_t s)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t ref_fold(uint64_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint64_t ref_pseudo(uint32_t src, uint32_t dst, uint8_t proto, size_t len)
{
	return (src >> 16) + (src & 0xffff) + (dst >> 16) + (dst & 0xffff) + proto + len;
}

/* From-scratch checksum of p[0..n) with the 16-bit field at off taken as 0. */
static uint16_t ref_csum_field0(const uint8_t *p, size_t n, size_t off, uint64_t init)
{
	uint64_t s = ref_sum(p, n, init) - g16(p + off);
	return (uint16_t)~ref_fold(s);
}

/* ---- packet makers ---- */

static size_t ip_make(uint8_t *b, size_t ihl, size_t l4len, uint8_t proto, uint32_t src,
		      uint32_t dst)
{
	memset(b, 0, ihl);
	b[0] = (uint8_t)(0x40 | ihl / 4);
	p16(b + 2, (uint16_t)(ihl + l4len));
	p16(b + 4, (uint16_t)rnd());
	p16(b + 6, 0x4000);
	b[8] = 64;
	b[9] = proto;
	p32(b + 12, src);
	p32(b + 16, dst);
	memset(b + 20, 1, ihl - 20); /* NOP options */
	p16(b + 10, ref_csum_field0(b, ihl, 10, 0));
	return ihl + l4len;
}

static void fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
}

struct tcp_spec {
	size_t ihl, hlen, plen;
	uint32_t src, dst, seq, ack;
	uint16_t sport, dport;
	uint8_t flags;
};

static size_t tcp_make(uint8_t *b, const struct tcp_spec *s)
{
	uint8_t *t = b + s->ihl;
	size_t l4 = s->hlen + s->plen;

	memset(t, 0, s->hlen);
	p16(t, s->sport);
	p16(t + 2, s->dport);
	p32(t + 4, s->seq);
	p32(t + 8, s->ack);
	t[12] = (uint8_t)(s->hlen / 4 << 4);
	t[13] = s->flags;
	p16(t + 14, 65535);
	memset(t + 20, 1, s->hlen - 20);
	fill(t + s->hlen, s->plen);
	p16(t + 16, ref_csum_field0(t, l4, 16, ref_pseudo(s->src, s->dst, IPPROTO_TCP, l4)));
	return ip_make(b, s->ihl, l4, IPPROTO_TCP, s->src, s->dst);
}

static size_t udp_make(uint8_t *b, size_t ihl, uint32_t src, uint16_t sport, uint32_t dst,
		       uint16_t dport, size_t plen, bool csum)
{
	uint8_t *u = b + ihl;
	size_t l4 = 8 + plen;
	uint16_t c;

	p16(u, sport);
	p16(u + 2, dport);
	p16(u + 4, (uint16_t)l4);
	p16(u + 6, 0);
	fill(u + 8, plen);
	c = ref_csum_field0(u, l4, 6, ref_pseudo(src, dst, IPPROTO_UDP, l4));
	p16(u + 6, csum ? (c ? c : 0xffff) : 0);
	return ip_make(b, ihl, l4, IPPROTO_UDP, src, dst);
}

static size_t icmp_make(uint8_t *b, size_t ihl, uint32_t src, uint32_t dst, uint8_t type,
			uint16_t id, uint16_t seq, size_t plen)
{
	uint8_t *ic = b + ihl;

	memset(ic, 0, 8);
	ic[0] = type;
	p16(ic + 4, id);
	p16(ic + 6, seq);
	fill(ic + 8, plen);
	p16(ic + 2, ref_csum_field0(ic, 8 + plen, 2, 0));
	return ip_make(b, ihl, 8 + plen, IPPROTO_ICMP, src, dst);
}

static struct tcp_spec tcp_default(void)
{
	struct tcp_spec s = {.ihl = 20, .hlen = 20, .plen = 0, .src = A(10, 0, 0, 1),
			     .dst = A(10, 96, 0, 10), .seq = 1000, .ack = 0, .sport = 40000,
			     .dport = 80, .flags = PKT_TCP_SYN};
	return s;
}

/* Checks every checksum of b (a packet) against a from-scratch computation. */
static void assert_csums_from_scratch(const uint8_t *b)
{
	size_t ihl = (size_t)(b[0] & 15) * 4, tot = g16(b + 2), l4 = tot - ihl;
	uint32_t src = g32(b + 12), dst = g32(b + 16);
	const uint8_t *t = b + ihl;

	assert_int_equal(g16(b + 10), ref_csum_field0(b, ihl, 10, 0));
	if (b[9] == IPPROTO_TCP) {
		assert_int_equal(g16(t + 16),
				 ref_csum_field0(t, l4, 16, ref_pseudo(src, dst, IPPROTO_TCP, l4)));
	} else if (b[9] == IPPROTO_UDP && g16(t + 6) != 0) {
		uint16_t c = ref_csum_field0(t, l4, 6, ref_pseudo(src, dst, IPPROTO_UDP, l4));
		assert_int_equal(g16(t + 6), c ? c : 0xffff);
	} else if (b[9] == IPPROTO_ICMP) {
		assert_int_equal(g16(t + 2), ref_csum_field0(t, l4, 2, 0));
	}
}

/* ---- parse ---- */

static void test_parse_tcp(void **state)
{
	struct tcp_spec s = tcp_default();
	struct pkt4 p;
	size_t n;

	(void)state;
	s.ihl = 24;
	s.hlen = 32;
	s.plen = 13;
	s.flags = PKT_TCP_ACK | PKT_TCP_PSH;
	s.ack = 0xfffffff0u;
	n = tcp_make(buf, &s);
	assert_int_equal(pkt4_parse(buf, n + 7, &p), 0); /* bytes past total length ignored */
	assert_ptr_equal(p.ip, buf);
	assert_int_equal(p.len, n);
	assert_int_equal(p.ihl, 24);
	assert_int_equal(p.proto, IPPROTO_TCP);
	assert_int_equal(p.ttl, 64);
	assert_false(p.frag);
	assert_int_equal(p.src, s.src);
	assert_int_equal(p.dst, s.dst);
	assert_ptr_equal(p.l4, buf + 24);
	assert_int_equal(p.l4len, 32 + 13);
	assert_int_equal(p.sport, 40000);
	assert_int_equal(p.dport, 80);
	assert_int_equal(p.tcp_flags, PKT_TCP_ACK | PKT_TCP_PSH);
	assert_int_equal(p.seq, 1000);
	assert_int_equal(p.ack, 0xfffffff0u);
	assert_int_equal(p.tcp_hlen, 32);
	assert_ptr_equal(p.payload, buf + 24 + 32);
	assert_int_equal(p.payload_len, 13);
	assert_true(pkt4_csum_ok(&p));
	buf[n - 1] ^= 0x40;
	assert_false(pkt4_csum_ok(&p));
	buf[n - 1] ^= 0x40;
	buf[15] ^= 1; /* IP header */
	assert_false(pkt4_csum_ok(&p));
}

static void test_parse_udp(void **state)
{
	struct pkt4 p;
	size_t n = udp_make(buf, 20, A(10, 0, 0, 1), 5353, A(10, 96, 0, 10), 53, 31, true);

	(void)state;
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	assert_int_equal(p.proto, IPPROTO_UDP);
	assert_int_equal(p.sport, 5353);
	assert_int_equal(p.dport, 53);
	assert_int_equal(p.l4len, 39);
	assert_ptr_equal(p.payload, buf + 28);
	assert_int_equal(p.payload_len, 31);
	assert_true(pkt4_csum_ok(&p));
	buf[30] ^= 0x80;
	assert_false(pkt4_csum_ok(&p));
	/* no checksum: always fine */
	n = udp_make(buf, 20, A(10, 0, 0, 1), 5353, A(10, 96, 0, 10), 53, 0, false);
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	assert_int_equal(p.payload_len, 0);
	assert_true(pkt4_csum_ok(&p));
}

static void test_parse_icmp(void **state)
{
	struct pkt4 p;
	size_t n = icmp_make(buf, 20, A(10, 0, 0, 1), A(10, 244, 1, 5), 8, 0x1234, 7, 56);

	(void)state;
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	assert_int_equal(p.proto, IPPROTO_ICMP);
	assert_int_equal(p.icmp_type, 8);
	assert_int_equal(p.icmp_code, 0);
	assert_int_equal(p.icmp_id, 0x1234);
	assert_int_equal(p.icmp_seq, 7);
	assert_int_equal(p.payload_len, 56);
	assert_true(pkt4_csum_ok(&p));
	buf[40] ^= 1;
	assert_false(pkt4_csum_ok(&p));
	/* not an echo: no id/seq */
	n = icmp_make(buf, 20, A(10, 0, 0, 1), A(10, 244, 1, 5), 3, 0x1234, 7, 28);
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	assert_int_equal(p.icmp_type, 3);
	assert_int_equal(p.icmp_id, 0);
	assert_int_equal(p.icmp_seq, 0);
}

static void test_parse_other_proto_and_frag(void **state)
{
	struct pkt4 p;
	size_t n = ip_make(buf, 20, 10, 47, A(1, 2, 3, 4), A(5, 6, 7, 8));

	(void)state;
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	assert_int_equal(p.proto, 47);
	assert_int_equal(p.l4len, 10);
	assert_true(pkt4_csum_ok(&p));
	/* a non-first TCP fragment of 4 bytes: not parsed as TCP, not an error */
	n = ip_make(buf, 20, 4, IPPROTO_TCP, A(1, 2, 3, 4), A(5, 6, 7, 8));
	p16(buf + 6, 0x0010);
	p16(buf + 10, ref_csum_field0(buf, 20, 10, 0));
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	assert_true(p.frag);
	assert_int_equal(p.sport, 0);
	assert_int_equal(p.l4len, 4);
	assert_true(pkt4_csum_ok(&p));
	pkt4_rewrite(&p, A(9, 9, 9, 9), 1, A(8, 8, 8, 8), 2, false);
	assert_int_equal(g32(buf + 12), A(9, 9, 9, 9));
	assert_true(pkt4_csum_ok(&p));
	/* first fragment (MF) */
	p16(buf + 6, 0x2000);
	p16(buf + 10, ref_csum_field0(buf, 20, 10, 0));
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	assert_true(p.frag);
}

/* Every prefix of a valid packet is rejected: its total length is past it. */
static void check_prefixes_rejected(size_t n)
{
	struct pkt4 p;

	for (size_t len = 0; len < n; len++)
		assert_int_equal(pkt4_parse(buf, len, &p), -EBADMSG);
	assert_int_equal(pkt4_parse(buf, n, &p), 0);
}

/* Truncations with the total length field made consistent: only the L4
 * checks stand between them and a parse. */
static void check_l4_truncations(size_t n, size_t min_ok, bool exact_only)
{
	static uint8_t copy[2048];
	struct pkt4 p;

	memcpy(copy, buf, n);
	for (size_t len = 20; len <= n; len++) {
		p16(copy + 2, (uint16_t)len);
		int want = len < min_ok || (exact_only && len != n) ? -EBADMSG : 0;
		assert_int_equal(pkt4_parse(copy, len, &p), want);
	}
}

static void test_parse_truncations(void **state)
{
	struct tcp_spec s = tcp_default();
	size_t n;

	(void)state;
	s.hlen = 40;
	s.plen = 100;
	n = tcp_make(buf, &s);
	check_prefixes_rejected(n);
	check_l4_truncations(n, 20 + 40, false);
	n = udp_make(buf, 20, 1, 2, 3, 4, 50, true);
	check_prefixes_rejected(n);
	check_l4_truncations(n, 28, true);
	n = icmp_make(buf, 20, 1, 2, 8, 1, 1, 20);
	check_prefixes_rejected(n);
	check_l4_truncations(n, 28, false);
}

static void test_parse_bad_ip(void **state)
{
	struct tcp_spec s = tcp_default();
	struct pkt4 p;
	size_t n;

	(void)state;
	n = tcp_make(buf, &s);
	for (uint8_t ihl = 0; ihl < 5; ihl++) {
		buf[0] = (uint8_t)(0x40 | ihl);
		assert_int_equal(pkt4_parse(buf, n, &p), -EBADMSG);
	}
	buf[0] = 0x4f; /* 60 bytes of header: past the total length of 40 */
	assert_int_equal(pkt4_parse(buf, n, &p), -EBADMSG);
	for (unsigned v = 0; v < 16; v++) {
		buf[0] = (uint8_t)(v << 4 | 5);
		assert_int_equal(pkt4_parse(buf, n, &p), v == 4 ? 0 : -EBADMSG);
	}
	buf[0] = 0x45;
	for (unsigned tot = 0; tot < 20; tot++) {
		p16(buf + 2, (uint16_t)tot);
		assert_int_equal(pkt4_parse(buf, n, &p), -EBADMSG);
	}
	p16(buf + 2, (uint16_t)(n + 1));
	assert_int_equal(pkt4_parse(buf, n, &p), -EBADMSG);
	p16(buf + 2, 0xffff);
	assert_int_equal(pkt4_parse(buf, n, &p), -EBADMSG);
	assert_int_equal(pkt4_parse(NULL, 0, &p), -EBADMSG);
}

static void test_parse_ipv6(void **state)
{
	struct pkt4 p;
	uint8_t v6[60] = {0x60, 0, 0, 0, 0, 20, 6, 64};

	(void)state;
	for (size_t len = 0; len <= sizeof(v6); len++)
		assert_int_equal(pkt4_parse(v6, len, &p), -EBADMSG);
	v6[0] = 0x65; /* looks like IHL 5 */
	assert_int_equal(pkt4_parse(v6, sizeof(v6), &p), -EBADMSG);
}

static void test_parse_bad_tcp(void **state)
{
	struct tcp_spec s = tcp_default();
	struct pkt4 p;
	size_t n;

	(void)state;
	s.plen = 8;
	n = tcp_make(buf, &s); /* l4len 28 */
	for (unsigned doff = 0; doff < 16; doff++) {
		buf[32] = (uint8_t)(doff << 4);
		int want = doff >= 5 && doff * 4 <= 28 ? 0 : -EBADMSG;
		assert_int_equal(pkt4_parse(buf, n, &p), want);
	}
}

static void test_parse_bad_udp(void **state)
{
	struct pkt4 p;
	size_t n = udp_make(buf, 20, 1, 2, 3, 4, 12, true); /* l4len 20 */

	(void)state;
	for (unsigned ulen = 0; ulen < 40; ulen++) {
		p16(buf + 24, (uint16_t)ulen);
		assert_int_equal(pkt4_parse(buf, n, &p), ulen == 20 ? 0 : -EBADMSG);
	}
	p16(buf + 24, 0xffff);
	assert_int_equal(pkt4_parse(buf, n, &p), -EBADMSG);
}

/* ---- rewrite ---- */

static uint32_t rnd_addr(void)
{
	return rnd() ^ rnd() << 16;
}

static size_t rnd_plen(void)
{
	switch (rnd() % 4) {
	case 0: return rnd() % 4;
	case 1: return rnd() % 64;
	default: return rnd() % 1500;
	}
}

static void rewrite_and_check(size_t n, bool partial)
{
	uint32_t src = rnd_addr(), dst = rnd_addr();
	uint16_t sport = (uint16_t)rnd(), dport = (uint16_t)rnd();
	struct pkt4 p, q;

	assert_int_equal(pkt4_parse(buf, n, &p), 0);
	pkt4_rewrite(&p, src, sport, dst, dport, partial);
	assert_int_equal(p.src, src);
	assert_int_equal(p.dst, dst);
	assert_int_equal(p.sport, sport);
	assert_int_equal(p.dport, dport);
	assert_int_equal(pkt4_parse(buf, n, &q), 0);
	assert_int_equal(q.src, src);
	assert_int_equal(q.dst, dst);
	assert_int_equal(q.sport, sport);
	assert_int_equal(q.dport, dport);
	if (!partial) {
		assert_csums_from_scratch(buf);
		assert_true(pkt4_csum_ok(&q));
	}
}

static void test_rewrite_tcp_random(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct tcp_spec s = {.ihl = 20 + 4 * (rnd() % 11), .hlen = 20 + 4 * (rnd() % 11),
				     .plen = rnd_plen(), .src = rnd_addr(), .dst = rnd_addr(),
				     .seq = rnd_addr(), .ack = rnd_addr(), .sport = (uint16_t)rnd(),
				     .dport = (uint16_t)rnd(), .flags = (uint8_t)rnd()};
		size_t n = tcp_make(buf, &s);
		rewrite_and_check(n, false);
		/* and back */
		struct pkt4 p;
		assert_int_equal(pkt4_parse(buf, n, &p), 0);
		pkt4_rewrite(&p, s.src, s.sport, s.dst, s.dport, false);
		assert_csums_from_scratch(buf);
	}
}

static void test_rewrite_udp_random(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		bool csum = rnd() % 4 != 0;
		size_t n = udp_make(buf, 20 + 4 * (rnd() % 11), rnd_addr(), (uint16_t)rnd(),
				    rnd_addr(), (uint16_t)rnd(), rnd_plen(), csum);
		size_t ihl = (size_t)(buf[0] & 15) * 4;
		rewrite_and_check(n, false);
		if (!csum)
			assert_int_equal(g16(buf + ihl + 6), 0);
		else
			assert_int_not_equal(g16(buf + ihl + 6), 0);
	}
}

/* A rewrite whose from-scratch UDP checksum is 0 must write 0xffff. */
static void test_rewrite_udp_zero_result(void **state)
{
	uint32_t src = A(10, 96, 0, 10), dst = A(10, 0, 0, 1);
	uint16_t sport = 53, dport;
	size_t n;
	struct pkt4 p;
	uint64_t s;

	(void)state;
	for (int i = 0; i < 50; i++) {
		n = udp_make(buf, 20, A(10, 0, 0, 2), 1111, A(10, 0, 0, 3), 2222, rnd() % 100, true);
		/* sum of the rewritten datagram with dport 0 and checksum 0 */
		s = ref_sum(buf + 20, n - 20, ref_pseudo(src, dst, IPPROTO_UDP, n - 20));
		s = s - g16(buf + 20) - g16(buf + 22) - g16(buf + 26) + sport;
		dport = (uint16_t)(0xffff - ref_fold(s)); /* makes the sum 0xffff */
		if (dport == 0)
			continue;
		assert_int_equal(pkt4_parse(buf, n, &p), 0);
		pkt4_rewrite(&p, src, sport, dst, dport, false);
		assert_int_equal(g16(buf + 26), 0xffff);
		assert_csums_from_scratch(buf);
		assert_true(pkt4_csum_ok(&p));
	}
}

/* Puts the folded pseudo-header sum, not complemented, in the L4 checksum
 * field, as the kernel leaves a CHECKSUM_PARTIAL packet. */
static void make_partial(size_t n)
{
	size_t ihl = (size_t)(buf[0] & 15) * 4, l4 = n - ihl, off = buf[9] == IPPROTO_TCP ? 16 : 6;

	p16(buf + ihl + off, ref_fold(ref_pseudo(g32(buf + 12), g32(buf + 16), buf[9], l4)));
}

/* What the kernel (skb_checksum_help) or the NIC does with it: sum from
 * csum_start to the end, the field included, and store the complement. */
static void complete_partial(size_t n)
{
	size_t ihl = (size_t)(buf[0] & 15) * 4, off = buf[9] == IPPROTO_TCP ? 16 : 6;
	uint16_t c = (uint16_t)~ref_fold(ref_sum(buf + ihl, n - ihl, 0));

	if (buf[9] == IPPROTO_UDP && c == 0)
		c = 0xffff; /* CSUM_MANGLED_0 */
	p16(buf + ihl + off, c);
}

static void test_rewrite_csum_partial(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		size_t n;
		if (i % 2) {
			struct tcp_spec s = {.ihl = 20, .hlen = 20 + 4 * (rnd() % 11),
					     .plen = rnd_plen(), .src = rnd_addr(),
					     .dst = rnd_addr(), .seq = rnd(), .ack = rnd(),
					     .sport = (uint16_t)rnd(), .dport = (uint16_t)rnd(),
					     .flags = PKT_TCP_ACK};
			n = tcp_make(buf, &s);
		} else {
			n = udp_make(buf, 20, rnd_addr(), (uint16_t)rnd(), rnd_addr(),
				     (uint16_t)rnd(), rnd_plen(), true);
		}
		make_partial(n);
		rewrite_and_check(n, true);
		assert_int_equal(g16(buf + 10), ref_csum_field0(buf, 20, 10, 0));
		complete_partial(n);
		assert_csums_from_scratch(buf);
	}
}

/* pkt4_csum_complete does what complete_partial (the kernel) does. */
static void test_csum_complete(void **state)
{
	(void)state;
	for (int i = 0; i < 1000; i++) {
		struct pkt4 p;
		size_t n;
		if (i % 2) {
			struct tcp_spec s = {.ihl = 20, .hlen = 20 + 4 * (rnd() % 11),
					     .plen = rnd_plen(), .src = rnd_addr(),
					     .dst = rnd_addr(), .seq = rnd(), .ack = rnd(),
					     .sport = (uint16_t)rnd(), .dport = (uint16_t)rnd(),
					     .flags = PKT_TCP_SYN};
			n = tcp_make(buf, &s);
		} else {
			n = udp_make(buf, 20, rnd_addr(), (uint16_t)rnd(), rnd_addr(),
				     (uint16_t)rnd(), rnd_plen(), true);
		}
		make_partial(n);
		assert_int_equal(pkt4_parse(buf, n, &p), 0);
		pkt4_csum_complete(&p);
		assert_csums_from_scratch(buf);
		assert_true(pkt4_csum_ok(&p));
	}
}

/* ---- builders ---- */

static void parse_built(size_t n, struct pkt4 *p, uint8_t proto)
{
	assert_true(n > 0);
	assert_int_equal(pkt4_parse(out, n, p), 0);
	assert_int_equal(p->len, n);
	assert_int_equal(p->proto, proto);
	assert_int_equal(p->ttl, 64);
	assert_true(pkt4_csum_ok(p));
	assert_csums_from_scratch(out);
}

static void rst_case(uint8_t flags, size_t plen, uint32_t seq, uint32_t ack, uint8_t want_flags,
		     uint32_t want_seq, uint32_t want_ack)
{
	struct tcp_spec s = tcp_default();
	struct pkt4 in, r;
	size_t n;

	s.flags = flags;
	s.plen = plen;
	s.seq = seq;
	s.ack = ack;
	n = tcp_make(buf, &s);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	n = pkt4_build_rst(out, sizeof(out), &in);
	assert_int_equal(n, 40);
	parse_built(n, &r, IPPROTO_TCP);
	assert_int_equal(r.src, s.dst);
	assert_int_equal(r.dst, s.src);
	assert_int_equal(r.sport, s.dport);
	assert_int_equal(r.dport, s.sport);
	assert_int_equal(r.tcp_flags, want_flags);
	assert_int_equal(r.seq, want_seq);
	assert_int_equal(r.ack, want_ack);
	assert_int_equal(r.payload_len, 0);
	assert_int_equal(g16(out + 6) & 0x4000, 0x4000); /* DF */
}

static void test_build_rst(void **state)
{
	const uint8_t RA = PKT_TCP_RST | PKT_TCP_ACK;

	(void)state;
	rst_case(PKT_TCP_SYN, 0, 1000, 0, RA, 0, 1001);
	rst_case(PKT_TCP_SYN, 10, 1000, 0, RA, 0, 1011);         /* SYN with data */
	rst_case(PKT_TCP_SYN, 0, 0xffffffffu, 0, RA, 0, 0);      /* wraps */
	rst_case(PKT_TCP_SYN | PKT_TCP_FIN, 3, 5, 0, RA, 0, 10); /* SYN and FIN count */
	rst_case(PKT_TCP_FIN, 0, 77, 0, RA, 0, 78);
	rst_case(0, 100, 77, 0, RA, 0, 177);
	rst_case(PKT_TCP_ACK, 0, 1000, 5555, PKT_TCP_RST, 5555, 0);
	rst_case(PKT_TCP_ACK | PKT_TCP_PSH, 200, 1000, 5555, PKT_TCP_RST, 5555, 0);
	rst_case(PKT_TCP_ACK | PKT_TCP_FIN, 0, 1000, 6666, PKT_TCP_RST, 6666, 0);
	rst_case(PKT_TCP_SYN | PKT_TCP_ACK, 0, 1000, 7777, PKT_TCP_RST, 7777, 0);
}

static void test_build_rst_refused(void **state)
{
	struct tcp_spec s = tcp_default();
	struct pkt4 in;
	size_t n;

	(void)state;
	n = tcp_make(buf, &s);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_rst(out, 39, &in), 0);
	assert_int_equal(pkt4_build_rst(out, 0, &in), 0);
	s.flags = PKT_TCP_RST; /* never a RST for a RST */
	n = tcp_make(buf, &s);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_rst(out, sizeof(out), &in), 0);
	s.flags = PKT_TCP_RST | PKT_TCP_ACK;
	n = tcp_make(buf, &s);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_rst(out, sizeof(out), &in), 0);
	n = udp_make(buf, 20, 1, 2, 3, 4, 0, true);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_rst(out, sizeof(out), &in), 0);
}

static void unreach_case(size_t n, size_t want_quote, uint8_t code)
{
	struct pkt4 in, r;
	uint32_t from = A(10, 96, 0, 10);
	size_t m;

	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	m = pkt4_build_icmp_unreach(out, sizeof(out), &in, code, from);
	assert_int_equal(m, 28 + want_quote);
	parse_built(m, &r, IPPROTO_ICMP);
	assert_int_equal(r.src, from);
	assert_int_equal(r.dst, in.src);
	assert_int_equal(r.icmp_type, 3);
	assert_int_equal(r.icmp_code, code);
	assert_int_equal(g32(out + 24), 0); /* unused */
	assert_int_equal(r.payload_len, want_quote);
	assert_memory_equal(r.payload, buf, want_quote);
	/* too small by one byte */
	assert_int_equal(pkt4_build_icmp_unreach(out, m - 1, &in, code, from), 0);
}

static void test_build_icmp_unreach(void **state)
{
	struct tcp_spec s = tcp_default();
	struct pkt4 in;
	size_t n;

	(void)state;
	n = tcp_make(buf, &s);
	unreach_case(n, 28, 1); /* host unreachable */
	s.ihl = 32;
	s.plen = 100;
	n = tcp_make(buf, &s);
	unreach_case(n, 40, 3);
	n = udp_make(buf, 20, A(10, 0, 0, 1), 1, A(10, 0, 0, 2), 2, 0, true);
	unreach_case(n, 28, 3); /* port unreachable */
	n = icmp_make(buf, 20, A(10, 0, 0, 1), A(10, 0, 0, 2), 8, 1, 1, 32);
	unreach_case(n, 28, 0);
	n = ip_make(buf, 20, 3, 47, A(10, 0, 0, 1), A(10, 0, 0, 2));
	unreach_case(n, 23, 2); /* short payload: quote what there is */

	/* refused: code out of range, ICMP errors, non-first fragments, multicast */
	n = tcp_make(buf, &s);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_icmp_unreach(out, sizeof(out), &in, 16, 1), 0);
	n = icmp_make(buf, 20, A(10, 0, 0, 1), A(10, 0, 0, 2), 3, 0, 0, 28);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_icmp_unreach(out, sizeof(out), &in, 1, 1), 0);
	n = ip_make(buf, 20, 8, IPPROTO_UDP, A(10, 0, 0, 1), A(10, 0, 0, 2));
	p16(buf + 6, 0x0001);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_icmp_unreach(out, sizeof(out), &in, 1, 1), 0);
	n = udp_make(buf, 20, A(10, 0, 0, 1), 1, A(224, 0, 0, 251), 5353, 4, true);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_icmp_unreach(out, sizeof(out), &in, 3, 1), 0);
	n = udp_make(buf, 20, 0, 68, 0xffffffffu, 67, 4, true);
	assert_int_equal(pkt4_parse(buf, n, &in), 0);
	assert_int_equal(pkt4_build_icmp_unreach(out, sizeof(out), &in, 3, 1), 0);
}

static void udp_case(const uint8_t *data, size_t len, uint8_t *dst_buf, size_t cap)
{
	struct pkt4 r;
	size_t n = pkt4_build_udp(dst_buf, cap, A(10, 96, 0, 10), 53, A(10, 0, 0, 1), 40000, data,
				  len);

	assert_int_equal(n, 28 + len);
	assert_ptr_equal(dst_buf, out);
	parse_built(n, &r, IPPROTO_UDP);
	assert_int_equal(r.src, A(10, 96, 0, 10));
	assert_int_equal(r.dst, A(10, 0, 0, 1));
	assert_int_equal(r.sport, 53);
	assert_int_equal(r.dport, 40000);
	assert_int_equal(r.payload_len, len);
	assert_int_not_equal(g16(out + 26), 0);
}

static void test_build_udp(void **state)
{
	static uint8_t data[65536];
	struct pkt4 r;

	(void)state;
	fill(data, sizeof(data));
	for (size_t len = 0; len < 300; len++) {
		udp_case(data, len, out, sizeof(out));
		assert_memory_equal(out + 28, data, len);
	}
	udp_case(data, 1400, out, 1428);
	udp_case(data, 65507, out, sizeof(out));
	assert_memory_equal(out + 28, data, 65507);
	assert_int_equal(pkt4_build_udp(out, sizeof(out), 1, 1, 2, 2, data, 65508), 0);
	assert_int_equal(pkt4_build_udp(out, 1427, 1, 1, 2, 2, data, 1400), 0);
	assert_int_equal(pkt4_build_udp(out, 10, 1, 1, 2, 2, NULL, 0), 0);
	assert_int_equal(pkt4_build_udp(out, sizeof(out), 1, 1, 2, 2, NULL, 5), 0);
	/* in place */
	memcpy(out + 28, data, 500);
	udp_case(out + 28, 500, out, sizeof(out));
	assert_memory_equal(out + 28, data, 500);
	/* two data bytes chosen so that the checksum computes to 0: sent as 0xffff */
	uint8_t two[2] = {0, 0};
	uint64_t s = ref_pseudo(A(10, 96, 0, 10), A(10, 0, 0, 1), IPPROTO_UDP, 10);
	s += 53 + 40000 + 10;
	p16(two, (uint16_t)(0xffff - ref_fold(s)));
	assert_int_equal(pkt4_build_udp(out, sizeof(out), A(10, 96, 0, 10), 53, A(10, 0, 0, 1),
					40000, two, 2), 30);
	assert_int_equal(g16(out + 26), 0xffff);
	assert_int_equal(pkt4_parse(out, 30, &r), 0);
	assert_true(pkt4_csum_ok(&r));
}

static void test_build_echo_reply(void **state)
{
	static uint8_t data[2000];
	struct pkt4 r;

	(void)state;
	fill(data, sizeof(data));
	for (size_t len = 0; len < 2000; len += 1 + len / 3) {
		size_t n = pkt4_build_icmp_echo_reply(out, sizeof(out), A(10, 244, 1, 5),
						      A(10, 0, 0, 1), 0xbeef, (uint16_t)len,
						      data, len);
		assert_int_equal(n, 28 + len);
		parse_built(n, &r, IPPROTO_ICMP);
		assert_int_equal(r.icmp_type, 0);
		assert_int_equal(r.icmp_code, 0);
		assert_int_equal(r.icmp_id, 0xbeef);
		assert_int_equal(r.icmp_seq, len);
		assert_int_equal(r.src, A(10, 244, 1, 5));
		assert_int_equal(r.dst, A(10, 0, 0, 1));
		assert_memory_equal(r.payload, data, len);
		assert_int_equal(pkt4_build_icmp_echo_reply(out, n - 1, 1, 2, 3, 4, data, len), 0);
	}
	assert_int_equal(pkt4_build_icmp_echo_reply(out, sizeof(out), 1, 2, 3, 4, data, 65508), 0);
}

/* ---- checksum helpers ---- */

/* ---- answers to echo requests, as the manager's ICMP sockets read them ---- */

/* An ICMP header at p: type, and the echo identifier and sequence. */
static size_t icmp_hdr(uint8_t *p, uint8_t type, uint16_t ident, uint16_t seq)
{
	memset(p, 0, 8);
	p[0] = type;
	p16(p + 4, ident);
	p16(p + 6, seq);
	return 8;
}

/* An IPv4 header of ihl bytes at p for proto. */
static size_t ip_hdr(uint8_t *p, size_t ihl, uint8_t proto)
{
	memset(p, 0, ihl);
	p[0] = (uint8_t)(0x40 | ihl / 4);
	p[9] = proto;
	return ihl;
}

static void test_icmp_answer(void **state)
{
	struct pkt4_icmp_answer a;
	size_t n;

	(void)state;
	/* an echo reply, as a ping socket reads it, then a raw one (IP options too) */
	n = icmp_hdr(buf, 0, 0x1234, 7);
	memcpy(buf + n, "abc", 3);
	assert_int_equal(pkt4_icmp_answer_parse(buf, n + 3, false, &a), 0);
	assert_false(a.error);
	assert_int_equal(a.ident, 0x1234);
	assert_int_equal(a.seq, 7);
	assert_ptr_equal(a.data, buf + 8);
	assert_int_equal(a.len, 3);
	n = ip_hdr(buf, 24, IPPROTO_ICMP);
	n += icmp_hdr(buf + n, 0, 0x1234, 8);
	assert_int_equal(pkt4_icmp_answer_parse(buf, n, true, &a), 0);
	assert_int_equal(a.seq, 8);
	assert_int_equal(a.len, 0);
	buf[0] = 0x44; /* IHL 4: shorter than a header */
	assert_int_equal(pkt4_icmp_answer_parse(buf, n, true, &a), -EBADMSG);
	/* errors quoting our echo request: unreachable, time exceeded */
	for (uint8_t type = 3; type <= 11; type += 8) {
		n = ip_hdr(buf, 20, IPPROTO_ICMP);
		n += icmp_hdr(buf + n, type, 0, 0);
		n += ip_hdr(buf + n, 20, IPPROTO_ICMP);
		n += icmp_hdr(buf + n, 8, 0x4321, 9);
		assert_int_equal(pkt4_icmp_answer_parse(buf, n, true, &a), 0);
		assert_true(a.error);
		assert_int_equal(a.ident, 0x4321);
		assert_int_equal(a.seq, 9);
		for (size_t k = 0; k < n; k++)
			assert_int_equal(pkt4_icmp_answer_parse(buf, k, true, &a), -EBADMSG);
		assert_int_equal(pkt4_icmp_answer_parse(buf + 20, n - 20, false, &a), 0);
	}
	/* ... not quoting an echo request, or another type of message */
	n = icmp_hdr(buf, 3, 0, 0);
	n += ip_hdr(buf + n, 20, IPPROTO_UDP);
	n += icmp_hdr(buf + n, 8, 1, 1);
	assert_int_equal(pkt4_icmp_answer_parse(buf, n, false, &a), -EBADMSG);
	buf[8 + 9] = IPPROTO_ICMP;
	buf[28] = 0; /* it quotes a reply */
	assert_int_equal(pkt4_icmp_answer_parse(buf, n, false, &a), -EBADMSG);
	buf[28] = 8;
	assert_int_equal(pkt4_icmp_answer_parse(buf, n, false, &a), 0);
	for (unsigned type = 1; type < 256; type++)
		if (type != 3 && type != 11) {
			buf[0] = (uint8_t)type;
			assert_int_equal(pkt4_icmp_answer_parse(buf, n, false, &a), -EBADMSG);
		}
	for (size_t k = 0; k < 8; k++)
		assert_int_equal(pkt4_icmp_answer_parse(buf, k, false, &a), -EBADMSG);
}

static void test_csum_partial_vs_reference(void **state)
{
	static uint8_t data[4096 + 8];

	(void)state;
	fill(data, sizeof(data));
	for (int i = 0; i < 2000; i++) {
		size_t off = rnd() % 8, len = rnd() % 4096;
		uint32_t init = rnd() % 3 ? 0 : rnd();
		uint16_t want = (uint16_t)~ref_fold(ref_sum(data + off, len, init));
		assert_int_equal(csum_fold(csum_partial(data + off, len, init)), want);
	}
	assert_int_equal(csum_fold(csum_partial(data, 0, 0)), 0xffff);
	assert_int_equal(csum_fold(0xffffffffu), 0);
	/* chained over even-sized pieces */
	uint32_t s = csum_partial(data, 100, 0);
	s = csum_partial(data + 100, 333, s);
	assert_int_equal(csum_fold(s), (uint16_t)~ref_fold(ref_sum(data, 433, 0)));
}

static void test_csum_update_vs_recompute(void **state)
{
	static uint8_t data[128];

	(void)state;
	for (int i = 0; i < 20000; i++) {
		size_t len = 8 + 2 * (rnd() % 56), off = 2 * (rnd() % (len / 2 - 1));
		fill(data, len);
		p16(data, 0);
		uint16_t check = ref_csum_field0(data, len, 0, 0);
		if (i % 2) {
			uint16_t old = g16(data + off), nw = (uint16_t)(i % 7 ? rnd() : rnd() % 2 ? 0 : 0xffff);
			if (off == 0)
				continue;
			p16(data + off, nw);
			assert_int_equal(csum_update16(check, old, nw), ref_csum_field0(data, len, 0, 0));
		} else {
			if (off == 0 || off + 4 > len)
				continue;
			uint32_t old = g32(data + off), nw = rnd_addr();
			p32(data + off, nw);
			assert_int_equal(csum_update32(check, old, nw), ref_csum_field0(data, len, 0, 0));
		}
	}
}

/* RFC 1624 §3: eqn. 3 gives 0x0000 where eqn. 2 gave 0xffff. */
static void test_csum_update_rfc1624_corner(void **state)
{
	uint8_t hdr[6];

	(void)state;
	assert_int_equal(csum_update16(0xdd2f, 0x5555, 0x3285), 0x0000);
	/* the same by recomputation: other octets sum to 0xcd7a */
	p16(hdr, 0xcd7a);
	p16(hdr + 2, 0x5555);
	p16(hdr + 4, 0);
	assert_int_equal(csum_fold(csum_partial(hdr, 6, 0)), 0xdd2f);
	p16(hdr + 2, 0x3285);
	assert_int_equal(csum_fold(csum_partial(hdr, 6, 0)), 0x0000);
	/* no change leaves a from-scratch checksum as it was, 0 included */
	assert_int_equal(csum_update16(0x0000, 0x1234, 0x1234), 0x0000);
	assert_int_equal(csum_update16(0x1234, 0x0000, 0x0000), 0x1234);
	assert_int_equal(csum_update16(0x1234, 0xffff, 0x0000), 0x1234);
	assert_int_equal(csum_update32(0xabcd, 0xffff0000u, 0x0000ffffu), 0xabcd);
	assert_int_equal(csum_update32(0xabcd, 0x12345678u, 0x56781234u), 0xabcd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_tcp),
		cmocka_unit_test(test_parse_udp),
		cmocka_unit_test(test_parse_icmp),
		cmocka_unit_test(test_parse_other_proto_and_frag),
		cmocka_unit_test(test_parse_truncations),
		cmocka_unit_test(test_parse_bad_ip),
		cmocka_unit_test(test_parse_ipv6),
		cmocka_unit_test(test_parse_bad_tcp),
		cmocka_unit_test(test_parse_bad_udp),
		cmocka_unit_test(test_rewrite_tcp_random),
		cmocka_unit_test(test_rewrite_udp_random),
		cmocka_unit_test(test_rewrite_udp_zero_result),
		cmocka_unit_test(test_rewrite_csum_partial),
		cmocka_unit_test(test_csum_complete),
		cmocka_unit_test(test_build_rst),
		cmocka_unit_test(test_build_rst_refused),
		cmocka_unit_test(test_build_icmp_unreach),
		cmocka_unit_test(test_build_udp),
		cmocka_unit_test(test_build_echo_reply),
		cmocka_unit_test(test_icmp_answer),
		cmocka_unit_test(test_csum_partial_vs_reference),
		cmocka_unit_test(test_csum_update_vs_recompute),
		cmocka_unit_test(test_csum_update_rfc1624_corner),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
