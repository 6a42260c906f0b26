/* Control requests (ctlmsg.h): one table of keys, read by the parser and
 * the encoder alike. */
#include "proto/ctlmsg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "dns/dnsroute.h"
#include "proto/auth.h"

/* How a value is checked, and what it becomes in struct ctl_req. */
enum ctl_kind {
	CTL_ENDPOINT,    /* IPv4:PORT: a struct ctl_endpoint */
	CTL_HEX,         /* 32.. hex digits: a string */
	CTL_UINT32,      /* decimal: a uint32_t */
	CTL_FINGERPRINT, /* sha256:<64 hex>: 32 bytes */
	CTL_ONE,         /* "1": a bool, true */
	CTL_NAMESPACE,   /* an RFC 1123 label: a string */
	CTL_SUFFIXES,    /* comma-separated DNS suffixes: a string, as given */
	CTL_OFF,         /* "on" or "off": a bool, true for "off" */
	CTL_TOS,         /* 0..252, ECN bits clear: a uint8_t */
	CTL_FORMAT,      /* "text" or "json": a bool, true for "text" */
	CTL_MS,          /* milliseconds 0..60000: a uint32_t */
	CTL_THREADS,     /* 1..CTL_THREADS_MAX: a uint8_t */
	CTL_NAME,        /* a DNS-1123 name (a workload's, an intercept's): a string */
	CTL_PORTSPEC,    /* a port number 1..65535 or a port's name: a string */
	CTL_MODE,        /* global|personal|mirror: a uint8_t 1..3 */
	CTL_PCT,         /* printable text, percent-encoded on the line: a string */
	CTL_PATH,        /* /...: a string */
};

/* What a bad value should have been, by kind. */
static const char *const ctl_expect[] = {
	[CTL_ENDPOINT] = "IPv4:PORT, the port 1..65535",
	[CTL_HEX] = "32 to 256 hex digits",
	[CTL_UINT32] = "a number 0..4294967295",
	[CTL_FINGERPRINT] = "sha256: and 64 hex digits",
	[CTL_ONE] = "1",
	[CTL_NAMESPACE] = "a namespace name (lower-case letters, digits, '-', at most 63)",
	[CTL_SUFFIXES] = "DNS suffixes, comma-separated",
	[CTL_OFF] = "on or off",
	[CTL_TOS] = "a TOS byte 0..252 with the ECN bits (0x03) clear",
	[CTL_FORMAT] = "text or json",
	[CTL_MS] = "milliseconds 0..60000",
	[CTL_THREADS] = "a number of threads 1..4",
	[CTL_NAME] = "a name (lower-case letters, digits, '-' and '.', at most 63)",
	[CTL_PORTSPEC] = "a port 1..65535 or a port's name (lower-case letters, digits, '-', at most 15)",
	[CTL_MODE] = "global, personal or mirror",
	[CTL_PCT] = "printable text, percent-encoded",
	[CTL_PATH] = "a path starting with '/', no spaces",
};

static const char *const ctl_modes[] = { "", "global", "personal", "mirror" };

#define NO_HAS ((size_t)-1)
#define AT(f) offsetof(struct ctl_req, f), sizeof(((struct ctl_req *)0)->f)

struct ctl_key {
	const char *name;
	enum ctl_verb verb;
	enum ctl_kind kind;
	size_t off, size; /* the value in struct ctl_req */
	size_t has;       /* the bool saying it was given; NO_HAS: the value says it */
	const char *flag; /* the user's name for it (ctl_diff); NULL: not a session option */
	const char *dflt; /* what leaving it out means, for ctl_diff */
	bool secret;      /* never echoed in a message */
};

static const struct ctl_key ctl_keys[] = {
	{ "manager", CTL_CONNECT, CTL_ENDPOINT, AT(manager), NO_HAS, "--manager", "none", false },
	{ "token", CTL_CONNECT, CTL_HEX, AT(token_hex), NO_HAS, NULL, NULL, true },
	{ "fingerprint", CTL_CONNECT, CTL_FINGERPRINT, AT(fingerprint), offsetof(struct ctl_req, has_fingerprint),
	  "the token file's fingerprint", "none", false },
	{ "insecure", CTL_CONNECT, CTL_ONE, AT(insecure), NO_HAS, "--insecure", "no", false },
	{ "owner", CTL_CONNECT, CTL_UINT32, AT(owner), offsetof(struct ctl_req, has_owner), NULL, NULL, false },
	{ "namespace", CTL_CONNECT, CTL_NAMESPACE, AT(ns), NO_HAS, "--namespace", "default", false },
	{ "also_proxy", CTL_CONNECT, CTL_SUFFIXES, AT(also_proxy), NO_HAS, "--also-proxy", "none", false },
	{ "never_proxy", CTL_CONNECT, CTL_SUFFIXES, AT(never_proxy), NO_HAS, "--never-proxy", "none", false },
	{ "dns", CTL_CONNECT, CTL_OFF, AT(no_dns), NO_HAS, "--no-dns", "no", false },
	{ "loopguard", CTL_CONNECT, CTL_OFF, AT(no_loop_guard), NO_HAS, "--no-loop-guard", "no", false },
	{ "tos", CTL_CONNECT, CTL_TOS, AT(tos), offsetof(struct ctl_req, has_tos), "--tos", "the manager's", false },
	{ "grace", CTL_CONNECT, CTL_MS, AT(grace_ms), offsetof(struct ctl_req, has_grace), "--grace", "2000", false },
	{ "threads", CTL_CONNECT, CTL_THREADS, AT(threads), offsetof(struct ctl_req, has_threads), "--threads",
	  "the number of cores, at most 4", false },
	{ "format", CTL_STATUS, CTL_FORMAT, AT(text), NO_HAS, NULL, "json", false },
	{ "name", CTL_INTERCEPT, CTL_NAME, AT(name), NO_HAS, NULL, NULL, false },
	{ "workload", CTL_INTERCEPT, CTL_NAME, AT(workload), NO_HAS, NULL, NULL, false },
	{ "namespace", CTL_INTERCEPT, CTL_NAMESPACE, AT(ns), NO_HAS, NULL, NULL, false },
	{ "port", CTL_INTERCEPT, CTL_PORTSPEC, AT(port), NO_HAS, NULL, NULL, false },
	{ "local", CTL_INTERCEPT, CTL_ENDPOINT, AT(local), NO_HAS, NULL, NULL, false },
	{ "mode", CTL_INTERCEPT, CTL_MODE, AT(mode), NO_HAS, NULL, NULL, false },
	{ "header1", CTL_INTERCEPT, CTL_PCT, AT(header[0]), NO_HAS, NULL, NULL, false },
	{ "header2", CTL_INTERCEPT, CTL_PCT, AT(header[1]), NO_HAS, NULL, NULL, false },
	{ "header3", CTL_INTERCEPT, CTL_PCT, AT(header[2]), NO_HAS, NULL, NULL, false },
	{ "header4", CTL_INTERCEPT, CTL_PCT, AT(header[3]), NO_HAS, NULL, NULL, false },
	{ "path", CTL_INTERCEPT, CTL_PATH, AT(path), NO_HAS, NULL, NULL, false },
	{ "holder", CTL_INTERCEPT, CTL_PCT, AT(holder), NO_HAS, NULL, NULL, false },
	{ "name", CTL_LEAVE, CTL_NAME, AT(name), NO_HAS, NULL, NULL, false },
	{ "namespace", CTL_LIST, CTL_NAMESPACE, AT(ns), NO_HAS, NULL, NULL, false },
	{ "name", CTL_ENV, CTL_NAME, AT(name), NO_HAS, NULL, NULL, false },
};

static const struct {
	const char *name;
	enum ctl_verb verb;
} ctl_verbs[] = {
	{ "connect", CTL_CONNECT },
	{ "status", CTL_STATUS },
	{ "quit", CTL_QUIT },
	{ "intercept", CTL_INTERCEPT },
	{ "leave", CTL_LEAVE },
	{ "list", CTL_LIST },
	{ "env", CTL_ENV },
};

#define FIELD(req, k, type) ((type *)(void *)((char *)(req) + (k)->off))
#define CFIELD(req, k, type) ((const type *)(const void *)((const char *)(req) + (k)->off))

static const struct ctl_key *ctl_key_find(enum ctl_verb verb, const char *name, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(ctl_keys); i++)
		if (ctl_keys[i].verb == verb && strlen(ctl_keys[i].name) == len && !memcmp(ctl_keys[i].name, name, len))
			return &ctl_keys[i];
	return NULL;
}

static bool ctl_onoff(const char *v, const char *yes, const char *no, bool *out)
{
	if (strcmp(v, yes) && strcmp(v, no))
		return false;
	*out = !strcmp(v, yes);
	return true;
}

/* A DNS-1123 label or subdomain (dots allowed when dots): [a-z0-9] at the
 * ends, '-' (and '.') inside, 1..max bytes. */
static bool ctl_name_ok(const char *v, size_t vlen, size_t max, bool dots)
{
	if (!vlen || vlen > max || v[0] == '-' || v[0] == '.' || v[vlen - 1] == '-' || v[vlen - 1] == '.')
		return false;
	for (size_t i = 0; i < vlen; i++)
		if (!((v[i] >= 'a' && v[i] <= 'z') || (v[i] >= '0' && v[i] <= '9') || v[i] == '-' ||
		      (dots && v[i] == '.')))
			return false;
	return true;
}

/* A port: 1..65535, or a name (IANA_SVC_NAME: a letter in it). */
static bool ctl_portspec_ok(const char *v, size_t vlen)
{
	uint64_t n;

	if (u64_parse(v, 65535, &n) == 0)
		return n > 0;
	return ctl_name_ok(v, vlen, 15, false) && strpbrk(v, "abcdefghijklmnopqrstuvwxyz");
}

/* Visible ASCII only: no space, no control character. */
static bool ctl_graph(const char *v)
{
	for (; *v; v++)
		if ((unsigned char)*v < 0x21 || (unsigned char)*v > 0x7e)
			return false;
	return true;
}

/* Percent-decodes v into out (size bytes): printable ASCII only, not empty. */
static bool ctl_pct_decode(const char *v, size_t vlen, char *out, size_t size)
{
	ssize_t n = str_pct_decode(v, vlen, out, size);

	for (ssize_t i = 0; i < n; i++)
		if (out[i] < 0x20 || out[i] > 0x7e)
			return false;
	return n > 0;
}

/* Sets k from v (NUL-terminated, vlen bytes); -EINVAL with the reason in err. */
static int ctl_value_set(const struct ctl_key *k, struct ctl_req *req, const char *v, size_t vlen, char *err,
			 size_t errlen)
{
	char cut[STR_CUT_SIZE], bad[256];
	struct dns_name names[DNSROUTE_SUFFIX_MAX];
	uint64_t n;
	int count;
	bool ok = false;

	if ((k->kind == CTL_HEX || k->kind == CTL_NAMESPACE || k->kind == CTL_SUFFIXES || k->kind == CTL_NAME ||
	     k->kind == CTL_PORTSPEC || k->kind == CTL_PATH) && vlen >= k->size) {
		if (k->secret)
			snprintf(err, errlen, "its value (not shown) is too long: %zu bytes, at most %zu", vlen, k->size - 1);
		else
			snprintf(err, errlen, "'%s' is too long: %zu bytes, at most %zu",
				 str_cut(v, vlen, cut, sizeof(cut)), vlen, k->size - 1);
		return -EINVAL;
	}
	switch (k->kind) {
	case CTL_ENDPOINT: {
		struct ctl_endpoint *e = FIELD(req, k, struct ctl_endpoint);
		ok = endpoint_parse(v, &e->addr, &e->port) == 0;
		break;
	}
	case CTL_HEX:
		ok = vlen >= 32 && strspn(v, "0123456789abcdefABCDEF") == vlen;
		break;
	case CTL_UINT32:
		if ((ok = u64_parse(v, UINT32_MAX, &n) == 0))
			*FIELD(req, k, uint32_t) = (uint32_t)n;
		break;
	case CTL_FINGERPRINT: ok = auth_fingerprint_parse(v, FIELD(req, k, uint8_t)) == 0; break;
	case CTL_ONE: ok = *FIELD(req, k, bool) = !strcmp(v, "1"); break;
	case CTL_NAMESPACE: ok = dnsroute_ns_valid(v); break;
	case CTL_SUFFIXES:
		if (dnsroute_suffixes_parse(v, names, &count, bad) < 0) {
			snprintf(err, errlen, "bad DNS suffix '%s' (at most %d, each a domain name)",
				 str_cut(bad, strlen(bad), cut, sizeof(cut)), DNSROUTE_SUFFIX_MAX);
			return -EINVAL;
		}
		ok = true;
		break;
	case CTL_OFF: ok = ctl_onoff(v, "off", "on", FIELD(req, k, bool)); break;
	case CTL_TOS:
		/* ECN bits (0x03) are the network's to change: they mark nothing. */
		if ((ok = u64_parse(v, 255, &n) == 0 && !(n & 3)))
			*FIELD(req, k, uint8_t) = (uint8_t)n;
		break;
	case CTL_FORMAT: ok = ctl_onoff(v, "text", "json", FIELD(req, k, bool)); break;
	case CTL_MS:
		if ((ok = u64_parse(v, 60000, &n) == 0))
			*FIELD(req, k, uint32_t) = (uint32_t)n;
		break;
	case CTL_THREADS:
		if ((ok = u64_parse(v, CTL_THREADS_MAX, &n) == 0 && n >= 1))
			*FIELD(req, k, uint8_t) = (uint8_t)n;
		break;
	case CTL_NAME: ok = ctl_name_ok(v, vlen, 63, true); break;
	case CTL_PORTSPEC: ok = ctl_portspec_ok(v, vlen); break;
	case CTL_MODE:
		for (uint8_t m = 1; m <= 3 && !ok; m++)
			if (!strcmp(v, ctl_modes[m]))
				ok = (*FIELD(req, k, uint8_t) = m) != 0;
		break;
	case CTL_PCT: ok = ctl_pct_decode(v, vlen, FIELD(req, k, char), k->size); break;
	case CTL_PATH: ok = v[0] == '/' && ctl_graph(v) && !strchr(v, '%'); break;
	}
	if (!ok) {
		if (k->secret)
			snprintf(err, errlen, "its value (not shown, %zu bytes) is not %s", vlen, ctl_expect[k->kind]);
		else
			snprintf(err, errlen, "'%s' is not %s", str_cut(v, vlen, cut, sizeof(cut)), ctl_expect[k->kind]);
		return -EINVAL;
	}
	if (k->kind == CTL_HEX || k->kind == CTL_NAMESPACE || k->kind == CTL_SUFFIXES || k->kind == CTL_NAME ||
	    k->kind == CTL_PORTSPEC || k->kind == CTL_PATH)
		memcpy(FIELD(req, k, char), v, vlen + 1);
	if (k->has != NO_HAS)
		*(bool *)(void *)((char *)req + k->has) = true;
	return 0;
}

/* k's value in req as text; false when it is left at its default. */
static bool ctl_value_get(const struct ctl_key *k, const struct ctl_req *req, char *out, size_t size)
{
	char ip[16];

	if (k->has != NO_HAS && !*(const bool *)(const void *)((const char *)req + k->has))
		return false;
	switch (k->kind) {
	case CTL_ENDPOINT: {
		const struct ctl_endpoint *e = CFIELD(req, k, struct ctl_endpoint);
		if (!e->port)
			return false;
		snprintf(out, size, "%s:%u", ip4_str(e->addr, ip), e->port);
		return true;
	}
	case CTL_HEX:
	case CTL_NAMESPACE:
	case CTL_SUFFIXES:
	case CTL_NAME:
	case CTL_PORTSPEC:
	case CTL_PATH:
		/* bounded by the field: a string the caller left unterminated is cut, then refused */
		snprintf(out, size, "%.*s", (int)strnlen(CFIELD(req, k, char), k->size), CFIELD(req, k, char));
		return out[0] != 0;
	case CTL_UINT32:
	case CTL_MS: snprintf(out, size, "%u", *CFIELD(req, k, uint32_t)); return true;
	case CTL_FINGERPRINT: {
		if (size < 7 + 2 * k->size + 1)
			return false;
		memcpy(out, "sha256:", 7);
		hex_encode(CFIELD(req, k, uint8_t), k->size, out + 7);
		return true;
	}
	case CTL_ONE: snprintf(out, size, "1"); return *CFIELD(req, k, bool);
	case CTL_OFF: snprintf(out, size, "off"); return *CFIELD(req, k, bool);
	case CTL_TOS:
	case CTL_THREADS: snprintf(out, size, "%u", *CFIELD(req, k, uint8_t)); return true;
	case CTL_FORMAT: snprintf(out, size, "text"); return *CFIELD(req, k, bool);
	case CTL_MODE: {
		uint8_t m = *CFIELD(req, k, uint8_t);
		snprintf(out, size, "%s", m >= 1 && m <= 3 ? ctl_modes[m] : "");
		return m >= 1 && m <= 3;
	}
	case CTL_PCT: {
		const char *v = CFIELD(req, k, char);
		return str_pct_encode(v, strnlen(v, k->size), out, size) > 0;
	}
	}
	return false;
}

int ctl_set(struct ctl_req *req, const char *key, const char *value, char *err, size_t errlen)
{
	const struct ctl_key *k = ctl_key_find(req->verb, key, strlen(key));

	if (!k) {
		snprintf(err, errlen, "no key '%s' for this request", key);
		return -ENOENT;
	}
	return ctl_value_set(k, req, value, strlen(value), err, errlen);
}

/* One key=value of the line: known, given once, with a good value. */
static int ctl_kv(struct ctl_req *req, uint32_t *seen, const char *key, size_t klen, const char *val,
		  size_t vlen, char *err, size_t errlen)
{
	const struct ctl_key *k = ctl_key_find(req->verb, key, klen);
	char v[300], why[200], cut[STR_CUT_SIZE];
	uint32_t bit;

	if (!k) {
		snprintf(err, errlen, "unknown key '%s'", str_cut(key, klen, cut, sizeof(cut)));
		return -EINVAL;
	}
	bit = 1u << (k - ctl_keys);
	if (*seen & bit) {
		snprintf(err, errlen, "%s: given twice", k->name);
		return -EINVAL;
	}
	*seen |= bit;
	if (vlen >= sizeof(v)) {
		snprintf(err, errlen, "%s: value too long (%zu bytes)", k->name, vlen);
		return -EINVAL;
	}
	memcpy(v, val, vlen);
	v[vlen] = 0;
	if (ctl_value_set(k, req, v, vlen, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: %s", k->name, why);
		return -EINVAL;
	}
	return 0;
}

/* What a verb needs beyond well-formed keys. */
static int ctl_check_intercept(const struct ctl_req *req, char *err, size_t errlen)
{
	bool filtered = req->path[0];

	if (!req->name[0] || !req->workload[0] || !req->local.port || !req->mode || !req->holder[0]) {
		snprintf(err, errlen, "intercept needs name=, workload=, local=, mode= and holder=");
		return -EINVAL;
	}
	for (int i = 0; i < CTL_HEADERS_MAX; i++) {
		const char *h = req->header[i], *colon = strchr(h, ':');
		if (!h[0])
			continue;
		filtered = true;
		if (!colon || colon == h || strcspn(h, " ") < (size_t)(colon - h)) {
			snprintf(err, errlen, "header%d: '%.40s' is not NAME:VALUE", i + 1, h);
			return -EINVAL;
		}
	}
	if (filtered && req->mode == 1) {
		snprintf(err, errlen, "a global intercept takes every request: no header= or path=");
		return -EINVAL;
	}
	return 0;
}

static int ctl_check(const struct ctl_req *req, char *err, size_t errlen)
{
	if (req->verb == CTL_INTERCEPT)
		return ctl_check_intercept(req, err, errlen);
	if ((req->verb == CTL_LEAVE || req->verb == CTL_ENV) && !req->name[0]) {
		snprintf(err, errlen, "name= is needed");
		return -EINVAL;
	}
	if (req->verb != CTL_CONNECT)
		return 0;
	if (!req->manager.port || !req->token_hex[0]) {
		snprintf(err, errlen, "connect needs manager= and token=");
		return -EINVAL;
	}
	if (req->has_fingerprint == req->insecure) {
		snprintf(err, errlen, "connect needs exactly one of fingerprint= (TLS) and insecure=1");
		return -EINVAL;
	}
	return 0;
}

int ctl_parse(const char *line, size_t len, struct ctl_req *req, char *err, size_t errlen)
{
	const char *p = line, *end = line + len, *w = line;
	char cut[STR_CUT_SIZE];
	uint32_t seen = 0;

	_Static_assert(ARRAY_SIZE(ctl_keys) <= 32, "seen is a 32-bit mask");
	memset(req, 0, sizeof(*req));
	if (len == 0 || len > CTL_LINE_MAX || memchr(line, 0, len)) {
		snprintf(err, errlen, "empty or malformed request");
		return -EINVAL;
	}
	while (p < end && *p != ' ')
		p++;
	for (size_t i = 0; i < ARRAY_SIZE(ctl_verbs); i++)
		if ((size_t)(p - w) == strlen(ctl_verbs[i].name) && !memcmp(w, ctl_verbs[i].name, (size_t)(p - w)))
			req->verb = ctl_verbs[i].verb;
	if (!req->verb) {
		snprintf(err, errlen, "unknown request '%s'", str_cut(w, (size_t)(p - w), cut, sizeof(cut)));
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
			snprintf(err, errlen, "expected key=value, got '%s'",
				 str_cut(k, (size_t)(p - k), cut, sizeof(cut)));
			return -EINVAL;
		}
		v = eq + 1;
		if (ctl_kv(req, &seen, k, (size_t)(eq - k), v, (size_t)(p - v), err, errlen) < 0)
			return -EINVAL;
	}
	return ctl_check(req, err, errlen);
}

ssize_t ctl_encode(const struct ctl_req *req, char *buf, size_t size, char *err, size_t errlen)
{
	struct ctl_req back;
	const char *verb = NULL;
	char v[300];
	size_t len;
	int n;

	for (size_t i = 0; i < ARRAY_SIZE(ctl_verbs); i++)
		if (ctl_verbs[i].verb == req->verb)
			verb = ctl_verbs[i].name;
	if (!verb) {
		snprintf(err, errlen, "no such request (%d)", (int)req->verb);
		return -EINVAL;
	}
	size = MIN(size, (size_t)CTL_LINE_MAX + 1);
	if ((n = snprintf(buf, size, "%s", verb)) < 0 || (size_t)n >= size)
		goto nospace;
	len = (size_t)n;
	for (size_t i = 0; i < ARRAY_SIZE(ctl_keys); i++) {
		const struct ctl_key *k = &ctl_keys[i];
		if (k->verb != req->verb || !ctl_value_get(k, req, v, sizeof(v)))
			continue;
		n = snprintf(buf + len, size - len, " %s=%s", k->name, v);
		if (n < 0 || (size_t)n >= size - len)
			goto nospace;
		len += (size_t)n;
	}
	explicit_bzero(v, sizeof(v));
	/* The daemon's parser is the judge of what it will take. */
	n = ctl_parse(buf, len, &back, err, errlen);
	explicit_bzero(&back, sizeof(back));
	if (n < 0) {
		explicit_bzero(buf, size);
		return -EINVAL;
	}
	return (ssize_t)len;
nospace:
	explicit_bzero(v, sizeof(v));
	explicit_bzero(buf, size);
	snprintf(err, errlen, "the request does not fit in %d bytes", CTL_LINE_MAX);
	return -ENOSPC;
}

/* A value as ctl_diff shows it: a flag without a value reads "yes" when given. */
static const char *ctl_shown(const struct ctl_key *k, bool given, const char *v, char cut[STR_CUT_SIZE])
{
	if (!given)
		return k->dflt;
	if (k->kind == CTL_ONE || k->kind == CTL_OFF)
		return "yes";
	return str_cut(v, strlen(v), cut, STR_CUT_SIZE);
}

int ctl_diff(const struct ctl_req *running, const struct ctl_req *asked, char *out, size_t size)
{
	char a[300], r[300], ca[STR_CUT_SIZE], cr[STR_CUT_SIZE];
	size_t len = 0;
	int count = 0;

	out[0] = 0;
	for (size_t i = 0; i < ARRAY_SIZE(ctl_keys); i++) {
		const struct ctl_key *k = &ctl_keys[i];
		bool has_a, has_r;
		int n;
		if (k->verb != CTL_CONNECT || !k->flag)
			continue;
		has_a = ctl_value_get(k, asked, a, sizeof(a));
		has_r = ctl_value_get(k, running, r, sizeof(r));
		if (has_a == has_r && (!has_a || !strcmp(a, r)))
			continue;
		n = snprintf(out + len, size - len, "%s%s (asked: %s, running: %s)", count ? ", " : "", k->flag,
			     ctl_shown(k, has_a, a, ca), ctl_shown(k, has_r, r, cr));
		if (n > 0 && (size_t)n < size - len)
			len += (size_t)n;
		count++;
	}
	return count;
}
