/* DNS messages (RFC 1035, EDNS RFC 6891): a small bounds-checked parser
 * and the few writers subway needs.  Pure functions: no I/O, no
 * allocation.  Nothing read from the wire is trusted: every length is
 * checked against the buffer, a compression pointer must point backwards
 * (so names cannot loop), names stay within 255 bytes, and a message with
 * bytes left over after its last record is malformed.
 *
 * Names are held in uncompressed wire form (struct dns_name).  Comparisons
 * are ASCII case-insensitive unless the name says otherwise (RFC 4343). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/cursor.h"

#define DNS_HDR_LEN 12
#define DNS_NAME_MAX 255 /* wire form, the root label included */
#define DNS_LABEL_MAX 63
#define DNS_UDP_MIN 512      /* what a client without EDNS accepts */
#define DNS_UDP_EDNS 1232    /* the payload size we announce (DNS flag day 2020) */
#define DNS_MSG_MAX 65535
#define DNS_NAME_STR_MAX (4 * DNS_NAME_MAX + 2) /* every byte escaped as \DDD */

enum dns_type {
	DNS_T_A = 1, DNS_T_NS = 2, DNS_T_CNAME = 5, DNS_T_SOA = 6, DNS_T_PTR = 12, DNS_T_MX = 15,
	DNS_T_TXT = 16, DNS_T_AAAA = 28, DNS_T_SRV = 33, DNS_T_DNAME = 39, DNS_T_OPT = 41,
};
#define DNS_C_IN 1

enum dns_rcode {
	DNS_R_NOERROR = 0, DNS_R_FORMERR = 1, DNS_R_SERVFAIL = 2, DNS_R_NXDOMAIN = 3,
	DNS_R_NOTIMP = 4, DNS_R_REFUSED = 5,
};

/* The 16-bit flags word of the header. */
#define DNS_F_QR 0x8000
#define DNS_F_AA 0x0400
#define DNS_F_TC 0x0200
#define DNS_F_RD 0x0100
#define DNS_F_RA 0x0080
#define DNS_F_AD 0x0020
#define DNS_F_CD 0x0010
#define DNS_OPCODE(f) (((f) >> 11) & 15)
#define DNS_RCODE(f) ((f) & 15)

struct dns_name {
	uint8_t len;             /* bytes used in w, the final zero label included: 1..255 */
	uint8_t w[DNS_NAME_MAX];
};

struct dns_hdr {
	uint16_t id, flags, qd, an, ns, ar;
};

/* One resource record as found in a message. */
struct dns_rr {
	struct dns_name name;
	uint16_t type, klass;
	uint32_t ttl;
	size_t ttl_off;       /* offset of the TTL field in the message */
	size_t rd_off, rd_len; /* RDATA */
	size_t off, end;      /* the whole record */
};

/* A message with exactly one question, as every query and answer here has. */
struct dns_msg {
	struct dns_hdr h;
	struct dns_name qname;
	uint16_t qtype, qclass;
	size_t qend;            /* offset just past the question */
	bool edns;              /* an OPT record in the additional section */
	uint16_t edns_size;     /* its UDP payload size (raised to 512 if below) */
	bool edns_do;           /* DNSSEC OK */
	uint16_t opt_class;     /* the OPT record as sent, for copying: */
	uint32_t opt_ttl;       /* extended rcode, version, flags */
	size_t opt_rd_off, opt_rd_len; /* its options */
	bool has_soa;           /* an SOA in the authority section */
	uint32_t soa_ttl;       /* min(SOA TTL, SOA MINIMUM) (RFC 2308) */
	uint32_t min_ttl;       /* smallest TTL of the answer section (UINT32_MAX if empty) */
};

/* ---- reading ---- */

/* The name at c, a cursor on the whole message (compression pointers
 * point back into it): c moves past the name as it stands there.  0, or
 * -EBADMSG with c failed. */
int dnsmsg_name_read(struct cursor *c, struct dns_name *out);
/* The record at c (as for names); c moves past it.  0, or -EBADMSG with c
 * failed. */
int dnsmsg_rr_read(struct cursor *c, struct dns_rr *rr);
/* The header and the question of a message with QDCOUNT 1, not looking at
 * what follows: msg gets h, qname, qtype, qclass and qend (nothing else:
 * edns false).  0 or -EBADMSG. */
int dnsmsg_question_read(const uint8_t *m, size_t len, struct dns_msg *msg);
/* The same question: the name but for letter case (0x20), type and class. */
bool dnsmsg_question_eq(const struct dns_msg *a, const struct dns_msg *b);
/* Parses a whole message with QDCOUNT 1: the question, then every record
 * (validated, EDNS and SOA noted), then nothing.  At most one OPT, owned by
 * the root, in the additional section.  0 or -EBADMSG. */
int dnsmsg_parse(const uint8_t *m, size_t len, struct dns_msg *msg);

/* ---- names ---- */

/* "web.default", "cluster.local." or "." into wire form: labels 1..63
 * bytes of printable ASCII other than '.' and '\', total <= 255.
 * 0 or -EINVAL. */
int dnsmsg_name_from_str(const char *s, struct dns_name *out);
/* Presentation form without the final dot ("." for the root); bytes other
 * than letters, digits, '-', '_' and '*' are escaped as \DDD.  Returns buf. */
const char *dnsmsg_name_str(const struct dns_name *n, char buf[DNS_NAME_STR_MAX]);
bool dnsmsg_name_eq(const struct dns_name *a, const struct dns_name *b); /* ASCII case-insensitive */
bool dnsmsg_name_same(const struct dns_name *a, const struct dns_name *b); /* byte for byte */
int dnsmsg_name_labels(const struct dns_name *n); /* 0 for the root */
/* True when n is suffix or ends with "." + suffix (case-insensitive). */
bool dnsmsg_name_under(const struct dns_name *n, const struct dns_name *suffix);
/* n = n + suffix; 0 or -ENAMETOOLONG (n unchanged). */
int dnsmsg_name_append(struct dns_name *n, const struct dns_name *suffix);
/* Label i (0 = leftmost) as a pointer and length; false past the last. */
bool dnsmsg_name_label(const struct dns_name *n, int i, const uint8_t **p, uint8_t *len);
/* Drops the first k labels (k <= labels). */
void dnsmsg_name_strip(struct dns_name *n, int k);
void dnsmsg_name_lower(struct dns_name *n);
/* 0x20 (draft-vixie-dnsext-dns0x20): sets the case of every letter from
 * the bits of rnd, so the name differs from avoid (same name, other case)
 * whenever it has a letter.  Returns the number of letters. */
int dnsmsg_name_mix(struct dns_name *n, const uint8_t *rnd, size_t rnd_len, const struct dns_name *avoid);
/* FNV-1a over the name, folded to lower case when ci. */
uint32_t dnsmsg_name_hash(const struct dns_name *n, bool ci);

/* ---- writing ---- */

/* Puts id in the header of the message m (at least DNS_HDR_LEN bytes). */
void dnsmsg_set_id(uint8_t *m, uint16_t id);

/* An answer carrying only the question and an rcode, for the query msg:
 * its ID, opcode, RD and CD, with RA set; an OPT record if the query had
 * one.  Length or -ENOSPC. */
ssize_t dnsmsg_error(const struct dns_msg *msg, uint16_t rcode, uint8_t *out, size_t cap);
/* The query q asked again for name with a new ID: same flags, type and
 * class, the OPT record copied, nothing else.  Length or -errno. */
ssize_t dnsmsg_requery(const uint8_t *q, const struct dns_msg *msg, uint16_t id, const struct dns_name *name,
		       uint8_t *out, size_t cap);

struct dnsmsg_rewrite {
	uint16_t id;                 /* the client's ID */
	const struct dns_name *from; /* the name that was asked upstream */
	const struct dns_name *to;   /* the name the client asked, as it spelled it */
	uint32_t age;                /* seconds to take off every TTL (a cached answer) */
};
/* Copies the answer `in` for the client: its ID; the question and every
 * owner name equal to rw->from (case-insensitively) become rw->to; names
 * inside NS, CNAME, PTR, DNAME, MX, SRV and SOA data are decompressed;
 * other data is copied as is; TTLs lose rw->age (not below 0).  Length,
 * -EBADMSG (in is malformed) or -ENOSPC. */
ssize_t dnsmsg_rewrite(const uint8_t *in, size_t inlen, const struct dnsmsg_rewrite *rw, uint8_t *out,
		       size_t cap);
/* Fits an answer into max bytes for a UDP client: if it is longer, keeps
 * the header, the question and the OPT record, sets TC and drops the rest
 * (RFC 1035 4.2.1, RFC 6891 7).  Returns the new length (<= max), or 0 if m
 * is malformed or not even that fits. */
size_t dnsmsg_truncate(uint8_t *m, size_t len, size_t max);

/* How long an answer (parsed as msg) may be cached: the smallest answer
 * TTL for a positive answer; for NXDOMAIN or NODATA the SOA's negative TTL
 * (RFC 2308), and -ENOENT without an SOA.  -ENOENT as well for other
 * rcodes, a truncated answer, or a TTL of 0. */
int dnsmsg_cache_ttl(const struct dns_msg *msg, uint32_t *ttl);
