/* The lab's address plan: nodes, pods, services and, per topology, the
 * namespaces, links, addresses and routes that make the network.  Pure
 * tables and functions, no I/O; docs/lab.md draws the same plan. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LAB_NAME_MAX 20
#define LAB_IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define LAB_NS_MAX 40     /* "<lab>-<suffix>" + NUL */
#define LAB_NODES 3

#define LAB_IP(a, b, c, d) \
	(((uint32_t)(a) << 24) | ((uint32_t)(b) << 16) | ((uint32_t)(c) << 8) | (uint32_t)(d))

#define LAB_STATE_ROOT "/run/subway-lab"
#define LAB_NETNS_ETC "/etc/netns"
#define LAB_CLUSTER_DOMAIN "cluster.local"
/* An answer too large for UDP: LAB_BIG_TXT_STRINGS TXT records of 200 bytes. */
#define LAB_BIG_TXT_NAME "big.default.svc." LAB_CLUSTER_DOMAIN
#define LAB_BIG_TXT_STRINGS 20
#define LAB_POD_NET LAB_IP(10, 42, 0, 0)
#define LAB_POD_LEN 16
#define LAB_SVC_NET LAB_IP(10, 43, 0, 0)
#define LAB_SVC_LEN 16
#define LAB_DNS_IP LAB_IP(10, 43, 0, 10)
#define LAB_INTERNET_DNS LAB_IP(203, 0, 113, 53)
#define LAB_EXAMPLE_COM LAB_IP(203, 0, 113, 80)
#define LAB_SLIRP_NODE_IP LAB_IP(10, 0, 2, 100)
#define LAB_SLIRP_GW LAB_IP(10, 0, 2, 2)
#define LAB_SLIRP_DNS LAB_IP(10, 0, 2, 3)
#define LAB_MANAGER_PORT 8443
#define LAB_MANAGER_NODE_PORT 30443
#define LAB_LAPTOPS_MAX 2 /* up --laptops */
#define LAB_BIG_SIZE ((uint64_t)64 << 20)

enum lab_topo { LAB_TOPO_HOST_ONLY, LAB_TOPO_BRIDGED, LAB_TOPO_CLOUD, LAB_TOPO_NAT, LAB_TOPO_COUNT };

/* What a pod runs (LAB_SRV_NONE: nothing; tests run clients in it). */
enum lab_server { LAB_SRV_CLUSTER_DNS, LAB_SRV_MANAGER, LAB_SRV_HTTP, LAB_SRV_TCP_ECHO,
		  LAB_SRV_UDP_ECHO, LAB_SRV_IPERF, LAB_SRV_NONE };

enum lab_proto { LAB_TCP = 6, LAB_UDP = 17 };

struct lab_node {
	const char *name;
	uint8_t index; /* owns 10.42.<index>.0/24, cni0 at 10.42.<index>.1 */
};

struct lab_pod {
	const char *name, *ns, *app;
	uint8_t node; /* index into lab_nodes */
	uint8_t host; /* pod IP 10.42.<node>.<host> */
	enum lab_server server;
};

struct lab_port {
	const char *name;
	enum lab_proto proto;
	uint16_t port, target, node_port; /* node_port 0: none */
};

#define LAB_SVC_PORTS 2
struct lab_service {
	const char *ns, *name, *app; /* endpoints: pods of ns with this app */
	uint32_t ip;
	uint8_t nports;
	struct lab_port ports[LAB_SVC_PORTS];
};

extern const struct lab_node lab_nodes[LAB_NODES];
extern const struct lab_pod lab_pods[];
extern const size_t lab_npods;
extern const struct lab_service lab_services[];
extern const size_t lab_nservices;

/* Facts of one topology. */
struct lab_topo_info {
	const char *name, *summary;
	uint32_t node_ip[LAB_NODES];
	uint8_t node_len;      /* prefix length of the nodes' network */
	uint32_t node_gw;      /* nodes' default route; 0: slirp4netns sets it */
	uint32_t node_dns;     /* nodes' upstream resolver (cluster DNS forwards there) */
	const char *uplink_ns; /* namespace suffix owning the nodes' bridge */
	const char *uplink_br; /* that bridge */
	bool router;           /* has a <lab>-router namespace */
	bool laptop_forwards;  /* ip_forward=1 in the laptop */
	bool dns_forwarder;    /* laptop runs a DNS forwarder on node_dns:53 */
	bool slirp;            /* each node's uplink is a slirp4netns on the laptop */
	bool node_ports_only;  /* router lets the laptop reach node ports only */
	uint32_t laptop_ip[LAB_LAPTOPS_MAX]; /* each laptop's address on the network it shares */
	uint32_t laptop_gw;    /* a second laptop's default route */
};

const struct lab_topo_info *lab_topo_info(enum lab_topo t);
int lab_topo_parse(const char *s, enum lab_topo *out); /* 0 or -EINVAL */
const char *lab_topo_name(enum lab_topo t);

/* 0, or -EINVAL with a one-line reason in err. */
int lab_name_check(const char *name, char *err, size_t errlen);

uint32_t lab_pod_ip(const struct lab_pod *p);
uint32_t lab_node_pod_net(uint8_t node); /* 10.42.<node>.0 */
uint32_t lab_node_cni_ip(uint8_t node);  /* 10.42.<node>.1 */
const struct lab_pod *lab_pod_find(const char *name);
const struct lab_pod *lab_pod_by_server(enum lab_server s);
const struct lab_service *lab_service_find(const char *ns, const char *name);
bool lab_pod_selected(const struct lab_service *s, const struct lab_pod *p);
const char *lab_proto_name(enum lab_proto p); /* "TCP" / "UDP" */

/* ---- The network of one topology, as flat tables. ---- */

enum lab_ns_kind { LAB_NS_LAPTOP, LAB_NS_ROUTER, LAB_NS_INTERNET, LAB_NS_NODE, LAB_NS_POD };

struct lab_ns {
	char suffix[16]; /* namespace is "<lab>-<suffix>" */
	enum lab_ns_kind kind;
	int8_t node, pod; /* index into lab_nodes / lab_pods, or -1 */
	uint8_t laptop;   /* LAB_NS_LAPTOP: 1, or 2 for the second ("laptop2") */
};

/* An interface to configure in a namespace; a bridge is created there,
 * a veth end by its lab_veth. */
struct lab_iface {
	uint8_t ns;
	char name[LAB_IFNAME_MAX + 1];
	char master[LAB_IFNAME_MAX + 1]; /* "" or the bridge it joins */
	bool bridge, hairpin;
	uint32_t addr; /* 0: none */
	uint8_t len;
};

/* A veth pair, created from ns_a (which comes before ns_b). */
struct lab_veth {
	uint8_t ns_a, ns_b;
	char if_a[LAB_IFNAME_MAX + 1], if_b[LAB_IFNAME_MAX + 1];
};

struct lab_route {
	uint8_t ns;
	uint32_t dst; /* dst 0 len 0: default */
	uint8_t len;
	uint32_t via;
};

#define LAB_NET_NS 16
#define LAB_NET_IFACES 48
#define LAB_NET_VETHS 16
#define LAB_NET_ROUTES 32
struct lab_net {
	enum lab_topo topo;
	int laptops;              /* 1 or 2 */
	int nns, nifaces, nveths, nroutes;
	struct lab_ns ns[LAB_NET_NS]; /* creation order */
	struct lab_iface ifaces[LAB_NET_IFACES];
	struct lab_veth veths[LAB_NET_VETHS];
	struct lab_route routes[LAB_NET_ROUTES];
};

/* Fills net for topology t with 1 or 2 laptops.  0, -EINVAL, or -ENOSPC
 * if a table overflows (a bug). */
int lab_net_build(enum lab_topo t, int laptops, struct lab_net *net);
/* The namespace suffix of laptop i (1: "laptop", 2: "laptop2"). */
const char *lab_laptop_suffix(int i);
int lab_net_ns_find(const struct lab_net *net, const char *suffix); /* index or -1 */
int lab_net_node_ns(const struct lab_net *net, int node);           /* index or -1 */
int lab_net_pod_ns(const struct lab_net *net, int pod);             /* index or -1 */

/* Every namespace suffix any topology uses, for cleaning up; NULL-terminated. */
extern const char *const lab_all_suffixes[];

/* "<lab>-<suffix>" into buf (LAB_NS_MAX); 0 or -ENAMETOOLONG. */
int lab_ns_name(char *buf, size_t size, const char *lab, const char *suffix);
