/* The control connection (control.h). */
#include "daemon/control.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "daemon/tunnel.h"

static void control_lost(struct tunnel *t, const char *why)
{
	char msg[sizeof(t->ended) + 8];

	snprintf(msg, sizeof(msg), "%s", why); /* tunnel_stop clears t->ended */
	tunnel_stop(t);
	t->ops->lost(t->arg, msg);
}

static void heartbeat_tick(struct loop *l, struct loop_timer *timer)
{
	struct tunnel *t = timer->arg;
	struct msg_heartbeat hb = { .t = loop_now_ms(l) };
	uint8_t buf[64];
	ssize_t n;

	if (!t->ctl || !t->up)
		return;
	if (loop_now_ms(l) - t->last_ack_ms > TUNNEL_HEARTBEAT_DEAD_MS) {
		control_lost(t, "no heartbeat from the manager");
		return;
	}
	pool_shrink(&t->pool);
	n = msg_heartbeat_encode(buf, sizeof(buf), FT_HEARTBEAT, &hb);
	if (n > 0)
		tunnel_send(t, buf, (size_t)n);
	loop_timer_arm(l, &t->heartbeat, TUNNEL_HEARTBEAT_MS, heartbeat_tick, t);
}

static int control_ready(struct pconn *pc)
{
	struct tunnel *t = pc->owner;

	snprintf(t->server, sizeof(t->server), "%s", pc->server);
	pconn_deadline(pc, PCONN_CONNECT_TIMEOUT_MS); /* CLUSTER_INFO comes next */
	return 0;
}

/* CLUSTER_INFO: the session is up, and the transports follow it. */
static int control_info(struct tunnel *t, const uint8_t *p, size_t len)
{
	if (msg_cluster_info_decode(p, len, &t->info) < 0)
		return -EBADMSG;
	t->up = true;
	pconn_deadline(t->ctl, 0);
	t->last_ack_ms = loop_now_ms(t->cfg.loop);
	loop_timer_arm(t->cfg.loop, &t->heartbeat, TUNNEL_HEARTBEAT_MS, heartbeat_tick, t);
	trunks_start(&t->trunks);
	if (t->insecure)
		pool_start(&t->pool);
	t->ops->up(t->arg);
	return 0;
}

/* Decodes a message for one of the daemon's callbacks: 0 or -EBADMSG. */
#define CONTROL_DELIVER(t, type, decode, cb, p, len)      \
	do {                                              \
		type m_;                                  \
		if (decode(p, len, &m_) < 0)              \
			return -EBADMSG;                  \
		(t)->ops->cb((t)->arg, &m_);              \
		return 0;                                 \
	} while (0)

static int control_frame(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p)
{
	struct tunnel *t = pc->owner;
	struct msg_text txt;

	if (h->type != FT_CLUSTER_INFO && !t->up)
		return -EBADMSG;
	switch (h->type) {
	case FT_CLUSTER_INFO:
		return t->up ? -EBADMSG : control_info(t, p, h->len);
	case FT_UDP:
		CONTROL_DELIVER(t, struct msg_udp, msg_udp_decode, udp, p, h->len);
	case FT_PONG:
		CONTROL_DELIVER(t, struct msg_pong, msg_pong_decode, pong, p, h->len);
	case FT_DNS_REPLY:
		CONTROL_DELIVER(t, struct msg_dns, msg_dns_decode, dns, p, h->len);
	case FT_UDP_CLOSE:
		return 0;
	case FT_HEARTBEAT_ACK:
		t->last_ack_ms = loop_now_ms(t->cfg.loop);
		return 0;
	case FT_HEARTBEAT:
		if (wire_heartbeat_ack(&pc->w, p, h->len) < 0)
			return -EBADMSG;
		return pconn_flush(pc);
	case FT_ERROR:
		if (msg_text_decode(p, h->len, &txt) < 0)
			return -EBADMSG;
		snprintf(t->ended, sizeof(t->ended), "the manager ended the session: %.200s", txt.text);
		return -ECONNABORTED;
	default:
		return t->ops->frame ? t->ops->frame(t->arg, h->type, p, h->len) : -EBADMSG;
	}
}

static void control_fail(struct pconn *pc, int err, const char *why)
{
	struct tunnel *t = pc->owner;
	char msg[sizeof(t->ended)];

	(void)err;
	snprintf(msg, sizeof(msg), "%s", t->ended[0] ? t->ended : why);
	control_lost(t, msg);
}

static const struct pconn_ops control_ops = {
	.ready = control_ready,
	.frame = control_frame,
	.fail = control_fail,
};

int control_start(struct tunnel *t)
{
	t->up = false;
	t->ended[0] = 0;
	memset(t->cfg.session, 0, sizeof(t->cfg.session));
	t->ctl = pconn_open(&t->cfg, CONN_CONTROL, &control_ops, t);
	if (!t->ctl) {
		int err = errno ? errno : EIO;
		snprintf(t->ended, sizeof(t->ended), "manager unreachable: %s: %s", t->cfg.where, strerror(err));
		return -err;
	}
	return 0;
}

void control_stop(struct tunnel *t)
{
	loop_timer_cancel(t->cfg.loop, &t->heartbeat);
	pconn_close(t->ctl, false);
	t->ctl = NULL;
	t->up = false;
}
