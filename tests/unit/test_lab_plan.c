/* Unit tests for the lab's address plan (src/lab/plan.c) and the texts
 * rendered from it (src/lab/render.c): pure, no namespaces needed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"
#include "lab/plan.h"
#include "lab/render.h"

static bool in(uint32_t a, const char *cidr)
{
	struct cidr4 c;
	assert_int_equal(cidr4_parse(cidr, &c), 0);
	return cidr4_contains(&c, a);
}

static bool known_suffix(const char *s)
{
	for (int i = 0; lab_all_suffixes[i]; i++)
		if (!strcmp(lab_all_suffixes[i], s))
			return true;
	return false;
}

static void test_name_check(void **state)
{
	static const char *good[] = { "subway", "t1", "a-b-c", "0lab", "abcdefghijklmnopqrst" };
	static const char *bad[] = { "", "-a", "a-", "A", "a_b", "a.b", "a/b", "abcdefghijklmnopqrstu", "a b" };
	char err[128];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		assert_int_equal(lab_name_check(good[i], err, sizeof(err)), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		err[0] = 0;
		assert_int_equal(lab_name_check(bad[i], err, sizeof(err)), -EINVAL);
		assert_non_null(strstr(err, "bad lab name"));
	}
	assert_int_equal(lab_name_check(NULL, err, sizeof(err)), -EINVAL);
}

static void test_topo_parse(void **state)
{
	enum lab_topo t;

	(void)state;
	for (int i = 0; i < LAB_TOPO_COUNT; i++) {
		assert_int_equal(lab_topo_parse(lab_topo_name((enum lab_topo)i), &t), 0);
		assert_int_equal(t, i);
	}
	assert_int_equal(lab_topo_parse("host", &t), -EINVAL); /* no prefixes */
	assert_int_equal(lab_topo_parse("", &t), -EINVAL);
	assert_int_equal(lab_topo_parse(NULL, &t), -EINVAL);
}

static void test_pods_and_services(void **state)
{
	(void)state;
	for (size_t i = 0; i < lab_npods; i++) {
		const struct lab_pod *p = &lab_pods[i];
		assert_true(in(lab_pod_ip(p), "10.42.0.0/16"));
		assert_int_equal((lab_pod_ip(p) >> 8) & 255, lab_nodes[p->node].index);
		assert_true(p->host > 1);
		assert_true(known_suffix(p->name));
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(lab_pod_ip(p), lab_pod_ip(&lab_pods[j]));
	}
	for (size_t i = 0; i < lab_nservices; i++) {
		const struct lab_service *s = &lab_services[i];
		int eps = 0;
		assert_true(in(s->ip, "10.43.0.0/16"));
		assert_int_not_equal(s->ip, LAB_IP(10, 43, 250, 250)); /* the tests' unowned ClusterIP */
		for (size_t k = 0; k < lab_npods; k++)
			eps += lab_pod_selected(s, &lab_pods[k]);
		assert_true(eps >= 1);
	}
	const struct lab_pod *w0 = lab_pod_find("web-0"), *w1 = lab_pod_find("web-1");
	assert_non_null(w0);
	assert_non_null(w1);
	assert_int_not_equal(w0->node, w1->node);
	assert_int_equal(lab_service_find("kube-system", "kube-dns")->ip, LAB_DNS_IP);
	assert_int_equal(lab_service_find("subway", "manager")->ports[0].node_port, 30443);
	assert_int_equal(lab_service_find("subway", "manager")->ports[0].target, 8443);
}

/* Checks the tables of one topology: order, names, addresses. */
static void check_net(enum lab_topo t)
{
	struct lab_net net;

	assert_int_equal(lab_net_build(t, &net), 0);
	assert_int_equal(net.nns, lab_topo_info(t)->router ? 13 : 12);
	for (int i = 0; i < net.nns; i++) {
		char name[LAB_NS_MAX];
		assert_true(known_suffix(net.ns[i].suffix));
		assert_int_equal(lab_ns_name(name, sizeof(name), "abcdefghijklmnopqrst", net.ns[i].suffix), 0);
	}
	for (int i = 0; i < net.nveths; i++)
		assert_true(net.veths[i].ns_a < net.veths[i].ns_b); /* created before configured */
	for (int i = 0; i < net.nifaces; i++) {
		uint32_t a = net.ifaces[i].addr;
		assert_true(strlen(net.ifaces[i].name) <= LAB_IFNAME_MAX);
		assert_false(in(a, "198.18.0.0/15") || in(a, "100.64.0.0/10")); /* the VIF's */
	}
	assert_true(lab_net_ns_find(&net, "laptop") >= 0);
	assert_true(lab_net_ns_find(&net, "internet") >= 0);
	for (int n = 0; n < LAB_NODES; n++)
		assert_true(lab_net_node_ns(&net, n) >= 0);
	for (size_t p = 0; p < lab_npods; p++)
		assert_true(lab_net_pod_ns(&net, (int)p) > lab_net_node_ns(&net, lab_pods[p].node));
}

static void test_nets(void **state)
{
	(void)state;
	for (int t = 0; t < LAB_TOPO_COUNT; t++)
		check_net((enum lab_topo)t);
	assert_int_equal(lab_net_build(LAB_TOPO_COUNT, &(struct lab_net){ 0 }), -EINVAL);
}

static void test_topology_facts(void **state)
{
	const struct lab_topo_info *h = lab_topo_info(LAB_TOPO_HOST_ONLY), *n = lab_topo_info(LAB_TOPO_NAT),
				   *b = lab_topo_info(LAB_TOPO_BRIDGED), *c = lab_topo_info(LAB_TOPO_CLOUD);

	(void)state;
	assert_int_equal(h->node_ip[0], LAB_IP(192, 168, 56, 10));
	assert_int_equal(h->node_gw, LAB_IP(192, 168, 56, 1));
	assert_int_equal(h->node_dns, LAB_IP(192, 168, 56, 1));
	assert_true(h->laptop_forwards && h->dns_forwarder && !h->router);
	assert_int_equal(n->node_ip[2], LAB_IP(192, 168, 56, 12));
	assert_true(n->slirp && n->node_gw == 0 && n->node_dns == LAB_SLIRP_DNS && n->laptop_forwards);
	assert_int_equal(b->node_ip[1], LAB_IP(192, 168, 1, 111));
	assert_true(b->router && !b->laptop_forwards && b->node_gw == LAB_IP(192, 168, 1, 1));
	assert_true(c->router && c->node_ports_only && in(c->node_ip[0], "10.10.0.0/24"));
	assert_null(lab_topo_info(LAB_TOPO_COUNT));
}

static void test_render_node_nft(void **state)
{
	struct lab_net net;
	struct text t;

	(void)state;
	assert_int_equal(lab_net_build(LAB_TOPO_HOST_ONLY, &net), 0);
	text_init(&t);
	render_nft(&t, &net, lab_net_node_ns(&net, 0));
	assert_int_equal(text_error(&t), 0);
	assert_non_null(strstr(text_str(&t), "ip daddr 10.43.0.20 tcp dport 80 goto svc-default-web-http"));
	assert_non_null(strstr(text_str(&t), "numgen random mod 2 vmap"));
	assert_non_null(strstr(text_str(&t), "dnat to 10.42.0.3:8443"));
	assert_non_null(strstr(text_str(&t), "fib daddr type local tcp dport 30443 goto nodeport-subway-manager-https"));
	assert_non_null(strstr(text_str(&t), "ip daddr 10.43.0.10 udp dport 53"));
	assert_null(strstr(text_str(&t), "10.43.250.250"));
	assert_null(strstr(text_str(&t), "10.43.0.0/16")); /* no catch-all for the service CIDR */
	text_reset(&t);
	render_nft(&t, &net, lab_net_pod_ns(&net, 0));
	assert_int_equal(t.len, 0);
	text_free(&t);
}

static void test_render_batch_and_resolv(void **state)
{
	struct lab_net net;
	struct text t;

	(void)state;
	assert_int_equal(lab_net_build(LAB_TOPO_HOST_ONLY, &net), 0);
	text_init(&t);
	render_ip_batch(&t, &net, "x", lab_net_ns_find(&net, "laptop"));
	assert_non_null(strstr(text_str(&t), "link add vboxnet0 type bridge\n"));
	assert_non_null(strstr(text_str(&t), "link add n-server type veth peer name eth0 netns x-server\n"));
	assert_non_null(strstr(text_str(&t), "addr add 192.168.56.1/24 dev vboxnet0\n"));
	assert_non_null(strstr(text_str(&t), "route add default via 198.51.100.1\n"));
	text_reset(&t);
	render_ip_batch(&t, &net, "x", lab_net_node_ns(&net, 1));
	assert_non_null(strstr(text_str(&t), "route add 10.42.0.0/24 via 192.168.56.10\n"));
	assert_non_null(strstr(text_str(&t), "route add 10.42.2.0/24 via 192.168.56.12\n"));
	assert_non_null(strstr(text_str(&t), "link set v-web-0 master cni0\n"));
	text_reset(&t);
	render_resolv_conf(&t, &net, lab_net_pod_ns(&net, 0));
	assert_non_null(strstr(text_str(&t), "search kube-system.svc.cluster.local svc.cluster.local cluster.local\n"));
	assert_non_null(strstr(text_str(&t), "options ndots:5\n"));
	text_reset(&t);
	render_cluster_dns(&t, LAB_TOPO_NAT);
	assert_non_null(strstr(text_str(&t), "server=10.0.2.3\n"));
	assert_non_null(strstr(text_str(&t), "local=/cluster.local/\n"));
	assert_non_null(strstr(text_str(&t),
			       "srv-host=_http._tcp.web.default.svc.cluster.local,web.default.svc.cluster.local,80,0,100\n"));
	text_free(&t);
}

/* Nothing the lab relies on is left to what the machine's namespace has:
 * every namespace of every topology sets its forwarding and rp_filter. */
static void test_sysctls_explicit(void **state)
{
	static const char *const keys[] = { "net.ipv4.ip_forward=", "net.ipv4.conf.all.rp_filter=",
					    "net.ipv4.conf.default.rp_filter=" };
	struct lab_net net;

	(void)state;
	for (int t = 0; t < LAB_TOPO_COUNT; t++) {
		assert_int_equal(lab_net_build((enum lab_topo)t, &net), 0);
		for (int i = 0; i < net.nns; i++) {
			const char *kv[8];
			int n = render_sysctls(&net, i, kv, 8), found = 0;
			for (size_t k = 0; k < ARRAY_SIZE(keys); k++)
				for (int j = 0; j < n; j++)
					found += !strncmp(kv[j], keys[k], strlen(keys[k]));
			if (found != (int)ARRAY_SIZE(keys))
				fail_msg("%s: namespace %s sets %d of the 3 sysctls", lab_topo_name((enum lab_topo)t),
					 net.ns[i].suffix, found);
			/* forwarding as the topology says: a laptop only where it routes for the nodes */
			if (net.ns[i].kind == LAB_NS_LAPTOP)
				assert_int_equal(render_ns_forwards(&net, i), lab_topo_info((enum lab_topo)t)->laptop_forwards);
			if (net.ns[i].kind == LAB_NS_NODE || net.ns[i].kind == LAB_NS_ROUTER)
				assert_true(render_ns_forwards(&net, i));
			if (net.ns[i].kind == LAB_NS_POD)
				assert_false(render_ns_forwards(&net, i));
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_topo_parse),
		cmocka_unit_test(test_pods_and_services),
		cmocka_unit_test(test_nets),
		cmocka_unit_test(test_topology_facts),
		cmocka_unit_test(test_render_node_nft),
		cmocka_unit_test(test_render_batch_and_resolv),
		cmocka_unit_test(test_sysctls_explicit),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
