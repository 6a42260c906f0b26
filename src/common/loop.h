/* A thin epoll event loop (level-triggered) with one-shot timers.
 * Handlers get the fd, the epoll events (EPOLLERR/EPOLLHUP are also
 * reported with LOOP_IN set, so a reader sees them as readable) and their
 * argument.  An fd removed or closed by one handler never receives a stale
 * event from the same epoll batch, even if its number is reused. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/epoll.h>

#define LOOP_IN EPOLLIN
#define LOOP_OUT EPOLLOUT

struct loop;
typedef void (*loop_fd_fn)(struct loop *l, int fd, uint32_t events, void *arg);

struct loop_timer;
typedef void (*loop_timer_fn)(struct loop *l, struct loop_timer *t);

struct loop_defer;
typedef void (*loop_defer_fn)(struct loop *l, struct loop_defer *d);

/* Work gathered over one wakeup and done once at its end, after the
 * handlers of every ready fd and the kicks (a trunk's queued frames: one
 * send for what several streams queued, and no read of the trunk for it).
 * Embedded in the owner's struct; zero-initialised means idle. */
struct loop_defer {
	loop_defer_fn fn;
	void *arg;
	struct loop_defer *next, *prev;
	uint64_t pass;
	bool queued;
};

/* Embedded in the owner's struct; zero-initialised means unarmed. */
struct loop_timer {
	uint64_t when_ms;
	size_t idx; /* position in the heap + 1; 0 when unarmed */
	loop_timer_fn fn;
	void *arg;
};

struct loop *loop_new(void);
void loop_free(struct loop *l); /* accepts NULL; does not close fds */

/* 0 or -errno.  events is LOOP_IN and/or LOOP_OUT (may be 0). */
int loop_add(struct loop *l, int fd, uint32_t events, loop_fd_fn fn, void *arg);
int loop_mod(struct loop *l, int fd, uint32_t events);
void loop_del(struct loop *l, int fd);
/* loop_del, then close; *fd becomes -1.  Nothing for -1. */
void loop_close(struct loop *l, int *fd);
uint32_t loop_events(const struct loop *l, int fd); /* current interest */
/* Calls fd's handler once more at the next wakeup, with LOOP_IN, whatever
 * epoll says: for bytes buffered in userspace (decrypted TLS records) that
 * no readiness event will announce.  Dropped if fd is removed meanwhile. */
void loop_kick(struct loop *l, int fd);

/* Queues d to run fn once at the end of this wakeup (again if it is
 * already queued: nothing more).  A defer queued by a deferred function
 * runs at the end of the next wakeup, which then does not sleep. */
void loop_defer(struct loop *l, struct loop_defer *d, loop_defer_fn fn, void *arg);
void loop_defer_cancel(struct loop *l, struct loop_defer *d);

/* Blocks the n signals and delivers them through a nonblocking signalfd
 * watched for LOOP_IN with fn(arg); SIGPIPE is ignored (writes in the loop
 * handle EPIPE).  The fd (the caller closes it), or -errno with errno set. */
int loop_signalfd(struct loop *l, const int *signals, int n, loop_fd_fn fn, void *arg);
/* A handler for loop_signalfd: logs the signal and stops the loop. */
void loop_signal_stop(struct loop *l, int fd, uint32_t events, void *arg);

/* Arms (or re-arms) t to fire once after delay_ms. */
void loop_timer_arm(struct loop *l, struct loop_timer *t, uint64_t delay_ms, loop_timer_fn fn,
		    void *arg);
void loop_timer_cancel(struct loop *l, struct loop_timer *t);
static inline bool loop_timer_armed(const struct loop_timer *t) { return t->idx != 0; }

/* Runs until loop_stop(); 0, or -errno if epoll_wait fails. */
int loop_run(struct loop *l);
/* Runs l on a thread of its own until loop_stop(l), every signal blocked
 * there (the process's signalfd, on its first thread, hears them all).
 * 0 or -errno; pthread_join(*t) after loop_stop. */
int loop_thread_start(struct loop *l, pthread_t *t);
void loop_stop(struct loop *l);
uint64_t loop_now_ms(const struct loop *l); /* cached at each wakeup */
