/* Lanes: the data path split over threads (`connect --threads N`).
 *
 * Each lane has its own event loop, its own queue of the VIF, its own
 * hairpin (a listener, a share of the NAT addresses, its flows) and its
 * own connections to the manager (trunks, or the pool with --insecure),
 * opened when its first flow comes.
 * The VIF's steering program (vif_steer) puts both directions of every
 * hairpinned TCP flow on the queue of the lane that took its SYN, for the
 * flow's whole life, so a flow never leaves its lane and lanes share no
 * flow state.  Lane 0 runs on the daemon's own thread and also carries
 * everything else: UDP, ICMP, DNS, the control connection, intercepts.
 *
 * What lanes share: the loop guard and the caps (hairpin.h; under
 * d->guard_mu), the TLS context, and the daemon's settings, which do not
 * change while lanes run.  Each lane counts in its
 * own struct counters; status sums them.  Lane 0 tells the others of the
 * session through their mailbox (an eventfd and a few flags under a
 * mutex): up, lost, stop, and destinations the loop guard refused.
 *
 * Ownership: the daemon owns the lanes (d->lanes); a lane owns its loop,
 * its thread, its hairpin and its transports.  Lane 0's loop and tunnel
 * are the daemon's. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "daemon/hairpin.h"
#include "daemon/tunnel.h"
#include "vif/vif.h"

#define LANES_MAX VIF_QUEUES_MAX
#define LANE_REFUSE_MAX 32 /* refused destinations waiting in a mailbox */

struct daemon;

/* What every lane counts (summed by status: only uint64_t in here). */
struct counters {
	uint64_t dials, dials_ok;
	uint64_t dial_fail[DIAL_STATUS_MAX_];
	uint64_t bytes_out, bytes_in; /* to the cluster, from the cluster: flows that ended */
	uint64_t tcp_flows_total, udp_flows_total;
	uint64_t udp_out, udp_in, udp_dropped;
	uint64_t pings, pongs;
	uint64_t pkts_in, pkts_dropped;
	uint64_t reconnects;
	/* loop guard (docs/vm-networking.md): what it refused, per kind */
	uint64_t loops_tcp, loops_udp, loops_dns, loops_icmp;
	uint64_t dials_limited; /* refused by the daemon's own caps */
	uint64_t failed_down;   /* connects, datagrams and pings refused while the tunnel was down */
};

/* A lane's numbers for status, published by the lane itself. */
struct lane_stats {
	uint32_t n_tcp, n_flows;
	uint64_t live_bytes[2]; /* of the flows still moving */
};

struct lane {
	struct daemon *d;
	int id;
	struct loop *loop;   /* lane 0: the daemon's */
	int vif_fd;          /* its queue of the VIF */
	struct hairpin hp;
	struct tunnel *tun;  /* lane 0: the daemon's; the others: own (transports only) */
	struct tunnel own;
	struct counters c;
	bool pkt_partial;    /* pkt's L4 checksum is left to the kernel (vif_read) */
	uint8_t pkt[65536];
	uint8_t out[65536 + 64]; /* a packet being built */
	/* lanes 1..: the thread, and the mailbox lane 0 writes */
	pthread_t thread;
	bool started, stopped;
	unsigned seen_gen;   /* the session generation the lane follows */
	bool is_up;          /* ... and whether it was up */
	int evfd;
	pthread_mutex_t mu;  /* the mailbox and stats */
	/* mailbox: the session as lane 0 last saw it (gen counts changes) */
	unsigned gen;
	bool want_up, stop;
	uint8_t session[PROTO_SESSION_LEN];
	int n_refuse;
	struct { uint32_t dst; uint16_t dport; } refuse[LANE_REFUSE_MAX];
	struct lane_stats stats;
	struct loop_timer stats_timer;
};

/* Lane 0 for the daemon's own loop and tunnel, or NULL (no memory). */
struct lane *lane_new0(struct daemon *d);
/* Lanes 1..n-1 on their own threads, reading queues 1..n-1 of d->vif,
 * their hairpins open.  Lane 0's hairpin opens here too.  0 or -errno. */
int lanes_start(struct daemon *d);
/* The session is up: the other lanes' transports follow it (with the
 * session's id from the daemon's tunnel, for their AUTH). */
void lanes_session_up(struct daemon *d);
/* The session is lost: the other lanes' apps hear it (hairpin_abort_all). */
void lanes_session_lost(struct daemon *d);
/* Every lane but 0 stops: its flows reset (final), its RSTs read off its
 * queue, its thread joined.  Lane 0 is left to the caller. */
void lanes_stop(struct daemon *d);
void lanes_free(struct daemon *d);

/* The loop guard saw a loop to dst:dport: every lane's dials there fail. */
void lanes_refuse_dst(struct daemon *d, struct lane *self, uint32_t dst, uint16_t dport);
/* TCP dials in flight in every lane (the loop guard's load), and the
 * flows holding fds (hairpin_held). */
uint32_t lanes_dialing(const struct daemon *d);
uint32_t lanes_held(const struct daemon *d);
/* Every lane's counters added up, and their flows' numbers. */
void lanes_counters(const struct daemon *d, struct counters *sum);
void lanes_stats(struct daemon *d, struct lane_stats *sum);

/* A packet to the lane's VIF queue: 0, or -EIO (counted as dropped). */
int lane_vif_write(struct lane *ln, const void *p, size_t len, bool partial);
/* The RSTs the kernel wrote for the lane's reset connections (their
 * sockets closed) read off its queue and passed on before the VIF goes.
 * Bounded: a few reads, each waiting at most 10 ms. */
void lane_drain(struct lane *ln);
/* The lane's packets from its queue (the loop's handler). */
void lane_vif_event(struct loop *l, int fd, uint32_t events, void *arg);
