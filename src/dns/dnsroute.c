/* DNS name routing: see dnsroute.h for the table. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dns/dnsroute.h"

#define SRV_PREFIX_MAX 2 /* _service._proto. */

static bool label_is(const uint8_t *p, uint8_t len, const char *s)
{
	size_t n = strlen(s);

	if (len != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = p[i] >= 'A' && p[i] <= 'Z' ? (uint8_t)(p[i] + 32) : p[i];
		if (c != (uint8_t)s[i])
			return false;
	}
	return true;
}

bool dnsroute_ns_valid(const char *ns)
{
	size_t n = strlen(ns);

	if (n == 0 || n > DNS_LABEL_MAX || ns[0] == '-' || ns[n - 1] == '-')
		return false;
	return strspn(ns, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

int dnsroute_cfg_init(struct dnsroute_cfg *cfg, const char *domain, const char *ns)
{
	char buf[DNS_NAME_MAX + 80];

	memset(cfg, 0, sizeof(*cfg));
	if (!dnsroute_ns_valid(ns) || dnsmsg_name_from_str(domain, &cfg->domain) < 0 || cfg->domain.len <= 1)
		return -EINVAL;
	snprintf(buf, sizeof(buf), "%s.svc.%s", ns, domain);
	return dnsmsg_name_from_str(buf, &cfg->svc) < 0 ? -EINVAL : 0;
}

int dnsroute_suffixes_parse(const char *s, struct dns_name *names, int *n, char *bad)
{
	char item[256];

	*n = 0;
	while (*s) {
		size_t len = strcspn(s, ",");
		if (len == 0 || len >= sizeof(item) || *n >= DNSROUTE_SUFFIX_MAX) {
			snprintf(bad, 256, "%.*s", (int)MIN(len, 255), s);
			return -EINVAL;
		}
		memcpy(item, s, len);
		item[len] = 0;
		if (dnsmsg_name_from_str(item, &names[*n]) < 0 || names[*n].len <= 1) {
			snprintf(bad, 256, "%s", item);
			return -EINVAL;
		}
		(*n)++;
		s += len;
		if (*s == ',' && !*++s) {
			snprintf(bad, 256, "%s", "");
			return -EINVAL;
		}
	}
	return 0;
}

static bool under_any(const struct dns_name *q, const struct dns_name *list, int n)
{
	for (int i = 0; i < n; i++)
		if (dnsmsg_name_under(q, &list[i]))
			return true;
	return false;
}

/* "d.c.b.a.in-addr.arpa" (1..4 decimal labels) inside a cluster CIDR. */
static bool reverse_in_cluster(const struct dnsroute_cfg *cfg, const struct dns_name *q)
{
	static const struct dns_name arpa = { 14, "\7in-addr\4arpa" };
	int labels = dnsmsg_name_labels(q) - 2;
	uint32_t addr = 0;
	const struct cidr_list *lists[] = { &cfg->pod, &cfg->svc_cidrs };

	if (labels < 1 || labels > 4 || !dnsmsg_name_under(q, &arpa))
		return false;
	for (int i = 0; i < labels; i++) {
		const uint8_t *p;
		uint8_t len;
		unsigned v = 0;
		dnsmsg_name_label(q, i, &p, &len);
		if (len < 1 || len > 3 || (len > 1 && p[0] == '0'))
			return false;
		for (uint8_t k = 0; k < len; k++) {
			if (p[k] < '0' || p[k] > '9')
				return false;
			v = v * 10 + (unsigned)(p[k] - '0');
		}
		if (v > 255)
			return false;
		addr |= v << (8 * (3 - (labels - 1 - i))); /* label 0 is the last octet given */
	}
	/* The name covers addr/(8 * labels): it must lie inside a cluster CIDR. */
	for (size_t l = 0; l < 2; l++)
		for (int c = 0; c < lists[l]->n; c++)
			if (lists[l]->v[c].len <= 8 * labels && cidr4_contains(&lists[l]->v[c], addr))
				return true;
	return false;
}

/* NAME.NS.svc, NAME.NS.pod, NAME.NS and NAME, after any _service._proto. */
static void decide_short(const struct dnsroute_cfg *cfg, const struct dns_name *q, struct dnsroute *out)
{
	int labels = dnsmsg_name_labels(q), skip = 0;
	const uint8_t *p;
	uint8_t len;

	while (skip < SRV_PREFIX_MAX && skip < labels - 1 && dnsmsg_name_label(q, skip, &p, &len) && p[0] == '_')
		skip++;
	labels -= skip;
	dnsmsg_name_label(q, skip + labels - 1, &p, &len);
	out->name = *q;
	if (labels == 3 && (label_is(p, len, "svc") || label_is(p, len, "pod"))) {
		out->kind = DNSROUTE_CLUSTER;
		if (dnsmsg_name_append(&out->name, &cfg->domain) < 0)
			out->kind = DNSROUTE_UPSTREAM;
		return;
	}
	if (labels > 2 || label_is(p, len, "localhost") || label_is(p, len, "local") || label_is(p, len, "arpa")) {
		out->kind = DNSROUTE_UPSTREAM;
		return;
	}
	out->kind = DNSROUTE_SEARCH;
	if (labels == 1) {
		if (dnsmsg_name_append(&out->name, &cfg->svc) < 0)
			out->kind = DNSROUTE_UPSTREAM;
		return;
	}
	/* NAME.NS: NS.svc.<domain> is cfg->svc without its first label. */
	{
		struct dns_name tail = cfg->svc;
		dnsmsg_name_strip(&tail, 1);
		if (dnsmsg_name_append(&out->name, &tail) < 0)
			out->kind = DNSROUTE_UPSTREAM;
	}
}

void dnsroute_decide(const struct dnsroute_cfg *cfg, const struct dns_name *q, struct dnsroute *out)
{
	static const struct dns_name localhost = { 11, "\11localhost" };

	out->kind = DNSROUTE_UPSTREAM;
	out->name = *q;
	if (q->len <= 1 || under_any(q, cfg->never, cfg->n_never) || dnsmsg_name_under(q, &localhost))
		return;
	if (dnsmsg_name_under(q, &cfg->domain) || under_any(q, cfg->also, cfg->n_also) ||
	    reverse_in_cluster(cfg, q)) {
		out->kind = DNSROUTE_CLUSTER;
		return;
	}
	decide_short(cfg, q, out);
}
