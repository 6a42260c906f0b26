/* The user-facing commands: connect, status, quit.  They talk to the
 * daemon of the current network namespace over its unix socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "commands.h"
#include "common/util.h"
#include "daemon/ctl.h"
#include "proto/auth.h"


static int cli_dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

int cli_request(const char *path, const char *req)
{
	int fd = cli_dial(path);
	size_t len = strlen(req);

	if (fd < 0)
		return fd;
	if (write(fd, req, len) != (ssize_t)len || write(fd, "\n", 1) != 1) {
		close(fd);
		return -EIO;
	}
	return fd;
}

static int cli_start_daemon(const char *path)
{
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *argv[] = { "subway", "daemon", NULL };
		char logpath[108];
		int null = open("/dev/null", O_RDWR | O_CLOEXEC), log;
		setsid();
		/* stderr goes to the daemon's log too: sanitizer reports land there. */
		ctl_paths(NULL, 0, logpath, sizeof(logpath));
		log = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(log >= 0 ? log : null, 2);
		}
		execv("/proc/self/exe", argv);
		_exit(127);
	}
	for (int i = 0; i < 100; i++) {
		int fd = cli_dial(path);
		if (fd >= 0) {
			close(fd);
			printf("daemon started (pid %d)\n", (int)pid);
			fflush(stdout);
			return 0;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		sleep_ms(50);
	}
	return -ECHILD;
}

static int cli_resolve(const char *ep, char *out, size_t outlen)
{
	char host[256];
	const char *colon = strrchr(ep, ':');
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
	uint16_t port;
	char ip[16];

	if (!colon || (size_t)(colon - ep) >= sizeof(host) || port_parse(colon + 1, &port) < 0)
		return -EINVAL;
	memcpy(host, ep, (size_t)(colon - ep));
	host[colon - ep] = 0;
	if (getaddrinfo(host, NULL, &hints, &res) != 0)
		return -ENOENT;
	ip4_str(ntohl(((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr), ip);
	freeaddrinfo(res);
	snprintf(out, outlen, "%s:%u", ip, port);
	return 0;
}

static void connect_usage(FILE *fp)
{
	fprintf(fp,
		"usage: subway connect --lab [NAME] [--no-loop-guard] [--tos N]\n"
		"       subway connect --manager HOST:PORT --token-file FILE [--no-loop-guard] [--tos N]\n\n"
		"Starts the daemon in this network namespace (if none runs), connects to\n"
		"the cluster's subway manager, and routes the pod and service networks\n"
		"through a virtual interface.  Needs root.\n\n"
		"  --lab [NAME]          the lab's manager and token (default lab: subway)\n"
		"  --manager HOST:PORT   the manager's address (node port or load balancer)\n"
		"  --token-file FILE     the token file the manager was given\n"
		"  --tos N               the IP TOS byte the manager marks what it dials with,\n"
		"                        when something on the way rewrites it (0..252, ECN bits\n"
		"                        clear; 0: ignore marks).  Default: what the manager says\n"
		"  --no-loop-guard       let connections the cluster sends back through this\n"
		"                        machine loop (for demonstrations; see\n"
		"                        docs/vm-networking.md): only the daemon's caps bound them\n");
}

struct connect_opts {
	char tokpath[256];
	char ep[300];
	bool no_loop_guard;
	int tos; /* -1: the manager's */
};

static int connect_tos(const char *s, int *out)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (!*s || *end || errno || v > 255 || s[0] == '-' || (v & 3)) {
		fprintf(stderr, "subway connect: --tos: not a TOS byte 0..252 with the ECN bits clear: '%s'\n", s);
		return -EINVAL;
	}
	*out = (int)v;
	return 0;
}

/* Prints the daemon's lines; returns 0 on "ok", 1 on "error", -1 when the
 * daemon closed without a word (it was exiting: try again). */
static int connect_follow(int fd)
{
	FILE *fp = fdopen(fd, "r");
	char line[1024];
	int ret = -1;

	if (!fp)
		return 1;
	while (fgets(line, sizeof(line), fp)) {
		if (!strncmp(line, "progress ", 9)) {
			fputs(line + 9, stdout);
		} else if (!strncmp(line, "ok ", 3)) {
			fputs(line + 3, stdout);
			ret = 0;
		} else if (!strncmp(line, "error ", 6)) {
			fprintf(stderr, "subway connect: %s", line + 6);
			ret = 1;
		}
		fflush(stdout);
	}
	fclose(fp);
	return ret;
}

static int connect_args(int argc, char **argv, struct connect_opts *o)
{
	static const struct option opts[] = {
		{ "lab", no_argument, NULL, 'L' }, { "manager", required_argument, NULL, 'm' },
		{ "token-file", required_argument, NULL, 't' }, { "tos", required_argument, NULL, 'T' },
		{ "no-loop-guard", no_argument, NULL, 'G' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	bool lab = false;
	const char *labname = "subway";

	o->tos = -1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			lab = true;
			if (optind < argc && argv[optind][0] != '-')
				labname = argv[optind++];
			break;
		case 'm': snprintf(o->ep, sizeof(o->ep), "%s", optarg); break;
		case 't': snprintf(o->tokpath, sizeof(o->tokpath), "%s", optarg); break;
		case 'T':
			if (connect_tos(optarg, &o->tos) < 0)
				return -EINVAL;
			break;
		case 'G': o->no_loop_guard = true; break;
		case 'h': connect_usage(stdout); exit(0);
		default:
			fprintf(stderr, "subway connect: %s '%s' (try --help)\n",
				c == ':' ? "missing value for" : "unknown option", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "subway connect: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (lab && (o->ep[0] || o->tokpath[0])) {
		fprintf(stderr, "subway connect: --lab cannot be combined with --manager/--token-file\n");
		return -EINVAL;
	}
	if (lab) {
		snprintf(o->tokpath, sizeof(o->tokpath), "%s/%s/token", LAB_RUN_DIR, labname);
		if (access(o->tokpath, F_OK) < 0) {
			fprintf(stderr, "subway connect: no lab named '%s' is up (%s not found)\n", labname, o->tokpath);
			return -ENOENT;
		}
	} else if (!o->tokpath[0]) {
		fprintf(stderr, "subway connect: give --lab, or --manager HOST:PORT and --token-file FILE\n");
		return -EINVAL;
	}
	return 0;
}

static int connect_once(const char *path, const char *req);

int connect_main(int argc, char **argv)
{
	char err[200], req[600], extra[64] = "", path[108], hex[AUTH_TOKEN_MAX * 2 + 1];
	struct connect_opts o = { .tos = -1 };
	struct token_file tf;
	const char *sudo_uid = getenv("SUDO_UID");
	int ret = connect_args(argc, argv, &o);

	if (ret < 0)
		return ret == -EINVAL ? 2 : 1;
	if (auth_token_file_load(o.tokpath, &tf, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway connect: token file %s: %s\n", o.tokpath, err);
		return 1;
	}
	if (!o.ep[0] && tf.has_manager) {
		char ip[16];
		snprintf(o.ep, sizeof(o.ep), "%s:%u", ip4_str(tf.manager_addr, ip), tf.manager_port);
	}
	if (!o.ep[0]) {
		fprintf(stderr, "subway connect: no manager address: give --manager HOST:PORT\n");
		return 2;
	}
	if (cli_resolve(o.ep, o.ep, sizeof(o.ep)) < 0) {
		fprintf(stderr, "subway connect: cannot resolve manager address '%s'\n", o.ep);
		return 1;
	}
	for (size_t i = 0; i < tf.token.len; i++)
		snprintf(hex + 2 * i, 3, "%02x", tf.token.key[i]);
	auth_token_wipe(&tf.token);
	ctl_paths(path, sizeof(path), NULL, 0);
	if (o.no_loop_guard)
		snprintf(extra, sizeof(extra), " loopguard=off");
	if (o.tos >= 0)
		snprintf(extra + strlen(extra), sizeof(extra) - strlen(extra), " tos=%d", o.tos);
	snprintf(req, sizeof(req), "connect manager=%s token=%s%s%s%s", o.ep, hex, sudo_uid ? " owner=" : "",
		 sudo_uid ? sudo_uid : "", extra);
	explicit_bzero(hex, sizeof(hex));
	/* A daemon killed a moment ago may still accept before it is gone. */
	for (int attempt = 0; attempt < 3; attempt++) {
		ret = connect_once(path, req);
		if (ret >= 0)
			break;
		sleep_ms(200);
	}
	explicit_bzero(req, sizeof(req));
	if (ret < 0)
		fprintf(stderr, "subway connect: the daemon closed the connection without an answer; see /run/subway/*.log\n");
	return ret < 0 ? 1 : ret;
}

static int connect_once(const char *path, const char *req)
{
	int fd;

	if ((fd = cli_dial(path)) >= 0) {
		close(fd);
	} else {
		if (geteuid() != 0) {
			fprintf(stderr, "subway connect: must run as root: it creates a network interface (try sudo)\n");
			return 1;
		}
		if (access("/dev/net/tun", R_OK | W_OK) < 0) {
			fprintf(stderr, "subway connect: no /dev/net/tun: load the tun module (modprobe tun)\n");
			return 1;
		}
		mkdir_p("/run/subway", 0755);
		if (cli_start_daemon(path) < 0) {
			fprintf(stderr, "subway connect: the daemon did not start; see /run/subway/*.log\n");
			return 1;
		}
	}
	fd = cli_request(path, req);
	if (fd < 0)
		return -1; /* gone between the two connects: try again */
	return connect_follow(fd);
}

static int cli_simple(const char *cmd, const char *req, bool json_fallback)
{
	char path[108], buf[4096];
	int fd;
	ssize_t n;

	ctl_paths(path, sizeof(path), NULL, 0);
	fd = cli_request(path, req);
	if (fd < 0) {
		if (json_fallback)
			printf("{\"connected\": false, \"state\": \"not running\"}\n");
		else
			printf("not connected (no subway daemon runs in this network namespace)\n");
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		fwrite(buf, 1, (size_t)n, stdout);
	close(fd);
	(void)cmd;
	return 0;
}

int status_main(int argc, char **argv)
{
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: subway status [--json]\n\nConnection, manager, VIF, routes, flows and counters.\n"
			       "The JSON keys are documented in docs/cli.md.\n");
			return 0;
		} else {
			fprintf(stderr, "subway status: unknown argument '%s'\n", argv[i]);
			return 2;
		}
	}
	return cli_simple("status", json ? "status" : "status format=text", json);
}

int quit_main(int argc, char **argv)
{
	char path[108], buf[512];
	int fd;
	ssize_t n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: subway quit\n\nCloses every flow, removes the VIF and its routes, stops the daemon.\n");
			return 0;
		}
		fprintf(stderr, "subway quit: unknown argument '%s'\n", argv[i]);
		return 2;
	}
	ctl_paths(path, sizeof(path), NULL, 0);
	fd = cli_request(path, "quit");
	if (fd < 0) {
		printf("not connected (no subway daemon runs in this network namespace)\n");
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		;
	close(fd);
	/* Wait until the daemon has let go of its socket. */
	for (int i = 0; i < 100 && (fd = cli_dial(path)) >= 0; i++) {
		close(fd);
		sleep_ms(50);
	}
	printf("disconnected\n");
	return 0;
}
