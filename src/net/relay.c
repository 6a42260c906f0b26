#include "net/relay.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/sock.h"
#include "net/tls.h"

#define RELAY_CHUNK (256 * 1024)
#define RELAY_PIPE_SIZE (256 * 1024)
#define RELAY_ROUNDS 8 /* splices per direction per wakeup: bounded work */

static void relay_event(struct loop *l, int fd, uint32_t events, void *arg);

static int relay_pipe(struct relay_dir *d)
{
	int p[2];

	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
		return -errno;
	/* A bigger pipe means fewer wakeups on bulk transfers; best effort. */
	fcntl(p[1], F_SETPIPE_SZ, RELAY_PIPE_SIZE);
	d->pipe_r = p[0];
	d->pipe_w = p[1];
	d->buffered = 0;
	d->eof = d->shut = false;
	return 0;
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
	r->dir[0].pipe_r = r->dir[0].pipe_w = r->dir[1].pipe_r = r->dir[1].pipe_w = -1;
	if ((ret = relay_pipe(&r->dir[0])) < 0 || (ret = relay_pipe(&r->dir[1])) < 0)
		goto out;
	if ((ret = loop_add(l, a, LOOP_IN, relay_event, r)) < 0)
		goto out;
	if ((ret = loop_add(l, b, LOOP_IN, relay_event, r)) < 0) {
		loop_del(l, a);
		goto out;
	}
	r->active = true;
	return 0;
out:
	for (int i = 0; i < 2; i++) {
		if (r->dir[i].pipe_r >= 0)
			close(r->dir[i].pipe_r);
		if (r->dir[i].pipe_w >= 0)
			close(r->dir[i].pipe_w);
		r->dir[i].pipe_r = r->dir[i].pipe_w = -1;
	}
	return ret;
}

static void relay_shut(struct relay *r, bool rst, int keep)
{
	r->active = false;
	for (int i = 0; i < 2; i++) {
		loop_del(r->loop, r->fd[i]);
		if (i != keep) {
			if (rst)
				sock_linger_rst(r->fd[i]);
			close(r->fd[i]);
		}
		if (r->dir[i].pipe_r >= 0) {
			close(r->dir[i].pipe_r);
			close(r->dir[i].pipe_w);
		}
		r->fd[i] = -1;
	}
	tls_free(r->tls);
	r->tls = NULL;
	free(r->buf);
	r->buf = NULL;
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

/* Moves what it can from fd[d] to fd[1 - d]; 0 or -errno on a failed side. */
static int relay_pump(struct relay *r, int d)
{
	struct relay_dir *x = &r->dir[d];
	int src = r->fd[d], dst = r->fd[1 - d];

	for (int i = 0; i < RELAY_ROUNDS; i++) {
		ssize_t n;
		if (x->buffered) {
			n = splice(x->pipe_r, NULL, dst, NULL, x->buffered,
				   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
			if (n < 0)
				return errno == EAGAIN ? 0 : -errno;
			x->buffered -= (uint32_t)n;
			r->bytes[d] += (uint64_t)n;
			continue;
		}
		if (x->eof) {
			if (!x->shut) {
				shutdown(dst, SHUT_WR);
				x->shut = true;
			}
			return 0;
		}
		n = splice(src, NULL, x->pipe_w, NULL, RELAY_CHUNK, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n < 0)
			return errno == EAGAIN ? 0 : -errno;
		if (n == 0)
			x->eof = true;
		x->buffered += (uint32_t)n;
	}
	/* An EOF seen in the last round must still travel now: nothing else
	 * would wake this direction again. */
	if (x->eof && !x->buffered && !x->shut) {
		shutdown(dst, SHUT_WR);
		x->shut = true;
	}
	return 0;
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

static void relay_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct relay *r = arg;
	int side = fd == r->fd[0] ? 0 : 1;
	int err = 0;

	(void)l;
	if (events & EPOLLERR)
		err = sock_connect_result(fd);
	if (!err && (events & EPOLLHUP) && r->dir[side].eof && !relay_dir_done(&r->dir[1 - side]))
		err = -ECONNRESET; /* peer gone both ways while we still owe it bytes */
	if (!err)
		err = relay_pump(r, 0);
	if (!err)
		err = relay_pump(r, 1);
	if (!err && relay_dir_done(&r->dir[0]) && relay_dir_done(&r->dir[1])) {
		r->done(r, 0, r->arg);
		return;
	}
	if (!err)
		err = relay_update(r);
	if (err)
		r->done(r, err, r->arg); /* last use of r here: the callee may free it */
}
