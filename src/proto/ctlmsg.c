#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "proto/ctlmsg.h"
#include "proto/auth.h"
#include "dns/dnsroute.h"

/* A comma-separated list of DNS suffixes, checked and kept as given. */
static int ctl_suffixes(char *out, const char *v, size_t vlen, char *err, size_t errlen)
{
	struct dns_name names[DNSROUTE_SUFFIX_MAX];
	char bad[256];
	int n;

	if (vlen >= 256 || dnsroute_suffixes_parse(v, names, &n, bad) < 0) {
		snprintf(err, errlen, "bad DNS suffix '%.64s'", vlen >= 256 ? v : bad);
		return -EINVAL;
	}
	memcpy(out, v, vlen + 1);
	return 0;
}

static int ctl_kv(struct ctl_req *req, const char *key, size_t klen, const char *val, size_t vlen,
		  char *err, size_t errlen)
{
	char v[300];
	uint64_t n;

	if (vlen >= sizeof(v)) {
		snprintf(err, errlen, "value of '%.*s' too long", (int)klen, key);
		return -EINVAL;
	}
	memcpy(v, val, vlen);
	v[vlen] = 0;
	if (req->verb == CTL_CONNECT && klen == 7 && !memcmp(key, "manager", 7)) {
		if (endpoint_parse(v, &req->mgr_addr, &req->mgr_port) == 0)
			return 0;
	} else if (req->verb == CTL_CONNECT && klen == 5 && !memcmp(key, "token", 5)) {
		if (vlen >= 32 && vlen < sizeof(req->token_hex) && strspn(v, "0123456789abcdefABCDEF") == vlen) {
			memcpy(req->token_hex, v, vlen + 1);
			return 0;
		}
	} else if (req->verb == CTL_CONNECT && klen == 5 && !memcmp(key, "owner", 5)) {
		if (u64_parse(v, UINT32_MAX, &n) == 0) {
			req->has_owner = true;
			req->owner = (uint32_t)n;
			return 0;
		}
	} else if (req->verb == CTL_CONNECT && klen == 11 && !memcmp(key, "fingerprint", 11)) {
		if (auth_fingerprint_parse(v, req->fingerprint) == 0) {
			req->has_fingerprint = true;
			return 0;
		}
	} else if (req->verb == CTL_CONNECT && klen == 8 && !memcmp(key, "insecure", 8)) {
		if (!strcmp(v, "1")) {
			req->insecure = true;
			return 0;
		}
	} else if (req->verb == CTL_CONNECT && klen == 9 && !memcmp(key, "namespace", 9)) {
		if (dnsroute_ns_valid(v)) {
			memcpy(req->ns, v, vlen + 1);
			return 0;
		}
	} else if (req->verb == CTL_CONNECT && klen == 10 && !memcmp(key, "also_proxy", 10)) {
		return ctl_suffixes(req->also_proxy, v, vlen, err, errlen);
	} else if (req->verb == CTL_CONNECT && klen == 11 && !memcmp(key, "never_proxy", 11)) {
		return ctl_suffixes(req->never_proxy, v, vlen, err, errlen);
	} else if (req->verb == CTL_CONNECT && klen == 3 && !memcmp(key, "dns", 3)) {
		if (!strcmp(v, "off") || !strcmp(v, "on")) {
			req->no_dns = !strcmp(v, "off");
			return 0;
		}
	} else if (req->verb == CTL_CONNECT && klen == 9 && !memcmp(key, "loopguard", 9)) {
		if (!strcmp(v, "on") || !strcmp(v, "off")) {
			req->no_loop_guard = !strcmp(v, "off");
			return 0;
		}
	} else if (req->verb == CTL_CONNECT && klen == 3 && !memcmp(key, "tos", 3)) {
		/* ECN bits (0x03) are the network's to change: they mark nothing. */
		if (u64_parse(v, 255, &n) == 0 && !(n & 3)) {
			req->has_tos = true;
			req->tos = (uint8_t)n;
			return 0;
		}
	} else if (req->verb == CTL_STATUS && klen == 6 && !memcmp(key, "format", 6)) {
		if (!strcmp(v, "text") || !strcmp(v, "json")) {
			req->text = !strcmp(v, "text");
			return 0;
		}
	} else {
		snprintf(err, errlen, "unknown key '%.*s'", (int)MIN(klen, 32), key);
		return -EINVAL;
	}
	snprintf(err, errlen, "bad value for '%.*s'", (int)klen, key);
	return -EINVAL;
}

int ctl_parse(const char *line, size_t len, struct ctl_req *req, char *err, size_t errlen)
{
	static const struct { const char *name; enum ctl_verb verb; } verbs[] = {
		{ "connect", CTL_CONNECT }, { "status", CTL_STATUS }, { "quit", CTL_QUIT },
	};
	const char *p = line, *end = line + len;
	const char *w = p;

	memset(req, 0, sizeof(*req));
	if (len == 0 || len > CTL_LINE_MAX || memchr(line, 0, len)) {
		snprintf(err, errlen, "empty or malformed request");
		return -EINVAL;
	}
	while (p < end && *p != ' ')
		p++;
	for (size_t i = 0; i < ARRAY_SIZE(verbs); i++)
		if ((size_t)(p - w) == strlen(verbs[i].name) && !memcmp(w, verbs[i].name, (size_t)(p - w)))
			req->verb = verbs[i].verb;
	if (!req->verb) {
		snprintf(err, errlen, "unknown request '%.*s'", (int)MIN(p - w, 32), w);
		return -EINVAL;
	}
	while (p < end) {
		const char *k, *eq, *v;
		while (p < end && *p == ' ')
			p++;
		if (p == end)
			break;
		k = p;
		while (p < end && *p != ' ')
			p++;
		eq = memchr(k, '=', (size_t)(p - k));
		if (!eq) {
			snprintf(err, errlen, "expected key=value, got '%.*s'", (int)MIN(p - k, 32), k);
			return -EINVAL;
		}
		v = eq + 1;
		if (ctl_kv(req, k, (size_t)(eq - k), v, (size_t)(p - v), err, errlen) < 0)
			return -EINVAL;
	}
	if (req->verb == CTL_CONNECT && (!req->mgr_port || !req->token_hex[0])) {
		snprintf(err, errlen, "connect needs manager= and token=");
		return -EINVAL;
	}
	if (req->verb == CTL_CONNECT && req->has_fingerprint == req->insecure) {
		snprintf(err, errlen, "connect needs exactly one of fingerprint= (TLS) and insecure=1");
		return -EINVAL;
	}
	return 0;
}
