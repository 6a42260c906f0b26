/* ICMP echo for the sessions: one ping (or raw) socket for the manager,
 * the requests in flight in a fixed table of slots.
 *
 * Ownership: struct mgr owns the socket and the table (m->pings); a slot
 * belongs to the session that asked until it is answered or times out. */
#pragma once

struct mgr;
struct session;
struct msg_ping;

int icmp_init(struct mgr *m); /* 0 or -errno; no ICMP socket is not an error */
void icmp_fini(struct mgr *m);
/* A PING from the daemon: sent, or answered at once (unreachable). */
void icmp_ping(struct session *s, const struct msg_ping *p);
/* Frees the requests of s, unanswered. */
void icmp_forget(struct session *s);
