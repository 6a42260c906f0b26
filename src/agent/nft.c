/* The agent's port redirects over nf_tables netlink (nft.h). */
#include <netinet/in.h>

#include "agent/nft.h"

#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent/nlmsg.h"
#include "common/log.h"
#include "common/util.h"

/* NF_IP_PRI_NAT_DST and NF_IP6_PRI_NAT_DST, nft's "dstnat". */
#define NFT_PRIO_DSTNAT (-100)

/* ---- Expressions: NFTA_LIST_ELEM { NFTA_EXPR_NAME, NFTA_EXPR_DATA { ... } }.
 * Attributes in the order nft 1.0 sends them, so that the unit tests can
 * hold our messages against nft's own bytes. */

struct expr_nest {
	size_t elem, data;
};

static struct expr_nest expr_begin(struct wcursor *w, const char *name)
{
	struct expr_nest e;

	e.elem = nlw_nest_begin(w, NFTA_LIST_ELEM);
	nlw_attr_str(w, NFTA_EXPR_NAME, name);
	e.data = nlw_nest_begin(w, NFTA_EXPR_DATA);
	return e;
}

static void expr_end(struct wcursor *w, struct expr_nest e)
{
	nlw_nest_end(w, e.data);
	nlw_nest_end(w, e.elem);
}

/* NFTA_DATA_VALUE inside attribute type: how cmp and immediate take values. */
static void data_value(struct wcursor *w, uint16_t type, const void *data, size_t len)
{
	size_t nest = nlw_nest_begin(w, type);

	nlw_attr(w, NFTA_DATA_VALUE, data, len);
	nlw_nest_end(w, nest);
}

void nft_expr_meta(struct wcursor *w, uint32_t key)
{
	struct expr_nest e = expr_begin(w, "meta");

	nlw_attr_be32(w, NFTA_META_KEY, key);
	nlw_attr_be32(w, NFTA_META_DREG, NFT_REG_1);
	expr_end(w, e);
}

void nft_expr_cmp(struct wcursor *w, uint32_t op, const void *data, size_t len)
{
	struct expr_nest e = expr_begin(w, "cmp");

	nlw_attr_be32(w, NFTA_CMP_SREG, NFT_REG_1);
	nlw_attr_be32(w, NFTA_CMP_OP, op);
	data_value(w, NFTA_CMP_DATA, data, len);
	expr_end(w, e);
}

void nft_expr_payload(struct wcursor *w, uint32_t base, uint32_t offset, uint32_t len)
{
	struct expr_nest e = expr_begin(w, "payload");

	nlw_attr_be32(w, NFTA_PAYLOAD_DREG, NFT_REG_1);
	nlw_attr_be32(w, NFTA_PAYLOAD_BASE, base);
	nlw_attr_be32(w, NFTA_PAYLOAD_OFFSET, offset);
	nlw_attr_be32(w, NFTA_PAYLOAD_LEN, len);
	expr_end(w, e);
}

void nft_expr_fib_daddr_type(struct wcursor *w)
{
	struct expr_nest e = expr_begin(w, "fib");

	nlw_attr_be32(w, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
	nlw_attr_be32(w, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	nlw_attr_be32(w, NFTA_FIB_DREG, NFT_REG_1);
	expr_end(w, e);
}

void nft_expr_immediate(struct wcursor *w, const void *data, size_t len)
{
	struct expr_nest e = expr_begin(w, "immediate");

	nlw_attr_be32(w, NFTA_IMMEDIATE_DREG, NFT_REG_1);
	data_value(w, NFTA_IMMEDIATE_DATA, data, len);
	expr_end(w, e);
}

void nft_expr_redir(struct wcursor *w)
{
	struct expr_nest e = expr_begin(w, "redir");

	nlw_attr_be32(w, NFTA_REDIR_REG_PROTO_MIN, NFT_REG_1);
	nlw_attr_be32(w, NFTA_REDIR_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	expr_end(w, e);
}

/* ---- Messages */

static const char *chain_name(enum nft_chain_id chain)
{
	return chain == NFT_CHAIN_PRE ? "prerouting" : chain == NFT_CHAIN_OUT ? "output" : NULL;
}

/* A message with its nfgenmsg; NLM_F_REQUEST, and NLM_F_ACK but on the
 * batch's bounds (which the kernel never acknowledges). */
static size_t msg_begin(struct wcursor *w, uint16_t type, uint16_t flags, uint32_t seq)
{
	bool bound = type == NFNL_MSG_BATCH_BEGIN || type == NFNL_MSG_BATCH_END;
	struct nfgenmsg g = { .version = NFNETLINK_V0 };
	size_t start;

	if (bound) {
		g.nfgen_family = AF_UNSPEC;
		g.res_id = htons(NFNL_SUBSYS_NFTABLES);
	} else {
		g.nfgen_family = NFPROTO_INET;
		type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | type);
		flags |= NLM_F_ACK;
	}
	start = nlw_msg_begin(w, type, (uint16_t)(NLM_F_REQUEST | flags), seq);
	nlw_put(w, &g, sizeof(g));
	return start;
}

static void table_encode(struct wcursor *w, uint32_t seq, uint16_t type, bool owner)
{
	size_t m = msg_begin(w, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0, seq);

	nlw_attr_str(w, NFTA_TABLE_NAME, AGENT_NFT_TABLE);
	if (owner)
		nlw_attr_be32(w, NFTA_TABLE_FLAGS, NFT_TABLE_F_OWNER);
	nlw_msg_end(w, m);
}

static void chain_encode(struct wcursor *w, uint32_t seq, enum nft_chain_id chain)
{
	size_t m = msg_begin(w, NFT_MSG_NEWCHAIN, NLM_F_CREATE, seq), hook;

	nlw_attr_str(w, NFTA_CHAIN_TABLE, AGENT_NFT_TABLE);
	nlw_attr_str(w, NFTA_CHAIN_NAME, chain_name(chain));
	nlw_attr_str(w, NFTA_CHAIN_TYPE, "nat");
	nlw_attr_be32(w, NFTA_CHAIN_POLICY, NF_ACCEPT);
	hook = nlw_nest_begin(w, NFTA_CHAIN_HOOK);
	nlw_attr_be32(w, NFTA_HOOK_HOOKNUM, chain == NFT_CHAIN_PRE ? NF_INET_PRE_ROUTING : NF_INET_LOCAL_OUT);
	nlw_attr_be32(w, NFTA_HOOK_PRIORITY, (uint32_t)NFT_PRIO_DSTNAT);
	nlw_nest_end(w, hook);
	nlw_msg_end(w, m);
}

void nft_rule_encode(struct wcursor *w, uint32_t seq, enum nft_chain_id chain,
		     const struct agent_nft_rdr *r)
{
	uint8_t dport[2] = { (uint8_t)(r->port >> 8), (uint8_t)r->port };
	uint8_t to[2] = { (uint8_t)(r->to_port >> 8), (uint8_t)r->to_port };
	uint32_t uid = r->exempt_uid, local = RTN_LOCAL; /* host order, as the kernel loads them */
	size_t m, list;

	if (!chain_name(chain)) {
		w->inval = true;
		return;
	}
	m = msg_begin(w, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND, seq);
	nlw_attr_str(w, NFTA_RULE_TABLE, AGENT_NFT_TABLE);
	nlw_attr_str(w, NFTA_RULE_CHAIN, chain_name(chain));
	list = nlw_nest_begin(w, NFTA_RULE_EXPRESSIONS);
	if (chain == NFT_CHAIN_OUT) {
		nft_expr_meta(w, NFT_META_SKUID);
		nft_expr_cmp(w, NFT_CMP_NEQ, &uid, sizeof(uid));
		nft_expr_fib_daddr_type(w);
		nft_expr_cmp(w, NFT_CMP_EQ, &local, sizeof(local));
	}
	nft_expr_meta(w, NFT_META_L4PROTO);
	nft_expr_cmp(w, NFT_CMP_EQ, &r->proto, 1);
	/* The destination port: at offset 2 in TCP and UDP alike. */
	nft_expr_payload(w, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
	nft_expr_cmp(w, NFT_CMP_EQ, dport, sizeof(dport));
	nft_expr_immediate(w, to, sizeof(to));
	nft_expr_redir(w);
	nlw_nest_end(w, list);
	nlw_msg_end(w, m);
}

/* Notes what the next message is; its sequence number. */
static uint32_t batch_note(struct nft_batch *b, uint16_t type, enum nft_chain_id chain, bool owner,
			   const struct agent_nft_rdr *r)
{
	struct nft_msg_what *m = &b->what[b->n];

	m->type = type;
	m->chain = (uint8_t)chain;
	m->owner = owner;
	if (r)
		m->r = *r;
	return b->seq + (uint32_t)b->n++;
}

size_t nft_batch_size(size_t n)
{
	/* Bounds and tables < 200 bytes, chains < 100 each, rules < 500 each. */
	return 512 + n * 1024;
}

ssize_t nft_batch_encode(uint8_t *buf, size_t cap, uint32_t seq, const struct agent_nft_rdr *r,
			 size_t n, unsigned flags, struct nft_batch *b)
{
	bool owner = flags & NFT_BATCH_OWNER;
	struct wcursor w;
	size_t m;

	if (n > AGENT_NFT_MAX)
		return -EINVAL;
	memset(b, 0, sizeof(*b));
	b->seq = seq;
	wcursor_init(&w, buf, cap);
	m = msg_begin(&w, NFNL_MSG_BATCH_BEGIN, 0, batch_note(b, NFNL_MSG_BATCH_BEGIN, 0, false, NULL));
	nlw_msg_end(&w, m);
	/* Creating it first makes the delete succeed whether it was there or not. */
	table_encode(&w, batch_note(b, NFT_MSG_NEWTABLE, 0, false, NULL), NFT_MSG_NEWTABLE, false);
	table_encode(&w, batch_note(b, NFT_MSG_DELTABLE, 0, false, NULL), NFT_MSG_DELTABLE, false);
	if (n > 0 || (flags & NFT_BATCH_CHAINS)) {
		table_encode(&w, batch_note(b, NFT_MSG_NEWTABLE, 0, owner, NULL), NFT_MSG_NEWTABLE, owner);
		chain_encode(&w, batch_note(b, NFT_MSG_NEWCHAIN, NFT_CHAIN_PRE, false, NULL), NFT_CHAIN_PRE);
		chain_encode(&w, batch_note(b, NFT_MSG_NEWCHAIN, NFT_CHAIN_OUT, false, NULL), NFT_CHAIN_OUT);
	}
	for (size_t i = 0; i < n; i++) {
		nft_rule_encode(&w, batch_note(b, NFT_MSG_NEWRULE, NFT_CHAIN_PRE, false, &r[i]), NFT_CHAIN_PRE, &r[i]);
		nft_rule_encode(&w, batch_note(b, NFT_MSG_NEWRULE, NFT_CHAIN_OUT, false, &r[i]), NFT_CHAIN_OUT, &r[i]);
	}
	m = msg_begin(&w, NFNL_MSG_BATCH_END, 0, batch_note(b, NFNL_MSG_BATCH_END, 0, false, NULL));
	nlw_msg_end(&w, m);
	return wcursor_result(&w);
}

static const char *proto_name(uint8_t proto, char buf[16])
{
	if (proto == IPPROTO_TCP)
		return "tcp";
	if (proto == IPPROTO_UDP)
		return "udp";
	snprintf(buf, 16, "proto %u", proto);
	return buf;
}

const char *nft_msg_name(const struct nft_msg_what *m, char *buf, size_t size)
{
	char p[16];

	switch (m->type) {
	case NFNL_MSG_BATCH_BEGIN:
	case NFNL_MSG_BATCH_END:
		snprintf(buf, size, "batch");
		break;
	case NFT_MSG_NEWTABLE:
		snprintf(buf, size, "NEWTABLE inet %s%s", AGENT_NFT_TABLE, m->owner ? " (flags owner)" : "");
		break;
	case NFT_MSG_DELTABLE:
		snprintf(buf, size, "DELTABLE inet %s", AGENT_NFT_TABLE);
		break;
	case NFT_MSG_NEWCHAIN:
		snprintf(buf, size, "NEWCHAIN %s", chain_name(m->chain));
		break;
	case NFT_MSG_NEWRULE:
		snprintf(buf, size, "NEWRULE %s %s dport %u", chain_name(m->chain), proto_name(m->r.proto, p),
			 m->r.port);
		break;
	default:
		snprintf(buf, size, "message %u", m->type);
	}
	return buf;
}

/* ---- Replies */

void nft_acks_init(struct nft_acks *a, const struct nft_batch *b)
{
	memset(a, 0, sizeof(*a));
	a->b = b;
}

int nft_acks_feed(struct nft_acks *a, const uint8_t *buf, size_t len)
{
	struct cursor c;
	struct nlmsg m;
	char text[sizeof(a->text)];
	size_t i;
	int ret, e;

	cursor_init(&c, buf, len);
	while ((ret = nlr_msg_next(&c, &m)) > 0) {
		/* Nothing but answers was asked for (no NLM_F_ECHO, no groups). */
		if (m.type != NLMSG_ERROR)
			continue;
		if (nlr_error_parse(&m, &e, text, sizeof(text)) < 0)
			return -EBADMSG;
		i = (uint32_t)(m.seq - a->b->seq);
		if (i >= a->b->n || a->answered[i]) {
			a->stray++;
			continue;
		}
		a->answered[i] = true;
		if (i > 0 && i + 1 < a->b->n)
			a->acked++;
		if (e && !a->error) {
			a->error = e;
			a->error_at = i;
			memcpy(a->text, text, sizeof(text));
		}
	}
	return ret;
}

bool nft_acks_done(const struct nft_acks *a)
{
	return a->b->n >= 2 && a->acked == a->b->n - 2;
}

bool nft_owner_refused(const struct nft_batch *b, const struct nft_acks *a)
{
	/* nf_tables_newtable: flags outside NFT_TABLE_F_MASK are -EOPNOTSUPP. */
	return a->error == -EOPNOTSUPP && a->error_at < b->n && b->what[a->error_at].owner;
}

/* ---- The socket */

/* Sends a batch and reads its answers into a: 0 when every message has
 * one, or a failure has been told and nothing more is queued (the kernel
 * queues all its answers before sendmsg returns); else -errno. */
static int nft_exchange(struct agent_nft *n, const uint8_t *buf, size_t len, struct nft_acks *a)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK }, from;
	uint8_t rx[16384];
	uint64_t deadline = now_ms() + AGENT_NFT_TIMEOUT_MS;
	struct iovec iov = { rx, sizeof(rx) };
	struct msghdr mh = { .msg_name = &from, .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t got;
	int ret;

	if (sendto(n->fd, buf, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;
	while (!nft_acks_done(a)) {
		if (!a->error) {
			uint64_t now = now_ms();
			struct pollfd p = { .fd = n->fd, .events = POLLIN };

			ret = now < deadline ? poll(&p, 1, (int)(deadline - now)) : 0;
			if (ret < 0 && errno == EINTR)
				continue;
			if (ret < 0)
				return -errno;
			if (ret == 0)
				return -ETIMEDOUT;
		}
		mh.msg_namelen = sizeof(from);
		got = recvmsg(n->fd, &mh, MSG_DONTWAIT);
		if (got < 0 && errno == EAGAIN && a->error)
			return 0;
		if (got < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (got < 0)
			return -errno; /* -ENOBUFS: answers were lost */
		if (mh.msg_flags & MSG_TRUNC)
			return -EMSGSIZE;
		if (mh.msg_namelen < sizeof(from) || from.nl_pid != 0)
			continue; /* not from the kernel */
		ret = nft_acks_feed(a, rx, (size_t)got);
		if (ret < 0)
			return ret;
	}
	return 0;
}

/* Words for the failure of op (hints for the usual causes) into n->err,
 * and the log. */
static void nft_fail(struct agent_nft *n, const char *op, const struct nft_batch *b,
		     const struct nft_acks *a, int err)
{
	const char *what = "", *sep = "", *hint = "", *text = "";
	char name[64];

	if (a && a->error && a->error == err) {
		const struct nft_msg_what *m = &b->what[a->error_at];

		what = nft_msg_name(m, name, sizeof(name));
		sep = ": ";
		if (err == -EPERM && m->type == NFNL_MSG_BATCH_BEGIN)
			hint = " (CAP_NET_ADMIN is needed)";
		else if (err == -EPERM)
			hint = " (another process owns the table: a second agent?)";
		else if (err == -EOPNOTSUPP || err == -ENOENT)
			hint = " (a kernel without inet nat, fib or redir?)";
		text = a->text;
	}
	snprintf(n->err, sizeof(n->err), "%s: %s%s%s%s%s%s%s", op, what, sep, strerror(-err), hint,
		 text[0] ? " [" : "", text, text[0] ? "]" : "");
	log_warn("nft: %s", n->err);
}

/* One batch making the table hold n->r; 0 or -errno, with a filled in. */
static int nft_apply_once(struct agent_nft *n, uint8_t *buf, size_t cap, struct nft_batch *b,
			  struct nft_acks *a)
{
	ssize_t len;
	int ret;

	nft_acks_init(a, b);
	len = nft_batch_encode(buf, cap, n->seq, n->r, n->n,
			       (n->no_owner ? 0 : NFT_BATCH_OWNER) | (n->made ? NFT_BATCH_CHAINS : 0), b);
	if (len < 0)
		return (int)len;
	n->seq += (uint32_t)b->n;
	ret = nft_exchange(n, buf, (size_t)len, a);
	return ret < 0 ? ret : a->error;
}

/* Makes the table hold exactly n->r (when n->n is 0: the empty chains
 * once made, else no table); op names the change in a failure's words.
 * 0 or -errno. */
static int nft_apply(struct agent_nft *n, const char *op)
{
	size_t cap = nft_batch_size(n->n);
	uint8_t *buf = malloc(cap);
	struct nft_batch b;
	struct nft_acks a;
	int ret;

	n->err[0] = 0;
	if (!buf) {
		ret = -ENOMEM;
		nft_fail(n, op, NULL, NULL, ret);
		goto out;
	}
	ret = nft_apply_once(n, buf, cap, &b, &a);
	if (ret < 0 && ret == a.error && nft_owner_refused(&b, &a)) {
		n->no_owner = true;
		log_info("nft: no table owner flag in this kernel (< 5.12): a killed agent's rules stay "
			 "until the next agent's cleanup");
		ret = nft_apply_once(n, buf, cap, &b, &a);
	}
	if (ret < 0)
		nft_fail(n, op, &b, &a, ret);
	else if (n->n > 0)
		n->made = true;
out:
	free(buf);
	return ret;
}

int agent_nft_open(struct agent_nft *n)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int one = 1, ret = 0;

	memset(n, 0, sizeof(*n));
	n->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (n->fd < 0 || bind(n->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = -errno;
		goto out;
	}
	/* Failures without the request quoted back, and with the kernel's
	 * words: both optional. */
	(void)setsockopt(n->fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof(one));
	(void)setsockopt(n->fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one));
	n->seq = (uint32_t)time(NULL);
out:
	if (ret < 0) {
		snprintf(n->err, sizeof(n->err), "netlink socket: %s", strerror(-ret));
		log_warn("nft: %s", n->err);
		if (n->fd >= 0)
			close(n->fd);
		n->fd = -1;
	}
	return ret;
}

static struct agent_nft_rdr *nft_find(struct agent_nft *n, uint8_t proto, uint16_t port)
{
	for (size_t i = 0; i < n->n; i++)
		if (n->r[i].proto == proto && n->r[i].port == port)
			return &n->r[i];
	return NULL;
}

int agent_nft_cleanup(struct agent_nft *n)
{
	size_t was = n->n;
	bool made = n->made;
	int ret;

	n->n = 0;
	n->made = false;
	ret = nft_apply(n, "cleanup");
	if (ret < 0) {
		n->n = was;
		n->made = made;
	}
	return ret;
}

int agent_nft_redirect(struct agent_nft *n, uint8_t proto, uint16_t port, uint16_t to_port,
		       uint32_t exempt_uid)
{
	struct agent_nft_rdr *r = nft_find(n, proto, port), was = { 0 };
	char op[64], p[16];
	int ret;

	snprintf(op, sizeof(op), "redirect of %s port %u to %u", proto_name(proto, p), port, to_port);
	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP) || !port || !to_port || port == to_port) {
		ret = -EINVAL;
		snprintf(n->err, sizeof(n->err), "%s: not a redirect (tcp or udp, ports 1-65535, two of them)", op);
		goto out;
	}
	if (!r && n->n == AGENT_NFT_MAX) {
		ret = -ENOSPC;
		snprintf(n->err, sizeof(n->err), "%s: %d ports are redirected already", op, AGENT_NFT_MAX);
		goto out;
	}
	if (r)
		was = *r;
	else
		r = &n->r[n->n++];
	*r = (struct agent_nft_rdr){ proto, port, to_port, exempt_uid };
	ret = nft_apply(n, op);
	if (ret < 0 && was.port)
		*r = was;
	else if (ret < 0)
		n->n--;
out:
	return ret;
}

int agent_nft_unredirect(struct agent_nft *n, uint8_t proto, uint16_t port)
{
	struct agent_nft_rdr *r = nft_find(n, proto, port), was;
	size_t i;
	char op[64], p[16];
	int ret;

	snprintf(op, sizeof(op), "unredirect of %s port %u", proto_name(proto, p), port);
	if (!r) {
		ret = -ENOENT;
		snprintf(n->err, sizeof(n->err), "%s: not redirected", op);
		goto out;
	}
	was = *r;
	i = (size_t)(r - n->r);
	memmove(r, r + 1, (n->n - i - 1) * sizeof(*r));
	n->n--;
	ret = nft_apply(n, op);
	if (ret < 0) {
		memmove(&n->r[i + 1], &n->r[i], (n->n - i) * sizeof(*r));
		n->r[i] = was;
		n->n++;
	}
out:
	return ret;
}

const char *agent_nft_error(const struct agent_nft *n)
{
	return n->err;
}

void agent_nft_close(struct agent_nft *n)
{
	if (n->fd < 0)
		return;
	if (n->n > 0 || n->made)
		agent_nft_cleanup(n); /* logged if it fails */
	close(n->fd);
	n->fd = -1;
}
