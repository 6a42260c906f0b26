/* The send queue of a non-blocking socket (outbuf.h). */
#include "net/outbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int outbuf_add(struct outbuf *o, const void *p, size_t n, size_t max)
{
	size_t pending = outbuf_pending(o);

	if (n == 0)
		return 0;
	if (max && (n > max || pending > max - n))
		return -ENOBUFS;
	if (o->off && o->len + n > o->cap) { /* room at the front first */
		memmove(o->buf, o->buf + o->off, pending);
		o->off = 0;
		o->len = pending;
	}
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 256;
		uint8_t *b;
		while (cap < o->len + n)
			cap *= 2;
		if (max && cap > max)
			cap = max; /* >= o->len + n: max bounds what waits */
		if (!(b = realloc(o->buf, cap)))
			return -ENOMEM;
		o->buf = b;
		o->cap = cap;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

int outbuf_flush(struct outbuf *o, int fd)
{
	while (o->off < o->len) {
		ssize_t n = send(fd, o->buf + o->off, o->len - o->off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 1 : -errno;
		o->off += (size_t)n;
	}
	o->off = o->len = 0;
	return 0;
}

void outbuf_fini(struct outbuf *o)
{
	free(o->buf);
	*o = (struct outbuf){ 0 };
}
