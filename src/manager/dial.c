/* The manager's dials (dial.h). */
#include "manager/dial.h"

#include <errno.h>
#include <unistd.h>

#include "common/log.h"
#include "manager/manager.h"
#include "manager/session.h"
#include "net/sock.h"

uint8_t dial_status_from_errno(int err)
{
	switch (err) {
	case ECONNREFUSED:
		return DIAL_REFUSED;
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENETDOWN:
		return DIAL_UNREACHABLE;
	case ETIMEDOUT:
		return DIAL_TIMEOUT;
	}
	return DIAL_ERROR;
}

/* Token bucket: lim.dial_rate dials a second, lim.dial_burst at once
 * (the session's, whichever thread dials). */
static bool dial_rate_ok(struct sess_share *sh, uint64_t now)
{
	const struct mgr_limits *lim = &sh->m->cfg.lim;
	uint64_t cap = (uint64_t)lim->dial_burst * 1000;
	bool ok;

	pthread_mutex_lock(&sh->mu);
	if (now > sh->dial_ms) {
		sh->dial_tokens = MIN(cap, sh->dial_tokens + (now - sh->dial_ms) * lim->dial_rate);
		sh->dial_ms = now;
	}
	if ((ok = sh->dial_tokens >= 1000))
		sh->dial_tokens -= 1000;
	pthread_mutex_unlock(&sh->mu);
	return ok;
}

/* Policy, then the session's limits: DIAL_OK when a dial to req may go
 * (and takes a token of the dial rate). */
static uint8_t dial_check(struct dial *dl, const struct msg_dial *req)
{
	struct sess_share *sh = dl->sh;
	struct mgr *m = sh->m;

	if (!mgr_dial_allowed(m, req->addr, req->port)) {
		mgr_forbidden(m, sh->name, "tcp", req->addr, req->port);
		return DIAL_FORBIDDEN;
	}
	if (__atomic_load_n(&sh->n_dials, __ATOMIC_RELAXED) >= m->cfg.lim.dials) {
		MGR_ST_ADD(m, limit_dials, 1);
		return DIAL_LIMIT;
	}
	if (!dial_rate_ok(sh, dl->t0)) {
		MGR_ST_ADD(m, limit_rate, 1);
		return DIAL_LIMIT;
	}
	return DIAL_OK;
}

/* Counts and logs a dial's outcome. */
static void dial_note(struct dial *dl, uint8_t status)
{
	struct mgr *m = dl->sh->m;
	char dst[24];

	MGR_ST_ADD(m, dials[status], 1);
	log_debug("session %s: dial %s %s in %lu ms (stream %u)", dl->sh->name,
		  mgr_peer_str(dl->req.addr, dl->req.port, dst), dial_status_name(status),
		  (unsigned long)(loop_now_ms(dl->loop) - dl->t0), dl->tag);
}

/* The dial is over: the socket goes to the owner (or is closed). */
static void dial_end(struct dial *dl, uint8_t status)
{
	int fd = dl->fd;

	loop_timer_cancel(dl->loop, &dl->timer);
	loop_del(dl->loop, fd);
	dl->fd = -1;
	__atomic_fetch_sub(&dl->sh->n_dials, 1, __ATOMIC_RELAXED);
	dial_note(dl, status);
	if (status != DIAL_OK) {
		close(fd);
		fd = -1;
	}
	dl->done(dl, status, fd);
}

static void dial_on_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	int r = sock_connect_result(fd);

	(void)l;
	if (r == 0 && !(events & LOOP_OUT))
		return;
	dial_end(arg, r == 0 ? DIAL_OK : dial_status_from_errno(-r));
}

static void dial_on_timeout(struct loop *l, struct loop_timer *t)
{
	(void)l;
	dial_end(t->arg, DIAL_TIMEOUT);
}

uint8_t dial_start(struct dial *dl, struct sess_share *sh, struct loop *l, const struct msg_dial *req, uint32_t tag,
		   dial_done_fn done)
{
	struct mgr *m = sh->m;
	uint8_t status;
	int fd;

	*dl = (struct dial){ .sh = sh, .loop = l, .req = *req, .done = done, .fd = -1, .tag = tag,
			     .t0 = loop_now_ms(l) };
	if ((status = dial_check(dl, req)) != DIAL_OK)
		goto fail;
	fd = sock_connect_tcp(req->addr, req->port, m->cfg.tos);
	if (fd < 0) {
		status = dial_status_from_errno(-fd);
		goto fail;
	}
	if (loop_add(l, fd, LOOP_OUT, dial_on_event, dl) < 0) {
		close(fd);
		status = DIAL_ERROR;
		goto fail;
	}
	dl->fd = fd;
	__atomic_fetch_add(&sh->n_dials, 1, __ATOMIC_RELAXED);
	loop_timer_arm(l, &dl->timer, req->timeout_ms ? req->timeout_ms : m->cfg.dial_timeout_ms,
		       dial_on_timeout, dl);
	return DIAL_OK;
fail:
	dial_note(dl, status);
	return status;
}

void dial_cancel(struct dial *dl)
{
	if (!dl->sh || dl->fd < 0) /* never started, or over */
		return;
	loop_timer_cancel(dl->loop, &dl->timer);
	loop_del(dl->loop, dl->fd);
	sock_linger_rst(dl->fd);
	close(dl->fd);
	dl->fd = -1;
	__atomic_fetch_sub(&dl->sh->n_dials, 1, __ATOMIC_RELAXED);
}
