/* The laptop daemon: owns the VIF, the data path, the tunnel to the
 * manager and the control socket.  One per network namespace.
 *
 *   daemon.c     start, the session's life (connect, lost, reconnect), the VIF
 *   lane.c       the data path's threads (--threads), each a lane
 *   hairpin.c    TCP through the hairpin NAT, each flow on a carrier
 *   dgram.c      UDP and ICMP echo
 *   loopguard.c  the loop guard's answers (guard.c decides, pure)
 *   tunnel.c ... the connections to the manager (tunnel.h)
 *   dnssrv*.c    the DNS server on the VIF (dnssrv.h)
 *   ctl.c        the control socket; status.c its status document
 *
 * struct daemon holds what several of them share: the loop, the session's
 * options, the VIF, the lanes (each with its counters and packet buffers),
 * the loop guard.
 * Each module keeps its own state in its own struct, embedded here. */
#pragma once
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/loop.h"
#include "daemon/dgram.h"
#include "daemon/guard.h"
#include "daemon/hairpin.h"
#include "daemon/intercept.h"
#include "daemon/lane.h"
#include "daemon/tunnel.h"
#include "proto/ctlmsg.h"
#include "proto/frame.h"
#include "vif/vif.h"

/* The VIF's subnet (RFC 2544 benchmarking range, never routed on the
 * internet): S = .0.1 is the VIF's own address, the NAT addresses F are
 * 198.18.1.0 .. +NAT_ADDRS. */
#define VIF_NET 0xC6120000u      /* 198.18.0.0 */
#define VIF_PREFIX 16
#define VIF_ADDR (VIF_NET + 1)   /* 198.18.0.1 */
#define VIF_NAT_BASE (VIF_NET + 0x100)
#define VIF_NAT_ADDRS 64
#define VIF_MTU 65000

enum dstate { D_IDLE, D_CONNECTING, D_CONNECTED, D_RECONNECTING };

/* DNS settings from `connect` (docs/dns.md). */
struct dns_opts {
	char ns[64];           /* short names resolve in this namespace */
	char also_proxy[256];  /* comma-separated suffixes the cluster also resolves */
	char never_proxy[256]; /* ... and suffixes it never resolves */
	bool off;              /* --no-dns */
};

struct dnssrv;
struct ctl;

struct daemon {
	struct loop *loop;
	enum dstate state;
	uid_t owner;        /* the user who asked for the connection */
	bool loop_guard;    /* `connect --no-loop-guard` turns it off */
	int tos_override;   /* `connect --tos N`: the mark to look for; -1: the manager's */
	uint32_t grace_ms;  /* `connect --grace`: a connect waits this long for a lost session */
	struct dns_opts dns_opts;
	struct ctl_req opts; /* the session's connect request, token wiped: a second connect compares */
	char last_error[512];
	uint64_t connected_since_ms;
	uint64_t backoff_ms;
	uint64_t lost_ms;   /* when the session was lost */
	struct loop_timer reconnect_timer;
	int sig_fd;

	struct ctl *ctl;    /* the control socket (ctl.h) */
	struct tunnel tun;
	struct vif vif;
	bool vif_up;
	int threads;        /* `connect --threads` (or its default) */
	int n_lanes;        /* lanes started (1 until then): fixed while they run */
	struct lane *lanes[LANES_MAX]; /* lane 0: this thread's; TCP flows live in every lane */
	int steer_fd;       /* the VIF's steering program (vif_steer_load), loaded while privileged */
	pthread_mutex_t guard_mu; /* the loop guard and the caps, with more than one lane */
	struct hairpin_caps caps;
	struct dgram dg;
	struct intercepts ic;
	struct dnssrv *dns;

	struct guard guard;
	unsigned guard_seq;     /* odd while the guard's sources change (loopguard.c) */
	uint32_t loop_last_src; /* source address of the last loop seen */
};

/* The loop guard is shared by the lanes. */
static inline void daemon_guard_lock(struct daemon *d)
{
	if (d->n_lanes > 1)
		pthread_mutex_lock(&d->guard_mu);
}
static inline void daemon_guard_unlock(struct daemon *d)
{
	if (d->n_lanes > 1)
		pthread_mutex_unlock(&d->guard_mu);
}

/* A progress line for the `connect` waiting (and the log). */
void daemon_progress(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The session failed: the first connect reports it and the daemon stops;
 * an established session reconnects. */
void daemon_failed(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A connect request: applies its options and starts connecting.  0: the
 * caller waits for the outcome (ctl_reply_connect), also when a connect
 * with the same options is under way; 1: already connected with them (msg
 * says so); -errno: refused, msg says why (other options than the running
 * session's are named). */
int daemon_connect(struct daemon *d, const struct ctl_req *req, uid_t uid, char *msg, size_t len);
/* A request the manager answers (intercept, leave, list, env): 0 (the
 * answer comes through ctl_answer(token)), 1 (answered in msg), -errno. */
int daemon_request(struct daemon *d, const struct ctl_req *req, uint32_t token, char *msg, size_t len);
