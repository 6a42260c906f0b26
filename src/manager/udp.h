/* UDP for the sessions: a socket per flow, connected to its destination;
 * datagrams both ways on the session's control connection.
 *
 * Ownership: the session owns its UDP flows (s->udp). */
#pragma once
#include <stddef.h>
#include <stdint.h>

struct session;

/* FT_UDP or FT_UDP_CLOSE from the daemon; 0 or -EBADMSG. */
int udp_frame(struct session *s, const uint8_t *p, size_t len, uint8_t type);
void udp_free_all(struct session *s);
