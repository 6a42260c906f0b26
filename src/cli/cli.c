/* The user-facing commands: connect, status, quit.  They talk to the
 * daemon of the current network namespace over its unix socket. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <stdarg.h>
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
#include "common/paths.h"
#include "common/util.h"
#include "proto/ctlmsg.h"
#include "dns/resolv.h"
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
	/* A daemon that refuses us closes at once, its reason already sent:
	 * no SIGPIPE, and the reason is still read. */
	if ((send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len || send(fd, "\n", 1, MSG_NOSIGNAL) != 1) &&
	    errno != EPIPE && errno != ECONNRESET) {
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
		"  --no-loop-guard       let connections the cluster sends back through this\n"
		"                        machine loop (for demonstrations; see\n"
		"                        docs/vm-networking.md): only the daemon's caps bound them\n\n"
		"  --insecure            plain TCP, not encrypted: only for a manager started\n"
		"                        with --insecure\n\n"
		"While connected, cluster names resolve on the laptop (docs/dns.md).\n");
}

/* DNS, loop-guard and transport settings, passed on to the daemon. */
struct connect_flags {
	char ns[64];
	char also[256], never[256];
	bool off;
	bool no_loop_guard;
	int tos; /* -1: the manager's */
	bool insecure; /* plain TCP */
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
		{ "no-loop-guard", no_argument, NULL, 'G' }, { "insecure", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' }, { 0 } };
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
		case 'I': dns->insecure = true; break;
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

/* The manager's certificate fingerprint in hex, for the request: a token
 * file without one is refused unless the transport is insecure. */
static int connect_fingerprint(const char *tokpath, const struct token_file *tf, bool insecure,
			       char *out, size_t len)
{
	out[0] = 0;
	if (insecure)
		return 0;
	if (!tf->has_fingerprint) {
		fprintf(stderr, "subway connect: token file %s has no fingerprint=sha256:... line, so the "
				"manager cannot be told from an impostor; add the line the manager logs at start "
				"(or prints with --print-fingerprint), or use --insecure with a manager started "
				"with --insecure\n", tokpath);
		return -EINVAL;
	}
	for (size_t i = 0; i < sizeof(tf->fingerprint) && 2 * i + 3 <= len; i++)
		snprintf(out + 2 * i, 3, "%02x", tf->fingerprint[i]);
	return 0;
}

/* A request line built one " key=value" at a time; a value that does not
 * fit marks the line truncated rather than sending part of it. */
struct kvline {
	char *buf;
	size_t len, size;
	bool truncated;
};

static void kv_init(struct kvline *kv, char *buf, size_t size, const char *verb)
{
	*kv = (struct kvline){ .buf = buf, .size = size };
	kv->len = (size_t)snprintf(buf, size, "%s", verb);
	kv->truncated = kv->len >= size;
}

__attribute__((format(printf, 3, 4)))
static void kv_add(struct kvline *kv, const char *key, const char *fmt, ...)
{
	size_t room = kv->size - kv->len;
	va_list ap;
	int n, m;

	if (kv->truncated)
		return;
	n = snprintf(kv->buf + kv->len, room, " %s=", key);
	if (n < 0 || (size_t)n >= room)
		goto truncated;
	va_start(ap, fmt);
	m = vsnprintf(kv->buf + kv->len + n, room - (size_t)n, fmt, ap);
	va_end(ap);
	if (m < 0 || (size_t)m >= room - (size_t)n)
		goto truncated;
	kv->len += (size_t)n + (size_t)m;
	return;
truncated:
	kv->buf[kv->len] = 0; /* drop the partial pair */
	kv->truncated = true;
}

/* The connect request for the daemon (ctl_parse.c); -E2BIG if it does not
 * fit in one control line. */
static int connect_request(char *req, size_t size, const char *ep, const char *hex, const char *fp,
			   const char *owner, const struct connect_flags *f)
{
	struct kvline kv;

	kv_init(&kv, req, size, "connect");
	kv_add(&kv, "manager", "%s", ep);
	kv_add(&kv, "token", "%s", hex);
	if (f->insecure)
		kv_add(&kv, "insecure", "1");
	else
		kv_add(&kv, "fingerprint", "sha256:%s", fp);
	if (owner)
		kv_add(&kv, "owner", "%s", owner);
	if (f->ns[0])
		kv_add(&kv, "namespace", "%s", f->ns);
	if (f->also[0])
		kv_add(&kv, "also_proxy", "%s", f->also);
	if (f->never[0])
		kv_add(&kv, "never_proxy", "%s", f->never);
	if (f->off)
		kv_add(&kv, "dns", "off");
	if (f->no_loop_guard)
		kv_add(&kv, "loopguard", "off");
	if (f->tos >= 0)
		kv_add(&kv, "tos", "%d", f->tos);
	return kv.truncated ? -E2BIG : 0;
}

int connect_main(int argc, char **argv)
{
	char tokpath[256] = "", ep[300] = "", err[200], req[CTL_LINE_MAX], path[108], hex[AUTH_TOKEN_MAX * 2 + 1];
	struct token_file tf;
	char fp[2 * sizeof(tf.fingerprint) + 1];
	struct connect_flags dns = { .off = false, .tos = -1 };
	const char *sudo_uid = getenv("SUDO_UID");
	int ret = connect_args(argc, argv, tokpath, sizeof(tokpath), ep, sizeof(ep), &dns);

	if (ret < 0)
		return ret == -EINVAL ? 2 : 1;
	if (sudo_uid && (!sudo_uid[0] || strspn(sudo_uid, "0123456789") != strlen(sudo_uid)))
		sudo_uid = NULL; /* a value, not more keys for the request */
	if (auth_token_file_load(tokpath, &tf, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway connect: token file %s: %s\n", tokpath, err);
		return 1;
	}
	if (connect_fingerprint(tokpath, &tf, dns.insecure, fp, sizeof(fp)) < 0) {
		auth_token_wipe(&tf.token);
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
	paths_daemon(path, sizeof(path), NULL, 0);
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
	paths_daemon(path, sizeof(path), NULL, 0);
	ret = connect_request(req, sizeof(req), ep, hex, fp, sudo_uid, &dns);
	explicit_bzero(hex, sizeof(hex));
	if (ret < 0) {
		explicit_bzero(req, sizeof(req));
		fprintf(stderr, "subway connect: the request does not fit in %d bytes\n", CTL_LINE_MAX);
		return 1;
	}
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
	bool first = true, error = false;
	int fd;
	ssize_t n;

	paths_daemon(path, sizeof(path), NULL, 0);
	fd = cli_request(path, req);
	if (fd < 0) {
		if (json_fallback)
			printf("{\"connected\": false, \"state\": \"not running\"}\n");
		else
			printf("not connected (no subway daemon runs in this network namespace)\n");
		return 0;
	}
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		/* "error ..." (a refusal): one line on stderr, exit 1. */
		if (first && n > 6 && !memcmp(buf, "error ", 6)) {
			error = true;
			fprintf(stderr, "subway %s: ", cmd);
			fwrite(buf + 6, 1, (size_t)n - 6, stderr);
		} else {
			fwrite(buf, 1, (size_t)n, error ? stderr : stdout);
		}
		first = false;
	}
	close(fd);
	return error ? 1 : 0;
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
	paths_daemon(path, sizeof(path), NULL, 0);
	fd = cli_request(path, "quit");
	if (fd < 0) {
		/* A daemon that was killed may have left resolv.conf behind. */
		if (geteuid() == 0 && resolv_restore() > 0)
			printf("restored %s, which a killed subway daemon had left behind\n", RESOLV_PATH);
		printf("not connected (no subway daemon runs in this network namespace)\n");
		return 0;
	}
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
