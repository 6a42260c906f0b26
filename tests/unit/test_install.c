/* Unit tests for src/cli/install.c (rendering deploy/subway.yaml, the
 * token file) and src/lab/podspec.c + src/lab/kubelet.c (the pod the lab
 * runs from what install rendered). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/install.h"
#include "cli/manifest.h"
#include "commands.h"
#include "lab/kubelet.h"
#include "lab/podspec.h"
#include "proto/auth.h"

#define A(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static const char cert[] = "-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----\n";
static const char key[] = "-----BEGIN PRIVATE KEY-----\nMC4key\n-----END PRIVATE KEY-----\n";
static const char tok[] = "token=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

static struct install_values values(void)
{
	struct install_values v = { .image = "10.0.0.1:5000/subway:1", .node_port = 31000, .token_line = tok,
				    .cert_pem = cert, .key_pem = key, .n_addrs = 2 };

	v.addrs[0] = A(192, 168, 56, 10);
	v.addrs[1] = A(192, 168, 56, 11);
	return v;
}

static void test_render(void **state)
{
	struct install_values v = values();
	struct text t;
	const char *s;

	(void)state;
	text_init(&t);
	assert_int_equal(install_render(install_manifest, install_manifest_len, &v, &t), 0);
	s = text_str(&t);
	assert_null(strstr(s, "__SUBWAY_"));
	assert_non_null(strstr(s, "  token: |\n    token=0011"));
	assert_non_null(strstr(s, "  cert.pem: |\n    -----BEGIN CERTIFICATE-----\n    MIIBcert\n"));
	assert_non_null(strstr(s, "  key.pem: |\n    -----BEGIN PRIVATE KEY-----\n"));
	assert_non_null(strstr(s, "          image: 10.0.0.1:5000/subway:1\n"));
	assert_non_null(strstr(s, "      nodePort: 31000\n"));
	assert_non_null(strstr(s, "            - name: SUBWAY_NODES\n              value: \"192.168.56.10,192.168.56.11\"\n"));
	assert_null(strstr(s, "SUBWAY_POD_CIDR")); /* not given: derived in the pod */
	/* given CIDRs become the manager's variables */
	v.pod.n = 1;
	v.pod.v[0] = (struct cidr4){ A(10, 42, 0, 0), 16 };
	v.svc.n = 2;
	v.svc.v[0] = (struct cidr4){ A(10, 43, 0, 0), 16 };
	v.svc.v[1] = (struct cidr4){ A(10, 44, 0, 0), 16 };
	text_reset(&t);
	assert_int_equal(install_render(install_manifest, install_manifest_len, &v, &t), 0);
	assert_non_null(strstr(text_str(&t), "- name: SUBWAY_POD_CIDR\n              value: \"10.42.0.0/16\"\n"));
	assert_non_null(strstr(text_str(&t), "value: \"10.43.0.0/16,10.44.0.0/16\"\n"));
	/* a template that lost a placeholder is refused */
	const char *cut = strstr(install_manifest, "\"__SUBWAY_TLS_KEY__\"");
	assert_non_null(cut);
	text_reset(&t);
	assert_int_equal(install_render(install_manifest, (size_t)(cut - install_manifest), &v, &t), -EINVAL);
	text_free(&t);
}

/* The image of the template is this version's. */
static void test_template_image(void **state)
{
	char want[64];

	(void)state;
	snprintf(want, sizeof(want), "image: subway:%s\n", SUBWAY_VERSION);
	assert_non_null(strstr(install_manifest, want));
}

static void test_token_file(void **state)
{
	struct install_values v = values();
	struct token_file tf;
	struct text t;
	char err[128];

	(void)state;
	text_init(&t);
	install_token_file(&v, "sha256:0000000000000000000000000000000000000000000000000000000000000001", &t);
	assert_int_equal(auth_token_file_parse(text_str(&t), t.len, &tf, err, sizeof(err)), 0);
	assert_true(tf.has_manager && tf.has_fingerprint);
	assert_int_equal(tf.manager_addr, A(192, 168, 56, 10));
	assert_int_equal(tf.manager_port, 31000);
	assert_non_null(strstr(text_str(&t), "# also: connect --manager 192.168.56.11:31000"));
	v.n_addrs = 0; /* no address: no manager= line */
	text_reset(&t);
	install_token_file(&v, "sha256:0000000000000000000000000000000000000000000000000000000000000001", &t);
	assert_int_equal(auth_token_file_parse(text_str(&t), t.len, &tf, err, sizeof(err)), 0);
	assert_false(tf.has_manager);
	text_free(&t);
}

/* The manifests as python3-yaml gives them to the lab (a trimmed copy). */
static const char manifests_json[] =
	"[{\"kind\": \"Namespace\", \"metadata\": {\"name\": \"subway\"}},"
	" {\"kind\": \"Secret\", \"metadata\": {\"name\": \"s\", \"namespace\": \"subway\"},"
	"  \"entries\": [{\"key\": \"token\", \"value\": \"token=ab\\n\"}, {\"key\": \"cert.pem\", \"value\": \"C\"}]},"
	" {\"kind\": \"Deployment\", \"metadata\": {\"name\": \"subway-manager\", \"namespace\": \"subway\"},"
	"  \"spec\": {\"template\": {\"spec\": {"
	"   \"securityContext\": {\"runAsNonRoot\": true, \"runAsUser\": 65532, \"runAsGroup\": 65532,"
	"                         \"fsGroup\": 65532, \"seccompProfile\": {\"type\": \"RuntimeDefault\"}},"
	"   \"containers\": [{\"name\": \"manager\", \"image\": \"r:5000/subway:1\", \"command\": [\"/subway\"],"
	"     \"args\": [\"manager\", \"--listen\", \"0.0.0.0:8443\", \"--cert\", \"/etc/subway/tls/cert.pem\"],"
	"     \"env\": [{\"name\": \"POD_IP\", \"valueFrom\": {\"fieldRef\": {\"fieldPath\": \"status.podIP\"}}},"
	"               {\"name\": \"SUBWAY_NODES\", \"value\": \"1.2.3.4\"}],"
	"     \"ports\": [{\"name\": \"tunnel\", \"containerPort\": 8443}],"
	"     \"livenessProbe\": {\"tcpSocket\": {\"port\": \"tunnel\"}, \"periodSeconds\": 7},"
	"     \"securityContext\": {\"allowPrivilegeEscalation\": false, \"readOnlyRootFilesystem\": true,"
	"                           \"capabilities\": {\"drop\": [\"ALL\"]}},"
	"     \"volumeMounts\": [{\"name\": \"secret\", \"mountPath\": \"/etc/subway\", \"readOnly\": true}]}],"
	"   \"volumes\": [{\"name\": \"secret\", \"secret\": {\"secretName\": \"s\", \"defaultMode\": 288,"
	"     \"items\": [{\"key\": \"token\", \"path\": \"token\"}, {\"key\": \"cert.pem\", \"path\": \"tls/cert.pem\"}]}}]"
	"  }}}}]";

static bool has_arg(const struct argvb *a, const char *s)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->v[i], s))
			return true;
	return false;
}

static void test_podspec(void **state)
{
	struct lab_podspec *s = calloc(1, sizeof(*s));
	struct argvb *a = calloc(1, sizeof(*a));
	struct lab lab = { .name = "t1", .dir = "/run/subway-lab/t1", .topo = LAB_TOPO_HOST_ONLY };
	char err[256];

	(void)state;
	assert_int_equal(podspec_parse(manifests_json, strlen(manifests_json), s, err, sizeof(err)), 0);
	assert_string_equal(s->image, "r:5000/subway:1");
	assert_int_equal(s->ncommand, 1);
	assert_int_equal(s->nargs, 5);
	assert_int_equal(s->port, 8443);
	assert_true(s->liveness.set && s->liveness.port == 8443 && s->liveness.period_s == 7 &&
		    s->liveness.failure_threshold == 3);
	assert_false(s->readiness.set);
	assert_true(s->non_root && s->read_only_root && s->no_privilege_escalation && s->drop_all &&
		    s->seccomp_default);
	assert_int_equal(s->user, 65532);
	assert_int_equal(s->volumes[0].mode, 0440);
	assert_string_equal(s->volumes[0].mount, "/etc/subway");
	assert_string_equal(podspec_secret(s, "cert.pem")->value, "C");

	assert_int_equal(kubelet_run_args(&lab, s, a, err, sizeof(err)), 0);
	assert_true(has_arg(a, "--user=65532:65532") && has_arg(a, "--read-only") && has_arg(a, "--cap-drop=all"));
	assert_true(has_arg(a, "--security-opt=no-new-privileges") && has_arg(a, "--entrypoint=[\"/subway\"]"));
	assert_true(has_arg(a, "--network=ns:/run/netns/t1-manager-0"));
	assert_true(has_arg(a, "--env=POD_IP=10.42.0.3") && has_arg(a, "--env=SUBWAY_NODES=1.2.3.4"));
	assert_true(has_arg(a, "--env=KUBERNETES_SERVICE_HOST=10.43.0.1"));
	assert_true(has_arg(a, "--volume=/run/subway-lab/t1/volumes/manager-0/secret:/etc/subway:ro"));
	assert_true(has_arg(a, "--cert") && !has_arg(a, "--insecure"));
	/* up --insecure: the TLS options give way to --insecure */
	lab.insecure = true;
	memset(a, 0, sizeof(*a));
	assert_int_equal(kubelet_run_args(&lab, s, a, err, sizeof(err)), 0);
	assert_true(!has_arg(a, "--cert") && !has_arg(a, "/etc/subway/tls/cert.pem") && has_arg(a, "--insecure"));
	/* runAsNonRoot as uid 0 is refused, as the kubelet does */
	s->user = 0;
	memset(a, 0, sizeof(*a));
	assert_int_equal(kubelet_run_args(&lab, s, a, err, sizeof(err)), -EINVAL);
	/* no Deployment, bad JSON */
	assert_int_equal(podspec_parse("[{\"kind\": \"Secret\"}]", 20, s, err, sizeof(err)), -EINVAL);
	assert_int_equal(podspec_parse("[{", 2, s, err, sizeof(err)), -EINVAL);
	free(s);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_template_image),
		cmocka_unit_test(test_token_file),
		cmocka_unit_test(test_podspec),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
