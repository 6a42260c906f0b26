/* Internet checksum (RFC 1071) and its incremental update (RFC 1624).
 * All 16-bit values are host order: data is summed as big-endian words, and
 * a checksum is stored with a big-endian write. */
#include "net/packet.h"

#include <arpa/inet.h>
#include <string.h>

/* 32 bits of end-around carry: 2^32 = 1 (mod 0xffff), so the value mod
 * 0xffff, which is all the one's complement sum is, does not change. */
static uint32_t fold64(uint64_t s)
{
	s = (s & 0xffffffffu) + (s >> 32);
	s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

static uint16_t fold32(uint32_t s)
{
	s = (s & 0xffffu) + (s >> 16);
	s = (s & 0xffffu) + (s >> 16);
	return (uint16_t)s;
}

/* Sums native-order loads and swaps once at the end: the one's complement
 * sum is byte-order independent (RFC 1071, 2.B).  data must start at an
 * even offset of the checksummed region; an odd trailing byte is the high
 * byte of a word padded with zero. */
uint32_t csum_partial(const void *data, size_t len, uint32_t sum)
{
	const uint8_t *p = data;
	uint64_t acc = 0;
	uint32_t w32;
	uint16_t w16;

	for (; len >= 4; p += 4, len -= 4) {
		memcpy(&w32, p, 4);
		acc += w32;
	}
	if (len >= 2) {
		memcpy(&w16, p, 2);
		acc += w16;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = {*p, 0};
		memcpy(&w16, last, 2);
		acc += w16;
	}
	return fold64((uint64_t)sum + ntohs(fold32(fold64(acc))));
}

uint16_t csum_fold(uint32_t sum)
{
	return (uint16_t)~fold32(sum);
}

/* RFC 1624 eqn. 3: never turns a checksum into 0xffff, which a checksum
 * computed from scratch cannot be (the eqn. 2 pitfall of RFC 1624 §3). */
uint16_t csum_update16(uint16_t check, uint16_t old, uint16_t new_)
{
	uint32_t s = (uint32_t)(uint16_t)~check + (uint16_t)~old + new_;
	return csum_fold(s);
}

uint16_t csum_update32(uint16_t check, uint32_t old, uint32_t new_)
{
	uint32_t s = (uint32_t)(uint16_t)~check;

	s += (uint16_t)~(old >> 16);
	s += (uint16_t)~(old & 0xffffu);
	s += new_ >> 16;
	s += new_ & 0xffffu;
	return csum_fold(s);
}
