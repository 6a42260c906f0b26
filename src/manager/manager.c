/* subway manager: arguments, the listener, signals, the dial policy and
 * the counters. */
#include "manager/manager.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "commands.h"
#include "manager/conn.h"
#include "manager/intercept.h"
#include "manager/dns.h"
#include "manager/icmp.h"
#include "manager/session.h"
#include "manager/worker.h"
#include "common/log.h"
#include "manager/discover.h"
#include "net/listener.h"
#include "net/sock.h"
#include "net/tls.h"

#define MGR_NOFILE_WANT 1048576
#define MGR_FORBIDDEN_LOGS 16 /* info lines about refused destinations, then debug only */

static void manager_usage(FILE *fp)
{
	fprintf(fp,
		"usage: subway manager --listen ADDR:PORT --token-file FILE\n"
		"                      (--tls-dir DIR | --cert F --key F | --insecure) [OPTIONS]\n"
		"       subway manager (--tls-dir DIR | --cert F --key F) --print-fingerprint\n"
		"\n"
		"The cluster side of the tunnel: authenticates clients, dials pod and service\n"
		"addresses for them, relays UDP, ICMP echo and DNS.\n"
		"\n"
		"  --listen ADDR:PORT        address to accept tunnel connections on\n"
		"  --token-file FILE         shared token (a line token=<hex>; namespaces=A,B\n"
		"                            limits its intercepts); several for several teams\n"
		"  --agent-token-file FILE   the agents' token: intercepts (without it, no agents)\n"
		"  --tls-dir DIR             TLS 1.3 with DIR/key.pem and DIR/cert.pem, made at\n"
		"                            first start (an Ed25519 key, a self-signed certificate)\n"
		"  --cert FILE --key FILE    TLS 1.3 with this certificate and key\n"
		"  --insecure                plaintext TCP, no TLS (tests, or a transport that\n"
		"                            already encrypts)\n"
		"  --print-fingerprint       print fingerprint=sha256:... for token files and exit\n"
		"  --pod-cidr CIDR[,CIDR]    the cluster's pod networks (default: the /16 holding\n"
		"                            POD_IP, or the pod's address)\n"
		"  --service-cidr CIDR       the cluster's service network (default: the /16 holding\n"
		"                            KUBERNETES_SERVICE_HOST; the /12 in 10.96.0.0/12)\n"
		"  --cluster-domain NAME     DNS domain of the cluster (default: from the search\n"
		"                            list of /etc/resolv.conf, else cluster.local)\n"
		"  --dns IP[:PORT]           cluster DNS server (default: first nameserver of\n"
		"                            /etc/resolv.conf)\n"
		"  --nodes IP[,IP...]        node addresses clients may dial (and HOST_IP)\n"
		"  --tos N                   IP TOS byte put on every socket the manager dials,\n"
		"                            0..255 with the ECN bits clear, 0 for none\n"
		"                            (default 0x04, DSCP 1)\n"
		"  --dial-timeout-ms N       default dial timeout (default 5000)\n"
		"  --limit KEY=N             per-session limits: flows (16384 flow connections),\n"
		"                            dials (512 in progress), dial-rate (20000/s),\n"
		"                            dial-burst (20000), udp (1024 flows); and sessions\n"
		"                            (256 at once); see docs/security.md\n"
		"  --threads N               threads: the laptops' lane trunks (connect --threads)\n"
		"                            are spread over N-1 workers besides the main one\n"
		"                            (1..4, default: the number of cores, at most 4)\n"
		"  --log FILE                log to FILE instead of stderr\n"
		"  -v, --verbose             debug logging\n"
		"  -h, --help                this help\n"
		"\n"
		"Inside a pod the cluster's values need no flag; SUBWAY_POD_CIDR,\n"
		"SUBWAY_SERVICE_CIDR, SUBWAY_CLUSTER_DOMAIN, SUBWAY_DNS and SUBWAY_NODES set\n"
		"them too (a flag wins).  SIGUSR1 logs the counters; SIGTERM and SIGINT stop\n"
		"the manager.\n");
}

static int arg_error(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "subway manager: %s: %s '%s'\n", opt, why, val);
	return -EINVAL;
}

static int parse_nodes(const char *s, struct mgr_config *c)
{
	char buf[PROTO_NODES_MAX * 16 + 16];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf))
		return arg_error("--nodes", s, "too many nodes in");
	snprintf(buf, sizeof(buf), "%s", s);
	c->n_nodes = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (c->n_nodes == PROTO_NODES_MAX)
			return arg_error("--nodes", s, "more than 16 nodes in");
		if (ip4_parse(t, &c->nodes[c->n_nodes]) < 0)
			return arg_error("--nodes", t, "not an IPv4 address:");
		c->n_nodes++;
	}
	return 0;
}

static int parse_domain(const char *s, struct mgr_config *c)
{
	size_t n = strlen(s);

	if (n == 0 || n >= sizeof(c->domain) || s[0] == '.' || s[0] == '-')
		return arg_error("--cluster-domain", s, "not a domain name:");
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '.'))
			return arg_error("--cluster-domain", s, "not a domain name:");
	}
	memcpy(c->domain, s, n + 1);
	return 0;
}

static int parse_tos(const char *s, struct mgr_config *c)
{
	char *end = NULL;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (!*s || *end || errno || v > 255 || s[0] == '-')
		return arg_error("--tos", s, "not a number 0..255:");
	if (v & 3)
		return arg_error("--tos", s, "ECN bits (0x03) must be clear in");
	c->tos = (uint8_t)v;
	return 0;
}

/* IP, or IP:PORT (a resolver on another port, for tests). */
static int parse_dns(const char *s, struct mgr_config *c)
{
	c->dns_port = 53;
	if ((strchr(s, ':') ? endpoint_parse(s, &c->dns, &c->dns_port) : ip4_parse(s, &c->dns)) < 0 ||
	    c->dns == 0)
		return arg_error("--dns", s, "not an IPv4 address:");
	return 0;
}

static int parse_limit(const char *s, struct mgr_limits *lim)
{
	static const struct { const char *key; size_t off; } keys[] = {
		{ "sessions", offsetof(struct mgr_limits, sessions) },
		{ "flows", offsetof(struct mgr_limits, flows) },
		{ "dials", offsetof(struct mgr_limits, dials) },
		{ "dial-rate", offsetof(struct mgr_limits, dial_rate) },
		{ "dial-burst", offsetof(struct mgr_limits, dial_burst) },
		{ "udp", offsetof(struct mgr_limits, udp) },
	};
	const char *eq = strchr(s, '=');
	uint64_t v;

	for (size_t i = 0; eq && i < ARRAY_SIZE(keys); i++) {
		if (strlen(keys[i].key) != (size_t)(eq - s) || strncmp(s, keys[i].key, (size_t)(eq - s)))
			continue;
		if (u64_parse(eq + 1, 1000000, &v) < 0 || v == 0)
			return arg_error("--limit", s, "not a number 1..1000000 in");
		*(uint32_t *)((char *)lim + keys[i].off) = (uint32_t)v;
		return 0;
	}
	return arg_error("--limit", s, "not sessions|flows|dials|dial-rate|dial-burst|udp=N:");
}

static int parse_opt_tls(int opt, const char *arg, struct mgr_config *c)
{
	switch (opt) {
	case 'I':
		c->insecure = true;
		return 0;
	case 'S':
		c->tls_dir = arg;
		return 0;
	case 'C':
		c->cert_path = arg;
		return 0;
	case 'K':
		c->key_path = arg;
		return 0;
	case 'F':
		c->print_fingerprint = true;
		return 0;
	case 'M':
		return parse_limit(arg, &c->lim);
	}
	return -EINVAL;
}

static int parse_opt(int opt, const char *arg, struct mgr_config *c)
{
	uint64_t v;

	switch (opt) {
	case 'l':
		return endpoint_parse(arg, &c->listen_addr, &c->listen_port) < 0
			       ? arg_error("--listen", arg, "not an IPv4 ADDR:PORT:")
			       : 0;
	case 't':
		if (c->n_tokens >= MGR_TOKENS_MAX)
			return arg_error("--token-file", arg, "too many (at most 16):");
		c->tokens[c->n_tokens++].path = arg;
		return 0;
	case 'a':
		c->agent_token_path = arg;
		return 0;
	case 'p':
		c->flags[INFO_SRC_POD] = arg;
		return cidr_list_parse(arg, &c->pod) < 0 ? arg_error("--pod-cidr", arg, "bad CIDR list")
							 : 0;
	case 's':
		c->flags[INFO_SRC_SVC] = arg;
		return cidr_list_parse(arg, &c->svc) < 0
			       ? arg_error("--service-cidr", arg, "bad CIDR")
			       : 0;
	case 'd':
		c->flags[INFO_SRC_DOMAIN] = arg;
		return parse_domain(arg, c);
	case 'D':
		c->flags[INFO_SRC_DNS] = arg;
		return parse_dns(arg, c);
	case 'n':
		c->flags[INFO_SRC_NODES] = arg;
		return parse_nodes(arg, c);
	case 'T':
		return parse_tos(arg, c);
	case 'o':
		if (u64_parse(arg, PROTO_DIAL_TIMEOUT_MAX_MS, &v) < 0 || v == 0)
			return arg_error("--dial-timeout-ms", arg, "not a number 1..300000:");
		c->dial_timeout_ms = (uint32_t)v;
		return 0;
	case 'L':
		c->log_path = arg;
		return 0;
	case 'P':
		if (u64_parse(arg, MGR_WORKERS_MAX, &v) < 0 || v == 0)
			return arg_error("--threads", arg, "not a number 1..4:");
		c->threads = (int)v;
		return 0;
	case 'v':
		c->verbose = true;
		return 0;
	}
	return parse_opt_tls(opt, arg, c);
}

static const struct option manager_opts[] = {
	{ "listen", required_argument, NULL, 'l' },
	{ "token-file", required_argument, NULL, 't' },
	{ "agent-token-file", required_argument, NULL, 'a' },
	{ "pod-cidr", required_argument, NULL, 'p' },
	{ "service-cidr", required_argument, NULL, 's' },
	{ "cluster-domain", required_argument, NULL, 'd' },
	{ "dns", required_argument, NULL, 'D' },
	{ "nodes", required_argument, NULL, 'n' },
	{ "tos", required_argument, NULL, 'T' },
	{ "dial-timeout-ms", required_argument, NULL, 'o' },
	{ "log", required_argument, NULL, 'L' },
	{ "threads", required_argument, NULL, 'P' },
	{ "insecure", no_argument, NULL, 'I' },
	{ "tls-dir", required_argument, NULL, 'S' },
	{ "cert", required_argument, NULL, 'C' },
	{ "key", required_argument, NULL, 'K' },
	{ "print-fingerprint", no_argument, NULL, 'F' },
	{ "limit", required_argument, NULL, 'M' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* Exactly one way to run the transport. */
static int manager_args_tls(const struct mgr_config *c)
{
	int ways = c->insecure + !!c->tls_dir + !!(c->cert_path || c->key_path);

	if (ways != 1 || (!c->tls_dir && !c->insecure && (!c->cert_path || !c->key_path))) {
		fprintf(stderr, "subway manager: give one of --tls-dir DIR, --cert FILE --key FILE, or "
				"--insecure (try --help)\n");
		return -EINVAL;
	}
	if (c->print_fingerprint && c->insecure) {
		fprintf(stderr, "subway manager: --print-fingerprint needs --tls-dir or --cert/--key\n");
		return -EINVAL;
	}
	return 0;
}

static void manager_defaults(struct mgr_config *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->domain, sizeof(c->domain), "cluster.local");
	c->tos = MGR_TOS_DEFAULT;
	c->dial_timeout_ms = MGR_DIAL_TIMEOUT_DEFAULT;
	c->lim = (struct mgr_limits){ .sessions = MGR_SESSIONS_MAX, .flows = MGR_SESSION_FLOWS_MAX,
				      .dials = MGR_SESSION_DIALS_MAX, .dial_rate = MGR_SESSION_DIAL_RATE,
				      .dial_burst = MGR_SESSION_DIAL_BURST, .udp = MGR_SESSION_UDP_MAX };
}

/* The first IPv4 address not on loopback, or 0. */
static uint32_t first_if_addr(void)
{
	struct ifaddrs *ifa;
	uint32_t a = 0;

	if (getifaddrs(&ifa) < 0)
		return 0;
	for (struct ifaddrs *i = ifa; i && !a; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET && !(i->ifa_flags & IFF_LOOPBACK))
			a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
	freeifaddrs(ifa);
	return a;
}

/* Flags, then SUBWAY_* variables, then what the pod shows (discover.h). */
static int manager_discover(struct mgr_config *c)
{
	struct discover_in in = { .flag_pod = c->flags[INFO_SRC_POD], .flag_svc = c->flags[INFO_SRC_SVC],
				  .flag_domain = c->flags[INFO_SRC_DOMAIN], .flag_dns = c->flags[INFO_SRC_DNS],
				  .flag_nodes = c->flags[INFO_SRC_NODES] };
	struct discover_out out;
	char resolv[4096], err[256];

	discover_gather(&in, resolv, sizeof(resolv), first_if_addr());
	if (discover_run(&in, &out, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway manager: %s\n", err);
		return -EINVAL;
	}
	c->pod = out.pod;
	c->svc = out.svc;
	snprintf(c->domain, sizeof(c->domain), "%s", out.domain);
	c->dns = out.dns;
	c->dns_port = out.dns_port;
	c->n_nodes = out.n_nodes;
	memcpy(c->nodes, out.nodes, sizeof(c->nodes));
	memcpy(c->src, out.src, sizeof(c->src));
	return 0;
}

/* 0, 1 for --help, or -EINVAL (message printed). */
static int manager_args(int argc, char **argv, struct mgr_config *c)
{
	int opt;

	manager_defaults(c);
	opterr = 0;
	optind = 1;
	while ((opt = getopt_long(argc, argv, ":vh", manager_opts, NULL)) != -1) {
		if (opt == 'h')
			return 1;
		if (opt == '?' || opt == ':') {
			fprintf(stderr, "subway manager: %s '%s' (try --help)\n",
				opt == ':' ? "missing value for" : "unknown option",
				argv[optind - 1]);
			return -EINVAL;
		}
		if (parse_opt(opt, optarg, c) < 0)
			return -EINVAL;
	}
	if (optind < argc)
		return arg_error("manager", argv[optind], "unexpected argument");
	if (manager_args_tls(c) < 0)
		return -EINVAL;
	if (c->print_fingerprint)
		return 0;
	if (!c->listen_port || !c->n_tokens) {
		fprintf(stderr, "subway manager: --listen and --token-file are required (try --help)\n");
		return -EINVAL;
	}
	return manager_discover(c);
}


static void mgr_addresses(struct mgr *m)
{
	struct ifaddrs *ifa, *i;

	if (getifaddrs(&ifa) < 0) {
		log_warn("getifaddrs: %s", strerror(errno));
		return;
	}
	for (i = ifa; i; i = i->ifa_next) {
		uint32_t a;
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		a = ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr);
		if (m->n_local < (int)ARRAY_SIZE(m->local))
			m->local[m->n_local++] = a;
		if (!(i->ifa_flags & IFF_LOOPBACK) && (a >> 24) != 127 &&
		    m->n_own < PROTO_MANAGERS_MAX)
			m->own[m->n_own++] = a;
	}
	freeifaddrs(ifa);
}

static bool mgr_is_local(const struct mgr *m, uint32_t addr)
{
	if (addr == 0 || (addr >> 24) == 127)
		return true;
	for (int i = 0; i < m->n_local; i++)
		if (m->local[i] == addr)
			return true;
	return false;
}

/* Not an open proxy: only the cluster's networks and nodes. */
bool mgr_addr_allowed(const struct mgr *m, uint32_t addr)
{
	const struct mgr_config *c = &m->cfg;
	bool known = cidr_list_contains(&c->pod, addr) || cidr_list_contains(&c->svc, addr);

	for (int i = 0; !known && i < c->n_nodes; i++)
		known = c->nodes[i] == addr;
	return known && addr != 0 && addr != 0xffffffffu && (addr >> 28) != 0xe;
}

/* ... and never the manager's own listener (a client could make it dial
 * itself forever). */
bool mgr_dial_allowed(const struct mgr *m, uint32_t addr, uint16_t port)
{
	const struct mgr_config *c = &m->cfg;

	if (!mgr_addr_allowed(m, addr) || port == 0)
		return false;
	if (port == c->listen_port &&
	    (addr == c->listen_addr || (c->listen_addr == 0 && mgr_is_local(m, addr)) ||
	     ((c->listen_addr >> 24) == 127 && (addr >> 24) == 127)))
		return false;
	return true;
}

void mgr_forbidden(struct mgr *m, const char *session, const char *proto, uint32_t addr, uint16_t port)
{
	uint64_t *n = proto[0] == 't' ? &m->st.forbidden_tcp
		      : proto[0] == 'u' ? &m->st.forbidden_udp : &m->st.forbidden_icmp;
	uint64_t all; /* refused before this one */
	char dst[24];

	__atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
	all = __atomic_load_n(&m->st.forbidden_tcp, __ATOMIC_RELAXED) +
	      __atomic_load_n(&m->st.forbidden_udp, __ATOMIC_RELAXED) +
	      __atomic_load_n(&m->st.forbidden_icmp, __ATOMIC_RELAXED) - 1;
	mgr_peer_str(addr, port, dst);
	if (all < MGR_FORBIDDEN_LOGS)
		log_info("session %s: %s to %s refused: outside the cluster's networks and nodes%s",
			 session, proto, dst, all + 1 == MGR_FORBIDDEN_LOGS ? " (further ones: debug)" : "");
	else
		log_debug("session %s: %s to %s refused", session, proto, dst);
}

const char *mgr_peer_str(uint32_t addr, uint16_t port, char buf[24])
{
	char ip[16];

	snprintf(buf, 24, "%s:%u", ip4_str(addr, ip), port);
	return buf;
}

void mgr_log_stats(const struct mgr *m)
{
	const struct mgr_stats *s = &m->st;

	log_info("sessions %lu active %lu total; conns %lu accepted, %lu auth ok, %lu auth failed, "
		 "%lu auth timeouts, %lu pre-auth dropped, accept paused %lu times",
		 s->sessions_active, s->sessions_total, s->conns_accepted, s->auth_ok,
		 s->auth_failed, s->auth_timeouts, s->preauth_dropped, m->listener.paused);
	log_info("flows %lu active %lu total; dials ok %lu refused %lu unreachable %lu timeout %lu "
		 "forbidden %lu error %lu limit %lu; bytes up %lu down %lu",
		 s->flows_active, s->flows_total, s->dials[DIAL_OK], s->dials[DIAL_REFUSED],
		 s->dials[DIAL_UNREACHABLE], s->dials[DIAL_TIMEOUT], s->dials[DIAL_FORBIDDEN],
		 s->dials[DIAL_ERROR], s->dials[DIAL_LIMIT], s->bytes_up, s->bytes_down);
	log_info("udp flows %lu active %lu total, datagrams up %lu down %lu dropped %lu; "
		 "pings %lu pongs %lu timeouts %lu; dns %lu queries %lu replies %lu dropped %lu tcp; "
		 "bad frames %lu",
		 s->udp_flows_active, s->udp_flows_total, s->udp_dgrams_up, s->udp_dgrams_down,
		 s->udp_dropped, s->pings, s->pongs, s->ping_timeouts, s->dns_queries,
		 s->dns_replies, s->dns_dropped, s->dns_tcp, s->frames_bad);
	log_info("tls %lu handshakes (%lu resumed), %lu failed; forbidden tcp %lu udp %lu icmp %lu; "
		 "limits hit: sessions %lu flows %lu dials %lu dial-rate %lu udp %lu",
		 s->tls_ok, s->tls_resumed, s->tls_failed, s->forbidden_tcp, s->forbidden_udp,
		 s->forbidden_icmp, s->limit_sessions, s->limit_flows, s->limit_dials, s->limit_rate,
		 s->limit_udp);
	log_info("intercepts %u, agents %u; agents refused %lu, intercepts outside the token's namespaces %lu",
		 m->n_intercepts, m->n_agents, s->agents_refused, s->intercepts_forbidden);
}

static void mgr_on_accept(void *arg, int fd)
{
	conn_accept(arg, fd);
}

static void mgr_on_signal(struct loop *l, int fd, uint32_t events, void *arg)
{
	struct mgr *m = arg;
	struct signalfd_siginfo si;

	(void)events;
	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGUSR1) {
			mgr_log_stats(m);
			continue;
		}
		log_info("signal %u: stopping", si.ssi_signo);
		loop_stop(l);
	}
}

static int mgr_signals(struct mgr *m)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGUSR1 };

	m->sig_fd = loop_signalfd(m->loop, sigs, ARRAY_SIZE(sigs), mgr_on_signal, m);
	return m->sig_fd < 0 ? m->sig_fd : 0;
}

static int mgr_load_token(const char *path, struct auth_token *out, char *namespaces, size_t nslen)
{
	struct token_file tf;
	char err[256] = "";
	int ret = auth_token_file_load(path, &tf, err, sizeof(err));

	if (ret < 0) {
		log_err("token file %s: %s", path, err[0] ? err : strerror(-ret));
		return ret;
	}
	*out = tf.token;
	auth_token_wipe(&tf.token);
	if (namespaces)
		snprintf(namespaces, nslen, "%s", tf.namespaces);
	return 0;
}

/* The laptops' tokens, and the agents' when they are taken. */
static int mgr_load_tokens(struct mgr *m)
{
	int ret = 0;

	for (int i = 0; i < m->cfg.n_tokens && ret == 0; i++) {
		struct mgr_token *t = &m->cfg.tokens[i];
		ret = mgr_load_token(t->path, &t->tok, t->namespaces, sizeof(t->namespaces));
		if (ret == 0 && t->namespaces[0])
			log_info("token file %s: intercepts in %s only", t->path, t->namespaces);
	}
	if (ret == 0 && m->cfg.agent_token_path) {
		ret = mgr_load_token(m->cfg.agent_token_path, &m->cfg.agent_token, NULL, 0);
		m->cfg.agents = ret == 0;
	}
	return ret;
}

/* The certificate and key: from files, or from --tls-dir (made there at
 * first start).  0 or -errno (logged). */
static int mgr_tls_files(const struct mgr_config *c, char *cert, char *key, size_t len)
{
	char err[512];
	bool created = false;
	int ret;

	if (!c->tls_dir) {
		snprintf(cert, len, "%s", c->cert_path);
		snprintf(key, len, "%s", c->key_path);
		return 0;
	}
	ret = tls_dir_ensure(c->tls_dir, cert, key, len, &created, err, sizeof(err));
	if (ret < 0)
		log_err("TLS: %s", err);
	else if (created)
		log_info("TLS: made a new key and certificate in %s", c->tls_dir);
	return ret;
}

static int mgr_tls_init(struct mgr *m)
{
	char cert[512], key[512], err[512], fp[TLS_FP_HEX_LEN + 1];
	int ret;

	if (m->cfg.insecure) {
		log_warn("--insecure: no TLS; tunnel bytes cross the network in the clear (the token "
			 "itself never does)");
		return 0;
	}
	if ((ret = mgr_tls_files(&m->cfg, cert, key, sizeof(cert))) < 0)
		return ret;
	m->tls_ctx = tls_server_ctx(cert, key, m->fingerprint, err, sizeof(err));
	if (!m->tls_ctx) {
		log_err("TLS: %s", err);
		return -EINVAL;
	}
	log_info("TLS 1.3 with %s; clients pin fingerprint=%s", cert, tls_fp_str(m->fingerprint, fp));
	return 0;
}

/* --print-fingerprint: the line for token files, on stdout. */
static int mgr_print_fingerprint(const struct mgr_config *c)
{
	char cert[512], key[512], err[512], fp[TLS_FP_HEX_LEN + 1];
	uint8_t raw[TLS_FP_LEN];

	if (mgr_tls_files(c, cert, key, sizeof(cert)) < 0)
		return 1;
	if (tls_cert_fingerprint(cert, raw, err, sizeof(err)) < 0) {
		fprintf(stderr, "subway manager: %s\n", err);
		return 1;
	}
	printf("fingerprint=%s\n", tls_fp_str(raw, fp));
	return 0;
}

static int mgr_listen(struct mgr *m)
{
	char ep[24];
	int r = listener_init(&m->listener, m->loop, sock_listen_tcp(m->cfg.listen_addr, m->cfg.listen_port, 1024),
			      MGR_ACCEPT_BATCH, "tunnel connections", mgr_on_accept, m);

	if (r < 0)
		log_err("cannot listen on %s: %s", mgr_peer_str(m->cfg.listen_addr, m->cfg.listen_port, ep),
			strerror(-r));
	return r;
}

static int mgr_init(struct mgr *m)
{
	int ret;

	/* It needs no privilege (ping sockets, not raw ones, where
	 * ping_group_range allows): nothing it runs may gain any. */
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	if (geteuid() == 0)
		log_warn("running as root: the manager needs no privilege; run it as another user");
	list_init(&m->preauth);
	list_init(&m->sessions);
	m->listener.fd = m->sig_fd = m->ping_fd = m->dns_fd = -1;
	sock_raise_nofile(MGR_NOFILE_WANT);
	mgr_addresses(m);
	m->loop = loop_new();
	if (!m->loop)
		return -ENOMEM;
	if ((ret = mgr_load_tokens(m)) < 0 || (ret = mgr_tls_init(m)) < 0 || (ret = mgr_signals(m)) < 0)
		return ret;
	intercept_init(m);
	if ((ret = icmp_init(m)) < 0 || (ret = dns_init(m)) < 0)
		return ret;
	if ((ret = workers_start(m, m->cfg.threads ? m->cfg.threads : cpus_usable(MGR_WORKERS_MAX))) < 0) {
		log_err("cannot start the worker threads: %s", strerror(-ret));
		return ret;
	}
	return mgr_listen(m);
}

static void mgr_fini(struct mgr *m)
{
	workers_stop(m); /* first: their trunks hold references to sessions */
	while (!list_empty(&m->sessions))
		session_free(list_entry(m->sessions.next, struct session, link));
	conn_free_all(m);
	intercept_fini(m);
	listener_fini(&m->listener);
	icmp_fini(m);
	dns_fini(m);
	if (m->sig_fd >= 0)
		close(m->sig_fd);
	loop_free(m->loop);
	tls_ctx_free(m->tls_ctx);
	for (int i = 0; i < m->cfg.n_tokens; i++)
		auth_token_wipe(&m->cfg.tokens[i].tok);
	auth_token_wipe(&m->cfg.agent_token);
}

/* What the manager announces, and where each value came from. */
static void log_cluster(const struct mgr_config *c)
{
	char pod[20], svc[20], dns[16];
	const uint8_t *s = c->src;

	log_info("cluster: pod CIDR %s%s (%s), service CIDR %s%s (%s), domain %s (%s), dns %s (%s), "
		 "%d node(s) (%s)", cidr4_str(&c->pod.v[0], pod), c->pod.n > 1 ? " ..." : "",
		 info_source_name(s[INFO_SRC_POD]), cidr4_str(&c->svc.v[0], svc), c->svc.n > 1 ? " ..." : "",
		 info_source_name(s[INFO_SRC_SVC]), c->domain, info_source_name(s[INFO_SRC_DOMAIN]),
		 c->dns ? ip4_str(c->dns, dns) : "none", info_source_name(s[INFO_SRC_DNS]), c->n_nodes,
		 info_source_name(s[INFO_SRC_NODES]));
}

static void mgr_log_start(const struct mgr *m)
{
	const struct mgr_limits *l = &m->cfg.lim;
	char ep[24], dns[16];

	log_info("subway manager %s listening on %s (%s); %d pod CIDR(s), %d service CIDR(s), "
		 "%d node(s), dns %s, tos 0x%02x, dial timeout %u ms",
		 SUBWAY_VERSION, mgr_peer_str(m->cfg.listen_addr, m->cfg.listen_port, ep),
		 m->tls_ctx ? "tls" : "tcp-insecure", m->cfg.pod.n, m->cfg.svc.n, m->cfg.n_nodes,
		 m->cfg.dns ? ip4_str(m->cfg.dns, dns) : "none", m->cfg.tos,
		 m->cfg.dial_timeout_ms);
	log_cluster(&m->cfg);
	if (m->n_workers)
		log_info("%d worker thread(s) for the laptops' lane trunks", m->n_workers);
	log_info("limits: %u sessions; per session %u flows, %u dials in progress, %u dials/s "
		 "(burst %u), %u udp flows", l->sessions, l->flows, l->dials, l->dial_rate,
		 l->dial_burst, l->udp);
}

int manager_main(int argc, char **argv)
{
	struct mgr *m = calloc(1, sizeof(*m));
	int ret;

	if (!m)
		return 1;
	ret = manager_args(argc, argv, &m->cfg);
	if (ret != 0) {
		if (ret > 0)
			manager_usage(stdout);
		free(m);
		return ret > 0 ? 0 : 2;
	}
	log_open(m->cfg.log_path, "subway-manager");
	if (m->cfg.print_fingerprint) {
		ret = mgr_print_fingerprint(&m->cfg);
		free(m);
		return ret;
	}
	if (m->cfg.verbose)
		log_threshold = LOG_DEBUG;
	ret = mgr_init(m);
	if (ret == 0) {
		mgr_log_start(m);
		ret = loop_run(m->loop);
		if (ret < 0)
			log_err("event loop: %s", strerror(-ret));
	}
	mgr_log_stats(m);
	mgr_fini(m);
	free(m);
	return ret < 0 ? 1 : 0;
}
