/* The agent's routing proxy for one client connection of an intercepted
 * HTTP/1.1 port, on the event loop.  Each request head is matched against
 * cfg's routes in order, and the first whose filter matches decides: a
 * personal route sends the request whole to that route's laptop, a mirror
 * route sends it to the app with a copy to that route's laptop; a request
 * no route matches goes to the app.  The owner names routes by id.
 *
 * One request in flight: a request's head and body are sent to its target
 * and that target's response relayed to the client before the next
 * request is read.  Requests are never pipelined across targets (answers
 * cannot come back out of order); a pipelining client just waits.  Bodies
 * stream through (fixed or chunked, either way, with 1xx interim answers
 * relayed as they come).  Upstreams are opened when a request first needs
 * them and kept for later ones: at most one to the app, one to a laptop
 * and one for copies.  The laptop's, idle between requests, is closed when
 * a request needs another route's laptop, or at a head once its route has
 * left the table.  A 101 answering an Upgrade turns the connection into a
 * raw relay with that target for the rest of its life.  A client whose
 * first bytes are HTTP/2's preface is relayed raw to the app (HTTP/2 is
 * intercepted globally only).
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
 * Mirror routes: copies go to one route's laptop at a time, on a
 * connection of their own; its answers are read and thrown away.  Copies
 * wait in at most 1 MiB (and 128 copies); a copy that does not fit is
 * dropped (one cut mid-way resets that connection, reopened for the next
 * copy), so a slow or absent laptop never slows the client.  A copy for
 * another route closes the connection, dropping what still waits for the
 * old one; with nothing waiting, so does a head once its route has left
 * the table.  After an upgrade nothing more is copied.
 *
 * Counting: ops->counted says, as it happens, that a route's laptop got a
 * request, that a copy was sent whole to it, or that a copy for it was
 * dropped (not sent whole: no room, no laptop, or its connection ended
 * first); hproxy_stats has the totals. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "agent/http.h"
#include "common/loop.h"

#define HPROXY_ROUTES_MAX 16 /* an agent's every intercept on one port (ICEPT_RULES_MAX) */

struct hproxy_route {
	uint32_t id;               /* the owner's name for it */
	bool mirror;               /* to the app, a copy to the laptop; else to the laptop */
	struct http_filter filter; /* which requests (empty: all) */
};

struct hproxy_cfg {
	int n_routes; /* 0: everything to the app */
	struct hproxy_route routes[HPROXY_ROUTES_MAX];
	/* How long a client has to send a whole request head, from the
	 * connection's start or the end of the last answer (keep-alive's
	 * end; a bound on slow heads: 408 for a partial one); 0: 75 s.
	 * Read when each wait begins. */
	uint32_t idle_ms;
};

/* Indices of hproxy_stats' arrays: copies count as the laptop's. */
enum hproxy_target { HPROXY_APP, HPROXY_LAPTOP };

enum hproxy_count {
	HPROXY_SENT,     /* requests sent to the route's laptop */
	HPROXY_MIRRORED, /* copies the route's laptop was sent whole */
	HPROXY_DROPPED,  /* copies for it dropped */
};

struct hproxy_stats {
	uint64_t requests[2];    /* requests sent to the app, to laptops */
	uint64_t mirrored;       /* copies sent whole */
	uint64_t mirror_dropped; /* copies dropped: no room, no laptop, its connection failed or closed first */
	uint64_t client_in;      /* bytes from the client */
	uint64_t client_out;     /* bytes to the client (replies of the proxy's own included) */
	uint64_t up_out[2];      /* bytes sent to the app, to laptops (copies included) */
	uint64_t up_in[2];       /* bytes from the app, from laptops (discarded answers to copies included) */
	uint16_t replied;        /* the status of the proxy's own last reply (400, 502...), or 0 */
	int err;                 /* how it ended: 0, or -errno (-ECONNRESET, -EBADMSG...) */
};

struct hproxy;

/* Called from the proxy's handlers (upstream, counted: they must not free
 * the proxy) or from a timer of the loop (done). */
struct hproxy_ops {
	/* A non-blocking, close-on-exec stream socket to the laptop of r (a
	 * route of cfg, read during the call only), or to the app when r is
	 * NULL: connected or connecting (the proxy takes it), or -errno. */
	int (*upstream)(void *arg, const struct hproxy_route *r);
	/* n more of what, for the route with this id.  May be NULL. */
	void (*counted)(void *arg, uint32_t route_id, enum hproxy_count what, uint64_t n);
	/* Once, when the connection has ended and every fd is closed; the
	 * callee may hproxy_free(p). */
	void (*done)(void *arg, struct hproxy *p, const struct hproxy_stats *st);
};

/* Serves client_fd (non-blocking; taken on success).  cfg is borrowed: it
 * must outlive the proxy, and is read at each request head, so the owner
 * may change it between events (remove a route when its laptop goes).
 * NULL with errno set on failure (client_fd is still the caller's). */
struct hproxy *hproxy_new(struct loop *l, int client_fd, const struct hproxy_cfg *cfg,
			  const struct hproxy_ops *ops, void *arg);
/* Stops and frees, resetting whatever is still open; done is not called,
 * nor counted.  NULL is fine. */
void hproxy_free(struct hproxy *p);
/* The counters so far. */
const struct hproxy_stats *hproxy_stats(const struct hproxy *p);
