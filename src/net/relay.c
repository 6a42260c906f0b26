#include "net/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"
#include "net/sock.h"
#include "net/tls.h"

#define RELAY_CHUNK (1024 * 1024)
#define RELAY_PIPE_SIZE (1024 * 1024)
#define RELAY_ROUNDS 8 /* splices per direction per wakeup: bounded work */
#define RELAY_SPARES 16
/* Below this a read is a message, not a stream: recv() and send() move it
 * for less than two splices (a small segment sits in its skb's head, which
 * splice copies into a page of its own anyway); a read that fills it
 * switches the direction to splicing until a short one. */
#define RELAY_SMALL (16 * 1024)

static void relay_event(struct loop *l, int fd, uint32_t events, void *arg);

/* A direction holds a pipe only while bytes sit in it: an idle connection
 * costs no pipe (4 fds fewer per relay, which is what bounds how many
 * connections a process can hold), and a short flow takes a spare pipe
 * instead of paying pipe2() and close().  Empty pipes wait here while
 * any relay runs (none is kept by an idle process).  Each thread's loop
 * keeps its own. */
static __thread struct {
	int r, w;
} relay_spares[RELAY_SPARES];
static __thread int relay_n_spares;
static __thread unsigned relay_n_active;

static int relay_pipe_get(struct relay_dir *d)
{
	int p[2];

	if (relay_n_spares > 0) {
		relay_n_spares--;
		d->pipe_r = relay_spares[relay_n_spares].r;
		d->pipe_w = relay_spares[relay_n_spares].w;
		return 0;
	}
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	/* A bigger pipe means fewer wakeups on bulk transfers; best effort. */
	fcntl(p[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
	d->pipe_r = p[0];
	d->pipe_w = p[1];
	return 0;
}

/* Gives d's pipe back: to the spares if it is empty, else closed. */
static void relay_pipe_put(struct relay_dir *d)
{
	if (d->pipe_r < 0)
		return;
	if (!d->buffered && relay_n_active && relay_n_spares < RELAY_SPARES) {
		relay_spares[relay_n_spares].r = d->pipe_r;
		relay_spares[relay_n_spares].w = d->pipe_w;
		relay_n_spares++;
	} else {
		close(d->pipe_r);
		close(d->pipe_w);
	}
	d->pipe_r = d->pipe_w = -1;
	d->buffered = 0;
}

int relay_add_fds(struct relay *r)
{
	int ret = loop_add(r->loop, r->fd[0], LOOP_IN, relay_event, r);

	/* Until both directions end cleanly, a close is a reset: if this
	 * process dies, both peers hear it instead of a clean-looking EOF. */
	sock_linger_rst(r->fd[0]);
	sock_linger_rst(r->fd[1]);

	if (ret < 0)
		return ret;
	if ((ret = loop_add(r->loop, r->fd[1], LOOP_IN, relay_event, r)) < 0)
		loop_del(r->loop, r->fd[0]);
	return ret;
}

int relay_start(struct relay *r, struct loop *l, int a, int b, relay_done_fn done, void *arg)
{
	int ret;

	r->loop = l;
	r->fd[0] = a;
	r->fd[1] = b;
	r->bytes[0] = r->bytes[1] = 0;
	r->done = done;
	r->arg = arg;
	r->tls = NULL;
	r->buf = NULL;
	for (int i = 0; i < 2; i++)
		r->dir[i] = (struct relay_dir){ .pipe_r = -1, .pipe_w = -1 };
	if ((ret = relay_add_fds(r)) < 0)
		return ret;
	r->active = true;
	relay_n_active++;
	return 0;
}

static void relay_spares_free(void)
{
	while (relay_n_spares > 0) {
		relay_n_spares--;
		close(relay_spares[relay_n_spares].r);
		close(relay_spares[relay_n_spares].w);
	}
}

static void relay_shut(struct relay *r, bool rst, int keep)
{
	r->active = false;
	if (!r->tls)
		relay_n_active--; /* only splice relays are counted (and hold pipes) */
	for (int i = 0; i < 2; i++) {
		loop_del(r->loop, r->fd[i]);
		if (i != keep) {
			if (rst)
				sock_linger_rst(r->fd[i]);
			close(r->fd[i]);
		}
		relay_pipe_put(&r->dir[i]);
		r->fd[i] = -1;
	}
	tls_free(r->tls);
	r->tls = NULL;
	free(r->buf);
	r->buf = NULL;
	if (!relay_n_active)
		relay_spares_free();
}

void relay_close(struct relay *r, bool rst)
{
	if (r->active)
		relay_shut(r, rst, -1);
}

int relay_release(struct relay *r, int side)
{
	int fd = r->fd[side];

	if (!r->active)
		return -1;
	relay_shut(r, false, side);
	return fd;
}

/* Moves what it can from fd[d] to fd[1 - d]; 0 or -errno on a failed side.
 * A short splice means the source is empty or the destination full: stop
 * there rather than pay a syscall for the EAGAIN (level-triggered epoll
 * wakes us again if there is more). */
/* Moves a message with recv() and send(); what dst does not take waits in
 * the pipe.  1: go on (a full read), 0: done for now, or -errno. */
static int relay_small(struct relay *r, int d, int src, int dst)
{
	struct relay_dir *x = &r->dir[d];
	uint8_t buf[RELAY_SMALL];
	ssize_t n = recv(src, buf, sizeof(buf), MSG_DONTWAIT), w;
	int ret;

	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	if (n == 0) {
		x->eof = true;
		return 0;
	}
	w = send(dst, buf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (w < 0 && errno != EAGAIN)
		return -errno;
	w = MAX(w, 0);
	r->bytes[d] += (uint64_t)w;
	if (w < n) { /* dst is full: the rest waits in an (empty, so roomy) pipe */
		if (x->pipe_r < 0 && (ret = relay_pipe_get(x)) < 0)
			return ret;
		if (write(x->pipe_w, buf + w, (size_t)(n - w)) != n - w)
			return -EIO;
		x->buffered += (uint32_t)(n - w);
		return 0;
	}
	x->bulk = n == RELAY_SMALL;
	return x->bulk;
}

static int relay_pump(struct relay *r, int d)
{
	struct relay_dir *x = &r->dir[d];
	int src = r->fd[d], dst = r->fd[1 - d];
	bool drained = false;
	ssize_t n;
	int ret = 0;

	for (int i = 0; i < RELAY_ROUNDS && !ret; i++) {
		if (x->buffered) {
			n = splice(x->pipe_r, NULL, dst, NULL, x->buffered, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0) {
				ret = errno == EAGAIN ? 0 : -errno;
				break;
			}
			x->buffered -= (uint32_t)n;
			r->bytes[d] += (uint64_t)n;
			if (x->buffered || drained)
				break;
			continue;
		}
		if (x->eof)
			break;
		if (!x->bulk) {
			ret = relay_small(r, d, src, dst);
			if (ret <= 0)
				break;
			ret = 0;
			continue; /* a full read: splice the rest */
		}
		if (x->pipe_r < 0 && (ret = relay_pipe_get(x)) < 0)
			break;
		n = splice(src, NULL, x->pipe_w, NULL, RELAY_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0) {
			ret = errno == EAGAIN ? 0 : -errno;
			break;
		}
		if (n == 0)
			x->eof = true;
		drained = n < RELAY_CHUNK;
		x->bulk = n >= RELAY_SMALL;
		x->buffered += (uint32_t)n;
	}
	/* An EOF read (perhaps in the last round) travels now: nothing else
	 * would wake this direction again. */
	if (!ret && x->eof && !x->buffered && !x->shut) {
		shutdown(dst, SHUT_WR);
		x->shut = true;
	}
	if (!x->buffered)
		relay_pipe_put(x);
	return ret;
}

static bool relay_dir_done(const struct relay_dir *x)
{
	return x->eof && !x->buffered && x->shut;
}

static int relay_update(struct relay *r)
{
	for (int i = 0; i < 2; i++) {
		uint32_t ev = 0;
		if (!r->dir[i].eof && !r->dir[i].buffered)
			ev |= LOOP_IN;
		if (r->dir[1 - i].buffered)
			ev |= LOOP_OUT;
		int ret = loop_mod(r->loop, r->fd[i], ev);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Both variants: splice through pipes, or a copy through the TLS one's
 * buffers (relay_tls.c); only the pump and the interest differ. */
static void relay_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct relay *r = arg;
	int (*pump)(struct relay *, int) = r->tls ? relay_tls_pump : relay_pump;
	int side = fd == r->fd[0] ? 0 : 1;
	int err = 0;

	(void)l;
	if (events & EPOLLERR)
		err = sock_connect_result(fd);
	if (!err && (events & EPOLLHUP) && r->dir[side].eof && !relay_dir_done(&r->dir[1 - side]))
		err = -ECONNRESET; /* peer gone both ways while we still owe it bytes */
	/* Splicing, only what the event is about: reading fd (its direction),
	 * or writing to it what waits in the other direction's pipe; the other
	 * socket has its own events (a request/response exchange: no splice
	 * only to hear EAGAIN).  The TLS relay pumps both: decrypted bytes
	 * wait in the SSL, announced by kicks. */
	if (!err && (r->tls || (events & LOOP_IN)))
		err = pump(r, r->tls ? 0 : side);
	if (!err && (r->tls || (events & LOOP_OUT)))
		err = pump(r, r->tls ? 1 : 1 - side);
	if (!err && relay_dir_done(&r->dir[0]) && relay_dir_done(&r->dir[1])) {
		sock_linger_default(r->fd[0]);
		sock_linger_default(r->fd[1]);
		r->done(r, 0, r->arg);
		return;
	}
	if (!err)
		err = r->tls ? relay_tls_update(r) : relay_update(r);
	if (err)
		r->done(r, err, r->arg); /* last use of r here: the callee may free it */
}
