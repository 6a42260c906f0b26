/* DNS messages (dnsmsg), name routing (dnsroute) and the answer cache
 * (dnscache). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dns/dnscache.h"
#include "dns/dnsmsg.h"
#include "dns/dnsroute.h"

/* ---- a tiny message builder for the tests ---- */

struct mb {
	uint8_t b[4096];
	size_t n;
};

static void mb8(struct mb *m, unsigned v) { m->b[m->n++] = (uint8_t)v; }
static void mb16(struct mb *m, unsigned v) { mb8(m, v >> 8); mb8(m, v & 255); }
static void mb32(struct mb *m, uint32_t v) { mb16(m, v >> 16); mb16(m, v & 0xffff); }
static void mbname(struct mb *m, const char *s)
{
	struct dns_name n;
	assert_int_equal(dnsmsg_name_from_str(s, &n), 0);
	memcpy(m->b + m->n, n.w, n.len);
	m->n += n.len;
}
static void mbhdr(struct mb *m, unsigned id, unsigned flags, unsigned qd, unsigned an, unsigned ns, unsigned ar)
{
	m->n = 0;
	mb16(m, id); mb16(m, flags); mb16(m, qd); mb16(m, an); mb16(m, ns); mb16(m, ar);
}
static void mbrr_hdr(struct mb *m, unsigned type, uint32_t ttl, unsigned rdlen)
{
	mb16(m, type); mb16(m, 1); mb32(m, ttl); mb16(m, rdlen);
}

static void query(struct mb *m, const char *name, unsigned type, bool edns)
{
	mbhdr(m, 0x1234, DNS_F_RD, 1, 0, 0, edns ? 1 : 0);
	mbname(m, name);
	mb16(m, type);
	mb16(m, 1);
	if (edns) {
		mb8(m, 0); mb16(m, DNS_T_OPT); mb16(m, 1232); mb32(m, 0x8000); mb16(m, 4);
		mb16(m, 10); mb16(m, 0); /* an empty cookie option, just bytes */
	}
}

/* Answer to "web.default.svc.cluster.local A": owner compressed to the
 * question, a CNAME whose target is compressed too, an A, an SOA in
 * authority with TTL 7 and minimum 3. */
static void answer(struct mb *m, const char *qname)
{
	mbhdr(m, 0xbeef, DNS_F_QR | DNS_F_AA | DNS_F_RD | DNS_F_RA, 1, 2, 1, 0);
	mbname(m, qname);
	mb16(m, DNS_T_A); mb16(m, 1);
	mb16(m, 0xc00c); mbrr_hdr(m, DNS_T_CNAME, 30, 6); /* "\3www" + pointer */
	mb8(m, 3); mb8(m, 'w'); mb8(m, 'w'); mb8(m, 'w'); mb16(m, 0xc00c);
	mb16(m, 0xc00c); mbrr_hdr(m, DNS_T_A, 5, 4); mb32(m, 0x0a2b0014);
	mb16(m, 0xc00c);
	{
		size_t at = m->n + 8;
		mbrr_hdr(m, DNS_T_SOA, 7, 0);
		size_t start = m->n;
		mb16(m, 0xc00c); mb16(m, 0xc00c);
		mb32(m, 1); mb32(m, 2); mb32(m, 3); mb32(m, 4); mb32(m, 3);
		m->b[at] = (uint8_t)((m->n - start) >> 8);
		m->b[at + 1] = (uint8_t)(m->n - start);
	}
}

static struct dns_name N(const char *s)
{
	struct dns_name n;
	assert_int_equal(dnsmsg_name_from_str(s, &n), 0);
	return n;
}

static const char *S(const struct dns_name *n)
{
	static char buf[DNS_NAME_STR_MAX];
	return dnsmsg_name_str(n, buf);
}

/* The readers, from a cursor on the message at *off; *off moves as the
 * cursor does. */
static int name_at(const uint8_t *m, size_t len, size_t *off, struct dns_name *n)
{
	struct cursor c;
	int ret;

	cursor_init(&c, m, len);
	cursor_skip(&c, *off);
	ret = dnsmsg_name_read(&c, n);
	*off = c.off;
	return ret;
}

static int rr_at(const uint8_t *m, size_t len, size_t *off, struct dns_rr *rr)
{
	struct cursor c;
	int ret;

	cursor_init(&c, m, len);
	cursor_skip(&c, *off);
	ret = dnsmsg_rr_read(&c, rr);
	*off = c.off;
	return ret;
}

/* ---- names ---- */

static void test_name_from_str(void **state)
{
	struct dns_name n;
	char long_label[80], long_name[400];
	(void)state;
	n = N("Web.Default");
	assert_int_equal(n.len, 13);
	assert_memory_equal(n.w, "\3Web\7Default", 13);
	assert_string_equal(S(&n), "Web.Default");
	n = N("cluster.local.");
	assert_int_equal(n.len, 15);
	n = N(".");
	assert_int_equal(n.len, 1);
	assert_string_equal(S(&n), ".");
	static const char *bad[] = { "", "..", "a..b", ".a", "a b", "a\\b", "a.", NULL };
	for (int i = 0; bad[i]; i++)
		if (strcmp(bad[i], "a.") != 0)
			assert_int_equal(dnsmsg_name_from_str(bad[i], &n), -EINVAL);
	assert_int_equal(dnsmsg_name_from_str("a..", &n), -EINVAL);
	memset(long_label, 'x', 64);
	long_label[64] = 0;
	assert_int_equal(dnsmsg_name_from_str(long_label, &n), -EINVAL);
	long_label[63] = 0;
	assert_int_equal(dnsmsg_name_from_str(long_label, &n), 0);
	/* 4 x 63 + 3 dots = 255 characters: 257 bytes of wire form, too long */
	snprintf(long_name, sizeof(long_name), "%s.%s.%s.%s", long_label, long_label, long_label, long_label);
	assert_int_equal(dnsmsg_name_from_str(long_name, &n), -EINVAL);
	long_name[strlen(long_name) - 2] = 0; /* 61 in the last label: 255 bytes */
	assert_int_equal(dnsmsg_name_from_str(long_name, &n), 0);
	assert_int_equal(n.len, 255);
}

static void test_name_ops(void **state)
{
	struct dns_name a = N("WEB.default.svc.Cluster.Local"), b = N("web.default.svc.cluster.local");
	struct dns_name d = N("cluster.local"), x = N("ster.local"), r = N(".");
	const uint8_t *p;
	uint8_t len;
	(void)state;
	assert_true(dnsmsg_name_eq(&a, &b));
	assert_false(dnsmsg_name_same(&a, &b));
	assert_int_equal(dnsmsg_name_hash(&a, true), dnsmsg_name_hash(&b, true));
	assert_int_not_equal(dnsmsg_name_hash(&a, false), dnsmsg_name_hash(&b, false));
	assert_int_equal(dnsmsg_name_labels(&a), 5);
	assert_int_equal(dnsmsg_name_labels(&r), 0);
	assert_true(dnsmsg_name_under(&a, &d));
	assert_true(dnsmsg_name_under(&d, &d));
	assert_true(dnsmsg_name_under(&a, &r));
	assert_false(dnsmsg_name_under(&a, &x)); /* not on a label boundary */
	assert_false(dnsmsg_name_under(&d, &a));
	assert_true(dnsmsg_name_label(&a, 1, &p, &len));
	assert_int_equal(len, 7);
	assert_memory_equal(p, "default", 7);
	assert_false(dnsmsg_name_label(&a, 5, &p, &len));
	dnsmsg_name_strip(&a, 3);
	assert_true(dnsmsg_name_eq(&a, &d));
	a = N("web");
	assert_int_equal(dnsmsg_name_append(&a, &d), 0);
	assert_string_equal(S(&a), "web.cluster.local");
	dnsmsg_name_lower(&b);
	assert_string_equal(S(&b), "web.default.svc.cluster.local");
	/* escapes */
	a.len = 5;
	memcpy(a.w, "\3a.\x01\0", 5);
	assert_string_equal(S(&a), "a\\046\\001");
}

static void test_name_mix(void **state)
{
	struct dns_name n = N("web.default.svc.cluster.local"), orig = n, digits = N("1.2.3");
	uint8_t zero[4] = { 0 }, ones[4] = { 0xff, 0xff, 0xff, 0xff };
	(void)state;
	assert_int_equal(dnsmsg_name_mix(&n, ones, sizeof(ones), NULL), 25);
	assert_string_equal(S(&n), "WEB.DEFAULT.SVC.CLUSTER.LOCAL");
	assert_true(dnsmsg_name_eq(&n, &orig));
	/* all-lower bits on a lower-case name: one letter flips so it differs */
	n = orig;
	dnsmsg_name_mix(&n, zero, sizeof(zero), &orig);
	assert_false(dnsmsg_name_same(&n, &orig));
	assert_true(dnsmsg_name_eq(&n, &orig));
	assert_string_equal(S(&n), "Web.default.svc.cluster.local");
	assert_int_equal(dnsmsg_name_mix(&digits, ones, 4, NULL), 0);
}

static void test_name_read_compression(void **state)
{
	struct mb m;
	struct dns_name n;
	size_t off;
	(void)state;
	answer(&m, "web.default.svc.cluster.local");
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), 0);
	assert_string_equal(S(&n), "web.default.svc.cluster.local");
	off += 4;
	assert_int_equal(name_at(m.b, m.n, &off, &n), 0); /* the pointer */
	assert_string_equal(S(&n), "web.default.svc.cluster.local");
	/* a pointer to itself, forwards, into the header, or chained in a circle */
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	mb16(&m, 0xc00c);
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	mb8(&m, 1); mb8(&m, 'a'); mb16(&m, 0xc00c);
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	mb16(&m, 0xc002);
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	mb8(&m, 1); mb8(&m, 'a'); mb8(&m, 0); mb16(&m, 0xc00c); /* valid: "a" */
	off = 15;
	assert_int_equal(name_at(m.b, m.n, &off, &n), 0);
	assert_int_equal(off, 17);
	mb16(&m, 0xc00f); /* points at the pointer above: still backwards, still "a" */
	off = 17;
	assert_int_equal(name_at(m.b, m.n, &off, &n), 0);
	assert_string_equal(S(&n), "a");
	/* label types 0x40 and 0x80, a truncated label, a missing root */
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	mb8(&m, 0x41);
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	mb8(&m, 5); mb8(&m, 'a');
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	mb8(&m, 1); mb8(&m, 'a');
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), -EBADMSG);
	/* longer than 255 through pointers */
	mbhdr(&m, 1, 0, 1, 0, 0, 0);
	for (int i = 0; i < 5; i++) {
		mb8(&m, 60);
		for (int k = 0; k < 60; k++)
			mb8(&m, 'x');
	}
	mb8(&m, 0);
	mb8(&m, 60);
	for (int k = 0; k < 60; k++)
		mb8(&m, 'y');
	mb16(&m, 0xc00c);
	off = DNS_HDR_LEN;
	assert_int_equal(name_at(m.b, m.n, &off, &n), -EBADMSG);
}

/* ---- messages ---- */

static void test_parse_query_and_answer(void **state)
{
	struct mb m;
	struct dns_msg msg;
	uint32_t ttl = 0;
	(void)state;
	query(&m, "web.default", DNS_T_A, true);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), 0);
	assert_int_equal(msg.h.id, 0x1234);
	assert_string_equal(S(&msg.qname), "web.default");
	assert_int_equal(msg.qtype, DNS_T_A);
	assert_true(msg.edns);
	assert_true(msg.edns_do);
	assert_int_equal(msg.edns_size, 1232);
	assert_int_equal(msg.opt_rd_len, 4);
	answer(&m, "web.default.svc.cluster.local");
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), 0);
	assert_false(msg.edns);
	assert_int_equal(msg.min_ttl, 5);
	assert_true(msg.has_soa);
	assert_int_equal(msg.soa_ttl, 3);
	assert_int_equal(dnsmsg_cache_ttl(&msg, &ttl), 0);
	assert_int_equal(ttl, 5);
	/* every prefix is malformed, and so is a trailing byte */
	for (size_t n = 0; n < m.n; n++)
		assert_int_equal(dnsmsg_parse(m.b, n, &msg), -EBADMSG);
	m.b[m.n] = 0;
	assert_int_equal(dnsmsg_parse(m.b, m.n + 1, &msg), -EBADMSG);
}

static void test_parse_rejects(void **state)
{
	struct mb m;
	struct dns_msg msg;
	(void)state;
	/* two questions */
	mbhdr(&m, 1, 0, 2, 0, 0, 0);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mbname(&m, "b"); mb16(&m, 1); mb16(&m, 1);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), -EBADMSG);
	/* OPT in the answer section, two OPTs, OPT not owned by the root */
	mbhdr(&m, 1, 0, 1, 1, 0, 0);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mb8(&m, 0); mbrr_hdr(&m, DNS_T_OPT, 0, 0);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 0, 0, 2);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mb8(&m, 0); mbrr_hdr(&m, DNS_T_OPT, 0, 0);
	mb8(&m, 0); mbrr_hdr(&m, DNS_T_OPT, 0, 0);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 0, 0, 1);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mbname(&m, "a"); mbrr_hdr(&m, DNS_T_OPT, 0, 0);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), -EBADMSG);
	/* RDLENGTH past the end; a count larger than the records present */
	mbhdr(&m, 1, 0, 1, 1, 0, 0);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mbname(&m, "a"); mbrr_hdr(&m, DNS_T_A, 1, 5); mb32(&m, 1);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), -EBADMSG);
	mbhdr(&m, 1, 0, 1, 2, 0, 0);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mbname(&m, "a"); mbrr_hdr(&m, DNS_T_A, 1, 4); mb32(&m, 1);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), -EBADMSG);
	/* an SOA whose RDATA is short */
	mbhdr(&m, 1, DNS_F_QR | 3, 1, 0, 1, 0);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mbname(&m, "a"); mbrr_hdr(&m, DNS_T_SOA, 1, 4); mb8(&m, 0); mb8(&m, 0); mb16(&m, 0);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), -EBADMSG);
}

/* The header and question alone, as the manager reads queries and
 * replies: what follows is not looked at; one question, whole. */
static void test_question(void **state)
{
	struct mb m;
	struct dns_msg a, b;
	(void)state;
	query(&m, "Web.Default", 65, true);
	assert_int_equal(dnsmsg_question_read(m.b, m.n, &a), 0);
	assert_int_equal(a.h.id, 0x1234);
	assert_int_equal(a.h.ar, 1);
	assert_string_equal(S(&a.qname), "Web.Default");
	assert_int_equal(a.qtype, 65);
	assert_int_equal(a.qend, DNS_HDR_LEN + 13 + 4);
	assert_false(a.edns); /* the OPT record is not read */
	m.b[m.n] = 0xc0; /* nor a trailing byte */
	assert_int_equal(dnsmsg_question_read(m.b, m.n + 1, &b), 0);
	assert_int_equal(dnsmsg_question_read(m.b, a.qend, &b), 0);
	for (size_t n = 0; n < a.qend; n++)
		assert_int_equal(dnsmsg_question_read(m.b, n, &b), -EBADMSG);
	/* the same question in other letter case; not another type or class */
	query(&m, "wEB.dEFAULT", 65, false);
	assert_int_equal(dnsmsg_question_read(m.b, m.n, &b), 0);
	assert_true(dnsmsg_question_eq(&a, &b));
	b.qtype = 97; /* 0x61: 'a' where 65 is 'A' */
	assert_false(dnsmsg_question_eq(&a, &b));
	b.qtype = 65;
	b.qclass = 3;
	assert_false(dnsmsg_question_eq(&a, &b));
	query(&m, "web.defaults", 65, false);
	assert_int_equal(dnsmsg_question_read(m.b, m.n, &b), 0);
	assert_false(dnsmsg_question_eq(&a, &b));
	/* no question, two questions */
	mbhdr(&m, 1, 0, 0, 0, 0, 0);
	assert_int_equal(dnsmsg_question_read(m.b, m.n, &b), -EBADMSG);
	mbhdr(&m, 1, 0, 2, 0, 0, 0);
	mbname(&m, "a"); mb16(&m, 1); mb16(&m, 1);
	mbname(&m, "b"); mb16(&m, 1); mb16(&m, 1);
	assert_int_equal(dnsmsg_question_read(m.b, m.n, &b), -EBADMSG);
	/* a SERVFAIL from the question alone (the manager's): RD and CD kept,
	 * no OPT record */
	query(&m, "web.default", DNS_T_A, true);
	m.b[3] |= DNS_F_CD;
	assert_int_equal(dnsmsg_question_read(m.b, m.n, &a), 0);
	{
		uint8_t buf[DNS_HDR_LEN + DNS_NAME_MAX + 4];
		ssize_t n = dnsmsg_error(&a, DNS_R_SERVFAIL, buf, sizeof(buf));
		assert_int_equal(n, DNS_HDR_LEN + 13 + 4);
		assert_int_equal(dnsmsg_parse(buf, (size_t)n, &b), 0);
		assert_int_equal(b.h.flags, DNS_F_QR | DNS_F_RD | DNS_F_RA | DNS_F_CD | DNS_R_SERVFAIL);
		assert_int_equal(b.h.ar, 0);
		assert_true(dnsmsg_question_eq(&a, &b));
	}
	/* the ID, put in place */
	dnsmsg_set_id(m.b, 0xabcd);
	assert_int_equal(m.b[0], 0xab);
	assert_int_equal(m.b[1], 0xcd);
	assert_int_equal(m.b[2], DNS_F_RD >> 8); /* the flags untouched */
}

static void test_error_and_requery(void **state)
{
	struct mb m;
	struct dns_msg msg, out;
	uint8_t buf[512];
	ssize_t n;
	struct dns_name x = N("Web.Default.svc.cluster.local");
	(void)state;
	query(&m, "web.default", DNS_T_AAAA, true);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), 0);
	n = dnsmsg_error(&msg, DNS_R_NXDOMAIN, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(dnsmsg_parse(buf, (size_t)n, &out), 0);
	assert_int_equal(out.h.id, 0x1234);
	assert_int_equal(out.h.flags, DNS_F_QR | DNS_F_RD | DNS_F_RA | DNS_R_NXDOMAIN);
	assert_true(dnsmsg_name_same(&out.qname, &msg.qname));
	assert_int_equal(out.qtype, DNS_T_AAAA);
	assert_true(out.edns);
	assert_int_equal(dnsmsg_error(&msg, 2, buf, 20), -ENOSPC);
	n = dnsmsg_requery(m.b, &msg, 0x4242, &x, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(dnsmsg_parse(buf, (size_t)n, &out), 0);
	assert_int_equal(out.h.id, 0x4242);
	assert_int_equal(out.h.flags, DNS_F_RD);
	assert_true(dnsmsg_name_same(&out.qname, &x));
	assert_true(out.edns && out.edns_do);
	assert_int_equal(out.opt_rd_len, 4);
	assert_memory_equal(buf + out.opt_rd_off, m.b + msg.opt_rd_off, 4);
}

static void test_rewrite(void **state)
{
	struct mb m;
	struct dns_msg msg;
	uint8_t buf[1024];
	ssize_t n;
	struct dns_name from = N("wEb.dEfault.svc.cluster.LOCAL"), to = N("Web.Default");
	struct dnsmsg_rewrite rw = { 0x7777, &from, &to, 2 };
	struct dns_rr rr;
	size_t off;
	(void)state;
	answer(&m, "wEb.dEfault.svc.cluster.LOCAL");
	n = dnsmsg_rewrite(m.b, m.n, &rw, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(dnsmsg_parse(buf, (size_t)n, &msg), 0);
	assert_int_equal(msg.h.id, 0x7777);
	assert_true(dnsmsg_name_same(&msg.qname, &to));
	off = msg.qend;
	assert_int_equal(rr_at(buf, (size_t)n, &off, &rr), 0);
	assert_true(dnsmsg_name_same(&rr.name, &to));
	assert_int_equal(rr.type, DNS_T_CNAME);
	assert_int_equal(rr.ttl, 28);
	{
		struct dns_name t;
		size_t p = rr.rd_off;
		assert_int_equal(name_at(buf, (size_t)n, &p, &t), 0);
		/* the CNAME target stays the cluster's name, decompressed */
		assert_string_equal(S(&t), "www.wEb.dEfault.svc.cluster.LOCAL");
	}
	assert_int_equal(rr_at(buf, (size_t)n, &off, &rr), 0);
	assert_int_equal(rr.type, DNS_T_A);
	assert_int_equal(rr.ttl, 3);
	assert_true(dnsmsg_name_same(&rr.name, &to));
	assert_int_equal(rr_at(buf, (size_t)n, &off, &rr), 0);
	assert_int_equal(rr.type, DNS_T_SOA);
	assert_int_equal(rr.ttl, 5);
	assert_int_equal(off, (size_t)n);
	/* age beyond the TTL gives 0; a question that is not `from` is refused */
	rw.age = 100;
	n = dnsmsg_rewrite(m.b, m.n, &rw, buf, sizeof(buf));
	assert_int_equal(dnsmsg_parse(buf, (size_t)n, &msg), 0);
	assert_int_equal(msg.min_ttl, 0);
	rw.from = &to;
	assert_int_equal(dnsmsg_rewrite(m.b, m.n, &rw, buf, sizeof(buf)), -EBADMSG);
	rw.from = &from;
	assert_int_equal(dnsmsg_rewrite(m.b, m.n, &rw, buf, 40), -ENOSPC);
}

static void test_truncate(void **state)
{
	struct mb m;
	struct dns_msg msg;
	size_t n;
	(void)state;
	mbhdr(&m, 9, DNS_F_QR | DNS_F_RD | DNS_F_RA, 1, 40, 0, 1);
	mbname(&m, "big.default.svc.cluster.local");
	mb16(&m, DNS_T_TXT); mb16(&m, 1);
	for (int i = 0; i < 40; i++) {
		mb16(&m, 0xc00c); mbrr_hdr(&m, DNS_T_TXT, 5, 41); mb8(&m, 40);
		for (int k = 0; k < 40; k++)
			mb8(&m, 'a' + k % 26);
	}
	mb8(&m, 0); mb16(&m, DNS_T_OPT); mb16(&m, 1232); mb32(&m, 0); mb16(&m, 2); mb16(&m, 0xabcd);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), 0);
	assert_int_equal(dnsmsg_truncate(m.b, m.n, 4096), m.n);
	n = dnsmsg_truncate(m.b, m.n, 512);
	assert_true(n > 0 && n <= 512);
	assert_int_equal(dnsmsg_parse(m.b, n, &msg), 0);
	assert_true(msg.h.flags & DNS_F_TC);
	assert_int_equal(msg.h.an, 0);
	assert_true(msg.edns);
	assert_int_equal(msg.opt_rd_len, 2);
	assert_int_equal(m.b[msg.opt_rd_off], 0xab);
	assert_string_equal(S(&msg.qname), "big.default.svc.cluster.local");
	assert_int_equal(dnsmsg_truncate(m.b, 600, 20), 0); /* malformed (cut) input */
}

static void test_cache_ttl(void **state)
{
	struct mb m;
	struct dns_msg msg;
	uint32_t ttl = 0;
	(void)state;
	/* NXDOMAIN without an SOA: not cacheable (RFC 2308 5) */
	mbhdr(&m, 1, DNS_F_QR | DNS_R_NXDOMAIN, 1, 0, 0, 0);
	mbname(&m, "nope.cluster.local"); mb16(&m, 1); mb16(&m, 1);
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), 0);
	assert_int_equal(dnsmsg_cache_ttl(&msg, &ttl), -ENOENT);
	/* SERVFAIL never; truncated never */
	m.b[3] = DNS_R_SERVFAIL;
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), 0);
	assert_int_equal(dnsmsg_cache_ttl(&msg, &ttl), -ENOENT);
	answer(&m, "a.b");
	m.b[2] |= DNS_F_TC >> 8;
	assert_int_equal(dnsmsg_parse(m.b, m.n, &msg), 0);
	assert_int_equal(dnsmsg_cache_ttl(&msg, &ttl), -ENOENT);
}

/* ---- routing ---- */

static void route(const struct dnsroute_cfg *cfg, const char *q, enum dnsroute_kind kind, const char *name)
{
	struct dns_name n = N(q);
	struct dnsroute r;
	dnsroute_decide(cfg, &n, &r);
	if (r.kind != kind)
		fail_msg("%s: kind %d, want %d", q, r.kind, kind);
	if (name && strcmp(S(&r.name), name))
		fail_msg("%s: asks %s, want %s", q, S(&r.name), name);
}

static void test_route(void **state)
{
	struct dnsroute_cfg cfg;
	char bad[256];
	(void)state;
	assert_int_equal(dnsroute_cfg_init(&cfg, "cluster.local", "default"), 0);
	cidr_list_parse("10.42.0.0/16", &cfg.pod);
	cidr_list_parse("10.43.0.0/16", &cfg.svc_cidrs);
	assert_int_equal(dnsroute_suffixes_parse("corp.example,internal", cfg.also, &cfg.n_also, bad), 0);
	assert_int_equal(cfg.n_also, 2);
	assert_int_equal(dnsroute_suffixes_parse("skip.cluster.local", cfg.never, &cfg.n_never, bad), 0);

	route(&cfg, "web.default.svc.cluster.local", DNSROUTE_CLUSTER, "web.default.svc.cluster.local");
	route(&cfg, "WEB.Default.SVC.Cluster.Local", DNSROUTE_CLUSTER, "WEB.Default.SVC.Cluster.Local");
	route(&cfg, "cluster.local", DNSROUTE_CLUSTER, NULL);
	route(&cfg, "web", DNSROUTE_SEARCH, "web.default.svc.cluster.local");
	route(&cfg, "web.default", DNSROUTE_SEARCH, "web.default.svc.cluster.local");
	route(&cfg, "kube-dns.kube-system", DNSROUTE_SEARCH, "kube-dns.kube-system.svc.cluster.local");
	route(&cfg, "web.default.svc", DNSROUTE_CLUSTER, "web.default.svc.cluster.local");
	route(&cfg, "10-42-1-2.default.pod", DNSROUTE_CLUSTER, "10-42-1-2.default.pod.cluster.local");
	route(&cfg, "_http._tcp.web.default.svc", DNSROUTE_CLUSTER, "_http._tcp.web.default.svc.cluster.local");
	route(&cfg, "_http._tcp.web.default", DNSROUTE_SEARCH, "_http._tcp.web.default.svc.cluster.local");
	route(&cfg, "_http._tcp.web", DNSROUTE_SEARCH, "_http._tcp.web.default.svc.cluster.local");
	route(&cfg, "example.com", DNSROUTE_SEARCH, "example.com.svc.cluster.local");
	route(&cfg, "www.example.com", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "a.b.svc.other", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "localhost", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "a.localhost", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "printer.local", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "local", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, ".", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "x.skip.cluster.local", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "a.b.c.corp.example", DNSROUTE_CLUSTER, "a.b.c.corp.example");
	route(&cfg, "corp.example", DNSROUTE_CLUSTER, NULL);
	route(&cfg, "xcorp.example", DNSROUTE_SEARCH, NULL);
	/* reverse names: inside the CIDRs go to the cluster, others do not */
	route(&cfg, "20.0.43.10.in-addr.arpa", DNSROUTE_CLUSTER, "20.0.43.10.in-addr.arpa");
	route(&cfg, "2.1.42.10.in-addr.arpa", DNSROUTE_CLUSTER, NULL);
	route(&cfg, "0.43.10.in-addr.arpa", DNSROUTE_CLUSTER, NULL);
	route(&cfg, "43.10.in-addr.arpa", DNSROUTE_CLUSTER, NULL);
	route(&cfg, "10.in-addr.arpa", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "1.0.44.10.in-addr.arpa", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "1.0.043.10.in-addr.arpa", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "1.0.256.10.in-addr.arpa", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "x.0.43.10.in-addr.arpa", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "1.1.0.43.10.in-addr.arpa", DNSROUTE_UPSTREAM, NULL);
	route(&cfg, "in-addr.arpa", DNSROUTE_UPSTREAM, NULL);
}

static void test_route_cfg(void **state)
{
	struct dnsroute_cfg cfg;
	struct dns_name names[DNSROUTE_SUFFIX_MAX];
	char bad[256];
	int n;
	char long_ns[70];
	(void)state;
	assert_int_equal(dnsroute_cfg_init(&cfg, "cluster.local", "kube-system"), 0);
	route(&cfg, "kube-dns", DNSROUTE_SEARCH, "kube-dns.kube-system.svc.cluster.local");
	assert_int_equal(dnsroute_cfg_init(&cfg, "cluster.local", "Default"), -EINVAL);
	assert_int_equal(dnsroute_cfg_init(&cfg, "cluster.local", "-a"), -EINVAL);
	assert_int_equal(dnsroute_cfg_init(&cfg, "cluster.local", ""), -EINVAL);
	assert_int_equal(dnsroute_cfg_init(&cfg, ".", "default"), -EINVAL);
	memset(long_ns, 'a', 64);
	long_ns[64] = 0;
	assert_false(dnsroute_ns_valid(long_ns));
	assert_true(dnsroute_ns_valid("a-1"));
	assert_int_equal(dnsroute_suffixes_parse("a,,b", names, &n, bad), -EINVAL);
	assert_int_equal(dnsroute_suffixes_parse("a,", names, &n, bad), -EINVAL);
	assert_int_equal(dnsroute_suffixes_parse("a b", names, &n, bad), -EINVAL);
	assert_string_equal(bad, "a b");
	assert_int_equal(dnsroute_suffixes_parse(".", names, &n, bad), -EINVAL);
	assert_int_equal(dnsroute_suffixes_parse("a,b,c,d,e,f,g,h,i", names, &n, bad), -EINVAL);
	assert_int_equal(dnsroute_suffixes_parse("", names, &n, bad), 0);
	assert_int_equal(n, 0);
}

/* ---- cache ---- */

static struct dnscache_key K(const char *name, uint16_t type)
{
	struct dnscache_key k;
	memset(&k, 0, sizeof(k));
	k.name = N(name);
	k.type = type;
	k.klass = 1;
	return k;
}

static void test_cache(void **state)
{
	struct dnscache *c = dnscache_new(3, 1 << 20);
	struct dnscache_key a = K("a.cluster.local", 1), A = K("A.Cluster.Local", 1), b = K("b", 1), d = K("d", 1);
	struct dnscache_key aaaa = K("a.cluster.local", 28), e = K("e", 1);
	size_t len;
	uint32_t age;
	const uint8_t *p;
	(void)state;
	assert_non_null(c);
	assert_int_equal(dnscache_put(c, &a, (const uint8_t *)"one", 3, 5, 1000), 0);
	p = dnscache_get(c, &A, 3500, &len, &age);
	assert_non_null(p);
	assert_int_equal(len, 3);
	assert_memory_equal(p, "one", 3);
	assert_int_equal(age, 2);
	assert_null(dnscache_get(c, &aaaa, 3500, &len, &age));
	a.dnssec_ok = true;
	assert_null(dnscache_get(c, &a, 3500, &len, &age));
	a.dnssec_ok = false;
	/* expiry */
	assert_null(dnscache_get(c, &a, 6000, &len, &age));
	assert_int_equal(dnscache_entries(c), 0);
	/* replace, then LRU eviction at 3 entries: b is used, so d's neighbour a goes */
	dnscache_put(c, &a, (const uint8_t *)"1", 1, 60, 0);
	dnscache_put(c, &a, (const uint8_t *)"22", 2, 60, 0);
	assert_int_equal(dnscache_entries(c), 1);
	dnscache_put(c, &b, (const uint8_t *)"b", 1, 60, 0);
	dnscache_put(c, &d, (const uint8_t *)"d", 1, 60, 0);
	assert_non_null(dnscache_get(c, &a, 10, &len, &age));
	assert_int_equal(len, 2);
	dnscache_put(c, &e, (const uint8_t *)"e", 1, 60, 0);
	assert_int_equal(dnscache_entries(c), 3);
	assert_null(dnscache_get(c, &b, 10, &len, &age));
	assert_non_null(dnscache_get(c, &a, 10, &len, &age));
	/* TTL capped */
	dnscache_put(c, &b, (const uint8_t *)"b", 1, 1u << 30, 0);
	assert_non_null(dnscache_get(c, &b, (uint64_t)DNSCACHE_TTL_MAX * 1000 - 1, &len, &age));
	assert_null(dnscache_get(c, &b, (uint64_t)DNSCACHE_TTL_MAX * 1000, &len, &age));
	dnscache_free(c);
	/* the byte cap */
	c = dnscache_new(100, 2000);
	static uint8_t big[1500];
	assert_int_equal(dnscache_put(c, &a, big, sizeof(big), 60, 0), 0);
	assert_int_equal(dnscache_put(c, &b, big, sizeof(big), 60, 0), 0);
	assert_int_equal(dnscache_entries(c), 1);
	assert_true(dnscache_bytes(c) <= 2000);
	assert_int_equal(dnscache_put(c, &d, big, 4000, 60, 0), -E2BIG);
	dnscache_free(c);
	dnscache_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_from_str),
		cmocka_unit_test(test_name_ops),
		cmocka_unit_test(test_name_mix),
		cmocka_unit_test(test_name_read_compression),
		cmocka_unit_test(test_parse_query_and_answer),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_question),
		cmocka_unit_test(test_error_and_requery),
		cmocka_unit_test(test_rewrite),
		cmocka_unit_test(test_truncate),
		cmocka_unit_test(test_cache_ttl),
		cmocka_unit_test(test_route),
		cmocka_unit_test(test_route_cfg),
		cmocka_unit_test(test_cache),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
