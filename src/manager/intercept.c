/* Intercepts in the manager (intercept.h). */
#include "manager/intercept.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/http.h"
#include "common/json.h"
#include "common/log.h"
#include "manager/agent.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "manager/trunk.h"
#include "net/sock.h"

#define ILINK_DIAL_MS 5000 /* the laptop's dial of its local port */

/* A connection being carried from an agent to a laptop. */
struct ilink {
	struct icept *ic;
	struct mux_stream as;  /* on the agent's connection (the agent opened it) */
	struct mux_stream ls;  /* on one of the laptop's trunks (opened here) */
	int sp[2];             /* between them, once both are up */
	bool as_up, ls_up;     /* attached and not ended */
	struct list link;      /* m->links */
};

static const char *const state_names[] = { "", "ACTIVE", "WAITING", "INACTIVE" };
static const char *const mode_names[] = { "", "global", "personal", "mirror" };

static struct icept *icept_by_id(struct mgr *m, uint32_t id)
{
	struct list *i;

	for (i = m->intercepts.next; i != &m->intercepts; i = i->next)
		if (list_entry(i, struct icept, link)->id == id)
			return list_entry(i, struct icept, link);
	return NULL;
}

static struct icept *icept_by_name(struct mgr *m, const uint8_t client[ICEPT_CLIENT_LEN], const char *name)
{
	struct list *i;

	for (i = m->intercepts.next; i != &m->intercepts; i = i->next) {
		struct icept *ic = list_entry(i, struct icept, link);
		if (!memcmp(ic->req.client, client, ICEPT_CLIENT_LEN) && !strcmp(ic->req.name, name))
			return ic;
	}
	return NULL;
}

/* Pods of the intercept's workload whose agent applied the rules it was
 * last sent (the intercept's redirect is in place there); *behind: agents
 * still applying them (for less than MGR_AGENT_APPLY_MS). */
static unsigned icept_pods(const struct icept *ic, unsigned *behind)
{
	uint64_t now = loop_now_ms(ic->m->loop);
	const struct list *i;
	unsigned n = 0, late = 0;

	for (i = ic->m->agents.next; i != &ic->m->agents; i = i->next) {
		const struct agent *a = list_entry(i, struct agent, link);
		if (!agent_serves(a, ic->req.ns, ic->req.workload))
			continue;
		if (agent_current(a))
			n++;
		else if (now - a->rules_ms < MGR_AGENT_APPLY_MS)
			late++;
	}
	if (behind)
		*behind = late;
	return n;
}

/* ACTIVE once every agent of the workload took it (or the slow ones had
 * their time); WAITING before, or with no agent. */
static uint8_t icept_state(const struct icept *ic)
{
	unsigned behind, pods = icept_pods(ic, &behind);

	if (!ic->s)
		return ICEPT_INACTIVE;
	return pods && !behind ? ICEPT_ACTIVE : ICEPT_WAITING;
}

/* ---- conflicts ---- */

/* Some request could match both filters (as the agents match them;
 * filters were checked when asked for). */
static bool filters_overlap(const struct icept_filter *a, const struct icept_filter *b)
{
	struct http_filter ha, hb;

	if (icept_filter_http(a, &ha, NULL, 0) < 0 || icept_filter_http(b, &hb, NULL, 0) < 0)
		return true;
	return http_filters_overlap(&ha, &hb);
}

/* A global intercept takes a port alone; personal and mirrored ones share
 * it when no request could match two of them. */
static bool icept_conflict(const struct icept *a, const struct msg_intercept *b, uint16_t port)
{
	if (a->port != port || strcmp(a->req.ns, b->ns) || strcmp(a->req.workload, b->workload))
		return false;
	if (a->req.mode == ICEPT_GLOBAL || b->mode == ICEPT_GLOBAL)
		return true;
	return filters_overlap(&a->req.filter, &b->filter);
}

static void describe(const struct icept *ic, char *out, size_t size)
{
	const struct icept_filter *f = &ic->req.filter;
	int n = snprintf(out, size, "%s", mode_names[ic->req.mode]);

	for (int i = 0; i < f->n_headers && n > 0 && (size_t)n < size; i++)
		n += snprintf(out + n, size - (size_t)n, "%s%.24s=%.32s", i ? " " : ", ", f->hname[i], f->hvalue[i]);
	if (f->path_prefix[0] && n > 0 && (size_t)n < size)
		n += snprintf(out + n, size - (size_t)n, ", path %.40s", f->path_prefix);
}

/* ---- to the laptops and agents ---- */

static void icept_send(struct session *s, const uint8_t *frame, ssize_t n)
{
	uint8_t *p;

	if (n < 0 || !(p = session_reserve(s, (size_t)n)))
		return; /* queue full: the next state goes */
	memcpy(p, frame, (size_t)n);
	session_commit(s, (size_t)n);
	session_kick(s);
}

static void icept_send_state(struct icept *ic)
{
	struct msg_intercept_state st = { .state = icept_state(ic), .pods = (uint16_t)icept_pods(ic, NULL),
					  .connections = ic->connections, .requests = ic->requests,
					  .dropped = ic->dropped };
	uint8_t buf[256];

	memcpy(st.name, ic->req.name, sizeof(st.name));
	ic->state_sent = st.state;
	if (ic->s)
		icept_send(ic->s, buf, msg_intercept_state_encode(buf, sizeof(buf), &st));
}

void intercept_rules_for(struct mgr *m, const char *ns, const char *workload, struct msg_agent_rules *out)
{
	struct list *i;

	memset(out, 0, sizeof(*out));
	for (i = m->intercepts.next; i != &m->intercepts && out->n < ICEPT_RULES_MAX; i = i->next) {
		struct icept *ic = list_entry(i, struct icept, link);
		if (strcmp(ic->req.ns, ns) || strcmp(ic->req.workload, workload))
			continue;
		out->r[out->n++] = (struct icept_rule){ .id = ic->id, .port = ic->port, .proto = ic->proto,
							.mode = ic->req.mode, .active = ic->s != NULL,
							.filter = ic->req.filter };
	}
}

/* The laptops hear the states of ns/workload's intercepts that changed
 * (all of them with NULL). */
static void icept_states_changed(struct mgr *m, const char *ns, const char *workload)
{
	struct list *i;

	for (i = m->intercepts.next; i != &m->intercepts; i = i->next) {
		struct icept *ic = list_entry(i, struct icept, link);
		if ((!ns || (!strcmp(ic->req.ns, ns) && !strcmp(ic->req.workload, workload))) &&
		    ic->state_sent != icept_state(ic))
			icept_send_state(ic);
	}
}

void intercept_agents_changed(struct mgr *m, const char *ns, const char *workload)
{
	struct list *i;

	for (i = m->agents.next; i != &m->agents; i = i->next) {
		struct agent *a = list_entry(i, struct agent, link);
		if (agent_serves(a, ns, workload))
			agent_send_rules(a);
	}
	icept_states_changed(m, ns, workload);
}

/* ---- INTERCEPT ---- */

/* The container port req names (a number, a name, or "" for the only one),
 * from any agent of the workload.  0 when none. */
static uint16_t icept_resolve(struct mgr *m, const struct msg_intercept *req, uint8_t *proto)
{
	struct list *i;
	uint64_t num = 0;
	bool numeric = req->port[0] && u64_parse(req->port, 65535, &num) == 0;

	for (i = m->agents.next; i != &m->agents; i = i->next) {
		struct agent *a = list_entry(i, struct agent, link);
		if (!agent_serves(a, req->ns, req->workload))
			continue;
		for (int k = 0; k < a->h.n_ports; k++) {
			const struct icept_port *p = &a->h.ports[k];
			if ((numeric && p->port == num) || (!numeric && req->port[0] && !strcmp(p->name, req->port)) ||
			    (!req->port[0] && a->h.n_ports == 1)) {
				*proto = p->proto;
				return p->port;
			}
		}
		if (numeric) { /* a port the agent does not list: the app may still serve it */
			*proto = IPPROTO_TCP;
			return (uint16_t)num;
		}
	}
	return 0;
}

/* Why req cannot have the port: text set, and the status; ICEPT_OK if it can. */
static uint8_t icept_check(struct session *s, const struct msg_intercept *req, uint16_t port, char *text,
			   size_t size)
{
	struct mgr *m = s->m;
	struct list *i;
	char how[120];

	for (i = m->intercepts.next; i != &m->intercepts; i = i->next) {
		struct icept *ic = list_entry(i, struct icept, link);
		if (icept_by_name(m, req->client, req->name) == ic || !icept_conflict(ic, req, port))
			continue;
		describe(ic, how, sizeof(how));
		if (snprintf(text, size, "port %u of %.24s/%.24s is held by %.32s (intercept '%.24s', %.80s)%s", port,
			     req->ns, req->workload, ic->req.holder, ic->req.name, how,
			     req->mode != ICEPT_GLOBAL && ic->req.mode != ICEPT_GLOBAL
				     ? ": a request could match both filters" : "") >= (int)size)
			text[size - 1] = 0; /* cut: the holder is named early */
		return ICEPT_REFUSED;
	}
	if (s->n_intercepts >= MGR_INTERCEPTS_PER_SESSION || m->n_intercepts >= MGR_INTERCEPTS_MAX) {
		snprintf(text, size, "too many intercepts (%u for this laptop, %u in all)", MGR_INTERCEPTS_PER_SESSION,
			 MGR_INTERCEPTS_MAX);
		return ICEPT_REFUSED;
	}
	return ICEPT_OK;
}

static struct icept *icept_new(struct mgr *m)
{
	struct icept *ic = calloc(1, sizeof(*ic));

	if (!ic)
		return NULL;
	ic->m = m;
	do /* never 0, never one in use (after 2^32 of them) */
		ic->id = ++m->next_icept_id;
	while (!ic->id || icept_by_id(m, ic->id));
	list_add_tail(&m->intercepts, &ic->link);
	m->n_intercepts++;
	return ic;
}

static void icept_attach(struct icept *ic, struct session *s, const struct msg_intercept *req, uint16_t port,
			 uint8_t proto)
{
	if (ic->s != s) {
		if (ic->s)
			ic->s->n_intercepts--;
		s->n_intercepts++;
	}
	ic->s = s;
	ic->req = *req;
	ic->port = port;
	ic->proto = proto;
	log_info("session %s: intercept '%s' of %s/%s port %u (%s) by %s", s->name, req->name, req->ns,
		 req->workload, port, mode_names[req->mode], req->holder);
}

static int icept_on_add(struct session *s, const uint8_t *p, size_t len)
{
	struct mgr *m = s->m;
	struct msg_intercept req;
	struct msg_intercept_result res = { .status = ICEPT_OK };
	struct icept *ic;
	uint8_t proto = IPPROTO_TCP, buf[512];
	struct http_filter hf;

	if (msg_intercept_decode(p, len, &req) < 0)
		return -EBADMSG;
	memcpy(s->icept_client, req.client, sizeof(s->icept_client));
	s->has_icept_client = true;
	memcpy(res.name, req.name, sizeof(res.name));
	res.port = icept_resolve(m, &req, &proto);
	if (icept_filter_http(&req.filter, &hf, res.text, sizeof(res.text)) < 0) {
		res.status = ICEPT_REFUSED;
	} else if (!session_covers(s, req.ns)) {
		m->st.intercepts_forbidden++;
		log_warn("session %s: intercept of %s/%s refused: its token does not cover namespace %s", s->name,
			 req.ns, req.workload, req.ns);
		res.status = ICEPT_REFUSED;
		snprintf(res.text, sizeof(res.text), "this laptop's token does not cover namespace %s "
			 "(its namespaces= line; ask for a token that does)", req.ns);
	} else if (req.resume && !icept_by_name(m, req.client, req.name)) {
		res.status = ICEPT_GONE;
		snprintf(res.text, sizeof(res.text), "gone: its laptop stayed away longer than %d s, or this "
			 "manager restarted", MGR_INTERCEPT_TTL_MS / 1000);
	} else if (res.port && proto == IPPROTO_UDP && req.mode != ICEPT_GLOBAL) {
		res.status = ICEPT_REFUSED;
		snprintf(res.text, sizeof(res.text), "port %u of %s/%s is UDP: intercepted globally only (no HTTP "
			 "filter, no mirror)", res.port, req.ns, req.workload);
	} else if (!res.port) {
		res.status = ICEPT_UNKNOWN;
		snprintf(res.text, sizeof(res.text), req.port[0] ? "no agent of %s/%s lists port '%s' (subway list)"
				     : "no pod of %s/%s runs the agent (subway inject %s), or it has several ports: "
				       "name one (--port LOCAL:REMOTE)",
			 req.ns, req.workload, req.port[0] ? req.port : req.workload);
	} else if ((res.status = icept_check(s, &req, res.port, res.text, sizeof(res.text))) == ICEPT_OK) {
		ic = icept_by_name(m, req.client, req.name);
		if (!ic && !(ic = icept_new(m)))
			res.status = ICEPT_ERROR;
		if (ic) {
			icept_attach(ic, s, &req, res.port, proto);
			res.id = ic->id;
			res.proto = proto;
		}
	}
	if (res.status != ICEPT_OK) {
		res.port = 0;
		res.proto = 0;
	}
	icept_send(s, buf, msg_intercept_result_encode(buf, sizeof(buf), &res));
	if (res.status == ICEPT_OK) {
		intercept_agents_changed(m, req.ns, req.workload);
		icept_send_state(icept_by_name(m, req.client, req.name)); /* WAITING while the agents apply it */
	}
	return 0;
}

/* ---- LEAVE, LIST, ENV ---- */

static void icept_free(struct icept *ic)
{
	struct mgr *m = ic->m;
	struct list *i, *next;

	list_for_each_safe(i, next, &m->links) { /* its connections in flight end */
		struct ilink *l = list_entry(i, struct ilink, link);
		if (l->ic == ic)
			l->ic = NULL;
	}
	if (ic->s)
		ic->s->n_intercepts--;
	list_del(&ic->link);
	m->n_intercepts--;
	intercept_agents_changed(m, ic->req.ns, ic->req.workload);
	free(ic);
}

static void icept_on_leave(struct session *s, const struct msg_query *q)
{
	struct list *i;

	for (i = s->m->intercepts.next; i != &s->m->intercepts; i = i->next) {
		struct icept *ic = list_entry(i, struct icept, link);
		bool mine = ic->s == s || (!ic->s && s->has_icept_client &&
					    !memcmp(ic->req.client, s->icept_client, ICEPT_CLIENT_LEN));
		if (mine && !strcmp(ic->req.name, q->text)) {
			log_info("session %s: intercept '%s' left", s->name, ic->req.name);
			icept_free(ic);
			return;
		}
	}
}

static void list_json_icept(struct json *j, const struct icept *ic)
{
	const struct icept_filter *f = &ic->req.filter;

	json_obj_begin(j, NULL);
	json_str(j, "name", ic->req.name);
	json_uint(j, "port", ic->port);
	json_str(j, "mode", mode_names[ic->req.mode]);
	json_str(j, "state", state_names[icept_state(ic)]);
	json_str(j, "holder", ic->req.holder);
	json_obj_begin(j, "filter");
	json_obj_begin(j, "headers");
	for (int i = 0; i < f->n_headers; i++)
		json_str(j, f->hname[i], f->hvalue[i]);
	json_obj_end(j);
	json_str(j, "path_prefix", f->path_prefix[0] ? f->path_prefix : NULL);
	json_obj_end(j);
	json_uint(j, "connections", ic->connections);
	json_uint(j, "requests", ic->requests);
	json_obj_end(j);
}

/* The workload of agent a, once: its ports, its agents, its intercepts. */
static void list_json_workload(struct json *j, struct mgr *m, const struct agent *a)
{
	struct list *i;
	char ip[16];

	json_obj_begin(j, NULL);
	json_str(j, "namespace", a->h.ns);
	json_str(j, "name", a->h.workload);
	json_arr_begin(j, "ports");
	for (int k = 0; k < a->h.n_ports; k++) {
		json_obj_begin(j, NULL);
		json_str(j, "name", a->h.ports[k].name[0] ? a->h.ports[k].name : NULL);
		json_uint(j, "port", a->h.ports[k].port);
		json_str(j, "protocol", a->h.ports[k].proto == IPPROTO_UDP ? "udp" : "tcp");
		json_obj_end(j);
	}
	json_arr_end(j);
	json_arr_begin(j, "agents");
	for (i = m->agents.next; i != &m->agents; i = i->next) {
		const struct agent *b = list_entry(i, struct agent, link);
		if (!agent_serves(b, a->h.ns, a->h.workload))
			continue;
		json_obj_begin(j, NULL);
		json_str(j, "pod", b->h.pod);
		json_str(j, "ip", ip4_str(b->h.pod_ip, ip));
		json_bool(j, "ready", agent_current(b)); /* it applied its rules */
		json_obj_end(j);
	}
	json_arr_end(j);
	json_arr_begin(j, "intercepts");
	for (i = m->intercepts.next; i != &m->intercepts; i = i->next) {
		const struct icept *ic = list_entry(i, struct icept, link);
		if (!strcmp(ic->req.ns, a->h.ns) && !strcmp(ic->req.workload, a->h.workload))
			list_json_icept(j, ic);
	}
	json_arr_end(j);
	json_obj_end(j);
}

/* The first agent of its workload, in the list's order. */
static bool first_of_workload(const struct mgr *m, const struct agent *a)
{
	const struct list *i;

	for (i = m->agents.next; i != &a->link; i = i->next)
		if (agent_serves(list_entry(i, struct agent, link), a->h.ns, a->h.workload))
			return false;
	return true;
}

static void icept_on_list(struct session *s, const struct msg_query *q)
{
	struct mgr *m = s->m;
	struct msg_query r = { .id = q->id };
	char *doc = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&doc, &len);
	struct json j;
	struct list *i;

	if (!fp)
		return;
	json_init(&j, fp, false);
	json_obj_begin(&j, NULL);
	json_arr_begin(&j, "workloads");
	if (q->text[0] && !session_covers(s, q->text)) {
		m->st.intercepts_forbidden++;
		log_warn("session %s: list of namespace %s refused: its token does not cover it", s->name, q->text);
	}
	for (i = m->agents.next; i != &m->agents; i = i->next) {
		struct agent *a = list_entry(i, struct agent, link);
		if (a->hello && (!q->text[0] || !strcmp(a->h.ns, q->text)) && session_covers(s, a->h.ns) &&
		    first_of_workload(m, a))
			list_json_workload(&j, m, a);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
	fclose(fp);
	r.data = (const uint8_t *)doc;
	r.len = len < 65000 ? (uint16_t)len : 0; /* too long a list: an empty reply */
	icept_send(s, m->scratch, msg_query_encode(m->scratch, sizeof(m->scratch), FT_LIST_REPLY, &r));
	free(doc);
}

static void icept_on_env(struct session *s, const struct msg_query *q)
{
	struct mgr *m = s->m;
	struct msg_query r = { .id = q->id };
	struct list *i;

	for (i = m->intercepts.next; i != &m->intercepts; i = i->next) {
		struct icept *ic = list_entry(i, struct icept, link);
		struct list *k;
		if (ic->s != s || strcmp(ic->req.name, q->text))
			continue;
		for (k = m->agents.next; k != &m->agents; k = k->next) {
			struct agent *a = list_entry(k, struct agent, link);
			if (agent_serves(a, ic->req.ns, ic->req.workload)) {
				r.data = a->env;
				r.len = a->h.env_len;
				break;
			}
		}
	}
	icept_send(s, m->scratch, msg_query_encode(m->scratch, sizeof(m->scratch), FT_ENV_REPLY, &r));
}

int intercept_frame(struct session *s, uint8_t type, const uint8_t *p, size_t len)
{
	struct msg_query q;

	if (type == FT_INTERCEPT)
		return icept_on_add(s, p, len);
	if (msg_query_decode(type, p, len, &q) < 0)
		return -EBADMSG;
	if (type == FT_LEAVE)
		icept_on_leave(s, &q);
	else if (type == FT_LIST)
		icept_on_list(s, &q);
	else if (type == FT_ENV)
		icept_on_env(s, &q);
	else
		return -EBADMSG;
	return 0;
}

void intercept_session_lost(struct session *s)
{
	struct mgr *m = s->m;
	struct list *i;

	for (i = m->intercepts.next; i != &m->intercepts; i = i->next) {
		struct icept *ic = list_entry(i, struct icept, link);
		if (ic->s != s)
			continue;
		ic->s = NULL;
		ic->inactive_ms = loop_now_ms(m->loop);
		log_info("intercept '%s' of %s/%s: its laptop is gone; INACTIVE, the app serves again", ic->req.name,
			 ic->req.ns, ic->req.workload);
		intercept_agents_changed(m, ic->req.ns, ic->req.workload);
	}
	s->n_intercepts = 0;
}

/* Every second: intercepts whose laptop stayed away go; silent agents
 * go; laptops hear their intercepts' counters now and then. */
static void icept_sweep(struct loop *l, struct loop_timer *t)
{
	struct mgr *m = t->arg;
	uint64_t now = loop_now_ms(l);
	struct list *i, *next;
	bool state_due = now - m->icept_state_ms >= MGR_STATE_EVERY_MS;

	agent_sweep(m);
	list_for_each_safe(i, next, &m->sessions) {
		struct session *s = list_entry(i, struct session, link);
		if (s->n_intercepts)
			session_check_alive(s, now);
	}
	list_for_each_safe(i, next, &m->intercepts) {
		struct icept *ic = list_entry(i, struct icept, link);
		if (!ic->s && now - ic->inactive_ms > MGR_INTERCEPT_TTL_MS) {
			log_info("intercept '%s' of %s/%s: gone (its laptop did not come back)", ic->req.name,
				 ic->req.ns, ic->req.workload);
			icept_free(ic);
		} else if (ic->s && (state_due || ic->state_sent != icept_state(ic))) {
			icept_send_state(ic); /* an agent too slow to apply its rules is left behind */
		}
	}
	if (state_due)
		m->icept_state_ms = now;
	loop_timer_arm(l, &m->icept_timer, MGR_INTERCEPT_SWEEP_MS, icept_sweep, m);
}

void intercept_init(struct mgr *m)
{
	list_init(&m->agents);
	list_init(&m->intercepts);
	list_init(&m->links);
	loop_timer_arm(m->loop, &m->icept_timer, MGR_INTERCEPT_SWEEP_MS, icept_sweep, m);
}

void intercept_fini(struct mgr *m)
{
	if (!m->loop)
		return;
	loop_timer_cancel(m->loop, &m->icept_timer);
	agent_free_all(m);
	while (!list_empty(&m->intercepts))
		icept_free(list_first(&m->intercepts, struct icept, link));
}

/* ---- carrying a connection ---- */

/* Both streams reset if still up (their fds are back out of the loop),
 * the socketpair closed, the link gone. */
static void ilink_free(struct ilink *l)
{
	if (l->as_up)
		mux_reset(&l->as);
	if (l->ls_up)
		mux_reset(&l->ls);
	for (int k = 0; k < 2; k++)
		if (l->sp[k] >= 0)
			close(l->sp[k]);
	list_del(&l->link);
	free(l);
}

void intercept_carry(struct agent *a, struct mux *mx, uint32_t st_id, uint32_t id)
{
	struct mgr *m = a->m;
	struct icept *ic = icept_by_id(m, id);
	struct mux *trunk = ic && ic->s ? trunk_pick(ic->s) : NULL;
	struct msg_dial d = { .port = ic ? ic->req.local_port : 0, .timeout_ms = ILINK_DIAL_MS };
	struct ilink *l;

	if (!ic || !agent_serves(a, ic->req.ns, ic->req.workload)) {
		mux_refuse(mx, st_id, DIAL_FORBIDDEN);
		return;
	}
	if (!trunk || !(l = calloc(1, sizeof(*l)))) {
		mux_refuse(mx, st_id, DIAL_UNREACHABLE); /* the laptop is gone: the agent serves the app */
		return;
	}
	l->ic = ic;
	l->sp[0] = l->sp[1] = -1;
	d.addr = ic->req.local_addr;
	list_add(&m->links, &l->link);
	if (mux_attach(mx, &l->as, st_id, l) < 0) {
		ilink_free(l);
		return;
	}
	l->as_up = true;
	if (mux_open(trunk, &l->ls, &d, l) < 0) {
		mux_result(&l->as, DIAL_LIMIT);
		l->as_up = false;
		ilink_free(l);
		return;
	}
	l->ls_up = true;
	ic->connections++;
}

/* The laptop dialled its local port: the two streams meet in a socketpair. */
void intercept_link_result(struct mux_stream *st, uint8_t status)
{
	struct ilink *l = st->owner;

	if (status != DIAL_OK) {
		l->ls_up = false; /* detached by the mux */
		mux_result(&l->as, status);
		l->as_up = false;
		ilink_free(l);
		return;
	}
	/* ls moves sp[0], as sp[1]; each end closes when its stream is done. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, l->sp) < 0) {
		l->sp[0] = l->sp[1] = -1;
		ilink_free(l);
		return;
	}
	if (mux_bind(&l->ls, l->sp[0]) < 0 || mux_result(&l->as, DIAL_OK) < 0 || mux_bind(&l->as, l->sp[1]) < 0)
		ilink_free(l);
}

/* One side ended.  A reset goes on to the other side as a reset (a
 * socketpair would only pass an EOF); a clean end flowed through the
 * socketpair already.  Both ended: the link goes. */
static void ilink_side_done(struct ilink *l, struct mux_stream *st, bool *up, int err)
{
	int *fd = st == &l->ls ? &l->sp[0] : &l->sp[1];

	*up = false;
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
	if (err) {
		if (l->as_up) {
			mux_reset(&l->as);
			l->as_up = false;
		}
		if (l->ls_up) {
			mux_reset(&l->ls);
			l->ls_up = false;
		}
	}
	if (!l->as_up && !l->ls_up)
		ilink_free(l);
}

void intercept_link_done(struct mux_stream *st, int err)
{
	struct ilink *l = st->owner;

	ilink_side_done(l, st, &l->ls_up, err);
}

void intercept_agent_stream_done(struct mux_stream *st, int err)
{
	struct ilink *l = st->owner;

	ilink_side_done(l, st, &l->as_up, err);
}

void intercept_stats(struct agent *a, const struct msg_agent_stats *st)
{
	bool applied = st->gen != a->gen_acked && st->gen == a->gen_sent;

	a->gen_acked = st->gen;
	if (applied)
		icept_states_changed(a->m, a->h.ns, a->h.workload);
	for (int i = 0; i < st->n; i++) {
		struct icept *ic = icept_by_id(a->m, st->s[i].id);
		if (ic && agent_serves(a, ic->req.ns, ic->req.workload)) {
			ic->requests += st->s[i].requests; /* the agent sends what is new since it last did */
			ic->dropped += st->s[i].dropped;
		}
	}
}
