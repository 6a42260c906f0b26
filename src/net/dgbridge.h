/* UDP over a stream: a UDP socket on one side, one end of a socketpair on
 * the other (its far end bound to a mux stream, which carries the bytes to
 * the manager and on).  Each datagram crosses the stream as a u16
 * big-endian length and its bytes (docs/protocol.md, "Intercepts").
 *
 * The agent's bridges share their rule's UDP socket (one per intercepted
 * port, many clients) and answer each client with sendto(peer); the
 * daemon's own a UDP socket connected to the laptop's port.  Datagrams
 * the stream cannot take at once are dropped (and counted), as a full
 * socket buffer drops them: a slow stream never queues without bound. */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/loop.h"
#include "net/outbuf.h"

#define DGB_MAX 65535                /* a datagram's bytes, at most */
#define DGB_FRAME (2 + DGB_MAX)
#define DGB_READS 32                 /* datagrams read per wakeup from an own socket */

struct dgbridge;
typedef void (*dgbridge_fn)(struct dgbridge *b, void *arg);

struct dgbridge {
	struct loop *loop;
	int sfd;                 /* our end of the socketpair (owned) */
	int udp;                 /* the UDP socket */
	bool own_udp;            /* ours: read here, closed by fini */
	bool has_peer;           /* answers go to peer by sendto (else send: connected) */
	struct sockaddr_in peer;
	uint8_t *rx;             /* DGB_FRAME bytes: a frame from the stream, in parts */
	size_t rx_len;
	struct outbuf out;       /* the rest of the one frame the socketpair did not take whole */
	uint64_t last_ms;        /* the last datagram either way */
	uint64_t dgrams[2];      /* [0] to the stream, [1] from it */
	uint64_t dropped;
	dgbridge_fn closed;      /* the stream's end (EOF or an error on sfd) */
	void *arg;
};

/* Takes sfd and, if own_udp, udp (both non-blocking) into the loop.  peer:
 * where answers go (NULL: udp is connected).  0 or -errno (nothing taken). */
int dgbridge_init(struct dgbridge *b, struct loop *l, int sfd, int udp, bool own_udp,
		  const struct sockaddr_in *peer, dgbridge_fn closed, void *arg);
/* One datagram toward the stream: framed, or dropped if a frame waits. */
void dgbridge_to_stream(struct dgbridge *b, const void *p, size_t n);
/* Out of the loop; sfd closed, udp too if own.  For an inited bridge. */
void dgbridge_fini(struct dgbridge *b);

/* Pure: takes whole frames from buf[0..*len) (moving what is left to the
 * front), calling fn for each datagram.  -EBADMSG never: any length is a
 * frame.  Returns how many it took. */
int dgframe_take(uint8_t *buf, size_t *len, void (*fn)(void *arg, const uint8_t *p, size_t n), void *arg);
