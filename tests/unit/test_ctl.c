/* Control requests and the /proc/net/route parser. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "proto/ctlmsg.h"
#include "dns/resolv.h"
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
	assert_int_equal(r.manager.addr, 0x0a000001);
	assert_int_equal(r.manager.port, 30443);
	assert_true(r.has_owner);
	assert_int_equal(r.owner, 1000);
	assert_string_equal(r.token_hex, "00112233445566778899aabbccddeeff");
	assert_false(r.no_loop_guard);
	assert_false(r.has_tos);
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

static void test_loop_guard_keys(void **state)
{
	struct ctl_req r;
	(void)state;
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=off tos=0 insecure=1", &r),
			 0);
	assert_true(r.no_loop_guard);
	assert_true(r.has_tos);
	assert_int_equal(r.tos, 0);
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=on tos=184 insecure=1", &r),
			 0);
	assert_false(r.no_loop_guard);
	assert_true(r.has_tos);
	assert_int_equal(r.tos, 184);
	assert_false(r.has_threads);
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff threads=4 insecure=1", &r),
			 0);
	assert_true(r.has_threads);
	assert_int_equal(r.threads, 4);
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
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=no",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff loopguard=",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=256",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=5",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=0x04",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff tos=-4",
		"status loopguard=off", "status tos=4",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff threads=0",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff threads=5",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff threads=",
		"status threads=2",
		/* a key once */
		"connect manager=10.0.0.1:1 manager=10.0.0.2:1 token=00112233445566778899aabbccddeeff insecure=1",
		"status format=text format=text",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff insecure=1 manager",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff insecure=1 =1",
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

static void test_dns_keys(void **state)
{
	struct ctl_req r;
	char err[160];
	static const char *bad[] = {
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff namespace=Default",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff namespace=",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff also_proxy=a,,b",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff never_proxy=.",
		"connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff dns=maybe",
		"status namespace=default",
	};
	(void)state;
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff "
			       "namespace=kube-system also_proxy=corp.example,internal never_proxy=x.cluster.local dns=off "
			       "fingerprint=" FP,
			       &r), 0);
	assert_string_equal(r.ns, "kube-system");
	assert_string_equal(r.also_proxy, "corp.example,internal");
	assert_string_equal(r.never_proxy, "x.cluster.local");
	assert_true(r.no_dns);
	assert_int_equal(parse("connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff insecure=1", &r), 0);
	assert_string_equal(r.ns, "");
	assert_false(r.no_dns);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		assert_int_equal(ctl_parse(bad[i], strlen(bad[i]), &r, err, sizeof(err)), -EINVAL);
		assert_true(err[0] != 0);
	}
}

static void test_resolv_parse(void **state)
{
	static const char text[] =
		"# a comment\n; another\n"
		"nameserver 203.0.113.53\n"
		"nameserver   fe80::1%eth0\n"
		"nameserver 10.0.0.2 # trailing\n"
		"nameserver nonsense\n"
		"search old.example\n"
		"search corp.example lab.example\n"
		"options ndots:2 rotate  edns0\n"
		"nameserver 10.0.0.3\n"
		"nameserver 10.0.0.4\n"
		"sortlist 130.155.160.0/255.255.240.0\n"
		"\tnameserver\n";
	struct resolv_conf rc;
	(void)state;
	resolv_conf_parse(text, sizeof(text) - 1, &rc);
	assert_int_equal(rc.n_ns, 3); /* glibc keeps three */
	assert_int_equal(rc.ns[0], 0xcb007135);
	assert_int_equal(rc.ns[1], 0x0a000002);
	assert_int_equal(rc.ns[2], 0x0a000003);
	assert_int_equal(rc.n_ns6, 1);
	assert_int_equal(rc.n_search, 2); /* the last search line wins */
	assert_string_equal(rc.search[0], "corp.example");
	assert_string_equal(rc.search[1], "lab.example");
	assert_int_equal(rc.n_opt, 3);
	assert_string_equal(rc.opt[1], "rotate");
	assert_false(rc.ours);
	resolv_conf_parse("", 0, &rc);
	assert_int_equal(rc.n_ns, 0);
	resolv_conf_parse(RESOLV_MARK " x\nnameserver 1.2.3.4", strlen(RESOLV_MARK " x\nnameserver 1.2.3.4"), &rc);
	assert_true(rc.ours);
	assert_int_equal(rc.n_ns, 1);
}

static void test_resolv_render(void **state)
{
	static const char orig[] = "nameserver 203.0.113.53\nsearch corp.example cluster.local\noptions rotate timeout:2\n";
	const char *search[] = { "default.svc.cluster.local", "svc.cluster.local", "cluster.local" };
	struct resolv_conf rc, back;
	struct resolv_render r = { &rc, orig, sizeof(orig) - 1, 0xc6120001, search, 3, "/run/subway/resolv-1.saved",
				   4242, 4026531999ul };
	char out[1024], again[256];
	ssize_t n;
	(void)state;
	resolv_conf_parse(orig, sizeof(orig) - 1, &rc);
	n = resolv_conf_render(&r, out, sizeof(out));
	assert_true(n > 0 && (size_t)n == strlen(out));
	assert_true(strstr(out, "/run/subway/resolv-1.saved") != NULL);
	assert_true(strstr(out, "\nnameserver 198.18.0.1\n") != NULL);
	assert_true(strstr(out, "\nsearch default.svc.cluster.local svc.cluster.local cluster.local corp.example\n"));
	assert_true(strstr(out, "\noptions timeout:2\n") != NULL);
	assert_null(strstr(out, "rotate"));
	resolv_conf_parse(out, (size_t)n, &back);
	assert_true(back.ours);
	assert_int_equal(back.n_ns, 1);
	assert_int_equal(back.ns[0], 0xc6120001);
	assert_int_equal(back.owner_pid, 4242);
	assert_int_equal(back.owner_netns, 4026531999ul);
	/* the original comes back from the file itself */
	assert_int_equal(resolv_conf_original(out, (size_t)n, again, sizeof(again)), sizeof(orig) - 1);
	assert_memory_equal(again, orig, sizeof(orig) - 1);
	assert_int_equal(resolv_conf_original(out, (size_t)n, again, 10), -ENOENT);
	assert_int_equal(resolv_conf_original(orig, sizeof(orig) - 1, again, sizeof(again)), -ENOENT);
	assert_int_equal(resolv_conf_render(&r, out, 60), -ENOSPC);
}

static void test_resolv_embedded(void **state)
{
	char orig[300], out[4096], back[300], *p;
	struct resolv_conf rc;
	struct resolv_render r = { &rc, orig, 0, 1, NULL, 0, "x", 1, 1 };
	ssize_t n;
	(void)state;
	memset(&rc, 0, sizeof(rc));
	for (size_t i = 0; i < sizeof(orig); i++)
		orig[i] = (char)(i * 7 + 3); /* every byte value, NULs and newlines included */
	for (size_t len = 0; len <= sizeof(orig); len += len < 10 ? 1 : 37) {
		r.orig_len = len;
		n = resolv_conf_render(&r, out, sizeof(out));
		assert_true(n > 0);
		assert_int_equal(resolv_conf_original(out, (size_t)n, back, sizeof(back)), len);
		assert_memory_equal(back, orig, len);
	}
	/* damage: a bad character, a wrong length, no end line */
	r.orig_len = 100;
	n = resolv_conf_render(&r, out, sizeof(out));
	p = strstr(out, RESOLV_EMBED_TAG) + strlen(RESOLV_EMBED_TAG) + 5;
	*p = '*';
	assert_int_equal(resolv_conf_original(out, (size_t)n, back, sizeof(back)), -ENOENT);
	n = resolv_conf_render(&r, out, sizeof(out));
	p = strstr(out, RESOLV_EMBED_END) + strlen(RESOLV_EMBED_END);
	*p = '9';
	assert_int_equal(resolv_conf_original(out, (size_t)n, back, sizeof(back)), -ENOENT);
	n = resolv_conf_render(&r, out, sizeof(out));
	*strstr(out, RESOLV_EMBED_END) = 0;
	assert_int_equal(resolv_conf_original(out, strlen(out), back, sizeof(back)), -ENOENT);
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

static void assert_err(const char *line, const char *want)
{
	struct ctl_req r;
	char err[200];

	err[0] = 0;
	assert_int_equal(ctl_parse(line, strlen(line), &r, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': error '%s' does not say '%s'", line, err, want);
}

#define CONN "connect manager=10.0.0.1:1 token=00112233445566778899aabbccddeeff insecure=1 "

#define SECRET "connect manager=10.0.0.1:1 token=zzsecret99 insecure=1"

/* Every error names the key and the bad value, cut when long; never the token. */
static void test_errors_name_key_and_value(void **state)
{
	char line[1200], err[200];
	struct ctl_req r;
	(void)state;
	assert_err(CONN "tos=5", "tos: '5' is not a TOS byte");
	assert_err(CONN "namespace=Default", "namespace: 'Default' is not a namespace name");
	assert_err(CONN "also_proxy=a,,b", "also_proxy: bad DNS suffix");
	assert_err(CONN "dns=maybe", "dns: 'maybe' is not on or off");
	assert_err("status format=xml", "format: 'xml' is not text or json");
	assert_err("connect manager=10.0.0.1:99999 token=00112233445566778899aabbccddeeff insecure=1",
		   "manager: '10.0.0.1:99999' is not IPv4:PORT");
	assert_err(CONN "color=blue", "unknown key 'color'");
	assert_err(CONN "tos=4 tos=8", "tos: given twice");
	assert_err("bogus x=y", "unknown request 'bogus'");
	/* the token's value is not echoed */
	assert_err("connect manager=10.0.0.1:1 token=zz112233445566778899aabbccddeeff insecure=1",
		   "token: its value (not shown, 32 bytes)");
	assert_int_equal(ctl_parse(SECRET, strlen(SECRET), &r, err, sizeof(err)),
			 -EINVAL);
	assert_null(strstr(err, "zzsecret"));
	/* a long value is cut, control bytes do not reach the log as such */
	snprintf(line, sizeof(line), CONN "namespace=%0200d", 7);
	assert_int_equal(ctl_parse(line, strlen(line), &r, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "...'"));
	assert_true(strlen(err) < 160);
	assert_err(CONN "namespace=a\x1b[2Jb", "'a?[2Jb'");
}

static void fill_connect(struct ctl_req *r)
{
	memset(r, 0, sizeof(*r));
	r->verb = CTL_CONNECT;
	r->manager.addr = 0xc0a8380a;
	r->manager.port = 30443;
	memcpy(r->token_hex, "00112233445566778899aabbccddeeff", 33);
	r->has_fingerprint = true;
	for (int i = 0; i < 32; i++)
		r->fingerprint[i] = (uint8_t)(0xa0 + i);
}

static void test_encode(void **state)
{
	struct ctl_req r, back;
	char line[CTL_LINE_MAX + 1], err[200];
	ssize_t n;
	(void)state;
	fill_connect(&r);
	n = ctl_encode(&r, line, sizeof(line), err, sizeof(err));
	assert_int_equal(n, strlen(line));
	assert_string_equal(line, "connect manager=192.168.56.10:30443 token=00112233445566778899aabbccddeeff "
				  "fingerprint=sha256:a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
	r.has_owner = true;
	r.owner = 1000;
	memcpy(r.ns, "kube-system", 12);
	memcpy(r.also_proxy, "corp.example,internal", 22);
	r.no_dns = r.no_loop_guard = true;
	r.has_tos = true;
	r.tos = 184;
	assert_true(ctl_encode(&r, line, sizeof(line), err, sizeof(err)) > 0);
	assert_int_equal(ctl_parse(line, strlen(line), &back, err, sizeof(err)), 0);
	assert_memory_equal(&r, &back, sizeof(r));
	/* what the daemon would refuse is refused here, named */
	r.tos = 5;
	assert_int_equal(ctl_encode(&r, line, sizeof(line), err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "tos: '5'"));
	r.tos = 4;
	r.insecure = true; /* both TLS and not */
	assert_int_equal(ctl_encode(&r, line, sizeof(line), err, sizeof(err)), -EINVAL);
	r.insecure = false;
	assert_int_equal(ctl_encode(&r, line, 100, err, sizeof(err)), -ENOSPC);
	/* status and quit */
	r = (struct ctl_req){ .verb = CTL_STATUS, .text = true };
	assert_int_equal(ctl_encode(&r, line, sizeof(line), err, sizeof(err)), 18);
	assert_string_equal(line, "status format=text");
	r = (struct ctl_req){ .verb = CTL_QUIT };
	assert_int_equal(ctl_encode(&r, line, sizeof(line), err, sizeof(err)), 4);
	r = (struct ctl_req){ .verb = 0 };
	assert_int_equal(ctl_encode(&r, line, sizeof(line), err, sizeof(err)), -EINVAL);
}

static void test_set(void **state)
{
	struct ctl_req r = { .verb = CTL_CONNECT };
	char err[200];
	(void)state;
	assert_int_equal(ctl_set(&r, "namespace", "kube-system", err, sizeof(err)), 0);
	assert_string_equal(r.ns, "kube-system");
	assert_int_equal(ctl_set(&r, "namespace", "Kube", err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "'Kube' is not a namespace name (lower-case letters, digits, '-', at most 63)");
	assert_int_equal(ctl_set(&r, "owner", "1000", err, sizeof(err)), 0);
	assert_true(r.has_owner && r.owner == 1000);
	assert_int_equal(ctl_set(&r, "format", "text", err, sizeof(err)), -ENOENT);
}

static void test_diff(void **state)
{
	struct ctl_req a, b;
	char out[1024];
	(void)state;
	fill_connect(&a);
	fill_connect(&b);
	b.has_owner = true; /* not a session option: another user, same session */
	b.owner = 1000;
	b.token_hex[0] = 'f';
	assert_int_equal(ctl_diff(&a, &b, out, sizeof(out)), 0);
	assert_string_equal(out, "");
	memcpy(b.ns, "kube-system", 12);
	b.no_dns = true;
	assert_int_equal(ctl_diff(&a, &b, out, sizeof(out)), 2);
	assert_string_equal(out, "--namespace (asked: kube-system, running: default), --no-dns (asked: yes, running: no)");
	fill_connect(&b);
	b.manager.port = 30444;
	b.has_fingerprint = false;
	b.insecure = true;
	assert_int_equal(ctl_diff(&a, &b, out, sizeof(out)), 3);
	assert_non_null(strstr(out, "--manager (asked: 192.168.56.10:30444, running: 192.168.56.10:30443)"));
	assert_non_null(strstr(out, "--insecure (asked: yes, running: no)"));
	assert_int_equal(ctl_diff(&a, &b, out, 20), 3); /* cut, still terminated */
	assert_true(strlen(out) < 20);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verbs),
		cmocka_unit_test(test_connect_tls),
		cmocka_unit_test(test_loop_guard_keys),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_dns_keys),
		cmocka_unit_test(test_resolv_parse),
		cmocka_unit_test(test_resolv_render),
		cmocka_unit_test(test_resolv_embedded),
		cmocka_unit_test(test_errors_name_key_and_value),
		cmocka_unit_test(test_encode),
		cmocka_unit_test(test_set),
		cmocka_unit_test(test_diff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
