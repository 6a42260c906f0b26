/* The laptop daemon: owns the VIF, the NAT table, the tunnel to the
 * manager, and the control socket.  One per network namespace. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "common/loop.h"
#include "daemon/guard.h"
#include "daemon/nat.h"
#include "net/mux.h"
#include "net/relay.h"
#include "proto/auth.h"
#include "proto/frame.h"
#include "net/wire.h"
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

#define DIAL_TIMEOUT_MS 5000
#define POOL_TARGET 16           /* idle pre-authenticated flow connections */
#define POOL_TARGET_MAX 64       /* ... grown to while new flows outrun the refill */
#define POOL_SHRINK_MS 30000     /* ... and halved back after this long without a wait */
#define POOL_MAX_CONNECTING 64
#define TRUNKS 2                 /* TLS: flows ride as streams on this many trunk connections */
#define FLOWS_MAX 100000
#define LINGER_MS 60000          /* NAT mapping kept after the relay ends, while packets still pass */
#define LINGER_DONE_MS 2000      /* ... once both FINs (or a RST) have crossed */
#define DRAIN_CHECK_MS 250
#define DRAIN_MAX_MS (15 * 60 * 1000)
#define UDP_IDLE_MS 60000
#define UDP_FLOWS_MAX 4096

/* The daemon's own caps (docs/vm-networking.md): with or without the loop
 * guard, a storm is bounded by these, never by running out of fds. */
#define DIALS_MAX 512            /* dials in flight per session: the manager allows as many, and counts
                                  * later (the daemon counts a dial before the manager sees it) */
#define DIAL_RATE_PER_S 10000    /* new dials per second, sustained ... */
#define DIAL_BURST 1000          /* ... and in a burst */
#define TCP_FLOWS_CAP 32768      /* TCP flows per session, lowered to fit RLIMIT_NOFILE */
#define FDS_RESERVED 256         /* fds kept for the pool, the control socket, logs */

struct daemon;
struct tflow;

enum pconn_state { PC_CONNECTING, PC_TLS, PC_HELLO, PC_AUTH, PC_IDLE, PC_DIALING, PC_DONE };

/* A connection to the manager: the control connection or a flow one. */
struct pconn {
	struct daemon *d;
	int fd;
	enum conn_kind kind;
	enum pconn_state state;
	struct wire w;
	uint8_t nonce[PROTO_NONCE_LEN];
	uint8_t server_nonce[PROTO_NONCE_LEN];
	struct tflow *flow;            /* flow connection: the flow it serves */
	struct pconn *next, *prev;     /* idle or connecting list */
	struct loop_timer timer;
	uint64_t auth_us; /* AUTH sent: its round trip feeds the loop guard's window */
	bool grow;
};

enum tflow_state { TF_DIALING, TF_ACCEPTING, TF_RELAY, TF_LINGER };

struct tflow {
	struct daemon *d;
	struct nat_key key;
	struct nat_tuple tup;
	enum tflow_state state;
	struct pconn *pc;
	struct relay relay;  /* plain TCP: a flow connection of its own, spliced */
	struct mux_stream ms; /* TLS: a stream on a trunk ... */
	int sfd;              /* ... relaying this accepted socket (-1 before) */
	struct loop_timer timer;
	uint16_t syn_len;
	uint8_t syn[120]; /* the app's SYN, held until the dial's outcome */
	struct tflow *wnext, *wprev; /* waiting for a pooled connection */
	struct tflow *lnext, *lprev; /* all flows */
	bool waiting;
	bool guarded; /* counted in flight by the loop guard's chain layer */
	bool guard_queued; /* ... and waiting for a pooled connection */
	uint64_t sent_us; /* when its DIAL went out */
	bool fin_app, fin_lst, rst; /* seen crossing the VIF */
	int drain_fd; /* accepted socket kept open until its send queue is empty */
	uint64_t drain_until;
};

struct uflow {
	struct daemon *d;
	uint32_t id;
	uint32_t src, dst;
	uint16_t sport, dport;
	uint64_t last_ms;
	bool guarded; /* counted in flight by the loop guard until the first reply */
	uint64_t sent_us; /* its first datagram went out */
	struct uflow *hnext; /* by 4-tuple */
	struct uflow *inext; /* by id */
	struct uflow *lnext, *lprev; /* all flows, for expiry and listing */
};

struct counters {
	uint64_t dials, dials_ok;
	uint64_t dial_fail[DIAL_STATUS_MAX_];
	uint64_t bytes_out, bytes_in; /* to the cluster, from the cluster */
	uint64_t tcp_flows_total, udp_flows_total;
	uint64_t udp_out, udp_in, udp_dropped;
	uint64_t pings, pongs;
	uint64_t pkts_in, pkts_dropped;
	uint64_t reconnects;
	/* loop guard (docs/vm-networking.md): what it refused, per kind */
	uint64_t loops_tcp, loops_udp, loops_dns, loops_icmp;
	uint32_t loop_last_src; /* source address of the last loop seen */
	uint64_t dials_limited; /* refused by the daemon's own caps */
};

enum dstate { D_IDLE, D_CONNECTING, D_CONNECTED, D_RECONNECTING };

/* DNS settings from `connect` (docs/dns.md). */
struct dns_opts {
	char ns[64];           /* short names resolve in this namespace */
	char also_proxy[256];  /* comma-separated suffixes the cluster also resolves */
	char never_proxy[256]; /* ... and suffixes it never resolves */
	bool off;              /* --no-dns */
};

struct dnssrv;

struct daemon {
	struct loop *loop;
	enum dstate state;
	char sock_path[108];
	int ctl_fd;
	int sig_fd;
	uid_t owner; /* the user who asked for the connection */
	bool loop_guard;    /* `connect --no-loop-guard` turns it off */
	int tos_override;   /* `connect --tos N`: the mark to look for; -1: the manager's */

	/* manager */
	uint32_t mgr_addr;
	uint16_t mgr_port;
	struct auth_token token;
	bool insecure;              /* plaintext TCP (connect --insecure) */
	uint8_t fingerprint[32];    /* else the manager's certificate, pinned */
	struct ssl_ctx_st *tls_ctx; /* client context: pin, newest session ticket */
	char fail_msg[400];         /* why the control connection is failing, for pconn_fail */
	struct msg_cluster_info info;
	uint8_t session[PROTO_SESSION_LEN];
	bool have_session;
	char mgr_version[PROTO_NAME_MAX];
	struct pconn *ctl;
	uint64_t backoff_ms;
	struct loop_timer reconnect_timer;
	struct loop_timer heartbeat_timer;
	uint64_t last_ack_ms;
	uint64_t connected_since_ms;
	char last_error[512];
	struct ctl_client *waiter; /* a `connect` request waiting for the outcome */

	/* pool */
	struct pconn *idle;
	struct pconn *connecting; /* flow connections in their handshake */
	int n_idle, n_connecting;
	int pool_target;          /* POOL_TARGET .. POOL_TARGET_MAX */
	uint64_t pool_waited_ms;  /* when a flow last found the pool empty */
	struct tflow *wait_head, *wait_tail;
	struct mux *trunk[TRUNKS];   /* TLS: the trunks up (NULL: none in that slot) */
	int n_trunks;
	struct tflow *flows;

	/* VIF and TCP */
	struct vif vif;
	bool vif_up;
	int lfd; /* hairpin listener on VIF_ADDR */
	uint16_t lport;
	struct loop_timer accept_timer; /* accepting again after running out of fds */
	struct nat_table *nat;
	uint32_t n_tcp;
	uint32_t n_tflows, tflows_max; /* every TCP flow, whatever its state; its cap */
	uint32_t n_dialing, dialing_peak;
	uint64_t dial_tokens;  /* token bucket of DIAL_RATE_PER_S, in millionths of a dial */
	uint64_t dial_tokens_us;

	/* UDP */
	struct uflow **utab;
	struct uflow **uidtab;
	uint32_t utab_size, n_udp, next_uid;
	struct uflow *ulist;
	struct loop_timer udp_timer;

	/* DNS */
	struct dns_opts dns_opts;
	struct dnssrv *dns;

	struct counters c;
	struct guard guard;
	bool pkt_partial; /* pkt's L4 checksum is left to the kernel (vif_read) */
	uint8_t pkt[65536];
	uint8_t out[65536 + 64];
};

/* TCP flows ride as streams on trunks with TLS; with plain TCP each has a
 * flow connection of its own, spliced (splice beats any copy). */
static inline bool daemon_trunks(const struct daemon *d) { return !d->insecure; }

/* daemon.c */
void daemon_progress(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void daemon_connected(struct daemon *d);
void daemon_failed(struct daemon *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void daemon_session_lost(struct daemon *d, const char *why);
int daemon_vif_write(struct daemon *d, const void *p, size_t len);
/* As daemon_vif_write; partial: a TCP/UDP checksum for the kernel to complete. */
int daemon_vif_write_csum(struct daemon *d, const void *p, size_t len, bool partial);

/* tunnel.c */
int tunnel_start(struct daemon *d);
void tunnel_stop(struct daemon *d);
int tunnel_send(struct daemon *d, const uint8_t *frame, size_t len);
struct pconn *pool_take(struct daemon *d);
void pool_fill(struct daemon *d);
void pconn_close(struct pconn *pc, bool rst);
int pconn_dial(struct pconn *pc, struct tflow *f);
struct mux *trunk_pick(struct daemon *d); /* the least loaded trunk up, or NULL */

/* hairpin.c */
int hairpin_init(struct daemon *d);
void hairpin_fini(struct daemon *d);
void hairpin_from_vif(struct daemon *d, uint8_t *buf, size_t len);
void hairpin_dial_result(struct tflow *f, uint8_t status);
void hairpin_pool_ready(struct daemon *d);
void hairpin_reset_all(struct daemon *d);
void hairpin_stream_result(struct mux_stream *st, uint8_t status);
void hairpin_stream_done(struct mux_stream *st, int err);

/* dgram.c */
int dgram_udp_init(struct daemon *d);
void dgram_udp_fini(struct daemon *d);
void dgram_udp_from_vif(struct daemon *d, uint8_t *buf, size_t len);
void dgram_udp_from_tunnel(struct daemon *d, const struct msg_udp *m);
void dgram_icmp_from_vif(struct daemon *d, uint8_t *buf, size_t len);
void dgram_icmp_from_tunnel(struct daemon *d, const struct msg_pong *m);

/* dnssrv.c: the DNS server on the VIF and the resolver plumbing */
void dnssrv_start(struct daemon *d);  /* after the VIF is up; failures leave DNS off */
void dnssrv_stop(struct daemon *d);   /* puts the laptop's resolver back */
void dnssrv_from_tunnel(struct daemon *d, const struct msg_dns *m);
void dnssrv_session_lost(struct daemon *d);
struct json;
void dnssrv_status_json(struct daemon *d, struct json *j);
void dnssrv_status_text(struct daemon *d, FILE *fp);
/* loopguard.c */
void loopguard_session(struct daemon *d);
/* Source and mark layers for a packet read from the VIF: true if it was a
 * loop (answered and counted; the caller drops it). */
bool loopguard_packet(struct daemon *d, uint8_t *buf, size_t len);
/* Counts and logs a loop refused by the chain layer (or any layer). */
void loopguard_count(struct daemon *d, uint8_t proto, uint32_t src, uint32_t dst, uint16_t dport,
		     enum guard_verdict v);
/* priv.c: keeps CAP_NET_ADMIN and CAP_NET_BIND_SERVICE, drops the rest
 * (all sets, the bounding set), sets no_new_privs.  0 or -errno. */
int priv_drop(void);

/* ctl.c */
int ctl_listen(struct daemon *d);
void ctl_reply_connect(struct daemon *d, bool ok, const char *msg);
void ctl_progress(struct daemon *d, const char *line);
void status_write_json(struct daemon *d, FILE *fp);
void status_write_text(struct daemon *d, FILE *fp);
