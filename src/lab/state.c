/* The lab's state directory, LAB_STATE_ROOT/<lab>/:
 *   topology      the topology name
 *   namespaces    every namespace the lab created, one per line
 *   ready         written last by a successful `up`
 *   token         the token file for `connect --lab` (0600; secrets.c)
 *   manager/      what the manager pod gets, owned by the user it runs as
 *   www/big, www/big.sha256, pids/<proc>.pid, logs/<proc>.log,
 *   conf/<proc>.conf, nginx/<proc>/
 * and LAB_STATE_ROOT/<lab>.lock, held while up or down runs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "lab/lab.h"

int lab_init(struct lab *lab, const char *name, enum lab_topo topo)
{
	char err[128];
	int r;

	memset(lab, 0, sizeof(*lab));
	lab->lock_fd = -1;
	if (lab_name_check(name, err, sizeof(err)) < 0)
		return -EINVAL;
	snprintf(lab->name, sizeof(lab->name), "%s", name);
	snprintf(lab->dir, sizeof(lab->dir), LAB_STATE_ROOT "/%s", name);
	lab->topo = topo;
	/* A lab that is up without a manager pod has no kubelet state. */
	if (lab_state_exists(name)) {
		char path[96];
		snprintf(path, sizeof(path), "%s/kubelet", lab->dir);
		lab->no_manager = access(path, F_OK) != 0;
	}
	r = lab_net_build(topo, &lab->net);
	if (r < 0)
		log_err("plan for topology %s does not fit the tables: %s", lab_topo_name(topo), strerror(-r));
	return r;
}

int lab_path(const struct lab *lab, char *buf, size_t size, const char *rel)
{
	int n = snprintf(buf, size, "%s/%s", lab->dir, rel);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

void lab_nsname(const struct lab *lab, int ns, char buf[LAB_NS_MAX])
{
	lab_ns_name(buf, LAB_NS_MAX, lab->name, lab->net.ns[ns].suffix);
}

/* Locks LAB_STATE_ROOT/<lab>.lock; retries until wait_ms.  The file is
 * removed by `down`, so after locking check that it is still the file
 * at that path, or someone holds a lock on a deleted inode. */
int lab_lock(struct lab *lab, int wait_ms)
{
	char path[96];
	uint64_t deadline = now_ms() + (uint64_t)wait_ms;
	int r;

	r = mkdir_p(LAB_STATE_ROOT, 0755);
	if (r < 0) {
		log_err("cannot create %s: %s", LAB_STATE_ROOT, strerror(-r));
		return r;
	}
	snprintf(path, sizeof(path), LAB_STATE_ROOT "/%s.lock", lab->name);
	for (;;) {
		struct stat a, b;
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0) {
			log_err("cannot open %s: %s", path, strerror(errno));
			return -errno;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &a) == 0 && stat(path, &b) == 0 &&
		    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
			lab->lock_fd = fd;
			return 0;
		}
		close(fd);
		if (now_ms() >= deadline)
			return -EBUSY;
		nanosleep(&(struct timespec){ .tv_nsec = 50 * 1000000 }, NULL);
	}
}

void lab_unlock(struct lab *lab, bool remove_file)
{
	char path[96];

	if (lab->lock_fd < 0)
		return;
	if (remove_file) {
		snprintf(path, sizeof(path), LAB_STATE_ROOT "/%s.lock", lab->name);
		unlink(path);
	}
	close(lab->lock_fd);
	lab->lock_fd = -1;
}

int lab_state_topology(const char *name, enum lab_topo *out)
{
	char path[96], buf[64];
	ssize_t n;

	snprintf(path, sizeof(path), LAB_STATE_ROOT "/%s/topology", name);
	n = file_read_small(path, buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	buf[strcspn(buf, "\n")] = 0;
	return lab_topo_parse(buf, out);
}

bool lab_state_exists(const char *name)
{
	char path[96];

	snprintf(path, sizeof(path), LAB_STATE_ROOT "/%s", name);
	return access(path, F_OK) == 0;
}

bool lab_is_ready(const struct lab *lab)
{
	char path[96];

	return lab_path(lab, path, sizeof(path), "ready") == 0 && access(path, F_OK) == 0;
}

static int state_write(const struct lab *lab, const char *rel, const char *text, int mode)
{
	char path[128];
	int r = lab_path(lab, path, sizeof(path), rel);

	if (r == 0)
		r = file_write(path, text, strlen(text), mode);
	if (r < 0)
		log_err("cannot write %s/%s: %s", lab->dir, rel, strerror(-r));
	return r;
}

int lab_state_create(struct lab *lab)
{
	static const char *const dirs[] = { "", "/logs", "/pids", "/conf", "/www", "/nginx" };
	char path[128], text[64];

	/* nginx workers run as nobody and read www/big. */
	if (chmod(LAB_STATE_ROOT, 0755) < 0)
		log_warn("chmod %s: %s", LAB_STATE_ROOT, strerror(errno));
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		snprintf(path, sizeof(path), "%s%s", lab->dir, dirs[i]);
		int r = mkdir_p(path, 0755);
		if (r == 0 && chmod(path, 0755) < 0)
			r = -errno;
		if (r < 0) {
			log_err("cannot create %s: %s", path, strerror(-r));
			return r;
		}
	}
	snprintf(text, sizeof(text), "%s\n", lab_topo_name(lab->topo));
	return state_write(lab, "topology", text, 0644);
}

int lab_state_mark_ready(struct lab *lab, double seconds)
{
	char text[96];

	snprintf(text, sizeof(text), "started=%lld\nup_seconds=%.2f\n", (long long)time(NULL), seconds);
	return state_write(lab, "ready", text, 0644);
}

int lab_state_ready_info(const struct lab *lab, char *buf, size_t size)
{
	char path[128];
	ssize_t n;

	if (lab_path(lab, path, sizeof(path), "ready") < 0)
		return -ENAMETOOLONG;
	n = file_read_small(path, buf, size);
	return n < 0 ? (int)n : 0;
}

int lab_record_namespaces(struct lab *lab)
{
	char text[LAB_NET_NS * LAB_NS_MAX + 1] = "", ns[LAB_NS_MAX];
	size_t off = 0;

	for (int i = 0; i < lab->net.nns; i++) {
		lab_nsname(lab, i, ns);
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\n", ns);
	}
	return state_write(lab, "namespaces", text, 0644);
}

static bool file_has_line(const char *path, const char *line)
{
	char buf[LAB_NET_NS * LAB_NS_MAX + 1];
	size_t n = strlen(line);

	if (file_read_small(path, buf, sizeof(buf)) < 0)
		return false;
	for (char *p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, line, n) && (p[n] == '\n' || p[n] == 0))
			return true;
	return false;
}

bool lab_ns_claimed_elsewhere(const char *lab, const char *nsname)
{
	DIR *d = opendir(LAB_STATE_ROOT);
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		char path[300];
		if (e->d_name[0] == '.' || !strcmp(e->d_name, lab))
			continue;
		snprintf(path, sizeof(path), LAB_STATE_ROOT "/%s/namespaces", e->d_name);
		found = file_has_line(path, nsname);
	}
	closedir(d);
	return found;
}

int lab_pid_write(const struct lab *lab, const char *proc, pid_t pid)
{
	char rel[64], text[24];

	snprintf(rel, sizeof(rel), "pids/%s.pid", proc);
	snprintf(text, sizeof(text), "%d\n", (int)pid);
	return state_write(lab, rel, text, 0644);
}

pid_t lab_pid_read(const struct lab *lab, const char *proc)
{
	char rel[64], path[128], buf[24];
	uint64_t v;

	snprintf(rel, sizeof(rel), "pids/%s.pid", proc);
	if (lab_path(lab, path, sizeof(path), rel) < 0 || file_read_small(path, buf, sizeof(buf)) < 0)
		return 0;
	buf[strcspn(buf, "\n")] = 0;
	return u64_parse(buf, 0x7fffffff, &v) == 0 ? (pid_t)v : 0;
}

int lab_manager_endpoint(const struct lab *lab, char *buf, size_t size)
{
	char a[16];
	int n = snprintf(buf, size, "%s:%u", ip4_str(lab_topo_info(lab->topo)->node_ip[0], a),
			 LAB_MANAGER_NODE_PORT);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if ((flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 && errno != ENOENT) {
		log_err("cannot remove %s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int rm_rf(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -EIO;
}
