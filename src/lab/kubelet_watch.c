/* The lab's kubelet as a process (`subway lab kubelet`, on the server
 * node) and `subway lab restart POD`.
 *
 * It watches every container the lab's kubelet runs (kubelet/<key>: the
 * manager's, and the agents `lab inject` adds) through pidfds and
 * restarts each (`podman start`) when it exits, as a Deployment's pod's
 * container is restarted: at once the first time, then after 1, 2, 4 ...
 * 10 s while it keeps dying (a real kubelet starts at 10 s and stops at
 * 5 min: shorter here to keep the tests short), the back-off reset once
 * it has run 30 s.  It runs the liveness probe a container's manifest
 * asks for (a TCP connect) and kills one that fails it failureThreshold
 * times in a row.  SIGHUP restarts the manager's container at once (lab
 * restart); SIGUSR1 reads kubelet/ again (lab inject and uninject: a
 * container whose state file is gone is no longer watched); SIGTERM stops
 * the watcher, not the containers. */
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
#define START_RETRY_MS 200
#define RESTART_WAIT_MS 15000
#define IDLE_MS 60000

/* One watched container. */
struct wctr {
	struct kubelet_state st;
	int pid_fd;
	unsigned backoff_ms, probe_failures, start_tries;
	uint64_t started_ms, next_probe_ms;
	uint64_t start_at_ms; /* a start pending at that time; 0: none */
};

struct watch {
	struct lab *lab;
	int sig_fd;
	struct wctr c[KUBELET_CONTAINERS];
	int n;
	bool stop;
};

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

/* A TCP connect to the pod's port within timeout_s: the tcpSocket probe,
 * from the pod's node, as the kubelet. */
static bool probe_tcp(const struct lab *lab, const struct lab_pod *pod, uint16_t port, unsigned timeout_s)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(lab_pod_ip(pod)) };
	char ns[LAB_NS_MAX];
	int fd, err = 0;

	lab_ns_name(ns, sizeof(ns), lab->name, lab_nodes[pod->node].name);
	fd = netns_socket(ns, AF_INET, SOCK_STREAM | SOCK_NONBLOCK);
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

static void watch_pid(struct wctr *c)
{
	if (c->pid_fd >= 0)
		close(c->pid_fd);
	c->pid_fd = c->st.pid > 0 ? pidfd_open_(c->st.pid) : -1;
	c->started_ms = now_ms();
	c->probe_failures = 0;
	c->next_probe_ms = c->started_ms + (uint64_t)c->st.liveness.initial_delay_s * 1000 +
			   (uint64_t)c->st.liveness.period_s * 1000;
	/* no process to watch: start one */
	c->start_at_ms = c->pid_fd < 0 ? now_ms() : 0;
}

/* Not watched any more: uninject took it away. */
static void drop(struct watch *w, int i)
{
	log_info("container %.12s (%s) is no longer the kubelet's", w->c[i].st.container, w->c[i].st.key);
	if (w->c[i].pid_fd >= 0)
		close(w->c[i].pid_fd);
	memmove(&w->c[i], &w->c[i + 1], sizeof(w->c[0]) * (size_t)(w->n - i - 1));
	w->n--;
}

static void on_exit_(struct watch *w, int i);

/* podman start, retried while podman still cleans up after the exit. */
static void start(struct watch *w, int i)
{
	struct wctr *c = &w->c[i];
	int r = kubelet_start(w->lab, &c->st);

	if (r == -ESRCH) { /* it started, and is gone already */
		c->start_tries = 0;
		c->started_ms = now_ms();
		on_exit_(w, i);
		return;
	}
	if (r == 0) {
		log_info("container %.12s (%s) started again (restart %u), pid %d", c->st.container, c->st.key,
			 c->st.restarts, (int)c->st.pid);
		c->start_tries = 0;
		watch_pid(c);
		return;
	}
	if (r == -ENOENT || kubelet_state_read(w->lab, c->st.key, &(struct kubelet_state){ 0 }) < 0) {
		drop(w, i);
		return;
	}
	if (++c->start_tries < START_TRIES) {
		c->start_at_ms = now_ms() + START_RETRY_MS;
		return;
	}
	log_err("container %.12s (%s) does not start; it stays down", c->st.container, c->st.key);
	c->start_tries = 0;
	c->start_at_ms = 0;
	c->st.pid = 0;
	if (kubelet_state_update(w->lab, &c->st) == -ENOENT)
		drop(w, i);
}

/* The container's process ended: record it, back off, start it again. */
static void on_exit_(struct watch *w, int i)
{
	struct wctr *c = &w->c[i];
	uint64_t ran = now_ms() - c->started_ms;

	if (c->pid_fd >= 0)
		close(c->pid_fd);
	c->pid_fd = -1;
	c->st.restarts++;
	c->st.last_exit = kubelet_exit_code(w->lab, c->st.container); /* not our child: podman's record */
	c->st.pid = 0;
	if (kubelet_state_update(w->lab, &c->st) == -ENOENT) {
		drop(w, i);
		return;
	}
	if (ran >= BACKOFF_RESET_MS)
		c->backoff_ms = 0;
	log_info("container %.12s (%s) exited (%d) after %llu ms; starting it again in %u ms", c->st.container,
		 c->st.key, c->st.last_exit, (unsigned long long)ran, c->backoff_ms);
	c->start_at_ms = now_ms() + c->backoff_ms;
	c->backoff_ms = MIN(MAX(c->backoff_ms * 2, 1000u), (unsigned)BACKOFF_MAX_MS);
}

static void on_probe(struct watch *w, struct wctr *c)
{
	const struct pod_probe *pr = &c->st.liveness;
	const struct lab_pod *pod = lab_pod_find(c->st.pod);

	c->next_probe_ms = now_ms() + (uint64_t)pr->period_s * 1000;
	if (!pod || probe_tcp(w->lab, pod, pr->port, pr->timeout_s)) {
		c->probe_failures = 0;
		return;
	}
	if (++c->probe_failures < pr->failure_threshold)
		return;
	log_warn("liveness probe: %u failures in a row; killing container %.12s (%s)", c->probe_failures,
		 c->st.container, c->st.key);
	if (c->st.pid > 0)
		kill(c->st.pid, SIGKILL);
	c->probe_failures = 0;
}

static int find(const struct watch *w, const char *key)
{
	for (int i = 0; i < w->n; i++)
		if (!strcmp(w->c[i].st.key, key))
			return i;
	return -1;
}

/* kubelet/ again: new containers watched, removed ones dropped. */
static void rescan(struct watch *w)
{
	char keys[KUBELET_CONTAINERS][KUBELET_KEY_MAX];
	int n = kubelet_keys(w->lab, keys, KUBELET_CONTAINERS);

	for (int i = w->n - 1; i >= 0; i--) {
		bool found = false;
		for (int k = 0; k < n; k++)
			found |= !strcmp(keys[k], w->c[i].st.key);
		if (!found)
			drop(w, i);
	}
	for (int k = 0; k < n && w->n < KUBELET_CONTAINERS; k++) {
		struct wctr *c = &w->c[w->n];
		if (find(w, keys[k]) >= 0)
			continue;
		memset(c, 0, sizeof(*c));
		c->pid_fd = -1;
		if (kubelet_state_read(w->lab, keys[k], &c->st) < 0)
			continue;
		log_info("watching container %.12s (%s, pid %d) of pod %s; liveness: %s", c->st.container, c->st.key,
			 (int)c->st.pid, c->st.pod, c->st.liveness.set ? "a TCP probe" : "none");
		w->n++;
		watch_pid(c);
	}
}

static void on_signal(struct watch *w)
{
	struct signalfd_siginfo si;
	int m;

	while (read(w->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			rescan(w);
			continue;
		}
		if (si.ssi_signo != SIGHUP) {
			w->stop = true;
			return;
		}
		m = find(w, lab_pod_by_server(LAB_SRV_MANAGER)->name);
		if (m < 0)
			continue;
		log_info("restart asked (subway lab restart): stopping container %.12s", w->c[m].st.container);
		w->c[m].backoff_ms = 0;
		if (w->c[m].st.pid > 0)
			kill(w->c[m].st.pid, SIGTERM);
	}
}

/* How long poll may wait: until the next start or probe. */
static int next_timeout(const struct watch *w)
{
	uint64_t now = now_ms(), next = now + IDLE_MS;

	for (int i = 0; i < w->n; i++) {
		const struct wctr *c = &w->c[i];
		if (c->start_at_ms)
			next = MIN(next, c->start_at_ms);
		else if (c->st.liveness.set && c->pid_fd >= 0)
			next = MIN(next, c->next_probe_ms);
	}
	return next > now ? (int)(next - now) : 0;
}

static void watch_once(struct watch *w)
{
	struct pollfd p[KUBELET_CONTAINERS + 1] = { { .fd = w->sig_fd, .events = POLLIN } };
	int idx[KUBELET_CONTAINERS + 1], np = 1;

	for (int i = 0; i < w->n; i++)
		if (w->c[i].pid_fd >= 0) {
			p[np] = (struct pollfd){ .fd = w->c[i].pid_fd, .events = POLLIN };
			idx[np++] = i;
		}
	if (poll(p, (nfds_t)np, next_timeout(w)) < 0 && errno != EINTR) {
		w->stop = true;
		return;
	}
	/* exits first, from the last (drop moves what follows) */
	for (int k = np - 1; k >= 1 && !w->stop; k--)
		if (p[k].revents & POLLIN)
			on_exit_(w, idx[k]);
	if (p[0].revents & POLLIN)
		on_signal(w);
	for (int i = w->n - 1; i >= 0 && !w->stop; i--) {
		struct wctr *c = &w->c[i];
		if (c->start_at_ms && now_ms() >= c->start_at_ms)
			start(w, i);
		else if (!c->start_at_ms && c->st.liveness.set && c->pid_fd >= 0 && now_ms() >= c->next_probe_ms)
			on_probe(w, c);
	}
}

int kubelet_main(struct lab *lab)
{
	struct watch w = { .lab = lab, .sig_fd = -1 };
	sigset_t set;

	log_open(NULL, "subway-lab-kubelet");
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	w.sig_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	rescan(&w);
	if (w.n == 0) {
		log_err("no container to watch in %s/kubelet", lab->dir);
		return 1;
	}
	while (!w.stop && w.sig_fd >= 0)
		watch_once(&w);
	log_info("stopping (the containers stay as they are)");
	return 0;
}

/* ---- subway lab restart POD ---- */

static int restart_manager(struct lab *lab)
{
	struct kubelet_state st;
	const char *key = lab_pod_by_server(LAB_SRV_MANAGER)->name;
	pid_t kubelet = lab_pid_read(lab, "kubelet"), old;
	uint64_t deadline = now_ms() + RESTART_WAIT_MS;
	char ns[LAB_NS_MAX];

	if (kubelet_state_read(lab, key, &st) < 0) {
		fprintf(stderr, "subway lab restart: lab %s runs no manager (up --no-manager?)\n", lab->name);
		return 1;
	}
	old = st.pid;
	if (kubelet > 0 && kill(kubelet, SIGHUP) == 0) {
		/* the kubelet stops the container and starts it again */
	} else {
		char names[1][LAB_NS_MAX];
		lab_ns_name(names[0], LAB_NS_MAX, lab->name, key);
		netns_kill_all(names, 1); /* the container, whatever state it is in */
		if (kubelet_spawn_watcher(lab) < 0) { /* it starts a container it finds stopped */
			fprintf(stderr, "subway lab restart: cannot start the lab's kubelet\n");
			return 1;
		}
	}
	lab_ns_name(ns, sizeof(ns), lab->name, key);
	while (now_ms() < deadline) {
		nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000 }, NULL);
		if (kubelet_state_read(lab, key, &st) == 0 && st.pid > 0 && st.pid != old && kill(st.pid, 0) == 0 &&
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
	fprintf(stderr, "subway lab restart: pod %s runs nothing to restart\n", pod);
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
