/* Accepted connections until they authenticate: the TLS handshake (unless
 * --insecure), HELLO with a fresh nonce, one AUTH, all within
 * MGR_AUTH_TIMEOUT_MS and under small frame limits,
 * then the connection becomes a session's control connection or one of
 * its flow connections.  At most MGR_PREAUTH_MAX wait at once; the oldest
 * is dropped for a new one, so idle connections cannot lock clients out. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "commands.h"
#include "common/log.h"
#include "manager/conn.h"

#include "manager/agent.h"
#include "manager/flow.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "manager/trunk.h"
#include "net/sock.h"
#include "net/tls.h"

#define CONN_RCAP (FRAME_HDR_LEN + FRAME_MAX_PAYLOAD_PREAUTH)
#define CONN_WMAX 1024 /* HELLO, AUTH_OK, AUTH_FAIL: small frames only */
/* TLS tickets are single-use: a control connection brings the daemon
 * enough for its first pool of flow connections (POOL_TARGET), and each
 * resumed connection one more than it spends, so the pool keeps resuming. */
#define CONN_TICKETS_CONTROL 16
#define CONN_TICKETS_RESUMED 1

enum conn_state { CONN_TLS, CONN_AUTH };

struct conn {
	struct mgr *m;
	enum conn_state state;
	struct wire w;
	struct list link; /* m->preauth */
	struct loop_timer timer;
	uint8_t nonce[PROTO_NONCE_LEN];
	uint32_t peer;
	uint16_t peer_port;
	const struct auth_token *tok; /* the token it proved */
	int token;                    /* its index in m->cfg.tokens (-1: the agents') */
};

static void conn_free(struct conn *c)
{
	loop_timer_cancel(c->m->loop, &c->timer);
	if (c->w.fd >= 0) {
		loop_del(c->m->loop, c->w.fd);
		close(c->w.fd);
	}
	wire_fini(&c->w);
	list_del(&c->link);
	c->m->n_preauth--;
	free(c);
}

void conn_free_all(struct mgr *m)
{
	while (!list_empty(&m->preauth))
		conn_free(list_entry(m->preauth.next, struct conn, link));
}

void conn_text_close(struct loop *l, struct wire *w, uint8_t type, const char *text)
{
	uint8_t *p = wire_reserve(w, FRAME_HDR_LEN + PROTO_TEXT_MAX);
	ssize_t n = p ? msg_text_encode(p, FRAME_HDR_LEN + PROTO_TEXT_MAX, type, text) : -ENOBUFS;

	if (n > 0) {
		wire_commit(w, (size_t)n);
		wire_flush(w); /* best effort: the peer is about to be dropped */
	}
	if (w->fd < 0)
		return;
	loop_del(l, w->fd);
	wire_close_notify(w);
	/* FIN after the text rather than a RST that could overtake it. */
	shutdown(w->fd, SHUT_WR);
	close(w->fd);
	w->fd = -1;
}

static void conn_reject(struct conn *c, uint8_t type, const char *text)
{
	/* During the TLS handshake there is no channel for a text yet. */
	if (c->state == CONN_AUTH)
		conn_text_close(c->m->loop, &c->w, type, text);
	conn_free(c);
}

static void conn_on_timeout(struct loop *l, struct loop_timer *t)
{
	struct conn *c = t->arg;
	char peer[24];

	(void)l;
	c->m->st.auth_timeouts++;
	log_debug("%s: no authentication within %u ms", mgr_peer_str(c->peer, c->peer_port, peer),
		  MGR_AUTH_TIMEOUT_MS);
	conn_reject(c, FT_ERROR, "authentication timeout");
}

static int conn_hello(struct conn *c)
{
	struct msg_hello h = { .version = PROTO_VERSION };
	uint8_t *p = wire_reserve(&c->w, CONN_WMAX);
	ssize_t n;

	if (!p || auth_random(c->nonce, sizeof(c->nonce)) < 0)
		return -ENOMEM;
	memcpy(h.nonce, c->nonce, sizeof(h.nonce));
	snprintf(h.server, sizeof(h.server), "subway %s", SUBWAY_VERSION);
	n = msg_hello_encode(p, CONN_WMAX, &h);
	if (n < 0)
		return (int)n;
	wire_commit(&c->w, (size_t)n);
	return wire_flush(&c->w) < 0 ? -EPIPE : 0;
}

static void conn_on_event(struct loop *l, int fd, uint32_t events, void *arg);

void conn_accept(struct mgr *m, int fd)
{
	struct conn *c;

	m->st.conns_accepted++;
	if (m->n_preauth >= MGR_PREAUTH_MAX) {
		m->st.preauth_dropped++;
		log_debug("%u connections waiting to authenticate: dropping the oldest",
			  m->n_preauth);
		conn_free(list_entry(m->preauth.next, struct conn, link));
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->m = m;
	list_add_tail(&m->preauth, &c->link);
	m->n_preauth++;
	if (wire_init(&c->w, fd, CONN_RCAP, FRAME_MAX_PAYLOAD_PREAUTH) < 0) {
		c->w.fd = fd; /* closed by conn_free */
		conn_free(c);
		return;
	}
	c->w.wmax = CONN_WMAX;
	sock_nodelay(fd);
	sock_delack(fd);
	sock_peer(fd, &c->peer, &c->peer_port);
	c->state = m->tls_ctx ? CONN_TLS : CONN_AUTH;
	if (m->tls_ctx && !(c->w.tls = tls_new(m->tls_ctx, fd, true))) {
		conn_free(c);
		return;
	}
	/* TLS: the client speaks first (ClientHello); else HELLO goes now. */
	if ((c->state == CONN_AUTH && conn_hello(c) < 0) ||
	    loop_add(m->loop, fd, LOOP_IN | (wire_pending(&c->w) ? LOOP_OUT : 0), conn_on_event,
		     c) < 0) {
		conn_free(c);
		return;
	}
	loop_timer_arm(m->loop, &c->timer, MGR_AUTH_TIMEOUT_MS, conn_on_timeout, c);
}

/* The token the client's proof is made with: the agents have their own;
 * laptops one of the --token-file ones.  Sets c->tok and c->token; false
 * when none matches. */
static bool conn_token(struct conn *c, const struct msg_auth *a)
{
	const struct mgr_config *cfg = &c->m->cfg;
	uint8_t mac[PROTO_MAC_LEN];

	c->tok = NULL;
	c->token = -1;
	if (a->kind == CONN_AGENT) {
		if (!cfg->agents)
			return false;
		auth_mac(&cfg->agent_token, AUTH_ROLE_CLIENT, c->nonce, a->nonce, a->kind, a->session, mac);
		c->tok = auth_mac_equal(mac, a->mac) ? &cfg->agent_token : NULL;
		return c->tok != NULL;
	}
	for (int i = 0; i < cfg->n_tokens; i++) {
		auth_mac(&cfg->tokens[i].tok, AUTH_ROLE_CLIENT, c->nonce, a->nonce, a->kind, a->session, mac);
		if (auth_mac_equal(mac, a->mac)) {
			c->tok = &cfg->tokens[i].tok;
			c->token = i;
			return true;
		}
	}
	return false;
}

static int conn_auth_ok(struct conn *c, const struct msg_auth *a, const uint8_t *session)
{
	struct msg_auth_ok ok;
	uint8_t *p = wire_reserve(&c->w, 128);
	ssize_t n;

	memcpy(ok.session, session, PROTO_SESSION_LEN);
	/* The proof covers the session id the client is given. */
	auth_mac(c->tok, AUTH_ROLE_SERVER, c->nonce, a->nonce, a->kind, session, ok.mac);
	n = p ? msg_auth_ok_encode(p, 128, &ok) : -ENOBUFS;
	if (n < 0)
		return (int)n;
	wire_commit(&c->w, (size_t)n);
	return 0;
}

/* Gives the fd and the wire to a new owner; c is then an empty shell. */
static struct wire conn_detach(struct conn *c)
{
	struct wire w = c->w;

	loop_del(c->m->loop, c->w.fd);
	memset(&c->w, 0, sizeof(c->w));
	c->w.fd = -1;
	return w;
}

static void conn_control(struct conn *c, const struct msg_auth *a)
{
	uint8_t id[PROTO_SESSION_LEN];
	struct wire w;

	if (c->m->st.sessions_active >= c->m->cfg.lim.sessions) {
		c->m->st.limit_sessions++;
		log_warn("%u sessions already: refusing another (--limit sessions=N)",
			 (unsigned)c->m->st.sessions_active);
		conn_reject(c, FT_AUTH_FAIL, "too many sessions");
		return;
	}
	if (auth_random(id, sizeof(id)) < 0 || conn_auth_ok(c, a, id) < 0) {
		conn_reject(c, FT_ERROR, "internal error");
		return;
	}
	if (c->w.tls) /* sent ahead of AUTH_OK: they are there before CLUSTER_INFO */
		tls_send_tickets(c->w.tls, CONN_TICKETS_CONTROL);
	w = conn_detach(c);
	session_new(c->m, &w, id, c->peer, c->peer_port, a->client, c->token);
	conn_free(c);
}

static void conn_flow(struct conn *c, const struct msg_auth *a)
{
	struct session *s = session_find(c->m, a->session);
	struct wire w;

	if (!s || s->token != c->token) { /* a session's connections prove its token */
		conn_reject(c, FT_AUTH_FAIL, "unknown session");
		return;
	}
	if ((a->kind == CONN_TRUNK || a->kind == CONN_LANE) && sess_count(&s->sh->n_trunks) >= MGR_SESSION_TRUNKS_MAX) {
		MGR_ST_ADD(c->m, limit_flows, 1);
		conn_reject(c, FT_AUTH_FAIL, "too many trunk connections");
		return;
	}
	if (a->kind == CONN_FLOW && sess_count(&s->sh->n_flows) >= c->m->cfg.lim.flows) {
		MGR_ST_ADD(c->m, limit_flows, 1);
		conn_reject(c, FT_AUTH_FAIL, "too many flow connections");
		return;
	}
	if (conn_auth_ok(c, a, a->session) < 0) {
		conn_reject(c, FT_ERROR, "internal error");
		return;
	}
	w = conn_detach(c);
	if (a->kind == CONN_TRUNK || a->kind == CONN_LANE)
		trunk_new(s, &w, a->kind == CONN_LANE);
	else
		flow_new(s, &w);
	conn_free(c);
}

static void conn_agent(struct conn *c, const struct msg_auth *a)
{
	uint8_t id[PROTO_SESSION_LEN];
	char peer[24];
	struct wire w;

	/* An id for the proof only: an agent has no session. */
	if (auth_random(id, sizeof(id)) < 0 || conn_auth_ok(c, a, id) < 0) {
		log_err("agent from %s: cannot answer its authentication", mgr_peer_str(c->peer, c->peer_port, peer));
		conn_reject(c, FT_ERROR, "internal error");
		return;
	}
	w = conn_detach(c);
	agent_new(c->m, &w, c->peer, c->peer_port);
	conn_free(c);
}

static void conn_auth(struct conn *c, const uint8_t *p, size_t len)
{
	struct msg_auth a;
	uint16_t version = 0;
	char peer[24], text[64];

	mgr_peer_str(c->peer, c->peer_port, peer);
	if (msg_version_peek(p, len, &version) == 0 && version != PROTO_VERSION) {
		log_info("%s: unsupported protocol version %u", peer, version);
		snprintf(text, sizeof(text), "unsupported version %u", version);
		c->m->st.auth_failed++;
		conn_reject(c, FT_AUTH_FAIL, text);
		return;
	}
	if (msg_auth_decode(p, len, &a) < 0) {
		log_info("%s: malformed auth frame", peer);
		MGR_ST_ADD(c->m, frames_bad, 1);
		conn_reject(c, FT_ERROR, "malformed auth frame");
		return;
	}
	if (a.kind == CONN_AGENT && !c->m->cfg.agents) {
		log_info("%s: an agent, and no --agent-token-file", peer);
		c->m->st.auth_failed++;
		conn_reject(c, FT_AUTH_FAIL, "this manager takes no agents");
		return;
	}
	if (!conn_token(c, &a)) {
		log_warn("%s: authentication refused (client '%s')", peer, a.client);
		c->m->st.auth_failed++;
		conn_reject(c, FT_AUTH_FAIL, "authentication refused");
		return;
	}
	c->m->st.auth_ok++;
	wire_consume(&c->w);
	if (a.kind == CONN_CONTROL)
		conn_control(c, &a);
	else if (a.kind == CONN_AGENT)
		conn_agent(c, &a);
	else
		conn_flow(c, &a);
}

/* One step of the TLS handshake; HELLO once it is done.  May free c. */
static void conn_on_tls(struct conn *c)
{
	struct mgr *m = c->m;
	int r = tls_handshake(c->w.tls);
	char peer[24], why[128];

	if (r > 0) {
		loop_mod(m->loop, c->w.fd, (uint32_t)r);
		return;
	}
	if (r < 0) {
		m->st.tls_failed++;
		log_debug("%s: TLS handshake failed: %s", mgr_peer_str(c->peer, c->peer_port, peer),
			  r == -ECONNRESET ? "closed" : tls_last_error(why, sizeof(why)));
		conn_free(c);
		return;
	}
	m->st.tls_ok++;
	if (tls_resumed(c->w.tls)) {
		m->st.tls_resumed++;
		tls_send_tickets(c->w.tls, CONN_TICKETS_RESUMED);
	}
	c->state = CONN_AUTH;
	if (conn_hello(c) < 0 ||
	    loop_mod(m->loop, c->w.fd, LOOP_IN | (wire_pending(&c->w) ? LOOP_OUT : 0)) < 0) {
		conn_free(c);
		return;
	}
	if (tls_pending(c->w.tls)) /* read ahead with the handshake: no event will say so */
		loop_kick(m->loop, c->w.fd);
}

static void conn_on_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct conn *c = arg;
	struct frame_hdr h;
	const uint8_t *p;
	int r;

	(void)l;
	(void)fd;
	if (c->state == CONN_TLS) {
		conn_on_tls(c);
		return;
	}
	if (events & LOOP_OUT) {
		int f = wire_flush(&c->w);
		if (f < 0) {
			conn_free(c);
			return;
		}
		if (f == 0)
			loop_mod(c->m->loop, c->w.fd, LOOP_IN);
	}
	r = wire_read(&c->w);
	if (r == -EAGAIN)
		return;
	if (r <= 0) {
		conn_free(c); /* closed or failed before authenticating */
		return;
	}
	r = wire_next(&c->w, &h, &p);
	if (r == 0)
		return;
	if (r < 0 || h.type != FT_AUTH) {
		MGR_ST_ADD(c->m, frames_bad, 1);
		conn_reject(c, FT_ERROR, r < 0 ? "malformed frame" : "expected an auth frame");
		return;
	}
	conn_auth(c, p, h.len);
}
