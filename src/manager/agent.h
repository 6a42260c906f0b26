/* Agents' connections to the manager: a sidecar in each pod of an injected
 * workload authenticates with the agent token (CONN_AGENT), says who it is
 * (AGENT_HELLO: pod, workload, ports, environment), and from then on its
 * connection is a mux whose streams (opened by the agent) carry
 * intercepted connections; AGENT_RULES tells it what to take.
 *
 * Ownership: struct mgr owns the agents (m->agents); an agent owns its mux
 * and a copy of the environment it reported. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "common/list.h"
#include "net/mux.h"
#include "net/wire.h"
#include "proto/intercept.h"

#define MGR_AGENTS_MAX 512
#define MGR_AGENT_DEAD_MS 15000 /* an agent silent this long is gone */

struct mgr;

struct agent {
	struct mgr *m;
	struct mux *mx;
	struct list link;         /* m->agents */
	bool hello;               /* AGENT_HELLO received: h is valid */
	struct msg_agent_hello h; /* h.env points into env */
	uint8_t *env;
	uint64_t last_ms;         /* its last frame */
	char name[2 * ICEPT_NAME_MAX]; /* "ns/pod" for logs */
};

/* Takes an authenticated agent connection (fd and wire).  0 or -errno
 * (both closed then). */
int agent_new(struct mgr *m, struct wire *w, uint32_t peer, uint16_t peer_port);
void agent_free(struct agent *a);
void agent_free_all(struct mgr *m);
/* Agents silent for MGR_AGENT_DEAD_MS go (called every second). */
void agent_sweep(struct mgr *m);
/* The agent runs in a pod of ns/workload and said so. */
bool agent_serves(const struct agent *a, const char *ns, const char *workload);
/* Sends it the rules of its workload now. */
void agent_send_rules(struct agent *a);
