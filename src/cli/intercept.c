/* `subway intercept`, `leave` and `list` (docs/intercepts.md): requests
 * the daemon passes on to the manager; the answer is one line. */
#include <errno.h>
#include <stdarg.h>
#include <getopt.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "commands.h"
#include "common/json.h"
#include "common/jsonget.h"
#include "common/paths.h"
#include "common/util.h"

#define ASK_TIMEOUT_MS 15000
#define ANSWER_MAX (1u << 20)
#define ENV_VARS_MAX 1024

extern char **environ;

/* The daemon's answer to req: 0 "ok" (*text is the rest), 1 "error"
 * (*text says why), -errno when no daemon answers.  *text is malloc'd. */
static int ask(const struct ctl_req *req, char **text)
{
	char path[108], line[CTL_LINE_MAX + 1], err[200];
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	struct pollfd pfd;
	int fd, r = -EIO;

	*text = NULL;
	if (!buf)
		return -ENOMEM;
	if (ctl_encode(req, line, sizeof(line), err, sizeof(err)) < 0) {
		snprintf(buf, cap, "%s", err);
		*text = buf;
		return 1;
	}
	paths_daemon(path, sizeof(path), NULL, 0);
	if ((fd = cli_request(path, line)) < 0) {
		free(buf);
		return fd;
	}
	pfd = (struct pollfd){ .fd = fd, .events = POLLIN };
	while (len < ANSWER_MAX && poll(&pfd, 1, ASK_TIMEOUT_MS) > 0) {
		ssize_t n;
		if (len + 1 >= cap) {
			char *b = realloc(buf, cap * 2);
			if (!b)
				break;
			buf = b;
			cap *= 2;
		}
		if ((n = read(fd, buf + len, cap - 1 - len)) <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = 0;
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
		buf[--len] = 0;
	if (!strncmp(buf, "ok", 2) && (!buf[2] || buf[2] == ' '))
		r = 0;
	else if (!strncmp(buf, "error ", 6))
		r = 1;
	memmove(buf, buf + (r == 0 ? (buf[2] ? 3 : 2) : r == 1 ? 6 : 0), strlen(buf) + 1);
	if (r == -EIO && !buf[0])
		snprintf(buf, cap, "no answer from the daemon");
	*text = buf;
	return r < 0 ? 1 : r;
}

static void not_running(const char *cmd)
{
	fprintf(stderr, "subway %s: not connected (no subway daemon runs here: subway connect first)\n", cmd);
}

/* "user@host": who holds an intercept, for other developers' messages. */
static void holder(char *out, size_t size)
{
	const char *user = getenv("SUDO_USER");
	struct passwd *pw = user ? NULL : getpwuid(getuid());
	char host[64] = "";

	gethostname(host, sizeof(host) - 1);
	snprintf(out, size, "%.30s@%.30s", user ? user : pw ? pw->pw_name : "someone", host[0] ? host : "laptop");
}

/* ---- intercept ---- */

struct icept_args {
	struct ctl_req req;
	const char *env_file, *env_json;
	char **cmd;       /* after --, or NULL */
	int n_headers;
	bool mirror;
	bool json;
};

static void intercept_usage(FILE *fp)
{
	fprintf(fp,
		"usage: subway intercept WORKLOAD --port LOCAL[:REMOTE] [-n NS] [--name NAME]\n"
		"                        [--http-header NAME=VALUE]... [--http-path-prefix P] [--mirror]\n"
		"                        [--env-file F] [--env-json F] [-- CMD ARGS...]\n\n"
		"Sends the connections to a port of WORKLOAD's pods (every replica) to a\n"
		"process on this machine.  WORKLOAD's pods must run the agent (subway inject).\n\n"
		"  --port LOCAL[:REMOTE]     LOCAL: a port here, or HOST:PORT; REMOTE: the container\n"
		"                            port, a number or its name (default: the only one)\n"
		"  -n, --namespace NS        WORKLOAD's namespace (default: default)\n"
		"  --name NAME               this intercept's name (default: WORKLOAD)\n"
		"  --http-header NAME=VALUE  personal: only HTTP requests with this header (several:\n"
		"                            all of them); the others still reach the pods\n"
		"  --http-path-prefix P      personal: only requests whose path starts with P\n"
		"  (a UDP port is intercepted globally: each client of it a flow of datagrams)\n"
		"  --mirror                  the pods answer as usual; this machine gets a copy of\n"
		"                            each (matching) request, its answers are dropped\n"
		"  --env-file F              the pod's environment as shell assignments\n"
		"                            (KEY='value'; read back with: set -a; . F; set +a)\n"
		"  --env-json F              ... as one JSON object\n"
		"  --json                    say what was taken as one JSON object (name, namespace,\n"
		"                            workload, port, local, mode, state, pods)\n"
		"  -- CMD ARGS...            run CMD with the pod's environment (but this machine's\n"
		"                            PATH and HOME); the intercept ends when CMD does, with\n"
		"                            its exit code; what this command says goes to stderr\n\n"
		"The intercept is ACTIVE once every pod's agent took the port; WAITING while no\n"
		"pod has a ready agent (it starts by itself when one has).  It lasts until\n"
		"subway leave or subway quit; if this machine goes away, the pods serve again\n"
		"and it resumes when the machine comes back within two minutes.\n");
}

/* LOCAL[:REMOTE], LOCAL being PORT or HOST:PORT (a host has dots). */
static int intercept_port(const char *s, struct ctl_req *req)
{
	char buf[96], ep[112], err[200], cut[STR_CUT_SIZE];
	char *c1, *remote = NULL;

	snprintf(buf, sizeof(buf), "%s", s);
	c1 = strchr(buf, ':');
	if (c1 && memchr(buf, '.', (size_t)(c1 - buf))) { /* HOST:PORT[:REMOTE] */
		if ((remote = strchr(c1 + 1, ':')))
			*remote++ = 0;
		snprintf(ep, sizeof(ep), "%s", buf);
	} else { /* PORT[:REMOTE] */
		if (c1) {
			*c1 = 0;
			remote = c1 + 1;
		}
		snprintf(ep, sizeof(ep), "127.0.0.1:%s", buf);
	}
	if (ctl_set(req, "local", ep, err, sizeof(err)) == 0 &&
	    (!remote || ctl_set(req, "port", remote, err, sizeof(err)) == 0))
		return 0;
	fprintf(stderr, "subway intercept: --port: '%s': %s\n", str_cut(s, strlen(s), cut, sizeof(cut)), err);
	return -EINVAL;
}

static int intercept_opt(int c, const char *v, struct icept_args *a)
{
	char err[200], key[24], hv[CTL_HEADER_MAX + 8];
	const char *flag = c == 'n' ? "--namespace" : c == 'N' ? "--name" : c == 'H' ? "--http-header"
			   : "--http-path-prefix";
	int r = 0;

	switch (c) {
	case 'p': return intercept_port(v, &a->req);
	case 'n': r = ctl_set(&a->req, "namespace", v, err, sizeof(err)); break;
	case 'N': r = ctl_set(&a->req, "name", v, err, sizeof(err)); break;
	case 'P': r = ctl_set(&a->req, "path", v, err, sizeof(err)); break;
	case 'H':
		if (a->n_headers == CTL_HEADERS_MAX || !strchr(v, '=') || strchr(v, '=') == v) {
			snprintf(err, sizeof(err), a->n_headers == CTL_HEADERS_MAX ? "at most %d" : "not NAME=VALUE",
				 CTL_HEADERS_MAX);
			r = -EINVAL;
			break;
		}
		snprintf(hv, sizeof(hv), "%s", v);
		*strchr(hv, '=') = ':';
		snprintf(key, sizeof(key), "header%d", ++a->n_headers);
		/* the table's PCT kind takes the decoded text through ctl_set: encode it first */
		{
			char enc[3 * sizeof(hv)];
			if (str_pct_encode(hv, strlen(hv), enc, sizeof(enc)) < 0)
				r = -EINVAL;
			else
				r = ctl_set(&a->req, key, enc, err, sizeof(err));
		}
		break;
	}
	if (r < 0)
		fprintf(stderr, "subway intercept: %s: %s\n", flag, err);
	return r;
}

/* 0, 1 after --help, -EINVAL after a message. */
static int intercept_args(int argc, char **argv, struct icept_args *a)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' }, { "namespace", required_argument, NULL, 'n' },
		{ "name", required_argument, NULL, 'N' }, { "http-header", required_argument, NULL, 'H' },
		{ "http-path-prefix", required_argument, NULL, 'P' }, { "mirror", no_argument, NULL, 'M' },
		{ "env-file", required_argument, NULL, 'e' }, { "env-json", required_argument, NULL, 'j' },
		{ "json", no_argument, NULL, 'J' }, { "help", no_argument, NULL, 'h' }, { 0 } };
	char err[200], who[CTL_NAME_MAX];
	int c, end = argc;

	a->req.verb = CTL_INTERCEPT;
	for (int i = 1; i < argc; i++) /* -- CMD...: not ours to parse */
		if (!strcmp(argv[i], "--")) {
			end = i;
			a->cmd = i + 1 < argc ? argv + i + 1 : NULL;
			break;
		}
	opterr = 0;
	while ((c = getopt_long(end, argv, ":hn:", opts, NULL)) != -1) {
		if (c == 'h') {
			intercept_usage(stdout);
			return 1;
		} else if (c == 'M') {
			a->mirror = true;
		} else if (c == 'J') {
			a->json = true;
		} else if (c == 'e' || c == 'j') {
			*(c == 'e' ? &a->env_file : &a->env_json) = optarg;
		} else if (c == ':' || c == '?') {
			cli_opt_error("intercept", c, argv[optind - 1]);
			return -EINVAL;
		} else if (intercept_opt(c, optarg, a) < 0) {
			return -EINVAL;
		}
	}
	if (optind >= end || optind + 1 < end) {
		fprintf(stderr, "subway intercept: %s\n", optind >= end ? "name the workload (subway list shows them)"
			: "one workload at a time (run CMD after --)");
		return -EINVAL;
	}
	if (ctl_set(&a->req, "workload", argv[optind], err, sizeof(err)) < 0) {
		fprintf(stderr, "subway intercept: WORKLOAD: %s\n", err);
		return -EINVAL;
	}
	if (!a->req.local.port) {
		fprintf(stderr, "subway intercept: --port LOCAL[:REMOTE] is needed\n");
		return -EINVAL;
	}
	if (!a->req.name[0])
		snprintf(a->req.name, sizeof(a->req.name), "%s", a->req.workload);
	a->req.mode = a->mirror ? 3 : a->n_headers || a->req.path[0] ? 2 : 1;
	holder(who, sizeof(who));
	snprintf(a->req.holder, sizeof(a->req.holder), "%s", who);
	return 0;
}

/* The pod's environment: "KEY=VALUE" strings (malloc'd), *n of them. */
static char **intercept_env(const char *name, int *n)
{
	struct ctl_req req = { .verb = CTL_ENV };
	char **vars = calloc(ENV_VARS_MAX + 1, sizeof(*vars));
	char *text, *save = NULL;

	*n = 0;
	snprintf(req.name, sizeof(req.name), "%s", name);
	if (!vars || ask(&req, &text) != 0) {
		fprintf(stderr, "subway intercept: cannot get the pod's environment: %s\n", vars ? text : "no memory");
		free(vars);
		return NULL;
	}
	for (char *tok = strtok_r(text, " ", &save); tok && *n < ENV_VARS_MAX; tok = strtok_r(NULL, " ", &save)) {
		size_t len = strlen(tok);
		char *v = malloc(len + 1);
		if (v && str_pct_decode(tok, len, v, len + 1) >= 0 && strchr(v, '='))
			vars[(*n)++] = v;
		else
			free(v);
	}
	free(text);
	return vars;
}

/* KEY='value': read back exactly by a POSIX shell (set -a; . FILE); a ' in
 * the value is '\'' and everything else, newlines too, stays as it is. */
static int write_env_file(const char *path, char **vars, int n)
{
	FILE *fp = fopen(path, "w");

	if (!fp)
		return -errno;
	fprintf(fp, "# the environment of an intercepted pod (subway intercept): set -a; . %s; set +a\n", path);
	for (int i = 0; i < n; i++) {
		const char *eq = strchr(vars[i], '=');
		fprintf(fp, "%.*s='", (int)(eq - vars[i]), vars[i]);
		for (const char *p = eq + 1; *p; p++)
			*p == '\'' ? fputs("'\\''", fp) : fputc(*p, fp);
		fputs("'\n", fp);
	}
	return fclose(fp) ? -errno : 0;
}

static int write_env_json(const char *path, char **vars, int n)
{
	FILE *fp = fopen(path, "w");
	struct json j;

	if (!fp)
		return -errno;
	json_init(&j, fp, true);
	json_obj_begin(&j, NULL);
	for (int i = 0; i < n; i++) {
		char *eq = strchr(vars[i], '=');
		*eq = 0;
		json_str(&j, vars[i], eq + 1);
		*eq = '=';
	}
	json_obj_end(&j);
	json_finish(&j);
	return fclose(fp) ? -errno : 0;
}

static int intercept_leave(const char *name)
{
	struct ctl_req req = { .verb = CTL_LEAVE };
	char *text;
	int r;

	snprintf(req.name, sizeof(req.name), "%s", name);
	r = ask(&req, &text);
	if (r != 0)
		fprintf(stderr, "subway intercept: leaving %s: %s\n", name, text ? text : "no daemon");
	free(text);
	return r;
}

/* Not taken from the pod for CMD: they name the pod's file system, not this
 * machine's (--env-file and --env-json keep them). */
static bool env_local_only(const char *kv)
{
	return !strncmp(kv, "PATH=", 5) || !strncmp(kv, "HOME=", 5);
}

/* CMD with the pod's environment over this one; the intercept ends with it. */
static int intercept_run(const struct icept_args *a, char **vars, int n)
{
	char **envp;
	int count = 0, st = 0;
	pid_t pid;

	for (char **e = environ; *e; e++)
		count++;
	if (!(envp = calloc((size_t)count + (size_t)n + 1, sizeof(*envp))))
		return 1;
	count = 0;
	for (char **e = environ; *e; e++) {
		size_t klen = strcspn(*e, "=");
		bool pod = false;
		for (int i = 0; i < n && !pod; i++)
			pod = !env_local_only(vars[i]) && !strncmp(vars[i], *e, klen) && vars[i][klen] == '=';
		if (!pod)
			envp[count++] = *e;
	}
	for (int i = 0; i < n; i++)
		if (!env_local_only(vars[i]))
			envp[count++] = vars[i];
	signal(SIGINT, SIG_IGN); /* the child gets it, and we leave after it */
	signal(SIGTERM, SIG_IGN);
	if ((pid = fork()) == 0) {
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		execvpe(a->cmd[0], a->cmd, envp);
		fprintf(stderr, "subway intercept: %s: %s\n", a->cmd[0], strerror(errno));
		_exit(127);
	}
	while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	free(envp);
	intercept_leave(a->req.name);
	if (pid < 0)
		return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* The daemon's answer (one JSON object), for people. */
static void intercept_say(FILE *out, const char *doc)
{
	size_t len = strlen(doc);
	char name[64] = "", ns[64] = "", wl[64] = "", local[32] = "", mode[16] = "", state[16] = "";
	uint64_t port = 0, pods = 0;

	jsonget_str(doc, len, "name", name, sizeof(name));
	jsonget_str(doc, len, "namespace", ns, sizeof(ns));
	jsonget_str(doc, len, "workload", wl, sizeof(wl));
	jsonget_str(doc, len, "local", local, sizeof(local));
	jsonget_str(doc, len, "mode", mode, sizeof(mode));
	jsonget_str(doc, len, "state", state, sizeof(state));
	jsonget_u64(doc, len, "port", &port);
	jsonget_u64(doc, len, "pods", &pods);
	fprintf(out, "intercept %s: %s/%s port %llu -> %s (%s): %s", name, ns, wl, (unsigned long long)port, local,
		mode, state);
	if (!strcmp(state, "ACTIVE"))
		fprintf(out, " on %llu pod(s)\n", (unsigned long long)pods);
	else
		fprintf(out, "; no pod of %s/%s has taken it yet (subway list shows its agents): it starts by "
		       "itself when one does\n", ns, wl);
}

int intercept_main(int argc, char **argv)
{
	struct icept_args a = { 0 };
	char *text, **vars = NULL;
	int r, n = 0;

	if ((r = intercept_args(argc, argv, &a)) != 0)
		return r > 0 ? 0 : 2;
	r = ask(&a.req, &text);
	if (r < 0) {
		not_running("intercept");
		return 1;
	}
	if (r) {
		fprintf(stderr, "subway intercept: %s\n", text);
		free(text);
		return 1;
	}
	/* with CMD, stdout is CMD's */
	if (a.json)
		fprintf(a.cmd ? stderr : stdout, "%s\n", text);
	else
		intercept_say(a.cmd ? stderr : stdout, text);
	fflush(stdout);
	free(text);
	if ((a.env_file || a.env_json || a.cmd) && !(vars = intercept_env(a.req.name, &n)))
		return 1;
	if ((a.env_file && (r = write_env_file(a.env_file, vars, n)) < 0) ||
	    (a.env_json && (r = write_env_json(a.env_json, vars, n)) < 0)) {
		fprintf(stderr, "subway intercept: cannot write the environment: %s\n", strerror(-r));
		return 1;
	}
	r = a.cmd ? intercept_run(&a, vars, n) : 0;
	for (int i = 0; i < n; i++)
		free(vars[i]);
	free(vars);
	return r;
}

/* ---- leave ---- */

int leave_main(int argc, char **argv)
{
	struct ctl_req req = { .verb = CTL_LEAVE };
	char err[200], *text;
	int r;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: subway leave NAME\n\nEnds the intercept NAME (subway status lists them); its pods serve again.\n");
		return 0;
	}
	if (argc != 2 || ctl_set(&req, "name", argv[1], err, sizeof(err)) < 0) {
		fprintf(stderr, "subway leave: %s\n", argc != 2 ? "name one intercept (subway leave NAME)" : err);
		return 2;
	}
	r = ask(&req, &text);
	if (r < 0) {
		not_running("leave");
		return 1;
	}
	fprintf(r ? stderr : stdout, "%s%s\n", r ? "subway leave: " : "", text);
	free(text);
	return r ? 1 : 0;
}

/* ---- list ---- */

/* Appends to a column being built; cut at its end. */
static void col_add(char *col, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void col_add(char *col, size_t size, const char *fmt, ...)
{
	size_t n = strlen(col);
	va_list ap;

	va_start(ap, fmt);
	if (n + 1 < size)
		vsnprintf(col + n, size - n, fmt, ap);
	va_end(ap);
}

static void list_text(const char *doc)
{
	size_t len = strlen(doc);
	char path[96], wl[64], ns[64], ports[64], agents[512], icepts[1024];
	uint64_t v;

	printf("%-12s %-20s %-10s %-30s %s\n", "NAMESPACE", "WORKLOAD", "PORTS", "AGENTS", "INTERCEPTS");
	for (int w = 0; w < 256; w++) {
		snprintf(path, sizeof(path), "workloads.%d.name", w);
		if (jsonget_str(doc, len, path, wl, sizeof(wl)) < 0)
			break;
		snprintf(path, sizeof(path), "workloads.%d.namespace", w);
		jsonget_str(doc, len, path, ns, sizeof(ns));
		ports[0] = agents[0] = icepts[0] = 0;
		for (int p = 0; p < 16; p++) {
			snprintf(path, sizeof(path), "workloads.%d.ports.%d.port", w, p);
			if (jsonget_u64(doc, len, path, &v) < 0)
				break;
			col_add(ports, sizeof(ports), "%s%llu", p ? "," : "", (unsigned long long)v);
		}
		for (int k = 0; k < 64; k++) {
			char pod[64];
			bool ready = false;
			snprintf(path, sizeof(path), "workloads.%d.agents.%d.pod", w, k);
			if (jsonget_str(doc, len, path, pod, sizeof(pod)) < 0)
				break;
			snprintf(path, sizeof(path), "workloads.%d.agents.%d.ready", w, k);
			jsonget_bool(doc, len, path, &ready);
			col_add(agents, sizeof(agents), "%s%s (%s)", k ? ", " : "", pod, ready ? "ready" : "not ready");
		}
		for (int k = 0; k < 32; k++) {
			char name[64], state[16] = "", who[64] = "", mode[16] = "";
			snprintf(path, sizeof(path), "workloads.%d.intercepts.%d.name", w, k);
			if (jsonget_str(doc, len, path, name, sizeof(name)) < 0)
				break;
			snprintf(path, sizeof(path), "workloads.%d.intercepts.%d.state", w, k);
			jsonget_str(doc, len, path, state, sizeof(state));
			snprintf(path, sizeof(path), "workloads.%d.intercepts.%d.holder", w, k);
			jsonget_str(doc, len, path, who, sizeof(who));
			snprintf(path, sizeof(path), "workloads.%d.intercepts.%d.mode", w, k);
			jsonget_str(doc, len, path, mode, sizeof(mode));
			col_add(icepts, sizeof(icepts), "%s%s %s %s by %s", k ? "; " : "", name, mode, state, who);
		}
		printf("%-12s %-20s %-10s %-30s %s\n", ns, wl, ports, agents[0] ? agents : "-", icepts[0] ? icepts : "-");
	}
}

int list_main(int argc, char **argv)
{
	struct ctl_req req = { .verb = CTL_LIST };
	bool json = false;
	char err[200], *text;
	int c, r;
	static const struct option opts[] = { { "namespace", required_argument, NULL, 'n' },
					      { "json", no_argument, NULL, 'J' },
					      { "help", no_argument, NULL, 'h' }, { 0 } };

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hn:", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: subway list [-n NS] [--json]\n\nThe workloads whose pods run the agent, their pods, and "
			       "their intercepts\n(ACTIVE, WAITING: no pod ready, INACTIVE: its laptop is away) and who holds "
			       "them.\n");
			return 0;
		} else if (c == 'J') {
			json = true;
		} else if (c == 'n' && ctl_set(&req, "namespace", optarg, err, sizeof(err)) < 0) {
			fprintf(stderr, "subway list: --namespace: %s\n", err);
			return 2;
		} else if (c != 'n') {
			cli_opt_error("list", c, argv[optind - 1]);
			return 2;
		}
	}
	r = ask(&req, &text);
	if (r < 0) {
		not_running("list");
		return 1;
	}
	if (r)
		fprintf(stderr, "subway list: %s\n", text);
	else if (json)
		printf("%s\n", text);
	else
		list_text(text);
	free(text);
	return r ? 1 : 0;
}
