/* Accepting connections in bounded batches (listener.h). */
#include "net/listener.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/log.h"

static void listener_resume(struct loop *l, struct loop_timer *t)
{
	struct listener *ls = t->arg;

	loop_mod(l, ls->fd, LOOP_IN);
}

static void listener_pause(struct listener *ls, int err)
{
	ls->paused++;
	if (ls->paused <= 10 || ls->paused % 1000 == 0)
		log_warn("%s: accept: %s; pausing new connections for %d ms (%llu times)", ls->name, strerror(err),
			 LISTENER_PAUSE_MS, (unsigned long long)ls->paused);
	loop_mod(ls->l, ls->fd, 0);
	loop_timer_arm(ls->l, &ls->pause, LISTENER_PAUSE_MS, listener_resume, ls);
}

static void listener_event(struct loop *l, int lfd, uint32_t events, void *arg)
{
	struct listener *ls = arg;

	(void)l;
	(void)events;
	for (unsigned i = 0; i < ls->batch; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			ls->fn(ls->arg, fd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
			listener_pause(ls, errno);
		else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			log_warn("%s: accept: %s", ls->name, strerror(errno));
		return;
	}
}

int listener_init(struct listener *ls, struct loop *l, int lfd, unsigned batch, const char *name,
		  listener_fn fn, void *arg)
{
	int ret = lfd;

	*ls = (struct listener){ .l = l, .fd = lfd, .batch = batch, .name = name, .fn = fn, .arg = arg };
	if (lfd >= 0 && (ret = loop_add(l, lfd, LOOP_IN, listener_event, ls)) < 0)
		close(lfd);
	if (ret < 0)
		ls->fd = -1;
	return ret < 0 ? ret : 0;
}

void listener_fini(struct listener *ls)
{
	if (!ls->l)
		return;
	loop_timer_cancel(ls->l, &ls->pause);
	loop_close(ls->l, &ls->fd);
}
