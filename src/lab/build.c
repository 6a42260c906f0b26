/* Building the lab's network with iproute2, sysctl and nft.  Every link
 * is created from inside a lab namespace (`ip -n NS link add ... peer
 * ... netns OTHER`), so nothing ever appears in the root namespace. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/run.h"
#include "common/util.h"
#include "lab/lab.h"
#include "lab/render.h"

int build_namespaces(struct lab *lab)
{
	char *argv[] = { "ip", "-batch", "-", NULL };
	struct text t;
	char ns[LAB_NS_MAX];
	int r;

	text_init(&t);
	for (int i = 0; i < lab->net.nns; i++) {
		lab_nsname(lab, i, ns);
		text_printf(&t, "netns add %s\n", ns);
	}
	r = text_error(&t);
	if (r == 0)
		r = run_cmd_input(argv, text_str(&t)) == 0 ? 0 : -EIO;
	text_free(&t);
	/* Recorded even after a failure: what exists is ours (up checked
	 * that none of these names existed). */
	if (lab_record_namespaces(lab) < 0 && r == 0)
		r = -EIO;
	return r;
}

int build_links(struct lab *lab)
{
	struct text t;
	char ns[LAB_NS_MAX];
	int r = 0;

	text_init(&t);
	for (int i = 0; i < lab->net.nns && r == 0; i++) {
		char *argv[] = { "ip", "-n", ns, "-batch", "-", NULL };
		lab_nsname(lab, i, ns);
		text_reset(&t);
		render_ip_batch(&t, &lab->net, lab->name, i);
		r = text_error(&t);
		if (r == 0 && run_cmd_input(argv, text_str(&t)) != 0)
			r = -EIO;
	}
	text_free(&t);
	return r;
}

int build_sysctls(struct lab *lab)
{
	char ns[LAB_NS_MAX];

	for (int i = 0; i < lab->net.nns; i++) {
		const char *kv[8];
		char *argv[20] = { "ip", "netns", "exec", ns, "sysctl", "-q", "-w" };
		int n = render_sysctls(&lab->net, i, kv, (int)ARRAY_SIZE(kv));
		if (n == 0)
			continue;
		lab_nsname(lab, i, ns);
		for (int k = 0; k < n; k++)
			argv[7 + k] = (char *)kv[k];
		argv[7 + n] = NULL;
		if (run_cmd(argv) != 0)
			return -EIO;
	}
	return 0;
}

int build_nft(struct lab *lab)
{
	struct text t;
	char ns[LAB_NS_MAX];
	int r = 0;

	text_init(&t);
	for (int i = 0; i < lab->net.nns && r == 0; i++) {
		char *argv[] = { "ip", "netns", "exec", ns, "nft", "-f", "-", NULL };
		text_reset(&t);
		render_nft(&t, &lab->net, i);
		r = text_error(&t);
		if (r < 0 || t.len == 0)
			continue;
		lab_nsname(lab, i, ns);
		if (run_cmd_input(argv, text_str(&t)) != 0)
			r = -EIO;
	}
	text_free(&t);
	return r;
}

/* `ip netns exec NS` bind-mounts /etc/netns/NS/resolv.conf over
 * /etc/resolv.conf: each namespace gets its own resolver. */
int build_resolv_confs(struct lab *lab)
{
	struct text t;
	char ns[LAB_NS_MAX], path[128];
	int r = 0;

	text_init(&t);
	for (int i = 0; i < lab->net.nns && r == 0; i++) {
		lab_nsname(lab, i, ns);
		snprintf(path, sizeof(path), LAB_NETNS_ETC "/%s", ns);
		r = mkdir_p(path, 0755);
		if (r < 0) {
			log_err("cannot create %s: %s", path, strerror(-r));
			break;
		}
		text_reset(&t);
		render_resolv_conf(&t, &lab->net, i);
		strncat(path, "/resolv.conf", sizeof(path) - strlen(path) - 1);
		r = text_error(&t);
		if (r == 0)
			r = file_write(path, text_str(&t), t.len, 0644);
		if (r < 0)
			log_err("cannot write %s: %s", path, strerror(-r));
	}
	text_free(&t);
	return r;
}

/* Deletes the namespaces that exist (their links go with them) and their
 * /etc/netns directories. */
int build_delete_namespaces(char names[][LAB_NS_MAX], int n)
{
	char *argv[] = { "ip", "-force", "-batch", "-", NULL };
	struct text t;
	int r = 0, k = 0;

	text_init(&t);
	for (int i = 0; i < n; i++) {
		if (netns_exists(names[i])) {
			text_printf(&t, "netns del %s\n", names[i]);
			k++;
		}
	}
	if (k > 0 && (text_error(&t) < 0 || run_cmd_input(argv, text_str(&t)) != 0))
		r = -EIO;
	text_free(&t);
	for (int i = 0; i < n; i++) {
		char path[128];
		snprintf(path, sizeof(path), LAB_NETNS_ETC "/%s", names[i]);
		if (rm_rf(path) < 0)
			r = -EIO;
	}
	return r;
}
