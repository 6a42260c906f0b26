/* libFuzzer target for src/net/packet.c.
 * Input: 13 bytes of parameters (new src[4] sport[2] dst[4] dport[2], mode[1])
 * then the packet.  Mode bit 0: csum_partial; bit 1: make the checksums
 * valid first (random bytes rarely are); bit 7: small output buffers.
 * The same bytes as an ICMP answer to one of the manager's echo requests
 * (with and without the IP header): a reply's data is the rest of the
 * input, an error quotes a whole header and echo request.
 * If it parses: its fields stay inside it; a rewrite keeps valid checksums
 * valid, equal bit for bit to a from-scratch computation when they were
 * before (and, in csum_partial mode, completing the checksum as the kernel
 * would gives exactly that); the builders answer within their capacity
 * with packets that parse and verify. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>

#include "net/packet.h"
#include "fuzz.h"

#define PARAMS 13


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

/* Byte-wise reference sum, independent of csum.c; the word at skip (even;
 * SIZE_MAX for none) counts as 0. */
static uint16_t ref_fold_skip(const uint8_t *p, size_t n, uint64_t s, size_t skip)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += i == skip ? 0 : (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static uint16_t ref_fold(const uint8_t *p, size_t n, uint64_t s)
{
	return ref_fold_skip(p, n, s, SIZE_MAX);
}

static uint64_t pseudo(const struct pkt4 *p)
{
	return (p->src >> 16) + (p->src & 0xffff) + (p->dst >> 16) + (p->dst & 0xffff) + p->proto +
	       p->l4len;
}

static bool has_ports(const struct pkt4 *p)
{
	return !p->frag && (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP);
}

static void check_fields(const struct pkt4 *p, const uint8_t *buf, size_t len)
{
	CHECK(p->ip == buf && p->len <= len && p->ihl >= 20 && p->ihl <= p->len);
	CHECK(p->l4 == buf + p->ihl && p->l4 + p->l4len == buf + p->len);
	if (p->payload)
		CHECK(p->payload >= p->l4 && p->payload + p->payload_len == buf + p->len);
	if (!p->frag && p->proto == IPPROTO_TCP)
		CHECK(p->tcp_hlen >= 20 && p->tcp_hlen <= p->l4len);
}

#define NO_CSUM SIZE_MAX

/* Offset of the L4 checksum in use, or NO_CSUM. */
static size_t l4_csum_off(const struct pkt4 *p)
{
	if (p->frag)
		return NO_CSUM;
	switch (p->proto) {
	case IPPROTO_TCP: return 16;
	case IPPROTO_UDP: return g16(p->l4 + 6) ? 6 : NO_CSUM; /* 0: none */
	case IPPROTO_ICMP: return 2;
	default: return NO_CSUM;
	}
}

/* From-scratch checksums: IP header, then L4 (UDP: 0 sent as 0xffff). */
static uint16_t ref_ip(const struct pkt4 *p)
{
	return (uint16_t)~ref_fold_skip(p->ip, p->ihl, 0, 10);
}

static uint16_t ref_l4(const struct pkt4 *p, size_t off)
{
	uint64_t init = p->proto == IPPROTO_ICMP ? 0 : pseudo(p);
	uint16_t c = (uint16_t)~ref_fold_skip(p->l4, p->l4len, init, off);

	return p->proto == IPPROTO_UDP && c == 0 ? 0xffff : c;
}

/* True if every checksum is what a from-scratch computation gives. */
static bool csums_canonical(const struct pkt4 *p)
{
	size_t off = l4_csum_off(p);

	if (g16(p->ip + 10) != ref_ip(p))
		return false;
	return off == NO_CSUM || g16(p->l4 + off) == ref_l4(p, off);
}

static void csums_repair(struct pkt4 *p)
{
	size_t off = l4_csum_off(p);

	p16(p->ip + 10, ref_ip(p));
	if (off != NO_CSUM)
		p16(p->l4 + off, ref_l4(p, off));
}

/* The field as the kernel leaves a CHECKSUM_PARTIAL packet; IP checksum valid. */
static size_t make_partial(struct pkt4 *p)
{
	size_t off = p->proto == IPPROTO_TCP ? 16 : 6;

	p16(p->ip + 10, 0);
	p16(p->ip + 10, (uint16_t)~ref_fold(p->ip, p->ihl, 0));
	p16(p->l4 + off, ref_fold(NULL, 0, pseudo(p)));
	return off;
}

static void complete_partial(struct pkt4 *p, size_t off)
{
	uint16_t c = (uint16_t)~ref_fold(p->l4, p->l4len, 0);

	if (p->proto == IPPROTO_UDP && c == 0)
		c = 0xffff;
	p16(p->l4 + off, c);
}

static void check_rewrite(struct pkt4 *p, const uint8_t *prm, size_t len)
{
	uint32_t src = g32(prm), dst = g32(prm + 6);
	uint16_t sport = g16(prm + 4), dport = g16(prm + 10);
	bool partial = (prm[12] & 1) && has_ports(p), ok, canon, udp_none;
	size_t off = 0;
	struct pkt4 q;

	if (prm[12] & 2)
		csums_repair(p);
	if (partial)
		off = make_partial(p);
	ok = pkt4_csum_ok(p);
	canon = ok && csums_canonical(p);
	udp_none = has_ports(p) && p->proto == IPPROTO_UDP && g16(p->l4 + 6) == 0;
	pkt4_rewrite(p, src, sport, dst, dport, partial);
	if (partial)
		complete_partial(p, off);
	CHECK(pkt4_parse(p->ip, len, &q) == 0);
	CHECK(q.src == src && q.dst == dst && q.len == p->len && q.proto == p->proto);
	if (has_ports(p))
		CHECK(q.sport == sport && q.dport == dport && p->sport == sport);
	CHECK(!(partial || ok) || pkt4_csum_ok(&q));
	CHECK(!(partial || canon) || csums_canonical(&q));
	if (has_ports(p) && p->proto == IPPROTO_UDP) /* 0 stays "none", and only 0 */
		CHECK(udp_none == (g16(q.l4 + 6) == 0));
	*p = q;
}

static void check_built(uint8_t *out, size_t n, size_t cap)
{
	struct pkt4 r;

	if (n == 0)
		return;
	CHECK(n <= cap);
	CHECK(pkt4_parse(out, n, &r) == 0 && r.len == n);
	CHECK(pkt4_csum_ok(&r));
}

/* Each builder into a buffer of exactly cap bytes, so ASan sees overruns. */
static void run_builders(const struct pkt4 *p, const uint8_t *prm)
{
	size_t cap = (size_t)(prm[12] >> 1) * 8 % 160 + (prm[12] & 0x80 ? 0 : 70000);
	uint8_t *out = malloc(cap ? cap : 1);
	size_t n;

	n = pkt4_build_rst(out, cap, p);
	check_built(out, n, cap);
	if (n) {
		CHECK(n == 40);
		CHECK(out[33] & PKT_TCP_RST);
	}
	n = pkt4_build_icmp_unreach(out, cap, p, prm[0] & 15, g32(prm + 6));
	check_built(out, n, cap);
	if (n)
		CHECK(n <= 28 + 60 + 8 && memcmp(out + 28, p->ip, p->ihl) == 0);
	n = pkt4_build_udp(out, cap, p->dst, p->dport, p->src, p->sport, p->payload,
			   p->payload_len);
	check_built(out, n, cap);
	n = pkt4_build_icmp_echo_reply(out, cap, p->dst, p->src, p->icmp_id, p->icmp_seq,
				       p->payload, p->payload_len);
	check_built(out, n, cap);
	free(out);
}

static void check_icmp_answer(const uint8_t *buf, size_t len)
{
	struct pkt4_icmp_answer a;

	for (int ip = 0; ip < 2; ip++) {
		if (pkt4_icmp_answer_parse(buf, len, ip, &a) < 0)
			continue;
		if (a.error)
			CHECK(!a.data && !a.len && len >= (ip ? 20u : 0u) + 8 + 20 + 8);
		else
			CHECK(a.data && a.data + a.len == buf + len && len >= (ip ? 20u : 0u) + 8);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pkt4 p;
	size_t len;
	uint8_t *buf;

	if (size < PARAMS)
		return 0;
	len = size - PARAMS;
	buf = malloc(len ? len : 1);
	if (len)
		memcpy(buf, data + PARAMS, len);
	check_icmp_answer(buf, len);
	if (pkt4_parse(buf, len, &p) == 0) {
		check_fields(&p, buf, len);
		pkt4_csum_ok(&p);
		run_builders(&p, data);
		check_rewrite(&p, data, len);
		check_fields(&p, buf, len);
		run_builders(&p, data);
	}
	free(buf);
	return 0;
}
