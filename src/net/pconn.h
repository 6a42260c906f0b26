/* One connection to the manager (the daemon's, or an agent's), from connect() until it is
 * authenticated: TCP, TLS (unless --insecure), HELLO, AUTH, AUTH_OK
 * (docs/protocol.md, "Handshake").  The control connection, the pooled
 * flow connections and the trunks all start this way; what each becomes
 * afterwards is its owner's business, told through struct pconn_ops.
 *
 * Ownership: the owner holds the pconn and frees it with pconn_close(),
 * except after ops->ready() returned 1 (the owner took the fd and wire
 * and freed the pconn itself, pconn_release()). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "common/loop.h"
#include "net/wire.h"
#include "proto/auth.h"
#include "proto/frame.h"

#define PCONN_CONNECT_TIMEOUT_MS 5000

/* What every connection to the manager needs; owned by the tunnel. */
struct pconn_cfg {
	struct loop *loop;
	uint32_t addr;
	uint16_t port;
	char where[24];                     /* "IP:PORT", for messages */
	char client[PROTO_NAME_MAX];        /* who we are in AUTH ("" for subway-daemon) */
	struct auth_token token;
	struct ssl_ctx_st *tls_ctx;         /* NULL: plain TCP (--insecure) */
	uint8_t fingerprint[32];            /* ... else the manager's certificate, pinned */
	uint8_t session[PROTO_SESSION_LEN]; /* from the control connection's AUTH_OK */
	/* A round trip measured (AUTH to AUTH_OK), for the loop guard. */
	void (*rtt)(void *arg, uint64_t us);
	void *rtt_arg;
};

enum pconn_state { PC_CONNECTING, PC_TLS, PC_HELLO, PC_AUTH, PC_READY, PC_DONE };

struct pconn;

struct pconn_ops {
	/* Authenticated.  0: the pconn stays as it is (frames go to ops->frame),
	 * 1: the owner took it over (pconn_release), or -errno: failed. */
	int (*ready)(struct pconn *pc);
	/* A frame after authentication: 0, 1 (the owner took the connection
	 * over and stops reading it), or -errno.  NULL: none may come. */
	int (*frame)(struct pconn *pc, const struct frame_hdr *h, const uint8_t *p);
	/* The connection failed (err) before or after authentication; why is
	 * a sentence for the user ("" when there is nothing better than err).
	 * The owner calls pconn_close(). */
	void (*fail)(struct pconn *pc, int err, const char *why);
};

struct pconn {
	const struct pconn_cfg *cfg;
	const struct pconn_ops *ops;
	void *owner;
	int fd;
	enum conn_kind kind;
	enum pconn_state state;
	struct wire w;
	uint8_t nonce[PROTO_NONCE_LEN];
	uint8_t server_nonce[PROTO_NONCE_LEN];
	char server[PROTO_NAME_MAX]; /* the manager's name and version, from HELLO */
	struct loop_timer timer;
	uint64_t auth_us; /* when AUTH went out */
	struct list link; /* the owner's list (connecting, idle) */
};

/* Connections of one kind that an owner keeps opening toward a number
 * (the pool's flow connections, the trunks) while it is on.  Each pconn's
 * owner is the set (container_of gets the owner's struct); the owner's
 * ops->ready takes it off `connecting` (pconn_set_done) and, once it is
 * usable, tells up(arg). */
struct pconn_set {
	const struct pconn_cfg *cfg;
	enum conn_kind kind;
	const struct pconn_ops *ops;
	struct list connecting; /* struct pconn, by link */
	int n_connecting;
	bool on;
	void (*up)(void *arg);  /* one more is usable: waiting carriers may go */
	void *arg;
};

void pconn_set_init(struct pconn_set *s, const struct pconn_cfg *cfg, enum conn_kind kind,
		    const struct pconn_ops *ops, void (*up)(void *arg), void *arg);
/* While on: opens up to n more (a failed connect stops it). */
void pconn_set_open(struct pconn_set *s, int n);
/* Off: closes the connections still connecting. */
void pconn_set_stop(struct pconn_set *s);
/* Takes a connection that became ready (or failed) off `connecting`. */
void pconn_set_done(struct pconn_set *s, struct pconn *pc);
/* An ops->fail for a set's connection still connecting: logged, taken
 * off, closed (the next need opens another). */
void pconn_set_fail(struct pconn *pc, int err, const char *why);

/* Starts connecting.  The pconn, or NULL with errno set. */
struct pconn *pconn_open(const struct pconn_cfg *cfg, enum conn_kind kind, const struct pconn_ops *ops,
			 void *owner);
/* Closes the socket (a RST if rst, else a TLS close_notify when it is up)
 * and frees pc.  Off its owner's list first.  NULL ok. */
void pconn_close(struct pconn *pc, bool rst);
/* pconn_close of every pconn on l; the number closed. */
int pconn_close_all(struct list *l, bool rst);
/* After ops->ready or ops->frame returned 1: the fd and the wire are the
 * caller's (out of the loop, timer cancelled); frees the rest of pc. */
void pconn_release(struct pconn *pc, struct wire *w);
/* Queues a frame and writes what it can.  0 or -errno. */
int pconn_send(struct pconn *pc, const uint8_t *frame, size_t len);
/* Writes what is queued (and waits for room when it cannot).  0 or -errno. */
int pconn_flush(struct pconn *pc);
/* Arms (or with 0, cancels) a deadline after which ops->fail(-ETIMEDOUT). */
void pconn_deadline(struct pconn *pc, uint64_t ms);
