/* Moves bytes both ways between two connected TCP sockets with splice(2)
 * through a pipe per direction, in the event loop.  Half-close travels:
 * EOF read on one side becomes shutdown(SHUT_WR) on the other.  A reset
 * on either side is reported so the owner can reset the other side.
 *
 * The TLS variant (relay_start_tls, relay_tls.c) carries one side through
 * an SSL: splice cannot move records (no kTLS here), so bytes are copied
 * through a bounded buffer per direction.  A close_notify read is that
 * side's EOF; an EOF to pass on becomes close_notify, then a TCP FIN; a
 * TCP EOF without close_notify (a truncation) counts as a reset. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/loop.h"

struct relay;
/* Called once when both directions are finished (err 0) or when a side
 * failed (err -ECONNRESET, -EPIPE, ...).  The callee owns what happens next:
 * it calls relay_close() (and may free the struct holding the relay). */
typedef void (*relay_done_fn)(struct relay *r, int err, void *arg);

struct relay_dir {
	int pipe_r, pipe_w;
	uint32_t buffered; /* bytes in the pipe, or in the buffer (TLS) */
	uint32_t off;      /* TLS: bytes of the buffer already written */
	bool eof;          /* EOF read from the source */
	bool shut;         /* shutdown(SHUT_WR) done on the destination */
	bool bulk;         /* splice: the last read filled RELAY_SMALL (else recv/send) */
};

struct ssl_st;

struct relay {
	struct loop *loop;
	int fd[2];
	struct relay_dir dir[2]; /* dir[i] carries fd[i] -> fd[1 - i] */
	uint64_t bytes[2];       /* delivered per direction */
	relay_done_fn done;
	void *arg;
	bool active;
	struct ssl_st *tls; /* TLS variant: fd[tls_side] speaks TLS through it */
	int tls_side;
	uint8_t *buf;       /* TLS variant: one bounded buffer per direction */
};

/* Takes ownership of sockets a and b (non-blocking).  0 or -errno; on
 * error the sockets are still the caller's. */
int relay_start(struct relay *r, struct loop *l, int a, int b, relay_done_fn done, void *arg);
/* The same, with fd[tls_side] carried through ssl (handshaken); takes the
 * SSL too.  Bytes the SSL already decrypted are relayed at once. */
int relay_start_tls(struct relay *r, struct loop *l, int a, int b, int tls_side, struct ssl_st *ssl,
		    relay_done_fn done, void *arg);
/* Stops, closes both sockets (with a RST if rst), the pipes or buffers and
 * the SSL.  Safe to call twice. */
void relay_close(struct relay *r, bool rst);
/* Stops and closes everything but fd[side], which is returned to the
 * caller (no longer in the loop).  -1 if the relay was not active.  In the
 * TLS variant, side must be the plain one. */
int relay_release(struct relay *r, int side);

/* Internal to relay.c and relay_tls.c: one event handler serves both
 * variants (relay.c), calling the TLS one's pump and interest for a relay
 * with an SSL; relay_add_fds puts both sockets in the loop under it. */
int relay_add_fds(struct relay *r);
int relay_tls_pump(struct relay *r, int d);
int relay_tls_update(struct relay *r);
