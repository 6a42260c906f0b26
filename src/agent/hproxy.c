/* The agent's per-connection HTTP routing proxy (hproxy.h).
 *
 * Two fixed buffers carry the bytes: cin from the client, uin from the
 * target of the request in flight.  In each, [off, cls) are bytes known to
 * belong to the message in flight, waiting to be sent on; [cls, len) were
 * read but not yet classified (the rest of a head, the next request).  A
 * message is classified as it arrives (http.h), so what is sent on is
 * always exactly one message: a request never runs into the next, and a
 * response never gets bytes its upstream sent after it.
 *
 * An fd that reports EPOLLHUP while its bytes have nowhere to go would
 * wake the level-triggered loop forever: an upstream is then taken out of
 * the loop ("detached") and read as room appears; a client is gone. */
#include "agent/hproxy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/outbuf.h"
#include "net/sock.h"

#define HP_BUF (32 * 1024)          /* each way */
#define HP_MIRROR_MAX (1024 * 1024) /* bytes of copies waiting for the laptop */
#define HP_COPIES_MAX 128           /* ... and whole copies */
#define HP_LINGER_MS 2000           /* draining a client after our FIN */
#define HP_LINGER_MAX (1024 * 1024) /* ... and at most this much of it */
#define HP_SINK_MS 5000             /* copies still going to the laptop after the client's end */
#define HP_ROUNDS 8                 /* steps of progress per wakeup */
#define HP_SCRATCH 16384            /* bytes read per wakeup from idle upstreams */
#define HP_IDLE_MS 75000            /* hproxy_cfg.idle_ms when 0 */

struct hp_buf {
	size_t off, cls, len;
	char p[HP_BUF];
};

/* The upstreams: the app's, a laptop's for requests, a laptop's for copies. */
enum hp_slot { UP_APP = HPROXY_APP, UP_LAPTOP = HPROXY_LAPTOP, UP_MIRROR, UP_N };

struct hp_up {
	int fd;
	uint32_t route;  /* the route it was opened for (0 for the app) */
	bool connecting; /* not yet writable once */
	bool held;       /* ... nor accepted by the far end (hproxy_upstream_ready) */
	bool eof;        /* EOF read: nothing more comes, nothing more is sent */
	bool detached;   /* out of the loop (see above) */
	bool shut;       /* SHUT_WR sent */
};

enum hp_state {
	HP_HEAD,     /* waiting for a request head */
	HP_EXCHANGE, /* a request in flight to p->t */
	HP_RAW,      /* after an upgrade: bytes both ways with p->t */
	HP_CLOSING,  /* the last bytes (or our own reply) to the client, then a FIN */
	HP_LINGER,   /* draining the client after the FIN */
	HP_SINKING,  /* the client is gone; the copies still go to the laptop, then a FIN */
	HP_DONE,
};

enum hp_resp { RESP_HEAD, RESP_BODY, RESP_DONE };

struct hproxy {
	struct loop *loop;
	const struct hproxy_cfg *cfg;
	const struct hproxy_ops *ops;
	void *arg;
	int cfd;
	bool cin_eof;  /* the client's EOF was read */
	bool cshut;    /* SHUT_WR sent to the client (raw relay) */
	enum hp_state state;
	enum hp_slot t; /* of the exchange or the raw relay: UP_APP or UP_LAPTOP */
	struct hp_up up[UP_N];
	struct http_head head; /* the request's, then its response's */
	struct http_body reqb, respb;
	enum hp_resp resp;
	enum http_method method;
	bool req_keep, req_upgrade, resp_keep;
	bool freeing;       /* hproxy_free: nothing more is counted */
	bool copying;       /* the request in flight is being copied to the laptop */
	uint64_t sent_this; /* bytes of this exchange's answer sent to the client */
	uint64_t lingered;
	struct outbuf copy; /* mirror copies for the laptop of up[UP_MIRROR] */
	/* Where each whole copy waiting in copy ends, in copy_in's terms (a
	 * ring): once copy_out passes its end, it was sent whole. */
	uint64_t copy_in, copy_out; /* bytes queued, sent, on this connection */
	uint64_t copy_end[HP_COPIES_MAX];
	unsigned copy_first, copy_n;
	char reply[320];    /* our own answer (400, 502...) */
	size_t reply_off, reply_len;
	struct loop_timer timer; /* waiting for a head, the linger, then the call to done */
	struct hproxy_stats st;
	struct hp_buf cin, uin;
};

static const char *const target_names[] = { "app", "laptop", "laptop" };

static void hp_event(struct loop *l, int fd, uint32_t events, void *arg);
static void settle(struct hproxy *p);

static bool want_more(int err)
{
	return err == EAGAIN || err == EWOULDBLOCK || err == EINTR;
}

/* Sends what the socket takes of s[0..n): bytes taken (0 for none), or -errno. */
static ssize_t send_some(int fd, const char *s, size_t n)
{
	ssize_t w = send(fd, s, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	return w >= 0 ? w : want_more(errno) ? 0 : -errno;
}

/* Room to read into b, moving what waits to the front when the end is full. */
static size_t buf_room(struct hp_buf *b)
{
	if (b->off == b->len) {
		b->off = b->cls = b->len = 0;
	} else if (b->len == HP_BUF && b->off) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->cls -= b->off;
		b->len -= b->off;
		b->off = 0;
	}
	return HP_BUF - b->len;
}

static bool buf_has_room(const struct hp_buf *b)
{
	return b->len - b->off < HP_BUF;
}

static void buf_clear(struct hp_buf *b)
{
	b->off = b->cls = b->len = 0;
}

/* Counting: the totals, and the owner told. */
static void count(struct hproxy *p, uint32_t route, enum hproxy_count what, uint64_t n)
{
	uint64_t *total[] = { &p->st.requests[HPROXY_LAPTOP], &p->st.mirrored, &p->st.mirror_dropped };

	*total[what] += n;
	if (n && p->ops->counted && !p->freeing)
		p->ops->counted(p->arg, route, what, n);
}

/* Upstreams. */

static void up_detach(struct hproxy *p, enum hp_slot t)
{
	if (!p->up[t].detached)
		loop_del(p->loop, p->up[t].fd);
	p->up[t].detached = true;
}

/* Closing the connection for copies drops those not sent whole; a RST if
 * it would end in the middle of one. */
static void sink_reset(struct hproxy *p, bool *rst)
{
	uint64_t lost = p->copy_n + (p->copying ? 1 : 0);

	*rst |= outbuf_pending(&p->copy) > 0 || p->copying;
	count(p, p->up[UP_MIRROR].route, HPROXY_DROPPED, lost);
	p->copying = false;
	p->copy_in = p->copy_out = 0;
	p->copy_first = p->copy_n = 0;
	outbuf_fini(&p->copy);
}

static void up_close(struct hproxy *p, enum hp_slot t, bool rst)
{
	struct hp_up *u = &p->up[t];

	if (u->fd < 0)
		return;
	if (t == UP_MIRROR)
		sink_reset(p, &rst);
	if (rst)
		sock_linger_rst(u->fd);
	up_detach(p, t);
	close(u->fd);
	*u = (struct hp_up){ .fd = -1 };
}

/* The upstream in slot t for route r (NULL: the app), opened if need be;
 * one open for another route is closed first. */
static int up_get(struct hproxy *p, enum hp_slot t, const struct hproxy_route *r)
{
	struct hp_up *u = &p->up[t];
	uint32_t id = r ? r->id : 0;
	bool held = false;
	int fd, rc;

	if (u->fd >= 0 && u->route == id)
		return 0;
	up_close(p, t, false);
	fd = p->ops->upstream(p->arg, r, &held);
	if (fd < 0)
		return fd;
	if ((rc = loop_add(p->loop, fd, held ? 0 : LOOP_OUT, hp_event, p)) < 0) {
		close(fd);
		return rc;
	}
	*u = (struct hp_up){ .fd = fd, .route = id, .connecting = true, .held = held };
	return 0;
}

/* Ends: every fd closed (with a RST if rst), then done from a timer. */

static void close_all(struct hproxy *p, bool rst)
{
	for (int t = 0; t < UP_N; t++)
		up_close(p, (enum hp_slot)t, rst);
	if (p->cfd >= 0 && rst)
		sock_linger_rst(p->cfd);
	loop_close(p->loop, &p->cfd);
	outbuf_fini(&p->copy);
}

static void hp_done_timer(struct loop *l, struct loop_timer *t)
{
	struct hproxy *p = t->arg;

	(void)l;
	p->ops->done(p->arg, p, &p->st);
}

static void hp_end_timer(struct loop *l, struct loop_timer *t);

/* Copies not yet with the laptop (queued, or waiting for the connection). */
static bool sink_busy(const struct hproxy *p)
{
	return p->up[UP_MIRROR].fd >= 0 && (p->copy_n > 0 || outbuf_pending(&p->copy) > 0);
}

static void hp_finish(struct hproxy *p, bool rst)
{
	if (!rst && p->state != HP_SINKING && sink_busy(p)) {
		/* a clean end of the client's connection: its copies still go
		 * (a short one would otherwise lose them all), for a while */
		up_close(p, UP_APP, false);
		up_close(p, UP_LAPTOP, false);
		loop_close(p->loop, &p->cfd);
		p->state = HP_SINKING;
		loop_timer_arm(p->loop, &p->timer, HP_SINK_MS, hp_end_timer, p);
		return;
	}
	close_all(p, rst);
	p->state = HP_DONE;
	loop_timer_arm(p->loop, &p->timer, 0, hp_done_timer, p);
}

/* Sinking: once every copy is sent, a FIN; the laptop's EOF ends it. */
static void sink_step(struct hproxy *p)
{
	struct hp_up *u = &p->up[UP_MIRROR];

	if (u->fd < 0) {
		hp_finish(p, false);
	} else if (!sink_busy(p) && !u->shut && !u->connecting && !u->held) {
		shutdown(u->fd, SHUT_WR);
		u->shut = true;
	}
}

/* The linger or the sinking is over: a clean end (copies not sent whole
 * by now are dropped, and counted so). */
static void hp_end_timer(struct loop *l, struct loop_timer *t)
{
	struct hproxy *p = t->arg;

	(void)l;
	hp_finish(p, false);
}

/* The client reset (or vanished): so do the upstreams. */
static void client_gone(struct hproxy *p, int err)
{
	log_debug("client gone: %s", strerror(-err));
	p->st.err = err;
	hp_finish(p, true);
}

/* Our own answer, then the end: status with a line of text saying why. */
static void hp_reply(struct hproxy *p, int status, int err, const char *why)
{
	char body[200];
	int n = snprintf(body, sizeof(body), "subway agent: %s\n", why);

	n = MIN(n, (int)sizeof(body) - 1);
	p->reply_len = (size_t)snprintf(p->reply, sizeof(p->reply),
					"HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"
					"Connection: close\r\n\r\n%.*s",
					status, http_status_reason(status), n, n, body);
	p->reply_len = MIN(p->reply_len, sizeof(p->reply) - 1);
	p->reply_off = 0;
	p->st.replied = (uint16_t)status;
	p->st.err = err;
	/* a request in flight is cut: its upstream must not take it as whole
	 * (nor the laptop its copy); whole copies may still go */
	up_close(p, UP_APP, p->state == HP_EXCHANGE);
	up_close(p, UP_LAPTOP, p->state == HP_EXCHANGE);
	if (p->copying)
		up_close(p, UP_MIRROR, true);
	buf_clear(&p->uin);
	p->state = HP_CLOSING;
}

/* An upstream failed: what it did (refused, reset, sent a malformed
 * answer, closed too early) and err, a socket's error or -EBADMSG/-EPIPE
 * (then what says it all). */
static void up_failed(struct hproxy *p, enum hp_slot t, int err, const char *what)
{
	char msg[200];
	bool active = (p->state == HP_EXCHANGE || p->state == HP_RAW) && t == p->t;
	bool sock_err = err != -EBADMSG && err != -EPIPE;

	snprintf(msg, sizeof(msg), "the %s %s%s%s%s", target_names[t], what, sock_err ? " (" : "",
		 sock_err ? strerror(-err) : "", sock_err ? ")" : "");
	log_debug("%s", msg);
	if (!active) {
		up_close(p, t, true);
		return;
	}
	if (p->state == HP_EXCHANGE && p->resp == RESP_DONE) {
		/* answered already: the connection just ends after the answer */
		up_close(p, t, true);
		p->resp_keep = false;
		return;
	}
	p->st.err = err;
	if (p->state == HP_EXCHANGE && p->sent_this == 0) {
		hp_reply(p, 502, err, msg);
		return;
	}
	hp_finish(p, true);
}

/* Reads what the target of the exchange (or raw relay) sent into uin. */
static bool up_read(struct hproxy *p)
{
	struct hp_up *u = &p->up[p->t];
	ssize_t n;

	if (u->fd < 0 || u->eof || u->connecting || !buf_room(&p->uin))
		return false;
	n = recv(u->fd, p->uin.p + p->uin.len, HP_BUF - p->uin.len, MSG_DONTWAIT);
	if (n > 0) {
		p->uin.len += (size_t)n;
		p->st.up_in[p->t] += (uint64_t)n;
		return true;
	}
	if (n < 0 && want_more(errno))
		return false;
	if (n < 0) {
		up_failed(p, p->t, -errno, "reset the connection");
		return true;
	}
	u->eof = true;
	up_detach(p, p->t);
	return true;
}

/* Mirror copies. */

static void sink_flush(struct hproxy *p)
{
	struct hp_up *u = &p->up[UP_MIRROR];
	size_t before = outbuf_pending(&p->copy), sent;
	uint64_t whole = 0;
	int r = 0;

	if (u->fd < 0 || u->connecting)
		return;
	if (before)
		r = outbuf_flush(&p->copy, u->fd);
	sent = before - outbuf_pending(&p->copy);
	p->copy_out += sent;
	p->st.up_out[HPROXY_LAPTOP] += sent;
	for (; p->copy_n && p->copy_end[p->copy_first] <= p->copy_out; p->copy_n--, whole++)
		p->copy_first = (p->copy_first + 1) % HP_COPIES_MAX;
	count(p, u->route, HPROXY_MIRRORED, whole);
	if (r < 0)
		up_failed(p, UP_MIRROR, r, "failed taking copies");
}

/* Queues n more bytes of the copy in progress; false if they do not fit. */
static bool copy_add(struct hproxy *p, const char *s, size_t n)
{
	if (n && outbuf_add(&p->copy, s, n, HP_MIRROR_MAX) < 0)
		return false;
	p->copy_in += n;
	return true;
}

/* Starts copying the request whose head is s[0..n) to r's laptop, if it
 * can fit whole. */
static void copy_begin(struct hproxy *p, const struct hproxy_route *r, const char *s, size_t n)
{
	uint64_t body = p->reqb.framing == HTTP_BODY_LENGTH ? p->reqb.left : 0;

	p->copying = false;
	if (body > HP_MIRROR_MAX || up_get(p, UP_MIRROR, r) < 0 || p->copy_n == HP_COPIES_MAX ||
	    n + body > HP_MIRROR_MAX - outbuf_pending(&p->copy) || !copy_add(p, s, n)) {
		count(p, r->id, HPROXY_DROPPED, 1);
		return;
	}
	p->copying = true;
}

static void copy_more(struct hproxy *p, const char *s, size_t n)
{
	if (p->copying && !copy_add(p, s, n))
		up_close(p, UP_MIRROR, true); /* cut mid-way: the laptop's stream is lost */
	if (p->copying && p->reqb.done) {
		p->copying = false;
		p->copy_end[(p->copy_first + p->copy_n++) % HP_COPIES_MAX] = p->copy_in;
	}
}

/* Requests. */

/* The first route of cfg whose filter matches h, or NULL. */
static const struct hproxy_route *route_find(const struct hproxy_cfg *c, const struct http_head *h)
{
	for (int i = 0; i < c->n_routes && i < HPROXY_ROUTES_MAX; i++)
		if (http_filter_match(&c->routes[i].filter, h))
			return &c->routes[i];
	return NULL;
}

static bool route_present(const struct hproxy_cfg *c, uint32_t id, bool mirror)
{
	for (int i = 0; i < c->n_routes && i < HPROXY_ROUTES_MAX; i++)
		if (c->routes[i].id == id && c->routes[i].mirror == mirror)
			return true;
	return false;
}

/* At a head: the idle upstreams of routes that left the table are closed. */
static void drop_stale(struct hproxy *p)
{
	if (p->up[UP_LAPTOP].fd >= 0 && !route_present(p->cfg, p->up[UP_LAPTOP].route, false))
		up_close(p, UP_LAPTOP, false);
	if (p->up[UP_MIRROR].fd >= 0 && !outbuf_pending(&p->copy) &&
	    !route_present(p->cfg, p->up[UP_MIRROR].route, true))
		up_close(p, UP_MIRROR, false);
}

static void raw_start(struct hproxy *p, enum hp_slot t)
{
	up_close(p, t == UP_APP ? UP_LAPTOP : UP_APP, false);
	up_close(p, UP_MIRROR, false);
	p->t = t;
	p->state = HP_RAW;
	p->cin.cls = p->cin.len;
	p->uin.cls = p->uin.len;
}

/* The next request's head must come within idle_ms (keep-alive's end, and
 * a bound for clients that send a head slowly). */
static void hp_idle_timer(struct loop *l, struct loop_timer *t)
{
	struct hproxy *p = t->arg;

	(void)l;
	if (p->state != HP_HEAD)
		return;
	if (p->cin.len > p->cin.off) {
		hp_reply(p, 408, -ETIMEDOUT, "no whole request in time");
	} else {
		up_close(p, UP_APP, false);
		up_close(p, UP_LAPTOP, false);
		p->state = HP_CLOSING;
	}
	settle(p);
}

static void wait_head(struct hproxy *p)
{
	p->state = HP_HEAD;
	http_head_init(&p->head, HTTP_REQUEST, HTTP_M_OTHER);
	loop_timer_arm(p->loop, &p->timer, p->cfg->idle_ms ? p->cfg->idle_ms : HP_IDLE_MS, hp_idle_timer, p);
}

/* A request head of hlen bytes is at cin.off: the exchange begins. */
static bool exchange_begin(struct hproxy *p, size_t hlen)
{
	struct http_head *h = &p->head;
	const struct hproxy_route *route = route_find(p->cfg, h);
	enum hp_slot t = route && !route->mirror ? UP_LAPTOP : UP_APP;
	int r;

	p->cin.off += h->skipped; /* empty lines before a request are not sent on */
	p->cin.cls = p->cin.off + hlen - h->skipped;
	p->req_keep = h->keep_alive;
	p->req_upgrade = h->upgrade;
	p->method = h->method;
	http_body_init(&p->reqb, h);
	drop_stale(p);
	if ((r = up_get(p, t, t == UP_LAPTOP ? route : NULL)) < 0) {
		char msg[120];
		snprintf(msg, sizeof(msg), "the %s could not be reached (%s)", target_names[t], strerror(-r));
		hp_reply(p, 502, r, msg);
		return true;
	}
	if (route && route->mirror) {
		copy_begin(p, route, p->cin.p + p->cin.off, p->cin.cls - p->cin.off);
		copy_more(p, NULL, 0);
	}
	loop_timer_cancel(p->loop, &p->timer);
	p->t = t;
	p->state = HP_EXCHANGE;
	p->resp = RESP_HEAD;
	p->sent_this = 0;
	if (t == UP_LAPTOP)
		count(p, route->id, HPROXY_SENT, 1);
	else
		p->st.requests[HPROXY_APP]++;
	http_head_init(&p->head, HTTP_RESPONSE, p->method);
	return true;
}

static bool next_request(struct hproxy *p)
{
	struct hp_buf *b = &p->cin;
	ssize_t r;

	if (b->off == b->len && !p->cin_eof)
		return false;
	r = b->off == b->len ? 0 : http_head_parse(&p->head, b->p + b->off, b->len - b->off);
	if (r == 0 && p->cin_eof) {
		hp_finish(p, false); /* the client is done (perhaps mid-head: nothing to answer) */
		return true;
	}
	if (r == 0)
		return false;
	if (r > 0)
		return exchange_begin(p, (size_t)r);
	if (p->st.requests[0] + p->st.requests[1] == 0 && http_is_h2_preface(b->p + b->off, b->len - b->off) &&
	    up_get(p, UP_APP, NULL) == 0) {
		loop_timer_cancel(p->loop, &p->timer);
		raw_start(p, UP_APP); /* HTTP/2 is not routed: all to the app */
		return true;
	}
	log_debug("request refused: %s", p->head.why);
	hp_reply(p, http_error_status((int)r), (int)r, p->head.why);
	return true;
}

/* Classifies the request body bytes that arrived (and copies them). */
static bool req_classify(struct hproxy *p)
{
	struct hp_buf *b = &p->cin;
	ssize_t n;

	if (p->reqb.done || b->cls == b->len)
		return false;
	n = http_body_feed(&p->reqb, b->p + b->cls, b->len - b->cls);
	if (n < 0) {
		if (p->sent_this == 0) {
			hp_reply(p, 400, (int)n, p->reqb.why);
		} else {
			p->st.err = (int)n;
			hp_finish(p, true);
		}
		return true;
	}
	copy_more(p, b->p + b->cls, (size_t)n);
	b->cls += (size_t)n;
	return n > 0;
}

/* Sends the classified client bytes to the target. */
static bool req_send(struct hproxy *p)
{
	struct hp_up *u = &p->up[p->t];
	struct hp_buf *b = &p->cin;
	bool more = false;
	ssize_t n;

	if (u->fd < 0 || u->eof || u->detached) {
		more = b->off < b->cls; /* nobody will read them */
		b->off = b->cls;
	} else if (!u->connecting && b->off < b->cls) {
		if ((n = send_some(u->fd, b->p + b->off, b->cls - b->off)) < 0) {
			up_failed(p, p->t, (int)n, "reset the connection");
			return true;
		}
		b->off += (size_t)n;
		p->st.up_out[p->t] += (uint64_t)n;
		more = n > 0;
	}
	/* the client's EOF within a request (or in a raw relay) travels on */
	if (p->cin_eof && b->off == b->len && !u->shut && (p->state == HP_RAW || !p->reqb.done) &&
	    !(u->fd >= 0 && u->connecting)) {
		if (u->fd >= 0)
			shutdown(u->fd, SHUT_WR);
		u->shut = true;
		more = true;
	}
	return more;
}

/* Responses. */

static bool malformed(struct hproxy *p, const char *why)
{
	char what[120];

	snprintf(what, sizeof(what), "sent a malformed answer (%s)", why);
	up_failed(p, p->t, -EBADMSG, what);
	return true;
}

static bool resp_head(struct hproxy *p)
{
	struct http_head *h = &p->head;
	struct hp_buf *b = &p->uin;
	ssize_t r = http_head_parse(h, b->p + b->cls, b->len - b->cls);

	if (r == 0 && !p->up[p->t].eof)
		return false;
	if (r == 0) {
		up_failed(p, p->t, -EPIPE, "closed the connection before answering");
		return true;
	}
	if (r < 0)
		return malformed(p, h->why);
	b->cls += (size_t)r;
	if (h->status == 101 && p->req_upgrade) {
		raw_start(p, p->t);
	} else if (h->status == 101) {
		malformed(p, "101 to a request without Upgrade");
	} else if (h->status < 200) {
		http_head_init(h, HTTP_RESPONSE, p->method); /* interim: the final one follows */
	} else {
		p->resp_keep = h->keep_alive;
		http_body_init(&p->respb, h);
		p->resp = p->respb.done ? RESP_DONE : RESP_BODY;
	}
	return true;
}

static bool resp_classify(struct hproxy *p)
{
	struct hp_buf *b = &p->uin;
	ssize_t n;

	if (p->resp == RESP_HEAD)
		return resp_head(p);
	if (p->resp != RESP_BODY)
		return false;
	n = http_body_feed(&p->respb, b->p + b->cls, b->len - b->cls);
	if (n < 0)
		return malformed(p, p->respb.why);
	b->cls += (size_t)n;
	if (!p->respb.done && p->up[p->t].eof && b->cls == b->len && http_body_eof(&p->respb) < 0) {
		up_failed(p, p->t, -EPIPE, "closed the connection within its answer");
		return true;
	}
	if (p->respb.done)
		p->resp = RESP_DONE;
	return n > 0 || p->respb.done;
}

/* Sends the classified upstream bytes to the client. */
static bool client_send(struct hproxy *p)
{
	struct hp_buf *b = &p->uin;
	ssize_t n;

	if (b->off == b->cls)
		return false;
	if ((n = send_some(p->cfd, b->p + b->off, b->cls - b->off)) < 0) {
		client_gone(p, (int)n);
		return true;
	}
	b->off += (size_t)n;
	p->st.client_out += (uint64_t)n;
	p->sent_this += (uint64_t)n;
	return n > 0;
}

/* The response has been relayed: the next request, or the end. */
static bool exchange_end(struct hproxy *p)
{
	struct hp_up *u = &p->up[p->t];
	bool req_done = p->reqb.done && p->cin.off == p->cin.cls;

	if (p->resp != RESP_DONE || p->uin.off != p->uin.cls)
		return false;
	if (!p->resp_keep || !p->req_keep || (p->cin_eof && !req_done)) {
		up_close(p, UP_APP, false);
		up_close(p, UP_LAPTOP, false);
		p->state = HP_CLOSING;
		return true;
	}
	if (!req_done)
		return false;
	/* bytes after the answer, or its end: the upstream is not reused */
	if (p->uin.len > p->uin.cls || u->eof || u->detached)
		up_close(p, p->t, true);
	buf_clear(&p->uin);
	wait_head(p);
	return true;
}

#define STEP(p, st, more, call)             \
	do {                                \
		more |= (call);             \
		if ((p)->state != (st))     \
			return true;        \
	} while (0)

static bool exchange_step(struct hproxy *p)
{
	bool more = false;

	STEP(p, HP_EXCHANGE, more, req_classify(p));
	STEP(p, HP_EXCHANGE, more, req_send(p));
	if (p->up[p->t].detached)
		STEP(p, HP_EXCHANGE, more, up_read(p));
	STEP(p, HP_EXCHANGE, more, resp_classify(p));
	STEP(p, HP_EXCHANGE, more, client_send(p));
	STEP(p, HP_EXCHANGE, more, exchange_end(p));
	return more;
}

static bool raw_step(struct hproxy *p)
{
	struct hp_up *u = &p->up[p->t];
	bool more = false;

	p->cin.cls = p->cin.len;
	STEP(p, HP_RAW, more, req_send(p));
	if (u->detached)
		STEP(p, HP_RAW, more, up_read(p));
	p->uin.cls = p->uin.len;
	STEP(p, HP_RAW, more, client_send(p));
	if ((u->eof || u->fd < 0) && p->uin.off == p->uin.len && !p->cshut) {
		shutdown(p->cfd, SHUT_WR);
		p->cshut = true;
		more = true;
	}
	if (p->cshut && u->shut) {
		hp_finish(p, false);
		return true;
	}
	return more;
}

static bool closing_step(struct hproxy *p)
{
	bool more = false;
	ssize_t n;

	STEP(p, HP_CLOSING, more, client_send(p));
	if (p->uin.off < p->uin.cls)
		return more;
	if (p->reply_off < p->reply_len) {
		if ((n = send_some(p->cfd, p->reply + p->reply_off, p->reply_len - p->reply_off)) < 0) {
			client_gone(p, (int)n);
			return true;
		}
		p->reply_off += (size_t)n;
		p->st.client_out += (uint64_t)n;
		return more || n > 0;
	}
	if (p->cin_eof) {
		hp_finish(p, false);
		return true;
	}
	/* a FIN, then the client's unread bytes are drained: closing with
	 * them unread would send a RST that can destroy the answer */
	shutdown(p->cfd, SHUT_WR);
	p->state = HP_LINGER;
	loop_timer_arm(p->loop, &p->timer, HP_LINGER_MS, hp_end_timer, p);
	return true;
}

static void advance(struct hproxy *p)
{
	for (int round = 0; round < HP_ROUNDS; round++) {
		bool more;
		switch (p->state) {
		case HP_HEAD:
			more = next_request(p);
			break;
		case HP_EXCHANGE:
			more = exchange_step(p);
			break;
		case HP_RAW:
			more = raw_step(p);
			break;
		case HP_CLOSING:
			more = closing_step(p);
			break;
		default:
			return;
		}
		if (!more)
			return;
	}
	loop_kick(p->loop, p->cfd); /* more to do: at the next wakeup */
}

/* Events. */

static void client_read(struct hproxy *p)
{
	char *to = p->cin.p;
	size_t room;
	ssize_t n;

	if (p->state == HP_LINGER) {
		room = HP_BUF; /* thrown away */
	} else {
		if (p->cin_eof || p->state == HP_CLOSING || !(room = buf_room(&p->cin)))
			return;
		to += p->cin.len;
	}
	n = recv(p->cfd, to, room, MSG_DONTWAIT);
	if (n < 0 && want_more(errno))
		return;
	if (p->state == HP_LINGER) {
		p->lingered += n > 0 ? (uint64_t)n : 0;
		if (n <= 0 || p->lingered > HP_LINGER_MAX)
			hp_finish(p, false);
		return;
	}
	if (n < 0) {
		client_gone(p, -errno);
	} else if (n == 0) {
		p->cin_eof = true;
	} else {
		p->cin.len += (size_t)n;
		p->st.client_in += (uint64_t)n;
	}
}

static void client_event(struct hproxy *p, uint32_t events)
{
	if (events & LOOP_IN)
		client_read(p);
	if (p->state == HP_DONE || p->state == HP_LINGER || p->state == HP_SINKING ||
	    !(events & (EPOLLHUP | EPOLLERR)))
		return;
	/* a reset, or a local peer that closed: nobody reads the answers.
	 * (After our FIN in a raw relay, a HUP is its FIN: read above.) */
	if (!(p->state == HP_RAW && p->cshut && p->cin_eof))
		client_gone(p, -ECONNRESET);
}

static void sink_read(struct hproxy *p)
{
	char scratch[HP_SCRATCH];
	ssize_t n = recv(p->up[UP_MIRROR].fd, scratch, sizeof(scratch), MSG_DONTWAIT);

	if (n > 0)
		p->st.up_in[HPROXY_LAPTOP] += (uint64_t)n; /* answers to copies: thrown away */
	else if (n == 0 && p->state == HP_SINKING && p->up[UP_MIRROR].shut)
		hp_finish(p, false); /* the laptop closed after our FIN: all done */
	else if (n == 0 || !want_more(errno))
		up_failed(p, UP_MIRROR, n ? -errno : -EPIPE, "closed the connection for copies");
}

/* An upstream with no exchange: bytes or an EOF from it end it. */
static void idle_read(struct hproxy *p, enum hp_slot t)
{
	char scratch[512];
	ssize_t n = recv(p->up[t].fd, scratch, sizeof(scratch), MSG_DONTWAIT);

	if (n > 0)
		log_debug("%s: %zd bytes with no request: closed", target_names[t], n);
	if (n >= 0 || !want_more(errno))
		up_close(p, t, n != 0);
}

static void up_event(struct hproxy *p, enum hp_slot t, uint32_t events)
{
	struct hp_up *u = &p->up[t];
	bool active = (p->state == HP_EXCHANGE || p->state == HP_RAW) && t == p->t;
	int r;

	if (u->held) { /* only a hang-up comes before the owner's word */
		if (events & (EPOLLHUP | EPOLLERR))
			up_failed(p, t, -ECONNRESET, "could not be reached");
		return;
	}
	if (u->connecting) {
		if ((r = sock_connect_result(u->fd)) < 0) {
			up_failed(p, t, r, "could not be reached");
			return;
		}
		u->connecting = false;
	}
	if (t == UP_MIRROR) {
		if (events & LOOP_IN)
			sink_read(p);
		sink_flush(p);
	} else if (!active) {
		if (events & LOOP_IN)
			idle_read(p, t);
	} else {
		if (events & LOOP_IN)
			up_read(p);
		if (u->fd >= 0 && !u->eof && (events & (EPOLLHUP | EPOLLERR)) && !buf_has_room(&p->uin))
			up_detach(p, t);
	}
}

static void watch(struct hproxy *p)
{
	uint32_t ce = 0;

	if (p->state == HP_DONE)
		return;
	if (p->cfd < 0)
		goto ups;
	if (p->state == HP_LINGER || (p->state != HP_CLOSING && !p->cin_eof && buf_has_room(&p->cin)))
		ce |= LOOP_IN;
	if (p->uin.off < p->uin.cls || p->reply_off < p->reply_len)
		ce |= LOOP_OUT;
	loop_mod(p->loop, p->cfd, ce);
ups:
	for (int t = 0; t < UP_N; t++) {
		struct hp_up *u = &p->up[t];
		bool active = (p->state == HP_EXCHANGE || p->state == HP_RAW) && t == (int)p->t;
		uint32_t e = LOOP_IN;
		if (u->fd < 0 || u->detached)
			continue;
		if (u->held)
			e = 0;
		else if (u->connecting)
			e = LOOP_OUT;
		else if (t == UP_MIRROR)
			e |= outbuf_pending(&p->copy) ? LOOP_OUT : 0;
		else if (active)
			e = (buf_has_room(&p->uin) ? LOOP_IN : 0) |
			    (p->cin.off < p->cin.cls && !u->shut ? LOOP_OUT : 0);
		loop_mod(p->loop, u->fd, e);
	}
}

static void hp_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct hproxy *p = arg;

	(void)l;
	if (p->state == HP_DONE)
		return;
	if (fd == p->cfd) {
		client_event(p, events);
	} else {
		for (int t = 0; t < UP_N; t++)
			if (fd == p->up[t].fd) {
				up_event(p, (enum hp_slot)t, events);
				break;
			}
	}
	settle(p);
}

/* After an event: the progress it allows, then what to wait for. */
static void settle(struct hproxy *p)
{
	advance(p);
	if (p->state != HP_DONE)
		sink_flush(p);
	if (p->state == HP_SINKING)
		sink_step(p);
	watch(p);
}

struct hproxy *hproxy_new(struct loop *l, int client_fd, const struct hproxy_cfg *cfg,
			  const struct hproxy_ops *ops, void *arg)
{
	struct hproxy *p = calloc(1, sizeof(*p));
	int r;

	if (!p)
		return NULL;
	p->loop = l;
	p->cfg = cfg;
	p->ops = ops;
	p->arg = arg;
	p->cfd = client_fd;
	for (int t = 0; t < UP_N; t++)
		p->up[t].fd = -1;
	if ((r = loop_add(l, client_fd, LOOP_IN, hp_event, p)) < 0) {
		free(p);
		errno = -r;
		return NULL;
	}
	wait_head(p);
	return p;
}

void hproxy_free(struct hproxy *p)
{
	if (!p)
		return;
	p->freeing = true;
	if (p->state != HP_DONE)
		close_all(p, true);
	loop_timer_cancel(p->loop, &p->timer);
	free(p);
}

void hproxy_upstream_ready(struct hproxy *p, int fd, int err)
{
	for (int t = 0; p && p->state != HP_DONE && t < UP_N; t++) {
		struct hp_up *u = &p->up[t];
		if (u->fd != fd || !u->held)
			continue;
		u->held = false;
		if (err) {
			up_failed(p, (enum hp_slot)t, err, "could not be reached");
		} else {
			u->connecting = false;
			if (t == UP_MIRROR)
				sink_flush(p);
		}
		settle(p);
		return;
	}
}

const struct hproxy_stats *hproxy_stats(const struct hproxy *p)
{
	return &p->st;
}
