/* subway: one binary, a subcommand per role (see docs/cli.md). */
#include <stdio.h>
#include <string.h>

#include "commands.h"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

/* The container image's binary (make image: -DSUBWAY_IMAGE, static) has
 * only the cluster's roles, so it links neither netlink nor the daemon. */
static const struct command commands[] = {
#ifndef SUBWAY_IMAGE
	{ "connect", connect_main, "route the cluster's networks to this machine" },
	{ "status", status_main, "show the connection, routes, flows and counters" },
	{ "quit", quit_main, "disconnect and stop the daemon" },
	{ "intercept", intercept_main, "send a workload's connections to a process on this machine" },
	{ "leave", leave_main, "end an intercept" },
	{ "list", list_main, "workloads that can be intercepted, and their intercepts" },
	{ "doctor", doctor_main, "check this machine for what breaks subway or makes it loop" },
	{ "daemon", daemon_main, "the root daemon behind connect (started by connect)" },
#endif
	{ "manager", manager_main, "the cluster side: dials, relays UDP, DNS and pings" },
	{ "agent", agent_main, "the sidecar of an intercepted workload's pods" },
#ifndef SUBWAY_IMAGE
	{ "install", install_main, "write the manifests and token file for a real cluster" },
	{ "uninstall", uninstall_main, "delete what install applied (kubectl delete)" },
	{ "lab", lab_main, "build an emulated cluster in network namespaces" },
#endif
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: subway COMMAND [ARGS...]\n\ncommands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(fp, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(fp, "\n'subway COMMAND --help' describes each command.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
		printf("subway %s\n", SUBWAY_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "subway: unknown command '%s' (try 'subway --help')\n", argv[1]);
	return 2;
}
