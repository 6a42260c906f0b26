/* A framed, non-blocking connection buffer: reads tunnel frames from an fd
 * and queues frames to write to it.  Knows nothing of the event loop; it
 * only calls read/send on its fd, and the caller decides when (LOOP_IN,
 * LOOP_OUT).  The struct owns its two buffers, never the fd.
 *
 * Reading: wire_read() appends what fits in the read buffer (bounded by
 * rcap); wire_next() reports the frame at the front once it is complete;
 * wire_consume() drops it.  Frames larger than max_payload are refused
 * before any byte of their payload is buffered.
 *
 * Writing: p = wire_reserve(w, n); encode at most n bytes at p;
 * wire_commit(w, len); then wire_flush() whenever the fd is writable.
 * The queue never grows past wmax: wire_reserve() returns NULL instead,
 * and the caller drops the message (datagrams) or closes the peer.
 *
 * TLS: with w->tls set (a handshaken SSL for fd, see net/tls.h), the same
 * calls read and write through it, and the wire owns the SSL (freed by
 * wire_fini).  Decrypted bytes can wait inside the SSL where no readiness
 * event announces them: after handling frames, an owner that stopped with
 * a full buffer checks wire_more() (and kicks its fd, loop_kick). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/frame.h"

/* Default cap of the write queue (wmax): four largest frames. */
#define WIRE_WMAX_DEFAULT (4 * (size_t)FRAME_MAX)

struct ssl_st;

struct wire {
	int fd;
	struct ssl_st *tls; /* NULL: plain TCP */
	uint8_t *rbuf;
	size_t roff, rlen, rcap; /* unconsumed bytes are rbuf[roff..rlen) */
	size_t rframe;           /* length of the frame wire_next() returned, 0 if none */
	size_t max_payload;
	bool drained;            /* the last wire_read() left the socket empty: no need to read again until it is readable */
	uint8_t *wbuf;
	size_t woff, wlen, wcap; /* queued bytes are wbuf[woff..wlen) */
	size_t wmax;             /* cap of queued bytes; may be set after wire_init */
};

/* rcap must be at least FRAME_HDR_LEN + max_payload.  The write buffer is
 * allocated on first use.  0, -EINVAL or -ENOMEM. */
int wire_init(struct wire *w, int fd, size_t rcap, size_t max_payload);
/* Frees the buffers (not the fd).  Accepts a zeroed or freed wire. */
void wire_fini(struct wire *w);
/* Closes the fd too: for a connection its new owner could not take. */
void wire_drop(struct wire *w);
/* Changes the read limits (e.g. larger after authentication); keeps the
 * buffered bytes, invalidates payload pointers.  0, -EINVAL, -ENOMEM. */
int wire_set_limits(struct wire *w, size_t rcap, size_t max_payload);

/* One read() into the free space of the read buffer: bytes read (> 0),
 * 0 on EOF, -EAGAIN when nothing is there, -ENOBUFS when the buffer is
 * full (the caller has not consumed the frames in it), else -errno.
 * Invalidates payload pointers. */
int wire_read(struct wire *w);
/* 1: a complete frame is at the front; *h and *payload describe it, valid
 * until wire_consume() or wire_read().  0: more bytes are needed.
 * -EBADMSG or -EMSGSIZE (from frame_hdr_decode): the peer is broken. */
int wire_next(struct wire *w, struct frame_hdr *h, const uint8_t **payload);
/* Drops the frame wire_next() returned. */
void wire_consume(struct wire *w);
/* Bytes received but not (yet) part of a returned frame. */
size_t wire_unread(const struct wire *w);
/* For a connection that switches to raw bytes after a frame: returns the
 * unconsumed bytes in *p and marks them consumed.  *p stays valid until
 * the next wire_read, wire_set_limits or wire_fini. */
size_t wire_take_rest(struct wire *w, const uint8_t **p);

/* n bytes of space at the end of the write queue, or NULL when the queue
 * would exceed wmax (or memory is short). */
uint8_t *wire_reserve(struct wire *w, size_t n);
/* Queues n bytes (n <= what the last wire_reserve() gave). */
void wire_commit(struct wire *w, size_t n);
/* Copies a ready frame into the queue: 0, or -ENOBUFS when it is full. */
int wire_queue(struct wire *w, const void *p, size_t n);
/* Writes queued bytes: 0 when the queue is empty, 1 when bytes remain
 * (wait for LOOP_OUT), -errno on a write error (EPIPE, ECONNRESET...). */
int wire_flush(struct wire *w);
size_t wire_pending(const struct wire *w);

/* Queues the HEARTBEAT_ACK answering a HEARTBEAT's payload (a full queue
 * drops it: the peer misses one ack).  0, or -EBADMSG. */
int wire_heartbeat_ack(struct wire *w, const uint8_t *p, size_t len);

/* TLS bytes decrypted but not yet read into the buffer. */
bool wire_more(const struct wire *w);
/* Hands the SSL to a new owner (a relay); the wire forgets it. */
struct ssl_st *wire_take_tls(struct wire *w);
/* Best effort close_notify before the owner closes fd (no-op in plain TCP). */
void wire_close_notify(struct wire *w);
