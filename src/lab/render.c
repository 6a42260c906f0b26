#include "lab/render.h"

#include <stdio.h>
#include <string.h>

#include "common/util.h"

#define MASQ_MARK "0x4000" /* kube-proxy's KUBE-MARK-MASQ bit */

static const char *ip(uint32_t a, char buf[16])
{
	return ip4_str(a, buf);
}

/* ---- ip -batch ---- */

static void batch_links(struct text *t, const struct lab_net *net, const char *lab, int ns)
{
	for (int i = 0; i < net->nifaces; i++) {
		const struct lab_iface *f = &net->ifaces[i];
		if (f->ns == ns && f->bridge)
			text_printf(t, "link add %s type bridge\n", f->name);
	}
	for (int i = 0; i < net->nveths; i++) {
		const struct lab_veth *v = &net->veths[i];
		if (v->ns_a == ns)
			text_printf(t, "link add %s type veth peer name %s netns %s-%s\n", v->if_a, v->if_b, lab,
				    net->ns[v->ns_b].suffix);
	}
}

void render_ip_batch(struct text *t, const struct lab_net *net, const char *lab, int ns)
{
	char a[16];

	text_printf(t, "link set lo up\n");
	batch_links(t, net, lab, ns);
	for (int i = 0; i < net->nifaces; i++) {
		const struct lab_iface *f = &net->ifaces[i];
		if (f->ns != ns)
			continue;
		if (f->master[0])
			text_printf(t, "link set %s master %s\n", f->name, f->master);
		if (f->hairpin)
			text_printf(t, "link set %s type bridge_slave hairpin on\n", f->name);
		if (f->addr)
			text_printf(t, "addr add %s/%u dev %s\n", ip(f->addr, a), f->len, f->name);
		if (strcmp(f->name, "lo"))
			text_printf(t, "link set %s up\n", f->name);
	}
	for (int i = 0; i < net->nroutes; i++) {
		const struct lab_route *r = &net->routes[i];
		char v[16];
		if (r->ns != ns)
			continue;
		if (r->len == 0)
			text_printf(t, "route add default via %s\n", ip(r->via, v));
		else
			text_printf(t, "route add %s/%u via %s\n", ip(r->dst, a), r->len, ip(r->via, v));
	}
}

/* ---- nftables ---- */

static void chain_id(char *buf, size_t size, const char *kind, const struct lab_service *s,
		     const struct lab_port *p)
{
	snprintf(buf, size, "%s-%s-%s-%s", kind, s->ns, s->name, p->name);
}

static const char *proto_kw(enum lab_proto p)
{
	return p == LAB_UDP ? "udp" : "tcp";
}

/* One chain per endpoint, then the chain that picks one at random. */
static void nft_endpoints(struct text *t, const struct lab_service *s, const struct lab_port *p)
{
	char eps[96], sep[128], a[16];
	int n = 0;

	chain_id(eps, sizeof(eps), "eps", s, p);
	for (size_t i = 0; i < lab_npods; i++) {
		const struct lab_pod *pod = &lab_pods[i];
		if (!lab_pod_selected(s, pod))
			continue;
		snprintf(sep, sizeof(sep), "sep-%s-%s-%s-%s", s->ns, s->name, p->name, pod->name);
		text_printf(t, "\tchain %s {\n\t\tip saddr %s jump mark-for-masquerade\n", sep, ip(lab_pod_ip(pod), a));
		text_printf(t, "\t\tmeta l4proto %s dnat to %s:%u\n\t}\n", proto_kw(p->proto), a, p->target);
		n++;
	}
	text_printf(t, "\tchain %s {\n\t\tnumgen random mod %d vmap {", eps, n);
	for (size_t i = 0, k = 0; i < lab_npods; i++) {
		if (!lab_pod_selected(s, &lab_pods[i]))
			continue;
		text_printf(t, "%s %zu : goto sep-%s-%s-%s-%s", k ? "," : "", k, s->ns, s->name, p->name,
			    lab_pods[i].name);
		k++;
	}
	text_printf(t, " }\n\t}\n");
}

static void nft_service_chains(struct text *t, const struct lab_service *s, const struct lab_port *p)
{
	char id[96], eps[96], pod_cidr[20];
	struct cidr4 pc = { LAB_POD_NET, LAB_POD_LEN };

	nft_endpoints(t, s, p);
	chain_id(id, sizeof(id), "svc", s, p);
	chain_id(eps, sizeof(eps), "eps", s, p);
	/* As kube-proxy: traffic to a service from outside the pod CIDR is
	 * masqueraded so replies come back through this node. */
	text_printf(t, "\tchain %s {\n\t\tip saddr != %s jump mark-for-masquerade\n\t\tgoto %s\n\t}\n", id,
		    cidr4_str(&pc, pod_cidr), eps);
	if (p->node_port) {
		chain_id(id, sizeof(id), "nodeport", s, p);
		text_printf(t, "\tchain %s {\n\t\tjump mark-for-masquerade\n\t\tgoto %s\n\t}\n", id, eps);
	}
}

static void nft_services_chain(struct text *t)
{
	char id[96], a[16];

	text_printf(t, "\tchain services {\n");
	for (size_t i = 0; i < lab_nservices; i++) {
		const struct lab_service *s = &lab_services[i];
		for (int k = 0; k < s->nports; k++) {
			chain_id(id, sizeof(id), "svc", s, &s->ports[k]);
			text_printf(t, "\t\tip daddr %s %s dport %u goto %s\n", ip(s->ip, a),
				    proto_kw(s->ports[k].proto), s->ports[k].port, id);
		}
	}
	for (size_t i = 0; i < lab_nservices; i++) {
		const struct lab_service *s = &lab_services[i];
		for (int k = 0; k < s->nports; k++) {
			if (!s->ports[k].node_port)
				continue;
			chain_id(id, sizeof(id), "nodeport", s, &s->ports[k]);
			text_printf(t, "\t\tfib daddr type local %s dport %u goto %s\n", proto_kw(s->ports[k].proto),
				    s->ports[k].node_port, id);
		}
	}
	text_printf(t, "\t}\n");
}

/* kube-proxy's job, in nftables: DNAT for ClusterIPs and node ports on
 * every path (prerouting: pods and outside; output: the node itself). A
 * ClusterIP no service owns matches nothing and follows the routes. */
static void nft_kube_proxy(struct text *t)
{
	text_printf(t, "table ip kube-proxy {\n");
	text_printf(t, "\tchain mark-for-masquerade {\n\t\tmeta mark set meta mark | " MASQ_MARK "\n\t}\n");
	for (size_t i = 0; i < lab_nservices; i++)
		for (int k = 0; k < lab_services[i].nports; k++)
			nft_service_chains(t, &lab_services[i], &lab_services[i].ports[k]);
	nft_services_chain(t);
	text_printf(t, "\tchain prerouting {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n"
		       "\t\tjump services\n\t}\n");
	text_printf(t, "\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n"
		       "\t\tjump services\n\t}\n");
	text_printf(t, "\tchain postrouting {\n\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		       "\t\tmeta mark & " MASQ_MARK " == " MASQ_MARK " masquerade\n\t}\n}\n");
}

/* flannel's --ip-masq: pod traffic leaving the pod network is masqueraded
 * to the node's address (a ClusterIP with no rule included, as on k3s). */
static void nft_flannel(struct text *t)
{
	text_printf(t, "table ip flannel {\n\tchain postrouting {\n"
		       "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		       "\t\tip saddr 10.42.0.0/16 ip daddr 10.42.0.0/16 return\n"
		       "\t\tip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade\n\t}\n}\n");
}

static void nft_uplink(struct text *t, const char *table, bool cloud)
{
	text_printf(t, "table ip %s {\n\tchain postrouting {\n"
		       "\t\ttype nat hook postrouting priority srcnat; policy accept;\n"
		       "\t\toifname \"wan0\" masquerade\n\t}\n", table);
	if (cloud)
		text_printf(t, "\tchain forward {\n\t\ttype filter hook forward priority filter; policy accept;\n"
			       "\t\tct state established,related accept\n"
			       "\t\tiifname \"lan0\" oifname \"vpc0\" meta l4proto { tcp, udp } th dport 30000-32767 accept\n"
			       "\t\tiifname \"lan0\" oifname \"vpc0\" drop\n"
			       "\t\tiifname \"vpc0\" oifname \"lan0\" drop\n\t}\n");
	text_printf(t, "}\n");
}

void render_nft(struct text *t, const struct lab_net *net, int ns)
{
	const struct lab_topo_info *ti = lab_topo_info(net->topo);

	switch (net->ns[ns].kind) {
	case LAB_NS_NODE:
		nft_kube_proxy(t);
		nft_flannel(t);
		break;
	case LAB_NS_LAPTOP:
		if (ti->laptop_forwards)
			nft_uplink(t, "lab-laptop", false);
		break;
	case LAB_NS_ROUTER:
		nft_uplink(t, "lab-router", ti->node_ports_only);
		break;
	default:
		break;
	}
}

/* Every namespace gets its forwarding and reverse-path filter set here,
 * never inherited from the machine's own namespace (a new namespace
 * copies its IPv4 settings from there, and podman's default network, for
 * one, turns forwarding on).  up sets them before any link exists, so
 * every interface starts from these defaults too. */
int render_sysctls(const struct lab_net *net, int ns, const char **out, int max)
{
	const struct lab_topo_info *ti = lab_topo_info(net->topo);
	bool fwd = false;
	int n = 0;

#define ADD(s) do { if (n + 1 < max) out[n++] = (s); } while (0)
	switch (net->ns[ns].kind) {
	case LAB_NS_NODE:
		fwd = true;
		ADD("net.bridge.bridge-nf-call-iptables=1"); /* k3s needs br_netfilter */
		break;
	case LAB_NS_LAPTOP:
		fwd = ti->laptop_forwards;
		if (!ti->router) /* a hypervisor's bridge: frames between VMs skip the host's netfilter */
			ADD("net.bridge.bridge-nf-call-iptables=0");
		break;
	case LAB_NS_ROUTER:
		fwd = true;
		ADD("net.bridge.bridge-nf-call-iptables=0");
		break;
	case LAB_NS_INTERNET:
		fwd = true; /* answers "net unreachable" for what it cannot route */
		break;
	case LAB_NS_POD:
		/* Unprivileged ping sockets for every group, as containerd sets in
		 * pods: the manager sends ICMP echo without CAP_NET_RAW. */
		ADD("net.ipv4.ping_group_range=0 2147483647");
		break;
	}
	ADD(fwd ? "net.ipv4.ip_forward=1" : "net.ipv4.ip_forward=0");
	/* Off everywhere: tests set the laptop's to see what doctor says. */
	ADD("net.ipv4.conf.all.rp_filter=0");
	ADD("net.ipv4.conf.default.rp_filter=0");
#undef ADD
	out[n] = NULL;
	return n;
}

bool render_ns_forwards(const struct lab_net *net, int ns)
{
	const char *kv[8];
	int n = render_sysctls(net, ns, kv, (int)ARRAY_SIZE(kv));

	for (int i = 0; i < n; i++)
		if (!strcmp(kv[i], "net.ipv4.ip_forward=1"))
			return true;
	return false;
}

void render_resolv_conf(struct text *t, const struct lab_net *net, int ns)
{
	const struct lab_ns *n = &net->ns[ns];
	char a[16];

	text_printf(t, "# subway lab: %s\n", n->suffix);
	if (n->kind == LAB_NS_POD) {
		const char *pns = lab_pods[n->pod].ns;
		text_printf(t, "search %s.svc." LAB_CLUSTER_DOMAIN " svc." LAB_CLUSTER_DOMAIN " " LAB_CLUSTER_DOMAIN "\n"
			       "nameserver %s\noptions ndots:5\n", pns, ip(LAB_DNS_IP, a));
	} else if (n->kind == LAB_NS_NODE) {
		text_printf(t, "nameserver %s\n", ip(lab_topo_info(net->topo)->node_dns, a));
	} else {
		text_printf(t, "nameserver %s\n", ip(LAB_INTERNET_DNS, a));
	}
}

/* ---- dnsmasq ---- */

void render_svc_fqdn(char *buf, size_t size, const struct lab_service *s)
{
	snprintf(buf, size, "%s.%s.svc." LAB_CLUSTER_DOMAIN, s->name, s->ns);
}

static void dns_records(struct text *t)
{
	char fqdn[128], a[16];

	for (size_t i = 0; i < lab_nservices; i++) {
		const struct lab_service *s = &lab_services[i];
		render_svc_fqdn(fqdn, sizeof(fqdn), s);
		text_printf(t, "host-record=%s,%s\n", fqdn, ip(s->ip, a)); /* A and PTR */
		for (int k = 0; k < s->nports; k++)
			text_printf(t, "srv-host=_%s._%s.%s,%s,%u,0,100\n", s->ports[k].name,
				    proto_kw(s->ports[k].proto), fqdn, fqdn, s->ports[k].port);
	}
	for (size_t i = 0; i < lab_npods; i++) {
		uint32_t pip = lab_pod_ip(&lab_pods[i]);
		text_printf(t, "host-record=%u-%u-%u-%u.%s.pod." LAB_CLUSTER_DOMAIN ",%s\n", pip >> 24,
			    (pip >> 16) & 255, (pip >> 8) & 255, pip & 255, lab_pods[i].ns, ip(pip, a));
	}
	/* An answer too large for UDP, for DNS over TCP: LAB_BIG_TXT_STRINGS
	 * TXT records of 200 bytes, "<i>:" then the letters, cycled. */
	for (int i = 0; i < LAB_BIG_TXT_STRINGS; i++) {
		char s[201];
		int n = snprintf(s, sizeof(s), "%02d:", i);
		for (; n < 200; n++)
			s[n] = (char)('a' + (n + i) % 26);
		s[200] = 0;
		text_printf(t, "txt-record=" LAB_BIG_TXT_NAME ",\"%s\"\n", s);
	}
}

void render_cluster_dns(struct text *t, enum lab_topo topo)
{
	const struct lab_pod *p = lab_pod_by_server(LAB_SRV_CLUSTER_DNS);
	char a[16];

	text_printf(t, "# cluster DNS (kube-dns), authoritative for " LAB_CLUSTER_DOMAIN "\n"
		       "no-resolv\nno-hosts\nbind-interfaces\npid-file=\nlocal-ttl=5\n");
	text_printf(t, "listen-address=%s\n", ip(lab_pod_ip(p), a));
	text_printf(t, "local=/" LAB_CLUSTER_DOMAIN "/\nlocal=/42.10.in-addr.arpa/\nlocal=/43.10.in-addr.arpa/\n");
	text_printf(t, "server=%s\n", ip(lab_topo_info(topo)->node_dns, a));
	dns_records(t);
}

void render_internet_dns(struct text *t)
{
	char a[16];

	text_printf(t, "# the lab's internet: example.com and nothing else\n"
		       "no-resolv\nno-hosts\nbind-interfaces\npid-file=\n");
	text_printf(t, "listen-address=%s\naddress=/#/\n", ip(LAB_INTERNET_DNS, a));
	text_printf(t, "host-record=example.com,www.example.com,%s\n", ip(LAB_EXAMPLE_COM, a));
}

void render_forwarder_dns(struct text *t, uint32_t listen, const char *resolv_file)
{
	char a[16];

	/* Like VirtualBox's NAT DNS proxy: forwards to whatever the laptop's
	 * resolv.conf names, re-read when it changes; no cache. */
	text_printf(t, "# laptop DNS forwarder\nno-hosts\nbind-interfaces\npid-file=\ncache-size=0\n");
	text_printf(t, "listen-address=%s\nresolv-file=%s\n", ip(listen, a), resolv_file);
}

/* ---- nginx ---- */

void render_nginx(struct text *t, const struct nginx_site *s)
{
	char a[16];

	text_printf(t, "worker_processes 1;\nuser nobody nogroup;\npid %s/nginx.pid;\nerror_log %s warn;\n",
		    s->prefix, s->error_log);
	text_printf(t, "events { worker_connections 4096; }\nhttp {\n\taccess_log off;\n"
		       "\tdefault_type application/octet-stream;\n\tsendfile on;\n\ttcp_nopush on;\n"
		       "\tkeepalive_requests 100000;\n");
	text_printf(t, "\tclient_body_temp_path %s/tmp/body;\n\tproxy_temp_path %s/tmp/proxy;\n"
		       "\tfastcgi_temp_path %s/tmp/fastcgi;\n\tuwsgi_temp_path %s/tmp/uwsgi;\n"
		       "\tscgi_temp_path %s/tmp/scgi;\n", s->prefix, s->prefix, s->prefix, s->prefix, s->prefix);
	if (s->listen)
		text_printf(t, "\tserver {\n\t\tlisten %s:80 backlog=4096;\n", ip(s->listen, a));
	else
		text_printf(t, "\tserver {\n\t\tlisten 80 backlog=4096;\n");
	text_printf(t, "\t\tadd_header X-Pod %s always;\n", s->pod);
	text_printf(t, "\t\tlocation = / {\n\t\t\tdefault_type text/plain;\n\t\t\treturn 200 \"%s\\n\";\n\t\t}\n",
		    s->body);
	text_printf(t, "\t\tlocation = /healthz {\n\t\t\tdefault_type text/plain;\n\t\t\treturn 200 \"ok\\n\";\n\t\t}\n");
	if (s->www)
		text_printf(t, "\t\tlocation = /big {\n\t\t\troot %s;\n\t\t}\n", s->www);
	text_printf(t, "\t}\n}\n");
}

/* ---- docker-registry ---- */

void render_registry(struct text *t, const char *root, int port)
{
	text_printf(t, "# the lab's registry, like the seed's multi:5000 (plain HTTP)\nversion: 0.1\n"
		       "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
		       "storage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\n"
		       "http:\n  addr: 0.0.0.0:%d\n", root, port);
}
