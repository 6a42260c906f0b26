/* Intercepts (docs/intercepts.md): a laptop takes a workload's port; the
 * workload's agents send that port's connections (global), or the HTTP
 * requests that match a filter (personal), or copies of them (mirror), to
 * the manager, which carries each to the laptop as a stream it opens on
 * one of the laptop's trunks.
 *
 * An intercept belongs to a client (the daemon's id, the same across its
 * reconnects), not to a session: when the session ends it turns INACTIVE
 * (the agents serve the app again) and waits MGR_INTERCEPT_TTL_MS for the
 * client to come back and ask again (ACTIVE again), then it goes.
 *
 * Ownership: struct mgr owns every struct icept (m->intercepts) and every
 * struct ilink (a connection being carried: the agent's stream, the
 * laptop's stream, and the socketpair between them). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/list.h"
#include "net/mux.h"
#include "proto/intercept.h"

#define MGR_INTERCEPT_TTL_MS 120000  /* an INACTIVE intercept waits this long for its laptop */
#define MGR_INTERCEPT_SWEEP_MS 1000
#define MGR_INTERCEPTS_MAX 256       /* in all */
#define MGR_INTERCEPTS_PER_SESSION 32
#define MGR_STATE_EVERY_MS 2000      /* INTERCEPT_STATE to the laptop, besides changes */

struct mgr;
struct session;
struct agent;

struct icept {
	struct mgr *m;
	struct list link;        /* m->intercepts */
	uint32_t id;
	struct msg_intercept req; /* as asked (name, workload, filter, holder, client) */
	uint16_t port;           /* the container port resolved */
	uint8_t proto;
	struct session *s;       /* the laptop's session; NULL while INACTIVE */
	uint64_t inactive_ms;    /* when it became INACTIVE */
	uint8_t state_sent;      /* the last state the laptop heard */
	uint64_t connections, requests, dropped;
};

/* The manager's intercepts start empty, with a sweep timer. */
void intercept_init(struct mgr *m);
void intercept_fini(struct mgr *m);

/* Frames from a laptop's control connection: INTERCEPT, LEAVE, LIST, ENV.
 * 0, or -EBADMSG (the session ends). */
int intercept_frame(struct session *s, uint8_t type, const uint8_t *p, size_t len);
/* The session ended: its intercepts turn INACTIVE. */
void intercept_session_lost(struct session *s);
/* An agent came, changed or went: the workload's intercepts are sent to
 * its agents again, and their states to the laptops. */
void intercept_agents_changed(struct mgr *m, const char *ns, const char *workload);
/* The rules an agent of ns/workload serves now. */
void intercept_rules_for(struct mgr *m, const char *ns, const char *workload, struct msg_agent_rules *out);
/* An agent asks to carry a connection of intercept id (its stream st_id
 * on mx): the manager opens a stream to the laptop; the agent hears the
 * answer on its stream. */
void intercept_carry(struct agent *a, struct mux *mx, uint32_t st_id, uint32_t id);
/* Counters an agent reports for its intercepts. */
void intercept_stats(struct agent *a, const struct msg_agent_stats *st);

/* The trunks' callbacks for the streams the manager opened toward the
 * laptop (even ids): how the laptop answered, and their end. */
void intercept_link_result(struct mux_stream *st, uint8_t status);
void intercept_link_done(struct mux_stream *st, int err);
/* The agents' streams (the agent's end of a carried connection) end. */
void intercept_agent_stream_done(struct mux_stream *st, int err);
