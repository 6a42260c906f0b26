/* The netlink writer and reader (nlmsg.h). */
#include "agent/nlmsg.h"

#include <errno.h>
#include <linux/netlink.h>
#include <string.h>

#include "common/util.h"

static const uint8_t zeros[4];

size_t nlw_msg_begin(struct wcursor *w, uint16_t type, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr h = { .nlmsg_type = type, .nlmsg_flags = flags, .nlmsg_seq = seq };
	size_t start = w->off;

	wcursor_bytes(w, &h, sizeof(h));
	return start;
}

void nlw_msg_end(struct wcursor *w, size_t start)
{
	uint32_t len = (uint32_t)(w->off - start);

	if (w->err || w->inval || start > w->off || w->off - start < sizeof(struct nlmsghdr))
		return;
	memcpy(w->p + start, &len, sizeof(len));
}

void nlw_put(struct wcursor *w, const void *p, size_t n)
{
	wcursor_bytes(w, p, n);
	wcursor_bytes(w, zeros, NLMSG_ALIGN(n) - n);
}

void nlw_attr(struct wcursor *w, uint16_t type, const void *p, size_t n)
{
	struct nlattr a = { .nla_type = type };

	if (n > UINT16_MAX - NLA_HDRLEN) {
		w->inval = true;
		return;
	}
	a.nla_len = (uint16_t)(NLA_HDRLEN + n);
	wcursor_bytes(w, &a, sizeof(a));
	nlw_put(w, p, n);
}

void nlw_attr_be32(struct wcursor *w, uint16_t type, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };

	nlw_attr(w, type, b, sizeof(b));
}

void nlw_attr_str(struct wcursor *w, uint16_t type, const char *s)
{
	nlw_attr(w, type, s, strlen(s) + 1);
}

size_t nlw_nest_begin(struct wcursor *w, uint16_t type)
{
	struct nlattr a = { .nla_type = type | NLA_F_NESTED };
	size_t start = w->off;

	wcursor_bytes(w, &a, sizeof(a));
	return start;
}

void nlw_nest_end(struct wcursor *w, size_t start)
{
	uint16_t len;

	if (w->err || w->inval || start > w->off || w->off - start < NLA_HDRLEN)
		return;
	if (w->off - start > UINT16_MAX) {
		w->inval = true;
		return;
	}
	len = (uint16_t)(w->off - start);
	memcpy(w->p + start, &len, sizeof(len));
}

/* The body of an item whose header (hdr bytes, read from c already) says
 * it is len bytes long, header included; the padding after it skipped
 * (the last item of a buffer may come without).  -EBADMSG, and c failed,
 * when the header was cut or len cannot be. */
static int item_body(struct cursor *c, size_t len, size_t hdr, size_t align, struct cursor *body)
{
	size_t pad = (align - len % align) % align;

	if (c->err || len < hdr || len - hdr > cursor_remaining(c)) {
		cursor_fail(c);
		return -EBADMSG;
	}
	*body = cursor_sub(c, len - hdr);
	cursor_skip(c, MIN(pad, cursor_remaining(c)));
	return 1;
}

int nlr_msg_next(struct cursor *c, struct nlmsg *m)
{
	struct nlmsghdr h;

	if (c->err)
		return -EBADMSG;
	if (cursor_remaining(c) == 0)
		return 0;
	cursor_bytes(c, &h, sizeof(h));
	if (item_body(c, h.nlmsg_len, sizeof(h), NLMSG_ALIGNTO, &m->body) < 0)
		return -EBADMSG;
	m->type = h.nlmsg_type;
	m->flags = h.nlmsg_flags;
	m->seq = h.nlmsg_seq;
	m->pid = h.nlmsg_pid;
	return 1;
}

int nlr_attr_next(struct cursor *c, struct nlr_attr *a)
{
	struct nlattr h;

	if (c->err)
		return -EBADMSG;
	if (cursor_remaining(c) == 0)
		return 0;
	cursor_bytes(c, &h, sizeof(h));
	if (item_body(c, h.nla_len, sizeof(h), NLA_ALIGNTO, &a->val) < 0)
		return -EBADMSG;
	a->type = h.nla_type & NLA_TYPE_MASK;
	a->nested = h.nla_type & NLA_F_NESTED;
	return 1;
}

/* NLMSGERR_ATTR_MSG: a string ending in its only NUL. */
static int error_text(struct cursor *v, char *msg, size_t msgsize)
{
	size_t n = cursor_remaining(v);
	const uint8_t *p = cursor_ref(v, n);

	if (!p || n == 0 || memchr(p, 0, n) != p + n - 1)
		return -EBADMSG;
	str_cut((const char *)p, n - 1, msg, msgsize);
	return 0;
}

int nlr_error_parse(const struct nlmsg *m, int *error, char *msg, size_t msgsize)
{
	struct cursor c = m->body;
	struct nlmsghdr orig;
	struct nlr_attr a;
	int32_t e;
	int ret;

	msg[0] = 0;
	cursor_bytes(&c, &e, sizeof(e));
	cursor_bytes(&c, &orig, sizeof(orig));
	if (c.err || e > 0 || e < -4095 || orig.nlmsg_len < sizeof(orig))
		return -EBADMSG;
	/* The request is quoted after a failure unless capped; never after an ACK. */
	if (e != 0 && !(m->flags & NLM_F_CAPPED))
		cursor_skip(&c, orig.nlmsg_len - sizeof(orig));
	if (m->flags & NLM_F_ACK_TLVS) {
		while ((ret = nlr_attr_next(&c, &a)) > 0) {
			if (a.type == NLMSGERR_ATTR_MSG && error_text(&a.val, msg, msgsize) < 0)
				return -EBADMSG;
		}
		if (ret < 0)
			return ret;
	}
	if (cursor_end(&c) < 0)
		return -EBADMSG;
	*error = e;
	return 0;
}
