/* The daemon's DNS server (internal to src/daemon; docs/dns.md).
 *
 *   dnssrv.c      queries: parse, loop check, route, cluster (tunnel) or
 *                 upstream (the laptop's resolvers), cache, answers
 *   dnssrv_tcp.c  DNS over TCP clients (RFC 7766)
 *   dnsplug.c     plugging into the laptop's resolver (resolv.conf or
 *                 systemd-resolved), start/stop, status
 *
 * Ownership: struct daemon owns the struct dnssrv; it owns every socket,
 * query slot, TCP client and the cache.  Query slots and TCP clients are
 * preallocated arrays: a slot names its TCP client by index and
 * generation, so a client closed meanwhile is simply not answered. */
#pragma once
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/list.h"
#include "daemon/daemon.h"
#include "dns/resolv.h"
#include "dns/dnscache.h"
#include "dns/dnsmsg.h"
#include "dns/dnsroute.h"
#include "dns/dnstcp.h"
#include "net/outbuf.h"
#include "net/listener.h"

#define DNS_PORT 53
#define DQ_BITS 11
#define DQ_MAX (1u << DQ_BITS)        /* queries in progress */
#define DQ_QUERY_MAX 1024             /* a longer query gets FORMERR */
#define DQ_CLUSTER_MAX 200            /* in the tunnel at once: below the manager's 256 per session */
#define DQ_CLUSTER_TIMEOUT_MS 5500    /* the manager answers SERVFAIL after 5 s itself */
#define DQ_SEARCH_TIMEOUT_MS 2000     /* a short name's cluster step, before the laptop's resolvers */
#define DQ_UPSTREAM_MAX 128           /* at the laptop's resolvers at once: a burst must not overrun them */
#define DQ_UPSTREAM_TRY_MS 1500       /* per upstream server, then the next one */
#define DQ_UPSTREAM_TIMEOUT_MS 5000
#define DQ_UDP_READS 64               /* datagrams per wakeup */
#define DQ_UDP_MAX 4096               /* largest UDP answer, whatever a client announces */
#define DNS_UP_SOCKS 8                /* upstream sockets, each its own random port */
#define DNS_RCVBUF (4 << 20)          /* a burst of queries waits in the kernel, not lost */
#define DNS_CACHE_ENTRIES 4096
#define DNS_CACHE_BYTES (8u << 20)
#define DNS_TCP_CLIENTS 128
#define DNS_TCP_PENDING 32            /* queries in progress per TCP client */
#define DNS_TCP_OUT_MAX (512u << 10)  /* answers queued for one TCP client */
#define DNS_TCP_IDLE_MS 10000
#define DNS_LOOP_LOG_MS 60000         /* one log line per looping source per minute */
#define DNS_LOOP_LOG_SOURCES 16

enum dns_mode { DNS_MODE_OFF, DNS_MODE_RESOLV_CONF, DNS_MODE_RESOLVED };

enum dq_state {
	DQ_FREE,
	DQ_QUEUED,       /* for the tunnel, waiting for room */
	DQ_UP_QUEUED,    /* for upstream, waiting for room */
	DQ_CLUSTER,      /* in the tunnel */
	DQ_UPSTREAM,     /* at a laptop resolver, over UDP */
	DQ_UPSTREAM_TCP, /* ... over TCP */
};

struct dnssrv;

struct dq {
	struct dnssrv *s;
	enum dq_state state;
	uint32_t gen;            /* bumped at each use; the tunnel id carries it */
	struct list link;        /* s->free, or a queue (s->cq, s->uq) */
	struct list hlink;       /* s->names: in-flight cluster names, by exact spelling */
	uint32_t hash;
	struct loop_timer timer;
	int tc;                  /* TCP client index, -1 for UDP */
	uint32_t tc_gen;
	struct sockaddr_in peer; /* UDP client */
	uint16_t max_udp;        /* what the UDP client accepts */
	uint64_t start_ms;
	struct dns_msg msg;      /* the client's query, parsed */
	struct dnsroute route;
	struct dns_name sent;    /* what went to the cluster, letter case mixed (0x20) */
	uint16_t up_id;          /* upstream: our random ID */
	uint64_t up_start_ms;
	int up_server, up_sock;
	struct dnstcp *tcp;
	uint16_t qlen;
	uint8_t q[DQ_QUERY_MAX];
};

struct dnssrv_tcpc {
	struct dnssrv *s;
	int idx;
	int fd;                  /* -1 when the slot is free */
	uint32_t gen;
	unsigned pending;        /* queries in progress */
	bool eof;                /* the client sent all it will */
	struct loop_timer idle;
	uint64_t since_ms;       /* accepted, or its last whole query: the oldest idle one goes first */
	struct sockaddr_in peer;
	size_t inlen;
	uint8_t in[2 + DQ_QUERY_MAX];
	struct outbuf out;
};

struct dns_counters {
	uint64_t queries, cluster, forwarded, cache_hits, failures, loops, tcp, truncated;
};

struct dnssrv {
	struct daemon *d;
	enum dns_mode mode;
	char why_off[200];       /* why the mode is off, for status */
	uint32_t addr;           /* where the server listens (VIF_ADDR) */
	int udp_fd;
	struct listener tcp;
	bool udp_paused;         /* no free slot: datagrams wait in the socket */
	bool pumping, closing;
	struct dnsroute_cfg route;
	struct dnscache *cache;
	struct resolv_conf orig; /* the laptop's resolver before connect */
	int n_up;                /* upstream servers (orig's IPv4 nameservers, not ours) */
	uint32_t up[RESOLV_NS_MAX];
	int up_fd[DNS_UP_SOCKS];
	int resolved_ifindex;    /* DNS_MODE_RESOLVED: the link configured */

	struct dq *slots;
	struct list free;        /* slots freed, the last first */
	uint32_t n_fresh;        /* slots[n_fresh..] never used: untouched, so not resident */
	unsigned n_used, n_cluster, n_upstream;
	struct list cq, uq;      /* waiting for the tunnel, for upstream */
	struct list names[DQ_MAX]; /* hash buckets of in-flight cluster names */
	uint16_t upmap[65536];    /* upstream ID -> slot index + 1 */

	struct dnssrv_tcpc *tcpc;
	unsigned n_tcpc;

	uint8_t rnd[256];         /* random bytes for IDs and 0x20, refilled */
	size_t rnd_left;          /* not used yet: the last rnd_left of rnd */
	struct {
		uint32_t src;
		uint64_t last_ms;
	} loop_log[DNS_LOOP_LOG_SOURCES];
	struct dns_counters c;
	uint32_t last_loop_src;
	uint8_t buf[DNS_MSG_MAX];      /* a query or answer as received */
	uint8_t out[DNS_MSG_MAX];      /* an answer being built */
	uint8_t frame[DNS_MSG_MAX + 64];
};

/* dnsplug.c: the server's life, and its part of `subway status` */
void dnsplug_start(struct daemon *d); /* after the VIF is up; failures leave DNS off */
void dnsplug_stop(struct daemon *d);  /* puts the laptop's resolver back */
struct json;
void dnsplug_status_json(struct daemon *d, struct json *j);
void dnsplug_status_text(struct daemon *d, FILE *fp);
/* dnssrv.c */
void dnssrv_from_tunnel(struct daemon *d, const struct msg_dns *m);
void dnssrv_session_lost(struct daemon *d);
int dnssrv_open(struct dnssrv *s); /* sockets and slots; 0 or -errno */
void dnssrv_close(struct dnssrv *s);
/* A query from a UDP client (tc -1) or TCP client tc, at address peer.
 * True when an answer was or will be given; false for bytes that are not
 * a query (nothing to answer to). */
bool dnssrv_query(struct dnssrv *s, const uint8_t *m, size_t len, const struct sockaddr_in *peer, int tc);

/* dnssrv_tcp.c */
int dnssrv_tcp_open(struct dnssrv *s);
void dnssrv_tcp_close(struct dnssrv *s);
/* Queues an answer for TCP client tc if it is still the one (gen). */
void dnssrv_tcp_answer(struct dnssrv *s, int tc, uint32_t gen, const uint8_t *m, size_t len);
