/* Sessions: one per authenticated control connection.  The control
 * connection carries CLUSTER_INFO, heartbeats, UDP, ICMP echo and DNS;
 * when it goes away, everything of the session goes with it and its TCP
 * flows are reset.
 *
 * Ownership: struct mgr owns the sessions (m->sessions); a session owns its
 * control connection's fd and wire, its flows, trunks and UDP flows. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/idtab.h"
#include "common/list.h"
#include "manager/manager.h"
#include "net/wire.h"
#include "proto/intercept.h"

struct udp_flow;

/* Requests the manager forwards for a session, each in a slot of a table
 * the manager preallocates (icmp.c, dns.c): counted per session and in
 * all, and on the session's list while in flight, so that the session's
 * end finds its own. */
enum sreq_kind { SREQ_PING, SREQ_DNS, SREQ_KINDS };

struct sreq {
	struct mgr *m;
	struct session *s;       /* NULL: the slot is free */
	struct list link;        /* s->reqs[kind] */
	struct loop_timer timer;
};

/* What a session's dials and trunks count, shared with the workers that
 * carry its lane trunks (worker.h): the counts are atomic, the dial rate
 * bucket under mu.  It lives as long as its last holder (the session, a
 * worker's trunk, a trunk on its way to a worker). */
struct sess_share {
	struct mgr *m;
	unsigned refs;         /* atomic */
	bool ended;            /* atomic: the session is over, its lane trunks close */
	unsigned n_flows, n_dials, n_trunks; /* atomic */
	pthread_mutex_t mu;
	uint64_t dial_tokens;  /* dial rate bucket, in thousandths of a dial */
	uint64_t dial_ms;      /* when it was last filled */
	char name[24];         /* the session's, for logs */
};

struct sess_share *sess_share_ref(struct sess_share *sh);
void sess_share_unref(struct sess_share *sh);
static inline unsigned sess_count(const unsigned *n) { return __atomic_load_n(n, __ATOMIC_RELAXED); }
static inline void sess_add(unsigned *n, int d) { __atomic_fetch_add(n, (unsigned)d, __ATOMIC_RELAXED); }

struct session {
	struct mgr *m;
	struct sess_share *sh;
	uint8_t id[PROTO_SESSION_LEN];
	struct wire w;
	struct list link;  /* m->sessions */
	struct list flows; /* struct flow */
	struct list trunks; /* struct trunk */
	struct list reqs[SREQ_KINDS]; /* struct sreq in flight (in ping_slot, dns_slot) */
	unsigned n_reqs[SREQ_KINDS];
	struct idtab udp; /* struct udp_flow, by id */
	struct idtab_node *udp_buckets[1u << MGR_UDP_BUCKET_BITS];
	unsigned n_udp, n_intercepts;
	uint64_t rx_ms;       /* when the control connection last brought bytes */
	uint32_t peer;
	uint16_t peer_port;
	int token;         /* the index of the token it proved (m->cfg.tokens) */
	bool has_icept_client;            /* its daemon's id for intercepts, once it asked for one */
	uint8_t icept_client[ICEPT_CLIENT_LEN];
	char client[PROTO_NAME_MAX];
	char name[24]; /* short id for logs */
};

/* A free slot's request now belongs to s (counted); its timer is armed
 * by the caller. */
void sreq_begin(struct sreq *r, struct session *s, enum sreq_kind k);
/* ... and is over: timer cancelled, uncounted, the slot free again. */
void sreq_end(struct sreq *r, enum sreq_kind k);

/* Takes fd and the wire's buffers (w is zeroed); 0 or -errno. */
int session_new(struct mgr *m, struct wire *w, const uint8_t id[PROTO_SESSION_LEN],
		uint32_t peer, uint16_t peer_port, const char *client, int token);
/* The session's token covers namespace ns (intercepts, LIST, ENV). */
bool session_covers(const struct session *s, const char *ns);
struct session *session_find(struct mgr *m, const uint8_t id[PROTO_SESSION_LEN]);
void session_free(struct session *s);
/* Queueing on the control connection: p = session_reserve(s, n) (NULL
 * when the queue is full: drop the message), encode into p, then
 * session_commit(s, len); session_kick(s) once a batch is queued.  Safe
 * from any handler: a write error is dealt with in the session's own. */
uint8_t *session_reserve(struct session *s, size_t n);
void session_commit(struct session *s, size_t n);
void session_kick(struct session *s);
/* Called every second for a session holding intercepts: it must answer
 * a heartbeat within MGR_LAPTOP_QUIET_MS, or it is gone (its intercepts
 * turn INACTIVE and the agents serve the app).  May free s. */
void session_check_alive(struct session *s, uint64_t now);
