/* Moves bytes both ways between two connected TCP sockets with splice(2)
 * through a pipe per direction, in the event loop.  Half-close travels:
 * EOF read on one side becomes shutdown(SHUT_WR) on the other.  A reset
 * on either side is reported so the owner can reset the other side. */
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
	uint32_t buffered; /* bytes in the pipe */
	bool eof;          /* EOF read from the source */
	bool shut;         /* shutdown(SHUT_WR) done on the destination */
};

struct relay {
	struct loop *loop;
	int fd[2];
	struct relay_dir dir[2]; /* dir[i] carries fd[i] -> fd[1 - i] */
	uint64_t bytes[2];       /* delivered per direction */
	relay_done_fn done;
	void *arg;
	bool active;
};

/* Takes ownership of sockets a and b (non-blocking).  0 or -errno; on
 * error the sockets are still the caller's. */
int relay_start(struct relay *r, struct loop *l, int a, int b, relay_done_fn done, void *arg);
/* Stops, closes both sockets (with a RST if rst) and the pipes.  Safe to
 * call twice. */
void relay_close(struct relay *r, bool rst);
/* Stops and closes everything but fd[side], which is returned to the
 * caller (no longer in the loop).  -1 if the relay was not active. */
int relay_release(struct relay *r, int side);
