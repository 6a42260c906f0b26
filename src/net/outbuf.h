/* What a non-blocking socket has not taken yet: bytes queued for a
 * client (the control socket, DNS over TCP), sent as the socket allows.
 * The struct owns its buffer, never the fd; a zeroed struct is empty. */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct outbuf {
	uint8_t *buf;
	size_t off, len, cap; /* buf[off..len) waits to be sent */
};

/* Queues n bytes.  0; -ENOBUFS when more than max bytes would wait (max 0:
 * no cap), -ENOMEM; on failure nothing is queued. */
int outbuf_add(struct outbuf *o, const void *p, size_t n, size_t max);
/* Sends what waits (MSG_NOSIGNAL | MSG_DONTWAIT), as much as the socket
 * takes: 0 when nothing waits any more, 1 when some does (wait for the fd
 * to be writable), -errno when the peer is gone. */
int outbuf_flush(struct outbuf *o, int fd);
static inline size_t outbuf_pending(const struct outbuf *o) { return o->len - o->off; }
/* Frees the buffer; the struct is empty again. */
void outbuf_fini(struct outbuf *o);
