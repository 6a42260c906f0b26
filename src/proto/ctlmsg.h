/* Requests on the daemon's control socket: one line of text,
 * "VERB [key=value ...]", at most CTL_LINE_MAX bytes.  Pure.
 *
 *   connect manager=IP:PORT token=<hex> (fingerprint=sha256:<hex> | insecure=1) [owner=UID]
 *           [namespace=NS] [also_proxy=A,B] [never_proxy=A,B] [dns=on|off] [loopguard=on|off] [tos=N] [grace=MS]
 *           [threads=N]
 *   status [format=text|json]
 *   quit
 *   intercept name=N workload=W namespace=NS [port=P] local=IP:PORT mode=global|personal|mirror
 *             [header1..4=NAME:VALUE] [path=/P] holder=USER@HOST
 *   leave name=N
 *   list [namespace=NS]
 *   env name=N
 * Text that may hold spaces or '%' (headers, the holder) is percent-encoded.
 *
 * One table of keys (ctl_keys[] in ctlmsg.c) serves both ends: for each
 * key, the verb that takes it, how its value is checked, and where it
 * lands in struct ctl_req.  The CLI fills a struct ctl_req and encodes it
 * (ctl_encode); the daemon parses the line back into one (ctl_parse).  A
 * key may appear once; an error names the key and its bad value (cut, and
 * never the token's). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define CTL_LINE_MAX 1536 /* the longest connect: DNS suffix lists and a fingerprint */

enum ctl_verb { CTL_CONNECT = 1, CTL_STATUS, CTL_QUIT, CTL_INTERCEPT, CTL_LEAVE, CTL_LIST, CTL_ENV };

#define CTL_NAME_MAX 64     /* intercepts, workloads (+NUL) */
#define CTL_THREADS_MAX 4   /* threads=: the daemon's lanes (LANES_MAX) */
#define CTL_HEADERS_MAX 4
#define CTL_HEADER_MAX 192  /* "name:value" */

struct ctl_endpoint {
	uint32_t addr; /* host order */
	uint16_t port; /* 0: not given */
};

struct ctl_req {
	enum ctl_verb verb;
	/* connect */
	struct ctl_endpoint manager;
	char token_hex[257];
	bool has_owner;
	uint32_t owner;
	bool has_fingerprint; /* fingerprint=sha256:<hex>: TLS, pinned */
	uint8_t fingerprint[32];
	bool insecure;        /* insecure=1: plaintext TCP */
	char ns[64];           /* namespace=: short names resolve there ("" = default) */
	char also_proxy[256];  /* also_proxy=a,b: more suffixes the cluster resolves */
	char never_proxy[256]; /* never_proxy=a,b: suffixes it never resolves */
	bool no_dns;           /* dns=off */
	bool no_loop_guard; /* loopguard=off */
	bool has_tos;       /* tos=N: the mark to look for instead of the manager's */
	uint8_t tos;
	bool has_grace;     /* grace=MS: how long a connect waits for a lost session */
	uint32_t grace_ms;
	bool has_threads;   /* threads=N: the data path's threads (daemon/lane.h) */
	uint8_t threads;
	/* status */
	bool text; /* format=text */
	/* intercept, leave, list (ns too), env */
	char name[CTL_NAME_MAX];
	char workload[CTL_NAME_MAX];
	char port[16];           /* the container port: a number or its name; "" for the only one */
	struct ctl_endpoint local;
	uint8_t mode;            /* 1 global, 2 personal, 3 mirror (proto/intercept.h) */
	char header[CTL_HEADERS_MAX][CTL_HEADER_MAX]; /* "name:value" */
	char path[128];
	char holder[CTL_NAME_MAX];
};

/* Parses one request line (without the newline) into req (zeroed first).
 * 0, or -EINVAL with a one-line reason in err ("tos: '5' is not ..."). */
int ctl_parse(const char *line, size_t len, struct ctl_req *req, char *err, size_t errlen);

/* Sets one key of req->verb from its text, as ctl_parse would: 0,
 * -ENOENT (no such key for the verb), or -EINVAL with a reason naming the
 * value (not the key: the caller says where it came from) in err. */
int ctl_set(struct ctl_req *req, const char *key, const char *value, char *err, size_t errlen);

/* The request line for req, NUL-terminated, without a newline: its
 * length; -EINVAL when the daemon would refuse it (err says why, as
 * ctl_parse would), -ENOSPC when it exceeds size or CTL_LINE_MAX.  Keys
 * left at their default are not sent. */
ssize_t ctl_encode(const struct ctl_req *req, char *buf, size_t size, char *err, size_t errlen);

/* The session options (the keys a user sets with a flag) in which two
 * connect requests differ: their number, and in out a list naming each
 * flag with both values ("--namespace (asked: a, running: default)").
 * The token and the owner are not options. */
int ctl_diff(const struct ctl_req *running, const struct ctl_req *asked, char *out, size_t size);
