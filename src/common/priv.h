/* Dropping privileges (priv.c says who keeps what, and why). */
#pragma once
#include <stdint.h>

#define PRIV_CAP(c) (1ull << (c))

/* Keeps the capabilities in `want` (bits PRIV_CAP(CAP_...)) that the
 * process has, drops the rest (all sets, the bounding set), sets
 * no_new_privs.  Logs what it could not do.  0 or -errno. */
int priv_drop(uint64_t want);
