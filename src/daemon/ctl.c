/* The daemon's control socket (ctl.h). */
#include "daemon/ctl.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/list.h"
#include "common/log.h"
#include "daemon/daemon.h"
#include "daemon/status.h"
#include "proto/ctlmsg.h"

struct ctl {
	struct daemon *d;
	int fd;
	char path[108];
	struct list clients; /* oldest first */
	int n_clients;
	struct ctl_client *waiter; /* a `connect` waiting for the outcome */
};

struct ctl_client {
	struct ctl *ctl;
	int fd;
	char in[CTL_LINE_MAX + 1];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	bool close_after; /* close once the output is written */
	bool waiting;     /* a connect waiting for its outcome */
	uid_t uid;
	struct loop_timer timer;
	struct list link; /* ctl->clients */
};

static struct loop *ctl_loop(const struct ctl_client *c) { return c->ctl->d->loop; }

static void ctl_client_free(struct ctl_client *c)
{
	struct ctl *ctl = c->ctl;

	if (ctl->waiter == c)
		ctl->waiter = NULL;
	loop_timer_cancel(ctl_loop(c), &c->timer);
	loop_del(ctl_loop(c), c->fd);
	close(c->fd);
	free(c->out);
	list_del(&c->link);
	free(c);
	ctl->n_clients--;
}

/* Room for one more: the oldest client not waiting for a connect goes. */
static bool ctl_make_room(struct ctl *ctl)
{
	struct list *i;

	if (ctl->n_clients < CTL_CLIENTS_MAX)
		return true;
	for (i = ctl->clients.next; i != &ctl->clients; i = i->next) {
		struct ctl_client *c = list_entry(i, struct ctl_client, link);
		if (c->waiting)
			continue;
		log_debug("%d control clients: closing the oldest idle one", ctl->n_clients);
		ctl_client_free(c);
		return true;
	}
	return false;
}

static void ctl_flush(struct ctl_client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN) {
				loop_mod(ctl_loop(c), c->fd, LOOP_OUT);
				return;
			}
			ctl_client_free(c);
			return;
		}
		c->outoff += (size_t)n;
	}
	c->outoff = c->outlen = 0;
	if (c->close_after) {
		ctl_client_free(c);
		return;
	}
	loop_mod(ctl_loop(c), c->fd, c->waiting ? 0 : LOOP_IN);
}

static void ctl_write(struct ctl_client *c, const char *s, size_t n)
{
	char *p = realloc(c->out, c->outlen + n);

	if (!p)
		return;
	memcpy(p + c->outlen, s, n);
	c->out = p;
	c->outlen += n;
}

static void ctl_line(struct ctl_client *c, const char *kind, const char *text)
{
	ctl_write(c, kind, strlen(kind));
	ctl_write(c, " ", 1);
	ctl_write(c, text, strlen(text));
	ctl_write(c, "\n", 1);
}

void ctl_progress(struct ctl *ctl, const char *line)
{
	log_info("%s", line);
	if (!ctl || !ctl->waiter)
		return;
	ctl_line(ctl->waiter, "progress", line);
	ctl_flush(ctl->waiter);
}

void ctl_reply_connect(struct ctl *ctl, bool ok, const char *msg)
{
	struct ctl_client *c = ctl ? ctl->waiter : NULL;

	if (!c)
		return;
	ctl->waiter = NULL;
	c->waiting = false;
	c->close_after = true;
	ctl_line(c, ok ? "ok" : "error", msg);
	ctl_flush(c);
}

static void ctl_do_status(struct ctl_client *c, bool text)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (!fp)
		return;
	if (text)
		status_write_text(c->ctl->d, fp);
	else
		status_write_json(c->ctl->d, fp);
	fclose(fp);
	ctl_write(c, buf, len);
	free(buf);
}

static void ctl_do_connect(struct ctl_client *c, const struct ctl_req *req)
{
	char msg[512];
	int r = daemon_connect(c->ctl->d, req, c->uid, msg, sizeof(msg));

	if (r != 0) {
		ctl_line(c, r > 0 ? "ok" : "error", msg);
		return;
	}
	c->ctl->waiter = c;
	c->waiting = true;
	loop_timer_cancel(ctl_loop(c), &c->timer);
}

static void ctl_handle(struct ctl_client *c, const char *line, size_t len)
{
	struct ctl_req req;
	char err[160];

	c->close_after = true;
	if (ctl_parse(line, len, &req, err, sizeof(err)) < 0) {
		ctl_line(c, "error", err);
		return;
	}
	switch (req.verb) {
	case CTL_STATUS:
		ctl_do_status(c, req.text);
		break;
	case CTL_QUIT:
		ctl_line(c, "ok", "disconnected, daemon stopping");
		loop_stop(ctl_loop(c));
		break;
	case CTL_CONNECT:
		c->close_after = false;
		ctl_do_connect(c, &req);
		if (!c->waiting)
			c->close_after = true;
		break;
	}
}

static void ctl_client_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct ctl_client *c = arg;
	char *nl;
	ssize_t n;

	(void)l;
	if (events & LOOP_OUT) {
		ctl_flush(c);
		return;
	}
	n = recv(fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, MSG_DONTWAIT);
	if (n <= 0) {
		if (n < 0 && errno == EAGAIN)
			return;
		ctl_client_free(c);
		return;
	}
	c->inlen += (size_t)n;
	c->in[c->inlen] = 0;
	nl = memchr(c->in, '\n', c->inlen);
	if (!nl && c->inlen < sizeof(c->in) - 1)
		return;
	loop_mod(ctl_loop(c), fd, 0);
	if (!nl) {
		c->close_after = true;
		ctl_line(c, "error", "request too long");
	} else {
		ctl_handle(c, c->in, (size_t)(nl - c->in));
	}
	ctl_flush(c);
}

static void ctl_client_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	ctl_client_free(t->arg);
}

static void ctl_accept_event(struct loop *l, int lfd, uint32_t events, void *arg)
{
	struct ctl *ctl = arg;
	uid_t owner = ctl->d->owner;

	(void)events;
	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		struct ctl_client *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
		    (cred.uid != 0 && cred.uid != owner)) {
			static const char deny[] = "error permission denied: subway serves root and the user who connected\n";
			send(fd, deny, sizeof(deny) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		if (!ctl_make_room(ctl) || !(c = calloc(1, sizeof(*c)))) {
			static const char busy[] = "error busy: too many control clients\n";
			send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c->ctl = ctl;
		c->fd = fd;
		c->uid = cred.uid;
		if (loop_add(l, fd, LOOP_IN, ctl_client_event, c) < 0) {
			close(fd);
			free(c);
			continue;
		}
		ctl->n_clients++;
		list_add_tail(&ctl->clients, &c->link);
		loop_timer_arm(l, &c->timer, CTL_TIMEOUT_MS, ctl_client_timeout, c);
	}
}

struct ctl *ctl_new(struct daemon *d, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl *ctl = calloc(1, sizeof(*ctl));
	int err;

	if (!ctl)
		return NULL;
	ctl->d = d;
	list_init(&ctl->clients);
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ctl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (ctl->fd < 0)
		goto fail;
	unlink(path);
	/* Permission is checked per connection with SO_PEERCRED. */
	if (bind(ctl->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
	    listen(ctl->fd, 64) < 0)
		goto fail;
	if ((err = loop_add(d->loop, ctl->fd, LOOP_IN, ctl_accept_event, ctl)) < 0) {
		errno = -err;
		goto fail;
	}
	return ctl;
fail:
	err = errno;
	if (ctl->fd >= 0)
		close(ctl->fd);
	free(ctl);
	errno = err;
	return NULL;
}

void ctl_free(struct ctl *ctl)
{
	if (!ctl)
		return;
	while (!list_empty(&ctl->clients))
		ctl_client_free(list_first(&ctl->clients, struct ctl_client, link));
	loop_del(ctl->d->loop, ctl->fd);
	close(ctl->fd);
	unlink(ctl->path);
	free(ctl);
}
