/* Unit tests for src/manager/discover.c: what the manager learns in its pod. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "manager/discover.h"

#define A(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static void resolv(const char *text, uint32_t dns, const char *domain)
{
	struct resolv_facts f;

	discover_resolv(text, strlen(text), &f);
	if (f.dns != dns || strcmp(f.domain, domain))
		fail_msg("resolv.conf %s: got %08x '%s', want %08x '%s'", text, f.dns, f.domain, dns, domain);
}

/* As the kubelet writes it, and the odd ones seen in the wild. */
static void test_resolv(void **state)
{
	(void)state;
	resolv("search subway.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\n"
	       "options ndots:5\n", A(10, 43, 0, 10), "cluster.local");
	/* another domain; the cloud's own search entries around it */
	resolv("nameserver 10.96.0.10\nsearch default.svc.k8s.example.org svc.k8s.example.org k8s.example.org "
	       "ec2.internal\n", A(10, 96, 0, 10), "k8s.example.org");
	/* tabs, CRLF, upper case, trailing dots, comments of both kinds */
	resolv("# generated\r\n;nameserver 1.1.1.1\r\nnameserver\t10.43.0.10  # cluster\r\n"
	       "SEARCH\tSubway.SVC.Cluster.Local.\tsvc.cluster.local.\r\n", A(10, 43, 0, 10), "cluster.local");
	/* only "<ns>.svc.D": still D */
	resolv("search kube-system.svc.corp.local\nnameserver 10.0.0.10", A(10, 0, 0, 10), "corp.local");
	/* IPv6 first: the first IPv4 one; the last search line wins */
	resolv("nameserver fd00::10\nnameserver 10.43.0.10\nnameserver 10.43.0.11\nsearch svc.old.local\n"
	       "search svc.cluster.local\n", A(10, 43, 0, 10), "cluster.local");
	/* "domain" counts like a search line */
	resolv("domain svc.cluster.local\nnameserver 10.43.0.10\n", A(10, 43, 0, 10), "cluster.local");
	/* nothing useful: no search line, garbage, a bare "svc.", empty */
	resolv("nameserver 10.43.0.10\n", A(10, 43, 0, 10), "");
	resolv("search svc. .svc.x a.svc.\nnameserver not-an-ip\nnameserver 0.0.0.0\n", 0, "");
	resolv("", 0, "");
	resolv("nameserver", 0, "");
	/* a line longer than the reader's buffer is cut, not overrun */
	char longl[3000];
	memset(longl, 'a', sizeof(longl));
	memcpy(longl, "search ", 7);
	snprintf(longl + 2900, 100, " svc.late.local\nnameserver 10.43.0.10\n");
	resolv(longl, A(10, 43, 0, 10), "");
	/* no terminating newline, and a NUL inside */
	struct resolv_facts f;
	static const char nul[] = "nameserver 10.43.0.10\nsearch svc.a.local\0 svc.b.local";
	discover_resolv(nul, sizeof(nul) - 1, &f);
	assert_string_equal(f.domain, "a.local");
	discover_resolv(NULL, 0, &f);
	assert_int_equal(f.dns, 0);
}

static void test_cidrs(void **state)
{
	struct cidr4 c;
	char b[20];

	(void)state;
	c = discover_service_cidr(A(10, 43, 0, 1)); /* k3s */
	assert_string_equal(cidr4_str(&c, b), "10.43.0.0/16");
	c = discover_service_cidr(A(10, 96, 0, 1)); /* kubeadm, minikube: 10.96.0.0/12 */
	assert_string_equal(cidr4_str(&c, b), "10.96.0.0/12");
	c = discover_service_cidr(A(10, 100, 0, 1));
	assert_string_equal(cidr4_str(&c, b), "10.96.0.0/12");
	c = discover_service_cidr(A(172, 20, 0, 1));
	assert_string_equal(cidr4_str(&c, b), "172.20.0.0/16");
	c = discover_pod_cidr(A(10, 42, 0, 3));
	assert_string_equal(cidr4_str(&c, b), "10.42.0.0/16");
	c = discover_pod_cidr(A(10, 244, 1, 7)); /* flannel's default on kubeadm, kind */
	assert_string_equal(cidr4_str(&c, b), "10.244.0.0/16");
}

static const char kubelet_resolv[] =
	"search subway.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n";

static struct discover_in pod_in(void)
{
	return (struct discover_in){ .env_api_host = "10.43.0.1", .env_pod_ip = "10.42.0.3",
				     .env_host_ip = "192.168.56.10", .env_nodes = "192.168.56.10,192.168.56.11",
				     .resolv = kubelet_resolv, .resolv_len = sizeof(kubelet_resolv) - 1 };
}

/* In the lab's pod, with no flag: everything derived (nodes from env). */
static void test_run_derived(void **state)
{
	struct discover_in in = pod_in();
	struct discover_out o;
	char err[256], b[20];

	(void)state;
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), 0);
	assert_int_equal(o.pod.n, 1);
	assert_string_equal(cidr4_str(&o.pod.v[0], b), "10.42.0.0/16");
	assert_string_equal(cidr4_str(&o.svc.v[0], b), "10.43.0.0/16");
	assert_string_equal(o.domain, "cluster.local");
	assert_int_equal(o.dns, A(10, 43, 0, 10));
	assert_int_equal(o.dns_port, 53);
	assert_int_equal(o.n_nodes, 2); /* HOST_IP is one of them */
	assert_int_equal(o.src[INFO_SRC_POD], SRC_DERIVED);
	assert_int_equal(o.src[INFO_SRC_SVC], SRC_DERIVED);
	assert_int_equal(o.src[INFO_SRC_DOMAIN], SRC_DERIVED);
	assert_int_equal(o.src[INFO_SRC_DNS], SRC_DERIVED);
	assert_int_equal(o.src[INFO_SRC_NODES], SRC_ENV);
	/* no POD_IP: the interface's address, inside a pod */
	in.env_pod_ip = NULL;
	in.if_addr = A(10, 244, 3, 9);
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), 0);
	assert_string_equal(cidr4_str(&o.pod.v[0], b), "10.244.0.0/16");
	/* only HOST_IP: the one node, derived */
	in.env_nodes = NULL;
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), 0);
	assert_int_equal(o.n_nodes, 1);
	assert_int_equal(o.nodes[0], A(192, 168, 56, 10));
	assert_int_equal(o.src[INFO_SRC_NODES], SRC_DERIVED);
}

/* A flag wins over the environment, which wins over what is derived. */
static void test_run_precedence(void **state)
{
	struct discover_in in = pod_in();
	struct discover_out o;
	char err[256], b[20];

	(void)state;
	in.env_pod = "10.50.0.0/16";
	in.env_svc = "10.60.0.0/16,10.61.0.0/16";
	in.env_domain = "corp.local";
	in.env_dns = "10.60.0.10";
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), 0);
	assert_string_equal(cidr4_str(&o.pod.v[0], b), "10.50.0.0/16");
	assert_int_equal(o.svc.n, 2);
	assert_string_equal(o.domain, "corp.local");
	assert_int_equal(o.dns, A(10, 60, 0, 10));
	for (int i = 0; i < INFO_SRC_MAX_; i++)
		assert_int_equal(o.src[i], SRC_ENV);
	in.flag_pod = "10.70.0.0/16";
	in.flag_svc = "10.80.0.0/16";
	in.flag_domain = "flag.local";
	in.flag_dns = "10.80.0.10:5353";
	in.flag_nodes = "10.0.0.1";
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), 0);
	assert_string_equal(cidr4_str(&o.pod.v[0], b), "10.70.0.0/16");
	assert_string_equal(cidr4_str(&o.svc.v[0], b), "10.80.0.0/16");
	assert_string_equal(o.domain, "flag.local");
	assert_int_equal(o.dns, A(10, 80, 0, 10));
	assert_int_equal(o.dns_port, 5353);
	assert_int_equal(o.n_nodes, 2); /* --nodes, and the pod's own node */
	for (int i = 0; i < INFO_SRC_MAX_; i++)
		assert_int_equal(o.src[i], SRC_FLAG);
}

/* Outside a pod nothing is derived: the CIDRs are then required. */
static void test_run_errors(void **state)
{
	struct discover_in in = { 0 };
	struct discover_out o;
	char err[256];

	(void)state;
	in.if_addr = A(192, 168, 1, 5); /* a laptop's address is no pod IP */
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "pod CIDR"));
	in.flag_pod = "10.42.0.0/16";
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "service CIDR"));
	in.flag_svc = "10.43.0.0/16";
	assert_int_equal(discover_run(&in, &o, err, sizeof(err)), 0);
	assert_string_equal(o.domain, "cluster.local");
	assert_int_equal(o.src[INFO_SRC_DOMAIN], SRC_DEFAULT);
	assert_int_equal(o.src[INFO_SRC_DNS], SRC_NONE);

	const struct { const char **field; const char *val, *named; } bad[] = {
		{ &in.env_pod, "10.0.0.1/8", "SUBWAY_POD_CIDR" },
		{ &in.env_api_host, "kubernetes", "KUBERNETES_SERVICE_HOST" },
		{ &in.env_pod_ip, "10.42.0", "POD_IP" },
		{ &in.env_domain, "-bad", "SUBWAY_CLUSTER_DOMAIN" },
		{ &in.env_dns, "0.0.0.0", "SUBWAY_DNS" },
		{ &in.env_nodes, "1.2.3.4,x", "SUBWAY_NODES" },
		{ &in.env_host_ip, "::1", "HOST_IP" },
		{ &in.flag_domain, "a b", "--cluster-domain" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct discover_in save = in;
		in.flag_pod = in.flag_svc = NULL;
		if (bad[i].field == &in.env_pod)
			in.flag_pod = NULL;
		*bad[i].field = bad[i].val;
		if (bad[i].field != &in.env_pod && bad[i].field != &in.env_pod_ip)
			in.flag_pod = "10.42.0.0/16";
		if (bad[i].field != &in.env_api_host)
			in.flag_svc = "10.43.0.0/16";
		if (discover_run(&in, &o, err, sizeof(err)) != -EINVAL || !strstr(err, bad[i].named) ||
		    !strstr(err, bad[i].val))
			fail_msg("%s=%s: got '%s'", bad[i].named, bad[i].val, err);
		in = save;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_resolv),
		cmocka_unit_test(test_cidrs),
		cmocka_unit_test(test_run_derived),
		cmocka_unit_test(test_run_precedence),
		cmocka_unit_test(test_run_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
