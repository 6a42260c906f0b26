/* Unit tests for the intercept messages (src/proto/intercept.c): every
 * message round-trips to the same bytes, and the decoders refuse what
 * breaks a field rule.  With SUBWAY_WRITE_CORPUS=DIR set, each encoded
 * frame is also written there (the fuzz_frame seeds). */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/intercept.h"

static uint8_t buf[FRAME_MAX], again[FRAME_MAX];

static void seed(const char *name, const uint8_t *p, size_t n)
{
	const char *dir = getenv("SUBWAY_WRITE_CORPUS");
	char path[512];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb"))) {
		fwrite(p, 1, n, f);
		fclose(f);
	}
}

static struct msg_intercept personal(void)
{
	struct msg_intercept m = { .local_addr = 0x7f000001, .local_port = 8080, .mode = ICEPT_PERSONAL,
				   .client = { 1, 2, 3 } };

	strcpy(m.name, "web-alice");
	strcpy(m.ns, "default");
	strcpy(m.workload, "web");
	strcpy(m.port, "http");
	strcpy(m.holder, "alice@laptop");
	m.filter.n_headers = 1;
	strcpy(m.filter.hname[0], "x-dev");
	strcpy(m.filter.hvalue[0], "alice");
	strcpy(m.filter.path_prefix, "/api");
	return m;
}

static void test_intercept_roundtrip(void **state)
{
	struct msg_intercept m = personal(), d;
	ssize_t n = msg_intercept_encode(buf, sizeof(buf), &m);

	(void)state;
	assert_true(n > FRAME_HDR_LEN);
	seed("intercept", buf, (size_t)n);
	assert_int_equal(msg_intercept_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &d), 0);
	assert_string_equal(d.filter.hvalue[0], "alice");
	assert_string_equal(d.filter.path_prefix, "/api");
	assert_memory_equal(d.client, m.client, ICEPT_CLIENT_LEN);
	assert_int_equal(msg_intercept_encode(again, sizeof(again), &d), n);
	assert_memory_equal(again, buf, (size_t)n);
	/* trailing bytes, a cut, a bad mode */
	assert_int_equal(msg_intercept_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN + 1, &d), -EBADMSG);
	assert_int_equal(msg_intercept_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN - 1, &d), -EBADMSG);
	/* resume is a flag: 0 or 1 */
	m.resume = 1;
	assert_int_equal(msg_intercept_encode(buf, sizeof(buf), &m), n);
	assert_int_equal(msg_intercept_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &d), 0);
	assert_int_equal(d.resume, 1);
	buf[n - 1] = 2;
	assert_int_equal(msg_intercept_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &d), -EBADMSG);
}

static void test_intercept_rules(void **state)
{
	struct msg_intercept m = personal();

	(void)state;
	m.mode = ICEPT_GLOBAL; /* a global intercept has no filter */
	assert_true(msg_intercept_encode(buf, sizeof(buf), &m) < 0);
	m = personal();
	strcpy(m.workload, "web/x"); /* names never hold '/' */
	assert_true(msg_intercept_encode(buf, sizeof(buf), &m) < 0);
	m = personal();
	strcpy(m.filter.path_prefix, "api"); /* a path starts with '/' */
	assert_true(msg_intercept_encode(buf, sizeof(buf), &m) < 0);
	m = personal();
	strcpy(m.filter.hname[0], "x dev");
	assert_true(msg_intercept_encode(buf, sizeof(buf), &m) < 0);
	m = personal();
	m.local_port = 0;
	assert_true(msg_intercept_encode(buf, sizeof(buf), &m) < 0);
	m = personal();
	m.port[0] = 0; /* the workload's only port */
	m.filter.path_prefix[0] = 0;
	assert_true(msg_intercept_encode(buf, sizeof(buf), &m) > 0);
}

static void test_result_and_state(void **state)
{
	struct msg_intercept_result r = { .status = ICEPT_OK, .id = 7, .port = 80, .proto = IPPROTO_TCP }, rd;
	struct msg_intercept_state s = { .state = ICEPT_INACTIVE, .pods = 2, .connections = 5, .requests = 9 }, sd;
	ssize_t n;

	(void)state;
	strcpy(r.name, "web-alice");
	n = msg_intercept_result_encode(buf, sizeof(buf), &r);
	assert_true(n > 0);
	seed("intercept-result", buf, (size_t)n);
	assert_int_equal(msg_intercept_result_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &rd), 0);
	assert_int_equal(rd.id, 7);
	assert_int_equal(rd.proto, IPPROTO_TCP);
	r.proto = IPPROTO_UDP;
	assert_true(msg_intercept_result_encode(buf, sizeof(buf), &r) > 0);
	r.proto = 0; /* taken: TCP or UDP */
	assert_true(msg_intercept_result_encode(buf, sizeof(buf), &r) < 0);
	r.proto = IPPROTO_TCP;
	r.status = ICEPT_REFUSED; /* refused: no id, no protocol */
	assert_true(msg_intercept_result_encode(buf, sizeof(buf), &r) < 0);
	r.id = 0;
	assert_true(msg_intercept_result_encode(buf, sizeof(buf), &r) < 0);
	r.proto = 0;
	strcpy(r.text, "port 80 of default/web is held by bob@laptop (personal, x-dev=bob)");
	assert_true(msg_intercept_result_encode(buf, sizeof(buf), &r) > 0);
	strcpy(s.name, "web-alice");
	n = msg_intercept_state_encode(buf, sizeof(buf), &s);
	assert_true(n > 0);
	seed("intercept-state", buf, (size_t)n);
	assert_int_equal(msg_intercept_state_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &sd), 0);
	assert_int_equal(sd.requests, 9);
	s.state = 9;
	assert_true(msg_intercept_state_encode(buf, sizeof(buf), &s) < 0);
}

static void test_agent_hello(void **state)
{
	static const char env[] = "HOME=/\0WEIRD=a=b \"c\"\nd\0";
	struct msg_agent_hello m = { .pod_ip = 0x0a2a0102, .n_ports = 2, .env = (const uint8_t *)env,
				     .env_len = sizeof(env) - 1 },
			       d;
	ssize_t n;

	(void)state;
	strcpy(m.pod, "web-0");
	strcpy(m.ns, "default");
	strcpy(m.workload, "web");
	m.ports[0] = (struct icept_port){ .name = "http", .port = 80, .proto = IPPROTO_TCP };
	m.ports[1] = (struct icept_port){ .port = 9090, .proto = IPPROTO_UDP };
	n = msg_agent_hello_encode(buf, sizeof(buf), &m);
	assert_true(n > 0);
	seed("agent-hello", buf, (size_t)n);
	assert_int_equal(msg_agent_hello_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &d), 0);
	assert_int_equal(d.env_len, m.env_len);
	assert_memory_equal(d.env, env, m.env_len);
	assert_string_equal(d.ports[0].name, "http");
	assert_string_equal(d.ports[1].name, "");
	m.env_len = 5; /* "HOME=" without its NUL */
	assert_true(msg_agent_hello_encode(buf, sizeof(buf), &m) < 0);
	m.env = (const uint8_t *)"=x"; /* an empty key */
	m.env_len = 3;
	assert_true(msg_agent_hello_encode(buf, sizeof(buf), &m) < 0);
}

static void test_rules_stats_queries(void **state)
{
	struct msg_agent_rules r = { .gen = 77, .n = 2 }, rd;
	struct msg_agent_stats s = { .gen = 77, .n = 1, .s = { { .id = 4, .connections = 3, .requests = 2, .dropped = 1 } } }, sd;
	struct msg_query q = { .id = 9 }, qd;
	ssize_t n;

	(void)state;
	r.r[0] = (struct icept_rule){ .id = 4, .port = 80, .proto = IPPROTO_TCP, .mode = ICEPT_GLOBAL, .active = true };
	r.r[1] = (struct icept_rule){ .id = 5, .port = 80, .proto = IPPROTO_TCP, .mode = ICEPT_PERSONAL };
	r.r[1].filter.n_headers = 1;
	strcpy(r.r[1].filter.hname[0], "x-dev");
	strcpy(r.r[1].filter.hvalue[0], "bob");
	n = msg_agent_rules_encode(buf, sizeof(buf), &r);
	assert_true(n > 0);
	seed("agent-rules", buf, (size_t)n);
	assert_int_equal(msg_agent_rules_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &rd), 0);
	assert_true(rd.r[0].active && !rd.r[1].active);
	assert_int_equal(rd.gen, 77);
	assert_string_equal(rd.r[1].filter.hvalue[0], "bob");
	n = msg_agent_stats_encode(buf, sizeof(buf), &s);
	assert_true(n > 0);
	seed("agent-stats", buf, (size_t)n);
	assert_int_equal(msg_agent_stats_decode(buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &sd), 0);
	assert_int_equal(sd.s[0].dropped, 1);
	assert_int_equal(sd.gen, 77);
	n = msg_query_encode(buf, sizeof(buf), FT_LIST, &q); /* "" lists every namespace */
	assert_true(n > 0);
	seed("list", buf, (size_t)n);
	assert_int_equal(msg_query_decode(FT_LIST, buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &qd), 0);
	assert_true(msg_query_encode(buf, sizeof(buf), FT_LEAVE, &q) < 0); /* LEAVE names one */
	q.data = (const uint8_t *)"{\"workloads\": []}";
	q.len = 17;
	n = msg_query_encode(buf, sizeof(buf), FT_LIST_REPLY, &q);
	assert_true(n > 0);
	seed("list-reply", buf, (size_t)n);
	assert_int_equal(msg_query_decode(FT_LIST_REPLY, buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &qd), 0);
	assert_int_equal(qd.len, 17);
	assert_int_equal(msg_query_decode(FT_ENV_REPLY, buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &qd),
			 -EBADMSG); /* not KEY=VALUE entries */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_intercept_roundtrip),
		cmocka_unit_test(test_intercept_rules),
		cmocka_unit_test(test_result_and_state),
		cmocka_unit_test(test_agent_hello),
		cmocka_unit_test(test_rules_stats_queries),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
