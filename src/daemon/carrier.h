/* A carrier moves one tunnelled TCP flow's bytes between a socket on the
 * laptop and the manager.  Whoever owns the flow (the hairpin for the
 * laptop's apps; intercepts for flows the cluster opens toward the laptop)
 * knows only this interface: open (or accept), bind, reset, and results
 * through struct carrier_ops.
 *
 * Transports (struct carrier_impl), one file each:
 *   carrier_stream.c  a stream on a trunk (trunks.h, net/mux.h): TLS, and
 *                     every flow the manager opens
 *   carrier_pool.c    a pooled flow connection of its own, spliced (pool.h):
 *                     the laptop's flows with --insecure
 * A third transport is a third file with its struct carrier_impl, a member
 * in the union below, and a line in carrier_open() choosing it.
 *
 * Life of an outbound carrier:
 *   carrier_open  -> the open goes out now (0), or waits for a connection
 *                    to the manager (1; ops->sent when it goes out)
 *   ops->result   <- DIAL_OK: carrier_bind(fd) starts the bytes;
 *                    any other status: the carrier is closed
 *   ops->done     <- the bytes are over (0) or were cut (-errno): the
 *                    carrier is closed and the owner has c->fd back
 * Inbound: the tunnel's inbound handler (tunnel_set_inbound) gets an
 * offer, and carrier_accept()s it or not; carrier_answer(DIAL_OK) after
 * the owner's own dial, then carrier_bind.
 * carrier_reset() at any point: a RST to the far side, no more callbacks.
 *
 * Ownership: the carrier is the owner's memory (embedded in its flow); the
 * transport never frees it.  The bound fd is the carrier's from bind to
 * done, and the owner's again after done or reset. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "net/mux.h"
#include "net/relay.h"
#include "proto/frame.h"

struct tunnel;
struct pconn;
struct carrier;

struct carrier_ops {
	/* Optional: a waiting open went out. */
	void (*sent)(struct carrier *c);
	/* How an open of ours went (enum dial_status).  Not DIAL_OK: closed. */
	void (*result)(struct carrier *c, uint8_t status);
	/* The flow is over: 0 both halves done, or -errno (a reset from the
	 * far side, the tunnel lost).  Closed; c->fd and c->bytes are set. */
	void (*done)(struct carrier *c, int err);
};

struct carrier_impl {
	/* Sends c->dial: 0, or -EAGAIN when no connection is ready (c waits). */
	int (*open)(struct carrier *c);
	/* Inbound only: answers the far side's open. */
	int (*answer)(struct carrier *c, uint8_t status);
	int (*bind)(struct carrier *c, int fd);
	void (*reset)(struct carrier *c);
	/* Bytes moved so far: [0] socket -> manager, [1] manager -> socket. */
	const uint64_t *(*bytes)(const struct carrier *c);
};

enum carrier_state {
	CARRIER_CLOSED = 0, /* zeroed, or ended */
	CARRIER_WAITING,    /* for a connection to the manager */
	CARRIER_OPENING,    /* the open is out (or in, for an offer) */
	CARRIER_OPEN,       /* dialled; not bound yet */
	CARRIER_BOUND,      /* moving bytes */
};

struct carrier {
	const struct carrier_impl *impl;
	const struct carrier_ops *ops;
	void *owner;
	struct tunnel *tun;
	enum carrier_state state;
	bool inbound;     /* the far side opened it (carrier_accept) */
	struct msg_dial dial;
	struct list wait; /* the tunnel's waiting carriers */
	int fd;           /* bound socket: -1 before bind */
	uint64_t bytes[2];
	union {
		struct mux_stream st; /* carrier_stream.c */
		struct {              /* carrier_pool.c */
			struct pconn *pc;
			struct relay relay;
		} pool;
	} u;
};

/* The far side opens a flow toward the laptop (an intercept's connection). */
struct carrier_offer {
	struct tunnel *tun;
	struct mux *mx;
	uint32_t id;
	struct msg_dial dial; /* the local address to dial, as the manager asks */
};

/* 0 (sent), 1 (waiting; ops->sent follows) or -errno (c stays closed). */
int carrier_open(struct tunnel *tun, struct carrier *c, const struct msg_dial *m,
		 const struct carrier_ops *ops, void *owner);
/* Takes an offer (inside the inbound handler only).  0 or -errno; on
 * error the offer is refused. */
int carrier_accept(struct carrier *c, const struct carrier_offer *o, const struct carrier_ops *ops,
		   void *owner);
/* An accepted carrier: how the owner's dial went.  Not DIAL_OK: closed. */
int carrier_answer(struct carrier *c, uint8_t status);
/* After DIAL_OK: the carrier moves fd's bytes (non-blocking; it enters the
 * loop).  0 or -errno (fd untouched, still the caller's; c closed). */
int carrier_bind(struct carrier *c, int fd);
/* The owner gives up: a RST to the far side, no more callbacks.  A bound
 * fd is the owner's again (out of the loop).  A closed carrier: no-op. */
void carrier_reset(struct carrier *c);
void carrier_bytes(const struct carrier *c, uint64_t b[2]);
static inline bool carrier_closed(const struct carrier *c) { return c->state == CARRIER_CLOSED; }

/* The transports; the tunnel starts waiting carriers once a connection
 * is up (carrier_kick). */
extern const struct carrier_impl carrier_stream_impl, carrier_pool_impl;
void carrier_kick(struct tunnel *tun);
/* Carriers wait: the transport opens what they need (once the session is up). */
void carrier_want(struct tunnel *tun);
/* Internal to the transports: the carrier's end, told to its owner. */
void carrier_result(struct carrier *c, uint8_t status);
void carrier_done(struct carrier *c, int err, int fd, const uint64_t bytes[2]);
/* carrier_stream.c: the mux callbacks the trunks use for every stream. */
extern const struct mux_ops carrier_stream_ops;
