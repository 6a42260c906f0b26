/* The trunk connections (trunks.h). */
#include "daemon/trunks.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static void trunks_fill(struct trunks *tr);

static void trunk_down(struct mux *mx, int err, void *arg)
{
	struct trunks *tr = arg;

	for (int i = 0; i < TRUNKS; i++)
		if (tr->mx[i] == mx) {
			tr->mx[i] = NULL;
			tr->n--;
		}
	log_warn("trunk connection to the manager lost: %s", strerror(-err));
	mux_free(mx);
	trunks_fill(tr);
}

/* Authenticated: the wire goes to a mux in a free slot.  1 (taken over) or -errno. */
static int trunk_on_ready(struct pconn *pc)
{
	struct trunks *tr = container_of(pc->owner, struct trunks, set);
	struct wire w;
	int slot = 0;

	while (slot < TRUNKS && tr->mx[slot])
		slot++;
	if (slot == TRUNKS)
		return -EEXIST;
	pconn_set_done(&tr->set, pc);
	pconn_release(pc, &w);
	tr->mx[slot] = mux_new(tr->set.cfg->loop, &w, MUX_INITIATOR, &tr->ops, tr);
	if (!tr->mx[slot]) {
		wire_drop(&w);
		trunks_fill(tr);
		return 1;
	}
	tr->n++;
	tr->set.up(tr->set.arg);
	return 1;
}

static const struct pconn_ops trunk_pconn_ops = {
	.ready = trunk_on_ready,
	.fail = pconn_set_fail, /* nothing comes between AUTH_OK and the mux */
};

void trunks_init(struct trunks *tr, const struct pconn_cfg *cfg, enum conn_kind kind, const struct mux_ops *streams,
		 void (*ready)(void *arg), void *arg)
{
	*tr = (struct trunks){ .ops = *streams };
	tr->ops.down = trunk_down;
	pconn_set_init(&tr->set, cfg, kind, &trunk_pconn_ops, ready, arg);
}

static void trunks_fill(struct trunks *tr)
{
	pconn_set_open(&tr->set, TRUNKS - tr->n - tr->set.n_connecting);
}

void trunks_start(struct trunks *tr)
{
	tr->set.on = true;
	trunks_fill(tr);
}

void trunks_stop(struct trunks *tr)
{
	pconn_set_stop(&tr->set);
	for (int i = 0; i < TRUNKS; i++) {
		struct mux *mx = tr->mx[i];
		tr->mx[i] = NULL;
		mux_free(mx);
	}
	tr->n = 0;
}

struct mux *trunks_pick(const struct trunks *tr)
{
	struct mux *best = NULL;

	for (int i = 0; i < TRUNKS; i++)
		if (tr->mx[i] && (!best || tr->mx[i]->n_streams < best->n_streams))
			best = tr->mx[i];
	return best;
}
