/* The commands `subway install` and `subway uninstall` (docs/install.md):
 * arguments, messages and the user's kubectl.  Options are matched
 * exactly; a bad one prints one line and exits 2. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/install.h"
#include "cli/manifest.h"
#include "commands.h"
#include "common/run.h"

#define KUBECTL_OUT 8192

struct install_args {
	const char *out, *context, *kubeconfig;
	bool apply, help;
	struct install_values v;
};

static void install_usage(FILE *fp)
{
	fprintf(fp,
		"usage: subway install --out DIR [--manager-address IP]... [--image REF] [--node-port N]\n"
		"                      [--pod-cidr CIDR]... [--service-cidr CIDR]...\n"
		"                      [--apply [--context NAME] [--kubeconfig FILE]]\n"
		"\n"
		"Writes DIR/subway.yaml, the manifests of subway's manager (namespace subway) with a\n"
		"new token, TLS key and certificate in its Secret, and DIR/token, the token file for\n"
		"'subway connect --token-file DIR/token'.  Both are secret: mode 0600, never printed.\n"
		"\n"
		"  --out DIR               where to write (created 0700 if missing)\n"
		"  --manager-address IP    a node's address: laptops reach the manager on its node\n"
		"                          port (the first goes in the token file); repeatable\n"
		"  --image REF             the manager's image (default subway:%s)\n"
		"  --node-port N           the Service's node port, 30000-32767 (default 30443)\n"
		"  --pod-cidr CIDR         the cluster's pod network (repeatable); default: the\n"
		"                          manager derives it from its pod's IP\n"
		"  --service-cidr CIDR     the service network (repeatable); default: derived from\n"
		"                          KUBERNETES_SERVICE_HOST in the pod\n"
		"  --apply                 then pipe the manifests to 'kubectl apply -f -'\n"
		"  --context NAME, --kubeconfig FILE   passed to kubectl\n",
		SUBWAY_VERSION);
}

static void uninstall_usage(FILE *fp)
{
	fprintf(fp, "usage: subway uninstall [--context NAME] [--kubeconfig FILE]\n\n"
		    "Deletes what 'subway install --apply' created (the namespace subway and everything\n"
		    "in it) with 'kubectl delete --ignore-not-found -f -'.\n");
}

static int arg_bad(const char *cmd, const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "subway %s: %s: %s '%.80s' (try 'subway %s --help')\n", cmd, opt, why, val, cmd);
	return 2;
}

static int arg_unknown(const char *cmd, const char *arg)
{
	fprintf(stderr, "subway %s: %s '%.80s' (try 'subway %s --help')\n", cmd,
		arg[0] == '-' ? "unknown option" : "unexpected argument", arg, cmd);
	return 2;
}

/* A CIDR list option, repeatable and comma-separated. */
static int add_cidrs(const char *opt, const char *val, struct cidr_list *l)
{
	struct cidr_list more;

	if (cidr_list_parse(val, &more) < 0)
		return arg_bad("install", opt, val, "not a CIDR (a.b.c.d/n, host bits clear):");
	if (l->n + more.n > CIDR_LIST_MAX)
		return arg_bad("install", opt, val, "more than 16 CIDRs with");
	memcpy(&l->v[l->n], more.v, (size_t)more.n * sizeof(more.v[0]));
	l->n += more.n;
	return 0;
}

static int add_addrs(const char *val, struct install_values *v)
{
	char buf[INSTALL_ADDRS_MAX * 16 + 16], *save = NULL;

	if (strlen(val) >= sizeof(buf))
		return arg_bad("install", "--manager-address", val, "too long:");
	snprintf(buf, sizeof(buf), "%s", val);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (v->n_addrs == INSTALL_ADDRS_MAX)
			return arg_bad("install", "--manager-address", val, "more than 16 addresses with");
		if (ip4_parse(t, &v->addrs[v->n_addrs]) < 0 || !v->addrs[v->n_addrs])
			return arg_bad("install", "--manager-address", t, "not an IPv4 address:");
		v->n_addrs++;
	}
	return 0;
}

static int opt_value(const char *cmd, int argc, char **argv, int *i, const char **out)
{
	const char *eq = strchr(argv[*i], '=');

	if (eq) {
		*out = eq + 1;
		return 0;
	}
	if (*i + 1 >= argc) {
		fprintf(stderr, "subway %s: option '%s' needs a value\n", cmd, argv[*i]);
		return 2;
	}
	*out = argv[++*i];
	return 0;
}

static bool is_opt(const char *arg, const char *opt)
{
	size_t n = strlen(opt);
	return !strncmp(arg, opt, n) && (arg[n] == 0 || arg[n] == '=');
}

/* Options both commands take. */
static int kube_opt(const char *cmd, int argc, char **argv, int *i, struct install_args *a, bool *hit)
{
	*hit = true;
	if (!strcmp(argv[*i], "--help") || !strcmp(argv[*i], "-h")) {
		a->help = true;
		return 0;
	}
	if (is_opt(argv[*i], "--context"))
		return opt_value(cmd, argc, argv, i, &a->context);
	if (is_opt(argv[*i], "--kubeconfig"))
		return opt_value(cmd, argc, argv, i, &a->kubeconfig);
	*hit = false;
	return 0;
}

static int install_opt(int argc, char **argv, int *i, struct install_args *a)
{
	const char *arg = argv[*i], *val = NULL;
	uint64_t port;
	int r;

	if (!strcmp(arg, "--apply")) {
		a->apply = true;
		return 0;
	}
	if (is_opt(arg, "--out"))
		return opt_value("install", argc, argv, i, &a->out);
	if (is_opt(arg, "--image"))
		return opt_value("install", argc, argv, i, &a->v.image);
	if (!is_opt(arg, "--node-port") && !is_opt(arg, "--pod-cidr") && !is_opt(arg, "--service-cidr") &&
	    !is_opt(arg, "--manager-address"))
		return arg_unknown("install", arg);
	if ((r = opt_value("install", argc, argv, i, &val)) != 0)
		return r;
	if (is_opt(arg, "--pod-cidr"))
		return add_cidrs("--pod-cidr", val, &a->v.pod);
	if (is_opt(arg, "--service-cidr"))
		return add_cidrs("--service-cidr", val, &a->v.svc);
	if (is_opt(arg, "--manager-address"))
		return add_addrs(val, &a->v);
	if (u64_parse(val, 32767, &port) < 0 || port < 30000)
		return arg_bad("install", "--node-port", val, "not a node port 30000..32767:");
	a->v.node_port = (uint16_t)port;
	return 0;
}

/* kubectl [--context C] [--kubeconfig F] VERB... -f - with input on stdin;
 * its output goes to ours (it names resources, never their contents). */
static int kubectl(const struct install_args *a, const char *cmd, const char *const verb[], const char *input)
{
	char *argv[16] = { "kubectl" }, out[KUBECTL_OUT] = "";
	struct run_opts o = { .input = input, .out = out, .out_size = sizeof(out), .quiet = true, .timeout_ms = 120000 };
	int n = 1, r;

	if (a->context) {
		argv[n++] = "--context";
		argv[n++] = (char *)a->context;
	}
	if (a->kubeconfig) {
		argv[n++] = "--kubeconfig";
		argv[n++] = (char *)a->kubeconfig;
	}
	for (int i = 0; verb[i] && n < 14; i++)
		argv[n++] = (char *)verb[i];
	argv[n] = NULL;
	r = run_argv(argv, &o);
	fputs(out, stdout);
	if (r == 127 || r == -ENOENT) {
		fprintf(stderr, "subway %s: kubectl is not installed (or not on PATH)\n", cmd);
		return 1;
	}
	if (r != 0) {
		fprintf(stderr, "subway %s: kubectl %s failed (exit %d)\n", cmd, verb[0], r);
		return 1;
	}
	return 0;
}

static int install_apply(const struct install_args *a)
{
	static const char *const verb[] = { "apply", "-f", "-", NULL };
	char path[4200];
	static char buf[256 * 1024];
	ssize_t n;
	int r;

	snprintf(path, sizeof(path), "%s/subway.yaml", a->out);
	n = file_read_small(path, buf, sizeof(buf));
	if (n < 0) {
		fprintf(stderr, "subway install: cannot read %s: %s\n", path, strerror((int)-n));
		return 1;
	}
	r = kubectl(a, "install", verb, buf);
	explicit_bzero(buf, (size_t)n);
	return r;
}

int install_main(int argc, char **argv)
{
	struct install_args a = { 0 };
	char err[512], ep[32] = "", ip[16];
	bool hit;
	int r;

	for (int i = 1; i < argc; i++) {
		r = kube_opt("install", argc, argv, &i, &a, &hit);
		if (r == 0 && !hit)
			r = install_opt(argc, argv, &i, &a);
		if (r)
			return r;
	}
	if (a.help) {
		install_usage(stdout);
		return 0;
	}
	if (!a.out || !*a.out) {
		fprintf(stderr, "subway install: --out DIR is required (try 'subway install --help')\n");
		return 2;
	}
	if (install_write(a.out, &a.v, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway install: %s\n", err);
		return 1;
	}
	if (a.v.n_addrs)
		snprintf(ep, sizeof(ep), "%s:%u", ip4_str(a.v.addrs[0], ip), a.v.node_port ? a.v.node_port : 30443);
	printf("wrote %s/subway.yaml: the manifests, with a new token, key and certificate (secret, 0600)\n", a.out);
	printf("wrote %s/token: for 'subway connect --token-file %s/token'%s%s%s\n", a.out, a.out,
	       ep[0] ? " (manager " : "; no --manager-address: add --manager NODE_IP:PORT to connect",
	       ep, ep[0] ? ")" : "");
	if (!a.apply) {
		printf("next: kubectl apply -f %s/subway.yaml (or run install again with --apply)\n", a.out);
		return 0;
	}
	return install_apply(&a);
}

int uninstall_main(int argc, char **argv)
{
	static const char *const verb[] = { "delete", "--ignore-not-found", "-f", "-", NULL };
	struct install_args a = { 0 };
	bool hit;
	int r;

	for (int i = 1; i < argc; i++) {
		r = kube_opt("uninstall", argc, argv, &i, &a, &hit);
		if (r == 0 && !hit)
			r = arg_unknown("uninstall", argv[i]);
		if (r)
			return r;
	}
	if (a.help) {
		uninstall_usage(stdout);
		return 0;
	}
	/* The names are all kubectl needs: the compiled-in manifests as they are. */
	return kubectl(&a, "uninstall", verb, install_manifest);
}
