/* Intercepts on the laptop (docs/intercepts.md): `subway intercept` asks
 * the manager for a workload's port; the manager then opens a stream
 * toward the laptop for each connection (or request) it takes, naming the
 * local address it asked for, and the daemon dials that address and
 * carries the stream there (carrier_accept: the same carrier interface as
 * the laptop's own flows, the other way).
 *
 * The daemon remembers its intercepts: after a reconnect it asks for them
 * again (the manager kept them INACTIVE, under the daemon's client id), and
 * on quit it leaves them.
 *
 * Ownership: struct intercepts (in struct daemon) owns every struct dicept
 * and every struct iflow (a connection carried to a local port). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/list.h"
#include "common/loop.h"
#include "daemon/carrier.h"
#include "proto/intercept.h"

#define DICEPT_MAX 32            /* intercepts one laptop holds */
#define DICEPT_ANSWER_MS 5000    /* the manager answers a request within this */
#define DICEPT_SETTLE_MS 2500    /* and the agents take an intercept within this, or it is WAITING */
#define DICEPT_UDP_IDLE_MS 60000 /* a UDP intercept's flow (one client) ends this long idle */
#define DICEPT_QUERIES 16        /* LIST and ENV requests waiting at once */

struct daemon;
struct ctl_req;
struct json;

struct dicept {
	struct list link;
	struct msg_intercept req;
	uint32_t id;        /* the manager's, once it said yes */
	uint16_t port;      /* the container port */
	uint8_t proto;      /* ... IPPROTO_TCP or IPPROTO_UDP */
	uint8_t state;      /* enum icept_state, as the manager last said; 0: not answered */
	uint16_t pods;
	uint64_t connections, requests, dropped;
	uint64_t bytes[2];  /* of its connections that ended: [0] to the laptop's port, [1] back */
	uint32_t token;     /* the `subway intercept` waiting for the answer, or 0 */
	uint64_t asked_ms;
};

struct intercepts {
	struct daemon *d;
	struct list list;   /* struct dicept */
	int n;
	struct list flows;  /* struct iflow */
	uint8_t client[ICEPT_CLIENT_LEN]; /* this daemon's id for the manager */
	struct {
		uint32_t id, token;
		uint8_t type;   /* FT_LIST or FT_ENV; 0: free */
		uint64_t at;
	} q[DICEPT_QUERIES];
	uint32_t next_q;
	struct loop_timer timer;
};

/* A random client id; the daemon's inbound handler.  0 or -errno. */
int intercepts_init(struct intercepts *is, struct daemon *d);
/* Leaves every intercept (if the manager is there), resets the flows. */
void intercepts_fini(struct intercepts *is);
/* intercept, leave, list, env from the control socket: 0 (the answer
 * comes through ctl_answer(token)), 1 (answered: msg), or -errno (msg). */
int intercepts_request(struct intercepts *is, const struct ctl_req *req, uint32_t token, char *msg, size_t len);
/* The manager's frames of the intercept family.  0 or -EBADMSG. */
int intercepts_frame(struct intercepts *is, uint8_t type, const uint8_t *p, size_t len);
/* A session (again): the intercepts are asked for again. */
void intercepts_session_up(struct intercepts *is);
void intercepts_status_json(const struct intercepts *is, struct json *j);
void intercepts_status_text(const struct intercepts *is, FILE *fp);
