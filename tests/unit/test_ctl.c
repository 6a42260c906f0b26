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
	assert_int_equal(parse("connect manager=10.0.0.1:30443 token=00112233445566778899aabbccddeeff owner=1000 "
			       "insecure=1", &r), 0);
	assert_int_equal(r.verb, CTL_CONNECT);
	assert_int_equal(r.mgr_addr, 0x0a000001);
	assert_int_equal(r.mgr_port, 30443);
	assert_true(r.has_owner);
	assert_int_equal(r.owner, 1000);
	assert_string_equal(r.token_hex, "00112233445566778899aabbccddeeff");
	assert_true(r.insecure);
	assert_false(r.has_fingerprint);
}

#define FP "sha256:000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F"

static void test_connect_tls(void **state)
{
	struct ctl_req r;
	(void)state;
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff fingerprint=" FP,
			       &r), 0);
	assert_true(r.has_fingerprint);
	assert_false(r.insecure);
	for (int i = 0; i < 32; i++)
		assert_int_equal(r.fingerprint[i], i);
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
		/* TLS or not must be said, once */
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff insecure=1 fingerprint=" FP,
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff insecure=0",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff insecure=yes",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff fingerprint=sha256:00",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff fingerprint=" FP "00",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff fingerprint=md5:" FP,
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff "
		"fingerprint=sha256:g00102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
		"status insecure=1",
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
		cmocka_unit_test(test_connect_tls),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_routes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
