/* Tunnel frame codec; the wire layouts are in docs/protocol.md. */
#include "proto/frame.h"

#include <errno.h>
#include <string.h>

#include "common/cursor.h"

static const char *const frame_type_names[FT_MAX_] = {
	[FT_HELLO] = "hello",
	[FT_AUTH] = "auth",
	[FT_AUTH_OK] = "auth-ok",
	[FT_AUTH_FAIL] = "auth-fail",
	[FT_CLUSTER_INFO] = "cluster-info",
	[FT_DIAL] = "dial",
	[FT_DIAL_RESULT] = "dial-result",
	[FT_UDP] = "udp",
	[FT_UDP_CLOSE] = "udp-close",
	[FT_PING] = "ping",
	[FT_PONG] = "pong",
	[FT_DNS_QUERY] = "dns-query",
	[FT_DNS_REPLY] = "dns-reply",
	[FT_HEARTBEAT] = "heartbeat",
	[FT_HEARTBEAT_ACK] = "heartbeat-ack",
	[FT_ERROR] = "error",
	[FT_STREAM_OPEN] = "stream-open",
	[FT_STREAM_RESULT] = "stream-result",
	[FT_STREAM_DATA] = "stream-data",
	[FT_STREAM_FIN] = "stream-fin",
	[FT_STREAM_RST] = "stream-rst",
	[FT_STREAM_CREDIT] = "stream-credit",
	[FT_INTERCEPT] = "intercept",
	[FT_INTERCEPT_RESULT] = "intercept-result",
	[FT_INTERCEPT_STATE] = "intercept-state",
	[FT_LEAVE] = "leave",
	[FT_LIST] = "list",
	[FT_LIST_REPLY] = "list-reply",
	[FT_ENV] = "env",
	[FT_ENV_REPLY] = "env-reply",
	[FT_AGENT_HELLO] = "agent-hello",
	[FT_AGENT_RULES] = "agent-rules",
	[FT_AGENT_STATS] = "agent-stats",
};

static const char *const dial_status_names[DIAL_STATUS_MAX_] = {
	[DIAL_OK] = "ok",
	[DIAL_REFUSED] = "refused",
	[DIAL_UNREACHABLE] = "unreachable",
	[DIAL_TIMEOUT] = "timeout",
	[DIAL_FORBIDDEN] = "forbidden",
	[DIAL_ERROR] = "error",
	[DIAL_LIMIT] = "limit",
};

const char *frame_type_name(uint8_t type)
{
	if (type >= FT_MAX_ || !frame_type_names[type])
		return "unknown";
	return frame_type_names[type];
}

const char *info_source_name(uint8_t src)
{
	static const char *const names[SRC_MAX_] = {
		[SRC_NONE] = "none", [SRC_FLAG] = "flag", [SRC_ENV] = "env", [SRC_DERIVED] = "derived",
		[SRC_DEFAULT] = "default",
	};
	return src < SRC_MAX_ ? names[src] : "?";
}

const char *dial_status_name(uint8_t status)
{
	return status < DIAL_STATUS_MAX_ ? dial_status_names[status] : "unknown";
}

int frame_hdr_decode(const uint8_t *buf, size_t len, size_t max_payload, struct frame_hdr *hdr)
{
	struct cursor c;
	uint8_t type, flags;
	uint16_t reserved;
	uint32_t plen;

	if (len < FRAME_HDR_LEN)
		return 0;
	cursor_init(&c, buf, FRAME_HDR_LEN);
	type = cursor_u8(&c);
	flags = cursor_u8(&c);
	reserved = cursor_u16(&c);
	plen = cursor_u32(&c);
	if (flags || reserved || type == 0 || type >= FT_MAX_)
		return -EBADMSG;
	if (plen > max_payload)
		return -EMSGSIZE;
	hdr->type = type;
	hdr->flags = flags;
	hdr->len = plen;
	return FRAME_HDR_LEN;
}

void frame_hdr_encode(uint8_t out[FRAME_HDR_LEN], uint8_t type, uint32_t len)
{
	struct wcursor w;

	wcursor_init(&w, out, FRAME_HDR_LEN);
	wcursor_u8(&w, type);
	wcursor_u8(&w, 0);
	wcursor_u16(&w, 0);
	wcursor_u32(&w, len);
}

/* ---- shared field rules ---- */

/* Strings are 1..size-1 bytes of printable ASCII: they end up in logs and
 * on the user's terminal, so a peer must not be able to send escapes. */
static bool text_ok(const char *s, size_t size)
{
	size_t n = strnlen(s, size);

	if (n == 0 || n == size)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch > 0x7e)
			return false;
	}
	return true;
}

static void get_text(struct cursor *c, char *out, size_t size)
{
	cursor_str8(c, out, size);
	if (!c->err && !text_ok(out, size))
		cursor_fail(c);
}

static void put_text(struct wcursor *w, const char *s, size_t size)
{
	if (!text_ok(s, size)) {
		w->inval = true;
		return;
	}
	wcursor_str8(w, s);
}

/* A datagram or DNS message: u16 length, then the bytes (in place). */
static void get_data(struct cursor *c, const uint8_t **data, uint16_t *len)
{
	*len = cursor_u16(c);
	*data = cursor_ref(c, *len);
	if (!*data)
		*len = 0;
}

static void put_data(struct wcursor *w, const uint8_t *data, uint16_t len)
{
	if (len && !data) {
		w->inval = true;
		return;
	}
	wcursor_u16(w, len);
	wcursor_bytes(w, data, len);
}

static bool all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/* A control connection has no session yet; a flow connection names one. */
static bool auth_session_ok(uint8_t kind, const uint8_t session[PROTO_SESSION_LEN])
{
	if (kind == CONN_CONTROL || kind == CONN_AGENT) /* no session yet, or none ever */
		return all_zero(session, PROTO_SESSION_LEN);
	if (kind == CONN_FLOW || kind == CONN_TRUNK || kind == CONN_LANE)
		return !all_zero(session, PROTO_SESSION_LEN);
	return false;
}

/* CIDRs of a cluster: 1..32 bits (a cluster never claims the whole address
 * space), host bits clear. */
static bool cidr_ok(uint32_t addr, uint8_t len)
{
	return len >= 1 && len <= 32 && !(addr & ~cidr4_mask(len));
}

static void get_cidrs(struct cursor *c, struct cidr_list *l)
{
	uint8_t n = cursor_u8(c);

	l->n = 0;
	if (n == 0 || n > CIDR_LIST_MAX) {
		cursor_fail(c);
		return;
	}
	for (int i = 0; i < n; i++) {
		uint32_t addr = cursor_u32(c);
		uint8_t len = cursor_u8(c);
		if (c->err || !cidr_ok(addr, len)) {
			cursor_fail(c);
			return;
		}
		l->v[i].addr = addr;
		l->v[i].len = len;
	}
	l->n = n;
}

static void put_cidrs(struct wcursor *w, const struct cidr_list *l)
{
	if (l->n < 1 || l->n > CIDR_LIST_MAX) {
		w->inval = true;
		return;
	}
	wcursor_u8(w, (uint8_t)l->n);
	for (int i = 0; i < l->n; i++) {
		if (!cidr_ok(l->v[i].addr, l->v[i].len))
			w->inval = true;
		wcursor_u32(w, l->v[i].addr);
		wcursor_u8(w, l->v[i].len);
	}
}

/* u8 count (0..max), then count u32 addresses. */
static void get_addrs(struct cursor *c, uint32_t *v, int *n, int max)
{
	uint8_t cnt = cursor_u8(c);

	*n = 0;
	if (cnt > max) {
		cursor_fail(c);
		return;
	}
	for (int i = 0; i < cnt; i++)
		v[i] = cursor_u32(c);
	if (!c->err)
		*n = cnt;
}

static void put_addrs(struct wcursor *w, const uint32_t *v, int n, int max)
{
	if (n < 0 || n > max) {
		w->inval = true;
		return;
	}
	wcursor_u8(w, (uint8_t)n);
	for (int i = 0; i < n; i++)
		wcursor_u32(w, v[i]);
}

/* Encoders leave room for the header, write the payload, then the header
 * once the payload's length is known. */
static void frame_start(struct wcursor *w, uint8_t *out, size_t cap)
{
	static const uint8_t zero[FRAME_HDR_LEN];

	wcursor_init(w, out, cap);
	wcursor_bytes(w, zero, sizeof(zero));
}

static ssize_t frame_finish(struct wcursor *w, uint8_t type)
{
	ssize_t n = wcursor_result(w);

	if (n < 0)
		return n;
	if ((size_t)n - FRAME_HDR_LEN > FRAME_MAX_PAYLOAD)
		return -EINVAL;
	frame_hdr_encode(w->p, type, (uint32_t)((size_t)n - FRAME_HDR_LEN));
	return n;
}

/* ---- HELLO, AUTH, AUTH_OK, AUTH_FAIL/ERROR ---- */

ssize_t msg_hello_encode(uint8_t *out, size_t cap, const struct msg_hello *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (m->version == 0)
		w.inval = true;
	wcursor_u16(&w, m->version);
	wcursor_bytes(&w, m->nonce, sizeof(m->nonce));
	put_text(&w, m->server, sizeof(m->server));
	return frame_finish(&w, FT_HELLO);
}

int msg_hello_decode(const uint8_t *p, size_t len, struct msg_hello *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->version = cursor_u16(&c);
	cursor_bytes(&c, m->nonce, sizeof(m->nonce));
	get_text(&c, m->server, sizeof(m->server));
	if (m->version == 0)
		cursor_fail(&c);
	return cursor_end(&c);
}

ssize_t msg_auth_encode(uint8_t *out, size_t cap, const struct msg_auth *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (m->version == 0 || !auth_session_ok(m->kind, m->session))
		w.inval = true;
	wcursor_u16(&w, m->version);
	wcursor_u8(&w, m->kind);
	wcursor_bytes(&w, m->session, sizeof(m->session));
	wcursor_bytes(&w, m->nonce, sizeof(m->nonce));
	wcursor_bytes(&w, m->mac, sizeof(m->mac));
	put_text(&w, m->client, sizeof(m->client));
	return frame_finish(&w, FT_AUTH);
}

int msg_auth_decode(const uint8_t *p, size_t len, struct msg_auth *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->version = cursor_u16(&c);
	m->kind = cursor_u8(&c);
	cursor_bytes(&c, m->session, sizeof(m->session));
	cursor_bytes(&c, m->nonce, sizeof(m->nonce));
	cursor_bytes(&c, m->mac, sizeof(m->mac));
	get_text(&c, m->client, sizeof(m->client));
	if (m->version == 0 || !auth_session_ok(m->kind, m->session))
		cursor_fail(&c);
	return cursor_end(&c);
}

int msg_version_peek(const uint8_t *p, size_t len, uint16_t *version)
{
	struct cursor c;

	cursor_init(&c, p, len);
	*version = cursor_u16(&c);
	return c.err ? -EBADMSG : 0;
}

ssize_t msg_auth_ok_encode(uint8_t *out, size_t cap, const struct msg_auth_ok *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (all_zero(m->session, sizeof(m->session)))
		w.inval = true;
	wcursor_bytes(&w, m->session, sizeof(m->session));
	wcursor_bytes(&w, m->mac, sizeof(m->mac));
	return frame_finish(&w, FT_AUTH_OK);
}

int msg_auth_ok_decode(const uint8_t *p, size_t len, struct msg_auth_ok *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	cursor_bytes(&c, m->session, sizeof(m->session));
	cursor_bytes(&c, m->mac, sizeof(m->mac));
	if (all_zero(m->session, sizeof(m->session)))
		cursor_fail(&c);
	return cursor_end(&c);
}

ssize_t msg_text_encode(uint8_t *out, size_t cap, uint8_t type, const char *text)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (type != FT_AUTH_FAIL && type != FT_ERROR)
		w.inval = true;
	put_text(&w, text, PROTO_TEXT_MAX);
	return frame_finish(&w, type);
}

int msg_text_decode(const uint8_t *p, size_t len, struct msg_text *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	get_text(&c, m->text, sizeof(m->text));
	return cursor_end(&c);
}

/* ---- CLUSTER_INFO ---- */

ssize_t msg_cluster_info_encode(uint8_t *out, size_t cap, const struct msg_cluster_info *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	put_cidrs(&w, &m->pod);
	put_cidrs(&w, &m->svc);
	put_text(&w, m->domain, sizeof(m->domain));
	wcursor_u32(&w, m->dns);
	put_addrs(&w, m->nodes, m->n_nodes, PROTO_NODES_MAX);
	put_addrs(&w, m->managers, m->n_managers, PROTO_MANAGERS_MAX);
	wcursor_u8(&w, m->tos);
	put_text(&w, m->version, sizeof(m->version));
	for (int i = 0; i < INFO_SRC_MAX_; i++) {
		w.inval |= m->src[i] >= SRC_MAX_;
		wcursor_u8(&w, m->src[i]);
	}
	return frame_finish(&w, FT_CLUSTER_INFO);
}

int msg_cluster_info_decode(const uint8_t *p, size_t len, struct msg_cluster_info *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	get_cidrs(&c, &m->pod);
	get_cidrs(&c, &m->svc);
	get_text(&c, m->domain, sizeof(m->domain));
	m->dns = cursor_u32(&c);
	get_addrs(&c, m->nodes, &m->n_nodes, PROTO_NODES_MAX);
	get_addrs(&c, m->managers, &m->n_managers, PROTO_MANAGERS_MAX);
	m->tos = cursor_u8(&c);
	get_text(&c, m->version, sizeof(m->version));
	for (int i = 0; i < INFO_SRC_MAX_; i++) {
		m->src[i] = cursor_u8(&c);
		if (m->src[i] >= SRC_MAX_)
			cursor_fail(&c);
	}
	return cursor_end(&c);
}

/* ---- DIAL, DIAL_RESULT ---- */

ssize_t msg_dial_encode(uint8_t *out, size_t cap, const struct msg_dial *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (m->port == 0 || m->timeout_ms > PROTO_DIAL_TIMEOUT_MAX_MS)
		w.inval = true;
	wcursor_u32(&w, m->addr);
	wcursor_u16(&w, m->port);
	wcursor_u32(&w, m->timeout_ms);
	return frame_finish(&w, FT_DIAL);
}

int msg_dial_decode(const uint8_t *p, size_t len, struct msg_dial *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->addr = cursor_u32(&c);
	m->port = cursor_u16(&c);
	m->timeout_ms = cursor_u32(&c);
	if (m->port == 0 || m->timeout_ms > PROTO_DIAL_TIMEOUT_MAX_MS)
		cursor_fail(&c);
	return cursor_end(&c);
}

ssize_t msg_dial_result_encode(uint8_t *out, size_t cap, const struct msg_dial_result *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (m->status >= DIAL_STATUS_MAX_)
		w.inval = true;
	wcursor_u8(&w, m->status);
	return frame_finish(&w, FT_DIAL_RESULT);
}

int msg_dial_result_decode(const uint8_t *p, size_t len, struct msg_dial_result *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->status = cursor_u8(&c);
	if (m->status >= DIAL_STATUS_MAX_)
		cursor_fail(&c);
	return cursor_end(&c);
}

/* ---- UDP, UDP_CLOSE ---- */

ssize_t msg_udp_encode(uint8_t *out, size_t cap, const struct msg_udp *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	wcursor_u32(&w, m->flow);
	wcursor_u32(&w, m->src);
	wcursor_u16(&w, m->sport);
	wcursor_u32(&w, m->dst);
	wcursor_u16(&w, m->dport);
	put_data(&w, m->data, m->len);
	return frame_finish(&w, FT_UDP);
}

int msg_udp_decode(const uint8_t *p, size_t len, struct msg_udp *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->flow = cursor_u32(&c);
	m->src = cursor_u32(&c);
	m->sport = cursor_u16(&c);
	m->dst = cursor_u32(&c);
	m->dport = cursor_u16(&c);
	get_data(&c, &m->data, &m->len);
	return cursor_end(&c);
}

ssize_t msg_udp_close_encode(uint8_t *out, size_t cap, const struct msg_udp_close *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	wcursor_u32(&w, m->flow);
	return frame_finish(&w, FT_UDP_CLOSE);
}

int msg_udp_close_decode(const uint8_t *p, size_t len, struct msg_udp_close *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->flow = cursor_u32(&c);
	return cursor_end(&c);
}

/* ---- PING, PONG ---- */

ssize_t msg_ping_encode(uint8_t *out, size_t cap, const struct msg_ping *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	wcursor_u32(&w, m->id);
	wcursor_u32(&w, m->dst);
	wcursor_u16(&w, m->ident);
	wcursor_u16(&w, m->seq);
	put_data(&w, m->data, m->len);
	return frame_finish(&w, FT_PING);
}

int msg_ping_decode(const uint8_t *p, size_t len, struct msg_ping *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->id = cursor_u32(&c);
	m->dst = cursor_u32(&c);
	m->ident = cursor_u16(&c);
	m->seq = cursor_u16(&c);
	get_data(&c, &m->data, &m->len);
	return cursor_end(&c);
}

ssize_t msg_pong_encode(uint8_t *out, size_t cap, const struct msg_pong *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (m->status >= PONG_STATUS_MAX_)
		w.inval = true;
	wcursor_u32(&w, m->id);
	wcursor_u8(&w, m->status);
	wcursor_u32(&w, m->src);
	wcursor_u16(&w, m->ident);
	wcursor_u16(&w, m->seq);
	put_data(&w, m->data, m->len);
	return frame_finish(&w, FT_PONG);
}

int msg_pong_decode(const uint8_t *p, size_t len, struct msg_pong *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->id = cursor_u32(&c);
	m->status = cursor_u8(&c);
	m->src = cursor_u32(&c);
	m->ident = cursor_u16(&c);
	m->seq = cursor_u16(&c);
	get_data(&c, &m->data, &m->len);
	if (m->status >= PONG_STATUS_MAX_)
		cursor_fail(&c);
	return cursor_end(&c);
}

/* ---- DNS_QUERY/DNS_REPLY, HEARTBEAT/HEARTBEAT_ACK ---- */

ssize_t msg_dns_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_dns *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if ((type != FT_DNS_QUERY && type != FT_DNS_REPLY) || m->len == 0)
		w.inval = true;
	wcursor_u32(&w, m->id);
	put_data(&w, m->data, m->len);
	return frame_finish(&w, type);
}

int msg_dns_decode(const uint8_t *p, size_t len, struct msg_dns *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->id = cursor_u32(&c);
	get_data(&c, &m->data, &m->len);
	if (m->len == 0)
		cursor_fail(&c);
	return cursor_end(&c);
}

ssize_t msg_heartbeat_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_heartbeat *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (type != FT_HEARTBEAT && type != FT_HEARTBEAT_ACK)
		w.inval = true;
	wcursor_u64(&w, m->t);
	return frame_finish(&w, type);
}

int msg_heartbeat_decode(const uint8_t *p, size_t len, struct msg_heartbeat *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->t = cursor_u64(&c);
	return cursor_end(&c);
}

/* ---- STREAM_* ---- */

static bool stream_ok(uint8_t type, const struct msg_stream *m)
{
	switch (type) {
	case FT_STREAM_OPEN:
		return m->dial.port != 0 && m->dial.timeout_ms <= PROTO_DIAL_TIMEOUT_MAX_MS;
	case FT_STREAM_RESULT:
		return m->status < DIAL_STATUS_MAX_;
	case FT_STREAM_DATA:
		return m->len >= 1 && m->len <= STREAM_DATA_MAX;
	case FT_STREAM_CREDIT:
		return m->credit >= 1 && m->credit <= STREAM_CREDIT_MAX;
	case FT_STREAM_FIN:
	case FT_STREAM_RST:
		return true;
	}
	return false;
}

ssize_t msg_stream_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_stream *m)
{
	struct wcursor w;

	frame_start(&w, out, cap);
	if (!stream_ok(type, m) || (type == FT_STREAM_DATA && !m->data))
		w.inval = true;
	wcursor_u32(&w, m->id);
	if (type == FT_STREAM_OPEN) {
		wcursor_u32(&w, m->dial.addr);
		wcursor_u16(&w, m->dial.port);
		wcursor_u32(&w, m->dial.timeout_ms);
	} else if (type == FT_STREAM_RESULT) {
		wcursor_u8(&w, m->status);
	} else if (type == FT_STREAM_CREDIT) {
		wcursor_u32(&w, m->credit);
	} else if (type == FT_STREAM_DATA && !w.inval) {
		wcursor_bytes(&w, m->data, m->len);
	}
	return frame_finish(&w, type);
}

void stream_data_hdr(uint8_t out[STREAM_DATA_HDR_LEN], uint32_t id, uint32_t len)
{
	frame_hdr_encode(out, FT_STREAM_DATA, len + 4);
	out[FRAME_HDR_LEN] = (uint8_t)(id >> 24);
	out[FRAME_HDR_LEN + 1] = (uint8_t)(id >> 16);
	out[FRAME_HDR_LEN + 2] = (uint8_t)(id >> 8);
	out[FRAME_HDR_LEN + 3] = (uint8_t)id;
}

int msg_stream_decode(uint8_t type, const uint8_t *p, size_t len, struct msg_stream *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->id = cursor_u32(&c);
	if (type == FT_STREAM_OPEN) {
		m->dial.addr = cursor_u32(&c);
		m->dial.port = cursor_u16(&c);
		m->dial.timeout_ms = cursor_u32(&c);
	} else if (type == FT_STREAM_RESULT) {
		m->status = cursor_u8(&c);
	} else if (type == FT_STREAM_CREDIT) {
		m->credit = cursor_u32(&c);
	} else if (type == FT_STREAM_DATA && len > 4) {
		m->len = (uint32_t)(len - 4);
		m->data = cursor_ref(&c, m->len);
	}
	if (!stream_ok(type, m))
		cursor_fail(&c);
	return cursor_end(&c);
}

/* ---- the field rules, for other message families ---- */

void frame_begin(struct wcursor *w, uint8_t *out, size_t cap)
{
	frame_start(w, out, cap);
}

ssize_t frame_end(struct wcursor *w, uint8_t type)
{
	return frame_finish(w, type);
}

void frame_get_text(struct cursor *c, char *out, size_t size, bool opt)
{
	if (opt && cursor_remaining(c) && c->p[c->off] == 0) { /* u8 length 0: empty */
		cursor_u8(c);
		out[0] = 0;
		return;
	}
	get_text(c, out, size);
}

void frame_put_text(struct wcursor *w, const char *s, size_t size, bool opt)
{
	if (opt && !s[0]) {
		wcursor_u8(w, 0);
		return;
	}
	put_text(w, s, size);
}

void frame_get_data(struct cursor *c, const uint8_t **data, uint16_t *len)
{
	get_data(c, data, len);
}

void frame_put_data(struct wcursor *w, const uint8_t *data, uint16_t len)
{
	put_data(w, data, len);
}
