/* Connections to the manager: the control connection (session, cluster
 * info, UDP, pings, heartbeats) and, for TCP flows, either TRUNKS trunk
 * connections carrying every flow as a stream (TLS: one handshake and one
 * SSL per trunk, not per flow), or with --insecure a pool of
 * pre-authenticated flow connections, each of which later carries exactly
 * one TCP flow through splice(2). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/daemon.h"
#include "net/sock.h"
#include "net/tls.h"

#define CONNECT_TIMEOUT_MS 5000
#define HEARTBEAT_MS 5000
#define HEARTBEAT_DEAD_MS 15000

static void pconn_event(struct loop *l, int fd, uint32_t events, void *arg);

static void list_push(struct pconn **head, struct pconn *pc)
{
	pc->prev = NULL;
	pc->next = *head;
	if (*head)
		(*head)->prev = pc;
	*head = pc;
}

static void list_unlink(struct pconn **head, struct pconn *pc)
{
	if (pc->prev)
		pc->prev->next = pc->next;
	else if (*head == pc)
		*head = pc->next;
	if (pc->next)
		pc->next->prev = pc->prev;
	pc->next = pc->prev = NULL;
}

static void pconn_timeout(struct loop *l, struct loop_timer *t)
{
	struct pconn *pc = t->arg;
	struct daemon *d = pc->d;

	(void)l;
	if (pc->kind == CONN_CONTROL) {
		/* A plaintext client and a TLS manager both wait for the other. */
		daemon_failed(d, "manager unreachable: no answer from %s within %d s%s", d->last_error,
			      CONNECT_TIMEOUT_MS / 1000,
			      d->insecure ? " (with --insecure: is the manager using TLS?)" : "");
		return;
	}
	if (pc->state == PC_DIALING && pc->flow) {
		struct tflow *f = pc->flow;
		pc->flow = NULL;
		hairpin_dial_result(f, DIAL_TIMEOUT);
	}
	pconn_close(pc, true);
}

static struct pconn *pconn_open(struct daemon *d, enum conn_kind kind)
{
	struct pconn *pc = calloc(1, sizeof(*pc));
	int fd;

	if (!pc)
		return NULL;
	fd = sock_connect_tcp(d->mgr_addr, d->mgr_port, 0);
	if (fd < 0) {
		snprintf(d->last_error, sizeof(d->last_error), "%s", strerror(-fd));
		free(pc);
		return NULL;
	}
	pc->d = d;
	pc->fd = fd;
	pc->kind = kind;
	pc->state = PC_CONNECTING;
	if (wire_init(&pc->w, fd, FRAME_HDR_LEN + FRAME_MAX_PAYLOAD_PREAUTH,
		      FRAME_MAX_PAYLOAD_PREAUTH) < 0 ||
	    loop_add(d->loop, fd, LOOP_OUT, pconn_event, pc) < 0) {
		wire_free(&pc->w);
		close(fd);
		free(pc);
		return NULL;
	}
	loop_timer_arm(d->loop, &pc->timer, CONNECT_TIMEOUT_MS, pconn_timeout, pc);
	return pc;
}

void pconn_close(struct pconn *pc, bool rst)
{
	struct daemon *d = pc->d;

	if (pc->kind != CONN_CONTROL) {
		if (pc->state == PC_IDLE) {
			list_unlink(&d->idle, pc);
			d->n_idle--;
		} else if (pc->state == PC_CONNECTING || pc->state == PC_TLS || pc->state == PC_HELLO ||
			   pc->state == PC_AUTH) {
			list_unlink(&d->connecting, pc);
			d->n_connecting--;
		}
	} else if (d->ctl == pc) {
		d->ctl = NULL;
	}
	loop_timer_cancel(d->loop, &pc->timer);
	if (pc->fd >= 0) {
		loop_del(d->loop, pc->fd);
		if (!rst && pc->state > PC_TLS)
			wire_close_notify(&pc->w);
		if (rst)
			sock_linger_rst(pc->fd);
		close(pc->fd);
	}
	wire_free(&pc->w);
	free(pc);
}

/* Queues a frame and tries to send it now. 0 or -errno. */
static int pconn_send(struct pconn *pc, const uint8_t *frame, size_t len)
{
	int ret;

	if (wire_queue(&pc->w, frame, len) < 0)
		return -ENOBUFS;
	ret = wire_flush(&pc->w);
	if (ret < 0)
		return ret;
	return loop_mod(pc->d->loop, pc->fd, ret ? LOOP_IN | LOOP_OUT : LOOP_IN);
}

int tunnel_send(struct daemon *d, const uint8_t *frame, size_t len)
{
	if (!d->ctl || d->ctl->state != PC_IDLE)
		return -ENOTCONN;
	return pconn_send(d->ctl, frame, len);
}

static int pconn_on_hello(struct pconn *pc, const uint8_t *p, size_t len)
{
	struct daemon *d = pc->d;
	struct msg_hello h;
	struct msg_auth a = { .version = PROTO_VERSION, .kind = (uint8_t)pc->kind };
	uint8_t buf[512];
	ssize_t n;

	if (msg_hello_decode(p, len, &h) < 0)
		return -EBADMSG;
	if (h.version != PROTO_VERSION) {
		if (pc->kind == CONN_CONTROL)
			snprintf(d->fail_msg, sizeof(d->fail_msg),
				 "the manager speaks protocol version %u; this subway speaks %u", h.version,
				 PROTO_VERSION);
		return -EPROTO;
	}
	if (pc->kind == CONN_CONTROL) {
		snprintf(d->mgr_version, sizeof(d->mgr_version), "%s", h.server);
		memset(d->session, 0, sizeof(d->session));
	} else {
		memcpy(a.session, d->session, sizeof(a.session));
	}
	memcpy(pc->server_nonce, h.nonce, sizeof(h.nonce));
	if (auth_random(pc->nonce, sizeof(pc->nonce)) < 0)
		return -EIO;
	memcpy(a.nonce, pc->nonce, sizeof(a.nonce));
	auth_mac(&d->token, AUTH_ROLE_CLIENT, h.nonce, a.nonce, a.kind, a.session, a.mac);
	snprintf(a.client, sizeof(a.client), "subway-daemon");
	n = msg_auth_encode(buf, sizeof(buf), &a);
	if (n < 0)
		return (int)n;
	pc->state = PC_AUTH;
	pc->auth_us = now_us();
	return pconn_send(pc, buf, (size_t)n);
}

static const struct mux_ops trunk_ops;

/* An authenticated trunk: its wire goes to a mux, pc is freed.  1 (handed
 * over) or -errno. */
static int trunk_up(struct pconn *pc)
{
	struct daemon *d = pc->d;
	struct mux *mx;
	int slot = 0;

	pc->state = PC_DONE; /* off the lists: a failure below just closes it */
	while (slot < TRUNKS && d->trunk[slot])
		slot++;
	if (slot == TRUNKS)
		return -EEXIST;
	wire_consume(&pc->w); /* AUTH_OK; streams follow */
	loop_del(d->loop, pc->fd);
	mx = mux_new(d->loop, &pc->w, MUX_INITIATOR, &trunk_ops, d);
	if (!mx)
		return -ENOMEM;
	d->trunk[slot] = mx;
	d->n_trunks++;
	free(pc);
	hairpin_pool_ready(d);
	return 1;
}

static void trunk_down(struct mux *mx, int err, void *arg)
{
	struct daemon *d = arg;

	for (int i = 0; i < TRUNKS; i++)
		if (d->trunk[i] == mx) {
			d->trunk[i] = NULL;
			d->n_trunks--;
		}
	log_warn("trunk connection to the manager lost: %s", strerror(-err));
	mux_free(mx);
	pool_fill(d);
}

static const struct mux_ops trunk_ops = {
	.result = hairpin_stream_result,
	.done = hairpin_stream_done,
	.down = trunk_down,
};

struct mux *trunk_pick(struct daemon *d)
{
	struct mux *best = NULL;

	for (int i = 0; i < TRUNKS; i++)
		if (d->trunk[i] && (!best || d->trunk[i]->n_streams < best->n_streams))
			best = d->trunk[i];
	return best;
}

static int pconn_on_auth_ok(struct pconn *pc, const uint8_t *p, size_t len)
{
	struct daemon *d = pc->d;
	struct msg_auth_ok ok;
	uint8_t mac[PROTO_MAC_LEN];
	const uint8_t *sess = pc->kind == CONN_CONTROL ? NULL : d->session;

	if (msg_auth_ok_decode(p, len, &ok) < 0)
		return -EBADMSG;
	if (!sess)
		sess = ok.session;
	auth_mac(&d->token, AUTH_ROLE_SERVER, pc->server_nonce, pc->nonce, (uint8_t)pc->kind, sess, mac);
	if (!auth_mac_equal(mac, ok.mac)) {
		if (pc->kind == CONN_CONTROL)
			snprintf(d->fail_msg, sizeof(d->fail_msg),
				 "the manager failed to prove it knows the token");
		return -EACCES;
	}
	loop_timer_cancel(d->loop, &pc->timer);
	guard_rtt_sample(&d->guard, now_us() - pc->auth_us);
	if (pc->kind == CONN_CONTROL) {
		memcpy(d->session, ok.session, sizeof(d->session));
		d->have_session = true;
		pc->state = PC_IDLE;
		pc->grow = true; /* larger frames once authenticated (after consume) */
		return 0;
	}
	list_unlink(&d->connecting, pc);
	d->n_connecting--;
	if (pc->kind == CONN_TRUNK)
		return trunk_up(pc);
	pc->state = PC_IDLE;
	list_push(&d->idle, pc);
	d->n_idle++;
	hairpin_pool_ready(d);
	return 0;
}

static int ctl_on_frame(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p)
{
	struct daemon *d = pc->d;

	switch (h->type) {
	case FT_CLUSTER_INFO:
		if (msg_cluster_info_decode(p, h->len, &d->info) < 0)
			return -EBADMSG;
		daemon_connected(d);
		return 0;
	case FT_UDP: {
		struct msg_udp m;
		if (msg_udp_decode(p, h->len, &m) < 0)
			return -EBADMSG;
		dgram_udp_from_tunnel(d, &m);
		return 0;
	}
	case FT_PONG: {
		struct msg_pong m;
		if (msg_pong_decode(p, h->len, &m) < 0)
			return -EBADMSG;
		dgram_icmp_from_tunnel(d, &m);
		return 0;
	}
	case FT_DNS_REPLY: {
		struct msg_dns m;
		if (msg_dns_decode(p, h->len, &m) < 0)
			return -EBADMSG;
		dnssrv_from_tunnel(d, &m);
		return 0;
	}
	case FT_UDP_CLOSE:
		return 0;
	case FT_HEARTBEAT_ACK:
		d->last_ack_ms = loop_now_ms(d->loop);
		return 0;
	case FT_HEARTBEAT: {
		struct msg_heartbeat hb;
		uint8_t buf[64];
		ssize_t n;
		if (msg_heartbeat_decode(p, h->len, &hb) < 0)
			return -EBADMSG;
		n = msg_heartbeat_encode(buf, sizeof(buf), FT_HEARTBEAT_ACK, &hb);
		return n < 0 ? (int)n : pconn_send(pc, buf, (size_t)n);
	}
	case FT_ERROR: {
		struct msg_text t;
		if (msg_text_decode(p, h->len, &t) == 0)
			snprintf(d->fail_msg, sizeof(d->fail_msg), "the manager ended the session: %.200s",
				 t.text);
		return -ECONNABORTED;
	}
	default:
		return -EBADMSG;
	}
}

static int pconn_on_frame(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p)
{
	struct daemon *d = pc->d;

	if (pc->state == PC_HELLO && h->type == FT_HELLO)
		return pconn_on_hello(pc, p, h->len);
	if (pc->state == PC_AUTH && h->type == FT_AUTH_OK)
		return pconn_on_auth_ok(pc, p, h->len);
	if (pc->state == PC_AUTH && h->type == FT_AUTH_FAIL) {
		struct msg_text t = { .text = "" };
		msg_text_decode(p, h->len, &t);
		if (pc->kind == CONN_CONTROL)
			snprintf(d->fail_msg, sizeof(d->fail_msg),
				 "authentication refused by the manager (%s)", t.text);
		return -EACCES;
	}
	if (pc->kind == CONN_CONTROL && pc->state == PC_IDLE)
		return ctl_on_frame(pc, h, p);
	if (pc->state == PC_DIALING && h->type == FT_DIAL_RESULT) {
		struct msg_dial_result r;
		struct tflow *f = pc->flow;
		if (msg_dial_result_decode(p, h->len, &r) < 0)
			return -EBADMSG;
		loop_timer_cancel(d->loop, &pc->timer);
		pc->flow = NULL;
		wire_consume(&pc->w); /* what follows DIAL_RESULT is the flow's bytes */
		if (r.status == DIAL_OK) {
			/* The flow owns pc from here; it stops reading until accept(). */
			pc->state = PC_DONE;
			loop_del(d->loop, pc->fd);
		}
		hairpin_dial_result(f, r.status);
		return r.status == DIAL_OK ? 1 : -ECONNABORTED;
	}
	return -EBADMSG;
}

/* The control connection failed: the first connect reports why and stops
 * the daemon; an established session reconnects.  Frees pc. */
static void pconn_ctl_fail(struct pconn *pc, int err)
{
	struct daemon *d = pc->d;
	char why[sizeof(d->fail_msg) + 64];

	if (d->fail_msg[0])
		snprintf(why, sizeof(why), "%s", d->fail_msg);
	else if (d->state == D_CONNECTING && d->insecure && pc->state == PC_HELLO)
		snprintf(why, sizeof(why), "manager unreachable: %.200s closed the connection without a "
			 "word (with --insecure: is the manager using TLS?)", d->last_error);
	else if (d->state == D_CONNECTING)
		snprintf(why, sizeof(why), "%s %.200s: %s",
			 pc->state == PC_IDLE ? "lost the manager" : "manager unreachable:", d->last_error,
			 strerror(-err));
	else
		snprintf(why, sizeof(why), "%s",
			 err == -EPIPE ? "the manager closed the session" : strerror(-err));
	d->fail_msg[0] = 0;
	if (d->ctl == pc)
		pconn_close(pc, false);
	if (d->state == D_CONNECTING)
		daemon_failed(d, "%s", why);
	else
		daemon_session_lost(d, why);
}

static void pconn_fail(struct pconn *pc, int err)
{
	if (pc->kind == CONN_CONTROL) {
		pconn_ctl_fail(pc, err);
		return;
	}
	if (pc->state == PC_DIALING && pc->flow) {
		struct tflow *f = pc->flow;
		log_warn("flow connection failed while dialling: %s", strerror(-err));
		pc->flow = NULL;
		hairpin_dial_result(f, DIAL_ERROR);
	}
	pconn_close(pc, err != -EPIPE);
}

/* Why the TLS handshake of the control connection failed, for the user. */
static void pconn_tls_msg(struct pconn *pc, int err)
{
	struct daemon *d = pc->d;
	const struct tls_client_info *ti = tls_client_info(d->tls_ctx);
	char got[TLS_FP_HEX_LEN + 1], want[TLS_FP_HEX_LEN + 1], ssl[128];

	tls_last_error(ssl, sizeof(ssl));
	if (err == -EACCES)
		snprintf(d->fail_msg, sizeof(d->fail_msg),
			 "the manager's certificate %s is not the one the token file pins (%s): another "
			 "manager, or someone in between; not connecting",
			 ti && ti->seen_valid ? tls_fp_str(ti->seen, got) : "(none)",
			 tls_fp_str(d->fingerprint, want));
	else if (err == -EPROTO)
		snprintf(d->fail_msg, sizeof(d->fail_msg),
			 "the manager at %.64s does not speak TLS (%s): if it runs with --insecure, "
			 "connect with --insecure", d->last_error, ssl[0] ? ssl : "not a TLS record");
	else
		snprintf(d->fail_msg, sizeof(d->fail_msg), "TLS handshake with the manager at %.64s failed: %s",
			 d->last_error, err == -ECONNRESET ? "the connection was closed" : ssl);
}

/* One step of the TLS handshake; HELLO comes next.  0 or -errno. */
static int pconn_tls(struct pconn *pc)
{
	struct loop *l = pc->d->loop;
	int r = tls_handshake(pc->w.tls);

	if (r > 0)
		return loop_mod(l, pc->fd, (uint32_t)r);
	if (r < 0) {
		if (pc->kind == CONN_CONTROL)
			pconn_tls_msg(pc, r);
		else
			log_debug("flow connection: TLS handshake failed: %s", strerror(-r));
		return r;
	}
	pc->state = PC_HELLO;
	if (tls_pending(pc->w.tls))
		loop_kick(l, pc->fd);
	return loop_mod(l, pc->fd, LOOP_IN);
}

/* TCP is up: TLS first, unless --insecure. */
static int pconn_connected(struct pconn *pc)
{
	struct daemon *d = pc->d;

	sock_delack(pc->fd); /* the ACK rides on the answer */
	if (!d->tls_ctx) {
		pc->state = PC_HELLO;
		return loop_mod(d->loop, pc->fd, LOOP_IN);
	}
	pc->w.tls = tls_new(d->tls_ctx, pc->fd, false);
	if (!pc->w.tls)
		return -ENOMEM;
	pc->state = PC_TLS;
	return pconn_tls(pc);
}

/* Reads once and handles every complete frame in the read buffer: bounded
 * by its size (FRAME_MAX).  Frames left in the buffer would wait for the
 * socket's next event, which may never come.  0, 1 (handed over) or -errno. */
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
			loop_kick(pc->d->loop, pc->fd); /* TLS bytes the buffer had no room for */
		if (ret <= 0)
			return ret;
		ret = pconn_on_frame(pc, &h, p);
		if (ret != 0)
			return ret;
		wire_consume(&pc->w);
		if (pc->grow) {
			pc->grow = false;
			if ((ret = wire_set_limits(&pc->w, FRAME_MAX, FRAME_MAX_PAYLOAD)) < 0)
				return ret;
		}
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
			ret = loop_mod(pc->d->loop, pc->fd, LOOP_IN);
	}
	if (ret >= 0 && (events & LOOP_IN))
		ret = pconn_read(pc);
	if (ret == 1) /* handed over to a flow; the flow frees pc */
		return;
	if (ret < 0)
		pconn_fail(pc, ret);
}

int pconn_dial(struct pconn *pc, struct tflow *f)
{
	struct msg_dial m = { .addr = f->key.dst, .port = f->key.dport, .timeout_ms = DIAL_TIMEOUT_MS };
	uint8_t buf[64];
	ssize_t n = msg_dial_encode(buf, sizeof(buf), &m);

	if (n < 0)
		return (int)n;
	pc->state = PC_DIALING;
	pc->flow = f;
	f->pc = pc;
	loop_timer_arm(pc->d->loop, &pc->timer, DIAL_TIMEOUT_MS + 1000, pconn_timeout, pc);
	return pconn_send(pc, buf, (size_t)n);
}

/* The pool is as deep as the new flows that arrive while one refill (a
 * connect and an authentication, three round trips) is under way: a flow
 * that finds it empty waits those round trips, so the target doubles; it
 * halves back after POOL_SHRINK_MS without a wait (heartbeat_tick). */
struct pconn *pool_take(struct daemon *d)
{
	struct pconn *pc = d->idle;

	if (pc) {
		list_unlink(&d->idle, pc);
		d->n_idle--;
	} else {
		d->pool_waited_ms = loop_now_ms(d->loop);
		d->pool_target = MIN(MAX(d->pool_target, POOL_TARGET) * 2, POOL_TARGET_MAX);
	}
	pool_fill(d);
	return pc;
}

static void pool_shrink(struct daemon *d)
{
	if (d->pool_target <= POOL_TARGET || loop_now_ms(d->loop) - d->pool_waited_ms < POOL_SHRINK_MS)
		return;
	d->pool_target /= 2;
	d->pool_waited_ms = loop_now_ms(d->loop);
	while (d->n_idle > d->pool_target)
		pconn_close(d->idle, false);
}

void pool_fill(struct daemon *d)
{
	int target = MAX(d->pool_target, POOL_TARGET);

	if (!d->have_session || !d->ctl)
		return;
	if (daemon_trunks(d)) {
		while (d->n_trunks + d->n_connecting < TRUNKS) {
			struct pconn *pc = pconn_open(d, CONN_TRUNK);
			if (!pc)
				break;
			list_push(&d->connecting, pc);
			d->n_connecting++;
		}
		return;
	}
	while (d->n_idle + d->n_connecting < target && d->n_connecting < POOL_MAX_CONNECTING) {
		struct pconn *pc = pconn_open(d, CONN_FLOW);
		if (!pc)
			break;
		list_push(&d->connecting, pc);
		d->n_connecting++;
	}
}

static void heartbeat_tick(struct loop *l, struct loop_timer *t)
{
	struct daemon *d = t->arg;
	struct msg_heartbeat hb = { .t = loop_now_ms(l) };
	uint8_t buf[64];
	ssize_t n;

	if (!d->ctl || d->state != D_CONNECTED)
		return;
	if (loop_now_ms(l) - d->last_ack_ms > HEARTBEAT_DEAD_MS) {
		daemon_session_lost(d, "no heartbeat from the manager");
		return;
	}
	pool_shrink(d);
	n = msg_heartbeat_encode(buf, sizeof(buf), FT_HEARTBEAT, &hb);
	if (n > 0)
		tunnel_send(d, buf, (size_t)n);
	loop_timer_arm(l, &d->heartbeat_timer, HEARTBEAT_MS, heartbeat_tick, d);
}

int tunnel_start(struct daemon *d)
{
	char ip[16];

	snprintf(d->last_error, sizeof(d->last_error), "%s:%u", ip4_str(d->mgr_addr, ip), d->mgr_port);
	d->have_session = false;
	d->ctl = pconn_open(d, CONN_CONTROL);
	if (!d->ctl)
		return -errno ? -errno : -EIO;
	d->last_ack_ms = loop_now_ms(d->loop);
	loop_timer_arm(d->loop, &d->heartbeat_timer, HEARTBEAT_MS, heartbeat_tick, d);
	return 0;
}

void tunnel_stop(struct daemon *d)
{
	loop_timer_cancel(d->loop, &d->heartbeat_timer);
	while (d->idle)
		pconn_close(d->idle, false);
	while (d->connecting)
		pconn_close(d->connecting, false);
	for (int i = 0; i < TRUNKS; i++) {
		struct mux *mx = d->trunk[i];
		d->trunk[i] = NULL;
		mux_free(mx);
	}
	d->n_trunks = 0;
	if (d->ctl)
		pconn_close(d->ctl, false);
	d->have_session = false;
}
