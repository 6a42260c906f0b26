/* Unit tests for the tunnel frame codec (src/proto/frame.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/cursor.h"
#include "proto/frame.h"

/* ---- sample messages, one per encoder ---- */

union any_msg {
	struct msg_hello hello;
	struct msg_auth auth;
	struct msg_auth_ok auth_ok;
	struct msg_text text;
	struct msg_cluster_info ci;
	struct msg_dial dial;
	struct msg_dial_result dr;
	struct msg_udp udp;
	struct msg_udp_close uc;
	struct msg_ping ping;
	struct msg_pong pong;
	struct msg_dns dns;
	struct msg_heartbeat hb;
	struct msg_stream st;
};

static uint8_t s_data[1400];
static struct msg_hello s_hello;
static struct msg_auth s_auth_ctl, s_auth_flow;
static struct msg_auth_ok s_auth_ok;
static struct msg_cluster_info s_ci;
static const struct msg_dial s_dial = { .addr = 0x0a2a0105, .port = 8080, .timeout_ms = 5000 };
static const struct msg_dial_result s_dr = { .status = DIAL_REFUSED };
static struct msg_udp s_udp;
static const struct msg_udp_close s_uc = { .flow = 0xdeadbeef };
static struct msg_ping s_ping;
static struct msg_pong s_pong;
static struct msg_dns s_dns;
static const struct msg_heartbeat s_hb = { .t = 0x0102030405060708ull };
static const char s_text[] = "unsupported version 9";

static void fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

static void samples_init(void)
{
	fill(s_data, sizeof(s_data), 7);
	memset(&s_hello, 0, sizeof(s_hello));
	s_hello.version = PROTO_VERSION;
	fill(s_hello.nonce, sizeof(s_hello.nonce), 0x20);
	strcpy(s_hello.server, "subway 0.1.0");

	memset(&s_auth_ctl, 0, sizeof(s_auth_ctl));
	s_auth_ctl.version = PROTO_VERSION;
	s_auth_ctl.kind = CONN_CONTROL;
	fill(s_auth_ctl.nonce, sizeof(s_auth_ctl.nonce), 0x40);
	fill(s_auth_ctl.mac, sizeof(s_auth_ctl.mac), 0x80);
	strcpy(s_auth_ctl.client, "subway 0.1.0 (laptop)");
	s_auth_flow = s_auth_ctl;
	s_auth_flow.kind = CONN_FLOW;
	fill(s_auth_flow.session, sizeof(s_auth_flow.session), 0x60);

	memset(&s_auth_ok, 0, sizeof(s_auth_ok));
	fill(s_auth_ok.session, sizeof(s_auth_ok.session), 0x60);
	fill(s_auth_ok.mac, sizeof(s_auth_ok.mac), 0xa0);

	memset(&s_ci, 0, sizeof(s_ci));
	s_ci.pod.n = 2;
	s_ci.pod.v[0] = (struct cidr4){ 0x0a2a0000, 16 };
	s_ci.pod.v[1] = (struct cidr4){ 0x0a2b0100, 24 };
	s_ci.svc.n = 1;
	s_ci.svc.v[0] = (struct cidr4){ 0x0a2b0000, 16 };
	strcpy(s_ci.domain, "cluster.local");
	s_ci.dns = 0x0a2b000a;
	s_ci.n_nodes = 3;
	s_ci.nodes[0] = 0xc0a83802;
	s_ci.nodes[1] = 0xc0a83803;
	s_ci.nodes[2] = 0xc0a83804;
	s_ci.n_managers = 1;
	s_ci.managers[0] = 0x0a2a0007;
	s_ci.tos = 0x28;
	strcpy(s_ci.version, "subway 0.1.0");
	s_ci.src[INFO_SRC_POD] = SRC_DERIVED;
	s_ci.src[INFO_SRC_SVC] = SRC_ENV;
	s_ci.src[INFO_SRC_DOMAIN] = SRC_DEFAULT;
	s_ci.src[INFO_SRC_DNS] = SRC_FLAG;
	s_ci.src[INFO_SRC_NODES] = SRC_NONE;

	s_udp = (struct msg_udp){ .flow = 7, .src = 0x0a000001, .sport = 40000, .dst = 0x0a2b0005,
				  .dport = 53, .data = s_data, .len = 100 };
	s_ping = (struct msg_ping){ .id = 9, .dst = 0x0a2a0105, .ident = 0x1234, .seq = 3,
				    .data = s_data, .len = 56 };
	s_pong = (struct msg_pong){ .id = 9, .status = PONG_REPLY, .src = 0x0a2a0105, .ident = 0x1234,
				    .seq = 3, .data = s_data, .len = 56 };
	s_dns = (struct msg_dns){ .id = 77, .data = s_data, .len = 40 };
}

/* ---- one table row per message: encode the sample, decode, compare ---- */

struct msg_case {
	const char *name;
	uint8_t type;
	ssize_t (*encode)(uint8_t *out, size_t cap);
	int (*decode)(const uint8_t *p, size_t len, union any_msg *m);
	int (*equal)(const union any_msg *m); /* decoded == sample */
};

static int data_eq(const uint8_t *a, uint16_t alen, const uint8_t *b, uint16_t blen)
{
	return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static ssize_t enc_hello(uint8_t *o, size_t c) { return msg_hello_encode(o, c, &s_hello); }
static int dec_hello(const uint8_t *p, size_t n, union any_msg *m) { return msg_hello_decode(p, n, &m->hello); }
static int eq_hello(const union any_msg *m) { return !memcmp(&m->hello, &s_hello, sizeof(s_hello)); }

static ssize_t enc_auth_ctl(uint8_t *o, size_t c) { return msg_auth_encode(o, c, &s_auth_ctl); }
static ssize_t enc_auth_flow(uint8_t *o, size_t c) { return msg_auth_encode(o, c, &s_auth_flow); }
static int dec_auth(const uint8_t *p, size_t n, union any_msg *m) { return msg_auth_decode(p, n, &m->auth); }
static int eq_auth_ctl(const union any_msg *m) { return !memcmp(&m->auth, &s_auth_ctl, sizeof(s_auth_ctl)); }
static int eq_auth_flow(const union any_msg *m) { return !memcmp(&m->auth, &s_auth_flow, sizeof(s_auth_flow)); }

static ssize_t enc_auth_ok(uint8_t *o, size_t c) { return msg_auth_ok_encode(o, c, &s_auth_ok); }
static int dec_auth_ok(const uint8_t *p, size_t n, union any_msg *m) { return msg_auth_ok_decode(p, n, &m->auth_ok); }
static int eq_auth_ok(const union any_msg *m) { return !memcmp(&m->auth_ok, &s_auth_ok, sizeof(s_auth_ok)); }

static ssize_t enc_auth_fail(uint8_t *o, size_t c) { return msg_text_encode(o, c, FT_AUTH_FAIL, s_text); }
static ssize_t enc_error(uint8_t *o, size_t c) { return msg_text_encode(o, c, FT_ERROR, "manager shutting down"); }
static int dec_text(const uint8_t *p, size_t n, union any_msg *m) { return msg_text_decode(p, n, &m->text); }
static int eq_auth_fail(const union any_msg *m) { return !strcmp(m->text.text, s_text); }
static int eq_error(const union any_msg *m) { return !strcmp(m->text.text, "manager shutting down"); }

static ssize_t enc_ci(uint8_t *o, size_t c) { return msg_cluster_info_encode(o, c, &s_ci); }
static int dec_ci(const uint8_t *p, size_t n, union any_msg *m) { return msg_cluster_info_decode(p, n, &m->ci); }
static int eq_ci(const union any_msg *m) { return !memcmp(&m->ci, &s_ci, sizeof(s_ci)); }

static ssize_t enc_dial(uint8_t *o, size_t c) { return msg_dial_encode(o, c, &s_dial); }
static int dec_dial(const uint8_t *p, size_t n, union any_msg *m) { return msg_dial_decode(p, n, &m->dial); }
static int eq_dial(const union any_msg *m)
{
	return m->dial.addr == s_dial.addr && m->dial.port == s_dial.port &&
	       m->dial.timeout_ms == s_dial.timeout_ms;
}

static ssize_t enc_dr(uint8_t *o, size_t c) { return msg_dial_result_encode(o, c, &s_dr); }
static int dec_dr(const uint8_t *p, size_t n, union any_msg *m) { return msg_dial_result_decode(p, n, &m->dr); }
static int eq_dr(const union any_msg *m) { return m->dr.status == s_dr.status; }

static ssize_t enc_udp(uint8_t *o, size_t c) { return msg_udp_encode(o, c, &s_udp); }
static int dec_udp(const uint8_t *p, size_t n, union any_msg *m) { return msg_udp_decode(p, n, &m->udp); }
static int eq_udp(const union any_msg *m)
{
	const struct msg_udp *u = &m->udp;
	return u->flow == s_udp.flow && u->src == s_udp.src && u->sport == s_udp.sport &&
	       u->dst == s_udp.dst && u->dport == s_udp.dport &&
	       data_eq(u->data, u->len, s_udp.data, s_udp.len);
}

static ssize_t enc_uc(uint8_t *o, size_t c) { return msg_udp_close_encode(o, c, &s_uc); }
static int dec_uc(const uint8_t *p, size_t n, union any_msg *m) { return msg_udp_close_decode(p, n, &m->uc); }
static int eq_uc(const union any_msg *m) { return m->uc.flow == s_uc.flow; }

static ssize_t enc_ping(uint8_t *o, size_t c) { return msg_ping_encode(o, c, &s_ping); }
static int dec_ping(const uint8_t *p, size_t n, union any_msg *m) { return msg_ping_decode(p, n, &m->ping); }
static int eq_ping(const union any_msg *m)
{
	const struct msg_ping *q = &m->ping;
	return q->id == s_ping.id && q->dst == s_ping.dst && q->ident == s_ping.ident &&
	       q->seq == s_ping.seq && data_eq(q->data, q->len, s_ping.data, s_ping.len);
}

static ssize_t enc_pong(uint8_t *o, size_t c) { return msg_pong_encode(o, c, &s_pong); }
static int dec_pong(const uint8_t *p, size_t n, union any_msg *m) { return msg_pong_decode(p, n, &m->pong); }
static int eq_pong(const union any_msg *m)
{
	const struct msg_pong *q = &m->pong;
	return q->id == s_pong.id && q->status == s_pong.status && q->src == s_pong.src &&
	       q->ident == s_pong.ident && q->seq == s_pong.seq &&
	       data_eq(q->data, q->len, s_pong.data, s_pong.len);
}

static ssize_t enc_dnsq(uint8_t *o, size_t c) { return msg_dns_encode(o, c, FT_DNS_QUERY, &s_dns); }
static ssize_t enc_dnsr(uint8_t *o, size_t c) { return msg_dns_encode(o, c, FT_DNS_REPLY, &s_dns); }
static int dec_dns(const uint8_t *p, size_t n, union any_msg *m) { return msg_dns_decode(p, n, &m->dns); }
static int eq_dns(const union any_msg *m)
{
	return m->dns.id == s_dns.id && data_eq(m->dns.data, m->dns.len, s_dns.data, s_dns.len);
}

static ssize_t enc_hb(uint8_t *o, size_t c) { return msg_heartbeat_encode(o, c, FT_HEARTBEAT, &s_hb); }
static ssize_t enc_hba(uint8_t *o, size_t c) { return msg_heartbeat_encode(o, c, FT_HEARTBEAT_ACK, &s_hb); }
static int dec_hb(const uint8_t *p, size_t n, union any_msg *m) { return msg_heartbeat_decode(p, n, &m->hb); }
static int eq_hb(const union any_msg *m) { return m->hb.t == s_hb.t; }

static const struct msg_stream s_sopen = { .id = 0x01020304,
					    .dial = { .addr = 0x0a2b0014, .port = 80, .timeout_ms = 5000 } };
static const struct msg_stream s_sres = { .id = 7, .status = DIAL_UNREACHABLE };
static const struct msg_stream s_sid = { .id = 0xfffffffe };
static const struct msg_stream s_scredit = { .id = 9, .credit = 131072 };

static ssize_t enc_sopen(uint8_t *o, size_t c) { return msg_stream_encode(o, c, FT_STREAM_OPEN, &s_sopen); }
static ssize_t enc_sres(uint8_t *o, size_t c) { return msg_stream_encode(o, c, FT_STREAM_RESULT, &s_sres); }
static ssize_t enc_sfin(uint8_t *o, size_t c) { return msg_stream_encode(o, c, FT_STREAM_FIN, &s_sid); }
static ssize_t enc_srst(uint8_t *o, size_t c) { return msg_stream_encode(o, c, FT_STREAM_RST, &s_sid); }
static ssize_t enc_scredit(uint8_t *o, size_t c) { return msg_stream_encode(o, c, FT_STREAM_CREDIT, &s_scredit); }
static int dec_sopen(const uint8_t *p, size_t n, union any_msg *m) { return msg_stream_decode(FT_STREAM_OPEN, p, n, &m->st); }
static int dec_sres(const uint8_t *p, size_t n, union any_msg *m) { return msg_stream_decode(FT_STREAM_RESULT, p, n, &m->st); }
static int dec_sfin(const uint8_t *p, size_t n, union any_msg *m) { return msg_stream_decode(FT_STREAM_FIN, p, n, &m->st); }
static int dec_srst(const uint8_t *p, size_t n, union any_msg *m) { return msg_stream_decode(FT_STREAM_RST, p, n, &m->st); }
static int dec_scredit(const uint8_t *p, size_t n, union any_msg *m) { return msg_stream_decode(FT_STREAM_CREDIT, p, n, &m->st); }
static int eq_sopen(const union any_msg *m)
{
	return m->st.id == s_sopen.id && m->st.dial.addr == s_sopen.dial.addr &&
	       m->st.dial.port == s_sopen.dial.port && m->st.dial.timeout_ms == s_sopen.dial.timeout_ms;
}
static int eq_sres(const union any_msg *m) { return m->st.id == s_sres.id && m->st.status == s_sres.status; }
static int eq_sid(const union any_msg *m) { return m->st.id == s_sid.id; }
static int eq_scredit(const union any_msg *m) { return m->st.id == s_scredit.id && m->st.credit == s_scredit.credit; }

static const struct msg_case cases[] = {
	{ "hello", FT_HELLO, enc_hello, dec_hello, eq_hello },
	{ "auth control", FT_AUTH, enc_auth_ctl, dec_auth, eq_auth_ctl },
	{ "auth flow", FT_AUTH, enc_auth_flow, dec_auth, eq_auth_flow },
	{ "auth-ok", FT_AUTH_OK, enc_auth_ok, dec_auth_ok, eq_auth_ok },
	{ "auth-fail", FT_AUTH_FAIL, enc_auth_fail, dec_text, eq_auth_fail },
	{ "error", FT_ERROR, enc_error, dec_text, eq_error },
	{ "cluster-info", FT_CLUSTER_INFO, enc_ci, dec_ci, eq_ci },
	{ "dial", FT_DIAL, enc_dial, dec_dial, eq_dial },
	{ "dial-result", FT_DIAL_RESULT, enc_dr, dec_dr, eq_dr },
	{ "udp", FT_UDP, enc_udp, dec_udp, eq_udp },
	{ "udp-close", FT_UDP_CLOSE, enc_uc, dec_uc, eq_uc },
	{ "ping", FT_PING, enc_ping, dec_ping, eq_ping },
	{ "pong", FT_PONG, enc_pong, dec_pong, eq_pong },
	{ "dns-query", FT_DNS_QUERY, enc_dnsq, dec_dns, eq_dns },
	{ "dns-reply", FT_DNS_REPLY, enc_dnsr, dec_dns, eq_dns },
	{ "heartbeat", FT_HEARTBEAT, enc_hb, dec_hb, eq_hb },
	{ "heartbeat-ack", FT_HEARTBEAT_ACK, enc_hba, dec_hb, eq_hb },
	/* STREAM_DATA is the rest of its payload: test_stream_data */
	{ "stream-open", FT_STREAM_OPEN, enc_sopen, dec_sopen, eq_sopen },
	{ "stream-result", FT_STREAM_RESULT, enc_sres, dec_sres, eq_sres },
	{ "stream-fin", FT_STREAM_FIN, enc_sfin, dec_sfin, eq_sid },
	{ "stream-rst", FT_STREAM_RST, enc_srst, dec_srst, eq_sid },
	{ "stream-credit", FT_STREAM_CREDIT, enc_scredit, dec_scredit, eq_scredit },
};

static uint8_t frame_buf[FRAME_MAX + 16];

/* Encodes a case's sample; returns the frame length. */
static size_t encode_case(const struct msg_case *mc)
{
	ssize_t n = mc->encode(frame_buf, sizeof(frame_buf));
	struct frame_hdr h;

	if (n < FRAME_HDR_LEN)
		fail_msg("%s: encode returned %zd", mc->name, n);
	assert_int_equal(frame_hdr_decode(frame_buf, (size_t)n, FRAME_MAX_PAYLOAD, &h), FRAME_HDR_LEN);
	assert_int_equal(h.type, mc->type);
	assert_int_equal(h.len, (size_t)n - FRAME_HDR_LEN);
	return (size_t)n;
}

/* Decodes len bytes of payload from an exact-size heap copy, so that
 * AddressSanitizer sees any read past the end. */
static int decode_copy(const struct msg_case *mc, const uint8_t *p, size_t len, union any_msg *m)
{
	uint8_t *copy = malloc(len ? len : 1);
	int ret;

	assert_non_null(copy);
	memcpy(copy, p, len);
	ret = mc->decode(copy, len, m);
	if (ret == 0 && !mc->equal(m)) /* before free: data points into copy */
		ret = 1;
	free(copy);
	return ret;
}

static void test_roundtrip_every_message(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct msg_case *mc = &cases[i];
		size_t n = encode_case(mc);
		union any_msg m;

		/* Decode in place: data fields point into the input. */
		if (mc->decode(frame_buf + FRAME_HDR_LEN, n - FRAME_HDR_LEN, &m) != 0 || !mc->equal(&m))
			fail_msg("%s: did not round-trip", mc->name);
		assert_string_not_equal(frame_type_name(mc->type), "unknown");
	}
}

static void test_every_truncation_and_trailing_byte(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct msg_case *mc = &cases[i];
		size_t n = encode_case(mc), plen = n - FRAME_HDR_LEN;
		union any_msg m;

		for (size_t k = 0; k < plen; k++)
			if (decode_copy(mc, frame_buf + FRAME_HDR_LEN, k, &m) != -EBADMSG)
				fail_msg("%s: truncation to %zu of %zu bytes accepted", mc->name, k, plen);
		frame_buf[n] = 0;
		if (decode_copy(mc, frame_buf + FRAME_HDR_LEN, plen + 1, &m) != -EBADMSG)
			fail_msg("%s: trailing byte accepted", mc->name);
		assert_int_equal(decode_copy(mc, frame_buf + FRAME_HDR_LEN, plen, &m), 0);
	}
}

static void test_encoders_too_small_cap(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const struct msg_case *mc = &cases[i];
		size_t n = encode_case(mc);

		for (size_t cap = 0; cap <= n; cap++) {
			uint8_t *out = malloc(cap ? cap : 1); /* exact size for ASan */
			ssize_t r;

			assert_non_null(out);
			r = mc->encode(cap ? out : NULL, cap);
			if (cap < n && r != -ENOSPC)
				fail_msg("%s: cap %zu of %zu gave %zd", mc->name, cap, n, r);
			if (cap == n && (r != (ssize_t)n || memcmp(out, frame_buf, n)))
				fail_msg("%s: exact cap failed", mc->name);
			free(out);
		}
	}
}

/* ---- header ---- */

static void test_hdr_roundtrip_and_short(void **state)
{
	uint8_t b[FRAME_HDR_LEN];
	struct frame_hdr h;

	(void)state;
	frame_hdr_encode(b, FT_UDP, 0x01020304);
	const uint8_t want[] = { 8, 0, 0, 0, 1, 2, 3, 4 };
	assert_memory_equal(b, want, sizeof(want));
	for (size_t k = 0; k < FRAME_HDR_LEN; k++)
		assert_int_equal(frame_hdr_decode(b, k, UINT32_MAX, &h), 0);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), UINT32_MAX, &h), FRAME_HDR_LEN);
	assert_int_equal(h.type, FT_UDP);
	assert_int_equal(h.flags, 0);
	assert_int_equal(h.len, 0x01020304);
}

static void test_hdr_bad_fields(void **state)
{
	uint8_t b[FRAME_HDR_LEN];
	struct frame_hdr h;

	(void)state;
	frame_hdr_encode(b, FT_HELLO, 10);
	for (int i = 1; i <= 3; i++) { /* flags, reserved hi, reserved lo */
		uint8_t c[FRAME_HDR_LEN];
		memcpy(c, b, sizeof(c));
		c[i] = 0x80;
		assert_int_equal(frame_hdr_decode(c, sizeof(c), FRAME_MAX_PAYLOAD, &h), -EBADMSG);
		c[i] = 1;
		assert_int_equal(frame_hdr_decode(c, sizeof(c), FRAME_MAX_PAYLOAD, &h), -EBADMSG);
	}
	const uint8_t bad_types[] = { 0, FT_MAX_, 100, 255 };
	for (size_t i = 0; i < sizeof(bad_types); i++) {
		b[0] = bad_types[i];
		assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD, &h), -EBADMSG);
	}
	for (uint8_t t = 1; t < FT_MAX_; t++) {
		b[0] = t;
		assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD, &h), FRAME_HDR_LEN);
		assert_string_not_equal(frame_type_name(t), "unknown");
	}
	assert_string_equal(frame_type_name(0), "unknown");
	assert_string_equal(frame_type_name(FT_MAX_), "unknown");
	assert_string_equal(frame_type_name(FT_AUTH_OK), "auth-ok");
}

static void test_hdr_lengths(void **state)
{
	uint8_t b[FRAME_HDR_LEN];
	struct frame_hdr h;

	(void)state;
	frame_hdr_encode(b, FT_UDP, FRAME_MAX_PAYLOAD);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD, &h), FRAME_HDR_LEN);
	assert_int_equal(h.len, FRAME_MAX_PAYLOAD);
	frame_hdr_encode(b, FT_UDP, FRAME_MAX_PAYLOAD + 1);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD, &h), -EMSGSIZE);
	frame_hdr_encode(b, FT_UDP, 0xffffffffu);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD, &h), -EMSGSIZE);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), 0, &h), -EMSGSIZE);
	frame_hdr_encode(b, FT_AUTH, FRAME_MAX_PAYLOAD_PREAUTH);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD_PREAUTH, &h), FRAME_HDR_LEN);
	frame_hdr_encode(b, FT_AUTH, FRAME_MAX_PAYLOAD_PREAUTH + 1);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD_PREAUTH, &h), -EMSGSIZE);
	frame_hdr_encode(b, FT_HEARTBEAT, 0);
	assert_int_equal(frame_hdr_decode(b, sizeof(b), 0, &h), FRAME_HDR_LEN);
	/* a bad header is refused before its length is looked at */
	frame_hdr_encode(b, FT_UDP, 0xffffffffu);
	b[1] = 1;
	assert_int_equal(frame_hdr_decode(b, sizeof(b), FRAME_MAX_PAYLOAD, &h), -EBADMSG);
}

/* The largest datagram fits in the largest frame, and every pre-auth frame
 * in the pre-auth limit. */
static void test_limits_fit(void **state)
{
	static uint8_t big[65535];
	struct msg_udp u = s_udp;
	struct msg_pong po = s_pong;
	union any_msg m;
	ssize_t n;

	(void)state;
	u.data = big;
	u.len = sizeof(big);
	n = msg_udp_encode(frame_buf, sizeof(frame_buf), &u);
	assert_true(n > 0 && (size_t)n <= FRAME_MAX);
	assert_int_equal(msg_udp_decode(frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &m.udp), 0);
	assert_int_equal(m.udp.len, sizeof(big));
	assert_ptr_equal(m.udp.data, frame_buf + FRAME_HDR_LEN + 18);
	po.data = big;
	po.len = sizeof(big);
	n = msg_pong_encode(frame_buf, sizeof(frame_buf), &po);
	assert_true(n > 0 && (size_t)n <= FRAME_MAX);

	/* largest strings everywhere */
	struct msg_auth a = s_auth_flow;
	memset(a.client, 'x', sizeof(a.client) - 1);
	n = msg_auth_encode(frame_buf, sizeof(frame_buf), &a);
	assert_true(n > 0 && (size_t)n - FRAME_HDR_LEN <= FRAME_MAX_PAYLOAD_PREAUTH);
	char t[PROTO_TEXT_MAX];
	memset(t, 'y', sizeof(t) - 1);
	t[sizeof(t) - 1] = 0;
	n = msg_text_encode(frame_buf, sizeof(frame_buf), FT_AUTH_FAIL, t);
	assert_true(n > 0 && (size_t)n - FRAME_HDR_LEN <= FRAME_MAX_PAYLOAD_PREAUTH);
	assert_int_equal(msg_text_decode(frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &m.text), 0);
	assert_string_equal(m.text.text, t);
}

/* Exact bytes, so that the layout in docs/protocol.md cannot drift. */
static void test_wire_bytes(void **state)
{
	const uint8_t dial[] = { 6, 0, 0, 0, 0, 0, 0, 10, 10, 42, 1, 5, 0x1f, 0x90, 0, 0, 0x13, 0x88 };
	const uint8_t text[] = { 4, 0, 0, 0, 0, 0, 0, 4, 3, 'b', 'a', 'd' };
	const uint8_t hb[] = { 15, 0, 0, 0, 0, 0, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8 };
	const uint8_t uc[] = { 9, 0, 0, 0, 0, 0, 0, 4, 0xde, 0xad, 0xbe, 0xef };
	uint8_t b[64];

	(void)state;
	assert_int_equal(msg_dial_encode(b, sizeof(b), &s_dial), sizeof(dial));
	assert_memory_equal(b, dial, sizeof(dial));
	assert_int_equal(msg_text_encode(b, sizeof(b), FT_AUTH_FAIL, "bad"), sizeof(text));
	assert_memory_equal(b, text, sizeof(text));
	assert_int_equal(msg_heartbeat_encode(b, sizeof(b), FT_HEARTBEAT_ACK, &s_hb), sizeof(hb));
	assert_memory_equal(b, hb, sizeof(hb));
	assert_int_equal(msg_udp_close_encode(b, sizeof(b), &s_uc), sizeof(uc));
	assert_memory_equal(b, uc, sizeof(uc));
}

/* ---- field rules: what encoders refuse with -EINVAL, decoders with -EBADMSG ---- */

/* Encodes a case's sample, sets the payload byte at off to val, and
 * expects the decoder to refuse it. */
static void expect_bad_byte(const struct msg_case *mc, size_t off, uint8_t val)
{
	size_t n = encode_case(mc);
	union any_msg m;

	assert_true(FRAME_HDR_LEN + off < n);
	frame_buf[FRAME_HDR_LEN + off] = val;
	if (decode_copy(mc, frame_buf + FRAME_HDR_LEN, n - FRAME_HDR_LEN, &m) != -EBADMSG)
		fail_msg("%s: byte %zu = 0x%02x accepted", mc->name, off, val);
}

static const struct msg_case *find_case(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (!strcmp(cases[i].name, name))
			return &cases[i];
	fail_msg("no case %s", name);
	return NULL;
}

static void test_bad_strings(void **state)
{
	const struct msg_case *hello = find_case("hello"), *fail = find_case("auth-fail");
	const size_t str = 2 + PROTO_NONCE_LEN; /* offset of hello's string length */

	(void)state;
	expect_bad_byte(hello, str, 0);                        /* empty */
	expect_bad_byte(hello, str, PROTO_NAME_MAX);           /* no room for the NUL */
	expect_bad_byte(hello, str, 255);                      /* past the end */
	expect_bad_byte(hello, str + 3, 0);                    /* embedded NUL */
	expect_bad_byte(hello, str + 3, '\n');                 /* control characters */
	expect_bad_byte(hello, str + 3, 0x1b);
	expect_bad_byte(hello, str + 3, 0x7f);
	expect_bad_byte(hello, str + 3, 0xc3);
	expect_bad_byte(fail, 0, 0);
	expect_bad_byte(fail, 2, '\r');

	struct msg_hello h = s_hello;
	memset(h.server, 'a', sizeof(h.server)); /* not terminated */
	assert_int_equal(msg_hello_encode(frame_buf, sizeof(frame_buf), &h), -EINVAL);
	h.server[sizeof(h.server) - 1] = 0;      /* 31 bytes: the longest */
	assert_true(msg_hello_encode(frame_buf, sizeof(frame_buf), &h) > 0);
	h.server[0] = 0;
	assert_int_equal(msg_hello_encode(frame_buf, sizeof(frame_buf), &h), -EINVAL);
	strcpy(h.server, "a\tb");
	assert_int_equal(msg_hello_encode(frame_buf, sizeof(frame_buf), &h), -EINVAL);

	char t[PROTO_TEXT_MAX + 1];
	memset(t, 'y', PROTO_TEXT_MAX);
	t[PROTO_TEXT_MAX] = 0;                   /* 256 bytes: one too many */
	assert_int_equal(msg_text_encode(frame_buf, sizeof(frame_buf), FT_ERROR, t), -EINVAL);
	assert_int_equal(msg_text_encode(frame_buf, sizeof(frame_buf), FT_ERROR, ""), -EINVAL);
	assert_int_equal(msg_text_encode(frame_buf, sizeof(frame_buf), FT_ERROR, "a\nb"), -EINVAL);
	assert_int_equal(msg_text_encode(frame_buf, sizeof(frame_buf), FT_HELLO, "x"), -EINVAL);
	/* invalid beats too small */
	assert_int_equal(msg_text_encode(frame_buf, 3, FT_ERROR, ""), -EINVAL);
}

static void test_bad_hello_auth(void **state)
{
	const struct msg_case *hello = find_case("hello"), *ctl = find_case("auth control"),
			      *flow = find_case("auth flow"), *ok = find_case("auth-ok");
	struct msg_auth a;
	struct msg_auth_ok o = s_auth_ok;
	uint16_t v;
	size_t n0;

	(void)state;
	expect_bad_byte(hello, 1, 0);  /* version 0 */
	expect_bad_byte(ctl, 1, 0);
	expect_bad_byte(ctl, 2, 0);    /* kind */
	expect_bad_byte(ctl, 2, 3);
	expect_bad_byte(ctl, 2, CONN_FLOW); /* a flow with no session */
	expect_bad_byte(ctl, 3 + 15, 1);    /* a control connection naming a session */
	expect_bad_byte(flow, 2, CONN_CONTROL);
	expect_bad_byte(flow, 2, CONN_LANE + 1); /* no such kind */
	a = s_auth_flow; /* a lane's trunk names its session, as a trunk does */
	a.kind = CONN_LANE;
	n0 = (size_t)msg_auth_encode(frame_buf, sizeof(frame_buf), &a);
	assert_int_equal(msg_auth_decode(frame_buf + FRAME_HDR_LEN, n0 - FRAME_HDR_LEN, &a), 0);
	assert_int_equal(a.kind, CONN_LANE);
	memset(a.session, 0, sizeof(a.session));
	assert_int_equal(msg_auth_encode(frame_buf, sizeof(frame_buf), &a), -EINVAL);
	memset(&o.session, 0, sizeof(o.session));
	assert_int_equal(msg_auth_ok_encode(frame_buf, sizeof(frame_buf), &o), -EINVAL);
	size_t n = encode_case(ok);
	memset(frame_buf + FRAME_HDR_LEN, 0, PROTO_SESSION_LEN);
	union any_msg m;
	assert_int_equal(decode_copy(ok, frame_buf + FRAME_HDR_LEN, n - FRAME_HDR_LEN, &m), -EBADMSG);

	a = s_auth_ctl;
	a.kind = 0;
	assert_int_equal(msg_auth_encode(frame_buf, sizeof(frame_buf), &a), -EINVAL);
	a = s_auth_ctl;
	a.session[0] = 1;
	assert_int_equal(msg_auth_encode(frame_buf, sizeof(frame_buf), &a), -EINVAL);
	a = s_auth_flow;
	a.version = 0;
	assert_int_equal(msg_auth_encode(frame_buf, sizeof(frame_buf), &a), -EINVAL);

	/* another version with the v1 layout decodes; one with a different
	 * layout does not, but its version can still be read */
	a = s_auth_flow;
	a.version = 2;
	n = (size_t)msg_auth_encode(frame_buf, sizeof(frame_buf), &a);
	assert_int_equal(msg_auth_decode(frame_buf + FRAME_HDR_LEN, n - FRAME_HDR_LEN, &m.auth), 0);
	assert_int_equal(m.auth.version, 2);
	const uint8_t future[] = { 0x01, 0x02, 0xff };
	assert_int_equal(msg_auth_decode(future, sizeof(future), &m.auth), -EBADMSG);
	assert_int_equal(msg_version_peek(future, sizeof(future), &v), 0);
	assert_int_equal(v, 0x0102);
	assert_int_equal(msg_version_peek(future, 1, &v), -EBADMSG);
	assert_int_equal(msg_version_peek(NULL, 0, &v), -EBADMSG);
}

/* Builds a CLUSTER_INFO payload by hand, with the given CIDR and address
 * counts, to check the decoder's caps. */
static size_t ci_payload_src(uint8_t *b, size_t cap, int npod, uint32_t addr, uint8_t len, int nnodes, int nmgr,
			     uint8_t src)
{
	struct wcursor w;

	wcursor_init(&w, b, cap);
	wcursor_u8(&w, (uint8_t)npod);
	for (int i = 0; i < npod; i++) {
		wcursor_u32(&w, addr + ((uint32_t)i << 24));
		wcursor_u8(&w, len);
	}
	wcursor_u8(&w, 1);
	wcursor_u32(&w, 0x0a2b0000);
	wcursor_u8(&w, 16);
	wcursor_str8(&w, "cluster.local");
	wcursor_u32(&w, 0);
	wcursor_u8(&w, (uint8_t)nnodes);
	for (int i = 0; i < nnodes; i++)
		wcursor_u32(&w, 0xc0a80000u + (uint32_t)i);
	wcursor_u8(&w, (uint8_t)nmgr);
	for (int i = 0; i < nmgr; i++)
		wcursor_u32(&w, 0x0a2a0000u + (uint32_t)i);
	wcursor_u8(&w, 0);
	wcursor_str8(&w, "v");
	for (int i = 0; i < INFO_SRC_MAX_; i++)
		wcursor_u8(&w, src);
	assert_true(wcursor_result(&w) > 0);
	return (size_t)wcursor_result(&w);
}

static size_t ci_payload(uint8_t *b, size_t cap, int npod, uint32_t addr, uint8_t len, int nnodes, int nmgr)
{
	return ci_payload_src(b, cap, npod, addr, len, nnodes, nmgr, SRC_DERIVED);
}

static void test_bad_cluster_info(void **state)
{
	uint8_t b[1024];
	struct msg_cluster_info m, c;
	size_t n;

	(void)state;
	n = ci_payload(b, sizeof(b), CIDR_LIST_MAX, 0x0a000000, 8, PROTO_NODES_MAX, PROTO_MANAGERS_MAX);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), 0);
	assert_int_equal(m.pod.n, CIDR_LIST_MAX);
	assert_int_equal(m.n_nodes, PROTO_NODES_MAX);
	assert_int_equal(m.n_managers, PROTO_MANAGERS_MAX);
	assert_int_equal(msg_cluster_info_encode(frame_buf, sizeof(frame_buf), &m), n + FRAME_HDR_LEN);
	assert_memory_equal(frame_buf + FRAME_HDR_LEN, b, n);

	n = ci_payload(b, sizeof(b), 0, 0, 0, 0, 0);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload(b, sizeof(b), CIDR_LIST_MAX + 1, 0x0a000000, 8, 0, 0);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload(b, sizeof(b), 1, 0x0a2a0001, 16, 0, 0); /* host bits */
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload(b, sizeof(b), 1, 0x0a2a0001, 32, 0, 0); /* a /32 */
	assert_int_equal(msg_cluster_info_decode(b, n, &m), 0);
	n = ci_payload(b, sizeof(b), 1, 0x0a2a0000, 33, 0, 0);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload(b, sizeof(b), 1, 0, 0, 0, 0);           /* 0.0.0.0/0 */
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload(b, sizeof(b), 1, 0x0a000000, 8, PROTO_NODES_MAX + 1, 0);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload(b, sizeof(b), 1, 0x0a000000, 8, 0, PROTO_MANAGERS_MAX + 1);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload(b, sizeof(b), 1, 0x0a000000, 8, 0, 0);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), 0);
	assert_int_equal(m.n_nodes, 0);

	const struct { int field; int val; } bad[] = {
		{ 0, 0 }, { 0, CIDR_LIST_MAX + 1 }, { 0, -1 }, { 1, 0 },
		{ 2, PROTO_NODES_MAX + 1 }, { 2, -1 }, { 3, PROTO_MANAGERS_MAX + 1 }, { 4, 0 },
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		c = s_ci;
		if (bad[i].field == 0)
			c.pod.n = bad[i].val;
		else if (bad[i].field == 1)
			c.svc.n = bad[i].val;
		else if (bad[i].field == 2)
			c.n_nodes = bad[i].val;
		else if (bad[i].field == 3)
			c.n_managers = bad[i].val;
		else
			c.svc.v[0].len = 33;
		if (msg_cluster_info_encode(frame_buf, sizeof(frame_buf), &c) != -EINVAL)
			fail_msg("cluster-info bad field %zu encoded", i);
	}
	c = s_ci;
	c.pod.v[1].addr |= 1;
	assert_int_equal(msg_cluster_info_encode(frame_buf, sizeof(frame_buf), &c), -EINVAL);
	c = s_ci;
	c.domain[0] = 0;
	assert_int_equal(msg_cluster_info_encode(frame_buf, sizeof(frame_buf), &c), -EINVAL);
	/* the sources: each a known value, and all five present */
	c = s_ci;
	c.src[INFO_SRC_NODES] = SRC_MAX_;
	assert_int_equal(msg_cluster_info_encode(frame_buf, sizeof(frame_buf), &c), -EINVAL);
	n = ci_payload_src(b, sizeof(b), 1, 0x0a000000, 8, 0, 0, SRC_MAX_);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), -EBADMSG);
	n = ci_payload_src(b, sizeof(b), 1, 0x0a000000, 8, 0, 0, SRC_DEFAULT);
	assert_int_equal(msg_cluster_info_decode(b, n, &m), 0);
	assert_int_equal(m.src[INFO_SRC_DNS], SRC_DEFAULT);
	assert_int_equal(msg_cluster_info_decode(b, n - 1, &m), -EBADMSG);
}

static void test_bad_dial(void **state)
{
	const struct msg_case *dial = find_case("dial"), *dr = find_case("dial-result");
	struct msg_dial d = s_dial;
	struct msg_dial_result r;
	union any_msg m;
	ssize_t n;

	(void)state;
	n = (ssize_t)encode_case(dial);
	frame_buf[FRAME_HDR_LEN + 4] = frame_buf[FRAME_HDR_LEN + 5] = 0; /* port 0 */
	assert_int_equal(decode_copy(dial, frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &m), -EBADMSG);
	d.port = 0;
	assert_int_equal(msg_dial_encode(frame_buf, sizeof(frame_buf), &d), -EINVAL);
	d = s_dial;
	d.timeout_ms = PROTO_DIAL_TIMEOUT_MAX_MS + 1;
	assert_int_equal(msg_dial_encode(frame_buf, sizeof(frame_buf), &d), -EINVAL);
	expect_bad_byte(dial, 6, 0xff); /* timeout way over the cap */
	d.timeout_ms = PROTO_DIAL_TIMEOUT_MAX_MS;
	n = msg_dial_encode(frame_buf, sizeof(frame_buf), &d);
	assert_int_equal(msg_dial_decode(frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &m.dial), 0);
	d.timeout_ms = 0; /* the manager's default */
	n = msg_dial_encode(frame_buf, sizeof(frame_buf), &d);
	assert_int_equal(msg_dial_decode(frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &m.dial), 0);

	for (int s = 0; s < DIAL_STATUS_MAX_; s++) {
		r.status = (uint8_t)s;
		n = msg_dial_result_encode(frame_buf, sizeof(frame_buf), &r);
		assert_int_equal(n, FRAME_HDR_LEN + 1);
		assert_string_not_equal(dial_status_name((uint8_t)s), "unknown");
	}
	assert_string_equal(dial_status_name(DIAL_OK), "ok");
	assert_string_equal(dial_status_name(DIAL_REFUSED), "refused");
	assert_string_equal(dial_status_name(DIAL_STATUS_MAX_), "unknown");
	r.status = DIAL_STATUS_MAX_;
	assert_int_equal(msg_dial_result_encode(frame_buf, sizeof(frame_buf), &r), -EINVAL);
	expect_bad_byte(dr, 0, DIAL_STATUS_MAX_);
	expect_bad_byte(dr, 0, 0xff);
}

static void test_stream_data(void **state)
{
	static uint8_t big[4 + STREAM_DATA_MAX + 1];
	struct msg_stream m = { .id = 42, .data = s_data, .len = 1 };
	struct msg_stream d;
	uint8_t hdr[STREAM_DATA_HDR_LEN];
	ssize_t n;

	(void)state;
	for (uint32_t len = 1; len <= sizeof(s_data); len += 233) {
		m.len = len;
		n = msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_DATA, &m);
		assert_int_equal(n, STREAM_DATA_HDR_LEN + len);
		/* the header written ahead of bytes read into place is the same */
		stream_data_hdr(hdr, 42, len);
		assert_memory_equal(hdr, frame_buf, STREAM_DATA_HDR_LEN);
		assert_int_equal(msg_stream_decode(FT_STREAM_DATA, frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &d), 0);
		assert_int_equal(d.id, 42);
		assert_int_equal(d.len, len);
		assert_ptr_equal(d.data, frame_buf + STREAM_DATA_HDR_LEN);
	}
	/* empty, too long, no data pointer */
	m.len = 0;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_DATA, &m), -EINVAL);
	assert_int_equal(msg_stream_decode(FT_STREAM_DATA, frame_buf + FRAME_HDR_LEN, 4, &d), -EBADMSG);
	m.data = big;
	m.len = STREAM_DATA_MAX + 1;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_DATA, &m), -EINVAL);
	assert_int_equal(msg_stream_decode(FT_STREAM_DATA, big, sizeof(big), &d), -EBADMSG);
	assert_int_equal(msg_stream_decode(FT_STREAM_DATA, big, sizeof(big) - 1, &d), 0);
	assert_int_equal(d.len, STREAM_DATA_MAX);
	m.data = NULL;
	m.len = 5;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_DATA, &m), -EINVAL);
	assert_int_equal(msg_stream_decode(FT_STREAM_DATA, frame_buf, 3, &d), -EBADMSG);
}

static void test_bad_stream(void **state)
{
	struct msg_stream m = s_scredit;

	(void)state;
	m.credit = 0;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_CREDIT, &m), -EINVAL);
	m.credit = STREAM_CREDIT_MAX + 1;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_CREDIT, &m), -EINVAL);
	expect_bad_byte(find_case("stream-credit"), 4, 0xff); /* credit over the cap */
	m = s_sres;
	m.status = DIAL_STATUS_MAX_;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_RESULT, &m), -EINVAL);
	expect_bad_byte(find_case("stream-result"), 4, DIAL_STATUS_MAX_);
	m = s_sopen;
	m.dial.port = 0;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_OPEN, &m), -EINVAL);
	m = s_sopen;
	m.dial.timeout_ms = PROTO_DIAL_TIMEOUT_MAX_MS + 1;
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_STREAM_OPEN, &m), -EINVAL);
	/* not a stream type */
	assert_int_equal(msg_stream_encode(frame_buf, sizeof(frame_buf), FT_DIAL, &s_sid), -EINVAL);
}

static void test_bad_data(void **state)
{
	const struct msg_case *pong = find_case("pong"), *dns = find_case("dns-query");
	struct msg_pong po = s_pong;
	struct msg_dns q = s_dns;
	struct msg_udp u = s_udp;
	struct msg_heartbeat hb = s_hb;
	union any_msg m;
	ssize_t n;

	(void)state;
	po.status = PONG_STATUS_MAX_;
	assert_int_equal(msg_pong_encode(frame_buf, sizeof(frame_buf), &po), -EINVAL);
	expect_bad_byte(pong, 4, PONG_STATUS_MAX_);

	/* data lengths: too long for the payload, zero where not allowed */
	expect_bad_byte(dns, 4, 0xff);
	q.len = 0;
	assert_int_equal(msg_dns_encode(frame_buf, sizeof(frame_buf), FT_DNS_QUERY, &q), -EINVAL);
	const uint8_t empty_dns[] = { 0, 0, 0, 1, 0, 0 };
	assert_int_equal(msg_dns_decode(empty_dns, sizeof(empty_dns), &m.dns), -EBADMSG);
	q = s_dns;
	q.data = NULL;
	assert_int_equal(msg_dns_encode(frame_buf, sizeof(frame_buf), FT_DNS_REPLY, &q), -EINVAL);
	assert_int_equal(msg_dns_encode(frame_buf, sizeof(frame_buf), FT_UDP, &s_dns), -EINVAL);

	u.len = 0; /* an empty datagram is legal */
	u.data = NULL;
	n = msg_udp_encode(frame_buf, sizeof(frame_buf), &u);
	assert_int_equal(n, FRAME_HDR_LEN + 18);
	assert_int_equal(msg_udp_decode(frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &m.udp), 0);
	assert_int_equal(m.udp.len, 0);
	assert_non_null(m.udp.data);
	u.len = 1;
	assert_int_equal(msg_udp_encode(frame_buf, sizeof(frame_buf), &u), -EINVAL);

	assert_int_equal(msg_heartbeat_encode(frame_buf, sizeof(frame_buf), FT_PING, &hb), -EINVAL);
	hb.t = UINT64_MAX;
	n = msg_heartbeat_encode(frame_buf, sizeof(frame_buf), FT_HEARTBEAT, &hb);
	assert_int_equal(msg_heartbeat_decode(frame_buf + FRAME_HDR_LEN, (size_t)n - FRAME_HDR_LEN, &m.hb), 0);
	assert_true(m.hb.t == UINT64_MAX);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip_every_message),
		cmocka_unit_test(test_every_truncation_and_trailing_byte),
		cmocka_unit_test(test_encoders_too_small_cap),
		cmocka_unit_test(test_hdr_roundtrip_and_short),
		cmocka_unit_test(test_hdr_bad_fields),
		cmocka_unit_test(test_hdr_lengths),
		cmocka_unit_test(test_limits_fit),
		cmocka_unit_test(test_wire_bytes),
		cmocka_unit_test(test_bad_strings),
		cmocka_unit_test(test_bad_hello_auth),
		cmocka_unit_test(test_bad_cluster_info),
		cmocka_unit_test(test_bad_dial),
		cmocka_unit_test(test_bad_data),
		cmocka_unit_test(test_stream_data),
		cmocka_unit_test(test_bad_stream),
	};

	samples_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
