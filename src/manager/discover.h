/* What the manager learns about its cluster from inside its pod, without
 * the Kubernetes API (docs/install.md):
 *
 *   service CIDR   the /16 holding KUBERNETES_SERVICE_HOST (the API
 *                  service's ClusterIP; k3s and kind: 10.43/16, 10.96/16),
 *                  or the /12 when it lies in 10.96.0.0/12 (kubeadm's and
 *                  minikube's default)
 *   pod CIDR       the /16 holding the pod's own IP (POD_IP, else its
 *                  interface's address): one /24 per node inside it
 *   domain, DNS    the pod's resolv.conf as the kubelet writes it:
 *                  "search <ns>.svc.<domain> svc.<domain> <domain>" and the
 *                  first IPv4 nameserver
 *   nodes          HOST_IP (the node the pod runs on)
 *
 * A flag wins over an environment variable (SUBWAY_POD_CIDR,
 * SUBWAY_SERVICE_CIDR, SUBWAY_CLUSTER_DOMAIN, SUBWAY_DNS, SUBWAY_NODES),
 * which wins over a derived value.  Pure: the caller gathers the inputs. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "proto/frame.h"

#define DISCOVER_DOMAIN_MAX 64

/* The pod's resolv.conf, as far as discovery cares. */
struct resolv_facts {
	uint32_t dns;                        /* first IPv4 nameserver, 0: none */
	char domain[DISCOVER_DOMAIN_MAX];    /* "" when the search list names none */
};

/* Reads resolv.conf text (len bytes, need not be NUL-terminated): the last
 * "search" (or "domain") line counts, as for the resolver; comments (# ;),
 * tabs, CRLF, trailing dots and letter case are taken as the resolver
 * takes them.  The domain is D of an entry "svc.D", else of "X.svc.D".
 * Never fails: what is not there stays 0 / "". */
void discover_resolv(const char *text, size_t len, struct resolv_facts *out);

/* The service CIDR for the API service's ClusterIP (see above). */
struct cidr4 discover_service_cidr(uint32_t api_ip);
/* The pod CIDR for a pod IP: the /16 holding it. */
struct cidr4 discover_pod_cidr(uint32_t pod_ip);

/* Inputs: NULL or "" for an absent variable or flag. */
struct discover_in {
	const char *flag_pod, *flag_svc, *flag_domain, *flag_dns, *flag_nodes;
	const char *env_pod, *env_svc, *env_domain, *env_dns, *env_nodes;
	const char *env_api_host;  /* KUBERNETES_SERVICE_HOST */
	const char *env_pod_ip;    /* POD_IP */
	const char *env_host_ip;   /* HOST_IP */
	uint32_t if_addr;          /* the pod's interface address (0: none) */
	const char *resolv;        /* resolv.conf text, NULL: unreadable */
	size_t resolv_len;
};

struct discover_out {
	struct cidr_list pod, svc;
	char domain[DISCOVER_DOMAIN_MAX];
	uint32_t dns;
	uint16_t dns_port;
	int n_nodes;
	uint32_t nodes[PROTO_NODES_MAX];
	uint8_t src[INFO_SRC_MAX_]; /* enum info_source per value */
};

/* Fills out.  0, or -EINVAL with err naming the bad flag or variable and
 * its value, or -ENOENT with err naming a value that nothing gave (the
 * pod or service CIDR). */
int discover_run(const struct discover_in *in, struct discover_out *out, char *err, size_t errlen);

/* Not pure: fills in's environment fields from getenv(), resolv from
 * /etc/resolv.conf (size bytes at most) and if_addr as given. */
void discover_gather(struct discover_in *in, char *resolv, size_t size, uint32_t if_addr);
