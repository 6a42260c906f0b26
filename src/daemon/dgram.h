/* UDP and ICMP echo (ARCHITECTURE.md, "The data path"): datagrams read
 * from the VIF are relayed as frames on the control connection; the
 * manager's answers are built into packets and written to the VIF.
 * Per-flow state expires after UDP_IDLE_MS.
 *
 * Ownership: struct dgram (in struct daemon) owns its flow tables and
 * every struct uflow. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/idtab.h"
#include "common/list.h"
#include "common/loop.h"
#include "proto/frame.h"

#define UDP_IDLE_MS 60000
#define UDP_FLOWS_MAX 4096
#define DGRAM_PINGS 256 /* echo requests remembered for their replies */
#define DGRAM_ID_BITS 12 /* 4096 chains of flows by id */

struct daemon;
struct pkt4;

struct uflow {
	struct idtab_node hn; /* by id (hn.id), in g->ids */
	uint32_t src, dst;
	uint16_t sport, dport;
	uint64_t last_ms;
	bool guarded;        /* counted in flight by the loop guard until the first reply */
	uint64_t sent_us;    /* its first datagram went out */
	struct uflow *hnext; /* by 4-tuple */
	struct list link;    /* every flow, for expiry */
};

struct dgram_ping {
	uint32_t id;
	uint32_t src, dst;
	uint64_t sent_us;
	bool guarded; /* in flight for the loop guard until its PONG */
};

struct dgram {
	struct daemon *d; /* shared state: counters, guard, VIF, tunnel */
	struct uflow **utab;  /* by 4-tuple */
	struct idtab ids;
	struct idtab_node *id_buckets[1u << DGRAM_ID_BITS];
	uint32_t utab_size, n_udp, next_uid;
	struct list flows;
	struct loop_timer sweep;
	struct dgram_ping pings[DGRAM_PINGS];
	uint32_t ping_next;
};

/* 0 or -ENOMEM. */
int dgram_init(struct dgram *g, struct daemon *d);
/* Forgets every flow.  Safe on a zeroed struct. */
void dgram_fini(struct dgram *g);
/* The session is gone: every flow is forgotten (the manager's went with
 * it); an app's next datagram makes a new one, or is refused. */
void dgram_reset(struct dgram *g);
/* A UDP datagram or an ICMP packet read from the VIF (parsed once). */
void dgram_udp_from_vif(struct dgram *g, const struct pkt4 *p);
void dgram_icmp_from_vif(struct dgram *g, const struct pkt4 *p);
/* The manager's answers. */
void dgram_udp_from_tunnel(struct dgram *g, const struct msg_udp *m);
void dgram_icmp_from_tunnel(struct dgram *g, const struct msg_pong *m);
