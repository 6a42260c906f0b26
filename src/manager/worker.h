/* Workers: the manager's other threads (`manager --threads N`).
 *
 * A laptop with more than one lane (daemon/lane.h) opens two trunks per
 * lane; those of its lanes (CONN_LANE) carry only the laptop's own flows,
 * so nothing of the manager's own state is needed to serve them: each is
 * handed, once authenticated, to a worker (round robin), which runs it on
 * a loop of its own: the streams' dials, their bytes, their ends.  What a
 * worker's trunk shares with the rest of the manager: its session's shared
 * part (struct sess_share: limits, counts, a reference), the manager's
 * counters (MGR_ST_ADD) and its configuration, which does not change while
 * workers run.  The control connection, UDP, ICMP, DNS, the flow
 * connections of --insecure and every intercept stay on the manager's own
 * thread.
 *
 * Ownership: the manager owns the workers (m->workers); a worker owns its
 * loop, its thread and the trunks handed to it. */
#pragma once
#include <stdbool.h>

#include "net/wire.h"

struct mgr;
struct sess_share;
struct mworker;

/* n - 1 workers for `--threads n` (n <= 1: none).  0 or -errno. */
int workers_start(struct mgr *m, int n);
/* Every worker's trunks close (their streams reset), the threads end. */
void workers_stop(struct mgr *m);
/* An authenticated lane trunk of sh goes to the next worker (it takes
 * the wire, and a reference to sh).  0 or -errno (the wire dropped). */
int worker_take(struct mgr *m, struct sess_share *sh, struct wire *w);
/* A session ended (sh->ended set): the workers close its lane trunks. */
void workers_session_ended(struct mgr *m);
