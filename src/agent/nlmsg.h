/* A tiny netlink message writer and reader, for the agent's nf_tables
 * batches: the agent ships as one static binary, and Debian has no static
 * libmnl.  Pure: no I/O, no allocation.
 *
 * Writer: on a wcursor (common/cursor.h), with its sticky errors: nothing
 * is written past cap, and wcursor_result says -ENOSPC or -EINVAL (a
 * value too long for a netlink length).  Headers and lengths are in host
 * order, as netlink wants; attribute values are written as given
 * (nf_tables wants big-endian numbers: nlw_attr_be32).  Every attribute
 * is padded to 4 bytes.
 *
 * Reader: on a cursor over bytes from the kernel, which are checked like
 * any peer's: a header whose length does not fit what is left, or is
 * shorter than a header, is -EBADMSG, and nothing after it is read. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/cursor.h"

/* Writes a message header (length patched by nlw_msg_end, port id 0);
 * returns where the message starts, for nlw_msg_end. */
size_t nlw_msg_begin(struct wcursor *w, uint16_t type, uint16_t flags, uint32_t seq);
void nlw_msg_end(struct wcursor *w, size_t start);
/* A family header (struct nfgenmsg, ...) of n bytes, padded to 4. */
void nlw_put(struct wcursor *w, const void *p, size_t n);
/* One attribute of n bytes of value, padded to 4. */
void nlw_attr(struct wcursor *w, uint16_t type, const void *p, size_t n);
void nlw_attr_be32(struct wcursor *w, uint16_t type, uint32_t v);
/* s with its NUL, as the kernel's NLA_STRING/NLA_NUL_STRING take it. */
void nlw_attr_str(struct wcursor *w, uint16_t type, const char *s);
/* A nested attribute (NLA_F_NESTED set): attributes written between
 * begin and end are its value. */
size_t nlw_nest_begin(struct wcursor *w, uint16_t type);
void nlw_nest_end(struct wcursor *w, size_t start);

struct nlmsg {
	uint16_t type;
	uint16_t flags;
	uint32_t seq;
	uint32_t pid;
	struct cursor body; /* what follows the header, up to its length */
};

/* The next message of a datagram: 1 with *m filled in, 0 at the end of
 * the datagram, -EBADMSG when the next header is cut or its length is
 * impossible.  The padding after a message is skipped. */
int nlr_msg_next(struct cursor *c, struct nlmsg *m);

struct nlr_attr {
	uint16_t type; /* without NLA_F_NESTED / NLA_F_NET_BYTEORDER */
	bool nested;
	struct cursor val;
};

/* The next attribute of c: 1 with *a filled in, 0 at the end, -EBADMSG
 * as nlr_msg_next. */
int nlr_attr_next(struct cursor *c, struct nlr_attr *a);

/* An NLMSG_ERROR message (type checked by the caller): *error gets its
 * code (0 for an ACK, else -errno, checked to be in -4095..0); the
 * kernel's extended-ACK text, if any, goes to msg (NUL-terminated,
 * cut as str_cut cuts, "" when absent; msgsize > 4).  The
 * original request quoted after the header (no NETLINK_CAP_ACK) is
 * skipped.  0 or -EBADMSG. */
int nlr_error_parse(const struct nlmsg *m, int *error, char *msg, size_t msgsize);
