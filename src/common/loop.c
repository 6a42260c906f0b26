#include "common/loop.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

#define LOOP_BATCH 256

struct loop_fd {
	loop_fd_fn fn;
	void *arg;
	uint32_t events;
	uint32_t gen; /* bumped on add/del: detects stale events */
	bool used;
	bool kicked; /* queued in l->kicks */
};

struct loop_kick {
	int fd;
	uint32_t gen;
};

struct loop {
	int epfd;
	bool stop;
	uint64_t now;
	struct loop_fd *fds;
	size_t nfds;
	struct loop_timer **heap;
	size_t heap_len, heap_cap;
	struct loop_kick *kicks;
	size_t nkicks, kicks_cap;
	struct loop_defer *dhead, *dtail; /* queued defers, newest first */
	uint64_t dpass;                   /* the pass new defers belong to */
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0) {
		free(l);
		return NULL;
	}
	l->now = now_ms();
	return l;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	close(l->epfd);
	free(l->fds);
	free(l->heap);
	free(l->kicks);
	free(l);
}

static int loop_grow(struct loop *l, int fd)
{
	size_t n = l->nfds ? l->nfds : 64;
	struct loop_fd *p;

	while (n <= (size_t)fd)
		n *= 2;
	p = realloc(l->fds, n * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + l->nfds, 0, (n - l->nfds) * sizeof(*p));
	l->fds = p;
	l->nfds = n;
	return 0;
}

static uint64_t loop_ev_data(int fd, uint32_t gen)
{
	return ((uint64_t)gen << 32) | (uint32_t)fd;
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg)
{
	struct epoll_event ev = { .events = events };
	struct loop_fd *e;

	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->nfds && loop_grow(l, fd) < 0)
		return -ENOMEM;
	e = &l->fds[fd];
	if (e->used)
		return -EEXIST;
	e->gen++;
	ev.data.u64 = loop_ev_data(fd, e->gen);
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		return -errno;
	e->fn = fn;
	e->arg = arg;
	e->events = events;
	e->used = true;
	return 0;
}

static void loop_no_handler(int sig)
{
	(void)sig;
}

int loop_signalfd(struct loop *l, const int *signals, int n, loop_fd_fn fn, void *arg)
{
	struct sigaction sa = { .sa_handler = loop_no_handler };
	sigset_t set;
	int fd, ret;

	/* Every write in the loop handles EPIPE itself. */
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	/* A handler (never run: they stay blocked) so that the kernel
	 * delivers them to a process that is its pid namespace's init, as in
	 * a container: to such a one it drops those left at SIG_DFL. */
	for (int i = 0; i < n; i++) {
		sigaddset(&set, signals[i]);
		sigaction(signals[i], &sa, NULL);
	}
	/* Blocked, so they queue on the fd instead of killing the process. */
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	ret = loop_add(l, fd, LOOP_IN, fn, arg);
	if (ret < 0) {
		close(fd);
		errno = -ret; /* callers may report errno */
		return ret;
	}
	return fd;
}

void loop_signal_stop(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	if (read(fd, &si, sizeof(si)) == sizeof(si))
		log_info("signal %u: stopping", si.ssi_signo);
	loop_stop(l);
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	struct epoll_event ev = { .events = events };
	struct loop_fd *e;

	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].used)
		return -ENOENT;
	e = &l->fds[fd];
	if (e->events == events)
		return 0;
	ev.data.u64 = loop_ev_data(fd, e->gen);
	if (epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
		return -errno;
	e->events = events;
	return 0;
}

void loop_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].used)
		return;
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->fds[fd].used = false;
	l->fds[fd].kicked = false;
	l->fds[fd].gen++;
}

void loop_close(struct loop *l, int *fd)
{
	if (*fd < 0)
		return;
	loop_del(l, *fd);
	close(*fd);
	*fd = -1;
}

void loop_kick(struct loop *l, int fd)
{
	struct loop_fd *e;

	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].used || l->fds[fd].kicked)
		return;
	e = &l->fds[fd];
	if (l->nkicks == l->kicks_cap) {
		size_t cap = l->kicks_cap ? l->kicks_cap * 2 : 64;
		struct loop_kick *k = realloc(l->kicks, cap * sizeof(*k));
		if (!k) {
			log_err("cannot grow the kick list");
			abort();
		}
		l->kicks = k;
		l->kicks_cap = cap;
	}
	l->kicks[l->nkicks++] = (struct loop_kick){ .fd = fd, .gen = e->gen };
	e->kicked = true;
}

uint32_t loop_events(const struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].used)
		return 0;
	return l->fds[fd].events;
}

/* Timers: a binary min-heap on when_ms; idx is 1-based so 0 means unarmed. */
static void heap_set(struct loop *l, size_t i, struct loop_timer *t)
{
	l->heap[i] = t;
	t->idx = i + 1;
}

static void heap_up(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (l->heap[p]->when_ms <= t->when_ms)
			break;
		heap_set(l, i, l->heap[p]);
		i = p;
	}
	heap_set(l, i, t);
}

static void heap_down(struct loop *l, size_t i)
{
	struct loop_timer *t = l->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= l->heap_len)
			break;
		if (c + 1 < l->heap_len && l->heap[c + 1]->when_ms < l->heap[c]->when_ms)
			c++;
		if (t->when_ms <= l->heap[c]->when_ms)
			break;
		heap_set(l, i, l->heap[c]);
		i = c;
	}
	heap_set(l, i, t);
}

void loop_timer_cancel(struct loop *l, struct loop_timer *t)
{
	size_t i;

	if (!t->idx)
		return;
	i = t->idx - 1;
	t->idx = 0;
	l->heap_len--;
	if (i == l->heap_len)
		return;
	l->heap[i] = l->heap[l->heap_len];
	l->heap[i]->idx = i + 1;
	heap_down(l, i);
	heap_up(l, l->heap[i]->idx - 1);
}

void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms, loop_timer_fn fn,
		    void *arg)
{
	loop_timer_cancel(l, t);
	if (l->heap_len == l->heap_cap) {
		size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
		struct loop_timer **h = realloc(l->heap, cap * sizeof(*h));
		if (!h) {
			/* Out of memory: fire on the next wakeup rather than never. */
			log_err("cannot grow timer heap");
			abort();
		}
		l->heap = h;
		l->heap_cap = cap;
	}
	t->when_ms = l->now + delay_ms;
	t->fn = fn;
	t->arg = arg;
	l->heap[l->heap_len] = t;
	t->idx = ++l->heap_len;
	heap_up(l, l->heap_len - 1);
}

void loop_defer(struct loop *l, struct loop_defer *d, loop_defer_fn fn, void *arg)
{
	d->fn = fn;
	d->arg = arg;
	if (d->queued)
		return;
	d->queued = true;
	d->pass = l->dpass;
	d->prev = NULL;
	d->next = l->dhead;
	if (l->dhead)
		l->dhead->prev = d;
	else
		l->dtail = d;
	l->dhead = d;
}

void loop_defer_cancel(struct loop *l, struct loop_defer *d)
{
	if (!d->queued)
		return;
	if (d->prev)
		d->prev->next = d->next;
	else
		l->dhead = d->next;
	if (d->next)
		d->next->prev = d->prev;
	else
		l->dtail = d->prev;
	d->next = d->prev = NULL;
	d->queued = false;
}

/* Runs the defers queued before this call, oldest first; those their
 * functions queue belong to the next pass (bounded work). */
static void loop_run_defers(struct loop *l)
{
	uint64_t pass = l->dpass++;
	struct loop_defer *d;

	while (!l->stop && (d = l->dtail) && d->pass <= pass) {
		loop_defer_cancel(l, d);
		d->fn(l, d);
	}
}

static int loop_timeout(struct loop *l)
{
	if (l->nkicks || l->dhead)
		return 0;
	if (!l->heap_len)
		return -1;
	if (l->heap[0]->when_ms <= l->now)
		return 0;
	return (int)MIN(l->heap[0]->when_ms - l->now, 60000u);
}

static void loop_run_timers(struct loop *l)
{
	/* Bounded: timers armed by a callback for "now" run next wakeup. */
	for (int n = 0; n < 1024 && l->heap_len && l->heap[0]->when_ms <= l->now; n++) {
		struct loop_timer *t = l->heap[0];
		loop_timer_cancel(l, t);
		t->fn(l, t);
	}
}

static void loop_dispatch(struct loop *l, const struct epoll_event *ev)
{
	int fd = (int)(uint32_t)ev->data.u64;
	uint32_t gen = (uint32_t)(ev->data.u64 >> 32);
	uint32_t events = ev->events;
	struct loop_fd *e;

	if ((size_t)fd >= l->nfds)
		return;
	e = &l->fds[fd];
	if (!e->used || e->gen != gen)
		return;
	if (events & (EPOLLERR | EPOLLHUP))
		events |= LOOP_IN;
	e->fn(l, fd, events, e->arg);
}

/* Runs the kicks queued before this call; kicks queued by their handlers
 * wait for the next wakeup (bounded work, and epoll events go first). */
static void loop_run_kicks(struct loop *l)
{
	size_t n = l->nkicks;

	if (!n)
		return;
	for (size_t i = 0; i < n && !l->stop; i++) {
		struct loop_kick k = l->kicks[i];
		struct loop_fd *e = &l->fds[k.fd];
		if (!e->used || e->gen != k.gen || !e->kicked)
			continue;
		e->kicked = false;
		e->fn(l, k.fd, LOOP_IN, e->arg);
	}
	memmove(l->kicks, l->kicks + n, (l->nkicks - n) * sizeof(*l->kicks));
	l->nkicks -= n;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[LOOP_BATCH];

	l->stop = false;
	while (!l->stop) {
		int n = epoll_wait(l->epfd, evs, LOOP_BATCH, loop_timeout(l));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		l->now = now_ms();
		for (int i = 0; i < n && !l->stop; i++)
			loop_dispatch(l, &evs[i]);
		loop_run_kicks(l);
		loop_run_defers(l);
		loop_run_timers(l);
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	l->stop = true;
}

uint64_t loop_now_ms(const struct loop *l)
{
	return l->now;
}

static void *loop_thread_main(void *arg)
{
	int r = loop_run(arg);

	if (r < 0)
		log_err("a thread's event loop failed: %s", strerror(-r));
	return NULL;
}

int loop_thread_start(struct loop *l, pthread_t *t)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old); /* the new thread inherits the mask */
	r = pthread_create(t, NULL, loop_thread_main, l);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return -r;
}
