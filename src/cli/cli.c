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
#include "daemon/resolv.h"
#include "dns/dnsroute.h"
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

/* Sends one request; returns the socket to read the answer from, or -errno. */
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
		"usage: subway connect --lab [NAME]\n"
		"       subway connect --manager HOST:PORT --token-file FILE\n\n"
		"Starts the daemon in this network namespace (if none runs), connects to\n"
		"the cluster's subway manager, and routes the pod and service networks\n"
		"through a virtual interface.  Needs root.\n\n"
		"  --lab [NAME]          the lab's manager and token (default lab: subway)\n"
		"  --manager HOST:PORT   the manager's address (node port or load balancer)\n"
		"  --token-file FILE     the token file the manager was given\n"
		"  --namespace NS        short names (web, _http._tcp.web) resolve in NS (default: default)\n"
		"  --also-proxy SUFFIX   names under SUFFIX resolve in the cluster too (repeatable)\n"
		"  --never-proxy SUFFIX  names under SUFFIX never do (repeatable)\n"
		"  --no-dns              leave the laptop's DNS alone\n"
		"  --tos N               the IP TOS byte the manager marks what it dials with,\n"
		"                        when something on the way rewrites it (0..252, ECN bits\n"
		"                        clear; 0: ignore marks).  Default: what the manager says\n"
		"  --no-loop-guard       let connections the cluster sends back through this\n"
		"                        machine loop (for demonstrations; see\n"
		"                        docs/vm-networking.md): only the daemon's caps bound them\n\n"
		"While connected, cluster names resolve on the laptop (docs/dns.md).\n");
}

/* DNS settings, passed on to the daemon. */
/* DNS and loop-guard settings, passed on to the daemon. */
struct connect_flags {
	char ns[64];
	char also[256], never[256];
	bool off;
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

/* Adds a comma-separated list of suffixes to list; -EINVAL after a message. */
static int dns_suffix_arg(const char *opt, const char *v, char *list, size_t size)
{
	struct dns_name names[DNSROUTE_SUFFIX_MAX];
	char joined[600], bad[256];
	int n;

	snprintf(joined, sizeof(joined), "%s%s%s", list, list[0] ? "," : "", v);
	snprintf(bad, sizeof(bad), "%s", v);
	if (!v[0] || strlen(joined) >= size || dnsroute_suffixes_parse(joined, names, &n, bad) < 0) {
		fprintf(stderr, "subway connect: %s: bad DNS suffix '%s' (at most %d, each a domain name)\n", opt,
			strlen(joined) >= size ? v : bad, DNSROUTE_SUFFIX_MAX);
		return -EINVAL;
	}
	memcpy(list, joined, strlen(joined) + 1);
	return 0;
}

static int dns_arg(int c, const char *v, struct connect_flags *a)
{
	switch (c) {
	case 'n':
		if (!dnsroute_ns_valid(v)) {
			fprintf(stderr, "subway connect: --namespace: '%s' is not a namespace name "
					"(lower-case letters, digits, '-', at most 63)\n", v);
			return -EINVAL;
		}
		snprintf(a->ns, sizeof(a->ns), "%s", v);
		return 0;
	case 'A': return dns_suffix_arg("--also-proxy", v, a->also, sizeof(a->also));
	case 'N': return dns_suffix_arg("--never-proxy", v, a->never, sizeof(a->never));
	default: a->off = true; return 0;
	}
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

static int connect_args(int argc, char **argv, char *tokpath, size_t tplen, char *ep, size_t eplen,
			struct connect_flags *dns)
{
	static const struct option opts[] = {
		{ "lab", no_argument, NULL, 'L' }, { "manager", required_argument, NULL, 'm' },
		{ "token-file", required_argument, NULL, 't' }, { "namespace", required_argument, NULL, 'n' },
		{ "also-proxy", required_argument, NULL, 'A' }, { "never-proxy", required_argument, NULL, 'N' },
		{ "no-dns", no_argument, NULL, 'D' }, { "tos", required_argument, NULL, 'T' },
		{ "no-loop-guard", no_argument, NULL, 'G' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	int c;
	bool lab = false;
	const char *labname = "subway";

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			lab = true;
			if (optind < argc && argv[optind][0] != '-')
				labname = argv[optind++];
			break;
		case 'm': snprintf(ep, eplen, "%s", optarg); break;
		case 't': snprintf(tokpath, tplen, "%s", optarg); break;
		case 'n': case 'A': case 'N': case 'D':
			if (dns_arg(c, optarg, dns) < 0)
				return -EINVAL;
			break;
		case 'T':
			if (connect_tos(optarg, &dns->tos) < 0)
				return -EINVAL;
			break;
		case 'G': dns->no_loop_guard = true; break;
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
	if (lab && (ep[0] || tokpath[0])) {
		fprintf(stderr, "subway connect: --lab cannot be combined with --manager/--token-file\n");
		return -EINVAL;
	}
	if (lab) {
		snprintf(tokpath, tplen, "%s/%s/token", LAB_RUN_DIR, labname);
		if (access(tokpath, F_OK) < 0) {
			fprintf(stderr, "subway connect: no lab named '%s' is up (%s not found)\n", labname, tokpath);
			return -ENOENT;
		}
	} else if (!tokpath[0]) {
		fprintf(stderr, "subway connect: give --lab, or --manager HOST:PORT and --token-file FILE\n");
		return -EINVAL;
	}
	return 0;
}

static int connect_once(const char *path, const char *req);

int connect_main(int argc, char **argv)
{
	char tokpath[256] = "", ep[300] = "", err[200], req[CTL_LINE_MAX], path[108], hex[AUTH_TOKEN_MAX * 2 + 1];
	char tos[16] = "";
	struct token_file tf;
	struct connect_flags dns = { .off = false, .tos = -1 };
	const char *sudo_uid = getenv("SUDO_UID");
	int ret = connect_args(argc, argv, tokpath, sizeof(tokpath), ep, sizeof(ep), &dns);

	if (ret < 0)
		return ret == -EINVAL ? 2 : 1;
	if (auth_token_file_load(tokpath, &tf, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway connect: token file %s: %s\n", tokpath, err);
		return 1;
	}
	if (!ep[0] && tf.has_manager) {
		char ip[16];
		snprintf(ep, sizeof(ep), "%s:%u", ip4_str(tf.manager_addr, ip), tf.manager_port);
	}
	if (!ep[0]) {
		fprintf(stderr, "subway connect: no manager address: give --manager HOST:PORT\n");
		return 2;
	}
	ctl_paths(path, sizeof(path), NULL, 0);
	if (geteuid() == 0) {
		int fd = cli_dial(path);
		if (fd < 0)
			resolv_restore(); /* a killed daemon's resolv.conf would break the lookup below */
		else
			close(fd);
	}
	if (cli_resolve(ep, ep, sizeof(ep)) < 0) {
		fprintf(stderr, "subway connect: cannot resolve manager address '%s'\n", ep);
		return 1;
	}
	for (size_t i = 0; i < tf.token.len; i++)
		snprintf(hex + 2 * i, 3, "%02x", tf.token.key[i]);
	auth_token_wipe(&tf.token);
	ctl_paths(path, sizeof(path), NULL, 0);
	if (dns.tos >= 0)
		snprintf(tos, sizeof(tos), " tos=%d", dns.tos);
	snprintf(req, sizeof(req), "connect manager=%s token=%s%s%s%s%s%s%s%s%s%s%s%s", ep, hex,
		 sudo_uid ? " owner=" : "", sudo_uid ? sudo_uid : "", dns.ns[0] ? " namespace=" : "", dns.ns,
		 dns.also[0] ? " also_proxy=" : "", dns.also, dns.never[0] ? " never_proxy=" : "", dns.never,
		 dns.off ? " dns=off" : "", dns.no_loop_guard ? " loopguard=off" : "", tos);
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
		/* A daemon that was killed may have left resolv.conf behind. */
		if (geteuid() == 0 && resolv_restore() > 0)
			printf("restored %s, which a killed subway daemon had left behind\n", RESOLV_PATH);
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
