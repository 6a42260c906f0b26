/* `lab up` and `lab down`: the order of things, and cleaning up after an
 * up that failed or died halfway. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "lab/kubelet.h"
#include "lab/lab.h"

#define DOWN_LOCK_WAIT_MS 30000

static void progress(const struct lab *lab, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void progress(const struct lab *lab, const char *fmt, ...)
{
	va_list ap;

	printf("lab %s: ", lab->name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* Every namespace this lab may own: each suffix any topology uses, minus
 * the names another lab's records claim. */
static int lab_ns_candidates(const struct lab *lab, char names[][LAB_NS_MAX], int max)
{
	int n = 0;

	for (int i = 0; lab_all_suffixes[i] && n < max; i++) {
		if (lab_ns_name(names[n], LAB_NS_MAX, lab->name, lab_all_suffixes[i]) < 0)
			continue;
		if (!lab_ns_claimed_elsewhere(lab->name, names[n]))
			n++;
	}
	return n;
}

static bool lab_has_leftovers(const struct lab *lab)
{
	char names[LAB_NET_NS + 4][LAB_NS_MAX];
	int n = lab_ns_candidates(lab, names, LAB_NET_NS + 4);

	for (int i = 0; i < n; i++)
		if (netns_exists(names[i]))
			return true;
	return lab_state_exists(lab->name);
}

/* Processes first (they pin namespaces), then namespaces, then files. */
static int lab_teardown(struct lab *lab)
{
	char names[LAB_NET_NS + 4][LAB_NS_MAX];
	int n = lab_ns_candidates(lab, names, LAB_NET_NS + 4), r = 0;

	kubelet_stop_watcher(lab);
	netns_kill_all(names, n);
	kubelet_teardown(lab);
	if (build_delete_namespaces(names, n) < 0)
		r = -EIO;
	if (rm_rf(lab->dir) < 0)
		r = -EIO;
	return r;
}

/* A planned namespace that exists and another lab recorded is not ours. */
static int lab_check_conflicts(const struct lab *lab)
{
	char ns[LAB_NS_MAX];

	for (int i = 0; i < lab->net.nns; i++) {
		lab_nsname(lab, i, ns);
		if (netns_exists(ns) && lab_ns_claimed_elsewhere(lab->name, ns)) {
			fprintf(stderr, "subway lab up: namespace %s belongs to another lab; pick another name\n", ns);
			return -EEXIST;
		}
	}
	return 0;
}

static int up_steps(struct lab *lab)
{
	char www[96], sha[65];
	int r;

	r = lab_state_create(lab);
	if (r == 0) {
		progress(lab, "%d namespaces with their sysctls, links, addresses and routes", lab->net.nns);
		r = build_namespaces(lab);
	}
	/* Sysctls first: links made after them start from these defaults,
	 * never from what the machine's own namespace has. */
	if (r == 0)
		r = build_sysctls(lab);
	if (r == 0)
		r = build_links(lab);
	if (r == 0) {
		progress(lab, "kube-proxy and masquerade rules, resolv.conf per namespace");
		r = build_nft(lab);
	}
	if (r == 0)
		r = build_resolv_confs(lab);
	if (r == 0) {
		progress(lab, "servers: cluster DNS, web, echo, udp-echo, iperf, the internet's resolver%s%s",
			 lab_topo_info(lab->topo)->slirp ? ", slirp4netns" : "",
			 lab->no_manager ? "" : ", the registry");
		lab_path(lab, www, sizeof(www), "www/big");
		r = big_ensure(www, sha);
	}
	if (r == 0)
		r = lab_secrets_write(lab);
	if (r == 0)
		r = procs_start(lab);
	if (r == 0 && !lab->no_manager) {
		progress(lab, "the manager: subway install, the image into the registry, the pod (podman)");
		r = kubelet_deploy(lab);
	}
	return r;
}

int lab_up(struct lab *lab)
{
	uint64_t t0 = now_us();
	double secs;
	int r;

	if (lab_lock(lab, 0) < 0) {
		fprintf(stderr, "subway lab up: lab %s is busy: another 'subway lab up' or 'down' is running\n",
			lab->name);
		return 1;
	}
	if (lab_is_ready(lab)) {
		enum lab_topo t = lab->topo;
		lab_state_topology(lab->name, &t);
		fprintf(stderr, "subway lab up: lab %s is already up (topology %s); 'subway lab down --name %s' "
				"removes it\n", lab->name, lab_topo_name(t), lab->name);
		lab_unlock(lab, false);
		return 1;
	}
	if (lab_check_conflicts(lab) < 0) {
		lab_unlock(lab, false);
		return 1;
	}
	if (lab_has_leftovers(lab)) {
		progress(lab, "removing what an earlier, unfinished 'up' left");
		lab_teardown(lab);
	}
	r = up_steps(lab);
	if (r < 0) {
		fprintf(stderr, "subway lab up: lab %s did not come up (see the errors above); removing what was "
				"built\n", lab->name);
		lab_teardown(lab);
		lab_unlock(lab, true);
		return 1;
	}
	secs = (double)(now_us() - t0) / 1e6;
	lab_state_mark_ready(lab, secs);
	lab_unlock(lab, false);
	printf("lab %s is up (topology %s) in %.1f s\n", lab->name, lab_topo_name(lab->topo), secs);
	return 0;
}

int lab_down(struct lab *lab)
{
	bool existed;
	int r;

	if (lab_lock(lab, DOWN_LOCK_WAIT_MS) < 0) {
		fprintf(stderr, "subway lab down: lab %s is busy: another 'subway lab up' or 'down' is running\n",
			lab->name);
		return 1;
	}
	existed = lab_has_leftovers(lab);
	r = existed ? lab_teardown(lab) : 0;
	lab_unlock(lab, true);
	if (r < 0) {
		fprintf(stderr, "subway lab down: lab %s: some things could not be removed (see above)\n", lab->name);
		return 1;
	}
	printf(existed ? "lab %s is down\n" : "lab %s is not up; nothing to remove\n", lab->name);
	return 0;
}
