/* Agents' connections (agent.h). */
#include "manager/agent.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "manager/intercept.h"
#include "manager/manager.h"

static void agent_log_hello(const struct agent *a)
{
	char ip[16];

	log_info("agent %s: workload %s/%s, pod %s at %s, %u port(s)", a->name, a->h.ns, a->h.workload, a->h.pod,
		 ip4_str(a->h.pod_ip, ip), a->h.n_ports);
}

/* AGENT_HELLO, once: the agent is ready; its workload's intercepts follow. */
static int agent_on_hello(struct agent *a, const uint8_t *p, size_t len)
{
	struct msg_agent_hello h;

	if (a->hello || msg_agent_hello_decode(p, len, &h) < 0)
		return -EBADMSG;
	a->env = malloc(h.env_len ? h.env_len : 1);
	if (!a->env)
		return -ENOMEM;
	memcpy(a->env, h.env, h.env_len);
	a->h = h;
	a->h.env = a->env;
	a->hello = true;
	snprintf(a->name, sizeof(a->name), "%s/%s", h.ns, h.pod);
	agent_log_hello(a);
	intercept_agents_changed(a->m, h.ns, h.workload);
	return 0;
}

static int agent_on_frame(struct mux *mx, const struct frame_hdr *h, const uint8_t *p, void *arg)
{
	struct agent *a = arg;
	struct msg_agent_stats st;

	a->last_ms = loop_now_ms(a->m->loop);
	switch (h->type) {
	case FT_AGENT_HELLO:
		return agent_on_hello(a, p, h->len);
	case FT_AGENT_STATS:
		if (!a->hello || msg_agent_stats_decode(p, h->len, &st) < 0)
			return -EBADMSG;
		intercept_stats(a, &st);
		return 0;
	case FT_HEARTBEAT:
		return wire_heartbeat_ack(&mx->w, p, h->len) < 0 ? -EBADMSG : mux_kick(mx);
	case FT_HEARTBEAT_ACK:
		return 0;
	}
	log_info("agent %s: unexpected %s", a->name, frame_type_name(h->type));
	return -EPROTO;
}

/* The agent opens a stream for a connection of one of its intercepts:
 * dial.addr names the intercept. */
static void agent_on_open(struct mux *mx, uint32_t id, const struct msg_dial *d, void *arg)
{
	struct agent *a = arg;

	a->last_ms = loop_now_ms(a->m->loop);
	if (!a->hello) {
		mux_refuse(mx, id, DIAL_FORBIDDEN);
		return;
	}
	intercept_carry(a, mx, id, d->addr);
}

static void agent_on_down(struct mux *mx, int err, void *arg)
{
	struct agent *a = arg;

	(void)mx;
	log_info("agent %s: connection closed (%s)", a->name, strerror(-err));
	agent_free(a);
}

static const struct mux_ops agent_ops = {
	.open = agent_on_open,
	.done = intercept_agent_stream_done,
	.down = agent_on_down,
	.frame = agent_on_frame,
};

int agent_new(struct mgr *m, struct wire *w, uint32_t peer, uint16_t peer_port)
{
	struct agent *a = NULL;
	char ep[24];

	if (m->n_agents >= MGR_AGENTS_MAX || !(a = calloc(1, sizeof(*a)))) {
		wire_drop(w);
		return -ENOMEM;
	}
	a->m = m;
	a->last_ms = loop_now_ms(m->loop);
	snprintf(a->name, sizeof(a->name), "%s", mgr_peer_str(peer, peer_port, ep));
	a->mx = mux_new(m->loop, w, MUX_ACCEPTOR, &agent_ops, a);
	if (!a->mx) {
		wire_drop(w);
		free(a);
		return -ENOMEM;
	}
	list_add_tail(&m->agents, &a->link);
	m->n_agents++;
	return 0;
}

void agent_free(struct agent *a)
{
	struct mgr *m = a->m;
	bool hello = a->hello;

	list_del(&a->link);
	m->n_agents--;
	a->hello = false; /* no longer serves its workload */
	mux_free(a->mx);  /* its streams end first */
	if (hello)
		intercept_agents_changed(m, a->h.ns, a->h.workload);
	free(a->env);
	free(a);
}

void agent_free_all(struct mgr *m)
{
	while (!list_empty(&m->agents))
		agent_free(list_first(&m->agents, struct agent, link));
}

void agent_sweep(struct mgr *m)
{
	uint64_t now = loop_now_ms(m->loop);
	struct list *i, *next;

	list_for_each_safe(i, next, &m->agents) {
		struct agent *a = list_entry(i, struct agent, link);
		if (now - a->last_ms > MGR_AGENT_DEAD_MS) {
			log_info("agent %s: silent for %d s", a->name, MGR_AGENT_DEAD_MS / 1000);
			agent_free(a);
		}
	}
}

bool agent_serves(const struct agent *a, const char *ns, const char *workload)
{
	return a->hello && !strcmp(a->h.ns, ns) && !strcmp(a->h.workload, workload);
}

void agent_send_rules(struct agent *a)
{
	struct msg_agent_rules r;
	uint8_t buf[ICEPT_RULES_MAX * 1200 + 64];
	ssize_t n;

	intercept_rules_for(a->m, a->h.ns, a->h.workload, &r);
	n = msg_agent_rules_encode(buf, sizeof(buf), &r);
	if (n < 0 || mux_send_frame(a->mx, buf, (size_t)n) < 0)
		log_warn("agent %s: cannot send its rules", a->name);
}
