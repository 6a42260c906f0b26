/* The carrier interface (carrier.h): choosing a transport, the carriers
 * waiting for a connection to the manager, and the callbacks' bookkeeping. */
#include "daemon/carrier.h"

#include <errno.h>
#include <string.h>

#include "daemon/tunnel.h"

/* Ask the transport for a connection once a carrier waits for one. */
void carrier_want(struct tunnel *t)
{
	if (!tunnel_up(t))
		return; /* the next session brings them */
	if (t->insecure)
		pool_start(&t->pool); /* refills */
	if (!t->insecure || !t->lane)
		trunks_start(&t->trunks);
}

static void carrier_unwait(struct carrier *c)
{
	if (c->state != CARRIER_WAITING)
		return;
	list_del(&c->wait);
	c->tun->n_waiting--;
}

int carrier_open(struct tunnel *tun, struct carrier *c, const struct msg_dial *m,
		 const struct carrier_ops *ops, void *owner)
{
	int r;

	*c = (struct carrier){ .ops = ops, .owner = owner, .tun = tun, .dial = *m, .fd = -1,
			       .impl = tun->insecure ? &carrier_pool_impl : &carrier_stream_impl };
	c->state = CARRIER_OPENING;
	r = c->impl->open(c);
	if (r != -EAGAIN) {
		if (r < 0)
			c->state = CARRIER_CLOSED;
		return r;
	}
	c->state = CARRIER_WAITING;
	list_add_tail(&tun->waiting, &c->wait);
	tun->n_waiting++;
	carrier_want(tun);
	return 1;
}

void carrier_kick(struct tunnel *tun)
{
	while (!list_empty(&tun->waiting)) {
		struct carrier *c = list_first(&tun->waiting, struct carrier, wait);
		int r;

		c->state = CARRIER_OPENING;
		r = c->impl->open(c);
		if (r == -EAGAIN) {
			c->state = CARRIER_WAITING;
			return;
		}
		list_del(&c->wait);
		tun->n_waiting--;
		if (r < 0) {
			carrier_result(c, DIAL_ERROR);
			continue;
		}
		if (c->ops->sent)
			c->ops->sent(c);
	}
}

int carrier_accept(struct carrier *c, const struct carrier_offer *o, const struct carrier_ops *ops,
		   void *owner)
{
	*c = (struct carrier){ .ops = ops, .owner = owner, .tun = o->tun, .dial = o->dial, .fd = -1,
			       .impl = &carrier_stream_impl, .state = CARRIER_OPENING, .inbound = true };
	if (mux_attach(o->mx, &c->u.st, o->id, c) < 0) {
		c->state = CARRIER_CLOSED;
		return -EEXIST;
	}
	return 0;
}

int carrier_answer(struct carrier *c, uint8_t status)
{
	int r;

	if (c->state != CARRIER_OPENING || !c->impl->answer)
		return -EINVAL;
	r = c->impl->answer(c, status);
	c->state = status == DIAL_OK && r == 0 ? CARRIER_OPEN : CARRIER_CLOSED;
	return r;
}

int carrier_bind(struct carrier *c, int fd)
{
	int r;

	if (c->state != CARRIER_OPEN)
		return -EINVAL;
	r = c->impl->bind(c, fd);
	if (r < 0) {
		c->impl->reset(c);
		c->state = CARRIER_CLOSED;
		return r;
	}
	c->fd = fd;
	c->state = CARRIER_BOUND;
	return 0;
}

void carrier_reset(struct carrier *c)
{
	if (c->state == CARRIER_CLOSED)
		return;
	carrier_unwait(c);
	if (c->state != CARRIER_WAITING)
		c->impl->reset(c);
	c->state = CARRIER_CLOSED;
}

void carrier_bytes(const struct carrier *c, uint64_t b[2])
{
	const uint64_t *n = c->state == CARRIER_BOUND ? c->impl->bytes(c) : c->bytes;

	b[0] = n[0];
	b[1] = n[1];
}

void carrier_result(struct carrier *c, uint8_t status)
{
	c->state = status == DIAL_OK ? CARRIER_OPEN : CARRIER_CLOSED;
	c->ops->result(c, status);
}

void carrier_done(struct carrier *c, int err, int fd, const uint64_t bytes[2])
{
	c->state = CARRIER_CLOSED;
	c->fd = fd;
	c->bytes[0] = bytes[0];
	c->bytes[1] = bytes[1];
	c->ops->done(c, err);
}
