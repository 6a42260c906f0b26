/* Control requests and the /proc/net/route parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/ctl.h"
#include "vif/vif.h"

static int parse(const char *s, struct ctl_req *r)
{
	char err[160];
	return ctl_parse(s, strlen(s), r, err, sizeof(err));
}

static void test_verbs(void **state)
{
	struct ctl_req r;
	(void)state;
	assert_int_equal(parse("status", &r), 0);
	assert_int_equal(r.verb, CTL_STATUS);
	assert_false(r.text);
	assert_int_equal(parse("status format=text", &r), 0);
	assert_true(r.text);
	assert_int_equal(parse("quit", &r), 0);
	assert_int_equal(r.verb, CTL_QUIT);
	assert_int_equal(parse("connect manager=10.0.0.1:30443 token=00112233445566778899aabbccddeeff owner=1000", &r), 0);
	assert_int_equal(r.verb, CTL_CONNECT);
	assert_int_equal(r.mgr_addr, 0x0a000001);
	assert_int_equal(r.mgr_port, 30443);
	assert_true(r.has_owner);
	assert_int_equal(r.owner, 1000);
	assert_string_equal(r.token_hex, "00112233445566778899aabbccddeeff");
	assert_false(r.no_loop_guard);
	assert_false(r.has_tos);
}

static void test_loop_guard_keys(void **state)
{
	struct ctl_req r;
	(void)state;
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=off tos=0", &r),
			 0);
	assert_true(r.no_loop_guard);
	assert_true(r.has_tos);
	assert_int_equal(r.tos, 0);
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=on tos=184", &r),
			 0);
	assert_false(r.no_loop_guard);
	assert_true(r.has_tos);
	assert_int_equal(r.tos, 184);
}

static void test_rejects(void **state)
{
	struct ctl_req r;
	char err[160];
	static const char *bad[] = {
		"", "stat", "statusx", "status format=xml", "status foo=bar", "quit now",
		"connect", "connect manager=10.0.0.1:30443", "connect token=0011223344556677889900112233445566",
		"connect manager=10.0.0.1 token=00112233445566778899aabbccddeeff",
		"connect manager=10.0.0.1:0 token=00112233445566778899aabbccddeeff",
		"connect manager=10.0.0.1:1 token=xyz12233445566778899aabbccddeeff",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff owner=-1",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff owner=99999999999",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=no",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=256",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=5",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=0x04",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=-4",
		"status loopguard=off", "status tos=4",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(ctl_parse(bad[i], strlen(bad[i]), &r, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != 0);
	}
	/* An embedded NUL is rejected, not truncated. */
	assert_int_equal(ctl_parse("status\0x", 8, &r, err, sizeof(err)), -EINVAL);
}

static void test_routes(void **state)
{
	static const char text[] =
		"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
		"eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
		"eth0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
		"cni0\t00002A0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
	struct local_route r[8];
	(void)state;
	assert_int_equal(vif_routes_parse(text, r, 8), 2);
	assert_int_equal(r[0].dst.addr, 0xC0A80100);
	assert_int_equal(r[0].dst.len, 24);
	assert_string_equal(r[0].dev, "eth0");
	assert_int_equal(r[1].dst.addr, 0x0A2A0000);
	assert_int_equal(r[1].dst.len, 16);
	assert_int_equal(vif_routes_parse("hdr\ngarbage line\n", r, 8), -EINVAL);
	assert_int_equal(vif_routes_parse("only a header", r, 8), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_loop_guard_keys),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
