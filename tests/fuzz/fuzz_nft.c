/* libFuzzer target for what the agent reads from the kernel's nf_tables
 * netlink socket (src/agent/nft.c, src/agent/nlmsg.c): replies are checked
 * like any peer's bytes.  Input: one byte of mode, then
 *   mode even: one datagram of answers to a batch of one redirect (seq
 *     1000..1008), fed to nft_acks_feed: never a crash, never more answers
 *     than messages, a failure always points into the batch and its text
 *     is one line (no control bytes); every NLMSG_ERROR also through
 *     nlr_error_parse, and every attribute of every message walked;
 *   mode odd: up to 4 redirects made of the bytes (5 each: proto bit,
 *     port, to port), whose batch must encode and read back as messages
 *     numbered from its seq, each with one nfgenmsg and well-formed
 *     attributes. */
#include <errno.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#include "agent/nft.h"
#include "agent/nlmsg.h"
#include "fuzz.h"

static void walk_attrs(struct cursor c, int depth)
{
	struct nlr_attr a;

	while (nlr_attr_next(&c, &a) > 0)
		if (a.nested && depth < 8)
			walk_attrs(a.val, depth + 1);
}

static void answers(const uint8_t *data, size_t size)
{
	static const struct agent_nft_rdr r = { IPPROTO_TCP, 80, 8080, 1000 };
	static uint8_t buf[4096];
	struct nft_batch b;
	struct nft_acks a;
	struct cursor c;
	struct nlmsg m;
	char text[64];
	int err;

	CHECK(nft_batch_encode(buf, sizeof(buf), 1000, &r, 1, true, &b) > 0);
	nft_acks_init(&a, &b);
	(void)nft_acks_feed(&a, data, size);
	CHECK(a.acked <= b.n - 2);
	CHECK(!a.error || (a.error < 0 && a.error >= -4095 && a.error_at < b.n));
	CHECK(memchr(a.text, 0, sizeof(a.text)));
	for (const char *p = a.text; *p; p++)
		CHECK((unsigned char)*p >= 0x20 && *p != 0x7f); /* one line, as str_cut makes it */

	cursor_init(&c, data, size);
	while (nlr_msg_next(&c, &m) > 0) {
		if (m.type == NLMSG_ERROR && nlr_error_parse(&m, &err, text, sizeof(text)) == 0)
			CHECK(err <= 0 && err >= -4095 && memchr(text, 0, sizeof(text)));
		walk_attrs(m.body, 0);
	}
}

static void batch(const uint8_t *data, size_t size)
{
	static struct agent_nft_rdr r[4];
	static uint8_t buf[8192];
	struct nft_batch b;
	struct cursor c, body;
	struct nlmsg m;
	size_t n = 0, k = 0;
	ssize_t len;
	uint32_t seq = 0xfffffff0;

	/* Up to 4: more only repeat the same messages (test_nft checks the most). */
	for (; n < 4 && size >= 5; n++, data += 5, size -= 5)
		r[n] = (struct agent_nft_rdr){ data[0] & 1 ? IPPROTO_UDP : IPPROTO_TCP,
					       (uint16_t)(data[1] << 8 | data[2]),
					       (uint16_t)(data[3] << 8 | data[4]), (uint32_t)data[0] * 16777619u };
	len = nft_batch_encode(buf, nft_batch_size(n), seq, r, n, n & 1, &b);
	CHECK(len > 0 && (size_t)len <= nft_batch_size(n));
	cursor_init(&c, buf, (size_t)len);
	while (nlr_msg_next(&c, &m) > 0) {
		CHECK(k < b.n && m.seq == seq + (uint32_t)k);
		body = m.body;
		cursor_skip(&body, 4); /* nfgenmsg */
		walk_attrs(body, 0);
		CHECK(!body.err);
		k++;
	}
	CHECK(cursor_end(&c) == 0 && k == b.n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1)
		batch(data + 1, size - 1);
	else
		answers(data + 1, size - 1);
	return 0;
}
