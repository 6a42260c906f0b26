/* Unit tests for src/cli/inject.c: the agent's JSON patches, from parsed
 * workloads, applied with jval_patch as the lab and the API server do. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli/inject.h"
#include "common/jval.h"

/* Values an app really has: a quote, an apostrophe, a newline, '=', '$',
 * a $(VAR) reference (the kubelet's, kept as it is), a backslash, UTF-8. */
#define ODD "it's \\\"quoted\\\"\\nline 2 = $HOME $(POD_NAME) \\\\ caf\\u00e9"
#define ODD_BYTES "it's \"quoted\"\nline 2 = $HOME $(POD_NAME) \\ caf\xc3\xa9"

static const char web[] =
	"{\"apiVersion\": \"apps/v1\", \"kind\": \"Deployment\","
	" \"metadata\": {\"name\": \"web\", \"namespace\": \"shop\"},"
	" \"spec\": {\"replicas\": 2, \"template\": {\"metadata\": {\"labels\": {\"app\": \"web\"}}, \"spec\": {"
	"  \"containers\": [{\"name\": \"web\", \"image\": \"nginx\","
	"    \"ports\": [{\"name\": \"http\", \"containerPort\": 80}, {\"name\": \"dns\", \"containerPort\": 53,"
	"                \"protocol\": \"UDP\"}, {\"containerPort\": 9000, \"protocol\": \"SCTP\"}],"
	"    \"env\": [{\"name\": \"GREETING\", \"value\": \"" ODD "\"},"
	"             {\"name\": \"POD_NAME\", \"valueFrom\": {\"fieldRef\": {\"fieldPath\": \"metadata.name\"}}},"
	"             {\"name\": \"MEM\", \"valueFrom\": {\"resourceFieldRef\": {\"resource\": \"limits.memory\"}}},"
	"             {\"name\": \"DB\", \"valueFrom\": {\"secretKeyRef\": {\"name\": \"db\", \"key\": \"url\"}}}],"
	"    \"envFrom\": [{\"configMapRef\": {\"name\": \"web-config\"}}, {\"prefix\": \"S_\", \"secretRef\": {\"name\": \"s\"}}]"
	"  }, {\"name\": \"log\", \"image\": \"busybox\"}]}}}}";

static struct jval *P(const char *s)
{
	char err[128];
	struct jval *v = jval_parse(s, strlen(s), err, sizeof(err));

	if (!v)
		fail_msg("%s", err);
	return v;
}

/* v equals the value of text. */
static bool EQ(const struct jval *v, const char *text)
{
	struct jval *t = P(text);
	bool r = jval_equal(v, t);

	jval_free(t);
	return r;
}

static const struct inject_opts opts = { .image = "10.0.0.1:5000/subway:0.1.0", .manager = "10.43.0.50:443" };

/* doc with the patch applied (freed by the caller). */
static struct jval *patched(const struct jval *doc, const struct jval *patch)
{
	struct jval *d = jval_dup(doc);
	char err[160];

	if (jval_patch(&d, patch, err, sizeof(err)) < 0)
		fail_msg("%s", err);
	return d;
}

static const char *S(const struct jval *v, const char *ptr)
{
	const char *s = jval_str(jval_ptr(v, ptr));

	if (!s)
		fail_msg("no string at %s", ptr);
	return s;
}

static void test_inject_adds_the_agent(void **state)
{
	struct jval *w = P(web), *d, *back;
	struct inject_result res, un;
	const struct jval *c, *env;
	char err[256];

	(void)state;
	assert_int_equal(inject_patch(w, NULL, &opts, &res, err, sizeof(err)), 0);
	assert_string_equal(res.kind, "Deployment");
	assert_string_equal(res.ns, "shop"); /* the object's own */
	assert_string_equal(res.container, "web");
	assert_string_equal(res.ports, "http:80,dns:53/udp"); /* SCTP is not the agent's */
	assert_false(res.had_agent);
	/* two operations: the container at the end, the volumes list made */
	assert_int_equal(res.patch->n, 2);
	assert_string_equal(S(res.patch, "/0/op"), "add");
	assert_string_equal(S(res.patch, "/0/path"), "/spec/template/spec/containers/-");
	assert_string_equal(S(res.patch, "/1/path"), "/spec/template/spec/volumes");
	d = patched(w, res.patch);
	c = jval_ptr(d, "/spec/template/spec/containers/2");
	assert_string_equal(S(c, "/name"), INJECT_AGENT);
	assert_string_equal(S(c, "/image"), opts.image);
	assert_string_equal(S(c, "/args/0"), "agent");
	assert_int_equal(jval_get(c, "args")->n, 1);
	assert_null(jval_get(c, "command")); /* the image's entrypoint: /subway */
	/* the app's env first, byte for byte; then the agent's own */
	env = jval_get(c, "env");
	assert_int_equal(env->n, 4 + 7);
	assert_string_equal(S(env, "/0/name"), "GREETING");
	assert_string_equal(S(env, "/0/value"), ODD_BYTES);
	assert_true(jval_equal(jval_ptr(env, "/1"), jval_ptr(w, "/spec/template/spec/containers/0/env/1")));
	assert_string_equal(S(env, "/2/valueFrom/resourceFieldRef/containerName"), "web"); /* the app's limits */
	assert_true(jval_equal(jval_ptr(env, "/3"), jval_ptr(w, "/spec/template/spec/containers/0/env/3")));
	static const char *const own[][2] = { { "SUBWAY_MANAGER", "10.43.0.50:443" }, { "SUBWAY_WORKLOAD", "web" },
					      { "SUBWAY_PORTS", "http:80,dns:53/udp" },
					      { "SUBWAY_AGENT_DIR", "/var/run/secrets/subway-agent" } };
	for (size_t i = 0; i < 4; i++) {
		assert_string_equal(S(jval_at(env, 4 + i), "/name"), own[i][0]);
		assert_string_equal(S(jval_at(env, 4 + i), "/value"), own[i][1]);
	}
	assert_string_equal(S(env, "/8/name"), "SUBWAY_POD_NAME");
	assert_string_equal(S(env, "/8/valueFrom/fieldRef/fieldPath"), "metadata.name");
	assert_string_equal(S(env, "/9/valueFrom/fieldRef/fieldPath"), "metadata.namespace");
	assert_string_equal(S(env, "/10/valueFrom/fieldRef/fieldPath"), "status.podIP");
	assert_true(jval_equal(jval_get(c, "envFrom"), jval_ptr(w, "/spec/template/spec/containers/0/envFrom")));
	/* locked down, but NET_ADMIN */
	assert_true(EQ(jval_get(c, "securityContext"),
			       ("{\"runAsUser\":0,\"runAsGroup\":0,\"runAsNonRoot\":false,"
				 "\"allowPrivilegeEscalation\":false,\"readOnlyRootFilesystem\":true,"
				 "\"capabilities\":{\"drop\":[\"ALL\"],\"add\":[\"NET_ADMIN\"]},"
				 "\"seccompProfile\":{\"type\":\"RuntimeDefault\"}}")));
	assert_true(EQ(jval_get(c, "volumeMounts"),
			       ("[{\"name\":\"subway-agent\",\"mountPath\":\"/var/run/secrets/subway-agent\","
				 "\"readOnly\":true}]")));
	assert_true(EQ(jval_ptr(d, "/spec/template/spec/volumes"),
			       ("[{\"name\":\"subway-agent\",\"secret\":{\"secretName\":\"subway-agent\",\"defaultMode\":292,"
				 "\"items\":[{\"key\":\"agent-token\",\"path\":\"agent-token\"},"
				 "{\"key\":\"cert.pem\",\"path\":\"cert.pem\"}]}}]")));
	/* the app containers are untouched */
	assert_true(jval_equal(jval_ptr(d, "/spec/template/spec/containers/0"), jval_ptr(w, "/spec/template/spec/containers/0")));
	/* uninject takes it all out again: the document is the one before */
	assert_int_equal(uninject_patch(d, "shop", &un, err, sizeof(err)), 0);
	assert_true(un.had_agent);
	assert_string_equal(S(un.patch, "/0/op"), "test");
	assert_string_equal(S(un.patch, "/0/path"), "/spec/template/spec/containers/2/name");
	assert_string_equal(S(un.patch, "/1/op"), "remove");
	back = patched(d, un.patch);
	{
		char *a = jval_encode(back, 2, NULL), *b = jval_encode(w, 2, NULL);
		assert_string_equal(a, b);
		free(a);
		free(b);
	}
	jval_free(un.patch);
	/* and again: nothing to remove */
	assert_int_equal(uninject_patch(back, NULL, &un, err, sizeof(err)), 0);
	assert_false(un.had_agent);
	assert_int_equal(un.patch->n, 0);
	jval_free(un.patch);
	jval_free(back);
	jval_free(d);
	jval_free(res.patch);
	jval_free(w);
}

/* Injecting twice replaces, guarded by tests; other volumes stay. */
static void test_reinject_and_volumes(void **state)
{
	struct jval *w = P(web), *d, *d2;
	struct inject_result res, res2, un;
	struct inject_opts o = opts;
	char err[256];

	(void)state;
	struct jval *vol = P("[{\"op\":\"add\",\"path\":\"/spec/template/spec/volumes\",\"value\":"
			     "[{\"name\":\"data\",\"emptyDir\":{}}]}]");
	assert_int_equal(jval_patch(&w, vol, err, sizeof(err)), 0);
	jval_free(vol);
	assert_int_equal(inject_patch(w, NULL, &opts, &res, err, sizeof(err)), 0);
	assert_string_equal(S(res.patch, "/1/path"), "/spec/template/spec/volumes/-");
	d = patched(w, res.patch);
	o.image = "other:2";
	o.ports[0] = "http";
	o.nports = 1;
	assert_int_equal(inject_patch(d, NULL, &o, &res2, err, sizeof(err)), 0);
	assert_true(res2.had_agent);
	assert_int_equal(res2.patch->n, 4);
	assert_string_equal(S(res2.patch, "/0/op"), "test");
	assert_string_equal(S(res2.patch, "/0/path"), "/spec/template/spec/containers/2/name");
	assert_string_equal(S(res2.patch, "/1/op"), "replace");
	assert_string_equal(S(res2.patch, "/1/path"), "/spec/template/spec/containers/2");
	assert_string_equal(S(res2.patch, "/3/path"), "/spec/template/spec/volumes/1");
	d2 = patched(d, res2.patch);
	assert_string_equal(S(d2, "/spec/template/spec/containers/2/image"), "other:2");
	assert_string_equal(S(d2, "/spec/template/spec/containers/2/env/6/value"), "http:80");
	assert_int_equal(jval_ptr(d2, "/spec/template/spec/containers")->n, 3);
	assert_int_equal(jval_ptr(d2, "/spec/template/spec/volumes")->n, 2);
	/* uninject: only the agent's volume goes */
	assert_int_equal(uninject_patch(d2, NULL, &un, err, sizeof(err)), 0);
	assert_string_equal(S(un.patch, "/3/path"), "/spec/template/spec/volumes/1");
	jval_free(d);
	d = patched(d2, un.patch);
	assert_true(jval_equal(d, w));
	/* the patch of a stale copy fails as a whole against the new one */
	assert_int_equal(jval_patch(&d, un.patch, err, sizeof(err)), -EINVAL);
	assert_true(jval_equal(d, w));
	jval_free(un.patch);
	jval_free(res.patch);
	jval_free(res2.patch);
	jval_free(d);
	jval_free(d2);
	jval_free(w);
}

static void test_ports(void **state)
{
	static const struct {
		const char *ports[3];
		const char *want; /* SUBWAY_PORTS, or the error's start */
	} cases[] = {
		{ { "http" }, "http:80" },
		{ { "53" }, "dns:53/udp" },
		{ { "53/tcp" }, ":53" },
		{ { "8080", "http", "80" }, ":8080,http:80" },
		{ { "metrics:9090", "q:5000/udp" }, "metrics:9090,q:5000/udp" },
		{ { "nope" }, "--port nope: container web has no port of that name (its ports: http:80,dns:53/udp)" },
		{ { "0" }, "--port 0: not a port name" },
		{ { "a:b" }, "--port a:b: not a port name" },
		{ { "x:80/sctp" }, "--port x:80/sctp: not a port name" },
		{ { "a-very-long-port-name:80" }, "--port a-very-long-port-name:80: not a port name" },
	};
	struct jval *w = P(web);
	char err[256];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct inject_opts o = opts;
		struct inject_result res;
		int r;
		for (o.nports = 0; o.nports < 3 && cases[i].ports[o.nports]; o.nports++)
			o.ports[o.nports] = cases[i].ports[o.nports];
		r = inject_patch(w, NULL, &o, &res, err, sizeof(err));
		if (r == 0) {
			assert_string_equal(res.ports, cases[i].want);
			jval_free(res.patch);
		} else if (strncmp(err, cases[i].want, strlen(cases[i].want))) {
			fail_msg("case %zu: %s", i, err);
		}
	}
	/* a container that declares none */
	struct inject_opts o = opts;
	struct inject_result res;
	o.container = "log";
	assert_int_equal(inject_patch(w, NULL, &o, &res, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "container log declares no TCP or UDP port: say which with --port NUMBER");
	o.ports[o.nports++] = "8080";
	assert_int_equal(inject_patch(w, NULL, &o, &res, err, sizeof(err)), 0);
	assert_string_equal(res.container, "log");
	assert_string_equal(res.ports, ":8080");
	jval_free(res.patch);
	jval_free(w);
}

static void test_find_and_errors(void **state)
{
	struct jval *list = P("{\"kind\": \"List\", \"items\": [{\"kind\": \"Service\", \"metadata\": {\"name\": \"web\"}},"
			      " {\"kind\": \"StatefulSet\", \"metadata\": {\"name\": \"db\", \"namespace\": \"data\"}},"
			      " {\"kind\": \"Deployment\", \"metadata\": {\"name\": \"web\"}}]}");
	struct jval *docs = P("[{\"kind\": \"Deployment\", \"metadata\": {\"name\": \"a\", \"namespace\": \"x\"}}]");
	struct inject_opts o = opts;
	struct inject_result res;
	char err[256];

	(void)state;
	assert_ptr_equal(inject_find(list, NULL, "web", NULL, err, sizeof(err)), jval_ptr(list, "/items/2"));
	assert_ptr_equal(inject_find(list, "StatefulSet", "db", "data", err, sizeof(err)), jval_ptr(list, "/items/1"));
	assert_null(inject_find(list, "StatefulSet", "db", "other", err, sizeof(err)));
	assert_string_equal(err, "no StatefulSet db in namespace other in it (it holds StatefulSet/db, Deployment/web)");
	assert_null(inject_find(docs, NULL, "b", NULL, err, sizeof(err)));
	assert_string_equal(err, "no Deployment or StatefulSet b in it (it holds Deployment/a)");
	assert_ptr_equal(inject_find(jval_at(docs, 0), "Deployment", "a", "x", err, sizeof(err)), jval_at(docs, 0));
	struct jval *pod = P("{\"kind\": \"Pod\"}");
	assert_null(inject_find(pod, NULL, "a", NULL, err, sizeof(err)));
	jval_free(pod);
	/* a workload without containers, a wrong namespace, no such container */
	assert_int_equal(inject_patch(jval_at(docs, 0), NULL, &o, &res, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "Deployment a has no spec.template.spec.containers");
	struct jval *w = P(web);
	assert_int_equal(inject_patch(w, "default", &o, &res, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "Deployment web is in namespace shop, not default");
	o.container = "app";
	assert_int_equal(inject_patch(w, NULL, &o, &res, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "Deployment web has no container app (it has web, log)");
	o.container = INJECT_AGENT;
	assert_int_equal(inject_patch(w, NULL, &o, &res, err, sizeof(err)), -EINVAL);
	assert_false(inject_name_ok("Web") || inject_name_ok("-a") || inject_name_ok("a-") || inject_name_ok("") ||
		     inject_name_ok("a b") || inject_name_ok("a'b"));
	assert_true(inject_name_ok("web-1.v2"));
	jval_free(w);
	jval_free(list);
	jval_free(docs);
}

/* The kubectl command for a shell: a quote in a value survives it. */
static void test_kubectl_line(void **state)
{
	struct jval *w = P(web);
	struct inject_result res;
	char err[256], *line, *argv[INJECT_ARGV];
	const char *want = "kubectl --context 'my ctx' --kubeconfig /k/c patch deployment web -n shop --type json -p '[";

	(void)state;
	assert_int_equal(inject_patch(w, NULL, &opts, &res, err, sizeof(err)), 0);
	line = inject_shell_line(&res, "my ctx", "/k/c");
	assert_int_equal(strncmp(line, want, strlen(want)), 0);
	assert_non_null(strstr(line, "\"value\":\"it'\\''s \\\"quoted\\\"\\nline 2 = $HOME $(POD_NAME) \\\\ caf\xc3\xa9\""));
	assert_string_equal(line + strlen(line) - 2, "]'");
	inject_kubectl_argv(&res, NULL, NULL, "[]", argv);
	assert_string_equal(argv[1], "patch");
	assert_string_equal(argv[2], "deployment");
	assert_string_equal(argv[9], "[]");
	assert_null(argv[10]);
	strcpy(res.kind, "StatefulSet");
	inject_kubectl_argv(&res, "c", NULL, "[]", argv);
	assert_string_equal(argv[4], "statefulset");
	free(line);
	jval_free(res.patch);
	jval_free(w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_inject_adds_the_agent),
		cmocka_unit_test(test_reinject_and_volumes),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_find_and_errors),
		cmocka_unit_test(test_kubectl_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
