/* Streams: many TCP flows over one trunk connection (docs/protocol.md,
 * "Trunks").  With TLS, a connection per flow costs a handshake to open and
 * an SSL (tens of KiB) to hold; a trunk pays both once and carries each
 * flow as a stream of FT_STREAM_* frames.
 *
 * One struct mux per trunk, on either side.  It owns the trunk's wire
 * (and so its SSL and fd) once started.  Streams are the owner's memory
 * (embedded in its flow struct); the mux finds them by id and never frees
 * them.  A stream is bound to a local TCP socket (the accepted hairpin
 * socket on the laptop, the dialed one in the cluster); the mux then reads
 * and writes that socket in the loop, and the owner gets it back at the end.
 *
 * Flow control: a sender may have at most MUX_WINDOW bytes of a stream not
 * yet written to the receiver's socket (credit, returned by STREAM_CREDIT).
 * Bytes the receiver's socket cannot take at once wait in a per-stream
 * buffer, allocated only then, so a stream costs ~100 bytes while idle and
 * a slow reader stalls only its own stream, never the trunk, until the
 * waiting bytes of all streams reach MUX_PEND_MAX (32 readers stalled with
 * full windows): then the trunk stops reading until they drain, so that
 * memory stays bounded.
 *
 * Ending: EOF read from the socket is sent as STREAM_FIN; a FIN received
 * becomes shutdown(SHUT_WR) once the buffered bytes are out; when both
 * halves are done the stream ends cleanly (done with 0).  A socket error
 * sends STREAM_RST; a RST received ends the stream with -ECONNRESET. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/idtab.h"
#include "common/loop.h"
#include "proto/frame.h"
#include "net/wire.h"

#define MUX_WINDOW (2048u * 1024)      /* per stream and direction: ~ what a 10 Gbit/s stream has in flight here */
#define MUX_CREDIT_STEP (MUX_WINDOW / 4)
#define MUX_PEND_MAX (64u << 20)       /* bytes waiting for slow sockets, per trunk: past it, the trunk stops reading */
#define MUX_PEND_KEEP (256u * 1024)    /* a drained stream keeps a buffer up to this size */
#define MUX_QUEUE_DATA (512u * 1024)   /* trunk write queue DATA may fill ... */
#define MUX_QUEUE_MAX (640u * 1024)    /* ... and control frames beyond it */
#define MUX_FLUSH_NOW (256u * 1024)    /* queued bytes written at once (one send of 16 records), not at the batch's end */
#define MUX_BUCKET_BITS 12                 /* 4096 chains of streams by id */
#define MUX_TRUNK_READS 16             /* record reads per trunk wakeup */
#define MUX_STREAM_READS 4             /* socket reads per stream wakeup */

struct mux;
struct mux_stream;

/* Which end of the trunk connection a mux serves.  Each end numbers the
 * streams it opens with its own parity (the initiator, which made the
 * connection, odd ids; the acceptor even ones), so both may open streams
 * at once without a clash: the daemon's flows one way, intercepts the other. */
enum mux_role { MUX_INITIATOR = 1, MUX_ACCEPTOR = 2 };

struct mux_ops {
	/* The peer asks for stream id to reach m.  The owner calls mux_attach
	 * (and later mux_result), or mux_refuse at once.  NULL: every open of
	 * the peer is refused (DIAL_FORBIDDEN). */
	void (*open)(struct mux *mx, uint32_t id, const struct msg_dial *m, void *arg);
	/* How an open of ours (mux_open) went.  Not DIAL_OK: st is detached. */
	void (*result)(struct mux_stream *st, uint8_t status);
	/* st ended: 0 both halves done, or -errno (a reset from either side,
	 * the trunk lost).  st is detached; its fd (if bound) is the owner's
	 * again, out of the loop. */
	void (*done)(struct mux_stream *st, int err);
	/* The trunk failed (every stream was ended first).  The owner calls
	 * mux_free. */
	void (*down)(struct mux *mx, int err, void *arg);
	/* Any other frame (heartbeats): 0, or -errno to drop the trunk. */
	int (*frame)(struct mux *mx, const struct frame_hdr *h, const uint8_t *p, void *arg);
};

struct mux_stream {
	struct mux *mx;   /* NULL while detached */
	void *owner;
	struct idtab_node hn; /* by id (hn.id, mux_stream_id) in mx->streams */
	int fd;           /* -1 until bound */
	uint32_t credit;  /* bytes we may still send */
	uint32_t owed;    /* bytes written to fd since our last CREDIT */
	uint8_t *pend;    /* from the peer, not yet written to fd */
	uint32_t pend_off, pend_len, pend_cap;
	bool eof;         /* EOF read from fd, FIN queued */
	bool peer_fin;    /* the peer's FIN received */
	bool shut;        /* shutdown(SHUT_WR) done on fd */
	bool blocked;     /* on mx->blocked: the trunk queue was full */
	bool opening;     /* ours, waiting for STREAM_RESULT */
	bool hup;         /* fd closed both ways by its far end after its EOF: out of the loop */
	uint64_t bytes[2]; /* fd -> peer, peer -> fd */
	struct mux_stream *bnext, *bprev;
};

struct mux_stats {
	uint64_t overruns; /* streams reset for bytes past their window */
};

struct mux {
	struct loop *loop;
	struct wire w;
	const struct mux_ops *ops;
	void *arg;
	enum mux_role role;
	uint32_t next_id, n_streams;
	size_t pend_bytes; /* sum of the streams' pend_len */
	struct mux_stream *blocked;
	struct mux_stats st;
	struct loop_defer flush; /* queued frames leave at the end of the wakeup */
	bool dead;
	struct idtab streams;
	struct idtab_node *buckets[1u << MUX_BUCKET_BITS];
};

/* Takes over w (an authenticated trunk: fd non-blocking, TLS or not) and
 * adds its fd to the loop.  NULL on ENOMEM (w is then still the caller's). */
struct mux *mux_new(struct loop *l, struct wire *w, enum mux_role role, const struct mux_ops *ops, void *arg);
/* Ends every stream (done, -ECONNRESET), closes the trunk, frees.  NULL ok. */
void mux_free(struct mux *mx);

/* Either side: a new stream (id chosen here) asking the peer to reach m;
 * the answer comes to ops->result.  0 or -errno (-ENOBUFS: the trunk
 * queue is full). */
int mux_open(struct mux *mx, struct mux_stream *st, const struct msg_dial *m, void *owner);
/* The side asked (ops->open): st takes the id the peer asked for.  0, or -EEXIST. */
int mux_attach(struct mux *mx, struct mux_stream *st, uint32_t id, void *owner);
/* ... answers an attached stream's open; not DIAL_OK detaches st. */
int mux_result(struct mux_stream *st, uint8_t status);
/* ... answers an open that was never attached. */
int mux_refuse(struct mux *mx, uint32_t id, uint8_t status);
/* Both: the stream now moves bytes through fd (non-blocking; the mux adds
 * it to the loop).  Bytes and a FIN that arrived before are written now.
 * 0 or -errno (st untouched, fd still the caller's). */
int mux_bind(struct mux_stream *st, int fd);
/* Queues a whole frame that is not a stream's (AGENT_RULES, heartbeats)
 * and has it written soon.  0, or -ENOBUFS when the trunk queue is full. */
int mux_send_frame(struct mux *mx, const uint8_t *frame, size_t len);
/* Has what was queued on mx->w directly (wire_heartbeat_ack) written soon.  0. */
int mux_kick(struct mux *mx);
/* The owner gives up st: a RST goes to the peer, st is detached (its fd,
 * if bound, is out of the loop and still the owner's).  No done call. */
void mux_reset(struct mux_stream *st);
static inline bool mux_attached(const struct mux_stream *st) { return st->mx != NULL; }
static inline uint32_t mux_stream_id(const struct mux_stream *st) { return st->hn.id; }
