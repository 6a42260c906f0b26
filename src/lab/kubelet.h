/* The lab's kubelet: runs pods' containers from the manifests the way a
 * kubelet runs a Deployment's pods (docs/lab.md, "The manager", "Agents"):
 * the manager's pod from deploy/subway.yaml, and the agent container of
 * each pod of a workload `lab inject` patched.
 *
 *   - the image from the lab's registry (docker-registry on the server
 *     node, :5000), pushed there by `up` from build/image/ and pulled
 *     with podman (vfs storage and runc, all under the lab's state dir);
 *   - the container in the pod's network namespace with the manifest's
 *     command, args, env (downward API fields and $(VAR) references
 *     resolved), user, groups, read-only root, capabilities and no new
 *     privileges; the Secret's keys as files where the manifest mounts
 *     them; the pod's resolv.conf as a kubelet writes it;
 *   - added capabilities as containerd and CRI-O give them: a non-root
 *     container has them in its bounding set only (no ambient ones:
 *     podman's precreate hook, `subway lab oci-hook`, takes out what
 *     podman alone would give);
 *   - a watcher (`subway lab kubelet`, acting on the server node) that
 *     restarts each container when it exits (or the manager's when it
 *     fails its liveness probe), with a back-off, and on `subway lab
 *     restart`.
 *
 * State, per container (its key: the pod's name for the manager's,
 * "<pod>.<container>" for a sidecar): kubelet/<key> (key=value lines:
 * pod, container, image, pid, restarts, last_exit, started, user),
 * pids/<key>.pid, logs/<key>.log (the container's output, k8s-file
 * format); and containers/ (podman), volumes/<pod>/<volume>/, registry/. */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "lab/lab.h"
#include "lab/podspec.h"

#define KUBELET_API_IP LAB_IP(10, 43, 0, 1) /* the "kubernetes" Service, as on k3s */
#define KUBELET_REGISTRY_PORT 5000
#define KUBELET_KEY_MAX 48
#define KUBELET_CONTAINERS 8 /* containers the kubelet runs at once */

struct kubelet_state {
	char key[KUBELET_KEY_MAX];
	char pod[24];       /* the pod it runs in */
	char container[80]; /* podman's id */
	char image[POD_STR];
	pid_t pid;          /* the container's first process; 0: not running */
	unsigned restarts;
	int last_exit;      /* -1: none yet */
	long long started;  /* unix time of the last start */
	char user[32];      /* "uid:gid" the container runs as */
	struct pod_probe liveness; /* from the pod spec: the watcher needs nothing else */
};

/* argv being built: pointers into store. */
struct argvb {
	char *v[128];
	int n;
	char store[16384];
	size_t used;
	bool overflow;
};
void argvb_add(struct argvb *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "manager-0" for a pod's main container, "web-0.subway-agent" for a sidecar. */
void kubelet_key(char *buf, size_t size, const struct lab_pod *pod, const char *container);

/* Pure: podman's options for this lab (its own storage and hooks, no
 * network of its own, runc), then `run ...` for container key of pod
 * from spec s.  0 or -EINVAL (err: a field the lab cannot honour,
 * runAsNonRoot with uid 0). */
void kubelet_podman_base(const struct lab *lab, struct argvb *a);
int kubelet_run_args(const struct lab *lab, const struct lab_pod *pod, const char *key, const struct lab_podspec *s,
		     struct argvb *a, char *err, size_t errlen);
/* Pure: the env entries resolved as a kubelet does (downward API fields
 * of pod, $(VAR) references to earlier entries, $$ for '$'), plus the
 * variables every container gets, as "NAME=VALUE" into a.  0 or -EINVAL. */
int kubelet_env(const struct lab *lab, const struct lab_pod *pod, const struct lab_podspec *s, const char *prefix,
		struct argvb *a, char *err, size_t errlen);

/* up: the image into the registry, then the manager's pod; 0 or -errno (logged). */
int kubelet_deploy(struct lab *lab);
/* A pod's container from its spec: its Secret volumes written, the
 * container run, its state recorded (kubelet_rescan tells the watcher).
 * 0 or -errno (logged). */
int kubelet_run_container(const struct lab *lab, const struct lab_pod *pod, const struct lab_podspec *s);
/* The container of key taken away: its state first (the watcher lets it
 * be from then on), then the container and its pid file (its volumes
 * are the caller's). */
void kubelet_remove_container(const struct lab *lab, const char *key);
/* The watcher reads kubelet/ again (SIGUSR1). */
void kubelet_rescan(const struct lab *lab);
/* down: the watcher stopped first (it would restart what down kills),
 * then, once the namespaces' processes are gone, the lab's containers
 * removed and their mounts gone. */
void kubelet_stop_watcher(const struct lab *lab);
void kubelet_teardown(const struct lab *lab);

int kubelet_state_read(const struct lab *lab, const char *key, struct kubelet_state *st);
/* A new container's state; and a change to one (-ENOENT, nothing
 * written, when its state file was removed meanwhile: it is gone). */
int kubelet_state_write(const struct lab *lab, const struct kubelet_state *st);
int kubelet_state_update(const struct lab *lab, const struct kubelet_state *st);
/* The keys of the containers the kubelet runs, manager first; how many. */
int kubelet_keys(const struct lab *lab, char keys[][KUBELET_KEY_MAX], int max);
/* `podman start` of the container; st gets the new pid (its state
 * updated: -ENOENT when it was taken away). */
int kubelet_start(const struct lab *lab, struct kubelet_state *st);

/* What podman recorded as the container's exit status, -1 if unknown. */
int kubelet_exit_code(const struct lab *lab, const char *id);
/* Starts the watcher: `subway lab kubelet --name NAME` on the server node. */
int kubelet_spawn_watcher(struct lab *lab);

/* `subway lab kubelet --name NAME`: the watcher; runs until SIGTERM. */
int kubelet_main(struct lab *lab);
/* `subway lab restart POD`: exit code. */
int lab_restart(struct lab *lab, const char *pod);
/* `subway lab oci-hook`: podman's precreate hook (stdin: the container's
 * OCI configuration; stdout: the same, a non-root process's ambient and
 * inheritable capabilities emptied).  Exit code. */
int kubelet_oci_hook(void);
/* Pure: that change to an OCI configuration (common/jval.h); 0 or -EINVAL. */
struct jval;
int kubelet_oci_caps(struct jval *config);
