/* The lab's kubelet: the manager's pod from the manifests (kubelet.h). */
#include "lab/kubelet.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "common/jval.h"
#include "common/log.h"
#include "common/run.h"
#include "common/util.h"

#define NPROC_LIMIT 4096 /* RLIMIT_NPROC cannot be raised here: stay below */
#define PODMAN_TIMEOUT_MS 60000

void argvb_add(struct argvb *a, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (a->n + 1 >= (int)ARRAY_SIZE(a->v) || a->used >= sizeof(a->store)) {
		a->overflow = true;
		return;
	}
	va_start(ap, fmt);
	n = vsnprintf(a->store + a->used, sizeof(a->store) - a->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(a->store) - a->used) {
		a->overflow = true;
		return;
	}
	a->v[a->n++] = a->store + a->used;
	a->v[a->n] = NULL;
	a->used += (size_t)n + 1;
}

static const struct lab_pod *manager_pod(void)
{
	return lab_pod_by_server(LAB_SRV_MANAGER);
}

void kubelet_key(char *buf, size_t size, const struct lab_pod *pod, const char *container)
{
	int n = pod->server == LAB_SRV_MANAGER ? snprintf(buf, size, "%s", pod->name)
					       : snprintf(buf, size, "%s.%.24s", pod->name, container);
	(void)n; /* pod names are short, container names cut */
}

void kubelet_podman_base(const struct lab *lab, struct argvb *a)
{
	argvb_add(a, "podman");
	argvb_add(a, "--storage-driver=vfs");
	argvb_add(a, "--root=%s/containers/root", lab->dir);
	argvb_add(a, "--runroot=%s/containers/run", lab->dir);
	argvb_add(a, "--tmpdir=%s/containers/tmp", lab->dir);
	argvb_add(a, "--volumepath=%s/containers/volumes", lab->dir);
	argvb_add(a, "--hooks-dir=%s/containers/hooks", lab->dir);
	argvb_add(a, "--events-backend=none");
	argvb_add(a, "--cgroup-manager=cgroupfs");
	argvb_add(a, "--runtime=runc");
	argvb_add(a, "--log-level=error");
}

/* A downward API field, as the kubelet resolves it. */
static int field_value(const struct lab *lab, const struct lab_pod *p, const struct lab_podspec *s,
		       const char *field, char *out, size_t size)
{
	char a[16];

	if (!strcmp(field, "metadata.name"))
		snprintf(out, size, "%s", p->name);
	else if (!strcmp(field, "metadata.namespace"))
		snprintf(out, size, "%s", s->ns[0] ? s->ns : p->ns);
	else if (!strcmp(field, "status.podIP"))
		snprintf(out, size, "%s", ip4_str(lab_pod_ip(p), a));
	else if (!strcmp(field, "status.hostIP"))
		snprintf(out, size, "%s", ip4_str(lab_topo_info(lab->topo)->node_ip[p->node], a));
	else if (!strcmp(field, "spec.nodeName"))
		snprintf(out, size, "%s", lab_nodes[p->node].name);
	else
		return -EINVAL;
	return 0;
}

/* The value of NAME among the first n entries resolved (the last one
 * of that name), or NULL. */
static const char *env_lookup(char (*vals)[POD_STR * 2], const struct lab_podspec *s, int n, const char *name,
			      size_t len)
{
	for (int i = n - 1; i >= 0; i--)
		if (strlen(s->env[i].name) == len && !strncmp(s->env[i].name, name, len))
			return vals[i];
	return NULL;
}

/* A value with $(VAR) references expanded as the kubelet does: to an
 * earlier entry's value, or left as written when there is none; "$$"
 * is a '$'.  (The kubelet also knows the service variables; the lab
 * makes none: its pods set enableServiceLinks: false.) */
static void env_expand(const char *in, char (*vals)[POD_STR * 2], const struct lab_podspec *s, int n, char *out,
		       size_t size)
{
	size_t o = 0;

	for (const char *p = in; *p && o + 1 < size;) {
		const char *close = p[0] == '$' && p[1] == '(' ? strchr(p + 2, ')') : NULL;
		const char *v = close ? env_lookup(vals, s, n, p + 2, (size_t)(close - p - 2)) : NULL;
		if (p[0] == '$' && p[1] == '$') {
			out[o++] = '$';
			p += 2;
		} else if (v) {
			o += (size_t)snprintf(out + o, size - o, "%s", v);
			o = MIN(o, size - 1);
			p = close + 1;
		} else {
			out[o++] = *p++;
		}
	}
	out[o] = 0;
}

int kubelet_env(const struct lab *lab, const struct lab_pod *pod, const struct lab_podspec *s, const char *prefix,
		struct argvb *a, char *err, size_t errlen)
{
	static char vals[POD_ENV][POD_STR * 2];
	char ip[16];

	/* Every container gets the API service's address (enableServiceLinks
	 * only drops the other services' variables). */
	argvb_add(a, "%sKUBERNETES_SERVICE_HOST=%s", prefix, ip4_str(KUBELET_API_IP, ip));
	argvb_add(a, "%sKUBERNETES_SERVICE_PORT=443", prefix);
	for (int i = 0; i < s->nenv; i++) {
		const struct pod_env *e = &s->env[i];
		if (e->field[0] && field_value(lab, pod, s, e->field, vals[i], sizeof(vals[i])) < 0) {
			snprintf(err, errlen, "env %s: the lab does not know fieldRef %s", e->name, e->field);
			return -EINVAL;
		}
		if (!e->field[0])
			env_expand(e->value, vals, s, i, vals[i], sizeof(vals[i]));
		argvb_add(a, "%s%s=%s", prefix, e->name, vals[i]);
	}
	return 0;
}

/* The security context, as podman options. */
static int run_security(const struct lab_podspec *s, struct argvb *a, char *err, size_t errlen)
{
	struct rlimit nofile = { 0 }, nproc = { 0 };

	if (s->non_root && (!s->has_user || s->user == 0)) {
		snprintf(err, errlen, "runAsNonRoot without a runAsUser other than 0: the kubelet refuses it too");
		return -EINVAL;
	}
	if (s->has_user)
		argvb_add(a, "--user=%u:%u", s->user, s->has_group ? s->group : s->user);
	if (s->has_fs_group)
		argvb_add(a, "--group-add=%u", s->fs_group);
	if (s->read_only_root) {
		argvb_add(a, "--read-only");
		argvb_add(a, "--read-only-tmpfs=false");
	}
	if (s->drop_all)
		argvb_add(a, "--cap-drop=all");
	for (int i = 0; i < s->ncaps_add; i++)
		argvb_add(a, "--cap-add=%s", s->caps_add[i]);
	if (s->no_privilege_escalation)
		argvb_add(a, "--security-opt=no-new-privileges");
	/* seccomp RuntimeDefault is podman's default profile.  Ping sockets
	 * for every group, as containerd sets in a pod (podman would set
	 * "0 0" in the pod's namespace). */
	argvb_add(a, "--sysctl=net.ipv4.ping_group_range=0 2147483647");
	getrlimit(RLIMIT_NOFILE, &nofile);
	getrlimit(RLIMIT_NPROC, &nproc);
	argvb_add(a, "--ulimit=nofile=%llu:%llu", (unsigned long long)nofile.rlim_max,
		  (unsigned long long)nofile.rlim_max);
	argvb_add(a, "--ulimit=nproc=%llu:%llu", (unsigned long long)MIN(nproc.rlim_max, NPROC_LIMIT),
		  (unsigned long long)MIN(nproc.rlim_max, NPROC_LIMIT));
	return 0;
}

/* With `lab up --insecure` the manager runs without TLS: the manifest's
 * TLS options make way for --insecure (the one change the lab makes). */
static bool tls_option(const char *arg)
{
	return !strcmp(arg, "--cert") || !strcmp(arg, "--key") || !strcmp(arg, "--tls-dir");
}

static void run_command(const struct lab *lab, bool manager, const struct lab_podspec *s, struct argvb *a)
{
	char ep[POD_STR * POD_COMMAND + 8] = "[";
	size_t off = 1;

	for (int i = 0; i < s->ncommand; i++)
		off += (size_t)snprintf(ep + off, sizeof(ep) - off, "%s\"%s\"", i ? "," : "", s->command[i]);
	if (s->ncommand) {
		snprintf(ep + off, sizeof(ep) - off, "]");
		argvb_add(a, "--entrypoint=%s", ep);
	}
	argvb_add(a, "%s", s->image);
	for (int i = 0; i < s->nargs; i++) {
		if (manager && lab->insecure && tls_option(s->args[i])) {
			i++;
			continue;
		}
		argvb_add(a, "%s", s->args[i]);
	}
	if (manager && lab->insecure)
		argvb_add(a, "--insecure");
}

int kubelet_run_args(const struct lab *lab, const struct lab_pod *p, const char *key, const struct lab_podspec *s,
		     struct argvb *a, char *err, size_t errlen)
{
	int r;

	for (int i = 0; i < s->ncommand; i++)
		if (strchr(s->command[i], '"') || strchr(s->command[i], '\\')) {
			snprintf(err, errlen, "command %s: quotes are not supported here", s->command[i]);
			return -EINVAL;
		}
	kubelet_podman_base(lab, a);
	argvb_add(a, "run");
	argvb_add(a, "--detach");
	argvb_add(a, "--pull=never");
	argvb_add(a, "--name=%s-%s", lab->name, key);
	argvb_add(a, "--hostname=%s", p->name);
	argvb_add(a, "--network=ns:/run/netns/%s-%s", lab->name, p->name);
	argvb_add(a, "--log-driver=k8s-file");
	argvb_add(a, "--log-opt=path=%s/logs/%s.log", lab->dir, key);
	argvb_add(a, "--volume=" LAB_NETNS_ETC "/%s-%s/resolv.conf:/etc/resolv.conf:ro", lab->name, p->name);
	/* podman's own defaults that a kubelet does not set (it keeps PATH, HOSTNAME) */
	argvb_add(a, "--unsetenv=TERM");
	argvb_add(a, "--unsetenv=container");
	for (int i = 0; i < s->nvolumes; i++)
		if (s->volumes[i].mount[0])
			argvb_add(a, "--volume=%s/volumes/%s/%s:%s%s", lab->dir, p->name, s->volumes[i].name,
				  s->volumes[i].mount, s->volumes[i].read_only ? ":ro" : "");
	r = run_security(s, a, err, errlen);
	if (r == 0)
		r = kubelet_env(lab, p, s, "--env=", a, err, errlen);
	if (r == 0)
		run_command(lab, p->server == LAB_SRV_MANAGER, s, a);
	if (r == 0 && a->overflow) {
		snprintf(err, errlen, "the podman command line does not fit (a bug)");
		r = -E2BIG;
	}
	return r;
}

/* ---- running things in the lab ---- */

/* argv (podman ...) in namespace <lab>-<ns>, or here with ns NULL; out
 * gets its output.  podman runs and starts containers from here: `ip
 * netns exec` remounts /sys, where podman then finds no cgroups; the
 * container's network is the pod's anyway (--network ns:...). */
static int ns_run(const struct lab *lab, const char *ns, const struct argvb *cmd, char *out, size_t size,
		  bool quiet)
{
	char name[LAB_NS_MAX];
	struct argvb a = { .n = 0 };
	struct run_opts o = { .out = out, .out_size = size, .quiet = quiet, .timeout_ms = PODMAN_TIMEOUT_MS };

	if (!ns)
		return run_argv(cmd->v, &o);
	lab_ns_name(name, sizeof(name), lab->name, ns);
	argvb_add(&a, "ip");
	argvb_add(&a, "netns");
	argvb_add(&a, "exec");
	argvb_add(&a, "%s", name);
	for (int i = 0; i < cmd->n; i++)
		argvb_add(&a, "%s", cmd->v[i]);
	return a.overflow ? -E2BIG : run_argv(a.v, &o);
}

static void trim_nl(char *s)
{
	s[strcspn(s, "\r\n")] = 0;
}

/* The container's first process, from podman. */
static pid_t container_pid(const struct lab *lab, const char *id)
{
	struct argvb a = { .n = 0 };
	char out[64] = "";
	uint64_t v;

	kubelet_podman_base(lab, &a);
	argvb_add(&a, "inspect");
	argvb_add(&a, "--format={{.State.Pid}}");
	argvb_add(&a, "%s", id);
	if (ns_run(lab, NULL, &a, out, sizeof(out), true) != 0)
		return 0;
	trim_nl(out);
	return u64_parse(out, 0x7fffffff, &v) == 0 ? (pid_t)v : 0;
}

int kubelet_exit_code(const struct lab *lab, const char *id)
{
	struct argvb a = { .n = 0 };
	char out[64] = "";

	kubelet_podman_base(lab, &a);
	argvb_add(&a, "inspect");
	argvb_add(&a, "--format={{.State.ExitCode}}");
	argvb_add(&a, "%s", id);
	if (ns_run(lab, NULL, &a, out, sizeof(out), true) != 0)
		return -1;
	return atoi(out);
}

/* ---- state ---- */

static void state_path(const struct lab *lab, const char *key, char *buf, size_t size)
{
	char rel[64];

	snprintf(rel, sizeof(rel), "kubelet/%s", key);
	lab_path(lab, buf, size, rel);
}

/* Writes st; replace: only over a state file that is still there
 * (-ENOENT when the container was taken away meanwhile). */
static int state_write(const struct lab *lab, const struct kubelet_state *st, bool replace)
{
	char path[128], tmp[140], text[900];
	int r;

	lab_path(lab, path, sizeof(path), "kubelet");
	mkdir_p(path, 0755);
	state_path(lab, st->key, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	snprintf(text, sizeof(text), "pod=%s\ncontainer=%s\nimage=%s\npid=%d\nrestarts=%u\nlast_exit=%d\n"
		 "started=%lld\nuser=%s\nliveness=%d,%u,%u,%u,%u,%u\n", st->pod, st->container, st->image,
		 (int)st->pid, st->restarts, st->last_exit, st->started, st->user, st->liveness.set,
		 st->liveness.port, st->liveness.initial_delay_s, st->liveness.period_s, st->liveness.timeout_s,
		 st->liveness.failure_threshold);
	r = file_write(tmp, text, strlen(text), 0644);
	if (r == 0)
		r = lab_pid_write(lab, st->key, st->pid);
	/* An exchange fails when uninject removed the file: never recreated. */
	if (r == 0 && (replace ? renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) : rename(tmp, path)) < 0)
		r = -errno;
	if (replace || r < 0)
		unlink(tmp);
	if (r == -ENOENT) {
		char rel[80];
		snprintf(rel, sizeof(rel), "pids/%s.pid", st->key);
		lab_path(lab, path, sizeof(path), rel);
		unlink(path);
	}
	return r;
}

int kubelet_state_write(const struct lab *lab, const struct kubelet_state *st)
{
	return state_write(lab, st, false);
}

int kubelet_state_update(const struct lab *lab, const struct kubelet_state *st)
{
	return state_write(lab, st, true);
}

static void state_field(const char *text, const char *key, char *out, size_t size)
{
	const char *p = text;
	size_t n = strlen(key);

	out[0] = 0;
	for (; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, key, n) && p[n] == '=') {
			snprintf(out, size, "%.*s", (int)strcspn(p + n + 1, "\n"), p + n + 1);
			return;
		}
	}
}

int kubelet_state_read(const struct lab *lab, const char *key, struct kubelet_state *st)
{
	char path[128], text[900], v[64];
	ssize_t n;
	int set = 0;

	memset(st, 0, sizeof(*st));
	st->last_exit = -1;
	snprintf(st->key, sizeof(st->key), "%s", key);
	state_path(lab, key, path, sizeof(path));
	n = file_read_small(path, text, sizeof(text));
	if (n < 0)
		return (int)n;
	state_field(text, "pod", st->pod, sizeof(st->pod));
	state_field(text, "container", st->container, sizeof(st->container));
	state_field(text, "image", st->image, sizeof(st->image));
	state_field(text, "pid", v, sizeof(v));
	st->pid = (pid_t)atoi(v);
	state_field(text, "restarts", v, sizeof(v));
	st->restarts = (unsigned)atoi(v);
	state_field(text, "last_exit", v, sizeof(v));
	st->last_exit = v[0] ? atoi(v) : -1;
	state_field(text, "started", v, sizeof(v));
	st->started = atoll(v);
	state_field(text, "user", st->user, sizeof(st->user));
	state_field(text, "liveness", v, sizeof(v));
	if (sscanf(v, "%d,%hu,%u,%u,%u,%u", &set, &st->liveness.port, &st->liveness.initial_delay_s,
		   &st->liveness.period_s, &st->liveness.timeout_s, &st->liveness.failure_threshold) == 6)
		st->liveness.set = set && st->liveness.port && st->liveness.period_s && st->liveness.failure_threshold;
	return 0;
}

int kubelet_start(const struct lab *lab, struct kubelet_state *st)
{
	struct argvb a = { .n = 0 };
	char out[512] = "";
	int r;

	kubelet_podman_base(lab, &a);
	argvb_add(&a, "start");
	argvb_add(&a, "%s", st->container);
	r = ns_run(lab, NULL, &a, out, sizeof(out), true);
	if (r != 0) {
		trim_nl(out);
		log_err("podman start %.12s: %s", st->container, out);
		return -EIO;
	}
	st->pid = container_pid(lab, st->container);
	st->started = (long long)time(NULL);
	return st->pid > 0 ? kubelet_state_update(lab, st) : -ESRCH;
}

/* ---- the pod's volumes: the Secret's keys as files ---- */

/* volumes/<pod>/<volume>/<path>: owned by root and the pod's fsGroup,
 * mode defaultMode, as the kubelet writes a secret volume. */
static int write_item(const char *dir, const struct pod_volume *v, const char *rel, const struct pod_secret *e,
		      gid_t gid)
{
	char path[512], parent[512];
	int fd, r = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(parent, sizeof(parent), "%s", path);
	*strrchr(parent, '/') = 0;
	if (strstr(rel, "..") || rel[0] == '/' || mkdir_p(parent, 0755) < 0)
		return -EINVAL;
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || write(fd, e->value, e->len) != (ssize_t)e->len || fchown(fd, 0, gid) < 0 ||
	    fchmod(fd, (mode_t)(v->mode & 07777)) < 0)
		r = -(errno ? errno : EIO);
	if (fd >= 0)
		close(fd);
	return r;
}

static int write_volumes(const struct lab *lab, const struct lab_pod *pod, const struct lab_podspec *s)
{
	char dir[256];
	gid_t gid = s->has_fs_group ? s->fs_group : 0;

	for (int i = 0; i < s->nvolumes; i++) {
		const struct pod_volume *v = &s->volumes[i];
		snprintf(dir, sizeof(dir), "%s/volumes/%s/%s", lab->dir, pod->name, v->name);
		for (int k = 0; k < v->nitems; k++) {
			const struct pod_secret *e = podspec_secret(s, v->items[k].key);
			if (!e) {
				log_err("volume %s: the Secret %s has no key %s", v->name, v->secret, v->items[k].key);
				return -ENOENT;
			}
			if (write_item(dir, v, v->items[k].path, e, gid) < 0) {
				log_err("volume %s: cannot write %s", v->name, v->items[k].path);
				return -EIO;
			}
		}
	}
	return 0;
}

/* ---- up and down ---- */

/* build/image/subway-<version>.oci.tar beside this binary (make image). */
static int image_archive(char *path, size_t size)
{
	char self[PATH_MAX - 64];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -errno;
	self[n] = 0;
	*strrchr(self, '/') = 0;
	if ((size_t)snprintf(path, size, "%s/image/subway-%s.oci.tar", self, SUBWAY_VERSION) >= size)
		return -ENAMETOOLONG;
	if (access(path, R_OK) < 0) {
		log_err("no manager image at %s: run 'make image' (it needs podman: make deps), or 'lab up "
			"--no-manager'", path);
		return -ENOENT;
	}
	return 0;
}

/* The registry an image reference names ("host:port/..." or "a.b/..."),
 * or NULL for a bare one; *path the rest. */
static const char *image_registry(const char *ref, char *host, size_t size, const char **path)
{
	const char *slash = strchr(ref, '/');
	size_t n = slash ? (size_t)(slash - ref) : 0;

	*path = ref;
	if (!slash || n >= size || (!memchr(ref, ':', n) && !memchr(ref, '.', n) && strncmp(ref, "localhost/", 10)))
		return NULL;
	snprintf(host, size, "%.*s", (int)n, ref);
	*path = slash + 1;
	return host;
}

/* The image into the lab's registry, as a developer pushes to the seed's
 * multi:5000 (from the server node: every topology reaches it there). */
static int push_image(const struct lab *lab, const char *archive, const char *path)
{
	struct argvb a = { .n = 0 };
	char out[1024] = "";

	argvb_add(&a, "skopeo");
	argvb_add(&a, "copy");
	argvb_add(&a, "--quiet");
	argvb_add(&a, "--dest-tls-verify=false");
	argvb_add(&a, "oci-archive:%s", archive);
	argvb_add(&a, "docker://127.0.0.1:%d/%s", KUBELET_REGISTRY_PORT, path);
	if (ns_run(lab, "server", &a, out, sizeof(out), true) != 0) {
		trim_nl(out);
		log_err("cannot push the image to the lab's registry: %s", out);
		return -EIO;
	}
	return 0;
}

/* A bare reference (subway:0.1.0): the image loaded into the node's store
 * and named so, as `k3s ctr images import` does; IfNotPresent finds it. */
static int load_image(const struct lab *lab, const char *archive, const char *ref)
{
	struct argvb a = { .n = 0 };
	char out[1024] = "", *name;

	kubelet_podman_base(lab, &a);
	argvb_add(&a, "load");
	argvb_add(&a, "--quiet");
	argvb_add(&a, "--input=%s", archive);
	if (ns_run(lab, NULL, &a, out, sizeof(out), true) != 0 || !(name = strstr(out, "Loaded image: "))) {
		trim_nl(out);
		log_err("cannot load %s: %s", archive, out);
		return -EIO;
	}
	name += 14;
	trim_nl(name);
	memset(&a, 0, sizeof(a));
	kubelet_podman_base(lab, &a);
	argvb_add(&a, "tag");
	argvb_add(&a, "%s", name);
	argvb_add(&a, "%s", ref);
	return ns_run(lab, NULL, &a, out, sizeof(out), false) == 0 ? 0 : -EIO;
}

/* The image where the pod spec says it is: the lab's registry (pushed
 * there, then pulled on the node) or the node itself. */
static int place_image(const struct lab *lab, const struct lab_podspec *s, bool *pull)
{
	char archive[PATH_MAX], host[64], want[64], a[16];
	const char *path;

	if (image_archive(archive, sizeof(archive)) < 0)
		return -ENOENT;
	*pull = image_registry(s->image, host, sizeof(host), &path) != NULL;
	if (!*pull)
		return load_image(lab, archive, s->image);
	snprintf(want, sizeof(want), "%s:%d", ip4_str(lab_topo_info(lab->topo)->node_ip[0], a), KUBELET_REGISTRY_PORT);
	if (strcmp(host, want)) {
		log_err("image %s: the lab has its own registry only (%s), or images loaded on the node "
			"(subway:%s)", s->image, want, SUBWAY_VERSION);
		return -EINVAL;
	}
	return push_image(lab, archive, path);
}

/* Pull as the node's kubelet would (through the node's network). */
static int pull_image(const struct lab *lab, const char *image)
{
	struct argvb a = { .n = 0 };
	char out[1024] = "";

	kubelet_podman_base(lab, &a);
	argvb_add(&a, "pull");
	argvb_add(&a, "--quiet");
	argvb_add(&a, "--tls-verify=false");
	argvb_add(&a, "%s", image);
	if (ns_run(lab, "server", &a, out, sizeof(out), true) != 0) {
		trim_nl(out);
		log_err("cannot pull %s: %s", image, out);
		return -EIO;
	}
	return 0;
}

/* Creates and starts the container. */
static int run_pod(const struct lab *lab, const struct lab_pod *pod, const struct lab_podspec *s,
		   struct kubelet_state *st)
{
	struct argvb *a = calloc(1, sizeof(*a));
	char out[1024] = "", err[256];
	int r = a ? 0 : -ENOMEM;

	kubelet_key(st->key, sizeof(st->key), pod, s->container);
	snprintf(st->pod, sizeof(st->pod), "%s", pod->name);
	if (r == 0 && (r = kubelet_run_args(lab, pod, st->key, s, a, err, sizeof(err))) < 0)
		log_err("the pod spec of %s: %s", st->key, err);
	if (r == 0 && ns_run(lab, NULL, a, out, sizeof(out), true) != 0) {
		trim_nl(out);
		log_err("podman run %s: %s", st->key, out);
		r = -EIO;
	}
	free(a);
	if (r < 0)
		return r;
	/* the id is the last line (podman may warn before it) */
	trim_nl(out + (strlen(out) > 1 ? strlen(out) - 1 : 0));
	snprintf(st->container, sizeof(st->container), "%s",
		 strrchr(out, '\n') ? strrchr(out, '\n') + 1 : out);
	snprintf(st->image, sizeof(st->image), "%s", s->image);
	snprintf(st->user, sizeof(st->user), "%u:%u", s->user, s->has_group ? s->group : s->user);
	st->liveness = s->liveness;
	st->pid = container_pid(lab, st->container);
	st->started = (long long)time(NULL);
	st->last_exit = -1;
	return kubelet_state_write(lab, st);
}

/* The watcher runs in the machine's namespaces, as podman must (see
 * ns_run); it probes the pod from a socket made in the server node. */
int kubelet_spawn_watcher(struct lab *lab)
{
	char self[PATH_MAX], log[128];
	char *cmd[] = { self, "lab", "kubelet", "--name", lab->name, NULL };
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	pid_t pid;

	if (n <= 0)
		return -EIO;
	self[n] = 0;
	lab_path(lab, log, sizeof(log), "logs/kubelet.log");
	pid = run_spawn(cmd, log);
	if (pid <= 0)
		return -EIO;
	return lab_pid_write(lab, "kubelet", pid);
}

/* The watcher's pid, if that process is still this lab's kubelet. */
static pid_t watcher_pid(const struct lab *lab)
{
	char path[64], cmd[256], want[64];
	pid_t pid = lab_pid_read(lab, "kubelet");
	ssize_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	n = file_read_small(path, cmd, sizeof(cmd));
	for (ssize_t i = 0; i < n; i++)
		cmd[i] = cmd[i] ? cmd[i] : ' ';
	snprintf(want, sizeof(want), " lab kubelet --name %s ", lab->name);
	return n > 0 && strstr(cmd, want) ? pid : 0;
}

void kubelet_rescan(const struct lab *lab)
{
	pid_t pid = watcher_pid(lab);

	if (pid > 0)
		kill(pid, SIGUSR1);
}

void kubelet_stop_watcher(const struct lab *lab)
{
	pid_t pid = watcher_pid(lab);
	uint64_t deadline = now_ms() + 2000;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	while (kill(pid, 0) == 0 && now_ms() < deadline) {
		waitpid(pid, NULL, WNOHANG);
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	}
	if (kill(pid, 0) == 0)
		kill(pid, SIGKILL);
}

static int wait_ready(const struct lab *lab, const struct lab_podspec *s, const struct kubelet_state *st)
{
	char ns[LAB_NS_MAX];
	uint64_t deadline = now_ms() + 10000;

	lab_ns_name(ns, sizeof(ns), lab->name, manager_pod()->name);
	while (now_ms() < deadline && s->port) {
		if (netns_listens(ns, LAB_TCP, s->port))
			return 0;
		if (st->pid <= 0 || kill(st->pid, 0) < 0)
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 10 * 1000000 }, NULL);
	}
	log_err("the manager's container did not listen on :%u", s->port);
	procs_log_tail(lab, manager_pod()->name);
	return -ETIMEDOUT;
}

/* podman needs the cgroup hierarchy: `ip netns exec` hides it (it mounts
 * a sysfs of its own). */
static int check_cgroups(void)
{
	DIR *d = opendir("/sys/fs/cgroup");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	if (n > 0)
		return 0;
	log_err("no cgroups under /sys/fs/cgroup here, which podman needs: run 'subway lab up' in the machine's "
		"mount namespace (not under 'ip netns exec'), or with --no-manager");
	return -ENOENT;
}

/* podman's precreate hook (kubelet.h): containers/hooks/subway-caps.json. */
static int write_hook(const struct lab *lab)
{
	char self[PATH_MAX], path[128], text[PATH_MAX + 256];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -EIO;
	self[n] = 0;
	lab_path(lab, path, sizeof(path), "containers/hooks");
	if (mkdir_p(path, 0755) < 0)
		return -EIO;
	snprintf(text, sizeof(text), "{\"version\": \"1.0.0\", \"hook\": {\"path\": \"%s\", \"args\": "
		 "[\"subway\", \"lab\", \"oci-hook\"]}, \"when\": {\"always\": true}, \"stages\": "
		 "[\"precreate\"]}\n", self);
	lab_path(lab, path, sizeof(path), "containers/hooks/subway-caps.json");
	return file_write(path, text, strlen(text), 0644);
}

int kubelet_deploy(struct lab *lab)
{
	struct lab_podspec *s = calloc(1, sizeof(*s));
	struct kubelet_state st = { .last_exit = -1 };
	char path[128], err[512];
	bool pull = false;
	int r = s ? 0 : -ENOMEM;

	lab_path(lab, path, sizeof(path), "install/subway.yaml");
	if (r == 0)
		r = check_cgroups();
	if (r == 0 && (r = podspec_load(path, s, err, sizeof(err))) < 0)
		log_err("%s", err);
	if (r == 0 && !s->port) {
		log_err("%s: the manager's container has no containerPort", path);
		r = -EINVAL;
	}
	if (r == 0 && (r = write_hook(lab)) < 0)
		log_err("cannot write podman's hook in %s/containers/hooks", lab->dir);
	if (r == 0)
		r = write_volumes(lab, manager_pod(), s);
	if (r == 0)
		r = place_image(lab, s, &pull);
	if (r == 0 && pull)
		r = pull_image(lab, s->image);
	if (r == 0)
		r = run_pod(lab, manager_pod(), s, &st);
	if (r == 0)
		r = wait_ready(lab, s, &st);
	if (r == 0)
		r = kubelet_spawn_watcher(lab);
	if (s)
		explicit_bzero(s, sizeof(*s));
	free(s);
	return r;
}

int kubelet_run_container(const struct lab *lab, const struct lab_pod *pod, const struct lab_podspec *s)
{
	struct kubelet_state st = { .last_exit = -1 };
	int r = write_volumes(lab, pod, s);

	if (r == 0)
		r = run_pod(lab, pod, s, &st);
	return r;
}

void kubelet_remove_container(const struct lab *lab, const char *key)
{
	struct kubelet_state st;
	struct argvb a = { .n = 0 };
	char path[128], rel[80], out[512];

	if (kubelet_state_read(lab, key, &st) < 0)
		return;
	state_path(lab, key, path, sizeof(path));
	unlink(path); /* first: the watcher lets the container be from now on */
	kubelet_podman_base(lab, &a);
	argvb_add(&a, "rm");
	argvb_add(&a, "--force");
	argvb_add(&a, "--time=0");
	argvb_add(&a, "%s", st.container);
	if (ns_run(lab, NULL, &a, out, sizeof(out), true) != 0) {
		trim_nl(out);
		log_warn("podman rm %.12s (%s): %s", st.container, key, out);
	}
	snprintf(rel, sizeof(rel), "pids/%s.pid", key);
	lab_path(lab, path, sizeof(path), rel);
	unlink(path);
}

int kubelet_keys(const struct lab *lab, char keys[][KUBELET_KEY_MAX], int max)
{
	char path[128];
	DIR *d;
	struct dirent *e;
	int n = 0;

	lab_path(lab, path, sizeof(path), "kubelet");
	d = opendir(path);
	while (d && (e = readdir(d)) && n < max) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len >= KUBELET_KEY_MAX || (len > 4 && !strcmp(e->d_name + len - 4, ".tmp")))
			continue;
		snprintf(keys[n++], KUBELET_KEY_MAX, "%s", e->d_name);
	}
	if (d)
		closedir(d);
	/* the manager first, then by name */
	for (int i = 1; i < n; i++)
		for (int k = i; k > 0; k--) {
			bool m = !strcmp(keys[k], manager_pod()->name);
			if (!m && (!strcmp(keys[k - 1], manager_pod()->name) || strcmp(keys[k - 1], keys[k]) < 0))
				break;
			char t[KUBELET_KEY_MAX];
			memcpy(t, keys[k], sizeof(t));
			memcpy(keys[k], keys[k - 1], sizeof(t));
			memcpy(keys[k - 1], t, sizeof(t));
		}
	return n;
}

/* ---- podman's precreate hook ---- */

int kubelet_oci_caps(struct jval *config)
{
	struct jval *uid = jval_ptr(config, "/process/user/uid"), *caps = jval_ptr(config, "/process/capabilities");

	if (!uid || uid->type != JV_NUMBER || (caps && caps->type != JV_OBJECT))
		return -EINVAL;
	if (!strcmp(uid->s, "0") || !caps)
		return 0;
	/* containerd and CRI-O: no ambient (nor inheritable) capabilities, so
	 * that a non-root process keeps none across its execve */
	if (jval_set(caps, "ambient", jval_new(JV_ARRAY)) < 0 || jval_set(caps, "inheritable", jval_new(JV_ARRAY)) < 0)
		return -ENOMEM;
	return 0;
}

int kubelet_oci_hook(void)
{
	static char in[1 << 20];
	char err[160], *out = NULL;
	size_t n = 0;
	ssize_t r;
	struct jval *config;

	while (n < sizeof(in) && (r = read(0, in + n, sizeof(in) - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			fprintf(stderr, "subway lab oci-hook: cannot read the configuration: %s\n", strerror(errno));
			return 1;
		}
		n += (size_t)r;
	}
	config = jval_parse(in, n, err, sizeof(err));
	if (!config || kubelet_oci_caps(config) < 0 || !(out = jval_encode(config, 0, &n))) {
		fprintf(stderr, "subway lab oci-hook: not an OCI configuration%s%s\n", config ? "" : ": ", config ? "" : err);
		jval_free(config);
		return 1;
	}
	r = fwrite(out, 1, n, stdout) == n && fflush(stdout) == 0 ? 0 : 1;
	free(out);
	jval_free(config);
	return (int)r;
}

/* Mounts podman left under the lab's directory (a container killed
 * with its conmon), deepest first. */
static void umount_under(const char *dir)
{
	char line[1024], mnt[512], found[16][512];
	size_t n = strlen(dir);
	int k = 0;
	FILE *fp = fopen("/proc/self/mountinfo", "re");

	while (fp && k < 16 && fgets(line, sizeof(line), fp))
		if (sscanf(line, "%*s %*s %*s %*s %511s", mnt) == 1 && !strncmp(mnt, dir, n) && mnt[n] == '/')
			snprintf(found[k++], sizeof(found[0]), "%s", mnt);
	if (fp)
		fclose(fp);
	while (k-- > 0)
		if (umount2(found[k], MNT_DETACH) < 0)
			log_warn("cannot unmount %s: %s", found[k], strerror(errno));
}

/* A process whose command line holds text: the conmon of a removed
 * container outlives `podman rm` for a moment. */
static bool mentions(pid_t pid, void *text)
{
	char path[64], cmd[4096];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	if ((n = file_read_small(path, cmd, sizeof(cmd))) <= 0)
		return false;
	for (ssize_t i = 0; i < n - 1; i++)
		if (!cmd[i])
			cmd[i] = ' ';
	return strstr(cmd, text) != NULL;
}

void kubelet_teardown(const struct lab *lab)
{
	struct argvb a = { .n = 0 };
	char path[128], out[512];
	struct run_opts o = { .out = out, .out_size = sizeof(out), .quiet = true, .timeout_ms = PODMAN_TIMEOUT_MS };

	lab_path(lab, path, sizeof(path), "containers");
	if (access(path, F_OK) == 0) {
		kubelet_podman_base(lab, &a);
		argvb_add(&a, "rm");
		argvb_add(&a, "--force");
		argvb_add(&a, "--all");
		argvb_add(&a, "--time=0");
		if (run_argv(a.v, &o) != 0)
			log_warn("podman rm: %s", out);
		/* their conmons, which go by themselves within moments */
		uint64_t deadline = now_ms() + 2000;
		strcat(path, "/");
		while (proc_each(mentions, path, 0) > 0 && now_ms() < deadline)
			nanosleep(&(struct timespec){ .tv_nsec = 20 * 1000000 }, NULL);
		if (proc_each(mentions, path, SIGKILL) > 0)
			log_warn("killed what podman left running for the lab's containers");
	}
	umount_under(lab->dir);
}
