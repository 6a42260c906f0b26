/* libFuzzer target for the manager's DNS checks (src/manager/dns.c): the
 * question of a query from the daemon and of a reply from the cluster DNS
 * (mgr_dns_question_len), and the letter-case-blind comparison that
 * decides whether a reply answers the question in flight.
 * If a length comes back: the question lies inside the message, its name
 * is uncompressed labels of at most 63 bytes ending at the root, at most
 * 255 bytes, and QTYPE/QCLASS follow; a question equals itself and its
 * upper-cased copy. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "manager/manager.h"
#include "fuzz.h"


static void check_name(const uint8_t *q, size_t qlen)
{
	size_t off = 0;

	for (;;) {
		CHECK(off < qlen - 4);
		uint8_t l = q[off];
		CHECK(l <= 63);
		off += (size_t)l + 1;
		if (l == 0)
			break;
	}
	CHECK(off == qlen - 4 && off <= 255);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t upper[260];
	int qlen = mgr_dns_question_len(data, size);

	if (qlen < 0)
		return 0;
	CHECK(qlen >= 5 && (size_t)qlen <= size - 12 && (size_t)qlen <= sizeof(upper));
	CHECK(data[4] == 0 && data[5] == 1);
	check_name(data + 12, (size_t)qlen);
	memcpy(upper, data + 12, (size_t)qlen);
	for (int i = 0; i < qlen; i++)
		if (upper[i] >= 'a' && upper[i] <= 'z')
			upper[i] = (uint8_t)(upper[i] - 32);
	CHECK(mgr_dns_question_eq(data + 12, data + 12, (size_t)qlen));
	CHECK(mgr_dns_question_eq(data + 12, upper, (size_t)qlen));
	return 0;
}
