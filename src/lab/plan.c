#include "lab/plan.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

/* ---- The cluster: the same in every topology. ---- */

const struct lab_node lab_nodes[LAB_NODES] = {
	{ "server", 0 },
	{ "agent1", 1 },
	{ "agent2", 2 },
};

/* Pod IPs are 10.42.<node>.<host>; web's two replicas sit on different nodes. */
const struct lab_pod lab_pods[] = {
	{ "kube-dns-0", "kube-system", "kube-dns", 0, 2, LAB_SRV_CLUSTER_DNS },
	{ "manager-0", "subway", "manager", 0, 3, LAB_SRV_MANAGER },
	{ "web-0", "default", "web", 1, 2, LAB_SRV_HTTP },
	{ "echo-0", "default", "echo", 1, 3, LAB_SRV_TCP_ECHO },
	{ "web-1", "default", "web", 2, 2, LAB_SRV_HTTP },
	{ "udp-echo-0", "default", "udp-echo", 2, 3, LAB_SRV_UDP_ECHO },
	{ "iperf-0", "default", "iperf", 2, 4, LAB_SRV_IPERF },
	/* another service's pod: tests call web from it, by name and ClusterIP */
	{ "client", "default", "client", 1, 4, LAB_SRV_NONE },
};
const size_t lab_npods = ARRAY_SIZE(lab_pods);

const struct lab_service lab_services[] = {
	{ "kube-system", "kube-dns", "kube-dns", LAB_IP(10, 43, 0, 10), 2,
	  { { "dns", LAB_UDP, 53, 53, 0 }, { "dns-tcp", LAB_TCP, 53, 53, 0 } } },
	{ "default", "web", "web", LAB_IP(10, 43, 0, 20), 1, { { "http", LAB_TCP, 80, 80, 30080 } } },
	{ "default", "echo", "echo", LAB_IP(10, 43, 0, 30), 1, { { "echo", LAB_TCP, 7, 7, 0 } } },
	{ "default", "udp-echo", "udp-echo", LAB_IP(10, 43, 0, 31), 1, { { "echo", LAB_UDP, 7, 7, 0 } } },
	{ "default", "iperf", "iperf", LAB_IP(10, 43, 0, 40), 2,
	  { { "iperf", LAB_TCP, 5201, 5201, 0 }, { "iperf-udp", LAB_UDP, 5201, 5201, 0 } } },
	{ "subway", "manager", "manager", LAB_IP(10, 43, 0, 50), 1,
	  { { "https", LAB_TCP, 443, LAB_MANAGER_PORT, LAB_MANAGER_NODE_PORT } } },
};
const size_t lab_nservices = ARRAY_SIZE(lab_services);

/* ---- The topologies. ---- */

static const struct lab_topo_info topos[LAB_TOPO_COUNT] = {
	[LAB_TOPO_HOST_ONLY] = {
		.name = "host-only",
		.summary = "nodes on a laptop bridge (like vboxnet0); the laptop routes and resolves for them",
		.node_ip = { LAB_IP(192, 168, 56, 10), LAB_IP(192, 168, 56, 11), LAB_IP(192, 168, 56, 12) },
		.node_len = 24, .node_gw = LAB_IP(192, 168, 56, 1), .node_dns = LAB_IP(192, 168, 56, 1),
		.uplink_ns = "laptop", .uplink_br = "vboxnet0",
		.laptop_forwards = true, .dns_forwarder = true,
		.laptop_ip = { LAB_IP(192, 168, 56, 1), LAB_IP(192, 168, 56, 2) }, .laptop_gw = LAB_IP(192, 168, 56, 1),
	},
	[LAB_TOPO_BRIDGED] = {
		.name = "bridged",
		.summary = "laptop and nodes on a router's LAN; the router never sends cluster CIDRs to the laptop",
		.node_ip = { LAB_IP(192, 168, 1, 110), LAB_IP(192, 168, 1, 111), LAB_IP(192, 168, 1, 112) },
		.node_len = 24, .node_gw = LAB_IP(192, 168, 1, 1), .node_dns = LAB_INTERNET_DNS,
		.uplink_ns = "router", .uplink_br = "lan0", .router = true,
		.laptop_ip = { LAB_IP(192, 168, 1, 100), LAB_IP(192, 168, 1, 101) }, .laptop_gw = LAB_IP(192, 168, 1, 1),
	},
	[LAB_TOPO_CLOUD] = {
		.name = "cloud",
		.summary = "nodes behind a router; the laptop reaches node ports only, the cluster never the laptop",
		.node_ip = { LAB_IP(10, 10, 0, 10), LAB_IP(10, 10, 0, 11), LAB_IP(10, 10, 0, 12) },
		.node_len = 24, .node_gw = LAB_IP(10, 10, 0, 1), .node_dns = LAB_INTERNET_DNS,
		.uplink_ns = "router", .uplink_br = "vpc0", .router = true, .node_ports_only = true,
		.laptop_ip = { LAB_IP(192, 168, 1, 100), LAB_IP(192, 168, 1, 101) }, .laptop_gw = LAB_IP(192, 168, 1, 1),
	},
	[LAB_TOPO_NAT] = {
		.name = "nat",
		.summary = "as host-only, but each node's default route and DNS go through its own slirp4netns",
		.node_ip = { LAB_IP(192, 168, 56, 10), LAB_IP(192, 168, 56, 11), LAB_IP(192, 168, 56, 12) },
		.node_len = 24, .node_gw = 0, .node_dns = LAB_SLIRP_DNS,
		.uplink_ns = "laptop", .uplink_br = "vboxnet0",
		.laptop_forwards = true, .slirp = true,
		.laptop_ip = { LAB_IP(192, 168, 56, 1), LAB_IP(192, 168, 56, 2) }, .laptop_gw = LAB_IP(192, 168, 56, 1),
	},
};

/* The machinery around the cluster: laptop, router, internet. */
struct infra_iface {
	const char *ns, *name, *master;
	uint32_t addr;
	uint8_t len;
	bool bridge;
};
struct infra_veth {
	const char *ns_a, *if_a, *ns_b, *if_b;
};
struct infra_route {
	const char *ns;
	uint32_t dst;
	uint8_t len;
	uint32_t via;
};
struct infra {
	const char *ns[4];
	struct infra_iface ifaces[10];
	struct infra_veth veths[3];
	struct infra_route routes[3];
	const char *laptop_net_ns, *laptop_net_br; /* where a second laptop plugs in */
};

#define INTERNET_IFACES                                                  \
	{ "internet", "eth0", NULL, LAB_IP(198, 51, 100, 1), 24, false }, \
	{ "internet", "lo", NULL, LAB_INTERNET_DNS, 32, false },          \
	{ "internet", "lo", NULL, LAB_EXAMPLE_COM, 32, false }

static const struct infra infra_laptop = {
	.ns = { "laptop", "internet" },
	.ifaces = {
		{ "laptop", "vboxnet0", NULL, LAB_IP(192, 168, 56, 1), 24, true },
		{ "laptop", "wan0", NULL, LAB_IP(198, 51, 100, 2), 24, false },
		INTERNET_IFACES,
	},
	.veths = { { "laptop", "wan0", "internet", "eth0" } },
	.routes = { { "laptop", 0, 0, LAB_IP(198, 51, 100, 1) } },
	.laptop_net_ns = "laptop", .laptop_net_br = "vboxnet0",
};

static const struct infra infra_bridged = {
	.ns = { "router", "laptop", "internet" },
	.ifaces = {
		{ "router", "lan0", NULL, LAB_IP(192, 168, 1, 1), 24, true },
		{ "router", "wan0", NULL, LAB_IP(198, 51, 100, 2), 24, false },
		{ "router", "lan-laptop", "lan0", 0, 0, false },
		{ "laptop", "eth0", NULL, LAB_IP(192, 168, 1, 100), 24, false },
		INTERNET_IFACES,
	},
	.veths = { { "router", "lan-laptop", "laptop", "eth0" }, { "router", "wan0", "internet", "eth0" } },
	.routes = { { "router", 0, 0, LAB_IP(198, 51, 100, 1) }, { "laptop", 0, 0, LAB_IP(192, 168, 1, 1) } },
	.laptop_net_ns = "router", .laptop_net_br = "lan0",
};

static const struct infra infra_cloud = {
	.ns = { "router", "laptop", "internet" },
	.ifaces = {
		{ "router", "lan0", NULL, LAB_IP(192, 168, 1, 1), 24, true },
		{ "router", "vpc0", NULL, LAB_IP(10, 10, 0, 1), 24, true },
		{ "router", "wan0", NULL, LAB_IP(198, 51, 100, 2), 24, false },
		{ "router", "lan-laptop", "lan0", 0, 0, false },
		{ "laptop", "eth0", NULL, LAB_IP(192, 168, 1, 100), 24, false },
		INTERNET_IFACES,
	},
	.veths = { { "router", "lan-laptop", "laptop", "eth0" }, { "router", "wan0", "internet", "eth0" } },
	.routes = { { "router", 0, 0, LAB_IP(198, 51, 100, 1) }, { "laptop", 0, 0, LAB_IP(192, 168, 1, 1) } },
	.laptop_net_ns = "router", .laptop_net_br = "lan0",
};

static const struct infra *const infras[LAB_TOPO_COUNT] = {
	[LAB_TOPO_HOST_ONLY] = &infra_laptop,
	[LAB_TOPO_BRIDGED] = &infra_bridged,
	[LAB_TOPO_CLOUD] = &infra_cloud,
	[LAB_TOPO_NAT] = &infra_laptop,
};

const char *const lab_all_suffixes[] = {
	"laptop", "router", "internet", "server", "agent1", "agent2",
	"kube-dns-0", "manager-0", "web-0", "echo-0", "web-1", "udp-echo-0", "iperf-0", "client", "laptop2", NULL,
};

const char *lab_laptop_suffix(int i)
{
	return i == 2 ? "laptop2" : "laptop";
}

const struct lab_topo_info *lab_topo_info(enum lab_topo t)
{
	return (unsigned)t < LAB_TOPO_COUNT ? &topos[t] : NULL;
}

const char *lab_topo_name(enum lab_topo t)
{
	return (unsigned)t < LAB_TOPO_COUNT ? topos[t].name : "?";
}

int lab_topo_parse(const char *s, enum lab_topo *out)
{
	for (int t = 0; t < LAB_TOPO_COUNT; t++) {
		if (s && !strcmp(s, topos[t].name)) {
			*out = (enum lab_topo)t;
			return 0;
		}
	}
	return -EINVAL;
}

int lab_name_check(const char *name, char *err, size_t errlen)
{
	size_t n = name ? strlen(name) : 0;
	char cut[STR_CUT_SIZE];

	if (n == 0 || n > LAB_NAME_MAX) {
		snprintf(err, errlen, "bad lab name '%s': 1 to %d characters",
			 name ? str_cut(name, n, cut, sizeof(cut)) : "", LAB_NAME_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && i > 0);
		if (!ok) {
			snprintf(err, errlen, "bad lab name '%s': use a-z, 0-9 and '-' (not first)",
				 str_cut(name, n, cut, sizeof(cut)));
			return -EINVAL;
		}
	}
	if (name[n - 1] == '-') {
		snprintf(err, errlen, "bad lab name '%s': must not end with '-'", name);
		return -EINVAL;
	}
	return 0;
}

uint32_t lab_node_pod_net(uint8_t node)
{
	return LAB_POD_NET | ((uint32_t)lab_nodes[node].index << 8);
}

uint32_t lab_node_cni_ip(uint8_t node)
{
	return lab_node_pod_net(node) | 1;
}

uint32_t lab_pod_ip(const struct lab_pod *p)
{
	return lab_node_pod_net(p->node) | p->host;
}

const struct lab_pod *lab_pod_find(const char *name)
{
	for (size_t i = 0; i < lab_npods; i++)
		if (!strcmp(lab_pods[i].name, name))
			return &lab_pods[i];
	return NULL;
}

const struct lab_pod *lab_pod_by_server(enum lab_server s)
{
	for (size_t i = 0; i < lab_npods; i++)
		if (lab_pods[i].server == s)
			return &lab_pods[i];
	return NULL;
}

const struct lab_service *lab_service_find(const char *ns, const char *name)
{
	for (size_t i = 0; i < lab_nservices; i++)
		if (!strcmp(lab_services[i].ns, ns) && !strcmp(lab_services[i].name, name))
			return &lab_services[i];
	return NULL;
}

bool lab_pod_selected(const struct lab_service *s, const struct lab_pod *p)
{
	return !strcmp(s->ns, p->ns) && !strcmp(s->app, p->app);
}

const char *lab_proto_name(enum lab_proto p)
{
	return p == LAB_UDP ? "UDP" : "TCP";
}

int lab_ns_name(char *buf, size_t size, const char *lab, const char *suffix)
{
	int n = snprintf(buf, size, "%s-%s", lab, suffix);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* ---- Building the flat tables. ---- */

int lab_net_ns_find(const struct lab_net *net, const char *suffix)
{
	for (int i = 0; i < net->nns; i++)
		if (!strcmp(net->ns[i].suffix, suffix))
			return i;
	return -1;
}

int lab_net_node_ns(const struct lab_net *net, int node)
{
	for (int i = 0; i < net->nns; i++)
		if (net->ns[i].kind == LAB_NS_NODE && net->ns[i].node == node)
			return i;
	return -1;
}

int lab_net_pod_ns(const struct lab_net *net, int pod)
{
	for (int i = 0; i < net->nns; i++)
		if (net->ns[i].kind == LAB_NS_POD && net->ns[i].pod == pod)
			return i;
	return -1;
}

static int net_add_ns(struct lab_net *net, const char *suffix, enum lab_ns_kind kind, int node, int pod)
{
	struct lab_ns *n;

	if (net->nns == LAB_NET_NS)
		return -ENOSPC;
	n = &net->ns[net->nns++];
	snprintf(n->suffix, sizeof(n->suffix), "%s", suffix);
	n->kind = kind;
	n->node = (int8_t)node;
	n->pod = (int8_t)pod;
	n->laptop = kind == LAB_NS_LAPTOP ? 1 : 0;
	return 0;
}

static int net_add_iface(struct lab_net *net, int ns, const char *name, const char *master,
			 uint32_t addr, uint8_t len, bool bridge)
{
	struct lab_iface *f;

	if (ns < 0 || net->nifaces == LAB_NET_IFACES || strlen(name) > LAB_IFNAME_MAX)
		return -ENOSPC;
	f = &net->ifaces[net->nifaces++];
	f->ns = (uint8_t)ns;
	snprintf(f->name, sizeof(f->name), "%s", name);
	snprintf(f->master, sizeof(f->master), "%s", master ? master : "");
	f->addr = addr;
	f->len = len;
	f->bridge = bridge;
	f->hairpin = false;
	return 0;
}

static int net_add_veth(struct lab_net *net, int ns_a, const char *if_a, int ns_b, const char *if_b)
{
	struct lab_veth *v;

	if (ns_a < 0 || ns_b < 0 || ns_a >= ns_b || net->nveths == LAB_NET_VETHS ||
	    strlen(if_a) > LAB_IFNAME_MAX || strlen(if_b) > LAB_IFNAME_MAX)
		return -ENOSPC;
	v = &net->veths[net->nveths++];
	v->ns_a = (uint8_t)ns_a;
	v->ns_b = (uint8_t)ns_b;
	snprintf(v->if_a, sizeof(v->if_a), "%s", if_a);
	snprintf(v->if_b, sizeof(v->if_b), "%s", if_b);
	return 0;
}

static int net_add_route(struct lab_net *net, int ns, uint32_t dst, uint8_t len, uint32_t via)
{
	struct lab_route *r;

	if (ns < 0 || net->nroutes == LAB_NET_ROUTES)
		return -ENOSPC;
	r = &net->routes[net->nroutes++];
	r->ns = (uint8_t)ns;
	r->dst = dst;
	r->len = len;
	r->via = via;
	return 0;
}

static int net_build_infra(struct lab_net *net, const struct infra *in)
{
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(in->ns) && in->ns[i] && r == 0; i++) {
		enum lab_ns_kind k = !strcmp(in->ns[i], "laptop") ? LAB_NS_LAPTOP :
				     !strcmp(in->ns[i], "router") ? LAB_NS_ROUTER : LAB_NS_INTERNET;
		r = net_add_ns(net, in->ns[i], k, -1, -1);
	}
	for (size_t i = 0; i < ARRAY_SIZE(in->ifaces) && in->ifaces[i].ns && r == 0; i++) {
		const struct infra_iface *f = &in->ifaces[i];
		r = net_add_iface(net, lab_net_ns_find(net, f->ns), f->name, f->master, f->addr, f->len, f->bridge);
	}
	for (size_t i = 0; i < ARRAY_SIZE(in->veths) && in->veths[i].ns_a && r == 0; i++) {
		const struct infra_veth *v = &in->veths[i];
		r = net_add_veth(net, lab_net_ns_find(net, v->ns_a), v->if_a, lab_net_ns_find(net, v->ns_b), v->if_b);
	}
	for (size_t i = 0; i < ARRAY_SIZE(in->routes) && in->routes[i].ns && r == 0; i++) {
		const struct infra_route *rt = &in->routes[i];
		r = net_add_route(net, lab_net_ns_find(net, rt->ns), rt->dst, rt->len, rt->via);
	}
	return r;
}

/* A second laptop: eth0 on the first one's network (another port of the
 * host-only bridge, or of the router's LAN), its default route there. */
static int net_build_laptop2(struct lab_net *net, const struct infra *in, const struct lab_topo_info *ti)
{
	int up = lab_net_ns_find(net, in->laptop_net_ns), ns, r;
	const char *port = in->laptop_net_ns && !strcmp(in->laptop_net_ns, "router") ? "lan-laptop2" : "l-laptop2";

	r = net_add_ns(net, "laptop2", LAB_NS_LAPTOP, -1, -1);
	ns = net->nns - 1;
	net->ns[ns].laptop = 2;
	if (r == 0)
		r = net_add_veth(net, up, port, ns, "eth0");
	if (r == 0)
		r = net_add_iface(net, up, port, in->laptop_net_br, 0, 0, false);
	if (r == 0)
		r = net_add_iface(net, ns, "eth0", NULL, ti->laptop_ip[1], 24, false);
	if (r == 0)
		r = net_add_route(net, ns, 0, 0, ti->laptop_gw);
	return r;
}

/* A node: eth0 on the uplink bridge, cni0, routes to the other nodes' pods. */
static int net_build_node(struct lab_net *net, const struct lab_topo_info *ti, int node)
{
	int up = lab_net_ns_find(net, ti->uplink_ns);
	char port[LAB_IFNAME_MAX + 1];
	int ns, r;

	snprintf(port, sizeof(port), "n-%s", lab_nodes[node].name);
	r = net_add_ns(net, lab_nodes[node].name, LAB_NS_NODE, node, -1);
	ns = net->nns - 1;
	if (r == 0)
		r = net_add_veth(net, up, port, ns, "eth0");
	if (r == 0)
		r = net_add_iface(net, up, port, ti->uplink_br, 0, 0, false);
	if (r == 0)
		r = net_add_iface(net, ns, "eth0", NULL, ti->node_ip[node], ti->node_len, false);
	if (r == 0)
		r = net_add_iface(net, ns, "cni0", NULL, lab_node_cni_ip((uint8_t)node), 24, true);
	if (r == 0 && ti->node_gw)
		r = net_add_route(net, ns, 0, 0, ti->node_gw);
	for (int j = 0; j < LAB_NODES && r == 0; j++)
		if (j != node)
			r = net_add_route(net, ns, lab_node_pod_net((uint8_t)j), 24, ti->node_ip[j]);
	return r;
}

/* A pod: eth0 in its namespace, "v-<pod>" on its node's cni0. */
static int net_build_pod(struct lab_net *net, int pod)
{
	const struct lab_pod *p = &lab_pods[pod];
	int node_ns = lab_net_node_ns(net, p->node);
	char port[LAB_IFNAME_MAX + 1];
	int ns, r;

	if (snprintf(port, sizeof(port), "v-%s", p->name) >= (int)sizeof(port))
		return -ENOSPC;
	r = net_add_ns(net, p->name, LAB_NS_POD, p->node, pod);
	ns = net->nns - 1;
	if (r == 0)
		r = net_add_veth(net, node_ns, port, ns, "eth0");
	if (r == 0)
		r = net_add_iface(net, node_ns, port, "cni0", 0, 0, false);
	if (r == 0) {
		net->ifaces[net->nifaces - 1].hairpin = true;
		r = net_add_iface(net, ns, "eth0", NULL, lab_pod_ip(p), 24, false);
	}
	if (r == 0)
		r = net_add_route(net, ns, 0, 0, lab_node_cni_ip(p->node));
	return r;
}

int lab_net_build(enum lab_topo t, int laptops, struct lab_net *net)
{
	const struct lab_topo_info *ti = lab_topo_info(t);
	int r;

	if (!ti || laptops < 1 || laptops > LAB_LAPTOPS_MAX)
		return -EINVAL;
	memset(net, 0, sizeof(*net));
	net->topo = t;
	net->laptops = laptops;
	r = net_build_infra(net, infras[t]);
	if (r == 0 && laptops == 2)
		r = net_build_laptop2(net, infras[t], ti);
	for (int i = 0; i < LAB_NODES && r == 0; i++)
		r = net_build_node(net, ti, i);
	for (size_t i = 0; i < lab_npods && r == 0; i++)
		r = net_build_pod(net, (int)i);
	return r;
}
