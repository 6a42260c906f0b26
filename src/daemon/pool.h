/* --insecure: a pool of pre-authenticated flow connections to the manager,
 * each of which later carries exactly one TCP flow, spliced (splice beats
 * any copy, and without TLS there is nothing to decrypt).
 *
 * The pool is as deep as the new flows that arrive while one refill (a
 * connect and an authentication, three round trips) is under way: a flow
 * that finds it empty waits those round trips, so the target doubles; it
 * halves back after POOL_SHRINK_MS without a wait (pool_shrink).
 *
 * Ownership: the pool owns its idle and connecting pconns; pool_take()
 * hands one over, whose ops and owner the taker then sets. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "net/pconn.h"

#define POOL_TARGET 16         /* idle pre-authenticated flow connections */
#define POOL_TARGET_MAX 64     /* ... grown to while new flows outrun the refill */
#define POOL_SHRINK_MS 30000   /* ... and halved back after this long without a wait */
#define POOL_MAX_CONNECTING 64

struct pool {
	struct pconn_set set; /* on while a session is up: kept filled */
	struct list idle;     /* struct pconn, by link */
	int n_idle;
	int target;          /* POOL_TARGET .. POOL_TARGET_MAX */
	uint64_t waited_ms;  /* when a flow last found the pool empty */
};

/* ready(arg): a connection became idle. */
void pool_init(struct pool *p, const struct pconn_cfg *cfg, void (*ready)(void *arg), void *arg);
/* Keeps the pool filled from now on (a session is up). */
void pool_start(struct pool *p);
/* Closes every connection; no refill until pool_start. */
void pool_stop(struct pool *p);
/* An idle connection, now the caller's, or NULL (the target grows). */
struct pconn *pool_take(struct pool *p);
/* Halves an unneeded target (called every few seconds). */
void pool_shrink(struct pool *p);
