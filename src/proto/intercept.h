/* Intercept messages (docs/protocol.md, "Intercepts"): the daemon asks the
 * manager for a workload's port, the manager tells the workload's agents
 * which ports to take and how, agents report themselves.  Pure codecs with
 * the frame rules of frame.h (str, data, big-endian integers). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/frame.h"

#define ICEPT_NAME_MAX 64     /* intercept, namespace, workload, pod names: 63 + NUL */
#define ICEPT_PORT_MAX 16     /* a container port's name: 15 + NUL (Kubernetes' IANA_SVC_NAME) */
#define ICEPT_HEADERS_MAX 4   /* --http-header conditions, ANDed */
#define ICEPT_HNAME_MAX 64
#define ICEPT_HVALUE_MAX 128
#define ICEPT_PATH_MAX 128
#define ICEPT_PORTS_MAX 16    /* ports an agent reports */
#define ICEPT_RULES_MAX 16    /* intercepts an agent serves at once */
#define ICEPT_CLIENT_LEN 16
#define ICEPT_ENV_MAX 60000   /* bytes of environment an agent reports */

enum icept_mode { ICEPT_GLOBAL = 1, ICEPT_PERSONAL = 2, ICEPT_MIRROR = 3 };
/* ACTIVE: the laptop holds it and a pod serves it; WAITING: no pod ready;
 * INACTIVE: the laptop stopped answering (kept for the session TTL). */
enum icept_state { ICEPT_ACTIVE = 1, ICEPT_WAITING = 2, ICEPT_INACTIVE = 3 };
enum icept_status { ICEPT_OK = 0, ICEPT_REFUSED = 1, ICEPT_UNKNOWN = 2, ICEPT_ERROR = 3, ICEPT_GONE = 4 };

/* Which HTTP requests a personal intercept (or a filtered mirror) takes:
 * every header condition (name case-insensitive, value exact) and the
 * path prefix, when given.  No condition: every request. */
struct icept_filter {
	uint8_t n_headers;
	char hname[ICEPT_HEADERS_MAX][ICEPT_HNAME_MAX];
	char hvalue[ICEPT_HEADERS_MAX][ICEPT_HVALUE_MAX];
	char path_prefix[ICEPT_PATH_MAX]; /* "" for none */
};

/* INTERCEPT, daemon -> manager: take a workload's port. */
struct msg_intercept {
	char name[ICEPT_NAME_MAX];
	char ns[ICEPT_NAME_MAX];
	char workload[ICEPT_NAME_MAX];
	char port[ICEPT_PORT_MAX];  /* the container port, a number or its name; "" for the only one */
	uint32_t local_addr;        /* where the daemon sends the connections */
	uint16_t local_port;
	uint8_t mode;               /* enum icept_mode */
	struct icept_filter filter;
	char holder[ICEPT_NAME_MAX];  /* user@host, for messages to others */
	uint8_t client[ICEPT_CLIENT_LEN]; /* the daemon's id, the same across reconnects */
	uint8_t resume;             /* 1: only take back one the manager still holds (ICEPT_GONE if not) */
};

/* INTERCEPT_RESULT, manager -> daemon. */
struct msg_intercept_result {
	char name[ICEPT_NAME_MAX];
	uint8_t status;   /* enum icept_status */
	uint32_t id;      /* the manager's id for it (0 unless ok) */
	uint16_t port;    /* the container port it resolved to (0 unless ok) */
	uint8_t proto;    /* ... IPPROTO_TCP or IPPROTO_UDP (0 unless ok) */
	char text[PROTO_TEXT_MAX]; /* why not, naming the holder; "" when ok */
};

/* INTERCEPT_STATE, manager -> daemon: on a change and every few seconds. */
struct msg_intercept_state {
	char name[ICEPT_NAME_MAX];
	uint8_t state;    /* enum icept_state */
	uint16_t pods;    /* pods whose agent is ready */
	uint64_t connections, requests, dropped; /* dropped: mirror copies */
};

/* AGENT_HELLO, agent -> manager: who it is, what the app listens on, and
 * the app's environment ("KEY=VALUE" entries, each NUL-terminated). */
struct icept_port {
	char name[ICEPT_PORT_MAX];  /* "" when unnamed */
	uint16_t port;
	uint8_t proto;              /* IPPROTO_TCP or IPPROTO_UDP */
};

struct msg_agent_hello {
	char pod[ICEPT_NAME_MAX];
	char ns[ICEPT_NAME_MAX];
	char workload[ICEPT_NAME_MAX];
	uint32_t pod_ip;
	uint8_t n_ports;
	struct icept_port ports[ICEPT_PORTS_MAX];
	const uint8_t *env;         /* points into the received frame */
	uint16_t env_len;
};

/* AGENT_RULES, manager -> agent: every intercept of its workload, whole. */
struct icept_rule {
	uint32_t id;
	uint16_t port;
	uint8_t proto;
	uint8_t mode;
	bool active;                /* inactive: the app serves it again */
	struct icept_filter filter;
};

struct msg_agent_rules {
	uint32_t gen;               /* counts the agent's rule sets; its stats name the last one applied */
	uint8_t n;
	struct icept_rule r[ICEPT_RULES_MAX];
};

/* AGENT_STATS, agent -> manager: per intercept, since the agent started. */
struct msg_agent_stats {
	uint32_t gen;               /* the last AGENT_RULES applied (redirects in place) */
	uint8_t n;
	struct {
		uint32_t id;
		uint64_t connections, requests, dropped;
	} s[ICEPT_RULES_MAX];
};

/* A request/answer pair with an id of the asker's: LIST (text: a namespace,
 * "" for all) -> LIST_REPLY (data: a JSON document); ENV (text: an
 * intercept's name) -> ENV_REPLY (data: "KEY=VALUE" NUL-terminated); LEAVE
 * (text: the name, id 0). */
struct msg_query {
	uint32_t id;
	char text[ICEPT_NAME_MAX];
	const uint8_t *data;        /* replies: points into the received frame */
	uint16_t len;
};

ssize_t msg_intercept_encode(uint8_t *out, size_t cap, const struct msg_intercept *m);
ssize_t msg_intercept_result_encode(uint8_t *out, size_t cap, const struct msg_intercept_result *m);
ssize_t msg_intercept_state_encode(uint8_t *out, size_t cap, const struct msg_intercept_state *m);
ssize_t msg_agent_hello_encode(uint8_t *out, size_t cap, const struct msg_agent_hello *m);
ssize_t msg_agent_rules_encode(uint8_t *out, size_t cap, const struct msg_agent_rules *m);
ssize_t msg_agent_stats_encode(uint8_t *out, size_t cap, const struct msg_agent_stats *m);
/* type: FT_LEAVE, FT_LIST, FT_ENV (text), FT_LIST_REPLY, FT_ENV_REPLY (data). */
ssize_t msg_query_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_query *m);

/* 0 or -EBADMSG; *m is zeroed first. */
int msg_intercept_decode(const uint8_t *p, size_t len, struct msg_intercept *m);
int msg_intercept_result_decode(const uint8_t *p, size_t len, struct msg_intercept_result *m);
int msg_intercept_state_decode(const uint8_t *p, size_t len, struct msg_intercept_state *m);
int msg_agent_hello_decode(const uint8_t *p, size_t len, struct msg_agent_hello *m);
int msg_agent_rules_decode(const uint8_t *p, size_t len, struct msg_agent_rules *m);
int msg_agent_stats_decode(const uint8_t *p, size_t len, struct msg_agent_stats *m);
int msg_query_decode(uint8_t type, const uint8_t *p, size_t len, struct msg_query *m);

struct http_filter;
/* The filter in the HTTP engine's terms (agent/http.h), checked as it
 * checks them: 0, or -EINVAL with err naming the bad header or path. */
int icept_filter_http(const struct icept_filter *in, struct http_filter *out, char *err, size_t errlen);
