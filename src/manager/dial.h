/* One dial the manager makes for a laptop's flow, whatever carries the
 * flow (a pooled flow connection, flow.c, or a stream on a trunk,
 * trunk.c): policy and the session's limits first, then a non-blocking
 * connect marked with the TOS byte, a timeout, the counters and a log line.
 *
 * Ownership: struct dial is the owner's memory.  Between dial_start and
 * the done call the dial owns its socket (in the loop); done hands the
 * connected socket to the owner (out of the loop). */
#pragma once
#include <stdint.h>

#include "common/loop.h"
#include "proto/frame.h"

struct sess_share;
struct dial;

/* The dial is over: status (enum dial_status); fd the connected socket
 * for DIAL_OK, else -1.  Counted and logged already. */
typedef void (*dial_done_fn)(struct dial *dl, uint8_t status, int fd);

struct dial {
	struct sess_share *sh; /* the session's limits and name (session.h) */
	struct loop *loop;     /* the loop of the thread that dials */
	struct msg_dial req;
	dial_done_fn done;
	int fd;          /* -1 unless dialling */
	uint32_t tag;    /* the owner's id for the log line (a stream id), or 0 */
	uint64_t t0;
	struct loop_timer timer;
};

/* Starts dialling req for a session (its shared part) in loop l.
 * DIAL_OK: in progress, done follows (never from within this call); any
 * other status: refused or failed at once (counted and logged; done is
 * not called). */
uint8_t dial_start(struct dial *dl, struct sess_share *sh, struct loop *l, const struct msg_dial *req, uint32_t tag,
		   dial_done_fn done);
/* The owner gives up a dial in progress: its socket is closed, done is not
 * called.  A dial not in progress (or a zeroed struct): no-op. */
void dial_cancel(struct dial *dl);
/* The status a failed connect() maps to. */
uint8_t dial_status_from_errno(int err);
