/* DNS message parsing and writing; see dnsmsg.h for the rules. */
#include <errno.h>
#include <string.h>

#include "common/cursor.h"
#include "common/util.h"
#include "dns/dnsmsg.h"

#define OPT_FIXED 11 /* root name, type, class, TTL, RDLENGTH */

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* A TTL with the top bit set means 0 (RFC 2181 8). */
static uint32_t ttl_sane(uint32_t t)
{
	return t > 0x7fffffffu ? 0 : t;
}

/* A cursor on the whole message at off: names there may point anywhere
 * before. */
static struct cursor msg_at(const uint8_t *m, size_t len, size_t off)
{
	struct cursor c;

	cursor_init(&c, m, len);
	cursor_skip(&c, off);
	return c;
}

/* Each pointer must point before the run of labels it was found in: runs
 * start ever earlier, so a name can never loop. */
int dnsmsg_name_read(struct cursor *c, struct dns_name *out)
{
	struct cursor at = *c, end = *c; /* at walks the labels; end: past the name where it stands */
	size_t run = c->off;
	bool jumped = false;

	out->len = 0;
	for (;;) {
		uint8_t l = cursor_u8(&at);
		if ((l & 0xc0) == 0xc0) {
			size_t target = (size_t)(l & 0x3f) << 8 | cursor_u8(&at);
			if (!jumped)
				end = at;
			jumped = true;
			if (at.err || target >= run || target < DNS_HDR_LEN)
				goto bad;
			at = msg_at(c->p, c->len, target);
			run = target;
			continue;
		}
		/* 0x40 and 0x80: obsolete or unknown label types */
		if ((l & 0xc0) || (size_t)out->len + l + 1 > DNS_NAME_MAX)
			goto bad;
		out->w[out->len] = l;
		cursor_bytes(&at, out->w + out->len + 1, l);
		if (at.err)
			goto bad;
		out->len = (uint8_t)(out->len + l + 1);
		if (l == 0)
			break;
	}
	*c = jumped ? end : at;
	return 0;
bad:
	cursor_fail(c);
	return -EBADMSG;
}

int dnsmsg_rr_read(struct cursor *c, struct dns_rr *rr)
{
	rr->off = c->off;
	dnsmsg_name_read(c, &rr->name);
	rr->type = cursor_u16(c);
	rr->klass = cursor_u16(c);
	rr->ttl_off = c->off;
	rr->ttl = cursor_u32(c);
	rr->rd_len = cursor_u16(c);
	rr->rd_off = c->off;
	cursor_skip(c, rr->rd_len);
	rr->end = c->off;
	return c->err ? -EBADMSG : 0;
}

/* SOA RDATA: MNAME, RNAME, then five 32-bit fields, MINIMUM last. */
static int soa_note(const uint8_t *m, size_t len, const struct dns_rr *rr, struct dns_msg *msg)
{
	struct cursor c = msg_at(m, len, rr->rd_off);
	struct dns_name n;
	uint32_t minimum;

	dnsmsg_name_read(&c, &n);
	dnsmsg_name_read(&c, &n);
	cursor_skip(&c, 16); /* serial, refresh, retry, expire */
	minimum = cursor_u32(&c);
	if (c.err || c.off != rr->end)
		return -EBADMSG;
	if (!msg->has_soa) {
		msg->has_soa = true;
		msg->soa_ttl = MIN(ttl_sane(rr->ttl), ttl_sane(minimum));
	}
	return 0;
}

static int rr_note(const uint8_t *m, size_t len, const struct dns_rr *rr, uint32_t i, struct dns_msg *msg)
{
	uint32_t an = msg->h.an, ns = msg->h.ns;

	if (rr->type == DNS_T_OPT) {
		if (i < an + ns || msg->edns || rr->name.len != 1)
			return -EBADMSG;
		msg->edns = true;
		msg->edns_size = MAX(rr->klass, DNS_UDP_MIN);
		msg->edns_do = rr->ttl & 0x8000;
		msg->opt_class = rr->klass;
		msg->opt_ttl = rr->ttl;
		msg->opt_rd_off = rr->rd_off;
		msg->opt_rd_len = rr->rd_len;
	} else if (i < an) {
		msg->min_ttl = MIN(msg->min_ttl, ttl_sane(rr->ttl));
	} else if (i < an + ns && rr->type == DNS_T_SOA) {
		return soa_note(m, len, rr, msg);
	}
	return 0;
}

static void hdr_read(struct cursor *c, struct dns_hdr *h)
{
	h->id = cursor_u16(c);
	h->flags = cursor_u16(c);
	h->qd = cursor_u16(c);
	h->an = cursor_u16(c);
	h->ns = cursor_u16(c);
	h->ar = cursor_u16(c);
}

int dnsmsg_question_read(const uint8_t *m, size_t len, struct dns_msg *msg)
{
	struct cursor c;

	memset(msg, 0, sizeof(*msg));
	msg->min_ttl = UINT32_MAX;
	cursor_init(&c, m, len);
	hdr_read(&c, &msg->h);
	if (msg->h.qd != 1)
		cursor_fail(&c);
	dnsmsg_name_read(&c, &msg->qname);
	msg->qtype = cursor_u16(&c);
	msg->qclass = cursor_u16(&c);
	msg->qend = c.off;
	return c.err ? -EBADMSG : 0;
}

bool dnsmsg_question_eq(const struct dns_msg *a, const struct dns_msg *b)
{
	return dnsmsg_name_eq(&a->qname, &b->qname) && a->qtype == b->qtype && a->qclass == b->qclass;
}

int dnsmsg_parse(const uint8_t *m, size_t len, struct dns_msg *msg)
{
	struct cursor c;
	uint32_t total;

	if (dnsmsg_question_read(m, len, msg) < 0)
		return -EBADMSG;
	c = msg_at(m, len, msg->qend);
	total = (uint32_t)msg->h.an + msg->h.ns + msg->h.ar;
	for (uint32_t i = 0; i < total; i++) {
		struct dns_rr rr;
		if (dnsmsg_rr_read(&c, &rr) < 0 || rr_note(m, len, &rr, i, msg) < 0)
			return -EBADMSG;
	}
	return cursor_end(&c);
}

/* ---- names ---- */

int dnsmsg_name_from_str(const char *s, struct dns_name *out)
{
	size_t n = strlen(s), i = 0;

	out->len = 0;
	if (n == 0)
		return -EINVAL;
	if (n == 1 && s[0] == '.') {
		out->w[0] = 0;
		out->len = 1;
		return 0;
	}
	if (s[n - 1] == '.')
		n--;
	while (i < n) {
		size_t j = i;
		while (j < n && s[j] != '.') {
			unsigned char c = (unsigned char)s[j];
			if (c <= 0x20 || c >= 0x7f || c == '\\')
				return -EINVAL;
			j++;
		}
		if (j == i || j - i > DNS_LABEL_MAX || out->len + (j - i) + 2 > DNS_NAME_MAX ||
		    (j < n && j + 1 == n))
			return -EINVAL;
		out->w[out->len++] = (uint8_t)(j - i);
		memcpy(out->w + out->len, s + i, j - i);
		out->len = (uint8_t)(out->len + (j - i));
		i = j + 1;
	}
	out->w[out->len++] = 0;
	return 0;
}

static bool name_plain(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '_' || c == '*';
}

const char *dnsmsg_name_str(const struct dns_name *n, char buf[DNS_NAME_STR_MAX])
{
	size_t o = 0;

	if (n->len <= 1) {
		strcpy(buf, ".");
		return buf;
	}
	for (size_t i = 0; i < n->len && n->w[i];) {
		uint8_t l = n->w[i++];
		if (o)
			buf[o++] = '.';
		for (uint8_t k = 0; k < l && i < n->len; k++, i++) {
			uint8_t c = n->w[i];
			if (name_plain(c)) {
				buf[o++] = (char)c;
			} else {
				buf[o++] = '\\';
				buf[o++] = (char)('0' + c / 100);
				buf[o++] = (char)('0' + c / 10 % 10);
				buf[o++] = (char)('0' + c % 10);
			}
		}
	}
	buf[o] = 0;
	return buf;
}

/* Label lengths are <= 63, below 'A': folding the whole wire form is safe. */
bool dnsmsg_name_eq(const struct dns_name *a, const struct dns_name *b)
{
	if (a->len != b->len)
		return false;
	for (size_t i = 0; i < a->len; i++)
		if (lower(a->w[i]) != lower(b->w[i]))
			return false;
	return true;
}

bool dnsmsg_name_same(const struct dns_name *a, const struct dns_name *b)
{
	return a->len == b->len && !memcmp(a->w, b->w, a->len);
}

int dnsmsg_name_labels(const struct dns_name *n)
{
	int k = 0;

	for (size_t i = 0; i < n->len && n->w[i]; i += (size_t)n->w[i] + 1)
		k++;
	return k;
}

bool dnsmsg_name_under(const struct dns_name *n, const struct dns_name *suffix)
{
	size_t start, i = 0;

	if (suffix->len > n->len)
		return false;
	start = (size_t)n->len - suffix->len;
	while (i < start && n->w[i])
		i += (size_t)n->w[i] + 1;
	if (i != start)
		return false;
	for (size_t k = 0; k < suffix->len; k++)
		if (lower(n->w[start + k]) != lower(suffix->w[k]))
			return false;
	return true;
}

int dnsmsg_name_append(struct dns_name *n, const struct dns_name *suffix)
{
	if ((size_t)n->len - 1 + suffix->len > DNS_NAME_MAX)
		return -ENAMETOOLONG;
	memcpy(n->w + n->len - 1, suffix->w, suffix->len);
	n->len = (uint8_t)(n->len - 1 + suffix->len);
	return 0;
}

bool dnsmsg_name_label(const struct dns_name *n, int i, const uint8_t **p, uint8_t *len)
{
	size_t o = 0;

	for (; o < n->len && n->w[o]; o += (size_t)n->w[o] + 1)
		if (i-- == 0) {
			*p = n->w + o + 1;
			*len = n->w[o];
			return true;
		}
	return false;
}

void dnsmsg_name_strip(struct dns_name *n, int k)
{
	size_t o = 0;

	while (k-- > 0 && o < n->len && n->w[o])
		o += (size_t)n->w[o] + 1;
	memmove(n->w, n->w + o, n->len - o);
	n->len = (uint8_t)(n->len - o);
}

void dnsmsg_name_lower(struct dns_name *n)
{
	for (size_t i = 0; i < n->len; i++)
		n->w[i] = lower(n->w[i]);
}

static bool is_letter(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

int dnsmsg_name_mix(struct dns_name *n, const uint8_t *rnd, size_t rnd_len, const struct dns_name *avoid)
{
	int letters = 0, first = -1;

	for (size_t i = 0; i < n->len; i += (size_t)n->w[i] + 1)
		for (size_t k = i + 1; k <= i + n->w[i] && k < n->len; k++) {
			uint8_t c = n->w[k];
			bool up;
			if (!is_letter(c))
				continue;
			up = rnd_len && (rnd[(size_t)letters / 8 % rnd_len] >> (letters % 8)) & 1;
			n->w[k] = up ? (uint8_t)(lower(c) - 32) : lower(c);
			if (first < 0)
				first = (int)k;
			letters++;
		}
	if (avoid && first >= 0 && dnsmsg_name_same(n, avoid))
		n->w[first] ^= 0x20;
	return letters;
}

uint32_t dnsmsg_name_hash(const struct dns_name *n, bool ci)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n->len; i++) {
		h ^= ci ? lower(n->w[i]) : n->w[i];
		h *= 16777619u;
	}
	return h;
}

/* ---- writing ---- */

void dnsmsg_set_id(uint8_t *m, uint16_t id)
{
	struct wcursor w;

	wcursor_init(&w, m, 2);
	wcursor_u16(&w, id);
}

static void put_hdr(struct wcursor *w, uint16_t id, uint16_t flags, uint16_t an, uint16_t ns, uint16_t ar)
{
	wcursor_u16(w, id);
	wcursor_u16(w, flags);
	wcursor_u16(w, 1);
	wcursor_u16(w, an);
	wcursor_u16(w, ns);
	wcursor_u16(w, ar);
}

/* msg's question, asked for name. */
static void put_question(struct wcursor *w, const struct dns_name *name, const struct dns_msg *msg)
{
	wcursor_bytes(w, name->w, name->len);
	wcursor_u16(w, msg->qtype);
	wcursor_u16(w, msg->qclass);
}

/* An OPT record, owned by the root, up to its rdlen bytes of options. */
static void put_opt(struct wcursor *w, uint16_t klass, uint32_t ttl, size_t rdlen)
{
	wcursor_u8(w, 0);
	wcursor_u16(w, DNS_T_OPT);
	wcursor_u16(w, klass);
	wcursor_u32(w, ttl);
	wcursor_u16(w, (uint16_t)rdlen);
}

ssize_t dnsmsg_error(const struct dns_msg *msg, uint16_t rcode, uint8_t *out, size_t cap)
{
	struct wcursor w;
	uint16_t flags = DNS_F_QR | DNS_F_RA | (msg->h.flags & (0x7800 | DNS_F_RD | DNS_F_CD)) | (rcode & 15);

	wcursor_init(&w, out, cap);
	put_hdr(&w, msg->h.id, flags, 0, 0, msg->edns ? 1 : 0);
	put_question(&w, &msg->qname, msg);
	if (msg->edns)
		put_opt(&w, DNS_UDP_EDNS, 0, 0);
	return wcursor_result(&w);
}

ssize_t dnsmsg_requery(const uint8_t *q, const struct dns_msg *msg, uint16_t id, const struct dns_name *name,
		       uint8_t *out, size_t cap)
{
	struct wcursor w;

	wcursor_init(&w, out, cap);
	put_hdr(&w, id, msg->h.flags & (0x7800 | DNS_F_RD | DNS_F_CD | DNS_F_AD), 0, 0, msg->edns ? 1 : 0);
	put_question(&w, name, msg);
	if (msg->edns) {
		put_opt(&w, msg->opt_class, msg->opt_ttl, msg->opt_rd_len);
		wcursor_bytes(&w, q + msg->opt_rd_off, msg->opt_rd_len);
	}
	return wcursor_result(&w);
}

/* RDATA of rr with the names inside well-known types decompressed
 * (RFC 3597 4: only those may be compressed). */
static int put_rdata(struct wcursor *w, const uint8_t *m, size_t len, const struct dns_rr *rr)
{
	size_t before = 0, after = 0;
	int names = 1;
	struct cursor c;

	switch (rr->type) {
	case DNS_T_NS: case DNS_T_CNAME: case DNS_T_PTR: case DNS_T_DNAME: break;
	case DNS_T_MX: before = 2; break;
	case DNS_T_SRV: before = 6; break;
	case DNS_T_SOA: names = 2; after = 20; break;
	default:
		wcursor_bytes(w, m + rr->rd_off, rr->rd_len);
		return 0;
	}
	if (rr->rd_len < before)
		return -EBADMSG;
	wcursor_bytes(w, m + rr->rd_off, before);
	c = msg_at(m, len, rr->rd_off + before);
	for (int k = 0; k < names; k++) {
		struct dns_name n;
		if (dnsmsg_name_read(&c, &n) < 0 || c.off > rr->end)
			return -EBADMSG;
		wcursor_bytes(w, n.w, n.len);
	}
	if (rr->end - c.off != after)
		return -EBADMSG;
	wcursor_bytes(w, m + c.off, after);
	return 0;
}

static int put_rr(struct wcursor *w, const uint8_t *in, size_t inlen, const struct dns_rr *rr,
		  const struct dnsmsg_rewrite *rw)
{
	uint32_t ttl = ttl_sane(rr->ttl) > rw->age ? ttl_sane(rr->ttl) - rw->age : 0;
	struct wcursor rdlen;
	size_t at, start;

	if (rr->type == DNS_T_OPT)
		wcursor_u8(w, 0);
	else if (dnsmsg_name_eq(&rr->name, rw->from))
		wcursor_u16(w, 0xc000 | DNS_HDR_LEN); /* the question, which is rw->to */
	else
		wcursor_bytes(w, rr->name.w, rr->name.len);
	wcursor_u16(w, rr->type);
	wcursor_u16(w, rr->klass);
	wcursor_u32(w, rr->type == DNS_T_OPT ? rr->ttl : ttl);
	at = w->off;
	wcursor_u16(w, 0); /* RDLENGTH, known once the RDATA is written */
	start = w->off;
	if (put_rdata(w, in, inlen, rr) < 0)
		return -EBADMSG;
	if (w->err || w->off - start > 65535)
		return -ENOSPC;
	wcursor_init(&rdlen, w->p + at, 2);
	wcursor_u16(&rdlen, (uint16_t)(w->off - start));
	return 0;
}

ssize_t dnsmsg_rewrite(const uint8_t *in, size_t inlen, const struct dnsmsg_rewrite *rw, uint8_t *out,
		       size_t cap)
{
	struct dns_msg msg;
	struct wcursor w;
	struct cursor c;
	uint32_t total;

	if (dnsmsg_parse(in, inlen, &msg) < 0 || !dnsmsg_name_eq(&msg.qname, rw->from))
		return -EBADMSG;
	wcursor_init(&w, out, cap);
	put_hdr(&w, rw->id, msg.h.flags, msg.h.an, msg.h.ns, msg.h.ar);
	put_question(&w, rw->to, &msg);
	c = msg_at(in, inlen, msg.qend);
	total = (uint32_t)msg.h.an + msg.h.ns + msg.h.ar;
	for (uint32_t i = 0; i < total; i++) {
		struct dns_rr rr;
		int ret;
		if (dnsmsg_rr_read(&c, &rr) < 0)
			return -EBADMSG;
		if ((ret = put_rr(&w, in, inlen, &rr, rw)) < 0)
			return ret;
	}
	return wcursor_result(&w);
}

size_t dnsmsg_truncate(uint8_t *m, size_t len, size_t max)
{
	struct dns_msg msg;
	struct wcursor w;
	size_t n, optlen;

	if (len <= max)
		return len;
	if (dnsmsg_parse(m, len, &msg) < 0 || msg.qend > max)
		return 0;
	n = msg.qend;
	optlen = msg.edns ? OPT_FIXED + msg.opt_rd_len : 0;
	if (n + optlen > max)
		optlen = 0;
	if (optlen) {
		/* The OPT record lies after the question: moving it down is safe. */
		memmove(m + n + OPT_FIXED, m + msg.opt_rd_off, msg.opt_rd_len);
		wcursor_init(&w, m + n, OPT_FIXED);
		put_opt(&w, msg.opt_class, msg.opt_ttl, msg.opt_rd_len);
	}
	wcursor_init(&w, m + 2, DNS_HDR_LEN - 2); /* the header after the ID */
	wcursor_u16(&w, msg.h.flags | DNS_F_TC);
	wcursor_u16(&w, 1);
	wcursor_u16(&w, 0);
	wcursor_u16(&w, 0);
	wcursor_u16(&w, optlen ? 1 : 0);
	return n + optlen;
}

int dnsmsg_cache_ttl(const struct dns_msg *msg, uint32_t *ttl)
{
	uint16_t rcode = DNS_RCODE(msg->h.flags);
	uint32_t t;

	if (msg->h.flags & DNS_F_TC)
		return -ENOENT;
	if (rcode == DNS_R_NOERROR && msg->h.an > 0 && msg->min_ttl != UINT32_MAX)
		t = msg->min_ttl;
	else if ((rcode == DNS_R_NXDOMAIN || (rcode == DNS_R_NOERROR && msg->h.an == 0)) && msg->has_soa)
		t = msg->soa_ttl;
	else
		return -ENOENT;
	if (t == 0)
		return -ENOENT;
	*ttl = t;
	return 0;
}
