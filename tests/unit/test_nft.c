/* Unit tests for the agent's nf_tables batches (src/agent/nft.c) and the
 * netlink writer and reader under them (src/agent/nlmsg.c): messages are
 * held byte for byte against what nft itself sends for the same rules,
 * and the reply reader against answers the kernel could give.
 *
 * Run as `test_nft agent`, this binary is also the helper that
 * tests/integration/test_agent_nft.py drives inside a network namespace:
 * it opens a struct agent_nft and reads one command a line from stdin,
 *     redirect tcp|udp PORT TO_PORT EXEMPT_UID
 *     unredirect tcp|udp PORT
 *     cleanup
 *     no-owner              (as on a kernel without the table owner flag)
 *     quit                  (or end of input: agent_nft_close)
 * answering "ready" once, then "ok" or "err -ERRNO TEXT" for each. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <netinet/in.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "agent/nft.h"
#include "agent/nlmsg.h"
#include "common/util.h"

/* What nft 1.0.6 sends (`nft --debug=mnl -f`, the bodies after the
 * nlmsghdr, on a little-endian host) for
 *
 *	table inet subway-agent {
 *		flags owner
 *		chain prerouting { type nat hook prerouting priority dstnat; policy accept;
 *			tcp dport 80 redirect to :8080 }
 *		chain output { type nat hook output priority -100; policy accept;
 *			meta skuid != 1000 fib daddr type local tcp dport 80 redirect to :8080
 *			meta skuid != 4294967294 fib daddr type local udp dport 53 redirect to :5353 }
 *	}
 */
static const uint8_t nft_newtable_owner[] = {
	0x01, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01, 0x00, 0x73, 0x75, 0x62, 0x77,
	0x61, 0x79, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74, 0x00, 0x00, 0x00, 0x00,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02,
};

static const uint8_t nft_newchain_pre[] = {
	0x01, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01, 0x00, 0x73, 0x75, 0x62, 0x77,
	0x61, 0x79, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74, 0x00, 0x00, 0x00, 0x00,
	0x0f, 0x00, 0x03, 0x00, 0x70, 0x72, 0x65, 0x72, 0x6f, 0x75, 0x74, 0x69,
	0x6e, 0x67, 0x00, 0x00, 0x08, 0x00, 0x07, 0x00, 0x6e, 0x61, 0x74, 0x00,
	0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x01, 0x14, 0x00, 0x04, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x02, 0x00,
	0xff, 0xff, 0xff, 0x9c,
};

static const uint8_t nft_newchain_out[] = {
	0x01, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01, 0x00, 0x73, 0x75, 0x62, 0x77,
	0x61, 0x79, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74, 0x00, 0x00, 0x00, 0x00,
	0x0b, 0x00, 0x03, 0x00, 0x6f, 0x75, 0x74, 0x70, 0x75, 0x74, 0x00, 0x00,
	0x08, 0x00, 0x07, 0x00, 0x6e, 0x61, 0x74, 0x00, 0x08, 0x00, 0x05, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x14, 0x00, 0x04, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x02, 0x00, 0xff, 0xff, 0xff, 0x9c,
};

static const uint8_t nft_newrule_pre_tcp80[] = {
	0x01, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01, 0x00, 0x73, 0x75, 0x62, 0x77,
	0x61, 0x79, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74, 0x00, 0x00, 0x00, 0x00,
	0x0f, 0x00, 0x02, 0x00, 0x70, 0x72, 0x65, 0x72, 0x6f, 0x75, 0x74, 0x69,
	0x6e, 0x67, 0x00, 0x00, 0x04, 0x01, 0x04, 0x80, 0x24, 0x00, 0x01, 0x80,
	0x09, 0x00, 0x01, 0x00, 0x6d, 0x65, 0x74, 0x61, 0x00, 0x00, 0x00, 0x00,
	0x14, 0x00, 0x02, 0x80, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
	0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x01, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x63, 0x6d, 0x70, 0x00, 0x20, 0x00, 0x02, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x80, 0x05, 0x00, 0x01, 0x00,
	0x06, 0x00, 0x00, 0x00, 0x34, 0x00, 0x01, 0x80, 0x0c, 0x00, 0x01, 0x00,
	0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x00, 0x24, 0x00, 0x02, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02, 0x2c, 0x00, 0x01, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x63, 0x6d, 0x70, 0x00, 0x20, 0x00, 0x02, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x80, 0x06, 0x00, 0x01, 0x00,
	0x00, 0x50, 0x00, 0x00, 0x2c, 0x00, 0x01, 0x80, 0x0e, 0x00, 0x01, 0x00,
	0x69, 0x6d, 0x6d, 0x65, 0x64, 0x69, 0x61, 0x74, 0x65, 0x00, 0x00, 0x00,
	0x18, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x0c, 0x00, 0x02, 0x80, 0x06, 0x00, 0x01, 0x00, 0x1f, 0x90, 0x00, 0x00,
	0x24, 0x00, 0x01, 0x80, 0x0a, 0x00, 0x01, 0x00, 0x72, 0x65, 0x64, 0x69,
	0x72, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02,
};

static const uint8_t nft_newrule_out_tcp80[] = {
	0x01, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01, 0x00, 0x73, 0x75, 0x62, 0x77,
	0x61, 0x79, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74, 0x00, 0x00, 0x00, 0x00,
	0x0b, 0x00, 0x02, 0x00, 0x6f, 0x75, 0x74, 0x70, 0x75, 0x74, 0x00, 0x00,
	0xa8, 0x01, 0x04, 0x80, 0x24, 0x00, 0x01, 0x80, 0x09, 0x00, 0x01, 0x00,
	0x6d, 0x65, 0x74, 0x61, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x80,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x63, 0x6d, 0x70, 0x00, 0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0xe8, 0x03, 0x00, 0x00,
	0x28, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 0x66, 0x69, 0x62, 0x00,
	0x1c, 0x00, 0x02, 0x80, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x63, 0x6d, 0x70, 0x00, 0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x24, 0x00, 0x01, 0x80, 0x09, 0x00, 0x01, 0x00, 0x6d, 0x65, 0x74, 0x61,
	0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x80, 0x08, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x00, 0x10, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 0x63, 0x6d, 0x70, 0x00,
	0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x80,
	0x05, 0x00, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x34, 0x00, 0x01, 0x80,
	0x0c, 0x00, 0x01, 0x00, 0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x00,
	0x24, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x03, 0x00,
	0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 0x63, 0x6d, 0x70, 0x00,
	0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x80,
	0x06, 0x00, 0x01, 0x00, 0x00, 0x50, 0x00, 0x00, 0x2c, 0x00, 0x01, 0x80,
	0x0e, 0x00, 0x01, 0x00, 0x69, 0x6d, 0x6d, 0x65, 0x64, 0x69, 0x61, 0x74,
	0x65, 0x00, 0x00, 0x00, 0x18, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x02, 0x80, 0x06, 0x00, 0x01, 0x00,
	0x1f, 0x90, 0x00, 0x00, 0x24, 0x00, 0x01, 0x80, 0x0a, 0x00, 0x01, 0x00,
	0x72, 0x65, 0x64, 0x69, 0x72, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x03, 0x00,
	0x00, 0x00, 0x00, 0x02,
};

static const uint8_t nft_newrule_out_udp53[] = {
	0x01, 0x00, 0x00, 0x00, 0x11, 0x00, 0x01, 0x00, 0x73, 0x75, 0x62, 0x77,
	0x61, 0x79, 0x2d, 0x61, 0x67, 0x65, 0x6e, 0x74, 0x00, 0x00, 0x00, 0x00,
	0x0b, 0x00, 0x02, 0x00, 0x6f, 0x75, 0x74, 0x70, 0x75, 0x74, 0x00, 0x00,
	0xa8, 0x01, 0x04, 0x80, 0x24, 0x00, 0x01, 0x80, 0x09, 0x00, 0x01, 0x00,
	0x6d, 0x65, 0x74, 0x61, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x80,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x0a, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x63, 0x6d, 0x70, 0x00, 0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0xfe, 0xff, 0xff, 0xff,
	0x28, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 0x66, 0x69, 0x62, 0x00,
	0x1c, 0x00, 0x02, 0x80, 0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x03, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x63, 0x6d, 0x70, 0x00, 0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0x02, 0x00, 0x00, 0x00,
	0x24, 0x00, 0x01, 0x80, 0x09, 0x00, 0x01, 0x00, 0x6d, 0x65, 0x74, 0x61,
	0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x80, 0x08, 0x00, 0x02, 0x00,
	0x00, 0x00, 0x00, 0x10, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 0x63, 0x6d, 0x70, 0x00,
	0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x80,
	0x05, 0x00, 0x01, 0x00, 0x11, 0x00, 0x00, 0x00, 0x34, 0x00, 0x01, 0x80,
	0x0c, 0x00, 0x01, 0x00, 0x70, 0x61, 0x79, 0x6c, 0x6f, 0x61, 0x64, 0x00,
	0x24, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x03, 0x00,
	0x00, 0x00, 0x00, 0x02, 0x08, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x02,
	0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 0x63, 0x6d, 0x70, 0x00,
	0x20, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x03, 0x80,
	0x06, 0x00, 0x01, 0x00, 0x00, 0x35, 0x00, 0x00, 0x2c, 0x00, 0x01, 0x80,
	0x0e, 0x00, 0x01, 0x00, 0x69, 0x6d, 0x6d, 0x65, 0x64, 0x69, 0x61, 0x74,
	0x65, 0x00, 0x00, 0x00, 0x18, 0x00, 0x02, 0x80, 0x08, 0x00, 0x01, 0x00,
	0x00, 0x00, 0x00, 0x01, 0x0c, 0x00, 0x02, 0x80, 0x06, 0x00, 0x01, 0x00,
	0x14, 0xe9, 0x00, 0x00, 0x24, 0x00, 0x01, 0x80, 0x0a, 0x00, 0x01, 0x00,
	0x72, 0x65, 0x64, 0x69, 0x72, 0x00, 0x00, 0x00, 0x14, 0x00, 0x02, 0x80,
	0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x03, 0x00,
	0x00, 0x00, 0x00, 0x02,
};

static const struct agent_nft_rdr rdr_tcp80 = { IPPROTO_TCP, 80, 8080, 1000 };
static const struct agent_nft_rdr rdr_udp53 = { IPPROTO_UDP, 53, 5353, 4294967294u };

#define NFT_TYPE(m) ((uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | (m)))

/* The next message of c, checked to be a request of type with flags (ACK
 * added for nf_tables messages) and seq, whose body is want. */
static void expect_msg(struct cursor *c, uint16_t type, uint16_t flags, uint32_t seq, const uint8_t *want,
		       size_t len)
{
	struct nlmsg m;

	assert_int_equal(nlr_msg_next(c, &m), 1);
	assert_int_equal(m.type, type);
	assert_int_equal(m.flags, NLM_F_REQUEST | flags);
	assert_int_equal(m.seq, seq);
	assert_int_equal(m.pid, 0);
	assert_int_equal(cursor_remaining(&m.body), len);
	assert_memory_equal(m.body.p + m.body.off, want, len);
}

/* ---- nlmsg: the writer */

static void test_nlw(void **state)
{
	uint8_t buf[64];
	struct wcursor w;
	size_t m, nest;
	const uint8_t want[] = {
		48, 0, 0, 0, 0x34, 0x12, 5, 0, 7, 0, 0, 0, 0, 0, 0, 0, /* header: len 48, type, flags, seq */
		1, 2, 3, 0,                                             /* family header, padded */
		7, 0, 1, 0, 'a', 'b', 0, 0,                             /* "ab" */
		20, 0, 2, 0x80,                                         /* nest 2 */
		8, 0, 3, 0, 0, 0, 1, 2,                                 /* be32 0x102 */
		5, 0, 4, 0, 9, 0, 0, 0,                                 /* one byte, padded */
	};
	const uint8_t one = 9;

	(void)state;
	wcursor_init(&w, buf, sizeof(buf));
	m = nlw_msg_begin(&w, 0x1234, 5, 7);
	nlw_put(&w, (const uint8_t[]){ 1, 2, 3 }, 3);
	nlw_attr_str(&w, 1, "ab");
	nest = nlw_nest_begin(&w, 2);
	nlw_attr_be32(&w, 3, 0x102);
	nlw_attr(&w, 4, &one, 1);
	nlw_nest_end(&w, nest);
	nlw_msg_end(&w, m);
	assert_int_equal(wcursor_result(&w), sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));

	/* out of room: nothing past cap, -ENOSPC */
	wcursor_init(&w, buf, 20);
	m = nlw_msg_begin(&w, 1, 0, 0);
	nlw_attr_be32(&w, 1, 1);
	nlw_msg_end(&w, m);
	assert_int_equal(wcursor_result(&w), -ENOSPC);

	/* a value longer than an attribute can say: -EINVAL */
	static uint8_t big[70000], out[80100];
	wcursor_init(&w, out, sizeof(out));
	nlw_attr(&w, 1, big, sizeof(big));
	assert_int_equal(wcursor_result(&w), -EINVAL);
	wcursor_init(&w, out, sizeof(out));
	nest = nlw_nest_begin(&w, 1);
	nlw_attr(&w, 2, big, 40000);
	nlw_attr(&w, 2, big, 40000);
	nlw_nest_end(&w, nest);
	assert_int_equal(wcursor_result(&w), -EINVAL);
}

/* ---- nlmsg: the reader */

static void test_nlr_msgs(void **state)
{
	/* two messages, the first with 2 bytes of body and its padding, the
	 * last without padding */
	const uint8_t two[] = {
		18, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0xaa, 0xbb, 0, 0,
		17, 0, 0, 0, 3, 0, 1, 0, 2, 0, 0, 0, 9, 0, 0, 0, 0xcc,
	};
	const uint8_t short_len[] = { 15, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0 };
	const uint8_t past_end[] = { 21, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4 };
	struct cursor c;
	struct nlmsg m;

	(void)state;
	cursor_init(&c, two, sizeof(two));
	assert_int_equal(nlr_msg_next(&c, &m), 1);
	assert_int_equal(m.type, 2);
	assert_int_equal(m.seq, 1);
	assert_int_equal(cursor_remaining(&m.body), 2);
	assert_int_equal(nlr_msg_next(&c, &m), 1);
	assert_int_equal(m.type, 3);
	assert_int_equal(m.flags, 1);
	assert_int_equal(m.pid, 9);
	assert_int_equal(cursor_u8(&m.body), 0xcc);
	assert_int_equal(nlr_msg_next(&c, &m), 0);

	/* a cut header, a length below a header's, a length past the end:
	 * refused, and nothing after them read */
	cursor_init(&c, two, 10);
	assert_int_equal(nlr_msg_next(&c, &m), -EBADMSG);
	assert_int_equal(nlr_msg_next(&c, &m), -EBADMSG);
	cursor_init(&c, short_len, sizeof(short_len));
	assert_int_equal(nlr_msg_next(&c, &m), -EBADMSG);
	cursor_init(&c, past_end, sizeof(past_end));
	assert_int_equal(nlr_msg_next(&c, &m), -EBADMSG);
	cursor_init(&c, NULL, 0);
	assert_int_equal(nlr_msg_next(&c, &m), 0);
}

static void test_nlr_attrs(void **state)
{
	const uint8_t attrs[] = {
		5, 0, 1, 0x80, 7, 0, 0, 0, /* nested 1, one byte */
		4, 0, 2, 0,                /* empty */
		6, 0, 3, 0x40, 1, 2,       /* byte-order flag, last, unpadded */
	};
	const uint8_t bad[] = { 3, 0, 1, 0 }, past[] = { 9, 0, 1, 0, 1, 2, 3, 4 };
	struct cursor c;
	struct nlr_attr a;

	(void)state;
	cursor_init(&c, attrs, sizeof(attrs));
	assert_int_equal(nlr_attr_next(&c, &a), 1);
	assert_int_equal(a.type, 1);
	assert_true(a.nested);
	assert_int_equal(cursor_u8(&a.val), 7);
	assert_int_equal(cursor_end(&a.val), 0);
	assert_int_equal(nlr_attr_next(&c, &a), 1);
	assert_int_equal(a.type, 2);
	assert_false(a.nested);
	assert_int_equal(cursor_remaining(&a.val), 0);
	assert_int_equal(nlr_attr_next(&c, &a), 1);
	assert_int_equal(a.type, 3);
	assert_int_equal(cursor_u16(&a.val), 0x0102);
	assert_int_equal(nlr_attr_next(&c, &a), 0);

	cursor_init(&c, bad, sizeof(bad));
	assert_int_equal(nlr_attr_next(&c, &a), -EBADMSG);
	cursor_init(&c, past, sizeof(past));
	assert_int_equal(nlr_attr_next(&c, &a), -EBADMSG);
}

/* An NLMSG_ERROR for seq with err; quote: the request's body bytes quoted
 * (uncapped); text: an extended ACK message (NULL: none). */
static size_t error_msg(uint8_t *buf, size_t cap, uint32_t seq, int32_t err, size_t quote, const char *text)
{
	struct nlmsghdr orig = { .nlmsg_len = (uint32_t)(16 + quote), .nlmsg_type = NFT_TYPE(NFT_MSG_NEWRULE),
				 .nlmsg_seq = seq };
	uint16_t flags = (quote || !err ? 0 : NLM_F_CAPPED) | (text ? NLM_F_ACK_TLVS : 0);
	uint8_t zero[64] = { 0 };
	struct wcursor w;
	size_t m;

	wcursor_init(&w, buf, cap);
	m = nlw_msg_begin(&w, NLMSG_ERROR, flags, seq);
	wcursor_bytes(&w, &err, sizeof(err));
	wcursor_bytes(&w, &orig, sizeof(orig));
	wcursor_bytes(&w, zero, quote);
	if (text)
		nlw_attr_str(&w, NLMSGERR_ATTR_MSG, text);
	nlw_msg_end(&w, m);
	assert_true(wcursor_result(&w) > 0);
	return (size_t)wcursor_result(&w);
}

static int parse_one(const uint8_t *buf, size_t len, int *err, char *text, size_t size)
{
	struct cursor c;
	struct nlmsg m;

	cursor_init(&c, buf, len);
	assert_int_equal(nlr_msg_next(&c, &m), 1);
	return nlr_error_parse(&m, err, text, size);
}

static void test_nlr_error(void **state)
{
	uint8_t buf[256];
	char text[64];
	size_t len;
	int err = 1;

	(void)state;
	/* an ACK; a capped error with the kernel's words; an uncapped one
	 * quoting the request; an ACK of an old kernel (no CAPPED flag) */
	len = error_msg(buf, sizeof(buf), 5, 0, 0, NULL);
	assert_int_equal(parse_one(buf, len, &err, text, sizeof(text)), 0);
	assert_int_equal(err, 0);
	assert_string_equal(text, "");
	len = error_msg(buf, sizeof(buf), 5, -EOPNOTSUPP, 0, "unknown\tflag");
	assert_int_equal(parse_one(buf, len, &err, text, sizeof(text)), 0);
	assert_int_equal(err, -EOPNOTSUPP);
	assert_string_equal(text, "unknown?flag");
	len = error_msg(buf, sizeof(buf), 5, -EPERM, 40, NULL);
	assert_int_equal(parse_one(buf, len, &err, text, sizeof(text)), 0);
	assert_int_equal(err, -EPERM);
	/* a long message is cut */
	len = error_msg(buf, sizeof(buf), 5, -EINVAL, 0, "0123456789abcdefghijklmnopqrstuvwxyz");
	assert_int_equal(parse_one(buf, len, &err, text, 12), 0);
	assert_string_equal(text, "01234567...");

	/* refused: a positive code, one past -4095, a quote longer than the
	 * message, text without its NUL, bytes after it all */
	len = error_msg(buf, sizeof(buf), 5, 3, 0, NULL);
	assert_int_equal(parse_one(buf, len, &err, text, sizeof(text)), -EBADMSG);
	len = error_msg(buf, sizeof(buf), 5, -5000, 0, NULL);
	assert_int_equal(parse_one(buf, len, &err, text, sizeof(text)), -EBADMSG);
	len = error_msg(buf, sizeof(buf), 5, -EPERM, 40, NULL);
	buf[20] = 200; /* the quoted header's length */
	assert_int_equal(parse_one(buf, len, &err, text, sizeof(text)), -EBADMSG);
	len = error_msg(buf, sizeof(buf), 5, -EPERM, 0, "abc");
	buf[len - 1] = 'd'; /* "abc\0" -> "abcd", no NUL */
	assert_int_equal(parse_one(buf, len, &err, text, sizeof(text)), -EBADMSG);
	len = error_msg(buf, sizeof(buf), 5, -EPERM, 0, NULL);
	memset(buf + len, 0, 4);
	buf[0] = (uint8_t)(len + 4);
	assert_int_equal(parse_one(buf, len + 4, &err, text, sizeof(text)), -EBADMSG);
}

/* ---- nft: expressions and messages */

static void test_expr_bytes(void **state)
{
	const uint8_t redir[] = {
		0x24, 0x00, 0x01, 0x80,                                                 /* list elem */
		0x0a, 0x00, 0x01, 0x00, 'r', 'e', 'd', 'i', 'r', 0x00, 0x00, 0x00,     /* name */
		0x14, 0x00, 0x02, 0x80,                                                 /* data */
		0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,                         /* proto min: reg 1 */
		0x08, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0x02,                         /* flags: proto specified */
	};
	const uint8_t cmp_neq_uid[] = {
		0x2c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 'c', 'm', 'p', 0x00,
		0x20, 0x00, 0x02, 0x80,
		0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, /* sreg 1 */
		0x08, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, /* op neq */
		0x0c, 0x00, 0x03, 0x80, 0x08, 0x00, 0x01, 0x00, 0xe8, 0x03, 0x00, 0x00, /* 1000, host order */
	};
	const uint8_t immediate[] = {
		0x2c, 0x00, 0x01, 0x80, 0x0e, 0x00, 0x01, 0x00, 'i', 'm', 'm', 'e', 'd', 'i', 'a', 't', 'e', 0, 0, 0,
		0x18, 0x00, 0x02, 0x80,
		0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01,                         /* dreg 1 */
		0x0c, 0x00, 0x02, 0x80, 0x06, 0x00, 0x01, 0x00, 0x1f, 0x90, 0x00, 0x00, /* 8080, big-endian */
	};
	uint8_t buf[128];
	uint32_t uid = 1000;
	struct wcursor w;

	(void)state;
	wcursor_init(&w, buf, sizeof(buf));
	nft_expr_redir(&w);
	assert_int_equal(wcursor_result(&w), sizeof(redir));
	assert_memory_equal(buf, redir, sizeof(redir));
	wcursor_init(&w, buf, sizeof(buf));
	nft_expr_cmp(&w, NFT_CMP_NEQ, &uid, sizeof(uid));
	assert_int_equal(wcursor_result(&w), sizeof(cmp_neq_uid));
	assert_memory_equal(buf, cmp_neq_uid, sizeof(cmp_neq_uid));
	wcursor_init(&w, buf, sizeof(buf));
	nft_expr_immediate(&w, (const uint8_t[]){ 0x1f, 0x90 }, 2);
	assert_int_equal(wcursor_result(&w), sizeof(immediate));
	assert_memory_equal(buf, immediate, sizeof(immediate));
}

/* A whole batch for two redirects, held against nft's own messages. */
static void test_batch_as_nft(void **state)
{
	const struct agent_nft_rdr r[2] = { rdr_tcp80, rdr_udp53 };
	const uint8_t begin[] = { 0, 0, 0, NFNL_SUBSYS_NFTABLES }, table[] = {
		1, 0, 0, 0, 0x11, 0x00, 0x01, 0x00, 's', 'u', 'b', 'w', 'a', 'y', '-', 'a', 'g', 'e', 'n', 't', 0, 0, 0, 0,
	};
	uint8_t buf[4096];
	struct nft_batch b;
	struct cursor c;
	struct nlmsg m;
	ssize_t len;
	uint32_t s = 0xfffffffe; /* the sequence numbers wrap */

	(void)state;
	assert_true(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__); /* the vectors are */
	len = nft_batch_encode(buf, sizeof(buf), s, r, 2, true, &b);
	assert_true(len > 0);
	assert_int_equal(b.n, 11);
	cursor_init(&c, buf, (size_t)len);
	expect_msg(&c, NFNL_MSG_BATCH_BEGIN, 0, s, begin, sizeof(begin));
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWTABLE), NLM_F_ACK | NLM_F_CREATE, s + 1, table, sizeof(table));
	expect_msg(&c, NFT_TYPE(NFT_MSG_DELTABLE), NLM_F_ACK, s + 2, table, sizeof(table));
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWTABLE), NLM_F_ACK | NLM_F_CREATE, s + 3, nft_newtable_owner,
		   sizeof(nft_newtable_owner));
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWCHAIN), NLM_F_ACK | NLM_F_CREATE, s + 4, nft_newchain_pre,
		   sizeof(nft_newchain_pre));
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWCHAIN), NLM_F_ACK | NLM_F_CREATE, s + 5, nft_newchain_out,
		   sizeof(nft_newchain_out));
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWRULE), NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, s + 6,
		   nft_newrule_pre_tcp80, sizeof(nft_newrule_pre_tcp80));
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWRULE), NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, s + 7,
		   nft_newrule_out_tcp80, sizeof(nft_newrule_out_tcp80));
	assert_int_equal(nlr_msg_next(&c, &m), 1); /* udp prerouting: like tcp's */
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWRULE), NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND, s + 9,
		   nft_newrule_out_udp53, sizeof(nft_newrule_out_udp53));
	expect_msg(&c, NFNL_MSG_BATCH_END, 0, s + 10, begin, sizeof(begin));
	assert_int_equal(nlr_msg_next(&c, &m), 0);

	assert_int_equal(b.what[0].type, NFNL_MSG_BATCH_BEGIN);
	assert_true(b.what[3].owner);
	assert_int_equal(b.what[8].chain, NFT_CHAIN_PRE);
	assert_int_equal(b.what[8].r.port, 53);
	assert_int_equal(b.what[10].type, NFNL_MSG_BATCH_END);

	/* without the owner flag: the table has no flags attribute */
	len = nft_batch_encode(buf, sizeof(buf), s, r, 1, false, &b);
	assert_true(len > 0);
	cursor_init(&c, buf, (size_t)len);
	for (int i = 0; i < 3; i++)
		assert_int_equal(nlr_msg_next(&c, &m), 1);
	expect_msg(&c, NFT_TYPE(NFT_MSG_NEWTABLE), NLM_F_ACK | NLM_F_CREATE, s + 3, table, sizeof(table));
}

static void test_batch_shape(void **state)
{
	static struct agent_nft_rdr r[AGENT_NFT_MAX + 1];
	static uint8_t buf[64 * 1024];
	struct nft_batch b;
	struct cursor c;
	struct nlmsg m;
	ssize_t len;
	size_t k = 0;

	(void)state;
	/* nothing redirected: create-then-delete only, no table after */
	len = nft_batch_encode(buf, sizeof(buf), 100, NULL, 0, true, &b);
	assert_true(len > 0);
	assert_int_equal(b.n, 4);
	cursor_init(&c, buf, (size_t)len);
	while (nlr_msg_next(&c, &m) > 0) {
		assert_int_equal(m.seq, 100 + k);
		k++;
	}
	assert_int_equal(k, 4);
	assert_int_equal(b.what[1].type, NFT_MSG_NEWTABLE);
	assert_false(b.what[1].owner);
	assert_int_equal(b.what[2].type, NFT_MSG_DELTABLE);
	/* nothing redirected any more: the table and its chains, empty (their
	 * NAT hooks still un-NAT the connections redirected before) */
	len = nft_batch_encode(buf, sizeof(buf), 100, NULL, 0, NFT_BATCH_OWNER | NFT_BATCH_CHAINS, &b);
	assert_true(len > 0);
	assert_int_equal(b.n, 7);
	assert_int_equal(b.what[3].type, NFT_MSG_NEWTABLE);
	assert_true(b.what[3].owner);
	assert_int_equal(b.what[4].type, NFT_MSG_NEWCHAIN);
	assert_int_equal(b.what[4].chain, NFT_CHAIN_PRE);
	assert_int_equal(b.what[5].type, NFT_MSG_NEWCHAIN);
	assert_int_equal(b.what[5].chain, NFT_CHAIN_OUT);
	assert_int_equal(b.what[6].type, NFNL_MSG_BATCH_END);

	/* the most redirects fit nft_batch_size; one byte less does not; more are refused */
	for (size_t i = 0; i < ARRAY_SIZE(r); i++)
		r[i] = (struct agent_nft_rdr){ IPPROTO_TCP, (uint16_t)(10000 + i), 20000, 4294967295u };
	assert_true(nft_batch_size(AGENT_NFT_MAX) <= sizeof(buf));
	len = nft_batch_encode(buf, nft_batch_size(AGENT_NFT_MAX), 1, r, AGENT_NFT_MAX, true, &b);
	assert_true(len > 0);
	assert_int_equal(b.n, NFT_BATCH_MAX);
	assert_int_equal(nft_batch_encode(buf, (size_t)len - 1, 1, r, AGENT_NFT_MAX, true, &b), -ENOSPC);
	assert_int_equal(nft_batch_encode(buf, sizeof(buf), 1, r, AGENT_NFT_MAX + 1, true, &b), -EINVAL);
	for (size_t n = 0; n <= 3; n++)
		assert_true(nft_batch_encode(buf, nft_batch_size(n), 1, r, n, true, &b) > 0);
}

static void test_msg_name(void **state)
{
	struct nft_msg_what m = { .type = NFT_MSG_NEWRULE, .chain = NFT_CHAIN_OUT, .r = rdr_udp53 };
	char buf[64];

	(void)state;
	assert_string_equal(nft_msg_name(&m, buf, sizeof(buf)), "NEWRULE output udp dport 53");
	m = (struct nft_msg_what){ .type = NFT_MSG_NEWTABLE, .owner = true };
	assert_string_equal(nft_msg_name(&m, buf, sizeof(buf)), "NEWTABLE inet subway-agent (flags owner)");
	m = (struct nft_msg_what){ .type = NFT_MSG_NEWCHAIN, .chain = NFT_CHAIN_PRE };
	assert_string_equal(nft_msg_name(&m, buf, sizeof(buf)), "NEWCHAIN prerouting");
	m = (struct nft_msg_what){ .type = NFNL_MSG_BATCH_BEGIN };
	assert_string_equal(nft_msg_name(&m, buf, sizeof(buf)), "batch");
}

/* ---- nft: reading the answers */

static void test_acks(void **state)
{
	const struct agent_nft_rdr r[1] = { rdr_tcp80 };
	uint8_t buf[4096], rx[512];
	struct nft_batch b;
	struct nft_acks a;
	size_t len;

	(void)state;
	/* 7 messages between the bounds, seq 11..17 */
	assert_true(nft_batch_encode(buf, sizeof(buf), 10, r, 1, true, &b) > 0);
	assert_int_equal(b.n, 9);

	/* every ACK, one a datagram, then two in one, plus an answer to an
	 * older batch and a duplicate: done */
	nft_acks_init(&a, &b);
	for (uint32_t s = 11; s <= 15; s++) {
		len = error_msg(rx, sizeof(rx), s, 0, 0, NULL);
		assert_int_equal(nft_acks_feed(&a, rx, len), 0);
		assert_false(nft_acks_done(&a));
	}
	len = error_msg(rx, sizeof(rx), 16, 0, 0, NULL);
	len += error_msg(rx + len, sizeof(rx) - len, 17, 0, 0, NULL);
	len += error_msg(rx + len, sizeof(rx) - len, 3, 0, 0, NULL);
	len += error_msg(rx + len, sizeof(rx) - len, 17, 0, 0, NULL);
	assert_int_equal(nft_acks_feed(&a, rx, len), 0);
	assert_true(nft_acks_done(&a));
	assert_int_equal(a.error, 0);
	assert_int_equal(a.stray, 2);

	/* a rule refused: the first failure is kept with its words */
	nft_acks_init(&a, &b);
	len = error_msg(rx, sizeof(rx), 17, -EOPNOTSUPP, 0, "no fib");
	len += error_msg(rx + len, sizeof(rx) - len, 16, -ENOENT, 0, NULL);
	assert_int_equal(nft_acks_feed(&a, rx, len), 0);
	assert_int_equal(a.error, -EOPNOTSUPP);
	assert_int_equal(a.error_at, 7);
	assert_string_equal(a.text, "no fib");
	assert_int_equal(a.acked, 2);

	assert_false(nft_owner_refused(&b, &a));

	/* an old kernel refuses the owner flag: told apart from other refusals */
	nft_acks_init(&a, &b);
	len = error_msg(rx, sizeof(rx), 13, -EOPNOTSUPP, 0, NULL);
	assert_int_equal(nft_acks_feed(&a, rx, len), 0);
	assert_true(b.what[3].owner);
	assert_true(nft_owner_refused(&b, &a));
	nft_acks_init(&a, &b);
	len = error_msg(rx, sizeof(rx), 11, -EOPNOTSUPP, 0, NULL);
	assert_int_equal(nft_acks_feed(&a, rx, len), 0);
	assert_false(nft_owner_refused(&b, &a));

	/* refused whole (no CAP_NET_ADMIN): the BEGIN's answer, not done */
	nft_acks_init(&a, &b);
	len = error_msg(rx, sizeof(rx), 10, -EPERM, 0, NULL);
	assert_int_equal(nft_acks_feed(&a, rx, len), 0);
	assert_int_equal(a.error, -EPERM);
	assert_int_equal(a.error_at, 0);
	assert_false(nft_acks_done(&a));

	/* another message type is passed over; a bad one stops the datagram */
	nft_acks_init(&a, &b);
	const uint8_t done[] = { 20, 0, 0, 0, NLMSG_DONE, 0, 0, 0, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(nft_acks_feed(&a, done, sizeof(done)), 0);
	assert_int_equal(a.acked, 0);
	len = error_msg(rx, sizeof(rx), 11, 0, 0, NULL);
	assert_int_equal(nft_acks_feed(&a, rx, len - 1), -EBADMSG);
	len = error_msg(rx, sizeof(rx), 11, 0, 0, NULL);
	rx[16] = 1; /* a positive error code */
	assert_int_equal(nft_acks_feed(&a, rx, len), -EBADMSG);
}

/* The checks agent_nft makes before sending anything. */
static void test_api_refusals(void **state)
{
	struct agent_nft n = { .fd = -1 };

	(void)state;
	assert_int_equal(agent_nft_redirect(&n, IPPROTO_ICMP, 80, 8080, 1), -EINVAL);
	assert_non_null(strstr(agent_nft_error(&n), "redirect of proto 1 port 80 to 8080"));
	assert_int_equal(agent_nft_redirect(&n, IPPROTO_TCP, 0, 8080, 1), -EINVAL);
	assert_int_equal(agent_nft_redirect(&n, IPPROTO_TCP, 80, 0, 1), -EINVAL);
	assert_int_equal(agent_nft_redirect(&n, IPPROTO_TCP, 80, 80, 1), -EINVAL);
	assert_int_equal(agent_nft_unredirect(&n, IPPROTO_UDP, 53), -ENOENT);
	assert_string_equal(agent_nft_error(&n), "unredirect of udp port 53: not redirected");
	n.n = AGENT_NFT_MAX;
	for (size_t i = 0; i < AGENT_NFT_MAX; i++)
		n.r[i] = (struct agent_nft_rdr){ IPPROTO_TCP, (uint16_t)(i + 1), 9999, 0 };
	assert_int_equal(agent_nft_redirect(&n, IPPROTO_TCP, 9000, 8080, 1), -ENOSPC);
	assert_int_equal(n.n, AGENT_NFT_MAX);
	agent_nft_close(&n); /* never opened: nothing */
}

/* ---- The integration test's helper */

static int proto_parse(const char *s)
{
	return !strcmp(s, "tcp") ? IPPROTO_TCP : !strcmp(s, "udp") ? IPPROTO_UDP : -1;
}

static int helper_line(struct agent_nft *n, const char *line)
{
	char proto[8];
	unsigned port, to;
	unsigned long uid;
	int p;

	if (sscanf(line, "redirect %7s %u %u %lu", proto, &port, &to, &uid) == 4) {
		p = proto_parse(proto);
		if (p < 0 || port > 65535 || to > 65535 || uid > UINT32_MAX)
			return -ERANGE;
		return agent_nft_redirect(n, (uint8_t)p, (uint16_t)port, (uint16_t)to, (uint32_t)uid);
	}
	if (sscanf(line, "unredirect %7s %u", proto, &port) == 2) {
		p = proto_parse(proto);
		if (p < 0 || port > 65535)
			return -ERANGE;
		return agent_nft_unredirect(n, (uint8_t)p, (uint16_t)port);
	}
	if (!strcmp(line, "cleanup\n"))
		return agent_nft_cleanup(n);
	if (!strcmp(line, "no-owner\n")) {
		n->no_owner = true;
		return 0;
	}
	return -EBADRQC;
}

static int helper_main(void)
{
	struct agent_nft n;
	char line[256];
	int ret = agent_nft_open(&n);

	if (ret < 0) {
		printf("err %d %s\n", ret, agent_nft_error(&n));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (fgets(line, sizeof(line), stdin) && strcmp(line, "quit\n")) {
		ret = helper_line(&n, line);
		if (ret < 0)
			printf("err %d %s\n", ret, ret == -ERANGE || ret == -EBADRQC ? "bad command" : agent_nft_error(&n));
		else
			printf("ok\n");
		fflush(stdout);
	}
	agent_nft_close(&n);
	return 0;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nlw),
		cmocka_unit_test(test_nlr_msgs),
		cmocka_unit_test(test_nlr_attrs),
		cmocka_unit_test(test_nlr_error),
		cmocka_unit_test(test_expr_bytes),
		cmocka_unit_test(test_batch_as_nft),
		cmocka_unit_test(test_batch_shape),
		cmocka_unit_test(test_msg_name),
		cmocka_unit_test(test_acks),
		cmocka_unit_test(test_api_refusals),
	};

	if (argc == 2 && !strcmp(argv[1], "agent"))
		return helper_main();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
