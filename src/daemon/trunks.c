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
	struct trunks *tr = pc->owner;
	struct wire w;
	int slot = 0;

	while (slot < TRUNKS && tr->mx[slot])
		slot++;
	if (slot == TRUNKS)
		return -EEXIST;
	tr->n_connecting--;
	pconn_release(pc, &w);
	tr->mx[slot] = mux_new(tr->cfg->loop, &w, MUX_INITIATOR, &tr->ops, tr);
	if (!tr->mx[slot]) {
		close(w.fd);
		wire_fini(&w);
		trunks_fill(tr);
		return 1;
	}
	tr->n++;
	if (tr->ready)
		tr->ready(tr->arg);
	return 1;
}

static int trunk_on_frame(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p)
{
	(void)pc;
	(void)h;
	(void)p;
	return -EPROTO; /* nothing comes between AUTH_OK and the mux */
}

static void trunk_on_fail(struct pconn *pc, int err, const char *why)
{
	struct trunks *tr = pc->owner;

	log_debug("trunk connection: %s", why[0] ? why : strerror(-err));
	tr->n_connecting--;
	pconn_close(pc, true);
}

static const struct pconn_ops trunk_pconn_ops = {
	.ready = trunk_on_ready,
	.frame = trunk_on_frame,
	.fail = trunk_on_fail,
};

void trunks_init(struct trunks *tr, const struct pconn_cfg *cfg, const struct mux_ops *streams,
		 void (*ready)(void *arg), void *arg)
{
	*tr = (struct trunks){ .cfg = cfg, .ops = *streams, .ready = ready, .arg = arg };
	tr->ops.down = trunk_down;
	list_init(&tr->connecting);
}

static void trunks_fill(struct trunks *tr)
{
	while (tr->on && tr->n + tr->n_connecting < TRUNKS &&
	       pconn_open_onto(&tr->connecting, tr->cfg, CONN_TRUNK, &trunk_pconn_ops, tr) == 0)
		tr->n_connecting++;
}

void trunks_start(struct trunks *tr)
{
	tr->on = true;
	trunks_fill(tr);
}

void trunks_stop(struct trunks *tr)
{
	tr->on = false;
	tr->n_connecting -= pconn_close_all(&tr->connecting, false);
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
