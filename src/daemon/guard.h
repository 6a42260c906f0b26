/* The loop guard (docs/vm-networking.md, ARCHITECTURE.md "Loop guard"):
 * decides whether something entering the VIF was sent back by the cluster
 * while the manager dialled on the laptop's behalf.  Pure: no I/O, the
 * caller passes the time; every call is O(1) (bounded probes into a fixed
 * table) and nothing ever waits for anything else.
 *
 * Layers, cheapest first:
 *   source  the packet comes from one of the cluster's egress addresses
 *           (the manager's address as the daemon reaches it, the node and
 *           manager addresses of CLUSTER_INFO, the pod CIDRs);
 *   mark    the packet carries the DSCP the manager puts on what it dials;
 *   chain   a user-mode NAT re-originated the loop from a local socket: to
 *           one destination, new attempts keep arriving close together
 *           while none of them is answered for longer than an answer can
 *           take.  After GUARD_CHAIN_MIN such attempts and a window W, the
 *           next one is cut.  W is a few smoothed round trips to the
 *           manager (never under GUARD_WINDOW_MIN_US), plus GUARD_LOAD_US
 *           for every dial in flight.  A burst of TCP dials delays its own
 *           first answer (the manager first takes the burst's new tunnel
 *           connections), so for TCP W applies only once the manager has
 *           answered an attempt sent after the streak began (it is not just
 *           behind), else GUARD_LONE_US.  Attempts that arrive while an
 *           earlier one to the same destination still waits to be dialled
 *           (no chain link can arrive then) do not count.  A TCP cut is
 *           confirmed when the previous attempt then fails "refused" (the
 *           cut unwinding through the NAT); a confirmed loop is remembered:
 *           while one attempt to it is in flight, the next is cut at once.
 *           Any success forgets it.
 * docs/vm-networking.md has the measurements behind the numbers. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

#define GUARD_SOURCES_MAX 32          /* manager + nodes (16) + managers (8), with room */
#define GUARD_SLOTS 4096              /* destinations tracked at once (power of two) */
#define GUARD_PROBES 8                /* slots looked at per lookup: O(1) */
#define GUARD_CHAIN_MIN 16            /* attempts before a chain can be cut */
#define GUARD_OVERFLOW_MIN 4          /* ... or before a cut by the caps counts as one */
#define GUARD_WINDOW_RTTS 3           /* W = this many smoothed round trips ... */
#define GUARD_WINDOW_MIN_US 3000      /* ... but at least this ... */
#define GUARD_WINDOW_MAX_US 1000000   /* ... and at most this, */
#define GUARD_LOAD_US 40              /* plus this per dial in flight ... */
#define GUARD_LOAD_MAX_US 10000       /* ... up to this (chains in parallel must stay under DIALS_MAX) */
#define GUARD_HEALTHY_WINDOW_US 100000 /* W for a destination that answered lately */
#define GUARD_LONE_US 50000           /* TCP: W while the manager answered nothing newer */
#define GUARD_HEALTHY_US 30000000     /* "lately" */
#define GUARD_GAP_MIN_US 50000        /* attempts further apart than max(W, this) start a new streak */
#define GUARD_CONFIRM_US 1000000      /* a cut is confirmed by a refusal within this */
#define GUARD_MEMORY_US 30000000      /* a confirmed loop is remembered this long */
#define GUARD_LOG_SOURCES 16          /* distinct sources whose last log line we remember */
#define GUARD_LOG_EVERY_US 60000000   /* one log line per source per minute */

enum guard_verdict { GUARD_PASS = 0, GUARD_SOURCE, GUARD_MARK, GUARD_CHAIN };

/* How an attempt that passed ended. */
enum guard_outcome {
	GUARD_ANSWERED_OK,      /* connected, or a reply came back */
	GUARD_ANSWERED_REFUSED, /* the destination refused (RST, ICMP port unreachable) */
	GUARD_ANSWERED_OTHER,   /* another definite answer (unreachable, forbidden) */
	GUARD_NO_ANSWER,        /* timed out, aborted, expired unanswered */
};

struct guard_dst {
	uint32_t addr;
	uint16_t port;
	uint32_t gen;       /* the guard's generation when made; another: a free slot */
	uint8_t proto;      /* 0: slot never used */
	bool confirmed;     /* the remembered loop was confirmed */
	uint32_t inflight;  /* attempts that passed and have not ended */
	uint32_t unsent;    /* ... of which still wait for a connection to be dialled */
	uint32_t streak;    /* attempts since the last answer, each within the gap of the last */
	uint64_t streak_start, last_begin, last_ok, last_use;
	uint64_t streak_sent; /* when the streak's first attempt went out (UINT64_MAX: not yet) */
	uint64_t loop_until; /* remembered loop (0: none) */
	uint64_t cut_at;     /* last cut, for its confirmation */
};

struct guard {
	uint32_t gen;       /* bumped by guard_init: every slot of an older one is free */
	bool enabled;
	uint8_t dscp_mark;  /* TOS byte with the ECN bits cleared; 0: no mark layer */
	int n_src;
	uint32_t src[GUARD_SOURCES_MAX];
	struct cidr_list src_cidrs;
	uint64_t srtt_us;   /* smoothed round trip to the manager (0: none yet) */
	uint64_t answered_sent; /* the latest send time of any attempt answered */
	uint64_t chains, untracked;
	struct guard_dst tab[GUARD_SLOTS];
	struct {
		uint32_t src;
		uint64_t at;
	} logged[GUARD_LOG_SOURCES];
};

/* enabled false: every check passes.  tos: the manager's mark (0: none).
 * g must be zeroed before its first guard_init (calloc). */
void guard_init(struct guard *g, bool enabled, uint8_t tos);
/* Forgets the egress addresses (a new session brings its own). */
void guard_clear_sources(struct guard *g);
/* Adds an egress address or CIDR; silently ignores 0 and overflow. */
void guard_add_source(struct guard *g, uint32_t addr);
void guard_add_source_cidr(struct guard *g, const struct cidr4 *c);
/* src is one of the cluster's egress addresses (on or off). */
bool guard_is_source(const struct guard *g, uint32_t src);
/* Source and mark layers for one packet: O(GUARD_SOURCES_MAX). */
enum guard_verdict guard_packet(const struct guard *g, uint32_t src, uint8_t tos);

/* A new attempt: TCP SYN, new UDP flow, echo request. */
struct guard_attempt {
	uint8_t proto;
	uint32_t dst;
	uint16_t port;  /* 0 for ICMP */
	uint64_t now;   /* us, monotonic */
	uint32_t load;  /* TCP dials in flight, all destinations */
};

/* Chain layer.  GUARD_PASS or GUARD_CHAIN (cut it).  On GUARD_PASS with
 * *tracked set, the attempt is in flight: call guard_end() once for it. */
enum guard_verdict guard_begin(struct guard *g, const struct guard_attempt *a, bool *tracked);
/* sent: when the attempt went out (for an answer; else ignored). */
void guard_end(struct guard *g, uint8_t proto, uint32_t dst, uint16_t port, enum guard_outcome o,
	       uint64_t now, uint64_t sent);
/* An attempt that passed waits for a pooled connection (guard_queued),
 * and later goes out (guard_sent; also before guard_end() if it never
 * did).  While one waits, later attempts to the same destination cannot
 * be links of a chain (a link exists only once the one before it was
 * dialled): they are part of a burst and do not count. */
void guard_queued(struct guard *g, uint8_t proto, uint32_t dst, uint16_t port);
void guard_sent(struct guard *g, uint8_t proto, uint32_t dst, uint16_t port, uint64_t now);
/* The destination answered an attempt with success within
 * GUARD_HEALTHY_US: whatever storm there is, it is not this one. */
bool guard_answered_lately(const struct guard *g, uint8_t proto, uint32_t dst, uint16_t port, uint64_t now);
/* The daemon's own caps refused an attempt that had passed (guard_end()
 * already called for it).  If its destination has unanswered sequential
 * attempts in flight and did not answer lately, it is taken for a chain
 * the caps cut (chains running side by side can fill the caps before each
 * one's window ends): remembered as guard_begin's cuts are.  True then. */
bool guard_overflow(struct guard *g, const struct guard_attempt *a);
/* A round trip to the manager: AUTH to AUTH_OK of a tunnel connection.
 * Dial durations are not used: they include waits for a pooled
 * connection and the destination's own delay; the load term covers those. */
void guard_rtt_sample(struct guard *g, uint64_t us);
/* The window W for a destination not known to be healthy, under load. */
uint64_t guard_window_us(const struct guard *g, uint32_t load);
/* True if a log line about src is due (one per source per
 * GUARD_LOG_EVERY_US); records it. */
bool guard_log_due(struct guard *g, uint32_t src, uint64_t now);
/* For tests and status: the entry of a destination, or NULL. */
const struct guard_dst *guard_lookup(const struct guard *g, uint8_t proto, uint32_t dst, uint16_t port);
const char *guard_verdict_name(enum guard_verdict v);
