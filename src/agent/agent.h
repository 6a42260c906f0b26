/* `subway agent`: the sidecar of an injected workload's pods (docs/intercepts.md).
 *
 * It connects to the manager with the agents' token (CONN_AGENT, TLS to the
 * pinned certificate), says who it is (AGENT_HELLO: the pod, its workload,
 * the app's ports and environment), and serves the intercepts the manager
 * sends (AGENT_RULES): while one is active on a port, that port's incoming
 * TCP is redirected to the agent (agent/nft.h), and each connection goes
 *   global             to the laptop whole: a stream the agent opens on its
 *                      connection to the manager (naming the intercept),
 *                      which carries it to the laptop;
 *   personal, mirror   through the HTTP routing proxy (agent/hproxy.h),
 *                      request by request to the app or the laptop of
 *                      the intercept whose filter it matches (every
 *                      intercept on the port at once);
 *   inactive, or the laptop unreachable   to the app, as if nobody were
 *                      there.
 * Without the manager nothing is redirected: the app serves alone.
 *
 * Ownership: struct agent owns its connection to the manager (a pconn, then
 * a mux), its listener, its nf_tables socket and every connection it serves. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "agent/nft.h"
#include "common/list.h"
#include "common/loop.h"
#include "net/listener.h"
#include "net/mux.h"
#include "net/pconn.h"
#include "proto/intercept.h"

#define AGENT_PORT 15001           /* where redirected connections arrive */
#define AGENT_HEARTBEAT_MS 5000
#define AGENT_STATS_MS 1000         /* new counts reach the manager within this */
#define AGENT_DEAD_MS 15000        /* the manager silent this long is gone */
#define AGENT_BACKOFF_MIN_MS 200
#define AGENT_BACKOFF_MAX_MS 5000
#define AGENT_CONNS_MAX 8192
#define AGENT_ACCEPTS 64
#define AGENT_UDP_FLOWS 256        /* clients of one intercepted UDP port at once */
#define AGENT_UDP_IDLE_MS 60000    /* a UDP client silent this long is forgotten */
#define AGENT_DIR_DEFAULT "/var/run/secrets/subway-agent"

struct agent_cfg {
	uint32_t mgr_addr;
	uint16_t mgr_port;
	char dir[256];             /* agent-token, cert.pem */
	uint16_t listen_port;
	struct msg_agent_hello hello; /* pod, workload, ports, environment */
	char *env;                 /* hello.env's bytes */
};

struct agent {
	struct loop *loop;
	struct agent_cfg cfg;
	struct pconn_cfg pcfg;     /* the manager, the token, the pinned certificate */
	struct pconn *pc;          /* connecting, or NULL */
	struct mux *mx;            /* the connection once up, or NULL */
	uint64_t last_ms;          /* the manager's last frame */
	uint64_t backoff_ms;
	struct loop_timer timer;   /* heartbeats and stats while up; the next attempt while down */
	struct loop_timer stats;   /* new counts go within AGENT_STATS_MS */
	struct msg_agent_rules rules;
	struct agent_nft nft;
	struct listener ls;
	struct list conns;         /* struct aconn */
	struct list routes;        /* struct aroutes: per port, of its HTTP proxies */
	struct list uports;        /* struct uport: intercepted UDP ports */
	struct loop_timer usweep;  /* idle UDP clients go */
	unsigned n_conns;
	int sig_fd;
	/* counters since the last AGENT_STATS, per rule (same order as rules) */
	uint64_t requests[ICEPT_RULES_MAX], dropped[ICEPT_RULES_MAX];
};
