/* Which names the laptop asks the cluster about, and as what (docs/dns.md).
 * Pure: a name in, a decision out.
 *
 *   never-proxy suffixes, localhost, other .local names  -> the laptop's resolvers
 *   the cluster domain, also-proxy suffixes,
 *   reverse names inside the pod and service CIDRs       -> the cluster, as asked
 *   NAME.NS.svc, NAME.NS.pod (_port._proto. allowed)     -> the cluster, + the domain
 *   NAME (one label)                                     -> NAME.<namespace>.svc.<domain>,
 *   NAME.NS (two labels)                                 -> NAME.NS.svc.<domain>,
 *                                                           the laptop's resolvers if the
 *                                                           cluster says NXDOMAIN
 *   anything else                                        -> the laptop's resolvers */
#pragma once
#include <stdbool.h>

#include "common/util.h"
#include "dns/dnsmsg.h"

#define DNSROUTE_SUFFIX_MAX 8

enum dnsroute_kind {
	DNSROUTE_UPSTREAM = 0, /* the resolvers the laptop had before */
	DNSROUTE_CLUSTER,      /* the cluster's answer, whatever it is */
	DNSROUTE_SEARCH,       /* the cluster's, unless NXDOMAIN: then upstream, as asked */
};

struct dnsroute_cfg {
	struct dns_name domain;    /* "cluster.local" */
	struct dns_name svc;       /* "<namespace>.svc.<domain>" */
	struct cidr_list pod, svc_cidrs;
	int n_also, n_never;
	struct dns_name also[DNSROUTE_SUFFIX_MAX], never[DNSROUTE_SUFFIX_MAX];
};

struct dnsroute {
	enum dnsroute_kind kind;
	struct dns_name name; /* what to ask the cluster (CLUSTER and SEARCH) */
};

/* Fills cfg for the cluster domain and the namespace (a DNS label); 0 or
 * -EINVAL.  CIDRs and suffix lists are set by the caller afterwards. */
int dnsroute_cfg_init(struct dnsroute_cfg *cfg, const char *domain, const char *ns);
/* A comma-separated list of suffixes ("corp.example,internal") into
 * names[]; 0, or -EINVAL with the bad item copied to bad (size >= 256). */
int dnsroute_suffixes_parse(const char *s, struct dns_name *names, int *n, char *bad);
/* A Kubernetes namespace name: an RFC 1123 label (a-z, 0-9, '-', 1..63,
 * starting and ending alphanumeric). */
bool dnsroute_ns_valid(const char *ns);

void dnsroute_decide(const struct dnsroute_cfg *cfg, const struct dns_name *q, struct dnsroute *out);
