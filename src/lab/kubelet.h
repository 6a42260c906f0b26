/* The lab's kubelet: runs the manager's pod from the manifests the way a
 * kubelet runs a Deployment's pod (docs/lab.md, "The manager"):
 *
 *   - the image from the lab's registry (docker-registry on the server
 *     node, :5000), pushed there by `up` from build/image/ and pulled
 *     with podman (vfs storage and runc, all under the lab's state dir);
 *   - the container in the pod's network namespace with the manifest's
 *     command, args, env (downward API fields resolved), user, groups,
 *     read-only root, dropped capabilities and no new privileges; the
 *     Secret's keys as files where the manifest mounts them; the pod's
 *     resolv.conf as a kubelet writes it;
 *   - a watcher (`subway lab kubelet`, acting on the server node) that restarts
 *     the container when it exits or fails its liveness probe, with a
 *     back-off, and on `subway lab restart`.
 *
 * State: kubelet/<pod> (key=value lines: container, image, pid,
 * restarts, last_exit, started), containers/ (podman), volumes/<pod>/,
 * registry/, logs/<pod>.log (the container's output, k8s-file format). */
#pragma once
#include <stdbool.h>
#include <sys/types.h>

#include "lab/lab.h"
#include "lab/podspec.h"

#define KUBELET_API_IP LAB_IP(10, 43, 0, 1) /* the "kubernetes" Service, as on k3s */
#define KUBELET_REGISTRY_PORT 5000

struct kubelet_state {
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

/* Pure: podman's options for this lab (its own storage, no network of
 * its own, runc), then `run ...` for the pod spec.  0 or -EINVAL (err:
 * a field the lab cannot honour, runAsNonRoot with uid 0). */
void kubelet_podman_base(const struct lab *lab, struct argvb *a);
int kubelet_run_args(const struct lab *lab, const struct lab_podspec *s, struct argvb *a, char *err,
		     size_t errlen);

/* up: the image into the registry, then the pod; 0 or -errno (logged). */
int kubelet_deploy(struct lab *lab);
/* down: the watcher stopped first (it would restart what down kills),
 * then, once the namespaces' processes are gone, the lab's containers
 * removed and their mounts gone. */
void kubelet_stop_watcher(const struct lab *lab);
void kubelet_teardown(const struct lab *lab);

int kubelet_state_read(const struct lab *lab, struct kubelet_state *st);
int kubelet_state_write(const struct lab *lab, const struct kubelet_state *st);
/* `podman start` of the pod's container; st gets the new pid. */
int kubelet_start(const struct lab *lab, struct kubelet_state *st);

/* What podman recorded as the container's exit status, -1 if unknown. */
int kubelet_exit_code(const struct lab *lab, const char *id);
/* Starts the watcher: `subway lab kubelet --name NAME` on the server node. */
int kubelet_spawn_watcher(struct lab *lab);

/* `subway lab kubelet --name NAME`: the watcher; runs until SIGTERM. */
int kubelet_main(struct lab *lab);
/* `subway lab restart POD`: exit code. */
int lab_restart(struct lab *lab, const char *pod);
