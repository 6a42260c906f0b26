/* UDP over a stream (dgbridge.h). */
#include "net/dgbridge.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

int dgframe_take(uint8_t *buf, size_t *len, void (*fn)(void *arg, const uint8_t *p, size_t n), void *arg)
{
	size_t off = 0;
	int k = 0;

	while (*len - off >= 2) {
		size_t n = (size_t)buf[off] << 8 | buf[off + 1];
		if (*len - off - 2 < n)
			break;
		fn(arg, buf + off + 2, n);
		off += 2 + n;
		k++;
	}
	memmove(buf, buf + off, *len - off);
	*len -= off;
	return k;
}

static void dgb_watch(struct dgbridge *b)
{
	loop_mod(b->loop, b->sfd, LOOP_IN | (outbuf_pending(&b->out) ? LOOP_OUT : 0));
}

static void dgb_send_udp(void *arg, const uint8_t *p, size_t n)
{
	struct dgbridge *b = arg;
	ssize_t r = b->has_peer ? sendto(b->udp, p, n, MSG_DONTWAIT, (const struct sockaddr *)&b->peer,
					   sizeof(b->peer))
				: send(b->udp, p, n, MSG_DONTWAIT);

	if (r < 0)
		b->dropped++; /* a full buffer, a refusing port: UDP's own answer */
	else
		b->dgrams[1]++;
	b->last_ms = loop_now_ms(b->loop);
}

static void dgb_end(struct dgbridge *b)
{
	loop_del(b->loop, b->sfd);
	b->closed(b, b->arg); /* may fini or free b */
}

static void dgb_on_stream(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct dgbridge *b = arg;

	(void)l;
	if ((events & LOOP_OUT) && outbuf_flush(&b->out, fd) < 0) {
		dgb_end(b);
		return;
	}
	if (events & (LOOP_IN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = recv(fd, b->rx + b->rx_len, DGB_FRAME - b->rx_len, MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			dgb_end(b);
			return;
		}
		if (n > 0) {
			b->rx_len += (size_t)n;
			dgframe_take(b->rx, &b->rx_len, dgb_send_udp, b);
			loop_kick(b->loop, fd); /* more may wait: at the next wakeup */
		}
	}
	dgb_watch(b);
}

static void dgb_on_udp(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct dgbridge *b = arg;
	static uint8_t dg[DGB_MAX];

	(void)l;
	(void)events;
	for (int i = 0; i < DGB_READS; i++) {
		ssize_t n = recv(fd, dg, sizeof(dg), MSG_DONTWAIT);
		if (n < 0)
			return; /* EAGAIN, or an ICMP error from the port: nothing to carry */
		dgbridge_to_stream(b, dg, (size_t)n);
	}
	loop_kick(b->loop, fd);
}

void dgbridge_to_stream(struct dgbridge *b, const void *p, size_t n)
{
	uint8_t hdr[2] = { (uint8_t)(n >> 8), (uint8_t)n };
	struct iovec iov[2] = { { hdr, 2 }, { (void *)p, n } };
	ssize_t w;
	size_t done;

	b->last_ms = loop_now_ms(b->loop);
	if (n > DGB_MAX || outbuf_pending(&b->out)) {
		b->dropped++;
		return;
	}
	w = writev(b->sfd, iov, 2);
	if (w < 0) {
		b->dropped++; /* nothing went: the datagram is lost whole, the framing intact */
		return;
	}
	done = (size_t)w;
	b->dgrams[0]++;
	if (done < 2 + n) { /* cut: the rest must follow, or the framing is lost */
		if (done < 2)
			outbuf_add(&b->out, hdr + done, 2 - done, 0);
		outbuf_add(&b->out, (const uint8_t *)p + (done > 2 ? done - 2 : 0), n - (done > 2 ? done - 2 : 0),
			   0);
		dgb_watch(b);
	}
}

int dgbridge_init(struct dgbridge *b, struct loop *l, int sfd, int udp, bool own_udp,
		  const struct sockaddr_in *peer, dgbridge_fn closed, void *arg)
{
	int r;

	*b = (struct dgbridge){ .loop = l, .sfd = sfd, .udp = udp, .own_udp = own_udp, .closed = closed,
				.arg = arg, .last_ms = loop_now_ms(l) };
	if (peer) {
		b->has_peer = true;
		b->peer = *peer;
	}
	if (!(b->rx = malloc(DGB_FRAME)))
		return -ENOMEM;
	if ((r = loop_add(l, sfd, LOOP_IN, dgb_on_stream, b)) < 0)
		goto fail;
	if (own_udp && (r = loop_add(l, udp, LOOP_IN, dgb_on_udp, b)) < 0) {
		loop_del(l, sfd);
		goto fail;
	}
	return 0;
fail:
	free(b->rx);
	b->rx = NULL;
	return r;
}

void dgbridge_fini(struct dgbridge *b)
{
	if (!b->rx)
		return;
	loop_del(b->loop, b->sfd);
	close(b->sfd);
	if (b->own_udp) {
		loop_del(b->loop, b->udp);
		close(b->udp);
	}
	outbuf_fini(&b->out);
	free(b->rx);
	b->rx = NULL;
}
