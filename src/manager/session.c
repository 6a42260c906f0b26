/* Sessions: one per authenticated control connection.  The control
 * connection carries CLUSTER_INFO, heartbeats, UDP, ICMP echo and DNS;
 * when it goes away, everything of the session goes with it and its TCP
 * flows are reset. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "common/log.h"
#include "manager/session.h"

#include "manager/conn.h"
#include "manager/dns.h"
#include "manager/worker.h"
#include "manager/flow.h"
#include "manager/intercept.h"
#include "manager/icmp.h"
#include "manager/manager.h"
#include "manager/trunk.h"
#include "manager/udp.h"
#include "net/sock.h"

static void session_on_event(struct loop *l, int fd, uint32_t events, void *arg);

void sreq_begin(struct sreq *r, struct session *s, enum sreq_kind k)
{
	r->m = s->m;
	r->s = s;
	list_add_tail(&s->reqs[k], &r->link);
	s->n_reqs[k]++;
	s->m->n_reqs[k]++;
}

void sreq_end(struct sreq *r, enum sreq_kind k)
{
	loop_timer_cancel(r->s->m->loop, &r->timer);
	list_del(&r->link);
	r->s->n_reqs[k]--;
	r->s->m->n_reqs[k]--;
	r->s = NULL;
}

struct session *session_find(struct mgr *m, const uint8_t id[PROTO_SESSION_LEN])
{
	for (struct list *i = m->sessions.next; i != &m->sessions; i = i->next) {
		struct session *s = list_entry(i, struct session, link);
		if (!memcmp(s->id, id, PROTO_SESSION_LEN))
			return s;
	}
	return NULL;
}

uint8_t *session_reserve(struct session *s, size_t n)
{
	return wire_reserve(&s->w, n);
}

void session_commit(struct session *s, size_t n)
{
	wire_commit(&s->w, n);
}

/* Writes what it can; a write error shows up as LOOP_OUT with an error,
 * handled (and the session freed) in session_on_event, never here: this is
 * called from handlers of other objects. */
void session_kick(struct session *s)
{
	int r = wire_flush(&s->w);

	loop_mod(s->m->loop, s->w.fd, LOOP_IN | (r != 0 ? LOOP_OUT : 0));
}

struct sess_share *sess_share_ref(struct sess_share *sh)
{
	__atomic_fetch_add(&sh->refs, 1, __ATOMIC_RELAXED);
	return sh;
}

void sess_share_unref(struct sess_share *sh)
{
	if (!sh || __atomic_sub_fetch(&sh->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	pthread_mutex_destroy(&sh->mu);
	free(sh);
}

void session_free(struct session *s)
{
	struct mgr *m = s->m;
	unsigned flows = sess_count(&s->sh->n_flows);

	intercept_session_lost(s); /* first: the agents serve the app again */
	__atomic_store_n(&s->sh->ended, true, __ATOMIC_RELEASE); /* the workers close its lane trunks */
	workers_session_ended(m);
	trunk_free_all(s);
	flow_free_all(s);
	udp_free_all(s);
	icmp_forget(s);
	dns_forget(s);
	if (s->w.fd >= 0) {
		loop_del(m->loop, s->w.fd);
		close(s->w.fd);
	}
	wire_fini(&s->w);
	list_del(&s->link);
	m->st.sessions_active--;
	log_info("session %s ended (%u flow connection(s) closed)", s->name, flows);
	sess_share_unref(s->sh);
	free(s);
}

/* Sends ERROR with text, then ends the session. */
static void session_fail(struct session *s, const char *text)
{
	MGR_ST_ADD(s->m, frames_bad, 1);
	log_warn("session %s: %s; closing", s->name, text);
	conn_text_close(s->m->loop, &s->w, FT_ERROR, text);
	session_free(s);
}

static int session_cluster_info(struct session *s)
{
	const struct mgr *m = s->m;
	struct msg_cluster_info ci = { .pod = m->cfg.pod, .svc = m->cfg.svc };
	uint8_t *p = wire_reserve(&s->w, 1024);
	ssize_t n;

	snprintf(ci.domain, sizeof(ci.domain), "%s", m->cfg.domain);
	snprintf(ci.version, sizeof(ci.version), "subway %s", SUBWAY_VERSION);
	ci.dns = m->cfg.dns;
	ci.n_nodes = m->cfg.n_nodes;
	memcpy(ci.nodes, m->cfg.nodes, sizeof(ci.nodes));
	ci.n_managers = m->n_own;
	memcpy(ci.managers, m->own, sizeof(ci.managers));
	ci.tos = m->cfg.tos;
	memcpy(ci.src, m->cfg.src, sizeof(ci.src));
	n = p ? msg_cluster_info_encode(p, 1024, &ci) : -ENOBUFS;
	if (n < 0) {
		log_err("cannot encode cluster info: %s", strerror((int)-n));
		return (int)n;
	}
	wire_commit(&s->w, (size_t)n);
	return 0;
}

static int session_peer_error(struct session *s, const uint8_t *p, size_t len)
{
	struct msg_text t;

	if (msg_text_decode(p, len, &t) < 0)
		return -EBADMSG;
	log_info("session %s: client error: %s", s->name, t.text);
	return -ECONNRESET;
}

/* 0, -EBADMSG (malformed), -EPROTO (unexpected), -ECONNRESET (peer quit). */
static int session_frame(struct session *s, const struct frame_hdr *h, const uint8_t *p)
{
	struct msg_ping ping;
	struct msg_dns dns;

	switch (h->type) {
	case FT_HEARTBEAT:
		return wire_heartbeat_ack(&s->w, p, h->len);
	case FT_HEARTBEAT_ACK:
		return 0;
	case FT_UDP:
	case FT_UDP_CLOSE:
		return udp_frame(s, p, h->len, h->type);
	case FT_PING:
		if (msg_ping_decode(p, h->len, &ping) < 0)
			return -EBADMSG;
		icmp_ping(s, &ping);
		return 0;
	case FT_DNS_QUERY:
		if (msg_dns_decode(p, h->len, &dns) < 0)
			return -EBADMSG;
		dns_query(s, &dns);
		return 0;
	case FT_ERROR:
		return session_peer_error(s, p, h->len);
	case FT_INTERCEPT:
	case FT_LEAVE:
	case FT_LIST:
	case FT_ENV:
		return intercept_frame(s, h->type, p, h->len);
	}
	return -EPROTO;
}

/* Handles every complete frame in the read buffer (at most FRAME_MAX
 * bytes of them: bounded).  May free s, as its last action. */
static void session_input(struct session *s)
{
	struct frame_hdr h;
	const uint8_t *p;
	char text[80];
	int r;

	while ((r = wire_next(&s->w, &h, &p)) == 1) {
		r = session_frame(s, &h, p);
		if (r == -ECONNRESET) {
			session_free(s);
			return;
		}
		if (r < 0) {
			snprintf(text, sizeof(text), "%s %s frame",
				 r == -EBADMSG ? "malformed" : "unexpected", frame_type_name(h.type));
			session_fail(s, text);
			return;
		}
		wire_consume(&s->w);
	}
	if (r < 0) {
		session_fail(s, r == -EMSGSIZE ? "frame too large" : "malformed frame header");
		return;
	}
	if (wire_more(&s->w))
		loop_kick(s->m->loop, s->w.fd); /* TLS bytes the buffer had no room for */
	session_kick(s);
}

static void session_on_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct session *s = arg;
	const char *why = NULL;
	int r;

	(void)l;
	(void)fd;
	if ((events & LOOP_OUT) && wire_flush(&s->w) < 0)
		why = "write failed";
	else if ((r = wire_read(&s->w)) == 0)
		why = "closed by the client";
	else if (r < 0 && r != -EAGAIN)
		why = strerror(-r);
	else if (r > 0)
		s->rx_ms = loop_now_ms(l);
	if (why) {
		log_info("session %s: control connection %s", s->name, why);
		session_free(s);
		return;
	}
	session_input(s);
}

bool session_covers(const struct session *s, const char *ns)
{
	return auth_namespace_covered(s->m->cfg.tokens[s->token].namespaces, ns);
}

void session_check_alive(struct session *s, uint64_t now)
{
	struct msg_heartbeat hb = { .t = now };
	uint8_t *p;
	ssize_t n;

	if (now - s->rx_ms > MGR_LAPTOP_QUIET_MS) {
		log_info("session %s: the laptop stopped answering (%d ms without a word)", s->name,
			 MGR_LAPTOP_QUIET_MS);
		session_free(s);
		return;
	}
	if (!(p = session_reserve(s, 64)))
		return;
	if ((n = msg_heartbeat_encode(p, 64, FT_HEARTBEAT, &hb)) > 0) {
		session_commit(s, (size_t)n);
		session_kick(s);
	}
}

static void session_log_new(const struct session *s)
{
	char peer[24];

	log_info("session %s: new, client '%s' from %s", s->name, s->client,
		 mgr_peer_str(s->peer, s->peer_port, peer));
}

int session_new(struct mgr *m, struct wire *w, const uint8_t id[PROTO_SESSION_LEN],
		uint32_t peer, uint16_t peer_port, const char *client, int token)
{
	struct session *s = calloc(1, sizeof(*s));
	struct sess_share *sh = calloc(1, sizeof(*sh));
	int ret;

	if (!s || !sh) {
		free(s);
		free(sh);
		wire_drop(w);
		return -ENOMEM;
	}
	s->m = m;
	s->sh = sh;
	sh->m = m;
	sh->refs = 1;
	pthread_mutex_init(&sh->mu, NULL);
	s->w = *w;
	memcpy(s->id, id, PROTO_SESSION_LEN);
	snprintf(s->name, sizeof(s->name), "%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
	snprintf(s->client, sizeof(s->client), "%s", client);
	s->peer = peer;
	s->peer_port = peer_port;
	s->token = token;
	snprintf(sh->name, sizeof(sh->name), "%s", s->name);
	sh->dial_tokens = (uint64_t)m->cfg.lim.dial_burst * 1000;
	sh->dial_ms = s->rx_ms = loop_now_ms(m->loop);
	list_init(&s->flows);
	for (int k = 0; k < SREQ_KINDS; k++)
		list_init(&s->reqs[k]);
	idtab_init(&s->udp, s->udp_buckets, MGR_UDP_BUCKET_BITS);
	list_init(&s->trunks);
	list_add_tail(&m->sessions, &s->link);
	m->st.sessions_active++;
	m->st.sessions_total++;
	s->w.wmax = WIRE_WMAX_DEFAULT;
	sock_keepalive(s->w.fd, 30, 10, 3); /* a vanished laptop ends its session */
	if ((ret = wire_set_limits(&s->w, FRAME_MAX, FRAME_MAX_PAYLOAD)) < 0 ||
	    (ret = session_cluster_info(s)) < 0 ||
	    (ret = loop_add(m->loop, s->w.fd, LOOP_IN, session_on_event, s)) < 0) {
		session_free(s);
		return ret;
	}
	session_log_new(s);
	session_input(s); /* frames that came with the AUTH; flushes */
	return 0;
}
