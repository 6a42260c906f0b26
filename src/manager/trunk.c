/* TCP flows as streams on a trunk connection (net/mux.h): a STREAM_OPEN
 * is a dial (the same policy, limits and TOS mark as a flow connection's
 * DIAL); once connected, the mux moves the bytes between the dialed
 * socket and the trunk. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/manager.h"
#include "net/mux.h"
#include "net/sock.h"

struct trunk {
	struct session *s;
	struct mux *mx;
	struct list link; /* s->trunks */
};

struct mstream {
	struct trunk *t;
	struct mux_stream ms;
	struct msg_dial dial;
	int fd;
	bool dialing;
	struct loop_timer timer;
	uint64_t t0;
};

static void mstream_free(struct mstream *ms)
{
	struct session *s = ms->t->s;
	struct mgr *m = s->m;

	loop_timer_cancel(m->loop, &ms->timer);
	if (ms->dialing) {
		s->n_dials--;
		loop_del(m->loop, ms->fd);
	}
	if (ms->fd >= 0)
		close(ms->fd);
	s->n_flows--;
	free(ms);
}

/* The dial is over: the daemon hears how, and a connected socket starts
 * moving bytes.  Frees ms unless it connected. */
static void mstream_dialed(struct mstream *ms, uint8_t status)
{
	struct session *s = ms->t->s;
	struct mgr *m = s->m;
	char dst[24];

	m->st.dials[status]++;
	log_debug("session %s: dial %s %s in %lu ms (stream %u)", s->name,
		  mgr_peer_str(ms->dial.addr, ms->dial.port, dst), dial_status_name(status),
		  loop_now_ms(m->loop) - ms->t0, ms->ms.id);
	loop_timer_cancel(m->loop, &ms->timer);
	s->n_dials--;
	ms->dialing = false;
	loop_del(m->loop, ms->fd);
	if (status == DIAL_OK && mux_result(&ms->ms, DIAL_OK) == 0 && mux_bind(&ms->ms, ms->fd) == 0) {
		m->st.flows_active++;
		m->st.flows_total++;
		return;
	}
	if (status == DIAL_OK) /* the trunk's queue is full, or no memory */
		mux_reset(&ms->ms);
	else
		mux_result(&ms->ms, status);
	sock_linger_rst(ms->fd);
	mstream_free(ms);
}

static void mstream_on_dialed(struct loop *l, int fd, uint32_t events, void *arg)
{
	int r = sock_connect_result(fd);

	(void)l;
	if (r == 0 && !(events & LOOP_OUT))
		return;
	mstream_dialed(arg, r == 0 ? DIAL_OK : dial_status_from_errno(-r));
}

static void mstream_on_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	mstream_dialed(t->arg, DIAL_TIMEOUT);
}

static void trunk_open(struct mux *mx, uint32_t id, const struct msg_dial *d, void *arg)
{
	struct trunk *t = arg;
	struct session *s = t->s;
	struct mgr *m = s->m;
	uint32_t timeout = d->timeout_ms ? d->timeout_ms : m->cfg.dial_timeout_ms;
	struct mstream *ms;
	uint8_t verdict;
	int fd;

	if (s->n_flows >= m->cfg.lim.flows) {
		m->st.limit_flows++;
		verdict = DIAL_LIMIT;
	} else {
		verdict = flow_dial_check(s, d);
	}
	if (verdict != DIAL_OK) {
		m->st.dials[verdict]++;
		mux_refuse(mx, id, verdict);
		return;
	}
	fd = sock_connect_tcp(d->addr, d->port, m->cfg.tos);
	if (fd < 0) {
		m->st.dials[dial_status_from_errno(-fd)]++;
		mux_refuse(mx, id, dial_status_from_errno(-fd));
		return;
	}
	ms = calloc(1, sizeof(*ms));
	if (!ms || mux_attach(mx, &ms->ms, id, ms) < 0 ||
	    loop_add(m->loop, fd, LOOP_OUT, mstream_on_dialed, ms) < 0) {
		if (ms && mux_attached(&ms->ms))
			mux_reset(&ms->ms);
		else
			mux_refuse(mx, id, DIAL_ERROR);
		m->st.dials[DIAL_ERROR]++;
		free(ms);
		close(fd);
		return;
	}
	ms->t = t;
	ms->dial = *d;
	ms->fd = fd;
	ms->dialing = true;
	ms->t0 = loop_now_ms(m->loop);
	s->n_flows++;
	s->n_dials++;
	loop_timer_arm(m->loop, &ms->timer, timeout, mstream_on_timeout, ms);
}

/* A stream ended: a reset from the laptop while dialing, or the end of
 * its bytes either way. */
static void trunk_stream_done(struct mux_stream *st, int err)
{
	struct mstream *ms = st->owner;
	struct mgr *m = ms->t->s->m;

	if (!ms->dialing) {
		m->st.flows_active--;
		m->st.bytes_up += st->bytes[1];
		m->st.bytes_down += st->bytes[0];
		if (err)
			sock_linger_rst(ms->fd); /* a reset on one side becomes a reset on the other */
	}
	mstream_free(ms);
}

static void trunk_free(struct trunk *t)
{
	struct session *s = t->s;

	list_del(&t->link);
	s->n_trunks--;
	mux_free(t->mx); /* ends its streams first */
	free(t);
}

static void trunk_down(struct mux *mx, int err, void *arg)
{
	struct trunk *t = arg;

	(void)mx;
	log_info("session %s: trunk connection closed (%s)", t->s->name, strerror(-err));
	trunk_free(t);
}

static int trunk_frame(struct mux *mx, const struct frame_hdr *h, const uint8_t *p, void *arg)
{
	struct trunk *t = arg;

	(void)mx;
	(void)p;
	t->s->m->st.frames_bad++;
	log_info("session %s: bad frame on a trunk connection (%s)", t->s->name, frame_type_name(h->type));
	return -EPROTO;
}

static const struct mux_ops trunk_ops = {
	.open = trunk_open,
	.done = trunk_stream_done,
	.down = trunk_down,
	.frame = trunk_frame,
};

int trunk_new(struct session *s, struct wire *w)
{
	struct trunk *t = calloc(1, sizeof(*t));

	if (t) {
		t->s = s;
		t->mx = mux_new(s->m->loop, w, MUX_ACCEPTOR, &trunk_ops, t);
	}
	if (!t || !t->mx) {
		free(t);
		close(w->fd);
		wire_free(w);
		return -ENOMEM;
	}
	list_add_tail(&s->trunks, &t->link);
	s->n_trunks++;
	return 0;
}

void trunk_free_all(struct session *s)
{
	while (!list_empty(&s->trunks))
		trunk_free(list_entry(s->trunks.next, struct trunk, link));
}
