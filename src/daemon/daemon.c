/* `subway daemon`: one per network namespace, started by `subway connect`.
 * Everything it configures hangs off the VIF link, so the kernel removes
 * it when the daemon exits, however it exits. */
#include <errno.h>
#include <getopt.h>
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
#include "daemon/ctl.h"
#include "daemon/daemon.h"
#include "daemon/resolved.h"
#include "daemon/resolv.h"
#include "net/sock.h"
#include "net/tls.h"

#define VIF_READS_PER_WAKEUP 64
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 3000

void daemon_progress(struct daemon *d, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	ctl_progress(d, line);
}

int daemon_vif_write_csum(struct daemon *d, const void *p, size_t len, bool partial)
{
	if (vif_write(&d->vif, p, len, partial) < 0) {
		d->c.pkts_dropped++;
		return -EIO;
	}
	return 0;
}

int daemon_vif_write(struct daemon *d, const void *p, size_t len)
{
	return daemon_vif_write_csum(d, p, len, false);
}

static void vif_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct daemon *d = arg;

	(void)l;
	(void)fd;
	(void)events;
	for (int i = 0; i < VIF_READS_PER_WAKEUP; i++) {
		ssize_t n = vif_read(&d->vif, d->pkt, sizeof(d->pkt), &d->pkt_partial);
		if (n == -EMSGSIZE)
			d->c.pkts_dropped++;
		if (n < 0 && n != -EMSGSIZE)
			return;
		d->c.pkts_in++;
		if (n < 20 || (d->pkt[0] >> 4) != 4)
			continue; /* IPv6 and junk: not routed here */
		if (loopguard_packet(d, d->pkt, (size_t)n))
			continue; /* the cluster sent it back: answered, not forwarded */
		switch (d->pkt[9]) {
		case IPPROTO_TCP: hairpin_from_vif(d, d->pkt, (size_t)n); break;
		case IPPROTO_UDP: dgram_udp_from_vif(d, d->pkt, (size_t)n); break;
		case IPPROTO_ICMP: dgram_icmp_from_vif(d, d->pkt, (size_t)n); break;
		default: d->c.pkts_dropped++;
		}
	}
}

/* A cluster CIDR that overlaps a local route would steal or lose traffic. */
static int check_overlaps(struct daemon *d)
{
	struct local_route routes[256];
	int n = vif_routes_read(routes, (int)ARRAY_SIZE(routes));
	const struct cidr_list *lists[] = { &d->info.pod, &d->info.svc };
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
	const struct cidr_list *lists[] = { &d->info.pod, &d->info.svc };
	char buf[20], ip[16];
	int ret;

	if ((ret = vif_open(&d->vif, "subway%d", VIF_MTU)) < 0) {
		daemon_failed(d, ret == -ENOENT ? "no /dev/net/tun: the tun module is missing"
						: "cannot create the VIF: %s", strerror(-ret));
		return ret;
	}
	d->vif_up = true;
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
	if ((ret = hairpin_init(d)) < 0 || (ret = dgram_udp_init(d)) < 0 ||
	    (ret = loop_add(d->loop, d->vif.fd, LOOP_IN, vif_event, d)) < 0) {
		daemon_failed(d, "cannot start the data path: %s", strerror(-ret));
		return ret;
	}
	return 0;
}

void daemon_connected(struct daemon *d)
{
	char ip[16], fp[TLS_FP_HEX_LEN + 1];

	d->last_ack_ms = loop_now_ms(d->loop);
	loopguard_session(d);
	if (d->state == D_RECONNECTING) {
		d->state = D_CONNECTED;
		d->c.reconnects++;
		d->backoff_ms = 0;
		d->connected_since_ms = loop_now_ms(d->loop);
		log_info("reconnected to the manager");
		pool_fill(d);
		return;
	}
	daemon_progress(d, "manager %s:%u reached (%s)", ip4_str(d->mgr_addr, ip), d->mgr_port,
			d->mgr_version);
	if (d->insecure)
		daemon_progress(d, "transport: plain TCP (--insecure): tunnel bytes are not encrypted");
	else
		daemon_progress(d, "transport: TLS 1.3, the manager's certificate matches the pinned %s",
				tls_fp_str(d->fingerprint, fp));
	if (check_overlaps(d) < 0 || vif_setup(d) < 0)
		return;
	d->state = D_CONNECTED;
	d->connected_since_ms = loop_now_ms(d->loop);
	dnssrv_start(d);
	pool_fill(d);
	ctl_reply_connect(d, true, "connected: the cluster's pod and service networks are routed here");
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
	ctl_reply_connect(d, false, d->last_error);
	d->state = D_IDLE;
	loop_stop(d->loop);
}

static void reconnect_tick(struct loop *l, struct loop_timer *t)
{
	struct daemon *d = t->arg;

	(void)l;
	if (d->state != D_RECONNECTING)
		return;
	if (tunnel_start(d) < 0) {
		d->backoff_ms = MIN(MAX(d->backoff_ms * 2, BACKOFF_MIN_MS), BACKOFF_MAX_MS);
		loop_timer_arm(d->loop, &d->reconnect_timer, d->backoff_ms, reconnect_tick, d);
	}
}

void daemon_session_lost(struct daemon *d, const char *why)
{
	if (d->state == D_IDLE)
		return;
	log_warn("session lost: %s; reconnecting", why);
	snprintf(d->last_error, sizeof(d->last_error), "%s", why);
	hairpin_reset_all(d);
	tunnel_stop(d);
	d->state = D_RECONNECTING;
	dnssrv_session_lost(d);
	d->backoff_ms = MIN(MAX(d->backoff_ms * 2, BACKOFF_MIN_MS), BACKOFF_MAX_MS);
	loop_timer_arm(d->loop, &d->reconnect_timer, d->backoff_ms, reconnect_tick, d);
}

static void signal_event(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct signalfd_siginfo si;

	(void)events;
	(void)arg;
	if (read(fd, &si, sizeof(si)) == sizeof(si))
		log_info("signal %u: stopping", si.ssi_signo);
	loop_stop(l);
}

static int daemon_signals(struct daemon *d)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

	signal(SIGPIPE, SIG_IGN);
	d->sig_fd = loop_signalfd(d->loop, sigs, ARRAY_SIZE(sigs), signal_event, d);
	return d->sig_fd < 0 ? d->sig_fd : 0;
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

static void daemon_cleanup(struct daemon *d)
{
	dnssrv_stop(d); /* first: the laptop's resolver comes back before anything else goes */
	hairpin_fini(d);
	dgram_udp_fini(d);
	tunnel_stop(d);
	loop_timer_cancel(d->loop, &d->reconnect_timer);
	if (d->vif_up)
		vif_close(&d->vif);
	if (d->ctl_fd >= 0) {
		close(d->ctl_fd);
		unlink(d->sock_path);
	}
	auth_token_wipe(&d->token);
	tls_ctx_free(d->tls_ctx);
	loop_free(d->loop);
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
	char logpath[108] = "";
	bool default_log;
	int c, ret;

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
	if (!(d = calloc(1, sizeof(*d))))
		return 1;
	d->ctl_fd = d->sig_fd = d->lfd = -1;
	d->vif.fd = -1;
	d->loop_guard = true;
	d->tos_override = -1;
	guard_init(&d->guard, true, 0);
	mkdir_p("/run/subway", 0755);
	default_log = !logpath[0];
	ctl_paths(d->sock_path, sizeof(d->sock_path), logpath[0] ? NULL : logpath, sizeof(logpath));
	if (daemon_running(d->sock_path)) {
		fprintf(stderr, "subway daemon: a daemon already runs in this network namespace\n");
		free(d);
		return 1;
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
	if ((ret = resolv_restore()) > 0)
		log_info("%s restored from the copy a previous daemon saved", RESOLV_PATH);
	sock_raise_nofile(1u << 20);
	if (!(d->loop = loop_new()) || (ret = daemon_signals(d)) < 0 || (ret = ctl_listen(d)) < 0) {
		log_err("cannot start: %s", strerror(errno));
		return 1;
	}
	/* From here on, nothing but the network privileges (priv.c). */
	resolved_prime();
	if (priv_drop() < 0) {
		daemon_cleanup(d);
		free(d);
		return 1;
	}
	log_info("daemon %s started, pid %d, socket %s", SUBWAY_VERSION, (int)getpid(), d->sock_path);
	ret = loop_run(d->loop);
	/* Let a last reply (connect error, quit) reach its client. */
	daemon_cleanup(d);
	log_info("daemon stopped");
	free(d);
	return ret < 0 ? 1 : 0;
}
