/* The daemon's control socket: a unix stream socket that serves root and
 * the user who asked for the connection (SO_PEERCRED).  A client sends one
 * request line and reads lines back: "progress ...", then "ok ..." or
 * "error ..."; `status` answers with one JSON document.
 *
 * Hostile clients: anyone else is answered and closed at accept; a client
 * has CTL_TIMEOUT_MS for its whole request (a byte a second does not
 * extend it) and CTL_LINE_MAX bytes; at most CTL_CLIENTS_MAX are served at
 * once, and a new one evicts the oldest idle one, so idle connections
 * cannot lock root or the user out. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/json.h"
#include "common/log.h"
#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "net/tls.h"

#define CTL_CLIENTS_MAX 64
#define CTL_TIMEOUT_MS 5000

struct ctl_client {
	struct daemon *d;
	int fd;
	char in[CTL_LINE_MAX + 1];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	bool close_after; /* close once the output is written */
	bool waiting;     /* a connect waiting for its outcome */
	uid_t uid;
	struct loop_timer timer;
	struct ctl_client *prev, *next; /* clients, oldest first */
};

static int n_clients;
static struct ctl_client *clients_head, *clients_tail;

static void ctl_client_free(struct ctl_client *c)
{
	struct daemon *d = c->d;

	if (d->waiter == c)
		d->waiter = NULL;
	loop_timer_cancel(d->loop, &c->timer);
	loop_del(d->loop, c->fd);
	close(c->fd);
	free(c->out);
	if (c->prev)
		c->prev->next = c->next;
	else
		clients_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		clients_tail = c->prev;
	free(c);
	n_clients--;
}

/* Room for one more: the oldest client not waiting for a connect goes. */
static bool ctl_make_room(void)
{
	struct ctl_client *c = clients_head;

	if (n_clients < CTL_CLIENTS_MAX)
		return true;
	while (c && c->waiting)
		c = c->next;
	if (!c)
		return false;
	log_debug("%d control clients: closing the oldest idle one", n_clients);
	ctl_client_free(c);
	return true;
}

static void ctl_flush(struct ctl_client *c)
{
	while (c->outoff < c->outlen) {
		ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EAGAIN) {
				loop_mod(c->d->loop, c->fd, LOOP_OUT);
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
	loop_mod(c->d->loop, c->fd, c->waiting ? 0 : LOOP_IN);
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

void ctl_progress(struct daemon *d, const char *line)
{
	log_info("%s", line);
	if (!d->waiter)
		return;
	ctl_line(d->waiter, "progress", line);
	ctl_flush(d->waiter);
}

void ctl_reply_connect(struct daemon *d, bool ok, const char *msg)
{
	struct ctl_client *c = d->waiter;

	if (!c)
		return;
	d->waiter = NULL;
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
		status_write_text(c->d, fp);
	else
		status_write_json(c->d, fp);
	fclose(fp);
	ctl_write(c, buf, len);
	free(buf);
}

static void ctl_do_connect(struct ctl_client *c, const struct ctl_req *req)
{
	struct daemon *d = c->d;
	char text[320], err[160], ip[16];
	struct token_file tf;

	if (d->state != D_IDLE) {
		snprintf(text, sizeof(text), "already %s to %s:%u", d->state == D_CONNECTED ? "connected" : "connecting",
			 ip4_str(d->mgr_addr, ip), d->mgr_port);
		ctl_line(c, d->state == D_CONNECTED ? "ok" : "error", text);
		return;
	}
	snprintf(text, sizeof(text), "token=%s\n", req->token_hex);
	if (auth_token_file_parse(text, strlen(text), &tf, err, sizeof(err)) < 0) {
		ctl_line(c, "error", err);
		return;
	}
	explicit_bzero(text, sizeof(text));
	d->insecure = req->insecure;
	memcpy(d->fingerprint, req->fingerprint, sizeof(d->fingerprint));
	if (!d->insecure && !(d->tls_ctx = tls_client_ctx(req->fingerprint, err, sizeof(err)))) {
		auth_token_wipe(&tf.token);
		ctl_line(c, "error", err);
		return;
	}
	d->token = tf.token;
	auth_token_wipe(&tf.token);
	d->mgr_addr = req->mgr_addr;
	d->mgr_port = req->mgr_port;
	d->owner = req->has_owner ? (uid_t)req->owner : c->uid;
	memcpy(d->dns_opts.ns, req->ns, sizeof(d->dns_opts.ns));
	memcpy(d->dns_opts.also_proxy, req->also_proxy, sizeof(d->dns_opts.also_proxy));
	memcpy(d->dns_opts.never_proxy, req->never_proxy, sizeof(d->dns_opts.never_proxy));
	d->dns_opts.off = req->no_dns;
	d->loop_guard = !req->no_loop_guard;
	d->tos_override = req->has_tos ? req->tos : -1;
	guard_init(&d->guard, d->loop_guard, 0);
	d->state = D_CONNECTING;
	d->waiter = c;
	c->waiting = true;
	loop_timer_cancel(d->loop, &c->timer);
	if (tunnel_start(d) < 0)
		daemon_failed(d, "manager unreachable: %s", d->last_error);
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
		loop_stop(c->d->loop);
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
	loop_mod(c->d->loop, fd, 0);
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
	struct daemon *d = arg;

	(void)events;
	for (int i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		struct ctl_client *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0 ||
		    (cred.uid != 0 && cred.uid != d->owner)) {
			static const char deny[] = "error permission denied: subway serves root and the user who connected\n";
			send(fd, deny, sizeof(deny) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		if (!ctl_make_room() || !(c = calloc(1, sizeof(*c)))) {
			static const char busy[] = "error busy: too many control clients\n";
			send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
			close(fd);
			continue;
		}
		c->d = d;
		c->fd = fd;
		c->uid = cred.uid;
		if (loop_add(l, fd, LOOP_IN, ctl_client_event, c) < 0) {
			close(fd);
			free(c);
			continue;
		}
		n_clients++;
		c->prev = clients_tail;
		if (clients_tail)
			clients_tail->next = c;
		else
			clients_head = c;
		clients_tail = c;
		loop_timer_arm(l, &c->timer, CTL_TIMEOUT_MS, ctl_client_timeout, c);
	}
}

int ctl_listen(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, ret;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", d->sock_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(d->sock_path);
	/* Permission is checked per connection with SO_PEERCRED. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(d->sock_path, 0666) < 0 ||
	    listen(fd, 64) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	d->ctl_fd = fd;
	return loop_add(d->loop, fd, LOOP_IN, ctl_accept_event, d);
}
