/* DNS over TCP, one query per connection. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/dnsmsg.h"
#include "dns/dnstcp.h"
#include "net/sock.h"

enum dnstcp_state { DT_CONNECTING, DT_SENDING, DT_READING };

struct dnstcp {
	struct loop *l;
	int fd;
	enum dnstcp_state state;
	struct loop_timer timer;
	dnstcp_fn fn;
	void *arg;
	uint8_t *out; /* length + query */
	size_t outlen, outoff;
	uint8_t lenbuf[2];
	size_t lenoff;
	uint8_t *in;  /* the answer, sized by its announced length */
	size_t inlen, inoff;
};

static void dnstcp_free(struct dnstcp *t)
{
	loop_timer_cancel(t->l, &t->timer);
	loop_close(t->l, &t->fd);
	free(t->out);
	free(t->in);
	free(t);
}

void dnstcp_cancel(struct dnstcp *t)
{
	if (t)
		dnstcp_free(t);
}

static void dnstcp_done(struct dnstcp *t, int err)
{
	t->fn(t->arg, err, err ? NULL : t->in, err ? 0 : t->inlen);
	dnstcp_free(t);
}

static void dnstcp_timeout(struct loop *l, struct loop_timer *tm)
{
	(void)l;
	dnstcp_done(tm->arg, -ETIMEDOUT);
}

/* Reads what is there; 1 when the answer is complete, 0 for more, -errno. */
static int dnstcp_read(struct dnstcp *t)
{
	ssize_t n;

	while (t->lenoff < 2) {
		n = recv(t->fd, t->lenbuf + t->lenoff, 2 - t->lenoff, 0);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : errno == EAGAIN ? 0 : -errno;
		t->lenoff += (size_t)n;
		if (t->lenoff == 2) {
			t->inlen = (size_t)t->lenbuf[0] << 8 | t->lenbuf[1];
			if (t->inlen < DNS_HDR_LEN)
				return -EBADMSG;
			if (!(t->in = malloc(t->inlen)))
				return -ENOMEM;
		}
	}
	while (t->inoff < t->inlen) {
		n = recv(t->fd, t->in + t->inoff, t->inlen - t->inoff, 0);
		if (n <= 0)
			return n == 0 ? -ECONNRESET : errno == EAGAIN ? 0 : -errno;
		t->inoff += (size_t)n;
	}
	return 1;
}

static void dnstcp_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct dnstcp *t = arg;
	int ret = 0;

	(void)fd;
	if (t->state == DT_CONNECTING) {
		if ((ret = sock_connect_result(t->fd)) < 0)
			goto out;
		t->state = DT_SENDING;
	}
	if (t->state == DT_SENDING) {
		ssize_t n = send(t->fd, t->out + t->outoff, t->outlen - t->outoff, MSG_NOSIGNAL);
		if (n < 0) {
			ret = errno == EAGAIN ? 0 : -errno;
			goto out;
		}
		t->outoff += (size_t)n;
		if (t->outoff < t->outlen)
			return;
		t->state = DT_READING;
		ret = loop_mod(l, t->fd, LOOP_IN);
		goto out;
	}
	if (events & LOOP_IN)
		ret = dnstcp_read(t);
out:
	if (ret < 0)
		dnstcp_done(t, ret);
	else if (ret == 1)
		dnstcp_done(t, 0);
}

struct dnstcp *dnstcp_start(struct loop *l, uint32_t addr, uint16_t port, uint8_t tos, const uint8_t *q,
			    size_t qlen, uint32_t timeout_ms, dnstcp_fn fn, void *arg)
{
	struct dnstcp *t;
	int fd;

	if (qlen > DNS_MSG_MAX || qlen < DNS_HDR_LEN) {
		errno = EINVAL;
		return NULL;
	}
	if (!(t = calloc(1, sizeof(*t))) || !(t->out = malloc(qlen + 2))) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	t->out[0] = (uint8_t)(qlen >> 8);
	t->out[1] = (uint8_t)qlen;
	memcpy(t->out + 2, q, qlen);
	t->outlen = qlen + 2;
	t->l = l;
	t->fn = fn;
	t->arg = arg;
	t->fd = fd = sock_connect_tcp(addr, port, tos);
	if (fd < 0 || loop_add(l, fd, LOOP_OUT, dnstcp_event, t) < 0) {
		int e = fd < 0 ? -fd : ENOMEM;
		if (fd >= 0)
			close(fd);
		t->fd = -1;
		dnstcp_free(t);
		errno = e;
		return NULL;
	}
	loop_timer_arm(l, &t->timer, timeout_ms, dnstcp_timeout, t);
	return t;
}
