/* A carrier as a stream on a trunk (carrier.h, net/mux.h): the laptop's
 * flows with TLS, and every flow the manager opens toward the laptop. */
#include <errno.h>

#include "daemon/carrier.h"
#include "daemon/tunnel.h"

static int stream_open(struct carrier *c)
{
	struct mux *mx = trunks_pick(&c->tun->trunks);

	if (!mx || mux_open(mx, &c->u.st, &c->dial, c) < 0)
		return -EAGAIN; /* no trunk up, or its queue is full: wait */
	return 0;
}

static int stream_answer(struct carrier *c, uint8_t status)
{
	return mux_result(&c->u.st, status);
}

static int stream_bind(struct carrier *c, int fd)
{
	return mux_bind(&c->u.st, fd);
}

static void stream_reset(struct carrier *c)
{
	mux_reset(&c->u.st);
}

static const uint64_t *stream_bytes(const struct carrier *c)
{
	return c->u.st.bytes;
}

const struct carrier_impl carrier_stream_impl = {
	.open = stream_open,
	.answer = stream_answer,
	.bind = stream_bind,
	.reset = stream_reset,
	.bytes = stream_bytes,
};

/* ---- the trunks' callbacks for every stream ---- */

static void on_result(struct mux_stream *st, uint8_t status)
{
	carrier_result(st->owner, status);
}

/* The stream ended; before its answer, that is a failed open. */
static void on_done(struct mux_stream *st, int err)
{
	struct carrier *c = st->owner;

	if (c->state == CARRIER_OPENING && !c->inbound)
		carrier_result(c, DIAL_ERROR);
	else
		carrier_done(c, err, c->state == CARRIER_BOUND ? st->fd : -1, st->bytes);
}

/* The manager opens toward the laptop: the inbound handler decides. */
static void on_open(struct mux *mx, uint32_t id, const struct msg_dial *m, void *arg)
{
	struct trunks *tr = arg;
	struct tunnel *t = tr->set.arg;
	struct carrier_offer o = { .tun = t, .mx = mx, .id = id, .dial = *m };
	uint8_t status = t->inbound ? t->inbound(t->inbound_arg, &o) : DIAL_FORBIDDEN;

	if (status != DIAL_OK) /* not taken */
		mux_refuse(mx, id, status);
}

const struct mux_ops carrier_stream_ops = {
	.open = on_open,
	.result = on_result,
	.done = on_done,
};
