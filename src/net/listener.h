/* A listening socket on the event loop.  Each wakeup accepts at most
 * `batch` connections (bounded work), each non-blocking and close-on-exec,
 * and hands each to fn, which owns the fd from then on.  Out of fds or
 * memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) it stops watching the socket
 * for LISTENER_PAUSE_MS: the socket stays readable, and a level-triggered
 * loop would wake at once again and spin.  The pauses are counted and the
 * first ones logged.
 *
 * Ownership: the listener owns its socket; it is embedded in its owner's
 * struct.  fn must not stop the listener it is called from. */
#pragma once
#include <stdint.h>

#include "common/loop.h"

#define LISTENER_PAUSE_MS 100

typedef void (*listener_fn)(void *arg, int fd);

struct listener {
	struct loop *l;
	int fd;            /* -1 when stopped */
	unsigned batch;
	const char *name;  /* for the log: "DNS over TCP" */
	listener_fn fn;
	void *arg;
	struct loop_timer pause;
	uint64_t paused;   /* times it ran out of fds */
};

/* Takes lfd, a listening socket (or -errno, passed on: so that
 * listener_init(ls, l, sock_listen_tcp(...), ...) reads in one line).
 * 0 or -errno; on failure lfd is closed (fd -1). */
int listener_init(struct listener *ls, struct loop *l, int lfd, unsigned batch, const char *name,
		  listener_fn fn, void *arg);
/* Closes the socket.  Accepts a listener closed already, or zeroed. */
void listener_fini(struct listener *ls);
