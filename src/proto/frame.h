/* Tunnel frames between the daemon and the manager (docs/protocol.md).
 * Pure encoders and decoders: no I/O, no allocation.  Decoders read the
 * payload through a bounds-checked cursor, reject trailing bytes, and
 * point variable-length data (datagrams, DNS messages) into the input
 * buffer, which the caller keeps alive while it uses the message.
 * Encoders write header + payload and return the total length, or
 * -ENOSPC when cap is too small, or -EINVAL for out-of-range fields. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/util.h"

#define PROTO_VERSION 5
#define FRAME_HDR_LEN 8
/* Largest payload of any frame: a 65535-byte datagram plus its fields. */
#define FRAME_MAX_PAYLOAD 65600u
/* Before authentication only small frames are accepted. */
#define FRAME_MAX_PAYLOAD_PREAUTH 512u
#define FRAME_MAX (FRAME_HDR_LEN + FRAME_MAX_PAYLOAD)

#define PROTO_NONCE_LEN 32
#define PROTO_MAC_LEN 32
#define PROTO_SESSION_LEN 16
#define PROTO_NAME_MAX 32   /* version strings, NUL included */
#define PROTO_TEXT_MAX 256  /* error texts, NUL included */
#define PROTO_NODES_MAX 16
#define PROTO_MANAGERS_MAX 8
/* DIAL timeout_ms: 0 asks for the manager's default; larger values are
 * rejected. */
#define PROTO_DIAL_TIMEOUT_MAX_MS 300000u

enum frame_type {
	FT_HELLO = 1,        /* manager -> daemon, first frame on every connection */
	FT_AUTH = 2,         /* daemon -> manager */
	FT_AUTH_OK = 3,      /* manager -> daemon */
	FT_AUTH_FAIL = 4,    /* manager -> daemon, then close */
	FT_CLUSTER_INFO = 5, /* manager -> daemon, control connection, after AUTH_OK */
	FT_DIAL = 6,         /* daemon -> manager, flow connection; once */
	FT_DIAL_RESULT = 7,  /* manager -> daemon; if ok, raw bytes follow both ways */
	FT_UDP = 8,          /* both ways, control connection */
	FT_UDP_CLOSE = 9,    /* both ways */
	FT_PING = 10,        /* daemon -> manager: ICMP echo request to relay */
	FT_PONG = 11,        /* manager -> daemon: echo reply (or failure) */
	FT_DNS_QUERY = 12,   /* daemon -> manager */
	FT_DNS_REPLY = 13,   /* manager -> daemon */
	FT_HEARTBEAT = 14,   /* both ways; answered with HEARTBEAT_ACK */
	FT_HEARTBEAT_ACK = 15,
	FT_ERROR = 16,       /* either way, text, then close */
	/* Streams: TCP flows multiplexed over one trunk connection (CONN_TRUNK). */
	FT_STREAM_OPEN = 17,   /* daemon -> manager: dial for a new stream id */
	FT_STREAM_RESULT = 18, /* manager -> daemon: the dial's outcome */
	FT_STREAM_DATA = 19,   /* both ways: bytes of an open stream */
	FT_STREAM_FIN = 20,    /* both ways: the sender's half is done */
	FT_STREAM_RST = 21,    /* both ways: abort; the id is forgotten */
	FT_STREAM_CREDIT = 22, /* both ways: the receiver wrote this many more bytes out */
	/* intercepts (proto/intercept.h) */
	FT_INTERCEPT = 23,        /* daemon -> manager, control: take a workload's port */
	FT_INTERCEPT_RESULT = 24, /* manager -> daemon */
	FT_INTERCEPT_STATE = 25,  /* manager -> daemon: state and counters */
	FT_LEAVE = 26,            /* daemon -> manager: give an intercept up */
	FT_LIST = 27,             /* daemon -> manager: workloads, agents, intercepts ... */
	FT_LIST_REPLY = 28,       /* ... as JSON */
	FT_ENV = 29,              /* daemon -> manager: an intercepted pod's environment ... */
	FT_ENV_REPLY = 30,
	FT_AGENT_HELLO = 31,      /* agent -> manager: the pod, its ports and environment */
	FT_AGENT_RULES = 32,      /* manager -> agent: the intercepts to serve */
	FT_AGENT_STATS = 33,      /* agent -> manager: counters */
	FT_MAX_
};

/* CONN_LANE: a trunk of one of the laptop's lanes (daemon/lane.h), carrying
 * the laptop's flows only: the manager opens no stream on it. */
enum conn_kind { CONN_CONTROL = 1, CONN_FLOW = 2, CONN_TRUNK = 3, CONN_AGENT = 4, CONN_LANE = 5 };

enum dial_status {
	DIAL_OK = 0,
	DIAL_REFUSED = 1,     /* RST from the destination */
	DIAL_UNREACHABLE = 2, /* EHOSTUNREACH / ENETUNREACH */
	DIAL_TIMEOUT = 3,
	DIAL_FORBIDDEN = 4,   /* outside the cluster's CIDRs and node IPs */
	DIAL_ERROR = 5,       /* anything else (fd limits, ...) */
	DIAL_LIMIT = 6,       /* a per-session limit was hit */
	DIAL_STATUS_MAX_
};

enum pong_status { /* msg_pong.status */
	PONG_REPLY = 0,
	PONG_UNREACHABLE = 1,
	PONG_TIMEOUT = 2,
	PONG_STATUS_MAX_
};

struct frame_hdr {
	uint8_t type;
	uint8_t flags; /* 0 for now; receivers reject nonzero */
	uint32_t len;  /* payload length */
};

struct msg_hello {
	uint16_t version;
	uint8_t nonce[PROTO_NONCE_LEN];
	char server[PROTO_NAME_MAX]; /* e.g. "subway 0.1.0" */
};

struct msg_auth {
	uint16_t version;
	uint8_t kind; /* enum conn_kind */
	uint8_t session[PROTO_SESSION_LEN]; /* zero for CONN_CONTROL */
	uint8_t nonce[PROTO_NONCE_LEN];
	uint8_t mac[PROTO_MAC_LEN];
	char client[PROTO_NAME_MAX];
};

struct msg_auth_ok {
	uint8_t session[PROTO_SESSION_LEN];
	uint8_t mac[PROTO_MAC_LEN]; /* the manager's proof (mutual auth) */
};

struct msg_text { /* AUTH_FAIL, ERROR */
	char text[PROTO_TEXT_MAX];
};

/* Where the manager got each value it announces (msg_cluster_info.src). */
enum info_source { SRC_NONE = 0, SRC_FLAG = 1, SRC_ENV = 2, SRC_DERIVED = 3, SRC_DEFAULT = 4, SRC_MAX_ };
enum { INFO_SRC_POD, INFO_SRC_SVC, INFO_SRC_DOMAIN, INFO_SRC_DNS, INFO_SRC_NODES, INFO_SRC_MAX_ };

struct msg_cluster_info {
	struct cidr_list pod;
	struct cidr_list svc;
	char domain[64];  /* "cluster.local" */
	uint32_t dns;     /* cluster DNS server, 0 if unknown */
	int n_nodes;
	uint32_t nodes[PROTO_NODES_MAX];
	int n_managers;
	uint32_t managers[PROTO_MANAGERS_MAX]; /* the manager's own addresses */
	uint8_t tos;      /* mark the manager puts on sockets it dials */
	char version[PROTO_NAME_MAX];
	uint8_t src[INFO_SRC_MAX_]; /* enum info_source of pod, svc, domain, dns, nodes */
};

struct msg_dial {
	uint32_t addr;
	uint16_t port;
	uint32_t timeout_ms;
};

struct msg_dial_result {
	uint8_t status; /* enum dial_status */
};

struct msg_udp {
	uint32_t flow;  /* chosen by the daemon, echoed by the manager */
	uint32_t src;   /* laptop-side source (daemon -> manager) or the reply's source */
	uint16_t sport;
	uint32_t dst;
	uint16_t dport;
	const uint8_t *data;
	uint16_t len;
};

struct msg_udp_close {
	uint32_t flow;
};

struct msg_ping {
	uint32_t id;
	uint32_t dst;
	uint16_t ident;
	uint16_t seq;
	const uint8_t *data;
	uint16_t len;
};

struct msg_pong {
	uint32_t id;
	uint8_t status; /* 0 reply, 1 unreachable, 2 timeout */
	uint32_t src;   /* who replied */
	uint16_t ident;
	uint16_t seq;
	const uint8_t *data;
	uint16_t len;
};

struct msg_dns {
	uint32_t id;
	const uint8_t *data;
	uint16_t len;
};

/* FT_STREAM_*: id always; dial (OPEN), status (RESULT), credit (CREDIT),
 * data/len (DATA: 1..STREAM_DATA_MAX bytes, pointing into the frame). */
struct msg_stream {
	uint32_t id;
	struct msg_dial dial;
	uint8_t status;
	uint32_t credit;
	const uint8_t *data;
	uint32_t len;
};
#define STREAM_DATA_HDR_LEN (FRAME_HDR_LEN + 4) /* header + id, then the bytes */
#define STREAM_DATA_MAX (64u * 1024)
#define STREAM_CREDIT_MAX (1u << 30)

struct msg_heartbeat {
	uint64_t t; /* sender's clock, echoed in the ack */
};

/* Decodes a header.  Returns FRAME_HDR_LEN when a header was read,
 * 0 when len < FRAME_HDR_LEN (need more), -EBADMSG for a nonzero flags
 * byte, nonzero reserved bytes or an unknown type, -EMSGSIZE when the
 * announced payload exceeds max_payload. */
int frame_hdr_decode(const uint8_t *buf, size_t len, size_t max_payload, struct frame_hdr *hdr);
void frame_hdr_encode(uint8_t out[FRAME_HDR_LEN], uint8_t type, uint32_t len);
const char *frame_type_name(uint8_t type);
const char *dial_status_name(uint8_t status); /* "ok", "refused", ... */
const char *info_source_name(uint8_t src);    /* "flag", "env", "derived", "default", "none" */

/* Encoders: whole frame (header + payload) into out; total length or -errno. */
ssize_t msg_hello_encode(uint8_t *out, size_t cap, const struct msg_hello *m);
ssize_t msg_auth_encode(uint8_t *out, size_t cap, const struct msg_auth *m);
ssize_t msg_auth_ok_encode(uint8_t *out, size_t cap, const struct msg_auth_ok *m);
ssize_t msg_text_encode(uint8_t *out, size_t cap, uint8_t type, const char *text);
ssize_t msg_cluster_info_encode(uint8_t *out, size_t cap, const struct msg_cluster_info *m);
ssize_t msg_dial_encode(uint8_t *out, size_t cap, const struct msg_dial *m);
ssize_t msg_dial_result_encode(uint8_t *out, size_t cap, const struct msg_dial_result *m);
ssize_t msg_udp_encode(uint8_t *out, size_t cap, const struct msg_udp *m);
ssize_t msg_udp_close_encode(uint8_t *out, size_t cap, const struct msg_udp_close *m);
ssize_t msg_ping_encode(uint8_t *out, size_t cap, const struct msg_ping *m);
ssize_t msg_pong_encode(uint8_t *out, size_t cap, const struct msg_pong *m);
ssize_t msg_dns_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_dns *m);
ssize_t msg_heartbeat_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_heartbeat *m);
/* Any FT_STREAM_* type; DATA copies m->data (see stream_data_hdr to avoid it). */
ssize_t msg_stream_encode(uint8_t *out, size_t cap, uint8_t type, const struct msg_stream *m);
/* The first STREAM_DATA_HDR_LEN bytes of a DATA frame of len bytes, so
 * that the bytes can be read straight into place after it. */
void stream_data_hdr(uint8_t out[STREAM_DATA_HDR_LEN], uint32_t id, uint32_t len);

/* Decoders: payload only (what follows the header); 0 or -EBADMSG.
 * *m is zeroed first; after an error its contents mean nothing.  Encoders
 * and decoders apply the same field rules (docs/protocol.md), so whatever
 * encodes also decodes. */
int msg_hello_decode(const uint8_t *p, size_t len, struct msg_hello *m);
int msg_auth_decode(const uint8_t *p, size_t len, struct msg_auth *m);
int msg_auth_ok_decode(const uint8_t *p, size_t len, struct msg_auth_ok *m);
int msg_text_decode(const uint8_t *p, size_t len, struct msg_text *m);
int msg_cluster_info_decode(const uint8_t *p, size_t len, struct msg_cluster_info *m);
int msg_dial_decode(const uint8_t *p, size_t len, struct msg_dial *m);
int msg_dial_result_decode(const uint8_t *p, size_t len, struct msg_dial_result *m);
int msg_udp_decode(const uint8_t *p, size_t len, struct msg_udp *m);
int msg_udp_close_decode(const uint8_t *p, size_t len, struct msg_udp_close *m);
int msg_ping_decode(const uint8_t *p, size_t len, struct msg_ping *m);
int msg_pong_decode(const uint8_t *p, size_t len, struct msg_pong *m);
int msg_dns_decode(const uint8_t *p, size_t len, struct msg_dns *m);
int msg_heartbeat_decode(const uint8_t *p, size_t len, struct msg_heartbeat *m);
int msg_stream_decode(uint8_t type, const uint8_t *p, size_t len, struct msg_stream *m);

/* The version field of a HELLO or AUTH payload, which every protocol
 * version keeps as its first two bytes, even when the rest of the payload
 * does not decode: so a manager can answer "unsupported version N".
 * 0 or -EBADMSG (fewer than 2 bytes). */
int msg_version_peek(const uint8_t *p, size_t len, uint16_t *version);

/* The field rules, for the codecs of other message families
 * (proto/intercept.c): a frame begun and finished around a payload, str
 * (printable ASCII, 1..size-1 bytes; "opt" allows 0: empty), data. */
struct cursor;
struct wcursor;
void frame_begin(struct wcursor *w, uint8_t *out, size_t cap);
ssize_t frame_end(struct wcursor *w, uint8_t type);
void frame_get_text(struct cursor *c, char *out, size_t size, bool opt);
void frame_put_text(struct wcursor *w, const char *s, size_t size, bool opt);
void frame_get_data(struct cursor *c, const uint8_t **data, uint16_t *len);
void frame_put_data(struct wcursor *w, const uint8_t *data, uint16_t len);
