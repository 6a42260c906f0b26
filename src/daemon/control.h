/* The control connection to the manager (part of the tunnel, tunnel.h):
 * authenticates first and so makes the session the trunks and flow
 * connections join; then carries CLUSTER_INFO, UDP, pings, DNS and
 * heartbeats.  A missed heartbeat or any failure ends the session
 * (tunnel_ops.lost). */
#pragma once

struct tunnel;

/* Connects; 0 or -errno (errno's sentence is in t->ended). */
int control_start(struct tunnel *t);
/* Closes it (a TLS close_notify), and the heartbeat. */
void control_stop(struct tunnel *t);
