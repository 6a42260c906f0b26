/* The tunnel: everything between the daemon and the manager.
 *
 *   control.c   the control connection: session, cluster info, UDP, pings,
 *               DNS, heartbeats
 *   trunks.c    TRUNKS trunk connections: TCP flows as streams
 *   pool.c      --insecure: pooled flow connections, one per TCP flow
 *   pconn.c     any of them through its handshake
 *   carrier*.c  one TCP flow over a trunk stream or a pooled connection
 *
 * The daemon hears of the tunnel through struct tunnel_ops only; nothing
 * here knows the hairpin, the DNS server or the datagram path.
 *
 * Ownership: the daemon embeds the struct tunnel; the tunnel owns every
 * connection to the manager, the TLS context and the token. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "common/loop.h"
#include "daemon/carrier.h"
#include "net/pconn.h"
#include "daemon/pool.h"
#include "daemon/trunks.h"
#include "proto/frame.h"

#define TUNNEL_HEARTBEAT_MS 5000
#define TUNNEL_HEARTBEAT_DEAD_MS 15000
#define TUNNEL_DIAL_TIMEOUT_MS 5000 /* asked of the manager for each dial */

struct tunnel_ops {
	/* The session is up: CLUSTER_INFO arrived (tunnel_info()). */
	void (*up)(void *arg);
	/* The control connection failed or ended; why is for the user.  The
	 * tunnel is stopped (tunnel_start again to reconnect). */
	void (*lost)(void *arg, const char *why);
	void (*udp)(void *arg, const struct msg_udp *m);
	void (*pong)(void *arg, const struct msg_pong *m);
	void (*dns)(void *arg, const struct msg_dns *m);
	/* A round trip to the manager was measured (for the loop guard). */
	void (*rtt)(void *arg, uint64_t us);
	/* Any other frame of the session (intercepts): 0, or -EBADMSG. */
	int (*frame)(void *arg, uint8_t type, const uint8_t *p, size_t len);
};

/* The far side opens a flow toward the laptop: carrier_accept() it (and
 * answer later) and return DIAL_OK, or return the status it is refused with. */
typedef uint8_t (*tunnel_inbound_fn)(void *arg, const struct carrier_offer *o);

struct tunnel {
	struct pconn_cfg cfg;
	bool insecure; /* the laptop's flows on pooled connections, not streams */
	bool lane;     /* a lane's (tunnel_lane_init): transports only, no streams toward it */
	const struct tunnel_ops *ops;
	void *arg;
	/* control.c */
	struct pconn *ctl;
	bool up;             /* CLUSTER_INFO received on this session */
	struct msg_cluster_info info;
	char server[PROTO_NAME_MAX]; /* the manager's name and version */
	struct loop_timer heartbeat;
	uint64_t last_ack_ms;
	char ended[256];     /* the manager's ERROR text, for lost() */
	/* transports */
	struct trunks trunks;
	struct pool pool;
	struct list waiting; /* struct carrier, by wait: oldest first */
	uint32_t n_waiting;
	tunnel_inbound_fn inbound;
	void *inbound_arg;
};

void tunnel_init(struct tunnel *t, struct loop *l, const struct tunnel_ops *ops, void *arg);
/* Where and how to reach the manager: fingerprint NULL means plain TCP
 * (--insecure).  Takes a copy of the token.  0, or -errno with a sentence
 * in err. */
int tunnel_configure(struct tunnel *t, uint32_t addr, uint16_t port, const struct auth_token *token,
		     const uint8_t *fingerprint, char *err, size_t errlen);
/* Opens the control connection; the rest follows once it is up.  0, or
 * -errno (nothing to reconnect to: errno's sentence is for the user). */
int tunnel_start(struct tunnel *t);
/* Closes every connection: streams end (done -ECONNRESET); waiting
 * carriers stay waiting for the next session. */
void tunnel_stop(struct tunnel *t);
/* A lane's tunnel (daemon/lane.h): transports only, on the lane's loop,
 * to the manager of main, whose TLS context it shares (tls.c keeps a
 * context's tickets and counts under a lock) and which must outlive it;
 * its trunks are CONN_LANE.  ops: only rtt is called. */
void tunnel_lane_init(struct tunnel *t, struct loop *l, const struct tunnel *main, const struct tunnel_ops *ops,
		      void *arg);
/* The session (its id) is up: the lane's transports open, and carriers
 * waiting for them go.  tunnel_stop() when it is lost. */
void tunnel_lane_up(struct tunnel *t, const uint8_t session[PROTO_SESSION_LEN]);
/* tunnel_stop, then the TLS context and the token go too. */
void tunnel_fini(struct tunnel *t);
/* A frame on the control connection.  0 or -errno (-ENOTCONN: no session). */
int tunnel_send(struct tunnel *t, const uint8_t *frame, size_t len);
void tunnel_set_inbound(struct tunnel *t, tunnel_inbound_fn fn, void *arg);

static inline const struct msg_cluster_info *tunnel_info(const struct tunnel *t) { return &t->info; }
/* The manager's address and port ("IP:PORT"), as configured. */
static inline uint32_t tunnel_addr(const struct tunnel *t) { return t->cfg.addr; }
static inline const char *tunnel_where(const struct tunnel *t) { return t->cfg.where; }
/* The control connection is up and CLUSTER_INFO has come. */
static inline bool tunnel_up(const struct tunnel *t) { return t->up; }
/* The negotiated TLS cipher of the control connection, or NULL. */
const char *tunnel_cipher(const struct tunnel *t);
