/* A carrier as a pooled flow connection of its own (carrier.h, pool.h):
 * the laptop's flows with --insecure.  DIAL goes out on an idle
 * connection; after DIAL_RESULT the connection carries the flow's raw
 * bytes, spliced to the bound socket (net/relay.h). */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "daemon/carrier.h"
#include "daemon/tunnel.h"
#include "net/sock.h"

/* DIAL_RESULT, the only frame a dialling flow connection gets.  What
 * follows it is the flow's first bytes: 1 stops the reading there. */
static int pooled_frame(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p)
{
	struct carrier *c = pc->owner;
	struct msg_dial_result r;

	if (h->type != FT_DIAL_RESULT || msg_dial_result_decode(p, h->len, &r) < 0)
		return -EBADMSG;
	pconn_deadline(pc, 0);
	wire_consume(&pc->w);
	if (r.status == DIAL_OK) {
		pc->state = PC_DONE;
		loop_del(pc->cfg->loop, pc->fd); /* until the socket is bound */
	} else {
		c->u.pool.pc = NULL;
		pconn_close(pc, true); /* spent on this dial */
	}
	carrier_result(c, r.status);
	return 1;
}

static void pooled_fail(struct pconn *pc, int err, const char *why)
{
	struct carrier *c = pc->owner;

	log_debug("flow connection failed while dialling: %s", why[0] ? why : strerror(-err));
	c->u.pool.pc = NULL;
	pconn_close(pc, true);
	carrier_result(c, err == -ETIMEDOUT ? DIAL_TIMEOUT : DIAL_ERROR);
}

static const struct pconn_ops pooled_ops = {
	.frame = pooled_frame,
	.fail = pooled_fail,
};

static int pool_open(struct carrier *c)
{
	struct pconn *pc = pool_take(&c->tun->pool);
	uint8_t buf[64];
	ssize_t n = msg_dial_encode(buf, sizeof(buf), &c->dial);

	if (!pc)
		return -EAGAIN;
	pc->ops = &pooled_ops;
	pc->owner = c;
	if (n < 0 || pconn_send(pc, buf, (size_t)n) < 0) {
		pconn_close(pc, true);
		return -EAGAIN; /* the next connection to come up takes it */
	}
	c->u.pool.pc = pc;
	pconn_deadline(pc, c->dial.timeout_ms + 1000);
	return 0;
}

static void pool_relay_done(struct relay *r, int err, void *arg)
{
	struct carrier *c = arg;
	uint64_t bytes[2] = { r->bytes[0], r->bytes[1] };

	if (err)
		sock_linger_rst(r->fd[1]); /* a reset on one side becomes a reset on the other */
	carrier_done(c, err, relay_release(r, 0), bytes);
}

/* Bytes the destination sent right after the dial (a banner) came in with
 * DIAL_RESULT: they go to the socket first, then the relay takes both. */
static int pool_bind(struct carrier *c, int fd)
{
	struct pconn *pc = c->u.pool.pc;
	const uint8_t *rest;
	size_t n = wire_take_rest(&pc->w, &rest);
	struct wire w;
	int r;

	if (n && write(fd, rest, n) != (ssize_t)n)
		return -EIO;
	pconn_release(pc, &w);
	c->u.pool.pc = NULL;
	r = relay_start(&c->u.pool.relay, c->tun->cfg.loop, fd, w.fd, pool_relay_done, c);
	if (r < 0)
		close(w.fd);
	wire_fini(&w);
	return r;
}

static void pool_reset(struct carrier *c)
{
	if (c->state == CARRIER_BOUND) {
		sock_linger_rst(c->u.pool.relay.fd[1]);
		relay_release(&c->u.pool.relay, 0);
	} else {
		pconn_close(c->u.pool.pc, true);
	}
	c->u.pool.pc = NULL;
}

static const uint64_t *pool_bytes(const struct carrier *c)
{
	return c->u.pool.relay.bytes;
}

const struct carrier_impl carrier_pool_impl = {
	.open = pool_open,
	.bind = pool_bind,
	.reset = pool_reset,
	.bytes = pool_bytes,
};
