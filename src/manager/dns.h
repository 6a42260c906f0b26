/* DNS for the sessions: queries to the cluster's DNS server, over UDP with
 * a fresh random ID each (TCP for a truncated answer), in a fixed table of
 * slots.
 *
 * Ownership: struct mgr owns the socket and the table (m->dns); a slot
 * belongs to the session that asked until it is answered or times out. */
#pragma once

struct mgr;
struct session;
struct msg_dns;

int dns_init(struct mgr *m); /* 0 or -errno; no DNS server yet is not an error */
void dns_fini(struct mgr *m);
/* A DNS_QUERY from the daemon: sent, or dropped (then the daemon times out). */
void dns_query(struct session *s, const struct msg_dns *q);
/* Frees the queries of s, unanswered. */
void dns_forget(struct session *s);
