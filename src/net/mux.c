/* Streams over a trunk (mux.h).  All in the event loop: the trunk's
 * handler reads frames and writes the queue; each bound stream's handler
 * reads its socket into the trunk's queue (straight after a DATA header,
 * no copy of its own) and writes what the peer sent.  Stream handlers never
 * end the trunk: a failed write shows again to the trunk's handler. */
#include "net/mux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "net/sock.h"
#include "net/tls.h"

static void stream_event(struct loop *l, int fd, uint32_t events, void *arg);
static void trunk_event(struct loop *l, int fd, uint32_t events, void *arg);

static struct mux_stream *lookup(struct mux *mx, uint32_t id)
{
	struct idtab_node *n = idtab_find(&mx->streams, id);

	return n ? container_of(n, struct mux_stream, hn) : NULL;
}

static void blocked_del(struct mux *mx, struct mux_stream *st)
{
	if (!st->blocked)
		return;
	if (st->bprev)
		st->bprev->bnext = st->bnext;
	else
		mx->blocked = st->bnext;
	if (st->bnext)
		st->bnext->bprev = st->bprev;
	st->bnext = st->bprev = NULL;
	st->blocked = false;
}

static void blocked_add(struct mux *mx, struct mux_stream *st)
{
	if (st->blocked)
		return;
	st->blocked = true;
	st->bprev = NULL;
	st->bnext = mx->blocked;
	if (mx->blocked)
		mx->blocked->bprev = st;
	mx->blocked = st;
}

static void attach(struct mux *mx, struct mux_stream *st, uint32_t id, void *owner)
{
	*st = (struct mux_stream){ .mx = mx, .owner = owner, .fd = -1, .credit = MUX_WINDOW };
	idtab_add(&mx->streams, &st->hn, id);
	mx->n_streams++;
}

/* Out of the table and the loop; the fd and the owner's memory stay. */
static void detach(struct mux_stream *st)
{
	struct mux *mx = st->mx;
	idtab_del(&mx->streams, &st->hn);
	blocked_del(mx, st);
	if (st->fd >= 0 && !st->hup)
		loop_del(mx->loop, st->fd);
	mx->pend_bytes -= st->pend_len;
	free(st->pend);
	st->pend = NULL;
	st->pend_off = st->pend_len = st->pend_cap = 0;
	st->mx = NULL;
	mx->n_streams--;
}

/* A small frame, whatever the DATA threshold: -ENOBUFS only when even the
 * control reserve is gone (a peer that does not read). */
static int queue(struct mux *mx, uint8_t type, const struct msg_stream *m)
{
	uint8_t *p = wire_reserve(&mx->w, 32);
	ssize_t n = p ? msg_stream_encode(p, 32, type, m) : -ENOBUFS;

	if (n < 0)
		return (int)n;
	wire_commit(&mx->w, (size_t)n);
	return 0;
}

static void mux_flush_deferred(struct loop *l, struct loop_defer *d);

/* Writes the queue now when it is large; else once at the end of this
 * wakeup (loop_defer), so that the frames every stream queued meanwhile
 * share records and a send, and a lone small record still leaves before
 * the loop sleeps, without a read of the trunk for it. */
static void want_flush(struct mux *mx)
{
	/* Streams wait for room only a flush gives back (unblock): the
	 * deferred one runs whenever one waits, even if this one empties the queue. */
	if (wire_pending(&mx->w) >= MUX_FLUSH_NOW && wire_flush(&mx->w) >= 0 && !wire_pending(&mx->w) &&
	    !mx->blocked)
		return;
	loop_defer(mx->loop, &mx->flush, mux_flush_deferred, mx);
}

static void stream_update(struct mux_stream *st)
{
	uint32_t ev = 0;

	if (st->fd < 0 || st->hup)
		return;
	if (!st->eof && st->credit && !st->blocked)
		ev |= LOOP_IN;
	if (st->pend_len)
		ev |= LOOP_OUT;
	loop_mod(st->mx->loop, st->fd, ev); /* a no-op when the interest is the same */
}

static void stream_end(struct mux_stream *st, int err)
{
	struct mux *mx = st->mx;

	detach(st);
	mx->ops->done(st, err);
}

/* Ends st with a RST to the peer (a failed socket, a broken rule). */
static void stream_abort(struct mux_stream *st, int err)
{
	struct mux *mx = st->mx;

	queue(mx, FT_STREAM_RST, &(struct msg_stream){ .id = st->hn.id });
	want_flush(mx);
	stream_end(st, err);
}

/* Both halves done: the stream ends cleanly.  True if it did. */
static bool stream_check_done(struct mux_stream *st)
{
	if (!st->eof || !st->peer_fin || !st->shut)
		return false;
	sock_linger_default(st->fd); /* a FIN after the last bytes (mux_bind) */
	stream_end(st, 0);
	return true;
}

static void stream_wrote(struct mux_stream *st, size_t n)
{
	st->bytes[1] += n;
	st->owed += (uint32_t)n;
	if (st->owed >= MUX_CREDIT_STEP &&
	    queue(st->mx, FT_STREAM_CREDIT, &(struct msg_stream){ .id = st->hn.id, .credit = st->owed }) == 0) {
		st->owed = 0;
		want_flush(st->mx);
	}
}

/* Bytes that waited went out: a trunk that stopped reading for them reads again. */
static void pend_less(struct mux *mx, size_t n)
{
	bool full = mx->pend_bytes >= MUX_PEND_MAX;

	mx->pend_bytes -= n;
	if (full && mx->pend_bytes < MUX_PEND_MAX)
		loop_kick(mx->loop, mx->w.fd);
}

/* Writes what waits for fd; a FIN that came after it becomes ours. */
static int stream_write(struct mux_stream *st)
{
	while (st->pend_len) {
		ssize_t n = send(st->fd, st->pend + st->pend_off, st->pend_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		st->pend_off += (uint32_t)n;
		st->pend_len -= (uint32_t)n;
		pend_less(st->mx, (size_t)n);
		stream_wrote(st, (size_t)n);
	}
	st->pend_off = 0;
	if (st->pend_cap > MUX_PEND_KEEP) { /* a burst's buffer is not kept by a stream that may idle for hours */
		free(st->pend);
		st->pend = NULL;
		st->pend_cap = 0;
	}
	if (st->peer_fin && !st->shut) {
		shutdown(st->fd, SHUT_WR);
		st->shut = true;
	}
	return 0;
}

/* Reads fd into DATA frames while credit and the trunk queue allow. */
static int stream_read(struct mux_stream *st)
{
	struct mux *mx = st->mx;
	bool moved = false;

	for (int i = 0; i < MUX_STREAM_READS && st->credit; i++) {
		uint32_t want = MIN(st->credit, STREAM_DATA_MAX);
		size_t need = STREAM_DATA_HDR_LEN + want;
		uint8_t *p = wire_pending(&mx->w) + need <= MUX_QUEUE_DATA ? wire_reserve(&mx->w, need) : NULL;
		ssize_t n;

		if (!p) {
			blocked_add(mx, st);
			break;
		}
		n = recv(st->fd, p + STREAM_DATA_HDR_LEN, want, MSG_DONTWAIT);
		if (n < 0 && errno == EAGAIN)
			break;
		if (n < 0)
			return -errno;
		moved = true;
		if (n == 0) {
			st->eof = true;
			if (queue(mx, FT_STREAM_FIN, &(struct msg_stream){ .id = st->hn.id }) < 0)
				return -ENOBUFS;
			break;
		}
		stream_data_hdr(p, st->hn.id, (uint32_t)n);
		wire_commit(&mx->w, STREAM_DATA_HDR_LEN + (size_t)n);
		st->credit -= (uint32_t)n;
		st->bytes[0] += (uint64_t)n;
		if ((uint32_t)n < want)
			break;
	}
	if (moved || st->blocked)
		want_flush(mx);
	return 0;
}

static void stream_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct mux_stream *st = arg;
	int err = 0;

	(void)l;
	if (events & EPOLLERR) {
		err = sock_connect_result(fd);
		err = err ? err : -ECONNRESET;
	} else if ((events & EPOLLHUP) && st->eof && !st->shut) {
		/* Closed both ways after its EOF (a socketpair's owner done with
		 * it) while the peer's half is open: as TCP would, the peer's FIN
		 * ends the stream cleanly, its bytes would meet a reset. */
		if (st->pend_len) {
			err = -ECONNRESET;
		} else {
			loop_del(l, fd);
			st->hup = true;
			return;
		}
	}
	if (!err && (events & LOOP_OUT))
		err = stream_write(st);
	if (!err && (events & LOOP_IN) && !st->eof && st->credit && !st->blocked)
		err = stream_read(st);
	if (err) {
		stream_abort(st, err);
		return;
	}
	if (!stream_check_done(st))
		stream_update(st);
}

/* ---- frames from the peer ---- */

/* Keeps n bytes for later, within the window the peer must respect. */
static int stream_keep(struct mux_stream *st, const uint8_t *p, uint32_t n)
{
	uint32_t need;

	if (st->pend_len + n > MUX_WINDOW) {
		st->mx->st.overruns++;
		return -EPROTO;
	}
	need = st->pend_len + n;
	if (st->pend_off && st->pend_off + need > st->pend_cap) { /* no room at the end: compact */
		memmove(st->pend, st->pend + st->pend_off, st->pend_len);
		st->pend_off = 0;
	}
	if (need > st->pend_cap) {
		uint32_t cap = MAX(st->pend_cap * 2, 16u * 1024);
		uint8_t *q;
		while (cap < need)
			cap *= 2;
		cap = MIN(cap, MUX_WINDOW);
		if (!(q = realloc(st->pend, cap)))
			return -ENOMEM;
		st->pend = q;
		st->pend_cap = cap;
	}
	memcpy(st->pend + st->pend_off + st->pend_len, p, n);
	st->pend_len += n;
	st->mx->pend_bytes += n;
	return 0;
}

static int on_data(struct mux_stream *st, const struct msg_stream *m)
{
	const uint8_t *p = m->data;
	uint32_t n = m->len;

	if (st->peer_fin || st->opening)
		return -EPROTO;
	if (st->hup)
		return -ECONNRESET; /* nobody reads them */
	if (st->fd >= 0 && !st->pend_len) {
		ssize_t w = send(st->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN)
			return -errno;
		if (w > 0) {
			p += w;
			n -= (uint32_t)w;
			stream_wrote(st, (size_t)w);
		}
	}
	return n ? stream_keep(st, p, n) : 0;
}

static int on_fin(struct mux_stream *st)
{
	if (st->peer_fin || st->opening)
		return -EPROTO;
	st->peer_fin = true;
	if (st->hup) {
		st->shut = true; /* nothing to write a FIN to: done */
		return 0;
	}
	return st->fd >= 0 ? stream_write(st) : 0;
}

/* One frame for a stream.  The stream may end here. */
static void on_stream_frame(struct mux *mx, uint8_t type, const struct msg_stream *m)
{
	struct mux_stream *st = lookup(mx, m->id);
	int err = 0;

	if (!st)
		return; /* ended here while the frame was on its way */
	switch (type) {
	case FT_STREAM_RESULT:
		if (!st->opening) {
			err = -EPROTO;
			break;
		}
		st->opening = false;
		if (m->status != DIAL_OK)
			detach(st);
		mx->ops->result(st, m->status);
		return;
	case FT_STREAM_DATA:
		err = on_data(st, m);
		break;
	case FT_STREAM_FIN:
		err = on_fin(st);
		break;
	case FT_STREAM_CREDIT:
		if (st->credit > MUX_WINDOW - MIN(m->credit, MUX_WINDOW)) {
			err = -EPROTO; /* more back than was ever sent */
			break;
		}
		st->credit += m->credit;
		break;
	case FT_STREAM_RST:
		stream_end(st, -ECONNRESET);
		return;
	}
	if (err) {
		stream_abort(st, err);
		return;
	}
	if (!stream_check_done(st))
		stream_update(st);
}

static int on_frame(struct mux *mx, const struct frame_hdr *h, const uint8_t *p)
{
	struct msg_stream m;

	if (h->type < FT_STREAM_OPEN || h->type > FT_STREAM_CREDIT)
		return mx->ops->frame ? mx->ops->frame(mx, h, p, mx->arg) : -EPROTO;
	if (msg_stream_decode(h->type, p, h->len, &m) < 0)
		return -EBADMSG;
	if (h->type == FT_STREAM_OPEN) {
		/* The peer opens with its own parity (mux_role), an id not in use. */
		if ((m.id & 1) != (mx->role == MUX_ACCEPTOR) || lookup(mx, m.id))
			return -EPROTO;
		if (!mx->ops->open)
			return mux_refuse(mx, m.id, DIAL_FORBIDDEN);
		mx->ops->open(mx, m.id, &m.dial, mx->arg);
		return 0;
	}
	on_stream_frame(mx, h->type, &m);
	return 0;
}

/* ---- the trunk ---- */

/* Streams that waited for room in the queue read again. */
static void unblock(struct mux *mx)
{
	while (mx->blocked && wire_pending(&mx->w) < MUX_QUEUE_DATA / 2) {
		struct mux_stream *st = mx->blocked;
		blocked_del(mx, st);
		stream_update(st);
		if (st->fd >= 0)
			loop_kick(mx->loop, st->fd);
	}
}

/* Every stream ends, reset (the trunk is going). */
static void mux_end_all(struct mux *mx)
{
	for (size_t i = 0; i < ARRAY_SIZE(mx->buckets); i++)
		while (mx->buckets[i])
			stream_end(container_of(mx->buckets[i], struct mux_stream, hn), -ECONNRESET);
}

static void mux_down(struct mux *mx, int err)
{
	mx->dead = true;
	mux_end_all(mx);
	mx->ops->down(mx, err, mx->arg);
}

static int trunk_input(struct mux *mx)
{
	struct frame_hdr h;
	const uint8_t *p;
	int r = 0;

	for (int i = 0; i < MUX_TRUNK_READS && !mx->dead && mx->pend_bytes < MUX_PEND_MAX; i++) {
		r = wire_read(&mx->w);
		if (r == -EAGAIN)
			return 0;
		if (r == 0)
			return -ECONNRESET; /* the manager or daemon closed the trunk */
		if (r < 0)
			return r;
		while ((r = wire_next(&mx->w, &h, &p)) == 1) {
			if ((r = on_frame(mx, &h, p)) < 0)
				return r;
			wire_consume(&mx->w);
		}
		if (r < 0)
			return r;
		if (mx->w.drained)
			break; /* the next readiness event brings more */
	}
	if (wire_more(&mx->w) && mx->pend_bytes < MUX_PEND_MAX)
		loop_kick(mx->loop, mx->w.fd);
	return 0;
}

/* After a flush: streams waiting for room read again, and the trunk
 * waits for what it needs. */
static void trunk_settle(struct mux *mx)
{
	unblock(mx);
	loop_mod(mx->loop, mx->w.fd,
		 (mx->pend_bytes < MUX_PEND_MAX ? LOOP_IN : 0) | (wire_pending(&mx->w) ? LOOP_OUT : 0));
}

static void trunk_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct mux *mx = arg;
	int r = 0;

	(void)l;
	(void)fd;
	(void)events;
	if (wire_pending(&mx->w))
		r = wire_flush(&mx->w);
	if (r >= 0)
		r = trunk_input(mx);
	if (r >= 0)
		r = wire_flush(&mx->w);
	if (r < 0) {
		mux_down(mx, r);
		return;
	}
	trunk_settle(mx);
}

/* The end of a wakeup in which frames were queued (want_flush). */
static void mux_flush_deferred(struct loop *l, struct loop_defer *d)
{
	struct mux *mx = d->arg;
	int r = wire_flush(&mx->w);

	(void)l;
	if (r < 0) {
		mux_down(mx, r);
		return;
	}
	trunk_settle(mx);
}

struct mux *mux_new(struct loop *l, struct wire *w, enum mux_role role, const struct mux_ops *ops, void *arg)
{
	struct mux *mx = calloc(1, sizeof(*mx));
	int r;

	if (!mx)
		return NULL;
	mx->loop = l;
	mx->w = *w;
	mx->ops = ops;
	mx->arg = arg;
	mx->role = role;
	idtab_init(&mx->streams, mx->buckets, MUX_BUCKET_BITS);
	mx->next_id = role == MUX_INITIATOR ? 1 : 2;
	mx->w.wmax = MUX_QUEUE_MAX;
	if (mx->w.tls)
		tls_set_bulk(mx->w.tls); /* best effort: a busy one stays as it is */
	r = wire_set_limits(&mx->w, 2 * (size_t)FRAME_MAX, FRAME_MAX_PAYLOAD);
	if (r == 0)
		r = loop_add(l, mx->w.fd, LOOP_IN, trunk_event, mx);
	if (r < 0) {
		*w = mx->w;
		free(mx);
		return NULL;
	}
	loop_kick(l, mx->w.fd); /* frames may have come with the handshake */
	return mx;
}

void mux_free(struct mux *mx)
{
	if (!mx)
		return;
	if (!mx->dead) {
		mx->dead = true;
		mux_end_all(mx);
	}
	loop_defer_cancel(mx->loop, &mx->flush);
	loop_del(mx->loop, mx->w.fd);
	wire_close_notify(&mx->w);
	close(mx->w.fd);
	wire_fini(&mx->w);
	free(mx);
}

int mux_open(struct mux *mx, struct mux_stream *st, const struct msg_dial *m, void *owner)
{
	uint32_t id = mx->next_id;
	int r;

	if (mx->dead)
		return -ENOTCONN;
	while (id == 0 || lookup(mx, id))
		id += 2; /* keeps the parity, and wraps onto it */
	mx->next_id = id + 2;
	r = queue(mx, FT_STREAM_OPEN, &(struct msg_stream){ .id = id, .dial = *m });
	if (r < 0)
		return r;
	attach(mx, st, id, owner);
	st->opening = true;
	want_flush(mx);
	return 0;
}

int mux_attach(struct mux *mx, struct mux_stream *st, uint32_t id, void *owner)
{
	if (lookup(mx, id))
		return -EEXIST;
	attach(mx, st, id, owner);
	return 0;
}

int mux_refuse(struct mux *mx, uint32_t id, uint8_t status)
{
	int r = queue(mx, FT_STREAM_RESULT, &(struct msg_stream){ .id = id, .status = status });

	want_flush(mx);
	return r;
}

int mux_result(struct mux_stream *st, uint8_t status)
{
	struct mux *mx = st->mx;

	if (status != DIAL_OK)
		detach(st);
	return mux_refuse(mx, st->hn.id, status);
}

int mux_bind(struct mux_stream *st, int fd)
{
	struct mux *mx = st->mx;
	int r = loop_add(mx->loop, fd, LOOP_IN, stream_event, st);

	if (r < 0)
		return r;
	st->fd = fd;
	/* Until the stream ends cleanly a close is a reset: if this process
	 * dies, the socket's peer hears it, not a clean-looking EOF. */
	sock_linger_rst(fd);
	/* What came before the socket did: bytes, a FIN.  Written at the
	 * socket's first writable event (a fresh socket is writable). */
	if (st->pend_len || st->peer_fin)
		loop_mod(mx->loop, fd, LOOP_IN | LOOP_OUT);
	return 0;
}

void mux_reset(struct mux_stream *st)
{
	struct mux *mx = st->mx;

	if (!mx)
		return;
	if (!mx->dead) {
		queue(mx, FT_STREAM_RST, &(struct msg_stream){ .id = st->hn.id });
		want_flush(mx);
	}
	detach(st);
}

int mux_send_frame(struct mux *mx, const uint8_t *frame, size_t len)
{
	if (mx->dead || wire_pending(&mx->w) + len > MUX_QUEUE_MAX || wire_queue(&mx->w, frame, len) < 0)
		return -ENOBUFS;
	want_flush(mx);
	return 0;
}

int mux_kick(struct mux *mx)
{
	want_flush(mx);
	return 0;
}
