/* `subway doctor [--json]`: checks this machine for what breaks subway or
 * makes it loop, and says how to fix each finding.  Connected or not: the
 * daemon's status, when one runs, names the cluster (CIDRs, nodes, the
 * manager); else --lab or --manager names the manager.  Exit 0 when clean,
 * 1 when it found something (a warning or a problem), 2 for bad arguments.
 * docs/cli.md lists the checks; docs/vm-networking.md explains the VM ones. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "commands.h"
#include "common/json.h"
#include "common/jsonget.h"
#include "common/paths.h"
#include "common/util.h"
#include "proto/ctlmsg.h"
#include "proto/auth.h"
#include "vif/vif.h"

#define DOC_FINDINGS_MAX 32
#define DOC_ADDRS_MAX 24
#define DOC_STATUS_MAX 65536
#define DOC_NATS_MAX 8

enum doc_sev { DOC_OK, DOC_INFO, DOC_WARNING, DOC_PROBLEM };

struct doc_finding {
	const char *check;
	enum doc_sev sev;
	char msg[640];
	char fix[384];
};

struct doc_addr {
	uint32_t addr;
	const char *what; /* "node", "manager endpoint" */
};

struct doctor {
	bool json;
	bool have_status, connected, guard_on; /* guard_on: as the daemon says, else the default */
	char status[DOC_STATUS_MAX];
	size_t status_len;
	char vif[IF_NAMESIZE];
	int vif_index;
	char endpoint[32], dns_mode[64];
	struct cidr_list cidrs; /* pod and service CIDRs, when known */
	int n_addrs;
	struct doc_addr addrs[DOC_ADDRS_MAX];
	bool vm_here; /* a node or the manager is on an attached, forwarding network */
	int n;
	struct doc_finding f[DOC_FINDINGS_MAX];
};

static const char *doc_sev_name(enum doc_sev s)
{
	static const char *names[] = { "ok", "info", "warning", "problem" };
	return names[s];
}

static void __attribute__((format(printf, 4, 5)))
doc_add(struct doctor *d, const char *check, enum doc_sev sev, const char *fmt, ...)
{
	struct doc_finding *f;
	va_list ap;

	if (d->n >= DOC_FINDINGS_MAX)
		return;
	f = &d->f[d->n++];
	f->check = check;
	f->sev = sev;
	f->fix[0] = 0;
	va_start(ap, fmt);
	vsnprintf(f->msg, sizeof(f->msg), fmt, ap);
	va_end(ap);
}

/* The fix of the last finding. */
static void __attribute__((format(printf, 2, 3))) doc_fix(struct doctor *d, const char *fmt, ...)
{
	va_list ap;

	if (!d->n)
		return;
	va_start(ap, fmt);
	vsnprintf(d->f[d->n - 1].fix, sizeof(d->f[d->n - 1].fix), fmt, ap);
	va_end(ap);
}

static void doc_add_addr(struct doctor *d, uint32_t addr, const char *what)
{
	for (int i = 0; i < d->n_addrs; i++)
		if (d->addrs[i].addr == addr)
			return;
	if (addr && d->n_addrs < DOC_ADDRS_MAX)
		d->addrs[d->n_addrs++] = (struct doc_addr){ addr, what };
}

static int doc_read_sysctl(const char *fmt, const char *dev)
{
	char path[160], buf[32];

	snprintf(path, sizeof(path), fmt, dev);
	if (file_read_small(path, buf, sizeof(buf)) <= 0)
		return -1;
	return atoi(buf);
}

/* ---- facts: the daemon's status, or the manager given on the command line ---- */

static void doc_status_cidrs(struct doctor *d, const char *path)
{
	char v[CIDR_LIST_MAX][20];
	int n = jsonget_strs(d->status, d->status_len, path, &v[0][0], sizeof(v[0]), CIDR_LIST_MAX);

	for (int i = 0; i < n && d->cidrs.n < CIDR_LIST_MAX; i++)
		if (cidr4_parse(v[i], &d->cidrs.v[d->cidrs.n]) == 0)
			d->cidrs.n++;
}

static void doc_read_status(struct doctor *d)
{
	char path[108], nodes[PROTO_NODES_MAX][20];
	uint32_t a;
	uint16_t port;
	ssize_t r;
	int fd, n;

	paths_daemon(path, sizeof(path), NULL, 0);
	if ((fd = cli_request_verb(path, CTL_STATUS, false)) < 0)
		return;
	while (d->status_len < sizeof(d->status) - 1 &&
	       (r = read(fd, d->status + d->status_len, sizeof(d->status) - 1 - d->status_len)) > 0)
		d->status_len += (size_t)r;
	close(fd);
	if (jsonget_valid(d->status, d->status_len) < 0)
		return;
	d->have_status = true;
	jsonget_bool(d->status, d->status_len, "connected", &d->connected);
	jsonget_bool(d->status, d->status_len, "loop_guard.enabled", &d->guard_on);
	jsonget_str(d->status, d->status_len, "vif.name", d->vif, sizeof(d->vif));
	d->vif_index = d->vif[0] ? (int)if_nametoindex(d->vif) : 0;
	jsonget_str(d->status, d->status_len, "dns.mode", d->dns_mode, sizeof(d->dns_mode));
	n = jsonget_strs(d->status, d->status_len, "cluster.nodes", &nodes[0][0], sizeof(nodes[0]), PROTO_NODES_MAX);
	for (int i = 0; i < n; i++)
		if (ip4_parse(nodes[i], &a) == 0)
			doc_add_addr(d, a, "node");
	if (jsonget_str(d->status, d->status_len, "manager.endpoint", d->endpoint, sizeof(d->endpoint)) == 0 &&
	    endpoint_parse(d->endpoint, &a, &port) == 0)
		doc_add_addr(d, a, "manager endpoint");
	doc_status_cidrs(d, "cluster.pod_cidrs");
	doc_status_cidrs(d, "cluster.service_cidrs");
}

/* --lab NAME: the lab's token file names the manager. */
static int doc_lab_manager(struct doctor *d, const char *lab)
{
	char path[300], err[300], ip[16];
	struct token_file tf;
	int r;

	if ((r = cli_lab_token(lab, path, sizeof(path), err, sizeof(err))) < 0) {
		fprintf(stderr, "subway doctor: %s\n", err);
		return r;
	}
	if (auth_token_file_load(path, &tf, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway doctor: the token file of lab '%s': %s\n", lab, err);
		return -ENOENT;
	}
	auth_token_wipe(&tf.token);
	if (tf.has_manager && !d->endpoint[0]) {
		doc_add_addr(d, tf.manager_addr, "manager endpoint");
		snprintf(d->endpoint, sizeof(d->endpoint), "%s:%u", ip4_str(tf.manager_addr, ip), tf.manager_port);
	}
	return 0;
}

/* ---- checks ---- */

static void doc_check_daemon(struct doctor *d)
{
	if (d->connected)
		doc_add(d, "daemon", DOC_INFO, "connected to the manager at %s, VIF %s", d->endpoint, d->vif);
	else if (d->have_status)
		doc_add(d, "daemon", DOC_INFO, "a daemon runs here but is not connected");
	else
		doc_add(d, "daemon", DOC_INFO, "not connected: the checks that need the cluster's CIDRs are "
					       "skipped%s", d->endpoint[0] ? "" : " (give --lab or --manager to name the manager)");
}

/* A killed daemon's resolv.conf still sends every lookup to its DNS server. */
static void doc_check_resolver(struct doctor *d)
{
	char what[512], fix[128];

	if (d->have_status)
		return; /* the daemon here owns the resolver; its DNS mode is below */
	if (cli_resolver_stale(what, sizeof(what), fix, sizeof(fix))) {
		doc_add(d, "resolver", DOC_PROBLEM, "%s", what);
		doc_fix(d, "%s", fix);
	} else {
		doc_add(d, "resolver", DOC_OK, "the resolver does not point at a gone subway daemon");
	}
}

static void doc_check_tun(struct doctor *d)
{
	struct stat st;
	int fd;

	if (stat("/dev/net/tun", &st) < 0 || !S_ISCHR(st.st_mode)) {
		doc_add(d, "tun", DOC_PROBLEM, "/dev/net/tun is missing: subway cannot create its virtual interface");
		doc_fix(d, "load the tun module (modprobe tun); in a container, pass the device in (--device /dev/net/tun)");
		return;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	if (geteuid() != 0) {
		doc_add(d, "privileges", DOC_INFO, "not root: `subway connect` needs root to create the VIF%s",
			d->connected ? " (the daemon already runs)" : "");
		doc_fix(d, "run `sudo subway connect ...`; status, quit and doctor work as the connecting user");
	} else if (fd < 0) {
		doc_add(d, "tun", DOC_PROBLEM, "/dev/net/tun cannot be opened: %s", strerror(errno));
		doc_fix(d, "check the device's permissions and any security module (SELinux, AppArmor) denying it");
	} else {
		doc_add(d, "tun", DOC_OK, "/dev/net/tun is usable");
	}
}

static void doc_overlap_addrs(struct doctor *d, int *found)
{
	struct ifaddrs *ifa;
	char a[20], b[16];

	if (getifaddrs(&ifa) < 0)
		return;
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		uint32_t addr;
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || !strcmp(i->ifa_name, d->vif))
			continue;
		addr = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
		for (int c = 0; c < d->cidrs.n; c++)
			if (cidr4_contains(&d->cidrs.v[c], addr)) {
				doc_add(d, "overlap", DOC_PROBLEM, "cluster CIDR %s holds %s, an address of %s on this machine",
					cidr4_str(&d->cidrs.v[c], a), ip4_str(addr, b), i->ifa_name);
				doc_fix(d, "move %s off %s (or the cluster to other CIDRs): subway cannot route "
					   "a network this machine is part of", i->ifa_name, a);
				(*found)++;
			}
	}
	freeifaddrs(ifa);
}

static void doc_check_overlap(struct doctor *d)
{
	struct local_route routes[256];
	int n = vif_routes_read(routes, (int)ARRAY_SIZE(routes)), found = 0;
	char a[20], b[20];

	if (!d->cidrs.n)
		return;
	for (int i = 0; i < n; i++) {
		if (!strcmp(routes[i].dev, d->vif))
			continue;
		for (int c = 0; c < d->cidrs.n; c++)
			if (cidr4_overlap(&d->cidrs.v[c], &routes[i].dst)) {
				doc_add(d, "overlap", DOC_PROBLEM, "cluster CIDR %s overlaps the local route %s on %s",
					cidr4_str(&d->cidrs.v[c], a), cidr4_str(&routes[i].dst, b), routes[i].dev);
				doc_fix(d, "remove or narrow the route (ip route del %s dev %s) or give the cluster "
					   "other CIDRs: the more specific route takes the cluster's traffic", b, routes[i].dev);
				found++;
			}
	}
	doc_overlap_addrs(d, &found);
	if (!found)
		doc_add(d, "overlap", DOC_OK, "no local route or address overlaps the cluster's %d CIDR(s)", d->cidrs.n);
}

/* The attached network (no gateway) of addr, as an interface name; false if
 * addr is reached through a gateway, the VIF, or is local. */
static bool doc_attached(const struct doctor *d, uint32_t addr, char dev[IF_NAMESIZE])
{
	uint32_t gw = 0;
	int oif = 0;

	if (vif_route_get(addr, &oif, &gw) < 0 || gw || oif == d->vif_index || !if_indextoname((unsigned)oif, dev))
		return false;
	return strcmp(dev, "lo") != 0;
}

static void doc_check_vm(struct doctor *d)
{
	char dev[IF_NAMESIZE], ip[16];

	for (int i = 0; i < d->n_addrs; i++) {
		int fwd, fwd_all;
		if (!doc_attached(d, d->addrs[i].addr, dev))
			continue;
		fwd = doc_read_sysctl("/proc/sys/net/ipv4/conf/%s/forwarding", dev);
		fwd_all = doc_read_sysctl("/proc/sys/net/ipv4/conf/%s/forwarding", "all");
		ip4_str(d->addrs[i].addr, ip);
		if (fwd <= 0 && fwd_all <= 0) {
			doc_add(d, "vm", DOC_OK, "the %s %s is on %s, a network attached here, but this machine does "
						 "not forward from it: the cluster cannot loop through subway", d->addrs[i].what, ip, dev);
			return;
		}
		d->vm_here = true;
		doc_add(d, "vm", d->guard_on ? DOC_WARNING : DOC_PROBLEM,
			"your cluster runs in a VM on this machine: the %s %s is on %s, a network attached here, and "
			"this machine forwards from it (net.ipv4.conf.%s.forwarding=1), so the cluster can send what "
			"subway dials back into subway's VIF; subway's loop guard is %s",
			d->addrs[i].what, ip, dev, dev,
			!d->connected ? "on by default" : d->guard_on ? "on" : "OFF (--no-loop-guard)");
		doc_fix(d, "%sfor a setup that cannot loop, give the VM a bridged network instead of a host-only "
			   "one: see docs/vm-networking.md", d->guard_on ? "" : "reconnect without --no-loop-guard; ");
		return;
	}
	if (d->n_addrs)
		doc_add(d, "vm", DOC_OK, "no node or manager address is on a network attached to this machine");
}

struct doc_nat {
	int pid;
	char name[32];
	char serves[20]; /* the node address its guest holds, "" if unknown */
};

/* The IPv4 addresses of this network namespace, at most max. */
static int doc_local_addrs(uint32_t *out, int max)
{
	struct ifaddrs *ifa;
	int n = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (struct ifaddrs *i = ifa; i && n < max; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET)
			out[n++] = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
	freeifaddrs(ifa);
	return n;
}

/* The same of another network namespace: entered, read, left. */
static int doc_netns_addrs(const char *nspath, uint32_t *out, int max)
{
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), fd, n = 0;

	if (self < 0)
		return 0;
	if ((fd = open(nspath, O_RDONLY | O_CLOEXEC)) >= 0 && setns(fd, CLONE_NEWNET) == 0) {
		n = doc_local_addrs(out, max);
		if (setns(self, CLONE_NEWNET) < 0)
			n = -1; /* cannot happen short of a kernel bug; say nothing rather than lie */
	}
	if (fd >= 0)
		close(fd);
	close(self);
	return n;
}

/* slirp4netns [OPTIONS] PID|PATH TAPNAME: the guest namespace. */
static void doc_slirp_serves(const struct doctor *d, const char *cmd, size_t len, struct doc_nat *nat)
{
	const char *args[64], *target;
	char nspath[300];
	uint32_t addrs[64];
	int argc = 0, n;

	for (size_t off = 0; off < len && argc < 64; off += strlen(cmd + off) + 1)
		args[argc++] = cmd + off;
	if (argc < 3)
		return;
	target = args[argc - 2];
	if (strspn(target, "0123456789") == strlen(target))
		snprintf(nspath, sizeof(nspath), "/proc/%s/ns/net", target);
	else
		snprintf(nspath, sizeof(nspath), "%s", target);
	n = doc_netns_addrs(nspath, addrs, 64);
	for (int i = 0; i < n; i++)
		for (int k = 0; k < d->n_addrs; k++)
			if (addrs[i] == d->addrs[k].addr) {
				ip4_str(addrs[i], nat->serves);
				return;
			}
}

/* A user-mode NAT by its process name (and, for qemu, a user netdev). */
static bool doc_is_nat(const char *comm, const char *cmd, size_t len)
{
	static const char *names[] = { "slirp4netns", "passt", "pasta", "gvproxy", "vpnkit", "VBoxHeadless",
				       "VirtualBoxVM", "VBoxNetNAT" };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(comm, names[i]))
			return true;
	if (strncmp(comm, "qemu-system", 11))
		return false;
	for (size_t off = 0; off < len; off += strlen(cmd + off) + 1)
		if (!strncmp(cmd + off, "user", 4) || strstr(cmd + off, ",user") || strstr(cmd + off, "=user"))
			return true;
	return false;
}

static int doc_find_nats(const struct doctor *d, struct doc_nat *nats, int max)
{
	struct stat self, st;
	struct dirent *de;
	DIR *dir = opendir("/proc");
	int n = 0;

	if (!dir || stat("/proc/self/ns/net", &self) < 0) {
		if (dir)
			closedir(dir);
		return 0;
	}
	while ((de = readdir(dir)) && n < max) {
		char path[300], comm[32], cmd[4096];
		ssize_t clen;
		int pid = atoi(de->d_name);
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
		if (stat(path, &st) < 0 || st.st_ino != self.st_ino)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/comm", pid);
		if (file_read_small(path, comm, sizeof(comm)) <= 0)
			continue;
		comm[strcspn(comm, "\n")] = 0;
		snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
		if ((clen = file_read_small(path, cmd, sizeof(cmd))) <= 0 || !doc_is_nat(comm, cmd, (size_t)clen))
			continue;
		nats[n] = (struct doc_nat){ .pid = pid };
		snprintf(nats[n].name, sizeof(nats[n].name), "%s", comm);
		if (!strcmp(comm, "slirp4netns"))
			doc_slirp_serves(d, cmd, (size_t)clen, &nats[n]);
		n++;
	}
	closedir(dir);
	return n;
}

static void doc_check_nat(struct doctor *d)
{
	struct doc_nat nats[DOC_NATS_MAX];
	int n = doc_find_nats(d, nats, DOC_NATS_MAX);

	for (int i = 0; i < n; i++) {
		if (!nats[i].serves[0])
			continue;
		doc_add(d, "user-mode-nat", d->guard_on ? DOC_WARNING : DOC_PROBLEM,
			"your cluster runs in a VM on this machine behind a user-mode NAT: %s (pid %d) serves the "
			"node %s; a connection the cluster cannot place comes back re-originated by it, from this "
			"machine's own address and without the manager's mark; subway's loop guard is %s (its chain "
			"layer cuts such loops)", nats[i].name, nats[i].pid, nats[i].serves, d->guard_on ? "on" : "OFF");
		doc_fix(d, "for a setup that cannot loop, give the VM a bridged network: see docs/vm-networking.md");
		return;
	}
	if (n)
		doc_add(d, "user-mode-nat", DOC_INFO, "a user-mode NAT runs here (%s, pid %d%s): if it serves your "
						      "cluster's VM, loops come back through it; subway's loop guard is %s",
			nats[0].name, nats[0].pid, n > 1 ? ", and others" : "", d->guard_on ? "on" : "off");
}

/* Strict reverse-path filtering drops the cluster's replies on the VIF
 * when the route back to their source is elsewhere (a policy rule, a
 * more specific route). */
static void doc_check_rp(struct doctor *d)
{
	int all = doc_read_sysctl("/proc/sys/net/ipv4/conf/%s/rp_filter", "all");
	int dev = doc_read_sysctl("/proc/sys/net/ipv4/conf/%s/rp_filter", d->connected ? d->vif : "default");
	int eff = MAX(all, dev);
	char a[20], ip[16], odev[IF_NAMESIZE];

	for (int c = 0; d->connected && c < d->cidrs.n; c++) {
		uint32_t probe = d->cidrs.v[c].addr + 1, gw;
		int oif = 0;
		if (vif_route_get(probe, &oif, &gw) < 0 || oif == d->vif_index)
			continue;
		if (!if_indextoname((unsigned)oif, odev))
			snprintf(odev, sizeof(odev), "#%d", oif);
		doc_add(d, "routing", DOC_PROBLEM, "traffic to %s (in %s) leaves by %s, not by %s%s", ip4_str(probe, ip),
			cidr4_str(&d->cidrs.v[c], a), odev, d->vif,
			eff == 1 ? ", and strict rp_filter will drop the cluster's replies arriving on the VIF" : "");
		doc_fix(d, "find the policy rule or route that takes it (ip rule; ip route get %s)%s", ip,
			eff == 1 ? "; or set net.ipv4.conf.all.rp_filter=2 (loose)" : "");
		return;
	}
	if (eff == 1)
		doc_add(d, "rp_filter", DOC_OK, "strict rp_filter (%s): fine while the cluster's CIDRs route by the VIF",
			d->connected ? d->vif : "default");
	else
		doc_add(d, "rp_filter", DOC_OK, "rp_filter %d: it does not drop the VIF's traffic", eff < 0 ? 0 : eff);
}

static void doc_check_guard_dns(struct doctor *d)
{
	if (d->connected && !d->guard_on && !d->vm_here) {
		doc_add(d, "loop-guard", DOC_WARNING, "the loop guard is off (connected with --no-loop-guard)");
		doc_fix(d, "subway quit, then connect without --no-loop-guard");
	} else if (d->connected && d->guard_on) {
		doc_add(d, "loop-guard", DOC_OK, "the loop guard is on");
	}
	if (d->dns_mode[0])
		doc_add(d, "dns", DOC_INFO, "DNS mode: %s", d->dns_mode);
	else if (d->connected)
		doc_add(d, "dns", DOC_INFO, "the daemon reports no DNS mode: cluster names resolve here only if "
					    "this machine's resolver asks the cluster's DNS");
}

/* ---- output ---- */

static void doc_print_json(const struct doctor *d, int problems)
{
	struct json j;

	json_init(&j, stdout, true);
	json_obj_begin(&j, NULL);
	json_bool(&j, "clean", problems == 0);
	json_bool(&j, "connected", d->connected);
	json_str(&j, "dns_mode", d->dns_mode[0] ? d->dns_mode : NULL);
	json_arr_begin(&j, "findings");
	for (int i = 0; i < d->n; i++) {
		json_obj_begin(&j, NULL);
		json_str(&j, "check", d->f[i].check);
		json_str(&j, "severity", doc_sev_name(d->f[i].sev));
		json_str(&j, "message", d->f[i].msg);
		json_str(&j, "fix", d->f[i].fix[0] ? d->f[i].fix : NULL);
		json_obj_end(&j);
	}
	json_arr_end(&j);
	json_obj_end(&j);
	json_finish(&j);
}

static void doc_print_text(const struct doctor *d, int problems)
{
	for (int i = 0; i < d->n; i++) {
		printf("%-8s %-14s %s\n", doc_sev_name(d->f[i].sev), d->f[i].check, d->f[i].msg);
		if (d->f[i].fix[0])
			printf("%-8s %-14s fix: %s\n", "", "", d->f[i].fix);
	}
	if (problems)
		printf("\n%d finding(s) to look at.\n", problems);
	else
		printf("\nno problems found.\n");
}

static void doctor_usage(FILE *fp)
{
	fprintf(fp, "usage: subway doctor [--json] [--lab [NAME] | --manager HOST:PORT]\n\n"
		    "Checks this machine for what breaks subway or makes the cluster loop through it:\n"
		    "/dev/net/tun and privileges, cluster CIDRs overlapping local routes or addresses,\n"
		    "a cluster in a VM on this machine (attached network with forwarding, user-mode\n"
		    "NAT), rp_filter, the loop guard and the DNS mode.  Each finding comes with its fix.\n"
		    "Connected or not: without a daemon, --lab or --manager names the manager.\n"
		    "Exit 0 when clean, 1 when something was found.\n\n"
		    "  --json                one JSON document (docs/cli.md)\n"
		    "  --lab [NAME]          the manager of a lab (default lab: subway)\n"
		    "  --manager HOST:PORT   the manager's address\n");
}

static int doctor_args(int argc, char **argv, struct doctor *d)
{
	static const struct option opts[] = { { "json", no_argument, NULL, 'j' }, { "lab", no_argument, NULL, 'L' },
					      { "manager", required_argument, NULL, 'm' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };
	const char *lab = NULL, *mgr = NULL;
	char cut[STR_CUT_SIZE];
	uint32_t a;
	uint16_t port;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j': d->json = true; break;
		case 'L': lab = optind < argc && argv[optind][0] != '-' ? argv[optind++] : "subway"; break;
		case 'm': mgr = optarg; break;
		case 'h': doctor_usage(stdout); return 1;
		default:
			cli_opt_error("doctor", c, argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc || (lab && mgr)) {
		fprintf(stderr, "subway doctor: %s\n", optind != argc ? "unexpected argument (try --help)"
								    : "give --lab or --manager, not both");
		return -EINVAL;
	}
	if (mgr && endpoint_parse(mgr, &a, &port) < 0) {
		fprintf(stderr, "subway doctor: --manager: not IPv4:PORT: '%s'\n",
			str_cut(mgr, strlen(mgr), cut, sizeof(cut)));
		return -EINVAL;
	}
	doc_read_status(d);
	if (mgr && !d->endpoint[0]) {
		doc_add_addr(d, a, "manager endpoint");
		snprintf(d->endpoint, sizeof(d->endpoint), "%s", mgr);
	}
	return lab ? doc_lab_manager(d, lab) : 0;
}

int doctor_main(int argc, char **argv)
{
	struct doctor *d = calloc(1, sizeof(*d));
	int ret, problems = 0;

	if (!d)
		return 1;
	d->guard_on = true; /* what `subway connect` does unless told otherwise */
	if ((ret = doctor_args(argc, argv, d)) != 0) {
		free(d);
		return ret > 0 ? 0 : ret == -EINVAL ? 2 : 1; /* > 0: --help */
	}
	doc_check_daemon(d);
	doc_check_resolver(d);
	doc_check_tun(d);
	doc_check_overlap(d);
	doc_check_vm(d);
	doc_check_nat(d);
	doc_check_rp(d);
	doc_check_guard_dns(d);
	for (int i = 0; i < d->n; i++)
		problems += d->f[i].sev >= DOC_WARNING;
	if (d->json)
		doc_print_json(d, problems);
	else
		doc_print_text(d, problems);
	free(d);
	return problems ? 1 : 0;
}
