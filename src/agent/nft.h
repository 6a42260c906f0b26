/* The agent's port redirects: nf_tables rules in the pod's network
 * namespace, sent as raw netlink batches (the agent is one static binary:
 * no nft, no libmnl or libnftnl).
 *
 * While some port is redirected the agent has one table of its own, and
 * `nft list ruleset` in the pod shows (TCP port 80 to 15001, agent uid 7777):
 *
 *	table inet subway-agent { # progname subway
 *		flags owner
 *
 *		chain prerouting {
 *			type nat hook prerouting priority dstnat; policy accept;
 *			tcp dport 80 redirect to :15001
 *		}
 *
 *		chain output {
 *			type nat hook output priority -100; policy accept;
 *			meta skuid != 7777 fib daddr type local tcp dport 80 redirect to :15001
 *		}
 *	}
 *
 * prerouting takes what comes from the cluster; output what the pod sends
 * to itself (the app calling its own port), except from the agent's uid,
 * which still reaches the app on the real port.  `fib daddr type local`
 * keeps the app's calls to port 80 of *other* hosts out of it.  inet:
 * IPv4 and IPv6 alike (inet nat needs Linux >= 5.2).  Before the first
 * redirect there is no table; after the last one ends, the table and its
 * two chains stay, empty, for the agent's life: with the namespace's last
 * nat chain the kernel unregisters its NAT hooks, and the connections
 * redirected before would lose their reverse translation (their replies,
 * a RST included, would leave from the agent's port, which the client
 * does not know: it would hang).
 *
 * Every change rebuilds the whole table in one batch, which the kernel
 * applies atomically or not at all: NEWTABLE then DELTABLE (which deletes
 * any table of that name, ours or a stale one, and cannot fail for want
 * of one), then NEWTABLE, the two chains and every redirect's rules.  So
 * no rule handles are kept (no echoed replies to parse), a stale table
 * never stands in the way, and after a failure the kernel holds what it
 * held before, as the in-memory list does again.
 *
 * Connections already redirected keep their NAT binding (conntrack)
 * across rebuilds and after the redirect ends: a TCP connection stays the
 * agent's until it closes, a UDP flow (same addresses and ports) until its
 * conntrack entry expires (30 s idle, 120 s for a two-way stream).  The
 * agent reads a redirected connection's original port with
 * getsockopt(SO_ORIGINAL_DST) (IP6T_SO_ORIGINAL_DST for IPv6).
 *
 * The table is made with NFT_TABLE_F_OWNER (Linux >= 5.12): the kernel
 * deletes it when the socket closes, so a killed agent (SIGKILL, OOM)
 * leaves no redirect to a port nobody listens on, and no other process
 * can change it meanwhile.  On older kernels it is made without the flag,
 * and a restarted agent's agent_nft_cleanup removes what is left.
 *
 * Each batch waits for its answers AGENT_NFT_TIMEOUT_MS at most (the
 * kernel has answered by the time sendmsg returns, in practice; a call
 * sends two when the kernel refuses the owner flag).  A failure is logged
 * and kept in words, naming the message that failed, e.g.
 *   "redirect of tcp port 80 to 15001: batch: Operation not permitted (CAP_NET_ADMIN is needed)"
 *   "cleanup: NEWTABLE inet subway-agent: Operation not permitted (another process owns ...)"
 *   "redirect of udp port 53 to 15053: NEWRULE output udp dport 53: Operation not supported (...)"
 * Not thread-safe: one struct agent_nft per thread. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cursor.h"

#define AGENT_NFT_TABLE "subway-agent"
#define AGENT_NFT_MAX 32            /* ports redirected at once */
#define AGENT_NFT_TIMEOUT_MS 2000
#define AGENT_NFT_ERR_SIZE 256

struct agent_nft_rdr {
	uint8_t proto; /* IPPROTO_TCP or IPPROTO_UDP */
	uint16_t port;
	uint16_t to_port;
	uint32_t exempt_uid;
};

struct agent_nft {
	int fd;        /* NETLINK_NETFILTER, or -1 */
	uint32_t seq;  /* the next batch's first sequence number */
	bool no_owner; /* the kernel refused NFT_TABLE_F_OWNER (< 5.12); tests set it */
	bool made;     /* the chains exist: they stay when the last redirect goes */
	size_t n;
	struct agent_nft_rdr r[AGENT_NFT_MAX];
	char err[AGENT_NFT_ERR_SIZE]; /* the last failure, "" after a success */
};

/* Opens the socket, in the calling thread's network namespace (n zeroed
 * first; n->fd -1 on failure).  0 or -errno.  Needs no privilege: the
 * first batch does (CAP_NET_ADMIN). */
int agent_nft_open(struct agent_nft *n);

/* Deletes the table whoever made it (a stale one left by a killed agent
 * on a kernel without the owner flag), and forgets n's redirects.  0 also
 * when there was none.  -EPERM: no CAP_NET_ADMIN, or another live process
 * owns the table (a second agent in the pod). */
int agent_nft_cleanup(struct agent_nft *n);

/* Redirects proto's port to to_port on the pod (see the top), sockets of
 * exempt_uid excepted on output.  A port already redirected is redirected
 * anew (to_port and exempt_uid replaced).  0 or -errno: -EINVAL (proto,
 * port or to_port 0, to_port == port), -ENOSPC (AGENT_NFT_MAX already),
 * the kernel's (-EPERM, -EOPNOTSUPP, ...), -ETIMEDOUT, -EBADMSG (a reply
 * that does not parse).  After a failure the redirects are as before. */
int agent_nft_redirect(struct agent_nft *n, uint8_t proto, uint16_t port, uint16_t to_port,
		       uint32_t exempt_uid);

/* Ends proto's port's redirect; the table and its chains stay.  0 or
 * -errno as above; -ENOENT (nothing sent) when it was not redirected. */
int agent_nft_unredirect(struct agent_nft *n, uint8_t proto, uint16_t port);

/* The last call's failure in words ("" after a success); owned by n. */
const char *agent_nft_error(const struct agent_nft *n);

/* Deletes the table when n made it (the kernel would, with the
 * owner flag; without it nobody else would), then closes the socket.
 * For an n that was opened, even if that failed. */
void agent_nft_close(struct agent_nft *n);

/* ---- Pure parts: the batch encoder and the reply reader, for the unit
 * tests and the fuzzer.  Expressions load into and read from register 1
 * (NFT_REG_1); values are as the kernel wants them (ports big-endian, uid
 * and l4proto in host order). */

enum nft_chain_id { NFT_CHAIN_NONE, NFT_CHAIN_PRE, NFT_CHAIN_OUT };

/* What one message of a batch does, to name the one that failed. */
struct nft_msg_what {
	uint16_t type;           /* NFT_MSG_*, NFNL_MSG_BATCH_BEGIN or _END */
	uint8_t chain;           /* enum nft_chain_id, for NEWCHAIN and NEWRULE */
	bool owner;              /* NEWTABLE with NFT_TABLE_F_OWNER */
	struct agent_nft_rdr r;  /* NEWRULE's redirect */
};

#define NFT_BATCH_MAX (2 + 5 + 2 * AGENT_NFT_MAX)
struct nft_batch {
	uint32_t seq; /* message i (0: BEGIN, n - 1: END) has sequence number seq + i */
	size_t n;
	struct nft_msg_what what[NFT_BATCH_MAX];
};

void nft_expr_meta(struct wcursor *w, uint32_t key);
void nft_expr_cmp(struct wcursor *w, uint32_t op, const void *data, size_t len);
void nft_expr_payload(struct wcursor *w, uint32_t base, uint32_t offset, uint32_t len);
void nft_expr_fib_daddr_type(struct wcursor *w);
void nft_expr_immediate(struct wcursor *w, const void *data, size_t len);
void nft_expr_redir(struct wcursor *w); /* to the port in register 1 */
/* One NEWRULE message: r's rule in chain (NFT_CHAIN_PRE or _OUT). */
void nft_rule_encode(struct wcursor *w, uint32_t seq, enum nft_chain_id chain,
		     const struct agent_nft_rdr *r);

/* Bytes enough for the batch of n redirects. */
size_t nft_batch_size(size_t n);
/* The batch that makes the table hold exactly r[0..n) (n == 0: no table,
 * or with NFT_BATCH_CHAINS the table and its chains, empty; n <=
 * AGENT_NFT_MAX), into buf; b says what each message is.  flags:
 * NFT_BATCH_OWNER (the table made with NFT_TABLE_F_OWNER), NFT_BATCH_CHAINS.
 * Its length, or -ENOSPC, -EINVAL. */
#define NFT_BATCH_OWNER 1u
#define NFT_BATCH_CHAINS 2u
ssize_t nft_batch_encode(uint8_t *buf, size_t cap, uint32_t seq, const struct agent_nft_rdr *r,
			 size_t n, unsigned flags, struct nft_batch *b);
/* "NEWRULE output tcp dport 80" and the like, into buf. */
const char *nft_msg_name(const struct nft_msg_what *m, char *buf, size_t size);

/* The kernel's answers to one batch, fed datagram by datagram. */
struct nft_acks {
	const struct nft_batch *b;
	bool answered[NFT_BATCH_MAX];
	size_t acked;   /* messages answered, of those that asked (not BEGIN, END) */
	int error;      /* the first failure (-errno), 0 while none */
	size_t error_at; /* its message's index in b */
	char text[128]; /* the kernel's words for it (extended ACK), if any */
	size_t stray;   /* answers to no message of the batch: ignored */
};

void nft_acks_init(struct nft_acks *a, const struct nft_batch *b);
/* One datagram from the kernel: 0, or -EBADMSG when it does not parse
 * (what came before the bad part is counted). */
int nft_acks_feed(struct nft_acks *a, const uint8_t *buf, size_t len);
/* Every message that asked for an answer has one. */
bool nft_acks_done(const struct nft_acks *a);
/* The failure is the kernel's refusal of the owner flag (Linux < 5.12):
 * agent_nft then sets no_owner and sends the batch again without it. */
bool nft_owner_refused(const struct nft_batch *b, const struct nft_acks *a);
