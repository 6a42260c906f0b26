/* The user-facing commands: connect, status, quit.  They talk to the
 * daemon of the current network namespace over its unix socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "commands.h"
#include "common/json.h"
#include "common/paths.h"
#include "common/util.h"
#include "dns/resolv.h"
#include "lab/plan.h"
#include "proto/auth.h"
#include "proto/ctlmsg.h"

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
	/* A daemon that refuses us closes at once, its reason already sent:
	 * no SIGPIPE, and the reason is still read. */
	if ((send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1) &&
	    errno != EPIPE && errno != ECONNRESET) {
		close(fd);
		return -EIO;
	}
	return fd;
}

void cli_opt_error(const char *cmd, int c, const char *arg)
{
	char cut[STR_CUT_SIZE];

	fprintf(stderr, "subway %s: %s '%s' (try --help)\n", cmd, c == ':' ? "missing value for" : "unknown option",
		str_cut(arg, strlen(arg), cut, sizeof(cut)));
}

int cli_lab_token(const char *name, char *path, size_t size, char *err, size_t errlen)
{
	char why[160];

	if (lab_name_check(name, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "--lab: %s", why);
		return -EINVAL;
	}
	snprintf(path, size, "%s/%s/token", LAB_STATE_ROOT, name);
	if (access(path, F_OK) < 0) {
		snprintf(err, errlen, "no lab named '%s' is up (no %s)", name, path);
		return -ENOENT;
	}
	return 0;
}

int cli_request_verb(const char *path, enum ctl_verb verb, bool text)
{
	struct ctl_req r = { .verb = verb, .text = text };
	char line[64], err[160];

	if (ctl_encode(&r, line, sizeof(line), err, sizeof(err)) < 0)
		return -EINVAL;
	return cli_request(path, line);
}

/* Starts the daemon; prints its pid once its socket answers.  0 or -errno
 * (-EAGAIN: it came and went: try again). */
static int cli_start_daemon(const char *path)
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		char *argv[] = { "subway", "daemon", NULL };
		char logpath[108];
		int null = open("/dev/null", O_RDWR | O_CLOEXEC), log;
		setsid();
		/* stderr goes to the daemon's log too: sanitizer reports land there. */
		paths_daemon(NULL, 0, logpath, sizeof(logpath));
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
		/* Gone: it failed to start, or (exit 0) it served a connect run at
		 * the same time that failed, and stopped before we saw it. */
		if (waitpid(pid, &st, WNOHANG) == pid)
			return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? -EAGAIN : -ECHILD;
		sleep_ms(50);
	}
	return -ETIMEDOUT;
}

/* A daemon answers on path, or one is started: under a lock, so that
 * connects run at once start one daemon between them.  0 or -errno. */
static int cli_ensure_daemon(const char *path)
{
	char lockpath[128];
	int fd = cli_dial(path), lock, ret;

	if (fd >= 0) {
		close(fd);
		return 0;
	}
	mkdir_p(PATHS_RUN_DIR, 0755);
	/* "daemon-<netns>.sock" -> "daemon-<netns>.lock" */
	snprintf(lockpath, sizeof(lockpath), "%.*s.lock", (int)(strlen(path) - strlen(".sock")), path);
	lock = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (lock < 0)
		return -errno;
	/* The holder starts a daemon within 5 s (cli_start_daemon). */
	for (int i = 0; flock(lock, LOCK_EX | LOCK_NB) < 0; i++) {
		if (errno != EWOULDBLOCK || i >= 200) {
			ret = errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
			goto out;
		}
		sleep_ms(50);
	}
	if ((fd = cli_dial(path)) >= 0) { /* another connect started it meanwhile */
		close(fd);
		ret = 0;
		goto out;
	}
	ret = cli_start_daemon(path);
out:
	close(lock);
	return ret;
}

static void connect_usage(FILE *fp)
{
	fprintf(fp,
		"usage: subway connect --lab [NAME] [--insecure]\n"
		"       subway connect --manager HOST:PORT --token-file FILE [--insecure]\n\n"
		"Starts the daemon in this network namespace (if none runs), connects to\n"
		"the cluster's subway manager, and routes the pod and service networks\n"
		"through a virtual interface.  Needs root.\n\n"
		"The tunnel is TLS 1.3; the manager must present the certificate whose\n"
		"fingerprint the token file names (fingerprint=sha256:...).\n\n"
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
		"  --grace SECONDS       while the session is lost, a new connection waits this\n"
		"                        long for it to come back, then fails EHOSTUNREACH\n"
		"                        (0..60, default 2)\n"
		"  --threads N           threads for the data path, each with its own queue of\n"
		"                        the VIF and its own connections to the manager; a TCP\n"
		"                        connection stays on one (1..4, default: the number of\n"
		"                        cores, at most 4)\n"
		"  --no-loop-guard       let connections the cluster sends back through this\n"
		"                        machine loop (for demonstrations; see\n"
		"                        docs/vm-networking.md): only the daemon's caps bound them\n\n"
		"  --insecure            plain TCP, not encrypted: only for a manager started\n"
		"                        with --insecure\n\n"
		"A second connect with other options than the running session's fails and\n"
		"names them; `subway quit` first.  While connected, cluster names resolve on\n"
		"the laptop (docs/dns.md).\n");
}

/* What the command line says: where the manager and the token come from,
 * and the request's options (req), checked as the daemon will check them. */
struct connect_args {
	const char *lab, *manager, *token_file;
	char lab_token[300];
	struct ctl_req req;
};

/* --manager HOST:PORT, its form only (the host is resolved later). */
static int connect_manager_arg(const char *ep)
{
	const char *colon = strrchr(ep, ':');
	char cut[STR_CUT_SIZE], port[STR_CUT_SIZE];
	uint16_t p;

	if (!ep[0]) {
		fprintf(stderr, "subway connect: --manager: empty; give HOST:PORT\n");
		return -EINVAL;
	}
	str_cut(ep, strlen(ep), cut, sizeof(cut));
	if (!colon) {
		fprintf(stderr, "subway connect: --manager: '%s' has no port; give HOST:PORT\n", cut);
		return -EINVAL;
	}
	if (port_parse(colon + 1, &p) < 0) {
		fprintf(stderr, "subway connect: --manager: the port '%s' of '%s' is not a number 1..65535\n",
			str_cut(colon + 1, strlen(colon + 1), port, sizeof(port)), cut);
		return -EINVAL;
	}
	if (colon == ep || colon - ep > 253) {
		fprintf(stderr, "subway connect: --manager: '%s' has %s host name\n", cut, colon == ep ? "no" : "too long a");
		return -EINVAL;
	}
	return 0;
}

static int connect_tos(const char *s, struct ctl_req *req)
{
	char *end = NULL, cut[STR_CUT_SIZE];
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (!*s || *end || errno || v > 255 || s[0] == '-' || (v & 3)) {
		fprintf(stderr, "subway connect: --tos: '%s' is not a TOS byte 0..252 with the ECN bits clear\n",
			str_cut(s, strlen(s), cut, sizeof(cut)));
		return -EINVAL;
	}
	req->has_tos = true;
	req->tos = (uint8_t)v;
	return 0;
}

/* --grace SECONDS (decimals allowed): how long a connect waits for a lost
 * session; -EINVAL after a message. */
static int connect_grace(const char *s, struct ctl_req *req)
{
	char *end = NULL, cut[STR_CUT_SIZE], ms[16], err[200];
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !(v >= 0 && v <= 60)) {
		fprintf(stderr, "subway connect: --grace: '%s' is not a number of seconds 0..60\n",
			str_cut(s, strlen(s), cut, sizeof(cut)));
		return -EINVAL;
	}
	snprintf(ms, sizeof(ms), "%u", (unsigned)(v * 1000 + 0.5));
	if (ctl_set(req, "grace", ms, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway connect: --grace: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

/* --namespace, and the suffix lists (repeatable: joined with commas), as
 * the daemon will check them; -EINVAL after a message. */
static int connect_dns_arg(int c, const char *v, struct ctl_req *req)
{
	const char *flag = c == 'n' ? "--namespace" : c == 'A' ? "--also-proxy" : "--never-proxy";
	const char *key = c == 'n' ? "namespace" : c == 'A' ? "also_proxy" : "never_proxy";
	char *list = c == 'A' ? req->also_proxy : req->never_proxy, joined[600], err[200];

	if (!v[0]) {
		fprintf(stderr, "subway connect: %s: empty\n", flag);
		return -EINVAL;
	}
	if (c != 'n' && list[0]) {
		snprintf(joined, sizeof(joined), "%s,%s", list, v);
		v = joined;
	}
	if (ctl_set(req, key, v, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway connect: %s: %s\n", flag, err);
		return -EINVAL;
	}
	return 0;
}

/* 0, 1 after --help, -EINVAL after a message. */
static int connect_args(int argc, char **argv, struct connect_args *a)
{
	static const struct option opts[] = {
		{ "lab", no_argument, NULL, 'L' }, { "manager", required_argument, NULL, 'm' },
		{ "token-file", required_argument, NULL, 't' }, { "namespace", required_argument, NULL, 'n' },
		{ "also-proxy", required_argument, NULL, 'A' }, { "never-proxy", required_argument, NULL, 'N' },
		{ "no-dns", no_argument, NULL, 'D' }, { "tos", required_argument, NULL, 'T' },
		{ "no-loop-guard", no_argument, NULL, 'G' }, { "insecure", no_argument, NULL, 'I' },
		{ "grace", required_argument, NULL, 'g' }, { "threads", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' }, { 0 } };
	char cut[STR_CUT_SIZE], err[300];
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'L':
			a->lab = optind < argc && argv[optind][0] != '-' ? argv[optind++] : "subway";
			break;
		case 'm':
			if (connect_manager_arg(optarg) < 0)
				return -EINVAL;
			a->manager = optarg;
			break;
		case 't':
			if (!optarg[0]) {
				fprintf(stderr, "subway connect: --token-file: empty\n");
				return -EINVAL;
			}
			a->token_file = optarg;
			break;
		case 'n': case 'A': case 'N':
			if (connect_dns_arg(c, optarg, &a->req) < 0)
				return -EINVAL;
			break;
		case 'D': a->req.no_dns = true; break;
		case 'T':
			if (connect_tos(optarg, &a->req) < 0)
				return -EINVAL;
			break;
		case 'G': a->req.no_loop_guard = true; break;
		case 'g':
			if (connect_grace(optarg, &a->req) < 0)
				return -EINVAL;
			break;
		case 'I': a->req.insecure = true; break;
		case 'P':
			if (ctl_set(&a->req, "threads", optarg, err, sizeof(err)) < 0) {
				fprintf(stderr, "subway connect: --threads: %s\n", err);
				return -EINVAL;
			}
			break;
		case 'h': connect_usage(stdout); return 1;
		default:
			cli_opt_error("connect", c, argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "subway connect: unexpected argument '%s'\n",
			str_cut(argv[optind], strlen(argv[optind]), cut, sizeof(cut)));
		return -EINVAL;
	}
	if (a->lab && (a->manager || a->token_file)) {
		fprintf(stderr, "subway connect: --lab cannot be combined with --manager/--token-file\n");
		return -EINVAL;
	}
	if (!a->lab && !a->token_file) {
		fprintf(stderr, "subway connect: give --lab, or --manager HOST:PORT and --token-file FILE\n");
		return -EINVAL;
	}
	if (a->lab && lab_name_check(a->lab, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway connect: --lab: %s\n", err);
		return -EINVAL;
	}
	return 0;
}

/* The token file: the token, the manager's fingerprint (a file without
 * one is refused unless the transport is insecure) and, unless --manager
 * said otherwise, the manager.  Its path is said once, in any message. */
static int connect_token(struct connect_args *a, char *ep, size_t eplen)
{
	struct token_file tf;
	char err[PATH_MAX + 512], cut[164], ip[16]; /* err: the path, then why; a path cut at 160 */
	const char *path = a->token_file, *why = err;
	size_t plen = strlen(path);
	int ret = 0;

	str_cut(path, plen, cut, sizeof(cut));
	if (auth_token_file_load(path, &tf, err, sizeof(err)) < 0) {
		/* err starts with the path: said once, cut */
		if (!strncmp(err, path, plen) && !strncmp(err + plen, ": ", 2))
			why = err + plen + 2;
		fprintf(stderr, "subway connect: token file %s: %s\n", cut, why);
		return -ENOENT;
	}
	if (!a->req.insecure && !tf.has_fingerprint) {
		fprintf(stderr, "subway connect: token file %s has no fingerprint=sha256:... line, so the "
				"manager cannot be told from an impostor; add the line the manager logs at start "
				"(or prints with --print-fingerprint), or use --insecure with a manager started "
				"with --insecure\n", cut);
		ret = -EACCES;
		goto out;
	}
	if (!a->req.insecure) {
		memcpy(a->req.fingerprint, tf.fingerprint, sizeof(a->req.fingerprint));
		a->req.has_fingerprint = true;
	}
	if (2 * tf.token.len < sizeof(a->req.token_hex))
		hex_encode(tf.token.key, tf.token.len, a->req.token_hex);
	if (a->manager)
		snprintf(ep, eplen, "%s", a->manager);
	else if (tf.has_manager)
		snprintf(ep, eplen, "%s:%u", ip4_str(tf.manager_addr, ip), tf.manager_port);
	else {
		fprintf(stderr, "subway connect: token file %s names no manager: give --manager HOST:PORT\n", cut);
		ret = -EINVAL;
	}
out:
	auth_token_wipe(&tf.token);
	return ret;
}

/* HOST:PORT (checked by connect_manager_arg) to an IPv4 address. */
static int connect_resolve(const char *ep, struct ctl_endpoint *out)
{
	char host[256], cut[STR_CUT_SIZE];
	const char *colon = strrchr(ep, ':');
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *res;
	int r;

	if (!colon || (size_t)(colon - ep) >= sizeof(host) || port_parse(colon + 1, &out->port) < 0)
		return -EINVAL;
	memcpy(host, ep, (size_t)(colon - ep));
	host[colon - ep] = 0;
	if (ip4_parse(host, &out->addr) == 0)
		return 0;
	if ((r = getaddrinfo(host, NULL, &hints, &res)) != 0) {
		fprintf(stderr, "subway connect: cannot resolve the manager's host '%s': %s\n",
			str_cut(host, strlen(host), cut, sizeof(cut)), gai_strerror(r));
		return -ENOENT;
	}
	out->addr = ntohl(((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr);
	freeaddrinfo(res);
	return 0;
}

/* Prints the daemon's lines; returns 0 on "ok", 1 on "error", -1 when the
 * daemon closed without a word (it was exiting: try again). */
static int connect_follow(int fd)
{
	FILE *fp = fdopen(fd, "r");
	char line[2048];
	int ret = -1;

	if (!fp) {
		close(fd);
		return 1;
	}
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

static int connect_once(const char *path, const char *req)
{
	int fd = cli_dial(path), r;

	if (fd >= 0)
		close(fd);
	else if (access("/dev/net/tun", R_OK | W_OK) < 0) {
		fprintf(stderr, "subway connect: no /dev/net/tun: load the tun module (modprobe tun)\n");
		return 1;
	}
	if ((r = cli_ensure_daemon(path)) == -EAGAIN)
		return -1;
	if (r < 0) {
		fprintf(stderr, "subway connect: the daemon did not start (%s); see %s/*.log\n", strerror(-r),
			PATHS_RUN_DIR);
		return 1;
	}
	fd = cli_request(path, req);
	if (fd < 0)
		return -1; /* gone between the two connects: try again */
	return connect_follow(fd);
}

int connect_main(int argc, char **argv)
{
	struct connect_args a = { .req.verb = CTL_CONNECT };
	char ep[300], err[300], req[CTL_LINE_MAX + 1], path[108];
	const char *sudo_uid = getenv("SUDO_UID");
	int ret = connect_args(argc, argv, &a);
	ssize_t len;

	if (ret != 0)
		return ret > 0 ? 0 : ret == -EINVAL ? 2 : 1;
	if (geteuid() != 0) {
		fprintf(stderr, "subway connect: must run as root: it creates a network interface (try sudo)\n");
		return 1;
	}
	if (a.lab) {
		if ((ret = cli_lab_token(a.lab, a.lab_token, sizeof(a.lab_token), err, sizeof(err))) < 0) {
			fprintf(stderr, "subway connect: %s\n", err);
			return 1;
		}
		a.token_file = a.lab_token;
	}
	/* SUDO_UID: the user who may then run status and quit; a value, not more keys */
	if (sudo_uid && ctl_set(&a.req, "owner", sudo_uid, err, sizeof(err)) < 0)
		a.req.has_owner = false;
	if ((ret = connect_token(&a, ep, sizeof(ep))) < 0)
		goto out;
	paths_daemon(path, sizeof(path), NULL, 0);
	if ((ret = cli_dial(path)) < 0)
		resolv_restore(); /* a killed daemon's resolv.conf would break the lookup below */
	else
		close(ret);
	if ((ret = connect_resolve(ep, &a.req.manager)) < 0)
		goto out;
	if ((len = ctl_encode(&a.req, req, sizeof(req), err, sizeof(err))) < 0) {
		fprintf(stderr, "subway connect: %s\n", err);
		ret = -EIO;
		goto out;
	}
	/* A daemon killed a moment ago may still accept before it is gone. */
	for (int attempt = 0; attempt < 5; attempt++) {
		ret = connect_once(path, req);
		if (ret >= 0)
			break;
		sleep_ms(200);
	}
	if (ret < 0)
		fprintf(stderr, "subway connect: the daemon closed the connection without an answer; see %s/*.log\n",
			PATHS_RUN_DIR);
out:
	explicit_bzero(&a.req, sizeof(a.req));
	explicit_bzero(req, sizeof(req));
	if (ret == -EINVAL)
		return 2;
	return ret < 0 ? 1 : ret;
}

int cli_resolver_stale(char *what, size_t wlen, char *fix, size_t flen)
{
	struct resolv_conf rc;
	char ip[16], pid[32] = "";

	if (resolv_stale(false, &rc) <= 0)
		return 0;
	if (rc.owner_pid)
		snprintf(pid, sizeof(pid), " (pid %ld)", rc.owner_pid);
	snprintf(what, wlen, "%s still sends every lookup to %s, the DNS server on the VIF of a subway daemon%s "
			     "that no longer exists (killed?): names do not resolve here",
		 RESOLV_PATH, rc.n_ns ? ip4_str(rc.ns[0], ip) : "subway's DNS server", pid);
	snprintf(fix, flen, "run `subway quit` as root: it puts the original %s back", RESOLV_PATH);
	return 1;
}

/* `status` with no daemon here: not connected, which is fine unless a
 * killed daemon left the resolver pointing at it (exit 1). */
static int status_not_running(bool json)
{
	char what[512], fix[128], line[700];
	int stale = cli_resolver_stale(what, sizeof(what), fix, sizeof(fix));
	struct json j;

	if (stale)
		snprintf(line, sizeof(line), "no subway daemon runs here, and %s; fix: %s", what, fix);
	if (json) {
		json_init(&j, stdout, false);
		json_obj_begin(&j, NULL);
		json_bool(&j, "connected", false);
		json_str(&j, "state", "not running");
		json_str(&j, "resolver_stale", stale ? line : NULL);
		json_obj_end(&j);
		json_finish(&j);
	} else if (stale) {
		fprintf(stderr, "subway status: %s\n", line);
	} else {
		printf("not connected (no subway daemon runs in this network namespace)\n");
	}
	return stale ? 1 : 0;
}

int status_main(int argc, char **argv)
{
	char path[108], buf[4096], cut[STR_CUT_SIZE];
	bool json = false, first = true, error = false;
	ssize_t n;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: subway status [--json]\n\nConnection, manager, VIF, routes, flows and counters.\n"
			       "The JSON keys are documented in docs/cli.md.  Exit 1 when no daemon runs\n"
			       "but the resolver still points at a killed one's DNS server.\n");
			return 0;
		} else {
			fprintf(stderr, "subway status: unknown argument '%s'\n",
				str_cut(argv[i], strlen(argv[i]), cut, sizeof(cut)));
			return 2;
		}
	}
	paths_daemon(path, sizeof(path), NULL, 0);
	fd = cli_request_verb(path, CTL_STATUS, !json);
	if (fd < 0)
		return status_not_running(json);
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		/* "error ..." (a refusal): one line on stderr, exit 1. */
		if (first && n > 6 && !memcmp(buf, "error ", 6)) {
			error = true;
			fprintf(stderr, "subway status: ");
			fwrite(buf + 6, 1, (size_t)n - 6, stderr);
		} else {
			fwrite(buf, 1, (size_t)n, error ? stderr : stdout);
		}
		first = false;
	}
	close(fd);
	if (first) /* no answer: the daemon was on its way out (a connect that failed) */
		return status_not_running(json);
	return error ? 1 : 0;
}

/* `quit` with no daemon here: a resolv.conf a killed daemon left behind
 * is put back (root), or named with the fix. */
static int quit_not_running(void)
{
	char what[512], fix[128];
	int r;

	if (geteuid() == 0) {
		if ((r = resolv_restore()) > 0)
			printf("restored %s, which a killed subway daemon had left behind\n", RESOLV_PATH);
		if (r < 0) {
			fprintf(stderr, "subway quit: %s is still subway's, and cannot be put back: %s\n", RESOLV_PATH,
				strerror(-r));
			return 1;
		}
	} else if (cli_resolver_stale(what, sizeof(what), fix, sizeof(fix))) {
		fprintf(stderr, "subway quit: %s; run `sudo subway quit` to put the original back\n", what);
		return 1;
	}
	printf("not connected (no subway daemon runs in this network namespace)\n");
	return 0;
}

int quit_main(int argc, char **argv)
{
	char path[108], buf[512], cut[STR_CUT_SIZE];
	int fd;
	ssize_t n;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: subway quit\n\nCloses every flow, removes the VIF and its routes, puts the laptop's\n"
			       "resolver back, stops the daemon.  With no daemon running, puts back a\n"
			       "resolv.conf that a killed daemon left behind.\n");
			return 0;
		}
		fprintf(stderr, "subway quit: unknown argument '%s'\n",
			str_cut(argv[i], strlen(argv[i]), cut, sizeof(cut)));
		return 2;
	}
	paths_daemon(path, sizeof(path), NULL, 0);
	fd = cli_request_verb(path, CTL_QUIT, false);
	if (fd < 0)
		return quit_not_running();
	n = read(fd, buf, sizeof(buf) - 1);
	if (n > 6 && !memcmp(buf, "error ", 6)) {
		buf[n] = 0;
		fprintf(stderr, "subway quit: %s", buf + 6);
		close(fd);
		return 1;
	}
	while (n > 0 && (n = read(fd, buf, sizeof(buf))) > 0)
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
