/* The daemon's privileges (priv.c says which stay, and why). */
#pragma once

/* Keeps CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, drops the rest (all sets,
 * the bounding set), sets no_new_privs.  0 or -errno. */
int priv_drop(void);
