/* IPv4 packets as read from and written to the VIF.  Pure functions:
 * parse a buffer in place, rewrite addresses and ports with incremental
 * checksum updates (RFC 1624), and build the few packets the daemon
 * answers with (RST, ICMP errors, UDP datagrams, ICMP echo replies).
 * Addresses and ports in the structs are host byte order. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_PSH 0x08
#define PKT_TCP_ACK 0x10

struct pkt4 {
	uint8_t *ip;      /* start of the IPv4 header (== the buffer) */
	size_t len;       /* IPv4 total length (buffer bytes past it are ignored) */
	size_t ihl;       /* header length in bytes */
	uint8_t proto;    /* IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP, other */
	uint8_t ttl;
	bool frag;        /* MF set or fragment offset != 0: l4 fields not parsed */
	uint32_t src, dst;
	uint8_t *l4;      /* transport header */
	size_t l4len;     /* bytes from l4 to the end of the packet */
	/* TCP and UDP */
	uint16_t sport, dport;
	/* TCP */
	uint8_t tcp_flags;
	uint32_t seq, ack;
	size_t tcp_hlen;  /* TCP header length incl. options */
	/* ICMP */
	uint8_t icmp_type, icmp_code;
	uint16_t icmp_id, icmp_seq; /* echo request/reply only */
	/* payload: data after the TCP/UDP/ICMP(echo) header */
	uint8_t *payload;
	size_t payload_len;
};

/* Parses buf[0..len).  0, or -EBADMSG for: not IPv4, IHL < 5, total length
 * beyond len or below the header, truncated TCP (data offset < 5 or past
 * the end), truncated UDP (length field inconsistent), truncated ICMP. */
int pkt4_parse(uint8_t *buf, size_t len, struct pkt4 *p);

/* An answer to an echo request as an ICMP socket reads it: an echo reply,
 * or an error (destination unreachable, time exceeded) quoting the request
 * (its IPv4 header and first 8 bytes, RFC 792). */
struct pkt4_icmp_answer {
	bool error;
	uint16_t ident, seq; /* of the reply, or of the request quoted */
	const uint8_t *data; /* a reply's data */
	size_t len;
};

/* Parses buf[0..len), an ICMP message, after an IPv4 header when with_ip
 * (as a raw socket reads it).  0, or -EBADMSG for anything but the two. */
int pkt4_icmp_answer_parse(const uint8_t *buf, size_t len, bool with_ip, struct pkt4_icmp_answer *a);

/* Rewrites source and destination address and port (TCP/UDP) in place,
 * updating the IP header checksum and the TCP/UDP checksum incrementally.
 * A UDP checksum of zero (none) stays zero.  When csum_partial is true the
 * L4 checksum field holds only the pseudo-header sum (a packet whose
 * checksum the kernel completes later, virtio NEEDS_CSUM): then only the
 * address change is folded in, ports are not.  Updates the struct too.
 * Fragments: only the IP header is rewritten. */
void pkt4_rewrite(struct pkt4 *p, uint32_t src, uint16_t sport, uint32_t dst, uint16_t dport,
		  bool csum_partial);

/* Completes a TCP/UDP checksum left partial (the field holds the
 * pseudo-header sum, virtio NEEDS_CSUM), as the kernel would. */
void pkt4_csum_complete(struct pkt4 *p);

/* True if the IPv4 header checksum and the TCP/UDP/ICMP checksum verify. */
bool pkt4_csum_ok(const struct pkt4 *p);

/* Builders: write a complete IPv4 packet to out; return its length, or 0
 * when cap is too small or an argument is out of range. */

/* RST answering `in` (a TCP segment from A to B): from B to A.  If `in`
 * has ACK, seq = in.ack and no ACK flag; else ACK flag with
 * ack = in.seq + payload_len (+1 for SYN, +1 for FIN), seq 0 (RFC 793).
 * 0 for a RST, a fragment or a non-TCP `in`. */
size_t pkt4_build_rst(uint8_t *out, size_t cap, const struct pkt4 *in);
/* ICMP destination unreachable (type 3, code) from `from` to in->src,
 * quoting in's IP header and first 8 bytes of its payload (RFC 792).
 * 0 for code > 15 and where RFC 1122 3.2.2 forbids an error: about an ICMP
 * error, a non-first fragment, or to/from broadcast, multicast or 0.0.0.0. */
size_t pkt4_build_icmp_unreach(uint8_t *out, size_t cap, const struct pkt4 *in, uint8_t code,
			       uint32_t from);
/* UDP and echo reply: data may overlap out (built in place at out + 28). */
size_t pkt4_build_udp(uint8_t *out, size_t cap, uint32_t src, uint16_t sport, uint32_t dst,
		      uint16_t dport, const uint8_t *data, size_t len);
size_t pkt4_build_icmp_echo_reply(uint8_t *out, size_t cap, uint32_t src, uint32_t dst,
				  uint16_t ident, uint16_t seq, const uint8_t *data, size_t len);

/* Internet checksum helpers (RFC 1071 / RFC 1624).  Values are host order:
 * data is summed as big-endian 16-bit words (from an even offset of the
 * checksummed region), and a result is stored with a big-endian write. */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum); /* unfolded 32-bit sum */
uint16_t csum_fold(uint32_t sum);                                  /* ~fold(sum) */
/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m') for a 16-bit field change. */
uint16_t csum_update16(uint16_t check, uint16_t old, uint16_t new_);
uint16_t csum_update32(uint16_t check, uint32_t old, uint32_t new_);
