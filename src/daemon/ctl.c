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
#include "net/outbuf.h"
#include "daemon/daemon.h"
#include "daemon/status.h"
#include "net/listener.h"
#include "proto/ctlmsg.h"

#define CTL_OUT_MAX (1u << 20)  /* bytes waiting for a client that does not read */
#define CTL_SAID_MAX (16u << 10) /* progress lines kept for a connect that joins late */

struct ctl {
	struct daemon *d;
	struct listener ls;
	char path[108];
	struct list clients; /* oldest first */
	int n_clients;
	int n_waiting;       /* clients waiting for the connect's outcome */
	uint32_t next_token; /* of deferred answers */
	struct outbuf said;  /* "progress ..." lines of the connect under way */
};

struct ctl_client {
	struct ctl *ctl;
	int fd;
	char in[CTL_LINE_MAX + 1];
	size_t inlen;
	struct outbuf out;
	bool handled;     /* its request line is read: nothing more comes */
	bool close_after; /* close once the output is written */
	bool waiting;     /* a connect waiting for the outcome */
	bool broken;      /* its output could not be queued */
	uint32_t deferred; /* its answer comes later (ctl_answer): the token, else 0 */
	uid_t uid;
	struct loop_timer timer;
	struct list link; /* ctl->clients */
};

static struct loop *ctl_loop(const struct ctl_client *c) { return c->ctl->d->loop; }

static void ctl_client_free(struct ctl_client *c)
{
	struct ctl *ctl = c->ctl;

	if (c->waiting)
		ctl->n_waiting--;
	loop_timer_cancel(ctl_loop(c), &c->timer);
	loop_del(ctl_loop(c), c->fd);
	close(c->fd);
	outbuf_fini(&c->out);
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

/* Sends what waits; the client may be freed (done, or gone). */
static void ctl_flush(struct ctl_client *c)
{
	int r = c->broken ? -ENOMEM : outbuf_flush(&c->out, c->fd);

	if (r < 0 || (r == 0 && c->close_after)) {
		ctl_client_free(c);
		return;
	}
	loop_mod(ctl_loop(c), c->fd, r > 0 ? LOOP_OUT : c->handled ? 0 : LOOP_IN);
}

static void ctl_write(struct ctl_client *c, const void *p, size_t n)
{
	if (!c->broken && outbuf_add(&c->out, p, n, CTL_OUT_MAX) < 0)
		c->broken = true;
}

static void ctl_line(struct ctl_client *c, const char *kind, const char *text)
{
	ctl_write(c, kind, strlen(kind));
	ctl_write(c, " ", 1);
	ctl_write(c, text, strlen(text));
	ctl_write(c, "\n", 1);
}

/* A line to every connect waiting; the outcome (last) ends their wait. */
static void ctl_tell_waiters(struct ctl *ctl, const char *kind, const char *line, bool last)
{
	struct list *i, *tmp;

	list_for_each_safe(i, tmp, &ctl->clients) {
		struct ctl_client *c = list_entry(i, struct ctl_client, link);
		if (!c->waiting)
			continue;
		if (last) {
			c->waiting = false;
			ctl->n_waiting--;
			c->close_after = true;
		}
		ctl_line(c, kind, line);
		ctl_flush(c);
	}
}

void ctl_progress(struct ctl *ctl, const char *line)
{
	static const char kind[] = "progress ";

	log_info("%s", line);
	if (!ctl || !ctl->n_waiting)
		return;
	/* Kept for a connect that joins later; past the cap it misses some. */
	if (outbuf_pending(&ctl->said) + sizeof(kind) + strlen(line) <= CTL_SAID_MAX &&
	    outbuf_add(&ctl->said, kind, sizeof(kind) - 1, CTL_SAID_MAX) == 0 &&
	    outbuf_add(&ctl->said, line, strlen(line), CTL_SAID_MAX) == 0)
		outbuf_add(&ctl->said, "\n", 1, CTL_SAID_MAX);
	ctl_tell_waiters(ctl, "progress", line, false);
}

void ctl_reply_connect(struct ctl *ctl, bool ok, const char *msg)
{
	if (!ctl)
		return;
	outbuf_fini(&ctl->said);
	ctl_tell_waiters(ctl, ok ? "ok" : "error", msg, true);
}

static void ctl_do_status(struct ctl_client *c, bool text)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&buf, &len);

	if (!fp) {
		ctl_line(c, "error", "out of memory");
		return;
	}
	if (text)
		status_write_text(c->ctl->d, fp);
	else
		status_write_json(c->ctl->d, fp);
	fclose(fp);
	ctl_write(c, buf, len);
	free(buf);
}

/* Every connect while one is under way waits for the same outcome, and
 * first hears what the others heard. */
static void ctl_do_connect(struct ctl_client *c, const struct ctl_req *req)
{
	struct ctl *ctl = c->ctl;
	char msg[1024];
	int r = daemon_connect(ctl->d, req, c->uid, msg, sizeof(msg));

	if (r != 0) {
		ctl_line(c, r > 0 ? "ok" : "error", msg);
		return;
	}
	c->waiting = true;
	c->close_after = false;
	ctl->n_waiting++;
	loop_timer_cancel(ctl_loop(c), &c->timer);
	if (outbuf_pending(&ctl->said))
		ctl_write(c, ctl->said.buf + ctl->said.off, outbuf_pending(&ctl->said));
}

/* A request the manager answers (intercept, list, env): the client waits
 * with a token, which daemon_request passes on. */
static void ctl_do_request(struct ctl_client *c, const struct ctl_req *req)
{
	struct ctl *ctl = c->ctl;
	uint32_t token = ++ctl->next_token ? ctl->next_token : ++ctl->next_token;
	char msg[1024];
	int r = daemon_request(ctl->d, req, token, msg, sizeof(msg));

	if (r != 0) {
		ctl_line(c, r > 0 ? "ok" : "error", msg);
		return;
	}
	c->deferred = token;
	c->close_after = false;
	loop_timer_cancel(ctl_loop(c), &c->timer); /* the daemon bounds the wait */
}

void ctl_answer(struct ctl *ctl, uint32_t token, bool ok, const char *text)
{
	struct list *i;

	if (!ctl || !token)
		return;
	for (i = ctl->clients.next; i != &ctl->clients; i = i->next) {
		struct ctl_client *c = list_entry(i, struct ctl_client, link);
		if (c->deferred != token)
			continue;
		c->deferred = 0;
		c->close_after = true;
		ctl_line(c, ok ? "ok" : "error", text);
		ctl_flush(c);
		return;
	}
}

static void ctl_handle(struct ctl_client *c, const char *line, size_t len)
{
	struct ctl_req req;
	char err[200];

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
		ctl_do_connect(c, &req);
		break;
	case CTL_INTERCEPT:
	case CTL_LEAVE:
	case CTL_LIST:
	case CTL_ENV:
		ctl_do_request(c, &req);
		break;
	}
	explicit_bzero(&req, sizeof(req));
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
	if (c->handled) {
		/* one request a connection: readable now means gone (or rude) */
		ctl_client_free(c);
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
	c->handled = true;
	if (!nl) {
		c->close_after = true;
		ctl_line(c, "error", "request too long");
	} else {
		ctl_handle(c, c->in, (size_t)(nl - c->in));
	}
	explicit_bzero(c->in, c->inlen); /* a connect's token */
	ctl_flush(c);
}

static void ctl_client_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	ctl_client_free(t->arg);
}

/* A new client: root or the connecting user, and room for it. */
static void ctl_on_accept(void *arg, int fd)
{
	struct ctl *ctl = arg;
	struct loop *l = ctl->d->loop;
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	struct ctl_client *c;
	const char *refuse = NULL;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
	    (cred.uid != 0 && cred.uid != ctl->d->owner))
		refuse = "error permission denied: subway serves root and the user who connected\n";
	else if (!ctl_make_room(ctl) || !(c = calloc(1, sizeof(*c))))
		refuse = "error busy: too many control clients\n";
	if (refuse) {
		send(fd, refuse, strlen(refuse), MSG_NOSIGNAL | MSG_DONTWAIT);
		close(fd);
		return;
	}
	c->ctl = ctl;
	c->fd = fd;
	c->uid = cred.uid;
	if (loop_add(l, fd, LOOP_IN, ctl_client_event, c) < 0) {
		close(fd);
		free(c);
		return;
	}
	ctl->n_clients++;
	list_add_tail(&ctl->clients, &c->link);
	loop_timer_arm(l, &c->timer, CTL_TIMEOUT_MS, ctl_client_timeout, c);
}

struct ctl *ctl_new(struct daemon *d, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct ctl *ctl = calloc(1, sizeof(*ctl));
	int fd, err;

	if (!ctl)
		return NULL;
	ctl->d = d;
	list_init(&ctl->clients);
	snprintf(ctl->path, sizeof(ctl->path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	unlink(path);
	/* Permission is checked per connection with SO_PEERCRED. */
	if (fd >= 0 && (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
			listen(fd, 64) < 0)) {
		err = -errno;
		close(fd);
		fd = err;
	} else if (fd < 0) {
		fd = -errno;
	}
	if ((err = listener_init(&ctl->ls, d->loop, fd, CTL_ACCEPTS, "the control socket", ctl_on_accept, ctl)) < 0) {
		free(ctl);
		errno = -err;
		return NULL;
	}
	return ctl;
}

void ctl_free(struct ctl *ctl)
{
	if (!ctl)
		return;
	while (!list_empty(&ctl->clients))
		ctl_client_free(list_first(&ctl->clients, struct ctl_client, link));
	listener_fini(&ctl->ls);
	unlink(ctl->path);
	outbuf_fini(&ctl->said);
	free(ctl);
}
