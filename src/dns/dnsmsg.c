/* DNS message parsing and writing; see dnsmsg.h for the rules. */
#include <errno.h>
#include <string.h>

#include "common/util.h"
#include "dns/dnsmsg.h"

#define OPT_FIXED 11 /* root name, type, class, TTL, RDLENGTH */

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint8_t lower(uint8_t c)
{
	return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

/* A TTL with the top bit set means 0 (RFC 2181 8). */
static uint32_t ttl_sane(uint32_t t)
{
	return t > 0x7fffffffu ? 0 : t;
}

int dnsmsg_hdr_read(const uint8_t *m, size_t len, struct dns_hdr *h)
{
	if (len < DNS_HDR_LEN)
		return -EBADMSG;
	h->id = rd16(m);
	h->flags = rd16(m + 2);
	h->qd = rd16(m + 4);
	h->an = rd16(m + 6);
	h->ns = rd16(m + 8);
	h->ar = rd16(m + 10);
	return 0;
}

/* Each pointer must point before the segment it was found in: segment
 * starts strictly decrease, so a name can never loop. */
int dnsmsg_name_read(const uint8_t *m, size_t len, size_t *off, struct dns_name *out)
{
	size_t pos = *off, seg = *off, end = 0;
	bool jumped = false;

	out->len = 0;
	for (;;) {
		uint8_t l;
		if (pos >= len)
			return -EBADMSG;
		l = m[pos];
		if ((l & 0xc0) == 0xc0) {
			size_t target;
			if (len - pos < 2)
				return -EBADMSG;
			target = (size_t)(l & 0x3f) << 8 | m[pos + 1];
			if (!jumped)
				end = pos + 2;
			jumped = true;
			if (target >= seg || target < DNS_HDR_LEN)
				return -EBADMSG;
			seg = pos = target;
			continue;
		}
		if (l & 0xc0) /* 0x40 and 0x80: obsolete or unknown label types */
			return -EBADMSG;
		if ((size_t)l + 1 > len - pos || (size_t)out->len + l + 1 > DNS_NAME_MAX)
			return -EBADMSG;
		memcpy(out->w + out->len, m + pos, (size_t)l + 1);
		out->len = (uint8_t)(out->len + l + 1);
		pos += (size_t)l + 1;
		if (l == 0)
			break;
	}
	*off = jumped ? end : pos;
	return 0;
}

int dnsmsg_rr_read(const uint8_t *m, size_t len, size_t *off, struct dns_rr *rr)
{
	size_t p = *off;

	rr->off = p;
	if (dnsmsg_name_read(m, len, &p, &rr->name) < 0 || len - p < 10)
		return -EBADMSG;
	rr->type = rd16(m + p);
	rr->klass = rd16(m + p + 2);
	rr->ttl_off = p + 4;
	rr->ttl = rd32(m + p + 4);
	rr->rd_len = rd16(m + p + 8);
	p += 10;
	if (rr->rd_len > len - p)
		return -EBADMSG;
	rr->rd_off = p;
	rr->end = p + rr->rd_len;
	*off = rr->end;
	return 0;
}

/* SOA RDATA: MNAME, RNAME, then five 32-bit fields, MINIMUM last. */
static int soa_note(const uint8_t *m, size_t len, const struct dns_rr *rr, struct dns_msg *msg)
{
	struct dns_name n;
	size_t p = rr->rd_off;

	if (dnsmsg_name_read(m, len, &p, &n) < 0 || dnsmsg_name_read(m, len, &p, &n) < 0 || p > rr->end ||
	    rr->end - p != 20)
		return -EBADMSG;
	if (!msg->has_soa) {
		msg->has_soa = true;
		msg->soa_ttl = MIN(ttl_sane(rr->ttl), ttl_sane(rd32(m + rr->end - 4)));
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

int dnsmsg_parse(const uint8_t *m, size_t len, struct dns_msg *msg)
{
	size_t off = DNS_HDR_LEN;
	uint32_t total;

	memset(msg, 0, sizeof(*msg));
	msg->min_ttl = UINT32_MAX;
	if (dnsmsg_hdr_read(m, len, &msg->h) < 0 || msg->h.qd != 1 ||
	    dnsmsg_name_read(m, len, &off, &msg->qname) < 0 || len - off < 4)
		return -EBADMSG;
	msg->qtype = rd16(m + off);
	msg->qclass = rd16(m + off + 2);
	off += 4;
	msg->qend = off;
	total = (uint32_t)msg->h.an + msg->h.ns + msg->h.ar;
	for (uint32_t i = 0; i < total; i++) {
		struct dns_rr rr;
		if (dnsmsg_rr_read(m, len, &off, &rr) < 0 || rr_note(m, len, &rr, i, msg) < 0)
			return -EBADMSG;
	}
	return off == len ? 0 : -EBADMSG;
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

struct wbuf {
	uint8_t *p;
	size_t cap, off;
	bool err;
};

static void put(struct wbuf *b, const void *d, size_t n)
{
	if (b->err || n > b->cap - b->off) {
		b->err = true;
		return;
	}
	if (n)
		memcpy(b->p + b->off, d, n);
	b->off += n;
}

static void put8(struct wbuf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put16(struct wbuf *b, uint16_t v)
{
	uint8_t x[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(b, x, 2);
}

static void put32(struct wbuf *b, uint32_t v)
{
	put16(b, (uint16_t)(v >> 16));
	put16(b, (uint16_t)v);
}

static void put_hdr(struct wbuf *b, uint16_t id, uint16_t flags, uint16_t an, uint16_t ns, uint16_t ar)
{
	put16(b, id);
	put16(b, flags);
	put16(b, 1);
	put16(b, an);
	put16(b, ns);
	put16(b, ar);
}

/* The OPT record of msg (from m), owned by the root. */
static void put_opt(struct wbuf *b, const uint8_t *m, const struct dns_msg *msg)
{
	put8(b, 0);
	put16(b, DNS_T_OPT);
	put16(b, msg->opt_class);
	put32(b, msg->opt_ttl);
	put16(b, (uint16_t)msg->opt_rd_len);
	put(b, m + msg->opt_rd_off, msg->opt_rd_len);
}

ssize_t dnsmsg_error(const uint8_t *q, const struct dns_msg *msg, uint16_t rcode, uint8_t *out, size_t cap)
{
	struct wbuf b = { out, cap, 0, false };
	uint16_t flags = DNS_F_QR | DNS_F_RA | (msg->h.flags & (0x7800 | DNS_F_RD | DNS_F_CD)) | (rcode & 15);

	put_hdr(&b, msg->h.id, flags, 0, 0, msg->edns ? 1 : 0);
	/* The first name of a message cannot be compressed: copy it as is. */
	put(&b, q + DNS_HDR_LEN, msg->qend - DNS_HDR_LEN);
	if (msg->edns) {
		put8(&b, 0);
		put16(&b, DNS_T_OPT);
		put16(&b, DNS_UDP_EDNS);
		put32(&b, 0);
		put16(&b, 0);
	}
	return b.err ? -ENOSPC : (ssize_t)b.off;
}

ssize_t dnsmsg_requery(const uint8_t *q, const struct dns_msg *msg, uint16_t id, const struct dns_name *name,
		       uint8_t *out, size_t cap)
{
	struct wbuf b = { out, cap, 0, false };

	put_hdr(&b, id, msg->h.flags & (0x7800 | DNS_F_RD | DNS_F_CD | DNS_F_AD), 0, 0, msg->edns ? 1 : 0);
	put(&b, name->w, name->len);
	put16(&b, msg->qtype);
	put16(&b, msg->qclass);
	if (msg->edns)
		put_opt(&b, q, msg);
	return b.err ? -ENOSPC : (ssize_t)b.off;
}

/* RDATA of rr with the names inside well-known types decompressed
 * (RFC 3597 4: only those may be compressed). */
static int put_rdata(struct wbuf *b, const uint8_t *m, size_t len, const struct dns_rr *rr)
{
	size_t p = rr->rd_off, end = rr->rd_off + rr->rd_len, before = 0, after = 0;
	int names = 1;

	switch (rr->type) {
	case DNS_T_NS: case DNS_T_CNAME: case DNS_T_PTR: case DNS_T_DNAME: break;
	case DNS_T_MX: before = 2; break;
	case DNS_T_SRV: before = 6; break;
	case DNS_T_SOA: names = 2; after = 20; break;
	default:
		put(b, m + p, rr->rd_len);
		return 0;
	}
	if (rr->rd_len < before)
		return -EBADMSG;
	put(b, m + p, before);
	p += before;
	for (int k = 0; k < names; k++) {
		struct dns_name n;
		if (dnsmsg_name_read(m, len, &p, &n) < 0 || p > end)
			return -EBADMSG;
		put(b, n.w, n.len);
	}
	if (end - p != after)
		return -EBADMSG;
	put(b, m + p, after);
	return 0;
}

static int put_rr(struct wbuf *b, const uint8_t *in, size_t inlen, const struct dns_rr *rr,
		  const struct dnsmsg_rewrite *rw)
{
	size_t at, start;

	if (rr->type == DNS_T_OPT)
		put8(b, 0);
	else if (dnsmsg_name_eq(&rr->name, rw->from))
		put16(b, 0xc000 | DNS_HDR_LEN); /* the question, which is rw->to */
	else
		put(b, rr->name.w, rr->name.len);
	put16(b, rr->type);
	put16(b, rr->klass);
	put32(b, rr->type == DNS_T_OPT ? rr->ttl : ttl_sane(rr->ttl) > rw->age ? ttl_sane(rr->ttl) - rw->age : 0);
	at = b->off;
	put16(b, 0);
	start = b->off;
	if (put_rdata(b, in, inlen, rr) < 0)
		return -EBADMSG;
	if (b->err || b->off - start > 65535)
		return -ENOSPC;
	wr16(b->p + at, (uint16_t)(b->off - start));
	return 0;
}

ssize_t dnsmsg_rewrite(const uint8_t *in, size_t inlen, const struct dnsmsg_rewrite *rw, uint8_t *out,
		       size_t cap)
{
	struct wbuf b = { out, cap, 0, false };
	struct dns_msg msg;
	size_t off;
	uint32_t total;

	if (dnsmsg_parse(in, inlen, &msg) < 0 || !dnsmsg_name_eq(&msg.qname, rw->from))
		return -EBADMSG;
	put_hdr(&b, rw->id, msg.h.flags, msg.h.an, msg.h.ns, msg.h.ar);
	put(&b, rw->to->w, rw->to->len);
	put16(&b, msg.qtype);
	put16(&b, msg.qclass);
	off = msg.qend;
	total = (uint32_t)msg.h.an + msg.h.ns + msg.h.ar;
	for (uint32_t i = 0; i < total; i++) {
		struct dns_rr rr;
		int ret;
		if (dnsmsg_rr_read(in, inlen, &off, &rr) < 0)
			return -EBADMSG;
		if ((ret = put_rr(&b, in, inlen, &rr, rw)) < 0)
			return ret;
	}
	return b.err ? -ENOSPC : (ssize_t)b.off;
}

size_t dnsmsg_truncate(uint8_t *m, size_t len, size_t max)
{
	struct dns_msg msg;
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
		m[n] = 0;
		wr16(m + n + 1, DNS_T_OPT);
		wr16(m + n + 3, msg.opt_class);
		wr16(m + n + 5, (uint16_t)(msg.opt_ttl >> 16));
		wr16(m + n + 7, (uint16_t)msg.opt_ttl);
		wr16(m + n + 9, (uint16_t)msg.opt_rd_len);
	}
	wr16(m + 2, msg.h.flags | DNS_F_TC);
	wr16(m + 6, 0);
	wr16(m + 8, 0);
	wr16(m + 10, optlen ? 1 : 0);
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
