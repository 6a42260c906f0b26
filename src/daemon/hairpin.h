/* TCP through the hairpin NAT (ARCHITECTURE.md, "The data path"): the
 * kernel terminates every app's connection on a local listener, and each
 * flow's bytes travel on a carrier (carrier.h).
 *
 *   app S:sp -> D:dp   SYN held; the carrier asks the manager to dial
 *                      D:dp; on success the SYN is written back as
 *                      F:np -> S:L
 *   listener S:L       accepts; the flow's carrier is bound to the socket
 *   S:L -> F:np        rewritten to D:dp -> S:sp
 *
 * Each lane (lane.h) has a hairpin of its own, and its flows never leave it.
 *
 * Ownership: struct hairpin (in struct lane) owns the listener, the NAT
 * table and every struct tflow; a tflow owns its carrier and, until the
 * carrier is bound and after it is done, the accepted socket. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "common/loop.h"
#include "daemon/carrier.h"
#include "daemon/nat.h"
#include "net/listener.h"

#define HAIRPIN_FLOWS_MAX 100000   /* NAT table entries */
#define LINGER_MS 60000            /* NAT mapping kept after the flow ends, while packets still pass */
#define LINGER_DONE_MS 2000        /* ... once both FINs (or a RST) have crossed */
#define DRAIN_CHECK_MS 250
#define DRAIN_MAX_MS (15 * 60 * 1000)
#define HAIRPIN_GRACE_MS 2000      /* a new connection waits this long for a lost session to return */

/* The daemon's own caps (docs/vm-networking.md): with or without the loop
 * guard, a storm is bounded by these, never by running out of fds. */
#define DIALS_MAX 512            /* dials in flight per session: the manager allows as many, and counts
                                  * later (the daemon counts a dial before the manager sees it) */
#define DIAL_RATE_PER_S 10000    /* new dials per second, sustained ... */
#define DIAL_BURST 1000          /* ... and in a burst */
#define TCP_FLOWS_CAP 32768      /* TCP flows per session, lowered to fit RLIMIT_NOFILE */
#define FDS_RESERVED 256         /* fds kept for the pool, the control socket, logs */

struct daemon;
struct lane;
struct pkt4;

enum tflow_state { TF_DIALING, TF_ACCEPTING, TF_RELAY, TF_LINGER };

struct tflow {
	struct hairpin *h;
	struct nat_key key;
	struct nat_tuple tup;
	enum tflow_state state;
	struct carrier car;
	struct loop_timer timer;
	struct list link;   /* h->flows */
	struct list dlink;  /* h->dialing, while TF_DIALING */
	uint64_t wait_until; /* waiting for the tunnel: fail it then (EHOSTUNREACH) */
	uint16_t syn_len;
	uint8_t syn[120];   /* the app's SYN, held until the dial's outcome */
	bool guarded;       /* counted in flight by the loop guard's chain layer */
	bool guard_queued;  /* ... and waiting for a connection to the manager */
	uint64_t sent_us;   /* when its open went out */
	bool fin_app, fin_lst, rst; /* seen crossing the VIF */
	bool aborted;       /* the carrier ended before accept(): the app gets a RST then */
	int drain_fd;       /* accepted socket kept open until its send queue is empty */
	uint64_t drain_until;
};

struct hairpin {
	struct daemon *d;   /* shared state: the loop guard, the settings */
	struct lane *ln;    /* its lane (lane.h): loop, VIF queue, counters, transports */
	struct listener ls; /* on VIF_ADDR */
	uint16_t lport;
	struct nat_table *nat;
	struct list flows;  /* every struct tflow */
	struct list dialing; /* the flows in TF_DIALING (at most DIALS_MAX) */
	uint32_t grace_ms;  /* a connect waits this long for the tunnel (HAIRPIN_GRACE_MS) */
	uint32_t n_tcp;     /* flows connected (accepting or relaying) */
	uint32_t n_draining;         /* ended, the accepted socket kept until its queue drains */
	/* Every TCP flow, whatever its state (HAIRPIN_FLOWS_MAX bounds it: the
	 * NAT table); the daemon's caps (struct hairpin_caps) count the lanes'
	 * flows holding fds (dialing, connected, draining) together: a flow
	 * that only lingers (its mapping kept for the last FIN/ACKs) holds none. */
	uint32_t n_flows;
	uint32_t n_dialing; /* this lane's (the caps count all lanes') */
};

/* The daemon's caps, shared by its lanes: dials in flight (DIALS_MAX),
 * one count that a dial takes its place in before it is admitted, so
 * never passed; flows holding fds (flows_max, fitted to RLIMIT_NOFILE),
 * summed over the lanes, each lane's count read as it is, so lanes
 * admitting at the same moment may pass it by one each; the dial rate's
 * token bucket (under the loop guard's lock). */
struct hairpin_caps {
	uint32_t flows_max;
	uint32_t n_dialing, dialing_peak; /* all lanes' dials in flight (atomic), and their most */
	uint64_t dial_tokens; /* token bucket of DIAL_RATE_PER_S, in millionths of a dial */
	uint64_t dial_tokens_us;
};
void hairpin_caps_init(struct hairpin_caps *c);

/* Flows holding fds in h (the caps' measure). */
static inline uint32_t hairpin_held(const struct hairpin *h)
{
	return __atomic_load_n(&h->n_dialing, __ATOMIC_RELAXED) + __atomic_load_n(&h->n_tcp, __ATOMIC_RELAXED) +
	       __atomic_load_n(&h->n_draining, __ATOMIC_RELAXED);
}
/* Opens the lane's listener; a connect waits grace_ms for a lost session.  0 or -errno. */
int hairpin_init(struct hairpin *h, struct lane *ln, uint32_t grace_ms);
/* Every flow reset, the listener closed.  Safe on a zeroed hairpin. */
void hairpin_fini(struct hairpin *h);
/* A TCP segment read from the VIF (parsed once, by the caller). */
void hairpin_from_vif(struct hairpin *h, struct pkt4 *p);
/* The tunnel is gone: every connection the apps hold is reset now (the
 * RSTs cross the VIF once the loop reads it); connects not answered yet
 * wait for the next session up to grace_ms, or, if final (the daemon
 * stops), fail at once with EHOSTUNREACH. */
void hairpin_abort_all(struct hairpin *h, bool final);
/* The loop guard saw a dial to dst:dport come back: the dials in flight
 * there fail as refused, as the cut loop's own RST would make them. */
void hairpin_refuse_dst(struct hairpin *h, uint32_t dst, uint16_t dport);
/* Bytes of the flows still moving: [0] to the cluster, [1] from it. */
void hairpin_bytes(const struct hairpin *h, uint64_t b[2]);
