/* TCP flows as streams on a session's trunk connections (net/mux.h).
 *
 * Ownership: the session owns its trunks (s->trunks); a trunk owns its mux
 * and every stream's dialed socket. */
#pragma once

#include <stdbool.h>

#include "net/wire.h"

struct session;

/* Takes the authenticated connection (fd and wire); lane: a CONN_LANE
 * trunk, on which the manager opens no stream.  0 or -errno (then both
 * are closed). */
int trunk_new(struct session *s, struct wire *w, bool lane);
/* Every trunk of the session closes; its streams end with a RST. */
void trunk_free_all(struct session *s);
/* The session's least loaded trunk, or NULL: for streams the manager opens. */
struct mux *trunk_pick(struct session *s);
