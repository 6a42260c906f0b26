/* The manager's workers (worker.h). */
#include "manager/worker.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/list.h"
#include "common/log.h"
#include "common/loop.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "manager/trunk.h"

/* A lane trunk on its way to a worker. */
struct handoff {
	struct list link;
	struct sess_share *sh;
	struct wire w;
};

struct mworker {
	struct mgr *m;
	int id;
	struct loop *loop;
	pthread_t thread;
	bool started;
	int evfd;
	pthread_mutex_t mu; /* inbox, stop, check */
	struct list inbox;  /* struct handoff */
	bool stop, check;
	struct list trunks; /* the worker's own (trunk.c) */
};

static void worker_post(struct mworker *wk)
{
	uint64_t one = 1;

	if (write(wk->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("worker %d: cannot wake it: %s", wk->id, strerror(errno));
}

static void handoff_drop(struct handoff *h)
{
	wire_drop(&h->w);
	sess_add(&h->sh->n_trunks, -1);
	sess_share_unref(h->sh);
	free(h);
}

static void worker_mail(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct mworker *wk = arg;
	struct list inbox;
	bool stop, check;
	uint64_t v;

	(void)events;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		return;
	list_init(&inbox);
	pthread_mutex_lock(&wk->mu);
	list_splice_tail(&inbox, &wk->inbox);
	stop = wk->stop;
	check = wk->check;
	wk->check = false;
	pthread_mutex_unlock(&wk->mu);

	while (!list_empty(&inbox)) {
		struct handoff *h = list_first(&inbox, struct handoff, link);

		list_del(&h->link);
		if (!stop && !__atomic_load_n(&h->sh->ended, __ATOMIC_ACQUIRE) &&
		    trunk_new_on_worker(wk, wk->loop, &wk->trunks, h->sh, &h->w) == 0) {
			free(h); /* the trunk holds the reference now */
			continue;
		}
		handoff_drop(h); /* not wanted, or no memory (the wire went already then) */
	}
	if (check || stop)
		trunk_free_list(&wk->trunks, !stop);
	if (stop)
		loop_stop(l);
}

int worker_take(struct mgr *m, struct sess_share *sh, struct wire *w)
{
	struct mworker *wk = m->workers[m->next_worker++ % (unsigned)m->n_workers];
	struct handoff *h = calloc(1, sizeof(*h));

	if (!h) {
		wire_drop(w);
		return -ENOMEM;
	}
	h->sh = sess_share_ref(sh);
	h->w = *w;
	pthread_mutex_lock(&wk->mu);
	list_add_tail(&wk->inbox, &h->link);
	pthread_mutex_unlock(&wk->mu);
	worker_post(wk);
	return 0;
}

static void workers_tell(struct mgr *m, bool stop)
{
	for (int i = 0; i < m->n_workers; i++) {
		struct mworker *wk = m->workers[i];

		pthread_mutex_lock(&wk->mu);
		wk->check = true;
		wk->stop = wk->stop || stop;
		pthread_mutex_unlock(&wk->mu);
		worker_post(wk);
	}
}

void workers_session_ended(struct mgr *m)
{
	workers_tell(m, false);
}

static void worker_free(struct mworker *wk)
{
	if (!wk)
		return;
	while (!list_empty(&wk->inbox)) { /* never delivered */
		struct handoff *h = list_first(&wk->inbox, struct handoff, link);
		list_del(&h->link);
		handoff_drop(h);
	}
	if (wk->evfd >= 0)
		close(wk->evfd);
	loop_free(wk->loop);
	pthread_mutex_destroy(&wk->mu);
	free(wk);
}

int workers_start(struct mgr *m, int n)
{
	int ret = 0;

	for (int i = 0; i < n - 1 && i < MGR_WORKERS_MAX; i++) {
		struct mworker *wk = calloc(1, sizeof(*wk));

		if (!wk)
			return -ENOMEM;
		*wk = (struct mworker){ .m = m, .id = i + 1, .evfd = -1 };
		pthread_mutex_init(&wk->mu, NULL);
		list_init(&wk->inbox);
		list_init(&wk->trunks);
		m->workers[m->n_workers++] = wk;
		if (!(wk->loop = loop_new()) || (wk->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
			return -errno;
		if ((ret = loop_add(wk->loop, wk->evfd, LOOP_IN, worker_mail, wk)) < 0)
			return ret;
	}
	for (int i = 0; i < m->n_workers && ret == 0; i++) {
		ret = loop_thread_start(m->workers[i]->loop, &m->workers[i]->thread);
		m->workers[i]->started = ret == 0;
	}
	return ret;
}

void workers_stop(struct mgr *m)
{
	workers_tell(m, true);
	for (int i = 0; i < m->n_workers; i++) {
		struct mworker *wk = m->workers[i];

		if (wk->started)
			pthread_join(wk->thread, NULL);
		else
			trunk_free_list(&wk->trunks, false);
		worker_free(wk);
		m->workers[i] = NULL;
	}
	m->n_workers = 0;
}
