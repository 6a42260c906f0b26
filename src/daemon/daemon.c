/* `subway daemon`: one per network namespace, started by `subway connect`.
 * Everything it configures hangs off the VIF link, so the kernel removes
 * it when the daemon exits, however it exits. */
#include "daemon/daemon.h"

#include <errno.h>
#include <getopt.h>
#include <linux/capability.h>
#include <malloc.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/priv.h"
#include "daemon/ctl.h"
#include "daemon/dnssrv.h"
#include "daemon/loopguard.h"
#include "daemon/resolved.h"
#include "dns/resolv.h"
#include "net/packet.h"
#include "net/sock.h"
#include "net/tls.h"
#include "proto/ctlmsg.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 3000
#define BACKOFF_GRACE_MS 250

static void daemon_session_lost(struct daemon *d, const char *why);
static void reconnect_tick(struct loop *l, struct loop_timer *t);

void daemon_progress(struct daemon *d, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctl_progress(d->ctl, line);
}

/* A cluster CIDR that overlaps a local route would steal or lose traffic. */
static int check_overlaps(struct daemon *d)
{
	struct local_route routes[256];
	int n = vif_routes_read(routes, (int)ARRAY_SIZE(routes));
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);
	const struct cidr_list *lists[] = { &ci->pod, &ci->svc };
	char a[20], b[20];

	for (int i = 0; i < n; i++)
		for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
			for (int c = 0; c < lists[k]->n; c++)
				if (cidr4_overlap(&lists[k]->v[c], &routes[i].dst)) {
					daemon_failed(d, "cluster CIDR %s overlaps the local route %s on %s",
						      cidr4_str(&lists[k]->v[c], a), cidr4_str(&routes[i].dst, b),
						      routes[i].dev);
					return -EEXIST;
				}
	return 0;
}

static int vif_setup(struct daemon *d)
{
	const struct msg_cluster_info *ci = tunnel_info(&d->tun);
	const struct cidr_list *lists[] = { &ci->pod, &ci->svc };
	char buf[20], ip[16];
	int ret;

	if ((ret = vif_open(&d->vif, "subway%d", VIF_MTU, d->threads)) < 0) {
		daemon_failed(d, ret == -ENOENT ? "no /dev/net/tun: the tun module is missing"
						: "cannot create the VIF: %s", strerror(-ret));
		return ret;
	}
	d->vif_up = true;
	if (d->threads > 1 && (ret = d->steer_fd < 0 ? d->steer_fd : vif_steer(&d->vif, d->steer_fd)) < 0) {
		/* Without steering a flow's packets would reach any lane: one lane, then. */
		log_warn("%d threads asked for, but the VIF cannot steer flows to them (%s): one thread",
			 d->threads, strerror(-ret));
		vif_close(&d->vif);
		d->threads = 1;
		if ((ret = vif_open(&d->vif, "subway%d", VIF_MTU, 1)) < 0) {
			d->vif_up = false;
			daemon_failed(d, "cannot create the VIF: %s", strerror(-ret));
			return ret;
		}
	}
	if ((ret = vif_up(&d->vif)) < 0 || (ret = vif_addr_add(&d->vif, VIF_ADDR, VIF_PREFIX)) < 0) {
		daemon_failed(d, "cannot configure %s: %s", d->vif.name, strerror(-ret));
		return ret;
	}
	daemon_progress(d, "VIF %s up with %s/%d", d->vif.name, ip4_str(VIF_ADDR, ip), VIF_PREFIX);
	for (size_t k = 0; k < ARRAY_SIZE(lists); k++)
		for (int c = 0; c < lists[k]->n; c++) {
			if ((ret = vif_route_add(&d->vif, &lists[k]->v[c], VIF_ADDR)) < 0) {
				daemon_failed(d, "cannot add route %s: %s", cidr4_str(&lists[k]->v[c], buf),
					      strerror(-ret));
				return ret;
			}
			daemon_progress(d, "route %s via %s", cidr4_str(&lists[k]->v[c], buf), d->vif.name);
		}
	if ((ret = lanes_start(d)) < 0 || (ret = dgram_init(&d->dg, d)) < 0) {
		daemon_failed(d, "cannot start the data path: %s", strerror(-ret));
		return ret;
	}
	if (d->n_lanes > 1)
		daemon_progress(d, "data path on %d threads, each with its own queue of %s and its own trunks",
				d->n_lanes, d->vif.name);
	return 0;
}

/* The session is up (CLUSTER_INFO): the first time, the VIF and DNS
 * follow; after a reconnect, the flows may go again. */
static void daemon_up(void *arg)
{
	struct daemon *d = arg;
	char fp[TLS_FP_HEX_LEN + 1];

	loopguard_session(d);
	if (d->state == D_RECONNECTING) {
		d->state = D_CONNECTED;
		d->lanes[0]->c.reconnects++;
		lanes_session_up(d);
		d->backoff_ms = 0;
		d->connected_since_ms = loop_now_ms(d->loop);
		log_info("reconnected to the manager");
		intercepts_session_up(&d->ic);
		return;
	}
	daemon_progress(d, "manager %s reached (%s)", tunnel_where(&d->tun), d->tun.server);
	if (d->tun.insecure)
		daemon_progress(d, "transport: plain TCP (--insecure): tunnel bytes are not encrypted");
	else
		daemon_progress(d, "transport: TLS 1.3, the manager's certificate matches the pinned %s",
				tls_fp_str(d->tun.cfg.fingerprint, fp));
	if (check_overlaps(d) < 0 || vif_setup(d) < 0)
		return;
	d->state = D_CONNECTED;
	d->connected_since_ms = loop_now_ms(d->loop);
	lanes_session_up(d);
	dnsplug_start(d);
	intercepts_session_up(&d->ic); /* those a daemon before this one held */
	ctl_reply_connect(d->ctl, true, "connected: the cluster's pod and service networks are routed here");
}

void daemon_failed(struct daemon *d, const char *fmt, ...)
{
	char msg[sizeof(d->last_error)];
	va_list ap;

	/* fmt's arguments may point into last_error itself. */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(d->last_error, msg, sizeof(msg));
	log_err("%s", d->last_error);
	if (d->state != D_CONNECTING) {
		daemon_session_lost(d, d->last_error);
		return;
	}
	/* The first connect failed: report it, then stop; nothing stays behind. */
	ctl_reply_connect(d->ctl, false, d->last_error);
	d->state = D_IDLE;
	loop_stop(d->loop);
}

/* The next attempt, after a backoff that doubles up to BACKOFF_MAX_MS;
 * while connects wait their grace (hairpin.h) it stays short, so that a
 * manager back within the grace is found within it. */
static void daemon_reconnect_later(struct daemon *d)
{
	uint64_t max = loop_now_ms(d->loop) - d->lost_ms < d->grace_ms ? BACKOFF_GRACE_MS : BACKOFF_MAX_MS;

	d->backoff_ms = MIN(MAX(d->backoff_ms * 2, BACKOFF_MIN_MS), max);
	loop_timer_arm(d->loop, &d->reconnect_timer, d->backoff_ms, reconnect_tick, d);
}

/* Connecting, or reconnecting after the backoff. */
static void reconnect_tick(struct loop *l, struct loop_timer *t)
{
	struct daemon *d = t->arg;

	(void)l;
	if (d->state != D_RECONNECTING && d->state != D_CONNECTING)
		return;
	if (tunnel_start(&d->tun) == 0)
		return;
	if (d->state == D_CONNECTING) {
		daemon_failed(d, "%s", d->tun.ended);
		return;
	}
	daemon_reconnect_later(d);
}

static void daemon_session_lost(struct daemon *d, const char *why)
{
	if (d->state == D_IDLE)
		return;
	log_warn("session lost: %s; reconnecting", why);
	snprintf(d->last_error, sizeof(d->last_error), "%s", why);
	tunnel_stop(&d->tun);
	/* Apps hear it now: their connections reset, their UDP flows gone
	 * (the next datagram is refused), new connects wait the grace. */
	hairpin_abort_all(&d->lanes[0]->hp, false);
	lanes_session_lost(d);
	dgram_reset(&d->dg);
	d->state = D_RECONNECTING;
	d->lost_ms = loop_now_ms(d->loop);
	d->backoff_ms = 0;
	dnssrv_session_lost(d);
	daemon_reconnect_later(d);
}

/* ---- the tunnel's callbacks ---- */

static void daemon_lost(void *arg, const char *why)
{
	struct daemon *d = arg;

	switch (d->state) {
	case D_CONNECTING:
		daemon_failed(d, "%s", why);
		break;
	case D_RECONNECTING: /* an attempt failed: the next one, later */
		log_debug("reconnecting: %s", why);
		snprintf(d->last_error, sizeof(d->last_error), "%s", why);
		daemon_reconnect_later(d);
		break;
	default:
		daemon_session_lost(d, why);
	}
}

static void daemon_udp(void *arg, const struct msg_udp *m)
{
	struct daemon *d = arg;

	dgram_udp_from_tunnel(&d->dg, m);
}

static void daemon_pong(void *arg, const struct msg_pong *m)
{
	struct daemon *d = arg;

	dgram_icmp_from_tunnel(&d->dg, m);
}

static void daemon_dns(void *arg, const struct msg_dns *m)
{
	dnssrv_from_tunnel(arg, m);
}

static void daemon_rtt(void *arg, uint64_t us)
{
	struct daemon *d = arg;

	daemon_guard_lock(d);
	guard_rtt_sample(&d->guard, us);
	daemon_guard_unlock(d);
}

static int daemon_frame(void *arg, uint8_t type, const uint8_t *p, size_t len)
{
	struct daemon *d = arg;

	return intercepts_frame(&d->ic, type, p, len);
}

int daemon_request(struct daemon *d, const struct ctl_req *req, uint32_t token, char *msg, size_t len)
{
	if (d->state != D_CONNECTED && req->verb != CTL_LEAVE) {
		snprintf(msg, len, "not connected%s", d->state == D_RECONNECTING ? " (reconnecting)" : "");
		return -ENOTCONN;
	}
	return intercepts_request(&d->ic, req, token, msg, len);
}

static const struct tunnel_ops daemon_tunnel_ops = {
	.up = daemon_up,
	.lost = daemon_lost,
	.udp = daemon_udp,
	.pong = daemon_pong,
	.dns = daemon_dns,
	.rtt = daemon_rtt,
	.frame = daemon_frame,
};

/* A connect while a session exists: the same options join it, others are named. */
static int daemon_connect_again(struct daemon *d, const struct ctl_req *req, char *msg, size_t len)
{
	char diff[768];

	if (ctl_diff(&d->opts, req, diff, sizeof(diff)) > 0) {
		snprintf(msg, len, "already %s to %s with other options: %s; run `subway quit` first to change them",
			 d->state == D_CONNECTING ? "connecting" : "connected", tunnel_where(&d->tun), diff);
		return -EEXIST;
	}
	if (d->state == D_RECONNECTING) {
		snprintf(msg, len, "connected to %s, but the session is down and reconnecting: %s",
			 tunnel_where(&d->tun), d->last_error);
		return -EAGAIN;
	}
	if (d->state == D_CONNECTED) {
		snprintf(msg, len, "already connected to %s", tunnel_where(&d->tun));
		return 1;
	}
	return 0; /* connecting: one more waiter for the one outcome */
}

int daemon_connect(struct daemon *d, const struct ctl_req *req, uid_t uid, char *msg, size_t len)
{
	char text[320];
	struct token_file tf;
	int r;

	if (d->state != D_IDLE)
		return daemon_connect_again(d, req, msg, len);
	snprintf(text, sizeof(text), "token=%s\n", req->token_hex);
	r = auth_token_file_parse(text, strlen(text), &tf, msg, len);
	explicit_bzero(text, sizeof(text));
	if (r < 0)
		return r;
	r = tunnel_configure(&d->tun, req->manager.addr, req->manager.port, &tf.token,
			     req->insecure ? NULL : req->fingerprint, msg, len);
	auth_token_wipe(&tf.token);
	if (r < 0)
		return r;
	d->opts = *req;
	explicit_bzero(d->opts.token_hex, sizeof(d->opts.token_hex));
	d->owner = req->has_owner ? (uid_t)req->owner : uid;
	memcpy(d->dns_opts.ns, req->ns, sizeof(d->dns_opts.ns));
	memcpy(d->dns_opts.also_proxy, req->also_proxy, sizeof(d->dns_opts.also_proxy));
	memcpy(d->dns_opts.never_proxy, req->never_proxy, sizeof(d->dns_opts.never_proxy));
	d->dns_opts.off = req->no_dns;
	d->loop_guard = !req->no_loop_guard;
	d->tos_override = req->has_tos ? req->tos : -1;
	d->grace_ms = req->has_grace ? req->grace_ms : HAIRPIN_GRACE_MS;
	d->threads = req->has_threads ? req->threads : cpus_usable(LANES_MAX);
	guard_init(&d->guard, d->loop_guard, 0);
	d->state = D_CONNECTING;
	/* At the next turn of the loop: the caller first records who waits. */
	loop_timer_arm(d->loop, &d->reconnect_timer, 0, reconnect_tick, d);
	return 0;
}


/* 1 if a daemon answers on path. */
static int daemon_running(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret;

	if (fd < 0)
		return 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	ret = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return ret;
}

/* Frees everything daemon_main made, whatever it got to. */
static void daemon_free(struct daemon *d)
{
	if (d->loop && d->lanes[0]) {
		dnsplug_stop(d); /* first: the laptop's resolver comes back before anything else goes */
		lanes_stop(d); /* the other lanes' apps hear it, as lane 0's do next */
		hairpin_abort_all(&d->lanes[0]->hp, true); /* every app hears it */
		if (d->vif_up)
			lane_drain(d->lanes[0]);
		intercepts_fini(&d->ic); /* the manager hears it: the pods serve again */
		hairpin_fini(&d->lanes[0]->hp);
		dgram_fini(&d->dg);
		tunnel_fini(&d->tun);
		loop_timer_cancel(d->loop, &d->reconnect_timer);
	}
	if (d->vif_up)
		vif_close(&d->vif);
	lanes_free(d);
	if (d->steer_fd >= 0)
		close(d->steer_fd);
	pthread_mutex_destroy(&d->guard_mu);
	ctl_free(d->ctl);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	loop_free(d->loop);
	free(d);
}

static void daemon_usage(FILE *fp)
{
	fprintf(fp, "usage: subway daemon [--log FILE] [-v]\n\n"
		    "The laptop side of subway: owns the VIF, the routes and the tunnel to\n"
		    "the manager.  `subway connect` starts it; there is one per network\n"
		    "namespace, controlled over %s.\n", "/run/subway/daemon-<netns>.sock");
}

int daemon_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "log", required_argument, NULL, 'l' }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' }, { 0 } };
	struct daemon *d;
	char logpath[108] = "", sock[108];
	bool default_log;
	int c, ret = 1;

	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l': snprintf(logpath, sizeof(logpath), "%s", optarg); break;
		case 'v': log_threshold = LOG_DEBUG; break;
		case 'h': daemon_usage(stdout); return 0;
		default: daemon_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "subway daemon: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	/* One malloc arena for every lane: they allocate per connection, never
	 * per packet, and an arena per thread costs resident memory at idle. */
	mallopt(M_ARENA_MAX, 1);
	if (!(d = calloc(1, sizeof(*d))))
		return 1;
	d->sig_fd = -1;
	d->steer_fd = -1;
	d->n_lanes = 1;
	d->threads = 1;
	pthread_mutex_init(&d->guard_mu, NULL);
	d->loop_guard = true;
	d->tos_override = -1;
	guard_init(&d->guard, true, 0);
	mkdir_p(PATHS_RUN_DIR, 0755);
	default_log = !logpath[0];
	paths_daemon(sock, sizeof(sock), default_log ? logpath : NULL, sizeof(logpath));
	if (daemon_running(sock)) {
		fprintf(stderr, "subway daemon: a daemon already runs in this network namespace\n");
		goto out;
	}
	/* Namespace inodes are reused: start a fresh log, keep one old one. */
	if (default_log) {
		char old[sizeof(logpath) + 4];
		snprintf(old, sizeof(old), "%s.old", logpath);
		rename(logpath, old);
	}
	log_open(logpath, "subway-daemon");
	if (log_fd() >= 0)
		dup2(log_fd(), STDERR_FILENO); /* sanitizer reports land in the log too */
	/* A daemon killed earlier may have left the resolver pointing at it. */
	if (resolv_restore() > 0)
		log_info("%s restored from the copy a previous daemon saved", RESOLV_PATH);
	sock_raise_nofile(1u << 20);
	if (!(d->loop = loop_new())) {
		log_err("cannot start: %s", strerror(errno));
		goto out;
	}
	tunnel_init(&d->tun, d->loop, &daemon_tunnel_ops, d);
	if (!(d->lanes[0] = lane_new0(d))) {
		log_err("cannot start: %s", strerror(errno));
		goto out;
	}
	if (intercepts_init(&d->ic, d) < 0) {
		log_err("cannot start: no random bytes for the daemon's id");
		goto out;
	}
	d->sig_fd = loop_signalfd(d->loop, (const int[]){ SIGTERM, SIGINT, SIGHUP }, 3, loop_signal_stop, d);
	if (d->sig_fd < 0 || !(d->ctl = ctl_new(d, sock))) {
		log_err("cannot start: %s", strerror(errno));
		goto out;
	}
	/* From here on, nothing but the network privileges (priv.c). */
	resolved_prime();
	/* Loaded now: loading BPF takes privileges the daemon then gives up. */
	d->steer_fd = vif_steer_load(VIF_NAT_BASE);
	if (d->steer_fd < 0)
		log_info("no VIF steering program (%s): the data path will use one thread", strerror(-d->steer_fd));
	if (priv_drop(PRIV_CAP(CAP_NET_ADMIN) | PRIV_CAP(CAP_NET_BIND_SERVICE)) < 0)
		goto out;
	log_info("daemon %s started, pid %d, socket %s", SUBWAY_VERSION, (int)getpid(), sock);
	ret = loop_run(d->loop) < 0 ? 1 : 0;
	log_info("daemon stopped");
out:
	daemon_free(d);
	return ret;
}
