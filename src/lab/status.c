/* `lab status`: the plan of the lab's topology plus what is alive.  The
 * JSON keys are a contract, documented in docs/lab.md. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "common/util.h"
#include "lab/kubelet.h"
#include "lab/lab.h"
#include "lab/render.h"
#include "net/tls.h"
#include "proto/auth.h"

struct live {
	const char *state; /* up, degraded, partial, down */
	bool ready;
	long long started;
	double up_seconds;
	char sha[65];
	int nprocs;
	struct lab_proc procs[LAB_PROCS_MAX];
	pid_t pids[LAB_PROCS_MAX];
	bool running[LAB_PROCS_MAX];
	bool has_manager; /* the kubelet runs the manager's pod (not --no-manager) */
	struct kubelet_state kst;
};

static bool pid_running(pid_t pid)
{
	char path[64], buf[256];
	const char *p;

	if (pid <= 0 || (kill(pid, 0) < 0 && errno == ESRCH))
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (file_read_small(path, buf, sizeof(buf)) <= 0)
		return false;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

static void live_read_ready(const struct lab *lab, struct live *lv)
{
	char buf[256], *p;

	lv->ready = lab_state_ready_info(lab, buf, sizeof(buf)) == 0;
	if (!lv->ready)
		return;
	if ((p = strstr(buf, "started=")))
		lv->started = strtoll(p + 8, NULL, 10);
	if ((p = strstr(buf, "up_seconds=")))
		lv->up_seconds = strtod(p + 11, NULL);
}

/* The manager's pod runs nothing in a lab brought up with --no-manager. */
static bool proc_optional(const struct live *lv, const struct lab_proc *p)
{
	return !lv->has_manager && p->kind == PROC_POD && lab_pods[p->index].server == LAB_SRV_MANAGER;
}

static void live_collect(const struct lab *lab, struct live *lv)
{
	char path[128], ns[LAB_NS_MAX];
	bool all = true, any = lab_state_exists(lab->name);

	memset(lv, 0, sizeof(*lv));
	live_read_ready(lab, lv);
	lab_path(lab, path, sizeof(path), "www/big.sha256");
	if (file_read_small(path, lv->sha, sizeof(lv->sha)) != 64)
		lv->sha[0] = 0;
	for (int i = 0; i < lab->net.nns; i++) {
		lab_nsname(lab, i, ns);
		bool e = netns_exists(ns) && !lab_ns_claimed_elsewhere(lab->name, ns);
		all &= e;
		any |= e;
	}
	lv->has_manager = kubelet_state_read(lab, &lv->kst) == 0;
	lv->nprocs = procs_plan(lab, lv->procs, LAB_PROCS_MAX);
	for (int i = 0; i < lv->nprocs; i++) {
		lv->pids[i] = lab_pid_read(lab, lv->procs[i].name);
		lv->running[i] = pid_running(lv->pids[i]);
		all &= lv->running[i] || proc_optional(lv, &lv->procs[i]);
	}
	lv->state = lv->ready ? (all ? "up" : "degraded") : any ? "partial" : "down";
}

static int live_proc(const struct live *lv, const char *name)
{
	for (int i = 0; i < lv->nprocs; i++)
		if (!strcmp(lv->procs[i].name, name))
			return i;
	return -1;
}

static const char *ns_role(enum lab_ns_kind k)
{
	static const char *const names[] = { "laptop", "router", "internet", "node", "pod" };
	return names[k];
}

/* ---- JSON ---- */

static void json_addrs(struct json *j, const struct lab *lab, int ns)
{
	char a[20];

	json_arr_begin(j, "addresses");
	for (int i = 0; i < lab->net.nifaces; i++) {
		const struct lab_iface *f = &lab->net.ifaces[i];
		struct cidr4 c = { f->addr, f->len };
		if (f->ns != ns || !f->addr)
			continue;
		json_obj_begin(j, NULL);
		json_str(j, "interface", f->name);
		json_str(j, "address", cidr4_str(&c, a));
		json_obj_end(j);
	}
	json_arr_end(j);
}

/* What the laptop's namespace says (the plan, when it is gone). */
static bool laptop_forwards(const struct lab *lab, const char *ns, const struct lab_topo_info *ti)
{
	char v[8];

	(void)lab;
	return netns_sysctl(ns, "net.ipv4.ip_forward", v, sizeof(v)) == 0 ? v[0] == '1' : ti->laptop_forwards;
}

static void json_laptop(struct json *j, const struct lab *lab)
{
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	int ns = lab_net_ns_find(&lab->net, "laptop");
	char name[LAB_NS_MAX], path[96], a[16], fwd[32];

	lab_nsname(lab, ns, name);
	json_obj_begin(j, "laptop");
	json_str(j, "namespace", name);
	json_addrs(j, lab, ns);
	json_str(j, "nameserver", ip4_str(LAB_INTERNET_DNS, a));
	snprintf(path, sizeof(path), LAB_NETNS_ETC "/%s/resolv.conf", name);
	json_str(j, "resolv_conf", path);
	json_bool(j, "ip_forward", laptop_forwards(lab, name, ti));
	snprintf(fwd, sizeof(fwd), "%s:53", ip4_str(ti->node_dns, a));
	json_str(j, "dns_forwarder", ti->dns_forwarder ? fwd : NULL);
	json_obj_end(j);
}

static void json_infra(struct json *j, const struct lab *lab)
{
	int ns = lab_net_ns_find(&lab->net, "router");
	char name[LAB_NS_MAX], a[16];

	if (ns >= 0) {
		lab_nsname(lab, ns, name);
		json_obj_begin(j, "router");
		json_str(j, "namespace", name);
		json_addrs(j, lab, ns);
		json_obj_end(j);
	} else {
		json_null(j, "router");
	}
	ns = lab_net_ns_find(&lab->net, "internet");
	lab_nsname(lab, ns, name);
	json_obj_begin(j, "internet");
	json_str(j, "namespace", name);
	json_str(j, "resolver", ip4_str(LAB_INTERNET_DNS, a));
	json_str(j, "example_com", ip4_str(LAB_EXAMPLE_COM, a));
	json_obj_end(j);
}

static void json_nodes(struct json *j, const struct lab *lab)
{
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	char name[LAB_NS_MAX], a[16], c[20];

	json_arr_begin(j, "nodes");
	for (int i = 0; i < LAB_NODES; i++) {
		struct cidr4 pc = { lab_node_pod_net((uint8_t)i), 24 };
		lab_ns_name(name, sizeof(name), lab->name, lab_nodes[i].name);
		json_obj_begin(j, NULL);
		json_str(j, "name", lab_nodes[i].name);
		json_str(j, "namespace", name);
		json_str(j, "ip", ip4_str(ti->node_ip[i], a));
		json_str(j, "pod_cidr", cidr4_str(&pc, c));
		json_str(j, "cni0", ip4_str(lab_node_cni_ip((uint8_t)i), a));
		json_str(j, "gateway", ip4_str(ti->node_gw ? ti->node_gw : LAB_SLIRP_GW, a));
		json_str(j, "upstream_dns", ip4_str(ti->node_dns, a));
		json_str(j, "slirp_ip", ti->slirp ? ip4_str(LAB_SLIRP_NODE_IP, a) : NULL);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void json_service(struct json *j, const struct lab_service *s)
{
	char a[16], fqdn[128];

	json_obj_begin(j, NULL);
	json_str(j, "namespace", s->ns);
	json_str(j, "name", s->name);
	json_str(j, "cluster_ip", ip4_str(s->ip, a));
	render_svc_fqdn(fqdn, sizeof(fqdn), s);
	json_str(j, "dns_name", fqdn);
	json_arr_begin(j, "ports");
	for (int k = 0; k < s->nports; k++) {
		json_obj_begin(j, NULL);
		json_str(j, "name", s->ports[k].name);
		json_str(j, "protocol", lab_proto_name(s->ports[k].proto));
		json_int(j, "port", s->ports[k].port);
		json_int(j, "target_port", s->ports[k].target);
		if (s->ports[k].node_port)
			json_int(j, "node_port", s->ports[k].node_port);
		else
			json_null(j, "node_port");
		json_obj_end(j);
	}
	json_arr_end(j);
	json_arr_begin(j, "endpoints");
	for (size_t i = 0; i < lab_npods; i++) {
		if (!lab_pod_selected(s, &lab_pods[i]))
			continue;
		json_obj_begin(j, NULL);
		json_str(j, "pod", lab_pods[i].name);
		json_str(j, "ip", ip4_str(lab_pod_ip(&lab_pods[i]), a));
		json_str(j, "node", lab_nodes[lab_pods[i].node].name);
		json_obj_end(j);
	}
	json_arr_end(j);
	json_obj_end(j);
}

static void json_pods(struct json *j, const struct lab *lab, const struct live *lv)
{
	char name[LAB_NS_MAX], a[16];

	json_arr_begin(j, "pods");
	for (size_t i = 0; i < lab_npods; i++) {
		const struct lab_pod *p = &lab_pods[i];
		int k = live_proc(lv, p->name);
		lab_ns_name(name, sizeof(name), lab->name, p->name);
		json_obj_begin(j, NULL);
		json_str(j, "namespace", p->ns);
		json_str(j, "name", p->name);
		json_str(j, "netns", name);
		json_str(j, "ip", ip4_str(lab_pod_ip(p), a));
		json_str(j, "node", lab_nodes[p->node].name);
		json_str(j, "app", p->app);
		json_str(j, "server", k >= 0 ? lv->procs[k].what : NULL);
		json_bool(j, "running", k >= 0 && lv->running[k]);
		json_obj_end(j);
	}
	json_arr_end(j);
}

static void json_procs(struct json *j, const struct lab *lab, const struct live *lv)
{
	char ns[LAB_NS_MAX], rel[64], path[128];

	json_arr_begin(j, "processes");
	for (int i = 0; i < lv->nprocs; i++) {
		lab_ns_name(ns, sizeof(ns), lab->name, lv->procs[i].ns_suffix);
		snprintf(rel, sizeof(rel), "logs/%s.log", lv->procs[i].name);
		lab_path(lab, path, sizeof(path), rel);
		json_obj_begin(j, NULL);
		json_str(j, "name", lv->procs[i].name);
		json_str(j, "netns", lv->procs[i].ns_suffix[0] ? ns : NULL);
		json_str(j, "what", lv->procs[i].what);
		if (lv->pids[i] > 0)
			json_int(j, "pid", lv->pids[i]);
		else
			json_null(j, "pid");
		json_bool(j, "running", lv->running[i]);
		json_str(j, "log", path);
		json_obj_end(j);
	}
	json_arr_end(j);
}

/* The fingerprint the token file pins, or NULL (--insecure, or no token). */
static const char *lab_fingerprint(const struct lab *lab, char out[TLS_FP_HEX_LEN + 1])
{
	struct token_file tf;
	char path[128];
	const char *r = NULL;

	lab_path(lab, path, sizeof(path), "token");
	if (auth_token_file_load(path, &tf, NULL, 0) == 0 && tf.has_fingerprint)
		r = tls_fp_str(tf.fingerprint, out);
	auth_token_wipe(&tf.token);
	return r;
}

static void json_manager(struct json *j, const struct lab *lab, const struct live *lv)
{
	char fp[TLS_FP_HEX_LEN + 1];
	const struct lab_pod *p = lab_pod_by_server(LAB_SRV_MANAGER);
	const struct lab_service *s = lab_service_find(p->ns, p->app);
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	char ep[32], path[128], a[16];
	int k = live_proc(lv, p->name);

	json_obj_begin(j, "manager");
	lab_manager_endpoint(lab, ep, sizeof(ep));
	json_str(j, "endpoint", ep);
	json_arr_begin(j, "node_endpoints");
	for (int i = 0; i < LAB_NODES; i++) {
		snprintf(ep, sizeof(ep), "%s:%u", ip4_str(ti->node_ip[i], a), LAB_MANAGER_NODE_PORT);
		json_str(j, NULL, ep);
	}
	json_arr_end(j);
	lab_path(lab, path, sizeof(path), "token");
	json_str(j, "token_file", path);
	json_str(j, "namespace", p->ns);
	json_str(j, "pod", p->name);
	json_str(j, "pod_ip", ip4_str(lab_pod_ip(p), a));
	json_int(j, "port", LAB_MANAGER_PORT);
	json_str(j, "service", s->name);
	json_str(j, "cluster_ip", ip4_str(s->ip, a));
	json_int(j, "node_port", LAB_MANAGER_NODE_PORT);
	json_bool(j, "running", k >= 0 && lv->running[k]);
	json_str(j, "fingerprint", lab_fingerprint(lab, fp));
	json_str(j, "transport", lab_fingerprint(lab, fp) ? "tls" : "tcp-insecure");
	json_str(j, "user", lv->has_manager ? lv->kst.user : NULL);
	json_str(j, "image", lv->has_manager ? lv->kst.image : NULL);
	json_str(j, "container_id", lv->has_manager ? lv->kst.container : NULL);
	json_int(j, "restarts", lv->has_manager ? lv->kst.restarts : 0);
	if (lv->has_manager && lv->kst.last_exit >= 0)
		json_int(j, "last_exit", lv->kst.last_exit);
	else
		json_null(j, "last_exit");
	json_obj_end(j);
}

/* The namespace's forwarding and rp_filter as the lab set them (planned)
 * and as they are (null when the namespace is gone). */
static void json_sysctls(struct json *j, const struct lab *lab, int i, const char *ns)
{
	static const char *const keys[] = { "net.ipv4.ip_forward", "net.ipv4.conf.all.rp_filter",
					    "net.ipv4.conf.default.rp_filter" };
	static const char *const names[] = { "ip_forward", "rp_filter", "rp_filter_default" };
	char v[32];
	uint64_t n;

	json_bool(j, "forwards", render_ns_forwards(&lab->net, i));
	json_obj_begin(j, "sysctls");
	for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
		if (netns_sysctl(ns, keys[k], v, sizeof(v)) == 0 && u64_parse(v, 255, &n) == 0)
			json_int(j, names[k], (long long)n);
		else
			json_null(j, names[k]);
	}
	json_obj_end(j);
}

static void json_namespaces(struct json *j, const struct lab *lab)
{
	char ns[LAB_NS_MAX];

	json_arr_begin(j, "namespaces");
	for (int i = 0; i < lab->net.nns; i++) {
		lab_nsname(lab, i, ns);
		json_obj_begin(j, NULL);
		json_str(j, "name", ns);
		json_str(j, "role", ns_role(lab->net.ns[i].kind));
		json_bool(j, "exists", netns_exists(ns));
		json_sysctls(j, lab, i, ns);
		json_obj_end(j);
	}
	json_arr_end(j);
}

/* "NAME (WHAT) is not running[: ...]; see LOG", for a process that died. */
static bool problem_text(const struct lab *lab, const struct live *lv, int i, char *out, size_t size)
{
	const struct lab_proc *p = &lv->procs[i];
	char extra[96] = "";

	if (lv->running[i] || proc_optional(lv, p))
		return false;
	if (p->kind == PROC_POD && lab_pods[p->index].server == LAB_SRV_MANAGER)
		snprintf(extra, sizeof(extra), " (container %.12s, %u restarts, last exit %d)", lv->kst.container,
			 lv->kst.restarts, lv->kst.last_exit);
	snprintf(out, size, "%s (%s) is not running%s; see %s/logs/%s.log", p->name, p->what, extra, lab->dir,
		 p->name);
	return true;
}

static void status_json(const struct lab *lab, const struct live *lv)
{
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	struct cidr4 pc = { LAB_POD_NET, LAB_POD_LEN }, sc = { LAB_SVC_NET, LAB_SVC_LEN };
	char a[20];
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_str(&j, "name", lab->name);
	json_str(&j, "state", lv->state);
	if (!strcmp(lv->state, "down")) {
		json_obj_end(&j);
		json_finish(&j);
		return;
	}
	json_str(&j, "topology", ti->name);
	json_str(&j, "topology_summary", ti->summary);
	json_str(&j, "state_dir", lab->dir);
	if (lv->ready) {
		json_int(&j, "started", lv->started);
		json_double(&j, "up_seconds", lv->up_seconds);
	} else {
		json_null(&j, "started");
		json_null(&j, "up_seconds");
	}
	json_str(&j, "pod_cidr", cidr4_str(&pc, a));
	json_str(&j, "service_cidr", cidr4_str(&sc, a));
	json_str(&j, "cluster_domain", LAB_CLUSTER_DOMAIN);
	json_str(&j, "cluster_dns", ip4_str(LAB_DNS_IP, a));
	json_namespaces(&j, lab);
	json_laptop(&j, lab);
	json_infra(&j, lab);
	json_nodes(&j, lab);
	json_arr_begin(&j, "services");
	for (size_t i = 0; i < lab_nservices; i++)
		json_service(&j, &lab_services[i]);
	json_arr_end(&j);
	json_pods(&j, lab, lv);
	json_manager(&j, lab, lv);
	json_obj_begin(&j, "big");
	json_str(&j, "path", "/big");
	json_uint(&j, "size", LAB_BIG_SIZE);
	json_str(&j, "sha256", lv->sha[0] ? lv->sha : NULL);
	json_obj_end(&j);
	json_procs(&j, lab, lv);
	json_arr_begin(&j, "problems");
	for (int i = 0; i < lv->nprocs; i++) {
		char what[256];
		if (problem_text(lab, lv, i, what, sizeof(what)))
			json_str(&j, NULL, what);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

/* ---- human ---- */

static void human_addrs(const struct lab *lab, int ns)
{
	char a[20];
	int k = 0;

	for (int i = 0; i < lab->net.nifaces; i++) {
		const struct lab_iface *f = &lab->net.ifaces[i];
		struct cidr4 c = { f->addr, f->len };
		if (f->ns == ns && f->addr)
			printf("%s%s %s", k++ ? ", " : "", cidr4_str(&c, a), f->name);
	}
}

static void human_header(const struct lab *lab, const struct live *lv)
{
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	int ns = lab_net_ns_find(&lab->net, "laptop");
	char name[LAB_NS_MAX], a[16];

	printf("lab %s: %s, topology %s", lab->name, lv->state, ti->name);
	if (lv->ready)
		printf(" (came up in %.1f s)", lv->up_seconds);
	printf("\n  %s\n  state in %s\n\n", ti->summary, lab->dir);
	lab_nsname(lab, ns, name);
	printf("laptop    netns %s: ", name);
	human_addrs(lab, ns);
	printf("\n          resolv.conf: nameserver %s%s", ip4_str(LAB_INTERNET_DNS, a),
	       ti->laptop_forwards ? "; forwards (ip_forward=1)" : "");
	if (ti->dns_forwarder)
		printf("; DNS forwarder on %s:53", ip4_str(ti->node_dns, a));
	ns = lab_net_ns_find(&lab->net, "router");
	if (ns >= 0) {
		lab_nsname(lab, ns, name);
		printf("\nrouter    netns %s: ", name);
		human_addrs(lab, ns);
	}
	printf("\ninternet  resolver %s answers example.com (%s), NXDOMAIN otherwise\n", ip4_str(LAB_INTERNET_DNS, a),
	       ip4_str(LAB_EXAMPLE_COM, name));
}

static void human_nodes(const struct lab *lab)
{
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	char ns[LAB_NS_MAX], a[16], b[16], c[16];

	printf("\nnodes     pod CIDR 10.42.0.0/16 (a /24 per node), service CIDR 10.43.0.0/16, "
	       "cluster DNS 10.43.0.10\n");
	for (int i = 0; i < LAB_NODES; i++) {
		lab_ns_name(ns, sizeof(ns), lab->name, lab_nodes[i].name);
		printf("  %-7s %-14s pods 10.42.%u.0/24  default via %s  DNS %s  netns %s\n", lab_nodes[i].name,
		       ip4_str(ti->node_ip[i], a), lab_nodes[i].index,
		       ip4_str(ti->node_gw ? ti->node_gw : LAB_SLIRP_GW, b), ip4_str(ti->node_dns, c), ns);
	}
}

static void human_services(void)
{
	char a[16];

	printf("\nservices  %-12s %-9s %-11s %-26s %s\n", "NAMESPACE", "NAME", "CLUSTER-IP", "PORTS", "ENDPOINTS");
	for (size_t i = 0; i < lab_nservices; i++) {
		const struct lab_service *s = &lab_services[i];
		char ports[64] = "";
		size_t off = 0;
		for (int k = 0; k < s->nports; k++) {
			const struct lab_port *p = &s->ports[k];
			off += (size_t)snprintf(ports + off, sizeof(ports) - off, "%s%u/%s", k ? "," : "", p->port,
						lab_proto_name(p->proto));
			if (p->node_port && off < sizeof(ports))
				off += (size_t)snprintf(ports + off, sizeof(ports) - off, ":%u", p->node_port);
		}
		printf("          %-12s %-9s %-11s %-26s", s->ns, s->name, ip4_str(s->ip, a), ports);
		for (size_t k = 0, n = 0; k < lab_npods; k++)
			if (lab_pod_selected(s, &lab_pods[k]))
				printf("%s%s", n++ ? ", " : " ", ip4_str(lab_pod_ip(&lab_pods[k]), a));
		printf("\n");
	}
}

static void human_pods(const struct live *lv)
{
	char a[16];

	printf("\npods      %-12s %-11s %-10s %-7s %-8s %s\n", "NAMESPACE", "NAME", "IP", "NODE", "STATUS", "RUNS");
	for (size_t i = 0; i < lab_npods; i++) {
		const struct lab_pod *p = &lab_pods[i];
		int k = live_proc(lv, p->name);
		bool run = k >= 0 && lv->running[k];
		printf("          %-12s %-11s %-10s %-7s %-8s %s\n", p->ns, p->name, ip4_str(lab_pod_ip(p), a),
		       lab_nodes[p->node].name, run ? "running" : "-", k >= 0 ? lv->procs[k].what : "");
	}
}

static void human_rest(const struct lab *lab, const struct live *lv)
{
	char ep[32], path[128], fp[TLS_FP_HEX_LEN + 1];
	int down = 0;

	lab_manager_endpoint(lab, ep, sizeof(ep));
	lab_path(lab, path, sizeof(path), "token");
	printf("\nmanager   %s (node port %u on every node IP), token %s\n", ep, LAB_MANAGER_NODE_PORT, path);
	printf("          %s\n", lab_fingerprint(lab, fp) ? fp : "no TLS (up --insecure)");
	printf("big       GET http://web.default/big: %llu MiB, sha256 %s\n",
	       (unsigned long long)(LAB_BIG_SIZE >> 20), lv->sha[0] ? lv->sha : "(not generated)");
	if (lv->has_manager)
		printf("          pod %s: image %s, container %.12s, %u restarts, runs as %s\n",
		       lab_pod_by_server(LAB_SRV_MANAGER)->name, lv->kst.image, lv->kst.container, lv->kst.restarts,
		       lv->kst.user);
	for (int i = 0; i < lv->nprocs; i++) {
		char what[256];
		if (problem_text(lab, lv, i, what, sizeof(what)))
			printf("%s %s\n", down++ ? "         " : "\nproblems ", what);
	}
	printf("\n'subway lab exec --name %s -- CMD' runs CMD on the laptop; 'ip netns exec %s-<pod> CMD' in a pod.\n",
	       lab->name, lab->name);
}

int lab_status(struct lab *lab, bool json)
{
	struct live lv;

	live_collect(lab, &lv);
	if (json) {
		status_json(lab, &lv);
	} else if (!strcmp(lv.state, "down")) {
		printf("lab %s is not up\n", lab->name);
	} else {
		human_header(lab, &lv);
		human_nodes(lab);
		human_services();
		human_pods(&lv);
		human_rest(lab, &lv);
	}
	return strcmp(lv.state, "up") ? 1 : 0;
}

int lab_list(void)
{
	DIR *d = opendir(LAB_STATE_ROOT);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d))) {
		struct lab lab;
		struct live lv;
		enum lab_topo t = LAB_TOPO_HOST_ONLY;
		char err[128];
		if ((e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) || lab_name_check(e->d_name, err, sizeof(err)) < 0 ||
		    !lab_state_exists(e->d_name))
			continue;
		lab_state_topology(e->d_name, &t);
		if (lab_init(&lab, e->d_name, t) < 0)
			continue;
		live_collect(&lab, &lv);
		printf("%-20s %-10s %s\n", lab.name, lv.state, lab_topo_name(t));
		n++;
	}
	if (d)
		closedir(d);
	if (n == 0)
		printf("no labs\n");
	return 0;
}
