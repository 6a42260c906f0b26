#include "net/wire.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "net/tls.h"

#define WIRE_WBUF_MIN 1024

static bool wire_limits_ok(size_t rcap, size_t max_payload)
{
	return max_payload <= UINT32_MAX && rcap >= FRAME_HDR_LEN &&
	       rcap - FRAME_HDR_LEN >= max_payload;
}

int wire_init(struct wire *w, int fd, size_t rcap, size_t max_payload)
{
	memset(w, 0, sizeof(*w));
	w->fd = fd;
	if (!wire_limits_ok(rcap, max_payload))
		return -EINVAL;
	w->rbuf = malloc(rcap);
	if (!w->rbuf)
		return -ENOMEM;
	w->rcap = rcap;
	w->max_payload = max_payload;
	w->wmax = WIRE_WMAX_DEFAULT;
	return 0;
}

void wire_fini(struct wire *w)
{
	tls_free(w->tls);
	w->tls = NULL;
	free(w->rbuf);
	free(w->wbuf);
	w->rbuf = w->wbuf = NULL;
	w->roff = w->rlen = w->rcap = w->rframe = 0;
	w->woff = w->wlen = w->wcap = 0;
}

/* Moves the unconsumed bytes to the front of the read buffer. */
static void wire_compact(struct wire *w)
{
	if (!w->roff)
		return;
	memmove(w->rbuf, w->rbuf + w->roff, w->rlen - w->roff);
	w->rlen -= w->roff;
	w->roff = 0;
}

void wire_drop(struct wire *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	wire_fini(w);
}

int wire_set_limits(struct wire *w, size_t rcap, size_t max_payload)
{
	uint8_t *p;

	if (!wire_limits_ok(rcap, max_payload))
		return -EINVAL;
	wire_compact(w);
	if (rcap < w->rlen)
		return -EINVAL;
	if (rcap != w->rcap) {
		p = realloc(w->rbuf, rcap);
		if (!p)
			return -ENOMEM;
		w->rbuf = p;
		w->rcap = rcap;
	}
	w->max_payload = max_payload;
	w->rframe = 0;
	return 0;
}

/* TLS hands out one record per call: read until the buffer is full or
 * the SSL is dry, so one readiness event drains what it announced.  Bytes
 * first; an EOF or error after them shows again on the next call. */
static int wire_read_tls(struct wire *w)
{
	size_t got = 0;

	while (w->rlen < w->rcap) {
		ssize_t n = tls_read(w->tls, w->rbuf + w->rlen, w->rcap - w->rlen);
		if (n <= 0) {
			if (got)
				break;
			return (int)n;
		}
		w->rlen += (size_t)n;
		got += (size_t)n;
		if (tls_drained(w->tls)) { /* no call only to hear EAGAIN */
			w->drained = true;
			break;
		}
	}
	return (int)got;
}

int wire_read(struct wire *w)
{
	ssize_t n;

	/* Cheap: the caller consumes whole frames first, so at most one
	 * partial frame moves. */
	wire_compact(w);
	w->rframe = 0;
	w->drained = false;
	if (w->rlen == w->rcap)
		return -ENOBUFS;
	if (w->tls)
		return wire_read_tls(w);
	do
		n = read(w->fd, w->rbuf + w->rlen, w->rcap - w->rlen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EWOULDBLOCK ? -EAGAIN : -errno;
	w->drained = n > 0 && (size_t)n < w->rcap - w->rlen;
	w->rlen += (size_t)n;
	return (int)n;
}

int wire_next(struct wire *w, struct frame_hdr *h, const uint8_t **payload)
{
	size_t avail = w->rlen - w->roff;
	int ret = frame_hdr_decode(w->rbuf + w->roff, avail, w->max_payload, h);

	if (ret <= 0)
		return ret;
	if (avail - FRAME_HDR_LEN < h->len)
		return 0;
	*payload = w->rbuf + w->roff + FRAME_HDR_LEN;
	w->rframe = FRAME_HDR_LEN + (size_t)h->len;
	return 1;
}

void wire_consume(struct wire *w)
{
	w->roff += w->rframe;
	w->rframe = 0;
	if (w->roff == w->rlen)
		w->roff = w->rlen = 0;
}

size_t wire_unread(const struct wire *w)
{
	return w->rlen - w->roff;
}

size_t wire_take_rest(struct wire *w, const uint8_t **p)
{
	size_t n = w->rlen - w->roff;

	*p = w->rbuf ? w->rbuf + w->roff : (const uint8_t *)"";
	/* Marked consumed without moving: the bytes stay where *p points. */
	w->roff = w->rlen;
	w->rframe = 0;
	return n;
}

uint8_t *wire_reserve(struct wire *w, size_t n)
{
	size_t queued = w->wlen - w->woff;
	size_t cap;
	uint8_t *p;

	if (n > w->wmax || queued > w->wmax - n)
		return NULL;
	if (w->woff && n > w->wcap - w->wlen) {
		memmove(w->wbuf, w->wbuf + w->woff, queued);
		w->wlen = queued;
		w->woff = 0;
	}
	if (n > w->wcap - w->wlen) {
		cap = w->wcap ? w->wcap : WIRE_WBUF_MIN;
		while (cap < w->wlen + n)
			cap *= 2;
		cap = MIN(cap, w->wmax);
		p = realloc(w->wbuf, cap);
		if (!p)
			return NULL;
		w->wbuf = p;
		w->wcap = cap;
	}
	return w->wbuf + w->wlen;
}

void wire_commit(struct wire *w, size_t n)
{
	w->wlen += n;
}

int wire_queue(struct wire *w, const void *p, size_t n)
{
	uint8_t *q = wire_reserve(w, n);

	if (!q)
		return -ENOBUFS;
	memcpy(q, p, n);
	wire_commit(w, n);
	return 0;
}

static ssize_t wire_write(int fd, const void *p, size_t n)
{
	ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

	if (r < 0 && errno == ENOTSOCK)
		r = write(fd, p, n);
	return r;
}

int wire_flush(struct wire *w)
{
	while (w->woff < w->wlen) {
		ssize_t n = w->tls ? tls_write(w->tls, w->wbuf + w->woff, w->wlen - w->woff)
				   : wire_write(w->fd, w->wbuf + w->woff, w->wlen - w->woff);
		if (w->tls && n < 0) {
			errno = (int)-n;
			n = -1;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 1;
			return -errno;
		}
		w->woff += (size_t)n;
	}
	w->woff = w->wlen = 0;
	return 0;
}

size_t wire_pending(const struct wire *w)
{
	return w->wlen - w->woff;
}

bool wire_more(const struct wire *w)
{
	return w->tls && tls_pending(w->tls);
}

struct ssl_st *wire_take_tls(struct wire *w)
{
	struct ssl_st *t = w->tls;

	w->tls = NULL;
	return t;
}

void wire_close_notify(struct wire *w)
{
	if (w->tls)
		tls_shutdown(w->tls);
}

int wire_heartbeat_ack(struct wire *w, const uint8_t *p, size_t len)
{
	struct msg_heartbeat hb;
	uint8_t *q;
	ssize_t n;

	if (msg_heartbeat_decode(p, len, &hb) < 0)
		return -EBADMSG;
	q = wire_reserve(w, 64);
	n = q ? msg_heartbeat_encode(q, 64, FT_HEARTBEAT_ACK, &hb) : -ENOBUFS;
	if (n > 0)
		wire_commit(w, (size_t)n);
	return 0;
}
