/* A connection to the manager through its handshake (pconn.h). */
#include "net/pconn.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "net/sock.h"
#include "net/tls.h"

static void pconn_event(struct loop *l, int fd, uint32_t events, void *arg);

/* Tells the owner, with a sentence for the user. */
static void pconn_failf(struct pconn *pc, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void pconn_failf(struct pconn *pc, int err, const char *fmt, ...)
{
	char why[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	pc->ops->fail(pc, err, why);
}

/* A failure with nothing more to say than err: the sentence follows from
 * how far the connection got. */
static void pconn_fail(struct pconn *pc, int err)
{
	const struct pconn_cfg *cfg = pc->cfg;

	if (pc->state >= PC_READY)
		pconn_failf(pc, err, err == -EPIPE ? "the manager closed the session"
						   : "lost the manager at %s: %s", cfg->where, strerror(-err));
	else if (err == -ETIMEDOUT)
		pconn_failf(pc, err, "manager unreachable: no answer from %s within %d s%s", cfg->where,
			    PCONN_CONNECT_TIMEOUT_MS / 1000,
			    cfg->tls_ctx ? "" : " (with --insecure: is the manager using TLS?)");
	else if (!cfg->tls_ctx && pc->state == PC_HELLO && err == -EPIPE)
		pconn_failf(pc, err, "manager unreachable: %s closed the connection without a word "
			    "(with --insecure: is the manager using TLS?)", cfg->where);
	else
		pconn_failf(pc, err, "manager unreachable: %s: %s", cfg->where, strerror(-err));
}

static void pconn_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	pconn_fail(t->arg, -ETIMEDOUT);
}

void pconn_deadline(struct pconn *pc, uint64_t ms)
{
	if (ms)
		loop_timer_arm(pc->cfg->loop, &pc->timer, ms, pconn_timeout, pc);
	else
		loop_timer_cancel(pc->cfg->loop, &pc->timer);
}

struct pconn *pconn_open(const struct pconn_cfg *cfg, enum conn_kind kind, const struct pconn_ops *ops,
			 void *owner)
{
	struct pconn *pc = calloc(1, sizeof(*pc));
	int fd, r;

	if (!pc)
		return NULL;
	fd = sock_connect_tcp(cfg->addr, cfg->port, 0);
	if (fd < 0) {
		free(pc);
		errno = -fd;
		return NULL;
	}
	*pc = (struct pconn){ .cfg = cfg, .ops = ops, .owner = owner, .fd = fd, .kind = kind };
	r = wire_init(&pc->w, fd, FRAME_HDR_LEN + FRAME_MAX_PAYLOAD_PREAUTH, FRAME_MAX_PAYLOAD_PREAUTH);
	if (r == 0)
		r = loop_add(cfg->loop, fd, LOOP_OUT, pconn_event, pc);
	if (r < 0) {
		wire_fini(&pc->w);
		close(fd);
		free(pc);
		errno = -r;
		return NULL;
	}
	pconn_deadline(pc, PCONN_CONNECT_TIMEOUT_MS);
	return pc;
}

void pconn_set_init(struct pconn_set *s, const struct pconn_cfg *cfg, enum conn_kind kind,
		    const struct pconn_ops *ops, void (*up)(void *arg), void *arg)
{
	*s = (struct pconn_set){ .cfg = cfg, .kind = kind, .ops = ops, .up = up, .arg = arg };
	list_init(&s->connecting);
}

void pconn_set_open(struct pconn_set *s, int n)
{
	for (; s->on && n > 0; n--) {
		struct pconn *pc = pconn_open(s->cfg, s->kind, s->ops, s);
		if (!pc)
			return; /* the next need, or failure, tries again */
		list_add(&s->connecting, &pc->link);
		s->n_connecting++;
	}
}

void pconn_set_stop(struct pconn_set *s)
{
	s->on = false;
	s->n_connecting -= pconn_close_all(&s->connecting, false);
}

void pconn_set_done(struct pconn_set *s, struct pconn *pc)
{
	list_del(&pc->link);
	s->n_connecting--;
}

void pconn_set_fail(struct pconn *pc, int err, const char *why)
{
	log_debug("%s connection: %s", pc->kind == CONN_TRUNK || pc->kind == CONN_LANE ? "trunk" : "flow", why[0] ? why : strerror(-err));
	pconn_set_done(pc->owner, pc);
	pconn_close(pc, true);
}

int pconn_close_all(struct list *l, bool rst)
{
	int n = 0;

	for (; !list_empty(l); n++)
		pconn_close(list_first(l, struct pconn, link), rst);
	return n;
}

void pconn_close(struct pconn *pc, bool rst)
{
	if (!pc)
		return;
	list_del(&pc->link);
	loop_timer_cancel(pc->cfg->loop, &pc->timer);
	if (pc->fd >= 0) {
		loop_del(pc->cfg->loop, pc->fd);
		if (!rst && pc->state > PC_TLS)
			wire_close_notify(&pc->w);
		if (rst)
			sock_linger_rst(pc->fd);
		close(pc->fd);
	}
	wire_fini(&pc->w);
	free(pc);
}

void pconn_release(struct pconn *pc, struct wire *w)
{
	list_del(&pc->link);
	loop_timer_cancel(pc->cfg->loop, &pc->timer);
	loop_del(pc->cfg->loop, pc->fd);
	*w = pc->w;
	free(pc);
}

int pconn_send(struct pconn *pc, const uint8_t *frame, size_t len)
{
	if (wire_queue(&pc->w, frame, len) < 0)
		return -ENOBUFS;
	return pconn_flush(pc);
}

int pconn_flush(struct pconn *pc)
{
	int ret = wire_flush(&pc->w);

	if (ret < 0)
		return ret;
	return loop_mod(pc->cfg->loop, pc->fd, ret ? LOOP_IN | LOOP_OUT : LOOP_IN);
}

static int pconn_on_hello(struct pconn *pc, const uint8_t *p, size_t len)
{
	const struct pconn_cfg *cfg = pc->cfg;
	struct msg_hello h;
	struct msg_auth a = { .version = PROTO_VERSION, .kind = (uint8_t)pc->kind };
	uint8_t buf[512];
	ssize_t n;

	if (msg_hello_decode(p, len, &h) < 0)
		return -EBADMSG;
	if (h.version != PROTO_VERSION) {
		pconn_failf(pc, -EPROTO, "the manager speaks protocol version %u; this subway speaks %u",
			    h.version, PROTO_VERSION);
		return 1;
	}
	snprintf(pc->server, sizeof(pc->server), "%s", h.server);
	if (pc->kind != CONN_CONTROL)
		memcpy(a.session, cfg->session, sizeof(a.session));
	memcpy(pc->server_nonce, h.nonce, sizeof(h.nonce));
	if (auth_random(pc->nonce, sizeof(pc->nonce)) < 0)
		return -EIO;
	memcpy(a.nonce, pc->nonce, sizeof(a.nonce));
	auth_mac(&cfg->token, AUTH_ROLE_CLIENT, h.nonce, a.nonce, a.kind, a.session, a.mac);
	snprintf(a.client, sizeof(a.client), "%s", cfg->client[0] ? cfg->client : "subway-daemon");
	n = msg_auth_encode(buf, sizeof(buf), &a);
	if (n < 0)
		return (int)n;
	pc->state = PC_AUTH;
	pc->auth_us = now_us();
	return pconn_send(pc, buf, (size_t)n);
}

/* The manager proves it knows the token too; the control connection
 * learns its session here.  0, 1 (handed over, or failed and told) or -errno. */
static int pconn_on_auth_ok(struct pconn *pc, const uint8_t *p, size_t len)
{
	struct pconn_cfg *cfg = (struct pconn_cfg *)pc->cfg; /* the session is written once, here */
	struct msg_auth_ok ok;
	uint8_t mac[PROTO_MAC_LEN];
	const uint8_t *sess;

	if (msg_auth_ok_decode(p, len, &ok) < 0)
		return -EBADMSG;
	/* A control connection learns its session here; an agent's id only
	 * enters the proof; flows and trunks name their session. */
	sess = pc->kind == CONN_CONTROL || pc->kind == CONN_AGENT ? ok.session : cfg->session;
	auth_mac(&cfg->token, AUTH_ROLE_SERVER, pc->server_nonce, pc->nonce, (uint8_t)pc->kind, sess, mac);
	if (!auth_mac_equal(mac, ok.mac)) {
		pconn_failf(pc, -EACCES, "the manager failed to prove it knows the token");
		return 1;
	}
	if (pc->kind == CONN_CONTROL)
		memcpy(cfg->session, ok.session, sizeof(cfg->session));
	loop_timer_cancel(cfg->loop, &pc->timer);
	if (cfg->rtt)
		cfg->rtt(cfg->rtt_arg, now_us() - pc->auth_us);
	pc->state = PC_READY;
	wire_consume(&pc->w);
	/* Larger frames once authenticated, on the control connection (a
	 * trunk's mux sets its own; a flow connection reads one small frame). */
	if (pc->kind == CONN_CONTROL && wire_set_limits(&pc->w, FRAME_MAX, FRAME_MAX_PAYLOAD) < 0)
		return -ENOMEM;
	return pc->ops->ready(pc);
}

/* 0 (frame consumed), 1 (stop: handed over or failed and told), -errno. */
static int pconn_on_frame(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p)
{
	if (pc->state == PC_HELLO && h->type == FT_HELLO)
		return pconn_on_hello(pc, p, h->len);
	if (pc->state == PC_AUTH && h->type == FT_AUTH_OK)
		return pconn_on_auth_ok(pc, p, h->len);
	if (pc->state == PC_AUTH && h->type == FT_AUTH_FAIL) {
		struct msg_text t = { .text = "" };
		msg_text_decode(p, h->len, &t);
		/* The manager's reason, unless it only says the same. */
		pconn_failf(pc, -EACCES, "authentication refused by the manager%s%.200s%s",
			    t.text[0] && strcmp(t.text, "authentication refused") ? " (" : "",
			    strcmp(t.text, "authentication refused") ? t.text : "",
			    t.text[0] && strcmp(t.text, "authentication refused") ? ")" : "");
		return 1;
	}
	if (pc->state == PC_READY && pc->ops->frame)
		return pc->ops->frame(pc, h, p);
	log_debug("connection to the manager: unexpected %s", frame_type_name(h->type));
	return -EBADMSG;
}

/* Why the TLS handshake failed, for the user. */
static void pconn_tls_fail(struct pconn *pc, int err)
{
	const struct pconn_cfg *cfg = pc->cfg;
	const struct tls_client_info *ti = tls_client_info(cfg->tls_ctx);
	char got[TLS_FP_HEX_LEN + 1], want[TLS_FP_HEX_LEN + 1], ssl[128];

	tls_last_error(ssl, sizeof(ssl));
	if (err == -EACCES)
		pconn_failf(pc, err, "the manager's certificate %s is not the one the token file pins (%s): "
			    "another manager, or someone in between; not connecting",
			    ti && ti->seen_valid ? tls_fp_str(ti->seen, got) : "(none)",
			    tls_fp_str(cfg->fingerprint, want));
	else if (err == -EPROTO)
		pconn_failf(pc, err, "the manager at %s does not speak TLS (%s): if it runs with --insecure, "
			    "connect with --insecure", cfg->where, ssl[0] ? ssl : "not a TLS record");
	else
		pconn_failf(pc, err, "TLS handshake with the manager at %s failed: %s", cfg->where,
			    err == -ECONNRESET ? "the connection was closed" : ssl);
}

/* One step of the TLS handshake; HELLO comes next.  0, 1 (failed and
 * told) or -errno. */
static int pconn_tls(struct pconn *pc)
{
	struct loop *l = pc->cfg->loop;
	int r = tls_handshake(pc->w.tls);

	if (r > 0)
		return loop_mod(l, pc->fd, (uint32_t)r);
	if (r < 0) {
		pconn_tls_fail(pc, r);
		return 1;
	}
	pc->state = PC_HELLO;
	if (tls_pending(pc->w.tls))
		loop_kick(l, pc->fd);
	return loop_mod(l, pc->fd, LOOP_IN);
}

/* TCP is up: TLS first, unless --insecure. */
static int pconn_connected(struct pconn *pc)
{
	const struct pconn_cfg *cfg = pc->cfg;

	sock_delack(pc->fd); /* the ACK rides on the answer */
	if (!cfg->tls_ctx) {
		pc->state = PC_HELLO;
		return loop_mod(cfg->loop, pc->fd, LOOP_IN);
	}
	pc->w.tls = tls_new(cfg->tls_ctx, pc->fd, false);
	if (!pc->w.tls)
		return -ENOMEM;
	pc->state = PC_TLS;
	return pconn_tls(pc);
}

/* Reads once and handles every complete frame in the read buffer: bounded
 * by its size.  Frames left in the buffer would wait for the socket's next
 * event, which may never come.  0, 1 (stop) or -errno. */
static int pconn_read(struct pconn *pc)
{
	struct frame_hdr h;
	const uint8_t *p;
	int ret = wire_read(&pc->w);

	if (ret == 0)
		return -EPIPE;
	if (ret < 0 && ret != -EAGAIN && ret != -ENOBUFS)
		return ret;
	for (;;) {
		ret = wire_next(&pc->w, &h, &p);
		if (ret == 0 && wire_more(&pc->w))
			loop_kick(pc->cfg->loop, pc->fd); /* TLS bytes the buffer had no room for */
		if (ret <= 0)
			return ret;
		bool auth_ok = pc->state == PC_AUTH && h.type == FT_AUTH_OK;
		ret = pconn_on_frame(pc, &h, p);
		if (ret != 0)
			return ret;
		if (!auth_ok) /* AUTH_OK was consumed before the limits grew */
			wire_consume(&pc->w);
	}
}

static void pconn_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct pconn *pc = arg;
	int ret = 0;

	(void)l;
	(void)fd;
	if (pc->state == PC_CONNECTING || pc->state == PC_TLS) {
		ret = pc->state == PC_TLS ? pconn_tls(pc) : sock_connect_result(pc->fd);
		if (ret == 0 && pc->state == PC_CONNECTING)
			ret = pconn_connected(pc);
		if (ret < 0)
			pconn_fail(pc, ret);
		return;
	}
	if (events & LOOP_OUT) {
		ret = wire_flush(&pc->w);
		if (ret == 0)
			ret = loop_mod(pc->cfg->loop, pc->fd, LOOP_IN);
	}
	if (ret >= 0 && (events & LOOP_IN))
		ret = pconn_read(pc);
	if (ret < 0)
		pconn_fail(pc, ret);
}
