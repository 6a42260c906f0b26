/* `subway agent` (agent.h). */
#include "agent/agent.h"

#include <errno.h>
#include <getopt.h>
#include <linux/capability.h>
#include <netinet/in.h>
#include <linux/netfilter_ipv4.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/hproxy.h"
#include "commands.h"
#include "common/log.h"
#include "common/priv.h"
#include "common/util.h"
#include "net/dgbridge.h"
#include "net/relay.h"
#include "net/sock.h"
#include "net/tls.h"

extern char **environ;

/* Streams on the connection to the manager have one of two owners: a
 * client connection sent whole (global), or one laptop leg of the HTTP
 * proxy.  Each starts with its callbacks. */
struct astream_ops {
	void (*result)(struct mux_stream *st, uint8_t status);
	void (*done)(struct mux_stream *st, int err);
};

enum aconn_kind { AC_APP, AC_STREAM, AC_HTTP };

/* The routes of a port's HTTP proxies: every active personal or mirror
 * intercept on it, one table shared by the port's connections (their
 * proxies borrow it), rebuilt when the rules change. */
struct aroutes {
	struct list link;        /* a->routes */
	uint16_t port;
	unsigned users;          /* connections whose proxy reads it */
	struct hproxy_cfg cfg;
};

_Static_assert(HPROXY_ROUTES_MAX >= ICEPT_RULES_MAX, "every intercept on one port must fit a proxy's routes");

/* One client connection the redirect brought to the agent. */
struct aconn {
	const struct astream_ops *ops; /* first: the stream's owner */
	struct agent *a;
	struct list link;        /* a->conns */
	enum aconn_kind kind;
	int fd;                  /* the client's; -1 once a relay, stream or proxy has it */
	int app;                 /* AC_APP: the app's, while connecting */
	uint16_t port;
	struct mux_stream st;    /* AC_STREAM */
	bool streamed;           /* st was opened (its fd is valid) */
	struct relay relay;      /* AC_APP, once connected */
	struct hproxy *hp;       /* AC_HTTP */
	struct aroutes *routes;  /* AC_HTTP: its port's, which hp reads */
	struct list legs;        /* AC_HTTP: struct aleg whose dial is not answered */
};

/* A laptop leg of the HTTP proxy: a socketpair whose far end a stream
 * moves.  The proxy holds its end until the laptop accepts the stream. */
struct aleg {
	const struct astream_ops *ops;
	struct mux_stream st;
	int fd;                  /* the stream's end, until bound */
	struct aconn *c;         /* the proxy's connection, while it waits (c->legs) */
	struct list link;
	int pfd;                 /* the proxy's end ... */
	ino_t pino;              /* ... and its inode: fd numbers are reused */
};

static void agent_down(struct agent *a, const char *why);
static void aconn_to_app(struct aconn *c);
static void uports_reconcile(struct agent *a);
static void uports_close_all(struct agent *a);

/* ---- the rules ---- */

/* The rule that decides a connection to port: a global one if active,
 * else the first active personal or mirror one; -1 when none is active. */
static int agent_rule_for(const struct agent *a, uint16_t port)
{
	int best = -1;

	for (int i = 0; i < a->rules.n; i++) {
		const struct icept_rule *r = &a->rules.r[i];
		if (!r->active || r->port != port || r->proto != IPPROTO_TCP)
			continue;
		if (r->mode == ICEPT_GLOBAL)
			return i;
		if (best < 0)
			best = i;
	}
	return best;
}

/* Redirects exactly the ports with an active intercept. */
static void agent_reconcile(struct agent *a)
{
	for (size_t i = a->nft.n; i-- > 0;) {
		struct agent_nft_rdr r = a->nft.r[i];
		if (r.proto == IPPROTO_TCP && agent_rule_for(a, r.port) < 0 &&
		    agent_nft_unredirect(&a->nft, r.proto, r.port) < 0)
			log_warn("%s", agent_nft_error(&a->nft));
	}
	uports_reconcile(a);
	for (int i = 0; i < a->rules.n; i++) {
		const struct icept_rule *r = &a->rules.r[i];
		bool on = false;
		if (r->proto != IPPROTO_TCP)
			continue; /* uports_reconcile's */
		for (size_t k = 0; k < a->nft.n; k++)
			on |= a->nft.r[k].port == r->port && a->nft.r[k].proto == IPPROTO_TCP;
		if (r->active && !on &&
		    agent_nft_redirect(&a->nft, IPPROTO_TCP, r->port, a->cfg.listen_port, (uint32_t)geteuid()) < 0)
			log_warn("%s", agent_nft_error(&a->nft));
		else if (r->active && !on)
			log_info("port %u: intercepted (%s)", r->port, r->mode == ICEPT_GLOBAL ? "global" : r->mode ==
				 ICEPT_PERSONAL ? "personal" : "mirror");
	}
}

/* cfg's routes: the active personal and mirror rules on port, each named
 * by its intercept's id. */
static void agent_routes_build(const struct agent *a, uint16_t port, struct hproxy_cfg *cfg)
{
	char err[160];

	cfg->n_routes = 0;
	for (int i = 0; i < a->rules.n && cfg->n_routes < HPROXY_ROUTES_MAX; i++) {
		const struct icept_rule *r = &a->rules.r[i];
		struct hproxy_route *rt = &cfg->routes[cfg->n_routes];
		if (!r->active || r->port != port || r->proto != IPPROTO_TCP ||
		    (r->mode != ICEPT_PERSONAL && r->mode != ICEPT_MIRROR))
			continue;
		rt->id = r->id;
		rt->mirror = r->mode == ICEPT_MIRROR;
		if (icept_filter_http(&r->filter, &rt->filter, err, sizeof(err)) < 0) {
			log_warn("intercept %u: %s (its requests go to the app)", r->id, err);
			continue; /* the manager checks filters: not seen */
		}
		cfg->n_routes++;
	}
}

/* Port's routes, made if no connection has them yet; NULL without memory. */
static struct aroutes *agent_routes_get(struct agent *a, uint16_t port)
{
	struct aroutes *rt;
	struct list *i;

	for (i = a->routes.next; i != &a->routes; i = i->next) {
		rt = list_entry(i, struct aroutes, link);
		if (rt->port == port) {
			rt->users++;
			return rt;
		}
	}
	if (!(rt = calloc(1, sizeof(*rt))))
		return NULL;
	rt->port = port;
	rt->users = 1;
	agent_routes_build(a, port, &rt->cfg);
	list_add(&a->routes, &rt->link);
	return rt;
}

static void agent_routes_put(struct aroutes *rt)
{
	if (rt && --rt->users == 0) {
		list_del(&rt->link);
		free(rt);
	}
}

/* The live proxies' routes follow the rules (each proxy reads them at each
 * request): a rule gone or inactive sends its requests to the app. */
static void agent_update_proxies(struct agent *a)
{
	for (struct list *i = a->routes.next; i != &a->routes; i = i->next) {
		struct aroutes *rt = list_entry(i, struct aroutes, link);
		agent_routes_build(a, rt->port, &rt->cfg);
	}
}

/* Nothing redirected: the app serves alone (the manager is gone). */
static void agent_unredirect_all(struct agent *a)
{
	memset(&a->rules, 0, sizeof(a->rules));
	agent_update_proxies(a);
	uports_close_all(a);
	memset(a->requests, 0, sizeof(a->requests));
	memset(a->dropped, 0, sizeof(a->dropped));
	if (a->nft.n && agent_nft_cleanup(&a->nft) < 0)
		log_warn("%s", agent_nft_error(&a->nft));
}

/* The counters since the last report, and the rules applied (gen). */
static int agent_send_stats(struct agent *a)
{
	struct msg_agent_stats st = { .gen = a->rules.gen, .n = a->rules.n };
	uint8_t buf[64 + ICEPT_RULES_MAX * 32];
	ssize_t n;

	for (int i = 0; i < st.n; i++) {
		st.s[i].id = a->rules.r[i].id;
		st.s[i].requests = a->requests[i];
		st.s[i].dropped = a->dropped[i];
	}
	n = msg_agent_stats_encode(buf, sizeof(buf), &st);
	if (n < 0 || mux_send_frame(a->mx, buf, (size_t)n) < 0)
		return n < 0 ? (int)n : -ENOBUFS;
	memset(a->requests, 0, sizeof(a->requests));
	memset(a->dropped, 0, sizeof(a->dropped));
	return 0;
}

static void agent_stats_due(struct loop *l, struct loop_timer *t)
{
	struct agent *a = t->arg;

	(void)l;
	if (a->mx)
		agent_send_stats(a);
}

static int agent_on_rules(struct agent *a, const uint8_t *p, size_t len)
{
	struct msg_agent_rules r;

	uint64_t q[ICEPT_RULES_MAX] = { 0 }, d[ICEPT_RULES_MAX] = { 0 };

	if (msg_agent_rules_decode(p, len, &r) < 0)
		return -EBADMSG;
	/* counters follow the rules' ids */
	for (int i = 0; i < r.n; i++)
		for (int k = 0; k < a->rules.n; k++)
			if (a->rules.r[k].id == r.r[i].id) {
				q[i] = a->requests[k];
				d[i] = a->dropped[k];
			}
	memcpy(a->requests, q, sizeof(q));
	memcpy(a->dropped, d, sizeof(d));
	a->rules = r;
	agent_reconcile(a);
	agent_update_proxies(a);
	return agent_send_stats(a); /* names r.gen: the manager knows the redirects are in place */
}

/* ---- connections ---- */

static void aconn_free(struct aconn *c)
{
	if (c->streamed && mux_attached(&c->st)) {
		mux_reset(&c->st); /* a bound socket is ours again */
		if (c->st.fd >= 0 && c->st.fd != c->fd) {
			sock_linger_rst(c->st.fd);
			close(c->st.fd);
		}
	}
	if (c->kind == AC_APP && c->relay.active)
		relay_close(&c->relay, true);
	while (c->kind == AC_HTTP && !list_empty(&c->legs)) { /* their answers find nobody */
		struct aleg *g = list_first(&c->legs, struct aleg, link);
		list_del(&g->link);
		g->c = NULL;
	}
	hproxy_free(c->hp);
	agent_routes_put(c->routes); /* after the proxy that read it */
	if (c->app >= 0) {
		loop_del(c->a->loop, c->app);
		close(c->app);
	}
	if (c->fd >= 0) {
		loop_del(c->a->loop, c->fd);
		sock_linger_rst(c->fd);
		close(c->fd);
	}
	list_del(&c->link);
	c->a->n_conns--;
	free(c);
}

static void aconn_relay_done(struct relay *r, int err, void *arg)
{
	struct aconn *c = arg;

	relay_close(r, err != 0);
	aconn_free(c);
}

static void aconn_on_app(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct aconn *c = arg;
	int r = sock_connect_result(fd);

	if (r == 0 && !(events & LOOP_OUT))
		return;
	loop_del(l, fd);
	if (r < 0 || relay_start(&c->relay, l, c->fd, fd, aconn_relay_done, c) < 0) {
		close(fd);
		c->app = -1;
		aconn_free(c);
		return;
	}
	c->app = c->fd = -1; /* the relay's */
}

/* To the app on its real port (the agent's uid is not redirected). */
static void aconn_to_app(struct aconn *c)
{
	struct agent *a = c->a;

	c->kind = AC_APP;
	c->app = sock_connect_tcp(a->cfg.hello.pod_ip, c->port, 0);
	if (c->app < 0 || loop_add(a->loop, c->app, LOOP_OUT, aconn_on_app, c) < 0) {
		if (c->app >= 0)
			close(c->app);
		c->app = -1;
		aconn_free(c);
	}
}

static void aconn_result(struct mux_stream *st, uint8_t status)
{
	struct aconn *c = container_of(st, struct aconn, st);

	if (status != DIAL_OK) { /* the laptop is away: the app answers */
		log_debug("port %u: the laptop did not take it (%s): to the app", c->port, dial_status_name(status));
		aconn_to_app(c);
		return;
	}
	if (mux_bind(&c->st, c->fd) < 0) {
		aconn_free(c);
		return;
	}
	c->fd = -1;
}

static void aconn_done(struct mux_stream *st, int err)
{
	struct aconn *c = container_of(st, struct aconn, st);

	if (st->fd >= 0) {
		if (err)
			sock_linger_rst(st->fd);
		close(st->fd);
	}
	aconn_free(c);
}

static const struct astream_ops aconn_ops = { .result = aconn_result, .done = aconn_done };

/* The laptop answered the leg's dial: the proxy may use its end, or
 * hears it failed (a 502, or a copy dropped). */
static void aleg_result(struct mux_stream *st, uint8_t status)
{
	struct aleg *g = container_of(st, struct aleg, st);
	struct aconn *c = g->c;
	bool ok = status == DIAL_OK && mux_bind(&g->st, g->fd) == 0;
	struct stat sb;

	if (c) {
		list_del(&g->link);
		g->c = NULL;
		if (fstat(g->pfd, &sb) == 0 && sb.st_ino == g->pino)
			hproxy_upstream_ready(c->hp, g->pfd, ok ? 0 : status == DIAL_REFUSED ? -ECONNREFUSED
												: -EHOSTUNREACH);
	}
	if (ok)
		return;
	if (status == DIAL_OK)
		mux_reset(&g->st);
	close(g->fd);
	free(g);
}

static void aleg_done(struct mux_stream *st, int err)
{
	struct aleg *g = container_of(st, struct aleg, st);
	struct stat sb;

	if (g->c) { /* ended before an answer */
		list_del(&g->link);
		if (fstat(g->pfd, &sb) == 0 && sb.st_ino == g->pino)
			hproxy_upstream_ready(g->c->hp, g->pfd, -ECONNRESET);
	}
	if (err)
		sock_linger_rst(g->fd);
	close(g->fd);
	free(g);
}

static const struct astream_ops aleg_ops = { .result = aleg_result, .done = aleg_done };

/* The proxy wants an upstream: the app's port, or the laptop of route rt
 * through the manager (the dial names the intercept). */
static int aconn_upstream(void *arg, const struct hproxy_route *rt, bool *held)
{
	struct aconn *c = arg;
	struct agent *a = c->a;
	struct msg_dial d = { .port = c->port, .timeout_ms = 5000 };
	struct aleg *g;
	struct stat sb;
	int sp[2];

	if (!rt)
		return sock_connect_tcp(a->cfg.hello.pod_ip, c->port, 0);
	d.addr = rt->id;
	if (!a->mx || !(g = calloc(1, sizeof(*g))))
		return -ENOTCONN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0) {
		free(g);
		return -errno;
	}
	g->ops = &aleg_ops;
	g->fd = sp[1];
	g->pfd = sp[0];
	if (fstat(sp[0], &sb) < 0 || mux_open(a->mx, &g->st, &d, g) < 0) {
		close(sp[0]);
		close(sp[1]);
		free(g);
		return -ENOBUFS;
	}
	g->pino = sb.st_ino;
	g->c = c;
	list_add(&c->legs, &g->link);
	*held = true;
	return sp[0];
}

/* A request sent to a laptop, a copy mirrored or dropped: counted for the
 * intercept with that id while it is one of the rules (found by id each
 * time: the rules are replaced whole). */
static void aconn_counted(void *arg, uint32_t id, enum hproxy_count what, uint64_t n)
{
	struct aconn *c = arg;
	struct agent *a = c->a;

	for (int i = 0; i < a->rules.n; i++) {
		if (a->rules.r[i].id != id)
			continue;
		if (what == HPROXY_DROPPED)
			a->dropped[i] += n;
		else
			a->requests[i] += n; /* sent, or mirrored */
		if (a->mx && !loop_timer_armed(&a->stats))
			loop_timer_arm(a->loop, &a->stats, AGENT_STATS_MS, agent_stats_due, a);
		return;
	}
}

static void aconn_http_done(void *arg, struct hproxy *p, const struct hproxy_stats *st)
{
	struct aconn *c = arg;

	(void)st;
	hproxy_free(p);
	c->hp = NULL;
	aconn_free(c);
}

static const struct hproxy_ops aconn_hproxy_ops = {
	.upstream = aconn_upstream,
	.counted = aconn_counted,
	.done = aconn_http_done,
};

/* A redirected connection: to the laptop, through the proxy, or to the app. */
static void agent_on_accept(void *arg, int fd)
{
	struct agent *a = arg;
	struct sockaddr_in orig;
	socklen_t olen = sizeof(orig);
	struct aconn *c;
	const struct icept_rule *r;
	int i;

	if (a->n_conns >= AGENT_CONNS_MAX ||
	    getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &orig, &olen) < 0 || !(c = calloc(1, sizeof(*c)))) {
		sock_linger_rst(fd);
		close(fd);
		return;
	}
	*c = (struct aconn){ .ops = &aconn_ops, .a = a, .fd = fd, .app = -1, .port = ntohs(orig.sin_port) };
	list_add(&a->conns, &c->link);
	a->n_conns++;
	sock_nodelay(fd);
	i = agent_rule_for(a, c->port);
	if (i < 0 || !a->mx) {
		aconn_to_app(c);
		return;
	}
	r = &a->rules.r[i];
	if (r->mode == ICEPT_GLOBAL) {
		struct msg_dial d = { .addr = r->id, .port = c->port, .timeout_ms = 5000 };
		c->kind = AC_STREAM;
		if (mux_open(a->mx, &c->st, &d, &c->ops) < 0)
			aconn_to_app(c);
		else
			c->streamed = true;
		return;
	}
	c->kind = AC_HTTP;
	list_init(&c->legs);
	if (!(c->routes = agent_routes_get(a, c->port)) ||
	    !(c->hp = hproxy_new(a->loop, fd, &c->routes->cfg, &aconn_hproxy_ops, c))) {
		agent_routes_put(c->routes);
		c->routes = NULL;
		aconn_to_app(c);
		return;
	}
	c->fd = -1; /* the proxy's */
}

/* ---- UDP: global intercepts of UDP ports ---- */

/* One intercepted UDP port: a socket of its own, where the redirect sends
 * the port's datagrams, and a flow (a stream to the laptop) per client. */
struct uport {
	struct agent *a;
	uint16_t port;     /* the app's */
	uint16_t bound;    /* the socket's */
	uint32_t id;       /* the intercept's */
	int fd;
	struct list flows; /* struct uflow */
	unsigned n;
	struct list link;  /* a->uports */
};

struct uflow {
	const struct astream_ops *ops; /* first: the stream's owner points here */
	struct mux_stream st;
	struct uport *u;
	struct sockaddr_in peer;
	struct dgbridge b;
	int sp0;           /* the stream's end of the socketpair until the mux has it */
	bool streamed;     /* st attached */
	struct list link;  /* u->flows */
};

static void uflow_free(struct uflow *f)
{
	if (f->streamed && mux_attached(&f->st)) {
		mux_reset(&f->st); /* a bound socket is ours again */
		if (f->st.fd >= 0 && f->st.fd != f->sp0)
			close(f->st.fd);
	}
	if (f->sp0 >= 0)
		close(f->sp0);
	dgbridge_fini(&f->b);
	list_del(&f->link);
	f->u->n--;
	free(f);
}

static void uflow_result(struct mux_stream *st, uint8_t status)
{
	struct uflow *f = container_of(st, struct uflow, st);

	if (status != DIAL_OK) { /* the laptop did not take it: its datagrams are lost, as UDP's are */
		f->streamed = false;
		uflow_free(f);
		return;
	}
	if (mux_bind(&f->st, f->sp0) < 0) {
		uflow_free(f);
		return;
	}
	f->sp0 = -1;
}

static void uflow_done(struct mux_stream *st, int err)
{
	struct uflow *f = container_of(st, struct uflow, st);

	(void)err;
	if (st->fd >= 0 && st->fd != f->sp0)
		close(st->fd);
	f->streamed = false;
	uflow_free(f);
}

static const struct astream_ops uflow_ops = { .result = uflow_result, .done = uflow_done };

static void uflow_closed(struct dgbridge *b, void *arg)
{
	(void)b;
	uflow_free(arg);
}

static struct uflow *uflow_new(struct uport *u, const struct sockaddr_in *peer)
{
	struct agent *a = u->a;
	struct msg_dial d = { .addr = u->id, .port = u->port, .timeout_ms = 5000 };
	struct uflow *f;
	int sp[2];

	if (!a->mx || u->n >= AGENT_UDP_FLOWS || !(f = calloc(1, sizeof(*f))))
		return NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sp) < 0) {
		free(f);
		return NULL;
	}
	f->ops = &uflow_ops;
	f->u = u;
	f->peer = *peer;
	f->sp0 = sp[0];
	if (dgbridge_init(&f->b, a->loop, sp[1], u->fd, false, peer, uflow_closed, f) < 0) {
		close(sp[0]);
		close(sp[1]);
		free(f);
		return NULL;
	}
	list_add(&u->flows, &f->link);
	u->n++;
	if (mux_open(a->mx, &f->st, &d, &f->ops) < 0) {
		uflow_free(f);
		return NULL;
	}
	f->streamed = true;
	return f;
}

/* Datagrams to the port: each to its client's flow (made on its first). */
static void uport_on_read(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct uport *u = arg;
	static uint8_t dg[DGB_MAX];

	(void)events;
	for (int i = 0; i < DGB_READS; i++) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		struct uflow *f = NULL;
		struct list *k;
		ssize_t n = recvfrom(fd, dg, sizeof(dg), MSG_DONTWAIT, (struct sockaddr *)&peer, &plen);
		if (n < 0)
			return;
		for (k = u->flows.next; k != &u->flows && !f; k = k->next) {
			struct uflow *g = list_entry(k, struct uflow, link);
			if (g->peer.sin_addr.s_addr == peer.sin_addr.s_addr && g->peer.sin_port == peer.sin_port)
				f = g;
		}
		if (f || (f = uflow_new(u, &peer)))
			dgbridge_to_stream(&f->b, dg, (size_t)n);
	}
	loop_kick(l, fd);
}

static void uport_close(struct uport *u)
{
	struct agent *a = u->a;

	while (!list_empty(&u->flows))
		uflow_free(list_first(&u->flows, struct uflow, link));
	if (u->bound && agent_nft_unredirect(&a->nft, IPPROTO_UDP, u->port) < 0)
		log_warn("%s", agent_nft_error(&a->nft));
	loop_del(a->loop, u->fd);
	close(u->fd);
	list_del(&u->link);
	log_info("udp port %u: served by the app again", u->port);
	free(u);
}

static struct uport *uport_open(struct agent *a, const struct icept_rule *r)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	struct uport *u = calloc(1, sizeof(*u));

	if (!u)
		return NULL;
	*u = (struct uport){ .a = a, .port = r->port, .id = r->id, .fd = -1 };
	list_init(&u->flows);
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    getsockname(u->fd, (struct sockaddr *)&sa, &len) < 0 ||
	    loop_add(a->loop, u->fd, LOOP_IN, uport_on_read, u) < 0) {
		log_warn("udp port %u: no socket for it: %s", r->port, strerror(errno));
		if (u->fd >= 0)
			close(u->fd);
		free(u);
		return NULL;
	}
	list_add(&a->uports, &u->link);
	if (agent_nft_redirect(&a->nft, IPPROTO_UDP, r->port, ntohs(sa.sin_port), (uint32_t)geteuid()) < 0) {
		log_warn("%s", agent_nft_error(&a->nft));
		uport_close(u);
		return NULL;
	}
	u->bound = ntohs(sa.sin_port);
	log_info("udp port %u: intercepted (global)", r->port);
	return u;
}

static void uports_sweep(struct loop *l, struct loop_timer *t)
{
	struct agent *a = t->arg;
	uint64_t now = loop_now_ms(l);
	struct list *i, *k, *next;

	for (i = a->uports.next; i != &a->uports; i = i->next) {
		struct uport *u = list_entry(i, struct uport, link);
		list_for_each_safe(k, next, &u->flows) {
			struct uflow *f = list_entry(k, struct uflow, link);
			if (now - f->b.last_ms > AGENT_UDP_IDLE_MS)
				uflow_free(f);
		}
	}
	if (!list_empty(&a->uports))
		loop_timer_arm(l, &a->usweep, AGENT_UDP_IDLE_MS / 4, uports_sweep, a);
}

/* The active global rules on UDP ports have a uport; others none. */
static void uports_reconcile(struct agent *a)
{
	struct list *i, *next;

	list_for_each_safe(i, next, &a->uports) {
		struct uport *u = list_entry(i, struct uport, link);
		const struct icept_rule *r = NULL;
		for (int k = 0; k < a->rules.n && !r; k++)
			if (a->rules.r[k].active && a->rules.r[k].proto == IPPROTO_UDP && a->rules.r[k].port == u->port &&
			    a->rules.r[k].mode == ICEPT_GLOBAL)
				r = &a->rules.r[k];
		if (!r) {
			uport_close(u);
		} else if (r->id != u->id) { /* another intercept now: its clients start anew */
			while (!list_empty(&u->flows))
				uflow_free(list_first(&u->flows, struct uflow, link));
			u->id = r->id;
		}
	}
	for (int k = 0; k < a->rules.n; k++) {
		const struct icept_rule *r = &a->rules.r[k];
		bool have = false;
		if (!r->active || r->proto != IPPROTO_UDP || r->mode != ICEPT_GLOBAL)
			continue;
		for (i = a->uports.next; i != &a->uports && !have; i = i->next)
			have = list_entry(i, struct uport, link)->port == r->port;
		if (!have)
			uport_open(a, r);
	}
	if (!list_empty(&a->uports) && !loop_timer_armed(&a->usweep))
		loop_timer_arm(a->loop, &a->usweep, AGENT_UDP_IDLE_MS / 4, uports_sweep, a);
}

static void uports_close_all(struct agent *a)
{
	while (!list_empty(&a->uports))
		uport_close(list_first(&a->uports, struct uport, link));
}

/* ---- the connection to the manager ---- */

static void agent_stream_result(struct mux_stream *st, uint8_t status)
{
	(*(const struct astream_ops *const *)st->owner)->result(st, status);
}

static void agent_stream_done(struct mux_stream *st, int err)
{
	(*(const struct astream_ops *const *)st->owner)->done(st, err);
}

static void agent_mux_down(struct mux *mx, int err, void *arg)
{
	struct agent *a = arg;
	char why[80];

	(void)mx;
	snprintf(why, sizeof(why), "connection to the manager lost: %s", strerror(-err));
	agent_down(a, why);
}

static int agent_mux_frame(struct mux *mx, const struct frame_hdr *h, const uint8_t *p, void *arg)
{
	struct agent *a = arg;

	a->last_ms = loop_now_ms(a->loop);
	switch (h->type) {
	case FT_AGENT_RULES:
		return agent_on_rules(a, p, h->len);
	case FT_HEARTBEAT:
		return wire_heartbeat_ack(&mx->w, p, h->len) < 0 ? -EBADMSG : mux_kick(mx);
	case FT_HEARTBEAT_ACK:
		return 0;
	}
	return -EPROTO;
}

static const struct mux_ops agent_mux_ops = {
	.result = agent_stream_result,
	.done = agent_stream_done,
	.down = agent_mux_down,
	.frame = agent_mux_frame,
};

static void agent_tick(struct loop *l, struct loop_timer *t);

/* Authenticated: the connection becomes a mux, and the agent says hello. */
static int agent_on_ready(struct pconn *pc)
{
	struct agent *a = pc->owner;
	uint8_t buf[FRAME_MAX];
	struct wire w;
	ssize_t n;

	pconn_release(pc, &w);
	a->pc = NULL;
	if (!(a->mx = mux_new(a->loop, &w, MUX_INITIATOR, &agent_mux_ops, a))) {
		wire_drop(&w);
		agent_down(a, "out of memory");
		return 1;
	}
	n = msg_agent_hello_encode(buf, sizeof(buf), &a->cfg.hello);
	if (n < 0 || mux_send_frame(a->mx, buf, (size_t)n) < 0) {
		agent_down(a, "cannot say hello");
		return 1;
	}
	log_info("connected to the manager at %s", a->pcfg.where);
	a->backoff_ms = 0;
	a->last_ms = loop_now_ms(a->loop);
	loop_timer_arm(a->loop, &a->timer, AGENT_HEARTBEAT_MS, agent_tick, a);
	return 1;
}

static void agent_on_fail(struct pconn *pc, int err, const char *why)
{
	struct agent *a = pc->owner;
	char msg[300];

	snprintf(msg, sizeof(msg), "%s", why[0] ? why : strerror(-err));
	pconn_close(pc, true);
	a->pc = NULL;
	agent_down(a, msg);
}

static const struct pconn_ops agent_pconn_ops = { .ready = agent_on_ready, .fail = agent_on_fail };

static void agent_connect(struct agent *a)
{
	a->pc = pconn_open(&a->pcfg, CONN_AGENT, &agent_pconn_ops, a);
	if (!a->pc)
		agent_down(a, strerror(errno));
}

static void agent_retry(struct loop *l, struct loop_timer *t)
{
	(void)l;
	agent_connect(t->arg);
}

/* The manager is gone (or never came): nothing is redirected, every
 * connection it carried is reset, the next attempt after a backoff. */
static void agent_down(struct agent *a, const char *why)
{
	log_warn("%s; the app serves alone, trying again", why);
	pconn_close(a->pc, true);
	a->pc = NULL;
	if (a->mx) {
		struct mux *mx = a->mx;
		a->mx = NULL;
		mux_free(mx); /* its streams end first */
	}
	agent_unredirect_all(a);
	a->backoff_ms = MIN(MAX(a->backoff_ms * 2, AGENT_BACKOFF_MIN_MS), AGENT_BACKOFF_MAX_MS);
	loop_timer_arm(a->loop, &a->timer, a->backoff_ms, agent_retry, a);
}

/* Heartbeats, the manager's silence, and the counters. */
static void agent_tick(struct loop *l, struct loop_timer *t)
{
	struct agent *a = t->arg;
	uint8_t buf[64];
	struct msg_heartbeat hb = { .t = loop_now_ms(l) };
	ssize_t n;

	if (loop_now_ms(l) - a->last_ms > AGENT_DEAD_MS) {
		agent_down(a, "no word from the manager");
		return;
	}
	n = msg_heartbeat_encode(buf, sizeof(buf), FT_HEARTBEAT, &hb);
	if (n > 0)
		mux_send_frame(a->mx, buf, (size_t)n);
	if (a->rules.n)
		agent_send_stats(a);
	loop_timer_arm(l, &a->timer, AGENT_HEARTBEAT_MS, agent_tick, a);
}

/* ---- configuration ---- */

/* SUBWAY_PORTS=name:port[/udp],... */
static int agent_ports(const char *s, struct msg_agent_hello *h)
{
	char buf[512], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", s ? s : "");
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		struct icept_port *p = &h->ports[h->n_ports];
		char *colon = strchr(t, ':'), *slash;
		uint16_t port;
		if (h->n_ports == ICEPT_PORTS_MAX)
			return -ENOSPC;
		p->proto = IPPROTO_TCP;
		if ((slash = strchr(t, '/'))) {
			if (strcmp(slash, "/udp") && strcmp(slash, "/tcp"))
				return -EINVAL;
			p->proto = !strcmp(slash, "/udp") ? IPPROTO_UDP : IPPROTO_TCP;
			*slash = 0;
		}
		if (colon)
			snprintf(p->name, sizeof(p->name), "%.*s", (int)(colon - t), t);
		if (port_parse(colon ? colon + 1 : t, &port) < 0)
			return -EINVAL;
		p->port = port;
		h->n_ports++;
	}
	return 0;
}

/* The app's environment: ours but the agent's own settings. */
static int agent_env(struct agent_cfg *c)
{
	static const char *const own[] = { "SUBWAY_" }; /* the app's POD_NAME and such are its own */
	size_t len = 0, cap = ICEPT_ENV_MAX;

	if (!(c->env = malloc(cap)))
		return -ENOMEM;
	for (char **e = environ; *e; e++) {
		size_t n = strlen(*e) + 1;
		bool skip = !strchr(*e, '=') || **e == '=';
		for (size_t i = 0; i < ARRAY_SIZE(own) && !skip; i++)
			skip = !strncmp(*e, own[i], strlen(own[i]));
		if (skip)
			continue;
		if (len + n > cap) {
			log_warn("the environment is larger than %d bytes: the rest is not reported", ICEPT_ENV_MAX);
			break;
		}
		memcpy(c->env + len, *e, n);
		len += n;
	}
	c->hello.env = (const uint8_t *)c->env;
	c->hello.env_len = (uint16_t)len;
	return 0;
}

static int agent_cfg_env(struct agent_cfg *c)
{
	const char *mgr = getenv("SUBWAY_MANAGER"), *dir = getenv("SUBWAY_AGENT_DIR");
	struct { const char *var; char *out; } names[] = {
		{ "SUBWAY_POD_NAME", c->hello.pod }, { "SUBWAY_POD_NAMESPACE", c->hello.ns }, { "SUBWAY_WORKLOAD", c->hello.workload },
	};

	if (!mgr || endpoint_parse(mgr, &c->mgr_addr, &c->mgr_port) < 0) {
		fprintf(stderr, "subway agent: SUBWAY_MANAGER must be the manager's IP:PORT, not '%s'\n", mgr ? mgr : "");
		return -EINVAL;
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		const char *v = getenv(names[i].var);
		if (!v || !v[0] || strlen(v) >= ICEPT_NAME_MAX || strpbrk(v, "/ ")) {
			fprintf(stderr, "subway agent: %s must be set (a name, no '/')\n", names[i].var);
			return -EINVAL;
		}
		snprintf(names[i].out, ICEPT_NAME_MAX, "%s", v);
	}
	if (!getenv("SUBWAY_POD_IP") || ip4_parse(getenv("SUBWAY_POD_IP"), &c->hello.pod_ip) < 0) {
		fprintf(stderr, "subway agent: SUBWAY_POD_IP must be the pod's IPv4 address\n");
		return -EINVAL;
	}
	if (agent_ports(getenv("SUBWAY_PORTS"), &c->hello) < 0) {
		fprintf(stderr, "subway agent: SUBWAY_PORTS must be name:port[/udp],... (at most %d), not '%s'\n",
			ICEPT_PORTS_MAX, getenv("SUBWAY_PORTS"));
		return -EINVAL;
	}
	snprintf(c->dir, sizeof(c->dir), "%s", dir ? dir : AGENT_DIR_DEFAULT);
	return agent_env(c);
}

/* The agents' token and the manager's certificate, from the Secret. */
static int agent_secrets(struct agent *a)
{
	struct token_file tf;
	char path[300], err[256] = "";
	int r;

	snprintf(path, sizeof(path), "%s/agent-token", a->cfg.dir);
	if ((r = auth_token_file_load(path, &tf, err, sizeof(err))) < 0) {
		log_err("%s: %s", path, err[0] ? err : strerror(-r));
		return r;
	}
	a->pcfg.token = tf.token;
	auth_token_wipe(&tf.token);
	snprintf(path, sizeof(path), "%s/cert.pem", a->cfg.dir);
	if ((r = tls_cert_fingerprint(path, a->pcfg.fingerprint, err, sizeof(err))) < 0 ||
	    !(a->pcfg.tls_ctx = tls_client_ctx(a->pcfg.fingerprint, err, sizeof(err)))) {
		log_err("%s: %s", path, err);
		return r < 0 ? r : -EINVAL;
	}
	return 0;
}

/* ---- main ---- */

static void agent_free(struct agent *a)
{
	while (!list_empty(&a->conns))
		aconn_free(list_first(&a->conns, struct aconn, link));
	if (a->loop)
		uports_close_all(a);
	if (a->mx)
		mux_free(a->mx);
	pconn_close(a->pc, false);
	if (a->nft.fd >= 0)
		agent_nft_close(&a->nft); /* the redirects go with us */
	listener_fini(&a->ls);
	if (a->loop) {
		loop_timer_cancel(a->loop, &a->timer);
		loop_timer_cancel(a->loop, &a->stats);
		loop_timer_cancel(a->loop, &a->usweep);
	}
	if (a->sig_fd >= 0)
		close(a->sig_fd);
	tls_ctx_free(a->pcfg.tls_ctx);
	auth_token_wipe(&a->pcfg.token);
	loop_free(a->loop);
	free(a->cfg.env);
	free(a);
}

static void agent_usage(FILE *fp)
{
	fprintf(fp, "usage: subway agent [-v] [--log FILE]\n\n"
		    "The sidecar of an injected workload's pods (subway inject): takes a port while a\n"
		    "laptop intercepts it.  Configured by its environment: SUBWAY_MANAGER (IP:PORT),\n"
		    "SUBWAY_WORKLOAD, SUBWAY_POD_NAME, SUBWAY_POD_NAMESPACE, SUBWAY_POD_IP, SUBWAY_PORTS (name:port,...),\n"
		    "SUBWAY_AGENT_DIR (agent-token and cert.pem, default %s); everything else in it\n"
		    "is the app's environment.  Needs CAP_NET_ADMIN in the pod's network namespace\n"
		    "(its container runs as uid 0 with that capability alone) and keeps only it.\n",
		AGENT_DIR_DEFAULT);
}

static int agent_start(struct agent *a)
{
	char ip[16];
	int r;

	a->pcfg.loop = a->loop;
	a->pcfg.addr = a->cfg.mgr_addr;
	a->pcfg.port = a->cfg.mgr_port;
	snprintf(a->pcfg.where, sizeof(a->pcfg.where), "%s:%u", ip4_str(a->cfg.mgr_addr, ip), a->cfg.mgr_port);
	snprintf(a->pcfg.client, sizeof(a->pcfg.client), "subway-agent");
	if ((r = agent_secrets(a)) < 0)
		return r;
	/* NET_ADMIN alone, for the redirect (common/priv.c) */
	if ((r = priv_drop(PRIV_CAP(CAP_NET_ADMIN))) < 0)
		return r;
	if ((r = agent_nft_open(&a->nft)) < 0 || (r = agent_nft_cleanup(&a->nft)) < 0) {
		log_err("cannot take ports over: %s", agent_nft_error(&a->nft)[0] ? agent_nft_error(&a->nft)
										: strerror(-r));
		return r;
	}
	r = listener_init(&a->ls, a->loop, sock_listen_tcp(0, a->cfg.listen_port, 1024), AGENT_ACCEPTS,
			  "redirected connections", agent_on_accept, a);
	if (r < 0) {
		log_err("cannot listen on port %u: %s", a->cfg.listen_port, strerror(-r));
		return r;
	}
	a->sig_fd = loop_signalfd(a->loop, (const int[]){ SIGTERM, SIGINT }, 2, loop_signal_stop, a);
	if (a->sig_fd < 0)
		return a->sig_fd;
	log_info("agent %s of %s/%s (%s, %u port(s)) started", a->cfg.hello.pod, a->cfg.hello.ns,
		 a->cfg.hello.workload, ip4_str(a->cfg.hello.pod_ip, ip), a->cfg.hello.n_ports);
	agent_connect(a);
	return 0;
}

int agent_main(int argc, char **argv)
{
	static const struct option opts[] = { { "log", required_argument, NULL, 'l' },
					      { "verbose", no_argument, NULL, 'v' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	struct agent *a;
	const char *logpath = NULL;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l': logpath = optarg; break;
		case 'v': log_threshold = LOG_DEBUG; break;
		case 'h': agent_usage(stdout); return 0;
		default: agent_usage(stderr); return 2;
		}
	}
	if (!(a = calloc(1, sizeof(*a))))
		return 1;
	a->sig_fd = -1;
	a->nft.fd = -1;
	a->ls.fd = -1;
	a->cfg.listen_port = AGENT_PORT;
	list_init(&a->conns);
	list_init(&a->routes);
	list_init(&a->uports);
	log_open(logpath, "subway-agent");
	if (agent_cfg_env(&a->cfg) < 0) {
		ret = 2;
		goto out;
	}
	if (!(a->loop = loop_new()) || agent_start(a) < 0)
		goto out;
	ret = loop_run(a->loop) < 0 ? 1 : 0;
	log_info("agent stopped");
out:
	agent_free(a);
	return ret;
}
