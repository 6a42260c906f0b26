/* `subway lab`: an emulated k3s cluster in network namespaces (see
 * docs/lab.md).  This file parses arguments and dispatches; options are
 * matched exactly, never by prefix. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "lab/kubelet.h"
#include "lab/lab.h"

#define LAB_DEFAULT_NAME "subway"

enum { OPT_NAME = 1, OPT_TOPOLOGY = 2, OPT_JSON = 4, OPT_NO_MANAGER = 8, OPT_COMMAND = 16, OPT_INSECURE = 32,
       OPT_POD = 64, OPT_HIDDEN = 128, OPT_INSTALL = 256 };

struct lab_args {
	const char *name, *topology, *pod, *install;
	bool json, no_manager, insecure, help;
	char **command; /* exec: NULL-terminated */
};

struct lab_cmd {
	const char *name;
	unsigned opts;
	int (*fn)(const struct lab_cmd *c, struct lab_args *a);
	const char *usage, *help;
};

static int cmd_up(const struct lab_cmd *c, struct lab_args *a);
static int cmd_down(const struct lab_cmd *c, struct lab_args *a);
static int cmd_status(const struct lab_cmd *c, struct lab_args *a);
static int cmd_exec(const struct lab_cmd *c, struct lab_args *a);
static int cmd_list(const struct lab_cmd *c, struct lab_args *a);
static int cmd_restart(const struct lab_cmd *c, struct lab_args *a);
static int cmd_kubelet(const struct lab_cmd *c, struct lab_args *a);

static const struct lab_cmd lab_cmds[] = {
	{ "up", OPT_NAME | OPT_TOPOLOGY | OPT_NO_MANAGER | OPT_INSECURE | OPT_INSTALL, cmd_up,
	  "up [--name NAME] [--topology host-only|bridged|cloud|nat] [--no-manager] [--insecure] [--install DIR]",
	  "Builds the lab: a laptop namespace, three k3s-like nodes (server, agent1, agent2), pods with\n"
	  "real servers, kube-proxy rules, cluster DNS and an 'internet' resolver.  Prints short progress\n"
	  "lines, then 'lab NAME is up (topology T) in N.N s'.  Exits 1 if the lab is already up.\n\n"
	  "  --name NAME       lab name (default subway): a-z, 0-9 and '-', at most 20 characters;\n"
	  "                    every namespace is NAME-<what>, so labs with other names run side by side\n"
	  "  --topology T      host-only (default): nodes on a laptop bridge, routed through the laptop\n"
	  "                    bridged: laptop and nodes on a router's LAN\n"
	  "                    cloud: nodes behind a router, the laptop reaches node ports only\n"
	  "                    nat: as host-only, nodes reach out through slirp4netns on the laptop\n"
	  "  --no-manager      no manager: no registry, no image, manager-0 runs nothing\n"
	  "  --insecure        the manager without TLS (plain TCP); connect --lab NAME --insecure\n"
	  "  --install DIR     deploy DIR/subway.yaml of an earlier 'subway install --out DIR' (its\n"
	  "                    Secret, image and options) instead of installing afresh\n" },
	{ "down", OPT_NAME, cmd_down, "down [--name NAME]",
	  "Removes everything the lab created: processes, namespaces (and their links and nftables\n"
	  "state), /etc/netns/NAME-*, /run/subway-lab/NAME.  Works after an 'up' that died halfway;\n"
	  "running it again is harmless.\n" },
	{ "status", OPT_NAME | OPT_JSON, cmd_status, "status [--name NAME] [--json]",
	  "Shows the topology, namespaces, nodes, CIDRs, services, pods, the laptop's addresses, the\n"
	  "manager endpoint and the sha256 of /big.  --json prints the keys documented in docs/lab.md.\n"
	  "Exits 0 if the lab is up, 1 otherwise.\n" },
	{ "exec", OPT_NAME | OPT_COMMAND, cmd_exec, "exec [--name NAME] -- CMD [ARGS...]",
	  "Runs CMD in the lab's laptop namespace, with its own resolv.conf (ip netns exec), and\n"
	  "exits with CMD's exit code.\n" },
	{ "list", 0, cmd_list, "list", "Lists the labs on this machine and their state.\n" },
	{ "restart", OPT_NAME | OPT_POD, cmd_restart, "restart [--name NAME] POD",
	  "Restarts a pod: the manager's container (manager-0) through the lab's kubelet, or another\n"
	  "pod's server.  Waits until it answers again; exits 1 if it does not within 15 s.\n" },
	{ "kubelet", OPT_NAME | OPT_HIDDEN, cmd_kubelet, "kubelet [--name NAME]",
	  "The lab's kubelet, which 'up' starts on the server node: restarts the manager's container\n"
	  "when it exits or fails its liveness probe.  Not for use by hand.\n" },
};

static void lab_usage(FILE *fp)
{
	fprintf(fp, "usage: subway lab COMMAND [OPTIONS]\n\n"
		    "An emulated k3s cluster in network namespaces, with the laptop as a namespace too.\n\n");
	for (size_t i = 0; i < sizeof(lab_cmds) / sizeof(lab_cmds[0]); i++)
		if (!(lab_cmds[i].opts & OPT_HIDDEN))
			fprintf(fp, "  subway lab %s\n", lab_cmds[i].usage);
	fprintf(fp, "\n'subway lab COMMAND --help' describes each; docs/lab.md draws the topologies.\n");
}

static int usage_error(const struct lab_cmd *c, const char *fmt, const char *arg)
{
	fprintf(stderr, "subway lab %s: ", c->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (try 'subway lab %s --help')\n", c->name);
	return 2;
}

/* "--opt VALUE" or "--opt=VALUE"; *i advances past the value. */
static int opt_value(const struct lab_cmd *c, int argc, char **argv, int *i, const char *opt, const char **out)
{
	size_t n = strlen(opt);
	const char *arg = argv[*i];

	if (!strncmp(arg, opt, n) && arg[n] == '=') {
		*out = arg + n + 1;
		return 0;
	}
	if (*i + 1 >= argc)
		return usage_error(c, "option '%s' needs a value", opt);
	*out = argv[++*i];
	return 0;
}

static bool opt_is(const char *arg, const char *opt)
{
	size_t n = strlen(opt);
	return !strncmp(arg, opt, n) && (arg[n] == 0 || arg[n] == '=');
}

static int args_parse(const struct lab_cmd *c, int argc, char **argv, struct lab_args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		int r = 0;
		if ((c->opts & OPT_COMMAND) && (!strcmp(arg, "--") || arg[0] != '-')) {
			a->command = argv + i + !strcmp(arg, "--");
			break;
		}
		if (!strcmp(arg, "--help") || !strcmp(arg, "-h"))
			a->help = true;
		else if ((c->opts & OPT_NAME) && opt_is(arg, "--name"))
			r = opt_value(c, argc, argv, &i, "--name", &a->name);
		else if ((c->opts & OPT_TOPOLOGY) && opt_is(arg, "--topology"))
			r = opt_value(c, argc, argv, &i, "--topology", &a->topology);
		else if ((c->opts & OPT_JSON) && !strcmp(arg, "--json"))
			a->json = true;
		else if ((c->opts & OPT_NO_MANAGER) && !strcmp(arg, "--no-manager"))
			a->no_manager = true;
		else if ((c->opts & OPT_INSECURE) && !strcmp(arg, "--insecure"))
			a->insecure = true;
		else if ((c->opts & OPT_INSTALL) && opt_is(arg, "--install"))
			r = opt_value(c, argc, argv, &i, "--install", &a->install);
		else if (arg[0] == '-')
			r = usage_error(c, "unknown option '%s'", arg);
		else if ((c->opts & OPT_POD) && !a->pod)
			a->pod = arg;
		else
			r = usage_error(c, "unexpected argument '%s'", arg);
		if (r)
			return r;
	}
	return 0;
}

static int args_check(const struct lab_cmd *c, struct lab_args *a, enum lab_topo *topo)
{
	char err[128];

	if (lab_name_check(a->name, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway lab %s: %s\n", c->name, err);
		return 2;
	}
	if (a->topology && lab_topo_parse(a->topology, topo) < 0) {
		fprintf(stderr, "subway lab %s: unknown topology '%s' (host-only, bridged, cloud or nat)\n", c->name,
			a->topology);
		return 2;
	}
	if ((c->opts & OPT_POD) && !a->pod)
		return usage_error(c, "%s", "missing pod: subway lab restart [--name NAME] POD");
	if ((c->opts & OPT_COMMAND) && (!a->command || !a->command[0]))
		return usage_error(c, "%s", "missing command: subway lab exec [--name NAME] -- CMD [ARGS...]");
	return 0;
}

static bool need_root(const struct lab_cmd *c)
{
	if (geteuid() == 0)
		return true;
	fprintf(stderr, "subway lab %s: needs root (network namespaces, nftables)\n", c->name);
	return false;
}

/* The lab as recorded in its state (topology), for all but up. */
static int lab_open(struct lab *lab, const char *name)
{
	enum lab_topo t = LAB_TOPO_HOST_ONLY;

	lab_state_topology(name, &t);
	return lab_init(lab, name, t);
}

static int cmd_up(const struct lab_cmd *c, struct lab_args *a)
{
	enum lab_topo t = LAB_TOPO_HOST_ONLY;
	struct lab lab;

	if (a->topology)
		lab_topo_parse(a->topology, &t);
	if (!need_root(c) || lab_init(&lab, a->name, t) < 0)
		return 1;
	lab.no_manager = a->no_manager;
	lab.insecure = a->insecure;
	lab.install = a->install;
	umask(022);
	return lab_up(&lab);
}

static int cmd_down(const struct lab_cmd *c, struct lab_args *a)
{
	struct lab lab;

	if (!need_root(c) || lab_open(&lab, a->name) < 0)
		return 1;
	return lab_down(&lab);
}

static int cmd_status(const struct lab_cmd *c, struct lab_args *a)
{
	struct lab lab;

	(void)c;
	if (lab_open(&lab, a->name) < 0)
		return 1;
	return lab_status(&lab, a->json);
}

static int cmd_exec(const struct lab_cmd *c, struct lab_args *a)
{
	char ns[LAB_NS_MAX];
	int n = 0;

	if (!need_root(c))
		return 1;
	lab_ns_name(ns, sizeof(ns), a->name, "laptop");
	if (!netns_exists(ns)) {
		fprintf(stderr, "subway lab exec: lab %s is not up (no namespace %s)\n", a->name, ns);
		return 1;
	}
	while (a->command[n])
		n++;
	char **argv = calloc((size_t)n + 5, sizeof(*argv));
	if (!argv)
		return 1;
	argv[0] = "ip";
	argv[1] = "netns";
	argv[2] = "exec";
	argv[3] = ns;
	memcpy(argv + 4, a->command, (size_t)n * sizeof(*argv));
	fflush(NULL);
	execvp(argv[0], argv);
	fprintf(stderr, "subway lab exec: cannot run ip: %s\n", strerror(errno));
	free(argv);
	return 127;
}

static int cmd_list(const struct lab_cmd *c, struct lab_args *a)
{
	(void)c;
	(void)a;
	return lab_list();
}

static int cmd_restart(const struct lab_cmd *c, struct lab_args *a)
{
	struct lab lab;

	if (!need_root(c) || lab_open(&lab, a->name) < 0)
		return 1;
	return lab_restart(&lab, a->pod);
}

static int cmd_kubelet(const struct lab_cmd *c, struct lab_args *a)
{
	struct lab lab;

	if (!need_root(c) || lab_open(&lab, a->name) < 0)
		return 1;
	return kubelet_main(&lab);
}

/* The lab's tools live in sbin; a plain user PATH may lack it. */
static void path_add_sbin(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (path && strstr(path, "/usr/sbin"))
		return;
	snprintf(buf, sizeof(buf), "%s%s/usr/local/sbin:/usr/sbin:/sbin:/usr/bin:/bin", path ? path : "",
		 path && *path ? ":" : "");
	setenv("PATH", buf, 1);
}

int lab_main(int argc, char **argv)
{
	struct lab_args a = { .name = LAB_DEFAULT_NAME };
	const struct lab_cmd *c = NULL;
	enum lab_topo t;
	int r;

	if (argc < 2) {
		fprintf(stderr, "subway lab: missing command: up, down, status, exec, list or restart (try 'subway lab "
				"--help')\n");
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		lab_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(lab_cmds) / sizeof(lab_cmds[0]); i++)
		if (!strcmp(argv[1], lab_cmds[i].name))
			c = &lab_cmds[i];
	if (!c) {
		fprintf(stderr, "subway lab: unknown command '%s' (try 'subway lab --help')\n", argv[1]);
		return 2;
	}
	r = args_parse(c, argc - 1, argv + 1, &a);
	if (r)
		return r;
	if (a.help) {
		printf("usage: subway lab %s\n\n%s", c->usage, c->help);
		return 0;
	}
	r = args_check(c, &a, &t);
	if (r)
		return r;
	path_add_sbin();
	return c->fn(c, &a);
}
