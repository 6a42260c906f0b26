/* The pool of flow connections (pool.h). */
#include "daemon/pool.h"

#include <errno.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"

static void pool_fill(struct pool *p);

static int pool_on_ready(struct pconn *pc)
{
	struct pool *p = container_of(pc->owner, struct pool, set);

	pconn_set_done(&p->set, pc);
	list_add(&p->idle, &pc->link);
	p->n_idle++;
	p->set.up(p->set.arg);
	return 0;
}

static void pool_on_fail(struct pconn *pc, int err, const char *why)
{
	struct pool *p = container_of(pc->owner, struct pool, set);

	if (pc->state == PC_READY) { /* idle */
		p->n_idle--;
		pconn_close(pc, true);
	} else {
		pconn_set_fail(pc, err, why);
	}
	pool_fill(p);
}

static const struct pconn_ops pool_ops = {
	.ready = pool_on_ready,
	.fail = pool_on_fail, /* an idle flow connection hears nothing until its DIAL */
};

void pool_init(struct pool *p, const struct pconn_cfg *cfg, void (*ready)(void *arg), void *arg)
{
	*p = (struct pool){ .target = POOL_TARGET };
	pconn_set_init(&p->set, cfg, CONN_FLOW, &pool_ops, ready, arg);
	list_init(&p->idle);
}

/* A failed connect is not retried here: the next take or failure does. */
static void pool_fill(struct pool *p)
{
	pconn_set_open(&p->set, MIN(p->target - p->n_idle - p->set.n_connecting,
				    POOL_MAX_CONNECTING - p->set.n_connecting));
}

void pool_start(struct pool *p)
{
	p->set.on = true;
	pool_fill(p);
}

void pool_stop(struct pool *p)
{
	pconn_set_stop(&p->set);
	p->n_idle -= pconn_close_all(&p->idle, false);
}

struct pconn *pool_take(struct pool *p)
{
	struct pconn *pc = NULL;

	if (!list_empty(&p->idle)) {
		pc = list_first(&p->idle, struct pconn, link);
		list_del(&pc->link);
		p->n_idle--;
	} else {
		p->waited_ms = loop_now_ms(p->set.cfg->loop);
		p->target = MIN(MAX(p->target, POOL_TARGET) * 2, POOL_TARGET_MAX);
	}
	pool_fill(p);
	return pc;
}

void pool_shrink(struct pool *p)
{
	uint64_t now = loop_now_ms(p->set.cfg->loop);

	if (p->target <= POOL_TARGET || now - p->waited_ms < POOL_SHRINK_MS)
		return;
	p->target /= 2;
	p->waited_ms = now;
	while (p->n_idle > p->target) {
		pconn_close(list_last(&p->idle, struct pconn, link), false);
		p->n_idle--;
	}
}
