/* The loop guard in the daemon (docs/vm-networking.md): the guard's
 * decisions (guard.h, pure) turned into answers on the VIF, counters and
 * log lines.  A looped TCP SYN gets a RST, a looped UDP datagram an ICMP
 * port unreachable, a looped echo request nothing; none is forwarded. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#include "daemon/guard.h"

struct daemon;
struct lane;
struct pkt4;

/* A new session: the egress addresses and the mark from its CLUSTER_INFO. */
void loopguard_session(struct daemon *d);
/* Source and mark layers for a packet read from the VIF: true if it was a
 * loop (answered and counted; the caller drops it). */
bool loopguard_packet(struct lane *ln, const struct pkt4 *p);
/* Counts and logs a loop refused by any layer. */
void loopguard_count(struct lane *ln, uint8_t proto, uint32_t src, uint32_t dst, uint16_t dport,
		     enum guard_verdict v);
