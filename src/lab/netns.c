/* Network namespaces by name (/run/netns/<name>, as `ip netns` keeps
 * them): sockets opened inside one, and the processes that live in one. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "lab/lab.h"

#define NETNS_RUN "/run/netns"

bool netns_exists(const char *name)
{
	char path[96];

	snprintf(path, sizeof(path), NETNS_RUN "/%s", name);
	return access(path, F_OK) == 0;
}

/* Moves this (single-threaded) process into namespace name; *saved
 * gets our own namespace back for netns_return. */
static int netns_enter(const char *name, int *saved)
{
	char path[96];
	int fd, r = 0;

	snprintf(path, sizeof(path), NETNS_RUN "/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	*saved = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*saved < 0 || setns(fd, CLONE_NEWNET) < 0) {
		r = -errno;
		if (*saved >= 0)
			close(*saved);
		*saved = -1;
	}
	close(fd);
	return r;
}

static void netns_return(int saved)
{
	if (setns(saved, CLONE_NEWNET) < 0) {
		/* Carrying on in the wrong namespace would touch the wrong network. */
		log_err("cannot return to our own network namespace: %s", strerror(errno));
		abort();
	}
	close(saved);
}

int netns_socket(const char *name, int domain, int type)
{
	int saved, fd, r;

	r = netns_enter(name, &saved);
	if (r < 0)
		return r;
	fd = socket(domain, type | SOCK_CLOEXEC, 0);
	r = fd < 0 ? -errno : fd;
	netns_return(saved);
	return r;
}

bool netns_has_addr(const char *name, const char *ifname, uint32_t addr)
{
	struct ifaddrs *list = NULL;
	bool found = false;
	int saved;

	if (netns_enter(name, &saved) < 0)
		return false;
	if (getifaddrs(&list) == 0) {
		for (struct ifaddrs *i = list; i && !found; i = i->ifa_next) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)i->ifa_addr;
			found = sin && sin->sin_family == AF_INET && !strcmp(i->ifa_name, ifname) &&
				ntohl(sin->sin_addr.s_addr) == addr;
		}
		freeifaddrs(list);
	}
	netns_return(saved);
	return found;
}

int netns_sysctl(const char *name, const char *key, char *out, size_t size)
{
	char path[128];
	int saved;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/sys/%s", key);
	for (char *p = path + 10; *p; p++)
		*p = *p == '.' ? '/' : *p;
	if (netns_enter(name, &saved) < 0)
		return -ENOENT;
	n = file_read_small(path, out, size); /* /proc/sys/net follows setns() */
	netns_return(saved);
	if (n < 0)
		return (int)n;
	out[strcspn(out, "\n")] = 0;
	return 0;
}

/* A TCP socket listening on, or a UDP socket bound to, port (any address,
 * IPv4 or IPv6) in the namespace: /proc/self/net follows setns(). */
static bool proc_net_has_port(const char *file, uint16_t port, const char *state)
{
	FILE *fp = fopen(file, "re");
	char line[512];
	bool found = false;

	if (!fp)
		return false;
	while (!found && fgets(line, sizeof(line), fp)) {
		char local[64], remote[64], st[8];
		const char *colon;
		if (sscanf(line, " %*[0-9]: %63s %63s %7s", local, remote, st) != 3)
			continue;
		colon = strrchr(local, ':');
		found = colon && strtoul(colon + 1, NULL, 16) == port && !strcmp(st, state);
	}
	fclose(fp);
	return found;
}

bool netns_listens(const char *name, enum lab_proto proto, uint16_t port)
{
	bool tcp = proto == LAB_TCP, found;
	int saved;

	if (netns_enter(name, &saved) < 0)
		return false;
	found = proc_net_has_port(tcp ? "/proc/self/net/tcp" : "/proc/self/net/udp", port, tcp ? "0A" : "07") ||
		proc_net_has_port(tcp ? "/proc/self/net/tcp6" : "/proc/self/net/udp6", port, tcp ? "0A" : "07");
	netns_return(saved);
	return found;
}

struct ns_id {
	dev_t dev;
	ino_t ino;
};

int proc_each(bool (*match)(pid_t pid, void *arg), void *arg, int sig)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int hits = 0;

	if (!d)
		return 0;
	while ((e = readdir(d))) {
		uint64_t pid;
		if (u64_parse(e->d_name, 0x7fffffff, &pid) < 0 || (pid_t)pid == getpid() || !match((pid_t)pid, arg))
			continue;
		if (sig)
			kill((pid_t)pid, sig);
		hits++;
	}
	closedir(d);
	return hits;
}

struct ns_set {
	const struct ns_id *ids;
	int n;
};

static bool in_netns(pid_t pid, void *arg)
{
	const struct ns_set *set = arg;
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
	if (stat(path, &st) < 0)
		return false;
	for (int i = 0; i < set->n; i++)
		if (st.st_ino == set->ids[i].ino && st.st_dev == set->ids[i].dev)
			return true;
	return false;
}

/* Signals every process whose network namespace is one of ids; returns
 * how many matched. */
static int netns_signal(const struct ns_id *ids, int n, int sig)
{
	struct ns_set set = { ids, n };

	return proc_each(in_netns, &set, sig);
}

/* Waits until no process is left in ids or ms pass; returns how many are left. */
static int netns_wait_empty(const struct ns_id *ids, int n, int ms)
{
	uint64_t deadline = now_ms() + (uint64_t)ms;
	int left;

	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0) /* our own children, after a failed up */
			;
		left = netns_signal(ids, n, 0);
		if (left == 0 || now_ms() >= deadline)
			return left;
		nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000 }, NULL);
	}
}

int netns_kill_all(char names[][LAB_NS_MAX], int n)
{
	struct ns_id ids[LAB_NET_NS + 8];
	int k = 0, hits, left;

	for (int i = 0; i < n && k < (int)ARRAY_SIZE(ids); i++) {
		char path[96];
		struct stat st;
		snprintf(path, sizeof(path), NETNS_RUN "/%s", names[i]);
		if (stat(path, &st) == 0) {
			ids[k].dev = st.st_dev;
			ids[k].ino = st.st_ino;
			k++;
		}
	}
	if (k == 0)
		return 0;
	hits = netns_signal(ids, k, SIGTERM);
	if (hits == 0)
		return 0;
	left = netns_wait_empty(ids, k, 2000);
	if (left > 0) {
		log_warn("%d processes ignored SIGTERM; sending SIGKILL", left);
		netns_signal(ids, k, SIGKILL);
		left = netns_wait_empty(ids, k, 2000);
		if (left > 0)
			log_err("%d processes survive SIGKILL", left);
	}
	return hits;
}
