/* TCP flows on pooled flow connections (--insecure on the laptop): one
 * DIAL on an authenticated connection, then the connection's bytes are
 * the flow's, spliced to the dialed socket.
 *
 * Ownership: the session owns its flows (s->flows); a flow owns its
 * connection and the dialed socket. */
#pragma once
#include <stdbool.h>

#include "net/wire.h"

struct session;

/* Takes the authenticated connection (fd and wire).  0 or -errno (then
 * both are closed). */
int flow_new(struct session *s, struct wire *w);
/* Every flow of the session ends with a RST. */
void flow_free_all(struct session *s);
