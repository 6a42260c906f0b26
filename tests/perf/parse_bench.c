/* What pkt4_parse costs per packet (`make bench-parse`): parses a few kinds
 * of packet, as the VIF hands them over, ROUNDS times each.  Meant for
 *
 *   valgrind --tool=callgrind --toggle-collect=pkt4_parse build/perf/parse_bench
 *
 * whose instruction count (Ir), divided by the parses printed, is the cost
 * of one parse; a plain run prints nanoseconds per parse, which is noisier.
 * An argument 0..5 parses only that kind. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/packet.h"

#define ROUNDS 100000

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* An IPv4 header (no options unless ihl > 20) for proto, l4 bytes after it. */
static size_t ip4(uint8_t *b, size_t ihl, uint8_t proto, size_t l4len, uint16_t frag)
{
	memset(b, 0, ihl);
	b[0] = (uint8_t)(0x40 | ihl / 4);
	put16(b + 2, (uint16_t)(ihl + l4len));
	put16(b + 6, frag);
	b[8] = 64;
	b[9] = proto;
	memcpy(b + 12, "\x0a\x00\x00\x02\x0a\x2b\x00\x0a", 8);
	return ihl + l4len;
}

static size_t tcp(uint8_t *b, uint8_t flags, size_t hlen, size_t data)
{
	uint8_t *t = b + 20;

	memset(t, 0, hlen + data);
	put16(t, 40000);
	put16(t + 2, 443);
	memcpy(t + 4, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	t[12] = (uint8_t)(hlen / 4 << 4);
	t[13] = flags;
	return ip4(b, 20, 6, hlen + data, 0x4000);
}

static size_t udp(uint8_t *b, size_t ihl, size_t data)
{
	uint8_t *u = b + ihl;

	memset(u, 0, 8 + data);
	put16(u, 53000);
	put16(u + 2, 53);
	put16(u + 4, (uint16_t)(8 + data));
	return ip4(b, ihl, 17, 8 + data, 0);
}

static size_t icmp_echo(uint8_t *b, size_t data)
{
	uint8_t *ic = b + 20;

	memset(ic, 0, 8 + data);
	ic[0] = 8;
	put16(ic + 4, 0x1234);
	put16(ic + 6, 7);
	return ip4(b, 20, 1, 8 + data, 0);
}

int main(int argc, char **argv)
{
	static uint8_t pk[6][1600];
	size_t len[6];
	const char *what[6] = { "tcp syn", "tcp data (opts)", "udp dns", "udp ip-opts", "icmp echo", "fragment" };
	struct timespec t0, t1;
	unsigned long ok = 0, n = 0;
	int only = argc > 1 ? atoi(argv[1]) : -1; /* one kind, or all */

	len[0] = tcp(pk[0], 0x02, 40, 0);
	len[1] = tcp(pk[1], 0x18, 32, 1400);
	len[2] = udp(pk[2], 20, 40);
	len[3] = udp(pk[3], 24, 40);
	len[4] = icmp_echo(pk[4], 56);
	len[5] = ip4(pk[5], 20, 17, 1000, 0x2000);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int r = 0; r < ROUNDS; r++)
		for (int k = 0; k < 6; k++) {
			struct pkt4 p;
			if (only >= 0 && k != only)
				continue;
			ok += pkt4_parse(pk[k], len[k], &p) == 0;
			n++;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	for (int k = 0; k < 6; k++)
		if (only < 0 || k == only)
			printf("kind %d: %s, %zu bytes\n", k, what[k], len[k]);
	printf("%lu parses (%lu ok), %.1f ns per parse\n", n, ok,
	       ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / (double)n);
	return ok == n ? 0 : 1;
}
