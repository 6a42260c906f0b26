/* The lab's kubelet as a process (`subway lab kubelet`, on the server
 * node) and `subway lab restart POD`.
 *
 * It watches the manager's container through a pidfd and restarts it
 * (`podman start`) when it exits, as a Deployment's pod is restarted:
 * at once the first time, then after 1, 2, 4 ... 10 s while it keeps
 * dying (a real kubelet starts at 10 s and stops at 5 min: shorter here
 * to keep the tests short), the back-off reset once it has run 30 s.  It
 * runs the liveness probe the manifest asks for (a TCP connect) and kills
 * a container that fails it failureThreshold times in a row.  SIGHUP
 * restarts the container at once (lab restart); SIGTERM stops the
 * watcher, not the container. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "lab/kubelet.h"

#define BACKOFF_MAX_MS 10000
#define BACKOFF_RESET_MS 30000
#define START_TRIES 20
#define RESTART_WAIT_MS 15000

struct watch {
	struct lab *lab;
	struct kubelet_state st;
	int sig_fd, pid_fd;
	unsigned backoff_ms, probe_failures;
	uint64_t started_ms, next_probe_ms;
	bool stop;
};

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* A TCP connect to the pod's port within timeout_s: the tcpSocket probe. */
static bool probe_tcp(const struct lab *lab, uint32_t addr, uint16_t port, unsigned timeout_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(addr) };
	char ns[LAB_NS_MAX];
	int fd, err = 0;

	lab_ns_name(ns, sizeof(ns), lab->name, lab_nodes[lab_pod_by_server(LAB_SRV_MANAGER)->node].name);
	fd = netns_socket(ns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK); /* from the node, as the kubelet */
	struct pollfd p = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(err);
	bool ok = false;

	if (fd < 0)
		return false;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		ok = true;
	else if (errno == EINPROGRESS && poll(&p, 1, (int)MAX(timeout_s, 1u) * 1000) == 1 &&
		 getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
		ok = true;
	close(fd);
	return ok;
}

static void watch_pid(struct watch *w)
{
	if (w->pid_fd >= 0)
		close(w->pid_fd);
	w->pid_fd = w->st.pid > 0 ? pidfd_open_(w->st.pid) : -1;
	w->started_ms = now_ms();
	w->probe_failures = 0;
	w->next_probe_ms = w->started_ms + (uint64_t)w->st.liveness.initial_delay_s * 1000 +
			   (uint64_t)w->st.liveness.period_s * 1000;
}

/* podman start, retried while podman still cleans up after the exit. */
static void restart(struct watch *w)
{
	for (int i = 0; i < START_TRIES && !w->stop; i++) {
		if (kubelet_start(w->lab, &w->st) == 0) {
			log_info("container %.12s started again (restart %u), pid %d", w->st.container, w->st.restarts,
				 (int)w->st.pid);
			watch_pid(w);
			return;
		}
		nanosleep(&(struct timespec){ .tv_nsec = 200 * 1000000 }, NULL);
	}
	log_err("container %.12s does not start; the pod stays down", w->st.container);
	w->st.pid = 0;
	kubelet_state_write(w->lab, &w->st);
	watch_pid(w);
}

/* Sleeps ms unless a signal comes (SIGTERM stops, SIGHUP cuts it short). */
static void wait_signal(struct watch *w, unsigned ms)
{
	struct pollfd p = { .fd = w->sig_fd, .events = POLLIN };
	struct signalfd_siginfo si;

	if (ms == 0 || poll(&p, 1, (int)ms) != 1 || read(w->sig_fd, &si, sizeof(si)) != sizeof(si))
		return;
	if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)
		w->stop = true;
}

/* The container's process ended: record it, back off, start it again. */
static void on_exit_(struct watch *w, int status)
{
	uint64_t ran = now_ms() - w->started_ms;

	w->st.restarts++;
	w->st.last_exit = status;
	w->st.pid = 0;
	kubelet_state_write(w->lab, &w->st);
	if (ran >= BACKOFF_RESET_MS)
		w->backoff_ms = 0;
	log_info("container %.12s exited (%d) after %llu ms; starting it again in %u ms", w->st.container, status,
		 (unsigned long long)ran, w->backoff_ms);
	wait_signal(w, w->backoff_ms);
	w->backoff_ms = MIN(MAX(w->backoff_ms * 2, 1000u), (unsigned)BACKOFF_MAX_MS);
	if (!w->stop)
		restart(w);
}

static void on_probe(struct watch *w)
{
	const struct pod_probe *pr = &w->st.liveness;
	uint32_t ip = lab_pod_ip(lab_pod_by_server(LAB_SRV_MANAGER));

	w->next_probe_ms = now_ms() + (uint64_t)pr->period_s * 1000;
	if (probe_tcp(w->lab, ip, pr->port, pr->timeout_s)) {
		w->probe_failures = 0;
		return;
	}
	if (++w->probe_failures < pr->failure_threshold)
		return;
	log_warn("liveness probe: %u failures in a row; killing container %.12s", w->probe_failures,
		 w->st.container);
	if (w->st.pid > 0)
		kill(w->st.pid, SIGKILL);
	w->probe_failures = 0;
}

static void on_signal(struct watch *w)
{
	struct signalfd_siginfo si;

	while (read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo != SIGHUP) {
			w->stop = true;
			return;
		}
		log_info("restart asked (subway lab restart): stopping container %.12s", w->st.container);
		w->backoff_ms = 0;
		if (w->st.pid > 0)
			kill(w->st.pid, SIGTERM);
	}
}

static void watch_once(struct watch *w)
{
	struct pollfd p[2] = { { .fd = w->sig_fd, .events = POLLIN }, { .fd = w->pid_fd, .events = POLLIN } };
	uint64_t now = now_ms();
	int timeout = w->st.liveness.set ? (int)MIN(w->next_probe_ms > now ? w->next_probe_ms - now : 0, 60000u)
					 : 60000;

	if (w->pid_fd < 0) { /* no process to watch: start one */
		on_exit_(w, -1);
		return;
	}
	if (poll(p, 2, timeout) < 0 && errno != EINTR)
		w->stop = true;
	if (p[0].revents & POLLIN)
		on_signal(w);
	if (!w->stop && (p[1].revents & POLLIN)) {
		/* Not our child: the exit status comes from podman's record. */
		on_exit_(w, kubelet_exit_code(w->lab, w->st.container));
	} else if (!w->stop && w->st.liveness.set && now_ms() >= w->next_probe_ms) {
		on_probe(w);
	}
}

int kubelet_main(struct lab *lab)
{
	struct watch w = { .lab = lab, .sig_fd = -1, .pid_fd = -1 };
	sigset_t set;

	log_open(NULL, "subway-lab-kubelet");
	if (kubelet_state_read(lab, &w.st) < 0) {
		log_err("no pod to watch in %s/kubelet", lab->dir);
		return 1;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	w.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	log_info("watching container %.12s (pid %d) of pod %s; liveness: %s", w.st.container, (int)w.st.pid,
		 lab_pod_by_server(LAB_SRV_MANAGER)->name, w.st.liveness.set ? "a TCP probe" : "none");
	watch_pid(&w);
	while (!w.stop && w.sig_fd >= 0)
		watch_once(&w);
	log_info("stopping (the container stays as it is)");
	return 0;
}

/* ---- subway lab restart POD ---- */

static int restart_manager(struct lab *lab)
{
	struct kubelet_state st;
	pid_t kubelet = lab_pid_read(lab, "kubelet"), old;
	uint64_t deadline = now_ms() + RESTART_WAIT_MS;
	char ns[LAB_NS_MAX];

	if (kubelet_state_read(lab, &st) < 0) {
		fprintf(stderr, "subway lab restart: lab %s runs no manager (up --no-manager?)\n", lab->name);
		return 1;
	}
	old = st.pid;
	if (kubelet > 0 && kill(kubelet, SIGHUP) == 0) {
		/* the kubelet stops the container and starts it again */
	} else {
		char names[1][LAB_NS_MAX];
		lab_ns_name(names[0], LAB_NS_MAX, lab->name, lab_pod_by_server(LAB_SRV_MANAGER)->name);
		netns_kill_all(names, 1); /* the container, whatever state it is in */
		if (kubelet_spawn_watcher(lab) < 0) { /* it starts a container it finds stopped */
			fprintf(stderr, "subway lab restart: cannot start the lab's kubelet\n");
			return 1;
		}
	}
	lab_ns_name(ns, sizeof(ns), lab->name, lab_pod_by_server(LAB_SRV_MANAGER)->name);
	while (now_ms() < deadline) {
		nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000 }, NULL);
		if (kubelet_state_read(lab, &st) == 0 && st.pid > 0 && st.pid != old && kill(st.pid, 0) == 0 &&
		    netns_listens(ns, LAB_TCP, LAB_MANAGER_PORT))
			return 0;
	}
	fprintf(stderr, "subway lab restart: the manager did not come back within %d s (see %s/logs)\n",
		RESTART_WAIT_MS / 1000, lab->dir);
	return 1;
}

/* Any other pod: its processes killed, its server started again. */
static int restart_server(struct lab *lab, const char *pod)
{
	struct lab_proc procs[LAB_PROCS_MAX];
	char names[1][LAB_NS_MAX];
	int n = procs_plan(lab, procs, LAB_PROCS_MAX);

	lab_ns_name(names[0], LAB_NS_MAX, lab->name, pod);
	for (int i = 0; i < n; i++) {
		pid_t pid;
		if (procs[i].kind != PROC_POD || strcmp(procs[i].name, pod))
			continue;
		netns_kill_all(names, 1);
		pid = proc_start(lab, &procs[i]);
		if (pid <= 0 || procs_wait_ready(lab, &procs[i], pid) < 0) {
			fprintf(stderr, "subway lab restart: %s did not come back (see %s/logs/%s.log)\n", pod,
				lab->dir, pod);
			return 1;
		}
		return 0;
	}
	return 1;
}

int lab_restart(struct lab *lab, const char *pod)
{
	const struct lab_pod *p = lab_pod_find(pod);
	uint64_t t0 = now_ms();
	int r;

	if (!p) {
		fprintf(stderr, "subway lab restart: no pod '%.40s' (kube-dns-0, manager-0, web-0, echo-0, web-1, "
				"udp-echo-0, iperf-0)\n", pod);
		return 2;
	}
	if (!lab_is_ready(lab)) {
		fprintf(stderr, "subway lab restart: lab %s is not up\n", lab->name);
		return 1;
	}
	if (lab_lock(lab, 30000) < 0) {
		fprintf(stderr, "subway lab restart: lab %s is busy (an up or down is running)\n", lab->name);
		return 1;
	}
	r = p->server == LAB_SRV_MANAGER ? restart_manager(lab) : restart_server(lab, pod);
	lab_unlock(lab, false);
	if (r == 0)
		printf("pod %s restarted in %.1f s\n", pod, (double)(now_ms() - t0) / 1000);
	return r;
}
