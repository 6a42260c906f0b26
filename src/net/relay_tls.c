/* The TLS variant of the relay (relay.h): fd[tls_side] speaks TLS, the
 * other side is a plain TCP socket.  Per direction, one bounded buffer
 * (RELAY_TLS_BUF): read from the source while it has room, write to the
 * destination while it holds bytes, at most RELAY_TLS_ROUNDS of each per
 * wakeup.  Decrypted bytes left inside the SSL raise no epoll event, so
 * the TLS fd is kicked (loop_kick) while some wait and the buffer has room. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "net/relay.h"
#include "net/sock.h"
#include "net/tls.h"

#define RELAY_TLS_BUF (64 * 1024) /* per direction: four full records */
#define RELAY_TLS_ROUNDS 8

static ssize_t relay_tls_in(struct relay *r, int d, uint8_t *p, size_t n)
{
	ssize_t got;

	if (d == r->tls_side)
		return tls_read(r->tls, p, n);
	got = recv(r->fd[d], p, n, MSG_DONTWAIT);
	return got < 0 ? -errno : got;
}

static ssize_t relay_tls_out(struct relay *r, int d, const uint8_t *p, size_t n)
{
	ssize_t put;

	if (1 - d == r->tls_side)
		return tls_write(r->tls, p, n);
	put = send(r->fd[1 - d], p, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	return put < 0 ? -errno : put;
}

/* EOF to pass on: close_notify first on the TLS side, then a TCP FIN. */
static int relay_tls_half_close(struct relay *r, int d)
{
	int dst = 1 - d;

	if (dst == r->tls_side) {
		int ret = tls_shutdown(r->tls);
		if (ret < 0)
			return ret;
	}
	shutdown(r->fd[dst], SHUT_WR);
	r->dir[d].shut = true;
	return 0;
}

/* One round: write what is buffered, pass an EOF on, read more.  1 if
 * something moved, 0 if nothing could, -errno on a failed side. */
static int relay_tls_round(struct relay *r, int d, uint8_t *buf)
{
	struct relay_dir *x = &r->dir[d];
	int moved = 0;
	ssize_t n;

	if (x->buffered > x->off) {
		n = relay_tls_out(r, d, buf + x->off, x->buffered - x->off);
		if (n < 0 && n != -EAGAIN)
			return (int)n;
		if (n > 0) {
			x->off += (uint32_t)n;
			r->bytes[d] += (uint64_t)n;
			moved = 1;
			if (x->off == x->buffered)
				x->off = x->buffered = 0;
		}
	}
	if (x->eof && x->buffered == 0 && !x->shut) {
		n = relay_tls_half_close(r, d);
		if (n < 0 && n != -EAGAIN)
			return (int)n;
		moved |= n == 0;
	}
	if (!x->eof && x->buffered < RELAY_TLS_BUF) {
		n = relay_tls_in(r, d, buf + x->buffered, RELAY_TLS_BUF - x->buffered);
		if (n < 0 && n != -EAGAIN)
			return (int)n;
		if (n == 0)
			x->eof = true;
		if (n > 0)
			x->buffered += (uint32_t)n;
		moved |= n >= 0;
	}
	return moved;
}

int relay_tls_pump(struct relay *r, int d)
{
	uint8_t *buf = r->buf + (size_t)d * RELAY_TLS_BUF;

	for (int i = 0; i < RELAY_TLS_ROUNDS; i++) {
		int ret = relay_tls_round(r, d, buf);
		if (ret <= 0)
			return ret;
	}
	return 0;
}

int relay_tls_update(struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		const struct relay_dir *in = &r->dir[i], *out = &r->dir[1 - i];
		uint32_t ev = 0;
		int ret;

		if (!in->eof && in->buffered < RELAY_TLS_BUF)
			ev |= LOOP_IN;
		if (out->buffered > out->off || (out->eof && !out->shut))
			ev |= LOOP_OUT;
		if (i == r->tls_side && tls_wants_write(r->tls))
			ev |= LOOP_OUT;
		if ((ret = loop_mod(r->loop, r->fd[i], ev)) < 0)
			return ret;
	}
	/* Bytes decrypted but not read: no event would say so. */
	if (!r->dir[r->tls_side].eof && r->dir[r->tls_side].buffered < RELAY_TLS_BUF && tls_pending(r->tls))
		loop_kick(r->loop, r->fd[r->tls_side]);
	return 0;
}

int relay_start_tls(struct relay *r, struct loop *l, int a, int b, int tls_side, struct ssl_st *ssl,
		    relay_done_fn done, void *arg)
{
	int ret;

	*r = (struct relay){ .loop = l, .fd = { a, b }, .done = done, .arg = arg, .tls_side = tls_side };
	for (int i = 0; i < 2; i++)
		r->dir[i].pipe_r = r->dir[i].pipe_w = -1;
	r->buf = malloc(2 * (size_t)RELAY_TLS_BUF);
	if (!r->buf)
		return -ENOMEM;
	r->tls = ssl; /* the event handler (relay.c) takes this variant's steps */
	if ((ret = relay_add_fds(r)) < 0) {
		r->tls = NULL;
		free(r->buf);
		r->buf = NULL;
		return ret;
	}
	r->active = true;
	loop_kick(l, r->fd[tls_side]); /* the SSL may hold bytes already */
	return 0;
}
