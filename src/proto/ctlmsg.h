/* Requests on the daemon's control socket: one line of text,
 * "VERB [key=value ...]", at most CTL_LINE_MAX bytes.  Pure parser.
 *
 *   connect manager=IP:PORT token=<hex> (fingerprint=sha256:<hex> | insecure=1) [owner=UID]
 *   status [format=text|json]
 *   quit */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CTL_LINE_MAX 1536 /* the longest connect: DNS suffix lists and a fingerprint */

enum ctl_verb { CTL_CONNECT = 1, CTL_STATUS, CTL_QUIT };

struct ctl_req {
	enum ctl_verb verb;
	/* connect */
	uint32_t mgr_addr;
	uint16_t mgr_port;
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
	/* status */
	bool text;
};

/* Parses one request line (without the newline).  0, or -EINVAL with a
 * one-line reason in err. */
int ctl_parse(const char *line, size_t len, struct ctl_req *req, char *err, size_t errlen);
