/* Intercept messages (intercept.h); layouts in docs/protocol.md. */
#include "proto/intercept.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "agent/http.h"
#include "common/cursor.h"

/* A name of the cluster's (namespace, workload, pod, intercept): printable,
 * and no '/' or space, so that "ns/workload" reads one way only. */
static bool icept_name_ok(const char *s)
{
	return s[0] && !strpbrk(s, "/ ");
}

/* u8 count, then count x (str name, str value); opt str path prefix. */
static void get_filter(struct cursor *c, struct icept_filter *f)
{
	f->n_headers = cursor_u8(c);
	if (f->n_headers > ICEPT_HEADERS_MAX) {
		cursor_fail(c);
		return;
	}
	for (int i = 0; i < f->n_headers; i++) {
		frame_get_text(c, f->hname[i], ICEPT_HNAME_MAX, false);
		frame_get_text(c, f->hvalue[i], ICEPT_HVALUE_MAX, false);
		if (strpbrk(f->hname[i], " :"))
			cursor_fail(c);
	}
	frame_get_text(c, f->path_prefix, ICEPT_PATH_MAX, true);
	if (f->path_prefix[0] && f->path_prefix[0] != '/')
		cursor_fail(c);
}

static void put_filter(struct wcursor *w, const struct icept_filter *f)
{
	if (f->n_headers > ICEPT_HEADERS_MAX || (f->path_prefix[0] && f->path_prefix[0] != '/')) {
		w->inval = true;
		return;
	}
	wcursor_u8(w, f->n_headers);
	for (int i = 0; i < f->n_headers; i++) {
		if (strpbrk(f->hname[i], " :"))
			w->inval = true;
		frame_put_text(w, f->hname[i], ICEPT_HNAME_MAX, false);
		frame_put_text(w, f->hvalue[i], ICEPT_HVALUE_MAX, false);
	}
	frame_put_text(w, f->path_prefix, ICEPT_PATH_MAX, true);
}

static bool mode_ok(uint8_t mode)
{
	return mode >= ICEPT_GLOBAL && mode <= ICEPT_MIRROR;
}

/* ---- INTERCEPT ---- */

static bool intercept_ok(const struct msg_intercept *m)
{
	return icept_name_ok(m->name) && icept_name_ok(m->ns) && icept_name_ok(m->workload) &&
	       m->local_port && mode_ok(m->mode) && (m->mode != ICEPT_GLOBAL || !m->filter.n_headers) &&
	       m->resume <= 1;
}

ssize_t msg_intercept_encode(uint8_t *out, size_t cap, const struct msg_intercept *m)
{
	struct wcursor w;

	frame_begin(&w, out, cap);
	if (!intercept_ok(m))
		w.inval = true;
	frame_put_text(&w, m->name, sizeof(m->name), false);
	frame_put_text(&w, m->ns, sizeof(m->ns), false);
	frame_put_text(&w, m->workload, sizeof(m->workload), false);
	frame_put_text(&w, m->port, sizeof(m->port), true);
	wcursor_u32(&w, m->local_addr);
	wcursor_u16(&w, m->local_port);
	wcursor_u8(&w, m->mode);
	put_filter(&w, &m->filter);
	frame_put_text(&w, m->holder, sizeof(m->holder), false);
	wcursor_bytes(&w, m->client, sizeof(m->client));
	wcursor_u8(&w, m->resume);
	return frame_end(&w, FT_INTERCEPT);
}

int msg_intercept_decode(const uint8_t *p, size_t len, struct msg_intercept *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	frame_get_text(&c, m->name, sizeof(m->name), false);
	frame_get_text(&c, m->ns, sizeof(m->ns), false);
	frame_get_text(&c, m->workload, sizeof(m->workload), false);
	frame_get_text(&c, m->port, sizeof(m->port), true);
	m->local_addr = cursor_u32(&c);
	m->local_port = cursor_u16(&c);
	m->mode = cursor_u8(&c);
	get_filter(&c, &m->filter);
	frame_get_text(&c, m->holder, sizeof(m->holder), false);
	cursor_bytes(&c, m->client, sizeof(m->client));
	m->resume = cursor_u8(&c);
	if (!c.err && !intercept_ok(m))
		cursor_fail(&c);
	return cursor_end(&c);
}

/* ---- INTERCEPT_RESULT, INTERCEPT_STATE ---- */

static bool result_ok(const struct msg_intercept_result *m)
{
	bool ok = m->status == ICEPT_OK;

	return icept_name_ok(m->name) && m->status <= ICEPT_GONE && ok == (m->id != 0) &&
	       (ok ? m->proto == IPPROTO_TCP || m->proto == IPPROTO_UDP : m->proto == 0);
}

ssize_t msg_intercept_result_encode(uint8_t *out, size_t cap, const struct msg_intercept_result *m)
{
	struct wcursor w;

	frame_begin(&w, out, cap);
	if (!result_ok(m))
		w.inval = true;
	frame_put_text(&w, m->name, sizeof(m->name), false);
	wcursor_u8(&w, m->status);
	wcursor_u32(&w, m->id);
	wcursor_u16(&w, m->port);
	wcursor_u8(&w, m->proto);
	frame_put_text(&w, m->text, sizeof(m->text), true);
	return frame_end(&w, FT_INTERCEPT_RESULT);
}

int msg_intercept_result_decode(const uint8_t *p, size_t len, struct msg_intercept_result *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	frame_get_text(&c, m->name, sizeof(m->name), false);
	m->status = cursor_u8(&c);
	m->id = cursor_u32(&c);
	m->port = cursor_u16(&c);
	m->proto = cursor_u8(&c);
	frame_get_text(&c, m->text, sizeof(m->text), true);
	if (!c.err && !result_ok(m))
		cursor_fail(&c);
	return cursor_end(&c);
}

static bool state_ok(uint8_t s)
{
	return s >= ICEPT_ACTIVE && s <= ICEPT_INACTIVE;
}

ssize_t msg_intercept_state_encode(uint8_t *out, size_t cap, const struct msg_intercept_state *m)
{
	struct wcursor w;

	frame_begin(&w, out, cap);
	if (!icept_name_ok(m->name) || !state_ok(m->state))
		w.inval = true;
	frame_put_text(&w, m->name, sizeof(m->name), false);
	wcursor_u8(&w, m->state);
	wcursor_u16(&w, m->pods);
	wcursor_u64(&w, m->connections);
	wcursor_u64(&w, m->requests);
	wcursor_u64(&w, m->dropped);
	return frame_end(&w, FT_INTERCEPT_STATE);
}

int msg_intercept_state_decode(const uint8_t *p, size_t len, struct msg_intercept_state *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	frame_get_text(&c, m->name, sizeof(m->name), false);
	m->state = cursor_u8(&c);
	m->pods = cursor_u16(&c);
	m->connections = cursor_u64(&c);
	m->requests = cursor_u64(&c);
	m->dropped = cursor_u64(&c);
	if (!c.err && (!icept_name_ok(m->name) || !state_ok(m->state)))
		cursor_fail(&c);
	return cursor_end(&c);
}

/* ---- AGENT_HELLO ---- */

static bool proto_ok(uint8_t proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP;
}

/* The environment: entries "KEY=VALUE", each NUL-terminated, KEY not empty. */
static bool env_ok(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		const uint8_t *nul = memchr(p + i, 0, len - i);
		const uint8_t *eq = memchr(p + i, '=', len - i);
		if (!nul || !eq || eq > nul || eq == p + i)
			return false;
		i = (size_t)(nul - p) + 1;
	}
	return true;
}

static bool agent_hello_ok(const struct msg_agent_hello *m)
{
	if (!icept_name_ok(m->pod) || !icept_name_ok(m->ns) || !icept_name_ok(m->workload) ||
	    m->n_ports > ICEPT_PORTS_MAX || m->env_len > ICEPT_ENV_MAX || !env_ok(m->env, m->env_len))
		return false;
	for (int i = 0; i < m->n_ports; i++)
		if (!m->ports[i].port || !proto_ok(m->ports[i].proto))
			return false;
	return true;
}

ssize_t msg_agent_hello_encode(uint8_t *out, size_t cap, const struct msg_agent_hello *m)
{
	struct wcursor w;

	frame_begin(&w, out, cap);
	if (!agent_hello_ok(m)) {
		w.inval = true;
		return frame_end(&w, FT_AGENT_HELLO);
	}
	frame_put_text(&w, m->pod, sizeof(m->pod), false);
	frame_put_text(&w, m->ns, sizeof(m->ns), false);
	frame_put_text(&w, m->workload, sizeof(m->workload), false);
	wcursor_u32(&w, m->pod_ip);
	wcursor_u8(&w, m->n_ports);
	for (int i = 0; i < m->n_ports; i++) {
		frame_put_text(&w, m->ports[i].name, ICEPT_PORT_MAX, true);
		wcursor_u16(&w, m->ports[i].port);
		wcursor_u8(&w, m->ports[i].proto);
	}
	frame_put_data(&w, m->env, m->env_len);
	return frame_end(&w, FT_AGENT_HELLO);
}

int msg_agent_hello_decode(const uint8_t *p, size_t len, struct msg_agent_hello *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	frame_get_text(&c, m->pod, sizeof(m->pod), false);
	frame_get_text(&c, m->ns, sizeof(m->ns), false);
	frame_get_text(&c, m->workload, sizeof(m->workload), false);
	m->pod_ip = cursor_u32(&c);
	m->n_ports = cursor_u8(&c);
	if (m->n_ports > ICEPT_PORTS_MAX)
		cursor_fail(&c);
	for (int i = 0; !c.err && i < m->n_ports; i++) {
		frame_get_text(&c, m->ports[i].name, ICEPT_PORT_MAX, true);
		m->ports[i].port = cursor_u16(&c);
		m->ports[i].proto = cursor_u8(&c);
	}
	frame_get_data(&c, &m->env, &m->env_len);
	if (!c.err && !agent_hello_ok(m))
		cursor_fail(&c);
	return cursor_end(&c);
}

/* ---- AGENT_RULES, AGENT_STATS ---- */

ssize_t msg_agent_rules_encode(uint8_t *out, size_t cap, const struct msg_agent_rules *m)
{
	struct wcursor w;

	frame_begin(&w, out, cap);
	if (m->n > ICEPT_RULES_MAX)
		w.inval = true;
	wcursor_u32(&w, m->gen);
	wcursor_u8(&w, m->n);
	for (int i = 0; i < m->n && i < ICEPT_RULES_MAX; i++) {
		const struct icept_rule *r = &m->r[i];
		if (!r->id || !r->port || !proto_ok(r->proto) || !mode_ok(r->mode))
			w.inval = true;
		wcursor_u32(&w, r->id);
		wcursor_u16(&w, r->port);
		wcursor_u8(&w, r->proto);
		wcursor_u8(&w, r->mode);
		wcursor_u8(&w, r->active);
		put_filter(&w, &r->filter);
	}
	return frame_end(&w, FT_AGENT_RULES);
}

int msg_agent_rules_decode(const uint8_t *p, size_t len, struct msg_agent_rules *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->gen = cursor_u32(&c);
	m->n = cursor_u8(&c);
	if (m->n > ICEPT_RULES_MAX)
		cursor_fail(&c);
	for (int i = 0; !c.err && i < m->n; i++) {
		struct icept_rule *r = &m->r[i];
		uint8_t active;
		r->id = cursor_u32(&c);
		r->port = cursor_u16(&c);
		r->proto = cursor_u8(&c);
		r->mode = cursor_u8(&c);
		active = cursor_u8(&c);
		get_filter(&c, &r->filter);
		if (!c.err && (!r->id || !r->port || !proto_ok(r->proto) || !mode_ok(r->mode) || active > 1))
			cursor_fail(&c);
		r->active = active;
	}
	return cursor_end(&c);
}

ssize_t msg_agent_stats_encode(uint8_t *out, size_t cap, const struct msg_agent_stats *m)
{
	struct wcursor w;

	frame_begin(&w, out, cap);
	if (m->n > ICEPT_RULES_MAX)
		w.inval = true;
	wcursor_u32(&w, m->gen);
	wcursor_u8(&w, m->n);
	for (int i = 0; i < m->n && i < ICEPT_RULES_MAX; i++) {
		wcursor_u32(&w, m->s[i].id);
		wcursor_u64(&w, m->s[i].connections);
		wcursor_u64(&w, m->s[i].requests);
		wcursor_u64(&w, m->s[i].dropped);
	}
	return frame_end(&w, FT_AGENT_STATS);
}

int msg_agent_stats_decode(const uint8_t *p, size_t len, struct msg_agent_stats *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->gen = cursor_u32(&c);
	m->n = cursor_u8(&c);
	if (m->n > ICEPT_RULES_MAX)
		cursor_fail(&c);
	for (int i = 0; !c.err && i < m->n; i++) {
		m->s[i].id = cursor_u32(&c);
		m->s[i].connections = cursor_u64(&c);
		m->s[i].requests = cursor_u64(&c);
		m->s[i].dropped = cursor_u64(&c);
	}
	return cursor_end(&c);
}

/* ---- LEAVE, LIST, ENV and the replies ---- */

static bool query_text_type(uint8_t type)
{
	return type == FT_LEAVE || type == FT_LIST || type == FT_ENV;
}

ssize_t msg_query_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_query *m)
{
	struct wcursor w;

	frame_begin(&w, out, cap);
	wcursor_u32(&w, m->id);
	if (query_text_type(type))
		frame_put_text(&w, m->text, sizeof(m->text), type == FT_LIST);
	else if (type == FT_LIST_REPLY || type == FT_ENV_REPLY)
		frame_put_data(&w, m->data, m->len);
	else
		w.inval = true;
	return frame_end(&w, type);
}

int msg_query_decode(uint8_t type, const uint8_t *p, size_t len, struct msg_query *m)
{
	struct cursor c;

	memset(m, 0, sizeof(*m));
	cursor_init(&c, p, len);
	m->id = cursor_u32(&c);
	if (query_text_type(type))
		frame_get_text(&c, m->text, sizeof(m->text), type == FT_LIST);
	else if (type == FT_LIST_REPLY || type == FT_ENV_REPLY)
		frame_get_data(&c, &m->data, &m->len);
	else
		cursor_fail(&c);
	if (!c.err && type == FT_ENV_REPLY && !env_ok(m->data, m->len))
		cursor_fail(&c);
	return cursor_end(&c);
}

int icept_filter_http(const struct icept_filter *in, struct http_filter *out, char *err, size_t errlen)
{
	char spec[ICEPT_HNAME_MAX + ICEPT_HVALUE_MAX + 2];

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < in->n_headers && i < ICEPT_HEADERS_MAX; i++) {
		snprintf(spec, sizeof(spec), "%s=%s", in->hname[i], in->hvalue[i]);
		if (http_filter_add(out, spec, err, errlen) < 0)
			return -EINVAL;
	}
	if (in->path_prefix[0] && http_filter_set_path(out, in->path_prefix, err, errlen) < 0)
		return -EINVAL;
	return 0;
}
