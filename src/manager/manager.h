/* The manager: the cluster side of the tunnel.
 *
 *   manager.c  arguments, the listener, signals, the dial policy, counters
 *   conn.c     accepted connections until they authenticate
 *   session.c  a session: its control connection (CLUSTER_INFO, heartbeats,
 *              UDP, pings, DNS)
 *   flow.c     a pooled flow connection: one DIAL, then spliced bytes
 *   trunk.c    a trunk: flows as streams (net/mux.h)
 *   dial.c     every dial for a flow, whichever carries it
 *   udp.c, icmp.c, dns.c  datagrams, echo requests and DNS for the sessions
 *
 * Ownership: struct mgr owns the listener, the pre-auth connections
 * (struct conn), the sessions, the ICMP and DNS forwarders.  A session owns
 * its control connection, its flow connections (struct flow), its trunks
 * and its UDP flows.  A conn that authenticates hands its fd and wire to a
 * new session, flow or trunk and frees itself.  Everything runs in one
 * event loop thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/list.h"
#include "common/loop.h"
#include "net/listener.h"
#include "common/util.h"
#include "proto/auth.h"
#include "proto/frame.h"

/* Limits, with the reason for each. */
#define MGR_PREAUTH_MAX 256          /* idle unauthenticated conns; the oldest is dropped */
#define MGR_AUTH_TIMEOUT_MS 5000     /* a handshake not done by then is dropped */
#define MGR_ACCEPT_BATCH 64          /* accepts per wakeup: bounded work */
/* Defaults of --limit KEY=N (struct mgr_limits; docs/security.md). */
#define MGR_SESSIONS_MAX 256         /* sessions at once: each has the limits below */
#define MGR_SESSION_FLOWS_MAX 16384  /* TCP flows of a session (flow connections or streams) */
#define MGR_SESSION_TRUNKS_MAX 16    /* trunk connections of a session (the daemon opens 2 per lane, 4 lanes at most) */
#define MGR_WORKERS_MAX 4            /* --threads: workers for lane trunks (worker.h) */
#define MGR_SESSION_DIALS_MAX 512    /* dials in progress per session */
#define MGR_SESSION_DIAL_RATE 20000  /* dials per second per session, sustained (above the daemon's own 10,000/s) ... */
#define MGR_SESSION_DIAL_BURST 20000 /* ... and at once */
#define MGR_SESSION_UDP_MAX 1024     /* UDP flows per session */
#define MGR_SESSION_PINGS_MAX 64     /* echo requests in flight per session */
#define MGR_SESSION_DNS_MAX 256      /* DNS queries in flight per session */
#define MGR_UDP_IDLE_MS 60000
#define MGR_UDP_READS 32             /* datagrams read per UDP flow per wakeup */
#define MGR_UDP_BUCKET_BITS 8        /* 256 chains of UDP flows by id, per session */
#define MGR_PING_MAX 1024            /* echo requests in flight, all sessions */
#define MGR_PING_TIMEOUT_MS 2000
#define MGR_DNS_MAX 1024             /* DNS queries in flight, all sessions */
#define MGR_DNS_TIMEOUT_MS 5000
#define MGR_DNS_QUERY_MAX 1024       /* queries kept for a retry over TCP; longer ones are not retried */
#define MGR_DNS_TCP_MAX 64           /* TCP retries in flight, all sessions */
#define MGR_TOKENS_MAX 16            /* --token-file, given several times */
#define MGR_LAPTOP_QUIET_MS 3500     /* a session holding intercepts silent this long is gone */
#define MGR_CLOSE_LINGER_MS 2000     /* time to flush a last frame before closing */
#define MGR_TOS_DEFAULT 0x04         /* DSCP 1 (LE, RFC 8622): rare in clusters, ECN bits clear */
#define MGR_DIAL_TIMEOUT_DEFAULT 5000

struct mgr_limits {
	uint32_t sessions, flows, dials, dial_rate, dial_burst, udp;
};

/* A laptops' token (--token-file, several for several teams): a laptop
 * proves one, and may intercept in the namespaces it covers. */
struct mgr_token {
	const char *path;
	struct auth_token tok;
	char namespaces[AUTH_NAMESPACES_MAX]; /* "": every one */
};

struct mgr_config {
	uint32_t listen_addr;
	uint16_t listen_port;
	int n_tokens;
	struct mgr_token tokens[MGR_TOKENS_MAX];
	const char *agent_token_path; /* --agent-token-file: agents prove this one */
	struct auth_token agent_token;
	bool agents;                  /* ... and so they are taken */
	struct cidr_list pod, svc;
	char domain[64];
	uint32_t dns; /* 0: none known */
	uint16_t dns_port;
	int n_nodes;
	uint32_t nodes[PROTO_NODES_MAX];
	uint8_t tos;
	uint32_t dial_timeout_ms;
	const char *log_path;
	bool verbose;
	bool insecure;         /* plaintext TCP: no TLS */
	const char *tls_dir;   /* key.pem + cert.pem, created at first start */
	const char *cert_path; /* or given as files */
	const char *key_path;
	bool print_fingerprint;
	struct mgr_limits lim;
	int threads;           /* --threads: 0 for the default (the cores, at most MGR_WORKERS_MAX) */
	const char *flags[INFO_SRC_MAX_]; /* --pod-cidr ... as given, for discovery */
	uint8_t src[INFO_SRC_MAX_];       /* where each value came from (discover.h) */
};

/* Counters; kept together so that a status report can show them. */
struct mgr_stats {
	uint64_t conns_accepted, preauth_dropped, auth_ok, auth_failed, auth_timeouts;
	uint64_t sessions_total, sessions_active;
	uint64_t flows_active, flows_total; /* relayed TCP flows */
	uint64_t dials[DIAL_STATUS_MAX_];
	uint64_t bytes_up, bytes_down; /* TCP and UDP payload: laptop->cluster, back */
	uint64_t udp_flows_active, udp_flows_total, udp_dgrams_up, udp_dgrams_down;
	uint64_t udp_dropped;
	uint64_t pings, pongs, ping_timeouts;
	uint64_t dns_queries, dns_replies, dns_dropped, dns_tcp;
	uint64_t frames_bad;
	uint64_t tls_ok, tls_resumed, tls_failed;
	/* not an open proxy: what policy refused, and what limits cut */
	uint64_t forbidden_tcp, forbidden_udp, forbidden_icmp;
	uint64_t limit_sessions, limit_flows, limit_dials, limit_rate, limit_udp;
	/* intercepts: agents refused (a pod's address it does not connect from,
	 * a pod another agent holds), requests outside the token's namespaces */
	uint64_t agents_refused, intercepts_forbidden;
};

/* Counters that the workers (worker.h) touch too: added atomically. */
#define MGR_ST_ADD(m, field, n) ((void)__atomic_fetch_add(&(m)->st.field, (n), __ATOMIC_RELAXED))

struct conn;
struct session;
struct mworker;
struct flow;
struct udp_flow;

struct ping_slot; /* icmp.c */
struct dns_slot;  /* dns.c */

struct mgr {
	struct loop *loop;
	struct mgr_config cfg;
	struct mgr_stats st;
	struct listener listener; /* tunnel connections */
	int sig_fd;
	int n_own; /* own addresses for CLUSTER_INFO (no loopback) */
	uint32_t own[PROTO_MANAGERS_MAX];
	int n_local; /* every local address, for the "not my listener" rule */
	uint32_t local[64];
	struct list preauth; /* struct conn, oldest first */
	unsigned n_preauth;
	struct list sessions;
	int ping_fd;
	bool ping_raw;
	uint16_t ping_ident;
	struct ping_slot *pings;
	unsigned n_reqs[2];  /* in flight, all sessions: pings, DNS queries (enum sreq_kind) */
	int dns_fd;
	uint64_t dns_tried_ms; /* last attempt to open dns_fd */
	struct dns_slot *dns;
	unsigned n_dns_tcp;
	uint8_t scratch[FRAME_MAX]; /* one datagram or frame at a time */
	int exit_code;
	struct ssl_ctx_st *tls_ctx; /* NULL with --insecure */
	uint8_t fingerprint[32];
	/* intercepts (intercept.h, agent.h) */
	struct list agents;     /* struct agent */
	unsigned n_agents;
	struct list intercepts; /* struct icept */
	unsigned n_intercepts;
	uint32_t next_icept_id;
	struct list links;      /* connections being carried to laptops */
	struct loop_timer icept_timer;
	uint64_t icept_state_ms;
	/* --threads: the workers that carry the laptops' lane trunks (worker.h) */
	int n_workers;
	struct mworker *workers[MGR_WORKERS_MAX];
	unsigned next_worker;
};

/* manager.c */
/* Counts and logs (rate-limited) a destination refused by policy. */
void mgr_forbidden(struct mgr *m, const char *session, const char *proto, uint32_t addr, uint16_t port);
bool mgr_addr_allowed(const struct mgr *m, uint32_t addr);
bool mgr_dial_allowed(const struct mgr *m, uint32_t addr, uint16_t port);
const char *mgr_peer_str(uint32_t addr, uint16_t port, char buf[24]);
void mgr_log_stats(const struct mgr *m);
