/* TCP flows: a pooled, authenticated flow connection waits for one DIAL;
 * the manager dials (policy first, marked with the TOS byte), answers
 * DIAL_RESULT and, on success, splices the two sockets together.
 *
 * States: IDLE (waiting for DIAL) -> DIALING -> HANDOFF (DIAL_RESULT and
 * the bytes that arrived after DIAL still being written) -> RELAY; a
 * failed dial goes to CLOSING (DIAL_RESULT being written, then close). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "manager/flow.h"

#include "common/log.h"
#include "manager/conn.h"
#include "manager/dial.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "net/relay.h"
#include "net/sock.h"
#include "net/tls.h"

enum flow_state { FLOW_IDLE, FLOW_DIALING, FLOW_HANDOFF, FLOW_RELAY, FLOW_CLOSING };

struct flow {
	struct session *s;
	struct list link; /* s->flows */
	enum flow_state state;
	struct wire w; /* the tunnel side until the relay takes it */
	int dfd;       /* the dialed socket, once connected */
	struct dial dial;
	struct loop_timer timer;
	const uint8_t *rest; /* bytes after DIAL still to write to dfd */
	size_t rest_len;
	struct relay relay;
};

static void flow_on_tunnel(struct loop *l, int fd, uint32_t events, void *arg);
static void flow_on_dialed(struct loop *l, int fd, uint32_t events, void *arg);
static void flow_free(struct flow *f, bool rst);

static void flow_close_fd(struct loop *l, int fd, bool rst)
{
	if (fd < 0)
		return;
	loop_del(l, fd);
	if (rst)
		sock_linger_rst(fd);
	close(fd);
}

static void flow_free(struct flow *f, bool rst)
{
	struct session *s = f->s;
	struct mgr *m = s->m;

	loop_timer_cancel(m->loop, &f->timer);
	if (f->state == FLOW_RELAY) {
		relay_close(&f->relay, rst);
		MGR_ST_ADD(m, flows_active, (uint64_t)-1);
		MGR_ST_ADD(m, bytes_up, f->relay.bytes[0]);
		MGR_ST_ADD(m, bytes_down, f->relay.bytes[1]);
	} else {
		flow_close_fd(m->loop, f->w.fd, rst && f->state != FLOW_IDLE);
		flow_close_fd(m->loop, f->dfd, false);
	}
	dial_cancel(&f->dial);
	wire_fini(&f->w);
	list_del(&f->link);
	sess_add(&s->sh->n_flows, -1);
	free(f);
}

void flow_free_all(struct session *s)
{
	while (!list_empty(&s->flows))
		flow_free(list_entry(s->flows.next, struct flow, link), true);
}

static int flow_update(struct flow *f, uint32_t tunnel_ev, uint32_t dialed_ev)
{
	struct loop *l = f->s->m->loop;
	int r = loop_mod(l, f->w.fd, tunnel_ev);

	if (r == 0 && f->dfd >= 0)
		r = loop_mod(l, f->dfd, dialed_ev);
	return r;
}

static void flow_relay_done(struct relay *r, int err, void *arg)
{
	struct flow *f = arg;

	(void)r;
	char dst[24];

	log_debug("session %s: flow to %s ended (%s), %lu bytes up, %lu down", f->s->name,
		  mgr_peer_str(f->dial.req.addr, f->dial.req.port, dst), err ? strerror(-err) : "closed",
		  f->relay.bytes[0], f->relay.bytes[1]);
	flow_free(f, err != 0); /* a reset on one side becomes a reset on the other */
}

static void flow_start_relay(struct flow *f)
{
	struct mgr *m = f->s->m;
	int tfd = f->w.fd, dfd = f->dfd;
	int r;

	struct ssl_st *tls = wire_take_tls(&f->w);

	loop_del(m->loop, tfd);
	loop_del(m->loop, dfd);
	wire_fini(&f->w); /* the rest has been written: the buffers are not needed */
	f->w.fd = f->dfd = -1;
	r = tls ? relay_start_tls(&f->relay, m->loop, tfd, dfd, 0, tls, flow_relay_done, f)
		: relay_start(&f->relay, m->loop, tfd, dfd, flow_relay_done, f);
	if (r < 0) {
		log_warn("session %s: cannot start relay: %s", f->s->name, strerror(-r));
		tls_free(tls);
		f->w.fd = tfd;
		f->dfd = dfd;
		flow_free(f, true);
		return;
	}
	f->state = FLOW_RELAY;
	MGR_ST_ADD(m, flows_active, 1);
	MGR_ST_ADD(m, flows_total, 1);
}

/* Writes DIAL_RESULT and the early bytes; starts the relay once both are
 * out.  May free f, as its last action. */
static void flow_handoff(struct flow *f)
{
	int r = wire_flush(&f->w);

	while (r >= 0 && f->rest_len) {
		ssize_t n = send(f->dfd, f->rest, f->rest_len, MSG_NOSIGNAL);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0) {
			r = -errno;
			break;
		}
		f->rest += n;
		f->rest_len -= (size_t)n;
	}
	if (r < 0) {
		flow_free(f, true);
		return;
	}
	if (r == 0 && !f->rest_len) {
		flow_start_relay(f);
		return;
	}
	if (flow_update(f, r ? LOOP_OUT : 0, f->rest_len ? LOOP_OUT : 0) < 0)
		flow_free(f, true);
}

/* Closes a spent connection with a FIN, after its last frame. */
static void flow_finish(struct flow *f)
{
	if (f->w.fd >= 0) {
		loop_del(f->s->m->loop, f->w.fd);
		wire_close_notify(&f->w);
		shutdown(f->w.fd, SHUT_WR);
		close(f->w.fd);
		f->w.fd = -1;
	}
	flow_free(f, false);
}

static void flow_on_linger(struct loop *l, struct loop_timer *t)
{
	(void)l;
	flow_free(t->arg, false);
}

/* Sends DIAL_RESULT; on success hands over, else closes once it is out.
 * May free f, as its last action. */
static void flow_dial_done(struct flow *f, uint8_t status)
{
	struct msg_dial_result res = { .status = status };
	struct mgr *m = f->s->m;
	uint8_t *p = wire_reserve(&f->w, 64);
	ssize_t n = p ? msg_dial_result_encode(p, 64, &res) : -ENOBUFS;

	if (n < 0) {
		f->state = FLOW_CLOSING;
		flow_free(f, true);
		return;
	}
	wire_commit(&f->w, (size_t)n);
	if (status == DIAL_OK) {
		f->state = FLOW_HANDOFF;
		f->rest_len = wire_take_rest(&f->w, &f->rest);
		if (loop_add(m->loop, f->dfd, 0, flow_on_dialed, f) < 0) {
			flow_free(f, true);
			return;
		}
		flow_handoff(f);
		return;
	}
	f->state = FLOW_CLOSING;
	/* The connection was spent on this dial: close it once the result is out. */
	if (wire_flush(&f->w) != 1) {
		flow_finish(f);
		return;
	}
	loop_mod(m->loop, f->w.fd, LOOP_OUT);
	loop_timer_arm(m->loop, &f->timer, MGR_CLOSE_LINGER_MS, flow_on_linger, f);
}

static void flow_dialed(struct dial *dl, uint8_t status, int fd)
{
	struct flow *f = container_of(dl, struct flow, dial);

	f->dfd = fd;
	flow_dial_done(f, status);
}

/* May free f, as its last action. */
static void flow_dial(struct flow *f, const struct msg_dial *req)
{
	uint8_t status = dial_start(&f->dial, f->s->sh, f->s->m->loop, req, 0, flow_dialed);

	if (status != DIAL_OK) {
		flow_dial_done(f, status);
		return;
	}
	f->state = FLOW_DIALING;
}

/* IDLE: heartbeats, then exactly one DIAL.  May free f, as its last action. */
static void flow_input(struct flow *f)
{
	struct frame_hdr h;
	const uint8_t *p;
	int r;

	while ((r = wire_next(&f->w, &h, &p)) == 1) {
		if (h.type == FT_DIAL) {
			struct msg_dial req;
			r = msg_dial_decode(p, h.len, &req) < 0 ? -EBADMSG : 0;
			if (r == 0) {
				wire_consume(&f->w);
				flow_dial(f, &req); /* what follows DIAL is raw bytes */
				return;
			}
		} else if (h.type == FT_HEARTBEAT) {
			r = wire_heartbeat_ack(&f->w, p, h.len);
		} else {
			r = -EPROTO;
		}
		if (r < 0)
			break;
		wire_consume(&f->w);
	}
	if (r < 0) {
		MGR_ST_ADD(f->s->m, frames_bad, 1);
		log_info("session %s: bad frame on a flow connection (%s)", f->s->name,
			 frame_type_name(h.type));
		conn_text_close(f->s->m->loop, &f->w, FT_ERROR, "bad frame on a flow connection");
		flow_free(f, false);
		return;
	}
	if (wire_flush(&f->w) < 0 || flow_update(f, LOOP_IN | (wire_pending(&f->w) ? LOOP_OUT : 0), 0) < 0) {
		flow_free(f, false);
		return;
	}
	if (wire_more(&f->w))
		loop_kick(f->s->m->loop, f->w.fd);
}

/* The dialed socket, while the early bytes are written to it. */
static void flow_on_dialed(struct loop *l, int fd, uint32_t events, void *arg)
{
	(void)l;
	(void)fd;
	(void)events;
	if (((struct flow *)arg)->state == FLOW_HANDOFF)
		flow_handoff(arg);
}

static void flow_on_tunnel(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct flow *f = arg;
	int r;

	(void)l;
	(void)fd;
	if (f->state == FLOW_HANDOFF) {
		if (events & (EPOLLERR | EPOLLHUP))
			flow_free(f, true);
		else
			flow_handoff(f);
		return;
	}
	if (f->state == FLOW_CLOSING) {
		if (wire_flush(&f->w) != 1)
			flow_finish(f);
		return;
	}
	if ((events & LOOP_OUT) && wire_flush(&f->w) < 0) {
		flow_free(f, f->state != FLOW_IDLE);
		return;
	}
	r = wire_read(&f->w);
	if (r == -EAGAIN || (r > 0 && f->state == FLOW_DIALING))
		return; /* early bytes wait in the buffer for the dial's end */
	if (r <= 0) {
		/* Closed (an idle pooled connection, or a dial given up), or
		 * more early bytes than the buffer holds. */
		flow_free(f, f->state != FLOW_IDLE);
		return;
	}
	flow_input(f);
}

int flow_new(struct session *s, struct wire *w)
{
	struct flow *f = calloc(1, sizeof(*f));
	struct mgr *m = s->m;

	if (!f) {
		wire_drop(w);
		return -ENOMEM;
	}
	f->s = s;
	f->w = *w;
	f->dfd = -1;
	f->state = FLOW_IDLE;
	list_add_tail(&s->flows, &f->link);
	sess_add(&s->sh->n_flows, 1);
	if (loop_add(m->loop, f->w.fd, LOOP_IN, flow_on_tunnel, f) < 0) {
		flow_free(f, false);
		return -ENOMEM;
	}
	flow_input(f); /* flushes AUTH_OK; a DIAL may already be here */
	return 0;
}
