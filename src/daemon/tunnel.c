/* The tunnel's hub (tunnel.h): its configuration, start and stop. */
#include "daemon/tunnel.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "daemon/control.h"
#include "net/tls.h"

/* A trunk or a pooled connection came up: carriers waiting may go. */
static void tunnel_transport_ready(void *arg)
{
	carrier_kick(arg);
}

static void tunnel_rtt(void *arg, uint64_t us)
{
	struct tunnel *t = arg;

	t->ops->rtt(t->arg, us);
}

static void tunnel_setup(struct tunnel *t, struct loop *l, const struct tunnel_ops *ops, void *arg,
			 enum conn_kind trunk_kind)
{
	memset(t, 0, sizeof(*t));
	t->cfg.loop = l;
	t->cfg.rtt = tunnel_rtt;
	t->cfg.rtt_arg = t;
	t->ops = ops;
	t->arg = arg;
	list_init(&t->waiting);
	trunks_init(&t->trunks, &t->cfg, trunk_kind, &carrier_stream_ops, tunnel_transport_ready, t);
	pool_init(&t->pool, &t->cfg, tunnel_transport_ready, t);
}

void tunnel_init(struct tunnel *t, struct loop *l, const struct tunnel_ops *ops, void *arg)
{
	tunnel_setup(t, l, ops, arg, CONN_TRUNK);
}

void tunnel_lane_init(struct tunnel *t, struct loop *l, const struct tunnel *main, const struct tunnel_ops *ops,
		      void *arg)
{
	tunnel_setup(t, l, ops, arg, CONN_LANE);
	t->lane = true;
	t->insecure = main->insecure;
	t->cfg.addr = main->cfg.addr;
	t->cfg.port = main->cfg.port;
	memcpy(t->cfg.where, main->cfg.where, sizeof(t->cfg.where));
	memcpy(t->cfg.fingerprint, main->cfg.fingerprint, sizeof(t->cfg.fingerprint));
	t->cfg.token = main->cfg.token;
	t->cfg.tls_ctx = main->cfg.tls_ctx; /* shared: the main tunnel's, which outlives the lanes */
}

void tunnel_lane_up(struct tunnel *t, const uint8_t session[PROTO_SESSION_LEN])
{
	memcpy(t->cfg.session, session, sizeof(t->cfg.session));
	t->up = true;
	/* Its connections open when its first flow comes (carrier_want): an
	 * idle lane holds none.  Carriers waiting already go now. */
	if (t->n_waiting)
		carrier_want(t);
}

int tunnel_configure(struct tunnel *t, uint32_t addr, uint16_t port, const struct auth_token *token,
		     const uint8_t *fingerprint, char *err, size_t errlen)
{
	struct pconn_cfg *cfg = &t->cfg;
	char ip[16];

	if (fingerprint && !(cfg->tls_ctx = tls_client_ctx(fingerprint, err, errlen)))
		return -EINVAL;
	if (fingerprint)
		memcpy(cfg->fingerprint, fingerprint, sizeof(cfg->fingerprint));
	t->insecure = !fingerprint;
	cfg->addr = addr;
	cfg->port = port;
	snprintf(cfg->where, sizeof(cfg->where), "%s:%u", ip4_str(addr, ip), port);
	cfg->token = *token;
	return 0;
}

int tunnel_start(struct tunnel *t)
{
	return control_start(t);
}

void tunnel_stop(struct tunnel *t)
{
	control_stop(t);
	trunks_stop(&t->trunks);
	pool_stop(&t->pool);
	memset(t->cfg.session, 0, sizeof(t->cfg.session));
}

void tunnel_fini(struct tunnel *t)
{
	tunnel_stop(t);
	if (!t->lane) /* a lane borrows the main tunnel's */
		tls_ctx_free(t->cfg.tls_ctx);
	t->cfg.tls_ctx = NULL;
	auth_token_wipe(&t->cfg.token);
}

int tunnel_send(struct tunnel *t, const uint8_t *frame, size_t len)
{
	if (!t->up)
		return -ENOTCONN;
	return pconn_send(t->ctl, frame, len);
}

void tunnel_set_inbound(struct tunnel *t, tunnel_inbound_fn fn, void *arg)
{
	t->inbound = fn;
	t->inbound_arg = arg;
}

const char *tunnel_cipher(const struct tunnel *t)
{
	return t->ctl && t->ctl->w.tls && t->ctl->state >= PC_HELLO ? tls_cipher(t->ctl->w.tls) : NULL;
}
