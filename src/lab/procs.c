/* The lab's servers: each started detached with `ip netns exec NS ...`,
 * stdio to logs/<proc>.log, its pid in pids/<proc>.pid.  `up` returns
 * once every one of them listens. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/run.h"
#include "common/util.h"
#include "lab/lab.h"
#include "lab/kubelet.h"
#include "lab/render.h"

#define READY_TIMEOUT_MS 8000
#define PROC_ARGS 32

static void plan_add(struct lab_proc *out, int max, int *n, const char *name, const char *ns,
		     enum lab_proc_kind kind, int index, const char *what)
{
	struct lab_proc *p = &out[*n];

	if (*n >= max)
		return;
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->ns_suffix, sizeof(p->ns_suffix), "%s", ns);
	p->kind = kind;
	p->index = index;
	p->what = what;
	(*n)++;
}

int procs_plan(const struct lab *lab, struct lab_proc *out, int max)
{
	static const char *const what[] = {
		[LAB_SRV_CLUSTER_DNS] = "dnsmasq: cluster DNS", [LAB_SRV_MANAGER] = "subway manager (container)",
		[LAB_SRV_HTTP] = "nginx", [LAB_SRV_TCP_ECHO] = "socat: TCP echo",
		[LAB_SRV_UDP_ECHO] = "socat: UDP echo", [LAB_SRV_IPERF] = "iperf3 -s",
	};
	const struct lab_topo_info *ti = lab_topo_info(lab->topo);
	char name[24];
	int n = 0;

	plan_add(out, max, &n, "internet-dns", "internet", PROC_INTERNET_DNS, -1, "dnsmasq: the internet's resolver");
	plan_add(out, max, &n, "internet-web", "internet", PROC_INTERNET_WEB, -1, "nginx: example.com");
	if (ti->dns_forwarder)
		plan_add(out, max, &n, "laptop-dns", "laptop", PROC_FORWARDER, -1, "dnsmasq: the laptop's DNS forwarder");
	for (int i = 0; ti->slirp && i < LAB_NODES; i++) {
		snprintf(name, sizeof(name), "slirp-%s", lab_nodes[i].name);
		plan_add(out, max, &n, name, "laptop", PROC_SLIRP, i, "slirp4netns: the node's user-mode NAT");
	}
	for (size_t i = 0; i < lab_npods; i++)
		plan_add(out, max, &n, lab_pods[i].name, lab_pods[i].name, PROC_POD, (int)i, what[lab_pods[i].server]);
	if (!lab->no_manager) {
		plan_add(out, max, &n, "registry", "server", PROC_REGISTRY, -1, "docker-registry: the images (:5000)");
		/* the machine's namespaces: it drives podman (kubelet.h) */
		plan_add(out, max, &n, "kubelet", "", PROC_KUBELET, -1, "the lab's kubelet: the manager's pod");
	}
	return n;
}

/* Starts cmd in namespace <lab>-<ns_suffix>, detached, and records its pid. */
pid_t lab_proc_spawn(struct lab *lab, const struct lab_proc *p, const char *const cmd[])
{
	char ns[LAB_NS_MAX], rel[64], logpath[128];
	char *argv[PROC_ARGS] = { "ip", "netns", "exec", ns };
	int n = 4;
	pid_t pid;

	lab_ns_name(ns, sizeof(ns), lab->name, p->ns_suffix);
	for (int i = 0; cmd[i] && n < PROC_ARGS - 1; i++)
		argv[n++] = (char *)cmd[i];
	argv[n] = NULL;
	snprintf(rel, sizeof(rel), "logs/%s.log", p->name);
	lab_path(lab, logpath, sizeof(logpath), rel);
	pid = run_spawn(argv, logpath);
	if (pid > 0)
		lab_pid_write(lab, p->name, pid);
	return pid;
}

/* Writes conf/<proc>.conf (or nginx/<proc>/nginx.conf) from t. */
static int proc_conf(struct lab *lab, const char *rel, const struct text *t, char *path, size_t size)
{
	int r = text_error(t);

	if (r == 0)
		r = lab_path(lab, path, size, rel);
	if (r == 0)
		r = file_write(path, text_str(t), t->len, 0644);
	if (r < 0)
		log_err("cannot write %s/%s: %s", lab->dir, rel, strerror(-r));
	return r;
}

static pid_t start_dnsmasq(struct lab *lab, const struct lab_proc *p, const struct text *conf)
{
	char rel[64], path[128];
	const char *cmd[] = { "dnsmasq", "--keep-in-foreground", "-C", path, "--log-facility=-", NULL };

	snprintf(rel, sizeof(rel), "conf/%s.conf", p->name);
	if (proc_conf(lab, rel, conf, path, sizeof(path)) < 0)
		return -EIO;
	return lab_proc_spawn(lab, p, cmd);
}

static pid_t start_nginx(struct lab *lab, const struct lab_proc *p, uint32_t listen, const char *body, bool big)
{
	char prefix[96], tmp[112], conf[128], errlog[128], www[96], rel[64];
	const char *cmd[] = { "nginx", "-p", prefix, "-c", conf, "-e", errlog, "-g", "daemon off;", NULL };
	struct nginx_site site = { prefix, errlog, listen, p->name, body, big ? www : NULL };
	struct text t;
	pid_t pid;

	snprintf(rel, sizeof(rel), "nginx/%s", p->name);
	lab_path(lab, prefix, sizeof(prefix), rel);
	snprintf(tmp, sizeof(tmp), "%s/tmp", prefix);
	snprintf(rel, sizeof(rel), "logs/%s.log", p->name);
	lab_path(lab, errlog, sizeof(errlog), rel);
	lab_path(lab, www, sizeof(www), "www");
	if (mkdir_p(tmp, 0755) < 0) {
		log_err("cannot create %s: %s", tmp, strerror(errno));
		return -EIO;
	}
	text_init(&t);
	render_nginx(&t, &site);
	snprintf(rel, sizeof(rel), "nginx/%s/nginx.conf", p->name);
	pid = proc_conf(lab, rel, &t, conf, sizeof(conf)) < 0 ? -EIO : lab_proc_spawn(lab, p, cmd);
	text_free(&t);
	return pid;
}

static pid_t start_slirp(struct lab *lab, const struct lab_proc *p)
{
	char target[96], ns[LAB_NS_MAX];
	const char *cmd[] = { "slirp4netns", "--configure", "--mtu=65520", "--disable-host-loopback",
			      "--netns-type=path", target, "tap0", NULL };

	lab_ns_name(ns, sizeof(ns), lab->name, lab_nodes[p->index].name);
	snprintf(target, sizeof(target), "/run/netns/%s", ns);
	return lab_proc_spawn(lab, p, cmd);
}

static pid_t start_pod(struct lab *lab, const struct lab_proc *p)
{
	const struct lab_pod *pod = &lab_pods[p->index];
	static const char *const tcp_echo[] = { "socat", "-t", "30", "-T", "600",
						"TCP4-LISTEN:7,fork,reuseaddr,backlog=1024",
						"EXEC:cat", NULL };
	static const char *const udp_echo[] = { "socat", "-T", "5", "UDP4-RECVFROM:7,fork", "PIPE", NULL };
	static const char *const iperf[] = { "iperf3", "-s", "-p", "5201", NULL };
	struct text t;
	pid_t pid;

	switch (pod->server) {
	case LAB_SRV_CLUSTER_DNS:
		text_init(&t);
		render_cluster_dns(&t, lab->topo);
		pid = start_dnsmasq(lab, p, &t);
		text_free(&t);
		return pid;
	case LAB_SRV_HTTP:
		return start_nginx(lab, p, 0, pod->name, true);
	case LAB_SRV_TCP_ECHO:
		return lab_proc_spawn(lab, p, tcp_echo);
	case LAB_SRV_UDP_ECHO:
		return lab_proc_spawn(lab, p, udp_echo);
	case LAB_SRV_IPERF:
		return lab_proc_spawn(lab, p, iperf);
	case LAB_SRV_MANAGER:
		return 0; /* lab_start_manager() */
	}
	return -EINVAL;
}

/* Debian's docker-registry, plain HTTP like the seed's multi:5000. */
static pid_t start_registry(struct lab *lab, const struct lab_proc *p)
{
	char data[96], path[128];
	const char *cmd[] = { "docker-registry", "serve", path, NULL };
	struct text t;
	pid_t pid;

	lab_path(lab, data, sizeof(data), "registry");
	text_init(&t);
	render_registry(&t, data, KUBELET_REGISTRY_PORT);
	pid = proc_conf(lab, "conf/registry.yml", &t, path, sizeof(path)) < 0 ? -EIO : lab_proc_spawn(lab, p, cmd);
	text_free(&t);
	return pid;
}

pid_t proc_start(struct lab *lab, const struct lab_proc *p)
{
	char resolv[96], ns[LAB_NS_MAX];
	struct text t;
	pid_t pid = -EINVAL;

	text_init(&t);
	switch (p->kind) {
	case PROC_INTERNET_DNS:
		render_internet_dns(&t);
		pid = start_dnsmasq(lab, p, &t);
		break;
	case PROC_INTERNET_WEB:
		pid = start_nginx(lab, p, LAB_EXAMPLE_COM, "example.com", false);
		break;
	case PROC_FORWARDER:
		lab_ns_name(ns, sizeof(ns), lab->name, "laptop");
		snprintf(resolv, sizeof(resolv), LAB_NETNS_ETC "/%s/resolv.conf", ns);
		render_forwarder_dns(&t, lab_topo_info(lab->topo)->node_dns, resolv);
		pid = start_dnsmasq(lab, p, &t);
		break;
	case PROC_SLIRP:
		pid = start_slirp(lab, p);
		break;
	case PROC_POD:
		pid = start_pod(lab, p);
		break;
	case PROC_REGISTRY:
		pid = start_registry(lab, p);
		break;
	case PROC_KUBELET:
		pid = 0; /* kubelet_deploy() */
		break;
	}
	text_free(&t);
	return pid;
}

/* ---- readiness ---- */

struct ready {
	const struct lab_proc *proc;
	char ns[LAB_NS_MAX];
	enum lab_proto proto;
	uint16_t port;   /* 0: wait for tap0 to get LAB_SLIRP_NODE_IP instead */
	pid_t pid;
	bool ok, optional;
};

static void ready_fill(struct lab *lab, struct ready *r, const struct lab_proc *p, pid_t pid)
{
	static const uint16_t ports[] = { [LAB_SRV_CLUSTER_DNS] = 53, [LAB_SRV_MANAGER] = LAB_MANAGER_PORT,
					  [LAB_SRV_HTTP] = 80, [LAB_SRV_TCP_ECHO] = 7, [LAB_SRV_UDP_ECHO] = 7,
					  [LAB_SRV_IPERF] = 5201 };

	memset(r, 0, sizeof(*r));
	r->proc = p;
	r->pid = pid;
	r->proto = LAB_TCP;
	lab_ns_name(r->ns, sizeof(r->ns), lab->name, p->ns_suffix);
	switch (p->kind) {
	case PROC_INTERNET_DNS:
	case PROC_FORWARDER:
		r->port = 53;
		break;
	case PROC_INTERNET_WEB:
		r->port = 80;
		break;
	case PROC_SLIRP:
		lab_ns_name(r->ns, sizeof(r->ns), lab->name, lab_nodes[p->index].name);
		break;
	case PROC_POD:
		r->port = ports[lab_pods[p->index].server];
		r->proto = lab_pods[p->index].server == LAB_SRV_UDP_ECHO ? LAB_UDP : LAB_TCP;
		break;
	case PROC_REGISTRY:
		r->port = KUBELET_REGISTRY_PORT;
		break;
	case PROC_KUBELET:
		break;
	}
}

static bool ready_check(struct ready *r)
{
	if (r->port == 0)
		return netns_has_addr(r->ns, "tap0", LAB_SLIRP_NODE_IP);
	return netns_listens(r->ns, r->proto, r->port);
}

void procs_log_tail(const struct lab *lab, const char *proc)
{
	char rel[64], path[128], buf[2048];
	const char *p;
	ssize_t n;
	struct stat st;
	int fd, lines = 0;

	snprintf(rel, sizeof(rel), "logs/%s.log", proc);
	lab_path(lab, path, sizeof(path), rel);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = fstat(fd, &st) == 0 ? pread(fd, buf, sizeof(buf) - 1, MAX(0, st.st_size - (off_t)sizeof(buf) + 1)) : -1;
	close(fd);
	if (n <= 0)
		return;
	buf[n] = 0;
	for (p = buf + n; p > buf && lines <= 6;)
		if (*--p == '\n')
			lines++;
	if (*p == '\n')
		p++;
	fprintf(stderr, "  last lines of %s:\n%s%s", path, p, buf[n - 1] == '\n' ? "" : "\n");
}

/* Polls every pending check until all pass, a server dies or time runs out. */
static int ready_wait(struct lab *lab, struct ready *rs, int n)
{
	uint64_t deadline = now_ms() + READY_TIMEOUT_MS;
	int pending = n;

	while (pending > 0) {
		pending = 0;
		for (int i = 0; i < n; i++) {
			struct ready *r = &rs[i];
			int status;
			if (r->ok)
				continue;
			if (r->pid > 0 && waitpid(r->pid, &status, WNOHANG) == r->pid) {
				log_err("%s (%s) exited at start", r->proc->name, r->proc->what);
				procs_log_tail(lab, r->proc->name);
				r->pid = 0;
				if (!r->optional)
					return -EIO;
				r->ok = true;
				continue;
			}
			r->ok = ready_check(r);
			pending += !r->ok;
		}
		if (pending == 0)
			break;
		if (now_ms() >= deadline) {
			for (int i = 0; i < n; i++) {
				if (rs[i].ok)
					continue;
				log_err("%s (%s) is not listening after %d ms", rs[i].proc->name, rs[i].proc->what,
					READY_TIMEOUT_MS);
				procs_log_tail(lab, rs[i].proc->name);
				if (!rs[i].optional)
					return -ETIMEDOUT;
			}
			break;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	}
	return 0;
}

int procs_start(struct lab *lab)
{
	static struct lab_proc procs[LAB_PROCS_MAX];
	struct ready rs[LAB_PROCS_MAX];
	int n = procs_plan(lab, procs, LAB_PROCS_MAX), nr = 0;

	for (int i = 0; i < n; i++) {
		pid_t pid = proc_start(lab, &procs[i]); /* 0 for the manager: lab_start_manager() */
		if (pid < 0) {
			log_err("cannot start %s (%s)", procs[i].name, procs[i].what);
			return -EIO;
		}
		if (pid > 0)
			ready_fill(lab, &rs[nr++], &procs[i], pid);
	}
	return ready_wait(lab, rs, nr);
}

int procs_wait_ready(struct lab *lab, const struct lab_proc *p, pid_t pid)
{
	struct ready r;

	ready_fill(lab, &r, p, pid);
	return ready_wait(lab, &r, 1);
}
