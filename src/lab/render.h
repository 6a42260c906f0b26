/* Renders the lab's configuration texts from the plan: `ip -batch`
 * scripts, nftables rulesets, sysctls, resolv.conf, dnsmasq and nginx
 * configs.  Pure: they only append to a struct text. */
#pragma once
#include "lab/plan.h"
#include "lab/text.h"

/* The `ip -n <lab>-<ns> -batch -` script that creates and configures
 * namespace ns's bridges, the veths it owns, addresses, links and routes. */
void render_ip_batch(struct text *t, const struct lab_net *net, const char *lab, int ns);

/* nftables ruleset for namespace ns ("" if it needs none):
 * nodes get kube-proxy and flannel-style masquerade, the laptop and
 * router their uplink masquerade (and the cloud router its filter). */
void render_nft(struct text *t, const struct lab_net *net, int ns);

/* "key=value" sysctls for namespace ns, NULL-terminated, in out[max]:
 * always net.ipv4.ip_forward and the rp_filter of all and default. */
int render_sysctls(const struct lab_net *net, int ns, const char **out, int max);
/* Whether namespace ns forwards (its ip_forward above). */
bool render_ns_forwards(const struct lab_net *net, int ns);

/* /etc/netns/<ns>/resolv.conf contents. */
void render_resolv_conf(struct text *t, const struct lab_net *net, int ns);

/* dnsmasq configs: the cluster DNS (kube-dns pod), the internet resolver,
 * and the host-only laptop's forwarder (which follows resolv_file). */
void render_cluster_dns(struct text *t, enum lab_topo topo);
void render_internet_dns(struct text *t);
void render_forwarder_dns(struct text *t, uint32_t listen, const char *resolv_file);

/* nginx config: GET / answers body; GET /big serves <www>/big if www. */
struct nginx_site {
	const char *prefix;  /* temp dirs and pid live here */
	const char *error_log;
	uint32_t listen;     /* 0: every address */
	const char *pod;     /* for the X-Pod header */
	const char *body;
	const char *www;     /* NULL: no /big */
};
void render_nginx(struct text *t, const struct nginx_site *s);

/* docker-registry's config: plain HTTP on port, storage in root. */
void render_registry(struct text *t, const char *root, int port);

/* "_<port>._<proto>.<svc>.<ns>.svc.cluster.local" and friends. */
void render_svc_fqdn(char *buf, size_t size, const struct lab_service *s);
