/* TCP flows as streams on a trunk connection (trunk.h, net/mux.h): a
 * STREAM_OPEN is a dial (dial.h: the same policy, limits and TOS mark as a
 * flow connection's DIAL); once connected, the mux moves the bytes between
 * the dialed socket and the trunk. */
#include "manager/trunk.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/dial.h"
#include "manager/intercept.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "net/mux.h"
#include "net/sock.h"

struct trunk {
	struct session *s;
	struct mux *mx;
	bool lane; /* CONN_LANE: none of the manager's own opens */
	struct list link; /* s->trunks */
};

struct mstream {
	struct trunk *t;
	struct mux_stream ms;
	struct dial dial;
	int fd; /* the dialed socket, once connected */
};

static void mstream_free(struct mstream *ms)
{
	dial_cancel(&ms->dial);
	if (ms->fd >= 0)
		close(ms->fd);
	ms->t->s->n_flows--;
	free(ms);
}

/* The dial is over: the daemon hears how, and a connected socket starts
 * moving bytes.  Frees ms unless it connected. */
static void mstream_dialed(struct dial *dl, uint8_t status, int fd)
{
	struct mstream *ms = container_of(dl, struct mstream, dial);
	struct mgr *m = ms->t->s->m;

	ms->fd = fd;
	if (status == DIAL_OK && mux_result(&ms->ms, DIAL_OK) == 0 && mux_bind(&ms->ms, fd) == 0) {
		m->st.flows_active++;
		m->st.flows_total++;
		return;
	}
	if (status == DIAL_OK) { /* the trunk's queue is full, or no memory */
		mux_reset(&ms->ms);
		sock_linger_rst(fd);
	} else {
		mux_result(&ms->ms, status);
	}
	mstream_free(ms);
}

static void trunk_open(struct mux *mx, uint32_t id, const struct msg_dial *d, void *arg)
{
	struct trunk *t = arg;
	struct session *s = t->s;
	struct mgr *m = s->m;
	struct mstream *ms;
	uint8_t status;

	if (s->n_flows >= m->cfg.lim.flows) {
		m->st.limit_flows++;
		m->st.dials[DIAL_LIMIT]++;
		mux_refuse(mx, id, DIAL_LIMIT);
		return;
	}
	if (!(ms = calloc(1, sizeof(*ms))) || mux_attach(mx, &ms->ms, id, ms) < 0) {
		m->st.dials[DIAL_ERROR]++;
		mux_refuse(mx, id, DIAL_ERROR);
		free(ms);
		return;
	}
	ms->t = t;
	ms->fd = -1;
	s->n_flows++;
	status = dial_start(&ms->dial, s, d, id, mstream_dialed);
	if (status != DIAL_OK) {
		mux_result(&ms->ms, status);
		mstream_free(ms);
	}
}

/* A stream ended: a reset from the laptop while dialing, or the end of
 * its bytes either way. */
static void trunk_stream_done(struct mux_stream *st, int err)
{
	struct mstream *ms = st->owner;

	if (!(mux_stream_id(st) & 1)) { /* even: the manager opened it, for an intercept */
		intercept_link_done(st, err);
		return;
	}
	struct mgr *m = ms->t->s->m;

	if (ms->fd >= 0) {
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
	.result = intercept_link_result, /* only the manager's own opens are answered */
	.done = trunk_stream_done,
	.down = trunk_down,
	.frame = trunk_frame,
};

int trunk_new(struct session *s, struct wire *w, bool lane)
{
	struct trunk *t = calloc(1, sizeof(*t));

	if (t) {
		t->s = s;
		t->lane = lane;
		t->mx = mux_new(s->m->loop, w, MUX_ACCEPTOR, &trunk_ops, t);
	}
	if (!t || !t->mx) {
		free(t);
		wire_drop(w);
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

struct mux *trunk_pick(struct session *s)
{
	struct mux *best = NULL;
	struct list *i;

	for (i = s->trunks.next; i != &s->trunks; i = i->next) {
		const struct trunk *t = list_entry(i, struct trunk, link);
		struct mux *mx = t->mx;
		if (t->lane)
			continue;
		if (!best || mx->n_streams < best->n_streams)
			best = mx;
	}
	return best;
}
