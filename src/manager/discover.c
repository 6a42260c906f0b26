/* The manager's view of its cluster, learnt inside its pod (discover.h). */
#include "manager/discover.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KUBEADM_SVC 0x0a600000u /* 10.96.0.0/12: kubeadm's and minikube's default */
#define RESOLV_LINE_MAX 1024

struct cidr4 discover_service_cidr(uint32_t api_ip)
{
	struct cidr4 kubeadm = { KUBEADM_SVC, 12 };

	if (cidr4_contains(&kubeadm, api_ip))
		return kubeadm;
	return (struct cidr4){ api_ip & cidr4_mask(16), 16 };
}

struct cidr4 discover_pod_cidr(uint32_t pod_ip)
{
	return (struct cidr4){ pod_ip & cidr4_mask(16), 16 };
}

/* ---- resolv.conf ---- */

/* The next whitespace-separated word of *p (at most cap - 1 bytes kept,
 * lowercased); false at the end of the line. */
static bool next_word(const char **p, char *out, size_t cap)
{
	const char *s = *p;
	size_t n = 0;

	while (*s == ' ' || *s == '\t')
		s++;
	if (!*s)
		return false;
	while (*s && *s != ' ' && *s != '\t') {
		if (n + 1 < cap)
			out[n++] = (char)tolower((unsigned char)*s);
		s++;
	}
	out[n] = 0;
	*p = s;
	return true;
}

/* The cluster domain a search entry names: D of "svc.D" (best) or of
 * "X.svc.D"; 2, 1 or 0 for how sure. */
static int domain_of(const char *entry, char *out, size_t cap)
{
	const char *d = NULL;
	int score = 0;
	size_t n;

	if (!strncmp(entry, "svc.", 4)) {
		d = entry + 4;
		score = 2;
	} else if ((d = strstr(entry, ".svc.")) && d > entry) {
		d += 5;
		score = 1;
	}
	if (!d)
		return 0;
	n = strlen(d);
	while (n > 0 && d[n - 1] == '.')
		n--;
	if (n == 0 || n >= cap || d[0] == '.')
		return 0;
	memcpy(out, d, n);
	out[n] = 0;
	return score;
}

/* One line, comments and CR already cut. */
static void resolv_line(const char *line, struct resolv_facts *out)
{
	char word[256], dom[DISCOVER_DOMAIN_MAX];
	const char *p = line;
	uint32_t a;
	int best = 0;

	if (!next_word(&p, word, sizeof(word)))
		return;
	if (!strcmp(word, "nameserver")) {
		if (!out->dns && next_word(&p, word, sizeof(word)) && ip4_parse(word, &a) == 0 && a)
			out->dns = a;
		return;
	}
	if (strcmp(word, "search") && strcmp(word, "domain"))
		return;
	/* The last search or domain line wins, as for the resolver. */
	out->domain[0] = 0;
	while (next_word(&p, word, sizeof(word))) {
		int s = domain_of(word, dom, sizeof(dom));
		if (s > best) {
			best = s;
			memcpy(out->domain, dom, strlen(dom) + 1);
		}
	}
}

void discover_resolv(const char *text, size_t len, struct resolv_facts *out)
{
	char line[RESOLV_LINE_MAX];
	size_t off = 0;

	memset(out, 0, sizeof(*out));
	while (text && off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		size_t k = MIN(n, sizeof(line) - 1);

		memcpy(line, text + off, k);
		line[k] = 0;
		line[strcspn(line, "#;\r")] = 0; /* a NUL byte ends the line too */
		resolv_line(line, out);
		off += n + 1;
	}
}

/* ---- putting it together ---- */

static bool given(const char *s)
{
	return s && *s;
}

static int bad(char *err, size_t errlen, const char *what, const char *val, const char *why)
{
	snprintf(err, errlen, "%s: %s '%.80s'", what, why, val);
	return -EINVAL;
}

/* The first of flag, env that is set, parsed by parse(); *src says which. */
typedef int (*parse_fn)(const char *s, void *out);

static int pick(const char *flag, const char *fname, const char *env, const char *ename, parse_fn parse,
		void *out, uint8_t *src, const char *why, char *err, size_t errlen)
{
	const char *v = given(flag) ? flag : env;

	if (!given(v))
		return 0;
	if (parse(v, out) < 0)
		return bad(err, errlen, given(flag) ? fname : ename, v, why);
	*src = given(flag) ? SRC_FLAG : SRC_ENV;
	return 1;
}

static int parse_cidrs(const char *s, void *out)
{
	return cidr_list_parse(s, out);
}

static int parse_domain(const char *s, void *out)
{
	size_t n = strlen(s);

	if (n == 0 || n >= DISCOVER_DOMAIN_MAX || s[0] == '.' || s[0] == '-')
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.')
			return -EINVAL;
	memcpy(out, s, n + 1);
	return 0;
}

struct dns_ep {
	uint32_t addr;
	uint16_t port;
};

/* IP, or IP:PORT (a resolver on another port, for tests). */
static int parse_dns(const char *s, void *out)
{
	struct dns_ep *d = out;

	d->port = 53;
	if ((strchr(s, ':') ? endpoint_parse(s, &d->addr, &d->port) : ip4_parse(s, &d->addr)) < 0 || !d->addr)
		return -EINVAL;
	return 0;
}

struct nodes {
	int n;
	uint32_t v[PROTO_NODES_MAX];
};

static int parse_nodes(const char *s, void *out)
{
	struct nodes *nd = out;
	char buf[PROTO_NODES_MAX * 16 + 16];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s", s);
	nd->n = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (nd->n == PROTO_NODES_MAX || ip4_parse(t, &nd->v[nd->n]) < 0)
			return -EINVAL;
		nd->n++;
	}
	return nd->n ? 0 : -EINVAL;
}

static int parse_ip(const char *s, void *out)
{
	return ip4_parse(s, out) < 0 || *(uint32_t *)out == 0 ? -EINVAL : 0;
}

/* The CIDRs: flag, env, then derived from an address. */
static int run_cidrs(const struct discover_in *in, struct discover_out *out, char *err, size_t errlen)
{
	uint32_t ip = 0;
	int r;

	r = pick(in->flag_pod, "--pod-cidr", in->env_pod, "SUBWAY_POD_CIDR", parse_cidrs, &out->pod,
		 &out->src[INFO_SRC_POD], "not a CIDR list:", err, errlen);
	if (r == 0 && given(in->env_pod_ip) && parse_ip(in->env_pod_ip, &ip) < 0)
		return bad(err, errlen, "POD_IP", in->env_pod_ip, "not an IPv4 address:");
	/* The interface's address only inside a pod (the API's variable set). */
	if (r == 0 && (ip || (given(in->env_api_host) && (ip = in->if_addr)))) {
		out->pod.n = 1;
		out->pod.v[0] = discover_pod_cidr(ip);
		out->src[INFO_SRC_POD] = SRC_DERIVED;
	}
	if (r < 0)
		return r;
	r = pick(in->flag_svc, "--service-cidr", in->env_svc, "SUBWAY_SERVICE_CIDR", parse_cidrs, &out->svc,
		 &out->src[INFO_SRC_SVC], "not a CIDR list:", err, errlen);
	if (r == 0 && given(in->env_api_host)) {
		if (parse_ip(in->env_api_host, &ip) < 0)
			return bad(err, errlen, "KUBERNETES_SERVICE_HOST", in->env_api_host, "not an IPv4 address:");
		out->svc.n = 1;
		out->svc.v[0] = discover_service_cidr(ip);
		out->src[INFO_SRC_SVC] = SRC_DERIVED;
	}
	return r < 0 ? r : 0;
}

/* Domain, DNS and nodes. */
static int run_names(const struct discover_in *in, struct discover_out *out, char *err, size_t errlen)
{
	struct resolv_facts rf;
	struct dns_ep dns = { 0, 53 };
	struct nodes nd = { 0 };
	uint32_t host = 0;
	int r;

	discover_resolv(in->resolv, in->resolv ? in->resolv_len : 0, &rf);
	r = pick(in->flag_domain, "--cluster-domain", in->env_domain, "SUBWAY_CLUSTER_DOMAIN", parse_domain,
		 out->domain, &out->src[INFO_SRC_DOMAIN], "not a domain name:", err, errlen);
	if (r == 0 && rf.domain[0]) {
		snprintf(out->domain, sizeof(out->domain), "%s", rf.domain);
		out->src[INFO_SRC_DOMAIN] = SRC_DERIVED;
	} else if (r == 0) {
		snprintf(out->domain, sizeof(out->domain), "cluster.local");
		out->src[INFO_SRC_DOMAIN] = SRC_DEFAULT;
	}
	if (r < 0)
		return r;
	r = pick(in->flag_dns, "--dns", in->env_dns, "SUBWAY_DNS", parse_dns, &dns, &out->src[INFO_SRC_DNS],
		 "not an IPv4 address:", err, errlen);
	if (r == 0 && rf.dns) {
		dns.addr = rf.dns;
		out->src[INFO_SRC_DNS] = SRC_DERIVED;
	}
	if (r < 0)
		return r;
	out->dns = dns.addr;
	out->dns_port = dns.port;
	r = pick(in->flag_nodes, "--nodes", in->env_nodes, "SUBWAY_NODES", parse_nodes, &nd,
		 &out->src[INFO_SRC_NODES], "not a list of at most 16 IPv4 addresses:", err, errlen);
	if (r < 0)
		return r;
	if (given(in->env_host_ip) && parse_ip(in->env_host_ip, &host) < 0)
		return bad(err, errlen, "HOST_IP", in->env_host_ip, "not an IPv4 address:");
	/* The pod's own node goes with the given ones (a NodePort's nodes). */
	for (int i = 0; host && i < nd.n; i++)
		if (nd.v[i] == host)
			host = 0;
	if (host && nd.n < PROTO_NODES_MAX) {
		nd.v[nd.n++] = host;
		if (out->src[INFO_SRC_NODES] == SRC_NONE)
			out->src[INFO_SRC_NODES] = SRC_DERIVED;
	}
	out->n_nodes = nd.n;
	memcpy(out->nodes, nd.v, sizeof(nd.v));
	return 0;
}

int discover_run(const struct discover_in *in, struct discover_out *out, char *err, size_t errlen)
{
	int r;

	memset(out, 0, sizeof(*out));
	if (errlen)
		err[0] = 0;
	r = run_cidrs(in, out, err, errlen);
	if (r == 0)
		r = run_names(in, out, err, errlen);
	if (r == 0 && !out->pod.n) {
		snprintf(err, errlen, "no pod CIDR: give --pod-cidr or SUBWAY_POD_CIDR, or POD_IP");
		r = -ENOENT;
	}
	if (r == 0 && !out->svc.n) {
		snprintf(err, errlen, "no service CIDR: give --service-cidr or SUBWAY_SERVICE_CIDR "
				      "(outside a pod, KUBERNETES_SERVICE_HOST is not set)");
		r = -ENOENT;
	}
	return r;
}

/* ---- the inputs, from this process's pod ---- */

void discover_gather(struct discover_in *in, char *resolv, size_t size, uint32_t if_addr)
{
	ssize_t n = file_read_small("/etc/resolv.conf", resolv, size);

	in->env_pod = getenv("SUBWAY_POD_CIDR");
	in->env_svc = getenv("SUBWAY_SERVICE_CIDR");
	in->env_domain = getenv("SUBWAY_CLUSTER_DOMAIN");
	in->env_dns = getenv("SUBWAY_DNS");
	in->env_nodes = getenv("SUBWAY_NODES");
	in->env_api_host = getenv("KUBERNETES_SERVICE_HOST");
	in->env_pod_ip = getenv("POD_IP");
	in->env_host_ip = getenv("HOST_IP");
	in->if_addr = if_addr;
	in->resolv = n >= 0 ? resolv : NULL;
	in->resolv_len = n >= 0 ? (size_t)n : 0;
}
