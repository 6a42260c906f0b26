/* TCP flows as streams on a trunk connection (trunk.h, net/mux.h): a
 * STREAM_OPEN is a dial (dial.h: the same policy, limits and TOS mark as a
 * flow connection's DIAL); once connected, the mux moves the bytes between
 * the dialed socket and the trunk.  A trunk runs on the manager's own
 * thread, or (a laptop lane's, with --threads) on a worker's (worker.h):
 * the code is the same, and reaches its session only through its shared
 * part. */
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
#include "manager/worker.h"
#include "net/mux.h"
#include "net/sock.h"

struct trunk {
	struct session *s;     /* on the manager's thread: its session; NULL on a worker */
	struct sess_share *sh; /* the session's shared part (a reference of its own on a worker) */
	struct mworker *wk;    /* the worker it runs on, or NULL */
	struct loop *loop;
	struct mux *mx;
	struct list link;      /* s->trunks, or the worker's */
	bool lane;             /* CONN_LANE: none of the manager's own opens */
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
	sess_add(&ms->t->sh->n_flows, -1);
	free(ms);
}

/* The dial is over: the daemon hears how, and a connected socket starts
 * moving bytes.  Frees ms unless it connected. */
static void mstream_dialed(struct dial *dl, uint8_t status, int fd)
{
	struct mstream *ms = container_of(dl, struct mstream, dial);
	struct mgr *m = ms->t->sh->m;

	ms->fd = fd;
	if (status == DIAL_OK && mux_result(&ms->ms, DIAL_OK) == 0 && mux_bind(&ms->ms, fd) == 0) {
		MGR_ST_ADD(m, flows_active, 1);
		MGR_ST_ADD(m, flows_total, 1);
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
	struct sess_share *sh = t->sh;
	struct mgr *m = sh->m;
	struct mstream *ms;
	uint8_t status;

	if (sess_count(&sh->n_flows) >= m->cfg.lim.flows) {
		MGR_ST_ADD(m, limit_flows, 1);
		MGR_ST_ADD(m, dials[DIAL_LIMIT], 1);
		mux_refuse(mx, id, DIAL_LIMIT);
		return;
	}
	if (!(ms = calloc(1, sizeof(*ms))) || mux_attach(mx, &ms->ms, id, ms) < 0) {
		MGR_ST_ADD(m, dials[DIAL_ERROR], 1);
		mux_refuse(mx, id, DIAL_ERROR);
		free(ms);
		return;
	}
	ms->t = t;
	ms->fd = -1;
	sess_add(&sh->n_flows, 1);
	status = dial_start(&ms->dial, sh, t->loop, d, id, mstream_dialed);
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

	if (!(mux_stream_id(st) & 1)) { /* even: the manager opened it, for an intercept (never on a lane's) */
		intercept_link_done(st, err);
		return;
	}
	struct mgr *m = ms->t->sh->m;

	if (ms->fd >= 0) {
		MGR_ST_ADD(m, flows_active, (uint64_t)-1);
		MGR_ST_ADD(m, bytes_up, st->bytes[1]);
		MGR_ST_ADD(m, bytes_down, st->bytes[0]);
		if (err)
			sock_linger_rst(ms->fd); /* a reset on one side becomes a reset on the other */
	}
	mstream_free(ms);
}

static void trunk_free(struct trunk *t)
{
	struct sess_share *sh = t->sh;

	list_del(&t->link);
	mux_free(t->mx); /* ends its streams first */
	sess_add(&sh->n_trunks, -1);
	if (t->wk) /* a worker's holds a reference of its own */
		sess_share_unref(sh);
	free(t);
}

static void trunk_down(struct mux *mx, int err, void *arg)
{
	struct trunk *t = arg;

	(void)mx;
	log_info("session %s: trunk connection closed (%s)", t->sh->name, strerror(-err));
	trunk_free(t);
}

static int trunk_frame(struct mux *mx, const struct frame_hdr *h, const uint8_t *p, void *arg)
{
	struct trunk *t = arg;

	(void)mx;
	(void)p;
	MGR_ST_ADD(t->sh->m, frames_bad, 1);
	log_info("session %s: bad frame on a trunk connection (%s)", t->sh->name, frame_type_name(h->type));
	return -EPROTO;
}

static const struct mux_ops trunk_ops = {
	.open = trunk_open,
	.result = intercept_link_result, /* only the manager's own opens are answered */
	.done = trunk_stream_done,
	.down = trunk_down,
	.frame = trunk_frame,
};

/* A trunk on loop l, listed in `into`.  0 or -ENOMEM (the wire dropped). */
static int trunk_make(struct session *s, struct sess_share *sh, struct mworker *wk, struct loop *l,
		      struct list *into, struct wire *w, bool lane)
{
	struct trunk *t = calloc(1, sizeof(*t));

	if (t) {
		*t = (struct trunk){ .s = s, .sh = sh, .wk = wk, .loop = l, .lane = lane };
		t->mx = mux_new(l, w, MUX_ACCEPTOR, &trunk_ops, t);
	}
	if (!t || !t->mx) {
		free(t);
		wire_drop(w);
		return -ENOMEM;
	}
	list_add_tail(into, &t->link);
	return 0;
}

int trunk_new(struct session *s, struct wire *w, bool lane)
{
	int r;

	sess_add(&s->sh->n_trunks, 1);
	if (lane && s->m->n_workers) /* a worker's, from now on */
		r = worker_take(s->m, s->sh, w);
	else
		r = trunk_make(s, s->sh, NULL, s->m->loop, &s->trunks, w, lane);
	if (r < 0)
		sess_add(&s->sh->n_trunks, -1);
	return r;
}

int trunk_new_on_worker(struct mworker *wk, struct loop *l, struct list *into, struct sess_share *sh,
			struct wire *w)
{
	return trunk_make(NULL, sh, wk, l, into, w, true);
}

void trunk_free_all(struct session *s)
{
	while (!list_empty(&s->trunks))
		trunk_free(list_entry(s->trunks.next, struct trunk, link));
}

void trunk_free_list(struct list *l, bool ended_only)
{
	struct list *i, *next;

	list_for_each_safe(i, next, l) {
		struct trunk *t = list_entry(i, struct trunk, link);
		if (!ended_only || __atomic_load_n(&t->sh->ended, __ATOMIC_ACQUIRE))
			trunk_free(t);
	}
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
