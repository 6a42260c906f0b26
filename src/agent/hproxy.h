/* The agent's routing proxy for one client connection of an intercepted
 * HTTP/1.1 port, on the event loop: each request goes whole to the app or
 * to the laptop (PERSONAL: those its filter matches go to the laptop), or
 * to the app with a copy to the laptop (MIRROR), on one client connection.
 *
 * One request in flight: a request's head and body are sent to its target
 * and that target's response relayed to the client before the next
 * request is read.  Requests are never pipelined across targets (answers
 * cannot come back out of order); a pipelining client just waits.  Bodies
 * stream through (fixed or chunked, either way, with 1xx interim answers
 * relayed as they come); the upstream for each target is opened when a
 * request first needs it and kept for later ones.  A 101 answering an
 * Upgrade turns the connection into a raw relay with that target for the
 * rest of its life.  A client whose first bytes are HTTP/2's preface is
 * relayed raw to the app (HTTP/2 is intercepted globally only).
 *
 * Ends: a client silent for cfg->idle_ms between requests (a FIN),
 * Connection: close on either side, HTTP/1.0 without keep-alive, or
 * a response that ends at EOF end the client connection after the
 * response (a FIN, then its unread bytes are drained for up to 2 s so that
 * the answer is not lost to a RST).  A malformed request gets 400 (431,
 * 501, 505 as fits) and the end; an upstream that cannot be reached, that
 * resets or whose answer is malformed gets the client a 502 if nothing of
 * its answer was sent yet, else a reset; a client reset resets the
 * upstreams.  Buffers are fixed (32 KiB each way); each wakeup does
 * bounded work.
 *
 * MIRROR: the laptop gets a copy of each request (each matching one, with
 * a filter) on a connection of its own; its answers are read and thrown
 * away.  Copies wait in at most 1 MiB; a copy that does not fit is
 * dropped and counted (one cut mid-way resets the laptop's connection,
 * reopened for the next copy), so a slow or absent laptop never slows the
 * client.  After an upgrade nothing more is copied. */
#pragma once
#include <stdint.h>

#include "agent/http.h"
#include "common/loop.h"

enum hproxy_target { HPROXY_APP, HPROXY_LAPTOP };

enum hproxy_mode {
	HPROXY_TO_APP,   /* everything to the app (the intercept is inactive) */
	HPROXY_PERSONAL, /* requests the filter matches to the laptop, the rest to the app */
	HPROXY_MIRROR,   /* everything to the app; a copy of those the filter matches to the laptop */
};

struct hproxy_cfg {
	enum hproxy_mode mode;
	struct http_filter filter;
	/* How long a client has to send a whole request head, from the
	 * connection's start or the end of the last answer (keep-alive's
	 * end; a bound on slow heads: 408 for a partial one); 0: 75 s.
	 * Read when each wait begins. */
	uint32_t idle_ms;
};

struct hproxy_stats {
	uint64_t requests[2];    /* requests sent to each target */
	uint64_t mirrored;       /* copies queued whole for the laptop */
	uint64_t mirror_dropped; /* copies dropped: no room, no laptop, its connection failed mid-copy */
	uint64_t client_in;      /* bytes from the client */
	uint64_t client_out;     /* bytes to the client (replies of the proxy's own included) */
	uint64_t up_out[2];      /* bytes sent to each target (copies included) */
	uint64_t up_in[2];       /* bytes from each target (discarded answers to copies included) */
	uint16_t replied;        /* the status of the proxy's own last reply (400, 502...), or 0 */
	int err;                 /* how it ended: 0, or -errno (-ECONNRESET, -EBADMSG...) */
};

struct hproxy;

struct hproxy_ops {
	/* A non-blocking, close-on-exec stream socket to t, connected or
	 * connecting (the proxy takes it), or -errno.  Called from the
	 * proxy's handlers: it must not free the proxy. */
	int (*upstream)(void *arg, enum hproxy_target t);
	/* Once, when the connection has ended and every fd is closed; from a
	 * timer of the loop, so the callee may hproxy_free(p). */
	void (*done)(void *arg, struct hproxy *p, const struct hproxy_stats *st);
};

/* Serves client_fd (non-blocking; taken on success).  cfg is borrowed: it
 * must outlive the proxy, and is read at each request head, so the owner
 * may change it between events (to HPROXY_TO_APP when the laptop goes).
 * NULL with errno set on failure (client_fd is still the caller's). */
struct hproxy *hproxy_new(struct loop *l, int client_fd, const struct hproxy_cfg *cfg,
			  const struct hproxy_ops *ops, void *arg);
/* Stops and frees, resetting whatever is still open; done is not called.
 * NULL is fine. */
void hproxy_free(struct hproxy *p);
/* The counters so far. */
const struct hproxy_stats *hproxy_stats(const struct hproxy *p);
