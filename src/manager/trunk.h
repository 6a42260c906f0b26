/* TCP flows as streams on a session's trunk connections (net/mux.h).
 *
 * Ownership: the session owns its trunks (s->trunks), a worker the lane
 * trunks it carries (worker.h); a trunk owns its mux and every stream's
 * dialed socket. */
#pragma once

#include <stdbool.h>

#include "net/wire.h"

struct session;
struct sess_share;
struct mworker;
struct loop;
struct list;

/* Takes the authenticated connection (fd and wire); lane: a CONN_LANE
 * trunk, on which the manager opens no stream.  0 or -errno (then both
 * are closed). */
int trunk_new(struct session *s, struct wire *w, bool lane);
/* Every trunk of the session closes; its streams end with a RST. */
void trunk_free_all(struct session *s);
/* A worker's (worker.h): a lane trunk of sh (whose reference it takes) on
 * the worker's loop l, listed in `into`.  0 or -errno (the wire dropped). */
int trunk_new_on_worker(struct mworker *wk, struct loop *l, struct list *into, struct sess_share *sh,
			struct wire *w);
/* A worker's trunks close: all, or those whose session has ended. */
void trunk_free_list(struct list *l, bool ended_only);
/* The session's least loaded trunk, or NULL: for streams the manager opens. */
struct mux *trunk_pick(struct session *s);
