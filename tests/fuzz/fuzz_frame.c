/* libFuzzer target for the tunnel frame codec (src/proto/frame.c).
 *
 * The input is read as a frame: a header, then a payload that every
 * decoder is tried on (or the whole input, when it has no valid header).
 * Whatever decodes must re-encode to exactly the same bytes: the wire
 * format has a single encoding for each message, so this checks that the
 * decoders accept nothing the encoders cannot produce, and that both
 * apply the same field rules. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/frame.h"
#include "proto/intercept.h"

#include "fuzz.h"

static uint8_t out[FRAME_MAX];

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
	struct msg_intercept ic;
	struct msg_intercept_result ir;
	struct msg_intercept_state is;
	struct msg_agent_hello ah;
	struct msg_agent_rules ar;
	struct msg_agent_stats as;
	struct msg_query q;
};

/* Data fields must point inside the payload. */
static void check_data(const uint8_t *d, uint16_t dlen, const uint8_t *p, size_t len)
{
	if (!d || d < p || (size_t)(d - p) > len || dlen > len - (size_t)(d - p))
		abort();
}

/* Decodes p as a message of the given type and re-encodes it into out.
 * Returns the frame length, or -1 if the payload does not decode. */
static ssize_t roundtrip(uint8_t type, const uint8_t *p, size_t len)
{
	union any_msg m;

	switch (type) {
	case FT_HELLO:
		return msg_hello_decode(p, len, &m.hello) ? -1 : msg_hello_encode(out, sizeof(out), &m.hello);
	case FT_AUTH:
		return msg_auth_decode(p, len, &m.auth) ? -1 : msg_auth_encode(out, sizeof(out), &m.auth);
	case FT_AUTH_OK:
		return msg_auth_ok_decode(p, len, &m.auth_ok) ? -1 : msg_auth_ok_encode(out, sizeof(out), &m.auth_ok);
	case FT_AUTH_FAIL:
	case FT_ERROR:
		return msg_text_decode(p, len, &m.text) ? -1 : msg_text_encode(out, sizeof(out), type, m.text.text);
	case FT_CLUSTER_INFO:
		return msg_cluster_info_decode(p, len, &m.ci) ? -1 : msg_cluster_info_encode(out, sizeof(out), &m.ci);
	case FT_DIAL:
		return msg_dial_decode(p, len, &m.dial) ? -1 : msg_dial_encode(out, sizeof(out), &m.dial);
	case FT_DIAL_RESULT:
		return msg_dial_result_decode(p, len, &m.dr) ? -1 : msg_dial_result_encode(out, sizeof(out), &m.dr);
	case FT_UDP:
		if (msg_udp_decode(p, len, &m.udp))
			return -1;
		check_data(m.udp.data, m.udp.len, p, len);
		return msg_udp_encode(out, sizeof(out), &m.udp);
	case FT_UDP_CLOSE:
		return msg_udp_close_decode(p, len, &m.uc) ? -1 : msg_udp_close_encode(out, sizeof(out), &m.uc);
	case FT_PING:
		if (msg_ping_decode(p, len, &m.ping))
			return -1;
		check_data(m.ping.data, m.ping.len, p, len);
		return msg_ping_encode(out, sizeof(out), &m.ping);
	case FT_PONG:
		if (msg_pong_decode(p, len, &m.pong))
			return -1;
		check_data(m.pong.data, m.pong.len, p, len);
		return msg_pong_encode(out, sizeof(out), &m.pong);
	case FT_DNS_QUERY:
	case FT_DNS_REPLY:
		if (msg_dns_decode(p, len, &m.dns))
			return -1;
		check_data(m.dns.data, m.dns.len, p, len);
		return msg_dns_encode(out, sizeof(out), type, &m.dns);
	case FT_HEARTBEAT:
	case FT_HEARTBEAT_ACK:
		return msg_heartbeat_decode(p, len, &m.hb) ? -1 : msg_heartbeat_encode(out, sizeof(out), type, &m.hb);
	case FT_STREAM_OPEN:
	case FT_STREAM_RESULT:
	case FT_STREAM_DATA:
	case FT_STREAM_FIN:
	case FT_STREAM_RST:
	case FT_STREAM_CREDIT:
		if (msg_stream_decode(type, p, len, &m.st))
			return -1;
		if (type == FT_STREAM_DATA) {
			check_data(m.st.data, 0, p, len);
			if (m.st.len > len - (size_t)(m.st.data - p))
				abort();
		}
		return msg_stream_encode(out, sizeof(out), type, &m.st);
	case FT_INTERCEPT:
		return msg_intercept_decode(p, len, &m.ic) ? -1 : msg_intercept_encode(out, sizeof(out), &m.ic);
	case FT_INTERCEPT_RESULT:
		return msg_intercept_result_decode(p, len, &m.ir) ? -1
								   : msg_intercept_result_encode(out, sizeof(out), &m.ir);
	case FT_INTERCEPT_STATE:
		return msg_intercept_state_decode(p, len, &m.is) ? -1
								  : msg_intercept_state_encode(out, sizeof(out), &m.is);
	case FT_AGENT_HELLO:
		if (msg_agent_hello_decode(p, len, &m.ah))
			return -1;
		check_data(m.ah.env, m.ah.env_len, p, len);
		return msg_agent_hello_encode(out, sizeof(out), &m.ah);
	case FT_AGENT_RULES:
		return msg_agent_rules_decode(p, len, &m.ar) ? -1 : msg_agent_rules_encode(out, sizeof(out), &m.ar);
	case FT_AGENT_STATS:
		return msg_agent_stats_decode(p, len, &m.as) ? -1 : msg_agent_stats_encode(out, sizeof(out), &m.as);
	case FT_LEAVE:
	case FT_LIST:
	case FT_LIST_REPLY:
	case FT_ENV:
	case FT_ENV_REPLY:
		if (msg_query_decode(type, p, len, &m.q))
			return -1;
		if (m.q.len)
			check_data(m.q.data, m.q.len, p, len);
		return msg_query_encode(out, sizeof(out), type, &m.q);
	}
	abort();
}

static void check_header(const uint8_t *data, size_t size)
{
	struct frame_hdr h;
	uint8_t again[FRAME_HDR_LEN];
	int r = frame_hdr_decode(data, size, FRAME_MAX_PAYLOAD, &h);

	if (r == 0 && size >= FRAME_HDR_LEN)
		abort();
	if (r != FRAME_HDR_LEN)
		return;
	if (h.type == 0 || h.type >= FT_MAX_ || h.flags || h.len > FRAME_MAX_PAYLOAD)
		abort();
	frame_hdr_encode(again, h.type, h.len);
	if (memcmp(again, data, FRAME_HDR_LEN))
		abort();
	r = frame_hdr_decode(data, size, FRAME_MAX_PAYLOAD_PREAUTH, &h);
	if (r != FRAME_HDR_LEN && r != -EMSGSIZE)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_hdr h;
	const uint8_t *p = data;
	size_t len = size;
	uint16_t v;

	check_header(data, size);
	if (msg_version_peek(data, size, &v) != (size >= 2 ? 0 : -EBADMSG))
		abort();
	if (frame_hdr_decode(data, size, FRAME_MAX_PAYLOAD, &h) == FRAME_HDR_LEN) {
		p = data + FRAME_HDR_LEN;
		len = size - FRAME_HDR_LEN;
	}
	for (uint8_t t = 1; t < FT_MAX_; t++) {
		ssize_t n = roundtrip(t, p, len);
		if (n == -1)
			continue;
		/* the same bytes, behind a header for this type */
		if (n < 0 || (size_t)n != FRAME_HDR_LEN + len || out[0] != t ||
		    memcmp(out + FRAME_HDR_LEN, p, len) != 0)
			abort();
		if (p != data && h.type == t && h.len == len && memcmp(out, data, size) != 0)
			abort();
	}
	return 0;
}
