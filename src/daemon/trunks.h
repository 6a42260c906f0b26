/* The trunks: TRUNKS connections to the manager, each carrying TCP flows
 * as streams (net/mux.h), opened by the daemon for the laptop's apps and
 * by the manager toward the laptop.  With TLS a trunk pays the handshake
 * and the SSL's memory once for all its flows.
 *
 * Ownership: struct trunks owns the connecting pconns and the muxes; the
 * streams are their owners' (carrier.h). */
#pragma once
#include <stdbool.h>

#include "common/list.h"
#include "net/pconn.h"
#include "net/mux.h"

#define TRUNKS 2

struct trunks {
	struct pconn_set set;   /* on while a session is up: keep TRUNKS of them */
	struct mux *mx[TRUNKS]; /* the trunks up (NULL: none in that slot) */
	int n;
	struct mux_ops ops;     /* the streams' callbacks, and ours for the trunk */
};

/* streams: result, done and open of every stream (their owners'); arg is
 * ready's, and the mux's (struct mux->arg is the trunks).  kind: CONN_TRUNK,
 * or CONN_LANE for a lane's (daemon/lane.h: the manager opens nothing on it). */
void trunks_init(struct trunks *tr, const struct pconn_cfg *cfg, enum conn_kind kind, const struct mux_ops *streams,
		 void (*ready)(void *arg), void *arg);
/* Keeps TRUNKS trunks up from now on. */
void trunks_start(struct trunks *tr);
/* Closes every trunk (its streams end first, done -ECONNRESET). */
void trunks_stop(struct trunks *tr);
/* The least loaded trunk up, or NULL. */
struct mux *trunks_pick(const struct trunks *tr);
