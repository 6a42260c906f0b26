/* libFuzzer target for DNS messages (dnsmsg) and name routing (dnsroute):
 * whatever the bytes, no crash, no read outside the input; a message that
 * parses survives every writer, and what the writers produce parses again
 * with the same question and record counts.  The question alone (what the
 * manager reads of queries and replies): it lies inside the message, is
 * the question a whole parse finds, and equals itself in other letter
 * case but not with another type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dns/dnsmsg.h"
#include "dns/dnsroute.h"

#include "fuzz.h"

static uint8_t out[DNS_MSG_MAX], cut[DNS_MSG_MAX];

static void check_writers(const uint8_t *data, size_t size, const struct dns_msg *msg)
{
	struct dns_name to;
	struct dns_msg m2;
	struct dnsmsg_rewrite rw = { 0x4242, &msg->qname, &to, 3 };
	ssize_t n;
	size_t t;

	dnsmsg_name_from_str("web.default", &to);
	n = dnsmsg_rewrite(data, size, &rw, out, sizeof(out));
	if (n > 0) {
		if (dnsmsg_parse(out, (size_t)n, &m2) < 0 || m2.h.id != 0x4242 || m2.h.an != msg->h.an ||
		    m2.h.ns != msg->h.ns || m2.h.ar != msg->h.ar || !dnsmsg_name_same(&m2.qname, &to))
			abort();
	}
	n = dnsmsg_error(msg, DNS_R_SERVFAIL, out, sizeof(out));
	if (n < 0 || dnsmsg_parse(out, (size_t)n, &m2) < 0 || !dnsmsg_name_same(&m2.qname, &msg->qname))
		abort();
	n = dnsmsg_requery(data, msg, 7, &to, out, sizeof(out));
	if (n < 0 || dnsmsg_parse(out, (size_t)n, &m2) < 0 || m2.edns != msg->edns)
		abort();
	memcpy(cut, data, size);
	t = dnsmsg_truncate(cut, size, 512);
	if (t > 512 && t != size)
		abort();
	if (t && t < size && (dnsmsg_parse(cut, t, &m2) < 0 || !(m2.h.flags & DNS_F_TC)))
		abort();
}

static void check_question(const uint8_t *data, size_t size, struct dns_msg *q)
{
	struct dns_msg other;
	uint8_t ones[1] = { 0xff };

	if (dnsmsg_question_read(data, size, q) < 0)
		return;
	CHECK(q->h.qd == 1 && q->qend <= size && q->qend == DNS_HDR_LEN + q->qname.len + 4 && !q->edns);
	CHECK(q->qname.len >= 1 && q->qname.w[q->qname.len - 1] == 0);
	other = *q;
	dnsmsg_name_mix(&other.qname, ones, 1, NULL); /* every letter upper case */
	CHECK(dnsmsg_question_eq(q, q) && dnsmsg_question_eq(q, &other));
	other.qtype ^= 0x20; /* 'A' and 'a' are types 65 and 97, not one */
	CHECK(!dnsmsg_question_eq(q, &other));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_msg msg, q;
	struct dnsroute_cfg cfg;
	struct dnsroute r;
	char str[DNS_NAME_STR_MAX];
	uint32_t ttl;

	if (size > DNS_MSG_MAX)
		return 0;
	/* every offset as the start of a name */
	for (size_t off = 0; off < size && off < 64; off++) {
		struct dns_name n;
		struct cursor c;
		cursor_init(&c, data, size);
		cursor_skip(&c, off);
		if (dnsmsg_name_read(&c, &n) == 0 && (c.off > size || c.off <= off || n.len < 1))
			abort();
	}
	check_question(data, size, &q);
	if (dnsmsg_parse(data, size, &msg) < 0)
		return 0;
	CHECK(q.qend == msg.qend && dnsmsg_name_same(&q.qname, &msg.qname) && q.qtype == msg.qtype &&
	      q.qclass == msg.qclass && !memcmp(&q.h, &msg.h, sizeof(q.h)));
	if (msg.qend > size || (msg.edns && msg.opt_rd_off + msg.opt_rd_len > size))
		abort();
	dnsmsg_name_str(&msg.qname, str);
	if (strlen(str) >= sizeof(str))
		abort();
	dnsmsg_cache_ttl(&msg, &ttl);
	check_writers(data, size, &msg);
	dnsroute_cfg_init(&cfg, "cluster.local", "default");
	cidr_list_parse("10.42.0.0/16", &cfg.pod);
	cidr_list_parse("10.43.0.0/16", &cfg.svc_cidrs);
	dnsroute_decide(&cfg, &msg.qname, &r);
	if (r.kind != DNSROUTE_UPSTREAM && r.name.len < msg.qname.len)
		abort();
	return 0;
}
