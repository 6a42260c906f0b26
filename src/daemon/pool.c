/* The pool of flow connections (pool.h). */
#include "daemon/pool.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

static void pool_fill(struct pool *p);

static int pool_on_ready(struct pconn *pc)
{
	struct pool *p = pc->owner;

	list_del(&pc->link);
	p->n_connecting--;
	list_add(&p->idle, &pc->link);
	p->n_idle++;
	if (p->ready)
		p->ready(p->arg);
	return 0;
}

/* An idle flow connection hears nothing until its DIAL. */
static int pool_on_frame(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p)
{
	(void)pc;
	(void)p;
	log_debug("idle flow connection: unexpected %s", frame_type_name(h->type));
	return -EPROTO;
}

static void pool_on_fail(struct pconn *pc, int err, const char *why)
{
	struct pool *p = pc->owner;

	log_debug("flow connection: %s", why[0] ? why : strerror(-err));
	if (pc->state == PC_READY)
		p->n_idle--;
	else
		p->n_connecting--;
	pconn_close(pc, true);
	pool_fill(p);
}

static const struct pconn_ops pool_ops = {
	.ready = pool_on_ready,
	.frame = pool_on_frame,
	.fail = pool_on_fail,
};

void pool_init(struct pool *p, const struct pconn_cfg *cfg, void (*ready)(void *arg), void *arg)
{
	*p = (struct pool){ .cfg = cfg, .target = POOL_TARGET, .ready = ready, .arg = arg };
	list_init(&p->idle);
	list_init(&p->connecting);
}

/* A failed connect is not retried here: the next take or failure does. */
static void pool_fill(struct pool *p)
{
	while (p->on && p->n_idle + p->n_connecting < p->target && p->n_connecting < POOL_MAX_CONNECTING &&
	       pconn_open_onto(&p->connecting, p->cfg, CONN_FLOW, &pool_ops, p) == 0)
		p->n_connecting++;
}

void pool_start(struct pool *p)
{
	p->on = true;
	pool_fill(p);
}

void pool_stop(struct pool *p)
{
	p->on = false;
	p->n_idle -= pconn_close_all(&p->idle, false);
	p->n_connecting -= pconn_close_all(&p->connecting, false);
}

struct pconn *pool_take(struct pool *p)
{
	struct pconn *pc = NULL;

	if (!list_empty(&p->idle)) {
		pc = list_first(&p->idle, struct pconn, link);
		list_del(&pc->link);
		p->n_idle--;
	} else {
		p->waited_ms = loop_now_ms(p->cfg->loop);
		p->target = MIN(MAX(p->target, POOL_TARGET) * 2, POOL_TARGET_MAX);
	}
	pool_fill(p);
	return pc;
}

void pool_shrink(struct pool *p)
{
	uint64_t now = loop_now_ms(p->cfg->loop);

	if (p->target <= POOL_TARGET || now - p->waited_ms < POOL_SHRINK_MS)
		return;
	p->target /= 2;
	p->waited_ms = now;
	while (p->n_idle > p->target) {
		pconn_close(list_last(&p->idle, struct pconn, link), false);
		p->n_idle--;
	}
}
